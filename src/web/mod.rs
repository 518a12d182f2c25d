//! The HTTP edge: shared state, routes, and the JSON error handling every route shares.

/// Declares a module's routes once, so the list the access-matrix test checks and what the
/// server registers cannot drift apart.
macro_rules! routes {
    ($($method:ident $path:literal => $handler:expr),* $(,)?) => {
        /// Every route of this module: method and path pattern.
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
            $(
                cfg.route($path, actix_web::web::$method().to($handler));
                // A page answers HEAD as it answers GET (the server sends no body), as
                // link checkers and monitors expect.
                if stringify!($method) == "get" {
                    cfg.route($path, actix_web::web::head().to($handler));
                }
            )*
        }
    };
}

pub mod admin;
pub mod api;
pub mod assets;
pub mod banner;
pub mod edge;
pub mod fallback;
pub mod headers;
pub mod pages;
pub mod procedure;
pub mod public;
pub mod reasons;
pub mod render;
pub mod session;
pub mod staff;

use std::sync::Arc;

use actix_web::error::{JsonPayloadError, UrlencodedError};
use actix_web::{web, HttpRequest, HttpResponse};
use tokio::sync::Notify;

use crate::db::DbPool;
use crate::error::AppError;
use crate::services::Services;

/// Largest body accepted. Big enough that an over-long field gets a 422 naming it, rather than
/// the whole request being cut off.
pub const BODY_LIMIT: usize = 256 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub pool: DbPool,
    pub services: Arc<Services>,
    pub pages: Arc<pages::Pages>,
    /// Woken after every change that queued email, so mail goes out at once.
    pub outbox_wake: Arc<Notify>,
    /// Served over HTTPS: cookies are Secure and take the `__Host-` prefix.
    pub secure_cookies: bool,
    /// Take the client's address from X-Forwarded-For (set by a trusted reverse proxy).
    pub trust_proxy: bool,
    pub limits: Arc<crate::security::Limits>,
    pub hash_pool: Arc<crate::security::HashPool>,
}

impl AppState {
    pub fn client_addr(&self, req: &HttpRequest) -> std::net::IpAddr {
        crate::security::client_addr(req, self.trust_proxy)
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().limit(BODY_LIMIT).error_handler(json_error))
        .app_data(web::FormConfig::default().limit(BODY_LIMIT).error_handler(form_error))
        .app_data(web::PayloadConfig::default().limit(BODY_LIMIT))
        // Routes are tried in order: the public case pages, the busiest, come first. No
        // pattern of one module can match another's paths, so the order changes nothing else.
        .configure(public::routes)
        .configure(api::routes)
        .configure(staff::routes)
        .configure(admin::routes)
        .configure(procedure::routes)
        .configure(reasons::routes)
        .configure(assets::routes)
        // A page for every address no route takes (JSON under /api/), so nothing a browser
        // opens answers with an empty body.
        .default_service(web::to(fallback::not_routed));
}

/// Every route the server answers, as (lower-case method, path pattern).
pub fn all_routes() -> Vec<(&'static str, &'static str)> {
    [
        api::ROUTES,
        public::ROUTES,
        staff::ROUTES,
        admin::ROUTES,
        procedure::ROUTES,
        reasons::ROUTES,
        assets::ROUTES,
    ]
    .concat()
}

fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let (status, kind, message) = match &err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => (
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body is larger than {} KiB", BODY_LIMIT / 1024),
        ),
        JsonPayloadError::ContentType => (
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
            "send JSON with Content-Type: application/json".into(),
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => (
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            format!("the JSON does not have the expected shape: {e}"),
        ),
        JsonPayloadError::Deserialize(e) => {
            (actix_web::http::StatusCode::BAD_REQUEST, "bad_json", format!("the body is not valid JSON: {e}"))
        }
        other => (actix_web::http::StatusCode::BAD_REQUEST, "bad_request", other.to_string()),
    };
    let body = serde_json::json!({ "error": kind, "message": message });
    actix_web::error::InternalError::from_response(err, HttpResponse::build(status).json(body)).into()
}

fn form_error(err: UrlencodedError, req: &HttpRequest) -> actix_web::Error {
    let (status, message) = match &err {
        UrlencodedError::Overflow { .. } => (
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            "The form is larger than we can accept. Make what you wrote shorter and try again.",
        ),
        _ => (
            actix_web::http::StatusCode::BAD_REQUEST,
            "The form could not be read. Go back, reload the page and try again.",
        ),
    };
    actix_web::error::InternalError::from_response(err, fallback::public_page(req, status, Some(message)))
        .into()
}

/// A form's errors for a template: `errors` maps each field to a whole sentence (its label and
/// what is wrong), `error_list` gives them in the order of the form for the error summary.
pub fn form_errors(errors: &crate::error::FieldErrors, labels: &[(&str, &str)]) -> serde_json::Value {
    let sentence = |field: &str, message: &str| {
        // A message that is already a sentence stands alone.
        if message.starts_with(char::is_uppercase) {
            return message.to_string();
        }
        let label = labels.iter().find(|(f, _)| *f == field).map(|(_, l)| *l).unwrap_or(field);
        format!("{label} {message}")
    };
    let mut keys: Vec<&String> = errors.keys().collect();
    keys.sort_by_key(|k| labels.iter().position(|(f, _)| f == k).unwrap_or(usize::MAX));
    let list: Vec<serde_json::Value> =
        keys.iter().map(|k| serde_json::json!({ "field": k, "message": sentence(k, &errors[*k]) })).collect();
    let map: serde_json::Map<String, serde_json::Value> =
        errors.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(sentence(k, v)))).collect();
    serde_json::json!({ "errors": map, "error_list": list })
}

/// Turns an error into an HTML page for people using the public pages.
pub fn page_error(state: &AppState, err: AppError) -> HttpResponse {
    use actix_web::ResponseError;
    err.log_if_internal("page request failed");
    let status = err.status_code();
    let retry_after = match &err {
        AppError::TooMany(_, secs) => Some(*secs),
        AppError::Unavailable(_) => Some(5),
        _ => None,
    };
    let mut response =
        public_error_page(state, status, error_title(status), &err.public_message(), &[render::Link::home()]);
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, actix_web::http::header::HeaderValue::from(secs));
    }
    response
}

/// The public error page, with its ways on.
pub fn public_error_page(
    state: &AppState,
    status: actix_web::http::StatusCode,
    title: &str,
    message: &str,
    links: &[render::Link],
) -> HttpResponse {
    #[derive(serde::Serialize)]
    struct ErrorView<'a> {
        title: &'a str,
        message: &'a str,
        links: &'a [render::Link],
    }
    state.pages.render_response(status, "error", &ErrorView { title, message, links })
}

/// An error page's heading: what happened, in plain words.
pub fn error_title(status: actix_web::http::StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "Sorry, what was sent could not be read",
        401 | 403 => "Not allowed",
        404 => "Page not found",
        405 => "This page cannot be opened this way",
        409 => "This cannot be done now",
        413 => "What was sent is too large",
        422 => "There is a problem",
        429 => "Too many attempts",
        503 => "Service unavailable",
        _ => "Sorry, there is a problem",
    }
}
