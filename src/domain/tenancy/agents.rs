//! Agents: the human team, their sign-in and their roles.

use std::net::IpAddr;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};

use super::audit::{self, Act, By};
use crate::auth::{AgentPrincipal, IssuedToken, Principal, hash_password, verify_password};
use crate::domain::Core;
use crate::entity::audit_entry::AuditAction;
use crate::entity::{Role, agent, now_ms, team_member};
use crate::error::{AppError, AppResult};
use crate::ids::{Kind, new_id};

use crate::db::is_unique_violation;
use crate::domain::core::validate;

/// Conversations an agent holds at most unless set otherwise (`updateAgent`).
pub const DEFAULT_MAX_CONCURRENT: i32 = 5;

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

/// Add an agent to the admin's workspace (the admin at `address`). Only an owner
/// may create another owner.
pub async fn create(
    core: &Core,
    admin: &AgentPrincipal,
    address: IpAddr,
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
    let teams = super::teams::existing(core, &admin.workspace_id, new.team_ids, "teamIds").await?;
    let password_hash = {
        let _permit = hashing_turn(core).await?;
        hash_password(password).await?
    };
    let model = agent::ActiveModel {
        id: Set(new_id(Kind::Agent)),
        workspace_id: Set(admin.workspace_id.clone()),
        email: Set(email),
        name: Set(name),
        password_hash: Set(password_hash),
        role: Set(new.role),
        created_at: Set(now_ms()),
        active: Set(true),
        token_generation: Set(0),
        availability: Set(crate::entity::Availability::Online),
        announced: Set(crate::entity::Availability::Offline),
        last_seen_at: Set(None),
        max_concurrent: Set(DEFAULT_MAX_CONCURRENT),
    };
    let txn = core.db.writer.begin().await?;
    let agent = match model.insert(&txn).await {
        Ok(agent) => agent,
        Err(err) if is_unique_violation(&err) => {
            return Err(AppError::conflict(
                "an agent with this email already exists",
            ));
        }
        Err(err) => return Err(err.into()),
    };
    join_teams(&txn, &agent.id, teams).await?;
    audit::record(
        &txn,
        &By::agent(admin, address),
        Act::on(AuditAction::AgentCreated, "Agent", &agent.id),
    )
    .await?;
    txn.commit().await?;
    core.agents.put(agent.id.clone(), agent.clone());
    core.agent_teams.clear();
    Ok(agent)
}

/// Make `agent_id` a member of `teams` (in the caller's transaction).
pub(crate) async fn join_teams(
    txn: &sea_orm::DatabaseTransaction,
    agent_id: &str,
    teams: Vec<crate::entity::team::Model>,
) -> AppResult<()> {
    for team in teams {
        team_member::ActiveModel {
            team_id: Set(team.id),
            agent_id: Set(agent_id.to_owned()),
        }
        .insert(txn)
        .await?;
    }
    Ok(())
}

/// Exchange an email and password for an agent token. When the email exists in
/// several workspaces, `workspace_id` chooses; without it the newest account whose
/// password matches wins.
///
/// Guessing is bounded twice: attempts per client address (`signin_ip`), and
/// failures per email (`signin_email`: each attempt takes a call from the email's
/// bucket and a right password gives it back, so past the limit the email is refused,
/// the right password too, until the bucket refills). An unknown email is checked
/// against a dummy hash, so it takes as long as a wrong password and timing does not
/// tell which accounts exist. Hashing waits for `core.hashing`.
pub async fn sign_in(
    core: &Core,
    client: std::net::IpAddr,
    email: &str,
    password: &str,
    workspace_id: Option<&str>,
) -> AppResult<SignedIn> {
    const INVALID: AppError = AppError::Unauthenticated("invalid email or password");
    core.rate.signin_ip.take(&client.to_string())?;
    let email = email.trim().to_lowercase();
    core.rate.signin_email.take(&email)?;
    let mut query = agent::Entity::find()
        .filter(agent::Column::Email.eq(&email))
        .order_by_desc(agent::Column::Id);
    if let Some(ws) = workspace_id {
        query = query.filter(agent::Column::WorkspaceId.eq(ws));
    }
    let candidates = query.all(&core.db.reader).await?;
    let _permit = hashing_turn(core).await?;
    if candidates.is_empty() {
        verify_password(password.to_owned(), dummy_hash().await).await;
        tracing::warn!(client = %client, "a sign-in named no agent");
        return Err(INVALID);
    }
    for candidate in &candidates {
        if verify_password(password.to_owned(), candidate.password_hash.clone()).await {
            if !candidate.active {
                failed(core, client, std::slice::from_ref(candidate)).await?;
                return Err(AppError::Unauthenticated("this account is deactivated"));
            }
            let candidate = candidate.clone();
            core.rate.signin_email.give_back(&email);
            let token = core.tokens.issue_agent(
                &candidate.id,
                &candidate.workspace_id,
                candidate.role,
                candidate.token_generation,
            )?;
            let principal = Principal::Agent(AgentPrincipal {
                agent_id: candidate.id.clone(),
                workspace_id: candidate.workspace_id.clone(),
                role: candidate.role,
                generation: candidate.token_generation,
                expires_at: token.expires_at.timestamp(),
            });
            audit::record(
                &core.db.writer,
                &By::principal(&principal, client),
                Act::on(AuditAction::SignIn, "Agent", &candidate.id),
            )
            .await?;
            return Ok(SignedIn {
                agent: candidate,
                token,
                principal,
            });
        }
    }
    failed(core, client, &candidates).await?;
    Err(INVALID)
}

/// Record a failed sign-in from `client` to each of `agents` (in its workspace's
/// audit log). One that named no agent is in no workspace's log: only in the
/// server's (a warning without the email, which may be a mistyped password).
async fn failed(core: &Core, client: IpAddr, agents: &[agent::Model]) -> AppResult<()> {
    for agent in agents {
        audit::record(
            &core.db.writer,
            &By::anonymous(&agent.workspace_id, client),
            Act::on(AuditAction::SignInFailed, "Agent", &agent.id),
        )
        .await?;
    }
    Ok(())
}

/// An agent signed in.
pub struct SignedIn {
    pub agent: agent::Model,
    pub token: IssuedToken,
    /// What the token stands for.
    pub principal: Principal,
}

/// Wait for a turn to hash: one hash per CPU at a time (each takes 19 MiB).
pub(crate) async fn hashing_turn(core: &Core) -> AppResult<tokio::sync::SemaphorePermit<'_>> {
    core.hashing
        .acquire()
        .await
        .map_err(|_| AppError::internal("the hashing semaphore is closed"))
}

/// Compute the dummy hash now, so the first sign-in with an unknown email does not
/// pay for it (and take longer than a wrong password).
pub async fn warm_up() {
    dummy_hash().await;
}

/// A hash of a random password, with the parameters of real ones: what an unknown
/// email is checked against.
async fn dummy_hash() -> String {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_init(|| async {
            hash_password(crate::ids::random_secret(16))
                .await
                .unwrap_or_default()
        })
        .await
        .clone()
}

/// What a token check reads of an agent.
struct Access {
    in_workspace: bool,
    active: bool,
    token_generation: i32,
    role: Role,
}

/// Check an agent's token against the agent as it is now (read at most a second
/// ago): a deactivated agent's tokens, and tokens of an earlier generation (before a
/// password change), are `UNAUTHENTICATED`; the role is the agent's current one.
pub async fn check_token(core: &Core, principal: &mut AgentPrincipal) -> AppResult<()> {
    // What the check needs, without copying the whole row (this runs per request).
    let access = |agent: &agent::Model| Access {
        in_workspace: agent.workspace_id == principal.workspace_id,
        active: agent.active,
        token_generation: agent.token_generation,
        role: agent.role,
    };
    let agent = match core.agents.read(&principal.agent_id, access) {
        Some(agent) if agent.in_workspace => agent,
        _ => match get(core, &principal.workspace_id, &principal.agent_id).await {
            Ok(agent) => access(&agent),
            Err(AppError::NotFound(_)) => {
                return Err(AppError::Unauthenticated("this agent no longer exists"));
            }
            Err(err) => return Err(err),
        },
    };
    if !agent.active {
        return Err(AppError::Unauthenticated("this agent is deactivated"));
    }
    if agent.token_generation != principal.generation {
        return Err(AppError::Unauthenticated(
            "this token was ended by a password change: sign in again",
        ));
    }
    principal.role = agent.role;
    Ok(())
}

pub async fn get(core: &Core, workspace_id: &str, id: &str) -> AppResult<agent::Model> {
    if let Some(agent) = core
        .agents
        .get(id)
        .filter(|a| a.workspace_id == workspace_id)
    {
        return Ok(agent);
    }
    let agent = agent::Entity::find_by_id(id)
        .filter(agent::Column::WorkspaceId.eq(workspace_id))
        .one(&core.db.reader)
        .await?
        .ok_or(AppError::NotFound("agent"))?;
    core.agents.put(agent.id.clone(), agent.clone());
    Ok(agent)
}

pub async fn list(core: &Core, workspace_id: &str) -> AppResult<Vec<agent::Model>> {
    Ok(agent::Entity::find()
        .filter(agent::Column::WorkspaceId.eq(workspace_id))
        .order_by_asc(agent::Column::Id)
        .all(&core.db.reader)
        .await?)
}
