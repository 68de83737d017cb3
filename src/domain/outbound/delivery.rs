//! Delivering webhooks: every process delivers the event log to the workspaces'
//! webhooks, signed (Standard Webhooks), at least once, in order per webhook.
//!
//! A webhook remembers the log cursor it was delivered up to. A process takes a
//! webhook that has events after its cursor and is due by leasing it (a row update
//! that only one process can win: `FOR UPDATE SKIP LOCKED` on PostgreSQL, the one
//! writer on SQLite) for [`LEASE`], renewed as it goes, and delivers the events in
//! order: successes move the cursor (guarded by the lease; recorded a few at a
//! time, see `Done`), the first failure schedules a retry of the same event
//! after an exponential backoff
//! with jitter (`CASEFILE_WEBHOOK_RETRY_BASE`, doubling, at most [`MAX_DELAY`]
//! apart) and stops there. After failing for `CASEFILE_WEBHOOK_RETRY_FOR` (24 h)
//! the webhook is disabled with its reason; `updateWebhook(enabled: true)` resumes
//! from where it stopped. Everything lives in the database, so a restart, or a
//! process killed mid-delivery, resumes (that event is delivered again: at least
//! once). Each attempt is recorded in `webhook_deliveries`.

use crate::db::seal::{Sealer, WEBHOOK_PREVIOUS_SECRET, WEBHOOK_SECRET};
use std::time::Duration;

use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, Set,
};

use crate::db::stmt;
use crate::domain::Core;
use crate::domain::core::feed::{self, Event};
use crate::entity::{now_ms, webhook, webhook_delivery};
use crate::error::AppResult;
use crate::events::{self, Cursor, Scope};
use crate::ids::{Kind, new_id, random_secret};
use crate::webhooks::{Client, Secret, headers};

/// How long a process holds a webhook it delivers to without renewing.
pub const LEASE: Duration = Duration::from_secs(15);

/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

/// Webhooks delivered to at once by one process.
const CONCURRENT: u64 = 16;

/// Events read per statement while delivering.
const BATCH: u64 = 100;

/// Deliver webhooks from this process until shutdown: look whenever the log
/// moves, and every second for retries that came due. Whether the database has
/// any enabled webhook at all is read once a second, so that a server without
/// webhooks writes nothing for them (a webhook starts within a second).
pub fn start_delivering(core: &Core) {
    let core = core.clone();
    let node = random_secret(9);
    let client = Client::new(core.config.webhook_allow_private);
    core.tasks.clone().spawn(async move {
        let mut moved = core.events.delivered();
        let running = std::sync::Arc::new(tokio::sync::Semaphore::new(CONCURRENT as usize));
        let mut any = false;
        let mut checked: Option<tokio::time::Instant> = None;
        let mut claimed_at = tokio::time::Instant::now();
        loop {
            if checked.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                any = match any_enabled(&core).await {
                    Ok(any) => any,
                    Err(err) => {
                        tracing::warn!(error.detail = ?err, "reading webhooks failed");
                        false
                    }
                };
                checked = Some(tokio::time::Instant::now());
            }
            let room = if any {
                running.available_permits() as u64
            } else {
                0
            };
            match claim(&core, &node, room).await {
                Ok(claimed) => {
                    for webhook in claimed {
                        let Ok(permit) = std::sync::Arc::clone(&running).try_acquire_owned() else {
                            release(&core, &webhook.id, &node).await;
                            continue;
                        };
                        let (core, client, node) = (core.clone(), client.clone(), node.clone());
                        core.tasks.clone().spawn(async move {
                            if let Err(err) = deliver(&core, &client, &node, webhook).await {
                                tracing::warn!(error.detail = ?err, "webhook delivery failed");
                            }
                            drop(permit);
                        });
                    }
                }
                Err(err) => tracing::warn!(error.detail = ?err, "claiming webhooks failed"),
            }
            // At most one claim per `CLAIM_EVERY` however fast the log moves: a
            // webhook being delivered to is kept by its deliverer meanwhile.
            let next = claimed_at + CLAIM_EVERY;
            tokio::select! {
                () = core.shutdown.cancelled() => return,
                _ = moved.changed() => tokio::time::sleep_until(next).await,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            claimed_at = tokio::time::Instant::now();
        }
    });
}

/// The shortest time between two claims woken by new events.
const CLAIM_EVERY: Duration = Duration::from_millis(20);

async fn any_enabled(core: &Core) -> AppResult<bool> {
    use sea_orm::PaginatorTrait;
    Ok(webhook::Entity::find()
        .filter(webhook::Column::Enabled.eq(true))
        .count(&core.db.background)
        .await?
        > 0)
}

/// Lease up to `room` webhooks that are due and have events to deliver.
async fn claim(core: &Core, node: &str, room: u64) -> AppResult<Vec<webhook::Model>> {
    if room == 0 {
        return Ok(Vec::new());
    }
    let backend = core.db.backend();
    let now = now_ms();
    let (visible, lock) = match backend {
        DbBackend::Postgres => (
            " AND e.tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
            " FOR UPDATE SKIP LOCKED",
        ),
        _ => ("", ""),
    };
    // The cursor compared column to column (see `events::after_sql`).
    let after = events::after_sql(backend, "e.", "w.cursor_tx", "w.cursor_pos");
    let sql = format!(
        "UPDATE webhooks SET lease_owner = ?, lease_until = ? WHERE id IN (\
           SELECT w.id FROM webhooks w WHERE w.enabled AND w.next_attempt_at <= ? \
           AND (w.lease_until IS NULL OR w.lease_until < ?) \
           AND EXISTS (SELECT 1 FROM events e WHERE e.workspace_id = w.workspace_id \
             AND {after}{visible}) \
           ORDER BY w.next_attempt_at LIMIT ?{lock}) RETURNING *"
    );
    let rows = core
        .db
        .writer
        .query_all_raw(stmt(
            backend,
            &sql,
            vec![
                node.into(),
                (now + LEASE.as_millis() as i64).into(),
                now.into(),
                now.into(),
                (room as i64).into(),
            ],
        ))
        .await?;
    rows.iter()
        .map(|row| Ok(webhook::Model::from_query_result(row, "")?))
        .collect()
}

async fn release(core: &Core, id: &str, node: &str) {
    let released = core
        .db
        .writer
        .execute_raw(stmt(
            core.db.backend(),
            "UPDATE webhooks SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
            vec![id.into(), node.into()],
        ))
        .await;
    if let Err(err) = released {
        tracing::warn!(error.detail = ?err, "releasing a webhook lease failed");
    }
}

/// Whether `webhook` wants `event`.
async fn wants(core: &Core, webhook: &webhook::Model, event: &Event) -> AppResult<bool> {
    let kind = event.type_name();
    if !feed::PUBLIC_TYPES.contains(&kind) {
        return Ok(false);
    }
    let types = webhook.event_types()?;
    if !types.is_empty() && !types.iter().any(|t| t == kind) {
        return Ok(false);
    }
    let (teams, tags) = (webhook.team_ids()?, webhook.tag_ids()?);
    // An erasure concerns whoever kept a copy, whatever the teams and tags.
    if teams.is_empty() && tags.is_empty() || kind == feed::CONTACT_ERASED {
        return Ok(true);
    }
    let Some(conversation) = event.conversation() else {
        return Ok(false);
    };
    super::filters::routed_or_tagged(
        core,
        &conversation.id,
        conversation.team_id.as_deref(),
        &teams,
        &tags,
    )
    .await
}

/// The secrets that sign now: the current one, and the one before a rotation
/// for its overlap.
fn live_secrets(sealer: &Sealer, webhook: &webhook::Model, now: i64) -> AppResult<Vec<Secret>> {
    let previous = webhook.previous_secret.as_deref().filter(|_| {
        webhook
            .previous_secret_expires_at
            .is_some_and(|at| at > now)
    });
    let mut secrets = vec![sealer.open(WEBHOOK_SECRET, &webhook.secret)?];
    if let Some(previous) = previous {
        secrets.push(sealer.open(WEBHOOK_PREVIOUS_SECRET, previous)?);
    }
    Ok(secrets.iter().filter_map(|s| Secret::parse(s)).collect())
}

/// Deliver the events after `webhook`'s cursor, in order, until they run out or
/// one fails; then let the lease go.
async fn deliver(
    core: &Core,
    client: &Client,
    node: &str,
    webhook: webhook::Model,
) -> AppResult<()> {
    let result = deliver_leased(core, client, node, &webhook).await;
    release(core, &webhook.id, node).await;
    result
}

async fn deliver_leased(
    core: &Core,
    client: &Client,
    node: &str,
    webhook: &webhook::Model,
) -> AppResult<()> {
    let url = match url::Url::parse(&webhook.url) {
        Ok(url) => url,
        Err(err) => return disable(core, webhook, node, &format!("invalid URL: {err}")).await,
    };
    let mut done = Done::new(Cursor {
        tx: webhook.cursor_tx,
        pos: webhook.cursor_pos,
    });
    let mut attempts = webhook.attempts;
    let scope = Scope {
        workspace_id: Some(&webhook.workspace_id),
        ..Scope::default()
    };
    let mut moved = core.events.delivered();
    let mut idle_since = tokio::time::Instant::now();
    loop {
        let batch = events::read(&core.db.background, done.cursor, &scope, BATCH).await?;
        if batch.is_empty() {
            // Caught up: stay a moment for what comes next (a webhook busy with a
            // stream of events is not taken and let go for each one).
            if idle_since.elapsed() >= LINGER || core.shutdown.is_cancelled() {
                done.flush(core, webhook, node).await?;
                return Ok(());
            }
            if done.due() && !done.flush(core, webhook, node).await? {
                return Ok(());
            }
            tokio::select! {
                _ = moved.changed() => {}
                () = tokio::time::sleep(FLUSH_EVERY) => {}
                () = core.shutdown.cancelled() => {}
            }
            continue;
        }
        idle_since = tokio::time::Instant::now();
        for record in &batch {
            let at = record.cursor.unwrap_or(done.cursor);
            let Some(event) = feed::decode(record) else {
                done.cursor = at;
                continue;
            };
            if !wants(core, webhook, &event).await? {
                done.cursor = at;
                continue;
            }
            if core.shutdown.is_cancelled() {
                done.flush(core, webhook, node).await?;
                return Ok(());
            }
            // Renewing the lease writes what is done so far with it.
            if done.renewed.elapsed() >= LEASE / 3 && !done.flush(core, webhook, node).await? {
                return Ok(());
            }
            let body = serde_json::to_string(&crate::domain::outbound::events::envelope(&event)?)?;
            let now = now_ms();
            let secrets = live_secrets(&core.db.sealer, webhook, now)?;
            let signing: Vec<&Secret> = secrets.iter().collect();
            let headers = headers(&signing, &event.id, now / 1000, body.as_bytes());
            let attempt = client.post(&url, &headers, body).await;
            attempts += 1;
            let row = webhook_delivery::ActiveModel {
                id: Set(new_id(Kind::Delivery)),
                webhook_id: Set(webhook.id.clone()),
                workspace_id: Set(webhook.workspace_id.clone()),
                event_id: Set(event.id.clone()),
                event_type: Set(event.type_name().to_owned()),
                attempt: Set(attempts),
                succeeded: Set(attempt.succeeded()),
                response_code: Set(attempt.status.map(i32::from)),
                latency_ms: Set(attempt.latency.as_millis() as i64),
                error: Set(attempt.error.clone()),
                created_at: Set(now_ms()),
            };
            if !attempt.succeeded() {
                if !done.flush(core, webhook, node).await? {
                    return Ok(());
                }
                row.insert(&core.db.writer).await?;
                return failed(core, webhook, node, done.cursor, attempts, &attempt).await;
            }
            attempts = 0;
            done.succeeded(row, at);
            if done.due() && !done.flush(core, webhook, node).await? {
                return Ok(());
            }
        }
    }
}

/// Successful attempts not yet recorded, and the cursor delivery has reached:
/// written together (with the lease renewed) every [`FLUSH_EVERY`] or
/// [`FLUSH_ROWS`] attempts, before a failure is recorded, and at the end, rather
/// than three writes per event. A process that dies in between sends those events
/// again (deliveries are at least once).
struct Done {
    rows: Vec<webhook_delivery::ActiveModel>,
    cursor: Cursor,
    written: Cursor,
    since: tokio::time::Instant,
    renewed: tokio::time::Instant,
}

/// How long a caught-up deliverer keeps its webhook, waiting for more events.
const LINGER: Duration = Duration::from_secs(1);

/// How long successes wait to be recorded, at most.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// How many successes wait to be recorded, at most.
const FLUSH_ROWS: usize = 100;

impl Done {
    fn new(cursor: Cursor) -> Done {
        let now = tokio::time::Instant::now();
        Done {
            rows: Vec::new(),
            cursor,
            written: cursor,
            since: now,
            renewed: now,
        }
    }

    fn succeeded(&mut self, row: webhook_delivery::ActiveModel, at: Cursor) {
        if self.rows.is_empty() {
            self.since = tokio::time::Instant::now();
        }
        self.rows.push(row);
        self.cursor = at;
    }

    fn due(&self) -> bool {
        !self.rows.is_empty()
            && (self.rows.len() >= FLUSH_ROWS || self.since.elapsed() >= FLUSH_EVERY)
    }

    /// Record what is done and renew the lease, in one transaction; `false` when
    /// another process holds the lease now (nothing is written then).
    async fn flush(
        &mut self,
        core: &Core,
        webhook: &webhook::Model,
        node: &str,
    ) -> AppResult<bool> {
        use sea_orm::TransactionTrait;
        let renew_only = self.rows.is_empty() && self.cursor == self.written;
        let lease_due = self.renewed.elapsed() >= LEASE / 3;
        if renew_only && !lease_due {
            return Ok(true);
        }
        let txn = core.db.writer.begin().await?;
        let reset = if self.rows.is_empty() {
            ""
        } else {
            ", attempts = 0, failing_since = NULL"
        };
        let updated = txn
            .execute_raw(stmt(
                core.db.backend(),
                &format!(
                    "UPDATE webhooks SET cursor_tx = ?, cursor_pos = ?, lease_until = ?{reset} \
                     WHERE id = ? AND lease_owner = ?"
                ),
                vec![
                    self.cursor.tx.into(),
                    self.cursor.pos.into(),
                    (now_ms() + LEASE.as_millis() as i64).into(),
                    webhook.id.as_str().into(),
                    node.into(),
                ],
            ))
            .await?;
        if updated.rows_affected() != 1 {
            return Ok(false);
        }
        if !self.rows.is_empty() {
            webhook_delivery::Entity::insert_many(std::mem::take(&mut self.rows))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        self.written = self.cursor;
        self.renewed = tokio::time::Instant::now();
        Ok(true)
    }
}

/// Schedule the next attempt at the event after `cursor`, or disable the webhook
/// when it has failed for the whole retry window.
async fn failed(
    core: &Core,
    webhook: &webhook::Model,
    node: &str,
    cursor: Cursor,
    attempts: i32,
    attempt: &crate::webhooks::Attempt,
) -> AppResult<()> {
    let now = now_ms();
    let since = webhook.failing_since.unwrap_or(now);
    let why = match (&attempt.error, attempt.status) {
        (Some(error), _) => error.clone(),
        (None, Some(status)) => format!("answered {status}"),
        (None, None) => "no answer".to_owned(),
    };
    if now - since >= core.config.webhook_retry_for.as_millis() as i64 {
        let reason = format!(
            "every attempt failed for {} (the last: {why}); enable it again to resume",
            humantime::format_duration(core.config.webhook_retry_for)
        );
        return disable(core, webhook, node, &reason).await;
    }
    let delay = backoff(core.config.webhook_retry_base, attempts);
    core.db
        .writer
        .execute_raw(stmt(
            core.db.backend(),
            "UPDATE webhooks SET cursor_tx = ?, cursor_pos = ?, attempts = ?, failing_since = ?, \
             next_attempt_at = ? WHERE id = ? AND lease_owner = ?",
            vec![
                cursor.tx.into(),
                cursor.pos.into(),
                attempts.into(),
                since.into(),
                (now + delay.as_millis() as i64).into(),
                webhook.id.as_str().into(),
                node.into(),
            ],
        ))
        .await?;
    Ok(())
}

/// The wait before attempt `attempts + 1`: `base` doubled per failure so far, at
/// most [`MAX_DELAY`], times a random factor in 0.75..1.25 so that receivers that
/// come back are not met by every sender at once.
fn backoff(base: Duration, attempts: i32) -> Duration {
    let doubled = base.saturating_mul(1 << attempts.clamp(1, 20).saturating_sub(1));
    doubled
        .min(MAX_DELAY)
        .mul_f64(rand::thread_rng().gen_range(0.75..1.25))
}

async fn disable(core: &Core, webhook: &webhook::Model, node: &str, reason: &str) -> AppResult<()> {
    core.db
        .writer
        .execute_raw(stmt(
            core.db.backend(),
            "UPDATE webhooks SET enabled = FALSE, disabled_reason = ?, updated_at = ? \
             WHERE id = ? AND lease_owner = ?",
            vec![
                reason.into(),
                now_ms().into(),
                webhook.id.as_str().into(),
                node.into(),
            ],
        ))
        .await?;
    tracing::warn!(webhook = %webhook.id, reason, "webhook disabled");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_ceiling() {
        let base = Duration::from_secs(5);
        for (attempts, nominal) in [(1, 5.0), (2, 10.0), (3, 20.0), (4, 40.0)] {
            let wait = backoff(base, attempts).as_secs_f64();
            assert!(
                (nominal * 0.75..nominal * 1.25).contains(&wait),
                "{attempts}: {wait}"
            );
        }
        assert!(backoff(base, 40) <= MAX_DELAY.mul_f64(1.25));
    }
}
