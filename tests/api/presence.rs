//! Who is online: agents set ONLINE or AWAY, count as OFFLINE without an open
//! socket, and every change reaches the inbox once.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, fresh_database, test_config};
use crate::ws_client::{TRANSPORT_WS, WsClient};

const INBOX: &str = "subscription($a: String) { inbox(after: $a) { kind availability agent { id } conversation { id } } }";
const SET: &str =
    "mutation($s: AvailabilityStatus!) { setAvailability(status: $s) { id availability } }";

/// `agent`'s availability as the admin reads it.
async fn availability(app: &TestApp, admin: &str, agent: &str) -> Value {
    let agents = app
        .data(Some(admin), "{ agents { id availability } }", json!({}))
        .await;
    agents["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["id"] == agent)
        .map(|a| a["availability"].clone())
        .expect("the agent")
}

/// The next availability change of `agent` on the inbox subscription "i".
async fn next_change(client: &mut WsClient, agent: &str) -> Value {
    loop {
        let event = client.next_data("i").await;
        let inbox = &event["data"]["inbox"];
        if inbox["kind"] == "AGENT_AVAILABILITY_CHANGED" && inbox["agent"]["id"] == agent {
            assert_eq!(inbox["conversation"], Value::Null, "{event}");
            return inbox["availability"].clone();
        }
    }
}

#[tokio::test]
async fn availability_follows_what_agents_set_and_their_sockets() {
    let (url, dir) = fresh_database().await;
    let mut config = test_config(&url);
    config.presence_timeout = Duration::from_secs(2);
    let app = TestApp::spawn_with(config, dir).await;
    let ws = app.workspace("Acme").await;
    let (alex, alex_token) = app.agent(&ws, "Alex", "AGENT").await;
    assert_eq!(availability(&app, &ws.admin_token, &alex).await, "OFFLINE");

    // The admin watches the inbox from the first event on (a subscription is not
    // acknowledged: it is live once it replayed the conversation's message).
    let (conversation, _) = app.start_conversation(&ws, Some("hello")).await;
    let first = app
        .data(
            Some(&ws.admin_token),
            "{ events(first: 1) { edges { cursor } } }",
            json!({}),
        )
        .await["events"]["edges"][0]["cursor"]
        .clone();
    let mut watcher = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    watcher.subscribe("i", INBOX, json!({ "a": first })).await;
    loop {
        let event = watcher.next_data("i").await;
        if event["data"]["inbox"]["conversation"]["id"] == conversation.as_str() {
            break;
        }
    }

    // Set without a socket: stored, still OFFLINE, nothing announced.
    let set = app
        .data(Some(&alex_token), SET, json!({ "s": "AWAY" }))
        .await;
    assert_eq!(set["setAvailability"]["availability"], "OFFLINE");

    // A socket opens: AWAY, announced.
    let socket = WsClient::ready(&app, TRANSPORT_WS, &alex_token).await;
    assert_eq!(next_change(&mut watcher, &alex).await, "AWAY");
    assert_eq!(availability(&app, &ws.admin_token, &alex).await, "AWAY");

    let set = app
        .data(Some(&alex_token), SET, json!({ "s": "ONLINE" }))
        .await;
    assert_eq!(set["setAvailability"]["availability"], "ONLINE");
    assert_eq!(next_change(&mut watcher, &alex).await, "ONLINE");

    // The socket closes: OFFLINE once the timeout passes, announced once.
    drop(socket);
    assert_eq!(next_change(&mut watcher, &alex).await, "OFFLINE");
    assert_eq!(availability(&app, &ws.admin_token, &alex).await, "OFFLINE");
    assert!(
        watcher
            .recv_within(Duration::from_millis(1500))
            .await
            .is_none_or(|event| {
                event["payload"]["data"]["inbox"]["agent"]["id"] != alex.as_str()
            }),
        "announced once"
    );

    let refused = app
        .gql(Some(&alex_token), SET, json!({ "s": "OFFLINE" }))
        .await;
    assert_eq!(crate::helpers::error_code(&refused), "BAD_USER_INPUT");
    let visitor = app.start_conversation(&ws, None).await.1;
    let by_visitor = app.gql(Some(&visitor), SET, json!({ "s": "ONLINE" })).await;
    assert_eq!(crate::helpers::error_code(&by_visitor), "FORBIDDEN");
}
