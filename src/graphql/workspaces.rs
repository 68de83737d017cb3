//! The workspace and the signed-in viewer.

use async_graphql::{Context, ID, Object};

use crate::domain;
use crate::entity::workspace;

use super::agents::{Agent, Team};
use super::settings::HandoffPolicyView;
use super::{ContextExt, timestamp};
use crate::graphql::loaders::TeamKey;

/// A tenant: a company using Casefile. Nothing crosses between workspaces.
pub struct Workspace(pub workspace::Model);

#[Object]
impl Workspace {
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The public key a website's chat widget uses to `startConversation`. It only
    /// opens conversations; it reads nothing.
    async fn widget_key(&self) -> &str {
        &self.0.widget_key
    }

    /// Whether the built-in AI responder answers visitors.
    async fn responder_enabled(&self) -> bool {
        self.0.responder_enabled
    }

    /// Conversations need a valid `identityToken` (signed-in visitors only).
    async fn require_verified_identity(&self) -> bool {
        self.0.require_verified_identity
    }

    /// When the AI hands conversations to humans.
    async fn handoff_policy(&self) -> async_graphql::Result<HandoffPolicyView> {
        Ok(HandoffPolicyView(self.0.handoff_policy()?))
    }

    /// The team handoffs go to when no tag routes them.
    async fn default_team(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Team>> {
        let Some(id) = &self.0.default_team_id else {
            return Ok(None);
        };
        Ok(ctx.loaders().load_one(TeamKey(id.clone())).await?.map(Team))
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }
}

#[derive(Default)]
pub struct WorkspaceQuery;

#[Object]
impl WorkspaceQuery {
    /// The signed-in agent. Needs an agent token.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Agent> {
        let agent = ctx.principal()?.agent()?;
        let model =
            domain::tenancy::agents::get(ctx.core(), &agent.workspace_id, &agent.agent_id).await?;
        Ok(Agent::from(model))
    }

    /// The workspace of the token's holder.
    async fn workspace(&self, ctx: &Context<'_>) -> async_graphql::Result<Workspace> {
        let principal = ctx.principal()?;
        principal.agent()?;
        Ok(Workspace(
            domain::tenancy::workspaces::shown(ctx.core(), principal.workspace_id()).await?,
        ))
    }
}
