//! The staff case page and the steps taken from it.

use super::session::Staff;
use super::AppState;
use crate::db::{self, from_db_time, DbConnection};
use crate::domain::deadline::{long_date, long_date_time, relative};
use crate::domain::{self, Action, Actor, CaseKind, Outcome, Reader, Role};
use crate::error::{AppError, FieldErrors};
use crate::services::{self};
use crate::store::{self, CaseRow, UserId};
use crate::validate;
use crate::web::banner::Done;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

use super::*;

// ---------------------------------------------------------------------------------------------
// The case page.

/// Everything about one case that staff may see, ready for a template.
#[derive(Serialize)]
pub(super) struct CaseView {
    case: CaseFacts,
    timeline: Vec<TimelineEntry>,
    respond_outcomes: Vec<OutcomeOption>,
    decide_outcomes: Vec<OutcomeOption>,
    can_request_info: bool,
    paused: Option<PausedView>,
    can_respond: bool,
    can_decide: bool,
    /// The organisation's saved reasons for the response and for the decision, when offered.
    respond_reasons: Vec<crate::web::reasons::ReasonOption>,
    decide_reasons: Vec<crate::web::reasons::ReasonOption>,
    separation_warning: bool,
    can_reissue_link: bool,
    party_email: Option<String>,
}

#[derive(Serialize)]
struct CaseFacts {
    reference: String,
    kind: String,
    is_removal: bool,
    state: String,
    state_words: String,
    #[serde(rename = "final")]
    is_final: bool,
    overdue: bool,
    due_date: Option<String>,
    due_relative: Option<String>,
    due_kind: Option<&'static str>,
    platform: String,
    content_url: String,
    content_text: String,
    author_name: Option<String>,
    author_email: Option<String>,
    notice_method: Option<String>,
    reporter_name: Option<String>,
    reporter_email: Option<String>,
    explanation: String,
    rules: Vec<store::CitedRule>,
    outcome: Option<String>,
    opened: String,
    appeal: Option<String>,
    response: Option<String>,
    written_case: Option<String>,
}

#[derive(Serialize)]
struct TimelineEntry {
    what: String,
    when: String,
    who: String,
    words: Option<String>,
    emails: Vec<EmailLine>,
}

/// An email a step sent (or is sending), as staff see it in the case's history.
#[derive(Serialize)]
struct EmailLine {
    to: String,
    recipient_kind: String,
    template: String,
    subject: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    body: String,
    queued: String,
    sent: Option<String>,
}

#[derive(Serialize)]
struct OutcomeOption {
    value: &'static str,
    label: &'static str,
}

#[derive(Serialize)]
struct PausedView {
    answer_by: String,
    days_left: Option<i32>,
}

/// The case page: the case, and the form sent from it when it is shown again.
#[derive(Serialize)]
struct CasePageView<'a> {
    #[serde(flatten)]
    view: CaseView,
    form: &'a str,
    values: StepValues,
    max_words: usize,
    /// For a removal: the note to post where the comment was.
    public_note: Option<String>,
    #[serde(flatten)]
    errors: Value,
}

/// What the case page's forms held.
#[derive(Serialize)]
struct StepValues {
    outcome: String,
    reasons: String,
    question: String,
    note: String,
}

/// `with_reasons`: read the saved reasons its forms offer (a page of many cases reads them once
/// for all).
pub(super) fn case_view(
    conn: &mut DbConnection,
    session: &StaffSession,
    case: &CaseRow,
    with_reasons: bool,
) -> Result<CaseView, AppError> {
    let org = org_of(session);
    let tz = org.tz();
    let now = Utc::now();
    let status = services::status_of(case)?;
    let events = store::events_of(conn, &case.id)?;
    let emails = store::emails_of(conn, &case.id)?;
    let mut timeline = Vec::new();
    for e in &events {
        let who = match (&e.actor_user_id, e.actor_kind.as_str()) {
            (Some(id), _) => {
                let mut name =
                    |id: &UserId| store::user_by_id(conn, id).map(|u| u.map(|u| u.name).unwrap_or_default());
                let holder = format!("{} ({})", name(id)?, e.actor_role.clone().unwrap_or_default());
                match &e.token_issued_by {
                    Some(issuer) => format!("{holder}, through an API token issued by {}", name(issuer)?),
                    None => holder,
                }
            }
            (None, "system") => "Redress (deadline)".into(),
            (None, kind) => kind.to_string(),
        };
        let mails = emails
            .iter()
            .filter(|m| m.event_id.as_deref() == Some(e.id.as_str()))
            .map(|m| EmailLine {
                to: m.to_address.clone(),
                recipient_kind: m.recipient_kind.clone(),
                template: m.template.clone(),
                subject: m.subject.clone(),
                status: m.status.clone(),
                attempts: m.attempts,
                last_error: m.last_error.clone(),
                body: m.body_text.clone(),
                queued: long_date_time(from_db_time(m.created_at), tz),
                sent: m.sent_at.map(|t| long_date_time(from_db_time(t), tz)),
            })
            .collect();
        timeline.push(TimelineEntry {
            what: services::event_words(&e.kind, e.outcome.as_deref()),
            when: long_date_time(from_db_time(e.created_at), tz),
            who,
            words: e.body.clone(),
            emails: mails,
        });
    }
    let last_words = |kind: &str| events.iter().rev().find(|e| e.kind == kind).and_then(|e| e.body.clone());
    let staff = session.staff();
    let schedule = services::schedule_of(conn, org)?;
    let may = |action: Action| {
        let actor = staff.roles.iter().map(|r| Actor::Staff(*r)).find(|a| action.permitted(status.kind, *a));
        actor.is_some_and(|a| domain::transition(&status, action, a, now, &schedule).is_ok())
    };
    let (respond_outcomes, decide_outcomes): (Vec<Outcome>, Vec<Outcome>) = {
        let fits: Vec<Outcome> = Outcome::ALL.iter().copied().filter(|o| o.fits(status.kind)).collect();
        (
            fits.iter().copied().filter(|o| may(Action::Respond(*o))).collect(),
            fits.iter().copied().filter(|o| may(Action::Decide(*o))).collect(),
        )
    };
    let outcome_options = |list: &[Outcome]| -> Vec<OutcomeOption> {
        list.iter().map(|o| OutcomeOption { value: o.as_str(), label: o.choice() }).collect()
    };
    // The separation rule: whoever recorded a removal should not judge its appeal when another
    // moderator could.
    let mut separation_warning = false;
    if !respond_outcomes.is_empty() && case.recorded_by.as_deref() == Some(session.user.id.as_str()) {
        let moderators = store::emails_with_role(conn, &org.id, Role::Moderator.as_str())?;
        separation_warning = moderators.iter().any(|m| *m != session.user.email);
    }
    // Saved reasons are read only for a form the page offers.
    let saved = |conn: &mut DbConnection, offered: bool, step| -> Result<Vec<_>, AppError> {
        if !offered || !with_reasons {
            return Ok(vec![]);
        }
        let list = services::reasons::reasons_for(conn, org, step, &[])?;
        Ok(list.into_iter().map(crate::web::reasons::ReasonOption::from).collect())
    };
    let respond_reasons =
        saved(conn, !respond_outcomes.is_empty(), services::reasons::answer_step(status.kind))?;
    let decide_reasons = saved(conn, !decide_outcomes.is_empty(), crate::domain::ReasonStep::Decision)?;
    let due = case.due_at.map(from_db_time);
    let can_reissue_link = [Role::Moderator, Role::Secretary, Role::Admin].iter().any(|r| session.has(*r));
    let party_email =
        if status.kind == CaseKind::Removal { &case.author_email } else { &case.reporter_email };
    Ok(CaseView {
        case: CaseFacts {
            reference: case.reference.clone(),
            kind: case.kind.clone(),
            is_removal: status.kind == CaseKind::Removal,
            state: case.state.clone(),
            state_words: status.state.words(case.outcome.as_deref().and_then(Outcome::parse), Reader::Staff),
            is_final: status.state.is_final(),
            overdue: case.overdue || due.is_some_and(|d| now > d),
            due_date: due.map(|d| long_date(d, tz)),
            due_relative: due.map(|d| relative(d, now, tz)),
            due_kind: status.due.map(|d| d.kind.words()),
            platform: case.platform.clone(),
            content_url: case.content_url.clone(),
            content_text: case.content_text.clone(),
            author_name: case.author_name.clone(),
            author_email: case.author_email.clone(),
            notice_method: case.notice_method.clone(),
            reporter_name: case.reporter_name.clone(),
            reporter_email: case.reporter_email.clone(),
            explanation: case.explanation.clone(),
            rules: case.rules(),
            outcome: case.outcome.as_deref().and_then(Outcome::parse).map(|o| o.meaning().to_string()),
            opened: long_date_time(from_db_time(case.created_at), tz),
            appeal: last_words("appeal_lodged"),
            response: last_words("response_given"),
            written_case: last_words("escalated"),
        },
        timeline,
        respond_outcomes: outcome_options(&respond_outcomes),
        decide_outcomes: outcome_options(&decide_outcomes),
        can_request_info: may(Action::RequestInfo),
        paused: case.info_due_at.map(|t| PausedView {
            answer_by: long_date(from_db_time(t), tz),
            days_left: case.paused_days_left,
        }),
        can_respond: !respond_outcomes.is_empty(),
        can_decide: !decide_outcomes.is_empty(),
        respond_reasons,
        decide_reasons,
        separation_warning,
        can_reissue_link,
        party_email: party_email.clone(),
    })
}

fn render_case(
    state: &AppState,
    session: &StaffSession,
    status: StatusCode,
    view: CaseView,
    form: &str,
    values: &HashMap<String, String>,
    errors: &FieldErrors,
) -> HttpResponse {
    let value = |k: &str| values.get(k).cloned().unwrap_or_default();
    let title = if errors.is_empty() {
        format!("Case {}", view.case.reference)
    } else {
        format!("Error: Case {}", view.case.reference)
    };
    let labels = [
        ("outcome", "The outcome"),
        ("reasons", "The reasons"),
        ("question", "The question"),
        ("note", "The note"),
        ("confirm", "Are you sure?"),
        ("reason_id", "The saved reason"),
    ];
    let codes: Vec<&str> = view.case.rules.iter().map(|r| r.code.as_str()).collect();
    let public_note = view
        .case
        .is_removal
        .then(|| services::procedure::public_note(session.org(), &codes, &state.services.base_url));
    let page = CasePageView {
        public_note,
        view,
        form,
        values: StepValues {
            outcome: value("outcome"),
            reasons: value("reasons"),
            question: value("question"),
            note: value("note"),
        },
        max_words: validate::WORDS_MAX,
        errors: form_errors(errors, &labels),
    };
    staff_page_after(state, session, session.done, status, "staff/case", &title, page)
}

pub(super) async fn case_page(
    state: web::Data<AppState>,
    Staff(session): Staff,
    path: web::Path<String>,
) -> HttpResponse {
    let reference = path.into_inner();
    let s = session.clone();
    let result = db::run(&state.pool, move |conn| {
        let case = services::find_case(conn, org_of(&s), &reference)?;
        case_view(conn, &s, &case, true)
    })
    .await;
    match result {
        Ok(view) => {
            render_case(&state, &session, StatusCode::OK, view, "", &HashMap::new(), &FieldErrors::new())
        }
        Err(e) => staff_error(&state, &session, e),
    }
}

/// The steps taken from the case page's forms.
#[derive(Debug, Clone, Copy)]
pub(super) enum Step {
    Respond,
    Decide,
    RequestInfo,
    Note,
}

impl Step {
    /// The form the step was sent from, drawn again with its errors when refused.
    fn form(self) -> &'static str {
        match self {
            Step::Respond => "response",
            Step::Decide => "decision",
            Step::RequestInfo => "question",
            Step::Note => "note",
        }
    }
}

/// One step from the case page: checks the CSRF token, takes the step through the same
/// services as the API, and finishes as every case step does.
async fn case_step(
    state: web::Data<AppState>,
    session: StaffSession,
    reference: String,
    form: HashMap<String, String>,
    step: Step,
) -> HttpResponse {
    if let Err(e) = session.check_csrf(form.get("csrf").map(String::as_str)) {
        return staff_error(&state, &session, e);
    }
    let staff = session.staff();
    let svc = state.services.clone();
    let (r, f) = (reference.clone(), form.clone());
    let result = db::run(&state.pool, move |conn| {
        let field = |k: &str| f.get(k).map(String::as_str);
        let now = Utc::now();
        let (outcome, reasons, saved) = (field("outcome"), field("reasons"), field("reason_id"));
        match step {
            Step::Respond => {
                services::staff_act(conn, &svc, &staff, &r, Action::Respond, outcome, reasons, saved, now)
            }
            Step::Decide => {
                services::staff_act(conn, &svc, &staff, &r, Action::Decide, outcome, reasons, saved, now)
            }
            Step::RequestInfo => services::request_info(conn, &svc, &staff, &r, field("question"), now),
            Step::Note => {
                services::add_note(conn, &svc, &staff, &r, field("note"), now)?;
                services::find_case(conn, &staff.org, &r)
            }
        }
    })
    .await;
    finish_case_step(&state, &session, reference, step.form(), &form, result).await
}

/// The route handlers of the case page's forms: each takes its own `Step`.
macro_rules! step_handlers {
    ($($name:ident => $step:expr),* $(,)?) => {$(
        pub(super) async fn $name(
            state: web::Data<AppState>,
            Staff(session): Staff,
            path: web::Path<String>,
            form: web::Form<HashMap<String, String>>,
        ) -> HttpResponse {
            case_step(state, session, path.into_inner(), form.into_inner(), $step).await
        }
    )*};
}

step_handlers! {
    respond => Step::Respond,
    decide => Step::Decide,
    request_info => Step::RequestInfo,
    add_note => Step::Note,
}

/// Revokes the case's private links and sends a new one; with no address to send it to, shows
/// it once for staff to hand over.
pub(super) async fn reissue_link(
    state: web::Data<AppState>,
    Staff(session): Staff,
    path: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if let Err(e) = session.check_csrf(form.get("csrf").map(String::as_str)) {
        return staff_error(&state, &session, e);
    }
    let reference = path.into_inner();
    // Every link the party holds stops working: asked for once more, on the page itself.
    if form.get("confirm").map(String::as_str) != Some("yes") {
        let refused = Err(AppError::field(
            "confirm",
            "Tick the box to confirm that the links sent so far should stop working",
        ));
        return finish_case_step(&state, &session, reference, "link", &form, refused).await;
    }
    let staff = session.staff();
    let svc = state.services.clone();
    let result =
        db::run(&state.pool, move |conn| services::reissue_link(conn, &svc, &staff, &reference, Utc::now()))
            .await;
    match result {
        Ok(done) => {
            state.outbox_wake.notify_one();
            match done.link_to_hand_over {
                Some(link) => staff_page(
                    &state,
                    &session,
                    StatusCode::OK,
                    "staff/link_once",
                    "New private link",
                    LinkOnceView { reference: &done.case.reference, link: &link, reissued: true },
                ),
                None => see_other(&Done::LinkSent.at(&format!("/staff/cases/{}", done.case.reference))),
            }
        }
        Err(e) => staff_error(&state, &session, e),
    }
}

/// After a step on the case page: to the case on success, the form again with its errors and
/// answers when the input was refused, an error page otherwise.
async fn finish_case_step(
    state: &AppState,
    session: &StaffSession,
    reference: String,
    form_name: &str,
    form: &HashMap<String, String>,
    result: Result<CaseRow, AppError>,
) -> HttpResponse {
    match result {
        Ok(case) => {
            state.outbox_wake.notify_one();
            let done = match form_name {
                "response" => Done::ResponseSent,
                "decision" => Done::DecisionRecorded,
                "question" => Done::QuestionSent,
                _ => Done::NoteAdded,
            };
            see_other(&done.at(&format!("/staff/cases/{}", case.reference)))
        }
        Err(AppError::Validation(errors)) => {
            let s = session.clone();
            let view = db::run(&state.pool, move |conn| {
                let case = services::find_case(conn, org_of(&s), &reference)?;
                case_view(conn, &s, &case, true)
            })
            .await;
            match view {
                Ok(view) => render_case(
                    state,
                    session,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    view,
                    form_name,
                    form,
                    &errors,
                ),
                Err(e) => staff_error(state, session, e),
            }
        }
        Err(e) => {
            tracing::warn!(event = "action_refused", actor = %session.user.id, error = %e.kind(), "case action refused");
            staff_error(state, session, e)
        }
    }
}
