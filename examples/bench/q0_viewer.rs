//! Q0: the `viewer` query (the documented `Viewer` operation) with an agent token,
//! from 64 keep-alive connections in a closed loop: throughput.
//!
//! Ceiling: the raw axum server of `common` answering `POST /graphql` with the very
//! bytes casefile answered for the same request (captured first), after reading the
//! request body. Both get the same requests from the same clients. The difference
//! is casefile's work per request: token verification, GraphQL parsing, validation
//! and execution, the three lookups (agent, its teams, its workspace), and
//! serialising the answer.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use futures_util::future::BoxFuture;
use serde_json::json;

use crate::client;
use crate::common::{
    self, Call, Ctx, Database, Goal, Row, Scenario, ServerChild, Workspace, median_ratio,
    percentile,
};
use crate::seed::Seeder;

pub const SCENARIO: Scenario = Scenario {
    id: "Q0",
    name: "viewer",
    about: "`viewer` query with an agent JWT, 64 keep-alive connections: throughput beside a plain handler",
    run: start,
};

fn start(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Vec<Row>>> {
    Box::pin(run(ctx))
}

const CONNECTIONS: usize = 64;
const GOAL: Goal = Goal::ratio_at_least(0.40);

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

async fn measure(
    ctx: &Ctx,
    db: &Database,
    ours: &mut ServerChild,
    raw: &ServerChild,
) -> anyhow::Result<Vec<Row>> {
    let (pairs, round, warm) = if ctx.quick {
        (3, Duration::from_millis(500), Duration::from_millis(200))
    } else {
        (5, Duration::from_millis(1500), Duration::from_millis(500))
    };
    let workspace = Workspace::of(ours)?;
    let mut seeder = Seeder::connect(&db.url, &workspace.workspace_id).await?;
    // One agent (role AGENT) in two teams.
    let catalog = seeder.catalog(2, 1, 1).await?;
    let agent = catalog.agents.first().context("no agent seeded")?;

    let operations = client::operations();
    let viewer = operations
        .get("Viewer")
        .context("operations.graphql has no Viewer")?;
    let call = Call::graphql(ours.addr, Some(&agent.token), viewer, json!({}));
    let http = common::load_client()?;
    let answer = common::send(&http, &call)
        .await
        .map_err(|why| anyhow::anyhow!("viewer: {why}"))?;
    (common::no_graphql_errors())(&answer).map_err(|why| anyhow::anyhow!("viewer: {why}"))?;
    let parsed: serde_json::Value = serde_json::from_slice(&answer)?;
    ensure!(
        parsed["data"]["viewer"]["id"] == agent.id.as_str()
            && parsed["data"]["viewer"]["teams"].as_array().map(Vec::len) == Some(2),
        "unexpected viewer: {parsed}"
    );
    let before = ours.statement_count().await?;
    common::send(&http, &call)
        .await
        .map_err(|why| anyhow::anyhow!("viewer: {why}"))?;
    let statements = ours.statement_count().await?.saturating_sub(before);
    eprintln!(
        "Q0: the answer is {} bytes, {statements} SQL statements: {parsed}",
        answer.len()
    );
    common::set_canned(&http, raw.addr, answer.clone()).await?;

    let clients = (0..CONNECTIONS)
        .map(|_| common::load_client())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let check = common::same_answer(answer.clone());
    let (ours_loads, ceiling_loads) = common::throughput_pairs(
        "Q0",
        ours.pid,
        &clients,
        (common::always(call.clone()), check.clone()),
        (common::always(call.to(raw.addr)), check),
        (pairs, round, warm),
    )
    .await?;

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
    let mut ceiling_latencies = common::all_latencies(&ceiling_loads);
    let note = format!(
        "{pairs} pairs × {:.1} s, {CONNECTIONS} connections, {}-byte answers, {statements} SQL statements per request; latency p50/p99 ours {:.2}/{:.2} ms, ceiling {:.2}/{:.2} ms; ours {}; ceiling {}",
        round.as_secs_f64(),
        answer.len(),
        percentile(&mut ours_latencies, 50.0),
        percentile(&mut ours_latencies, 99.0),
        percentile(&mut ceiling_latencies, 50.0),
        percentile(&mut ceiling_latencies, 99.0),
        common::describe_loads(&ours_loads),
        common::describe_loads(&ceiling_loads),
    );
    Ok(vec![
        Row::new(
            "Q0",
            format!("viewer throughput, {CONNECTIONS} connections"),
            "req/s",
            (
                common::overall_rate(&ours_loads),
                common::overall_rate(&ceiling_loads),
                median_ratio(&ours_rates, &ceiling_rates),
            ),
            GOAL,
        )
        .with_rounds(&ours_rates, &ceiling_rates)
        .broken_if(failed > 0)
        .with_note(Some(note)),
        Row::alone(
            "Q0",
            "viewer server CPU per request",
            "µs",
            common::cpu_per_request_us(&ours_loads),
            Goal::INFO,
        )
        .with_note(Some(
            "the casefile child's user + system CPU (/proc/PID/stat) over the throughput rounds, per request answered".to_owned(),
        )),
    ])
}
