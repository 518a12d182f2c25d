//! The staff pages: first-run setup, sign-in, the work queue, recording a removal, the case
//! page with the actions a role may take, and the committee's view. Every state change goes
//! through the same services as the JSON API.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::{json, Value};

use super::session::{self, StaffSession};
use super::{form_errors, page_error, AppState};
use crate::auth::Session;
use crate::domain::Role;
use crate::error::AppError;

mod case;
mod queue;
mod removal;
mod sign_in;

use case::*;
use queue::*;
use removal::*;
use sign_in::*;

routes! {
    get "/setup" => setup_form,
    post "/setup" => setup_submit,
    get "/sign-in" => sign_in_form,
    post "/sign-in" => sign_in_submit,
    post "/sign-out" => sign_out,
    get "/orgs" => choose_org,
    post "/orgs" => choose_org_submit,
    get "/staff" => queue,
    get "/staff/removals/new" => removal_form,
    post "/staff/removals" => removal_submit,
    get "/staff/cases/{reference}" => case_page,
    post "/staff/cases/{reference}/response" => respond,
    post "/staff/cases/{reference}/decision" => decide,
    post "/staff/cases/{reference}/request-info" => request_info,
    post "/staff/cases/{reference}/notes" => add_note,
    post "/staff/cases/{reference}/link" => reissue_link,
    get "/staff/committee" => committee,
}

/// What every staff page shows around its content.
pub fn chrome(session: &Session) -> Value {
    let org = session.org.as_ref();
    json!({
        "user_name": session.user.name,
        "user_email": session.user.email,
        "org_name": org.map(|o| o.name.clone()).unwrap_or_default(),
        "org_slug": org.map(|o| o.slug.clone()).unwrap_or_default(),
        "csrf": session.csrf,
        "is_admin": session.has(Role::Admin),
        "is_moderator": session.has(Role::Moderator),
        "is_committee": session.has(Role::Committee) || session.has(Role::Secretary),
        "roles": session.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
    })
}

/// Renders a staff page: `data` is merged with the page title and the chrome.
pub fn staff_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    template: &str,
    title: &str,
    view: impl serde::Serialize,
) -> HttpResponse {
    let data = match serde_json::to_value(view) {
        Ok(data) => data,
        Err(e) => return staff_error(state, session, AppError::Internal(format!("view of {template}: {e}"))),
    };
    let mut context = json!({ "title": title, "staff": chrome(session) });
    if let (Value::Object(ctx), Value::Object(extra)) = (&mut context, data) {
        ctx.extend(extra);
    }
    state.pages.render_response(status, template, &context)
}

/// A private link shown once to staff, when there is no address to send it to.
#[derive(serde::Serialize)]
pub(super) struct LinkOnceView<'a> {
    pub(super) reference: &'a str,
    pub(super) link: &'a str,
    pub(super) reissued: bool,
}

/// An error on a staff page, shown within the staff layout.
pub fn staff_error(state: &AppState, session: &Session, err: AppError) -> HttpResponse {
    use actix_web::ResponseError;
    super::render::PageError::staff(state, session, err).error_response()
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header(("Location", location.to_string())).finish()
}
