//! Waking other processes through PostgreSQL `LISTEN`/`NOTIFY`.
//!
//! A commit's cursor is sent with `NOTIFY` (from a queue, so a write never waits on
//! it); every process listens and wakes its tailer, which reads the log itself. A
//! notification is only a hint: when one is lost, or the listening connection
//! drops, the tailer's poll still finds the events. Ephemeral events (typing) are
//! not stored, so they travel whole in the notification and are best effort.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use super::{Cursor, Record};
use crate::error::AppResult;
use crate::ids::random_secret;

/// The `NOTIFY` channel.
const CHANNEL: &str = "casefile_events";

/// Notifications sent with one statement at most.
const NOTIFY_BATCH: usize = 256;

/// What crosses between processes.
#[derive(Debug, Serialize, Deserialize)]
struct Wire<R> {
    /// The process that sent it.
    o: String,
    /// A commit up to this cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<String>,
    /// An ephemeral event.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    e: Option<R>,
}

fn none<R>() -> Option<R> {
    None
}

/// This process's side of the channel.
pub struct Link {
    pub(super) node: String,
    outbox: mpsc::UnboundedSender<String>,
}

impl Link {
    pub fn start(pool: sqlx::PgPool) -> Link {
        let (outbox, mut queue) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            let mut payloads = Vec::new();
            // Whatever queued up meanwhile goes in one statement, in order.
            while queue.recv_many(&mut payloads, NOTIFY_BATCH).await > 0 {
                let sent = sqlx::query("SELECT pg_notify($1, payload) FROM unnest($2::text[]) WITH ORDINALITY AS p(payload, n) ORDER BY n")
                    .bind(CHANNEL)
                    .bind(&payloads)
                    .execute(&pool)
                    .await;
                if let Err(err) = sent {
                    // Other processes find the events at their next poll.
                    tracing::warn!(error.detail = %err, "NOTIFY failed");
                }
                payloads.clear();
            }
        });
        Link {
            node: random_secret(9),
            outbox,
        }
    }

    fn send(&self, wire: Wire<&Record>) {
        if let Ok(payload) = serde_json::to_string(&wire) {
            let _ = self.outbox.send(payload);
        }
    }

    pub fn committed(&self, cursor: Cursor) {
        self.send(Wire {
            o: self.node.clone(),
            c: Some(cursor.encode()),
            e: None,
        });
    }

    pub fn ephemeral(&self, record: &Record) {
        self.send(Wire {
            o: self.node.clone(),
            c: None,
            e: Some(record),
        });
    }
}

/// What the listener heard from other processes.
pub enum Heard {
    /// Events up to this cursor committed.
    Committed(Cursor),
    /// An event, delivered with its notification.
    Record(Arc<Record>),
    /// The connection dropped or failed: whatever was notified meanwhile is in the
    /// log, and should be looked for now.
    Lost,
}

/// Listen on `pool` for other processes' notifications (not those of `node`, this
/// process), telling `hear` of each, for as long as `hear` answers `true`.
pub async fn listen(
    pool: sqlx::PgPool,
    node: String,
    hear: impl Fn(Heard) -> bool + Send + 'static,
) -> AppResult<()> {
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    tokio::spawn(async move {
        loop {
            let listening = match listener.try_recv().await {
                Ok(Some(notification)) => {
                    let Ok(wire) = serde_json::from_str::<Wire<Record>>(notification.payload())
                    else {
                        tracing::warn!("ignoring a malformed event notification");
                        continue;
                    };
                    if wire.o == node {
                        continue;
                    }
                    let mut listening = true;
                    if let Some(cursor) = wire.c.as_deref().and_then(Cursor::parse) {
                        listening = hear(Heard::Committed(cursor));
                    }
                    if let Some(record) = wire.e {
                        listening = hear(Heard::Record(Arc::new(record)));
                    }
                    listening
                }
                // The connection dropped; the next call reconnects.
                Ok(None) => hear(Heard::Lost),
                Err(err) => {
                    tracing::warn!(error.detail = %err, "event listener failed; retrying");
                    let listening = hear(Heard::Lost);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    listening
                }
            };
            if !listening {
                return;
            }
        }
    });
    Ok(())
}
