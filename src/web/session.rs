//! Staff sessions at the HTTP edge: the cookie, the extractors that require a signed-in user,
//! and CSRF checks.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use chrono::Utc;

use super::AppState;
use crate::auth::{self, Session};
use crate::db;
use crate::domain::Role;
use crate::error::AppError;

/// The session cookie's name: the `__Host-` prefix (which pins it to this host, path / and
/// HTTPS) when served over HTTPS, a plain name otherwise, since browsers refuse the prefix
/// without Secure.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-redress_session"
    } else {
        "redress_session"
    }
}

/// The cookie for the double-submit check on forms used before signing in.
pub fn csrf_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-redress_csrf"
    } else {
        "redress_csrf"
    }
}

pub fn session_cookie(secure: bool, value: String) -> Cookie<'static> {
    Cookie::build(cookie_name(secure), value)
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .finish()
}

/// The cookie that marks a browser which has signed in to an account before; sign-in
/// throttling per account spares it (see `security::Limits`).
pub fn device_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-redress_device"
    } else {
        "redress_device"
    }
}

pub fn device_cookie(secure: bool, value: String) -> Cookie<'static> {
    Cookie::build(device_cookie_name(secure), value)
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .max_age(CookieDuration::seconds(auth::DEVICE_LIFETIME.num_seconds()))
        .finish()
}

pub fn expired_session_cookie(secure: bool) -> Cookie<'static> {
    let mut c = session_cookie(secure, String::new());
    c.set_max_age(CookieDuration::ZERO);
    c
}

/// Why a staff page cannot be shown yet.
#[derive(Debug)]
pub enum Refusal {
    SignIn,
    ChooseOrganisation,
    Failed(AppError),
    /// Refused with a page already drawn (the staff error page, say).
    Page(super::render::PageError),
    /// Refused by another extractor (a form that cannot be read).
    Other(actix_web::Error),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::SignIn => f.write_str("sign in required"),
            Refusal::ChooseOrganisation => f.write_str("choose an organisation"),
            Refusal::Failed(e) => write!(f, "{e}"),
            Refusal::Page(e) => write!(f, "{e}"),
            Refusal::Other(e) => write!(f, "{e}"),
        }
    }
}

impl ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        match self {
            Refusal::SignIn | Refusal::ChooseOrganisation => StatusCode::SEE_OTHER,
            Refusal::Failed(e) => e.status_code(),
            Refusal::Page(e) => e.status_code(),
            Refusal::Other(e) => e.as_response_error().status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Refusal::SignIn => HttpResponse::SeeOther().insert_header(("Location", "/sign-in")).finish(),
            Refusal::ChooseOrganisation => {
                HttpResponse::SeeOther().insert_header(("Location", "/orgs")).finish()
            }
            Refusal::Failed(e) => HttpResponse::build(e.status_code())
                .content_type("text/plain; charset=utf-8")
                .body(e.public_message()),
            Refusal::Page(e) => e.error_response(),
            Refusal::Other(e) => e.error_response(),
        }
    }
}

fn load_session(req: &HttpRequest) -> Pin<Box<dyn Future<Output = Result<Session, Refusal>>>> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let secret =
        state.as_ref().and_then(|s| req.cookie(cookie_name(s.secure_cookies))).map(|c| c.value().to_string());
    Box::pin(async move {
        let state = state.ok_or_else(|| Refusal::Failed(AppError::Internal("no app state".into())))?;
        let secret = secret.filter(|s| !s.is_empty()).ok_or(Refusal::SignIn)?;
        let session = db::run(&state.pool, move |conn| auth::load(conn, &secret, Utc::now()))
            .await
            .map_err(Refusal::Failed)?;
        let session = session.ok_or(Refusal::SignIn)?;
        super::edge::record_actor(&session.user.id);
        Ok(session)
    })
}

/// A signed-in staff member, whether or not they have chosen an organisation.
pub struct SignedIn(pub Session);

impl FromRequest for SignedIn {
    type Error = Refusal;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let fut = load_session(req);
        Box::pin(async move { fut.await.map(SignedIn) })
    }
}

/// A signed-in staff member working within an organisation.
pub struct Staff(pub StaffSession);

/// A signed-in session with an organisation chosen: what every staff page works in.
#[derive(Clone)]
pub struct StaffSession {
    session: Session,
    org: crate::store::Organisation,
    /// The change the page's address says was just made, to confirm.
    pub done: Option<super::banner::Done>,
}

impl StaffSession {
    pub fn org(&self) -> &crate::store::Organisation {
        &self.org
    }

    /// The staff context of the chosen organisation, for the use cases.
    pub fn staff(&self) -> crate::services::StaffContext {
        crate::services::StaffContext {
            user: self.session.user.clone(),
            org: self.org.clone(),
            roles: self.session.roles.clone(),
            token_issued_by: None,
        }
    }
}

impl std::ops::Deref for StaffSession {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

impl FromRequest for Staff {
    type Error = Refusal;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let fut = load_session(req);
        let done = super::banner::Done::of(req);
        Box::pin(async move {
            let session = fut.await?;
            let Some(org) = session.org.clone() else {
                return Err(Refusal::ChooseOrganisation);
            };
            Ok(Staff(StaffSession { session, org, done }))
        })
    }
}

impl Session {
    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, token: Option<&str>) -> Result<(), AppError> {
        if token.is_some_and(|t| constant_time_eq(t.as_bytes(), self.csrf.as_bytes())) {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "This form has expired or did not come from Redress. Go back, reload the page and try again."
                    .into(),
            ))
        }
    }

    pub fn require(&self, roles: &[Role]) -> Result<(), AppError> {
        if roles.iter().any(|r| self.has(*r)) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(AppError::Forbidden(format!("Only a {} can do this.", names.join(" or "))))
        }
    }
}

/// Checks the double-submit token of a form used before signing in.
pub fn check_anonymous_csrf(req: &HttpRequest, secure: bool, token: Option<&str>) -> Result<(), AppError> {
    let cookie = req.cookie(csrf_cookie_name(secure)).map(|c| c.value().to_string());
    match (cookie, token) {
        (Some(c), Some(t)) if !c.is_empty() && constant_time_eq(c.as_bytes(), t.as_bytes()) => Ok(()),
        _ => Err(AppError::Forbidden(
            "This form has expired or did not come from Redress. Go back, reload the page and try again."
                .into(),
        )),
    }
}

/// The double-submit token for a form used before signing in: the one already in the
/// browser's cookie, or a new one to set.
pub fn anonymous_csrf(req: &HttpRequest, secure: bool) -> (String, Option<Cookie<'static>>) {
    match req.cookie(csrf_cookie_name(secure)) {
        Some(c) if c.value().len() == 64 => (c.value().to_string(), None),
        _ => {
            let token = crate::security::new_secret();
            let cookie = Cookie::build(csrf_cookie_name(secure), token.clone())
                .path("/")
                .http_only(true)
                .secure(secure)
                .same_site(SameSite::Strict)
                .finish();
            (token, Some(cookie))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
