//! One reader of the log per process, feeding the in-process bus in cursor order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// Records this process committed, by cursor, not yet delivered: delivered
    /// without reading them back when they follow on (see [`Events::drain`]).
    committed: Mutex<BTreeMap<Cursor, Arc<Record>>>,
    /// Ephemeral events of this process waiting for the commits before them (the
    /// newest cursor known when each happened) to be delivered first.
    ephemeral: Mutex<std::collections::VecDeque<(Cursor, Arc<Record>)>>,
    /// Whether this process's commits take consecutive positions (SQLite: one
    /// writer, `AUTOINCREMENT`), so that a record right after the last delivered
    /// one can be delivered as it is.
    consecutive: bool,
    delivered: watch::Sender<Cursor>,
    observer: OnceLock<Observer>,
    link: Option<pg::Link>,
    poll: Duration,
    /// Subscription streams listening now (see [`Listening`]).
    listening: Arc<AtomicUsize>,
}

/// Held by a subscription's stream from the moment everything committed after it
/// reaches the stream, until the stream ends: the GraphQL protocols acknowledge
/// no subscription, so this count is how a test knows one has started.
pub struct Listening(Arc<AtomicUsize>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
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
            committed: Mutex::default(),
            ephemeral: Mutex::default(),
            consecutive: db.pg_pool.is_none(),
            delivered: watch::channel(start).0,
            observer: OnceLock::new(),
            link,
            poll,
            listening: Arc::default(),
        });
        if let (Some(pool), Some(link)) = (&db.pg_pool, &events.link) {
            let events = Arc::downgrade(&events);
            let hear = move |heard| {
                let Some(events) = events.upgrade() else {
                    return false;
                };
                match heard {
                    pg::Heard::Committed(cursor) => events.wake_for(cursor),
                    pg::Heard::Record(record) => events.deliver(&record),
                    pg::Heard::Lost => events.wake(),
                }
                true
            };
            pg::listen(pool.clone(), link.node.clone(), hear).await?;
        }
        tokio::spawn(tail(Arc::clone(&events), start));
        Ok(events)
    }

    /// Run `observer` on every record, before its subscribers get it. Set once.
    pub fn observe(&self, observer: impl Fn(&Arc<Record>) + Send + Sync + 'static) {
        let _ = self.observer.set(Box::new(observer));
    }

    /// A transaction that stored `records` (with their cursors) committed: deliver
    /// them now, here and in every other process.
    pub fn committed(&self, records: Vec<Record>) {
        let Some(last) = records.iter().filter_map(|r| r.cursor).max() else {
            return;
        };
        {
            let mut committed = self.committed.lock().unwrap_or_else(|p| p.into_inner());
            for record in records {
                if let Some(cursor) = record.cursor {
                    committed.insert(cursor, Arc::new(record));
                }
            }
        }
        self.wake_for(last);
        if let Some(link) = &self.link {
            link.committed(last);
        }
    }

    /// Deliver an event that is not stored (typing) to its subscribers, here and in
    /// every other process; here after what this process committed before it.
    pub fn ephemeral(&self, record: Record) {
        let record = Arc::new(record);
        if let Some(link) = &self.link {
            link.ephemeral(&record);
        }
        let after = self.wanted();
        self.ephemeral
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back((after, record));
        self.wake.notify_one();
    }

    /// Publish the ephemeral events whose earlier commits are delivered (all of
    /// them with `all`: the tailer does not hold typing back longer than a drain).
    fn publish_ephemeral(&self, last: Cursor, all: bool) {
        loop {
            let next = {
                let mut waiting = self.ephemeral.lock().unwrap_or_else(|p| p.into_inner());
                match waiting.front() {
                    Some((after, _)) if all || *after <= last => waiting.pop_front(),
                    _ => None,
                }
            };
            let Some((_, record)) = next else {
                return;
            };
            self.bus.publish(&record);
        }
    }

    /// Receive the records of `topic` from now on.
    pub fn subscribe(&self, topic: Topic) -> Subscription {
        self.bus.subscribe(topic)
    }

    /// Count a subscription stream as listening while the guard lives.
    pub fn listening(&self) -> Listening {
        // Release: whoever sees the count also sees the subscription made before.
        self.listening.fetch_add(1, Ordering::Release);
        Listening(Arc::clone(&self.listening))
    }

    /// How many subscription streams of this process listen now.
    pub fn streams_listening(&self) -> usize {
        self.listening.load(Ordering::Acquire)
    }

    /// The cursor up to which this process has delivered the log to its
    /// subscribers; it moves just before each record is published.
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

    /// The next record this process committed, when it follows `last` directly.
    fn next_committed(&self, last: Cursor) -> Option<Arc<Record>> {
        let mut committed = self.committed.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let (&cursor, _) = committed.first_key_value()?;
            if cursor <= last {
                committed.pop_first();
                continue;
            }
            let follows = self.consecutive && cursor.tx == last.tx && cursor.pos == last.pos + 1;
            return follows
                .then(|| committed.pop_first().map(|(_, r)| r))
                .flatten();
        }
    }

    /// A record read back, or the same one as this process committed it (decoded).
    fn known(&self, record: Record) -> Arc<Record> {
        let mut committed = self.committed.lock().unwrap_or_else(|p| p.into_inner());
        record
            .cursor
            .and_then(|cursor| committed.remove(&cursor))
            .unwrap_or_else(|| Arc::new(record))
    }

    fn publish(&self, record: &Arc<Record>, last: Cursor) {
        if let Some(observe) = self.observer.get() {
            observe(record);
        }
        // Moved before the record is published: a subscriber that reads it
        // before subscribing and again after knows whether it may have
        // missed something (see `domain::chat::streams::events`).
        self.delivered.send_replace(last);
        self.bus.publish(record);
    }

    /// Deliver everything after `last` that can be read now: what this process
    /// committed right after `last` as it is, the rest read from the log (commits
    /// of other processes, gaps, and on PostgreSQL everything, in visibility order).
    /// `look`: read the log even when nothing this process knows of is missing (a
    /// poll, for commits of other processes).
    async fn drain(&self, mut last: Cursor, look: bool) -> AppResult<Cursor> {
        let mut retry = RETRY;
        loop {
            while let Some(record) = self.next_committed(last) {
                // Typing sent before this commit goes before it.
                self.publish_ephemeral(last, false);
                last = record.cursor.unwrap_or(last);
                self.publish(&record, last);
            }
            self.publish_ephemeral(last, false);
            if self.consecutive && !look && self.wanted() <= last {
                self.publish_ephemeral(last, true);
                return Ok(last);
            }
            let batch = log::read(&self.db.background, last, &Scope::default(), BATCH).await?;
            let full = batch.len() as u64 == BATCH;
            for record in batch {
                self.publish_ephemeral(last, false);
                let record = self.known(record);
                last = record.cursor.unwrap_or(last);
                self.publish(&record, last);
            }
            if full {
                continue;
            }
            // Told of a commit it cannot see yet: an older transaction still runs.
            self.publish_ephemeral(last, false);
            if self.wanted() > last && retry < self.poll {
                tokio::time::sleep(retry).await;
                retry *= 2;
                continue;
            }
            self.publish_ephemeral(last, true);
            return Ok(last);
        }
    }
}

/// The tailer: lives as long as the process (its runtime ends it).
async fn tail(events: Arc<Events>, mut last: Cursor) {
    let mut look = true;
    loop {
        match events.drain(last, look).await {
            Ok(read) => last = read,
            Err(err) => {
                tracing::warn!(error.detail = ?err, "could not read the event log; retrying");
            }
        }
        // Woken by a commit, or looking for other processes' commits at the poll.
        look = tokio::time::timeout(events.poll, events.wake.notified())
            .await
            .is_err();
    }
}
