//! The transport's state: the domain's [`Core`] and what only the transport knows
//! (parsed documents, sockets that close on revocation, subscriptions shared by
//! many sockets, connection counts).
//!
//! It dereferences to [`Core`], so transport code reads the database or the config
//! through it, and hands `&state` to domain functions that take `&Core`.

use std::sync::Arc;

use crate::domain::Core;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub core: Core,
    /// Parsed GraphQL documents by query text.
    pub documents: crate::graphql::limits::DocumentCache,
    /// Sockets that close when their principal's access is revoked (see
    /// `crate::ws`).
    pub sessions: crate::ws::Sessions,
    /// Subscriptions executed once for many connections (see `crate::ws`).
    pub shared_operations: crate::ws::SharedOperations,
    /// Open connections, and WebSockets by client address (see `crate::net`).
    pub net: crate::net::Connections,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::ops::Deref for Inner {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl AppState {
    /// The transport's state over `core`.
    pub fn new(core: Core) -> AppState {
        AppState(Arc::new(Inner {
            core,
            documents: Default::default(),
            sessions: Default::default(),
            shared_operations: Default::default(),
            net: Default::default(),
        }))
    }
}
