//! API keys do exactly what their scopes say: the AI's key never sees a note,
//! reading keys never write, lead data needs `LEADS_READ`.

use serde_json::{Value, json};

use crate::helpers::{TestApp, Workspace, error_code};
use crate::ws_client::{TRANSPORT_WS, WsClient};

const NOTE: &str = "mutation($c: ID!) { sendMessage(input: { conversationId: $c, body: \"internal: refund them quietly\", internal: true }) { seq } }";

async fn key(app: &TestApp, ws: &Workspace, scopes: &str) -> String {
    app.api_key(ws, scopes).await
}

/// A conversation with a lead, a visitor message, an internal note and a handoff.
async fn conversation_with_a_note(app: &TestApp, ws: &Workspace) -> (String, String) {
    let started = app
        .data(
            None,
            "mutation($k: String!) { startConversation(input: { widgetKey: $k, message: \"my invoice is wrong\", lead: { name: \"Lee\", email: \"lee@example.com\" } }) { conversation { id } visitorToken } }",
            json!({ "k": ws.widget_key }),
        )
        .await["startConversation"]
        .clone();
    let conversation = started["conversation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let visitor = started["visitorToken"].as_str().expect("token").to_owned();
    let handoff = app.request_human(&visitor, &conversation).await;
    app.data(Some(&ws.admin_token), NOTE, json!({ "c": conversation }))
        .await;
    (conversation, handoff)
}

fn bodies(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| m["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn the_ai_key_never_sees_an_internal_note() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    // The strongest case: the AI's key that may also read conversations.
    let ai = key(&app, &ws, "AI_WRITE, CONVERSATIONS_READ").await;
    let mut inbox = WsClient::ready(&app, TRANSPORT_WS, &ai).await;
    inbox
        .subscribe(
            "i",
            "subscription { inbox { kind message { body internal } } }",
            json!({}),
        )
        .await;
    app.listening(1).await;
    let (conversation, handoff) = conversation_with_a_note(&app, &ws).await;
    app.send(&ws.admin_token, &conversation, "a public reply")
        .await;

    let read = app
        .data(
            Some(&ai),
            "query($c: ID!, $h: ID!) { conversation(id: $c) { lastMessage { body } messages { nodes { body } } } handoff(id: $h) { caseFile { transcript { body } } } }",
            json!({ "c": conversation, "h": handoff }),
        )
        .await;
    let messages = bodies(&read["conversation"]["messages"]["nodes"]);
    assert!(
        !messages.iter().any(|b| b.starts_with("internal")),
        "{messages:?}"
    );
    assert!(messages.contains(&"a public reply".to_owned()));
    let transcript = bodies(&read["handoff"]["caseFile"]["transcript"]);
    assert!(
        !transcript.iter().any(|b| b.starts_with("internal")),
        "{transcript:?}"
    );

    // The inbox stream skips the note and goes on to the reply.
    loop {
        let event = inbox.next_data("i").await;
        let message = &event["data"]["inbox"]["message"];
        assert_ne!(message["internal"], true, "{event}");
        if message["body"] == "a public reply" {
            break;
        }
    }

    // An agent and a conversation-reading key do see it.
    let reader = key(&app, &ws, "CONVERSATIONS_READ").await;
    for token in [&ws.admin_token, &reader] {
        let read = app
            .data(
                Some(token),
                "query($c: ID!) { conversation(id: $c) { messages { nodes { body } } } }",
                json!({ "c": conversation }),
            )
            .await;
        assert!(
            bodies(&read["conversation"]["messages"]["nodes"])
                .iter()
                .any(|b| b.starts_with("internal"))
        );
    }
}

#[tokio::test]
async fn a_reading_key_cannot_write() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, _) = conversation_with_a_note(&app, &ws).await;
    let reader = key(&app, &ws, "CONVERSATIONS_READ, LEADS_READ, INSIGHTS_READ").await;
    let writes = [
        "mutation($c: ID!) { captureLead(conversationId: $c, input: { name: \"Mallory\" }) { id } }",
        "mutation($c: ID!) { sendMessage(input: { conversationId: $c, body: \"hi\" }) { seq } }",
        "mutation($c: ID!) { setTyping(conversationId: $c, typing: true) }",
        "mutation($c: ID!) { resolveConversation(conversationId: $c) { status } }",
        "mutation($c: ID!) { requestHuman(conversationId: $c) { id } }",
    ];
    for write in writes {
        let body = app
            .gql(Some(&reader), write, json!({ "c": conversation }))
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{write}: {body}");
    }
    let lead = app
        .data(
            Some(&ws.admin_token),
            "query($c: ID!) { conversation(id: $c) { status lead { name } } }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(
        lead["conversation"]["lead"]["name"], "Lee",
        "nothing was written"
    );
    assert_eq!(lead["conversation"]["status"], "QUEUED");
}

#[tokio::test]
async fn lead_data_needs_leads_read() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, handoff) = conversation_with_a_note(&app, &ws).await;
    let query = "query($c: ID!, $h: ID!) { conversation(id: $c) { lead { name email } } handoff(id: $h) { caseFile { lead { email } } } }";
    let vars = json!({ "c": conversation, "h": handoff });
    let export = |token: String| {
        let request = app
            .client
            .get(app.url("/export/conversations.csv"))
            .bearer_auth(token);
        async move {
            request
                .send()
                .await
                .expect("sent")
                .text()
                .await
                .expect("csv")
        }
    };

    let without = key(&app, &ws, "CONVERSATIONS_READ").await;
    let read = app.data(Some(&without), query, vars.clone()).await;
    assert!(read["conversation"]["lead"].is_null(), "{read}");
    assert!(read["handoff"]["caseFile"]["lead"].is_null(), "{read}");
    let csv = export(without).await;
    assert!(
        !csv.contains("lee@example.com") && !csv.contains("Lee"),
        "{csv}"
    );

    let with = key(&app, &ws, "CONVERSATIONS_READ, LEADS_READ").await;
    let read = app.data(Some(&with), query, vars).await;
    assert_eq!(read["conversation"]["lead"]["email"], "lee@example.com");
    assert_eq!(
        read["handoff"]["caseFile"]["lead"]["email"],
        "lee@example.com"
    );
    assert!(export(with).await.contains("lee@example.com"));
}
