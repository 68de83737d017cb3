//! An agent's life in a workspace after it is created: its name, role and teams
//! change, it is deactivated (and maybe reactivated), it changes its password.
//!
//! Every change takes effect at the agent's next request on every process: tokens
//! are checked against the agent as it is now (read at most a second ago, see
//! `agents::check_token`), and the agent's sockets are closed through the event bus.
//! Deactivation, which also hands back what the agent held, is
//! `handoff::deactivation`.

use std::net::IpAddr;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, TransactionTrait,
};

use super::audit::{self, Act, By};
use crate::auth::{AgentPrincipal, IssuedToken, hash_password, verify_password};
use crate::domain::Core;
use crate::domain::core::feed::{self, Event};
use crate::entity::audit_entry::AuditAction;
use crate::entity::{Role, agent, team_member};
use crate::error::{AppError, AppResult};

use crate::db::stmt;
use crate::domain::core::validate;

/// `extensions.reason` when a change would leave a workspace without an active owner.
pub const LAST_OWNER: &str = "LAST_OWNER";

/// What `updateAgent` changes; `None` leaves a value as it is.
pub struct AgentUpdate<'a> {
    pub name: Option<&'a str>,
    pub role: Option<Role>,
    pub team_ids: Option<&'a [String]>,
    /// Conversations routing gives the agent at most (0: none).
    pub max_concurrent: Option<i32>,
}

/// What `maxConcurrent` may be.
const MAX_CONCURRENT: std::ops::RangeInclusive<i32> = 0..=100;

/// The agent `id` of `admin`'s workspace, which `admin` may manage: owners manage
/// everyone, admins everyone but owners.
pub async fn managed(core: &Core, admin: &AgentPrincipal, id: &str) -> AppResult<agent::Model> {
    let agent = agent::Entity::find_by_id(id)
        .one(&core.db.writer)
        .await?
        .filter(|agent| agent.workspace_id == admin.workspace_id)
        .ok_or(AppError::NotFound("agent"))?;
    if agent.role == Role::Owner && admin.role != Role::Owner {
        return Err(AppError::forbidden("only an owner can change an owner"));
    }
    Ok(agent)
}

/// Refuse a change that takes `agent` away from the workspace's active owners when
/// it is the last one.
pub async fn keeps_an_owner<C: ConnectionTrait>(conn: &C, agent: &agent::Model) -> AppResult<()> {
    if agent.role != Role::Owner || !agent.active {
        return Ok(());
    }
    let row = conn
        .query_one_raw(stmt(
            conn.get_database_backend(),
            "SELECT COUNT(*) AS owners FROM agents WHERE workspace_id = ? AND role = ? AND active = ?",
            vec![
                agent.workspace_id.as_str().into(),
                Role::Owner.as_str().into(),
                true.into(),
            ],
        ))
        .await?
        .ok_or_else(|| AppError::internal("count returned no row"))?;
    let owners: i64 = row.try_get("", "owners")?;
    if owners <= 1 {
        return Err(AppError::Conflict {
            message: "this is the workspace's last active owner: make another agent an owner first"
                .to_owned(),
            reason: Some(LAST_OWNER),
        });
    }
    Ok(())
}

impl AgentUpdate<'_> {
    /// The names of the fields it changes, as the schema spells them.
    fn fields(&self) -> Vec<&'static str> {
        audit::given(&[
            ("name", self.name.is_some()),
            ("role", self.role.is_some()),
            ("teamIds", self.team_ids.is_some()),
            ("maxConcurrent", self.max_concurrent.is_some()),
        ])
    }
}

/// Change an agent's name, role or teams, for `admin` at `address`.
pub async fn update(
    core: &Core,
    admin: &AgentPrincipal,
    address: IpAddr,
    id: &str,
    change: AgentUpdate<'_>,
) -> AppResult<agent::Model> {
    let current = managed(core, admin, id).await?;
    let fields = change.fields();
    if change.role == Some(Role::Owner) && admin.role != Role::Owner {
        return Err(AppError::forbidden("only an owner can make another owner"));
    }
    let name = change
        .name
        .map(|name| validate::short("name", name))
        .transpose()?;
    if let Some(max) = change.max_concurrent
        && !MAX_CONCURRENT.contains(&max)
    {
        return Err(AppError::bad_input(
            "maxConcurrent",
            format!(
                "{max} is out of range: from {} (routing offers nothing) to {}",
                MAX_CONCURRENT.start(),
                MAX_CONCURRENT.end()
            ),
        ));
    }
    let teams = match change.team_ids {
        Some(ids) => Some(super::teams::existing(core, &admin.workspace_id, ids, "teamIds").await?),
        None => None,
    };
    let txn = core.db.writer.begin().await?;
    if change.role.is_some_and(|role| role != Role::Owner) {
        keeps_an_owner(&txn, &current).await?;
    }
    let mut model: agent::ActiveModel = current.into();
    if let Some(name) = name {
        model.name = Set(name);
    }
    if let Some(role) = change.role {
        model.role = Set(role);
    }
    if let Some(max) = change.max_concurrent {
        model.max_concurrent = Set(max);
    }
    let agent = model.update(&txn).await?;
    if let Some(teams) = teams {
        team_member::Entity::delete_many()
            .filter(team_member::Column::AgentId.eq(id))
            .exec(&txn)
            .await?;
        super::agents::join_teams(&txn, id, teams).await?;
    }
    audit::record(
        &txn,
        &By::agent(admin, address),
        Act::on(AuditAction::AgentUpdated, "Agent", id).changing(fields),
    )
    .await?;
    txn.commit().await?;
    core.agents.put(agent.id.clone(), agent.clone());
    core.agent_teams.clear();
    Ok(agent)
}

/// Let a deactivated agent back in (`admin` at `address`). Its tokens from before
/// stay ended: it signs in again.
pub async fn reactivate(
    core: &Core,
    admin: &AgentPrincipal,
    address: IpAddr,
    id: &str,
) -> AppResult<agent::Model> {
    let current = managed(core, admin, id).await?;
    if current.active {
        return Ok(current);
    }
    let generation = current.token_generation + 1;
    let mut model: agent::ActiveModel = current.into();
    model.active = Set(true);
    model.token_generation = Set(generation);
    let txn = core.db.writer.begin().await?;
    let agent = model.update(&txn).await?;
    audit::record(
        &txn,
        &By::agent(admin, address),
        Act::on(AuditAction::AgentReactivated, "Agent", id),
    )
    .await?;
    txn.commit().await?;
    core.agents.put(agent.id.clone(), agent.clone());
    Ok(agent)
}

/// Change the signed-in agent's password (at `address`): every other token of the
/// agent ends (and its sockets close); the answer is a new token.
pub async fn change_password(
    core: &Core,
    me: &AgentPrincipal,
    address: IpAddr,
    current_password: &str,
    new_password: &str,
) -> AppResult<(agent::Model, IssuedToken)> {
    let agent = super::agents::get(core, &me.workspace_id, &me.agent_id).await?;
    let new_password = super::agents::password("newPassword", new_password)?;
    let hash = {
        let _turn = super::agents::hashing_turn(core).await?;
        if !verify_password(current_password.to_owned(), agent.password_hash.clone()).await {
            return Err(AppError::bad_input(
                "currentPassword",
                "is not this agent's password",
            ));
        }
        hash_password(new_password).await?
    };
    let generation = agent.token_generation + 1;
    let mut model: agent::ActiveModel = agent.into();
    model.password_hash = Set(hash);
    model.token_generation = Set(generation);
    let txn = core.db.writer.begin().await?;
    let agent = model.update(&txn).await?;
    audit::record(
        &txn,
        &By::agent(me, address),
        Act::on(AuditAction::PasswordChanged, "Agent", &agent.id).changing(vec!["password"]),
    )
    .await?;
    let revoked = Event::access_revoked(&agent.workspace_id, &agent.id, Some(generation));
    feed::commit(core, txn, &[revoked]).await?;
    core.agents.put(agent.id.clone(), agent.clone());
    let token = core
        .tokens
        .issue_agent(&agent.id, &agent.workspace_id, agent.role, generation)?;
    Ok((agent, token))
}
