//! Closing the sockets of a principal that lost access: a revoked API key, a
//! deactivated agent, an agent's older tokens after a password change.
//!
//! Each socket of an agent or an API key registers here with a cancellation token.
//! One watcher per workspace (started with its first registered socket) reads the
//! workspace's events, where revocations arrive from this process and, through the
//! PostgreSQL bus, from every other one, and cancels the matching sockets' tokens:
//! they close with 4403 within moments, without one subscription per socket.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::Hub;
use crate::auth::Principal;
use crate::domain::core::feed::{self, EventKind};
use crate::events::Topic;

/// The sockets that can be revoked, by subject (agent or key id).
#[derive(Default)]
pub struct Sessions(Mutex<Inner>);

#[derive(Default)]
struct Inner {
    by_subject: HashMap<String, Vec<Session>>,
    /// Workspaces with a watcher.
    watched: HashSet<String>,
    next_id: u64,
}

struct Session {
    id: u64,
    /// The token generation of an agent's socket (0 for keys).
    generation: i32,
    revoked: CancellationToken,
}

/// A socket's registration; dropping it forgets the socket.
pub struct Registration {
    hub: Hub,
    subject: String,
    id: u64,
    pub revoked: CancellationToken,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self.hub.sessions().lock();
        if let Some(sessions) = inner.by_subject.get_mut(&self.subject) {
            sessions.retain(|session| session.id != self.id);
            if sessions.is_empty() {
                inner.by_subject.remove(&self.subject);
            }
        }
    }
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Register a socket of `principal` (agents and API keys; visitors' tokens
    /// cannot be revoked, they expire).
    pub fn register(hub: &Hub, principal: &Principal) -> Option<Registration> {
        let (subject, generation) = match principal {
            Principal::Agent(agent) => (agent.agent_id.clone(), agent.generation),
            Principal::ApiKey(key) => (key.key_id.clone(), 0),
            Principal::Visitor(_) => return None,
        };
        let revoked = CancellationToken::new();
        let workspace = principal.workspace_id().to_owned();
        let (id, start_watcher, first) = {
            let mut inner = hub.sessions().lock();
            inner.next_id += 1;
            let id = inner.next_id;
            let sessions = inner.by_subject.entry(subject.clone()).or_default();
            let first = sessions.is_empty();
            sessions.push(Session {
                id,
                generation,
                revoked: revoked.clone(),
            });
            (id, inner.watched.insert(workspace.clone()), first)
        };
        if start_watcher {
            hub.core().tasks.spawn(watch(hub.clone(), workspace));
        }
        if first && matches!(principal, Principal::Agent(_)) {
            crate::domain::tenancy::presence::opened(hub.core(), &subject);
        }
        Some(Registration {
            hub: hub.clone(),
            subject,
            id,
            revoked,
        })
    }

    /// The agents with a socket open on this process (for presence).
    pub fn open_agents(&self) -> Vec<String> {
        self.lock()
            .by_subject
            .keys()
            .filter(|subject| crate::ids::Kind::of(subject) == Some(crate::ids::Kind::Agent))
            .cloned()
            .collect()
    }

    /// Cancel the sockets of `subject`: all of them, or those of an older token
    /// generation than `below`.
    fn revoke(&self, subject: &str, below: Option<i32>) {
        let inner = self.lock();
        for session in inner.by_subject.get(subject).into_iter().flatten() {
            if below.is_none_or(|below| session.generation < below) {
                session.revoked.cancel();
            }
        }
    }
}

/// Read a workspace's events for revocations until shutdown.
async fn watch(hub: Hub, workspace: String) {
    let mut events = hub
        .core()
        .events
        .subscribe(Topic::Workspace(workspace.clone()));
    loop {
        let event = tokio::select! {
            () = hub.core().shutdown.cancelled() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(record) => {
                if record.kind != feed::ACCESS_REVOKED {
                    continue;
                }
                if let Some(event) = feed::decode(&record)
                    && let EventKind::AccessRevoked {
                        subject,
                        below_generation,
                    } = &event.kind
                {
                    hub.sessions().revoke(subject, *below_generation);
                }
            }
            // A lagging watcher may have missed a revocation; an agent's new
            // operations on a socket are checked against the agent again anyway.
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => {
                // The next socket of this workspace starts a new watcher.
                hub.sessions().lock().watched.remove(&workspace);
                return;
            }
        }
    }
}
