//! One reader of the log per process, feeding the in-process bus in cursor order.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::bus::{InProcessBus, Subscription, Topic};
use super::log::{self, Scope};
use super::{Cursor, Record, pg};
use crate::db::Db;
use crate::error::AppResult;

/// Events read per statement by the tailer.
const BATCH: u64 = 500;

/// How soon the tailer looks again for a commit it was told of but cannot read yet
/// (an older transaction is still running on PostgreSQL): doubling from this.
const RETRY: Duration = Duration::from_millis(2);

/// Something to run on every record before subscribers get it (the domain decodes
/// it there, once, and starts whatever work its subscribers will share).
type Observer = Box<dyn Fn(&Arc<Record>) + Send + Sync>;

/// The event log of this process: where commits are announced, and subscriptions
/// listen.
pub struct Events {
    db: Db,
    bus: InProcessBus,
    wake: Notify,
    /// The newest cursor this process has been told was committed.
    wanted: Mutex<Cursor>,
    delivered: watch::Sender<Cursor>,
    observer: OnceLock<Observer>,
    link: Option<pg::Link>,
    poll: Duration,
}

impl Events {
    /// Start reading the log of `db` from its current end, looking at least every
    /// `poll` (and at once when woken), and on PostgreSQL listening for other
    /// processes' commits.
    pub async fn start(db: &Db, poll: Duration) -> AppResult<Arc<Events>> {
        let start = log::newest(db).await?;
        let link = db
            .pg_pool
            .as_ref()
            .map(|pool| pg::Link::start(pool.clone()));
        let events = Arc::new(Events {
            db: db.clone(),
            bus: InProcessBus::new(),
            wake: Notify::new(),
            wanted: Mutex::new(start),
            delivered: watch::channel(start).0,
            observer: OnceLock::new(),
            link,
            poll,
        });
        if let (Some(pool), Some(link)) = (&db.pg_pool, &events.link) {
            pg::listen(pool.clone(), link.node.clone(), Arc::downgrade(&events)).await?;
        }
        tokio::spawn(tail(Arc::clone(&events), start));
        Ok(events)
    }

    /// Run `observer` on every record, before its subscribers get it. Set once.
    pub fn observe(&self, observer: impl Fn(&Arc<Record>) + Send + Sync + 'static) {
        let _ = self.observer.set(Box::new(observer));
    }

    /// A transaction that stored events up to `cursor` committed: read them now, here
    /// and in every other process.
    pub fn committed(&self, cursor: Cursor) {
        self.wake_for(cursor);
        if let Some(link) = &self.link {
            link.committed(cursor);
        }
    }

    /// Deliver an event that is not stored (typing) to its subscribers, here and in
    /// every other process.
    pub fn ephemeral(&self, record: Record) {
        let record = Arc::new(record);
        if let Some(link) = &self.link {
            link.ephemeral(&record);
        }
        self.bus.publish(&record);
    }

    /// Receive the records of `topic` from now on.
    pub fn subscribe(&self, topic: Topic) -> Subscription {
        self.bus.subscribe(topic)
    }

    /// The cursor up to which this process has delivered the log to its subscribers.
    pub fn delivered(&self) -> watch::Receiver<Cursor> {
        self.delivered.subscribe()
    }

    pub(super) fn wake_for(&self, cursor: Cursor) {
        {
            let mut wanted = self.wanted.lock().unwrap_or_else(|p| p.into_inner());
            *wanted = (*wanted).max(cursor);
        }
        self.wake.notify_one();
    }

    pub(super) fn wake(&self) {
        self.wake.notify_one();
    }

    pub(super) fn deliver(&self, record: &Arc<Record>) {
        self.bus.publish(record);
    }

    fn wanted(&self) -> Cursor {
        *self.wanted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Read and deliver everything after `last` that can be read now.
    async fn drain(&self, mut last: Cursor) -> AppResult<Cursor> {
        let mut retry = RETRY;
        loop {
            let batch = log::read(&self.db, last, &Scope::default(), BATCH).await?;
            let full = batch.len() as u64 == BATCH;
            for record in batch {
                let record = Arc::new(record);
                last = record.cursor.unwrap_or(last);
                if let Some(observe) = self.observer.get() {
                    observe(&record);
                }
                self.bus.publish(&record);
            }
            self.delivered.send_replace(last);
            if full {
                continue;
            }
            // Told of a commit it cannot see yet: an older transaction still runs.
            if self.wanted() > last && retry < self.poll {
                tokio::time::sleep(retry).await;
                retry *= 2;
                continue;
            }
            return Ok(last);
        }
    }
}

/// The tailer: lives as long as the process (its runtime ends it).
async fn tail(events: Arc<Events>, mut last: Cursor) {
    loop {
        match events.drain(last).await {
            Ok(read) => last = read,
            Err(err) => {
                tracing::warn!(error.detail = ?err, "could not read the event log; retrying");
            }
        }
        let _ = tokio::time::timeout(events.poll, events.wake.notified()).await;
    }
}
