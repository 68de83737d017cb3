//! Database migrations for Casefile, portable across SQLite and PostgreSQL.
//!
//! One file per migration, applied in order by [`Migrator`]. Timestamps are stored as
//! `BIGINT` milliseconds since the Unix epoch, so that aggregates (medians, buckets)
//! are plain integer arithmetic on both databases; JSON documents are stored as `TEXT`.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_foundation;
mod m20261126_000002_handoffs;
mod m20261126_000003_insights;
mod m20261126_000004_insight_indexes;
mod m20261130_000005_agent_lifecycle;
mod m20261130_000006_identity_verification;
mod m20261130_000007_event_log;
mod m20261130_000008_inbox_indexes;
mod m20261130_000009_insight_covering_indexes;
mod m20261130_000010_conversation_endings;
mod m20261130_000011_business_hours;
mod m20261130_000012_agent_presence;
mod m20261201_000013_routing;
mod m20261206_000014_model_answers;
mod m20261206_000015_knowledge_measured;
mod m20261206_000016_trust;
mod m20261206_000017_message_lookups;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_foundation::Migration),
            Box::new(m20261126_000002_handoffs::Migration),
            Box::new(m20261126_000003_insights::Migration),
            Box::new(m20261126_000004_insight_indexes::Migration),
            Box::new(m20261130_000005_agent_lifecycle::Migration),
            Box::new(m20261130_000006_identity_verification::Migration),
            Box::new(m20261130_000007_event_log::Migration),
            Box::new(m20261130_000008_inbox_indexes::Migration),
            Box::new(m20261130_000009_insight_covering_indexes::Migration),
            Box::new(m20261130_000010_conversation_endings::Migration),
            Box::new(m20261130_000011_business_hours::Migration),
            Box::new(m20261130_000012_agent_presence::Migration),
            Box::new(m20261201_000013_routing::Migration),
            Box::new(m20261206_000014_model_answers::Migration),
            Box::new(m20261206_000015_knowledge_measured::Migration),
            Box::new(m20261206_000016_trust::Migration),
            Box::new(m20261206_000017_message_lookups::Migration),
        ]
    }
}
