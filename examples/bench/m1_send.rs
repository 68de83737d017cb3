//! M1: `sendMessage` from 16 concurrent senders (agents, each in its own
//! conversation, each sending as soon as its last message was answered), with the
//! built-in responder off: messages stored per second, and errors.
//!
//! Ceiling: the same two statements in the same transaction, straight through sqlx
//! on a database of its own with casefile's schema (its migrations) and its
//! settings: on SQLite a file in WAL mode with `synchronous=FULL`, foreign keys on,
//! a 10 s busy timeout and one writer connection (casefile's writer pool); on
//! PostgreSQL a pool of casefile's size. 16 tasks, each in its own conversation:
//!
//! ```sql
//! BEGIN;
//! UPDATE conversations SET last_seq = last_seq + 1, updated_at = ?, status = … WHERE id = ? AND workspace_id = ? RETURNING *;
//! INSERT INTO messages (…13 columns…) VALUES (…) RETURNING *;
//! COMMIT;
//! ```
//!
//! That is the durable work of a message (one commit, so one `fsync` of the log on
//! SQLite); the difference is casefile's HTTP, GraphQL, authorisation (reading the
//! conversation), ORM and publishing.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use futures_util::future::BoxFuture;
use serde_json::json;
use sqlx::Row as _;
use tokio::time::Instant;

use crate::common::{
    self, BODY, Call, Ctx, Database, Goal, Load, Row, SEND_MESSAGE, Scenario, ServerChild,
    Workspace, median_ratio, percentile,
};
use crate::seed::{DAY, Profile, Seeder};

pub const SCENARIO: Scenario = Scenario {
    id: "M1",
    name: "send",
    about: "`sendMessage` (persist, then publish) from 16 concurrent senders, responder off: messages/s beside raw SQL",
    run: start,
};

fn start(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Vec<Row>>> {
    Box::pin(run(ctx))
}

const SENDERS: usize = 16;

const UPDATE: &str = "UPDATE conversations SET last_seq = last_seq + 1, updated_at = ?, \
     status = CASE WHEN status = 'RESOLVED' AND ? THEN 'AI' ELSE status END \
     WHERE id = ? AND workspace_id = ? RETURNING *";
const INSERT: &str = "INSERT INTO messages (id, workspace_id, conversation_id, seq, author, \
     agent_id, body, internal, confidence, sources, client_message_id, reply_to_seq, created_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *";
const UPDATE_PG: &str = "UPDATE conversations SET last_seq = last_seq + 1, updated_at = $1, \
     status = CASE WHEN status = 'RESOLVED' AND $2 THEN 'AI' ELSE status END \
     WHERE id = $3 AND workspace_id = $4 RETURNING *";
const INSERT_PG: &str = "INSERT INTO messages (id, workspace_id, conversation_id, seq, author, \
     agent_id, body, internal, confidence, sources, client_message_id, reply_to_seq, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING *";

async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let db = Database::fresh(ctx).await?;
    let ceiling_db = match Database::fresh(ctx).await {
        Ok(c) => c,
        Err(err) => {
            db.cleanup().await;
            return Err(err);
        }
    };
    let result = run_on(ctx, &db, &ceiling_db).await;
    db.cleanup().await;
    ceiling_db.cleanup().await;
    result
}

async fn run_on(ctx: &Ctx, db: &Database, ceiling_db: &Database) -> anyhow::Result<Vec<Row>> {
    let ours = ServerChild::start(ctx, &["--serve-casefile", &db.url]).await?;
    let result = measure(ctx, db, &ours, ceiling_db).await;
    ours.stop().await;
    result
}

/// The raw-SQL side: a pool and the conversations its tasks write to.
enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Create the ceiling's database: casefile's schema (by its migrations), a
/// workspace, an agent per sender and a conversation per sender.
async fn ceiling_database(url: &str) -> anyhow::Result<(Raw, String, Vec<(String, String)>)> {
    use casefile::db::stmt;
    use sea_orm::ConnectionTrait;
    let schema = casefile::db::Db::connect(url, 1)
        .await
        .map_err(|err| anyhow::anyhow!("creating the ceiling database: {}", err.message()))?;
    let backend = schema.backend();
    let now = chrono::Utc::now().timestamp_millis();
    let ws = format!("ws_{}", ulid::Ulid::new());
    schema
        .writer
        .execute_raw(stmt(
            backend,
            "INSERT INTO workspaces (id, name, widget_key, responder_enabled, default_team_id, created_at, handoff_policy) \
             VALUES (?, 'Ceiling', ?, false, NULL, ?, '{}')",
            vec![ws.as_str().into(), format!("wk_{}", ulid::Ulid::new()).into(), now.into()],
        ))
        .await?;
    let mut pairs = Vec::new();
    for i in 0..SENDERS {
        let agent = format!("agt_{}", ulid::Ulid::new());
        let conversation = format!("conv_{}", ulid::Ulid::new());
        schema
            .writer
            .execute_raw(stmt(
                backend,
                "INSERT INTO agents (id, workspace_id, email, name, password_hash, role, created_at) \
                 VALUES (?, ?, ?, ?, 'x', 'AGENT', ?)",
                vec![
                    agent.as_str().into(),
                    ws.as_str().into(),
                    format!("ceiling-{i}@bench.test").into(),
                    format!("Ceiling {i}").into(),
                    now.into(),
                ],
            ))
            .await?;
        schema
            .writer
            .execute_raw(stmt(
                backend,
                "INSERT INTO conversations (id, workspace_id, lead_id, visitor_id, status, assignee_id, team_id, context, last_seq, ai_boundary_seq, created_at, updated_at) \
                 VALUES (?, ?, NULL, ?, 'AI', NULL, NULL, '{}', 0, 0, ?, ?)",
                vec![
                    conversation.as_str().into(),
                    ws.as_str().into(),
                    format!("vis_{i}").into(),
                    now.into(),
                    now.into(),
                ],
            ))
            .await?;
        pairs.push((agent, conversation));
    }
    drop(schema);
    let raw = if url.starts_with("sqlite:") {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // One writer connection, as casefile has.
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options)
            .await?;
        Raw::Sqlite(pool)
    } else {
        let pool = sqlx::postgres::PgPoolOptions::new()
            // casefile's pool: twice its default of 8 read connections.
            .max_connections(16)
            .connect(url)
            .await?;
        Raw::Postgres(pool)
    };
    Ok((raw, ws, pairs))
}

/// One message the raw way; an error names what failed.
async fn raw_send(raw: &Raw, ws: &str, agent: &str, conversation: &str) -> Result<(), String> {
    let now = chrono::Utc::now().timestamp_millis();
    let id = format!("msg_{}", ulid::Ulid::new());
    let text = |e: sqlx::Error| e.to_string();
    // The same two statements in one transaction, on either database.
    macro_rules! send {
        ($pool:expr, $update:expr, $insert:expr) => {{
            let mut tx = $pool.begin().await.map_err(text)?;
            let row = sqlx::query($update)
                .bind(now)
                .bind(false)
                .bind(conversation)
                .bind(ws)
                .fetch_one(&mut *tx)
                .await
                .map_err(text)?;
            let seq: i64 = row.try_get("last_seq").map_err(text)?;
            sqlx::query($insert)
                .bind(&id)
                .bind(ws)
                .bind(conversation)
                .bind(seq)
                .bind("AGENT")
                .bind(agent)
                .bind(BODY)
                .bind(false)
                .bind(Option::<f64>::None)
                .bind("[]")
                .bind(Option::<String>::None)
                .bind(Option::<i64>::None)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(text)?;
            tx.commit().await.map_err(text)
        }};
    }
    match raw {
        Raw::Sqlite(pool) => send!(pool, UPDATE, INSERT),
        Raw::Postgres(pool) => send!(pool, UPDATE_PG, INSERT_PG),
    }
}

/// The ceiling's closed loop: `SENDERS` tasks for `duration`.
async fn raw_round(
    raw: &Arc<Raw>,
    ws: &str,
    pairs: &[(String, String)],
    duration: Duration,
) -> anyhow::Result<Load> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = pairs
        .iter()
        .cloned()
        .map(|(agent, conversation)| {
            let (raw, ws) = (Arc::clone(raw), ws.to_owned());
            tokio::spawn(async move {
                let mut load = Load::default();
                for _ in 0..10_000_000u64 {
                    let at = Instant::now();
                    if at >= deadline {
                        break;
                    }
                    match raw_send(&raw, &ws, &agent, &conversation).await {
                        Ok(()) => {
                            load.ok += 1;
                            load.latencies.push(at.elapsed().as_secs_f64() * 1000.0);
                        }
                        Err(why) => {
                            load.failed += 1;
                            *load.failures.entry(why).or_default() += 1;
                        }
                    }
                }
                load
            })
        })
        .collect();
    let done = tokio::time::timeout(
        duration + common::STEP_TIMEOUT,
        futures_util::future::join_all(tasks),
    )
    .await
    .context("a raw sender did not finish in time")?;
    let mut load = Load {
        elapsed: started.elapsed(),
        ..Load::default()
    };
    for task in done {
        let t = task.context("a raw sender panicked")?;
        load.ok += t.ok;
        load.failed += t.failed;
        load.latencies.extend(t.latencies);
        for (why, n) in t.failures {
            *load.failures.entry(why).or_default() += n;
        }
    }
    Ok(load)
}

/// Failures that are SQLite's busy or locked errors (casefile reports every
/// database error as `INTERNAL`, without details, so those count too).
fn busy_or_locked(load: &Load) -> u64 {
    load.failures
        .iter()
        .filter(|(why, _)| {
            let why = why.to_lowercase();
            why.contains("busy") || why.contains("locked") || why.contains("internal")
        })
        .map(|(_, n)| *n)
        .sum()
}

async fn measure(
    ctx: &Ctx,
    db: &Database,
    ours: &ServerChild,
    ceiling_db: &Database,
) -> anyhow::Result<Vec<Row>> {
    let (pairs, round, warm) = if ctx.quick {
        (3, Duration::from_millis(500), Duration::from_millis(200))
    } else {
        (5, Duration::from_millis(1500), Duration::from_millis(300))
    };
    let workspace = Workspace::of(ours)?;
    let http = common::http_client()?;
    let data = common::graphql(
        &http,
        ours.addr,
        Some(&workspace.owner_token),
        "mutation { updateWorkspace(input: { responderEnabled: false }) { responderEnabled } }",
        json!({}),
    )
    .await?;
    ensure!(
        data["updateWorkspace"]["responderEnabled"] == false,
        "the responder is still on: {data}"
    );
    let mut seeder = Seeder::connect(&db.url, &workspace.workspace_id).await?;
    let catalog = seeder.catalog(1, SENDERS, 1).await?;
    let (conversations, _) = seeder
        .conversations(&catalog, Profile::Waiting, SENDERS, DAY)
        .await?;
    let calls: Vec<Call> = catalog
        .agents
        .iter()
        .zip(&conversations)
        .map(|(agent, conversation)| {
            Call::graphql(
                ours.addr,
                Some(&agent.token),
                SEND_MESSAGE,
                json!({ "input": { "conversationId": conversation.id, "body": BODY } }),
            )
        })
        .collect();
    let calls = Arc::new(calls);
    let make: common::Calls = Arc::new(move |w, _| calls[w % calls.len()].clone());
    let check = common::no_graphql_errors();
    let clients = (0..SENDERS)
        .map(|_| common::load_client())
        .collect::<anyhow::Result<Vec<_>>>()?;

    let (raw, ws, raw_pairs) = ceiling_database(&ceiling_db.url).await?;
    let raw = Arc::new(raw);

    common::closed_loop(&clients, Arc::clone(&make), Arc::clone(&check), warm).await?;
    raw_round(&raw, &ws, &raw_pairs, warm).await?;
    let (mut ours_loads, mut ceiling_loads) = (Vec::new(), Vec::new());
    let mut cpu = 0.0;
    // PostgreSQL's own CPU over our rounds only (the ceiling's rounds use it too).
    let on_postgres = ctx.database_url.is_some();
    let mut db_cpu = 0.0;
    for pair in 0..pairs {
        let before = common::cpu_seconds(ours.pid)?;
        let db_before = if on_postgres {
            common::postgres_cpu_seconds()?
        } else {
            0.0
        };
        let o = common::closed_loop(&clients, Arc::clone(&make), Arc::clone(&check), round).await?;
        cpu += common::cpu_seconds(ours.pid)? - before;
        if on_postgres {
            db_cpu += common::postgres_cpu_seconds()? - db_before;
        }
        let c = raw_round(&raw, &ws, &raw_pairs, round).await?;
        eprintln!(
            "M1 pair {}/{pairs}: ours {:.0} msg/s ({}), ceiling {:.0} msg/s ({})",
            pair + 1,
            o.per_second(),
            o.describe_failures(),
            c.per_second(),
            c.describe_failures(),
        );
        ours_loads.push(o);
        ceiling_loads.push(c);
    }
    match raw.as_ref() {
        Raw::Sqlite(pool) => pool.close().await,
        Raw::Postgres(pool) => pool.close().await,
    }

    let rate = |loads: &[Load]| loads.iter().map(Load::per_second).collect::<Vec<_>>();
    let (ours_rates, ceiling_rates) = (rate(&ours_loads), rate(&ceiling_loads));
    let ours_busy: u64 = ours_loads.iter().map(busy_or_locked).sum();
    let ceiling_busy: u64 = ceiling_loads.iter().map(busy_or_locked).sum();
    let failed: u64 = ours_loads
        .iter()
        .chain(&ceiling_loads)
        .map(|l| l.failed)
        .sum();
    let mut ours_latencies = common::all_latencies(&ours_loads);
    let mut ceiling_latencies = common::all_latencies(&ceiling_loads);
    let sent: u64 = ours_loads.iter().map(|l| l.ok).sum();
    let note = format!(
        "{pairs} pairs × {:.1} s, {SENDERS} senders each in its own conversation; server CPU {:.0} µs per message; latency p50/p99 ours {:.2}/{:.2} ms, ceiling {:.2}/{:.2} ms; ours {}; ceiling {}",
        round.as_secs_f64(),
        cpu / sent.max(1) as f64 * 1e6,
        percentile(&mut ours_latencies, 50.0),
        percentile(&mut ours_latencies, 99.0),
        percentile(&mut ceiling_latencies, 50.0),
        percentile(&mut ceiling_latencies, 99.0),
        common::describe_loads(&ours_loads),
        common::describe_loads(&ceiling_loads),
    );
    // On SQLite, where sends are committed together: at least 1.2 times the
    // ceiling's rate (which commits each on its own), whatever the machine's day,
    // at most 250 µs of CPU each. On PostgreSQL, the figures beside them.
    let (throughput_goal, cpu_goal) = if ctx.database_url.is_none() {
        (Goal::ratio_at_least(1.2), Goal::at_most(250.0))
    } else {
        (Goal::ratio_at_least(0.25), Goal::INFO)
    };
    let mut database = Vec::new();
    if on_postgres {
        let per_message = db_cpu / sent.max(1) as f64 * 1e6;
        database.push(
            Row::alone("M1", "PostgreSQL CPU per message", "µs", per_message, Goal::INFO).with_note(
                Some("PostgreSQL's processes' user + system CPU (/proc/PID/stat of every postgres process) over our rounds only, per message stored".to_owned()),
            ),
        );
        database.push(
            Row::alone(
                "M1",
                "server + PostgreSQL CPU per message",
                "µs",
                (cpu + db_cpu) / sent.max(1) as f64 * 1e6,
                Goal::INFO,
            )
            .with_note(Some("the two rows above, added".to_owned())),
        );
    }
    let mut rows = vec![
        Row::new(
            "M1",
            format!("sendMessage throughput, {SENDERS} senders"),
            "msg/s",
            (
                common::overall_rate(&ours_loads),
                common::overall_rate(&ceiling_loads),
                median_ratio(&ours_rates, &ceiling_rates),
            ),
            throughput_goal,
        )
        .with_rounds(&ours_rates, &ceiling_rates)
        .broken_if(failed > 0)
        .with_note(Some(note)),
        Row::alone(
            "M1",
            "server CPU per message",
            "µs",
            cpu / sent.max(1) as f64 * 1e6,
            cpu_goal,
        )
        .with_note(Some(
            "the casefile child's user + system CPU (/proc/PID/stat) over its rounds, per message stored".to_owned(),
        )),
        Row::new(
            "M1",
            "busy/locked errors",
            "",
            (ours_busy as f64, ceiling_busy as f64, f64::NAN),
            Goal::at_most(0.0),
        )
        .with_note(Some(
            "ours: answers with an INTERNAL error (casefile hides database details) or naming busy/locked; ceiling: sqlx errors naming busy/locked".to_owned(),
        )),
    ];
    rows.extend(database);
    Ok(rows)
}
