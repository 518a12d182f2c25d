//! Fresh databases, a realistic organisation with real cases made through the library, and
//! bulk copies of those cases to any size.
//!
//! The copies are made in SQL from a real template row of each table, column by column as the
//! database lists them: a column the bulk insert does not know about is copied from the
//! template, so the seeding keeps working when migrations add columns (or triggers).

use std::time::Instant;

use chrono::{DateTime, Datelike, Duration as Days, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use redress::db::schema::{case_events, case_tokens, cases, outbox};
use redress::db::{DbConnection, DbPool};
use redress::domain::{Action, Actor};
use redress::services::{self, ActorRef, OrgInput, RemovalInput, Services};

pub const ORG_SLUG: &str = "bench";
pub const PREFIX: &str = "BEN";
pub const RULE: &str = "3a";
pub const MODERATOR: &str = "moderator@bench.example";
pub const PASSWORD: &str = "bench: a long pass phrase nobody guesses 7";

pub fn services() -> Result<Services, String> {
    let emails = redress::mail::EmailTemplates::load(None).map_err(|e| e.to_string())?;
    Ok(Services { base_url: "http://127.0.0.1:1".into(), emails })
}

/// Where the benchmark makes its databases: temp SQLite files, or databases of their own on a
/// PostgreSQL server (dropped at the end).
pub enum Backend {
    Sqlite { dir: std::path::PathBuf },
    Postgres { admin_url: String, made: std::cell::RefCell<Vec<String>> },
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite { .. } => "SQLite",
            Backend::Postgres { .. } => "PostgreSQL",
        }
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self, Backend::Sqlite { .. })
    }

    /// The URL of a new, empty database called after `name`.
    pub fn fresh(&self, name: &str) -> Result<String, String> {
        match self {
            Backend::Sqlite { dir } => {
                let path = dir.join(format!("{name}.db"));
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                Ok(path.display().to_string())
            }
            Backend::Postgres { admin_url, made } => {
                let db = format!("bench_{}_{name}", std::process::id());
                let mut admin = diesel::PgConnection::establish(admin_url)
                    .map_err(|e| format!("cannot connect to {admin_url}: {e}"))?;
                // One statement per call: several in one call run as one transaction, which
                // PostgreSQL refuses for these.
                for sql in [format!("DROP DATABASE IF EXISTS {db}"), format!("CREATE DATABASE {db}")] {
                    admin.batch_execute(&sql).map_err(|e| format!("cannot create database {db}: {e}"))?;
                }
                made.borrow_mut().push(db.clone());
                Ok(with_database(admin_url, &db))
            }
        }
    }

    /// Drops the PostgreSQL databases made (SQLite files go with the temp folder).
    pub fn clean_up(&self) {
        if let Backend::Postgres { admin_url, made } = self {
            if let Ok(mut admin) = diesel::PgConnection::establish(admin_url) {
                for db in made.borrow_mut().drain(..) {
                    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
                }
            }
        }
    }
}

/// `url` with its database name replaced.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_and_path = &base[scheme_end..];
    let host = host_and_path.split('/').next().unwrap_or(host_and_path);
    format!("{}{host}/{db}{query}", &base[..scheme_end])
}

pub fn open(url: &str) -> Result<DbPool, String> {
    redress::db::connect(url, 2).map_err(|e| e.to_string())
}

/// The organisation and the real cases every copy is made from.
#[derive(Debug, Clone)]
pub struct Setup {
    pub api_token: String,
    /// A closed case (its appeal window passed).
    pub history: redress::ids::CaseId,
    /// An appeal whose response deadline passed long ago (not yet swept).
    pub past_due: redress::ids::CaseId,
    /// An appeal whose response deadline is days away.
    pub future_due: redress::ids::CaseId,
    /// A removal just recorded, notice queued by email.
    pub notice: redress::ids::CaseId,
    pub notice_reference: String,
    /// A removal recorded without an email address: its private link's secret.
    pub link_secret: String,
    pub event_template: String,
    pub outbox_template: String,
    pub token_template: String,
}

pub fn removal_input(email: Option<&str>) -> RemovalInput {
    RemovalInput {
        platform: Some("Facebook".into()),
        content_url: Some("https://www.facebook.com/penrithclp/posts/1234567890123456".into()),
        content_text: Some(
            "You're all a bunch of liars and anyone who votes for you is an idiot. Everyone knows \
             what the councillor for Eden ward gets up to after the meetings, and I'll be telling \
             the whole town about it at the market on Saturday."
                .into(),
        ),
        author_name: Some("Sam Poster".into()),
        author_email: email.map(str::to_string),
        rule_codes: Some(vec![RULE.into()]),
        explanation: Some(
            "Your comment attacked people rather than their views and made an allegation about a \
             named councillor that we cannot publish. Our policy asks commenters to criticise \
             views, never people."
                .into(),
        ),
        notice_method: None,
        reason_id: None,
    }
}

pub const APPEAL_WORDS: &str = "I was criticising the council's decision on the car park, not any person. \
    The remark about the councillor was a joke that everyone at the market would understand.";

fn err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{what}: {e}")
}

/// Makes the organisation, its staff and rule and API token, and the template cases, all
/// through the library as the server and the command line would.
pub fn setup(conn: &mut DbConnection, svc: &Services, now: DateTime<Utc>) -> Result<Setup, String> {
    services::add_org(
        conn,
        OrgInput {
            slug: ORG_SLUG.into(),
            name: "Benchmark Borough Council".into(),
            secretary_email: "secretary@bench.example".into(),
            reference_prefix: Some(PREFIX.into()),
            ..Default::default()
        },
        now,
    )
    .map_err(err("add organisation"))?;
    services::add_rule(
        conn,
        ORG_SLUG,
        RULE,
        "Personal attacks",
        "Criticise views, never people. Comments that insult or make allegations about named people are removed.",
        services::ChangedBy::CommandLine,
        now,
    )
    .map_err(err("add rule"))?;
    services::add_user(
        conn,
        ORG_SLUG,
        services::NewMember {
            email: MODERATOR,
            name: "Mo Moderator",
            role: "moderator",
            password: Some(PASSWORD),
        },
        services::ChangedBy::CommandLine,
        now,
    )
    .map_err(err("add moderator"))?;
    services::add_user(
        conn,
        ORG_SLUG,
        services::NewMember {
            email: "secretary@bench.example",
            name: "Sid Secretary",
            role: "secretary",
            password: None,
        },
        services::ChangedBy::CommandLine,
        now,
    )
    .map_err(err("add secretary"))?;
    services::add_user(
        conn,
        ORG_SLUG,
        services::NewMember {
            email: "committee@bench.example",
            name: "Chris Committee",
            role: "committee",
            password: None,
        },
        services::ChangedBy::CommandLine,
        now,
    )
    .map_err(err("add committee member"))?;
    let api_token =
        services::add_token(conn, ORG_SLUG, MODERATOR, "benchmark", None, now).map_err(err("add token"))?;
    let staff = services::authenticate_token(conn, &api_token).map_err(err("token"))?;
    let poster = ActorRef::without_account(Actor::Poster);
    let system_sweep = |conn: &mut DbConnection, at| services::sweep(conn, svc, at).map_err(err("sweep"));
    let record = |conn: &mut DbConnection, email: Option<&str>, at| {
        services::record_removal(conn, svc, &staff, removal_input(email), at).map_err(err("record removal"))
    };

    // A case whose appeal window passed: closed by the sweep, as history is.
    let history = record(conn, Some("sam.poster@example.net"), now - Days::days(120))?.case;
    let swept = system_sweep(conn, now - Days::days(80))?;
    if swept.closed.len() != 1 {
        return Err(format!("the history template did not close: {swept:?}"));
    }
    // An appeal answered by nobody, its response deadline weeks ago.
    let past = record(conn, Some("sam.poster@example.net"), now - Days::days(60))?.case;
    services::act(
        conn,
        svc,
        &past.id,
        Action::LodgeAppeal,
        &poster,
        Some(APPEAL_WORDS),
        now - Days::days(59),
    )
    .map_err(err("appeal"))?;
    // An appeal lodged now: its response deadline is days away.
    let future = record(conn, Some("sam.poster@example.net"), now)?.case;
    services::act(conn, svc, &future.id, Action::LodgeAppeal, &poster, Some(APPEAL_WORDS), now)
        .map_err(err("appeal"))?;
    // A fresh removal: notice queued.
    let notice = record(conn, Some("sam.poster@example.net"), now)?.case;
    // A removal without an address: the moderator is handed the private link.
    let linked = record(conn, None, now)?;
    let link = linked.private_link.ok_or("a removal without an email address gave no private link")?;
    let link_secret = link.rsplit('/').next().unwrap_or_default().to_string();

    let event_template: String = case_events::table
        .filter(case_events::case_id.eq(&notice.id))
        .order(case_events::seq)
        .select(case_events::id)
        .first(conn)
        .map_err(err("event template"))?;
    let outbox_template: String = outbox::table
        .filter(outbox::case_id.eq(&notice.id))
        .order(outbox::created_at)
        .select(outbox::id)
        .first(conn)
        .map_err(err("outbox template"))?;
    let token_template: String = case_tokens::table
        .filter(case_tokens::case_id.eq(&linked.case.id))
        .select(case_tokens::id)
        .first(conn)
        .map_err(err("token template"))?;
    Ok(Setup {
        api_token,
        history: history.id,
        past_due: past.id,
        future_due: future.id,
        notice_reference: notice.reference.clone(),
        notice: notice.id,
        link_secret,
        event_template,
        outbox_template,
        token_template,
    })
}

/// What kind of copies to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Closed cases, created over the past year.
    History,
    /// Removals whose appeal window is still open.
    Notice,
    /// Appeals with a response deadline days away.
    FutureDue,
    /// Appeals with a response deadline passed.
    PastDue,
}

pub struct Seeder<'a> {
    conn: &'a mut DbConnection,
    setup: &'a Setup,
    pg: bool,
    /// The next number to give a copy; every copy in a database has its own.
    next: i64,
    base: DateTime<Utc>,
    year: i32,
    columns: [(&'static str, Vec<String>); 4],
}

#[derive(QueryableByName)]
struct ColumnName {
    #[diesel(sql_type = Text)]
    name: String,
}

fn columns_of(conn: &mut DbConnection, table: &str) -> Result<Vec<String>, String> {
    let rows: Vec<ColumnName> = match conn {
        DbConnection::Sqlite(c) => {
            diesel::sql_query(format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid")).load(c)
        }
        DbConnection::Pg(c) => diesel::sql_query(format!(
            "SELECT column_name::text AS name FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY ordinal_position"
        ))
        .load(c),
    }
    .map_err(|e| format!("columns of {table}: {e}"))?;
    if rows.is_empty() {
        return Err(format!("table {table} has no columns"));
    }
    Ok(rows.into_iter().map(|r| r.name).collect())
}

impl<'a> Seeder<'a> {
    pub fn new(conn: &'a mut DbConnection, setup: &'a Setup, now: DateTime<Utc>) -> Result<Self, String> {
        let pg = matches!(conn, DbConnection::Pg(_));
        let columns = [
            ("cases", columns_of(conn, "cases")?),
            ("case_events", columns_of(conn, "case_events")?),
            ("outbox", columns_of(conn, "outbox")?),
            ("case_tokens", columns_of(conn, "case_tokens")?),
        ];
        Ok(Self { conn, setup, pg, next: 1, base: now, year: now.year() - 2, columns })
    }

    /// A UUID-shaped id for copy `i` of a table (`tag` is one hex digit per table).
    fn id(&self, tag: char, i: &str) -> String {
        if self.pg {
            format!("('{tag}0000000-0000-4000-8000-' || lpad(({i})::text, 12, '0'))")
        } else {
            format!("printf('{tag}0000000-0000-4000-8000-%012d', {i})")
        }
    }

    /// The seeding instant moved by `secs` seconds (an SQL integer expression).
    fn time(&self, secs: &str) -> String {
        let base = self.base.format("%Y-%m-%d %H:%M:%S");
        if self.pg {
            format!("(TIMESTAMP '{base}' + ({secs}) * INTERVAL '1 second')")
        } else {
            format!("strftime('%Y-%m-%d %H:%M:%f', '{base}', ({secs}) || ' seconds')")
        }
    }

    fn random_hash(&self) -> String {
        if self.pg {
            "(md5(random()::text) || md5(random()::text))".into()
        } else {
            "lower(hex(randomblob(32)))".into()
        }
    }

    /// `INSERT INTO table (every column) SELECT (override or the template's) FROM numbers, template`.
    fn copy_sql(
        &self,
        table: usize,
        template_id: &str,
        from: i64,
        to: i64,
        overrides: &[(&str, String)],
    ) -> String {
        let (name, cols) = &self.columns[table];
        let exprs: Vec<String> = cols
            .iter()
            .map(|c| {
                overrides
                    .iter()
                    .find(|(o, _)| o == c)
                    .map(|(_, e)| e.clone())
                    .unwrap_or_else(|| format!("t.{c}"))
            })
            .collect();
        let (with, numbers) = if self.pg {
            (String::new(), format!("generate_series({from}, {to}) AS n(i)"))
        } else {
            (
                format!(
                    "WITH RECURSIVE n(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM n WHERE i < {to}) "
                ),
                "n".into(),
            )
        };
        format!(
            "{with}INSERT INTO {name} ({}) SELECT {} FROM {numbers} CROSS JOIN {name} t WHERE t.id = '{template_id}'",
            cols.join(", "),
            exprs.join(", ")
        )
    }

    /// Adds `count` copies of the template case of `kind`, each with one event, one email
    /// (sent) and one private link, in transactions of 50,000 cases.
    pub fn add(&mut self, kind: Kind, count: i64) -> Result<(), String> {
        const CHUNK: i64 = 50_000;
        let template = match kind {
            Kind::History => &self.setup.history,
            Kind::Notice => &self.setup.notice,
            Kind::FutureDue => &self.setup.future_due,
            Kind::PastDue => &self.setup.past_due,
        }
        .clone();
        let mut done = 0;
        while done < count {
            let n = CHUNK.min(count - done);
            let (from, to) = (self.next, self.next + n - 1);
            let statements = self.chunk_sql(kind, &template, from, to);
            let run = |conn: &mut DbConnection| -> Result<(), diesel::result::Error> {
                for s in &statements {
                    conn.batch_execute(s)?;
                }
                Ok(())
            };
            redress::db::write_tx(self.conn, run).map_err(|e| format!("seeding: {e}"))?;
            self.next += n;
            done += n;
        }
        Ok(())
    }

    fn chunk_sql(&self, kind: Kind, template: &str, from: i64, to: i64) -> Vec<String> {
        let i = "n.i";
        let case_id = self.id('c', i);
        let event_id = self.id('e', i);
        let outbox_id = self.id('a', i);
        let pad = if self.pg { format!("lpad(({i})::text, 7, '0')") } else { format!("printf('%07d', {i})") };
        let mut case = vec![
            ("id", case_id.clone()),
            ("reference", format!("'{PREFIX}-{}-' || {pad}", self.year)),
            ("ref_year", self.year.to_string()),
            ("ref_number", i.to_string()),
        ];
        // History is spread over the past year, a case every 30 seconds, each closed 29 days
        // after it opened; open cases keep their template's times and deadline.
        let (created, closed) = if kind == Kind::History {
            let created = self.time(&format!("-(30 * {i}) - 2592000"));
            let closed = self.time(&format!("-(30 * {i}) - 2592000 + 2505600"));
            case.extend([
                ("created_at", created.clone()),
                ("updated_at", closed.clone()),
                ("closed_at", closed.clone()),
            ]);
            (Some(created), Some(closed))
        } else {
            (None, None)
        };
        let mut event = vec![("id", event_id.clone()), ("case_id", case_id.clone())];
        let mut mail = vec![
            ("id", outbox_id.clone()),
            ("case_id", case_id.clone()),
            ("event_id", event_id.clone()),
            ("status", "'sent'".to_string()),
            ("attempts", "1".to_string()),
            ("locked_until", "NULL".to_string()),
            ("last_error", "NULL".to_string()),
            ("sent_at", "t.created_at".to_string()),
        ];
        let mut token = vec![
            ("id", self.id('b', i)),
            ("case_id", case_id),
            ("token_hash", self.random_hash()),
            ("revoked_at", "NULL".to_string()),
            ("outbox_id", outbox_id),
        ];
        if let (Some(created), Some(_closed)) = (created, closed) {
            event.push(("created_at", created.clone()));
            mail.extend([
                ("created_at", created.clone()),
                ("next_attempt_at", created.clone()),
                ("sent_at", created.clone()),
            ]);
            token.push(("created_at", created));
        }
        vec![
            self.copy_sql(0, template, from, to, &case),
            self.copy_sql(1, &self.setup.event_template, from, to, &event),
            self.copy_sql(2, &self.setup.outbox_template, from, to, &mail),
            self.copy_sql(3, &self.setup.token_template, from, to, &token),
        ]
    }

    /// Statistics for the query planner after a bulk load: PostgreSQL's autovacuum would
    /// gather them soon after; SQLite gathers none unless asked, and Redress never asks, so
    /// SQLite is left as a real deployment would be.
    pub fn finish(self) -> Result<(), String> {
        if self.pg {
            self.conn.batch_execute("ANALYZE").map_err(|e| format!("analyze: {e}"))?;
        }
        Ok(())
    }
}

/// Counts for the report: all cases, open ones, and open ones whose deadline has passed.
/// Writes a freshly seeded database out to disk before anything is measured: otherwise the
/// first checkpoint's fsync after seeding waits for gigabytes of the seeding's dirty pages,
/// and the first seconds of the next measurement measure the disk.
pub fn settle(conn: &mut DbConnection) -> Result<(), String> {
    match conn {
        // The bulk copies filled the search index in a few huge segments, which the first
        // thousands of writes would then pay to merge; a database grown one case at a time has
        // merged as it went. Merging them now measures that steady state.
        DbConnection::Sqlite(c) => c
            .batch_execute(
                "INSERT INTO case_search(case_search) VALUES('optimize'); PRAGMA wal_checkpoint(TRUNCATE);",
            )
            .map_err(|e| e.to_string())?,
        DbConnection::Pg(c) => c.batch_execute("CHECKPOINT").map_err(|e| e.to_string())?,
    }
    let synced = std::process::Command::new("sync").status().map_err(|e| format!("sync: {e}"))?;
    if !synced.success() {
        return Err(format!("sync failed: {synced}"));
    }
    Ok(())
}

pub fn counts(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<(i64, i64, i64), String> {
    let total: i64 = cases::table.count().get_result(conn).map_err(|e| e.to_string())?;
    let open: i64 = cases::table
        .filter(cases::closed_at.is_null())
        .count()
        .get_result(conn)
        .map_err(|e| e.to_string())?;
    let due: i64 = cases::table
        .filter(cases::closed_at.is_null())
        .filter(cases::overdue.eq(false))
        .filter(cases::due_at.lt(redress::db::to_db_time(now)))
        .count()
        .get_result(conn)
        .map_err(|e| e.to_string())?;
    Ok((total, open, due))
}

/// A fresh database with the organisation and template cases only.
pub fn prepare(url: &str, now: DateTime<Utc>) -> Result<(DbPool, Setup), String> {
    let pool = open(url)?;
    let svc = services()?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let setup = setup(&mut conn, &svc, now)?;
    drop(conn);
    Ok((pool, setup))
}

/// How many cases of each kind a database should hold (the template cases count among them).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sizes {
    pub history: i64,
    pub notice: i64,
    pub future: i64,
    pub past: i64,
}

/// Adds copies until the database holds `sizes`; returns how long it took.
pub fn grow(
    pool: &DbPool,
    setup: &Setup,
    now: DateTime<Utc>,
    sizes: Sizes,
) -> Result<std::time::Duration, String> {
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut seeder = Seeder::new(&mut conn, setup, now)?;
    // The setup made one case of each kind, and two notices (one handed over by link).
    seeder.add(Kind::History, sizes.history - 1)?;
    seeder.add(Kind::Notice, sizes.notice - 2)?;
    seeder.add(Kind::FutureDue, sizes.future - 1)?;
    seeder.add(Kind::PastDue, sizes.past - 1)?;
    seeder.finish()?;
    Ok(start.elapsed())
}
