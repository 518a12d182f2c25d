//! Organisations: making one, its settings and clocks, and the days its clocks do not count.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::db::{new_id, to_db_time, write_tx, DbConnection};
use crate::domain::calendar::{Calendar, Nation};
use crate::domain::deadline::Clock;
use crate::domain::{DayCount, Schedule};
use crate::error::{AppError, AppResult};
use crate::store::{self, Organisation};
use crate::validate::{self, Checker};

use super::{log_change, ChangedBy, OrgChange, OrgId};

// ---------------------------------------------------------------------------------------------
// Organisations, rules, users, tokens.

#[derive(Debug, Clone, Default)]
pub struct OrgInput {
    pub slug: String,
    pub name: String,
    pub secretary_email: String,
    pub reference_prefix: Option<String>,
    pub timezone: Option<String>,
    pub appeal_window_days: Option<i32>,
    pub response_days: Option<i32>,
    pub escalation_window_days: Option<i32>,
    pub committee_target_days: Option<i32>,
}

pub fn parse_timezone(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

impl Organisation {
    pub fn tz(&self) -> Tz {
        parse_timezone(&self.timezone).unwrap_or(chrono_tz::Europe::London)
    }

    pub fn nation(&self) -> Nation {
        Nation::parse(&self.nation).unwrap_or(Nation::EnglandAndWales)
    }

    /// The organisation's clocks over a calendar that also skips `extra_closed` days.
    pub fn schedule_with(&self, extra_closed: Vec<NaiveDate>) -> Schedule {
        let clock = |days: i32, count: &str| Clock {
            days: u32::try_from(days).unwrap_or(1),
            count: DayCount::parse(count).unwrap_or(DayCount::Calendar),
        };
        Schedule {
            tz: self.tz(),
            calendar: Calendar { nation: self.nation(), extra_closed: extra_closed.into_iter().collect() },
            appeal_window: clock(self.appeal_window_days, &self.appeal_window_count),
            response: clock(self.response_days, &self.response_count),
            escalation_window: clock(self.escalation_window_days, &self.escalation_window_count),
            committee_target: clock(self.committee_target_days, &self.committee_target_count),
            info_answer_days: u32::try_from(self.info_answer_days).unwrap_or(5),
        }
    }
}

/// The organisation's deadline schedule, with its one-off holidays and closure days.
pub fn schedule_of(conn: &mut DbConnection, org: &Organisation) -> AppResult<Schedule> {
    Ok(org.schedule_with(store::extra_closed_days(conn, org)?))
}

fn default_prefix(slug: &str) -> String {
    slug.chars().filter(|c| c.is_ascii_alphanumeric()).take(3).collect::<String>().to_ascii_uppercase()
}

/// Checks a new organisation, recording every problem in `c`.
pub fn org_from_input(c: &mut Checker, input: OrgInput, now: DateTime<Utc>) -> Organisation {
    let slug = input.slug.trim().to_string();
    if !(2..=40).contains(&slug.len())
        || !slug.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
    {
        c.fail("slug", "must be 2 to 40 characters of lower-case letters, digits and hyphens");
    }
    let name = c.line("name", Some(&input.name), validate::NAME_MAX, true).unwrap_or_default();
    let secretary_email = c.email("secretary_email", Some(&input.secretary_email), true).unwrap_or_default();
    let prefix = input.reference_prefix.unwrap_or_else(|| default_prefix(&slug)).to_ascii_uppercase();
    if !(2..=8).contains(&prefix.len()) || !prefix.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        c.fail("reference_prefix", "must be 2 to 8 letters or digits");
    }
    let timezone = input.timezone.unwrap_or_else(|| "Europe/London".into());
    if parse_timezone(&timezone).is_none() {
        c.fail("timezone", format!("{timezone:?} is not a time zone name like Europe/London"));
    }
    let mut days = |field: &str, v: Option<i32>, default: i32| {
        let d = v.unwrap_or(default);
        if !(1..=365).contains(&d) {
            c.fail(field, "must be a number of days from 1 to 365");
        }
        d
    };
    Organisation {
        id: OrgId::new(),
        slug,
        name,
        reference_prefix: prefix,
        timezone,
        secretary_email,
        appeal_window_days: days("appeal_window_days", input.appeal_window_days, 28),
        response_days: days("response_days", input.response_days, 5),
        escalation_window_days: days("escalation_window_days", input.escalation_window_days, 28),
        committee_target_days: days("committee_target_days", input.committee_target_days, 28),
        created_at: to_db_time(now),
        nation: Nation::EnglandAndWales.as_str().into(),
        appeal_window_count: DayCount::Calendar.as_str().into(),
        response_count: DayCount::Working.as_str().into(),
        escalation_window_count: DayCount::Calendar.as_str().into(),
        committee_target_count: DayCount::Calendar.as_str().into(),
        response_reminder_days: 1,
        committee_reminder_days: 2,
        info_answer_days: 5,
        accessibility_statement: None,
        public_note: None,
    }
}

pub fn add_org(conn: &mut DbConnection, input: OrgInput, now: DateTime<Utc>) -> AppResult<Organisation> {
    let mut c = Checker::new();
    let org = org_from_input(&mut c, input, now);
    c.finish()?;
    write_tx(conn, |conn| {
        crate::db::lock_organisations(conn)?;
        if store::org_by_slug(conn, &org.slug)?.is_some() {
            return Err(AppError::Conflict(format!(
                "an organisation with slug {:?} already exists",
                org.slug
            )));
        }
        if let Some(other) = store::org_by_prefix(conn, &org.reference_prefix)? {
            return Err(AppError::field(
                "reference_prefix",
                format!(
                    "{} already numbers its cases {}-…: choose another reference prefix (2 to 8 letters or digits)",
                    other.name, org.reference_prefix
                ),
            ));
        }
        store::insert_org(conn, &org)?;
        Ok(org)
    })
}

pub fn find_org(conn: &mut DbConnection, slug: &str) -> AppResult<Organisation> {
    store::org_by_slug(conn, slug)?.ok_or_else(|| AppError::NotFound(format!("no organisation {slug:?}")))
}

// ---------------------------------------------------------------------------------------------
// Administration of an organisation.

/// The settings an admin may change.
#[derive(Debug, Clone, Default, serde::Deserialize, Serialize)]
#[serde(default)]
pub struct OrgSettings {
    pub name: String,
    pub secretary_email: String,
    pub timezone: String,
    pub appeal_window_days: String,
    pub response_days: String,
    pub escalation_window_days: String,
    pub committee_target_days: String,
    pub nation: String,
    pub appeal_window_count: String,
    pub response_count: String,
    pub escalation_window_count: String,
    pub committee_target_count: String,
    pub response_reminder_days: String,
    pub committee_reminder_days: String,
    pub info_answer_days: String,
}

impl OrgSettings {
    pub fn of(org: &Organisation) -> Self {
        OrgSettings {
            name: org.name.clone(),
            secretary_email: org.secretary_email.clone(),
            timezone: org.timezone.clone(),
            appeal_window_days: org.appeal_window_days.to_string(),
            response_days: org.response_days.to_string(),
            escalation_window_days: org.escalation_window_days.to_string(),
            committee_target_days: org.committee_target_days.to_string(),
            nation: org.nation.clone(),
            appeal_window_count: org.appeal_window_count.clone(),
            response_count: org.response_count.clone(),
            escalation_window_count: org.escalation_window_count.clone(),
            committee_target_count: org.committee_target_count.clone(),
            response_reminder_days: org.response_reminder_days.to_string(),
            committee_reminder_days: org.committee_reminder_days.to_string(),
            info_answer_days: org.info_answer_days.to_string(),
        }
    }
}

/// The settings that differ, by the words of the settings page.
fn settings_changed(before: &OrgSettings, after: &OrgSettings) -> Vec<&'static str> {
    let pairs = [
        ("name", &before.name, &after.name),
        ("secretary's email address", &before.secretary_email, &after.secretary_email),
        ("time zone", &before.timezone, &after.timezone),
        ("appeal window", &before.appeal_window_days, &after.appeal_window_days),
        ("response time", &before.response_days, &after.response_days),
        ("escalation window", &before.escalation_window_days, &after.escalation_window_days),
        ("committee target", &before.committee_target_days, &after.committee_target_days),
        ("nation", &before.nation, &after.nation),
        ("how the appeal window is counted", &before.appeal_window_count, &after.appeal_window_count),
        ("how the response time is counted", &before.response_count, &after.response_count),
        (
            "how the escalation window is counted",
            &before.escalation_window_count,
            &after.escalation_window_count,
        ),
        (
            "how the committee target is counted",
            &before.committee_target_count,
            &after.committee_target_count,
        ),
        ("response reminder", &before.response_reminder_days, &after.response_reminder_days),
        ("committee reminder", &before.committee_reminder_days, &after.committee_reminder_days),
        ("time to answer a question", &before.info_answer_days, &after.info_answer_days),
    ];
    pairs.into_iter().filter(|(_, a, b)| a.trim() != b.trim()).map(|(label, _, _)| label).collect()
}

/// Changes an organisation's settings. New deadline lengths apply to clocks started from now
/// on; a deadline already running keeps the date people were given.
pub fn update_org(
    conn: &mut DbConnection,
    org: &Organisation,
    s: &OrgSettings,
    by: ChangedBy,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let mut c = Checker::new();
    let name = c.line("name", Some(&s.name), validate::NAME_MAX, true).unwrap_or_default();
    let secretary_email = c.email("secretary_email", Some(&s.secretary_email), true).unwrap_or_default();
    let timezone = s.timezone.trim().to_string();
    if parse_timezone(&timezone).is_none() {
        c.fail("timezone", "Enter a time zone name like Europe/London");
    }
    let mut days = |field: &str, v: &str| match v.trim().parse::<i32>() {
        Ok(d) if (1..=365).contains(&d) => d,
        _ => {
            c.fail(field, "Enter a number of days from 1 to 365");
            0
        }
    };
    let appeal = days("appeal_window_days", &s.appeal_window_days);
    let response = days("response_days", &s.response_days);
    let escalation = days("escalation_window_days", &s.escalation_window_days);
    let committee = days("committee_target_days", &s.committee_target_days);
    let info = days("info_answer_days", &s.info_answer_days);
    let mut reminder = |field: &str, v: &str| match v.trim().parse::<i32>() {
        Ok(d) if (0..=30).contains(&d) => d,
        _ => {
            c.fail(field, "Enter a number of working days from 0 (no reminder) to 30");
            0
        }
    };
    let response_reminder = reminder("response_reminder_days", &s.response_reminder_days);
    let committee_reminder = reminder("committee_reminder_days", &s.committee_reminder_days);
    let nation = Nation::parse(s.nation.trim());
    if nation.is_none() {
        c.fail("nation", "Choose england-and-wales, scotland or northern-ireland");
    }
    let mut count = |field: &str, v: &str| match DayCount::parse(v.trim()) {
        Some(d) => d.as_str(),
        None => {
            c.fail(field, "Choose calendar or working days");
            "calendar"
        }
    };
    let counts = [
        count("appeal_window_count", &s.appeal_window_count),
        count("response_count", &s.response_count),
        count("escalation_window_count", &s.escalation_window_count),
        count("committee_target_count", &s.committee_target_count),
    ];
    c.finish()?;
    let Some(nation) = nation else {
        return Err(AppError::field("nation", "Choose england-and-wales, scotland or northern-ireland"));
    };
    let nation = nation.as_str();
    let calendar_changed = response_reminder != org.response_reminder_days
        || committee_reminder != org.committee_reminder_days
        || nation != org.nation
        || timezone != org.timezone
        || counts[1] != org.response_count
        || counts[3] != org.committee_target_count;
    write_tx(conn, |conn| {
        let change = store::SettingsChange {
            name: &name,
            secretary_email: &secretary_email,
            timezone: &timezone,
            appeal_window_days: appeal,
            response_days: response,
            escalation_window_days: escalation,
            committee_target_days: committee,
            info_answer_days: info,
            response_reminder_days: response_reminder,
            committee_reminder_days: committee_reminder,
            nation,
            appeal_window_count: counts[0],
            response_count: counts[1],
            escalation_window_count: counts[2],
            committee_target_count: counts[3],
        };
        store::update_settings(conn, &org.id, &change)?;
        let changed = settings_changed(&OrgSettings::of(org), s);
        if !changed.is_empty() {
            log_change(conn, &org.id, by, OrgChange::SettingsChanged, &changed.join(", "), None, now)?;
        }
        // Reminder instants depend on the reminder days and the calendar: when those change,
        // the next sweep works out again the instants of the organisation's cases waiting on a
        // response or on the committee.
        if calendar_changed {
            store::recompute_reminders(conn, &org.id, now)?;
        }
        Ok(())
    })
}

/// Adds a day that no clock counts: a one-off bank holiday of a nation, or one of an
/// organisation's own closure days.
pub fn add_closed_day(
    conn: &mut DbConnection,
    nation: Option<Nation>,
    org: Option<&Organisation>,
    day: NaiveDate,
    title: &str,
    by: ChangedBy,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let mut c = Checker::new();
    let title = c.line("title", Some(title), validate::NAME_MAX, true).unwrap_or_default();
    c.finish()?;
    write_tx(conn, |conn| {
        let (nation, org_id) = (nation.map(|n| n.as_str()), org.map(|o| &o.id));
        if nation.is_none() && org_id.is_none() {
            return Err(AppError::Internal("a closed day needs a nation or an organisation".into()));
        }
        if store::closed_day_exists(conn, nation, org_id, day)? {
            return Err(AppError::Conflict(format!("{day} is already a closed day there")));
        }
        store::insert_closed_day(
            conn,
            &store::ClosedDay {
                id: new_id(),
                nation: nation.map(str::to_string),
                organisation_id: org_id.cloned(),
                day,
                title: title.clone(),
                created_at: to_db_time(now),
            },
        )?;
        if let Some(org) = org {
            let when = day.format("%A %-d %B %Y").to_string();
            log_change(conn, &org.id, by, OrgChange::ClosureAdded, &when, Some(title.clone()), now)?;
        }
        Ok(())
    })
}

/// An organisation's own closure days, for the admin page.
pub fn closures(conn: &mut DbConnection, org: &Organisation) -> AppResult<Vec<(NaiveDate, String)>> {
    Ok(store::closures_of(conn, &org.id)?)
}
