//! The lists themselves: the API's cases, the work queue with its counts, the committee's
//! view and the outbox.

use crate::db::schema::{cases, outbox};
use crate::db::{to_db_time, DbConnection};
use crate::error::{AppError, AppResult};
use crate::store::{CaseRow, OutboxRow};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::*;
use crate::ids::OrgId;

/// One page of an organisation's cases, open and closed: newest first, or most recently
/// closed first when the filter names closing dates.
pub fn cases_page(
    conn: &mut DbConnection,
    org_id: &OrgId,
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
        id: c.id.to_string(),
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
    org_id: &OrgId,
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
        id: c.id.to_string(),
    }))
}

/// A count that stops at [`COUNT_CAP`]: `capped` says it may be more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub n: i64,
    pub capped: bool,
}

impl Count {
    pub(super) fn of(n: usize) -> Count {
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
pub fn queue_counts(conn: &mut DbConnection, org_id: &OrgId, now: DateTime<Utc>) -> AppResult<QueueCounts> {
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
    org_id: Option<&OrgId>,
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
