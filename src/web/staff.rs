//! The staff pages: first-run setup, sign-in, the work queue, recording a removal, the case
//! page with the actions a role may take, and the committee's view. Every state change goes
//! through the same services as the JSON API.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::session::{self, SignedIn, Staff};
use super::{form_errors, page_error, AppState};
use crate::auth::{self, Session, SetupInput};
use crate::db::{self, from_db_time, DbConnection};
use crate::domain::deadline::{long_date, long_date_time, relative};
use crate::domain::{self, Action, Actor, CaseKind, CaseState, DueKind, Outcome, Role};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::lists;
use crate::services::{self, RemovalInput};
use crate::store::{self, CaseRow, Organisation};
use crate::validate;

routes! {
    get "/setup" => setup_form,
    post "/setup" => setup_submit,
    get "/sign-in" => sign_in_form,
    post "/sign-in" => sign_in_submit,
    post "/sign-out" => sign_out,
    get "/orgs" => choose_org,
    post "/orgs" => choose_org_submit,
    get "/staff" => queue,
    get "/staff/removals/new" => removal_form,
    post "/staff/removals" => removal_submit,
    get "/staff/cases/{reference}" => case_page,
    post "/staff/cases/{reference}/response" => respond,
    post "/staff/cases/{reference}/decision" => decide,
    post "/staff/cases/{reference}/request-info" => request_info,
    post "/staff/cases/{reference}/notes" => add_note,
    post "/staff/cases/{reference}/link" => reissue_link,
    get "/staff/committee" => committee,
}

/// What every staff page shows around its content.
pub fn chrome(session: &Session) -> Value {
    let org = session.org.as_ref();
    json!({
        "user_name": session.user.name,
        "user_email": session.user.email,
        "org_name": org.map(|o| o.name.clone()).unwrap_or_default(),
        "org_slug": org.map(|o| o.slug.clone()).unwrap_or_default(),
        "csrf": session.csrf,
        "is_admin": session.has(Role::Admin),
        "is_moderator": session.has(Role::Moderator),
        "is_committee": session.has(Role::Committee) || session.has(Role::Secretary),
        "roles": session.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
    })
}

/// Renders a staff page: `data` is merged with the page title and the chrome.
pub fn staff_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    template: &str,
    title: &str,
    data: Value,
) -> HttpResponse {
    let mut context = json!({ "title": title, "staff": chrome(session) });
    if let (Value::Object(ctx), Value::Object(extra)) = (&mut context, data) {
        ctx.extend(extra);
    }
    state.pages.render_response(status, template, &context)
}

/// An error on a staff page, shown within the staff layout.
pub fn staff_error(state: &AppState, session: &Session, err: AppError) -> HttpResponse {
    use actix_web::ResponseError;
    if let AppError::Internal(detail) = &err {
        tracing::error!(%detail, "staff page failed");
    }
    let title = match err.status_code().as_u16() {
        404 => "Not found",
        403 => "Not allowed",
        409 => "This cannot be done now",
        _ => "Sorry, there is a problem",
    };
    staff_page(
        state,
        session,
        err.status_code(),
        "staff/error",
        title,
        json!({ "message": err.public_message() }),
    )
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header(("Location", location.to_string())).finish()
}

// ---------------------------------------------------------------------------------------------
// First run and sign-in.

const SETUP_FIELDS: &[(&str, &str)] = &[
    ("org_name", "The organisation's name"),
    ("org_slug", "The short name"),
    ("secretary_email", "The secretary's email address"),
    ("timezone", "The time zone"),
    ("admin_name", "Your name"),
    ("admin_email", "Your email address"),
    ("password", "The password"),
];

/// Merges a form's errors into a page's data.
fn with_errors(mut data: Value, errors: &FieldErrors, labels: &[(&str, &str)]) -> Value {
    if let (Value::Object(d), Value::Object(e)) = (&mut data, form_errors(errors, labels)) {
        d.extend(e);
    }
    data
}

fn setup_page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    values: &SetupInput,
    errors: &FieldErrors,
) -> HttpResponse {
    let (csrf, cookie) = session::anonymous_csrf(req, state.secure_cookies);
    let title = if errors.is_empty() { "Set up Redress" } else { "Error: Set up Redress" };
    let mut response = state.pages.render_response(
        status,
        "setup",
        &with_errors(json!({ "title": title, "csrf": csrf, "values": values }), errors, SETUP_FIELDS),
    );
    if let Some(c) = cookie {
        let _ = response.add_cookie(&c);
    }
    response
}

async fn setup_form(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    match db::run(&state.pool, auth::setup_needed).await {
        Ok(true) => setup_page(
            &state,
            &req,
            StatusCode::OK,
            &SetupInput { timezone: "Europe/London".into(), ..Default::default() },
            &FieldErrors::new(),
        ),
        Ok(false) => {
            page_error(&state, AppError::NotFound("Redress is already set up. Sign in instead.".into()))
        }
        Err(e) => page_error(&state, e),
    }
}

#[derive(Deserialize)]
struct WithCsrf<T> {
    csrf: Option<String>,
    #[serde(flatten)]
    inner: T,
}

async fn setup_submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<WithCsrf<SetupInput>>,
) -> HttpResponse {
    let WithCsrf { csrf, inner: input } = form.into_inner();
    if let Err(e) = session::check_anonymous_csrf(&req, state.secure_cookies, csrf.as_deref()) {
        return page_error(&state, e);
    }
    let i = input.clone();
    match db::run(&state.pool, move |conn| auth::first_run(conn, &i, Utc::now())).await {
        Ok(()) => see_other("/sign-in?setup=done"),
        Err(AppError::Validation(errors)) => {
            setup_page(&state, &req, StatusCode::UNPROCESSABLE_ENTITY, &input, &errors)
        }
        Err(AppError::Conflict(_)) => {
            page_error(&state, AppError::NotFound("Redress is already set up. Sign in instead.".into()))
        }
        Err(e) => page_error(&state, e),
    }
}

#[derive(Deserialize, Default, serde::Serialize, Clone)]
#[serde(default)]
struct SignInForm {
    email: String,
    password: String,
}

fn sign_in_page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    email: &str,
    errors: &FieldErrors,
    notice: Option<&str>,
) -> HttpResponse {
    let (csrf, cookie) = session::anonymous_csrf(req, state.secure_cookies);
    let title = if errors.is_empty() { "Sign in" } else { "Error: Sign in" };
    let mut response = state.pages.render_response(
        status,
        "sign_in",
        &with_errors(
            json!({ "title": title, "csrf": csrf, "email": email, "notice": notice }),
            errors,
            &[("email", "Email address"), ("password", "Password")],
        ),
    );
    if let Some(c) = cookie {
        let _ = response.add_cookie(&c);
    }
    response
}

#[derive(Deserialize)]
struct SignInQuery {
    setup: Option<String>,
}

async fn sign_in_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<SignInQuery>,
) -> HttpResponse {
    if let Ok(true) = db::run(&state.pool, auth::setup_needed).await {
        return see_other("/setup");
    }
    let notice = query
        .setup
        .as_deref()
        .map(|_| "Redress is set up. Sign in with the email address and password you chose.");
    sign_in_page(&state, &req, StatusCode::OK, "", &FieldErrors::new(), notice)
}

async fn sign_in_submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<WithCsrf<SignInForm>>,
) -> HttpResponse {
    let WithCsrf { csrf, inner: form } = form.into_inner();
    if let Err(e) = session::check_anonymous_csrf(&req, state.secure_cookies, csrf.as_deref()) {
        return page_error(&state, e);
    }
    let mut errors = FieldErrors::new();
    if form.email.trim().is_empty() {
        errors.insert("email".into(), "Enter your email address".into());
    }
    if form.password.is_empty() {
        errors.insert("password".into(), "Enter your password".into());
    }
    if !errors.is_empty() {
        return sign_in_page(&state, &req, StatusCode::UNPROCESSABLE_ENTITY, &form.email, &errors, None);
    }
    let addr = state.client_addr(&req);
    // No account has an address or a password this long: refused before any look-up, hashing
    // or counting, so that oversized values cannot fill the throttling counters' keys.
    if form.email.trim().chars().count() > crate::validate::EMAIL_MAX || form.password.chars().count() > 128 {
        tracing::warn!(event = "sign_in_failed", account = "unknown", client = %addr, "failed sign-in");
        errors.insert("email".into(), auth::refused_sign_in().public_message());
        return sign_in_page(&state, &req, StatusCode::UNAUTHORIZED, "", &errors, None);
    }
    let device = req.cookie(session::device_cookie_name(state.secure_cookies)).map(|c| c.value().to_string());
    let email = form.email.clone();
    let candidate = match db::run(&state.pool, move |conn| {
        auth::sign_in_candidate(conn, &email, device.as_deref())
    })
    .await
    {
        Ok(c) => c,
        Err(e) => return page_error(&state, e),
    };
    let account = candidate.user.as_ref().map(|u| u.id.clone()).unwrap_or_else(|| "unknown".into());
    if let Err(wait) = state.limits.sign_in_attempt(&form.email, addr, candidate.trusted_device) {
        tracing::warn!(event = "sign_in_refused", account = %account, client = %addr, "sign-in throttled");
        let minutes = wait.as_secs().div_ceil(60).max(1);
        errors.insert(
            "email".into(),
            format!(
                "Too many failed attempts to sign in. Wait {minutes} minute{} and try again.",
                if minutes == 1 { "" } else { "s" }
            ),
        );
        let mut page = sign_in_page(&state, &req, StatusCode::TOO_MANY_REQUESTS, &form.email, &errors, None);
        page.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from(wait.as_secs().max(1)),
        );
        return page;
    }
    let (hash, password) = (candidate.hash.clone(), form.password.clone());
    let Ok(matches) = state.hash_pool.run(move || auth::verify_password(&hash, &password)).await else {
        state.limits.sign_in_not_checked(&form.email, addr, candidate.trusted_device);
        tracing::warn!(event = "sign_in_busy", client = %addr, "sign-in turned away: hashing pool full");
        let mut page = page_error(
            &state,
            AppError::Unavailable("Redress is busy. Wait a minute and try to sign in again.".into()),
        );
        page.headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, actix_web::http::header::HeaderValue::from(60));
        return page;
    };
    let user = match (matches, candidate.user) {
        (true, Some(user)) => user,
        _ => {
            tracing::warn!(event = "sign_in_failed", account = %account, client = %addr, "failed sign-in");
            errors.insert("email".into(), auth::refused_sign_in().public_message());
            return sign_in_page(&state, &req, StatusCode::UNAUTHORIZED, &form.email, &errors, None);
        }
    };
    state.limits.sign_in_succeeded(&form.email, addr, candidate.trusted_device);
    let trusted = candidate.trusted_device;
    let u = user.clone();
    let replacing = req.cookie(session::cookie_name(state.secure_cookies)).map(|c| c.value().to_string());
    match db::run(&state.pool, move |conn| {
        auth::start_session(conn, &u, trusted, replacing.as_deref(), Utc::now())
    })
    .await
    {
        Ok((secret, device)) => {
            tracing::info!(event = "sign_in", actor = %user.id, client = %addr, "signed in");
            // A new session id at every sign-in; any older cookie is simply replaced.
            let mut response = HttpResponse::SeeOther();
            response
                .insert_header(("Location", "/staff"))
                .cookie(session::session_cookie(state.secure_cookies, secret));
            if let Some(device) = device {
                response.cookie(session::device_cookie(state.secure_cookies, device));
            }
            response.finish()
        }
        Err(e) => page_error(&state, e),
    }
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: Option<String>,
}

async fn sign_out(
    state: web::Data<AppState>,
    SignedIn(session): SignedIn,
    form: web::Form<CsrfOnly>,
) -> HttpResponse {
    if let Err(e) = session.check_csrf(form.csrf.as_deref()) {
        return page_error(&state, e);
    }
    let id = session.id_hash.clone();
    if let Err(e) = db::run(&state.pool, move |conn| auth::sign_out(conn, &id)).await {
        return page_error(&state, e);
    }
    HttpResponse::SeeOther()
        .insert_header(("Location", "/sign-in"))
        .cookie(session::expired_session_cookie(state.secure_cookies))
        .finish()
}

async fn choose_org(state: web::Data<AppState>, SignedIn(session): SignedIn) -> HttpResponse {
    let user_id = session.user.id.clone();
    match db::run(&state.pool, move |conn| Ok(auth::memberships_of(conn, &user_id)?)).await {
        Ok(orgs) => {
            let list: Vec<Value> = orgs
                .iter()
                .map(|(o, roles)| json!({ "slug": o.slug, "name": o.name, "roles": roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ") }))
                .collect();
            staff_page(
                &state,
                &session,
                StatusCode::OK,
                "staff/orgs",
                "Choose an organisation",
                json!({ "orgs": list }),
            )
        }
        Err(e) => staff_error(&state, &session, e),
    }
}

#[derive(Deserialize)]
struct ChooseOrgForm {
    csrf: Option<String>,
    org: Option<String>,
}

async fn choose_org_submit(
    state: web::Data<AppState>,
    SignedIn(session): SignedIn,
    form: web::Form<ChooseOrgForm>,
) -> HttpResponse {
    if let Err(e) = session.check_csrf(form.csrf.as_deref()) {
        return staff_error(&state, &session, e);
    }
    let slug = form.org.clone().unwrap_or_default();
    let s = session.clone();
    match db::run(&state.pool, move |conn| auth::select_org(conn, &s, &slug)).await {
        Ok(()) => see_other("/staff"),
        Err(e) => staff_error(&state, &session, e),
    }
}

// ---------------------------------------------------------------------------------------------
// The work queue.

#[derive(Deserialize, Default)]
struct QueueFilter {
    state: Option<String>,
    kind: Option<String>,
    /// Where this page of the queue (or of the search results) starts.
    cursor: Option<String>,
    /// Where this page of undelivered emails starts.
    emails: Option<String>,
    q: Option<String>,
    final_state: Option<String>,
    closed_from: Option<String>,
    closed_to: Option<String>,
}

const SEARCH_FIELDS: &[(&str, &str)] = &[
    ("q", "The search"),
    ("final_state", "How it ended"),
    ("closed_from", "Closed on or after"),
    ("closed_to", "Closed on or before"),
    ("cursor", "The page link"),
];

/// Undelivered emails shown at a time to admins on the work queue.
const FAILED_EMAILS_SHOWN: i64 = 10;
/// How many of the cases the sweep cannot act on an admin sees on the work queue.
const STUCK_CASES_SHOWN: i64 = 20;

fn org_of(session: &Session) -> &Organisation {
    session.org.as_ref().expect("the Staff extractor requires an organisation")
}

/// One row of a list of cases, with its deadline as a date and as a distance.
fn case_row(case: &CaseRow, tz: chrono_tz::Tz, now: chrono::DateTime<Utc>) -> Value {
    let state = CaseState::parse(&case.state);
    let due = case.due_at.map(from_db_time);
    json!({
        "reference": case.reference,
        "kind": case.kind,
        "state": case.state,
        "state_words": state.map(|s| s.describe()).unwrap_or(""),
        "overdue": case.overdue || due.is_some_and(|d| now > d),
        "due_date": due.map(|d| long_date(d, tz)),
        "due_relative": due.map(|d| relative(d, now, tz)),
        "due_kind": case.due_kind.as_deref().and_then(DueKind::parse).map(due_kind_words),
        "platform": case.platform,
        "author_name": case.author_name,
        "opened": long_date(from_db_time(case.created_at), tz),
    })
}

pub fn due_kind_words(kind: DueKind) -> &'static str {
    match kind {
        DueKind::AppealWindow => "appeal window closes",
        DueKind::Response => "response due",
        DueKind::EscalationWindow => "escalation window closes",
        DueKind::CommitteeTarget => "committee decision due",
    }
}

/// The work queue: a page of the organisation's open cases, overdue first, then due soonest;
/// or, when something is searched for, a page of all its cases, open and closed, that match.
async fn queue(
    state: web::Data<AppState>,
    Staff(session): Staff,
    query: web::Query<QueueFilter>,
) -> HttpResponse {
    let org = org_of(&session).clone();
    let tz = org.tz();
    let filter = query.into_inner();
    let given =
        |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let (state_filter, kind_filter) = (
        given(&filter.state).filter(|s| CaseState::parse(s).is_some_and(|s| !s.is_final())),
        given(&filter.kind).filter(|k| CaseKind::parse(k).is_some()),
    );
    let (q, final_state, closed_from, closed_to) =
        (given(&filter.q), given(&filter.final_state), given(&filter.closed_from), given(&filter.closed_to));
    let searching = q.is_some() || final_state.is_some() || closed_from.is_some() || closed_to.is_some();

    // Read the search and the page links; what is wrong is shown beside its field.
    let mut errors = FieldErrors::new();
    let mut search = lists::CaseFilter::default();
    if searching {
        match lists::Search::parse(q.as_deref().unwrap_or("")) {
            Ok(s) => search.search = s,
            Err(AppError::Validation(f)) => {
                errors.extend(f.into_iter().map(|(k, v)| (k, format!("The search {v}"))))
            }
            Err(e) => return staff_error(&state, &session, e),
        }
        if let Some(fs) = &final_state {
            match CaseState::parse(fs).filter(|s| s.is_final()) {
                Some(s) => search.state = Some(s.as_str()),
                None => {
                    errors.insert("final_state".into(), "Choose how the case ended from the list".into());
                }
            }
        }
        let mut date_errors = FieldErrors::new();
        let (from, before) =
            lists::closed_range(closed_from.as_deref(), closed_to.as_deref(), tz, &mut date_errors);
        for (field, message) in date_errors {
            let message = if message.starts_with("is on or after") {
                "The last closing date must be the same as or after the first"
            } else if field == "closed_from" {
                "Enter the first closing date as a date, such as 2026-04-13"
            } else {
                "Enter the last closing date as a date, such as 2026-04-13"
            };
            errors.insert(field, message.into());
        }
        search.closed_from = from;
        search.closed_before = before;
    }
    let order = if searching { search.order() } else { lists::Order::Queue };
    // A damaged page link is not an error in what was asked: the list starts again from the top.
    let mut page_from =
        |given: Option<String>, order: lists::Order| match given.map(|c| lists::Cursor::decode(&c, order)) {
            Some(Ok(c)) => Some(c),
            Some(Err(_)) => {
                errors.insert(
                    "cursor".into(),
                    "That page link is out of date or incomplete: the list below starts from the first page"
                        .into(),
                );
                None
            }
            None => None,
        };
    let cursor = page_from(given(&filter.cursor), order);
    let emails_cursor = page_from(given(&filter.emails), lists::Order::Outbox);
    // A search with a mistake in it lists nothing rather than something other than was asked.
    let search_ok = !errors.keys().any(|k| k != "cursor");

    let is_admin = session.has(Role::Admin);
    let now = Utc::now();
    let (sf, kf, org_id) = (state_filter.clone(), kind_filter.clone(), org.id.clone());
    let result = db::run(&state.pool, move |conn| {
        let counts = lists::queue_counts(conn, &org_id, now)?;
        let page = if !searching {
            lists::queue_page(conn, &org_id, sf.as_deref(), kf.as_deref(), cursor.as_ref(), lists::DEFAULT_LIMIT)?
        } else if search_ok {
            lists::cases_page(conn, &org_id, &search, cursor.as_ref(), lists::DEFAULT_LIMIT)?
        } else {
            lists::Page { rows: vec![], next: None }
        };
        // Admins are told of the emails that could not be delivered, a few at a time.
        let failed = if is_admin {
            let emails = lists::outbox_page(
                conn,
                Some(&org_id),
                Some("failed"),
                emails_cursor.as_ref(),
                FAILED_EMAILS_SHOWN,
            )?;
            let mut shown = Vec::with_capacity(emails.rows.len());
            for m in emails.rows {
                let reference = match &m.case_id {
                    Some(id) => Some(store::case_by_id(conn, id)?.reference),
                    None => None,
                };
                shown.push(json!({ "reference": reference, "to": m.to_address, "template": m.template, "error": m.last_error }));
            }
            Some((shown, emails.next))
        } else {
            None
        };
        // And of the cases the deadline sweep cannot act on.
        let stuck = if is_admin { services::sweep_failures_of(conn, &org_id, STUCK_CASES_SHOWN)? } else { vec![] };
        Ok((counts, page, failed, stuck))
    })
    .await;
    let (counts, page, failed, stuck) = match result {
        Ok(r) => r,
        Err(e) => return staff_error(&state, &session, e),
    };
    let rows: Vec<Value> = page
        .rows
        .iter()
        .map(|c| {
            let mut row = case_row(c, tz, now);
            row["closed"] = json!(c.closed_at.map(|t| long_date(from_db_time(t), tz)));
            row
        })
        .collect();
    let here = |cursor: Option<String>| {
        let query = if searching {
            lists::query_string(&[
                ("q", q.clone()),
                ("final_state", final_state.clone()),
                ("closed_from", closed_from.clone()),
                ("closed_to", closed_to.clone()),
                ("cursor", cursor),
            ])
        } else {
            lists::query_string(&[
                ("state", state_filter.clone()),
                ("kind", kind_filter.clone()),
                ("cursor", cursor),
            ])
        };
        if query.is_empty() {
            "/staff".to_string()
        } else {
            format!("/staff?{query}")
        }
    };
    let next_page = page.next.map(|c| here(Some(c.encode())));
    let first_page = given(&filter.cursor).map(|_| here(None));
    let (failed_emails, more_emails) = match failed {
        Some((shown, next)) => (shown, next.map(|c| format!("/staff?emails={}", c.encode()))),
        None => (vec![], None),
    };
    let states: Vec<Value> = CaseState::ALL
        .iter()
        .filter(|s| !s.is_final())
        .map(|s| json!({ "value": s.as_str(), "label": s.describe(), "selected": state_filter.as_deref() == Some(s.as_str()) }))
        .collect();
    let final_states: Vec<Value> = CaseState::ALL
        .iter()
        .filter(|s| s.is_final())
        .map(|s| json!({ "value": s.as_str(), "label": s.describe(), "selected": final_state.as_deref() == Some(s.as_str()) }))
        .collect();
    let kinds: Vec<Value> = CaseKind::ALL
        .iter()
        .map(|k| json!({ "value": k.as_str(), "label": k.as_str(), "selected": kind_filter.as_deref() == Some(k.as_str()) }))
        .collect();
    let has_errors = !errors.is_empty();
    let title = match (searching, has_errors) {
        (true, true) => "Error: Search cases",
        (true, false) => "Search cases",
        (false, true) => "Error: Work queue",
        (false, false) => "Work queue",
    };
    let counts = json!({
        "open": counts.open.words(),
        "overdue": counts.overdue.words(),
        "awaiting_response": counts.awaiting_response.words(),
        "escalated": counts.escalated.words(),
        "capped": counts.open.capped,
        "cap": lists::Count { n: lists::COUNT_CAP, capped: false }.words(),
    });
    staff_page(
        &state,
        &session,
        if search_ok { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY },
        "staff/queue",
        title,
        with_errors(
            json!({
                "counts": counts, "cases": rows, "states": states, "kinds": kinds, "final_states": final_states,
                "filtered": state_filter.is_some() || kind_filter.is_some(), "failed_emails": failed_emails,
                "stuck_cases": stuck.iter().map(|c| json!({
                    "reference": c.reference, "error": c.error, "failures": c.failures,
                    "since": long_date_time(c.since, tz),
                })).collect::<Vec<_>>(),
                "more_emails": more_emails, "searching": searching, "search_ok": search_ok,
                "values": { "q": q, "closed_from": closed_from, "closed_to": closed_to },
                "next_page": next_page, "first_page": first_page,
                "show_closed": final_state.is_some() || closed_from.is_some() || closed_to.is_some(),
            }),
            &errors,
            SEARCH_FIELDS,
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Recording a removal.

const REMOVAL_FIELDS: &[(&str, &str)] = &[
    ("platform", "Platform"),
    ("content_url", "The link"),
    ("content_text", "What it said"),
    ("author_name", "The author's name"),
    ("author_email", "The author's email address"),
    ("notice_method", "How the notice is given"),
    ("rule_codes", "Rules"),
    ("explanation", "Your explanation"),
];

/// The removal form as submitted: checkboxes arrive as `rule.<code>` fields.
fn removal_input(form: &HashMap<String, String>) -> RemovalInput {
    let get = |k: &str| form.get(k).cloned();
    let mut codes: Vec<String> =
        form.keys().filter_map(|k| k.strip_prefix("rule.")).map(str::to_string).collect();
    codes.sort();
    RemovalInput {
        platform: get("platform"),
        content_url: get("content_url"),
        content_text: get("content_text"),
        author_name: get("author_name"),
        author_email: get("author_email"),
        rule_codes: Some(codes),
        explanation: get("explanation"),
        notice_method: get("notice_method"),
    }
}

fn removal_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    conn_rules: Vec<store::PolicyRule>,
    form: &HashMap<String, String>,
    errors: &FieldErrors,
    preview: Option<crate::mail::RenderedEmail>,
) -> HttpResponse {
    let rules: Vec<Value> = conn_rules
        .iter()
        .map(|r| json!({ "code": r.code, "title": r.title, "summary": r.summary, "checked": form.contains_key(&format!("rule.{}", r.code)) }))
        .collect();
    let value = |k: &str| form.get(k).cloned().unwrap_or_default();
    let title = if errors.is_empty() { "Record a removal" } else { "Error: Record a removal" };
    staff_page(
        state,
        session,
        status,
        "staff/removal",
        title,
        with_errors(
            json!({
                "rules": rules,
                "values": {
                    "platform": value("platform"), "content_url": value("content_url"), "content_text": value("content_text"),
                    "author_name": value("author_name"), "author_email": value("author_email"),
                    "notice_method": value("notice_method"), "explanation": value("explanation"),
                },
                "preview": preview.map(|p| json!({ "subject": p.subject, "text": p.text })),
                "max_text": validate::TEXT_MAX,
                "max_words": validate::WORDS_MAX,
            }),
            errors,
            REMOVAL_FIELDS,
        ),
    )
}

async fn removal_form(state: web::Data<AppState>, Staff(session): Staff) -> HttpResponse {
    if let Err(e) = session.require(&[Role::Moderator]) {
        return staff_error(&state, &session, e);
    }
    let org_id = org_of(&session).id.clone();
    match db::run(&state.pool, move |conn| Ok(store::rules_of(conn, &org_id)?)).await {
        Ok(rules) => {
            removal_page(&state, &session, StatusCode::OK, rules, &HashMap::new(), &FieldErrors::new(), None)
        }
        Err(e) => staff_error(&state, &session, e),
    }
}

async fn removal_submit(
    state: web::Data<AppState>,
    Staff(session): Staff,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let form = form.into_inner();
    if let Err(e) = session.check_csrf(form.get("csrf").map(String::as_str)) {
        return staff_error(&state, &session, e);
    }
    if let Err(e) = session.require(&[Role::Moderator]) {
        return staff_error(&state, &session, e);
    }
    let staff = session.staff().expect("an organisation is chosen");
    let input = removal_input(&form);
    let send = form.get("action").map(String::as_str) == Some("send");
    let svc = state.services.clone();
    let org_id = staff.org.id.clone();
    let result = db::run(&state.pool, move |conn| {
        let rules = store::rules_of(conn, &org_id)?;
        if send {
            let opened = services::record_removal(conn, &svc, &staff, input, Utc::now());
            Ok((rules, opened.map(|o| (Some(o.case.reference), o.private_link, None))))
        } else {
            let preview = services::preview_removal(conn, &svc, &staff, input, Utc::now());
            Ok((rules, preview.map(|p| (None, None, Some(p)))))
        }
    })
    .await;
    match result {
        Ok((_, Ok((Some(reference), link, _)))) => {
            state.outbox_wake.notify_one();
            match link {
                // No address: the link is shown once, on the case page, to hand over.
                Some(link) => staff_page(
                    &state,
                    &session,
                    StatusCode::CREATED,
                    "staff/link_once",
                    "Removal recorded",
                    json!({ "reference": reference, "link": link, "reissued": false }),
                ),
                None => see_other(&format!("/staff/cases/{reference}")),
            }
        }
        Ok((rules, Ok((None, _, preview)))) => {
            removal_page(&state, &session, StatusCode::OK, rules, &form, &FieldErrors::new(), preview)
        }
        Ok((rules, Err(AppError::Validation(errors)))) => {
            removal_page(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, rules, &form, &errors, None)
        }
        Ok((_, Err(e))) | Err(e) => staff_error(&state, &session, e),
    }
}

// ---------------------------------------------------------------------------------------------
// The case page.

/// Everything about one case that staff may see, ready for a template.
fn case_view(conn: &mut DbConnection, session: &Session, case: &CaseRow) -> Result<Value, AppError> {
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
                    |id: &str| store::user_by_id(conn, id).map(|u| u.map(|u| u.name).unwrap_or_default());
                let holder = format!("{} ({})", name(id)?, e.actor_role.clone().unwrap_or_default());
                match &e.token_issued_by {
                    Some(issuer) => format!("{holder}, through an API token issued by {}", name(issuer)?),
                    None => holder,
                }
            }
            (None, "system") => "Redress (deadline)".into(),
            (None, kind) => kind.to_string(),
        };
        let mails: Vec<Value> = emails
            .iter()
            .filter(|m| m.event_id.as_deref() == Some(e.id.as_str()))
            .map(|m| {
                json!({
                    "to": m.to_address, "recipient_kind": m.recipient_kind, "template": m.template, "subject": m.subject,
                    "status": m.status, "attempts": m.attempts, "last_error": m.last_error, "body": m.body_text,
                    "queued": long_date_time(from_db_time(m.created_at), tz),
                    "sent": m.sent_at.map(|t| long_date_time(from_db_time(t), tz)),
                })
            })
            .collect();
        timeline.push(json!({
            "what": services::event_words(&e.kind, e.outcome.as_deref()),
            "when": long_date_time(from_db_time(e.created_at), tz),
            "who": who,
            "words": e.body,
            "emails": mails,
        }));
    }
    let last_words = |kind: &str| events.iter().rev().find(|e| e.kind == kind).and_then(|e| e.body.clone());
    let staff = session.staff().expect("an organisation is chosen");
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
    let outcome_options = |list: &[Outcome]| -> Vec<Value> {
        list.iter().map(|o| json!({ "value": o.as_str(), "label": outcome_label(*o) })).collect()
    };
    // The separation rule: whoever recorded a removal should not judge its appeal when another
    // moderator could.
    let mut separation_warning = false;
    if !respond_outcomes.is_empty() && case.recorded_by.as_deref() == Some(session.user.id.as_str()) {
        let moderators = store::emails_with_role(conn, &org.id, Role::Moderator.as_str())?;
        separation_warning = moderators.iter().any(|m| *m != session.user.email);
    }
    let due = case.due_at.map(from_db_time);
    let can_reissue_link = [Role::Moderator, Role::Secretary, Role::Admin].iter().any(|r| session.has(*r));
    let party_email =
        if status.kind == CaseKind::Removal { &case.author_email } else { &case.reporter_email };
    Ok(json!({
        "case": {
            "reference": case.reference,
            "kind": case.kind,
            "is_removal": status.kind == CaseKind::Removal,
            "state": case.state,
            "state_words": status.state.describe(),
            "final": status.state.is_final(),
            "overdue": case.overdue || due.is_some_and(|d| now > d),
            "due_date": due.map(|d| long_date(d, tz)),
            "due_relative": due.map(|d| relative(d, now, tz)),
            "due_kind": status.due.map(|d| due_kind_words(d.kind)),
            "platform": case.platform,
            "content_url": case.content_url,
            "content_text": case.content_text,
            "author_name": case.author_name,
            "author_email": case.author_email,
            "notice_method": case.notice_method,
            "reporter_name": case.reporter_name,
            "reporter_email": case.reporter_email,
            "explanation": case.explanation,
            "rules": case.rules(),
            "outcome": case.outcome,
            "opened": long_date_time(from_db_time(case.created_at), tz),
            "appeal": last_words("appeal_lodged"),
            "response": last_words("response_given"),
            "written_case": last_words("escalated"),
        },
        "timeline": timeline,
        "respond_outcomes": outcome_options(&respond_outcomes),
        "decide_outcomes": outcome_options(&decide_outcomes),
        "can_request_info": may(Action::RequestInfo),
        "paused": case.info_due_at.map(|t| json!({
            "answer_by": long_date(from_db_time(t), tz),
            "days_left": case.paused_days_left,
        })),
        "can_respond": !respond_outcomes.is_empty(),
        "can_decide": !decide_outcomes.is_empty(),
        "separation_warning": separation_warning,
        "can_reissue_link": can_reissue_link,
        "party_email": party_email,
    }))
}

pub fn outcome_label(o: Outcome) -> &'static str {
    match o {
        Outcome::Reinstate => "Reinstate the post",
        Outcome::Uphold => "Uphold the removal",
        Outcome::Remove => "Remove the content",
        Outcome::NoAction => "Take no action",
    }
}

fn render_case(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    mut view: Value,
    form: &str,
    values: &HashMap<String, String>,
    errors: &FieldErrors,
) -> HttpResponse {
    let reference = view["case"]["reference"].as_str().unwrap_or_default().to_string();
    view = with_errors(
        view,
        errors,
        &[
            ("outcome", "The outcome"),
            ("reasons", "The reasons"),
            ("question", "The question"),
            ("note", "The note"),
        ],
    );
    if let Value::Object(v) = &mut view {
        v.insert("form".into(), json!(form));
        v.insert(
            "values".into(),
            json!({
                "outcome": values.get("outcome").cloned().unwrap_or_default(),
                "reasons": values.get("reasons").cloned().unwrap_or_default(),
                "question": values.get("question").cloned().unwrap_or_default(),
                "note": values.get("note").cloned().unwrap_or_default(),
            }),
        );
        v.insert("max_words".into(), json!(validate::WORDS_MAX));
    }
    let title =
        if errors.is_empty() { format!("Case {reference}") } else { format!("Error: Case {reference}") };
    staff_page(state, session, status, "staff/case", &title, view)
}

async fn case_page(
    state: web::Data<AppState>,
    Staff(session): Staff,
    path: web::Path<String>,
) -> HttpResponse {
    let reference = path.into_inner();
    let s = session.clone();
    let result = db::run(&state.pool, move |conn| {
        let case = services::find_case(conn, org_of(&s), &reference)?;
        case_view(conn, &s, &case)
    })
    .await;
    match result {
        Ok(view) => {
            render_case(&state, &session, StatusCode::OK, view, "", &HashMap::new(), &FieldErrors::new())
        }
        Err(e) => staff_error(&state, &session, e),
    }
}

async fn staff_step(
    state: web::Data<AppState>,
    session: Session,
    reference: String,
    form: HashMap<String, String>,
    decide: bool,
) -> HttpResponse {
    if let Err(e) = session.check_csrf(form.get("csrf").map(String::as_str)) {
        return staff_error(&state, &session, e);
    }
    let staff = session.staff().expect("an organisation is chosen");
    let svc = state.services.clone();
    let (r, f) = (reference.clone(), form.clone());
    let result = db::run(&state.pool, move |conn| {
        let build = if decide { Action::Decide } else { Action::Respond };
        services::staff_act(
            conn,
            &svc,
            &staff,
            &r,
            build,
            f.get("outcome").map(String::as_str),
            f.get("reasons").map(String::as_str),
            Utc::now(),
        )
    })
    .await;
    let form_name = if decide { "decision" } else { "response" };
    finish_case_step(&state, &session, reference, form_name, &form, result).await
}

async fn respond(
    state: web::Data<AppState>,
    Staff(session): Staff,
    path: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    staff_step(state, session, path.into_inner(), form.into_inner(), false).await
}

async fn decide(
    state: web::Data<AppState>,
    Staff(session): Staff,
    path: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    staff_step(state, session, path.into_inner(), form.into_inner(), true).await
}

// ---------------------------------------------------------------------------------------------
// The committee's view.

#[derive(Deserialize, Default)]
struct CommitteeQuery {
    cursor: Option<String>,
}

/// Escalated cases shown at a time on the committee's view, each with its whole history.
const COMMITTEE_PAGE: i64 = 20;

/// Every escalated case, a page at a time, the one due soonest first.
async fn committee(
    state: web::Data<AppState>,
    Staff(session): Staff,
    query: web::Query<CommitteeQuery>,
) -> HttpResponse {
    if let Err(e) = session.require(&[Role::Secretary, Role::Committee]) {
        return staff_error(&state, &session, e);
    }
    let raw_cursor = query.into_inner().cursor.filter(|c| !c.trim().is_empty());
    let cursor = match raw_cursor.as_deref().map(|c| lists::Cursor::decode(c.trim(), lists::Order::Queue)) {
        Some(Ok(c)) => Some(c),
        Some(Err(_)) => {
            return staff_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                "staff/error",
                "There is a problem",
                json!({ "message": "That page link is out of date or incomplete. Go back to the first page of escalated cases." }),
            )
        }
        None => None,
    };
    let s = session.clone();
    let result = db::run(&state.pool, move |conn| {
        let org = org_of(&s);
        let page = lists::queue_page(
            conn,
            &org.id,
            Some(CaseState::Escalated.as_str()),
            None,
            cursor.as_ref(),
            COMMITTEE_PAGE,
        )?;
        let views = page.rows.iter().map(|c| case_view(conn, &s, c)).collect::<Result<Vec<_>, _>>()?;
        Ok((views, page.next))
    })
    .await;
    match result {
        Ok((views, next)) => staff_page(
            &state,
            &session,
            StatusCode::OK,
            "staff/committee",
            "Escalated to the committee",
            json!({
                "cases": views, "max_words": validate::WORDS_MAX,
                "next_page": next.map(|c| format!("/staff/committee?cursor={}", c.encode())),
                "first_page": raw_cursor.map(|_| "/staff/committee"),
            }),
        ),
        Err(e) => staff_error(&state, &session, e),
    }
}

/// A case form with one text field (`field`): checks the CSRF token, runs `step` with that
/// field's words, and finishes as every case step does.
async fn one_field_step(
    state: web::Data<AppState>,
    session: Session,
    reference: String,
    form: HashMap<String, String>,
    field: &'static str,
    step: fn(
        &mut DbConnection,
        &services::Services,
        &services::StaffContext,
        &str,
        Option<&str>,
    ) -> AppResult<CaseRow>,
) -> HttpResponse {
    if let Err(e) = session.check_csrf(form.get("csrf").map(String::as_str)) {
        return staff_error(&state, &session, e);
    }
    let staff = session.staff().expect("an organisation is chosen");
    let svc = state.services.clone();
    let (r, words) = (reference.clone(), form.get(field).cloned());
    let result = db::run(&state.pool, move |conn| step(conn, &svc, &staff, &r, words.as_deref())).await;
    finish_case_step(&state, &session, reference, field, &form, result).await
}

async fn request_info(
    state: web::Data<AppState>,
    Staff(session): Staff,
    path: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    one_field_step(
        state,
        session,
        path.into_inner(),
        form.into_inner(),
        "question",
        |conn, svc, staff, r, words| services::request_info(conn, svc, staff, r, words, Utc::now()),
    )
    .await
}

async fn add_note(
    state: web::Data<AppState>,
    Staff(session): Staff,
    path: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    one_field_step(
        state,
        session,
        path.into_inner(),
        form.into_inner(),
        "note",
        |conn, svc, staff, r, words| {
            services::add_note(conn, svc, staff, r, words, Utc::now())?;
            services::find_case(conn, &staff.org, r)
        },
    )
    .await
}

/// Revokes the case's private links and sends a new one; with no address to send it to, shows
/// it once for staff to hand over.
async fn reissue_link(
    state: web::Data<AppState>,
    Staff(session): Staff,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> HttpResponse {
    if let Err(e) = session.check_csrf(form.csrf.as_deref()) {
        return staff_error(&state, &session, e);
    }
    let staff = session.staff().expect("an organisation is chosen");
    let svc = state.services.clone();
    let reference = path.into_inner();
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
                    json!({ "reference": done.case.reference, "link": link, "reissued": true }),
                ),
                None => see_other(&format!("/staff/cases/{}", done.case.reference)),
            }
        }
        Err(e) => staff_error(&state, &session, e),
    }
}

/// After a step on the case page: to the case on success, the form again with its errors and
/// answers when the input was refused, an error page otherwise.
async fn finish_case_step(
    state: &AppState,
    session: &Session,
    reference: String,
    form_name: &str,
    form: &HashMap<String, String>,
    result: Result<CaseRow, AppError>,
) -> HttpResponse {
    match result {
        Ok(case) => {
            state.outbox_wake.notify_one();
            see_other(&format!("/staff/cases/{}", case.reference))
        }
        Err(AppError::Validation(errors)) => {
            let s = session.clone();
            let view = db::run(&state.pool, move |conn| {
                let case = services::find_case(conn, org_of(&s), &reference)?;
                case_view(conn, &s, &case)
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
