//! Answers for what no handler answers, and for errors that come back without a page of their
//! own: every address a browser can open answers with a page that says what happened and
//! offers a way on, and every address under `/api/` answers with the API's JSON error.

use std::collections::HashSet;
use std::sync::LazyLock;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ResourceDef, ServiceRequest, ServiceResponse};
use actix_web::http::header::{
    HeaderName, HeaderValue, ALLOW, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE,
};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};

use super::render::Link;
use super::session::{Refusal, SignedIn};
use super::{error_title, public_error_page, AppState};
use crate::error::AppError;

/// Every route's method and pattern, compiled once: a path no route took is matched against
/// them to tell a wrong method (405) from an unknown address (404), and to find the nearest
/// page to send someone back to.
static ROUTES: LazyLock<Vec<(Method, &'static str, ResourceDef)>> = LazyLock::new(|| {
    super::all_routes()
        .into_iter()
        .filter_map(|(method, pattern)| {
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).ok()?;
            Some((method, pattern, ResourceDef::new(pattern)))
        })
        .collect()
});

fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

fn is_staff(path: &str) -> bool {
    path == "/staff" || path.starts_with("/staff/")
}

/// The methods the routes matching `path` take, in the order the routes are declared.
fn allowed_methods(path: &str) -> Vec<Method> {
    let mut methods: Vec<Method> = Vec::new();
    for (method, _, def) in ROUTES.iter() {
        if def.is_match(path) && !methods.contains(method) {
            methods.push(method.clone());
        }
    }
    methods
}

/// What a link to a page says, by the page's route pattern. Only pages someone can be sent
/// back to are named; a unit test keeps every GET page in this list.
fn page_link_text(pattern: &str) -> Option<&'static str> {
    Some(match pattern {
        "/" => "Go to the home page",
        "/setup" => "Go to the set-up page",
        "/sign-in" => "Go to the sign-in page",
        "/orgs" => "Go to your organisations",
        "/staff" => "Go to the work queue",
        "/staff/removals/new" => "Go to the form for recording a removal",
        "/staff/cases/{reference}" => "Go back to the case",
        "/staff/committee" => "Go to the committee's cases",
        "/staff/admin" => "Go to the organisation's settings",
        "/staff/admin/rules" => "Go to the policy rules",
        "/staff/admin/rules/{code}" => "Go back to the rule",
        "/staff/admin/users" => "Go to staff and roles",
        "/staff/admin/tokens" => "Go to the API tokens",
        "/staff/admin/tokens/{id}/revoke" => "Go back to revoking the token",
        "/staff/admin/log" => "Go to the organisation's log",
        "/c/{token}" => "Go back to your case",
        "/o/{slug}/report" => "Go to the complaint form",
        "/o/{slug}" => "Go to how complaints and appeals are handled",
        "/o/{slug}/accessibility" => "Go to the accessibility statement",
        "/staff/admin/accessibility" => "Go to the accessibility statement",
        "/staff/admin/public-note" => "Go to the public note",
        "/staff/admin/reasons" => "Go to the saved reasons",
        "/staff/admin/reasons/{id}" => "Go back to the saved reason",
        _ => return None,
    })
}

/// The text of a link to `path` when it is a page that can be opened.
fn page_at(path: &str) -> Option<&'static str> {
    let (_, pattern, _) =
        ROUTES.iter().find(|(method, _, def)| *method == Method::GET && def.is_match(path))?;
    page_link_text(pattern)
}

/// The nearest page above `path`, worked out from the path alone: a form's address with its
/// last segment taken off is the page the form is on (`/staff/cases/X/notes` is on
/// `/staff/cases/X`). With `include_self`, `path` itself counts (a page sent a form it does
/// not take), and so does `path/new`, where a list keeps its form for a new entry.
///
/// `path` is the decoded path the router matched; the link is cut from `raw`, the path as
/// sent, so that a character decoded for matching (`%3F`, say) is not sent back decoded.
fn nearest_page(raw: &str, path: &str, include_self: bool) -> Option<Link> {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let raw_segments: Vec<&str> = raw.split('/').skip(1).collect();
    if segments.len() != raw_segments.len() {
        return None;
    }
    let longest = if include_self { segments.len() } else { segments.len().saturating_sub(1) };
    for n in (1..=longest).rev() {
        let candidate = format!("/{}", segments[..n].join("/"));
        let href = format!("/{}", raw_segments[..n].join("/"));
        if include_self && n == segments.len() {
            if let Some(text) = page_at(&format!("{candidate}/new")) {
                return Some(Link { href: format!("{href}/new"), text });
            }
        }
        if let Some(text) = page_at(&candidate) {
            return Some(Link { href, text });
        }
    }
    None
}

/// The ways on from an error at `path`: the nearest page, the work queue for a staff address,
/// and always the home page, each once.
pub fn way_on(raw: &str, path: &str, status: StatusCode) -> Vec<Link> {
    let mut links: Vec<Link> = Vec::new();
    let mut add = |link: Link| {
        if !links.iter().any(|l| l.href == link.href) {
            links.push(link);
        }
    };
    if let Some(link) = nearest_page(raw, path, status == StatusCode::METHOD_NOT_ALLOWED) {
        add(link);
    }
    if is_staff(path) {
        add(Link::work_queue());
    }
    add(Link::home());
    links
}

/// What an error page says when there is nothing more particular to say.
fn default_message(status: StatusCode, method: &Method) -> &'static str {
    match status.as_u16() {
        400 | 415 => "Go back, reload the page and try again.",
        401 | 403 => "You are not allowed to do this.",
        404 => {
            "There is no page at this address. If you typed the address, check it; if you followed a \
             link, it may be out of date."
        }
        405 if matches!(*method, Method::GET | Method::HEAD) => {
            "This address is where a form is sent, so it cannot be opened on its own. Nothing has been \
             sent or changed."
        }
        405 => "This page cannot take what was sent to it. Nothing has been changed.",
        413 => "Make what you wrote shorter and try again.",
        429 => "Wait a few minutes and try again.",
        500..=599 => "Something went wrong on our side; nothing was changed. Please try again.",
        _ => "This could not be done. Go back and try again.",
    }
}

/// The API's word for an error of this status, as `AppError::kind` and `json_error` name them.
fn api_kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        413 => "too_large",
        415 => "content_type",
        422 => "validation",
        429 => "too_many_requests",
        503 => "unavailable",
        500..=599 => "internal",
        _ => "bad_request",
    }
}

/// The API's error body for a status.
fn api_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "error": api_kind(status), "message": message }))
}

/// The public error page for `req`, with the ways on worked out from its path.
pub fn public_page(req: &HttpRequest, status: StatusCode, message: Option<&str>) -> HttpResponse {
    let message = message.unwrap_or_else(|| default_message(status, req.method()));
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return HttpResponse::build(status)
            .content_type("text/plain; charset=utf-8")
            .body(message.to_string());
    };
    let links = way_on(req.path(), req.match_info().as_str(), status);
    public_error_page(state, status, error_title(status), message, &links)
}

/// The default service: no route took the request. A path that some route matches with
/// another method is a 405 naming the methods it takes; any other is a 404.
pub async fn not_routed(req: HttpRequest) -> HttpResponse {
    let path = req.match_info().as_str().to_string();
    let allowed = allowed_methods(&path);
    let status = if allowed.is_empty() { StatusCode::NOT_FOUND } else { StatusCode::METHOD_NOT_ALLOWED };
    let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
    let mut response = if is_api(&path) {
        let message = if allowed.is_empty() {
            "There is no such address in the API.".to_string()
        } else {
            format!("This address does not take {}; it takes {allow}.", req.method())
        };
        api_error(status, &message)
    } else {
        staff_page(&req, &path, status).await.unwrap_or_else(|| public_page(&req, status, None))
    };
    if let (false, Ok(value)) = (allowed.is_empty(), HeaderValue::from_str(&allow)) {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}

/// For someone signed in, an unknown staff address keeps them within the staff pages.
async fn staff_page(req: &HttpRequest, path: &str, status: StatusCode) -> Option<HttpResponse> {
    if !is_staff(path) {
        return None;
    }
    let state = req.app_data::<web::Data<AppState>>()?;
    let SignedIn(session) = SignedIn::extract(req).await.ok()?;
    let links = way_on(req.path(), path, status);
    let message = default_message(status, req.method());
    let html = super::render::staff_error_html(state, &session, error_title(status), message, &links);
    Some(HttpResponse::build(status).content_type("text/html; charset=utf-8").body(html))
}

/// What may be shown of the error behind an answer: the public message of ours, nothing of
/// another's (an extractor's words are not written for the person reading the page).
fn public_message(err: &actix_web::Error) -> Option<String> {
    if let Some(e) = err.as_error::<AppError>() {
        return Some(e.public_message());
    }
    match err.as_error::<Refusal>() {
        Some(Refusal::Failed(e)) => Some(e.public_message()),
        _ => None,
    }
}

/// Middleware: an error answered without a body of the right kind (none, plain text, or JSON
/// on a page) gets the error page, or under `/api/` the API's JSON error. Headers the first
/// answer set (Retry-After, WWW-Authenticate, Set-Cookie) are kept.
pub async fn error_bodies(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    let status = res.status();
    if !status.is_client_error() && !status.is_server_error() {
        return Ok(res.map_into_boxed_body());
    }
    let path = res.request().match_info().as_str().to_string();
    let api = is_api(&path);
    let content_type = res.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let wanted = if api { "application/json" } else { "text/html" };
    if content_type.starts_with(wanted) {
        return Ok(res.map_into_boxed_body());
    }
    let message = res.response().error().and_then(public_message);
    let mut answer = if api {
        api_error(
            status,
            message.as_deref().unwrap_or_else(|| default_message(status, res.request().method())),
        )
    } else {
        public_page(res.request(), status, message.as_deref())
    };
    let (req, old) = res.into_parts();
    let own: HashSet<HeaderName> = answer.headers().keys().cloned().collect();
    for (name, value) in old.headers() {
        if ![CONTENT_TYPE, CONTENT_LENGTH, CONTENT_ENCODING].contains(name) && !own.contains(name) {
            answer.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(ServiceResponse::new(req, answer))
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;

    use super::*;

    fn hrefs(raw: &str, status: StatusCode) -> Vec<String> {
        way_on(raw, raw, status).into_iter().map(|l| l.href).collect()
    }

    #[test]
    fn every_page_has_words_for_a_link_to_it() {
        let unnamed: Vec<&str> = super::super::all_routes()
            .into_iter()
            // Assets are not pages, and the API answers JSON, never a page with links.
            .filter(|(m, p)| *m == "get" && !p.starts_with("/assets/") && !is_api(p))
            .filter(|(_, p)| page_link_text(p).is_none())
            .map(|(_, p)| p)
            .collect();
        assert!(unnamed.is_empty(), "pages with no words for a link back to them: {unnamed:?}");
    }

    #[test]
    fn a_wrong_method_is_told_from_an_unknown_address() {
        assert_eq!(allowed_methods("/staff/cases/PEN-1/notes"), [Method::POST]);
        assert_eq!(allowed_methods("/o/penrith/report"), [Method::GET, Method::POST]);
        assert!(allowed_methods("/staff/cases/PEN-1/nothing").is_empty());
        assert!(allowed_methods("/nothing").is_empty());
    }

    #[test]
    fn a_form_address_leads_back_to_the_page_the_form_is_on() {
        let not_allowed = StatusCode::METHOD_NOT_ALLOWED;
        assert_eq!(hrefs("/staff/cases/PEN-1/response", not_allowed), ["/staff/cases/PEN-1", "/staff", "/"]);
        assert_eq!(hrefs("/c/abc/appeal", not_allowed), ["/c/abc", "/"]);
        assert_eq!(hrefs("/staff/removals", not_allowed), ["/staff/removals/new", "/staff", "/"]);
        assert_eq!(
            hrefs("/staff/admin/users/u1/remove-role", not_allowed),
            ["/staff/admin/users", "/staff", "/"]
        );
        assert_eq!(hrefs("/sign-out", not_allowed), ["/"]);
        // A page sent a form it does not take leads back to itself.
        assert_eq!(hrefs("/staff/committee", not_allowed), ["/staff/committee", "/staff", "/"]);
    }

    #[test]
    fn an_unknown_address_leads_to_the_nearest_page_above_it() {
        let not_found = StatusCode::NOT_FOUND;
        assert_eq!(hrefs("/nothing/here", not_found), ["/"]);
        assert_eq!(hrefs("/staff/nothing", not_found), ["/staff", "/"]);
        assert_eq!(hrefs("/staff/cases/PEN-1/nothing", not_found), ["/staff/cases/PEN-1", "/staff", "/"]);
        assert_eq!(hrefs("/staff/cases/PEN-1/", not_found), ["/staff/cases/PEN-1", "/staff", "/"]);
        assert_eq!(hrefs("/c/abc/nothing", not_found), ["/c/abc", "/"]);
        // The address itself is never offered as the way on from its own 404.
        assert_eq!(hrefs("/staff/cases/PEN-1", not_found), ["/staff", "/"]);
    }

    #[test]
    fn a_link_back_keeps_the_path_as_it_was_sent() {
        let links = way_on("/c/a%3Fb/nothing", "/c/a?b/nothing", StatusCode::NOT_FOUND);
        assert_eq!(links[0].href, "/c/a%3Fb");
    }
}
