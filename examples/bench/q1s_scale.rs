//! Q1S: the inbox page of Q1 over workspaces of 250, 10,000 and 100,000
//! conversations, in both orders and under each documented filter (status, team,
//! tags, assignee, unassigned): the server's CPU per page at each size. A page
//! reads its order from an index and stops after 50 rows, and `totalCount` is
//! counted once per change, so the figure at 100,000 stays within 1.3× of the one
//! at 250 (the "ceiling" column of these rows).
//!
//! Every workspace is seeded alike (the `Inbox` profile, two agents, three teams),
//! then its queued conversations are unassigned, so that each filter matches more
//! than a page even at 250 and every measured page has 50 rows.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use futures_util::future::BoxFuture;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::client;
use crate::common::{self, Call, Ctx, Database, Goal, Row, Scenario, ServerChild, Workspace};
use crate::seed::{DAY, Profile, Seeder};

pub const SCENARIO: Scenario = Scenario {
    id: "Q1S",
    name: "inbox-scale",
    about: "the inbox page at 250, 10,000 and 100,000 conversations, each order and filter: server CPU per page",
    run: start,
};

fn start(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Vec<Row>>> {
    Box::pin(run(ctx))
}

const CONNECTIONS: usize = 4;
const PAGE: usize = 50;

/// A list of the inbox: its name, order and filter.
struct Variant {
    name: String,
    order: &'static str,
    filter: Value,
}

/// Server CPU per page of each variant, in ms.
async fn measure_size(ctx: &Ctx, n: usize) -> anyhow::Result<Vec<(String, f64)>> {
    let db = Database::fresh(ctx).await?;
    let result = async {
        let ours = ServerChild::start(ctx, &["--serve-casefile", &db.url]).await?;
        let result = measure_on(ctx, &db, &ours, n).await;
        ours.stop().await;
        result
    }
    .await;
    db.cleanup().await;
    result
}

async fn measure_on(
    ctx: &Ctx,
    db: &Database,
    ours: &ServerChild,
    n: usize,
) -> anyhow::Result<Vec<(String, f64)>> {
    let workspace = Workspace::of(ours)?;
    let mut seeder = Seeder::connect(&db.url, &workspace.workspace_id).await?;
    let catalog = seeder.catalog(3, 2, 8).await?;
    let seeding = std::time::Instant::now();
    let (_, counts) = seeder
        .conversations(&catalog, Profile::Inbox, n, 30 * DAY)
        .await?;
    // A queued handoff waits unassigned, as it would without routing.
    seeder
        .db
        .writer
        .execute_unprepared("UPDATE conversations SET assignee_id = NULL WHERE status = 'QUEUED'")
        .await?;
    seeder.settle().await?;
    eprintln!(
        "Q1S {n}: seeded {} in {:.1?}",
        counts.describe(),
        seeding.elapsed()
    );
    let agent = catalog.agents.first().context("no agent seeded")?;
    let team = busiest_team(&seeder, &workspace.workspace_id).await?;
    let tags: Vec<&str> = catalog.tags.iter().take(3).map(|t| t.id.as_str()).collect();
    let filters = [
        ("everything", json!({})),
        ("status HUMAN", json!({ "status": ["HUMAN"] })),
        ("team", json!({ "teamId": team })),
        ("three tags", json!({ "tagIds": tags })),
        ("assignee", json!({ "assigneeId": agent.id })),
        ("unassigned", json!({ "unassigned": true })),
    ];
    let mut variants = Vec::new();
    for order in ["NEWEST", "RECENTLY_UPDATED"] {
        for (name, filter) in &filters {
            variants.push(Variant {
                name: format!("{order}, {name}"),
                order,
                filter: filter.clone(),
            });
        }
    }
    let round = if ctx.quick {
        Duration::from_millis(500)
    } else {
        Duration::from_millis(1500)
    };
    let operations = client::operations();
    let query = operations
        .get("Conversations")
        .context("operations.graphql has no Conversations")?;
    let clients = (0..CONNECTIONS)
        .map(|_| common::load_client())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let http = common::load_client()?;
    let mut out = Vec::new();
    for variant in &variants {
        let text = query.replace(
            "orderBy: RECENTLY_UPDATED",
            &format!("orderBy: {}", variant.order),
        );
        let call = Call::graphql(
            ours.addr,
            Some(&agent.token),
            &text,
            json!({ "first": PAGE, "filter": variant.filter }),
        );
        let answer = common::send(&http, &call)
            .await
            .map_err(|why| anyhow::anyhow!("{}: {why}", variant.name))?;
        check_page(&answer).with_context(|| format!("{} at {n}", variant.name))?;
        // Warm, then measured.
        common::closed_loop(
            &clients,
            common::always(call.clone()),
            common::no_graphql_errors(),
            round / 4,
        )
        .await?;
        let load = common::closed_loop_cpu(
            ours.pid,
            &clients,
            common::always(call),
            common::no_graphql_errors(),
            round,
        )
        .await?;
        ensure!(
            load.failed == 0,
            "{}: {}",
            variant.name,
            load.describe_failures()
        );
        let ms = common::cpu_per_request_us(std::slice::from_ref(&load)) / 1000.0;
        eprintln!(
            "Q1S {n}: {}: {ms:.3} ms CPU per page, {:.0} pages/s",
            variant.name,
            load.per_second()
        );
        out.push((variant.name.clone(), ms));
    }
    Ok(out)
}

/// The team with the most conversations.
async fn busiest_team(seeder: &Seeder, workspace_id: &str) -> anyhow::Result<String> {
    let row = seeder
        .db
        .writer
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            seeder.backend(),
            match seeder.backend() {
                sea_orm::DbBackend::Postgres => {
                    "SELECT team_id FROM conversations WHERE workspace_id = $1 AND team_id IS NOT NULL \
                     GROUP BY team_id ORDER BY COUNT(*) DESC LIMIT 1"
                }
                _ => {
                    "SELECT team_id FROM conversations WHERE workspace_id = ? AND team_id IS NOT NULL \
                     GROUP BY team_id ORDER BY COUNT(*) DESC LIMIT 1"
                }
            },
            [workspace_id.into()],
        ))
        .await?
        .context("no team has conversations")?;
    Ok(row.try_get::<String>("", "team_id")?)
}

/// A full page, without errors.
fn check_page(body: &[u8]) -> anyhow::Result<()> {
    (common::no_graphql_errors())(body).map_err(|why| anyhow::anyhow!("{why}"))?;
    let value: Value = serde_json::from_slice(body)?;
    let edges = value["data"]["conversations"]["edges"]
        .as_array()
        .context("no edges")?;
    ensure!(edges.len() == PAGE, "{} rows, expected {PAGE}", edges.len());
    Ok(())
}

async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let sizes: &[usize] = if ctx.quick {
        &[250, 10_000]
    } else {
        &[250, 10_000, 100_000]
    };
    let mut by_size = Vec::new();
    for &n in sizes {
        by_size.push((n, measure_size(ctx, n).await?));
    }
    let (_, smallest) = &by_size[0];
    let (largest_n, largest) = by_size.last().context("no sizes")?;
    let mut rows = Vec::new();
    for (i, (name, small)) in smallest.iter().enumerate() {
        let large = largest[i].1;
        let middle: Vec<String> = by_size
            .iter()
            .map(|(n, figures)| format!("{n}: {:.3}", figures[i].1))
            .collect();
        rows.push(
            Row::new(
                "Q1S",
                format!("page CPU at {largest_n} conversations, {name}"),
                "ms",
                (large, *small, large / small),
                Goal {
                    max_ratio: Some(1.3),
                    ..Goal::INFO
                },
            )
            .with_note(Some(format!(
                "server CPU per page of {PAGE} (the ceiling column is the same page at {}), by size: {}",
                by_size[0].0,
                middle.join(", ")
            ))),
        );
    }
    Ok(rows)
}
