//! The event bus: writes commit, then publish an [`Event`]; subscriptions listen to
//! topics (one conversation, or one workspace).
//!
//! Events carry the committed rows (shared, not copied, between subscribers) or, for
//! typing, the whole of what happened; subscribers never invent state. Two
//! implementations sit behind [`EventBus`]: [`InProcessBus`] for one server, and
//! [`PgBus`], which also sends each event's ids through PostgreSQL `NOTIFY` so that
//! every process sharing the database delivers it. A subscriber that misses events
//! (its buffer overflowed, or a listener connection dropped) is told so with
//! [`EventKind::Resync`] or a lag, and catches up from the database.

mod bus;
mod pg;

use std::sync::Arc;

use crate::domain::case_file::CaseFile;
use tokio::sync::OnceCell;

use crate::entity::{Author, agent, conversation, handoff, message, team};

pub use bus::{InProcessBus, Subscription, Topic};
pub use pg::PgBus;

/// Something that changed, published after the change committed.
#[derive(Clone, Debug)]
pub struct Event {
    pub workspace_id: String,
    pub conversation_id: String,
    pub kind: EventKind,
}

#[derive(Clone, Debug)]
pub enum EventKind {
    /// A message was stored; the conversation as it was right after.
    MessageCreated {
        message: Arc<message::Model>,
        conversation: Arc<conversation::Model>,
    },
    /// A conversation was opened or changed; the conversation right after.
    ConversationChanged {
        conversation: Arc<conversation::Model>,
        change: Change,
    },
    /// A handoff was requested, accepted, transferred, resolved or cancelled; the
    /// handoff and its conversation right after.
    HandoffChanged {
        handoff: Arc<handoff::Model>,
        conversation: Arc<conversation::Model>,
        /// What its subscribers resolve, built by the first that asks.
        resolved: Arc<HandoffResolved>,
    },
    /// Someone started or stopped typing (not stored).
    Typing {
        author: Author,
        agent_id: Option<String>,
        typing: bool,
        /// Typing an internal note: never shown to the visitor.
        internal: bool,
    },
    /// Events for this topic may have been missed (a dropped listener connection):
    /// catch up from the database.
    /// An agent (deactivated, or a password change: then only tokens below
    /// `below_generation`) or an API key (revoked) lost access: its sockets close.
    AccessRevoked {
        subject: String,
        below_generation: Option<i32>,
    },
    Resync,
}

/// What the subscribers of one handoff event look up about it: loaded by the first
/// subscriber that asks and shared by the others, so an escalation to 200 agents
/// reads its team and builds its case file once, not 200 times. As of the event,
/// like the rows the event carries.
#[derive(Debug, Default)]
pub struct HandoffResolved {
    pub case_file: OnceCell<Arc<CaseFile>>,
    pub team: OnceCell<Option<team::Model>>,
    pub accepted_by: OnceCell<Option<agent::Model>>,
}

/// What about a conversation changed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Change {
    Opened,
    Status,
    Assigned,
    Tagged { tag_id: String },
    Untagged { tag_id: String },
    Lead,
}

impl Event {
    pub fn message_created(message: message::Model, conversation: conversation::Model) -> Event {
        Event {
            workspace_id: message.workspace_id.clone(),
            conversation_id: message.conversation_id.clone(),
            kind: EventKind::MessageCreated {
                message: Arc::new(message),
                conversation: Arc::new(conversation),
            },
        }
    }

    pub fn conversation_changed(conversation: conversation::Model, change: Change) -> Event {
        Event {
            workspace_id: conversation.workspace_id.clone(),
            conversation_id: conversation.id.clone(),
            kind: EventKind::ConversationChanged {
                conversation: Arc::new(conversation),
                change,
            },
        }
    }

    pub fn handoff_changed(handoff: handoff::Model, conversation: conversation::Model) -> Event {
        Event {
            workspace_id: conversation.workspace_id.clone(),
            conversation_id: conversation.id.clone(),
            kind: EventKind::HandoffChanged {
                handoff: Arc::new(handoff),
                conversation: Arc::new(conversation),
                resolved: Arc::default(),
            },
        }
    }

    /// The conversation as of this event, when the event carries it.
    pub fn conversation(&self) -> Option<&Arc<conversation::Model>> {
        match &self.kind {
            EventKind::MessageCreated { conversation, .. }
            | EventKind::ConversationChanged { conversation, .. }
            | EventKind::HandoffChanged { conversation, .. } => Some(conversation),
            EventKind::Typing { .. } | EventKind::Resync | EventKind::AccessRevoked { .. } => None,
        }
    }

    /// `subject` (an agent or API key id) of `workspace_id` lost access.
    pub fn access_revoked(
        workspace_id: &str,
        subject: &str,
        below_generation: Option<i32>,
    ) -> Event {
        Event {
            workspace_id: workspace_id.to_owned(),
            conversation_id: String::new(),
            kind: EventKind::AccessRevoked {
                subject: subject.to_owned(),
                below_generation,
            },
        }
    }
}

/// Where events go after a commit, and where subscriptions get them.
pub trait EventBus: Send + Sync {
    /// Deliver `event` to every subscriber of its conversation and workspace, on
    /// every process. Call only after the change committed. Never blocks.
    fn publish(&self, event: Event);

    /// Receive the events of `topic` from now on.
    fn subscribe(&self, topic: Topic) -> Subscription;
}
