//! How conversations end and who holds them (issue 15): an agent's reply takes a
//! chat from the AI, the visitor confirms an answer, the AI and the clock resolve.

use serde_json::json;

use crate::handoffs::{messages, thread, with_docs};
use crate::helpers::TestApp;

const HOLDER: &str = "query($c: ID!) { conversation(id: $c) { status assignee { id } \
    openHandoff { reason status acceptedBy { id } } } }";

#[tokio::test]
async fn an_agents_public_reply_takes_the_chat_from_the_ai_and_a_note_does_not() {
    let app = TestApp::spawn().await;
    let ws = with_docs(&app).await;
    let (agent_id, agent) = app.agent(&ws, "Alex", "AGENT").await;
    let (conversation, visitor) = app
        .start_conversation(&ws, Some("How do I schedule a draft?"))
        .await;
    assert_eq!(thread(&app, &visitor, &conversation).await["status"], "AI");

    // An internal note leaves the AI in charge.
    app.data(
        Some(&agent),
        "mutation($c: ID!) { sendMessage(input: { conversationId: $c, body: \"checking\", internal: true }) { id } }",
        json!({ "c": conversation }),
    )
    .await;
    let noted = app
        .data(Some(&agent), HOLDER, json!({ "c": conversation }))
        .await;
    assert_eq!(noted["conversation"]["status"], "AI");
    assert_eq!(noted["conversation"]["openHandoff"], json!(null));

    let reply = app
        .send(&agent, &conversation, "Hi, Alex here: let me help.")
        .await;
    assert_eq!(reply["author"], "AGENT");
    let held = app
        .data(Some(&agent), HOLDER, json!({ "c": conversation }))
        .await;
    assert_eq!(
        held["conversation"],
        json!({ "status": "HUMAN", "assignee": { "id": agent_id },
                "openHandoff": { "reason": "AGENT_TAKEOVER", "status": "ACCEPTED", "acceptedBy": { "id": agent_id } } })
    );

    // The visitor sees who joined, before the reply; the AI answers no more.
    app.send(
        &visitor,
        &conversation,
        "How do I restore an older revision?",
    )
    .await;
    let seen = messages(&thread(&app, &visitor, &conversation).await);
    let bodies: Vec<&str> = seen.iter().filter_map(|m| m["body"].as_str()).collect();
    let joined = bodies
        .iter()
        .position(|b| *b == "Alex joined the conversation.")
        .expect("a joined message");
    let replied = bodies
        .iter()
        .position(|b| *b == "Hi, Alex here: let me help.")
        .expect("the reply");
    assert!(joined < replied, "{bodies:?}");
    assert_eq!(seen.last().expect("message")["author"], "VISITOR");
    assert_eq!(
        seen.iter().filter(|m| m["author"] == "AI").count(),
        1,
        "only the answer from before the reply: {seen:#?}"
    );
}
