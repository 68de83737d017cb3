//! Who is online: an agent sets `ONLINE` or `AWAY` (`setAvailability`); an agent
//! with no open socket for the presence timeout (`--presence-timeout`, 60 s) is
//! `OFFLINE` whatever it set, as Intercom and Zendesk show teammates.
//!
//! Each process notes the agents with a socket open on it (the transport says
//! which) in `agents.last_seen_at`, at once when a first socket opens and then
//! every quarter of the timeout. Changes are announced on `inbox`
//! (`AGENT_AVAILABILITY_CHANGED`) once each, whichever process sees them first:
//! `agents.announced` holds what was announced last, and every announcement is a
//! conditional update of it.

use std::time::Duration;

use sea_orm::{ConnectionTrait, FromQueryResult, TransactionTrait};

use crate::auth::AgentPrincipal;
use crate::db::stmt;
use crate::domain::Core;
use crate::domain::core::feed::{self, Event};
use crate::entity::{Availability, agent, now_ms};
use crate::error::{AppError, AppResult};

/// What an agent is as of `now`: what it set, or `OFFLINE` without a socket seen
/// within `timeout`.
pub fn effective(agent: &agent::Model, now: i64, timeout: Duration) -> Availability {
    let timeout = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
    match agent.last_seen_at {
        Some(seen) if now - seen <= timeout => agent.availability,
        _ => Availability::Offline,
    }
}

/// Announce the rows `sql` changed (`RETURNING *`), in one transaction.
async fn announce(
    core: &Core,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> AppResult<Vec<agent::Model>> {
    let txn = core.db.writer.begin().await?;
    let changed = txn
        .query_all_raw(stmt(core.db.backend(), sql, values))
        .await?
        .iter()
        .map(|row| agent::Model::from_query_result(row, ""))
        .collect::<Result<Vec<_>, _>>()?;
    let events: Vec<Event> = changed
        .iter()
        .map(|a| Event::availability_changed(&a.workspace_id, &a.id, a.announced))
        .collect();
    feed::commit(core, txn, &events).await?;
    for agent in &changed {
        core.agents.put(agent.id.clone(), agent.clone());
    }
    Ok(changed)
}

/// The signed-in agent sets `ONLINE` or `AWAY`. Announced at once when the
/// agent has a socket open (else it stays `OFFLINE` until one opens).
pub async fn set(
    core: &Core,
    me: &AgentPrincipal,
    availability: Availability,
) -> AppResult<agent::Model> {
    if availability == Availability::Offline {
        return Err(AppError::bad_input(
            "status",
            "set ONLINE or AWAY: an agent is OFFLINE when none of its sockets is open",
        ));
    }
    let value = || sea_orm::ActiveEnum::to_value(&availability);
    let changed = announce(
        core,
        "UPDATE agents SET availability = ?, announced = ? \
         WHERE id = ? AND workspace_id = ? AND announced <> 'OFFLINE' AND announced <> ? \
         RETURNING *",
        vec![
            value().into(),
            value().into(),
            me.agent_id.as_str().into(),
            me.workspace_id.as_str().into(),
            value().into(),
        ],
    )
    .await?;
    if let Some(agent) = changed.into_iter().next() {
        return Ok(agent);
    }
    // Offline, or already so: stored without an announcement.
    let txn = core.db.writer.begin().await?;
    let row = txn
        .query_one_raw(stmt(
            core.db.backend(),
            "UPDATE agents SET availability = ? WHERE id = ? AND workspace_id = ? RETURNING *",
            vec![
                value().into(),
                me.agent_id.as_str().into(),
                me.workspace_id.as_str().into(),
            ],
        ))
        .await?
        .ok_or(AppError::NotFound("agent"))?;
    txn.commit().await?;
    let agent = agent::Model::from_query_result(&row, "")?;
    core.agents.put(agent.id.clone(), agent.clone());
    Ok(agent)
}

/// Note that `agent_ids` have a socket open here now, and announce those that
/// come back from `OFFLINE`.
pub async fn seen(core: &Core, agent_ids: &[String]) -> AppResult<()> {
    if agent_ids.is_empty() {
        return Ok(());
    }
    let marks = vec!["?"; agent_ids.len()].join(", ");
    let now = now_ms();
    let mut values: Vec<sea_orm::Value> = vec![now.into()];
    values.extend(agent_ids.iter().map(|id| id.as_str().into()));
    core.db
        .writer
        .execute_raw(stmt(
            core.db.backend(),
            &format!("UPDATE agents SET last_seen_at = ? WHERE id IN ({marks})"),
            values.clone(),
        ))
        .await?;
    announce(
        core,
        &format!(
            "UPDATE agents SET announced = availability \
             WHERE id IN ({marks}) AND announced = 'OFFLINE' AND last_seen_at >= ? RETURNING *"
        ),
        values[1..]
            .iter()
            .cloned()
            .chain([sea_orm::Value::from(now)])
            .collect(),
    )
    .await?;
    Ok(())
}

/// Announce as `OFFLINE` the agents without a socket seen within the timeout.
pub async fn sweep_offline(core: &Core) -> AppResult<Vec<agent::Model>> {
    let timeout = i64::try_from(core.config.presence_timeout.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now_ms() - timeout;
    // Looked for on the background connections first: most beats find nobody, and
    // write nothing.
    let due = core
        .db
        .background
        .query_one_raw(stmt(
            core.db.backend(),
            "SELECT id FROM agents WHERE announced <> 'OFFLINE' \
             AND (last_seen_at IS NULL OR last_seen_at < ?) LIMIT 1",
            vec![cutoff.into()],
        ))
        .await?;
    if due.is_none() {
        return Ok(Vec::new());
    }
    announce(
        core,
        "UPDATE agents SET announced = 'OFFLINE' \
         WHERE announced <> 'OFFLINE' AND (last_seen_at IS NULL OR last_seen_at < ?) RETURNING *",
        vec![cutoff.into()],
    )
    .await
}

/// Keep presence from this process until shutdown: every quarter of the timeout,
/// note the agents that `open_agents` says have a socket open here.
pub fn start(core: &Core, open_agents: impl Fn() -> Vec<String> + Send + 'static) {
    let core = core.clone();
    let every = (core.config.presence_timeout / 4).max(Duration::from_millis(10));
    core.tasks.clone().spawn(async move {
        loop {
            tokio::select! {
                () = core.shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            let open = open_agents();
            if let Err(err) = seen(&core, &open).await {
                tracing::warn!(error.detail = ?err, "noting agents' sockets failed");
            }
            if let Err(err) = sweep_offline(&core).await {
                tracing::warn!(error.detail = ?err, "announcing offline agents failed");
            }
        }
    });
}

/// A first socket of `agent_id` opened on this process: note it now, not at the
/// next beat.
pub fn opened(core: &Core, agent_id: &str) {
    let (core, ids) = (core.clone(), vec![agent_id.to_owned()]);
    core.tasks.clone().spawn(async move {
        if let Err(err) = seen(&core, &ids).await {
            tracing::warn!(error.detail = ?err, "noting an agent's socket failed");
        }
    });
}
