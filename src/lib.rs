//! Casefile: a self-hosted GraphQL backend for AI-first customer chat with human
//! handoff that keeps its context.
//!
//! # Layout
//!
//! - [`config`]: flags and `CASEFILE_*` environment variables, and request limits.
//! - [`app`]: the HTTP surface (`/graphql`, `/healthz`) and serving with graceful
//!   shutdown. [`spawn`] starts a server on a bound listener, as tests and `main` do.
//! - [`graphql`]: the schema, one module per domain, merged into `Query` and
//!   `Mutation`; resolvers authorise, call [`domain`], and return.
//! - [`domain`]: queries, transactions and invariants: workspaces, agents, teams,
//!   leads, conversations, messages, tags. Writes commit, then publish to [`events`].
//! - [`loaders`]: the DataLoader batch queries behind every relation field.
//! - [`auth`]: principals (agent, visitor), JWTs with per-kind audiences, passwords.
//! - [`entity`]: sea-orm entities, one per table; [`db`] connects and migrates
//!   (SQLite with one writer and a read pool, or PostgreSQL).
//! - [`error`]: the one error type and its `extensions.code` mapping.
//! - [`ids`]: prefixed, time-ordered ids.
//! - [`cli`]: the commands besides `serve`.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod entity;
pub mod error;
pub mod events;
pub mod graphql;
pub mod ids;
pub mod loaders;
pub mod state;

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::Config;
pub use state::AppState;

/// A server running in the background.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stop accepting, finish in-flight requests, and wait for the server to end.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task
            .await
            .unwrap_or_else(|err| Err(std::io::Error::other(err)))
    }
}

/// Open the database of `config`, bind `listener_addr` (port 0 picks a free port),
/// and serve in the background.
pub async fn spawn(config: Config, listener_addr: SocketAddr) -> anyhow::Result<Running> {
    let state = AppState::open(config)
        .await
        .map_err(|err| anyhow::anyhow!("opening the database: {err:?}"))?;
    let listener = TcpListener::bind(listener_addr).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(app::serve(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    Ok(Running {
        addr,
        state,
        shutdown: Some(tx),
        task,
    })
}
