//! The rows of the CSV exports (`/export/leads.csv` for `LEADS_READ`,
//! `/export/conversations.csv` for `CONVERSATIONS_READ`): a header, then the
//! workspace's rows a page at a time, so that an export of any size holds one page
//! in memory. The transport writes them as CSV.

use std::collections::HashMap;
use std::net::IpAddr;

use futures_util::Stream;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::auth::{Principal, Scope};
use crate::domain::Core;
use crate::domain::tenancy::audit::{self, Act, By};
use crate::entity::audit_entry::AuditAction;
use crate::entity::{agent, conversation, handoff, lead, rating, team};
use crate::error::AppResult;

/// One row: its cells, as text.
pub type Row = Vec<String>;

/// Rows read per page.
const PAGE: u64 = 500;

/// Record in the audit log that `principal` at `address` exported the `kind`s.
async fn exported(
    core: &Core,
    principal: &Principal,
    address: IpAddr,
    kind: &'static str,
) -> AppResult<()> {
    let act = Act::on_all(AuditAction::DataExported, kind);
    audit::record(&core.db.writer, &By::principal(principal, address), act).await
}

/// A time as the exports write it: RFC 3339, in UTC, to the millisecond.
fn iso(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The leads of `principal`'s workspace: id, name, email, company, a column per
/// lead field (in the order they were defined), and when each was created and
/// last changed.
pub async fn leads(
    core: &Core,
    principal: &Principal,
    address: IpAddr,
) -> AppResult<impl Stream<Item = AppResult<Vec<Row>>> + Send + 'static> {
    principal.require(Scope::LeadsRead)?;
    exported(core, principal, address, "Lead").await?;
    let ws = principal.workspace_id().to_owned();
    let fields = crate::domain::chat::leads::fields(&core.db.reader, &ws).await?;
    let core = core.clone();
    Ok(async_stream::try_stream! {
        let mut header: Row = ["id", "name", "email", "company"].map(String::from).to_vec();
        header.extend(fields.iter().map(|f| f.key.clone()));
        header.extend(["created_at", "updated_at"].map(String::from));
        yield vec![header];
        let mut after: Option<String> = None;
        loop {
            let mut select = lead::Entity::find()
                .filter(lead::Column::WorkspaceId.eq(ws.as_str()))
                .filter(lead::Column::ErasedAt.is_null());
            if let Some(after) = &after {
                select = select.filter(lead::Column::Id.gt(after.as_str()));
            }
            let page = select.order_by_asc(lead::Column::Id).limit(PAGE).all(&core.db.reader).await?;
            let Some(last) = page.last().map(|l| l.id.clone()) else { break };
            let mut rows = Vec::with_capacity(page.len());
            for lead in page {
                let values = lead.fields()?;
                let mut row = vec![
                    lead.id,
                    lead.name.unwrap_or_default(),
                    lead.email.unwrap_or_default(),
                    lead.company.unwrap_or_default(),
                ];
                row.extend(fields.iter().map(|f| match values.get(&f.key) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(serde_json::Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                }));
                row.push(iso(lead.created_at));
                row.push(iso(lead.updated_at));
                rows.push(row);
            }
            yield rows;
            after = Some(last);
        }
    })
}

/// Rows keyed by id, for the ids given.
async fn by_id<E, F>(
    core: &Core,
    ids: Vec<String>,
    column: E::Column,
    key: F,
) -> AppResult<HashMap<String, E::Model>>
where
    E: EntityTrait,
    F: Fn(&E::Model) -> String,
{
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = E::find()
        .filter(column.is_in(ids))
        .all(&core.db.reader)
        .await?;
    Ok(rows.into_iter().map(|row| (key(&row), row)).collect())
}

/// The conversations of `principal`'s workspace, oldest first: status, times,
/// visitor, lead (empty for readers that do not see leads), assignee, team, tags,
/// message count, the latest handoff's reason and status, and the rating.
pub async fn conversations(
    core: &Core,
    principal: &Principal,
    address: IpAddr,
) -> AppResult<impl Stream<Item = AppResult<Vec<Row>>> + Send + 'static> {
    principal.require(Scope::ConversationsRead)?;
    exported(core, principal, address, "Conversation").await?;
    let ws = principal.workspace_id().to_owned();
    let sees_leads = principal.sees_leads();
    let core = core.clone();
    Ok(async_stream::try_stream! {
        let header = [
            "id", "status", "created_at", "updated_at", "visitor_id", "lead_id", "lead_name", "lead_email",
            "assignee_email", "team", "tags", "messages", "handoff_reason", "handoff_status", "csat",
        ];
        yield vec![header.map(String::from).to_vec()];
        let mut after: Option<String> = None;
        loop {
            let mut select = conversation::Entity::find().filter(conversation::Column::WorkspaceId.eq(ws.as_str()));
            if let Some(after) = &after {
                select = select.filter(conversation::Column::Id.gt(after.as_str()));
            }
            let page = select.order_by_asc(conversation::Column::Id).limit(PAGE).all(&core.db.reader).await?;
            let Some(last) = page.last().map(|c| c.id.clone()) else { break };
            let ids: Vec<String> = page.iter().map(|c| c.id.clone()).collect();
            let lead_ids = if sees_leads { page.iter().filter_map(|c| c.lead_id.clone()).collect() } else { Vec::new() };
            let leads = by_id::<lead::Entity, _>(&core, lead_ids, lead::Column::Id, |l| l.id.clone()).await?;
            let agents = by_id::<agent::Entity, _>(&core, page.iter().filter_map(|c| c.assignee_id.clone()).collect(), agent::Column::Id, |a| a.id.clone()).await?;
            let teams = by_id::<team::Entity, _>(&core, page.iter().filter_map(|c| c.team_id.clone()).collect(), team::Column::Id, |t| t.id.clone()).await?;
            let ratings = by_id::<rating::Entity, _>(&core, ids.clone(), rating::Column::ConversationId, |r| r.conversation_id.clone()).await?;
            let mut tags: HashMap<String, Vec<String>> = HashMap::new();
            for (applied, tag) in crate::domain::knowledge::tags::applied(&core, &ids).await? {
                tags.entry(applied.conversation_id).or_default().push(tag.slug.clone());
            }
            let mut latest: HashMap<String, handoff::Model> = HashMap::new();
            let handoffs = handoff::Entity::find()
                .filter(handoff::Column::ConversationId.is_in(ids.clone()))
                .order_by_asc(handoff::Column::Id)
                .all(&core.db.reader)
                .await?;
            for handoff in handoffs {
                latest.insert(handoff.conversation_id.clone(), handoff);
            }
            let mut rows = Vec::with_capacity(page.len());
            for c in page {
                let lead = c.lead_id.as_ref().and_then(|id| leads.get(id));
                let handoff = latest.get(&c.id);
                rows.push(vec![
                    c.id.clone(),
                    format!("{:?}", c.status).to_uppercase(),
                    iso(c.created_at),
                    iso(c.updated_at),
                    c.visitor_id.clone(),
                    c.lead_id.clone().filter(|_| sees_leads).unwrap_or_default(),
                    lead.and_then(|l| l.name.clone()).unwrap_or_default(),
                    lead.and_then(|l| l.email.clone()).unwrap_or_default(),
                    c.assignee_id.as_ref().and_then(|id| agents.get(id)).map(|a| a.email.clone()).unwrap_or_default(),
                    c.team_id.as_ref().and_then(|id| teams.get(id)).map(|t| t.name.clone()).unwrap_or_default(),
                    tags.get(&c.id).map(|t| t.join(";")).unwrap_or_default(),
                    c.last_seq.to_string(),
                    handoff.map(|h| format!("{:?}", h.reason)).map(|r| screaming(&r)).unwrap_or_default(),
                    handoff.map(|h| format!("{:?}", h.status).to_uppercase()).unwrap_or_default(),
                    ratings.get(&c.id).map(|r| r.score.to_string()).unwrap_or_default(),
                ]);
            }
            yield rows;
            after = Some(last);
        }
    })
}

/// `VisitorRequested` as `VISITOR_REQUESTED`.
fn screaming(camel: &str) -> String {
    let mut out = String::new();
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_names_are_screaming_snake_case() {
        assert_eq!(screaming("VisitorRequested"), "VISITOR_REQUESTED");
        assert_eq!(screaming("Policy"), "POLICY");
    }
}
