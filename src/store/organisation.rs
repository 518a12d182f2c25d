//! Organisations: their settings, policy rules and the days their clocks skip.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::*;
use crate::db::schema::*;
use crate::db::{to_db_time, DbConnection};

pub fn org_by_slug(conn: &mut DbConnection, slug: &str) -> QueryResult<Option<Organisation>> {
    if !storable(slug) {
        return Ok(None);
    }
    crate::on_backend!(conn, |c| organisations::table
        .filter(organisations::slug.eq(slug))
        .select(Organisation::as_select())
        .get_result(c)
        .optional())
}

/// The organisation whose case references start with `prefix`, if any. Case references are
/// unique across the database, so no two organisations may share a prefix.
pub fn org_by_prefix(conn: &mut DbConnection, prefix: &str) -> QueryResult<Option<Organisation>> {
    crate::on_backend!(conn, |c| organisations::table
        .filter(organisations::reference_prefix.eq(prefix))
        .select(Organisation::as_select())
        .get_result(c)
        .optional())
}

pub fn org_by_id(conn: &mut DbConnection, id: &str) -> QueryResult<Organisation> {
    crate::on_backend!(conn, |c| organisations::table
        .find(id)
        .select(Organisation::as_select())
        .get_result(c))
}

pub fn rules_of(conn: &mut DbConnection, org_id: &OrgId) -> QueryResult<Vec<PolicyRule>> {
    crate::on_backend!(conn, |c| policy_rules::table
        .filter(policy_rules::organisation_id.eq(org_id))
        .order(policy_rules::code)
        .select(PolicyRule::as_select())
        .load(c))
}

/// The days an organisation's clocks skip besides weekends and shipped bank holidays: one-off
/// holidays of its nation and its own closure days.
pub fn extra_closed_days(conn: &mut DbConnection, org: &Organisation) -> QueryResult<Vec<chrono::NaiveDate>> {
    crate::on_backend!(conn, |c| closed_days::table
        .filter(closed_days::nation.eq(&org.nation).or(closed_days::organisation_id.eq(&org.id)))
        .select(closed_days::day)
        .order(closed_days::day)
        .load(c))
}

/// The same for an organisation: new cases of one organisation take their reference numbers
/// one at a time.
pub fn lock_org(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    if let DbConnection::Pg(c) = conn {
        organisations::table.find(id).select(organisations::id).for_update().execute(c)?;
    }
    Ok(())
}

pub fn insert_org(conn: &mut DbConnection, org: &Organisation) -> QueryResult<()> {
    diesel::insert_into(organisations::table).values(org).execute(conn)?;
    Ok(())
}

/// The settings an admin may change, checked.
#[derive(Debug, Clone, PartialEq, AsChangeset)]
#[diesel(table_name = organisations)]
pub struct SettingsChange<'a> {
    pub name: &'a str,
    pub secretary_email: &'a str,
    pub timezone: &'a str,
    pub appeal_window_days: i32,
    pub response_days: i32,
    pub escalation_window_days: i32,
    pub committee_target_days: i32,
    pub info_answer_days: i32,
    pub response_reminder_days: i32,
    pub committee_reminder_days: i32,
    pub nation: &'a str,
    pub appeal_window_count: &'a str,
    pub response_count: &'a str,
    pub escalation_window_count: &'a str,
    pub committee_target_count: &'a str,
}

pub fn update_settings(conn: &mut DbConnection, org_id: &OrgId, change: &SettingsChange) -> QueryResult<()> {
    diesel::update(organisations::table.find(org_id)).set(change).execute(conn)?;
    Ok(())
}

/// Keeps the organisation's own accessibility statement; none puts the model one back.
pub fn set_accessibility_statement(
    conn: &mut DbConnection,
    org_id: &OrgId,
    text: Option<&str>,
) -> QueryResult<()> {
    diesel::update(organisations::table.find(org_id))
        .set(organisations::accessibility_statement.eq(text))
        .execute(conn)?;
    Ok(())
}

/// Keeps the organisation's wording of the public note; none puts the model back.
pub fn set_public_note(conn: &mut DbConnection, org_id: &OrgId, text: Option<&str>) -> QueryResult<()> {
    diesel::update(organisations::table.find(org_id))
        .set(organisations::public_note.eq(text))
        .execute(conn)?;
    Ok(())
}

/// An organisation's saved reasons, by step and title: a few dozen at most.
pub fn reasons_of(conn: &mut DbConnection, org_id: &OrgId) -> QueryResult<Vec<SavedReason>> {
    saved_reasons::table
        .filter(saved_reasons::organisation_id.eq(org_id))
        .order((saved_reasons::step, saved_reasons::title))
        .select(SavedReason::as_select())
        .load(conn)
}

/// One of the organisation's saved reasons; none when the id is another organisation's.
pub fn reason_of(conn: &mut DbConnection, org_id: &OrgId, id: &str) -> QueryResult<Option<SavedReason>> {
    if !storable(id) {
        return Ok(None);
    }
    saved_reasons::table
        .filter(saved_reasons::id.eq(id))
        .filter(saved_reasons::organisation_id.eq(org_id))
        .select(SavedReason::as_select())
        .first(conn)
        .optional()
}

pub fn insert_reason(conn: &mut DbConnection, reason: &SavedReason) -> QueryResult<()> {
    diesel::insert_into(saved_reasons::table).values(reason).execute(conn)?;
    Ok(())
}

pub fn update_reason(conn: &mut DbConnection, reason: &SavedReason) -> QueryResult<usize> {
    diesel::update(
        saved_reasons::table
            .filter(saved_reasons::id.eq(&reason.id))
            .filter(saved_reasons::organisation_id.eq(&reason.organisation_id)),
    )
    .set((
        saved_reasons::step.eq(&reason.step),
        saved_reasons::title.eq(&reason.title),
        saved_reasons::body.eq(&reason.body),
        saved_reasons::rule_codes.eq(&reason.rule_codes),
        saved_reasons::updated_at.eq(reason.updated_at),
    ))
    .execute(conn)
}

pub fn delete_reason(conn: &mut DbConnection, org_id: &OrgId, id: &str) -> QueryResult<usize> {
    diesel::delete(
        saved_reasons::table
            .filter(saved_reasons::id.eq(id))
            .filter(saved_reasons::organisation_id.eq(org_id)),
    )
    .execute(conn)
}

/// How far an organisation has got with setting itself up: its rules, its moderators, and
/// whether any case has been opened (each a look-up along an index of the organisation's).
pub fn setup_progress(conn: &mut DbConnection, org_id: &OrgId) -> QueryResult<(bool, bool, bool)> {
    use diesel::dsl::exists;
    let rules = diesel::select(exists(policy_rules::table.filter(policy_rules::organisation_id.eq(org_id))))
        .get_result(conn)?;
    let moderators = diesel::select(exists(
        memberships::table
            .filter(memberships::organisation_id.eq(org_id))
            .filter(memberships::role.eq("moderator")),
    ))
    .get_result(conn)?;
    let cases =
        diesel::select(exists(cases::table.filter(cases::organisation_id.eq(org_id)))).get_result(conn)?;
    Ok((rules, moderators, cases))
}

/// Whether `day` is already closed for this nation (or, with no nation, this organisation).
pub fn closed_day_exists(
    conn: &mut DbConnection,
    nation: Option<&str>,
    org_id: Option<&OrgId>,
    day: NaiveDate,
) -> QueryResult<bool> {
    let mut query = closed_days::table.filter(closed_days::day.eq(day)).into_boxed();
    query = match (nation, org_id) {
        (Some(n), _) => query.filter(closed_days::nation.eq(n.to_string())),
        (None, Some(o)) => query.filter(closed_days::organisation_id.eq(o.to_string())),
        (None, None) => return Ok(false),
    };
    let n: i64 = query.count().get_result(conn)?;
    Ok(n > 0)
}

pub fn insert_closed_day(conn: &mut DbConnection, day: &ClosedDay) -> QueryResult<()> {
    diesel::insert_into(closed_days::table).values(day).execute(conn)?;
    Ok(())
}

/// An organisation's own closure days, by date.
pub fn closures_of(conn: &mut DbConnection, org_id: &OrgId) -> QueryResult<Vec<(NaiveDate, String)>> {
    closed_days::table
        .filter(closed_days::organisation_id.eq(org_id))
        .order(closed_days::day)
        .select((closed_days::day, closed_days::title))
        .load(conn)
}

pub fn rule_exists(conn: &mut DbConnection, org_id: &OrgId, code: &str) -> QueryResult<bool> {
    let n: i64 = policy_rules::table
        .filter(policy_rules::organisation_id.eq(org_id))
        .filter(policy_rules::code.eq(code))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

pub fn insert_rule(conn: &mut DbConnection, rule: &PolicyRule) -> QueryResult<()> {
    diesel::insert_into(policy_rules::table).values(rule).execute(conn)?;
    Ok(())
}

/// Rewords a rule; false when the organisation has no rule with that code.
pub fn update_rule(
    conn: &mut DbConnection,
    org_id: &OrgId,
    code: &str,
    title: &str,
    summary: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let n = diesel::update(
        policy_rules::table
            .filter(policy_rules::organisation_id.eq(org_id))
            .filter(policy_rules::code.eq(code)),
    )
    .set((
        policy_rules::title.eq(title),
        policy_rules::summary.eq(summary),
        policy_rules::updated_at.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// The address replies to an organisation's emails go to: its secretary's.
pub fn secretary_email_of(conn: &mut DbConnection, org_id: &OrgId) -> QueryResult<Option<String>> {
    organisations::table.find(org_id).select(organisations::secretary_email).get_result(conn).optional()
}

/// One entry of an organisation's own log: a change an admin made to how it works.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = org_events)]
pub struct OrgEvent {
    pub id: String,
    pub organisation_id: OrgId,
    pub actor_user_id: Option<UserId>,
    pub token_issued_by: Option<UserId>,
    pub kind: String,
    pub subject: String,
    pub detail: Option<String>,
    pub created_at: NaiveDateTime,
}

pub fn insert_org_event(conn: &mut DbConnection, event: &OrgEvent) -> QueryResult<()> {
    diesel::insert_into(org_events::table).values(event).execute(conn)?;
    Ok(())
}

/// An organisation's log, newest first, at most `limit` entries, along its index.
pub fn org_events_of(conn: &mut DbConnection, org_id: &OrgId, limit: i64) -> QueryResult<Vec<OrgEvent>> {
    org_events::table
        .filter(org_events::organisation_id.eq(org_id))
        .order((org_events::created_at.desc(), org_events::id.desc()))
        .limit(limit)
        .select(OrgEvent::as_select())
        .load(conn)
}
