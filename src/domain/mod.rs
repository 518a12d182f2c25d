//! The workflow of a case, as pure functions: no I/O, no clock of its own. A service loads a
//! case, asks `transition` what an action does to it, and applies the answer in one database
//! transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use deadline::{DayCount, Schedule};

/// Declares a text-backed enumeration: the words are the API's vocabulary and the values
/// stored in the database (guarded there by CHECK constraints).
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod calendar;
pub mod deadline;
mod standing;
pub mod words;
mod workflow;

pub use words::Reader;
pub use workflow::*;

text_enum!(
    /// The two kinds of case, which share one spine.
    CaseKind { Removal => "removal", Complaint => "complaint" }
);

text_enum!(
    CaseState {
        NoticeSent => "notice_sent",
        AppealLodged => "appeal_lodged",
        Reinstated => "reinstated",
        AppealRejected => "appeal_rejected",
        ClosedNoAppeal => "closed_no_appeal",
        ComplaintReceived => "complaint_received",
        ContentRemoved => "content_removed",
        NoAction => "no_action",
        Escalated => "escalated",
        Decided => "decided",
        Withdrawn => "withdrawn",
        Closed => "closed",
    }
);

text_enum!(
    /// What the running deadline of a case is for.
    DueKind {
        AppealWindow => "appeal_window",
        Response => "response",
        EscalationWindow => "escalation_window",
        CommitteeTarget => "committee_target",
    }
);

text_enum!(
    /// A staff member's role within one organisation.
    Role { Admin => "admin", Moderator => "moderator", Secretary => "secretary", Committee => "committee" }
);

text_enum!(
    /// What a response or a decision concludes. `reinstate`/`uphold` answer an appeal against a
    /// removal; `remove`/`no_action` answer a complaint.
    Outcome { Reinstate => "reinstate", Uphold => "uphold", Remove => "remove", NoAction => "no_action" }
);

text_enum!(
    /// The step a saved reason is written for.
    ReasonStep {
        Removal => "removal",
        AppealResponse => "appeal_response",
        ComplaintResponse => "complaint_response",
        Decision => "decision",
    }
);

text_enum!(
    EventKind {
        RemovalRecorded => "removal_recorded",
        ComplaintReceived => "complaint_received",
        AppealLodged => "appeal_lodged",
        ResponseGiven => "response_given",
        MarkedOverdue => "marked_overdue",
        Escalated => "escalated",
        DecisionRecorded => "decision_recorded",
        Withdrawn => "withdrawn",
        WindowExpired => "window_expired",
        InfoRequested => "info_requested",
        InfoProvided => "info_provided",
        InfoWindowExpired => "info_window_expired",
        ReminderSent => "reminder_sent",
        NoteAdded => "note_added",
        LinkReissued => "link_reissued",
    }
);

text_enum!(
    /// Every email Redress sends; each names a template folder in `emails/`.
    EmailTemplate {
        RemovalNotice => "removal_notice",
        AppealReceived => "appeal_received",
        NewAppeal => "new_appeal",
        ComplaintReceived => "complaint_received",
        NewComplaint => "new_complaint",
        Response => "response",
        OverdueSecretary => "overdue_secretary",
        OverdueParty => "overdue_party",
        CommitteeOverdue => "committee_overdue",
        EscalationReceived => "escalation_received",
        EscalationAck => "escalation_ack",
        Decision => "decision",
        DecisionStaff => "decision_staff",
        Withdrawn => "withdrawn",
        WithdrawnStaff => "withdrawn_staff",
        InfoRequest => "info_request",
        InfoProvided => "info_provided",
        InfoNotProvided => "info_not_provided",
        ResponseReminder => "response_reminder",
        CommitteeReminder => "committee_reminder",
        LinkReissued => "link_reissued",
    }
);

text_enum!(
    /// Who an email is addressed to, in workflow terms; the service turns it into addresses.
    Recipient { Poster => "poster", Reporter => "reporter", Secretary => "secretary", Moderators => "moderator" }
);

impl CaseState {
    /// A final state: the case is closed and can no longer change.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CaseState::Reinstated
                | CaseState::ClosedNoAppeal
                | CaseState::Decided
                | CaseState::Withdrawn
                | CaseState::Closed
        )
    }

    pub fn kinds(self) -> &'static [CaseKind] {
        use CaseState::*;
        match self {
            NoticeSent | AppealLodged | Reinstated | AppealRejected | ClosedNoAppeal => &[CaseKind::Removal],
            ComplaintReceived | ContentRemoved | NoAction => &[CaseKind::Complaint],
            Escalated | Decided | Withdrawn | Closed => &[CaseKind::Removal, CaseKind::Complaint],
        }
    }
}

impl Outcome {
    /// Whether this outcome answers a case of `kind`.
    pub fn fits(self, kind: CaseKind) -> bool {
        match kind {
            CaseKind::Removal => matches!(self, Outcome::Reinstate | Outcome::Uphold),
            CaseKind::Complaint => matches!(self, Outcome::Remove | Outcome::NoAction),
        }
    }

    /// The API's names of the outcomes that answer a case of `kind`, for the API's errors.
    pub fn words_for(kind: CaseKind) -> &'static str {
        match kind {
            CaseKind::Removal => "reinstate or uphold",
            CaseKind::Complaint => "remove or no_action",
        }
    }
}

/// Who is acting on a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    /// The author of removed content, through their private link.
    Poster,
    /// The person who reported content, through their private link.
    Reporter,
    Staff(Role),
    /// The deadline sweep.
    System,
}

impl Actor {
    pub const ALL: [Actor; 7] = [
        Actor::Poster,
        Actor::Reporter,
        Actor::Staff(Role::Admin),
        Actor::Staff(Role::Moderator),
        Actor::Staff(Role::Secretary),
        Actor::Staff(Role::Committee),
        Actor::System,
    ];

    pub fn kind_str(self) -> &'static str {
        match self {
            Actor::Poster => "poster",
            Actor::Reporter => "reporter",
            Actor::Staff(_) => "staff",
            Actor::System => "system",
        }
    }

    pub fn describe(self) -> String {
        match self {
            Actor::Staff(role) => role.as_str().to_string(),
            other => other.kind_str().to_string(),
        }
    }

    /// The member of the public who is a party to a case of `kind`.
    pub fn party(kind: CaseKind) -> Actor {
        match kind {
            CaseKind::Removal => Actor::Poster,
            CaseKind::Complaint => Actor::Reporter,
        }
    }
}

/// What someone asks to do to a case. The words they write travel beside it: the workflow only
/// decides whether the step is allowed and what follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    LodgeAppeal,
    /// A moderator asks the poster or reporter for more information; the response clock stops.
    RequestInfo,
    /// The poster or reporter answers; the response clock resumes with the days it had left.
    ProvideInfo,
    Respond(Outcome),
    Escalate,
    Decide(Outcome),
    Withdraw,
    /// The sweep found the running deadline passed.
    DeadlinePassed,
    /// Staff write an internal note; the case stays where it is.
    AddNote,
    /// Staff revoke the party's private links and send a new one.
    ReissueLink,
    /// The sweep reminds whoever must meet a running response or committee deadline.
    Remind,
}

impl Action {
    pub fn describe(self) -> &'static str {
        match self {
            Action::LodgeAppeal => "lodge an appeal",
            Action::RequestInfo => "ask for more information",
            Action::ProvideInfo => "give more information",
            Action::Respond(_) => "respond",
            Action::Escalate => "escalate to the executive committee",
            Action::Decide(_) => "record the committee's decision",
            Action::Withdraw => "withdraw",
            Action::DeadlinePassed => "act on a passed deadline",
            Action::AddNote => "add a note",
            Action::ReissueLink => "send a new private link",
            Action::Remind => "send a reminder",
        }
    }

    /// Whether `actor` may ask for this action on a case of `kind` at all, in any state.
    pub fn permitted(self, kind: CaseKind, actor: Actor) -> bool {
        match self {
            Action::LodgeAppeal => kind == CaseKind::Removal && actor == Actor::Poster,
            Action::Escalate | Action::Withdraw | Action::ProvideInfo => actor == Actor::party(kind),
            Action::Respond(_) | Action::RequestInfo => actor == Actor::Staff(Role::Moderator),
            Action::Decide(_) => {
                matches!(actor, Actor::Staff(Role::Committee) | Actor::Staff(Role::Secretary))
            }
            Action::DeadlinePassed | Action::Remind => actor == Actor::System,
            Action::AddNote => matches!(actor, Actor::Staff(_)),
            Action::ReissueLink => {
                matches!(actor, Actor::Staff(Role::Moderator | Role::Secretary | Role::Admin))
            }
        }
    }
}

/// A running deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Deadline {
    pub kind: DueKind,
    pub at: DateTime<Utc>,
}

/// What the workflow needs to know of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseStatus {
    pub kind: CaseKind,
    pub state: CaseState,
    pub overdue: bool,
    pub due: Option<Deadline>,
    /// The response clock stopped while the poster or reporter is asked for more information.
    pub paused: Option<Pause>,
}

/// A stopped response clock: the counted days it had left, and until when the request for
/// more information waits for an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    pub days_left: u32,
    pub answer_by: DateTime<Utc>,
}

/// One email a step causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailOrder {
    pub template: EmailTemplate,
    pub to: Recipient,
}

/// What an allowed step does: the new status, the event to record and the emails to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: Option<CaseState>,
    pub to: CaseStatus,
    pub event: EventKind,
    pub outcome: Option<Outcome>,
    pub emails: Vec<EmailOrder>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    #[error("this case is {} and can no longer change", .state.describe().to_lowercase())]
    Final { state: CaseState },
    #[error("a {} may not {} on a {kind} case", .actor.describe(), .action.describe())]
    NotPermitted { actor: Actor, action: Action, kind: CaseKind },
    #[error("cannot {} while the case is {}", .action.describe(), .state.describe().to_lowercase())]
    WrongState { action: Action, state: CaseState },
    #[error("the outcome {outcome} does not answer a {kind} case; use {}", Outcome::words_for(*.kind))]
    WrongOutcome { outcome: Outcome, kind: CaseKind },
    #[error("the moderators' response is not yet overdue; escalation opens after {}", .due.to_rfc3339())]
    NotYetOverdue { due: DateTime<Utc> },
    #[error("the time allowed for this step ran out at {}", .due.to_rfc3339())]
    WindowClosed { due: DateTime<Utc> },
    #[error("no deadline of this case has passed")]
    NotDue,
    #[error("the response deadline has already passed, so there is no clock left to pause")]
    ClockRunOut,
    #[error("a {} may not open a {kind} case", .actor.describe())]
    MayNotOpen { actor: Actor, kind: CaseKind },
}

#[cfg(test)]
mod tests;
