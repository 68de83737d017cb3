//! Accepts of one handoff racing in this process: the first runs, the others wait
//! for it and lose to it without a statement (see `handoff::accept::accept`).

use tokio::sync::watch;

use super::Core;
use crate::entity::{HandoffStatus, handoff};

/// Accept attempts running in this process, by handoff id, each with the handoff
/// it accepted once it did; and, where this process sees every change (SQLite: one
/// server owns the file), the handoffs accepted since, so that late racers lose
/// without a statement. Every handoff change this process commits updates it.
#[derive(Default)]
pub struct AcceptsInFlight(std::sync::Mutex<Accepts>);

#[derive(Default)]
struct Accepts {
    running: std::collections::HashMap<String, watch::Receiver<Option<handoff::Model>>>,
    accepted: std::collections::HashMap<String, handoff::Model>,
}

/// Accepted handoffs remembered at most; past that the memory starts over.
const ACCEPTED_KEPT: usize = 10_000;

/// Joining the accepts of a handoff: run the first attempt, wait for the one
/// running, or lose to the one that won.
pub enum Flight {
    First(FirstAttempt),
    Running(watch::Receiver<Option<handoff::Model>>),
    Taken(Box<handoff::Model>),
}

/// The first attempt at a handoff; its entry goes when it does, won or not
/// (a cancelled request included).
pub struct FirstAttempt {
    core: Core,
    id: String,
    outcome: watch::Sender<Option<handoff::Model>>,
}

impl FirstAttempt {
    pub fn won(self, handoff: handoff::Model) {
        self.outcome.send_replace(Some(handoff));
    }
}

impl Drop for FirstAttempt {
    fn drop(&mut self) {
        self.core.accepts.lock().running.remove(&self.id);
    }
}

impl AcceptsInFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, Accepts> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn join(&self, core: &Core, id: &str) -> Flight {
        let mut accepts = self.lock();
        let sees_every_change = core.db.pg_pool.is_none();
        if let Some(won) = accepts.accepted.get(id).filter(|_| sees_every_change) {
            return Flight::Taken(Box::new(won.clone()));
        }
        if let Some(outcome) = accepts.running.get(id) {
            return Flight::Running(outcome.clone());
        }
        let (outcome, watcher) = watch::channel(None);
        accepts.running.insert(id.to_owned(), watcher);
        Flight::First(FirstAttempt {
            core: core.clone(),
            id: id.to_owned(),
            outcome,
        })
    }

    /// A handoff changed (committed, about to be delivered).
    pub fn changed(&self, handoff: &handoff::Model) {
        let mut accepts = self.lock();
        if handoff.status == HandoffStatus::Accepted {
            if accepts.accepted.len() >= ACCEPTED_KEPT {
                accepts.accepted.clear();
            }
            accepts.accepted.insert(handoff.id.clone(), handoff.clone());
        } else {
            accepts.accepted.remove(&handoff.id);
        }
    }
}
