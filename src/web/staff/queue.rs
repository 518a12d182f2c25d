//! The work queue and the committee's view: cases to act on, a page at a time, and search.

use super::session::Staff;
use super::AppState;
use crate::db::{self, from_db_time};
use crate::domain::deadline::{long_date, long_date_time, relative};
use crate::domain::{CaseKind, CaseState, DueKind, Role};
use crate::error::{AppError, FieldErrors};
use crate::services::{self};
use crate::store::lists;
use crate::store::{self, CaseRow, Organisation};
use crate::validate;
use crate::web::render::Link;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::web::render::Choice;
use serde_json::Value;

use super::*;

// ---------------------------------------------------------------------------------------------
// The work queue.

#[derive(Deserialize, Default)]
pub(super) struct QueueFilter {
    state: Option<String>,
    kind: Option<String>,
    /// Where this page of the queue (or of the search results) starts.
    cursor: Option<String>,
    /// Where this page of undelivered emails starts.
    emails: Option<String>,
    q: Option<String>,
    final_state: Option<String>,
    closed_from: Option<String>,
    closed_to: Option<String>,
}

const SEARCH_FIELDS: &[(&str, &str)] = &[
    ("q", "The search"),
    ("final_state", "How it ended"),
    ("closed_from", "Closed on or after"),
    ("closed_to", "Closed on or before"),
    ("cursor", "The page link"),
];

/// Undelivered emails shown at a time to admins on the work queue.
const FAILED_EMAILS_SHOWN: i64 = 10;
/// How many of the cases the sweep cannot act on an admin sees on the work queue.
const STUCK_CASES_SHOWN: i64 = 20;

pub(super) fn org_of(session: &StaffSession) -> &Organisation {
    session.org()
}

/// One row of a list of cases, with its deadline as a date and as a distance.
#[derive(Serialize)]
struct CaseLine<'a> {
    reference: &'a str,
    kind: &'a str,
    state: &'a str,
    state_words: &'static str,
    overdue: bool,
    due_date: Option<String>,
    due_relative: Option<String>,
    due_kind: Option<&'static str>,
    platform: &'a str,
    author_name: Option<&'a str>,
    opened: String,
    closed: Option<String>,
}

fn case_row(case: &CaseRow, tz: chrono_tz::Tz, now: chrono::DateTime<Utc>) -> CaseLine<'_> {
    let state = CaseState::parse(&case.state);
    let due = case.due_at.map(from_db_time);
    CaseLine {
        reference: &case.reference,
        kind: &case.kind,
        state: &case.state,
        state_words: state.map(|s| s.describe()).unwrap_or(""),
        overdue: case.overdue || due.is_some_and(|d| now > d),
        due_date: due.map(|d| long_date(d, tz)),
        due_relative: due.map(|d| relative(d, now, tz)),
        due_kind: case.due_kind.as_deref().and_then(DueKind::parse).map(DueKind::words),
        platform: &case.platform,
        author_name: case.author_name.as_deref(),
        opened: long_date(from_db_time(case.created_at), tz),
        closed: case.closed_at.map(|t| long_date(from_db_time(t), tz)),
    }
}

/// An email that could not be delivered, as admins see it on the work queue.
#[derive(Serialize)]
struct FailedEmail {
    reference: Option<String>,
    to: String,
    template: String,
    error: Option<String>,
}

/// A case the deadline sweep cannot act on.
#[derive(Serialize)]
struct StuckLine<'a> {
    reference: &'a str,
    error: &'a str,
    failures: i32,
    since: String,
}

#[derive(Serialize)]
struct QueueCounts {
    open: String,
    overdue: String,
    awaiting_response: String,
    escalated: String,
    capped: bool,
    cap: String,
}

#[derive(Serialize)]
struct SearchValues {
    q: Option<String>,
    closed_from: Option<String>,
    closed_to: Option<String>,
}

#[derive(Serialize)]
struct QueueView<'a> {
    /// For an admin, what is left to set up; none once it is all done.
    setup_tasks: Option<Vec<services::procedure::SetupTask>>,
    counts: QueueCounts,
    cases: Vec<CaseLine<'a>>,
    states: Vec<Choice>,
    kinds: Vec<Choice>,
    final_states: Vec<Choice>,
    filtered: bool,
    failed_emails: Vec<FailedEmail>,
    stuck_cases: Vec<StuckLine<'a>>,
    more_emails: Option<String>,
    searching: bool,
    search_ok: bool,
    values: SearchValues,
    next_page: Option<String>,
    first_page: Option<String>,
    show_closed: bool,
    #[serde(flatten)]
    form: Value,
}

/// The work queue: a page of the organisation's open cases, overdue first, then due soonest;
/// or, when something is searched for, a page of all its cases, open and closed, that match.
pub(super) async fn queue(
    state: web::Data<AppState>,
    Staff(session): Staff,
    query: web::Query<QueueFilter>,
) -> HttpResponse {
    let org = org_of(&session).clone();
    let tz = org.tz();
    let filter = query.into_inner();
    let given =
        |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let (state_filter, kind_filter) = (
        given(&filter.state).filter(|s| CaseState::parse(s).is_some_and(|s| !s.is_final())),
        given(&filter.kind).filter(|k| CaseKind::parse(k).is_some()),
    );
    let (q, final_state, closed_from, closed_to) =
        (given(&filter.q), given(&filter.final_state), given(&filter.closed_from), given(&filter.closed_to));
    let searching = q.is_some() || final_state.is_some() || closed_from.is_some() || closed_to.is_some();

    // Read the search and the page links; what is wrong is shown beside its field.
    let mut errors = FieldErrors::new();
    let mut search = lists::CaseFilter::default();
    if searching {
        match lists::Search::parse(q.as_deref().unwrap_or("")) {
            Ok(s) => search.search = s,
            Err(AppError::Validation(f)) => {
                errors.extend(f.into_iter().map(|(k, v)| (k, format!("The search {v}"))))
            }
            Err(e) => return staff_error(&state, &session, e),
        }
        if let Some(fs) = &final_state {
            match CaseState::parse(fs).filter(|s| s.is_final()) {
                Some(s) => search.state = Some(s.as_str()),
                None => {
                    errors.insert("final_state".into(), "Choose how the case ended from the list".into());
                }
            }
        }
        let mut date_errors = FieldErrors::new();
        let (from, before) =
            lists::closed_range(closed_from.as_deref(), closed_to.as_deref(), tz, &mut date_errors);
        for (field, message) in date_errors {
            let message = if message.starts_with("is on or after") {
                "The last closing date must be the same as or after the first"
            } else if field == "closed_from" {
                "Enter the first closing date as a date, such as 2026-04-13"
            } else {
                "Enter the last closing date as a date, such as 2026-04-13"
            };
            errors.insert(field, message.into());
        }
        search.closed_from = from;
        search.closed_before = before;
    }
    let order = if searching { search.order() } else { lists::Order::Queue };
    // A damaged page link is not an error in what was asked: the list starts again from the top.
    let mut page_from =
        |given: Option<String>, order: lists::Order| match given.map(|c| lists::Cursor::decode(&c, order)) {
            Some(Ok(c)) => Some(c),
            Some(Err(_)) => {
                errors.insert(
                    "cursor".into(),
                    "That page link is out of date or incomplete: the list below starts from the first page"
                        .into(),
                );
                None
            }
            None => None,
        };
    let cursor = page_from(given(&filter.cursor), order);
    let emails_cursor = page_from(given(&filter.emails), lists::Order::Outbox);
    // A search with a mistake in it lists nothing rather than something other than was asked.
    let search_ok = !errors.keys().any(|k| k != "cursor");

    let is_admin = session.has(Role::Admin);
    let now = Utc::now();
    let (sf, kf, org_id) = (state_filter.clone(), kind_filter.clone(), org.id.clone());
    let org_now = org.clone();
    let result = db::run(&state.pool, move |conn| {
        // An admin's first screen lists what is left to set up, until it is done.
        let tasks = if is_admin { services::procedure::setup_tasks(conn, &org_now)? } else { None };
        let counts = lists::queue_counts(conn, &org_id, now)?;
        let page = if !searching {
            lists::queue_page(
                conn,
                &org_id,
                sf.as_deref(),
                kf.as_deref(),
                cursor.as_ref(),
                lists::DEFAULT_LIMIT,
            )?
        } else if search_ok {
            lists::cases_page(conn, &org_id, &search, cursor.as_ref(), lists::DEFAULT_LIMIT)?
        } else {
            lists::Page { rows: vec![], next: None }
        };
        // Admins are told of the emails that could not be delivered, a few at a time.
        let failed = if is_admin {
            let emails = lists::outbox_page(
                conn,
                Some(&org_id),
                Some("failed"),
                emails_cursor.as_ref(),
                FAILED_EMAILS_SHOWN,
            )?;
            let mut shown = Vec::with_capacity(emails.rows.len());
            for m in emails.rows {
                let reference = match &m.case_id {
                    Some(id) => Some(store::case_by_id(conn, id)?.reference),
                    None => None,
                };
                shown.push(FailedEmail {
                    reference,
                    to: m.to_address,
                    template: crate::domain::EmailTemplate::parse(&m.template)
                        .map_or_else(|| m.template.replace('_', " "), |t| t.words().to_string()),
                    error: m.last_error,
                });
            }
            Some((shown, emails.next))
        } else {
            None
        };
        // And of the cases the deadline sweep cannot act on.
        let stuck =
            if is_admin { services::sweep_failures_of(conn, &org_id, STUCK_CASES_SHOWN)? } else { vec![] };
        Ok((counts, page, failed, stuck, tasks))
    })
    .await;
    let (counts, page, failed, stuck, setup_tasks) = match result {
        Ok(r) => r,
        Err(e) => return staff_error(&state, &session, e),
    };
    let rows: Vec<CaseLine> = page.rows.iter().map(|c| case_row(c, tz, now)).collect();
    let here = |cursor: Option<String>| {
        let query = if searching {
            lists::query_string(&[
                ("q", q.clone()),
                ("final_state", final_state.clone()),
                ("closed_from", closed_from.clone()),
                ("closed_to", closed_to.clone()),
                ("cursor", cursor),
            ])
        } else {
            lists::query_string(&[
                ("state", state_filter.clone()),
                ("kind", kind_filter.clone()),
                ("cursor", cursor),
            ])
        };
        if query.is_empty() {
            "/staff".to_string()
        } else {
            format!("/staff?{query}")
        }
    };
    let next_page = page.next.map(|c| here(Some(c.encode())));
    let first_page = given(&filter.cursor).map(|_| here(None));
    let (failed_emails, more_emails) = match failed {
        Some((shown, next)) => (shown, next.map(|c| format!("/staff?emails={}", c.encode()))),
        None => (vec![], None),
    };
    let choice = |value: &'static str, label: &str, chosen: &Option<String>| Choice {
        value,
        label: label.into(),
        selected: chosen.as_deref() == Some(value),
    };
    let states: Vec<Choice> = CaseState::ALL
        .iter()
        .filter(|s| !s.is_final())
        .map(|s| choice(s.as_str(), s.describe(), &state_filter))
        .collect();
    let final_states: Vec<Choice> = CaseState::ALL
        .iter()
        .filter(|s| s.is_final())
        .map(|s| choice(s.as_str(), s.describe(), &final_state))
        .collect();
    let kinds: Vec<Choice> =
        CaseKind::ALL.iter().map(|k| choice(k.as_str(), k.as_str(), &kind_filter)).collect();
    let has_errors = !errors.is_empty();
    let title = match (searching, has_errors) {
        (true, true) => "Error: Search cases",
        (true, false) => "Search cases",
        (false, true) => "Error: Work queue",
        (false, false) => "Work queue",
    };
    let counts = QueueCounts {
        open: counts.open.words(),
        overdue: counts.overdue.words(),
        awaiting_response: counts.awaiting_response.words(),
        escalated: counts.escalated.words(),
        capped: counts.open.capped,
        cap: lists::Count { n: lists::COUNT_CAP, capped: false }.words(),
    };
    staff_page_after(
        &state,
        &session,
        session.done,
        if search_ok { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY },
        "staff/queue",
        title,
        QueueView {
            setup_tasks,
            counts,
            cases: rows,
            states,
            kinds,
            final_states,
            filtered: state_filter.is_some() || kind_filter.is_some(),
            failed_emails,
            stuck_cases: stuck
                .iter()
                .map(|c| StuckLine {
                    reference: &c.reference,
                    error: &c.error,
                    failures: c.failures,
                    since: long_date_time(c.since, tz),
                })
                .collect(),
            more_emails,
            searching,
            search_ok,
            show_closed: final_state.is_some() || closed_from.is_some() || closed_to.is_some(),
            values: SearchValues { q, closed_from, closed_to },
            next_page,
            first_page,
            form: form_errors(&errors, SEARCH_FIELDS),
        },
    )
}

// ---------------------------------------------------------------------------------------------
// The committee's view.

#[derive(Deserialize, Default)]
pub(super) struct CommitteeQuery {
    cursor: Option<String>,
}

#[derive(Serialize)]
struct CommitteeView {
    cases: Vec<CaseView>,
    /// The saved reasons for a decision, read once for every case on the page.
    decide_reasons: Vec<crate::web::reasons::ReasonOption>,
    max_words: usize,
    next_page: Option<String>,
    first_page: Option<&'static str>,
}

#[derive(Serialize)]
struct ErrorView {
    message: &'static str,
    links: [Link; 2],
}

/// Escalated cases shown at a time on the committee's view, each with its whole history.
const COMMITTEE_PAGE: i64 = 20;

/// Every escalated case, a page at a time, the one due soonest first.
pub(super) async fn committee(
    state: web::Data<AppState>,
    Staff(session): Staff,
    query: web::Query<CommitteeQuery>,
) -> HttpResponse {
    if let Err(e) = session.require(&[Role::Secretary, Role::Committee]) {
        return staff_error(&state, &session, e);
    }
    let raw_cursor = query.into_inner().cursor.filter(|c| !c.trim().is_empty());
    let cursor = match raw_cursor.as_deref().map(|c| lists::Cursor::decode(c.trim(), lists::Order::Queue)) {
        Some(Ok(c)) => Some(c),
        Some(Err(_)) => {
            return staff_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                "staff/error",
                "There is a problem",
                ErrorView {
                    message: "That page link is out of date or incomplete. Go back to the first page of escalated cases.",
                    links: [
                        Link {
                            href: "/staff/committee".into(),
                            text: "Go to the first page of escalated cases",
                        },
                        Link::work_queue(),
                    ],
                },
            )
        }
        None => None,
    };
    let s = session.clone();
    let result = db::run(&state.pool, move |conn| {
        let org = org_of(&s);
        let page = lists::queue_page(
            conn,
            &org.id,
            Some(CaseState::Escalated.as_str()),
            None,
            cursor.as_ref(),
            COMMITTEE_PAGE,
        )?;
        let views = page.rows.iter().map(|c| case_view(conn, &s, c, false)).collect::<Result<Vec<_>, _>>()?;
        let reasons = services::reasons::reasons_for(conn, org, crate::domain::ReasonStep::Decision, &[])?;
        Ok((views, reasons.into_iter().map(crate::web::reasons::ReasonOption::from).collect(), page.next))
    })
    .await;
    match result {
        Ok((views, decide_reasons, next)) => staff_page(
            &state,
            &session,
            StatusCode::OK,
            "staff/committee",
            "Escalated to the committee",
            CommitteeView {
                cases: views,
                decide_reasons,
                max_words: validate::WORDS_MAX,
                next_page: next.map(|c| format!("/staff/committee?cursor={}", c.encode())),
                first_page: raw_cursor.map(|_| "/staff/committee"),
            },
        ),
        Err(e) => staff_error(&state, &session, e),
    }
}
