//! Deadlines: when a clock that starts at one instant runs out, counted in the organisation's
//! own time zone.
//!
//! The counting rule: the day the clock starts is day 0; the deadline is the end of the Nth
//! counted day (23:59:59 local time), stored in UTC; the case is overdue from the next instant.
//! Today every day counts (calendar days); `DayCount` is where working days will plug in.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::DueKind;

/// How the days of a deadline are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayCount {
    Calendar,
}

/// An organisation's deadline settings: its time zone and the length of each clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub tz: Tz,
    pub appeal_window_days: u32,
    pub response_days: u32,
    pub escalation_window_days: u32,
    pub committee_target_days: u32,
    pub count: DayCount,
}

impl Schedule {
    pub fn days(&self, kind: DueKind) -> u32 {
        match kind {
            DueKind::AppealWindow => self.appeal_window_days,
            DueKind::Response => self.response_days,
            DueKind::EscalationWindow => self.escalation_window_days,
            DueKind::CommitteeTarget => self.committee_target_days,
        }
    }

    /// The deadline of a `kind` clock started at `start`.
    pub fn deadline(&self, kind: DueKind, start: DateTime<Utc>) -> DateTime<Utc> {
        let first_day = start.with_timezone(&self.tz).date_naive();
        let last_day = match self.count {
            DayCount::Calendar => first_day + Days::new(u64::from(self.days(kind))),
        };
        end_of_local_day(last_day, self.tz)
    }
}

/// 23:59:59 of `day` in `tz`, in UTC. Where a clock change makes that moment ambiguous the
/// later reading is used, so nobody loses time; where it does not exist (no zone in use here
/// skips midnight, but some do) the last second before the gap ends the day.
pub fn end_of_local_day(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let mut time = NaiveTime::from_hms_opt(23, 59, 59).expect("a valid time of day");
    loop {
        match tz.from_local_datetime(&day.and_time(time)) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(_, later) => return later.with_timezone(&Utc),
            LocalResult::None => {
                time -= chrono::Duration::minutes(30);
            }
        }
    }
}

/// A date as people read it in letters: "Monday 13 April 2026".
pub fn long_date(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%A %-d %B %Y").to_string()
}

/// A moment as people read it: "Monday 13 April 2026 at 14:05".
pub fn long_date_time(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%A %-d %B %Y at %H:%M").to_string()
}

/// How far off a deadline is, in the organisation's calendar days: "due today", "in 2 days",
/// "3 days overdue".
pub fn relative(due: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> String {
    let days = (due.with_timezone(&tz).date_naive() - now.with_timezone(&tz).date_naive()).num_days();
    if now > due {
        let late = days.abs().max(1);
        return if late == 1 { "1 day overdue".into() } else { format!("{late} days overdue") };
    }
    match days {
        0 => "due today".into(),
        1 => "in 1 day".into(),
        n => format!("in {n} days"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(tz: Tz) -> Schedule {
        Schedule {
            tz,
            appeal_window_days: 28,
            response_days: 5,
            escalation_window_days: 28,
            committee_target_days: 28,
            count: DayCount::Calendar,
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_calendar_days_end_at_local_midnight_minus_one_second() {
        let s = schedule(chrono_tz::Europe::London);
        // Thursday 2 April 2026, British Summer Time (UTC+1).
        let due = s.deadline(DueKind::Response, utc("2026-04-02T09:30:00Z"));
        assert_eq!(due, utc("2026-04-07T22:59:59Z"));
        assert_eq!(long_date(due, s.tz), "Tuesday 7 April 2026");
    }

    #[test]
    fn the_start_day_is_the_local_day_not_the_utc_day() {
        let s = schedule(chrono_tz::Europe::London);
        // 23:30 UTC on 30 June is already 1 July in London.
        let due = s.deadline(DueKind::Response, utc("2026-06-30T23:30:00Z"));
        assert_eq!(due, utc("2026-07-06T22:59:59Z"));
    }

    #[test]
    fn deadlines_across_the_clock_changes() {
        let s = schedule(chrono_tz::Europe::London);
        // Clocks go forward on Sunday 29 March 2026: the deadline is in BST.
        let due = s.deadline(DueKind::Response, utc("2026-03-26T12:00:00Z"));
        assert_eq!(due, utc("2026-03-31T22:59:59Z"));
        // Clocks go back on Sunday 25 October 2026: the deadline is in GMT.
        let due = s.deadline(DueKind::Response, utc("2026-10-22T12:00:00Z"));
        assert_eq!(due, utc("2026-10-27T23:59:59Z"));
    }

    #[test]
    fn other_time_zones_count_in_their_own_days() {
        let s = schedule(chrono_tz::America::New_York);
        let due = s.deadline(DueKind::Response, utc("2026-01-10T03:00:00Z"));
        // 03:00 UTC on 10 January is 22:00 on 9 January in New York.
        assert_eq!(due, utc("2026-01-15T04:59:59Z"));
    }

    #[test]
    fn relative_days() {
        let tz = chrono_tz::Europe::London;
        let due = utc("2026-04-07T22:59:59Z");
        assert_eq!(relative(due, utc("2026-04-07T08:00:00Z"), tz), "due today");
        assert_eq!(relative(due, utc("2026-04-05T08:00:00Z"), tz), "in 2 days");
        assert_eq!(relative(due, utc("2026-04-06T08:00:00Z"), tz), "in 1 day");
        assert_eq!(relative(due, utc("2026-04-07T23:30:00Z"), tz), "1 day overdue");
        assert_eq!(relative(due, utc("2026-04-10T12:00:00Z"), tz), "3 days overdue");
    }
}
