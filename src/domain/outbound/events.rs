//! The event log as clients read it: a page of the `events` query, the envelope a
//! webhook delivers, and pruning what is older than the retention.

use std::sync::Arc;

use crate::domain::Core;
use crate::domain::chat::streams::resume_from;
use crate::domain::core::feed::{Change, Event, EventKind, decode, visible_to};
use crate::entity::now_ms;
use crate::error::{AppError, AppResult};
use crate::events::Cursor;

/// Events a query asks for at most.
pub const MAX_EVENTS: i32 = 500;

/// A page of the `events` query.
pub struct EventPage {
    pub events: Vec<Arc<Event>>,
    /// More follow.
    pub has_next: bool,
    /// Where it started: the log's start, or the cursor the client sent.
    pub after: Cursor,
}

/// Up to `first` (1 to [`MAX_EVENTS`]) events after the cursor `after` (from the
/// start without one) that `principal` may see, of `kinds` (any when empty) and of
/// `conversation_id` when given. A cursor older than the retention is
/// `BAD_USER_INPUT` with reason `CURSOR_EXPIRED`.
pub async fn page(
    core: &Core,
    principal: &crate::auth::Principal,
    after: Option<&str>,
    first: i32,
    kinds: &[String],
    conversation_id: Option<&str>,
) -> AppResult<EventPage> {
    if !(1..=MAX_EVENTS).contains(&first) {
        return Err(AppError::bad_input(
            "first",
            format!("must be between 1 and {MAX_EVENTS}"),
        ));
    }
    let after = match after {
        Some(cursor) => resume_from(core, "after", cursor).await?,
        None => Cursor::START,
    };
    let (events, has_next) =
        read(core, principal, after, first as u64, kinds, conversation_id).await?;
    Ok(EventPage {
        events,
        has_next,
        after,
    })
}

/// Up to `first` events after `after` that `principal` may see, and whether more
/// follow.
async fn read(
    core: &Core,
    principal: &crate::auth::Principal,
    after: Cursor,
    first: u64,
    kinds: &[String],
    conversation_id: Option<&str>,
) -> AppResult<(Vec<Arc<Event>>, bool)> {
    let scope = crate::events::Scope {
        workspace_id: Some(principal.workspace_id()),
        conversation_id,
        kinds,
    };
    let mut out = Vec::new();
    let mut from = after;
    loop {
        let batch = crate::events::read(&core.db.reader, from, &scope, first + 1).await?;
        let exhausted = (batch.len() as u64) <= first;
        for record in batch {
            from = record.cursor.unwrap_or(from);
            let Some(event) = decode(&record) else {
                continue;
            };
            if !visible_to(&event, principal) {
                continue;
            }
            if out.len() as u64 == first {
                return Ok((out, true));
            }
            out.push(event);
        }
        if exhausted {
            return Ok((out, false));
        }
    }
}

/// The JSON a webhook delivers for `event`: the fields of the schema's `Event`
/// with its related objects' scalar fields and ids, under the schema's names, so
/// that what `events` returns and what a webhook receives read the same.
pub fn envelope(event: &Event) -> AppResult<serde_json::Value> {
    use serde_json::{Value, json};
    let time = |ms: i64| {
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
            .map(|t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
            .unwrap_or(Value::Null)
    };
    let id = |id: &Option<String>| id.as_ref().map_or(Value::Null, |id| json!({ "id": id }));
    let conversation = event.conversation().map(|c| {
        json!({
            "id": c.id,
            "status": c.status,
            "visitorId": c.visitor_id,
            "lead": id(&c.lead_id),
            "assignee": id(&c.assignee_id),
            "team": id(&c.team_id),
            "lastSeq": c.last_seq,
            "createdAt": time(c.created_at),
            "updatedAt": time(c.updated_at),
        })
    });
    let message = match &event.kind {
        EventKind::MessageCreated { message: m, .. } => Some(json!({
            "id": m.id,
            "conversationId": m.conversation_id,
            "seq": m.seq,
            "author": m.author,
            "agent": id(&m.agent_id),
            "body": m.body,
            "internal": m.internal,
            "confidence": m.confidence,
            "sources": m.sources()?,
            "createdAt": time(m.created_at),
        })),
        _ => None,
    };
    let handoff = match &event.kind {
        EventKind::HandoffChanged { handoff: h, .. } => Some(json!({
            "id": h.id,
            "status": h.status,
            "reason": h.reason,
            "team": id(&h.team_id),
            "acceptedBy": id(&h.accepted_by),
            "note": h.note,
            "requestedAt": time(h.requested_at),
            "acceptedAt": h.accepted_at.map_or(Value::Null, time),
            "resolvedAt": h.resolved_at.map_or(Value::Null, time),
            "cancelledAt": h.cancelled_at.map_or(Value::Null, time),
            "outOfHours": h.out_of_hours,
            "offeredTo": id(&h.offered_to),
            "offerExpiresAt": h.offer_expires_at.map_or(Value::Null, time),
            "slaDueAt": h.sla_due_at.map_or(Value::Null, time),
            "slaBreachedAt": h.sla_breached_at.map_or(Value::Null, time),
        })),
        _ => None,
    };
    let tag = match &event.kind {
        EventKind::ConversationChanged {
            change: Change::Tagged { tag_id } | Change::Untagged { tag_id },
            ..
        } => Some(json!({ "id": tag_id })),
        _ => None,
    };
    let erasure = match &event.kind {
        EventKind::ContactErased {
            lead_id,
            conversation_ids,
        } => Some(json!({ "leadId": lead_id, "conversationIds": conversation_ids })),
        _ => None,
    };
    Ok(json!({
        "id": event.id,
        "cursor": event.cursor.map(|c| c.encode()),
        "type": event.type_name(),
        "occurredAt": time(event.occurred_at),
        "conversation": conversation,
        "message": message,
        "handoff": handoff,
        "tag": tag,
        "erasure": erasure,
    }))
}

/// Prune the event log in the background: events older than
/// `CASEFILE_EVENT_RETENTION` go, checked every quarter of it (at least every
/// second, at most every ten minutes). Every process may prune; they agree.
pub fn start_pruning(core: &Core) {
    let retention = core.config.event_retention;
    let every = (retention / 4).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(600),
    );
    let core = core.clone();
    core.tasks.clone().spawn(async move {
        loop {
            let cutoff = now_ms() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
            match crate::events::prune(&core.db, cutoff).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "pruned the event log"),
                Err(err) => tracing::warn!(error.detail = ?err, "pruning the event log failed"),
            }
            tokio::select! {
                () = core.shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    });
}
