//! The inbox under writes: a page asked for after a write's response was received
//! shows that write, counts included (`totalCount` is served from a cache that each
//! commit invalidates before it is answered).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::helpers::TestApp;

/// What the writer has had answered so far.
#[derive(Default)]
struct Acked {
    started: AtomicU64,
    assigned: AtomicU64,
    /// The newest message answered: its conversation and `seq`.
    message: Mutex<Option<(String, i64)>>,
}

const PAGE: &str = "query($agent: ID!) {
  all: conversations(first: 100, orderBy: RECENTLY_UPDATED) {
    totalCount
    edges { node { id lastMessage { seq } } }
  }
  mine: conversations(first: 100, filter: { assigneeId: $agent }) { totalCount }
}";

#[tokio::test]
async fn no_inbox_page_is_older_than_a_write_answered_before_it_was_asked_for() {
    let app = Arc::new(TestApp::spawn().await);
    let ws = app.workspace("Consistent").await;
    let (agent_id, agent) = app.agent(&ws, "Reader", "AGENT").await;
    let acked = Arc::new(Acked::default());
    let mut conversations = Vec::new();
    for i in 0..5 {
        conversations.push(
            app.start_conversation(&ws, Some(&format!("first {i}")))
                .await
                .0,
        );
        acked.started.fetch_add(1, Ordering::SeqCst);
    }
    let done = Arc::new(AtomicBool::new(false));

    // Pages, each checked against what was acknowledged before it was asked for.
    let reader = {
        let (app, acked, done, agent, agent_id) = (
            Arc::clone(&app),
            Arc::clone(&acked),
            Arc::clone(&done),
            agent.clone(),
            agent_id.clone(),
        );
        tokio::spawn(async move {
            let mut pages = 0;
            while !done.load(Ordering::SeqCst) || pages < 10 {
                let started = acked.started.load(Ordering::SeqCst);
                let assigned = acked.assigned.load(Ordering::SeqCst);
                let message = acked.message.lock().await.clone();
                let page = app
                    .data(Some(&agent), PAGE, json!({ "agent": agent_id }))
                    .await;
                let total = page["all"]["totalCount"].as_u64().expect("count");
                assert!(
                    total >= started,
                    "page {pages}: {total} conversations listed after {started} were started"
                );
                let mine = page["mine"]["totalCount"].as_u64().expect("count");
                assert!(
                    mine >= assigned,
                    "page {pages}: {mine} assigned listed after {assigned} assignments"
                );
                if let Some((conversation, seq)) = message {
                    let edges = page["all"]["edges"].as_array().expect("edges");
                    let shown = edges
                        .iter()
                        .find(|e| e["node"]["id"] == conversation.as_str())
                        .and_then(|e| e["node"]["lastMessage"]["seq"].as_i64());
                    assert!(
                        shown.is_some_and(|shown| shown >= seq),
                        "page {pages}: {conversation} shows last message {shown:?} after message {seq} was answered"
                    );
                }
                pages += 1;
            }
            pages
        })
    };

    // Writes: new conversations, replies, assignments, each acknowledged once its
    // response is in.
    for round in 0..30 {
        match round % 3 {
            0 => {
                let (id, _) = app.start_conversation(&ws, Some("another")).await;
                conversations.push(id);
                acked.started.fetch_add(1, Ordering::SeqCst);
            }
            1 => {
                let conversation = &conversations[round % conversations.len()];
                let sent: Value = app.send(&agent, conversation, "On it").await;
                let seq = sent["seq"].as_i64().expect("seq");
                *acked.message.lock().await = Some((conversation.clone(), seq));
            }
            _ => {
                let conversation = &conversations[round / 3];
                app.data(
                    Some(&ws.admin_token),
                    "mutation($c: ID!, $a: ID) { assignConversation(conversationId: $c, agentId: $a) { id } }",
                    json!({ "c": conversation, "a": agent_id }),
                )
                .await;
                acked.assigned.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    done.store(true, Ordering::SeqCst);
    let pages = reader.await.expect("reader");
    assert!(pages >= 10, "{pages} pages read");
}
