//! The admin's pages: organisation settings, policy rules, staff and their roles, API tokens.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;

use super::render::{Admin, AdminForm, Choice, Page, StaffPage};
use crate::db::from_db_time;
use crate::domain::calendar::Nation;
use crate::domain::deadline::long_date_time;
use crate::domain::{DayCount, Role};
use crate::error::{AppError, FieldErrors};
use crate::services::{self, ChangedBy, OrgSettings, UserId};
use crate::store;
use crate::web::banner::Done;

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
    get "/staff/admin/tokens/{id}/revoke" => token_revoke_confirm,
    post "/staff/admin/tokens/{id}/revoke" => token_revoke,
    get "/staff/admin/log" => log,
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header(("Location", location.to_string())).finish()
}

/// A form's errors for its page (`errors` by field, `error_list` for the summary); each
/// field's label starts its message.
pub(super) fn form_of(errors: &FieldErrors) -> Value {
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
        ("label", "The label"),
        ("step", "The step"),
        ("body", "The words"),
        ("rule_codes", "The rules"),
        ("confirm", "Are you sure?"),
        ("appeal_window_count", "How the appeal window is counted"),
        ("response_count", "How the response time is counted"),
        ("escalation_window_count", "How the escalation window is counted"),
        ("committee_target_count", "How the committee target is counted"),
    ];
    super::form_errors(errors, LABELS)
}

#[derive(Serialize)]
struct SettingsView<'a> {
    values: &'a OrgSettings,
    slug: &'a str,
    prefix: &'a str,
    nations: Vec<Choice>,
    counts: DayCounts,
    closures: Vec<Closure>,
    #[serde(flatten)]
    form: Value,
}

/// How each clock counts its days, as four selects.
#[derive(Serialize)]
struct DayCounts {
    appeal_window: Vec<Choice>,
    response: Vec<Choice>,
    escalation_window: Vec<Choice>,
    committee_target: Vec<Choice>,
}

#[derive(Serialize)]
struct Closure {
    date: String,
    title: String,
}

#[derive(Serialize)]
struct RulesView<'a> {
    rules: &'a [store::PolicyRule],
    values: RuleValues,
    #[serde(flatten)]
    form: Value,
}

#[derive(Serialize)]
struct RuleValues {
    code: String,
    title: String,
    summary: String,
}

#[derive(Serialize)]
struct RuleEditView<'a> {
    code: &'a str,
    values: RuleValues,
    #[serde(flatten)]
    form: Value,
}

#[derive(Serialize)]
struct UsersView<'a> {
    members: &'a [services::MemberView],
    roles: Vec<Choice>,
    values: MemberValues,
    #[serde(flatten)]
    form: Value,
}

#[derive(Serialize)]
struct MemberValues {
    email: String,
    name: String,
}

#[derive(Serialize)]
struct TokensView<'a> {
    tokens: Vec<TokenRow>,
    members: &'a [services::MemberView],
    new_token: Option<String>,
    #[serde(flatten)]
    form: Value,
}

#[derive(Serialize)]
struct TokenRow {
    id: String,
    label: String,
    email: String,
    revoked: bool,
    issued_by: Option<String>,
    created: String,
    last_used: Option<String>,
}

#[derive(Serialize)]
struct LogView {
    entries: Vec<services::OrgLogEntry>,
    more: bool,
    shown: i64,
}

fn titled(title: &str, errors: &FieldErrors) -> String {
    if errors.is_empty() {
        title.to_string()
    } else {
        format!("Error: {title}")
    }
}

/// The status of a form drawn again with its errors, or drawn fresh.
fn status_for(errors: &FieldErrors) -> StatusCode {
    if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

// Settings.

async fn settings_page(page: &StaffPage, values: &OrgSettings, errors: &FieldErrors) -> Page {
    let org = page.session.org().clone();
    let o = org.clone();
    let closures = page.run(move |conn| services::closures(conn, &o)).await?;
    let closures = closures
        .into_iter()
        .map(|(d, title)| Closure { date: d.format("%A %-d %B %Y").to_string(), title })
        .collect();
    let nations = Nation::ALL
        .iter()
        .map(|n| Choice {
            value: n.as_str(),
            label: nation_label(*n).into(),
            selected: values.nation == n.as_str(),
        })
        .collect();
    let count_options = |current: &str| -> Vec<Choice> {
        DayCount::ALL
            .iter()
            .map(|c| Choice {
                value: c.as_str(),
                label: format!("{} days", c.as_str()),
                selected: current == c.as_str(),
            })
            .collect()
    };
    let counts = DayCounts {
        appeal_window: count_options(&values.appeal_window_count),
        response: count_options(&values.response_count),
        escalation_window: count_options(&values.escalation_window_count),
        committee_target: count_options(&values.committee_target_count),
    };
    Ok(page.page(
        status_for(errors),
        "admin/settings",
        &titled("Organisation settings", errors),
        SettingsView {
            values,
            slug: &org.slug,
            prefix: &org.reference_prefix,
            nations,
            counts,
            closures,
            form: form_of(errors),
        },
    ))
}

async fn settings(admin: Admin) -> Page {
    settings_page(&admin, &OrgSettings::of(admin.session.org()), &FieldErrors::new()).await
}

async fn settings_submit(form: AdminForm) -> Page {
    // A field the form did not send keeps its current value.
    let current = OrgSettings::of(form.session.org());
    let get = |k: &str, now: &String| form.1.get(k).cloned().unwrap_or_else(|| now.clone());
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
    let (staff, v) = (form.session.staff(), values.clone());
    let saved = form.attempt("name", move |conn| {
        services::update_org(conn, &staff.org, &v, ChangedBy::Staff(&staff), Utc::now())
    });
    match saved.await? {
        Ok(()) => Ok(see_other(&Done::SettingsSaved.at("/staff/admin"))),
        Err(errors) => settings_page(&form, &values, &errors).await,
    }
}

async fn closure_add(form: AdminForm) -> Page {
    let (day_text, title) = (form.get("day"), form.get("title"));
    let staff = form.session.staff();
    let added = form
        .attempt("day", move |conn| {
            let day = chrono::NaiveDate::parse_from_str(day_text.trim(), "%Y-%m-%d").map_err(|_| {
                AppError::field("day", "Enter the date as YYYY-MM-DD, for example 2026-12-24")
            })?;
            services::add_closed_day(
                conn,
                None,
                Some(&staff.org),
                day,
                &title,
                ChangedBy::Staff(&staff),
                Utc::now(),
            )
        })
        .await?;
    match added {
        Ok(()) => Ok(see_other(&Done::ClosureChanged.at("/staff/admin"))),
        Err(errors) => settings_page(&form, &OrgSettings::of(form.session.org()), &errors).await,
    }
}

// Rules.

async fn rules_page(page: &StaffPage, values: &HashMap<String, String>, errors: &FieldErrors) -> Page {
    let org_id = page.session.org().id.clone();
    let rules = page.run(move |conn| Ok(store::rules_of(conn, &org_id)?)).await?;
    let get = |k: &str| values.get(k).cloned().unwrap_or_default();
    Ok(page.page(
        status_for(errors),
        "admin/rules",
        &titled("Policy rules", errors),
        RulesView {
            rules: &rules,
            values: RuleValues { code: get("code"), title: get("title"), summary: get("summary") },
            form: form_of(errors),
        },
    ))
}

async fn rules(admin: Admin) -> Page {
    rules_page(&admin, &HashMap::new(), &FieldErrors::new()).await
}

async fn rule_add(form: AdminForm) -> Page {
    let (staff, code, title, summary) =
        (form.session.staff(), form.get("code"), form.get("title"), form.get("summary"));
    match form
        .attempt("code", move |conn| {
            services::add_rule(
                conn,
                &staff.org.slug,
                &code,
                &title,
                &summary,
                ChangedBy::Staff(&staff),
                Utc::now(),
            )
        })
        .await?
    {
        Ok(_) => Ok(see_other(&Done::RuleAdded.at("/staff/admin/rules"))),
        Err(errors) => rules_page(&form, &form.1, &errors).await,
    }
}

fn rule_edit_page(
    page: &StaffPage,
    code: &str,
    values: &HashMap<String, String>,
    errors: &FieldErrors,
) -> HttpResponse {
    let get = |k: &str| values.get(k).cloned().unwrap_or_default();
    page.page(
        status_for(errors),
        "admin/rule_edit",
        &titled(&format!("Edit rule {code}"), errors),
        RuleEditView {
            code,
            values: RuleValues { code: code.into(), title: get("title"), summary: get("summary") },
            form: form_of(errors),
        },
    )
}

async fn rule_edit(admin: Admin, path: web::Path<String>) -> Page {
    let code = path.into_inner();
    let (org_id, c) = (admin.session.org().id.clone(), code.clone());
    let rule =
        admin.run(move |conn| Ok(store::rules_of(conn, &org_id)?.into_iter().find(|r| r.code == c))).await?;
    let rule = rule.ok_or_else(|| admin.fail(AppError::NotFound(format!("No rule {code}."))))?;
    let values = HashMap::from([("title".to_string(), rule.title), ("summary".to_string(), rule.summary)]);
    Ok(rule_edit_page(&admin, &code, &values, &FieldErrors::new()))
}

async fn rule_edit_submit(form: AdminForm, path: web::Path<String>) -> Page {
    let code = path.into_inner();
    let (staff, c, title, summary) =
        (form.session.staff(), code.clone(), form.get("title"), form.get("summary"));
    match form
        .attempt("title", move |conn| {
            services::update_rule(
                conn,
                &staff.org,
                &c,
                &title,
                &summary,
                ChangedBy::Staff(&staff),
                Utc::now(),
            )
        })
        .await?
    {
        Ok(()) => Ok(see_other(&Done::RuleSaved.at("/staff/admin/rules"))),
        Err(errors) => Ok(rule_edit_page(&form, &code, &form.1, &errors)),
    }
}

// Users.

async fn users_page(page: &StaffPage, values: &HashMap<String, String>, errors: &FieldErrors) -> Page {
    let o = page.session.org().clone();
    let members = page.run(move |conn| services::members(conn, &o)).await?;
    let get = |k: &str| values.get(k).cloned().unwrap_or_default();
    let roles = Role::ALL
        .iter()
        .map(|r| Choice { value: r.as_str(), label: r.words().into(), selected: get("role") == r.as_str() })
        .collect();
    Ok(page.page(
        status_for(errors),
        "admin/users",
        &titled("Staff and roles", errors),
        UsersView {
            members: &members,
            roles,
            values: MemberValues { email: get("email"), name: get("name") },
            form: form_of(errors),
        },
    ))
}

async fn users(admin: Admin) -> Page {
    users_page(&admin, &HashMap::new(), &FieldErrors::new()).await
}

async fn user_add(form: AdminForm) -> Page {
    let staff = form.session.staff();
    let (email, name, role, password) =
        (form.get("email"), form.get("name"), form.get("role"), form.get("password"));
    let added = form
        .attempt("role", move |conn| {
            let password = (!password.is_empty()).then_some(password);
            let by = ChangedBy::Staff(&staff);
            services::add_user(
                conn,
                &staff.org.slug,
                services::NewMember {
                    email: &email,
                    name: &name,
                    role: &role,
                    password: password.as_deref(),
                },
                by,
                Utc::now(),
            )
        })
        .await?;
    match added {
        Ok(_) => Ok(see_other(&Done::StaffAdded.at("/staff/admin/users"))),
        Err(errors) => users_page(&form, &form.1, &errors).await,
    }
}

async fn role_remove(form: AdminForm, path: web::Path<String>) -> Page {
    let role =
        Role::parse(&form.get("role")).ok_or_else(|| form.fail(AppError::field("role", "unknown role")))?;
    let (staff, id) = (form.session.staff(), UserId::from_raw(path.into_inner()));
    form.run(move |conn| {
        services::remove_role(conn, &staff.org, &id, role, ChangedBy::Staff(&staff), Utc::now())
    })
    .await?;
    Ok(see_other(&Done::RoleRemoved.at("/staff/admin/users")))
}

// API tokens.

async fn tokens_page(
    page: &StaffPage,
    status: StatusCode,
    new_token: Option<String>,
    errors: &FieldErrors,
) -> Page {
    let o = page.session.org().clone();
    let tz = o.tz();
    let (tokens, members) =
        page.run(move |conn| Ok((services::tokens(conn, &o)?, services::members(conn, &o)?))).await?;
    let list = tokens
        .into_iter()
        .map(|t| TokenRow {
            created: long_date_time(from_db_time(t.created_at), tz),
            last_used: t.last_used_at.map(|u| long_date_time(from_db_time(u), tz)),
            id: t.id,
            label: t.label,
            email: t.email,
            revoked: t.revoked,
            issued_by: t.issued_by,
        })
        .collect();
    Ok(page.page(
        status,
        "admin/tokens",
        &titled("API tokens", errors),
        TokensView { tokens: list, members: &members, new_token, form: form_of(errors) },
    ))
}

async fn tokens(admin: Admin) -> Page {
    tokens_page(&admin, StatusCode::OK, None, &FieldErrors::new()).await
}

async fn token_add(form: AdminForm) -> Page {
    let slug = form.session.org().slug.clone();
    let (email, label) = (form.get("email"), form.get("label"));
    let issuer = form.session.user.id.clone();
    let added = form
        .attempt("email", move |conn| {
            services::add_token(conn, &slug, &email, &label, Some(&issuer), Utc::now()).map_err(|e| match e {
                // An address that is no member here is the email field's fault.
                AppError::NotFound(m) | AppError::Forbidden(m) => AppError::field("email", m),
                other => other,
            })
        })
        .await?;
    match added {
        Ok(token) => tokens_page(&form, StatusCode::CREATED, Some(token), &FieldErrors::new()).await,
        Err(errors) => tokens_page(&form, StatusCode::UNPROCESSABLE_ENTITY, None, &errors).await,
    }
}

/// The question before a token is revoked: whatever uses it stops working at once.
#[derive(Serialize)]
struct RevokeView {
    id: String,
    label: String,
    email: String,
}

async fn token_revoke_confirm(Admin(page): Admin, path: web::Path<String>) -> Page {
    let (org, id) = (page.session.org().clone(), path.into_inner());
    let token = page
        .run(move |conn| {
            services::tokens(conn, &org)?
                .into_iter()
                .find(|t| t.id == id && !t.revoked)
                .ok_or_else(|| AppError::NotFound("There is no such token, or it is already revoked.".into()))
        })
        .await?;
    Ok(page.page(
        StatusCode::OK,
        "admin/token_revoke",
        "Revoke an API token",
        RevokeView { id: token.id, label: token.label, email: token.email },
    ))
}

async fn token_revoke(form: AdminForm, path: web::Path<String>) -> Page {
    let (staff, id) = (form.session.staff(), path.into_inner());
    if form.get("confirm") != "yes" {
        // The id came in the address: it goes back out encoded, whatever it holds.
        return Ok(see_other(&format!("/staff/admin/tokens/{}/revoke", store::lists::url_encode(&id))));
    }
    form.run(move |conn| services::revoke_token(conn, &staff.org, &id, ChangedBy::Staff(&staff), Utc::now()))
        .await?;
    Ok(see_other(&Done::TokenRevoked.at("/staff/admin/tokens")))
}

// The organisation's log.

/// How many of the newest changes the log page shows.
const LOG_PAGE: i64 = 200;

async fn log(admin: Admin) -> Page {
    let org = admin.session.org().clone();
    let entries = admin.run(move |conn| services::org_log(conn, &org, LOG_PAGE + 1)).await?;
    let more = entries.len() as i64 > LOG_PAGE;
    let entries: Vec<_> = entries.into_iter().take(LOG_PAGE as usize).collect();
    Ok(admin.page(
        StatusCode::OK,
        "admin/log",
        "Organisation log",
        LogView { entries, more, shown: LOG_PAGE },
    ))
}

pub fn nation_label(n: Nation) -> &'static str {
    match n {
        Nation::EnglandAndWales => "England and Wales",
        Nation::Scotland => "Scotland",
        Nation::NorthernIreland => "Northern Ireland",
    }
}
