//! Answering a visitor message in a conversation the AI holds, with the
//! workspace's engine (`Workspace.answerEngine`):
//!
//! - `OFF`: nothing here; an integrator's model posts with an `AI_WRITE` key.
//! - `EXTRACTIVE`: the best passage, quoted; below the policy's threshold, a
//!   request to rephrase, or a handoff when the policy says so.
//! - `MODEL`: when retrieval finds a passage over the threshold, the model writes
//!   the answer from the best passages, streamed as it is written and stored once
//!   (then the policy's low-confidence path applies to it as to any answer); it may
//!   hand off by calling `handoff_to_human`. Nothing over the threshold, the
//!   model's breaker open, or the workspace's daily tokens spent: the extractive
//!   way, without asking the model. A model that fails answers the extractive way
//!   too, so no visitor message is left unanswered and unhanded.

use sea_orm::TransactionTrait;

use crate::domain::Core;
use crate::domain::chat::article_uses;
use crate::domain::chat::messages::{self, Appended, NewMessage};
use crate::domain::core::feed::{self, Event};
use crate::domain::handoff::policy::{self, HandoffPolicy, Situation};
use crate::domain::handoff::request::request;
use crate::domain::knowledge::model::{self, Outcome, Reply};
use crate::domain::knowledge::responder::{self, Answer, Source};
use crate::domain::knowledge::tagger;
use crate::domain::tenancy::workspaces;
use crate::entity::model_call::ModelOutcome;
use crate::entity::{AnswerEngine, Author, HandoffReason, conversation, message, workspace};
use crate::error::{AppError, AppResult};
use crate::llm::Connector;

/// The articles of a retrieval noted as used by the conversation, at most.
const RETRIEVED: usize = 3;

/// What a visitor message is being answered in.
pub struct Question<'a> {
    pub workspace: &'a workspace::Model,
    pub conversation: &'a conversation::Model,
    pub message: &'a message::Model,
    pub policy: &'a HandoffPolicy,
    pub situation: &'a Situation<'a>,
}

/// Answer the question with the workspace's engine.
pub async fn answer(core: &Core, question: &Question<'_>) -> AppResult<()> {
    let engine = workspaces::answer_engine(question.workspace, core.model.is_some());
    if engine == AnswerEngine::Off {
        return Ok(());
    }
    let retrieval =
        responder::retrieve(core, &question.workspace.id, &question.message.body).await?;
    // Retrieved: the best few it found (full-text matches with a passage that
    // covers part of the question, or found by meaning).
    let found: Vec<&str> = retrieval
        .articles
        .iter()
        .take(RETRIEVED)
        .filter(|a| a.score > 0.0 || core.embedder.is_some())
        .map(|a| a.article_id.as_str())
        .collect();
    let conversation = question.conversation;
    article_uses::record(
        &core.db.writer,
        &conversation.workspace_id,
        &conversation.id,
        &found,
        false,
    )
    .await?;
    if engine == AnswerEngine::Model
        && let Some(connector) = core.model.as_ref()
        && retrieval.answer.confidence >= question.policy.confidence_threshold
        && connector.breaker().allows()
        && within_daily_limit(core, question.workspace).await?
    {
        let outcome = model::answer(
            core,
            connector,
            question.workspace,
            question.conversation,
            question.message,
            &retrieval.grounding,
        )
        .await?;
        if handled(core, connector, question, outcome).await? {
            return Ok(());
        }
    }
    extractive(core, question, &retrieval.answer).await
}

/// Whether the workspace may still use the model today.
async fn within_daily_limit(core: &Core, workspace: &workspace::Model) -> AppResult<bool> {
    match workspace.model_daily_token_limit {
        None => Ok(true),
        Some(limit) => Ok(model::tokens_today(core, &workspace.id).await? < limit),
    }
}

/// Do what the model's reply asks; `false` when it failed and the question is still
/// to be answered.
async fn handled(
    core: &Core,
    connector: &Connector,
    question: &Question<'_>,
    outcome: Outcome,
) -> AppResult<bool> {
    let Question {
        conversation,
        message,
        ..
    } = question;
    // An answer stored is recorded in its transaction; anything else on its own.
    let stored = match &outcome.reply {
        Reply::Answered {
            body,
            sources,
            confidence,
        } => {
            let answered = (&outcome, ModelOutcome::Answered);
            match post(core, question, body, sources, *confidence, answered).await? {
                Some(posted) => {
                    let after =
                        policy::after_answer(question.policy, question.situation, *confidence);
                    if let Some(reason) = after {
                        request(core, &posted.conversation, reason, None).await?;
                    }
                    return Ok(true);
                }
                None => ModelOutcome::Abandoned,
            }
        }
        Reply::Handoff {
            text,
            sources,
            reason,
        } => {
            let confidence = sources.iter().map(|s| s.score).fold(0.0, f64::max);
            let handoff = (&outcome, ModelOutcome::Handoff);
            let posted = if text.trim().is_empty() {
                model::record(&core.db.writer, conversation, message, &outcome, handoff.1).await?;
                Some(None)
            } else {
                post(core, question, text, sources, confidence, handoff)
                    .await?
                    .map(Some)
            };
            match posted {
                Some(posted) => {
                    let current = posted.as_ref().map_or(*conversation, |p| &p.conversation);
                    let note = Some(reason.clone());
                    request(core, current, HandoffReason::AiRequested, note).await?;
                    return Ok(true);
                }
                None => ModelOutcome::Abandoned,
            }
        }
        Reply::Abandoned => ModelOutcome::Abandoned,
        Reply::Failed(failure) => {
            tracing::warn!(
                model.host = %connector.host(),
                failure = %failure,
                conversation.id = %conversation.id,
                "the model failed: answered the extractive way"
            );
            if connector.breaker().failed() {
                tracing::warn!(
                    model.host = %connector.host(),
                    "the model keeps failing: not calling it for a while"
                );
            }
            ModelOutcome::Failed
        }
    };
    model::record(&core.db.writer, conversation, message, &outcome, stored).await?;
    Ok(stored != ModelOutcome::Failed)
}

/// Store the model's answer with the record of its request (`None` when a person
/// took the conversation, or the visitor wrote again, just before: nothing is
/// stored), and apply the tags of the articles it cites.
async fn post(
    core: &Core,
    question: &Question<'_>,
    body: &str,
    sources: &[Source],
    confidence: f64,
    (outcome, kind): (&Outcome, ModelOutcome),
) -> AppResult<Option<Appended>> {
    let reply = NewMessage {
        author: Author::Ai,
        agent_id: None,
        body: body.to_owned(),
        internal: false,
        confidence: Some((confidence * 1000.0).round() / 1000.0),
        sources: crate::entity::encode(&sources)?,
        client_message_id: None,
        reply_to_seq: Some(question.message.seq),
    };
    let conversation = question.conversation;
    let txn = core.db.writer.begin().await?;
    let posted =
        match messages::append(&txn, &conversation.workspace_id, &conversation.id, reply).await {
            Ok(posted) => posted,
            Err(AppError::Conflict { .. }) => return Ok(None),
            Err(err) => return Err(err),
        };
    model::record(&txn, conversation, question.message, outcome, kind).await?;
    let created = Event::message_created(posted.message.clone(), posted.conversation.clone());
    feed::commit(core, txn, &[created]).await?;
    tagger::tag_cited_articles(core, &posted.conversation, &posted.message).await?;
    Ok(Some(posted))
}

/// The extractive way: the best passage, framed by how sure it is, or a handoff
/// when the policy says the AI has been unsure too often.
async fn extractive(core: &Core, question: &Question<'_>, answer: &Answer) -> AppResult<()> {
    let Question {
        conversation,
        message,
        policy,
        situation,
        ..
    } = question;
    if let Some(reason) = policy::after_answer(policy, situation, answer.confidence) {
        request(core, conversation, reason, None).await?;
        return Ok(());
    }
    let reply = NewMessage {
        author: Author::Ai,
        agent_id: None,
        body: answer.message(policy.confidence_threshold),
        internal: false,
        confidence: Some(answer.confidence),
        sources: crate::entity::encode(&answer.sources)?,
        client_message_id: None,
        reply_to_seq: Some(message.seq),
    };
    let posted =
        match messages::post(core, &conversation.workspace_id, &conversation.id, reply).await {
            Ok(posted) => posted,
            // A human took over, or the visitor wrote again: this answer is dropped.
            Err(AppError::Conflict { .. }) => return Ok(()),
            Err(err) => return Err(err),
        };
    // The topics that cover the articles it cites.
    tagger::tag_cited_articles(core, &posted.conversation, &posted.message).await?;
    Ok(())
}
