//! Messages: appending with a gap-free per-conversation `seq`, idempotent retries,
//! and reading them back in order.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait, TryIntoModel,
};

use crate::auth::Principal;
use crate::config::limits::MAX_MESSAGE_CHARS;
use crate::domain::Core;
use crate::domain::core::feed::{self, Event};
use crate::entity::{Author, ConversationStatus, conversation, message, now_ms};
use crate::error::{AppError, AppResult};
use crate::ids::{Kind, new_id};

use crate::db::stmt;
use crate::domain::core::validate;

/// A message about to be stored.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub author: Author,
    pub agent_id: Option<String>,
    pub body: String,
    pub internal: bool,
    pub confidence: Option<f64>,
    /// JSON array of cited sources.
    pub sources: String,
    pub client_message_id: Option<String>,
    /// For AI answers: the `seq` of the visitor message answered; a newer visitor
    /// message makes the answer stale.
    pub reply_to_seq: Option<i64>,
}

impl NewMessage {
    /// A message from `principal`, with its body and retry key validated.
    pub fn from_principal(
        principal: &Principal,
        body: &str,
        internal: bool,
        client_message_id: Option<&str>,
    ) -> AppResult<NewMessage> {
        let (author, agent_id) = match principal {
            Principal::Agent(agent) => (Author::Agent, Some(agent.agent_id.clone())),
            Principal::Visitor(_) if internal => {
                return Err(AppError::forbidden("visitors cannot write internal notes"));
            }
            Principal::Visitor(_) => (Author::Visitor, None),
            Principal::ApiKey(_) if internal => {
                return Err(AppError::forbidden("the AI cannot write internal notes"));
            }
            Principal::ApiKey(_) if principal.is_ai() => (Author::Ai, None),
            Principal::ApiKey(_) => {
                return Err(AppError::forbidden("this API key lacks the AI_WRITE scope"));
            }
        };
        Ok(NewMessage {
            author,
            agent_id,
            body: body_text(body)?,
            internal,
            confidence: None,
            sources: "[]".to_owned(),
            client_message_id: client_message_id
                .map(|id| validate::text("clientMessageId", id, 128))
                .transpose()?,
            reply_to_seq: None,
        })
    }
}

impl NewMessage {
    /// A `SYSTEM` message telling the visitor what is happening.
    pub fn system(body: String) -> NewMessage {
        NewMessage::plain(Author::System, body)
    }

    /// A public message of `author` with nothing but its body.
    pub fn plain(author: Author, body: String) -> NewMessage {
        NewMessage {
            author,
            agent_id: None,
            body,
            internal: false,
            confidence: None,
            sources: "[]".to_owned(),
            client_message_id: None,
            reply_to_seq: None,
        }
    }
}

/// A message body: not empty, at most [`MAX_MESSAGE_CHARS`], never truncated.
pub fn body_text(body: &str) -> AppResult<String> {
    validate::text("body", body, MAX_MESSAGE_CHARS)
}

/// `extensions.reason` of a `clientMessageId` reused for a different message.
pub const IDEMPOTENCY_KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";

/// The outcome of an append.
pub struct Appended {
    pub message: message::Model,
    /// `false` when a message with the same `clientMessageId` already existed and
    /// was returned instead.
    pub created: bool,
    /// The conversation after the append.
    pub conversation: conversation::Model,
}

/// Append a message inside `txn`: take the next `seq` by bumping the conversation's
/// `last_seq` (which also serialises concurrent appends to one conversation), then
/// insert. A visitor message reopens a resolved conversation to the AI.
pub async fn append(
    txn: &DatabaseTransaction,
    workspace_id: &str,
    conversation_id: &str,
    new: NewMessage,
) -> AppResult<Appended> {
    let now = now_ms();
    let reopen = new.author == Author::Visitor;
    let row = txn
        .query_one_raw(stmt(
            txn.get_database_backend(),
            "UPDATE conversations SET last_seq = last_seq + 1, updated_at = ?, \
             status = CASE WHEN status = 'RESOLVED' AND ? THEN 'AI' ELSE status END, \
             resolved_by = CASE WHEN status = 'RESOLVED' AND ? THEN NULL ELSE resolved_by END, \
             resolved_at = CASE WHEN status = 'RESOLVED' AND ? THEN NULL ELSE resolved_at END \
             WHERE id = ? AND workspace_id = ? RETURNING *",
            vec![
                now.into(),
                reopen.into(),
                reopen.into(),
                reopen.into(),
                conversation_id.into(),
                workspace_id.into(),
            ],
        ))
        .await?
        .ok_or(AppError::NotFound("conversation"))?;
    let conversation = conversation::Model::from_query_result(&row, "")?;
    if new.author == Author::Ai {
        ai_may_post(txn, &conversation, new.reply_to_seq).await?;
    }
    if let Some(client_id) = &new.client_message_id {
        let existing = message::Entity::find()
            .filter(message::Column::ConversationId.eq(conversation_id))
            .filter(message::Column::ClientMessageId.eq(client_id))
            .one(txn)
            .await?;
        if let Some(message) = existing {
            // A retry of the same send returns what was stored. The key is its
            // author's alone: another author's, or another body, is a conflict, and
            // never returns someone else's message.
            let same_author = message.author == new.author && message.agent_id == new.agent_id;
            if !same_author || message.body != new.body || message.internal != new.internal {
                return Err(AppError::Conflict {
                    message: "this clientMessageId was already used for another message: \
                              send a new one for a new message"
                        .to_owned(),
                    reason: Some(IDEMPOTENCY_KEY_REUSED),
                });
            }
            return Ok(Appended {
                message,
                created: false,
                conversation,
            });
        }
    }
    let active = message::ActiveModel {
        id: Set(new_id(Kind::Message)),
        workspace_id: Set(workspace_id.to_owned()),
        conversation_id: Set(conversation_id.to_owned()),
        seq: Set(conversation.last_seq),
        author: Set(new.author),
        agent_id: Set(new.agent_id),
        body: Set(new.body),
        internal: Set(new.internal),
        confidence: Set(new.confidence),
        sources: Set(new.sources),
        client_message_id: Set(new.client_message_id),
        reply_to_seq: Set(new.reply_to_seq),
        created_at: Set(now),
    };
    // Every column is known here: nothing to read back.
    let message = active.clone().try_into_model()?;
    message::Entity::insert(active)
        .exec_without_returning(txn)
        .await?;
    if message.author == Author::Ai && !message.internal {
        let sources = message.sources()?;
        let cited: Vec<&str> = sources.iter().map(|s| s.article_id.as_str()).collect();
        super::article_uses::record(txn, workspace_id, conversation_id, &cited, true).await?;
    }
    Ok(Appended {
        message,
        created: true,
        conversation,
    })
}

/// The server, not the bot, decides who speaks: the AI may post only while the
/// conversation is `AI`, and an answer to a visitor message that has since been
/// followed by a newer one is stale.
async fn ai_may_post(
    txn: &DatabaseTransaction,
    conversation: &conversation::Model,
    reply_to_seq: Option<i64>,
) -> AppResult<()> {
    if conversation.status != ConversationStatus::Ai {
        return Err(AppError::Conflict {
            message: format!(
                "the conversation is {}: humans have control, the AI cannot post",
                format!("{:?}", conversation.status).to_uppercase()
            ),
            reason: Some("CONTROL_NOT_HELD"),
        });
    }
    let Some(answered) = reply_to_seq else {
        return Ok(());
    };
    let newer = message::Entity::find()
        .filter(message::Column::ConversationId.eq(conversation.id.as_str()))
        .filter(message::Column::Author.eq(Author::Visitor))
        .filter(message::Column::Seq.gt(answered))
        .count(txn)
        .await?;
    if newer > 0 {
        return Err(AppError::Conflict {
            message: "the visitor wrote again since; this answer is stale and was dropped"
                .to_owned(),
            reason: Some("STALE_ANSWER"),
        });
    }
    Ok(())
}

/// Store a message the server itself writes (an AI answer), and publish it: the
/// message, and the conversation as it stands after it.
pub async fn post(
    core: &Core,
    workspace_id: &str,
    conversation_id: &str,
    new: NewMessage,
) -> AppResult<Appended> {
    let txn = core.db.writer.begin().await?;
    let appended = append(&txn, workspace_id, conversation_id, new).await?;
    let created = Event::message_created(appended.message.clone(), appended.conversation.clone());
    feed::commit(core, txn, &[created]).await?;
    Ok(appended)
}

fn visible(conversation_id: &str, include_internal: bool) -> sea_orm::Select<message::Entity> {
    let mut select =
        message::Entity::find().filter(message::Column::ConversationId.eq(conversation_id));
    if !include_internal {
        select = select.filter(message::Column::Internal.eq(false));
    }
    select
}

/// Up to `limit` messages with `seq > after_seq`, in order.
pub async fn page(
    core: &Core,
    conversation_id: &str,
    include_internal: bool,
    after_seq: i64,
    limit: u64,
) -> AppResult<Vec<message::Model>> {
    Ok(visible(conversation_id, include_internal)
        .filter(message::Column::Seq.gt(after_seq))
        .order_by_asc(message::Column::Seq)
        .limit(limit)
        .all(&core.db.reader)
        .await?)
}

pub async fn count(core: &Core, conversation_id: &str, include_internal: bool) -> AppResult<u64> {
    Ok(visible(conversation_id, include_internal)
        .count(&core.db.reader)
        .await?)
}

/// A message by id, if `principal` may see it.
pub async fn get(core: &Core, principal: &Principal, id: &str) -> AppResult<message::Model> {
    let message = message::Entity::find_by_id(id)
        .filter(message::Column::WorkspaceId.eq(principal.workspace_id()))
        .one(&core.db.reader)
        .await?
        .ok_or(AppError::NotFound("message"))?;
    principal.can_access_conversation(&message.conversation_id)?;
    if message.internal && !principal.sees_internal() {
        return Err(AppError::NotFound("message"));
    }
    Ok(message)
}
