//! Recently read rows that every signed-in request asks for and that change rarely
//! (who the agent is, its teams, its workspace), kept for a few seconds.
//!
//! A change made by this process replaces or forgets its entry at once; another
//! process sharing the database may serve the old row for up to its time to live
//! ([`TTL`], one second for agents). Besides what is shown, only the token check
//! reads from here (an agent's activity, token generation and role, at most a second
//! old); other decisions (the handoff policy, the responder switch, a handoff's
//! routing) always read the database.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// How long an entry is served.
pub const TTL: Duration = Duration::from_secs(5);

/// Entries kept at most; past that the cache starts over.
const CAPACITY: usize = 10_000;

/// Values by id, each served for its time to live ([`TTL`] unless told) after it
/// was read.
pub struct Recent<V>(RwLock<HashMap<String, (Instant, V)>>, Duration);

impl<V> Default for Recent<V> {
    fn default() -> Self {
        Recent::with_ttl(TTL)
    }
}

impl<V> Recent<V> {
    /// Entries served for `ttl`.
    pub fn with_ttl(ttl: Duration) -> Self {
        Recent(RwLock::default(), ttl)
    }
}

impl<V: Clone> Recent<V> {
    pub fn get(&self, id: &str) -> Option<V> {
        let map = self
            .0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(id)
            .filter(|(at, _)| at.elapsed() < self.1)
            .map(|(_, value)| value.clone())
    }

    /// `f` of the entry of `id`, if it is fresh, without copying the entry.
    pub fn read<R>(&self, id: &str, f: impl FnOnce(&V) -> R) -> Option<R> {
        let map = self
            .0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(id)
            .filter(|(at, _)| at.elapsed() < self.1)
            .map(|(_, value)| f(value))
    }

    pub fn put(&self, id: String, value: V) {
        let mut map = self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(id, (Instant::now(), value));
    }

    /// Forget the entry of `id` (it changed).
    pub fn forget(&self, id: &str) {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(id);
    }

    /// Forget everything (a change that may touch many entries).
    pub fn clear(&self) {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_served_until_replaced_or_cleared() {
        let cache = Recent::default();
        assert_eq!(cache.get("a"), None);
        cache.put("a".to_owned(), 1);
        assert_eq!(cache.get("a"), Some(1));
        cache.put("a".to_owned(), 2);
        assert_eq!(cache.get("a"), Some(2));
        cache.clear();
        assert_eq!(cache.get("a"), None);
    }

    #[test]
    fn expired_entries_are_not_served() {
        let cache = Recent::default();
        cache.0.write().expect("not poisoned").insert(
            "old".to_owned(),
            (Instant::now() - TTL - Duration::from_millis(1), 1),
        );
        assert_eq!(cache.get("old"), None);
    }
}
