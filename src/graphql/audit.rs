//! The audit log as a query: what administrators (and keys) did, newest first.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Object};

use crate::domain;
use crate::domain::tenancy::audit::Filter;
use crate::entity::audit_entry::{self, AuditAction};

use super::knowledge::Editor;
use super::{ContextExt, timestamp};

/// One administrative act.
pub struct AuditEntry(pub audit_entry::Model);

#[Object]
impl AuditEntry {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn action(&self) -> AuditAction {
        self.0.action
    }

    /// Who did it: an agent or an API key; `null` for the server's own acts (the
    /// retention sweep), a failed sign-in, or an actor that no longer exists (see
    /// `actorId`).
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Editor>> {
        Editor::of(
            ctx,
            &self.0.workspace_id,
            self.0.actor_agent_id.as_deref(),
            self.0.actor_key_id.as_deref(),
        )
        .await
    }

    /// The id of the agent or API key that did it, even once it is gone.
    async fn actor_id(&self) -> Option<ID> {
        self.0
            .actor_agent_id
            .as_ref()
            .or(self.0.actor_key_id.as_ref())
            .map(|id| ID(id.clone()))
    }

    /// The schema's type of what it was done to (`Agent`, `ApiKey`, `Lead`, …).
    async fn object_type(&self) -> Option<&str> {
        self.0.object_type.as_deref()
    }

    async fn object_id(&self) -> Option<ID> {
        self.0.object_id.as_ref().map(|id| ID(id.clone()))
    }

    /// The names of the fields it changed (never their values).
    async fn fields(&self) -> async_graphql::Result<Vec<String>> {
        Ok(self.0.fields()?)
    }

    /// The client's address (behind `CASEFILE_TRUSTED_PROXIES`, the one they
    /// forwarded); `null` for the server's own acts.
    async fn address(&self) -> Option<&str> {
        self.0.address.as_deref()
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Every administrative act in the workspace, newest first: settings and
    /// policy changes, agents and teams, API keys, webhooks, secrets rotated,
    /// exports, erasures and sign-ins (failed ones too, with the address). Filter
    /// by `actions` and by `actorId` (an agent or API key); page with `after` (an
    /// entry's cursor) and `first` (1 to 100). Entries are never changed or
    /// removed. Owners only.
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
        actions: Option<Vec<AuditAction>>,
        actor_id: Option<ID>,
    ) -> async_graphql::Result<Connection<String, AuditEntry>> {
        let filter = Filter {
            actions: actions.unwrap_or_default(),
            actor_id: actor_id.map(|id| id.0),
        };
        let (entries, has_next) = domain::tenancy::audit::page(
            ctx.core(),
            ctx.principal()?,
            first,
            after.as_deref(),
            &filter,
        )
        .await?;
        let mut connection = Connection::new(after.is_some(), has_next);
        connection.edges.extend(
            entries
                .into_iter()
                .map(|entry| Edge::new(entry.id.clone(), AuditEntry(entry))),
        );
        Ok(connection)
    }
}
