//! The GraphQL schema: one module per domain, merged into `Query` and `Mutation`
//! here, with the request limits and the typed accessors resolvers use.

pub mod agents;
pub mod audit;
pub mod conversation_events;
pub mod conversations;
pub mod cost;
pub mod events;
pub mod handoffs;
pub mod hours;
pub mod inbox;
pub mod inline;
pub mod insights;
pub mod knowledge;
pub mod leads;
pub mod limits;
pub mod live;
pub mod loaders;
pub mod messages;
pub mod node;
pub mod pagination;
pub mod preview;
pub mod response;
pub mod settings;
pub mod tags;
pub mod variables;
pub mod webhooks;
pub mod workspaces;

use async_graphql::{Context, MergedObject, Schema};

use crate::auth::Principal;
use crate::config::limits::MAX_DEPTH;
use crate::domain::Core;
use crate::error::{AppError, AppResult};
use crate::graphql::loaders::{LazyLoaders, Loaders};

#[derive(MergedObject, Default)]
pub struct Query(
    workspaces::WorkspaceQuery,
    agents::AgentQuery,
    conversations::ConversationQuery,
    leads::LeadQuery,
    tags::TagQuery,
    node::NodeQuery,
    handoffs::HandoffQuery,
    knowledge::KnowledgeQuery,
    preview::PreviewQuery,
    settings::SettingsQuery,
    insights::InsightsQuery,
    events::EventQuery,
    webhooks::WebhookQuery,
    audit::AuditQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    agents::AgentMutation,
    conversations::ConversationMutation,
    messages::MessageMutation,
    leads::LeadMutation,
    tags::TagMutation,
    live::LiveMutation,
    handoffs::HandoffMutation,
    knowledge::KnowledgeMutation,
    settings::SettingsMutation,
    insights::InsightsMutation,
    webhooks::WebhookMutation,
);

pub type AppSchema = Schema<Query, Mutation, live::LiveSubscription>;

/// The schema, serving `core` (or, without one, only good for printing the SDL).
fn schema(core: Option<Core>) -> AppSchema {
    // No extensions: `inline::Inline` objects would skip their per-field hooks.
    let mut builder = Schema::build(
        Query::default(),
        Mutation::default(),
        live::LiveSubscription,
    )
    .limit_depth(MAX_DEPTH);
    if let Some(core) = core {
        if !core.config.introspection {
            builder = builder.disable_introspection();
        }
        builder = builder.data(core);
    }
    builder.finish()
}

/// The GraphQL service that the transports (HTTP, WebSocket) serve: the schema over
/// the domain's [`Core`], and the cache of parsed documents.
#[derive(Clone)]
pub struct Api(std::sync::Arc<ApiInner>);

struct ApiInner {
    core: Core,
    schema: AppSchema,
    documents: limits::DocumentCache,
}

impl Api {
    pub fn new(core: Core) -> Api {
        Api(std::sync::Arc::new(ApiInner {
            schema: schema(Some(core.clone())),
            core,
            documents: Default::default(),
        }))
    }

    pub fn core(&self) -> &Core {
        &self.0.core
    }

    pub fn schema(&self) -> &AppSchema {
        &self.0.schema
    }

    /// Ready `request` to run as `principal` from `client`, the same way over HTTP
    /// and WebSocket: its document parsed (or recalled) and checked (limits, cost),
    /// the principal asked whether it may run such a document at all (a key that
    /// only reads never runs a mutation), and its context attached. `read_only` for
    /// `GET`; `live` for operations on a socket, whose loaders must read what is
    /// current at each event.
    pub fn prepare(
        &self,
        mut request: async_graphql::Request,
        principal: Option<Principal>,
        client: std::net::IpAddr,
        read_only: bool,
        live: bool,
    ) -> Result<async_graphql::Request, async_graphql::ServerError> {
        let config = &self.core().config;
        let (limit, introspection) = (config.limits.max_query_cost, config.introspection);
        let kind = self
            .0
            .documents
            .prepare(&mut request, read_only, introspection, limit)?;
        if kind.mutates
            && let Some(Err(err)) = principal.as_ref().map(Principal::may_write)
        {
            return Err(async_graphql::Error::from(err).into_server_error(Default::default()));
        }
        // Queries share what they loaded across the request; a mutation reads what
        // it just wrote, and a live operation what is current, so nothing is cached
        // then.
        let cache = !live && !kind.writes;
        Ok(self.with_context(request, principal, client, cache))
    }

    /// Attach who runs `request`, from where, and its loaders.
    pub fn with_context(
        &self,
        request: async_graphql::Request,
        principal: Option<Principal>,
        client: std::net::IpAddr,
        cache: bool,
    ) -> async_graphql::Request {
        let sees_internal = principal.as_ref().is_some_and(Principal::sees_internal);
        let loaders = LazyLoaders::new(self.core(), sees_internal, cache);
        request
            .data(RequestAuth::new(principal, client))
            .data(loaders)
    }
}

/// The SDL that `schema.graphql` must equal.
pub fn sdl() -> String {
    schema(None).sdl()
}

/// Who made the request, as found in its `Authorization` header or `connection_init`,
/// and from where.
pub struct RequestAuth {
    presented: Option<Principal>,
    /// The client's address (see `crate::net::client_ip`).
    client_ip: std::net::IpAddr,
    /// A principal that an unauthenticated request became during its execution
    /// (`startConversation`, `signIn`), so the rest of its selection can be read.
    granted: std::sync::OnceLock<Principal>,
}

impl RequestAuth {
    pub fn new(presented: Option<Principal>, client_ip: std::net::IpAddr) -> RequestAuth {
        RequestAuth {
            presented,
            client_ip,
            granted: std::sync::OnceLock::new(),
        }
    }
}

/// Typed access to what every request carries.
pub trait ContextExt {
    fn core(&self) -> &Core;
    /// The principal, or `UNAUTHENTICATED` when the request carried no credentials.
    fn principal(&self) -> AppResult<&Principal>;
    /// The principal of the credentials the request presented, if any (not one it
    /// was granted during its execution).
    fn presented(&self) -> Option<&Principal>;
    /// Let the rest of an unauthenticated request act as `principal`, which it just
    /// obtained credentials for. A request that presented a token keeps it.
    fn grant(&self, principal: Principal);
    fn loaders(&self) -> &Loaders;
    /// The client's address, for limits per address.
    fn client_ip(&self) -> std::net::IpAddr;
}

impl ContextExt for Context<'_> {
    fn core(&self) -> &Core {
        self.data_unchecked::<Core>()
    }

    fn principal(&self) -> AppResult<&Principal> {
        self.data_opt::<RequestAuth>()
            .and_then(|auth| auth.presented.as_ref().or_else(|| auth.granted.get()))
            .ok_or(AppError::Unauthenticated("this operation needs a token"))
    }

    fn presented(&self) -> Option<&Principal> {
        self.data_opt::<RequestAuth>()
            .and_then(|auth| auth.presented.as_ref())
    }

    fn grant(&self, principal: Principal) {
        if let Some(auth) = self.data_opt::<RequestAuth>()
            && auth.presented.is_none()
        {
            let _ = auth.granted.set(principal);
        }
    }

    fn loaders(&self) -> &Loaders {
        self.data_unchecked::<LazyLoaders>().get()
    }

    fn client_ip(&self) -> std::net::IpAddr {
        self.data_opt::<RequestAuth>().map_or(
            std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            |auth| auth.client_ip,
        )
    }
}

/// A `DateTime` from stored epoch milliseconds.
pub fn timestamp(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
