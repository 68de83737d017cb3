//! What `inbox` yields: what an inbox list needs to stay current without polling.

use async_graphql::{Context, Enum, ID, InputObject, Object};

use crate::domain;
use crate::domain::core::feed::{Change, Event, EventKind};
use crate::entity::{Availability, ConversationStatus, HandoffStatus, conversation};
use crate::error::AppResult;

use super::agents::Agent;
use super::conversations::Conversation;
use super::handoffs::Handoff;
use super::messages::Message;
use super::{ContextExt, timestamp};

/// What an inbox row needs to know.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum InboxEventKind {
    /// A new conversation.
    ConversationOpened,
    /// Status, assignee, team, tags or lead changed.
    ConversationUpdated,
    /// A conversation changed so that it no longer matches the filter: drop its row
    /// if you show it.
    ConversationRemoved,
    /// A new message (`message` holds it; internal notes only for those who see
    /// them).
    MessageCreated,
    /// A handoff was requested, or transferred to a team (`handoff` holds it).
    HandoffRequested,
    /// A handoff was accepted (or transferred to an agent).
    HandoffAccepted,
    /// A handoff was resolved with its conversation.
    HandoffResolved,
    /// A handoff was cancelled: the conversation went back to the AI.
    HandoffCancelled,
    /// A handoff was offered to one agent of its team (`handoff.offeredTo`).
    HandoffOffered,
    /// A handoff's accept target (`handoff.slaDueAt`) passed while it waited.
    SlaBreached,
    /// An agent's availability changed (`agent` and `availability` hold it; no
    /// conversation). Whatever the filter.
    AgentAvailabilityChanged,
}

/// An inbox change, with the conversation as it is now, to re-render its row; or
/// an agent's availability change (`AGENT_AVAILABILITY_CHANGED`, no conversation).
pub struct InboxEvent {
    kind: InboxEventKind,
    cursor: String,
    conversation: Option<conversation::Model>,
    /// For `AGENT_AVAILABILITY_CHANGED`: the agent, and its availability then.
    availability: Option<(String, Availability)>,
    /// The conversation's last change, or when the availability changed (ms).
    at: i64,
    message: Option<crate::entity::message::Model>,
    handoff: Option<Handoff>,
}

#[Object]
impl InboxEvent {
    async fn kind(&self) -> InboxEventKind {
        self.kind
    }

    /// This event's position in the event log: subscribe again with `after:` it
    /// to resume where you stopped.
    async fn cursor(&self) -> &str {
        &self.cursor
    }

    /// The conversation, for every kind but `AGENT_AVAILABILITY_CHANGED`.
    async fn conversation(&self) -> Option<Conversation> {
        self.conversation.clone().map(Conversation)
    }

    /// For `AGENT_AVAILABILITY_CHANGED`: the agent whose availability changed.
    async fn agent(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Agent>> {
        let Some((id, _)) = &self.availability else {
            return Ok(None);
        };
        Ok(ctx
            .loaders()
            .load_one(crate::graphql::loaders::AgentKey(id.clone()))
            .await?
            .map(Agent))
    }

    /// For `AGENT_AVAILABILITY_CHANGED`: the agent's availability as of the event.
    async fn availability(&self) -> Option<Availability> {
        self.availability
            .as_ref()
            .map(|(_, availability)| *availability)
    }

    /// For `MESSAGE_CREATED`: the new message.
    async fn message(&self) -> Option<Message> {
        self.message.clone().map(Message::from)
    }

    /// For `HANDOFF_*`: the handoff.
    async fn handoff(&self) -> Option<&Handoff> {
        self.handoff.as_ref()
    }

    async fn at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.at)
    }
}

/// Which conversations an inbox shows. Every condition given must hold.
#[derive(InputObject, Default, Clone)]
pub struct InboxFilter {
    /// Any of these statuses.
    pub status: Option<Vec<ConversationStatus>>,
    /// Routed to any of these teams.
    pub team_ids: Option<Vec<ID>>,
    /// Carrying any of these tags.
    pub tag_ids: Option<Vec<ID>>,
    pub assignee_id: Option<ID>,
}

impl From<InboxFilter> for domain::outbound::filters::InboxFilter {
    fn from(filter: InboxFilter) -> Self {
        let ids = |ids: Option<Vec<ID>>| ids.map(|ids| ids.into_iter().map(|id| id.0).collect());
        domain::outbound::filters::InboxFilter {
            statuses: filter.status,
            team_ids: ids(filter.team_ids),
            tag_ids: ids(filter.tag_ids),
            assignee_id: filter.assignee_id.map(|id| id.0),
        }
    }
}

/// What `event` is to an inbox of `filter`, if anything.
pub(super) async fn inbox_event(
    core: &crate::domain::Core,
    filter: &domain::outbound::filters::InboxFilter,
    event: &Event,
) -> AppResult<Option<InboxEvent>> {
    if let EventKind::AgentAvailabilityChanged {
        agent_id,
        availability,
    } = &event.kind
    {
        return Ok(Some(InboxEvent {
            kind: InboxEventKind::AgentAvailabilityChanged,
            cursor: event.cursor.map(|c| c.encode()).unwrap_or_default(),
            conversation: None,
            availability: Some((agent_id.clone(), *availability)),
            at: event.occurred_at,
            message: None,
            handoff: None,
        }));
    }
    let Some(conversation) = event.conversation() else {
        return Ok(None);
    };
    let matches = filter.matches(core, conversation).await?;
    let mut handoff = None;
    let mut message = None;
    let kind = match &event.kind {
        EventKind::MessageCreated {
            message: created, ..
        } => {
            message = Some(created.as_ref().clone());
            InboxEventKind::MessageCreated
        }
        EventKind::ConversationChanged {
            change: Change::Opened,
            ..
        } => InboxEventKind::ConversationOpened,
        EventKind::ConversationChanged { .. } if matches => InboxEventKind::ConversationUpdated,
        EventKind::ConversationChanged { .. } => InboxEventKind::ConversationRemoved,
        EventKind::HandoffChanged {
            handoff: changed,
            conversation,
            resolved,
            sla_breached,
        } => {
            handoff = Some(Handoff::of_event(event, changed, conversation, resolved));
            match changed.status {
                _ if *sla_breached => InboxEventKind::SlaBreached,
                HandoffStatus::Requested => InboxEventKind::HandoffRequested,
                HandoffStatus::Offered => InboxEventKind::HandoffOffered,
                HandoffStatus::Accepted => InboxEventKind::HandoffAccepted,
                HandoffStatus::Resolved => InboxEventKind::HandoffResolved,
                HandoffStatus::Cancelled => InboxEventKind::HandoffCancelled,
            }
        }
        EventKind::Typing { .. }
        | EventKind::AnswerDelta { .. }
        | EventKind::AccessRevoked { .. }
        | EventKind::AgentAvailabilityChanged { .. }
        | EventKind::ContactErased { .. } => {
            return Ok(None);
        }
    };
    if !matches && kind != InboxEventKind::ConversationRemoved {
        return Ok(None);
    }
    Ok(Some(InboxEvent {
        kind,
        cursor: event.cursor.map(|c| c.encode()).unwrap_or_default(),
        conversation: Some(conversation.as_ref().clone()),
        availability: None,
        at: conversation.updated_at,
        message,
        handoff,
    }))
}
