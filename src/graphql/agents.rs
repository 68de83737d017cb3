//! Agents, teams and signing in.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};

use super::hours::{BusinessHoursInput, BusinessHoursView};

use crate::domain;
use crate::domain::tenancy::agents::NewAgent;
use crate::entity::{Availability, Role, TeamRouting, agent, team};
use crate::graphql::loaders::{MembersOfTeamKey, TeamsOfAgentKey};

use super::workspaces::Workspace;
use super::{ContextExt, timestamp};

/// A human member of the support team.
pub struct Agent(pub Arc<agent::Model>);

impl From<agent::Model> for Agent {
    fn from(agent: agent::Model) -> Self {
        Agent(Arc::new(agent))
    }
}

impl Agent {
    /// The agent `id` through the request's loader (`None` if it is gone).
    pub async fn load(ctx: &Context<'_>, id: &str) -> async_graphql::Result<Option<Agent>> {
        Ok(ctx
            .loaders()
            .load_one(crate::graphql::loaders::AgentKey(id.to_owned()))
            .await?
            .map(Agent))
    }
}

#[Object]
impl Agent {
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// The name visitors see ("Alex joined the conversation").
    pub async fn name(&self) -> &str {
        &self.0.name
    }

    /// Visible to agents of the workspace; `null` for visitors.
    async fn email(&self, ctx: &Context<'_>) -> Option<&str> {
        let is_agent = ctx.principal().is_ok_and(|p| p.agent().is_ok());
        is_agent.then_some(self.0.email.as_str())
    }

    async fn role(&self) -> Role {
        self.0.role
    }

    /// `false` once deactivated: the agent cannot sign in, and stays on past
    /// messages and in insights.
    async fn active(&self) -> bool {
        self.0.active
    }

    /// `ONLINE` or `AWAY` as the agent set it (`setAvailability`), or `OFFLINE`
    /// when none of its sockets has been open for the presence timeout (60 s by
    /// default). Changes arrive on `inbox` as `AGENT_AVAILABILITY_CHANGED`.
    async fn availability(&self, ctx: &Context<'_>) -> Availability {
        let timeout = ctx.core().config.presence_timeout;
        domain::tenancy::presence::effective(&self.0, crate::entity::now_ms(), timeout)
    }

    /// Conversations automatic routing gives the agent at most: it is offered no
    /// handoff while it holds this many (`HUMAN` conversations assigned to it, and
    /// offers it holds).
    async fn max_concurrent(&self) -> i32 {
        self.0.max_concurrent
    }

    /// The teams the agent is in (up to a few seconds old when another process
    /// changed them).
    async fn teams(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Team>> {
        let cache = &ctx.core().agent_teams;
        let teams = match cache.get(&self.0.id) {
            Some(teams) => teams,
            None => {
                let teams = ctx
                    .loaders()
                    .load_one(TeamsOfAgentKey(self.0.id.clone()))
                    .await?
                    .unwrap_or_default();
                cache.put(self.0.id.clone(), teams.clone());
                teams
            }
        };
        Ok(teams.into_iter().map(Team::from).collect())
    }

    async fn workspace(&self, ctx: &Context<'_>) -> async_graphql::Result<Workspace> {
        ctx.principal()?.agent()?;
        Ok(Workspace(
            domain::tenancy::workspaces::shown(ctx.core(), &self.0.workspace_id).await?,
        ))
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }
}

/// A group of agents; handoffs are routed to teams.
pub struct Team(pub Arc<team::Model>);

impl From<team::Model> for Team {
    fn from(team: team::Model) -> Self {
        Team(Arc::new(team))
    }
}

#[Object]
impl Team {
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn members(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Agent>> {
        ctx.principal()?.agent()?;
        let members = ctx
            .loaders()
            .load_one(MembersOfTeamKey(self.0.id.clone()))
            .await?;
        Ok(members
            .unwrap_or_default()
            .into_iter()
            .map(Agent::from)
            .collect())
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        timestamp(self.0.created_at)
    }

    /// When the team answers, in its time zone; `null` means always open. A
    /// handoff outside them is marked `outOfHours`, and the visitor is told when
    /// the team is back.
    async fn business_hours(&self) -> async_graphql::Result<Option<BusinessHoursView>> {
        Ok(self.0.business_hours()?.map(BusinessHoursView))
    }

    /// How the team's handoffs reach its agents: `MANUAL` (they wait in the queue
    /// for whoever accepts), or offered to one agent at a time (`ROUND_ROBIN`,
    /// `LEAST_BUSY`).
    async fn routing(&self) -> TeamRouting {
        self.0.routing
    }

    /// How long an offer stands before it passes to the next agent.
    async fn offer_timeout_seconds(&self) -> i32 {
        self.0.offer_timeout_seconds
    }

    /// How soon a handoff should be accepted, counted in business hours; each
    /// handoff's `slaDueAt` follows from it. `null`: no target.
    async fn accept_target_seconds(&self) -> Option<i32> {
        self.0.accept_target_seconds
    }
}

/// What an agent can set itself to (`OFFLINE` comes from having no socket open).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AvailabilityStatus {
    Online,
    Away,
}

/// Changes to a team; absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateTeamInput {
    pub team_id: ID,
    pub name: Option<String>,
    /// `null`: always open.
    pub business_hours: MaybeUndefined<BusinessHoursInput>,
    pub routing: Option<TeamRouting>,
    /// 1 to 3600 (default 60).
    pub offer_timeout_seconds: Option<i32>,
    /// 1 second to 7 days of business time; `null`: no target.
    pub accept_target_seconds: MaybeUndefined<i32>,
}

#[derive(Default)]
pub struct AgentQuery;

#[Object]
impl AgentQuery {
    /// Every agent of the workspace.
    async fn agents(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Agent>> {
        let agent = ctx.principal()?.agent()?;
        let agents = domain::tenancy::agents::list(ctx.core(), &agent.workspace_id).await?;
        Ok(agents.into_iter().map(Agent::from).collect())
    }

    /// Every team of the workspace.
    async fn teams(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Team>> {
        let agent = ctx.principal()?.agent()?;
        let teams = domain::tenancy::teams::list(ctx.core(), &agent.workspace_id).await?;
        Ok(teams.into_iter().map(Team::from).collect())
    }
}

#[derive(InputObject)]
pub struct CreateAgentInput {
    pub email: String,
    pub name: String,
    /// At least 8 characters.
    pub password: String,
    #[graphql(default_with = "Role::Agent")]
    pub role: Role,
    #[graphql(default)]
    pub team_ids: Vec<ID>,
}

#[derive(InputObject)]
pub struct CreateTeamInput {
    pub name: String,
    #[graphql(default)]
    pub member_ids: Vec<ID>,
}

/// A signed-in agent's token.
#[derive(SimpleObject)]
pub struct SignInPayload {
    /// Send as `Authorization: Bearer <token>`, or in `connection_init`.
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub agent: Agent,
}

/// What `updateAgent` changes; fields left out stay as they are.
#[derive(InputObject)]
pub struct UpdateAgentInput {
    pub agent_id: ID,
    pub name: Option<String>,
    pub role: Option<Role>,
    /// The agent's teams, all of them (replacing the current ones).
    pub team_ids: Option<Vec<ID>>,
    /// Conversations automatic routing gives the agent at most, 0 to 100
    /// (default 5; 0: the agent is never offered one).
    pub max_concurrent: Option<i32>,
}

#[derive(Default)]
pub struct AgentMutation;

fn ids(values: Vec<ID>) -> Vec<String> {
    values.into_iter().map(|id| id.0).collect()
}

#[Object]
impl AgentMutation {
    /// Exchange an agent's email and password for a token. `workspaceId` chooses
    /// between workspaces when the email is in several; without it, the newest account
    /// whose password matches is used.
    async fn sign_in(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
        workspace_id: Option<ID>,
    ) -> async_graphql::Result<SignInPayload> {
        let signed_in = domain::tenancy::agents::sign_in(
            ctx.core(),
            ctx.client_ip(),
            &email,
            &password,
            workspace_id.as_ref().map(|id| id.as_str()),
        )
        .await?;
        ctx.grant(signed_in.principal);
        Ok(SignInPayload {
            token: signed_in.token.token,
            expires_at: signed_in.token.expires_at,
            agent: Agent::from(signed_in.agent),
        })
    }

    /// Add an agent to the workspace. Owners and admins only; only an owner can
    /// create another owner.
    async fn create_agent(
        &self,
        ctx: &Context<'_>,
        input: CreateAgentInput,
    ) -> async_graphql::Result<Agent> {
        let admin = ctx.principal()?.admin()?;
        let team_ids = ids(input.team_ids);
        let agent = domain::tenancy::agents::create(
            ctx.core(),
            admin,
            ctx.client_ip(),
            NewAgent {
                email: &input.email,
                name: &input.name,
                password: &input.password,
                role: input.role,
                team_ids: &team_ids,
            },
        )
        .await?;
        Ok(Agent::from(agent))
    }

    /// Change an agent's name, role, teams or `maxConcurrent` (what is not given
    /// stays). Owners and
    /// admins; only an owner changes an owner or makes one. The role applies from the
    /// agent's next request. Demoting the last active owner is `CONFLICT`
    /// (`reason: LAST_OWNER`).
    async fn update_agent(
        &self,
        ctx: &Context<'_>,
        input: UpdateAgentInput,
    ) -> async_graphql::Result<Agent> {
        let admin = ctx.principal()?.admin()?;
        let team_ids = input.team_ids.map(ids);
        let change = domain::tenancy::lifecycle::AgentUpdate {
            name: input.name.as_deref(),
            role: input.role,
            team_ids: team_ids.as_deref(),
            max_concurrent: input.max_concurrent,
        };
        let agent = domain::tenancy::lifecycle::update(
            ctx.core(),
            admin,
            ctx.client_ip(),
            &input.agent_id,
            change,
        )
        .await?;
        Ok(Agent::from(agent))
    }

    /// Turn an agent off: it cannot sign in, its tokens answer `UNAUTHENTICATED`
    /// from its next request and its sockets close (4403), on every process; its
    /// open conversations go back to their team's queue. Owners and admins; the last
    /// active owner cannot be deactivated (`CONFLICT`, `reason: LAST_OWNER`).
    async fn deactivate_agent(
        &self,
        ctx: &Context<'_>,
        agent_id: ID,
    ) -> async_graphql::Result<Agent> {
        let admin = ctx.principal()?.admin()?;
        let agent = domain::handoff::deactivation::deactivate(
            ctx.core(),
            admin,
            ctx.client_ip(),
            &agent_id,
        )
        .await?;
        Ok(Agent::from(agent))
    }

    /// Let a deactivated agent sign in again (its old tokens stay ended).
    async fn reactivate_agent(
        &self,
        ctx: &Context<'_>,
        agent_id: ID,
    ) -> async_graphql::Result<Agent> {
        let admin = ctx.principal()?.admin()?;
        let agent =
            domain::tenancy::lifecycle::reactivate(ctx.core(), admin, ctx.client_ip(), &agent_id)
                .await?;
        Ok(Agent::from(agent))
    }

    /// Set the signed-in agent's availability: `ONLINE` (takes conversations) or
    /// `AWAY`. It shows while a socket of the agent is open; with none open for the
    /// presence timeout the agent is `OFFLINE` whatever it set.
    async fn set_availability(
        &self,
        ctx: &Context<'_>,
        status: AvailabilityStatus,
    ) -> async_graphql::Result<Agent> {
        let me = ctx.principal()?.agent()?;
        let availability = match status {
            AvailabilityStatus::Online => Availability::Online,
            AvailabilityStatus::Away => Availability::Away,
        };
        let agent = domain::tenancy::presence::set(ctx.core(), me, availability).await?;
        Ok(Agent::from(agent))
    }

    /// Change the signed-in agent's password. Every other token of the agent ends
    /// (its sockets close); the answer carries a new token to use from now on.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> async_graphql::Result<SignInPayload> {
        let me = ctx.principal()?.agent()?;
        let (agent, token) = domain::tenancy::lifecycle::change_password(
            ctx.core(),
            me,
            ctx.client_ip(),
            &current_password,
            &new_password,
        )
        .await?;
        Ok(SignInPayload {
            token: token.token,
            expires_at: token.expires_at,
            agent: Agent::from(agent),
        })
    }

    /// Change a team's name, business hours or routing. Owners and admins only.
    async fn update_team(
        &self,
        ctx: &Context<'_>,
        input: UpdateTeamInput,
    ) -> async_graphql::Result<Team> {
        let admin = ctx.principal()?.admin()?;
        let business_hours = input
            .business_hours
            .map_value(|hours| hours.check())
            .transpose()?;
        let change = domain::tenancy::teams::TeamUpdate {
            name: input.name.as_deref(),
            business_hours: business_hours.into(),
            routing: input.routing,
            offer_timeout_seconds: input.offer_timeout_seconds,
            accept_target_seconds: input.accept_target_seconds.into(),
        };
        let team = domain::tenancy::teams::update(
            ctx.core(),
            admin,
            ctx.client_ip(),
            &input.team_id,
            change,
        )
        .await?;
        Ok(Team::from(team))
    }

    /// Create a team. Owners and admins only.
    async fn create_team(
        &self,
        ctx: &Context<'_>,
        input: CreateTeamInput,
    ) -> async_graphql::Result<Team> {
        let admin = ctx.principal()?.admin()?;
        let team = domain::tenancy::teams::create(
            ctx.core(),
            admin,
            ctx.client_ip(),
            &input.name,
            &ids(input.member_ids),
        )
        .await?;
        Ok(Team::from(team))
    }
}
