//! Cases: finding them, their events, private links and the guarded update every step ends in.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::*;
use crate::db::schema::*;
use crate::db::{new_id, to_db_time, DbConnection};
use crate::domain::{Actor, CaseState, CaseStatus};

pub fn case_by_reference(
    conn: &mut DbConnection,
    org_id: &OrgId,
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

pub fn case_by_id(conn: &mut DbConnection, id: &CaseId) -> QueryResult<CaseRow> {
    crate::on_backend!(conn, |c| cases::table.find(id).select(CaseRow::as_select()).get_result(c))
}

pub fn events_of(conn: &mut DbConnection, case_id: &CaseId) -> QueryResult<Vec<CaseEvent>> {
    crate::on_backend!(conn, |c| case_events::table
        .filter(case_events::case_id.eq(case_id))
        .order(case_events::seq)
        .select(CaseEvent::as_select())
        .load(c))
}

pub fn emails_of(conn: &mut DbConnection, case_id: &CaseId) -> QueryResult<Vec<OutboxRow>> {
    crate::on_backend!(conn, |c| outbox::table
        .filter(outbox::case_id.eq(case_id))
        .order((outbox::created_at, outbox::id))
        .select(OutboxRow::as_select())
        .load(c))
}

pub fn next_event_seq(conn: &mut DbConnection, case_id: &CaseId) -> QueryResult<i32> {
    let max: Option<i32> = crate::on_backend!(conn, |c| case_events::table
        .filter(case_events::case_id.eq(case_id))
        .select(diesel::dsl::max(case_events::seq))
        .get_result(c))?;
    Ok(max.unwrap_or(0) + 1)
}

pub fn next_reference_number(conn: &mut DbConnection, org_id: &OrgId, year: i32) -> QueryResult<i32> {
    let max: Option<i32> = crate::on_backend!(conn, |c| cases::table
        .filter(cases::organisation_id.eq(org_id))
        .filter(cases::ref_year.eq(year))
        .select(diesel::dsl::max(cases::ref_number))
        .get_result(c))?;
    Ok(max.unwrap_or(0) + 1)
}

/// Takes the write lock on one case row for the rest of the transaction, so that steps that
/// do not otherwise change the case still happen one at a time. On SQLite the write
/// transaction already holds the database's only write lock. It is a `SELECT … FOR UPDATE`
/// rather than an update of the row to itself: such an update counts as a change of the
/// primary key, and with foreign keys on SQLite then checks every table that refers to it.
pub fn lock_case(conn: &mut DbConnection, id: &CaseId) -> QueryResult<()> {
    if let DbConnection::Pg(c) = conn {
        cases::table.find(id).select(cases::id).for_update().execute(c)?;
    }
    Ok(())
}

/// A new private link's secret for a party of a case, and the id of its row; only its hash is
/// stored. `outbox_id` is the email it is minted for, if any.
pub fn mint_token(
    conn: &mut DbConnection,
    case_id: &CaseId,
    party: Actor,
    outbox_id: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<(String, String)> {
    let (id, secret) = (new_id(), crate::security::new_secret());
    diesel::insert_into(case_tokens::table)
        .values(&CaseToken {
            id: id.clone(),
            case_id: case_id.clone(),
            party: party.kind_str().into(),
            token_hash: crate::security::hash_secret(&secret),
            created_at: to_db_time(now),
            revoked_at: None,
            outbox_id: outbox_id.map(str::to_string),
        })
        .execute(conn)?;
    Ok((id, secret))
}

pub fn insert_case(conn: &mut DbConnection, case: &CaseRow) -> QueryResult<()> {
    crate::on_backend!(conn, |c| diesel::insert_into(cases::table).values(case).execute(c))?;
    Ok(())
}

/// Moves a case from the status it had when read (`before`) to `to`. Guarded: it changes
/// nothing, and answers false, when another step changed the case in the meantime, so of two
/// steps taken at once only one wins.
pub fn update_status(
    conn: &mut DbConnection,
    case: &CaseRow,
    before: &CaseStatus,
    to: &CaseStatus,
    outcome: Option<&str>,
    next_reminder_at: Option<NaiveDateTime>,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let closed_at = to.state.is_final().then(|| to_db_time(now));
    let changed = diesel::update(
        cases::table
            .filter(cases::id.eq(&case.id))
            .filter(cases::state.eq(before.state.as_str()))
            .filter(cases::overdue.eq(before.overdue))
            .filter(cases::updated_at.eq(case.updated_at)),
    )
    .set((
        cases::state.eq(to.state.as_str()),
        cases::overdue.eq(to.overdue),
        cases::due_at.eq(to.due.map(|d| to_db_time(d.at))),
        cases::due_kind.eq(to.due.map(|d| d.kind.as_str())),
        cases::outcome.eq(outcome.or(case.outcome.as_deref())),
        cases::updated_at.eq(to_db_time(now)),
        cases::closed_at.eq(closed_at),
        cases::paused_days_left.eq(to.paused.map(|p| i32::try_from(p.days_left).unwrap_or(i32::MAX))),
        cases::info_due_at.eq(to.paused.map(|p| to_db_time(p.answer_by))),
        cases::next_reminder_at.eq(next_reminder_at),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

pub fn insert_event(conn: &mut DbConnection, event: &CaseEvent) -> QueryResult<()> {
    crate::on_backend!(conn, |c| diesel::insert_into(case_events::table).values(event).execute(c))?;
    Ok(())
}

/// Notes that an alert for a case's deadline went out. Returns false when it already had:
/// the unique key on (case, kind, deadline) is what keeps every alert to one.
pub fn record_alert(
    conn: &mut DbConnection,
    case_id: &CaseId,
    kind: &str,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let exists: i64 = case_alerts::table
        .filter(case_alerts::case_id.eq(case_id))
        .filter(case_alerts::kind.eq(kind))
        .filter(case_alerts::due_at.eq(to_db_time(due)))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        return Ok(false);
    }
    diesel::insert_into(case_alerts::table)
        .values((
            case_alerts::id.eq(new_id()),
            case_alerts::case_id.eq(case_id),
            case_alerts::kind.eq(kind),
            case_alerts::due_at.eq(to_db_time(due)),
            case_alerts::created_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    Ok(true)
}

/// A case as the sweep lists it: id, reference and state.
pub type DueCase = (CaseId, String, String);

/// Cases whose running deadline passed before `at` and that are not yet marked overdue, along
/// the index that holds only cases with a running deadline.
pub fn cases_past_due(conn: &mut DbConnection, at: DateTime<Utc>) -> QueryResult<Vec<DueCase>> {
    cases::table
        .filter(cases::due_at.lt(to_db_time(at)))
        .filter(diesel::dsl::not(cases::overdue))
        .select((cases::id, cases::reference, cases::state))
        .order(cases::due_at)
        .load(conn)
}

/// Paused cases whose question went unanswered by `at`.
pub fn cases_unanswered(conn: &mut DbConnection, at: DateTime<Utc>) -> QueryResult<Vec<DueCase>> {
    cases::table
        .filter(cases::info_due_at.lt(to_db_time(at)))
        .select((cases::id, cases::reference, cases::state))
        .order(cases::info_due_at)
        .load(conn)
}

/// Ids of the cases whose reminder instant has come by `at`.
pub fn cases_reminder_due(conn: &mut DbConnection, at: DateTime<Utc>) -> QueryResult<Vec<CaseId>> {
    cases::table
        .filter(cases::next_reminder_at.le(to_db_time(at)))
        .select(cases::id)
        .order(cases::next_reminder_at)
        .load(conn)
}

pub fn set_next_reminder(
    conn: &mut DbConnection,
    case_id: &CaseId,
    at: Option<NaiveDateTime>,
) -> QueryResult<()> {
    diesel::update(cases::table.find(case_id)).set(cases::next_reminder_at.eq(at)).execute(conn)?;
    Ok(())
}

/// Asks the next sweep to work out again the reminder instants of an organisation's cases
/// waiting on a response or on the committee (after its calendar or reminder days changed).
pub fn recompute_reminders(conn: &mut DbConnection, org_id: &OrgId, now: DateTime<Utc>) -> QueryResult<()> {
    let waiting =
        [CaseState::AppealLodged, CaseState::ComplaintReceived, CaseState::Escalated].map(|s| s.as_str());
    diesel::update(
        cases::table
            .filter(cases::organisation_id.eq(org_id))
            .filter(cases::state.eq_any(waiting))
            .filter(diesel::dsl::not(cases::overdue)),
    )
    .set(cases::next_reminder_at.eq(Some(to_db_time(now))))
    .execute(conn)?;
    Ok(())
}

pub fn reference_of(conn: &mut DbConnection, case_id: &CaseId) -> QueryResult<String> {
    cases::table.find(case_id).select(cases::reference).get_result(conn)
}

/// The ids of the cases the sweep failed on before: few, each forgotten once it goes through.
pub fn failing_cases(conn: &mut DbConnection) -> QueryResult<Vec<CaseId>> {
    sweep_failures::table.select(sweep_failures::case_id).load(conn)
}

/// Records that the sweep could not act on a case; true when it is the case's first failure.
pub fn note_sweep_failure(
    conn: &mut DbConnection,
    case_id: &CaseId,
    why: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let at = to_db_time(now);
    let again = diesel::update(sweep_failures::table.find(case_id))
        .set((
            sweep_failures::failures.eq(sweep_failures::failures + 1),
            sweep_failures::last_at.eq(at),
            sweep_failures::error.eq(why),
        ))
        .execute(conn)?;
    if again == 1 {
        return Ok(false);
    }
    let org: OrgId = cases::table.find(case_id).select(cases::organisation_id).get_result(conn)?;
    diesel::insert_into(sweep_failures::table)
        .values((
            sweep_failures::case_id.eq(case_id),
            sweep_failures::organisation_id.eq(org),
            sweep_failures::error.eq(why),
            sweep_failures::failures.eq(1),
            sweep_failures::first_at.eq(at),
            sweep_failures::last_at.eq(at),
        ))
        .execute(conn)?;
    Ok(true)
}

pub fn forget_sweep_failure(conn: &mut DbConnection, case_id: &CaseId) -> QueryResult<()> {
    diesel::delete(sweep_failures::table.find(case_id)).execute(conn)?;
    Ok(())
}

/// An organisation's cases the sweep cannot act on, oldest first: reference, last error, how
/// many sweeps failed, and since when.
pub fn sweep_failures_of(
    conn: &mut DbConnection,
    org_id: &OrgId,
    limit: i64,
) -> QueryResult<Vec<(String, String, i32, NaiveDateTime)>> {
    sweep_failures::table
        .inner_join(cases::table.on(cases::id.eq(sweep_failures::case_id)))
        .filter(sweep_failures::organisation_id.eq(org_id))
        .order(sweep_failures::first_at)
        .limit(limit)
        .select((cases::reference, sweep_failures::error, sweep_failures::failures, sweep_failures::first_at))
        .load(conn)
}

/// Revokes every live private link of a case.
pub fn revoke_links(conn: &mut DbConnection, case_id: &CaseId, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(
        case_tokens::table.filter(case_tokens::case_id.eq(case_id)).filter(case_tokens::revoked_at.is_null()),
    )
    .set(case_tokens::revoked_at.eq(Some(to_db_time(now))))
    .execute(conn)?;
    Ok(())
}

/// Revokes one private link (one whose email did not go).
pub fn revoke_link(conn: &mut DbConnection, token_id: &str, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::update(case_tokens::table.find(token_id))
        .set(case_tokens::revoked_at.eq(Some(to_db_time(now))))
        .execute(conn)
}

/// The live private link with this hash.
pub fn link_by_hash(conn: &mut DbConnection, hash: &str) -> QueryResult<Option<CaseToken>> {
    crate::on_backend!(conn, |c| case_tokens::table
        .filter(case_tokens::token_hash.eq(hash))
        .filter(case_tokens::revoked_at.is_null())
        .select(CaseToken::as_select())
        .get_result(c)
        .optional())
}
