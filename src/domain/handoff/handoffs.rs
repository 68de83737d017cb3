//! Handoffs: passing a conversation from the AI to humans, with its case file.
//! Requested in `request`, accepted (or taken over) in `accept`, passed on in
//! `transfer`; here what they share, handing back to the AI, and listing them.
//!
//! Every transition is one transaction that checks the state it leaves with an
//! `UPDATE … WHERE status = …` that must touch exactly one row, moves the
//! conversation's status along (`AI → QUEUED → HUMAN → RESOLVED`, or back to `AI`),
//! and tells the visitor what is happening with a `SYSTEM` message. A conversation
//! has at most one open handoff (a unique index on open handoffs), and of many
//! agents accepting one at once exactly one wins.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use crate::auth::AgentPrincipal;
use crate::domain::Core;
use crate::domain::core::feed::{self, Change, Event};
use crate::entity::handoff_offer::OfferOutcome;
use crate::entity::{
    ConversationStatus, HandoffReason, HandoffStatus, conversation, handoff, message, now_ms,
};
use crate::error::{AppError, AppResult};

use crate::db::stmt;
use crate::domain::chat::messages::{NewMessage, append};

/// What a handoff transaction produced, to store as events with it.
pub(super) struct Outcome {
    pub handoff: handoff::Model,
    pub conversation: conversation::Model,
    pub messages: Vec<message::Model>,
}

impl Outcome {
    /// Store the events of this outcome in `txn` and commit it.
    pub async fn commit(self, core: &Core, txn: DatabaseTransaction) -> AppResult<handoff::Model> {
        let mut conversation = self.conversation;
        let mut events = Vec::with_capacity(self.messages.len() + 2);
        for message in self.messages {
            // Each system message is told with the conversation as it stood then.
            conversation.last_seq = message.seq;
            events.push(Event::message_created(message, conversation.clone()));
        }
        events.push(Event::conversation_changed(
            conversation.clone(),
            Change::Status,
        ));
        events.push(Event::handoff_changed(self.handoff.clone(), conversation));
        feed::commit(core, txn, &events).await?;
        core.accepts.changed(&self.handoff);
        Ok(self.handoff)
    }
}

/// Move the conversation to `status` (and assignee/team when given) inside `txn`.
pub(super) async fn set_conversation(
    txn: &DatabaseTransaction,
    conversation_id: &str,
    status: ConversationStatus,
    assignee: Option<Option<&str>>,
    team: Option<Option<&str>>,
    boundary: bool,
) -> AppResult<conversation::Model> {
    let mut sql = String::from("UPDATE conversations SET status = ?, updated_at = ?");
    let mut values: Vec<sea_orm::Value> = vec![status_str(status).into(), now_ms().into()];
    if let Some(assignee) = assignee {
        sql.push_str(", assignee_id = ?");
        values.push(assignee.map(str::to_owned).into());
    }
    if let Some(team) = team {
        sql.push_str(", team_id = ?");
        values.push(team.map(str::to_owned).into());
    }
    if boundary {
        sql.push_str(", ai_boundary_seq = last_seq");
    }
    sql.push_str(" WHERE id = ? RETURNING *");
    values.push(conversation_id.into());
    let row = txn
        .query_one_raw(stmt(txn.get_database_backend(), &sql, values))
        .await?
        .ok_or(AppError::NotFound("conversation"))?;
    Ok(conversation::Model::from_query_result(&row, "")?)
}

fn status_str(status: ConversationStatus) -> &'static str {
    match status {
        ConversationStatus::Ai => "AI",
        ConversationStatus::Queued => "QUEUED",
        ConversationStatus::Human => "HUMAN",
        ConversationStatus::Resolved => "RESOLVED",
    }
}

/// The open handoff of a conversation, if any.
pub async fn open_for<C: ConnectionTrait>(
    conn: &C,
    conversation_id: &str,
) -> AppResult<Option<handoff::Model>> {
    Ok(handoff::Entity::find()
        .filter(handoff::Column::ConversationId.eq(conversation_id))
        .filter(handoff::Column::Status.is_in([
            HandoffStatus::Requested,
            HandoffStatus::Offered,
            HandoffStatus::Accepted,
        ]))
        .one(conn)
        .await?)
}

pub async fn get(core: &Core, workspace_id: &str, id: &str) -> AppResult<handoff::Model> {
    handoff::Entity::find_by_id(id)
        .filter(handoff::Column::WorkspaceId.eq(workspace_id))
        .one(&core.db.reader)
        .await?
        .ok_or(AppError::NotFound("handoff"))
}

pub(super) async fn agent_name(
    core: &Core,
    workspace_id: &str,
    agent_id: &str,
) -> AppResult<String> {
    match crate::domain::tenancy::agents::get(core, workspace_id, agent_id).await {
        Ok(agent) => Ok(agent.name),
        Err(AppError::NotFound(_)) => Ok("An agent".to_owned()),
        Err(err) => Err(err),
    }
}

/// The conversation goes to `agent_id`: status HUMAN, assigned, and the visitor is
/// told who joined.
pub(super) async fn joined(
    txn: &DatabaseTransaction,
    handoff: handoff::Model,
    agent_id: &str,
    name: &str,
) -> AppResult<Outcome> {
    set_conversation(
        txn,
        &handoff.conversation_id,
        ConversationStatus::Human,
        Some(Some(agent_id)),
        None,
        false,
    )
    .await?;
    let appended = append(
        txn,
        &handoff.workspace_id,
        &handoff.conversation_id,
        NewMessage::system(format!("{name} joined the conversation.")),
    )
    .await?;
    Ok(Outcome {
        handoff,
        conversation: appended.conversation,
        messages: vec![appended.message],
    })
}

/// Hand the conversation back to the AI: the open handoff is cancelled, and the AI's
/// context starts after this point.
pub async fn return_to_ai(
    core: &Core,
    agent: &AgentPrincipal,
    conversation_id: &str,
) -> AppResult<conversation::Model> {
    let principal = crate::auth::Principal::Agent(agent.clone());
    let conversation =
        crate::domain::chat::conversations::get(core, &principal, conversation_id).await?;
    if conversation.status == ConversationStatus::Ai {
        return Ok(conversation);
    }
    let txn = core.db.writer.begin().await?;
    let cancelled = txn
        .query_one_raw(stmt(
            txn.get_database_backend(),
            "UPDATE handoffs SET status = 'CANCELLED', cancelled_at = ?, \
               offered_to = NULL, offer_expires_at = NULL \
             WHERE conversation_id = ? AND status IN ('REQUESTED', 'OFFERED', 'ACCEPTED') \
             RETURNING *",
            vec![now_ms().into(), conversation_id.into()],
        ))
        .await?
        .map(|row| handoff::Model::from_query_result(&row, ""))
        .transpose()?;
    if let Some(handoff) = &cancelled {
        super::routing::ended(&txn, &handoff.id, OfferOutcome::Withdrawn).await?;
    }
    let appended = append(
        &txn,
        &conversation.workspace_id,
        conversation_id,
        NewMessage::system(
            "You're chatting with the AI assistant again. Ask for a person at any time.".to_owned(),
        ),
    )
    .await?;
    let conversation = set_conversation(
        &txn,
        conversation_id,
        ConversationStatus::Ai,
        Some(None),
        None,
        true,
    )
    .await?;
    match cancelled {
        Some(handoff) => {
            Outcome {
                handoff,
                conversation: conversation.clone(),
                messages: vec![appended.message],
            }
            .commit(core, txn)
            .await?;
        }
        None => {
            let events = [
                Event::message_created(appended.message, appended.conversation),
                Event::conversation_changed(conversation.clone(), Change::Status),
            ];
            feed::commit(core, txn, &events).await?;
        }
    }
    Ok(conversation)
}

/// Close the open handoff of a conversation being resolved, inside its transaction.
pub async fn resolve_open(
    txn: &DatabaseTransaction,
    conversation_id: &str,
) -> AppResult<Option<handoff::Model>> {
    let row = txn
        .query_one_raw(stmt(
            txn.get_database_backend(),
            "UPDATE handoffs SET status = 'RESOLVED', resolved_at = ?, \
               offered_to = NULL, offer_expires_at = NULL \
             WHERE conversation_id = ? AND status IN ('REQUESTED', 'OFFERED', 'ACCEPTED') \
             RETURNING *",
            vec![now_ms().into(), conversation_id.into()],
        ))
        .await?;
    let handoff = row
        .map(|row| handoff::Model::from_query_result(&row, ""))
        .transpose()?;
    if let Some(handoff) = &handoff {
        super::routing::ended(txn, &handoff.id, OfferOutcome::Withdrawn).await?;
    }
    Ok(handoff)
}

#[derive(Clone, Debug, Default)]
pub struct HandoffFilter {
    pub statuses: Vec<HandoffStatus>,
    pub team_id: Option<String>,
    pub reasons: Vec<HandoffReason>,
    pub since: Option<i64>,
    pub conversation_id: Option<String>,
}

impl HandoffFilter {
    fn select(&self, workspace_id: &str) -> sea_orm::Select<handoff::Entity> {
        use handoff::Column as H;
        let mut select = handoff::Entity::find().filter(H::WorkspaceId.eq(workspace_id));
        if !self.statuses.is_empty() {
            select = select.filter(H::Status.is_in(self.statuses.iter().copied()));
        }
        if !self.reasons.is_empty() {
            select = select.filter(H::Reason.is_in(self.reasons.iter().copied()));
        }
        if let Some(team) = &self.team_id {
            select = select.filter(H::TeamId.eq(team.as_str()));
        }
        if let Some(since) = self.since {
            select = select.filter(H::RequestedAt.gte(since));
        }
        if let Some(conversation) = &self.conversation_id {
            select = select.filter(H::ConversationId.eq(conversation.as_str()));
        }
        select
    }
}

/// Handoffs, newest first, after the handoff `after`.
pub async fn page(
    core: &Core,
    workspace_id: &str,
    filter: &HandoffFilter,
    after: Option<&str>,
    limit: u64,
) -> AppResult<Vec<handoff::Model>> {
    let mut select = filter.select(workspace_id);
    if let Some(after) = after {
        select = select.filter(handoff::Column::Id.lt(after));
    }
    Ok(select
        .order_by_desc(handoff::Column::Id)
        .limit(limit)
        .all(&core.db.reader)
        .await?)
}

pub async fn count(core: &Core, workspace_id: &str, filter: &HandoffFilter) -> AppResult<u64> {
    Ok(filter.select(workspace_id).count(&core.db.reader).await?)
}
