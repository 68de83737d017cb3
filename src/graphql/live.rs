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

use crate::domain::chat::streams::From;
use crate::domain::core::feed::{Change, Event, EventKind};
use crate::entity::{
    Author, Availability, ConversationStatus, HandoffStatus, conversation, handoff,
};
use crate::error::AppResult;
use crate::events::Topic;
use crate::graphql::loaders::{LeadKey, TagKey};

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
}

impl ConversationEvent {
    /// What `principal` may see of `event`, if anything.
    fn visible_to(event: &Event, principal: &Principal) -> Option<ConversationEvent> {
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
            EventKind::MessageCreated { .. }
            | EventKind::AccessRevoked { .. }
            | EventKind::AgentAvailabilityChanged { .. } => None,
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

impl InboxFilter {
    async fn matches(
        &self,
        core: &crate::domain::Core,
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
        let applied =
            domain::knowledge::tags::applied(core, std::slice::from_ref(&conv.id)).await?;
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
        let core = ctx.core().clone();
        // Boxed: async-graphql keeps this resolver's state in every live subscription,
        // sized for its largest await; a query future inline would cost ~3 KiB each.
        let conv = Box::pin(domain::chat::conversations::get(
            &core,
            &principal,
            &conversation_id,
        ))
        .await?;
        let stream =
            domain::chat::streams::messages(core, conv.id, principal.sees_internal(), after_seq);
        Ok(stream.map(|item| item.map(Message).map_err(Into::into)))
    }

    /// Typing, status changes, assignment, tags, lead updates and handoffs of a
    /// conversation (new messages come through `messages`). Each event but typing
    /// carries its `cursor`; with `after`, every event after that cursor is
    /// replayed from the event log first, then the stream goes live, with no gap
    /// and no duplicate at the seam. Without it, only what happens from now on. A
    /// subscriber that falls behind is caught up from the log. A cursor older than
    /// the log's retention answers `BAD_USER_INPUT` with `reason: CURSOR_EXPIRED`.
    async fn conversation_events(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ConversationEvent>> + use<>>
    {
        let principal = ctx.principal()?.clone();
        let core = ctx.core().clone();
        // Boxed: async-graphql keeps this resolver's state in every live subscription,
        // sized for its largest await; a query future inline would cost ~3 KiB each.
        let conv = Box::pin(domain::chat::conversations::get(
            &core,
            &principal,
            &conversation_id,
        ))
        .await?;
        let after = after_or_resume(ctx, after);
        let note = ctx.data_opt::<CursorNote>().cloned().unwrap_or_default();
        let from = Box::pin(starting(&core, after.as_deref())).await?;
        let events = domain::chat::streams::events(core, Topic::Conversation(conv.id), from);
        Ok(events.filter_map(move |item| {
            let out = match item {
                Ok(event) => {
                    note.note(&event);
                    ConversationEvent::visible_to(&event, &principal).map(Ok)
                }
                Err(err) => Some(Err(err.into())),
            };
            std::future::ready(out)
        }))
    }

    /// Everything an inbox list needs to stay current without polling, for agents:
    /// conversations opened, updated or leaving the filter, and new messages, each
    /// with the conversation as it is now and the event's `cursor`. With `after`,
    /// every event after that cursor is replayed from the event log first, then the
    /// stream goes live, with no gap and no duplicate at the seam (reconnect with
    /// the last cursor you saw to miss nothing); without it, only what happens from
    /// now on. A subscriber that falls behind is caught up from the log.
    async fn inbox(
        &self,
        ctx: &Context<'_>,
        filter: Option<InboxFilter>,
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<InboxEvent>> + use<>> {
        let principal = ctx.principal()?;
        principal.reads_conversations()?;
        let sees_internal = principal.sees_internal();
        let core = ctx.core().clone();
        let filter = filter.unwrap_or_default();
        let after = after_or_resume(ctx, after);
        let note = ctx.data_opt::<CursorNote>().cloned().unwrap_or_default();
        let from = Box::pin(starting(&core, after.as_deref())).await?;
        let topic = Topic::Workspace(principal.workspace_id().to_owned());
        let events = domain::chat::streams::events(core.clone(), topic, from);
        Ok(events.filter_map(move |item| {
            let (core, filter, note) = (core.clone(), filter.clone(), note.clone());
            async move {
                let event = match item {
                    Ok(event) => event,
                    Err(err) => return Some(Err(err.into())),
                };
                note.note(&event);
                if let EventKind::MessageCreated { message, .. } = &event.kind
                    && message.internal
                    && !sees_internal
                {
                    return None;
                }
                inbox_event(&core, &filter, &event)
                    .await
                    .map_err(Into::into)
                    .transpose()
            }
        }))
    }

    /// Handoff requests as they happen (new ones, and ones transferred to a team),
    /// for agents and mobile apps: those routed to any of `teamIds`, or about a
    /// conversation carrying any of `tagIds`; all of them when neither is given.
    /// A handoff waiting in the queue comes as `REQUESTED` to everyone; one that
    /// automatic routing offers to an agent comes as `OFFERED` to that agent alone
    /// (`offeredTo`, `offerExpiresAt`; an API key sees every offer); and one whose
    /// accept target passed while it waited comes again with `slaBreachedAt` set
    /// (`SLA_BREACHED`).
    /// Select `caseFile` to get the context with the alert, and `cursor` to resume:
    /// with `after`, every matching request after that cursor is replayed from the
    /// event log first, then the stream goes live, with no gap and no duplicate (a
    /// phone that was asleep misses nothing). Without it, only what happens from now
    /// on (query `handoffs(filter: {status: REQUESTED})` for the queue). A
    /// subscriber that falls behind is caught up from the log.
    async fn escalations(
        &self,
        ctx: &Context<'_>,
        team_ids: Option<Vec<ID>>,
        tag_ids: Option<Vec<ID>>,
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Handoff>> + use<>> {
        let principal = ctx.principal()?;
        principal.reads_conversations()?;
        let core = ctx.core().clone();
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
        let after = after_or_resume(ctx, after);
        // Shared with other agents' connections (a note is there): offers to any
        // of them are answered, each for its agent alone. Else only offers to
        // this agent (an API key sees every offer).
        let shared = ctx.data_opt::<CursorNote>().cloned();
        let me = match &principal {
            Principal::Agent(agent) if shared.is_none() => Some(agent.agent_id.clone()),
            _ => None,
        };
        let note = shared.unwrap_or_default();
        let from = Box::pin(starting(&core, after.as_deref())).await?;
        let topic = Topic::Workspace(principal.workspace_id().to_owned());
        let events = domain::chat::streams::events(core.clone(), topic, from);
        Ok(events.filter_map(move |item| {
            let (core, teams, tags, note, me) = (
                core.clone(),
                teams.clone(),
                tags.clone(),
                note.clone(),
                me.clone(),
            );
            async move {
                let event = match item {
                    Ok(event) => event,
                    Err(err) => return Some(Err(err.into())),
                };
                note.note(&event);
                let EventKind::HandoffChanged {
                    handoff,
                    conversation,
                    resolved,
                    sla_breached,
                } = &event.kind
                else {
                    return None;
                };
                match (handoff.status, &handoff.offered_to) {
                    _ if *sla_breached => {}
                    (HandoffStatus::Requested, _) => {}
                    (HandoffStatus::Offered, Some(to)) => match &me {
                        Some(me) if me != to => return None,
                        _ => note.only_for(to),
                    },
                    _ => return None,
                }
                match escalation_matches(&core, &teams, &tags, handoff).await {
                    Ok(true) => Some(Ok(Handoff::of_event(
                        &event,
                        handoff,
                        conversation,
                        resolved,
                    ))),
                    Ok(false) => None,
                    Err(err) => Some(Err(err.into())),
                }
            }
        }))
    }
}

/// Request data of a subscription executed once for many connections (see
/// `crate::ws`): the log cursor of the event behind the answer just produced, so
/// that a connection that falls behind the shared execution can go on from it;
/// and, for an answer meant for one agent alone (an offer on `escalations`), that
/// agent, so the connections of others pass over it. A connection's own execution
/// has no note: it filters for its principal itself.
#[derive(Clone, Default)]
pub struct CursorNote(std::sync::Arc<std::sync::Mutex<Noted>>);

/// What the resolver noted of the answer just produced.
#[derive(Default)]
pub struct Noted {
    pub cursor: Option<String>,
    /// The only agent whose connections deliver it.
    pub audience: Option<String>,
}

impl CursorNote {
    fn lock(&self) -> std::sync::MutexGuard<'_, Noted> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn note(&self, event: &Event) {
        let mut noted = self.lock();
        noted.audience = None;
        if let Some(cursor) = event.cursor {
            noted.cursor = Some(cursor.encode());
        }
    }

    /// The answer about to be produced is for `agent_id`'s connections only.
    fn only_for(&self, agent_id: &str) {
        self.lock().audience = Some(agent_id.to_owned());
    }

    /// What was noted of the last answer, taken.
    pub fn take(&self) -> Noted {
        std::mem::take(&mut *self.lock())
    }
}

/// Request data of a connection's own execution that takes over from a shared one
/// it fell behind: the stream starts after this cursor, as with `after`.
pub struct ResumeAfter(pub String);

/// `after`, or where a connection taking over from a shared execution resumes.
fn after_or_resume(ctx: &Context<'_>, after: Option<String>) -> Option<String> {
    after.or_else(|| ctx.data_opt::<ResumeAfter>().map(|r| r.0.clone()))
}

/// Where a subscription starts: after the client's cursor (checked), or now.
async fn starting(core: &crate::domain::Core, after: Option<&str>) -> AppResult<From> {
    match after {
        Some(cursor) => Ok(From::After(
            domain::chat::streams::resume_from(core, "after", cursor).await?,
        )),
        None => Ok(From::Now),
    }
}

async fn inbox_event(
    core: &crate::domain::Core,
    filter: &InboxFilter,
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
        | EventKind::AccessRevoked { .. }
        | EventKind::AgentAvailabilityChanged { .. } => {
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

/// Which escalations a subscriber wants: handoffs routed to any of `team_ids`, or of
/// conversations carrying any of `tag_ids`; everything when neither is given.
async fn escalation_matches(
    core: &crate::domain::Core,
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
        domain::knowledge::tags::applied(core, std::slice::from_ref(&handoff.conversation_id))
            .await?;
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
        domain::chat::typing::set(ctx.core(), principal, &conversation_id, typing, internal)
            .await?;
        Ok(true)
    }
}
