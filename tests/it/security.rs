//! Passwords, sign-in throttling, the hashing pool, wrong-link throttling, replacing a leaked
//! private link, and what the server's log may and may not hold.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::web::{Page, WebClient};
use crate::common::*;
use serde_json::{json, Value};

const PASSWORD: &str = "a long and unusual passphrase";

fn from(app: &TestApp, addr: &str) -> WebClient {
    let web = WebClient::new(&app.base_url);
    web.set_header("X-Forwarded-For", addr);
    web
}

fn try_sign_in(web: &WebClient, email: &str, password: &str) -> Page {
    web.submit("/sign-in", "/sign-in", &[("email", email), ("password", password)])
}

fn with_passwords(app: &TestApp) {
    for email in [MODERATOR, ADMIN] {
        app.set_password(email, PASSWORD);
    }
}

#[test]
fn common_passwords_are_refused_with_a_reason() {
    let app = TestApp::start();
    app.setup();
    for common in ["password", "iloveyou", "Baseball1", "QWERTYUIOP"] {
        let out = app.cli_with_stdin(&["user", "password", "--email", MODERATOR], Some(common));
        assert!(!out.status.success(), "{common} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("most common passwords"), "{common}: {err}");
    }
    // No composition rules: a long passphrase of plain words is fine.
    let out =
        app.cli_with_stdin(&["user", "password", "--email", MODERATOR], Some("tea with milk and no sugar"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The admin's form says the same.
    with_passwords(&app);
    let admin = from(&app, "10.9.0.1");
    admin.sign_in(ADMIN, PASSWORD);
    let page = admin.submit(
        "/staff/admin/users",
        "/staff/admin/users",
        &[("email", "new@penrith.example"), ("name", "New"), ("role", "moderator"), ("password", "football")],
    );
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.has("most common passwords"), "{}", page.body);
}

/// The hash actually stored for a password set through the CLI: argon2id with at least 19 MiB
/// and 2 iterations, read back from its PHC string.
#[test]
fn stored_passwords_are_argon2id_with_enough_memory_and_iterations() {
    use diesel::prelude::*;
    use redress::db::schema::users;
    let app = TestApp::start();
    app.setup();
    with_passwords(&app);
    let pool = redress::db::connect(&app.database_url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let hash: Option<String> = users::table
        .filter(users::email.eq(MODERATOR))
        .select(users::password_hash)
        .first(&mut *conn)
        .unwrap();
    let hash = hash.expect("a password was set");
    let parts: Vec<&str> = hash.split('$').collect();
    assert_eq!(parts.get(1), Some(&"argon2id"), "{hash}");
    let params: std::collections::HashMap<&str, u32> = parts[3]
        .split(',')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k, v.parse().unwrap())
        })
        .collect();
    assert!(params["m"] >= 19 * 1024, "memory {} KiB in {hash}", params["m"]);
    assert!(params["t"] >= 2, "iterations {} in {hash}", params["t"]);
    assert!(!hash.contains(PASSWORD));
}

#[test]
fn sign_in_is_throttled_per_address_and_account_without_locking_the_user_out() {
    let app = TestApp::start();
    app.setup();
    with_passwords(&app);

    // The user signs in once from their own browser, which from then on is trusted.
    let user = from(&app, "10.2.0.2");
    user.sign_in(MODERATOR, PASSWORD);
    assert!(user.has_cookie("redress_device"), "a trusted-device cookie is set");

    // An attacker at one address gets five tries at the account, then is refused even with the
    // right password, and told how long to wait.
    let attacker = from(&app, "10.2.0.1");
    for _ in 0..5 {
        assert_eq!(try_sign_in(&attacker, MODERATOR, "wrong guess 123").status, 401);
    }
    let page = try_sign_in(&attacker, MODERATOR, PASSWORD);
    assert_eq!(page.status, 429, "{}", page.body);
    assert!(page.has("Too many failed attempts to sign in"), "{}", page.body);

    // The real user, elsewhere, is not locked out.
    let elsewhere = from(&app, "10.2.0.3");
    assert_eq!(try_sign_in(&elsewhere, MODERATOR, PASSWORD).status, 303);

    // One address trying many accounts is stopped after 30 failures, whatever the account.
    let sprayer = from(&app, "10.2.0.4");
    for n in 0..30 {
        let page = try_sign_in(&sprayer, &format!("user{n}@penrith.example"), "password guess");
        assert_eq!(page.status, 401, "attempt {n}");
    }
    assert_eq!(try_sign_in(&sprayer, ADMIN, PASSWORD).status, 429);

    // Guesses at one account from many addresses: after 50 (the attacker's 5 above count),
    // browsers the account has never signed in from are refused, but the user's own browser
    // still gets in from a new address.
    for n in 0..45 {
        let web = from(&app, &format!("10.3.{}.{}", n / 200, n % 200 + 1));
        assert_eq!(try_sign_in(&web, MODERATOR, "distributed guess").status, 401, "attempt {n}");
    }
    let stranger = from(&app, "10.4.0.1");
    assert_eq!(try_sign_in(&stranger, MODERATOR, PASSWORD).status, 429);
    user.set_header("X-Forwarded-For", "10.4.0.2");
    assert_eq!(try_sign_in(&user, MODERATOR, PASSWORD).status, 303, "the trusted browser gets in");
    // Another account is untouched by all this.
    assert_eq!(try_sign_in(&from(&app, "10.4.0.3"), ADMIN, PASSWORD).status, 303);

    // Trust lasts as long as the cookie (180 days): an older device is trusted no more, and is
    // deleted at the next sign-in of anyone.
    {
        use diesel::prelude::*;
        use redress::db::schema::trusted_devices;
        let pool = redress::db::connect(&app.database_url, 1).unwrap();
        let mut conn = pool.get().unwrap();
        let old = (chrono::Utc::now() - chrono::Duration::days(181)).naive_utc();
        diesel::update(trusted_devices::table)
            .set(trusted_devices::created_at.eq(old))
            .execute(&mut *conn)
            .unwrap();
        user.set_header("X-Forwarded-For", "10.4.0.4");
        assert_eq!(try_sign_in(&user, MODERATOR, PASSWORD).status, 429, "an expired device is not trusted");
        assert_eq!(try_sign_in(&from(&app, "10.4.0.5"), ADMIN, PASSWORD).status, 303);
        let left: Vec<chrono::NaiveDateTime> =
            trusted_devices::table.select(trusted_devices::created_at).load(&mut *conn).unwrap();
        assert_eq!(left.len(), 1, "only the new sign-in's device is left: {left:?}");
        assert!(left[0] > old);
    }
}

#[test]
fn a_flood_of_sign_ins_is_answered_without_failing() {
    let app = TestApp::start();
    app.setup();
    with_passwords(&app);
    let base = app.base_url.clone();
    let threads: Vec<_> = (0..48)
        .map(|n| {
            let base = base.clone();
            std::thread::spawn(move || {
                let web = WebClient::new(&base);
                web.set_header("X-Forwarded-For", &format!("10.6.0.{}", n + 1));
                try_sign_in(&web, &format!("nobody{n}@penrith.example"), "a wrong password").status
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    // Each is a refusal, or "busy, try again" from the bounded hashing pool; nothing fails.
    assert!(statuses.iter().all(|s| *s == 401 || *s == 503), "{statuses:?}");
    // And the server still signs people in afterwards.
    from(&app, "10.6.1.1").sign_in(ADMIN, PASSWORD);
}

#[test]
fn wrong_links_are_all_the_same_404_and_then_throttled() {
    let app = TestApp::start();
    let cast = app.setup();
    app.record_removal(&cast.moderator, json!({}));
    let link = path_of(&app.mail_to("pat@poster.example", "your post was removed").link().unwrap());

    let guesser = from(&app, "10.5.0.1");
    let mut bodies = std::collections::BTreeSet::new();
    for n in 0..20u32 {
        // Half of them percent-encoded, which the router decodes: they count all the same.
        let guess = if n % 2 == 0 { format!("/c/{:064x}", n + 1) } else { format!("/%63/{:064x}", n + 1) };
        let page = guesser.get(&guess);
        assert_eq!(page.status, 404);
        bodies.insert(page.body);
    }
    assert_eq!(bodies.len(), 1, "every wrong link gets the same page");
    assert!(!bodies.first().unwrap().contains("0000000"), "the page does not echo the link");
    let page = guesser.get(&link);
    assert_eq!(page.status, 429, "after 20 wrong links even a right one waits: {}", page.body);
    assert!(page.has("Too many wrong links"));
    let page = guesser.post(&format!("{link}/appeal"), &[("appeal", "hello")]);
    assert_eq!(page.status, 429);

    // The poster, at their own address, is unaffected.
    let poster = from(&app, "10.5.0.2");
    assert_eq!(poster.get(&link).status, 200);
}

/// A request with headers of its own; returns the status, the Retry-After header and the body.
fn raw(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, Option<String>, String) {
    let agent = http_agent();
    let url = app.url(path);
    let response = if method == "GET" {
        let mut req = agent.get(&url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.call()
    } else {
        let mut req = agent.post(&url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send(body.unwrap_or(""))
    };
    let mut response = response.unwrap();
    let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (response.status().as_u16(), retry, text)
}

#[test]
fn wrong_api_tokens_are_throttled_per_address() {
    let app = TestApp::start();
    let cast = app.setup();
    let right = format!("Bearer {}", cast.moderator);
    // Asking without a token is not guessing one: it is never counted.
    for _ in 0..30 {
        let (status, _, _) = raw(&app, "GET", "/api/v1/cases", &[("X-Forwarded-For", "10.6.0.1")], None);
        assert_eq!(status, 401);
    }
    let (status, _, body) = raw(
        &app,
        "GET",
        "/api/v1/cases",
        &[("X-Forwarded-For", "10.6.0.1"), ("Authorization", &right)],
        None,
    );
    assert_eq!(status, 200, "{body}");

    for n in 0..20u32 {
        let wrong = format!("Bearer rdr_{:064x}", n + 1);
        let (status, _, body) = raw(
            &app,
            "GET",
            "/api/v1/cases",
            &[("X-Forwarded-For", "10.6.0.2"), ("Authorization", &wrong)],
            None,
        );
        assert_eq!(status, 401, "{body}");
    }
    // Then even the right token waits at that address, with a JSON answer saying how long.
    let (status, retry, body) = raw(
        &app,
        "GET",
        "/api/v1/cases",
        &[("X-Forwarded-For", "10.6.0.2"), ("Authorization", &right)],
        None,
    );
    assert_eq!(status, 429, "{body}");
    let secs: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=15 * 60).contains(&secs), "{secs}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"], "too_many_requests", "{body}");
    assert!(json["message"].as_str().unwrap().contains("wrong API tokens"), "{body}");
    // Elsewhere the right token still works.
    let (status, _, _) = raw(
        &app,
        "GET",
        "/api/v1/cases",
        &[("X-Forwarded-For", "10.6.0.3"), ("Authorization", &right)],
        None,
    );
    assert_eq!(status, 200);
}

#[test]
fn public_reports_are_limited_per_address() {
    let app = TestApp::start();
    app.setup();
    let report = |addr: &str, n: u32| {
        let body = format!(
            "platform=Facebook&content_url=https%3A%2F%2Ffacebook.com%2Fpenrithclp%2Fposts%2F{n}&content_text=Nasty+words+{n}&rule_code=3a&reason=It+insults+a+volunteer.&reporter_name=Robin&reporter_email=robin{n}%40reporter.example"
        );
        raw(
            &app,
            "POST",
            "/o/penrith/report",
            &[("X-Forwarded-For", addr), ("Content-Type", "application/x-www-form-urlencoded")],
            Some(&body),
        )
    };
    // Refused reports (bad input) do not use up the allowance.
    for _ in 0..12 {
        let (status, _, _) = raw(
            &app,
            "POST",
            "/o/penrith/report",
            &[("X-Forwarded-For", "10.7.0.1"), ("Content-Type", "application/x-www-form-urlencoded")],
            Some("platform=Facebook"),
        );
        assert_eq!(status, 422);
    }
    for n in 0..10 {
        let (status, _, body) = report("10.7.0.1", n);
        assert_eq!(status, 201, "report {n}: {body}");
    }
    let before = app.counts();
    let (status, retry, body) = report("10.7.0.1", 10);
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("Many reports have been sent from your connection"), "{body}");
    let secs: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=60 * 60).contains(&secs), "{secs}");
    // The same path percent-encoded is the same form, and the same limit.
    let (status, _, _) = raw(
        &app,
        "POST",
        "/%6F/penrith/report",
        &[("X-Forwarded-For", "10.7.0.1"), ("Content-Type", "application/x-www-form-urlencoded")],
        Some("platform=Facebook"),
    );
    assert_eq!(status, 429);
    let after = app.counts();
    assert_eq!((before.cases, before.events, before.emails), (after.cases, after.events, after.emails));
    // Another address is not affected.
    let (status, _, body) = report("10.7.0.2", 11);
    assert_eq!(status, 201, "{body}");
}

#[test]
fn staff_can_revoke_and_reissue_a_private_link() {
    let app = TestApp::start();
    let cast = app.setup();
    with_passwords(&app);
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let old = path_of(&app.mail_to("pat@poster.example", "your post was removed").link().unwrap());
    assert_eq!(app.get_page(&old).0, 200);

    let moderator = from(&app, "10.7.0.1");
    moderator.sign_in(MODERATOR, PASSWORD);
    let page = moderator.get(&format!("/staff/cases/{reference}"));
    assert!(page.has("Revoke and reissue the link"), "{}", page.body);
    // Not without the confirmation: every link the poster holds would stop working.
    let refused = moderator.submit(
        &format!("/staff/cases/{reference}"),
        &format!("/staff/cases/{reference}/link"),
        &[],
    );
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.has("href=\"#confirm\""), "{}", refused.body);
    assert_eq!(app.get_page(&old).0, 200, "the old link still works");
    let done = moderator.submit(
        &format!("/staff/cases/{reference}"),
        &format!("/staff/cases/{reference}/link"),
        &[("confirm", "yes")],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        moderator.get(done.location.as_deref().unwrap()).texts(".banner-heading"),
        ["New private link sent"]
    );

    // The old link is dead, with the same 404 as any wrong link; the new one arrives by email.
    assert_eq!(app.get_page(&old).0, 404);
    let mail = app.mail_to("pat@poster.example", "a new link to your case");
    let new = path_of(&mail.link().unwrap());
    assert_ne!(new, old);
    let (status, page) = app.get_page(&new);
    assert_eq!(status, 200);
    assert!(page.contains("Private link replaced"), "the poster's timeline says so");
    let staff_page = moderator.get(&format!("/staff/cases/{reference}"));
    assert!(staff_page.has("Private link replaced"));

    // Another organisation cannot see the case at all (who may reissue is in tests/access.rs).
    let (status, _) = app.api("GET", &format!("/api/v1/cases/{reference}"), Some(&cast.outsider), None);
    assert_eq!(status, 404);

    // Without an address, the new link is shown once to hand over.
    let (_, case) = app
        .record_removal(&cast.moderator, json!({"author_email": null, "notice_method": "By direct message"}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let page = moderator.submit(
        &format!("/staff/cases/{reference}"),
        &format!("/staff/cases/{reference}/link"),
        &[("confirm", "yes")],
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.has("New private link issued"));
    let start = page.body.find("/c/").unwrap();
    let link: String = page.body[start..].chars().take(3 + 64).collect();
    assert_eq!(app.get_page(&link).0, 200);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Markers that must never reach a log line: a password, an API token, private links, a
/// member of the public's email address and the text of a removed post.
#[test]
fn logs_are_structured_and_keep_secrets_out() {
    let app = TestApp::start();
    let cast = app.setup();
    let password = "marker passphrase qx7rw2";
    let out = app.cli_with_stdin(&["user", "password", "--email", MODERATOR], Some(password));
    assert!(out.status.success());

    // A second server, run as the real binary, whose log we read.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log_path = app.dir.path().join("server.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_redress"))
        .arg("serve")
        .env("DATABASE_URL", &app.database_url)
        .env("REDRESS_BIND", format!("127.0.0.1:{port}"))
        .env("REDRESS_BASE_URL", &base)
        .env("SMTP_URL", format!("smtp://127.0.0.1:{}", app.smtp_port))
        .env("REDRESS_MAIL_FROM", "Penrith CLP <redress@penrith.example>")
        .env("REDRESS_OUTBOX_POLL_SECS", "1")
        .env("REDRESS_TRUST_PROXY", "true")
        .env_remove("RUST_LOG")
        .env_remove("REDRESS_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(&format!("{base}/")).call().is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    let public_email = "mkpublic7731@poster.example";
    let removed_text = "mkremoved9921 words that broke the rules";
    let appeal_text = "mkappeal5512 please look again";
    let web = WebClient::new(&base);
    web.set_header("X-Forwarded-For", "10.8.0.1");
    assert_eq!(try_sign_in(&web, MODERATOR, "mkwrongpass4410").status, 401);
    web.sign_in(MODERATOR, password);
    let api = |method: &str, path: &str, token: &str, body: Value| -> (u16, Value) {
        let agent = http_agent();
        let url = format!("{base}{path}");
        let mut response = if method == "GET" {
            agent.get(&url).header("Authorization", format!("Bearer {token}")).call().unwrap()
        } else {
            agent.post(&url).header("Authorization", format!("Bearer {token}")).send_json(body).unwrap()
        };
        let status = response.status().as_u16();
        (status, serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap_or(Value::Null))
    };
    let (status, case) = api(
        "POST",
        "/api/v1/removals",
        &cast.moderator,
        json!({
            "platform": "Facebook", "content_url": "https://facebook.com/p/1", "content_text": removed_text,
            "author_name": "Pat", "author_email": public_email, "rule_codes": ["3a"],
            "explanation": "A personal insult.",
        }),
    );
    assert_eq!(status, 201, "{case}");
    let reference = case["reference"].as_str().unwrap().to_string();
    let link = app.mail_to(public_email, "your post was removed").link().unwrap();
    let secret = path_of(&link).trim_start_matches("/c/").to_string();
    let poster = WebClient::new(&base);
    assert_eq!(poster.get(&path_of(&link)).status, 200);
    assert_eq!(poster.post(&format!("{}/appeal", path_of(&link)), &[("appeal", appeal_text)]).status, 303);
    assert_eq!(poster.get("/c/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").status, 404);
    // A percent-encoded path reaches the same page, and is redacted just the same.
    assert_eq!(poster.get(&format!("/%63/{secret}")).status, 200);
    // Refused: another organisation's moderator asks for the case.
    assert_eq!(api("GET", &format!("/api/v1/cases/{reference}"), &cast.outsider, json!(null)).0, 404);

    let _ = server.kill();
    let _ = server.wait();
    let file = std::fs::File::open(&log_path).unwrap();
    let lines: Vec<String> = BufReader::new(file).lines().map(Result::unwrap).collect();
    assert!(lines.len() > 10, "{lines:?}");

    let mut events: Vec<Value> = Vec::new();
    for line in &lines {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let ts = entry["timestamp"].as_str().unwrap_or_else(|| panic!("no timestamp: {line}"));
        assert!(ts.ends_with('Z') && ts.contains('T'), "not a UTC instant: {line}");
        for marker in [
            password,
            "mkwrongpass4410",
            cast.moderator.as_str(),
            secret.as_str(),
            public_email,
            "mkpublic7731",
            "mkremoved9921",
            "mkappeal5512",
            "0123456789abcdef0123456789abcdef",
        ] {
            assert!(!line.contains(marker), "{marker:?} is in the log: {line}");
        }
        events.push(entry);
    }
    let find = |event: &str| -> Vec<&Value> { events.iter().filter(|e| e["event"] == event).collect() };
    // Every request line carries its request id.
    let requests = find("request");
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|e| e["span"]["id"].as_str().is_some_and(|id| id.len() == 16)),
        "{requests:?}"
    );

    let failed = find("sign_in_failed");
    assert_eq!(failed.len(), 1, "{lines:#?}");
    assert!(failed[0]["account"].as_str().is_some_and(|a| !a.is_empty() && a != "unknown"));
    let signed_in = find("sign_in");
    assert_eq!(signed_in.len(), 1);
    assert_eq!(signed_in[0]["actor"], failed[0]["account"], "the same account, by id");

    let changes = find("case_event");
    let kinds: Vec<&str> = changes.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"removal_recorded") && kinds.contains(&"appeal_lodged"), "{kinds:?}");
    for change in &changes {
        assert_eq!(change["case"], reference.as_str());
        assert!(change["actor"].as_str().is_some_and(|a| !a.is_empty()), "{change}");
    }
    let appeal = changes.iter().find(|e| e["kind"] == "appeal_lodged").unwrap();
    assert_eq!(appeal["actor"], "poster");
    assert!(appeal["span"]["id"].is_string(), "state changes carry the request id: {appeal}");

    let refused = find("refused");
    assert!(
        refused.iter().any(|e| e["span"]["case"] == reference.as_str()
            && e["status"] == 404
            && e["span"]["actor"].as_str().is_some_and(|a| !a.is_empty())),
        "the outsider's refusal names actor and case: {refused:?}"
    );
    assert!(
        refused.iter().any(|e| e["path"] == "/c/…"),
        "wrong links are logged without the link: {refused:?}"
    );
}

/// An admin adds people to their own organisation; they cannot set the password of an account
/// that already exists (it may hold roles elsewhere), so one organisation's admin cannot take
/// over another's moderator.
#[test]
fn an_admin_cannot_take_over_an_existing_account() {
    let app = TestApp::start();
    app.setup();
    with_passwords(&app);
    let victim = "mod@westend.example";
    let out =
        app.cli_with_stdin(&["user", "password", "--email", victim], Some("the victim's own passphrase"));
    assert!(out.status.success());

    let admin = from(&app, "10.9.1.1");
    admin.sign_in(ADMIN, PASSWORD);
    let page = admin.submit(
        "/staff/admin/users",
        "/staff/admin/users",
        &[
            ("email", victim),
            ("name", "Victim"),
            ("role", "moderator"),
            ("password", "chosen by the attacker"),
        ],
    );
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.has("keeps its own password"), "{}", page.body);
    assert_eq!(try_sign_in(&from(&app, "10.9.1.2"), victim, "chosen by the attacker").status, 401);
    assert_eq!(try_sign_in(&from(&app, "10.9.1.3"), victim, "the victim's own passphrase").status, 303);

    // Without a password the account is added, and keeps its own.
    let page = admin.submit(
        "/staff/admin/users",
        "/staff/admin/users",
        &[("email", victim), ("name", "Victim"), ("role", "moderator"), ("password", "")],
    );
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(try_sign_in(&from(&app, "10.9.1.4"), victim, "the victim's own passphrase").status, 303);
}

/// A new password signs out every session of the old one and forgets the browsers it trusted.
#[test]
fn a_new_password_ends_the_old_sessions() {
    let app = TestApp::start();
    app.setup();
    with_passwords(&app);
    let stolen = from(&app, "10.9.2.1");
    stolen.sign_in(MODERATOR, PASSWORD);
    assert_eq!(stolen.get("/staff").status, 200);
    let out = app.cli_with_stdin(&["user", "password", "--email", MODERATOR], Some("a brand new passphrase"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page = stolen.get("/staff");
    assert_eq!(page.status, 303, "the old session is gone");
    assert_eq!(page.location.as_deref(), Some("/sign-in"));
    assert_eq!(try_sign_in(&stolen, MODERATOR, PASSWORD).status, 401);
    assert_eq!(try_sign_in(&stolen, MODERATOR, "a brand new passphrase").status, 303);
}

/// Case references are unique across the database, so two organisations cannot share a
/// prefix; the second is refused with a message instead of failing at its first case.
#[test]
fn organisations_cannot_share_a_reference_prefix() {
    let app = TestApp::start();
    app.setup();
    let pendle = [
        "org",
        "add",
        "--slug",
        "pendle",
        "--name",
        "Pendle Borough",
        "--secretary-email",
        "clerk@pendle.example",
    ];
    // "pendle" would default to PEN, which Penrith already uses.
    let out = app.cli(&pendle);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already numbers its cases PEN-"), "{err}");
    let out = app.cli(&[&pendle[..], &["--prefix", "PDL"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A token acts in its holder's name, so the list says who issued each one.
#[test]
fn tokens_show_who_issued_them() {
    let app = TestApp::start();
    app.setup();
    with_passwords(&app);
    let admin = from(&app, "10.9.3.1");
    admin.sign_in(ADMIN, PASSWORD);
    let page = admin.submit(
        "/staff/admin/tokens",
        "/staff/admin/tokens",
        &[("email", MODERATOR), ("label", "moderation script")],
    );
    assert_eq!(page.status, 201, "{}", page.body);
    let list = admin.get("/staff/admin/tokens").body;
    let row = list.lines().find(|l| l.contains("moderation script")).expect("the new token is listed");
    assert!(row.contains(MODERATOR) && row.contains(ADMIN), "holder and issuer: {row}");
    // The cast's tokens came from the command line.
    assert!(list.lines().any(|l| l.contains("<td data-label=\"Issued by\">command line</td>")), "{list}");
}

/// Every change an admin makes to how the organisation works is in its log, with who made it;
/// a change refused leaves no entry, and other organisations' admins see none of it.
#[test]
fn admin_changes_are_in_the_organisation_log() {
    let app = TestApp::start();
    app.setup();
    with_passwords(&app);
    let admin = from(&app, "10.9.4.1");
    admin.sign_in(ADMIN, PASSWORD);
    // The page each form is on, where it posts, what it sends, and the answer expected.
    type Step<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, u16);
    let steps: [Step; 6] = [
        (
            "/staff/admin/rules",
            "/staff/admin/rules",
            vec![("code", "9z"), ("title", "Spam"), ("summary", "Adverts.")],
            303,
        ),
        (
            "/staff/admin/rules/9z",
            "/staff/admin/rules/9z",
            vec![("title", "Spam and adverts"), ("summary", "Adverts.")],
            303,
        ),
        ("/staff/admin", "/staff/admin/settings", vec![("response_days", "7")], 303),
        (
            "/staff/admin",
            "/staff/admin/closures",
            vec![("day", "2027-08-02"), ("title", "Summer closure")],
            303,
        ),
        (
            "/staff/admin/users",
            "/staff/admin/users",
            vec![("email", "newcomer@example.org"), ("name", "Nia Newcomer"), ("role", "committee")],
            303,
        ),
        (
            "/staff/admin/tokens",
            "/staff/admin/tokens",
            vec![("email", MODERATOR), ("label", "audit script")],
            201,
        ),
    ];
    for (page, action, fields, status) in &steps {
        let done = admin.submit(page, action, fields);
        assert_eq!(done.status, *status, "{action}: {}", done.body);
    }
    // Refused: the rule exists already. Nothing is logged for it.
    let refused = admin.submit(
        "/staff/admin/rules",
        "/staff/admin/rules",
        &[("code", "9z"), ("title", "Again"), ("summary", "x")],
    );
    assert_eq!(refused.status, 422, "{}", refused.body);
    let tokens = admin.get("/staff/admin/tokens").body;
    let id = tokens
        .split("/staff/admin/tokens/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("a token to revoke");
    let revoked = admin.submit(
        "/staff/admin/tokens",
        &format!("/staff/admin/tokens/{id}/revoke"),
        &[("confirm", "yes")],
    );
    assert_eq!(revoked.status, 303, "{}", revoked.body);

    let log = admin.get("/staff/admin/log");
    assert_eq!(log.status, 200);
    let rows: Vec<&str> =
        log.body.lines().filter(|l| l.starts_with("<tr><td data-label=\"When\">")).collect();
    let expected = [
        "revoked an API token",
        "issued an API token: audit script",
        "gave a role to: newcomer@example.org (committee)",
        "added a closure day: Monday 2 August 2027 (Summer closure)",
        "changed the organisation&#x27;s settings: response time",
        "reworded a policy rule: 9z (Spam and adverts)",
        "added a policy rule: 9z (Spam)",
    ];
    assert!(rows.len() >= expected.len(), "{}", log.body);
    for (row, what) in rows.iter().zip(expected) {
        assert!(row.contains(what), "expected {what:?} in {row}");
        assert!(row.contains("<td class=\"long\" data-label=\"Who\">Admin</td>"), "who: {row}");
    }
    assert_eq!(rows.iter().filter(|r| r.contains("Again")).count(), 0, "a refused change is not logged");
    // The cast was set up from the command line, and the log says so.
    assert!(rows.iter().any(|r| r.contains("Someone at the command line")), "{}", log.body);
}
