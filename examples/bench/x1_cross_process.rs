//! X1: two casefile processes on one PostgreSQL database. Messages are sent
//! (`sendMessage`, by the workspace owner) to process A at a fixed 500 per second
//! (open loop), round-robin over 16 conversations; each conversation has one
//! `messages` subscriber (its visitor) connected to process B, so every delivery
//! crosses processes through `LISTEN`/`NOTIFY` (B loads the notified rows and
//! delivers them).
//!
//! Ceiling: the same, with the subscribers on process A, the one that stored the
//! messages (B keeps running, receiving the notifications, so only the
//! subscriber's side differs). Latency of a delivery: from the moment its
//! `sendMessage` was due to be sent to the subscriber receiving it (each message
//! body carries its number). The goal is on what crossing adds: the median over
//! round pairs of p99(cross-process) − p99(same process).
//!
//! Needs PostgreSQL (`--database-url postgres://…`); on SQLite it reports "skip".

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use crate::common::{
    self, BODY, Call, Ctx, Database, Goal, Listeners, Parsed, Row, SEND_MESSAGE, Scenario,
    ServerChild, Tally, Workspace, median, median_ratio, percentile,
};

pub const SCENARIO: Scenario = Scenario {
    id: "X1",
    name: "cross-process",
    about: "two casefile processes on PostgreSQL, sent on one, subscribed on the other, 500 messages/s: added p99",
    run: start,
};

fn start(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Vec<Row>>> {
    Box::pin(run(ctx))
}

const RATE: u32 = 500;
const CONVERSATIONS: usize = 16;

async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    if ctx.database_url.is_none() {
        return Ok(vec![Row::skip(
            "X1",
            "added p99 delivery across processes",
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
    let a = ServerChild::start(ctx, &["--serve-casefile", &db.url]).await?;
    let b = ServerChild::start(ctx, &["--serve-casefile", &db.url]).await?;
    let result = measure(ctx, &a, &b).await;
    a.stop().await;
    b.stop().await;
    result
}

/// The number a message body carries (`… #17`).
fn parse_numbered(text: &str) -> Parsed {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Parsed::Unexpected;
    };
    if matches!(value["type"].as_str(), Some("ping" | "pong")) {
        return Parsed::Ignore;
    }
    let number = value["payload"]["data"]["messages"]["body"]
        .as_str()
        .and_then(|body| body.rsplit_once(" #"))
        .and_then(|(_, n)| n.parse::<i64>().ok());
    match number {
        Some(n) => Parsed::Delivery(n),
        None => Parsed::Unexpected,
    }
}

/// Latencies of the rounds of one side.
#[derive(Default)]
struct Side {
    all: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    sent: usize,
    failed: u64,
    first_failure: Option<String>,
    tally: Tally,
    /// CPU of both casefile children over the sending and delivering phases.
    cpu_s: f64,
    delivered: usize,
    /// Per round: µs of CPU per delivered message.
    cpu_us: Vec<f64>,
}

/// User + system CPU seconds of the casefile children `pids`, summed.
fn cpu_of(pids: &[u32]) -> anyhow::Result<f64> {
    pids.iter().map(|&pid| common::cpu_seconds(pid)).sum()
}

async fn measure(ctx: &Ctx, a: &ServerChild, b: &ServerChild) -> anyhow::Result<Vec<Row>> {
    let (pairs, seconds) = if ctx.quick { (2, 1) } else { (3, 2) };
    let workspace = Workspace::of(a)?;
    // Both children work in both kinds of rounds (B at least receives the
    // notifications), so both count in each.
    let pids = [a.pid, b.pid];
    let (mut cross, mut same) = (Side::default(), Side::default());
    for pair in 0..pairs {
        round(a.addr, b.addr, &pids, &workspace, seconds, &mut cross).await?;
        round(a.addr, a.addr, &pids, &workspace, seconds, &mut same).await?;
        eprintln!(
            "X1 pair {}/{pairs}: p99 cross-process {:.2} ms, same process {:.2} ms",
            pair + 1,
            cross.p99.last().copied().unwrap_or(f64::NAN),
            same.p99.last().copied().unwrap_or(f64::NAN),
        );
    }
    let added: Vec<f64> = cross
        .p99
        .iter()
        .zip(&same.p99)
        .map(|(c, s)| c - s)
        .collect();
    let broken =
        !cross.tally.is_clean() || !same.tally.is_clean() || cross.failed + same.failed > 0;
    let describe = |side: &Side| {
        format!(
            "{} sent, {} failed{}, {} lost, {} broken connections{}",
            side.sent,
            side.failed,
            side.first_failure
                .as_deref()
                .map(|f| format!(" (e.g. {f})"))
                .unwrap_or_default(),
            side.tally.lost,
            side.tally.broken,
            side.tally
                .first_problem
                .as_deref()
                .map(|p| format!(" (first problem: {p})"))
                .unwrap_or_default(),
        )
    };
    let note = format!(
        "{pairs} pairs × {seconds} s at {RATE} messages/s over {CONVERSATIONS} conversations, one subscriber each; per-pair added p99 {:?} ms; cross-process: {}; same process: {}",
        added
            .iter()
            .map(|v| (v * 100.0).round() / 100.0)
            .collect::<Vec<_>>(),
        describe(&cross),
        describe(&same)
    );
    Ok(vec![
        Row::new(
            "X1",
            format!("p50 delivery at {RATE} msg/s (cross-process vs same process)"),
            "ms",
            (
                percentile(&mut cross.all, 50.0),
                percentile(&mut same.all, 50.0),
                median_ratio(&cross.p50, &same.p50),
            ),
            Goal::INFO,
        )
        .with_rounds(&cross.p50, &same.p50)
        .broken_if(broken),
        Row::new(
            "X1",
            format!("p99 delivery at {RATE} msg/s (cross-process vs same process)"),
            "ms",
            (
                percentile(&mut cross.all, 99.0),
                percentile(&mut same.all, 99.0),
                median_ratio(&cross.p99, &same.p99),
            ),
            Goal::INFO,
        )
        .with_rounds(&cross.p99, &same.p99)
        .broken_if(broken),
        Row::alone(
            "X1",
            "added p99 delivery across processes",
            "ms",
            median(&added),
            Goal::at_most(10.0),
        )
        .with_rounds(&added, &[])
        .broken_if(broken)
        .with_note(Some(note)),
        Row::new(
            "X1",
            "server CPU per delivered message (cross-process vs same process)",
            "µs",
            (
                cross.cpu_s / cross.delivered.max(1) as f64 * 1e6,
                same.cpu_s / same.delivered.max(1) as f64 * 1e6,
                median_ratio(&cross.cpu_us, &same.cpu_us),
            ),
            Goal::INFO,
        )
        .with_rounds(&cross.cpu_us, &same.cpu_us)
        .with_note(Some(format!(
            "an operation is one message sent with sendMessage to A and delivered to its subscriber (on B, or on A for the same-process column); the user + system CPU (/proc/PID/stat) of both casefile children, A and B, summed, from the first sendMessage of each round until its deliveries were in, divided by the {} and {} messages delivered; PostgreSQL's own CPU is not in it",
            cross.delivered, same.delivered
        ))),
    ])
}

/// One round: fresh conversations on A, their subscribers on `subscribe_to`,
/// `seconds` of messages to A at `RATE`.
async fn round(
    a: SocketAddr,
    subscribe_to: SocketAddr,
    pids: &[u32],
    workspace: &Workspace,
    seconds: u32,
    side: &mut Side,
) -> anyhow::Result<()> {
    let http = common::http_client()?;
    let mut conversations = Vec::new();
    for _ in 0..CONVERSATIONS {
        conversations.push(
            common::open_conversation(&http, a, &workspace.widget_key, &workspace.owner_token)
                .await?,
        );
    }
    let opened = common::open_all(CONVERSATIONS, CONVERSATIONS, Duration::from_secs(60), |i| {
        let (id, token) = &conversations[i];
        common::casefile_subscriber(subscribe_to, token, id)
    })
    .await?;
    let mut listeners = Listeners::start_with(
        opened.into_iter().map(|(socket, _)| socket).collect(),
        Arc::new(parse_numbered),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let n = (RATE * seconds) as usize;
    let calls: Vec<Call> = (0..n)
        .map(|i| {
            Call::graphql(
                a,
                Some(&workspace.owner_token),
                SEND_MESSAGE,
                json!({ "input": { "conversationId": conversations[i % CONVERSATIONS].0, "body": format!("{BODY} #{i}") } }),
            )
        })
        .collect();
    let warm = vec![Call::get(&format!("http://{a}/healthz")); 8];
    let cpu_before = cpu_of(pids)?;
    let (_, shots) = common::open_loop(calls, Duration::from_secs(1) / RATE, warm).await?;
    let (_, failed, first) = common::judge_shots(&shots, &common::no_graphql_errors());
    let expected = n - failed as usize;
    let mut tally = Tally::default();
    let got = common::collect_any(
        &mut listeners.seen,
        expected,
        Duration::from_secs(15),
        &mut tally,
    )
    .await;
    let cpu_s = cpu_of(pids)? - cpu_before;
    tally.lost += expected.saturating_sub(got.len()) as u64;
    let mut latencies: Vec<f64> = got
        .iter()
        .filter_map(|(key, at)| {
            let shot = shots.get(usize::try_from(*key).ok()?)?;
            Some(at.saturating_duration_since(shot.intended).as_secs_f64() * 1000.0)
        })
        .collect();
    listeners.stop(true, Duration::from_secs(10)).await;
    side.p50.push(percentile(&mut latencies, 50.0));
    side.p99.push(percentile(&mut latencies, 99.0));
    side.all.extend(latencies);
    side.sent += n;
    side.failed += failed;
    side.cpu_s += cpu_s;
    side.delivered += got.len();
    side.cpu_us.push(cpu_s / got.len().max(1) as f64 * 1e6);
    if side.first_failure.is_none() {
        side.first_failure = first;
    }
    side.tally.lost += tally.lost;
    side.tally.broken += tally.broken;
    if side.tally.first_problem.is_none() {
        side.tally.first_problem = tally.first_problem;
    }
    Ok(())
}
