//! The admin's pages: organisation settings, policy rules, staff and their roles, API tokens.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde_json::{json, Value};

use super::session::{Staff, StaffSession};
use super::staff::{staff_error, staff_page};
use super::AppState;
use crate::db::{self, from_db_time};
use crate::domain::calendar::Nation;
use crate::domain::deadline::long_date_time;
use crate::domain::{DayCount, Role};
use crate::error::{AppError, FieldErrors};
use crate::services::{self, OrgSettings};
use crate::store;

routes! {
    get "/staff/admin" => settings,
    post "/staff/admin/settings" => settings_submit,
    post "/staff/admin/closures" => closure_add,
    get "/staff/admin/rules" => rules,
    post "/staff/admin/rules" => rule_add,
    get "/staff/admin/rules/{code}" => rule_edit,
    post "/staff/admin/rules/{code}" => rule_edit_submit,
    get "/staff/admin/users" => users,
    post "/staff/admin/users" => user_add,
    post "/staff/admin/users/{id}/remove-role" => role_remove,
    get "/staff/admin/tokens" => tokens,
    post "/staff/admin/tokens" => token_add,
    post "/staff/admin/tokens/{id}/revoke" => token_revoke,
}

type Form = web::Form<HashMap<String, String>>;

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header(("Location", location.to_string())).finish()
}

/// Admin only, and for changes a valid CSRF token.
fn guard(session: &StaffSession, form: Option<&HashMap<String, String>>) -> Result<(), AppError> {
    if let Some(form) = form {
        session.check_csrf(form.get("csrf").map(String::as_str))?;
    }
    session.require(&[Role::Admin])
}

/// Merges a form's errors into a page's data; each field's label starts its message.
fn with_errors(mut data: Value, errors: &FieldErrors) -> Value {
    const LABELS: &[(&str, &str)] = &[
        ("name", "The name"),
        ("secretary_email", "The secretary's email address"),
        ("timezone", "The time zone"),
        ("appeal_window_days", "The appeal window"),
        ("response_days", "The response time"),
        ("escalation_window_days", "The escalation window"),
        ("committee_target_days", "The committee target"),
        ("nation", "The nation"),
        ("response_reminder_days", "The response reminder"),
        ("committee_reminder_days", "The committee reminder"),
        ("info_answer_days", "The time to answer a request for information"),
        ("day", "The date"),
        ("code", "The code"),
        ("title", "The title"),
        ("summary", "The summary"),
        ("email", "The email address"),
        ("role", "The role"),
        ("password", "The password"),
    ];
    if let (Value::Object(d), Value::Object(e)) = (&mut data, super::form_errors(errors, LABELS)) {
        d.extend(e);
    }
    data
}

fn titled(title: &str, errors: &FieldErrors) -> String {
    if errors.is_empty() {
        title.to_string()
    } else {
        format!("Error: {title}")
    }
}

/// How an admin's change ended: done, input refused (shown again on the form, a conflict on
/// the field it concerns), or an error page.
enum Ended<T> {
    Done(T),
    Refused(FieldErrors),
    Failed(AppError),
}

fn ended<T>(result: Result<T, AppError>, conflict_field: &str) -> Ended<T> {
    match result {
        Ok(done) => Ended::Done(done),
        Err(AppError::Validation(errors)) => Ended::Refused(errors),
        Err(AppError::Conflict(m)) => Ended::Refused(FieldErrors::from([(conflict_field.to_string(), m)])),
        Err(e) => Ended::Failed(e),
    }
}

fn org(session: &StaffSession) -> store::Organisation {
    session.org().clone()
}

// Settings.

async fn settings_page(
    state: &AppState,
    session: &StaffSession,
    status: StatusCode,
    values: &OrgSettings,
    errors: &FieldErrors,
) -> HttpResponse {
    let org = org(session);
    let o = org.clone();
    let closures = match db::run(&state.pool, move |conn| services::closures(conn, &o)).await {
        Ok(c) => c,
        Err(e) => return staff_error(state, session, e),
    };
    let closures: Vec<Value> = closures
        .iter()
        .map(|(d, t)| json!({ "date": d.format("%A %-d %B %Y").to_string(), "title": t }))
        .collect();
    let nations: Vec<Value> = Nation::ALL
        .iter()
        .map(|n| json!({ "value": n.as_str(), "label": nation_label(*n), "selected": values.nation == n.as_str() }))
        .collect();
    let count_options = |current: &str| -> Vec<Value> {
        DayCount::ALL
            .iter()
            .map(|c| json!({ "value": c.as_str(), "label": format!("{} days", c.as_str()), "selected": current == c.as_str() }))
            .collect()
    };
    let counts = json!({
        "appeal_window": count_options(&values.appeal_window_count),
        "response": count_options(&values.response_count),
        "escalation_window": count_options(&values.escalation_window_count),
        "committee_target": count_options(&values.committee_target_count),
    });
    staff_page(
        state,
        session,
        status,
        "admin/settings",
        &titled("Organisation settings", errors),
        with_errors(
            json!({
                "values": values, "slug": org.slug, "prefix": org.reference_prefix,
                "nations": nations, "counts": counts, "closures": closures,
            }),
            errors,
        ),
    )
}

async fn settings(state: web::Data<AppState>, Staff(session): Staff) -> HttpResponse {
    if let Err(e) = guard(&session, None) {
        return staff_error(&state, &session, e);
    }
    settings_page(&state, &session, StatusCode::OK, &OrgSettings::of(&org(&session)), &FieldErrors::new())
        .await
}

async fn settings_submit(state: web::Data<AppState>, Staff(session): Staff, form: Form) -> HttpResponse {
    if let Err(e) = guard(&session, Some(&form)) {
        return staff_error(&state, &session, e);
    }
    // A field the form did not send keeps its current value.
    let current = OrgSettings::of(&org(&session));
    let get = |k: &str, now: &String| form.get(k).cloned().unwrap_or_else(|| now.clone());
    let values = OrgSettings {
        name: get("name", &current.name),
        secretary_email: get("secretary_email", &current.secretary_email),
        timezone: get("timezone", &current.timezone),
        appeal_window_days: get("appeal_window_days", &current.appeal_window_days),
        response_days: get("response_days", &current.response_days),
        escalation_window_days: get("escalation_window_days", &current.escalation_window_days),
        committee_target_days: get("committee_target_days", &current.committee_target_days),
        nation: get("nation", &current.nation),
        appeal_window_count: get("appeal_window_count", &current.appeal_window_count),
        response_count: get("response_count", &current.response_count),
        escalation_window_count: get("escalation_window_count", &current.escalation_window_count),
        committee_target_count: get("committee_target_count", &current.committee_target_count),
        response_reminder_days: get("response_reminder_days", &current.response_reminder_days),
        committee_reminder_days: get("committee_reminder_days", &current.committee_reminder_days),
        info_answer_days: get("info_answer_days", &current.info_answer_days),
    };
    let (o, v) = (org(&session), values.clone());
    match ended(db::run(&state.pool, move |conn| services::update_org(conn, &o, &v)).await, "name") {
        Ended::Done(()) => see_other("/staff/admin?saved=1"),
        Ended::Refused(errors) => {
            settings_page(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, &values, &errors).await
        }
        Ended::Failed(e) => staff_error(&state, &session, e),
    }
}

// Rules.

async fn rules_page(
    state: &AppState,
    session: &StaffSession,
    status: StatusCode,
    values: &HashMap<String, String>,
    errors: &FieldErrors,
) -> HttpResponse {
    let org_id = org(session).id;
    let rules = match db::run(&state.pool, move |conn| Ok(store::rules_of(conn, &org_id)?)).await {
        Ok(r) => r,
        Err(e) => return staff_error(state, session, e),
    };
    let list: Vec<Value> =
        rules.iter().map(|r| json!({ "code": r.code, "title": r.title, "summary": r.summary })).collect();
    let get = |k: &str| values.get(k).cloned().unwrap_or_default();
    staff_page(
        state,
        session,
        status,
        "admin/rules",
        &titled("Policy rules", errors),
        with_errors(
            json!({ "rules": list, "values": { "code": get("code"), "title": get("title"), "summary": get("summary") } }),
            errors,
        ),
    )
}

async fn rules(state: web::Data<AppState>, Staff(session): Staff) -> HttpResponse {
    if let Err(e) = guard(&session, None) {
        return staff_error(&state, &session, e);
    }
    rules_page(&state, &session, StatusCode::OK, &HashMap::new(), &FieldErrors::new()).await
}

async fn rule_add(state: web::Data<AppState>, Staff(session): Staff, form: Form) -> HttpResponse {
    if let Err(e) = guard(&session, Some(&form)) {
        return staff_error(&state, &session, e);
    }
    let form = form.into_inner();
    let (slug, f) = (org(&session).slug, form.clone());
    let get = move |k: &str| f.get(k).cloned().unwrap_or_default();
    let result = db::run(&state.pool, move |conn| {
        services::add_rule(conn, &slug, &get("code"), &get("title"), &get("summary"), Utc::now())
    })
    .await;
    match ended(result, "code") {
        Ended::Done(_) => see_other("/staff/admin/rules"),
        Ended::Refused(errors) => {
            rules_page(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, &form, &errors).await
        }
        Ended::Failed(e) => staff_error(&state, &session, e),
    }
}

fn rule_edit_page(
    state: &AppState,
    session: &StaffSession,
    status: StatusCode,
    code: &str,
    values: &HashMap<String, String>,
    errors: &FieldErrors,
) -> HttpResponse {
    let get = |k: &str| values.get(k).cloned().unwrap_or_default();
    staff_page(
        state,
        session,
        status,
        "admin/rule_edit",
        &titled(&format!("Edit rule {code}"), errors),
        with_errors(
            json!({ "code": code, "values": { "title": get("title"), "summary": get("summary") } }),
            errors,
        ),
    )
}

async fn rule_edit(
    state: web::Data<AppState>,
    Staff(session): Staff,
    path: web::Path<String>,
) -> HttpResponse {
    if let Err(e) = guard(&session, None) {
        return staff_error(&state, &session, e);
    }
    let code = path.into_inner();
    let (org_id, c) = (org(&session).id, code.clone());
    match db::run(&state.pool, move |conn| {
        Ok(store::rules_of(conn, &org_id)?.into_iter().find(|r| r.code == c))
    })
    .await
    {
        Ok(Some(rule)) => {
            let values =
                HashMap::from([("title".to_string(), rule.title), ("summary".to_string(), rule.summary)]);
            rule_edit_page(&state, &session, StatusCode::OK, &code, &values, &FieldErrors::new())
        }
        Ok(None) => staff_error(&state, &session, AppError::NotFound(format!("No rule {code}."))),
        Err(e) => staff_error(&state, &session, e),
    }
}

async fn rule_edit_submit(
    state: web::Data<AppState>,
    Staff(session): Staff,
    path: web::Path<String>,
    form: Form,
) -> HttpResponse {
    if let Err(e) = guard(&session, Some(&form)) {
        return staff_error(&state, &session, e);
    }
    let code = path.into_inner();
    let form = form.into_inner();
    let (o, c, f) = (org(&session), code.clone(), form.clone());
    let result = db::run(&state.pool, move |conn| {
        let get = |k: &str| f.get(k).cloned().unwrap_or_default();
        services::update_rule(conn, &o, &c, &get("title"), &get("summary"), Utc::now())
    })
    .await;
    match ended(result, "title") {
        Ended::Done(()) => see_other("/staff/admin/rules"),
        Ended::Refused(errors) => {
            rule_edit_page(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, &code, &form, &errors)
        }
        Ended::Failed(e) => staff_error(&state, &session, e),
    }
}

// Users.

async fn users_page(
    state: &AppState,
    session: &StaffSession,
    status: StatusCode,
    values: &HashMap<String, String>,
    errors: &FieldErrors,
) -> HttpResponse {
    let o = org(session);
    let members = match db::run(&state.pool, move |conn| services::members(conn, &o)).await {
        Ok(m) => m,
        Err(e) => return staff_error(state, session, e),
    };
    let get = |k: &str| values.get(k).cloned().unwrap_or_default();
    let roles: Vec<Value> = Role::ALL
        .iter()
        .map(|r| json!({ "value": r.as_str(), "selected": get("role") == r.as_str() }))
        .collect();
    staff_page(
        state,
        session,
        status,
        "admin/users",
        &titled("Staff and roles", errors),
        with_errors(
            json!({ "members": members, "roles": roles, "values": { "email": get("email"), "name": get("name") } }),
            errors,
        ),
    )
}

async fn users(state: web::Data<AppState>, Staff(session): Staff) -> HttpResponse {
    if let Err(e) = guard(&session, None) {
        return staff_error(&state, &session, e);
    }
    users_page(&state, &session, StatusCode::OK, &HashMap::new(), &FieldErrors::new()).await
}

async fn user_add(state: web::Data<AppState>, Staff(session): Staff, form: Form) -> HttpResponse {
    if let Err(e) = guard(&session, Some(&form)) {
        return staff_error(&state, &session, e);
    }
    let form = form.into_inner();
    let (slug, f) = (org(&session).slug, form.clone());
    let result = db::run(&state.pool, move |conn| {
        let get = |k: &str| f.get(k).cloned().unwrap_or_default();
        let password = get("password");
        let password = (!password.is_empty()).then_some(password);
        services::add_user(
            conn,
            &slug,
            &get("email"),
            &get("name"),
            &get("role"),
            password.as_deref(),
            Utc::now(),
        )
    })
    .await;
    match ended(result, "role") {
        Ended::Done(_) => see_other("/staff/admin/users"),
        Ended::Refused(errors) => {
            users_page(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, &form, &errors).await
        }
        Ended::Failed(e) => staff_error(&state, &session, e),
    }
}

async fn role_remove(
    state: web::Data<AppState>,
    Staff(session): Staff,
    path: web::Path<String>,
    form: Form,
) -> HttpResponse {
    if let Err(e) = guard(&session, Some(&form)) {
        return staff_error(&state, &session, e);
    }
    let Some(role) = form.get("role").and_then(|r| Role::parse(r)) else {
        return staff_error(&state, &session, AppError::field("role", "unknown role"));
    };
    let (o, id) = (org(&session), path.into_inner());
    match db::run(&state.pool, move |conn| services::remove_role(conn, &o, &id, role)).await {
        Ok(()) => see_other("/staff/admin/users"),
        Err(e) => staff_error(&state, &session, e),
    }
}

// API tokens.

async fn tokens_page(
    state: &AppState,
    session: &StaffSession,
    status: StatusCode,
    new_token: Option<String>,
    errors: &FieldErrors,
) -> HttpResponse {
    let o = org(session);
    let tz = o.tz();
    let result =
        db::run(&state.pool, move |conn| Ok((services::tokens(conn, &o)?, services::members(conn, &o)?)))
            .await;
    let (tokens, members) = match result {
        Ok(t) => t,
        Err(e) => return staff_error(state, session, e),
    };
    let list: Vec<Value> = tokens
        .iter()
        .map(|t| {
            json!({
                "id": t.id, "label": t.label, "email": t.email, "revoked": t.revoked, "issued_by": t.issued_by,
                "created": long_date_time(from_db_time(t.created_at), tz),
                "last_used": t.last_used_at.map(|u| long_date_time(from_db_time(u), tz)),
            })
        })
        .collect();
    staff_page(
        state,
        session,
        status,
        "admin/tokens",
        &titled("API tokens", errors),
        with_errors(json!({ "tokens": list, "members": members, "new_token": new_token }), errors),
    )
}

async fn tokens(state: web::Data<AppState>, Staff(session): Staff) -> HttpResponse {
    if let Err(e) = guard(&session, None) {
        return staff_error(&state, &session, e);
    }
    tokens_page(&state, &session, StatusCode::OK, None, &FieldErrors::new()).await
}

async fn token_add(state: web::Data<AppState>, Staff(session): Staff, form: Form) -> HttpResponse {
    if let Err(e) = guard(&session, Some(&form)) {
        return staff_error(&state, &session, e);
    }
    let slug = org(&session).slug;
    let email = form.get("email").cloned().unwrap_or_default();
    let label = form.get("label").cloned().unwrap_or_default();
    let label = if label.trim().is_empty() { "web".to_string() } else { label };
    let issuer = session.user.id.clone();
    match db::run(&state.pool, move |conn| {
        services::add_token(conn, &slug, &email, &label, Some(&issuer), Utc::now())
    })
    .await
    {
        Ok(token) => {
            tokens_page(&state, &session, StatusCode::CREATED, Some(token), &FieldErrors::new()).await
        }
        Err(AppError::NotFound(m) | AppError::Forbidden(m)) => {
            let errors = FieldErrors::from([("email".to_string(), m)]);
            tokens_page(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, None, &errors).await
        }
        Err(AppError::Validation(errors)) => {
            tokens_page(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, None, &errors).await
        }
        Err(e) => staff_error(&state, &session, e),
    }
}

async fn token_revoke(
    state: web::Data<AppState>,
    Staff(session): Staff,
    path: web::Path<String>,
    form: Form,
) -> HttpResponse {
    if let Err(e) = guard(&session, Some(&form)) {
        return staff_error(&state, &session, e);
    }
    let (o, id) = (org(&session), path.into_inner());
    match db::run(&state.pool, move |conn| services::revoke_token(conn, &o, &id, Utc::now())).await {
        Ok(()) => see_other("/staff/admin/tokens"),
        Err(e) => staff_error(&state, &session, e),
    }
}

pub fn nation_label(n: Nation) -> &'static str {
    match n {
        Nation::EnglandAndWales => "England and Wales",
        Nation::Scotland => "Scotland",
        Nation::NorthernIreland => "Northern Ireland",
    }
}

async fn closure_add(state: web::Data<AppState>, Staff(session): Staff, form: Form) -> HttpResponse {
    if let Err(e) = guard(&session, Some(&form)) {
        return staff_error(&state, &session, e);
    }
    let day_text = form.get("day").cloned().unwrap_or_default();
    let title = form.get("title").cloned().unwrap_or_default();
    let result = match chrono::NaiveDate::parse_from_str(day_text.trim(), "%Y-%m-%d") {
        Ok(day) => {
            let o = org(&session);
            db::run(&state.pool, move |conn| {
                services::add_closed_day(conn, None, Some(&o), day, &title, Utc::now())
            })
            .await
        }
        Err(_) => Err(AppError::field("day", "Enter the date as YYYY-MM-DD, for example 2026-12-24")),
    };
    match ended(result, "day") {
        Ended::Done(()) => see_other("/staff/admin"),
        Ended::Refused(errors) => {
            let current = OrgSettings::of(&org(&session));
            settings_page(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, &current, &errors).await
        }
        Ended::Failed(e) => staff_error(&state, &session, e),
    }
}
