//! The access matrix: every route the server answers, tried by every kind of actor, with the
//! status each must get. A route missing from the table fails the test, so a new route cannot
//! arrive without someone deciding who may use it.
//!
//! Requests carry deliberately empty bodies: an actor who may use a route reaches its checks
//! and gets 422 (or 409 where case A, awaiting an appeal, is in the wrong state), one who may
//! not is stopped before — 303 to sign in, 401 without a token, 403 for a role that may not,
//! 404 for another organisation's case or a link that is not theirs. Nothing is changed by
//! this (an empty settings form keeps every setting, hence the admin's 303), except the rows
//! marked as acting, which come last.

use std::collections::BTreeSet;

use crate::common::web::{Page, WebClient};
use crate::common::*;
use serde_json::json;

const PASSWORD: &str = "a long and unusual passphrase";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Anonymous,
    PosterA,
    PosterB,
    Reporter,
    Moderator,
    Outsider,
    Secretary,
    Committee,
    Admin,
}

const EVERYONE: [Who; 9] = [
    Who::Anonymous,
    Who::PosterA,
    Who::PosterB,
    Who::Reporter,
    Who::Moderator,
    Who::Outsider,
    Who::Secretary,
    Who::Committee,
    Who::Admin,
];

/// One actor: a browser with its own cookies and client address, its API token if staff, and
/// the private link it holds if it is a party to a case.
struct Actor {
    who: Who,
    web: WebClient,
    token: Option<String>,
    /// The secret part of the private link this actor holds, if any.
    link: Option<String>,
}

/// The expected statuses, in the order of `EVERYONE`.
type Row = (&'static str, &'static str, [u16; 9]);

#[rustfmt::skip]
const MATRIX: &[Row] = &[
    //                                                   anon  pA   pB   rep  mod  out  sec  com  adm
    ("get",  "/",                                       [200, 200, 200, 200, 200, 200, 200, 200, 200]),
    ("get",  "/assets/{file}",                          [200, 200, 200, 200, 200, 200, 200, 200, 200]),
    ("get",  "/o/{slug}/report",                        [200, 200, 200, 200, 200, 200, 200, 200, 200]),
    ("post", "/o/{slug}/report",                        [422, 422, 422, 422, 422, 422, 422, 422, 422]),
    ("get",  "/o/{slug}",                               [200, 200, 200, 200, 200, 200, 200, 200, 200]),
    ("get",  "/o/{slug}/accessibility",                 [200, 200, 200, 200, 200, 200, 200, 200, 200]),
    ("get",  "/c/{token}",                              [404, 200, 404, 404, 404, 404, 404, 404, 404]),
    ("post", "/c/{token}/appeal",                       [404, 422, 404, 404, 404, 404, 404, 404, 404]),
    ("post", "/c/{token}/escalate",                     [404, 409, 404, 404, 404, 404, 404, 404, 404]),
    ("post", "/c/{token}/information",                  [404, 409, 404, 404, 404, 404, 404, 404, 404]),
    ("get",  "/setup",                                  [404, 404, 404, 404, 404, 404, 404, 404, 404]),
    ("post", "/setup",                                  [404, 404, 404, 404, 404, 404, 404, 404, 404]),
    ("get",  "/sign-in",                                [200, 200, 200, 200, 200, 200, 200, 200, 200]),
    ("post", "/sign-in",                                [422, 422, 422, 422, 422, 422, 422, 422, 422]),
    ("get",  "/orgs",                                   [303, 303, 303, 303, 200, 200, 200, 200, 200]),
    ("post", "/orgs",                                   [303, 303, 303, 303, 404, 404, 404, 404, 404]),
    ("get",  "/staff",                                  [303, 303, 303, 303, 200, 200, 200, 200, 200]),
    ("get",  "/staff/removals/new",                     [303, 303, 303, 303, 200, 200, 403, 403, 403]),
    ("post", "/staff/removals",                         [303, 303, 303, 303, 422, 422, 403, 403, 403]),
    ("get",  "/staff/cases/{reference}",                [303, 303, 303, 303, 200, 404, 200, 200, 200]),
    ("post", "/staff/cases/{reference}/response",       [303, 303, 303, 303, 422, 404, 403, 403, 403]),
    ("post", "/staff/cases/{reference}/decision",       [303, 303, 303, 303, 403, 404, 422, 422, 403]),
    ("post", "/staff/cases/{reference}/request-info",   [303, 303, 303, 303, 409, 404, 403, 403, 403]),
    ("post", "/staff/cases/{reference}/notes",          [303, 303, 303, 303, 422, 404, 422, 422, 422]),
    ("get",  "/staff/committee",                        [303, 303, 303, 303, 403, 403, 200, 200, 403]),
    ("get",  "/staff/admin",                            [303, 303, 303, 303, 403, 403, 403, 403, 200]),
    ("post", "/staff/admin/settings",                   [303, 303, 303, 303, 403, 403, 403, 403, 303]),
    ("post", "/staff/admin/closures",                   [303, 303, 303, 303, 403, 403, 403, 403, 422]),
    ("get",  "/staff/admin/rules",                      [303, 303, 303, 303, 403, 403, 403, 403, 200]),
    ("post", "/staff/admin/rules",                      [303, 303, 303, 303, 403, 403, 403, 403, 422]),
    ("get",  "/staff/admin/rules/{code}",               [303, 303, 303, 303, 403, 403, 403, 403, 200]),
    ("post", "/staff/admin/rules/{code}",               [303, 303, 303, 303, 403, 403, 403, 403, 422]),
    ("get",  "/staff/admin/users",                      [303, 303, 303, 303, 403, 403, 403, 403, 200]),
    ("post", "/staff/admin/users",                      [303, 303, 303, 303, 403, 403, 403, 403, 422]),
    ("post", "/staff/admin/users/{id}/remove-role",     [303, 303, 303, 303, 403, 403, 403, 403, 422]),
    ("get",  "/staff/admin/tokens",                     [303, 303, 303, 303, 403, 403, 403, 403, 200]),
    ("post", "/staff/admin/tokens",                     [303, 303, 303, 303, 403, 403, 403, 403, 422]),
    ("get",  "/staff/admin/tokens/{id}/revoke",         [303, 303, 303, 303, 403, 403, 403, 403, 404]),
    ("post", "/staff/admin/tokens/{id}/revoke",         [303, 303, 303, 303, 403, 403, 403, 403, 404]),
    ("get",  "/staff/admin/log",                        [303, 303, 303, 303, 403, 403, 403, 403, 200]),
    ("get",  "/staff/admin/accessibility",              [303, 303, 303, 303, 403, 403, 403, 403, 200]),
    ("post", "/staff/admin/accessibility",              [303, 303, 303, 303, 403, 403, 403, 403, 303]),
    ("get",  "/staff/admin/public-note",                [303, 303, 303, 303, 403, 403, 403, 403, 200]),
    ("get",  "/staff/admin/reasons",                    [303, 303, 303, 303, 403, 403, 403, 403, 200]),
    ("post", "/staff/admin/reasons",                    [303, 303, 303, 303, 403, 403, 403, 403, 422]),
    ("get",  "/staff/admin/reasons/{id}",               [303, 303, 303, 303, 403, 403, 403, 403, 404]),
    ("post", "/staff/admin/reasons/{id}",               [303, 303, 303, 303, 403, 403, 403, 403, 404]),
    ("post", "/staff/admin/reasons/{id}/remove",        [303, 303, 303, 303, 403, 403, 403, 403, 404]),
    ("post", "/staff/admin/public-note",                [303, 303, 303, 303, 403, 403, 403, 403, 303]),
    ("post", "/api/v1/removals",                        [401, 401, 401, 401, 422, 422, 403, 403, 403]),
    ("get",  "/api/v1/cases",                           [401, 401, 401, 401, 200, 200, 200, 200, 200]),
    ("get",  "/api/v1/cases/{reference}",               [401, 401, 401, 401, 200, 404, 200, 200, 200]),
    ("post", "/api/v1/cases/{reference}/response",      [401, 401, 401, 401, 422, 404, 403, 403, 403]),
    ("post", "/api/v1/cases/{reference}/decision",      [401, 401, 401, 401, 403, 404, 422, 422, 403]),
    ("post", "/api/v1/cases/{reference}/request-info",  [401, 401, 401, 401, 409, 404, 403, 403, 403]),
    ("post", "/api/v1/cases/{reference}/notes",         [401, 401, 401, 401, 422, 404, 422, 422, 422]),
    // Acting rows, last: poster A withdraws case A, then staff replace its link.
    ("post", "/c/{token}/withdraw",                     [404, 303, 404, 404, 404, 404, 404, 404, 404]),
    ("post", "/staff/cases/{reference}/link",           [303, 303, 303, 303, 303, 404, 303, 403, 303]),
    ("post", "/sign-out",                               [303, 303, 303, 303, 303, 303, 303, 303, 303]),
];

fn flip_last(secret: &str) -> String {
    let mut s = secret.to_string();
    let last = s.pop().unwrap();
    s.push(if last == '0' { '1' } else { '0' });
    s
}

fn link_secret(link: &str) -> String {
    path_of(link).trim_start_matches("/c/").to_string()
}

struct World {
    app: TestApp,
    actors: Vec<Actor>,
    reference: String,
}

fn world() -> World {
    let app = TestApp::start();
    let cast = app.setup();
    for email in [MODERATOR, SECRETARY, COMMITTEE, ADMIN, "mod@westend.example"] {
        app.set_password(email, PASSWORD);
    }
    // Case A and case B: removals with their own posters; case C: a complaint.
    let (status, a) = app.record_removal(&cast.moderator, json!({"author_email": "a@poster.example"}));
    assert_eq!(status, 201, "{a}");
    let (status, _) = app.record_removal(&cast.moderator, json!({"author_email": "b@poster.example"}));
    assert_eq!(status, 201);
    let (status, _, page) = app.post_form("/o/penrith/report", COMPLAINT);
    assert_eq!(status, 201, "{page}");
    let link_a = link_secret(&app.mail_to("a@poster.example", "your post was removed").link().unwrap());
    let link_b = link_secret(&app.mail_to("b@poster.example", "your post was removed").link().unwrap());
    let link_c = link_secret(&app.mail_to("robin@reporter.example", "we have your report").link().unwrap());

    let mut actors = Vec::new();
    for (n, who) in EVERYONE.into_iter().enumerate() {
        let web = WebClient::new(&app.base_url);
        // Each actor speaks from an address of its own, so that wrong links tried by one do not
        // throttle another.
        web.set_header("X-Forwarded-For", &format!("10.1.0.{}", n + 1));
        let (email, token, link) = match who {
            Who::Anonymous => (None, None, None),
            Who::PosterA => (None, None, Some(link_a.clone())),
            Who::PosterB => (None, None, Some(flip_last(&link_b))),
            Who::Reporter => (None, None, Some(flip_last(&link_c))),
            Who::Moderator => (Some(MODERATOR), Some(cast.moderator.clone()), None),
            Who::Outsider => (Some("mod@westend.example"), Some(cast.outsider.clone()), None),
            Who::Secretary => (Some(SECRETARY), Some(cast.secretary.clone()), None),
            Who::Committee => (Some(COMMITTEE), Some(cast.committee.clone()), None),
            Who::Admin => (Some(ADMIN), Some(cast.admin.clone()), None),
        };
        if let Some(email) = email {
            web.sign_in(email, PASSWORD);
        }
        // Every browser has the anonymous forms' CSRF cookie, as one that has seen a form would.
        web.get("/sign-in");
        actors.push(Actor { who, web, token, link });
    }
    World { app, actors, reference: a["reference"].as_str().unwrap().to_string() }
}

impl World {
    fn fill(&self, actor: &Actor, pattern: &str) -> String {
        // Someone who holds no link for case A can only guess one.
        let guess = "7".repeat(64);
        pattern
            .replace("{reference}", &self.reference)
            .replace("{token}", actor.link.as_deref().unwrap_or(&guess))
            .replace("{slug}", ORG)
            .replace("{file}", "app.css")
            .replace("{code}", "3a")
            .replace("{id}", "no-such-id")
    }

    fn request(&self, actor: &Actor, method: &str, pattern: &str) -> Page {
        let path = self.fill(actor, pattern);
        if let Some(api) = path.strip_prefix("/api/") {
            let (status, body) = self.app.api(
                &method.to_uppercase(),
                &format!("/api/{api}"),
                actor.token.as_deref(),
                Some(&json!({})),
            );
            return Page { status, location: None, body: body.to_string() };
        }
        if method == "get" {
            return actor.web.get(&path);
        }
        // Staff forms carry the session's token, the anonymous forms the cookie's: whoever
        // reaches the handler is judged on who they are, not on a missing token.
        let csrf = if actor.web.has_cookie("redress_session") {
            let page = actor.web.get("/staff");
            if page.status == 200 {
                page.csrf()
            } else {
                actor.web.cookie("redress_csrf").unwrap_or_default()
            }
        } else {
            actor.web.cookie("redress_csrf").unwrap_or_default()
        };
        let csrf = if pattern.starts_with("/staff") || pattern == "/orgs" || pattern == "/sign-out" {
            csrf
        } else {
            actor.web.cookie("redress_csrf").unwrap_or_default()
        };
        // Every form is sent as a person who ticked its confirmation would send it.
        actor.web.post(&path, &[("csrf", csrf.as_str()), ("confirm", "yes")])
    }
}

#[test]
fn every_route_answers_every_actor_as_the_table_says() {
    let world = world();

    // The table and the server agree on what the routes are.
    let served: BTreeSet<(String, String)> =
        redress::web::all_routes().into_iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    let tabled: BTreeSet<(String, String)> =
        MATRIX.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    let untested: Vec<_> = served.difference(&tabled).collect();
    let gone: Vec<_> = tabled.difference(&served).collect();
    assert!(untested.is_empty(), "routes missing from the access matrix: {untested:?}");
    assert!(gone.is_empty(), "routes in the matrix that the server no longer has: {gone:?}");

    let mut wrong = Vec::new();
    for (method, pattern, expected) in MATRIX {
        for (actor, want) in world.actors.iter().zip(expected) {
            let page = world.request(actor, method, pattern);
            if page.status != *want {
                wrong.push(format!(
                    "{} {pattern} as {:?}: got {}, expected {want} ({})",
                    method.to_uppercase(),
                    actor.who,
                    page.status,
                    page.body.chars().take(160).collect::<String>().replace('\n', " ")
                ));
            }
            // Another organisation's case is never confirmed to exist.
            if actor.who == Who::Outsider && pattern.contains("{reference}") {
                assert!(!page.body.contains("Forbidden") && page.status != 403, "{pattern}: {}", page.body);
            }
        }
    }
    assert!(wrong.is_empty(), "{} cells differ:\n{}", wrong.len(), wrong.join("\n"));

    // An unknown route is a 404 for everyone.
    for actor in &world.actors {
        assert_eq!(actor.web.get("/staff/nothing-here").status, 404);
        assert_eq!(world.request(actor, "get", "/api/v1/nothing-here").status, 404);
    }

    // The other organisation's list does not hold case A.
    let (_, list) = world.app.api("GET", "/api/v1/cases", world.actors[5].token.as_deref(), None);
    assert!(!list.to_string().contains(&world.reference), "{list}");
}

/// The matrix can only cover routes that `all_routes` knows; this makes sure every route is
/// declared through the `routes!` table rather than registered by hand.
#[test]
fn every_route_is_declared_in_a_routes_table() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![dir];
    let mut offenders = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                let registers =
                    [".route(", "web::resource(", "web::scope(", ".service(", "#[get(", "#[post("]
                        .iter()
                        .any(|p| code.contains(p));
                // The macro itself is the one place allowed to call `cfg.route`.
                if registers && !code.starts_with("cfg.route($path, actix_web::web::") {
                    offenders.push(format!("{}:{}: {code}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "routes registered outside routes!:\n{}", offenders.join("\n"));
}

/// Path parameters are input too: a NUL (which PostgreSQL refuses even in a query), bytes that
/// are not UTF-8, traversal, spaces and very long values reach every route's look-ups as each
/// staff role and through the API, and never cause a server error.
#[test]
fn odd_path_parameters_are_answered_without_a_server_error() {
    let world = world();
    let odd =
        ["%00", "x%00y", "%FF%FE", "..%2F..%2Fetc", "a%20b", "%0D%0ASet-Cookie:%20x=1", &"z".repeat(3000)];
    let mut failures = Vec::new();
    for (method, pattern, _) in MATRIX.iter().filter(|(_, p, _)| p.contains('{')) {
        for value in odd {
            let path = ["{reference}", "{token}", "{slug}", "{file}", "{code}", "{id}"]
                .iter()
                .fold(pattern.to_string(), |path, param| path.replace(param, value));
            for actor in
                world.actors.iter().filter(|a| matches!(a.who, Who::Moderator | Who::Committee | Who::Admin))
            {
                let page = if let Some(api) = path.strip_prefix("/api/") {
                    let (status, body) = world.app.api(
                        &method.to_uppercase(),
                        &format!("/api/{api}"),
                        actor.token.as_deref(),
                        Some(&json!({})),
                    );
                    Page { status, location: None, body: body.to_string() }
                } else if *method == "get" {
                    actor.web.get(&path)
                } else {
                    let csrf = actor.web.get("/staff").csrf();
                    actor.web.post(&path, &[("csrf", csrf.as_str())])
                };
                if page.status >= 500 {
                    failures.push(format!(
                        "{} {path:.120} as {:?}: {} {}",
                        method.to_uppercase(),
                        actor.who,
                        page.status,
                        page.body.chars().take(200).collect::<String>()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} server errors:\n{}", failures.len(), failures.join("\n"));
}
