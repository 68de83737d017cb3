//! Resolving a conversation: by an agent, the visitor, the AI or the clock, with
//! its open handoff closed in the same transaction.

use sea_orm::{ConnectionTrait, FromQueryResult, TransactionTrait};

use crate::auth::Principal;
use crate::db::stmt;
use crate::domain::Core;
use crate::domain::chat::conversations::get;
use crate::domain::chat::messages::{NewMessage, append};
use crate::domain::core::feed::{self, Change, Event};
use crate::entity::{ConversationStatus, ResolvedBy, conversation, now_ms};
use crate::error::{AppError, AppResult};

/// Close a conversation as `principal` (see `Principal::resolves_as`: an agent, the
/// visitor, or the AI for a conversation it holds). The AI's context restarts after
/// this point, so an old request for a human does not count when the visitor writes
/// again. Resolving a resolved conversation changes nothing.
pub async fn resolve(
    core: &Core,
    principal: &Principal,
    conversation_id: &str,
) -> AppResult<conversation::Model> {
    let by = principal.resolves_as()?;
    let current = get(core, principal, conversation_id).await?;
    if current.status == ConversationStatus::Resolved {
        return Ok(current);
    }
    if by == ResolvedBy::Ai && current.status != ConversationStatus::Ai {
        return Err(AppError::Conflict {
            message: "humans have control of this conversation: the AI cannot resolve it"
                .to_owned(),
            reason: Some("CONTROL_NOT_HELD"),
        });
    }
    match close(core, &current, by, None).await? {
        Some(resolved) => Ok(resolved),
        // Resolved (or, for the AI, taken by a human) by someone else meanwhile.
        None => get(core, principal, conversation_id).await,
    }
}

/// Resolve `conversation` as `by`, with a `SYSTEM` message `note` when given, and
/// close its open handoff, in one transaction. The AI and the clock (`AI`, `AUTO`)
/// resolve only while the AI holds the conversation, so that an agent who took it a
/// moment before wins. `None` when it was no longer open to `by` (resolved by
/// someone else, or taken by a human).
pub async fn close(
    core: &Core,
    conversation: &conversation::Model,
    by: ResolvedBy,
    note: Option<String>,
) -> AppResult<Option<conversation::Model>> {
    let txn = core.db.writer.begin().await?;
    let held = if matches!(by, ResolvedBy::Ai | ResolvedBy::Auto) {
        "status = 'AI'"
    } else {
        "status <> 'RESOLVED'"
    };
    let mut events = Vec::with_capacity(3);
    if let Some(note) = note {
        let appended = append(
            &txn,
            &conversation.workspace_id,
            &conversation.id,
            NewMessage::system(note),
        )
        .await?;
        // The AI and the clock decided on `conversation` as it was: a message
        // written since (or a human taking it) voids the decision.
        let unchanged = appended.conversation.status == ConversationStatus::Ai
            && appended.conversation.last_seq == conversation.last_seq + 1;
        if matches!(by, ResolvedBy::Ai | ResolvedBy::Auto) && !unchanged {
            return Ok(None);
        }
        events.push(Event::message_created(
            appended.message,
            appended.conversation,
        ));
    }
    let now = now_ms();
    let row = txn
        .query_one_raw(stmt(
            core.db.backend(),
            &format!(
                "UPDATE conversations SET status = 'RESOLVED', ai_boundary_seq = last_seq, \
                 updated_at = ?, resolved_by = ?, resolved_at = ? \
                 WHERE id = ? AND workspace_id = ? AND {held} RETURNING *"
            ),
            vec![
                now.into(),
                sea_orm::ActiveEnum::to_value(&by).into(),
                now.into(),
                conversation.id.as_str().into(),
                conversation.workspace_id.as_str().into(),
            ],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let conv = conversation::Model::from_query_result(&row, "")?;
    let handoff = super::handoffs::resolve_open(&txn, &conv.id).await?;
    events.push(Event::conversation_changed(conv.clone(), Change::Status));
    if let Some(handoff) = &handoff {
        events.push(Event::handoff_changed(handoff.clone(), conv.clone()));
    }
    feed::commit(core, txn, &events).await?;
    if let Some(handoff) = &handoff {
        core.accepts.changed(handoff);
    }
    Ok(Some(conv))
}
