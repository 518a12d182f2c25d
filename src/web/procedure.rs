//! An organisation's public pages about itself: its procedure in plain words, with the time
//! limits of its own settings, and its accessibility statement; and the admin page where the
//! statement is written.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::Serialize;

use super::render::{Admin, AdminForm, Page, StaffPage};
use super::{form_errors, page_error, AppState};
use crate::db;
use crate::error::{AppError, FieldErrors};
use crate::services::procedure::{self, OrgText, Procedure};
use crate::services::ChangedBy;
use crate::store;
use crate::web::banner::Done;

routes! {
    get "/o/{slug}" => procedure_page,
    get "/o/{slug}/accessibility" => statement_page,
    get "/staff/admin/accessibility" => statement_form,
    post "/staff/admin/accessibility" => statement_submit,
    get "/staff/admin/public-note" => note_form,
    post "/staff/admin/public-note" => note_submit,
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

/// How each of the organisation's public texts is edited: its address, its page's words and
/// the banner after saving.
struct TextPage {
    kind: OrgText,
    path: &'static str,
    title: &'static str,
    label: &'static str,
    done: Done,
}

const STATEMENT: TextPage = TextPage {
    kind: OrgText::Statement,
    path: "/staff/admin/accessibility",
    title: "Accessibility statement",
    label: "The statement",
    done: Done::StatementSaved,
};

const PUBLIC_NOTE: TextPage = TextPage {
    kind: OrgText::PublicNote,
    path: "/staff/admin/public-note",
    title: "Public note",
    label: "The note",
    done: Done::PublicNoteSaved,
};

#[derive(Serialize)]
struct TextFormView {
    heading: &'static str,
    rows: &'static str,
    path: &'static str,
    label: &'static str,
    text: String,
    own: bool,
    is_statement: bool,
    slug: String,
    max_text: usize,
    #[serde(flatten)]
    form: serde_json::Value,
}

fn text_form_page(page: &StaffPage, which: &TextPage, text: Option<String>, errors: &FieldErrors) -> Page {
    let org = page.session.org();
    let view = TextFormView {
        heading: which.title,
        rows: if which.kind == OrgText::Statement { "24" } else { "4" },
        path: which.path,
        label: which.label,
        text: text.unwrap_or_else(|| which.kind.current(org, &page.state.services.base_url)),
        own: which.kind.own(org).is_some(),
        is_statement: which.kind == OrgText::Statement,
        slug: org.slug.clone(),
        max_text: if which.kind == OrgText::Statement { crate::validate::TEXT_MAX } else { 1_000 },
        form: form_errors(errors, &[("text", which.label)]),
    };
    let (status, title) = if errors.is_empty() {
        (StatusCode::OK, which.title.to_string())
    } else {
        (StatusCode::UNPROCESSABLE_ENTITY, format!("Error: {}", which.title))
    };
    Ok(page.page(status, "admin/org_text", &title, view))
}

async fn text_submit(form: AdminForm, which: &'static TextPage) -> Page {
    let (staff, text) = (form.session.staff(), form.get("text"));
    let t = text.clone();
    let saved = form
        .attempt("text", move |conn| {
            procedure::set_org_text(conn, &staff.org, which.kind, &t, ChangedBy::Staff(&staff), Utc::now())
        })
        .await?;
    match saved {
        Ok(()) => {
            Ok(HttpResponse::SeeOther().insert_header(("Location", which.done.at(which.path))).finish())
        }
        Err(errors) => text_form_page(&form, which, Some(text), &errors),
    }
}

async fn statement_form(admin: Admin) -> Page {
    text_form_page(&admin, &STATEMENT, None, &FieldErrors::new())
}

async fn statement_submit(form: AdminForm) -> Page {
    text_submit(form, &STATEMENT).await
}

async fn note_form(admin: Admin) -> Page {
    text_form_page(&admin, &PUBLIC_NOTE, None, &FieldErrors::new())
}

async fn note_submit(form: AdminForm) -> Page {
    text_submit(form, &PUBLIC_NOTE).await
}
