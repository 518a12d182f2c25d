//! Pages that fail, and the staff extractors that hand back a page error rather than a bare
//! status: handlers return `Page` and use `?`; what the person sees is drawn where the error
//! is made, with the state and the session at hand.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use actix_web::http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};

use super::session::{Refusal, Staff, StaffSession};
use super::AppState;
use crate::db::{self, DbConnection};
use crate::domain::Role;
use crate::error::{AppError, AppResult, FieldErrors};

/// What a page handler returns.
pub type Page = Result<HttpResponse, PageError>;

/// A page that could not be done, already drawn: its status, its HTML and the error behind it.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    html: String,
    retry_after: Option<u64>,
    cause: AppError,
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.cause)
    }
}

impl std::error::Error for PageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status)
            .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
            .body(self.html.clone());
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl PageError {
    /// Keeps a page already drawn for an error (its body must be the error page's HTML).
    pub fn drawn(cause: AppError, status: StatusCode, html: String) -> Self {
        let retry_after = match &cause {
            AppError::TooMany(_, secs) => Some(*secs),
            AppError::Unavailable(_) => Some(5),
            _ => None,
        };
        PageError { status, html, retry_after, cause }
    }

    /// An error on a staff page, within the staff layout.
    pub fn staff(state: &AppState, session: &crate::auth::Session, cause: AppError) -> Self {
        cause.log_if_internal("staff page failed");
        let status = cause.status_code();
        let title = match status.as_u16() {
            404 => "Not found",
            403 => "Not allowed",
            409 => "This cannot be done now",
            _ => "Sorry, there is a problem",
        };
        let html = staff_error_html(state, session, title, &cause.public_message(), &[Link::work_queue()]);
        Self::drawn(cause, status, html)
    }
}

/// A way on from an error page: where it leads and what it says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Link {
    pub href: String,
    pub text: &'static str,
}

impl Link {
    pub fn home() -> Self {
        Link { href: "/".into(), text: "Go to the home page" }
    }

    pub fn work_queue() -> Self {
        Link { href: "/staff".into(), text: "Go to the work queue" }
    }
}

/// The staff error page's view.
#[derive(serde::Serialize)]
struct ErrorPage<'a> {
    title: &'a str,
    staff: super::staff::Chrome<'a>,
    message: &'a str,
    links: &'a [Link],
}

/// The staff error page, within the staff layout, with its ways on.
pub fn staff_error_html(
    state: &AppState,
    session: &crate::auth::Session,
    title: &str,
    message: &str,
    links: &[Link],
) -> String {
    let context = ErrorPage { title, staff: super::staff::chrome(session), message, links };
    match state.pages.render("staff/error", &context) {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "the staff error page did not render");
            "Sorry, this page could not be shown.".into()
        }
    }
}

/// A staff member at work in an organisation, with what the pages need to answer them.
pub struct StaffPage {
    pub state: web::Data<AppState>,
    pub session: StaffSession,
}

impl StaffPage {
    /// Runs `f` on a pooled connection; an error becomes the staff error page.
    pub async fn run<T, F>(&self, f: F) -> Result<T, PageError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> AppResult<T> + Send + 'static,
    {
        db::run(&self.state.pool, f).await.map_err(|e| self.fail(e))
    }

    /// As `run`, for a change made from a form: input refused (a validation error, or a
    /// conflict, shown on `conflict_field`) comes back as the form's errors, to draw the form
    /// again; anything else is an error page.
    pub async fn attempt<T, F>(&self, conflict_field: &str, f: F) -> Result<Result<T, FieldErrors>, PageError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> AppResult<T> + Send + 'static,
    {
        match db::run(&self.state.pool, f).await {
            Ok(done) => Ok(Ok(done)),
            Err(AppError::Validation(errors)) => Ok(Err(errors)),
            Err(AppError::Conflict(m)) => Ok(Err(FieldErrors::from([(conflict_field.to_string(), m)]))),
            Err(e) => Err(self.fail(e)),
        }
    }

    pub fn fail(&self, cause: AppError) -> PageError {
        PageError::staff(&self.state, &self.session, cause)
    }

    /// A staff page within the staff layout, from the page's own view.
    pub fn page(
        &self,
        status: StatusCode,
        template: &str,
        title: &str,
        view: impl serde::Serialize,
    ) -> HttpResponse {
        super::staff::staff_page_after(
            &self.state,
            &self.session,
            self.session.done,
            status,
            template,
            title,
            view,
        )
    }
}

fn staff_page_of(req: &HttpRequest) -> Pin<Box<dyn Future<Output = Result<StaffPage, Refusal>>>> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let staff = Staff::extract(req);
    Box::pin(async move {
        let Staff(session) = staff.await?;
        let state = state.ok_or_else(|| Refusal::Failed(AppError::Internal("no app state".into())))?;
        Ok(StaffPage { state, session })
    })
}

/// An admin of the chosen organisation, for the admin's pages.
pub struct Admin(pub StaffPage);

impl std::ops::Deref for Admin {
    type Target = StaffPage;
    fn deref(&self) -> &StaffPage {
        &self.0
    }
}

impl FromRequest for Admin {
    type Error = Refusal;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let page = staff_page_of(req);
        Box::pin(async move {
            let page = page.await?;
            page.session.require(&[Role::Admin]).map_err(|e| Refusal::Page(page.fail(e)))?;
            Ok(Admin(page))
        })
    }
}

/// An admin's change: the form, its CSRF token checked (before the role, as every staff form).
pub struct AdminForm(pub StaffPage, pub HashMap<String, String>);

impl AdminForm {
    /// The form's value of `key`, or nothing.
    pub fn get(&self, key: &str) -> String {
        self.1.get(key).cloned().unwrap_or_default()
    }
}

impl std::ops::Deref for AdminForm {
    type Target = StaffPage;
    fn deref(&self) -> &StaffPage {
        &self.0
    }
}

impl FromRequest for AdminForm {
    type Error = Refusal;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let page = staff_page_of(req);
        let form = web::Form::<HashMap<String, String>>::from_request(req, payload);
        Box::pin(async move {
            let page = page.await?;
            let form = form.await.map_err(Refusal::Other)?.into_inner();
            let allowed = page
                .session
                .check_csrf(form.get("csrf").map(String::as_str))
                .and_then(|()| page.session.require(&[Role::Admin]));
            allowed.map_err(|e| Refusal::Page(page.fail(e)))?;
            Ok(AdminForm(page, form))
        })
    }
}

/// One option of a select or a radio group, for a page's view.
#[derive(Debug, serde::Serialize)]
pub struct Choice {
    pub value: &'static str,
    pub label: String,
    pub selected: bool,
}
