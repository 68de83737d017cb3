//! The order of a conversation's visitor messages: one handled at a time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// One lock per conversation with a pipeline running, so a conversation's messages
/// are handled in order; and a count of pipelines not yet finished.
#[derive(Default)]
pub struct ConversationLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    running: AtomicUsize,
}

impl ConversationLocks {
    /// How many visitor messages are still being handled (tests wait for 0).
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// A visitor message's handling started.
    pub fn started(&self) {
        self.running.fetch_add(1, Ordering::SeqCst);
    }

    /// A visitor message's handling ended, however it did.
    pub fn finished(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    /// The lock of `conversation_id`'s pipeline.
    pub fn of(&self, conversation_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.retain(|_, lock| lock.strong_count() > 0);
        if let Some(lock) = map.get(conversation_id).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(conversation_id.to_owned(), Arc::downgrade(&lock));
        lock
    }
}
