//! Covering indexes for the insights digest, so its passes over a period read
//! indexes only, never the rows behind them:
//!
//! - conversations by `(workspace_id, created_at)` also carry `status`, `team_id`
//!   and `id` (the series, the team filter and the joins by id), replacing the
//!   two-column index;
//! - handoffs by conversation also carry the reason and the times (the handoff
//!   statistics), replacing the one-column index;
//! - applied tags by conversation carry `removed_at` and `tag_id` (the topics);
//! - ratings by conversation carry the score (CSAT).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Each index: table, name, the columns before and after (`None`: it is new).
const INDEXES: &[(&str, &str, Option<&str>, &str)] = &[
    (
        "conversations",
        "ix_conversations_workspace_id_created_at",
        Some("workspace_id, created_at"),
        "workspace_id, created_at, status, team_id, id",
    ),
    (
        "handoffs",
        "ix_handoffs_conversation_id",
        Some("conversation_id"),
        "conversation_id, reason, requested_at, accepted_at, resolved_at",
    ),
    (
        "conversation_tags",
        "ix_conversation_tags_conversation_live",
        None,
        "conversation_id, removed_at, tag_id",
    ),
    (
        "conversation_ratings",
        "ix_conversation_ratings_conversation_score",
        None,
        "conversation_id, score",
    ),
];

async fn index(
    m: &SchemaManager<'_>,
    table: &str,
    name: &str,
    columns: Option<&str>,
) -> Result<(), DbErr> {
    let conn = m.get_connection();
    conn.execute_unprepared(&format!("DROP INDEX IF EXISTS {name}"))
        .await?;
    if let Some(columns) = columns {
        conn.execute_unprepared(&format!("CREATE INDEX {name} ON {table} ({columns})"))
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (table, name, _, columns) in INDEXES {
            index(m, table, name, Some(columns)).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (table, name, before, _) in INDEXES {
            index(m, table, name, *before).await?;
        }
        Ok(())
    }
}
