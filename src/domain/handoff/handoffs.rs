//! Handoffs: passing a conversation from the AI to humans, with its case file.
//!
//! Every transition is one transaction that checks the state it leaves with an
//! `UPDATE … WHERE status = …` that must touch exactly one row, moves the
//! conversation's status along (`AI → QUEUED → HUMAN → RESOLVED`, or back to `AI`),
//! and tells the visitor what is happening with a `SYSTEM` message. A conversation
//! has at most one open handoff (a unique index on open handoffs), and of many
//! agents accepting one at once exactly one wins.

use std::sync::Arc;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

use crate::domain::core::accepts::Flight;

use crate::auth::AgentPrincipal;
use crate::domain::Core;
use crate::domain::core::feed::{self, Change, Event};
use crate::entity::handoff_offer::OfferOutcome;
use crate::entity::{
    ConversationStatus, HandoffReason, HandoffStatus, TeamRouting, conversation, conversation_tag,
    handoff, insight_tag, message, now_ms, team_member, workspace,
};
use crate::error::{AppError, AppResult};
use crate::ids::{Kind, new_id};

use crate::db::is_unique_violation;
use crate::db::stmt;
use crate::domain::chat::messages::{NewMessage, append};

/// What a handoff transaction produced, to store as events with it.
struct Outcome {
    handoff: handoff::Model,
    conversation: conversation::Model,
    messages: Vec<message::Model>,
}

impl Outcome {
    /// Store the events of this outcome in `txn` and commit it.
    async fn commit(self, core: &Core, txn: DatabaseTransaction) -> AppResult<handoff::Model> {
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
async fn set_conversation(
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

/// The team a conversation goes to: that of its highest-priority tag with a team,
/// else the workspace's default team, else the team it already has.
fn route(
    conversation: &conversation::Model,
    workspace: &workspace::Model,
    applied: &[(conversation_tag::Model, Arc<insight_tag::Model>)],
) -> Option<String> {
    let by_tag = applied
        .iter()
        .filter(|(_, tag)| tag.team_id.is_some())
        .max_by_key(|(applied, tag)| (tag.priority, std::cmp::Reverse(applied.applied_at)))
        .and_then(|(_, tag)| tag.team_id.clone());
    by_tag
        .or_else(|| workspace.default_team_id.clone())
        .or_else(|| conversation.team_id.clone())
}

/// When a handoff requested of `team` at `now` should be accepted by: its accept
/// target, counted in the team's business hours.
fn sla_due(team: Option<&crate::entity::team::Model>, now: i64) -> AppResult<Option<i64>> {
    let Some((team, seconds)) = team.and_then(|t| Some((t, t.accept_target_seconds?))) else {
        return Ok(None);
    };
    let Some(at) = chrono::DateTime::from_timestamp_millis(now) else {
        return Ok(None);
    };
    let hours = team.business_hours()?;
    Ok(
        super::hours::after_business_time(hours.as_ref(), at, i64::from(seconds))
            .map(|due| due.timestamp_millis()),
    )
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

/// Ask humans to take a conversation. When it already has an open handoff, that
/// one is returned and nothing changes.
pub async fn request(
    core: &Core,
    conversation: &conversation::Model,
    reason: HandoffReason,
    note: Option<String>,
) -> AppResult<handoff::Model> {
    // What the request depends on, read at once on several readers: a visitor
    // pressing the button waits for one read, not four in a row.
    let lead_email = async {
        match &conversation.lead_id {
            Some(id) => crate::domain::chat::leads::email_of(core, id).await,
            None => Ok(None),
        }
    };
    let (open, workspace, applied, lead_email) = tokio::try_join!(
        open_for(&core.db.reader, &conversation.id),
        crate::domain::tenancy::workspaces::get(core, &conversation.workspace_id),
        crate::domain::knowledge::tags::applied(core, std::slice::from_ref(&conversation.id)),
        lead_email,
    )?;
    if let Some(open) = open {
        return Ok(open);
    }
    let policy = workspace.handoff_policy()?;
    let team = route(conversation, &workspace, &applied);
    let now = now_ms();
    // Outside the team's hours the handoff still waits for it, and the visitor is
    // told when the team is back.
    let team_model = match &team {
        Some(id) => {
            Some(crate::domain::tenancy::teams::cached(core, &conversation.workspace_id, id).await?)
        }
        None => None,
    };
    let hours = match &team_model {
        Some(team) => team.business_hours()?,
        None => None,
    };
    let at = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default();
    // Routing offers it to one agent at once, when the team routes automatically
    // and is open (read fresh: round robin goes on from the last offer).
    let offer = match &team_model {
        Some(cached) if cached.routing != TeamRouting::Manual => {
            let fresh =
                crate::domain::tenancy::teams::get(core, &conversation.workspace_id, &cached.id)
                    .await?;
            super::routing::next_offer(core, &core.db.reader, &fresh, None, now).await?
        }
        _ => None,
    };
    let sla_due_at = sla_due(team_model.as_ref(), now)?;
    let away = hours.filter(|hours| !super::hours::is_open(hours, at));
    let txn = core.db.writer.begin().await?;
    let inserted = handoff::ActiveModel {
        id: Set(new_id(Kind::Handoff)),
        workspace_id: Set(conversation.workspace_id.clone()),
        conversation_id: Set(conversation.id.clone()),
        reason: Set(reason),
        status: Set(if offer.is_some() {
            HandoffStatus::Offered
        } else {
            HandoffStatus::Requested
        }),
        team_id: Set(team.clone()),
        accepted_by: Set(None),
        note: Set(note),
        trigger_seq: Set(conversation.last_seq),
        requested_at: Set(now),
        accepted_at: Set(None),
        resolved_at: Set(None),
        cancelled_at: Set(None),
        out_of_hours: Set(away.is_some()),
        offered_to: Set(offer.as_ref().map(|o| o.agent_id.clone())),
        offer_expires_at: Set(offer.as_ref().map(|o| o.expires_at)),
        sla_due_at: Set(sla_due_at),
        sla_breached_at: Set(None),
    }
    .insert(&txn)
    .await;
    let handoff = match inserted {
        Ok(handoff) => handoff,
        // Someone opened one a moment ago: theirs stands.
        Err(err) if is_unique_violation(&err) => {
            drop(txn);
            return open_for(&core.db.writer, &conversation.id)
                .await?
                .ok_or_else(|| AppError::internal("open handoff vanished"));
        }
        Err(err) => return Err(err.into()),
    };
    if let (Some(offer), Some(team)) = (&offer, &team) {
        super::routing::record(&txn, &handoff.id, team, offer, now).await?;
    }
    set_conversation(
        &txn,
        &conversation.id,
        ConversationStatus::Queued,
        Some(None),
        Some(team.as_deref()),
        false,
    )
    .await?;
    let first = match &away {
        Some(hours) => {
            let context = conversation.context()?;
            let visitor_zone = context.get("timeZone").and_then(serde_json::Value::as_str);
            super::hours::back_message(hours, at, visitor_zone)
        }
        None => "A person from the team will join shortly.".to_owned(),
    };
    let mut messages = vec![
        append(
            &txn,
            &conversation.workspace_id,
            &conversation.id,
            NewMessage::system(first),
        )
        .await?,
    ];
    if policy.ask_for_email && lead_email.is_none() {
        let ask =
            "While you wait, leave your email address so the team can reach you if you leave.";
        messages.push(
            append(
                &txn,
                &conversation.workspace_id,
                &conversation.id,
                NewMessage::system(ask.to_owned()),
            )
            .await?,
        );
    }
    let conversation = messages
        .last()
        .map(|m| m.conversation.clone())
        .ok_or_else(|| AppError::internal("no system message"))?;
    Outcome {
        handoff,
        conversation,
        messages: messages.into_iter().map(|m| m.message).collect(),
    }
    .commit(core, txn)
    .await
}

pub async fn get(core: &Core, workspace_id: &str, id: &str) -> AppResult<handoff::Model> {
    handoff::Entity::find_by_id(id)
        .filter(handoff::Column::WorkspaceId.eq(workspace_id))
        .one(&core.db.reader)
        .await?
        .ok_or(AppError::NotFound("handoff"))
}

async fn agent_name(core: &Core, workspace_id: &str, agent_id: &str) -> AppResult<String> {
    match crate::domain::tenancy::agents::get(core, workspace_id, agent_id).await {
        Ok(agent) => Ok(agent.name),
        Err(AppError::NotFound(_)) => Ok("An agent".to_owned()),
        Err(err) => Err(err),
    }
}

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

/// The conversation goes to `agent_id`: status HUMAN, assigned, and the visitor is
/// told who joined.
async fn joined(
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
