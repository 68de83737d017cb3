//! `totalCount` of conversation lists, kept until their workspace changes.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long a count is served at most, for the changes that are not events
/// (deleting a tag, a team or an agent).
const COUNT_TTL: Duration = Duration::from_secs(2);

/// Workspaces, and lists of one workspace, kept at most (past that the cache, or
/// the workspace's part of it, starts over).
const COUNT_CAPACITY: usize = 4_096;

/// `totalCount` of conversation lists, per workspace and filter: counting a list
/// reads every conversation it holds (a tenth of a millisecond per thousand), so an
/// inbox of 100,000 would spend more on its count than on its page. A count is
/// served while its workspace's *generation* is the one it was counted at. This
/// process moves the generation as it commits any event of the workspace (before
/// the writer is answered, so no page asked for after a write's response counts
/// from before it) and as the log brings other processes' events (within the log's
/// delivery delay); `COUNT_TTL` bounds the rest.
#[derive(Default)]
pub struct ListCounts {
    generations: RwLock<HashMap<String, u64>>,
    /// By workspace, then the list's key (its filter, spelled out).
    counts: Mutex<HashMap<String, HashMap<String, Counted>>>,
}

/// A count, with the generation and time it was counted at.
struct Counted {
    generation: u64,
    at: Instant,
    n: u64,
}

impl ListCounts {
    pub fn generation(&self, workspace_id: &str) -> u64 {
        let generations = self
            .generations
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        generations.get(workspace_id).copied().unwrap_or(0)
    }

    /// The conversations of `workspace_id` changed.
    pub fn changed(&self, workspace_id: &str) {
        let mut generations = self
            .generations
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match generations.get_mut(workspace_id) {
            Some(generation) => *generation += 1,
            None => {
                generations.insert(workspace_id.to_owned(), 1);
            }
        }
    }

    pub fn get(&self, workspace_id: &str, list: &str, generation: u64) -> Option<u64> {
        let counts = self
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        counts
            .get(workspace_id)?
            .get(list)
            .filter(|c| c.generation == generation && c.at.elapsed() < COUNT_TTL)
            .map(|c| c.n)
    }

    pub fn put(&self, workspace_id: &str, list: String, generation: u64, n: u64) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if counts.len() >= COUNT_CAPACITY {
            counts.clear();
        }
        let lists = counts.entry(workspace_id.to_owned()).or_default();
        if lists.len() >= COUNT_CAPACITY {
            lists.clear();
        }
        let counted = Counted {
            generation,
            at: Instant::now(),
            n,
        };
        lists.insert(list, counted);
    }
}
