//! Who a visitor is: a visitor id is not a credential.

use serde_json::{Value, json};

use crate::helpers::TestApp;

const START: &str = "mutation($input: StartConversationInput!) { startConversation(input: $input) { visitorId visitorToken conversation { id visitorId lead { name email } } } }";

async fn start(app: &TestApp, token: Option<&str>, input: Value) -> Value {
    app.data(token, START, json!({ "input": input })).await["startConversation"].clone()
}

#[tokio::test]
async fn a_new_visitor_gets_a_random_visitor_id() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let first = start(&app, None, json!({ "widgetKey": ws.widget_key })).await;
    let second = start(&app, None, json!({ "widgetKey": ws.widget_key })).await;
    let id = first["visitorId"].as_str().expect("visitor id");
    assert!(
        id.starts_with("vis_") && id.len() >= 4 + 22,
        "128 random bits: {id}"
    );
    assert_ne!(first["visitorId"], second["visitorId"]);
    assert_eq!(first["conversation"]["visitorId"], first["visitorId"]);
}

#[tokio::test]
async fn someone_elses_visitor_id_does_not_reach_their_lead() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let victim = start(
        &app,
        None,
        json!({ "widgetKey": ws.widget_key, "lead": { "name": "Vera Victim", "email": "vera@example.com" } }),
    )
    .await;
    let victim_id = victim["visitorId"].as_str().expect("id");

    // The attacker names the victim's id, with no token or with a token of their own.
    let (_, attacker_token) = app.start_conversation(&ws, None).await;
    for token in [None, Some(attacker_token.as_str())] {
        let stolen = start(
            &app,
            token,
            json!({ "widgetKey": ws.widget_key, "visitorId": victim_id }),
        )
        .await;
        assert_ne!(stolen["visitorId"], victim_id, "a new visitor instead");
        assert!(
            stolen["conversation"]["lead"].is_null(),
            "no lead shown: {stolen}"
        );
        let again = app
            .data(
                Some(stolen["visitorToken"].as_str().expect("token")),
                "query($c: ID!) { conversation(id: $c) { lead { name email } } }",
                json!({ "c": stolen["conversation"]["id"] }),
            )
            .await;
        assert!(again["conversation"]["lead"].is_null(), "{again}");
    }

    // The victim, proving who they are with their token, keeps their lead.
    let token = victim["visitorToken"].as_str().expect("token");
    let returning = start(
        &app,
        Some(token),
        json!({ "widgetKey": ws.widget_key, "visitorId": victim_id }),
    )
    .await;
    assert_eq!(returning["visitorId"], victim_id);
    assert_eq!(
        returning["conversation"]["lead"]["email"],
        "vera@example.com"
    );
}

#[tokio::test]
async fn a_visitor_token_of_another_workspace_proves_nothing() {
    let app = TestApp::spawn().await;
    let acme = app.workspace("Acme").await;
    let other = app.workspace("Other").await;
    let there = start(
        &app,
        None,
        json!({ "widgetKey": other.widget_key, "lead": { "name": "Olga" } }),
    )
    .await;
    let token = there["visitorToken"].as_str().expect("token");
    let here = start(
        &app,
        Some(token),
        json!({ "widgetKey": acme.widget_key, "visitorId": there["visitorId"] }),
    )
    .await;
    assert_ne!(here["visitorId"], there["visitorId"]);
    assert!(here["conversation"]["lead"].is_null());
}
