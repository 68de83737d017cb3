//! Subscriptions, and the one mutation that exists only to be streamed (`setTyping`).
//!
//! Every subscription is authorised when it starts, and every event is filtered for
//! its subscriber: visitors get only their own conversation and never internal
//! notes, tags or internal typing; agents only their workspace. When the token
//! behind a connection expires, its subscriptions end with an `UNAUTHENTICATED`
//! error and the socket closes (see `crate::ws`).

use async_graphql::{Context, ID, Object, Subscription};
use futures_util::{Stream, StreamExt};

use crate::auth::Principal;
use crate::domain;

use crate::domain::chat::streams::From;
use crate::domain::core::feed::{Event, EventKind};
use crate::entity::HandoffStatus;
use crate::error::AppResult;
use crate::events::Topic;

use super::ContextExt;
use super::conversation_events::ConversationEvent;
use super::handoffs::Handoff;
use super::inbox::{InboxEvent, InboxFilter, inbox_event};
use super::messages::Message;

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
        let filter: domain::outbound::filters::InboxFilter = filter.unwrap_or_default().into();
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
                let wanted = domain::outbound::filters::routed_or_tagged(
                    &core,
                    &handoff.conversation_id,
                    handoff.team_id.as_deref(),
                    &teams,
                    &tags,
                );
                match wanted.await {
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
