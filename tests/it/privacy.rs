//! The privacy property: a complainant's name and email, internal notes and the identity of
//! every staff member never reach the poster or the reporter, whatever the case goes through.
//!
//! Each round starts a fresh server, gives every secret a fresh random marker, and drives a
//! dozen cases through every path that renders something for a poster or a reporter. After each
//! step it reads every public rendering a party can get (the private case page, its error
//! re-renders, every email with all its MIME parts and headers) and looks for any marker the
//! party must not see. To prove the markers reached the system, it also looks for them where
//! staff should see them.
//!
//! Failures are collected and reported together, each tagged: `[leak]` a secret reached a party,
//! `[notes]` the internal-notes interface refused a note, `[missing]` a marker absent from a staff
//! rendering, `[scanner]` a rendering the test could not read as it expected.
//!
//! The seed is printed; `REDRESS_PRIVACY_SEED=N` replays a run, `REDRESS_PRIVACY_ROUNDS=N` changes
//! how many rounds run.

use std::collections::BTreeSet;

use crate::common::web::WebClient;
use crate::common::*;
use rand::distr::{Alphanumeric, SampleString};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const DEFAULT_ROUNDS: u64 = 3;

#[test]
fn parties_never_see_complainants_staff_or_notes() {
    let seed = std::env::var("REDRESS_PRIVACY_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| rand::rng().random::<u64>());
    let rounds = std::env::var("REDRESS_PRIVACY_ROUNDS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_ROUNDS);
    eprintln!("privacy property test: seed {seed} (replay with REDRESS_PRIVACY_SEED={seed})");
    let mut report = Vec::new();
    for round in 0..rounds {
        let started = std::time::Instant::now();
        let mut r = Round::start(seed.wrapping_add(round), round);
        r.run();
        eprintln!(
            "round {round}: {} cases, {} parties, {} secrets; {} party renderings scanned, {} of them \
             emails (part encodings {:?}); {} finding(s) in {:.1?}",
            r.cases.len(),
            r.parties.len(),
            r.secrets.len(),
            r.renderings,
            r.party_mails,
            r.encodings,
            r.findings.len(),
            started.elapsed()
        );
        report.extend(r.findings.iter().map(|f| format!("round {round}: {f}")));
    }
    assert!(report.is_empty(), "seed {seed}: {} finding(s):\n{}", report.len(), report.join("\n"));
}

/// The scanner itself: a marker hidden by each encoding an email may use is still found.
#[test]
fn the_scanner_sees_through_every_encoding() {
    fn base64(bytes: &[u8]) -> String {
        const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
            for i in 0..4 {
                out.push(if i <= chunk.len() { ABC[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
            }
        }
        out
    }
    let raw = format!(
        "To: =?utf-8?b?{}?= <x@y.example>\nSubject: =?utf-8?q?Case_mkBBBBBB?=\nMIME-Version: 1.0\n\
         Content-Type: multipart/alternative;\n boundary=\"XYZ\"\n\n--XYZ\n\
         Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n\
         Zo=C3=AB mk=43CCCCC soft=\nbreak\n--XYZ\nContent-Type: text/html; charset=utf-8\n\
         Content-Transfer-Encoding: base64\n\n{}\n--XYZ--\n",
        base64("Zoë mkAAAAAA".as_bytes()),
        base64(b"<p>mkDDDDDD &amp; co</p>"),
    );
    let d = decode_mail(&raw);
    assert!(!raw.contains("mkAAAAAA") && !raw.contains("mkDDDDDD"), "the markers are hidden in the raw mail");
    assert!(d.to.contains("Zoë mkAAAAAA"), "{}", d.to);
    assert_eq!(d.subject, "Case mkBBBBBB");
    assert_eq!(d.parts.len(), 2, "{:?}", d.parts);
    assert!(d.parts[0].1.contains("Zoë mkCCCCCC softbreak"), "{:?}", d.parts[0]);
    assert!(d.parts[1].1.contains("<p>mkDDDDDD &amp; co</p>"), "{:?}", d.parts[1]);
    let secret =
        Secret { what: "n".into(), value: "O'Brien & Zoë".into(), markers: vec![], owner: Owner::Staff };
    let needles = secret.needles();
    assert!(needles.contains(&"o&#x27;brien &amp; zoë".to_string()), "{needles:?}");
    assert!(needles.contains(&"o%27brien%20%26%20zo%c3%ab".to_string()), "{needles:?}");
    assert_eq!(
        links_in("see http://h/c/0123456789abcdef0123456789abcdef0123 now"),
        ["/c/0123456789abcdef0123456789abcdef0123"]
    );
}

// ---------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------
// What a reader of an email sees, decoded by mail-parser (through the harness's `Mail`).

struct Decoded {
    to: String,
    subject: String,
    /// Unfolded headers with encoded words decoded.
    headers: String,
    /// Each leaf part: its content type and decoded text.
    parts: Vec<(String, String)>,
    raw: String,
}

impl Decoded {
    /// Everything a reader of this email could see, as separate texts.
    fn texts(&self) -> Vec<String> {
        let mut all = vec![self.headers.clone(), self.raw.clone()];
        all.extend(self.parts.iter().map(|(_, t)| t.clone()));
        all
    }

    fn addressed_to(&self, envelope: &[String], address: &str) -> bool {
        let a = address.to_lowercase();
        self.to.to_lowercase().contains(&a) || envelope.iter().any(|e| e.to_lowercase() == a)
    }
}

fn read(mail: &Mail) -> Decoded {
    let field = |name: &str| {
        mail.decoded_headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    };
    Decoded {
        to: field("to").unwrap_or_default(),
        subject: mail.subject.clone(),
        headers: mail.decoded_headers.iter().map(|(n, v)| format!("{n}: {v}\n")).collect(),
        parts: mail.parts.clone(),
        raw: mail.raw.clone(),
    }
}

fn decode_mail(raw: &str) -> Decoded {
    read(&Mail::parse(vec![], raw.as_bytes()).expect("a message"))
}

/// The private links in a text, as paths.
fn links_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("/c/") {
        let token: String = rest[i + 3..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        if token.len() >= 32 {
            found.push(format!("/c/{token}"));
        }
        rest = &rest[i + 3..];
    }
    found
}

/// A case reference such as PEN-2026-0007 in a page.
fn reference_in(text: &str) -> Option<String> {
    let i = text.find("PEN-")?;
    let r: String = text[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    Some(r)
}

// ---------------------------------------------------------------------------------------------
// Secrets and the forms in which each could show up.

#[derive(Clone, PartialEq)]
enum Owner {
    /// A staff member's identity: no party may see it.
    Staff,
    /// An internal note: no party may see it.
    Note,
    /// A party's identity: only that party may see it.
    Party(usize),
    /// Words written on one case: only that case's party may see them.
    Case(String),
}

struct Secret {
    what: String,
    value: String,
    /// Random substrings of the value, each enough on its own to identify it.
    markers: Vec<String>,
    owner: Owner,
}

impl Secret {
    /// The lower-cased forms to look for: the value as written, HTML-escaped as handlebars does,
    /// percent-encoded, and each marker (which survives any of these encodings).
    fn needles(&self) -> Vec<String> {
        let mut n: BTreeSet<String> = self.markers.iter().map(|m| m.to_lowercase()).collect();
        n.insert(self.value.to_lowercase());
        n.insert(html_escape(&self.value).to_lowercase());
        n.insert(percent_encode(&self.value).to_lowercase());
        n.into_iter().filter(|s| s.len() >= 6).collect()
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            '`' => out.push_str("&#x60;"),
            '=' => out.push_str("&#x3D;"),
            c => out.push(c),
        }
    }
    out
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn snippet(haystack: &str, at: usize) -> String {
    let boundary = |mut i: usize| {
        while !haystack.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let (start, end) = (boundary(at.saturating_sub(60)), boundary((at + 60).min(haystack.len())));
    haystack[start..end].replace('\n', "⏎")
}

// ---------------------------------------------------------------------------------------------
// One round: a server, its people, its cases.

struct Staff {
    name: String,
    email: String,
    token: String,
    web: WebClient,
}

struct Party {
    /// e.g. "poster of R3"
    label: String,
    name: String,
    email: Option<String>,
    reference: String,
    links: Vec<String>,
    /// Decoded emails addressed to this party.
    mails: Vec<Decoded>,
}

#[derive(Default)]
struct CaseFacts {
    /// Who acted on it, by staff index, for the positive checks.
    actors: BTreeSet<usize>,
    /// Notes accepted by the server.
    notes: Vec<String>,
    /// Notes written before the case was escalated, which the secretary's email should carry.
    notes_before_escalation: Vec<String>,
    escalation_words: Option<String>,
    complainant: Option<(String, String)>,
}

struct Round {
    app: TestApp,
    mails_seen: usize,
    rng: StdRng,
    round: u64,
    staff: Vec<Staff>,
    admin_token: String,
    secrets: Vec<Secret>,
    parties: Vec<Party>,
    cases: std::collections::BTreeMap<String, CaseFacts>,
    findings: Vec<String>,
    step: String,
    http: ureq::Agent,
    /// How much was looked at, printed at the end of the round.
    renderings: usize,
    party_mails: usize,
    encodings: BTreeSet<String>,
}

/// Indices into `Round::staff`.
const MOD_A: usize = 0;
const MOD_B: usize = 1;
const SEC: usize = 2;
const CHAIR: usize = 3;

impl Round {
    fn start(seed: u64, round: u64) -> Round {
        let app = TestApp::start();
        let cast = app.setup();
        let http = http_agent();
        let mut r = Round {
            app,
            mails_seen: 0,
            rng: StdRng::seed_from_u64(seed),
            round,
            staff: vec![],
            admin_token: cast.admin,
            secrets: vec![],
            parties: vec![],
            cases: Default::default(),
            findings: vec![],
            step: "setup".into(),
            http,
            renderings: 0,
            party_mails: 0,
            encodings: BTreeSet::new(),
        };
        // The fixed cast acts too (as recipients of staff email); its addresses and distinctive
        // names are secrets as well. The organisation's secretary address is not: it is the
        // published contact in every email's footer.
        for (what, value) in [
            ("fixed moderator's email", MODERATOR),
            ("fixed second moderator's email", MODERATOR2),
            ("fixed committee member's email", COMMITTEE),
            ("fixed admin's email", ADMIN),
            ("fixed moderator's name", "Mo Derator"),
            ("fixed second moderator's name", "Second Mod"),
            ("fixed secretary's name", "Sec Retary"),
        ] {
            r.secrets.push(Secret {
                what: what.into(),
                value: value.into(),
                markers: vec![],
                owner: Owner::Staff,
            });
        }
        for (label, role) in [
            ("moderator A", "moderator"),
            ("moderator B", "moderator"),
            ("secretary", "secretary"),
            ("committee member", "committee"),
        ] {
            r.add_staff(label, role);
        }
        r
    }

    fn marker(&mut self) -> String {
        format!("mk{}", Alphanumeric.sample_string(&mut self.rng, 12))
    }

    /// A random name with its markers, in one of several shapes (apostrophes, hyphens and
    /// non-ASCII letters exercise the escaping and header-encoding paths).
    fn name(&mut self) -> (String, Vec<String>) {
        let (a, b) = (self.marker(), self.marker());
        let name = match self.rng.random_range(0..4) {
            0 => format!("{a} {b}"),
            1 => format!("{a} O'{b}"),
            2 => format!("Dr {a}-{b}"),
            _ => format!("Zoë {a} Ñ{b}"),
        };
        (name, vec![a, b])
    }

    /// A random email address with its markers (lower case, as addresses are often folded).
    fn email(&mut self) -> (String, Vec<String>) {
        let (a, b) = (self.marker().to_lowercase(), self.marker().to_lowercase());
        let address = match self.rng.random_range(0..3) {
            0 => format!("{a}@{b}.example"),
            1 => format!("{a}.x@{b}.example"),
            _ => format!("{a}+tag@{b}.example"),
        };
        (address, vec![a, b])
    }

    /// Words with a marker, as someone would write them, with characters HTML must escape.
    fn words(&mut self, lead: &str) -> (String, String) {
        let m = self.marker();
        (format!("{lead} <{m}> & \"it's\" so."), m)
    }

    fn secret(&mut self, what: String, value: &str, markers: Vec<String>, owner: Owner) {
        self.secrets.push(Secret { what, value: value.into(), markers, owner });
    }

    fn add_staff(&mut self, label: &str, role: &str) {
        let (name, name_markers) = self.name();
        let (email, email_markers) = self.email();
        self.app.cli_ok(&["user", "add", "--org", ORG, "--email", &email, "--name", &name, "--role", role]);
        let token = self.app.cli_ok(&["token", "add", "--org", ORG, "--email", &email]).trim().to_string();
        let password = format!("Pw-{}", Alphanumeric.sample_string(&mut self.rng, 24));
        self.app.set_password(&email, &password);
        let web = WebClient::new(&self.app.base_url);
        web.sign_in(&email, &password);
        self.secret(format!("{label}'s name ({name})"), &name, name_markers, Owner::Staff);
        self.secret(format!("{label}'s email ({email})"), &email, email_markers, Owner::Staff);
        self.staff.push(Staff { name, email, token, web });
    }

    fn pick(&mut self, from: [usize; 2]) -> usize {
        from[self.rng.random_range(0..2)]
    }

    fn coin(&mut self) -> bool {
        self.rng.random_bool(0.5)
    }

    /// A broken workflow step: the rest of the round cannot run, so stop with what we have.
    fn fail(&self, msg: String) -> ! {
        panic!(
            "round {}: step {:?}: {msg}\nfindings so far:\n{}",
            self.round,
            self.step,
            self.findings.join("\n")
        );
    }

    fn new_party(&mut self, label: &str, with_email: bool) -> usize {
        let (name, name_markers) = self.name();
        let email = with_email.then(|| self.email());
        let idx = self.parties.len();
        self.secret(format!("{label}'s name ({name})"), &name, name_markers, Owner::Party(idx));
        if let Some((address, markers)) = &email {
            self.secret(format!("{label}'s email ({address})"), address, markers.clone(), Owner::Party(idx));
        }
        self.parties.push(Party {
            label: label.into(),
            name,
            email: email.map(|e| e.0),
            reference: String::new(),
            links: vec![],
            mails: vec![],
        });
        idx
    }

    // -----------------------------------------------------------------------------------------
    // Staff steps, each through the API or the staff pages at random.

    fn record_removal(&mut self, label: &str, by: usize, content: (&str, &str), with_email: bool) -> usize {
        self.step = format!("{label}: removal recorded");
        let poster = self.new_party(&format!("poster of {label}"), with_email);
        let (explanation, m) = self.words("Removed because");
        let (name, email) = (self.parties[poster].name.clone(), self.parties[poster].email.clone());
        let via_web = with_email && self.coin();
        let reference = if via_web {
            let mut fields = vec![
                ("action", "send"),
                ("platform", "Facebook"),
                ("content_url", content.0),
                ("content_text", content.1),
                ("author_name", name.as_str()),
                ("rule.3a", "on"),
                ("explanation", explanation.as_str()),
            ];
            if let Some(e) = &email {
                fields.push(("author_email", e.as_str()));
            }
            let page = self.staff[by].web.submit("/staff/removals/new", "/staff/removals", &fields);
            match (page.status, page.location) {
                (303, Some(l)) => {
                    // The case's page, with the banner that confirms the removal.
                    let path =
                        l.strip_suffix("?done=removal").unwrap_or_else(|| panic!("no confirmation in {l}"));
                    path.trim_start_matches("/staff/cases/").to_string()
                }
                (s, _) => self.fail(format!("recording through the form answered {s}: {}", page.body)),
            }
        } else {
            let mut body = json!({
                "platform": "Facebook",
                "content_url": content.0,
                "content_text": content.1,
                "author_name": name,
                "rule_codes": ["3a"],
                "explanation": explanation,
            });
            match &email {
                Some(e) => body["author_email"] = json!(e),
                None => body["notice_method"] = json!("Facebook direct message"),
            }
            let (status, case) =
                self.app.api("POST", "/api/v1/removals", Some(&self.staff[by].token), Some(&body));
            if status != 201 {
                self.fail(format!("POST /api/v1/removals answered {status}: {case}"));
            }
            if let Some(link) = case["private_link"].as_str() {
                self.parties[poster].links.push(path_of(link));
            }
            case["reference"].as_str().unwrap().to_string()
        };
        self.parties[poster].reference = reference.clone();
        self.secret(format!("explanation on {label}"), &explanation, vec![m], Owner::Case(reference.clone()));
        self.cases.entry(reference).or_default().actors.insert(by);
        self.check(&[poster]);
        poster
    }

    fn staff_step(&mut self, by: usize, party: usize, what: &str, api: (&str, Value), web: &[(&str, &str)]) {
        let reference = self.parties[party].reference.clone();
        let via_web = self.coin();
        let case_path = format!("/staff/cases/{reference}");
        if via_web {
            let page = self.staff[by].web.submit(&case_path, &format!("{case_path}/{what}"), web);
            if page.status != 303 {
                self.fail(format!(
                    "staff form {what} on {reference} answered {}: {}",
                    page.status, page.body
                ));
            }
        } else {
            let path = format!("/api/v1/cases/{reference}/{}", api.0);
            let (status, body) = self.app.api("POST", &path, Some(&self.staff[by].token), Some(&api.1));
            if !(200..300).contains(&status) {
                self.fail(format!("POST {path} answered {status}: {body}"));
            }
        }
        self.cases.entry(reference).or_default().actors.insert(by);
        self.check(&[party]);
    }

    fn respond(&mut self, by: usize, party: usize, outcome: &str) {
        self.step = format!("{}: response {outcome}", self.parties[party].label);
        let (reasons, m) = self.words("Our answer is that");
        let r = self.parties[party].reference.clone();
        self.secret(format!("moderators' reasons on {r}"), &reasons, vec![m], Owner::Case(r));
        self.staff_step(
            by,
            party,
            "response",
            ("response", json!({"outcome": outcome, "reasons": reasons})),
            &[("outcome", outcome), ("reasons", reasons.as_str())],
        );
    }

    fn decide(&mut self, by: usize, party: usize, outcome: &str) {
        self.step = format!("{}: decision {outcome}", self.parties[party].label);
        let (reasons, m) = self.words("The committee decided that");
        let r = self.parties[party].reference.clone();
        self.secret(format!("committee's reasons on {r}"), &reasons, vec![m], Owner::Case(r));
        self.staff_step(
            by,
            party,
            "decision",
            ("decision", json!({"outcome": outcome, "reasons": reasons})),
            &[("outcome", outcome), ("reasons", reasons.as_str())],
        );
    }

    fn request_info(&mut self, by: usize, party: usize) {
        self.step = format!("{}: information requested", self.parties[party].label);
        let (question, m) = self.words("Please tell us whether");
        let r = self.parties[party].reference.clone();
        self.secret(format!("moderators' question on {r}"), &question, vec![m], Owner::Case(r));
        self.staff_step(
            by,
            party,
            "request-info",
            ("request-info", json!({"question": question})),
            &[("question", question.as_str())],
        );
    }

    /// An internal note. A refusal is a finding, not a stop: the rest of the round still tests
    /// every other secret.
    fn note(&mut self, by: usize, party: usize) {
        let reference = self.parties[party].reference.clone();
        self.step = format!("{}: internal note", self.parties[party].label);
        let (text, m) = self.words("Internal note: the author");
        let note = format!("{text} {}", self.marker());
        self.secret(format!("internal note on {reference}"), &note, vec![m], Owner::Note);
        let via_web = self.coin();
        let ok = if via_web {
            let case_path = format!("/staff/cases/{reference}");
            let page = self.staff[by].web.submit(
                &case_path,
                &format!("{case_path}/notes"),
                &[("note", note.as_str())],
            );
            if page.status != 303 {
                self.findings.push(format!(
                    "[notes] POST {case_path}/notes (form) answered {}, not 303: {:.200}",
                    page.status, page.body
                ));
            }
            page.status == 303
        } else {
            let path = format!("/api/v1/cases/{reference}/notes");
            let (status, body) =
                self.app.api("POST", &path, Some(&self.staff[by].token), Some(&json!({"note": note})));
            if status != 201 {
                self.findings.push(format!("[notes] POST {path} answered {status}, not 201: {body}"));
            }
            status == 201
        };
        if ok {
            let facts = self.cases.entry(reference).or_default();
            facts.notes.push(note.clone());
            if facts.escalation_words.is_none() {
                facts.notes_before_escalation.push(note);
            }
            facts.actors.insert(by);
        }
        self.check(&[party]);
    }

    /// A new private link: the old ones stop working and the new one is emailed, or shown once
    /// to staff when there is no address.
    fn reissue(&mut self, by: usize, party: usize) {
        let reference = self.parties[party].reference.clone();
        self.step = format!("{}: link reissued", self.parties[party].label);
        let case_path = format!("/staff/cases/{reference}");
        let page = self.staff[by].web.submit(&case_path, &format!("{case_path}/link"), &[("confirm", "yes")]);
        // The old links now answer 404, and wrong links are throttled: stop using them.
        self.parties[party].links.clear();
        match page.status {
            303 => {}
            200 => {
                let links = links_in(&page.body);
                if links.is_empty() {
                    self.fail(format!("no link on the reissue page: {:.500}", page.body));
                }
                self.parties[party].links.extend(links);
            }
            s => self.fail(format!("reissuing the link answered {s}: {:.500}", page.body)),
        }
        self.cases.entry(reference).or_default().actors.insert(by);
        self.check(&[party]);
    }

    fn sweep(&mut self, days: i64, all: &[usize]) {
        self.step = format!("sweep at now + {days} days");
        let at = (chrono::Utc::now() + chrono::Duration::days(days)).to_rfc3339();
        self.app.cli_ok(&["sweep", "--now", &at]);
        self.check(all);
    }

    // -----------------------------------------------------------------------------------------
    // Party steps, through the private link, as a browser would.

    fn party_step(&mut self, party: usize, action: &str, field: &str) {
        let label = self.parties[party].label.clone();
        self.step = format!("{label}: {action}");
        let (words, m) = self.words(match action {
            "appeal" => "I appeal because",
            "escalate" => "My case for the committee is",
            "information" => "The information asked for is",
            _ => "I withdraw because",
        });
        let reference = self.parties[party].reference.clone();
        self.secret(
            format!("{label}'s {action} words"),
            &words,
            vec![m.clone()],
            Owner::Case(reference.clone()),
        );
        let Some(link) = self.parties[party].links.last().cloned() else {
            self.fail(format!("{label} has no private link"));
        };
        let (status, location, body) =
            self.app.post_form(&format!("{link}/{action}"), &[(field, words.as_str()), ("confirm", "yes")]);
        if status != 303 {
            self.fail(format!("{label}'s {action} answered {status} ({location:?}): {body:.300}"));
        }
        if action == "escalate" {
            self.cases.entry(reference).or_default().escalation_words = Some(words.clone());
        }
        let seen = self.parties[party].mails.len();
        self.check(&[party]);
        // The party's own words come back in the acknowledgement: proof that the scanner reads
        // each part of the emails it is given.
        if action != "information" {
            let echoed = self.parties[party].mails[seen..].iter().any(|d| {
                d.parts.len() >= 2
                    && d.parts.iter().all(|(_, t)| t.to_lowercase().contains(&m.to_lowercase()))
            });
            if !echoed {
                self.findings.push(format!(
                    "[scanner] {label}: no email after the {action} carried their words in every part"
                ));
            }
        }
    }

    fn report(&mut self, label: &str, content: (&str, &str)) -> usize {
        self.step = format!("{label}: complaint submitted");
        let reporter = self.new_party(&format!("reporter of {label}"), true);
        let (reason, m) = self.words("This breaks the rules because");
        let name = self.parties[reporter].name.clone();
        let email = self.parties[reporter].email.clone().unwrap();
        let path = format!("/o/{ORG}/report");
        let mut fields = vec![
            ("platform", "Facebook"),
            ("content_url", content.0),
            ("content_text", content.1),
            ("rule_code", "3a"),
            ("reason", ""),
            ("reporter_name", name.as_str()),
            ("reporter_email", email.as_str()),
        ];
        // A failed submission first: its re-render is a page for the reporter too.
        let (status, _, page) = self.app.post_form(&path, &fields);
        if status != 422 {
            self.fail(format!("a complaint without reasons answered {status}"));
        }
        self.scan(reporter, "complaint form re-rendered with an error", &[page]);
        fields[4] = ("reason", reason.as_str());
        let (status, _, page) = self.app.post_form(&path, &fields);
        if status != 201 {
            self.fail(format!("the complaint answered {status}: {page:.300}"));
        }
        let Some(reference) = reference_in(&page) else { self.fail(format!("no reference in {page:.500}")) };
        self.parties[reporter].reference = reference.clone();
        self.parties[reporter].links.extend(links_in(&page));
        self.scan(reporter, "complaint received page", &[page]);
        self.secret(format!("{label}'s reasons"), &reason, vec![m], Owner::Case(reference.clone()));
        self.cases.entry(reference).or_default().complainant = Some((name, email));
        self.check(&[reporter]);
        reporter
    }

    // -----------------------------------------------------------------------------------------
    // Collecting and scanning what parties see.

    /// Scans one rendering addressed to `party` for every secret it must not contain.
    fn scan(&mut self, party: usize, rendering: &str, texts: &[String]) {
        self.renderings += 1;
        let p = &self.parties[party];
        let lowered: Vec<String> = texts.iter().map(|t| t.to_lowercase()).collect();
        for secret in &self.secrets {
            let allowed = match &secret.owner {
                Owner::Staff | Owner::Note => false,
                Owner::Party(i) => *i == party,
                Owner::Case(r) => *r == p.reference,
            };
            if allowed {
                continue;
            }
            for needle in secret.needles() {
                if let Some((text, at)) = lowered.iter().find_map(|t| t.find(&needle).map(|at| (t, at))) {
                    self.findings.push(format!(
                        "[leak] after {:?}: {} ({}) saw {} — found {needle:?} in: …{}…",
                        self.step,
                        p.label,
                        rendering,
                        secret.what,
                        snippet(text, at)
                    ));
                    break;
                }
            }
        }
    }

    /// After a step: delivers the outbox, reads every new email to a party, and every public
    /// rendering of the parties whose cases this step touched.
    fn check(&mut self, touched: &[usize]) {
        self.app.wait_outbox_settled();
        let new: Vec<Mail> = self.app.smtp.all()[self.mails_seen..].to_vec();
        self.mails_seen += new.len();
        let mut dirty: BTreeSet<usize> = touched.iter().copied().collect();
        for mail in new {
            let decoded = read(&mail);
            let recipients: Vec<usize> = (0..self.parties.len())
                .filter(|&i| {
                    self.parties[i]
                        .email
                        .as_deref()
                        .is_some_and(|e| decoded.addressed_to(&mail.envelope_to, e))
                })
                .collect();
            for &i in &recipients {
                let rendering = format!("email {:?}", decoded.subject);
                self.scan(i, &rendering, &decoded.texts());
                let reference = self.parties[i].reference.clone();
                for (content_type, text) in &decoded.parts {
                    if !text.contains(&reference) {
                        self.findings.push(format!(
                            "[scanner] {rendering} to {}: its {content_type} part does not name {reference}",
                            self.parties[i].label
                        ));
                    }
                }
                for (_, text) in &decoded.parts {
                    let links = links_in(text);
                    self.parties[i].links.extend(links);
                }
                dirty.insert(i);
            }
            if !recipients.is_empty() && mail.envelope_to.len() > 1 {
                self.findings.push(format!(
                    "[leak] after {:?}: email {:?} to a party also went to {:?}",
                    self.step, decoded.subject, mail.envelope_to
                ));
            }
            for &i in &recipients {
                self.parties[i].mails.push(read(&mail));
                self.party_mails += 1;
                for line in mail.raw.lines() {
                    if let Some(e) = line.strip_prefix("Content-Transfer-Encoding:") {
                        self.encodings.insert(e.trim().to_string());
                    }
                }
            }
        }
        for party in dirty {
            self.check_pages(party);
        }
    }

    /// Every public page a party can reach: each of their links, the JSON a client asking for
    /// it would get, and the error re-render of each form (bad input, nothing changes).
    fn check_pages(&mut self, party: usize) {
        let links: Vec<String> =
            self.parties[party].links.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
        let Some(latest) = self.parties[party].links.last().cloned() else { return };
        for link in &links {
            let (status, page) = self.app.get_page(link);
            self.scan(party, &format!("GET {link} ({status})"), &[page]);
        }
        let mut response =
            self.http.get(self.app.url(&latest)).header("Accept", "application/json").call().unwrap();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        self.scan(party, "GET case page as JSON", &[body]);
        let long = "x ".repeat(6_000);
        for (action, field, value) in [
            ("appeal", "appeal", ""),
            ("escalate", "case_for_committee", ""),
            ("information", "information", " "),
            ("withdraw", "reason", long.as_str()),
        ] {
            let (status, _, page) = self.app.post_form(&format!("{latest}/{action}"), &[(field, value)]);
            if !(400..500).contains(&status) {
                self.fail(format!("bad input to {action} answered {status}: {page:.300}"));
            }
            self.scan(party, &format!("POST {action} with bad input ({status})"), &[page]);
        }
    }

    // -----------------------------------------------------------------------------------------
    // The positive side: markers reached the system, where staff see them.

    fn check_staff_renderings(&mut self) {
        self.step = "staff renderings".into();
        let references: Vec<String> = self.cases.keys().cloned().collect();
        for reference in references {
            let page = self.staff[SEC].web.get(&format!("/staff/cases/{reference}")).body.to_lowercase();
            let (_, json) =
                self.app.api("GET", &format!("/api/v1/cases/{reference}"), Some(&self.admin_token), None);
            let json = json.to_string().to_lowercase();
            let facts = &self.cases[&reference];
            // What to look for on the page and in the JSON: the page's timeline names who acted,
            // the JSON gives their email.
            let mut expected: Vec<(String, Option<String>, Option<String>)> = Vec::new();
            for note in &facts.notes {
                let m = note.split_whitespace().last().unwrap().to_string();
                expected.push((format!("note {note:?}"), Some(m.clone()), Some(m)));
            }
            for &s in &facts.actors {
                let Staff { name, email, .. } = &self.staff[s];
                expected.push((format!("the name of {name}"), Some(html_escape(name)), None));
                expected.push((format!("the email of {name}"), None, Some(email.clone())));
            }
            if let Some((name, email)) = &facts.complainant {
                expected.push((
                    format!("complainant's name {name}"),
                    Some(html_escape(name)),
                    Some(name.clone()),
                ));
                expected.push((
                    format!("complainant's email {email}"),
                    Some(email.clone()),
                    Some(email.clone()),
                ));
            }
            for (what, on_page, in_json) in expected {
                if on_page.is_some_and(|n| !page.contains(&n.to_lowercase())) {
                    self.findings.push(format!("[missing] staff page of {reference} lacks {what}"));
                }
                if in_json.is_some_and(|n| !json.contains(&n.to_lowercase())) {
                    self.findings.push(format!("[missing] staff JSON of {reference} lacks {what}"));
                }
            }
        }
        self.check_staff_emails();
    }

    /// Real staff renderings, scanned as if a party had received them, must set off the scanner:
    /// proof that a leak through any of these channels would be caught.
    fn negative_controls(&mut self, poster: usize, complaint: usize, escalated: usize) {
        self.step = "negative controls".into();
        let c_ref = self.parties[complaint].reference.clone();
        let e_ref = self.parties[escalated].reference.clone();
        let staff_page = self.staff[MOD_A].web.get(&format!("/staff/cases/{c_ref}")).body;
        let (_, json) = self.app.api("GET", &format!("/api/v1/cases/{c_ref}"), Some(&self.admin_token), None);
        let mails: Vec<(Vec<String>, Decoded)> =
            self.app.smtp.all().iter().map(|m| (m.envelope_to.clone(), read(m))).collect();
        let find = |to: &str, subject: &str, reference: &str| {
            mails
                .iter()
                .find(|(e, d)| {
                    d.addressed_to(e, to) && d.subject.contains(subject) && d.subject.contains(reference)
                })
                .map(|(_, d)| d.texts())
        };
        let controls = [
            (
                format!("staff page of {c_ref}"),
                Some(vec![staff_page]),
                vec!["complainant", "note", "moderator"],
            ),
            (format!("staff JSON of {c_ref}"), Some(vec![json.to_string()]), vec!["complainant", "note"]),
            (
                format!("new-complaint email for {c_ref}"),
                find(MODERATOR, &c_ref, &c_ref),
                vec!["complainant"],
            ),
            (format!("escalation email for {e_ref}"), find(SECRETARY, "Escalated", &e_ref), vec!["note"]),
        ];
        let kept = std::mem::take(&mut self.findings);
        for (rendering, texts, wanted) in controls {
            let Some(texts) = texts else {
                self.findings.push(format!("[scanner] control: no {rendering} to scan"));
                continue;
            };
            let before = self.findings.len();
            self.scan(poster, &rendering, &texts);
            let caught: Vec<String> = self.findings.drain(before..).collect();
            for w in wanted {
                let hit = caught.iter().any(|f| match w {
                    "complainant" => {
                        f.contains("reporter of C1's name") || f.contains("reporter of C1's email")
                    }
                    "note" => f.contains("internal note"),
                    _ => {
                        f.contains("moderator A's")
                            || f.contains("moderator B's")
                            || f.contains("secretary's")
                    }
                });
                if !hit {
                    self.findings
                        .push(format!("[scanner] control: {rendering} shown to a poster raised no {w} leak"));
                }
            }
        }
        let controls_failed = std::mem::replace(&mut self.findings, kept);
        self.findings.extend(controls_failed);
    }

    fn check_staff_emails(&mut self) {
        let all: Vec<(Vec<String>, Decoded)> =
            self.app.smtp.all().iter().map(|m| (m.envelope_to.clone(), read(m))).collect();
        let references: Vec<String> = self.cases.keys().cloned().collect();
        for reference in references {
            let facts = &self.cases[&reference];
            if let Some(words) = &facts.escalation_words {
                let escalation = all.iter().find(|(to, d)| {
                    d.addressed_to(to, SECRETARY)
                        && d.subject.contains("Escalated")
                        && d.subject.contains(&reference)
                });
                let Some((_, mail)) = escalation else {
                    self.findings
                        .push(format!("[missing] no escalation email to the secretary for {reference}"));
                    continue;
                };
                let text = mail.texts().join("\n").to_lowercase();
                let mut wanted = vec![("the written case".to_string(), words.clone())];
                wanted
                    .extend(facts.notes_before_escalation.iter().map(|n| (format!("note {n:?}"), n.clone())));
                for (what, value) in wanted {
                    let m = value.split(['<', '>']).nth(1).unwrap_or(&value).to_lowercase();
                    if !text.contains(&m) {
                        self.findings.push(format!(
                            "[missing] the secretary's escalation email for {reference} lacks {what}"
                        ));
                    }
                }
            }
            if let Some((name, email)) = &facts.complainant {
                let new_complaint = all
                    .iter()
                    .find(|(to, d)| d.addressed_to(to, MODERATOR) && d.subject.contains(&reference));
                match new_complaint {
                    Some((_, mail)) => {
                        let text = mail.texts().join("\n").to_lowercase();
                        for value in [name, email] {
                            if !text.contains(&value.to_lowercase())
                                && !text.contains(&html_escape(value).to_lowercase())
                            {
                                self.findings.push(format!(
                                    "[missing] the moderators' new-complaint email for {reference} lacks {value}"
                                ));
                            }
                        }
                    }
                    None => self
                        .findings
                        .push(format!("[missing] no new-complaint email to moderators for {reference}")),
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // The scenario: every path that renders something for a poster or a reporter.

    fn run(&mut self) {
        let post = |n: u32| {
            (
                format!("https://facebook.com/penrithclp/posts/{n}"),
                format!("Post number {n} says rude things."),
            )
        };
        let base: u32 = self.rng.random_range(1000..9000);
        let c = |i: u32| post(base + i);
        let (mods, deciders) = ([MOD_A, MOD_B], [CHAIR, SEC]);

        // R1: appeal, a question and its answer, notes, accepted.
        let (u, t) = c(1);
        let r1 = self.record_removal("R1", MOD_A, (&u, &t), true);
        self.party_step(r1, "appeal", "appeal");
        self.note(MOD_A, r1);
        self.request_info(MOD_B, r1);
        self.party_step(r1, "information", "information");
        self.reissue(SEC, r1);
        self.note(SEC, r1);
        self.respond(MOD_B, r1, "reinstate");
        let m = self.pick(mods);
        self.note(m, r1);

        // R2: rejected, escalated, decided; notes at each stage.
        let (u, t) = c(2);
        let r2 = self.record_removal("R2", MOD_B, (&u, &t), true);
        self.party_step(r2, "appeal", "appeal");
        self.note(MOD_B, r2);
        self.respond(MOD_A, r2, "uphold");
        self.note(MOD_A, r2);
        self.party_step(r2, "escalate", "case_for_committee");
        self.note(SEC, r2);
        let d = self.pick(deciders);
        let outcome = if self.coin() { "uphold" } else { "reinstate" };
        self.decide(d, r2, outcome);
        self.note(SEC, r2);

        // R3: the response is late; the poster escalates; the committee is late too.
        let (u, t) = c(3);
        let r3 = self.record_removal("R3", MOD_A, (&u, &t), true);
        self.party_step(r3, "appeal", "appeal");
        self.note(MOD_B, r3);

        // R4: withdrawn before any appeal.
        let (u, t) = c(4);
        let m = self.pick(mods);
        let r4 = self.record_removal("R4", m, (&u, &t), true);
        self.note(MOD_A, r4);
        self.party_step(r4, "withdraw", "reason");

        // R5: no address: the link is handed over; no appeal comes, so the case closes.
        let (u, t) = c(5);
        let r5 = self.record_removal("R5", MOD_B, (&u, &t), false);
        self.note(MOD_B, r5);
        self.reissue(MOD_B, r5);

        // R7: a question nobody answers; later overdue, escalated, then withdrawn.
        let (u, t) = c(7);
        let r7 = self.record_removal("R7", MOD_A, (&u, &t), true);
        self.party_step(r7, "appeal", "appeal");
        self.request_info(MOD_B, r7);
        self.note(MOD_B, r7);

        // R8: rejected and never escalated: closes when the window passes.
        let (u, t) = c(8);
        let r8 = self.record_removal("R8", MOD_B, (&u, &t), true);
        self.party_step(r8, "appeal", "appeal");
        self.respond(MOD_A, r8, "uphold");
        self.note(MOD_A, r8);

        // C1: a complaint, a question, the content removed, and then a removal case for the
        // same content whose poster must never learn who complained.
        let (u, t) = c(10);
        let c1 = self.report("C1", (&u, &t));
        self.note(MOD_A, c1);
        self.request_info(MOD_A, c1);
        self.party_step(c1, "information", "information");
        self.respond(MOD_B, c1, "remove");
        self.note(SEC, c1);
        let m = self.pick(mods);
        let r6 = self.record_removal("R6 (content of C1)", m, (&u, &t), true);
        self.note(MOD_A, r6);
        self.party_step(r6, "appeal", "appeal");
        self.respond(MOD_B, r6, "uphold");
        self.party_step(r6, "escalate", "case_for_committee");
        self.party_step(c1, "escalate", "case_for_committee");
        self.note(MOD_B, c1);
        self.decide(CHAIR, c1, "remove");
        let d = self.pick(deciders);
        self.decide(d, r6, "uphold");

        // C2: late; the reporter escalates; then withdraws.
        let (u, t) = c(11);
        let c2 = self.report("C2", (&u, &t));
        self.note(MOD_B, c2);
        self.reissue(MOD_A, c2);

        // C3: no action; never escalated, so it closes.
        let (u, t) = c(12);
        let c3 = self.report("C3", (&u, &t));
        let m = self.pick(mods);
        self.respond(m, c3, "no_action");
        self.note(SEC, c3);

        // C4: withdrawn at once.
        let (u, t) = c(13);
        let c4 = self.report("C4", (&u, &t));
        self.note(MOD_A, c4);
        self.party_step(c4, "withdraw", "reason");

        let everyone: Vec<usize> = (0..self.parties.len()).collect();
        // Response deadlines pass: R3 and C2 are overdue; R7's question expires unanswered.
        self.sweep(20, &everyone);
        self.party_step(r3, "escalate", "case_for_committee");
        self.note(SEC, r3);
        self.party_step(c2, "escalate", "case_for_committee");
        self.note(SEC, c2);
        // Everything else runs out: R5 (no appeal), R8 and C3 (no escalation), the committee's
        // target for R3 and C2, and R7's restarted response clock.
        self.sweep(70, &everyone);
        let d = self.pick(deciders);
        self.decide(d, r3, "reinstate");
        self.party_step(c2, "withdraw", "reason");
        self.party_step(r7, "escalate", "case_for_committee");
        self.note(SEC, r7);
        self.party_step(r7, "withdraw", "reason");
        // Notes on closed cases are allowed; their pages must stay clean too.
        self.note(SEC, r5);
        self.note(MOD_A, c3);
        self.note(CHAIR, r8);

        self.check_staff_renderings();
        self.negative_controls(r6, c1, r2);
    }
}
