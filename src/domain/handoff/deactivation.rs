//! Deactivating an agent: it cannot sign in, its tokens and sockets end, and what
//! it held goes back to its team: its open conversations return to the queue
//! (accepted handoffs wait again) and the offers it held pass on. A deactivated
//! agent stays on past messages and in insights.

use std::net::IpAddr;

use sea_orm::{ActiveModelTrait, ConnectionTrait, FromQueryResult, Set, TransactionTrait};

use crate::auth::AgentPrincipal;
use crate::db::stmt;
use crate::domain::Core;
use crate::domain::core::feed::{self, Change, Event};
use crate::domain::tenancy::audit::{self, Act, By};
use crate::domain::tenancy::lifecycle::{keeps_an_owner, managed};
use crate::entity::audit_entry::AuditAction;
use crate::entity::handoff_offer::OfferOutcome;
use crate::entity::{agent, conversation, handoff, now_ms};
use crate::error::AppResult;

/// Deactivate an agent: it cannot sign in, its tokens and sockets end, and its open
/// conversations go back to their team's queue (accepted handoffs wait again). By
/// `admin` at `address`.
pub async fn deactivate(
    core: &Core,
    admin: &AgentPrincipal,
    address: IpAddr,
    id: &str,
) -> AppResult<agent::Model> {
    let current = managed(core, admin, id).await?;
    if !current.active {
        return Ok(current);
    }
    let txn = core.db.writer.begin().await?;
    keeps_an_owner(&txn, &current).await?;
    let mut model: agent::ActiveModel = current.into();
    model.active = Set(false);
    let agent = model.update(&txn).await?;
    let backend = txn.get_database_backend();
    let handoffs = txn
        .query_all_raw(stmt(
            backend,
            "UPDATE handoffs SET status = 'REQUESTED', accepted_by = NULL, accepted_at = NULL, \
               offered_to = NULL, offer_expires_at = NULL \
             WHERE (accepted_by = ? AND status = 'ACCEPTED') \
                OR (offered_to = ? AND status = 'OFFERED') RETURNING *",
            vec![id.into(), id.into()],
        ))
        .await?
        .iter()
        .map(|row| handoff::Model::from_query_result(row, ""))
        .collect::<Result<Vec<_>, _>>()?;
    // The offers it held end (those it accepted ended then).
    for handoff in &handoffs {
        super::routing::ended(&txn, &handoff.id, OfferOutcome::Withdrawn).await?;
    }
    let conversations = txn
        .query_all_raw(stmt(
            backend,
            "UPDATE conversations SET assignee_id = NULL, updated_at = ?, \
             status = CASE WHEN status = 'HUMAN' THEN 'QUEUED' ELSE status END \
             WHERE assignee_id = ? AND status <> 'RESOLVED' RETURNING *",
            vec![now_ms().into(), id.into()],
        ))
        .await?
        .iter()
        .map(|row| conversation::Model::from_query_result(row, ""))
        .collect::<Result<Vec<_>, _>>()?;
    let mut events: Vec<Event> = conversations
        .iter()
        .map(|c| Event::conversation_changed(c.clone(), Change::Assigned))
        .collect();
    for handoff in &handoffs {
        if let Some(conversation) = conversations
            .iter()
            .find(|c| c.id == handoff.conversation_id)
        {
            events.push(Event::handoff_changed(
                handoff.clone(),
                conversation.clone(),
            ));
        }
    }
    events.push(Event::access_revoked(&agent.workspace_id, &agent.id, None));
    audit::record(
        &txn,
        &By::agent(admin, address),
        Act::on(AuditAction::AgentDeactivated, "Agent", id),
    )
    .await?;
    feed::commit(core, txn, &events).await?;
    core.agents.put(agent.id.clone(), agent.clone());
    for handoff in &handoffs {
        core.accepts.changed(handoff);
    }
    Ok(agent)
}
