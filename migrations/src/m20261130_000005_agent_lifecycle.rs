//! The agent lifecycle: an agent can be deactivated (and reactivated), and every token
//! of an agent carries the agent's token generation, which a password change or a
//! reactivation moves on, ending the tokens issued before.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        conn.execute_unprepared(
            "ALTER TABLE agents ADD COLUMN active BOOLEAN NOT NULL DEFAULT TRUE",
        )
        .await?;
        conn.execute_unprepared(
            "ALTER TABLE agents ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        conn.execute_unprepared("ALTER TABLE agents DROP COLUMN token_generation")
            .await?;
        conn.execute_unprepared("ALTER TABLE agents DROP COLUMN active")
            .await?;
        Ok(())
    }
}
