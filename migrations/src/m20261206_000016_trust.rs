//! Trust:
//!
//! - `leads.erased_at` and `conversations.erased_at`: when a person's data was
//!   erased (`eraseContact`, or the workspace's retention); the rows stay, emptied,
//!   so the counts insights need still add up.
//! - `workspaces.retention_days`: conversations resolved longer ago than this are
//!   erased by a sweep (`NULL`: never).
//! - `audit_log`: every administrative act, who did it, on what and from where.
//!   Append-only: triggers refuse to change or delete a row, whatever asks.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        for statement in [
            "ALTER TABLE leads ADD COLUMN erased_at BIGINT",
            "ALTER TABLE conversations ADD COLUMN erased_at BIGINT",
            "ALTER TABLE workspaces ADD COLUMN retention_days INTEGER",
            "CREATE TABLE audit_log ( \
                id TEXT NOT NULL PRIMARY KEY, \
                workspace_id TEXT NOT NULL, \
                action TEXT NOT NULL, \
                actor_agent_id TEXT, \
                actor_key_id TEXT, \
                object_type TEXT, \
                object_id TEXT, \
                fields TEXT NOT NULL, \
                address TEXT, \
                created_at BIGINT NOT NULL)",
            "CREATE INDEX audit_log_by_time ON audit_log (workspace_id, id)",
            // Resolved conversations by when, for the retention sweep.
            "CREATE INDEX conversations_resolved_at ON conversations (workspace_id, resolved_at)",
        ] {
            conn.execute_unprepared(statement).await?;
        }
        let append_only: &[&str] = match m.get_database_backend() {
            DbBackend::Postgres => &[
                "CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$ \
                 BEGIN RAISE EXCEPTION 'the audit log is append-only'; END; \
                 $$ LANGUAGE plpgsql",
                "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
            ],
            _ => &[
                "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log \
                 BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
                "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log \
                 BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
            ],
        };
        for statement in append_only {
            conn.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        let mut statements = vec![
            "DROP TABLE audit_log",
            "DROP INDEX conversations_resolved_at",
        ];
        if m.get_database_backend() == DbBackend::Postgres {
            statements.push("DROP FUNCTION audit_log_append_only");
        }
        statements.extend([
            "ALTER TABLE workspaces DROP COLUMN retention_days",
            "ALTER TABLE conversations DROP COLUMN erased_at",
            "ALTER TABLE leads DROP COLUMN erased_at",
        ]);
        for statement in statements {
            conn.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
