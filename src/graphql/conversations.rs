//! Conversations: the widget starts them, the inbox lists, filters, assigns,
//! tags and resolves them.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SelectionField, SimpleObject};

use crate::domain;
use crate::domain::chat::conversations::StartInput;
use crate::domain::chat::lists::{Columns, ConversationFilter, Joined, Order, PageQuery, Position};
use crate::domain::handoff::handoffs::HandoffFilter;
use crate::graphql::loaders::Applied;

use crate::entity::{ConversationStatus, ResolvedBy, conversation};
use crate::error::AppError;
use crate::graphql::loaders::{
    AgentKey, AppliedTagsPartKey, LastMessagePartKey, LeadPartKey, OpenHandoffPartKey, TeamKey,
    load_now,
};

use super::agents::{Agent, Team};
use super::handoffs::Handoff;
use super::inline::Inline;
use super::leads::{Lead, LeadInput};
use super::messages::Message;
use super::pagination::{Page, TotalCount, decode_cursor, page, page_size};
use super::tags::AppliedTag;
use super::{ContextExt, timestamp};

/// A thread between a visitor, the AI and the team.
pub struct Conversation(pub conversation::Model);

#[Object]
impl Conversation {
    pub async fn id(&self, ctx: &Context<'_>) -> ID {
        // Where tests of fault handling make a resolver panic (nothing else arms it).
        ctx.core().faults.maybe_panic();
        ID(self.0.id.clone())
    }

    /// Who controls the conversation: `AI → QUEUED → HUMAN → RESOLVED`.
    async fn status(&self) -> ConversationStatus {
        self.0.status
    }

    /// The widget's identifier for the visitor (stable across their conversations).
    async fn visitor_id(&self) -> &str {
        &self.0.visitor_id
    }

    /// The person chatting, once anything is known about them. `null` for API keys
    /// without `LEADS_READ`.
    async fn lead(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Inline<Lead>>> {
        let Some(id) = &self.0.lead_id else {
            return Ok(None);
        };
        if !ctx.principal()?.sees_leads() {
            return Ok(None);
        }
        let columns = signature(&selected_columns(
            ctx.field().selection_set(),
            LEAD_ALWAYS,
            lead_columns,
        ));
        Ok(ctx
            .loaders()
            .load_one(LeadPartKey(id.clone(), columns))
            .await?
            .map(|lead| Inline(Lead(lead))))
    }

    /// The agent who owns the conversation.
    async fn assignee(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Inline<Agent>>> {
        let Some(id) = &self.0.assignee_id else {
            return Ok(None);
        };
        Ok(ctx
            .loaders()
            .load_one(AgentKey(id.clone()))
            .await?
            .map(|agent| Inline(Agent(agent))))
    }

    /// The team the conversation is routed to.
    async fn team(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Inline<Team>>> {
        let Some(id) = &self.0.team_id else {
            return Ok(None);
        };
        Ok(ctx
            .loaders()
            .load_one(TeamKey(id.clone()))
            .await?
            .map(|team| Inline(Team(team))))
    }

    /// What the widget sent about where the visitor is: page URL, CMS version, …
    async fn context(
        &self,
    ) -> async_graphql::Result<Json<serde_json::Map<String, serde_json::Value>>> {
        Ok(Json(self.0.context()?))
    }

    /// Messages in order of `seq`. Visitors never see internal notes. `after` is a
    /// cursor from this connection.
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Page<Message>> {
        let limit = page_size(first)?;
        let after_seq = match after {
            Some(cursor) => decode_cursor(&cursor)?
                .parse::<i64>()
                .map_err(|_| AppError::bad_input("after", "not a cursor from this connection"))?,
            None => 0,
        };
        let core = ctx.core().clone();
        let internal = ctx.principal()?.sees_internal();
        let rows =
            domain::chat::messages::page(&core, &self.0.id, internal, after_seq, limit + 1).await?;
        let id = self.0.id.clone();
        let total = TotalCount::new(move || {
            let (core, id) = (core.clone(), id.clone());
            async move { domain::chat::messages::count(&core, &id, internal).await }
        });
        Ok(page(
            rows,
            limit,
            |m| m.seq.to_string(),
            Message::from,
            total,
        ))
    }

    /// The newest message the reader may see.
    async fn last_message(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<Inline<Message>>> {
        let columns = signature(&selected_columns(
            ctx.field().selection_set(),
            MESSAGE_ALWAYS,
            message_columns,
        ));
        Ok(ctx
            .loaders()
            .load_one(LastMessagePartKey(self.0.id.clone(), columns))
            .await?
            .flatten()
            .map(|message| Inline(Message(message))))
    }

    /// The visitor's rating, if they gave one.
    async fn rating(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<super::insights::Rating>> {
        let rating = domain::chat::ratings::of(ctx.core(), &self.0.id).await?;
        Ok(rating.map(super::insights::Rating))
    }

    /// The `seq` of the newest message (internal notes included).
    async fn last_seq(&self) -> i64 {
        self.0.last_seq
    }

    /// The conversation's handoffs, newest first.
    async fn handoffs(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Handoff>> {
        ctx.principal()?.reads_conversations()?;
        let filter = HandoffFilter {
            conversation_id: Some(self.0.id.clone()),
            ..HandoffFilter::default()
        };
        let rows =
            domain::handoff::handoffs::page(ctx.core(), &self.0.workspace_id, &filter, None, 100)
                .await?;
        Ok(rows.into_iter().map(Handoff::new).collect())
    }

    /// The handoff waiting for, or owned by, a human; `null` while the AI has the
    /// conversation. Visitors may read it (its case file is for agents).
    async fn open_handoff(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<Inline<Handoff>>> {
        if matches!(
            self.0.status,
            ConversationStatus::Ai | ConversationStatus::Resolved
        ) {
            return Ok(None);
        }
        let columns = signature(&selected_columns(
            ctx.field().selection_set(),
            HANDOFF_ALWAYS,
            handoff_columns,
        ));
        let open = ctx
            .loaders()
            .load_one(OpenHandoffPartKey(self.0.id.clone(), columns))
            .await?
            .flatten();
        Ok(open.map(|handoff| Inline(Handoff::new(handoff))))
    }

    /// Topic tags, with how they were applied. Empty for visitors.
    async fn tags(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Inline<AppliedTag>>> {
        if ctx.principal()?.reads_conversations().is_err() {
            return Ok(Vec::new());
        }
        let columns = signature(&selected_columns(
            ctx.field().selection_set(),
            APPLIED_ALWAYS,
            applied_tag_columns,
        ));
        let applied = ctx
            .loaders()
            .load_one(AppliedTagsPartKey(self.0.id.clone(), columns))
            .await?;
        Ok(applied
            .unwrap_or_default()
            .into_iter()
            .map(|(applied, tag)| Inline(AppliedTag(applied, tag)))
            .collect())
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }

    /// When anything last happened: a message, a status change, an assignment, a tag.
    async fn updated_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.updated_at)
    }

    /// Who resolved the conversation (`AI`, `AGENT`, `VISITOR`, `AUTO`); `null`
    /// while it is open.
    async fn resolved_by(&self) -> Option<ResolvedBy> {
        self.0.resolved_by
    }

    /// When it was resolved; `null` while it is open.
    async fn resolved_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.resolved_at.map(timestamp)
    }

    /// When its visitor's data was erased (`eraseContact`, or the workspace's
    /// `retentionDays`): every message reads `[erased]`; `null` if not.
    async fn erased_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.erased_at.map(timestamp)
    }
}

/// Which conversations to list. Every condition given must hold.
#[derive(InputObject, Default)]
pub struct ConversationFilterInput {
    /// Any of these statuses (a single value is accepted too).
    pub status: Option<Vec<ConversationStatus>>,
    pub assignee_id: Option<ID>,
    /// Only conversations with no assignee.
    pub unassigned: Option<bool>,
    pub team_id: Option<ID>,
    /// Conversations carrying any of these tags.
    pub tag_ids: Option<Vec<ID>>,
    pub lead_id: Option<ID>,
    pub updated_after: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<ConversationFilterInput> for ConversationFilter {
    fn from(input: ConversationFilterInput) -> Self {
        ConversationFilter {
            statuses: input.status.unwrap_or_default(),
            assignee_id: input.assignee_id.map(|id| id.0),
            unassigned: input.unassigned.unwrap_or(false),
            team_id: input.team_id.map(|id| id.0),
            tag_ids: input
                .tag_ids
                .unwrap_or_default()
                .into_iter()
                .map(|id| id.0)
                .collect(),
            lead_id: input.lead_id.map(|id| id.0),
            updated_after: input.updated_after.map(|t| t.timestamp_millis()),
        }
    }
}

/// How conversations are ordered.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConversationOrder {
    /// Newest first; pages never shift.
    #[default]
    Newest,
    /// Most recently active first, as an inbox shows them.
    RecentlyUpdated,
}

/// Load the relations a client selected on a page of conversations now that the
/// page statement does not read (the assignees and teams, from the core's caches;
/// the newest message for readers the page could not read it for): one batch
/// query per relation, run concurrently, into the request's loader cache. Field
/// resolution then finds them at once instead of waiting for a batching window,
/// and the statement count does not depend on timing.
pub async fn prefetch(
    ctx: &Context<'_>,
    rows: &[conversation::Model],
    read: Joined,
    columns: &PageColumns,
) -> Result<(), AppError> {
    let look = ctx.look_ahead();
    let selected = |name: &str| {
        look.field("edges").field("node").field(name).exists()
            || look.field("nodes").field(name).exists()
    };
    let keys =
        |wanted: bool, key: &dyn Fn(&conversation::Model) -> Option<String>| -> Vec<String> {
            if !wanted {
                return Vec::new();
            }
            let mut keys: Vec<String> = rows.iter().filter_map(key).collect();
            keys.sort_unstable();
            keys.dedup();
            keys
        };
    let assignees = keys(selected("assignee"), &|c| c.assignee_id.clone());
    let teams = keys(selected("team"), &|c| c.team_id.clone());
    let last = keys(selected("lastMessage") && !read.last_message, &|c| {
        Some(c.id.clone())
    });
    let loaders = ctx.loaders();
    let batcher = loaders.loader();
    let (assignees, teams, last) = tokio::try_join!(
        load_now(batcher, assignees.into_iter().map(AgentKey).collect()),
        load_now(batcher, teams.into_iter().map(TeamKey).collect()),
        load_now(
            batcher,
            last.into_iter()
                .map(|id| LastMessagePartKey(id, columns.last_message.clone()))
                .collect()
        ),
    )?;
    loaders.feed_many(assignees).await;
    loaders.feed_many(teams).await;
    loaders.feed_many(last).await;
    Ok(())
}

/// What a page reads of its rows' columns, and the names the loaders know those
/// reads by (see [`signature`]).
pub struct PageColumns {
    pub read: Columns,
    pub lead: Arc<str>,
    pub last_message: Arc<str>,
    pub tags: Arc<str>,
    pub open_handoff: Arc<str>,
}

impl PageColumns {
    /// The columns the node selections of the page field of `ctx` read (its
    /// `edges { node }` and `nodes`, through fragments).
    fn of(ctx: &Context<'_>) -> PageColumns {
        let nodes: Vec<SelectionField<'_>> = ctx
            .field()
            .selection_set()
            .flat_map(|field| match field.name() {
                "nodes" => field.selection_set().collect(),
                "edges" => field
                    .selection_set()
                    .filter(|edge| edge.name() == "node")
                    .flat_map(|node| node.selection_set().collect::<Vec<_>>())
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        let under = |name: &str| -> Vec<SelectionField<'_>> {
            nodes
                .iter()
                .filter(|field| field.name() == name)
                .flat_map(|field| field.selection_set().collect::<Vec<_>>())
                .collect()
        };
        let read = Columns {
            conversation: selected_columns(
                nodes.iter().copied(),
                CONVERSATION_ALWAYS,
                conversation_columns,
            ),
            last_message: selected_columns(
                under("lastMessage").into_iter(),
                MESSAGE_ALWAYS,
                message_columns,
            ),
            lead: selected_columns(under("lead").into_iter(), LEAD_ALWAYS, lead_columns),
            tags: selected_columns(
                under("tags").into_iter(),
                APPLIED_ALWAYS,
                applied_tag_columns,
            ),
            open_handoff: selected_columns(
                under("openHandoff").into_iter(),
                HANDOFF_ALWAYS,
                handoff_columns,
            ),
        };
        PageColumns {
            lead: signature(&read.lead),
            last_message: signature(&read.last_message),
            tags: signature(&read.tags),
            open_handoff: signature(&read.open_handoff),
            read,
        }
    }
}

/// The columns `fields` read: `always`, and each field's (by `of`); `None` (every
/// column) as soon as a field is not known to `of`.
fn selected_columns<'a>(
    fields: impl Iterator<Item = SelectionField<'a>>,
    always: &[&'static str],
    of: fn(&str) -> Option<&'static [&'static str]>,
) -> Option<Vec<&'static str>> {
    let mut columns = always.to_vec();
    for field in fields {
        columns.extend_from_slice(of(field.name())?);
    }
    columns.sort_unstable();
    columns.dedup();
    Some(columns)
}

/// How the loaders name a read of `columns`: the columns, comma-separated; `*`
/// for every column.
pub fn signature(columns: &Option<Vec<&'static str>>) -> Arc<str> {
    match columns {
        Some(columns) => columns.join(",").into(),
        None => "*".into(),
    }
}

/// What a page always reads of a conversation: its id and workspace, and what its
/// cursor and order read.
const CONVERSATION_ALWAYS: &[&str] = &["id", "workspace_id", "updated_at"];

/// The columns each field of `Conversation` reads beyond [`CONVERSATION_ALWAYS`];
/// `None` for a field not listed, which makes a page read every column. A field
/// added to `Conversation` that reads a column must be listed here (or read
/// every column).
fn conversation_columns(field: &str) -> Option<&'static [&'static str]> {
    Some(match field {
        "__typename" | "id" | "messages" | "rating" | "handoffs" | "tags" | "updatedAt" => &[],
        // `openHandoff` is looked for only while the conversation waits or is held.
        "status" | "openHandoff" => &["status"],
        "visitorId" => &["visitor_id"],
        "lead" => &["lead_id"],
        "assignee" => &["assignee_id"],
        "team" => &["team_id"],
        "context" => &["context"],
        "lastMessage" | "lastSeq" => &["last_seq"],
        "createdAt" => &["created_at"],
        "resolvedBy" => &["resolved_by"],
        "resolvedAt" => &["resolved_at"],
        "erasedAt" => &["erased_at"],
        _ => return None,
    })
}

const MESSAGE_ALWAYS: &[&str] = &["id", "workspace_id", "conversation_id", "seq", "internal"];

/// The columns each field of `Message` reads beyond [`MESSAGE_ALWAYS`] (`None`:
/// not listed, every column).
fn message_columns(field: &str) -> Option<&'static [&'static str]> {
    Some(match field {
        "__typename" | "id" | "conversationId" | "seq" | "internal" | "feedback" | "flags" => &[],
        "author" => &["author"],
        "agent" => &["agent_id"],
        "body" => &["body"],
        "confidence" => &["confidence"],
        "replyToSeq" => &["reply_to_seq"],
        "sources" => &["sources"],
        "clientMessageId" => &["client_message_id"],
        "createdAt" => &["created_at"],
        _ => return None,
    })
}

const HANDOFF_ALWAYS: &[&str] = &["id", "workspace_id", "conversation_id", "status"];

/// The columns each field of `Handoff` reads beyond [`HANDOFF_ALWAYS`] (`None`: not
/// listed, every column: the case file, the cursor).
fn handoff_columns(field: &str) -> Option<&'static [&'static str]> {
    Some(match field {
        "__typename" | "id" | "status" | "conversation" | "offers" => &[],
        "reason" => &["reason"],
        "outOfHours" => &["out_of_hours"],
        "team" => &["team_id"],
        "acceptedBy" => &["accepted_by"],
        "offeredTo" => &["offered_to"],
        "offerExpiresAt" => &["offer_expires_at"],
        "slaDueAt" => &["sla_due_at"],
        "slaBreachedAt" => &["sla_breached_at"],
        "note" => &["note"],
        "requestedAt" => &["requested_at"],
        "acceptedAt" => &["accepted_at"],
        "resolvedAt" => &["resolved_at"],
        "cancelledAt" => &["cancelled_at"],
        _ => return None,
    })
}

/// The columns each field of `AppliedTag` reads beyond `APPLIED_ALWAYS` (`None`:
/// not listed, every column).
fn applied_tag_columns(field: &str) -> Option<&'static [&'static str]> {
    Some(match field {
        "__typename" | "tag" | "appliedAt" => &[],
        "source" => &["source"],
        "evidence" => &["evidence"],
        "confidence" => &["confidence"],
        "appliedBy" => &["applied_by"],
        "messageId" => &["message_id"],
        _ => return None,
    })
}

/// What a reader of applied tags always reads: whose they are, which tag, and the
/// order they were applied in.
const APPLIED_ALWAYS: &[&str] = &["conversation_id", "tag_id", "workspace_id", "applied_at"];

const LEAD_ALWAYS: &[&str] = &["id", "workspace_id"];

/// The columns each field of `Lead` reads beyond [`LEAD_ALWAYS`] (`None`: not
/// listed, every column).
fn lead_columns(field: &str) -> Option<&'static [&'static str]> {
    Some(match field {
        "__typename" | "id" => &[],
        "verified" => &["verified"],
        "name" => &["name"],
        "email" => &["email"],
        "company" => &["company"],
        "fields" => &["fields"],
        "createdAt" => &["created_at"],
        "updatedAt" => &["updated_at"],
        "erasedAt" => &["erased_at"],
        _ => return None,
    })
}

fn position(conv: &conversation::Model) -> String {
    format!("{}:{}", conv.updated_at, conv.id)
}

fn parse_position(cursor: &str) -> Result<Position, AppError> {
    decode_cursor(cursor)?
        .split_once(':')
        .and_then(|(at, id)| {
            Some(Position {
                updated_at: at.parse().ok()?,
                id: id.to_owned(),
            })
        })
        .ok_or_else(|| AppError::bad_input("after", "not a cursor from this connection"))
}

#[derive(Default)]
pub struct ConversationQuery;

#[Object]
impl ConversationQuery {
    /// A conversation by id. Visitors can read only their own.
    async fn conversation(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Conversation> {
        let principal = ctx.principal()?;
        Ok(Conversation(
            domain::chat::conversations::get(ctx.core(), principal, &id).await?,
        ))
    }

    /// The workspace's conversations, for agents.
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        filter: Option<ConversationFilterInput>,
        #[graphql(default)] order_by: ConversationOrder,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Page<Inline<Conversation>>> {
        let principal = ctx.principal()?;
        principal.reads_conversations()?;
        let limit = page_size(first)?;
        let after = after.as_deref().map(parse_position).transpose()?;
        let order = match order_by {
            ConversationOrder::Newest => Order::Newest,
            ConversationOrder::RecentlyUpdated => Order::RecentlyUpdated,
        };
        let filter: ConversationFilter = filter.unwrap_or_default().into();
        let core = ctx.core().clone();
        let ws = principal.workspace_id().to_owned();
        // An inbox row shows its newest message, lead, assignee and team: read them
        // with the page, in one statement.
        let look = ctx.look_ahead();
        let selected = |name: &str| {
            look.field("edges").field("node").field(name).exists()
                || look.field("nodes").field(name).exists()
        };
        let joined = Joined {
            // Visitors never list conversations, but the newest message read here
            // includes internal notes: only for readers who may see them.
            last_message: selected("lastMessage") && principal.sees_internal(),
            lead: selected("lead"),
            tags: selected("tags") && principal.reads_conversations().is_ok(),
            open_handoff: selected("openHandoff"),
        };
        let columns = PageColumns::of(ctx);
        let query = PageQuery {
            workspace_id: &ws,
            filter: &filter,
            order,
            after: after.as_ref(),
            limit: limit + 1,
            joined,
            columns: &columns.read,
        };
        let rows = domain::chat::lists::page_joined(&core, &query).await?;
        // Rows past `limit` only tell whether there is a next page.
        let shown = rows.len().min(limit as usize);
        let mut conversations = Vec::with_capacity(rows.len());
        let (mut last, mut leads, mut open) = (Vec::new(), Vec::new(), Vec::new());
        let mut applied = Vec::new();
        for (i, row) in rows.into_iter().enumerate() {
            let c = &row.conversation;
            if i < shown {
                if joined.tags {
                    applied.extend(row.tags);
                }
                if joined.open_handoff {
                    let key = OpenHandoffPartKey(c.id.clone(), columns.open_handoff.clone());
                    open.push((key, row.open_handoff));
                }
                if joined.last_message {
                    let key = LastMessagePartKey(c.id.clone(), columns.last_message.clone());
                    last.push((key, row.last_message.map(Arc::new)));
                }
                if let (Some(id), Some(lead)) = (&c.lead_id, row.lead) {
                    leads.push((
                        LeadPartKey(id.clone(), columns.lead.clone()),
                        Arc::new(lead),
                    ));
                }
            }
            conversations.push(row.conversation);
        }
        prefetch(ctx, &conversations[..shown], joined, &columns).await?;
        let loaders = ctx.loaders();
        loaders.feed_many(last).await;
        loaders.feed_many(leads).await;
        loaders.feed_many(open).await;
        if joined.tags {
            let mut by_conversation: HashMap<String, Vec<Applied>> = conversations[..shown]
                .iter()
                .map(|c| (c.id.clone(), Vec::new()))
                .collect();
            for row in domain::knowledge::tags::with_tags(&core, applied).await? {
                if let Some(list) = by_conversation.get_mut(&row.0.conversation_id) {
                    list.push(row);
                }
            }
            let tags = by_conversation
                .into_iter()
                .map(|(id, list)| (AppliedTagsPartKey(id, columns.tags.clone()), list));
            loaders.feed_many(tags).await;
        }
        let rows = conversations;
        let total = TotalCount::new(move || {
            let (core, ws, filter) = (core.clone(), ws.clone(), filter.clone());
            async move { domain::chat::lists::count(&core, &ws, &filter).await }
        });
        Ok(page(
            rows,
            limit,
            position,
            |row| Inline(Conversation(row)),
            total,
        ))
    }
}

#[derive(InputObject)]
pub struct StartConversationInput {
    /// The workspace's public widget key.
    pub widget_key: String,
    /// The visitor id a returning visitor got from an earlier `startConversation`.
    /// It reaches that visitor's lead only with proof: send one of their still-valid
    /// visitor tokens as `Authorization: Bearer …` with this request. Without proof
    /// (or without an id) the server makes a new visitor with an empty lead; read it
    /// from `StartConversationPayload.visitorId` and keep it with the token.
    pub visitor_id: Option<String>,
    /// What is already known about the visitor. Values are checked against the lead
    /// fields; required fields are enforced by `captureLead`, not here.
    pub lead: Option<LeadInput>,
    /// Where the visitor is: page URL, CMS version, anything (a JSON object).
    pub context: Option<Json<serde_json::Value>>,
    /// The visitor's first message.
    pub message: Option<String>,
    /// For sites whose visitors are signed in: a JWT your backend signs (HS256) with
    /// the workspace's identity secret (`rotateIdentitySecret`), claims `sub` (your
    /// user id), `exp`, and optionally `email` and `name`. It binds the conversation
    /// to that user's lead on any device, email and name marked verified. A bad or
    /// expired token is `UNAUTHENTICATED`; required when the workspace has
    /// `requireVerifiedIdentity`.
    pub identity_token: Option<String>,
}

#[derive(SimpleObject)]
pub struct StartConversationPayload {
    pub conversation: Conversation,
    /// The visitor this conversation belongs to: the proven `visitorId` sent, or a
    /// new one. Keep it, with the visitor token, to be recognised next time.
    pub visitor_id: String,
    /// A token scoped to this conversation: send it as `Authorization: Bearer …`
    /// to read and write it, and in `connection_init` to subscribe.
    pub visitor_token: String,
    pub visitor_token_expires_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Default)]
pub struct ConversationMutation;

#[Object]
impl ConversationMutation {
    /// Open a conversation from the chat widget. Needs no token: the widget key
    /// authorises it.
    async fn start_conversation(
        &self,
        ctx: &Context<'_>,
        input: StartConversationInput,
    ) -> async_graphql::Result<StartConversationPayload> {
        let proof = ctx.presented().and_then(|p| p.visitor()).cloned();
        let started = domain::orchestration::start::start(
            ctx.core(),
            ctx.client_ip(),
            StartInput {
                widget_key: input.widget_key,
                visitor_id: input.visitor_id,
                proof,
                identity_token: input.identity_token,
                lead: input.lead.map(Into::into).unwrap_or_default(),
                context: input.context.map(|json| json.0),
                message: input.message,
            },
        )
        .await?;
        ctx.grant(started.visitor.clone());
        Ok(StartConversationPayload {
            visitor_id: started.conversation.visitor_id.clone(),
            conversation: Conversation(started.conversation),
            visitor_token: started.visitor_token.token,
            visitor_token_expires_at: started.visitor_token.expires_at,
        })
    }

    /// Assign the conversation to an agent (`agentId: null` unassigns), and
    /// optionally route it to a team.
    async fn assign_conversation(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        agent_id: Option<ID>,
        team_id: Option<ID>,
    ) -> async_graphql::Result<Conversation> {
        let agent = ctx.principal()?.agent()?;
        let conv = domain::chat::conversations::assign(
            ctx.core(),
            agent,
            &conversation_id,
            agent_id.as_ref().map(|id| id.as_str()),
            team_id.as_ref().map(|id| id.as_str()),
        )
        .await?;
        Ok(Conversation(conv))
    }

    /// Close the conversation, recorded in `resolvedBy`: agents (`AGENT`), the
    /// visitor ending its chat (`VISITOR`), or the AI (an `AI_WRITE` key, `AI`) while
    /// it holds the conversation (else `CONFLICT`, `CONTROL_NOT_HELD`). Resolving a
    /// resolved conversation changes nothing; a visitor message reopens it.
    async fn resolve_conversation(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
    ) -> async_graphql::Result<Conversation> {
        let principal = ctx.principal()?;
        Ok(Conversation(
            domain::handoff::resolution::resolve(ctx.core(), principal, &conversation_id).await?,
        ))
    }

    /// Put a tag on the conversation (`source: AGENT`).
    async fn tag_conversation(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        tag_id: ID,
    ) -> async_graphql::Result<Conversation> {
        let agent = ctx.principal()?.agent()?;
        let conversation =
            domain::knowledge::tags::tag_conversation(ctx.core(), agent, &conversation_id, &tag_id)
                .await?;
        Ok(Conversation(conversation))
    }

    /// Take a tag off the conversation. The removal is remembered: automatic
    /// tagging will not put it back.
    async fn untag_conversation(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        tag_id: ID,
    ) -> async_graphql::Result<Conversation> {
        let agent = ctx.principal()?.agent()?;
        let conversation = domain::knowledge::tags::untag_conversation(
            ctx.core(),
            agent,
            &conversation_id,
            &tag_id,
        )
        .await?;
        Ok(Conversation(conversation))
    }
}
