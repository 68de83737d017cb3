//! Attacks on every limit of "Limits and abuse", over real HTTP and WebSocket. Each
//! test would pass through (and fail) if its limit were removed.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{TIMEOUT, TestApp, error_code, fresh_database, limited_config, test_config};
use crate::ws_client::{TRANSPORT_WS, WsClient};

const SIGN_IN: &str =
    "mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { token } }";
const START: &str = "mutation($k: String!) { startConversation(input: { widgetKey: $k }) { conversation { id } visitorToken } }";
const SEND: &str = "mutation($c: ID!, $b: String!) { sendMessage(input: { conversationId: $c, body: $b }) { seq } }";
const TYPING: &str = "mutation($c: ID!) { setTyping(conversationId: $c, typing: true) }";
const MESSAGES: &str = "subscription($c: ID!, $after: Int) { messages(conversationId: $c, afterSeq: $after) { seq body } }";

/// `extensions.retryAfter` of the first error, which must be whole seconds ≥ 1.
fn retry_after(body: &Value) -> u64 {
    let retry = body["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap_or_else(|| panic!("retryAfter in {body:#}"));
    assert!(retry >= 1, "{body:#}");
    retry
}

/// Poll `condition` (a server-side acknowledgement) until it holds.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    tokio::time::timeout(TIMEOUT, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} in time"));
}

async fn spawn(configure: impl FnOnce(&mut casefile::Config)) -> TestApp {
    let (url, dir) = fresh_database().await;
    let mut config = limited_config(&url);
    configure(&mut config);
    TestApp::spawn_with(config, dir).await
}

#[tokio::test]
async fn password_guessing_locks_the_email_even_for_the_right_password() {
    let app = TestApp::spawn_limited().await;
    let ws = app.workspace("Acme").await;
    for attempt in 1..=5 {
        let body = app
            .gql(
                None,
                SIGN_IN,
                json!({ "e": ws.admin_email, "p": format!("guess {attempt}") }),
            )
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "attempt {attempt}");
    }
    let guess = app
        .gql(
            None,
            SIGN_IN,
            json!({ "e": ws.admin_email, "p": "guess 6" }),
        )
        .await;
    assert_eq!(error_code(&guess), "RATE_LIMITED");
    assert!(
        retry_after(&guess) >= 60,
        "a failure comes back every 3 minutes"
    );
    let right = app
        .gql(
            None,
            SIGN_IN,
            json!({ "e": ws.admin_email, "p": "correct horse battery" }),
        )
        .await;
    assert_eq!(
        error_code(&right),
        "RATE_LIMITED",
        "the right password waits too"
    );

    // Another account from the same address is not locked.
    let (_, _) = app.agent(&ws, "Alex", "AGENT").await;
}

#[tokio::test]
async fn a_right_password_does_not_count_as_a_failure() {
    let app = TestApp::spawn_limited().await;
    let ws = app.workspace("Acme").await;
    for _ in 0..8 {
        let body = app
            .data(
                None,
                SIGN_IN,
                json!({ "e": ws.admin_email, "p": "correct horse battery" }),
            )
            .await;
        assert!(body["signIn"]["token"].is_string());
    }
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_address() {
    let app = spawn(|c| c.limits.rate_signin_ip = "3/1m".parse().expect("rate")).await;
    for i in 0..3 {
        let body = app
            .gql(
                None,
                SIGN_IN,
                json!({ "e": format!("nobody{i}@example.com"), "p": "x" }),
            )
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED");
    }
    let body = app
        .gql(
            None,
            SIGN_IN,
            json!({ "e": "someone-else@example.com", "p": "x" }),
        )
        .await;
    assert_eq!(error_code(&body), "RATE_LIMITED");
    retry_after(&body);
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let guess = |app: &TestApp, forwarded: &str| {
        let request = app
            .client
            .post(app.url("/graphql"))
            .header("x-forwarded-for", forwarded)
            .json(&json!({ "query": SIGN_IN, "variables": { "e": "x@example.com", "p": "x" } }));
        async move {
            let body: Value = request
                .send()
                .await
                .expect("sent")
                .json()
                .await
                .expect("json");
            error_code(&body).to_owned()
        }
    };
    // Untrusted peer: the header is the client's own word, and ignored.
    let direct = spawn(|c| c.limits.rate_signin_ip = "1/1m".parse().expect("rate")).await;
    assert_eq!(guess(&direct, "198.51.100.1").await, "UNAUTHENTICATED");
    assert_eq!(guess(&direct, "198.51.100.2").await, "RATE_LIMITED");

    // Behind a trusted proxy, each forwarded client has its own budget; what a
    // client writes to the left of the proxy's entry proves nothing.
    let proxied = spawn(|c| {
        c.limits.rate_signin_ip = "1/1m".parse().expect("rate");
        c.limits.trusted_proxies = vec!["127.0.0.0/8".parse().expect("cidr")];
    })
    .await;
    assert_eq!(guess(&proxied, "198.51.100.1").await, "UNAUTHENTICATED");
    assert_eq!(guess(&proxied, "198.51.100.2").await, "UNAUTHENTICATED");
    assert_eq!(
        guess(&proxied, "203.0.113.9, 198.51.100.1").await,
        "RATE_LIMITED"
    );
}

#[tokio::test]
async fn one_document_may_try_one_password() {
    let app = TestApp::spawn_limited().await;
    let body = app
        .gql(
            None,
            "mutation { a: signIn(email: \"a@example.com\", password: \"1\") { token } b: signIn(email: \"a@example.com\", password: \"2\") { token } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(body["data"].is_null(), "nothing ran: {body:#}");
}

#[tokio::test]
async fn an_unknown_email_takes_as_long_as_a_wrong_password() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let attempt = |email: &str| {
        let (app, email) = (&app, email.to_owned());
        async move {
            let started = Instant::now();
            let body = app
                .gql(None, SIGN_IN, json!({ "e": email, "p": "wrong" }))
                .await;
            assert_eq!(error_code(&body), "UNAUTHENTICATED");
            started.elapsed()
        }
    };
    // Alternate the two so that load from other tests falls on both alike, and
    // compare the fastest of each: noise only ever adds time.
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        known.push(attempt(&ws.admin_email).await);
        unknown.push(attempt("nobody@example.com").await);
    }
    let fastest = |times: Vec<Duration>| times.into_iter().min().expect("seven attempts");
    let (known, unknown) = (fastest(known), fastest(unknown));
    // Without the dummy hash an unknown email answers in a fraction of the time.
    assert!(
        unknown * 2 >= known,
        "unknown {unknown:?} vs wrong password {known:?}"
    );
}

#[tokio::test]
async fn a_conversation_flood_from_one_address_is_refused() {
    let app = TestApp::spawn_limited().await;
    let ws = app.workspace("Acme").await;
    let other = app.workspace("Other").await;
    for _ in 0..10 {
        app.data(None, START, json!({ "k": ws.widget_key })).await;
    }
    let refused = app.gql(None, START, json!({ "k": ws.widget_key })).await;
    assert_eq!(error_code(&refused), "RATE_LIMITED");
    retry_after(&refused);
    // Per widget key: the other workspace's widget is not affected.
    app.data(None, START, json!({ "k": other.widget_key }))
        .await;
    let count = app
        .data(
            Some(&ws.admin_token),
            "{ conversations { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(count["conversations"]["totalCount"], 10);
}

#[tokio::test]
async fn a_message_flood_is_refused_and_every_accepted_message_is_stored_in_order() {
    let app = TestApp::spawn_limited().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    // Typing has its own budget: using it all up leaves the messages alone.
    let mut typed = 0;
    loop {
        let body = app
            .gql(Some(&visitor), TYPING, json!({ "c": conversation }))
            .await;
        if body.get("errors").is_some() {
            assert_eq!(error_code(&body), "RATE_LIMITED");
            break;
        }
        typed += 1;
        assert!(typed <= 20, "typing is limited");
    }
    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..25 {
        let body = app
            .gql(
                Some(&visitor),
                SEND,
                json!({ "c": conversation, "b": format!("flood {i}") }),
            )
            .await;
        match body.get("errors") {
            None => accepted.push(body["data"]["sendMessage"]["seq"].as_i64().expect("seq")),
            Some(_) => {
                assert_eq!(error_code(&body), "RATE_LIMITED");
                retry_after(&body);
                refused += 1;
            }
        }
    }
    assert!(
        (10..=11).contains(&accepted.len()),
        "burst of 10: {accepted:?}"
    );
    assert_eq!(accepted.len() + refused, 25);
    // Every accepted message is stored once, with no gap in `seq`.
    let stored = app
        .data(
            Some(&ws.admin_token),
            "query($c: ID!) { conversation(id: $c) { messages(first: 100) { edges { node { seq body } } } } }",
            json!({ "c": conversation }),
        )
        .await;
    let seqs: Vec<i64> = stored["conversation"]["messages"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, (1..=accepted.len() as i64).collect::<Vec<_>>());
    assert_eq!(seqs, accepted);
    // The other visitor writes share the budget.
    let lead = app
        .gql(
            Some(&visitor),
            "mutation($c: ID!) { captureLead(conversationId: $c, input: { name: \"Lee\" }) { id } }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(error_code(&lead), "RATE_LIMITED");
}

#[tokio::test]
async fn a_token_over_its_rate_is_refused_over_http_and_websocket() {
    let app = spawn(|c| c.limits.rate_token = "5/1m".parse().expect("rate")).await;
    let ws = app.workspace("Acme").await;
    let mut client = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    // `workspace()` spent one request of the budget.
    for _ in 0..4 {
        app.data(Some(&ws.admin_token), "{ viewer { id } }", json!({}))
            .await;
    }
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&ws.admin_token)
        .json(&json!({ "query": "{ viewer { id } }" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 429);
    let header: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_code(&body), "RATE_LIMITED");
    assert_eq!(retry_after(&body), header);

    // The same budget over WebSocket: the operation is refused, the socket stays.
    client
        .subscribe("e", "subscription { escalations { id } }", json!({}))
        .await;
    let refused = client.recv().await;
    assert_eq!(
        (refused["type"].as_str(), refused["id"].as_str()),
        (Some("error"), Some("e"))
    );
    assert_eq!(refused["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    assert!(refused["payload"][0]["extensions"]["retryAfter"].as_u64() >= Some(1));
    client.ping_pong().await;
}

#[tokio::test]
async fn websockets_per_address_are_capped_with_429() {
    let app = spawn(|c| c.limits.max_ws_per_ip = 3).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(WsClient::connect(&app, TRANSPORT_WS).await);
    }
    let mut request = format!("ws://{}/graphql", app.running.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        TRANSPORT_WS.parse().expect("header"),
    );
    let refused = tokio_tungstenite::connect_async(request.clone()).await;
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = refused else {
        panic!("the fourth socket is refused: {refused:?}");
    };
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));

    // A socket that closes frees its place.
    drop(open.pop());
    let state = app.running.state.clone();
    let ip = "127.0.0.1".parse().expect("ip");
    until("the closed socket is released", || {
        state.connections.sockets_from(ip) == 2
    })
    .await;
    tokio_tungstenite::connect_async(request)
        .await
        .expect("a place is free again");
}

#[tokio::test]
async fn connections_over_the_total_are_answered_429() {
    let app = spawn(|c| c.limits.max_connections = 3).await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(app.running.addr).await.expect("connect"));
    }
    let state = app.running.state.clone();
    until("the server holds three connections", || {
        state.connections.open_count() == 3
    })
    .await;
    let response = healthz(&app).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    drop(idle);
    until("idle connections are released", || {
        state.connections.open_count() == 0
    })
    .await;
    assert_eq!(healthz(&app).await.status(), 200);
}

async fn healthz(app: &TestApp) -> reqwest::Response {
    app.client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("answered")
}

#[tokio::test]
async fn an_oversized_frame_closes_the_socket_with_1009() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let mut client = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    let huge = "x".repeat(300 * 1024);
    client
        .send(json!({ "type": "subscribe", "id": "1", "payload": { "query": huge } }))
        .await;
    assert_eq!(client.closed().await, 1009);
}

/// A raw TCP connection to `app`, upgraded to a graphql-transport-ws WebSocket.
async fn upgraded(app: &TestApp) -> TcpStream {
    let mut stream = TcpStream::connect(app.running.addr).await.expect("connect");
    let handshake = format!(
        "GET /graphql HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n",
        app.running.addr
    );
    stream
        .write_all(handshake.as_bytes())
        .await
        .expect("handshake");
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.expect("upgrade answer");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 101"));
    stream
}

#[tokio::test]
async fn a_declared_giant_frame_is_refused_before_it_arrives() {
    let app = TestApp::spawn().await;
    let mut stream = upgraded(&app).await;
    let mut buf = vec![0u8; 4096];
    // A masked text frame that declares 4 GiB and sends none of it.
    let mut header = vec![0x81u8, 0x80 | 127];
    header.extend_from_slice(&(4u64 << 30).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    stream.write_all(&header).await.expect("frame header");
    let n = tokio::time::timeout(TIMEOUT, stream.read(&mut buf))
        .await
        .expect("the server answers at once")
        .expect("read");
    assert!(n >= 4, "a close frame");
    assert_eq!(buf[0] & 0x0f, 0x8, "opcode close");
    assert_eq!(u16::from_be_bytes([buf[2], buf[3]]), 1009);
}

#[tokio::test]
async fn a_socket_with_a_header_token_still_needs_connection_init() {
    let app = spawn(|c| c.ws_init_timeout = Duration::from_millis(300)).await;
    let ws = app.workspace("Acme").await;
    let mut request = format!("ws://{}/graphql", app.running.addr)
        .into_client_request()
        .expect("request");
    let headers = request.headers_mut();
    headers.insert(
        "sec-websocket-protocol",
        TRANSPORT_WS.parse().expect("header"),
    );
    headers.insert(
        "authorization",
        format!("Bearer {}", ws.admin_token)
            .parse()
            .expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    let code = tokio::time::timeout(TIMEOUT, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
                Some(Ok(_)) => continue,
                other => panic!("closed without a code: {other:?}"),
            }
        }
    })
    .await
    .expect("closed in time");
    assert_eq!(code, 4408);
}

/// A WebSocket whose client reads nothing: a tiny receive buffer, and never polled
/// after its subscriptions are sent.
async fn paused_reader(
    app: &TestApp,
    token: &str,
    conversation: &str,
    subscriptions: usize,
) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let stream = socket.connect(app.running.addr).await.expect("connect");
    let mut request = format!("ws://{}/graphql", app.running.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        TRANSPORT_WS.parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("upgrade");
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    ws.send(Message::Text(init.to_string().into()))
        .await
        .expect("init");
    for id in 0..subscriptions {
        let subscribe = json!({ "type": "subscribe", "id": id.to_string(), "payload": { "query": MESSAGES, "variables": { "c": conversation, "after": 0 } } });
        ws.send(Message::Text(subscribe.to_string().into()))
            .await
            .expect("subscribe");
    }
    ws.into_inner()
}

#[tokio::test]
async fn a_paused_reader_is_closed_and_others_keep_receiving_on_time() {
    let app = spawn(|c| {
        c.limits.ws_send_timeout = Duration::from_millis(500);
        c.limits.rate_limits = false;
    })
    .await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    let body = "y".repeat(9_000);
    for _ in 0..30 {
        app.send(&visitor, &conversation, &body).await;
    }
    let mut healthy = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    healthy
        .subscribe("h", MESSAGES, json!({ "c": conversation, "after": 30 }))
        .await;
    // Every one of the paused client's 100 subscriptions replays 270 KB.
    let _paused = paused_reader(&app, &ws.admin_token, &conversation, 100).await;
    let state = app.running.state.clone();
    let ip = "127.0.0.1".parse().expect("ip");
    until("the paused reader is connected", || {
        state.connections.sockets_from(ip) == 2
    })
    .await;
    for i in 31..=40 {
        app.send(&visitor, &conversation, &format!("live {i}"))
            .await;
        let event = healthy.next_data("h").await;
        assert_eq!(event["data"]["messages"]["seq"], i);
    }
    until("the paused reader is closed and freed", || {
        state.connections.sockets_from(ip) == 1
    })
    .await;
}

#[tokio::test]
async fn stalled_headers_are_cut() {
    let app = spawn(|c| c.limits.http_header_timeout = Duration::from_millis(300)).await;
    let mut stream = TcpStream::connect(app.running.addr).await.expect("connect");
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: casefile\r\n")
        .await
        .expect("half the headers");
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(TIMEOUT, stream.read(&mut buf))
        .await
        .expect("the server hangs up in time");
    assert!(matches!(read, Ok(0) | Err(_)) || String::from_utf8_lossy(&buf).contains("408"));
}

#[tokio::test]
async fn a_stalled_body_is_cut() {
    let app = spawn(|c| c.limits.http_body_timeout = Duration::from_millis(300)).await;
    let mut stream = TcpStream::connect(app.running.addr).await.expect("connect");
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: casefile\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\":")
        .await
        .expect("part of the body");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(TIMEOUT, stream.read(&mut buf))
        .await
        .expect("answered in time")
        .expect("read");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn a_request_that_cannot_finish_in_time_gets_503() {
    let app = spawn(|c| c.limits.http_request_timeout = Duration::from_millis(300)).await;
    let ws = app.workspace("Acme").await;
    // Hold the teams table (SQLite: the only writer connection): a write now waits.
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let held = app.running.state.db.writer.begin().await.expect("begin");
    if app.running.state.db.pg_pool.is_some() {
        held.execute_unprepared("LOCK TABLE teams IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("lock");
    }
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&ws.admin_token)
        .json(&json!({ "query": "mutation { createTeam(input: { name: \"Late\" }) { id } }" }))
        .send()
        .await
        .expect("answered");
    drop(held);
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_code(&body), "SERVICE_UNAVAILABLE");
}

#[tokio::test]
async fn a_panic_is_an_internal_error_of_its_operation_alone() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, _) = app.start_conversation(&ws, Some("hello")).await;
    let query = "query($c: ID!) { conversation(id: $c) { id } }";

    app.running.state.faults.arm_panics(1);
    let body = app
        .gql(Some(&ws.admin_token), query, json!({ "c": conversation }))
        .await;
    assert_eq!(error_code(&body), "INTERNAL");
    let again = app
        .data(Some(&ws.admin_token), query, json!({ "c": conversation }))
        .await;
    assert_eq!(
        again["conversation"]["id"],
        conversation.as_str(),
        "the server goes on"
    );

    // Two sockets share one inbox execution; a panic on one event is an error for
    // that event, and both go on receiving. (Agents write here: a visitor's message
    // would also reach the background fault point.)
    let inbox = "subscription { inbox { kind message { body } conversation { id } } }";
    let mut one = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    let mut two = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    one.subscribe("i", inbox, json!({})).await;
    two.subscribe("i", inbox, json!({})).await;
    // Both are live once each has seen a message sent after it subscribed: a
    // message is sent again until each has (the subscriptions start in the
    // background, a busy machine may take a while).
    for client in [&mut one, &mut two] {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                app.send(&ws.admin_token, &conversation, "first").await;
                while let Some(event) = client.recv_within(Duration::from_millis(500)).await {
                    if event["payload"]["data"]["inbox"]["message"]["body"] == "first" {
                        return;
                    }
                }
            }
        })
        .await
        .expect("the subscription is live");
    }
    app.running.state.faults.arm_panics(1);
    app.send(&ws.admin_token, &conversation, "second").await;
    for client in [&mut one, &mut two] {
        until_event(client, |event| {
            event["errors"][0]["extensions"]["code"] == "INTERNAL"
        })
        .await;
    }
    app.send(&ws.admin_token, &conversation, "third").await;
    for client in [&mut one, &mut two] {
        until_event(client, |event| {
            event["data"]["inbox"]["message"]["body"] == "third"
        })
        .await;
    }
}

/// Read `id` "i"'s events until one matches.
async fn until_event(client: &mut WsClient, matches: impl Fn(&Value) -> bool) {
    for _ in 0..20 {
        if matches(&client.next_data("i").await) {
            return;
        }
    }
    panic!("no matching event among 20");
}

#[tokio::test]
async fn shutdown_ends_in_time_with_a_stalled_request_and_a_paused_socket() {
    let app = spawn(|c| {
        c.shutdown_timeout = Duration::from_secs(1);
        c.limits.ws_send_timeout = Duration::from_secs(60);
    })
    .await;
    let ws = app.workspace("Acme").await;
    let (conversation, _) = app.start_conversation(&ws, Some("hi")).await;
    let _paused = paused_reader(&app, &ws.admin_token, &conversation, 1).await;
    // A request whose body never comes keeps its connection busy.
    let mut stalled = TcpStream::connect(app.running.addr).await.expect("connect");
    stalled
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: casefile\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .await
        .expect("part of a body");
    let state = app.running.state.clone();
    until("both connections are open", || {
        state.connections.open_count() >= 2
    })
    .await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), app.running.shutdown())
        .await
        .expect("shutdown ends near its time-out")
        .expect("clean");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn responses_over_the_size_limit_are_replaced_by_an_error() {
    let app = spawn(|c| {
        c.limits.max_response_bytes = 5_000;
        c.limits.rate_limits = false;
    })
    .await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, None).await;
    app.send(&visitor, &conversation, &"z".repeat(3_000)).await;
    let body = app
        .gql(
            Some(&ws.admin_token),
            "query($c: ID!) { a: conversation(id: $c) { messages { edges { node { body } } } } b: conversation(id: $c) { messages { edges { node { body } } } } }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(
        body["errors"][0]["extensions"]["reason"],
        "RESPONSE_TOO_LARGE"
    );
    assert!(body.to_string().len() < 5_000);
}

#[tokio::test]
async fn answers_carry_security_headers_and_graphiql_and_introspection_can_be_turned_off() {
    let open = TestApp::spawn().await;
    let page = open
        .client
        .get(open.url("/graphql"))
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let types = open
        .data(None, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(types["__schema"]["queryType"]["name"], "Query");

    let (url, dir) = fresh_database().await;
    let mut config = test_config(&url);
    config.graphiql = false;
    config.introspection = false;
    let closed = TestApp::spawn_with(config, dir).await;
    let page = closed
        .client
        .get(closed.url("/graphql"))
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), 404);
    // Introspection off is an error that says so (as Apollo Server answers, and as
    // scanners such as graphql-cop read it), not `{"__schema": null}`; through a
    // fragment too, and over a socket; `__typename` still answers.
    for document in [
        "{ __schema { queryType { name } } }",
        "query { ...F } fragment F on Query { __type(name: \"Agent\") { name } }",
        "{ ... on Query { __schema { types { name } } } }",
    ] {
        let body = closed.gql(None, document, json!({})).await;
        assert_eq!(body["data"], Value::Null, "{document}: {body:#}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
            "{document}: {body:#}"
        );
        let message = body["errors"][0]["message"].as_str().expect("message");
        assert!(message.contains("introspection is off"), "{message}");
    }
    let typename = closed.data(None, "{ __typename }", json!({})).await;
    assert_eq!(typename["__typename"], "Query");
}

#[tokio::test]
async fn the_demo_refuses_a_public_address_without_demo_public() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_casefile"))
        .args(["serve", "--demo", "--listen", "0.0.0.0:0", "--database-url"])
        .arg(format!("sqlite://{}", dir.path().join("demo.db").display()))
        .output();
    let output = tokio::time::timeout(TIMEOUT, output)
        .await
        .expect("exits in time")
        .expect("runs");
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("--demo-public"), "{said}");
}

/// The database going away for a while: on SQLite its files become immutable
/// (`chattr +i`, which binds root too, so the test needs root), on PostgreSQL the
/// database refuses connections and its backends are terminated.
struct Outage {
    sqlite_files: Vec<std::path::PathBuf>,
    postgres: Option<(String, String)>,
}

impl Outage {
    async fn start(app: &TestApp, database_url: &str) -> Outage {
        if let Some(path) = database_url.strip_prefix("sqlite://") {
            let files: Vec<_> = [path.to_owned(), format!("{path}-wal")]
                .into_iter()
                .map(std::path::PathBuf::from)
                .collect();
            for file in &files {
                let status = std::process::Command::new("chattr")
                    .arg("+i")
                    .arg(file)
                    .status()
                    .expect("chattr runs");
                assert!(
                    status.success(),
                    "this test makes {file:?} immutable with chattr +i, which needs root"
                );
            }
            return Outage {
                sqlite_files: files,
                postgres: None,
            };
        }
        let _ = app;
        let url = url::Url::parse(database_url).expect("url");
        let name = url.path().trim_start_matches('/').to_owned();
        let mut admin = url.clone();
        admin.set_path("/postgres");
        let outage = Outage {
            sqlite_files: Vec::new(),
            postgres: Some((admin.to_string(), name)),
        };
        outage
            .postgres_sql(&format!(
                "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS false",
                outage.postgres.as_ref().expect("pg").1
            ))
            .await;
        outage
            .postgres_sql(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
                outage.postgres.as_ref().expect("pg").1
            ))
            .await;
        outage
    }

    async fn postgres_sql(&self, sql: &str) {
        use sqlx::Connection;
        let (admin, _) = self.postgres.as_ref().expect("pg");
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .expect("admin connection");
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .expect("admin statement");
    }

    async fn end(mut self) {
        self.release();
        if let Some((_, name)) = &self.postgres {
            self.postgres_sql(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"))
                .await;
        }
    }

    fn release(&mut self) {
        for file in self.sqlite_files.drain(..) {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(&file)
                .status();
        }
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        self.release();
    }
}

#[tokio::test]
async fn a_database_outage_answers_service_unavailable_and_the_server_recovers() {
    let (url, dir) = fresh_database().await;
    let app = TestApp::spawn_with(test_config(&url), dir).await;
    let ws = app.workspace("Acme").await;
    let create = "mutation($n: String!) { createTeam(input: { name: $n }) { id } }";
    let health = || async {
        let response = healthz(&app).await;
        (
            response.status().as_u16(),
            response.text().await.expect("text"),
        )
    };
    assert_eq!(health().await.0, 200);

    let outage = Outage::start(&app, &url).await;
    let started = Instant::now();
    let body = app
        .gql(Some(&ws.admin_token), create, json!({ "n": "During" }))
        .await;
    assert_eq!(error_code(&body), "SERVICE_UNAVAILABLE", "{body:#}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "no 30 s pool wait"
    );
    let (status, text) = health().await;
    assert_eq!(status, 503);
    assert!(text.contains("writer"), "{text}");

    outage.end().await;
    tokio::time::timeout(TIMEOUT, async {
        while health().await.0 != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("healthy again by itself");
    app.data(Some(&ws.admin_token), create, json!({ "n": "After" }))
        .await;
}

#[tokio::test]
async fn a_panicking_subscription_ends_alone_and_its_connection_goes_on() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, _) = app.start_conversation(&ws, Some("hello")).await;
    // An API key's subscriptions run on their own, never shared.
    let key = app
        .data(
            Some(&ws.admin_token),
            "mutation { createApiKey(name: \"reader\", scopes: [CONVERSATIONS_READ]) { secret } }",
            json!({}),
        )
        .await["createApiKey"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    app.take_over(&ws.admin_token, &conversation).await;
    // The inbox resumes from the first event, so it is live once it replays one
    // (a subscription is not acknowledged: without a replay, the warm-up below
    // could come before the subscription starts and never reach it).
    let first = app
        .data(
            Some(&ws.admin_token),
            "{ events(first: 1) { edges { cursor } } }",
            json!({}),
        )
        .await["events"]["edges"][0]["cursor"]
        .clone();
    let mut client = WsClient::ready(&app, TRANSPORT_WS, &key).await;
    let own = "subscription($a: String) { inbox(after: $a) { conversation { id } } }";
    client.subscribe("own", own, json!({ "a": first })).await;
    client
        .subscribe("m", MESSAGES, json!({ "c": conversation, "after": 2 }))
        .await;
    // Both live (a subscription is not acknowledged): each sees a first message.
    app.send(&ws.admin_token, &conversation, "warm-up").await;
    let (mut own_live, mut messages_live) = (false, false);
    while !(own_live && messages_live) {
        let message = client.recv().await;
        match (message["type"].as_str(), message["id"].as_str()) {
            (Some("next"), Some("own")) => own_live = true,
            (Some("next"), Some("m")) => messages_live = true,
            other => panic!("unexpected {other:?}: {message}"),
        }
    }
    app.running.state.faults.arm_panics(1);
    app.send(&ws.admin_token, &conversation, "second").await;
    let (mut own_failed, mut own_ended) = (false, false);
    let mut message_seen = false;
    while !(own_ended && message_seen) {
        let message = client.recv().await;
        match (message["type"].as_str(), message["id"].as_str()) {
            // After its first event, a panic is an error in `next`, then the end.
            (Some("next"), Some("own")) if message["payload"]["errors"].is_array() => {
                assert_eq!(
                    message["payload"]["errors"][0]["extensions"]["code"], "INTERNAL",
                    "{message}"
                );
                own_failed = true;
            }
            // Another inbox event of the warm-up (its conversation's change).
            (Some("next"), Some("own")) => {
                assert!(!own_failed, "an event after the end: {message}")
            }
            (Some("complete"), Some("own")) => {
                assert!(own_failed, "ended without its error");
                own_ended = true;
            }
            (Some("next"), Some("m")) => {
                assert_eq!(message["payload"]["data"]["messages"]["seq"], 4);
                message_seen = true;
            }
            other => panic!(
                "unexpected {other:?}: {message} (own ended: {own_ended}, message seen: {message_seen})"
            ),
        }
    }
    app.send(&ws.admin_token, &conversation, "third").await;
    assert_eq!(client.next_data("m").await["data"]["messages"]["seq"], 5);
    client.ping_pong().await;
}

#[tokio::test]
async fn a_panic_in_background_work_spares_the_next_message() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let (conversation, visitor) = app.start_conversation(&ws, Some("hello")).await;
    app.settle().await;
    let status = || async {
        app.data(
            Some(&ws.admin_token),
            "query($c: ID!) { conversation(id: $c) { status } }",
            json!({ "c": conversation }),
        )
        .await["conversation"]["status"]
            .as_str()
            .expect("status")
            .to_owned()
    };
    app.running.state.faults.arm_panics(1);
    app.send(&visitor, &conversation, "talk to a human").await;
    app.settle().await;
    assert_eq!(status().await, "AI", "the panicking handling did nothing");
    app.send(&visitor, &conversation, "talk to a human please")
        .await;
    app.settle().await;
    assert_eq!(status().await, "QUEUED", "the next message is handled");
}

#[tokio::test]
async fn a_client_that_answers_no_ping_is_closed() {
    let app = spawn(|c| c.ws_keepalive = Duration::from_millis(200)).await;
    let ws = app.workspace("Acme").await;
    let (conversation, _) = app.start_conversation(&ws, None).await;
    let mut silent = paused_reader(&app, &ws.admin_token, &conversation, 0).await;
    let state = app.running.state.clone();
    let ip = "127.0.0.1".parse().expect("ip");
    until("the silent client is closed", || {
        state.connections.sockets_from(ip) == 0
    })
    .await;
    // What it finds when it reads again: the ack, pings, then a close with 1008.
    let mut received = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = tokio::time::timeout(TIMEOUT, silent.read(&mut buf))
            .await
            .expect("read in time")
            .expect("read");
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
    }
    let close = received
        .windows(4)
        .position(|w| w[0] == 0x88 && w[1] >= 2 && u16::from_be_bytes([w[2], w[3]]) == 1008);
    assert!(close.is_some(), "a close frame with 1008");
}

#[tokio::test]
async fn a_costly_subscription_is_refused_per_event_and_the_socket_stays() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Acme").await;
    let mut client = WsClient::ready(&app, TRANSPORT_WS, &ws.admin_token).await;
    let aliases: String = (0..29)
        .map(|i| {
            format!("m{i}: messages(first: 200) {{ edges {{ node {{ sources {{ title }} }} }} }} ")
        })
        .collect();
    let costly = format!("subscription {{ inbox {{ conversation {{ {aliases} }} }} }}");
    client.subscribe("c", &costly, json!({})).await;
    let refused = client.recv().await;
    assert_eq!(
        (refused["type"].as_str(), refused["id"].as_str()),
        (Some("error"), Some("c"))
    );
    assert_eq!(
        refused["payload"][0]["extensions"]["reason"],
        "QUERY_TOO_COSTLY"
    );
    client.ping_pong().await;
}

#[tokio::test]
async fn a_response_carries_at_most_a_hundred_errors_the_rest_summarised() {
    let app = TestApp::spawn().await;
    // About 90 KB of duplicated directives: an error each, were they all answered.
    let directives = " @unknown".repeat(9_000);
    let document = format!("{{ articles{directives} {{ totalCount }} }}");
    assert!(document.len() > 70_000);
    let body = app.gql(None, &document, json!({})).await;
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors: {:.500}", body.to_string()));
    assert!(
        errors.len() > 1 && errors.len() <= 100,
        "{} errors",
        errors.len()
    );
    let last = errors.last().expect("a last error");
    assert_eq!(last["extensions"]["reason"], "TOO_MANY_ERRORS", "{last:#}");
    let left_out = last["extensions"]["omitted"].as_u64().expect("omitted");
    assert!(left_out > 1_000, "{last:#}");
    assert!(
        body.to_string().len() < 50_000,
        "{} bytes of errors",
        body.to_string().len()
    );
    // Every error still has its code.
    assert!(errors.iter().all(|e| e["extensions"]["code"].is_string()));

    // Over a socket too.
    let (_, visitor) = {
        let ws = app.workspace("Acme").await;
        app.start_conversation(&ws, None).await
    };
    let mut socket = WsClient::ready(&app, TRANSPORT_WS, &visitor).await;
    socket.subscribe("big", &document, json!({})).await;
    let answer = socket.recv().await;
    assert_eq!(answer["type"], "error", "{answer}");
    let errors = answer["payload"]
        .as_array()
        .expect("an error message's payload");
    assert!(errors.len() <= 100, "{} errors", errors.len());
    assert_eq!(
        errors.last().expect("last")["extensions"]["reason"],
        "TOO_MANY_ERRORS"
    );
}

/// RFC 6455 §7.1.1: the server sends its close frame, then reads (and discards)
/// what the client is still sending before it drops the connection, so the client
/// is not reset mid-write and always learns why. The client here writes a 2 MiB
/// frame in pieces, as a browser or Node's `ws` does, and only then reads.
#[tokio::test]
async fn an_oversized_frame_is_answered_with_1009_every_time() {
    let app = TestApp::spawn().await;
    let mut codes = Vec::new();
    for _ in 0..20 {
        codes.push(oversized_frame_close_code(&app).await);
    }
    assert!(codes.iter().all(|c| *c == 1009), "{codes:?}");
}

/// Send a masked 2 MiB text frame in 64 KiB pieces, then read until a close frame:
/// its code, or 1006 when a write failed or the connection ended without one.
async fn oversized_frame_close_code(app: &TestApp) -> u16 {
    let mut stream = upgraded(app).await;
    let mut buf = vec![0u8; 4096];
    let size: u64 = 2 * 1024 * 1024;
    let mut header = vec![0x81u8, 0x80 | 127];
    header.extend_from_slice(&size.to_be_bytes());
    header.extend_from_slice(&[0, 0, 0, 0]);
    // A client whose write fails (the connection reset under it) reports 1006, as
    // WebSocket libraries do: it never reads the close frame.
    if stream.write_all(&header).await.is_err() {
        return 1006;
    }
    let piece = vec![b'x'; 64 * 1024];
    for _ in 0..(size / piece.len() as u64) {
        if stream.write_all(&piece).await.is_err() {
            return 1006;
        }
        tokio::task::yield_now().await;
    }
    let mut received = Vec::new();
    let read = tokio::time::timeout(TIMEOUT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
            if received.len() >= 4 {
                return;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server answers or closes in time");
    if received.len() >= 4 && received[0] & 0x0f == 0x8 {
        u16::from_be_bytes([received[2], received[3]])
    } else {
        1006
    }
}
