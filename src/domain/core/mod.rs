//! `Core`: what domain code may use, and nothing of the transport: the database,
//! the event log, token keys, the config, the caches of rows every request shows,
//! the locks and queues that order concurrent work, and the tracker of background
//! tasks that shutdown waits for.
//!
//! The transport wraps a `Core` with what only it knows (parsed documents,
//! sockets, shared subscription executions, connection counts); domain functions
//! take `&Core` and never see those.

pub mod accepts;
pub mod counts;
pub mod feed;
pub mod locks;
pub mod validate;
pub mod writer;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Tokens;
use crate::cache::Recent;
use crate::config::Config;
use crate::db::Db;
use crate::entity::{agent, insight_tag, team, workspace};
use crate::error::{AppError, AppResult};
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
    pub workspace_tags: Recent<TagsById>,
    /// Handoff accepts running, so racing agents wait for the first.
    pub accepts: accepts::AcceptsInFlight,
    /// Writes waiting for SQLite's writer, committed together (unset on
    /// PostgreSQL: see [`writer`]).
    pub writer: std::sync::OnceLock<writer::Writer>,
    /// `totalCount` of conversation lists, until the workspace changes.
    pub list_counts: counts::ListCounts,
    /// Serialises the handling of visitor messages per conversation.
    pub pipelines: locks::ConversationLocks,
    /// Panics armed by tests of fault handling (see [`Faults`]).
    pub faults: Faults,
    /// The rate limits' buckets (see `crate::rate`).
    pub rate: crate::rate::RateLimits,
    /// The language model server, when one is configured (`CASEFILE_LLM_URL`).
    pub model: Option<crate::llm::Connector>,
    /// Password hashing runs behind this, one at a time per CPU: a burst of sign-ins
    /// queues instead of taking all memory (Argon2 uses 19 MiB per hash).
    pub hashing: tokio::sync::Semaphore,
    /// Woken when passages wait for their embeddings (an article changed).
    pub embeddings_wanted: tokio::sync::Notify,
    /// The embedding server, when one is configured (`CASEFILE_EMBEDDINGS_URL`).
    pub embedder: Option<crate::llm::embeddings::Embedder>,
    /// Each workspace's embedded passages, for retrieval by meaning (forgotten
    /// when they change here; another process's changes show within seconds).
    pub vectors: Recent<Arc<Vec<crate::llm::embeddings::Indexed>>>,
}

/// A workspace's tags by id (each behind an `Arc`: a page of 50 conversations
/// hands the same few tags to a hundred applied tags, without copying their
/// keywords and patterns).
pub type TagsById = Arc<std::collections::HashMap<String, Arc<insight_tag::Model>>>;

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

    /// Run `job` now and then every `every` until shutdown; a failure is logged as
    /// `what` failing, and the next turn comes as usual.
    pub fn repeat<F, Fut>(&self, every: std::time::Duration, what: &'static str, job: F)
    where
        F: Fn(Core) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = AppResult<()>> + Send,
    {
        let core = self.clone();
        core.tasks.clone().spawn(async move {
            loop {
                if let Err(err) = job(core.clone()).await {
                    tracing::warn!(error.detail = ?err, "{what} failed");
                }
                tokio::select! {
                    () = core.shutdown.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
            }
        });
    }

    /// On SQLite, start the writer that commits concurrent writes together (see
    /// [`writer`]); on PostgreSQL each write keeps a transaction of its own.
    pub fn batch_writes(&self) {
        if self.db.backend() == sea_orm::DbBackend::Sqlite {
            let _ = self.writer.set(writer::Writer::start(self));
        }
    }

    /// Connect to the configured database, migrate it, load the signing keys and
    /// start reading the event log.
    pub async fn open(config: Config) -> AppResult<Core> {
        let url = config.database_url();
        let pool_size = config
            .db_pool_size
            .unwrap_or_else(|| crate::db::default_pool_size(&url));
        let mut db = Db::connect_with_timeout(&url, pool_size, config.db_timeout).await?;
        db.sealer = crate::db::seal::Sealer::new(config.master_key.as_ref())
            .map_err(AppError::Unavailable)?;
        // A wrong master key is said now, in one sentence, not at the first use.
        crate::db::seal::check(&db, &crate::auth::keys::SEALED_SETTINGS).await?;
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
            writer: Default::default(),
            accepts: Default::default(),
            agents: Recent::with_ttl(std::time::Duration::from_secs(1)),
            agent_teams: Default::default(),
            workspaces: Default::default(),
            teams: Default::default(),
            workspace_tags: Default::default(),
            faults: Default::default(),
            rate: crate::rate::RateLimits::new(&config.limits),
            model: crate::llm::Connector::new(&config.model),
            embedder: crate::llm::embeddings::Embedder::new(&config.embeddings),
            config,
            hashing: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            ),
            embeddings_wanted: tokio::sync::Notify::new(),
            vectors: Recent::with_ttl(std::time::Duration::from_secs(10)),
        }));
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
