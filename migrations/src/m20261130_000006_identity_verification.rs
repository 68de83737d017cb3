//! Identity verification for sites whose visitors are signed in: a workspace secret
//! the site's backend signs visitor identities with, a switch that requires them,
//! and leads whose email and name came verified.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        conn.execute_unprepared("ALTER TABLE workspaces ADD COLUMN identity_secret TEXT")
            .await?;
        conn.execute_unprepared(
            "ALTER TABLE workspaces ADD COLUMN require_verified_identity BOOLEAN NOT NULL DEFAULT FALSE",
        )
        .await?;
        conn.execute_unprepared(
            "ALTER TABLE leads ADD COLUMN verified BOOLEAN NOT NULL DEFAULT FALSE",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        conn.execute_unprepared("ALTER TABLE leads DROP COLUMN verified")
            .await?;
        conn.execute_unprepared("ALTER TABLE workspaces DROP COLUMN require_verified_identity")
            .await?;
        conn.execute_unprepared("ALTER TABLE workspaces DROP COLUMN identity_secret")
            .await?;
        Ok(())
    }
}
