//! Teams: groups of agents that handoffs are routed to.

use std::net::IpAddr;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};

use super::audit::{self, Act, By};
use crate::auth::AgentPrincipal;
use crate::domain::Core;
use crate::entity::audit_entry::AuditAction;
use crate::entity::team::BusinessHours;
use crate::entity::{TeamRouting, agent, now_ms, team, team_member};
use crate::error::{AppError, AppResult};
use crate::ids::{Kind, new_id};

use crate::db::is_unique_violation;
use crate::domain::core::validate;

/// Create a team with its first members (`admin` at `address`).
pub async fn create(
    core: &Core,
    admin: &AgentPrincipal,
    address: IpAddr,
    name: &str,
    member_ids: &[String],
) -> AppResult<team::Model> {
    let name = validate::short("name", name)?;
    let ws = &admin.workspace_id;
    let members = agent::Entity::find()
        .filter(agent::Column::WorkspaceId.eq(ws))
        .filter(agent::Column::Id.is_in(member_ids.iter().cloned()))
        .all(&core.db.reader)
        .await?;
    if let Some(missing) = member_ids
        .iter()
        .find(|id| !members.iter().any(|m| &&m.id == id))
    {
        return Err(AppError::bad_input(
            "memberIds",
            format!("no agent {missing}"),
        ));
    }
    let txn = core.db.writer.begin().await?;
    let team = team::ActiveModel {
        id: Set(new_id(Kind::Team)),
        workspace_id: Set(ws.clone()),
        name: Set(name),
        created_at: Set(now_ms()),
        business_hours: Set(None),
        routing: Set(TeamRouting::Manual),
        offer_timeout_seconds: Set(DEFAULT_OFFER_TIMEOUT_SECONDS),
        accept_target_seconds: Set(None),
        last_offered_to: Set(None),
    }
    .insert(&txn)
    .await
    .map_err(|err| {
        if is_unique_violation(&err) {
            AppError::conflict("a team with this name already exists")
        } else {
            err.into()
        }
    })?;
    for member in members {
        team_member::ActiveModel {
            team_id: Set(team.id.clone()),
            agent_id: Set(member.id),
        }
        .insert(&txn)
        .await?;
    }
    audit::record(
        &txn,
        &By::agent(admin, address),
        Act::on(AuditAction::TeamCreated, "Team", &team.id),
    )
    .await?;
    txn.commit().await?;
    core.agent_teams.clear();
    Ok(team)
}

pub async fn list(core: &Core, workspace_id: &str) -> AppResult<Vec<team::Model>> {
    Ok(team::Entity::find()
        .filter(team::Column::WorkspaceId.eq(workspace_id))
        .order_by_asc(team::Column::Id)
        .all(&core.db.reader)
        .await?)
}

/// A team as read at most the cache's TTL ago (see `Core::teams`).
pub async fn cached(core: &Core, workspace_id: &str, id: &str) -> AppResult<team::Model> {
    if let Some(team) = core
        .teams
        .get(id)
        .filter(|t| t.workspace_id == workspace_id)
    {
        return Ok(team);
    }
    let team = get(core, workspace_id, id).await?;
    core.teams.put(team.id.clone(), team.clone());
    Ok(team)
}

/// What `updateTeam` changes; `None` leaves a value as it is.
pub struct TeamUpdate<'a> {
    pub name: Option<&'a str>,
    /// `Some(None)`: always open.
    pub business_hours: Option<Option<BusinessHours>>,
    pub routing: Option<TeamRouting>,
    pub offer_timeout_seconds: Option<i32>,
    /// `Some(None)`: no accept target.
    pub accept_target_seconds: Option<Option<i32>>,
}

impl TeamUpdate<'_> {
    /// The names of the fields it changes, as the schema spells them.
    fn fields(&self) -> Vec<&'static str> {
        audit::given(&[
            ("name", self.name.is_some()),
            ("businessHours", self.business_hours.is_some()),
            ("routing", self.routing.is_some()),
            ("offerTimeoutSeconds", self.offer_timeout_seconds.is_some()),
            ("acceptTargetSeconds", self.accept_target_seconds.is_some()),
        ])
    }
}

/// How long an offer stands unless the team says otherwise.
pub const DEFAULT_OFFER_TIMEOUT_SECONDS: i32 = 60;

/// Offers stand this long at least and at most.
const OFFER_TIMEOUT_SECONDS: std::ops::RangeInclusive<i32> = 1..=3600;
/// An accept target is at least a second and at most a week of business time.
const ACCEPT_TARGET_SECONDS: std::ops::RangeInclusive<i32> = 1..=7 * 24 * 3600;

fn within(field: &str, value: i32, range: std::ops::RangeInclusive<i32>) -> AppResult<i32> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(AppError::bad_input(
            field,
            format!(
                "{value} is out of range: from {} to {} seconds",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// Change a team's name, business hours or routing, by `admin` at `address`. Owners
/// and admins only (the caller checks the role).
pub async fn update(
    core: &Core,
    admin: &AgentPrincipal,
    address: IpAddr,
    id: &str,
    change: TeamUpdate<'_>,
) -> AppResult<team::Model> {
    let current = get(core, &admin.workspace_id, id).await?;
    let fields = change.fields();
    let mut model: team::ActiveModel = current.into();
    if let Some(name) = change.name {
        model.name = Set(validate::short("name", name)?);
    }
    if let Some(hours) = change.business_hours {
        model.business_hours = Set(hours.map(|h| serde_json::to_string(&h)).transpose()?);
    }
    if let Some(routing) = change.routing {
        model.routing = Set(routing);
    }
    if let Some(seconds) = change.offer_timeout_seconds {
        model.offer_timeout_seconds = Set(within(
            "offerTimeoutSeconds",
            seconds,
            OFFER_TIMEOUT_SECONDS,
        )?);
    }
    if let Some(target) = change.accept_target_seconds {
        model.accept_target_seconds = Set(target
            .map(|s| within("acceptTargetSeconds", s, ACCEPT_TARGET_SECONDS))
            .transpose()?);
    }
    let txn = core.db.writer.begin().await?;
    let team = model.update(&txn).await.map_err(|err| {
        if is_unique_violation(&err) {
            AppError::conflict("a team with this name already exists")
        } else {
            err.into()
        }
    })?;
    audit::record(
        &txn,
        &By::agent(admin, address),
        Act::on(AuditAction::TeamUpdated, "Team", id).changing(fields),
    )
    .await?;
    txn.commit().await?;
    core.teams.put(team.id.clone(), team.clone());
    core.agent_teams.clear();
    Ok(team)
}

pub async fn get(core: &Core, workspace_id: &str, id: &str) -> AppResult<team::Model> {
    team::Entity::find_by_id(id)
        .filter(team::Column::WorkspaceId.eq(workspace_id))
        .one(&core.db.reader)
        .await?
        .ok_or(AppError::NotFound("team"))
}

/// The teams with these ids in the workspace; any unknown id is `BAD_USER_INPUT`.
pub async fn existing(
    core: &Core,
    workspace_id: &str,
    ids: &[String],
    field: &str,
) -> AppResult<Vec<team::Model>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let teams = team::Entity::find()
        .filter(team::Column::WorkspaceId.eq(workspace_id))
        .filter(team::Column::Id.is_in(ids.iter().cloned()))
        .all(&core.db.reader)
        .await?;
    match ids.iter().find(|id| !teams.iter().any(|t| &&t.id == id)) {
        Some(missing) => Err(AppError::bad_input(field, format!("no team {missing}"))),
        None => Ok(teams),
    }
}
