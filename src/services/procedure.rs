//! What an organisation tells the public about its procedure and its pages: the procedure in
//! plain words with the deadlines of its own settings, its accessibility statement (its own,
//! or the model one filled in), and what its admin has still to do before the public can use
//! it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::{from_db_time, write_tx, DbConnection};
use crate::domain::deadline::long_date;
use crate::domain::words::days;
use crate::domain::DayCount;
use crate::error::AppResult;
use crate::store::{self, Organisation};
use crate::validate::{self, Checker};

use super::{log_change, ChangedBy, OrgChange};

/// The procedure's stages, each with its time limit in words.
#[derive(Debug, Serialize)]
pub struct Procedure {
    pub appeal_window: String,
    pub response_time: String,
    pub escalation_window: String,
    pub committee_target: String,
    pub info_answer: String,
    /// Whether any time limit counts working days, which the page then explains.
    pub counts_working_days: bool,
}

fn count(text: &str) -> DayCount {
    DayCount::parse(text).unwrap_or(DayCount::Calendar)
}

pub fn procedure(org: &Organisation) -> Procedure {
    let counts = [
        &org.appeal_window_count,
        &org.response_count,
        &org.escalation_window_count,
        &org.committee_target_count,
    ];
    Procedure {
        appeal_window: days(org.appeal_window_days, count(&org.appeal_window_count)),
        response_time: days(org.response_days, count(&org.response_count)),
        escalation_window: days(org.escalation_window_days, count(&org.escalation_window_count)),
        committee_target: days(org.committee_target_days, count(&org.committee_target_count)),
        info_answer: days(org.info_answer_days, DayCount::Calendar),
        counts_working_days: counts.iter().any(|c| count(c) == DayCount::Working),
    }
}

/// The organisation's accessibility statement: the one its admin wrote, or the model.
pub fn accessibility_statement(org: &Organisation, base_url: &str) -> String {
    OrgText::Statement.current(org, base_url)
}

/// Redress's model statement, in the shape of GOV.UK's, filled in with what Redress knows of
/// the organisation. The parts only the organisation can know are marked for it to complete.
pub fn model_statement(org: &Organisation, base_url: &str) -> String {
    let name = &org.name;
    let secretary = &org.secretary_email;
    let since = long_date(from_db_time(org.created_at), org.tz());
    format!(
        "This statement covers the pages {name} uses for complaints and appeals about its social media: the complaint form, the page of the procedure, and the private case pages at {base_url}.

{name} runs these pages with Redress. We want as many people as possible to be able to use them. You should be able to:
- make the text larger, up to 300%, without it spilling off the screen
- use the pages on a screen as narrow as 320 pixels without scrolling sideways
- move through every page and form using only a keyboard
- use the pages with a screen reader or speech recognition software
- understand every page and email without knowing our internal terms

How accessible these pages are
We test every page with two automated accessibility checkers and by hand, at widths from 320 pixels to a wide screen. We know of no part of these pages that does not meet the Web Content Accessibility Guidelines (WCAG) version 2.1 at level AA. [Say here if you know of any.]

If you need something in a different format
If you need the information on these pages in another format, such as large print, easy read, an audio recording or braille, or you would rather write to us on paper, email {secretary}. We will reply within [number] working days and, where we can, give you the same time to take each step of the procedure.

Reporting problems with these pages
If you find a problem that is not listed here, or think we are not meeting the requirements, email {secretary} and tell us the address of the page and what went wrong.

[If {name} is a public body: name the enforcement body here, for example the Equality and Human Rights Commission, and the advisory service people may contact if they are not happy with our reply.]

Preparing this statement
This statement was first prepared on {since}. [Give the date of the last review.]"
    )
}

/// A text an organisation writes for the public, with Redress's model until it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgText {
    /// The accessibility statement of its public pages.
    Statement,
    /// The note a moderator leaves where a comment was removed.
    PublicNote,
}

/// The model public note. `{rules}` becomes the rules a case cites ("rule 3a"), `{procedure}`
/// the address of the organisation's procedure page.
pub const MODEL_NOTE: &str =
    "A comment here was removed because it broke {rules} of our social media policy. How we moderate comments, and how to appeal: {procedure}";

impl OrgText {
    fn max(self) -> usize {
        match self {
            OrgText::Statement => validate::TEXT_MAX,
            OrgText::PublicNote => 1_000,
        }
    }

    /// The organisation's own wording, if it has one.
    pub fn own(self, org: &Organisation) -> Option<&str> {
        match self {
            OrgText::Statement => org.accessibility_statement.as_deref(),
            OrgText::PublicNote => org.public_note.as_deref(),
        }
    }

    /// What the organisation's admin edits: its own wording, or the model.
    pub fn current(self, org: &Organisation, base_url: &str) -> String {
        match (self.own(org), self) {
            (Some(own), _) => own.to_string(),
            (None, OrgText::Statement) => model_statement(org, base_url),
            (None, OrgText::PublicNote) => MODEL_NOTE.to_string(),
        }
    }
}

/// Keeps the organisation's own wording of `kind`; an empty one puts the model back.
pub fn set_org_text(
    conn: &mut DbConnection,
    org: &Organisation,
    kind: OrgText,
    text: &str,
    by: ChangedBy,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let mut c = Checker::new();
    let text = c.optional("text", Some(text), kind.max());
    c.finish()?;
    let text = text.filter(|t| !t.trim().is_empty());
    write_tx(conn, |conn| {
        let change = match kind {
            OrgText::Statement => {
                store::set_accessibility_statement(conn, &org.id, text.as_deref())?;
                OrgChange::StatementChanged
            }
            OrgText::PublicNote => {
                store::set_public_note(conn, &org.id, text.as_deref())?;
                OrgChange::PublicNoteChanged
            }
        };
        let what = if text.is_some() { "their own words" } else { "the model" };
        log_change(conn, &org.id, by, change, what, None, now)
    })
}

/// The public note for a removal, filled in: the rules it cites and the procedure's address.
pub fn public_note(org: &Organisation, codes: &[&str], base_url: &str) -> String {
    let rules = match codes {
        [] => "our rules".to_string(),
        [one] => format!("rule {one}"),
        [init @ .., last] => format!("rules {} and {last}", init.join(", ")),
    };
    let template = OrgText::PublicNote.own(org).unwrap_or(MODEL_NOTE);
    template.replace("{rules}", &rules).replace("{procedure}", &format!("{base_url}/o/{}", org.slug))
}

/// One thing an admin has to do before the organisation is ready for the public.
#[derive(Debug, Serialize)]
pub struct SetupTask {
    pub words: &'static str,
    pub href: String,
    pub done: bool,
}

/// What is left to set up, in order; none once all of it is done.
pub fn setup_tasks(conn: &mut DbConnection, org: &Organisation) -> AppResult<Option<Vec<SetupTask>>> {
    let (rules, moderators, cases) = store::setup_progress(conn, &org.id)?;
    let tasks = vec![
        SetupTask {
            words: "Add the rules of your social media policy",
            href: "/staff/admin/rules".into(),
            done: rules,
        },
        SetupTask {
            words: "Add the moderators who answer appeals and complaints",
            href: "/staff/admin/users".into(),
            done: moderators,
        },
        SetupTask {
            words: "Check the secretary's email address, where escalations go",
            href: "/staff/admin".into(),
            done: !org.secretary_email.trim().is_empty(),
        },
        SetupTask {
            words: "Share the address of your procedure and complaint form",
            href: format!("/o/{}", org.slug),
            done: cases,
        },
    ];
    Ok((!tasks.iter().all(|t| t.done)).then_some(tasks))
}
