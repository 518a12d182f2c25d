//! Every address answers with something to read: an unknown address or a wrong method is a
//! styled page with a way on for a browser, and the API's JSON error under `/api/`; a form that
//! cannot be read is a page too, never plain text. The security headers are on all of them.

use crate::common::web::{Page, WebClient};
use crate::common::*;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";

/// One answer with its headers, which `WebClient` does not keep.
struct Answer {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }

    fn page(&self) -> Page {
        Page { status: self.status, location: None, body: self.body.clone() }
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends `method path`, with the session cookie of `web` if given, and a body of the given
/// content type if given.
fn send(
    app: &TestApp,
    web: Option<&WebClient>,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> Answer {
    let mut request = ureq::http::Request::builder().method(method).uri(app.url(path));
    if let Some(session) = web.and_then(|w| w.cookie("redress_session")) {
        request = request.header("Cookie", format!("redress_session={session}"));
    }
    let agent = http_agent();
    let response = match body {
        Some((content_type, bytes)) => {
            agent.run(request.header("Content-Type", content_type).body(bytes.to_vec()).unwrap())
        }
        None => agent.run(request.body(()).unwrap()),
    };
    let mut response = response.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    Answer { status, headers, body }
}

/// A page a person can read and leave: HTML with the site's stylesheet, a heading that says
/// something, no word of the API, the security headers, and each of `links` to follow on.
fn assert_error_page(answer: &Answer, status: u16, links: &[&str], label: &str) {
    assert_eq!(answer.status, status, "{label}: {}", answer.body);
    assert!(
        answer.header("content-type").starts_with("text/html"),
        "{label}: {:?}",
        answer.header("content-type")
    );
    assert!(!answer.header("content-security-policy").is_empty(), "{label}: no Content-Security-Policy");
    assert_eq!(answer.header("x-content-type-options"), "nosniff", "{label}");
    let page = answer.page();
    assert_eq!(page.attrs("link[rel=stylesheet]", "href"), ["/assets/app.css"], "{label}: no stylesheet");
    let headings = page.texts("h1");
    assert!(headings.len() == 1 && !headings[0].trim().is_empty(), "{label}: headings {headings:?}");
    let hrefs = page.attrs("main a", "href");
    for link in links {
        assert!(hrefs.iter().any(|h| h == link), "{label}: no link to {link} among {hrefs:?}");
    }
    for word in ["not_found", "method_not_allowed", "Not Found", "Method Not Allowed", "Urlencoded"] {
        assert!(!page.has(word), "{label}: {word:?} on the page");
    }
}

/// The API's error: JSON of its usual shape, with the security headers.
fn assert_api_error(answer: &Answer, status: u16, kind: &str, label: &str) {
    assert_eq!(answer.status, status, "{label}: {}", answer.body);
    assert!(
        answer.header("content-type").starts_with("application/json"),
        "{label}: {:?}",
        answer.header("content-type")
    );
    assert!(!answer.header("content-security-policy").is_empty(), "{label}: no Content-Security-Policy");
    let body = answer.json();
    assert_eq!(body["error"], kind, "{label}: {body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{label}: {body}");
}

/// A case with its private link (the path of it) and its reference.
fn a_case(app: &TestApp, cast: &Cast) -> (String, String) {
    let (status, case) = app.record_removal(&cast.moderator, json!({"author_email": "pat@poster.example"}));
    assert_eq!(status, 201, "{case}");
    let link = app.mail_to("pat@poster.example", "your post was removed").link().unwrap();
    (path_of(&link), case["reference"].as_str().unwrap().to_string())
}

fn signed_in(app: &TestApp, email: &str) -> WebClient {
    app.set_password(email, PASSWORD);
    let web = WebClient::new(&app.base_url);
    web.sign_in(email, PASSWORD);
    web
}

#[test]
fn unknown_addresses_are_pages_with_a_way_on() {
    let app = TestApp::start();
    let cast = app.setup();
    let (case_link, reference) = a_case(&app, &cast);

    let answer = send(&app, None, "GET", "/no/such/page", None);
    assert_error_page(&answer, 404, &["/"], "an unknown public address");
    assert!(answer.page().texts("h1")[0].contains("not found"), "{}", answer.body);

    // Under a private link, the way on is back to the case itself, which opens.
    let answer = send(&app, None, "GET", &format!("{case_link}/nothing"), None);
    assert_error_page(&answer, 404, &[&case_link, "/"], "an unknown address under a private link");
    assert_eq!(app.get_page(&case_link).0, 200);

    // Not signed in, an unknown staff address is a page with the work queue and home.
    let answer = send(&app, None, "GET", "/staff/nothing-here", None);
    assert_error_page(&answer, 404, &["/staff", "/"], "an unknown staff address, signed out");

    // Signed in, it is within the staff pages (their menu and sign-out), with the same ways on.
    let web = signed_in(&app, MODERATOR);
    let answer = send(&app, Some(&web), "GET", "/staff/nothing-here", None);
    assert_error_page(&answer, 404, &["/staff", "/"], "an unknown staff address, signed in");
    assert!(answer.page().has("Sign out") && answer.page().has("Mo Derator"), "{}", answer.body);
    let case_page = format!("/staff/cases/{reference}");
    let answer = send(&app, Some(&web), "GET", &format!("{case_page}/nothing"), None);
    assert_error_page(&answer, 404, &[&case_page, "/staff", "/"], "an unknown address under a staff case");
    assert_eq!(web.get(&case_page).status, 200);

    // A missing file among the assets is a page too.
    let answer = send(&app, None, "GET", "/assets/nothing.css", None);
    assert_error_page(&answer, 404, &["/"], "a missing asset");
}

#[test]
fn a_form_address_opened_in_the_browser_leads_back_to_its_form() {
    let app = TestApp::start();
    let cast = app.setup();
    let (case_link, reference) = a_case(&app, &cast);

    // The poster's appeal form sends to …/appeal; opened on its own, that is a 405 leading
    // back to the case page, which is where the form is.
    let answer = send(&app, None, "GET", &format!("{case_link}/appeal"), None);
    assert_error_page(&answer, 405, &[&case_link, "/"], "GET on the appeal form's address");
    assert_eq!(answer.header("allow"), "POST");

    // The same for a staff step, signed in and not.
    let case_page = format!("/staff/cases/{reference}");
    let answer = send(&app, None, "GET", &format!("{case_page}/response"), None);
    assert_error_page(&answer, 405, &[&case_page, "/staff", "/"], "GET on a staff step, signed out");
    assert_eq!(answer.header("allow"), "POST");
    let web = signed_in(&app, MODERATOR);
    let answer = send(&app, Some(&web), "GET", &format!("{case_page}/notes"), None);
    assert_error_page(&answer, 405, &[&case_page, "/staff", "/"], "GET on a staff step, signed in");
    assert!(answer.page().has("Sign out"), "within the staff pages: {}", answer.body);

    // A form whose page is not the address above it: the removal form lives at …/new.
    let answer = send(&app, Some(&web), "GET", "/staff/removals", None);
    assert_error_page(
        &answer,
        405,
        &["/staff/removals/new", "/staff", "/"],
        "GET on the removal form's address",
    );

    // A page sent a form it does not take is a 405 naming the method it does take.
    let answer =
        send(&app, Some(&web), "POST", "/staff/committee", Some(("application/x-www-form-urlencoded", b"")));
    assert_error_page(&answer, 405, &["/staff/committee", "/staff", "/"], "POST to a page");
    assert_eq!(answer.header("allow"), "GET");

    // Nothing about the case changed.
    let (status, case) = app.api("GET", &format!("/api/v1/cases/{reference}"), Some(&cast.moderator), None);
    assert_eq!((status, case["state"].as_str()), (200, Some("notice_sent")), "{case}");
}

#[test]
fn the_api_answers_unknown_addresses_and_wrong_methods_in_json() {
    let app = TestApp::start();
    let cast = app.setup();

    let answer = send(&app, None, "GET", "/api/v1/nothing-here", None);
    assert_api_error(&answer, 404, "not_found", "an unknown API address");
    let answer = send(&app, None, "GET", "/api/nothing", None);
    assert_api_error(&answer, 404, "not_found", "an unknown API version");

    let answer = send(&app, None, "GET", "/api/v1/removals", None);
    assert_api_error(&answer, 405, "method_not_allowed", "GET on a POST-only API address");
    assert_eq!(answer.header("allow"), "POST");
    let answer = send(&app, None, "DELETE", "/api/v1/cases/PEN-1", None);
    assert_api_error(&answer, 405, "method_not_allowed", "DELETE on a case");
    assert_eq!(answer.header("allow"), "GET");
    let answer = send(&app, None, "POST", "/api/v1/cases", Some(("application/json", b"{}")));
    assert_api_error(&answer, 405, "method_not_allowed", "POST on the list of cases");

    // The routes that exist still answer as before.
    let (status, _) = app.api("GET", "/api/v1/cases", Some(&cast.moderator), None);
    assert_eq!(status, 200);
}

#[test]
fn a_form_that_cannot_be_read_is_a_page() {
    let app = TestApp::start();
    let cast = app.setup();
    let (case_link, reference) = a_case(&app, &cast);

    let answer =
        send(&app, None, "POST", &format!("{case_link}/appeal"), Some(("text/plain", b"appeal=yes")));
    assert_error_page(&answer, 400, &[&case_link, "/"], "a public form sent as plain text");
    assert!(answer.page().has("The form could not be read"), "{}", answer.body);

    let too_big = vec![b'a'; 300 * 1024];
    let answer = send(
        &app,
        None,
        "POST",
        &format!("{case_link}/appeal"),
        Some(("application/x-www-form-urlencoded", &too_big)),
    );
    assert_error_page(&answer, 413, &[&case_link, "/"], "a public form too large");

    let web = signed_in(&app, MODERATOR);
    let case_page = format!("/staff/cases/{reference}");
    let answer =
        send(&app, Some(&web), "POST", &format!("{case_page}/notes"), Some(("text/plain", b"note=hi")));
    assert_error_page(&answer, 400, &[&case_page, "/staff", "/"], "a staff form sent as plain text");
}

/// HEAD is answered as GET is, without a body, as link checkers and monitors expect; a form's
/// address still refuses it.
#[test]
fn pages_answer_head_as_they_answer_get() {
    let app = TestApp::start();
    app.setup();
    for path in ["/", "/sign-in", "/o/penrith", "/o/penrith/report"] {
        let (get, head) = (send(&app, None, "GET", path, None), send(&app, None, "HEAD", path, None));
        assert_eq!((get.status, head.status), (200, 200), "{path}");
        assert!(head.body.is_empty(), "{path}: HEAD has no body");
        assert_eq!(head.header("content-type"), get.header("content-type"), "{path}");
    }
    assert_eq!(send(&app, None, "HEAD", "/c/x/appeal", None).status, 405);
}
