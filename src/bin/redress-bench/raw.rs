//! The raw-insert ceiling: the rows one removal writes (its case, its event, its emails),
//! inserted by a minimal program with diesel in one transaction each, on the same kind of
//! database with the same pragmas, as fast as it goes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};

use redress::db::schema::{case_events, cases, outbox};
use redress::db::{Backend, DbConnection, DbPool};
use redress::store::{CaseEvent, CaseId, CaseRow, OutboxRow};

/// Rows as a removal writes them, copied from a real removal.
#[derive(Clone)]
pub struct Rows {
    case: CaseRow,
    event: CaseEvent,
    emails: Vec<OutboxRow>,
}

impl Rows {
    /// The rows of a real removal, as history: its emails marked sent, so that the copies
    /// (which stay in the database) add closed cases and no queued mail.
    pub fn of(pool: &DbPool, case_id: &CaseId) -> Result<Self, String> {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        let conn: &mut DbConnection = &mut conn;
        let case = cases::table
            .find(case_id)
            .select(CaseRow::as_select())
            .first(conn)
            .map_err(|e| format!("template case: {e}"))?;
        let event = case_events::table
            .filter(case_events::case_id.eq(case_id))
            .order(case_events::seq)
            .select(CaseEvent::as_select())
            .first(conn)
            .map_err(|e| format!("template event: {e}"))?;
        let mut emails: Vec<OutboxRow> = outbox::table
            .filter(outbox::event_id.eq(&event.id))
            .select(OutboxRow::as_select())
            .load(conn)
            .map_err(|e| format!("template emails: {e}"))?;
        for m in &mut emails {
            m.status = "sent".into();
            m.attempts = 1;
            m.locked_until = None;
            m.last_error = None;
            m.sent_at = Some(m.created_at);
        }
        Ok(Self { case, event, emails })
    }

    pub fn emails(&self) -> usize {
        self.emails.len()
    }

    /// Copy `n` of thread `thread`, with fresh ids and a reference of its own.
    fn fresh(&self, year: i32, n: u64) -> Self {
        let mut rows = self.clone();
        rows.case.id = CaseId::new();
        rows.case.ref_year = year;
        rows.case.ref_number = i32::try_from(n).unwrap_or(i32::MAX);
        rows.case.reference = format!("RAW-{year}-{n}");
        rows.event.id = redress::db::new_id();
        rows.event.case_id = rows.case.id.clone();
        for m in &mut rows.emails {
            m.id = redress::db::new_id();
            m.case_id = Some(rows.case.id.clone());
            m.event_id = Some(rows.event.id.clone());
        }
        rows
    }
}

macro_rules! insert_rows {
    ($conn:expr, $rows:expr) => {{
        diesel::insert_into(cases::table).values(&$rows.case).execute($conn)?;
        diesel::insert_into(case_events::table).values(&$rows.event).execute($conn)?;
        for m in &$rows.emails {
            diesel::insert_into(outbox::table).values(m).execute($conn)?;
        }
        Ok::<(), diesel::result::Error>(())
    }};
}

enum Raw {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

impl Raw {
    fn open(url: &str) -> Result<Self, String> {
        match Backend::from_url(url).map_err(|e| e.to_string())? {
            Backend::Sqlite(path) => {
                let mut c = SqliteConnection::establish(&path).map_err(|e| e.to_string())?;
                // Exactly the pragmas of the server's writer connection.
                c.batch_execute(&format!(
                    "{} {}",
                    redress::db::SQLITE_PRAGMAS,
                    redress::db::SQLITE_WRITER_PRAGMAS
                ))
                .map_err(|e| e.to_string())?;
                Ok(Raw::Sqlite(c))
            }
            Backend::Postgres(url) => Ok(Raw::Pg(PgConnection::establish(&url).map_err(|e| e.to_string())?)),
        }
    }

    fn insert(&mut self, rows: &Rows) -> Result<(), diesel::result::Error> {
        match self {
            // BEGIN IMMEDIATE, as the server's write transactions.
            Raw::Sqlite(c) => c.immediate_transaction(|c| insert_rows!(c, rows)),
            Raw::Pg(c) => c.transaction(|c| insert_rows!(c, rows)),
        }
    }
}

/// Transactions per second over `duration` with `threads` connections. Each call in a
/// database needs its own `run` number (copies are numbered by run and thread).
pub fn ceiling(url: &str, rows: &Rows, threads: usize, duration: Duration, run: i32) -> Result<f64, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    let start = Instant::now();
    for t in 0..threads {
        let (url, rows, stop, done) = (url.to_string(), rows.clone(), stop.clone(), done.clone());
        let year = 1000 + run * 100 + t as i32;
        handles.push(std::thread::spawn(move || -> Result<(), String> {
            let mut conn = Raw::open(&url)?;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let copy = rows.fresh(year, n);
                conn.insert(&copy).map_err(|e| format!("raw insert: {e}"))?;
                n += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    for h in handles {
        h.join().map_err(|_| "a raw-insert thread panicked".to_string())??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64())
}
