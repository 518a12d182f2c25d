//! First-run setup, signing in and out, and choosing an organisation.

use super::session::{self, SignedIn};
use super::{form_errors, page_error, AppState};
use crate::auth::{self, SetupInput};
use crate::db::{self};
use crate::error::{AppError, FieldErrors};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;

use super::*;
use crate::web::banner::{Banner, Done};

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

#[derive(serde::Serialize)]
struct SetupView<'a> {
    title: &'a str,
    csrf: &'a str,
    values: &'a SetupInput,
    #[serde(flatten)]
    form: Value,
}

#[derive(serde::Serialize)]
struct SignInView<'a> {
    title: &'a str,
    csrf: &'a str,
    email: &'a str,
    banner: Option<Banner>,
    #[serde(flatten)]
    form: Value,
}

#[derive(serde::Serialize)]
struct OrgsView<'a> {
    orgs: Vec<OrgChoice<'a>>,
}

/// An organisation the signed-in person belongs to, with their roles there.
#[derive(serde::Serialize)]
struct OrgChoice<'a> {
    slug: &'a str,
    name: &'a str,
    roles: String,
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
        &SetupView { title, csrf: &csrf, values, form: form_errors(errors, SETUP_FIELDS) },
    );
    if let Some(c) = cookie {
        let _ = response.add_cookie(&c);
    }
    response
}

pub(super) async fn setup_form(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
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
pub(super) struct WithCsrf<T> {
    csrf: Option<String>,
    #[serde(flatten)]
    inner: T,
}

pub(super) async fn setup_submit(
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
        Ok(()) => see_other(&Done::SetUp.at("/sign-in")),
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
pub(super) struct SignInForm {
    email: String,
    password: String,
}

fn sign_in_page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    email: &str,
    errors: &FieldErrors,
    done: Option<Done>,
) -> HttpResponse {
    let (csrf, cookie) = session::anonymous_csrf(req, state.secure_cookies);
    let title = if errors.is_empty() { "Sign in" } else { "Error: Sign in" };
    let mut response = state.pages.render_response(
        status,
        "sign_in",
        &SignInView {
            title,
            csrf: &csrf,
            email,
            banner: done.map(Done::banner),
            form: form_errors(errors, &[("email", "Email address"), ("password", "Password")]),
        },
    );
    if let Some(c) = cookie {
        let _ = response.add_cookie(&c);
    }
    response
}

pub(super) async fn sign_in_form(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if let Ok(true) = db::run(&state.pool, auth::setup_needed).await {
        return see_other("/setup");
    }
    sign_in_page(&state, &req, StatusCode::OK, "", &FieldErrors::new(), Done::of(&req))
}

pub(super) async fn sign_in_submit(
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
    let account = candidate.user.as_ref().map_or_else(|| "unknown".to_string(), |u| u.id.to_string());
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
pub(super) struct CsrfOnly {
    pub(super) csrf: Option<String>,
}

pub(super) async fn sign_out(
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
        .insert_header(("Location", Done::SignedOut.at("/sign-in")))
        .cookie(session::expired_session_cookie(state.secure_cookies))
        .finish()
}

pub(super) async fn choose_org(state: web::Data<AppState>, SignedIn(session): SignedIn) -> HttpResponse {
    let user_id = session.user.id.clone();
    match db::run(&state.pool, move |conn| auth::memberships_of(conn, &user_id)).await {
        Ok(orgs) => {
            let list: Vec<OrgChoice> = orgs
                .iter()
                .map(|(o, roles)| OrgChoice {
                    slug: &o.slug,
                    name: &o.name,
                    roles: roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
                })
                .collect();
            staff_page(
                &state,
                &session,
                StatusCode::OK,
                "staff/orgs",
                "Choose an organisation",
                OrgsView { orgs: list },
            )
        }
        Err(e) => staff_error(&state, &session, e),
    }
}

#[derive(Deserialize)]
pub(super) struct ChooseOrgForm {
    csrf: Option<String>,
    org: Option<String>,
}

pub(super) async fn choose_org_submit(
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
