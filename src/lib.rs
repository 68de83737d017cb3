//! Casefile: a self-hosted GraphQL backend for AI-first customer chat with human
//! handoff that keeps its context.
//!
//! # Layout
//!
//! Layers, from the top. A module imports from its own layer and the layers below
//! it, never from above, and no two folders import each other, directly or around
//! a circle (`tests/layers.rs` reads this list from here and holds `src/` to it):
//!
//! - transport: `app`, `state`, `ws`, `net`, `export`, `demo_pages`, `assets`, `cli`,
//!   `demo`
//! - graphql: `graphql`
//! - domain: `domain` (its sub-folders, from the top: `orchestration` > `insights`,
//!   `outbound` > `handoff` > `knowledge` > `chat` > `tenancy` > `core`)
//! - events and auth: `events`, `auth`, `rate`, `webhooks`, `llm`
//! - storage: `db`, `entity`
//! - ground: `config`, `error`, `ids`, `cache`
//!
//! **Transport.** [`app`] is the HTTP surface (`/graphql`, `/healthz`, GraphiQL, the
//! exports and demo pages); [`ws`] serves GraphQL over WebSocket in both
//! sub-protocols from a [`ws::Hub`] of its own; [`net`] is the listening socket
//! (connection caps, header time-outs, client addresses behind trusted proxies,
//! shutdown within its time-out). [`state`] is the transport's [`AppState`]: the
//! domain's [`domain::Core`] with the GraphQL service, the sockets' hub and the
//! connection counts. [`export`] streams CSV exports of rows the domain reads;
//! [`cli`] runs the commands besides `serve` (`casefile eval` in [`cli::eval`]), [`demo`] seeds the demo workspace and
//! [`demo_pages`] serves its pages; [`assets`] serves compiled-in files.
//!
//! **GraphQL.** [`graphql`] is the schema, one module per domain area, merged into
//! `Query`, `Mutation` and `Subscription`; resolvers take their arguments, make one
//! domain call and shape its result. [`graphql::Api`] is the schema with its cache
//! of parsed documents, which HTTP and WebSocket serve alike; DataLoaders
//! ([`graphql::loaders`]) load every relation field.
//!
//! **Domain.** [`domain`] holds the queries, transactions and invariants, in
//! sub-domains: [`domain::core`] (what domain code may use: the database, the event
//! log, caches, config, keys, locks, the writer, and the event vocabulary),
//! [`domain::tenancy`], [`domain::chat`], [`domain::knowledge`], [`domain::handoff`],
//! [`domain::insights`], [`domain::outbound`], and [`domain::orchestration`] on
//! top (a visitor message to an answer or a handoff, the sweeps). Every function
//! takes a `&Core`, never the transport's state. A write stores its events in its
//! own transaction; the [`events`] log carries them to subscriptions, the `events`
//! query and webhooks, by cursor, on every process.
//!
//! **Events and auth.** [`events`] is the event log (an outbox read by cursor;
//! PostgreSQL's `NOTIFY` only wakes readers); [`auth`] holds principals (agent,
//! visitor, API key) and JWTs with per-kind audiences; [`rate`] the rate limits,
//! token buckets per caller; [`webhooks`] signs and sends webhook requests; [`llm`]
//! streams completions from an OpenAI-compatible model server.
//!
//! **Storage and ground.** [`entity`] has the sea-orm entities, one per table, with
//! one typed accessor per JSON column; [`db`] connects and migrates (SQLite with one
//! writer and a read pool, or PostgreSQL). [`config`] reads flags and `CASEFILE_*`
//! variables; [`error`] is the one error type and its `extensions.code` mapping;
//! [`ids`] makes prefixed, time-ordered ids; [`cache`] keeps the few rows every
//! signed-in request shows, for seconds.
//!
//! This file is the composition root: [`spawn`] opens the domain's core, starts
//! its background work and serves it, as tests and `main` do.

pub mod app;
pub mod assets;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod demo_pages;
pub mod domain;
pub mod entity;
pub mod error;
pub mod events;
pub mod export;
pub mod graphql;
pub mod ids;
pub mod llm;
pub mod net;
pub mod rate;
pub mod state;
pub mod webhooks;
pub mod ws;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use config::Config;
pub use state::AppState;

/// A server running in the background.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stop accepting, close live connections with a code that tells clients to
    /// reconnect, finish in-flight requests, and wait for the server to end: all
    /// within the shutdown time-out, after which what is left is cut.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let limit = self.state.config.shutdown_timeout;
        let started = tokio::time::Instant::now();
        self.state.shutdown.cancel();
        self.state.tasks.close();
        let served = self
            .task
            .await
            .unwrap_or_else(|err| Err(std::io::Error::other(err)));
        // Connections were told to close; give them what is left of the time-out
        // (and at least a moment) to say goodbye.
        let left = limit
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(100));
        let _ = tokio::time::timeout(left, self.state.tasks.wait()).await;
        served
    }
}

/// Open the database of `config`, bind `listener_addr` (port 0 picks a free port),
/// and serve in the background.
pub async fn spawn(config: Config, listener_addr: SocketAddr) -> anyhow::Result<Running> {
    config.check().map_err(anyhow::Error::msg)?;
    // Listen first: an address in use is said at once, before the database opens.
    let listener = TcpListener::bind(listener_addr)
        .await
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
                "the address {listener_addr} is already in use: stop what listens there, or pass --listen with another address"
            ),
            _ => anyhow::anyhow!("cannot listen on {listener_addr}: {err}"),
        })?;
    // Held while this server runs, so a SQLite database is not restored under it.
    let serving = db::backup::hold_while_serving(&config.database_url())
        .map_err(|err| anyhow::Error::msg(err.detail()))?;
    let core = domain::Core::open(config)
        .await
        .map_err(|err| anyhow::Error::msg(err.detail()))?;
    start_background(&core).await?;
    let state = AppState::new(core);
    // Presence notes the agents with a socket open on this process.
    let sockets = state.sockets.clone();
    domain::tenancy::presence::start(&state, move || sockets.open_agents());
    let addr = listener.local_addr()?;
    let shutdown = state.shutdown.clone();
    let served = app::serve(listener, state.clone(), async move {
        shutdown.cancelled().await;
    });
    let task = tokio::spawn(async move {
        let _serving = serving;
        served.await
    });
    Ok(Running { addr, state, task })
}

/// The domain's work beside the requests, until shutdown: SQLite's writer, the
/// observer of the event log, retag jobs left running, signing keys rotated
/// elsewhere (picked up within a minute), pruning the log, delivering webhooks,
/// resolving silent conversations, routing's offers and SLAs, and embedding
/// articles' passages.
async fn start_background(core: &domain::Core) -> anyhow::Result<()> {
    core.batch_writes();
    let weak = core.downgrade();
    core.events.observe(move |record| {
        if let Some(core) = weak.upgrade() {
            domain::orchestration::observe::observe(&core, record);
        }
    });
    domain::knowledge::retag::resume(core)
        .await
        .map_err(|err| anyhow::anyhow!("resuming retag jobs: {}", err.message()))?;
    domain::tenancy::agents::warm_up().await;
    core.repeat(
        auth::keys::RELOAD_EVERY,
        "reading the signing keys again",
        |core| async move { domain::tenancy::api_keys::reload_keys(&core).await },
    );
    domain::outbound::events::start_pruning(core);
    domain::outbound::delivery::start_delivering(core);
    domain::orchestration::sweeper::start(core);
    domain::outbound::erasure::start_retention(core);
    domain::handoff::routing::start(core);
    domain::knowledge::embeddings::start(core);
    Ok(())
}
