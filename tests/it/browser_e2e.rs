//! The whole ladder in a real headless Chromium, as the people who use Redress would walk it:
//! first-run setup, adding a moderator and a secretary, recording a removal, the poster's
//! appeal from the link in the email a real SMTP server received, the moderator's rejection,
//! the escalation, the committee's decision recorded by the secretary, and the poster's page
//! showing the final decision. axe-core checks every page and every error state on the way.
//!
//! With REDRESS_SCREENSHOTS=<folder> it also saves the screenshots the README shows.

use crate::common::browser::Browser;
use crate::common::*;

const PASSWORD: &str = "correct horse battery staple";

fn shot(browser: &Browser, name: &str) {
    if let Some(dir) = std::env::var_os("REDRESS_SCREENSHOTS") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        browser.screenshot_png(dir.join(format!("{name}.png")));
    }
}

/// Checks an error state: "Error: " in the title, the summary, focus on it, and no
/// accessibility violation.
fn error_state(browser: &Browser, label: &str) {
    assert!(browser.title().starts_with("Error: "), "{label}: title {:?}", browser.title());
    assert!(browser.text(".error-summary").contains("There is a problem"), "{label}");
    let focused = browser.execute("return document.activeElement.hasAttribute('data-error-summary')", &[]);
    assert_eq!(focused, true, "{label}: focus is on the error summary");
    browser.assert_accessible(label);
}

fn sign_in(browser: &Browser, app: &TestApp, email: &str) {
    browser.goto(&app.url("/sign-in"));
    browser.assert_accessible("sign-in");
    browser.fill("#email", email);
    browser.fill("#password", PASSWORD);
    browser.submit("form[action='/sign-in'] button[type=submit]");
    assert!(browser.url().ends_with("/staff"), "signed in as {email}: {}", browser.url());
}

fn sign_out(browser: &Browser) {
    browser.submit("form[action='/sign-out'] button");
    assert!(browser.url().ends_with("/sign-in?done=signed-out"), "{}", browser.url());
    assert_eq!(browser.text(".banner-heading"), "You have signed out");
}

#[test]
fn the_whole_ladder_in_a_browser() {
    let Some(browser) = Browser::start() else { return };
    let app = TestApp::start();

    // First run: the setup page, its error state, then the organisation and its admin.
    browser.goto(&app.url("/staff"));
    assert!(browser.url().ends_with("/setup"), "{}", browser.url());
    browser.assert_accessible("first-run setup");
    browser.fill("#org_name", "Penrith CLP");
    browser.submit("form[action='/setup'] button[type=submit]");
    error_state(&browser, "first-run setup with errors");
    assert_eq!(browser.find("#org_name").value(), "Penrith CLP", "answers are kept");
    browser.fill("#org_slug", "penrith");
    browser.fill("#secretary_email", SECRETARY);
    browser.fill("#admin_name", "Alex Admin");
    browser.fill("#admin_email", ADMIN);
    browser.fill("#password", PASSWORD);
    browser.submit("form[action='/setup'] button[type=submit]");
    assert!(browser.url().contains("/sign-in"), "{}", browser.url());
    sign_in(&browser, &app, ADMIN);
    assert!(
        browser.source().contains("Getting started"),
        "the admin's first screen lists what is left to do"
    );
    browser.assert_accessible("the empty work queue, with what is left to set up");

    // An address that does not exist, signed in: the error page within the staff pages.
    browser.goto(&app.url("/staff/no-such-page"));
    assert_eq!(browser.text("h1"), "Page not found");
    assert!(browser.try_find("form[action='/sign-out']").is_some(), "within the staff pages");
    browser.assert_accessible("an unknown staff address (404)");

    // The admin adds a rule, a moderator and a secretary.
    browser.goto(&app.url("/staff/admin/rules"));
    browser.assert_accessible("policy rules");
    browser.submit("form[action='/staff/admin/rules'] button[type=submit]");
    error_state(&browser, "policy rules with errors");
    browser.fill("#code", "3a");
    browser.fill("#title", "Personal attacks");
    browser.fill("#summary", "Criticise views, never people: no insults or abuse.");
    browser.submit("form[action='/staff/admin/rules'] button[type=submit]");
    assert!(browser.source().contains("Criticise views, never people"));
    browser.goto(&app.url("/staff/admin/rules/3a"));
    browser.assert_accessible("editing a rule");
    browser.goto(&app.url("/staff/admin"));
    browser.assert_accessible("organisation settings");
    browser.fill("#response_days", "zero");
    browser.submit("form[action='/staff/admin/settings'] button[type=submit]");
    error_state(&browser, "organisation settings with errors");

    browser.goto(&app.url("/staff/admin/users"));
    browser.assert_accessible("staff and roles");
    for (email, name, role) in
        [(MODERATOR, "Mo Derator", "moderator"), (SECRETARY, "Sec Retary", "secretary")]
    {
        browser.fill("#email", email);
        browser.fill("#name", name);
        browser.select("#role", role);
        browser.fill("#password", PASSWORD);
        browser.submit("form[action='/staff/admin/users'] button[type=submit]");
        assert!(browser.source().contains(email), "{email} added");
    }
    browser.fill("#email", "not an address");
    browser.submit("form[action='/staff/admin/users'] button[type=submit]");
    error_state(&browser, "staff and roles with errors");
    browser.goto(&app.url("/staff/admin/tokens"));
    browser.assert_accessible("API tokens");
    browser.goto(&app.url("/staff/admin/log"));
    assert!(browser.source().contains("gave a role to"), "the log lists the roles given");
    browser.assert_accessible("the organisation log");
    browser.goto(&app.url("/staff/admin/accessibility"));
    browser.assert_accessible("writing the accessibility statement");
    browser.goto(&app.url("/staff/admin/public-note"));
    browser.assert_accessible("wording the public note");
    browser.goto(&app.url("/staff/admin/reasons"));
    browser.submit("form[action='/staff/admin/reasons'] button[type=submit]");
    error_state(&browser, "saving a reason with nothing in it");
    browser.select("#step", "appeal_response");
    browser.fill("#title", "Fair comment");
    browser.fill("#body", "On reflection, fair comment.");
    browser.submit("form[action='/staff/admin/reasons'] button[type=submit]");
    assert_eq!(browser.text(".banner-heading"), "Saved reason saved");
    browser.assert_accessible("the saved reasons");
    browser.goto(&app.url("/staff/admin/tokens"));
    browser.fill("#label", "browser script");
    browser.submit("form[action='/staff/admin/tokens'] button[type=submit]");
    browser.click("a[href$='/revoke']");
    assert!(browser.text("h1").starts_with("Revoke the API token"), "{}", browser.text("h1"));
    browser.assert_accessible("the question before revoking a token");
    sign_out(&browser);

    // The moderator records a removal, previewing the notice first.
    sign_in(&browser, &app, MODERATOR);
    browser.click("a[href='/staff/removals/new']");
    browser.wait_until("the removal form", |b| b.url().ends_with("/staff/removals/new"));
    browser.assert_accessible("record a removal");
    browser.submit("button[value=send]");
    error_state(&browser, "record a removal with errors");
    browser.fill("#platform", "Facebook");
    browser.fill("#content_url", "https://facebook.com/penrithclp/posts/1234");
    browser.fill("#content_text", "You are all idiots and your candidate is a crook.");
    browser.fill("#author_name", "Pat Poster");
    browser.fill("#author_email", "pat@poster.example");
    browser.check("#rule-3a");
    browser.fill("#explanation", "A personal insult aimed at other members.");
    browser.submit("button[value=preview]");
    assert!(browser.text(".inset").contains("You can appeal until the end of"));
    browser.assert_accessible("the notice preview");
    browser.submit("button[value=send]");
    assert!(browser.url().contains("/staff/cases/PEN-"), "{}", browser.url());
    let case_url = browser.url();
    browser.assert_accessible("the new case");
    // The public note's copy button is the script's to show: the note itself needs none.
    let shown = browser.execute("return !document.querySelector('button[data-copy]').hidden", &[]);
    assert_eq!(shown, serde_json::Value::Bool(true), "the copy button is shown");
    browser.click("button[data-copy]");
    browser.wait_until("the note copied", |b| b.text("[data-copied]") == "Copied");

    // The poster opens the link in the email the SMTP server received, and appeals.
    let notice = app.mail_to("pat@poster.example", "your post was removed");
    let link = notice.link().unwrap();
    browser.goto(&link);
    shot(&browser, "public-appeal-page");
    browser.assert_accessible("the poster's case page");
    browser.submit("form[action$='/appeal'] button[type=submit]");
    error_state(&browser, "the appeal form with errors");
    browser.fill("#appeal", "Calling a crook a crook is fair comment.");
    assert!(browser.text("#appeal-count").contains("remaining"), "the character count counts");
    browser.submit("form[action$='/appeal'] button[type=submit]");
    assert!(browser.source().contains("Appeal lodged"));
    browser.assert_accessible("the poster's page after appealing");
    // Withdrawing without ticking the confirmation is refused, and nothing changes.
    browser.submit("form[action$='/withdraw'] button[type=submit]");
    error_state(&browser, "the withdrawal without its confirmation");

    // The moderator rejects the appeal.
    browser.goto(&app.url("/staff"));
    assert!(browser.source().contains("response due"));
    shot(&browser, "work-queue");
    browser.assert_accessible("the work queue");
    // Searching, with closed cases' filters open, and with a mistake in a date.
    browser.goto(&app.url("/staff?q=crook&final_state=decided"));
    assert!(browser.source().contains("Cases found"));
    browser.assert_accessible("the search results");
    browser.goto(&app.url("/staff?q=crook&closed_from=2026-02-30"));
    assert!(browser.title().starts_with("Error: "));
    browser.assert_accessible("a search with a mistake");
    // The moderator asks for more information first; the poster answers.
    browser.goto(&case_url);
    browser.submit("form[action$='/request-info'] button[type=submit]");
    error_state(&browser, "the request for information with errors");
    browser.fill("#question", "Which candidate did you mean?");
    browser.submit("form[action$='/request-info'] button[type=submit]");
    assert!(browser.source().contains("The response clock is paused"));
    browser.assert_accessible("a case waiting for information");
    let ask = app.mail_to("pat@poster.example", "we need more information");
    browser.goto(&ask.link().unwrap());
    browser.assert_accessible("the poster's page with the moderators' question");
    browser.submit("form[action$='/information'] button[type=submit]");
    error_state(&browser, "the answer form with errors");
    browser.fill("#information", "The one standing in Penrith.");
    browser.submit("form[action$='/information'] button[type=submit]");
    assert!(browser.source().contains("More information given"));

    browser.goto(&case_url);
    browser.submit("form[action$='/response'] button[type=submit]");
    error_state(&browser, "the response form with errors");
    browser.check("#respond-uphold");
    // A saved reason chosen from the list puts its words in the box, to be edited there.
    browser.execute(
        "const s = document.getElementById('reason_id'); s.selectedIndex = 1; s.dispatchEvent(new Event('change'));",
        &[],
    );
    let inserted = browser.execute("return document.getElementById('reasons').value", &[]);
    assert_eq!(inserted, serde_json::Value::String("On reflection, fair comment.".into()));
    browser.fill("#reasons", "Calling someone a crook is an accusation we cannot host.");
    browser.submit("form[action$='/response'] button[type=submit]");
    assert!(browser.source().contains("Appeal turned down; the removal stands"));
    assert_eq!(browser.text(".banner-heading"), "Response sent");
    browser.assert_accessible("the case page confirming the response");
    sign_out(&browser);

    // The poster escalates from the link in the answer.
    let answer = app.mail_to("pat@poster.example", "our answer");
    browser.goto(&answer.link().unwrap());
    browser.assert_accessible("the poster's page after the rejection");
    browser.submit("form[action$='/escalate'] button[type=submit]");
    error_state(&browser, "the escalation form with errors");
    browser.fill("#case_for_committee", "The candidate was convicted; it is a fact, not an insult.");
    browser.submit("form[action$='/escalate'] button[type=submit]");
    assert!(browser.source().contains("With the executive committee"));
    app.mail_to(SECRETARY, "Escalated to the executive committee");

    // The secretary records the committee's decision.
    sign_in(&browser, &app, SECRETARY);
    browser.goto(&app.url("/staff/committee"));
    assert!(browser.source().contains("it is a fact, not an insult"));
    browser.assert_accessible("the committee view");
    browser.goto(&case_url);
    browser.submit("form[action$='/decision'] button[type=submit]");
    error_state(&browser, "the decision form with errors");
    browser.check("#decide-reinstate");
    browser.fill("#reasons", "The statement is a matter of public record.");
    browser.submit("form[action$='/decision'] button[type=submit]");
    assert!(browser.source().contains("can no longer change"));
    browser.assert_accessible("the decided case");
    sign_out(&browser);

    // The poster's page shows the final decision, with nothing left to do.
    browser.goto(&link);
    // Its status panel opens with what was decided, why, and that it is final.
    let panel = browser.text(".panel");
    assert!(panel.contains("The executive committee decided the post is to be put back"), "{panel}");
    assert!(panel.contains("The committee's reasons"), "{panel}");
    assert!(panel.contains("The statement is a matter of public record."), "{panel}");
    assert!(panel.contains("final"), "{panel}");
    assert!(browser.try_find("form").is_none(), "no forms on a decided case");
    browser.assert_accessible("the poster's page after the decision");
    app.mail_to("pat@poster.example", "has decided");

    // The remaining pages and error states.
    browser.goto(&app.url(&format!("/c/{}", "0".repeat(64))));
    browser.assert_accessible("the not-found page");
    browser.goto(&app.url("/"));
    browser.assert_accessible("the home page");
    browser.goto(&app.url("/o/penrith"));
    browser.assert_accessible("the procedure page");
    browser.goto(&app.url("/o/penrith/accessibility"));
    browser.assert_accessible("the accessibility statement");
    browser.goto(&app.url("/sign-in"));
    browser.fill("#email", SECRETARY);
    browser.fill("#password", "not the password");
    browser.submit("form[action='/sign-in'] button[type=submit]");
    error_state(&browser, "sign-in refused");
    sign_in(&browser, &app, SECRETARY);
    browser.goto(&app.url("/staff/removals/new"));
    assert!(browser.title().starts_with("Not allowed"), "{}", browser.title());
    browser.assert_accessible("the not-allowed page");
    browser.goto(&app.url("/orgs"));
    browser.assert_accessible("choosing an organisation");
}
