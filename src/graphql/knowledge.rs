//! Knowledge articles: the docs the AI answers from.

use async_graphql::{Context, ID, InputObject, Object};

use crate::domain;
use crate::domain::knowledge::articles::ArticleInput;
use crate::entity::{article, article_revision};
use crate::graphql::loaders::AgentKey;

use super::agents::Agent;
use super::settings::ApiKey;
use crate::error::AppError;

use super::pagination::{Page, TotalCount, decode_cursor, page, page_size};
use super::{ContextExt, timestamp};

/// One of the workspace's help articles.
pub struct KnowledgeArticle(pub article::Model);

#[Object]
impl KnowledgeArticle {
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn url(&self) -> &str {
        &self.0.url
    }

    async fn body(&self) -> &str {
        &self.0.body
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }

    /// When its title, URL or body last changed.
    async fn updated_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.updated_at)
    }

    /// Each version of its text, newest first: 1 is the article as created, then
    /// one per change of its title or body.
    async fn revisions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ArticleRevision>> {
        let revisions = domain::knowledge::articles::revisions(ctx.core(), &self.0.id).await?;
        Ok(revisions.into_iter().map(ArticleRevision).collect())
    }
}

/// A version of an article's text.
pub struct ArticleRevision(pub article_revision::Model);

#[Object]
impl ArticleRevision {
    async fn revision(&self) -> i32 {
        self.0.revision
    }

    async fn edited_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.edited_at)
    }

    /// Who made it: an agent, or an API key (`KNOWLEDGE_WRITE`); `null` for
    /// imports (`casefile articles import`, the demo) and for the revision an
    /// article had when revisions began.
    async fn edited_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Editor>> {
        Editor::of(
            ctx,
            &self.0.workspace_id,
            self.0.edited_by_agent_id.as_deref(),
            self.0.edited_by_api_key_id.as_deref(),
        )
        .await
    }

    pub async fn title(&self) -> &str {
        &self.0.title
    }

    pub async fn url(&self) -> &str {
        &self.0.url
    }

    pub async fn body(&self) -> &str {
        &self.0.body
    }
}

/// Who changed something: an agent or an API key.
#[derive(async_graphql::Interface)]
#[graphql(field(name = "id", ty = "ID"), field(name = "name", ty = "String"))]
pub enum Editor {
    Agent(Agent),
    ApiKey(ApiKey),
}

impl Editor {
    /// The agent `agent_id`, else the API key `key_id` of `workspace_id`, if either
    /// still exists.
    pub async fn of(
        ctx: &Context<'_>,
        workspace_id: &str,
        agent_id: Option<&str>,
        key_id: Option<&str>,
    ) -> async_graphql::Result<Option<Editor>> {
        if let Some(id) = agent_id {
            let agent = ctx.loaders().load_one(AgentKey(id.to_owned())).await?;
            return Ok(agent.map(|a| Editor::Agent(Agent(a))));
        }
        if let Some(id) = key_id {
            let key = domain::tenancy::api_keys::get(ctx.core(), workspace_id, id).await?;
            return Ok(key.map(|k| Editor::ApiKey(ApiKey(k))));
        }
        Ok(None)
    }
}

#[derive(InputObject)]
pub struct ArticleInputObject {
    /// Replace this article; absent creates one.
    pub id: Option<ID>,
    pub title: String,
    /// Where the article lives on the public site (cited in answers).
    pub url: String,
    /// Plain text or Markdown.
    pub body: String,
}

#[derive(Default)]
pub struct KnowledgeQuery;

#[Object]
impl KnowledgeQuery {
    /// The workspace's articles: with `query`, those matching it, best first (the
    /// same full-text search the AI uses); without, newest first. Visitors may
    /// search too: the docs are public.
    async fn articles(
        &self,
        ctx: &Context<'_>,
        query: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Page<KnowledgeArticle>> {
        let principal = ctx.principal()?;
        let core = ctx.core().clone();
        let ws = principal.workspace_id().to_owned();
        let limit = page_size(first)?;
        let after = after.as_deref().map(decode_cursor).transpose()?;
        match query.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            Some(q) => {
                // Ranked results page by position.
                let offset = match after.as_deref() {
                    Some(position) => position.parse::<u64>().map_err(|_| {
                        AppError::bad_input("after", "not a cursor from this connection")
                    })?,
                    None => 0,
                };
                let hits =
                    domain::knowledge::articles::search(&core, &ws, q, limit + 1, offset).await?;
                let total_hits = hits.len() as u64 + offset;
                let rows: Vec<(u64, article::Model)> = hits
                    .into_iter()
                    .enumerate()
                    .map(|(i, h)| (offset + i as u64 + 1, h.article))
                    .collect();
                let total = TotalCount::new(move || async move { Ok(total_hits) });
                Ok(page(
                    rows,
                    limit,
                    |(n, _)| n.to_string(),
                    |(_, a)| KnowledgeArticle(a),
                    total,
                ))
            }
            None => {
                let rows =
                    domain::knowledge::articles::page(&core, &ws, after.as_deref(), limit + 1)
                        .await?;
                let total = TotalCount::new(move || {
                    let (core, ws) = (core.clone(), ws.clone());
                    async move { domain::knowledge::articles::count(&core, &ws).await }
                });
                Ok(page(rows, limit, |a| a.id.clone(), KnowledgeArticle, total))
            }
        }
    }

    /// An article by id.
    async fn article(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<KnowledgeArticle> {
        let principal = ctx.principal()?;
        Ok(KnowledgeArticle(
            domain::knowledge::articles::get(ctx.core(), principal.workspace_id(), &id).await?,
        ))
    }
}

#[derive(Default)]
pub struct KnowledgeMutation;

#[Object]
impl KnowledgeMutation {
    /// Create or replace an article; the search index follows in the same
    /// transaction. A new article, or a change of its title or body, is a new
    /// revision (`revisions`); saving the same text changes nothing. Owners and
    /// admins, and API keys with `KNOWLEDGE_WRITE`.
    async fn upsert_article(
        &self,
        ctx: &Context<'_>,
        input: ArticleInputObject,
    ) -> async_graphql::Result<KnowledgeArticle> {
        let principal = ctx.principal()?;
        let editor = principal.knowledge_editor()?;
        let article = domain::knowledge::articles::upsert(
            ctx.core(),
            principal.workspace_id(),
            ArticleInput {
                id: input.id.as_deref().map(String::as_str),
                title: &input.title,
                url: &input.url,
                body: &input.body,
            },
            Some(&editor),
        )
        .await?;
        Ok(KnowledgeArticle(article))
    }

    /// Delete an article. Returns its id. Owners and admins, and API keys with
    /// `KNOWLEDGE_WRITE`.
    async fn delete_article(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let principal = ctx.principal()?;
        principal.knowledge_editor()?;
        domain::knowledge::articles::delete(ctx.core(), principal.workspace_id(), &id).await?;
        Ok(id)
    }
}
