//! `Core`: what domain code may use, and nothing of the transport: the database,
//! the event log, token keys, the config, the caches of rows every request shows,
//! the locks and queues that order concurrent work, and the tracker of background
//! tasks that shutdown waits for.
//!
//! The transport's state (`crate::state::AppState`) wraps a `Core` with what only
//! the transport knows (parsed documents, sockets, shared subscription executions,
//! connection counts); domain functions take `&Core` and never see those.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Tokens;
use crate::cache::Recent;
use crate::config::Config;
use crate::db::Db;
use crate::entity::{agent, team, workspace};
use crate::error::AppResult;
use crate::events::Events;

#[derive(Clone)]
pub struct Core(Arc<Shared>);

/// What a [`Core`] holds.
pub struct Shared {
    pub db: Db,
    pub tokens: Tokens,
    /// The event log: commits are announced here, subscriptions listen here.
    pub events: Arc<Events>,
    pub config: Config,
    /// Cancelled when the server shuts down: background work ends, live
    /// connections close with 1012.
    pub shutdown: CancellationToken,
    /// Background work and live connections, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Recently read agents (for one second: a deactivation, a role or a password
    /// change reaches every process within it), the teams of each agent and
    /// workspaces (see `crate::cache`).
    pub agents: Recent<agent::Model>,
    pub agent_teams: Recent<Vec<team::Model>>,
    pub workspaces: Recent<workspace::Model>,
    /// Teams by id, as shown on conversations and handoffs.
    pub teams: Recent<team::Model>,
    /// Each workspace's topic tags by id, for the tags shown on conversations (a
    /// change here is seen at once, another process's within the cache's TTL).
    pub workspace_tags: Recent<crate::domain::tags::TagsById>,
    /// Handoff accepts running, so racing agents wait for the first.
    pub accepts: crate::domain::handoffs::AcceptsInFlight,
    /// Message sends waiting for SQLite's writer, committed together (`None` on
    /// PostgreSQL).
    pub send_queue: std::sync::OnceLock<crate::domain::messages::SendQueue>,
    /// `totalCount` of conversation lists, until the workspace changes.
    pub list_counts: crate::domain::conversations::ListCounts,
    /// Serialises the handling of visitor messages per conversation.
    pub pipelines: crate::domain::pipeline::ConversationLocks,
    /// Panics armed by tests of fault handling (see [`Faults`]).
    pub faults: Faults,
    /// The rate limits' buckets (see `crate::rate`).
    pub rate: crate::rate::RateLimits,
    /// Password hashing runs behind this, one at a time per CPU: a burst of sign-ins
    /// queues instead of taking all memory (Argon2 uses 19 MiB per hash).
    pub hashing: tokio::sync::Semaphore,
}

impl std::ops::Deref for Core {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// A [`Core`] that does not keep the server alive (for its own background tasks).
pub struct WeakCore(std::sync::Weak<Shared>);

impl WeakCore {
    pub fn upgrade(&self) -> Option<Core> {
        self.0.upgrade().map(Core)
    }
}

impl Core {
    pub fn downgrade(&self) -> WeakCore {
        WeakCore(Arc::downgrade(&self.0))
    }

    /// Connect to the configured database, migrate it, load the signing keys and
    /// start reading the event log.
    pub async fn open(config: Config) -> AppResult<Core> {
        let url = config.database_url();
        let pool_size = config
            .db_pool_size
            .unwrap_or_else(|| crate::db::default_pool_size(&url));
        let db = Db::connect_with_timeout(&url, pool_size, config.db_timeout).await?;
        let keys = crate::auth::keys::load(&db, config.jwt_secret.as_deref()).await?;
        let tokens = Tokens::with_keys(&keys, config.agent_token_ttl, config.visitor_token_ttl);
        let events = Events::start(&db, config.event_poll).await?;
        let core = Core(Arc::new(Shared {
            db,
            tokens,
            events,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            pipelines: Default::default(),
            list_counts: Default::default(),
            send_queue: Default::default(),
            accepts: Default::default(),
            agents: Recent::with_ttl(std::time::Duration::from_secs(1)),
            agent_teams: Default::default(),
            workspaces: Default::default(),
            teams: Default::default(),
            workspace_tags: Default::default(),
            faults: Default::default(),
            rate: crate::rate::RateLimits::new(&config.limits),
            config,
            hashing: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            ),
        }));
        if core.db.backend() == sea_orm::DbBackend::Sqlite {
            let queue = crate::domain::messages::SendQueue::start(&core);
            let _ = core.send_queue.set(queue);
        }
        let weak = core.downgrade();
        core.events.observe(move |record| {
            if let Some(core) = weak.upgrade() {
                crate::domain::feed::observe(&core, record);
            }
        });
        Ok(core)
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
