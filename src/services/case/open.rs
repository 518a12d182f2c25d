//! Opening cases: a moderator's record of a removal and a member of the public's complaint.

use chrono::{DateTime, Datelike, Utc};

use crate::db::{to_db_time, write_tx, DbConnection};
use crate::domain::{self, Actor, CaseKind, EmailTemplate, Transition};
use crate::error::{AppError, AppResult};
use crate::store::{self, CaseRow, CitedRule, Organisation};
use crate::validate::{self, Checker};

use super::*;

// ---------------------------------------------------------------------------------------------
// Opening cases.

/// A removal as the moderator records it. Every field is optional here so that each missing
/// one is reported by name.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemovalInput {
    pub platform: Option<String>,
    pub content_url: Option<String>,
    pub content_text: Option<String>,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub rule_codes: Option<Vec<String>>,
    pub explanation: Option<String>,
    pub notice_method: Option<String>,
    /// A saved reason whose words explain the removal, when none are written.
    #[serde(default)]
    pub reason_id: Option<String>,
}

/// A complaint as the public form sends it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ComplaintInput {
    pub platform: Option<String>,
    pub content_url: Option<String>,
    pub content_text: Option<String>,
    pub rule_code: Option<String>,
    pub reason: Option<String>,
    pub reporter_name: Option<String>,
    pub reporter_email: Option<String>,
}

/// A case just opened, and the private link when it must be handed over by other means
/// (shown once, never stored).
pub struct Opened {
    pub case: CaseRow,
    pub private_link: Option<String>,
}

fn cite_rules(conn: &mut DbConnection, org: &Organisation, codes: &[String]) -> AppResult<Vec<CitedRule>> {
    if codes.len() > 20 {
        return Err(AppError::field("rule_codes", "cite at most 20 rules"));
    }
    let rules = store::rules_of(conn, &org.id)?;
    let mut cited = Vec::new();
    let mut unknown = Vec::new();
    for code in codes {
        match rules.iter().find(|r| r.code.eq_ignore_ascii_case(code.trim())) {
            Some(r) if !cited.iter().any(|c: &CitedRule| c.code == r.code) => cited.push(CitedRule {
                code: r.code.clone(),
                title: r.title.clone(),
                summary: r.summary.clone(),
            }),
            Some(_) => {}
            // Rule codes are at most 20 characters: a longer one is shown cut short, not echoed
            // whole.
            None if code.chars().count() > 20 => {
                unknown.push(format!("{}…", code.chars().take(20).collect::<String>()))
            }
            None => unknown.push(code.clone()),
        }
    }
    if !unknown.is_empty() {
        let known: Vec<&str> = rules.iter().map(|r| r.code.as_str()).collect();
        return Err(AppError::field(
            "rule_codes",
            format!(
                "unknown rule code(s): {}; this organisation's rules are: {}",
                unknown.join(", "),
                known.join(", ")
            ),
        ));
    }
    Ok(cited)
}

fn new_case_row(org: &Organisation, kind: CaseKind, now: DateTime<Utc>) -> CaseRow {
    CaseRow {
        id: CaseId::new(),
        organisation_id: org.id.clone(),
        reference: String::new(),
        ref_year: now.with_timezone(&org.tz()).year(),
        ref_number: 0,
        kind: kind.as_str().into(),
        state: String::new(),
        overdue: false,
        due_at: None,
        due_kind: None,
        platform: String::new(),
        content_url: String::new(),
        content_text: String::new(),
        author_name: None,
        author_email: None,
        explanation: String::new(),
        cited_rules: "[]".into(),
        notice_method: None,
        reporter_name: None,
        reporter_email: None,
        recorded_by: None,
        outcome: None,
        created_at: to_db_time(now),
        updated_at: to_db_time(now),
        closed_at: None,
        paused_days_left: None,
        info_due_at: None,
        next_reminder_at: None,
    }
}

/// Inserts a new case in its first state, with its first event and emails.
fn insert_opened(
    conn: &mut DbConnection,
    ctx: &StepContext,
    mut case: CaseRow,
    opening: &Transition,
) -> AppResult<CaseRow> {
    let org = ctx.org;
    store::lock_org(conn, &org.id)?;
    case.ref_number = store::next_reference_number(conn, &org.id, case.ref_year)?;
    case.reference = format!("{}-{}-{:04}", org.reference_prefix, case.ref_year, case.ref_number);
    case.state = opening.to.state.as_str().into();
    case.due_at = opening.to.due.map(|d| to_db_time(d.at));
    case.due_kind = opening.to.due.map(|d| d.kind.as_str().into());
    case.next_reminder_at = reminder_instant(conn, org, &opening.to)?;
    store::insert_case(conn, &case)?;
    record(conn, ctx, &case, opening)?;
    Ok(case)
}

/// The removal's explanation: the words written, or the saved reason chosen.
fn explanation_of(
    conn: &mut DbConnection,
    staff: &StaffContext,
    input: &RemovalInput,
) -> AppResult<Option<String>> {
    super::super::reasons::words_or_saved(
        conn,
        &staff.org,
        input.explanation.as_deref(),
        input.reason_id.as_deref(),
        crate::domain::ReasonStep::Removal,
    )
}

pub fn record_removal(
    conn: &mut DbConnection,
    svc: &Services,
    staff: &StaffContext,
    mut input: RemovalInput,
    now: DateTime<Utc>,
) -> AppResult<Opened> {
    let actor = staff.actor_for(CaseKind::Removal, None);
    input.explanation = explanation_of(conn, staff, &input)?;
    let schedule = schedule_of(conn, &staff.org)?;
    let opening = domain::open(CaseKind::Removal, actor, now, &schedule)?;

    let mut c = Checker::new();
    let platform =
        c.line("platform", input.platform.as_deref(), validate::SHORT_MAX, true).unwrap_or_default();
    let content_url = c.url("content_url", input.content_url.as_deref(), true).unwrap_or_default();
    let content_text = c.required("content_text", input.content_text.as_deref(), validate::TEXT_MAX);
    let author_name = c.line("author_name", input.author_name.as_deref(), validate::NAME_MAX, true);
    let author_email = c.email("author_email", input.author_email.as_deref(), false);
    let explanation = c.required("explanation", input.explanation.as_deref(), validate::WORDS_MAX);
    let notice_method = c.line("notice_method", input.notice_method.as_deref(), validate::NAME_MAX, false);
    let codes = input.rule_codes.unwrap_or_default();
    if codes.is_empty() {
        c.fail("rule_codes", "cite at least one rule of the policy");
    } else if codes.len() > 20 {
        c.fail("rule_codes", "cite at most 20 rules");
    }
    c.finish()?;

    write_tx(conn, |conn| {
        let cited = cite_rules(conn, &staff.org, &codes)?;
        let mut case = new_case_row(&staff.org, CaseKind::Removal, now);
        case.platform = platform;
        case.content_url = content_url;
        case.content_text = content_text;
        case.author_name = author_name;
        case.notice_method = match (&author_email, notice_method) {
            (Some(_), m) => m.or_else(|| Some("email".into())),
            (None, Some(m)) => Some(m),
            (None, None) => Some("private link handed over by the moderator".into()),
        };
        case.author_email = author_email;
        case.explanation = explanation.clone();
        case.cited_rules = serde_json::to_string(&cited).map_err(|e| AppError::Internal(e.to_string()))?;
        case.recorded_by = Some(staff.user.id.clone());
        let by = ActorRef::staff(staff, actor);
        let ctx = StepContext { svc, org: &staff.org, by: &by, words: Some(&explanation), now };
        let case = insert_opened(conn, &ctx, case, &opening)?;
        // Without an address the notice cannot be emailed: the moderator is given a link to
        // pass on themselves.
        let private_link = match case.author_email {
            None => Some(mint_link(conn, svc, &case, Actor::Poster, now)?),
            Some(_) => None,
        };
        Ok(Opened { case, private_link })
    })
}

pub fn submit_complaint(
    conn: &mut DbConnection,
    svc: &Services,
    org_slug: &str,
    input: ComplaintInput,
    now: DateTime<Utc>,
) -> AppResult<Opened> {
    let org = find_org(conn, org_slug)?;
    let opening = domain::open(CaseKind::Complaint, Actor::Reporter, now, &schedule_of(conn, &org)?)?;
    let mut c = Checker::new();
    let platform =
        c.line("platform", input.platform.as_deref(), validate::SHORT_MAX, true).unwrap_or_default();
    let content_url = c.url("content_url", input.content_url.as_deref(), true).unwrap_or_default();
    let content_text = c.optional("content_text", input.content_text.as_deref(), validate::TEXT_MAX);
    let rule_code = c.line("rule_code", input.rule_code.as_deref(), 20, false);
    let reason = c.required("reason", input.reason.as_deref(), validate::WORDS_MAX);
    let reporter_name = c.line("reporter_name", input.reporter_name.as_deref(), validate::NAME_MAX, true);
    let reporter_email = c.email("reporter_email", input.reporter_email.as_deref(), true);
    c.finish()?;

    write_tx(conn, |conn| {
        let cited = match &rule_code {
            Some(code) => cite_rules(conn, &org, std::slice::from_ref(code))
                .map_err(|_| AppError::field("rule_code", "choose one of the organisation's rules"))?,
            None => vec![],
        };
        let mut case = new_case_row(&org, CaseKind::Complaint, now);
        case.platform = platform;
        case.content_url = content_url;
        case.content_text = content_text.unwrap_or_default();
        case.explanation = reason.clone();
        case.cited_rules = serde_json::to_string(&cited).map_err(|e| AppError::Internal(e.to_string()))?;
        case.reporter_name = reporter_name;
        case.reporter_email = reporter_email;
        let by = ActorRef::without_account(Actor::Reporter);
        let ctx = StepContext { svc, org: &org, by: &by, words: Some(&reason), now };
        let case = insert_opened(conn, &ctx, case, &opening)?;
        let private_link = Some(mint_link(conn, svc, &case, Actor::Reporter, now)?);
        Ok(Opened { case, private_link })
    })
}

/// The notice email a removal would send, rendered without recording anything: what the
/// moderator checks before sending.
pub fn preview_removal(
    conn: &mut DbConnection,
    svc: &Services,
    staff: &StaffContext,
    mut input: RemovalInput,
    now: DateTime<Utc>,
) -> AppResult<crate::mail::RenderedEmail> {
    let actor = staff.actor_for(CaseKind::Removal, None);
    input.explanation = explanation_of(conn, staff, &input)?;
    let opening = domain::open(CaseKind::Removal, actor, now, &schedule_of(conn, &staff.org)?)?;
    let mut c = Checker::new();
    let platform =
        c.line("platform", input.platform.as_deref(), validate::SHORT_MAX, true).unwrap_or_default();
    let content_url = c.url("content_url", input.content_url.as_deref(), true).unwrap_or_default();
    let content_text = c.required("content_text", input.content_text.as_deref(), validate::TEXT_MAX);
    let author_name = c.line("author_name", input.author_name.as_deref(), validate::NAME_MAX, true);
    c.email("author_email", input.author_email.as_deref(), false);
    let explanation = c.required("explanation", input.explanation.as_deref(), validate::WORDS_MAX);
    let codes = input.rule_codes.unwrap_or_default();
    if codes.is_empty() {
        c.fail("rule_codes", "cite at least one rule of the policy");
    }
    c.finish()?;
    let cited = cite_rules(conn, &staff.org, &codes)?;
    let mut case = new_case_row(&staff.org, CaseKind::Removal, now);
    case.reference = format!("{}-{}-(number given on sending)", staff.org.reference_prefix, case.ref_year);
    case.platform = platform;
    case.content_url = content_url;
    case.content_text = content_text;
    case.author_name = author_name;
    case.explanation = explanation.clone();
    case.cited_rules = serde_json::to_string(&cited).map_err(|e| AppError::Internal(e.to_string()))?;
    let link = Some(format!("{}/c/(private link made on sending)", svc.base_url));
    let context = email_context(conn, &staff.org, &case, &opening, None, link, Some(&explanation))?;
    Ok(svc.emails.render(EmailTemplate::RemovalNotice, &staff.org.slug, &context)?)
}
