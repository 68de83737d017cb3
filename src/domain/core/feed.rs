//! What happened, in the domain's words: the events every write stores in its own
//! transaction (see `crate::events` for the log that carries them), how they are
//! written and read back, and the names clients see (`MESSAGE_CREATED`, …).

use std::sync::Arc;

use sea_orm::DatabaseTransaction;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::domain::Core;
use crate::entity::{
    Author, Availability, HandoffStatus, agent, conversation, conversation_tag, handoff,
    insight_tag, lead, message, now_ms, team,
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
    /// A piece of an AI answer being written to the visitor message `reply_to_seq`,
    /// starting at character `offset` of the answer (never stored: the answer is,
    /// once whole).
    AnswerDelta {
        reply_to_seq: i64,
        offset: i64,
        text: String,
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
    /// A person's data was erased (`eraseContact`): the lead and its
    /// conversations, by id only, so that integrations erase their copies.
    ContactErased {
        lead_id: String,
        conversation_ids: Vec<String>,
    },
}

impl EventKind {
    /// This event as it reads once its conversation's visitor data is erased at
    /// `at`: message bodies become `text`, the conversation loses its context and
    /// its visitor id, a handoff its note.
    pub fn erase(&mut self, at: i64, text: &str) {
        let conversation = match self {
            EventKind::MessageCreated {
                message,
                conversation,
            } => {
                let message = Arc::make_mut(message);
                message.body = text.to_owned();
                message.client_message_id = None;
                conversation
            }
            EventKind::HandoffChanged {
                handoff,
                conversation,
                ..
            } => {
                Arc::make_mut(handoff).note = None;
                conversation
            }
            EventKind::ConversationChanged { conversation, .. } => conversation,
            EventKind::Typing { .. }
            | EventKind::AnswerDelta { .. }
            | EventKind::AccessRevoked { .. }
            | EventKind::AgentAvailabilityChanged { .. }
            | EventKind::ContactErased { .. } => return,
        };
        let conversation = Arc::make_mut(conversation);
        conversation.context = "{}".to_owned();
        conversation.visitor_id = erased_visitor(&conversation.id);
        conversation.erased_at = Some(at);
    }
}

/// What an erased conversation's visitor id starts with; its own id follows, tied
/// to no one.
pub const ERASED_VISITOR: &str = "erased:";

fn erased_visitor(conversation_id: &str) -> String {
    format!("{ERASED_VISITOR}{conversation_id}")
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

/// Everything known about a handed-off conversation (built by
/// `handoff::case_file::build`).
#[derive(Clone, Debug)]
pub struct CaseFile {
    pub summary: String,
    /// The visitor's question: their first message since the AI last took control.
    pub question: Option<String>,
    /// Every message, internal notes included (case files are for agents).
    pub transcript: Vec<message::Model>,
    /// The AI's answers, with their sources and confidence.
    pub ai_answers: Vec<message::Model>,
    pub lead: Option<lead::Model>,
    pub conversation: conversation::Model,
    pub tags: Vec<(conversation_tag::Model, std::sync::Arc<insight_tag::Model>)>,
    /// How many answers the AI tried before the handoff.
    pub attempts: usize,
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

/// The type of an erasure: in `events` and webhooks, not on any subscription.
pub const CONTACT_ERASED: &str = "CONTACT_ERASED";

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

    /// `text`, the piece of an AI answer to the visitor message `reply_to_seq` that
    /// starts at character `offset`.
    pub fn answer_delta(
        conversation: &conversation::Model,
        reply_to_seq: i64,
        offset: i64,
        text: String,
    ) -> Event {
        Event::new(
            conversation.workspace_id.clone(),
            conversation.id.clone(),
            EventKind::AnswerDelta {
                reply_to_seq,
                offset,
                text,
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

    /// `lead_id`'s data, and that of `conversation_ids`, was erased.
    pub fn contact_erased(
        workspace_id: &str,
        lead_id: &str,
        conversation_ids: Vec<String>,
    ) -> Event {
        Event::new(
            workspace_id.to_owned(),
            String::new(),
            EventKind::ContactErased {
                lead_id: lead_id.to_owned(),
                conversation_ids,
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
            | EventKind::AnswerDelta { .. }
            | EventKind::AccessRevoked { .. }
            | EventKind::AgentAvailabilityChanged { .. }
            | EventKind::ContactErased { .. } => None,
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
            EventKind::AnswerDelta { .. } => "ANSWER_DELTA",
            EventKind::AccessRevoked { .. } => ACCESS_REVOKED,
            EventKind::AgentAvailabilityChanged { .. } => AGENT_AVAILABILITY_CHANGED,
            EventKind::ContactErased { .. } => CONTACT_ERASED,
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
            EventKind::AnswerDelta { .. } => None,
            EventKind::AccessRevoked { subject, .. } => Some(subject.clone()),
            EventKind::AgentAvailabilityChanged { agent_id, .. } => Some(agent_id.clone()),
            EventKind::ContactErased { lead_id, .. } => Some(lead_id.clone()),
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

/// The event types clients see, in the order the schema lists them.
pub const PUBLIC_TYPES: [&str; 14] = [
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
    CONTACT_ERASED,
];

/// Whether `principal` may see `event` in the `events` query: never revocations,
/// and internal notes only for those who see them.
pub fn visible_to(event: &Event, principal: &crate::auth::Principal) -> bool {
    match &event.kind {
        EventKind::AccessRevoked { .. }
        | EventKind::Typing { .. }
        | EventKind::AnswerDelta { .. }
        | EventKind::AgentAvailabilityChanged { .. } => false,
        EventKind::MessageCreated { message, .. } => !message.internal || principal.sees_internal(),
        EventKind::ConversationChanged { .. }
        | EventKind::HandoffChanged { .. }
        | EventKind::ContactErased { .. } => true,
    }
}
