//! Agents' presence: the availability an agent set (`ONLINE` or `AWAY`), when a
//! socket of theirs was last seen open, and the availability last announced to
//! inboxes (so that each change is announced once, whichever process sees it).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        for statement in [
            "ALTER TABLE agents ADD COLUMN availability TEXT NOT NULL DEFAULT 'ONLINE'",
            "ALTER TABLE agents ADD COLUMN announced TEXT NOT NULL DEFAULT 'OFFLINE'",
            "ALTER TABLE agents ADD COLUMN last_seen_at BIGINT",
        ] {
            conn.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        for statement in [
            "ALTER TABLE agents DROP COLUMN last_seen_at",
            "ALTER TABLE agents DROP COLUMN announced",
            "ALTER TABLE agents DROP COLUMN availability",
        ] {
            conn.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
