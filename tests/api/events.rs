//! The event log: the `events` query, and subscriptions that resume by cursor with
//! exactly what they missed, then go live.

use serde_json::{Value, json};

use crate::helpers::{TestApp, Workspace, error_code, fresh_database, test_config};
use crate::ws_client::{TRANSPORT_WS, WsClient};

const EVENTS: &str = "query($after: String, $first: Int, $types: [EventType!], $c: ID) { events(after: $after, first: $first, types: $types, conversationId: $c) { edges { cursor node { id cursor type occurredAt conversation { id status } message { body internal } handoff { id status } } } pageInfo { hasNextPage endCursor } } }";

const INBOX: &str = "subscription($after: String) { inbox(after: $after) { kind cursor conversation { id } message { body } } }";

const ESCALATIONS: &str =
    "subscription($after: String) { escalations(after: $after) { id cursor conversation { id } } }";

const CONVERSATION_EVENTS: &str = "subscription($c: ID!, $after: String) { conversationEvents(conversationId: $c, after: $after) { __typename ... on ConversationAssigned { cursor assignee { id } } ... on ConversationStatusChanged { cursor status } ... on HandoffChanged { cursor handoff { status } } } }";

/// Every event of the workspace readable by `token`, through every page.
async fn all_events(app: &TestApp, token: &str, after: Option<&str>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = after.map(str::to_owned);
    loop {
        let data = app
            .data(Some(token), EVENTS, json!({ "after": after, "first": 3 }))
            .await;
        let page = &data["events"];
        out.extend(page["edges"].as_array().expect("edges").iter().cloned());
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            return out;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
}

/// Every event readable by `token`, once `done` holds of them. On PostgreSQL the
/// log shows an event once no older transaction can still commit before it, which
/// a test of another database on the same server can delay by a moment.
async fn events_once(app: &TestApp, token: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    tokio::time::timeout(crate::helpers::TIMEOUT, async {
        loop {
            let events = all_events(app, token, None).await;
            if done(&events) {
                return events;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the events show in time")
}

fn has(events: &[Value], kind: &str, count: usize) -> bool {
    events.iter().filter(|e| e["node"]["type"] == kind).count() >= count
}

/// The cursor of the newest event, once `count` events of type `kind` show.
async fn cursor_once(app: &TestApp, ws: &Workspace, kind: &str, count: usize) -> String {
    let events = events_once(app, &ws.admin_token, |e| has(e, kind, count)).await;
    events
        .last()
        .map(|e| e["cursor"].as_str().expect("cursor").to_owned())
        .expect("some event")
}

#[tokio::test]
async fn events_pages_in_order_with_types_and_conversation_filters() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (first, visitor) = app.start_conversation(&ws, Some("one")).await;
    let (second, _) = app.start_conversation(&ws, Some("two")).await;
    for body in ["a", "b", "c"] {
        app.send(&visitor, &first, body).await;
    }
    app.request_human(&ws.admin_token, &second).await;
    app.settle().await;

    let events = events_once(&app, &ws.admin_token, |e| has(e, "HANDOFF_REQUESTED", 1)).await;
    let cursors: Vec<&str> = events
        .iter()
        .map(|e| e["cursor"].as_str().expect("cursor"))
        .collect();
    let mut sorted = cursors.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        cursors, sorted,
        "strictly increasing, no duplicate across pages"
    );
    assert!(events.iter().all(|e| e["cursor"] == e["node"]["cursor"]));
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["node"]["type"].as_str().expect("type"))
        .collect();
    assert_eq!(&types[..2], ["CONVERSATION_OPENED", "MESSAGE_CREATED"]);
    assert!(types.contains(&"HANDOFF_REQUESTED"), "{types:?}");
    let bodies: Vec<&str> = events
        .iter()
        .filter_map(|e| e["node"]["message"]["body"].as_str())
        .collect();
    assert_eq!(bodies[..5], ["one", "two", "a", "b", "c"]);

    let only = app
        .data(
            Some(&ws.admin_token),
            EVENTS,
            json!({ "types": ["HANDOFF_REQUESTED"], "first": 10 }),
        )
        .await;
    let handoffs = only["events"]["edges"].as_array().expect("edges");
    assert_eq!(handoffs.len(), 1);
    assert_eq!(handoffs[0]["node"]["conversation"]["id"], second);
    assert_eq!(handoffs[0]["node"]["handoff"]["status"], "REQUESTED");

    let of_first = app
        .data(
            Some(&ws.admin_token),
            EVENTS,
            json!({ "c": first, "types": ["MESSAGE_CREATED"], "first": 10 }),
        )
        .await;
    let bodies: Vec<&Value> = of_first["events"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"]["message"]["body"])
        .collect();
    assert_eq!(
        bodies,
        [&json!("one"), &json!("a"), &json!("b"), &json!("c")]
    );

    // Resuming from a cursor gives exactly what follows it.
    let resumed = all_events(&app, &ws.admin_token, Some(cursors[4])).await;
    assert_eq!(resumed.len(), events.len() - 5);
    assert_eq!(resumed[0]["cursor"], cursors[5]);
}

#[tokio::test]
async fn events_follow_the_readers_scopes() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("hello")).await;
    app.data(
        Some(&ws.admin_token),
        "mutation($c: ID!) { sendMessage(input: { conversationId: $c, body: \"note to self\", internal: true }) { id } }",
        json!({ "c": conversation }),
    )
    .await;

    let bodies = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| e["node"]["message"]["body"].as_str().map(str::to_owned))
            .collect()
    };
    let agent = events_once(&app, &ws.admin_token, |e| has(e, "MESSAGE_CREATED", 2)).await;
    assert_eq!(bodies(&agent), ["hello", "note to self"]);
    let reader = app.api_key(&ws, "EVENTS_READ, CONVERSATIONS_READ").await;
    assert_eq!(
        bodies(&all_events(&app, &reader, None).await),
        ["hello", "note to self"]
    );
    let ai = app.api_key(&ws, "EVENTS_READ, AI_WRITE").await;
    assert_eq!(bodies(&all_events(&app, &ai, None).await), ["hello"]);

    for token in [
        visitor.as_str(),
        &app.api_key(&ws, "CONVERSATIONS_READ").await,
    ] {
        let refused = app.gql(Some(token), EVENTS, json!({})).await;
        assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    }
    let bad = app
        .gql(
            Some(&ws.admin_token),
            EVENTS,
            json!({ "after": "not-a-cursor" }),
        )
        .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT", "{bad}");
    let too_many = app
        .gql(Some(&ws.admin_token), EVENTS, json!({ "first": 501 }))
        .await;
    assert_eq!(error_code(&too_many), "BAD_USER_INPUT", "{too_many}");
}

#[tokio::test]
async fn another_workspace_never_sees_these_events() {
    let app = TestApp::spawn().await;
    let mine = app.workspace("Acme").await;
    let theirs = app.workspace("Other").await;
    app.start_conversation(&mine, Some("private")).await;
    events_once(&app, &mine.admin_token, |e| has(e, "MESSAGE_CREATED", 1)).await;
    let seen = all_events(&app, &theirs.admin_token, None).await;
    assert!(seen.is_empty(), "{seen:?}");
}

#[tokio::test]
async fn inbox_resumes_after_a_gap_with_exactly_what_it_missed() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("before")).await;
    app.settle().await;
    let seen = cursor_once(&app, &ws, "MESSAGE_CREATED", 1).await;

    // While the inbox is away.
    for body in ["missed 1", "missed 2", "missed 3"] {
        app.send(&visitor, &conversation, body).await;
    }
    let mut client = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    client.subscribe("1", INBOX, json!({ "after": seen })).await;
    let mut cursors = vec![seen.clone()];
    for expected in ["missed 1", "missed 2", "missed 3"] {
        let event = client.next_inbox("1").await;
        let inbox = &event["data"]["inbox"];
        assert_eq!(inbox["kind"], "MESSAGE_CREATED", "{event}");
        assert_eq!(inbox["message"]["body"], expected);
        cursors.push(inbox["cursor"].as_str().expect("cursor").to_owned());
    }
    // Then live, with nothing doubled at the seam.
    app.send(&visitor, &conversation, "live").await;
    let live = client.next_inbox("1").await;
    assert_eq!(live["data"]["inbox"]["message"]["body"], "live", "{live}");
    cursors.push(
        live["data"]["inbox"]["cursor"]
            .as_str()
            .expect("cursor")
            .to_owned(),
    );
    let mut sorted = cursors.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(cursors, sorted);
}

#[tokio::test]
async fn escalations_resume_with_the_requests_made_while_away() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let mut conversations = Vec::new();
    for i in 0..4 {
        let (conversation, _) = app
            .start_conversation(&ws, Some(&format!("question {i}")))
            .await;
        conversations.push(conversation);
    }
    app.request_human(&ws.admin_token, &conversations[0]).await;
    app.settle().await;
    let mut phone = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    let start = cursor_once(&app, &ws, "HANDOFF_REQUESTED", 1).await;
    phone
        .subscribe("1", ESCALATIONS, json!({ "after": start }))
        .await;
    app.request_human(&ws.admin_token, &conversations[1]).await;
    let first = phone.next_data("1").await;
    assert_eq!(
        first["data"]["escalations"]["conversation"]["id"],
        conversations[1]
    );
    let cursor = first["data"]["escalations"]["cursor"]
        .as_str()
        .expect("an escalation carries its cursor")
        .to_owned();
    drop(phone);

    // The phone sleeps; two more requests come in.
    app.request_human(&ws.admin_token, &conversations[2]).await;
    app.request_human(&ws.admin_token, &conversations[3]).await;
    let mut phone = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    phone
        .subscribe("2", ESCALATIONS, json!({ "after": cursor }))
        .await;
    for expected in &conversations[2..] {
        let event = phone.next_data("2").await;
        assert_eq!(
            &event["data"]["escalations"]["conversation"]["id"],
            expected
        );
    }
    // And then live.
    let (fifth, _) = app.start_conversation(&ws, Some("late")).await;
    app.request_human(&ws.admin_token, &fifth).await;
    let live = phone.next_data("2").await;
    assert_eq!(live["data"]["escalations"]["conversation"]["id"], fifth);
}

#[tokio::test]
async fn conversation_events_resume_by_cursor() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("hi")).await;
    app.settle().await;
    let start = cursor_once(&app, &ws, "MESSAGE_CREATED", 1).await;
    app.request_human(&visitor, &conversation).await;
    let handoff = app
        .data(
            Some(&ws.admin_token),
            "query($c: ID!) { conversation(id: $c) { openHandoff { id } } }",
            json!({ "c": conversation }),
        )
        .await["conversation"]["openHandoff"]["id"]
        .as_str()
        .expect("handoff")
        .to_owned();
    app.data(
        Some(&ws.admin_token),
        "mutation($h: ID!) { acceptHandoff(id: $h) { id } }",
        json!({ "h": handoff }),
    )
    .await;

    // The visitor's widget comes back and replays what it missed.
    let mut widget = WsClient::ready(&app, TRANSPORT_WS, &visitor).await;
    widget
        .subscribe(
            "1",
            CONVERSATION_EVENTS,
            json!({ "c": conversation, "after": start }),
        )
        .await;
    let mut seen = Vec::new();
    loop {
        let event = widget.next_data("1").await;
        let event = &event["data"]["conversationEvents"];
        seen.push(event["__typename"].as_str().expect("type").to_owned());
        assert!(event["cursor"].is_string(), "{event}");
        if event["handoff"]["status"] == "ACCEPTED" {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            "ConversationStatusChanged",
            "HandoffChanged",
            "ConversationStatusChanged",
            "HandoffChanged"
        ]
    );
    app.data(
        Some(&ws.admin_token),
        "mutation($c: ID!) { resolveConversation(conversationId: $c) { id } }",
        json!({ "c": conversation }),
    )
    .await;
    let live = widget.next_data("1").await;
    assert_eq!(
        live["data"]["conversationEvents"]["status"], "RESOLVED",
        "{live}"
    );
}

#[tokio::test]
async fn a_pruned_cursor_answers_cursor_expired() {
    let (url, dir) = fresh_database().await;
    let mut config = test_config(&url);
    config.event_retention = std::time::Duration::from_secs(1);
    let app = TestApp::spawn_with(config, dir).await;
    let ws = app.workspace("Acme").await;
    app.start_conversation(&ws, Some("old news")).await;
    let events = events_once(&app, &ws.admin_token, |e| has(e, "MESSAGE_CREATED", 1)).await;
    let oldest = events[0]["cursor"].as_str().expect("cursor").to_owned();

    let expired = tokio::time::timeout(crate::helpers::TIMEOUT, async {
        loop {
            let body = app
                .gql(Some(&ws.admin_token), EVENTS, json!({ "after": oldest }))
                .await;
            if body.get("errors").is_some() {
                return body;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the old events are pruned in time");
    assert_eq!(error_code(&expired), "BAD_USER_INPUT", "{expired}");
    assert_eq!(
        expired["errors"][0]["extensions"]["reason"],
        "CURSOR_EXPIRED"
    );
    let mut client = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    client
        .subscribe("1", INBOX, json!({ "after": oldest }))
        .await;
    let refused = client.recv().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["reason"],
        "CURSOR_EXPIRED"
    );
    // Without a cursor, the log reads from what it still holds.
    let data = app.data(Some(&ws.admin_token), EVENTS, json!({})).await;
    assert!(data["events"]["edges"].is_array());
}

/// The bodies of `inbox` message events, until `done` holds of them; and the last
/// cursor.
async fn inbox_bodies(
    client: &mut WsClient,
    id: &str,
    mut seen: Vec<String>,
    done: impl Fn(&[String]) -> bool,
) -> (Vec<String>, String) {
    let mut last = String::new();
    while !done(&seen) {
        let event = client.next_data(id).await;
        let inbox = &event["data"]["inbox"];
        last = inbox["cursor"].as_str().expect("cursor").to_owned();
        if let Some(body) = inbox["message"]["body"].as_str() {
            seen.push(body.to_owned());
        }
    }
    (seen, last)
}

/// What a writer sent and had acknowledged, in order.
fn numbered(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| format!("m{i}")).collect()
}

#[tokio::test]
async fn a_subscriber_that_moves_to_another_process_after_a_kill_misses_nothing() {
    let (url, dir) = fresh_database().await;
    let survivor = TestApp::spawn_with(test_config(&url), dir).await;
    let ws = survivor.workspace("Acme").await;
    let (conversation, _) = survivor.start_conversation(&ws, Some("start")).await;
    // Taken from the AI first, so that only the writer's messages follow `start`.
    survivor.take_over(&ws.admin_token, &conversation).await;
    let start = cursor_once(&survivor, &ws, "MESSAGE_CREATED", 2).await;
    let (mut doomed, addr) = crate::clients::serve_process(&url).await;

    let mut client = WsClient::ready_at(&addr, TRANSPORT_WS, &ws.admin_token).await;
    client
        .subscribe("1", INBOX, json!({ "after": start }))
        .await;
    // A writer sends to the process about to die, until it dies.
    let writer = {
        let (http, token, conversation) = (
            survivor.client.clone(),
            ws.admin_token.clone(),
            conversation.clone(),
        );
        let url = format!("http://{addr}/graphql");
        tokio::spawn(async move {
            let mut acknowledged = 0;
            loop {
                let sent = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({
                        "query": "mutation($c: ID!, $b: String!) { sendMessage(input: { conversationId: $c, body: $b }) { seq } }",
                        "variables": { "c": conversation, "b": format!("m{acknowledged}") },
                    }))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => acknowledged += 1,
                    _ => return acknowledged,
                }
            }
        })
    };
    // The writer sends one message after another's answer: the 11th seen means
    // the first 10 were acknowledged (the 10th alone may be seen before its answer
    // is in).
    let (seen, last) = inbox_bodies(&mut client, "1", Vec::new(), |seen| seen.len() >= 11).await;
    doomed.start_kill().expect("kill -9");
    doomed.wait().await.expect("the process ends");
    let acknowledged = writer.await.expect("writer");
    assert!(acknowledged >= 10, "{acknowledged}");

    // The same client, on the surviving process, from its last cursor.
    let mut client = WsClient::ready(&survivor, TRANSPORT_WS, &ws.admin_token).await;
    client.subscribe("2", INBOX, json!({ "after": last })).await;
    let (seen, _) = inbox_bodies(&mut client, "2", seen, |seen| seen.len() >= acknowledged).await;
    // Everything acknowledged, in order, once (and anything committed whose answer
    // the kill swallowed, after it).
    assert_eq!(seen[..acknowledged], numbered(0, acknowledged));
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set CASEFILE_TEST_DATABASE_URL and run with --ignored"]
async fn a_killed_listener_connection_delays_but_loses_nothing() {
    crate::helpers::require_postgres();
    let (url, _) = fresh_database().await;
    let writer = TestApp::spawn_with(test_config(&url), None).await;
    let reader = TestApp::spawn_with(test_config(&url), None).await;
    let ws = writer.workspace("Acme").await;
    let (conversation, visitor) = writer.start_conversation(&ws, Some("start")).await;
    let start = cursor_once(&writer, &ws, "MESSAGE_CREATED", 1).await;
    let mut client = WsClient::ready(&reader, TRANSPORT_WS, &ws.admin_token).await;
    client
        .subscribe("1", INBOX, json!({ "after": start }))
        .await;
    writer.send(&visitor, &conversation, "m0").await;
    let (seen, _) = inbox_bodies(&mut client, "1", Vec::new(), |seen| !seen.is_empty()).await;

    // Every listening connection of the database dies; what is sent meanwhile is
    // never notified.
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&url).await.expect("connect");
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(&mut admin)
    .await
    .expect("terminate the listeners");
    assert!(!killed.is_empty(), "a listener was running");
    for i in 1..5 {
        writer.send(&visitor, &conversation, &format!("m{i}")).await;
    }
    let (seen, _) = inbox_bodies(&mut client, "1", seen, |seen| seen.len() >= 5).await;
    assert_eq!(seen, numbered(0, 5));
}
