//! Routing: who gets a handoff. A team with `MANUAL` routing lets its handoffs
//! wait in the queue for whoever accepts one (`escalations` tells them all). With
//! `ROUND_ROBIN` or `LEAST_BUSY` a handoff is offered to one agent of the team at a
//! time, as Intercom's and Zendesk's assignment does:
//!
//! - who: an agent of the team who is `ONLINE` (set so, with a socket seen within
//!   the presence timeout), holds fewer than its `maxConcurrent` conversations
//!   (`HUMAN` conversations assigned to it, plus offers it holds), and was not
//!   offered this handoff before; round robin takes the next such agent after the
//!   one the team offered last, least busy the one holding fewest;
//! - when: at once when the handoff is requested (or transferred to the team),
//!   and, for a handoff still waiting, whenever a sweep finds someone to offer it
//!   to (an agent came online, or the team opened); never while the team is
//!   outside its business hours;
//! - until: the offered agent accepts it (`acceptHandoff`), declines it
//!   (`declineHandoff`) or lets `offerTimeoutSeconds` pass; then it goes to the
//!   next agent, and when nobody is left it waits in the queue as `REQUESTED`,
//!   where anyone of the team may accept it, as with manual routing.
//!
//! Exactly one agent holds an offer: the offer is the handoff row itself
//! (`status = 'OFFERED'`, `offered_to`), and every move is an `UPDATE` conditional
//! on the state it leaves, so processes sharing a database, a decline racing a
//! timeout, or two sweeps at once leave one outcome. `handoff_offers` remembers who
//! was offered each handoff and how it ended.
//!
//! The same sweep marks handoffs whose accept target (`slaDueAt`, counted in
//! business time) passed unaccepted, once each, with an `SLA_BREACHED` event.

use std::time::Duration;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};

use crate::db::stmt;
use crate::domain::Core;
use crate::domain::core::feed::{self, Event};
use crate::entity::handoff_offer::{self, OfferOutcome};
use crate::entity::{HandoffStatus, TeamRouting, conversation, handoff, now_ms, team};
use crate::error::{AppError, AppResult};

/// Handoffs looked at per kind per sweep at most (the rest at the next).
const BATCH: u64 = 100;

/// An offer about to be made.
#[derive(Clone, Debug)]
pub struct Offer {
    pub agent_id: String,
    /// When it passes to the next agent (ms).
    pub expires_at: i64,
}

/// An agent who could be offered a handoff, with what it holds now.
#[derive(FromQueryResult)]
struct Candidate {
    id: String,
    max_concurrent: i32,
    holding: i64,
}

/// Whom `team` offers a handoff next at `now`, if anyone: nobody with manual
/// routing or outside the team's hours. `handoff_id` names a handoff already
/// stored, whose earlier offerees are passed over.
pub async fn next_offer<C: ConnectionTrait>(
    core: &Core,
    conn: &C,
    team: &team::Model,
    handoff_id: Option<&str>,
    now: i64,
) -> AppResult<Option<Offer>> {
    if team.routing == TeamRouting::Manual {
        return Ok(None);
    }
    let at = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default();
    if let Some(hours) = team.business_hours()?
        && !super::hours::is_open(&hours, at)
    {
        return Ok(None);
    }
    let timeout = i64::try_from(core.config.presence_timeout.as_millis()).unwrap_or(i64::MAX);
    let rows = conn
        .query_all_raw(stmt(
            conn.get_database_backend(),
            "SELECT a.id, a.max_concurrent, \
               (SELECT COUNT(*) FROM conversations c \
                 WHERE c.assignee_id = a.id AND c.status = 'HUMAN') \
             + (SELECT COUNT(*) FROM handoffs h \
                 WHERE h.offered_to = a.id AND h.status = 'OFFERED') AS holding \
             FROM team_members m JOIN agents a ON a.id = m.agent_id \
             WHERE m.team_id = ? AND a.active = ? AND a.availability = 'ONLINE' \
               AND a.last_seen_at >= ? \
               AND NOT EXISTS (SELECT 1 FROM handoff_offers o \
                                WHERE o.handoff_id = ? AND o.agent_id = a.id) \
             ORDER BY a.id",
            vec![
                team.id.as_str().into(),
                true.into(),
                now.saturating_sub(timeout).into(),
                handoff_id.unwrap_or("").into(),
            ],
        ))
        .await?;
    let free = rows
        .iter()
        .map(|row| Candidate::from_query_result(row, ""))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|c| c.holding < i64::from(c.max_concurrent))
        .collect::<Vec<_>>();
    let chosen = match team.routing {
        TeamRouting::Manual => None,
        TeamRouting::RoundRobin => {
            let last = team.last_offered_to.as_deref().unwrap_or("");
            free.iter()
                .find(|c| c.id.as_str() > last)
                .or_else(|| free.first())
        }
        // Ties go in id order.
        TeamRouting::LeastBusy => free.iter().min_by_key(|c| c.holding),
    };
    Ok(chosen.map(|c| Offer {
        agent_id: c.id.clone(),
        expires_at: now + i64::from(team.offer_timeout_seconds) * 1000,
    }))
}

/// Note inside `txn` that `offer` of `handoff_id` was made, and where the team's
/// round robin goes on from.
pub async fn record(
    txn: &DatabaseTransaction,
    handoff_id: &str,
    team_id: &str,
    offer: &Offer,
    now: i64,
) -> AppResult<()> {
    let backend = txn.get_database_backend();
    txn.execute_raw(stmt(
        backend,
        "INSERT INTO handoff_offers (handoff_id, agent_id, offered_at) VALUES (?, ?, ?)",
        vec![
            handoff_id.into(),
            offer.agent_id.as_str().into(),
            now.into(),
        ],
    ))
    .await?;
    txn.execute_raw(stmt(
        backend,
        "UPDATE teams SET last_offered_to = ? WHERE id = ?",
        vec![offer.agent_id.as_str().into(), team_id.into()],
    ))
    .await?;
    Ok(())
}

/// Note inside `txn` how the offer of `handoff_id` still standing, if any, ended:
/// answered by its agent, or `WITHDRAWN` when the handoff left `OFFERED` another
/// way. A handoff is offered to one agent at a time, so at most one stands.
pub async fn ended(
    txn: &DatabaseTransaction,
    handoff_id: &str,
    outcome: OfferOutcome,
) -> AppResult<()> {
    txn.execute_raw(stmt(
        txn.get_database_backend(),
        "UPDATE handoff_offers SET outcome = ?, ended_at = ? \
         WHERE handoff_id = ? AND outcome IS NULL",
        vec![
            sea_orm::ActiveEnum::to_value(&outcome).into(),
            now_ms().into(),
            handoff_id.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// The offers of `handoff_ids`, oldest first.
pub async fn offers_of(
    core: &Core,
    handoff_ids: &[String],
) -> AppResult<Vec<handoff_offer::Model>> {
    Ok(handoff_offer::Entity::find()
        .filter(handoff_offer::Column::HandoffId.is_in(handoff_ids.iter().cloned()))
        .order_by_asc(handoff_offer::Column::OfferedAt)
        .all(&core.db.reader)
        .await?)
}

/// Where a handoff must still be for a move to happen.
enum Holding<'a> {
    /// Waiting in the queue.
    Nobody,
    /// Offered to this agent, who declines it.
    Declined(&'a str),
    /// Offered to this agent until a time now past.
    Expired(&'a str),
}

/// Offer a waiting handoff to the next agent, if its team has one to offer it to.
pub async fn offer_waiting(
    core: &Core,
    handoff: &handoff::Model,
) -> AppResult<Option<handoff::Model>> {
    pass_on(core, handoff, Holding::Nobody).await
}

/// The offered agent declines: the offer goes to the next agent, or the queue.
pub async fn decline(
    core: &Core,
    agent: &crate::auth::AgentPrincipal,
    handoff_id: &str,
) -> AppResult<handoff::Model> {
    let current = super::handoffs::get(core, &agent.workspace_id, handoff_id).await?;
    let not_yours = || AppError::Conflict {
        message: "this handoff is not offered to you (the offer passed on, or it was accepted)"
            .to_owned(),
        reason: Some("NOT_OFFERED_TO_YOU"),
    };
    if current.status != HandoffStatus::Offered
        || current.offered_to.as_deref() != Some(agent.agent_id.as_str())
    {
        return Err(not_yours());
    }
    pass_on(core, &current, Holding::Declined(&agent.agent_id))
        .await?
        .ok_or_else(not_yours)
}

/// Move `handoff` from where `from` says it is to the next agent's offer, or to
/// the queue; `None` when it was no longer there (someone else moved it), or is
/// waiting with nobody to offer it to.
async fn pass_on(
    core: &Core,
    handoff: &handoff::Model,
    from: Holding<'_>,
) -> AppResult<Option<handoff::Model>> {
    let Some(team_id) = handoff.team_id.as_deref() else {
        return Ok(None);
    };
    let now = now_ms();
    let team = team::Entity::find_by_id(team_id)
        .one(&core.db.reader)
        .await?
        .ok_or(AppError::NotFound("team"))?;
    let offer = next_offer(core, &core.db.reader, &team, Some(&handoff.id), now).await?;
    if matches!(from, Holding::Nobody) && offer.is_none() {
        return Ok(None);
    }
    let (status, to, until) = match &offer {
        Some(offer) => (
            "OFFERED",
            Some(offer.agent_id.clone()),
            Some(offer.expires_at),
        ),
        None => ("REQUESTED", None, None),
    };
    let mut values: Vec<sea_orm::Value> = vec![
        status.into(),
        to.into(),
        until.into(),
        handoff.id.as_str().into(),
    ];
    let condition = match from {
        Holding::Nobody => "status = 'REQUESTED'",
        Holding::Declined(agent) => {
            values.push(agent.into());
            "status = 'OFFERED' AND offered_to = ?"
        }
        Holding::Expired(agent) => {
            values.push(agent.into());
            values.push(now.into());
            "status = 'OFFERED' AND offered_to = ? AND offer_expires_at <= ?"
        }
    };
    let txn = core.db.writer.begin().await?;
    let sql = format!(
        "UPDATE handoffs SET status = ?, offered_to = ?, offer_expires_at = ? \
         WHERE id = ? AND {condition} RETURNING *"
    );
    let Some(row) = txn
        .query_one_raw(stmt(txn.get_database_backend(), &sql, values))
        .await?
    else {
        return Ok(None);
    };
    let moved = handoff::Model::from_query_result(&row, "")?;
    match from {
        Holding::Nobody => {}
        Holding::Declined(_) => ended(&txn, &moved.id, OfferOutcome::Declined).await?,
        Holding::Expired(_) => ended(&txn, &moved.id, OfferOutcome::Expired).await?,
    }
    if let Some(offer) = &offer {
        record(&txn, &moved.id, team_id, offer, now).await?;
    }
    commit(core, txn, moved.clone(), Event::handoff_changed).await?;
    core.accepts.changed(&moved);
    Ok(Some(moved))
}

/// Commit `txn` with the event `told` builds of `handoff` and its conversation
/// as they are in it (the conversation itself does not change).
async fn commit(
    core: &Core,
    txn: DatabaseTransaction,
    handoff: handoff::Model,
    told: fn(handoff::Model, conversation::Model) -> Event,
) -> AppResult<()> {
    let conversation = conversation::Entity::find_by_id(handoff.conversation_id.as_str())
        .one(&txn)
        .await?
        .ok_or(AppError::NotFound("conversation"))?;
    feed::commit(core, txn, &[told(handoff, conversation)]).await
}

/// Mark `handoff` as past its accept target, once.
async fn breach(core: &Core, handoff: &handoff::Model) -> AppResult<bool> {
    let txn = core.db.writer.begin().await?;
    let Some(row) = txn
        .query_one_raw(stmt(
            txn.get_database_backend(),
            "UPDATE handoffs SET sla_breached_at = ? \
             WHERE id = ? AND sla_breached_at IS NULL AND status IN ('REQUESTED', 'OFFERED') \
             RETURNING *",
            vec![now_ms().into(), handoff.id.as_str().into()],
        ))
        .await?
    else {
        return Ok(false);
    };
    let breached = handoff::Model::from_query_result(&row, "")?;
    commit(core, txn, breached, Event::sla_breached).await?;
    Ok(true)
}

/// Sweep from this process until shutdown: every second, or every
/// `--sweep-every` when that is shorter.
pub fn start(core: &Core) {
    let every = core
        .config
        .sweep_every
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    core.repeat(every, "routing handoffs", |core| async move {
        sweep(&core).await
    });
}

/// One look at offers that expired, targets that passed and handoffs waiting in
/// teams with automatic routing. Reads on the background connections.
pub async fn sweep(core: &Core) -> AppResult<()> {
    let db = &core.db.background;
    let now = now_ms();
    let expired = handoff::Entity::find()
        .filter(handoff::Column::Status.eq(HandoffStatus::Offered))
        .filter(handoff::Column::OfferExpiresAt.lte(now))
        .order_by_asc(handoff::Column::OfferExpiresAt)
        .limit(BATCH)
        .all(db)
        .await?;
    for handoff in expired {
        if let Some(agent) = handoff.offered_to.as_deref() {
            pass_on(core, &handoff, Holding::Expired(agent)).await?;
        }
    }
    let due = handoff::Entity::find()
        .filter(handoff::Column::Status.is_in([HandoffStatus::Requested, HandoffStatus::Offered]))
        .filter(handoff::Column::SlaBreachedAt.is_null())
        .filter(handoff::Column::SlaDueAt.lte(now))
        .order_by_asc(handoff::Column::SlaDueAt)
        .limit(BATCH)
        .all(db)
        .await?;
    for handoff in due {
        breach(core, &handoff).await?;
    }
    // Teams that could offer a handoff now (automatic routing, open, someone free,
    // whatever they were offered before): one look per team, and the queues of
    // the others wait without a look at each of their handoffs.
    let mut staffed = Vec::new();
    for team in team::Entity::find()
        .filter(team::Column::Routing.ne(TeamRouting::Manual))
        .all(db)
        .await?
    {
        if next_offer(core, db, &team, None, now).await?.is_some() {
            staffed.push(team.id);
        }
    }
    if staffed.is_empty() {
        return Ok(());
    }
    let waiting = handoff::Entity::find()
        .filter(handoff::Column::TeamId.is_in(staffed))
        .filter(handoff::Column::Status.eq(HandoffStatus::Requested))
        .order_by_asc(handoff::Column::RequestedAt)
        .limit(BATCH)
        .all(db)
        .await?;
    for handoff in waiting {
        offer_waiting(core, &handoff).await?;
    }
    Ok(())
}
