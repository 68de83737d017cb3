//! Webhooks: the event log delivered to a URL, signed as Standard Webhooks. For
//! owners and admins.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use crate::domain;
use crate::domain::outbound::webhooks::WebhookInput;
use crate::entity::{webhook, webhook_delivery};

use super::events::EventType;
use super::{ContextExt, timestamp};

/// Where a workspace's events are delivered.
pub struct Webhook(webhook::Model);

#[Object]
impl Webhook {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn url(&self) -> &str {
        &self.0.url
    }

    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// The types delivered; empty: every type.
    async fn event_types(&self) -> async_graphql::Result<Vec<EventType>> {
        Ok(self
            .0
            .event_types()?
            .iter()
            .filter_map(|t| EventType::of(t))
            .collect())
    }

    /// Only events of conversations routed to these teams (or carrying `tagIds`);
    /// both empty: every conversation.
    async fn team_ids(&self) -> async_graphql::Result<Vec<ID>> {
        Ok(self.0.team_ids()?.into_iter().map(ID).collect())
    }

    async fn tag_ids(&self) -> async_graphql::Result<Vec<ID>> {
        Ok(self.0.tag_ids()?.into_iter().map(ID).collect())
    }

    /// `false` once it failed for the whole retry window, or when turned off.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// Why it was disabled, if it was.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }

    /// The cursor of the last event it has been delivered up to.
    async fn cursor(&self) -> String {
        crate::events::Cursor {
            tx: self.0.cursor_tx,
            pos: self.0.cursor_pos,
        }
        .encode()
    }

    /// Failed attempts at the event it is stuck on (0 when healthy).
    async fn failed_attempts(&self) -> i32 {
        self.0.attempts
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }
}

/// A webhook with its signing secret, shown this once (on creation and rotation).
#[derive(SimpleObject)]
pub struct WebhookWithSecret {
    webhook: Webhook,
    /// `whsec_…`: verify each delivery's `webhook-signature` with it.
    secret: String,
}

/// One attempt to deliver one event.
pub struct WebhookDelivery(webhook_delivery::Model);

#[Object]
impl WebhookDelivery {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// The event delivered (its `webhook-id`).
    async fn event_id(&self) -> ID {
        ID(self.0.event_id.clone())
    }

    async fn event_type(&self) -> Option<EventType> {
        EventType::of(&self.0.event_type)
    }

    /// 1 for the first attempt at this event, then 2, 3, …
    async fn attempt(&self) -> i32 {
        self.0.attempt
    }

    /// `SUCCEEDED` (a 2xx within 10 s) or `FAILED`.
    async fn status(&self) -> &'static str {
        if self.0.succeeded {
            "SUCCEEDED"
        } else {
            "FAILED"
        }
    }

    /// The receiver's HTTP status, if it answered.
    async fn response_code(&self) -> Option<i32> {
        self.0.response_code
    }

    async fn latency_ms(&self) -> i64 {
        self.0.latency_ms
    }

    /// What went wrong, when it did without a status (timeout, refused, …).
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }

    async fn attempted_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }
}

#[derive(InputObject)]
pub struct CreateWebhookInput {
    /// `https://…` (or `http://`); private and loopback addresses are refused unless
    /// the server allows them (`CASEFILE_WEBHOOK_ALLOW_PRIVATE`).
    pub url: String,
    /// The types to deliver; omitted or empty: every type.
    pub event_types: Option<Vec<EventType>>,
    /// Only conversations routed to these teams (or carrying `tagIds`).
    pub team_ids: Option<Vec<ID>>,
    pub tag_ids: Option<Vec<ID>>,
    pub description: Option<String>,
}

/// Changes to a webhook; absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateWebhookInput {
    pub webhook_id: ID,
    pub url: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub team_ids: Option<Vec<ID>>,
    pub tag_ids: Option<Vec<ID>>,
    pub description: Option<String>,
    /// `true` re-enables a disabled webhook: delivery resumes where it stopped.
    pub enabled: Option<bool>,
}

fn names(types: Option<Vec<EventType>>) -> Option<Vec<String>> {
    types.map(|types| types.into_iter().map(|t| t.as_str().to_owned()).collect())
}

fn ids(ids: Option<Vec<ID>>) -> Option<Vec<String>> {
    ids.map(|ids| ids.into_iter().map(|id| id.0).collect())
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// The workspace's webhooks (owners and admins).
    async fn webhooks(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Webhook>> {
        let admin = ctx.principal()?.admin()?;
        let list = domain::outbound::webhooks::list(ctx.core(), &admin.workspace_id).await?;
        Ok(list.into_iter().map(Webhook).collect())
    }

    /// A webhook's delivery attempts, newest first (owners and admins). Page with
    /// `after`: the `id` of the last attempt you have. Failures show at once;
    /// successes are recorded a few at a time, within a fraction of a second.
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        webhook_id: ID,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<ID>,
    ) -> async_graphql::Result<Vec<WebhookDelivery>> {
        let admin = ctx.principal()?.admin()?;
        let list = domain::outbound::webhooks::deliveries(
            ctx.core(),
            &admin.workspace_id,
            &webhook_id,
            after.as_ref().map(|id| id.0.as_str()),
            first.unwrap_or(20),
        )
        .await?;
        Ok(list.into_iter().map(WebhookDelivery).collect())
    }
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Deliver the workspace's events to `url` from now on (owners and admins). The
    /// answer holds the signing secret, shown this once.
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookInput,
    ) -> async_graphql::Result<WebhookWithSecret> {
        let admin = ctx.principal()?.admin()?;
        let (webhook, secret) = domain::outbound::webhooks::create(
            ctx.core(),
            admin,
            ctx.client_ip(),
            WebhookInput {
                url: Some(input.url),
                description: input.description,
                event_types: names(input.event_types),
                team_ids: ids(input.team_ids),
                tag_ids: ids(input.tag_ids),
                enabled: None,
            },
        )
        .await?;
        Ok(WebhookWithSecret {
            webhook: Webhook(webhook),
            secret,
        })
    }

    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        input: UpdateWebhookInput,
    ) -> async_graphql::Result<Webhook> {
        let admin = ctx.principal()?.admin()?;
        let webhook = domain::outbound::webhooks::update(
            ctx.core(),
            admin,
            ctx.client_ip(),
            &input.webhook_id,
            WebhookInput {
                url: input.url,
                description: input.description,
                event_types: names(input.event_types),
                team_ids: ids(input.team_ids),
                tag_ids: ids(input.tag_ids),
                enabled: input.enabled,
            },
        )
        .await?;
        Ok(Webhook(webhook))
    }

    async fn delete_webhook(
        &self,
        ctx: &Context<'_>,
        webhook_id: ID,
    ) -> async_graphql::Result<bool> {
        let admin = ctx.principal()?.admin()?;
        domain::outbound::webhooks::delete(ctx.core(), admin, ctx.client_ip(), &webhook_id).await?;
        Ok(true)
    }

    /// A new signing secret, shown this once; the old one keeps signing beside it
    /// (two `v1,` signatures) for 24 hours.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        webhook_id: ID,
    ) -> async_graphql::Result<WebhookWithSecret> {
        let admin = ctx.principal()?.admin()?;
        let (webhook, secret) = domain::outbound::webhooks::rotate_secret(
            ctx.core(),
            admin,
            ctx.client_ip(),
            &webhook_id,
        )
        .await?;
        Ok(WebhookWithSecret {
            webhook: Webhook(webhook),
            secret,
        })
    }
}
