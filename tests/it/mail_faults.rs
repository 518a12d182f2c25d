//! Email against a real SMTP server that misbehaves: down, busy (421), refusing (550); and the
//! headers of what goes out: threading, Reply-To, multipart, nothing injected.

use crate::common::web::WebClient;
use crate::common::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn emails(app: &TestApp, cast: &Cast, reference: &str) -> Vec<serde_json::Value> {
    let (_, case) = app.api("GET", &format!("/api/v1/cases/{reference}"), Some(&cast.moderator), None);
    case["emails"].as_array().unwrap().clone()
}

#[test]
fn every_case_change_survives_a_mail_server_that_is_down_and_each_email_goes_out_once() {
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    drop(reserved);
    let app = TestApp::start_with(SmtpServer::start(), port);
    let cast = app.setup();

    // Three removals, an appeal and a complaint while nothing listens on the mail port.
    let mut references = vec![];
    for i in 0..3 {
        let (status, case) =
            app.record_removal(&cast.moderator, json!({"author_email": format!("author{i}@poster.example")}));
        assert_eq!(status, 201);
        references.push(case["reference"].as_str().unwrap().to_string());
    }
    let (status, _, _) = app.post_form(
        "/o/penrith/report",
        &[
            ("platform", "X"),
            ("content_url", "https://x.com/p/1"),
            ("reason", "Spam."),
            ("reporter_name", "Robin"),
            ("reporter_email", "robin@reporter.example"),
        ],
    );
    assert_eq!(status, 201);
    let counts = app.counts();
    assert_eq!(counts.cases, 4, "every change committed");
    assert_eq!(counts.emails, 3 + 1 + 2, "three notices, an acknowledgement, two moderators");
    wait("failed attempts to be recorded", || {
        references.iter().all(|r| {
            emails(&app, &cast, r)
                .iter()
                .all(|e| e["attempts"].as_i64().unwrap() >= 1 && e["status"] == "pending")
        })
    });

    // The server comes up: everything is delivered, exactly once.
    let smtp = SmtpServer::start_on(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
    wait("delivery", || smtp.all().len() >= 6);
    app.wait_mail_settled(&smtp);
    let all = smtp.all();
    assert_eq!(all.len(), 6, "{:#?}", all.iter().map(|m| &m.subject).collect::<Vec<_>>());
    let mut ids: Vec<String> = all.iter().map(|m| m.header("Message-ID").unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "no message twice");
}

#[test]
fn a_busy_server_is_tried_again_and_delivers_once() {
    let app = TestApp::start();
    let cast = app.setup();
    app.smtp.answer_next(421, "Try again later");
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let notice = app.mail_to("pat@poster.example", "your post was removed");
    assert!(notice.subject.contains(&reference));
    app.wait_outbox_settled();
    assert_eq!(app.count_mail("pat@poster.example", "your post was removed"), 1);
    assert_eq!(app.smtp.answers(), vec![421, 250]);
    let email = &emails(&app, &cast, &reference)[0];
    assert_eq!(email["status"], "sent");
    assert_eq!(email["attempts"], 2, "{email}");
}

#[test]
fn a_refusal_fails_at_once_and_the_admins_are_told() {
    let app = TestApp::start();
    let cast = app.setup();
    app.smtp.answer_next(550, "No such mailbox here");
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    wait("the failure", || emails(&app, &cast, &reference)[0]["status"] == "failed");
    // A failed email is never claimed again, so once nothing else is to be sent a retry could
    // only be one already under way.
    app.wait_outbox_settled();
    let email = &emails(&app, &cast, &reference)[0];
    assert_eq!(email["attempts"], 1, "not retried: {email}");
    assert!(
        email["last_error"].as_str().unwrap().contains("No such mailbox here"),
        "the server's answer is kept"
    );
    assert_eq!(app.smtp.answers(), vec![550]);

    // The admins see it on their work queue; a moderator does not.
    let out =
        app.cli_with_stdin(&["user", "password", "--email", ADMIN], Some("correct horse battery staple"));
    assert!(out.status.success());
    let admin = WebClient::new(&app.base_url);
    admin.sign_in(ADMIN, "correct horse battery staple");
    let queue = admin.get("/staff");
    assert!(
        queue.has("Emails that could not be delivered")
            && queue.has("No such mailbox here")
            && queue.has(&reference)
    );

    // The CLI lists it, and a retry sends it.
    let listed = app.cli_ok(&["outbox", "list", "--status", "failed"]);
    let id = listed.split('\t').next().unwrap().to_string();
    assert!(listed.contains("removal_notice") && listed.contains("failed"), "{listed}");
    app.cli_ok(&["outbox", "retry", &id]);
    app.mail_to("pat@poster.example", "your post was removed");
    app.wait_outbox_settled();
    assert!(!admin.get("/staff").has("Emails that could not be delivered"));
    let again = app.cli(&["outbox", "retry", &id]);
    assert!(!again.status.success(), "a sent email is never sent twice");
    let cancel = app.cli(&["outbox", "cancel", &id]);
    assert!(!cancel.status.success());
}

#[test]
fn emails_of_a_case_thread_and_reply_to_the_organisation() {
    let app = TestApp::start();
    let cast = app.setup();
    app.record_removal(&cast.moderator, json!({"content_text": "<script>alert('x')</script> & more"}));
    let notice = app.mail_to("pat@poster.example", "your post was removed");
    let link = notice.link().unwrap();
    let (status, _, page) = app.post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "Please.")]);
    assert_eq!(status, 303, "{link} {page}");
    let second = app.mail_to("pat@poster.example", "we have your appeal");
    let first_id = notice.header("Message-ID").unwrap();
    assert_eq!(second.header("In-Reply-To").as_deref(), Some(first_id.as_str()), "{}", second.headers);
    assert!(second.header("References").unwrap().contains(&first_id));
    assert!(notice.header("In-Reply-To").is_none(), "the first email starts the thread");
    assert_eq!(notice.header("Reply-To").as_deref(), Some(SECRETARY));

    // Multipart: the text and an HTML alternative, in which what people wrote is escaped.
    assert!(
        notice.header("Content-Type").unwrap().starts_with("multipart/alternative"),
        "{}",
        notice.headers
    );
    let types: Vec<&str> = notice.parts.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["text/plain", "text/html"], "{}", notice.raw);
    let html = notice.html.as_deref().unwrap();
    assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"), "escaped in the HTML part");
    assert!(notice.body.contains("<script>alert('x')</script> & more"), "as written in the text part");
}

#[test]
fn nothing_in_a_header_can_be_injected() {
    let app = TestApp::start();
    let cast = app.setup();
    // Through the API and the form, line breaks in names and addresses are refused outright.
    let (status, body) = app.record_removal(
        &cast.moderator,
        json!({"author_name": "Pat\r\nBcc: evil@attacker.example", "author_email": "pat@poster.example\r\nBcc: evil@attacker.example"}),
    );
    assert_eq!(status, 422, "{body}");
    let (status, _, _) = app.post_form(
        "/o/penrith/report",
        &[
            ("platform", "X\r\nBcc: evil@attacker.example"),
            ("content_url", "https://x.com/p/1"),
            ("reason", "r"),
            ("reporter_name", "Robin\nCc: evil@attacker.example"),
            ("reporter_email", "robin@reporter.example"),
        ],
    );
    assert_eq!(status, 422);

    // Below the checks, the message builder folds whatever reaches a subject into one line.
    let dir = tempfile::tempdir().unwrap();
    let config = redress::config::Config {
        database_url: "unused".into(),
        bind: "127.0.0.1:0".parse().unwrap(),
        base_url: "http://127.0.0.1".into(),
        smtp_url: None,
        mail_from: "Redress <redress@example.org>".into(),
        mail_dir: dir.path().to_path_buf(),
        sweep_interval_secs: 60,
        outbox_poll_secs: 60,
        retry_base_secs: 60,
        outbox_lease_secs: 300,
        smtp_timeout_secs: 60,
        outbox_senders: 1,
        email_templates: None,
        trust_proxy: false,
    };
    let mailer = redress::mail::outbox::Mailer::from_config(&config).unwrap();
    let now = chrono::Utc::now().naive_utc();
    let row = redress::store::OutboxRow {
        id: "00000000-0000-0000-0000-000000000001".into(),
        organisation_id: redress::ids::OrgId::from_raw("org"),
        case_id: None,
        event_id: None,
        template: "response".into(),
        recipient_kind: "poster".into(),
        to_address: "pat@poster.example".into(),
        subject: "Our answer\r\nBcc: evil@attacker.example\r\nX-Evil: yes".into(),
        body_text: "Body".into(),
        status: "pending".into(),
        attempts: 0,
        last_error: None,
        next_attempt_at: now,
        locked_until: None,
        created_at: now,
        sent_at: None,
        body_html: None,
    };
    let thread = redress::mail::outbox::Thread { reply_to: Some("sec@example.org".into()), earlier: vec![] };
    let message = mailer.build(&row, &thread).unwrap();
    let raw = String::from_utf8(message.formatted()).unwrap();
    let headers = raw.split("\r\n\r\n").next().unwrap();
    assert!(!headers.lines().any(|l| l.starts_with("Bcc:") || l.starts_with("X-Evil:")), "{headers}");
    assert_eq!(message.envelope().to().len(), 1, "one recipient only");
    // A recipient address with a line break is refused before anything is sent.
    let mut bad = row.clone();
    bad.to_address = "pat@poster.example\r\nBcc: evil@attacker.example".into();
    assert!(mailer.build(&bad, &thread).is_err());
}

#[test]
fn an_email_left_sending_by_a_crashed_worker_goes_out_after_its_lease() {
    use diesel::prelude::*;
    use redress::db::schema::outbox;
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    drop(reserved);
    let app = TestApp::start_with(SmtpServer::start(), port);
    let cast = app.setup();
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    // As if a worker had claimed it and died: "sending", with a lease that has not run out.
    let pool = redress::db::connect(&app.database_url.clone(), 1).unwrap();
    let mut conn = pool.get().unwrap();
    wait("the first failed attempt", || {
        emails(&app, &cast, &reference)[0]["attempts"].as_i64().unwrap() >= 1
    });
    let lease = Duration::from_secs(4);
    let leased_at = Instant::now();
    let lease_end = chrono::Utc::now().naive_utc() + chrono::Duration::from_std(lease).unwrap();
    // Only while no worker holds it: a worker in the middle of a retry would otherwise still
    // send it once the mail server is up, whatever lease this writes.
    let took = Instant::now();
    while diesel::update(outbox::table.filter(outbox::status.eq("pending")))
        .set((outbox::status.eq("sending"), outbox::locked_until.eq(Some(lease_end))))
        .execute(&mut *conn)
        .unwrap()
        == 0
    {
        assert!(took.elapsed() < Duration::from_secs(10), "the email never came back to pending");
        std::thread::sleep(Duration::from_millis(20));
    }
    let smtp = SmtpServer::start_on(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
    // What is tested here is time itself: nobody may take the email before its lease ends.
    // No event marks "the worker looked and left it", so watch it for two of the worker's
    // one-second polls, stopping well short of the lease's end.
    while leased_at.elapsed() < lease - Duration::from_millis(1500) {
        assert!(smtp.all().is_empty(), "nobody takes an email whose lease is still running");
        std::thread::sleep(Duration::from_millis(100));
    }
    wait("the email, once its lease ran out", || !smtp.all().is_empty());
    app.wait_mail_settled(&smtp);
    assert_eq!(smtp.all().len(), 1);
    assert_eq!(emails(&app, &cast, &reference)[0]["status"], "sent");
}
