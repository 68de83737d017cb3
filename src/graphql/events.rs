//! The event log as a query: what happened in a workspace, in order, by cursor (the
//! same cursors the subscriptions carry and webhooks deliver).

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::resolver_utils::EnumType;
use async_graphql::{Context, Enum, ID, Object};

use crate::auth::Scope;
use crate::domain;
use crate::domain::core::feed::{Change, Event, EventKind};
use crate::events::Cursor;
use crate::graphql::loaders::TagKey;

use super::conversations::Conversation;
use super::handoffs::Handoff;
use super::messages::Message;
use super::tags::InsightTag;
use super::{ContextExt, timestamp};

/// What an event says happened.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum EventType {
    /// A message was stored (`message`).
    MessageCreated,
    /// A conversation was started.
    ConversationOpened,
    /// A conversation's status changed.
    ConversationStatusChanged,
    /// A conversation was assigned or unassigned.
    ConversationAssigned,
    /// A tag was put on a conversation (`tag`).
    ConversationTagged,
    /// A tag was taken off a conversation (`tag`).
    ConversationUntagged,
    /// Lead details were captured.
    LeadUpdated,
    /// A handoff was requested, or transferred to a team (`handoff`).
    HandoffRequested,
    /// A handoff was accepted, or transferred to an agent.
    HandoffAccepted,
    /// A handoff was resolved with its conversation.
    HandoffResolved,
    /// A handoff was cancelled: the conversation went back to the AI.
    HandoffCancelled,
    /// A handoff was offered to one agent of its team (`handoff.offeredTo`).
    HandoffOffered,
    /// A handoff's accept target (`slaDueAt`) passed while it still waited.
    SlaBreached,
    /// A person's data was erased (`erasure`: the lead and conversations, by id);
    /// erase your copies. Delivered to every webhook that takes this type,
    /// whatever its teams and tags.
    ContactErased,
}

impl EventType {
    /// The name the log stores (the schema's name).
    pub fn as_str(self) -> &'static str {
        EventType::items()
            .iter()
            .find(|item| item.value == self)
            .map_or("", |item| item.name)
    }

    pub fn of(name: &str) -> Option<EventType> {
        EventType::items()
            .iter()
            .find(|item| item.name == name)
            .map(|item| item.value)
    }
}

/// Something that happened, as stored in the event log: the rows it concerns as
/// they were right after it. Webhooks deliver the same envelope as JSON.
pub struct EventNode(pub Arc<Event>);

#[Object(name = "Event")]
impl EventNode {
    /// `evt_…`; a webhook delivery's `webhook-id`.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// Its position in the log: pass it as `after` to `events` or to a
    /// subscription to go on from here.
    async fn cursor(&self) -> String {
        self.0.cursor.map(Cursor::encode).unwrap_or_default()
    }

    #[graphql(name = "type")]
    async fn kind(&self) -> Option<EventType> {
        EventType::of(self.0.type_name())
    }

    async fn occurred_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.occurred_at)
    }

    /// The conversation as it was right after the event.
    async fn conversation(&self) -> Option<Conversation> {
        self.0
            .conversation()
            .map(|c| Conversation(c.as_ref().clone()))
    }

    /// For `MESSAGE_CREATED`: the message.
    async fn message(&self) -> Option<Message> {
        match &self.0.kind {
            EventKind::MessageCreated { message, .. } => Some(Message(Arc::clone(message))),
            _ => None,
        }
    }

    /// For `HANDOFF_*`: the handoff as it was right after the event.
    async fn handoff(&self) -> Option<Handoff> {
        match &self.0.kind {
            EventKind::HandoffChanged {
                handoff,
                conversation,
                resolved,
                ..
            } => Some(Handoff::of_event(&self.0, handoff, conversation, resolved)),
            _ => None,
        }
    }

    /// For `CONVERSATION_TAGGED` and `CONVERSATION_UNTAGGED`: the tag (null if it
    /// was deleted since).
    async fn tag(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<InsightTag>> {
        let EventKind::ConversationChanged {
            change: Change::Tagged { tag_id } | Change::Untagged { tag_id },
            ..
        } = &self.0.kind
        else {
            return Ok(None);
        };
        Ok(ctx
            .loaders()
            .load_one(TagKey(tag_id.clone()))
            .await?
            .map(InsightTag))
    }

    /// For `CONTACT_ERASED`: what was erased.
    async fn erasure(&self) -> Option<Erasure> {
        match &self.0.kind {
            EventKind::ContactErased {
                lead_id,
                conversation_ids,
            } => Some(Erasure {
                lead_id: ID(lead_id.clone()),
                conversation_ids: conversation_ids.iter().cloned().map(ID).collect(),
            }),
            _ => None,
        }
    }
}

/// The ids of a lead and conversations whose personal data was erased: their
/// messages now read as erased, the lead has no details.
#[derive(async_graphql::SimpleObject)]
pub struct Erasure {
    pub lead_id: ID,
    pub conversation_ids: Vec<ID>,
}

#[derive(Default)]
pub struct EventQuery;

#[Object]
impl EventQuery {
    /// What happened in the workspace, oldest first, from the event log (kept for
    /// `CASEFILE_EVENT_RETENTION`, 30 days by default): the catch-up for a client
    /// or a service that was away. Page with `after` (an event's `cursor`, from
    /// here, a subscription or a webhook); `first` is 1 to 500. A cursor older than
    /// the retention answers `BAD_USER_INPUT` with `reason: CURSOR_EXPIRED`. For
    /// agents and API keys with `EVENTS_READ`; what an event shows follows the
    /// reader's scopes (internal notes only for those who read them).
    async fn events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        #[graphql(default = 100)] first: Option<i32>,
        types: Option<Vec<EventType>>,
        conversation_id: Option<ID>,
    ) -> async_graphql::Result<Connection<String, EventNode>> {
        let principal = ctx.principal()?;
        principal.require(Scope::EventsRead)?;
        let kinds: Vec<String> = types
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.as_str().to_owned())
            .collect();
        let domain::outbound::events::EventPage {
            events,
            has_next,
            after,
        } = domain::outbound::events::page(
            ctx.core(),
            principal,
            after.as_deref(),
            first.unwrap_or(100),
            &kinds,
            conversation_id.as_ref().map(|id| id.0.as_str()),
        )
        .await?;
        let mut connection = Connection::new(after > Cursor::START, has_next);
        connection.edges.extend(events.into_iter().map(|event| {
            Edge::new(
                event.cursor.map(Cursor::encode).unwrap_or_default(),
                EventNode(event),
            )
        }));
        Ok(connection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_public_type_is_in_the_schema_and_back() {
        for name in domain::core::feed::PUBLIC_TYPES {
            let kind = EventType::of(name).unwrap_or_else(|| panic!("{name} in the schema"));
            assert_eq!(kind.as_str(), name);
        }
        assert_eq!(
            EventType::items().len(),
            domain::core::feed::PUBLIC_TYPES.len()
        );
    }
}
