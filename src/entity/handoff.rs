use sea_orm::entity::prelude::*;

#[derive(
    Clone, Debug, Default, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize,
)]
#[sea_orm(table_name = "handoffs")]
/// Decoded with defaults for the columns a read left out: an inbox page reads only
/// what its document selects (`chat::lists`).
#[serde(default)]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub workspace_id: String,
    pub conversation_id: String,
    pub reason: super::HandoffReason,
    pub status: super::HandoffStatus,
    pub team_id: Option<String>,
    pub accepted_by: Option<String>,
    /// What the visitor (or the AI) said when asking for a person.
    pub note: Option<String>,
    /// The `seq` of the last message when the handoff was requested.
    pub trigger_seq: i64,
    pub requested_at: i64,
    pub accepted_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub cancelled_at: Option<i64>,
    /// Requested outside its team's business hours.
    #[serde(default, deserialize_with = "super::bool_or_int")]
    pub out_of_hours: bool,
    /// The agent the handoff is offered to while `OFFERED` (`domain::handoff::routing`).
    #[serde(default)]
    pub offered_to: Option<String>,
    /// When the offer passes to the next agent (ms).
    #[serde(default)]
    pub offer_expires_at: Option<i64>,
    /// When the team's accept target passes, counted in its business hours (ms).
    #[serde(default)]
    pub sla_due_at: Option<i64>,
    /// When the accept target was found passed with the handoff still waiting.
    #[serde(default)]
    pub sla_breached_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
