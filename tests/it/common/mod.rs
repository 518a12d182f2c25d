//! The test harness: a real Redress server on 127.0.0.1 with a fresh SQLite file, a real SMTP
//! server (mailin-embedded) that it delivers to, the real CLI binary, and an HTTP client.

#![allow(dead_code)]

pub mod browser;
pub mod web;
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use mailin_embedded::{response, Handler, Response, Server};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Tests that need the process to themselves.

/// Who is running: tests side by side, or one test alone. Writers (a test that must be alone)
/// go first: once one waits, no new test starts beside the others.
struct Turns {
    state: Mutex<TurnState>,
    changed: std::sync::Condvar,
}

struct TurnState {
    beside: usize,
    alone: bool,
    waiting_alone: usize,
}

static TURNS: Turns = Turns {
    state: Mutex::new(TurnState { beside: 0, alone: false, waiting_alone: 0 }),
    changed: std::sync::Condvar::new(),
};

thread_local! {
    static HOLDS_ALONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Held by a test that must not share the process: no `TestApp` runs until it is dropped.
pub struct Alone(());

/// Held by every `TestApp`: it waits while a test runs alone.
pub struct Beside(());

pub fn alone() -> Alone {
    let mut state = TURNS.state.lock().unwrap_or_else(|e| e.into_inner());
    state.waiting_alone += 1;
    while state.alone || state.beside > 0 {
        state = TURNS.changed.wait(state).unwrap_or_else(|e| e.into_inner());
    }
    state.waiting_alone -= 1;
    state.alone = true;
    HOLDS_ALONE.with(|h| h.set(true));
    Alone(())
}

impl Drop for Alone {
    fn drop(&mut self) {
        HOLDS_ALONE.with(|h| h.set(false));
        TURNS.state.lock().unwrap_or_else(|e| e.into_inner()).alone = false;
        TURNS.changed.notify_all();
    }
}

/// A place beside the other tests, or none for the test that holds `alone()` itself.
pub fn beside_others() -> Option<Beside> {
    if HOLDS_ALONE.with(|h| h.get()) {
        return None;
    }
    let mut state = TURNS.state.lock().unwrap_or_else(|e| e.into_inner());
    while state.alone || state.waiting_alone > 0 {
        state = TURNS.changed.wait(state).unwrap_or_else(|e| e.into_inner());
    }
    state.beside += 1;
    Some(Beside(()))
}

impl Drop for Beside {
    fn drop(&mut self) {
        TURNS.state.lock().unwrap_or_else(|e| e.into_inner()).beside -= 1;
        TURNS.changed.notify_all();
    }
}

/// One email as the SMTP server received it, decoded by mail-parser.
#[derive(Debug, Clone)]
pub struct Mail {
    pub envelope_to: Vec<String>,
    /// The header block as sent, folded lines joined: for checks on the headers themselves.
    pub headers: String,
    /// Encoded words decoded.
    pub subject: String,
    /// The plain-text part, decoded.
    pub body: String,
    /// The HTML part, decoded, when the message has one.
    pub html: Option<String>,
    /// Every leaf part: its content type and its text, decoded.
    pub parts: Vec<(String, String)>,
    /// Every header: its name and its value as sent, unfolded.
    fields: Vec<(String, String)>,
    /// Every header: its name and its value with encoded words decoded.
    pub decoded_headers: Vec<(String, String)>,
    /// The message as sent, CRLFs made LFs.
    pub raw: String,
}

impl Mail {
    /// Decodes a message as sent; `None` when mail-parser cannot read it as a message at all.
    pub fn parse(envelope_to: Vec<String>, data: &[u8]) -> Option<Mail> {
        // Unknown headers decoded too: a private detail hidden in an encoded word must be seen.
        let message = mail_parser::MessageParser::default().default_header_text().parse(data)?;
        let root = message.root_part();
        let head = String::from_utf8_lossy(&data[..(root.offset_body as usize).min(data.len())]);
        let headers = unfold(&head.replace("\r\n", "\n")).trim_end().to_string();
        let fields = message
            .headers_raw()
            .map(|(name, value)| (name.to_string(), unfold(value).trim().to_string()))
            .collect();
        let decoded_headers =
            message.headers().iter().map(|h| (h.name().to_string(), header_text(&message, h))).collect();
        let mut parts = Vec::new();
        for part in &message.parts {
            let text = match &part.body {
                mail_parser::PartType::Text(t) | mail_parser::PartType::Html(t) => t.to_string(),
                mail_parser::PartType::Binary(b) | mail_parser::PartType::InlineBinary(b) => {
                    String::from_utf8_lossy(b).into_owned()
                }
                mail_parser::PartType::Message(_) | mail_parser::PartType::Multipart(_) => continue,
            };
            let content_type = mail_parser::MimeHeaders::content_type(part)
                .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()))
                .unwrap_or_else(|| "text/plain".into());
            parts.push((content_type.to_ascii_lowercase(), text));
        }
        let of_type = |t: &str| parts.iter().find(|(ct, _)| ct == t).map(|(_, text)| text.clone());
        Some(Mail {
            envelope_to,
            headers,
            subject: message.subject().unwrap_or_default().to_string(),
            body: of_type("text/plain").unwrap_or_default(),
            html: of_type("text/html"),
            parts,
            fields,
            decoded_headers,
            raw: String::from_utf8_lossy(data).replace("\r\n", "\n"),
        })
    }

    /// The first private link in the body.
    pub fn link(&self) -> Option<String> {
        let start = self.body.find("http://127.0.0.1:")?;
        let rest = &self.body[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let link = &rest[..end];
        link.contains("/c/").then(|| link.to_string())
    }

    /// The first header `name`, its value as sent (unfolded, encoded words left as they are).
    pub fn header(&self, name: &str) -> Option<String> {
        self.fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    }
}

/// Folded header lines joined into one, as RFC 5322 reads them.
fn unfold(s: &str) -> String {
    s.replace("\r\n", "\n").replace("\n ", " ").replace("\n\t", " ")
}

/// A header's value as a reader sees it: addresses as `Name <address>`, encoded words decoded.
fn header_text(message: &mail_parser::Message<'_>, header: &mail_parser::Header<'_>) -> String {
    use mail_parser::HeaderValue;
    match header.value() {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(list) => list.join(", "),
        HeaderValue::Address(address) => address
            .iter()
            .map(|a| match (&a.name, &a.address) {
                (Some(name), Some(addr)) => format!("{name} <{addr}>"),
                (None, Some(addr)) => addr.to_string(),
                (Some(name), None) => name.to_string(),
                (None, None) => String::new(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        // Dates, content types and the like hold nothing a person wrote: as sent.
        _ => {
            let raw = message.raw_message();
            let (start, end) = (header.offset_start() as usize, header.offset_end() as usize);
            unfold(&String::from_utf8_lossy(&raw[start.min(end)..end.min(raw.len())])).trim().to_string()
        }
    }
}

struct SmtpSink {
    received: Arc<Mutex<Vec<Mail>>>,
    /// Answers to give instead of accepting, one per message, in order.
    script: Arc<Mutex<std::collections::VecDeque<(u16, String)>>>,
    /// Every answer given at the end of a message, accepted or not.
    answers: Arc<Mutex<Vec<u16>>>,
    /// Conversations going on now (a client that said HELO/EHLO and has not gone).
    open: Arc<AtomicUsize>,
    /// Whether this connection's conversation is counted in `open`.
    counted: bool,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Clone for SmtpSink {
    /// A clone for a new connection: its conversation is not counted until it begins.
    fn clone(&self) -> Self {
        SmtpSink {
            received: self.received.clone(),
            script: self.script.clone(),
            answers: self.answers.clone(),
            open: self.open.clone(),
            counted: false,
            to: vec![],
            data: vec![],
        }
    }
}

impl SmtpSink {
    fn conversation_started(&mut self) {
        if !self.counted {
            self.counted = true;
            self.open.fetch_add(1, Ordering::SeqCst);
        }
    }
}

// mailin-embedded gives each connection a clone of the handler and drops it when the
// connection ends: the only sign it gives that a client has gone.
impl Drop for SmtpSink {
    fn drop(&mut self) {
        if self.counted {
            self.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Handler for SmtpSink {
    fn helo(&mut self, _ip: std::net::IpAddr, _domain: &str) -> Response {
        self.conversation_started();
        response::OK
    }

    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, _from: &str) -> Response {
        self.conversation_started();
        response::OK
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn rcpt(&mut self, _to: &str) -> Response {
        // A scripted answer refuses the message at its recipient, as servers do for an unknown
        // mailbox (5xx) or when busy (4xx).
        if let Some((code, message)) = self.script.lock().unwrap().pop_front() {
            self.answers.lock().unwrap().push(code);
            return Response::custom(code, message);
        }
        response::OK
    }

    fn data_end(&mut self) -> Response {
        self.answers.lock().unwrap().push(250);
        let mail = Mail::parse(self.to.clone(), &self.data).unwrap_or_else(|| {
            panic!("the test SMTP server could not read a message:\n{}", String::from_utf8_lossy(&self.data))
        });
        self.received.lock().unwrap().push(mail);
        response::OK
    }
}

/// A real SMTP server on 127.0.0.1 that keeps every message it accepts.
pub struct SmtpServer {
    pub port: u16,
    received: Arc<Mutex<Vec<Mail>>>,
    script: Arc<Mutex<std::collections::VecDeque<(u16, String)>>>,
    answers: Arc<Mutex<Vec<u16>>>,
    open: Arc<AtomicUsize>,
}

impl SmtpServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Self::start_on(listener)
    }

    pub fn start_on(listener: TcpListener) -> Self {
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(std::collections::VecDeque::new()));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(AtomicUsize::new(0));
        let sink = SmtpSink {
            received: received.clone(),
            script: script.clone(),
            answers: answers.clone(),
            open: open.clone(),
            counted: false,
            to: vec![],
            data: vec![],
        };
        std::thread::spawn(move || {
            let mut server = Server::new(sink);
            server.with_name("test.smtp").with_num_threads(16).with_tcp_listener(listener);
            let _ = server.serve();
        });
        SmtpServer { port, received, script, answers, open }
    }

    /// How many clients are in a conversation with the server now.
    pub fn conversations_open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// The next message gets this answer instead of being accepted.
    pub fn answer_next(&self, code: u16, message: &str) {
        self.script.lock().unwrap().push_back((code, message.to_string()));
    }

    /// Every answer given to a whole message so far (250 when accepted).
    pub fn answers(&self) -> Vec<u16> {
        self.answers.lock().unwrap().clone()
    }

    pub fn all(&self) -> Vec<Mail> {
        self.received.lock().unwrap().clone()
    }
}

pub struct Token(pub String);

/// With TEST_DATABASE_URL (a PostgreSQL server URL), a new database for one test: its URL, the
/// server URL, and its name. Without it, None: the test uses a SQLite file.
pub fn fresh_postgres_database() -> Option<(String, String, String)> {
    use diesel::Connection;
    static SAID: std::sync::Once = std::sync::Once::new();
    let Some(admin) = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        SAID.call_once(|| {
            eprintln!("SKIPPED PostgreSQL: TEST_DATABASE_URL is not set, so these tests run on SQLite only (.ci/run runs them on both)")
        });
        return None;
    };
    let name = format!("redress_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn =
        diesel::PgConnection::establish(&admin).expect("TEST_DATABASE_URL reaches a PostgreSQL server");
    diesel::RunQueryDsl::execute(diesel::sql_query(format!("CREATE DATABASE {name}")), &mut conn).unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin.clone());
    Some((format!("{base}/{name}"), admin, name))
}

/// Drops a database made by `fresh_postgres_database`.
pub fn drop_postgres_database(admin: &str, name: &str) {
    use diesel::Connection;
    if let Ok(mut conn) = diesel::PgConnection::establish(admin) {
        let _ = diesel::RunQueryDsl::execute(
            diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")),
            &mut conn,
        );
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((handle, thread)) = self.server.take() {
            actix_web::rt::System::new().block_on(handle.stop(false));
            let _ = thread.join();
        }
        if let Some((admin, name)) = &self.pg_database {
            drop_postgres_database(admin, name);
        }
    }
}

/// The tests' HTTP client: answers of every status are returned, not errors; redirects are
/// not followed, so that tests see them; nothing waits for ever.
pub fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

/// A running Redress with its database, mail server and CLI.
pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub base_url: String,
    pub smtp: SmtpServer,
    /// A SQLite file of its own, or a PostgreSQL database of its own when TEST_DATABASE_URL
    /// names a server.
    pub database_url: String,
    pg_database: Option<(String, String)>,
    /// The server and its thread, stopped when the test ends so that nothing is still running
    /// when the test process exits.
    server: Option<(actix_web::dev::ServerHandle, std::thread::JoinHandle<()>)>,
    pub smtp_port: u16,
    http: ureq::Agent,
    /// Dropped last: the test's place beside the others.
    _beside: Option<Beside>,
}

/// The public complaint form, filled in as Robin Reporter fills it in.
pub const COMPLAINT: &[(&str, &str)] = &[
    ("platform", "Facebook"),
    ("content_url", "https://facebook.com/penrithclp/posts/99"),
    ("content_text", "Some nasty words"),
    ("rule_code", "3a"),
    ("reason", "It insults a volunteer by name."),
    ("reporter_name", "Robin Reporter"),
    ("reporter_email", "robin@reporter.example"),
];
pub const ORG: &str = "penrith";
pub const SECRETARY: &str = "secretary@penrith.example";
pub const MODERATOR: &str = "mod@penrith.example";
pub const MODERATOR2: &str = "mod2@penrith.example";
pub const COMMITTEE: &str = "chair@penrith.example";
pub const ADMIN: &str = "admin@penrith.example";

/// Tokens of the standard cast of one organisation.
pub struct Cast {
    pub moderator: String,
    pub secretary: String,
    pub committee: String,
    pub admin: String,
    /// A moderator of another organisation.
    pub outsider: String,
}

impl TestApp {
    pub fn start() -> Self {
        let smtp = SmtpServer::start();
        let port = smtp.port;
        Self::start_with(smtp, port)
    }

    /// Starts Redress delivering to `smtp_port` (which may have no server yet).
    pub fn start_with(smtp: SmtpServer, smtp_port: u16) -> Self {
        Self::start_inner(smtp, smtp_port, true)
    }

    /// Starts Redress on a SQLite file, whatever TEST_DATABASE_URL says.
    pub fn start_on_sqlite() -> Self {
        let smtp = SmtpServer::start();
        let port = smtp.port;
        Self::start_inner(smtp, port, false)
    }

    /// Starts Redress with its configuration changed by `change` (the test still speaks plain
    /// http to 127.0.0.1, as a proxy in front of it would).
    pub fn start_configured(change: impl FnOnce(&mut redress::config::Config)) -> Self {
        let smtp = SmtpServer::start();
        let port = smtp.port;
        Self::start_full(smtp, port, true, change)
    }

    fn start_inner(smtp: SmtpServer, smtp_port: u16, postgres_if_asked: bool) -> Self {
        Self::start_full(smtp, smtp_port, postgres_if_asked, |_| {})
    }

    fn start_full(
        smtp: SmtpServer,
        smtp_port: u16,
        postgres_if_asked: bool,
        change: impl FnOnce(&mut redress::config::Config),
    ) -> Self {
        let beside = beside_others();
        let dir = tempfile::tempdir().unwrap();
        let fresh = if postgres_if_asked { fresh_postgres_database() } else { None };
        let (database_url, pg_database) = match fresh {
            Some((url, admin, name)) => (url, Some((admin, name))),
            None => (dir.path().join("redress.db").display().to_string(), None),
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let base_url = format!("http://{addr}");
        let mut config = redress::config::Config {
            database_url: database_url.clone(),
            bind: addr,
            base_url: base_url.clone(),
            smtp_url: Some(format!("smtp://127.0.0.1:{smtp_port}")),
            mail_from: "Penrith CLP <redress@penrith.example>".into(),
            mail_dir: dir.path().join("mail"),
            // The real clock never reaches a deadline in a test; sweeps are run with --now.
            sweep_interval_secs: 3600,
            outbox_poll_secs: 1,
            retry_base_secs: 1,
            outbox_lease_secs: 60,
            smtp_timeout_secs: 10,
            outbox_senders: 1,
            email_templates: None,
            // Lets a test speak from many client addresses through X-Forwarded-For.
            trust_proxy: true,
        };
        change(&mut config);
        config.validate().unwrap();
        // Migrate before the server starts so the CLI and the server never race on it.
        redress::db::connect(&config.database_url, 1).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new()
                .block_on(redress::server::run_with(config, listener, Some(tx)))
                .unwrap();
        });
        let handle = rx.recv_timeout(Duration::from_secs(30)).expect("the server started");
        let http = http_agent();
        let app = TestApp {
            dir,
            base_url,
            smtp,
            database_url,
            pg_database,
            smtp_port,
            http,
            server: Some((handle, thread)),
            _beside: beside,
        };
        app.wait_until_up();
        app
    }

    fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.http.get(&self.base_url).call().is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not start");
    }

    /// Runs the real `redress` binary against this app's database and mail server.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_with_stdin(args, None)
    }

    pub fn cli_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        use std::io::Write;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_redress"));
        cmd.args(args)
            .env("DATABASE_URL", &self.database_url)
            .env("REDRESS_BASE_URL", &self.base_url)
            .env("SMTP_URL", format!("smtp://127.0.0.1:{}", self.smtp_port))
            .env("REDRESS_MAIL_FROM", "Penrith CLP <redress@penrith.example>")
            .env("REDRESS_MAIL_DIR", self.dir.path().join("mail"))
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    /// Runs the CLI and insists that it succeeds; returns its standard output.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "redress {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// One organisation with rules and its staff, plus a second organisation with its own
    /// moderator. Made through the library, as the CLI's `org add`, `rule add`, `user add` and
    /// `token add` make them, without a process for each (the CLI has tests of its own).
    pub fn setup(&self) -> Cast {
        use redress::services::{self, OrgInput};
        let pool = redress::db::connect(&self.database_url, 1).unwrap();
        let mut conn = pool.get().unwrap();
        let conn = &mut *conn;
        let now = chrono::Utc::now();
        let org = |conn: &mut redress::db::DbConnection,
                   slug: &str,
                   name: &str,
                   secretary: &str,
                   prefix: Option<&str>| {
            let input = OrgInput {
                slug: slug.into(),
                name: name.into(),
                secretary_email: secretary.into(),
                reference_prefix: prefix.map(str::to_string),
                timezone: Some("Europe/London".into()),
                appeal_window_days: None,
                response_days: None,
                escalation_window_days: None,
                committee_target_days: None,
            };
            services::add_org(conn, input, now).unwrap();
        };
        let rule =
            |conn: &mut redress::db::DbConnection, org: &str, code: &str, title: &str, summary: &str| {
                services::add_rule(conn, org, code, title, summary, services::ChangedBy::CommandLine, now)
                    .unwrap();
            };
        let user = |conn: &mut redress::db::DbConnection, org: &str, email: &str, name: &str, role: &str| {
            services::add_user(
                conn,
                org,
                services::NewMember { email, name, role, password: None },
                services::ChangedBy::CommandLine,
                now,
            )
            .unwrap();
        };
        org(conn, ORG, "Penrith CLP", SECRETARY, Some("PEN"));
        rule(conn, ORG, "3a", "Personal attacks", "Criticise views, never people: no insults or abuse.");
        rule(conn, ORG, "3e", "Legal risk", "Nothing that could be libellous or breach copyright.");
        user(conn, ORG, MODERATOR, "Mo Derator", "moderator");
        user(conn, ORG, MODERATOR2, "Second Mod", "moderator");
        user(conn, ORG, SECRETARY, "Sec Retary", "secretary");
        user(conn, ORG, COMMITTEE, "Chair", "committee");
        user(conn, ORG, ADMIN, "Admin", "admin");
        org(conn, "westend", "West End Parish", "clerk@westend.example", None);
        rule(conn, "westend", "3a", "Abuse", "No abuse.");
        user(conn, "westend", "mod@westend.example", "W Mod", "moderator");
        let mut token =
            |org: &str, email: &str| services::add_token(conn, org, email, "cli", None, now).unwrap();
        Cast {
            moderator: token(ORG, MODERATOR),
            secretary: token(ORG, SECRETARY),
            committee: token(ORG, COMMITTEE),
            admin: token(ORG, ADMIN),
            outsider: token("westend", "mod@westend.example"),
        }
    }

    /// Sets a staff member's password through the library, as `redress user password` does.
    pub fn set_password(&self, email: &str, password: &str) {
        let pool = redress::db::connect(&self.database_url, 1).unwrap();
        let mut conn = pool.get().unwrap();
        redress::services::set_password(&mut conn, email, password).unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{}", self.base_url, path)
        }
    }

    /// A JSON request; returns the status and the body (Null when it is not JSON).
    pub fn api(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        let url = self.url(path);
        let auth = token.map(|t| format!("Bearer {t}"));
        let response = match (method, body) {
            ("GET", _) => {
                let mut req = self.http.get(&url);
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
            (_, body) => {
                let mut req = self.http.post(&url);
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.send_json(body.cloned().unwrap_or(Value::Null))
            }
        };
        let mut response = response.unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().with_config().limit(10 << 20).read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A raw POST with a body and content type of the caller's choosing.
    pub fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> (u16, String) {
        let mut req = self.http.post(&self.url(path)).header("Content-Type", content_type);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut response = req.send(body).unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap_or_default())
    }

    pub fn get_page(&self, path: &str) -> (u16, String) {
        let mut response = self.http.get(&self.url(path)).call().unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap_or_default())
    }

    /// Submits a form as a browser would; returns the status, the Location header and the body.
    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> (u16, Option<String>, String) {
        let mut response = self.http.post(&self.url(path)).send_form(fields.iter().copied()).unwrap();
        let status = response.status().as_u16();
        let location = response.headers().get("Location").and_then(|v| v.to_str().ok()).map(str::to_string);
        (status, location, response.body_mut().read_to_string().unwrap_or_default())
    }

    /// Waits until the SMTP server has received a message matching `pred`, and returns it.
    pub fn wait_for_mail(&self, what: &str, pred: impl Fn(&Mail) -> bool) -> Mail {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(m) = self.smtp.all().into_iter().find(|m| pred(m)) {
                return m;
            }
            if Instant::now() > deadline {
                let seen: Vec<_> =
                    self.smtp.all().iter().map(|m| (m.envelope_to.clone(), m.subject.clone())).collect();
                panic!("no email {what} arrived; received: {seen:#?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The email sent to `to` whose subject contains `subject`.
    pub fn mail_to(&self, to: &str, subject: &str) -> Mail {
        self.wait_for_mail(&format!("to {to} about {subject:?}"), |m| {
            m.envelope_to.iter().any(|t| t == to) && m.subject.contains(subject)
        })
    }

    /// How many emails the SMTP server received for `to` with `subject` in the subject.
    pub fn count_mail(&self, to: &str, subject: &str) -> usize {
        self.smtp
            .all()
            .iter()
            .filter(|m| m.envelope_to.iter().any(|t| t == to) && m.subject.contains(subject))
            .count()
    }

    /// Waits until the outbox holds no email still to send and the test's mail server has no
    /// conversation open: see `wait_mail_settled`.
    pub fn wait_outbox_settled(&self) {
        self.wait_mail_settled(&self.smtp);
    }

    /// Waits until no outbox row is pending or being sent and `smtp` has no client in a
    /// conversation. A row is marked sent only after the mail server accepted it, so from then
    /// on `smtp` holds every email that the changes made so far will send, and a test can count
    /// them without sleeping first. A row waiting for a retry is waited for: no email is still
    /// to come when this returns.
    pub fn wait_mail_settled(&self, smtp: &SmtpServer) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let c = self.counts();
            let open = smtp.conversations_open();
            if c.outbox_unsent == 0 && open == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the mail never settled within 30 s: {} email(s) still to send, {open} SMTP conversation(s) open; {c:?}",
                c.outbox_unsent
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Row counts straight from the database: what "nothing changed" is checked against.
    pub fn counts(&self) -> Counts {
        use redress::db::schema::{case_events, case_tokens, cases, outbox};
        let pool = redress::db::connect(&self.database_url, 1).unwrap();
        let mut conn = pool.get().unwrap();
        let cases_n: i64 = cases::table.count().get_result(&mut *conn).unwrap();
        let events: i64 = case_events::table.count().get_result(&mut *conn).unwrap();
        let emails: i64 = outbox::table.count().get_result(&mut *conn).unwrap();
        // Links minted by requests; those minted as emails are sent come and go with the
        // outbox worker, not with the request under test.
        let tokens: i64 = case_tokens::table
            .filter(case_tokens::outbox_id.is_null())
            .count()
            .get_result(&mut *conn)
            .unwrap();
        let outbox_unsent: i64 = outbox::table
            .filter(outbox::status.eq_any(["pending", "sending"]))
            .count()
            .get_result(&mut *conn)
            .unwrap();
        let states: Vec<(String, String, bool)> = cases::table
            .select((cases::reference, cases::state, cases::overdue))
            .order(cases::reference)
            .load(&mut *conn)
            .unwrap();
        Counts { cases: cases_n, events, emails, tokens, outbox_unsent, states }
    }

    /// Records a removal with the usual fields, overridden by `changes`.
    pub fn record_removal(&self, token: &str, changes: Value) -> (u16, Value) {
        let mut body = serde_json::json!({
            "platform": "Facebook",
            "content_url": "https://facebook.com/penrithclp/posts/1234",
            "content_text": "You are all idiots and your candidate is a crook.",
            "author_name": "Pat Poster",
            "author_email": "pat@poster.example",
            "rule_codes": ["3a"],
            "explanation": "A personal insult aimed at other members.",
        });
        if let (Value::Object(b), Value::Object(c)) = (&mut body, changes) {
            for (k, v) in c {
                if v.is_null() {
                    b.remove(&k);
                } else {
                    b.insert(k, v);
                }
            }
        }
        self.api("POST", "/api/v1/removals", Some(token), Some(&body))
    }
}

/// What "the database did not change" compares. Mail still to send is shown but not compared:
/// the worker delivers earlier emails in the background while a test runs.
#[derive(Debug, Clone)]
pub struct Counts {
    pub cases: i64,
    pub events: i64,
    pub emails: i64,
    pub tokens: i64,
    pub outbox_unsent: i64,
    pub states: Vec<(String, String, bool)>,
}

impl PartialEq for Counts {
    fn eq(&self, other: &Self) -> bool {
        (self.cases, self.events, self.emails, self.tokens, &self.states)
            == (other.cases, other.events, other.emails, other.tokens, &other.states)
    }
}

/// The path of a private link, e.g. /c/abc….
pub fn path_of(link: &str) -> String {
    let i = link.find("/c/").expect("a private link");
    link[i..].to_string()
}

/// An appeal whose response deadline passed an hour ago, for writing straight into the
/// database as if the servers had been down; it cites no rule and has no email address.
pub fn overdue_appeal(org_id: &redress::ids::OrgId, prefix: &str, n: i32) -> redress::store::CaseRow {
    let now = chrono::Utc::now();
    let past = redress::db::to_db_time(now - chrono::Duration::hours(1));
    let created = redress::db::to_db_time(now - chrono::Duration::days(10));
    redress::store::CaseRow {
        id: redress::ids::CaseId::new(),
        organisation_id: org_id.clone(),
        reference: format!("{prefix}-2026-{n:04}"),
        ref_year: 2026,
        ref_number: n,
        kind: "removal".into(),
        state: "appeal_lodged".into(),
        overdue: false,
        due_at: Some(past),
        due_kind: Some("response".into()),
        platform: "Facebook".into(),
        content_url: format!("https://facebook.com/p/{n}"),
        content_text: "text".into(),
        author_name: Some("Author".into()),
        author_email: None,
        explanation: "reason".into(),
        cited_rules: "[]".into(),
        notice_method: Some("letter".into()),
        reporter_name: None,
        reporter_email: None,
        recorded_by: None,
        outcome: None,
        created_at: created,
        updated_at: created,
        closed_at: None,
        paused_days_left: None,
        info_due_at: None,
        next_reminder_at: None,
    }
}
