//! What every email template is given: one serialisable view of the case and the step.

use serde::Serialize;

use crate::db::{from_db_time, DbConnection};
use crate::domain::deadline::{long_date, long_date_time};
use crate::domain::{CaseState, EmailTemplate, Transition};
use crate::error::AppResult;
use crate::mail::EmailTemplates;
use crate::store::{self, CaseRow, CitedRule, Organisation};

// ---------------------------------------------------------------------------------------------
// Email context: one serialisable shape for every template.

#[derive(Serialize)]
pub(super) struct EmailContext {
    org: OrgView,
    case: CaseView,
    /// The private link, for emails to the poster or the reporter.
    link: Option<String>,
    /// The running deadline after this step.
    due: Option<DueView>,
    /// Until when a request for more information waits for its answer.
    answer_by: Option<String>,
    outcome: Option<String>,
    /// What the person who took this step wrote.
    words: Option<String>,
    /// Staff emails only: the reporter and the timeline so far.
    staff: Option<StaffView>,
}

#[derive(Serialize)]
struct OrgView {
    name: String,
    secretary_email: String,
}

#[derive(Serialize)]
struct CaseView {
    reference: String,
    kind: String,
    state: String,
    state_words: String,
    platform: String,
    content_url: String,
    content_text: String,
    author_name: String,
    explanation: String,
    rules: Vec<CitedRule>,
    opened_on: String,
}

#[derive(Serialize)]
struct DueView {
    kind: String,
    date: String,
}

#[derive(Serialize)]
struct StaffView {
    reporter_name: String,
    reporter_email: String,
    timeline: Vec<TimelineLine>,
}

#[derive(Serialize)]
struct TimelineLine {
    when: String,
    what: String,
    words: Option<String>,
}

pub fn event_words(kind: &str, outcome: Option<&str>) -> String {
    let outcome = outcome.map(|o| o.replace('_', " "));
    match (kind, outcome) {
        ("removal_recorded", _) => "Removal recorded and notice given".into(),
        ("complaint_received", _) => "Complaint received".into(),
        ("appeal_lodged", _) => "Appeal lodged".into(),
        ("response_given", Some(o)) => format!("Moderators responded: {o}"),
        ("marked_overdue", _) => "Deadline passed without an answer".into(),
        ("escalated", _) => "Escalated to the executive committee".into(),
        ("decision_recorded", Some(o)) => format!("Executive committee decided: {o}"),
        ("withdrawn", _) => "Withdrawn".into(),
        ("window_expired", _) => "Closed when the time allowed ran out".into(),
        ("info_requested", _) => "Moderators asked for more information; the response clock stopped".into(),
        ("info_provided", _) => "More information given; the response clock restarted".into(),
        ("info_window_expired", _) => {
            "No answer to the request for information; the response clock restarted".into()
        }
        ("reminder_sent", _) => "Reminder sent".into(),
        ("note_added", _) => "Internal note (staff only)".into(),
        ("link_reissued", _) => "Private link replaced; earlier links no longer work".into(),
        (other, _) => other.replace('_', " "),
    }
}

pub(super) fn email_context(
    conn: &mut DbConnection,
    org: &Organisation,
    case: &CaseRow,
    step: &Transition,
    for_staff: bool,
    link: Option<String>,
    words: Option<&str>,
) -> AppResult<EmailContext> {
    let tz = org.tz();
    let staff = if for_staff {
        let timeline = store::events_of(conn, &case.id)?
            .into_iter()
            .map(|e| TimelineLine {
                when: long_date_time(from_db_time(e.created_at), tz),
                what: event_words(&e.kind, e.outcome.as_deref()),
                words: e.body,
            })
            .collect();
        Some(StaffView {
            reporter_name: case.reporter_name.clone().unwrap_or_default(),
            reporter_email: case.reporter_email.clone().unwrap_or_default(),
            timeline,
        })
    } else {
        None
    };
    Ok(EmailContext {
        org: OrgView { name: org.name.clone(), secretary_email: org.secretary_email.clone() },
        case: CaseView {
            reference: case.reference.clone(),
            kind: case.kind.clone(),
            state: step.to.state.as_str().into(),
            state_words: step.to.state.describe().into(),
            platform: case.platform.clone(),
            content_url: case.content_url.clone(),
            content_text: case.content_text.clone(),
            author_name: case.author_name.clone().unwrap_or_default(),
            explanation: case.explanation.clone(),
            rules: case.rules(),
            opened_on: long_date(from_db_time(case.created_at), tz),
        },
        link,
        due: step.to.due.map(|d| DueView { kind: d.kind.as_str().into(), date: long_date(d.at, tz) }),
        answer_by: step.to.paused.map(|p| long_date(p.answer_by, tz)),
        outcome: step.outcome.map(|o| o.as_str().into()),
        words: words.map(str::to_string),
        staff,
    })
}

/// A sample case's email context for a template, shaped as the real ones are for it (staff
/// details only in staff emails, a link only in the parties' ones): for the snapshots, and for
/// trying every organisation's own templates at start-up.
fn sample_context(template: EmailTemplate) -> EmailContext {
    let staff = matches!(
        template,
        EmailTemplate::NewAppeal
            | EmailTemplate::NewComplaint
            | EmailTemplate::OverdueSecretary
            | EmailTemplate::CommitteeOverdue
            | EmailTemplate::EscalationReceived
            | EmailTemplate::DecisionStaff
            | EmailTemplate::WithdrawnStaff
            | EmailTemplate::InfoProvided
            | EmailTemplate::InfoNotProvided
            | EmailTemplate::ResponseReminder
            | EmailTemplate::CommitteeReminder
    );
    let complaint = matches!(template, EmailTemplate::ComplaintReceived | EmailTemplate::NewComplaint);
    EmailContext {
        org: OrgView {
            name: "Penrith & The Border CLP".into(),
            secretary_email: "secretary@penrith.example".into(),
        },
        case: CaseView {
            reference: "PEN-2026-0007".into(),
            kind: if complaint { "complaint" } else { "removal" }.into(),
            state: "appeal_lodged".into(),
            state_words: CaseState::AppealLodged.describe().into(),
            platform: "Facebook".into(),
            content_url: "https://facebook.com/penrithclp/posts/1234".into(),
            content_text: "You are all <idiots> & crooks.".into(),
            author_name: "Pat Poster".into(),
            explanation: "A personal insult aimed at other members.".into(),
            rules: vec![CitedRule {
                code: "3a".into(),
                title: "Personal attacks".into(),
                summary: "Criticise views, never people.".into(),
            }],
            opened_on: "Thursday 2 April 2026".into(),
        },
        link: (!staff).then(|| "https://redress.example/c/0123456789abcdef".into()),
        due: Some(DueView { kind: "response".into(), date: "Monday 13 April 2026".into() }),
        answer_by: (template == EmailTemplate::InfoRequest).then(|| "Friday 10 April 2026".into()),
        outcome: Some(if complaint { "no_action" } else { "uphold" }.into()),
        words: Some("The words written with this step.\n\nA second paragraph.".into()),
        staff: staff.then(|| StaffView {
            reporter_name: "Robin Reporter".into(),
            reporter_email: "robin@reporter.example".into(),
            timeline: vec![TimelineLine {
                when: "Thursday 2 April 2026 at 10:00".into(),
                what: "Removal recorded and notice given".into(),
                words: Some("A personal insult aimed at other members.".into()),
            }],
        }),
    }
}

/// Renders every email template, an organisation's own included, for a sample case, so that a
/// template that cannot render is found when the server starts rather than when a case needs
/// it. The errors, one per template that failed.
pub fn check_email_templates(emails: &EmailTemplates) -> Vec<String> {
    let mut errors = Vec::new();
    let mut slugs = vec![String::new()];
    slugs.extend(emails.organisations_with_own_templates());
    for slug in &slugs {
        for template in EmailTemplate::ALL {
            if let Err(e) = emails.render(*template, slug, &sample_context(*template)) {
                let whose = if slug.is_empty() { String::new() } else { format!(" of organisation {slug}") };
                errors.push(format!("email template {template}{whose} does not render: {e}"));
            }
        }
    }
    errors
}

#[cfg(test)]
mod email_snapshots {
    //! Every email template rendered for one sample case, subject, text and HTML, compared with
    //! the snapshots in `src/snapshots/` (review changes with `cargo insta review`, or accept
    //! them with `INSTA_UPDATE=always`).

    use super::*;

    #[test]
    fn every_email_template() {
        let templates = EmailTemplates::load(None).unwrap();
        for template in EmailTemplate::ALL {
            let rendered = templates.render(*template, "penrith", &sample_context(*template)).unwrap();
            assert!(!rendered.subject.contains('\n'));
            assert!(
                rendered.html.contains("&lt;idiots&gt;") || !rendered.text.contains("<idiots>"),
                "{template}: HTML escaped"
            );
            insta::assert_snapshot!(
                template.as_str(),
                format!(
                    "Subject: {}\n\n{}\n----- HTML -----\n{}",
                    rendered.subject, rendered.text, rendered.html
                )
            );
        }
    }

    #[test]
    fn an_organisation_may_override_a_template() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("orgs/penrith/removal_notice");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(own.join("subject.hbs"), "Notice from {{org.name}} about {{case.reference}}").unwrap();
        let everyone = dir.path().join("appeal_received");
        std::fs::create_dir_all(&everyone).unwrap();
        std::fs::write(everyone.join("subject.hbs"), "Appeal received: {{case.reference}}").unwrap();
        let templates = EmailTemplates::load(Some(dir.path())).unwrap();
        let ctx = sample_context(EmailTemplate::RemovalNotice);
        assert_eq!(
            templates.render(EmailTemplate::RemovalNotice, "penrith", &ctx).unwrap().subject,
            "Notice from Penrith & The Border CLP about PEN-2026-0007"
        );
        assert!(templates
            .render(EmailTemplate::RemovalNotice, "westend", &ctx)
            .unwrap()
            .subject
            .contains("your post was removed"));
        assert_eq!(
            templates.render(EmailTemplate::AppealReceived, "westend", &ctx).unwrap().subject,
            "Appeal received: PEN-2026-0007"
        );
        // With no HTML of its own, an email's HTML is its text in the shared layout; an
        // organisation's own HTML wins for that organisation only.
        let westend = templates.render(EmailTemplate::RemovalNotice, "westend", &ctx).unwrap();
        assert!(westend.html.contains("your post was removed"), "{}", westend.html);
        std::fs::write(own.join("html.hbs"), "<p>Our own notice about {{case.reference}}</p>").unwrap();
        let templates = EmailTemplates::load(Some(dir.path())).unwrap();
        let penrith = templates.render(EmailTemplate::RemovalNotice, "penrith", &ctx).unwrap();
        assert_eq!(penrith.html, "<p>Our own notice about PEN-2026-0007</p>");
        let westend_again = templates.render(EmailTemplate::RemovalNotice, "westend", &ctx).unwrap();
        assert_eq!(westend_again.html, westend.html);
        // A broken override is refused at start-up, not at the first email.
        std::fs::write(everyone.join("text.hbs"), "{{#if}}").unwrap();
        assert!(EmailTemplates::load(Some(dir.path())).is_err());
    }
}
