//! Accepting a handoff: of many agents at once exactly one wins; and an agent
//! taking over a conversation the AI holds.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, Set,
    TransactionTrait,
};

use super::handoffs::{agent_name, joined, open_for};
use crate::auth::AgentPrincipal;
use crate::db::{is_unique_violation, stmt};
use crate::domain::Core;
use crate::domain::core::accepts::Flight;
use crate::entity::handoff_offer::OfferOutcome;
use crate::entity::{HandoffReason, HandoffStatus, handoff, now_ms};
use crate::error::{AppError, AppResult};
use crate::ids::{Kind, new_id};

/// Accept a requested handoff: of many agents at once, exactly one wins and becomes
/// the assignee; the others get `CONFLICT` naming the winner.
///
/// The database decides (a conditional `UPDATE`), but losers are spared it where
/// possible: agents racing for a handoff in this process wait for the attempt
/// already running (`Core::accepts`) and lose to it without a statement, and a
/// handoff already taken is refused from a reader, without waiting for the one
/// writer. When 50 agents race for each of 200 escalations, the losers must not
/// queue in front of the next visitor's `requestHuman`.
pub async fn accept(core: &Core, agent: &AgentPrincipal, id: &str) -> AppResult<handoff::Model> {
    let flight = match core.accepts.join(core, id) {
        Flight::Running(mut outcome) => {
            let won = match outcome.wait_for(Option::is_some).await {
                Ok(won) => won.clone(),
                Err(_) => None,
            };
            if let Some(won) = won {
                return Err(lost_race(core, won).await);
            }
            // The attempt did not win (another process did, or it failed): try.
            None
        }
        Flight::First(flight) => Some(flight),
        Flight::Taken(won) => return Err(lost_race(core, *won).await),
    };
    let result = attempt_accept(core, agent, id).await;
    if let (Some(flight), Ok(won)) = (flight, &result) {
        flight.won(won.clone());
    }
    result
}

async fn attempt_accept(
    core: &Core,
    agent: &AgentPrincipal,
    id: &str,
) -> AppResult<handoff::Model> {
    let ws = &agent.workspace_id;
    let current = handoff::Entity::find_by_id(id)
        .filter(handoff::Column::WorkspaceId.eq(ws.as_str()))
        .one(&core.db.reader)
        .await?
        .ok_or(AppError::NotFound("handoff"))?;
    let offered_to_me = current.status == HandoffStatus::Offered
        && current.offered_to.as_deref() == Some(agent.agent_id.as_str());
    if current.status != HandoffStatus::Requested && !offered_to_me {
        return Err(lost_race(core, current).await);
    }
    let name = agent_name(core, ws, &agent.agent_id).await?;
    let now = now_ms();
    let txn = core.db.writer.begin().await?;
    let won = txn
        .query_one_raw(stmt(
            txn.get_database_backend(),
            "UPDATE handoffs SET status = 'ACCEPTED', accepted_by = ?, accepted_at = ?, \
               offered_to = NULL, offer_expires_at = NULL \
             WHERE id = ? AND workspace_id = ? \
               AND (status = 'REQUESTED' OR (status = 'OFFERED' AND offered_to = ?)) \
             RETURNING *",
            vec![
                agent.agent_id.as_str().into(),
                now.into(),
                id.into(),
                ws.as_str().into(),
                agent.agent_id.as_str().into(),
            ],
        ))
        .await?;
    let Some(row) = won else {
        drop(txn);
        // Whoever won committed before this transaction began: a reader sees it.
        let current = handoff::Entity::find_by_id(id)
            .filter(handoff::Column::WorkspaceId.eq(ws.as_str()))
            .one(&core.db.reader)
            .await?
            .ok_or(AppError::NotFound("handoff"))?;
        return Err(lost_race(core, current).await);
    };
    let handoff = handoff::Model::from_query_result(&row, "")?;
    if offered_to_me {
        super::routing::ended(&txn, id, OfferOutcome::Accepted).await?;
    }
    let outcome = joined(&txn, handoff, &agent.agent_id, &name).await?;
    outcome.commit(core, txn).await
}

/// Why an accept did not win, given the handoff as it is now.
async fn lost_race(core: &Core, current: handoff::Model) -> AppError {
    match (current.status, &current.accepted_by) {
        (HandoffStatus::Accepted, Some(winner)) => {
            let name = agent_name(core, &current.workspace_id, winner)
                .await
                .unwrap_or_default();
            AppError::Conflict {
                message: format!("{name} already accepted this handoff"),
                reason: Some("ALREADY_ACCEPTED"),
            }
        }
        (HandoffStatus::Offered, _) => {
            let name = match &current.offered_to {
                Some(to) => agent_name(core, &current.workspace_id, to)
                    .await
                    .unwrap_or_default(),
                None => "another agent".to_owned(),
            };
            AppError::Conflict {
                message: format!(
                    "this handoff is offered to {name} now: it waits in the queue for anyone if they decline or let the offer pass"
                ),
                reason: Some("OFFERED_TO_ANOTHER"),
            }
        }
        (status, _) => AppError::Conflict {
            message: format!(
                "this handoff is {}, not waiting",
                format!("{status:?}").to_uppercase()
            ),
            reason: Some("NOT_REQUESTED"),
        },
    }
}

/// An agent takes over a conversation: a requested handoff is accepted; a chat the
/// AI is handling gets an `AGENT_TAKEOVER` handoff, accepted at once.
pub async fn take_over(
    core: &Core,
    agent: &AgentPrincipal,
    conversation_id: &str,
) -> AppResult<handoff::Model> {
    let principal = crate::auth::Principal::Agent(agent.clone());
    let conversation =
        crate::domain::chat::conversations::get(core, &principal, conversation_id).await?;
    if let Some(open) = open_for(&core.db.writer, conversation_id).await? {
        return match (open.status, open.accepted_by.as_deref()) {
            (HandoffStatus::Requested, _) => accept(core, agent, &open.id).await,
            (HandoffStatus::Offered, _) if open.offered_to.as_deref() == Some(&agent.agent_id) => {
                accept(core, agent, &open.id).await
            }
            (_, Some(owner)) if owner == agent.agent_id => Ok(open),
            _ => Err(lost_race(core, open).await),
        };
    }
    let name = agent_name(core, &agent.workspace_id, &agent.agent_id).await?;
    let now = now_ms();
    let txn = core.db.writer.begin().await?;
    let handoff = handoff::ActiveModel {
        id: Set(new_id(Kind::Handoff)),
        workspace_id: Set(conversation.workspace_id.clone()),
        conversation_id: Set(conversation.id.clone()),
        reason: Set(HandoffReason::AgentTakeover),
        status: Set(HandoffStatus::Accepted),
        team_id: Set(conversation.team_id.clone()),
        accepted_by: Set(Some(agent.agent_id.clone())),
        note: Set(None),
        trigger_seq: Set(conversation.last_seq),
        requested_at: Set(now),
        accepted_at: Set(Some(now)),
        resolved_at: Set(None),
        cancelled_at: Set(None),
        out_of_hours: Set(false),
        offered_to: Set(None),
        offer_expires_at: Set(None),
        sla_due_at: Set(None),
        sla_breached_at: Set(None),
    }
    .insert(&txn)
    .await
    .map_err(|err| {
        if is_unique_violation(&err) {
            AppError::Conflict {
                message: "someone else took this conversation a moment ago".to_owned(),
                reason: Some("ALREADY_ACCEPTED"),
            }
        } else {
            err.into()
        }
    })?;
    let outcome = joined(&txn, handoff, &agent.agent_id, &name).await?;
    outcome.commit(core, txn).await
}
