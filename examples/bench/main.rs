//! The benchmark harness: casefile beside a "ceiling" (the best the same stack can
//! do without casefile's work), in the same run, alternating rounds.
//!
//! ```sh
//! cargo run --release --example bench -- [--scenario NAME]... [--database-url URL] [--quick]
//! ```
//!
//! Prints a Markdown table (scenario, metric, ours, ceiling, ratio, goal,
//! pass/fail) on stdout, progress on stderr, and writes the same rows as JSON to
//! `target/bench/latest.json`. See `benches/README.md`.
//!
//! Adding a scenario: write a module with a `pub const SCENARIO: Scenario` (see
//! `common::Scenario`) and list it in [`SCENARIOS`].
//!
//! The same binary is also the child servers of the scenarios (hidden flags
//! `--serve-casefile DATABASE_URL` and `--serve-raw`).

mod a1_answers;
#[path = "../support/client.rs"]
mod client;
mod common;
mod h1_handoff_storm;
mod i1_insights;
mod m1_send;
mod q0_viewer;
mod q1_inbox;
mod q1s_scale;
mod s1_fanout;
mod s2_idle_memory;
mod seed;
mod w1_webhooks;
mod x1_cross_process;
mod x2_failover;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde_json::json;
use tokio::time::Instant;

use common::{ChildMode, Ctx, Row, Scenario};

/// Every scenario, in the order they run.
const SCENARIOS: &[Scenario] = &[
    s1_fanout::SCENARIO,
    s2_idle_memory::SCENARIO,
    q0_viewer::SCENARIO,
    q1_inbox::SCENARIO,
    q1s_scale::SCENARIO,
    m1_send::SCENARIO,
    h1_handoff_storm::SCENARIO,
    i1_insights::SCENARIO,
    x1_cross_process::SCENARIO,
    x2_failover::SCENARIO,
    w1_webhooks::SCENARIO,
    a1_answers::SCENARIO,
];

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Benchmarks casefile against a ceiling, in alternating rounds"
)]
struct Args {
    /// Run only this scenario (its id, e.g. `S1`, or name, e.g. `fanout`); repeat
    /// for several. All by default.
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,

    /// A PostgreSQL URL: each scenario creates a fresh database on that server
    /// (named after the URL's database) and drops it afterwards. SQLite temp files
    /// by default.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,

    /// Smaller sizes and fewer rounds (under a minute).
    #[arg(long)]
    quick: bool,

    /// Conversations in Q1's workspace (250 by default): the inbox page over a
    /// larger workspace.
    #[arg(long, value_name = "N")]
    conversations: Option<usize>,

    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,

    /// Child mode: serve casefile on this database and print `{"addr", "workspace"}`.
    #[arg(long, hide = true, value_name = "DATABASE_URL")]
    serve_casefile: Option<String>,

    /// Child mode, with `--serve-casefile`: the model server's base URL.
    #[arg(long, hide = true, value_name = "URL")]
    model_url: Option<String>,

    /// Child mode: serve the raw axum WebSocket broadcast server and print `{"addr"}`.
    #[arg(long, hide = true)]
    serve_raw: bool,
}

// The same allocator as the casefile binary (src/main.rs), since the servers
// measured here run inside this binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let child = match (args.serve_casefile.clone(), args.serve_raw) {
        (Some(url), _) => Some(ChildMode::Casefile {
            database_url: url,
            model_url: args.model_url.clone(),
        }),
        (None, true) => Some(ChildMode::Raw),
        (None, false) => None,
    };
    if let Some(mode) = child {
        return match common::serve_child(mode).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("bench child server: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    if args.list {
        for s in SCENARIOS {
            println!("{} ({}): {}", s.id, s.name, s.about);
        }
        return ExitCode::SUCCESS;
    }
    match run(args).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn select(names: &[String]) -> anyhow::Result<Vec<&'static Scenario>> {
    if names.is_empty() {
        return Ok(SCENARIOS.iter().collect());
    }
    let mut chosen: Vec<&'static Scenario> = Vec::new();
    for name in names {
        let found = SCENARIOS
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(name) || s.name.eq_ignore_ascii_case(name));
        let Some(found) = found else {
            let known: Vec<String> = SCENARIOS
                .iter()
                .map(|s| format!("{} ({})", s.id, s.name))
                .collect();
            anyhow::bail!("unknown scenario {name:?}; known: {}", known.join(", "));
        };
        if !chosen.iter().any(|c| c.id == found.id) {
            chosen.push(found);
        }
    }
    // In table order, whatever the order of the flags.
    chosen.sort_by_key(|c| SCENARIOS.iter().position(|s| s.id == c.id));
    Ok(chosen)
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let scenarios = select(&args.scenarios)?;
    let nofile = common::raise_nofile_limit();
    let ctx = Ctx {
        quick: args.quick,
        database_url: args.database_url.clone(),
        conversations: args.conversations,
        exe: std::env::current_exe()?,
        nofile,
    };
    let database = if ctx.database_url.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    eprintln!(
        "bench: {} scenario(s), {}, {database}, open-files limit {nofile}",
        scenarios.len(),
        if ctx.quick { "quick" } else { "default sizes" },
    );
    // A scenario that hangs must not hang the run.
    let limit = if ctx.quick {
        Duration::from_secs(180)
    } else {
        Duration::from_secs(600)
    };
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    let mut durations = serde_json::Map::new();
    let mut errors = 0;
    for scenario in &scenarios {
        eprintln!("== {} ({}): {}", scenario.id, scenario.name, scenario.about);
        let scenario_started = Instant::now();
        let result = match tokio::time::timeout(limit, (scenario.run)(&ctx)).await {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!("did not finish within {limit:?}")),
        };
        let took = scenario_started.elapsed();
        eprintln!("== {} took {:.1?}", scenario.id, took);
        durations.insert(scenario.id.to_owned(), json!(took.as_secs_f64()));
        match result {
            Ok(mut r) => rows.append(&mut r),
            Err(err) => {
                errors += 1;
                eprintln!("== {} failed: {err:#}", scenario.id);
                rows.push(Row::error(scenario.id, &err));
            }
        }
    }
    let total = started.elapsed();
    println!("{}", common::markdown(&rows));
    eprintln!("bench: all scenarios took {total:.1?}");

    let report = json!({
        "quick": ctx.quick,
        "database": database,
        "scenarios": scenarios.iter().map(|s| s.id).collect::<Vec<_>>(),
        "generated_at_unix": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        "duration_s": total.as_secs_f64(),
        "scenario_duration_s": durations,
        "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
    });
    let path = report_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    eprintln!("bench: wrote {}", path.display());
    Ok(if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `target/bench/latest.json` of this crate (or of `CARGO_TARGET_DIR`).
fn report_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench").join("latest.json")
}
