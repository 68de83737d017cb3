//! Many servers, one dies: three `casefile` processes on one PostgreSQL database,
//! subscribers spread over them, and one process killed with SIGKILL while
//! messages flow. Its subscribers notice the close and reconnect to another
//! process with the last `seq` (`messages`) or cursor (`inbox`) they saw; senders
//! whose request fails retry on another process with the same `clientMessageId`.
//! Every message acknowledged to a sender reaches every subscriber once, in order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Child;
use tokio::time::Instant;

use crate::helpers::{TIMEOUT, fresh_database, require_postgres};
use crate::ws_client::{TRANSPORT_WS, WsClient};

const PROCESSES: usize = 3;
/// The process killed.
const DOOMED: usize = 2;
const CONVERSATIONS: usize = 4;
/// The most messages each sender (a visitor and an agent per conversation)
/// sends; the senders stop once [`AFTER_KILL`] more were acknowledged after the
/// kill, so however slow the machine, messages flow before and after it.
const PER_SENDER: usize = 400;
/// Acknowledged sends before the kill.
const KILL_AFTER: usize = 60;
/// Acknowledged sends after the kill before the senders stop.
const AFTER_KILL: usize = 120;
/// The last message of each conversation, sent once every sender is done: a
/// subscriber that saw it in each of its conversations has seen everything (its
/// stream is in order).
const FENCE: &str = "fence";
/// How long every subscriber may take to see everything, reconnection included.
const DELIVERED_WITHIN: Duration = Duration::from_secs(120);

const MESSAGES: &str = "subscription($c: ID!, $after: Int) { messages(conversationId: $c, afterSeq: $after) { id seq body } }";
const INBOX: &str = "subscription($after: String) { inbox(after: $after) { kind cursor conversation { id } message { id seq body } } }";
const SEND: &str = "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id seq } }";
const EVENTS: &str = "query($after: String) { events(after: $after, first: 100) { edges { cursor node { type } } pageInfo { hasNextPage endCursor } } }";

/// The processes; whatever becomes of the test, they die with it (SIGKILL).
struct Cluster {
    children: Vec<Child>,
    addrs: Vec<String>,
}

impl Cluster {
    /// Three processes on `url`, one after the other, each once it serves.
    async fn start(url: &str) -> Cluster {
        let mut cluster = Cluster {
            children: Vec::new(),
            addrs: Vec::new(),
        };
        for _ in 0..PROCESSES {
            let (child, addr) =
                crate::clients::serve_process_with(url, &[("CASEFILE_RATE_LIMITS", "off")]).await;
            cluster.children.push(child);
            cluster.addrs.push(addr);
        }
        cluster
    }

    /// `kill -9` process `i`, and wait until it is gone.
    async fn kill(&mut self, i: usize) {
        let child = &mut self.children[i];
        child.start_kill().expect("SIGKILL is sent");
        tokio::time::timeout(TIMEOUT, child.wait())
            .await
            .expect("the process ends in time")
            .expect("the process is reaped");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.start_kill();
        }
    }
}

/// POST a GraphQL operation to the process at `addr`: its `data`, or why not (the
/// connection failed, or the answer carries errors).
async fn gql(
    http: &reqwest::Client,
    addr: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Result<Value, String> {
    let mut request = http
        .post(format!("http://{addr}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|err| err.to_string())?;
    let body: Value = response.json().await.map_err(|err| err.to_string())?;
    match body.get("errors") {
        Some(errors) => Err(errors.to_string()),
        None => Ok(body["data"].clone()),
    }
}

/// [`gql`] that must succeed.
async fn data(
    http: &reqwest::Client,
    addr: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    gql(http, addr, token, query, variables)
        .await
        .unwrap_or_else(|err| panic!("{query}: {err}"))
}

struct Conversation {
    id: String,
    visitor: String,
    /// The agent that took it (an index into the agents).
    agent: usize,
}

/// A message a sender had acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Ack {
    seq: i64,
    id: String,
}

/// What a sender did.
#[derive(Default)]
struct Sent {
    /// Per conversation index.
    acked: Vec<(usize, Ack)>,
    /// Requests that failed and were sent again elsewhere, and why.
    retries: Vec<String>,
}

/// Send `bodies` to conversation `c` as `token`, one after the other, starting
/// on process `home`, until they are all sent or `stop` is set.
/// A failed request goes again to the next process with the same
/// `clientMessageId`, so that a send the dead process stored before it could
/// answer is not stored twice.
#[expect(clippy::too_many_arguments, reason = "a sender's whole description")]
async fn send_messages(
    http: reqwest::Client,
    addrs: Vec<String>,
    name: String,
    token: String,
    (c, conversation): (usize, String),
    mut process: usize,
    bodies: Vec<String>,
    acknowledged: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> Sent {
    let mut sent = Sent::default();
    for (i, body) in bodies.into_iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let input = json!({ "input": { "conversationId": conversation, "body": body, "clientMessageId": format!("{name}-{i}") } });
        loop {
            match gql(&http, &addrs[process], Some(&token), SEND, input.clone()).await {
                Ok(data) => {
                    let message = &data["sendMessage"];
                    sent.acked.push((
                        c,
                        Ack {
                            seq: message["seq"].as_i64().expect("seq"),
                            id: message["id"].as_str().expect("id").to_owned(),
                        },
                    ));
                    acknowledged.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(why) => {
                    assert!(
                        sent.retries.len() < 10,
                        "{name}: too many failed sends: {:?}, {why}",
                        sent.retries
                    );
                    sent.retries.push(format!("{name} on {process}: {why}"));
                    process = (process + 1) % addrs.len();
                }
            }
        }
    }
    sent
}

/// A message a subscriber received, and on which of its connections.
#[derive(Debug)]
struct Seen {
    conversation: String,
    seq: i64,
    id: String,
    connection: usize,
}

/// What a subscriber received, and where it was connected.
#[derive(Debug, Default)]
struct Received {
    seen: Vec<Seen>,
    /// Every event's cursor, in order (`inbox`).
    cursors: Vec<String>,
    /// The process of each of its connections, in order.
    connections: Vec<usize>,
}

/// What a subscriber listens to.
#[derive(Clone)]
enum Stream {
    /// `messages` of one conversation, resuming with `afterSeq`.
    Messages { conversation: String },
    /// `inbox` of the whole workspace, resuming with `after`.
    Inbox,
}

/// Where a subscription (re)starts.
enum Resume {
    Seq(i64),
    Cursor(String),
}

/// Subscribe to `stream` as `token` on process `home`; on a close, connect to the
/// next process that accepts and subscribe again from the last `seq` or cursor
/// seen. Ends once `FENCE` came in each of `fences` conversations.
#[expect(
    clippy::too_many_arguments,
    reason = "a subscriber's whole description"
)]
async fn subscriber(
    addrs: Vec<String>,
    token: String,
    stream: Stream,
    mut resume: Resume,
    home: usize,
    fences: usize,
    connected: tokio::sync::mpsc::UnboundedSender<()>,
    delivered: Arc<AtomicUsize>,
) -> Received {
    let mut received = Received::default();
    let mut fenced = BTreeSet::new();
    let mut process = home;
    for _ in 0..20 {
        let Some(mut client) = WsClient::try_ready_at(&addrs[process], TRANSPORT_WS, &token).await
        else {
            process = (process + 1) % addrs.len();
            continue;
        };
        let (query, variables) = match (&stream, &resume) {
            (Stream::Messages { conversation }, Resume::Seq(seq)) => {
                (MESSAGES, json!({ "c": conversation, "after": seq }))
            }
            (Stream::Inbox, Resume::Cursor(cursor)) => (INBOX, json!({ "after": cursor })),
            _ => unreachable!("a stream resumes by its own kind of position"),
        };
        let subscribe = json!({ "type": "subscribe", "id": "s", "payload": { "query": query, "variables": variables } });
        if client.try_send(subscribe).await.is_some() {
            received.connections.push(process);
            let _ = connected.send(());
            while let Some(message) = client.recv_or_gone().await {
                assert_eq!(message["type"], "next", "{message}");
                let data = &message["payload"]["data"];
                let (conversation, message) = match &stream {
                    Stream::Messages { conversation } => (conversation.clone(), &data["messages"]),
                    Stream::Inbox => {
                        let event = &data["inbox"];
                        let cursor = event["cursor"].as_str().expect("cursor").to_owned();
                        // Typing and answer pieces carry none; nothing here types.
                        assert!(!cursor.is_empty(), "{event}");
                        received.cursors.push(cursor.clone());
                        resume = Resume::Cursor(cursor);
                        if event["kind"] != "MESSAGE_CREATED" {
                            continue;
                        }
                        let conversation = event["conversation"]["id"].as_str().expect("id");
                        (conversation.to_owned(), &event["message"])
                    }
                };
                let seq = message["seq"].as_i64().expect("seq");
                if let Stream::Messages { .. } = stream {
                    resume = Resume::Seq(seq);
                }
                received.seen.push(Seen {
                    conversation: conversation.clone(),
                    seq,
                    id: message["id"].as_str().expect("id").to_owned(),
                    connection: received.connections.len() - 1,
                });
                delivered.fetch_add(1, Ordering::Relaxed);
                if message["body"] == FENCE {
                    fenced.insert(conversation);
                    if fenced.len() == fences {
                        return received;
                    }
                }
            }
        }
        // The process went away: on to the next one.
        process = (process + 1) % addrs.len();
    }
    panic!("no process kept the subscriber: {received:?}");
}

/// The cursor of the newest event once `n` `MESSAGE_CREATED` show in the log (on
/// PostgreSQL an event shows once no older transaction is still open).
async fn cursor_after_messages(
    http: &reqwest::Client,
    addr: &str,
    token: &str,
    n: usize,
) -> String {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let (mut messages, mut last, mut after) = (0, None, None::<String>);
            loop {
                let page = data(http, addr, Some(token), EVENTS, json!({ "after": after })).await;
                let page = &page["events"];
                for edge in page["edges"].as_array().expect("edges") {
                    messages += usize::from(edge["node"]["type"] == "MESSAGE_CREATED");
                    last = edge["cursor"].as_str().map(str::to_owned);
                }
                if page["pageInfo"]["hasNextPage"] != json!(true) {
                    break;
                }
                after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
            }
            if messages >= n {
                return last.expect("a cursor");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the setup's messages show in the log in time")
}

/// How the messages a subscriber saw differ from those acknowledged.
fn difference(seen: &[Ack], acked: &[Ack]) -> String {
    let seqs: Vec<i64> = seen.iter().map(|s| s.seq).collect();
    let mut duplicates: Vec<i64> = seqs
        .iter()
        .filter(|seq| seqs.iter().filter(|s| s == seq).count() > 1)
        .copied()
        .collect();
    duplicates.dedup();
    let missing: Vec<i64> = acked
        .iter()
        .filter(|a| !seen.contains(a))
        .map(|a| a.seq)
        .collect();
    let unexpected: Vec<&Ack> = seen.iter().filter(|s| !acked.contains(s)).collect();
    format!(
        "saw seqs {seqs:?}; duplicated {duplicates:?}, missing {missing:?}, not acknowledged {unexpected:?}"
    )
}

/// Wait until `done` holds, checking every few milliseconds.
async fn until(what: &str, done: impl Fn() -> bool) {
    tokio::time::timeout(TIMEOUT, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} in time"));
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set CASEFILE_TEST_DATABASE_URL and run with --ignored"]
async fn when_one_of_three_processes_is_killed_every_acknowledged_message_reaches_every_subscriber_once_in_order()
 {
    require_postgres();
    let started = Instant::now();

    // Arrange: a workspace on a fresh database, three processes serving it.
    let (url, _) = fresh_database().await;
    let created = crate::clients::workspace_by_cli(&url).await;
    let owner = created["adminToken"].as_str().expect("token").to_owned();
    let widget_key = created["widgetKey"]
        .as_str()
        .expect("widget key")
        .to_owned();
    let mut cluster = Cluster::start(&url).await;
    let addrs = cluster.addrs.clone();
    let http = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .expect("client");
    // No AI: only the senders write to the conversations.
    data(
        &http,
        &addrs[0],
        Some(&owner),
        "mutation { updateWorkspace(input: { responderEnabled: false }) { responderEnabled } }",
        json!({}),
    )
    .await;
    let mut agents = Vec::new();
    for name in ["Ada", "Bo"] {
        let email = format!("{}@acme.test", name.to_lowercase());
        data(
            &http,
            &addrs[0],
            Some(&owner),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({ "input": { "email": email, "name": name, "password": "agent-password", "role": "AGENT" } }),
        )
        .await;
        let signed = data(
            &http,
            &addrs[1],
            None,
            "mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { token } }",
            json!({ "e": email, "p": "agent-password" }),
        )
        .await;
        agents.push(
            signed["signIn"]["token"]
                .as_str()
                .expect("token")
                .to_owned(),
        );
    }
    // Each conversation is taken by an agent: who joined is its message 1.
    let mut conversations = Vec::new();
    for i in 0..CONVERSATIONS {
        let started = data(
            &http,
            &addrs[i % PROCESSES],
            None,
            "mutation($k: String!) { startConversation(input: { widgetKey: $k }) { conversation { id } visitorToken } }",
            json!({ "k": widget_key }),
        )
        .await;
        let conversation = Conversation {
            id: started["startConversation"]["conversation"]["id"]
                .as_str()
                .expect("id")
                .to_owned(),
            visitor: started["startConversation"]["visitorToken"]
                .as_str()
                .expect("token")
                .to_owned(),
            agent: i % agents.len(),
        };
        data(
            &http,
            &addrs[(i + 1) % PROCESSES],
            Some(&agents[conversation.agent]),
            "mutation($c: ID!) { takeOver(conversationId: $c) { id } }",
            json!({ "c": conversation.id }),
        )
        .await;
        conversations.push(conversation);
    }
    let start = cursor_after_messages(&http, &addrs[0], &owner, CONVERSATIONS).await;

    // Subscribers spread over the processes: the visitor and the agent of each
    // conversation on `messages`, the owner and each agent on `inbox`.
    let mut subscriptions = Vec::new();
    for c in &conversations {
        let stream = Stream::Messages {
            conversation: c.id.clone(),
        };
        subscriptions.push((c.visitor.clone(), stream.clone(), Resume::Seq(1), 1));
        subscriptions.push((agents[c.agent].clone(), stream, Resume::Seq(1), 1));
    }
    for token in std::iter::once(&owner).chain(&agents) {
        let resume = Resume::Cursor(start.clone());
        subscriptions.push((token.clone(), Stream::Inbox, resume, CONVERSATIONS));
    }
    let (connected, mut connections) = tokio::sync::mpsc::unbounded_channel();
    let mut subscribers = Vec::new();
    for (i, (token, stream, resume, fences)) in subscriptions.into_iter().enumerate() {
        let home = i % PROCESSES;
        // The conversation of a `messages` subscriber; `inbox` sees them all.
        let scope = match &stream {
            Stream::Messages { conversation } => Some(conversation.clone()),
            Stream::Inbox => None,
        };
        let delivered = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(subscriber(
            addrs.clone(),
            token,
            stream,
            resume,
            home,
            fences,
            connected.clone(),
            Arc::clone(&delivered),
        ));
        subscribers.push((home, scope, delivered, task));
    }
    for _ in 0..subscribers.len() {
        tokio::time::timeout(TIMEOUT, connections.recv())
            .await
            .expect("every subscriber connects in time")
            .expect("a subscriber connected");
    }

    // Act: a visitor and an agent send to each conversation, each starting on
    // its own process (the doomed one included), and process DOOMED is killed
    // while they do.
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for (i, c) in conversations.iter().enumerate() {
        for (who, token) in [("visitor", &c.visitor), ("agent", &agents[c.agent])] {
            let name = format!("{who}{i}");
            let bodies = (0..PER_SENDER).map(|n| format!("{name} #{n}")).collect();
            senders.push(tokio::spawn(send_messages(
                http.clone(),
                addrs.clone(),
                name,
                token.clone(),
                (i, c.id.clone()),
                senders.len() % PROCESSES,
                bodies,
                Arc::clone(&acknowledged),
                Arc::clone(&stop),
            )));
        }
    }
    // Once messages flow, and every subscriber of the doomed process has received
    // some on it.
    until("messages flow to every subscriber", || {
        acknowledged.load(Ordering::Relaxed) >= KILL_AFTER
            && subscribers
                .iter()
                .all(|(_, _, delivered, _)| delivered.load(Ordering::Relaxed) > 0)
    })
    .await;
    let acknowledged_before_kill = acknowledged.load(Ordering::Relaxed);
    cluster.kill(DOOMED).await;
    until("messages flow after the kill", || {
        acknowledged.load(Ordering::Relaxed) >= acknowledged_before_kill + AFTER_KILL
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut sent = Sent::default();
    for sender in senders {
        let part = tokio::time::timeout(DELIVERED_WITHIN, sender)
            .await
            .expect("the senders finish in time")
            .expect("a sender");
        sent.acked.extend(part.acked);
        sent.retries.extend(part.retries);
    }
    // The fences, through a surviving process, once every sender is done.
    for (i, c) in conversations.iter().enumerate() {
        let fenced = send_messages(
            http.clone(),
            addrs.clone(),
            format!("fence{i}"),
            c.visitor.clone(),
            (i, c.id.clone()),
            0,
            vec![FENCE.to_owned()],
            Arc::clone(&acknowledged),
            Arc::new(AtomicBool::new(false)),
        )
        .await;
        sent.acked.extend(fenced.acked);
    }
    let mut received = Vec::new();
    for (home, scope, _, task) in subscribers {
        let got = tokio::time::timeout(DELIVERED_WITHIN, task)
            .await
            .expect("every subscriber receives every acknowledged message in time")
            .expect("a subscriber");
        received.push((home, scope, got));
    }

    // Assert: the log holds every acknowledged message once, seq 2, 3, … with no
    // gap (seq 1 is who joined), and each subscriber saw exactly those of its
    // conversations, in order, once, across its reconnection.
    let mut acked: BTreeMap<&str, Vec<Ack>> = BTreeMap::new();
    for (c, ack) in &sent.acked {
        acked
            .entry(&conversations[*c].id)
            .or_default()
            .push(ack.clone());
    }
    for (conversation, acks) in &mut acked {
        acks.sort();
        let seqs: Vec<i64> = acks.iter().map(|a| a.seq).collect();
        let expected: Vec<i64> = (2..).take(acks.len()).collect();
        assert_eq!(seqs, expected, "{conversation}: one message per seq");
    }
    for (i, (home, scope, got)) in received.iter().enumerate() {
        for (&conversation, acks) in &acked {
            let seen: Vec<Ack> = got
                .seen
                .iter()
                .filter(|s| s.conversation == *conversation)
                .map(|s| Ack {
                    seq: s.seq,
                    id: s.id.clone(),
                })
                .collect();
            if scope.as_ref().is_some_and(|only| only != conversation) {
                assert!(seen.is_empty(), "subscriber {i}: only its conversation");
                continue;
            }
            assert!(
                &seen == acks,
                "subscriber {i} (home {home}, connections {:?}) in {conversation}: {}",
                got.connections,
                difference(&seen, acks)
            );
        }
        let mut sorted = got.cursors.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(got.cursors, sorted, "subscriber {i}: cursors increase");
        if *home == DOOMED {
            assert!(
                got.connections.len() >= 2 && !got.connections[1..].contains(&DOOMED),
                "subscriber {i} moved off the killed process: {:?}",
                got.connections
            );
            assert!(
                got.seen.iter().any(|s| s.connection == 0),
                "subscriber {i} received messages before the kill"
            );
        } else {
            assert_eq!(got.connections, [*home], "subscriber {i} kept its socket");
        }
    }
    eprintln!(
        "cluster: {} messages acknowledged ({acknowledged_before_kill} before the kill), {} sends retried elsewhere, {} subscribers, took {:.1?}",
        sent.acked.len(),
        sent.retries.len(),
        received.len(),
        started.elapsed()
    );
}
