//! What every email template is given: one serialisable view of the case and the step.

use serde::Serialize;

use crate::db::{from_db_time, DbConnection};
use crate::domain::deadline::{long_date, long_date_time};
use crate::domain::{CaseState, DayCount, EmailTemplate, EventKind, Outcome, Reader, Transition};
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
    /// The outcome's API name, kept for organisations' own templates written against it.
    outcome: Option<String>,
    /// What the outcome means, in words: "the post stays removed".
    outcome_words: Option<String>,
    /// The same in a few words, for a subject line: "removal stands".
    outcome_short: Option<String>,
    /// Staff emails only: the case's page.
    case_page: Option<String>,
    /// What the person who took this step wrote.
    words: Option<String>,
    /// Staff emails only: the reporter and the timeline so far.
    staff: Option<StaffView>,
}

#[derive(Serialize)]
struct OrgView {
    name: String,
    secretary_email: String,
    /// How long the moderators have to answer: "5 working days".
    response_time: String,
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
    let outcome = outcome.and_then(Outcome::parse);
    match EventKind::parse(kind) {
        Some(event) => event.words(outcome),
        None => kind.replace('_', " "),
    }
}

pub(super) fn email_context(
    conn: &mut DbConnection,
    org: &Organisation,
    case: &CaseRow,
    step: &Transition,
    case_page: Option<String>,
    link: Option<String>,
    words: Option<&str>,
) -> AppResult<EmailContext> {
    let tz = org.tz();
    let reader = if case_page.is_some() { Reader::Staff } else { Reader::Party };
    let staff = if case_page.is_some() {
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
        org: OrgView {
            name: org.name.clone(),
            secretary_email: org.secretary_email.clone(),
            response_time: crate::domain::words::days(
                org.response_days,
                DayCount::parse(&org.response_count).unwrap_or(DayCount::Calendar),
            ),
        },
        case: CaseView {
            reference: case.reference.clone(),
            kind: case.kind.clone(),
            state: step.to.state.as_str().into(),
            state_words: step.to.state.words(step.outcome, reader),
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
        outcome_words: step.outcome.map(|o| o.meaning().into()),
        outcome_short: step.outcome.map(|o| o.short().into()),
        case_page,
        words: words.map(str::to_string),
        staff,
    })
}

/// A sample case's email context for a template, shaped as the real ones are for it (staff
/// details only in staff emails, a link only in the parties' ones): for the snapshots, and for
/// trying every organisation's own templates at start-up.
fn sample_context(template: EmailTemplate) -> EmailContext {
    let complaint = matches!(template, EmailTemplate::ComplaintReceived | EmailTemplate::NewComplaint);
    sample_with(template, complaint, if complaint { Outcome::NoAction } else { Outcome::Uphold })
}

/// A sample case's email context, of a removal or a complaint, answered with `outcome`.
fn sample_with(template: EmailTemplate, complaint: bool, outcome: Outcome) -> EmailContext {
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
    let reader = if staff { Reader::Staff } else { Reader::Party };
    let state = match template {
        EmailTemplate::Decision | EmailTemplate::DecisionStaff => CaseState::Decided,
        _ if complaint => CaseState::ComplaintReceived,
        _ => CaseState::AppealLodged,
    };
    EmailContext {
        org: OrgView {
            name: "Penrith & The Border CLP".into(),
            secretary_email: "secretary@penrith.example".into(),
            response_time: "5 working days".into(),
        },
        case: CaseView {
            reference: "PEN-2026-0007".into(),
            kind: if complaint { "complaint" } else { "removal" }.into(),
            state: state.as_str().into(),
            state_words: state.words(Some(outcome), reader),
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
        outcome: Some(outcome.as_str().into()),
        outcome_words: Some(outcome.meaning().into()),
        outcome_short: Some(outcome.short().into()),
        case_page: staff.then(|| "https://redress.example/staff/cases/PEN-2026-0007".into()),
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

    /// Every email, for a removal and a complaint and each outcome that answers it, in words
    /// a person reads: no outcome or state name of the API, no word joined by an underscore.
    #[test]
    fn no_email_speaks_the_api() {
        let templates = EmailTemplates::load(None).unwrap();
        let strip_tags = |html: &str| {
            let mut out = String::new();
            let mut in_tag = false;
            for c in html.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => out.push(c),
                    _ => {}
                }
            }
            out
        };
        for template in EmailTemplate::ALL {
            for complaint in [false, true] {
                let outcomes = if complaint {
                    [Outcome::Remove, Outcome::NoAction]
                } else {
                    [Outcome::Reinstate, Outcome::Uphold]
                };
                for outcome in outcomes {
                    let context = sample_with(*template, complaint, outcome);
                    let rendered = templates.render(*template, "penrith", &context).unwrap();
                    for (part, text) in [
                        ("subject", rendered.subject.clone()),
                        ("text", rendered.text.clone()),
                        ("html", strip_tags(&rendered.html)),
                    ] {
                        let found = crate::domain::words::api_words(&text);
                        assert!(found.is_empty(), "{template} ({outcome:?}) {part}: {found:?} in\n{text}");
                    }
                }
            }
        }
    }

    /// The HTML part works as an email: web addresses are links, "Heading:" lines are headings,
    /// "- " and "* " lines are lists, and the button to the case page comes before the
    /// signature.
    #[test]
    fn the_html_part_has_links_headings_lists_and_the_button_before_the_signature() {
        let templates = EmailTemplates::load(None).unwrap();
        let notice = templates
            .render(EmailTemplate::RemovalNotice, "penrith", &sample_context(EmailTemplate::RemovalNotice))
            .unwrap()
            .html;
        assert!(notice.contains(">The part of our policy it breaks</h2>"), "{notice}");
        assert!(notice.contains("<li>3a Personal attacks: Criticise views, never people.</li>"), "{notice}");
        assert!(notice.contains("<a href=\"https://redress.example/c/0123456789abcdef\""), "{notice}");
        let (button, signature) =
            (notice.find("Open your case page").unwrap(), notice.find("To reach us").unwrap());
        assert!(button < signature, "the button comes before the signature");
        let staff = templates
            .render(
                EmailTemplate::EscalationReceived,
                "penrith",
                &sample_context(EmailTemplate::EscalationReceived),
            )
            .unwrap();
        assert!(staff.text.contains("The case page: https://redress.example/staff/cases/PEN-2026-0007"));
        assert!(staff.html.contains(">Open the case page</a>"));
        assert!(
            staff.html.contains(">The record so far</h2>") && staff.html.contains("<ul"),
            "{}",
            staff.html
        );
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
