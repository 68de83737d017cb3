//! Handoffs and their case files: asking for a person, accepting, taking over,
//! transferring, and handing back to the AI.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Json, Object};
use tokio::sync::OnceCell;

use crate::domain;
use crate::domain::core::feed::{Event, HandoffResolved};
use crate::domain::handoff::case_file::CaseFile;
use crate::domain::handoff::handoffs::HandoffFilter;
use crate::domain::handoff::transfer::Transfer;
use crate::entity::handoff_offer::{self, OfferOutcome};
use crate::entity::{HandoffReason, HandoffStatus, conversation, handoff};
use crate::error::AppError;
use crate::graphql::loaders::{AgentKey, ConversationKey, OffersKey, TeamKey};

use super::agents::{Agent, Team};
use super::conversations::Conversation;
use super::leads::Lead;
use super::messages::Message;
use super::pagination::{Page, TotalCount, decode_cursor, page, page_size};
use super::tags::AppliedTag;
use super::{ContextExt, timestamp};

/// The passing of a conversation from the AI to humans.
pub struct Handoff {
    pub model: handoff::Model,
    /// The conversation as of the event that carried this handoff, if one did.
    conversation: Option<Arc<conversation::Model>>,
    /// Team, accepter and case file: shared by every subscriber of one event.
    resolved: Arc<HandoffResolved>,
    /// The event log cursor of the event that carried it, if one did.
    cursor: Option<String>,
}

impl Handoff {
    pub fn new(model: handoff::Model) -> Handoff {
        Handoff {
            model,
            conversation: None,
            resolved: Arc::default(),
            cursor: None,
        }
    }

    /// The handoff of a `HandoffChanged` event, resolved once for all its subscribers.
    pub fn of_event(
        event: &Event,
        model: &handoff::Model,
        conversation: &Arc<conversation::Model>,
        resolved: &Arc<HandoffResolved>,
    ) -> Handoff {
        Handoff {
            model: model.clone(),
            conversation: Some(Arc::clone(conversation)),
            resolved: Arc::clone(resolved),
            cursor: event.cursor.map(|c| c.encode()),
        }
    }

    /// The cursor of the event that carried it, if one did.
    pub fn event_cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }
}

/// `cell`'s value, or `key` loaded by `ctx`'s loaders into it.
async fn load_once<K, V>(
    ctx: &Context<'_>,
    cell: &OnceCell<Option<V>>,
    key: K,
) -> async_graphql::Result<Option<V>>
where
    K: Send + Sync + Clone + Eq + std::hash::Hash + 'static,
    V: Clone + Send + Sync + 'static,
    crate::graphql::loaders::Batcher:
        async_graphql::dataloader::Loader<K, Value = V, Error = AppError>,
{
    let value = cell.get_or_try_init(|| ctx.loaders().load_one(key)).await?;
    Ok(value.clone())
}

#[Object]
impl Handoff {
    pub async fn id(&self) -> ID {
        ID(self.model.id.clone())
    }

    /// When this handoff came from a subscription (`escalations`), the event log
    /// cursor of its event: subscribe again with `after:` this cursor to resume
    /// where you stopped. Null when read by a query.
    async fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    async fn conversation(&self, ctx: &Context<'_>) -> async_graphql::Result<Conversation> {
        if let Some(conversation) = &self.conversation {
            return Ok(Conversation(conversation.as_ref().clone()));
        }
        let conversation = ctx
            .loaders()
            .load_one(ConversationKey(self.model.conversation_id.clone()))
            .await?
            .ok_or(AppError::NotFound("conversation"))?;
        Ok(Conversation(Arc::unwrap_or_clone(conversation)))
    }

    /// Requested outside its team's business hours (the visitor was told when the
    /// team is back).
    async fn out_of_hours(&self) -> bool {
        self.model.out_of_hours
    }

    async fn reason(&self) -> HandoffReason {
        self.model.reason
    }

    async fn status(&self) -> HandoffStatus {
        self.model.status
    }

    /// The team it is routed to.
    async fn team(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Team>> {
        let Some(id) = &self.model.team_id else {
            return Ok(None);
        };
        let team = load_once(ctx, &self.resolved.team, TeamKey(id.clone())).await?;
        Ok(team.map(Team))
    }

    /// The agent who accepted it.
    async fn accepted_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Agent>> {
        let Some(id) = &self.model.accepted_by else {
            return Ok(None);
        };
        let agent = load_once(ctx, &self.resolved.accepted_by, AgentKey(id.clone())).await?;
        Ok(agent.map(Agent))
    }

    /// While `OFFERED`: the one agent it is offered to, who may accept or decline
    /// it until `offerExpiresAt` (then it passes to the next agent of the team).
    async fn offered_to(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Agent>> {
        let Some(id) = &self.model.offered_to else {
            return Ok(None);
        };
        Agent::load(ctx, id).await
    }

    /// Who its team's routing offered it to, oldest first, and how each offer
    /// ended: why a handoff waited, and who let it pass. Empty for visitors and for
    /// API keys that do not read conversations.
    async fn offers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<HandoffOffer>> {
        if !ctx.principal()?.sees_internal() {
            return Ok(Vec::new());
        }
        let offers = ctx
            .loaders()
            .load_one(OffersKey(self.model.id.clone()))
            .await?
            .unwrap_or_default();
        Ok(offers.into_iter().map(HandoffOffer).collect())
    }

    /// While `OFFERED`: when the offer passes to the next agent.
    async fn offer_expires_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.model.offer_expires_at.map(timestamp)
    }

    /// When it should be accepted by: its team's `acceptTargetSeconds` after it was
    /// requested (or transferred to the team), counted in the team's business hours
    /// only. `null` when the team has no target.
    async fn sla_due_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.model.sla_due_at.map(timestamp)
    }

    /// When `slaDueAt` was found passed with the handoff still waiting (the
    /// `SLA_BREACHED` event); `null` while it was not.
    async fn sla_breached_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.model.sla_breached_at.map(timestamp)
    }

    /// What was said when asking for a person (by the visitor, the AI or an agent).
    /// `null` for visitors: notes are for the team.
    async fn note(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        if ctx.principal()?.visitor().is_some() {
            return Ok(None);
        }
        Ok(self.model.note.as_deref())
    }

    async fn requested_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.model.requested_at)
    }

    async fn accepted_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.model.accepted_at.map(timestamp)
    }

    async fn resolved_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.model.resolved_at.map(timestamp)
    }

    async fn cancelled_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.model.cancelled_at.map(timestamp)
    }

    /// Everything the human who takes over needs. Agents (and conversation-reading
    /// API keys) only.
    async fn case_file(&self, ctx: &Context<'_>) -> async_graphql::Result<CaseFileView> {
        let principal = ctx.principal()?;
        principal.require(crate::auth::Scope::ConversationsRead)?;
        let core = ctx.core();
        let file = self
            .resolved
            .case_file
            .get_or_try_init(|| async {
                domain::handoff::case_file::build(core, &self.model)
                    .await
                    .map(Arc::new)
            })
            .await?;
        Ok(CaseFileView(Arc::clone(file)))
    }
}

/// The case file of a handoff: the whole conversation as the AI left it.
pub struct CaseFileView(Arc<CaseFile>);

#[Object(name = "CaseFile")]
impl CaseFileView {
    /// A few sentences: the visitor's question, what the AI suggested, why it
    /// escalated, who the visitor is and the topics.
    async fn summary(&self) -> &str {
        &self.0.summary
    }

    /// The visitor's question.
    async fn question(&self) -> Option<&str> {
        self.0.question.as_deref()
    }

    /// Every message, internal notes included (for those who see them: never the
    /// AI's key).
    async fn transcript(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Message>> {
        let sees_internal = ctx.principal()?.sees_internal();
        Ok(self
            .0
            .transcript
            .iter()
            .filter(|message| sees_internal || !message.internal)
            .cloned()
            .map(Message::from)
            .collect())
    }

    /// The AI's answers, with their sources and confidence.
    async fn ai_answers(&self) -> Vec<Message> {
        self.0
            .ai_answers
            .iter()
            .cloned()
            .map(Message::from)
            .collect()
    }

    /// The lead, with its custom fields (`null` for API keys without `LEADS_READ`).
    async fn lead(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Lead>> {
        let sees_leads = ctx.principal()?.sees_leads();
        Ok(self.0.lead.clone().filter(|_| sees_leads).map(Lead::from))
    }

    /// What the widget sent: page URL, CMS version, …
    async fn context(
        &self,
    ) -> async_graphql::Result<Json<serde_json::Map<String, serde_json::Value>>> {
        Ok(Json(self.0.conversation.context()?))
    }

    /// The conversation's tags, with their evidence.
    async fn tags(&self) -> Vec<AppliedTag> {
        self.0
            .tags
            .iter()
            .cloned()
            .map(|(applied, tag)| AppliedTag(applied, tag))
            .collect()
    }

    /// How many answers the AI tried before the handoff.
    async fn attempts(&self) -> i32 {
        self.0.attempts as i32
    }
}

#[derive(InputObject, Default)]
pub struct HandoffFilterInput {
    /// Any of these statuses (a single value is accepted too).
    pub status: Option<Vec<HandoffStatus>>,
    pub team_id: Option<ID>,
    /// Any of these reasons.
    pub reason: Option<Vec<HandoffReason>>,
    /// Requested at or after.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Default)]
pub struct HandoffQuery;

pub struct HandoffOffer(handoff_offer::Model);

/// One agent offered a handoff by its team's routing (`ROUND_ROBIN`,
/// `LEAST_BUSY`), and how the offer ended. An agent is offered a handoff once.
#[Object]
impl HandoffOffer {
    /// The agent it was offered to.
    async fn agent(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Agent>> {
        Agent::load(ctx, &self.0.agent_id).await
    }

    async fn offered_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.offered_at)
    }

    /// How it ended; `null` while it stands.
    async fn outcome(&self) -> Option<OfferOutcome> {
        self.0.outcome
    }

    async fn ended_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.ended_at.map(timestamp)
    }
}

#[Object]
impl HandoffQuery {
    /// A handoff by id.
    async fn handoff(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Handoff> {
        let principal = ctx.principal()?;
        principal.reads_conversations()?;
        Ok(Handoff::new(
            domain::handoff::handoffs::get(ctx.core(), principal.workspace_id(), &id).await?,
        ))
    }

    /// Handoffs, newest first.
    async fn handoffs(
        &self,
        ctx: &Context<'_>,
        filter: Option<HandoffFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Page<Handoff>> {
        let principal = ctx.principal()?;
        principal.reads_conversations()?;
        let limit = page_size(first)?;
        let after = after.as_deref().map(decode_cursor).transpose()?;
        let input = filter.unwrap_or_default();
        let filter = HandoffFilter {
            statuses: input.status.unwrap_or_default(),
            team_id: input.team_id.map(|id| id.0),
            reasons: input.reason.unwrap_or_default(),
            since: input.since.map(|t| t.timestamp_millis()),
            conversation_id: None,
        };
        let core = ctx.core().clone();
        let ws = principal.workspace_id().to_owned();
        let rows =
            domain::handoff::handoffs::page(&core, &ws, &filter, after.as_deref(), limit + 1)
                .await?;
        let total = TotalCount::new(move || {
            let (core, ws, filter) = (core.clone(), ws.clone(), filter.clone());
            async move { domain::handoff::handoffs::count(&core, &ws, &filter).await }
        });
        Ok(page(rows, limit, |h| h.id.clone(), Handoff::new, total))
    }
}

#[derive(Default)]
pub struct HandoffMutation;

#[Object]
impl HandoffMutation {
    /// Ask for a person: the widget's "Talk to a person" button (visitor), or the AI
    /// when unsure (an `AI_WRITE` key; reason `LOW_CONFIDENCE` unless it says
    /// otherwise), or an agent escalating (`POLICY`). Returns the open handoff,
    /// which may already exist.
    async fn request_human(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        note: Option<String>,
        reason: Option<HandoffReason>,
    ) -> async_graphql::Result<Handoff> {
        let principal = ctx.principal()?;
        let handoff = domain::handoff::request::request_human(
            ctx.core(),
            principal,
            &conversation_id,
            reason,
            note.as_deref(),
        )
        .await?;
        Ok(Handoff::new(handoff))
    }

    /// Accept a requested handoff, or one offered to you: the conversation becomes
    /// yours. Of many agents accepting at once exactly one wins; the others get
    /// `CONFLICT` naming the winner (`extensions.reason: ALREADY_ACCEPTED`). A
    /// handoff offered to another agent is `CONFLICT` (`OFFERED_TO_ANOTHER`) until
    /// they decline it or the offer passes.
    async fn accept_handoff(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Handoff> {
        let agent = ctx.principal()?.agent()?;
        Ok(Handoff::new(
            domain::handoff::accept::accept(ctx.core(), agent, &id).await?,
        ))
    }

    /// Decline a handoff offered to you: it is offered to the next available agent
    /// of its team, or waits in the queue (`REQUESTED`) when every one was offered
    /// it. `CONFLICT` (`NOT_OFFERED_TO_YOU`) when it is not offered to you now.
    async fn decline_handoff(
        &self,
        ctx: &Context<'_>,
        handoff_id: ID,
    ) -> async_graphql::Result<Handoff> {
        let agent = ctx.principal()?.agent()?;
        Ok(Handoff::new(
            domain::handoff::routing::decline(ctx.core(), agent, &handoff_id).await?,
        ))
    }

    /// Take over a conversation you are watching: the AI stops and you own it.
    async fn take_over(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
    ) -> async_graphql::Result<Handoff> {
        let agent = ctx.principal()?.agent()?;
        Ok(Handoff::new(
            domain::handoff::accept::take_over(ctx.core(), agent, &conversation_id).await?,
        ))
    }

    /// Give the conversation back to the AI: the open handoff is cancelled and the
    /// AI's context starts from here (an old request for a person does not count).
    async fn return_to_ai(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
    ) -> async_graphql::Result<Conversation> {
        let agent = ctx.principal()?.agent()?;
        Ok(Conversation(
            domain::handoff::handoffs::return_to_ai(ctx.core(), agent, &conversation_id).await?,
        ))
    }

    /// Transfer an open handoff to a team (it waits again, for that team) or to an
    /// agent (who owns it at once). Give exactly one of `teamId` and `agentId`.
    async fn transfer_handoff(
        &self,
        ctx: &Context<'_>,
        id: ID,
        team_id: Option<ID>,
        agent_id: Option<ID>,
    ) -> async_graphql::Result<Handoff> {
        let agent = ctx.principal()?.agent()?;
        let to = match (&team_id, &agent_id) {
            (Some(team), None) => Transfer::Team(team.as_str()),
            (None, Some(agent)) => Transfer::Agent(agent.as_str()),
            _ => {
                return Err(AppError::bad_input(
                    "teamId",
                    "give exactly one of teamId and agentId",
                )
                .into());
            }
        };
        Ok(Handoff::new(
            domain::handoff::transfer::transfer(ctx.core(), agent, &id, to).await?,
        ))
    }
}
