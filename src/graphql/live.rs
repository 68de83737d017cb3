//! Subscriptions, and the one mutation that exists only to be streamed (`setTyping`).
//!
//! Every subscription is authorised when it starts, and every event is filtered for
//! its subscriber: visitors get only their own conversation and never internal
//! notes, tags or internal typing; agents only their workspace. When the token
//! behind a connection expires, its subscriptions end with an `UNAUTHENTICATED`
//! error and the socket closes (see `crate::ws`).

use async_graphql::{Context, Enum, ID, InputObject, Object, Subscription, Union};
use futures_util::{Stream, StreamExt};

use crate::auth::Principal;
use crate::domain;

use crate::entity::{Author, ConversationStatus, HandoffStatus, conversation, handoff};
use crate::error::{AppError, AppResult};
use crate::events::{Change, Event, EventKind, Topic};
use crate::loaders::{AgentKey, LeadKey, TagKey};

use super::agents::Agent;
use super::conversations::Conversation;
use super::handoffs::Handoff;
use super::leads::Lead;
use super::messages::Message;
use super::tags::InsightTag;
use super::{ContextExt, timestamp};

/// Someone started or stopped typing in a conversation.
pub struct TypingEvent {
    conversation_id: String,
    author: Author,
    agent_id: Option<String>,
    typing: bool,
}

#[Object]
impl TypingEvent {
    async fn conversation_id(&self) -> ID {
        ID(self.conversation_id.clone())
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
        Ok(ctx
            .loaders()
            .load_one(AgentKey(id.clone()))
            .await?
            .map(Agent))
    }

    /// `true` when typing started, `false` when it stopped.
    async fn typing(&self) -> bool {
        self.typing
    }
}

/// The conversation's status changed (`AI → QUEUED → HUMAN → RESOLVED`, or back).
pub struct ConversationStatusChanged(conversation::Model);

#[Object]
impl ConversationStatusChanged {
    async fn conversation(&self) -> Conversation {
        Conversation(self.0.clone())
    }

    async fn status(&self) -> ConversationStatus {
        self.0.status
    }
}

/// The conversation was assigned (or unassigned).
pub struct ConversationAssigned(conversation::Model);

#[Object]
impl ConversationAssigned {
    async fn conversation(&self) -> Conversation {
        Conversation(self.0.clone())
    }

    async fn assignee(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Agent>> {
        let Some(id) = &self.0.assignee_id else {
            return Ok(None);
        };
        Ok(ctx
            .loaders()
            .load_one(AgentKey(id.clone()))
            .await?
            .map(Agent))
    }
}

/// A tag was put on (`tagged: true`) or taken off the conversation. Agents only.
pub struct ConversationTagChanged {
    conversation: conversation::Model,
    tag_id: String,
    tagged: bool,
}

#[Object]
impl ConversationTagChanged {
    async fn conversation(&self) -> Conversation {
        Conversation(self.conversation.clone())
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
pub struct LeadUpdated(conversation::Model);

#[Object]
impl LeadUpdated {
    async fn conversation(&self) -> Conversation {
        Conversation(self.0.clone())
    }

    async fn lead(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Lead>> {
        let Some(id) = &self.0.lead_id else {
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
}

impl ConversationEvent {
    /// What `principal` may see of `event`, if anything.
    fn visible_to(event: &Event, principal: &Principal) -> Option<ConversationEvent> {
        let agent = principal.agent().is_ok();
        match &event.kind {
            EventKind::Typing {
                author,
                agent_id,
                typing,
                internal,
            } => (agent || !internal).then(|| {
                ConversationEvent::Typing(TypingEvent {
                    conversation_id: event.conversation_id.clone(),
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
                        ConversationStatusChanged(conversation),
                    )),
                    Change::Assigned => Some(ConversationEvent::Assigned(ConversationAssigned(
                        conversation,
                    ))),
                    Change::Lead => Some(ConversationEvent::LeadUpdated(LeadUpdated(conversation))),
                    Change::Tagged { tag_id } | Change::Untagged { tag_id } => agent.then(|| {
                        ConversationEvent::TagChanged(ConversationTagChanged {
                            conversation,
                            tag_id: tag_id.clone(),
                            tagged: matches!(change, Change::Tagged { .. }),
                        })
                    }),
                }
            }
            EventKind::HandoffChanged {
                handoff,
                conversation,
                resolved,
            } => Some(ConversationEvent::HandoffChanged(HandoffChanged(
                Handoff::of_event(handoff, conversation, resolved),
            ))),
            EventKind::MessageCreated { .. }
            | EventKind::Resync
            | EventKind::AccessRevoked { .. } => None,
        }
    }
}

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
}

/// An inbox change, with the conversation as it is now, to re-render its row.
pub struct InboxEvent {
    kind: InboxEventKind,
    conversation: conversation::Model,
    message: Option<crate::entity::message::Model>,
    handoff: Option<Handoff>,
}

#[Object]
impl InboxEvent {
    async fn kind(&self) -> InboxEventKind {
        self.kind
    }

    async fn conversation(&self) -> Conversation {
        Conversation(self.conversation.clone())
    }

    /// For `MESSAGE_CREATED`: the new message.
    async fn message(&self) -> Option<Message> {
        self.message.clone().map(Message)
    }

    /// For `HANDOFF_*`: the handoff.
    async fn handoff(&self) -> Option<&Handoff> {
        self.handoff.as_ref()
    }

    async fn at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.conversation.updated_at)
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

impl InboxFilter {
    async fn matches(
        &self,
        state: &crate::state::AppState,
        conv: &conversation::Model,
    ) -> AppResult<bool> {
        let status = self
            .status
            .as_ref()
            .is_none_or(|s| s.contains(&conv.status));
        let team = self.team_ids.as_ref().is_none_or(|teams| {
            conv.team_id
                .as_ref()
                .is_some_and(|t| teams.iter().any(|id| id.0 == *t))
        });
        let assignee = self
            .assignee_id
            .as_ref()
            .is_none_or(|a| conv.assignee_id.as_deref() == Some(a.0.as_str()));
        if !(status && team && assignee) {
            return Ok(false);
        }
        let Some(wanted) = &self.tag_ids else {
            return Ok(true);
        };
        let applied = domain::tags::applied(state, std::slice::from_ref(&conv.id)).await?;
        Ok(applied
            .iter()
            .any(|(a, _)| wanted.iter().any(|w| w.0 == a.tag_id)))
    }
}

#[derive(Default)]
pub struct LiveSubscription;

#[Subscription]
impl LiveSubscription {
    /// The messages of a conversation: first every stored message with
    /// `seq > afterSeq`, in order, then each new one as it is stored, with no gap
    /// and no duplicate at the seam. Reconnect with the last `seq` you saw to miss
    /// nothing. A subscriber that reads too slowly is caught up from the database,
    /// never dropped. Visitors never receive internal notes.
    async fn messages(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        #[graphql(default_with = "Some(0)")] after_seq: Option<i64>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Message>> + use<>> {
        let after_seq = after_seq.unwrap_or(0);
        let principal = ctx.principal()?.clone();
        let state = ctx.state().clone();
        // Boxed: async-graphql keeps this resolver's state in every live subscription,
        // sized for its largest await; a query future inline would cost ~3 KiB each.
        let conv = Box::pin(domain::conversations::get(
            &state,
            &principal,
            &conversation_id,
        ))
        .await?;
        let events = state.events.subscribe(Topic::Conversation(conv.id.clone()));
        let stream =
            domain::streams::messages(state, conv.id, principal.sees_internal(), after_seq, events);
        Ok(stream.map(|item| {
            item.map(|message| Message(message.as_ref().clone()))
                .map_err(Into::into)
        }))
    }

    /// Typing, status changes, assignment, tags and lead updates of a conversation
    /// (new messages come through `messages`). Yields only what happens after it
    /// starts. A subscriber that falls behind gets a `LAGGED` error and the stream
    /// goes on: refetch the conversation.
    async fn conversation_events(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ConversationEvent>> + use<>>
    {
        let principal = ctx.principal()?.clone();
        let state = ctx.state().clone();
        // Boxed: async-graphql keeps this resolver's state in every live subscription,
        // sized for its largest await; a query future inline would cost ~3 KiB each.
        let conv = Box::pin(domain::conversations::get(
            &state,
            &principal,
            &conversation_id,
        ))
        .await?;
        let events = state.events.subscribe(Topic::Conversation(conv.id));
        Ok(domain::streams::events(events).filter_map(move |item| {
            let out = match item {
                Ok(event) => ConversationEvent::visible_to(&event, &principal).map(Ok),
                Err(err) => Some(Err(err.into())),
            };
            std::future::ready(out)
        }))
    }

    /// Everything an inbox list needs to stay current without polling, for agents:
    /// conversations opened, updated or leaving the filter, and new messages, each
    /// with the conversation as it is now. Yields only what happens after it starts;
    /// a subscriber that falls behind gets a `LAGGED` error (refetch the list) and
    /// the stream goes on.
    async fn inbox(
        &self,
        ctx: &Context<'_>,
        filter: Option<InboxFilter>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<InboxEvent>> + use<>> {
        let principal = ctx.principal()?;
        principal.reads_conversations()?;
        let sees_internal = principal.sees_internal();
        let state = ctx.state().clone();
        let filter = filter.unwrap_or_default();
        let events = state
            .events
            .subscribe(Topic::Workspace(principal.workspace_id().to_owned()));
        Ok(domain::streams::events(events).filter_map(move |item| {
            let (state, filter) = (state.clone(), filter.clone());
            async move {
                let event = match item {
                    Ok(event) => event,
                    Err(err) => return Some(Err(err.into())),
                };
                if let EventKind::MessageCreated { message, .. } = &event.kind
                    && message.internal
                    && !sees_internal
                {
                    return None;
                }
                inbox_event(&state, &filter, &event)
                    .await
                    .map_err(Into::into)
                    .transpose()
            }
        }))
    }

    /// Handoff requests as they happen (new ones, and ones transferred to a team),
    /// for agents and mobile apps: those routed to any of `teamIds`, or about a
    /// conversation carrying any of `tagIds`; all of them when neither is given.
    /// Select `caseFile` to get the context with the alert. Yields only what happens
    /// after it starts (query `handoffs(filter: {status: REQUESTED})` for the
    /// queue); a subscriber that falls behind gets a `LAGGED` error.
    async fn escalations(
        &self,
        ctx: &Context<'_>,
        team_ids: Option<Vec<ID>>,
        tag_ids: Option<Vec<ID>>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Handoff>> + use<>> {
        let principal = ctx.principal()?;
        principal.reads_conversations()?;
        let state = ctx.state().clone();
        let teams: Vec<String> = team_ids
            .unwrap_or_default()
            .into_iter()
            .map(|id| id.0)
            .collect();
        let tags: Vec<String> = tag_ids
            .unwrap_or_default()
            .into_iter()
            .map(|id| id.0)
            .collect();
        let events = state
            .events
            .subscribe(Topic::Workspace(principal.workspace_id().to_owned()));
        Ok(domain::streams::events(events).filter_map(move |item| {
            let (state, teams, tags) = (state.clone(), teams.clone(), tags.clone());
            async move {
                let event = match item {
                    Ok(event) => event,
                    Err(err) => return Some(Err(err.into())),
                };
                let EventKind::HandoffChanged {
                    handoff,
                    conversation,
                    resolved,
                } = &event.kind
                else {
                    return None;
                };
                if handoff.status != HandoffStatus::Requested {
                    return None;
                }
                match escalation_matches(&state, &teams, &tags, handoff).await {
                    Ok(true) => Some(Ok(Handoff::of_event(handoff, conversation, resolved))),
                    Ok(false) => None,
                    Err(err) => Some(Err(err.into())),
                }
            }
        }))
    }
}

async fn inbox_event(
    state: &crate::state::AppState,
    filter: &InboxFilter,
    event: &Event,
) -> AppResult<Option<InboxEvent>> {
    let Some(conversation) = event.conversation() else {
        return Ok(None);
    };
    let matches = filter.matches(state, conversation).await?;
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
        } => {
            handoff = Some(Handoff::of_event(changed, conversation, resolved));
            match changed.status {
                HandoffStatus::Requested => InboxEventKind::HandoffRequested,
                HandoffStatus::Accepted => InboxEventKind::HandoffAccepted,
                HandoffStatus::Resolved => InboxEventKind::HandoffResolved,
                HandoffStatus::Cancelled => InboxEventKind::HandoffCancelled,
            }
        }
        EventKind::Typing { .. } | EventKind::Resync | EventKind::AccessRevoked { .. } => {
            return Ok(None);
        }
    };
    if !matches && kind != InboxEventKind::ConversationRemoved {
        return Ok(None);
    }
    Ok(Some(InboxEvent {
        kind,
        conversation: conversation.as_ref().clone(),
        message,
        handoff,
    }))
}

/// Which escalations a subscriber wants: handoffs routed to any of `team_ids`, or of
/// conversations carrying any of `tag_ids`; everything when neither is given.
async fn escalation_matches(
    state: &crate::state::AppState,
    team_ids: &[String],
    tag_ids: &[String],
    handoff: &handoff::Model,
) -> AppResult<bool> {
    if team_ids.is_empty() && tag_ids.is_empty() {
        return Ok(true);
    }
    if handoff
        .team_id
        .as_ref()
        .is_some_and(|t| team_ids.contains(t))
    {
        return Ok(true);
    }
    if tag_ids.is_empty() {
        return Ok(false);
    }
    let applied =
        domain::tags::applied(state, std::slice::from_ref(&handoff.conversation_id)).await?;
    Ok(applied.iter().any(|(a, _)| tag_ids.contains(&a.tag_id)))
}

#[derive(Default)]
pub struct LiveMutation;

#[Object]
impl LiveMutation {
    /// Say that the token's holder started (`typing: true`) or stopped typing in a
    /// conversation; `conversationEvents` subscribers see it. Nothing is stored.
    /// `internal: true` (agents) is typing a note, never shown to the visitor.
    async fn set_typing(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        typing: bool,
        #[graphql(default)] internal: bool,
    ) -> async_graphql::Result<bool> {
        let principal = ctx.principal()?;
        let state = ctx.state();
        state.rate.visitor_typing(principal)?;
        let conv = domain::conversations::get(state, principal, &conversation_id).await?;
        let (author, agent_id) = match principal {
            Principal::Agent(agent) => (Author::Agent, Some(agent.agent_id.clone())),
            Principal::Visitor(_) if internal => {
                return Err(AppError::forbidden("visitors cannot write internal notes").into());
            }
            Principal::Visitor(_) => (Author::Visitor, None),
            Principal::ApiKey(_) if principal.is_ai() => (Author::Ai, None),
            Principal::ApiKey(_) => return Err(AppError::forbidden("only the AI can type").into()),
        };
        state.events.publish(Event {
            workspace_id: conv.workspace_id,
            conversation_id: conv.id,
            kind: EventKind::Typing {
                author,
                agent_id,
                typing,
                internal,
            },
        });
        Ok(true)
    }
}
