//! Q1: an agent's inbox, the documented `Conversations` operation (the `InboxRow`
//! fragment: last message, lead, assignee, team, tags, open handoff) over
//! conversations that all have every one of those.
//!
//! Three measurements:
//! - SQL statements per request at `first: 50` and `first: 200`, counted by the
//!   casefile child itself (`Db::statement_count`, asked over its stdin) around
//!   one request on an otherwise idle server.
//! - Throughput at `first: 50` from 64 keep-alive connections in a closed loop.
//! - Latency at a fixed 500 requests/s (open loop: each request is sent on
//!   schedule whatever became of the earlier ones; latency counts from the
//!   scheduled send).
//!
//! Ceiling: the raw axum server answering `POST /graphql` with the very bytes
//! casefile answered for the same request, same clients, same schedule.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use crate::client;
use crate::common::{
    self, Call, Ctx, Database, Goal, Row, Scenario, ServerChild, Workspace, median_ratio,
    percentile,
};
use crate::seed::{DAY, Profile, Seeder};

pub const SCENARIO: Scenario = Scenario {
    id: "Q1",
    name: "inbox",
    about: "agent inbox (`Conversations`, 50 rows with every relation): statements, throughput, p99 at 500 req/s, and (Q1W) p99 at 300 req/s under 50 sends/s",
    run: start,
};

fn start(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Vec<Row>>> {
    Box::pin(run(ctx))
}

/// Conversations in the workspace (more than the largest page), unless
/// `--conversations` says.
const CONVERSATIONS: usize = 250;
const CONNECTIONS: usize = 64;
/// The fixed rate of the latency measurement.
const RATE: u32 = 500;
/// Requests counted per page size (the largest count is reported).
const COUNTED: usize = 3;

async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let db = Database::fresh(ctx).await?;
    let result = run_on(ctx, &db).await;
    db.cleanup().await;
    result
}

async fn run_on(ctx: &Ctx, db: &Database) -> anyhow::Result<Vec<Row>> {
    // A child that is not stopped is killed when dropped.
    let mut ours = ServerChild::start(ctx, &["--serve-casefile", &db.url]).await?;
    let raw = ServerChild::start(ctx, &["--serve-raw"]).await?;
    let result = measure(ctx, db, &mut ours, &raw).await;
    ours.stop().await;
    raw.stop().await;
    result
}

/// An inbox page as an agent asks for it.
fn page(ours: &ServerChild, token: &str, first: usize) -> anyhow::Result<Call> {
    let operations = client::operations();
    let query = operations
        .get("Conversations")
        .context("operations.graphql has no Conversations")?;
    Ok(Call::graphql(
        ours.addr,
        Some(token),
        query,
        json!({ "first": first }),
    ))
}

/// Every row of a page has what an inbox row shows.
fn check_page(body: &[u8], first: usize) -> anyhow::Result<()> {
    (common::no_graphql_errors())(body).map_err(|why| anyhow::anyhow!("inbox page: {why}"))?;
    let value: Value = serde_json::from_slice(body)?;
    let edges = value["data"]["conversations"]["edges"]
        .as_array()
        .context("no edges")?;
    ensure!(
        edges.len() == first,
        "{} rows, expected {first}",
        edges.len()
    );
    for edge in edges {
        let node = &edge["node"];
        ensure!(
            node["lead"]["email"].is_string()
                && node["assignee"]["name"].is_string()
                && node["team"]["name"].is_string()
                && node["lastMessage"]["seq"].is_i64()
                && node["tags"].as_array().is_some_and(|t| !t.is_empty())
                && node["openHandoff"]["status"].is_string(),
            "an inbox row lacks something: {node}"
        );
    }
    Ok(())
}

async fn measure(
    ctx: &Ctx,
    db: &Database,
    ours: &mut ServerChild,
    raw: &ServerChild,
) -> anyhow::Result<Vec<Row>> {
    let (pairs, round, warm) = if ctx.quick {
        (3, Duration::from_millis(400), Duration::from_millis(200))
    } else {
        (5, Duration::from_millis(1500), Duration::from_millis(500))
    };
    let (latency_pairs, latency_round) = if ctx.quick {
        (2, Duration::from_millis(600))
    } else {
        (3, Duration::from_secs(2))
    };
    let workspace = Workspace::of(ours)?;
    let mut seeder = Seeder::connect(&db.url, &workspace.workspace_id).await?;
    let catalog = seeder.catalog(3, 10, 8).await?;
    let (conversations, counts) = seeder
        .conversations(
            &catalog,
            Profile::Inbox,
            ctx.conversations.unwrap_or(CONVERSATIONS),
            2 * DAY,
        )
        .await?;
    seeder.settle().await?;
    eprintln!("Q1: seeded {}", counts.describe());
    let token = &catalog.agents.first().context("no agent seeded")?.token;
    let http = common::load_client()?;

    // Statements per request.
    let mut rows = Vec::new();
    let mut answer50 = None;
    for first in [50, 200] {
        let call = page(ours, token, first)?;
        let warm_answer = common::send(&http, &call)
            .await
            .map_err(|why| anyhow::anyhow!("inbox page: {why}"))?;
        check_page(&warm_answer, first)?;
        let mut counted = Vec::new();
        for _ in 0..COUNTED {
            let before = ours.statement_count().await?;
            let answer = common::send(&http, &call)
                .await
                .map_err(|why| anyhow::anyhow!("inbox page: {why}"))?;
            let after = ours.statement_count().await?;
            check_page(&answer, first)?;
            counted.push(after.saturating_sub(before) as f64);
            if first == 50 {
                answer50 = Some(answer);
            }
        }
        let most = counted.iter().copied().fold(0.0, f64::max);
        eprintln!("Q1: first={first}: statements per request {counted:?}");
        rows.push(
            Row::alone(
                "Q1",
                format!("SQL statements per inbox page, first={first}"),
                "",
                most,
                Goal::at_most(5.0),
            )
            .with_note(Some(format!(
                "counted by the server around {COUNTED} requests each (largest shown): {counted:?}; {} seeded",
                counts.describe()
            ))),
        );
    }
    let answer = answer50.context("no first=50 answer")?;
    common::set_canned(&http, raw.addr, answer.clone()).await?;
    let call = page(ours, token, 50)?;
    let ceiling_call = call.to(raw.addr);
    let check = common::same_answer(answer.clone());

    // Throughput.
    let clients = (0..CONNECTIONS)
        .map(|_| common::load_client())
        .collect::<anyhow::Result<Vec<_>>>()?;
    // PostgreSQL's own CPU: the ceiling never reads it, so all it used meanwhile is
    // ours (and what the database does by itself, idle, which is little).
    let db_before = match ctx.database_url {
        Some(_) => Some(common::postgres_cpu_seconds()?),
        None => None,
    };
    let (ours_loads, ceiling_loads) = common::throughput_pairs(
        "Q1",
        ours.pid,
        &clients,
        (common::always(call.clone()), check.clone()),
        (common::always(ceiling_call.clone()), check.clone()),
        (pairs, round, warm),
    )
    .await?;
    drop(clients);
    let db_cpu = match db_before {
        Some(before) => Some(common::postgres_cpu_seconds()? - before),
        None => None,
    };
    let rate = |loads: &[common::Load]| {
        loads
            .iter()
            .map(common::Load::per_second)
            .collect::<Vec<_>>()
    };
    let (ours_rates, ceiling_rates) = (rate(&ours_loads), rate(&ceiling_loads));
    let failed: u64 = ours_loads
        .iter()
        .chain(&ceiling_loads)
        .map(|l| l.failed)
        .sum();
    let mut ours_latencies = common::all_latencies(&ours_loads);
    rows.push(
        Row::new(
            "Q1",
            format!("inbox throughput (first=50), {CONNECTIONS} connections"),
            "req/s",
            (
                common::overall_rate(&ours_loads),
                common::overall_rate(&ceiling_loads),
                median_ratio(&ours_rates, &ceiling_rates),
            ),
            Goal::at_least(1500.0),
        )
        .with_rounds(&ours_rates, &ceiling_rates)
        .broken_if(failed > 0)
        .with_note(Some(format!(
            "{pairs} pairs × {:.1} s, {}-byte answers, closed-loop latency p50/p99 ours {:.1}/{:.1} ms; ours {}; ceiling {}",
            round.as_secs_f64(),
            answer.len(),
            percentile(&mut ours_latencies, 50.0),
            percentile(&mut ours_latencies, 99.0),
            common::describe_loads(&ours_loads),
            common::describe_loads(&ceiling_loads),
        ))),
    );

    let server_ms = common::cpu_per_request_us(&ours_loads) / 1000.0;
    rows.push(
        Row::alone(
            "Q1",
            "inbox server CPU per page (first=50)",
            "ms",
            server_ms,
            Goal::at_most(2.0),
        )
        .with_note(Some(
            "the casefile child's user + system CPU (/proc/PID/stat) over the throughput rounds, per page answered".to_owned(),
        )),
    );
    if let Some(db_cpu) = db_cpu {
        let pages: u64 = ours_loads.iter().map(|l| l.ok).sum();
        let db_ms = db_cpu / pages.max(1) as f64 * 1000.0;
        rows.push(
            Row::alone(
                "Q1",
                "inbox PostgreSQL CPU per page (first=50)",
                "ms",
                db_ms,
                Goal::at_most(1.0),
            )
            .with_note(Some(format!(
                "PostgreSQL's processes' user + system CPU (/proc/PID/stat of every postgres process) over the throughput rounds (the ceiling's rounds read no database), per page answered; {} seeded",
                counts.describe()
            ))),
        );
        rows.push(
            Row::alone(
                "Q1",
                "inbox server + PostgreSQL CPU per page (first=50)",
                "ms",
                server_ms + db_ms,
                Goal::at_most(2.4),
            )
            .with_note(Some("the two rows above, added".to_owned())),
        );
    }

    // Latency at a fixed rate.
    let period = Duration::from_secs(1) / RATE;
    let n = (RATE as f64 * latency_round.as_secs_f64()) as usize;
    let (mut ours_p, mut ceiling_p) = (Percentiles::default(), Percentiles::default());
    for pair in 0..latency_pairs {
        for (side, target) in [(&mut ours_p, &call), (&mut ceiling_p, &ceiling_call)] {
            let (_, shots) =
                common::open_loop(vec![target.clone(); n], period, vec![target.clone(); 16])
                    .await?;
            let (latencies, failed, first) = common::judge_shots(&shots, &check);
            side.add(latencies, failed, first);
        }
        eprintln!(
            "Q1 {RATE} req/s pair {}/{latency_pairs}: p99 ours {:.2} ms, ceiling {:.2} ms",
            pair + 1,
            ours_p.p99.last().copied().unwrap_or(f64::NAN),
            ceiling_p.p99.last().copied().unwrap_or(f64::NAN),
        );
    }
    let note = format!(
        "open loop, {latency_pairs} pairs × {n} requests at {RATE}/s, latency from the scheduled send; ours {}; ceiling {}",
        ours_p.describe(),
        ceiling_p.describe()
    );
    let broken = ours_p.failed + ceiling_p.failed > 0;
    rows.push(
        Row::new(
            "Q1",
            format!("inbox p50 at {RATE} req/s"),
            "ms",
            (
                percentile(&mut ours_p.all, 50.0),
                percentile(&mut ceiling_p.all, 50.0),
                median_ratio(&ours_p.p50, &ceiling_p.p50),
            ),
            Goal::INFO,
        )
        .with_rounds(&ours_p.p50, &ceiling_p.p50)
        .broken_if(broken),
    );
    rows.push(
        Row::new(
            "Q1",
            format!("inbox p99 at {RATE} req/s"),
            "ms",
            (
                percentile(&mut ours_p.all, 99.0),
                percentile(&mut ceiling_p.all, 99.0),
                median_ratio(&ours_p.p99, &ceiling_p.p99),
            ),
            Goal::at_most(30.0),
        )
        .with_rounds(&ours_p.p99, &ceiling_p.p99)
        .broken_if(broken)
        .with_note(Some(note)),
    );

    // Q1W: the same page while messages land in the same workspace.
    let writes = (WRITE_RATE as f64 * latency_round.as_secs_f64()) as usize;
    let pages = (PAGE_RATE_UNDER_WRITES as f64 * latency_round.as_secs_f64()) as usize;
    let page_checks = {
        let errors = common::no_graphql_errors();
        let check: common::Check = std::sync::Arc::new(move |body: &[u8]| {
            errors(body)?;
            check_page(body, 50).map_err(|why| why.to_string())
        });
        check
    };
    let mut under_writes = Percentiles::default();
    let mut sends = Percentiles::default();
    for round in 0..latency_pairs {
        let send_calls: Vec<Call> = (0..writes)
            .map(|i| {
                let conversation = &conversations[(round * writes + i) % conversations.len()];
                Call::graphql(
                    ours.addr,
                    Some(token),
                    common::SEND_MESSAGE,
                    json!({ "input": { "conversationId": conversation.id, "body": common::BODY } }),
                )
            })
            .collect();
        let (paged, sent) = tokio::join!(
            common::open_loop(
                vec![call.clone(); pages],
                Duration::from_secs(1) / PAGE_RATE_UNDER_WRITES,
                vec![call.clone(); 16],
            ),
            common::open_loop(send_calls, Duration::from_secs(1) / WRITE_RATE, Vec::new()),
        );
        let (latencies, failed, first) = common::judge_shots(&paged?.1, &page_checks);
        under_writes.add(latencies, failed, first);
        let (latencies, failed, first) =
            common::judge_shots(&sent?.1, &common::no_graphql_errors());
        sends.add(latencies, failed, first);
        eprintln!(
            "Q1W round {}/{latency_pairs}: page p99 {:.2} ms under {WRITE_RATE} sends/s (send p99 {:.2} ms)",
            round + 1,
            under_writes.p99.last().copied().unwrap_or(f64::NAN),
            sends.p99.last().copied().unwrap_or(f64::NAN),
        );
    }
    rows.push(
        Row::alone(
            "Q1W",
            format!("inbox p99 at {PAGE_RATE_UNDER_WRITES} req/s, {WRITE_RATE} sendMessage/s"),
            "ms",
            percentile(&mut under_writes.all, 99.0),
            Goal::at_most(50.0),
        )
        .broken_if(under_writes.failed + sends.failed > 0)
        .with_note(Some(format!(
            "open loops, {latency_pairs} rounds of {:.1} s: pages {} (p50 {:.2} ms); sends to the page's conversations {} (p99 {:.2} ms)",
            latency_round.as_secs_f64(),
            under_writes.describe(),
            percentile(&mut under_writes.all, 50.0),
            sends.describe(),
            percentile(&mut sends.all, 99.0),
        ))),
    );
    Ok(rows)
}

/// Q1W: pages per second, while [`WRITE_RATE`] messages per second are sent.
const PAGE_RATE_UNDER_WRITES: u32 = 300;
const WRITE_RATE: u32 = 50;

/// Latencies of the rounds of one side.
#[derive(Default)]
pub struct Percentiles {
    pub all: Vec<f64>,
    pub p50: Vec<f64>,
    pub p99: Vec<f64>,
    pub failed: u64,
    pub first_failure: Option<String>,
}

impl Percentiles {
    pub fn add(&mut self, mut latencies: Vec<f64>, failed: u64, first: Option<String>) {
        self.p50.push(percentile(&mut latencies, 50.0));
        self.p99.push(percentile(&mut latencies, 99.0));
        self.all.extend(latencies);
        self.failed += failed;
        if self.first_failure.is_none() {
            self.first_failure = first;
        }
    }

    pub fn describe(&self) -> String {
        match &self.first_failure {
            None => format!("{} ok, 0 failed", self.all.len()),
            Some(why) => format!("{} ok, {} failed (e.g. {why})", self.all.len(), self.failed),
        }
    }
}
