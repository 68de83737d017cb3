//! Leads (the people chatting) and the workspace-defined lead fields that validate
//! what is captured about them.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::{Map, Value};

use crate::auth::{AgentPrincipal, Principal};
use crate::domain::Core;
use crate::domain::core::feed::{self, Change, Event};
use crate::domain::tenancy::audit::{self, Act, By};
use crate::entity::audit_entry::AuditAction;
use crate::entity::{LeadFieldType, conversation, lead, lead_field, now_ms};
use crate::error::{AppError, AppResult};
use crate::ids::{Kind, new_id};

use crate::domain::core::validate;

/// Longest TEXT lead field value, in characters.
const MAX_FIELD_TEXT: usize = 1_000;

pub struct LeadFieldDefinition<'a> {
    pub key: &'a str,
    pub label: &'a str,
    pub kind: LeadFieldType,
    pub options: &'a [String],
    pub required: bool,
}

/// Define a lead field, or redefine the one with the same key (`admin` at
/// `address`).
pub async fn define_field(
    core: &Core,
    admin: &AgentPrincipal,
    address: std::net::IpAddr,
    def: LeadFieldDefinition<'_>,
) -> AppResult<lead_field::Model> {
    let key = validate::identifier("key", def.key)?;
    let label = validate::short("label", def.label)?;
    let options: Vec<String> = def
        .options
        .iter()
        .map(|o| validate::short("options", o))
        .collect::<AppResult<_>>()?;
    if def.kind == LeadFieldType::Select && options.is_empty() {
        return Err(AppError::bad_input(
            "options",
            "a SELECT field needs options",
        ));
    }
    let options = serde_json::to_string(&options)?;
    let txn = core.db.writer.begin().await?;
    let existing = lead_field::Entity::find()
        .filter(lead_field::Column::WorkspaceId.eq(&admin.workspace_id))
        .filter(lead_field::Column::Key.eq(&key))
        .one(&txn)
        .await?;
    let model = match existing {
        Some(field) => {
            let mut active: lead_field::ActiveModel = field.into();
            active.label = Set(label);
            active.kind = Set(def.kind);
            active.options = Set(options);
            active.required = Set(def.required);
            active.update(&txn).await?
        }
        None => {
            lead_field::ActiveModel {
                id: Set(new_id(Kind::LeadField)),
                workspace_id: Set(admin.workspace_id.clone()),
                key: Set(key),
                label: Set(label),
                kind: Set(def.kind),
                options: Set(options),
                required: Set(def.required),
                created_at: Set(now_ms()),
            }
            .insert(&txn)
            .await?
        }
    };
    let act = Act::on(AuditAction::LeadFieldDefined, "LeadField", &model.id);
    audit::record(&txn, &By::agent(admin, address), act).await?;
    txn.commit().await?;
    Ok(model)
}

pub async fn fields<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
) -> AppResult<Vec<lead_field::Model>> {
    Ok(lead_field::Entity::find()
        .filter(lead_field::Column::WorkspaceId.eq(workspace_id))
        .order_by_asc(lead_field::Column::Id)
        .all(conn)
        .await?)
}

/// What a client may say about a lead; absent values leave stored ones alone.
#[derive(Clone, Debug, Default)]
pub struct LeadInput {
    pub name: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    /// Custom field values by key; `null` clears a value.
    pub fields: Option<Value>,
}

impl LeadInput {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.email.is_none()
            && self.company.is_none()
            && self.fields.is_none()
    }
}

/// Parse one custom field value against its definition.
pub fn parse_field_value(def: &lead_field::Model, value: &Value) -> AppResult<Value> {
    let field = format!("fields.{}", def.key);
    let as_str = || value.as_str().map(str::trim);
    let parsed = match def.kind {
        LeadFieldType::Text => match value {
            Value::String(s) => Value::String(validate::text(&field, s, MAX_FIELD_TEXT)?),
            Value::Number(n) => Value::String(n.to_string()),
            _ => return Err(AppError::bad_input(field, "expected text")),
        },
        LeadFieldType::Number => match value {
            Value::Number(n) => Value::Number(n.clone()),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| AppError::bad_input(&field, "expected a number"))?,
            _ => return Err(AppError::bad_input(field, "expected a number")),
        },
        LeadFieldType::Boolean => match (value, as_str()) {
            (Value::Bool(b), _) => Value::Bool(*b),
            (_, Some("true")) => Value::Bool(true),
            (_, Some("false")) => Value::Bool(false),
            _ => return Err(AppError::bad_input(field, "expected true or false")),
        },
        LeadFieldType::Url => match as_str() {
            Some(s) => Value::String(validate::url(&field, s)?),
            None => return Err(AppError::bad_input(field, "expected a URL")),
        },
        LeadFieldType::Email => match as_str() {
            Some(s) => Value::String(validate::email(&field, s)?),
            None => return Err(AppError::bad_input(field, "expected an email address")),
        },
        LeadFieldType::Select => {
            let options = def.options()?;
            match as_str() {
                Some(s) if options.iter().any(|o| o == s) => Value::String(s.to_owned()),
                _ => {
                    return Err(AppError::bad_input(
                        field,
                        format!("expected one of: {}", options.join(", ")),
                    ));
                }
            }
        }
    };
    Ok(parsed)
}

/// Merge `input` into `current` custom field values, validating each.
fn merge_fields(
    defs: &[lead_field::Model],
    current: Option<&lead::Model>,
    input: Option<&Value>,
) -> AppResult<Map<String, Value>> {
    let mut merged = match current {
        Some(lead) => lead.fields()?,
        None => Map::new(),
    };
    let Some(input) = input else {
        return Ok(merged);
    };
    let Value::Object(values) = input else {
        return Err(AppError::bad_input("fields", "must be a JSON object"));
    };
    for (key, value) in values {
        let def = defs
            .iter()
            .find(|d| &d.key == key)
            .ok_or_else(|| AppError::bad_input(format!("fields.{key}"), "no such lead field"))?;
        if value.is_null() {
            merged.remove(key);
        } else {
            merged.insert(key.clone(), parse_field_value(def, value)?);
        }
    }
    Ok(merged)
}

/// The lead after applying `input` to `current` (or to a new lead).
fn apply(
    defs: &[lead_field::Model],
    current: Option<lead::Model>,
    workspace_id: &str,
    visitor_id: Option<&str>,
    input: &LeadInput,
    enforce_required: bool,
) -> AppResult<lead::ActiveModel> {
    let now = now_ms();
    let fields = merge_fields(defs, current.as_ref(), input.fields.as_ref())?;
    let missing = defs
        .iter()
        .find(|d| d.required && !fields.contains_key(&d.key));
    if let (true, Some(missing)) = (enforce_required, missing) {
        return Err(AppError::bad_input(
            format!("fields.{}", missing.key),
            "is required",
        ));
    }
    let mut active = match current {
        Some(existing) => existing.into(),
        None => lead::ActiveModel {
            id: Set(new_id(Kind::Lead)),
            workspace_id: Set(workspace_id.to_owned()),
            visitor_id: Set(visitor_id.map(str::to_owned)),
            name: Set(None),
            email: Set(None),
            company: Set(None),
            fields: Set("{}".to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
            verified: Set(false),
            erased_at: Set(None),
        },
    };
    if let Some(name) = &input.name {
        active.name = Set(validate::optional_short("name", Some(name))?);
    }
    if let Some(email) = input.email.as_deref().map(str::trim) {
        active.email = Set(if email.is_empty() {
            None
        } else {
            Some(validate::email("email", email)?)
        });
    }
    if let Some(company) = &input.company {
        active.company = Set(validate::optional_short("company", Some(company))?);
    }
    active.fields = Set(serde_json::to_string(&fields)?);
    active.updated_at = Set(now);
    Ok(active)
}

/// The newest lead of `visitor_id`, if any.
async fn of_visitor<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    visitor_id: &str,
) -> AppResult<Option<lead::Model>> {
    Ok(lead::Entity::find()
        .filter(lead::Column::WorkspaceId.eq(workspace_id))
        .filter(lead::Column::VisitorId.eq(visitor_id))
        .order_by_desc(lead::Column::Id)
        .one(conn)
        .await?)
}

/// The lead of a verified visitor (see `identity`), made if absent, updated with
/// `input` (the identity's email and name in it) and marked verified.
pub async fn for_verified_visitor<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    visitor_id: &str,
    input: &LeadInput,
) -> AppResult<lead::Model> {
    let current = of_visitor(conn, workspace_id, visitor_id).await?;
    let defs = fields(conn, workspace_id).await?;
    let is_new = current.is_none();
    let mut active = apply(&defs, current, workspace_id, Some(visitor_id), input, false)?;
    active.verified = Set(true);
    Ok(if is_new {
        active.insert(conn).await?
    } else {
        active.update(conn).await?
    })
}

/// The lead of a returning visitor, updated with `input`; a new lead when there is
/// none and `input` says something; else `None`. Types are checked, required fields
/// are not: a chat may start before the lead form is filled in.
pub async fn for_visitor<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    visitor_id: &str,
    input: &LeadInput,
) -> AppResult<Option<lead::Model>> {
    let current = of_visitor(conn, workspace_id, visitor_id).await?;
    if input.is_empty() {
        return Ok(current);
    }
    let defs = fields(conn, workspace_id).await?;
    let is_new = current.is_none();
    let active = apply(&defs, current, workspace_id, Some(visitor_id), input, false)?;
    Ok(Some(if is_new {
        active.insert(conn).await?
    } else {
        active.update(conn).await?
    }))
}

/// Capture lead details in a conversation (the widget's lead form, or an agent):
/// every value is validated against the lead fields, and required fields must be
/// present once this capture is applied.
pub async fn capture(
    core: &Core,
    principal: &Principal,
    conversation_id: &str,
    input: &LeadInput,
) -> AppResult<lead::Model> {
    core.rate.visitor_write(principal)?;
    let ws = principal.workspace_id();
    let conv = super::conversations::get(core, principal, conversation_id).await?;
    let txn = core.db.writer.begin().await?;
    let defs = fields(&txn, ws).await?;
    let current = match &conv.lead_id {
        Some(id) => lead::Entity::find_by_id(id.as_str()).one(&txn).await?,
        None => None,
    };
    // A verified email or name is the site's word: a visitor cannot overwrite it.
    if let Some(verified) = current.as_ref().filter(|lead| lead.verified)
        && principal.visitor().is_some()
    {
        let changes = |given: &Option<String>, now: &Option<String>| {
            given.as_deref().is_some_and(|given| {
                !now.as_deref()
                    .is_some_and(|now| given.trim().eq_ignore_ascii_case(now))
            })
        };
        if changes(&input.email, &verified.email) || changes(&input.name, &verified.name) {
            return Err(AppError::forbidden(
                "this email and name were verified by the site you are signed in to",
            ));
        }
    }
    let is_new = current.is_none();
    let active = apply(&defs, current, ws, Some(&conv.visitor_id), input, true)?;
    let lead = if is_new {
        active.insert(&txn).await?
    } else {
        active.update(&txn).await?
    };
    let mut active: conversation::ActiveModel = conv.into();
    active.lead_id = Set(Some(lead.id.clone()));
    active.updated_at = Set(now_ms());
    let conv = active.update(&txn).await?;
    feed::commit(
        core,
        txn,
        &[Event::conversation_changed(conv, Change::Lead)],
    )
    .await?;
    Ok(lead)
}

/// A lead by id; a visitor may read only the lead of its own conversation.
pub async fn get(core: &Core, principal: &Principal, id: &str) -> AppResult<lead::Model> {
    let lead = lead::Entity::find_by_id(id)
        .filter(lead::Column::WorkspaceId.eq(principal.workspace_id()))
        .one(&core.db.reader)
        .await?
        .ok_or(AppError::NotFound("lead"))?;
    if let Principal::ApiKey(_) = principal {
        principal.require(crate::auth::Scope::LeadsRead)?;
    }
    if let Principal::Visitor(visitor) = principal {
        let conv = super::conversations::get(core, principal, &visitor.conversation_id).await?;
        if conv.lead_id.as_deref() != Some(id) {
            return Err(AppError::NotFound("lead"));
        }
    }
    Ok(lead)
}

#[derive(Clone, Debug, Default)]
pub struct LeadFilter {
    pub email: Option<String>,
    /// Case-insensitive substring of name, email or company.
    pub query: Option<String>,
    pub created_after: Option<i64>,
}

impl LeadFilter {
    /// The workspace's leads that match, erased ones left out (nothing of them is
    /// left to list).
    fn apply(&self, workspace_id: &str) -> sea_orm::Select<lead::Entity> {
        let mut select = lead::Entity::find()
            .filter(lead::Column::WorkspaceId.eq(workspace_id))
            .filter(lead::Column::ErasedAt.is_null());
        if let Some(email) = &self.email {
            select = select.filter(lead::Column::Email.eq(email.trim().to_lowercase()));
        }
        if let Some(q) = self
            .query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
        {
            use sea_orm::sea_query::{Expr, ExprTrait, Func};
            let pattern = format!("%{}%", q.to_lowercase());
            let like =
                |col: lead::Column| Expr::expr(Func::lower(Expr::col(col))).like(pattern.clone());
            select = select.filter(
                like(lead::Column::Name)
                    .or(like(lead::Column::Email))
                    .or(like(lead::Column::Company)),
            );
        }
        if let Some(after) = self.created_after {
            select = select.filter(lead::Column::CreatedAt.gt(after));
        }
        select
    }
}

/// One page of leads, newest first, after the lead with id `after`.
pub async fn page(
    core: &Core,
    workspace_id: &str,
    filter: &LeadFilter,
    after: Option<&str>,
    limit: u64,
) -> AppResult<Vec<lead::Model>> {
    let mut select = filter.apply(workspace_id);
    if let Some(after) = after {
        select = select.filter(lead::Column::Id.lt(after));
    }
    Ok(select
        .order_by_desc(lead::Column::Id)
        .limit(limit)
        .all(&core.db.reader)
        .await?)
}

pub async fn count(core: &Core, workspace_id: &str, filter: &LeadFilter) -> AppResult<u64> {
    Ok(filter.apply(workspace_id).count(&core.db.reader).await?)
}

/// The email of a lead, if it has one.
pub async fn email_of(core: &Core, lead_id: &str) -> AppResult<Option<String>> {
    Ok(lead::Entity::find_by_id(lead_id)
        .one(&core.db.reader)
        .await?
        .and_then(|lead| lead.email))
}
