//! Command line and environment configuration.
//!
//! Every setting is a flag with a `CASEFILE_*` environment variable behind it;
//! `DATABASE_URL` is honoured too, as most hosting platforms set it. With nothing
//! configured, Casefile serves on 127.0.0.1:8080 with a SQLite file `casefile.db` in
//! the working directory.

mod embeddings;
mod model;

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub use embeddings::EmbeddingsConfig;
pub use model::{BreakerConfig, ModelConfig, Secret};

#[derive(Debug, Parser)]
#[command(
    name = "casefile",
    version,
    about = "AI-first customer chat with human handoff that keeps its context",
    long_about = "AI-first customer chat with human handoff that keeps its context.\n\n\
        With no command, or with serve's flags alone (`casefile --demo`), it serves: \
        see `casefile serve --help` for its flags."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// Parse `args` (the program name first); flags with no command before them
    /// are serve's (`casefile --demo` is `casefile serve --demo`).
    pub fn parse_args<I, T>(args: I) -> Cli
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString>,
    {
        let mut args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let serve_flag = args.get(1).and_then(|arg| arg.to_str()).is_some_and(|arg| {
            arg.starts_with('-') && !matches!(arg, "-h" | "--help" | "-V" | "--version")
        });
        if serve_flag {
            args.insert(1, "serve".into());
        }
        Cli::parse_from(args)
    }
}

/// Parses serve's flags alone: the defaults (and `CASEFILE_*` variables) when
/// `casefile` runs with no command.
#[derive(Debug, Parser)]
#[command(name = "casefile")]
struct ServeDefaults {
    #[command(flatten)]
    config: Config,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Serve GraphQL over HTTP and WebSocket (the default).
    Serve(Config),
    /// Create or upgrade the database schema, then exit.
    Migrate(DatabaseArgs),
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
    /// The keys tokens are signed with.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Ask the workspace's AI a file of questions without storing anything, and
    /// score what it would do against what each question expects.
    Eval(EvalArgs),
    /// Copy a SQLite database while the server runs, consistent as of one moment
    /// (PostgreSQL: use pg_dump).
    Backup {
        /// The new file to write (never overwritten).
        #[arg(long)]
        to: std::path::PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Put a SQLite backup in place of the database; refused while a server uses
    /// it (PostgreSQL: use pg_restore).
    Restore {
        /// The backup made by `casefile backup`.
        #[arg(long)]
        from: std::path::PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// `casefile eval`: the questions, where the workspace is, and how to answer.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The workspace id (`ws_…`).
    #[arg(long)]
    pub workspace: String,
    /// JSON Lines, one question a line: `{"question": "…", "expectArticle": "<id,
    /// url or exact title>", "expectHandoff": true|false}` (expectations optional).
    #[arg(long)]
    pub questions: std::path::PathBuf,
    /// `table` (for people) or `json` (one object per question, then `totals`).
    #[arg(long, value_enum, default_value_t = EvalFormat::Table)]
    pub format: EvalFormat,
    /// The engine to answer with [default: the workspace's].
    #[arg(long, value_enum)]
    pub engine: Option<EvalEngine>,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub model: ModelConfig,
    #[command(flatten)]
    pub embeddings: EmbeddingsConfig,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalEngine {
    Model,
    Extractive,
}

/// Where the database is, for commands that open it.
#[derive(Clone, Debug, Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://PATH` or `postgres://USER@HOST:PORT/DATABASE`
    /// [default: `DATABASE_URL`, then sqlite://casefile.db].
    #[arg(long, env = "CASEFILE_DATABASE_URL")]
    pub database_url: Option<String>,
}

/// How tokens are signed, for commands that issue them.
#[derive(Clone, Debug, Args)]
pub struct SigningArgs {
    /// HS256 secret for signing tokens [default: the key kept in the database].
    #[arg(long, env = "CASEFILE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Lifetime of the agent tokens issued, e.g. `12h`.
    #[arg(long, env = "CASEFILE_AGENT_TOKEN_TTL", default_value = "12h", value_parser = humantime::parse_duration)]
    pub agent_token_ttl: Duration,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key: new tokens are signed with it (running servers pick it
    /// up within a minute), and tokens signed before stay valid until they expire.
    Rotate {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Set when the signing key comes from this variable: then rotating is
        /// changing it, and this command refuses.
        #[arg(long, env = "CASEFILE_JWT_SECRET", hide_env_values = true)]
        jwt_secret: Option<String>,
    },
    /// Seal the secrets stored plain (identity and webhook secrets, signing keys)
    /// with CASEFILE_MASTER_KEY; new ones are sealed as they are written.
    Seal {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The master key (32 random bytes in base64).
        #[arg(long, env = "CASEFILE_MASTER_KEY", hide_env_values = true, value_parser = master_key)]
        master_key: Option<Secret>,
    },
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
        /// The folder of `.md` and `.html` files to import.
        dir: std::path::PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Create the demo workspace if absent, and print how to use it.
    Seed {
        /// The address the server serves on, for the URLs printed.
        #[arg(long, env = "CASEFILE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        signing: SigningArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace with an owner; prints one JSON object with its ids and tokens.
    Create {
        /// The workspace's name, as agents see it.
        #[arg(long)]
        name: String,
        /// The owner's email, to sign in with.
        #[arg(long)]
        admin_email: String,
        /// The owner's password (at least 8 characters). Prefer
        /// `--admin-password-stdin` or the variable: a flag stays in shell history.
        #[arg(
            long,
            env = "CASEFILE_ADMIN_PASSWORD",
            hide_env_values = true,
            conflicts_with = "admin_password_stdin"
        )]
        admin_password: Option<String>,
        /// Read the owner's password from standard input (its first line).
        #[arg(long)]
        admin_password_stdin: bool,
        /// Display name of the owner (defaults to the part of the email before `@`).
        #[arg(long)]
        admin_name: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        signing: SigningArgs,
    },
}

/// How `casefile serve` runs: every flag has a `CASEFILE_*` variable behind it.
#[derive(Clone, Debug, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CASEFILE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Database URL: `sqlite://PATH` or `postgres://…`. Falls back to `DATABASE_URL`,
    /// then to `sqlite://casefile.db`.
    #[arg(long, env = "CASEFILE_DATABASE_URL")]
    pub database_url: Option<String>,

    /// HS256 secret for signing tokens. When unset, a random secret is generated on
    /// first start and kept in the database, so tokens survive restarts.
    #[arg(long, env = "CASEFILE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Lifetime of agent tokens (`signIn`, CLI), e.g. `12h`.
    #[arg(long, env = "CASEFILE_AGENT_TOKEN_TTL", default_value = "12h", value_parser = humantime::parse_duration)]
    pub agent_token_ttl: Duration,

    /// Lifetime of visitor tokens (`startConversation`), e.g. `7d`.
    #[arg(long, env = "CASEFILE_VISITOR_TOKEN_TTL", default_value = "7d", value_parser = humantime::parse_duration)]
    pub visitor_token_ttl: Duration,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "CASEFILE_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,

    /// How long a WebSocket may wait before `connection_init` (then 4408).
    #[arg(long, env = "CASEFILE_WS_INIT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub ws_init_timeout: Duration,

    /// Interval of server pings (`ping`, or `ka` in the legacy protocol).
    #[arg(long, env = "CASEFILE_WS_KEEPALIVE", default_value = "15s", value_parser = humantime::parse_duration)]
    pub ws_keepalive: Duration,

    /// Create the demo workspace if absent and print its widget key, agents and
    /// tokens (with `serve`).
    #[arg(long, env = "CASEFILE_DEMO")]
    pub demo: bool,

    /// Size of the read connection pool [default: on SQLite two per CPU core, at
    /// most 16; on PostgreSQL 8].
    #[arg(long, env = "CASEFILE_DB_POOL_SIZE")]
    pub db_pool_size: Option<u32>,

    /// Serve the demo on an address other than loopback (with `--demo`).
    #[arg(long, env = "CASEFILE_DEMO_PUBLIC")]
    pub demo_public: bool,

    /// Serve GraphiQL on `GET /graphql`.
    #[arg(long, env = "CASEFILE_GRAPHIQL", default_value_t = true, action = clap::ArgAction::Set)]
    pub graphiql: bool,

    /// Answer introspection queries (`__schema`, `__type`).
    #[arg(long, env = "CASEFILE_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,

    /// How long a database call may wait for a connection before the request fails
    /// with `SERVICE_UNAVAILABLE`.
    #[arg(long, env = "CASEFILE_DB_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub db_timeout: Duration,

    /// How long shutdown waits for requests, exports and sockets before it cuts them.
    #[arg(long, env = "CASEFILE_SHUTDOWN_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// How long the event log keeps events (`events`, resuming subscriptions,
    /// webhooks); older ones are pruned in the background, and resuming from before
    /// them answers `CURSOR_EXPIRED`.
    #[arg(long, env = "CASEFILE_EVENT_RETENTION", default_value = "30days", value_parser = humantime::parse_duration)]
    pub event_retention: Duration,

    /// How often each process reads the event log even when nothing woke it: the
    /// longest an event can be delayed by a lost notification or a crashed peer.
    #[arg(long, env = "CASEFILE_EVENT_POLL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub event_poll: Duration,

    /// Let webhooks reach private, loopback and link-local addresses (tests, and
    /// intranets whose receivers live there). Off: such URLs are refused.
    #[arg(long, env = "CASEFILE_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,

    /// The first retry of a failed webhook delivery waits about this long (with
    /// jitter); each next one twice as long, for up to 24 hours.
    #[arg(long, env = "CASEFILE_WEBHOOK_RETRY_BASE", default_value = "5s", value_parser = humantime::parse_duration)]
    pub webhook_retry_base: Duration,

    /// How long a webhook may keep failing before it is disabled (with its reason;
    /// `updateWebhook(enabled: true)` resumes it).
    #[arg(long, env = "CASEFILE_WEBHOOK_RETRY_FOR", default_value = "24h", value_parser = humantime::parse_duration)]
    pub webhook_retry_for: Duration,

    /// How often a process looks for conversations to resolve or erase on a clock:
    /// AI conversations silent for the workspace's `autoResolveAfterSeconds`, and
    /// conversations resolved longer ago than its `retentionDays`.
    #[arg(long, env = "CASEFILE_SWEEP_EVERY", default_value = "15s", value_parser = humantime::parse_duration)]
    pub sweep_every: Duration,

    /// How long an agent may be without an open socket before it counts as
    /// `OFFLINE` whatever availability it set.
    #[arg(long, env = "CASEFILE_PRESENCE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub presence_timeout: Duration,

    #[command(flatten)]
    pub limits: Limits,

    #[command(flatten)]
    pub model: ModelConfig,

    #[command(flatten)]
    pub embeddings: EmbeddingsConfig,

    /// 32 random bytes in base64 (`openssl rand -base64 32`) that seal the secrets
    /// the database keeps (identity and webhook secrets, signing keys); unset, they
    /// are stored plain and `/healthz` says so. `casefile keys seal` seals the rows
    /// written before.
    #[arg(long, env = "CASEFILE_MASTER_KEY", hide_env_values = true, value_parser = master_key)]
    pub master_key: Option<Secret>,
}

fn master_key(value: &str) -> Result<Secret, String> {
    master_key_bytes(value)?;
    Ok(Secret::new(value.trim()))
}

/// The master key in `value` (base64 of 32 bytes), or why it is not one.
pub fn master_key_bytes(value: &str) -> Result<[u8; 32], String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| {
            "CASEFILE_MASTER_KEY is not base64: generate one with `openssl rand -base64 32`"
                .to_owned()
        })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "CASEFILE_MASTER_KEY has {} bytes, not the 32 a key needs: generate one with `openssl rand -base64 32`",
            bytes.len()
        )
    })
}

/// Limits that keep hostile or broken clients from taking the server down. Each is
/// listed, with its default, in the book's reference/limits-and-codes.md.
#[derive(Clone, Debug, Args)]
pub struct Limits {
    /// `off` turns every rate limit off at once (benchmarks and test suites only).
    #[arg(long, env = "CASEFILE_RATE_LIMITS", default_value = "on", value_parser = on_off)]
    pub rate_limits: bool,

    /// Failed `signIn`s per email; past it the email is refused until the bucket
    /// refills (`N/DURATION[,burst=B]`, `0` for no limit).
    #[arg(long, env = "CASEFILE_RATE_SIGNIN_EMAIL", default_value = "5/15m")]
    pub rate_signin_email: Rate,

    /// `signIn` attempts per client IP.
    #[arg(long, env = "CASEFILE_RATE_SIGNIN_IP", default_value = "30/1m")]
    pub rate_signin_ip: Rate,

    /// `startConversation` per client IP and widget key.
    #[arg(
        long,
        env = "CASEFILE_RATE_START_CONVERSATION",
        default_value = "10/1m"
    )]
    pub rate_start_conversation: Rate,

    /// A visitor's `sendMessage`, `captureLead`, `rateConversation` and
    /// `requestHuman`, per conversation.
    #[arg(
        long,
        env = "CASEFILE_RATE_VISITOR_WRITES",
        default_value = "20/1m,burst=10"
    )]
    pub rate_visitor_writes: Rate,

    /// `setTyping` per conversation and author (its own budget, so typing never eats
    /// the message budget).
    #[arg(long, env = "CASEFILE_RATE_TYPING", default_value = "60/1m,burst=20")]
    pub rate_typing: Rate,

    /// Requests per agent token or API key, over HTTP and WebSocket together.
    #[arg(long, env = "CASEFILE_RATE_TOKEN", default_value = "50/1s,burst=100")]
    pub rate_token: Rate,

    /// Proxies whose `X-Forwarded-For` is believed (comma-separated CIDRs, e.g.
    /// `10.0.0.0/8,127.0.0.1/32`).
    #[arg(long, env = "CASEFILE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = cidr)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Largest cost of a document: the most objects it can return.
    #[arg(long, env = "CASEFILE_MAX_QUERY_COST", default_value_t = 20_000)]
    pub max_query_cost: usize,

    /// Largest response, in bytes; a larger one is replaced by an error.
    #[arg(long, env = "CASEFILE_MAX_RESPONSE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_response_bytes: usize,

    /// Concurrent WebSockets per client IP.
    #[arg(long, env = "CASEFILE_MAX_WS_PER_IP", default_value_t = 500)]
    pub max_ws_per_ip: usize,

    /// Concurrent connections (HTTP and WebSocket) in all.
    #[arg(long, env = "CASEFILE_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub max_connections: usize,

    /// How long a send to a WebSocket may take before the socket is closed (1008).
    #[arg(long, env = "CASEFILE_WS_SEND_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub ws_send_timeout: Duration,

    /// How long a client may take to send a request's headers.
    #[arg(long, env = "CASEFILE_HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub http_header_timeout: Duration,

    /// How long a client may take to send a request's body.
    #[arg(long, env = "CASEFILE_HTTP_BODY_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub http_body_timeout: Duration,

    /// How long a request may take to answer before it is cut with 503 (exports
    /// stream and are not cut).
    #[arg(long, env = "CASEFILE_HTTP_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub http_request_timeout: Duration,
}

/// A CIDR (`10.0.0.0/8`) or a single address.
fn cidr(value: &str) -> Result<ipnet::IpNet, String> {
    let value = value.trim();
    value
        .parse::<ipnet::IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("expected a CIDR like `10.0.0.0/8` or an address, not `{value}`"))
}

fn on_off(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        other => Err(format!("expected `on` or `off`, not `{other}`")),
    }
}

/// A rate: `N/DURATION` (`10/1m`, `5/15m`, `50/1s`), optionally `,burst=B`; `0`
/// turns the limit off. Without a burst, up to N calls may come at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Calls allowed per `per`; 0 when the limit is off.
    pub count: u32,
    pub per: Duration,
    /// The most calls allowed at once (the bucket's size).
    pub burst: u32,
}

impl Rate {
    pub const OFF: Rate = Rate {
        count: 0,
        per: Duration::from_secs(1),
        burst: 0,
    };

    pub fn is_off(&self) -> bool {
        self.count == 0
    }
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(value: &str) -> Result<Rate, String> {
        let value = value.trim();
        if value == "0" || value.eq_ignore_ascii_case("off") {
            return Ok(Rate::OFF);
        }
        let bad = || format!("expected N/DURATION (like `10/1m`) or `0`, not `{value}`");
        let (rate, burst) = match value.split_once(',') {
            Some((rate, burst)) => {
                let burst = burst
                    .trim()
                    .strip_prefix("burst=")
                    .and_then(|b| b.parse::<u32>().ok())
                    .filter(|b| *b > 0)
                    .ok_or_else(bad)?;
                (rate, Some(burst))
            }
            None => (value, None),
        };
        let (count, per) = rate.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let per = humantime::parse_duration(per.trim()).map_err(|_| bad())?;
        if count == 0 {
            return Ok(Rate::OFF);
        }
        if per.is_zero() {
            return Err(bad());
        }
        Ok(Rate {
            count,
            per,
            burst: burst.unwrap_or(count),
        })
    }
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

    /// Settings that cannot work, in one plain sentence.
    pub fn check(&self) -> Result<(), String> {
        if let Some(secret) = self.jwt_secret.as_deref().filter(|s| !s.is_empty())
            && secret.len() < MIN_JWT_SECRET_BYTES
        {
            return Err(format!(
                "CASEFILE_JWT_SECRET has {} bytes, fewer than the {MIN_JWT_SECRET_BYTES} a signing secret needs: \
                 generate one with `openssl rand -base64 48`, or leave it unset to have one generated and kept in the database",
                secret.len()
            ));
        }
        self.model.check()?;
        self.embeddings.check()
    }

    /// A configuration for tests and embedding: the defaults, with this database.
    /// Rate limits stay on, as in production; test suites that flood on purpose turn
    /// them off with `limits.rate_limits = false`.
    pub fn for_database(database_url: impl Into<String>) -> Config {
        let mut config = Config::defaults();
        config.database_url = Some(database_url.into());
        config
    }

    /// The defaults, with what `CASEFILE_*` variables set.
    pub fn defaults() -> Config {
        ServeDefaults::parse_from(["casefile"]).config
    }

    /// The configuration of a command that opens the database (and, with
    /// `signing`, issues tokens): the defaults with what it was given.
    pub fn for_command(database: DatabaseArgs, signing: Option<SigningArgs>) -> Config {
        let mut config = Config::defaults();
        config.database_url = database.database_url;
        if let Some(signing) = signing {
            config.jwt_secret = signing.jwt_secret;
            config.agent_token_ttl = signing.agent_token_ttl;
        }
        config
    }
}

/// The shortest configured signing secret accepted: HS256 is as strong as its key.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Request limits applied to every GraphQL operation, over HTTP and WebSocket.
pub mod limits {
    /// Deepest selection set nesting accepted.
    pub const MAX_DEPTH: usize = 15;
    /// Most aliases in one document.
    pub const MAX_ALIASES: usize = 30;
    /// Deepest nesting of brackets (`{`, `[`, `(`) in a document's text, values
    /// included: the parser recurses once per level, and a list nested a few hundred
    /// deep overflowed a thread's stack. The parser's own bound on selection sets.
    pub const MAX_NESTING: usize = 64;
    /// Longest message body, in characters.
    pub const MAX_MESSAGE_CHARS: usize = 10_000;
    /// Longest short text (names, labels, keywords), in characters.
    pub const MAX_SHORT_TEXT: usize = 200;
    /// Largest page a connection returns.
    pub const MAX_PAGE: i32 = 200;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_and_without_burst() {
        let rate: Rate = "10/1m".parse().expect("valid");
        assert_eq!(
            (rate.count, rate.per, rate.burst),
            (10, Duration::from_secs(60), 10)
        );
        let rate: Rate = "20/1m,burst=10".parse().expect("valid");
        assert_eq!((rate.count, rate.burst), (20, 10));
        assert!("0".parse::<Rate>().expect("valid").is_off());
        assert!("ten/1m".parse::<Rate>().is_err());
        assert!("10/0s".parse::<Rate>().is_err());
        assert!("10/1m,burst=0".parse::<Rate>().is_err());
    }

    /// Every flag of `serve` is a row of the book's configuration table, with its
    /// variable: the table is where operators look.
    #[test]
    fn every_serve_flag_is_in_the_books_configuration_table() {
        use clap::CommandFactory;
        let page = include_str!("../docs/src/reference/configuration.md");
        let table = page
            .split("## Configuration")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("the book has a Configuration section");
        let command = ServeDefaults::command();
        let mut missing = Vec::new();
        for arg in command.get_arguments() {
            let (Some(flag), Some(env)) = (arg.get_long(), arg.get_env()) else {
                continue;
            };
            let row = format!("| `--{flag}` | `{}`", env.to_string_lossy());
            if !table.lines().any(|line| line.starts_with(&row)) {
                missing.push(row);
            }
        }
        assert!(missing.is_empty(), "not in the book's table: {missing:?}");
    }
}
