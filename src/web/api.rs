//! The staff JSON API. Every route acts as the user and organisation of its bearer token.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::db::{self, from_db_time};
use crate::domain::{Action, CaseState};
use crate::error::{AppError, AppResult};
use crate::services::{self, RemovalInput, StaffContext};
use crate::store::lists;
use crate::store::{self, CaseEvent, CaseRow, CitedRule, OutboxRow};

routes! {
    post "/api/v1/removals" => record_removal,
    get "/api/v1/cases" => list_cases,
    get "/api/v1/cases/{reference}" => get_case,
    post "/api/v1/cases/{reference}/response" => respond,
    post "/api/v1/cases/{reference}/decision" => decide,
    post "/api/v1/cases/{reference}/request-info" => request_info,
    post "/api/v1/cases/{reference}/notes" => add_note,
}

/// The staff member behind the request's bearer token.
pub struct Staff(pub StaffContext);

impl FromRequest for Staff {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = req.headers().get("Authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::Internal("no app state".into()))?;
            let token = header
                .as_deref()
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    AppError::Unauthorized("send your API token as Authorization: Bearer <token>".into())
                })?
                .to_string();
            // Reads only, so they may run on the worker; the write noting the token's use, once
            // a minute at most, goes where writes go.
            let (ctx, stale) =
                db::read_by_key(&state.pool, move |conn| services::token_holder(conn, &token)).await?;
            if let Some(id) = stale {
                db::run(&state.pool, move |conn| services::touch_token(conn, &id)).await?;
            }
            super::edge::record_actor(&ctx.user.id);
            Ok(Staff(ctx))
        })
    }
}

#[derive(Serialize)]
pub struct CaseSummary {
    reference: String,
    kind: String,
    state: String,
    state_description: &'static str,
    overdue: bool,
    due_at: Option<String>,
    due_kind: Option<String>,
    /// Counted days (as the clock counts them) from today to the deadline; negative once late.
    days_left: Option<i64>,
    /// Set while the response clock waits for more information from the poster or reporter.
    info_due_at: Option<String>,
    paused_days_left: Option<i32>,
    platform: String,
    content_url: String,
    created_at: String,
    updated_at: String,
    closed_at: Option<String>,
}

#[derive(Serialize)]
pub struct CaseDetail {
    #[serde(flatten)]
    summary: CaseSummary,
    content_text: String,
    author_name: Option<String>,
    author_email: Option<String>,
    explanation: String,
    rules: Vec<CitedRule>,
    notice_method: Option<String>,
    reporter_name: Option<String>,
    reporter_email: Option<String>,
    outcome: Option<String>,
    events: Vec<EventJson>,
    emails: Vec<EmailJson>,
    /// Present once, when the case was just recorded for an author without an email address.
    #[serde(skip_serializing_if = "Option::is_none")]
    private_link: Option<String>,
}

#[derive(Serialize)]
struct EventJson {
    seq: i32,
    kind: String,
    from_state: Option<String>,
    to_state: String,
    actor: String,
    actor_role: Option<String>,
    actor_email: Option<String>,
    /// When the step came through an API token an admin issued: that admin's email.
    #[serde(skip_serializing_if = "Option::is_none")]
    token_issued_by: Option<String>,
    outcome: Option<String>,
    body: Option<String>,
    created_at: String,
}

#[derive(Serialize)]
struct EmailJson {
    id: String,
    recipient: String,
    recipient_kind: String,
    template: String,
    subject: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    created_at: String,
    sent_at: Option<String>,
}

fn rfc3339(t: chrono::NaiveDateTime) -> String {
    from_db_time(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn summary(case: &CaseRow, schedule: &crate::domain::Schedule) -> CaseSummary {
    let now = chrono::Utc::now();
    let days_left = match (
        case.due_at.map(from_db_time),
        case.due_kind.as_deref().and_then(crate::domain::DueKind::parse),
    ) {
        (Some(due), Some(kind)) if now > due => Some(-(schedule.days_left(kind, due, now).max(1) as i64)),
        (Some(due), Some(kind)) => Some(i64::from(schedule.days_left(kind, now, due))),
        _ => None,
    };
    CaseSummary {
        days_left,
        info_due_at: case.info_due_at.map(rfc3339),
        paused_days_left: case.paused_days_left,
        reference: case.reference.clone(),
        kind: case.kind.clone(),
        state: case.state.clone(),
        state_description: CaseState::parse(&case.state).map(|s| s.describe()).unwrap_or(""),
        overdue: case.overdue,
        due_at: case.due_at.map(rfc3339),
        due_kind: case.due_kind.clone(),
        platform: case.platform.clone(),
        content_url: case.content_url.clone(),
        created_at: rfc3339(case.created_at),
        updated_at: rfc3339(case.updated_at),
        closed_at: case.closed_at.map(rfc3339),
    }
}

fn detail(
    conn: &mut crate::db::DbConnection,
    case: CaseRow,
    private_link: Option<String>,
) -> AppResult<CaseDetail> {
    let org = store::org_by_id(conn, &case.organisation_id)?;
    let schedule = services::schedule_of(conn, &org)?;
    let events: Vec<CaseEvent> = store::events_of(conn, &case.id)?;
    let mut events_json = Vec::with_capacity(events.len());
    for e in events {
        let actor_email = match &e.actor_user_id {
            Some(id) => store::user_by_id(conn, id)?.map(|u| u.email),
            None => None,
        };
        let token_issued_by = match &e.token_issued_by {
            Some(id) => store::user_by_id(conn, id)?.map(|u| u.email),
            None => None,
        };
        events_json.push(EventJson {
            token_issued_by,
            seq: e.seq,
            kind: e.kind,
            from_state: e.from_state,
            to_state: e.to_state,
            actor: e.actor_kind,
            actor_role: e.actor_role,
            actor_email,
            outcome: e.outcome,
            body: e.body,
            created_at: rfc3339(e.created_at),
        });
    }
    let emails = store::emails_of(conn, &case.id)?
        .into_iter()
        .map(|m: OutboxRow| EmailJson {
            id: m.id,
            recipient: m.to_address,
            recipient_kind: m.recipient_kind,
            template: m.template,
            subject: m.subject,
            status: m.status,
            attempts: m.attempts,
            last_error: m.last_error,
            created_at: rfc3339(m.created_at),
            sent_at: m.sent_at.map(rfc3339),
        })
        .collect();
    Ok(CaseDetail {
        summary: summary(&case, &schedule),
        rules: case.rules(),
        content_text: case.content_text,
        author_name: case.author_name,
        author_email: case.author_email,
        explanation: case.explanation,
        notice_method: case.notice_method,
        reporter_name: case.reporter_name,
        reporter_email: case.reporter_email,
        outcome: case.outcome,
        events: events_json,
        emails,
        private_link,
    })
}

async fn record_removal(
    state: web::Data<AppState>,
    Staff(staff): Staff,
    body: web::Json<RemovalInput>,
) -> AppResult<HttpResponse> {
    let svc = state.services.clone();
    let input = body.into_inner();
    let case = db::run(&state.pool, move |conn| {
        let opened = services::record_removal(conn, &svc, &staff, input, Utc::now())?;
        detail(conn, opened.case, opened.private_link)
    })
    .await?;
    state.outbox_wake.notify_one();
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/cases/{}", case.summary.reference)))
        .json(case))
}

#[derive(Deserialize)]
struct CaseListQuery {
    state: Option<String>,
    overdue: Option<String>,
    kind: Option<String>,
    q: Option<String>,
    closed_from: Option<String>,
    closed_to: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// The organisation's cases a page at a time: newest first (most recently closed first with
/// `closed_from`/`closed_to`), with a `next` link to the following page.
async fn list_cases(
    state: web::Data<AppState>,
    Staff(staff): Staff,
    query: web::Query<CaseListQuery>,
) -> AppResult<HttpResponse> {
    let raw = query.into_inner();
    let nonempty =
        |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let mut errors = crate::error::FieldErrors::new();
    let mut filter = lists::CaseFilter::default();
    if let Some(s) = nonempty(&raw.state) {
        match CaseState::parse(&s) {
            Some(st) => filter.state = Some(st.as_str()),
            None => {
                errors.insert("state".into(), format!("{s:?} is not a case state"));
            }
        }
    }
    match nonempty(&raw.overdue).as_deref() {
        Some("true") | Some("1") => filter.overdue = Some(true),
        Some("false") | Some("0") => filter.overdue = Some(false),
        Some(other) => {
            errors.insert("overdue".into(), format!("{other:?} is not true or false"));
        }
        None => {}
    }
    if let Some(k) = nonempty(&raw.kind) {
        match crate::domain::CaseKind::parse(&k) {
            Some(kind) => filter.kind = Some(kind.as_str()),
            None => {
                errors.insert("kind".into(), format!("{k:?} is not removal or complaint"));
            }
        }
    }
    let mut take = |r: AppResult<()>| {
        if let Err(AppError::Validation(f)) = r {
            errors.extend(f);
        }
    };
    take(lists::Search::parse(raw.q.as_deref().unwrap_or("")).map(|s| filter.search = s));
    let limit = lists::parse_limit(raw.limit.as_deref());
    let limit_value = *limit.as_ref().unwrap_or(&lists::DEFAULT_LIMIT);
    take(limit.map(|_| ()));
    let (from, before) = lists::closed_range(
        raw.closed_from.as_deref(),
        raw.closed_to.as_deref(),
        staff.org.tz(),
        &mut errors,
    );
    filter.closed_from = from;
    filter.closed_before = before;
    let cursor = match nonempty(&raw.cursor) {
        Some(c) => match lists::Cursor::decode(&c, filter.order()) {
            Ok(c) => Some(c),
            Err(AppError::Validation(f)) => {
                errors.extend(f);
                None
            }
            Err(e) => return Err(e),
        },
        None => None,
    };
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let (list, next) = db::run(&state.pool, move |conn| {
        let page = lists::cases_page(conn, &staff.org.id, &filter, cursor.as_ref(), limit_value)?;
        let schedule = services::schedule_of(conn, &staff.org)?;
        Ok((page.rows.iter().map(|c| summary(c, &schedule)).collect::<Vec<_>>(), page.next))
    })
    .await?;
    // The next page keeps every filter as given.
    let next = next.map(|c| {
        let query = lists::query_string(&[
            ("state", nonempty(&raw.state)),
            ("overdue", nonempty(&raw.overdue)),
            ("kind", nonempty(&raw.kind)),
            ("q", nonempty(&raw.q)),
            ("closed_from", nonempty(&raw.closed_from)),
            ("closed_to", nonempty(&raw.closed_to)),
            ("limit", Some(limit_value.to_string())),
            ("cursor", Some(c.encode())),
        ]);
        format!("/api/v1/cases?{query}")
    });
    Ok(HttpResponse::Ok().json(serde_json::json!({ "cases": list, "next": next })))
}

async fn get_case(
    state: web::Data<AppState>,
    Staff(staff): Staff,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let reference = path.into_inner();
    let case = db::read_by_key(&state.pool, move |conn| {
        let case = services::find_case(conn, &staff.org, &reference)?;
        detail(conn, case, None)
    })
    .await?;
    Ok(HttpResponse::Ok().json(case))
}

#[derive(Deserialize)]
struct OutcomeBody {
    outcome: Option<String>,
    reasons: Option<String>,
    /// A saved reason whose words are the reasons, when none are written.
    reason_id: Option<String>,
}

async fn step(
    state: web::Data<AppState>,
    staff: StaffContext,
    reference: String,
    body: OutcomeBody,
    decide: bool,
) -> AppResult<HttpResponse> {
    let svc = state.services.clone();
    let case = db::run(&state.pool, move |conn| {
        let build = if decide { Action::Decide } else { Action::Respond };
        let case = services::staff_act(
            conn,
            &svc,
            &staff,
            &reference,
            build,
            body.outcome.as_deref(),
            body.reasons.as_deref(),
            body.reason_id.as_deref(),
            Utc::now(),
        )?;
        detail(conn, case, None)
    })
    .await?;
    state.outbox_wake.notify_one();
    Ok(HttpResponse::Ok().json(case))
}

async fn respond(
    state: web::Data<AppState>,
    Staff(staff): Staff,
    path: web::Path<String>,
    body: web::Json<OutcomeBody>,
) -> AppResult<HttpResponse> {
    step(state, staff, path.into_inner(), body.into_inner(), false).await
}

async fn decide(
    state: web::Data<AppState>,
    Staff(staff): Staff,
    path: web::Path<String>,
    body: web::Json<OutcomeBody>,
) -> AppResult<HttpResponse> {
    step(state, staff, path.into_inner(), body.into_inner(), true).await
}

#[derive(Deserialize)]
struct QuestionBody {
    question: Option<String>,
}

/// A moderator asks the poster or reporter for more information; the response clock stops.
async fn request_info(
    state: web::Data<AppState>,
    Staff(staff): Staff,
    path: web::Path<String>,
    body: web::Json<QuestionBody>,
) -> AppResult<HttpResponse> {
    let svc = state.services.clone();
    let reference = path.into_inner();
    let question = body.into_inner().question;
    let case = db::run(&state.pool, move |conn| {
        let case = services::request_info(conn, &svc, &staff, &reference, question.as_deref(), Utc::now())?;
        detail(conn, case, None)
    })
    .await?;
    state.outbox_wake.notify_one();
    Ok(HttpResponse::Ok().json(case))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    note: Option<String>,
}

/// An internal note, for staff eyes only; the case does not change.
async fn add_note(
    state: web::Data<AppState>,
    Staff(staff): Staff,
    path: web::Path<String>,
    body: web::Json<NoteBody>,
) -> AppResult<HttpResponse> {
    let svc = state.services.clone();
    let reference = path.into_inner();
    let note = body.into_inner().note;
    let case = db::run(&state.pool, move |conn| {
        services::add_note(conn, &svc, &staff, &reference, note.as_deref(), Utc::now())?;
        let case = services::find_case(conn, &staff.org, &reference)?;
        detail(conn, case, None)
    })
    .await?;
    Ok(HttpResponse::Created().json(case))
}
