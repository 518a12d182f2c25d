//! The database: one connection type over every supported backend, the pool, migrations and
//! the transaction helper every state change goes through.

pub mod schema;

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Every backend Redress can speak to. Queries are written once against this enum; code that
/// must differ per backend lives in this module only.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

/// The pool of one database, and for SQLite the gate its writers queue at.
#[derive(Clone)]
pub struct DbPool {
    inner: Pool<Manager>,
    backend: Backend,
    gate: Option<Arc<WriteGate>>,
}

impl DbPool {
    /// A connection from the pool. While it is held, write transactions on this thread queue
    /// at this database's gate.
    pub fn get(&self) -> Result<PooledConn, diesel::r2d2::PoolError> {
        Ok(self.held(self.inner.get()?))
    }

    /// A connection only if one is free at once.
    fn try_get(&self) -> Option<PooledConn> {
        Some(self.held(self.inner.try_get()?))
    }

    /// Makes this pool's gate the thread's while the connection is held. A thread that already
    /// holds a connection of another SQLite database could not tell which database a write is
    /// for: it then has no gate, and its writes wait on `busy_timeout` as other processes do.
    fn held(&self, conn: PooledConnection<Manager>) -> PooledConn {
        let outer = CURRENT_GATE.with(|g| {
            let outer = g.borrow().clone();
            let gate = match (&outer, &self.gate) {
                (Some(o), Some(mine)) if !Arc::ptr_eq(o, mine) => None,
                _ => self.gate.clone(),
            };
            *g.borrow_mut() = gate;
            outer
        });
        PooledConn { conn, outer }
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }
}

/// A pooled connection. Derefs to the connection itself.
pub struct PooledConn {
    conn: PooledConnection<Manager>,
    /// The gate in force on this thread before this connection was taken, put back when it is
    /// returned (a thread may hold connections of two databases, as the transfer does).
    outer: Option<Arc<WriteGate>>,
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        let outer = self.outer.take();
        CURRENT_GATE.with(|g| *g.borrow_mut() = outer);
    }
}

impl std::ops::Deref for PooledConn {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

thread_local! {
    /// The write gate of the database whose connection this thread holds, if it has one.
    static CURRENT_GATE: std::cell::RefCell<Option<Arc<WriteGate>>> = const { std::cell::RefCell::new(None) };
}

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
fn idle(conn: &mut DbConnection) -> bool {
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
    fn new(path: &str) -> Self {
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
    fn write<T, E, F>(self: &Arc<Self>, f: F) -> Result<T, E>
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
    fn enter(self: &Arc<Self>) -> GatePass {
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

/// Whether an error is SQLite's "database is locked" (or "busy"): another process held the
/// write lock for longer than `busy_timeout`.
pub fn is_busy(e: &diesel::result::Error) -> bool {
    match e {
        diesel::result::Error::DatabaseError(_, info) => {
            let m = info.message();
            m.contains("database is locked") || m.contains("database is busy")
        }
        _ => false,
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

/// Opens connections of the backend the URL named, and no other: diesel's own manager would
/// try each backend in turn and could open a SQLite file named after a PostgreSQL URL.
#[derive(Debug, Clone)]
pub struct Manager {
    backend: Backend,
}

impl diesel::r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        let conn = match &self.backend {
            Backend::Sqlite(path) => DbConnection::Sqlite(SqliteConnection::establish(path)?),
            Backend::Postgres(url) => DbConnection::Pg(PgConnection::establish(url)?),
        };
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1").map_err(diesel::r2d2::Error::QueryError)
    }

    /// A connection whose transaction could not be ended is not given out again. The pool asks
    /// this on every return, at no cost; `is_valid` (a query) is not asked on checkout.
    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        !idle(conn)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("DATABASE_URL {0:?} uses a scheme Redress does not know; use a file path or sqlite://PATH")]
    UnknownScheme(String),
    #[error("could not open the database: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("could not open the database: {0}")]
    Connection(#[from] diesel::ConnectionError),
    #[error("could not migrate the database: {0}")]
    Migration(String),
}

/// Which backend a URL names. Chosen from the scheme alone: an unknown scheme is an error,
/// never a SQLite file that happens to carry the URL as its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite(String),
    Postgres(String),
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, DbSetupError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Ok(Backend::Sqlite(path.to_string()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Backend::Postgres(url.to_string()));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(DbSetupError::UnknownScheme(format!("{scheme}://")));
        }
        if url.is_empty() {
            return Err(DbSetupError::UnknownScheme(String::new()));
        }
        Ok(Backend::Sqlite(url.to_string()))
    }
}

#[derive(Debug)]
struct SqlitePragmas;

/// What the writer's connection sets besides `SQLITE_PRAGMAS`.
pub const SQLITE_WRITER_PRAGMAS: &str = "PRAGMA cache_size = -16384;";

/// Every SQLite connection's settings. Temporary data, statement journals included, stays in
/// memory (a step's statement journal otherwise spills to a file). Each connection keeps a
/// 1 MiB page cache: the operating system's file cache serves the rest, and a pool of many
/// connections would otherwise hold many copies of the same pages.
pub const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; \
     PRAGMA cache_size = -1024;";

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Sqlite(c) = conn {
            c.batch_execute(SQLITE_PRAGMAS).map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Opens the pool and brings the schema up to date.
pub fn connect(url: &str, max_size: u32) -> Result<DbPool, DbSetupError> {
    let backend = Backend::from_url(url)?;
    let gate = match &backend {
        Backend::Sqlite(path) => Some(Arc::new(WriteGate::new(path))),
        Backend::Postgres(_) => None,
    };
    let manager = Manager { backend: backend.clone() };
    // SQLite connections are cheap, and readers never wait for the writer: enough of them
    // that requests queue at the writers' gate, in order, rather than for a connection.
    let max_size = match backend {
        Backend::Sqlite(_) => max_size * 4,
        Backend::Postgres(_) => max_size,
    };
    let inner = Pool::builder()
        .max_size(max_size)
        .min_idle(Some(max_size.min(2)))
        .connection_timeout(Duration::from_secs(10))
        .test_on_check_out(false)
        .connection_customizer(Box::new(SqlitePragmas))
        .build(manager)?;
    let pool = DbPool { inner, backend, gate };
    let mut conn = pool.get()?;
    run_migrations(&mut conn)?;
    drop(conn);
    Ok(pool)
}

pub fn run_migrations(conn: &mut DbConnection) -> Result<(), DbSetupError> {
    let result = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        DbConnection::Pg(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
    };
    result.map_err(|e| DbSetupError::Migration(e.to_string()))
}

/// Within a write transaction, keeps any other from adding an organisation until it ends, so
/// that checks over all organisations (first-run setup, unique reference prefixes) hold when
/// the row is inserted. SQLite's `BEGIN IMMEDIATE` already lets one writer in at a time.
pub fn lock_organisations(conn: &mut DbConnection) -> diesel::QueryResult<()> {
    if let DbConnection::Pg(c) = conn {
        let lock = diesel::sql_query("LOCK TABLE organisations IN SHARE ROW EXCLUSIVE MODE");
        diesel::RunQueryDsl::execute(lock, c)?;
    }
    Ok(())
}

/// Runs `f` in one transaction that holds the write lock from its first statement. On SQLite
/// a deferred transaction that reads and then writes can fail with SQLITE_BUSY without waiting;
/// `BEGIN IMMEDIATE` makes it queue behind other writers instead.
pub fn write_tx<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    // Only the outermost transaction takes the lock; nested ones become savepoints.
    let outermost = DbConnection::transaction_manager_status_mut(conn).transaction_depth()?.is_none();
    if let (DbConnection::Sqlite(_), true) = (&*conn, outermost) {
        if let Some(gate) = CURRENT_GATE.with(|g| g.borrow().clone()) {
            return gate.write(f);
        }
    }
    in_transaction(conn, f)
}

/// `f` in a transaction on `conn`: on SQLite, an outermost one begins `IMMEDIATE`.
fn in_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let outermost = DbConnection::transaction_manager_status_mut(conn).transaction_depth()?.is_none();
    match conn {
        DbConnection::Sqlite(c) if outermost => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        _ => DbConnection::begin_transaction(conn)?,
    }
    match f(conn) {
        Ok(value) => {
            DbConnection::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => {
            DbConnection::rollback_transaction(conn)?;
            Err(e)
        }
    }
}

/// Runs a query on the backend's own connection rather than through the `DbConnection` enum.
/// A query through the enum writes out its SQL again on every run, even when the statement is
/// in the cache; on the backend's connection a cached statement only binds its values. For
/// the look-ups every page and step makes; anything else can go through the enum.
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite($c) => $body,
            $crate::db::DbConnection::Pg($c) => $body,
        }
    };
}

/// Runs reads that belong together in one read transaction on SQLite: one snapshot, and one
/// shared lock instead of one per statement. On PostgreSQL each statement already sees a
/// consistent snapshot, and a transaction would cost two more round trips.
pub fn read_tx<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        DbConnection::Sqlite(_) => conn.transaction(f),
        DbConnection::Pg(_) => f(conn),
    }
}

/// Database time: UTC, naive, to the microsecond (PostgreSQL keeps no more, so values compare
/// equal after a round trip on either backend).
pub fn to_db_time(t: DateTime<Utc>) -> NaiveDateTime {
    t.trunc_subsecs(6).naive_utc()
}

pub fn from_db_time(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Runs a short read of a few rows by key, such as a case page's. On SQLite, when a connection
/// is free at once, it runs right here on the async worker: such a read takes microseconds,
/// less than handing it to a blocking thread and back. Otherwise, and always on PostgreSQL
/// (whose reads wait on the network), it runs as `run` does. Never for a read whose size
/// depends on the data, nor for writes.
pub async fn read_by_key<T, F>(pool: &DbPool, f: F) -> crate::error::AppResult<T>
where
    F: FnOnce(&mut DbConnection) -> crate::error::AppResult<T> + Send + 'static,
    T: Send + 'static,
{
    if matches!(pool.backend, Backend::Sqlite(_)) {
        if let Some(mut conn) = pool.try_get() {
            return read_tx(&mut conn, f);
        }
    }
    run(pool, move |conn| read_tx(conn, f)).await
}

/// Runs blocking database work off the async workers, with a pooled connection that never
/// crosses an `.await`.
pub async fn run<T, F>(pool: &DbPool, f: F) -> crate::error::AppResult<T>
where
    F: FnOnce(&mut DbConnection) -> crate::error::AppResult<T> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    // The request's span (its id, actor and case) follows the work onto the blocking thread,
    // so what the use cases log is tied to the request.
    let span = tracing::Span::current();
    actix_web::web::block(move || {
        let _entered = span.enter();
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await?
}

#[cfg(test)]
mod tests {
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
