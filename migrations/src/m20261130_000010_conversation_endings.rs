//! How conversations end: who resolved a conversation and when, the visitor's
//! feedback on the AI's answers ("Did that answer your question?"), and agents'
//! flags on answers that were wrong. The digest's covering index on conversations
//! carries `resolved_by` instead of `status` (AI resolutions are counted by who
//! resolved).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        for statement in [
            "ALTER TABLE conversations ADD COLUMN resolved_by TEXT",
            "ALTER TABLE conversations ADD COLUMN resolved_at BIGINT",
            // Until now only agents resolved conversations.
            "UPDATE conversations SET resolved_by = 'AGENT', resolved_at = updated_at \
             WHERE status = 'RESOLVED'",
            "CREATE TABLE answer_feedback (\
                id TEXT NOT NULL PRIMARY KEY, \
                workspace_id TEXT NOT NULL, \
                conversation_id TEXT NOT NULL, \
                message_id TEXT NOT NULL UNIQUE, \
                helpful BOOLEAN NOT NULL, \
                comment TEXT, \
                created_at BIGINT NOT NULL)",
            "CREATE INDEX ix_answer_feedback_workspace_created \
             ON answer_feedback (workspace_id, created_at)",
            "CREATE INDEX ix_answer_feedback_conversation \
             ON answer_feedback (conversation_id)",
            "CREATE TABLE answer_flags (\
                id TEXT NOT NULL PRIMARY KEY, \
                workspace_id TEXT NOT NULL, \
                conversation_id TEXT NOT NULL, \
                message_id TEXT NOT NULL, \
                agent_id TEXT NOT NULL, \
                reason TEXT NOT NULL, \
                created_at BIGINT NOT NULL, \
                UNIQUE (message_id, agent_id))",
            "CREATE INDEX ix_answer_flags_workspace_created \
             ON answer_flags (workspace_id, created_at)",
            "DROP INDEX IF EXISTS ix_conversations_workspace_id_created_at",
            "CREATE INDEX ix_conversations_workspace_id_created_at \
             ON conversations (workspace_id, created_at, resolved_by, team_id, id)",
        ] {
            conn.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        for statement in [
            "DROP INDEX IF EXISTS ix_conversations_workspace_id_created_at",
            "CREATE INDEX ix_conversations_workspace_id_created_at \
             ON conversations (workspace_id, created_at, status, team_id, id)",
            "DROP TABLE answer_flags",
            "DROP TABLE answer_feedback",
            "ALTER TABLE conversations DROP COLUMN resolved_at",
            "ALTER TABLE conversations DROP COLUMN resolved_by",
        ] {
            conn.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
