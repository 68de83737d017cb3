//! Agents: the human team, their sign-in and their roles.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};

use crate::auth::{AgentPrincipal, IssuedToken, hash_password, verify_password};
use crate::entity::{Role, agent, now_ms, team_member};
use crate::error::{AppError, AppResult};
use crate::ids::{Kind, new_id};
use crate::state::AppState;

use super::{is_unique_violation, validate};

/// A password acceptable for a new account.
pub fn password(field: &str, value: &str) -> AppResult<String> {
    let count = value.chars().count();
    if count < 8 {
        return Err(AppError::bad_input(
            field,
            "must have at least 8 characters",
        ));
    }
    if count > 256 {
        return Err(AppError::bad_input(
            field,
            "must have at most 256 characters",
        ));
    }
    Ok(value.to_owned())
}

pub struct NewAgent<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password: &'a str,
    pub role: Role,
    pub team_ids: &'a [String],
}

/// Add an agent to the admin's workspace. Only an owner may create another owner.
pub async fn create(
    state: &AppState,
    admin: &AgentPrincipal,
    new: NewAgent<'_>,
) -> AppResult<agent::Model> {
    if new.role == Role::Owner && admin.role != Role::Owner {
        return Err(AppError::forbidden(
            "only an owner can create another owner",
        ));
    }
    let email = validate::email("email", new.email)?;
    let name = validate::short("name", new.name)?;
    let password = password("password", new.password)?;
    let teams = super::teams::existing(state, &admin.workspace_id, new.team_ids, "teamIds").await?;
    let password_hash = hash_password(password).await?;
    let model = agent::ActiveModel {
        id: Set(new_id(Kind::Agent)),
        workspace_id: Set(admin.workspace_id.clone()),
        email: Set(email),
        name: Set(name),
        password_hash: Set(password_hash),
        role: Set(new.role),
        created_at: Set(now_ms()),
    };
    let txn = state.db.writer.begin().await?;
    let agent = match model.insert(&txn).await {
        Ok(agent) => agent,
        Err(err) if is_unique_violation(&err) => {
            return Err(AppError::conflict(
                "an agent with this email already exists",
            ));
        }
        Err(err) => return Err(err.into()),
    };
    for team in teams {
        team_member::ActiveModel {
            team_id: Set(team.id),
            agent_id: Set(agent.id.clone()),
        }
        .insert(&txn)
        .await?;
    }
    txn.commit().await?;
    state.agents.put(agent.id.clone(), agent.clone());
    state.agent_teams.clear();
    Ok(agent)
}

/// Exchange an email and password for an agent token. When the email exists in
/// several workspaces, `workspace_id` chooses; without it the newest account whose
/// password matches wins.
pub async fn sign_in(
    state: &AppState,
    email: &str,
    password: &str,
    workspace_id: Option<&str>,
) -> AppResult<(agent::Model, IssuedToken)> {
    const INVALID: AppError = AppError::Unauthenticated("invalid email or password");
    let email = email.trim().to_lowercase();
    let mut query = agent::Entity::find()
        .filter(agent::Column::Email.eq(email))
        .order_by_desc(agent::Column::Id);
    if let Some(ws) = workspace_id {
        query = query.filter(agent::Column::WorkspaceId.eq(ws));
    }
    let candidates = query.all(&state.db.reader).await?;
    for candidate in candidates {
        if verify_password(password.to_owned(), candidate.password_hash.clone()).await {
            let token =
                state
                    .tokens
                    .issue_agent(&candidate.id, &candidate.workspace_id, candidate.role)?;
            return Ok((candidate, token));
        }
    }
    Err(INVALID)
}

pub async fn get(state: &AppState, workspace_id: &str, id: &str) -> AppResult<agent::Model> {
    if let Some(agent) = state
        .agents
        .get(id)
        .filter(|a| a.workspace_id == workspace_id)
    {
        return Ok(agent);
    }
    let agent = agent::Entity::find_by_id(id)
        .filter(agent::Column::WorkspaceId.eq(workspace_id))
        .one(&state.db.reader)
        .await?
        .ok_or(AppError::NotFound("agent"))?;
    state.agents.put(agent.id.clone(), agent.clone());
    Ok(agent)
}

pub async fn list(state: &AppState, workspace_id: &str) -> AppResult<Vec<agent::Model>> {
    Ok(agent::Entity::find()
        .filter(agent::Column::WorkspaceId.eq(workspace_id))
        .order_by_asc(agent::Column::Id)
        .all(&state.db.reader)
        .await?)
}
