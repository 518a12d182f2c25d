//! Every page a person reads, in each state of a removal and of a complaint and for each
//! audience (the poster or reporter behind their private link, and staff), speaks plain words:
//! no outcome or state name of the API, no word joined by an underscore. The emails are held
//! to the same in the unit tests of `services::case::email`.

use crate::common::web::WebClient;
use crate::common::*;
use serde_json::json;

const PASSWORD: &str = "a plain and long passphrase";

/// The text a browser shows: every text node outside `<script>` and `<style>`, the title
/// included.
fn visible_text(html: &str) -> String {
    let document = scraper::Html::parse_document(html);
    let mut out = String::new();
    for node in document.tree.nodes() {
        if let scraper::Node::Text(text) = node.value() {
            let hidden = node.parent().and_then(|p| p.value().as_element().map(|e| e.name().to_string()));
            if !matches!(hidden.as_deref(), Some("script" | "style")) {
                out.push_str(text);
                out.push(' ');
            }
        }
    }
    out
}

fn assert_plain(label: &str, html: &str) {
    let text = visible_text(html);
    let found = redress::domain::words::api_words(&text);
    assert!(found.is_empty(), "{label}: {found:?} in a page meant for a person:\n{text}");
}

struct Readers {
    app: TestApp,
    cast: Cast,
    moderator: WebClient,
    committee: WebClient,
}

impl Readers {
    fn new() -> Self {
        let app = TestApp::start();
        let cast = app.setup();
        let signed_in = |email: &str| {
            app.set_password(email, PASSWORD);
            let web = WebClient::new(&app.base_url);
            web.sign_in(email, PASSWORD);
            web
        };
        let (moderator, committee) = (signed_in(MODERATOR), signed_in(COMMITTEE));
        Readers { app, cast, moderator, committee }
    }

    /// The party's page and the staff case page of `reference`, read in state `label`.
    fn read(&self, label: &str, link: &str, reference: &str) {
        let (status, page) = self.app.get_page(&path_of(link));
        assert_eq!(status, 200, "{label}: {page}");
        assert_plain(&format!("{label}, the party's page"), &page);
        let staff = self.moderator.get(&format!("/staff/cases/{reference}"));
        assert_eq!(staff.status, 200, "{label}: {}", staff.body);
        assert_plain(&format!("{label}, the staff case page"), &staff.body);
    }

    fn api(&self, token: &str, path: &str, body: serde_json::Value) {
        let (status, answer) = self.app.api("POST", path, Some(token), Some(&body));
        assert_eq!(status, 200, "{path}: {answer}");
    }
}

#[test]
fn a_removal_in_every_state_reads_plainly() {
    let r = Readers::new();
    let (app, cast) = (&r.app, &r.cast);
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let link = app.mail_to("pat@poster.example", "your post was removed").link().unwrap();
    r.read("notice sent", &link, &reference);

    let (status, _, _) = app.post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "It was fair.")]);
    assert_eq!(status, 303);
    r.read("appeal lodged", &link, &reference);

    let cases = format!("/api/v1/cases/{reference}");
    r.api(
        &cast.moderator,
        &format!("{cases}/response"),
        json!({"outcome": "uphold", "reasons": "It named a person."}),
    );
    r.read("appeal turned down", &link, &reference);

    let (status, _, _) = app
        .post_form(&format!("{}/escalate", path_of(&link)), &[("case_for_committee", "Please look again.")]);
    assert_eq!(status, 303);
    r.read("escalated", &link, &reference);
    let committee = r.committee.get("/staff/committee");
    assert_eq!(committee.status, 200, "{}", committee.body);
    assert_plain("the committee's page", &committee.body);

    r.api(
        &cast.committee,
        &format!("{cases}/decision"),
        json!({"outcome": "uphold", "reasons": "It named a person."}),
    );
    r.read("decided", &link, &reference);
    // The poster's page opens with the decision itself and the committee's reasons.
    let (_, page) = app.get_page(&path_of(&link));
    let panel = crate::common::web::Page { status: 200, location: None, body: page }.texts(".panel").concat();
    assert!(panel.contains("The executive committee decided the post stays removed"), "{panel}");
    assert!(panel.contains("It named a person.") && panel.contains("final"), "{panel}");

    // A second removal, put back by the moderators.
    let (_, case) = app.record_removal(&cast.moderator, json!({"content_url": "https://facebook.com/p/2"}));
    let second = case["reference"].as_str().unwrap().to_string();
    let link2 = app.wait_for_mail("the second notice", |m| m.body.contains(&second)).link().unwrap();
    app.post_form(&format!("{}/appeal", path_of(&link2)), &[("appeal", "It was a joke.")]);
    r.api(
        &cast.moderator,
        &format!("/api/v1/cases/{second}/response"),
        json!({"outcome": "reinstate", "reasons": "On reflection, banter."}),
    );
    r.read("put back", &link2, &second);
    let (_, page) = app.get_page(&path_of(&link2));
    assert!(
        page.contains("your post is to be put back") && page.contains("On reflection, banter."),
        "{page}"
    );

    for path in ["/staff", "/staff/committee", "/staff/removals/new"] {
        let page = r.moderator.get(path);
        assert_plain(path, &page.body);
    }
}

#[test]
fn a_complaint_in_every_state_reads_plainly() {
    let r = Readers::new();
    let (app, cast) = (&r.app, &r.cast);
    let (status, form) = app.get_page("/o/penrith/report");
    assert_eq!(status, 200);
    assert_plain("the complaint form", &form);
    let (status, _, page) = app.post_form("/o/penrith/report", COMPLAINT);
    assert_eq!(status, 201, "{page}");
    assert_plain("the complaint received page", &page);
    let ack = app.mail_to("robin@reporter.example", "we have your report");
    let link = ack.link().unwrap();
    let reference = ack.subject.split(['(', ')']).nth(1).unwrap().to_string();
    r.read("complaint received", &link, &reference);

    let cases = format!("/api/v1/cases/{reference}");
    r.api(
        &cast.moderator,
        &format!("{cases}/response"),
        json!({"outcome": "no_action", "reasons": "Robust but fair."}),
    );
    r.read("no action", &link, &reference);
    let (_, page) = app.get_page(&path_of(&link));
    assert!(page.contains("The moderators decided to take no action"), "{page}");

    app.post_form(&format!("{}/escalate", path_of(&link)), &[("case_for_committee", "Please look again.")]);
    r.read("escalated", &link, &reference);
    r.api(
        &cast.committee,
        &format!("{cases}/decision"),
        json!({"outcome": "remove", "reasons": "It is personal."}),
    );
    r.read("decided", &link, &reference);
    let (_, page) = app.get_page(&path_of(&link));
    let panel = crate::common::web::Page { status: 200, location: None, body: page }.texts(".panel").concat();
    assert!(
        panel.contains("The executive committee decided the reported content is to be removed"),
        "{panel}"
    );
    assert!(panel.contains("It is personal."), "{panel}");
}

#[test]
fn the_admin_pages_read_plainly() {
    let app = TestApp::start();
    app.setup();
    app.set_password(ADMIN, PASSWORD);
    let admin = WebClient::new(&app.base_url);
    admin.sign_in(ADMIN, PASSWORD);
    for path in [
        "/staff/admin",
        "/staff/admin/rules/3a",
        "/staff/admin/rules",
        "/staff/admin/users",
        "/staff/admin/tokens",
        "/staff/admin/log",
    ] {
        let page = admin.get(path);
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert_plain(path, &page.body);
    }
    for path in ["/", "/staff/sign-in"] {
        let (_, page) = app.get_page(path);
        assert_plain(path, &page);
    }
}

/// The public page of the procedure gives the organisation's own time limits, in words that
/// say whether days are working days, and follows the settings when they change.
#[test]
fn the_procedure_page_shows_the_organisations_own_deadlines() {
    let app = TestApp::start();
    app.setup();
    let (status, page) = app.get_page("/o/penrith");
    assert_eq!(status, 200, "{page}");
    assert_plain("the procedure page", &page);
    assert!(page.contains("within 28 days, weekends and holidays included of our notice"), "{page}");
    assert!(page.contains("answer your appeal within 5 working days"), "{page}");
    assert!(
        page.contains("href=\"/o/penrith/report\"") && page.contains("href=\"/o/penrith/accessibility\"")
    );
    assert_eq!(app.get_page("/o/nobody").0, 404);

    app.set_password(ADMIN, PASSWORD);
    let admin = WebClient::new(&app.base_url);
    admin.sign_in(ADMIN, PASSWORD);
    let saved = admin.submit(
        "/staff/admin",
        "/staff/admin/settings",
        &[("response_days", "7"), ("escalation_window_days", "14"), ("escalation_window_count", "working")],
    );
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (_, page) = app.get_page("/o/penrith");
    assert!(page.contains("answer your appeal within 7 working days"), "{page}");
    assert!(page.contains("within 14 working days of the answer"), "{page}");
    let (_, form) = app.get_page("/o/penrith/report");
    assert!(form.contains("We will answer within 7 working days."), "{form}");
}

/// The accessibility statement starts as the model, filled in, and the admin can rewrite it
/// (and put the model back by saving it empty); the change is in the organisation's log.
#[test]
fn an_admin_writes_the_accessibility_statement() {
    let app = TestApp::start();
    app.setup();
    let (status, page) = app.get_page("/o/penrith/accessibility");
    assert_eq!(status, 200);
    assert!(page.contains("Penrith CLP runs these pages with Redress") && page.contains(SECRETARY), "{page}");

    app.set_password(ADMIN, PASSWORD);
    let admin = WebClient::new(&app.base_url);
    admin.sign_in(ADMIN, PASSWORD);
    let form = admin.get("/staff/admin/accessibility");
    assert_eq!(form.status, 200);
    assert!(form.has("complete the parts in square brackets"), "{}", form.body);
    let saved = admin.submit(
        "/staff/admin/accessibility",
        "/staff/admin/accessibility",
        &[("text", "Our own statement, reviewed in March.")],
    );
    assert_eq!(saved.location.as_deref(), Some("/staff/admin/accessibility?done=statement"));
    assert_eq!(
        admin.get("/staff/admin/accessibility?done=statement").texts(".banner-heading"),
        ["Accessibility statement saved"]
    );
    let (_, page) = app.get_page("/o/penrith/accessibility");
    assert!(page.contains("Our own statement, reviewed in March.") && !page.contains("runs these pages"));
    assert!(admin.get("/staff/admin/log").has("rewrote the accessibility statement"));

    let too_long = "x".repeat(20_001);
    let refused =
        admin.submit("/staff/admin/accessibility", "/staff/admin/accessibility", &[("text", &too_long)]);
    assert_eq!(refused.status, 422);
    assert!(refused.has("href=\"#text\""), "{}", refused.body);

    admin.submit("/staff/admin/accessibility", "/staff/admin/accessibility", &[("text", "  ")]);
    let (_, page) = app.get_page("/o/penrith/accessibility");
    assert!(page.contains("runs these pages with Redress"), "the model is back: {page}");
}

/// An admin's first screen lists what is left to set up, each item a link, until all of it
/// is done; a moderator never sees it.
#[test]
fn the_admins_first_screen_lists_what_is_left_to_do() {
    let app = TestApp::start();
    app.setup();
    app.set_password(ADMIN, PASSWORD);
    let admin = WebClient::new(&app.base_url);
    admin.sign_in(ADMIN, PASSWORD);
    let queue = admin.get("/staff");
    let tasks = queue.texts("ol.tasks li");
    assert_eq!(tasks.len(), 4, "{}", queue.body);
    assert!(tasks[0].contains("rules") && tasks[0].contains("Done"), "{tasks:?}");
    assert!(tasks[1].contains("moderators") && tasks[1].contains("Done"), "{tasks:?}");
    assert!(tasks[3].contains("Share") && tasks[3].contains("To do"), "{tasks:?}");
    assert!(queue.has("href=\"/o/penrith\""));
    assert_plain("the admin's first screen", &queue.body);
    app.set_password(MODERATOR, PASSWORD);
    let moderator = WebClient::new(&app.base_url);
    moderator.sign_in(MODERATOR, PASSWORD);
    assert!(moderator.get("/staff").texts("ol.tasks").is_empty());

    // Once the public has used it, everything is done and the list goes.
    let cast_token = {
        let pool = redress::db::connect(&app.database_url, 1).unwrap();
        let mut conn = pool.get().unwrap();
        redress::services::add_token(&mut conn, ORG, MODERATOR, "t", None, chrono::Utc::now()).unwrap()
    };
    app.record_removal(&cast_token, json!({}));
    assert!(admin.get("/staff").texts("ol.tasks").is_empty());
}

/// The states the other tests do not reach: a question asked and answered, a withdrawal, the
/// reported content removed, and what the deadline sweep leaves (an overdue answer, a case
/// closed with no appeal, one closed when the time to escalate ran out).
#[test]
fn the_remaining_states_read_plainly() {
    let r = Readers::new();
    let (app, cast) = (&r.app, &r.cast);
    let removal = |n: u32| {
        let (_, case) =
            app.record_removal(&cast.moderator, json!({"author_email": format!("p{n}@poster.example")}));
        let reference = case["reference"].as_str().unwrap().to_string();
        let link = app.mail_to(&format!("p{n}@poster.example"), "your post was removed").link().unwrap();
        (reference, link)
    };
    let appeal = |link: &str| {
        let (status, _, _) = app.post_form(&format!("{}/appeal", path_of(link)), &[("appeal", "Please.")]);
        assert_eq!(status, 303);
    };

    let (asked, asked_link) = removal(1);
    appeal(&asked_link);
    r.api(
        &cast.moderator,
        &format!("/api/v1/cases/{asked}/request-info"),
        json!({"question": "Which post?"}),
    );
    r.read("a question asked", &asked_link, &asked);
    app.post_form(&format!("{}/information", path_of(&asked_link)), &[("information", "The first one.")]);
    r.read("a question answered", &asked_link, &asked);

    let (withdrawn, withdrawn_link) = removal(2);
    appeal(&withdrawn_link);
    app.post_form(&format!("{}/withdraw", path_of(&withdrawn_link)), &[("reason", ""), ("confirm", "yes")]);
    r.read("withdrawn", &withdrawn_link, &withdrawn);

    let (status, _, _) = app.post_form("/o/penrith/report", COMPLAINT);
    assert_eq!(status, 201);
    let ack = app.mail_to("robin@reporter.example", "we have your report");
    let (removed_link, removed) =
        (ack.link().unwrap(), ack.subject.split(['(', ')']).nth(1).unwrap().to_string());
    r.api(
        &cast.moderator,
        &format!("/api/v1/cases/{removed}/response"),
        json!({"outcome": "remove", "reasons": "Personal."}),
    );
    r.read("the reported content removed", &removed_link, &removed);

    let (late, late_link) = removal(3);
    appeal(&late_link);
    let (lapsed, lapsed_link) = removal(4);
    let later = (chrono::Utc::now() + chrono::Duration::days(40)).to_rfc3339();
    app.cli_ok(&["sweep", "--now", &later]);
    let (_, case) = app.api("GET", &format!("/api/v1/cases/{late}"), Some(&cast.moderator), None);
    assert_eq!(case["overdue"], true, "{case}");
    r.read("an answer overdue", &late_link, &late);
    let (_, case) = app.api("GET", &format!("/api/v1/cases/{lapsed}"), Some(&cast.moderator), None);
    assert_eq!(case["state"], "closed_no_appeal", "{case}");
    r.read("closed with no appeal", &lapsed_link, &lapsed);
    let (_, case) = app.api("GET", &format!("/api/v1/cases/{removed}"), Some(&cast.moderator), None);
    assert_eq!(case["state"], "closed", "{case}");
    r.read("closed when the time to escalate ran out", &removed_link, &removed);
}

/// Each removal's case page offers the public note to post where the comment was, with the
/// rules it cites and the procedure's address; an admin can reword it, and saving it empty
/// puts the model back. A complaint has no note.
#[test]
fn a_removal_offers_the_public_note_in_the_organisations_words() {
    let r = Readers::new();
    let (app, cast) = (&r.app, &r.cast);
    let (_, case) = app.record_removal(&cast.moderator, json!({"rule_codes": ["3a", "3e"]}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let page = r.moderator.get(&format!("/staff/cases/{reference}"));
    let note = page.texts("textarea#public-note").concat();
    let procedure = format!("{}/o/penrith", app.base_url);
    assert!(note.contains("because it broke rules 3a and 3e of our social media policy"), "{note}");
    assert!(note.contains(&procedure), "{note}");
    assert!(page.has("data-copy=\"public-note\""), "the copy button, for the script to show");

    app.set_password(ADMIN, PASSWORD);
    let admin = WebClient::new(&app.base_url);
    admin.sign_in(ADMIN, PASSWORD);
    let saved = admin.submit(
        "/staff/admin/public-note",
        "/staff/admin/public-note",
        &[("text", "Removed by the moderators ({rules}). See {procedure}")],
    );
    assert_eq!(saved.location.as_deref(), Some("/staff/admin/public-note?done=public-note"));
    let note = r.moderator.get(&format!("/staff/cases/{reference}")).texts("textarea#public-note").concat();
    assert_eq!(note, format!("Removed by the moderators (rules 3a and 3e). See {procedure}"));
    assert!(admin.get("/staff/admin/log").has("reworded the public note"));
    let refused =
        admin.submit("/staff/admin/public-note", "/staff/admin/public-note", &[("text", &"x".repeat(1_001))]);
    assert_eq!(refused.status, 422, "{}", refused.body);
    admin.submit("/staff/admin/public-note", "/staff/admin/public-note", &[("text", "")]);
    let note = r.moderator.get(&format!("/staff/cases/{reference}")).texts("textarea#public-note").concat();
    assert!(note.starts_with("A comment here was removed"), "the model is back: {note}");

    let (status, _, _) = app.post_form("/o/penrith/report", COMPLAINT);
    assert_eq!(status, 201);
    let to_mod = app.mail_to(MODERATOR, "Complaint received");
    let complaint = to_mod.subject.split_whitespace().find(|w| w.starts_with("PEN-")).unwrap().to_string();
    assert!(r.moderator.get(&format!("/staff/cases/{complaint}")).texts("textarea#public-note").is_empty());
}
