//! What happens after a visitor writes in a conversation the AI controls: tag it,
//! let the handoff policy decide, and otherwise answer it with the workspace's
//! engine (see `answering`).
//!
//! It runs after the visitor's message committed, off the request (the answer
//! streams to the visitor like any message), one message at a time per
//! conversation. Shutdown waits for it (the work is tracked with the server's
//! connections).

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use sea_orm::{ConnectionTrait, EntityTrait};

use crate::domain::Core;
use crate::entity::{Author, ConversationStatus, conversation, message};
use crate::error::{AppError, AppResult};

use crate::db::stmt;
use crate::domain::handoff::policy::{self, Situation};

/// Handle a visitor message in the background.
pub fn after_visitor_message(core: &Core, message: &message::Model) {
    if message.author != Author::Visitor {
        return;
    }
    let (core, message) = (core.clone(), message.clone());
    let tracker = core.tasks.clone();
    core.pipelines.started();
    tracker.spawn(async move {
        // A panic (logged once by the panic hook) ends this message's handling
        // alone; the conversation's next message is handled as usual.
        let handled = AssertUnwindSafe(run(&core, &message)).catch_unwind().await;
        if let Ok(Err(err)) = handled {
            tracing::error!(conversation.id = %message.conversation_id, error.detail = %err.detail(), "handling a visitor message failed");
        }
        core.pipelines.finished();
    });
}

/// AI answers since the AI last took control, and how many of them were unsure.
async fn ai_answers(
    core: &Core,
    conversation: &conversation::Model,
    threshold: f64,
) -> AppResult<(u32, u32)> {
    let row = core
        .db
        .reader
        .query_one_raw(stmt(
            core.db.backend(),
            "SELECT COUNT(*) AS answers, \
             COALESCE(SUM(CASE WHEN confidence IS NULL OR confidence < ? THEN 1 ELSE 0 END), 0) AS unsure \
             FROM messages WHERE conversation_id = ? AND author = 'AI' AND seq > ?",
            vec![threshold.into(), conversation.id.as_str().into(), conversation.ai_boundary_seq.into()],
        ))
        .await?
        .ok_or_else(|| AppError::internal("count returned no row"))?;
    let answers: i64 = row.try_get("", "answers")?;
    let unsure: i64 = row.try_get("", "unsure")?;
    Ok((answers as u32, unsure as u32))
}

async fn run(core: &Core, message: &message::Model) -> AppResult<()> {
    let lock = core.pipelines.of(&message.conversation_id);
    let _turn = lock.lock().await;
    // Where tests of fault handling make a background task panic.
    core.faults.maybe_panic();
    let Some(conversation) = conversation::Entity::find_by_id(message.conversation_id.as_str())
        .one(&core.db.reader)
        .await?
    else {
        return Ok(());
    };
    crate::domain::knowledge::tagger::tag_message(core, &conversation, message).await?;
    if conversation.status != ConversationStatus::Ai {
        return Ok(());
    }
    let workspace =
        crate::domain::tenancy::workspaces::get(core, &conversation.workspace_id).await?;
    let policy = workspace.handoff_policy()?;
    let applied =
        crate::domain::knowledge::tags::applied(core, std::slice::from_ref(&conversation.id))
            .await?;
    let escalating_tag = applied
        .iter()
        .any(|(_, tag)| tag.escalate || policy.escalate_tag_ids.contains(&tag.id));
    let (answers, unsure) = ai_answers(core, &conversation, policy.confidence_threshold).await?;
    let situation = Situation {
        message: &message.body,
        escalating_tag,
        ai_answers: answers,
        low_confidence_answers: unsure,
    };
    if let Some((reason, _phrase)) = policy::before_answer(&policy, &situation) {
        crate::domain::handoff::request::request(core, &conversation, reason, None).await?;
        return Ok(());
    }
    let question = super::answering::Question {
        workspace: &workspace,
        conversation: &conversation,
        message,
        policy: &policy,
        situation: &situation,
    };
    super::answering::answer(core, &question).await
}
