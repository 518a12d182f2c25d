//! The admin pages of saved reasons, and the choice of them each reasons form offers.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::Serialize;

use super::admin::form_of;
use super::banner::Done;
use super::render::{Admin, AdminForm, Choice, Page, StaffPage};
use crate::domain::ReasonStep;
use crate::error::FieldErrors;
use crate::services::reasons::{self, ReasonInput};
use crate::services::ChangedBy;
use crate::store::SavedReason;

routes! {
    get "/staff/admin/reasons" => list,
    post "/staff/admin/reasons" => add,
    get "/staff/admin/reasons/{id}" => edit,
    post "/staff/admin/reasons/{id}" => edit_submit,
    post "/staff/admin/reasons/{id}/remove" => remove,
}

/// A saved reason as a form offers it: its words go into the reasons box.
#[derive(Debug, Serialize)]
pub struct ReasonOption {
    pub id: String,
    pub title: String,
    pub body: String,
}

impl From<SavedReason> for ReasonOption {
    fn from(r: SavedReason) -> Self {
        ReasonOption { id: r.id, title: r.title, body: r.body }
    }
}

#[derive(Serialize)]
struct ReasonLine {
    id: String,
    step: &'static str,
    title: String,
    rule_codes: String,
}

#[derive(Serialize)]
struct ReasonsView {
    reasons: Vec<ReasonLine>,
    steps: Vec<Choice>,
    values: ReasonInput,
    #[serde(flatten)]
    form: serde_json::Value,
}

fn input_of(form: &HashMap<String, String>) -> ReasonInput {
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    ReasonInput { step: get("step"), title: get("title"), body: get("body"), rule_codes: get("rule_codes") }
}

fn step_choices(chosen: &str) -> Vec<Choice> {
    ReasonStep::ALL
        .iter()
        .map(|s| Choice { value: s.as_str(), label: s.words().into(), selected: s.as_str() == chosen })
        .collect()
}

fn titled(title: &str, errors: &FieldErrors) -> (StatusCode, String) {
    if errors.is_empty() {
        (StatusCode::OK, title.to_string())
    } else {
        (StatusCode::UNPROCESSABLE_ENTITY, format!("Error: {title}"))
    }
}

async fn list_page(page: &StaffPage, values: ReasonInput, errors: &FieldErrors) -> Page {
    let org = page.session.org().id.clone();
    let saved = page.run(move |conn| Ok(crate::store::reasons_of(conn, &org)?)).await?;
    let reasons = saved
        .into_iter()
        .map(|r| ReasonLine {
            step: ReasonStep::parse(&r.step).map_or("", ReasonStep::words),
            id: r.id,
            title: r.title,
            rule_codes: r.rule_codes,
        })
        .collect();
    let (status, title) = titled("Saved reasons", errors);
    let view = ReasonsView { reasons, steps: step_choices(&values.step), values, form: form_of(errors) };
    Ok(page.page(status, "admin/reasons", &title, view))
}

async fn list(admin: Admin) -> Page {
    let empty = ReasonInput {
        step: String::new(),
        title: String::new(),
        body: String::new(),
        rule_codes: String::new(),
    };
    list_page(&admin, empty, &FieldErrors::new()).await
}

async fn add(form: AdminForm) -> Page {
    let (staff, input) = (form.session.staff(), input_of(&form.1));
    let i = input.clone();
    let added = form
        .attempt("title", move |conn| {
            reasons::add_reason(conn, &staff.org, &i, ChangedBy::Staff(&staff), Utc::now())
        })
        .await?;
    match added {
        Ok(_) => Ok(see_other(&Done::ReasonSaved.at("/staff/admin/reasons"))),
        Err(errors) => list_page(&form, input, &errors).await,
    }
}

#[derive(Serialize)]
struct EditView {
    id: String,
    steps: Vec<Choice>,
    values: ReasonInput,
    #[serde(flatten)]
    form: serde_json::Value,
}

fn edit_page(page: &StaffPage, id: String, values: ReasonInput, errors: &FieldErrors) -> Page {
    let (status, title) = titled("Edit a saved reason", errors);
    let view = EditView { id, steps: step_choices(&values.step), values, form: form_of(errors) };
    Ok(page.page(status, "admin/reason_edit", &title, view))
}

async fn edit(admin: Admin, path: web::Path<String>) -> Page {
    let (org, id) = (admin.session.org().clone(), path.into_inner());
    let i = id.clone();
    let r = admin.run(move |conn| reasons::find_reason(conn, &org, &i)).await?;
    let values = ReasonInput { step: r.step, title: r.title, body: r.body, rule_codes: r.rule_codes };
    edit_page(&admin, id, values, &FieldErrors::new())
}

async fn edit_submit(form: AdminForm, path: web::Path<String>) -> Page {
    let (staff, input, id) = (form.session.staff(), input_of(&form.1), path.into_inner());
    let (i, rid) = (input.clone(), id.clone());
    let saved = form
        .attempt("title", move |conn| {
            reasons::edit_reason(conn, &staff.org, &rid, &i, ChangedBy::Staff(&staff), Utc::now())
        })
        .await?;
    match saved {
        Ok(()) => Ok(see_other(&Done::ReasonSaved.at("/staff/admin/reasons"))),
        Err(errors) => edit_page(&form, id, input, &errors),
    }
}

async fn remove(form: AdminForm, path: web::Path<String>) -> Page {
    let (staff, id) = (form.session.staff(), path.into_inner());
    if form.get("confirm") != "yes" {
        let errors = FieldErrors::from([(
            "confirm".to_string(),
            "Tick the box to confirm that the reason should be removed".to_string(),
        )]);
        let (org, i) = (staff.org.clone(), id.clone());
        let r = form.run(move |conn| reasons::find_reason(conn, &org, &i)).await?;
        let values = ReasonInput { step: r.step, title: r.title, body: r.body, rule_codes: r.rule_codes };
        return edit_page(&form, id, values, &errors);
    }
    form.run(move |conn| reasons::remove_reason(conn, &staff.org, &id, ChangedBy::Staff(&staff), Utc::now()))
        .await?;
    Ok(see_other(&Done::ReasonRemoved.at("/staff/admin/reasons")))
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header(("Location", location.to_string())).finish()
}
