//! Requesting a handoff: routed to a team by the conversation's tags, offered at
//! once where the team routes automatically and is open, with its SLA due in the
//! team's business time, and the visitor told what happens next.

use sea_orm::{ActiveModelTrait, Set, TransactionTrait};

use std::sync::Arc;

use super::handoffs::{Outcome, open_for, set_conversation};
use crate::auth::Principal;
use crate::db::is_unique_violation;
use crate::domain::Core;
use crate::domain::chat::messages::{NewMessage, append};
use crate::entity::{
    ConversationStatus, HandoffReason, HandoffStatus, TeamRouting, conversation, conversation_tag,
    handoff, insight_tag, now_ms, workspace,
};
use crate::error::{AppError, AppResult};
use crate::ids::{Kind, new_id};

/// Ask for a person as `principal`: the widget's "Talk to a person" button (a
/// visitor: `VISITOR_REQUESTED`), the AI when unsure (an `AI_WRITE` key:
/// `LOW_CONFIDENCE` unless it says otherwise), or an agent escalating (`POLICY`
/// unless it says otherwise). The open handoff, which may already exist.
pub async fn request_human(
    core: &Core,
    principal: &Principal,
    conversation_id: &str,
    reason: Option<HandoffReason>,
    note: Option<&str>,
) -> AppResult<handoff::Model> {
    core.rate.visitor_write(principal)?;
    let default = match principal {
        Principal::Visitor(_) => HandoffReason::VisitorRequested,
        Principal::ApiKey(_) if principal.is_ai() => HandoffReason::LowConfidence,
        Principal::ApiKey(_) => {
            return Err(AppError::forbidden("this API key lacks the AI_WRITE scope"));
        }
        Principal::Agent(_) => HandoffReason::Policy,
    };
    let reason = match (principal, reason) {
        (Principal::Visitor(_), Some(_)) => {
            return Err(AppError::bad_input(
                "reason",
                "visitors cannot choose a reason",
            ));
        }
        (_, Some(HandoffReason::AgentTakeover)) => {
            return Err(AppError::bad_input(
                "reason",
                "agents take over with takeOver",
            ));
        }
        (_, reason) => reason.unwrap_or(default),
    };
    let note = note
        .map(|n| crate::domain::core::validate::text("note", n, 2_000))
        .transpose()?;
    let conversation =
        crate::domain::chat::conversations::get(core, principal, conversation_id).await?;
    request(core, &conversation, reason, note).await
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
pub(super) fn sla_due(
    team: Option<&crate::entity::team::Model>,
    now: i64,
) -> AppResult<Option<i64>> {
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
