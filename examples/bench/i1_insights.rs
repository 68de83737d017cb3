//! I1: the `insights` digest (the documented `Insights` operation: summary,
//! accept and resolve times, CSAT, topics with the previous period, reasons, docs
//! gaps, a daily series) over 100,000 conversations started in the last 30 days.
//!
//! The history is seeded in bulk into the server's database before the
//! measurement (not counted): AI-resolved conversations, conversations still with
//! the AI, handoffs of every reason (requested, accepted, resolved, cancelled, a
//! few conversations with two), accept and resolve times spread like a real queue's
//! (log-normal waits), topic tags (some removed), ratings, leads, AI answers with
//! confidences (a third of them unsure, which feed the docs gaps).
//!
//! Ceiling: one plain aggregate SQL query over the same rows, run on a read
//! connection of the same database: the cohort's conversations joined with their
//! handoffs (grouped per conversation) and ratings, giving conversations, handed
//! off, AI-resolved, handoffs, mean accept and resolve times and CSAT. It is what
//! reading the period once costs; the digest reads it several times over, in more
//! shapes.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use futures_util::future::BoxFuture;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::client;
use crate::common::{
    self, Call, Ctx, Database, Goal, Row, Scenario, ServerChild, Workspace, median, median_ratio,
    thousands,
};
use crate::seed::{DAY, Profile, Seeder};

pub const SCENARIO: Scenario = Scenario {
    id: "I1",
    name: "insights",
    about: "`insights` digest over 100,000 conversations (30 days) beside one aggregate SQL query",
    run: start,
};

fn start(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Vec<Row>>> {
    Box::pin(run(ctx))
}

/// The ceiling: the period's conversations, read once.
const AGGREGATE: &str = "SELECT COUNT(*) AS conversations, \
     SUM(CASE WHEN h.n IS NOT NULL THEN 1 ELSE 0 END) AS handed_off, \
     SUM(CASE WHEN c.status = 'RESOLVED' AND h.n IS NULL THEN 1 ELSE 0 END) AS ai_resolved, \
     SUM(COALESCE(h.n, 0)) AS handoffs, \
     AVG(h.accept_ms) AS mean_accept_ms, \
     AVG(h.resolve_ms) AS mean_resolve_ms, \
     AVG(r.score) AS csat, \
     COUNT(r.score) AS ratings \
     FROM conversations c \
     LEFT JOIN (SELECT conversation_id, COUNT(*) AS n, \
                AVG(accepted_at - requested_at) AS accept_ms, \
                AVG(resolved_at - requested_at) AS resolve_ms \
                FROM handoffs WHERE workspace_id = ? GROUP BY conversation_id) h \
       ON h.conversation_id = c.id \
     LEFT JOIN conversation_ratings r ON r.conversation_id = c.id \
     WHERE c.workspace_id = ? AND c.created_at >= ? AND c.created_at < ?";

/// After three pairs, no new pair starts once the pairs took this long.
const PAIRS_BUDGET: Duration = Duration::from_secs(15);

async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    // Sizes and pairs of each.
    let sizes: &[(usize, usize)] = if ctx.quick {
        &[(10_000, 3)]
    } else {
        &[(10_000, 5), (100_000, 5)]
    };
    let mut rows = Vec::new();
    for &(n, pairs) in sizes {
        let db = Database::fresh(ctx).await?;
        let result = run_on(ctx, &db, n, pairs).await;
        db.cleanup().await;
        rows.extend(result?);
    }
    Ok(rows)
}

async fn run_on(ctx: &Ctx, db: &Database, n: usize, pairs: usize) -> anyhow::Result<Vec<Row>> {
    let mut ours = ServerChild::start(ctx, &["--serve-casefile", &db.url]).await?;
    let result = measure(db, &mut ours, n, pairs).await;
    ours.stop().await;
    result
}

async fn measure(
    db: &Database,
    ours: &mut ServerChild,
    n: usize,
    pairs: usize,
) -> anyhow::Result<Vec<Row>> {
    let workspace = Workspace::of(ours)?;
    let mut seeder = Seeder::connect(&db.url, &workspace.workspace_id).await?;
    let seeding = Instant::now();
    let catalog = seeder.catalog(3, 20, 12).await?;
    let (_, counts) = seeder
        .conversations(&catalog, Profile::History, n, 30 * DAY)
        .await?;
    seeder.settle().await?;
    let seeded_in = seeding.elapsed();
    eprintln!("I1: seeded {} in {seeded_in:.1?}", counts.describe());

    let from = seeder.now - 31 * DAY;
    let to = seeder.now + DAY;
    let stamp = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.to_rfc3339())
            .context("a timestamp")
    };
    let operations = client::operations();
    let query = operations
        .get("Insights")
        .context("operations.graphql has no Insights")?;
    let call = Call::graphql(
        ours.addr,
        Some(&workspace.owner_token),
        query,
        json!({ "from": stamp(from)?, "to": stamp(to)? }),
    );
    let http = common::load_client()?;
    let ask = || async {
        let started = Instant::now();
        let body = common::send(&http, &call)
            .await
            .map_err(|why| anyhow::anyhow!("insights: {why}"))?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        (common::no_graphql_errors())(&body).map_err(|why| anyhow::anyhow!("insights: {why}"))?;
        let value: Value = serde_json::from_slice(&body)?;
        let digest = &value["data"]["insights"];
        ensure!(
            digest["conversations"] == n as u64
                && digest["topics"].as_array().is_some_and(|t| !t.is_empty())
                && digest["docsGaps"].as_array().is_some_and(|g| !g.is_empty())
                && digest["medianSecondsToAccept"].is_number(),
            "unexpected digest: {}",
            value.to_string().chars().take(600).collect::<String>()
        );
        Ok((ms, body.len()))
    };
    let backend = seeder.backend();
    let values = || -> Vec<sea_orm::Value> {
        vec![
            workspace.workspace_id.as_str().into(),
            workspace.workspace_id.as_str().into(),
            from.into(),
            to.into(),
        ]
    };
    let aggregate = || async {
        let started = Instant::now();
        let row = seeder
            .db
            .reader
            .query_one_raw(casefile::db::stmt(backend, AGGREGATE, values()))
            .await?
            .context("the aggregate returned no row")?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let conversations: i64 = row.try_get("", "conversations")?;
        ensure!(
            conversations == n as i64,
            "the aggregate counted {conversations} conversations"
        );
        anyhow::Ok(ms)
    };

    // Warm both (and count the digest's statements on the way).
    let before = ours.statement_count().await?;
    let (first_ms, bytes) = ask().await?;
    let statements = ours.statement_count().await?.saturating_sub(before);
    let bounded = || async {
        tokio::time::timeout(Duration::from_secs(120), aggregate())
            .await
            .context("the aggregate took over 2 minutes")?
    };
    let first_ceiling_ms = bounded().await?;
    eprintln!(
        "I1: first digest {first_ms:.0} ms ({bytes} bytes, {statements} SQL statements), first aggregate {first_ceiling_ms:.0} ms"
    );
    let (mut ours_ms, mut ceiling_ms) = (Vec::new(), Vec::new());
    // The casefile child's CPU over the measured digests (not the aggregates).
    let mut cpu_s = 0.0;
    let measuring = Instant::now();
    for pair in 0..pairs {
        // A slow digest gets fewer pairs (never under three), to keep the run short.
        if pair >= 3 && measuring.elapsed() > PAIRS_BUDGET {
            break;
        }
        let cpu_before = common::cpu_seconds(ours.pid)?;
        let (o, _) = tokio::time::timeout(Duration::from_secs(120), ask())
            .await
            .context("the digest took over 2 minutes")??;
        cpu_s += common::cpu_seconds(ours.pid)? - cpu_before;
        let c = bounded().await?;
        eprintln!(
            "I1 pair {}/{pairs}: digest {o:.0} ms, aggregate {c:.0} ms",
            pair + 1
        );
        ours_ms.push(o);
        ceiling_ms.push(c);
    }
    let largest = ours_ms.iter().copied().fold(0.0, f64::max);
    let pairs = ours_ms.len();
    Ok(vec![
        Row::new(
            "I1",
            format!("insights digest, {} conversations", thousands(n)),
            "ms",
            (
                median(&ours_ms),
                median(&ceiling_ms),
                median_ratio(&ours_ms, &ceiling_ms),
            ),
            // At most 3× the one aggregate query at every size; at 100,000 also
            // within 300 ms.
            Goal {
                max_ratio: Some(3.0),
                max_ours: (n >= 100_000).then_some(300.0),
                ..Goal::INFO
            },
        )
        .with_rounds(&ours_ms, &ceiling_ms)
        .with_note(Some(format!(
            "median of {pairs} pairs (largest digest {largest:.0} ms; first, cold: digest {first_ms:.0} ms, aggregate {first_ceiling_ms:.0} ms); the digest ran {statements} SQL statements and answered {bytes} bytes; seeded in {:.1} s (not counted): {}",
            seeded_in.as_secs_f64(),
            counts.describe()
        ))),
        Row::alone(
            "I1",
            format!("server CPU per insights digest, {} conversations", thousands(n)),
            "ms",
            cpu_s / pairs.max(1) as f64 * 1000.0,
            Goal::INFO,
        )
        .with_note(Some(format!(
            "an operation is one Insights query answered; the casefile child's user + system CPU (/proc/PID/stat) over the {pairs} measured digests (the cold first one and the ceiling's aggregates not counted), divided by {pairs}; on PostgreSQL the database server's own CPU is not in it"
        ))),
    ])
}
