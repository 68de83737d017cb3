//! Workspaces: the tenants. Created with their owner by the CLI (and the demo seed).

use std::net::IpAddr;

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use serde::Serialize;

use super::audit::{self, Act, By};
use crate::auth::{AgentPrincipal, hash_password};
use crate::domain::Core;
use crate::entity::audit_entry::AuditAction;
use crate::entity::{AnswerEngine, Role, agent, now_ms, workspace};
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
        answer_engine: Set(None),
        answer_instructions: Set(String::new()),
        model_daily_token_limit: Set(None),
        retention_days: Set(None),
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

/// Store a workspace's handoff policy, changed by `by` in `fields`.
pub async fn set_policy(
    core: &Core,
    workspace_id: &str,
    policy: &HandoffPolicy,
    by: &By,
    fields: Vec<&'static str>,
) -> AppResult<()> {
    let workspace = get(core, workspace_id).await?;
    let mut active: workspace::ActiveModel = workspace.into();
    active.handoff_policy = Set(crate::entity::encode(policy)?);
    let txn = core.db.writer.begin().await?;
    let workspace = active.update(&txn).await?;
    audit::record(
        &txn,
        by,
        Act::on(AuditAction::HandoffPolicyUpdated, "Workspace", workspace_id).changing(fields),
    )
    .await?;
    txn.commit().await?;
    core.workspaces.put(workspace.id.clone(), workspace);
    Ok(())
}

/// Longest `answerInstructions`, in characters.
pub const MAX_ANSWER_INSTRUCTIONS: usize = 4_000;

/// What `updateWorkspace` changes; `None` leaves a value as it is.
#[derive(Clone, Debug, Default)]
pub struct WorkspaceChange {
    pub name: Option<String>,
    pub answer_engine: Option<AnswerEngine>,
    /// Deprecated view of the engine: `false` is `OFF`; `true` turns an `OFF`
    /// workspace back to the server's default. `answer_engine` wins when both come.
    pub responder_enabled: Option<bool>,
    pub answer_instructions: Option<String>,
    /// `Some(None)`: no limit.
    pub model_daily_token_limit: Option<Option<i64>>,
    pub default_team_id: Option<String>,
    pub require_verified_identity: Option<bool>,
    /// `Some(None)`: keep conversations until erased by hand.
    pub retention_days: Option<Option<i32>>,
}

/// Longest retention, in days (ten years).
pub const MAX_RETENTION_DAYS: i32 = 3_650;

impl WorkspaceChange {
    /// The names of the fields it changes, as the schema spells them.
    fn fields(&self) -> Vec<&'static str> {
        audit::given(&[
            ("name", self.name.is_some()),
            ("answerEngine", self.answer_engine.is_some()),
            ("responderEnabled", self.responder_enabled.is_some()),
            ("answerInstructions", self.answer_instructions.is_some()),
            (
                "modelDailyTokenLimit",
                self.model_daily_token_limit.is_some(),
            ),
            ("defaultTeamId", self.default_team_id.is_some()),
            (
                "requireVerifiedIdentity",
                self.require_verified_identity.is_some(),
            ),
            ("retentionDays", self.retention_days.is_some()),
        ])
    }
}

/// The engine that answers a workspace's visitors: its own choice, else `MODEL`
/// when the server has a model configured, else `EXTRACTIVE`.
pub fn answer_engine(workspace: &workspace::Model, model_configured: bool) -> AnswerEngine {
    workspace.answer_engine.unwrap_or(if model_configured {
        AnswerEngine::Model
    } else {
        AnswerEngine::Extractive
    })
}

/// Change a workspace's settings, for the owner or admin `admin` at `address`.
pub async fn update(
    core: &Core,
    admin: &AgentPrincipal,
    address: IpAddr,
    change: WorkspaceChange,
) -> AppResult<workspace::Model> {
    let workspace_id = admin.workspace_id.as_str();
    let fields = change.fields();
    let WorkspaceChange {
        name,
        answer_engine,
        responder_enabled,
        answer_instructions,
        model_daily_token_limit,
        default_team_id,
        require_verified_identity,
        retention_days,
    } = change;
    if let Some(Some(days)) = retention_days
        && !(1..=MAX_RETENTION_DAYS).contains(&days)
    {
        return Err(AppError::bad_input(
            "retentionDays",
            format!(
                "must be between 1 and {MAX_RETENTION_DAYS} days, or null to keep conversations"
            ),
        ));
    }
    if answer_engine == Some(AnswerEngine::Model) && core.model.is_none() {
        return Err(AppError::bad_input(
            "answerEngine",
            "this server has no model configured (CASEFILE_LLM_URL): choose EXTRACTIVE or OFF, or configure one",
        ));
    }
    if let Some(Some(limit)) = model_daily_token_limit
        && limit < 1
    {
        return Err(AppError::bad_input(
            "modelDailyTokenLimit",
            "must be at least 1, or null for no limit",
        ));
    }
    let answer_instructions = answer_instructions
        .map(|text| validate::optional_text("answerInstructions", &text, MAX_ANSWER_INSTRUCTIONS))
        .transpose()?;
    if let Some(team) = &default_team_id {
        validate::existing(
            super::teams::get(core, workspace_id, team).await,
            "defaultTeamId",
            || format!("no team {team}"),
        )?;
    }
    let workspace = get(core, workspace_id).await?;
    let workspace_engine = workspace.answer_engine;
    let mut active: workspace::ActiveModel = workspace.into();
    if let Some(name) = name {
        active.name = Set(validate::short("name", &name)?);
    }
    let engine = match (answer_engine, responder_enabled) {
        (Some(engine), _) => Some(Some(engine)),
        (None, Some(false)) => Some(Some(AnswerEngine::Off)),
        (None, Some(true)) if workspace_engine == Some(AnswerEngine::Off) => Some(None),
        (None, _) => None,
    };
    if let Some(engine) = engine {
        active.answer_engine = Set(engine);
        active.responder_enabled = Set(engine != Some(AnswerEngine::Off));
    }
    if let Some(text) = answer_instructions {
        active.answer_instructions = Set(text);
    }
    if let Some(limit) = model_daily_token_limit {
        active.model_daily_token_limit = Set(limit);
    }
    if let Some(team) = default_team_id {
        active.default_team_id = Set(Some(team));
    }
    if let Some(required) = require_verified_identity {
        active.require_verified_identity = Set(required);
    }
    if let Some(days) = retention_days {
        active.retention_days = Set(days);
    }
    let txn = core.db.writer.begin().await?;
    let workspace = active.update(&txn).await?;
    audit::record(
        &txn,
        &By::agent(admin, address),
        Act::on(AuditAction::WorkspaceUpdated, "Workspace", workspace_id).changing(fields),
    )
    .await?;
    txn.commit().await?;
    core.workspaces.put(workspace.id.clone(), workspace.clone());
    Ok(workspace)
}
