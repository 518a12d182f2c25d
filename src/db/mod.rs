//! The database: one connection type over every supported backend, the pool, migrations and
//! the transaction helper every state change goes through.

mod gate;
pub mod schema;

pub use crate::error::is_busy;
use gate::idle;
pub use gate::{GatePass, WriteGate};

use std::sync::Arc;
use std::time::Duration;

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
