//! SQLite's write gate: this process's writers take turns, in the order they came, on one
//! connection, and share a transaction while others are queued (group commit).

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;

use super::*;

/// SQLite lets one writer in at a time. Left to itself, each waiting writer sleeps and retries
/// (`busy_timeout`), so under load writers are served in no order and some wait seconds. The
/// gate makes the writers of this process take turns in the order they came (a ticket lock),
/// and gives each in turn the one connection that writes: its page cache stays warm, where a
/// pooled connection would find its cache stale after every other connection's write.
/// `busy_timeout` still covers writers in other processes on the same file.
pub struct WriteGate {
    tickets: Mutex<Tickets>,
    path: String,
    /// Opened at the first write, and again after a transaction that could not be ended.
    writer: Mutex<Option<Writer>>,
    /// Transactions committed, for the tests of batching.
    commits: std::sync::atomic::AtomicU64,
}

/// The writer's connection and the batch of steps its open transaction holds, if any.
struct Writer {
    conn: DbConnection,
    batch: Option<Batch>,
    /// Since when this process has held SQLite's write lock batch after batch.
    held_since: Option<Instant>,
    /// When a `BEGIN IMMEDIATE` last had to wait: another process writes to the same file.
    contended: Option<Instant>,
}

/// With another process writing to the same file, a writer that has held the lock batch after
/// batch for `HOLD_LIMIT` lets go for `HOLD_PAUSE`: SQLite's waiting polls the lock now and
/// then, and would otherwise keep missing the instants between one batch and the next.
const HOLD_LIMIT: Duration = Duration::from_millis(100);
const HOLD_PAUSE: Duration = Duration::from_millis(10);
/// How long a wait at `BEGIN IMMEDIATE` counts as a sign of another writing process.
const CONTENTION_MEMORY: Duration = Duration::from_secs(10);

/// Steps that share one transaction: each ran in a savepoint of its own, and none is done
/// until the transaction commits.
struct Batch {
    outcome: Arc<Outcome>,
    steps: u32,
    began: Instant,
}

/// How a batch ended, for the steps waiting on it.
#[derive(Default)]
struct Outcome {
    ended: Mutex<Option<Result<(), String>>>,
    cv: Condvar,
}

impl Outcome {
    fn end(&self, how: Result<(), String>) {
        *self.ended.lock().unwrap_or_else(|e| e.into_inner()) = Some(how);
        self.cv.notify_all();
    }

    fn wait(&self) -> diesel::QueryResult<()> {
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match &*ended {
                Some(Ok(())) => return Ok(()),
                Some(Err(why)) => return Err(batch_lost(why)),
                None => ended = self.cv.wait(ended).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }
}

fn batch_lost(why: &str) -> diesel::result::Error {
    diesel::result::Error::DatabaseError(
        diesel::result::DatabaseErrorKind::Unknown,
        Box::new(format!("the write transaction this step was part of did not commit: {why}")),
    )
}

/// A batch is committed when no other writer is waiting, or when it holds this many steps or
/// has been open this long, whichever comes first: the first step of a batch waits for the
/// rest, so these bound how long a step waits for the steps after it.
const BATCH_STEPS: u32 = 64;
const BATCH_AGE: Duration = Duration::from_millis(20);

#[derive(Default)]
struct Tickets {
    next: u64,
    serving: u64,
    /// The threads waiting for their turn, by ticket.
    waiting: std::collections::HashMap<u64, std::thread::Thread>,
}

/// Whether a connection is outside any transaction and its transaction manager is sound.
pub(super) fn idle(conn: &mut DbConnection) -> bool {
    depth(conn) == Some(0)
}

/// How many transactions deep a connection is, or None when its transaction manager is broken.
fn depth(conn: &mut DbConnection) -> Option<u32> {
    match DbConnection::transaction_manager_status_mut(conn).transaction_depth() {
        Ok(None) => Some(0),
        Ok(Some(n)) => Some(n.get()),
        Err(_) => None,
    }
}

/// A writer's turn at the gate; the next writer goes when it is dropped.
pub struct GatePass {
    gate: Arc<WriteGate>,
}

impl WriteGate {
    pub(super) fn new(path: &str) -> Self {
        WriteGate {
            tickets: Mutex::default(),
            path: path.to_string(),
            writer: Mutex::new(None),
            commits: Default::default(),
        }
    }

    fn open(&self) -> diesel::QueryResult<SqliteConnection> {
        let mut c = SqliteConnection::establish(&self.path)
            .map_err(|e| diesel::result::Error::QueryBuilderError(Box::new(e)))?;
        c.batch_execute(SQLITE_PRAGMAS)?;
        Ok(c)
    }

    /// The writer's connection, with a larger cache than a reader's: every step's writes
    /// pass through it. It checkpoints the log itself, in its turn, as SQLite does by default:
    /// a checkpoint run beside the writers never finds the log complete under a steady load,
    /// so the log never starts over and grows without end.
    fn open_writer(&self) -> diesel::QueryResult<Writer> {
        let mut c = self.open()?;
        c.batch_execute(SQLITE_WRITER_PRAGMAS)?;
        Ok(Writer { conn: DbConnection::Sqlite(c), batch: None, held_since: None, contended: None })
    }

    fn others_waiting(&self) -> bool {
        let t = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        t.next > t.serving + 1
    }

    /// Runs `f` as one step of a write transaction on the writer connection, when its turn
    /// comes, and returns once what it wrote is committed.
    ///
    /// Group commit: while other writers are queued, the transaction is left open for them,
    /// each step in a savepoint of its own (a step that fails is rolled back alone), and the
    /// last of them commits for all. Committing costs about as much for many steps as for one
    /// (the pages the steps share are written to the log once), so under load the queue
    /// drains faster; with no queue every step commits at once, as before.
    pub(super) fn write<T, E, F>(self: &Arc<Self>, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        let turn = self.enter();
        let mut slot = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        // A writer whose transaction is not where the batch left it (a step that panicked or
        // an error that ended the transaction) is never used again.
        if let Some(w) = slot.as_mut() {
            let expected = if w.batch.is_some() { 1 } else { 0 };
            if depth(&mut w.conn) != Some(expected) {
                if let Some(batch) = slot.take().and_then(|w| w.batch) {
                    batch.outcome.end(Err("the database connection was left in a bad state".into()));
                }
            }
        }
        let w = match &mut *slot {
            Some(w) => w,
            empty => empty.insert(self.open_writer()?),
        };
        if w.batch.is_none() {
            let DbConnection::Sqlite(c) = &mut w.conn else { unreachable!("the gate is SQLite's") };
            let asked = Instant::now();
            begin_immediate(c)?;
            let began = Instant::now();
            // This process's writers take turns at the gate, so only another process can have
            // kept the lock from this one.
            if began - asked > Duration::from_millis(2) {
                w.contended = Some(began);
            }
            w.held_since.get_or_insert(began);
            w.batch = Some(Batch { outcome: Arc::default(), steps: 0, began: Instant::now() });
        }
        // Inside the open transaction, this is a savepoint.
        let conn = &mut w.conn;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || in_transaction(conn, f)));
        let sound = depth(&mut w.conn) == Some(1);
        let Some(batch) = w.batch.as_mut() else { unreachable!("a batch was begun above") };
        batch.steps += 1;
        let result = match result {
            Ok(result) if sound => result,
            other => {
                // The transaction is lost, and with it every step of the batch.
                let outcome = batch.outcome.clone();
                if let Some(mut w) = slot.take() {
                    let _ = DbConnection::rollback_transaction(&mut w.conn);
                }
                outcome.end(Err("a step failed in a way that ended its transaction".into()));
                drop(slot);
                drop(turn);
                return match other {
                    Ok(Err(e)) => Err(e),
                    Ok(Ok(_)) => Err(E::from(batch_lost("the transaction ended early"))),
                    Err(panic) => std::panic::resume_unwind(panic),
                };
            }
        };
        let outcome = batch.outcome.clone();
        let commit_now =
            batch.steps >= BATCH_STEPS || batch.began.elapsed() >= BATCH_AGE || !self.others_waiting();
        if commit_now {
            w.batch = None;
            let committed = DbConnection::commit_transaction(&mut w.conn);
            self.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if !idle(&mut w.conn) {
                let _ = DbConnection::rollback_transaction(&mut w.conn);
                if !idle(&mut w.conn) {
                    *slot = None;
                }
            }
            outcome.end(committed.as_ref().map(|_| ()).map_err(|e| e.to_string()));
            let pause = match slot.as_mut() {
                Some(w) if !self.others_waiting() => {
                    w.held_since = None;
                    false
                }
                Some(w) => {
                    let long = w.held_since.is_some_and(|t| t.elapsed() >= HOLD_LIMIT);
                    let shared = w.contended.is_some_and(|t| t.elapsed() < CONTENTION_MEMORY);
                    if long && shared {
                        w.held_since = None;
                    }
                    long && shared
                }
                None => false,
            };
            drop(slot);
            if pause {
                // The turn is still held, so this process's next writer waits too.
                std::thread::sleep(HOLD_PAUSE);
            }
            drop(turn);
            committed?;
            result
        } else {
            drop(slot);
            drop(turn);
            // A step that failed wrote nothing that is still there: it need not wait.
            if result.is_ok() {
                outcome.wait()?;
            }
            result
        }
    }

    /// Takes a ticket and waits for its turn. Each waiter sleeps until woken by name, so a
    /// long queue costs one wake-up per turn rather than waking every waiter to check.
    pub(super) fn enter(self: &Arc<Self>) -> GatePass {
        let mut t = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        let mine = t.next;
        t.next += 1;
        if t.serving != mine {
            t.waiting.insert(mine, std::thread::current());
            while t.serving != mine {
                drop(t);
                std::thread::park();
                t = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
            }
        }
        GatePass { gate: self.clone() }
    }
}

impl Drop for GatePass {
    fn drop(&mut self) {
        let mut t = self.gate.tickets.lock().unwrap_or_else(|e| e.into_inner());
        t.serving += 1;
        let next = t.serving;
        if let Some(waiter) = t.waiting.remove(&next) {
            waiter.unpark();
        }
    }
}

/// `BEGIN IMMEDIATE`, tried again a few times, after a short random pause, when another
/// process has held the write lock past `busy_timeout`: SQLite's own waiting polls the lock
/// and can keep missing the moments it is free while another process writes without pause.
/// Still busy after that, the error goes up, and the request is answered 503 with Retry-After.
fn begin_immediate(c: &mut SqliteConnection) -> diesel::QueryResult<()> {
    use rand::Rng;
    let mut tries = 0;
    loop {
        match AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE") {
            Err(e) if is_busy(&e) && tries < BUSY_RETRIES => {
                tries += 1;
                tracing::warn!(tries, "the database is locked by another process; trying again");
                std::thread::sleep(Duration::from_millis(rand::rng().random_range(5..=60)));
            }
            other => return other,
        }
    }
}

const BUSY_RETRIES: u32 = 3;

#[cfg(test)]
mod group_commit {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Duration;

    use diesel::sql_types::BigInt;
    use diesel::RunQueryDsl;

    use super::{DbConnection, WriteGate};

    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn sqlite(conn: &mut DbConnection) -> &mut diesel::SqliteConnection {
        match conn {
            DbConnection::Sqlite(c) => c,
            DbConnection::Pg(_) => unreachable!(),
        }
    }

    fn rows(gate: &Arc<WriteGate>) -> Vec<i64> {
        gate.write(|c| diesel::sql_query("SELECT n FROM t ORDER BY n").load::<Row>(sqlite(c)))
            .unwrap()
            .into_iter()
            .map(|r| r.n)
            .collect()
    }

    fn gate() -> (tempfile::TempDir, Arc<WriteGate>) {
        let dir = tempfile::tempdir().unwrap();
        let gate = Arc::new(WriteGate::new(dir.path().join("g.db").to_str().unwrap()));
        gate.write(|c| diesel::sql_query("CREATE TABLE t (n INTEGER PRIMARY KEY)").execute(sqlite(c)))
            .unwrap();
        (dir, gate)
    }

    fn insert(c: &mut DbConnection, n: i64) -> diesel::QueryResult<usize> {
        diesel::sql_query(format!("INSERT INTO t (n) VALUES ({n})")).execute(sqlite(c))
    }

    /// Starts one writer per closure, each only once the one before holds its ticket, so they
    /// queue in this order behind the turn the caller holds.
    type Step<T> = Box<dyn FnOnce(&Arc<WriteGate>) -> T + Send>;

    fn queue<T: Send + 'static>(
        gate: &Arc<WriteGate>,
        steps: Vec<Step<T>>,
    ) -> Vec<std::thread::JoinHandle<T>> {
        let held = gate.enter();
        let base = gate.tickets.lock().unwrap().next;
        let mut threads = vec![];
        for (i, step) in steps.into_iter().enumerate() {
            let g = gate.clone();
            threads.push(std::thread::spawn(move || step(&g)));
            while gate.tickets.lock().unwrap().next < base + i as u64 + 1 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        drop(held);
        threads
    }

    /// Queued writers share a transaction; each step that fails is undone alone, and every
    /// step that succeeded is committed before its writer hears so.
    #[test]
    fn queued_steps_commit_together_and_fail_alone() {
        let (_dir, gate) = gate();
        let before = gate.commits.load(Ordering::Relaxed);
        let steps = (1..=20i64)
            .map(|n| {
                Box::new(move |g: &Arc<WriteGate>| {
                    g.write(|c| {
                        insert(c, n)?;
                        if n % 3 == 0 {
                            Err(diesel::result::Error::NotFound)
                        } else {
                            Ok(n)
                        }
                    })
                }) as Step<diesel::QueryResult<i64>>
            })
            .collect();
        let results: Vec<_> = queue(&gate, steps).into_iter().map(|t| t.join().unwrap()).collect();
        let ok: Vec<i64> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
        assert_eq!(ok, (1..=20).filter(|n| n % 3 != 0).collect::<Vec<_>>());
        assert_eq!(rows(&gate), ok);
        let commits = gate.commits.load(Ordering::Relaxed) - before - 1;
        assert!(commits <= 5, "20 queued steps took {commits} commits");
    }

    /// A step that panics loses its batch: the steps before it in the batch are told they
    /// failed (none waits for ever), and the writers after it go on with a fresh connection.
    #[test]
    fn a_panic_fails_its_batch_and_nothing_else() {
        let (_dir, gate) = gate();
        let steps: Vec<Step<diesel::QueryResult<usize>>> = vec![
            Box::new(|g| g.write(|c| insert(c, 1))),
            Box::new(|g| {
                g.write(|c| {
                    insert(c, 2)?;
                    panic!("a step that panics")
                })
            }),
            Box::new(|g| g.write(|c| insert(c, 3))),
        ];
        let results: Vec<_> = queue(&gate, steps).into_iter().map(|t| t.join()).collect();
        assert!(matches!(results[0], Ok(Err(_))), "the step before the panic must fail");
        assert!(results[1].is_err(), "the panic goes on up its own thread");
        assert!(matches!(results[2], Ok(Ok(1))));
        assert_eq!(rows(&gate), vec![3]);
        gate.write(|c| insert(c, 4)).unwrap();
        assert_eq!(rows(&gate), vec![3, 4]);
    }
}

#[cfg(test)]
mod order {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::WriteGate;

    /// Writers are let in in the order they came to the gate, not in whatever order the
    /// scheduler wakes them.
    #[test]
    fn writers_take_turns_in_the_order_they_came() {
        let gate = Arc::new(WriteGate::new(":unused:"));
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = gate.enter();
        let mut threads = vec![];
        for n in 0..6u64 {
            let (mine, order) = (gate.clone(), order.clone());
            threads.push(std::thread::spawn(move || {
                let _turn = mine.enter();
                order.lock().unwrap().push(n);
            }));
            // The next thread is started only once this one holds its ticket.
            while gate.tickets.lock().unwrap().next < n + 2 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        drop(first);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4, 5]);
    }
}
