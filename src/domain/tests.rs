//! The exhaustive table: every kind × state × overdue flag × time (before or after the running
//! deadline) × action × actor. The table below is the specification, written out by hand; any
//! combination not in it must be refused, and with the right kind of error.

use super::*;
use chrono::Duration;

use Action as A;
use CaseKind::{Complaint, Removal};
use CaseState as S;
use EmailTemplate as E;
use Recipient as R;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Before,
    After,
    Any,
}

const MOD: Actor = Actor::Staff(Role::Moderator);
const SEC: Actor = Actor::Staff(Role::Secretary);
const COM: Actor = Actor::Staff(Role::Committee);

/// One allowed step: from (kind, state, overdue, when) by (action, actor) to (state, overdue,
/// running deadline kind, emails).
struct Row {
    kind: CaseKind,
    from: CaseState,
    overdue: bool,
    when: When,
    action: Action,
    actor: Actor,
    to: CaseState,
    to_overdue: bool,
    due: Option<DueKind>,
    emails: &'static [(EmailTemplate, Recipient)],
}

#[allow(clippy::too_many_arguments)]
const fn row(
    kind: CaseKind,
    from: CaseState,
    overdue: bool,
    when: When,
    action: Action,
    actor: Actor,
    to: CaseState,
    to_overdue: bool,
    due: Option<DueKind>,
    emails: &'static [(EmailTemplate, Recipient)],
) -> Row {
    Row { kind, from, overdue, when, action, actor, to, to_overdue, due, emails }
}

const NEW_APPEAL: &[(EmailTemplate, Recipient)] =
    &[(E::AppealReceived, R::Poster), (E::NewAppeal, R::Moderators)];
const TO_POSTER: &[(EmailTemplate, Recipient)] = &[(E::Response, R::Poster)];
const TO_REPORTER: &[(EmailTemplate, Recipient)] = &[(E::Response, R::Reporter)];
const OVERDUE_P: &[(EmailTemplate, Recipient)] =
    &[(E::OverdueSecretary, R::Secretary), (E::OverdueParty, R::Poster)];
const OVERDUE_R: &[(EmailTemplate, Recipient)] =
    &[(E::OverdueSecretary, R::Secretary), (E::OverdueParty, R::Reporter)];
const ESC_P: &[(EmailTemplate, Recipient)] =
    &[(E::EscalationReceived, R::Secretary), (E::EscalationAck, R::Poster)];
const ESC_R: &[(EmailTemplate, Recipient)] =
    &[(E::EscalationReceived, R::Secretary), (E::EscalationAck, R::Reporter)];
const DEC_P: &[(EmailTemplate, Recipient)] = &[(E::Decision, R::Poster), (E::DecisionStaff, R::Moderators)];
const DEC_R: &[(EmailTemplate, Recipient)] = &[(E::Decision, R::Reporter), (E::DecisionStaff, R::Moderators)];
const WD_P: &[(EmailTemplate, Recipient)] = &[(E::Withdrawn, R::Poster), (E::WithdrawnStaff, R::Moderators)];
const WD_R: &[(EmailTemplate, Recipient)] =
    &[(E::Withdrawn, R::Reporter), (E::WithdrawnStaff, R::Moderators)];
const ASK_P: &[(EmailTemplate, Recipient)] = &[(E::InfoRequest, R::Poster)];
const ASK_R: &[(EmailTemplate, Recipient)] = &[(E::InfoRequest, R::Reporter)];
const COMMITTEE_LATE: &[(EmailTemplate, Recipient)] = &[(E::CommitteeOverdue, R::Secretary)];
const NONE: &[(EmailTemplate, Recipient)] = &[];

use DueKind::{AppealWindow as AW, CommitteeTarget as CT, EscalationWindow as EW, Response as RS};
use Outcome::{NoAction as NA, Reinstate as RE, Remove as RM, Uphold as UP};
use When::{After, Any, Before};

#[rustfmt::skip]
const TABLE: &[Row] = &[
    // Removal: the notice is out and the appeal window runs.
    row(Removal, S::NoticeSent, false, Before, A::LodgeAppeal, Actor::Poster, S::AppealLodged, false, Some(RS), NEW_APPEAL),
    row(Removal, S::NoticeSent, false, After, A::DeadlinePassed, Actor::System, S::ClosedNoAppeal, false, None, NONE),
    row(Removal, S::NoticeSent, false, Any, A::Withdraw, Actor::Poster, S::Withdrawn, false, None, WD_P),
    // The appeal waits for the moderators' response, late or not.
    row(Removal, S::AppealLodged, false, Any, A::Respond(RE), MOD, S::Reinstated, false, None, TO_POSTER),
    row(Removal, S::AppealLodged, false, Any, A::Respond(UP), MOD, S::AppealRejected, false, Some(EW), TO_POSTER),
    row(Removal, S::AppealLodged, true, Any, A::Respond(RE), MOD, S::Reinstated, false, None, TO_POSTER),
    row(Removal, S::AppealLodged, true, Any, A::Respond(UP), MOD, S::AppealRejected, false, Some(EW), TO_POSTER),
    row(Removal, S::AppealLodged, false, Before, A::RequestInfo, MOD, S::AppealLodged, false, None, ASK_P),
    row(Removal, S::AppealLodged, false, After, A::DeadlinePassed, Actor::System, S::AppealLodged, true, Some(RS), OVERDUE_P),
    row(Removal, S::AppealLodged, false, After, A::Escalate, Actor::Poster, S::Escalated, false, Some(CT), ESC_P),
    row(Removal, S::AppealLodged, true, Any, A::Escalate, Actor::Poster, S::Escalated, false, Some(CT), ESC_P),
    row(Removal, S::AppealLodged, false, Any, A::Withdraw, Actor::Poster, S::Withdrawn, false, None, WD_P),
    row(Removal, S::AppealLodged, true, Any, A::Withdraw, Actor::Poster, S::Withdrawn, false, None, WD_P),
    // Rejected: the escalation window runs.
    row(Removal, S::AppealRejected, false, Before, A::Escalate, Actor::Poster, S::Escalated, false, Some(CT), ESC_P),
    row(Removal, S::AppealRejected, false, After, A::DeadlinePassed, Actor::System, S::Closed, false, None, NONE),
    row(Removal, S::AppealRejected, false, Any, A::Withdraw, Actor::Poster, S::Withdrawn, false, None, WD_P),
    // Escalated: the committee decides, finally.
    row(Removal, S::Escalated, false, Any, A::Decide(RE), COM, S::Decided, false, None, DEC_P),
    row(Removal, S::Escalated, false, Any, A::Decide(UP), COM, S::Decided, false, None, DEC_P),
    row(Removal, S::Escalated, false, Any, A::Decide(RE), SEC, S::Decided, false, None, DEC_P),
    row(Removal, S::Escalated, false, Any, A::Decide(UP), SEC, S::Decided, false, None, DEC_P),
    row(Removal, S::Escalated, true, Any, A::Decide(RE), COM, S::Decided, false, None, DEC_P),
    row(Removal, S::Escalated, true, Any, A::Decide(UP), COM, S::Decided, false, None, DEC_P),
    row(Removal, S::Escalated, true, Any, A::Decide(RE), SEC, S::Decided, false, None, DEC_P),
    row(Removal, S::Escalated, true, Any, A::Decide(UP), SEC, S::Decided, false, None, DEC_P),
    row(Removal, S::Escalated, false, After, A::DeadlinePassed, Actor::System, S::Escalated, true, Some(CT), COMMITTEE_LATE),
    row(Removal, S::Escalated, false, Any, A::Withdraw, Actor::Poster, S::Withdrawn, false, None, WD_P),
    row(Removal, S::Escalated, true, Any, A::Withdraw, Actor::Poster, S::Withdrawn, false, None, WD_P),
    // Complaint: the moderators' response clock runs from receipt.
    row(Complaint, S::ComplaintReceived, false, Any, A::Respond(RM), MOD, S::ContentRemoved, false, Some(EW), TO_REPORTER),
    row(Complaint, S::ComplaintReceived, false, Any, A::Respond(NA), MOD, S::NoAction, false, Some(EW), TO_REPORTER),
    row(Complaint, S::ComplaintReceived, true, Any, A::Respond(RM), MOD, S::ContentRemoved, false, Some(EW), TO_REPORTER),
    row(Complaint, S::ComplaintReceived, true, Any, A::Respond(NA), MOD, S::NoAction, false, Some(EW), TO_REPORTER),
    row(Complaint, S::ComplaintReceived, false, Before, A::RequestInfo, MOD, S::ComplaintReceived, false, None, ASK_R),
    row(Complaint, S::ComplaintReceived, false, After, A::DeadlinePassed, Actor::System, S::ComplaintReceived, true, Some(RS), OVERDUE_R),
    row(Complaint, S::ComplaintReceived, false, After, A::Escalate, Actor::Reporter, S::Escalated, false, Some(CT), ESC_R),
    row(Complaint, S::ComplaintReceived, true, Any, A::Escalate, Actor::Reporter, S::Escalated, false, Some(CT), ESC_R),
    row(Complaint, S::ComplaintReceived, false, Any, A::Withdraw, Actor::Reporter, S::Withdrawn, false, None, WD_R),
    row(Complaint, S::ComplaintReceived, true, Any, A::Withdraw, Actor::Reporter, S::Withdrawn, false, None, WD_R),
    row(Complaint, S::ContentRemoved, false, Before, A::Escalate, Actor::Reporter, S::Escalated, false, Some(CT), ESC_R),
    row(Complaint, S::ContentRemoved, false, After, A::DeadlinePassed, Actor::System, S::Closed, false, None, NONE),
    row(Complaint, S::ContentRemoved, false, Any, A::Withdraw, Actor::Reporter, S::Withdrawn, false, None, WD_R),
    row(Complaint, S::NoAction, false, Before, A::Escalate, Actor::Reporter, S::Escalated, false, Some(CT), ESC_R),
    row(Complaint, S::NoAction, false, After, A::DeadlinePassed, Actor::System, S::Closed, false, None, NONE),
    row(Complaint, S::NoAction, false, Any, A::Withdraw, Actor::Reporter, S::Withdrawn, false, None, WD_R),
    row(Complaint, S::Escalated, false, Any, A::Decide(RM), COM, S::Decided, false, None, DEC_R),
    row(Complaint, S::Escalated, false, Any, A::Decide(NA), COM, S::Decided, false, None, DEC_R),
    row(Complaint, S::Escalated, false, Any, A::Decide(RM), SEC, S::Decided, false, None, DEC_R),
    row(Complaint, S::Escalated, false, Any, A::Decide(NA), SEC, S::Decided, false, None, DEC_R),
    row(Complaint, S::Escalated, true, Any, A::Decide(RM), COM, S::Decided, false, None, DEC_R),
    row(Complaint, S::Escalated, true, Any, A::Decide(NA), COM, S::Decided, false, None, DEC_R),
    row(Complaint, S::Escalated, true, Any, A::Decide(RM), SEC, S::Decided, false, None, DEC_R),
    row(Complaint, S::Escalated, true, Any, A::Decide(NA), SEC, S::Decided, false, None, DEC_R),
    row(Complaint, S::Escalated, false, After, A::DeadlinePassed, Actor::System, S::Escalated, true, Some(CT), COMMITTEE_LATE),
    row(Complaint, S::Escalated, false, Any, A::Withdraw, Actor::Reporter, S::Withdrawn, false, None, WD_R),
    row(Complaint, S::Escalated, true, Any, A::Withdraw, Actor::Reporter, S::Withdrawn, false, None, WD_R),
];

/// Which actor may ask for which action at all, whatever the state (written apart from the
/// implementation's own check).
fn may(kind: CaseKind, action: Action, actor: Actor) -> bool {
    let party = if kind == Removal { Actor::Poster } else { Actor::Reporter };
    match action {
        A::LodgeAppeal => kind == Removal && actor == Actor::Poster,
        A::Escalate | A::Withdraw | A::ProvideInfo => actor == party,
        A::Respond(_) | A::RequestInfo => actor == MOD,
        A::Decide(_) => actor == COM || actor == SEC,
        A::DeadlinePassed | A::Remind => actor == Actor::System,
        A::AddNote => matches!(actor, Actor::Staff(_)),
        A::ReissueLink => matches!(actor, MOD | SEC | Actor::Staff(Role::Admin)),
    }
}

/// The deadline each open state runs; final states run none.
fn due_kind_of(state: CaseState) -> Option<DueKind> {
    match state {
        S::NoticeSent => Some(AW),
        S::AppealLodged | S::ComplaintReceived => Some(RS),
        S::AppealRejected | S::ContentRemoved | S::NoAction => Some(EW),
        S::Escalated => Some(CT),
        _ => None,
    }
}

fn schedule() -> Schedule {
    Schedule::calendar_days(chrono_tz::Europe::London, 28, 5, 14, 21)
}

fn all_actions() -> Vec<Action> {
    let mut actions =
        vec![A::LodgeAppeal, A::Escalate, A::Withdraw, A::DeadlinePassed, A::RequestInfo, A::ProvideInfo];
    for o in Outcome::ALL {
        actions.push(A::Respond(*o));
        actions.push(A::Decide(*o));
    }
    actions
}

#[test]
fn every_state_action_and_actor_against_the_table() {
    let schedule = schedule();
    let due_at = DateTime::parse_from_rfc3339("2026-05-11T22:59:59Z").unwrap().to_utc();
    let mut checked = 0;
    let mut allowed = 0;
    for kind in CaseKind::ALL.iter().copied() {
        for state in CaseState::ALL.iter().copied().filter(|s| s.kinds().contains(&kind)) {
            for overdue in [false, true] {
                let due = due_kind_of(state).map(|k| Deadline { kind: k, at: due_at });
                // Only a clock that someone must answer (response, committee target) can be
                // overdue; the windows close the case instead.
                if overdue && !matches!(due_kind_of(state), Some(RS) | Some(CT)) {
                    continue;
                }
                let case = CaseStatus { kind, state, overdue, due, paused: None };
                for (when, now) in
                    [(Before, due_at - Duration::hours(3)), (After, due_at + Duration::seconds(1))]
                {
                    for action in all_actions() {
                        for actor in Actor::ALL {
                            checked += 1;
                            let got = transition(&case, action, actor, now, &schedule);
                            let expected = TABLE.iter().find(|r| {
                                r.kind == kind
                                    && r.from == state
                                    && r.overdue == overdue
                                    && (r.when == Any || r.when == when)
                                    && r.action == action
                                    && r.actor == actor
                            });
                            let ctx =
                                format!("{kind} {state} overdue={overdue} {when:?} {action:?} by {actor:?}");
                            match (expected, got) {
                                (Some(row), Ok(t)) => {
                                    allowed += 1;
                                    assert_eq!(t.from, Some(state), "{ctx}");
                                    assert_eq!(t.to.state, row.to, "{ctx}");
                                    assert_eq!(t.to.kind, kind, "{ctx}");
                                    assert_eq!(t.to.overdue, row.to_overdue, "{ctx}");
                                    assert_eq!(t.to.due.map(|d| d.kind), row.due, "{ctx}");
                                    if t.to.paused.is_none() {
                                        assert_eq!(
                                            t.to.due.map(|d| d.kind),
                                            due_kind_of(row.to),
                                            "{ctx}: new state runs its own clock"
                                        );
                                    } else {
                                        assert_eq!(t.to.due, None, "{ctx}: a paused clock runs no deadline");
                                    }
                                    let emails: Vec<_> =
                                        t.emails.iter().map(|e| (e.template, e.to)).collect();
                                    assert_eq!(emails, row.emails, "{ctx}");
                                    if let Some(d) = t.to.due {
                                        if row.to == state {
                                            assert_eq!(
                                                d.at, due_at,
                                                "{ctx}: the deadline stays put when the state does"
                                            );
                                        } else {
                                            assert_eq!(
                                                d.at,
                                                schedule.deadline(d.kind, now),
                                                "{ctx}: a new clock starts now"
                                            );
                                        }
                                    }
                                    match action {
                                        A::Respond(o) | A::Decide(o) => {
                                            assert_eq!(t.outcome, Some(o), "{ctx}")
                                        }
                                        _ => assert_eq!(t.outcome, None, "{ctx}"),
                                    }
                                }
                                (Some(_), Err(e)) => {
                                    panic!("{ctx}: expected to be allowed, refused: {e}")
                                }
                                (None, Ok(t)) => {
                                    panic!("{ctx}: expected a refusal, got {:?}", t.to)
                                }
                                (None, Err(e)) => {
                                    if state.is_final() {
                                        assert_eq!(e, WorkflowError::Final { state }, "{ctx}");
                                    } else if !may(kind, action, actor) {
                                        assert!(
                                            matches!(e, WorkflowError::NotPermitted { .. }),
                                            "{ctx}: {e:?}"
                                        );
                                    } else if let A::Respond(o) | A::Decide(o) = action {
                                        if o.fits(kind) {
                                            assert!(
                                                matches!(e, WorkflowError::WrongState { .. }),
                                                "{ctx}: {e:?}"
                                            );
                                        } else {
                                            assert!(
                                                matches!(e, WorkflowError::WrongOutcome { .. }),
                                                "{ctx}: {e:?}"
                                            );
                                        }
                                    } else {
                                        assert!(
                                            matches!(
                                                e,
                                                WorkflowError::WrongState { .. }
                                                    | WorkflowError::NotYetOverdue { .. }
                                                    | WorkflowError::WindowClosed { .. }
                                                    | WorkflowError::NotDue
                                                    | WorkflowError::ClockRunOut
                                            ),
                                            "{ctx}: {e:?}"
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    // Every row of the table was reached at least once, so no row is dead.
    assert!(allowed >= TABLE.len(), "allowed {allowed} < rows {}", TABLE.len());
    assert!(checked > 2000, "checked only {checked}");
}

#[test]
fn every_row_of_the_table_is_reachable() {
    let schedule = schedule();
    let due_at = DateTime::parse_from_rfc3339("2026-05-11T22:59:59Z").unwrap().to_utc();
    for row in TABLE {
        let case = CaseStatus {
            kind: row.kind,
            state: row.from,
            overdue: row.overdue,
            due: due_kind_of(row.from).map(|k| Deadline { kind: k, at: due_at }),
            paused: None,
        };
        let now = match row.when {
            Before | Any => due_at - Duration::hours(1),
            After => due_at + Duration::hours(1),
        };
        let t = transition(&case, row.action, row.actor, now, &schedule)
            .unwrap_or_else(|e| panic!("{:?} {:?}: {e}", row.from, row.action));
        assert_eq!(t.to.state, row.to);
    }
}

#[test]
fn opening_a_case_starts_its_first_clock() {
    let schedule = schedule();
    let now = DateTime::parse_from_rfc3339("2026-04-02T10:00:00Z").unwrap().to_utc();
    for actor in Actor::ALL {
        assert_eq!(open(Removal, actor, now, &schedule).is_ok(), actor == MOD, "{actor:?}");
        assert_eq!(open(Complaint, actor, now, &schedule).is_ok(), actor == Actor::Reporter, "{actor:?}");
    }
    let removal = open(Removal, MOD, now, &schedule).unwrap();
    assert_eq!(removal.to.state, S::NoticeSent);
    assert_eq!(removal.to.due.unwrap().kind, AW);
    assert_eq!(removal.to.due.unwrap().at, schedule.deadline(AW, now));
    assert_eq!(removal.emails, vec![EmailOrder { template: E::RemovalNotice, to: R::Poster }]);
    let complaint = open(Complaint, Actor::Reporter, now, &schedule).unwrap();
    assert_eq!(complaint.to.state, S::ComplaintReceived);
    assert_eq!(complaint.to.due.unwrap().kind, RS);
    assert_eq!(
        complaint.emails,
        vec![
            EmailOrder { template: E::ComplaintReceived, to: R::Reporter },
            EmailOrder { template: E::NewComplaint, to: R::Moderators }
        ]
    );
}

#[test]
fn final_states_are_exactly_the_ends_of_the_workflow() {
    let finals: Vec<_> = CaseState::ALL.iter().copied().filter(|s| s.is_final()).collect();
    assert_eq!(finals, vec![S::Reinstated, S::ClosedNoAppeal, S::Decided, S::Withdrawn, S::Closed]);
}

#[test]
fn text_forms_round_trip() {
    for s in CaseState::ALL {
        assert_eq!(CaseState::parse(s.as_str()), Some(*s));
    }
    for t in EmailTemplate::ALL {
        assert_eq!(EmailTemplate::parse(t.as_str()), Some(*t));
    }
    assert_eq!(CaseState::parse("nonsense"), None);
}

#[test]
fn a_paused_clock_stops_and_resumes_with_the_days_left() {
    let mut schedule = schedule();
    schedule.response = deadline::Clock { days: 5, count: DayCount::Working };
    schedule.info_answer_days = 3;
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    // Appeal lodged Thursday 2 April 2026: response due Monday 13 April (England and Wales).
    let lodged = at("2026-04-02T10:00:00Z");
    let due = schedule.deadline(DueKind::Response, lodged);
    let case = CaseStatus {
        kind: Removal,
        state: S::AppealLodged,
        overdue: false,
        due: Some(Deadline { kind: RS, at: due }),
        paused: None,
    };

    // Asked on Tuesday 7 April, with 4 working days left (8, 9, 10, 13).
    let asked = transition(&case, A::RequestInfo, MOD, at("2026-04-07T09:00:00Z"), &schedule).unwrap();
    let paused = asked.to.paused.unwrap();
    assert_eq!(paused.days_left, 4);
    assert_eq!(deadline::long_date(paused.answer_by, schedule.tz), "Friday 10 April 2026");
    assert_eq!(asked.to.due, None);

    // Nothing about it is due while it waits; asking twice, escalating, or a sweep are refused.
    assert_eq!(
        transition(&asked.to, A::RequestInfo, MOD, at("2026-04-08T09:00:00Z"), &schedule).unwrap_err(),
        WorkflowError::WrongState { action: A::RequestInfo, state: S::AppealLodged }
    );
    assert!(transition(&asked.to, A::Escalate, Actor::Poster, at("2026-04-08T09:00:00Z"), &schedule).is_err());
    assert_eq!(
        transition(&asked.to, A::DeadlinePassed, Actor::System, at("2026-04-10T20:00:00Z"), &schedule)
            .unwrap_err(),
        WorkflowError::NotDue
    );

    // Answered on Thursday 9 April: 4 working days from then is Wednesday 15 April.
    let answered =
        transition(&asked.to, A::ProvideInfo, Actor::Poster, at("2026-04-09T12:00:00Z"), &schedule).unwrap();
    assert_eq!(answered.event, EventKind::InfoProvided);
    assert_eq!(answered.to.paused, None);
    assert_eq!(deadline::long_date(answered.to.due.unwrap().at, schedule.tz), "Wednesday 15 April 2026");
    assert_eq!(answered.emails, vec![EmailOrder { template: E::InfoProvided, to: R::Moderators }]);

    // Not answered: after the end of Friday 10 April the sweep restarts the clock from then.
    let expired =
        transition(&asked.to, A::DeadlinePassed, Actor::System, at("2026-04-11T08:00:00Z"), &schedule)
            .unwrap();
    assert_eq!(expired.event, EventKind::InfoWindowExpired);
    assert_eq!(deadline::long_date(expired.to.due.unwrap().at, schedule.tz), "Thursday 16 April 2026");
    // And a late answer is refused.
    assert!(matches!(
        transition(&asked.to, A::ProvideInfo, Actor::Poster, at("2026-04-11T08:00:00Z"), &schedule),
        Err(WorkflowError::WindowClosed { .. })
    ));

    // The moderators may still answer while they wait; that ends the pause.
    let respond = transition(&asked.to, A::Respond(UP), MOD, at("2026-04-08T09:00:00Z"), &schedule).unwrap();
    assert_eq!(respond.to.state, S::AppealRejected);
    assert_eq!(respond.to.paused, None);
}

/// The steps that leave a case where it is, over every kind, state, overdue flag, time and
/// actor: a note by any staff role and a new link by a moderator, the secretary or an admin,
/// in any state, open or closed; a reminder by the sweep only before a response or committee
/// deadline that is not yet overdue. Each records its event and changes nothing else.
#[test]
fn standing_steps_in_every_state() {
    let schedule = schedule();
    let due_at = DateTime::parse_from_rfc3339("2026-05-11T22:59:59Z").unwrap().to_utc();
    let mut allowed = 0;
    for kind in CaseKind::ALL.iter().copied() {
        let party = if kind == Removal { R::Poster } else { R::Reporter };
        for state in CaseState::ALL.iter().copied().filter(|s| s.kinds().contains(&kind)) {
            for overdue in [false, true] {
                let due = due_kind_of(state).map(|k| Deadline { kind: k, at: due_at });
                let case = CaseStatus { kind, state, overdue, due, paused: None };
                for (when, now) in
                    [(Before, due_at - Duration::hours(3)), (After, due_at + Duration::seconds(1))]
                {
                    for actor in Actor::ALL {
                        let staff = matches!(actor, Actor::Staff(_));
                        let link_staff = matches!(actor, MOD | SEC | Actor::Staff(Role::Admin));
                        let reminder = match due_kind_of(state) {
                            Some(RS) => Some((E::ResponseReminder, R::Moderators)),
                            Some(CT) => Some((E::CommitteeReminder, R::Secretary)),
                            _ => None,
                        };
                        let remind_ok =
                            actor == Actor::System && !state.is_final() && !overdue && when == Before;
                        // Each action, the emails it sends when allowed (none: refused), and its event.
                        type Expected = (Action, Option<Vec<(EmailTemplate, Recipient)>>, EventKind);
                        let expected: [Expected; 3] = [
                            (A::AddNote, staff.then(Vec::new), EventKind::NoteAdded),
                            (
                                A::ReissueLink,
                                link_staff.then(|| vec![(E::LinkReissued, party)]),
                                EventKind::LinkReissued,
                            ),
                            (
                                A::Remind,
                                reminder.filter(|_| remind_ok).map(|r| vec![r]),
                                EventKind::ReminderSent,
                            ),
                        ];
                        for (action, emails, event) in expected {
                            let ctx =
                                format!("{kind} {state} overdue={overdue} {when:?} {action:?} by {actor:?}");
                            match (emails, transition(&case, action, actor, now, &schedule)) {
                                (Some(emails), Ok(t)) => {
                                    allowed += 1;
                                    assert_eq!(t.from, Some(state), "{ctx}");
                                    assert_eq!(t.to, case, "{ctx}: the case stays where it is");
                                    assert_eq!(t.event, event, "{ctx}");
                                    assert_eq!(t.outcome, None, "{ctx}");
                                    let got: Vec<_> = t.emails.iter().map(|e| (e.template, e.to)).collect();
                                    assert_eq!(got, emails, "{ctx}");
                                }
                                (Some(_), Err(e)) => panic!("{ctx}: expected to be allowed, refused: {e}"),
                                (None, Ok(t)) => panic!("{ctx}: expected a refusal, got {:?}", t.event),
                                (None, Err(e)) => {
                                    if !may(kind, action, actor) {
                                        assert!(
                                            matches!(e, WorkflowError::NotPermitted { .. }),
                                            "{ctx}: {e:?}"
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(allowed > 200, "allowed only {allowed}");
}
