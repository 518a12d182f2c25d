//! Mail is stored with its case before it is sent: a mail server that is down loses nothing.

use crate::common::*;
use serde_json::json;

#[test]
fn smtp_down_keeps_the_case_and_the_email_until_it_can_be_sent() {
    // Reserve a port with nothing listening on it yet.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    drop(reserved);
    let placeholder = SmtpServer::start();
    let app = TestApp::start_with(placeholder, port);
    let cast = app.setup();

    let (status, case) = app.record_removal(&cast.moderator, json!({}));
    assert_eq!(status, 201, "the case change does not wait for the mail server");
    let reference = case["reference"].as_str().unwrap().to_string();

    // The worker tries, fails, and keeps the email pending with the error recorded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let email = loop {
        let (_, case) = app.api("GET", &format!("/api/v1/cases/{reference}"), Some(&cast.moderator), None);
        let email = case["emails"][0].clone();
        if email["attempts"].as_i64().unwrap_or(0) >= 1 && email["status"] == "pending" {
            break email;
        }
        assert!(std::time::Instant::now() < deadline, "no failed attempt recorded: {case}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(email["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{email}");
    assert_eq!(app.counts().cases, 1);

    // The waiting email holds no working link: the link is minted only as an attempt is made,
    // and revoked when the attempt fails, so neither the outbox (which staff can read) nor a
    // failed attempt leaves a way into the case.
    {
        use diesel::prelude::*;
        use redress::db::schema::{case_tokens, outbox};
        let pool = redress::db::connect(&app.database_url, 1).unwrap();
        let mut conn = pool.get().unwrap();
        let bodies: Vec<(String, Option<String>)> =
            outbox::table.select((outbox::body_text, outbox::body_html)).load(&mut *conn).unwrap();
        let notice = bodies.iter().find(|(text, _)| text.contains("/c/")).expect("the notice is queued");
        assert!(notice.0.contains("/c/link-added-when-sent"), "{}", notice.0);
        assert!(notice.1.as_deref().is_some_and(|h| h.contains("/c/link-added-when-sent")));
        let live: i64 = case_tokens::table
            .filter(case_tokens::revoked_at.is_null())
            .count()
            .get_result(&mut *conn)
            .unwrap();
        assert_eq!(live, 0, "a failed attempt's link is revoked");
        let page = app.get_page(&format!("/c/{}", "link-added-when-sent"));
        assert_eq!(page.0, 404);
    }

    // The server comes up on that port: the email goes out, once.
    let smtp = SmtpServer::start_on(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while smtp.all().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the email was never delivered");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    app.wait_mail_settled(&smtp);
    let received = smtp.all();
    assert_eq!(received.len(), 1, "delivered exactly once");
    assert!(received[0].subject.contains(&reference));
    assert!(received[0].body.contains("/c/"), "the link survives the wait");
    let link = received[0].link().expect("a private link");
    assert_eq!(app.get_page(&path_of(&link)).0, 200, "the delivered link works");
    let (_, case) = app.api("GET", &format!("/api/v1/cases/{reference}"), Some(&cast.moderator), None);
    assert_eq!(case["emails"][0]["status"], "sent");
    assert!(case["emails"][0]["attempts"].as_i64().unwrap() >= 2);
}

#[test]
fn sent_mail_is_threaded_by_message_id_and_keeps_no_link_in_the_record() {
    let app = TestApp::start();
    let cast = app.setup();
    app.record_removal(&cast.moderator, json!({}));
    let notice = app.mail_to("pat@poster.example", "your post was removed");
    assert!(
        notice.header("Message-ID").is_some_and(|id| id.ends_with("@penrith.example>")),
        "{}",
        notice.headers
    );
    app.wait_outbox_settled();
    // The delivered record no longer holds the private link: only its hash is kept.
    let token = notice.link().unwrap().rsplit('/').next().unwrap().to_string();
    assert_eq!(token.len(), 64, "256 random bits");
    use diesel::prelude::*;
    use redress::db::schema::{case_tokens, outbox};
    let pool = redress::db::connect(&app.database_url.clone(), 1).unwrap();
    let mut conn = pool.get().unwrap();
    let bodies: Vec<String> = outbox::table.select(outbox::body_text).load(&mut *conn).unwrap();
    assert_eq!(bodies.len(), 1);
    assert!(!bodies[0].contains(&token), "{}", bodies[0]);
    assert!(bodies[0].contains("[private link removed once sent]"));
    let hashes: Vec<String> = case_tokens::table.select(case_tokens::token_hash).load(&mut *conn).unwrap();
    assert!(!hashes.contains(&token));
    assert!(hashes.contains(&redress::security::hash_secret(&token)));
    // And the link still works: the hash finds it.
    let (status, _) = app.get_page(&path_of(&notice.link().unwrap()));
    assert_eq!(status, 200);
}
