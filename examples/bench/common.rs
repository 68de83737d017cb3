//! What every scenario shares: the run context, result rows and their report,
//! statistics, fresh databases, server child processes (casefile and the raw axum
//! ceiling), and WebSocket / HTTP clients.
//!
//! Everything here is bounded: every await on a server or a client has a timeout,
//! and every loop a count.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{Message as AxumMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::{get, post};
use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// One await on a server: connect, handshake, a request, a reply.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a child server may take to start (migrations on PostgreSQL included).
const CHILD_START_TIMEOUT: Duration = Duration::from_secs(120);

/// The open-files limit the bench asks for (the hard limit caps it).
pub const NOFILE_WANTED: u64 = 65_536;

/// The token signing secret of every casefile child, so the bench can issue tokens
/// for the agents and visitors it seeds straight into the database.
pub const BENCH_JWT_SECRET: &str = "casefile-bench-secret-not-for-production-use";

/// Tokens as the casefile children issue them.
pub fn bench_tokens() -> casefile::auth::Tokens {
    casefile::auth::Tokens::new(
        BENCH_JWT_SECRET.as_bytes(),
        Duration::from_secs(12 * 3600),
        Duration::from_secs(7 * 86_400),
    )
}

/// Message body of every message the scenarios send: a typical agent answer.
pub const BODY: &str = "Thanks for waiting. I checked your account: the refund was issued today and should reach your card within 3 to 5 business days.";

/// The `messages` subscription every subscriber runs, as the brief gives it.
pub const MESSAGES_SUBSCRIPTION: &str =
    "subscription($c: ID!) { messages(conversationId: $c) { seq body } }";

/// The same, replaying what follows `afterSeq` (as a widget that comes back does).
pub const MESSAGES_AFTER_SUBSCRIPTION: &str = "subscription($c: ID!, $after: Int) { messages(conversationId: $c, afterSeq: $after) { seq body } }";

/// Raise the open-files limit as far as the hard limit allows; the limit in force.
pub fn raise_nofile_limit() -> u64 {
    match rlimit::increase_nofile_limit(NOFILE_WANTED) {
        Ok(limit) => limit,
        Err(err) => {
            eprintln!("bench: could not raise the open-files limit: {err}");
            0
        }
    }
}

/// What a scenario is given.
pub struct Ctx {
    /// Smaller sizes and fewer rounds.
    pub quick: bool,
    /// A PostgreSQL server to create fresh databases on (`--database-url`); SQLite
    /// temp files otherwise.
    pub database_url: Option<String>,
    /// Conversations in Q1's workspace (`--conversations`).
    pub conversations: Option<usize>,
    /// This binary, re-executed for child servers.
    pub exe: PathBuf,
    /// The open-files limit of this process.
    pub nofile: u64,
}

/// A scenario of the table: `run` gives its rows.
pub struct Scenario {
    /// Short id (`S1`), matched case-insensitively by `--scenario`.
    pub id: &'static str,
    /// Longer name (`fanout`), also accepted by `--scenario`.
    pub name: &'static str,
    pub about: &'static str,
    pub run: for<'a> fn(&'a Ctx) -> BoxFuture<'a, anyhow::Result<Vec<Row>>>,
}

/// What a metric must meet; `None` parts are not checked.
#[derive(Clone, Copy, Debug, Default)]
pub struct Goal {
    /// Largest `ours / ceiling` (median over round pairs).
    pub max_ratio: Option<f64>,
    /// Largest absolute value of `ours`, in the row's unit.
    pub max_ours: Option<f64>,
    /// Smallest `ours / ceiling` (median over round pairs), for throughputs.
    pub min_ratio: Option<f64>,
    /// Smallest absolute value of `ours`, for throughputs.
    pub min_ours: Option<f64>,
}

impl Goal {
    pub const INFO: Goal = Goal {
        max_ratio: None,
        max_ours: None,
        min_ratio: None,
        min_ours: None,
    };

    /// `ours` at most `v` (a latency, a size, a count).
    pub const fn at_most(v: f64) -> Goal {
        Goal {
            max_ours: Some(v),
            ..Goal::INFO
        }
    }

    /// `ours` at least `v` (a throughput).
    pub const fn at_least(v: f64) -> Goal {
        Goal {
            min_ours: Some(v),
            ..Goal::INFO
        }
    }

    /// The median ratio at least `r` (a throughput beside its ceiling).
    pub const fn ratio_at_least(r: f64) -> Goal {
        Goal {
            min_ratio: Some(r),
            ..Goal::INFO
        }
    }

    fn describe(&self, unit: &str) -> String {
        let mut parts = Vec::new();
        if let Some(r) = self.min_ratio {
            parts.push(format!("≥ {r:.2}× ceiling"));
        }
        if let Some(r) = self.max_ratio {
            parts.push(format!("≤ {r}× ceiling"));
        }
        if let Some(v) = self.min_ours {
            parts.push(format!("≥ {}", format_bound(v, unit)));
        }
        if let Some(v) = self.max_ours {
            parts.push(format!("≤ {}", format_bound(v, unit)));
        }
        if parts.is_empty() {
            "—".to_owned()
        } else {
            parts.join(" and ")
        }
    }

    fn is_info(&self) -> bool {
        self.max_ratio.is_none()
            && self.max_ours.is_none()
            && self.min_ratio.is_none()
            && self.min_ours.is_none()
    }

    fn check(&self, ours: f64, ratio: f64) -> Option<bool> {
        if self.is_info() {
            return None;
        }
        // A NaN (nothing measured) meets no bound.
        let ok = self.max_ratio.is_none_or(|max| ratio <= max)
            && self.min_ratio.is_none_or(|min| ratio >= min)
            && self.max_ours.is_none_or(|max| ours <= max)
            && self.min_ours.is_none_or(|min| ours >= min);
        Some(ok)
    }
}

/// One line of the table.
#[derive(Clone, Debug)]
pub struct Row {
    pub scenario: String,
    pub metric: String,
    /// `ms`, `KiB`, …
    pub unit: &'static str,
    pub ours: f64,
    pub ceiling: f64,
    /// Median over round pairs of `ours / ceiling`.
    pub ratio: f64,
    pub goal: Goal,
    /// Forces a failure whatever the numbers (lost deliveries, errors).
    pub broken: bool,
    /// Not measured in this run (a scenario that needs another database).
    pub skipped: bool,
    pub note: Option<String>,
    /// The per-round values behind `ratio` (JSON only).
    pub rounds: (Vec<f64>, Vec<f64>),
}

impl Row {
    pub fn new(
        scenario: &str,
        metric: impl Into<String>,
        unit: &'static str,
        (ours, ceiling, ratio): (f64, f64, f64),
        goal: Goal,
    ) -> Row {
        Row {
            scenario: scenario.to_owned(),
            metric: metric.into(),
            unit,
            ours,
            ceiling,
            ratio,
            goal,
            broken: false,
            skipped: false,
            note: None,
            rounds: (Vec::new(), Vec::new()),
        }
    }

    /// A scenario that does not run with this configuration, and why.
    pub fn skip(scenario: &str, metric: impl Into<String>, why: impl Into<String>) -> Row {
        Row {
            scenario: scenario.to_owned(),
            metric: metric.into(),
            unit: "",
            ours: f64::NAN,
            ceiling: f64::NAN,
            ratio: f64::NAN,
            goal: Goal::INFO,
            broken: false,
            skipped: true,
            note: Some(why.into()),
            rounds: (Vec::new(), Vec::new()),
        }
    }

    /// A measured value with no ceiling beside it (a count, a correctness check).
    pub fn alone(
        scenario: &str,
        metric: impl Into<String>,
        unit: &'static str,
        ours: f64,
        goal: Goal,
    ) -> Row {
        Row::new(scenario, metric, unit, (ours, f64::NAN, f64::NAN), goal)
    }

    /// A scenario that could not run.
    pub fn error(scenario: &str, err: &anyhow::Error) -> Row {
        Row {
            scenario: scenario.to_owned(),
            metric: "error".to_owned(),
            unit: "",
            ours: f64::NAN,
            ceiling: f64::NAN,
            ratio: f64::NAN,
            goal: Goal::INFO,
            broken: true,
            skipped: false,
            note: Some(format!("{err:#}")),
            rounds: (Vec::new(), Vec::new()),
        }
    }

    pub fn with_note(mut self, note: Option<String>) -> Row {
        self.note = note;
        self
    }

    pub fn with_rounds(mut self, ours: &[f64], ceiling: &[f64]) -> Row {
        self.rounds = (ours.to_vec(), ceiling.to_vec());
        self
    }

    pub fn broken_if(mut self, broken: bool) -> Row {
        self.broken |= broken;
        self
    }

    /// `Some(true)` pass, `Some(false)` fail, `None` informational (or skipped).
    pub fn verdict(&self) -> Option<bool> {
        if self.skipped {
            return None;
        }
        if self.broken {
            return Some(false);
        }
        self.goal.check(self.ours, self.ratio)
    }

    fn verdict_text(&self) -> &'static str {
        match self.verdict() {
            _ if self.skipped => "skip",
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "info",
        }
    }

    pub fn to_json(&self) -> Value {
        let num = |v: f64| {
            if v.is_finite() { json!(v) } else { Value::Null }
        };
        json!({
            "scenario": self.scenario,
            "metric": self.metric,
            "unit": self.unit,
            "ours": num(self.ours),
            "ceiling": num(self.ceiling),
            "ratio": num(self.ratio),
            "goal": self.goal.describe(self.unit),
            "goal_max_ratio": self.goal.max_ratio,
            "goal_max_ours": self.goal.max_ours,
            "goal_min_ratio": self.goal.min_ratio,
            "goal_min_ours": self.goal.min_ours,
            "result": match self.verdict() {
                _ if self.skipped => "skip",
                Some(true) => "pass",
                Some(false) => "fail",
                None => "info",
            },
            "note": self.note,
            "ours_rounds": self.rounds.0,
            "ceiling_rounds": self.rounds.1,
        })
    }
}

/// A goal's bound, as written in a goal (`60 ms`, `1 s`, `16 KiB`).
fn format_bound(v: f64, unit: &str) -> String {
    match unit {
        "ms" if v >= 1000.0 => format!("{} s", v / 1000.0),
        "req/s" | "msg/s" => format!("{} {unit}", thousands(v.round() as usize)),
        "" => format!("{v}"),
        unit => format!("{v} {unit}"),
    }
}

fn format_value(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return "—".to_owned();
    }
    match unit {
        "ms" if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
        "ms" if v >= 100.0 => format!("{v:.0} ms"),
        "ms" => format!("{v:.2} ms"),
        "KiB" => format!("{v:.1} KiB"),
        "req/s" | "msg/s" => format!("{} {unit}", thousands(v.round() as usize)),
        "" => format!("{v}"),
        unit => format!("{v:.2} {unit}"),
    }
}

/// The Markdown table of `rows`, with their notes below it.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str("| scenario | metric | ours | ceiling | ratio | goal | pass/fail |\n");
    out.push_str("| --- | --- | ---: | ---: | ---: | --- | --- |\n");
    for row in rows {
        let ratio = if row.ratio.is_finite() {
            format!("{:.2}×", row.ratio)
        } else {
            "—".to_owned()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.scenario,
            row.metric,
            format_value(row.ours, row.unit),
            format_value(row.ceiling, row.unit),
            ratio,
            row.goal.describe(row.unit),
            row.verdict_text(),
        );
    }
    let notes: Vec<_> = rows
        .iter()
        .filter_map(|r| r.note.as_ref().map(|n| (r, n)))
        .collect();
    if !notes.is_empty() {
        out.push('\n');
        for (row, note) in notes {
            let _ = writeln!(out, "- {} {}: {}", row.scenario, row.metric, note);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Statistics

/// The `p`-th percentile (nearest rank) of `values`; NaN when empty.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Median over round pairs of `ours[i] / ceiling[i]`.
pub fn median_ratio(ours: &[f64], ceiling: &[f64]) -> f64 {
    let ratios: Vec<f64> = ours
        .iter()
        .zip(ceiling)
        .map(|(o, c)| o / c)
        .filter(|r| r.is_finite())
        .collect();
    median(&ratios)
}

// ---------------------------------------------------------------------------
// Databases

/// A fresh database for one scenario: a SQLite file in a temp dir, or a new
/// PostgreSQL database on the server of `--database-url`, dropped by `cleanup`
/// (both kept, for profiling queries afterwards, when `CASEFILE_BENCH_KEEP_DB`
/// is set).
pub struct Database {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl Database {
    pub async fn fresh(ctx: &Ctx) -> anyhow::Result<Database> {
        let Some(base) = &ctx.database_url else {
            let dir = tempfile::tempdir().context("creating a temp dir")?;
            let url = format!("sqlite://{}", dir.path().join("casefile.db").display());
            // For profiling queries afterwards (`sqlite3 FILE`): keep the file.
            if std::env::var_os("CASEFILE_BENCH_KEEP_DB").is_some() {
                let kept = dir.keep();
                eprintln!("keeping {}", kept.join("casefile.db").display());
                return Ok(Database {
                    url,
                    _dir: None,
                    pg: None,
                });
            }
            return Ok(Database {
                url,
                _dir: Some(dir),
                pg: None,
            });
        };
        use sqlx::Connection;
        let mut url = url::Url::parse(base).context("--database-url is not a URL")?;
        ensure!(
            matches!(url.scheme(), "postgres" | "postgresql"),
            "--database-url must be a postgres:// URL"
        );
        let base_name = url.path().trim_start_matches('/').to_owned();
        let name = format!(
            "{base_name}_bench_{}",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        let mut conn = tokio::time::timeout(STEP_TIMEOUT, sqlx::PgConnection::connect(base))
            .await
            .context("connecting to PostgreSQL timed out")?
            .context("connecting to PostgreSQL")?;
        // The name is ours: the base name and a lower-case ULID.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .context("creating a bench database")?;
        let _ = conn.close().await;
        url.set_path(&name);
        Ok(Database {
            url: url.to_string(),
            _dir: None,
            pg: Some((base.clone(), name)),
        })
    }

    /// Drop a PostgreSQL database (best effort); a SQLite temp dir goes with `self`.
    pub async fn cleanup(self) {
        let Some((base, name)) = &self.pg else {
            return;
        };
        if std::env::var_os("CASEFILE_BENCH_KEEP_DB").is_some() {
            eprintln!("keeping database {name}");
            return;
        }
        use sqlx::Connection;
        let dropped = async {
            let mut conn = sqlx::PgConnection::connect(base).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await?;
            conn.close().await
        };
        match tokio::time::timeout(STEP_TIMEOUT, dropped).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("bench: could not drop database {name}: {err}"),
            Err(_) => eprintln!("bench: dropping database {name} timed out"),
        }
    }
}

// ---------------------------------------------------------------------------
// Child servers

/// The hidden flags that turn this binary into a server.
pub enum ChildMode {
    /// `--serve-casefile DATABASE_URL`: casefile on that database, with a fresh
    /// workspace; prints `{"addr", "workspace": {...}}`. With `--model-url`, its
    /// answers come from the model server there (A1).
    Casefile {
        database_url: String,
        model_url: Option<String>,
    },
    /// `--serve-raw`: the raw axum WebSocket broadcast server; prints `{"addr"}`.
    Raw,
}

/// Run as a child server: print one JSON line with the bound address on stdout,
/// then serve until stdin closes (the parent ended or dropped us).
pub async fn serve_child(mode: ChildMode) -> anyhow::Result<()> {
    // The server's warnings and errors (with their details) on stderr.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    raise_nofile_limit();
    let local: SocketAddr = "127.0.0.1:0".parse().context("address")?;
    // Held until the process exits.
    let mut _running: Option<casefile::Running> = None;
    let ready = match mode {
        ChildMode::Casefile {
            database_url: url,
            model_url,
        } => {
            let mut config = casefile::Config::for_database(url);
            if let Some(model_url) = model_url {
                config.model.url = Some(model_url.parse().context("--model-url")?);
                config.model.model = Some("bench".to_owned());
            }
            // Known to the bench, so it can issue tokens for the accounts it seeds.
            config.jwt_secret = Some(BENCH_JWT_SECRET.to_owned());
            // W1 delivers webhooks to a receiver in the bench process.
            config.webhook_allow_private = true;
            // The seeded conversations are days old: resolving the silent ones on a
            // clock (`autoResolveAfterSeconds`) would change the data measured.
            config.sweep_every = std::time::Duration::from_secs(24 * 3600);
            raise_limits(&mut config.limits);
            let running = casefile::spawn(config, local)
                .await
                .context("starting casefile")?;
            let email = format!(
                "owner-{}@bench.test",
                ulid::Ulid::new().to_string().to_lowercase()
            );
            let created = casefile::cli::create_workspace(
                &running.state,
                "Bench",
                &email,
                "correct horse battery",
                None,
            )
            .await
            .context("creating the bench workspace")?;
            let ready = json!({ "addr": running.addr, "workspace": created });
            _running = Some(running);
            ready
        }
        ChildMode::Raw => {
            let listener = tokio::net::TcpListener::bind(local).await?;
            let addr = listener.local_addr()?;
            tokio::spawn(async move {
                if let Err(err) = axum::serve(listener, raw_router()).await {
                    eprintln!("bench raw server: {err}");
                }
            });
            json!({ "addr": addr })
        }
    };
    println!("{ready}");
    // Serve until the parent closes our stdin, then exit without a graceful
    // shutdown: thousands of sockets may be open. Meanwhile every line on stdin is
    // a question, answered with one JSON line on stdout (see `ServerChild::ask`).
    let state = _running.as_ref().map(|r| r.state.clone());
    let watcher = std::thread::spawn(move || {
        use std::io::BufRead;
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            line.clear();
            match stdin.lock().read_line(&mut line) {
                Ok(0) | Err(_) => std::process::exit(0),
                Ok(_) => {
                    let answer = match (line.trim(), &state) {
                        ("statements", Some(state)) => {
                            json!({ "statements": state.db.statement_count() })
                        }
                        ("statements", None) => json!({ "statements": null }),
                        (other, _) => json!({ "error": format!("unknown question {other:?}") }),
                    };
                    println!("{answer}");
                }
            }
        }
    });
    // The watcher never returns; wait on it without blocking the runtime.
    let _ = tokio::task::spawn_blocking(move || watcher.join()).await;
    Ok(())
}

/// The bench floods on purpose from one address with a few tokens. Rate limits stay
/// on (their buckets are taken on every request, as in production) with rates no
/// scenario reaches; connection caps are raised for S1 and S2's thousands of sockets.
fn raise_limits(limits: &mut casefile::config::Limits) {
    let unreachable: casefile::config::Rate = "1000000000/1s".parse().expect("a valid rate");
    limits.rate_limits = true;
    limits.rate_signin_email = unreachable;
    limits.rate_signin_ip = unreachable;
    limits.rate_start_conversation = unreachable;
    limits.rate_visitor_writes = unreachable;
    limits.rate_typing = unreachable;
    limits.rate_token = unreachable;
    limits.max_ws_per_ip = 1_000_000;
    limits.max_connections = 1_000_000;
}

/// A server running in a child process of the bench.
pub struct ServerChild {
    child: tokio::process::Child,
    /// Kept open, so the child never writes into a closed pipe; answers to `ask`.
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    pub pid: u32,
    pub addr: SocketAddr,
    /// The whole JSON line the child printed.
    pub ready: Value,
}

impl ServerChild {
    /// Start this binary with `args` and wait for its ready line.
    pub async fn start(ctx: &Ctx, args: &[&str]) -> anyhow::Result<ServerChild> {
        let mut child = tokio::process::Command::new(&ctx.exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting a child server")?;
        let pid = child.id().context("child has no pid")?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(CHILD_START_TIMEOUT, lines.next_line())
            .await
            .context("child server did not start in time")?
            .context("reading the child's stdout")?
            .context("child server exited before it was ready")?;
        let ready: Value = serde_json::from_str(&line)
            .with_context(|| format!("child printed something else than JSON: {line}"))?;
        let addr: SocketAddr = ready["addr"]
            .as_str()
            .context("no addr in the child's ready line")?
            .parse()
            .context("child addr")?;
        ensure!(
            addr.ip() == std::net::Ipv4Addr::LOCALHOST,
            "child bound {addr}, not 127.0.0.1"
        );
        Ok(ServerChild {
            child,
            stdout: lines,
            pid,
            addr,
            ready,
        })
    }

    /// Resident set size of the child, in KiB (`VmRSS` of `/proc/PID/status`).
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(self.pid)
    }

    /// Ask the child a question on its stdin (one line); its one-line JSON answer.
    pub async fn ask(&mut self, question: &str) -> anyhow::Result<Value> {
        use tokio::io::AsyncWriteExt;
        let stdin = self
            .child
            .stdin
            .as_mut()
            .context("the child's stdin is closed")?;
        stdin.write_all(format!("{question}\n").as_bytes()).await?;
        stdin.flush().await?;
        let line = tokio::time::timeout(STEP_TIMEOUT, self.stdout.next_line())
            .await
            .context("the child did not answer in time")?
            .context("reading the child's answer")?
            .context("the child exited")?;
        serde_json::from_str(&line).with_context(|| format!("the child answered {line:?}"))
    }

    /// How many SQL statements the casefile child has run so far
    /// (`Db::statement_count`).
    pub async fn statement_count(&mut self) -> anyhow::Result<u64> {
        let answer = self.ask("statements").await?;
        answer["statements"]
            .as_u64()
            .with_context(|| format!("no statement count in {answer}"))
    }

    /// `kill -9` the child (SIGKILL: no shutdown of any kind), and wait until it
    /// is gone.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.start_kill().context("sending SIGKILL")?;
        tokio::time::timeout(STEP_TIMEOUT, self.child.wait())
            .await
            .context("the killed child did not end in time")?
            .context("waiting for the killed child")?;
        Ok(())
    }

    /// Stop the child: close its stdin, then kill it if it lingers.
    pub async fn stop(mut self) {
        drop(self.child.stdin.take());
        let exited = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        if exited.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

/// Seconds of CPU (user + system) the process `pid` has used, from
/// `/proc/PID/stat`: a figure that drifts less than throughput on a shared machine.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The fields after the command name, which is in parentheses: utime and stime
    // are the 12th and 13th of them.
    let after = stat.rsplit_once(')').context("a stat line")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = fields.get(11).context("utime")?.parse::<f64>()?
        + fields.get(12).context("stime")?.parse::<f64>()?;
    // Linux reports them in USER_HZ, 100 on the platforms this runs on.
    Ok(ticks / 100.0)
}

/// Seconds of CPU (user + system) the running `postgres` processes (the server
/// and its backends) have used, summed: the database's share of a phase, read
/// before and after it. A backend that exits meanwhile takes its share with it;
/// casefile's pooled connections live as long as the child.
pub fn postgres_cpu_seconds() -> anyhow::Result<f64> {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").context("reading /proc")? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if stat.contains("(postgres)") {
            total += cpu_seconds(pid).unwrap_or(0.0);
        }
    }
    Ok(total)
}

pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    let kib = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .context("VmRSS value")?;
    Ok(kib)
}

// ---------------------------------------------------------------------------
// The raw ceiling server

#[derive(Clone)]
struct Raw {
    frames: broadcast::Sender<Utf8Bytes>,
    /// What `POST /graphql` answers, set with `POST /canned`.
    canned: Arc<std::sync::RwLock<Bytes>>,
}

/// The frame a raw connection gets once it is set up (its `connection_ack`).
pub const RAW_HELLO: &str = r#"{"type":"connection_ack"}"#;

/// A plain axum server: `GET /ws` upgrades (with casefile's buffer sizes), `POST
/// /broadcast` sends its body as one text frame to every connection and answers
/// how many connections it was queued for; `POST /graphql` reads the request body
/// and answers the bytes last given to `POST /canned`, as `application/json`.
pub fn raw_router() -> Router {
    let (frames, _) = broadcast::channel(64);
    let canned = Arc::new(std::sync::RwLock::new(Bytes::from_static(b"{}")));
    Router::new()
        .route("/ws", get(raw_upgrade))
        .route("/broadcast", post(raw_broadcast))
        .route("/graphql", post(raw_canned))
        .route("/canned", post(raw_set_canned))
        .with_state(Raw { frames, canned })
}

async fn raw_canned(State(raw): State<Raw>, body: Bytes) -> Response {
    use axum::response::IntoResponse;
    // Read like casefile reads it; the answer does not depend on it.
    drop(body);
    let canned = raw
        .canned
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        canned,
    )
        .into_response()
}

async fn raw_set_canned(State(raw): State<Raw>, body: Bytes) -> Response {
    use axum::response::IntoResponse;
    let len = body.len();
    *raw.canned
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = body;
    len.to_string().into_response()
}

async fn raw_upgrade(State(raw): State<Raw>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .read_buffer_size(casefile::ws::READ_BUFFER)
        .write_buffer_size(casefile::ws::WRITE_BUFFER)
        .on_upgrade(move |socket| raw_connection(socket, raw.frames.subscribe()))
}

async fn raw_connection(mut socket: WebSocket, mut frames: broadcast::Receiver<Utf8Bytes>) {
    if socket
        .send(AxumMessage::Text(Utf8Bytes::from_static(RAW_HELLO)))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(AxumMessage::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            frame = frames.recv() => match frame {
                Ok(frame) => {
                    if socket.send(AxumMessage::Text(frame)).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
}

async fn raw_broadcast(State(raw): State<Raw>, body: Bytes) -> Response {
    use axum::response::IntoResponse;
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return (axum::http::StatusCode::BAD_REQUEST, "not UTF-8").into_response();
    };
    let receivers = raw.frames.send(Utf8Bytes::from(text)).unwrap_or(0);
    receivers.to_string().into_response()
}

// ---------------------------------------------------------------------------
// HTTP

pub fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(STEP_TIMEOUT)
        .build()
        .context("building the HTTP client")
}

/// A POST the [`Sender`] makes.
pub struct Post {
    pub url: String,
    pub bearer: Option<String>,
    /// Sent as `application/json` when true, as plain text otherwise.
    pub json: bool,
    pub body: String,
}

type Job = (
    Post,
    tokio::sync::oneshot::Sender<anyhow::Result<(Instant, String)>>,
);

/// The sender of a latency scenario: an HTTP client on its own thread and
/// single-threaded runtime, so the moment a response arrives is noted when it
/// arrives, not when the bench's runtime, busy with thousands of subscribers, gets
/// round to the sending task.
pub struct Sender {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Sender {
    pub fn start() -> anyhow::Result<Sender> {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("sender runtime")?;
        let client = http_client()?;
        std::thread::Builder::new()
            .name("bench-sender".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    // Ends when the `Sender` is dropped.
                    while let Some((post, reply)) = queue.recv().await {
                        let mut request = client.post(&post.url).body(post.body);
                        if post.json {
                            request = request.header("content-type", "application/json");
                        }
                        if let Some(token) = &post.bearer {
                            request = request.bearer_auth(token);
                        }
                        let answer = async {
                            let response = request.send().await?;
                            let arrived = Instant::now();
                            let status = response.status();
                            let text = response.text().await?;
                            ensure!(status.is_success(), "HTTP {status}: {text}");
                            Ok((arrived, text))
                        }
                        .await;
                        let _ = reply.send(answer);
                    }
                });
            })
            .context("starting the sender thread")?;
        Ok(Sender { jobs })
    }

    /// Make `post`; when its response (headers) arrived, and its body.
    pub async fn post(&self, post: Post) -> anyhow::Result<(Instant, String)> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send((post, reply))
            .map_err(|_| anyhow!("the sender thread ended"))?;
        tokio::time::timeout(STEP_TIMEOUT + Duration::from_secs(5), answer)
            .await
            .context("the sender did not answer in time")?
            .context("the sender thread ended")?
    }
}

/// POST a GraphQL operation that must succeed; its `data`.
pub async fn graphql(
    client: &reqwest::Client,
    addr: SocketAddr,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let mut request = client
        .post(format!("http://{addr}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let body: Value = request.send().await?.json().await?;
    if body.get("errors").is_some() {
        bail!("GraphQL errors: {body}");
    }
    Ok(body["data"].clone())
}

/// The seq of a scenario's opening message: the owner's first public reply takes
/// the conversation from the AI, so the message saying who joined comes first.
pub const OPENING_SEQ: i64 = 2;

/// A conversation started from the widget, with no message, then `BODY` from the
/// owner (seq [`OPENING_SEQ`], after who joined): its id and the visitor token.
/// The opening message is the owner's, not the visitor's, so that no automatic
/// answer (the AI pipeline runs after visitor messages) adds messages the
/// scenario did not send.
pub async fn open_conversation(
    client: &reqwest::Client,
    addr: SocketAddr,
    widget_key: &str,
    owner_token: &str,
) -> anyhow::Result<(String, String)> {
    let data = graphql(
        client,
        addr,
        None,
        "mutation($input: StartConversationInput!) { startConversation(input: $input) { conversation { id } visitorToken } }",
        json!({ "input": { "widgetKey": widget_key, "context": { "pageUrl": "https://bench.test/help" } } }),
    )
    .await?;
    let payload = &data["startConversation"];
    let id = payload["conversation"]["id"]
        .as_str()
        .context("conversation id")?
        .to_owned();
    let token = payload["visitorToken"]
        .as_str()
        .context("visitor token")?
        .to_owned();
    let sent = graphql(
        client,
        addr,
        Some(owner_token),
        SEND_MESSAGE,
        json!({ "input": { "conversationId": id, "body": BODY } }),
    )
    .await?;
    let seq = sent["sendMessage"]["seq"].as_i64();
    ensure!(
        seq == Some(OPENING_SEQ),
        "the opening message got seq {seq:?}, expected {OPENING_SEQ}"
    );
    Ok((id, token))
}

/// The mutation the sender of a scenario runs.
pub const SEND_MESSAGE: &str =
    "mutation($input: SendMessageInput!) { sendMessage(input: $input) { seq } }";

/// What a casefile child printed when it was ready.
pub struct Workspace {
    pub workspace_id: String,
    pub widget_key: String,
    pub owner_token: String,
}

impl Workspace {
    pub fn of(child: &ServerChild) -> anyhow::Result<Workspace> {
        let w = &child.ready["workspace"];
        let get = |key: &str| {
            w[key]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("no {key} in the child's ready line"))
        };
        Ok(Workspace {
            workspace_id: get("workspaceId")?,
            widget_key: get("widgetKey")?,
            owner_token: get("adminToken")?,
        })
    }
}

// ---------------------------------------------------------------------------
// WebSocket clients

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Small client buffers: the bench holds thousands of sockets.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
}

pub async fn connect(url: &str, protocol: Option<&str>) -> anyhow::Result<Socket> {
    let mut request = url.into_client_request()?;
    if let Some(protocol) = protocol {
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse()?);
    }
    let (socket, _) = tokio::time::timeout(
        STEP_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(request, Some(client_config()), true),
    )
    .await
    .context("WebSocket connect timed out")??;
    Ok(socket)
}

/// The next text frame, skipping control frames; fails on close or timeout.
pub async fn next_text(socket: &mut Socket) -> anyhow::Result<String> {
    // Bounded: a server sends at most a few pings before what we wait for.
    for _ in 0..100 {
        let frame = tokio::time::timeout(STEP_TIMEOUT, socket.next())
            .await
            .context("no frame in time")?;
        match frame {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Close(frame))) => bail!("closed: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(err)) => return Err(err.into()),
            None => bail!("socket ended"),
        }
    }
    bail!("too many frames without text")
}

/// The next graphql-transport-ws message that is not a ping or pong.
pub async fn next_protocol_message(socket: &mut Socket) -> anyhow::Result<Value> {
    for _ in 0..100 {
        let text = next_text(socket).await?;
        let value: Value = serde_json::from_str(&text)?;
        if matches!(value["type"].as_str(), Some("ping" | "pong")) {
            continue;
        }
        return Ok(value);
    }
    bail!("too many pings")
}

/// A graphql-transport-ws connection to casefile, initialised with `token` and
/// subscribed to `messages` of `conversation_id`, after it received `seq 1` (the
/// conversation's first message): a live subscriber. Also the text of that first
/// `next` frame.
pub async fn casefile_subscriber(
    addr: SocketAddr,
    token: &str,
    conversation_id: &str,
) -> anyhow::Result<(Socket, String)> {
    subscriber_after(addr, token, conversation_id, OPENING_SEQ - 1).await
}

/// A `messages` subscriber of `conversation_id` from `afterSeq: after`, once it
/// received the message `after + 1` (the first replayed).
pub async fn subscriber_after(
    addr: SocketAddr,
    token: &str,
    conversation_id: &str,
    after: i64,
) -> anyhow::Result<(Socket, String)> {
    let mut socket = connect(
        &format!("ws://{addr}/graphql"),
        Some("graphql-transport-ws"),
    )
    .await?;
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    socket.send(Message::Text(init.to_string().into())).await?;
    let ack = next_protocol_message(&mut socket).await?;
    ensure!(ack["type"] == "connection_ack", "expected an ack: {ack}");
    let subscribe = if after == 0 {
        json!({ "type": "subscribe", "id": "1", "payload": { "query": MESSAGES_SUBSCRIPTION, "variables": { "c": conversation_id } } })
    } else {
        json!({ "type": "subscribe", "id": "1", "payload": { "query": MESSAGES_AFTER_SUBSCRIPTION, "variables": { "c": conversation_id, "after": after } } })
    };
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await?;
    let first = after + 1;
    for _ in 0..100 {
        let text = next_text(&mut socket).await?;
        match parse_delivery(&text) {
            Some(seq) if seq == first => return Ok((socket, text)),
            Some(_) => bail!("expected seq {first} first: {text}"),
            None if text.contains("\"ping\"") || text.contains("\"pong\"") => continue,
            None => bail!("expected seq {first}: {text}"),
        }
    }
    bail!("no seq {first}")
}

/// A connection to the raw server, after its hello.
pub async fn raw_subscriber(addr: SocketAddr) -> anyhow::Result<Socket> {
    let mut socket = connect(&format!("ws://{addr}/ws"), None).await?;
    let hello = next_text(&mut socket).await?;
    ensure!(hello == RAW_HELLO, "unexpected hello: {hello}");
    Ok(socket)
}

/// Connect `n` clients, `concurrency` at a time, each with `open(i)`; fails if any
/// fails. Bounded by `limit` overall.
pub async fn open_all<F, Fut, T>(
    n: usize,
    concurrency: usize,
    limit: Duration,
    open: F,
) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let opening = futures_util::stream::iter(0..n)
        .map(|i| {
            let fut = open(i);
            async move { fut.await.with_context(|| format!("client {i}")) }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>();
    let opened = tokio::time::timeout(limit, opening)
        .await
        .map_err(|_| anyhow!("opening {n} connections took longer than {limit:?}"))?;
    opened.into_iter().collect()
}

/// The `seq` of a `next` frame of the `messages` subscription.
pub fn parse_delivery(text: &str) -> Option<i64> {
    let value: Value = serde_json::from_str(text).ok()?;
    if value["type"] != "next" {
        return None;
    }
    value["payload"]["data"]["messages"]["seq"].as_i64()
}

/// What a listening client saw.
pub enum Seen {
    /// A `next` with this seq arrived at this instant.
    Delivery(i64, Instant),
    /// The connection ended or sent something unexpected before being stopped.
    Broken(String),
}

/// Clients reading in the background, each reporting what it sees.
pub struct Listeners {
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub seen: mpsc::UnboundedReceiver<Seen>,
}

/// What a listening client makes of a text frame.
pub enum Parsed {
    /// A delivery, by key (a seq, a message or conversation number).
    Delivery(i64),
    /// Nothing to note (a ping).
    Ignore,
    /// Something unexpected: the connection counts as broken.
    Unexpected,
}

/// How listening clients read their frames.
pub type Parser = Arc<dyn Fn(&str) -> Parsed + Send + Sync>;

/// The `messages` subscription's `next` frames, keyed by seq.
fn parse_seq(text: &str) -> Parsed {
    match parse_delivery(text) {
        Some(seq) => Parsed::Delivery(seq),
        None if text.contains("\"ping\"") => Parsed::Ignore,
        None => Parsed::Unexpected,
    }
}

impl Listeners {
    /// One task per socket; each notes the arrival time of every `next` frame
    /// before parsing it, keyed by seq.
    pub fn start(sockets: Vec<Socket>) -> Listeners {
        Listeners::start_with(sockets, Arc::new(parse_seq))
    }

    /// One task per socket; each notes the arrival time of every frame before
    /// parsing it with `parse`.
    pub fn start_with(sockets: Vec<Socket>, parse: Parser) -> Listeners {
        let stop = CancellationToken::new();
        let (tx, seen) = mpsc::unbounded_channel();
        let tasks = sockets
            .into_iter()
            .map(|socket| {
                tokio::spawn(listen(socket, tx.clone(), stop.clone(), Arc::clone(&parse)))
            })
            .collect();
        // However a scenario ends, its clients do not outlive `LISTENER_LIFETIME`.
        let deadline = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(LISTENER_LIFETIME) => deadline.cancel(),
                () = deadline.cancelled() => {}
            }
        });
        Listeners { stop, tasks, seen }
    }

    /// Stop every client. `graceful`: with a close handshake, so the server has
    /// finished with each connection when this returns (bounded by `limit`).
    pub async fn stop(mut self, graceful: bool, limit: Duration) {
        let tasks = std::mem::take(&mut self.tasks);
        if graceful {
            self.stop.cancel();
            let all = futures_util::future::join_all(tasks);
            let _ = tokio::time::timeout(limit, all).await;
        } else {
            for task in &tasks {
                task.abort();
            }
        }
    }
}

/// Dropped without `stop` (a scenario failed): the clients close in the background.
impl Drop for Listeners {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The longest a listening client lives.
const LISTENER_LIFETIME: Duration = Duration::from_secs(15 * 60);

async fn listen(
    mut socket: Socket,
    tx: mpsc::UnboundedSender<Seen>,
    stop: CancellationToken,
    parse: Parser,
) {
    loop {
        tokio::select! {
            biased;
            frame = socket.next() => {
                let at = Instant::now();
                match frame {
                    Some(Ok(Message::Text(text))) => match parse(text.as_str()) {
                        Parsed::Delivery(key) => {
                            let _ = tx.send(Seen::Delivery(key, at));
                        }
                        Parsed::Ignore => {}
                        Parsed::Unexpected => {
                            let _ = tx.send(Seen::Broken(format!("unexpected frame: {}", text.as_str())));
                        }
                    },
                    Some(Ok(Message::Close(frame))) => {
                        let _ = tx.send(Seen::Broken(format!("closed by the server: {frame:?}")));
                        return;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(err)) => {
                        let _ = tx.send(Seen::Broken(format!("socket failed: {err}")));
                        return;
                    }
                    None => {
                        let _ = tx.send(Seen::Broken("socket ended".to_owned()));
                        return;
                    }
                }
            }
            () = stop.cancelled() => break,
        }
    }
    // Close handshake: the server's close frame (or the end of the stream) means
    // it is done with this connection.
    let closing = async {
        let _ = socket.close(None).await;
        for _ in 0..1000 {
            match socket.next().await {
                Some(Ok(_)) => continue,
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), closing).await;
}

/// Wait for every one of `n` listeners to report delivery of `seq`; latencies in
/// ms from `sent_at` (an arrival before `sent_at` counts as 0). Bounded by `limit`.
pub async fn collect(
    seen: &mut mpsc::UnboundedReceiver<Seen>,
    n: usize,
    seq: i64,
    sent_at: Instant,
    limit: Duration,
    tally: &mut Tally,
) -> Vec<f64> {
    let deadline = Instant::now() + limit;
    let mut latencies = Vec::with_capacity(n);
    while latencies.len() < n {
        let Ok(item) = tokio::time::timeout_at(deadline, seen.recv()).await else {
            break;
        };
        match item {
            Some(Seen::Delivery(got, at)) if got == seq => {
                if at < sent_at {
                    tally.early += 1;
                }
                latencies.push(at.saturating_duration_since(sent_at).as_secs_f64() * 1000.0);
            }
            Some(Seen::Delivery(..)) => tally.stray += 1,
            Some(Seen::Broken(why)) => {
                tally.broken += 1;
                tally.first_problem.get_or_insert(why);
            }
            None => break,
        }
    }
    tally.lost += (n - latencies.len()) as u64;
    latencies
}

/// Wait for `n` deliveries of any key (bounded by `limit`): each key with its
/// arrival time. Problems go to `tally`; missing deliveries are not counted here.
pub async fn collect_any(
    seen: &mut mpsc::UnboundedReceiver<Seen>,
    n: usize,
    limit: Duration,
    tally: &mut Tally,
) -> Vec<(i64, Instant)> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let Ok(item) = tokio::time::timeout_at(deadline, seen.recv()).await else {
            break;
        };
        match item {
            Some(Seen::Delivery(key, at)) => got.push((key, at)),
            Some(Seen::Broken(why)) => {
                tally.broken += 1;
                tally.first_problem.get_or_insert(why);
            }
            None => break,
        }
    }
    got
}

/// Anomalies of a run, reported in the row's note.
#[derive(Default, Debug)]
pub struct Tally {
    /// Deliveries that arrived before the sender had its HTTP response.
    pub early: u64,
    /// Deliveries that never arrived in time.
    pub lost: u64,
    /// Deliveries of another seq than awaited (late ones).
    pub stray: u64,
    /// Connections that failed.
    pub broken: u64,
    pub first_problem: Option<String>,
}

impl Tally {
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.stray == 0 && self.broken == 0
    }

    pub fn describe(&self) -> String {
        let mut out = format!(
            "{} lost, {} late/stray, {} broken connections, {} arrived before the HTTP response",
            self.lost, self.stray, self.broken, self.early
        );
        if let Some(p) = &self.first_problem {
            let _ = write!(out, "; first problem: {p}");
        }
        out
    }
}

/// `10000` as `10,000`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------
// HTTP load

/// One HTTP request of a load: `POST url` with a JSON body, or `GET url`.
#[derive(Clone, Debug)]
pub struct Call {
    pub url: Arc<str>,
    pub bearer: Option<Arc<str>>,
    /// `None`: a `GET`.
    pub body: Option<Bytes>,
}

impl Call {
    /// A GraphQL operation as a `POST /graphql` of `addr`.
    pub fn graphql(addr: SocketAddr, bearer: Option<&str>, query: &str, variables: Value) -> Call {
        Call::post(
            &format!("http://{addr}/graphql"),
            bearer,
            json!({ "query": query, "variables": variables }).to_string(),
        )
    }

    pub fn post(url: &str, bearer: Option<&str>, body: String) -> Call {
        Call {
            url: url.into(),
            bearer: bearer.map(Into::into),
            body: Some(Bytes::from(body)),
        }
    }

    pub fn get(url: &str) -> Call {
        Call {
            url: url.into(),
            bearer: None,
            body: None,
        }
    }

    /// The same request to another server (the ceiling): same path, body, token.
    pub fn to(&self, addr: SocketAddr) -> Call {
        let path = self
            .url
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{p}"))
            .unwrap_or_default();
        Call {
            url: format!("http://{addr}{path}").into(),
            ..self.clone()
        }
    }
}

/// A client for a load: keep-alive, no proxy, `TCP_NODELAY`, bounded requests.
pub fn load_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(STEP_TIMEOUT)
        .build()
        .context("building a load client")
}

/// Send `call`; the body of a 2xx answer, or why not.
pub async fn send(client: &reqwest::Client, call: &Call) -> Result<Bytes, String> {
    let mut request = match &call.body {
        Some(body) => client
            .post(&*call.url)
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(body.clone()),
        None => client.get(&*call.url),
    };
    if let Some(token) = &call.bearer {
        request = request.bearer_auth(&**token);
    }
    let response = request.send().await.map_err(|e| format!("{e:#}"))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| format!("{e:#}"))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        return Err(format!("HTTP {status}: {text}"));
    }
    Ok(body)
}

/// How an answer is judged: `Ok`, or why not.
pub type Check = Arc<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

/// The answer must be exactly `expected`.
pub fn same_bytes(expected: Bytes) -> Check {
    Arc::new(move |body: &[u8]| {
        if body == expected.as_ref() {
            return Ok(());
        }
        let at = body
            .iter()
            .zip(expected.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(body.len().min(expected.len()));
        let around = |bytes: &[u8]| {
            String::from_utf8_lossy(&bytes[at.saturating_sub(80)..(at + 80).min(bytes.len())])
                .into_owned()
        };
        Err(format!(
            "answer differs from byte {at} ({} bytes, expected {}): …{}… instead of …{}…",
            body.len(),
            expected.len(),
            around(body),
            around(&expected)
        ))
    })
}

/// The answer must be the same JSON as `expected`, members in any order: the bytes
/// of each order seen are remembered (up to 16), so only a new order is parsed.
/// (casefile puts a connection's `totalCount` first or last, from one request to
/// the next.)
pub fn same_answer(expected: Bytes) -> Check {
    let expected_value: Option<Value> = serde_json::from_slice(&expected).ok();
    let exact = same_bytes(expected.clone());
    let seen = Arc::new(std::sync::RwLock::new(vec![expected]));
    Arc::new(move |body: &[u8]| {
        let known = seen
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|v| v.as_ref() == body);
        if known {
            return Ok(());
        }
        let value: Option<Value> = serde_json::from_slice(body).ok();
        if value.is_some() && value == expected_value {
            let mut seen = seen
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if seen.len() < 16 {
                seen.push(Bytes::copy_from_slice(body));
            }
            return Ok(());
        }
        exact(body)
    })
}

/// The answer must be a GraphQL response without errors.
pub fn no_graphql_errors() -> Check {
    Arc::new(|body: &[u8]| {
        let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        match value.get("errors") {
            None => Ok(()),
            Some(errors) => Err(format!(
                "{} ({})",
                errors[0]["message"].as_str().unwrap_or("error"),
                errors[0]["extensions"]["code"]
                    .as_str()
                    .unwrap_or("no code")
            )),
        }
    })
}

/// What a load produced.
#[derive(Debug, Default)]
pub struct Load {
    pub ok: u64,
    pub failed: u64,
    /// Failures by reason (the first 200 characters of the reason).
    pub failures: std::collections::BTreeMap<String, u64>,
    pub elapsed: Duration,
    /// The latency of every successful request, in ms.
    pub latencies: Vec<f64>,
    /// Seconds of CPU the server used meanwhile, where measured.
    pub server_cpu_s: f64,
}

impl Load {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn fail(&mut self, why: &str) {
        self.failed += 1;
        let key: String = why.chars().take(200).collect();
        *self.failures.entry(key).or_default() += 1;
    }

    fn absorb(&mut self, other: Load) {
        self.ok += other.ok;
        self.failed += other.failed;
        for (why, n) in other.failures {
            *self.failures.entry(why).or_default() += n;
        }
        self.latencies.extend(other.latencies);
    }

    /// `0 failed` or the count and the commonest reason.
    pub fn describe_failures(&self) -> String {
        match self.failures.iter().max_by_key(|(_, n)| **n) {
            None => "0 failed".to_owned(),
            Some((why, n)) => format!("{} failed ({n}× {why})", self.failed),
        }
    }
}

/// The most requests one closed-loop worker makes in one run.
const MAX_CALLS_PER_WORKER: u64 = 10_000_000;

/// A request factory: the `k`-th request of worker `w`.
pub type Calls = Arc<dyn Fn(usize, u64) -> Call + Send + Sync>;

/// Closed loop: one worker per client, each sending `calls(w, k)` as soon as its
/// previous answer arrived, for `duration`; every answer judged by `check`.
/// Each client keeps one connection alive, so `clients.len()` is the number of
/// connections.
pub async fn closed_loop(
    clients: &[reqwest::Client],
    calls: Calls,
    check: Check,
    duration: Duration,
) -> anyhow::Result<Load> {
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(w, client)| {
            let (client, calls, check) = (client.clone(), Arc::clone(&calls), Arc::clone(&check));
            tokio::spawn(async move {
                let mut load = Load::default();
                for k in 0..MAX_CALLS_PER_WORKER {
                    let at = Instant::now();
                    if at >= deadline {
                        break;
                    }
                    let call = calls(w, k);
                    match send(&client, &call).await.and_then(|body| check(&body)) {
                        Ok(()) => {
                            load.ok += 1;
                            load.latencies.push(at.elapsed().as_secs_f64() * 1000.0);
                        }
                        Err(why) => load.fail(&why),
                    }
                }
                load
            })
        })
        .collect();
    let all = futures_util::future::join_all(workers);
    let done = tokio::time::timeout(duration + STEP_TIMEOUT + Duration::from_secs(5), all)
        .await
        .context("a closed-loop worker did not finish in time")?;
    let mut load = Load {
        elapsed: started.elapsed(),
        ..Load::default()
    };
    for worker in done {
        load.absorb(worker.context("a closed-loop worker panicked")?);
    }
    Ok(load)
}

/// One request of an open-loop schedule.
#[derive(Debug)]
pub struct Shot {
    /// When the schedule said to send it.
    pub intended: Instant,
    /// When its answer had fully arrived (or failed).
    pub done: Instant,
    pub outcome: Result<Bytes, String>,
}

impl Shot {
    /// From the intended send to the answer, in ms.
    pub fn latency_ms(&self) -> f64 {
        self.done
            .saturating_duration_since(self.intended)
            .as_secs_f64()
            * 1000.0
    }
}

/// Open loop: `calls[i]` is sent at `start + i × period` whatever became of the
/// earlier ones (a slow server cannot slow the schedule down and so hide its
/// latency: latencies count from the intended send). Runs on a thread and runtime
/// of its own, so the schedule and the arrival times do not wait on the bench's
/// other work. `warm` requests go first, all at once, to open connections (not
/// counted). The shots in order, and the start of the schedule.
pub async fn open_loop(
    calls: Vec<Call>,
    period: Duration,
    warm: Vec<Call>,
) -> anyhow::Result<(Instant, Vec<Shot>)> {
    let client = load_client()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("open-loop runtime")?;
    let n = calls.len();
    let (reply, answer) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-open-loop".to_owned())
        .spawn(move || {
            let shots = runtime.block_on(async move {
                let warming = warm.iter().map(|call| send(&client, call));
                let _ = tokio::time::timeout(STEP_TIMEOUT, futures_util::future::join_all(warming))
                    .await;
                let start = Instant::now() + Duration::from_millis(20);
                let mut tasks = Vec::with_capacity(calls.len());
                for (i, call) in calls.into_iter().enumerate() {
                    let intended = start + period * i as u32;
                    tokio::time::sleep_until(intended).await;
                    let client = client.clone();
                    tasks.push(tokio::spawn(async move {
                        let outcome = send(&client, &call).await;
                        (intended, Instant::now(), outcome)
                    }));
                }
                let mut shots = Vec::with_capacity(tasks.len());
                for task in tasks {
                    if let Ok((intended, done, outcome)) = task.await {
                        shots.push(Shot {
                            intended,
                            done,
                            outcome,
                        });
                    }
                }
                (start, shots)
            });
            let _ = reply.send(shots);
        })
        .context("starting the open-loop thread")?;
    let limit = period * n as u32 + STEP_TIMEOUT * 2 + Duration::from_secs(5);
    let (start, shots) = tokio::time::timeout(limit, answer)
        .await
        .context("the open-loop schedule did not finish in time")?
        .context("the open-loop thread ended")?;
    ensure!(
        shots.len() == n,
        "{} of {n} open-loop requests panicked",
        n - shots.len()
    );
    Ok((start, shots))
}

/// Closed-loop rounds beside the ceiling: a warm-up of each, then `pairs` × (ours
/// for `round`, ceiling for `round`), alternating. The loads of each side, in
/// round order.
#[allow(clippy::too_many_arguments)]
/// Server CPU per successful request over `loads` (their `server_cpu_s`), in µs.
pub fn cpu_per_request_us(loads: &[Load]) -> f64 {
    let cpu: f64 = loads.iter().map(|l| l.server_cpu_s).sum();
    let ok: u64 = loads.iter().map(|l| l.ok).sum();
    cpu / ok.max(1) as f64 * 1e6
}

/// A closed loop against the child `pid`, recording the CPU it used.
pub async fn closed_loop_cpu(
    pid: u32,
    clients: &[reqwest::Client],
    calls: Calls,
    check: Check,
    duration: Duration,
) -> anyhow::Result<Load> {
    let before = cpu_seconds(pid)?;
    let mut load = closed_loop(clients, calls, check, duration).await?;
    load.server_cpu_s = cpu_seconds(pid)? - before;
    Ok(load)
}

/// Alternating closed-loop rounds against casefile (the child `ours_pid`, whose CPU
/// each of its rounds records) and the ceiling.
pub async fn throughput_pairs(
    label: &str,
    ours_pid: u32,
    clients: &[reqwest::Client],
    (ours_calls, ours_check): (Calls, Check),
    (ceiling_calls, ceiling_check): (Calls, Check),
    (pairs, round, warm): (usize, Duration, Duration),
) -> anyhow::Result<(Vec<Load>, Vec<Load>)> {
    closed_loop(
        clients,
        Arc::clone(&ours_calls),
        Arc::clone(&ours_check),
        warm,
    )
    .await?;
    closed_loop(
        clients,
        Arc::clone(&ceiling_calls),
        Arc::clone(&ceiling_check),
        warm,
    )
    .await?;
    let (mut ours, mut ceiling) = (Vec::new(), Vec::new());
    for pair in 0..pairs {
        let o = closed_loop_cpu(
            ours_pid,
            clients,
            Arc::clone(&ours_calls),
            Arc::clone(&ours_check),
            round,
        )
        .await?;
        let c = closed_loop(
            clients,
            Arc::clone(&ceiling_calls),
            Arc::clone(&ceiling_check),
            round,
        )
        .await?;
        eprintln!(
            "{label} pair {}/{pairs}: ours {:.0}/s ({}), ceiling {:.0}/s ({})",
            pair + 1,
            o.per_second(),
            o.describe_failures(),
            c.per_second(),
            c.describe_failures(),
        );
        ours.push(o);
        ceiling.push(c);
    }
    Ok((ours, ceiling))
}

/// Requests per second over all `loads` together.
pub fn overall_rate(loads: &[Load]) -> f64 {
    let ok: u64 = loads.iter().map(|l| l.ok).sum();
    let secs: f64 = loads.iter().map(|l| l.elapsed.as_secs_f64()).sum();
    ok as f64 / secs.max(1e-9)
}

/// Every latency of `loads`, in ms.
pub fn all_latencies(loads: &[Load]) -> Vec<f64> {
    loads
        .iter()
        .flat_map(|l| l.latencies.iter().copied())
        .collect()
}

/// The same request every time.
pub fn always(call: Call) -> Calls {
    Arc::new(move |_, _| call.clone())
}

/// Make the raw server answer `body` on `POST /graphql`.
pub async fn set_canned(
    client: &reqwest::Client,
    raw: SocketAddr,
    body: Bytes,
) -> anyhow::Result<()> {
    let call = Call {
        url: format!("http://{raw}/canned").into(),
        bearer: None,
        body: Some(body),
    };
    send(client, &call)
        .await
        .map_err(|why| anyhow!("setting the canned answer: {why}"))?;
    Ok(())
}

/// Failures of a side's rounds: `0 failed`, or the count and an example.
pub fn describe_loads(loads: &[Load]) -> String {
    let failed: u64 = loads.iter().map(|l| l.failed).sum();
    if failed == 0 {
        return "0 failed".to_owned();
    }
    let first = loads
        .iter()
        .find(|l| l.failed > 0)
        .map(Load::describe_failures)
        .unwrap_or_default();
    format!("{failed} failed, e.g. {first}")
}

/// Latencies (ms, from the intended send) of the shots whose answers pass `check`,
/// and the number that did not.
pub fn judge_shots(shots: &[Shot], check: &Check) -> (Vec<f64>, u64, Option<String>) {
    let mut latencies = Vec::with_capacity(shots.len());
    let mut failed = 0;
    let mut first = None;
    for shot in shots {
        match shot
            .outcome
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|body| check(body))
        {
            Ok(()) => latencies.push(shot.latency_ms()),
            Err(why) => {
                failed += 1;
                first.get_or_insert(why);
            }
        }
    }
    (latencies, failed, first)
}
