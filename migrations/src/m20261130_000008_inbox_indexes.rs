//! Indexes that give every documented inbox list its order, so a page of the
//! newest (by id) or most recently updated conversations, of the whole workspace or
//! of one status, team or assignee (none included), is read from the front of an
//! index and stops after the page: its cost does not grow with the workspace.
//!
//! Each ends with the list's order (`id`, or `updated_at, id`); the `(workspace_id,
//! status)` and `(workspace_id, updated_at)` indexes they replace could not give the
//! `id` tie-break, so every page sorted the workspace. Filters by tag scan the
//! ordered index and probe `conversation_tags` by its primary key.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The new indexes: name and columns.
const INDEXES: &[(&str, &str)] = &[
    ("ix_conversations_inbox_newest", "workspace_id, id"),
    (
        "ix_conversations_inbox_updated",
        "workspace_id, updated_at, id",
    ),
    (
        "ix_conversations_inbox_status_newest",
        "workspace_id, status, id",
    ),
    (
        "ix_conversations_inbox_status_updated",
        "workspace_id, status, updated_at, id",
    ),
    (
        "ix_conversations_inbox_team_newest",
        "workspace_id, team_id, id",
    ),
    (
        "ix_conversations_inbox_team_updated",
        "workspace_id, team_id, updated_at, id",
    ),
    (
        "ix_conversations_inbox_assignee_newest",
        "workspace_id, assignee_id, id",
    ),
    (
        "ix_conversations_inbox_assignee_updated",
        "workspace_id, assignee_id, updated_at, id",
    ),
];

/// The indexes they replace: name and columns.
const REPLACED: &[(&str, &str)] = &[
    (
        "ix_conversations_workspace_id_status",
        "workspace_id, status",
    ),
    (
        "ix_conversations_workspace_id_updated_at",
        "workspace_id, updated_at",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        for (name, columns) in INDEXES {
            conn.execute_unprepared(&format!("CREATE INDEX {name} ON conversations ({columns})"))
                .await?;
        }
        for (name, _) in REPLACED {
            conn.execute_unprepared(&format!("DROP INDEX {name}"))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        for (name, columns) in REPLACED {
            conn.execute_unprepared(&format!("CREATE INDEX {name} ON conversations ({columns})"))
                .await?;
        }
        for (name, _) in INDEXES {
            conn.execute_unprepared(&format!("DROP INDEX {name}"))
                .await?;
        }
        Ok(())
    }
}
