//! Transferring an open handoff to another team (it waits again) or to an agent
//! (who owns it at once).

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, TransactionTrait,
};

use super::handoffs::{Outcome, get, joined, set_conversation};
use super::request::sla_due;
use crate::auth::AgentPrincipal;
use crate::db::stmt;
use crate::domain::Core;
use crate::domain::chat::messages::{NewMessage, append};
use crate::entity::handoff_offer::OfferOutcome;
use crate::entity::{ConversationStatus, HandoffStatus, handoff, now_ms, team_member};
use crate::error::{AppError, AppResult};

/// Where a handoff is transferred.
pub enum Transfer<'a> {
    /// Back to the queue, for another team.
    Team(&'a str),
    /// Straight to an agent, who then owns it.
    Agent(&'a str),
}

/// Transfer an open handoff to a team (it waits again, for that team) or to an agent
/// (who owns it at once).
/// Who may pass a handoff on: owners and admins; the agent who accepted it; and,
/// while it waits, the agents of the team it is routed to.
async fn may_transfer(core: &Core, by: &AgentPrincipal, handoff: &handoff::Model) -> AppResult<()> {
    if by.role.manages_workspace() || handoff.accepted_by.as_deref() == Some(&by.agent_id) {
        return Ok(());
    }
    if matches!(
        handoff.status,
        HandoffStatus::Requested | HandoffStatus::Offered
    ) && let Some(team_id) = &handoff.team_id
    {
        let member = team_member::Entity::find()
            .filter(team_member::Column::TeamId.eq(team_id.as_str()))
            .filter(team_member::Column::AgentId.eq(by.agent_id.as_str()))
            .one(&core.db.reader)
            .await?;
        if member.is_some() {
            return Ok(());
        }
    }
    Err(AppError::forbidden(
        "only the agent holding this conversation, its team while it waits, and admins can transfer it",
    ))
}

pub async fn transfer(
    core: &Core,
    by: &AgentPrincipal,
    id: &str,
    to: Transfer<'_>,
) -> AppResult<handoff::Model> {
    let ws = &by.workspace_id;
    let current = get(core, ws, id).await?;
    if !current.status.is_open() {
        return Err(AppError::Conflict {
            message: "only an open handoff can be transferred".to_owned(),
            reason: Some("NOT_OPEN"),
        });
    }
    may_transfer(core, by, &current).await?;
    match to {
        Transfer::Team(team_id) => {
            let team = crate::domain::tenancy::teams::get(core, ws, team_id).await?;
            let txn = core.db.writer.begin().await?;
            let row = txn
                .query_one_raw(stmt(
                    txn.get_database_backend(),
                    "UPDATE handoffs SET status = 'REQUESTED', team_id = ?, accepted_by = NULL, \
                       accepted_at = NULL, offered_to = NULL, offer_expires_at = NULL, \
                       sla_due_at = ?, sla_breached_at = NULL \
                     WHERE id = ? AND status IN ('REQUESTED', 'OFFERED', 'ACCEPTED') RETURNING *",
                    vec![
                        team.id.as_str().into(),
                        sla_due(Some(&team), now_ms())?.into(),
                        id.into(),
                    ],
                ))
                .await?
                .ok_or_else(|| AppError::conflict("the handoff closed meanwhile"))?;
            let handoff = handoff::Model::from_query_result(&row, "")?;
            super::routing::ended(&txn, &handoff.id, OfferOutcome::Withdrawn).await?;
            set_conversation(
                &txn,
                &handoff.conversation_id,
                ConversationStatus::Queued,
                Some(None),
                Some(Some(&team.id)),
                false,
            )
            .await?;
            let appended = append(
                &txn,
                ws,
                &handoff.conversation_id,
                NewMessage::system(format!(
                    "You're being transferred to the {} team.",
                    team.name
                )),
            )
            .await?;
            let handoff = Outcome {
                handoff,
                conversation: appended.conversation,
                messages: vec![appended.message],
            }
            .commit(core, txn)
            .await?;
            // The new team's routing offers it on.
            Ok(super::routing::offer_waiting(core, &handoff)
                .await?
                .unwrap_or(handoff))
        }
        Transfer::Agent(agent_id) => {
            let target = crate::domain::tenancy::agents::get(core, ws, agent_id).await?;
            let txn = core.db.writer.begin().await?;
            let row = txn
                .query_one_raw(stmt(
                    txn.get_database_backend(),
                    "UPDATE handoffs SET status = 'ACCEPTED', accepted_by = ?, accepted_at = ?, \
                       offered_to = NULL, offer_expires_at = NULL \
                     WHERE id = ? AND status IN ('REQUESTED', 'OFFERED', 'ACCEPTED') RETURNING *",
                    vec![target.id.as_str().into(), now_ms().into(), id.into()],
                ))
                .await?
                .ok_or_else(|| AppError::conflict("the handoff closed meanwhile"))?;
            let handoff = handoff::Model::from_query_result(&row, "")?;
            super::routing::ended(&txn, &handoff.id, OfferOutcome::Withdrawn).await?;
            let outcome = joined(&txn, handoff, &target.id, &target.name).await?;
            outcome.commit(core, txn).await
        }
    }
}
