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
    /// An IANA zone, e.g. `Europe/Berlin` (stored by its name: a name this build
    /// does not know makes the whole value fail to decode).
    pub time_zone: chrono_tz::Tz,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn team(business_hours: Option<&str>) -> Model {
        Model {
            id: "team_1".into(),
            workspace_id: "ws".into(),
            name: "Support".into(),
            created_at: 0,
            business_hours: business_hours.map(str::to_owned),
            routing: super::super::TeamRouting::Manual,
            offer_timeout_seconds: 60,
            accept_target_seconds: None,
            last_offered_to: None,
        }
    }

    #[test]
    fn stored_hours_read_back_and_an_unknown_zone_is_an_error_naming_the_team() {
        assert_eq!(team(None).business_hours().expect("decodes"), None);
        let stored = r#"{"timeZone":"Europe/Berlin","intervals":[{"weekday":"MONDAY","opens":540,"closes":1020}],"holidays":["2026-12-25"]}"#;
        let hours = team(Some(stored))
            .business_hours()
            .expect("decodes")
            .expect("has hours");
        assert_eq!(hours.time_zone, chrono_tz::Europe::Berlin);
        assert_eq!(hours.intervals.len(), 1);
        let unknown = stored.replace("Europe/Berlin", "Europe/Atlantis");
        let err = team(Some(&unknown))
            .business_hours()
            .expect_err("an unknown zone does not decode");
        assert!(
            err.detail().contains("teams.business_hours of row team_1"),
            "{}",
            err.detail()
        );
    }
}
