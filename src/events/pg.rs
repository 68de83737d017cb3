//! Fan-out across processes through PostgreSQL `LISTEN`/`NOTIFY`.
//!
//! Each event is delivered to this process's subscribers at once, and its ids are
//! sent with `NOTIFY` (from a queue, so publishing never waits on the network).
//! Every process listens; it skips what it sent itself, loads the rows the ids name
//! once, and delivers them to its own subscribers. When the listening connection
//! drops, notifications sent meanwhile are lost: every local subscriber is then
//! told to resync from the database.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use sea_orm::EntityTrait;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use super::{Change, Event, EventBus, EventKind, InProcessBus, Subscription, Topic};
use crate::db::Db;
use crate::entity::{Author, conversation, handoff, message};
use crate::error::{AppError, AppResult};
use crate::ids::random_secret;

/// The `NOTIFY` channel.
const CHANNEL: &str = "casefile_events";

/// Events sent with one `NOTIFY` statement at most.
const NOTIFY_BATCH: usize = 256;

/// Notified events being loaded at once, at most.
const HYDRATING: usize = 64;

/// What crosses between processes: ids, and the whole of ephemeral events.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    /// The process that published it.
    o: String,
    w: String,
    c: String,
    #[serde(flatten)]
    kind: WireKind,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "k")]
enum WireKind {
    #[serde(rename = "m")]
    Message { id: String },
    #[serde(rename = "c")]
    Changed { change: Change },
    #[serde(rename = "h")]
    Handoff { id: String },
    #[serde(rename = "t")]
    Typing {
        author: Author,
        agent: Option<String>,
        typing: bool,
        internal: bool,
    },
    #[serde(rename = "r")]
    Revoked { subject: String, below: Option<i32> },
}

pub struct PgBus {
    local: Arc<InProcessBus>,
    node: String,
    outbox: mpsc::UnboundedSender<String>,
}

impl PgBus {
    /// Start listening on the database of `db` (which must be PostgreSQL).
    pub async fn start(db: &Db) -> AppResult<PgBus> {
        let pool = db
            .pg_pool
            .clone()
            .ok_or_else(|| AppError::internal("PgBus needs PostgreSQL"))?;
        let local = Arc::new(InProcessBus::new());
        let node = random_secret(9);
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        tokio::spawn(listen(
            listener,
            db.clone(),
            Arc::clone(&local),
            node.clone(),
        ));

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
                    // Other processes miss these events; their subscribers catch up
                    // at the next event of the same conversation.
                    tracing::warn!(error.detail = %err, "NOTIFY failed");
                }
                payloads.clear();
            }
        });
        Ok(PgBus {
            local,
            node,
            outbox,
        })
    }

    fn wire(&self, event: &Event) -> Option<Wire> {
        let kind = match &event.kind {
            EventKind::MessageCreated { message, .. } => WireKind::Message {
                id: message.id.clone(),
            },
            EventKind::ConversationChanged { change, .. } => WireKind::Changed {
                change: change.clone(),
            },
            EventKind::HandoffChanged { handoff, .. } => WireKind::Handoff {
                id: handoff.id.clone(),
            },
            EventKind::Typing {
                author,
                agent_id,
                typing,
                internal,
            } => WireKind::Typing {
                author: *author,
                agent: agent_id.clone(),
                typing: *typing,
                internal: *internal,
            },
            EventKind::AccessRevoked {
                subject,
                below_generation,
            } => WireKind::Revoked {
                subject: subject.clone(),
                below: *below_generation,
            },
            EventKind::Resync => return None,
        };
        Some(Wire {
            o: self.node.clone(),
            w: event.workspace_id.clone(),
            c: event.conversation_id.clone(),
            kind,
        })
    }
}

impl EventBus for PgBus {
    fn publish(&self, event: Event) {
        if let Some(payload) = self
            .wire(&event)
            .and_then(|w| serde_json::to_string(&w).ok())
        {
            let _ = self.outbox.send(payload);
        }
        self.local.publish(event);
    }

    fn subscribe(&self, topic: Topic) -> Subscription {
        self.local.subscribe(topic)
    }
}

/// What the receiving task hands on.
enum Received {
    Event(Wire),
    /// The connection dropped: notifications may have been lost.
    Lost,
}

/// Receive notifications on their own task (reading the connection must not be
/// interrupted), and load the rows they name several at a time, delivering the
/// events in the order they were sent: at 500 messages a second, loading them one
/// after the other would queue.
async fn listen(listener: PgListener, db: Db, local: Arc<InProcessBus>, node: String) {
    let (received, mut incoming) = mpsc::channel(1024);
    tokio::spawn(receive(listener, received, node));
    let mut hydrating = futures_util::stream::FuturesOrdered::new();
    loop {
        tokio::select! {
            Some(hydrated) = hydrating.next(), if !hydrating.is_empty() => match hydrated {
                Ok(Some(event)) => local.publish(event),
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(error.detail = ?err, "could not load a notified event");
                    local.resync_all();
                }
            },
            next = incoming.recv(), if hydrating.len() < HYDRATING => match next {
                Some(Received::Event(wire)) => hydrating.push_back(hydrate(&db, wire)),
                Some(Received::Lost) => local.resync_all(),
                None => return,
            },
        }
    }
}

async fn receive(mut listener: PgListener, received: mpsc::Sender<Received>, node: String) {
    loop {
        let next = match listener.try_recv().await {
            Ok(Some(notification)) => {
                let Ok(wire) = serde_json::from_str::<Wire>(notification.payload()) else {
                    tracing::warn!("ignoring a malformed event notification");
                    continue;
                };
                if wire.o == node {
                    continue;
                }
                Received::Event(wire)
            }
            // The connection dropped; the next call reconnects. Whatever was sent
            // in between is lost, so everyone catches up from the database.
            Ok(None) => Received::Lost,
            Err(err) => {
                tracing::warn!(error.detail = %err, "event listener failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                Received::Lost
            }
        };
        if received.send(next).await.is_err() {
            return;
        }
    }
}

/// The event a notification stands for, with the rows it names loaded.
async fn hydrate(db: &Db, wire: Wire) -> AppResult<Option<Event>> {
    let conversation = || async {
        conversation::Entity::find_by_id(wire.c.as_str())
            .one(&db.reader)
            .await
    };
    let event = match wire.kind {
        WireKind::Message { id } => {
            let message = message::Entity::find_by_id(id).one(&db.reader);
            let (Some(message), Some(conversation)) = tokio::try_join!(message, conversation())?
            else {
                return Ok(None);
            };
            Event::message_created(message, conversation)
        }
        WireKind::Handoff { id } => {
            let handoff = handoff::Entity::find_by_id(id).one(&db.reader);
            let (Some(handoff), Some(conversation)) = tokio::try_join!(handoff, conversation())?
            else {
                return Ok(None);
            };
            Event::handoff_changed(handoff, conversation)
        }
        WireKind::Changed { change } => {
            let Some(conversation) = conversation().await? else {
                return Ok(None);
            };
            Event::conversation_changed(conversation, change)
        }
        WireKind::Typing {
            author,
            agent,
            typing,
            internal,
        } => Event {
            workspace_id: wire.w,
            conversation_id: wire.c,
            kind: EventKind::Typing {
                author,
                agent_id: agent,
                typing,
                internal,
            },
        },
        WireKind::Revoked { subject, below } => Event::access_revoked(&wire.w, &subject, below),
    };
    Ok(Some(event))
}
