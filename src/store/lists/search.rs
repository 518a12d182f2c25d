//! Search: the words of an organisation's cases, open and closed, from SQLite's FTS5 index or
//! PostgreSQL's full-text index, a page at a time.

use crate::db::schema::cases;
use crate::db::DbConnection;
use crate::error::{AppError, AppResult};
use crate::store::CaseRow;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use super::*;
use crate::ids::OrgId;

/// Search rows (PostgreSQL) or matches (SQLite) one page of a search reads at most in its
/// walk; a page cut short by it has fewer rows than asked for, and a link to the rest.
const SEARCH_WINDOW: i64 = 5_000;
/// The most matching rows a search sorts (PostgreSQL, and searches of closed cases).
pub(super) const SEARCH_SORT_CAP: i64 = 2_000;
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
pub(super) fn search_condition(
    conn: &DbConnection,
    org_id: &OrgId,
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
pub(super) fn few_matches(
    conn: &mut DbConnection,
    org_id: &OrgId,
    search: &Search,
    cap: i64,
) -> AppResult<bool> {
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
        .map(|c| (c.id.to_string(), c))
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
pub(super) fn search_newest(
    conn: &mut DbConnection,
    org_id: &OrgId,
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
            .bind(Bind::Text(org_id.to_string()))
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
            sql.push(" s.organisation_id = ").bind(Bind::Text(org_id.to_string()));
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
    let key = |c: &CaseRow| Cursor {
        order: Order::Newest,
        segment: 0,
        at: Some(c.created_at),
        id: c.id.to_string(),
    };
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
    org_id: &OrgId,
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
