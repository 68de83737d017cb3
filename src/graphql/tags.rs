//! Insight tags and the tags applied to conversations.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};

use crate::domain;
use crate::domain::knowledge::tags::TagInput;
use crate::entity::{TagSource, conversation_tag, insight_tag};
use crate::graphql::loaders::{AgentKey, ArticleKey, TeamKey};

use super::inline::Inline;
use super::knowledge::KnowledgeArticle;

use super::agents::{Agent, Team};
use super::{ContextExt, timestamp};

/// A topic ("media library uploads") with the rules that apply it to conversations.
pub struct InsightTag(pub Arc<insight_tag::Model>);

impl From<insight_tag::Model> for InsightTag {
    fn from(tag: insight_tag::Model) -> Self {
        InsightTag(Arc::new(tag))
    }
}

#[Object]
impl InsightTag {
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// Stable, URL-safe name (`media-library-uploads`).
    async fn slug(&self) -> &str {
        &self.0.slug
    }

    async fn label(&self) -> &str {
        &self.0.label
    }

    async fn description(&self) -> &str {
        &self.0.description
    }

    /// Words and phrases that apply the tag when a visitor uses them.
    async fn keywords(&self) -> async_graphql::Result<Vec<String>> {
        Ok(self.0.keywords()?)
    }

    /// The team conversations with this tag are routed to.
    async fn team(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Team>> {
        let Some(id) = &self.0.team_id else {
            return Ok(None);
        };
        Ok(ctx.loaders().load_one(TeamKey(id.clone())).await?.map(Team))
    }

    /// Regular expressions (case-insensitive) that apply the tag.
    async fn patterns(&self) -> async_graphql::Result<Vec<String>> {
        Ok(self.0.patterns()?)
    }

    /// Knowledge articles this topic covers: an AI answer citing one applies it.
    async fn articles(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<KnowledgeArticle>> {
        let ids = self.0.article_ids()?;
        let found = ctx
            .loaders()
            .load_many(ids.iter().cloned().map(ArticleKey))
            .await?;
        Ok(ids
            .into_iter()
            .filter_map(|id| {
                found
                    .get(&ArticleKey(id))
                    .map(|a| KnowledgeArticle(a.as_ref().clone()))
            })
            .collect())
    }

    /// Whether a conversation with this tag always goes to a human.
    async fn escalate(&self) -> bool {
        self.0.escalate
    }

    /// When tags route to different teams, the highest priority wins.
    async fn priority(&self) -> i32 {
        self.0.priority
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }
}

/// A tag on a conversation, with how it got there.
pub struct AppliedTag(pub conversation_tag::Model, pub Arc<insight_tag::Model>);

#[Object]
impl AppliedTag {
    async fn tag(&self) -> Inline<InsightTag> {
        Inline(InsightTag(Arc::clone(&self.1)))
    }

    async fn source(&self) -> TagSource {
        self.0.source
    }

    /// What matched: the visitor's words or the cited article (`AUTO`).
    async fn evidence(&self) -> Option<&str> {
        self.0.evidence.as_deref()
    }

    /// How sure the match is, 0..1 (1 for agents' tags).
    async fn confidence(&self) -> f64 {
        self.0.confidence
    }

    /// The agent who applied an `AGENT` tag.
    async fn applied_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Agent>> {
        let Some(id) = &self.0.applied_by else {
            return Ok(None);
        };
        Ok(ctx
            .loaders()
            .load_one(AgentKey(id.clone()))
            .await?
            .map(Agent))
    }

    /// The message whose words (or cited article) applied an `AUTO` tag.
    async fn message_id(&self) -> Option<ID> {
        self.0.message_id.clone().map(ID)
    }

    async fn applied_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.applied_at)
    }
}

#[derive(InputObject)]
pub struct CreateTagInput {
    pub label: String,
    /// Made from the label when absent.
    pub slug: Option<String>,
    #[graphql(default)]
    pub description: String,
    #[graphql(default)]
    pub keywords: Vec<String>,
    pub team_id: Option<ID>,
    #[graphql(default)]
    pub escalate: bool,
    #[graphql(default)]
    pub priority: i32,
    /// Regular expressions (case-insensitive) that apply the tag.
    #[graphql(default)]
    pub patterns: Vec<String>,
    /// Knowledge articles this topic covers: an AI answer citing one applies it.
    #[graphql(default)]
    pub article_ids: Vec<ID>,
}

/// Changes to a tag; absent fields stay as they are, `teamId: null` clears the team.
#[derive(InputObject)]
pub struct UpdateTagInput {
    pub label: Option<String>,
    pub slug: Option<String>,
    pub description: Option<String>,
    pub keywords: Option<Vec<String>>,
    pub team_id: MaybeUndefined<ID>,
    pub escalate: Option<bool>,
    pub priority: Option<i32>,
    pub patterns: Option<Vec<String>>,
    pub article_ids: Option<Vec<ID>>,
}

#[derive(Default)]
pub struct TagQuery;

#[Object]
impl TagQuery {
    /// The workspace's insight tags.
    async fn tags(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<InsightTag>> {
        let agent = ctx.principal()?.agent()?;
        let tags = domain::knowledge::tags::list(ctx.core(), &agent.workspace_id).await?;
        Ok(tags.into_iter().map(InsightTag::from).collect())
    }
}

#[derive(Default)]
pub struct TagMutation;

#[Object]
impl TagMutation {
    /// Create an insight tag. Owners and admins only.
    async fn create_tag(
        &self,
        ctx: &Context<'_>,
        input: CreateTagInput,
    ) -> async_graphql::Result<InsightTag> {
        let admin = ctx.principal()?.admin()?;
        let input = TagInput {
            slug: input.slug,
            label: Some(input.label),
            description: Some(input.description),
            keywords: Some(input.keywords),
            team_id: Some(input.team_id.map(|id| id.0)),
            escalate: Some(input.escalate),
            priority: Some(input.priority),
            patterns: Some(input.patterns),
            article_ids: Some(input.article_ids.into_iter().map(|id| id.0).collect()),
        };
        Ok(InsightTag(
            domain::knowledge::tags::create(ctx.core(), admin, ctx.client_ip(), &input)
                .await?
                .into(),
        ))
    }

    /// Change an insight tag. Owners and admins only.
    async fn update_tag(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateTagInput,
    ) -> async_graphql::Result<InsightTag> {
        let admin = ctx.principal()?.admin()?;
        let team_id = match input.team_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(id) => Some(Some(id.0)),
        };
        let input = TagInput {
            slug: input.slug,
            label: input.label,
            description: input.description,
            keywords: input.keywords,
            team_id,
            escalate: input.escalate,
            priority: input.priority,
            patterns: input.patterns,
            article_ids: input
                .article_ids
                .map(|ids| ids.into_iter().map(|id| id.0).collect()),
        };
        Ok(InsightTag(
            domain::knowledge::tags::update(ctx.core(), admin, ctx.client_ip(), &id, &input)
                .await?
                .into(),
        ))
    }

    /// Delete an insight tag and take it off every conversation. Returns its id.
    async fn delete_tag(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let admin = ctx.principal()?.admin()?;
        domain::knowledge::tags::delete(ctx.core(), admin, ctx.client_ip(), &id).await?;
        Ok(id)
    }
}
