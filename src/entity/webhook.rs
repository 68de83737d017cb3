use sea_orm::entity::prelude::*;

/// A workspace's webhook: where its events are delivered, signed, in order.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub workspace_id: String,
    pub url: String,
    pub description: Option<String>,
    /// JSON array of event type names; empty: every type.
    pub event_types: String,
    /// JSON array of team ids; with `tag_ids`, narrows conversation events (any).
    pub team_ids: String,
    /// JSON array of tag ids.
    pub tag_ids: String,
    /// The signing secret (`whsec_…`); kept to sign, shown once.
    pub secret: String,
    /// The secret before the last rotation, which signs beside the new one until
    /// `previous_secret_expires_at`.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// The event log position delivered up to (see `crate::events::Cursor`).
    pub cursor_tx: i64,
    pub cursor_pos: i64,
    /// When the current run of failures began, if one is running.
    pub failing_since: Option<i64>,
    /// Failed attempts at the current event.
    pub attempts: i32,
    pub next_attempt_at: i64,
    /// The process delivering it, until `lease_until`.
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Model {
    pub fn event_types(&self) -> crate::error::AppResult<Vec<String>> {
        super::decode("webhooks", "event_types", &self.id, &self.event_types)
    }

    pub fn team_ids(&self) -> crate::error::AppResult<Vec<String>> {
        super::decode("webhooks", "team_ids", &self.id, &self.team_ids)
    }

    pub fn tag_ids(&self) -> crate::error::AppResult<Vec<String>> {
        super::decode("webhooks", "tag_ids", &self.id, &self.tag_ids)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
