//! Request limits and transport rules.

use serde_json::json;

use crate::helpers::{TestApp, error_code};

#[tokio::test]
async fn too_deep_query_is_refused() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let mut query = String::from("{ viewer { id } }");
    for _ in 0..10 {
        query = query.replace("{ id }", "{ teams { members { id } } }");
    }
    let body = app.gql(Some(&ws.admin_token), &query, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(body["data"].is_null());
}

#[tokio::test]
async fn too_many_aliases_are_refused() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let fields: String = (0..31).map(|i| format!("a{i}: viewer {{ id }} ")).collect();
    let body = app
        .gql(Some(&ws.admin_token), &format!("{{ {fields} }}"), json!({}))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("aliases"))
    );
}

#[tokio::test]
async fn oversized_request_body_is_refused() {
    let app = TestApp::spawn().await;
    let padding = "x".repeat(300 * 1024);
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": "{ __typename }", "variables": { "padding": padding } }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn batched_requests_are_refused() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }]))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn mutations_over_get_are_refused() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let query = format!(
        "mutation {{ startConversation(input: {{ widgetKey: \"{}\" }}) {{ visitorToken }} }}",
        ws.widget_key
    );
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", query.as_str())])
        .send()
        .await
        .expect("sent");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let count = app
        .data(
            Some(&ws.admin_token),
            "{ conversations { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        count["conversations"]["totalCount"], 0,
        "nothing was started"
    );

    let read = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ viewer { id } }")])
        .bearer_auth(&ws.admin_token)
        .send()
        .await
        .expect("sent");
    let body: serde_json::Value = read.json().await.expect("json");
    assert_eq!(
        body["data"]["viewer"]["id"],
        ws.admin_id.as_str(),
        "queries work over GET"
    );
}

#[tokio::test]
async fn form_posts_are_refused() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("query=%7B__typename%7D")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 415);
}

#[tokio::test]
async fn syntax_errors_carry_a_code() {
    let app = TestApp::spawn().await;
    let body = app.gql(None, "{ viewer { id ", json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}
