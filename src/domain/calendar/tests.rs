//! The calendar against GOV.UK's published bank holidays, year by year and nation by nation,
//! written out here by hand from https://www.gov.uk/bank-holidays (2019 to 2027). 2018 and 2028
//! follow the statutory rules (2028 was not yet published when the data was made).

use super::*;
use chrono::Duration;

#[rustfmt::skip]
const ENGLAND_AND_WALES: &[(i32, &str)] = &[
    (2018, "01-01 03-30 04-02 05-07 05-28 08-27 12-25 12-26"),
    (2019, "01-01 04-19 04-22 05-06 05-27 08-26 12-25 12-26"),
    (2020, "01-01 04-10 04-13 05-08 05-25 08-31 12-25 12-28"),
    (2021, "01-01 04-02 04-05 05-03 05-31 08-30 12-27 12-28"),
    (2022, "01-03 04-15 04-18 05-02 06-02 06-03 08-29 09-19 12-26 12-27"),
    (2023, "01-02 04-07 04-10 05-01 05-08 05-29 08-28 12-25 12-26"),
    (2024, "01-01 03-29 04-01 05-06 05-27 08-26 12-25 12-26"),
    (2025, "01-01 04-18 04-21 05-05 05-26 08-25 12-25 12-26"),
    (2026, "01-01 04-03 04-06 05-04 05-25 08-31 12-25 12-28"),
    (2027, "01-01 03-26 03-29 05-03 05-31 08-30 12-27 12-28"),
    (2028, "01-03 04-14 04-17 05-01 05-29 08-28 12-25 12-26"),
];

const SCOTLAND: &[(i32, &str)] = &[
    (2018, "01-01 01-02 03-30 05-07 05-28 08-06 11-30 12-25 12-26"),
    (2019, "01-01 01-02 04-19 05-06 05-27 08-05 12-02 12-25 12-26"),
    (2020, "01-01 01-02 04-10 05-08 05-25 08-03 11-30 12-25 12-28"),
    (2021, "01-01 01-04 04-02 05-03 05-31 08-02 11-30 12-27 12-28"),
    (2022, "01-03 01-04 04-15 05-02 06-02 06-03 08-01 09-19 11-30 12-26 12-27"),
    (2023, "01-02 01-03 04-07 05-01 05-08 05-29 08-07 11-30 12-25 12-26"),
    (2024, "01-01 01-02 03-29 05-06 05-27 08-05 12-02 12-25 12-26"),
    (2025, "01-01 01-02 04-18 05-05 05-26 08-04 12-01 12-25 12-26"),
    (2026, "01-01 01-02 04-03 05-04 05-25 08-03 11-30 12-25 12-28"),
    (2027, "01-01 01-04 03-26 05-03 05-31 08-02 11-30 12-27 12-28"),
    (2028, "01-03 01-04 04-14 05-01 05-29 08-07 11-30 12-25 12-26"),
];

const NORTHERN_IRELAND: &[(i32, &str)] = &[
    (2018, "01-01 03-19 03-30 04-02 05-07 05-28 07-12 08-27 12-25 12-26"),
    (2019, "01-01 03-18 04-19 04-22 05-06 05-27 07-12 08-26 12-25 12-26"),
    (2020, "01-01 03-17 04-10 04-13 05-08 05-25 07-13 08-31 12-25 12-28"),
    (2021, "01-01 03-17 04-02 04-05 05-03 05-31 07-12 08-30 12-27 12-28"),
    (2022, "01-03 03-17 04-15 04-18 05-02 06-02 06-03 07-12 08-29 09-19 12-26 12-27"),
    (2023, "01-02 03-17 04-07 04-10 05-01 05-08 05-29 07-12 08-28 12-25 12-26"),
    (2024, "01-01 03-18 03-29 04-01 05-06 05-27 07-12 08-26 12-25 12-26"),
    (2025, "01-01 03-17 04-18 04-21 05-05 05-26 07-14 08-25 12-25 12-26"),
    (2026, "01-01 03-17 04-03 04-06 05-04 05-25 07-13 08-31 12-25 12-28"),
    (2027, "01-01 03-17 03-26 03-29 05-03 05-31 07-12 08-30 12-27 12-28"),
    (2028, "01-03 03-17 04-14 04-17 05-01 05-29 07-12 08-28 12-25 12-26"),
];

fn check(nation: Nation, table: &[(i32, &str)]) {
    let shipped = shipped_holidays(nation);
    for (year, days) in table {
        let expected: Vec<NaiveDate> = days
            .split_whitespace()
            .map(|md| NaiveDate::parse_from_str(&format!("{year}-{md}"), "%Y-%m-%d").unwrap())
            .collect();
        let got: Vec<NaiveDate> = shipped.keys().copied().filter(|d| d.year() == *year).collect();
        assert_eq!(got, expected, "{nation} {year}");
        let calendar = Calendar::new(nation);
        for day in &expected {
            assert!(!calendar.is_working_day(*day), "{nation} {day} is a holiday");
        }
    }
    assert_eq!(
        shipped.len(),
        table.iter().map(|(_, d)| d.split_whitespace().count()).sum::<usize>(),
        "{nation}: nothing else"
    );
}

#[test]
fn england_and_wales_matches_the_official_dates() {
    check(Nation::EnglandAndWales, ENGLAND_AND_WALES);
}

#[test]
fn scotland_matches_the_official_dates() {
    check(Nation::Scotland, SCOTLAND);
}

#[test]
fn northern_ireland_matches_the_official_dates() {
    check(Nation::NorthernIreland, NORTHERN_IRELAND);
}

#[test]
fn the_nations_differ_where_they_should() {
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let ew = Calendar::new(Nation::EnglandAndWales);
    let sc = Calendar::new(Nation::Scotland);
    let ni = Calendar::new(Nation::NorthernIreland);
    // Easter Monday: not in Scotland.
    assert!(!ew.is_working_day(d("2026-04-06")) && sc.is_working_day(d("2026-04-06")));
    // 2 January and St Andrew's Day: Scotland only.
    assert!(!sc.is_working_day(d("2026-01-02")) && ew.is_working_day(d("2026-01-02")));
    assert!(!sc.is_working_day(d("2026-11-30")) && ni.is_working_day(d("2026-11-30")));
    // St Patrick's Day and the Battle of the Boyne: Northern Ireland only.
    assert!(!ni.is_working_day(d("2026-03-17")) && ew.is_working_day(d("2026-03-17")));
    assert!(!ni.is_working_day(d("2026-07-13")) && sc.is_working_day(d("2026-07-13")));
    // The summer holiday: first Monday of August in Scotland, last elsewhere.
    assert!(!sc.is_working_day(d("2026-08-03")) && ew.is_working_day(d("2026-08-03")));
    assert!(!ew.is_working_day(d("2026-08-31")) && sc.is_working_day(d("2026-08-31")));
}

#[test]
fn the_data_lasts_at_least_a_year_from_today() {
    let today = chrono::Utc::now().date_naive();
    assert!(
        shipped_until() >= today + Duration::days(365),
        "data/bank-holidays.json ends on {}: add the next year's holidays (see the README, 'Bank holidays')",
        shipped_until()
    );
}

#[test]
fn extra_closures_and_counting() {
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let mut c = Calendar::new(Nation::EnglandAndWales);
    assert_eq!(c.add_working_days(d("2026-04-02"), 5), d("2026-04-13"));
    assert_eq!(c.working_days_between(d("2026-04-02"), d("2026-04-13")), 5);
    assert_eq!(c.sub_working_days(d("2026-04-13"), 1), d("2026-04-10"));
    c.extra_closed.insert(d("2026-04-08"));
    assert_eq!(c.add_working_days(d("2026-04-02"), 5), d("2026-04-14"));
}
