//! Everything that happens to a case: opening it, acting on it, its private links, the emails
//! each step sends, and the deadline sweep. Every step ends in `record`: the guarded update,
//! one event and the outbox rows, in the caller's transaction.

mod act;
mod email;
mod link;
mod open;
mod sweep;

pub use act::*;
pub use email::*;
pub use link::*;
pub use open::*;
pub use sweep::*;

use chrono::{DateTime, Utc};

use crate::db::{new_id, to_db_time, DbConnection};
use crate::domain::{Actor, CaseStatus, DueKind, EventKind, Recipient, Role, Transition};
use crate::error::{AppError, AppResult};
use crate::store::{self, CaseEvent, CaseRow, Organisation, OutboxRow};

use super::*;

/// Who takes a step, where, when, and in what words: what every recorded step shares.
struct StepContext<'a> {
    svc: &'a Services,
    org: &'a Organisation,
    by: &'a ActorRef,
    words: Option<&'a str>,
    now: DateTime<Utc>,
}

pub fn find_case(conn: &mut DbConnection, org: &Organisation, reference: &str) -> AppResult<CaseRow> {
    store::case_by_reference(conn, &org.id, reference.trim())?
        .ok_or_else(|| AppError::NotFound(format!("no case {reference:?} in {}", org.name)))
}

fn apply(
    conn: &mut DbConnection,
    ctx: &StepContext,
    case: &CaseRow,
    before: &CaseStatus,
    step: &Transition,
) -> AppResult<CaseRow> {
    let now = ctx.now;
    let to = &step.to;
    let next_reminder_at = reminder_instant(conn, ctx.org, to)?;
    let outcome = step.outcome.map(|o| o.as_str());
    if !store::update_status(conn, case, before, to, outcome, next_reminder_at, now)? {
        return Err(AppError::Conflict(
            "someone else changed this case at the same moment; reload it and try again".into(),
        ));
    }
    if step.event == EventKind::MarkedOverdue {
        if let Some(due) = before.due {
            let kind =
                if due.kind == DueKind::CommitteeTarget { "committee_overdue" } else { "response_overdue" };
            store::record_alert(conn, &case.id, kind, due.at, now)?;
        }
    }
    let updated = store::case_by_id(conn, &case.id)?;
    record(conn, ctx, &updated, step)?;
    Ok(updated)
}

/// When the sweep is to send the reminder before a case's running deadline: some working days
/// before a response deadline or the committee's target, in the organisation's calendar. None
/// for other deadlines, an overdue case, or an organisation that sends no such reminder.
fn reminder_instant(
    conn: &mut DbConnection,
    org: &Organisation,
    status: &CaseStatus,
) -> AppResult<Option<chrono::NaiveDateTime>> {
    let Some(due) = status.due.filter(|_| !status.overdue) else { return Ok(None) };
    let days = match due.kind {
        DueKind::Response => org.response_reminder_days,
        DueKind::CommitteeTarget => org.committee_reminder_days,
        _ => return Ok(None),
    };
    let Ok(days @ 1..) = u32::try_from(days) else { return Ok(None) };
    let schedule = schedule_of(conn, org)?;
    Ok(Some(to_db_time(schedule.reminder_at(due.at, days))))
}

/// Writes the event of a step and queues its emails, each rendered now so that the record shows
/// exactly what was sent.
fn record(
    conn: &mut DbConnection,
    ctx: &StepContext,
    case: &CaseRow,
    step: &Transition,
) -> AppResult<CaseEvent> {
    let StepContext { svc, org, by, words, now } = *ctx;
    let event = CaseEvent {
        id: new_id(),
        case_id: case.id.clone(),
        seq: store::next_event_seq(conn, &case.id)?,
        kind: step.event.as_str().into(),
        from_state: step.from.map(|s| s.as_str().into()),
        to_state: step.to.state.as_str().into(),
        actor_kind: by.actor.kind_str().into(),
        actor_user_id: by.user_id.clone(),
        actor_role: match by.actor {
            Actor::Staff(r) => Some(r.as_str().into()),
            _ => None,
        },
        outcome: step.outcome.map(|o| o.as_str().into()),
        body: words.map(str::to_string),
        created_at: to_db_time(now),
        token_issued_by: by.token_issued_by.clone(),
    };
    store::insert_event(conn, &event)?;
    tracing::info!(
        event = "case_event",
        kind = %event.kind,
        org = %org.slug,
        case = %case.reference,
        from = event.from_state.as_deref().unwrap_or("-"),
        to = %event.to_state,
        actor = by.user_id.as_deref().unwrap_or(by.actor.kind_str()),
        "case event recorded"
    );

    for order in &step.emails {
        let (addresses, party) = match order.to {
            Recipient::Poster => (case.author_email.iter().cloned().collect(), Some(Actor::Poster)),
            Recipient::Reporter => (case.reporter_email.iter().cloned().collect(), Some(Actor::Reporter)),
            Recipient::Secretary => (vec![org.secretary_email.clone()], None),
            Recipient::Moderators => {
                (store::emails_with_role(conn, &org.id, Role::Moderator.as_str())?, None)
            }
        };
        for address in addresses {
            // The link itself is minted by the outbox worker as it sends, so that no queued or
            // failed email holds a working link that staff (who can read queued emails) or a
            // database export could use.
            let link = party.map(|_| format!("{}/c/{}", svc.base_url, crate::mail::outbox::LINK_SLOT));
            let case_page =
                party.is_none().then(|| format!("{}/staff/cases/{}", svc.base_url, case.reference));
            let context = email_context(conn, org, case, step, case_page, link, words)?;
            let rendered = svc.emails.render(order.template, &org.slug, &context)?;
            let row = OutboxRow {
                id: new_id(),
                organisation_id: org.id.clone(),
                case_id: Some(case.id.clone()),
                event_id: Some(event.id.clone()),
                template: order.template.as_str().into(),
                recipient_kind: order.to.as_str().into(),
                to_address: address,
                subject: rendered.subject,
                body_text: rendered.text,
                status: "pending".into(),
                attempts: 0,
                last_error: None,
                // Due at once in real time, even when a sweep runs at a later logical instant.
                next_attempt_at: to_db_time(now.min(Utc::now())),
                locked_until: None,
                created_at: to_db_time(now),
                sent_at: None,
                body_html: Some(rendered.html),
            };
            store::queue_email(conn, &row)?;
        }
    }
    Ok(event)
}
