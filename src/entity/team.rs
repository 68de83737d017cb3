use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "teams")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub created_at: i64,
    /// [`BusinessHours`] as JSON; `None` means always open. Read it with
    /// [`Model::business_hours`].
    pub business_hours: Option<String>,
    /// How handoffs reach the team's agents.
    pub routing: super::TeamRouting,
    /// How long an offer stands before it passes to the next agent.
    pub offer_timeout_seconds: i32,
    /// How soon a handoff should be accepted, in business time; `None`: no target.
    pub accept_target_seconds: Option<i32>,
    /// The agent offered a handoff last, where round robin goes on from.
    pub last_offered_to: Option<String>,
}

impl Model {
    /// When the team answers; `None` means always open.
    pub fn business_hours(&self) -> crate::error::AppResult<Option<BusinessHours>> {
        self.business_hours
            .as_deref()
            .map(|json| super::decode("teams", "business_hours", &self.id, json))
            .transpose()
    }
}

/// When a team answers, in its own time zone. Checked when set
/// (`domain::handoff::hours::check`): a known IANA zone, each interval opening before it
/// closes on its day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BusinessHours {
    /// IANA name, e.g. `Europe/Berlin`.
    pub time_zone: String,
    pub intervals: Vec<Interval>,
    /// Whole days closed, in the team's time zone (`YYYY-MM-DD`).
    pub holidays: Vec<chrono::NaiveDate>,
}

/// Open on `weekday` from `opens` to `closes`, minutes after midnight (`closes`
/// may be 1440, midnight at the day's end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interval {
    pub weekday: super::Weekday,
    pub opens: u16,
    pub closes: u16,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
