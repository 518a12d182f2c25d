//! The words people read: what each outcome, state and step of a case means, for the member of
//! the public on the case (spoken to as "you") and for staff. Pages, emails, timelines and the
//! command line take their words from here, so the same outcome is never called two things;
//! the API keeps its own vocabulary (the `as_str` names), which no person reads.

use super::{CaseState, DayCount, DueKind, EmailTemplate, EventKind, Outcome};

/// Who is reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The poster or the reporter, reading about their own case.
    Party,
    Staff,
}

impl Outcome {
    /// What the outcome means for the content, as a clause: "the post stays removed".
    pub fn meaning(self) -> &'static str {
        match self {
            Outcome::Reinstate => "the post is to be put back",
            Outcome::Uphold => "the post stays removed",
            Outcome::Remove => "the reported content is to be removed",
            Outcome::NoAction => "no action is to be taken on the reported content",
        }
    }

    /// The outcome as staff choose it on a form.
    pub fn choice(self) -> &'static str {
        match self {
            Outcome::Reinstate => "Put the post back",
            Outcome::Uphold => "Keep the post removed",
            Outcome::Remove => "Remove the reported content",
            Outcome::NoAction => "Take no action",
        }
    }

    /// A few words, for a subject line or a list: "removal stands".
    pub fn short(self) -> &'static str {
        match self {
            Outcome::Reinstate => "post to be put back",
            Outcome::Uphold => "removal stands",
            Outcome::Remove => "content to be removed",
            Outcome::NoAction => "no action",
        }
    }
}

impl CaseState {
    /// The state in plain words for staff, when the outcome is not at hand (a filter, a
    /// list of states).
    pub fn describe(self) -> &'static str {
        use CaseState::*;
        match self {
            NoticeSent => "Removed; the author may appeal",
            AppealLodged => "Appeal lodged; awaiting the moderators' response",
            Reinstated => "Appeal accepted; the post is to be put back",
            AppealRejected => "Appeal turned down; the removal stands",
            ClosedNoAppeal => "Closed; no appeal was made in time",
            ComplaintReceived => "Complaint received; awaiting the moderators' response",
            ContentRemoved => "The reported content was removed",
            NoAction => "No action was taken on the complaint",
            Escalated => "With the executive committee",
            Decided => "Decided by the executive committee (final)",
            Withdrawn => "Withdrawn",
            Closed => "Closed",
        }
    }

    /// The state as `reader` reads it. A decided case names what was decided.
    pub fn words(self, outcome: Option<Outcome>, reader: Reader) -> String {
        use CaseState::*;
        if let (Decided, Some(o)) = (self, outcome) {
            return format!("The executive committee decided {} (final)", o.meaning());
        }
        if reader == Reader::Staff {
            return self.describe().into();
        }
        match self {
            NoticeSent => "Removed; you may appeal",
            AppealLodged => "Appeal received; waiting for the moderators' answer",
            Reinstated => "Appeal accepted; your post is to be put back",
            AppealRejected => "The moderators decided the post stays removed",
            ComplaintReceived => "Complaint received; waiting for the moderators' answer",
            ContentRemoved => "The moderators removed the reported content",
            NoAction => "The moderators decided to take no action",
            other => other.describe(),
        }
        .into()
    }
}

impl super::Role {
    /// The role as a choice on a form.
    pub fn words(self) -> &'static str {
        match self {
            super::Role::Admin => "Admin (runs these pages)",
            super::Role::Moderator => "Moderator",
            super::Role::Secretary => "Secretary",
            super::Role::Committee => "Committee member",
        }
    }
}

impl EmailTemplate {
    /// What the email is, for staff lists.
    pub fn words(self) -> &'static str {
        use EmailTemplate::*;
        match self {
            RemovalNotice => "the removal notice",
            AppealReceived => "the acknowledgement of an appeal",
            NewAppeal => "the alert of a new appeal",
            ComplaintReceived => "the acknowledgement of a complaint",
            NewComplaint => "the alert of a new complaint",
            Response => "the moderators' answer",
            OverdueSecretary => "the alert of an overdue answer",
            OverdueParty => "the apology for an overdue answer",
            CommitteeOverdue => "the alert of an overdue committee decision",
            EscalationReceived => "the escalation to the secretary",
            EscalationAck => "the acknowledgement of an escalation",
            Decision => "the committee's decision",
            DecisionStaff => "the committee's decision, to staff",
            Withdrawn => "the acknowledgement of a withdrawal",
            WithdrawnStaff => "the alert of a withdrawal",
            InfoRequest => "the question for more information",
            InfoProvided => "the answer to a question, to staff",
            InfoNotProvided => "the alert of an unanswered question",
            ResponseReminder => "the reminder of an answer due",
            CommitteeReminder => "the reminder of a committee decision due",
            LinkReissued => "the new private link",
        }
    }
}

impl super::ReasonStep {
    /// The step, as admins choose it for a saved reason.
    pub fn words(self) -> &'static str {
        match self {
            super::ReasonStep::Removal => "Explaining a removal",
            super::ReasonStep::AppealResponse => "Answering an appeal",
            super::ReasonStep::ComplaintResponse => "Answering a complaint",
            super::ReasonStep::Decision => "A committee decision",
        }
    }
}

impl DueKind {
    /// What the running deadline is, for staff lists: "response due".
    pub fn words(self) -> &'static str {
        match self {
            DueKind::AppealWindow => "appeal window closes",
            DueKind::Response => "response due",
            DueKind::EscalationWindow => "escalation window closes",
            DueKind::CommitteeTarget => "committee decision due",
        }
    }
}

impl EventKind {
    /// A step of the case's history, as its timeline shows it to anyone.
    pub fn words(self, outcome: Option<Outcome>) -> String {
        use EventKind::*;
        match (self, outcome) {
            (RemovalRecorded, _) => "Removal recorded and notice given".into(),
            (ComplaintReceived, _) => "Complaint received".into(),
            (AppealLodged, _) => "Appeal lodged".into(),
            (ResponseGiven, Some(o)) => format!("The moderators answered: {}", o.meaning()),
            (ResponseGiven, None) => "The moderators answered".into(),
            (MarkedOverdue, _) => "Deadline passed without an answer".into(),
            (Escalated, _) => "Taken to the executive committee".into(),
            (DecisionRecorded, Some(o)) => {
                format!("The executive committee decided: {} (final)", o.meaning())
            }
            (DecisionRecorded, None) => "The executive committee decided (final)".into(),
            (Withdrawn, _) => "Withdrawn".into(),
            (WindowExpired, _) => "Closed when the time allowed ran out".into(),
            (InfoRequested, _) => "Moderators asked for more information; the response clock stopped".into(),
            (InfoProvided, _) => "More information given; the response clock restarted".into(),
            (InfoWindowExpired, _) => {
                "No answer to the request for information; the response clock restarted".into()
            }
            (ReminderSent, _) => "Reminder sent".into(),
            (NoteAdded, _) => "Internal note (staff only)".into(),
            (LinkReissued, _) => "Private link replaced; earlier links no longer work".into(),
        }
    }
}

/// A number of days, saying whether they are working days: "5 working days".
pub fn days(n: i32, count: DayCount) -> String {
    let unit = if n == 1 { "day" } else { "days" };
    match count {
        DayCount::Working => format!("{n} working {unit}"),
        DayCount::Calendar => format!("{n} {unit}, weekends and holidays included"),
    }
}

/// Words in text meant for a person that are the API's or the database's, not English: the
/// outcome and state names, and any word joined by an underscore. The tests of pages and emails
/// look for them.
pub fn api_words(text: &str) -> Vec<String> {
    let mut found = vec![];
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        let lower = word.to_ascii_lowercase();
        let joined = word.contains('_') && word.chars().any(|c| c.is_ascii_alphabetic());
        if joined || ["uphold", "reinstate"].contains(&lower.as_str()) {
            found.push(word.to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_and_step_has_words_without_api_names() {
        for state in CaseState::ALL {
            for outcome in std::iter::once(None).chain(Outcome::ALL.iter().copied().map(Some)) {
                for reader in [Reader::Party, Reader::Staff] {
                    let words = state.words(outcome, reader);
                    assert!(api_words(&words).is_empty(), "{state:?} {outcome:?}: {words}");
                }
            }
        }
        for event in EventKind::ALL {
            for outcome in std::iter::once(None).chain(Outcome::ALL.iter().copied().map(Some)) {
                let words = event.words(outcome);
                assert!(api_words(&words).is_empty(), "{event:?}: {words}");
            }
        }
        for o in Outcome::ALL {
            assert!(api_words(o.meaning()).is_empty() && api_words(o.choice()).is_empty());
        }
    }

    #[test]
    fn api_words_are_found() {
        assert_eq!(
            api_words("Decided: uphold. See no_action and reference_prefix."),
            ["uphold", "no_action", "reference_prefix"]
        );
        assert!(api_words("The post is to be put back, reinstated in full.").is_empty());
    }
}
