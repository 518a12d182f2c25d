//! Fuzzing the request parsers: every POST route gets a few hundred generated bodies (random
//! bytes, truncated and garbled valid bodies, wrong JSON types, huge numbers, deep nesting,
//! control characters, invalid UTF-8 and percent-encoding, overlong fields, duplicated fields,
//! wrong content types, empty bodies), sent with valid credentials and a valid CSRF token so that
//! they reach the parser and the checks behind it. Every answer must be below 500, no server
//! thread may panic, the server must still answer afterwards, and a refused body must leave the
//! database exactly as it was.
//!
//! The bodies come from a seeded RNG; the seed is printed, and REDRESS_FUZZ_SEED repeats a run.

use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use crate::common::web::{selector, Page, WebClient};
use crate::common::*;
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";
/// The server's body limit (256 KiB); bodies above it may be cut off by the server.
const BODY_LIMIT: usize = 256 * 1024;

// ---------------------------------------------------------------------------------------------
// Panics in server threads: the server runs inside this process, so a panicking handler shows
// up here even when actix turns it into a dropped connection rather than a 500.

static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static HOOK: Once = Once::new();

fn watch_panics() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current().name().unwrap_or("unnamed").to_string();
            // The test threads' own failed assertions are reported by the test harness.
            if !thread.starts_with("fuzz_") {
                PANICS.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{thread}: {info}"));
            }
            previous(info);
        }));
    });
}

fn panics_so_far() -> Vec<String> {
    PANICS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn seed() -> u64 {
    static SAID: Once = Once::new();
    let seed = std::env::var("REDRESS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| rand::rng().random::<u64>());
    // Each run of the test binary prints the seed of the first test to ask; every test then
    // derives its own stream from the seed it printed.
    SAID.call_once(|| eprintln!("fuzz seed {seed} (REDRESS_FUZZ_SEED={seed} repeats this run)"));
    seed
}

/// A stream of its own for each test, so one test's failure repeats without the others.
fn rng_for(seed: u64, test: &str) -> StdRng {
    let mix =
        test.bytes().fold(seed, |h, b| h.rotate_left(5) ^ u64::from(b).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    StdRng::seed_from_u64(mix)
}

// ---------------------------------------------------------------------------------------------
// What "nothing was half-written" compares: every table a refused request could touch.

#[derive(Debug, PartialEq)]
struct Snapshot {
    orgs: Vec<(String, String, String, String, String, i32, i32)>,
    users: Vec<(String, String)>,
    memberships: i64,
    api_tokens: Vec<(String, bool)>,
    rules: Vec<(String, String, String, String)>,
    closed_days: i64,
    cases: Vec<(String, String, bool)>,
    case_tokens: i64,
    events: i64,
    emails: i64,
}

struct Db(redress::db::DbPool);

impl Db {
    fn open(app: &TestApp) -> Db {
        Db(redress::db::connect(&app.database_url, 1).unwrap())
    }

    fn snapshot(&self) -> Snapshot {
        use redress::db::schema::*;
        let mut conn = self.0.get().unwrap();
        let c = &mut *conn;
        Snapshot {
            orgs: organisations::table
                .select((
                    organisations::slug,
                    organisations::name,
                    organisations::secretary_email,
                    organisations::timezone,
                    organisations::nation,
                    organisations::response_days,
                    organisations::info_answer_days,
                ))
                .order(organisations::slug)
                .load(c)
                .unwrap(),
            users: users::table.select((users::email, users::name)).order(users::email).load(c).unwrap(),
            memberships: memberships::table.count().get_result(c).unwrap(),
            api_tokens: api_tokens::table
                .select((api_tokens::id, api_tokens::revoked_at))
                .order(api_tokens::id)
                .load::<(String, Option<chrono::NaiveDateTime>)>(c)
                .unwrap()
                .into_iter()
                .map(|(id, revoked)| (id, revoked.is_some()))
                .collect(),
            rules: policy_rules::table
                .select((
                    policy_rules::organisation_id,
                    policy_rules::code,
                    policy_rules::title,
                    policy_rules::summary,
                ))
                .order((policy_rules::organisation_id, policy_rules::code))
                .load(c)
                .unwrap(),
            closed_days: closed_days::table.count().get_result(c).unwrap(),
            cases: cases::table
                .select((cases::reference, cases::state, cases::overdue))
                .order(cases::reference)
                .load(c)
                .unwrap(),
            // Links minted by requests: the outbox worker mints the emails' as it sends them.
            case_tokens: case_tokens::table
                .filter(case_tokens::outbox_id.is_null())
                .count()
                .get_result(c)
                .unwrap(),
            events: case_events::table.count().get_result(c).unwrap(),
            emails: outbox::table.count().get_result(c).unwrap(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Routes and how to reach their parsers.

#[derive(Clone)]
enum Auth {
    None,
    Bearer(String),
    /// A Cookie header and the CSRF token that goes with it (a staff session, or the
    /// double-submit cookie of the forms used before signing in).
    Cookie {
        header: String,
        csrf: String,
    },
}

#[derive(Clone)]
enum Template {
    Form(Vec<(String, String)>),
    Json(Value),
}

#[derive(Clone)]
struct Route {
    path: String,
    auth: Auth,
    template: Template,
    /// How many bodies to send.
    count: usize,
}

fn form(pairs: &[(&str, &str)]) -> Template {
    Template::Form(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn route(path: &str, auth: &Auth, template: Template, count: usize) -> Route {
    Route { path: path.to_string(), auth: auth.clone(), template, count }
}

// ---------------------------------------------------------------------------------------------
// Body generation.

/// Strings that have broken parsers and validators before.
const NASTY: &[&str] = &[
    "",
    " ",
    "\0",
    "a\0b",
    "\u{1b}[31mred",
    "\r\n",
    "\r\nBcc: evil@example.org",
    "\t",
    "line\nbreak",
    "\u{202e}reversed",
    "\u{200b}",
    "\u{feff}",
    "\u{ffff}",
    "e\u{301}\u{301}\u{301}",
    "💥🏳️‍🌈",
    "%",
    "%%",
    "%zz",
    "99999999999999999999999999999",
    "-99999999999999999999999999999",
    "18446744073709551616",
    "2147483648",
    "-2147483649",
    "-1",
    "0",
    "1e309",
    "NaN",
    "inf",
    "null",
    "true",
    "[]",
    "{}",
    "<script>x</script>",
    "../../../etc/passwd",
    "'; DROP TABLE cases; --",
    "\" OR 1=1 --",
    "javascript:alert(1)",
    "https://",
    "http:///x",
    "a@b",
    "@",
    "x@y.z\r\nBcc: q@r.s",
    "9999-99-99",
    "2026-02-30",
    "0000-01-01",
    "Europe/Nowhere",
    "../Europe/London",
    "reinstate ",
    "REINSTATE",
    "admin\0",
];

/// One random string: a nasty one, random ASCII, random Unicode, or something long.
fn nasty(rng: &mut StdRng) -> String {
    match rng.random_range(0..10) {
        0..=4 => NASTY[rng.random_range(0..NASTY.len())].to_string(),
        5 => (0..rng.random_range(0..60)).map(|_| rng.random_range(0x20u8..0x7f) as char).collect(),
        6 => (0..rng.random_range(0..40)).map(|_| rng.random::<char>()).collect(),
        7 => (0..rng.random_range(0..20)).map(|_| rng.random_range(0u8..0x20) as char).collect(),
        8 => "x".repeat([201, 2049, 20_001, 30_000][rng.random_range(0..4)]),
        _ => rng.random_range(i64::MIN..i64::MAX).to_string(),
    }
}

fn random_bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let n = rng.random_range(0..max);
    if rng.random_bool(0.5) {
        (0..n).map(|_| rng.random::<u8>()).collect()
    } else {
        // Mostly the bytes that mean something to a form or JSON parser.
        const SPECIAL: &[u8] = b"&=%+{}[]\":,\\0123456789abcdefABCDEF \n\r\t";
        (0..n).map(|_| SPECIAL[rng.random_range(0..SPECIAL.len())]).collect()
    }
}

fn percent_encode(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_form(pairs: &[(String, String)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k.as_bytes()), percent_encode(v.as_bytes())))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

fn truncate(rng: &mut StdRng, mut body: Vec<u8>) -> Vec<u8> {
    let at = rng.random_range(0..=body.len());
    body.truncate(at);
    body
}

/// Flips, inserts, deletes and duplicates bytes.
fn garble(rng: &mut StdRng, mut body: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.random_range(1..8) {
        let at = rng.random_range(0..=body.len());
        match rng.random_range(0..4) {
            0 if at < body.len() => body[at] ^= 1 << rng.random_range(0..8),
            1 => body.insert(at, rng.random()),
            2 if at < body.len() => {
                body.remove(at);
            }
            _ => {
                let end = (at + rng.random_range(0..16)).min(body.len());
                let piece = body[at..end].to_vec();
                body.splice(at..at, piece);
            }
        }
    }
    body
}

/// Bad percent-encoding and raw bytes that are not UTF-8, dropped into a form body.
fn bad_encoding(rng: &mut StdRng, body: Vec<u8>) -> Vec<u8> {
    const BAD: &[&[u8]] = &[
        b"%",
        b"%4",
        b"%zz",
        b"%%",
        b"%C3",
        b"%FF%FE",
        b"%C0%AF",
        b"%ED%A0%80",
        b"%F4%90%80%80",
        b"%00",
        b"\xff\xfe",
        b"\xc3(",
        b"\xed\xa0\x80",
        b"\x00",
        b"+%2",
    ];
    let mut body = body;
    for _ in 0..rng.random_range(1..4) {
        let at = rng.random_range(0..=body.len());
        let bad = BAD[rng.random_range(0..BAD.len())];
        body.splice(at..at, bad.iter().copied());
    }
    body
}

const FORM_TYPE: &str = "application/x-www-form-urlencoded";
const JSON_TYPE: &str = "application/json";

/// Content types other than the route's own, and odd spellings of it.
fn wrong_type(rng: &mut StdRng, own: &str) -> Option<String> {
    let options = [
        None,
        Some("text/plain".to_string()),
        Some("multipart/form-data; boundary=xyz".to_string()),
        Some("application/octet-stream".to_string()),
        Some(if own == JSON_TYPE { FORM_TYPE.to_string() } else { JSON_TYPE.to_string() }),
        Some(format!("{own}; charset=utf-16")),
        Some(format!("{own}; charset=latin1")),
        Some(format!("{own};;;")),
        Some(own.to_ascii_uppercase()),
        Some("application/json-seq".to_string()),
        Some("application/vnd.api+json".to_string()),
        Some("x".to_string()),
        Some(";".to_string()),
    ];
    options[rng.random_range(0..options.len())].clone()
}

/// One generated body for a form route: the content type to send (if any), the bytes, and what
/// kind of body it is.
fn form_body(rng: &mut StdRng, pairs: &[(String, String)]) -> (Option<String>, Vec<u8>, &'static str) {
    let ct = Some(FORM_TYPE.to_string());
    let valid = encode_form(pairs);
    // The CSRF field stays intact in most structured bodies so that they get past the check.
    let tampered = || -> Vec<(String, String)> { pairs.to_vec() };
    match rng.random_range(0..16) {
        0 => (ct, vec![], "empty"),
        1 => (ct, random_bytes(rng, 2000), "random bytes"),
        2 => (ct, valid, "valid"),
        3 => (ct, truncate(rng, valid), "truncated"),
        4 => (ct, garble(rng, valid), "garbled"),
        5 => {
            let mut p = tampered();
            let i = rng.random_range(0..p.len());
            if p[i].0 != "csrf" || rng.random_bool(0.2) {
                p[i].1 = nasty(rng);
            }
            (ct, encode_form(&p), "one field nasty")
        }
        6 => {
            let mut p = tampered();
            for (k, v) in p.iter_mut() {
                if k != "csrf" {
                    *v = nasty(rng);
                }
            }
            (ct, encode_form(&p), "every field nasty")
        }
        7 => {
            let mut p = tampered();
            let mut extra = vec![];
            for (k, _) in &p {
                if rng.random_bool(0.6) {
                    extra.push((k.clone(), nasty(rng)));
                }
            }
            p.extend(extra);
            if rng.random_bool(0.5) {
                p.reverse();
            }
            (ct, encode_form(&p), "duplicated fields")
        }
        8 => (ct, bad_encoding(rng, valid), "bad percent-encoding"),
        9 => {
            // Raw bytes that are not UTF-8, unencoded, in a value.
            let mut body = valid;
            body.extend_from_slice(b"&reasons=\xff\xfe\xfd&explanation=caf\xe9");
            (ct, body, "invalid UTF-8")
        }
        10 => {
            let mut p = tampered();
            let i = rng.random_range(0..p.len());
            let n = if rng.random_bool(0.7) { rng.random_range(20_001..120_000) } else { BODY_LIMIT + 10 };
            p[i].1 = "é".repeat(n / 2);
            (ct, encode_form(&p), "overlong value")
        }
        11 => {
            let mut body = valid;
            for i in 0..rng.random_range(100..5000) {
                body.extend_from_slice(format!("&k{i}=v").as_bytes());
            }
            (ct, body, "thousands of fields")
        }
        12 => (wrong_type(rng, FORM_TYPE), valid, "wrong content type"),
        13 => {
            let obj: serde_json::Map<String, Value> =
                pairs.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            (ct, serde_json::to_vec(&obj).unwrap(), "JSON sent as a form")
        }
        14 => {
            const KEYS: &[&str] =
                &["", "=", "==", "&", "rule.", "rule.%00", "rule.<x>", "a[]", "a[b][c]", "csrf"];
            let mut body = valid;
            for _ in 0..rng.random_range(1..6) {
                body.push(b'&');
                body.extend_from_slice(KEYS[rng.random_range(0..KEYS.len())].as_bytes());
                if rng.random_bool(0.5) {
                    body.extend_from_slice(b"=");
                    body.extend_from_slice(percent_encode(nasty(rng).as_bytes()).as_bytes());
                }
            }
            (ct, body, "odd keys")
        }
        _ => {
            // Valid encoding of values no form would send: control characters and NUL.
            let mut p = tampered();
            for (k, v) in p.iter_mut() {
                if k != "csrf" {
                    v.push_str(
                        ["\0", "\u{7}", "\u{1b}", "\u{7f}", "\u{85}", "\u{2028}"][rng.random_range(0..6)],
                    );
                }
            }
            (ct, encode_form(&p), "control characters")
        }
    }
}

/// A JSON value of a random type, or a deeply nested one.
fn random_json(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..10) {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>() * 1e300),
        4 => json!(u64::MAX),
        5 => Value::String(nasty(rng)),
        6 if depth < 4 => {
            Value::Array((0..rng.random_range(0..4)).map(|_| random_json(rng, depth + 1)).collect())
        }
        7 if depth < 4 => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.random_range(0..4) {
                m.insert(nasty(rng), random_json(rng, depth + 1));
            }
            Value::Object(m)
        }
        _ => json!([]),
    }
}

/// Raw JSON text for things serde_json's writer never produces.
fn raw_json_oddity(rng: &mut StdRng, valid: &[u8]) -> Vec<u8> {
    let depth = rng.random_range(100..20_000);
    let oddities: Vec<Vec<u8>> = vec![
        format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes(),
        format!("{{\"reasons\":{}1{}}}", "{\"a\":".repeat(depth), "}".repeat(depth)).into_bytes(),
        "[".repeat(depth).into_bytes(),
        b"{\"outcome\": 1e999999, \"reasons\": -1e999999}".to_vec(),
        b"{\"outcome\": 123456789012345678901234567890123456789012345678901234567890}".to_vec(),
        b"{\"outcome\": -0, \"reasons\": 0.0000000000000000000000000000000000001e-400}".to_vec(),
        b"{\"outcome\":\"uphold\",\"outcome\":\"reinstate\",\"reasons\":\"x\",\"reasons\":\"y\"}".to_vec(),
        b"{\"platform\":\"a\",\"platform\":\"b\"}".to_vec(),
        b"{\"question\":\"\\u0000\\u001b\\ud800\\udfff\\ud800\"}".to_vec(),
        b"{\"reasons\":\"\\ud800\"}".to_vec(),
        b"{\"reasons\":\"\xff\xfe\xed\xa0\x80\"}".to_vec(),
        b"{\"reasons\":\"raw\x01control\x1fchars\"}".to_vec(),
        b"\xef\xbb\xbf{\"reasons\":\"bom\"}".to_vec(),
        [valid, b" trailing garbage"].concat(),
        [valid, b"{}"].concat(),
        [b"/* comment */".as_slice(), valid].concat(),
        b"{\"reasons\":\"x\",}".to_vec(),
        b"{'reasons':'single quotes'}".to_vec(),
        b"{reasons: bare}".to_vec(),
        b"NaN".to_vec(),
        b"\"just a string\"".to_vec(),
        b"null".to_vec(),
        b"12345".to_vec(),
        b"[{\"outcome\":\"uphold\"}]".to_vec(),
        b"{\"rule_codes\":[[[[[[[[[[\"3a\"]]]]]]]]]]}".to_vec(),
        b"{\"rule_codes\":{\"0\":\"3a\"}}".to_vec(),
        b"{\"\":\"\",\"\\u0000\":1}".to_vec(),
    ];
    oddities[rng.random_range(0..oddities.len())].clone()
}

fn json_body(rng: &mut StdRng, template: &Value) -> (Option<String>, Vec<u8>, &'static str) {
    let ct = Some(JSON_TYPE.to_string());
    let valid = serde_json::to_vec(template).unwrap();
    let fields: Vec<String> = template.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let with = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut v = template.clone();
        if let Value::Object(o) = &mut v {
            f(o);
        }
        serde_json::to_vec(&v).unwrap()
    };
    match rng.random_range(0..14) {
        0 => (ct, vec![], "empty"),
        1 => (ct, random_bytes(rng, 2000), "random bytes"),
        2 => (ct, valid, "valid"),
        3 => (ct, truncate(rng, valid), "truncated"),
        4 => (ct, garble(rng, valid), "garbled"),
        5 => {
            let field = fields[rng.random_range(0..fields.len())].clone();
            let value = random_json(rng, 0);
            (
                ct,
                with(&|o| {
                    o.insert(field.clone(), value.clone());
                }),
                "one field of another type",
            )
        }
        6 => {
            let values: Vec<Value> = fields.iter().map(|_| random_json(rng, 0)).collect();
            let body = with(&|o| {
                for (f, v) in fields.iter().zip(&values) {
                    o.insert(f.clone(), v.clone());
                }
            });
            (ct, body, "every field of another type")
        }
        7 => (ct, raw_json_oddity(rng, &valid), "raw JSON oddity"),
        8 => {
            let field = fields[rng.random_range(0..fields.len())].clone();
            let n = if rng.random_bool(0.7) { rng.random_range(20_001..120_000) } else { BODY_LIMIT + 10 };
            let long = Value::String("ü".repeat(n / 2));
            (
                ct,
                with(&|o| {
                    o.insert(field.clone(), long.clone());
                }),
                "overlong string",
            )
        }
        9 => {
            let field = fields[rng.random_range(0..fields.len())].clone();
            let value = Value::String(nasty(rng));
            (
                ct,
                with(&|o| {
                    o.insert(field.clone(), value.clone());
                }),
                "nasty string",
            )
        }
        10 => {
            let extra: Vec<(String, Value)> =
                (0..rng.random_range(1..2000)).map(|i| (format!("unknown{i}"), json!(i))).collect();
            (ct, with(&|o| o.extend(extra.clone())), "unknown fields")
        }
        11 => (wrong_type(rng, JSON_TYPE), valid, "wrong content type"),
        12 => {
            let pairs: Vec<(String, String)> = fields.iter().map(|f| (f.clone(), "x".to_string())).collect();
            (ct, encode_form(&pairs), "a form sent as JSON")
        }
        _ => (ct, serde_json::to_vec(&random_json(rng, 0)).unwrap(), "random JSON"),
    }
}

// ---------------------------------------------------------------------------------------------
// Sending and checking.

struct Fuzzer<'a> {
    app: &'a TestApp,
    db: Db,
    http: ureq::Agent,
    rng: StdRng,
    seed: u64,
    test: &'static str,
    failures: Vec<String>,
    sent: usize,
    baseline: Snapshot,
    panics_before: usize,
}

/// A body as it can be printed: escaped, and cut short when long.
fn escaped(body: &[u8]) -> String {
    let shown: String =
        body.iter().take(600).flat_map(|b| std::ascii::escape_default(*b)).map(char::from).collect();
    if body.len() > 600 {
        format!("{shown}… ({} bytes in all)", body.len())
    } else {
        shown
    }
}

impl<'a> Fuzzer<'a> {
    fn new(app: &'a TestApp, test: &'static str) -> Self {
        watch_panics();
        let seed = seed();
        let db = Db::open(app);
        let baseline = db.snapshot();
        let http = http_agent();
        Fuzzer {
            app,
            db,
            http,
            rng: rng_for(seed, test),
            seed,
            test,
            failures: vec![],
            sent: 0,
            baseline,
            panics_before: panics_so_far().len(),
        }
    }

    fn fail(&mut self, route: &Route, ct: &Option<String>, what: &str, body: &[u8], problem: String) {
        self.failures.push(format!(
            "{problem}\n  route: POST {}\n  body ({what}), Content-Type {ct:?}: {}\n  seed: REDRESS_FUZZ_SEED={} (test {})",
            route.path,
            escaped(body),
            self.seed,
            self.test
        ));
    }

    /// Sends one body; returns the status, or None when the connection failed.
    fn send(&self, route: &Route, ct: &Option<String>, body: &[u8]) -> Result<(u16, String), String> {
        // Each body from an address of its own, so that it reaches the parser rather than the
        // throttles (they are tested in tests/security.rs).
        let n = self.sent;
        let mut req = self
            .http
            .post(self.app.url(&route.path))
            .header("X-Forwarded-For", format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255));
        if let Some(ct) = ct {
            req = req.header("Content-Type", ct);
        }
        match &route.auth {
            Auth::None => {}
            Auth::Bearer(t) => req = req.header("Authorization", format!("Bearer {t}")),
            Auth::Cookie { header, .. } => req = req.header("Cookie", header),
        }
        match req.send(body) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let text =
                    response.body_mut().with_config().limit(10 << 20).read_to_string().unwrap_or_default();
                Ok((status, text))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn pairs_of(route: &Route) -> Option<Vec<(String, String)>> {
        let Template::Form(pairs) = &route.template else { return None };
        let mut pairs = pairs.clone();
        if let Auth::Cookie { csrf, .. } = &route.auth {
            pairs.insert(0, ("csrf".to_string(), csrf.clone()));
        }
        Some(pairs)
    }

    /// Sends the route's bodies and checks each answer. `after` is told of each success (below
    /// 400), for routes whose success changes what later bodies need (a session that ended).
    fn run(&mut self, route: &mut Route, mut after: impl FnMut(&mut Route, u16)) {
        let started = Instant::now();
        let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
        for _ in 0..route.count {
            let (ct, body, what) = match Self::pairs_of(route) {
                Some(pairs) => form_body(&mut self.rng, &pairs),
                None => {
                    let Template::Json(v) = &route.template else { unreachable!() };
                    json_body(&mut self.rng, v)
                }
            };
            self.sent += 1;
            let result = self.send(route, &ct, &body);
            let panics = panics_so_far();
            if panics.len() > self.panics_before {
                let new = panics[self.panics_before..].join("\n");
                self.panics_before = panics.len();
                self.fail(route, &ct, what, &body, format!("a server thread panicked:\n{new}"));
            }
            let status = match result {
                Ok((status, text)) => {
                    *statuses.entry(status).or_default() += 1;
                    if status >= 500 {
                        let text: String = text.chars().take(300).collect();
                        self.fail(route, &ct, what, &body, format!("answered {status}: {text}"));
                    }
                    status
                }
                // A server may answer a body over its limit before reading it all and close
                // the connection; any other failed exchange is a crash or a hang.
                Err(_) if body.len() > BODY_LIMIT => 413,
                Err(e) => {
                    self.fail(route, &ct, what, &body, format!("no answer: {e}"));
                    if !self.server_answers() {
                        self.fail(route, &ct, what, &body, "the server stopped answering".into());
                        return;
                    }
                    continue;
                }
            };
            let now = self.db.snapshot();
            if status >= 400 && now != self.baseline {
                self.fail(
                    route,
                    &ct,
                    what,
                    &body,
                    format!(
                        "refused with {status} but the database changed:\n before {:?}\n after  {now:?}",
                        self.baseline
                    ),
                );
            }
            self.baseline = now;
            if status < 400 {
                after(route, status);
                self.baseline = self.db.snapshot();
            }
        }
        assert!(self.server_answers(), "the server no longer answers after POST {}", route.path);
        eprintln!("{}: {} bodies in {:?}, statuses {statuses:?}", route.path, route.count, started.elapsed());
    }

    fn server_answers(&self) -> bool {
        matches!(self.app.get_page_checked("/"), Some(200))
    }

    fn finish(self) {
        eprintln!("{}: {} bodies sent", self.test, self.sent);
        let shown: Vec<&String> = self.failures.iter().take(15).collect();
        assert!(
            self.failures.is_empty(),
            "{} of {} fuzzed bodies failed (first {} shown):\n\n{}",
            self.failures.len(),
            self.sent,
            shown.len(),
            shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n\n")
        );
    }
}

trait Answers {
    fn get_page_checked(&self, path: &str) -> Option<u16>;
}

impl Answers for TestApp {
    fn get_page_checked(&self, path: &str) -> Option<u16> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .new_agent();
        agent.get(self.url(path)).call().ok().map(|r| r.status().as_u16())
    }
}

// ---------------------------------------------------------------------------------------------
// Getting cases into the states the routes act on.

fn with_password(app: &TestApp, email: &str) {
    app.set_password(email, PASSWORD);
}

fn signed_in(app: &TestApp, email: &str) -> (WebClient, Auth) {
    with_password(app, email);
    let web = WebClient::new(&app.base_url);
    web.sign_in(email, PASSWORD);
    let auth = session_auth(&web);
    (web, auth)
}

fn session_auth(web: &WebClient) -> Auth {
    let csrf = web.get("/staff").csrf();
    let cookie = web.cookie("redress_session").expect("a session cookie");
    Auth::Cookie { header: format!("redress_session={cookie}"), csrf }
}

/// A removal sent to `author`; returns its reference and the poster's private link path.
fn removal(app: &TestApp, cast: &Cast, author: &str) -> (String, String) {
    let (status, case) = app.record_removal(&cast.moderator, json!({"author_email": author}));
    assert_eq!(status, 201, "{case}");
    let reference = case["reference"].as_str().unwrap().to_string();
    let link = app.mail_to(author, "your post was removed").link().unwrap();
    (reference, path_of(&link))
}

fn appealed(app: &TestApp, cast: &Cast, author: &str) -> (String, String) {
    let (reference, link) = removal(app, cast, author);
    let (status, _, body) = app.post_form(&format!("{link}/appeal"), &[("appeal", "Please look again.")]);
    assert_eq!(status, 303, "{body}");
    (reference, link)
}

fn rejected(app: &TestApp, cast: &Cast, author: &str) -> (String, String) {
    let (reference, link) = appealed(app, cast, author);
    let (status, body) = app.api(
        "POST",
        &format!("/api/v1/cases/{reference}/response"),
        Some(&cast.moderator),
        Some(&json!({"outcome": "uphold", "reasons": "It breaks rule 3a."})),
    );
    assert_eq!(status, 200, "{body}");
    (reference, link)
}

fn escalated(app: &TestApp, cast: &Cast, author: &str) -> (String, String) {
    let (reference, link) = rejected(app, cast, author);
    let (status, _, body) =
        app.post_form(&format!("{link}/escalate"), &[("case_for_committee", "It was fair comment.")]);
    assert_eq!(status, 303, "{body}");
    (reference, link)
}

fn removal_json() -> Value {
    json!({
        "platform": "Facebook",
        "content_url": "https://facebook.com/penrithclp/posts/1234",
        "content_text": "You are all idiots.",
        "author_name": "Pat Poster",
        "author_email": "pat@poster.example",
        "rule_codes": ["3a"],
        "explanation": "A personal insult.",
        "notice_method": "email",
    })
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn fuzz_api_json_routes() {
    let app = TestApp::start();
    let cast = app.setup();
    let (lodged, _) = appealed(&app, &cast, "lodged@poster.example");
    let (asked, _) = appealed(&app, &cast, "asked@poster.example");
    let (on_committee, _) = escalated(&app, &cast, "escalated@poster.example");
    app.wait_outbox_settled();
    let moderator = Auth::Bearer(cast.moderator.clone());
    let committee = Auth::Bearer(cast.committee.clone());
    let mut f = Fuzzer::new(&app, "fuzz_api_json_routes");
    let mut routes = [
        route("/api/v1/removals", &moderator, Template::Json(removal_json()), 300),
        route(
            &format!("/api/v1/cases/{lodged}/response"),
            &moderator,
            Template::Json(json!({"outcome": "uphold", "reasons": "It breaks rule 3a."})),
            250,
        ),
        route(
            &format!("/api/v1/cases/{asked}/request-info"),
            &moderator,
            Template::Json(json!({"question": "Which post did you mean?"})),
            250,
        ),
        route(
            &format!("/api/v1/cases/{on_committee}/decision"),
            &committee,
            Template::Json(json!({"outcome": "reinstate", "reasons": "Fair comment."})),
            250,
        ),
        route(
            &format!("/api/v1/cases/{lodged}/notes"),
            &moderator,
            Template::Json(json!({"note": "Phoned the author."})),
            200,
        ),
    ];
    let mut serial = 0;
    for r in routes.iter_mut() {
        let mut fresh = 0;
        f.run(r, |r, _| {
            // A success moves the case on, after which every body is refused before its words
            // are checked: a new case in the same state keeps the checks in reach.
            let Some((prefix, step)) = r.path.rsplit_once('/').map(|(p, s)| (p.to_string(), s.to_string()))
            else {
                return;
            };
            fresh += 1;
            if step == "removals" || step == "notes" || fresh > 12 {
                return;
            }
            serial += 1;
            let author = format!("fresh{serial}@poster.example");
            let (reference, _) = if step == "decision" {
                escalated(&app, &cast, &author)
            } else {
                appealed(&app, &cast, &author)
            };
            let base = prefix.rsplit_once('/').unwrap().0;
            r.path = format!("{base}/{reference}/{step}");
        });
    }
    f.finish();
}

#[test]
fn fuzz_staff_form_routes() {
    let app = TestApp::start();
    let cast = app.setup();
    let (lodged, _) = appealed(&app, &cast, "lodged@poster.example");
    let (asked, _) = appealed(&app, &cast, "asked@poster.example");
    let (on_committee, _) = escalated(&app, &cast, "escalated@poster.example");
    // Someone whose roles and token the admin routes may take away without locking the fuzzer
    // out.
    for role in ["moderator", "committee"] {
        app.cli_ok(&[
            "user",
            "add",
            "--org",
            ORG,
            "--email",
            "victim@penrith.example",
            "--name",
            "Vic",
            "--role",
            role,
        ]);
    }
    app.cli_ok(&["token", "add", "--org", ORG, "--email", "victim@penrith.example", "--label", "victim"]);
    app.wait_outbox_settled();

    let (moderator_web, moderator) = signed_in(&app, MODERATOR);
    let (_committee_web, committee) = signed_in(&app, COMMITTEE);
    let (admin_web, admin) = signed_in(&app, ADMIN);
    let users_page = admin_web.get("/staff/admin/users");
    let victim_id = action_id(&users_page, "/staff/admin/users/", "/remove-role", "victim@penrith.example");
    let tokens_page = admin_web.get("/staff/admin/tokens");
    let victim_token = action_id(&tokens_page, "/staff/admin/tokens/", "/revoke", "victim");

    let mut f = Fuzzer::new(&app, "fuzz_staff_form_routes");
    let removal_form = form(&[
        ("platform", "Facebook"),
        ("content_url", "https://facebook.com/p/1"),
        ("content_text", "You are all idiots."),
        ("author_name", "Pat Poster"),
        ("author_email", "pat@poster.example"),
        ("notice_method", "email"),
        ("rule.3a", "on"),
        ("explanation", "A personal insult."),
        ("action", "send"),
    ]);
    let mut routes = vec![
        route("/staff/removals", &moderator, removal_form, 250),
        route(
            &format!("/staff/cases/{lodged}/response"),
            &moderator,
            form(&[("outcome", "uphold"), ("reasons", "It breaks rule 3a.")]),
            200,
        ),
        route(
            &format!("/staff/cases/{asked}/request-info"),
            &moderator,
            form(&[("question", "Which post did you mean?")]),
            200,
        ),
        route(
            &format!("/staff/cases/{on_committee}/decision"),
            &committee,
            form(&[("outcome", "reinstate"), ("reasons", "Fair comment.")]),
            200,
        ),
        route(
            &format!("/staff/cases/{lodged}/notes"),
            &moderator,
            form(&[("note", "Phoned the author.")]),
            150,
        ),
        route(&format!("/staff/cases/{asked}/link"), &moderator, form(&[("confirm", "yes")]), 60),
        route("/orgs", &moderator, form(&[("org", ORG)]), 120),
        route(
            "/staff/admin/settings",
            &admin,
            form(&[
                ("name", "Penrith CLP"),
                ("secretary_email", SECRETARY),
                ("timezone", "Europe/London"),
                ("nation", "england-and-wales"),
                ("appeal_window_days", "28"),
                ("appeal_window_count", "calendar"),
                ("response_days", "5"),
                ("response_count", "working"),
                ("escalation_window_days", "28"),
                ("escalation_window_count", "calendar"),
                ("committee_target_days", "28"),
                ("committee_target_count", "calendar"),
                ("response_reminder_days", "1"),
                ("committee_reminder_days", "2"),
                ("info_answer_days", "5"),
            ]),
            250,
        ),
        route(
            "/staff/admin/closures",
            &admin,
            form(&[("day", "2026-12-24"), ("title", "Christmas Eve")]),
            150,
        ),
        route(
            "/staff/admin/rules",
            &admin,
            form(&[("code", "4b"), ("title", "Spam"), ("summary", "No advertising.")]),
            150,
        ),
        route(
            "/staff/admin/rules/3e",
            &admin,
            form(&[("title", "Legal risk"), ("summary", "Nothing libellous.")]),
            150,
        ),
        // Without a password most of the time: hashing one is slow on purpose.
        route(
            "/staff/admin/users",
            &admin,
            form(&[("email", "new@penrith.example"), ("name", "New Person"), ("role", "moderator")]),
            150,
        ),
        route(
            &format!("/staff/admin/users/{victim_id}/remove-role"),
            &admin,
            form(&[("role", "committee")]),
            120,
        ),
        route("/staff/admin/tokens", &admin, form(&[("email", MODERATOR), ("label", "fuzz")]), 150),
        route("/staff/admin/accessibility", &admin, form(&[("text", "Our own statement.")]), 80),
        route(
            "/staff/admin/public-note",
            &admin,
            form(&[("text", "Removed under {rules}: {procedure}")]),
            80,
        ),
        route(
            "/staff/admin/reasons",
            &admin,
            form(&[
                ("step", "removal"),
                ("title", "Insult"),
                ("body", "It insults a member."),
                ("rule_codes", "3a"),
            ]),
            100,
        ),
        route(
            "/staff/admin/reasons/no-such-id",
            &admin,
            form(&[("step", "decision"), ("title", "t"), ("body", "b")]),
            40,
        ),
        route("/staff/admin/reasons/no-such-id/remove", &admin, form(&[("confirm", "yes")]), 40),
        route(
            &format!("/staff/admin/tokens/{victim_token}/revoke"),
            &admin,
            form(&[("confirm", "yes")]),
            100,
        ),
    ];
    for r in routes.iter_mut() {
        f.run(r, |_, _| {});
    }
    // Signing out ends the session the fuzzer uses: sign in again after each success.
    let mut sign_out = route("/sign-out", &moderator, form(&[]), 100);
    f.run(&mut sign_out, |r, _| {
        moderator_web.sign_in(MODERATOR, PASSWORD);
        r.auth = session_auth(&moderator_web);
    });
    f.finish();
}

/// The id in a form action `{prefix}{id}{suffix}` on the same table row as `near`.
fn action_id(page: &Page, prefix: &str, suffix: &str, near: &str) -> String {
    let document = page.document();
    // A form, or a link to the page that asks before the change.
    let forms = selector(&format!(
        "form[action^='{prefix}'][action$='{suffix}'], a[href^='{prefix}'][href$='{suffix}']"
    ));
    let action = document
        .select(&selector("tr"))
        .filter(|row| row.text().collect::<String>().contains(near))
        .find_map(|row| row.select(&forms).next().and_then(|e| e.attr("action").or(e.attr("href"))))
        .unwrap_or_else(|| panic!("no row with {near} and a form to {prefix}…{suffix} in:\n{}", page.body));
    action[prefix.len()..action.len() - suffix.len()].to_string()
}

#[test]
fn fuzz_public_form_routes() {
    let app = TestApp::start();
    let cast = app.setup();
    let (_, notice) = removal(&app, &cast, "notice@poster.example");
    let (_, to_withdraw) = removal(&app, &cast, "withdraw@poster.example");
    let (_, rejected_link) = rejected(&app, &cast, "rejected@poster.example");
    let (asked, asked_link) = appealed(&app, &cast, "asked@poster.example");
    let (status, body) = app.api(
        "POST",
        &format!("/api/v1/cases/{asked}/request-info"),
        Some(&cast.moderator),
        Some(&json!({"question": "Which post did you mean?"})),
    );
    assert_eq!(status, 200, "{body}");
    // A reporter's link, from the complaint form.
    let (status, _, body) = app.post_form(
        "/o/penrith/report",
        &[
            ("platform", "Facebook"),
            ("content_url", "https://facebook.com/p/9"),
            ("content_text", "Nasty words."),
            ("rule_code", "3a"),
            ("reason", "It insults a member."),
            ("reporter_name", "Rita Reporter"),
            ("reporter_email", "rita@reporter.example"),
        ],
    );
    assert_eq!(status, 201, "{body}");
    let reporter = path_of(&app.mail_to("rita@reporter.example", "we have your report").link().unwrap());
    app.wait_outbox_settled();

    // The sign-in form's double-submit cookie and token.
    let anonymous = WebClient::new(&app.base_url);
    let csrf = anonymous.get("/sign-in").csrf();
    let cookie = anonymous.cookie("redress_csrf").expect("the sign-in form's cookie");
    let sign_in_auth = Auth::Cookie { header: format!("redress_csrf={cookie}"), csrf };
    with_password(&app, MODERATOR);

    let mut f = Fuzzer::new(&app, "fuzz_public_form_routes");
    let none = Auth::None;
    let mut routes = vec![
        route(&format!("{notice}/appeal"), &none, form(&[("appeal", "Please look again.")]), 200),
        route(
            &format!("{asked_link}/information"),
            &none,
            form(&[("information", "The one on Monday.")]),
            200,
        ),
        route(
            &format!("{rejected_link}/escalate"),
            &none,
            form(&[("case_for_committee", "Fair comment.")]),
            200,
        ),
        route(&format!("{reporter}/escalate"), &none, form(&[("case_for_committee", "Still there.")]), 100),
        route(
            &format!("{to_withdraw}/withdraw"),
            &none,
            form(&[("reason", "I give up."), ("confirm", "yes")]),
            150,
        ),
        route(
            &format!("{reporter}/withdraw"),
            &none,
            form(&[("reason", "Sorted."), ("confirm", "yes")]),
            100,
        ),
        route("/c/not-a-real-token/appeal", &none, form(&[("appeal", "Hello.")]), 60),
        route(
            "/o/penrith/report",
            &none,
            form(&[
                ("platform", "Facebook"),
                ("content_url", "https://facebook.com/p/9"),
                ("content_text", "Nasty words."),
                ("rule_code", "3a"),
                ("reason", "It insults a member."),
                ("reporter_name", "Rita Reporter"),
                ("reporter_email", "rita@reporter.example"),
            ]),
            250,
        ),
        route("/o/no-such-org/report", &none, form(&[("platform", "X")]), 50),
        // Wrong passwords mostly: every real check hashes, which is slow on purpose.
        route(
            "/sign-in",
            &sign_in_auth,
            form(&[("email", MODERATOR), ("password", "not the password")]),
            120,
        ),
    ];
    let mut serial = 0;
    for r in routes.iter_mut() {
        let mut fresh = 0;
        f.run(r, |r, _| {
            // As for the API: a poster's case in the same state as before the success.
            let Some(step) =
                r.path.strip_prefix("/c/").and_then(|p| p.rsplit_once('/')).map(|(_, s)| s.to_string())
            else {
                return;
            };
            fresh += 1;
            if fresh > 12 {
                return;
            }
            serial += 1;
            let author = format!("fresh{serial}@poster.example");
            let link = match step.as_str() {
                "appeal" | "withdraw" => removal(&app, &cast, &author).1,
                "escalate" => rejected(&app, &cast, &author).1,
                _ => {
                    let (reference, link) = appealed(&app, &cast, &author);
                    let (status, body) = app.api(
                        "POST",
                        &format!("/api/v1/cases/{reference}/request-info"),
                        Some(&cast.moderator),
                        Some(&json!({"question": "Which post did you mean?"})),
                    );
                    assert_eq!(status, 200, "{body}");
                    link
                }
            };
            r.path = format!("{link}/{step}");
        });
    }
    f.finish();
}

#[test]
fn fuzz_first_run_setup() {
    let app = TestApp::start();
    let anonymous = WebClient::new(&app.base_url);
    let csrf = anonymous.get("/setup").csrf();
    let cookie = anonymous.cookie("redress_csrf").expect("the setup form's cookie");
    let auth = Auth::Cookie { header: format!("redress_csrf={cookie}"), csrf };
    let mut f = Fuzzer::new(&app, "fuzz_first_run_setup");
    // A password one character short, so that most bodies go through every check of the form
    // and are refused rather than setting Redress up at the first valid one.
    let mut setup = route(
        "/setup",
        &auth,
        form(&[
            ("org_name", "Penrith CLP"),
            ("org_slug", "penrith"),
            ("secretary_email", SECRETARY),
            ("timezone", "Europe/London"),
            ("admin_name", "Alex Admin"),
            ("admin_email", "alex@penrith.example"),
            ("password", "1234567"),
        ]),
        250,
    );
    f.run(&mut setup, |_, _| {});
    f.finish();
}

/// Every POST route the server registers, as its pattern, from the router's own table (the
/// access tests check that no route is registered outside it).
fn post_routes() -> std::collections::BTreeSet<String> {
    redress::web::all_routes()
        .into_iter()
        .filter(|(method, _)| *method == "post")
        .map(|(_, path)| path.to_string())
        .collect()
}

/// The POST routes the tests above fuzz, as patterns.
const FUZZED: &[&str] = &[
    "/api/v1/removals",
    "/api/v1/cases/{reference}/response",
    "/api/v1/cases/{reference}/decision",
    "/api/v1/cases/{reference}/request-info",
    "/api/v1/cases/{reference}/notes",
    "/staff/removals",
    "/staff/cases/{reference}/response",
    "/staff/cases/{reference}/decision",
    "/staff/cases/{reference}/request-info",
    "/staff/cases/{reference}/notes",
    "/staff/cases/{reference}/link",
    "/orgs",
    "/sign-out",
    "/staff/admin/settings",
    "/staff/admin/closures",
    "/staff/admin/rules",
    "/staff/admin/rules/{code}",
    "/staff/admin/users",
    "/staff/admin/users/{id}/remove-role",
    "/staff/admin/tokens",
    "/staff/admin/tokens/{id}/revoke",
    "/staff/admin/accessibility",
    "/staff/admin/public-note",
    "/staff/admin/reasons",
    "/staff/admin/reasons/{id}",
    "/staff/admin/reasons/{id}/remove",
    "/c/{token}/appeal",
    "/c/{token}/escalate",
    "/c/{token}/withdraw",
    "/c/{token}/information",
    "/o/{slug}/report",
    "/sign-in",
    "/setup",
];

#[test]
fn fuzz_covers_every_post_route() {
    let registered = post_routes();
    assert!(registered.len() >= 20, "the route tables were not found: {registered:?}");
    let missing: Vec<&String> = registered.iter().filter(|r| !FUZZED.contains(&r.as_str())).collect();
    assert!(missing.is_empty(), "POST routes that no fuzz test sends bodies to: {missing:?}");
}
