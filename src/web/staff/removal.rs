//! Recording a removal through the form.

use super::session::Staff;
use super::AppState;
use crate::db::{self};
use crate::domain::Role;
use crate::error::{AppError, FieldErrors};
use crate::services::{self, RemovalInput};
use crate::store::{self};
use crate::validate;
use crate::web::banner::Done;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde_json::Value;
use std::collections::HashMap;

use super::*;

// ---------------------------------------------------------------------------------------------
// Recording a removal.

const REMOVAL_FIELDS: &[(&str, &str)] = &[
    ("platform", "Platform"),
    ("content_url", "The link"),
    ("content_text", "What it said"),
    ("author_name", "The author's name"),
    ("author_email", "The author's email address"),
    ("notice_method", "How the notice is given"),
    ("rule_codes", "Rules"),
    ("explanation", "Your explanation"),
    ("reason_id", "The saved reason"),
];

/// The removal form as submitted: checkboxes arrive as `rule.<code>` fields.
fn removal_input(form: &HashMap<String, String>) -> RemovalInput {
    let get = |k: &str| form.get(k).cloned();
    let mut codes: Vec<String> =
        form.keys().filter_map(|k| k.strip_prefix("rule.")).map(str::to_string).collect();
    codes.sort();
    RemovalInput {
        platform: get("platform"),
        content_url: get("content_url"),
        content_text: get("content_text"),
        author_name: get("author_name"),
        author_email: get("author_email"),
        rule_codes: Some(codes),
        explanation: get("explanation"),
        notice_method: get("notice_method"),
        reason_id: get("reason_id"),
    }
}

#[derive(serde::Serialize)]
struct RemovalView<'a> {
    saved_reasons: Vec<crate::web::reasons::ReasonOption>,
    rules: Vec<RuleChoice<'a>>,
    values: RemovalValues,
    preview: Option<Preview>,
    max_text: usize,
    max_words: usize,
    #[serde(flatten)]
    form: Value,
}

/// A rule of the policy, as a checkbox of the form.
#[derive(serde::Serialize)]
struct RuleChoice<'a> {
    code: &'a str,
    title: &'a str,
    summary: &'a str,
    checked: bool,
}

/// What the form held when it is shown again.
#[derive(serde::Serialize)]
struct RemovalValues {
    platform: String,
    content_url: String,
    content_text: String,
    author_name: String,
    author_email: String,
    notice_method: String,
    explanation: String,
}

/// The notice as it will be sent, shown before it is.
#[derive(serde::Serialize)]
struct Preview {
    subject: String,
    text: String,
}

fn removal_page(
    state: &AppState,
    session: &StaffSession,
    status: StatusCode,
    (conn_rules, saved): (Vec<store::PolicyRule>, Vec<store::SavedReason>),
    form: &HashMap<String, String>,
    errors: &FieldErrors,
    preview: Option<crate::mail::RenderedEmail>,
) -> HttpResponse {
    let rules = conn_rules
        .iter()
        .map(|r| RuleChoice {
            code: &r.code,
            title: &r.title,
            summary: &r.summary,
            checked: form.contains_key(&format!("rule.{}", r.code)),
        })
        .collect();
    // The saved reasons for a removal, those that go with a rule ticked first.
    let ticked: Vec<&str> = conn_rules
        .iter()
        .filter(|r| form.contains_key(&format!("rule.{}", r.code)))
        .map(|r| r.code.as_str())
        .collect();
    let mut saved: Vec<store::SavedReason> =
        saved.into_iter().filter(|r| r.step == crate::domain::ReasonStep::Removal.as_str()).collect();
    saved.sort_by_key(|r| !r.rule_codes.split(' ').any(|c| ticked.contains(&c)));
    let value = |k: &str| form.get(k).cloned().unwrap_or_default();
    // Shown again, a saved reason chosen with the box left empty is in the box, to be read in
    // the preview's words and sent as they are.
    let explanation = match (value("explanation").trim().is_empty(), form.get("reason_id")) {
        (true, Some(id)) => saved.iter().find(|r| &r.id == id).map(|r| r.body.clone()).unwrap_or_default(),
        _ => value("explanation"),
    };
    let title = if errors.is_empty() { "Record a removal" } else { "Error: Record a removal" };
    staff_page(
        state,
        session,
        status,
        "staff/removal",
        title,
        RemovalView {
            saved_reasons: saved.into_iter().map(crate::web::reasons::ReasonOption::from).collect(),
            rules,
            values: RemovalValues {
                platform: value("platform"),
                content_url: value("content_url"),
                content_text: value("content_text"),
                author_name: value("author_name"),
                author_email: value("author_email"),
                notice_method: value("notice_method"),
                explanation,
            },
            preview: preview.map(|p| Preview { subject: p.subject, text: p.text }),
            max_text: validate::TEXT_MAX,
            max_words: validate::WORDS_MAX,
            form: form_errors(errors, REMOVAL_FIELDS),
        },
    )
}

pub(super) async fn removal_form(state: web::Data<AppState>, Staff(session): Staff) -> HttpResponse {
    if let Err(e) = session.require(&[Role::Moderator]) {
        return staff_error(&state, &session, e);
    }
    let org_id = org_of(&session).id.clone();
    match db::run(&state.pool, move |conn| {
        Ok((store::rules_of(conn, &org_id)?, store::reasons_of(conn, &org_id)?))
    })
    .await
    {
        Ok(rules) => {
            removal_page(&state, &session, StatusCode::OK, rules, &HashMap::new(), &FieldErrors::new(), None)
        }
        Err(e) => staff_error(&state, &session, e),
    }
}

pub(super) async fn removal_submit(
    state: web::Data<AppState>,
    Staff(session): Staff,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let form = form.into_inner();
    if let Err(e) = session.check_csrf(form.get("csrf").map(String::as_str)) {
        return staff_error(&state, &session, e);
    }
    if let Err(e) = session.require(&[Role::Moderator]) {
        return staff_error(&state, &session, e);
    }
    let staff = session.staff();
    let input = removal_input(&form);
    let send = form.get("action").map(String::as_str) == Some("send");
    let svc = state.services.clone();
    let org_id = staff.org.id.clone();
    let result = db::run(&state.pool, move |conn| {
        let rules = (store::rules_of(conn, &org_id)?, store::reasons_of(conn, &org_id)?);
        if send {
            let opened = services::record_removal(conn, &svc, &staff, input, Utc::now());
            Ok((rules, opened.map(|o| (Some(o.case.reference), o.private_link, None))))
        } else {
            let preview = services::preview_removal(conn, &svc, &staff, input, Utc::now());
            Ok((rules, preview.map(|p| (None, None, Some(p)))))
        }
    })
    .await;
    match result {
        Ok((_, Ok((Some(reference), link, _)))) => {
            state.outbox_wake.notify_one();
            match link {
                // No address: the link is shown once, on the case page, to hand over.
                Some(link) => staff_page(
                    &state,
                    &session,
                    StatusCode::CREATED,
                    "staff/link_once",
                    "Removal recorded",
                    LinkOnceView { reference: &reference, link: &link, reissued: false },
                ),
                None => see_other(&Done::RemovalRecorded.at(&format!("/staff/cases/{reference}"))),
            }
        }
        Ok((rules, Ok((None, _, preview)))) => {
            removal_page(&state, &session, StatusCode::OK, rules, &form, &FieldErrors::new(), preview)
        }
        Ok((rules, Err(AppError::Validation(errors)))) => {
            removal_page(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, rules, &form, &errors, None)
        }
        Ok((_, Err(e))) | Err(e) => staff_error(&state, &session, e),
    }
}
