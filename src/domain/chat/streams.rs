//! Live streams behind the subscriptions: what each yields, from the database and
//! the event log, with no gap and no duplicate.

use std::sync::Arc;

use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::domain::Core;
use crate::domain::core::feed::{self, Event, EventKind};
use crate::entity::message;
use crate::error::{AppError, AppResult};
use crate::events::{self, Cursor, Scope, Topic};

/// Messages read per query while replaying or catching up.
const REPLAY_PAGE: u64 = 500;

/// Every message of a conversation with `seq > after_seq`, in order, then each new
/// one as it is stored; internal notes only when `include_internal`.
///
/// The subscription to the conversation's events is taken before the replay
/// starts, so nothing committed after the replay's last read can be missed;
/// messages are delivered by `seq`, so nothing is delivered twice. When an event
/// shows a gap (a lag, events delivered out of order), the missing messages are
/// read from the database: per conversation, commits happen in `seq` order, so
/// everything up to a delivered `seq` is already committed.
pub fn messages(
    core: Core,
    conversation_id: String,
    include_internal: bool,
    after_seq: i64,
) -> impl Stream<Item = AppResult<Arc<message::Model>>> {
    let mut events = core
        .events
        .subscribe(Topic::Conversation(conversation_id.clone()));
    let listening = core.events.listening();
    async_stream::try_stream! {
        let _listening = listening;
        let mut last = after_seq.max(0);
        let mut catch_up = true;
        loop {
            if catch_up {
                loop {
                    // Boxed: a query future is large, and this stream idles far longer than
                    // it queries; unboxed, every subscriber would carry one.
                    let page = Box::pin(super::messages::page(&core, &conversation_id, true, last, REPLAY_PAGE))
                        .await?;
                    let done = (page.len() as u64) < REPLAY_PAGE;
                    for message in page {
                        last = message.seq;
                        if include_internal || !message.internal {
                            yield Arc::new(message);
                        }
                    }
                    if done {
                        break;
                    }
                }
                catch_up = false;
            }
            match events.recv().await {
                Ok(record) => {
                    let Some(event) = feed::decode(&record) else { continue };
                    if let EventKind::MessageCreated { message, .. } = &event.kind {
                        if message.seq == last + 1 {
                            last = message.seq;
                            if include_internal || !message.internal {
                                yield Arc::clone(message);
                            }
                        } else if message.seq > last {
                            catch_up = true;
                        }
                    }
                }
                Err(RecvError::Lagged(_)) => catch_up = true,
                Err(RecvError::Closed) => break,
            }
        }
    }
}

/// Where a stream of events starts.
#[derive(Clone, Copy, Debug)]
pub enum From {
    /// With what happens from now on.
    Now,
    /// With every event after this cursor (replayed from the log), then live.
    After(Cursor),
}

/// A cursor a client sent, checked: `BAD_USER_INPUT` when malformed, or (reason
/// `CURSOR_EXPIRED`) when the events after it have been pruned.
pub async fn resume_from(core: &Core, field: &str, cursor: &str) -> AppResult<Cursor> {
    let Some(parsed) = Cursor::parse(cursor) else {
        return Err(AppError::bad_input(
            field,
            "is not a cursor this server gave out",
        ));
    };
    if events::check_cursor(&core.db, parsed).await?.is_err() {
        return Err(AppError::BadInput {
            field: field.to_owned(),
            message: "events after this cursor are older than the retention and were pruned: \
                      refetch what you show, then subscribe without it"
                .to_owned(),
            reason: Some("CURSOR_EXPIRED"),
        });
    }
    Ok(parsed)
}

/// The events of `topic` (a conversation's, or a workspace's), in log order, with
/// no gap and no duplicate: from `from`, then live. A subscriber that falls behind
/// is caught up from the log rather than told it lagged. Ephemeral events (typing)
/// come only live.
///
/// The topic is subscribed to before anything is read, so every event delivered
/// after that arrives; the replay and each catch-up read the log up to wherever it
/// has got, and live events at or below the last cursor read are dropped as
/// duplicates. Starting `Now` on SQLite, the process's delivered cursor is read
/// before subscribing and again after: if it moved in between, an event may have
/// been delivered before the subscription saw it, and that gap is read from the
/// log. On PostgreSQL, where this process may not have read another's commits yet,
/// "now" is the newest event the log shows when the stream starts, read before
/// subscribing (then caught up from it): what committed before the subscription
/// started is not delivered as if it happened after, and nothing after is missed.
pub fn events(core: Core, topic: Topic, from: From) -> impl Stream<Item = AppResult<Arc<Event>>> {
    let shared_log = core.db.pg_pool.is_some();
    let (mut last, mut catch_up, mut events) = match from {
        From::After(cursor) => (cursor, true, core.events.subscribe(topic.clone())),
        From::Now => {
            let before = *core.events.delivered().borrow();
            let events = core.events.subscribe(topic.clone());
            let after = *core.events.delivered().borrow();
            (before, after != before && !shared_log, events)
        }
    };
    let now = matches!(from, From::Now) && shared_log;
    let mut listening = (!now).then(|| core.events.listening());
    async_stream::try_stream! {
        if now {
            last = Box::pin(events::newest(&core.db)).await?;
            events = core.events.subscribe(topic.clone());
            catch_up = true;
            listening = Some(core.events.listening());
        }
        let _listening = listening;
        loop {
            if catch_up {
                catch_up = false;
                loop {
                    let scope = match &topic {
                        Topic::Conversation(id) => Scope { conversation_id: Some(id), ..Scope::default() },
                        Topic::Workspace(id) => Scope { workspace_id: Some(id), ..Scope::default() },
                    };
                    let page = Box::pin(events::read(&core.db.reader, last, &scope, REPLAY_PAGE)).await?;
                    let done = (page.len() as u64) < REPLAY_PAGE;
                    for record in page {
                        last = record.cursor.unwrap_or(last);
                        if let Some(event) = feed::decode(&record) {
                            yield event;
                        }
                    }
                    if done {
                        break;
                    }
                }
            }
            match events.recv().await {
                Ok(record) => {
                    match record.cursor {
                        Some(cursor) if cursor <= last => continue,
                        Some(cursor) => last = cursor,
                        None => {}
                    }
                    if let Some(event) = feed::decode(&record) {
                        yield event;
                    }
                }
                Err(RecvError::Lagged(_)) => catch_up = true,
                Err(RecvError::Closed) => break,
            }
        }
    }
}
