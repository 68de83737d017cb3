//! Conversation lists for the inbox: filters, the two orders and their cursors, a
//! page read with its rows' newest message and lead in one statement, and counts.

use sea_orm::sea_query::{Alias, Expr, ExprTrait, IntoCondition, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect,
    RelationDef,
};

use crate::db::{json_array_of, json_flat_statement, json_object_of, json_rows};
use crate::domain::Core;
use crate::entity::{ConversationStatus, conversation, conversation_tag, handoff, lead, message};
use crate::error::AppResult;

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
/// after `after`, with the relations `joined`, reading the `columns` of each.
#[derive(Clone, Copy, Debug)]
pub struct PageQuery<'a> {
    pub workspace_id: &'a str,
    pub filter: &'a ConversationFilter,
    pub order: Order,
    pub after: Option<&'a Position>,
    pub limit: u64,
    pub joined: Joined,
    pub columns: &'a Columns,
}

/// The columns a page reads of each part, those its document selects (`None`:
/// every column). What is not read decodes as the column type's default, so a
/// part is read with every column its readers use: the conversation's `id`,
/// `workspace_id` and `updated_at` (its cursor) always, a joined part's `id`.
#[derive(Clone, Debug, Default)]
pub struct Columns {
    pub conversation: Option<Vec<&'static str>>,
    pub last_message: Option<Vec<&'static str>>,
    pub lead: Option<Vec<&'static str>>,
    pub tags: Option<Vec<&'static str>>,
    pub open_handoff: Option<Vec<&'static str>>,
}

/// The columns of `E` to read: `wanted`, in the entity's order (every one when
/// `None`).
fn chosen<E: EntityTrait>(wanted: Option<&[&'static str]>) -> Vec<&'static str> {
    use sea_orm::{IdenStatic, Iterable};
    E::Column::iter()
        .map(|column| column.as_str())
        .filter(|column| wanted.is_none_or(|wanted| wanted.contains(column)))
        .collect()
}

/// The relations of an inbox row to read with its page.
#[derive(Clone, Copy, Debug, Default)]
pub struct Joined {
    /// The newest message, internal notes included.
    pub last_message: bool,
    pub lead: bool,
    /// The tags applied now.
    pub tags: bool,
    /// The handoff requested, offered or accepted, if any.
    pub open_handoff: bool,
}

/// A conversation of a page with the relations asked for in [`Joined`] (`None` or
/// empty when not asked for, or when the conversation has none).
pub struct Row {
    pub conversation: conversation::Model,
    pub last_message: Option<message::Model>,
    pub lead: Option<lead::Model>,
    pub tags: Vec<conversation_tag::Model>,
    pub open_handoff: Option<handoff::Model>,
}

/// One page of conversations with the relations asked for, in one statement: the
/// newest message and the lead by `LEFT JOIN`, the tags and the open handoff by
/// correlated subqueries along their indexes; an inbox row shows them, and a query
/// per relation would cost more than the page. (Assignees and teams, a handful
/// per workspace, come from the core's caches instead, through the request's
/// loaders.)
pub async fn page_joined(core: &Core, query: &PageQuery<'_>) -> AppResult<Vec<Row>> {
    let statement = page_statement(core.db.backend(), query);
    let flat: Vec<serde_json::Map<String, serde_json::Value>> =
        json_rows(&core.db.reader, statement).await?;
    let mut rows = flat
        .into_iter()
        .map(Row::of)
        .collect::<AppResult<Vec<_>>>()?;
    match query.order {
        Order::Newest => rows.sort_unstable_by(|a, b| b.conversation.id.cmp(&a.conversation.id)),
        Order::RecentlyUpdated => rows.sort_unstable_by(|a, b| {
            (b.conversation.updated_at, &b.conversation.id)
                .cmp(&(a.conversation.updated_at, &a.conversation.id))
        }),
    }
    Ok(rows)
}

impl Row {
    /// A row as [`page_statement`] writes it: one flat object, the message's
    /// columns named `m_…`, the lead's `l_…`, the tags `t`, the open handoff `h`.
    fn of(flat: serde_json::Map<String, serde_json::Value>) -> AppResult<Row> {
        use serde_json::{Map, Value};
        let (mut c, mut m, mut l) = (Map::new(), Map::new(), Map::new());
        let (mut t, mut h) = (Value::Null, Value::Null);
        for (key, value) in flat {
            if let Some(column) = key.strip_prefix("m_") {
                m.insert(column.to_owned(), value);
            } else if let Some(column) = key.strip_prefix("l_") {
                l.insert(column.to_owned(), value);
            } else if key == "t" {
                t = value;
            } else if key == "h" {
                h = value;
            } else {
                c.insert(key, value);
            }
        }
        // A LEFT JOIN that found nothing reads a NULL id.
        let joined = |part: Map<String, Value>| match part.get("id") {
            None | Some(Value::Null) => None,
            Some(_) => Some(Value::Object(part)),
        };
        let mut row = Row {
            conversation: serde_json::from_value(Value::Object(c))?,
            last_message: joined(m).map(serde_json::from_value).transpose()?,
            lead: joined(l).map(serde_json::from_value).transpose()?,
            tags: match t {
                Value::Null => Vec::new(),
                tags => serde_json::from_value(tags)?,
            },
            open_handoff: match h {
                Value::Null => None,
                handoff => Some(serde_json::from_value(handoff)?),
            },
        };
        // The columns [`page_statement`] does not read, [`IMPLIED`]: the
        // conversation's own.
        let (workspace, conversation) = (&row.conversation.workspace_id, &row.conversation.id);
        if let Some(message) = &mut row.last_message {
            message.workspace_id.clone_from(workspace);
            message.conversation_id.clone_from(conversation);
        }
        if let Some(lead) = &mut row.lead {
            lead.workspace_id.clone_from(workspace);
        }
        for tag in &mut row.tags {
            tag.workspace_id.clone_from(workspace);
            tag.conversation_id.clone_from(conversation);
        }
        if let Some(handoff) = &mut row.open_handoff {
            handoff.workspace_id.clone_from(workspace);
            handoff.conversation_id.clone_from(conversation);
        }
        Ok(row)
    }
}

/// Columns of a conversation's joined rows that are the conversation's own (its
/// workspace, its id): not read with them, but filled in from the conversation.
/// Written out for each of fifty rows they cost PostgreSQL a quarter of the page
/// statement (pgbench, one client: 1.50–1.76 ms per page with them, 1.03–1.32
/// without).
const IMPLIED: [&str; 2] = ["workspace_id", "conversation_id"];

/// The columns of `E` that `wanted` names (every one when `None`) that a joined
/// row must read: all but the [`IMPLIED`] ones.
fn joined_columns<E: EntityTrait>(wanted: Option<&[&'static str]>) -> Vec<&'static str> {
    chosen::<E>(wanted)
        .into_iter()
        .filter(|column| !IMPLIED.contains(column))
        .collect()
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
        columns,
    } = *query;
    use conversation::Column as C;
    let mut names: Vec<String> = Vec::new();
    let mut select = ordered(workspace_id, filter, order, after)
        .limit(limit)
        .select_only();
    for column in chosen::<conversation::Entity>(columns.conversation.as_deref()) {
        select = select.expr_as(
            Expr::col((conversation::Entity, Alias::new(column))),
            column,
        );
        names.push(column.to_owned());
    }
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
        let wanted = joined_columns::<message::Entity>(columns.last_message.as_deref());
        select = with_columns::<message::Entity>(
            select.join(JoinType::LeftJoin, newest),
            "m_",
            &wanted,
            &mut names,
        );
    }
    if joined.lead {
        let rel = conversation::Entity::belongs_to(lead::Entity)
            .from(C::LeadId)
            .to(lead::Column::Id)
            .into();
        let wanted = joined_columns::<lead::Entity>(columns.lead.as_deref());
        select = with_columns::<lead::Entity>(
            select.join(JoinType::LeftJoin, rel),
            "l_",
            &wanted,
            &mut names,
        );
    }
    // Read per row along conversation_tags' primary key and the open handoffs'
    // index: correlated subqueries, so the page stays one statement.
    let mut nested = Vec::new();
    if joined.tags {
        let wanted = joined_columns::<conversation_tag::Entity>(columns.tags.as_deref());
        let tags = json_array_of(
            backend,
            &wanted,
            "FROM \"conversation_tags\" t WHERE t.\"conversation_id\" = \"conversations\".\"id\" \
             AND t.\"removed_at\" IS NULL",
        );
        select = with_nested(select, tags, "t", &mut names, &mut nested);
    }
    if joined.open_handoff {
        let wanted = joined_columns::<handoff::Entity>(columns.open_handoff.as_deref());
        let open = json_object_of(
            backend,
            &wanted,
            "FROM \"handoffs\" t WHERE t.\"conversation_id\" = \"conversations\".\"id\" \
             AND t.\"status\" IN ('REQUESTED', 'OFFERED', 'ACCEPTED')",
        );
        select = with_nested(select, open, "h", &mut names, &mut nested);
    }
    json_flat_statement(
        sea_orm::QueryTrait::build(&select, backend),
        &names,
        &nested,
    )
}

/// `select` also reading the JSON subquery `sql` as column `name`, one of the
/// `nested` columns of [`json_flat_statement`].
fn with_nested(
    select: sea_orm::Select<conversation::Entity>,
    sql: String,
    name: &'static str,
    names: &mut Vec<String>,
    nested: &mut Vec<&'static str>,
) -> sea_orm::Select<conversation::Entity> {
    names.push(name.to_owned());
    nested.push(name);
    select.expr_as(Expr::cust(sql), name)
}

/// `select` also reading the `columns` of the joined `E`, named with `prefix`
/// (their names added to `names`).
fn with_columns<E: EntityTrait>(
    mut select: sea_orm::Select<conversation::Entity>,
    prefix: &str,
    columns: &[&'static str],
    names: &mut Vec<String>,
) -> sea_orm::Select<conversation::Entity> {
    for column in columns {
        let name = format!("{prefix}{column}");
        select = select.expr_as(
            Expr::col((E::default(), Alias::new(*column))),
            name.as_str(),
        );
        names.push(name);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_fills_its_joined_rows_with_the_conversations_workspace_and_id() {
        let flat = serde_json::json!({
            "id": "conv_1", "workspace_id": "ws_1", "updated_at": 5,
            "m_id": "msg_1", "m_seq": 3,
            "l_id": "lead_1",
            "t": [{ "tag_id": "tag_1" }],
            "h": { "id": "hand_1" },
        });
        let serde_json::Value::Object(flat) = flat else {
            unreachable!("an object")
        };
        let row = Row::of(flat).expect("a row");
        let message = row.last_message.expect("the message");
        assert_eq!((message.id.as_str(), message.seq), ("msg_1", 3));
        assert_eq!(
            (
                message.workspace_id.as_str(),
                message.conversation_id.as_str()
            ),
            ("ws_1", "conv_1")
        );
        assert_eq!(row.lead.expect("the lead").workspace_id, "ws_1");
        let tag = &row.tags[0];
        assert_eq!(
            (
                tag.tag_id.as_str(),
                tag.workspace_id.as_str(),
                tag.conversation_id.as_str()
            ),
            ("tag_1", "ws_1", "conv_1")
        );
        let handoff = row.open_handoff.expect("the handoff");
        assert_eq!(
            (
                handoff.workspace_id.as_str(),
                handoff.conversation_id.as_str()
            ),
            ("ws_1", "conv_1")
        );
    }

    #[test]
    fn a_left_join_that_found_nothing_is_none() {
        let flat = serde_json::json!({
            "id": "conv_1", "workspace_id": "ws_1", "updated_at": 5,
            "m_id": null, "l_id": null, "t": null, "h": null,
        });
        let serde_json::Value::Object(flat) = flat else {
            unreachable!("an object")
        };
        let row = Row::of(flat).expect("a row");
        assert!(row.last_message.is_none() && row.lead.is_none() && row.open_handoff.is_none());
        assert!(row.tags.is_empty());
    }
}
