//! The staff pages: first-run setup, sign-in, the work queue, recording a removal, the case
//! page with the actions a role may take, and the committee's view. Every state change goes
//! through the same services as the JSON API.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

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

/// What every staff page shows around its content: who is signed in, where, and which menus
/// their roles open.
#[derive(serde::Serialize)]
pub struct Chrome<'a> {
    user_name: &'a str,
    user_email: &'a str,
    org_name: &'a str,
    org_slug: &'a str,
    csrf: &'a str,
    is_admin: bool,
    is_moderator: bool,
    is_committee: bool,
    roles: String,
    /// The confirmation of the change that led here, if one did.
    banner: Option<crate::web::banner::Banner>,
}

pub fn chrome(session: &Session) -> Chrome<'_> {
    chrome_after(session, None)
}

/// The chrome of a page reached after a change, which it confirms.
pub fn chrome_after(session: &Session, done: Option<crate::web::banner::Done>) -> Chrome<'_> {
    let org = session.org.as_ref();
    Chrome {
        banner: done.map(crate::web::banner::Done::banner),
        user_name: &session.user.name,
        user_email: &session.user.email,
        org_name: org.map_or("", |o| o.name.as_str()),
        org_slug: org.map_or("", |o| o.slug.as_str()),
        csrf: &session.csrf,
        is_admin: session.has(Role::Admin),
        is_moderator: session.has(Role::Moderator),
        is_committee: session.has(Role::Committee) || session.has(Role::Secretary),
        roles: session.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
    }
}

/// A staff page's whole context: its title, the chrome, and the page's own view beside them.
#[derive(serde::Serialize)]
struct StaffPageContext<'a, V> {
    title: &'a str,
    staff: Chrome<'a>,
    #[serde(flatten)]
    view: V,
}

/// Renders a staff page from its view, with the page title and the chrome.
pub fn staff_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    template: &str,
    title: &str,
    view: impl serde::Serialize,
) -> HttpResponse {
    staff_page_after(state, session, None, status, template, title, view)
}

/// As `staff_page`, for a page reached after a change: it opens with the change's banner.
pub fn staff_page_after(
    state: &AppState,
    session: &Session,
    done: Option<crate::web::banner::Done>,
    status: StatusCode,
    template: &str,
    title: &str,
    view: impl serde::Serialize,
) -> HttpResponse {
    let staff = chrome_after(session, done);
    state.pages.render_response(status, template, &StaffPageContext { title, staff, view })
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
