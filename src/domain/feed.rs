//! What happened, in the domain's words: the events every write stores in its own
//! transaction (see `crate::events` for the log that carries them), how they are
//! written and read back, and the names clients see (`MESSAGE_CREATED`, …).

use std::sync::Arc;

use sea_orm::DatabaseTransaction;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::case_file::CaseFile;
use crate::domain::Core;
use crate::entity::{
    Author, Availability, HandoffStatus, agent, conversation, handoff, message, now_ms, team,
};
use crate::error::AppResult;
use crate::events::{Cursor, NewRecord, Record};
use crate::ids::{Kind, new_id};

/// Something that changed, stored with the change and delivered after it
/// committed.
#[derive(Clone, Debug)]
pub struct Event {
    /// `evt_…`.
    pub id: String,
    /// Where it sits in the log; `None` before it is stored, and for typing.
    pub cursor: Option<Cursor>,
    /// Unix milliseconds.
    pub occurred_at: i64,
    pub workspace_id: String,
    /// Empty for events about no conversation.
    pub conversation_id: String,
    pub kind: EventKind,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum EventKind {
    /// A message was stored; the conversation as it was right after.
    MessageCreated {
        message: Arc<message::Model>,
        conversation: Arc<conversation::Model>,
    },
    /// A conversation was opened or changed; the conversation right after.
    ConversationChanged {
        conversation: Arc<conversation::Model>,
        change: Change,
    },
    /// A handoff was requested, accepted, transferred, resolved or cancelled; the
    /// handoff and its conversation right after.
    HandoffChanged {
        handoff: Arc<handoff::Model>,
        conversation: Arc<conversation::Model>,
        /// Not a change of status: the team's accept target passed with the
        /// handoff still waiting (`SLA_BREACHED`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        sla_breached: bool,
        /// What its subscribers resolve, built once (see [`HandoffResolved`]).
        #[serde(skip)]
        resolved: Arc<HandoffResolved>,
    },
    /// Someone started or stopped typing (never stored).
    Typing {
        author: Author,
        agent_id: Option<String>,
        typing: bool,
        /// Typing an internal note: never shown to the visitor.
        internal: bool,
    },
    /// An agent (deactivated, or a password change: then only tokens below
    /// `below_generation`) or an API key (revoked) lost access: its sockets close.
    AccessRevoked {
        subject: String,
        below_generation: Option<i32>,
    },
    /// An agent's availability changed (set, or a socket opened after none for
    /// the presence timeout, or none open for that long).
    AgentAvailabilityChanged {
        agent_id: String,
        availability: Availability,
    },
}

/// What the subscribers of one handoff event look up about it: loaded once, by the
/// process's log reader or the first subscriber that asks, and shared by the
/// others, so an escalation to 200 agents reads its team and builds its case file
/// once, not 200 times. As of the event, like the rows the event carries.
#[derive(Debug, Default)]
pub struct HandoffResolved {
    pub case_file: OnceCell<Arc<CaseFile>>,
    pub team: OnceCell<Option<Arc<team::Model>>>,
    pub accepted_by: OnceCell<Option<Arc<agent::Model>>>,
}

/// What about a conversation changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    Opened,
    Status,
    Assigned,
    Tagged { tag_id: String },
    Untagged { tag_id: String },
    Lead,
}

/// The type of an event that is stored but never shown to clients.
pub const ACCESS_REVOKED: &str = "ACCESS_REVOKED";

/// The type of an availability change: on `inbox` only (not in `events` or
/// webhooks, which are about conversations).
pub const AGENT_AVAILABILITY_CHANGED: &str = "AGENT_AVAILABILITY_CHANGED";

impl Event {
    fn new(workspace_id: String, conversation_id: String, kind: EventKind) -> Event {
        Event {
            id: new_id(Kind::Event),
            cursor: None,
            occurred_at: now_ms(),
            workspace_id,
            conversation_id,
            kind,
        }
    }

    pub fn message_created(message: message::Model, conversation: conversation::Model) -> Event {
        Event::new(
            message.workspace_id.clone(),
            message.conversation_id.clone(),
            EventKind::MessageCreated {
                message: Arc::new(message),
                conversation: Arc::new(conversation),
            },
        )
    }

    pub fn conversation_changed(conversation: conversation::Model, change: Change) -> Event {
        Event::new(
            conversation.workspace_id.clone(),
            conversation.id.clone(),
            EventKind::ConversationChanged {
                conversation: Arc::new(conversation),
                change,
            },
        )
    }

    pub fn handoff_changed(handoff: handoff::Model, conversation: conversation::Model) -> Event {
        Event::handoff(handoff, conversation, false)
    }

    /// The team's accept target passed with `handoff` still waiting.
    pub fn sla_breached(handoff: handoff::Model, conversation: conversation::Model) -> Event {
        Event::handoff(handoff, conversation, true)
    }

    fn handoff(
        handoff: handoff::Model,
        conversation: conversation::Model,
        sla_breached: bool,
    ) -> Event {
        Event::new(
            conversation.workspace_id.clone(),
            conversation.id.clone(),
            EventKind::HandoffChanged {
                handoff: Arc::new(handoff),
                conversation: Arc::new(conversation),
                sla_breached,
                resolved: Arc::default(),
            },
        )
    }

    pub fn typing(
        conversation: &conversation::Model,
        author: Author,
        agent_id: Option<String>,
        typing: bool,
        internal: bool,
    ) -> Event {
        Event::new(
            conversation.workspace_id.clone(),
            conversation.id.clone(),
            EventKind::Typing {
                author,
                agent_id,
                typing,
                internal,
            },
        )
    }

    /// `subject` (an agent or API key id) of `workspace_id` lost access.
    pub fn access_revoked(
        workspace_id: &str,
        subject: &str,
        below_generation: Option<i32>,
    ) -> Event {
        Event::new(
            workspace_id.to_owned(),
            String::new(),
            EventKind::AccessRevoked {
                subject: subject.to_owned(),
                below_generation,
            },
        )
    }

    /// `agent_id` of `workspace_id` is now `availability`.
    pub fn availability_changed(
        workspace_id: &str,
        agent_id: &str,
        availability: Availability,
    ) -> Event {
        Event::new(
            workspace_id.to_owned(),
            String::new(),
            EventKind::AgentAvailabilityChanged {
                agent_id: agent_id.to_owned(),
                availability,
            },
        )
    }

    /// The conversation as of this event, when the event carries it.
    pub fn conversation(&self) -> Option<&Arc<conversation::Model>> {
        match &self.kind {
            EventKind::MessageCreated { conversation, .. }
            | EventKind::ConversationChanged { conversation, .. }
            | EventKind::HandoffChanged { conversation, .. } => Some(conversation),
            EventKind::Typing { .. }
            | EventKind::AccessRevoked { .. }
            | EventKind::AgentAvailabilityChanged { .. } => None,
        }
    }

    /// The type clients see (`EventType` in the schema, a webhook's `type`).
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            EventKind::MessageCreated { .. } => "MESSAGE_CREATED",
            EventKind::ConversationChanged { change, .. } => match change {
                Change::Opened => "CONVERSATION_OPENED",
                Change::Status => "CONVERSATION_STATUS_CHANGED",
                Change::Assigned => "CONVERSATION_ASSIGNED",
                Change::Tagged { .. } => "CONVERSATION_TAGGED",
                Change::Untagged { .. } => "CONVERSATION_UNTAGGED",
                Change::Lead => "LEAD_UPDATED",
            },
            EventKind::HandoffChanged {
                sla_breached: true, ..
            } => "SLA_BREACHED",
            EventKind::HandoffChanged { handoff, .. } => match handoff.status {
                HandoffStatus::Requested => "HANDOFF_REQUESTED",
                HandoffStatus::Offered => "HANDOFF_OFFERED",
                HandoffStatus::Accepted => "HANDOFF_ACCEPTED",
                HandoffStatus::Resolved => "HANDOFF_RESOLVED",
                HandoffStatus::Cancelled => "HANDOFF_CANCELLED",
            },
            EventKind::Typing { .. } => "TYPING",
            EventKind::AccessRevoked { .. } => ACCESS_REVOKED,
            EventKind::AgentAvailabilityChanged { .. } => AGENT_AVAILABILITY_CHANGED,
        }
    }

    /// The message, handoff, tag or agent it concerns.
    fn subject_id(&self) -> Option<String> {
        match &self.kind {
            EventKind::MessageCreated { message, .. } => Some(message.id.clone()),
            EventKind::HandoffChanged { handoff, .. } => Some(handoff.id.clone()),
            EventKind::ConversationChanged {
                change: Change::Tagged { tag_id } | Change::Untagged { tag_id },
                ..
            } => Some(tag_id.clone()),
            EventKind::ConversationChanged { conversation, .. } => Some(conversation.id.clone()),
            EventKind::Typing { agent_id, .. } => agent_id.clone(),
            EventKind::AccessRevoked { subject, .. } => Some(subject.clone()),
            EventKind::AgentAvailabilityChanged { agent_id, .. } => Some(agent_id.clone()),
        }
    }

    fn to_record(&self) -> AppResult<NewRecord> {
        Ok(NewRecord {
            id: self.id.clone(),
            workspace_id: self.workspace_id.clone(),
            conversation_id: (!self.conversation_id.is_empty())
                .then(|| self.conversation_id.clone()),
            kind: self.type_name().to_owned(),
            subject_id: self.subject_id(),
            occurred_at: self.occurred_at,
            payload: serde_json::to_string(&self.kind)?,
        })
    }
}

/// The event a record holds, decoded once however many ask (`None` for a record
/// this build cannot read).
pub fn decode(record: &Record) -> Option<Arc<Event>> {
    record.decoded(|record| {
        let kind = serde_json::from_str::<EventKind>(&record.payload)
            .inspect_err(|err| {
                tracing::warn!(event = %record.id, error.detail = %err, "undecodable event");
            })
            .ok()?;
        Some(Event {
            id: record.id.clone(),
            cursor: record.cursor,
            occurred_at: record.occurred_at,
            workspace_id: record.workspace_id.clone(),
            conversation_id: record.conversation_id.clone().unwrap_or_default(),
            kind,
        })
    })
}

/// Store `events` in `txn`, commit it, and wake the readers of the log. The one way
/// a write that others must hear of commits.
pub async fn commit(core: &Core, txn: DatabaseTransaction, events: &[Event]) -> AppResult<()> {
    if events.is_empty() {
        txn.commit().await?;
        return Ok(());
    }
    let staged = stage(&txn, events).await?;
    txn.commit().await?;
    publish(core, staged);
    Ok(())
}

/// Events stored in a transaction that has not committed yet: [`publish`] them
/// once it has.
pub struct Staged {
    events: Vec<Event>,
    records: Vec<NewRecord>,
    cursors: Vec<Cursor>,
}

/// Store `events` in the log inside `txn` (or a savepoint of it).
pub async fn stage(txn: &impl sea_orm::ConnectionTrait, events: &[Event]) -> AppResult<Staged> {
    let records = events
        .iter()
        .map(Event::to_record)
        .collect::<AppResult<Vec<_>>>()?;
    let cursors = if records.is_empty() {
        Vec::new()
    } else {
        crate::events::append(txn, &records).await?
    };
    Ok(Staged {
        events: events.to_vec(),
        records,
        cursors,
    })
}

/// Announce events whose transaction committed.
pub fn publish(core: &Core, staged: Staged) {
    for record in &staged.records {
        core.list_counts.changed(&record.workspace_id);
    }
    // Handed over decoded, so that this process need not read them back.
    let committed = staged
        .events
        .into_iter()
        .zip(staged.records)
        .zip(staged.cursors)
        .map(|((event, record), cursor)| {
            let event = Event {
                cursor: Some(cursor),
                ..event
            };
            Record::new(Some(cursor), record).with_decoded(event)
        })
        .collect();
    core.events.committed(committed);
}

/// Deliver an event that is not stored (typing).
pub fn ephemeral(core: &Core, event: &Event) -> AppResult<()> {
    core.events.ephemeral(Record::new(None, event.to_record()?));
    Ok(())
}

/// Run by the log reader on every record before its subscribers get it: decode it
/// once, and for a new handoff request read its case file and team now, in the
/// background, so that no subscriber of escalations waits for the first one to
/// get to the event (they deliver in order, and a storm of requests would otherwise
/// queue behind each one's case file).
pub fn observe(core: &Core, record: &Arc<Record>) {
    // Other processes' changes too (this process's own were counted at commit);
    // typing is not stored and changes no list.
    if record.cursor.is_some() {
        core.list_counts.changed(&record.workspace_id);
    }
    let Some(event) = decode(record) else {
        return;
    };
    let EventKind::HandoffChanged {
        handoff, resolved, ..
    } = &event.kind
    else {
        return;
    };
    if handoff.status != HandoffStatus::Requested {
        return;
    }
    let (core, handoff, resolved) = (core.clone(), Arc::clone(handoff), Arc::clone(resolved));
    core.tasks.clone().spawn(async move {
        let case_file = resolved.case_file.get_or_try_init(|| async {
            super::case_file::build(&core, &handoff).await.map(Arc::new)
        });
        let team = resolved.team.get_or_try_init(|| async {
            match &handoff.team_id {
                Some(id) => super::teams::get(&core, &handoff.workspace_id, id)
                    .await
                    .map(|team| Some(Arc::new(team))),
                None => Ok(None),
            }
        });
        // A failure here is the subscribers' to meet: they try again themselves.
        let _ = tokio::join!(case_file, team);
    });
}

/// The event types clients see, in the order the schema lists them.
pub const PUBLIC_TYPES: [&str; 13] = [
    "MESSAGE_CREATED",
    "CONVERSATION_OPENED",
    "CONVERSATION_STATUS_CHANGED",
    "CONVERSATION_ASSIGNED",
    "CONVERSATION_TAGGED",
    "CONVERSATION_UNTAGGED",
    "LEAD_UPDATED",
    "HANDOFF_REQUESTED",
    "HANDOFF_ACCEPTED",
    "HANDOFF_RESOLVED",
    "HANDOFF_CANCELLED",
    "HANDOFF_OFFERED",
    "SLA_BREACHED",
];

/// Whether `principal` may see `event` in the `events` query: never revocations,
/// and internal notes only for those who see them.
pub fn visible_to(event: &Event, principal: &crate::auth::Principal) -> bool {
    match &event.kind {
        EventKind::AccessRevoked { .. }
        | EventKind::Typing { .. }
        | EventKind::AgentAvailabilityChanged { .. } => false,
        EventKind::MessageCreated { message, .. } => !message.internal || principal.sees_internal(),
        EventKind::ConversationChanged { .. } | EventKind::HandoffChanged { .. } => true,
    }
}

/// Up to `first` events after `after` that `principal` may see, of `kinds` (any
/// when empty) and of `conversation_id` when given; and whether more follow.
pub async fn page(
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
pub fn envelope(event: &Event) -> serde_json::Value {
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
            "sources": serde_json::from_str::<Value>(&m.sources).unwrap_or(Value::Array(vec![])),
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
    json!({
        "id": event.id,
        "cursor": event.cursor.map(|c| c.encode()),
        "type": event.type_name(),
        "occurredAt": time(event.occurred_at),
        "conversation": conversation,
        "message": message,
        "handoff": handoff,
        "tag": tag,
    })
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
