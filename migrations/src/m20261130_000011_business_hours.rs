//! Business hours: a team's hours (JSON, `NULL` for always open), and whether a
//! handoff came outside them.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        conn.execute_unprepared("ALTER TABLE teams ADD COLUMN business_hours TEXT")
            .await?;
        conn.execute_unprepared(
            "ALTER TABLE handoffs ADD COLUMN out_of_hours BOOLEAN NOT NULL DEFAULT FALSE",
        )
        .await?;
        // The digest counts them; few handoffs are.
        conn.execute_unprepared(
            "CREATE INDEX ix_handoffs_out_of_hours ON handoffs (conversation_id) \
             WHERE out_of_hours = TRUE",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        conn.execute_unprepared("DROP INDEX IF EXISTS ix_handoffs_out_of_hours")
            .await?;
        conn.execute_unprepared("ALTER TABLE handoffs DROP COLUMN out_of_hours")
            .await?;
        conn.execute_unprepared("ALTER TABLE teams DROP COLUMN business_hours")
            .await?;
        Ok(())
    }
}
