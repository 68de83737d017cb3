//! Subscriptions over real WebSockets, in both protocols.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::ws_client::{LEGACY_WS, TRANSPORT_WS, WsClient};

const MESSAGES: &str = "subscription($c: ID!, $after: Int) { messages(conversationId: $c, afterSeq: $after) { seq body author internal } }";

fn seq(payload: &Value) -> i64 {
    payload["data"]["messages"]["seq"]
        .as_i64()
        .unwrap_or_else(|| panic!("a message: {payload}"))
}

#[tokio::test]
async fn messages_replay_then_stream_live_in_both_protocols() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("first")).await;
    // The agent's first reply takes the chat from the AI: who joined, then it.
    app.send(&ws.admin_token, &conversation, "second").await;

    for (stored, protocol) in (3..).zip([TRANSPORT_WS, LEGACY_WS]) {
        let mut client = WsClient::ready(&app, protocol, &visitor).await;
        client
            .subscribe("1", MESSAGES, json!({ "c": conversation, "after": 0 }))
            .await;
        let mut replayed = Vec::new();
        for _ in 0..stored {
            replayed.push(seq(&client.next_data("1").await));
        }
        assert_eq!(replayed, (1..=stored).collect::<Vec<i64>>());
        let live = app
            .send(
                &ws.admin_token,
                &conversation,
                &format!("live over {protocol}"),
            )
            .await;
        let payload = client.next_data("1").await;
        assert_eq!(payload["data"]["messages"]["seq"], live["seq"]);
        assert_eq!(
            payload["data"]["messages"]["body"],
            format!("live over {protocol}")
        );
    }
}

#[tokio::test]
async fn replay_and_live_have_no_gap_while_500_messages_are_written() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("m0")).await;
    for i in 1..50 {
        app.send(&visitor, &conversation, &format!("m{i}")).await;
    }
    let writer = {
        let (client, url, token, conversation) = (
            app.client.clone(),
            app.url("/graphql"),
            visitor.clone(),
            conversation.clone(),
        );
        tokio::spawn(async move {
            for i in 50..550 {
                let query = json!({
                    "query": "mutation($c: ID!, $b: String!) { sendMessage(input: { conversationId: $c, body: $b }) { seq } }",
                    "variables": { "c": conversation, "b": format!("m{i}") }
                });
                let sent = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&query)
                    .send()
                    .await
                    .expect("sent");
                assert!(sent.status().is_success());
            }
        })
    };
    let mut client = WsClient::ready(&app, TRANSPORT_WS, &visitor).await;
    client
        .subscribe("live", MESSAGES, json!({ "c": conversation, "after": 0 }))
        .await;
    let mut seqs = Vec::new();
    while seqs.len() < 550 {
        let payload = client.next_data("live").await;
        assert_eq!(
            payload["data"]["messages"]["body"],
            format!("m{}", seqs.len())
        );
        seqs.push(seq(&payload));
    }
    writer.await.expect("writer finished");
    assert_eq!(
        seqs,
        (1..=550).collect::<Vec<i64>>(),
        "every message once, in order"
    );
    assert!(
        client
            .recv_within(Duration::from_millis(300))
            .await
            .is_none(),
        "nothing after the last"
    );
}

#[tokio::test]
async fn reconnecting_with_the_last_seq_misses_nothing() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("one")).await;
    let mut first = WsClient::ready(&app, TRANSPORT_WS, &visitor).await;
    first
        .subscribe("a", MESSAGES, json!({ "c": conversation }))
        .await;
    let last = seq(&first.next_data("a").await);
    drop(first);

    for body in ["two", "three"] {
        app.send(&visitor, &conversation, body).await;
    }
    let mut second = WsClient::ready(&app, TRANSPORT_WS, &visitor).await;
    second
        .subscribe("b", MESSAGES, json!({ "c": conversation, "after": last }))
        .await;
    let bodies = [second.next_data("b").await, second.next_data("b").await].map(|p| {
        p["data"]["messages"]["body"]
            .as_str()
            .expect("body")
            .to_owned()
    });
    assert_eq!(bodies, ["two", "three"]);
    assert!(
        second
            .recv_within(Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn visitor_never_receives_internal_notes_live() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("hello")).await;
    app.take_over(&ws.admin_token, &conversation).await;
    let mut client = WsClient::ready(&app, TRANSPORT_WS, &visitor).await;
    client
        .subscribe("m", MESSAGES, json!({ "c": conversation }))
        .await;
    assert_eq!(seq(&client.next_data("m").await), 1);
    assert_eq!(seq(&client.next_data("m").await), 2, "who joined");
    app.data(
        Some(&ws.admin_token),
        "mutation($c: ID!) { sendMessage(input: { conversationId: $c, body: \"secret note\", internal: true }) { seq } }",
        json!({ "c": conversation }),
    )
    .await;
    app.send(&ws.admin_token, &conversation, "public reply")
        .await;
    let next = client.next_data("m").await;
    assert_eq!(next["data"]["messages"]["body"], "public reply");
    assert_eq!(seq(&next), 4, "the note's seq is skipped, not reused");

    let mut agent = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    agent
        .subscribe("m", MESSAGES, json!({ "c": conversation }))
        .await;
    let mut bodies = Vec::new();
    for _ in 0..4 {
        let payload = agent.next_data("m").await;
        bodies.push(payload["data"]["messages"]["body"].clone());
    }
    assert_eq!(bodies[0], "hello");
    assert!(
        bodies[1]
            .as_str()
            .is_some_and(|b| b.ends_with(" joined the conversation.")),
        "{bodies:?}"
    );
    assert_eq!(bodies[2..], [json!("secret note"), json!("public reply")]);
}

#[tokio::test]
async fn subscriptions_outside_ones_reach_are_not_found() {
    let app = TestApp::spawn().await;
    let a = app.workspace("A").await;
    let b = app.workspace("B").await;
    let (mine, visitor) = app.start_conversation(&a, Some("mine")).await;
    let (other, _) = app.start_conversation(&a, Some("other")).await;
    let (elsewhere, _) = app.start_conversation(&b, Some("elsewhere")).await;

    let mut client = WsClient::ready(&app, TRANSPORT_WS, &visitor).await;
    client.subscribe("x", MESSAGES, json!({ "c": other })).await;
    let error = client.recv().await;
    assert_eq!(
        (error["type"].as_str(), error["id"].as_str()),
        (Some("error"), Some("x"))
    );
    assert_eq!(error["payload"][0]["extensions"]["code"], "NOT_FOUND");
    client
        .subscribe("inbox", "subscription { inbox { kind } }", json!({}))
        .await;
    assert_eq!(
        client.recv().await["payload"][0]["extensions"]["code"],
        "FORBIDDEN"
    );
    // The connection survives refused subscriptions.
    client.subscribe("ok", MESSAGES, json!({ "c": mine })).await;
    assert_eq!(seq(&client.next_data("ok").await), 1);

    let mut agent = WsClient::ready(&app, TRANSPORT_WS, &a.admin_token).await;
    agent
        .subscribe("y", MESSAGES, json!({ "c": elsewhere }))
        .await;
    assert_eq!(
        agent.recv().await["payload"][0]["extensions"]["code"],
        "NOT_FOUND"
    );
}

#[tokio::test]
async fn visitor_does_not_receive_another_conversations_events() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (mine, visitor) = app.start_conversation(&ws, Some("mine")).await;
    let (other, other_visitor) = app.start_conversation(&ws, Some("other")).await;
    let mut client = WsClient::ready(&app, TRANSPORT_WS, &visitor).await;
    client.subscribe("m", MESSAGES, json!({ "c": mine })).await;
    client
        .subscribe(
            "e",
            "subscription($c: ID!) { conversationEvents(conversationId: $c) { __typename } }",
            json!({ "c": mine }),
        )
        .await;
    assert_eq!(seq(&client.next_data("m").await), 1);
    app.send(&other_visitor, &other, "not for you").await;
    app.data(
        Some(&other_visitor),
        "mutation($c: ID!) { setTyping(conversationId: $c, typing: true) }",
        json!({ "c": other }),
    )
    .await;
    assert!(
        client
            .recv_within(Duration::from_millis(400))
            .await
            .is_none(),
        "nothing from another conversation"
    );
}

const EVENTS: &str = "subscription($c: ID!) { conversationEvents(conversationId: $c) { __typename \
    ... on TypingEvent { author typing } \
    ... on ConversationStatusChanged { status } \
    ... on ConversationAssigned { assignee { name } } \
    ... on ConversationTagChanged { tagged tag { slug } } } }";

#[tokio::test]
async fn conversation_events_stream_typing_status_and_assignment() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("hi")).await;
    let tag = app
        .data(
            Some(&ws.admin_token),
            "mutation { createTag(input: { label: \"Billing\" }) { id } }",
            json!({}),
        )
        .await["createTag"]["id"]
        .clone();
    let mut agent = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    let mut guest = WsClient::ready(&app, LEGACY_WS, &visitor).await;
    agent
        .subscribe("e", EVENTS, json!({ "c": conversation }))
        .await;
    guest
        .subscribe("e", EVENTS, json!({ "c": conversation }))
        .await;
    app.listening(2).await;

    app.data(
        Some(&visitor),
        "mutation($c: ID!) { setTyping(conversationId: $c, typing: true) }",
        json!({ "c": conversation }),
    )
    .await;
    app.data(
        Some(&ws.admin_token),
        "mutation($c: ID!) { setTyping(conversationId: $c, typing: true, internal: true) }",
        json!({ "c": conversation }),
    )
    .await;
    app.data(
        Some(&ws.admin_token),
        "mutation($c: ID!, $t: ID!) { tagConversation(conversationId: $c, tagId: $t) { id } }",
        json!({ "c": conversation, "t": tag }),
    )
    .await;
    app.data(
        Some(&ws.admin_token),
        "mutation($c: ID!, $a: ID!) { assignConversation(conversationId: $c, agentId: $a) { id } }",
        json!({ "c": conversation, "a": ws.admin_id }),
    )
    .await;
    app.data(
        Some(&ws.admin_token),
        "mutation($c: ID!) { resolveConversation(conversationId: $c) { id } }",
        json!({ "c": conversation }),
    )
    .await;

    let mut agent_saw = Vec::new();
    for _ in 0..5 {
        agent_saw.push(agent.next_data("e").await["data"]["conversationEvents"].clone());
    }
    assert_eq!(
        agent_saw[0],
        json!({ "__typename": "TypingEvent", "author": "VISITOR", "typing": true })
    );
    assert_eq!(agent_saw[1]["author"], "AGENT");
    assert_eq!(
        agent_saw[2],
        json!({ "__typename": "ConversationTagChanged", "tagged": true, "tag": { "slug": "billing" } })
    );
    assert_eq!(agent_saw[3]["__typename"], "ConversationAssigned");
    assert_eq!(
        agent_saw[4],
        json!({ "__typename": "ConversationStatusChanged", "status": "RESOLVED" })
    );

    let mut guest_saw = Vec::new();
    for _ in 0..3 {
        guest_saw
            .push(guest.next_data("e").await["data"]["conversationEvents"]["__typename"].clone());
    }
    assert_eq!(
        guest_saw,
        [
            json!("TypingEvent"),
            json!("ConversationAssigned"),
            json!("ConversationStatusChanged")
        ],
        "no internal typing, no tags"
    );
    assert!(
        guest
            .recv_within(Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn inbox_streams_what_a_list_needs() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let mut agent = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    agent
        .subscribe("all", "subscription { inbox { kind conversation { id status lastMessage { body } } message { body } } }", json!({}))
        .await;
    agent
        .subscribe(
            "resolved",
            "subscription { inbox(filter: { status: [RESOLVED] }) { kind conversation { id } } }",
            json!({}),
        )
        .await;
    app.listening(2).await;
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    app.send(&visitor, &conversation, "where is the media library?")
        .await;
    app.data(
        Some(&ws.admin_token),
        "mutation($c: ID!) { resolveConversation(conversationId: $c) { id } }",
        json!({ "c": conversation }),
    )
    .await;

    let mut kinds = Vec::new();
    let mut resolved_seen = None;
    while kinds.len() < 3 {
        let message = agent.recv().await;
        match message["id"].as_str() {
            Some(_)
                if message["payload"]["data"]["inbox"]["kind"] == "AGENT_AVAILABILITY_CHANGED" => {}
            Some("all") => kinds.push(message["payload"]["data"]["inbox"].clone()),
            Some("resolved") => resolved_seen = Some(message["payload"]["data"]["inbox"].clone()),
            _ => panic!("unexpected {message}"),
        }
    }
    assert_eq!(kinds[0]["kind"], "CONVERSATION_OPENED");
    assert_eq!(kinds[1]["kind"], "MESSAGE_CREATED");
    assert_eq!(kinds[1]["message"]["body"], "where is the media library?");
    assert_eq!(
        kinds[1]["conversation"]["lastMessage"]["body"],
        "where is the media library?"
    );
    assert_eq!(kinds[2]["kind"], "CONVERSATION_UPDATED");
    assert_eq!(kinds[2]["conversation"]["status"], "RESOLVED");
    let resolved = match resolved_seen {
        Some(seen) => seen,
        None => agent.next_inbox("resolved").await["data"]["inbox"].clone(),
    };
    assert_eq!(
        resolved,
        json!({ "kind": "CONVERSATION_UPDATED", "conversation": { "id": conversation } })
    );
}

#[tokio::test]
async fn queries_and_mutations_run_over_the_socket_with_its_token() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    let mut client = WsClient::ready(&app, TRANSPORT_WS, &visitor).await;
    client
        .subscribe("send", "mutation($c: ID!) { sendMessage(input: { conversationId: $c, body: \"over ws\" }) { seq author } }", json!({ "c": conversation }))
        .await;
    assert_eq!(
        client.next_data("send").await["data"]["sendMessage"],
        json!({ "seq": 1, "author": "VISITOR" })
    );
    assert_eq!(
        client.recv().await,
        json!({ "type": "complete", "id": "send" })
    );
    let deep = format!(
        "{{ viewer {}{{ id }}{} }}",
        "{ teams { members ".repeat(8),
        " } }".repeat(8)
    );
    client.subscribe("deep", &deep, json!({})).await;
    let refused = client.recv().await;
    assert_eq!(refused["type"], "error");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
}

#[tokio::test]
async fn protocol_violations_close_with_their_codes() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;

    let mut early = WsClient::connect(&app, TRANSPORT_WS).await;
    early.subscribe("1", "{ __typename }", json!({})).await;
    assert_eq!(early.closed().await, 4401, "subscribe before ack");

    let mut twice = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    twice.init(Some(&ws.admin_token)).await;
    assert_eq!(twice.closed().await, 4429, "second connection_init");

    let mut garbage = WsClient::connect(&app, TRANSPORT_WS).await;
    garbage.send(json!({ "type": "nonsense" })).await;
    assert_eq!(garbage.closed().await, 4400, "unknown message type");

    let mut bad_token = WsClient::connect(&app, TRANSPORT_WS).await;
    bad_token.init(Some("not.a.token")).await;
    assert_eq!(bad_token.closed().await, 4403, "rejected credentials");

    let mut duplicate = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    let inbox = "subscription { inbox { kind } }";
    duplicate.subscribe("same", inbox, json!({})).await;
    duplicate.subscribe("same", inbox, json!({})).await;
    assert_eq!(duplicate.closed().await, 4409, "duplicate id");
}

#[tokio::test]
async fn connection_without_init_times_out() {
    let (url, dir) = crate::helpers::fresh_database().await;
    let mut config = crate::helpers::test_config(&url);
    config.ws_init_timeout = Duration::from_millis(300);
    let app = TestApp::spawn_with(config, dir).await;
    let mut client = WsClient::connect(&app, TRANSPORT_WS).await;
    assert_eq!(client.closed().await, 4408);
}

#[tokio::test]
async fn expired_token_ends_subscriptions_with_an_error_and_closes() {
    let (url, dir) = crate::helpers::fresh_database().await;
    let mut config = crate::helpers::test_config(&url);
    config.visitor_token_ttl = Duration::from_secs(2);
    let app = TestApp::spawn_with(config, dir).await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("hi")).await;
    let mut client = WsClient::ready(&app, TRANSPORT_WS, &visitor).await;
    client
        .subscribe("m", MESSAGES, json!({ "c": conversation }))
        .await;
    assert_eq!(seq(&client.next_data("m").await), 1);
    let ended = client.recv().await;
    assert_eq!(
        (ended["type"].as_str(), ended["id"].as_str()),
        (Some("error"), Some("m"))
    );
    assert_eq!(ended["payload"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(client.closed().await, 4403);
}

#[tokio::test]
async fn shutdown_closes_live_connections_so_clients_reconnect() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let mut client = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    client
        .subscribe("inbox", "subscription { inbox { kind } }", json!({}))
        .await;
    app.listening(1).await;
    let TestApp { running, .. } = app;
    let stopping = tokio::spawn(running.shutdown());
    assert_eq!(client.closed().await, 1012);
    stopping.await.expect("joined").expect("clean shutdown");
}

#[tokio::test]
async fn a_thousand_subscribers_receive_every_message_in_order() {
    rlimit::increase_nofile_limit(8_192).expect("raise the open-files limit");
    // A thousand sockets from one address: over the default per-address cap.
    let (url, dir) = crate::helpers::fresh_database().await;
    let mut config = crate::helpers::test_config(&url);
    config.limits.max_ws_per_ip = 2_000;
    let app = TestApp::spawn_with(config, dir).await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    let mut subscribers = Vec::new();
    for _ in 0..1_000 {
        let mut client = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
        client
            .subscribe("m", MESSAGES, json!({ "c": conversation }))
            .await;
        subscribers.push(client);
    }
    // Every subscription is live once a first message reaches it.
    app.send(&visitor, &conversation, "warm-up").await;
    for client in &mut subscribers {
        assert_eq!(seq(&client.next_data("m").await), 1);
    }
    for i in 0..20 {
        app.send(&visitor, &conversation, &format!("broadcast {i}"))
            .await;
    }
    let readers = subscribers.into_iter().map(|mut client| {
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for _ in 0..20 {
                seqs.push(seq(&client.next_data("m").await));
            }
            seqs
        })
    });
    for reader in readers {
        assert_eq!(
            reader.await.expect("reader"),
            (2..=21).collect::<Vec<i64>>()
        );
    }
}

#[tokio::test]
async fn a_shared_subscription_that_fails_at_start_fails_for_every_subscriber() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let query = "subscription($c: ID!) { conversationEvents(conversationId: $c) { __typename } }";
    // Agents of one workspace and role share executions of the same document; an
    // execution that ends must not leave a newcomer waiting on it.
    for name in ["Ana", "Ben"] {
        let (_, token) = app.agent(&ws, name, "AGENT").await;
        let mut client = WsClient::ready(&app, TRANSPORT_WS, &token).await;
        client
            .subscribe("1", query, json!({ "c": "conv_missing" }))
            .await;
        let message = client.recv().await;
        assert_eq!(message["type"], "error", "{message}");
        assert_eq!(message["payload"][0]["extensions"]["code"], "NOT_FOUND");
    }
}

/// A document holding several operations, each with fragments of its own, runs the
/// one named: a visitor's subscription has its variables written into its document
/// (`graphql::variables`), which must not leave the other operation's fragment
/// unused (async-graphql refuses a document with an unused fragment or variable).
#[tokio::test]
async fn a_subscription_named_in_a_document_of_several_runs_with_its_variables() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("first")).await;
    let document = "subscription Thread($c: ID!, $after: Int) { messages(conversationId: $c, afterSeq: $after) { ...Seq } } \
         subscription Bodies($c: ID!) { messages(conversationId: $c) { ...Body } } \
         fragment Seq on Message { seq } fragment Body on Message { body }";
    let mut client = WsClient::ready(&app, TRANSPORT_WS, &visitor).await;
    client
        .send(json!({ "type": "subscribe", "id": "1", "payload": {
            "query": document, "operationName": "Thread",
            "variables": { "c": conversation, "after": 0 } } }))
        .await;
    let first = client.next_data("1").await;
    assert_eq!(first, json!({ "data": { "messages": { "seq": 1 } } }));
}
