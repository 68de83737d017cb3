//! What is stored is read loudly: a JSON column that does not decode is an
//! `INTERNAL` error (its row named in the server's log), never an empty value, and
//! a database failure is never reported as the caller's bad input.

use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::helpers::{TestApp, error_code};

async fn execute(app: &TestApp, sql: &str) {
    app.running
        .state
        .db
        .writer
        .execute_unprepared(sql)
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
}

#[tokio::test]
async fn a_corrupt_json_column_is_an_internal_error_not_an_empty_value() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Corrupt").await;
    let (conversation, _) = app.start_conversation(&ws, Some("hello")).await;
    let ai = app.api_key(&ws, "AI_WRITE").await;
    app.data(
        Some(&ai),
        "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }",
        json!({ "input": { "conversationId": conversation, "body": "An answer", "sourceArticleIds": [] } }),
    )
    .await;
    let read = "query($id: ID!) { conversation(id: $id) { context messages { nodes { author sources { title } } } } }";
    let before = app
        .data(Some(&ws.admin_token), read, json!({ "id": conversation }))
        .await;
    assert_eq!(
        before["conversation"]["context"]["pageUrl"],
        "https://example.com/docs"
    );

    execute(
        &app,
        &format!(
            "UPDATE conversations SET context = '{{\"pageUrl\": ' WHERE id = '{conversation}'"
        ),
    )
    .await;
    execute(
        &app,
        &format!("UPDATE messages SET sources = 'not json' WHERE conversation_id = '{conversation}' AND author = 'AI'"),
    )
    .await;

    let after = app
        .gql(Some(&ws.admin_token), read, json!({ "id": conversation }))
        .await;
    let errors = after["errors"].as_array().expect("errors");
    let paths: Vec<String> = errors.iter().map(|e| e["path"].to_string()).collect();
    assert!(
        errors.iter().all(|e| e["extensions"]["code"] == "INTERNAL"),
        "{after:#}"
    );
    assert!(paths.iter().any(|p| p.contains("context")), "{after:#}");
    assert!(paths.iter().any(|p| p.contains("sources")), "{after:#}");
    // What does decode still reads; nothing reads as empty in place of the error.
    assert!(
        after["data"]["conversation"].is_null()
            || after["data"]["conversation"]["context"].is_null()
    );
    // The row's detail stays on the server.
    assert!(
        errors.iter().all(|e| !e["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&conversation)),
        "{after:#}"
    );
}

#[tokio::test]
async fn a_database_failure_is_not_reported_as_bad_input() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Failing").await;
    let (conversation, _) = app.start_conversation(&ws, Some("hello")).await;
    let ai = app.api_key(&ws, "AI_WRITE").await;
    let answer = |article: &str| json!({ "input": { "conversationId": conversation, "body": "An answer", "sourceArticleIds": [article] } });
    let send = "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }";

    // An article that does not exist is the caller's mistake, named.
    let missing = app.gql(Some(&ai), send, answer("art_missing")).await;
    assert_eq!(error_code(&missing), "BAD_USER_INPUT");
    assert_eq!(
        missing["errors"][0]["extensions"]["field"],
        "sourceArticleIds"
    );

    // A lookup that fails in the database is not: here the table is gone.
    let cascade = if app.running.state.db.pg_pool.is_some() {
        " CASCADE"
    } else {
        ""
    };
    execute(&app, &format!("DROP TABLE articles{cascade}")).await;
    let failed = app.gql(Some(&ai), send, answer("art_missing")).await;
    assert_eq!(error_code(&failed), "INTERNAL", "{failed:#}");

    execute(&app, &format!("DROP TABLE insight_tags{cascade}")).await;
    let policy = app
        .gql(
            Some(&ws.admin_token),
            "mutation { updateHandoffPolicy(input: { escalateTagIds: [\"tag_missing\"] }) { escalateTagIds } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&policy), "INTERNAL", "{policy:#}");
}
