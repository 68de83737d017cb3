//! What every request shares: the database, token keys, the event bus, the config.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Tokens;
use crate::cache::Recent;
use crate::config::Config;
use crate::db::Db;
use crate::error::AppResult;
use crate::events::Events;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub db: Db,
    pub tokens: Tokens,
    /// The event log: commits are announced here, subscriptions listen here.
    pub events: Arc<Events>,
    pub config: Config,
    /// Cancelled when the server shuts down: live connections close with 1012.
    pub shutdown: CancellationToken,
    /// The live connections and background work, so shutdown can wait for them.
    pub connections: TaskTracker,
    /// Parsed GraphQL documents by query text.
    pub documents: crate::graphql::limits::DocumentCache,
    /// Recently read agents (for one second: a deactivation, a role or a password
    /// change reaches every process within it), the teams of each agent and
    /// workspaces (see `crate::cache`).
    pub agents: Recent<crate::entity::agent::Model>,
    pub agent_teams: Recent<Vec<crate::entity::team::Model>>,
    pub workspaces: Recent<crate::entity::workspace::Model>,
    /// Teams by id, as shown on conversations and handoffs.
    pub teams: Recent<crate::entity::team::Model>,
    /// Each workspace's topic tags by id, for the tags shown on conversations (a
    /// change here is seen at once, another process's within the cache's TTL).
    pub workspace_tags: Recent<crate::domain::tags::TagsById>,
    /// Sockets that close when their principal's access is revoked (see
    /// `crate::ws`).
    pub sessions: crate::ws::Sessions,
    /// Subscriptions executed once for many connections (see `crate::ws`).
    pub shared_operations: crate::ws::SharedOperations,
    /// Handoff accepts running, so racing agents wait for the first.
    pub accepts: crate::domain::handoffs::AcceptsInFlight,
    /// Message sends waiting for SQLite's writer, committed together (`None` on
    /// PostgreSQL).
    pub send_queue: std::sync::OnceLock<crate::domain::messages::SendQueue>,
    /// `totalCount` of conversation lists, until the workspace changes.
    pub list_counts: crate::domain::conversations::ListCounts,
    /// Serialises the handling of visitor messages per conversation.
    pub pipelines: crate::domain::pipeline::ConversationLocks,
    /// Panics armed by tests of fault handling (see `crate::state::Faults`).
    pub faults: Faults,
    /// Open connections, and WebSockets by client address (see `crate::net`).
    pub net: crate::net::Connections,
    /// The rate limits' buckets (see `crate::rate`).
    pub rate: crate::rate::RateLimits,
    /// Password hashing runs behind this, one at a time per CPU: a burst of sign-ins
    /// queues instead of taking all memory (Argon2 uses 19 MiB per hash).
    pub hashing: tokio::sync::Semaphore,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// An [`AppState`] that does not keep the server alive (for its own background
/// tasks).
pub struct WeakState(std::sync::Weak<Inner>);

impl WeakState {
    pub fn upgrade(&self) -> Option<AppState> {
        self.0.upgrade().map(AppState)
    }
}

impl AppState {
    pub fn downgrade(&self) -> WeakState {
        WeakState(Arc::downgrade(&self.0))
    }

    /// Connect to the configured database, migrate it and load the signing secret.
    pub async fn open(config: Config) -> AppResult<AppState> {
        let url = config.database_url();
        let pool_size = config
            .db_pool_size
            .unwrap_or_else(|| crate::db::default_pool_size(&url));
        let db = Db::connect_with_timeout(&url, pool_size, config.db_timeout).await?;
        let keys = crate::auth::keys::load(&db, config.jwt_secret.as_deref()).await?;
        let tokens = Tokens::with_keys(&keys, config.agent_token_ttl, config.visitor_token_ttl);
        let events = Events::start(&db, config.event_poll).await?;
        let state = AppState(Arc::new(Inner {
            db,
            tokens,
            events,
            shutdown: CancellationToken::new(),
            connections: TaskTracker::new(),
            pipelines: Default::default(),
            list_counts: Default::default(),
            send_queue: Default::default(),
            accepts: Default::default(),
            shared_operations: Default::default(),
            sessions: Default::default(),
            agents: crate::cache::Recent::with_ttl(std::time::Duration::from_secs(1)),
            agent_teams: Default::default(),
            workspaces: Default::default(),
            teams: Default::default(),
            workspace_tags: Default::default(),
            documents: Default::default(),
            net: Default::default(),
            faults: Default::default(),
            rate: crate::rate::RateLimits::new(&config.limits),
            config,
            hashing: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            ),
        }));
        if state.db.backend() == sea_orm::DbBackend::Sqlite {
            let queue = crate::domain::messages::SendQueue::start(&state);
            let _ = state.send_queue.set(queue);
        }
        let weak = state.downgrade();
        state.events.observe(move |record| {
            if let Some(state) = weak.upgrade() {
                crate::domain::feed::observe(&state, record);
            }
        });
        Ok(state)
    }
}

/// Faults a test can inject into a running server, to prove that a panic stays
/// within its operation. Nothing in the server arms them.
#[derive(Default)]
pub struct Faults(std::sync::atomic::AtomicUsize);

impl Faults {
    /// Make the next `n` fault points panic: resolutions of `Conversation.id`, and
    /// the handling of a visitor message in the background.
    pub fn arm_panics(&self, n: usize) {
        self.0.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Panic if armed.
    pub fn maybe_panic(&self) {
        let armed = self
            .0
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok();
        if armed {
            panic!("a fault injected by a test");
        }
    }
}
