//! Every page at the widths people use, from a small phone (320 px, the width WCAG 2.1 1.4.10
//! asks pages to reflow to) to a desktop window, in a real headless Chromium: nothing may make
//! the page scroll sideways, and every link and button of the header must sit inside the window
//! and be legible against what is really behind it (the header's black bar, not the white page
//! it could spill onto). At 320 px axe-core, HTML_CodeSniffer and the harness's structural checks
//! see each page again, and every focusable element must show a focus indicator when reached
//! from the keyboard.
//!
//! One browser and one seeded app serve every page; each page is loaded once and the window is
//! resized around it. Every fault found is collected, so one run reports them all. With
//! REDRESS_LAYOUT_SCREENSHOTS=<folder> it saves what the window shows of each page at each
//! width, to look at. Skipped, with a `SKIPPED browser test: …` line, where Chromium,
//! chromedriver or an accessibility engine is not installed, unless CI=true.

use crate::common::browser::Browser;
use crate::common::*;
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple";
const WIDTHS: [i64; 4] = [320, 768, 1024, 1280];
const HEIGHT: i64 = 900;
/// Where the pages are checked again by both engines and by keyboard: reflowed pages are the ones new
/// faults appear in, and wider ones are checked by the other browser tests.
const NARROWEST: i64 = 320;

/// Someone with every staff role and a long name, so that the header holds as much as it can.
const EVERYONE: &str = "alexandra.montgomery-fotheringham@penrith.example";
const EVERYONE_NAME: &str = "Alexandra Montgomery-Fotheringham";

/// A content address as long as the ones people paste, with no place to break.
fn long_url() -> String {
    format!(
        "https://facebook.com/groups/penrithclp/permalink/{}?comment_id={}",
        "1234567890".repeat(8),
        "9".repeat(40)
    )
}

/// Resizes the window so that the page's viewport is `width` CSS pixels wide: headless
/// Chromium's window has no frame, but the viewport is measured rather than assumed.
fn set_width(browser: &Browser, width: i64) {
    let mut asked = width;
    for _ in 0..3 {
        browser.command("POST", "/window/rect", Some(json!({ "width": asked, "height": HEIGHT })));
        let inner = browser.execute("return window.innerWidth", &[]).as_i64().unwrap_or(0);
        if inner == width {
            return;
        }
        asked += width - inner;
    }
    let inner = browser.execute("return window.innerWidth", &[]);
    panic!("could not make the viewport {width} px wide: it is {inner} px");
}

/// What both page scripts use: naming an element in a message, and WCAG colour contrast.
const HELPERS: &str = r#"
const describe = el => {
  let d = el.tagName.toLowerCase();
  if (el.id) d += '#' + el.id;
  if (typeof el.className === 'string' && el.className.trim()) d += '.' + el.className.trim().split(/\s+/).join('.');
  const text = (el.innerText || el.value || '').trim().replace(/\s+/g, ' ').slice(0, 50);
  return text ? `${d} ("${text}")` : d;
};
const rgba = s => {
  const m = s.match(/rgba?\(([^)]+)\)/);
  if (!m) return [0, 0, 0, 0];
  const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
};
const luminance = ([r, g, b]) => {
  const c = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * c(r) + 0.7152 * c(g) + 0.0722 * c(b);
};
const contrast = (a, b) => {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
};
"#;

/// Runs in the page after HELPERS; returns a list of faults, each a sentence naming the element.
const LAYOUT_CHECKS: &str = r#"
const over = (top, under) => {
  const a = top[3];
  return [0, 1, 2].map(i => top[i] * a + under[i] * (1 - a)).concat([1]);
};
const contains = (outer, inner) => outer.left <= inner.left + 0.5 && outer.top <= inner.top + 0.5
  && outer.right >= inner.right - 0.5 && outer.bottom >= inner.bottom - 0.5;
// What is painted behind el: the nearest of it and its ancestors with a background whose box
// covers el's box. An ancestor whose box el has spilled out of is not behind it.
const background = el => {
  const r = el.getBoundingClientRect();
  const layers = [];
  for (let a = el; a; a = a.parentElement) {
    const c = rgba(getComputedStyle(a).backgroundColor);
    if (c[3] === 0 || !contains(a.getBoundingClientRect(), r)) continue;
    layers.push(c);
    if (c[3] === 1) break;
  }
  return layers.reduceRight((under, top) => over(top, under), [255, 255, 255, 1]);
};

// The header is checked where it is drawn when the page opens.
window.scrollTo(0, 0);
const faults = [];
const root = document.documentElement;
const vw = root.clientWidth;
if (root.scrollWidth > vw) {
  const past = Array.from(document.body.querySelectorAll('*')).filter(el => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.right > vw + 0.5;
  });
  // Text that cannot wrap spills out of a box that itself fits: then the box is named.
  const spilling = Array.from(document.body.querySelectorAll('*'))
    .filter(el => el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX === 'visible');
  const culprits = past.length ? past : spilling;
  const deepest = culprits.filter(el => !culprits.some(o => o !== el && el.contains(o)));
  faults.push(`the page scrolls sideways (${root.scrollWidth} px of content in ${vw} px); past the right edge: `
    + deepest.slice(0, 6).map(el => `${describe(el)} to ${Math.round(el.getBoundingClientRect().right)} px`).join('; '));
}
const header = document.querySelector('header.site');
if (!header) {
  faults.push('there is no header.site');
} else {
  for (const el of header.querySelectorAll('a, button, .brand, .who')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) {
      faults.push(`${describe(el)} in the header is not shown`);
      continue;
    }
    if (r.left < -0.5 || r.top < -0.5 || r.right > vw + 0.5 || r.bottom > window.innerHeight + 0.5) {
      faults.push(`${describe(el)} in the header is outside the window: left ${Math.round(r.left)}, right ${Math.round(r.right)}, top ${Math.round(r.top)}, bottom ${Math.round(r.bottom)} of ${vw} x ${window.innerHeight}`);
    }
    const bg = background(el);
    const fg = over(rgba(getComputedStyle(el).color), bg);
    const ratio = contrast(fg, bg);
    if (ratio < 4.5) {
      faults.push(`${describe(el)} in the header has a contrast of ${ratio.toFixed(2)}:1 (text rgb(${fg.slice(0, 3).map(Math.round)}) on rgb(${bg.slice(0, 3).map(Math.round)}))`);
    }
  }
}
return faults;
"#;

/// Runs in the page, after HELPERS and one real Tab key press (so that the browser is in
/// keyboard mode and `:focus-visible` applies): focuses each focusable element in turn and
/// returns those that show no indicator, neither an outline nor the yellow focus background,
/// or whose text is illegible on that yellow.
const FOCUS_CHECKS: &str = r#"
const focusable = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex="-1"])';
const faults = [];
let count = 0;
for (const el of document.querySelectorAll(focusable)) {
  if (el.getClientRects().length === 0 || el.disabled) continue;
  el.focus({ preventScroll: true });
  if (document.activeElement !== el) continue;
  count++;
  const s = getComputedStyle(el);
  const outlined = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2 && !/rgba\(.*, 0\)$/.test(s.outlineColor);
  const yellow = s.backgroundColor === 'rgb(255, 221, 0)';
  if (!el.matches(':focus-visible')) {
    faults.push(`${describe(el)} does not match :focus-visible when focused after a key press`);
  } else if (!outlined && !yellow) {
    faults.push(`${describe(el)} shows no focus indicator (outline ${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}, background ${s.backgroundColor})`);
  } else if (yellow && contrast(rgba(s.color), [255, 221, 0]) < 4.5) {
    faults.push(`${describe(el)} is illegible when focused: ${s.color} on the yellow focus background`);
  }
}
document.activeElement && document.activeElement.blur();
return { count, faults };
"#;

/// Checks the page now shown at every width, collecting what is wrong in `faults`.
fn check_page(browser: &Browser, label: &str, faults: &mut Vec<String>) {
    for width in WIDTHS {
        set_width(browser, width);
        if let Some(dir) = std::env::var_os("REDRESS_LAYOUT_SCREENSHOTS") {
            let dir = std::path::PathBuf::from(dir);
            std::fs::create_dir_all(&dir).unwrap();
            browser.screenshot_png(dir.join(format!("{}-{width}.png", label.replace(' ', "-"))));
        }
        let found = browser.execute(&format!("{HELPERS}{LAYOUT_CHECKS}"), &[]);
        for fault in found.as_array().into_iter().flatten() {
            faults.push(format!(
                "{label} ({}) at {width} px: {}",
                browser.url(),
                fault.as_str().unwrap_or("")
            ));
        }
        if width == NARROWEST {
            for v in browser.axe() {
                faults.push(format!("{label} at {width} px: axe-core: {v}"));
            }
            for e in browser.htmlcs() {
                faults.push(format!("{label} at {width} px: HTML_CodeSniffer: {e}"));
            }
            for f in browser.structure_faults() {
                faults.push(format!("{label} at {width} px: {f}"));
            }
            check_focus(browser, label, width, faults);
        }
    }
}

fn check_focus(browser: &Browser, label: &str, width: i64, faults: &mut Vec<String>) {
    const TAB: &str = "\u{E004}";
    browser.command(
        "POST",
        "/actions",
        Some(json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": [
            { "type": "keyDown", "value": TAB }, { "type": "keyUp", "value": TAB }
        ]}]})),
    );
    browser.command("DELETE", "/actions", None);
    let result = browser.execute(&format!("{HELPERS}{FOCUS_CHECKS}"), &[]);
    assert!(result["count"].as_u64().unwrap_or(0) > 0, "{label}: nothing on the page took the focus");
    for fault in result["faults"].as_array().into_iter().flatten() {
        faults.push(format!("{label} at {width} px: {}", fault.as_str().unwrap_or("")));
    }
}

/// The cases and people the pages show: a removal taken to the committee with a long address
/// and long unbroken words in it, a fresh removal, a long-named member holding every role, and
/// an API token with a long label.
struct Seeded {
    escalated_ref: String,
    escalated_link: String,
    fresh_link: String,
}

fn seed(app: &TestApp) -> Seeded {
    use redress::services::{self, ChangedBy, NewMember};
    let cast = app.setup();
    {
        let pool = redress::db::connect(&app.database_url, 1).unwrap();
        let mut conn = pool.get().unwrap();
        let now = chrono::Utc::now();
        for role in ["moderator", "secretary", "committee", "admin"] {
            let member = NewMember { email: EVERYONE, name: EVERYONE_NAME, role, password: None };
            services::add_user(&mut conn, ORG, member, ChangedBy::CommandLine, now).unwrap();
        }
        let label = "moderation-script-for-the-penrith-constituency-facebook-group-2026";
        services::add_token(&mut conn, ORG, EVERYONE, label, None, now).unwrap();
    }
    app.set_password(EVERYONE, PASSWORD);

    let long_word = "Aaaaaaaargh".repeat(12);
    let (status, case) = app.record_removal(
        &cast.moderator,
        json!({
            "content_url": long_url(),
            "content_text": format!("{long_word} you are all idiots and your candidate is a crook."),
            "explanation": format!("A personal insult aimed at other members: {long_word}"),
        }),
    );
    assert_eq!(status, 201, "{case}");
    let escalated_ref = case["reference"].as_str().unwrap().to_string();
    let escalated_link = app.mail_to("pat@poster.example", "your post was removed").link().unwrap();
    let appeal = format!("{}/appeal", path_of(&escalated_link));
    let (status, _, page) = app.post_form(&appeal, &[("appeal", &format!("Fair comment. {long_word}"))]);
    assert_eq!(status, 303, "{page}");
    let (status, answer) = app.api(
        "POST",
        &format!("/api/v1/cases/{escalated_ref}/response"),
        Some(&cast.moderator),
        Some(&json!({ "outcome": "uphold", "reasons": format!("We cannot host it. {}", long_url()) })),
    );
    assert_eq!(status, 200, "{answer}");
    let escalate = format!("{}/escalate", path_of(&escalated_link));
    let written = format!("The candidate was convicted: {}", long_url());
    let (status, _, page) = app.post_form(&escalate, &[("case_for_committee", &written)]);
    assert_eq!(status, 303, "{page}");

    let (status, case) = app.record_removal(&cast.moderator, json!({ "author_email": "sam@poster.example" }));
    assert_eq!(status, 201, "{case}");
    let fresh_link = app.mail_to("sam@poster.example", "your post was removed").link().unwrap();
    // The emails of the escalation are in the case's timeline, behind disclosures.
    app.mail_to(SECRETARY, "Escalated to the executive committee");
    Seeded { escalated_ref, escalated_link, fresh_link }
}

#[test]
fn every_page_reflows_from_320_px_to_desktop() {
    let Some(browser) = Browser::start() else { return };
    let mut faults = Vec::new();

    // First-run set-up, on an app of its own that has no organisation yet.
    {
        let fresh = TestApp::start();
        browser.goto(&fresh.url("/setup"));
        check_page(&browser, "first-run set-up", &mut faults);
    }

    let app = TestApp::start();
    let seeded = seed(&app);

    // The public pages.
    browser.goto(&app.url("/"));
    check_page(&browser, "the home page", &mut faults);
    browser.goto(&app.url("/o/penrith"));
    check_page(&browser, "the procedure page", &mut faults);
    browser.goto(&app.url("/o/penrith/accessibility"));
    check_page(&browser, "the accessibility statement", &mut faults);
    browser.goto(&app.url("/o/penrith/report"));
    check_page(&browser, "the complaint form", &mut faults);
    browser.submit("form[action$='/report'] button[type=submit]");
    check_page(&browser, "the complaint form with errors", &mut faults);
    browser.fill("#platform", "Facebook");
    browser.fill("#content_url", &long_url());
    browser.select("#rule_code", "3a");
    browser.fill("#reason", "It insults a volunteer by name.");
    browser.fill("#reporter_name", "Robin Reporter");
    browser.fill("#reporter_email", "robin.with.a.long.address@reporter.example");
    browser.submit("form[action$='/report'] button[type=submit]");
    assert!(browser.title().starts_with("Complaint received"), "{}", browser.title());
    check_page(&browser, "the complaint received page", &mut faults);
    browser.goto(&seeded.fresh_link);
    check_page(&browser, "the private case page with the appeal form", &mut faults);
    browser.submit("form[action$='/appeal'] button[type=submit]");
    assert!(browser.title().starts_with("Error: "), "{}", browser.title());
    check_page(&browser, "the private case page with an appeal error", &mut faults);
    browser.goto(&seeded.escalated_link);
    assert!(browser.source().contains("With the executive committee"));
    check_page(&browser, "the private case page of an escalated case", &mut faults);
    browser.goto(&app.url(&format!("/c/{}", "0".repeat(64))));
    check_page(&browser, "the not-found page", &mut faults);

    // Signing in, wrongly and then rightly.
    browser.goto(&app.url("/sign-in"));
    check_page(&browser, "sign-in", &mut faults);
    browser.fill("#email", EVERYONE);
    browser.fill("#password", "not the password");
    browser.submit("form[action='/sign-in'] button[type=submit]");
    check_page(&browser, "sign-in refused", &mut faults);
    browser.fill("#email", EVERYONE);
    browser.fill("#password", PASSWORD);
    browser.submit("form[action='/sign-in'] button[type=submit]");
    assert!(browser.url().ends_with("/staff"), "signed in: {}", browser.url());

    // The staff pages.
    check_page(&browser, "the work queue", &mut faults);
    browser.goto(&app.url("/staff?q=crook"));
    assert!(browser.source().contains("Cases found"));
    check_page(&browser, "the search results", &mut faults);
    browser.goto(&app.url("/staff/committee"));
    assert!(browser.source().contains(&seeded.escalated_ref));
    check_page(&browser, "the committee view", &mut faults);
    let case_url = app.url(&format!("/staff/cases/{}", seeded.escalated_ref));
    browser.goto(&case_url);
    assert!(browser.try_find("form[action$='/decision']").is_some(), "the decision form is offered");
    assert!(browser.try_find("details summary").is_some(), "the emails are behind disclosures");
    check_page(&browser, "the staff case page with the decision form", &mut faults);
    browser.submit("form[action$='/decision'] button[type=submit]");
    assert!(browser.title().starts_with("Error: "), "{}", browser.title());
    check_page(&browser, "the decision form with errors", &mut faults);
    browser.goto(&app.url("/staff/removals/new"));
    check_page(&browser, "the removal form", &mut faults);
    browser.submit("button[value=send]");
    check_page(&browser, "the removal form with errors", &mut faults);
    for (path, label) in [
        ("/staff/admin", "organisation settings"),
        ("/staff/admin/rules", "policy rules"),
        ("/staff/admin/rules/3a", "editing a rule"),
        ("/staff/admin/users", "staff and roles"),
        ("/staff/admin/tokens", "API tokens"),
        ("/staff/admin/log", "the organisation log"),
        ("/staff/admin/accessibility", "writing the accessibility statement"),
        ("/staff/admin/public-note", "wording the public note"),
        ("/staff/admin/reasons", "saved reasons"),
        ("/orgs", "choosing an organisation"),
        ("/staff/cases/PEN-2099-9999", "the staff not-found page"),
    ] {
        browser.goto(&app.url(path));
        check_page(&browser, label, &mut faults);
    }

    assert!(faults.is_empty(), "{} layout fault(s):\n{}", faults.len(), faults.join("\n"));
}

/// The checks themselves find what they are for, on a page made to fail them: a header link
/// spilled below the black bar onto the white page, one pushed out of the window, and a
/// paragraph wider than the window.
#[test]
fn layout_checks_find_planted_faults() {
    let Some(browser) = Browser::start() else { return };
    browser.goto(
        "data:text/html,<!DOCTYPE html><html lang='en'><head><title>Faults</title>\
         <style>body{margin:0;background:%23fff} header.site{background:%230b0c0c;height:2rem;position:relative}\
         header.site a{color:%23fff} .spilled{position:absolute;top:3rem;left:0} .away{position:absolute;left:-200px}\
         .wide{width:2000px}</style></head>\
         <body><header class='site'><a href='/'>Home</a><a class='spilled' href='/x'>Spilled</a>\
         <a class='away' href='/y'>Away</a></header><main><p class='wide'>Wide</p></main></body></html>",
    );
    set_width(&browser, 320);
    let found: Vec<String> = browser
        .execute(&format!("{HELPERS}{LAYOUT_CHECKS}"), &[])
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let all = found.join("\n");
    assert!(
        found.iter().any(|f| f.starts_with("the page scrolls sideways") && f.contains("p.wide")),
        "{all}"
    );
    assert!(found.iter().any(|f| f.contains("a.spilled") && f.contains("contrast of 1.00:1")), "{all}");
    assert!(found.iter().any(|f| f.contains("a.away") && f.contains("outside the window")), "{all}");
    assert!(!found.iter().any(|f| f.contains("(\"Home\")")), "the link on the bar is fine: {all}");
}
