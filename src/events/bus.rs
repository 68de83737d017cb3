//! In-process fan-out: one bounded broadcast channel per topic.
//!
//! A topic's channel exists while it has subscribers. Publishing clones an `Arc`
//! into the ring buffer; a subscriber that falls more than [`TOPIC_CAPACITY`] events
//! behind loses the oldest and is told how many (`Lagged`), so a slow client costs
//! neither memory nor other subscribers' time: it catches up from the log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::Record;

/// Events a subscriber of one conversation may fall behind before it lags (and is
/// caught up from the log). Small: the ring is allocated whole when a conversation
/// gets its first subscriber (about 40 bytes a slot), and a widget's conversation
/// has one; at 512 slots it was two thirds of an idle subscribed connection's
/// memory, at 32 still ~1.2 KiB of ~14. One conversation's events come at a
/// person's pace (a visitor message and the AI's answer make about five), a lagging
/// subscriber reads what it missed from the database, and typing, the one kind a
/// lag loses, is ephemeral anyway.
pub const TOPIC_CAPACITY: usize = 8;

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
pub type Subscription = broadcast::Receiver<Arc<Record>>;

#[derive(Default)]
pub struct InProcessBus {
    topics: Mutex<HashMap<Topic, broadcast::Sender<Arc<Record>>>>,
}

impl InProcessBus {
    pub fn new() -> InProcessBus {
        InProcessBus::default()
    }

    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<Topic, broadcast::Sender<Arc<Record>>>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn send(
        &self,
        topics: &mut HashMap<Topic, broadcast::Sender<Arc<Record>>>,
        topic: Topic,
        event: &Arc<Record>,
    ) {
        if let Some(sender) = topics.get(&topic)
            && sender.send(Arc::clone(event)).is_err()
        {
            // Nobody listens any more: forget the channel.
            topics.remove(&topic);
        }
    }
}

impl InProcessBus {
    /// Deliver `record` to the subscribers of its conversation and its workspace.
    pub fn publish(&self, record: &Arc<Record>) {
        let mut topics = self.topics();
        if let Some(conversation) = &record.conversation_id {
            self.send(
                &mut topics,
                Topic::Conversation(conversation.clone()),
                record,
            );
        }
        self.send(
            &mut topics,
            Topic::Workspace(record.workspace_id.clone()),
            record,
        );
    }

    /// Receive the records of `topic` from now on.
    pub fn subscribe(&self, topic: Topic) -> Subscription {
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
    use crate::events::NewRecord;

    fn typing(conversation: &str) -> Arc<Record> {
        Arc::new(Record::new(
            None,
            NewRecord {
                id: "evt_1".into(),
                workspace_id: "ws_1".into(),
                conversation_id: Some(conversation.into()),
                kind: "TYPING".into(),
                subject_id: None,
                occurred_at: 0,
                payload: "{}".into(),
            },
        ))
    }

    #[tokio::test]
    async fn subscribers_get_only_their_topic() {
        let bus = InProcessBus::new();
        let mut mine = bus.subscribe(Topic::Conversation("conv_a".into()));
        let mut workspace = bus.subscribe(Topic::Workspace("ws_1".into()));
        bus.publish(&typing("conv_b"));
        bus.publish(&typing("conv_a"));
        assert_eq!(
            mine.recv().await.expect("event").conversation_id.as_deref(),
            Some("conv_a")
        );
        assert_eq!(
            workspace
                .recv()
                .await
                .expect("event")
                .conversation_id
                .as_deref(),
            Some("conv_b")
        );
        assert_eq!(
            workspace
                .recv()
                .await
                .expect("event")
                .conversation_id
                .as_deref(),
            Some("conv_a")
        );
    }

    #[tokio::test]
    async fn a_slow_subscriber_lags_instead_of_growing() {
        let bus = InProcessBus::new();
        let mut slow = bus.subscribe(Topic::Conversation("conv_a".into()));
        for _ in 0..TOPIC_CAPACITY + 10 {
            bus.publish(&typing("conv_a"));
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
            bus.publish(&typing("conv_a"));
        }
        assert!(
            inbox.recv().await.is_ok(),
            "no lag below the workspace capacity"
        );
        for _ in 0..WORKSPACE_CAPACITY {
            bus.publish(&typing("conv_a"));
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
        bus.publish(&typing("conv_a"));
        assert!(bus.topics().is_empty());
    }
}
