//! Routing: how a team hands out its handoffs (`MANUAL`, `ROUND_ROBIN`,
//! `LEAST_BUSY`), how long an offer stands and the accept target; how many
//! conversations an agent holds at most; on each handoff the agent it is offered
//! to, until when, and its SLA; and who was offered each handoff, so that an offer
//! passes to someone new.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        for statement in [
            "ALTER TABLE teams ADD COLUMN routing TEXT NOT NULL DEFAULT 'MANUAL'",
            "ALTER TABLE teams ADD COLUMN offer_timeout_seconds INTEGER NOT NULL DEFAULT 60",
            "ALTER TABLE teams ADD COLUMN accept_target_seconds INTEGER",
            "ALTER TABLE teams ADD COLUMN last_offered_to TEXT",
            "ALTER TABLE agents ADD COLUMN max_concurrent INTEGER NOT NULL DEFAULT 5",
            "ALTER TABLE handoffs ADD COLUMN offered_to TEXT",
            "ALTER TABLE handoffs ADD COLUMN offer_expires_at BIGINT",
            "ALTER TABLE handoffs ADD COLUMN sla_due_at BIGINT",
            "ALTER TABLE handoffs ADD COLUMN sla_breached_at BIGINT",
            "CREATE TABLE handoff_offers (\
                 handoff_id TEXT NOT NULL, \
                 agent_id TEXT NOT NULL, \
                 offered_at BIGINT NOT NULL, \
                 outcome TEXT, \
                 ended_at BIGINT, \
                 PRIMARY KEY (handoff_id, agent_id))",
            // An offered handoff is open too: still one per conversation.
            "DROP INDEX ux_handoffs_open",
            "CREATE UNIQUE INDEX ux_handoffs_open ON handoffs (conversation_id) \
             WHERE status IN ('REQUESTED', 'OFFERED', 'ACCEPTED')",
            // The sweep's reads: offers expiring, targets passing.
            "CREATE INDEX ix_handoffs_offer_expires_at ON handoffs (offer_expires_at) \
             WHERE status = 'OFFERED'",
            "CREATE INDEX ix_handoffs_sla_due_at ON handoffs (sla_due_at) \
             WHERE sla_breached_at IS NULL AND status IN ('REQUESTED', 'OFFERED')",
            // Offers an agent holds (capacity), and a team's waiting queue.
            "CREATE INDEX ix_handoffs_offered_to ON handoffs (offered_to) WHERE status = 'OFFERED'",
            "CREATE INDEX ix_handoffs_team_waiting ON handoffs (team_id, requested_at) \
             WHERE status = 'REQUESTED'",
        ] {
            conn.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let conn = m.get_connection();
        for statement in [
            "DROP INDEX ix_handoffs_team_waiting",
            "DROP INDEX ix_handoffs_offered_to",
            "DROP INDEX ix_handoffs_sla_due_at",
            "DROP INDEX ix_handoffs_offer_expires_at",
            // Offers go back to the queue they came from.
            "UPDATE handoffs SET status = 'REQUESTED' WHERE status = 'OFFERED'",
            "DROP INDEX ux_handoffs_open",
            "CREATE UNIQUE INDEX ux_handoffs_open ON handoffs (conversation_id) \
             WHERE status IN ('REQUESTED', 'ACCEPTED')",
            "DROP TABLE handoff_offers",
            "ALTER TABLE handoffs DROP COLUMN sla_breached_at",
            "ALTER TABLE handoffs DROP COLUMN sla_due_at",
            "ALTER TABLE handoffs DROP COLUMN offer_expires_at",
            "ALTER TABLE handoffs DROP COLUMN offered_to",
            "ALTER TABLE agents DROP COLUMN max_concurrent",
            "ALTER TABLE teams DROP COLUMN last_offered_to",
            "ALTER TABLE teams DROP COLUMN accept_target_seconds",
            "ALTER TABLE teams DROP COLUMN offer_timeout_seconds",
            "ALTER TABLE teams DROP COLUMN routing",
        ] {
            conn.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
