//! Concurrent sends are committed together on SQLite (one transaction, a savepoint
//! each): every request still gets its own answer, and one that fails takes
//! nothing of its neighbours with it.

use std::collections::BTreeSet;

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code};

const SEND: &str =
    "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id seq body } }";

#[tokio::test]
async fn concurrent_sends_are_answered_alone_and_a_failure_spares_its_neighbours() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Batch").await;
    let (conversation, _) = app.start_conversation(&ws, Some("hello")).await;
    app.take_over(&ws.admin_token, &conversation).await;
    let input = |body: &str, key: Option<&str>| json!({ "input": { "conversationId": conversation, "body": body, "clientMessageId": key } });
    let first = app
        .data(
            Some(&ws.admin_token),
            SEND,
            input("original", Some("key-1")),
        )
        .await["sendMessage"]
        .clone();

    // Fresh messages, reuses of the key for another body (a conflict found inside
    // the writer's transaction), and retries of the first send, all at once.
    let mut requests = Vec::new();
    for i in 0..12 {
        requests.push(("fresh", input(&format!("fresh {i}"), None)));
        if i % 2 == 0 {
            requests.push(("conflict", input(&format!("other {i}"), Some("key-1"))));
        }
        if i % 3 == 0 {
            requests.push(("retry", input("original", Some("key-1"))));
        }
    }
    let answers: Vec<Value> = join_all(
        requests
            .iter()
            .map(|(_, variables)| app.gql(Some(&ws.admin_token), SEND, variables.clone())),
    )
    .await;

    let mut seqs = BTreeSet::new();
    for ((kind, _), answer) in requests.iter().zip(&answers) {
        match *kind {
            "fresh" => {
                assert!(answer.get("errors").is_none(), "{answer}");
                assert!(
                    seqs.insert(answer["data"]["sendMessage"]["seq"].as_i64().expect("seq")),
                    "a seq given twice: {answer}"
                );
            }
            "conflict" => assert_eq!(error_code(answer), "CONFLICT", "{answer}"),
            _ => assert_eq!(
                answer["data"]["sendMessage"]["id"], first["id"],
                "a retry returns the stored message: {answer}"
            ),
        }
    }
    // Gap-free after the first three (hello, who joined, original): the conflicts and retries
    // left no hole.
    let first_seq = first["seq"].as_i64().expect("seq");
    let expected: BTreeSet<i64> = (first_seq + 1..=first_seq + 12).collect();
    assert_eq!(seqs, expected);

    let stored = app
        .data(
            Some(&ws.admin_token),
            "query($c: ID!) { conversation(id: $c) { lastSeq messages(first: 100) { totalCount edges { node { body } } } } }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(stored["conversation"]["lastSeq"], first_seq + 12);
    assert_eq!(stored["conversation"]["messages"]["totalCount"], 15);
    let bodies: Vec<&str> = stored["conversation"]["messages"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["body"].as_str().expect("body"))
        .collect();
    assert!(
        bodies.iter().all(|b| !b.starts_with("other")),
        "a conflicting send was stored: {bodies:?}"
    );
}
