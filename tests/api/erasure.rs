//! Erasing a person (`eraseContact`) and the workspace's retention: afterwards no
//! API, CSV, event, webhook or case file returns anything they said or were, while
//! the counts insights need stay.

use std::sync::atomic::Ordering;

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{TestApp, Workspace, error_code};
use crate::webhooks::{CREATE, Receiver, body, serve};

/// Markers of what the person gave away, each in a different place.
const NAME: &str = "Zelda Quaintance";
const EMAIL: &str = "zelda.quaintance@example.org";
const COMPANY: &str = "Quaintance Widgets";
const IN_MESSAGE: &str = "my order QX-99812";
const IN_CONTEXT: &str = "https://example.com/account/qx-context";
const IN_FIELD: &str = "Drupal-QX";
const IN_NOTE: &str = "QX handoff note";
const IN_COMMENT: &str = "QX rating comment";

const MARKERS: [&str; 8] = [
    NAME, EMAIL, COMPANY, IN_MESSAGE, IN_CONTEXT, IN_FIELD, IN_NOTE, IN_COMMENT,
];

/// The markers `text` still holds.
fn leaks(text: &str) -> Vec<&'static str> {
    let text = text.to_lowercase();
    MARKERS
        .into_iter()
        .filter(|m| text.contains(&m.to_lowercase()))
        .collect()
}

/// A conversation in which the person gave every marker away: a message, the
/// page they were on, their lead with a custom field, an agent's reply quoting
/// them, an internal note, a handoff note and a rating comment. Its id, the
/// lead's id and the visitor's token.
async fn a_person_talks(app: &TestApp, ws: &Workspace) -> (String, String, String) {
    app.data(
        Some(&ws.admin_token),
        "mutation { defineLeadField(input: { key: \"cms\", label: \"CMS\", type: TEXT }) { id } }",
        json!({}),
    )
    .await;
    let started = app
        .data(
            None,
            "mutation($input: StartConversationInput!) { startConversation(input: $input) { conversation { id } visitorToken } }",
            json!({ "input": {
                "widgetKey": ws.widget_key,
                "message": format!("Hello, {IN_MESSAGE} never arrived"),
                "context": { "pageUrl": IN_CONTEXT },
            } }),
        )
        .await;
    let conversation = started["startConversation"]["conversation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let visitor = started["startConversation"]["visitorToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let lead = app
        .data(
            Some(&visitor),
            "mutation($c: ID!, $input: LeadInput!) { captureLead(conversationId: $c, input: $input) { id } }",
            json!({ "c": conversation, "input": { "name": NAME, "email": EMAIL, "company": COMPANY, "fields": { "cms": IN_FIELD } } }),
        )
        .await["captureLead"]["id"]
        .as_str()
        .expect("lead id")
        .to_owned();
    app.data(
        Some(&visitor),
        "mutation($c: ID!, $note: String) { requestHuman(conversationId: $c, note: $note) { id } }",
        json!({ "c": conversation, "note": IN_NOTE }),
    )
    .await;
    app.send(
        &ws.admin_token,
        &conversation,
        &format!("Hi {NAME}, looking at {IN_MESSAGE}"),
    )
    .await;
    app.data(
        Some(&ws.admin_token),
        "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }",
        json!({ "input": { "conversationId": conversation, "body": format!("note: {EMAIL}"), "internal": true } }),
    )
    .await;
    app.data(
        Some(&ws.admin_token),
        "mutation($c: ID!) { resolveConversation(conversationId: $c) { id } }",
        json!({ "c": conversation }),
    )
    .await;
    app.data(
        Some(&visitor),
        "mutation($c: ID!, $comment: String) { rateConversation(conversationId: $c, score: 2, comment: $comment) { score } }",
        json!({ "c": conversation, "comment": IN_COMMENT }),
    )
    .await;
    (conversation, lead, visitor)
}

/// Everything the API answers about the conversation and its lead, as text.
async fn everything(app: &TestApp, ws: &Workspace, conversation: &str, lead: &str) -> String {
    let read = app
        .data(
            Some(&ws.admin_token),
            "query($c: ID!, $l: ID!) {
               conversation(id: $c) {
                 visitorId erasedAt
                 messages(first: 100) { nodes { body } }
                 handoffs { note caseFile { summary question context transcript { body } lead { name email company fields } } }
               }
               lead(id: $l) { name email company fields erasedAt }
               leads(first: 100) { nodes { id email } }
               events(first: 500) { edges { node { type message { body } conversation { visitorId } handoff { note } } } }
               exportContact(leadId: $l)
             }",
            json!({ "c": conversation, "l": lead }),
        )
        .await;
    let mut text = read.to_string();
    for path in ["/export/leads.csv", "/export/conversations.csv"] {
        let csv = app
            .client
            .get(app.url(path))
            .bearer_auth(&ws.admin_token)
            .send()
            .await
            .expect("export")
            .text()
            .await
            .expect("csv");
        text.push_str(&csv);
    }
    text
}

#[tokio::test]
async fn erasing_a_contact_leaves_nothing_of_them_anywhere() {
    let app = serve(10, 600_000).await;
    let ws = app.workspace("Erasures").await;
    // A receiver that is down until the erasure: every delivery is still pending.
    let receiver = Receiver::start(503).await;
    app.data(
        Some(&ws.admin_token),
        CREATE,
        json!({ "input": { "url": receiver.url, "eventTypes": ["MESSAGE_CREATED", "HANDOFF_REQUESTED", "CONTACT_ERASED"] } }),
    )
    .await;
    let (conversation, lead, _visitor) = a_person_talks(&app, &ws).await;
    // Someone else's conversation is left alone.
    let (other, _) = app.start_conversation(&ws, Some("QX-other is fine")).await;
    let before = everything(&app, &ws, &conversation, &lead).await;
    assert_eq!(
        leaks(&before).len(),
        MARKERS.len(),
        "every marker is there before"
    );
    receiver.until(|got| !got.is_empty()).await;

    // Owners and admins only.
    let (_, agent) = app.agent(&ws, "Ana", "AGENT").await;
    let key = app.api_key(&ws, "LEADS_READ, CONVERSATIONS_READ").await;
    const ERASE: &str = "mutation($l: ID!) { eraseContact(leadId: $l) { conversations messages lead { id name email erasedAt } } }";
    for token in [&agent, &key] {
        let refused = app.gql(Some(token), ERASE, json!({ "l": lead })).await;
        assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    }

    let erased = app
        .data(Some(&ws.admin_token), ERASE, json!({ "l": lead }))
        .await["eraseContact"]
        .clone();
    assert_eq!(erased["conversations"], 1);
    assert!(erased["messages"].as_i64().expect("count") >= 4, "{erased}");
    assert_eq!(erased["lead"]["name"], Value::Null);
    assert!(erased["lead"]["erasedAt"].is_string());

    let after = everything(&app, &ws, &conversation, &lead).await;
    assert_eq!(
        leaks(&after),
        Vec::<&str>::new(),
        "nothing is left: {after}"
    );
    assert!(after.contains("[erased]"), "messages read as erased");
    // The counts stay: the conversation, its messages and handoff, its rating.
    let kept = app
        .data(
            Some(&ws.admin_token),
            "query($c: ID!, $o: ID!) {
               conversation(id: $c) { status erasedAt messages(first: 100) { nodes { seq author } } handoffs { reason requestedAt } }
               other: conversation(id: $o) { erasedAt messages(first: 10) { nodes { body } } }
             }",
            json!({ "c": conversation, "o": other }),
        )
        .await;
    assert_eq!(kept["conversation"]["status"], "RESOLVED");
    assert!(kept["conversation"]["erasedAt"].is_string());
    assert!(
        kept["conversation"]["messages"]["nodes"]
            .as_array()
            .expect("messages")
            .len()
            >= 4
    );
    assert_eq!(
        kept["conversation"]["handoffs"]
            .as_array()
            .expect("handoffs")
            .len(),
        1
    );
    assert_eq!(kept["other"]["erasedAt"], Value::Null);
    assert_eq!(
        kept["other"]["messages"]["nodes"][0]["body"],
        "QX-other is fine"
    );

    // The deliveries pending since before the erasure carry none of it, and the
    // erasure itself arrives, with ids only.
    receiver.status.store(200, Ordering::SeqCst);
    let got = receiver
        .until(|got| got.iter().any(|r| body(r)["type"] == "CONTACT_ERASED"))
        .await;
    let late: Vec<_> = got
        .iter()
        .skip_while(|r| !r.body.contains("[erased]"))
        .collect();
    assert!(
        !late.is_empty(),
        "pending deliveries were re-read after the erasure"
    );
    for received in &late {
        assert_eq!(
            leaks(&received.body),
            Vec::<&str>::new(),
            "{}",
            received.body
        );
    }
    let event = got
        .iter()
        .map(body)
        .find(|b| b["type"] == "CONTACT_ERASED")
        .expect("the erasure is delivered");
    assert_eq!(event["erasure"]["leadId"], lead);
    assert_eq!(event["erasure"]["conversationIds"], json!([conversation]));

    // It is in the audit log, and an unknown lead is NOT_FOUND.
    let audit = app
        .data(
            Some(&ws.admin_token),
            "{ auditLog(first: 5, actions: [CONTACT_ERASED]) { nodes { action objectType objectId actorId } } }",
            json!({}),
        )
        .await;
    assert_eq!(audit["auditLog"]["nodes"][0]["objectId"], lead);
    assert_eq!(audit["auditLog"]["nodes"][0]["actorId"], ws.admin_id);
    let missing = app
        .gql(
            Some(&ws.admin_token),
            ERASE,
            json!({ "l": "lead_01ARZ3NDEKTSV4RRFFQ69G5FAV" }),
        )
        .await;
    assert_eq!(error_code(&missing), "NOT_FOUND");
}

#[tokio::test]
async fn the_retention_sweep_erases_conversations_resolved_long_ago() {
    let (url, dir) = crate::helpers::fresh_database().await;
    let mut config = crate::helpers::test_config(&url);
    config.sweep_every = std::time::Duration::from_millis(50);
    let app = TestApp::spawn_with(config, dir).await;
    let ws = app.workspace("Retention").await;
    const SET: &str =
        "mutation($d: Int) { updateWorkspace(input: { retentionDays: $d }) { retentionDays } }";
    for bad in [0, -1, 3651] {
        let refused = app
            .gql(Some(&ws.admin_token), SET, json!({ "d": bad }))
            .await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{bad}: {refused}");
    }
    let (old, lead, _) = a_person_talks(&app, &ws).await;
    let (recent, _) = app
        .start_conversation(&ws, Some("resolved today, kept"))
        .await;
    app.data(
        Some(&ws.admin_token),
        "mutation($c: ID!) { resolveConversation(conversationId: $c) { id } }",
        json!({ "c": recent }),
    )
    .await;
    // `old` was resolved 40 days ago.
    let forty_days_ago = chrono::Utc::now().timestamp_millis() - 40 * 86_400_000;
    app.running
        .state
        .db
        .writer
        .execute_unprepared(&format!(
            "UPDATE conversations SET resolved_at = {forty_days_ago} WHERE id = '{old}'"
        ))
        .await
        .expect("backdate");
    let set = app
        .data(Some(&ws.admin_token), SET, json!({ "d": 30 }))
        .await;
    assert_eq!(set["updateWorkspace"]["retentionDays"], 30);

    const READ: &str = "query($c: ID!, $r: ID!, $l: ID!) {
        old: conversation(id: $c) { erasedAt messages(first: 100) { nodes { body } } }
        recent: conversation(id: $r) { erasedAt }
        lead(id: $l) { email erasedAt }
    }";
    let read = tokio::time::timeout(crate::helpers::TIMEOUT, async {
        loop {
            let read = app
                .data(
                    Some(&ws.admin_token),
                    READ,
                    json!({ "c": old, "r": recent, "l": lead }),
                )
                .await;
            if read["old"]["erasedAt"].is_string() {
                return read;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the sweep erases the old conversation");
    assert_eq!(leaks(&read.to_string()), Vec::<&str>::new(), "{read}");
    assert_eq!(
        read["recent"]["erasedAt"],
        Value::Null,
        "a recent one stays"
    );
    assert!(
        read["lead"]["erasedAt"].is_string(),
        "its lead had no other conversation"
    );
    let audit = app
        .data(
            Some(&ws.admin_token),
            "{ auditLog(first: 5, actions: [CONVERSATION_ERASED]) { nodes { objectId actor { id } address } } }",
            json!({}),
        )
        .await;
    let entry = &audit["auditLog"]["nodes"][0];
    assert_eq!(entry["objectId"], old);
    assert_eq!(entry["actor"], Value::Null, "the server did it");
}
