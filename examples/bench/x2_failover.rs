//! X2: three casefile processes on one PostgreSQL database, and one of them
//! killed with SIGKILL while messages flow. 24 conversations are opened; each
//! has one `messages` subscriber (its visitor), and the owner holds one `inbox`
//! subscription on each process, all spread over the three processes. Messages
//! are sent at a fixed 300 per second (open loop), by the owner and the visitor in
//! turn, round-robin over the conversations and the processes, each with a
//! `clientMessageId`; a send whose process fails goes to the next one with the
//! same key. After 4 s the third process is killed: its subscribers notice the
//! close and subscribe again on the next process, from the last `seq`
//! (`afterSeq`) or cursor (`after`) they saw. Sending goes on for 10 s more.
//!
//! Latency of a delivery: from its `sendMessage` being acknowledged (the answer
//! arriving at the sender; a delivery that comes first counts as 0) to the
//! subscriber receiving it, in three windows by acknowledgement time: before the
//! kill, during (from the kill until every reconnected subscriber has received
//! everything acknowledged before it subscribed again), and after. Also: how long
//! the reconnected subscribers took to subscribe again, and every duplicate,
//! missing or out-of-order delivery of an acknowledged message (goal: none).
//!
//! Needs PostgreSQL (`--database-url postgres://…`); on SQLite it reports "skip".

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, anyhow, ensure};
use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::common::{
    self, BODY, Call, Ctx, Database, Goal, OPENING_SEQ, Row, Scenario, ServerChild, Workspace,
    median, percentile,
};

pub const SCENARIO: Scenario = Scenario {
    id: "X2",
    name: "failover",
    about: "three casefile processes on PostgreSQL, subscribers spread over them, one killed with SIGKILL at 300 messages/s: delivery p99 before, during and after, reconnect time, duplicates and missing",
    run: start,
};

fn start(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Vec<Row>>> {
    Box::pin(run(ctx))
}

const RATE: u32 = 300;
const CONVERSATIONS: usize = 24;
const PROCESSES: usize = 3;
/// The process killed.
const DOOMED: usize = 2;
/// Attempts of one send, one process after the other.
const ATTEMPTS: usize = 6;

const MESSAGES: &str = "subscription($c: ID!, $after: Int) { messages(conversationId: $c, afterSeq: $after) { seq body } }";
const INBOX: &str = "subscription($after: String) { inbox(after: $after) { kind cursor message { seq body } conversation { id } } }";
const SEND: &str = "mutation($input: SendMessageInput!) { sendMessage(input: $input) { seq } }";
const EVENTS: &str = "query($after: String) { events(after: $after, first: 100) { edges { cursor node { type } } pageInfo { hasNextPage endCursor } } }";

async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    if ctx.database_url.is_none() {
        return Ok(vec![Row::skip(
            "X2",
            "delivery p99 before, during and after a process is killed",
            "needs PostgreSQL: run with --database-url postgres://…",
        )]);
    }
    let db = Database::fresh(ctx).await?;
    let result = run_on(ctx, &db).await;
    db.cleanup().await;
    result
}

async fn run_on(ctx: &Ctx, db: &Database) -> anyhow::Result<Vec<Row>> {
    // One after the other: the first creates the schema.
    let mut children = Vec::new();
    for _ in 0..PROCESSES {
        children.push(Some(
            ServerChild::start(ctx, &["--serve-casefile", &db.url]).await?,
        ));
    }
    let result = measure(ctx, &mut children).await;
    for child in children.into_iter().flatten() {
        child.stop().await;
    }
    result
}

/// What a subscriber listens to.
#[derive(Clone)]
enum Stream {
    /// `messages` of conversation `c`, resuming with `afterSeq`.
    Messages { c: usize, id: String },
    /// The workspace's `inbox`, resuming with `after`.
    Inbox,
}

/// Where a subscription (re)starts.
enum Resume {
    Seq(i64),
    Cursor(String),
}

/// What a subscriber reports.
enum Note {
    /// Its first frame arrived: it is subscribed.
    Live,
    /// Message `number` (of the schedule) with `seq` arrived at `at`.
    Delivery {
        sub: usize,
        number: usize,
        c: usize,
        seq: i64,
        at: Instant,
    },
    /// Its connection closed at `at`.
    Closed { sub: usize, at: Instant },
    /// It subscribed again, on `process`, at `at`.
    Resubscribed {
        sub: usize,
        process: usize,
        at: Instant,
    },
    /// Something it did not expect (an error, a frame it cannot read).
    Broken(String),
}

/// The number a body carries (`… #17`); `None` for the opening message.
fn numbered(body: &str) -> Option<usize> {
    body.rsplit_once(" #").and_then(|(_, n)| n.parse().ok())
}

/// A graphql-transport-ws connection to `addr` subscribed to `stream` from
/// `resume`.
async fn open(
    addr: SocketAddr,
    token: &str,
    stream: &Stream,
    resume: &Resume,
) -> anyhow::Result<common::Socket> {
    let mut socket = common::connect(
        &format!("ws://{addr}/graphql"),
        Some("graphql-transport-ws"),
    )
    .await?;
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    socket.send(Message::Text(init.to_string().into())).await?;
    let ack = common::next_protocol_message(&mut socket).await?;
    ensure!(ack["type"] == "connection_ack", "expected an ack: {ack}");
    let (query, variables) = match (stream, resume) {
        (Stream::Messages { id, .. }, Resume::Seq(seq)) => {
            (MESSAGES, json!({ "c": id, "after": seq }))
        }
        (Stream::Inbox, Resume::Cursor(cursor)) => (INBOX, json!({ "after": cursor })),
        _ => anyhow::bail!("a stream resumes by its own kind of position"),
    };
    let subscribe = json!({ "type": "subscribe", "id": "1", "payload": { "query": query, "variables": variables } });
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await?;
    Ok(socket)
}

/// Subscriber `sub`: subscribed on process `home`, and after a close on the next
/// process that accepts, from the last `seq` or cursor it saw; until `stop`.
#[expect(
    clippy::too_many_arguments,
    reason = "a subscriber's whole description"
)]
async fn subscriber(
    sub: usize,
    addrs: Vec<SocketAddr>,
    token: String,
    stream: Stream,
    mut resume: Resume,
    home: usize,
    notes: mpsc::UnboundedSender<Note>,
    stop: CancellationToken,
) {
    let mut process = home;
    let mut live = false;
    for attempt in 0..30 {
        if stop.is_cancelled() {
            return;
        }
        let Ok(mut socket) = open(addrs[process], &token, &stream, &resume).await else {
            process = (process + 1) % addrs.len();
            continue;
        };
        if attempt > 0 {
            let _ = notes.send(Note::Resubscribed {
                sub,
                process,
                at: Instant::now(),
            });
        }
        loop {
            let frame = tokio::select! {
                biased;
                frame = socket.next() => frame,
                () = stop.cancelled() => {
                    let _ = tokio::time::timeout(Duration::from_secs(5), socket.close(None)).await;
                    return;
                }
            };
            let at = Instant::now();
            let text = match frame {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    let _ = notes.send(Note::Closed { sub, at });
                    break;
                }
                Some(Ok(_)) => continue,
            };
            let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
                let _ = notes.send(Note::Broken(format!("not JSON: {}", text.as_str())));
                continue;
            };
            match value["type"].as_str() {
                Some("ping" | "pong") => continue,
                Some("next") => {}
                _ => {
                    let _ = notes.send(Note::Broken(format!("unexpected: {value}")));
                    continue;
                }
            }
            if !live {
                live = true;
                let _ = notes.send(Note::Live);
            }
            let data = &value["payload"]["data"];
            let (c, message) = match &stream {
                Stream::Messages { c, .. } => (Some(*c), &data["messages"]),
                Stream::Inbox => {
                    let event = &data["inbox"];
                    if let Some(cursor) = event["cursor"].as_str().filter(|c| !c.is_empty()) {
                        resume = Resume::Cursor(cursor.to_owned());
                    }
                    if event["kind"] != "MESSAGE_CREATED" {
                        continue;
                    }
                    (None, &event["message"])
                }
            };
            let Some(seq) = message["seq"].as_i64() else {
                let _ = notes.send(Note::Broken(format!("no seq: {value}")));
                continue;
            };
            if let Stream::Messages { .. } = stream {
                resume = Resume::Seq(seq);
            }
            if let Some(number) = message["body"].as_str().and_then(numbered) {
                let _ = notes.send(Note::Delivery {
                    sub,
                    number,
                    c: c.unwrap_or(number % CONVERSATIONS),
                    seq,
                    at,
                });
            }
        }
        process = (process + 1) % addrs.len();
    }
    let _ = notes.send(Note::Broken(format!(
        "subscriber {sub}: no process kept it"
    )));
}

/// One scheduled send.
struct Sent {
    intended: Instant,
    /// When its answer arrived, if one did.
    acked: Option<Instant>,
    /// Requests made (more than one: it failed on a process and went to the next).
    attempts: usize,
    last_error: Option<String>,
}

/// The answer of a `sendMessage`: fine, or why not.
fn stored(body: &[u8]) -> Result<(), String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    match value.get("errors") {
        Some(errors) => Err(errors.to_string()),
        None if value["data"]["sendMessage"]["seq"].is_i64() => Ok(()),
        None => Err(format!("no seq: {value}")),
    }
}

/// Open loop: `calls[i]` (with its first process) is sent at `start + i ×
/// period` from a thread and runtime of its own; a failed request goes to the
/// next process, same body. The start of the schedule, and each send.
async fn send_schedule(
    calls: Vec<(Call, usize)>,
    addrs: Vec<SocketAddr>,
    period: Duration,
    start_tx: tokio::sync::oneshot::Sender<Instant>,
) -> anyhow::Result<Vec<Sent>> {
    let client = common::load_client()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("sender runtime")?;
    let n = calls.len();
    let (reply, answer) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-x2-sender".to_owned())
        .spawn(move || {
            let sent = runtime.block_on(async move {
                let start = Instant::now() + Duration::from_millis(20);
                let _ = start_tx.send(start);
                let mut tasks = Vec::with_capacity(calls.len());
                for (i, (call, home)) in calls.into_iter().enumerate() {
                    let intended = start + period * i as u32;
                    tokio::time::sleep_until(intended).await;
                    let (client, addrs) = (client.clone(), addrs.clone());
                    tasks.push(tokio::spawn(async move {
                        let mut last_error = None;
                        for attempt in 0..ATTEMPTS {
                            let call = call.to(addrs[(home + attempt) % addrs.len()]);
                            match common::send(&client, &call).await.and_then(|b| stored(&b)) {
                                Ok(()) => {
                                    return Sent {
                                        intended,
                                        acked: Some(Instant::now()),
                                        attempts: attempt + 1,
                                        last_error,
                                    };
                                }
                                Err(err) => last_error = Some(err),
                            }
                        }
                        Sent {
                            intended,
                            acked: None,
                            attempts: ATTEMPTS,
                            last_error,
                        }
                    }));
                }
                let mut sent = Vec::with_capacity(tasks.len());
                for task in tasks {
                    if let Ok(s) = task.await {
                        sent.push(s);
                    }
                }
                sent
            });
            let _ = reply.send(sent);
        })
        .context("starting the sender thread")?;
    let limit = period * n as u32 + common::STEP_TIMEOUT * ATTEMPTS as u32;
    let sent = tokio::time::timeout(limit, answer)
        .await
        .context("the schedule did not finish in time")?
        .context("the sender thread ended")?;
    ensure!(sent.len() == n, "{} of {n} sends panicked", n - sent.len());
    Ok(sent)
}

/// The cursor to start the `inbox` subscribers from: the one before the last
/// `MESSAGE_CREATED` of the setup, once all `messages` of it show, so that each
/// subscriber's first frame (that message) says it is subscribed.
async fn inbox_start(
    http: &reqwest::Client,
    addr: SocketAddr,
    token: &str,
    messages: usize,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + common::STEP_TIMEOUT;
    loop {
        let (mut count, mut before_last, mut previous, mut after) =
            (0, None::<String>, None::<String>, None::<String>);
        loop {
            let data =
                common::graphql(http, addr, Some(token), EVENTS, json!({ "after": after })).await?;
            let page = &data["events"];
            for edge in page["edges"].as_array().context("edges")? {
                if edge["node"]["type"] == "MESSAGE_CREATED" {
                    count += 1;
                    before_last = previous.clone();
                }
                previous = edge["cursor"].as_str().map(str::to_owned);
            }
            if page["pageInfo"]["hasNextPage"] != json!(true) {
                break;
            }
            after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        }
        if count >= messages {
            return before_last.context("an event before the last message");
        }
        ensure!(
            Instant::now() < deadline,
            "the setup's messages did not show in the event log"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// User + system CPU seconds of the processes `pids`, summed.
fn cpu_of(pids: &[u32]) -> anyhow::Result<f64> {
    pids.iter().map(|&pid| common::cpu_seconds(pid)).sum()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn measure(ctx: &Ctx, children: &mut [Option<ServerChild>]) -> anyhow::Result<Vec<Row>> {
    let (before, total) = if ctx.quick {
        (Duration::from_secs(2), Duration::from_secs(6))
    } else {
        (Duration::from_secs(4), Duration::from_secs(14))
    };
    let live: Vec<&ServerChild> = children.iter().flatten().collect();
    let addrs: Vec<SocketAddr> = live.iter().map(|c| c.addr).collect();
    let pids: Vec<u32> = live.iter().map(|c| c.pid).collect();
    let workspace = Workspace::of(live[0])?;
    let http = common::http_client()?;

    // Conversations opened on each process in turn, then subscribers: each
    // conversation's visitor on `messages`, and the owner on `inbox` on each
    // process; subscriber i on process i mod 3.
    let mut conversations = Vec::new();
    for i in 0..CONVERSATIONS {
        conversations.push(
            common::open_conversation(
                &http,
                addrs[i % PROCESSES],
                &workspace.widget_key,
                &workspace.owner_token,
            )
            .await?,
        );
    }
    // Who joined and the opening message, per conversation.
    let start_cursor =
        inbox_start(&http, addrs[0], &workspace.owner_token, 2 * CONVERSATIONS).await?;
    let mut subscribers: Vec<(String, Stream, Resume)> = conversations
        .iter()
        .enumerate()
        .map(|(c, (id, visitor))| {
            let stream = Stream::Messages { c, id: id.clone() };
            (visitor.clone(), stream, Resume::Seq(OPENING_SEQ - 1))
        })
        .collect();
    for _ in 0..PROCESSES {
        let resume = Resume::Cursor(start_cursor.clone());
        subscribers.push((workspace.owner_token.clone(), Stream::Inbox, resume));
    }
    let scopes: Vec<Option<usize>> = subscribers
        .iter()
        .map(|(_, stream, _)| match stream {
            Stream::Messages { c, .. } => Some(*c),
            Stream::Inbox => None,
        })
        .collect();
    let homes: Vec<usize> = (0..subscribers.len()).map(|i| i % PROCESSES).collect();
    let (notes_tx, mut notes) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    for (sub, (token, stream, resume)) in subscribers.into_iter().enumerate() {
        tasks.push(tokio::spawn(subscriber(
            sub,
            addrs.clone(),
            token,
            stream,
            resume,
            homes[sub],
            notes_tx.clone(),
            stop.clone(),
        )));
    }
    drop(notes_tx);
    let mut live_count = 0;
    let mut early = Vec::new();
    while live_count < tasks.len() {
        let note = tokio::time::timeout(common::STEP_TIMEOUT, notes.recv())
            .await
            .context("every subscriber is subscribed in time")?
            .context("the subscribers ended")?;
        match note {
            Note::Live => live_count += 1,
            Note::Broken(why) => return Err(anyhow!("a subscriber broke: {why}")),
            other => early.push(other),
        }
    }

    // The schedule: message n to conversation n mod 24, by the owner (even n) or
    // the visitor (odd n), first to process n mod 3.
    let n = (RATE as usize) * total.as_secs() as usize;
    let calls: Vec<(Call, usize)> = (0..n)
        .map(|i| {
            let c = i % CONVERSATIONS;
            let (id, visitor) = &conversations[c];
            let token = if i % 2 == 0 {
                &workspace.owner_token
            } else {
                visitor
            };
            let call = Call::graphql(
                addrs[i % PROCESSES],
                Some(token),
                SEND,
                json!({ "input": { "conversationId": id, "body": format!("{BODY} #{i}"), "clientMessageId": format!("x2-{i}") } }),
            );
            (call, i % PROCESSES)
        })
        .collect();
    let cpu_before = cpu_of(&pids)?;
    let pg_before = common::postgres_cpu_seconds()?;
    let (start_tx, start_rx) = tokio::sync::oneshot::channel();
    let schedule = tokio::spawn(send_schedule(
        calls,
        addrs.clone(),
        Duration::from_secs(1) / RATE,
        start_tx,
    ));
    let start = start_rx.await.context("the schedule started")?;
    tokio::time::sleep_until(start + before).await;
    let doomed_cpu_at_kill = common::cpu_seconds(pids[DOOMED])?;
    let killed_at = Instant::now();
    children[DOOMED]
        .take()
        .context("the doomed child")?
        .kill()
        .await?;
    let sent = schedule.await.context("the schedule")??;

    // Everything acknowledged, to every subscriber of its conversation.
    let acked: Vec<Option<Instant>> = sent.iter().map(|s| s.acked).collect();
    let expected: usize = scopes
        .iter()
        .map(|scope| {
            (0..n)
                .filter(|&i| acked[i].is_some() && scope.is_none_or(|c| i % CONVERSATIONS == c))
                .count()
        })
        .sum();
    let mut first: HashMap<(usize, usize), Instant> = HashMap::new();
    let mut duplicates = 0u64;
    let mut out_of_order = 0u64;
    let mut broken: Vec<String> = Vec::new();
    let mut last_seq: HashMap<(usize, usize), i64> = HashMap::new();
    let mut closed: HashMap<usize, Instant> = HashMap::new();
    let mut resubscribed: HashMap<usize, (usize, Instant)> = HashMap::new();
    let mut unacknowledged_seen = 0u64;
    let mut note_one = |note: Note, first: &mut HashMap<(usize, usize), Instant>| match note {
        Note::Live => {}
        Note::Delivery {
            sub,
            number,
            c,
            seq,
            at,
        } => {
            let last = last_seq.entry((sub, c)).or_insert(0);
            if seq <= *last {
                out_of_order += 1;
            }
            *last = seq;
            match first.entry((sub, number)) {
                std::collections::hash_map::Entry::Occupied(_) => duplicates += 1,
                std::collections::hash_map::Entry::Vacant(entry) => {
                    entry.insert(at);
                    if acked.get(number).is_none_or(|a| a.is_none()) {
                        unacknowledged_seen += 1;
                    }
                }
            }
        }
        Note::Closed { sub, at } => {
            closed.entry(sub).or_insert(at);
        }
        Note::Resubscribed { sub, process, at } => {
            resubscribed.insert(sub, (process, at));
        }
        Note::Broken(why) => broken.push(why),
    };
    for note in early {
        note_one(note, &mut first);
    }
    let delivered = |first: &HashMap<(usize, usize), Instant>| {
        first.keys().filter(|(_, k)| acked[*k].is_some()).count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered(&first) < expected {
        let Ok(Some(note)) = tokio::time::timeout_at(deadline, notes.recv()).await else {
            break;
        };
        note_one(note, &mut first);
    }
    let cpu_s = cpu_of(&[pids[0], pids[1]])? + doomed_cpu_at_kill - cpu_before;
    let pg_cpu_s = common::postgres_cpu_seconds()? - pg_before;
    stop.cancel();
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    while let Ok(note) = notes.try_recv() {
        note_one(note, &mut first);
    }
    let missing = (expected - delivered(&first).min(expected)) as u64;

    // The windows: "during" ends once every reconnected subscriber has what was
    // acknowledged before it subscribed again.
    let mut caught_up = killed_at;
    let mut reconnects = Vec::new();
    for (&sub, &(_, at)) in &resubscribed {
        reconnects.push(ms(at - killed_at));
        caught_up = caught_up.max(at);
        for (&(s, number), &got) in &first {
            if s == sub && acked[number].is_some_and(|a| a <= at) {
                caught_up = caught_up.max(got);
            }
        }
    }
    let noticed: Vec<f64> = closed.values().map(|&at| ms(at - killed_at)).collect();
    let (mut before_kill, mut during, mut after) = (Vec::new(), Vec::new(), Vec::new());
    // Per second of the schedule, by acknowledgement time.
    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); total.as_secs() as usize + 2];
    for (&(_, number), &got) in &first {
        let Some(ack) = acked[number] else { continue };
        let latency = ms(got.saturating_duration_since(ack));
        let second =
            (ack.saturating_duration_since(start).as_secs() as usize).min(seconds.len() - 1);
        seconds[second].push(latency);
        if ack < killed_at {
            before_kill.push(latency);
        } else if ack < caught_up {
            during.push(latency);
        } else {
            after.push(latency);
        }
    }
    let expected_reconnects = homes.iter().filter(|&&h| h == DOOMED).count();
    let retried = sent.iter().filter(|s| s.attempts > 1).count();
    let unacknowledged: Vec<&Sent> = sent.iter().filter(|s| s.acked.is_none()).collect();
    let ack_p99 = {
        let mut v: Vec<f64> = sent
            .iter()
            .filter_map(|s| s.acked.map(|a| ms(a - s.intended)))
            .collect();
        percentile(&mut v, 99.0)
    };
    let problems = duplicates + missing + out_of_order;
    let broken_run = !broken.is_empty() || resubscribed.len() != expected_reconnects;
    let window = |name: &str, v: &mut Vec<f64>| {
        let count = v.len();
        let p50 = percentile(v, 50.0);
        let p99 = percentile(v, 99.0);
        (p99, format!("{name}: {count} deliveries, p50 {p50:.2} ms"))
    };
    let (p99_before, note_before) = window("before", &mut before_kill);
    let (p99_during, note_during) = window("during", &mut during);
    let (p99_after, note_after) = window("after", &mut after);
    let per_second: Vec<String> = seconds
        .iter_mut()
        .filter(|v| !v.is_empty())
        .map(|v| format!("{:.1}", percentile(v, 99.0)))
        .collect();
    let note_after = format!(
        "{note_after}; p99 per second of the schedule (ms, kill after second {}): {}",
        before.as_secs(),
        per_second.join(", ")
    );
    let setup = format!(
        "{n} messages at {RATE}/s over {CONVERSATIONS} conversations, {} subscribers ({CONVERSATIONS} `messages`, {PROCESSES} `inbox`) over {PROCESSES} processes, process {DOOMED} killed after {:.0?} ({expected_reconnects} of its subscribers)",
        homes.len(),
        before
    );
    Ok(vec![
        Row::alone(
            "X2",
            "p99 delivery before the kill (acknowledged → received)",
            "ms",
            p99_before,
            Goal::INFO,
        )
        .broken_if(broken_run)
        .with_note(Some(format!("{setup}; {note_before}"))),
        Row::alone(
            "X2",
            "p99 delivery during (kill → every reconnected subscriber caught up)",
            "ms",
            p99_during,
            Goal::INFO,
        )
        .broken_if(broken_run)
        .with_note(Some(format!(
            "{note_during}; the window lasted {:.0} ms",
            ms(caught_up - killed_at)
        ))),
        Row::alone(
            "X2",
            "p99 delivery after",
            "ms",
            p99_after,
            Goal::INFO,
        )
        .broken_if(broken_run)
        .with_note(Some(note_after)),
        Row::alone(
            "X2",
            "reconnect time (kill → subscribed again, slowest)",
            "ms",
            reconnects.iter().copied().fold(f64::NAN, f64::max),
            Goal::INFO,
        )
        .broken_if(broken_run)
        .with_note(Some(format!(
            "{} of {expected_reconnects} subscribers of the killed process subscribed again, median {:.1} ms after the kill; they saw the close after {:.1} ms (median); every one caught up {:.0} ms after the kill",
            reconnects.len(),
            median(&reconnects),
            median(&noticed),
            ms(caught_up - killed_at)
        ))),
        Row::alone(
            "X2",
            "duplicate, missing or out-of-order deliveries of acknowledged messages",
            "",
            problems as f64,
            Goal::at_most(0.0),
        )
        .broken_if(broken_run)
        .with_note(Some(format!(
            "{duplicates} duplicates, {missing} missing, {out_of_order} out of order of {expected} expected deliveries; {retried} sends went again to another process, {} never acknowledged{} (allowed to be lost; {unacknowledged_seen} of those delivered anyway); send acknowledged p99 {ack_p99:.1} ms after it was due{}",
            unacknowledged.len(),
            unacknowledged
                .first()
                .and_then(|s| s.last_error.as_deref())
                .map(|e| format!(" (e.g. {e})"))
                .unwrap_or_default(),
            if broken.is_empty() {
                String::new()
            } else {
                format!("; {} subscriber problems, first: {}", broken.len(), broken[0])
            }
        ))),
        Row::alone(
            "X2",
            "server CPU per acknowledged message",
            "µs",
            cpu_s / (n - unacknowledged.len()).max(1) as f64 * 1e6,
            Goal::INFO,
        )
        .with_note(Some(format!(
            "user + system CPU of the three casefile children (the killed one until its kill) from the first send until every delivery was in: {cpu_s:.2} s; PostgreSQL's own: {pg_cpu_s:.2} s"
        ))),
    ])
}
