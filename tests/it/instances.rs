//! Two Redress server processes on one database, both sweeping and delivering: every overdue
//! case alerts the secretary exactly once — no duplicates, none missing. Runs on a SQLite file,
//! and on PostgreSQL when TEST_DATABASE_URL is set.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use diesel::prelude::*;

const CASES: usize = 1000;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(app: &TestApp) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_redress"))
        .arg("serve")
        .env("DATABASE_URL", &app.database_url)
        .env("REDRESS_BIND", "127.0.0.1:0")
        .env("REDRESS_BASE_URL", &app.base_url)
        .env("SMTP_URL", format!("smtp://127.0.0.1:{}", app.smtp_port))
        .env("REDRESS_MAIL_FROM", "Penrith CLP <redress@penrith.example>")
        .env("REDRESS_SWEEP_SECS", "1")
        .env("REDRESS_OUTBOX_POLL_SECS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server(child)
}

#[test]
fn two_instances_alert_each_overdue_case_exactly_once() {
    let app = TestApp::start();
    app.setup();

    // A thousand appeals whose response deadline passed an hour ago, written straight into
    // the database (no email of their own), as if the servers had been down.
    let pool = redress::db::connect(&app.database_url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let org = redress::store::org_by_slug(&mut conn, ORG).unwrap().unwrap();
    redress::db::write_tx(&mut conn, |conn| {
        for n in 1..=CASES as i32 {
            let case = overdue_appeal(&org.id, "PEN", n);
            diesel::insert_into(redress::db::schema::cases::table).values(&case).execute(conn)?;
        }
        Ok::<_, diesel::result::Error>(())
    })
    .unwrap();
    drop(conn);

    // The test's own server sweeps only hourly; these two sweep every second.
    let _a = serve(&app);
    let _b = serve(&app);

    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let alerts = app.count_mail(SECRETARY, "Response overdue");
        if alerts >= CASES {
            break;
        }
        assert!(Instant::now() < deadline, "only {alerts} of {CASES} alerts arrived");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Every alert has arrived; a duplicate would be an outbox row still to send or a message
    // still being sent, and either is waited for. (Sweeps after this find no case due: every
    // one is overdue already, which the events below check.)
    app.wait_outbox_settled();

    let mut references: Vec<String> = app
        .smtp
        .all()
        .into_iter()
        .filter(|m| m.subject.contains("Response overdue"))
        .map(|m| m.subject.split_whitespace().last().unwrap().to_string())
        .collect();
    assert_eq!(references.len(), CASES, "no duplicates");
    references.sort();
    references.dedup();
    assert_eq!(references.len(), CASES, "each case alerted once, none missing");

    let mut conn = pool.get().unwrap();
    use redress::db::schema::{case_events, cases, outbox};
    let overdue: i64 = cases::table.filter(cases::overdue.eq(true)).count().get_result(&mut *conn).unwrap();
    assert_eq!(overdue as usize, CASES);
    let events: i64 = case_events::table
        .filter(case_events::kind.eq("marked_overdue"))
        .count()
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(events as usize, CASES, "one event per case");
    let sent: i64 = outbox::table
        .filter(outbox::template.eq("overdue_secretary"))
        .filter(outbox::status.eq("sent"))
        .count()
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(sent as usize, CASES);
}
