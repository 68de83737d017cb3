//! Webhooks: owners and admins register URLs, with the event types, teams and
//! tags they want, and a signing secret shown once (rotated with an overlap). What
//! delivers them is `delivery`.

use crate::db::seal::{WEBHOOK_PREVIOUS_SECRET, WEBHOOK_SECRET};
use std::net::IpAddr;
use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};

use crate::auth::AgentPrincipal;
use crate::domain::Core;
use crate::domain::tenancy::audit::{self, Act, By};
use crate::entity::audit_entry::AuditAction;
use crate::entity::{now_ms, webhook, webhook_delivery};
use crate::error::{AppError, AppResult};
use crate::events::{self};
use crate::ids::{Kind, new_id};
use crate::webhooks::{Secret, check_url, is_public};

/// How long the secret before a rotation keeps signing beside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);

/// What an owner or admin sets on a webhook; absent fields stay as they are.
#[derive(Default)]
pub struct WebhookInput {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub team_ids: Option<Vec<String>>,
    pub tag_ids: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

impl WebhookInput {
    /// The names of the fields it changes, as the schema spells them.
    fn fields(&self) -> Vec<&'static str> {
        audit::given(&[
            ("url", self.url.is_some()),
            ("description", self.description.is_some()),
            ("eventTypes", self.event_types.is_some()),
            ("teamIds", self.team_ids.is_some()),
            ("tagIds", self.tag_ids.is_some()),
            ("enabled", self.enabled.is_some()),
        ])
    }
}

/// Refuse teams and tags that are not the workspace's (they would match nothing).
async fn check_filters(core: &Core, workspace_id: &str, input: &WebhookInput) -> AppResult<()> {
    if let Some(teams) = &input.team_ids {
        crate::domain::tenancy::teams::existing(core, workspace_id, teams, "teamIds").await?;
    }
    for tag in input.tag_ids.iter().flatten() {
        crate::domain::core::validate::existing(
            crate::domain::knowledge::tags::get(core, workspace_id, tag).await,
            "tagIds",
            || format!("no tag {tag}"),
        )?;
    }
    Ok(())
}

/// Record `act` by `admin` at `address` in `txn`, and commit it.
async fn audited(
    txn: DatabaseTransaction,
    admin: &AgentPrincipal,
    address: IpAddr,
    act: Act<'_>,
) -> AppResult<()> {
    audit::record(&txn, &By::agent(admin, address), act).await?;
    txn.commit().await?;
    Ok(())
}

fn json_list(list: &[String]) -> AppResult<String> {
    Ok(serde_json::to_string(list)?)
}

/// `url` if a webhook may be sent there: http(s), and not to a private, loopback
/// or link-local address (unless allowed). A name that resolves only to such
/// addresses now is refused at once; every delivery checks the addresses again
/// (a name may change what it resolves to), and a name that does not resolve now
/// is let through to fail, visibly, at delivery.
async fn checked_url(core: &Core, url: &str) -> AppResult<String> {
    let allow_private = core.config.webhook_allow_private;
    let parsed =
        check_url(url, allow_private).map_err(|message| AppError::bad_input("url", message))?;
    if let (false, Some(host), Some(port)) = (
        allow_private,
        parsed.host_str(),
        parsed.port_or_known_default(),
    ) && let Ok(addresses) = tokio::net::lookup_host((host, port)).await
    {
        let addresses: Vec<_> = addresses.collect();
        if !addresses.is_empty() && !addresses.iter().any(|a| is_public(a.ip())) {
            return Err(AppError::bad_input(
                "url",
                format!("{host} resolves only to private, loopback or link-local addresses"),
            ));
        }
    }
    Ok(parsed.to_string())
}

/// Register a webhook (`admin` at `address`); it and its signing secret, shown
/// this once. It receives what happens from now on.
pub async fn create(
    core: &Core,
    admin: &AgentPrincipal,
    address: IpAddr,
    input: WebhookInput,
) -> AppResult<(webhook::Model, String)> {
    let fields = input.fields();
    check_filters(core, &admin.workspace_id, &input).await?;
    let url = checked_url(core, input.url.as_deref().unwrap_or_default()).await?;
    let secret = Secret::generate().encoded();
    let start = events::newest(&core.db).await?;
    let now = now_ms();
    let model = webhook::ActiveModel {
        id: Set(new_id(Kind::Webhook)),
        workspace_id: Set(admin.workspace_id.clone()),
        url: Set(url),
        description: Set(input.description),
        event_types: Set(json_list(&input.event_types.unwrap_or_default())?),
        team_ids: Set(json_list(&input.team_ids.unwrap_or_default())?),
        tag_ids: Set(json_list(&input.tag_ids.unwrap_or_default())?),
        secret: Set(core.db.sealer.seal(WEBHOOK_SECRET, &secret)),
        previous_secret: Set(None),
        previous_secret_expires_at: Set(None),
        enabled: Set(input.enabled.unwrap_or(true)),
        disabled_reason: Set(None),
        cursor_tx: Set(start.tx),
        cursor_pos: Set(start.pos),
        failing_since: Set(None),
        attempts: Set(0),
        next_attempt_at: Set(0),
        lease_owner: Set(None),
        lease_until: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let txn = core.db.writer.begin().await?;
    let model = model.insert(&txn).await?;
    let act = Act::on(AuditAction::WebhookCreated, "Webhook", &model.id).changing(fields);
    audited(txn, admin, address, act).await?;
    Ok((model, secret))
}

pub async fn get(core: &Core, workspace_id: &str, id: &str) -> AppResult<webhook::Model> {
    webhook::Entity::find_by_id(id)
        .filter(webhook::Column::WorkspaceId.eq(workspace_id))
        .one(&core.db.writer)
        .await?
        .ok_or(AppError::NotFound("webhook"))
}

pub async fn list(core: &Core, workspace_id: &str) -> AppResult<Vec<webhook::Model>> {
    Ok(webhook::Entity::find()
        .filter(webhook::Column::WorkspaceId.eq(workspace_id))
        .order_by_asc(webhook::Column::Id)
        .all(&core.db.reader)
        .await?)
}

/// Change a webhook (`admin` at `address`). Enabling a disabled one resumes
/// delivery where it stopped.
pub async fn update(
    core: &Core,
    admin: &AgentPrincipal,
    address: IpAddr,
    id: &str,
    input: WebhookInput,
) -> AppResult<webhook::Model> {
    let fields = input.fields();
    let current = get(core, &admin.workspace_id, id).await?;
    check_filters(core, &admin.workspace_id, &input).await?;
    let was_enabled = current.enabled;
    let mut active: webhook::ActiveModel = current.into();
    if let Some(url) = &input.url {
        active.url = Set(checked_url(core, url).await?);
    }
    if let Some(description) = input.description {
        active.description = Set(Some(description));
    }
    if let Some(types) = &input.event_types {
        active.event_types = Set(json_list(types)?);
    }
    if let Some(teams) = &input.team_ids {
        active.team_ids = Set(json_list(teams)?);
    }
    if let Some(tags) = &input.tag_ids {
        active.tag_ids = Set(json_list(tags)?);
    }
    if let Some(enabled) = input.enabled {
        active.enabled = Set(enabled);
        if enabled && !was_enabled {
            active.disabled_reason = Set(None);
            active.failing_since = Set(None);
            active.attempts = Set(0);
            active.next_attempt_at = Set(0);
        }
    }
    active.updated_at = Set(now_ms());
    let txn = core.db.writer.begin().await?;
    let webhook = active.update(&txn).await?;
    let act = Act::on(AuditAction::WebhookUpdated, "Webhook", id).changing(fields);
    audited(txn, admin, address, act).await?;
    Ok(webhook)
}

/// Remove a webhook and its deliveries' record (`admin` at `address`).
pub async fn delete(
    core: &Core,
    admin: &AgentPrincipal,
    address: IpAddr,
    id: &str,
) -> AppResult<()> {
    let webhook = get(core, &admin.workspace_id, id).await?;
    let txn = core.db.writer.begin().await?;
    webhook::Entity::delete_by_id(webhook.id).exec(&txn).await?;
    audited(
        txn,
        admin,
        address,
        Act::on(AuditAction::WebhookDeleted, "Webhook", id),
    )
    .await
}

/// A new signing secret; the old one keeps signing beside it for
/// [`ROTATION_OVERLAP`], so receivers can switch without losing a delivery. By
/// `admin` at `address`.
pub async fn rotate_secret(
    core: &Core,
    admin: &AgentPrincipal,
    address: IpAddr,
    id: &str,
) -> AppResult<(webhook::Model, String)> {
    let current = get(core, &admin.workspace_id, id).await?;
    let secret = Secret::generate().encoded();
    let sealer = &core.db.sealer;
    let old = sealer.open(WEBHOOK_SECRET, &current.secret)?;
    let mut active: webhook::ActiveModel = current.into();
    active.previous_secret = Set(Some(sealer.seal(WEBHOOK_PREVIOUS_SECRET, &old)));
    active.previous_secret_expires_at = Set(Some(now_ms() + ROTATION_OVERLAP.as_millis() as i64));
    active.secret = Set(sealer.seal(WEBHOOK_SECRET, &secret));
    active.updated_at = Set(now_ms());
    let txn = core.db.writer.begin().await?;
    let webhook = active.update(&txn).await?;
    let act = Act::on(AuditAction::WebhookSecretRotated, "Webhook", id);
    audited(txn, admin, address, act).await?;
    Ok((webhook, secret))
}

/// Up to `first` (1 to 100) attempts of a webhook, newest first, before `before`
/// (an attempt id) when given.
pub async fn deliveries(
    core: &Core,
    workspace_id: &str,
    webhook_id: &str,
    before: Option<&str>,
    first: i32,
) -> AppResult<Vec<webhook_delivery::Model>> {
    let limit = u64::try_from(first)
        .ok()
        .filter(|n| (1..=100).contains(n))
        .ok_or_else(|| AppError::bad_input("first", "must be between 1 and 100"))?;
    get(core, workspace_id, webhook_id).await?;
    let mut select =
        webhook_delivery::Entity::find().filter(webhook_delivery::Column::WebhookId.eq(webhook_id));
    if let Some(before) = before {
        select = select.filter(webhook_delivery::Column::Id.lt(before));
    }
    Ok(select
        .order_by_desc(webhook_delivery::Column::Id)
        .limit(limit)
        .all(&core.db.reader)
        .await?)
}
