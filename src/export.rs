//! Streaming CSV exports for integrators: `GET /export/leads.csv` (`LEADS_READ`) and
//! `GET /export/conversations.csv` (`CONVERSATIONS_READ`), authenticated like the
//! API (`Authorization: Bearer …`). Rows are read and written a page at a time, so
//! an export of any size holds one page in memory.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::auth::{Principal, Scope};
use crate::domain::Core;
use crate::entity::{agent, conversation, handoff, lead, rating, team};
use crate::error::{AppError, AppResult};

/// Rows per page.
const PAGE: u64 = 500;

fn csv_row(fields: &[String]) -> AppResult<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(fields.iter().map(|field| match neutralised(field) {
            std::borrow::Cow::Borrowed(text) => std::borrow::Cow::Borrowed(text.as_bytes()),
            std::borrow::Cow::Owned(text) => std::borrow::Cow::Owned(text.into_bytes()),
        }))
        .map_err(|err| AppError::internal(format!("csv: {err}")))?;
    writer
        .into_inner()
        .map_err(|err| AppError::internal(format!("csv: {err}")))
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, carriage
/// return first: visitors write these cells) gets a leading `'`, so it shows as text.
fn neutralised(field: &str) -> std::borrow::Cow<'_, str> {
    if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{field}"))
    } else {
        std::borrow::Cow::Borrowed(field)
    }
}

fn iso(ms: i64) -> String {
    crate::graphql::timestamp(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn failure(err: &AppError) -> Response {
    if let AppError::RateLimited { .. } = err {
        return crate::net::rate_limited(err);
    }
    let status = match err {
        AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = serde_json::json!({ "errors": [{ "message": err.message(), "extensions": { "code": err.code() } }] });
    (status, axum::Json(body)).into_response()
}

async fn authorize(core: &Core, headers: &HeaderMap, scope: Scope) -> AppResult<Principal> {
    let value = headers
        .get(header::AUTHORIZATION)
        .map(|v| {
            v.to_str()
                .map_err(|_| AppError::Unauthenticated("token is malformed"))
        })
        .transpose()?;
    let principal = crate::domain::tenancy::api_keys::authenticate(core, value)
        .await?
        .ok_or(AppError::Unauthenticated(
            "an export needs a token or an API key",
        ))?;
    principal.require(scope)?;
    // An export counts as one request of its token's budget.
    core.rate.request(&principal)?;
    Ok(principal)
}

fn csv_response(
    name: &str,
    rows: impl Stream<Item = AppResult<Vec<u8>>> + Send + 'static,
) -> Response {
    use futures_util::StreamExt;
    let body = rows.map(|chunk| {
        chunk.map(Bytes::from).map_err(|err| {
            tracing::error!(error.detail = ?err, "export failed mid-stream");
            std::io::Error::other("export failed")
        })
    });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

pub async fn leads(State(core): State<Core>, headers: HeaderMap) -> Response {
    let principal = match authorize(&core, &headers, Scope::LeadsRead).await {
        Ok(principal) => principal,
        Err(err) => return failure(&err),
    };
    let ws = principal.workspace_id().to_owned();
    let fields = match crate::domain::chat::leads::fields(&core.db.reader, &ws).await {
        Ok(fields) => fields,
        Err(err) => return failure(&err),
    };
    let rows = async_stream::try_stream! {
        let mut header: Vec<String> = ["id", "name", "email", "company"].map(String::from).to_vec();
        header.extend(fields.iter().map(|f| f.key.clone()));
        header.extend(["created_at", "updated_at"].map(String::from));
        yield csv_row(&header)?;
        let mut after: Option<String> = None;
        loop {
            let mut select = lead::Entity::find().filter(lead::Column::WorkspaceId.eq(ws.as_str()));
            if let Some(after) = &after {
                select = select.filter(lead::Column::Id.gt(after.as_str()));
            }
            let page = select.order_by_asc(lead::Column::Id).limit(PAGE).all(&core.db.reader).await?;
            let Some(last) = page.last().map(|l| l.id.clone()) else { break };
            let mut chunk = Vec::new();
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
                chunk.extend(csv_row(&row)?);
            }
            yield chunk;
            after = Some(last);
        }
    };
    csv_response("leads.csv", rows)
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

pub async fn conversations(State(core): State<Core>, headers: HeaderMap) -> Response {
    let principal = match authorize(&core, &headers, Scope::ConversationsRead).await {
        Ok(principal) => principal,
        Err(err) => return failure(&err),
    };
    let ws = principal.workspace_id().to_owned();
    // Lead columns stay empty for keys without LEADS_READ.
    let sees_leads = principal.sees_leads();
    let rows = async_stream::try_stream! {
        let header = [
            "id", "status", "created_at", "updated_at", "visitor_id", "lead_id", "lead_name", "lead_email",
            "assignee_email", "team", "tags", "messages", "handoff_reason", "handoff_status", "csat",
        ];
        yield csv_row(&header.map(String::from))?;
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
            let mut chunk = Vec::new();
            for c in page {
                let lead = c.lead_id.as_ref().and_then(|id| leads.get(id));
                let handoff = latest.get(&c.id);
                let row = vec![
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
                ];
                chunk.extend(csv_row(&row)?);
            }
            yield chunk;
            after = Some(last);
        }
    };
    csv_response("conversations.csv", rows)
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
    fn formulas_are_neutralised() {
        for formula in [
            "=HYPERLINK(\"http://x\")",
            "+1",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ] {
            assert_eq!(neutralised(formula), format!("'{formula}"));
        }
        assert_eq!(neutralised("Kim"), "Kim");
        assert_eq!(neutralised(""), "");
    }

    #[test]
    fn fields_with_commas_quotes_and_newlines_are_quoted() {
        let row = csv_row(&[
            "a,b".into(),
            "say \"hi\"".into(),
            "two\nlines".into(),
            "plain".into(),
        ])
        .expect("row");
        assert_eq!(
            String::from_utf8(row).expect("utf8"),
            "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",plain\n"
        );
    }

    #[test]
    fn enum_names_are_screaming_snake_case() {
        assert_eq!(screaming("VisitorRequested"), "VISITOR_REQUESTED");
        assert_eq!(screaming("Policy"), "POLICY");
    }
}
