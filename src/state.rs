//! The transport's state: the domain's [`Core`] and what only the transport knows:
//! the GraphQL service (the schema and its parsed documents), what the sockets
//! share (see `crate::ws::Hub`), and the connection counts (see `crate::net`).
//!
//! It dereferences to [`Core`], so transport code reads the database or the config
//! through it, and hands `&state` to domain functions that take `&Core`.

use std::sync::Arc;

use crate::domain::Core;
use crate::graphql::Api;
use crate::net::Connections;
use crate::ws::Hub;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub core: Core,
    /// The schema and its parsed documents, as HTTP and WebSocket serve them.
    pub api: Api,
    /// What the WebSockets share: the sockets that close on revocation and the
    /// subscriptions executed once for many sockets.
    pub sockets: Hub,
    /// Open connections, and WebSockets by client address.
    pub connections: Arc<Connections>,
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
        let api = Api::new(core.clone());
        AppState(Arc::new(Inner {
            connections: Arc::new(Connections::new(&core.config.limits)),
            sockets: Hub::new(api.clone()),
            api,
            core,
        }))
    }
}
