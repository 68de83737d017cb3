//! S1: one message fanned out to N `messages` subscribers.
//!
//! N graphql-transport-ws connections subscribe to `messages` of one conversation
//! (each counts once it received the conversation's opening message, replayed); the
//! owner sends a message over HTTP; the latency of one delivery is the time from
//! the `sendMessage` response arriving at the sender to a subscriber receiving the
//! `next` of that seq. All clients live in this process, so one clock.
//!
//! Ceiling: the raw axum server of `common`, which broadcasts the body of a `POST
//! /broadcast` (a frame with the very bytes casefile sends for such a message) to
//! all its WebSocket connections; latency from the POST response, the same way.
//!
//! Both servers run as child processes (each holds N sockets, and the open-files
//! limit is per process). Rounds alternate ours, ceiling, ours, …; each round
//! connects N fresh subscribers (to a fresh conversation for ours), sends a few
//! messages one after the other, then closes its connections with a close
//! handshake, so the next round starts on a quiet machine.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use futures_util::future::BoxFuture;
use serde_json::json;
use tokio::time::Instant;

use crate::common::{
    self, Ctx, Database, Goal, Listeners, Post, Row, Scenario, Sender, ServerChild, Tally,
    Workspace, median_ratio, percentile, thousands,
};

pub const SCENARIO: Scenario = Scenario {
    id: "S1",
    name: "fanout",
    about: "one message fanned out to N `messages` subscribers: delivery latency p50/p99",
    run: start,
};

fn start(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Vec<Row>>> {
    Box::pin(run(ctx))
}

/// One size of the scenario.
struct Size {
    subscribers: usize,
    /// Round pairs (ours, ceiling).
    pairs: usize,
    /// Messages sent per round.
    messages: usize,
    p99_goal: Goal,
}

/// How many connections are being opened at once.
const CONNECT_CONCURRENCY: usize = 128;
/// Pause between two messages of a round, so one fan-out ends before the next.
const GAP: Duration = Duration::from_millis(100);

fn sizes(quick: bool) -> Vec<Size> {
    let at_1000 = Goal {
        max_ratio: Some(1.5),
        ..Goal::at_most(60.0)
    };
    let at_10000 = Goal::at_most(1000.0);
    if quick {
        return vec![Size {
            subscribers: 1_000,
            pairs: 3,
            messages: 5,
            p99_goal: at_1000,
        }];
    }
    vec![
        Size {
            subscribers: 1_000,
            pairs: 11,
            messages: 10,
            p99_goal: at_1000,
        },
        Size {
            subscribers: 10_000,
            pairs: 3,
            messages: 4,
            p99_goal: at_10000,
        },
    ]
}

async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let sizes = sizes(ctx.quick);
    let largest = sizes.iter().map(|s| s.subscribers).max().unwrap_or(0);
    ensure!(
        ctx.nofile >= largest as u64 + 200,
        "S1 needs an open-files limit of at least {} (it is {})",
        largest + 200,
        ctx.nofile
    );
    let db = Database::fresh(ctx).await?;
    let result = run_on(ctx, &db, &sizes).await;
    db.cleanup().await;
    result
}

async fn run_on(ctx: &Ctx, db: &Database, sizes: &[Size]) -> anyhow::Result<Vec<Row>> {
    let ours = ServerChild::start(ctx, &["--serve-casefile", &db.url]).await?;
    let raw = ServerChild::start(ctx, &["--serve-raw"]).await?;
    let result = measure(&ours, &raw, sizes).await;
    ours.stop().await;
    raw.stop().await;
    result
}

/// The casefile server of the run, as the sender and subscribers see it.
struct Ours {
    addr: SocketAddr,
    /// The casefile child, whose CPU the rounds read.
    pid: u32,
    workspace: Workspace,
}

/// A `next` frame as casefile sends it for a message of `BODY`, with the seq left
/// out: the ceiling broadcasts the same bytes.
struct FrameTemplate {
    before_seq: String,
    after_seq: String,
}

impl FrameTemplate {
    /// From the `next` frame of the opening message (a one-digit seq).
    fn from_first(frame: &str) -> anyhow::Result<FrameTemplate> {
        let marker = format!("\"seq\":{}", common::OPENING_SEQ);
        let at = frame.find(&marker).context("no seq in the frame")?;
        let rest = &frame[at + marker.len()..];
        ensure!(
            !rest.starts_with(|c: char| c.is_ascii_digit()),
            "frame has a seq other than {}: {frame}",
            common::OPENING_SEQ
        );
        Ok(FrameTemplate {
            before_seq: frame[..at + marker.len() - 1].to_owned(),
            after_seq: rest.to_owned(),
        })
    }

    fn frame(&self, seq: i64) -> String {
        format!("{}{seq}{}", self.before_seq, self.after_seq)
    }
}

async fn measure(
    ours: &ServerChild,
    raw: &ServerChild,
    sizes: &[Size],
) -> anyhow::Result<Vec<Row>> {
    let http = common::http_client()?;
    let sender = Sender::start()?;
    let ours = Ours {
        addr: ours.addr,
        pid: ours.pid,
        workspace: Workspace::of(ours)?,
    };

    // One probe subscriber captures the frame casefile sends for the opening message.
    let (conversation, visitor) = common::open_conversation(
        &http,
        ours.addr,
        &ours.workspace.widget_key,
        &ours.workspace.owner_token,
    )
    .await?;
    let (probe, first) = common::casefile_subscriber(ours.addr, &visitor, &conversation).await?;
    drop(probe);
    let template = FrameTemplate::from_first(&first)?;
    let frame_bytes = template.frame(2).len();
    eprintln!(
        "S1: a `next` frame is {frame_bytes} bytes: {}",
        template.frame(2)
    );

    let mut rows = Vec::new();
    for size in sizes {
        let n = size.subscribers;
        let mut ours_rounds = Rounds::default();
        let mut ceiling_rounds = Rounds::default();
        // The casefile child's CPU over the sending phases of its rounds, and the
        // messages sent in them.
        let (mut cpu_s, mut published) = (0.0, 0usize);
        for pair in 0..size.pairs {
            let started = Instant::now();
            let (latencies, tally, cpu) = ours_round(&http, &sender, &ours, size).await?;
            ours_rounds.add((latencies, tally));
            cpu_s += cpu;
            published += size.messages;
            let ours_took = started.elapsed();
            let started = Instant::now();
            let latencies = ceiling_round(&sender, raw.addr, &template, size).await?;
            ceiling_rounds.add(latencies);
            eprintln!(
                "S1 N={n} pair {}/{}: p99 ours {:.2} ms ({:.1?}), ceiling {:.2} ms ({:.1?})",
                pair + 1,
                size.pairs,
                ours_rounds.p99.last().copied().unwrap_or(f64::NAN),
                ours_took,
                ceiling_rounds.p99.last().copied().unwrap_or(f64::NAN),
                started.elapsed(),
            );
        }
        let note = format!(
            "{} pairs × {} messages, {frame_bytes}-byte frames; ours: {}; ceiling: {}",
            size.pairs,
            size.messages,
            ours_rounds.tally.describe(),
            ceiling_rounds.tally.describe()
        );
        let broken = !ours_rounds.tally.is_clean() || !ceiling_rounds.tally.is_clean();
        let label = thousands(n);
        rows.push(
            Row::new(
                "S1",
                format!("p50 delivery, N={label}"),
                "ms",
                (
                    percentile(&mut ours_rounds.all, 50.0),
                    percentile(&mut ceiling_rounds.all, 50.0),
                    median_ratio(&ours_rounds.p50, &ceiling_rounds.p50),
                ),
                Goal::INFO,
            )
            .with_rounds(&ours_rounds.p50, &ceiling_rounds.p50)
            .broken_if(broken),
        );
        rows.push(
            Row::new(
                "S1",
                format!("p99 delivery, N={label}"),
                "ms",
                (
                    percentile(&mut ours_rounds.all, 99.0),
                    percentile(&mut ceiling_rounds.all, 99.0),
                    median_ratio(&ours_rounds.p99, &ceiling_rounds.p99),
                ),
                size.p99_goal,
            )
            .with_rounds(&ours_rounds.p99, &ceiling_rounds.p99)
            .broken_if(broken)
            .with_note(Some(note)),
        );
        rows.push(
            Row::alone(
                "S1",
                format!("server CPU per fanned-out message, N={label}"),
                "ms",
                cpu_s / published.max(1) as f64 * 1000.0,
                Goal::INFO,
            )
            .with_note(Some(format!(
                "an operation is one sendMessage delivered to all {label} subscribers (storing it and the fan-out); the casefile child's user + system CPU (/proc/PID/stat) over the sending phase of its {} rounds (subscribers connected, {published} messages in all), divided by the messages sent",
                size.pairs
            ))),
        );
    }
    Ok(rows)
}

/// Latencies of the rounds of one side.
#[derive(Default)]
struct Rounds {
    /// Every delivery of every round, in ms.
    all: Vec<f64>,
    /// Per round.
    p50: Vec<f64>,
    p99: Vec<f64>,
    tally: Tally,
}

impl Rounds {
    fn add(&mut self, (mut latencies, tally): (Vec<f64>, Tally)) {
        self.p50.push(percentile(&mut latencies, 50.0));
        self.p99.push(percentile(&mut latencies, 99.0));
        self.all.extend(latencies);
        self.tally.early += tally.early;
        self.tally.lost += tally.lost;
        self.tally.stray += tally.stray;
        self.tally.broken += tally.broken;
        if self.tally.first_problem.is_none() {
            self.tally.first_problem = tally.first_problem;
        }
    }
}

/// How long all deliveries of one message may take before the missing ones count
/// as lost.
fn delivery_limit(n: usize) -> Duration {
    Duration::from_secs(10) + Duration::from_millis(n as u64 * 2)
}

/// How long opening `n` connections may take.
fn connect_limit(n: usize) -> Duration {
    Duration::from_secs(30) + Duration::from_millis(n as u64 * 10)
}

async fn ours_round(
    http: &reqwest::Client,
    sender: &Sender,
    ours: &Ours,
    size: &Size,
) -> anyhow::Result<(Vec<f64>, Tally, f64)> {
    let n = size.subscribers;
    let (conversation, visitor) = common::open_conversation(
        http,
        ours.addr,
        &ours.workspace.widget_key,
        &ours.workspace.owner_token,
    )
    .await?;
    let opened = common::open_all(n, CONNECT_CONCURRENCY, connect_limit(n), |_| {
        common::casefile_subscriber(ours.addr, &visitor, &conversation)
    })
    .await?;
    let mut listeners = Listeners::start(opened.into_iter().map(|(s, _)| s).collect());
    tokio::time::sleep(GAP).await;
    let mut tally = Tally::default();
    let mut latencies = Vec::with_capacity(n * size.messages);
    let url = format!("http://{}/graphql", ours.addr);
    let cpu_before = common::cpu_seconds(ours.pid)?;
    for k in 0..size.messages {
        let expected = k as i64 + common::OPENING_SEQ + 1;
        let post = Post {
            url: url.clone(),
            bearer: Some(ours.workspace.owner_token.clone()),
            json: true,
            body: json!({
                "query": common::SEND_MESSAGE,
                "variables": { "input": { "conversationId": conversation, "body": common::BODY } },
            })
            .to_string(),
        };
        let (sent_at, text) = sender.post(post).await?;
        let body: serde_json::Value = serde_json::from_str(&text)?;
        let seq = body["data"]["sendMessage"]["seq"]
            .as_i64()
            .with_context(|| format!("sendMessage failed: {body}"))?;
        if seq != expected {
            bail!("sendMessage stored seq {seq}, expected {expected}");
        }
        let got = common::collect(
            &mut listeners.seen,
            n,
            seq,
            sent_at,
            delivery_limit(n),
            &mut tally,
        )
        .await;
        latencies.extend(got);
        tokio::time::sleep(GAP).await;
    }
    let cpu = common::cpu_seconds(ours.pid)? - cpu_before;
    listeners.stop(true, connect_limit(n)).await;
    Ok((latencies, tally, cpu))
}

async fn ceiling_round(
    sender: &Sender,
    addr: SocketAddr,
    template: &FrameTemplate,
    size: &Size,
) -> anyhow::Result<(Vec<f64>, Tally)> {
    let n = size.subscribers;
    let opened = common::open_all(n, CONNECT_CONCURRENCY, connect_limit(n), |_| {
        common::raw_subscriber(addr)
    })
    .await?;
    let mut listeners = Listeners::start(opened);
    tokio::time::sleep(GAP).await;
    let mut tally = Tally::default();
    let mut latencies = Vec::with_capacity(n * size.messages);
    let url = format!("http://{addr}/broadcast");
    for k in 0..size.messages {
        let seq = k as i64 + common::OPENING_SEQ + 1;
        let post = Post {
            url: url.clone(),
            bearer: None,
            json: false,
            body: template.frame(seq),
        };
        let (sent_at, text) = sender.post(post).await?;
        let receivers: usize = text.trim().parse().context("broadcast answer")?;
        // More when connections of the last round are still being torn down.
        ensure!(
            receivers >= n,
            "the raw server broadcast to {receivers} connections, expected {n}"
        );
        let got = common::collect(
            &mut listeners.seen,
            n,
            seq,
            sent_at,
            delivery_limit(n),
            &mut tally,
        )
        .await;
        latencies.extend(got);
        tokio::time::sleep(GAP).await;
    }
    listeners.stop(true, connect_limit(n)).await;
    Ok((latencies, tally))
}
