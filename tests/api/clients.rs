//! Real third-party clients and real server processes.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{TIMEOUT, TestApp, fresh_database};
use crate::ws_client::{TRANSPORT_WS, WsClient};

const NODE_CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");

/// Fail, saying what to install, unless Node.js and the npm packages of
/// `tests/node` are there.
pub(crate) fn require_node_clients() {
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|out| out.status.success()),
        "Node.js is not installed: the npm graphql-ws client test cannot run"
    );
    assert!(
        std::path::Path::new(NODE_CLIENTS)
            .join("node_modules/graphql-ws")
            .exists(),
        "run `npm ci --prefix tests/node` to test with the npm graphql-ws client"
    );
}

#[tokio::test]
#[ignore = "needs Node.js and `npm ci --prefix tests/node`; run with --ignored"]
async fn npm_graphql_ws_client_subscribes_and_sees_errors() {
    require_node_clients();
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let output = tokio::time::timeout(
        TIMEOUT,
        Command::new("node")
            .arg("graphql_ws_client.mjs")
            .current_dir(NODE_CLIENTS)
            .env("CASEFILE_URL", format!("http://{}", app.running.addr))
            .env("WIDGET_KEY", &ws.widget_key)
            .output(),
    )
    .await
    .expect("node finishes in time")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "node client failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(
        report["seen"],
        json!([
            { "seq": 1, "author": "VISITOR", "body": "hello from node" },
            { "seq": 2, "author": "VISITOR", "body": "second" }
        ])
    );
    assert_eq!(report["refused"], "NOT_FOUND");
}

/// A `casefile serve` process on `database_url`, and the address it serves on.
pub async fn serve_process(database_url: &str) -> (Child, String) {
    serve_process_with(database_url, &[]).await
}

/// A `casefile serve` process on `database_url` with `env` set besides, and the
/// address it serves on, once it said so.
pub async fn serve_process_with(database_url: &str, env: &[(&str, &str)]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_casefile"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", database_url)
        .envs(env.iter().copied())
        .env("CASEFILE_JWT_SECRET", crate::helpers::TEST_SECRET)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("casefile starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = tokio::time::timeout(TIMEOUT, async {
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            if let Some(rest) = line.split("serving on http://").nth(1) {
                let addr = rest.split("/graphql").next().unwrap_or(rest);
                return addr.to_owned();
            }
        }
        panic!("casefile exited before serving");
    })
    .await
    .expect("casefile serves in time");
    // Keep draining its logs so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

/// A workspace made by `casefile workspace create` on the database `url` (owner
/// `owner@acme.test`, signed with the tests' secret): what the CLI printed.
pub async fn workspace_by_cli(url: &str) -> Value {
    let created = crate::startup::create_workspace(url, "owner@acme.test")
        .args(["--admin-password", "correct horse battery"])
        .env("CASEFILE_JWT_SECRET", crate::helpers::TEST_SECRET)
        .output()
        .await
        .expect("the CLI runs");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    serde_json::from_slice(&created.stdout).expect("exactly one JSON object")
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set CASEFILE_TEST_DATABASE_URL and run with --ignored"]
async fn two_processes_on_one_postgres_database_share_events() {
    crate::helpers::require_postgres();
    let (url, _) = fresh_database().await;
    let created = workspace_by_cli(&url).await;
    let token = created["adminToken"].as_str().expect("token");

    let (_a, addr_a) = serve_process(&url).await;
    let (_b, addr_b) = serve_process(&url).await;
    let client = reqwest::Client::new();
    let post = |addr: &str, query: Value| {
        client
            .post(format!("http://{addr}/graphql"))
            .bearer_auth(token)
            .json(&query)
            .send()
    };
    let started: Value = post(
        &addr_a,
        json!({ "query": "mutation($k: String!) { startConversation(input: { widgetKey: $k }) { conversation { id } } }", "variables": { "k": created["widgetKey"] } }),
    )
    .await
    .expect("sent")
    .json()
    .await
    .expect("json");
    let conversation = started["data"]["startConversation"]["conversation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // The owner takes the chat (its first reply would): who joined is message 1.
    let taken = post(
        &addr_a,
        json!({ "query": "mutation($c: ID!) { takeOver(conversationId: $c) { id } }", "variables": { "c": conversation } }),
    )
    .await
    .expect("sent");
    assert!(taken.status().is_success());

    // The inbox resumes after the takeover's events, read on A: B's listener may
    // still be delivering them when its subscription starts. The log shows a
    // transaction once none older is still open (another process's sweep may
    // be), so A is asked until the takeover's events are there.
    let last = tokio::time::timeout(crate::helpers::TIMEOUT, async {
        loop {
            let events: Value = post(
                &addr_a,
                json!({ "query": "query($c: ID!) { events(first: 100, conversationId: $c) { edges { cursor node { type } } } }", "variables": { "c": conversation } }),
            )
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
            let edges = events["data"]["events"]["edges"]
                .as_array()
                .expect("edges")
                .clone();
            if edges.iter().any(|e| e["node"]["type"] == "MESSAGE_CREATED") {
                return edges.last().expect("an event")["cursor"].clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the takeover's events show in the log");

    // Subscribe on B; write on A.
    let mut subscriber = WsClient::ready_at(&addr_b, TRANSPORT_WS, token).await;
    subscriber
        .subscribe(
            "m",
            "subscription($c: ID!) { messages(conversationId: $c) { seq body } }",
            json!({ "c": conversation }),
        )
        .await;
    subscriber
        .subscribe(
            "inbox",
            "subscription($a: String) { inbox(after: $a) { kind conversation { id } } }",
            json!({ "a": last }),
        )
        .await;
    for body in ["sent to A", "also to A"] {
        let sent = post(
            &addr_a,
            json!({ "query": "mutation($c: ID!, $b: String!) { sendMessage(input: { conversationId: $c, body: $b }) { seq } }", "variables": { "c": conversation, "b": body } }),
        )
        .await
        .expect("sent");
        assert!(sent.status().is_success());
    }
    let mut messages = Vec::new();
    let mut inbox = Vec::new();
    while messages.len() < 3 || inbox.len() < 2 {
        let message = subscriber.recv().await;
        let payload = message["payload"]["data"].clone();
        match message["id"].as_str() {
            Some("m") => messages.push(payload["messages"].clone()),
            // The owner's socket opening makes it available: not what this counts.
            Some("inbox") if payload["inbox"]["kind"] == "AGENT_AVAILABILITY_CHANGED" => {}
            Some("inbox") => inbox.push(payload["inbox"]["kind"].clone()),
            _ => panic!("unexpected {message}"),
        }
    }
    assert_eq!(
        messages,
        [
            json!({ "seq": 1, "body": "owner joined the conversation." }),
            json!({ "seq": 2, "body": "sent to A" }),
            json!({ "seq": 3, "body": "also to A" })
        ]
    );
    assert_eq!(inbox, [json!("MESSAGE_CREATED"), json!("MESSAGE_CREATED")]);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set CASEFILE_TEST_DATABASE_URL and run with --ignored"]
async fn a_dropped_listener_connection_is_recovered_from_the_database() {
    use sea_orm::ConnectionTrait;
    crate::helpers::require_postgres();
    let (url, _) = fresh_database().await;
    let a = TestApp::spawn_with(crate::helpers::test_config(&url), None).await;
    let b = TestApp::spawn_with(crate::helpers::test_config(&url), None).await;
    let ws = a.workspace("Acme").await;
    let (conversation, visitor) = a.start_conversation(&ws, Some("first")).await;
    let mut subscriber = WsClient::ready(&b, TRANSPORT_WS, &ws.admin_token).await;
    subscriber
        .subscribe(
            "m",
            "subscription($c: ID!) { messages(conversationId: $c) { seq body } }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(
        subscriber.next_data("m").await["data"]["messages"]["seq"],
        1
    );

    // Drop every listening connection of the database; notifications sent until
    // they reconnect are lost, and subscribers must catch up from the database.
    a.running
        .state
        .db
        .writer
        .execute_unprepared(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
        )
        .await
        .expect("listeners terminated");
    a.send(&visitor, &conversation, "sent while B was deaf")
        .await;
    a.send(&visitor, &conversation, "and another").await;
    let bodies = [
        subscriber.next_data("m").await,
        subscriber.next_data("m").await,
    ]
    .map(|p| {
        p["data"]["messages"]["body"]
            .as_str()
            .expect("body")
            .to_owned()
    });
    assert_eq!(bodies, ["sent while B was deaf", "and another"]);
}
