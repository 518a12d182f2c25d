//! What the database does for each step, checked from the statements the server really runs:
//! every one reads along an index (no full scan of a table that grows with history), is
//! prepared once and reused, and every foreign key has an index (without one, SQLite checks a
//! change of the parent by reading the whole child table).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::common::*;
use chrono::{Duration, Utc};
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use serde_json::json;

/// Every statement started while recording, and those diesel put in a connection's cache.
#[derive(Default)]
struct Seen {
    started: BTreeMap<String, usize>,
    cached: BTreeSet<String>,
}

static RECORDING: AtomicBool = AtomicBool::new(false);
/// The recorder sees every connection of this process: these tests run alone, with no other
/// test of the binary beside them, so that no other test's statements are taken for theirs.
fn one_at_a_time() -> crate::common::Alone {
    crate::common::alone()
}
static SEEN: Mutex<Option<Seen>> = Mutex::new(None);

/// The SQL of a statement, without diesel's list of bound values.
fn sql_of(shown: &str) -> String {
    shown.split(" -- binds:").next().unwrap_or(shown).trim().to_string()
}

struct Recorder;

impl Instrumentation for Recorder {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if !RECORDING.load(Ordering::SeqCst) {
            return;
        }
        let mut seen = SEEN.lock().unwrap();
        let seen = seen.get_or_insert_with(Seen::default);
        match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                *seen.started.entry(sql_of(&query.to_string())).or_default() += 1;
            }
            InstrumentationEvent::CacheQuery { sql, .. } => {
                seen.cached.insert(sql.trim().to_string());
            }
            _ => {}
        }
    }
}

fn recorder() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(Recorder))
}

/// Tables that grow with an organisation's history or with the number of organisations.
const LARGE: &[&str] = &[
    "cases",
    "case_events",
    "case_tokens",
    "case_alerts",
    "outbox",
    "sessions",
    "trusted_devices",
    "api_tokens",
    "users",
    "memberships",
    "organisations",
    "policy_rules",
    "closed_days",
];

#[derive(QueryableByName, Debug)]
struct PlanLine {
    #[diesel(sql_type = Text)]
    detail: String,
}

/// The whole ladder through the real server, then a sweep that marks a case overdue and one
/// that sends a reminder; every statement the server ran is then planned by SQLite.
#[test]
fn every_step_reads_along_indexes_and_reuses_its_statements() {
    let _alone = one_at_a_time();
    // The server runs in this process, so every connection it opens reports to the recorder.
    diesel::connection::set_default_instrumentation(recorder).unwrap();
    let app = TestApp::start_on_sqlite();
    let cast = app.setup();
    RECORDING.store(true, Ordering::SeqCst);

    for round in 0..2 {
        // A removal with an address and one without; the poster appeals; the moderator rejects;
        // the poster escalates; the committee decides; notes and a new link along the way.
        let (status, case) = app.record_removal(&cast.moderator, json!({}));
        assert_eq!(status, 201, "{case}");
        let reference = case["reference"].as_str().unwrap().to_string();
        let (status, handed) = app.record_removal(&cast.moderator, json!({ "author_email": null }));
        assert_eq!(status, 201, "{handed}");
        let link = handed["private_link"].as_str().expect("a link to hand over").to_string();
        assert_eq!(app.get_page(&path_of(&link)).0, 200);
        let (status, _, _) =
            app.post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "It was fair.")]);
        assert_eq!(status, 303);
        let handed_ref = handed["reference"].as_str().unwrap().to_string();
        let (status, body) = app.api(
            "POST",
            &format!("/api/v1/cases/{handed_ref}/response"),
            Some(&cast.moderator),
            Some(&json!({"outcome": "uphold", "reasons": "It was an insult."})),
        );
        assert_eq!(status, 200, "{body}");
        let (status, _, _) = app.post_form(
            &format!("{}/escalate", path_of(&link)),
            &[("case_for_committee", "Please look again.")],
        );
        assert_eq!(status, 303);
        let (status, body) = app.api(
            "POST",
            &format!("/api/v1/cases/{handed_ref}/notes"),
            Some(&cast.secretary),
            Some(&json!({"note": "Referred to the meeting on Tuesday."})),
        );
        assert!(status == 200 || status == 201, "{status} {body}");
        let (status, body) = app.api(
            "POST",
            &format!("/api/v1/cases/{handed_ref}/decision"),
            Some(&cast.committee),
            Some(&json!({"outcome": "reinstate", "reasons": "A matter of public record."})),
        );
        assert_eq!(status, 200, "{body}");
        let (status, body) =
            app.api("GET", &format!("/api/v1/cases/{reference}"), Some(&cast.moderator), None);
        assert_eq!(status, 200, "{body}");
        assert_eq!(app.get_page(&path_of(&link)).0, 200);

        // A complaint through the public form.
        let (status, _, page) = app.post_form(
            &format!("/o/{ORG}/report"),
            &[
                ("platform", "Facebook"),
                ("content_url", "https://facebook.com/penrithclp/posts/99"),
                ("content_text", "Something unpleasant"),
                ("rule_code", "3a"),
                ("reason", &format!("It attacks a member (round {round}).")),
                ("reporter_name", "Rita Reporter"),
                ("reporter_email", "rita@reporter.example"),
            ],
        );
        assert!(status == 201 || status == 303, "{status} {page}");

        // The sweep, in this process: an appeal left unanswered, a reminder, then overdue.
        let pool = redress::db::connect(&app.database_url, 1).unwrap();
        let mut conn = pool.get().unwrap();
        let (status, fresh) = app.record_removal(&cast.moderator, json!({ "author_email": null }));
        assert_eq!(status, 201, "{fresh}");
        let fresh_link = fresh["private_link"].as_str().unwrap().to_string();
        let (status, _, _) =
            app.post_form(&format!("{}/appeal", path_of(&fresh_link)), &[("appeal", "Unfair.")]);
        assert_eq!(status, 303);
        let svc = redress::services::Services {
            base_url: app.base_url.clone(),
            emails: redress::mail::EmailTemplates::load(None).unwrap(),
        };
        let reminded = redress::services::sweep(&mut conn, &svc, Utc::now() + Duration::days(6)).unwrap();
        let overdue = redress::services::sweep(&mut conn, &svc, Utc::now() + Duration::days(30)).unwrap();
        let fresh_ref = fresh["reference"].as_str().unwrap().to_string();
        assert!(
            reminded.reminded.contains(&fresh_ref) || overdue.marked_overdue.contains(&fresh_ref),
            "{reminded:?} {overdue:?}"
        );
        assert!(
            overdue.marked_overdue.contains(&fresh_ref) || overdue.closed.contains(&fresh_ref),
            "{overdue:?}"
        );
    }
    RECORDING.store(false, Ordering::SeqCst);

    let seen = SEEN.lock().unwrap().take().expect("statements were recorded");
    let pool = redress::db::connect(&app.database_url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let redress::db::DbConnection::Sqlite(sqlite) = &mut *conn else { unreachable!("a SQLite file") };

    let mut scans = vec![];
    let mut uncached = vec![];
    let mut limited = vec![];
    for sql in seen.started.keys() {
        let upper = sql.to_uppercase();
        if ["BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA"]
            .iter()
            .any(|k| upper.starts_with(k))
        {
            continue;
        }
        // diesel never caches an UPDATE (a changeset may leave fields out, so its SQL can
        // vary), so reads are what is checked here. The outbox worker's claim is rewritten
        // with the outbox's own issue.
        let claim = upper.starts_with("SELECT `OUTBOX`.`ID` FROM `OUTBOX`");
        if upper.starts_with("SELECT") && !claim && !seen.cached.contains(sql) {
            uncached.push(sql.clone());
        }
        // A bound LIMIT makes SQLite prepare the statement again each time it is run; a
        // look-up by a unique key needs none.
        if upper.contains(" LIMIT ") && !claim {
            limited.push(sql.clone());
        }
        let plan: Vec<PlanLine> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .load(sqlite)
            .unwrap_or_else(|e| panic!("planning {sql}: {e}"));
        for line in plan {
            let mut words = line.detail.split_whitespace();
            if let (Some("SCAN"), Some(table)) = (words.next(), words.next()) {
                if LARGE.contains(&table) {
                    scans.push(format!("{}\n    {sql}", line.detail));
                }
            }
        }
    }
    assert!(seen.started.len() > 30, "the ladder ran: {:?}", seen.started.keys());
    assert!(scans.is_empty(), "statements that read a whole table:\n{}", scans.join("\n"));
    assert!(limited.is_empty(), "look-ups with a LIMIT:\n{}", limited.join("\n"));
    assert!(
        uncached.is_empty(),
        "statements prepared again on every run (not in diesel's statement cache):\n{}",
        uncached.join("\n")
    );
}

#[derive(QueryableByName, Debug)]
struct ForeignKey {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

#[derive(QueryableByName, Debug)]
struct Count {
    #[diesel(sql_type = Integer)]
    n: i32,
}

/// On SQLite and, where TEST_DATABASE_URL names a server, on PostgreSQL: every column that
/// refers to another table leads some complete (not partial) index.
#[test]
fn every_foreign_key_has_an_index() {
    let _alone = one_at_a_time();
    let app = TestApp::start();
    let pool = redress::db::connect(&app.database_url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let mut missing = vec![];
    match &mut *conn {
        redress::db::DbConnection::Sqlite(c) => {
            let keys: Vec<ForeignKey> = diesel::sql_query(
                "SELECT m.name AS table_name, f.\"from\" AS column_name \
                 FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table'",
            )
            .load(c)
            .unwrap();
            assert!(keys.len() >= 15, "{keys:?}");
            for key in keys {
                let led: Count = diesel::sql_query(
                    "SELECT COUNT(*) AS n FROM pragma_index_list($1) l, pragma_index_info(l.name) i \
                     WHERE l.partial = 0 AND i.seqno = 0 AND i.name = $2",
                )
                .bind::<Text, _>(&key.table_name)
                .bind::<Text, _>(&key.column_name)
                .get_result(c)
                .unwrap();
                if led.n == 0 {
                    missing.push(format!("{}.{}", key.table_name, key.column_name));
                }
            }
        }
        redress::db::DbConnection::Pg(c) => {
            let keys: Vec<ForeignKey> = diesel::sql_query(
                "SELECT t.relname::text AS table_name, a.attname::text AS column_name \
                 FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid \
                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1] \
                 WHERE k.contype = 'f' AND t.relnamespace = 'public'::regnamespace",
            )
            .load(c)
            .unwrap();
            assert!(keys.len() >= 15, "{keys:?}");
            for key in keys {
                let led: Count = diesel::sql_query(
                    "SELECT COUNT(*)::int AS n FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid \
                     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
                     WHERE t.relname = $1 AND a.attname = $2 AND i.indpred IS NULL \
                     AND t.relnamespace = 'public'::regnamespace",
                )
                .bind::<Text, _>(&key.table_name)
                .bind::<Text, _>(&key.column_name)
                .get_result(c)
                .unwrap();
                if led.n == 0 {
                    missing.push(format!("{}.{}", key.table_name, key.column_name));
                }
            }
        }
    }
    assert!(missing.is_empty(), "foreign keys with no index: {missing:?}");
}

/// Statements one connection ran, for the sweep test (its own recorder, not the global one).
#[derive(Clone, Default)]
struct Log(std::sync::Arc<Mutex<Vec<String>>>);

impl Instrumentation for Log {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        let line = match event {
            InstrumentationEvent::StartQuery { query, .. } => sql_of(&query.to_string()),
            InstrumentationEvent::BeginTransaction { .. } => "BEGIN (transaction)".into(),
            _ => return,
        };
        self.0.lock().unwrap().push(line);
    }
}

/// A sweep reads the cases that are due and nothing else: with many open cases none of which
/// is due it opens no transaction, and with one due it opens that one case.
#[test]
fn a_sweep_opens_only_the_cases_that_are_due() {
    let _alone = one_at_a_time();
    let app = TestApp::start();
    let cast = app.setup();
    let mut references = vec![];
    for _ in 0..12 {
        let (status, case) = app.record_removal(&cast.moderator, json!({ "author_email": null }));
        assert_eq!(status, 201, "{case}");
        let link = case["private_link"].as_str().unwrap().to_string();
        let (status, _, _) = app.post_form(&format!("{}/appeal", path_of(&link)), &[("appeal", "Unfair.")]);
        assert_eq!(status, 303);
        references.push(case["reference"].as_str().unwrap().to_string());
    }
    let svc = redress::services::Services {
        base_url: app.base_url.clone(),
        emails: redress::mail::EmailTemplates::load(None).unwrap(),
    };
    // A connection of its own rather than a pooled one: on SQLite a pooled connection hands
    // its write transactions to the database's writer connection, which this log would not see.
    let mut conn = {
        use diesel::connection::SimpleConnection;
        let mut c = <redress::db::DbConnection as diesel::Connection>::establish(&app.database_url).unwrap();
        if let redress::db::DbConnection::Sqlite(s) = &mut c {
            s.batch_execute(redress::db::SQLITE_PRAGMAS).unwrap();
        }
        c
    };
    let log = Log::default();
    conn.set_instrumentation(log.clone());
    let transactions = |log: &Log| {
        let lines = log.0.lock().unwrap();
        lines.iter().filter(|l| *l == "BEGIN (transaction)").count()
    };

    let report = redress::services::sweep(&mut conn, &svc, Utc::now()).unwrap();
    assert_eq!(report.marked_overdue.len() + report.reminded.len() + report.closed.len(), 0, "{report:?}");
    assert_eq!(transactions(&log), 0, "nothing due, nothing opened: {:?}", log.0.lock().unwrap());
    let reads = log.0.lock().unwrap().len();
    // Three look-ups along indexes, and the cases that failed at earlier sweeps (a table that
    // holds only those, each until it goes through).
    assert!(reads <= 4, "four look-ups: {:?}", log.0.lock().unwrap());

    // One response deadline passes: that case alone is opened.
    use redress::db::schema::cases;
    let past = redress::db::to_db_time(Utc::now() - Duration::hours(1));
    diesel::update(cases::table.filter(cases::reference.eq(&references[3])))
        .set((cases::due_at.eq(Some(past)), cases::next_reminder_at.eq(None::<chrono::NaiveDateTime>)))
        .execute(&mut conn)
        .unwrap();
    log.0.lock().unwrap().clear();
    let report = redress::services::sweep(&mut conn, &svc, Utc::now()).unwrap();
    assert_eq!(report.marked_overdue, vec![references[3].clone()], "{report:?}");
    assert_eq!(transactions(&log), 1, "{:?}", log.0.lock().unwrap());

    // The reminders of the others fall due together: each is opened once, then never again.
    let instants: Vec<Option<chrono::NaiveDateTime>> =
        cases::table.select(cases::next_reminder_at).load(&mut conn).unwrap();
    let latest = instants.into_iter().flatten().max().expect("reminders are pending");
    let later = redress::db::from_db_time(latest) + Duration::minutes(1);
    let report = redress::services::sweep(&mut conn, &svc, later).unwrap();
    assert_eq!(report.reminded.len(), 11, "{report:?}");
    log.0.lock().unwrap().clear();
    let report = redress::services::sweep(&mut conn, &svc, later).unwrap();
    assert!(report.reminded.is_empty(), "{report:?}");
    assert_eq!(transactions(&log), 0, "{:?}", log.0.lock().unwrap());
}

/// Many moderators recording removals at the same moment all succeed, each with its own
/// reference: writers queue for their turn instead of failing with "database is locked".
#[test]
fn many_writers_at_once_all_succeed() {
    let _alone = one_at_a_time();
    let app = std::sync::Arc::new(TestApp::start());
    let cast = app.setup();
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (app, token) = (app.clone(), cast.moderator.clone());
            std::thread::spawn(move || {
                (0..10)
                    .map(|_| {
                        let (status, case) = app.record_removal(&token, json!({}));
                        assert_eq!(status, 201, "{case}");
                        case["reference"].as_str().unwrap().to_string()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let references: BTreeSet<String> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert_eq!(references.len(), 160, "every removal has a reference of its own");
}
