//! `previewAnswer`: what the AI would say to a question, before it says it.

use async_graphql::{Context, Enum, Object, SimpleObject};

use crate::domain;
use crate::domain::orchestration::preview::{Outcome, Preview};
use crate::entity::{AnswerEngine, HandoffReason};

use super::ContextExt;
use super::messages::ArticleRef;
use super::tags::InsightTag;

/// What would become of a question.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AnswerOutcome {
    /// The AI would answer it (below the confidence threshold it says it is not
    /// sure and offers a person: see `confidence`).
    Answered,
    /// It would go to the team, for `reason`.
    Handoff,
}

/// A passage retrieval found for the question.
#[derive(SimpleObject)]
pub struct RetrievedPassage {
    /// Its article, with the passage's own score.
    pub article: ArticleRef,
    pub text: String,
    /// How well the passage (and its article's title) covers the question, 0..1.
    pub score: f64,
}

/// A tag of the workspace whose rules match the question.
#[derive(SimpleObject)]
pub struct MatchedTag {
    pub tag: InsightTag,
    /// The words (as written) or pattern matches that apply it.
    pub evidence: Vec<String>,
    pub confidence: f64,
    /// It sends the conversation to a person (the tag's `escalate`, or the
    /// policy's `escalateTagIds`).
    pub escalates: bool,
}

/// What the AI would do with a question as a visitor's first message, computed
/// the way a real message is answered, with nothing stored or sent.
#[derive(SimpleObject)]
pub struct AnswerPreview {
    pub outcome: AnswerOutcome,
    /// Why it would be handed off (`HANDOFF`).
    pub reason: Option<HandoffReason>,
    /// More on the reason: the handoff phrase found, or the model's own reason
    /// (`AI_REQUESTED`).
    pub note: Option<String>,
    /// The engine that wrote `body`: `EXTRACTIVE` when the model failed (see
    /// `modelFailure`) or was not asked (nothing scored over the threshold).
    pub engine: AnswerEngine,
    /// What the visitor would read; `null` when nothing would be said before the
    /// handoff.
    pub body: Option<String>,
    /// The articles `body` cites, in order.
    pub sources: Vec<ArticleRef>,
    /// The answer's confidence, 0..1.
    pub confidence: Option<f64>,
    /// The passages retrieval found, best first, with their scores: why it
    /// answered as it did.
    pub passages: Vec<RetrievedPassage>,
    /// The articles retrieval considered, best first.
    pub articles: Vec<ArticleRef>,
    /// The workspace's tags whose rules match the question.
    pub tags: Vec<MatchedTag>,
    /// Why the model's answer was not used: it failed (the extractive answer is
    /// shown instead).
    pub model_failure: Option<String>,
    /// Model tokens the preview used (estimated when the server reports none).
    /// Previews count neither toward `modelDailyTokenLimit` nor in `modelUsage`.
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

impl From<Preview> for AnswerPreview {
    fn from(preview: Preview) -> Self {
        AnswerPreview {
            outcome: match preview.outcome {
                Outcome::Answered => AnswerOutcome::Answered,
                Outcome::Handoff => AnswerOutcome::Handoff,
            },
            reason: preview.reason,
            note: preview.note,
            engine: preview.engine,
            body: preview.body,
            sources: preview.sources.into_iter().map(ArticleRef::from).collect(),
            confidence: preview.confidence,
            passages: preview
                .passages
                .into_iter()
                .map(|p| RetrievedPassage {
                    score: p.source.score,
                    article: p.source.into(),
                    text: p.text,
                })
                .collect(),
            articles: preview.articles.into_iter().map(ArticleRef::from).collect(),
            tags: preview
                .tags
                .into_iter()
                .map(|m| MatchedTag {
                    escalates: m.escalates,
                    tag: m.tag.into(),
                    evidence: m.found.evidence,
                    confidence: m.found.confidence,
                })
                .collect(),
            model_failure: preview.model_failure,
            prompt_tokens: preview.prompt_tokens,
            completion_tokens: preview.completion_tokens,
        }
    }
}

#[derive(Default)]
pub struct PreviewQuery;

#[Object]
impl PreviewQuery {
    /// What the AI would answer to `question` as a visitor's first message: the
    /// outcome (`ANSWERED`, or `HANDOFF` with its reason), the body, its sources
    /// and confidence, and the passages retrieved with their scores. Nothing is
    /// stored or sent. `engine` compares engines (default: the workspace's;
    /// `OFF` previews the extractive responder). Owners and admins only.
    async fn preview_answer(
        &self,
        ctx: &Context<'_>,
        question: String,
        engine: Option<AnswerEngine>,
    ) -> async_graphql::Result<AnswerPreview> {
        let admin = ctx.principal()?.admin()?;
        let preview = domain::orchestration::preview::preview(
            ctx.core(),
            &admin.workspace_id,
            &question,
            engine,
        )
        .await?;
        Ok(preview.into())
    }
}
