//! The event log, and the bus that carries it to subscribers.
//!
//! Every write that others must hear of stores its events in the `events` table in
//! its own transaction (a transactional outbox; see `crate::domain::core::feed`, which
//! builds them). Nothing reaches a subscriber from memory alone: one tailer per
//! process reads the log in cursor order from its own last cursor and hands each
//! [`Record`] to the in-process [`InProcessBus`], where subscriptions listen to
//! topics (a conversation, or a workspace). The `events` query, a resuming
//! subscription and the webhook deliverer read the same log by the same cursors.
//!
//! The tailer is woken at once by a commit in this process, and on PostgreSQL by a
//! `NOTIFY` from another process; a lost notification, a dropped listener
//! connection or a peer that died between its commit and its `NOTIFY` only delays
//! an event until the next poll (`CASEFILE_EVENT_POLL`), never loses it.
//!
//! This module knows nothing of the domain: a record is plain data (type, ids,
//! JSON payload), and a record's decoded form is cached on it, typed by whoever
//! decodes it (see [`Record::decoded`]), so that 1,000 subscribers of one event
//! decode it once.
//!
//! # Cursors
//!
//! A [`Cursor`] is `(tx, pos)`. `pos` numbers rows as they are inserted. On SQLite
//! one writer commits at a time, so rows commit in `pos` order and `tx` is 0. On
//! PostgreSQL, concurrent transactions take `pos` values from a sequence but may
//! commit in any order, so a reader that had seen `pos` 7 could later meet a
//! committed 6 and skip it. Each row therefore also stores its writing
//! transaction's id (`tx`, from `pg_current_xact_id()`), and readers order by
//! `(tx, pos)` and read only rows with `tx` below `pg_snapshot_xmin` of their own
//! snapshot: every transaction with a smaller id has ended (committed or rolled
//! back), so no row can later appear below a cursor already read. A transaction
//! that is still running holds back the rows of younger ones until it ends, which
//! delays them by its length (our transactions are short), never reorders them.
//! Cursors are therefore strictly increasing, in the order readers consume them,
//! within a workspace and across all of them. They reach clients as 32 hex digits,
//! which also sort as strings.

mod bus;
mod log;
mod pg;
mod tail;

use std::any::Any;
use std::sync::{Arc, OnceLock};

pub use bus::{InProcessBus, Subscription, Topic};
pub use log::{Expired, NewRecord, Scope, after_sql, append, check_cursor, newest, prune, read};
pub use tail::{Events, Listening};

/// A position in the event log.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Cursor {
    pub tx: i64,
    pub pos: i64,
}

impl Cursor {
    /// Before every event.
    pub const START: Cursor = Cursor { tx: 0, pos: 0 };

    /// The opaque form clients see.
    pub fn encode(self) -> String {
        format!("{:016x}{:016x}", self.tx, self.pos)
    }

    /// A cursor from its opaque form, if well formed.
    pub fn parse(text: &str) -> Option<Cursor> {
        if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let tx = i64::from_str_radix(&text[..16], 16).ok()?;
        let pos = i64::from_str_radix(&text[16..], 16).ok()?;
        (tx >= 0 && pos >= 0).then_some(Cursor { tx, pos })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.encode())
    }
}

/// One event, as stored and as carried to subscribers.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// Where it sits in the log; `None` for ephemeral events (typing), which are
    /// never stored.
    pub cursor: Option<Cursor>,
    /// `evt_…`, stable: a webhook's `webhook-id`.
    pub id: String,
    pub workspace_id: String,
    pub conversation_id: Option<String>,
    /// What happened (`MESSAGE_CREATED`, …), as the domain names it.
    pub kind: String,
    /// The message, handoff, tag or agent it concerns.
    pub subject_id: Option<String>,
    /// Unix milliseconds.
    pub occurred_at: i64,
    /// What subscribers need, as JSON the domain wrote.
    pub payload: String,
    #[serde(skip)]
    decoded: OnceLock<Option<Arc<dyn Any + Send + Sync>>>,
}

impl Record {
    pub fn new(cursor: Option<Cursor>, new: NewRecord) -> Record {
        Record {
            cursor,
            id: new.id,
            workspace_id: new.workspace_id,
            conversation_id: new.conversation_id,
            kind: new.kind,
            subject_id: new.subject_id,
            occurred_at: new.occurred_at,
            payload: new.payload,
            decoded: OnceLock::new(),
        }
    }

    /// This record, already decoded as `value` (by the writer that built it).
    pub fn with_decoded<T: Send + Sync + 'static>(self, value: T) -> Record {
        let _ = self
            .decoded
            .set(Some(Arc::new(value) as Arc<dyn Any + Send + Sync>));
        self
    }

    /// This record decoded by `decode`, which runs once per record however many
    /// subscribers ask (`None` when it does not decode, or decoded to another type).
    pub fn decoded<T: Send + Sync + 'static>(
        &self,
        decode: impl FnOnce(&Record) -> Option<T>,
    ) -> Option<Arc<T>> {
        self.decoded
            .get_or_init(|| decode(self).map(|t| Arc::new(t) as Arc<dyn Any + Send + Sync>))
            .clone()?
            .downcast::<T>()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_sort_as_strings() {
        let a = Cursor { tx: 5, pos: 900 };
        let b = Cursor { tx: 6, pos: 12 };
        assert!(a < b);
        assert!(a.encode() < b.encode());
        assert_eq!(Cursor::parse(&a.encode()), Some(a));
        assert_eq!(Cursor::parse("nope"), None);
        assert_eq!(Cursor::parse(&"g".repeat(32)), None);
        assert_eq!(Cursor::parse(&"f".repeat(32)), None, "negative halves");
    }

    #[test]
    fn a_record_is_decoded_once() {
        let record = Record::new(
            None,
            NewRecord {
                id: "evt_1".into(),
                workspace_id: "ws".into(),
                conversation_id: None,
                kind: "X".into(),
                subject_id: None,
                occurred_at: 0,
                payload: "41".into(),
            },
        );
        let mut calls = 0;
        let first = record.decoded(|r| {
            calls += 1;
            r.payload.parse::<u32>().ok()
        });
        assert_eq!(first.as_deref(), Some(&41));
        let again = record.decoded(|_| -> Option<u32> { unreachable!("decoded twice") });
        assert_eq!(again.as_deref(), Some(&41));
        assert_eq!(calls, 1);
    }
}
