//! Reasons written once: an admin saves them, and the removal form, the case page's answer and
//! decision forms, and the API (`reason_id`) use them; a reason is only ever one of the
//! organisation's own, for the step it was saved for.

use crate::common::web::WebClient;
use crate::common::*;
use serde_json::json;

const PASSWORD: &str = "a reason to remember";

fn signed_in(app: &TestApp, email: &str) -> WebClient {
    app.set_password(email, PASSWORD);
    let web = WebClient::new(&app.base_url);
    web.sign_in(email, PASSWORD);
    web
}

/// Saves a reason through the admin page; its id, read from the list.
fn save(admin: &WebClient, step: &str, title: &str, body: &str, rules: &str) -> String {
    let page = admin.submit(
        "/staff/admin/reasons",
        "/staff/admin/reasons",
        &[("step", step), ("title", title), ("body", body), ("rule_codes", rules)],
    );
    assert_eq!(page.location.as_deref(), Some("/staff/admin/reasons?done=reason"), "{}", page.body);
    let list = admin.get("/staff/admin/reasons");
    let row = list.document();
    let link = row
        .select(&crate::common::web::selector("tr"))
        .find(|tr| tr.text().collect::<String>().contains(title))
        .and_then(|tr| tr.select(&crate::common::web::selector("a")).next()?.attr("href").map(str::to_string))
        .unwrap_or_else(|| panic!("{title} is not listed:\n{}", list.body));
    link.trim_start_matches("/staff/admin/reasons/").to_string()
}

#[test]
fn saved_reasons_are_offered_and_used_through_the_pages_and_the_api() {
    let app = TestApp::start();
    let cast = app.setup();
    let admin = signed_in(&app, ADMIN);

    // What an admin cannot save, and what they can.
    let page = admin.submit(
        "/staff/admin/reasons",
        "/staff/admin/reasons",
        &[("step", ""), ("title", ""), ("body", ""), ("rule_codes", "9z")],
    );
    assert_eq!(page.status, 422);
    for field in ["step", "title", "body", "rule_codes"] {
        assert!(page.has(&format!("href=\"#{field}\"")), "{field}: {}", page.body);
    }
    assert!(page.has("There is no rule 9z in your policy"));
    let insult =
        save(&admin, "removal", "Personal insult", "It calls a member names, which rule 3a forbids.", "3a");
    save(&admin, "removal", "Legal risk", "It could be libellous.", "3e");
    let fair = save(
        &admin,
        "appeal_response",
        "Fair comment after all",
        "On reflection the post is fair comment.",
        "",
    );
    let stays =
        save(&admin, "decision", "Stays removed", "The committee agrees the post broke the policy.", "");
    assert!(admin.get("/staff/admin/log").has("added a saved reason"));

    // The removal form offers the reasons for a removal, and one chosen with the box left
    // empty is the explanation sent.
    let moderator = signed_in(&app, MODERATOR);
    let form = moderator.get("/staff/removals/new");
    assert!(form.has("Personal insult") && form.has("Legal risk") && !form.has("Fair comment after all"));
    let page = moderator.submit(
        "/staff/removals/new",
        "/staff/removals",
        &[
            ("action", "send"),
            ("platform", "Facebook"),
            ("content_url", "https://facebook.com/p/7"),
            ("content_text", "Name-calling."),
            ("author_name", "Pat Poster"),
            ("author_email", "pat@poster.example"),
            ("notice_method", ""),
            ("rule.3a", "on"),
            ("explanation", ""),
            ("reason_id", &insult),
        ],
    );
    assert_eq!(page.status, 303, "{}", page.body);
    let notice = app.mail_to("pat@poster.example", "your post was removed");
    assert!(notice.body.contains("It calls a member names, which rule 3a forbids."), "{}", notice.body);
    let reference = notice.subject.split(['(', ')']).nth(1).unwrap().to_string();

    // The answer form offers the reasons for answering an appeal, and uses the one chosen.
    app.post_form(&format!("{}/appeal", path_of(&notice.link().unwrap())), &[("appeal", "Unfair.")]);
    let case_path = format!("/staff/cases/{reference}");
    let case = moderator.get(&case_path);
    assert!(case.has("Fair comment after all") && !case.has("Stays removed"), "{}", case.body);
    // A reason saved for another step is refused, naming the choice, and nothing changes.
    let before = app.counts();
    let refused = moderator.submit(
        &case_path,
        &format!("{case_path}/response"),
        &[("outcome", "uphold"), ("reasons", ""), ("reason_id", &stays)],
    );
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.has("href=\"#reason_id\""), "{}", refused.body);
    assert_eq!(app.counts(), before);
    let answered = moderator.submit(
        &case_path,
        &format!("{case_path}/response"),
        &[("outcome", "reinstate"), ("reasons", ""), ("reason_id", &fair)],
    );
    assert_eq!(answered.status, 303, "{}", answered.body);
    let answer = app.mail_to("pat@poster.example", "our answer");
    assert!(answer.body.contains("On reflection the post is fair comment."), "{}", answer.body);

    // Through the API: a removal explained by a saved reason, then its appeal turned down and
    // decided with one. Another organisation's reason, or a made-up id, is refused.
    let (status, case) = app.api(
        "POST",
        "/api/v1/removals",
        Some(&cast.moderator),
        Some(&json!({
            "platform": "Facebook", "content_url": "https://facebook.com/p/8", "content_text": "Names.",
            "author_name": "Pat", "author_email": "pat2@poster.example", "rule_codes": ["3a"],
            "reason_id": insult,
        })),
    );
    assert_eq!(status, 201, "{case}");
    assert_eq!(case["explanation"], "It calls a member names, which rule 3a forbids.");
    let second = case["reference"].as_str().unwrap().to_string();
    let link = app.mail_to("pat2@poster.example", "your post was removed").link().unwrap();
    app.post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "Unfair.")]);
    app.api(
        "POST",
        &format!("/api/v1/cases/{second}/response"),
        Some(&cast.moderator),
        Some(&json!({"outcome": "uphold", "reasons": "No."})),
    );
    let link = app.mail_to("pat2@poster.example", "our answer").link().unwrap();
    app.post_form(&format!("{}/escalate", path_of(&link)), &[("case_for_committee", "Look again.")]);
    let decision = format!("/api/v1/cases/{second}/decision");
    let (status, body) = app.api(
        "POST",
        &decision,
        Some(&cast.committee),
        Some(&json!({"outcome": "uphold", "reason_id": "made-up"})),
    );
    assert_eq!(status, 422, "{body}");
    assert!(body["fields"]["reason_id"].is_string(), "{body}");
    let (status, case) = app.api(
        "POST",
        &decision,
        Some(&cast.committee),
        Some(&json!({"outcome": "uphold", "reason_id": stays})),
    );
    assert_eq!(status, 200, "{case}");
    let events = case["events"].as_array().unwrap();
    assert_eq!(events.last().unwrap()["body"], "The committee agrees the post broke the policy.");

    // Editing and removing: removing asks first.
    let edited = admin.submit(
        &format!("/staff/admin/reasons/{fair}"),
        &format!("/staff/admin/reasons/{fair}"),
        &[
            ("step", "appeal_response"),
            ("title", "Fair comment"),
            ("body", "Fair comment, on reflection."),
            ("rule_codes", ""),
        ],
    );
    assert_eq!(edited.status, 303, "{}", edited.body);
    let remove = format!("/staff/admin/reasons/{fair}/remove");
    let refused = admin.submit(&format!("/staff/admin/reasons/{fair}"), &remove, &[]);
    assert_eq!(refused.status, 422, "{}", refused.body);
    let removed = admin.submit(&format!("/staff/admin/reasons/{fair}"), &remove, &[("confirm", "yes")]);
    assert_eq!(removed.location.as_deref(), Some("/staff/admin/reasons?done=reason-removed"));
    assert!(!admin.get("/staff/admin/reasons").has("Fair comment"));
    assert_eq!(admin.get(&format!("/staff/admin/reasons/{fair}")).status, 404);
}
