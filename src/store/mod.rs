//! Rows and queries. Functions here return `QueryResult` and know nothing of HTTP.

pub mod lists;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::schema::*;
use crate::db::{new_id, to_db_time, DbConnection};
use crate::domain::Actor;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = organisations)]
pub struct Organisation {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub reference_prefix: String,
    pub timezone: String,
    pub secretary_email: String,
    pub appeal_window_days: i32,
    pub response_days: i32,
    pub escalation_window_days: i32,
    pub committee_target_days: i32,
    pub created_at: NaiveDateTime,
    pub nation: String,
    pub appeal_window_count: String,
    pub response_count: String,
    pub escalation_window_count: String,
    pub committee_target_count: String,
    pub response_reminder_days: i32,
    pub committee_reminder_days: i32,
    pub info_answer_days: i32,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = memberships)]
pub struct Membership {
    pub id: String,
    pub user_id: String,
    pub organisation_id: String,
    pub role: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = api_tokens)]
pub struct ApiToken {
    pub id: String,
    pub user_id: String,
    pub organisation_id: String,
    pub token_hash: String,
    pub label: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    /// The admin who issued it; none when issued from the command line.
    #[serde(default)]
    pub created_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = policy_rules)]
pub struct PolicyRule {
    pub id: String,
    pub organisation_id: String,
    pub code: String,
    pub title: String,
    pub summary: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A rule as it read when a case cited it; kept on the case as JSON so that later edits of
/// the policy never change what the poster was told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CitedRule {
    pub code: String,
    pub title: String,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = cases)]
pub struct CaseRow {
    pub id: String,
    pub organisation_id: String,
    pub reference: String,
    pub ref_year: i32,
    pub ref_number: i32,
    pub kind: String,
    pub state: String,
    pub overdue: bool,
    pub due_at: Option<NaiveDateTime>,
    pub due_kind: Option<String>,
    pub platform: String,
    pub content_url: String,
    pub content_text: String,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub explanation: String,
    pub cited_rules: String,
    pub notice_method: Option<String>,
    pub reporter_name: Option<String>,
    pub reporter_email: Option<String>,
    pub recorded_by: Option<String>,
    pub outcome: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub closed_at: Option<NaiveDateTime>,
    pub paused_days_left: Option<i32>,
    pub info_due_at: Option<NaiveDateTime>,
    /// When the sweep next looks at this case for a reminder before its deadline; none when
    /// no reminder is pending.
    #[serde(default)]
    pub next_reminder_at: Option<NaiveDateTime>,
}

impl CaseRow {
    pub fn rules(&self) -> Vec<CitedRule> {
        serde_json::from_str(&self.cited_rules).unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = case_tokens)]
pub struct CaseToken {
    pub id: String,
    pub case_id: String,
    pub party: String,
    pub token_hash: String,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    /// The email whose sending minted this link; none for a link shown once on a page.
    #[serde(default)]
    pub outbox_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = case_events)]
pub struct CaseEvent {
    pub id: String,
    pub case_id: String,
    pub seq: i32,
    pub kind: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub actor_kind: String,
    pub actor_user_id: Option<String>,
    pub actor_role: Option<String>,
    pub outcome: Option<String>,
    pub body: Option<String>,
    pub created_at: NaiveDateTime,
    /// When the step was taken through an API token that an admin issued: that admin.
    #[serde(default)]
    pub token_issued_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: String,
    pub organisation_id: String,
    pub case_id: Option<String>,
    pub event_id: Option<String>,
    pub template: String,
    pub recipient_kind: String,
    pub to_address: String,
    pub subject: String,
    pub body_text: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
    pub body_html: Option<String>,
}

/// Whether a key from a request could be stored at all. PostgreSQL refuses a NUL in text, even
/// in a WHERE clause, and validation keeps NULs out of every stored value, so a key holding one
/// matches nothing: it is answered "not found" on both backends rather than as a database error.
fn storable(key: &str) -> bool {
    !key.contains('\0')
}

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

pub fn user_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<User>> {
    if !storable(email) {
        return Ok(None);
    }
    crate::on_backend!(conn, |c| users::table
        .filter(users::email.eq(email.to_lowercase()))
        .select(User::as_select())
        .get_result(c)
        .optional())
}

pub fn user_by_id(conn: &mut DbConnection, id: &str) -> QueryResult<Option<User>> {
    crate::on_backend!(conn, |c| users::table.find(id).select(User::as_select()).get_result(c).optional())
}

pub fn roles_of(conn: &mut DbConnection, user_id: &str, org_id: &str) -> QueryResult<Vec<String>> {
    crate::on_backend!(conn, |c| memberships::table
        .filter(memberships::user_id.eq(user_id))
        .filter(memberships::organisation_id.eq(org_id))
        .select(memberships::role)
        .order(memberships::role)
        .load(c))
}

/// Addresses of everyone holding `role` in the organisation.
pub fn emails_with_role(conn: &mut DbConnection, org_id: &str, role: &str) -> QueryResult<Vec<String>> {
    crate::on_backend!(conn, |c| memberships::table
        .inner_join(users::table)
        .filter(memberships::organisation_id.eq(org_id))
        .filter(memberships::role.eq(role))
        .select(users::email)
        .order(users::email)
        .load(c))
}

pub fn rules_of(conn: &mut DbConnection, org_id: &str) -> QueryResult<Vec<PolicyRule>> {
    crate::on_backend!(conn, |c| policy_rules::table
        .filter(policy_rules::organisation_id.eq(org_id))
        .order(policy_rules::code)
        .select(PolicyRule::as_select())
        .load(c))
}

pub fn case_by_reference(
    conn: &mut DbConnection,
    org_id: &str,
    reference: &str,
) -> QueryResult<Option<CaseRow>> {
    if !storable(reference) {
        return Ok(None);
    }
    crate::on_backend!(conn, |c| cases::table
        .filter(cases::organisation_id.eq(org_id))
        .filter(cases::reference.eq(reference))
        .select(CaseRow::as_select())
        .get_result(c)
        .optional())
}

pub fn case_by_id(conn: &mut DbConnection, id: &str) -> QueryResult<CaseRow> {
    crate::on_backend!(conn, |c| cases::table.find(id).select(CaseRow::as_select()).get_result(c))
}

pub fn events_of(conn: &mut DbConnection, case_id: &str) -> QueryResult<Vec<CaseEvent>> {
    crate::on_backend!(conn, |c| case_events::table
        .filter(case_events::case_id.eq(case_id))
        .order(case_events::seq)
        .select(CaseEvent::as_select())
        .load(c))
}

pub fn emails_of(conn: &mut DbConnection, case_id: &str) -> QueryResult<Vec<OutboxRow>> {
    crate::on_backend!(conn, |c| outbox::table
        .filter(outbox::case_id.eq(case_id))
        .order((outbox::created_at, outbox::id))
        .select(OutboxRow::as_select())
        .load(c))
}

pub fn next_event_seq(conn: &mut DbConnection, case_id: &str) -> QueryResult<i32> {
    let max: Option<i32> = crate::on_backend!(conn, |c| case_events::table
        .filter(case_events::case_id.eq(case_id))
        .select(diesel::dsl::max(case_events::seq))
        .get_result(c))?;
    Ok(max.unwrap_or(0) + 1)
}

pub fn next_reference_number(conn: &mut DbConnection, org_id: &str, year: i32) -> QueryResult<i32> {
    let max: Option<i32> = crate::on_backend!(conn, |c| cases::table
        .filter(cases::organisation_id.eq(org_id))
        .filter(cases::ref_year.eq(year))
        .select(diesel::dsl::max(cases::ref_number))
        .get_result(c))?;
    Ok(max.unwrap_or(0) + 1)
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

/// Takes the write lock on one case row for the rest of the transaction, so that steps that
/// do not otherwise change the case still happen one at a time. On SQLite the write
/// transaction already holds the database's only write lock. It is a `SELECT … FOR UPDATE`
/// rather than an update of the row to itself: such an update counts as a change of the
/// primary key, and with foreign keys on SQLite then checks every table that refers to it.
pub fn lock_case(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    if let DbConnection::Pg(c) = conn {
        cases::table.find(id).select(cases::id).for_update().execute(c)?;
    }
    Ok(())
}

/// The same for an organisation: new cases of one organisation take their reference numbers
/// one at a time.
pub fn lock_org(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    if let DbConnection::Pg(c) = conn {
        organisations::table.find(id).select(organisations::id).for_update().execute(c)?;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = closed_days)]
pub struct ClosedDay {
    pub id: String,
    pub nation: Option<String>,
    pub organisation_id: Option<String>,
    pub day: chrono::NaiveDate,
    pub title: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = case_alerts)]
pub struct CaseAlert {
    pub id: String,
    pub case_id: String,
    pub kind: String,
    pub due_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

/// A new private link's secret for a party of a case, and the id of its row; only its hash is
/// stored. `outbox_id` is the email it is minted for, if any.
pub fn mint_token(
    conn: &mut DbConnection,
    case_id: &str,
    party: Actor,
    outbox_id: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<(String, String)> {
    let (id, secret) = (new_id(), crate::security::new_secret());
    diesel::insert_into(case_tokens::table)
        .values(&CaseToken {
            id: id.clone(),
            case_id: case_id.to_string(),
            party: party.kind_str().into(),
            token_hash: crate::security::hash_secret(&secret),
            created_at: to_db_time(now),
            revoked_at: None,
            outbox_id: outbox_id.map(str::to_string),
        })
        .execute(conn)?;
    Ok((id, secret))
}
