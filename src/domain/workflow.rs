//! The workflow itself: who may open a case, and what each action does to a case in each state
//! (`transition`), pure and without I/O. `tests.rs` pins it with the exhaustive table.

use chrono::{DateTime, Utc};

use super::*;

pub(super) fn order(template: EmailTemplate, to: Recipient) -> EmailOrder {
    EmailOrder { template, to }
}

pub(super) fn party_recipient(kind: CaseKind) -> Recipient {
    match kind {
        CaseKind::Removal => Recipient::Poster,
        CaseKind::Complaint => Recipient::Reporter,
    }
}

/// Who may open a case of `kind`: a moderator records a removal; a complaint comes from the
/// public form.
pub fn may_open(kind: CaseKind, actor: Actor) -> bool {
    match kind {
        CaseKind::Removal => actor == Actor::Staff(Role::Moderator),
        CaseKind::Complaint => actor == Actor::Reporter,
    }
}

/// The first status of a new case: a removal starts with the notice sent and the appeal window
/// running; a complaint with the moderators' response clock running.
pub fn open(
    kind: CaseKind,
    actor: Actor,
    now: DateTime<Utc>,
    schedule: &Schedule,
) -> Result<Transition, WorkflowError> {
    if !may_open(kind, actor) {
        return Err(WorkflowError::MayNotOpen { actor, kind });
    }
    let (state, due_kind, event, emails) = match kind {
        CaseKind::Removal => (
            CaseState::NoticeSent,
            DueKind::AppealWindow,
            EventKind::RemovalRecorded,
            vec![order(EmailTemplate::RemovalNotice, Recipient::Poster)],
        ),
        CaseKind::Complaint => (
            CaseState::ComplaintReceived,
            DueKind::Response,
            EventKind::ComplaintReceived,
            vec![
                order(EmailTemplate::ComplaintReceived, Recipient::Reporter),
                order(EmailTemplate::NewComplaint, Recipient::Moderators),
            ],
        ),
    };
    Ok(Transition {
        from: None,
        to: CaseStatus {
            kind,
            state,
            overdue: false,
            due: Some(Deadline { kind: due_kind, at: schedule.deadline(due_kind, now) }),
            paused: None,
        },
        event,
        outcome: None,
        emails,
    })
}

/// What `action` by `actor` at `now` does to a case, or why it is refused.
pub fn transition(
    case: &CaseStatus,
    action: Action,
    actor: Actor,
    now: DateTime<Utc>,
    schedule: &Schedule,
) -> Result<Transition, WorkflowError> {
    use CaseState as S;
    let kind = case.kind;
    if let Some(step) = standing::standing(case, action, actor, now) {
        return step;
    }
    if case.state.is_final() {
        return Err(WorkflowError::Final { state: case.state });
    }
    if !action.permitted(kind, actor) {
        return Err(WorkflowError::NotPermitted { actor, action, kind });
    }
    if let Action::Respond(outcome) | Action::Decide(outcome) = action {
        if !outcome.fits(kind) {
            return Err(WorkflowError::WrongOutcome { outcome, kind });
        }
    }
    let wrong_state = || WorkflowError::WrongState { action, state: case.state };
    let passed = case.due.is_some_and(|d| now > d.at);
    let running = |kind: DueKind| Some(Deadline { kind, at: schedule.deadline(kind, now) });
    let party = party_recipient(kind);
    let step = |to: CaseState, due: Option<Deadline>, event: EventKind, emails: Vec<EmailOrder>| Transition {
        from: Some(case.state),
        to: CaseStatus { kind, state: to, overdue: false, due, paused: None },
        event,
        outcome: match action {
            Action::Respond(o) | Action::Decide(o) => Some(o),
            _ => None,
        },
        emails,
    };

    match action {
        Action::LodgeAppeal => {
            if case.state != S::NoticeSent {
                return Err(wrong_state());
            }
            if let (true, Some(due)) = (passed, case.due) {
                return Err(WorkflowError::WindowClosed { due: due.at });
            }
            Ok(step(
                S::AppealLodged,
                running(DueKind::Response),
                EventKind::AppealLodged,
                vec![
                    order(EmailTemplate::AppealReceived, Recipient::Poster),
                    order(EmailTemplate::NewAppeal, Recipient::Moderators),
                ],
            ))
        }
        Action::Respond(outcome) => {
            if !matches!(case.state, S::AppealLodged | S::ComplaintReceived) {
                return Err(wrong_state());
            }
            // A late answer is still an answer: the moderators may respond after the deadline
            // as long as nobody has escalated yet.
            let to = match outcome {
                Outcome::Reinstate => S::Reinstated,
                Outcome::Uphold => S::AppealRejected,
                Outcome::Remove => S::ContentRemoved,
                Outcome::NoAction => S::NoAction,
            };
            let due = if to.is_final() { None } else { running(DueKind::EscalationWindow) };
            Ok(step(to, due, EventKind::ResponseGiven, vec![order(EmailTemplate::Response, party)]))
        }
        Action::Escalate => {
            match case.state {
                S::AppealRejected | S::ContentRemoved | S::NoAction => {
                    if let (true, Some(due)) = (passed, case.due) {
                        return Err(WorkflowError::WindowClosed { due: due.at });
                    }
                }
                S::AppealLodged | S::ComplaintReceived => {
                    // The sweep may not have run yet; the clock alone says whether the
                    // moderators are late.
                    if !case.overdue && !passed {
                        let due = case.due.map(|d| d.at).unwrap_or(now);
                        return Err(WorkflowError::NotYetOverdue { due });
                    }
                }
                _ => return Err(wrong_state()),
            }
            Ok(step(
                S::Escalated,
                running(DueKind::CommitteeTarget),
                EventKind::Escalated,
                vec![
                    order(EmailTemplate::EscalationReceived, Recipient::Secretary),
                    order(EmailTemplate::EscalationAck, party),
                ],
            ))
        }
        Action::Decide(_) => {
            if case.state != S::Escalated {
                return Err(wrong_state());
            }
            Ok(step(
                S::Decided,
                None,
                EventKind::DecisionRecorded,
                vec![
                    order(EmailTemplate::Decision, party),
                    order(EmailTemplate::DecisionStaff, Recipient::Moderators),
                ],
            ))
        }
        Action::Withdraw => Ok(step(
            S::Withdrawn,
            None,
            EventKind::Withdrawn,
            vec![
                order(EmailTemplate::Withdrawn, party),
                order(EmailTemplate::WithdrawnStaff, Recipient::Moderators),
            ],
        )),
        Action::RequestInfo => {
            if !matches!(case.state, S::AppealLodged | S::ComplaintReceived) || case.paused.is_some() {
                return Err(wrong_state());
            }
            let due = match case.due {
                Some(d) if d.kind == DueKind::Response && !case.overdue && now <= d.at => d,
                _ => return Err(WorkflowError::ClockRunOut),
            };
            let mut t = step(
                case.state,
                None,
                EventKind::InfoRequested,
                vec![order(EmailTemplate::InfoRequest, party)],
            );
            t.to.paused = Some(Pause {
                days_left: schedule.days_left(DueKind::Response, now, due.at),
                answer_by: schedule.deadline_after(schedule.response.count, schedule.info_answer_days, now),
            });
            Ok(t)
        }
        Action::ProvideInfo => {
            let Some(pause) = case.paused else { return Err(wrong_state()) };
            if now > pause.answer_by {
                return Err(WorkflowError::WindowClosed { due: pause.answer_by });
            }
            let resumed = schedule.deadline_after(schedule.response.count, pause.days_left, now);
            Ok(step(
                case.state,
                Some(Deadline { kind: DueKind::Response, at: resumed }),
                EventKind::InfoProvided,
                vec![order(EmailTemplate::InfoProvided, Recipient::Moderators)],
            ))
        }
        Action::DeadlinePassed if case.paused.is_some() => {
            let Some(pause) = case.paused else { unreachable!("the arm's guard checked it") };
            if now <= pause.answer_by {
                return Err(WorkflowError::NotDue);
            }
            let resumed = schedule.deadline_after(schedule.response.count, pause.days_left, now);
            Ok(step(
                case.state,
                Some(Deadline { kind: DueKind::Response, at: resumed }),
                EventKind::InfoWindowExpired,
                vec![order(EmailTemplate::InfoNotProvided, Recipient::Moderators)],
            ))
        }
        // Taken by `standing` above, before anything else; never reached.
        Action::AddNote | Action::ReissueLink | Action::Remind => Err(wrong_state()),
        Action::DeadlinePassed => {
            let due = case.due.ok_or(WorkflowError::NotDue)?;
            if !passed {
                return Err(WorkflowError::NotDue);
            }
            match due.kind {
                DueKind::AppealWindow => Ok(step(S::ClosedNoAppeal, None, EventKind::WindowExpired, vec![])),
                DueKind::EscalationWindow => Ok(step(S::Closed, None, EventKind::WindowExpired, vec![])),
                DueKind::Response | DueKind::CommitteeTarget if case.overdue => Err(WorkflowError::NotDue),
                DueKind::Response => {
                    let mut t = step(
                        case.state,
                        case.due,
                        EventKind::MarkedOverdue,
                        vec![
                            order(EmailTemplate::OverdueSecretary, Recipient::Secretary),
                            order(EmailTemplate::OverdueParty, party),
                        ],
                    );
                    t.to.overdue = true;
                    Ok(t)
                }
                DueKind::CommitteeTarget => {
                    let mut t = step(
                        case.state,
                        case.due,
                        EventKind::MarkedOverdue,
                        vec![order(EmailTemplate::CommitteeOverdue, Recipient::Secretary)],
                    );
                    t.to.overdue = true;
                    Ok(t)
                }
            }
        }
    }
}
