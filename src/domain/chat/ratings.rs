//! Visitor ratings of conversations (CSAT), 1 to 5, one per conversation.

use sea_orm::{ConnectionTrait, EntityTrait};

use crate::auth::Principal;
use crate::domain::Core;
use crate::entity::{now_ms, rating};
use crate::error::{AppError, AppResult};

use crate::db::stmt;
use crate::domain::core::validate;

/// The visitor rates its conversation; rating again replaces the rating.
pub async fn rate(
    core: &Core,
    principal: &Principal,
    conversation_id: &str,
    score: i32,
    comment: Option<&str>,
) -> AppResult<rating::Model> {
    core.rate.visitor_write(principal)?;
    if !matches!(principal, Principal::Visitor(_)) {
        return Err(AppError::forbidden("only the visitor rates a conversation"));
    }
    if !(1..=5).contains(&score) {
        return Err(AppError::bad_input("score", "must be between 1 and 5"));
    }
    let comment = match comment.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => Some(validate::text("comment", c, 2_000)?),
        None => None,
    };
    let conversation = super::conversations::get(core, principal, conversation_id).await?;
    core
        .db
        .writer
        .execute_raw(stmt(
            core.db.backend(),
            "INSERT INTO conversation_ratings (conversation_id, workspace_id, score, comment, created_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (conversation_id) DO UPDATE SET \
             score = excluded.score, comment = excluded.comment, created_at = excluded.created_at",
            vec![
                conversation.id.as_str().into(),
                conversation.workspace_id.as_str().into(),
                score.into(),
                comment.into(),
                now_ms().into(),
            ],
        ))
        .await?;
    of(core, &conversation.id)
        .await?
        .ok_or_else(|| AppError::internal("rating vanished"))
}

pub async fn of(core: &Core, conversation_id: &str) -> AppResult<Option<rating::Model>> {
    Ok(rating::Entity::find_by_id(conversation_id)
        .one(&core.db.writer)
        .await?)
}
