//! The audit log: every administrative act (settings, agents, teams, keys,
//! webhooks, secrets, exports, erasures, sign-ins), who did it, to what, when and
//! from which address, with the names of the fields it changed (never their values:
//! a secret or a person's details never reach the log).
//!
//! An act and its entry are written in the same transaction, so neither is stored
//! without the other. No API changes or removes an entry, and the database refuses
//! to (see migration 016). Owners read it (`auditLog`).

use std::net::IpAddr;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

use crate::auth::{AgentPrincipal, Principal};
use crate::domain::Core;
use crate::entity::audit_entry::{self, AuditAction};
use crate::entity::{Role, now_ms};
use crate::error::{AppError, AppResult};
use crate::ids::{Kind, new_id};

/// Entries a page holds at most.
pub const MAX_PAGE: u64 = 100;

/// Who acts, in which workspace, from where.
#[derive(Clone, Debug)]
pub struct By {
    workspace_id: String,
    agent_id: Option<String>,
    key_id: Option<String>,
    address: Option<IpAddr>,
}

impl By {
    /// `principal`, at `address` (a visitor is recorded as neither agent nor key).
    pub fn principal(principal: &Principal, address: IpAddr) -> By {
        let (agent_id, key_id) = match principal {
            Principal::Agent(agent) => (Some(agent.agent_id.clone()), None),
            Principal::ApiKey(key) => (None, Some(key.key_id.clone())),
            Principal::Visitor(_) => (None, None),
        };
        By {
            workspace_id: principal.workspace_id().to_owned(),
            agent_id,
            key_id,
            address: Some(address),
        }
    }

    /// The agent `agent`, at `address`.
    pub fn agent(agent: &AgentPrincipal, address: IpAddr) -> By {
        By {
            workspace_id: agent.workspace_id.clone(),
            agent_id: Some(agent.agent_id.clone()),
            key_id: None,
            address: Some(address),
        }
    }

    /// Someone at `address` who has not proved to be anyone (a failed sign-in).
    pub fn anonymous(workspace_id: &str, address: IpAddr) -> By {
        By {
            workspace_id: workspace_id.to_owned(),
            agent_id: None,
            key_id: None,
            address: Some(address),
        }
    }

    /// The server itself (the retention sweep).
    pub fn server(workspace_id: &str) -> By {
        By {
            workspace_id: workspace_id.to_owned(),
            agent_id: None,
            key_id: None,
            address: None,
        }
    }
}

/// What an act was and what it was on.
pub struct Act<'a> {
    pub action: AuditAction,
    /// The schema's type name of its object (or objects).
    pub object_type: &'static str,
    /// The object's id, when it was on one.
    pub object_id: Option<&'a str>,
    /// The names of the fields it changed, as the schema spells them.
    pub fields: Vec<&'static str>,
}

impl<'a> Act<'a> {
    /// `action` on the `kind` whose id is `id`.
    pub fn on(action: AuditAction, kind: &'static str, id: &'a str) -> Act<'a> {
        Act {
            action,
            object_type: kind,
            object_id: Some(id),
            fields: Vec::new(),
        }
    }

    /// `action` on all the `kind`s of the workspace.
    pub fn on_all(action: AuditAction, kind: &'static str) -> Act<'a> {
        Act {
            action,
            object_type: kind,
            object_id: None,
            fields: Vec::new(),
        }
    }

    /// With the names of the fields whose new value was given.
    pub fn changing(self, fields: Vec<&'static str>) -> Act<'a> {
        Act { fields, ..self }
    }
}

/// The names of `fields` whose new value was given (each a name and whether it
/// came), for [`Act::changing`].
pub fn given(fields: &[(&'static str, bool)]) -> Vec<&'static str> {
    fields
        .iter()
        .filter_map(|&(name, given)| given.then_some(name))
        .collect()
}

/// Record `act` by `by` in `conn`: the transaction of the act itself.
pub async fn record(conn: &impl ConnectionTrait, by: &By, act: Act<'_>) -> AppResult<()> {
    audit_entry::ActiveModel {
        id: Set(new_id(Kind::Audit)),
        workspace_id: Set(by.workspace_id.clone()),
        action: Set(act.action),
        actor_agent_id: Set(by.agent_id.clone()),
        actor_key_id: Set(by.key_id.clone()),
        object_type: Set(Some(act.object_type.to_owned())),
        object_id: Set(act.object_id.map(str::to_owned)),
        fields: Set(crate::entity::encode(&act.fields)?),
        address: Set(by.address.map(|a| a.to_string())),
        created_at: Set(now_ms()),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// Which entries a page wants.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Any of these; all when empty.
    pub actions: Vec<AuditAction>,
    /// Done by this agent or API key.
    pub actor_id: Option<String>,
}

/// Up to `first` (1 to [`MAX_PAGE`]) entries of `principal`'s workspace, newest
/// first, older than the entry `after` when given, and whether more follow. Owners
/// only.
pub async fn page(
    core: &Core,
    principal: &Principal,
    first: i32,
    after: Option<&str>,
    filter: &Filter,
) -> AppResult<(Vec<audit_entry::Model>, bool)> {
    let owner = principal.agent()?;
    if owner.role != Role::Owner {
        return Err(AppError::forbidden("only owners can read the audit log"));
    }
    let first = u64::try_from(first)
        .ok()
        .filter(|n| (1..=MAX_PAGE).contains(n))
        .ok_or_else(|| AppError::bad_input("first", format!("must be between 1 and {MAX_PAGE}")))?;
    let mut query = audit_entry::Entity::find()
        .filter(audit_entry::Column::WorkspaceId.eq(&owner.workspace_id))
        .order_by_desc(audit_entry::Column::Id)
        .limit(first + 1);
    if let Some(after) = after {
        if Kind::of(after) != Some(Kind::Audit) {
            return Err(AppError::bad_input(
                "after",
                "not a cursor of the audit log",
            ));
        }
        query = query.filter(audit_entry::Column::Id.lt(after));
    }
    if !filter.actions.is_empty() {
        query = query.filter(audit_entry::Column::Action.is_in(filter.actions.clone()));
    }
    if let Some(actor) = &filter.actor_id {
        query = query.filter(
            Condition::any()
                .add(audit_entry::Column::ActorAgentId.eq(actor))
                .add(audit_entry::Column::ActorKeyId.eq(actor)),
        );
    }
    let mut entries = query.all(&core.db.reader).await?;
    let has_next = entries.len() as u64 > first;
    entries.truncate(first as usize);
    Ok((entries, has_next))
}
