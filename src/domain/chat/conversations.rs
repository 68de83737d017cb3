//! Conversations: starting one from the widget, listing and filtering them for the
//! inbox, assignment and resolution.

use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, JoinType,
    QueryFilter, QueryOrder, QuerySelect, RelationDef, Set, TransactionTrait,
};

use crate::auth::{AgentPrincipal, IssuedToken, Principal, VisitorPrincipal};
use crate::domain::Core;
use crate::domain::core::feed::{self, Change, Event};
use crate::entity::{
    ConversationStatus, ResolvedBy, conversation, conversation_tag, lead, message, now_ms,
};
use crate::error::{AppError, AppResult};
use crate::ids::{Kind, new_id, random_secret};

use super::leads::LeadInput;
use super::messages::{NewMessage, append, body_text};
use crate::db::{JsonPart, json_rows, json_statement};
use crate::domain::core::validate;
use crate::domain::stmt;

/// Largest `context` document a widget may send, in bytes.
const MAX_CONTEXT_BYTES: usize = 16 * 1024;

/// A conversation by id, if `principal` may see it; otherwise `NOT_FOUND`.
pub async fn get(core: &Core, principal: &Principal, id: &str) -> AppResult<conversation::Model> {
    principal.can_access_conversation(id)?;
    conversation::Entity::find_by_id(id)
        .filter(conversation::Column::WorkspaceId.eq(principal.workspace_id()))
        .one(&core.db.reader)
        .await?
        .ok_or(AppError::NotFound("conversation"))
}

pub struct StartInput {
    pub widget_key: String,
    pub visitor_id: Option<String>,
    /// The visitor the request proved to be (a visitor token it presented): only
    /// then does a client-sent `visitor_id` reach that visitor's lead.
    pub proof: Option<VisitorPrincipal>,
    /// An identity the site signed (see `identity`).
    pub identity_token: Option<String>,
    pub lead: LeadInput,
    pub context: Option<serde_json::Value>,
    pub message: Option<String>,
}

/// A visitor id the server makes: `vis_` and 128 random bits.
fn new_visitor_id() -> String {
    format!("vis_{}", random_secret(16))
}

pub struct Started {
    pub conversation: conversation::Model,
    pub visitor_token: IssuedToken,
    /// The visitor the token stands for.
    pub visitor: Principal,
}

/// Open a conversation from the widget: authorised by the workspace's public widget
/// key, it links (or creates) the visitor's lead, stores the first message if any,
/// and issues a visitor token scoped to this conversation.
///
/// A visitor id is not a credential (widgets keep it in local storage, sites derive
/// it from their own user ids): a client-sent `visitor_id` is kept only when the
/// request proves it is that visitor, with a still-valid visitor token of one of its
/// conversations in this workspace. Otherwise the conversation gets a new visitor
/// id (128 random bits) and a new, empty lead, so nobody reads another visitor's
/// details by naming their id.
pub async fn start(core: &Core, input: StartInput) -> AppResult<Started> {
    let ws = crate::domain::tenancy::workspaces::by_widget_key(core, &input.widget_key).await?;
    let identity = match input.identity_token.as_deref() {
        Some(token) => Some(crate::domain::tenancy::identity::verify(&ws, token)?),
        None if ws.require_verified_identity => {
            return Err(AppError::Unauthenticated(
                "this workspace talks only with signed-in visitors: pass their identityToken",
            ));
        }
        None => None,
    };
    let claimed = input
        .visitor_id
        .as_deref()
        .map(|id| validate::text("visitorId", id, 128))
        .transpose()?;
    let visitor_id = match (&identity, claimed, &input.proof) {
        (Some(identity), _, _) => identity.visitor_id(),
        (None, Some(id), Some(proof)) if proof.visitor_id == id && proof.workspace_id == ws.id => {
            id
        }
        _ => new_visitor_id(),
    };
    let context = validate::json_object("context", input.context, MAX_CONTEXT_BYTES)?;
    let first = input.message.as_deref().map(body_text).transpose()?;
    let now = now_ms();

    let txn = core.db.writer.begin().await?;
    let lead = match identity {
        // What the site signed wins over what the widget says.
        Some(identity) => {
            let mut lead = input.lead;
            lead.email = identity.email.or(lead.email);
            lead.name = identity.name.or(lead.name);
            Some(super::leads::for_verified_visitor(&txn, &ws.id, &visitor_id, &lead).await?)
        }
        None => super::leads::for_visitor(&txn, &ws.id, &visitor_id, &input.lead).await?,
    };
    let mut conversation = conversation::ActiveModel {
        id: Set(new_id(Kind::Conversation)),
        workspace_id: Set(ws.id.clone()),
        lead_id: Set(lead.map(|l| l.id)),
        visitor_id: Set(visitor_id.clone()),
        status: Set(ConversationStatus::Ai),
        assignee_id: Set(None),
        team_id: Set(ws.default_team_id.clone()),
        context: Set(serde_json::to_string(&context)?),
        last_seq: Set(0),
        ai_boundary_seq: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        resolved_by: Set(None),
        resolved_at: Set(None),
    }
    .insert(&txn)
    .await?;
    let first = match first {
        Some(body) => {
            let new = NewMessage {
                author: crate::entity::Author::Visitor,
                agent_id: None,
                body,
                internal: false,
                confidence: None,
                sources: "[]".to_owned(),
                client_message_id: None,
                reply_to_seq: None,
            };
            let appended = append(&txn, &ws.id, &conversation.id, new).await?;
            conversation = appended.conversation;
            Some(appended.message)
        }
        None => None,
    };
    let mut events = vec![Event::conversation_changed(
        conversation.clone(),
        Change::Opened,
    )];
    if let Some(message) = &first {
        events.push(Event::message_created(
            message.clone(),
            conversation.clone(),
        ));
    }
    feed::commit(core, txn, &events).await?;

    let visitor_token = core
        .tokens
        .issue_visitor(&visitor_id, &ws.id, &conversation.id)?;
    let visitor = Principal::Visitor(VisitorPrincipal {
        visitor_id,
        workspace_id: ws.id.clone(),
        conversation_id: conversation.id.clone(),
        expires_at: visitor_token.expires_at.timestamp(),
    });
    if let Some(message) = first {
        crate::domain::orchestration::pipeline::after_visitor_message(core, &message);
    }
    Ok(Started {
        conversation,
        visitor_token,
        visitor,
    })
}

/// How a conversation list is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Order {
    /// Newest first (by creation). Cursors are stable under any change.
    #[default]
    Newest,
    /// Most recently active first. A conversation that changes while a client pages
    /// moves to the top, as in an inbox.
    RecentlyUpdated,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ConversationFilter {
    pub statuses: Vec<ConversationStatus>,
    pub assignee_id: Option<String>,
    pub unassigned: bool,
    pub team_id: Option<String>,
    /// Conversations carrying any of these tags.
    pub tag_ids: Vec<String>,
    pub lead_id: Option<String>,
    pub updated_after: Option<i64>,
}

impl ConversationFilter {
    /// The filter spelled out, as the key of its count (every field, so that two
    /// filters share a key only when they are equal).
    fn key(&self) -> String {
        format!("{self:?}")
    }

    fn select(&self, workspace_id: &str) -> sea_orm::Select<conversation::Entity> {
        use conversation::Column as C;
        let mut select = conversation::Entity::find().filter(C::WorkspaceId.eq(workspace_id));
        if !self.statuses.is_empty() {
            select = select.filter(C::Status.is_in(self.statuses.iter().copied()));
        }
        if let Some(assignee) = &self.assignee_id {
            select = select.filter(C::AssigneeId.eq(assignee.as_str()));
        }
        if self.unassigned {
            select = select.filter(C::AssigneeId.is_null());
        }
        if let Some(team) = &self.team_id {
            select = select.filter(C::TeamId.eq(team.as_str()));
        }
        if let Some(lead) = &self.lead_id {
            select = select.filter(C::LeadId.eq(lead.as_str()));
        }
        if let Some(after) = self.updated_after {
            select = select.filter(C::UpdatedAt.gt(after));
        }
        if !self.tag_ids.is_empty() {
            // A probe by `conversation_tags`' primary key for each row of the
            // ordered scan (an `IN (SELECT …)` would read every tagged
            // conversation first, and sort them).
            use conversation_tag::Column as T;
            let tagged = Query::select()
                .expr(Expr::val(1))
                .from(conversation_tag::Entity)
                .and_where(
                    Expr::col((conversation_tag::Entity, T::ConversationId))
                        .equals((conversation::Entity, C::Id)),
                )
                .and_where(T::TagId.is_in(self.tag_ids.iter().cloned()))
                .and_where(T::RemovedAt.is_null())
                .to_owned();
            select = select.filter(Expr::exists(tagged));
        }
        select
    }
}

/// The position of a conversation in a list, as its cursor encodes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub updated_at: i64,
    pub id: String,
}

/// The conversations of `filter` in `order`, after `after`.
fn ordered(
    workspace_id: &str,
    filter: &ConversationFilter,
    order: Order,
    after: Option<&Position>,
) -> sea_orm::Select<conversation::Entity> {
    use conversation::Column as C;
    let mut select = filter.select(workspace_id);
    match order {
        Order::Newest => {
            if let Some(after) = after {
                select = select.filter(C::Id.lt(after.id.as_str()));
            }
            select.order_by_desc(C::Id)
        }
        Order::RecentlyUpdated => {
            if let Some(after) = after {
                // A row value, so the index seeks to the cursor.
                select = select.filter(
                    Expr::tuple([
                        Expr::col((conversation::Entity, C::UpdatedAt)),
                        Expr::col((conversation::Entity, C::Id)),
                    ])
                    .lt(Expr::tuple([
                        Expr::val(after.updated_at),
                        Expr::val(after.id.as_str()),
                    ])),
                );
            }
            select.order_by_desc(C::UpdatedAt).order_by_desc(C::Id)
        }
    }
}

/// A page of conversations to read: `limit` of those `filter` lists in `order`,
/// after `after`, with the relations `joined`.
#[derive(Clone, Copy, Debug)]
pub struct PageQuery<'a> {
    pub workspace_id: &'a str,
    pub filter: &'a ConversationFilter,
    pub order: Order,
    pub after: Option<&'a Position>,
    pub limit: u64,
    pub joined: Joined,
}

/// The to-one relations of an inbox row to read with its page.
#[derive(Clone, Copy, Debug, Default)]
pub struct Joined {
    /// The newest message, internal notes included.
    pub last_message: bool,
    pub lead: bool,
}

/// A conversation of a page with the relations asked for in [`Joined`] (`None` when
/// not asked for, or when the conversation has none).
pub struct Row {
    pub conversation: conversation::Model,
    pub last_message: Option<message::Model>,
    pub lead: Option<lead::Model>,
}

/// One page of conversations with their newest message and lead (those asked
/// for), in one statement of `LEFT JOIN`s: an inbox row shows them, and a query
/// per relation would cost more than the page. (Assignees and teams, a handful
/// per workspace, come from caches instead: see `crate::loaders`.)
pub async fn page_joined(core: &Core, query: &PageQuery<'_>) -> AppResult<Vec<Row>> {
    let statement = page_statement(core.db.backend(), query);
    let mut rows: Vec<JsonRow> = json_rows(&core.db.reader, statement).await?;
    match query.order {
        Order::Newest => rows.sort_unstable_by(|a, b| b.c.id.cmp(&a.c.id)),
        Order::RecentlyUpdated => {
            rows.sort_unstable_by(|a, b| (b.c.updated_at, &b.c.id).cmp(&(a.c.updated_at, &a.c.id)))
        }
    }
    Ok(rows
        .into_iter()
        .map(|row| Row {
            conversation: row.c,
            last_message: row.m,
            lead: row.l,
        })
        .collect())
}

/// A row of [`page_joined`] as the database wrote it.
#[derive(serde::Deserialize)]
struct JsonRow {
    c: conversation::Model,
    #[serde(default)]
    m: Option<message::Model>,
    #[serde(default)]
    l: Option<lead::Model>,
}

/// The statement [`page_joined`] runs (public for the test that reads its plan).
pub fn page_statement(backend: sea_orm::DbBackend, query: &PageQuery<'_>) -> sea_orm::Statement {
    let PageQuery {
        workspace_id,
        filter,
        order,
        after,
        limit,
        joined,
    } = *query;
    use conversation::Column as C;
    let mut select = ordered(workspace_id, filter, order, after).limit(limit);
    if joined.last_message {
        let newest: RelationDef = conversation::Entity::belongs_to(message::Entity)
            .from(C::Id)
            .to(message::Column::ConversationId)
            .on_condition(|conversation, message| {
                Expr::col((message, message::Column::Seq))
                    .equals((conversation, C::LastSeq))
                    .into_condition()
            })
            .into();
        select = with_columns::<message::Entity>(select.join(JoinType::LeftJoin, newest), "m_");
    }
    if joined.lead {
        select = by_id::<lead::Entity>(select, C::LeadId, lead::Column::Id, "l_");
    }
    let mut parts = vec![JsonPart::of::<conversation::Entity>("c", "")];
    if joined.last_message {
        parts.push(JsonPart::of::<message::Entity>("m", "m_"));
    }
    if joined.lead {
        parts.push(JsonPart::of::<lead::Entity>("l", "l_"));
    }
    json_statement(sea_orm::QueryTrait::build(&select, backend), &parts)
}

/// `select` joined with the `E` whose `id` is the conversation's `from` (if any),
/// reading its columns with `prefix`.
fn by_id<E: EntityTrait>(
    select: sea_orm::Select<conversation::Entity>,
    from: conversation::Column,
    id: E::Column,
    prefix: &str,
) -> sea_orm::Select<conversation::Entity> {
    let rel = conversation::Entity::belongs_to(E::default())
        .from(from)
        .to(id)
        .into();
    with_columns::<E>(select.join(JoinType::LeftJoin, rel), prefix)
}

/// `select` also reading every column of the joined `E`, named with `prefix`.
fn with_columns<E: EntityTrait>(
    mut select: sea_orm::Select<conversation::Entity>,
    prefix: &str,
) -> sea_orm::Select<conversation::Entity> {
    use sea_orm::{IdenStatic, Iterable};
    for column in E::Column::iter() {
        select = select.expr_as(
            Expr::col((E::default(), column)),
            format!("{prefix}{}", column.as_str()),
        );
    }
    select
}

/// How many conversations `filter` lists: counted once, then served from
/// `Core::list_counts` until a conversation of the workspace changes.
pub async fn count(core: &Core, workspace_id: &str, filter: &ConversationFilter) -> AppResult<u64> {
    // Read before counting: a change committed meanwhile makes this count stale at
    // once, whichever side of it the count saw.
    let key = filter.key();
    let generation = core.list_counts.generation(workspace_id);
    if let Some(n) = core.list_counts.get(workspace_id, &key, generation) {
        return Ok(n);
    }
    let n = count_now(core, workspace_id, filter).await?;
    core.list_counts.put(workspace_id, key, generation, n);
    Ok(n)
}

async fn count_now(core: &Core, workspace_id: &str, filter: &ConversationFilter) -> AppResult<u64> {
    let statement = count_statement(core.db.backend(), workspace_id, filter);
    let row = core.db.reader.query_one_raw(statement).await?;
    let n: i64 = match row {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    Ok(n as u64)
}

/// The statement of [`count`] (public for the test that reads its plan).
pub fn count_statement(
    backend: sea_orm::DbBackend,
    workspace_id: &str,
    filter: &ConversationFilter,
) -> sea_orm::Statement {
    let select = filter
        .select(workspace_id)
        .select_only()
        .column_as(Expr::val(1).count(), "n");
    sea_orm::QueryTrait::build(&select, backend)
}

/// Assign a conversation to an agent of the workspace (or to nobody), and optionally
/// to a team.
pub async fn assign(
    core: &Core,
    agent: &AgentPrincipal,
    conversation_id: &str,
    assignee_id: Option<&str>,
    team_id: Option<&str>,
) -> AppResult<conversation::Model> {
    let ws = &agent.workspace_id;
    let principal = Principal::Agent(agent.clone());
    let conv = get(core, &principal, conversation_id).await?;
    if let Some(id) = assignee_id {
        crate::domain::tenancy::agents::get(core, ws, id).await?;
    }
    if let Some(id) = team_id {
        crate::domain::tenancy::teams::get(core, ws, id).await?;
    }
    let mut active: conversation::ActiveModel = conv.into();
    active.assignee_id = Set(assignee_id.map(str::to_owned));
    if let Some(team) = team_id {
        active.team_id = Set(Some(team.to_owned()));
    }
    active.updated_at = Set(now_ms());
    let txn = core.db.writer.begin().await?;
    let conv = active.update(&txn).await?;
    let assigned = Event::conversation_changed(conv.clone(), Change::Assigned);
    feed::commit(core, txn, &[assigned]).await?;
    Ok(conv)
}

/// Close a conversation as `principal` (see `Principal::resolves_as`: an agent, the
/// visitor, or the AI for a conversation it holds). The AI's context restarts after
/// this point, so an old request for a human does not count when the visitor writes
/// again. Resolving a resolved conversation changes nothing.
pub async fn resolve(
    core: &Core,
    principal: &Principal,
    conversation_id: &str,
) -> AppResult<conversation::Model> {
    let by = principal.resolves_as()?;
    let current = get(core, principal, conversation_id).await?;
    if current.status == ConversationStatus::Resolved {
        return Ok(current);
    }
    if by == ResolvedBy::Ai && current.status != ConversationStatus::Ai {
        return Err(AppError::Conflict {
            message: "humans have control of this conversation: the AI cannot resolve it"
                .to_owned(),
            reason: Some("CONTROL_NOT_HELD"),
        });
    }
    match close(core, &current, by, None).await? {
        Some(resolved) => Ok(resolved),
        // Resolved (or, for the AI, taken by a human) by someone else meanwhile.
        None => get(core, principal, conversation_id).await,
    }
}

/// Resolve `conversation` as `by`, with a `SYSTEM` message `note` when given, and
/// close its open handoff, in one transaction. The AI and the clock (`AI`, `AUTO`)
/// resolve only while the AI holds the conversation, so that an agent who took it a
/// moment before wins. `None` when it was no longer open to `by` (resolved by
/// someone else, or taken by a human).
pub async fn close(
    core: &Core,
    conversation: &conversation::Model,
    by: ResolvedBy,
    note: Option<String>,
) -> AppResult<Option<conversation::Model>> {
    let txn = core.db.writer.begin().await?;
    let held = if matches!(by, ResolvedBy::Ai | ResolvedBy::Auto) {
        "status = 'AI'"
    } else {
        "status <> 'RESOLVED'"
    };
    let mut events = Vec::with_capacity(3);
    if let Some(note) = note {
        let appended = append(
            &txn,
            &conversation.workspace_id,
            &conversation.id,
            crate::domain::handoff::handoffs::system(note),
        )
        .await?;
        // The AI and the clock decided on `conversation` as it was: a message
        // written since (or a human taking it) voids the decision.
        let unchanged = appended.conversation.status == ConversationStatus::Ai
            && appended.conversation.last_seq == conversation.last_seq + 1;
        if matches!(by, ResolvedBy::Ai | ResolvedBy::Auto) && !unchanged {
            return Ok(None);
        }
        events.push(Event::message_created(
            appended.message,
            appended.conversation,
        ));
    }
    let now = now_ms();
    let row = txn
        .query_one_raw(stmt(
            core.db.backend(),
            &format!(
                "UPDATE conversations SET status = 'RESOLVED', ai_boundary_seq = last_seq, \
                 updated_at = ?, resolved_by = ?, resolved_at = ? \
                 WHERE id = ? AND workspace_id = ? AND {held} RETURNING *"
            ),
            vec![
                now.into(),
                sea_orm::ActiveEnum::to_value(&by).into(),
                now.into(),
                conversation.id.as_str().into(),
                conversation.workspace_id.as_str().into(),
            ],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let conv = conversation::Model::from_query_result(&row, "")?;
    let handoff = crate::domain::handoff::handoffs::resolve_open(&txn, &conv.id).await?;
    events.push(Event::conversation_changed(conv.clone(), Change::Status));
    if let Some(handoff) = &handoff {
        events.push(Event::handoff_changed(handoff.clone(), conv.clone()));
    }
    feed::commit(core, txn, &events).await?;
    if let Some(handoff) = &handoff {
        core.accepts.changed(handoff);
    }
    Ok(Some(conv))
}

/// The newest message visible to a reader, for each of these conversations: one
/// query, one index lookup per conversation.
pub async fn last_messages(
    core: &Core,
    conversation_ids: &[String],
    include_internal: bool,
) -> AppResult<Vec<message::Model>> {
    let newest = if include_internal {
        "messages.seq = (SELECT c.last_seq FROM conversations c WHERE c.id = messages.conversation_id)"
    } else {
        "messages.internal = false AND messages.seq = (SELECT MAX(m2.seq) FROM messages m2 \
         WHERE m2.conversation_id = messages.conversation_id AND m2.internal = false)"
    };
    Ok(message::Entity::find()
        .filter(message::Column::ConversationId.is_in(conversation_ids.iter().cloned()))
        .filter(Expr::cust(newest))
        .all(&core.db.reader)
        .await?)
}
