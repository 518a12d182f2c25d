//! The outbox (`email` here, since the table is `outbox`): emails queued with the step that sent them, claimed and recorded by the senders.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::*;
use crate::db::schema::*;
use crate::db::{to_db_time, DbConnection};

pub fn queue_email(conn: &mut DbConnection, row: &OutboxRow) -> QueryResult<()> {
    crate::on_backend!(conn, |c| diesel::insert_into(outbox::table).values(row).execute(c))?;
    Ok(())
}

/// The ids of the earlier emails of the same case to the same address, oldest first.
pub fn earlier_in_thread(conn: &mut DbConnection, row: &OutboxRow) -> QueryResult<Vec<String>> {
    let Some(case_id) = &row.case_id else { return Ok(vec![]) };
    outbox::table
        .filter(outbox::case_id.eq(case_id))
        .filter(outbox::to_address.eq(&row.to_address))
        .filter(
            outbox::created_at
                .lt(row.created_at)
                .or(outbox::created_at.eq(row.created_at).and(outbox::id.lt(&row.id))),
        )
        .order((outbox::created_at, outbox::id))
        .select(outbox::id)
        .load(conn)
}

/// Claims one due email for the claim `claim_id`: a pending one whose time has come, or one
/// left "sending" by a worker whose lease ran out. A row is taken only if the guarded update
/// changes it, so a row another worker took in the meantime is skipped. With the row comes
/// whether a lease ran out on it: the server may have accepted it already.
pub fn claim_email(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
    lease: Duration,
    claim_id: &str,
) -> QueryResult<Option<(OutboxRow, bool)>> {
    let now_db = to_db_time(now);
    // Two look-ups, each along an index; a few candidates each, in case another worker takes
    // the first.
    let pending: Vec<String> = outbox::table
        .filter(outbox::status.eq("pending"))
        .filter(outbox::next_attempt_at.le(now_db))
        .order(outbox::next_attempt_at)
        .limit(4)
        .select(outbox::id)
        .load(conn)?;
    let lapsed: Vec<String> = outbox::table
        .filter(outbox::status.eq("sending"))
        .filter(outbox::locked_until.lt(now_db))
        .order(outbox::locked_until)
        .limit(4)
        .select(outbox::id)
        .load(conn)?;
    let candidates = lapsed.into_iter().map(|id| (id, true)).chain(pending.into_iter().map(|id| (id, false)));
    for (id, lapsed) in candidates {
        let taken = diesel::update(
            outbox::table.filter(outbox::id.eq(&id)).filter(
                outbox::status
                    .eq("pending")
                    .and(outbox::next_attempt_at.le(now_db))
                    .or(outbox::status.eq("sending").and(outbox::locked_until.lt(now_db))),
            ),
        )
        .set((
            outbox::status.eq("sending"),
            outbox::locked_until.eq(Some(to_db_time(now + lease))),
            outbox::attempts.eq(outbox::attempts + 1),
            outbox::claim_id.eq(Some(claim_id)),
            outbox::sending_since.eq(Some(now_db)),
        ))
        .execute(conn)?;
        if taken == 1 {
            let row = outbox::table.find(&id).select(OutboxRow::as_select()).get_result(conn)?;
            return Ok(Some((row, lapsed)));
        }
    }
    Ok(None)
}

/// The row as its claim left it: still "sending" under this claim id.
macro_rules! held_by {
    ($id:expr, $claim:expr) => {
        outbox::table
            .filter(outbox::id.eq($id))
            .filter(outbox::status.eq("sending"))
            .filter(outbox::claim_id.eq($claim))
    };
}

/// Records that the mail server accepted the email, keeping the bodies given (with their links
/// taken out). 0 when the claim was lost meanwhile.
pub fn record_sent(
    conn: &mut DbConnection,
    id: &str,
    claim: &str,
    body_text: &str,
    body_html: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(held_by!(id, claim))
        .set((
            outbox::status.eq("sent"),
            outbox::sent_at.eq(Some(to_db_time(now))),
            outbox::locked_until.eq(None::<NaiveDateTime>),
            outbox::claim_id.eq(None::<String>),
            outbox::sending_since.eq(None::<NaiveDateTime>),
            outbox::last_error.eq(None::<String>),
            outbox::body_text.eq(body_text),
            outbox::body_html.eq(body_html),
        ))
        .execute(conn)
}

/// Records a failed attempt: `failed` for good when `permanent`, else pending again after
/// `retry_after`. 0 when the claim was lost meanwhile.
pub fn record_failure(
    conn: &mut DbConnection,
    id: &str,
    claim: &str,
    permanent: bool,
    reason: &str,
    retry_after: Duration,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let status = if permanent { "failed" } else { "pending" };
    diesel::update(held_by!(id, claim))
        .set((
            outbox::status.eq(status),
            outbox::last_error.eq(Some(reason.chars().take(1000).collect::<String>())),
            outbox::next_attempt_at.eq(to_db_time(now + retry_after)),
            outbox::locked_until.eq(None::<NaiveDateTime>),
            outbox::claim_id.eq(None::<String>),
            outbox::sending_since.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
}

/// Makes a failed, cancelled or waiting email due now; false when there is no such email (a
/// sent one is never sent twice).
pub fn requeue_email(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> QueryResult<bool> {
    let n = diesel::update(outbox::table.filter(outbox::id.eq(id)).filter(outbox::status.eq_any([
        "failed",
        "cancelled",
        "pending",
    ])))
    .set((
        outbox::status.eq("pending"),
        outbox::next_attempt_at.eq(to_db_time(now)),
        outbox::locked_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(n > 0)
}

/// Stops an email that has not gone out; false when there is no such email.
pub fn cancel_email(conn: &mut DbConnection, id: &str) -> QueryResult<bool> {
    let n = diesel::update(
        outbox::table.filter(outbox::id.eq(id)).filter(outbox::status.eq_any(["failed", "pending"])),
    )
    .set((outbox::status.eq("cancelled"), outbox::locked_until.eq(None::<NaiveDateTime>)))
    .execute(conn)?;
    Ok(n > 0)
}
