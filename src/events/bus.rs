//! In-process fan-out: one bounded broadcast channel per topic.
//!
//! A topic's channel exists while it has subscribers. Publishing clones an `Arc`
//! into the ring buffer; a subscriber that falls more than [`TOPIC_CAPACITY`] events
//! behind loses the oldest and is told how many (`Lagged`), so a slow client costs
//! neither memory nor other subscribers' time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::{Event, EventBus, EventKind};

/// Events a subscriber of one conversation may fall behind before it lags.
pub const TOPIC_CAPACITY: usize = 512;

/// The same for a workspace's subscribers (inboxes, escalations): every
/// conversation's events pass through them, and a handoff storm (each request and
/// accept makes three or four events) must not make them lag.
pub const WORKSPACE_CAPACITY: usize = 8192;

/// What a subscription listens to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Everything about one conversation.
    Conversation(String),
    /// Everything in one workspace (for inboxes and escalations).
    Workspace(String),
}

/// A stream of events of one topic.
pub type Subscription = broadcast::Receiver<Arc<Event>>;

#[derive(Default)]
pub struct InProcessBus {
    topics: Mutex<HashMap<Topic, broadcast::Sender<Arc<Event>>>>,
}

impl InProcessBus {
    pub fn new() -> InProcessBus {
        InProcessBus::default()
    }

    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<Topic, broadcast::Sender<Arc<Event>>>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn send(
        &self,
        topics: &mut HashMap<Topic, broadcast::Sender<Arc<Event>>>,
        topic: Topic,
        event: &Arc<Event>,
    ) {
        if let Some(sender) = topics.get(&topic)
            && sender.send(Arc::clone(event)).is_err()
        {
            // Nobody listens any more: forget the channel.
            topics.remove(&topic);
        }
    }

    /// Tell every subscriber of every topic that it may have missed events.
    pub fn resync_all(&self) {
        let mut topics = self.topics();
        topics.retain(|topic, sender| {
            let (workspace_id, conversation_id) = match topic {
                Topic::Conversation(id) => (String::new(), id.clone()),
                Topic::Workspace(id) => (id.clone(), String::new()),
            };
            let event = Event {
                workspace_id,
                conversation_id,
                kind: EventKind::Resync,
            };
            sender.send(Arc::new(event)).is_ok()
        });
    }
}

impl EventBus for InProcessBus {
    fn publish(&self, event: Event) {
        let conversation = Topic::Conversation(event.conversation_id.clone());
        let workspace = Topic::Workspace(event.workspace_id.clone());
        let event = Arc::new(event);
        let mut topics = self.topics();
        self.send(&mut topics, conversation, &event);
        self.send(&mut topics, workspace, &event);
    }

    fn subscribe(&self, topic: Topic) -> Subscription {
        let capacity = match topic {
            Topic::Conversation(_) => TOPIC_CAPACITY,
            Topic::Workspace(_) => WORKSPACE_CAPACITY,
        };
        self.topics()
            .entry(topic)
            .or_insert_with(|| broadcast::channel(capacity).0)
            .subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::Author;

    fn typing(conversation: &str) -> Event {
        Event {
            workspace_id: "ws_1".into(),
            conversation_id: conversation.into(),
            kind: EventKind::Typing {
                author: Author::Visitor,
                agent_id: None,
                typing: true,
                internal: false,
            },
        }
    }

    #[tokio::test]
    async fn subscribers_get_only_their_topic() {
        let bus = InProcessBus::new();
        let mut mine = bus.subscribe(Topic::Conversation("conv_a".into()));
        let mut workspace = bus.subscribe(Topic::Workspace("ws_1".into()));
        bus.publish(typing("conv_b"));
        bus.publish(typing("conv_a"));
        assert_eq!(mine.recv().await.expect("event").conversation_id, "conv_a");
        assert_eq!(
            workspace.recv().await.expect("event").conversation_id,
            "conv_b"
        );
        assert_eq!(
            workspace.recv().await.expect("event").conversation_id,
            "conv_a"
        );
    }

    #[tokio::test]
    async fn a_slow_subscriber_lags_instead_of_growing() {
        let bus = InProcessBus::new();
        let mut slow = bus.subscribe(Topic::Conversation("conv_a".into()));
        for _ in 0..TOPIC_CAPACITY + 10 {
            bus.publish(typing("conv_a"));
        }
        assert!(matches!(
            slow.recv().await,
            Err(broadcast::error::RecvError::Lagged(10))
        ));
    }

    #[tokio::test]
    async fn a_workspace_subscriber_has_room_for_a_storm() {
        let bus = InProcessBus::new();
        let mut inbox = bus.subscribe(Topic::Workspace("ws_1".into()));
        for _ in 0..TOPIC_CAPACITY + 10 {
            bus.publish(typing("conv_a"));
        }
        assert!(
            inbox.recv().await.is_ok(),
            "no lag below the workspace capacity"
        );
        for _ in 0..WORKSPACE_CAPACITY {
            bus.publish(typing("conv_a"));
        }
        assert!(matches!(
            inbox.recv().await,
            Err(broadcast::error::RecvError::Lagged(_))
        ));
    }

    #[test]
    fn topics_without_subscribers_are_forgotten() {
        let bus = InProcessBus::new();
        drop(bus.subscribe(Topic::Conversation("conv_a".into())));
        bus.publish(typing("conv_a"));
        assert!(bus.topics().is_empty());
    }
}
