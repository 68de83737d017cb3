//! `casefile`: parse the configuration, then serve (the default) or run a command.

use casefile::config::{Cli, Command};
use tracing_subscriber::EnvFilter;

/// mimalloc keeps many small, long-lived allocations (one set per live
/// connection) more compactly than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What is logged unless `RUST_LOG` says otherwise: PostgreSQL's notices (such
/// as "relation seaql_migrations already exists, skipping" on every start) and
/// the migrator's line per migration only when they warn (the database's one
/// "database ready" line says what the migrations did).
const DEFAULT_LOG: &str = "info,sqlx::postgres::notice=warn,sea_orm_migration=warn";

/// Every failure ends here: one sentence on stderr, exit status 1.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    // A panic is logged once, here, with its cause; the request, subscription or
    // task it happened in ends with `INTERNAL`, and the process goes on.
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "panic");
    }));
    let cli = Cli::parse_args(std::env::args_os());
    match cli.command {
        None => serve(casefile::Config::defaults()).await,
        Some(Command::Serve(config)) => serve(config).await,
        Some(command) => casefile::cli::run(command).await,
    }
}

async fn serve(config: casefile::Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let demo = config.demo;
    if demo && !listen.ip().is_loopback() && !config.demo_public {
        anyhow::bail!(
            "--demo serves accounts anyone can read about on {listen}, which is not a loopback address: \
             listen on 127.0.0.1, or add --demo-public if you mean it"
        );
    }
    let url = config.database_url();
    let running = casefile::spawn(config, listen).await?;
    // Described once open: a new SQLite file has its absolute path now.
    let database = casefile::db::Db::describe(&url);
    tracing::info!(
        "casefile serving on http://{}/graphql; database {database}",
        running.addr
    );
    if !running.state.db.sealer.seals() {
        tracing::warn!(
            "secrets are not sealed: set CASEFILE_MASTER_KEY (`openssl rand -base64 32`) and run `casefile keys seal`"
        );
    }
    if let Some(model) = &running.state.model {
        tracing::info!(
            "answers from the model {} at {} (the extractive responder when it cannot)",
            model.model(),
            model.host()
        );
    }
    if let Some(embedder) = &running.state.embedder {
        tracing::info!(
            "retrieval by meaning with the embedding model {} at {} (full-text alone when it cannot)",
            embedder.model(),
            embedder.host()
        );
    }
    if demo {
        let seeded = casefile::demo::seed(&running.state)
            .await
            .map_err(|err| anyhow::anyhow!("seeding the demo: {}", err.message()))?;
        println!(
            "{}",
            seeded.describe(
                &format!("http://{}", running.addr),
                casefile::app::DEMO_PAGES
            )
        );
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
