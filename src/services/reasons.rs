//! Reasons written once: an organisation's admins save the reasons they give again and again,
//! and each form that needs reasons (and the API, by `reason_id`) offers them for its step.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::{new_id, to_db_time, write_tx, DbConnection};
use crate::domain::{CaseKind, ReasonStep};
use crate::error::{AppError, AppResult};
use crate::store::{self, Organisation, SavedReason};
use crate::validate::{self, Checker};

use super::{log_change, ChangedBy, OrgChange};

/// A saved reason as a form reads it.
#[derive(Debug, Clone, Serialize)]
pub struct ReasonInput {
    pub step: String,
    pub title: String,
    pub body: String,
    pub rule_codes: String,
}

/// Checks a reason's fields; the rules it names must be the organisation's.
fn checked(
    conn: &mut DbConnection,
    org: &Organisation,
    input: &ReasonInput,
) -> AppResult<(ReasonStep, String, String, String)> {
    let mut c = Checker::new();
    let step = ReasonStep::parse(input.step.trim());
    if step.is_none() {
        c.fail("step", "Choose the step the reason is for");
    }
    let title = c.line("title", Some(&input.title), validate::SHORT_MAX, true).unwrap_or_default();
    let body = c.required("body", Some(&input.body), validate::WORDS_MAX);
    let codes: Vec<&str> = input.rule_codes.split([' ', ',']).filter(|s| !s.is_empty()).collect();
    for code in &codes {
        if !store::rule_exists(conn, &org.id, code)? {
            c.fail("rule_codes", format!("There is no rule {code} in your policy"));
        }
    }
    c.finish()?;
    let step = step.ok_or_else(|| AppError::field("step", "Choose the step the reason is for"))?;
    Ok((step, title, body, codes.join(" ")))
}

pub fn add_reason(
    conn: &mut DbConnection,
    org: &Organisation,
    input: &ReasonInput,
    by: ChangedBy,
    now: DateTime<Utc>,
) -> AppResult<SavedReason> {
    write_tx(conn, |conn| {
        let (step, title, body, rule_codes) = checked(conn, org, input)?;
        let at = to_db_time(now);
        let reason = SavedReason {
            id: new_id(),
            organisation_id: org.id.clone(),
            step: step.as_str().into(),
            title,
            body,
            rule_codes,
            created_at: at,
            updated_at: at,
        };
        store::insert_reason(conn, &reason)?;
        log_change(conn, &org.id, by, OrgChange::ReasonAdded, &reason.title, None, now)?;
        Ok(reason)
    })
}

pub fn edit_reason(
    conn: &mut DbConnection,
    org: &Organisation,
    id: &str,
    input: &ReasonInput,
    by: ChangedBy,
    now: DateTime<Utc>,
) -> AppResult<()> {
    write_tx(conn, |conn| {
        let old = find_reason(conn, org, id)?;
        let (step, title, body, rule_codes) = checked(conn, org, input)?;
        let reason = SavedReason {
            step: step.as_str().into(),
            title,
            body,
            rule_codes,
            updated_at: to_db_time(now),
            ..old
        };
        store::update_reason(conn, &reason)?;
        log_change(conn, &org.id, by, OrgChange::ReasonChanged, &reason.title, None, now)
    })
}

pub fn remove_reason(
    conn: &mut DbConnection,
    org: &Organisation,
    id: &str,
    by: ChangedBy,
    now: DateTime<Utc>,
) -> AppResult<()> {
    write_tx(conn, |conn| {
        let old = find_reason(conn, org, id)?;
        store::delete_reason(conn, &org.id, id)?;
        log_change(conn, &org.id, by, OrgChange::ReasonRemoved, &old.title, None, now)
    })
}

pub fn find_reason(conn: &mut DbConnection, org: &Organisation, id: &str) -> AppResult<SavedReason> {
    store::reason_of(conn, &org.id, id)?
        .ok_or_else(|| AppError::NotFound("There is no such saved reason.".into()))
}

/// The organisation's saved reasons for `step`; those that go with any of `cited` rules first.
pub fn reasons_for(
    conn: &mut DbConnection,
    org: &Organisation,
    step: ReasonStep,
    cited: &[&str],
) -> AppResult<Vec<SavedReason>> {
    let mut list: Vec<SavedReason> =
        store::reasons_of(conn, &org.id)?.into_iter().filter(|r| r.step == step.as_str()).collect();
    list.sort_by_key(|r| !r.rule_codes.split(' ').any(|c| cited.contains(&c)));
    Ok(list)
}

/// The step a case's answer is, for its saved reasons.
pub fn answer_step(kind: CaseKind) -> ReasonStep {
    match kind {
        CaseKind::Removal => ReasonStep::AppealResponse,
        CaseKind::Complaint => ReasonStep::ComplaintResponse,
    }
}

/// The words a step is taken with: those written, or when none were, the saved reason chosen
/// (`field` names the form's field for the error when that reason is not one for `step`).
pub fn words_or_saved(
    conn: &mut DbConnection,
    org: &Organisation,
    words: Option<&str>,
    reason_id: Option<&str>,
    step: ReasonStep,
) -> AppResult<Option<String>> {
    if let Some(w) = words.filter(|w| !w.trim().is_empty()) {
        return Ok(Some(w.to_string()));
    }
    let Some(id) = reason_id.map(str::trim).filter(|id| !id.is_empty()) else {
        return Ok(words.map(str::to_string));
    };
    match store::reason_of(conn, &org.id, id)? {
        Some(r) if r.step == step.as_str() => Ok(Some(r.body)),
        _ => {
            Err(AppError::field("reason_id", "Choose one of your organisation's saved reasons for this step"))
        }
    }
}
