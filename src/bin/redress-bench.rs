//! The benchmark: the real `redress` server, measured with `wrk` against the ceilings it
//! should be judged by (an actix-web hello world serving a page of the same size, and a minimal
//! program inserting the same rows), on a database seeded to a given size. One table of
//! figures and ratios; exits 1 when a target is missed (never in `--smoke` mode).
//!
//! `cargo run --release --bin redress-bench -- [--cases N] [--database URL] [--smoke]`
#![forbid(unsafe_code)]

#[path = "redress-bench/hello_world.rs"]
mod hello_world;
#[path = "redress-bench/http.rs"]
mod http;
#[path = "redress-bench/procs.rs"]
mod procs;
#[path = "redress-bench/raw.rs"]
mod raw;
#[path = "redress-bench/report.rs"]
mod report;
#[path = "redress-bench/seed.rs"]
mod seed;
#[path = "redress-bench/sweeping.rs"]
mod sweeping;
#[path = "redress-bench/wrk.rs"]
mod wrk;

use hello_world::hello;
use sweeping::{sweep, sweep_alone, Swept};

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Parser;

use procs::{Blackhole, RedressEnv, RssSampler, Server};
use report::{mib, ms, percent, rate, thousands, Report, Row, Verdict};
use seed::{Backend, Sizes};

#[derive(Parser, Debug)]
#[command(name = "redress-bench", about = "Measures Redress against its ceilings and targets")]
struct Args {
    /// Past cases to seed for the measurements with history (and open cases for the large sweep).
    #[arg(long)]
    cases: Option<i64>,
    /// Where to run: a PostgreSQL server URL (the benchmark makes and drops databases of its own
    /// there); SQLite files in a temp folder when absent.
    #[arg(long)]
    database: Option<String>,
    /// Small sizes and short runs; prints the table, never fails on targets.
    #[arg(long)]
    smoke: bool,
    /// Seconds per measurement.
    #[arg(long)]
    duration: Option<u64>,
    /// Open cases among the seeded history (default: 1 % of --cases).
    #[arg(long)]
    open: Option<i64>,
    /// Cases due in both sweeps (default 1,000; 100 in smoke mode).
    #[arg(long)]
    due: Option<i64>,
    /// Also write the table to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Give up on a sweep after this many seconds (reported as a missed target).
    #[arg(long, default_value_t = 600)]
    sweep_limit: u64,
    /// Keep the temp folder (databases, server logs) for a look afterwards.
    #[arg(long)]
    keep: bool,
    /// Internal: serve the hello-world page on this port.
    #[arg(long, hide = true)]
    hello_port: Option<u16>,
    #[arg(long, hide = true, default_value_t = 0)]
    hello_body_bytes: usize,
    #[arg(long, hide = true)]
    hello_headers: Option<PathBuf>,
    /// Internal: run one sweep of this database at --sweep-at, alone in this process, and print
    /// `elapsed_ms marked_overdue vmhwm_kib`.
    #[arg(long, hide = true)]
    sweep_only: Option<String>,
    #[arg(long, hide = true)]
    sweep_at: Option<String>,
}

struct Plan {
    smoke: bool,
    cases: i64,
    open: i64,
    due: i64,
    duration: Duration,
    sweep_limit: Duration,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let (Some(url), Some(at)) = (&args.sweep_only, &args.sweep_at) {
        return match sweep_alone(url, at) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sweep: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(port) = args.hello_port {
        return match hello(port, args.hello_body_bytes, args.hello_headers.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hello world: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let cases = args.cases.unwrap_or(if args.smoke { 2_000 } else { 1_000_000 }).max(10);
    let plan = Plan {
        smoke: args.smoke,
        cases,
        open: args.open.unwrap_or(cases / 100).clamp(2, cases - 2),
        due: args.due.unwrap_or(if args.smoke { 100 } else { 1_000 }).clamp(1, cases),
        duration: Duration::from_secs(args.duration.unwrap_or(if args.smoke { 2 } else { 10 })),
        sweep_limit: Duration::from_secs(args.sweep_limit),
    };
    let work_dir = std::env::temp_dir().join(format!("redress-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&work_dir) {
        eprintln!("error: cannot make {}: {e}", work_dir.display());
        return ExitCode::from(2);
    }
    let backend = match args.database.as_deref() {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Backend::Postgres { admin_url: url.to_string(), made: Default::default() }
        }
        Some(other) => {
            eprintln!("error: --database takes a postgres:// URL ({other:?}); SQLite is the default");
            return ExitCode::from(2);
        }
        None => Backend::Sqlite { dir: work_dir.clone() },
    };
    let result = run(&plan, &backend, &work_dir);
    backend.clean_up();
    if args.keep {
        eprintln!("kept {}", work_dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    match result {
        Ok(report) => {
            let table = report.markdown();
            println!("{table}");
            if let Some(path) = &args.out {
                if let Err(e) = std::fs::write(path, &table) {
                    eprintln!("error: cannot write {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
            let failed = report.failed();
            if failed > 0 && !plan.smoke {
                eprintln!("{failed} target(s) missed");
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn say(what: &str) {
    eprintln!("[{}] {what}", Utc::now().format("%H:%M:%S"));
}

/// Makes sure the `redress` binary beside this one is built from the same sources: under
/// `cargo run` that is one more `cargo build` (quick when nothing changed).
fn build_server() -> Result<(), String> {
    let Ok(cargo) = std::env::var("CARGO") else { return Ok(()) };
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_release = me.parent().and_then(Path::file_name).is_some_and(|n| n == "release");
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--quiet", "--bin", "redress", "--manifest-path"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    if profile_release {
        cmd.arg("--release");
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("cargo build --bin redress failed".into());
    }
    Ok(())
}

struct Measured {
    run: wrk::Run,
    connections: u32,
}

impl Measured {
    fn figures(&self) -> String {
        if self.run.requests == 0 {
            return format!("no request completed, {} errors (@{})", self.run.errors(), self.connections);
        }
        format!(
            "{} req/s, p99 {}, {} errors (@{})",
            rate(self.run.req_per_sec),
            ms(self.run.p99),
            self.run.errors(),
            self.connections
        )
    }
}

fn load(
    port: u16,
    path: &str,
    connections: u32,
    plan: &Plan,
    headers: Vec<String>,
    script: Option<&Path>,
) -> Result<Measured, String> {
    let run = wrk::run(&wrk::Load {
        url: format!("http://127.0.0.1:{port}{path}"),
        connections,
        duration: plan.duration,
        headers,
        script,
        timeout: Duration::from_secs(if connections == 1 { 60 } else { 10 }),
    })?;
    // No request answered in time is a result (a missed target), not a broken benchmark.
    if run.requests == 0 {
        say(&format!("wrk completed no request to {path} in {:?}", plan.duration));
    }
    Ok(Measured { run, connections })
}

fn expect(resp: &http::Response, status: u16, what: &str) -> Result<(), String> {
    if resp.status != status {
        let text = resp.text();
        return Err(format!(
            "{what}: expected HTTP {status}, got {}: {}",
            resp.status,
            &text[..text.len().min(400)]
        ));
    }
    Ok(())
}

/// Removal writes at 8 and 64 connections, checked by one request first.
fn removal_writes(
    server: &Server,
    setup: &seed::Setup,
    plan: &Plan,
    work_dir: &Path,
) -> Result<Vec<Measured>, String> {
    let body = serde_json::to_string(&serde_json::json!({
        "platform": "Facebook",
        "content_url": "https://www.facebook.com/penrithclp/posts/1234567890123456",
        "content_text": seed::removal_input(None).content_text,
        "author_name": "Sam Poster",
        "author_email": "sam.poster@example.net",
        "rule_codes": [seed::RULE],
        "explanation": seed::removal_input(None).explanation,
    }))
    .map_err(|e| e.to_string())?;
    let bearer = format!("Bearer {}", setup.api_token);
    let first = http::request(
        server.port,
        "POST",
        "/api/v1/removals",
        &[("Authorization", &bearer)],
        Some(("application/json", body.as_bytes())),
    )?;
    expect(&first, 201, "POST /api/v1/removals")?;
    let script = work_dir.join("removal.lua");
    std::fs::write(&script, wrk::post_script(&body, &[("Authorization", &bearer)]))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for c in [8, 64] {
        out.push(load(server.port, "/api/v1/removals", c, plan, vec![], Some(&script))?);
    }
    Ok(out)
}

fn raw_ceiling(url: &str, rows: &raw::Rows, plan: &Plan, run: i32) -> Result<(f64, f64), String> {
    let one = raw::ceiling(url, rows, 1, plan.duration, run)?;
    let eight = raw::ceiling(url, rows, 8, plan.duration, run + 1)?;
    Ok((one, eight))
}

fn write_rows(report: &mut Report, label: &str, writes: &[Measured], raw: (f64, f64), targets: bool) {
    let ceiling = raw.0.max(raw.1);
    report.info(
        format!("Raw-insert ceiling, {label} (case + event + emails, 1 tx each)"),
        format!("{} tx/s 1 thread, {} tx/s 8 threads", rate(raw.0), rate(raw.1)),
    );
    for w in writes {
        let ratio = w.run.req_per_sec / ceiling;
        let ok = w.run.requests > 0
            && ratio >= 0.5
            && w.run.p99 < Duration::from_millis(100)
            && w.run.errors() == 0;
        report.rows.push(Row {
            what: format!("Removal writes POST /api/v1/removals, {label}, {} connections", w.connections),
            redress: w.figures(),
            ceiling: format!("{} tx/s", rate(ceiling)),
            ratio: percent(ratio),
            target: "≥ 50 %, p99 < 100 ms, 0 errors".into(),
            verdict: verdict(ok, targets),
        });
    }
}

fn verdict(ok: bool, applies: bool) -> Verdict {
    match (applies, ok) {
        (false, _) => Verdict::Info,
        (true, true) => Verdict::Pass,
        (true, false) => Verdict::Fail,
    }
}

fn run(plan: &Plan, backend: &Backend, work_dir: &Path) -> Result<Report, String> {
    build_server()?;
    procs::redress_binary()?;
    let mut report = Report::default();
    let sqlite = backend.is_sqlite();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    report.heading.push(format!(
        "Redress {} benchmark on {}, {} cases ({} open), {} s per measurement, {} cores{}",
        env!("CARGO_PKG_VERSION"),
        backend.name(),
        thousands(plan.cases as u64),
        thousands(plan.open as u64),
        plan.duration.as_secs(),
        cores,
        if plan.smoke { ", smoke mode (sizes too small for the targets: none enforced)" } else { "" }
    ));
    let blackhole = Blackhole::start()?;
    let now = Utc::now();

    // 1. The raw-insert ceiling on an empty database.
    say("raw-insert ceiling, empty database");
    let raw_url = backend.fresh("raw")?;
    let (raw_pool, raw_setup) = seed::prepare(&raw_url, now)?;
    let rows = raw::Rows::of(&raw_pool, &raw_setup.history)?;
    drop(raw_pool);
    let raw_empty = raw_ceiling(&raw_url, &rows, plan, 0)?;

    // 2. Removal writes on an empty database (of its own, so that the cases they open do not
    // join the seeded database's open ones).
    say("removal writes, empty database");
    let empty_url = backend.fresh("writes")?;
    let (_, empty_setup) = seed::prepare(&empty_url, now)?;
    let env = RedressEnv { database_url: &empty_url, smtp_port: blackhole.port, work_dir };
    let server = procs::start_redress(&env, "empty")?;
    let rss_empty = RssSampler::start(server.pid());
    let writes_empty = removal_writes(&server, &empty_setup, plan, work_dir)?;
    let rss_empty = rss_empty.finish();
    server.stop();
    write_rows(&mut report, "empty database", &writes_empty, raw_empty, sqlite);
    report.info("Server RSS, empty database (max of 100 ms samples)", mib(rss_empty));

    // 3. Seed the history.
    let main_url = backend.fresh("main")?;
    let (main_pool, setup) = seed::prepare(&main_url, now)?;
    let env = RedressEnv { database_url: &main_url, smtp_port: blackhole.port, work_dir };
    say(&format!("seeding {} cases", thousands(plan.cases as u64)));
    let sizes = Sizes { history: plan.cases - plan.open, notice: plan.open, future: 1, past: 1 };
    let took = seed::grow(&main_pool, &setup, now, sizes)?;
    report.info(
        "Seeding (bulk copies of real cases: case, event, email, link each)",
        format!(
            "{} cases in {:.1} s ({} cases/s)",
            thousands(plan.cases as u64),
            took.as_secs_f64(),
            rate(plan.cases as f64 / took.as_secs_f64().max(1e-9)),
        ),
    );
    let (total, open, _) = {
        let mut conn = main_pool.get().map_err(|e| e.to_string())?;
        let counts = seed::counts(&mut conn, now)?;
        seed::settle(&mut conn)?;
        counts
    };
    report.info(
        "Database for the reads",
        format!("{} cases, {} open", thousands(total as u64), thousands(open as u64)),
    );
    drop(main_pool);

    // 4. Everything else, against the seeded database.
    say("reads and writes, seeded database");
    let mut server = procs::start_redress(&env, "seeded")?;
    let rss = RssSampler::start(server.pid());
    // The sweeper runs once at start-up whatever its interval: let it finish first.
    std::thread::sleep(Duration::from_secs(if plan.smoke { 1 } else { 5 }));
    let page_path = format!("/c/{}", setup.link_secret);
    let page = http::get(server.port, &page_path, &[])?;
    expect(&page, 200, "GET /c/<link>")?;
    let skip = ["date", "content-length", "transfer-encoding", "connection"];
    let page_headers: Vec<(String, String)> = page
        .headers
        .iter()
        .filter(|(n, _)| !skip.contains(&n.to_ascii_lowercase().as_str()))
        .cloned()
        .collect();

    say("hello world");
    let hello = procs::start_hello(page.body.len(), &page_headers, work_dir)?;
    let hello_run = load(hello.port, "/", 64, plan, vec![], None)?;
    hello.stop();
    if hello_run.run.requests == 0 || hello_run.run.errors() > 0 {
        return Err(format!("the hello-world server did not answer cleanly: {}", hello_run.figures()));
    }
    report.rows.push(Row {
        what: "actix-web hello world (same features and workers, same page size and headers)".into(),
        redress: String::new(),
        ceiling: hello_run.figures(),
        ratio: String::new(),
        target: String::new(),
        verdict: Verdict::Info,
    });

    say("case page");
    let page_run = load(server.port, &page_path, 64, plan, vec![], None)?;
    let page_ratio = page_run.run.req_per_sec / hello_run.run.req_per_sec;
    let (page_min, page_target) =
        if sqlite { (0.30, "≥ 30 %, p99 < 25 ms") } else { (0.20, "≥ 20 %, p99 < 25 ms") };
    report.rows.push(Row {
        what: format!("Case page GET /c/<link> ({} bytes)", thousands(page.body.len() as u64)),
        redress: page_run.figures(),
        ceiling: format!("{} req/s", rate(hello_run.run.req_per_sec)),
        ratio: percent(page_ratio),
        target: page_target.into(),
        verdict: verdict(
            page_ratio >= page_min
                && page_run.run.p99 < Duration::from_millis(25)
                && page_run.run.errors() == 0,
            true,
        ),
    });

    say("staff case API");
    let bearer = format!("Authorization: Bearer {}", setup.api_token);
    let api_path = format!("/api/v1/cases/{}", setup.notice_reference);
    let bearer_value = format!("Bearer {}", setup.api_token);
    expect(
        &http::get(server.port, &api_path, &[("Authorization", &bearer_value)])?,
        200,
        "GET /api/v1/cases/<ref>",
    )?;
    let api_run = load(server.port, &api_path, 64, plan, vec![bearer.clone()], None)?;
    report.rows.push(Row {
        what: "Staff case API GET /api/v1/cases/<reference>".into(),
        redress: api_run.figures(),
        ceiling: format!("{} req/s", rate(hello_run.run.req_per_sec)),
        ratio: percent(api_run.run.req_per_sec / hello_run.run.req_per_sec),
        target: String::new(),
        verdict: Verdict::Info,
    });

    say("work queue and API list");
    let cookie = sign_in(server.port)?;
    let cookie_header = format!("Cookie: redress_session={cookie}");
    let queue = http::get(server.port, "/staff", &[("Cookie", &format!("redress_session={cookie}"))])?;
    expect(&queue, 200, "GET /staff")?;
    let list = http::get(server.port, "/api/v1/cases", &[("Authorization", &bearer_value)])?;
    expect(&list, 200, "GET /api/v1/cases")?;
    for (what, path, header, bytes) in [
        ("Work queue GET /staff", "/staff", cookie_header, queue.body.len()),
        ("API list GET /api/v1/cases (default page)", "/api/v1/cases", bearer.clone(), list.body.len()),
    ] {
        let m = load(server.port, path, 1, plan, vec![header], None)?;
        report.rows.push(Row {
            what: format!("{what} ({} bytes), 1 connection", thousands(bytes as u64)),
            redress: format!("p50 {}, {}", ms(m.run.p50), m.figures()),
            ceiling: String::new(),
            ratio: String::new(),
            target: "p99 < 50 ms".into(),
            verdict: verdict(
                m.run.requests > 0 && m.run.p99 < Duration::from_millis(50) && m.run.errors() == 0,
                sqlite,
            ),
        });
    }

    say("removal writes, seeded database");
    let writes_seeded = removal_writes(&server, &setup, plan, work_dir)?;
    server.check_alive()?;
    let label = format!("{} past cases", thousands(plan.cases as u64));
    let hwm = procs::rss_kib(server.pid(), "VmHWM:").unwrap_or(0);
    let rss_seeded = rss.finish();
    server.stop();
    // 5. The raw-insert ceiling with the history in place, last, so that its rows do not add
    // to what the reads see.
    say("raw-insert ceiling, seeded database");
    let rows = raw::Rows::of(&seed::open(&main_url)?, &setup.history)?;
    report.notes.push(format!(
        "One removal writes 1 case, 1 event and {} email(s); the raw inserts write copies of those rows (as closed \
         history with sent mail, since they stay in the database).",
        rows.emails()
    ));
    let raw_seeded = raw_ceiling(&main_url, &rows, plan, 2)?;

    write_rows(&mut report, &label, &writes_seeded, raw_seeded, sqlite);
    report.rows.push(Row {
        what: format!("Server RSS, {label}, all phases (max of 100 ms samples; VmHWM)"),
        redress: format!("{}; VmHWM {}", mib(rss_seeded), mib(hwm)),
        ceiling: String::new(),
        ratio: String::new(),
        target: "< 128 MiB".into(),
        verdict: verdict(rss_seeded.max(hwm) < 128 * 1024, sqlite),
    });

    // 6. The sweep: the same number due among as many open cases, then among many.
    let small = sweep(backend, "sweep_small", plan.due, plan.due, plan.sweep_limit)?;
    let big = sweep(backend, "sweep_big", plan.cases, plan.due, plan.sweep_limit)?;
    let figures = |s: &Swept| match &s.outcome {
        Some((took, marked)) => format!("{}, {} marked overdue", ms(*took), thousands(*marked as u64)),
        None => format!("not finished after {} s (abandoned)", plan.sweep_limit.as_secs()),
    };
    report.info(
        format!(
            "Sweep, {} due among {} open (a process that only sweeps)",
            thousands(small.due as u64),
            thousands(small.open as u64)
        ),
        figures(&small),
    );
    let ratio = match (&small.outcome, &big.outcome) {
        (Some((a, _)), Some((b, _))) => Some(b.as_secs_f64() / a.as_secs_f64().max(1e-9)),
        _ => None,
    };
    report.rows.push(Row {
        what: format!(
            "Sweep, {} due among {} open (a process that only sweeps)",
            thousands(big.due as u64),
            thousands(big.open as u64)
        ),
        redress: figures(&big),
        ceiling: small.outcome.map(|(t, _)| ms(t)).unwrap_or_default(),
        ratio: ratio.map(|r| format!("{r:.2}×")).unwrap_or_else(|| "—".into()),
        target: "≤ 2×".into(),
        verdict: verdict(ratio.is_some_and(|r| r <= 2.0), sqlite),
    });
    report.rows.push(Row {
        what: "Peak RSS of the sweep among many (a process that only sweeps; VmHWM)".into(),
        redress: mib(big.rss_kib),
        ceiling: String::new(),
        ratio: String::new(),
        target: "< 128 MiB".into(),
        verdict: verdict(big.rss_kib < 128 * 1024, sqlite),
    });
    report.notes.push(
        "The server runs with REDRESS_SWEEP_SECS and REDRESS_OUTBOX_POLL_SECS at one day (neither can be switched off; \
         the sweeper still runs once at start-up) and SMTP_URL at a port that accepts and never answers, so mail stays queued."
            .into(),
    );
    if !sqlite {
        report
            .notes
            .push("On PostgreSQL only the case-page target applies; the other targets are SQLite's.".into());
    }
    Ok(report)
}

/// Signs in through the form, as a browser does; returns the session cookie.
fn sign_in(port: u16) -> Result<String, String> {
    let csrf = redress::security::new_secret();
    let body = http::form(&[("csrf", &csrf), ("email", seed::MODERATOR), ("password", seed::PASSWORD)]);
    let resp = http::request(
        port,
        "POST",
        "/sign-in",
        &[("Cookie", &format!("redress_csrf={csrf}"))],
        Some(("application/x-www-form-urlencoded", body.as_bytes())),
    )?;
    expect(&resp, 303, "POST /sign-in")?;
    resp.cookie("redress_session").ok_or_else(|| "signing in set no session cookie".to_string())
}
