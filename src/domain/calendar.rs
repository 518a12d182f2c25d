//! Which days count: weekends and the bank holidays of the organisation's nation (shipped as
//! data from GOV.UK in `data/bank-holidays.json`), one-off holidays added later, and the
//! organisation's own closure days.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Deserialize;

text_enum!(
    /// The UK's three bank-holiday calendars, named as GOV.UK names its divisions.
    Nation {
        EnglandAndWales => "england-and-wales",
        Scotland => "scotland",
        NorthernIreland => "northern-ireland",
    }
);

#[derive(Deserialize)]
struct Division {
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    title: String,
    date: NaiveDate,
}

/// The shipped holidays, per nation: date → title.
/// The data is part of the binary and its tests parse it, so it cannot fail at run time.
#[allow(clippy::expect_used)]
static SHIPPED: LazyLock<BTreeMap<Nation, BTreeMap<NaiveDate, String>>> = LazyLock::new(|| {
    let raw: BTreeMap<String, Division> = serde_json::from_str(include_str!("../../data/bank-holidays.json"))
        .expect("data/bank-holidays.json is valid (checked by its tests)");
    raw.into_iter()
        .filter_map(|(name, division)| {
            let nation = Nation::parse(&name)?;
            Some((nation, division.events.into_iter().map(|e| (e.date, e.title)).collect()))
        })
        .collect()
});

impl PartialOrd for Nation {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Nation {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// The bank holidays shipped for `nation`, with their titles.
pub fn shipped_holidays(nation: Nation) -> &'static BTreeMap<NaiveDate, String> {
    &SHIPPED[&nation]
}

/// The last day the shipped data covers, across every nation. The shipped data is never empty
/// (its tests say so).
#[allow(clippy::expect_used)]
pub fn shipped_until() -> NaiveDate {
    SHIPPED
        .values()
        .filter_map(|days| days.keys().next_back().copied())
        .min()
        .expect("holiday data is not empty")
}

/// An organisation's working calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    pub nation: Nation,
    /// One-off holidays of its nation and its own closure days.
    pub extra_closed: BTreeSet<NaiveDate>,
}

impl Calendar {
    pub fn new(nation: Nation) -> Self {
        Calendar { nation, extra_closed: BTreeSet::new() }
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
            && !shipped_holidays(self.nation).contains_key(&day)
            && !self.extra_closed.contains(&day)
    }

    /// The `n`th working day after `day` (day 0 itself never counts).
    pub fn add_working_days(&self, day: NaiveDate, n: u32) -> NaiveDate {
        let mut d = day;
        let mut left = n;
        while left > 0 {
            // The calendar ends in the year 262,142; a deadline there stays there.
            let Some(next) = d.succ_opt() else { return d };
            d = next;
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// The `n`th working day before `day`.
    pub fn sub_working_days(&self, day: NaiveDate, n: u32) -> NaiveDate {
        let mut d = day;
        let mut left = n;
        while left > 0 {
            let Some(previous) = d.pred_opt() else { return d };
            d = previous;
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// How many working days lie after `from` up to and including `to`.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        from.iter_days().skip(1).take_while(|d| *d <= to).filter(|d| self.is_working_day(*d)).count() as u32
    }
}

#[cfg(test)]
mod tests;
