//! Live streams behind the subscriptions: what each yields, from the database and
//! the event bus, with no gap and no duplicate.

use std::sync::Arc;

use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::entity::message;
use crate::error::{AppError, AppResult};
use crate::events::{Event, EventKind, Subscription};
use crate::state::AppState;

/// Messages read per query while replaying or catching up.
const REPLAY_PAGE: u64 = 500;

/// Every message of a conversation with `seq > after_seq`, in order, then each new
/// one as it is stored; internal notes only when `include_internal`.
///
/// The event subscription `events` is taken before the replay starts, so nothing
/// committed after the replay's last read can be missed; messages are delivered by
/// `seq`, so nothing is delivered twice. When an event shows a gap (a lag, a
/// dropped listener, events published out of order), the missing messages are
/// read from the database: per conversation, commits happen in `seq` order, so
/// everything up to a notified `seq` is already committed.
pub fn messages(
    state: AppState,
    conversation_id: String,
    include_internal: bool,
    after_seq: i64,
    mut events: Subscription,
) -> impl Stream<Item = AppResult<Arc<message::Model>>> {
    async_stream::try_stream! {
        let mut last = after_seq.max(0);
        let mut catch_up = true;
        loop {
            if catch_up {
                loop {
                    // Boxed: a query future is large, and this stream idles far longer than
                    // it queries; unboxed, every subscriber would carry one.
                    let page = Box::pin(super::messages::page(&state, &conversation_id, true, last, REPLAY_PAGE))
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
                Ok(event) => match &event.kind {
                    EventKind::MessageCreated { message, .. } => {
                        if message.seq == last + 1 {
                            last = message.seq;
                            if include_internal || !message.internal {
                                yield Arc::clone(message);
                            }
                        } else if message.seq > last {
                            catch_up = true;
                        }
                    }
                    EventKind::Resync => catch_up = true,
                    _ => {}
                },
                Err(RecvError::Lagged(_)) => catch_up = true,
                Err(RecvError::Closed) => break,
            }
        }
    }
}

/// Events of a topic, with lags and resyncs reported as an error the client can act
/// on (refetch what it shows), after which the stream goes on.
pub fn events(mut events: Subscription) -> impl Stream<Item = AppResult<Arc<Event>>> {
    async_stream::stream! {
        loop {
            match events.recv().await {
                Ok(event) if matches!(event.kind, EventKind::Resync) => yield Err(lagged(None)),
                Ok(event) => yield Ok(event),
                Err(RecvError::Lagged(missed)) => yield Err(lagged(Some(missed))),
                Err(RecvError::Closed) => break,
            }
        }
    }
}

fn lagged(missed: Option<u64>) -> AppError {
    let message = match missed {
        Some(n) => {
            format!("this subscriber fell behind and missed {n} events: refetch what you show")
        }
        None => "events may have been missed: refetch what you show".to_owned(),
    };
    AppError::Lagged(message)
}
