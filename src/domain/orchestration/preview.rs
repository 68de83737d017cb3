//! What the AI would do with a question, without a conversation and without
//! storing anything: `previewAnswer` for admins and `casefile eval` for a whole
//! set of questions.
//!
//! The question is taken as the first message of a new conversation, and goes the
//! way a visitor's would (`pipeline` and `answering`): the workspace's tags that
//! match it, the handoff policy's checks before an answer, retrieval, the answer
//! engine, and the policy's check after it. What differs, on purpose:
//!
//! - nothing is stored or sent (no conversation, no `AnswerDelta`, no handoff);
//! - a model request is not recorded in `model_calls`, so it counts neither
//!   toward the workspace's daily token limit nor in `insights.modelUsage`: its
//!   tokens are in the preview instead;
//! - `engine` may be chosen (to compare the model with the extractive responder);
//!   a workspace whose engine is `OFF` is previewed with the extractive one, the
//!   built-in AI it would get if turned on.

use crate::domain::Core;
use crate::domain::core::validate;
use crate::domain::handoff::policy::{self, Situation};
use crate::domain::knowledge::model::{self, Reply};
use crate::domain::knowledge::responder::{self, RankedPassage, Retrieval, Source};
use crate::domain::knowledge::tagger::{self, Match};
use crate::domain::knowledge::tags;
use crate::domain::tenancy::workspaces;
use crate::entity::{AnswerEngine, HandoffReason, insight_tag};
use crate::error::{AppError, AppResult};

/// What would become of the question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The AI would answer it (maybe unsure: see `confidence`).
    Answered,
    /// It would go to the team.
    Handoff,
}

/// A preview of the AI's answer to one question.
#[derive(Clone, Debug)]
pub struct Preview {
    pub outcome: Outcome,
    /// Why it would be handed off.
    pub reason: Option<HandoffReason>,
    /// More on the reason: the handoff phrase found, the model's own reason.
    pub note: Option<String>,
    /// The engine that wrote `body` (`EXTRACTIVE` when the model failed).
    pub engine: AnswerEngine,
    /// What the visitor would read; `None` when nothing would be said before the
    /// handoff.
    pub body: Option<String>,
    /// The articles `body` cites.
    pub sources: Vec<Source>,
    /// The answer's confidence (see `Message.confidence`).
    pub confidence: Option<f64>,
    /// The passages retrieval found, best first, with their scores.
    pub passages: Vec<RankedPassage>,
    /// The articles retrieval found, best first (`hit@k` counts in this order).
    pub articles: Vec<Source>,
    /// The workspace's tags that match the question, with their evidence.
    pub tags: Vec<TagMatch>,
    /// Why the model's answer was not used (it failed), when it was asked.
    pub model_failure: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// A tag whose rules match the question.
#[derive(Clone, Debug)]
pub struct TagMatch {
    pub tag: insight_tag::Model,
    pub found: Match,
    /// It sends the conversation to a person (the tag's own `escalate`, or the
    /// policy's list).
    pub escalates: bool,
}

/// What the AI would do with `question` in workspace `workspace_id`, answering
/// with `engine` (the workspace's own when `None`; `MODEL` needs a model
/// configured).
pub async fn preview(
    core: &Core,
    workspace_id: &str,
    question: &str,
    engine: Option<AnswerEngine>,
) -> AppResult<Preview> {
    let question = validate::text(
        "question",
        question,
        crate::config::limits::MAX_MESSAGE_CHARS,
    )?;
    if engine == Some(AnswerEngine::Model) && core.model.is_none() {
        return Err(AppError::bad_input(
            "engine",
            "no model is configured on this server (CASEFILE_LLM_URL)",
        ));
    }
    let workspace = &workspaces::get(core, workspace_id).await?;
    let policy = workspace.handoff_policy()?;
    let mut matched = Vec::new();
    for tag in tags::list(core, &workspace.id).await? {
        if let Some(found) = tagger::matches(&tag, &question)? {
            let escalates = tag.escalate || policy.escalate_tag_ids.contains(&tag.id);
            matched.push(TagMatch {
                tag,
                found,
                escalates,
            });
        }
    }
    let escalating_tag = matched.iter().any(|m| m.escalates);
    let situation = Situation {
        message: &question,
        escalating_tag,
        ai_answers: 0,
        low_confidence_answers: 0,
    };
    let retrieval = responder::retrieve(core, &workspace.id, &question).await?;
    let engine = match engine.unwrap_or(workspaces::answer_engine(workspace, core.model.is_some()))
    {
        AnswerEngine::Off => AnswerEngine::Extractive,
        engine => engine,
    };
    let mut preview = Preview {
        outcome: Outcome::Answered,
        reason: None,
        note: None,
        engine,
        body: None,
        sources: Vec::new(),
        confidence: None,
        passages: retrieval.passages.clone(),
        articles: retrieval.articles.clone(),
        tags: matched,
        model_failure: None,
        prompt_tokens: 0,
        completion_tokens: 0,
    };
    if let Some((reason, phrase)) = policy::before_answer(&policy, &situation) {
        preview.outcome = Outcome::Handoff;
        preview.reason = Some(reason);
        preview.note = phrase;
        return Ok(preview);
    }
    if engine == AnswerEngine::Model
        && let Some(connector) = core.model.as_ref()
        && retrieval.answer.confidence >= policy.confidence_threshold
    {
        let asked =
            model::preview(core, connector, workspace, &question, &retrieval.grounding).await?;
        preview.prompt_tokens = asked.usage.prompt_tokens;
        preview.completion_tokens = asked.usage.completion_tokens;
        match asked.reply {
            Reply::Answered {
                body,
                sources,
                confidence,
            } => {
                preview.reason = policy::after_answer(&policy, &situation, confidence);
                if preview.reason.is_some() {
                    preview.outcome = Outcome::Handoff;
                }
                preview.body = Some(body);
                preview.sources = sources;
                preview.confidence = Some(confidence);
                return Ok(preview);
            }
            Reply::Handoff {
                text,
                sources,
                reason,
            } => {
                preview.outcome = Outcome::Handoff;
                preview.reason = Some(HandoffReason::AiRequested);
                preview.note = Some(reason);
                if !text.trim().is_empty() {
                    preview.confidence = Some(sources.iter().map(|s| s.score).fold(0.0, f64::max));
                    preview.body = Some(text);
                    preview.sources = sources;
                }
                return Ok(preview);
            }
            // Nothing abandons a preview: nobody takes a conversation it has not.
            Reply::Abandoned => {}
            Reply::Failed(failure) => preview.model_failure = Some(failure.to_string()),
        }
    }
    extractive(&mut preview, &policy, &situation, &retrieval);
    Ok(preview)
}

/// The extractive way, as `answering` takes it.
fn extractive(
    preview: &mut Preview,
    policy: &policy::HandoffPolicy,
    situation: &Situation<'_>,
    retrieval: &Retrieval,
) {
    let answer = &retrieval.answer;
    preview.engine = AnswerEngine::Extractive;
    if let Some(reason) = policy::after_answer(policy, situation, answer.confidence) {
        preview.outcome = Outcome::Handoff;
        preview.reason = Some(reason);
        return;
    }
    preview.outcome = Outcome::Answered;
    preview.body = Some(answer.message(policy.confidence_threshold));
    preview.sources = answer.sources.clone();
    preview.confidence = Some(answer.confidence);
}
