//! The confirmation a person sees after a change: a change answers with a redirect whose
//! address names what was done (`?done=response`), and the page it leads to opens with a
//! success banner (GOV.UK's notification-banner pattern). Only the fixed messages below can
//! appear, so an address made up by someone else can show nothing but one of them.

use actix_web::HttpRequest;
use serde::Serialize;

macro_rules! done {
    ($($variant:ident => $code:literal, $heading:literal, $body:literal;)+) => {
        /// A change that was made, as its redirect names it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Done { $($variant),+ }

        impl Done {
            pub const ALL: &'static [Done] = &[$(Done::$variant),+];

            pub fn code(self) -> &'static str {
                match self { $(Done::$variant => $code),+ }
            }

            fn parse(code: &str) -> Option<Done> {
                match code { $($code => Some(Done::$variant),)+ _ => None }
            }

            pub fn banner(self) -> Banner {
                match self { $(Done::$variant => Banner { heading: $heading, body: $body }),+ }
            }
        }
    };
}

done! {
    RemovalRecorded => "removal", "Removal recorded",
        "The notice with the reasons is on its way to the author.";
    ResponseSent => "response", "Response sent",
        "The person on the case has been sent your answer and your reasons.";
    DecisionRecorded => "decision", "Decision recorded",
        "Everyone on the case has been told. The decision is final and the case is closed.";
    QuestionSent => "question", "Question sent",
        "The time to respond is paused until they answer, or until the date they were given.";
    NoteAdded => "note", "Note added", "Only staff can read it.";
    LinkSent => "link", "New private link sent", "Links in earlier emails no longer work.";
    SettingsSaved => "settings", "Settings saved", "";
    ClosureChanged => "closure", "Closed days updated", "Deadlines from now on count them.";
    RuleAdded => "rule-added", "Rule added", "Moderators can cite it from now on.";
    RuleSaved => "rule-saved", "Rule saved",
        "Cases that already cite it keep the words they were sent.";
    StaffAdded => "staff-added", "Staff member added", "";
    RoleRemoved => "role-removed", "Role removed", "";
    TokenRevoked => "token-revoked", "API token revoked", "Anything using it is refused from now on.";
    StatementSaved => "statement", "Accessibility statement saved",
        "The public page shows it from now on.";
    PublicNoteSaved => "public-note", "Public note saved",
        "Case pages offer it in these words from now on.";
    ReasonSaved => "reason", "Saved reason saved", "Forms for its step offer it from now on.";
    ReasonRemoved => "reason-removed", "Saved reason removed", "";
    SignedOut => "signed-out", "You have signed out", "";
    SetUp => "set-up", "Redress is set up",
        "Sign in with the email address and password you chose.";
}

/// What the banner says.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Banner {
    pub heading: &'static str,
    pub body: &'static str,
}

impl Done {
    /// The change named by the request's address, if any.
    pub fn of(req: &HttpRequest) -> Option<Done> {
        req.query_string().split('&').find_map(|pair| pair.strip_prefix("done=")).and_then(Done::parse)
    }

    /// `path` with this change named, for the redirect after it.
    pub fn at(self, path: &str) -> String {
        let join = if path.contains('?') { '&' } else { '?' };
        format!("{path}{join}done={}", self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_reads_back_from_its_address() {
        for done in Done::ALL {
            let req = actix_web::test::TestRequest::get().uri(&done.at("/staff/cases/X-1")).to_http_request();
            assert_eq!(Done::of(&req), Some(*done));
            assert!(!done.banner().heading.is_empty());
        }
        let req = actix_web::test::TestRequest::get().uri("/staff?done=%3Cscript%3E").to_http_request();
        assert_eq!(Done::of(&req), None);
    }
}
