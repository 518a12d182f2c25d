//! Script injection: every free-text field that reaches a page or an email is given a payload of
//! markup (`<script>`, an `<img onerror>`, a quote that would end an attribute, `</textarea>`,
//! handlebars braces), each with a marker of its own. Then every page and every email is fetched
//! and read with html5ever's tokenizer: no element or attribute may come from a payload, while
//! the payload's text must be there, escaped (so the field really was rendered, and the test can
//! fail). Email subjects must stay one header line.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::web::WebClient;
use crate::common::*;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";

// ---------------------------------------------------------------------------------------------
// Payloads. Each carries the marker `injNN`, which nothing else in Redress contains.

/// For fields with room: every trick at once.
fn full(id: u32) -> String {
    format!(
        "<script>inj{id}</script>\"><img src=x onerror=inj{id}>' onmouseover='inj{id}' </textarea><svg onload=inj{id}> {{{{inj{id}}}}} {{{{{{inj{id}}}}}}} &amp; &lt;b&gt;"
    )
}

/// For fields of at most 100 characters.
fn short(id: u32) -> String {
    format!("\"><img src=x onerror=inj{id}>'<svg onload=inj{id}>{{{{inj{id}}}}}")
}

/// Links must be http(s) and hold no whitespace: the markup goes in the path and query.
fn url(id: u32) -> String {
    format!("https://example.org/inj{id}?a=\"><script>inj{id}</script>&b='onmouseover='inj{id}'")
}

/// The payload for the `i`th field of a form whose first field is short and second a link.
fn form_field(first: u32, i: u32) -> String {
    match i {
        0 => short(first),
        1 => url(first + 1),
        _ => full(first + i),
    }
}

/// Email addresses refuse `<`, `>`, whitespace and commas, but a quote and `=` are allowed.
fn email(id: u32) -> String {
    format!("inj{id}'onmouseover=x@example.org")
}

// ---------------------------------------------------------------------------------------------
// Elements, attributes and text as a browser's tokenizer reads them (html5ever's, the one in
// Servo). Tokens rather than a tree: every element a page has came from a start tag, and a
// template partial (a table row, say) tokenizes the same wherever it is later put.

#[derive(Debug)]
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
}

struct Parsed {
    tags: Vec<Tag>,
    /// Runs of text and attribute values, character references decoded.
    texts: Vec<String>,
}

#[derive(Default)]
struct Collect {
    parsed: std::cell::RefCell<Option<Parsed>>,
    text: std::cell::RefCell<String>,
}

impl html5ever::tokenizer::TokenSink for Collect {
    type Handle = ();

    fn process_token(
        &self,
        token: html5ever::tokenizer::Token,
        _line: u64,
    ) -> html5ever::tokenizer::TokenSinkResult<()> {
        use html5ever::tokenizer::states::RawKind;
        use html5ever::tokenizer::{TagKind, Token, TokenSinkResult};
        let mut parsed = self.parsed.borrow_mut();
        let parsed = parsed.get_or_insert_with(|| Parsed { tags: vec![], texts: vec![] });
        if let Token::CharacterTokens(t) = &token {
            self.text.borrow_mut().push_str(t);
            return TokenSinkResult::Continue;
        }
        parsed.texts.push(std::mem::take(&mut *self.text.borrow_mut()));
        let Token::TagToken(tag) = token else { return TokenSinkResult::Continue };
        if tag.kind == TagKind::EndTag {
            return TokenSinkResult::Continue;
        }
        let name = tag.name.to_string();
        let attrs: Vec<(String, String)> =
            tag.attrs.iter().map(|a| (a.name.local.to_string(), a.value.to_string())).collect();
        parsed.texts.extend(attrs.iter().map(|(_, v)| v.clone()));
        parsed.tags.push(Tag { name: name.clone(), attrs });
        // What the tree builder would tell the tokenizer: inside these, nothing is markup.
        match name.as_str() {
            "title" | "textarea" => TokenSinkResult::RawData(RawKind::Rcdata),
            "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => {
                TokenSinkResult::RawData(RawKind::Rawtext)
            }
            "script" => TokenSinkResult::RawData(RawKind::ScriptData),
            "plaintext" => TokenSinkResult::Plaintext,
            _ => TokenSinkResult::Continue,
        }
    }
}

fn parse_html(html: &str) -> Parsed {
    use html5ever::tokenizer::{BufferQueue, Tokenizer};
    let tokenizer = Tokenizer::new(Collect::default(), Default::default());
    let input = BufferQueue::default();
    input.push_back(html.into());
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    let sink = tokenizer.sink;
    let mut parsed = sink.parsed.take().unwrap_or(Parsed { tags: vec![], texts: vec![] });
    parsed.texts.push(sink.text.take());
    parsed
}

/// The elements and attributes the templates themselves use: anything else in a page came from
/// somewhere else.
fn template_vocabulary() -> (BTreeSet<String>, BTreeSet<String>) {
    let mut elements = BTreeSet::new();
    let mut attributes = BTreeSet::new();
    for dir in ["templates", "emails"] {
        for (_, source) in hbs_files(dir) {
            // Handlebars expressions are not markup; drop them, keeping what they wrap.
            let mut plain = String::new();
            let mut rest = source.as_str();
            while let Some(i) = rest.find("{{") {
                plain.push_str(&rest[..i]);
                rest = rest[i..].find("}}").map(|e| &rest[i + e + 2..]).unwrap_or("");
                plain.push(' ');
            }
            plain.push_str(rest);
            for tag in parse_html(&plain).tags {
                elements.insert(tag.name);
                for (a, _) in tag.attrs {
                    attributes.insert(a);
                }
            }
        }
    }
    (elements, attributes)
}

fn hbs_files(dir: &str) -> Vec<(String, String)> {
    fn walk(path: &std::path::Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(path).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "hbs") {
                out.push((p.display().to_string(), std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    let mut out = vec![];
    walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut out);
    out.sort();
    out
}

/// Everything wrong with one HTML document: elements or attributes that came from a payload,
/// or a payload's markup present unescaped.
fn injections(
    name: &str,
    html: &str,
    payloads: &BTreeMap<u32, String>,
    vocab: &(BTreeSet<String>, BTreeSet<String>),
) -> Vec<String> {
    let mut found = vec![];
    let parsed = parse_html(html);
    for tag in &parsed.tags {
        if tag.name.contains("inj") || !vocab.0.contains(&tag.name) {
            found.push(format!("{name}: an element the templates never write: <{}>", tag.name));
        }
        if tag.name == "script" && !tag.attrs.iter().any(|(a, v)| a == "src" && v.starts_with("/assets/")) {
            found.push(format!("{name}: a script element that is not the site's own: {tag:?}"));
        }
        for (attr, value) in &tag.attrs {
            if attr.contains("inj") || attr.starts_with("on") || !vocab.1.contains(attr) {
                found.push(format!(
                    "{name}: an attribute the templates never write: {attr}= on <{}>",
                    tag.name
                ));
            }
            if (attr == "href" || attr == "src" || attr == "action")
                && !["/", "#", "http://", "https://", "mailto:"].iter().any(|p| value.starts_with(p))
            {
                found.push(format!("{name}: a link that is not http(s) or on this site: {attr}={value:?}"));
            }
        }
    }
    for (id, payload) in payloads {
        if html.contains(payload.as_str()) {
            found.push(format!("{name}: payload inj{id} appears unescaped"));
        }
        for raw in [
            format!("<script>inj{id}"),
            format!("<img src=x onerror=inj{id}"),
            format!("<svg onload=inj{id}"),
        ] {
            if html.contains(&raw) {
                found.push(format!("{name}: raw markup {raw:?}"));
            }
        }
    }
    found
}

fn rendered_in(html: &str, payload: &str) -> bool {
    parse_html(html).texts.iter().any(|t| t.contains(payload))
}

// ---------------------------------------------------------------------------------------------
// Driving Redress.

fn cli_ok(app: &TestApp, args: &[&str]) -> String {
    app.cli_ok(args)
}

fn signed_in(app: &TestApp, email: &str) -> WebClient {
    app.set_password(email, PASSWORD);
    let web = WebClient::new(&app.base_url);
    web.sign_in(email, PASSWORD);
    web
}

/// The newest private link sent to `to`: each email carries a new one, and a new link may end
/// the older ones.
fn latest_link(app: &TestApp, to: &str) -> String {
    app.wait_outbox_settled();
    let link =
        app.smtp.all().iter().rev().find(|m| m.envelope_to.iter().any(|t| t == to)).and_then(|m| m.link());
    path_of(&link.unwrap_or_else(|| panic!("no link sent to {to}")))
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn api_case(app: &TestApp, token: &str, reference: &str) -> Value {
    let (status, body) = app.api("GET", &format!("/api/v1/cases/{reference}"), Some(token), None);
    assert_eq!(status, 200, "{body}");
    body
}

/// Collects what is fetched, by name.
#[derive(Default)]
struct Outputs {
    html: Vec<(String, String)>,
}

impl Outputs {
    fn page(&mut self, name: &str, status: u16, body: String, expected: &[u16]) {
        assert!(expected.contains(&status), "{name}: status {status}:\n{body}");
        self.html.push((name.to_string(), body));
    }

    fn get(&mut self, web: &WebClient, path: &str, expected: &[u16]) {
        let page = web.get(path);
        self.page(&format!("page GET {path}"), page.status, page.body, expected);
    }
}

#[test]
fn no_page_or_email_carries_injected_markup() {
    let app = TestApp::start();
    let mut payloads: BTreeMap<u32, String> = BTreeMap::new();
    let mut p = |id: u32, value: String| -> String {
        payloads.insert(id, value.clone());
        value
    };

    // The organisation, its rules and its staff, from the command line.
    let org_added = p(1, full(1));
    cli_ok(
        &app,
        &[
            "org",
            "add",
            "--slug",
            ORG,
            "--name",
            &org_added,
            "--secretary-email",
            SECRETARY,
            "--prefix",
            "PEN",
        ],
    );
    let (rule_title, rule_summary) = (p(3, full(3)), p(4, full(4)));
    cli_ok(
        &app,
        &["rule", "add", "--org", ORG, "--code", "3a", "--title", &rule_title, "--summary", &rule_summary],
    );
    cli_ok(
        &app,
        &[
            "rule",
            "add",
            "--org",
            ORG,
            "--code",
            "3e",
            "--title",
            "Legal risk",
            "--summary",
            "Nothing libellous.",
        ],
    );
    let names = [
        (MODERATOR, "moderator", 5),
        (MODERATOR2, "moderator", 6),
        (SECRETARY, "secretary", 7),
        (COMMITTEE, "committee", 8),
        (ADMIN, "admin", 9),
    ];
    for (email_address, role, id) in names {
        let name = p(id, full(id));
        cli_ok(
            &app,
            &["user", "add", "--org", ORG, "--email", email_address, "--name", &name, "--role", role],
        );
    }
    let cli_label = p(10, short(10));
    let moderator_token =
        cli_ok(&app, &["token", "add", "--org", ORG, "--email", MODERATOR, "--label", &cli_label])
            .trim()
            .to_string();
    let committee_token =
        cli_ok(&app, &["token", "add", "--org", ORG, "--email", COMMITTEE]).trim().to_string();

    let mut out = Outputs::default();
    let anonymous = WebClient::new(&app.base_url);
    out.get(&anonymous, "/o/penrith/report", &[200]);
    // The name the organisation goes by from here on; a line break cannot be slipped into it.
    let bad = app.cli(&["org", "set", ORG, "--name", "Penrith\r\nBcc: inj99@evil.example"]);
    assert!(!bad.status.success(), "a name with a line break was accepted");
    let org_name = p(2, full(2));
    cli_ok(&app, &["org", "set", ORG, "--name", &org_name]);

    // The admin's pages: a rule added and one edited, a member, a token, a closure day.
    let admin = signed_in(&app, ADMIN);
    let (t, s) = (p(11, full(11)), p(12, full(12)));
    let page = admin.submit(
        "/staff/admin/rules",
        "/staff/admin/rules",
        &[("code", "4b"), ("title", &t), ("summary", &s)],
    );
    assert_eq!(page.status, 303, "{}", page.body);
    let (t, s) = (p(13, full(13)), p(14, full(14)));
    let page =
        admin.submit("/staff/admin/rules/3e", "/staff/admin/rules/3e", &[("title", &t), ("summary", &s)]);
    assert_eq!(page.status, 303, "{}", page.body);
    let (n, e) = (p(15, full(15)), p(16, email(16)));
    let page = admin.submit(
        "/staff/admin/users",
        "/staff/admin/users",
        &[("email", &e), ("name", &n), ("role", "committee")],
    );
    assert_eq!(page.status, 303, "{}", page.body);
    let label = p(17, short(17));
    let page = admin.submit(
        "/staff/admin/tokens",
        "/staff/admin/tokens",
        &[("email", MODERATOR), ("label", &label)],
    );
    assert_eq!(page.status, 201, "{}", page.body);
    out.page("page POST /staff/admin/tokens", page.status, page.body, &[201]);
    let closure = p(18, full(18));
    let page =
        admin.submit("/staff/admin", "/staff/admin/closures", &[("day", "2031-12-24"), ("title", &closure)]);
    assert_eq!(page.status, 303, "{}", page.body);

    // Forms that fail keep their answers: each echoes its payload back.
    let echo = p(19, full(19));
    let page = admin.submit(
        "/staff/admin",
        "/staff/admin/settings",
        &[("name", &echo), ("secretary_email", "not an address")],
    );
    out.page("page POST /staff/admin/settings (refused)", page.status, page.body, &[422]);
    let (t, s) = (p(20, full(20)), p(21, full(21)));
    let page = admin.submit(
        "/staff/admin/rules",
        "/staff/admin/rules",
        &[("code", "bad code!"), ("title", &t), ("summary", &s)],
    );
    out.page("page POST /staff/admin/rules (refused)", page.status, page.body, &[422]);
    let n = p(22, full(22));
    let page = admin.submit(
        "/staff/admin/users",
        "/staff/admin/users",
        &[("email", "nope"), ("name", &n), ("role", "moderator")],
    );
    out.page("page POST /staff/admin/users (refused)", page.status, page.body, &[422]);
    let e = p(23, short(23));
    let page = anonymous.submit("/sign-in", "/sign-in", &[("email", &e), ("password", "wrong password")]);
    out.page("page POST /sign-in (refused)", page.status, page.body, &[401, 422, 429]);

    // A removal through the API, with every field a payload.
    let removal = json!({
        "platform": p(30, short(30)),
        "content_url": p(31, url(31)),
        "content_text": p(32, full(32)),
        "author_name": p(33, full(33)),
        "author_email": p(34, email(34)),
        "rule_codes": ["3a", "4b"],
        "explanation": p(35, full(35)),
        "notice_method": p(36, full(36)),
    });
    let (status, case) = app.api("POST", "/api/v1/removals", Some(&moderator_token), Some(&removal));
    assert_eq!(status, 201, "{case}");
    let removed = case["reference"].as_str().unwrap().to_string();
    let poster_address = email(34);
    app.mail_to(&poster_address, "your post was removed");
    let poster = latest_link(&app, &poster_address);

    // The poster appeals; an appeal refused (a control character) echoes its words.
    let refused = format!("{}\u{7}", p(37, full(37)));
    let (status, _, body) = app.post_form(&format!("{poster}/appeal"), &[("appeal", &refused)]);
    out.page("page POST /c/…/appeal (refused)", status, body, &[422]);
    let appeal = p(38, full(38));
    let (status, _, body) = app.post_form(&format!("{poster}/appeal"), &[("appeal", &appeal)]);
    assert_eq!(status, 303, "{body}");

    // The moderator asks for more information on the case page, gets it, and upholds.
    let moderator = signed_in(&app, MODERATOR);
    let staff_case = format!("/staff/cases/{removed}");
    let question = p(39, full(39));
    let page =
        moderator.submit(&staff_case, &format!("{staff_case}/request-info"), &[("question", &question)]);
    assert_eq!(page.status, 303, "{}", page.body);
    let answer = p(40, full(40));
    let poster = latest_link(&app, &poster_address);
    let (status, _, body) = app.post_form(&format!("{poster}/information"), &[("information", &answer)]);
    assert_eq!(status, 303, "{body}");
    let note = p(41, full(41));
    let page = moderator.submit(&staff_case, &format!("{staff_case}/notes"), &[("note", &note)]);
    assert!(page.status == 303 || page.status == 201, "{}", page.body);
    let refused = p(42, full(42));
    let page = moderator.submit(
        &staff_case,
        &format!("{staff_case}/response"),
        &[("outcome", "bogus"), ("reasons", &refused)],
    );
    out.page("page POST /staff/cases/…/response (refused)", page.status, page.body, &[422]);
    let reasons = p(43, full(43));
    let page = moderator.submit(
        &staff_case,
        &format!("{staff_case}/response"),
        &[("outcome", "uphold"), ("reasons", &reasons)],
    );
    assert_eq!(page.status, 303, "{}", page.body);
    let poster = latest_link(&app, &poster_address);
    out.get(&anonymous, &poster, &[200]);
    let written = p(44, full(44));
    let (status, _, body) = app.post_form(&format!("{poster}/escalate"), &[("case_for_committee", &written)]);
    assert_eq!(status, 303, "{body}");

    // A removal from the staff form: the preview, a refused send that keeps the answers, and
    // one without an address whose link is shown once.
    let web_removal = |extra: &[(&str, &str)], ids: u32| -> Vec<(String, String)> {
        let mut fields = vec![
            ("platform".to_string(), short(ids)),
            ("content_url".to_string(), url(ids + 1)),
            ("content_text".to_string(), full(ids + 2)),
            ("author_name".to_string(), full(ids + 3)),
            ("notice_method".to_string(), full(ids + 4)),
            ("explanation".to_string(), full(ids + 5)),
            ("rule.3a".to_string(), "on".to_string()),
        ];
        fields.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        fields
    };
    for ids in [50, 60, 70] {
        for i in 0..6 {
            p(ids + i, form_field(ids, i));
        }
    }
    let submit = |fields: Vec<(String, String)>| {
        let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        moderator.submit("/staff/removals/new", "/staff/removals", &refs)
    };
    let page = submit(web_removal(&[("author_email", &email(56)), ("action", "preview")], 50));
    p(56, email(56));
    out.page("page POST /staff/removals (preview)", page.status, page.body, &[200]);
    let page = submit(web_removal(&[("author_email", "not an address"), ("action", "send")], 60));
    out.page("page POST /staff/removals (refused)", page.status, page.body, &[422]);
    let page = submit(web_removal(&[("action", "send")], 70));
    out.page("page POST /staff/removals (link shown once)", page.status, page.body, &[201]);

    // A complaint through the public form; one refused first, which keeps the answers.
    let complaint = |ids: u32, reporter_email: &str| -> Vec<(String, String)> {
        vec![
            ("platform".into(), short(ids)),
            ("content_url".into(), url(ids + 1)),
            ("content_text".into(), full(ids + 2)),
            ("rule_code".into(), "3a".into()),
            ("reason".into(), full(ids + 3)),
            ("reporter_name".into(), full(ids + 4)),
            ("reporter_email".into(), reporter_email.to_string()),
        ]
    };
    for ids in [80, 90] {
        for i in 0..5 {
            p(ids + i, form_field(ids, i));
        }
    }
    let post_complaint = |fields: Vec<(String, String)>| {
        let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        app.post_form("/o/penrith/report", &refs)
    };
    let (status, _, body) = post_complaint(complaint(80, "nope"));
    out.page("page POST /o/penrith/report (refused)", status, body, &[422]);
    let reporter_address = p(95, email(95));
    let (status, _, body) = post_complaint(complaint(90, &reporter_address));
    out.page("page POST /o/penrith/report (done)", status, body, &[201]);
    let reporter = path_of(&app.mail_to(&reporter_address, "we have your report").link().unwrap());
    let (_, list) = app.api("GET", "/api/v1/cases?kind=complaint", Some(&moderator_token), None);
    let complained = list["cases"][0]["reference"].as_str().unwrap().to_string();

    // A second complaint whose question goes unanswered, and a removal the poster withdraws.
    let (status, _, body) = post_complaint(complaint(90, "other@reporter.example"));
    assert_eq!(status, 201, "{body}");
    let (_, list) = app.api("GET", "/api/v1/cases?kind=complaint", Some(&moderator_token), None);
    let unanswered = list["cases"][0]["reference"].as_str().unwrap().to_string();
    let question2 = p(96, full(96));
    let (status, body) = app.api(
        "POST",
        &format!("/api/v1/cases/{unanswered}/request-info"),
        Some(&moderator_token),
        Some(&json!({ "question": question2 })),
    );
    assert_eq!(status, 200, "{body}");
    let mut withdrawn_removal = removal.clone();
    withdrawn_removal["author_email"] = json!("withdrawer@poster.example");
    let (status, case) =
        app.api("POST", "/api/v1/removals", Some(&moderator_token), Some(&withdrawn_removal));
    assert_eq!(status, 201, "{case}");
    let withdrawer =
        path_of(&app.mail_to("withdrawer@poster.example", "your post was removed").link().unwrap());
    let reason = p(97, full(97));
    let (status, _, body) =
        app.post_form(&format!("{withdrawer}/withdraw"), &[("reason", &reason), ("confirm", "yes")]);
    assert_eq!(status, 303, "{body}");

    // The sweep: reminders and overdue alerts for the complaints, then the committee's.
    let due = at(api_case(&app, &moderator_token, &complained)["due_at"].as_str().unwrap());
    app.cli_ok(&["sweep", "--now", &(due - Duration::hours(6)).to_rfc3339()]);
    let info_due = api_case(&app, &moderator_token, &unanswered)["info_due_at"].as_str().map(at);
    if let Some(info_due) = info_due {
        app.cli_ok(&["sweep", "--now", &(info_due + Duration::seconds(1)).to_rfc3339()]);
    }
    app.cli_ok(&["sweep", "--now", &(due + Duration::minutes(1)).to_rfc3339()]);
    let target = at(api_case(&app, &moderator_token, &removed)["due_at"].as_str().unwrap());
    app.cli_ok(&["sweep", "--now", &(target - Duration::hours(30)).to_rfc3339()]);
    app.cli_ok(&["sweep", "--now", &(target + Duration::minutes(1)).to_rfc3339()]);

    // Every staff page, before the committee decides and after.
    let committee = signed_in(&app, COMMITTEE);
    out.get(&committee, "/staff/committee", &[200]);
    let decision = p(98, full(98));
    let page = committee.submit(
        &staff_case,
        &format!("{staff_case}/decision"),
        &[("outcome", "reinstate"), ("reasons", &decision)],
    );
    assert_eq!(page.status, 303, "{}", page.body);
    let _ = committee_token;
    // A new private link for the reporter.
    let page = moderator.submit(
        &format!("/staff/cases/{complained}"),
        &format!("/staff/cases/{complained}/link"),
        &[("confirm", "yes")],
    );
    assert!(page.status < 400, "{}", page.body);
    out.page("page POST /staff/cases/…/link", page.status, page.body, &[200, 201, 303]);
    let _ = reporter;
    let reporter_link = latest_link(&app, &reporter_address);
    let poster = latest_link(&app, &poster_address);

    let (_, list) = app.api("GET", "/api/v1/cases", Some(&moderator_token), None);
    let references: Vec<String> = list["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reference"].as_str().unwrap().to_string())
        .collect();
    for who in [&moderator, &committee, &admin] {
        for path in ["/staff", "/orgs", "/staff/removals/new", "/staff/committee"] {
            out.get(who, path, &[200, 403]);
        }
        for r in &references {
            out.get(who, &format!("/staff/cases/{r}"), &[200]);
        }
    }
    for path in [
        "/staff/admin",
        "/staff/admin/rules",
        "/staff/admin/rules/3e",
        "/staff/admin/rules/4b",
        "/staff/admin/users",
        "/staff/admin/tokens",
        "/staff/admin/log",
    ] {
        out.get(&admin, path, &[200]);
    }
    for path in [&poster, &withdrawer, &reporter_link] {
        out.get(&anonymous, path, &[200]);
    }
    out.get(&anonymous, "/o/penrith/report", &[200]);
    out.get(&anonymous, "/sign-in", &[200]);
    // Error pages that quote what was asked for.
    let in_path = p(99, "\"><svg onload=inj99>'<script>inj99</script>".to_string());
    let escaped_path: String = in_path.bytes().map(|b| format!("%{b:02X}")).collect();
    for path in [
        format!("/staff/cases/{escaped_path}"),
        format!("/staff/admin/rules/{escaped_path}"),
        format!("/c/{escaped_path}"),
        format!("/o/{escaped_path}/report"),
    ] {
        let who = if path.starts_with("/staff") { &admin } else { &anonymous };
        out.get(who, &path, &[404, 400, 429]);
    }
    // The settings last, so that every page above carried the name set on the command line.
    let web_name = p(100, full(100));
    let page = admin.submit("/staff/admin", "/staff/admin/settings", &[("name", &web_name)]);
    assert_eq!(page.status, 303, "{}", page.body);
    out.get(&admin, "/staff/admin", &[200]);
    out.get(&anonymous, &poster, &[200]);

    // ------------------------------------------------------------------------------------
    // The pages.
    let vocab = template_vocabulary();
    let mut problems = vec![];
    for (name, html) in &out.html {
        problems.extend(injections(name, html, &payloads, &vocab));
    }

    // The emails: HTML parts checked like pages, subjects one line and free of injected headers.
    let db = redress::db::connect(&app.database_url, 1).unwrap();
    let templates: Vec<(String, String, String)> = {
        use redress::db::schema::outbox;
        outbox::table
            .select((outbox::to_address, outbox::subject, outbox::template))
            .load(&mut *db.get().unwrap())
            .unwrap()
    };
    let mails = app.smtp.all();
    let mut templates_seen = BTreeSet::new();
    for mail in &mails {
        let template = templates
            .iter()
            .find(|(to, subject, _)| mail.envelope_to.contains(to) && subject == &mail.subject)
            .map(|(_, _, t)| t.clone())
            .unwrap_or_else(|| format!("unknown ({})", mail.subject));
        templates_seen.insert(template.clone());
        let name = format!("email {template} to {}", mail.envelope_to.join(","));
        let subjects =
            mail.headers.lines().filter(|l| l.to_ascii_lowercase().starts_with("subject:")).count();
        if subjects != 1 {
            problems.push(format!("{name}: {subjects} Subject headers:\n{}", mail.headers));
        }
        for line in mail.headers.lines() {
            let lower = line.to_ascii_lowercase();
            // The recipient's own address is a payload where the public gave one.
            let own_address =
                lower.starts_with("to:") && mail.envelope_to.iter().any(|t| line[3..].trim() == t);
            if lower.starts_with("bcc:")
                || (line.contains("inj") && !lower.starts_with("subject:") && !own_address)
            {
                problems.push(format!("{name}: a header came from the payload: {line}"));
            }
        }
        let text = &mail.body;
        match mail.html.clone() {
            Some(html) => {
                problems.extend(injections(&format!("{name} (HTML)"), &html, &payloads, &vocab));
                out.html.push((format!("{name} (HTML)"), html));
            }
            None => problems.push(format!("{name}: no HTML part")),
        }
        if !text.contains("inj") && !mail.subject.contains("inj") {
            // Every email names the organisation (in its footer), whose name is a payload.
            problems.push(format!("{name}: no payload in the text part, so nothing was tested:\n{text}"));
        }
    }

    // Every email template was sent at least once (and so checked above).
    let every: BTreeSet<String> = hbs_files("emails")
        .iter()
        .filter_map(|(path, _)| {
            let rel = path.split("/emails/").nth(1)?;
            let (folder, _) = rel.split_once('/')?;
            (folder != "partials").then(|| folder.to_string())
        })
        .collect();
    let missing: Vec<&String> = every.difference(&templates_seen).collect();
    if !missing.is_empty() {
        problems.push(format!(
            "email templates never sent here, so not checked: {missing:?} (sent: {templates_seen:?})"
        ));
    }

    // Every payload was rendered somewhere as text, so the checks above had something to find
    // (the name given at `org add` was replaced by `org set` before anything but the report form
    // was fetched, and that form is fetched first).
    for (id, payload) in &payloads {
        let shown_in: Vec<&String> =
            out.html.iter().filter(|(_, html)| rendered_in(html, payload)).map(|(n, _)| n).collect();
        if shown_in.is_empty() {
            problems.push(format!("payload inj{id} was never shown, escaped or not: {payload:?}"));
        }
    }
    // And where it matters most, the specific pages and emails.
    let expect: &[(u32, &str)] = &[
        (2, "email removal_notice"),
        (2, "page GET /c/"),
        (3, "email removal_notice"),
        (4, "page GET /c/"),
        (5, "page GET /staff/cases/"),
        (15, "page GET /staff/admin/users"),
        (17, "page GET /staff/admin/tokens"),
        (18, "page GET /staff/admin"),
        (19, "page POST /staff/admin/settings (refused)"),
        (31, "page GET /c/"),
        (32, "email removal_notice"),
        (33, "email removal_notice"),
        (35, "page GET /c/"),
        (37, "page POST /c/…/appeal (refused)"),
        (38, "email new_appeal"),
        (39, "email info_request"),
        (40, "email info_provided"),
        (41, "page GET /staff/cases/"),
        (42, "page POST /staff/cases/…/response (refused)"),
        (43, "email response"),
        (44, "email escalation_received"),
        (44, "page GET /staff/committee"),
        (52, "page POST /staff/removals (preview)"),
        (63, "page POST /staff/removals (refused)"),
        (82, "page POST /o/penrith/report (refused)"),
        (94, "email new_complaint"),
        (94, "page GET /staff/cases/"),
        (96, "email info_request"),
        (97, "email withdrawn_staff"),
        (98, "email decision"),
        (99, "page GET /staff/cases/%"),
        (100, "page GET /staff/admin"),
    ];
    for (id, prefix) in expect {
        let payload = &payloads[id];
        let matching: Vec<&(String, String)> =
            out.html.iter().filter(|(n, _)| n.starts_with(prefix)).collect();
        if !matching.iter().any(|(_, html)| rendered_in(html, payload)) {
            problems
                .push(format!("payload inj{id} is not shown in {prefix}… ({} such outputs)", matching.len()));
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn the_setup_page_escapes_its_answers() {
    let app = TestApp::start();
    let web = WebClient::new(&app.base_url);
    let vocab = template_vocabulary();
    let payloads: BTreeMap<u32, String> = [(1, full(1)), (2, full(2)), (3, email(3))].into();
    let fields = |password: &str| {
        vec![
            ("org_name", payloads[&1].clone()),
            ("org_slug", "penrith".to_string()),
            ("secretary_email", payloads[&3].clone()),
            ("timezone", "Europe/London".to_string()),
            ("admin_name", payloads[&2].clone()),
            ("admin_email", "alex@penrith.example".to_string()),
            ("password", password.to_string()),
        ]
    };
    let refs = |f: &[(&'static str, String)]| f.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();
    let refused = refs(&fields("short"));
    let refused: Vec<(&str, &str)> = refused.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = web.submit("/setup", "/setup", &refused);
    assert_eq!(page.status, 422, "{}", page.body);
    let mut problems = injections("setup (refused)", &page.body, &payloads, &vocab);
    for id in [1, 2, 3] {
        assert!(
            rendered_in(&page.body, &payloads[&id]),
            "inj{id} not kept in the refused form:\n{}",
            page.body
        );
    }
    let done = refs(&fields(PASSWORD));
    let done: Vec<(&str, &str)> = done.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = web.submit("/setup", "/setup", &done);
    assert_eq!(page.status, 303, "{}", page.body);
    web.sign_in("alex@penrith.example", PASSWORD);
    for path in ["/staff", "/staff/admin", "/staff/admin/users"] {
        let page = web.get(path);
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        problems.extend(injections(path, &page.body, &payloads, &vocab));
        assert!(rendered_in(&page.body, &payloads[&1]), "{path} does not name the organisation");
    }
    assert!(rendered_in(&web.get("/staff/admin/users").body, &payloads[&2]), "the admin's name");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Triple braces write a value without escaping. None of the templates may use them on
/// anything that comes from people; the ones allowed are listed with the reason.
#[test]
fn no_template_writes_user_input_unescaped() {
    // (template path ending, the expression) → why it is safe.
    const ALLOWED: &[(&str, &str, &str)] = &[];
    let mut found = vec![];
    for dir in ["templates", "emails"] {
        for (path, source) in hbs_files(dir) {
            let mut rest = source.as_str();
            while let Some(i) = rest.find("{{{") {
                let end = rest[i..].find("}}}").map(|e| i + e + 3).unwrap_or(rest.len());
                let expr = &rest[i..end];
                if !ALLOWED.iter().any(|(file, e, _)| path.ends_with(file) && *e == expr) {
                    found.push(format!("{path}: {expr}"));
                }
                rest = &rest[end..];
            }
            // `{{{{raw}}}}` blocks and `{{& x}}` are the other ways to skip escaping.
            for (line_no, line) in source.lines().enumerate() {
                if line.contains("{{&") {
                    found.push(format!("{path}:{}: {{{{& … }}}}", line_no + 1));
                }
            }
        }
    }
    // Text emails and subjects are rendered without escaping on purpose (plain text); their
    // HTML comes from the HTML registry, which escapes, and this test reads it above.
    assert!(found.is_empty(), "unescaped output in templates:\n{}", found.join("\n"));
}

/// The checks above would see an injection if there were one.
#[test]
fn the_checker_finds_injected_markup() {
    let vocab = template_vocabulary();
    let payloads: BTreeMap<u32, String> = [(1, full(1)), (2, short(2))].into();
    let page = |inner: &str| {
        format!("<!DOCTYPE html><html><head><title>t</title></head><body><p>{inner}</p></body></html>")
    };
    let escaped = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#x27;")
    };
    let safe = page(&format!("<input value=\"{}\">{}", escaped(&payloads[&2]), escaped(&payloads[&1])));
    assert_eq!(injections("safe", &safe, &payloads, &vocab), Vec::<String>::new());
    assert!(rendered_in(&safe, &payloads[&1]) && rendered_in(&safe, &payloads[&2]));
    for unsafe_page in [
        page(&payloads[&1]),
        page(&format!("<input value=\"{}\">", payloads[&2])),
        page("<a href=\"javascript:inj3\">x</a>"),
        page("<b onclick=\"x\">inj4</b>"),
        page("<p title=\"x\" onmouseover=\"inj5\">"),
        page("<textarea></textarea><svg onload=inj6></textarea>"),
    ] {
        assert!(
            !injections("unsafe", &unsafe_page, &payloads, &vocab).is_empty(),
            "not caught: {unsafe_page}"
        );
    }
}
