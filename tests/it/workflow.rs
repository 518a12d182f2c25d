//! Both kinds of case through every path of the ladder, over real HTTP, the real CLI and a
//! real SMTP server, with each email's recipient and key content checked.

use crate::common::*;
use serde_json::json;

fn due_date_words(app: &TestApp, reference: &str, token: &str) -> (String, String) {
    let (_, case) = app.api("GET", &format!("/api/v1/cases/{reference}"), Some(token), None);
    (case["due_at"].as_str().unwrap().to_string(), case["due_kind"].as_str().unwrap().to_string())
}

#[test]
fn removal_notice_appeal_and_acceptance() {
    let app = TestApp::start();
    let cast = app.setup();
    let (status, case) = app.record_removal(&cast.moderator, json!({"rule_codes": ["3a", "3e"]}));
    assert_eq!(status, 201, "{case}");
    let reference = case["reference"].as_str().unwrap().to_string();
    assert!(reference.starts_with("PEN-20") && reference.ends_with("-0001"), "{reference}");
    assert_eq!(case["state"], "notice_sent");
    assert_eq!(case["due_kind"], "appeal_window");
    assert!(case.get("private_link").is_none(), "an emailed poster gets the link by email only");

    // The notice: the reasons, each rule with its summary, the explanation, the link and the
    // appeal deadline as a date.
    let notice = app.mail_to("pat@poster.example", "your post was removed");
    assert!(notice.subject.contains(&reference));
    assert!(notice.body.contains("You are all idiots"));
    assert!(notice.body.contains("3a Personal attacks: Criticise views, never people"));
    assert!(notice.body.contains("3e Legal risk: Nothing that could be libellous"));
    assert!(notice.body.contains("A personal insult aimed at other members."));
    assert!(notice.body.contains("You can appeal until the end of "), "{}", notice.body);
    assert!(!notice.body.contains("T23:59"), "deadlines are dates, not instants");
    let link = notice.link().expect("the notice carries the private link");

    // The private page shows the case and an appeal form.
    let (status, page) = app.get_page(&path_of(&link));
    assert_eq!(status, 200);
    assert!(page.contains(&reference));
    assert!(page.contains("action=\"/c/"), "{page}");
    assert!(page.contains("name=\"appeal\""));
    assert!(!page.contains(MODERATOR), "staff identity stays off the public page");

    // Appeal through the form.
    let (status, location, _) =
        app.post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "It was a joke between friends.")]);
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some(path_of(&link).as_str()));
    let ack = app.mail_to("pat@poster.example", "we have your appeal");
    assert!(ack.body.contains("It was a joke between friends."));
    assert!(ack.body.contains("A moderator will respond by the end of "));
    for moderator in [MODERATOR, MODERATOR2] {
        let m = app.mail_to(moderator, "Appeal lodged");
        assert!(m.body.contains("It was a joke between friends."));
        assert!(m.subject.contains(&reference));
    }
    let (due_at, due_kind) = due_date_words(&app, &reference, &cast.moderator);
    assert_eq!(due_kind, "response");
    assert!(due_at.ends_with("59:59Z"), "{due_at}");

    // The moderator accepts: the post is to be reinstated and the case closes.
    let (status, case) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/response"),
        Some(&cast.moderator),
        Some(&json!({"outcome": "reinstate", "reasons": "On reflection it was banter."})),
    );
    assert_eq!(status, 200, "{case}");
    assert_eq!(case["state"], "reinstated");
    assert_eq!(case["due_at"], serde_json::Value::Null);
    assert!(case["closed_at"].is_string());
    let answer = app.mail_to("pat@poster.example", "our answer");
    assert!(answer.body.contains("We accept your appeal"));
    assert!(answer.body.contains("On reflection it was banter."));

    // A closed case refuses everything with 409.
    let before = app.counts();
    let (status, body) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/response"),
        Some(&cast.moderator),
        Some(&json!({"outcome": "uphold", "reasons": "Changed my mind."})),
    );
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("can no longer change"), "{body}");
    let (status, _, _) =
        app.post_form(&format!("{}/withdraw", path_of(&link)), &[("reason", ""), ("confirm", "yes")]);
    assert_eq!(status, 409);
    assert_eq!(app.counts(), before);

    // The record: every event, every email with its status.
    app.wait_outbox_settled();
    let (_, case) = app.api("GET", &format!("/api/v1/cases/{reference}"), Some(&cast.secretary), None);
    let kinds: Vec<_> =
        case["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["removal_recorded", "appeal_lodged", "response_given"]);
    let emails = case["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 5, "notice, ack, two moderators, answer: {emails:#?}");
    assert!(emails.iter().all(|e| e["status"] == "sent"), "{emails:#?}");
    assert_eq!(case["rules"][1]["code"], "3e");
}

#[test]
fn removal_rejected_escalated_and_decided() {
    let app = TestApp::start();
    let cast = app.setup();
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let link = app.mail_to("pat@poster.example", "your post was removed").link().unwrap();
    let (status, _, _) = app
        .post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "Calling a crook a crook is fair.")]);
    assert_eq!(status, 303);

    // Escalating before the moderators have had their time is refused.
    let (status, _, page) =
        app.post_form(&format!("{}/escalate", path_of(&link)), &[("case_for_committee", "Too early")]);
    assert_eq!(status, 409, "{page}");

    let (status, case) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/response"),
        Some(&cast.moderator),
        Some(&json!({"outcome": "uphold", "reasons": "Calling someone a crook is an accusation we cannot host."})),
    );
    assert_eq!(status, 200, "{case}");
    assert_eq!(case["state"], "appeal_rejected");
    assert_eq!(case["due_kind"], "escalation_window");
    let answer = app.mail_to("pat@poster.example", "our answer");
    assert!(answer.body.contains("the removal stands"));
    assert!(answer.body.contains("an accusation we cannot host"));
    assert!(answer.body.contains("executive committee until the end of "), "{}", answer.body);
    let link2 = answer.link().expect("the answer carries a link to escalate");

    let (status, _, _) = app.post_form(
        &format!("{}/escalate", path_of(&link2)),
        &[("case_for_committee", "The candidate was convicted; it is a fact, not an insult.")],
    );
    assert_eq!(status, 303);
    let to_secretary = app.mail_to(SECRETARY, "Escalated to the executive committee");
    assert!(to_secretary.subject.contains(&reference));
    assert!(to_secretary.body.contains("The candidate was convicted"));
    assert!(to_secretary.body.contains("A personal insult aimed at other members."), "the case summary");
    assert!(
        to_secretary.body.contains("an accusation we cannot host"),
        "the moderators' answer is in the history"
    );
    let ack = app.mail_to("pat@poster.example", "with the executive committee");
    assert!(ack.body.contains("The candidate was convicted"));

    // A moderator cannot decide for the committee.
    let before = app.counts();
    let (status, body) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/decision"),
        Some(&cast.moderator),
        Some(&json!({"outcome": "uphold", "reasons": "x"})),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(app.counts(), before);

    let (status, case) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/decision"),
        Some(&cast.committee),
        Some(&json!({"outcome": "reinstate", "reasons": "The statement is a matter of public record."})),
    );
    assert_eq!(status, 200, "{case}");
    assert_eq!(case["state"], "decided");
    assert_eq!(case["outcome"], "reinstate");
    let decision = app.mail_to("pat@poster.example", "executive committee has decided");
    assert!(decision.body.contains("the post is to be put back"));
    assert!(decision.body.contains("matter of public record"));
    assert!(decision.body.contains("final"));
    for m in [MODERATOR, MODERATOR2] {
        let staff = app.mail_to(m, "Committee decision recorded");
        assert!(staff.body.contains("Please put the post back"));
    }

    // Final: nothing more, from anyone.
    let before = app.counts();
    let (status, _) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/decision"),
        Some(&cast.secretary),
        Some(&json!({"outcome": "uphold", "reasons": "again"})),
    );
    assert_eq!(status, 409);
    let (status, _, _) =
        app.post_form(&format!("{}/escalate", path_of(&link)), &[("case_for_committee", "more")]);
    assert_eq!(status, 409);
    assert_eq!(app.counts(), before);
    let (_, page) = app.get_page(&path_of(&link));
    assert!(page.contains("decision is final"), "{page}");
    assert!(!page.contains("<form"), "a decided case offers no forms");
}

#[test]
fn overdue_response_alerts_the_secretary_exactly_once() {
    let app = TestApp::start();
    let cast = app.setup();
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let link = app.mail_to("pat@poster.example", "your post was removed").link().unwrap();
    app.post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "Please reconsider.")]);
    app.mail_to("pat@poster.example", "we have your appeal");
    let (due_at, _) = due_date_words(&app, &reference, &cast.moderator);
    let due = chrono::DateTime::parse_from_rfc3339(&due_at).unwrap();

    // At the deadline itself nothing is due yet.
    let out = app.cli_ok(&["sweep", "--now", &due.to_rfc3339()]);
    assert!(out.contains("0 closed, 0 marked overdue"), "{out}");

    let after = (due + chrono::Duration::seconds(1)).to_rfc3339();
    let out = app.cli_ok(&["sweep", "--now", &after]);
    assert!(out.contains(&format!("overdue {reference}")), "{out}");
    let out = app.cli_ok(&["sweep", "--now", &after]);
    assert!(out.contains("0 closed, 0 marked overdue"), "{out}");
    let later = (due + chrono::Duration::days(3)).to_rfc3339();
    app.cli_ok(&["sweep", "--now", &later]);

    let alert = app.mail_to(SECRETARY, "Response overdue");
    assert!(alert.subject.contains(&reference));
    assert!(alert.body.contains("Please reconsider."));
    let to_poster = app.mail_to("pat@poster.example", "not answered in time");
    assert!(to_poster.body.contains("You may now put your case in writing"));
    app.wait_outbox_settled();
    assert_eq!(app.count_mail(SECRETARY, "Response overdue"), 1);
    assert_eq!(app.count_mail("pat@poster.example", "not answered in time"), 1);

    let (_, case) = app.api("GET", &format!("/api/v1/cases/{reference}?"), Some(&cast.moderator), None);
    assert_eq!(case["overdue"], true);
    assert_eq!(case["state"], "appeal_lodged");
    let (_, list) = app.api("GET", "/api/v1/cases?overdue=true", Some(&cast.moderator), None);
    assert_eq!(list["cases"].as_array().unwrap().len(), 1);
    let (_, list) = app.api("GET", "/api/v1/cases?overdue=false", Some(&cast.moderator), None);
    assert_eq!(list["cases"].as_array().unwrap().len(), 0);

    // The poster may now escalate, through the link in the overdue email.
    let (status, _, _) = app.post_form(
        &format!("{}/escalate", path_of(&to_poster.link().unwrap())),
        &[("case_for_committee", "No answer came.")],
    );
    assert_eq!(status, 303);
    let (_, case) = app.api("GET", &format!("/api/v1/cases/{reference}"), Some(&cast.moderator), None);
    assert_eq!(case["state"], "escalated");
    assert_eq!(case["overdue"], false);
}

#[test]
fn complaint_no_action_escalated_and_decided() {
    let app = TestApp::start();
    let cast = app.setup();
    let (status, page) = app.get_page("/o/penrith/report");
    assert_eq!(status, 200);
    assert!(page.contains("3a Personal attacks"));

    let (status, _, page) = app.post_form("/o/penrith/report", COMPLAINT);
    assert_eq!(status, 201, "{page}");
    assert!(page.contains("PEN-"));
    let ack = app.mail_to("robin@reporter.example", "we have your report");
    assert!(ack.body.contains("It insults a volunteer by name."));
    assert!(ack.body.contains("reply by the end of"));
    let to_mod = app.mail_to(MODERATOR, "Complaint received");
    assert!(to_mod.body.contains("Robin Reporter"), "moderators see who reported");
    let reference = to_mod.subject.split_whitespace().find(|w| w.starts_with("PEN-")).unwrap().to_string();

    let (status, case) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/response"),
        Some(&cast.moderator),
        Some(&json!({"outcome": "no_action", "reasons": "Robust, but within the rules."})),
    );
    assert_eq!(status, 200, "{case}");
    assert_eq!(case["state"], "no_action");
    assert_eq!(case["due_kind"], "escalation_window");
    let answer = app.mail_to("robin@reporter.example", "our answer");
    assert!(answer.body.contains("no action"));
    assert!(answer.body.contains("Robust, but within the rules."));

    let (status, _, _) = app.post_form(
        &format!("{}/escalate", path_of(&answer.link().unwrap())),
        &[("case_for_committee", "The volunteer was upset; please look again.")],
    );
    assert_eq!(status, 303);
    let to_secretary = app.mail_to(SECRETARY, "Escalated");
    assert!(to_secretary.body.contains("please look again"));
    app.mail_to("robin@reporter.example", "with the executive committee");

    // A reinstate/uphold outcome does not answer a complaint.
    let (status, body) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/decision"),
        Some(&cast.secretary),
        Some(&json!({"outcome": "uphold", "reasons": "x"})),
    );
    assert_eq!(status, 422, "{body}");
    assert!(body["fields"]["outcome"].is_string());

    let (status, case) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/decision"),
        Some(&cast.secretary),
        Some(&json!({"outcome": "remove", "reasons": "The committee finds it personal."})),
    );
    assert_eq!(status, 200, "{case}");
    assert_eq!(case["state"], "decided");
    let decision = app.mail_to("robin@reporter.example", "has decided");
    assert!(decision.body.contains("the reported content is to be removed"));
    let staff = app.mail_to(MODERATOR, "Committee decision recorded");
    assert!(staff.body.contains("Please remove the content"));
}

#[test]
fn complaint_content_removed_then_window_closes() {
    let app = TestApp::start();
    let cast = app.setup();
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
    let to_mod = app.mail_to(MODERATOR, "Complaint received");
    let reference = to_mod.subject.split_whitespace().find(|w| w.starts_with("PEN-")).unwrap().to_string();
    let (status, case) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/response"),
        Some(&cast.moderator),
        Some(&json!({"outcome": "remove", "reasons": "It was spam; removed."})),
    );
    assert_eq!(status, 200);
    assert_eq!(case["state"], "content_removed");
    let answer = app.mail_to("robin@reporter.example", "our answer");
    assert!(answer.body.contains("have removed it"));
    let due = chrono::DateTime::parse_from_rfc3339(case["due_at"].as_str().unwrap()).unwrap();
    let out = app.cli_ok(&["sweep", "--now", &(due + chrono::Duration::seconds(1)).to_rfc3339()]);
    assert!(out.contains(&format!("closed {reference}")), "{out}");
    let (_, case) = app.api("GET", &format!("/api/v1/cases/{reference}"), Some(&cast.moderator), None);
    assert_eq!(case["state"], "closed");
    let (status, _, _) = app.post_form(
        &format!("{}/escalate", path_of(&answer.link().unwrap())),
        &[("case_for_committee", "late")],
    );
    assert_eq!(status, 409);
}

#[test]
fn poster_withdraws() {
    let app = TestApp::start();
    let cast = app.setup();
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let link = app.mail_to("pat@poster.example", "your post was removed").link().unwrap();
    let (_, page) = app.get_page(&path_of(&link));
    assert!(!page.contains("/withdraw\""), "before an appeal there is nothing to withdraw");
    app.post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "Please.")]);
    let (_, page) = app.get_page(&path_of(&link));
    assert!(page.contains("/withdraw\""), "{page}");

    // Withdrawing cannot be undone, so it is refused unless confirmed, and nothing changes.
    let before = app.counts();
    let (status, _, page) =
        app.post_form(&format!("{}/withdraw", path_of(&link)), &[("reason", "I have thought again.")]);
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("href=\"#confirm\"") && page.contains("Tick the box to confirm"), "{page}");
    assert!(page.contains("I have thought again."), "the reason is kept");
    assert_eq!(app.counts(), before);
    let (status, _, _) = app.post_form(
        &format!("{}/withdraw", path_of(&link)),
        &[("reason", "I have thought again."), ("confirm", "yes")],
    );
    assert_eq!(status, 303);
    let (_, case) = app.api("GET", &format!("/api/v1/cases/{reference}"), Some(&cast.moderator), None);
    assert_eq!(case["state"], "withdrawn");
    let ack = app.mail_to("pat@poster.example", "withdrawn");
    assert!(ack.body.contains("I have thought again."));
    app.mail_to(MODERATOR, "Withdrawn");
    let (status, _) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/response"),
        Some(&cast.moderator),
        Some(&json!({"outcome": "reinstate", "reasons": "too late"})),
    );
    assert_eq!(status, 409);
}

#[test]
fn appeal_window_expiry_closes_the_case_once() {
    let app = TestApp::start();
    let cast = app.setup();
    let (_, case) = app.record_removal(&cast.moderator, json!({}));
    let reference = case["reference"].as_str().unwrap().to_string();
    let link = app.mail_to("pat@poster.example", "your post was removed").link().unwrap();
    let due = chrono::DateTime::parse_from_rfc3339(case["due_at"].as_str().unwrap()).unwrap();
    let created = chrono::DateTime::parse_from_rfc3339(case["created_at"].as_str().unwrap()).unwrap();
    assert!(due - created > chrono::Duration::days(27), "28-day appeal window by default");
    assert!(due - created <= chrono::Duration::days(29));

    let after = (due + chrono::Duration::seconds(1)).to_rfc3339();
    let out = app.cli_ok(&["sweep", "--now", &after]);
    assert!(out.contains(&format!("closed {reference}")), "{out}");
    let before = app.counts();
    let out = app.cli_ok(&["sweep", "--now", &after]);
    assert!(out.contains("0 closed, 0 marked overdue"), "{out}");
    assert_eq!(app.counts(), before);

    let (_, case) = app.api("GET", &format!("/api/v1/cases/{reference}"), Some(&cast.moderator), None);
    assert_eq!(case["state"], "closed_no_appeal");
    let (_, page) = app.get_page(&path_of(&link));
    assert!(page.contains("No appeal was made in time"));
    let (status, _, _) =
        app.post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "Sorry I am late")]);
    assert_eq!(status, 409);
}

#[test]
fn author_without_email_gets_a_link_handed_over() {
    let app = TestApp::start();
    let cast = app.setup();
    let (status, case) = app.record_removal(
        &cast.moderator,
        json!({"author_email": null, "notice_method": "Facebook direct message"}),
    );
    assert_eq!(status, 201, "{case}");
    let link = case["private_link"].as_str().expect("the link is returned once").to_string();
    assert_eq!(case["notice_method"], "Facebook direct message");
    assert!(case["emails"].as_array().unwrap().is_empty(), "nobody to email");
    let (status, page) = app.get_page(&path_of(&link));
    assert_eq!(status, 200);
    assert!(page.contains("name=\"appeal\""));
    let (_, again) = app.api(
        "GET",
        &format!("/api/v1/cases/{}", case["reference"].as_str().unwrap()),
        Some(&cast.moderator),
        None,
    );
    assert!(again.get("private_link").is_none(), "the link is never shown again");
}
