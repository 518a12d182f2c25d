//! Paged lists and search: the API's list of cases, the work queue, the committee's view and
//! the outbox, each read one page at a time.
//!
//! Every list has a fixed order ending in the row's id, and a page starts after the last row of
//! the one before (a keyset cursor), so a page is one range of one index however many cases
//! there are, and walking the pages gives every row that existed when the walk began exactly
//! once even while rows are added. Nothing here loads or counts all of an organisation's cases:
//! the counts of the work queue stop at [`COUNT_CAP`].

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use crate::db::schema::{cases, outbox};
use crate::db::{to_db_time, DbConnection};
use crate::domain::deadline::start_of_local_day;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::store::{CaseRow, OutboxRow};

/// Rows in a page when the request does not say.
pub const DEFAULT_LIMIT: i64 = 50;
/// The most rows one page may hold.
pub const MAX_LIMIT: i64 = 200;
/// The work queue's counts stop here ("1,000+"): counting further would cost in proportion to
/// the organisation's open cases.
pub const COUNT_CAP: i64 = 1000;
/// The longest search accepted, in characters, and the most words used from it.
pub const SEARCH_MAX_CHARS: usize = 200;
const SEARCH_MAX_WORDS: usize = 12;

/// One page of a list, and where the next one starts (none on the last page).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub next: Option<Cursor>,
}

/// The order a cursor belongs to: a cursor from one list is refused by another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Cases, newest first: created_at, then id, both descending.
    Newest,
    /// Closed cases, most recently closed first: closed_at, then id, both descending.
    RecentlyClosed,
    /// Open cases as the work queue shows them: overdue first, then due soonest (cases without
    /// a deadline, such as those waiting for an answer, last), then id.
    Queue,
    /// Emails, newest first: created_at, then id, both descending.
    Outbox,
}

impl Order {
    fn tag(self) -> char {
        match self {
            Order::Newest => 'n',
            Order::RecentlyClosed => 'c',
            Order::Queue => 'q',
            Order::Outbox => 'o',
        }
    }

    fn from_tag(tag: &str) -> Option<Self> {
        Some(match tag {
            "n" => Order::Newest,
            "c" => Order::RecentlyClosed,
            "q" => Order::Queue,
            "o" => Order::Outbox,
            _ => return None,
        })
    }
}

/// Where a page starts: the sort key of the last row of the page before. Given out as an
/// opaque string (hex), so that clients pass it back rather than build one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub order: Order,
    /// The work queue's group (see [`queue_segment`]); 0 for the other lists.
    pub segment: u8,
    /// The last row's time key (none for a queue row without a deadline).
    pub at: Option<NaiveDateTime>,
    pub id: String,
}

/// The message for any cursor that was not given out by this list.
pub const BAD_CURSOR: &str = "is not a page link this list gave out; start again from the first page";

impl Cursor {
    pub fn encode(&self) -> String {
        let at = match self.at {
            Some(t) => t.and_utc().timestamp_nanos_opt().unwrap_or(i64::MAX).to_string(),
            None => "-".into(),
        };
        hex::encode(format!("{}|{}|{}|{}", self.order.tag(), self.segment, at, self.id))
    }

    /// Reads a cursor given out for `order`; anything else is a validation error on `cursor`.
    pub fn decode(raw: &str, order: Order) -> AppResult<Cursor> {
        let bad = || AppError::field("cursor", BAD_CURSOR);
        if raw.len() > 400 {
            return Err(bad());
        }
        let bytes = hex::decode(raw).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let mut parts = text.splitn(4, '|');
        let (Some(tag), Some(segment), Some(at), Some(id)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if Order::from_tag(tag) != Some(order) {
            return Err(bad());
        }
        let segment: u8 = segment.parse().map_err(|_| bad())?;
        if segment > 3 || (order != Order::Queue && segment != 0) {
            return Err(bad());
        }
        let at = match at {
            "-" => None,
            n => Some(DateTime::from_timestamp_nanos(n.parse::<i64>().map_err(|_| bad())?).naive_utc()),
        };
        // Ids are UUIDs; anything else (a NUL above all, which PostgreSQL cannot compare) is
        // not ours.
        if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(bad());
        }
        if order != Order::Queue && at.is_none() {
            return Err(bad());
        }
        Ok(Cursor { order, segment, at, id: id.to_string() })
    }
}

/// `limit` from a request: absent or empty means [`DEFAULT_LIMIT`].
pub fn parse_limit(raw: Option<&str>) -> AppResult<i64> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(AppError::field("limit", format!("is a whole number from 1 to {MAX_LIMIT}"))),
        },
    }
}

/// The words of a search, each matched as a whole (a name, an address, a reference) and all
/// of them required. Never passed to the database as query syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    words: Vec<String>,
}

impl Search {
    /// None for an empty search. Words with no letter or digit in them (`"`, `*`, `-`) are
    /// left out: they could only ever be syntax.
    pub fn parse(q: &str) -> AppResult<Option<Search>> {
        let q = q.trim();
        if q.is_empty() {
            return Ok(None);
        }
        if q.chars().count() > SEARCH_MAX_CHARS {
            return Err(AppError::field("q", format!("is at most {SEARCH_MAX_CHARS} characters")));
        }
        if q.chars().any(char::is_control) {
            return Err(AppError::field("q", "contains a control character"));
        }
        let words = q
            .split_whitespace()
            .filter(|w| w.chars().any(char::is_alphanumeric))
            .take(SEARCH_MAX_WORDS)
            .map(str::to_string)
            .collect();
        Ok(Some(Search { words }))
    }

    /// SQLite FTS5: each word a quoted phrase (so `jo@example.org` or `PEN-2026-0001`, which
    /// the tokeniser splits, must appear in that order), all of them required.
    fn fts5_query(&self) -> String {
        self.words.iter().map(|w| format!("\"{}\"", w.replace('"', "\"\""))).collect::<Vec<_>>().join(" ")
    }

    /// PostgreSQL: plain words for `plainto_tsquery`, which reads no syntax at all.
    fn plain_words(&self) -> String {
        self.words.join(" ")
    }
}

/// What the API's list and the staff search filter cases by. All optional.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub state: Option<&'static str>,
    pub overdue: Option<bool>,
    pub kind: Option<&'static str>,
    pub search: Option<Search>,
    /// Closed on or after this instant (the start of a local day).
    pub closed_from: Option<NaiveDateTime>,
    /// Closed before this instant (the start of the local day after the last one asked for).
    pub closed_before: Option<NaiveDateTime>,
}

impl CaseFilter {
    /// A filter on the closing date lists closed cases, most recently closed first; any other
    /// list is newest first.
    pub fn order(&self) -> Order {
        if self.closed_from.is_some() || self.closed_before.is_some() {
            Order::RecentlyClosed
        } else {
            Order::Newest
        }
    }
}

/// Reads `closed_from` and `closed_to` (YYYY-MM-DD, days in the organisation's time zone, both
/// included) into the instants a filter compares with. Problems go into `errors`.
pub fn closed_range(
    from: Option<&str>,
    to: Option<&str>,
    tz: chrono_tz::Tz,
    errors: &mut FieldErrors,
) -> (Option<NaiveDateTime>, Option<NaiveDateTime>) {
    let mut day = |field: &str, raw: Option<&str>| -> Option<NaiveDate> {
        let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
        match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
            Ok(d) if (1900..=9999).contains(&chrono::Datelike::year(&d)) => Some(d),
            _ => {
                errors.insert(field.into(), "is a date written as YYYY-MM-DD, such as 2026-04-13".into());
                None
            }
        }
    };
    let (from, to) = (day("closed_from", from), day("closed_to", to));
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            errors.insert("closed_to".into(), "is on or after the first date".into());
        }
    }
    (
        from.map(|d| to_db_time(start_of_local_day(d, tz))),
        to.and_then(|d| d.succ_opt()).map(|d| to_db_time(start_of_local_day(d, tz))),
    )
}

fn check_cursor(cursor: Option<&Cursor>, order: Order) -> AppResult<()> {
    match cursor {
        Some(c) if c.order != order => Err(AppError::field("cursor", BAD_CURSOR)),
        _ => Ok(()),
    }
}

/// Cut a page read with one row too many: the extra row only says that there is more.
fn finish<T>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> Cursor) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(key)
    } else {
        None
    };
    Page { rows, next }
}

/// Search rows (PostgreSQL) or matches (SQLite) one page of a search reads at most in its
/// walk; a page cut short by it has fewer rows than asked for, and a link to the rest.
const SEARCH_WINDOW: i64 = 5_000;
/// The most matching rows a search sorts (PostgreSQL, and searches of closed cases).
const SEARCH_SORT_CAP: i64 = 2_000;
/// SQLite: a search row's rowid is its case's rowid times this (see the 000007 migration).
const SEARCH_ROWID_BLOCK: i64 = 1 << 20;

/// The condition "this case is the organisation's and its words match", answered from the
/// search index (an FTS5 table on SQLite, a GIN index over a tsvector on PostgreSQL). Used for
/// searches of closed cases by date, whose matches are found first and sorted: this costs in
/// proportion to the matches, so [`cases_page`] counts them first (up to [`SEARCH_SORT_CAP`]).
///
/// The case's own organisation is compared through an expression no index covers (a unary `+`
/// on SQLite, `|| ''` on PostgreSQL): otherwise the planners walk all of the organisation's
/// cases, testing each against the matches.
fn search_condition(
    conn: &DbConnection,
    org_id: &str,
    search: &Search,
) -> Box<dyn BoxableExpression<cases::table, crate::db::MultiBackend, SqlType = Bool>> {
    match conn {
        DbConnection::Sqlite(_) => Box::new(
            diesel::dsl::sql::<Bool>(
                "+\"cases\".\"organisation_id\" = ",
            )
            .bind::<Text, _>(org_id.to_string())
            .sql(" AND \"cases\".\"id\" IN (SELECT case_search.case_id FROM case_search WHERE case_search MATCH ")
            .bind::<Text, _>(search.fts5_query())
            .sql(" AND case_search.organisation_id = ")
            .bind::<Text, _>(org_id.to_string())
            .sql(")"),
        ),
        DbConnection::Pg(_) => Box::new(
            diesel::dsl::sql::<Bool>("(\"cases\".\"organisation_id\" || '') = ")
                .bind::<Text, _>(org_id.to_string())
                .sql(
                    " AND \"cases\".\"id\" IN (SELECT case_search.case_id FROM case_search \
                     WHERE case_search.doc @@ plainto_tsquery('simple', ",
                )
                .bind::<Text, _>(search.plain_words())
                .sql(") AND case_search.organisation_id = ")
                .bind::<Text, _>(org_id.to_string())
                .sql(")"),
        ),
    }
}

/// Whether the organisation's search rows matching `search` are at most `cap`: read from the
/// search index and stopping one past the cap.
fn few_matches(conn: &mut DbConnection, org_id: &str, search: &Search, cap: i64) -> AppResult<bool> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let n = match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(
            "SELECT count(*) AS n FROM (SELECT 1 FROM case_search WHERE case_search MATCH ? \
             AND organisation_id = ? LIMIT ?)",
        )
        .bind::<Text, _>(search.fts5_query())
        .bind::<Text, _>(org_id)
        .bind::<diesel::sql_types::BigInt, _>(cap + 1)
        .get_result::<N>(c)?,
        DbConnection::Pg(c) => pg_gin_only(c, |c| {
            diesel::sql_query(
                "SELECT count(*) AS n FROM (SELECT 1 FROM case_search s \
                 WHERE s.doc @@ plainto_tsquery('simple', $1) AND s.organisation_id = $2 LIMIT $3) x",
            )
            .bind::<Text, _>(search.plain_words())
            .bind::<Text, _>(org_id)
            .bind::<diesel::sql_types::BigInt, _>(cap + 1)
            .get_result::<N>(c)
        })?,
    }
    .n;
    Ok(n <= cap)
}

/// Runs `f` with PostgreSQL's planner told to read case_search through its GIN index: reading
/// it in another order would cost in proportion to the organisation's cases for a word that is
/// rare, and the planner's estimate of a word comes from a sample.
fn pg_gin_only<T>(
    c: &mut diesel::PgConnection,
    f: impl FnOnce(&mut diesel::PgConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    c.transaction(|c| {
        diesel::sql_query("SET LOCAL enable_seqscan = off").execute(c)?;
        diesel::sql_query("SET LOCAL enable_indexscan = off").execute(c)?;
        let out = f(c);
        diesel::sql_query("SET LOCAL enable_seqscan = on").execute(c)?;
        diesel::sql_query("SET LOCAL enable_indexscan = on").execute(c)?;
        out
    })
}

#[derive(QueryableByName)]
struct Hit {
    #[diesel(sql_type = Text)]
    id: String,
}

#[derive(QueryableByName)]
struct PgKey {
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    created_at: NaiveDateTime,
    #[diesel(sql_type = Text)]
    case_id: String,
}

/// SQL with its binds, written for one backend.
struct Sql {
    text: String,
    binds: Vec<Bind>,
    pg: bool,
}

enum Bind {
    Text(String),
    Int(i64),
    Bool(bool),
    Time(NaiveDateTime),
}

impl Sql {
    fn new(pg: bool) -> Sql {
        Sql { text: String::new(), binds: vec![], pg }
    }

    fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    fn bind(&mut self, value: Bind) -> &mut Sql {
        self.binds.push(value);
        if self.pg {
            self.text.push_str(&format!("${}", self.binds.len()));
        } else {
            self.text.push('?');
        }
        self
    }

    /// The case filters other than the search, on `cases c`.
    fn case_filters(&mut self, filter: &CaseFilter) -> &mut Sql {
        if let Some(s) = filter.state {
            self.push(" AND c.state = ").bind(Bind::Text(s.into()));
        }
        if let Some(o) = filter.overdue {
            self.push(" AND c.overdue = ").bind(Bind::Bool(o));
        }
        if let Some(k) = filter.kind {
            self.push(" AND c.kind = ").bind(Bind::Text(k.into()));
        }
        self
    }

    fn ids(&self, conn: &mut DbConnection) -> AppResult<Vec<String>> {
        macro_rules! run {
            ($c:expr, $db:ty) => {{
                let mut q = diesel::sql_query(self.text.clone()).into_boxed::<$db>();
                for b in &self.binds {
                    q = match b {
                        Bind::Text(v) => q.bind::<Text, _>(v.clone()),
                        Bind::Int(v) => q.bind::<diesel::sql_types::BigInt, _>(*v),
                        Bind::Bool(v) => q.bind::<Bool, _>(*v),
                        Bind::Time(v) => q.bind::<diesel::sql_types::Timestamp, _>(*v),
                    };
                }
                q.load::<Hit>($c)?
            }};
        }
        let hits = match conn {
            DbConnection::Sqlite(c) => run!(c, diesel::sqlite::Sqlite),
            DbConnection::Pg(c) => run!(c, diesel::pg::Pg),
        };
        Ok(hits.into_iter().map(|h| h.id).collect())
    }
}

/// The cases with these ids, in this order.
fn cases_in_order(conn: &mut DbConnection, ids: Vec<String>) -> AppResult<Vec<CaseRow>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let mut found: std::collections::HashMap<String, CaseRow> = cases::table
        .filter(cases::id.eq_any(ids.clone()))
        .select(CaseRow::as_select())
        .load::<CaseRow>(conn)?
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    Ok(ids.into_iter().filter_map(|id| found.remove(&id)).collect())
}

/// One page of a search, newest first, costing at most about [`SEARCH_WINDOW`] rows of the
/// search index however many cases there are and however many match.
///
/// SQLite: FTS5 reads a search's matches in rowid order, which is the order cases were
/// recorded (newest first, since the rowid of a search row is its case's rowid times 2^20), so
/// the page is the first matches of the organisation (and the filters) after the cursor's case,
/// each case once; no match is sorted, and a page stops after its last case. Only matches of
/// other organisations or refused by the filters are read for nothing: after
/// [`SEARCH_WINDOW`] of them, the page ends early with a link to the rest.
///
/// PostgreSQL: the organisation's search rows are in an index in the order of the results
/// (created_at, then the case's id, newest first), so the page walks it testing each row's
/// words, and stops after the page: cheap when the words are common. When the first
/// [`SEARCH_WINDOW`] rows do not fill the page, the matches are counted from the GIN index up to
/// [`SEARCH_SORT_CAP`]; if there are no more, they are read from it and sorted; if there are
/// more (words neither common nor rare), the page is what the walk found, with a link that
/// starts after the rows it read.
///
/// Measured with 330,000 cases (440,000 search rows; one organisation of 308,000), a page of
/// 51 (and 201): PostgreSQL 15, a word in 90% of the cases 2.7 ms (3.6 ms), was 113 ms sorting
/// all matches; in 1.3%, 5-10 ms, was 520 ms; in 0.1% (330 matches: walk, count, sort) about
/// 11 ms; in 11 cases about 4 ms. The worst seen: a common word with a filter no case in the
/// window passes (walk 18 ms, GIN count 14 ms, walk again 18 ms), about 50 ms, for a page
/// with no rows and a link. The GIN count is the one step that grows with the matches (the
/// index reads the words' whole lists), and runs only when the walk did not fill the page.
/// SQLite, the same data: a common word 1 ms, every case measured at most 15 ms.
fn search_newest(
    conn: &mut DbConnection,
    org_id: &str,
    filter: &CaseFilter,
    search: &Search,
    cursor: Option<&Cursor>,
    limit: i64,
) -> AppResult<Page<CaseRow>> {
    let want = limit + 1;
    let pg = matches!(conn, DbConnection::Pg(_));
    // The page, and where the next starts when the window cut it short.
    let (ids, cut): (Vec<String>, Option<(NaiveDateTime, String)>) = if !pg {
        // Where the cursor's case is: the matches start below its rowids.
        let bound: i64 = match cursor {
            None => i64::MAX,
            Some(c) => {
                let row: Option<i64> = cases::table
                    .filter(cases::id.eq(c.id.clone()))
                    .select(diesel::dsl::sql::<diesel::sql_types::BigInt>("rowid"))
                    .first(conn)
                    .optional()?;
                match (row, c.at) {
                    (Some(r), _) => r * SEARCH_ROWID_BLOCK,
                    // A case no longer there: start below the newest case before its place.
                    (None, Some(at)) => {
                        let before: Option<i64> = cases::table
                            .filter(cases::organisation_id.eq(org_id.to_string()))
                            .filter(
                                cases::created_at
                                    .le(at)
                                    .and(cases::created_at.lt(at).or(cases::id.lt(c.id.clone()))),
                            )
                            .order((cases::created_at.desc(), cases::id.desc()))
                            .select(diesel::dsl::sql::<diesel::sql_types::BigInt>("rowid"))
                            .first(conn)
                            .optional()?;
                        before.map_or(0, |r| (r + 1) * SEARCH_ROWID_BLOCK)
                    }
                    (None, None) => return Err(AppError::field("cursor", BAD_CURSOR)),
                }
            }
        };
        let q = search.fts5_query();
        let block = SEARCH_ROWID_BLOCK;
        // The window: down to the SEARCH_WINDOW-th match after the cursor, if there are more.
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            r: i64,
        }
        let DbConnection::Sqlite(c) = &mut *conn else { unreachable!() };
        let lowest: Option<i64> = diesel::sql_query(
            "SELECT rowid AS r FROM case_search WHERE case_search MATCH ? AND rowid < ? \
             ORDER BY rowid DESC LIMIT 1 OFFSET ?",
        )
        .bind::<Text, _>(&q)
        .bind::<diesel::sql_types::BigInt, _>(bound)
        .bind::<diesel::sql_types::BigInt, _>(SEARCH_WINDOW - 1)
        .get_result::<Row>(c)
        .optional()?
        .map(|r| r.r);
        // The matches of the window in rowid order, newest case first, with the organisation
        // and the filters; the rows of a case are next to each other, so each case is kept at
        // its first. Read a batch at a time until the page is full or the window ends.
        #[derive(QueryableByName)]
        struct Match {
            #[diesel(sql_type = Text)]
            id: String,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            r: i64,
        }
        let batch = want + 32;
        let mut ids: Vec<String> = vec![];
        let mut below = bound;
        loop {
            let mut sql = Sql::new(false);
            sql.push(
                "SELECT c.id AS id, m.rowid AS r FROM case_search m JOIN cases c ON c.rowid = m.rowid / ",
            )
            .bind(Bind::Int(block))
            .push(" WHERE case_search MATCH ")
            .bind(Bind::Text(q.clone()))
            .push(" AND m.rowid < ")
            .bind(Bind::Int(below))
            .push(" AND m.rowid >= ")
            .bind(Bind::Int(lowest.unwrap_or(0)))
            .push(" AND c.organisation_id = ")
            .bind(Bind::Text(org_id.into()))
            .case_filters(filter)
            .push(" ORDER BY m.rowid DESC LIMIT ")
            .bind(Bind::Int(batch));
            let DbConnection::Sqlite(c) = &mut *conn else { unreachable!() };
            let mut query = diesel::sql_query(sql.text.clone()).into_boxed::<diesel::sqlite::Sqlite>();
            for b in sql.binds {
                query = match b {
                    Bind::Text(v) => query.bind::<Text, _>(v),
                    Bind::Int(v) => query.bind::<diesel::sql_types::BigInt, _>(v),
                    Bind::Bool(v) => query.bind::<Bool, _>(v),
                    Bind::Time(v) => query.bind::<diesel::sql_types::Timestamp, _>(v),
                };
            }
            let rows: Vec<Match> = query.load(c)?;
            let full = rows.len() as i64 == batch;
            let last = rows.last().map(|m| m.r);
            for m in rows {
                if ids.last() != Some(&m.id) {
                    ids.push(m.id);
                }
            }
            match last {
                // Below the last case read (whose rows are all taken by then).
                Some(r) if full && (ids.len() as i64) < want => below = r / block * block,
                _ => break,
            }
        }
        ids.truncate(usize::try_from(want).unwrap_or(usize::MAX));
        let mut cut = None;
        if let (Some(lowest), true) = (lowest, (ids.len() as i64) < want) {
            // The window ended before the matches did: the next page starts below the case of
            // its last match (on this page if it is one of ours).
            let case: (NaiveDateTime, String) = cases::table
                .filter(
                    diesel::dsl::sql::<Bool>("rowid = ").bind::<diesel::sql_types::BigInt, _>(lowest / block),
                )
                .select((cases::created_at, cases::id))
                .first(conn)?;
            cut = Some(case);
        }
        (ids, cut)
    } else {
        let after = |sql: &mut Sql| {
            sql.push(" s.organisation_id = ").bind(Bind::Text(org_id.into()));
            if let Some(Cursor { at: Some(at), id, .. }) = cursor {
                sql.push(" AND (s.created_at, s.case_id) < (")
                    .bind(Bind::Time(*at))
                    .push(", ")
                    .bind(Bind::Text(id.clone()))
                    .push(")");
            }
        };
        // The walk: the organisation's rows after the cursor, newest first, `window` of them
        // or down to `lowest` (inclusive), each tested; a case once, with the filters.
        let walk =
            |conn: &mut DbConnection, window: Option<i64>, lowest: Option<&(NaiveDateTime, String)>| {
                let mut sql = Sql::new(true);
                // Written so that PostgreSQL streams it: the rows in index order, each case once
                // (its rows are next to each other), each looked up in cases on its own; a hash
                // join or aggregate here would read all of the window, or all of cases.
                sql.push(
                    "SELECT m.case_id AS id FROM (SELECT DISTINCT ON (w.created_at, w.case_id) w.case_id, \
                 w.created_at FROM (SELECT s.case_id, s.created_at, s.doc FROM case_search s WHERE",
                );
                after(&mut sql);
                if let Some((at, id)) = lowest {
                    sql.push(" AND (s.created_at, s.case_id) >= (")
                        .bind(Bind::Time(*at))
                        .push(", ")
                        .bind(Bind::Text(id.clone()))
                        .push(")");
                }
                sql.push(" ORDER BY s.created_at DESC, s.case_id DESC");
                match window {
                    Some(w) => sql.push(" LIMIT ").bind(Bind::Int(w)),
                    // A fence: the words are tested on the rows read, never looked up.
                    None => sql.push(" OFFSET 0"),
                };
                sql.push(") w WHERE w.doc @@ plainto_tsquery('simple', ")
                    .bind(Bind::Text(search.plain_words()))
                    .push(
                        ") ORDER BY w.created_at DESC, w.case_id DESC) m \
                     CROSS JOIN LATERAL (SELECT 1 FROM cases c WHERE c.id = m.case_id",
                    )
                    .case_filters(filter)
                    .push(" LIMIT 1) c ORDER BY m.created_at DESC, m.case_id DESC LIMIT ")
                    .bind(Bind::Int(want));
                sql.ids(conn)
            };
        let ids = walk(conn, Some(SEARCH_WINDOW), None)?;
        if ids.len() as i64 >= want {
            (ids, None)
        } else {
            // The row the window ended at, if the rows went on.
            let mut end = Sql::new(true);
            end.push("SELECT s.created_at, s.case_id FROM case_search s WHERE");
            after(&mut end);
            end.push(" ORDER BY s.created_at DESC, s.case_id DESC LIMIT 1 OFFSET ")
                .bind(Bind::Int(SEARCH_WINDOW - 1));
            let DbConnection::Pg(c) = &mut *conn else { unreachable!() };
            let mut q = diesel::sql_query(end.text.clone()).into_boxed::<diesel::pg::Pg>();
            for b in &end.binds {
                q = match b {
                    Bind::Text(v) => q.bind::<Text, _>(v.clone()),
                    Bind::Time(v) => q.bind::<diesel::sql_types::Timestamp, _>(*v),
                    Bind::Int(v) => q.bind::<diesel::sql_types::BigInt, _>(*v),
                    Bind::Bool(v) => q.bind::<Bool, _>(*v),
                };
            }
            let end: Option<PgKey> = q.get_result(c).optional()?;
            match end {
                None => (ids, None),
                Some(end) => {
                    let end = (end.created_at, end.case_id);
                    if few_after(conn, org_id, search, cursor)? {
                        // Few matches: read them from the GIN index and sort them.
                        let mut sql = Sql::new(true);
                        sql.push(
                            "SELECT m.case_id AS id FROM (SELECT s.case_id, s.created_at FROM case_search s \
                             WHERE s.doc @@ plainto_tsquery('simple', ",
                        )
                        .bind(Bind::Text(search.plain_words()))
                        .push(") AND");
                        after(&mut sql);
                        sql.push(
                            " GROUP BY s.created_at, s.case_id) m \
                             CROSS JOIN LATERAL (SELECT 1 FROM cases c WHERE c.id = m.case_id",
                        )
                        .case_filters(filter)
                        .push(" LIMIT 1) c ORDER BY m.created_at DESC, m.case_id DESC LIMIT ")
                        .bind(Bind::Int(want));
                        let DbConnection::Pg(c) = &mut *conn else { unreachable!() };
                        let text = sql.text.clone();
                        let binds = std::mem::take(&mut sql.binds);
                        let hits: Vec<Hit> = pg_gin_only(c, |c| {
                            let mut q = diesel::sql_query(text).into_boxed::<diesel::pg::Pg>();
                            for b in binds {
                                q = match b {
                                    Bind::Text(v) => q.bind::<Text, _>(v),
                                    Bind::Time(v) => q.bind::<diesel::sql_types::Timestamp, _>(v),
                                    Bind::Int(v) => q.bind::<diesel::sql_types::BigInt, _>(v),
                                    Bind::Bool(v) => q.bind::<Bool, _>(v),
                                };
                            }
                            q.load(c)
                        })?;
                        (hits.into_iter().map(|h| h.id).collect(), None)
                    } else {
                        // Many matches, but not in these rows: this page is what is there, to
                        // the window's last case (read whole).
                        let ids = walk(conn, None, Some(&end))?;
                        if ids.len() as i64 >= want {
                            (ids, None)
                        } else {
                            (ids, Some(end))
                        }
                    }
                }
            }
        }
    };
    let rows = cases_in_order(conn, ids)?;
    let key =
        |c: &CaseRow| Cursor { order: Order::Newest, segment: 0, at: Some(c.created_at), id: c.id.clone() };
    match cut {
        Some((at, id)) => {
            Ok(Page { rows, next: Some(Cursor { order: Order::Newest, segment: 0, at: Some(at), id }) })
        }
        None => Ok(finish(rows, limit, key)),
    }
}

/// PostgreSQL: whether the organisation's rows matching the words after the cursor are at most
/// [`SEARCH_SORT_CAP`], counted from the GIN index.
fn few_after(
    conn: &mut DbConnection,
    org_id: &str,
    search: &Search,
    cursor: Option<&Cursor>,
) -> AppResult<bool> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let DbConnection::Pg(c) = conn else { unreachable!() };
    let (at, id) = match cursor {
        Some(Cursor { at: Some(at), id, .. }) => (Some(*at), Some(id.clone())),
        _ => (None, None),
    };
    let n = pg_gin_only(c, |c| {
        diesel::sql_query(
            "SELECT count(*) AS n FROM (SELECT 1 FROM case_search s \
             WHERE s.doc @@ plainto_tsquery('simple', $1) AND s.organisation_id = $2 \
             AND ($3::timestamp IS NULL OR (s.created_at, s.case_id) < ($3, $4)) LIMIT $5) x",
        )
        .bind::<Text, _>(search.plain_words())
        .bind::<Text, _>(org_id)
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::Timestamp>, _>(at)
        .bind::<diesel::sql_types::Nullable<Text>, _>(id)
        .bind::<diesel::sql_types::BigInt, _>(SEARCH_SORT_CAP + 1)
        .get_result::<N>(c)
    })?
    .n;
    Ok(n <= SEARCH_SORT_CAP)
}

/// One page of an organisation's cases, open and closed: newest first, or most recently
/// closed first when the filter names closing dates.
pub fn cases_page(
    conn: &mut DbConnection,
    org_id: &str,
    filter: &CaseFilter,
    cursor: Option<&Cursor>,
    limit: i64,
) -> AppResult<Page<CaseRow>> {
    let order = filter.order();
    check_cursor(cursor, order)?;
    if filter.search.as_ref().is_some_and(|s| s.words.is_empty()) {
        // Nothing searchable was asked for, so nothing matches.
        return Ok(Page { rows: vec![], next: None });
    }
    if let (Some(search), Order::Newest) = (&filter.search, order) {
        return search_newest(conn, org_id, filter, search, cursor, limit);
    }
    if let Some(search) = &filter.search {
        // Closed cases by date: the matches are found first and sorted, which is bounded only
        // when they are few. With more, the page is empty and says why.
        if !few_matches(conn, org_id, search, SEARCH_SORT_CAP)? {
            return Err(AppError::field(
                "q",
                format!(
                    "matches more than {SEARCH_SORT_CAP} cases; add words, or search without closing dates"
                ),
            ));
        }
    }
    let mut query = cases::table.select(CaseRow::as_select()).into_boxed();
    query = match &filter.search {
        Some(search) => query.filter(search_condition(conn, org_id, search)),
        None => query.filter(cases::organisation_id.eq(org_id.to_string())),
    };
    if let Some(s) = filter.state {
        query = query.filter(cases::state.eq(s));
    }
    if let Some(o) = filter.overdue {
        query = query.filter(cases::overdue.eq(o));
    }
    if let Some(k) = filter.kind {
        query = query.filter(cases::kind.eq(k));
    }
    let rows: Vec<CaseRow> = match order {
        Order::RecentlyClosed => {
            query = query.filter(cases::closed_at.is_not_null());
            if let Some(from) = filter.closed_from {
                query = query.filter(cases::closed_at.ge(from));
            }
            if let Some(before) = filter.closed_before {
                query = query.filter(cases::closed_at.lt(before));
            }
            if let Some(Cursor { at: Some(at), id, .. }) = cursor {
                query = query.filter(
                    cases::closed_at.le(*at).and(cases::closed_at.lt(*at).or(cases::id.lt(id.clone()))),
                );
            }
            query.order((cases::closed_at.desc(), cases::id.desc())).limit(limit + 1).load(conn)?
        }
        _ => {
            if let Some(Cursor { at: Some(at), id, .. }) = cursor {
                query = query.filter(
                    cases::created_at.le(*at).and(cases::created_at.lt(*at).or(cases::id.lt(id.clone()))),
                );
            }
            query.order((cases::created_at.desc(), cases::id.desc())).limit(limit + 1).load(conn)?
        }
    };
    Ok(finish(rows, limit, |c: &CaseRow| Cursor {
        order,
        segment: 0,
        at: Some(if order == Order::RecentlyClosed {
            c.closed_at.unwrap_or(c.created_at)
        } else {
            c.created_at
        }),
        id: c.id.clone(),
    }))
}

/// The work queue's four groups, in order: overdue with a deadline, overdue without one (its
/// clock paused), not overdue with a deadline, and not overdue without one. Within a group,
/// the soonest deadline first, then the id. Spelling the groups out keeps the order the same on
/// both backends (they sort NULLs differently) and each group one range of an index.
pub fn queue_segment(case: &CaseRow) -> u8 {
    (if case.overdue { 0 } else { 2 }) + u8::from(case.due_at.is_none())
}

/// One page of an organisation's open cases in the work queue's order, optionally of one state
/// and one kind. The committee's view is this with the state `escalated`.
pub fn queue_page(
    conn: &mut DbConnection,
    org_id: &str,
    state: Option<&str>,
    kind: Option<&str>,
    cursor: Option<&Cursor>,
    limit: i64,
) -> AppResult<Page<CaseRow>> {
    check_cursor(cursor, Order::Queue)?;
    let want = usize::try_from(limit + 1).unwrap_or(usize::MAX);
    let mut rows: Vec<CaseRow> = Vec::new();
    let first = cursor.map_or(0, |c| c.segment);
    for segment in first..4 {
        if rows.len() >= want {
            break;
        }
        let (overdue, no_deadline) = (segment < 2, segment % 2 == 1);
        let mut query = cases::table
            .filter(cases::organisation_id.eq(org_id))
            .filter(cases::closed_at.is_null())
            .filter(cases::overdue.eq(overdue))
            .select(CaseRow::as_select())
            .into_boxed();
        if let Some(s) = state {
            query = query.filter(cases::state.eq(s));
        }
        if let Some(k) = kind {
            query = query.filter(cases::kind.eq(k));
        }
        let after = cursor.filter(|c| c.segment == segment);
        let remaining = i64::try_from(want - rows.len()).unwrap_or(i64::MAX);
        let page: Vec<CaseRow> = if no_deadline {
            query = query.filter(cases::due_at.is_null());
            if let Some(c) = after {
                query = query.filter(cases::id.gt(c.id.clone()));
            }
            query.order(cases::id).limit(remaining).load(conn)?
        } else {
            query = query.filter(cases::due_at.is_not_null());
            if let Some(c) = after {
                let at = c.at.ok_or_else(|| AppError::field("cursor", BAD_CURSOR))?;
                query = query
                    .filter(cases::due_at.ge(at).and(cases::due_at.gt(at).or(cases::id.gt(c.id.clone()))));
            }
            query.order((cases::due_at, cases::id)).limit(remaining).load(conn)?
        };
        rows.extend(page);
    }
    Ok(finish(rows, limit, |c: &CaseRow| Cursor {
        order: Order::Queue,
        segment: queue_segment(c),
        at: c.due_at,
        id: c.id.clone(),
    }))
}

/// A count that stops at [`COUNT_CAP`]: `capped` says it may be more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub n: i64,
    pub capped: bool,
}

impl Count {
    fn of(n: usize) -> Count {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        Count { n: n.min(COUNT_CAP), capped: n > COUNT_CAP }
    }

    /// "12", or "1,000+" once capped.
    pub fn words(&self) -> String {
        let digits = self.n.to_string();
        let mut out = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        if self.capped {
            out.push('+');
        }
        out
    }
}

/// The work queue's counts of an organisation's open cases.
#[derive(Debug, Clone, Copy)]
pub struct QueueCounts {
    pub open: Count,
    pub overdue: Count,
    pub awaiting_response: Count,
    pub escalated: Count,
}

/// Counts read a range of the open-case indexes and stop one past the cap.
pub fn queue_counts(conn: &mut DbConnection, org_id: &str, now: DateTime<Utc>) -> AppResult<QueueCounts> {
    let cap = COUNT_CAP + 1;
    let open_ids = || {
        cases::table
            .filter(cases::organisation_id.eq(org_id.to_string()))
            .filter(cases::closed_at.is_null())
            .select(cases::id)
            .into_boxed()
    };
    let open: Vec<String> = open_ids().limit(cap).load(conn)?;
    // Overdue: flagged by the sweep, or past its deadline and not yet swept.
    let flagged: Vec<String> = open_ids().filter(cases::overdue.eq(true)).limit(cap).load(conn)?;
    let late: Vec<String> = open_ids()
        .filter(cases::overdue.eq(false))
        .filter(cases::due_at.lt(to_db_time(now)))
        .limit(cap)
        .load(conn)?;
    let awaiting: Vec<String> = open_ids()
        .filter(cases::state.eq_any(["appeal_lodged", "complaint_received"]))
        .limit(cap)
        .load(conn)?;
    let escalated: Vec<String> = open_ids().filter(cases::state.eq("escalated")).limit(cap).load(conn)?;
    Ok(QueueCounts {
        open: Count::of(open.len()),
        overdue: Count::of(flagged.len() + late.len()),
        awaiting_response: Count::of(awaiting.len()),
        escalated: Count::of(escalated.len()),
    })
}

/// One page of the outbox, newest first: for one organisation or all, in one status or any.
pub fn outbox_page(
    conn: &mut DbConnection,
    org_id: Option<&str>,
    status: Option<&str>,
    cursor: Option<&Cursor>,
    limit: i64,
) -> AppResult<Page<OutboxRow>> {
    check_cursor(cursor, Order::Outbox)?;
    let mut query = outbox::table.select(OutboxRow::as_select()).into_boxed();
    if let Some(org) = org_id {
        query = query.filter(outbox::organisation_id.eq(org.to_string()));
    }
    if let Some(s) = status {
        query = query.filter(outbox::status.eq(s.to_string()));
    }
    if let Some(Cursor { at: Some(at), id, .. }) = cursor {
        query = query
            .filter(outbox::created_at.le(*at).and(outbox::created_at.lt(*at).or(outbox::id.lt(id.clone()))));
    }
    let rows: Vec<OutboxRow> =
        query.order((outbox::created_at.desc(), outbox::id.desc())).limit(limit + 1).load(conn)?;
    Ok(finish(rows, limit, |m: &OutboxRow| Cursor {
        order: Order::Outbox,
        segment: 0,
        at: Some(m.created_at),
        id: m.id.clone(),
    }))
}

/// Percent-encodes a value for a query string (everything but unreserved characters).
pub fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string from pairs, leaving out empty values.
pub fn query_string(pairs: &[(&str, Option<String>)]) -> String {
    pairs
        .iter()
        .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| format!("{k}={}", url_encode(v))))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = Cursor {
            order: Order::Queue,
            segment: 2,
            at: Some(DateTime::from_timestamp_nanos(1_700_000_000_123_456_789).naive_utc()),
            id: "0b4e7c3a-1d2f-4a5b-8c9d-0e1f2a3b4c5d".into(),
        };
        assert_eq!(Cursor::decode(&c.encode(), Order::Queue).unwrap(), c);
        assert!(Cursor::decode(&c.encode(), Order::Newest).is_err());
        for bad in
            ["", "zz", "00", &hex::encode("q|9|1|x"), &hex::encode("n|0|-|abc"), &hex::encode("n|0|1|a\0b")]
        {
            assert!(
                Cursor::decode(bad, Order::Queue).is_err() || Cursor::decode(bad, Order::Newest).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn search_words_never_become_syntax() {
        let s = Search::parse(r#"jo@example.org "PEN-2026-0001" * AND NEAR( a"b"#).unwrap().unwrap();
        assert_eq!(s.fts5_query(), r#""jo@example.org" """PEN-2026-0001""" "AND" "NEAR(" "a""b""#);
        assert_eq!(Search::parse("   ").unwrap(), None);
        assert!(Search::parse("* \" -").unwrap().unwrap().words.is_empty());
        assert!(Search::parse(&"x".repeat(201)).is_err());
    }

    #[test]
    fn limits_and_counts() {
        assert_eq!(parse_limit(None).unwrap(), 50);
        assert_eq!(parse_limit(Some("200")).unwrap(), 200);
        for bad in ["0", "201", "-1", "ten", "1e3"] {
            assert!(parse_limit(Some(bad)).is_err());
        }
        assert_eq!(Count::of(12).words(), "12");
        assert_eq!(Count::of(1000).words(), "1,000");
        assert_eq!(Count::of(1001).words(), "1,000+");
    }
}
