//! Command line and environment configuration.
//!
//! Every setting is a flag with a `CASEFILE_*` environment variable behind it;
//! `DATABASE_URL` is honoured too, as most hosting platforms set it. With nothing
//! configured, Casefile serves on 127.0.0.1:8080 with a SQLite file `casefile.db` in
//! the working directory.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "casefile",
    version,
    about = "AI-first customer chat with human handoff that keeps its context"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve GraphQL over HTTP and WebSocket (the default).
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Print the GraphQL schema (SDL) and exit.
    Schema,
    /// Manage workspaces.
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Manage knowledge articles.
    #[command(subcommand)]
    Articles(ArticlesCommand),
    /// The demo workspace.
    #[command(subcommand)]
    Demo(DemoCommand),
}

#[derive(Debug, Subcommand)]
pub enum ArticlesCommand {
    /// Import every Markdown (`.md`) and HTML (`.html`) file of a folder as articles;
    /// an article with the same URL is replaced.
    Import {
        /// The workspace id (`ws_…`).
        #[arg(long)]
        workspace: String,
        /// Where articles without a `url:` in their front matter live: the file
        /// name is appended.
        #[arg(long, default_value = "https://help.example.com/docs")]
        base_url: String,
        dir: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Create the demo workspace if absent, and print how to use it.
    Seed,
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace with an owner; prints one JSON object with its ids and tokens.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long)]
        admin_password: String,
        /// Display name of the owner (defaults to the part of the email before `@`).
        #[arg(long)]
        admin_name: Option<String>,
    },
}

/// Settings shared by every command.
#[derive(Clone, Debug, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(
        long,
        global = true,
        env = "CASEFILE_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,

    /// Database URL: `sqlite://PATH` or `postgres://…`. Falls back to `DATABASE_URL`,
    /// then to `sqlite://casefile.db`.
    #[arg(long, global = true, env = "CASEFILE_DATABASE_URL")]
    pub database_url: Option<String>,

    /// HS256 secret for signing tokens. When unset, a random secret is generated on
    /// first start and kept in the database, so tokens survive restarts.
    #[arg(
        long,
        global = true,
        env = "CASEFILE_JWT_SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,

    /// Lifetime of agent tokens (`signIn`, CLI), e.g. `12h`.
    #[arg(long, global = true, env = "CASEFILE_AGENT_TOKEN_TTL", default_value = "12h", value_parser = humantime::parse_duration)]
    pub agent_token_ttl: Duration,

    /// Lifetime of visitor tokens (`startConversation`), e.g. `7d`.
    #[arg(long, global = true, env = "CASEFILE_VISITOR_TOKEN_TTL", default_value = "7d", value_parser = humantime::parse_duration)]
    pub visitor_token_ttl: Duration,

    /// Largest accepted request body, in bytes.
    #[arg(long, global = true, env = "CASEFILE_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,

    /// How long a WebSocket may wait before `connection_init` (then 4408).
    #[arg(long, global = true, env = "CASEFILE_WS_INIT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub ws_init_timeout: Duration,

    /// Interval of server pings (`ping`, or `ka` in the legacy protocol).
    #[arg(long, global = true, env = "CASEFILE_WS_KEEPALIVE", default_value = "15s", value_parser = humantime::parse_duration)]
    pub ws_keepalive: Duration,

    /// Create the demo workspace if absent and print its widget key, agents and
    /// tokens (with `serve`).
    #[arg(long, global = true, env = "CASEFILE_DEMO")]
    pub demo: bool,

    /// Size of the read connection pool.
    #[arg(
        long,
        global = true,
        env = "CASEFILE_DB_POOL_SIZE",
        default_value_t = 8
    )]
    pub db_pool_size: u32,
}

impl Config {
    /// The database URL in force: the flag, then `DATABASE_URL`, then the default file.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .or_else(|| {
                std::env::var("DATABASE_URL")
                    .ok()
                    .filter(|url| !url.is_empty())
            })
            .unwrap_or_else(|| "sqlite://casefile.db".to_owned())
    }

    /// A configuration for tests and embedding: the defaults, with this database.
    pub fn for_database(database_url: impl Into<String>) -> Config {
        let mut config = Cli::parse_from(["casefile"]).config;
        config.database_url = Some(database_url.into());
        config
    }
}

/// Request limits applied to every GraphQL operation, over HTTP and WebSocket.
pub mod limits {
    /// Deepest selection set nesting accepted.
    pub const MAX_DEPTH: usize = 15;
    /// Largest query complexity (one per field, lists not multiplied).
    pub const MAX_COMPLEXITY: usize = 1_000;
    /// Most aliases in one document.
    pub const MAX_ALIASES: usize = 30;
    /// Longest message body, in characters.
    pub const MAX_MESSAGE_CHARS: usize = 10_000;
    /// Longest short text (names, labels, keywords), in characters.
    pub const MAX_SHORT_TEXT: usize = 200;
    /// Largest page a connection returns.
    pub const MAX_PAGE: i32 = 200;
}
