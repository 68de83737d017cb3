//! What `conversationEvents` yields: typing, status, assignment, tags, lead
//! updates and handoffs of one conversation, each filtered for its subscriber.

use async_graphql::{Context, ID, Object, Union};

use crate::auth::Principal;
use crate::domain::core::feed::{Change, Event, EventKind};
use crate::entity::{Author, ConversationStatus, conversation};
use crate::graphql::loaders::{LeadKey, TagKey};

use super::ContextExt;
use super::agents::Agent;
use super::conversations::Conversation;
use super::handoffs::Handoff;
use super::leads::Lead;
use super::tags::InsightTag;

/// Someone started or stopped typing in a conversation.
pub struct TypingEvent {
    conversation_id: String,
    /// Typing is never stored, so it has no cursor.
    cursor: Option<String>,
    author: Author,
    agent_id: Option<String>,
    typing: bool,
}

#[Object]
impl TypingEvent {
    async fn conversation_id(&self) -> ID {
        ID(self.conversation_id.clone())
    }

    /// Always null: typing is not stored in the event log.
    async fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// `VISITOR` or `AGENT`.
    async fn author(&self) -> Author {
        self.author
    }

    /// The agent typing, for `AGENT`.
    async fn agent(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Agent>> {
        let Some(id) = &self.agent_id else {
            return Ok(None);
        };
        Agent::load(ctx, id).await
    }

    /// `true` when typing started, `false` when it stopped.
    async fn typing(&self) -> bool {
        self.typing
    }
}

/// The conversation's status changed (`AI → QUEUED → HUMAN → RESOLVED`, or back).
pub struct ConversationStatusChanged {
    conversation: conversation::Model,
    cursor: String,
}

#[Object]
impl ConversationStatusChanged {
    async fn conversation(&self) -> Conversation {
        Conversation(self.conversation.clone())
    }

    async fn status(&self) -> ConversationStatus {
        self.conversation.status
    }

    /// This event's position in the event log: subscribe again with `after:` it
    /// to resume.
    async fn cursor(&self) -> &str {
        &self.cursor
    }
}

/// The conversation was assigned (or unassigned).
pub struct ConversationAssigned {
    conversation: conversation::Model,
    cursor: String,
}

#[Object]
impl ConversationAssigned {
    async fn conversation(&self) -> Conversation {
        Conversation(self.conversation.clone())
    }

    /// This event's position in the event log: subscribe again with `after:` it
    /// to resume.
    async fn cursor(&self) -> &str {
        &self.cursor
    }

    async fn assignee(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Agent>> {
        let Some(id) = &self.conversation.assignee_id else {
            return Ok(None);
        };
        Agent::load(ctx, id).await
    }
}

/// A tag was put on (`tagged: true`) or taken off the conversation. Agents only.
pub struct ConversationTagChanged {
    conversation: conversation::Model,
    tag_id: String,
    tagged: bool,
    cursor: String,
}

#[Object]
impl ConversationTagChanged {
    async fn conversation(&self) -> Conversation {
        Conversation(self.conversation.clone())
    }

    /// This event's position in the event log: subscribe again with `after:` it
    /// to resume.
    async fn cursor(&self) -> &str {
        &self.cursor
    }

    async fn tag(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<InsightTag>> {
        Ok(ctx
            .loaders()
            .load_one(TagKey(self.tag_id.clone()))
            .await?
            .map(InsightTag))
    }

    async fn tagged(&self) -> bool {
        self.tagged
    }
}

/// Lead details were captured.
pub struct LeadUpdated {
    conversation: conversation::Model,
    cursor: String,
}

#[Object]
impl LeadUpdated {
    async fn conversation(&self) -> Conversation {
        Conversation(self.conversation.clone())
    }

    /// This event's position in the event log: subscribe again with `after:` it
    /// to resume.
    async fn cursor(&self) -> &str {
        &self.cursor
    }

    async fn lead(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Lead>> {
        let Some(id) = &self.conversation.lead_id else {
            return Ok(None);
        };
        Ok(ctx.loaders().load_one(LeadKey(id.clone())).await?.map(Lead))
    }
}

/// A handoff was requested, accepted, transferred, resolved or cancelled.
pub struct HandoffChanged(Handoff);

#[Object]
impl HandoffChanged {
    async fn handoff(&self) -> &Handoff {
        &self.0
    }

    /// This event's position in the event log (the same as `handoff.cursor`).
    async fn cursor(&self) -> Option<&str> {
        self.0.event_cursor()
    }
}

/// Something happened in a conversation, besides a new message.
#[derive(Union)]
pub enum ConversationEvent {
    Typing(TypingEvent),
    StatusChanged(ConversationStatusChanged),
    Assigned(ConversationAssigned),
    TagChanged(ConversationTagChanged),
    LeadUpdated(LeadUpdated),
    HandoffChanged(HandoffChanged),
    AnswerDelta(AnswerDelta),
}

impl ConversationEvent {
    /// What `principal` may see of `event`, if anything.
    pub(super) fn visible_to(event: &Event, principal: &Principal) -> Option<ConversationEvent> {
        let agent = principal.agent().is_ok();
        let cursor = event.cursor.map(|c| c.encode()).unwrap_or_default();
        match &event.kind {
            EventKind::Typing {
                author,
                agent_id,
                typing,
                internal,
            } => (agent || !internal).then(|| {
                ConversationEvent::Typing(TypingEvent {
                    conversation_id: event.conversation_id.clone(),
                    cursor: None,
                    author: *author,
                    agent_id: agent_id.clone(),
                    typing: *typing,
                })
            }),
            EventKind::ConversationChanged {
                conversation,
                change,
            } => {
                let conversation = conversation.as_ref().clone();
                match change {
                    Change::Status | Change::Opened => Some(ConversationEvent::StatusChanged(
                        ConversationStatusChanged {
                            conversation,
                            cursor,
                        },
                    )),
                    Change::Assigned => Some(ConversationEvent::Assigned(ConversationAssigned {
                        conversation,
                        cursor,
                    })),
                    Change::Lead => Some(ConversationEvent::LeadUpdated(LeadUpdated {
                        conversation,
                        cursor,
                    })),
                    Change::Tagged { tag_id } | Change::Untagged { tag_id } => agent.then(|| {
                        ConversationEvent::TagChanged(ConversationTagChanged {
                            conversation,
                            tag_id: tag_id.clone(),
                            tagged: matches!(change, Change::Tagged { .. }),
                            cursor,
                        })
                    }),
                }
            }
            EventKind::HandoffChanged {
                handoff,
                conversation,
                resolved,
                ..
            } => Some(ConversationEvent::HandoffChanged(HandoffChanged(
                Handoff::of_event(event, handoff, conversation, resolved),
            ))),
            EventKind::AnswerDelta {
                reply_to_seq,
                offset,
                text,
            } => Some(ConversationEvent::AnswerDelta(AnswerDelta {
                conversation_id: ID(event.conversation_id.clone()),
                reply_to_seq: *reply_to_seq,
                offset: *offset,
                text: text.clone(),
            })),
            EventKind::MessageCreated { .. }
            | EventKind::AccessRevoked { .. }
            | EventKind::AgentAvailabilityChanged { .. }
            | EventKind::ContactErased { .. } => None,
        }
    }
}

/// A piece of the AI's answer as the model writes it, for the widget to show it
/// growing. Pieces of one answer come in order; `offset` says where this one
/// starts, so a client can tell it missed one (then it waits for the stored
/// message, whose `body` is every piece, in order, and which arrives on
/// `messages`). Like typing, it is not stored and has no cursor.
#[derive(async_graphql::SimpleObject)]
pub struct AnswerDelta {
    pub conversation_id: ID,
    /// The `seq` of the visitor message being answered.
    pub reply_to_seq: i64,
    /// Where `text` starts in the answer, in characters (Unicode scalar values).
    pub offset: i64,
    pub text: String,
}
