//! Acting on a case: the parties' and staff's steps, requests for information and notes.

use chrono::{DateTime, Utc};

use crate::db::{from_db_time, write_tx, DbConnection};
use crate::domain::{
    self, Action, Actor, CaseKind, CaseState, CaseStatus, Deadline, DueKind, Outcome, Pause, Role,
    WorkflowError,
};
use crate::error::{AppError, AppResult};
use crate::store::{self, CaseEvent, CaseRow};
use crate::validate::{self, Checker};

use super::*;

// ---------------------------------------------------------------------------------------------
// Acting on cases.

pub fn status_of(case: &CaseRow) -> AppResult<CaseStatus> {
    let bad = |what: &str| AppError::Internal(format!("case {} has an unknown {what}", case.id));
    let kind = CaseKind::parse(&case.kind).ok_or_else(|| bad("kind"))?;
    let state = CaseState::parse(&case.state).ok_or_else(|| bad("state"))?;
    let due = match (&case.due_kind, case.due_at) {
        (Some(k), Some(at)) => {
            Some(Deadline { kind: DueKind::parse(k).ok_or_else(|| bad("due kind"))?, at: from_db_time(at) })
        }
        _ => None,
    };
    let paused = match (case.paused_days_left, case.info_due_at) {
        (Some(days), Some(by)) => {
            Some(Pause { days_left: u32::try_from(days).unwrap_or(0), answer_by: from_db_time(by) })
        }
        _ => None,
    };
    Ok(CaseStatus { kind, state, overdue: case.overdue, due, paused })
}

/// Parses an outcome word, naming the field when it is not one.
pub fn parse_outcome(word: Option<&str>, kind: Option<CaseKind>) -> AppResult<Outcome> {
    let expected = match kind {
        Some(k) => Outcome::words_for(k).to_string(),
        None => "reinstate, uphold, remove or no_action".into(),
    };
    match word.map(str::trim).filter(|w| !w.is_empty()) {
        None => Err(AppError::field("outcome", format!("is required: {expected}"))),
        Some(w) => Outcome::parse(w)
            .ok_or_else(|| AppError::field("outcome", format!("{w:?} is not an outcome; use {expected}"))),
    }
}

/// What a person wrote with a step, checked: reasons are required for responses and
/// decisions, a written case for an escalation, further information for an appeal.
fn check_words(action: Action, words: Option<&str>) -> AppResult<Option<String>> {
    let mut c = Checker::new();
    let field = match action {
        Action::Respond(_) | Action::Decide(_) => "reasons",
        Action::LodgeAppeal => "appeal",
        Action::RequestInfo => "question",
        Action::ProvideInfo => "information",
        Action::Escalate => "case_for_committee",
        Action::Withdraw => "reason",
        Action::AddNote => "note",
        Action::DeadlinePassed | Action::ReissueLink | Action::Remind => return Ok(None),
    };
    let v = if action == Action::Withdraw {
        c.optional(field, words, validate::WORDS_MAX)
    } else {
        Some(c.required(field, words, validate::WORDS_MAX))
    };
    c.finish()?;
    Ok(v)
}

/// Applies `action` to a case: checks the words, asks the workflow, and records the result in
/// one transaction.
pub fn act(
    conn: &mut DbConnection,
    svc: &Services,
    case_id: &CaseId,
    action: Action,
    by: &ActorRef,
    words: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<CaseRow> {
    write_tx(conn, |conn| {
        let case = store::case_by_id(conn, case_id)?;
        let org = store::org_by_id(conn, &case.organisation_id)?;
        let status = status_of(&case)?;
        // The workflow speaks first: a final case or a wrong role is refused before the words
        // are looked at.
        let step = domain::transition(&status, action, by.actor, now, &schedule_of(conn, &org)?)?;
        let words = check_words(action, words)?;
        let ctx = StepContext { svc, org: &org, by, words: words.as_deref(), now };
        apply(conn, &ctx, &case, &status, &step)
    })
}

/// A staff member's response or decision on a case of their organisation, found by its
/// reference. Refusals come in the order people can act on: a closed case, then a role that
/// may not do this, then a bad outcome word, then the rest.
#[allow(clippy::too_many_arguments)]
pub fn staff_act(
    conn: &mut DbConnection,
    svc: &Services,
    staff: &StaffContext,
    reference: &str,
    build: fn(Outcome) -> Action,
    outcome: Option<&str>,
    words: Option<&str>,
    reason_id: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<CaseRow> {
    let case = find_case(conn, &staff.org, reference)?;
    let status = status_of(&case)?;
    if status.state.is_final() {
        return Err(WorkflowError::Final { state: status.state }.into());
    }
    let probe = build(Outcome::Reinstate);
    let actor = staff.actor_for(status.kind, Some(probe));
    if !probe.permitted(status.kind, actor) {
        return Err(WorkflowError::NotPermitted { actor, action: probe, kind: status.kind }.into());
    }
    let action = build(parse_outcome(outcome, Some(status.kind))?);
    let step = match action {
        Action::Decide(_) => crate::domain::ReasonStep::Decision,
        _ => crate::services::reasons::answer_step(status.kind),
    };
    let words = crate::services::reasons::words_or_saved(conn, &staff.org, words, reason_id, step)?;
    let by = ActorRef::staff(staff, actor);
    act(conn, svc, &case.id, action, &by, words.as_deref(), now)
}

/// A moderator's request for more information on a case of their organisation.
pub fn request_info(
    conn: &mut DbConnection,
    svc: &Services,
    staff: &StaffContext,
    reference: &str,
    question: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<CaseRow> {
    let case = find_case(conn, &staff.org, reference)?;
    let kind = status_of(&case)?.kind;
    let by = ActorRef::staff(staff, staff.actor_for(kind, Some(Action::RequestInfo)));
    act(conn, svc, &case.id, Action::RequestInfo, &by, question, now)
}

/// The role a note is written in. Every staff role may write one, so the role recorded is the
/// one the case is with at its stage: the committee's and the secretary's once escalated, the
/// moderators' before; an admin role only when the writer holds no other.
fn note_role(staff: &StaffContext, state: CaseState) -> Role {
    let order = if state == CaseState::Escalated {
        [Role::Committee, Role::Secretary, Role::Moderator, Role::Admin]
    } else {
        [Role::Moderator, Role::Secretary, Role::Committee, Role::Admin]
    };
    order.into_iter().find(|r| staff.roles.contains(r)).unwrap_or(Role::Admin)
}

/// An internal note on a case: words for the organisation's own record, shown on staff pages,
/// in the staff API and in emails to staff, never to the poster or the reporter. Any staff
/// role may write one, on an open or a closed case; a note never changes the case.
pub fn add_note(
    conn: &mut DbConnection,
    svc: &Services,
    staff: &StaffContext,
    reference: &str,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<CaseEvent> {
    write_tx(conn, |conn| {
        // Another organisation's case is not found before anything else is said about it.
        let case = find_case(conn, &staff.org, reference)?;
        let mut c = Checker::new();
        let note = c.required("note", note, crate::validate::WORDS_MAX);
        c.finish()?;
        store::lock_case(conn, &case.id)?;
        let case = store::case_by_id(conn, &case.id)?;
        let status = status_of(&case)?;
        let actor = Actor::Staff(note_role(staff, status.state));
        let step = domain::transition(&status, Action::AddNote, actor, now, &schedule_of(conn, &staff.org)?)?;
        let by = ActorRef::staff(staff, actor);
        let ctx = StepContext { svc, org: &staff.org, by: &by, words: Some(&note), now };
        record(conn, &ctx, &case, &step)
    })
}
