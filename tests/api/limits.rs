//! Request limits and transport rules.

use async_graphql::Variables;
use async_graphql::parser::parse_query;
use async_graphql::parser::types::OperationType;
use casefile::config::limits::MAX_PAGE;
use casefile::graphql::cost;
use serde_json::json;

use crate::helpers::{TestApp, error_code};

/// The default `CASEFILE_MAX_QUERY_COST`.
const MAX_QUERY_COST: usize = 20_000;

const OPERATIONS: &str = include_str!("../../examples/operations.graphql");

/// The operations of the demo pages (`examples/web`), one file per page.
const DEMO_PAGES: [(&str, &str); 2] = [
    (
        "inbox",
        include_str!("../../examples/web/src/operations/inbox.graphql"),
    ),
    (
        "widget",
        include_str!("../../examples/web/src/operations/widget.graphql"),
    ),
];

#[tokio::test]
async fn too_deep_query_is_refused() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    // One object per level, so the depth is refused rather than the cost.
    let mut query = String::from("{ conversation(id: \"x\") { id } }");
    for _ in 0..10 {
        query = query.replace("{ id }", "{ openHandoff { conversation { id } } }");
    }
    let body = app.gql(Some(&ws.admin_token), &query, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("deep")),
        "{body:#}"
    );
    assert!(body["data"].is_null());
}

/// Found by the fuzz test (seed 26, document 769): a list or object value nested
/// 500 deep in an argument overflowed the parser's stack and aborted the whole
/// process (the parser bounds the nesting of selections, not of values).
#[tokio::test]
async fn values_nested_hundreds_deep_are_refused_not_a_crash() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    for depth in [500, 600] {
        let lists = format!(
            "{{ articles(query: {}\"x\"{}) {{ totalCount }} }}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let objects = format!(
            "{{ leads(filter: {}1{}) {{ totalCount }} }}",
            "{a: ".repeat(depth),
            "}".repeat(depth)
        );
        for query in [lists, objects] {
            let body = app.gql(Some(&ws.admin_token), &query, json!({})).await;
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "depth {depth}");
            assert!(
                body["errors"][0]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("deep")),
                "{body:#}"
            );
        }
    }
    let body = app.gql(None, "{ __typename }", json!({})).await;
    assert_eq!(body["data"]["__typename"], "Query");
}

/// PostgreSQL cannot store U+0000, and answered such text as an outage
/// (`SERVICE_UNAVAILABLE`, "try again") before: found by the fuzz test.
#[tokio::test]
async fn the_nul_character_is_bad_input_on_every_database() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, _) = app.start_conversation(&ws, Some("hi")).await;
    let in_variables = app
        .gql(
            Some(&ws.admin_token),
            "query($f: LeadFilterInput) { leads(filter: $f) { totalCount } }",
            json!({ "f": { "query": "\u{0}\u{0}" } }),
        )
        .await;
    let in_a_literal = app
        .gql(
            Some(&ws.admin_token),
            &format!(
                "mutation {{ sendMessage(input: {{ conversationId: \"{conversation}\", body: \"a\\u0000b\" }}) {{ id }} }}"
            ),
            json!({}),
        )
        .await;
    for body in [in_variables, in_a_literal] {
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(body.to_string().contains("U+0000"), "{body}");
    }
    let stored = app
        .data(
            Some(&ws.admin_token),
            "query($c: ID!) { conversation(id: $c) { messages(first: 10) { totalCount } } }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(stored["conversation"]["messages"]["totalCount"], 1);
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

/// 29 aliased pages of 200 messages in each of 200 conversations: over a million
/// objects, under the alias and depth limits.
fn aliased_messages_attack() -> String {
    let aliases: String = (0..29)
        .map(|i| format!("m{i}: messages(first: 200) {{ edges {{ node {{ id body }} }} }} "))
        .collect();
    format!("{{ conversations(first: 200) {{ edges {{ node {{ {aliases} }} }} }} }}")
}

#[tokio::test]
async fn costly_document_is_refused_before_it_runs() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;

    let body = app
        .gql(Some(&ws.admin_token), &aliased_messages_attack(), json!({}))
        .await;

    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let extensions = &body["errors"][0]["extensions"];
    assert_eq!(extensions["reason"], "QUERY_TOO_COSTLY");
    assert_eq!(extensions["limit"], MAX_QUERY_COST);
    assert!(
        extensions["cost"]
            .as_u64()
            .is_some_and(|cost| cost > 1_000_000),
        "{body:#}"
    );
    assert!(body["data"].is_null());
}

/// Each operation of a page's file: (its name, whether it is a query that runs
/// without variables, its cost with none).
fn demo_operations(page: &str, source: &str) -> Vec<(String, bool, usize)> {
    let doc = parse_query(source).unwrap_or_else(|err| panic!("{page}: {err}"));
    doc.operations
        .iter()
        .map(|(name, operation)| {
            let name = name
                .expect("every operation of a page is named")
                .to_string();
            let cost = cost::cost(&doc, Some(&name), &Variables::default());
            let plain = operation.node.ty == OperationType::Query
                && operation.node.variable_definitions.iter().all(|variable| {
                    variable.node.var_type.node.nullable || variable.node.default_value.is_some()
                });
            (name, plain, cost)
        })
        .collect()
}

#[test]
fn documented_operations_cost_well_under_the_limit() {
    let doc = parse_query(OPERATIONS).expect("operations.graphql parses");
    let largest_page = Variables::from_json(json!({ "first": MAX_PAGE }));
    for (name, _) in doc.operations.iter() {
        let name = name.expect("operations are named").as_str();

        let usual = cost::cost(&doc, Some(name), &Variables::default());
        let largest = cost::cost(&doc, Some(name), &largest_page);

        assert!(usual < MAX_QUERY_COST / 4, "{name} costs {usual}");
        assert!(
            largest < MAX_QUERY_COST,
            "{name} costs {largest} with `first: {MAX_PAGE}`"
        );
    }
}

#[test]
fn demo_page_documents_cost_well_under_the_limit() {
    for (page, source) in DEMO_PAGES {
        let operations = demo_operations(page, source);
        assert!(operations.len() >= 5, "{page}: {operations:#?}");
        for (name, _, cost) in operations {
            assert!(cost < MAX_QUERY_COST / 4, "{page}: {cost} for {name}");
        }
    }
}

#[tokio::test]
async fn the_heaviest_documented_queries_run() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (_, name, source) = DEMO_PAGES
        .iter()
        .flat_map(|(page, source)| {
            demo_operations(page, source)
                .into_iter()
                .filter(|(_, plain, _)| *plain)
                .map(|(name, _, cost)| (cost, name, *source))
        })
        .max()
        .expect("the demo pages query");
    let heaviest = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&ws.admin_token)
        .json(&json!({ "query": source, "operationName": name }))
        .send()
        .await
        .expect("sent");
    let body: serde_json::Value = heaviest.json().await.expect("json");
    assert!(body.get("errors").is_none(), "{name}: {body:#}");
    let handoffs = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&ws.admin_token)
        .json(&json!({
            "query": OPERATIONS,
            "operationName": "Handoffs",
            "variables": { "first": MAX_PAGE },
        }))
        .send()
        .await
        .expect("sent");
    let body: serde_json::Value = handoffs.json().await.expect("json");
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(body["data"]["handoffs"]["totalCount"], 0);
}
