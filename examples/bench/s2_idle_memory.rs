//! S2: memory per idle subscribed connection, subscribed the way widgets are.
//!
//! The server runs as a child process (this binary, `--serve-casefile URL`), so its
//! resident set can be read from `/proc/PID/status`. The workspace holds one
//! conversation per connection (seeded: a visitor question and the AI's answer,
//! seq 1 and 2); each graphql-transport-ws connection signs in with its own
//! visitor's token and subscribes to its own conversation's `messages` after seq 1,
//! so the last message is replayed, and counts as subscribed once it received it
//! (seq 2), which proves the subscription is live on the server. No two
//! connections share an execution. Then nothing happens: KiB per connection =
//! (RSS after − RSS before) / N, at N = 5,000 and 10,000.
//!
//! Ceiling: the same number of connections to the raw axum server of `common`
//! (`--serve-raw`, with casefile's WebSocket buffer sizes), each counted once it
//! received the server's hello, so its task and broadcast receiver exist.
//!
//! Before "RSS before", both servers get a warm-up of connections that stay open
//! and are not counted, so one-time costs (allocator arenas, the SQLite page cache,
//! statement caches, lazily built tables) do not land on the per-connection figure.
//! Each round runs on a fresh child process; rounds alternate ours, ceiling, ….

use std::time::Duration;

use anyhow::ensure;
use futures_util::future::BoxFuture;
use tokio::time::Instant;

use crate::common::{
    self, Ctx, Database, Goal, Listeners, Row, Scenario, ServerChild, Workspace, median,
    median_ratio, thousands,
};
use crate::seed::{DAY, Profile, Seeder};

pub const SCENARIO: Scenario = Scenario {
    id: "S2",
    name: "idle-memory",
    about: "memory per idle subscribed connection (server RSS growth / N)",
    run: start,
};

fn start(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Vec<Row>>> {
    Box::pin(run(ctx))
}

/// Connections opened and kept before the "before" reading, not counted.
const WARM_UP: usize = 100;
/// How many connections are being opened at once.
const CONNECT_CONCURRENCY: usize = 128;
/// Wait after the last connection before reading the RSS.
const SETTLE: Duration = Duration::from_millis(1000);

const GOAL: Goal = Goal::at_most(12.0);

/// One round's reading.
struct Reading {
    before_kib: u64,
    after_kib: u64,
    connections: usize,
    /// The casefile child's CPU while the counted connections were opened (none
    /// for the ceiling).
    cpu_s: Option<f64>,
}

impl Reading {
    fn kib_per_connection(&self) -> f64 {
        (self.after_kib as f64 - self.before_kib as f64) / self.connections as f64
    }

    fn describe(&self) -> String {
        format!(
            "{:.1}→{:.1} MiB",
            self.before_kib as f64 / 1024.0,
            self.after_kib as f64 / 1024.0
        )
    }
}

#[derive(Clone, Copy)]
enum Side {
    Ours,
    Ceiling,
}

async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let (sizes, pairs): (&[usize], usize) = if ctx.quick {
        (&[2_000], 2)
    } else {
        (&[5_000, 10_000], 3)
    };
    let most = sizes.iter().copied().max().unwrap_or(0);
    ensure!(
        ctx.nofile >= (most + WARM_UP) as u64 + 200,
        "S2 needs an open-files limit of at least {} (it is {})",
        most + WARM_UP + 200,
        ctx.nofile
    );
    let mut rows = Vec::new();
    for &n in sizes {
        let db = Database::fresh(ctx).await?;
        let result = measure(ctx, &db, n, pairs).await;
        db.cleanup().await;
        rows.extend(result?);
    }
    Ok(rows)
}

/// The conversations to subscribe to, with their visitors' tokens: `n` counted
/// and [`WARM_UP`] more, seeded into the workspace of a first child.
async fn seed(ctx: &Ctx, db: &Database, n: usize) -> anyhow::Result<Vec<(String, String)>> {
    let child = ServerChild::start(ctx, &["--serve-casefile", &db.url]).await?;
    let workspace = Workspace::of(&child)?;
    let mut seeder = Seeder::connect(&db.url, &workspace.workspace_id).await?;
    let catalog = seeder.catalog(1, 1, 3).await?;
    let (conversations, _) = seeder
        .conversations(&catalog, Profile::Waiting, n + WARM_UP, DAY)
        .await?;
    seeder.settle().await?;
    child.stop().await;
    conversations
        .iter()
        .map(|c| Ok((c.id.clone(), seeder.visitor_token(c)?)))
        .collect()
}

async fn measure(ctx: &Ctx, db: &Database, n: usize, pairs: usize) -> anyhow::Result<Vec<Row>> {
    let subscribers = seed(ctx, db, n).await?;
    let mut ours = Vec::new();
    let mut ceiling = Vec::new();
    for pair in 0..pairs {
        let started = Instant::now();
        let o = round(ctx, db, Side::Ours, n, &subscribers).await?;
        let ours_took = started.elapsed();
        let started = Instant::now();
        let c = round(ctx, db, Side::Ceiling, n, &subscribers).await?;
        eprintln!(
            "S2 N={n} pair {}/{pairs}: ours {:.2} KiB/conn ({}, {:.1?}), ceiling {:.2} KiB/conn ({}, {:.1?})",
            pair + 1,
            o.kib_per_connection(),
            o.describe(),
            ours_took,
            c.kib_per_connection(),
            c.describe(),
            started.elapsed(),
        );
        ours.push(o);
        ceiling.push(c);
    }
    let per = |r: &[Reading]| {
        r.iter()
            .map(Reading::kib_per_connection)
            .collect::<Vec<_>>()
    };
    let (ours_kib, ceiling_kib) = (per(&ours), per(&ceiling));
    let describe = |r: &[Reading]| {
        r.iter()
            .map(Reading::describe)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let cpu_s: f64 = ours.iter().filter_map(|r| r.cpu_s).sum();
    let subscribed: usize = ours.iter().map(|r| r.connections).sum();
    let cpu_rounds: Vec<f64> = ours
        .iter()
        .map(|r| r.cpu_s.unwrap_or(f64::NAN) / r.connections.max(1) as f64 * 1e6)
        .collect();
    let note = format!(
        "{pairs} pairs, {WARM_UP} warm-up connections not counted; RSS ours: {}; ceiling: {}",
        describe(&ours),
        describe(&ceiling)
    );
    Ok(vec![
        Row::new(
            "S2",
            format!("KiB per idle subscribed connection, N={}", thousands(n)),
            "KiB",
            (
                median(&ours_kib),
                median(&ceiling_kib),
                median_ratio(&ours_kib, &ceiling_kib),
            ),
            GOAL,
        )
        .with_rounds(&ours_kib, &ceiling_kib)
        .with_note(Some(note)),
        Row::alone(
            "S2",
            format!("server CPU per subscription set up, N={}", thousands(n)),
            "µs",
            cpu_s / subscribed.max(1) as f64 * 1e6,
            Goal::INFO,
        )
        .with_rounds(&cpu_rounds, &[])
        .with_note(Some(format!(
            "an operation is one subscribed connection (WebSocket upgrade, connection_init, subscribe, the replayed first message delivered); the casefile child's user + system CPU (/proc/PID/stat) while the {} counted connections of each of its {pairs} rounds were opened (warm-up not counted), divided by {}",
            thousands(n),
            thousands(subscribed)
        ))),
    ])
}

/// Start a child server, warm it up, read its RSS, open `n` subscribed
/// connections, read its RSS again.
async fn round(
    ctx: &Ctx,
    db: &Database,
    side: Side,
    n: usize,
    subscribers: &[(String, String)],
) -> anyhow::Result<Reading> {
    let child = match side {
        Side::Ours => ServerChild::start(ctx, &["--serve-casefile", &db.url]).await?,
        Side::Ceiling => ServerChild::start(ctx, &["--serve-raw"]).await?,
    };
    let addr = child.addr;
    let limit = Duration::from_secs(60) + Duration::from_millis(n as u64 * 10);
    let opened = match side {
        Side::Ours => {
            // The warm-up takes the last conversations, the counted ones the rest.
            let open = |from: usize, count: usize| {
                common::open_all(count, CONNECT_CONCURRENCY, limit, move |i| async move {
                    let (conversation, visitor) = &subscribers[from + i];
                    let (socket, _) =
                        common::subscriber_after(addr, visitor, conversation, 1).await?;
                    Ok(socket)
                })
            };
            let warm = Listeners::start(open(n, WARM_UP).await?);
            tokio::time::sleep(SETTLE).await;
            let before_kib = child.rss_kib()?;
            let cpu_before = common::cpu_seconds(child.pid)?;
            let counted = Listeners::start(open(0, n).await?);
            let cpu_s = common::cpu_seconds(child.pid)? - cpu_before;
            (warm, counted, before_kib, Some(cpu_s))
        }
        Side::Ceiling => {
            let open = |count| {
                common::open_all(count, CONNECT_CONCURRENCY, limit, |_| {
                    common::raw_subscriber(addr)
                })
            };
            let warm = Listeners::start(open(WARM_UP).await?);
            tokio::time::sleep(SETTLE).await;
            let before_kib = child.rss_kib()?;
            let counted = Listeners::start(open(n).await?);
            (warm, counted, before_kib, None)
        }
    };
    let (mut warm, mut counted, before_kib, cpu_s) = opened;
    tokio::time::sleep(SETTLE).await;
    // The largest of a few readings: the resident set only settles upwards here.
    let mut after_kib = 0;
    for _ in 0..3 {
        after_kib = after_kib.max(child.rss_kib()?);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every connection must still be up: a reading over dropped ones means nothing.
    let mut problems = 0;
    let mut first_problem = None;
    for listeners in [&mut counted, &mut warm] {
        while let Ok(seen) = listeners.seen.try_recv() {
            if let common::Seen::Broken(why) = seen {
                problems += 1;
                first_problem.get_or_insert(why);
            }
        }
    }
    ensure!(
        problems == 0,
        "{problems} connections broke while idle; first: {}",
        first_problem.unwrap_or_default()
    );
    counted.stop(false, Duration::ZERO).await;
    warm.stop(false, Duration::ZERO).await;
    child.stop().await;
    Ok(Reading {
        before_kib,
        after_kib,
        connections: n,
        cpu_s,
    })
}
