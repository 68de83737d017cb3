//! The event log (a transactional outbox that subscriptions, the `events` query and
//! webhooks all read by cursor), and webhooks with their delivery attempts.
//!
//! `events.pos` numbers rows as they are inserted; on PostgreSQL `events.tx` is the
//! id of the transaction that wrote the row (`pg_current_xact_id()`), which readers
//! use to consume rows only once no older transaction can still commit (see
//! `casefile::events`). On SQLite, one writer at a time commits rows in `pos`
//! order and `tx` stays 0.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        let events = match m.get_database_backend() {
            DbBackend::Postgres => {
                "CREATE TABLE events (
                    pos BIGSERIAL PRIMARY KEY,
                    tx BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
                    id TEXT NOT NULL,
                    workspace_id TEXT NOT NULL,
                    type TEXT NOT NULL,
                    conversation_id TEXT,
                    subject_id TEXT,
                    occurred_at BIGINT NOT NULL,
                    payload TEXT NOT NULL
                )"
            }
            _ => {
                "CREATE TABLE events (
                    pos INTEGER PRIMARY KEY AUTOINCREMENT,
                    tx BIGINT NOT NULL DEFAULT 0,
                    id TEXT NOT NULL,
                    workspace_id TEXT NOT NULL,
                    type TEXT NOT NULL,
                    conversation_id TEXT,
                    subject_id TEXT,
                    occurred_at BIGINT NOT NULL,
                    payload TEXT NOT NULL
                )"
            }
        };
        conn.execute_unprepared(events).await?;
        // Readers seek (tx, pos) on PostgreSQL; on SQLite tx is always 0 and pos is
        // the row id, so the indexes follow pos alone (see `casefile::events`).
        let indexes: &[&str] = match m.get_database_backend() {
            DbBackend::Postgres => &[
                "CREATE INDEX events_order ON events (tx, pos)",
                "CREATE INDEX events_workspace ON events (workspace_id, tx, pos)",
                "CREATE INDEX events_conversation ON events (conversation_id, tx, pos)",
            ],
            _ => &[
                "CREATE INDEX events_workspace ON events (workspace_id, pos)",
                "CREATE INDEX events_conversation ON events (conversation_id, pos)",
            ],
        };
        for index in indexes {
            conn.execute_unprepared(index).await?;
        }
        conn.execute_unprepared(
            "CREATE TABLE webhooks (
                id TEXT PRIMARY KEY,
                workspace_id TEXT NOT NULL,
                url TEXT NOT NULL,
                description TEXT,
                event_types TEXT NOT NULL,
                team_ids TEXT NOT NULL,
                tag_ids TEXT NOT NULL,
                secret TEXT NOT NULL,
                previous_secret TEXT,
                previous_secret_expires_at BIGINT,
                enabled BOOLEAN NOT NULL DEFAULT TRUE,
                disabled_reason TEXT,
                cursor_tx BIGINT NOT NULL,
                cursor_pos BIGINT NOT NULL,
                failing_since BIGINT,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at BIGINT NOT NULL DEFAULT 0,
                lease_owner TEXT,
                lease_until BIGINT,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )",
        )
        .await?;
        conn.execute_unprepared("CREATE INDEX webhooks_workspace ON webhooks (workspace_id)")
            .await?;
        conn.execute_unprepared(
            "CREATE TABLE webhook_deliveries (
                id TEXT PRIMARY KEY,
                webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
                workspace_id TEXT NOT NULL,
                event_id TEXT NOT NULL,
                event_type TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                succeeded BOOLEAN NOT NULL,
                response_code INTEGER,
                latency_ms BIGINT NOT NULL,
                error TEXT,
                created_at BIGINT NOT NULL
            )",
        )
        .await?;
        conn.execute_unprepared(
            "CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, created_at, id)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        for table in ["webhook_deliveries", "webhooks", "events"] {
            conn.execute_unprepared(&format!("DROP TABLE {table}"))
                .await?;
        }
        Ok(())
    }
}
