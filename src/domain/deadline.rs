//! Deadlines: when a clock that starts at one instant runs out, counted in the organisation's
//! own time zone.
//!
//! The counting rule: the day the clock starts is day 0; the deadline is the end of the Nth
//! counted day (23:59:59 local time), stored in UTC; the case is overdue from the next instant.
//! Today every day counts (calendar days); `DayCount` is where working days will plug in.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::calendar::{Calendar, Nation};
use super::DueKind;

text_enum!(
    /// How the days of a deadline are counted: every day, or working days only (no weekends,
    /// bank holidays of the organisation's nation, or its closure days).
    DayCount { Calendar => "calendar", Working => "working" }
);

/// One kind of clock: how many days it runs and how they are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub days: u32,
    pub count: DayCount,
}

/// An organisation's deadline settings: its time zone, its calendar and each clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub tz: Tz,
    pub calendar: Calendar,
    pub appeal_window: Clock,
    pub response: Clock,
    pub escalation_window: Clock,
    pub committee_target: Clock,
    /// How long a request for more information waits for its answer, counted like the
    /// response clock.
    pub info_answer_days: u32,
}

impl Schedule {
    /// Every clock in calendar days, England and Wales: for tests and examples.
    pub fn calendar_days(tz: Tz, appeal: u32, response: u32, escalation: u32, committee: u32) -> Self {
        let c = |days| Clock { days, count: DayCount::Calendar };
        Schedule {
            tz,
            calendar: Calendar::new(Nation::EnglandAndWales),
            appeal_window: c(appeal),
            response: c(response),
            escalation_window: c(escalation),
            committee_target: c(committee),
            info_answer_days: 5,
        }
    }

    pub fn clock(&self, kind: DueKind) -> Clock {
        match kind {
            DueKind::AppealWindow => self.appeal_window,
            DueKind::Response => self.response,
            DueKind::EscalationWindow => self.escalation_window,
            DueKind::CommitteeTarget => self.committee_target,
        }
    }

    /// The deadline of a `kind` clock started at `start`.
    pub fn deadline(&self, kind: DueKind, start: DateTime<Utc>) -> DateTime<Utc> {
        let clock = self.clock(kind);
        self.deadline_after(clock.count, clock.days, start)
    }

    /// The end of the `days`th counted day after the local day of `start`.
    pub fn deadline_after(&self, count: DayCount, days: u32, start: DateTime<Utc>) -> DateTime<Utc> {
        let first_day = start.with_timezone(&self.tz).date_naive();
        let last_day = match count {
            DayCount::Calendar => first_day + Days::new(u64::from(days)),
            DayCount::Working => self.calendar.add_working_days(first_day, days),
        };
        end_of_local_day(last_day, self.tz)
    }

    /// How many counted days of a `kind` clock are left at `now` before `due`: what a paused
    /// clock keeps to resume with.
    pub fn days_left(&self, kind: DueKind, now: DateTime<Utc>, due: DateTime<Utc>) -> u32 {
        let today = now.with_timezone(&self.tz).date_naive();
        let last = due.with_timezone(&self.tz).date_naive();
        if last <= today {
            return 0;
        }
        match self.clock(kind).count {
            DayCount::Calendar => u32::try_from((last - today).num_days()).unwrap_or(0),
            DayCount::Working => self.calendar.working_days_between(today, last),
        }
    }

    /// When a reminder `working_days` before `due` becomes due: the start of that working day.
    pub fn reminder_at(&self, due: DateTime<Utc>, working_days: u32) -> DateTime<Utc> {
        let day = self.calendar.sub_working_days(due.with_timezone(&self.tz).date_naive(), working_days);
        start_of_local_day(day, self.tz)
    }
}

/// 00:00 of `day` in `tz`, in UTC (or the first moment of the day where midnight is skipped).
pub fn start_of_local_day(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let mut time = NaiveTime::MIN;
    loop {
        match tz.from_local_datetime(&day.and_time(time)) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(earlier, _) => return earlier.with_timezone(&Utc),
            LocalResult::None => time += chrono::Duration::minutes(30),
        }
    }
}

/// 23:59:59 of `day` in `tz`, in UTC. Where a clock change makes that moment ambiguous the
/// later reading is used, so nobody loses time; where it does not exist (no zone in use here
/// skips midnight, but some do) the last second before the gap ends the day.
pub fn end_of_local_day(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    const LAST_SECOND: NaiveTime = match NaiveTime::from_hms_opt(23, 59, 59) {
        Some(t) => t,
        None => panic!("23:59:59 is a time of day"),
    };
    let mut time = LAST_SECOND;
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
        Schedule::calendar_days(tz, 28, 5, 28, 28)
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

    fn working(nation: Nation, days: u32) -> Schedule {
        let mut s = Schedule::calendar_days(chrono_tz::Europe::London, 28, days, 28, 28);
        s.calendar = Calendar::new(nation);
        s.response = Clock { days, count: DayCount::Working };
        s
    }

    #[test]
    fn the_worked_example_of_the_readme() {
        // A response clock starting on Thursday 2 April 2026 with 5 working days.
        let start = utc("2026-04-02T10:00:00Z");
        let ew = working(Nation::EnglandAndWales, 5).deadline(DueKind::Response, start);
        assert_eq!(ew, utc("2026-04-13T22:59:59Z"));
        assert_eq!(long_date(ew, chrono_tz::Europe::London), "Monday 13 April 2026");
        let sc = working(Nation::Scotland, 5).deadline(DueKind::Response, start);
        assert_eq!(long_date(sc, chrono_tz::Europe::London), "Friday 10 April 2026");
        let ni = working(Nation::NorthernIreland, 5).deadline(DueKind::Response, start);
        assert_eq!(long_date(ni, chrono_tz::Europe::London), "Monday 13 April 2026");
    }

    #[test]
    fn across_christmas_and_new_year() {
        // Starting Wednesday 23 December 2026: the 24th, 29th, 30th and 31st count; the 25th,
        // the 28th (Boxing Day's substitute) and 1 January do not, so the fifth is Monday
        // 4 January; in Scotland that Monday is 2 January's substitute.
        let start = utc("2026-12-23T15:00:00Z");
        let ew = working(Nation::EnglandAndWales, 5).deadline(DueKind::Response, start);
        assert_eq!(long_date(ew, chrono_tz::Europe::London), "Monday 4 January 2027");
        let sc = working(Nation::Scotland, 5).deadline(DueKind::Response, start);
        assert_eq!(long_date(sc, chrono_tz::Europe::London), "Tuesday 5 January 2027");
        assert_eq!(ew, utc("2027-01-04T23:59:59Z"), "GMT in winter");
    }

    #[test]
    fn working_days_across_both_clock_changes() {
        // Friday 27 March 2026, in GMT: 30, 31 March, 1, 2 April count, Good Friday and Easter
        // Monday do not, so the fifth is Tuesday 7 April, in BST.
        let ew = working(Nation::EnglandAndWales, 5);
        let due = ew.deadline(DueKind::Response, utc("2026-03-27T11:00:00Z"));
        assert_eq!(due, utc("2026-04-07T22:59:59Z"));
        // Friday 23 October 2026 (BST) + 5 working days = Friday 30 October, in GMT.
        let due = ew.deadline(DueKind::Response, utc("2026-10-23T11:00:00Z"));
        assert_eq!(due, utc("2026-10-30T23:59:59Z"));
    }

    /// Every start from 2018 to 2028 at a few times of day, for each nation and count.
    fn starts() -> impl Iterator<Item = DateTime<Utc>> {
        let first = utc("2018-01-01T00:30:00Z");
        (0..4000).flat_map(move |d| {
            [0, 9, 23].map(|h| first + chrono::Duration::days(d) + chrono::Duration::hours(h))
        })
    }

    #[test]
    fn properties_of_counted_deadlines() {
        for nation in Nation::ALL {
            for days in [1u32, 5, 10] {
                let s = working(*nation, days);
                let mut previous: Option<DateTime<Utc>> = None;
                for start in starts() {
                    let due = s.deadline(DueKind::Response, start);
                    let day = due.with_timezone(&s.tz).date_naive();
                    // The deadline ends a counted day, at 23:59:59 local time.
                    assert!(s.calendar.is_working_day(day), "{nation} {start}: {day} is not a working day");
                    assert_eq!(due.with_timezone(&s.tz).format("%H:%M:%S").to_string(), "23:59:59");
                    // Exactly `days` counted days after the start day.
                    let first = start.with_timezone(&s.tz).date_naive();
                    assert_eq!(s.calendar.working_days_between(first, day), days, "{nation} {start}");
                    // A later start never gives an earlier deadline.
                    if let Some(p) = previous {
                        assert!(due >= p, "{nation} {start}: {due} before {p}");
                    }
                    previous = Some(due);
                }
            }
        }
    }

    #[test]
    fn pausing_for_k_days_moves_the_deadline_by_k_counted_days() {
        let s = working(Nation::Scotland, 5);
        for start in starts().step_by(7).take(1500) {
            let due = s.deadline(DueKind::Response, start);
            for k in [1u32, 3, 8] {
                // Paused at the start, resumed k counted days later with the days left.
                let left = s.days_left(DueKind::Response, start, due);
                let resume_day = s.calendar.add_working_days(start.with_timezone(&s.tz).date_naive(), k);
                let resume = start_of_local_day(resume_day, s.tz) + chrono::Duration::hours(12);
                let resumed = s.deadline_after(DayCount::Working, left, resume);
                let moved = s.calendar.working_days_between(
                    due.with_timezone(&s.tz).date_naive(),
                    resumed.with_timezone(&s.tz).date_naive(),
                );
                assert_eq!(moved, k, "{start} paused {k}");
            }
        }
    }

    #[test]
    fn reminders_start_the_working_day_before() {
        let s = working(Nation::EnglandAndWales, 5);
        let due = utc("2026-04-13T22:59:59Z");
        // One working day before Monday 13 April is Friday 10 April, from midnight BST.
        assert_eq!(s.reminder_at(due, 1), utc("2026-04-09T23:00:00Z"));
    }
}
