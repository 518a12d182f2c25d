//! Steps that leave a case where it is: a note, a new private link, a reminder before a
//! deadline. They are recorded like every other step (an event, perhaps emails) and pass
//! through `transition` like every other, so who may take them, and when, is decided here and
//! pinned by the table test, not by each service.

use chrono::{DateTime, Utc};

use super::*;

/// The transition of a standing action (`AddNote`, `ReissueLink`, `Remind`); none for an
/// action that moves the case.
pub(super) fn standing(
    case: &CaseStatus,
    action: Action,
    actor: Actor,
    now: DateTime<Utc>,
) -> Option<Result<Transition, WorkflowError>> {
    let kind = case.kind;
    let (event, emails) = match action {
        Action::AddNote => (EventKind::NoteAdded, vec![]),
        Action::ReissueLink => {
            (EventKind::LinkReissued, vec![order(EmailTemplate::LinkReissued, party_recipient(kind))])
        }
        Action::Remind => {
            let reminder = match case.due {
                Some(Deadline { kind: DueKind::Response, .. }) => {
                    Some(order(EmailTemplate::ResponseReminder, Recipient::Moderators))
                }
                Some(Deadline { kind: DueKind::CommitteeTarget, .. }) => {
                    Some(order(EmailTemplate::CommitteeReminder, Recipient::Secretary))
                }
                _ => None,
            };
            (EventKind::ReminderSent, reminder.into_iter().collect())
        }
        _ => return None,
    };
    if !action.permitted(kind, actor) {
        return Some(Err(WorkflowError::NotPermitted { actor, action, kind }));
    }
    // A note or a new link is for the record and the parties, open or closed; a reminder only
    // before a deadline that someone must still meet.
    if action == Action::Remind {
        if case.state.is_final() {
            return Some(Err(WorkflowError::Final { state: case.state }));
        }
        if emails.is_empty() || case.overdue || case.due.is_some_and(|d| now > d.at) {
            return Some(Err(WorkflowError::NotDue));
        }
    }
    Some(Ok(Transition { from: Some(case.state), to: *case, event, outcome: None, emails }))
}
