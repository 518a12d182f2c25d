//! Every bad request gets its clear error and leaves the database exactly as it was.

use std::collections::BTreeSet;

use crate::common::*;
use serde_json::json;

fn message(body: &serde_json::Value) -> String {
    body["message"].as_str().unwrap_or_default().to_string()
}

#[test]
fn removal_input_is_checked_field_by_field() {
    let app = TestApp::start();
    let cast = app.setup();
    let before = app.counts();

    // Every missing field is named at once.
    let (status, body) = app.api("POST", "/api/v1/removals", Some(&cast.moderator), Some(&json!({})));
    assert_eq!(status, 422, "{body}");
    for field in ["platform", "content_url", "content_text", "author_name", "rule_codes", "explanation"] {
        assert!(body["fields"][field].is_string(), "{field} not named: {body}");
    }
    assert_eq!(body["error"], "validation");

    // An unknown rule code is named, with the codes that exist.
    let (status, body) = app.record_removal(&cast.moderator, json!({"rule_codes": ["3a", "9z"]}));
    assert_eq!(status, 422, "{body}");
    let msg = body["fields"]["rule_codes"].as_str().unwrap();
    assert!(msg.contains("9z") && msg.contains("3e"), "{msg}");

    // A rule of another organisation is unknown here too.
    let (status, _) = app.record_removal(&cast.outsider, json!({"rule_codes": ["3e"]}));
    assert_eq!(status, 422);

    // 100 kB of text is refused with a clear message, not cut off.
    let (status, body) = app.record_removal(&cast.moderator, json!({"content_text": "x".repeat(100_000)}));
    assert_eq!(status, 422, "{body}");
    assert!(body["fields"]["content_text"].as_str().unwrap().contains("too long"), "{body}");

    // Bad email and URL.
    let (status, body) = app.record_removal(
        &cast.moderator,
        json!({"author_email": "pat\r\nBcc: evil@example.org", "content_url": "javascript:alert(1)"}),
    );
    assert_eq!(status, 422);
    assert!(
        body["fields"]["author_email"].is_string() && body["fields"]["content_url"].is_string(),
        "{body}"
    );

    // Wrong types and unknown fields.
    let (status, body) = app.record_removal(&cast.moderator, json!({"rule_codes": "3a"}));
    assert_eq!(status, 422, "{body}");
    let (status, body) = app.record_removal(&cast.moderator, json!({"rules": ["3a"]}));
    assert_eq!(status, 422, "{body}");
    assert!(message(&body).contains("rules"), "{body}");

    // Malformed JSON, wrong content type, a body too large to read.
    let (status, body) =
        app.post_raw("/api/v1/removals", Some(&cast.moderator), "application/json", b"{\"platform\": ");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not valid JSON"), "{body}");
    let (status, _) = app.post_raw("/api/v1/removals", Some(&cast.moderator), "text/plain", b"hello");
    assert_eq!(status, 415);
    let huge = format!("{{\"platform\": \"{}\"}}", "y".repeat(400_000));
    let (status, body) =
        app.post_raw("/api/v1/removals", Some(&cast.moderator), "application/json", huge.as_bytes());
    assert_eq!(status, 413, "{body}");

    assert_eq!(app.counts(), before, "nothing was written by any bad request");
}

#[test]
fn tokens_roles_and_organisations() {
    let app = TestApp::start();
    let cast = app.setup();
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let before = app.counts();

    // No token, a wrong token: 401.
    let (status, body) = app.api("GET", "/api/v1/cases", None, None);
    assert_eq!(status, 401);
    assert!(message(&body).contains("Bearer"), "{body}");
    let (status, _) = app.api("GET", "/api/v1/cases", Some("rdr_not-a-token"), None);
    assert_eq!(status, 401);
    let (status, _) = app.record_removal("rdr_0000", json!({}));
    assert_eq!(status, 401);

    // Wrong role: 403, with the reason.
    for token in [&cast.secretary, &cast.committee, &cast.admin] {
        let (status, body) = app.record_removal(token, json!({}));
        assert_eq!(status, 403, "{body}");
        assert!(message(&body).contains("may not open a removal case"), "{body}");
    }
    let (status, body) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/response"),
        Some(&cast.secretary),
        Some(&json!({"outcome": "reinstate", "reasons": "x"})),
    );
    assert_eq!(status, 403, "{body}");

    // Wrong state: responding to a removal nobody has appealed yet.
    let (status, body) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/response"),
        Some(&cast.moderator),
        Some(&json!({"outcome": "reinstate", "reasons": "x"})),
    );
    assert_eq!(status, 409, "{body}");
    assert!(message(&body).contains("while the case is removed; the author may appeal"), "{body}");
    let (status, _) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/decision"),
        Some(&cast.committee),
        Some(&json!({"outcome": "reinstate", "reasons": "x"})),
    );
    assert_eq!(status, 409);

    // Another organisation's case does not exist for them: 404 on every route.
    let (status, _) = app.api("GET", &format!("/api/v1/cases/{reference}"), Some(&cast.outsider), None);
    assert_eq!(status, 404);
    for route in ["response", "decision"] {
        let (status, _) = app.api(
            "POST",
            &format!("/api/v1/cases/{reference}/{route}"),
            Some(&cast.outsider),
            Some(&json!({"outcome": "reinstate", "reasons": "x"})),
        );
        assert_eq!(status, 404, "{route}");
    }
    let (_, list) = app.api("GET", "/api/v1/cases", Some(&cast.outsider), None);
    assert!(list["cases"].as_array().unwrap().is_empty());
    let (status, _) = app.api("GET", "/api/v1/cases/PEN-2026-9999", Some(&cast.moderator), None);
    assert_eq!(status, 404);

    // Bad filters are named.
    let (status, body) = app.api("GET", "/api/v1/cases?state=lost", Some(&cast.moderator), None);
    assert_eq!(status, 422);
    assert!(body["fields"]["state"].is_string());

    assert_eq!(app.counts(), before);
}

#[test]
fn responses_need_an_outcome_and_reasons() {
    let app = TestApp::start();
    let cast = app.setup();
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let link = app.mail_to("pat@poster.example", "your post was removed").link().unwrap();

    // An empty appeal re-shows the form with the error and changes nothing.
    let before = app.counts();
    let (status, _, page) = app.post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "   ")]);
    assert_eq!(status, 422);
    assert!(page.contains("There is a problem") && page.contains("is required"), "{page}");
    assert_eq!(app.counts(), before);

    app.post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "Please look again.")]);
    let before = app.counts();
    let path = format!("/api/v1/cases/{reference}/response");
    let (status, body) = app.api("POST", &path, Some(&cast.moderator), Some(&json!({"reasons": "x"})));
    assert_eq!(status, 422);
    assert!(body["fields"]["outcome"].as_str().unwrap().contains("reinstate or uphold"), "{body}");
    let (status, body) =
        app.api("POST", &path, Some(&cast.moderator), Some(&json!({"outcome": "maybe", "reasons": "x"})));
    assert_eq!(status, 422, "{body}");
    let (status, body) =
        app.api("POST", &path, Some(&cast.moderator), Some(&json!({"outcome": "remove", "reasons": "x"})));
    assert_eq!(status, 422, "{body}");
    let (status, body) = app.api("POST", &path, Some(&cast.moderator), Some(&json!({"outcome": "uphold"})));
    assert_eq!(status, 422);
    assert!(body["fields"]["reasons"].is_string(), "{body}");
    let (status, _) = app.api(
        "POST",
        &path,
        Some(&cast.moderator),
        Some(&json!({"outcome": "uphold", "reasons": "r".repeat(10_001)})),
    );
    assert_eq!(status, 422);
    assert_eq!(app.counts(), before);
}

#[test]
fn public_pages_refuse_bad_links_and_bad_complaints() {
    let app = TestApp::start();
    app.setup();
    let before = app.counts();
    let (status, page) = app.get_page(&format!("/c/{}", "0".repeat(64)));
    assert_eq!(status, 404);
    assert!(page.contains("This link is not valid"));
    let (status, _) = app.get_page("/c/short");
    assert_eq!(status, 404);
    let (status, _, _) = app.post_form(&format!("/c/{}/appeal", "a".repeat(64)), &[("appeal", "x")]);
    assert_eq!(status, 404);
    let (status, _) = app.get_page("/o/nowhere/report");
    assert_eq!(status, 404);

    let (status, _, page) = app.post_form(
        "/o/penrith/report",
        &[("platform", "Facebook"), ("content_url", "ftp://x"), ("reason", ""), ("reporter_email", "nope")],
    );
    assert_eq!(status, 422);
    assert!(page.contains("<title>Error: Report content"), "{page}");
    for field in ["content_url", "reason", "reporter_name", "reporter_email"] {
        assert!(page.contains(&format!("href=\"#{field}\"")), "{field} missing from the error summary");
    }
    assert!(page.contains("value=\"Facebook\""), "answers are kept");
    assert_eq!(app.counts(), before);
}

#[test]
fn cli_refuses_bad_setup_with_clear_messages() {
    let app = TestApp::start();
    app.setup();
    let out = app.cli(&["org", "add", "--slug", "Bad Slug", "--name", "X", "--secretary-email", "x"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("slug") && err.contains("secretary_email"), "{err}");
    let out =
        app.cli(&["org", "add", "--slug", "penrith", "--name", "Again", "--secretary-email", "a@b.example"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = app.cli(&[
        "org",
        "add",
        "--slug",
        "tz",
        "--name",
        "T",
        "--secretary-email",
        "a@b.example",
        "--timezone",
        "Mars/Base",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("time zone"));
    let out = app.cli(&[
        "user",
        "add",
        "--org",
        "penrith",
        "--email",
        "x@y.example",
        "--name",
        "X",
        "--role",
        "king",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("role"));
    let out = app.cli(&["token", "add", "--org", "westend", "--email", MODERATOR]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a member"));
    let out = app.cli(&["sweep", "--now", "yesterday"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
    let out = app.cli_with_stdin(
        &[
            "user",
            "add",
            "--org",
            "penrith",
            "--email",
            "new@penrith.example",
            "--name",
            "New",
            "--role",
            "moderator",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("8 to 128"));
    let out = app.cli_with_stdin(
        &[
            "user",
            "add",
            "--org",
            "penrith",
            "--email",
            "new@penrith.example",
            "--name",
            "New",
            "--role",
            "moderator",
            "--password-stdin",
        ],
        Some("a long enough passphrase\n"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = app.cli(&[
        "user",
        "add",
        "--org",
        "penrith",
        "--email",
        "new@penrith.example",
        "--name",
        "New",
        "--role",
        "moderator",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already moderator"));
}

#[test]
fn unknown_database_scheme_is_an_error_not_a_file() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_redress"))
        .arg("migrate")
        .env("DATABASE_URL", "mysql://localhost/redress")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("scheme"));
    assert!(!std::env::temp_dir().join("mysql:").exists());
}

#[test]
fn every_response_carries_the_security_headers() {
    let app = TestApp::start();
    app.setup();
    let agent = http_agent();
    for path in
        ["/", "/o/penrith/report", "/c/not-a-token", "/sign-in", "/staff", "/api/v1/cases", "/nowhere"]
    {
        let response = agent.get(app.url(path)).call().unwrap();
        let h = response.headers();
        let csp = h.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
        for directive in
            ["script-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"]
        {
            assert!(csp.contains(directive), "{path}: CSP {csp:?} lacks {directive}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}");
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff", "{path}");
        assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer", "{path}");
        assert_eq!(h.get("cache-control").unwrap(), "no-store", "{path}");
        assert_eq!(h.get("cross-origin-opener-policy").unwrap(), "same-origin", "{path}");
        assert!(
            h.get("permissions-policy").is_some_and(|v| v.to_str().unwrap().contains("camera=()")),
            "{path}"
        );
        assert!(h.get("strict-transport-security").is_none(), "{path}: no HSTS over plain http");
    }
    let css = agent.get(app.url("/assets/app.css")).call().unwrap();
    assert!(css.headers().get("cache-control").unwrap().to_str().unwrap().contains("max-age"));

    // Refusals and errors of every kind carry them too: 400, 413, 415, 422, 429.
    let big = "x".repeat(300 * 1024);
    let mut refusals: Vec<(String, ureq::http::Response<ureq::Body>)> = vec![
        (
            "400 malformed JSON".into(),
            agent
                .post(app.url("/api/v1/removals"))
                .header("Authorization", "Bearer rdr_wrong")
                .header("Content-Type", "application/json")
                .send("{")
                .unwrap(),
        ),
        (
            "413".into(),
            agent
                .post(app.url("/o/penrith/report"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .send(format!("reason={big}"))
                .unwrap(),
        ),
        (
            "415".into(),
            agent
                .post(app.url("/o/penrith/report"))
                .header("Content-Type", "text/plain")
                .send("hello")
                .unwrap(),
        ),
        (
            "422".into(),
            agent
                .post(app.url("/o/penrith/report"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .send("platform=x")
                .unwrap(),
        ),
    ];
    for n in 0..21 {
        let response =
            agent.get(app.url(&format!("/c/{n:064x}"))).header("X-Forwarded-For", "10.8.0.1").call().unwrap();
        refusals.push((format!("wrong link {n}"), response));
    }
    let statuses: BTreeSet<u16> = refusals.iter().map(|(_, r)| r.status().as_u16()).collect();
    for status in [413, 422, 429] {
        assert!(statuses.contains(&status), "no {status} among {statuses:?}");
    }
    for (what, response) in &refusals {
        let h = response.headers();
        assert!(h.get("content-security-policy").is_some(), "{what}: {}", response.status());
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff", "{what}");
        assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer", "{what}");
        assert_eq!(h.get("cache-control").unwrap(), "no-store", "{what}");
    }
}

/// Served at an https address (TLS ends at a proxy in front), every response, errors included,
/// tells the browser to use https from then on.
#[test]
fn hsts_is_sent_when_served_over_https() {
    let app = TestApp::start_configured(|c| c.base_url = "https://redress.penrith.example".into());
    let agent = http_agent();
    for path in ["/", "/sign-in", "/nowhere", "/c/not-a-token", "/api/v1/cases"] {
        let response = agent.get(app.url(path)).call().unwrap();
        let hsts =
            response.headers().get("strict-transport-security").map(|v| v.to_str().unwrap().to_string());
        assert!(hsts.as_deref().is_some_and(|v| v.contains("max-age=31536000")), "{path}: {hsts:?}");
    }
}

#[test]
fn case_events_cannot_be_changed_or_deleted() {
    use diesel::prelude::*;
    use redress::db::schema::case_events;
    let app = TestApp::start();
    let cast = app.setup();
    app.record_removal(&cast.moderator, json!({}));
    let pool = redress::db::connect(&app.database_url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let update =
        diesel::update(case_events::table).set(case_events::body.eq(Some("rewritten"))).execute(&mut *conn);
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = diesel::delete(case_events::table).execute(&mut *conn);
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    let bodies: Vec<Option<String>> = case_events::table.select(case_events::body).load(&mut *conn).unwrap();
    assert_eq!(bodies, vec![Some("A personal insult aimed at other members.".to_string())]);
}
