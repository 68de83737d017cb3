//! The event bus seam: writes commit, then publish an [`Event`] here.
//!
//! Events carry ids and enough to route them (workspace, conversation, visibility);
//! subscribers load what they deliver from the database, so an event never invents
//! state, and a subscriber that misses events catches up from the database.

use tokio::sync::broadcast;

/// Something that changed, published after the change committed.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A message was stored.
    MessageCreated {
        workspace_id: String,
        conversation_id: String,
        message_id: String,
        seq: i64,
        internal: bool,
    },
    /// A conversation was opened, or its status, assignee, team or tags changed.
    ConversationChanged {
        workspace_id: String,
        conversation_id: String,
        change: Change,
    },
}

/// What about a conversation changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Opened,
    Status,
    Assigned,
    Tagged { tag_id: String },
    Untagged { tag_id: String },
    Lead,
}

impl Event {
    pub fn workspace_id(&self) -> &str {
        match self {
            Event::MessageCreated { workspace_id, .. }
            | Event::ConversationChanged { workspace_id, .. } => workspace_id,
        }
    }
}

/// In-process fan-out over a tokio broadcast channel.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
}

impl EventBus {
    pub fn new(capacity: usize) -> EventBus {
        EventBus {
            sender: broadcast::channel(capacity).0,
        }
    }

    /// Deliver `event` to current subscribers. Call only after the write committed.
    pub fn publish(&self, event: Event) {
        // No subscriber is not an error: the event is also in the database.
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}
