//! An organisation's public pages about itself: its procedure in plain words, with the time
//! limits of its own settings, and its accessibility statement; and the admin page where the
//! statement is written.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::Serialize;

use super::render::{Admin, AdminForm, Page};
use super::{form_errors, page_error, AppState};
use crate::db;
use crate::error::{AppError, FieldErrors};
use crate::services::procedure::{self, Procedure};
use crate::services::ChangedBy;
use crate::store;
use crate::web::banner::Done;

routes! {
    get "/o/{slug}" => procedure_page,
    get "/o/{slug}/accessibility" => statement_page,
    get "/staff/admin/accessibility" => statement_form,
    post "/staff/admin/accessibility" => statement_submit,
}

#[derive(Serialize)]
struct ProcedureView {
    title: String,
    org_name: String,
    slug: String,
    secretary_email: String,
    report_url: String,
    #[serde(flatten)]
    procedure: Procedure,
}

/// A public page about the organisation named in the address, drawn from `view`.
async fn org_page<V: Serialize>(
    state: &AppState,
    slug: String,
    template: &str,
    view: impl FnOnce(store::Organisation, &str) -> V,
) -> HttpResponse {
    let org = db::run(&state.pool, move |conn| {
        store::org_by_slug(conn, &slug)?
            .ok_or_else(|| AppError::NotFound("There is no such organisation.".into()))
    })
    .await;
    match org {
        Ok(org) => {
            state.pages.render_response(StatusCode::OK, template, &view(org, &state.services.base_url))
        }
        Err(e) => page_error(state, e),
    }
}

async fn procedure_page(state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    org_page(&state, path.into_inner(), "procedure", |org, base| ProcedureView {
        title: format!("How {} handles complaints and appeals", org.name),
        report_url: format!("{base}/o/{}/report", org.slug),
        procedure: procedure::procedure(&org),
        org_name: org.name,
        slug: org.slug,
        secretary_email: org.secretary_email,
    })
    .await
}

#[derive(Serialize)]
struct StatementView {
    title: String,
    org_name: String,
    slug: String,
    statement: String,
}

async fn statement_page(state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    org_page(&state, path.into_inner(), "accessibility", |org, base| StatementView {
        title: format!("Accessibility statement: {}", org.name),
        statement: procedure::accessibility_statement(&org, base),
        org_name: org.name,
        slug: org.slug,
    })
    .await
}

#[derive(Serialize)]
struct StatementFormView {
    statement: String,
    own: bool,
    slug: String,
    max_text: usize,
    #[serde(flatten)]
    form: serde_json::Value,
}

fn statement_form_page(page: &super::render::StaffPage, text: Option<String>, errors: &FieldErrors) -> Page {
    let org = page.session.org();
    let base = &page.state.services.base_url;
    let view = StatementFormView {
        statement: text.unwrap_or_else(|| procedure::accessibility_statement(org, base)),
        own: org.accessibility_statement.is_some(),
        slug: org.slug.clone(),
        max_text: crate::validate::TEXT_MAX,
        form: form_errors(errors, &[("statement", "The statement")]),
    };
    let (status, title) = if errors.is_empty() {
        (StatusCode::OK, "Accessibility statement")
    } else {
        (StatusCode::UNPROCESSABLE_ENTITY, "Error: Accessibility statement")
    };
    Ok(page.page(status, "admin/accessibility", title, view))
}

async fn statement_form(admin: Admin) -> Page {
    statement_form_page(&admin, None, &FieldErrors::new())
}

async fn statement_submit(form: AdminForm) -> Page {
    let (staff, text) = (form.session.staff(), form.get("statement"));
    let t = text.clone();
    let saved = form
        .attempt("statement", move |conn| {
            procedure::set_accessibility_statement(conn, &staff.org, &t, ChangedBy::Staff(&staff), Utc::now())
        })
        .await?;
    match saved {
        Ok(()) => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", Done::StatementSaved.at("/staff/admin/accessibility")))
            .finish()),
        Err(errors) => statement_form_page(&form, Some(text), &errors),
    }
}
