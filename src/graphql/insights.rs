//! The insights digest, visitor ratings, and retagging after rules change.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use tokio::sync::OnceCell;

use crate::auth::Scope;
use crate::domain;
use crate::domain::Core;
use crate::domain::insights::{Cohort, HandoffStats, Point, Summary};
use crate::entity::{HandoffReason, rating, retag_job};
use crate::error::AppError;
use crate::graphql::loaders::{ArticleKey, TagKey};

use super::knowledge::KnowledgeArticle;
use super::messages::ArticleRef;
use super::tags::InsightTag;
use super::{ContextExt, timestamp};

/// What the period's conversations say: how many the AI resolved, how many went to
/// humans and why, how fast humans picked them up, which topics cause handoffs and
/// which questions the docs do not answer. The period's conversations are those
/// started in `[from, to)` (of one team, if asked); every number counts them.
pub struct InsightsDigest {
    core: Core,
    cohort: Cohort,
    /// The period's conversations and handoffs, read once for every field but
    /// topics, docs gaps and ratings.
    passes: OnceCell<Passes>,
    csat: OnceCell<(Option<f64>, i64)>,
}

/// The two passes over the period: handoffs (durations, reasons, counts per
/// bucket) and conversations per bucket, by day (by the whole period when it has
/// more days than a series may have buckets).
struct Passes {
    bucket_ms: i64,
    points: Vec<Point>,
    handoffs: HandoffStats,
}

const DAY_MS: i64 = 86_400_000;

impl InsightsDigest {
    fn new(core: Core, cohort: Cohort) -> InsightsDigest {
        InsightsDigest {
            core,
            cohort,
            passes: OnceCell::new(),
            csat: OnceCell::new(),
        }
    }

    async fn passes(&self) -> async_graphql::Result<&Passes> {
        let passes = self.passes.get_or_try_init(|| async {
            let span = (self.cohort.to - self.cohort.from).max(1);
            let bucket_ms = if (span + DAY_MS - 1) / DAY_MS <= domain::insights::MAX_BUCKETS {
                DAY_MS
            } else {
                span
            };
            let (points, handoffs) =
                domain::insights::passes(&self.core, &self.cohort, bucket_ms).await?;
            Ok::<_, AppError>(Passes {
                bucket_ms,
                points,
                handoffs,
            })
        });
        Ok(passes.await?)
    }

    async fn summary(&self) -> async_graphql::Result<Summary> {
        Ok(Summary::of(&self.passes().await?.points))
    }

    async fn handoff_stats(&self) -> async_graphql::Result<&HandoffStats> {
        Ok(&self.passes().await?.handoffs)
    }

    async fn csat_and_ratings(&self) -> async_graphql::Result<(Option<f64>, i64)> {
        let csat = self
            .csat
            .get_or_try_init(|| domain::insights::csat(&self.core, &self.cohort));
        Ok(*csat.await?)
    }
}

/// The language model's use in a period.
#[derive(SimpleObject)]
pub struct ModelUsage {
    /// Answers the model wrote that were stored.
    pub answers: i64,
    /// Handoffs the model asked for (`AI_REQUESTED`).
    pub handoffs: i64,
    /// Requests that failed (refused, an HTTP error, a malformed stream, a
    /// time-out); each was answered the extractive way instead.
    pub failures: i64,
    /// Requests abandoned because a person took the conversation, or the visitor
    /// wrote again, while the model wrote.
    pub abandoned: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Requests whose usage the server did not report (their tokens estimated).
    pub estimated: i64,
    /// Milliseconds from a request to its first piece of answer, median.
    pub first_token_p50_ms: Option<i64>,
    /// … and 95th percentile.
    pub first_token_p95_ms: Option<i64>,
}

/// A team's handoffs against its accept target.
pub struct TeamSlaBreaches(domain::insights::SlaBreaches);

#[Object]
impl TeamSlaBreaches {
    /// `null` if the team was deleted since.
    async fn team(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<super::agents::Team>> {
        let team = ctx
            .loaders()
            .load_one(crate::graphql::loaders::TeamKey(self.0.team_id.clone()))
            .await?;
        Ok(team.map(super::agents::Team))
    }

    /// Handoffs that had an accept target.
    async fn handoffs(&self) -> i64 {
        self.0.handoffs
    }

    /// Of those, handoffs not accepted by their `slaDueAt`.
    async fn breached(&self) -> i64 {
        self.0.breached
    }
}

/// Buckets of `series`.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Day,
    Week,
}

#[Object]
impl InsightsDigest {
    async fn from(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.cohort.from)
    }

    async fn to(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.cohort.to)
    }

    /// Conversations started in the period.
    async fn conversations(&self) -> async_graphql::Result<i64> {
        Ok(self.summary().await?.conversations)
    }

    /// Of those, resolved by the AI (`resolvedBy: AI`: the visitor confirmed an
    /// answer, or the AI resolved it) or by the clock (`AUTO`), without ever going
    /// to a human. Conversations agents resolved are not counted.
    async fn ai_resolved(&self) -> async_graphql::Result<i64> {
        Ok(self.summary().await?.ai_resolved)
    }

    /// The language model's requests in the period (made in `[from, to)`, of the
    /// team's conversations with `teamId`): what came of them, the tokens they
    /// used (as the model server reported them; estimated at four characters a
    /// token for a server that reports none, counted in `estimated`), and how soon
    /// it started answering. All zero without a model.
    /// Whether fixing the docs worked: each article edited in `[from, to)`
    /// (its latest revision then; creating an article is not an edit), with the
    /// conversations that retrieved or cited it started in a window of equal
    /// length before and after the edit, and how many of them were handed off.
    /// Each side is as long as the time since the edit, at most 30 days and never
    /// past the article's next revision. Most recent edit first; with `teamId`,
    /// the team's conversations.
    async fn article_impact(&self) -> async_graphql::Result<Vec<ArticleImpact>> {
        let impacts = domain::insights::article_impact(&self.core, &self.cohort).await?;
        Ok(impacts.into_iter().map(ArticleImpact).collect())
    }

    async fn model_usage(&self) -> async_graphql::Result<ModelUsage> {
        let usage = domain::insights::model_usage(&self.core, &self.cohort).await?;
        Ok(ModelUsage {
            answers: usage.answers,
            handoffs: usage.handoffs,
            failures: usage.failures,
            abandoned: usage.abandoned,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            estimated: usage.estimated,
            first_token_p50_ms: usage.first_token_p50_ms,
            first_token_p95_ms: usage.first_token_p95_ms,
        })
    }

    /// Handoffs requested outside their team's business hours.
    async fn out_of_hours_handoffs(&self) -> async_graphql::Result<i64> {
        Ok(domain::insights::out_of_hours_handoffs(&self.core, &self.cohort).await?)
    }

    /// Per team with an accept target (`Team.acceptTargetSeconds`): its handoffs
    /// that had one (`slaDueAt`) and how many missed it (still waiting when it
    /// passed: `SLA_BREACHED`), most breaches first.
    async fn sla_breaches(&self) -> async_graphql::Result<Vec<TeamSlaBreaches>> {
        let teams = domain::insights::sla_breaches(&self.core, &self.cohort).await?;
        Ok(teams.into_iter().map(TeamSlaBreaches).collect())
    }

    /// The visitors' answers to "Did that answer your question?" (`confirmAnswer`)
    /// in the period's conversations.
    async fn answer_feedback(&self) -> async_graphql::Result<AnswerFeedbackCounts> {
        let counts = domain::insights::answer_feedback(&self.core, &self.cohort).await?;
        Ok(AnswerFeedbackCounts {
            helpful: counts.helpful,
            unhelpful: counts.unhelpful,
        })
    }

    /// Per cited article, what visitors and agents said about the AI answers citing
    /// it in the period (the answers a visitor confirmed or an agent flagged),
    /// worst first: the docs to fix.
    async fn article_feedback(&self) -> async_graphql::Result<Vec<ArticleFeedback>> {
        let articles = domain::insights::article_feedback(&self.core, &self.cohort).await?;
        Ok(articles
            .into_iter()
            .map(|a| ArticleFeedback {
                article_id: ID(a.article_id),
                title: a.title,
                answers: a.answers,
                helpful: a.helpful,
                unhelpful: a.unhelpful,
                flagged: a.flagged,
            })
            .collect())
    }

    /// Handoffs of those conversations (any reason, take-overs included).
    async fn handoffs(&self) -> async_graphql::Result<i64> {
        Ok(self.summary().await?.handoffs)
    }

    /// Share (0..1) of the period's conversations handed to humans at least once.
    async fn handoff_rate(&self) -> async_graphql::Result<f64> {
        Ok(self.summary().await?.handoff_rate())
    }

    /// Median seconds from a handoff's request to its acceptance.
    async fn median_seconds_to_accept(&self) -> async_graphql::Result<Option<f64>> {
        Ok(self.handoff_stats().await?.accept.0)
    }

    /// 90th percentile (nearest rank) of seconds from request to acceptance.
    async fn p90_seconds_to_accept(&self) -> async_graphql::Result<Option<f64>> {
        Ok(self.handoff_stats().await?.accept.1)
    }

    /// Median seconds from a handoff's request to its resolution.
    async fn median_seconds_to_resolve(&self) -> async_graphql::Result<Option<f64>> {
        Ok(self.handoff_stats().await?.resolve.0)
    }

    /// Average visitor rating (1–5) of the period's conversations; `null` if none.
    async fn csat(&self) -> async_graphql::Result<Option<f64>> {
        Ok(self.csat_and_ratings().await?.0)
    }

    /// How many conversations were rated.
    async fn ratings(&self) -> async_graphql::Result<i64> {
        Ok(self.csat_and_ratings().await?.1)
    }

    /// Per topic tag: conversations, handoffs, rate, and the previous period's
    /// handoffs for the trend; most handoffs first.
    async fn topics(&self) -> async_graphql::Result<Vec<TopicInsight>> {
        let topics = domain::insights::topics(&self.core, &self.cohort).await?;
        Ok(topics.into_iter().map(TopicInsight).collect())
    }

    /// Handoffs by reason, most first.
    async fn reasons(&self) -> async_graphql::Result<Vec<ReasonCount>> {
        let stats = self.handoff_stats().await?;
        Ok(stats
            .reasons
            .iter()
            .map(|&(reason, handoffs)| ReasonCount { reason, handoffs })
            .collect())
    }

    /// Visitor questions the AI could not answer with confidence, grouped by
    /// similar wording, biggest first: the articles to write.
    async fn docs_gaps(&self) -> async_graphql::Result<Vec<DocsGap>> {
        let workspace =
            domain::tenancy::workspaces::get(&self.core, &self.cohort.workspace_id).await?;
        let threshold = workspace.handoff_policy()?.confidence_threshold;
        let gaps = domain::insights::docs_gaps(&self.core, &self.cohort, threshold).await?;
        Ok(gaps
            .into_iter()
            .map(|gap| DocsGap {
                question: gap.question,
                terms: gap.terms,
                count: gap.count,
                conversation_ids: gap.conversation_ids.into_iter().map(ID).collect(),
                now_answered: gap.answered_by.is_some(),
                answered_by: gap.answered_by.map(ArticleRef::from),
                answered_since: gap.answered_since.map(timestamp),
            })
            .collect())
    }

    /// Counts per day or week from `from`, every bucket present, for plotting.
    async fn series(&self, bucket: Bucket) -> async_graphql::Result<Vec<SeriesPoint>> {
        let ms = match bucket {
            Bucket::Day => DAY_MS,
            Bucket::Week => 7 * DAY_MS,
        };
        let passes = self.passes().await?;
        // Weeks are days summed; only a period too long for daily buckets reads again.
        let points = if passes.bucket_ms == DAY_MS {
            domain::insights::regroup(&passes.points, (ms / DAY_MS) as usize)
        } else {
            domain::insights::passes(&self.core, &self.cohort, ms)
                .await?
                .0
        };
        Ok(points
            .into_iter()
            .map(|p| SeriesPoint {
                start: timestamp(p.start),
                conversations: p.conversations,
                handoffs: p.handed_off,
                ai_resolved: p.ai_resolved,
            })
            .collect())
    }
}

/// A topic's share of the period's handoffs.
pub struct TopicInsight(domain::insights::Topic);

#[Object]
impl TopicInsight {
    async fn tag(&self, ctx: &Context<'_>) -> async_graphql::Result<InsightTag> {
        let tag = ctx
            .loaders()
            .load_one(TagKey(self.0.tag_id.clone()))
            .await?;
        Ok(InsightTag(tag.ok_or(AppError::NotFound("tag"))?))
    }

    /// Conversations of the period carrying the tag.
    async fn conversations(&self) -> i64 {
        self.0.conversations
    }

    /// Of those, handed to humans.
    async fn handoffs(&self) -> i64 {
        self.0.handoffs
    }

    async fn handoff_rate(&self) -> f64 {
        if self.0.conversations == 0 {
            0.0
        } else {
            self.0.handoffs as f64 / self.0.conversations as f64
        }
    }

    /// The same count over the period just before (same length), for the trend.
    async fn previous_period_handoffs(&self) -> i64 {
        self.0.previous_period_handoffs
    }
}

/// Handoffs for one reason.
/// Helpful and unhelpful answers, as visitors said.
#[derive(SimpleObject)]
pub struct AnswerFeedbackCounts {
    pub helpful: i64,
    pub unhelpful: i64,
}

/// What was said about the AI answers citing one article.
#[derive(SimpleObject)]
pub struct ArticleFeedback {
    pub article_id: ID,
    /// The article's title when it was cited.
    pub title: String,
    /// AI answers citing it that a visitor confirmed or an agent flagged.
    pub answers: i64,
    pub helpful: i64,
    pub unhelpful: i64,
    /// Answers flagged as wrong by agents (`flagAnswer`).
    pub flagged: i64,
}

#[derive(SimpleObject)]
pub struct ReasonCount {
    pub reason: HandoffReason,
    pub handoffs: i64,
}

/// A question the docs do not answer well, with how often it was asked.
#[derive(SimpleObject)]
pub struct DocsGap {
    /// The most recent wording.
    pub question: String,
    /// The content words (stems) the group's questions share.
    pub terms: Vec<String>,
    pub count: i64,
    /// Example conversations (up to five).
    pub conversation_ids: Vec<ID>,
    /// An article answers the question now (retrieval finds it with confidence
    /// at least the policy's threshold): the gap is closed.
    pub now_answered: bool,
    /// The article that answers it now, with its score.
    pub answered_by: Option<ArticleRef>,
    /// When that article last changed: answered since then at the latest.
    pub answered_since: Option<chrono::DateTime<chrono::Utc>>,
}

/// The conversations that used an article before and after one of its edits.
pub struct ArticleImpact(pub domain::insights::ArticleImpact);

#[Object]
impl ArticleImpact {
    /// The article now; `null` if it was deleted since.
    async fn article(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<KnowledgeArticle>> {
        let article = ctx
            .loaders()
            .load_one(ArticleKey(self.0.article_id.clone()))
            .await?;
        Ok(article.map(|a| KnowledgeArticle(Arc::unwrap_or_clone(a))))
    }

    async fn article_id(&self) -> ID {
        ID(self.0.article_id.clone())
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn url(&self) -> &str {
        &self.0.url
    }

    /// The revision the edit made (`Article.revisions`).
    async fn revision(&self) -> i32 {
        self.0.revision
    }

    async fn edited_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.edited_at)
    }

    /// The length of each window, in seconds.
    async fn window_seconds(&self) -> i64 {
        self.0.window_ms / 1000
    }

    async fn conversations_before(&self) -> i64 {
        self.0.conversations_before
    }

    async fn handoffs_before(&self) -> i64 {
        self.0.handoffs_before
    }

    /// `handoffsBefore / conversationsBefore`; `null` with no conversation.
    async fn handoff_rate_before(&self) -> Option<f64> {
        self.0.handoff_rate_before()
    }

    async fn conversations_after(&self) -> i64 {
        self.0.conversations_after
    }

    async fn handoffs_after(&self) -> i64 {
        self.0.handoffs_after
    }

    /// `handoffsAfter / conversationsAfter`; `null` with no conversation.
    async fn handoff_rate_after(&self) -> Option<f64> {
        self.0.handoff_rate_after()
    }
}

/// One bucket of the series.
#[derive(SimpleObject)]
pub struct SeriesPoint {
    pub start: chrono::DateTime<chrono::Utc>,
    pub conversations: i64,
    /// Conversations handed to humans.
    pub handoffs: i64,
    pub ai_resolved: i64,
}

/// A visitor's rating of a conversation.
pub struct Rating(pub rating::Model);

#[Object]
impl Rating {
    /// 1 (bad) to 5 (great).
    async fn score(&self) -> i32 {
        self.0.score
    }

    async fn comment(&self) -> Option<&str> {
        self.0.comment.as_deref()
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }
}

/// A background pass of the tagging rules over stored conversations.
pub struct RetagJob(pub retag_job::Model);

#[Object]
impl RetagJob {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// `RUNNING`, `DONE` or `FAILED`.
    async fn status(&self) -> &str {
        &self.0.status
    }

    async fn since(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.since)
    }

    /// Conversations looked at so far, of `total`.
    async fn processed(&self) -> i64 {
        self.0.processed
    }

    async fn total(&self) -> i64 {
        self.0.total
    }

    /// Tags applied.
    async fn tagged(&self) -> i64 {
        self.0.tagged
    }

    /// Automatic tags removed because their rules no longer match.
    async fn untagged(&self) -> i64 {
        self.0.untagged
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }

    async fn finished_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.finished_at.map(timestamp)
    }
}

#[derive(Default)]
pub struct InsightsQuery;

#[Object]
impl InsightsQuery {
    /// The insights digest of the conversations started in `[from, to)` (of one
    /// team, if given). Needs an agent token or an `INSIGHTS_READ` key.
    async fn insights(
        &self,
        ctx: &Context<'_>,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        team_id: Option<ID>,
    ) -> async_graphql::Result<InsightsDigest> {
        let principal = ctx.principal()?;
        principal.require(Scope::InsightsRead)?;
        let core = ctx.core();
        let cohort = Cohort::of(
            core,
            principal.workspace_id(),
            from.timestamp_millis(),
            to.timestamp_millis(),
            team_id.map(|id| id.0),
        )
        .await?;
        Ok(InsightsDigest::new(core.clone(), cohort))
    }

    /// A retag job, to follow its progress.
    async fn retag_job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<RetagJob> {
        let admin = ctx.principal()?.admin()?;
        Ok(RetagJob(
            domain::knowledge::retag::get(ctx.core(), &admin.workspace_id, &id).await?,
        ))
    }
}

#[derive(Default)]
pub struct InsightsMutation;

#[Object]
impl InsightsMutation {
    /// The visitor rates its conversation, 1 (bad) to 5 (great); rating again
    /// replaces the rating. Feeds `csat`.
    async fn rate_conversation(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        score: i32,
        comment: Option<String>,
    ) -> async_graphql::Result<Rating> {
        let principal = ctx.principal()?;
        let rating = domain::chat::ratings::rate(
            ctx.core(),
            principal,
            &conversation_id,
            score,
            comment.as_deref(),
        )
        .await?;
        Ok(Rating(rating))
    }

    /// Re-run the tagging rules over the conversations updated since `since`, in
    /// the background, in batches (resumed after a restart). Returns the job;
    /// follow it with `retagJob(id)`. Owners and admins only.
    async fn retag_conversations(
        &self,
        ctx: &Context<'_>,
        since: chrono::DateTime<chrono::Utc>,
    ) -> async_graphql::Result<RetagJob> {
        let admin = ctx.principal()?.admin()?;
        let job = domain::knowledge::retag::start(
            ctx.core(),
            &admin.workspace_id,
            since.timestamp_millis(),
        )
        .await?;
        Ok(RetagJob(job))
    }
}
