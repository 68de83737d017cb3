//! The workspace and the signed-in viewer.

use async_graphql::{Context, ID, Object};

use crate::domain;
use crate::entity::{AnswerEngine, workspace};

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

    /// Whether the built-in AI answers visitors: `answerEngine` is not `OFF`.
    #[graphql(deprecation = "Use `answerEngine` (`false` here is `OFF` there).")]
    async fn responder_enabled(&self, ctx: &Context<'_>) -> bool {
        domain::tenancy::workspaces::answer_engine(&self.0, ctx.core().model.is_some())
            != AnswerEngine::Off
    }

    /// Where the AI's answers come from: `MODEL` (a language model, writing from
    /// the workspace's articles), `EXTRACTIVE` (quoting the best passage) or `OFF`
    /// (an integrator's model posts them with an `AI_WRITE` key). Unless the
    /// workspace chose, `MODEL` when the server has a model configured, else
    /// `EXTRACTIVE`.
    async fn answer_engine(&self, ctx: &Context<'_>) -> AnswerEngine {
        domain::tenancy::workspaces::answer_engine(&self.0, ctx.core().model.is_some())
    }

    /// Tone and house rules the model is given with every question (at most
    /// 4,000 characters; empty: none).
    async fn answer_instructions(&self) -> &str {
        &self.0.answer_instructions
    }

    /// Model tokens (prompt and completion) the workspace may use per UTC day;
    /// past it, answers come from the extractive responder until midnight UTC.
    /// `null`: no limit.
    async fn model_daily_token_limit(&self) -> Option<i64> {
        self.0.model_daily_token_limit
    }

    /// Conversations resolved more than this many days ago are erased; `null`:
    /// kept until erased by hand.
    async fn retention_days(&self) -> Option<i32> {
        self.0.retention_days
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
