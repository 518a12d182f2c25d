//! Deadlines end to end: working-day settings and the calculator on the command line,
//! reminders and alerts exactly once however the sweep is run, the dry run, and the paused
//! clock through the API and the public page.

use crate::common::*;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// A removal appealed through the public page; returns its reference and the poster's link.
fn appealed(app: &TestApp, cast: &Cast) -> (String, String) {
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let link = app.mail_to("pat@poster.example", "your post was removed").link().unwrap();
    let (status, _, _) =
        app.post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "Please look again.")]);
    assert_eq!(status, 303);
    (reference, link)
}

/// Runs `n` sweeps at the same instant, as separate processes at the same time.
fn sweep_at_once(app: &TestApp, now: &str, n: usize) {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (db, base, port, now) =
                (app.database_url.clone(), app.base_url.clone(), app.smtp_port, now.to_string());
            std::thread::spawn(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_redress"))
                    .args(["sweep", "--now", &now])
                    .env("DATABASE_URL", db)
                    .env("REDRESS_BASE_URL", base)
                    .env("SMTP_URL", format!("smtp://127.0.0.1:{port}"))
                    .env("RUST_LOG", "warn")
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

fn case(app: &TestApp, cast: &Cast, reference: &str) -> serde_json::Value {
    app.api("GET", &format!("/api/v1/cases/{reference}"), Some(&cast.moderator), None).1
}

#[test]
fn the_calculator_and_the_settings_on_the_command_line() {
    let app = TestApp::start();
    app.setup();
    let from = ["--kind", "response", "--from", "2026-04-02T10:00:00Z"];
    let out = app.cli_ok(&[&["deadline", "--org", ORG][..], &from[..]].concat());
    assert_eq!(out, "2026-04-13T22:59:59Z\nMonday 13 April 2026\n", "5 working days in England and Wales");
    app.cli_ok(&["org", "set", ORG, "--nation", "scotland"]);
    let out = app.cli_ok(&[&["deadline", "--org", ORG][..], &from[..]].concat());
    assert_eq!(out, "2026-04-10T22:59:59Z\nFriday 10 April 2026\n");
    app.cli_ok(&["org", "set", ORG, "--response-days", "3", "--response-count", "calendar"]);
    let out = app.cli_ok(&[&["deadline", "--org", ORG][..], &from[..]].concat());
    assert_eq!(out, "2026-04-05T22:59:59Z\nSunday 5 April 2026\n");
    app.cli_ok(&[
        "org",
        "set",
        ORG,
        "--response-days",
        "5",
        "--response-count",
        "working",
        "--nation",
        "england-and-wales",
    ]);
    // A one-off holiday and a closure day both move a working-day deadline.
    app.cli_ok(&[
        "holiday",
        "add",
        "--nation",
        "england-and-wales",
        "--date",
        "2026-04-08",
        "--title",
        "A royal occasion",
    ]);
    app.cli_ok(&["closure", "add", "--org", ORG, "--date", "2026-04-09", "--title", "Office move"]);
    let out = app.cli_ok(&[&["deadline", "--org", ORG][..], &from[..]].concat());
    assert_eq!(out, "2026-04-15T22:59:59Z\nWednesday 15 April 2026\n");
    let out =
        app.cli_ok(&["deadline", "--org", "westend", "--kind", "appeal", "--from", "2026-04-02T10:00:00Z"]);
    assert_eq!(out.lines().nth(1), Some("Thursday 30 April 2026"), "28 calendar days");

    let bad = app.cli(&["org", "set", ORG, "--nation", "wales"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("england-and-wales, scotland or northern-ireland"));
    let bad = app.cli(&["org", "set", ORG, "--appeal-count", "lunar"]);
    assert!(!bad.status.success());
    let bad = app.cli(&["deadline", "--org", ORG, "--kind", "decade", "--from", "2026-04-02T10:00:00Z"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("appeal, response, escalation or committee"));
}

#[test]
fn reminders_and_alerts_go_out_once_however_often_the_sweep_runs() {
    let app = TestApp::start();
    let cast = app.setup();
    let (reference, link) = appealed(&app, &cast);
    let due = at(case(&app, &cast, &reference)["due_at"].as_str().unwrap());

    // Two days before the deadline nothing is due yet.
    let out = app.cli_ok(&["sweep", "--now", &(due - Duration::days(4)).to_rfc3339()]);
    assert!(out.contains("0 reminders"), "{out}");

    // Within the last working day: sweep three times, then three at once.
    let reminder_time = (due - Duration::hours(6)).to_rfc3339();
    for _ in 0..3 {
        app.cli_ok(&["sweep", "--now", &reminder_time]);
    }
    sweep_at_once(&app, &reminder_time, 3);
    let reminder = app.mail_to(MODERATOR, "Reminder: response due");
    assert!(reminder.subject.contains(&reference));
    app.mail_to(MODERATOR2, "Reminder: response due");

    // Past the deadline: the overdue alert, also swept repeatedly and at once.
    let late = (due + Duration::minutes(1)).to_rfc3339();
    sweep_at_once(&app, &late, 3);
    app.cli_ok(&["sweep", "--now", &late]);
    app.mail_to(SECRETARY, "Response overdue");
    app.wait_outbox_settled();
    assert_eq!(app.count_mail(MODERATOR, "Reminder: response due"), 1);
    assert_eq!(app.count_mail(MODERATOR2, "Reminder: response due"), 1);
    assert_eq!(app.count_mail(SECRETARY, "Response overdue"), 1);
    assert_eq!(app.count_mail("pat@poster.example", "not answered in time"), 1);
    let events: Vec<String> = case(&app, &cast, &reference)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events.iter().filter(|k| *k == "reminder_sent").count(), 1, "{events:?}");
    assert_eq!(events.iter().filter(|k| *k == "marked_overdue").count(), 1, "{events:?}");

    // A new stage has its own deadline and its own reminder: the committee's target.
    let overdue_mail = app.mail_to("pat@poster.example", "not answered in time");
    app.post_form(
        &format!("{}/escalate", path_of(&overdue_mail.link().unwrap())),
        &[("case_for_committee", "No answer came.")],
    );
    let _ = link;
    let target = at(case(&app, &cast, &reference)["due_at"].as_str().unwrap());
    let before_target = (target - Duration::hours(30)).to_rfc3339();
    app.cli_ok(&["sweep", "--now", &before_target]);
    app.cli_ok(&["sweep", "--now", &before_target]);
    let reminder = app.mail_to(SECRETARY, "Reminder: committee decision due");
    assert!(reminder.body.contains("No answer came."), "the secretary sees the history");
    app.wait_outbox_settled();
    assert_eq!(app.count_mail(SECRETARY, "Reminder: committee decision due"), 1);

    // Switched off, no reminder.
    app.cli_ok(&["org", "set", ORG, "--response-reminder-days", "0"]);
    let (second, _) = {
        let (_, c) = app.record_removal(&cast.moderator, json!({"author_email": "sam@poster.example"}));
        let link = app.mail_to("sam@poster.example", "your post was removed").link().unwrap();
        app.post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "Again.")]);
        (c["reference"].as_str().unwrap().to_string(), link)
    };
    let due = at(case(&app, &cast, &second)["due_at"].as_str().unwrap());
    let out = app.cli_ok(&["sweep", "--now", &(due - Duration::hours(6)).to_rfc3339()]);
    assert!(out.contains("0 reminders"), "{out}");
}

#[test]
fn the_dry_run_changes_nothing() {
    let app = TestApp::start();
    let cast = app.setup();
    let (reference, _) = appealed(&app, &cast);
    let due = at(case(&app, &cast, &reference)["due_at"].as_str().unwrap());
    app.wait_outbox_settled();
    let before = app.counts();
    let mails = app.smtp.all().len();
    let out = app.cli_ok(&["sweep", "--dry-run", "--now", &(due + Duration::seconds(1)).to_rfc3339()]);
    assert!(out.starts_with("dry run, nothing changed"), "{out}");
    assert!(out.contains(&format!("would be overdue {reference}")), "{out}");
    assert_eq!(app.counts(), before);
    // The sweep has exited and queued nothing, so once the outbox is settled again any email
    // it caused has arrived.
    app.wait_outbox_settled();
    assert_eq!(app.smtp.all().len(), mails, "no email");
    assert_eq!(case(&app, &cast, &reference)["overdue"], false);
}

#[test]
fn the_clock_pauses_for_more_information_and_resumes_with_the_days_left() {
    let app = TestApp::start();
    let cast = app.setup();
    let (reference, link) = appealed(&app, &cast);
    let before = case(&app, &cast, &reference);
    let days_left = before["days_left"].as_i64().unwrap();
    assert!((4..=5).contains(&days_left), "{before}");

    // Only a moderator asks, and a question is needed.
    let path = format!("/api/v1/cases/{reference}/request-info");
    let (status, _) = app.api("POST", &path, Some(&cast.secretary), Some(&json!({"question": "?"})));
    assert_eq!(status, 403);
    let (status, body) = app.api("POST", &path, Some(&cast.moderator), Some(&json!({})));
    assert_eq!(status, 422);
    assert!(body["fields"]["question"].is_string());

    let (status, paused) = app.api(
        "POST",
        &path,
        Some(&cast.moderator),
        Some(&json!({"question": "Which candidate did you mean?"})),
    );
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["due_at"], serde_json::Value::Null, "no running response deadline");
    assert!(paused["info_due_at"].is_string());
    assert_eq!(paused["paused_days_left"].as_i64(), Some(days_left));
    let (status, _) = app.api("POST", &path, Some(&cast.moderator), Some(&json!({"question": "And again?"})));
    assert_eq!(status, 409, "one request at a time");

    let ask = app.mail_to("pat@poster.example", "we need more information");
    assert!(ask.body.contains("Which candidate did you mean?"));
    assert!(ask.body.contains("by the end of"));
    let (_, page) = app.get_page(&path_of(&ask.link().unwrap()));
    assert!(
        page.contains("Which candidate did you mean?") && page.contains("name=\"information\""),
        "{page}"
    );

    // Escalating is not open while the clock is paused.
    let (status, _, _) =
        app.post_form(&format!("{}/escalate", path_of(&link)), &[("case_for_committee", "x")]);
    assert_eq!(status, 409);

    // An empty answer comes back with the error; a real one restarts the clock.
    let (status, _, page) =
        app.post_form(&format!("{}/information", path_of(&link)), &[("information", " ")]);
    assert_eq!(status, 422);
    assert!(page.contains("href=\"#information\""));
    let (status, _, _) = app.post_form(
        &format!("{}/information", path_of(&link)),
        &[("information", "The one standing in Penrith.")],
    );
    assert_eq!(status, 303);
    let resumed = case(&app, &cast, &reference);
    assert_eq!(resumed["info_due_at"], serde_json::Value::Null);
    assert_eq!(resumed["due_kind"], "response");
    assert_eq!(resumed["days_left"].as_i64(), Some(days_left), "the same counted days are left: {resumed}");
    let note = app.mail_to(MODERATOR, "More information received");
    assert!(note.body.contains("The one standing in Penrith."));
    let kinds: Vec<&str> =
        resumed["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["removal_recorded", "appeal_lodged", "info_requested", "info_provided"]);
}

#[test]
fn an_unanswered_request_lets_the_clock_run_again() {
    let app = TestApp::start();
    let cast = app.setup();
    let (reference, _) = appealed(&app, &cast);
    let (_, paused) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/request-info"),
        Some(&cast.moderator),
        Some(&json!({"question": "Can you explain?"})),
    );
    let answer_by = at(paused["info_due_at"].as_str().unwrap());
    let out = app.cli_ok(&["sweep", "--now", &(answer_by - Duration::hours(1)).to_rfc3339()]);
    assert!(out.contains("0 clocks restarted"), "{out}");
    let out = app.cli_ok(&["sweep", "--now", &(answer_by + Duration::seconds(1)).to_rfc3339()]);
    assert!(out.contains(&format!("restarted {reference}")), "{out}");
    let out = app.cli_ok(&["sweep", "--now", &(answer_by + Duration::seconds(1)).to_rfc3339()]);
    assert!(out.contains("0 clocks restarted"), "{out}");
    let c = case(&app, &cast, &reference);
    assert_eq!(c["due_kind"], "response");
    assert!(at(c["due_at"].as_str().unwrap()) > answer_by);
    app.mail_to(MODERATOR, "No answer to the request for information");
}
