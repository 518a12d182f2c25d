//! The fault suite: the real `redress` binary, a real (if wilful) SMTP server on 127.0.0.1,
//! and the faults an operator meets — a mail server that hangs or crawls, two instances, kill
//! -9, SIGTERM, a database that cannot be written for a while, two servers on one SQLite file,
//! an organisation's template that fails. Each scenario counts, by Message-ID, what the mail
//! server accepted against what the outbox holds: delivered once, duplicates, lost, and how
//! long the queue took to drain once the fault cleared.
//!
//! Runs on a SQLite file, and on PostgreSQL too when TEST_DATABASE_URL is set (the SQLite-only
//! scenarios then say so and skip).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::web::WebClient;
use crate::common::*;
use diesel::prelude::*;
use serde_json::json;

/// The scenarios load two cores hard: one at a time, so that one's timings are its own.
fn one_at_a_time() -> crate::common::Alone {
    crate::common::alone()
}

// -------------------------------------------------------------------------------------------
// A mail server that can be told to hang or to crawl.

#[derive(Default)]
struct Wilful {
    /// Accept connections and never answer.
    hang: AtomicBool,
    /// Wait this long before accepting each message.
    delay_ms: AtomicU64,
    /// Message-IDs of the messages accepted (answered 250 after DATA), in order.
    accepted: Mutex<Vec<String>>,
    connections: AtomicUsize,
    /// Connections not yet closed.
    open: AtomicUsize,
}

struct FaultSmtp {
    port: u16,
    state: Arc<Wilful>,
}

impl FaultSmtp {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Wilful::default());
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                state.connections.fetch_add(1, Ordering::Relaxed);
                state.open.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let _ = serve_smtp(stream, &state);
                    state.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        FaultSmtp { port, state }
    }

    fn hang(&self, on: bool) {
        self.state.hang.store(on, Ordering::Relaxed);
    }

    fn delay(&self, d: Duration) {
        self.state.delay_ms.store(d.as_millis() as u64, Ordering::Relaxed);
    }

    fn accepted(&self) -> Vec<String> {
        self.state.accepted.lock().unwrap().clone()
    }

    fn connections_open(&self) -> usize {
        self.state.open.load(Ordering::SeqCst)
    }
}

fn serve_smtp(stream: TcpStream, state: &Wilful) -> std::io::Result<()> {
    if state.hang.load(Ordering::Relaxed) {
        // Hold the connection open, say nothing, until the client gives up (or a minute).
        let mut buf = [0u8; 1024];
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut s = &stream;
        while let Ok(n) = std::io::Read::read(&mut s, &mut buf) {
            if n == 0 {
                break;
            }
        }
        return Ok(());
    }
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut lines = BufReader::new(stream);
    out.write_all(b"220 faults.test ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
            out.write_all(b"250-faults.test\r\n250 8BITMIME\r\n")?;
        } else if cmd.starts_with("MAIL")
            || cmd.starts_with("RCPT")
            || cmd.starts_with("RSET")
            || cmd == "NOOP"
        {
            out.write_all(b"250 OK\r\n")?;
        } else if cmd == "DATA" {
            out.write_all(b"354 go ahead\r\n")?;
            let mut message_id = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                if message_id.is_empty() && line.to_ascii_lowercase().starts_with("message-id:") {
                    message_id = line["message-id:".len()..].trim().to_string();
                }
            }
            let delay = state.delay_ms.load(Ordering::Relaxed);
            if delay > 0 {
                std::thread::sleep(Duration::from_millis(delay));
            }
            // Accepted the moment the 250 goes: from here the message is the server's.
            state.accepted.lock().unwrap().push(message_id);
            out.write_all(b"250 accepted\r\n")?;
        } else if cmd == "QUIT" {
            out.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"500 what\r\n")?;
        }
    }
}

// -------------------------------------------------------------------------------------------
// Redress processes.

struct Server {
    child: Child,
    base_url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The test settings: a short lease, a short send timeout, quick retries and polls.
fn serve(app: &TestApp, smtp_port: u16, extra: &[(&str, &str)]) -> Server {
    let port = free_port();
    let base_url = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_redress"));
    cmd.arg("serve")
        .env("DATABASE_URL", &app.database_url)
        .env("REDRESS_BIND", format!("127.0.0.1:{port}"))
        .env("REDRESS_BASE_URL", &base_url)
        .env("SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}"))
        .env("REDRESS_MAIL_FROM", "Penrith CLP <redress@penrith.example>")
        .env("REDRESS_SWEEP_SECS", "3600")
        .env("REDRESS_OUTBOX_POLL_SECS", "1")
        .env("REDRESS_RETRY_BASE_SECS", "1")
        .env("REDRESS_SMTP_TIMEOUT_SECS", "2")
        .env("REDRESS_OUTBOX_LEASE_SECS", "8")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    // Keep the log, for the scenarios that read it and for a failure's report.
    let stderr = child.stderr.take().unwrap();
    let log = app_log(app, port);
    std::thread::spawn(move || {
        let mut file = std::fs::File::create(log).unwrap();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(file, "{line}");
        }
    });
    let server = Server { child, base_url };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redress did not start on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn app_log(app: &TestApp, port: u16) -> std::path::PathBuf {
    std::path::Path::new(&app.database_url)
        .parent()
        .filter(|p| p.exists())
        .map(|p| p.join(format!("server-{port}.log")))
        .unwrap_or_else(|| std::env::temp_dir().join(format!("redress-faults-{port}.log")))
}

fn log_of(app: &TestApp, server: &Server) -> String {
    let port: u16 = server.base_url.rsplit(':').next().unwrap().parse().unwrap();
    std::fs::read_to_string(app_log(app, port)).unwrap_or_default()
}

fn signal(server: &Server, sig: &str) {
    let ok = Command::new("kill").args([sig, &server.child.id().to_string()]).status().unwrap();
    assert!(ok.success());
}

/// The test's own server is only the database's keeper: no sweeps, no mail (its SMTP port is
/// closed and it polls daily), so everything measured is the spawned servers' doing.
fn quiet_app() -> (TestApp, Cast) {
    let app = TestApp::start_configured(|c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{}", free_port()));
        c.outbox_poll_secs = 86_400;
        c.sweep_interval_secs = 86_400;
    });
    let cast = app.setup();
    (app, cast)
}

fn removal(n: usize) -> serde_json::Value {
    json!({
        "platform": "Facebook",
        "content_url": format!("https://facebook.com/penrithclp/posts/{n}"),
        "content_text": "You are all idiots and your candidate is a crook.",
        "author_name": "Pat Poster",
        "author_email": format!("pat{n}@poster.example"),
        "rule_codes": ["3a"],
        "explanation": "A personal insult aimed at other members.",
    })
}

/// Records `n` removals against the servers in turn, `threads` at a time; returns the count of
/// each status answered.
fn load(servers: &[&str], token: &str, n: usize, threads: usize) -> HashMap<u16, usize> {
    let next = Arc::new(AtomicUsize::new(0));
    let statuses = Arc::new(Mutex::new(HashMap::new()));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (next, statuses) = (next.clone(), statuses.clone());
            let servers: Vec<String> = servers.iter().map(|s| s.to_string()).collect();
            let token = token.to_string();
            std::thread::spawn(move || {
                let agent = http_agent();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    let url = format!("{}/api/v1/removals", servers[i % servers.len()]);
                    let status = match agent
                        .post(&url)
                        .header("Authorization", format!("Bearer {token}"))
                        .send_json(removal(i))
                    {
                        Ok(r) => r.status().as_u16(),
                        Err(_) => 0,
                    };
                    *statuses.lock().unwrap().entry(status).or_insert(0) += 1;
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let statuses = statuses.lock().unwrap().clone();
    statuses
}

/// The outbox's emails: id and status.
fn outbox(app: &TestApp) -> Vec<(String, String)> {
    use redress::db::schema::outbox;
    let pool = redress::db::connect(&app.database_url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    outbox::table.select((outbox::id, outbox::status)).load(&mut *conn).unwrap()
}

/// The emails that failed an attempt: status and error.
fn last_errors(app: &TestApp) -> Vec<(String, String)> {
    use redress::db::schema::outbox;
    let pool = redress::db::connect(&app.database_url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    outbox::table
        .filter(outbox::last_error.is_not_null())
        .select((outbox::status, outbox::last_error.assume_not_null()))
        .load(&mut *conn)
        .unwrap()
}

#[derive(Debug)]
struct Tally {
    emails: usize,
    once: usize,
    duplicates: usize,
    lost: usize,
    strangers: usize,
}

fn tally(app: &TestApp, smtp: &FaultSmtp) -> Tally {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for id in smtp.accepted() {
        *seen.entry(id).or_insert(0) += 1;
    }
    let rows = outbox(app);
    let ids: Vec<String> = rows.iter().map(|(id, _)| format!("<{id}@penrith.example>")).collect();
    let once = ids.iter().filter(|id| seen.get(*id) == Some(&1)).count();
    let duplicates = ids.iter().map(|id| seen.get(id).copied().unwrap_or(0).saturating_sub(1)).sum();
    let lost = ids.iter().filter(|id| !seen.contains_key(*id)).count();
    let strangers = seen.keys().filter(|id| !ids.contains(id)).count();
    Tally { emails: rows.len(), once, duplicates, lost, strangers }
}

/// Waits until every email of the outbox is marked sent and was accepted by the mail server;
/// returns how long that took.
fn drained(app: &TestApp, smtp: &FaultSmtp, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let rows = outbox(app);
        let accepted = smtp.accepted();
        let all_sent = rows.iter().all(|(_, status)| status == "sent");
        let all_accepted =
            rows.iter().all(|(id, _)| accepted.iter().any(|a| a == &format!("<{id}@penrith.example>")));
        if all_sent && all_accepted {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "the outbox did not drain within {within:?}: {:?}; {:?}",
            rows.iter().filter(|(_, s)| s != "sent").collect::<Vec<_>>(),
            tally(app, smtp)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Records `n` removals on one server, then waits until the mail server has accepted `k` of
/// their emails: mid-way through the sending.
fn load_and_start_sending(server: &Server, smtp: &FaultSmtp, token: &str, n: usize, k: usize) {
    let statuses = load(&[&server.base_url], token, n, 8);
    assert_eq!(statuses.get(&201), Some(&n), "{statuses:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while smtp.accepted().len() < k {
        assert!(Instant::now() < deadline, "only {} emails went out", smtp.accepted().len());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// After a drain, waits until no client is still talking to the mail server (a second copy of
/// an email the outbox already marks sent could only be on its way in such a conversation),
/// then counts, reports and checks.
fn settle_and_check(
    app: &TestApp,
    smtp: &FaultSmtp,
    scenario: &str,
    drain: Duration,
    most_duplicates: usize,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while smtp.connections_open() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} connection(s) to the mail server still open 30 s after the drain: {:?}",
            smtp.connections_open(),
            tally(app, smtp)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = tally(app, smtp);
    report(scenario, &t, drain);
    assert_eq!((t.lost, t.strangers), (0, 0), "{t:?}");
    assert!(t.duplicates <= most_duplicates, "{t:?}");
}

fn report(scenario: &str, t: &Tally, drain: Duration) {
    eprintln!(
        "fault suite: {scenario}: {} emails, {} delivered once, {} duplicates, {} lost, drained in {:.1} s",
        t.emails,
        t.once,
        t.duplicates,
        t.lost,
        drain.as_secs_f64()
    );
}

fn is_sqlite(app: &TestApp) -> bool {
    !app.database_url.starts_with("postgres")
}

// -------------------------------------------------------------------------------------------
// The scenarios.

/// A mail server that accepts connections and never answers: each attempt gives up at the
/// send timeout, nothing is recorded twice, and once the server answers again every email goes
/// out within seconds, not after a lease.
#[test]
fn a_hung_mail_server_delays_only_the_email_being_sent() {
    let _one = one_at_a_time();
    let (app, cast) = quiet_app();
    let smtp = FaultSmtp::start();
    smtp.hang(true);
    let server = serve(&app, smtp.port, &[]);
    let statuses = load(&[&server.base_url], &cast.moderator, 20, 4);
    assert_eq!(statuses.get(&201), Some(&20), "{statuses:?}");
    // Two attempts given up: after the first hung, the sender went on to another email.
    let deadline = Instant::now() + Duration::from_secs(30);
    while last_errors(&app).len() < 2 {
        assert!(Instant::now() < deadline, "no two attempts were given up: {:?}", last_errors(&app));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(smtp.accepted().is_empty());
    // Each attempt so far was given up at the timeout and left to be tried again.
    let tried = last_errors(&app);
    assert!(tried.iter().all(|(status, _)| status == "pending" || status == "sending"), "{tried:?}");
    smtp.hang(false);
    let drain = drained(&app, &smtp, Duration::from_secs(30));
    settle_and_check(&app, &smtp, "hung mail server", drain, 0);
    drop(server);
}

/// Two instances and a mail server that takes most of a second a message: each email is sent
/// by one instance, once.
#[test]
fn two_instances_and_a_slow_mail_server_send_each_email_once() {
    let _one = one_at_a_time();
    let (app, cast) = quiet_app();
    let smtp = FaultSmtp::start();
    smtp.delay(Duration::from_millis(700));
    // Two senders each, so that the two instances overlap all the more.
    let a = serve(&app, smtp.port, &[("REDRESS_OUTBOX_SENDERS", "2")]);
    let b = serve(&app, smtp.port, &[("REDRESS_OUTBOX_SENDERS", "2")]);
    let statuses = load(&[&a.base_url, &b.base_url], &cast.moderator, 45, 6);
    assert_eq!(statuses.get(&201), Some(&45), "{statuses:?}");
    let drain = drained(&app, &smtp, Duration::from_secs(60));
    settle_and_check(&app, &smtp, "two instances, slow mail server", drain, 0);
}

/// SIGTERM while mail is going out: the server finishes the email in hand, gives back nothing
/// half-done, and stops; a new one sends the rest at once.
#[test]
fn sigterm_finishes_the_email_in_hand_and_a_restart_sends_the_rest() {
    let _one = one_at_a_time();
    let (app, cast) = quiet_app();
    let smtp = FaultSmtp::start();
    smtp.delay(Duration::from_millis(300));
    let mut first = serve(&app, smtp.port, &[]);
    load_and_start_sending(&first, &smtp, &cast.moderator, 40, 5);
    signal(&first, "-TERM");
    let stopping = Instant::now();
    let exit = loop {
        if let Some(status) = first.child.try_wait().unwrap() {
            break status;
        }
        assert!(stopping.elapsed() < Duration::from_secs(15), "the server did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "a clean stop: {exit:?}");
    let left: Vec<_> = outbox(&app).into_iter().filter(|(_, s)| s == "sending").collect();
    assert!(left.is_empty(), "nothing is left claimed by a server that stopped: {left:?}");
    let restarted = Instant::now();
    let _second = serve(&app, smtp.port, &[]);
    drained(&app, &smtp, Duration::from_secs(30));
    settle_and_check(&app, &smtp, "SIGTERM under load", restarted.elapsed(), 0);
}

/// kill -9 while mail is going out: at most the email in hand goes twice (with the same
/// Message-ID), nothing is lost, and the rest goes as soon as a server runs again.
#[test]
fn kill_9_loses_nothing_and_sends_at_most_the_email_in_hand_twice() {
    let _one = one_at_a_time();
    let (app, cast) = quiet_app();
    let smtp = FaultSmtp::start();
    smtp.delay(Duration::from_millis(200));
    let first = serve(&app, smtp.port, &[]);
    load_and_start_sending(&first, &smtp, &cast.moderator, 40, 5);
    signal(&first, "-KILL");
    drop(first);
    let restarted = Instant::now();
    let _second = serve(&app, smtp.port, &[]);
    // A claim the dead server held waits out its lease (8 s here).
    drained(&app, &smtp, Duration::from_secs(30));
    // Only the email in hand can have gone twice (one sender, the default).
    settle_and_check(&app, &smtp, "kill -9 under load", restarted.elapsed(), 1);
}

/// The database cannot be written for a while (held by another connection, as a full disk or a
/// long migration would): sends whose result cannot be recorded are recorded once it can, and
/// nothing goes twice.
#[test]
fn a_database_that_cannot_be_written_for_a_while_sends_nothing_twice() {
    let _one = one_at_a_time();
    let (app, cast) = quiet_app();
    let smtp = FaultSmtp::start();
    smtp.delay(Duration::from_millis(150));
    let server = serve(&app, smtp.port, &[("REDRESS_OUTBOX_LEASE_SECS", "60")]);
    load_and_start_sending(&server, &smtp, &cast.moderator, 30, 3);
    // Hold the write lock for 8 seconds: the fault is a stretch of time, longer than the send
    // timeout and the retry back-off, during which sends finish but cannot be recorded.
    let url = app.database_url.clone();
    let holder = std::thread::spawn(move || {
        let pool = redress::db::connect(&url, 1).unwrap();
        let mut conn = pool.get().unwrap();
        let sql = if url.starts_with("postgres") {
            "BEGIN; LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE;"
        } else {
            "BEGIN IMMEDIATE;"
        };
        diesel::connection::SimpleConnection::batch_execute(&mut *conn, sql).unwrap();
        std::thread::sleep(Duration::from_secs(8));
        diesel::connection::SimpleConnection::batch_execute(&mut *conn, "COMMIT;").unwrap();
    });
    holder.join().unwrap();
    let cleared = Instant::now();
    drained(&app, &smtp, Duration::from_secs(30));
    settle_and_check(&app, &smtp, "database not writable for 8 s", cleared.elapsed(), 0);
}

/// Two servers on one SQLite file under 64 connections: every request is answered, and none
/// with a 500 — a write that cannot get the lock in time is a 503 with Retry-After.
#[test]
fn two_servers_on_one_sqlite_file_never_answer_500() {
    let _one = one_at_a_time();
    let (app, cast) = quiet_app();
    if !is_sqlite(&app) {
        eprintln!("fault suite: two servers on one SQLite file: skipped on PostgreSQL");
        return;
    }
    let smtp = FaultSmtp::start();
    let a = serve(&app, smtp.port, &[]);
    let b = serve(&app, smtp.port, &[]);
    const N: usize = 1500;
    let statuses = load(&[&a.base_url, &b.base_url], &cast.moderator, N, 64);
    eprintln!("fault suite: two servers on one SQLite file, 64 connections: {statuses:?}");
    assert_eq!(statuses.get(&500), None, "{statuses:?}");
    assert_eq!(statuses.get(&0), None, "every request is answered: {statuses:?}");
    let ok = statuses.get(&201).copied().unwrap_or(0);
    assert_eq!(ok + statuses.get(&503).copied().unwrap_or(0), N, "{statuses:?}");
    assert!(ok > N / 2, "most go through: {statuses:?}");
    // Every acknowledged removal is there with its email.
    assert_eq!(outbox(&app).len(), ok);
}

/// One organisation's own template fails for its cases: the sweep acts on every other due
/// case, records the failing ones for that organisation's admins once, and keeps trying them.
#[test]
fn a_template_that_fails_for_one_organisation_stops_no_other_case() {
    let _one = one_at_a_time();
    let (app, _cast) = quiet_app();
    let templates = tempfile::tempdir().unwrap();
    let own = templates.path().join("orgs/westend/overdue_secretary");
    std::fs::create_dir_all(&own).unwrap();
    // Fine for the sample case checked at start-up (it cites a rule); fails for a case that
    // cites none.
    std::fs::write(own.join("text.hbs"), "Overdue: {{case.reference}}, rule {{case.rules.[0].code}}.\n")
        .unwrap();

    // Appeals whose response deadline passed an hour ago, in both organisations.
    let pool = redress::db::connect(&app.database_url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let mut ids = HashMap::new();
    for (slug, prefix) in [("penrith", "PEN"), ("westend", "WES")] {
        let org = redress::store::org_by_slug(&mut conn, slug).unwrap().unwrap();
        for n in 1..=5 {
            let case = overdue_appeal(&org.id, prefix, n);
            let id = case.id.clone();
            diesel::insert_into(redress::db::schema::cases::table).values(&case).execute(&mut *conn).unwrap();
            ids.insert(case.reference.clone(), id);
        }
    }
    drop(conn);

    let smtp = FaultSmtp::start();
    let dir = templates.path().display().to_string();
    let server = serve(
        &app,
        smtp.port,
        &[("REDRESS_SWEEP_SECS", "1"), ("REDRESS_EMAIL_TEMPLATES", &dir), ("RUST_LOG", "warn,redress=info")],
    );
    // Several sweeps: until each failing case has been tried three times. By the third try the
    // first two sweeps' log lines have long passed through the pipe, so a report made at every
    // sweep would show below.
    use redress::db::schema::{cases, sweep_failures};
    let pool = redress::db::connect(&app.database_url, 1).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tries: Vec<i32> =
            sweep_failures::table.select(sweep_failures::failures).load(&mut *pool.get().unwrap()).unwrap();
        if tries.len() >= 5 && tries.iter().all(|n| *n >= 3) {
            break;
        }
        assert!(Instant::now() < deadline, "the sweep did not try each failing case three times: {tries:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut conn = pool.get().unwrap();
    let overdue: Vec<String> =
        cases::table.filter(cases::overdue.eq(true)).select(cases::reference).load(&mut *conn).unwrap();
    let mut overdue = overdue;
    overdue.sort();
    assert_eq!(
        overdue,
        (1..=5).map(|n| format!("PEN-2026-{n:04}")).collect::<Vec<_>>(),
        "every other case went on"
    );
    let failing: Vec<(String, i32)> = sweep_failures::table
        .select((sweep_failures::case_id, sweep_failures::failures))
        .load(&mut *conn)
        .unwrap();
    assert_eq!(failing.len(), 5, "each westend case is recorded: {failing:?}");
    assert!(failing.iter().all(|(_, n)| *n >= 2), "and tried again at each sweep: {failing:?}");
    let log = log_of(&app, &server);
    let told = log.matches("the deadline sweep could not act on a case").count();
    assert_eq!(told, 5, "each failing case is reported once, not at every sweep:\n{log}");
    drop(conn);

    // West End's admins see them on their work queue; Penrith's, whose cases all went on, do not.
    let password = "correct horse battery staple";
    app.cli_ok(&[
        "user",
        "add",
        "--org",
        "westend",
        "--email",
        "admin@westend.example",
        "--name",
        "W Admin",
        "--role",
        "admin",
    ]);
    for email in [ADMIN, "admin@westend.example"] {
        let out = app.cli_with_stdin(&["user", "password", "--email", email], Some(password));
        assert!(out.status.success());
    }
    let theirs = WebClient::new(&server.base_url);
    theirs.sign_in("admin@westend.example", password);
    let queue = theirs.get("/staff");
    assert!(queue.has("Cases whose deadlines could not be acted on") && queue.has("WES-2026-0001"));
    let ours = WebClient::new(&server.base_url);
    ours.sign_in(ADMIN, password);
    assert!(!ours.get("/staff").has("Cases whose deadlines could not be acted on"));
    assert_eq!(ids.len(), 10);

    // `redress sweep` acts on the rest too, and exits 1 so that cron reports the failures.
    drop(server);
    let out = Command::new(env!("CARGO_BIN_EXE_redress"))
        .args(["sweep", "--no-deliver"])
        .env("DATABASE_URL", &app.database_url)
        .env("REDRESS_EMAIL_TEMPLATES", &dir)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("5 case(s) could not be acted on"), "{stderr}");
}

/// A template that cannot render even for the sample case stops the server at start-up,
/// naming it, rather than failing case by case.
#[test]
fn a_template_that_cannot_render_is_found_at_start_up() {
    let _one = one_at_a_time();
    let (app, _cast) = quiet_app();
    let templates = tempfile::tempdir().unwrap();
    let own = templates.path().join("orgs/westend/removal_notice");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::write(own.join("subject.hbs"), "Removed: {{case.no_such_field}}").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_redress"))
        .arg("serve")
        .env("DATABASE_URL", &app.database_url)
        .env("REDRESS_BIND", format!("127.0.0.1:{}", free_port()))
        .env("REDRESS_EMAIL_TEMPLATES", templates.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("removal_notice") && stderr.contains("westend") && stderr.contains("does not render"),
        "{stderr}"
    );
}
