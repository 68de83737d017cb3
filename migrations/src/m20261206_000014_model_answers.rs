//! Answers from a language model: each workspace's answer engine (`MODEL`,
//! `EXTRACTIVE` or `OFF`; unset takes the server's default), its instructions for
//! the model and its daily token limit, and one row per model request (what came
//! of it, the tokens it used, how soon it started answering), for the limit and for
//! insights. A workspace whose responder was off keeps it off, as `OFF`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        for statement in [
            "ALTER TABLE workspaces ADD COLUMN answer_engine TEXT",
            "UPDATE workspaces SET answer_engine = 'OFF' WHERE responder_enabled = FALSE",
            "ALTER TABLE workspaces ADD COLUMN answer_instructions TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE workspaces ADD COLUMN model_daily_token_limit BIGINT",
            "CREATE TABLE model_calls ( \
                id TEXT NOT NULL PRIMARY KEY, \
                workspace_id TEXT NOT NULL, \
                conversation_id TEXT NOT NULL, \
                message_id TEXT NOT NULL, \
                outcome TEXT NOT NULL, \
                failure TEXT, \
                prompt_tokens BIGINT NOT NULL DEFAULT 0, \
                completion_tokens BIGINT NOT NULL DEFAULT 0, \
                estimated BOOLEAN NOT NULL DEFAULT FALSE, \
                first_token_ms BIGINT, \
                created_at BIGINT NOT NULL \
            )",
            "CREATE INDEX model_calls_by_workspace ON model_calls (workspace_id, created_at)",
        ] {
            conn.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        for statement in [
            "DROP INDEX model_calls_by_workspace",
            "DROP TABLE model_calls",
            "UPDATE workspaces SET responder_enabled = (answer_engine IS NULL OR answer_engine <> 'OFF')",
            "ALTER TABLE workspaces DROP COLUMN model_daily_token_limit",
            "ALTER TABLE workspaces DROP COLUMN answer_instructions",
            "ALTER TABLE workspaces DROP COLUMN answer_engine",
        ] {
            conn.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
