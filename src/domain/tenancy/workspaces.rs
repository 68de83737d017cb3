//! Workspaces: the tenants. Created with their owner by the CLI (and the demo seed).

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use serde::Serialize;

use crate::auth::hash_password;
use crate::domain::Core;
use crate::entity::{Role, agent, now_ms, workspace};
use crate::error::{AppError, AppResult};
use crate::ids::{Kind, new_id, random_secret};

use crate::domain::core::validate;
use crate::entity::workspace::HandoffPolicy;

/// What `casefile workspace create` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWorkspace {
    pub workspace_id: String,
    pub widget_key: String,
    pub admin_id: String,
    pub admin_token: String,
}

/// Create a workspace, its public widget key and its owner.
pub async fn create(
    core: &Core,
    name: &str,
    owner_email: &str,
    owner_password: &str,
    owner_name: Option<&str>,
) -> AppResult<CreatedWorkspace> {
    let name = validate::short("name", name)?;
    let email = validate::email("adminEmail", owner_email)?;
    let password = super::agents::password("adminPassword", owner_password)?;
    let owner_name = match owner_name {
        Some(n) => validate::short("adminName", n)?,
        None => email.split('@').next().unwrap_or("owner").to_owned(),
    };
    let password_hash = hash_password(password).await?;
    let now = now_ms();
    let ws = workspace::ActiveModel {
        id: Set(new_id(Kind::Workspace)),
        name: Set(name),
        widget_key: Set(format!("wk_{}", random_secret(18))),
        responder_enabled: Set(true),
        default_team_id: Set(None),
        handoff_policy: Set("{}".to_owned()),
        created_at: Set(now),
        identity_secret: Set(None),
        require_verified_identity: Set(false),
    };
    let owner_id = new_id(Kind::Agent);
    let txn = core.db.writer.begin().await?;
    let ws = ws.insert(&txn).await?;
    agent::ActiveModel {
        id: Set(owner_id.clone()),
        workspace_id: Set(ws.id.clone()),
        email: Set(email),
        name: Set(owner_name),
        password_hash: Set(password_hash),
        role: Set(Role::Owner),
        created_at: Set(now),
        active: Set(true),
        token_generation: Set(0),
        availability: Set(crate::entity::Availability::Online),
        announced: Set(crate::entity::Availability::Offline),
        last_seen_at: Set(None),
        max_concurrent: Set(super::agents::DEFAULT_MAX_CONCURRENT),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    let token = core.tokens.issue_agent(&owner_id, &ws.id, Role::Owner, 0)?;
    Ok(CreatedWorkspace {
        workspace_id: ws.id,
        widget_key: ws.widget_key,
        admin_id: owner_id,
        admin_token: token.token,
    })
}

pub async fn get(core: &Core, workspace_id: &str) -> AppResult<workspace::Model> {
    workspace::Entity::find_by_id(workspace_id)
        .one(&core.db.reader)
        .await?
        .ok_or(AppError::NotFound("workspace"))
}

/// A workspace to show (`viewer { workspace }`), from [`crate::cache`]: up to a few
/// seconds old when another process changed it. Decisions read [`get`].
pub async fn shown(core: &Core, workspace_id: &str) -> AppResult<workspace::Model> {
    if let Some(workspace) = core.workspaces.get(workspace_id) {
        return Ok(workspace);
    }
    let workspace = get(core, workspace_id).await?;
    core.workspaces.put(workspace.id.clone(), workspace.clone());
    Ok(workspace)
}

/// The workspace a public widget key belongs to; an unknown key is `UNAUTHENTICATED`.
pub async fn by_widget_key(core: &Core, widget_key: &str) -> AppResult<workspace::Model> {
    workspace::Entity::find()
        .filter(workspace::Column::WidgetKey.eq(widget_key.trim()))
        .one(&core.db.reader)
        .await?
        .ok_or(AppError::Unauthenticated("unknown widget key"))
}

/// Store a workspace's handoff policy.
pub async fn set_policy(core: &Core, workspace_id: &str, policy: &HandoffPolicy) -> AppResult<()> {
    let workspace = get(core, workspace_id).await?;
    let mut active: workspace::ActiveModel = workspace.into();
    active.handoff_policy = Set(crate::entity::encode(policy)?);
    let workspace = active.update(&core.db.writer).await?;
    core.workspaces.put(workspace.id.clone(), workspace);
    Ok(())
}

/// Change a workspace's name, responder switch or default team.
pub async fn update(
    core: &Core,
    workspace_id: &str,
    name: Option<&str>,
    responder_enabled: Option<bool>,
    default_team_id: Option<String>,
    require_verified_identity: Option<bool>,
) -> AppResult<workspace::Model> {
    if let Some(team) = &default_team_id {
        validate::existing(
            super::teams::get(core, workspace_id, team).await,
            "defaultTeamId",
            || format!("no team {team}"),
        )?;
    }
    let workspace = get(core, workspace_id).await?;
    let mut active: workspace::ActiveModel = workspace.into();
    if let Some(name) = name {
        active.name = Set(validate::short("name", name)?);
    }
    if let Some(enabled) = responder_enabled {
        active.responder_enabled = Set(enabled);
    }
    if let Some(team) = default_team_id {
        active.default_team_id = Set(Some(team));
    }
    if let Some(required) = require_verified_identity {
        active.require_verified_identity = Set(required);
    }
    let workspace = active.update(&core.db.writer).await?;
    core.workspaces.put(workspace.id.clone(), workspace.clone());
    Ok(workspace)
}
