//! Paged lists and search: the API's list of cases, the work queue, the committee's view and
//! the outbox, each read one page at a time.
//!
//! Every list has a fixed order ending in the row's id, and a page starts after the last row of
//! the one before (a keyset cursor), so a page is one range of one index however many cases
//! there are, and walking the pages gives every row that existed when the walk began exactly
//! once even while rows are added. Nothing here loads or counts all of an organisation's cases:
//! the counts of the work queue stop at [`COUNT_CAP`].

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::db::to_db_time;
use crate::domain::deadline::start_of_local_day;
use crate::error::{AppError, AppResult, FieldErrors};

mod pages;
mod search;

pub use pages::*;
use search::*;

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
