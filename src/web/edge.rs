//! What happens to every request before and after its handler: a request id, the span that
//! carries it (and the actor and case, once known) into every log line, throttling of wrong
//! private links and API tokens and of public reports, and one structured access-log line.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use tracing::Instrument;

use super::{page_error, AppState};
use crate::error::AppError;

/// The path as it may be logged: a private link is a password, so `/c/<secret>` becomes
/// `/c/…`; query strings are never logged.
pub fn loggable_path(path: &str) -> String {
    match path.strip_prefix("/c/") {
        Some(rest) => match rest.split_once('/') {
            Some((_, action)) => format!("/c/…/{action}"),
            None => "/c/…".into(),
        },
        None => path.to_string(),
    }
}

/// Records who is acting on the current request's span, for its log lines.
pub fn record_actor(actor: &str) {
    tracing::Span::current().record("actor", actor);
}

/// Records which case the current request is about.
pub fn record_case(reference: &str) {
    tracing::Span::current().record("case", reference);
}

fn wait_words(wait: std::time::Duration) -> String {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    format!("Wait {minutes} minute{} and try again.", if minutes == 1 { "" } else { "s" })
}

pub async fn edge(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().to_string();
    // The router matches the percent-decoded path (`/%63/…` is `/c/…`), so everything here
    // judges and logs that, never the raw one, which could be encoded to slip past.
    let decoded = req.match_info().as_str().to_string();
    let path = loggable_path(&decoded);
    let addr = state.as_ref().map(|s| s.client_addr(req.request()));
    let is_link = decoded.starts_with("/c/");
    // Only a request that offers a token can have offered a wrong one.
    let is_api_token =
        decoded.starts_with("/api/") && req.headers().contains_key(actix_web::http::header::AUTHORIZATION);
    let is_report = req.method() == actix_web::http::Method::POST
        && decoded.starts_with("/o/")
        && decoded.ends_with("/report");
    let span = tracing::info_span!(
        "request",
        id = %id,
        actor = tracing::field::Empty,
        case = tracing::field::Empty
    );
    let start = Instant::now();

    // A NUL in a path parameter could never match a stored key, and PostgreSQL refuses it even
    // in a query: it is "not found" before any handler looks it up.
    let refusal = if decoded.contains('\0') {
        Some(AppError::NotFound("There is no such page.".into()))
    } else {
        match (&state, addr) {
            (Some(state), Some(addr)) if is_link || is_api_token => {
                state.limits.links_refused_for(addr).map(|wait| {
                    let what = if is_link { "wrong links" } else { "wrong API tokens" };
                    AppError::TooMany(
                        format!("Too many {what} have been tried from your connection. {}", wait_words(wait)),
                        wait.as_secs().max(1),
                    )
                })
            }
            (Some(state), Some(addr)) if is_report => state.limits.reports_refused_for(addr).map(|wait| {
                AppError::TooMany(
                    format!(
                        "Many reports have been sent from your connection in the last hour, so we cannot take more for now. {}",
                        wait_words(wait)
                    ),
                    wait.as_secs().max(1),
                )
            }),
            _ => None,
        }
    };
    let mut res = match (refusal, &state) {
        (Some(refusal), Some(state)) => {
            let response = if decoded.starts_with("/api/") {
                actix_web::ResponseError::error_response(&refusal)
            } else {
                page_error(state, refusal)
            };
            req.into_response(response).map_into_boxed_body()
        }
        _ => next.call(req).instrument(span.clone()).await?.map_into_boxed_body(),
    };

    let status = res.status();
    if let (Some(state), Some(addr)) = (&state, addr) {
        if (is_link && status.as_u16() == 404) || (is_api_token && status.as_u16() == 401) {
            state.limits.wrong_link(addr);
        }
        if is_report && status.as_u16() == 201 {
            state.limits.report_accepted(addr);
        }
    }
    if let Some(reference) = res.request().match_info().get("reference") {
        span.record("case", reference);
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HeaderName::from_static("x-request-id"), value);
    }
    let ms = start.elapsed().as_millis() as u64;
    let client = addr.map(|a| a.to_string()).unwrap_or_default();
    let to_sign_in = status.as_u16() == 303
        && res.headers().get("location").is_some_and(|l| l.as_bytes() == b"/sign-in")
        && !matches!(path.as_str(), "/sign-in" | "/sign-out" | "/setup");
    span.in_scope(|| {
        if matches!(status.as_u16(), 401 | 403 | 404 | 429) || to_sign_in {
            tracing::warn!(event = "refused", %method, %path, status = status.as_u16(), %client, ms, "access refused");
        } else if status.is_server_error() {
            tracing::error!(event = "request", %method, %path, status = status.as_u16(), %client, ms, "request failed");
        } else {
            tracing::info!(event = "request", %method, %path, status = status.as_u16(), %client, ms, "request");
        }
    });
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn private_links_never_reach_the_log() {
        let secret = "ab".repeat(32);
        assert_eq!(loggable_path(&format!("/c/{secret}")), "/c/…");
        assert_eq!(loggable_path(&format!("/c/{secret}/appeal")), "/c/…/appeal");
        assert_eq!(loggable_path("/staff/cases/PEN-1"), "/staff/cases/PEN-1");
    }
}
