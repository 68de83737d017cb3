//! Leads, the lead fields that shape them, and capturing lead details.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Json, Object};

use crate::domain;
use crate::domain::chat::leads::{LeadFieldDefinition, LeadFilter};
use crate::entity::{LeadFieldType, lead, lead_field};

use super::pagination::{Page, TotalCount, decode_cursor, page, page_size};
use super::{ContextExt, timestamp};

/// A person chatting, with what they told us.
pub struct Lead(pub Arc<lead::Model>);

impl From<lead::Model> for Lead {
    fn from(lead: lead::Model) -> Self {
        Lead(Arc::new(lead))
    }
}

#[Object]
impl Lead {
    /// Its email and name came in an identity token your site signed
    /// (`StartConversationInput.identityToken`), not from what the visitor typed.
    async fn verified(&self) -> bool {
        self.0.verified
    }

    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    async fn company(&self) -> Option<&str> {
        self.0.company.as_deref()
    }

    /// Values of the workspace's lead fields, by key (e.g. `{"cms": "WordPress"}`).
    async fn fields(
        &self,
    ) -> async_graphql::Result<Json<serde_json::Map<String, serde_json::Value>>> {
        Ok(Json(self.0.fields()?))
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }

    async fn updated_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.updated_at)
    }

    /// When this person's data was erased (`eraseContact`, or the workspace's
    /// `retentionDays`): name, email, company and fields are gone; `null` if not.
    async fn erased_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.erased_at.map(timestamp)
    }
}

/// A custom lead field the workspace defined; captured values are validated by it.
pub struct LeadField(pub lead_field::Model);

#[Object]
impl LeadField {
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// The key in `Lead.fields`.
    async fn key(&self) -> &str {
        &self.0.key
    }

    /// What the lead form shows.
    async fn label(&self) -> &str {
        &self.0.label
    }

    #[graphql(name = "type")]
    async fn kind(&self) -> LeadFieldType {
        self.0.kind
    }

    /// The allowed values of a `SELECT` field.
    async fn options(&self) -> async_graphql::Result<Vec<String>> {
        Ok(self.0.options()?)
    }

    /// Whether `captureLead` insists on a value.
    async fn required(&self) -> bool {
        self.0.required
    }
}

/// Lead details. Absent fields leave stored values alone.
#[derive(InputObject, Default)]
pub struct LeadInput {
    pub name: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    /// Lead field values by key; `null` clears one.
    pub fields: Option<Json<serde_json::Value>>,
}

impl From<LeadInput> for domain::chat::leads::LeadInput {
    fn from(input: LeadInput) -> Self {
        domain::chat::leads::LeadInput {
            name: input.name,
            email: input.email,
            company: input.company,
            fields: input.fields.map(|json| json.0),
        }
    }
}

#[derive(InputObject, Default)]
pub struct LeadFilterInput {
    pub email: Option<String>,
    /// Part of the name, email or company (case-insensitive).
    pub query: Option<String>,
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(InputObject)]
pub struct DefineLeadFieldInput {
    /// Letters, digits, `-` and `_`, starting with a letter.
    pub key: String,
    pub label: String,
    #[graphql(name = "type")]
    pub kind: LeadFieldType,
    /// The allowed values of a `SELECT` field.
    #[graphql(default)]
    pub options: Vec<String>,
    #[graphql(default)]
    pub required: bool,
}

#[derive(Default)]
pub struct LeadQuery;

#[Object]
impl LeadQuery {
    /// Everything stored about one lead, as one JSON document (`format:
    /// "casefile.contact.v1"`), for a person's access request: the lead with its
    /// custom fields, and each of its conversations with every message the visitor
    /// could see, the rating, the visitor's feedback on answers and the handoffs'
    /// visitor-facing parts. Owners and admins, and API keys with both
    /// `LEADS_READ` and `CONVERSATIONS_READ`.
    async fn export_contact(
        &self,
        ctx: &Context<'_>,
        lead_id: ID,
    ) -> async_graphql::Result<async_graphql::Json<serde_json::Value>> {
        let document = domain::outbound::contact::export(
            ctx.core(),
            ctx.principal()?,
            ctx.client_ip(),
            &lead_id,
        )
        .await?;
        Ok(async_graphql::Json(document))
    }

    /// A lead by id. A visitor can read only its own.
    async fn lead(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Lead> {
        Ok(Lead::from(
            domain::chat::leads::get(ctx.core(), ctx.principal()?, &id).await?,
        ))
    }

    /// The workspace's leads, newest first.
    async fn leads(
        &self,
        ctx: &Context<'_>,
        filter: Option<LeadFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Page<Lead>> {
        let principal = ctx.principal()?;
        principal.require(crate::auth::Scope::LeadsRead)?;
        let limit = page_size(first)?;
        let after = after.as_deref().map(decode_cursor).transpose()?;
        let filter = filter.unwrap_or_default();
        let filter = LeadFilter {
            email: filter.email,
            query: filter.query,
            created_after: filter.created_after.map(|t| t.timestamp_millis()),
        };
        let core = ctx.core().clone();
        let ws = principal.workspace_id().to_owned();
        let rows =
            domain::chat::leads::page(&core, &ws, &filter, after.as_deref(), limit + 1).await?;
        let total = TotalCount::new(move || {
            let (core, ws, filter) = (core.clone(), ws.clone(), filter.clone());
            async move { domain::chat::leads::count(&core, &ws, &filter).await }
        });
        Ok(page(rows, limit, |l| l.id.clone(), Lead::from, total))
    }

    /// The workspace's lead fields, in the order they were defined. Visitors can
    /// read them to build the lead form.
    async fn lead_fields(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<LeadField>> {
        let principal = ctx.principal()?;
        let fields =
            domain::chat::leads::fields(&ctx.core().db.reader, principal.workspace_id()).await?;
        Ok(fields.into_iter().map(LeadField).collect())
    }
}

/// What `eraseContact` erased.
#[derive(async_graphql::SimpleObject)]
pub struct EraseContactPayload {
    /// The lead, now without details (`erasedAt` set).
    pub lead: Lead,
    /// Conversations erased: the lead's and its visitor's.
    pub conversations: i32,
    /// Messages whose text is now `[erased]`.
    pub messages: i32,
}

#[derive(Default)]
pub struct LeadMutation;

#[Object]
impl LeadMutation {
    /// Record what the visitor told us in a conversation (the widget's lead form, or
    /// an agent). Values are validated against the lead fields; a bad or missing
    /// required value is `BAD_USER_INPUT` with `extensions.field` naming it.
    async fn capture_lead(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        input: LeadInput,
    ) -> async_graphql::Result<Lead> {
        let principal = ctx.principal()?;
        let lead =
            domain::chat::leads::capture(ctx.core(), principal, &conversation_id, &input.into())
                .await?;
        Ok(Lead::from(lead))
    }

    /// Erase everything stored about one person (a GDPR erasure request), in one
    /// transaction: the lead's name, email, company, custom fields and identity
    /// binding; in each of its conversations every message's text (visitor's,
    /// agents' and the AI's) becomes `[erased]`, and the widget's context, rating
    /// and feedback comments, answer flags' reasons, handoff notes and tag
    /// evidence go; the event log's copies are rewritten the same way. Counts,
    /// statuses, tags and handoff times stay for insights. Emits `CONTACT_ERASED`
    /// (ids only) for webhooks, and is recorded in the audit log. Owners and admins
    /// only; it cannot be undone.
    async fn erase_contact(
        &self,
        ctx: &Context<'_>,
        lead_id: ID,
    ) -> async_graphql::Result<EraseContactPayload> {
        let erased = domain::outbound::erasure::erase_contact(
            ctx.core(),
            ctx.principal()?,
            ctx.client_ip(),
            &lead_id,
        )
        .await?;
        Ok(EraseContactPayload {
            lead: Lead::from(erased.lead),
            conversations: i32::try_from(erased.conversations).unwrap_or(i32::MAX),
            messages: i32::try_from(erased.messages).unwrap_or(i32::MAX),
        })
    }

    /// Define a lead field, or redefine the one with the same key. Owners and
    /// admins only.
    async fn define_lead_field(
        &self,
        ctx: &Context<'_>,
        input: DefineLeadFieldInput,
    ) -> async_graphql::Result<LeadField> {
        let admin = ctx.principal()?.admin()?;
        let field = domain::chat::leads::define_field(
            ctx.core(),
            admin,
            ctx.client_ip(),
            LeadFieldDefinition {
                key: &input.key,
                label: &input.label,
                kind: input.kind,
                options: &input.options,
                required: input.required,
            },
        )
        .await?;
        Ok(LeadField(field))
    }
}
