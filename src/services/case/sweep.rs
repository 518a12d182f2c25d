//! The deadline sweep: what the clocks decide when nobody acts, and reminders before they do.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::{from_db_time, write_tx, DbConnection};
use crate::domain::{self, Action, Actor, DueKind};
use crate::error::{AppError, AppResult};
use crate::store::{self};

use super::*;

// ---------------------------------------------------------------------------------------------
// The deadline sweep.

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    pub closed: Vec<String>,
    pub marked_overdue: Vec<String>,
    /// Paused clocks restarted because the request for information went unanswered.
    pub resumed: Vec<String>,
    pub reminded: Vec<String>,
    /// Cases another sweep handled first.
    pub skipped: usize,
    /// Cases this sweep could not act on (each logged, and kept in `sweep_failures` for the
    /// organisation's admins); the sweep went on with the others.
    pub failed: usize,
}

/// Acts on every deadline passed at `now` and sends the reminders due by then, each case in
/// its own transaction. Running it again, or two at once, changes nothing more: the guarded
/// update lets only one transition win, and the alert ledger lets each reminder out once.
pub fn sweep(conn: &mut DbConnection, svc: &Services, now: DateTime<Utc>) -> AppResult<SweepReport> {
    sweep_until(conn, svc, now, None)
}

/// As `sweep`, stopping between cases once `stop` is set. A case the sweep cannot act on (an
/// email template that fails for it, say) is logged, counted and recorded for its
/// organisation's admins, and the sweep goes on with every other case: it is tried again at
/// the next sweep.
pub fn sweep_until(
    conn: &mut DbConnection,
    svc: &Services,
    now: DateTime<Utc>,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> AppResult<SweepReport> {
    let stopping = || stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed));
    // Two look-ups, each along an index that holds only the cases it concerns, so that a sweep
    // reads what is due and never the open cases that are not.
    let passed = store::cases_past_due(conn, now)?;
    let unanswered = store::cases_unanswered(conn, now)?;
    let mut failing: std::collections::HashSet<CaseId> = store::failing_cases(conn)?.into_iter().collect();
    let mut report = SweepReport::default();
    let system = ActorRef::without_account(Actor::System);
    let mut seen = std::collections::HashSet::new();
    let due = passed.into_iter().map(|c| (c, false)).chain(unanswered.into_iter().map(|c| (c, true)));
    for ((id, reference, state_before), paused) in due {
        if stopping() {
            return Ok(report);
        }
        if !seen.insert(id.clone()) {
            continue;
        }
        match act(conn, svc, &id, Action::DeadlinePassed, &system, None, now) {
            Ok(case) => {
                if case.state != state_before {
                    report.closed.push(reference);
                } else if paused {
                    report.resumed.push(reference);
                } else {
                    report.marked_overdue.push(reference);
                }
                if failing.remove(&id) {
                    forget_sweep_failure(conn, &id)?;
                }
            }
            Err(AppError::Conflict(_)) => report.skipped += 1,
            Err(e) => {
                report.failed += 1;
                note_sweep_failure(conn, &id, &reference, &e, now)?;
            }
        }
    }
    if !stopping() {
        send_reminders(conn, svc, now, &mut report, &mut failing, stopping)?;
    }
    Ok(report)
}

/// Records that the sweep could not act on a case. The first failure of a case is logged as an
/// error and shown to its organisation's admins on their work queue; later ones only count, so
/// nobody is told again every minute.
fn note_sweep_failure(
    conn: &mut DbConnection,
    case_id: &CaseId,
    reference: &str,
    error: &AppError,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let why = error.to_string().chars().take(500).collect::<String>();
    let first = write_tx(conn, |conn| store::note_sweep_failure(conn, case_id, &why, now))?;
    if first {
        tracing::error!(case = %reference, error = %why, "the deadline sweep could not act on a case; it goes on with the others and tries this one again next time");
    } else {
        tracing::debug!(case = %reference, error = %why, "the deadline sweep still cannot act on a case");
    }
    Ok(())
}

fn forget_sweep_failure(conn: &mut DbConnection, case_id: &CaseId) -> AppResult<()> {
    write_tx(conn, |conn| store::forget_sweep_failure(conn, case_id))?;
    Ok(())
}

/// A case the deadline sweep cannot act on.
#[derive(Debug, Clone)]
pub struct StuckCase {
    pub reference: String,
    /// What went wrong, the last time.
    pub error: String,
    /// How many sweeps have failed on it.
    pub failures: i32,
    pub since: DateTime<Utc>,
}

/// The cases of an organisation that the sweep cannot act on, oldest first.
pub fn sweep_failures_of(conn: &mut DbConnection, org_id: &OrgId, limit: i64) -> AppResult<Vec<StuckCase>> {
    let rows = store::sweep_failures_of(conn, org_id, limit)?;
    Ok(rows
        .into_iter()
        .map(|(reference, error, failures, since)| StuckCase {
            reference,
            error,
            failures,
            since: from_db_time(since),
        })
        .collect())
}

/// What a sweep at `now` would do, without doing it: the same sweep in a transaction that is
/// rolled back, so nothing is written and no email is queued.
pub fn sweep_dry_run(conn: &mut DbConnection, svc: &Services, now: DateTime<Utc>) -> AppResult<SweepReport> {
    let result: Result<(), DryRun> = write_tx(conn, |conn| {
        Err(match sweep(conn, svc, now) {
            Ok(report) => DryRun::Done(report),
            Err(e) => DryRun::Failed(e),
        })
    });
    match result {
        Err(DryRun::Done(report)) => Ok(report),
        Err(DryRun::Failed(e)) => Err(e),
        Ok(()) => Err(AppError::Internal("the dry run did not roll back".into())),
    }
}

/// How a dry run leaves its transaction: always by an error, so that it rolls back.
enum DryRun {
    Done(SweepReport),
    Failed(AppError),
}

impl From<diesel::result::Error> for DryRun {
    fn from(e: diesel::result::Error) -> Self {
        DryRun::Failed(e.into())
    }
}

/// Reminders before a response deadline (to the moderators) and before the committee's target
/// (to the secretary), each at most once per case and deadline. Every step that starts a
/// deadline stores when its reminder falls due (`next_reminder_at`); the sweep opens only the
/// cases whose instant has come.
fn send_reminders(
    conn: &mut DbConnection,
    svc: &Services,
    now: DateTime<Utc>,
    report: &mut SweepReport,
    failing: &mut std::collections::HashSet<CaseId>,
    stopping: impl Fn() -> bool,
) -> AppResult<()> {
    let due = store::cases_reminder_due(conn, now)?;
    for id in due {
        if stopping() {
            return Ok(());
        }
        let reminded = write_tx(conn, |conn| {
            store::lock_case(conn, &id)?;
            let case = store::case_by_id(conn, &id)?;
            let org = store::org_by_id(conn, &case.organisation_id)?;
            let status = status_of(&case)?;
            // Worked out again as the case and its organisation stand now: a step or a change
            // of settings since the instant was stored decides.
            let instant = reminder_instant(conn, &org, &status)?;
            let reminder = match (instant, status.due) {
                (Some(instant), Some(_)) if now < from_db_time(instant) => {
                    store::set_next_reminder(conn, &id, Some(instant))?;
                    return Ok(());
                }
                (Some(_), Some(due)) if now <= due.at => due,
                _ => {
                    store::set_next_reminder(conn, &id, None)?;
                    return Ok(());
                }
            };
            store::set_next_reminder(conn, &id, None)?;
            let kind = match reminder.kind {
                DueKind::CommitteeTarget => "committee_reminder",
                _ => "response_reminder",
            };
            if !store::record_alert(conn, &case.id, kind, reminder.at, now)? {
                return Ok(());
            }
            let step =
                domain::transition(&status, Action::Remind, Actor::System, now, &schedule_of(conn, &org)?)?;
            let by = ActorRef::without_account(Actor::System);
            let ctx = StepContext { svc, org: &org, by: &by, words: None, now };
            record(conn, &ctx, &case, &step)?;
            report.reminded.push(case.reference.clone());
            Ok::<_, AppError>(())
        });
        match reminded {
            Ok(()) if failing.remove(&id) => forget_sweep_failure(conn, &id)?,
            Ok(()) => {}
            Err(e) => {
                report.failed += 1;
                let reference = store::reference_of(conn, &id)?;
                note_sweep_failure(conn, &id, &reference, &e, now)?;
            }
        }
    }
    Ok(())
}
