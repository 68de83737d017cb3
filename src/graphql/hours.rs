//! Business hours in the schema: `BusinessHoursInput` for `updateTeam`, and
//! `Team.businessHours`.

use async_graphql::{
    InputObject, InputValueError, InputValueResult, Object, Scalar, ScalarType, Value,
};

use crate::domain::handoff::hours::{self, IntervalInput};
use crate::entity::Weekday;
use crate::entity::team::{BusinessHours, Interval};
use crate::error::AppResult;

/// A calendar date, `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Date(pub chrono::NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| {
                    InputValueError::custom(format!("\"{text}\" is not a date as YYYY-MM-DD"))
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// When a team answers. `null` (the default) means always open.
#[derive(InputObject)]
pub struct BusinessHoursInput {
    /// IANA time zone, e.g. `Europe/Berlin`: the hours are local to it.
    pub time_zone: String,
    /// Opening intervals; an interval past midnight is two.
    pub intervals: Vec<BusinessIntervalInput>,
    /// Whole days closed, in the team's time zone.
    #[graphql(default)]
    pub holidays: Vec<Date>,
}

/// Open on `weekday` from `opens` to `closes` (`HH:MM`, 24-hour; `closes` may be
/// `24:00`).
#[derive(InputObject)]
pub struct BusinessIntervalInput {
    pub weekday: Weekday,
    pub opens: String,
    pub closes: String,
}

impl BusinessHoursInput {
    /// The checked hours, or `BAD_USER_INPUT` naming the field.
    pub fn check(&self) -> AppResult<BusinessHours> {
        let intervals: Vec<IntervalInput<'_>> = self
            .intervals
            .iter()
            .map(|i| IntervalInput {
                weekday: i.weekday,
                opens: &i.opens,
                closes: &i.closes,
            })
            .collect();
        let holidays: Vec<chrono::NaiveDate> = self.holidays.iter().map(|d| d.0).collect();
        hours::check(&self.time_zone, &intervals, &holidays)
    }
}

/// A team's business hours.
pub struct BusinessHoursView(pub BusinessHours);

#[Object(name = "BusinessHours")]
impl BusinessHoursView {
    async fn time_zone(&self) -> &str {
        self.0.time_zone.name()
    }

    async fn intervals(&self) -> Vec<BusinessInterval> {
        self.0
            .intervals
            .iter()
            .copied()
            .map(BusinessInterval)
            .collect()
    }

    async fn holidays(&self) -> Vec<Date> {
        self.0.holidays.iter().copied().map(Date).collect()
    }

    /// Whether the team is open now.
    async fn open_now(&self) -> bool {
        hours::is_open(&self.0, chrono::Utc::now())
    }

    /// When it next opens (now, when open); `null` when it never does.
    async fn next_open_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        hours::next_open(&self.0, chrono::Utc::now())
    }
}

/// One opening interval.
pub struct BusinessInterval(Interval);

#[Object]
impl BusinessInterval {
    async fn weekday(&self) -> Weekday {
        self.0.weekday
    }

    /// `HH:MM`.
    async fn opens(&self) -> String {
        hours::clock(self.0.opens)
    }

    /// `HH:MM` (`24:00`: midnight at the day's end).
    async fn closes(&self) -> String {
        hours::clock(self.0.closes)
    }
}
