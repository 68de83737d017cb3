//! `Node` and `node(id:)`: any object by its global id.

use std::sync::Arc;

use async_graphql::{Context, ID, Interface, Object};

use crate::domain;
use crate::error::AppError;
use crate::graphql::loaders::{AgentKey, LeadKey, TagKey, TeamKey};
use crate::ids::Kind;

use super::ContextExt;
use super::agents::{Agent, Team};
use super::conversations::Conversation;
use super::handoffs::Handoff;
use super::knowledge::KnowledgeArticle;
use super::leads::{Lead, LeadField};
use super::messages::Message;
use super::tags::InsightTag;
use super::workspaces::Workspace;

/// An object with a global id. Ids are opaque, prefixed by kind (`conv_…`) and
/// ordered by creation time.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    Workspace(Workspace),
    Agent(Agent),
    Team(Team),
    Lead(Lead),
    LeadField(LeadField),
    Conversation(Conversation),
    Message(Message),
    InsightTag(InsightTag),
    Handoff(Handoff),
    KnowledgeArticle(KnowledgeArticle),
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Any object by id, if the token's holder may read it. Otherwise `null`, with a
    /// `NOT_FOUND` error, as if it did not exist (nullable, as the Relay
    /// specification has it: the rest of the answer stands).
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Option<Node> {
        match find(ctx, id).await {
            Ok(node) => Some(node),
            Err(err) => {
                // `null` in the answer, the error beside it (async-graphql would
                // otherwise drop the key, or the whole `data` when it is alone).
                let error = ctx.set_error_path(err.into_server_error(ctx.item.pos));
                ctx.add_error(error);
                None
            }
        }
    }
}

/// The node `id` names, if the request's principal may read it.
async fn find(ctx: &Context<'_>, id: ID) -> async_graphql::Result<Node> {
    let principal = ctx.principal()?;
    let core = ctx.core();
    let ws = principal.workspace_id();
    let not_found = AppError::NotFound("node");
    let kind = Kind::of(&id).ok_or_else(|| not_found.clone())?;
    // Anything but a visitor's own conversation, message or lead is for agents.
    let agents_only = !matches!(
        kind,
        Kind::Conversation | Kind::Message | Kind::Lead | Kind::Article
    );
    if agents_only && principal.agent().is_err() {
        return Err(not_found.into());
    }
    let in_workspace = |owner: &str| {
        if owner == ws {
            Ok(())
        } else {
            Err(not_found.clone())
        }
    };
    let loaders = ctx.loaders();
    let node = match kind {
        Kind::Workspace => Node::Workspace(Workspace(
            domain::tenancy::workspaces::get(core, &id)
                .await
                .and_then(|w| in_workspace(&w.id).map(|_| w))?,
        )),
        Kind::Agent => {
            let agent = loaders
                .load_one(AgentKey(id.0.clone()))
                .await?
                .ok_or_else(|| not_found.clone())?;
            in_workspace(&agent.workspace_id)?;
            Node::Agent(Agent(agent))
        }
        Kind::Team => {
            let team = loaders
                .load_one(TeamKey(id.0.clone()))
                .await?
                .ok_or_else(|| not_found.clone())?;
            in_workspace(&team.workspace_id)?;
            Node::Team(Team(team))
        }
        Kind::Tag => {
            let tag = loaders
                .load_one(TagKey(id.0.clone()))
                .await?
                .ok_or_else(|| not_found.clone())?;
            in_workspace(&tag.workspace_id)?;
            Node::InsightTag(InsightTag(tag))
        }
        Kind::LeadField => {
            let fields = domain::chat::leads::fields(&core.db.reader, ws).await?;
            let field = fields
                .into_iter()
                .find(|f| f.id == id.0)
                .ok_or_else(|| not_found.clone())?;
            Node::LeadField(LeadField(field))
        }
        Kind::Lead => {
            let lead = match principal.agent() {
                Ok(_) => loaders
                    .load_one(LeadKey(id.0.clone()))
                    .await?
                    .ok_or_else(|| not_found.clone())?,
                Err(_) => Arc::new(domain::chat::leads::get(core, principal, &id).await?),
            };
            in_workspace(&lead.workspace_id)?;
            Node::Lead(Lead(lead))
        }
        Kind::Conversation => Node::Conversation(Conversation(
            domain::chat::conversations::get(core, principal, &id).await?,
        )),
        Kind::Message => Node::Message(Message::from(
            domain::chat::messages::get(core, principal, &id).await?,
        )),
        Kind::Handoff => Node::Handoff(Handoff::new(
            domain::handoff::handoffs::get(core, ws, &id).await?,
        )),
        Kind::Article => Node::KnowledgeArticle(KnowledgeArticle(
            domain::knowledge::articles::get(core, ws, &id).await?,
        )),
        Kind::ApiKey
        | Kind::Job
        | Kind::Event
        | Kind::Webhook
        | Kind::Delivery
        | Kind::Feedback
        | Kind::Flag
        | Kind::ModelCall
        | Kind::Revision
        | Kind::Passage
        | Kind::Audit => {
            return Err(not_found.into());
        }
    };
    Ok(node)
}
