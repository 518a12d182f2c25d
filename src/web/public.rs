//! Pages for the public, who have no account: the private case page behind a link, and the
//! complaint form.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{form_errors, page_error, AppState};
use crate::db::{self, from_db_time};
use crate::domain::deadline::{long_date, long_date_time};
use crate::domain::{self, Action, Actor, CaseKind, CaseState, DueKind, EventKind, Outcome, Reader};
use crate::error::{AppError, FieldErrors};
use crate::services::{self, ActorRef, ComplaintInput};
use crate::store::{self, CaseRow, CitedRule, Organisation};
use crate::validate;

routes! {
    get "/" => home,
    get "/c/{token}" => case_page,
    post "/c/{token}/appeal" => appeal,
    post "/c/{token}/escalate" => escalate,
    post "/c/{token}/withdraw" => withdraw,
    post "/c/{token}/information" => information,
    get "/o/{slug}/report" => report_form,
    post "/o/{slug}/report" => report_submit,
}

async fn home(state: web::Data<AppState>) -> HttpResponse {
    state.pages.render_response(StatusCode::OK, "home", &TitleOnly { title: "Redress" })
}

/// A page that needs only its title.
#[derive(Serialize)]
struct TitleOnly {
    title: &'static str,
}

/// The page after a complaint is made: its reference, when it will be answered, and the
/// reporter's private link.
#[derive(Serialize)]
struct ReportDoneView<'a> {
    title: &'static str,
    org_name: &'a str,
    reference: &'a str,
    due: &'a str,
    due_kind: &'static str,
    link: Option<&'a str>,
}

#[derive(Serialize)]
struct TimelineItem {
    when: String,
    what: String,
    words: Option<String>,
}

#[derive(Serialize)]
struct CasePage {
    title: String,
    org_name: String,
    secretary_email: String,
    reference: String,
    kind: String,
    is_removal: bool,
    status: String,
    next: String,
    /// Who answered and their reasons, once the moderators or the committee have.
    reasons_label: Option<&'static str>,
    reasons: Option<String>,
    /// When the moderators would have to answer an appeal lodged now.
    appeal_answer_by: Option<String>,
    /// When the committee would aim to decide a case taken to it now.
    committee_by: Option<String>,
    platform: String,
    content_url: String,
    content_text: String,
    explanation_label: String,
    explanation: String,
    rules: Vec<CitedRule>,
    timeline: Vec<TimelineItem>,
    token: String,
    can_appeal: bool,
    can_escalate: bool,
    can_withdraw: bool,
    can_provide_info: bool,
    question: Option<String>,
    errors: serde_json::Value,
    error_list: serde_json::Value,
    values: FormValues,
    max_words: usize,
}

#[derive(Serialize, Deserialize, Default, Clone)]
#[serde(default)]
struct FormValues {
    appeal: String,
    case_for_committee: String,
    reason: String,
    information: String,
}

/// What happens next, in plain words, with the date it hangs on, spoken to the person whose
/// case it is.
fn next_step(case: &CaseRow, org: &Organisation, party: Actor) -> String {
    let due = case.due_at.map(|t| long_date(from_db_time(t), org.tz())).unwrap_or_default();
    let state = CaseState::parse(&case.state).unwrap_or(CaseState::Closed);
    let outcome = case.outcome.as_deref().and_then(Outcome::parse);
    let meaning = outcome.map_or("they have answered", Outcome::meaning);
    let you_may_escalate =
        "You may now put your case in writing to the executive committee, using the form below.";
    if let Some(by) = case.info_due_at {
        return format!(
            "The moderators have asked you for more information: their question is below. Please answer by the end of {}. Their time to respond is paused until you do; if you do not answer by then, they will carry on without it.",
            long_date(from_db_time(by), org.tz())
        );
    }
    match (state, case.overdue) {
        (CaseState::NoticeSent, _) => format!("You may appeal against the removal until the end of {due}. If you do not, the case will close."),
        (CaseState::AppealLodged | CaseState::ComplaintReceived, false) => {
            format!("The moderators will answer by the end of {due}.")
        }
        (CaseState::AppealLodged | CaseState::ComplaintReceived, true) => {
            format!("The moderators did not answer by the end of {due}. {you_may_escalate}")
        }
        (CaseState::AppealRejected | CaseState::ContentRemoved | CaseState::NoAction, _) => format!(
            "The moderators decided that {meaning}. If you are not satisfied, you may take the case to the executive committee until the end of {due}. After that the case will close."
        ),
        (CaseState::Escalated, _) => format!(
            "Your case is with the executive committee. The secretary passes it on, and the committee aims to decide by the end of {due}. Its decision will be final."
        ),
        (CaseState::Reinstated, _) => "Your appeal was accepted: your post is to be put back. The case is closed.".into(),
        (CaseState::Decided, _) => format!(
            "The executive committee decided that {meaning}. Its decision is final, and the case is closed."
        ),
        (CaseState::Withdrawn, _) => {
            let who = if party == Actor::Poster { "appeal" } else { "complaint" };
            format!("You withdrew your {who}. The case is closed.")
        }
        (CaseState::ClosedNoAppeal, _) => "No appeal was made in time, so the case is closed.".into(),
        (CaseState::Closed, _) => "The time to take the case to the executive committee ran out, so the case is closed.".into(),
    }
}

/// The case behind a private link, and who holds it, named in the request's log line.
fn case_for_link(conn: &mut crate::db::DbConnection, secret: &str) -> Result<(CaseRow, Actor), AppError> {
    let (case, party) = services::case_for_link(conn, secret)?;
    super::edge::record_actor(party.kind_str());
    super::edge::record_case(&case.reference);
    Ok((case, party))
}

/// Builds the private page. Only what the party may see: no staff names, no other party's
/// identity or contact details, no internal notes.
fn build_page(
    conn: &mut crate::db::DbConnection,
    token: &str,
    errors: FieldErrors,
    values: FormValues,
) -> Result<CasePage, AppError> {
    let mut form = form_errors(
        &errors,
        &[
            ("information", "Your answer"),
            ("appeal", "Your appeal"),
            ("case_for_committee", "Your case"),
            ("reason", "Your reason"),
            ("confirm", "Are you sure?"),
        ],
    );
    let (case, party) = case_for_link(conn, token)?;
    let org = store::org_by_id(conn, &case.organisation_id)?;
    let status = services::status_of(&case)?;
    let schedule = services::schedule_of(conn, &org)?;
    let tz = org.tz();
    // Internal notes are the organisation's own record, never shown to either party.
    let events: Vec<_> = store::events_of(conn, &case.id)?
        .into_iter()
        .filter(|e| e.kind != EventKind::NoteAdded.as_str())
        .collect();
    let question = events.iter().rev().find(|e| e.kind == "info_requested").and_then(|e| e.body.clone());
    let words_of =
        |kind: EventKind| events.iter().rev().find(|e| e.kind == kind.as_str()).and_then(|e| e.body.clone());
    let (reasons_label, reasons) = match status.state {
        CaseState::Decided => (Some("The committee's reasons"), words_of(EventKind::DecisionRecorded)),
        CaseState::Reinstated
        | CaseState::AppealRejected
        | CaseState::ContentRemoved
        | CaseState::NoAction
        | CaseState::Closed => (Some("The moderators' reasons"), words_of(EventKind::ResponseGiven)),
        _ => (None, None),
    };
    let outcome = case.outcome.as_deref().and_then(Outcome::parse);
    // What each step would do if taken now: whether the party may take it, and the date it
    // would set (shown beside its form).
    let now = Utc::now();
    let step = |action| domain::transition(&status, action, party, now, &schedule).ok();
    let (appeal, escalate) = (step(Action::LodgeAppeal), step(Action::Escalate));
    let due_of =
        |t: &Option<domain::Transition>| t.as_ref().and_then(|t| t.to.due).map(|d| long_date(d.at, tz));
    let timeline = events
        .into_iter()
        .map(|e| TimelineItem {
            when: long_date_time(from_db_time(e.created_at), tz),
            what: services::event_words(&e.kind, e.outcome.as_deref()),
            words: e.body,
        })
        .collect();
    let is_removal = status.kind == CaseKind::Removal;
    Ok(CasePage {
        title: if errors.is_empty() {
            format!("Case {}", case.reference)
        } else {
            format!("Error: Case {}", case.reference)
        },
        org_name: org.name.clone(),
        secretary_email: org.secretary_email.clone(),
        reference: case.reference.clone(),
        kind: case.kind.clone(),
        is_removal,
        status: status.state.words(outcome, Reader::Party),
        next: next_step(&case, &org, party),
        reasons_label: reasons.as_ref().and(reasons_label),
        reasons,
        appeal_answer_by: due_of(&appeal),
        committee_by: due_of(&escalate),
        platform: case.platform.clone(),
        content_url: case.content_url.clone(),
        content_text: case.content_text.clone(),
        explanation_label: if is_removal {
            "Why it was removed".into()
        } else {
            "Why you reported it".into()
        },
        explanation: case.explanation.clone(),
        rules: case.rules(),
        timeline,
        token: token.to_string(),
        can_appeal: appeal.is_some(),
        can_escalate: escalate.is_some(),
        // Before an appeal there is nothing to withdraw: the case closes by itself if none comes.
        can_withdraw: status.state != CaseState::NoticeSent && step(Action::Withdraw).is_some(),
        can_provide_info: step(Action::ProvideInfo).is_some(),
        question: question.clone(),
        errors: form["errors"].take(),
        error_list: form["error_list"].take(),
        values,
        max_words: validate::WORDS_MAX,
    })
}

async fn case_page(state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let token = path.into_inner();
    let result = db::read_by_key(&state.pool, move |conn| {
        build_page(conn, &token, FieldErrors::new(), FormValues::default())
    })
    .await;
    match result {
        Ok(page) => state.pages.render_response(StatusCode::OK, "case", &page),
        Err(e) => page_error(&state, e),
    }
}

#[derive(Deserialize)]
struct PartyForm {
    appeal: Option<String>,
    case_for_committee: Option<String>,
    reason: Option<String>,
    information: Option<String>,
    /// Ticked to confirm a withdrawal, which cannot be undone.
    confirm: Option<String>,
}

async fn party_step(
    state: web::Data<AppState>,
    token: String,
    action: Action,
    form: PartyForm,
) -> HttpResponse {
    let svc = state.services.clone();
    let words = match action {
        Action::LodgeAppeal => form.appeal.clone(),
        Action::Escalate => form.case_for_committee.clone(),
        Action::ProvideInfo => form.information.clone(),
        _ => form.reason.clone(),
    };
    let values = FormValues {
        appeal: form.appeal.unwrap_or_default(),
        case_for_committee: form.case_for_committee.unwrap_or_default(),
        reason: form.reason.unwrap_or_default(),
        information: form.information.unwrap_or_default(),
    };
    let confirmed = form.confirm.as_deref() == Some("yes");
    let t = token.clone();
    let result = db::run(&state.pool, move |conn| {
        let (case, party) = case_for_link(conn, &t)?;
        if action == Action::Withdraw && !confirmed {
            return Err(AppError::field(
                "confirm",
                "Tick the box to confirm that you want to close the case for good",
            ));
        }
        let by = ActorRef::without_account(party);
        services::act(conn, &svc, &case.id, action, &by, words.as_deref(), Utc::now())
    })
    .await;
    match result {
        Ok(_) => {
            state.outbox_wake.notify_one();
            HttpResponse::SeeOther().insert_header(("Location", format!("/c/{token}"))).finish()
        }
        Err(AppError::Validation(errors)) => {
            let page = db::run(&state.pool, move |conn| build_page(conn, &token, errors, values)).await;
            match page {
                Ok(page) => state.pages.render_response(StatusCode::UNPROCESSABLE_ENTITY, "case", &page),
                Err(e) => page_error(&state, e),
            }
        }
        Err(e) => page_error(&state, e),
    }
}

async fn appeal(
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<PartyForm>,
) -> HttpResponse {
    party_step(state, path.into_inner(), Action::LodgeAppeal, form.into_inner()).await
}

async fn escalate(
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<PartyForm>,
) -> HttpResponse {
    party_step(state, path.into_inner(), Action::Escalate, form.into_inner()).await
}

async fn withdraw(
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<PartyForm>,
) -> HttpResponse {
    party_step(state, path.into_inner(), Action::Withdraw, form.into_inner()).await
}

#[derive(Serialize)]
struct ReportPage {
    title: String,
    org_name: String,
    slug: String,
    rules: Vec<RuleOption>,
    errors: serde_json::Value,
    error_list: serde_json::Value,
    values: ReportValues,
    /// How long the moderators have to answer: "5 working days".
    response_time: String,
    max_text: usize,
    max_words: usize,
}

#[derive(Serialize)]
struct RuleOption {
    code: String,
    title: String,
    selected: bool,
}

#[derive(Serialize, Deserialize, Default, Clone)]
#[serde(default)]
struct ReportValues {
    platform: String,
    content_url: String,
    content_text: String,
    rule_code: String,
    reason: String,
    reporter_name: String,
    reporter_email: String,
}

fn report_page(
    conn: &mut crate::db::DbConnection,
    slug: &str,
    errors: FieldErrors,
    values: ReportValues,
) -> Result<ReportPage, AppError> {
    let org = services::find_org(conn, slug)?;
    let mut form = form_errors(
        &errors,
        &[
            ("platform", "Where it is"),
            ("content_url", "The link"),
            ("content_text", "What it says"),
            ("rule_code", "The rule"),
            ("reason", "Why it should be removed"),
            ("reporter_name", "Your name"),
            ("reporter_email", "Your email address"),
        ],
    );
    let rules = store::rules_of(conn, &org.id)?
        .into_iter()
        .map(|r| RuleOption { selected: r.code == values.rule_code, code: r.code, title: r.title })
        .collect();
    let response_time = crate::services::procedure::procedure(&org).response_time;
    Ok(ReportPage {
        title: if errors.is_empty() { "Report content".into() } else { "Error: Report content".into() },
        org_name: org.name,
        slug: org.slug,
        rules,
        errors: form["errors"].take(),
        error_list: form["error_list"].take(),
        values,
        response_time,
        max_text: validate::TEXT_MAX,
        max_words: validate::WORDS_MAX,
    })
}

async fn report_form(state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let slug = path.into_inner();
    match db::run(&state.pool, move |conn| {
        report_page(conn, &slug, FieldErrors::new(), ReportValues::default())
    })
    .await
    {
        Ok(page) => state.pages.render_response(StatusCode::OK, "report", &page),
        Err(e) => page_error(&state, e),
    }
}

async fn report_submit(
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ReportValues>,
) -> HttpResponse {
    let slug = path.into_inner();
    let values = form.into_inner();
    let input = ComplaintInput {
        platform: Some(values.platform.clone()),
        content_url: Some(values.content_url.clone()),
        content_text: Some(values.content_text.clone()),
        rule_code: Some(values.rule_code.clone()),
        reason: Some(values.reason.clone()),
        reporter_name: Some(values.reporter_name.clone()),
        reporter_email: Some(values.reporter_email.clone()),
    };
    let svc = state.services.clone();
    let s = slug.clone();
    let result = db::run(&state.pool, move |conn| {
        let opened = services::submit_complaint(conn, &svc, &s, input, Utc::now())?;
        let org = store::org_by_id(conn, &opened.case.organisation_id)?;
        let due = opened.case.due_at.map(|t| long_date(from_db_time(t), org.tz())).unwrap_or_default();
        Ok((opened, org.name, due))
    })
    .await;
    match result {
        Ok((opened, org_name, due)) => {
            state.outbox_wake.notify_one();
            state.pages.render_response(
                StatusCode::CREATED,
                "report_done",
                &ReportDoneView {
                    title: "Complaint received",
                    org_name: &org_name,
                    reference: &opened.case.reference,
                    due: &due,
                    due_kind: DueKind::Response.as_str(),
                    link: opened.private_link.as_deref(),
                },
            )
        }
        Err(AppError::Validation(errors)) => {
            match db::run(&state.pool, move |conn| report_page(conn, &slug, errors, values)).await {
                Ok(page) => state.pages.render_response(StatusCode::UNPROCESSABLE_ENTITY, "report", &page),
                Err(e) => page_error(&state, e),
            }
        }
        Err(e) => page_error(&state, e),
    }
}

async fn information(
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<PartyForm>,
) -> HttpResponse {
    party_step(state, path.into_inner(), Action::ProvideInfo, form.into_inner()).await
}
