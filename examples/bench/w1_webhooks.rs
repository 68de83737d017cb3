//! W1: events delivered to one local webhook receiver. 16 senders store messages
//! (`sendMessage`, closed loop) in 16 conversations while a webhook subscribed to
//! `MESSAGE_CREATED` delivers each to a receiver in the bench process (an axum
//! handler that notes the time and answers 204): deliveries per second, from the
//! first message sent to the last delivery, and the p99 from commit (the
//! `sendMessage` answer) to delivery. The server's CPU time per delivered event
//! (from `/proc/PID/stat`) is in the note.
//!
//! Ceiling: the same receiver fed by a plain loop in the bench process: the same
//! bodies POSTed one after the other, as a webhook delivers them (in order, one at a
//! time), latency from just before each POST to its receipt.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::common::{
    self, Ctx, Database, Goal, Row, SEND_MESSAGE, Scenario, ServerChild, Workspace, median_ratio,
    percentile,
};

pub const SCENARIO: Scenario = Scenario {
    id: "W1",
    name: "webhooks",
    about: "events delivered to one local webhook receiver, and the p99 from commit to delivery, beside a plain loop",
    run: start,
};

fn start(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Vec<Row>>> {
    Box::pin(run(ctx))
}

const SENDERS: usize = 16;

/// When each numbered body arrived.
type Arrivals = Arc<Mutex<HashMap<u64, Instant>>>;

async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let db = Database::fresh(ctx).await?;
    let result = run_on(ctx, &db).await;
    db.cleanup().await;
    result
}

/// The number a delivered body carries: the message body is `w1 <n>`.
fn number(body: &Value) -> Option<u64> {
    body["message"]["body"]
        .as_str()?
        .strip_prefix("w1 ")?
        .parse()
        .ok()
}

/// A body the receiver got (for the ceiling to send the same).
type Sample = Arc<Mutex<Option<Value>>>;

async fn receiver() -> anyhow::Result<(SocketAddr, Arrivals, Sample)> {
    let arrivals: Arrivals = Arc::default();
    let sample: Sample = Arc::default();
    let (noted, kept) = (Arc::clone(&arrivals), Arc::clone(&sample));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let (noted, kept) = (Arc::clone(&noted), Arc::clone(&kept));
            async move {
                let now = Instant::now();
                let parsed: Option<Value> = serde_json::from_str(&body).ok();
                if let Some(n) = parsed.as_ref().and_then(number) {
                    noted.lock().expect("lock").insert(n, now);
                }
                *kept.lock().expect("lock") = parsed;
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, arrivals, sample))
}

/// Wait until `count` numbers from `from` on have arrived.
async fn arrived(arrivals: &Arrivals, from: u64, count: u64) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let got = {
                let seen = arrivals.lock().expect("lock");
                (from..from + count)
                    .filter(|n| seen.contains_key(n))
                    .count() as u64
            };
            if got == count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .context("the deliveries did not all arrive in time")
}

struct Round {
    per_second: f64,
    latencies: Vec<f64>,
}

/// Our round: `count` messages from 16 senders, numbered from `from`.
async fn ours_round(
    http: &reqwest::Client,
    child: &ServerChild,
    workspace: &Workspace,
    conversations: &[String],
    arrivals: &Arrivals,
    from: u64,
    count: u64,
) -> anyhow::Result<Round> {
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(from));
    let committed: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let mut senders = Vec::new();
    for conversation in conversations.iter().take(SENDERS) {
        let (http, next, committed) = (http.clone(), Arc::clone(&next), Arc::clone(&committed));
        let (addr, token, conversation) = (
            child.addr,
            workspace.owner_token.clone(),
            conversation.clone(),
        );
        senders.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= from + count {
                    return anyhow::Ok(());
                }
                common::graphql(
                    &http,
                    addr,
                    Some(&token),
                    SEND_MESSAGE,
                    json!({ "input": { "conversationId": conversation, "body": format!("w1 {n}") } }),
                )
                .await?;
                committed.lock().expect("lock").insert(n, Instant::now());
            }
        }));
    }
    for sender in senders {
        sender.await??;
    }
    arrived(arrivals, from, count).await?;
    let seen = arrivals.lock().expect("lock");
    let committed = committed.lock().expect("lock");
    let last = (from..from + count)
        .filter_map(|n| seen.get(&n))
        .max()
        .copied()
        .context("no delivery")?;
    let latencies = (from..from + count)
        .filter_map(|n| {
            let (at, done) = (seen.get(&n)?, committed.get(&n)?);
            Some(at.saturating_duration_since(*done).as_secs_f64() * 1000.0)
        })
        .collect();
    Ok(Round {
        per_second: count as f64 / (last - started).as_secs_f64(),
        latencies,
    })
}

/// The ceiling's round: the same number of bodies, POSTed one after the other.
async fn ceiling_round(
    http: &reqwest::Client,
    url: &str,
    template: &Value,
    arrivals: &Arrivals,
    from: u64,
    count: u64,
) -> anyhow::Result<Round> {
    let started = Instant::now();
    let mut sent = HashMap::new();
    for n in from..from + count {
        let mut body = template.clone();
        body["message"]["body"] = json!(format!("w1 {n}"));
        sent.insert(n, Instant::now());
        let answer = http.post(url).json(&body).send().await?;
        ensure!(
            answer.status().is_success(),
            "the receiver answered {}",
            answer.status()
        );
    }
    arrived(arrivals, from, count).await?;
    let seen = arrivals.lock().expect("lock");
    let latencies = (from..from + count)
        .filter_map(|n| {
            Some(
                seen.get(&n)?
                    .saturating_duration_since(*sent.get(&n)?)
                    .as_secs_f64()
                    * 1000.0,
            )
        })
        .collect();
    Ok(Round {
        per_second: count as f64 / started.elapsed().as_secs_f64(),
        latencies,
    })
}

async fn run_on(ctx: &Ctx, db: &Database) -> anyhow::Result<Vec<Row>> {
    let (pairs, count) = if ctx.quick { (2, 500) } else { (3, 2000) };
    let child = ServerChild::start(ctx, &["--serve-casefile", &db.url]).await?;
    let workspace = Workspace::of(&child)?;
    let http = common::http_client()?;
    let (addr, arrivals, sample) = receiver().await?;
    let url = format!("http://{addr}/hook");
    let mut conversations = Vec::new();
    for _ in 0..SENDERS {
        let (id, _) = common::open_conversation(
            &http,
            child.addr,
            &workspace.widget_key,
            &workspace.owner_token,
        )
        .await?;
        conversations.push(id);
    }
    let created = common::graphql(
        &http,
        child.addr,
        Some(&workspace.owner_token),
        "mutation($url: String!) { createWebhook(input: { url: $url, eventTypes: [MESSAGE_CREATED] }) { webhook { id } } }",
        json!({ "url": url }),
    )
    .await?;
    ensure!(
        created["createWebhook"]["webhook"]["id"].is_string(),
        "{created}"
    );
    // A delivered body, for the ceiling to send: the same size and shape.
    let (warm_from, warm) = (1_000_000, 32);
    ours_round(
        &http,
        &child,
        &workspace,
        &conversations,
        &arrivals,
        warm_from,
        warm,
    )
    .await?;
    let template = sample
        .lock()
        .expect("lock")
        .clone()
        .context("no body was delivered")?;

    let (mut ours, mut ceiling) = (Vec::new(), Vec::new());
    let (mut cpu, mut delivered) = (0.0, 0u64);
    let mut from = 0;
    for _ in 0..pairs {
        let before = common::cpu_seconds(child.pid)?;
        ours.push(
            ours_round(
                &http,
                &child,
                &workspace,
                &conversations,
                &arrivals,
                from,
                count,
            )
            .await?,
        );
        cpu += common::cpu_seconds(child.pid)? - before;
        delivered += count;
        from += count;
        ceiling.push(ceiling_round(&http, &url, &template, &arrivals, from, count).await?);
        from += count;
    }
    child.stop().await;

    let rates = |rounds: &[Round]| rounds.iter().map(|r| r.per_second).collect::<Vec<_>>();
    let all = |rounds: &[Round]| {
        rounds
            .iter()
            .flat_map(|r| r.latencies.clone())
            .collect::<Vec<_>>()
    };
    let (ours_rates, ceiling_rates) = (rates(&ours), rates(&ceiling));
    let (mut ours_latencies, mut ceiling_latencies) = (all(&ours), all(&ceiling));
    let p99s = |rounds: &[Round]| {
        rounds
            .iter()
            .map(|r| percentile(&mut r.latencies.clone(), 99.0))
            .collect::<Vec<_>>()
    };
    let (ours_p99s, ceiling_p99s) = (p99s(&ours), p99s(&ceiling));
    let note = format!(
        "{pairs} pairs × {count} events from {SENDERS} senders; server CPU {:.0} µs per event (sending the message included); p50 ours {:.2} ms, ceiling {:.2} ms",
        cpu / delivered as f64 * 1e6,
        percentile(&mut ours_latencies, 50.0),
        percentile(&mut ceiling_latencies, 50.0),
    );
    Ok(vec![
        Row::new(
            "W1",
            "webhook deliveries per second",
            "events/s",
            (
                common::median(&ours_rates),
                common::median(&ceiling_rates),
                median_ratio(&ours_rates, &ceiling_rates),
            ),
            Goal::INFO,
        )
        .with_rounds(&ours_rates, &ceiling_rates)
        .with_note(Some(note)),
        Row::new(
            "W1",
            "p99 from commit to delivery",
            "ms",
            (
                percentile(&mut ours_latencies, 99.0),
                percentile(&mut ceiling_latencies, 99.0),
                median_ratio(&ours_p99s, &ceiling_p99s),
            ),
            Goal::INFO,
        )
        .with_rounds(&ours_p99s, &ceiling_p99s),
    ])
}
