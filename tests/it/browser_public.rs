//! The public pages in a real browser (headless Chromium through chromedriver), each state
//! checked with axe-core and HTML_CodeSniffer against WCAG 2.1 AA: the complaint form, its error state and its
//! confirmation; the private case page from the removal notice, its appeal error state and the
//! lodged appeal; the pages for an unknown address and for a form's address opened on its own.
//! Skipped, with a `SKIPPED browser test: …` line, where Chromium, chromedriver
//! or an engine is not installed, unless CI=true.

use crate::common::browser::{accessibility_report, base64_decode, htmlcs_report, Browser};
use crate::common::*;
use serde_json::json;

/// The error summary of a page in its error state: "Error: " starts the title, the summary
/// exists and has the focus, and each of its links leads to a field of the page.
fn assert_error_summary(browser: &Browser, label: &str) {
    assert!(browser.title().starts_with("Error: "), "{label}: title {:?}", browser.title());
    let summary = browser.find(".error-summary");
    let focused =
        browser.execute("const a = document.activeElement; return a ? a.outerHTML.slice(0, 80) : ''", &[]);
    assert!(
        browser.focused_matches(".error-summary"),
        "{label}: the focus is on {focused}, not the error summary"
    );
    assert!(summary.text().contains("There is a problem"), "{label}: {:?}", summary.text());
    let links = browser.find_all(".error-summary a");
    assert!(!links.is_empty(), "{label}: the error summary lists no errors");
    for link in links {
        let href = link.attr("href").unwrap_or_default();
        let id =
            href.strip_prefix('#').unwrap_or_else(|| panic!("{label}: {href:?} is not a link to a field"));
        assert!(
            browser.try_find(&format!("[id='{id}']")).is_some(),
            "{label}: the error summary links to #{id}, which is not on the page"
        );
    }
}

#[test]
fn complaint_form_in_a_browser() {
    let Some(browser) = Browser::start() else { return };
    let app = TestApp::start();
    let cast = app.setup();

    browser.goto(&app.url("/o/penrith/report"));
    assert!(browser.title().starts_with("Report content"), "{}", browser.title());
    assert_eq!(browser.text("h1"), "Report content");
    let shot = app.dir.path().join("report.png");
    browser.screenshot_png(&shot);
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000, "not a PNG picture");
    browser.assert_accessible("the complaint form");

    // Sent empty: the same form, with "Error: " in the title and an error summary that takes
    // the focus.
    browser.submit("form[action$='/report'] button[type=submit]");
    assert_eq!(browser.text("h1"), "Report content");
    assert_error_summary(&browser, "the complaint form's error state");
    assert!(browser.url().ends_with("/o/penrith/report"), "{}", browser.url());
    browser.assert_accessible("the complaint form's error state");

    // Filled in properly, as a person would, then sent.
    browser.fill("#platform", "Facebook");
    browser.fill("#content_url", "https://facebook.com/penrithclp/posts/99");
    browser.fill("#content_text", "Some nasty words");
    browser.select("#rule_code", "3a");
    browser.fill("#reason", "It insults a volunteer by name.");
    browser.fill("#reporter_name", "Robin Reporter");
    browser.fill("#reporter_email", "robin@reporter.example");
    browser.submit("form[action$='/report'] button[type=submit]");
    assert!(browser.title().starts_with("Complaint received"), "title {:?}", browser.title());
    assert_eq!(browser.text("h1"), "Complaint received");
    assert!(browser.try_find(".error-summary").is_none(), "no errors once it is filled in");
    let reference = browser.text("main strong");
    assert!(reference.starts_with("PEN-"), "{reference}");
    browser.assert_accessible("the complaint received page");

    // What the browser sent is what the moderators were told.
    let to_mod = app.mail_to(MODERATOR, "Complaint received");
    assert!(to_mod.subject.contains(&reference), "{}", to_mod.subject);
    assert!(to_mod.body.contains("Robin Reporter") && to_mod.body.contains("It insults a volunteer"));

    // Answered, taken to the committee and decided: the reporter's page opens with the
    // decision, its reasons and that it is final.
    let cases = format!("/api/v1/cases/{reference}");
    let answer = json!({"outcome": "no_action", "reasons": "Robust, but within the rules."});
    assert_eq!(app.api("POST", &format!("{cases}/response"), Some(&cast.moderator), Some(&answer)).0, 200);
    let link = app.mail_to("robin@reporter.example", "our answer").link().unwrap();
    app.post_form(&format!("{}/escalate", path_of(&link)), &[("case_for_committee", "Please look again.")]);
    let decision = json!({"outcome": "remove", "reasons": "It names a volunteer; that is personal."});
    assert_eq!(app.api("POST", &format!("{cases}/decision"), Some(&cast.committee), Some(&decision)).0, 200);
    browser.goto(&link);
    let panel = browser.text(".panel");
    assert!(
        panel.contains("The executive committee decided the reported content is to be removed"),
        "{panel}"
    );
    assert!(panel.contains("It names a volunteer; that is personal.") && panel.contains("final"), "{panel}");
    browser.assert_accessible("the reporter's page after the decision");
}

#[test]
fn private_case_page_and_appeal_in_a_browser() {
    let Some(browser) = Browser::start() else { return };
    let app = TestApp::start();
    let cast = app.setup();
    let (status, case) = app.record_removal(&cast.moderator, json!({"rule_codes": ["3a", "3e"]}));
    assert_eq!(status, 201, "{case}");
    let reference = case["reference"].as_str().unwrap().to_string();
    let link = app.mail_to("pat@poster.example", "your post was removed").link().expect("a private link");

    browser.goto(&link);
    assert_eq!(browser.text("h1"), format!("Case {reference}"));
    assert!(browser.text("main").contains("3e Legal risk"));
    assert!(browser.try_find("textarea#appeal").is_some(), "the appeal form is offered");
    browser.assert_accessible("the private case page");

    // An empty appeal: the page again, in its error state.
    browser.submit("form[action$='/appeal'] button[type=submit]");
    assert_error_summary(&browser, "the appeal's error state");
    assert!(browser.text("main").contains("Error:"), "the field's own error message is shown");
    browser.assert_accessible("the private case page with an appeal error");

    // A proper appeal: lodged, and the page says so.
    browser.fill("#appeal", "It was a joke between friends.");
    browser.submit("form[action$='/appeal'] button[type=submit]");
    assert!(browser.try_find(".error-summary").is_none(), "the appeal was refused: {}", browser.text("main"));
    assert_eq!(path_of(&browser.url()), path_of(&link), "back on the case page");
    assert!(browser.text("main").contains("Appeal lodged"), "{}", browser.text("main"));
    assert!(browser.try_find("textarea#appeal").is_none(), "no second appeal is offered");
    browser.assert_accessible("the private case page after the appeal");
    app.mail_to("pat@poster.example", "we have your appeal");

    // The appeal form's address opened on its own (after a failed submit, say): a page that
    // says so and leads back to the case.
    browser.goto(&format!("{link}/appeal"));
    assert!(!browser.text("h1").is_empty(), "a heading on the wrong-method page");
    browser.assert_accessible("the page for a form's address opened on its own (405)");
    let token = link.rsplit('/').next().unwrap();
    browser.click(&format!("main a[href='/c/{token}']"));
    assert_eq!(path_of(&browser.url()), path_of(&link), "the way on leads back to the case page");

    // An address that does not exist: a page with the way on.
    browser.goto(&app.url("/no/such/page"));
    assert_eq!(browser.text("h1"), "Page not found");
    browser.assert_accessible("the page for an unknown address (404)");
    browser.click("main a[href='/']");
    assert_eq!(browser.text("h1"), "Redress", "the way on leads home");
}

#[test]
fn base64_decoder_of_the_harness() {
    assert_eq!(base64_decode("").unwrap(), b"");
    assert_eq!(base64_decode("Zg==").unwrap(), b"f");
    assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
    assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
    assert_eq!(base64_decode("Zm9vYmFy\nYmF6").unwrap(), b"foobarbaz");
    assert_eq!(base64_decode("iVBORw0KGgo=").unwrap(), b"\x89PNG\r\n\x1a\n");
    assert_eq!(base64_decode("+/8=").unwrap(), [0xfb, 0xff]);
    assert!(base64_decode("Zm9v!A==").is_err());
    assert!(base64_decode("Zm9vY").is_err());
}

/// The harness itself: axe really runs, and finds faults planted in a page, naming each rule and
/// element.
#[test]
fn axe_reports_planted_violations() {
    let Some(browser) = Browser::start() else { return };
    browser.goto(
        "data:text/html,<!DOCTYPE html><html lang='en'><head><title>Faults</title></head><body><main>\
         <h1>Faults</h1><img src='a.png'><input type='text' id='nameless'></main></body></html>",
    );
    assert_eq!(browser.title(), "Faults");
    let violations = browser.axe();
    let ids: Vec<&str> = violations.iter().map(|v| v.id.as_str()).collect();
    assert!(ids.contains(&"image-alt") && ids.contains(&"label"), "{ids:?}");
    let label = violations.iter().find(|v| v.id == "label").unwrap();
    assert_eq!(label.nodes[0].target, ["#nameless"]);

    // What assert_accessible panics with.
    let message = accessibility_report("the planted faults", &browser.url(), &violations);
    assert!(message.starts_with("the planted faults: 2 WCAG 2.1 AA violation(s)"), "{message}");
    assert!(message.contains("[critical] image-alt") && message.contains("at #nameless"), "{message}");
}

/// The harness's second engine: HTML_CodeSniffer really runs, and finds faults planted in a
/// page (an image without alternative text, a field without a label, an id used twice, an
/// autocomplete value the field cannot take), naming each code and element; its warnings and
/// notices are not counted.
#[test]
fn htmlcs_reports_planted_violations() {
    let Some(browser) = Browser::start() else { return };
    browser.goto(
        "data:text/html,<!DOCTYPE html><html lang='en'><head><title>Faults</title></head><body><main>\
         <h1>Faults</h1><img src='a.png'><form action='/x'><input type='text' id='nameless'>\
         <p id='twice'>One</p><p id='twice'>Two</p><label for='mail'>Email</label>\
         <input type='email' id='mail' autocomplete='name'><button type='submit'>Send</button></form>\
         </main></body></html>",
    );
    assert_eq!(browser.title(), "Faults");
    let errors = browser.htmlcs();
    let codes: Vec<&str> = errors.iter().map(|e| e.code.as_str()).collect();
    let has = |suffix: &str| codes.iter().any(|c| c.ends_with(suffix));
    // H37: img without alt; F68: a control without a name; F77: a duplicate id; H98: an
    // autocomplete value that does not fit the input (reported, where HTML_CodeSniffer 2.5.1
    // alone would stop with a TypeError on its own misspelt message).
    assert!(has(".H37") && has(".F68") && has(".F77") && has(".H98"), "{codes:?}");
    let autocomplete = errors.iter().find(|e| e.code.ends_with(".H98")).unwrap();
    assert!(autocomplete.message.contains("Invalid autocomplete value: name."), "{}", autocomplete.message);
    let nameless = errors.iter().find(|e| e.code.ends_with(".F68")).unwrap();
    assert_eq!(nameless.target, "input#nameless");
    assert!(nameless.html.starts_with("<input type=\"text\" id=\"nameless\""), "{}", nameless.html);

    // What assert_accessible panics with.
    let message = htmlcs_report("the planted faults", &browser.url(), &errors);
    assert!(
        message.starts_with(&format!(
            "the planted faults: {} WCAG2AA error(s) found by HTML_CodeSniffer",
            errors.len()
        )),
        "{message}"
    );
    assert!(message.contains("[error] WCAG2AA.") && message.contains("at input#nameless"), "{message}");
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        browser.assert_accessible("the planted faults")
    }));
    let said = panic.err().and_then(|p| p.downcast::<String>().ok()).expect("assert_accessible panics");
    assert!(said.contains("found by axe-core") && said.contains("found by HTML_CodeSniffer"), "{said}");
}

/// The harness's structural checks: a heading that skips a level, and two forms a screen reader
/// cannot tell apart (the same button words, no names of their own), are faults; forms named
/// apart with aria-label are not.
#[test]
fn structure_checks_find_planted_faults() {
    let Some(browser) = Browser::start() else { return };
    browser.goto(
        "data:text/html,<!DOCTYPE html><html lang='en'><head><title>Faults</title></head><body><main>\
         <h1>Faults</h1><h3>Too deep</h3><h2>Fine</h2><h3>Fine</h3>\
         <form action='/a'><button>Delete</button></form><form action='/b'><button>Delete</button></form>\
         <form action='/c' aria-label='Delete Ann'><button>Delete</button></form>\
         <form action='/d' aria-label='Delete Bob'><button>Delete</button></form>\
         </main></body></html>",
    );
    let faults = browser.structure_faults();
    assert_eq!(faults.len(), 2, "{faults:?}");
    assert!(faults[0].starts_with("heading level skipped: h3 after h1"), "{faults:?}");
    assert!(faults[1].starts_with("two forms share the accessible name \"Delete\""), "{faults:?}");
    assert!(faults[1].contains("action=\"/a\"") && faults[1].contains("action=\"/b\""), "{faults:?}");

    browser.goto(
        "data:text/html,<!DOCTYPE html><html lang='en'><head><title>Faults</title></head><body><main>\
         <h2>No h1 first</h2></main></body></html>",
    );
    let faults = browser.structure_faults();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert!(faults[0].starts_with("heading level skipped: h2 after the start of the page"), "{faults:?}");
}
