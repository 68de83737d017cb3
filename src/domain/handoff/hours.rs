//! Business hours: when a team answers, and when it is back.
//!
//! Hours are kept in the team's IANA time zone (`chrono-tz`), so that "09:00 to
//! 17:30" stays 09:00 to 17:30 across daylight-saving changes. An interval belongs
//! to one day (one past midnight is written as two); holidays close whole days.

use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::entity::Weekday;
use crate::entity::team::{BusinessHours, Interval};
use crate::error::{AppError, AppResult};

/// Intervals a team may have (a week of split shifts is well under this).
const MAX_INTERVALS: usize = 50;
/// Holidays a team may list.
const MAX_HOLIDAYS: usize = 400;
/// How far ahead "when is it back" looks (holidays may close weeks).
const LOOK_AHEAD_DAYS: i64 = 400;

/// An interval as clients write it: times as `HH:MM` (24-hour; `closes` may be
/// `24:00`).
pub struct IntervalInput<'a> {
    pub weekday: Weekday,
    pub opens: &'a str,
    pub closes: &'a str,
}

/// A time zone by IANA name, or `BAD_USER_INPUT`.
pub fn zone(field: &str, name: &str) -> AppResult<Tz> {
    Tz::from_str(name.trim()).map_err(|_| {
        AppError::bad_input(
            field,
            format!("\"{name}\" is not an IANA time zone such as Europe/Berlin"),
        )
    })
}

/// `HH:MM` as minutes after midnight (`24:00` only where `end_of_day` allows it).
fn minutes(field: &str, text: &str, end_of_day: bool) -> AppResult<u16> {
    let bad = || AppError::bad_input(field, format!("\"{text}\" is not a time as HH:MM"));
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h > 24 || (h == 24 && (m != 0 || !end_of_day)) || h * 60 + m > 1440 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// Business hours from what a client sent, checked.
pub fn check(
    time_zone: &str,
    intervals: &[IntervalInput<'_>],
    holidays: &[NaiveDate],
) -> AppResult<BusinessHours> {
    let tz = zone("businessHours.timeZone", time_zone)?;
    if intervals.len() > MAX_INTERVALS {
        return Err(AppError::bad_input(
            "businessHours.intervals",
            format!("at most {MAX_INTERVALS}"),
        ));
    }
    if holidays.len() > MAX_HOLIDAYS {
        return Err(AppError::bad_input(
            "businessHours.holidays",
            format!("at most {MAX_HOLIDAYS}"),
        ));
    }
    let mut checked = Vec::with_capacity(intervals.len());
    for interval in intervals {
        let opens = minutes("businessHours.intervals.opens", interval.opens, false)?;
        let closes = minutes("businessHours.intervals.closes", interval.closes, true)?;
        if opens >= closes {
            return Err(AppError::bad_input(
                "businessHours.intervals",
                format!(
                    "{} opens at {} and closes at {}: an interval closes after it opens (one past midnight is two intervals)",
                    weekday_name(interval.weekday),
                    interval.opens,
                    interval.closes
                ),
            ));
        }
        checked.push(Interval {
            weekday: interval.weekday,
            opens,
            closes,
        });
    }
    let mut holidays = holidays.to_vec();
    holidays.sort();
    holidays.dedup();
    Ok(BusinessHours {
        time_zone: tz,
        intervals: checked,
        holidays,
    })
}

/// `HH:MM` of minutes after midnight.
pub fn clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

/// The team's zone.
fn tz_of(hours: &BusinessHours) -> Tz {
    hours.time_zone
}

/// Whether the team answers at `at`.
pub fn is_open(hours: &BusinessHours, at: DateTime<Utc>) -> bool {
    let local = at.with_timezone(&tz_of(hours));
    if hours.holidays.contains(&local.date_naive()) {
        return false;
    }
    let day = Weekday::from(local.weekday());
    let minute = (local.hour() * 60 + local.minute()) as u16;
    hours
        .intervals
        .iter()
        .any(|i| i.weekday == day && i.opens <= minute && minute < i.closes)
}

/// When the team next opens after `at` (`at` itself when open); `None` when it
/// never does (no intervals, or every open day a holiday for over a year).
pub fn next_open(hours: &BusinessHours, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if is_open(hours, at) {
        return Some(at);
    }
    let tz = tz_of(hours);
    let today = at.with_timezone(&tz).date_naive();
    for offset in 0..LOOK_AHEAD_DAYS {
        let date = today + Duration::days(offset);
        if hours.holidays.contains(&date) {
            continue;
        }
        let day = Weekday::from(date.weekday());
        let mut opens: Vec<u16> = hours
            .intervals
            .iter()
            .filter(|i| i.weekday == day)
            .map(|i| i.opens)
            .collect();
        opens.sort_unstable();
        for minute in opens {
            let start = instant(tz, date, minute)?;
            if start > at {
                return Some(start);
            }
        }
    }
    None
}

/// The local instant `minute` minutes after midnight of `date` (1440: the next
/// midnight); a time skipped by daylight saving is the first instant after it.
fn instant(tz: Tz, date: NaiveDate, minute: u16) -> Option<DateTime<Utc>> {
    let naive = date.and_hms_opt(0, 0, 0)? + Duration::minutes(i64::from(minute));
    let local = tz.from_local_datetime(&naive).earliest().or_else(|| {
        tz.from_local_datetime(&(naive + Duration::hours(1)))
            .earliest()
    })?;
    Some(local.with_timezone(&Utc))
}

/// When the stretch the team is open in at `at` closes (`at` must be open).
fn closes_after(hours: &BusinessHours, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tz = tz_of(hours);
    let local = at.with_timezone(&tz);
    let day = Weekday::from(local.weekday());
    let minute = (local.hour() * 60 + local.minute()) as u16;
    let closes = hours
        .intervals
        .iter()
        .filter(|i| i.weekday == day && i.opens <= minute && minute < i.closes)
        .map(|i| i.closes)
        .max()?;
    instant(tz, local.date_naive(), closes)
}

/// The instant `seconds` of the team's open time after `from`: time while it is
/// closed does not count (an SLA's clock). `None` when the team never opens.
pub fn after_business_time(
    hours: Option<&BusinessHours>,
    from: DateTime<Utc>,
    seconds: i64,
) -> Option<DateTime<Utc>> {
    let Some(hours) = hours else {
        return Some(from + Duration::seconds(seconds));
    };
    let mut at = from;
    let mut left = Duration::seconds(seconds);
    // Each turn passes one open stretch: a year of split shifts at most.
    for _ in 0..(LOOK_AHEAD_DAYS * 4) {
        at = next_open(hours, at)?;
        let closes = closes_after(hours, at)?.max(at + Duration::minutes(1));
        if closes - at >= left {
            return Some(at + left);
        }
        left -= closes - at;
        at = closes;
    }
    None
}

/// What the visitor is told when a handoff comes outside the team's hours: when
/// it is back, in the visitor's time zone when the widget sent a known one, else
/// in the team's.
pub fn back_message(
    hours: &BusinessHours,
    at: DateTime<Utc>,
    visitor_zone: Option<&str>,
) -> String {
    let Some(back) = next_open(hours, at) else {
        return "Our team is away right now. Leave your question here and we will answer as soon as someone is back.".to_owned();
    };
    let (tz, whose) = match visitor_zone.and_then(|name| Tz::from_str(name.trim()).ok()) {
        Some(tz) => (tz, "your time".to_owned()),
        None => {
            let tz = tz_of(hours);
            (tz, format!("{} time", tz.name()))
        }
    };
    let local = back.with_timezone(&tz);
    format!(
        "Our team is away right now and back on {} at {} ({whose}). Leave your question here and we will answer then.",
        local.format("%A %-d %B"),
        local.format("%H:%M"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin_weekdays() -> BusinessHours {
        let days = [
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
        ];
        let intervals: Vec<IntervalInput<'_>> = days
            .iter()
            .map(|&weekday| IntervalInput {
                weekday,
                opens: "09:00",
                closes: "17:30",
            })
            .collect();
        let christmas = NaiveDate::from_ymd_opt(2026, 12, 25).expect("date");
        check("Europe/Berlin", &intervals, &[christmas]).expect("valid hours")
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("a UTC time")
    }

    #[test]
    fn open_in_the_teams_own_time_zone_across_daylight_saving() {
        let hours = berlin_weekdays();
        // Monday 30 November 2026, 08:30 UTC is 09:30 in Berlin (winter, UTC+1).
        assert!(is_open(&hours, utc("2026-11-30T08:30:00Z")));
        assert!(
            !is_open(&hours, utc("2026-11-30T07:30:00Z")),
            "08:30 in Berlin"
        );
        assert!(
            !is_open(&hours, utc("2026-11-30T16:30:00Z")),
            "17:30 closes"
        );
        // Monday 6 July 2026, 07:30 UTC is 09:30 in Berlin (summer, UTC+2).
        assert!(is_open(&hours, utc("2026-07-06T07:30:00Z")));
        assert!(!is_open(&hours, utc("2026-12-05T10:00:00Z")), "a Saturday");
        assert!(!is_open(&hours, utc("2026-12-25T10:00:00Z")), "a holiday");
    }

    #[test]
    fn back_next_opening_skipping_weekends_and_holidays() {
        let hours = berlin_weekdays();
        // Friday evening: back Monday 09:00 Berlin = 08:00 UTC.
        assert_eq!(
            next_open(&hours, utc("2026-12-04T18:00:00Z")),
            Some(utc("2026-12-07T08:00:00Z"))
        );
        // Christmas Eve evening: the 25th is a holiday, back on the 28th (Monday).
        assert_eq!(
            next_open(&hours, utc("2026-12-24T17:00:00Z")),
            Some(utc("2026-12-28T08:00:00Z"))
        );
        let open = utc("2026-11-30T08:30:00Z");
        assert_eq!(next_open(&hours, open), Some(open), "open now");
        let never = check("UTC", &[], &[]).expect("valid");
        assert_eq!(next_open(&never, open), None);
    }

    #[test]
    fn the_visitor_reads_the_time_in_its_own_zone() {
        let hours = berlin_weekdays();
        let friday_night = utc("2026-12-04T22:00:00Z");
        assert_eq!(
            back_message(&hours, friday_night, Some("America/New_York")),
            "Our team is away right now and back on Monday 7 December at 03:00 (your time). Leave your question here and we will answer then."
        );
        assert!(
            back_message(&hours, friday_night, Some("Mars/Olympus"))
                .contains("at 09:00 (Europe/Berlin time)"),
            "an unknown zone falls back to the team's"
        );
    }

    #[test]
    fn bad_hours_are_refused_with_the_field() {
        let one = |opens: &'static str, closes: &'static str| {
            [IntervalInput {
                weekday: Weekday::Monday,
                opens,
                closes,
            }]
        };
        assert!(check("Europe/Berlin", &one("09:00", "24:00"), &[]).is_ok());
        for (zone, interval) in [
            ("Europe/Atlantis", one("09:00", "17:00")),
            ("Europe/Berlin", one("17:00", "09:00")),
            ("Europe/Berlin", one("9", "17:00")),
            ("Europe/Berlin", one("24:00", "24:00")),
            ("Europe/Berlin", one("09:60", "17:00")),
        ] {
            assert!(
                check(zone, &interval, &[]).is_err(),
                "{zone} {}",
                interval[0].opens
            );
        }
    }
    #[test]
    fn business_time_counts_only_open_hours() {
        let hours = berlin_weekdays();
        // Monday 30 November 2026, 16:00 in Berlin (15:00 UTC): an hour and a half
        // before closing at 17:30, so a two-hour target runs into Tuesday 09:30.
        let due = after_business_time(Some(&hours), utc("2026-11-30T15:00:00Z"), 2 * 3600);
        assert_eq!(due, Some(utc("2026-12-01T08:30:00Z")));
        // Friday evening: the weekend does not count.
        let due = after_business_time(Some(&hours), utc("2026-12-04T20:00:00Z"), 600);
        assert_eq!(due, Some(utc("2026-12-07T08:10:00Z")));
        // Always open: plain time.
        let due = after_business_time(None, utc("2026-12-04T20:00:00Z"), 600);
        assert_eq!(due, Some(utc("2026-12-04T20:10:00Z")));
    }
}
