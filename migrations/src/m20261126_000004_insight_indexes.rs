//! Indexes for the insights digest's docs gaps: the AI's answers, newest first, with
//! their confidence in the index (a partial index, the same SQL on SQLite and
//! PostgreSQL), so the most recent unsure answers are found without reading every
//! message.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared(
                "CREATE INDEX ix_messages_ai_answers \
                 ON messages (workspace_id, created_at, confidence) WHERE author = 'AI'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("DROP INDEX ix_messages_ai_answers")
            .await?;
        Ok(())
    }
}
