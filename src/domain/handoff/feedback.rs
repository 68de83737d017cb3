//! What people say about the AI's answers: the visitor's "Did that answer your
//! question?" (`confirmAnswer`), which can end or hand off the conversation, and
//! agents' flags on answers that were wrong (`flagAnswer`). Both are counted per
//! cited article in `insights`.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::auth::{AgentPrincipal, Principal};
use crate::domain::Core;
use crate::entity::{
    Author, ConversationStatus, ResolvedBy, answer_feedback, answer_flag, conversation, message,
    now_ms,
};
use crate::error::{AppError, AppResult};
use crate::ids::{Kind, new_id};

use super::policy::{self};
use crate::db::stmt;
use crate::domain::core::validate;

/// What the visitor is told when a confirmed answer ends the conversation.
pub const RESOLVED_NOTE: &str =
    "Glad that helped! This conversation is closed; write again any time.";

/// Longest feedback comment or flag reason, in characters.
const MAX_COMMENT_CHARS: usize = 2_000;

/// An AI answer of `conversation`, or `NOT_FOUND`.
async fn ai_answer(
    core: &Core,
    conversation: &conversation::Model,
    message_id: &str,
) -> AppResult<message::Model> {
    message::Entity::find_by_id(message_id)
        .one(&core.db.writer)
        .await?
        .filter(|m| m.conversation_id == conversation.id && m.author == Author::Ai)
        .ok_or(AppError::NotFound("AI answer"))
}

fn comment(field: &str, text: Option<&str>) -> AppResult<Option<String>> {
    match text.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => Ok(Some(validate::text(field, c, MAX_COMMENT_CHARS)?)),
        None => Ok(None),
    }
}

/// The visitor answers "Did that answer your question?" about an AI answer of its
/// conversation (asking again replaces the answer). `helpful` on the AI's latest
/// answer, while the AI holds the conversation, resolves it as resolved by the AI;
/// unhelpful answers count against the policy's `maxUnhelpfulAnswers`, past which
/// the conversation is handed off as `UNRESOLVED`. The conversation as it is after.
pub async fn confirm(
    core: &Core,
    principal: &Principal,
    conversation_id: &str,
    message_id: &str,
    helpful: bool,
    text: Option<&str>,
) -> AppResult<conversation::Model> {
    core.rate.visitor_write(principal)?;
    if !matches!(principal, Principal::Visitor(_)) {
        return Err(AppError::forbidden(
            "only the visitor confirms an answer: agents flag answers with flagAnswer",
        ));
    }
    let text = comment("comment", text)?;
    let conversation =
        crate::domain::chat::conversations::get(core, principal, conversation_id).await?;
    let answer = ai_answer(core, &conversation, message_id).await?;
    core
        .db
        .writer
        .execute_raw(stmt(
            core.db.backend(),
            "INSERT INTO answer_feedback (id, workspace_id, conversation_id, message_id, helpful, comment, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO UPDATE SET \
             helpful = excluded.helpful, comment = excluded.comment, created_at = excluded.created_at",
            vec![
                new_id(Kind::Feedback).into(),
                conversation.workspace_id.as_str().into(),
                conversation.id.as_str().into(),
                answer.id.as_str().into(),
                helpful.into(),
                text.into(),
                now_ms().into(),
            ],
        ))
        .await?;
    if conversation.status != ConversationStatus::Ai {
        return Ok(conversation);
    }
    if helpful {
        let latest = message::Entity::find()
            .filter(message::Column::ConversationId.eq(conversation.id.as_str()))
            .filter(message::Column::Author.eq(Author::Ai))
            .order_by_desc(message::Column::Seq)
            .one(&core.db.writer)
            .await?;
        if latest.is_some_and(|latest| latest.id == answer.id) {
            let note = Some(RESOLVED_NOTE.to_owned());
            if let Some(resolved) =
                super::resolution::close(core, &conversation, ResolvedBy::Ai, note).await?
            {
                return Ok(resolved);
            }
        }
        return crate::domain::chat::conversations::get(core, principal, conversation_id).await;
    }
    let workspace =
        crate::domain::tenancy::workspaces::get(core, &conversation.workspace_id).await?;
    let policy = workspace.handoff_policy()?;
    let unhelpful = unhelpful_since_control(core, &conversation).await?;
    if let Some(reason) = policy::after_unhelpful(&policy, unhelpful) {
        super::request::request(core, &conversation, reason, None).await?;
    }
    crate::domain::chat::conversations::get(core, principal, conversation_id).await
}

/// AI answers the visitor called unhelpful since the AI last took control.
async fn unhelpful_since_control(
    core: &Core,
    conversation: &conversation::Model,
) -> AppResult<u32> {
    let row = core
        .db
        .writer
        .query_one_raw(stmt(
            core.db.backend(),
            "SELECT COUNT(*) AS unhelpful FROM answer_feedback f \
             JOIN messages m ON m.id = f.message_id \
             WHERE f.conversation_id = ? AND f.helpful = ? AND m.seq > ?",
            vec![
                conversation.id.as_str().into(),
                false.into(),
                conversation.ai_boundary_seq.into(),
            ],
        ))
        .await?
        .ok_or_else(|| AppError::internal("count returned no row"))?;
    let unhelpful: i64 = row.try_get("", "unhelpful")?;
    Ok(u32::try_from(unhelpful).unwrap_or(u32::MAX))
}

/// An agent flags an AI answer as wrong, saying why (flagging again replaces the
/// reason). Shown with the answer in the case file, counted per cited article.
pub async fn flag(
    core: &Core,
    agent: &AgentPrincipal,
    message_id: &str,
    reason: &str,
) -> AppResult<answer_flag::Model> {
    let reason = comment("reason", Some(reason))?
        .ok_or_else(|| AppError::bad_input("reason", "say what was wrong with the answer"))?;
    let principal = Principal::Agent(agent.clone());
    let message = crate::domain::chat::messages::get(core, &principal, message_id).await?;
    let conversation =
        crate::domain::chat::conversations::get(core, &principal, &message.conversation_id).await?;
    let answer = ai_answer(core, &conversation, message_id).await?;
    core
        .db
        .writer
        .execute_raw(stmt(
            core.db.backend(),
            "INSERT INTO answer_flags (id, workspace_id, conversation_id, message_id, agent_id, reason, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id, agent_id) DO UPDATE SET \
             reason = excluded.reason, created_at = excluded.created_at",
            vec![
                new_id(Kind::Flag).into(),
                conversation.workspace_id.as_str().into(),
                conversation.id.as_str().into(),
                answer.id.as_str().into(),
                agent.agent_id.as_str().into(),
                reason.into(),
                now_ms().into(),
            ],
        ))
        .await?;
    answer_flag::Entity::find()
        .filter(answer_flag::Column::MessageId.eq(answer.id.as_str()))
        .filter(answer_flag::Column::AgentId.eq(agent.agent_id.as_str()))
        .one(&core.db.writer)
        .await?
        .ok_or_else(|| AppError::internal("flag vanished"))
}

/// The visitors' feedback on these answers (at most one each).
pub async fn feedback_of(
    core: &Core,
    message_ids: &[String],
) -> AppResult<Vec<answer_feedback::Model>> {
    Ok(answer_feedback::Entity::find()
        .filter(answer_feedback::Column::MessageId.is_in(message_ids.iter().cloned()))
        .all(&core.db.reader)
        .await?)
}

/// Agents' flags on these answers, oldest first.
pub async fn flags_of(core: &Core, message_ids: &[String]) -> AppResult<Vec<answer_flag::Model>> {
    Ok(answer_flag::Entity::find()
        .filter(answer_flag::Column::MessageId.is_in(message_ids.iter().cloned()))
        .order_by_asc(answer_flag::Column::CreatedAt)
        .all(&core.db.reader)
        .await?)
}
