//! The staff pages over real HTTP: sign-in and sessions, who may see and do what, CSRF, and
//! forms that keep their answers when they fail.

use crate::common::web::{Page, WebClient};
use crate::common::*;
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple";

fn with_password(app: &TestApp, email: &str) {
    app.set_password(email, PASSWORD);
}

fn signed_in(app: &TestApp, email: &str) -> WebClient {
    with_password(app, email);
    let web = WebClient::new(&app.base_url);
    web.sign_in(email, PASSWORD);
    web
}

#[test]
fn first_run_setup_sign_in_and_sign_out() {
    let app = TestApp::start();
    let web = WebClient::new(&app.base_url);

    // A fresh install sends everyone to the setup page.
    let page = web.get("/staff");
    assert_eq!((page.status, page.location.as_deref()), (303, Some("/sign-in")));
    let page = web.get("/sign-in");
    assert_eq!((page.status, page.location.as_deref()), (303, Some("/setup")));
    let form = web.get("/setup");
    assert_eq!(form.status, 200);
    assert!(web.has_cookie("redress_csrf"), "the form's double-submit cookie");

    // A form that did not come from the page is refused, and nothing is created.
    let page = web.post("/setup", &[("csrf", "forged"), ("org_name", "X")]);
    assert_eq!(page.status, 403);
    assert_eq!(web.get("/setup").status, 200, "still not set up");

    // Bad input: the error summary, "Error: " in the title, the answers kept.
    let page = web.submit(
        "/setup",
        "/setup",
        &[
            ("org_name", "Penrith CLP"),
            ("org_slug", "Bad Slug"),
            ("secretary_email", "nope"),
            ("timezone", "Europe/London"),
            ("admin_name", "Alex Admin"),
            ("admin_email", "alex@penrith.example"),
            ("password", "short"),
        ],
    );
    assert_eq!(page.status, 422);
    assert!(page.title().starts_with("Error: "), "{}", page.title());
    assert!(page.has("There is a problem"));
    for field in ["org_slug", "secretary_email", "password"] {
        assert!(page.has(&format!("href=\"#{field}\"")), "{field} not in the summary");
    }
    assert!(page.has("value=\"Penrith CLP\"") && page.has("value=\"alex@penrith.example\""));
    assert!(!page.has("value=\"short\""), "passwords are never echoed");

    let page = web.submit(
        "/setup",
        "/setup",
        &[
            ("org_name", "Penrith CLP"),
            ("org_slug", "penrith"),
            ("secretary_email", SECRETARY),
            ("timezone", "Europe/London"),
            ("admin_name", "Alex Admin"),
            ("admin_email", "alex@penrith.example"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!((page.status, page.location.as_deref()), (303, Some("/sign-in?done=set-up")));
    let confirmed = web.get("/sign-in?done=set-up");
    assert_eq!(confirmed.texts(".banner-heading"), ["Redress is set up"]);
    assert_eq!(web.get("/setup").status, 404, "setup disappears once done");

    // Wrong password: the same message as an unknown address.
    let page = web.submit(
        "/sign-in",
        "/sign-in",
        &[("email", "alex@penrith.example"), ("password", "wrong password")],
    );
    assert_eq!(page.status, 401);
    assert!(page.has("The email address or the password is not right."));
    let page = web.submit(
        "/sign-in",
        "/sign-in",
        &[("email", "nobody@penrith.example"), ("password", "wrong password")],
    );
    assert_eq!(page.status, 401);
    assert!(page.has("The email address or the password is not right."));
    assert!(!web.has_cookie("redress_session"));

    web.sign_in("alex@penrith.example", PASSWORD);
    let first = web.cookie("redress_session").unwrap();
    let queue = web.get("/staff");
    assert_eq!(queue.status, 200, "{}", queue.body);
    assert!(queue.has("Work queue") && queue.has("Penrith CLP"));

    // Signing in again gives a new session id, and the one it replaces ends.
    web.sign_in("alex@penrith.example", PASSWORD);
    assert_ne!(web.cookie("redress_session").unwrap(), first);
    let page = WebClient::new(&app.base_url).get_with_cookie("/staff", &format!("redress_session={first}"));
    assert_eq!(page.status, 303, "the replaced session id is dead on the server");

    // Sign-out needs the CSRF token, kills the session, and clears the cookie.
    let old = web.cookie("redress_session").unwrap();
    assert_eq!(web.post("/sign-out", &[("csrf", "forged")]).status, 403);
    let page = web.submit("/staff", "/sign-out", &[]);
    assert_eq!((page.status, page.location.as_deref()), (303, Some("/sign-in?done=signed-out")));
    assert_eq!(web.get("/sign-in?done=signed-out").texts(".banner-heading"), ["You have signed out"]);
    assert!(web.get("/sign-in?done=%3Cb%3E").texts(".banner").is_empty(), "only the known messages");
    assert!(!web.has_cookie("redress_session"));
    assert_eq!(web.get("/staff").status, 303);
    let replay = WebClient::new(&app.base_url);
    let page = replay.get_with_cookie("/staff", &format!("redress_session={old}"));
    assert_eq!(page.status, 303, "the old session id is dead on the server too");
}

/// Every staff route, for the tests that walk all of them.
fn staff_routes(reference: &str) -> Vec<(&'static str, String)> {
    vec![
        ("GET", "/staff".into()),
        ("GET", "/orgs".into()),
        ("POST", "/orgs".into()),
        ("GET", "/staff/removals/new".into()),
        ("POST", "/staff/removals".into()),
        ("GET", format!("/staff/cases/{reference}")),
        ("POST", format!("/staff/cases/{reference}/response")),
        ("POST", format!("/staff/cases/{reference}/decision")),
        ("GET", "/staff/committee".into()),
        ("GET", "/staff/admin".into()),
        ("POST", "/staff/admin/settings".into()),
        ("GET", "/staff/admin/rules".into()),
        ("POST", "/staff/admin/rules".into()),
        ("GET", "/staff/admin/rules/3a".into()),
        ("POST", "/staff/admin/rules/3a".into()),
        ("GET", "/staff/admin/users".into()),
        ("POST", "/staff/admin/users".into()),
        ("POST", "/staff/admin/users/x/remove-role".into()),
        ("GET", "/staff/admin/tokens".into()),
        ("POST", "/staff/admin/tokens".into()),
        ("POST", "/staff/admin/tokens/x/revoke".into()),
        ("POST", "/sign-out".into()),
    ]
}

#[test]
fn anonymous_users_are_sent_to_sign_in_and_change_nothing() {
    let app = TestApp::start();
    let cast = app.setup();
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let before = app.counts();
    let web = WebClient::new(&app.base_url);
    for (method, path) in staff_routes(&reference) {
        let page = if method == "GET" {
            web.get(&path)
        } else {
            web.post(&path, &[("outcome", "reinstate"), ("reasons", "x")])
        };
        assert_eq!((page.status, page.location.as_deref()), (303, Some("/sign-in")), "{method} {path}");
    }
    // A made-up session cookie is no better.
    let page = web.get_with_cookie("/staff", &format!("redress_session={}", "a".repeat(64)));
    assert_eq!(page.status, 303);
    assert_eq!(app.counts(), before);
}

#[test]
fn another_organisations_cases_do_not_exist() {
    let app = TestApp::start();
    let cast = app.setup();
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let outsider = signed_in(&app, "mod@westend.example");
    let before = app.counts();
    let page = outsider.get(&format!("/staff/cases/{reference}"));
    assert_eq!(page.status, 404);
    assert!(!page.has("Pat Poster"));
    for action in ["response", "decision"] {
        let page = outsider.submit(
            "/staff",
            &format!("/staff/cases/{reference}/{action}"),
            &[("outcome", "reinstate"), ("reasons", "x")],
        );
        assert_eq!(page.status, 404, "{action}");
    }
    let queue = outsider.get("/staff");
    assert!(!queue.has(&reference), "another organisation's case in the queue");
    // Choosing an organisation one is not a member of is refused as if it did not exist.
    let page = outsider.submit("/orgs", "/orgs", &[("org", ORG)]);
    assert_eq!(page.status, 404);
    assert_eq!(app.counts(), before);
}

#[test]
fn each_role_sees_only_its_own_actions() {
    let app = TestApp::start();
    let cast = app.setup();
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let link = app.mail_to("pat@poster.example", "your post was removed").link().unwrap();
    app.post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "Please look again.")]);
    let case_path = format!("/staff/cases/{reference}");

    let secretary = signed_in(&app, SECRETARY);
    let before = app.counts();
    assert_eq!(secretary.get("/staff/removals/new").status, 403);
    assert_eq!(secretary.get("/staff/admin").status, 403);
    let page = secretary.get(&case_path);
    assert_eq!(page.status, 200);
    assert!(!page.has("/response\""), "no response form for a secretary");
    let page = secretary.submit(
        &case_path,
        &format!("{case_path}/response"),
        &[("outcome", "reinstate"), ("reasons", "x")],
    );
    assert_eq!(page.status, 403);
    let page = secretary.submit(
        &case_path,
        &format!("{case_path}/decision"),
        &[("outcome", "reinstate"), ("reasons", "x")],
    );
    assert_eq!(page.status, 409, "not escalated yet");
    assert_eq!(app.counts(), before);

    let moderator = signed_in(&app, MODERATOR);
    assert_eq!(moderator.get("/staff/committee").status, 403);
    assert_eq!(moderator.get("/staff/admin/users").status, 403);
    let page = moderator.get(&case_path);
    assert!(page.has("Send the response") && page.has("Keep the post removed"));
    assert!(!page.has("Record the final decision"));
    assert!(page.has("You recorded this removal"), "the separation warning");
    let second = signed_in(&app, MODERATOR2);
    assert!(!second.get(&case_path).has("You recorded this removal"));

    let admin = signed_in(&app, ADMIN);
    assert_eq!(admin.get("/staff/admin").status, 200);
    assert_eq!(admin.get("/staff/removals/new").status, 403);
    assert!(!admin.get(&case_path).has("Send the response"));
}

#[test]
fn forms_without_the_right_csrf_token_change_nothing() {
    let app = TestApp::start();
    let cast = app.setup();
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let link = app.mail_to("pat@poster.example", "your post was removed").link().unwrap();
    app.post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "Please.")]);
    let moderator = signed_in(&app, MODERATOR);
    let admin = signed_in(&app, ADMIN);
    let before = app.counts();
    type Post<'a> = (&'a WebClient, String, Vec<(&'a str, &'a str)>);
    let posts: Vec<Post> = vec![
        (
            &moderator,
            "/staff/removals".into(),
            vec![("action", "send"), ("platform", "X"), ("rule.3a", "on")],
        ),
        (
            &moderator,
            format!("/staff/cases/{reference}/response"),
            vec![("outcome", "reinstate"), ("reasons", "fine")],
        ),
        (
            &admin,
            "/staff/admin/settings".into(),
            vec![("name", "Hacked"), ("secretary_email", "evil@example.org")],
        ),
        (&admin, "/staff/admin/rules".into(), vec![("code", "9z"), ("title", "t"), ("summary", "s")]),
        (
            &admin,
            "/staff/admin/users".into(),
            vec![("email", "evil@example.org"), ("name", "E"), ("role", "admin")],
        ),
        (&admin, "/staff/admin/tokens".into(), vec![("email", ADMIN)]),
    ];
    for (client, path, fields) in &posts {
        let page = client.post(path, fields);
        assert_eq!(page.status, 403, "no token: {path}");
        let mut with_wrong = vec![("csrf", "0000")];
        with_wrong.extend(fields.iter().copied());
        assert_eq!(client.post(path, &with_wrong).status, 403, "wrong token: {path}");
        // Another session's token is wrong too.
        let other = if std::ptr::eq(*client, &moderator) {
            admin.get("/staff").csrf()
        } else {
            moderator.get("/staff").csrf()
        };
        let mut with_other = vec![("csrf", other.as_str())];
        with_other.extend(fields.iter().copied());
        assert_eq!(client.post(path, &with_other).status, 403, "another session's token: {path}");
    }
    assert_eq!(app.counts(), before);
    assert!(admin.get("/staff/admin").has("Penrith CLP"), "settings unchanged");
    assert!(!admin.get("/staff/admin/users").has("evil@example.org"));
}

#[test]
fn recording_a_removal_through_the_form() {
    let app = TestApp::start();
    app.setup();
    let moderator = signed_in(&app, MODERATOR);
    let form = moderator.get("/staff/removals/new");
    assert_eq!(form.status, 200);
    assert!(form.has("name=\"rule.3a\"") && form.has("name=\"rule.3e\""));

    // Bad input: every problem named, the answers kept, nothing written.
    let before = app.counts();
    let page = moderator.submit(
        "/staff/removals/new",
        "/staff/removals",
        &[
            ("action", "send"),
            ("platform", "Facebook"),
            ("content_url", "not a link"),
            ("content_text", "Rude words"),
            ("author_name", ""),
            ("explanation", ""),
        ],
    );
    assert_eq!(page.status, 422);
    assert!(page.title().starts_with("Error: "));
    for field in ["content_url", "author_name", "rule_codes", "explanation"] {
        assert!(page.has(&format!("href=\"#{field}\"")), "{field} missing from the summary");
    }
    assert!(page.has("value=\"Facebook\"") && page.has(">Rude words</textarea>"));
    assert_eq!(app.counts(), before);

    // The preview shows the notice as the author will read it, and records nothing.
    let fields = [
        ("platform", "Facebook"),
        ("content_url", "https://facebook.com/penrithclp/posts/77"),
        ("content_text", "Everyone who disagrees is a traitor."),
        ("author_name", "Sam Sharp"),
        ("author_email", "sam@poster.example"),
        ("rule.3a", "on"),
        ("explanation", "Calling members traitors is a personal attack."),
    ];
    let mut preview = vec![("action", "preview")];
    preview.extend(fields);
    let page = moderator.submit("/staff/removals/new", "/staff/removals", &preview);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.has("Preview of the notice"));
    assert!(page.has("3a Personal attacks: Criticise views, never people"));
    assert!(page.has("Calling members traitors is a personal attack."));
    assert!(page.has("You can appeal until the end of"));
    assert!(page.has("checked"), "the chosen rule stays ticked");
    assert_eq!(app.counts(), before);

    let mut send = vec![("action", "send")];
    send.extend(fields);
    let page = moderator.submit("/staff/removals/new", "/staff/removals", &send);
    assert_eq!(page.status, 303, "{}", page.body);
    let location = page.location.unwrap();
    assert!(location.starts_with("/staff/cases/PEN-") && location.ends_with("?done=removal"), "{location}");
    let notice = app.mail_to("sam@poster.example", "your post was removed");
    assert!(notice.body.contains("Calling members traitors"));

    let case = moderator.get(&location);
    assert_eq!(case.texts(".banner-heading"), ["Removal recorded"]);
    assert!(case.has("Everyone who disagrees is a traitor."));
    assert!(case.has("Removal recorded and notice given"));
    assert!(case.has("Email to sam@poster.example"));
    assert!(case.has("appeal window closes"));

    // Without an address the private link is shown once, to hand over.
    let mut no_email: Vec<(&str, &str)> =
        send.iter().copied().filter(|(k, _)| *k != "author_email").collect();
    no_email.push(("notice_method", "Facebook direct message"));
    let page = moderator.submit("/staff/removals/new", "/staff/removals", &no_email);
    assert_eq!(page.status, 201);
    assert!(page.has("/c/") && page.has("shown only this once"));
}

#[test]
fn the_whole_ladder_through_the_staff_pages() {
    let app = TestApp::start();
    let cast = app.setup();
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let case_path = format!("/staff/cases/{reference}");
    let link = app.mail_to("pat@poster.example", "your post was removed").link().unwrap();
    app.post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "It was satire.")]);

    let moderator = signed_in(&app, MODERATOR2);
    let queue = moderator.get("/staff");
    assert!(queue.has(&reference) && queue.has("response due"));
    let page = moderator.get("/staff?state=appeal_lodged");
    assert!(page.has(&reference));
    let page = moderator.get("/staff?state=escalated");
    assert!(!page.has(&format!(">{reference}<")));

    // A response without reasons comes back with the error and the choice kept.
    let page = moderator.submit(
        &case_path,
        &format!("{case_path}/response"),
        &[("outcome", "uphold"), ("reasons", "")],
    );
    assert_eq!(page.status, 422);
    assert!(page.has("There is a problem") && page.has("href=\"#reasons\""));
    assert!(page.has("value=\"uphold\" checked"));

    let page = moderator.submit(
        &case_path,
        &format!("{case_path}/response"),
        &[("outcome", "uphold"), ("reasons", "Satire or not, it names a member.")],
    );
    let confirmed = format!("{case_path}?done=response");
    assert_eq!((page.status, page.location.as_deref()), (303, Some(confirmed.as_str())));
    assert_eq!(moderator.get(&confirmed).texts(".banner-heading"), ["Response sent"]);
    assert!(moderator.get(&case_path).texts(".banner").is_empty(), "no banner without a change");
    let answer = app.mail_to("pat@poster.example", "our answer");
    app.post_form(
        &format!("{}/escalate", path_of(&answer.link().unwrap())),
        &[("case_for_committee", "Satire is protected speech.")],
    );

    let secretary = signed_in(&app, SECRETARY);
    let committee = secretary.get("/staff/committee");
    assert_eq!(committee.status, 200);
    assert!(
        committee.has("Satire is protected speech.") && committee.has("Satire or not, it names a member.")
    );
    assert!(committee.has("It was satire.") && committee.has("A personal insult aimed at other members."));
    let page = secretary.submit(
        "/staff/committee",
        &format!("{case_path}/decision"),
        &[("outcome", "uphold"), ("reasons", "The committee agrees with the moderators.")],
    );
    assert_eq!(page.status, 303);
    let decision = app.mail_to("pat@poster.example", "has decided");
    assert!(decision.body.contains("The committee agrees with the moderators."));
    let page = secretary.get(&case_path);
    assert!(page.has("can no longer change") && !page.has("Record the final decision"));
    let (_, public) = app.get_page(&path_of(&link));
    assert!(public.contains("decision is final"));
}

#[test]
fn admin_pages_change_settings_rules_staff_and_tokens() {
    let app = TestApp::start();
    let cast = app.setup();
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let admin = signed_in(&app, ADMIN);

    // Settings, with a bad value refused and the answers kept.
    let page = admin.submit(
        "/staff/admin",
        "/staff/admin/settings",
        &[
            ("name", "Penrith and Border CLP"),
            ("secretary_email", SECRETARY),
            ("timezone", "Mars/Base"),
            ("appeal_window_days", "14"),
            ("response_days", "0"),
            ("escalation_window_days", "28"),
            ("committee_target_days", "21"),
        ],
    );
    assert_eq!(page.status, 422);
    assert!(
        page.has("href=\"#timezone\"")
            && page.has("href=\"#response_days\"")
            && page.has("value=\"Penrith and Border CLP\"")
    );
    let page = admin.submit(
        "/staff/admin",
        "/staff/admin/settings",
        &[
            ("name", "Penrith and Border CLP"),
            ("secretary_email", SECRETARY),
            ("timezone", "Europe/London"),
            ("appeal_window_days", "14"),
            ("response_days", "7"),
            ("escalation_window_days", "28"),
            ("committee_target_days", "21"),
        ],
    );
    assert_eq!(page.status, 303);
    assert!(admin.get("/staff/admin").has("value=\"7\""));

    // Editing a rule changes what future removals cite, never a case already opened.
    let page = admin.submit(
        "/staff/admin/rules/3a",
        "/staff/admin/rules/3a",
        &[("title", "Personal attacks"), ("summary", "Rewritten wording.")],
    );
    assert_eq!(page.status, 303);
    let (_, old) = app.api("GET", &format!("/api/v1/cases/{reference}"), Some(&cast.moderator), None);
    assert_eq!(old["rules"][0]["summary"], "Criticise views, never people: no insults or abuse.");
    let (_, new) = app.record_removal(&cast.moderator, json!({}));
    assert_eq!(new["rules"][0]["summary"], "Rewritten wording.");
    let page = admin.submit(
        "/staff/admin/rules",
        "/staff/admin/rules",
        &[("code", "3a"), ("title", "Dup"), ("summary", "x")],
    );
    assert_eq!(page.status, 422, "a duplicate code is refused");
    let page = admin.submit(
        "/staff/admin/rules",
        "/staff/admin/rules",
        &[("code", "3h"), ("title", "Spam"), ("summary", "No advertising or repeated posts.")],
    );
    assert_eq!(page.status, 303);
    let rules = admin.get(page.location.as_deref().unwrap());
    assert_eq!(rules.texts(".banner-heading"), ["Rule added"]);
    assert!(rules.has("No advertising or repeated posts."));

    // A new moderator who can sign in.
    let page = admin.submit(
        "/staff/admin/users",
        "/staff/admin/users",
        &[
            ("email", "new@penrith.example"),
            ("name", "New Mod"),
            ("role", "moderator"),
            ("password", "short"),
        ],
    );
    assert_eq!(page.status, 422);
    assert!(page.has("href=\"#password\"") && page.has("value=\"new@penrith.example\""));
    let page = admin.submit(
        "/staff/admin/users",
        "/staff/admin/users",
        &[
            ("email", "new@penrith.example"),
            ("name", "New Mod"),
            ("role", "moderator"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(page.location.as_deref(), Some("/staff/admin/users?done=staff-added"));
    assert_eq!(
        admin.get("/staff/admin/users?done=staff-added").texts(".banner-heading"),
        ["Staff member added"]
    );
    let newcomer = WebClient::new(&app.base_url);
    newcomer.sign_in("new@penrith.example", PASSWORD);
    assert_eq!(newcomer.get("/staff/removals/new").status, 200);

    // The last admin cannot remove their own admin role.
    let users = admin.get("/staff/admin/users");
    assert!(users.has("New Mod"));

    // Tokens: created once, then revoked, after which the API refuses it.
    let page = admin.submit(
        "/staff/admin/tokens",
        "/staff/admin/tokens",
        &[("email", MODERATOR), ("label", "script")],
    );
    assert_eq!(page.status, 201);
    let marker = "<code>rdr_";
    let start = page.body.find(marker).unwrap() + "<code>".len();
    let token = page.body[start..start + 68].to_string();
    let (status, _) = app.api("GET", "/api/v1/cases", Some(&token), None);
    assert_eq!(status, 200);
    let list = admin.get("/staff/admin/tokens");
    assert!(!list.has(&token), "a token is shown only once");
    let id_marker = "/staff/admin/tokens/";
    let ids: Vec<&str> = list
        .body
        .match_indices(id_marker)
        .map(|(i, _)| &list.body[i + id_marker.len()..i + id_marker.len() + 36])
        .collect();
    // Revoking asks first, on a page of its own; the token works until it is confirmed.
    let confirm_path = format!("/staff/admin/tokens/{}/revoke", ids[0]);
    assert!(list.has(&format!("href=\"{confirm_path}\"")), "{}", list.body);
    let page = admin.submit("/staff/admin/tokens", &confirm_path, &[]);
    assert_eq!((page.status, page.location.as_deref()), (303, Some(confirm_path.as_str())));
    assert_eq!(app.api("GET", "/api/v1/cases", Some(&token), None).0, 200);
    let question = admin.get(&confirm_path);
    assert_eq!(question.status, 200, "{}", question.body);
    assert!(question.texts("h1").concat().contains("Revoke the API token"), "{}", question.body);
    let page = admin.submit(&confirm_path, &confirm_path, &[("confirm", "yes")]);
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/staff/admin/tokens?done=token-revoked"))
    );
    let (status, _) = app.api("GET", "/api/v1/cases", Some(&token), None);
    assert_eq!(status, 401);
    assert_eq!(admin.get(&confirm_path).status, 404, "a revoked token cannot be revoked again");

    // A token needs a label, and a new member needs a role chosen: neither is guessed.
    let page =
        admin.submit("/staff/admin/tokens", "/staff/admin/tokens", &[("email", MODERATOR), ("label", " ")]);
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.has("href=\"#label\"") && page.has("The label"), "{}", page.body);
    let page = admin.submit(
        "/staff/admin/users",
        "/staff/admin/users",
        &[("email", "third@penrith.example"), ("name", "Third"), ("role", "")],
    );
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.has("Choose the role they will have") && page.has("href=\"#role\""), "{}", page.body);
    assert!(page.has("<option value=\"\">Choose a role</option>"), "no role is chosen for them");
}

#[test]
fn sessions_expire_when_idle_and_after_twelve_hours() {
    let app = TestApp::start();
    app.setup();
    let web = signed_in(&app, MODERATOR);
    let secret = web.cookie("redress_session").unwrap();
    let pool = redress::db::connect(&app.database_url.clone(), 1).unwrap();
    let mut conn = pool.get().unwrap();
    let now = chrono::Utc::now();
    assert!(redress::auth::load(&mut conn, &secret, now + chrono::Duration::minutes(29)).unwrap().is_some());
    // Seen at +29 minutes, so alive at +58.
    assert!(redress::auth::load(&mut conn, &secret, now + chrono::Duration::minutes(58)).unwrap().is_some());
    let web2 = signed_in(&app, MODERATOR2);
    let secret2 = web2.cookie("redress_session").unwrap();
    assert!(redress::auth::load(&mut conn, &secret2, now + chrono::Duration::minutes(31)).unwrap().is_none());
    assert_eq!(web2.get("/staff").status, 303, "and it is gone for good");
    // However busy, twelve hours is the end.
    let mut t = now;
    while t < now + chrono::Duration::hours(12) {
        t += chrono::Duration::minutes(20);
        let alive = redress::auth::load(&mut conn, &secret, t).unwrap().is_some();
        // The session began just before `now`, so at twelve hours from `now` it is over.
        assert_eq!(alive, t - now < chrono::Duration::hours(12), "at {:?}", t - now);
        if !alive {
            break;
        }
    }
}

trait CookieGet {
    fn get_with_cookie(&self, path: &str, cookie: &str) -> Page;
}

impl CookieGet for WebClient {
    fn get_with_cookie(&self, path: &str, cookie: &str) -> Page {
        let fresh = WebClient::new(&self.base_url());
        fresh.set_cookie_header(cookie);
        fresh.get(path)
    }
}

#[test]
fn someone_in_two_organisations_chooses_one() {
    let app = TestApp::start();
    let cast = app.setup();
    app.cli_ok(&[
        "user",
        "add",
        "--org",
        "westend",
        "--email",
        MODERATOR,
        "--name",
        "Mo Derator",
        "--role",
        "secretary",
    ]);
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let web = signed_in(&app, MODERATOR);
    let page = web.get("/staff");
    assert_eq!((page.status, page.location.as_deref()), (303, Some("/orgs")));
    let orgs = web.get("/orgs");
    assert!(orgs.has("Penrith CLP") && orgs.has("West End Parish"));
    web.submit("/orgs", "/orgs", &[("org", "westend")]);
    let queue = web.get("/staff");
    assert!(queue.has("West End Parish") && !queue.has(&reference));
    assert_eq!(web.get(&format!("/staff/cases/{reference}")).status, 404);
    assert_eq!(web.get("/staff/removals/new").status, 403, "only a secretary there");
    web.submit("/orgs", "/orgs", &[("org", ORG)]);
    assert!(web.get("/staff").has(&reference));
}

/// Twelve admins' clicks arrive at once with the same new rule. The check before the insert
/// sees nothing for all of them on PostgreSQL, so the database's unique index decides: one rule
/// is made and every other request is told it already exists, never a server error.
#[test]
fn the_same_rule_added_at_once_is_made_once_and_the_rest_are_told() {
    use std::sync::{Arc, Barrier};
    let app = TestApp::start();
    app.setup();
    let admin = signed_in(&app, ADMIN);
    let csrf = admin.get("/staff/admin/rules").csrf();
    let cookies: String =
        ["__Host-redress_session", "redress_session", "__Host-redress_csrf", "redress_csrf"]
            .iter()
            .filter_map(|name| admin.cookie(name).map(|v| format!("{name}={v}; ")))
            .collect();
    const AT_ONCE: usize = 12;
    // A few rounds, since whether two requests meet in the gap between check and insert is
    // up to the scheduler.
    for code in ["9q", "9r", "9s"] {
        let start = Arc::new(Barrier::new(AT_ONCE));
        let clicks: Vec<_> = (0..AT_ONCE)
            .map(|_| {
                let (base, cookies, csrf, start) =
                    (app.base_url.clone(), cookies.clone(), csrf.clone(), start.clone());
                std::thread::spawn(move || {
                    let web = WebClient::new(&base);
                    web.set_cookie_header(&cookies);
                    start.wait();
                    let page = web.post(
                        "/staff/admin/rules",
                        &[
                            ("csrf", &csrf),
                            ("code", code),
                            ("title", "Spam"),
                            ("summary", "Repeated adverts."),
                        ],
                    );
                    (page.status, page.body)
                })
            })
            .collect();
        let answers: Vec<(u16, String)> = clicks.into_iter().map(|t| t.join().unwrap()).collect();
        let made = answers.iter().filter(|(status, _)| *status == 303).count();
        let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
        assert_eq!(made, 1, "exactly one request makes rule {code}: {statuses:?}");
        for (status, body) in answers.iter().filter(|(status, _)| *status != 303) {
            assert_eq!(*status, 422, "the others are told, not failed: {body}");
            assert!(body.contains("already exists"), "{body}");
        }
        let list = admin.get("/staff/admin/rules");
        assert_eq!(list.body.matches(&format!("/staff/admin/rules/{code}\"")).count(), 1, "{}", list.body);
    }
}

/// A token an admin issues for a moderator acts in the moderator's name, and every step taken
/// with it also names the admin who issued it: on the staff case page and in the API.
#[test]
fn a_step_through_an_admin_issued_token_names_both_people() {
    let app = TestApp::start();
    let cast = app.setup();
    let admin = signed_in(&app, ADMIN);
    let csrf = admin.get("/staff/admin/tokens").csrf();
    let page = admin.post("/staff/admin/tokens", &[("csrf", &csrf), ("email", MODERATOR), ("label", "bot")]);
    assert_eq!(page.status, 201, "{}", page.body);
    let issued = page.texts("p.words code").into_iter().next().expect("the new token is shown");

    let (status, made) = app.record_removal(&issued, json!({}));
    assert_eq!(status, 201, "{made}");
    let reference = made["reference"].as_str().unwrap().to_string();
    let (_, detail) = app.api("GET", &format!("/api/v1/cases/{reference}"), Some(&cast.moderator), None);
    let first = &detail["events"][0];
    assert_eq!(first["actor_email"], MODERATOR, "{detail}");
    assert_eq!(first["token_issued_by"], ADMIN, "{detail}");

    // The moderator's own token (made on the command line) names only them.
    let (status, own) = app.record_removal(&cast.moderator, json!({}));
    assert_eq!(status, 201);
    let (_, own) = app.api(
        "GET",
        &format!("/api/v1/cases/{}", own["reference"].as_str().unwrap()),
        Some(&cast.moderator),
        None,
    );
    assert!(own["events"][0].get("token_issued_by").is_none(), "{own}");

    let moderator = signed_in(&app, MODERATOR);
    let case_page = moderator.get(&format!("/staff/cases/{reference}"));
    assert!(case_page.body.contains("through an API token issued by Admin"), "{}", case_page.body);
}

/// A note is recorded in the role the case is with, not whichever of the writer's roles comes
/// first alphabetically: an admin who is also a moderator writes as the moderator.
#[test]
fn a_note_is_recorded_in_the_role_the_case_is_with() {
    let app = TestApp::start();
    let cast = app.setup();
    app.set_password(ADMIN, PASSWORD);
    {
        let pool = redress::db::connect(&app.database_url, 1).unwrap();
        let mut conn = pool.get().unwrap();
        redress::services::add_user(
            &mut conn,
            ORG,
            redress::services::NewMember { email: ADMIN, name: "Admin", role: "moderator", password: None },
            redress::services::ChangedBy::CommandLine,
            chrono::Utc::now(),
        )
        .unwrap();
    }
    let (status, made) = app.record_removal(&cast.moderator, json!({}));
    assert_eq!(status, 201, "{made}");
    let reference = made["reference"].as_str().unwrap().to_string();
    let (status, body) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/notes"),
        Some(&cast.admin),
        Some(&json!({ "note": "Checked the screenshot." })),
    );
    assert_eq!(status, 201, "{body}");
    let (_, detail) = app.api("GET", &format!("/api/v1/cases/{reference}"), Some(&cast.admin), None);
    let note =
        detail["events"].as_array().unwrap().iter().find(|e| e["kind"] == "note_added").unwrap().clone();
    assert_eq!(note["actor_email"], ADMIN, "{detail}");
    assert_eq!(note["actor_role"], "moderator", "{detail}");
}
