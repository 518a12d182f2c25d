//! Use cases. Each one that changes a case owns one database transaction: a guarded update of
//! the case, one event, and the outbox rows of the emails it causes — all or nothing.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db::schema::{
    api_tokens, case_alerts, case_events, case_tokens, cases, closed_days, memberships, organisations,
    outbox, policy_rules, sessions, sweep_failures, trusted_devices, users,
};
use crate::db::{from_db_time, new_id, to_db_time, write_tx, DbConnection};
use crate::domain::calendar::{Calendar, Nation};
use crate::domain::deadline::{long_date, long_date_time, Clock};
use crate::domain::{
    self, Action, Actor, CaseKind, CaseState, CaseStatus, DayCount, Deadline, DueKind, EmailTemplate,
    EventKind, Outcome, Pause, Recipient, Role, Schedule, Transition, WorkflowError,
};
use crate::error::{AppError, AppResult};
use crate::mail::EmailTemplates;
use crate::store::{self, CaseEvent, CaseRow, CaseToken, CitedRule, Organisation, OutboxRow, User};
use crate::validate::{self, Checker};

/// What the use cases need besides a connection: the email templates and where the public
/// reaches this instance.
pub struct Services {
    pub base_url: String,
    pub emails: EmailTemplates,
}

/// A staff member acting within one organisation.
#[derive(Debug, Clone)]
pub struct StaffContext {
    pub user: User,
    pub org: Organisation,
    pub roles: Vec<Role>,
}

impl StaffContext {
    /// The role this person acts in for `action`: the first of theirs that may take it, or
    /// else any of theirs, so the refusal names a role they hold.
    fn actor_for(&self, kind: CaseKind, action: Option<Action>) -> Actor {
        let fits = |a: &Actor| match action {
            Some(action) => action.permitted(kind, *a),
            None => domain::may_open(kind, *a),
        };
        self.roles
            .iter()
            .map(|r| Actor::Staff(*r))
            .find(fits)
            .unwrap_or(Actor::Staff(self.roles.first().copied().unwrap_or(Role::Admin)))
    }
}

/// Who did something, for the timeline.
#[derive(Debug, Clone)]
pub struct ActorRef {
    pub actor: Actor,
    pub user_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Secrets: private links and API tokens. Only their SHA-256 is stored.

/// 256 random bits, hex-encoded.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// argon2id at OWASP's floor (19 MiB, 2 iterations, 1 lane), spelt out rather than taken from
/// the crate's defaults so that a dependency update cannot weaken stored hashes unnoticed.
pub fn password_hasher() -> argon2::Argon2<'static> {
    let params = argon2::Params::new(19 * 1024, 2, 1, None).expect("fixed argon2 parameters are valid");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

pub fn hash_password(password: &str) -> AppResult<String> {
    use argon2::password_hash::PasswordHasher;
    password_hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("password hashing: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Organisations, rules, users, tokens.

#[derive(Debug, Clone, Default)]
pub struct OrgInput {
    pub slug: String,
    pub name: String,
    pub secretary_email: String,
    pub reference_prefix: Option<String>,
    pub timezone: Option<String>,
    pub appeal_window_days: Option<i32>,
    pub response_days: Option<i32>,
    pub escalation_window_days: Option<i32>,
    pub committee_target_days: Option<i32>,
}

pub fn parse_timezone(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

impl Organisation {
    pub fn tz(&self) -> Tz {
        parse_timezone(&self.timezone).unwrap_or(chrono_tz::Europe::London)
    }

    pub fn nation(&self) -> Nation {
        Nation::parse(&self.nation).unwrap_or(Nation::EnglandAndWales)
    }

    /// The organisation's clocks over a calendar that also skips `extra_closed` days.
    pub fn schedule_with(&self, extra_closed: Vec<NaiveDate>) -> Schedule {
        let clock = |days: i32, count: &str| Clock {
            days: u32::try_from(days).unwrap_or(1),
            count: DayCount::parse(count).unwrap_or(DayCount::Calendar),
        };
        Schedule {
            tz: self.tz(),
            calendar: Calendar { nation: self.nation(), extra_closed: extra_closed.into_iter().collect() },
            appeal_window: clock(self.appeal_window_days, &self.appeal_window_count),
            response: clock(self.response_days, &self.response_count),
            escalation_window: clock(self.escalation_window_days, &self.escalation_window_count),
            committee_target: clock(self.committee_target_days, &self.committee_target_count),
            info_answer_days: u32::try_from(self.info_answer_days).unwrap_or(5),
        }
    }
}

/// The organisation's deadline schedule, with its one-off holidays and closure days.
pub fn schedule_of(conn: &mut DbConnection, org: &Organisation) -> AppResult<Schedule> {
    Ok(org.schedule_with(store::extra_closed_days(conn, org)?))
}

fn default_prefix(slug: &str) -> String {
    slug.chars().filter(|c| c.is_ascii_alphanumeric()).take(3).collect::<String>().to_ascii_uppercase()
}

/// Checks a new organisation, recording every problem in `c`.
pub fn org_from_input(c: &mut Checker, input: OrgInput, now: DateTime<Utc>) -> Organisation {
    let slug = input.slug.trim().to_string();
    if !(2..=40).contains(&slug.len())
        || !slug.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
    {
        c.fail("slug", "must be 2 to 40 characters of lower-case letters, digits and hyphens");
    }
    let name = c.line("name", Some(&input.name), validate::NAME_MAX, true).unwrap_or_default();
    let secretary_email = c.email("secretary_email", Some(&input.secretary_email), true).unwrap_or_default();
    let prefix = input.reference_prefix.unwrap_or_else(|| default_prefix(&slug)).to_ascii_uppercase();
    if !(2..=8).contains(&prefix.len()) || !prefix.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        c.fail("reference_prefix", "must be 2 to 8 letters or digits");
    }
    let timezone = input.timezone.unwrap_or_else(|| "Europe/London".into());
    if parse_timezone(&timezone).is_none() {
        c.fail("timezone", format!("{timezone:?} is not a time zone name like Europe/London"));
    }
    let mut days = |field: &str, v: Option<i32>, default: i32| {
        let d = v.unwrap_or(default);
        if !(1..=365).contains(&d) {
            c.fail(field, "must be a number of days from 1 to 365");
        }
        d
    };
    Organisation {
        id: new_id(),
        slug,
        name,
        reference_prefix: prefix,
        timezone,
        secretary_email,
        appeal_window_days: days("appeal_window_days", input.appeal_window_days, 28),
        response_days: days("response_days", input.response_days, 5),
        escalation_window_days: days("escalation_window_days", input.escalation_window_days, 28),
        committee_target_days: days("committee_target_days", input.committee_target_days, 28),
        created_at: to_db_time(now),
        nation: Nation::EnglandAndWales.as_str().into(),
        appeal_window_count: DayCount::Calendar.as_str().into(),
        response_count: DayCount::Working.as_str().into(),
        escalation_window_count: DayCount::Calendar.as_str().into(),
        committee_target_count: DayCount::Calendar.as_str().into(),
        response_reminder_days: 1,
        committee_reminder_days: 2,
        info_answer_days: 5,
    }
}

pub fn add_org(conn: &mut DbConnection, input: OrgInput, now: DateTime<Utc>) -> AppResult<Organisation> {
    let mut c = Checker::new();
    let org = org_from_input(&mut c, input, now);
    c.finish()?;
    write_tx(conn, |conn| {
        crate::db::lock_organisations(conn)?;
        if store::org_by_slug(conn, &org.slug)?.is_some() {
            return Err(AppError::Conflict(format!(
                "an organisation with slug {:?} already exists",
                org.slug
            )));
        }
        if let Some(other) = store::org_by_prefix(conn, &org.reference_prefix)? {
            return Err(AppError::field(
                "reference_prefix",
                format!(
                    "{} already numbers its cases {}-…: choose another reference prefix (2 to 8 letters or digits)",
                    other.name, org.reference_prefix
                ),
            ));
        }
        diesel::insert_into(organisations::table).values(&org).execute(conn)?;
        Ok(org)
    })
}

pub fn find_org(conn: &mut DbConnection, slug: &str) -> AppResult<Organisation> {
    store::org_by_slug(conn, slug)?.ok_or_else(|| AppError::NotFound(format!("no organisation {slug:?}")))
}

pub fn add_rule(
    conn: &mut DbConnection,
    org_slug: &str,
    code: &str,
    title: &str,
    summary: &str,
    now: DateTime<Utc>,
) -> AppResult<store::PolicyRule> {
    let mut c = Checker::new();
    let code = c.line("code", Some(code), 20, true).unwrap_or_default();
    if !code.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '.' || ch == '_') {
        c.fail("code", "may hold only letters, digits, '.', '-' and '_'");
    }
    let title = c.line("title", Some(title), validate::NAME_MAX, true).unwrap_or_default();
    let summary = c.required("summary", Some(summary), 2000);
    c.finish()?;
    write_tx(conn, |conn| {
        let org = find_org(conn, org_slug)?;
        let rule = store::PolicyRule {
            id: new_id(),
            organisation_id: org.id.clone(),
            code,
            title,
            summary,
            created_at: to_db_time(now),
            updated_at: to_db_time(now),
        };
        let exists = policy_rules::table
            .filter(policy_rules::organisation_id.eq(&org.id))
            .filter(policy_rules::code.eq(&rule.code))
            .count()
            .get_result::<i64>(conn)?;
        if exists > 0 {
            return Err(AppError::Conflict(format!("rule {} already exists in {}", rule.code, org.slug)));
        }
        diesel::insert_into(policy_rules::table).values(&rule).execute(conn)?;
        Ok(rule)
    })
}

/// Adds a staff member to an organisation with a role. Someone who already has an account gets
/// the extra role; a password, when given, is set.
pub fn add_user(
    conn: &mut DbConnection,
    org_slug: &str,
    email: &str,
    name: &str,
    role: &str,
    password: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<User> {
    let mut c = Checker::new();
    let email = c.email("email", Some(email), true).unwrap_or_default().to_lowercase();
    let name = c.line("name", Some(name), validate::NAME_MAX, true).unwrap_or_default();
    let role = Role::parse(role);
    if role.is_none() {
        c.fail("role", "must be one of admin, moderator, secretary, committee");
    }
    if let Some(p) = password {
        crate::auth::check_new_password(&mut c, "password", p);
    }
    c.finish()?;
    let role = role.expect("checked above");
    let password_hash = password.map(hash_password).transpose()?;
    write_tx(conn, |conn| {
        let org = find_org(conn, org_slug)?;
        let user = match store::user_by_email(conn, &email)? {
            // An account is its owner's: an admin adding it to their organisation must not be
            // able to set its password, or any organisation's admin could take over an account
            // that holds roles elsewhere. Its password is changed only by `redress user password`.
            Some(_) if password_hash.is_some() => {
                return Err(AppError::field(
                    "password",
                    "This address already has an account, which keeps its own password: leave the password empty to add them.",
                ));
            }
            Some(user) => user,
            None => {
                let user = User { id: new_id(), email, name, password_hash, created_at: to_db_time(now) };
                diesel::insert_into(users::table).values(&user).execute(conn)?;
                user
            }
        };
        if store::roles_of(conn, &user.id, &org.id)?.iter().any(|r| r == role.as_str()) {
            return Err(AppError::Conflict(format!("{} is already {} in {}", user.email, role, org.slug)));
        }
        diesel::insert_into(memberships::table)
            .values(&store::Membership {
                id: new_id(),
                user_id: user.id.clone(),
                organisation_id: org.id.clone(),
                role: role.as_str().to_string(),
                created_at: to_db_time(now),
            })
            .execute(conn)?;
        Ok(user)
    })
}

/// Sets or replaces a staff member's password.
pub fn set_password(conn: &mut DbConnection, email: &str, password: &str) -> AppResult<()> {
    let mut c = Checker::new();
    crate::auth::check_new_password(&mut c, "password", password);
    c.finish()?;
    let hash = hash_password(password)?;
    write_tx(conn, |conn| {
        let user = store::user_by_email(conn, email.trim())?
            .ok_or_else(|| AppError::NotFound(format!("no user with email {email:?}")))?;
        diesel::update(users::table.find(&user.id)).set(users::password_hash.eq(Some(hash))).execute(conn)?;
        // A new password is often set because the old one leaked: whoever signed in with it is
        // signed out, and browsers it trusted are trusted no more.
        diesel::delete(sessions::table.filter(sessions::user_id.eq(&user.id))).execute(conn)?;
        diesel::delete(trusted_devices::table.filter(trusted_devices::user_id.eq(&user.id))).execute(conn)?;
        Ok(())
    })
}

/// Issues an API token for a member of the organisation. The token is returned once; only its
/// hash is kept. `issued_by` is the admin issuing it (none from the command line): the token
/// acts in its holder's name, so who made it is recorded and shown.
pub fn add_token(
    conn: &mut DbConnection,
    org_slug: &str,
    email: &str,
    label: &str,
    issued_by: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<String> {
    let mut c = Checker::new();
    let email = c.email("email", Some(email), true).unwrap_or_default();
    let label = c.line("label", Some(label), 100, true).unwrap_or_default();
    c.finish()?;
    write_tx(conn, |conn| {
        let org = find_org(conn, org_slug)?;
        let user = store::user_by_email(conn, &email)?
            .ok_or_else(|| AppError::NotFound(format!("no user with email {email:?}")))?;
        if store::roles_of(conn, &user.id, &org.id)?.is_empty() {
            return Err(AppError::Forbidden(format!("{} is not a member of {}", user.email, org.slug)));
        }
        let token = format!("rdr_{}", new_secret());
        let id = new_id();
        diesel::insert_into(api_tokens::table)
            .values(&store::ApiToken {
                id: id.clone(),
                user_id: user.id.clone(),
                organisation_id: org.id,
                token_hash: hash_secret(&token),
                label: label.clone(),
                created_at: to_db_time(now),
                last_used_at: None,
                revoked_at: None,
                created_by: issued_by.map(str::to_string),
            })
            .execute(conn)?;
        tracing::info!(
            event = "token_issued",
            token = %id,
            holder = %user.id,
            actor = issued_by.unwrap_or("command line"),
            "API token issued"
        );
        Ok(token)
    })
}

/// The staff member and organisation behind an API token, noting when it was last used.
pub fn authenticate_token(conn: &mut DbConnection, token: &str) -> AppResult<StaffContext> {
    let (staff, stale) = token_holder(conn, token)?;
    if let Some(id) = stale {
        touch_token(conn, &id)?;
    }
    Ok(staff)
}

/// The staff member and organisation behind an API token, by reads alone; with the token's id
/// when its last use, kept to the minute, is due to be noted (`touch_token`).
pub fn token_holder(conn: &mut DbConnection, token: &str) -> AppResult<(StaffContext, Option<String>)> {
    let unauthorized =
        || AppError::Unauthorized("a valid API token is required (Authorization: Bearer <token>)".into());
    let hash = hash_secret(token);
    let row: Option<store::ApiToken> = crate::on_backend!(conn, |c| api_tokens::table
        .filter(api_tokens::token_hash.eq(&hash))
        .filter(api_tokens::revoked_at.is_null())
        .select(store::ApiToken::as_select())
        .get_result(c)
        .optional())?;
    let row = row.ok_or_else(unauthorized)?;
    let user = store::user_by_id(conn, &row.user_id)?.ok_or_else(unauthorized)?;
    let org = store::org_by_id(conn, &row.organisation_id)?;
    let now = Utc::now();
    let stale = row.last_used_at.is_none_or(|t| now - from_db_time(t) > chrono::Duration::minutes(1));
    let roles: Vec<Role> =
        store::roles_of(conn, &user.id, &org.id)?.iter().filter_map(|r| Role::parse(r)).collect();
    if roles.is_empty() {
        return Err(unauthorized());
    }
    Ok((StaffContext { user, org, roles }, stale.then_some(row.id)))
}

/// Notes that an API token was used now.
pub fn touch_token(conn: &mut DbConnection, token_id: &str) -> AppResult<()> {
    write_tx(conn, |conn| {
        diesel::update(api_tokens::table.find(token_id))
            .set(api_tokens::last_used_at.eq(Some(to_db_time(Utc::now()))))
            .execute(conn)?;
        Ok(())
    })
}

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
        id: new_id(),
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

/// Who takes a step, where, when, and in what words: what every recorded step shares.
struct StepContext<'a> {
    svc: &'a Services,
    org: &'a Organisation,
    by: &'a ActorRef,
    words: Option<&'a str>,
    now: DateTime<Utc>,
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
    crate::on_backend!(conn, |c| diesel::insert_into(cases::table).values(&case).execute(c))?;
    record(conn, ctx, &case, opening)?;
    Ok(case)
}

pub fn record_removal(
    conn: &mut DbConnection,
    svc: &Services,
    staff: &StaffContext,
    input: RemovalInput,
    now: DateTime<Utc>,
) -> AppResult<Opened> {
    let actor = staff.actor_for(CaseKind::Removal, None);
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
        let by = ActorRef { actor, user_id: Some(staff.user.id.clone()) };
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
        let by = ActorRef { actor: Actor::Reporter, user_id: None };
        let ctx = StepContext { svc, org: &org, by: &by, words: Some(&reason), now };
        let case = insert_opened(conn, &ctx, case, &opening)?;
        let private_link = Some(mint_link(conn, svc, &case, Actor::Reporter, now)?);
        Ok(Opened { case, private_link })
    })
}

// ---------------------------------------------------------------------------------------------
// Acting on cases.

pub fn status_of(case: &CaseRow) -> AppResult<CaseStatus> {
    let bad = |what: &str| AppError::Internal(format!("case {} has an unknown {what}", case.id));
    let kind = CaseKind::parse(&case.kind).ok_or_else(|| bad("kind"))?;
    let state = CaseState::parse(&case.state).ok_or_else(|| bad("state"))?;
    let due = match (&case.due_kind, case.due_at) {
        (Some(k), Some(at)) => {
            Some(Deadline { kind: DueKind::parse(k).ok_or_else(|| bad("due kind"))?, at: from_db_time(at) })
        }
        _ => None,
    };
    let paused = match (case.paused_days_left, case.info_due_at) {
        (Some(days), Some(by)) => {
            Some(Pause { days_left: u32::try_from(days).unwrap_or(0), answer_by: from_db_time(by) })
        }
        _ => None,
    };
    Ok(CaseStatus { kind, state, overdue: case.overdue, due, paused })
}

/// Parses an outcome word, naming the field when it is not one.
pub fn parse_outcome(word: Option<&str>, kind: Option<CaseKind>) -> AppResult<Outcome> {
    let expected = match kind {
        Some(k) => Outcome::words_for(k).to_string(),
        None => "reinstate, uphold, remove or no_action".into(),
    };
    match word.map(str::trim).filter(|w| !w.is_empty()) {
        None => Err(AppError::field("outcome", format!("is required: {expected}"))),
        Some(w) => Outcome::parse(w)
            .ok_or_else(|| AppError::field("outcome", format!("{w:?} is not an outcome; use {expected}"))),
    }
}

/// What a person wrote with a step, checked: reasons are required for responses and
/// decisions, a written case for an escalation, further information for an appeal.
fn check_words(action: Action, words: Option<&str>) -> AppResult<Option<String>> {
    let mut c = Checker::new();
    let field = match action {
        Action::Respond(_) | Action::Decide(_) => "reasons",
        Action::LodgeAppeal => "appeal",
        Action::RequestInfo => "question",
        Action::ProvideInfo => "information",
        Action::Escalate => "case_for_committee",
        Action::Withdraw => "reason",
        Action::DeadlinePassed => return Ok(None),
    };
    let v = if action == Action::Withdraw {
        c.optional(field, words, validate::WORDS_MAX)
    } else {
        Some(c.required(field, words, validate::WORDS_MAX))
    };
    c.finish()?;
    Ok(v)
}

/// Applies `action` to a case: checks the words, asks the workflow, and records the result in
/// one transaction.
pub fn act(
    conn: &mut DbConnection,
    svc: &Services,
    case_id: &str,
    action: Action,
    by: &ActorRef,
    words: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<CaseRow> {
    write_tx(conn, |conn| {
        let case = store::case_by_id(conn, case_id)?;
        let org = store::org_by_id(conn, &case.organisation_id)?;
        let status = status_of(&case)?;
        // The workflow speaks first: a final case or a wrong role is refused before the words
        // are looked at.
        let step = domain::transition(&status, action, by.actor, now, &schedule_of(conn, &org)?)?;
        let words = check_words(action, words)?;
        let ctx = StepContext { svc, org: &org, by, words: words.as_deref(), now };
        apply(conn, &ctx, &case, &status, &step)
    })
}

/// A staff member's response or decision on a case of their organisation, found by its
/// reference. Refusals come in the order people can act on: a closed case, then a role that
/// may not do this, then a bad outcome word, then the rest.
#[allow(clippy::too_many_arguments)]
pub fn staff_act(
    conn: &mut DbConnection,
    svc: &Services,
    staff: &StaffContext,
    reference: &str,
    build: fn(Outcome) -> Action,
    outcome: Option<&str>,
    words: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<CaseRow> {
    let case = find_case(conn, &staff.org, reference)?;
    let status = status_of(&case)?;
    if status.state.is_final() {
        return Err(WorkflowError::Final { state: status.state }.into());
    }
    let probe = build(Outcome::Reinstate);
    let actor = staff.actor_for(status.kind, Some(probe));
    if !probe.permitted(status.kind, actor) {
        return Err(WorkflowError::NotPermitted { actor, action: probe, kind: status.kind }.into());
    }
    let action = build(parse_outcome(outcome, Some(status.kind))?);
    let by = ActorRef { actor, user_id: Some(staff.user.id.clone()) };
    act(conn, svc, &case.id, action, &by, words, now)
}

/// A moderator's request for more information on a case of their organisation.
pub fn request_info(
    conn: &mut DbConnection,
    svc: &Services,
    staff: &StaffContext,
    reference: &str,
    question: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<CaseRow> {
    let case = find_case(conn, &staff.org, reference)?;
    let kind = status_of(&case)?.kind;
    let by = ActorRef {
        actor: staff.actor_for(kind, Some(Action::RequestInfo)),
        user_id: Some(staff.user.id.clone()),
    };
    act(conn, svc, &case.id, Action::RequestInfo, &by, question, now)
}

/// A step that records an event without moving the case: its state, deadline and outcome
/// stay as they are.
fn standing_step(status: CaseStatus, event: EventKind, emails: Vec<domain::EmailOrder>) -> Transition {
    Transition { from: Some(status.state), to: status, event, outcome: None, emails }
}

/// An internal note on a case: words for the organisation's own record, shown on staff pages,
/// in the staff API and in emails to staff, never to the poster or the reporter. Any staff
/// role may write one, on an open or a closed case; a note never changes the case.
pub fn add_note(
    conn: &mut DbConnection,
    svc: &Services,
    staff: &StaffContext,
    reference: &str,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<CaseEvent> {
    write_tx(conn, |conn| {
        // Another organisation's case is not found before anything else is said about it.
        let case = find_case(conn, &staff.org, reference)?;
        let mut c = Checker::new();
        let note = c.required("note", note, crate::validate::WORDS_MAX);
        c.finish()?;
        store::lock_case(conn, &case.id)?;
        let case = store::case_by_id(conn, &case.id)?;
        let role = staff.roles.first().copied().unwrap_or(Role::Admin);
        let by = ActorRef { actor: Actor::Staff(role), user_id: Some(staff.user.id.clone()) };
        let ctx = StepContext { svc, org: &staff.org, by: &by, words: Some(&note), now };
        record(conn, &ctx, &case, &standing_step(status_of(&case)?, EventKind::NoteAdded, vec![]))
    })
}

/// What reissuing a private link did.
pub struct Reissued {
    pub case: CaseRow,
    /// Whom the new link was emailed to: the poster or the reporter.
    pub party: Actor,
    /// The new link when there is no address to email it to, for staff to hand over once.
    pub link_to_hand_over: Option<String>,
}

/// Revokes every private link of a case's poster (or reporter) and issues a new one, emailed
/// when there is an address. For a link that leaked, or an email sent to the wrong person.
pub fn reissue_link(
    conn: &mut DbConnection,
    svc: &Services,
    staff: &StaffContext,
    reference: &str,
    now: DateTime<Utc>,
) -> AppResult<Reissued> {
    if ![Role::Moderator, Role::Secretary, Role::Admin].iter().any(|r| staff.roles.contains(r)) {
        return Err(AppError::Forbidden("Only a moderator, the secretary or an admin can do this.".into()));
    }
    write_tx(conn, |conn| {
        let case = find_case(conn, &staff.org, reference)?;
        store::lock_case(conn, &case.id)?;
        let case = store::case_by_id(conn, &case.id)?;
        let status = status_of(&case)?;
        let (party, recipient, address) = match status.kind {
            CaseKind::Removal => (Actor::Poster, Recipient::Poster, case.author_email.clone()),
            CaseKind::Complaint => (Actor::Reporter, Recipient::Reporter, case.reporter_email.clone()),
        };
        diesel::update(
            case_tokens::table
                .filter(case_tokens::case_id.eq(&case.id))
                .filter(case_tokens::revoked_at.is_null()),
        )
        .set(case_tokens::revoked_at.eq(Some(to_db_time(now))))
        .execute(conn)?;
        let role = [Role::Moderator, Role::Secretary, Role::Admin]
            .into_iter()
            .find(|r| staff.roles.contains(r))
            .unwrap_or(Role::Admin);
        let by = ActorRef { actor: Actor::Staff(role), user_id: Some(staff.user.id.clone()) };
        let ctx = StepContext { svc, org: &staff.org, by: &by, words: None, now };
        let emails = match address {
            Some(_) => vec![domain::EmailOrder { template: EmailTemplate::LinkReissued, to: recipient }],
            None => vec![],
        };
        record(conn, &ctx, &case, &standing_step(status, EventKind::LinkReissued, emails))?;
        let link_to_hand_over = match address {
            Some(_) => None,
            None => Some(mint_link(conn, svc, &case, party, now)?),
        };
        Ok(Reissued { case, party, link_to_hand_over })
    })
}

pub fn find_case(conn: &mut DbConnection, org: &Organisation, reference: &str) -> AppResult<CaseRow> {
    store::case_by_reference(conn, &org.id, reference.trim())?
        .ok_or_else(|| AppError::NotFound(format!("no case {reference:?} in {}", org.name)))
}

fn apply(
    conn: &mut DbConnection,
    ctx: &StepContext,
    case: &CaseRow,
    before: &CaseStatus,
    step: &Transition,
) -> AppResult<CaseRow> {
    let now = ctx.now;
    let to = &step.to;
    let closed_at = to.state.is_final().then(|| to_db_time(now));
    let next_reminder_at = reminder_instant(conn, ctx.org, to)?;
    let changed = diesel::update(
        cases::table
            .filter(cases::id.eq(&case.id))
            .filter(cases::state.eq(before.state.as_str()))
            .filter(cases::overdue.eq(before.overdue))
            .filter(cases::updated_at.eq(case.updated_at)),
    )
    .set((
        cases::state.eq(to.state.as_str()),
        cases::overdue.eq(to.overdue),
        cases::due_at.eq(to.due.map(|d| to_db_time(d.at))),
        cases::due_kind.eq(to.due.map(|d| d.kind.as_str())),
        cases::outcome.eq(step.outcome.map(|o| o.as_str()).or(case.outcome.as_deref())),
        cases::updated_at.eq(to_db_time(now)),
        cases::closed_at.eq(closed_at),
        cases::paused_days_left.eq(to.paused.map(|p| i32::try_from(p.days_left).unwrap_or(i32::MAX))),
        cases::info_due_at.eq(to.paused.map(|p| to_db_time(p.answer_by))),
        cases::next_reminder_at.eq(next_reminder_at),
    ))
    .execute(conn)?;
    if changed == 0 {
        return Err(AppError::Conflict(
            "someone else changed this case at the same moment; reload it and try again".into(),
        ));
    }
    if step.event == EventKind::MarkedOverdue {
        if let Some(due) = before.due {
            let kind =
                if due.kind == DueKind::CommitteeTarget { "committee_overdue" } else { "response_overdue" };
            record_alert(conn, &case.id, kind, due.at, now)?;
        }
    }
    let updated = store::case_by_id(conn, &case.id)?;
    record(conn, ctx, &updated, step)?;
    Ok(updated)
}

/// When the sweep is to send the reminder before a case's running deadline: some working days
/// before a response deadline or the committee's target, in the organisation's calendar. None
/// for other deadlines, an overdue case, or an organisation that sends no such reminder.
fn reminder_instant(
    conn: &mut DbConnection,
    org: &Organisation,
    status: &CaseStatus,
) -> AppResult<Option<chrono::NaiveDateTime>> {
    let Some(due) = status.due.filter(|_| !status.overdue) else { return Ok(None) };
    let days = match due.kind {
        DueKind::Response => org.response_reminder_days,
        DueKind::CommitteeTarget => org.committee_reminder_days,
        _ => return Ok(None),
    };
    let Ok(days @ 1..) = u32::try_from(days) else { return Ok(None) };
    let schedule = schedule_of(conn, org)?;
    Ok(Some(to_db_time(schedule.reminder_at(due.at, days))))
}

/// Notes that an alert for a case's deadline went out. Returns false when it already had:
/// the unique key on (case, kind, deadline) is what keeps every alert to one.
fn record_alert(
    conn: &mut DbConnection,
    case_id: &str,
    kind: &str,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let exists: i64 = case_alerts::table
        .filter(case_alerts::case_id.eq(case_id))
        .filter(case_alerts::kind.eq(kind))
        .filter(case_alerts::due_at.eq(to_db_time(due)))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        return Ok(false);
    }
    diesel::insert_into(case_alerts::table)
        .values((
            case_alerts::id.eq(new_id()),
            case_alerts::case_id.eq(case_id),
            case_alerts::kind.eq(kind),
            case_alerts::due_at.eq(to_db_time(due)),
            case_alerts::created_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Writes the event of a step and queues its emails, each rendered now so that the record shows
/// exactly what was sent.
fn record(
    conn: &mut DbConnection,
    ctx: &StepContext,
    case: &CaseRow,
    step: &Transition,
) -> AppResult<CaseEvent> {
    let StepContext { svc, org, by, words, now } = *ctx;
    let event = CaseEvent {
        id: new_id(),
        case_id: case.id.clone(),
        seq: store::next_event_seq(conn, &case.id)?,
        kind: step.event.as_str().into(),
        from_state: step.from.map(|s| s.as_str().into()),
        to_state: step.to.state.as_str().into(),
        actor_kind: by.actor.kind_str().into(),
        actor_user_id: by.user_id.clone(),
        actor_role: match by.actor {
            Actor::Staff(r) => Some(r.as_str().into()),
            _ => None,
        },
        outcome: step.outcome.map(|o| o.as_str().into()),
        body: words.map(str::to_string),
        created_at: to_db_time(now),
    };
    crate::on_backend!(conn, |c| diesel::insert_into(case_events::table).values(&event).execute(c))?;
    tracing::info!(
        event = "case_event",
        kind = %event.kind,
        org = %org.slug,
        case = %case.reference,
        from = event.from_state.as_deref().unwrap_or("-"),
        to = %event.to_state,
        actor = by.user_id.as_deref().unwrap_or(by.actor.kind_str()),
        "case event recorded"
    );

    for order in &step.emails {
        let (addresses, party) = match order.to {
            Recipient::Poster => (case.author_email.iter().cloned().collect(), Some(Actor::Poster)),
            Recipient::Reporter => (case.reporter_email.iter().cloned().collect(), Some(Actor::Reporter)),
            Recipient::Secretary => (vec![org.secretary_email.clone()], None),
            Recipient::Moderators => {
                (store::emails_with_role(conn, &org.id, Role::Moderator.as_str())?, None)
            }
        };
        for address in addresses {
            // The link itself is minted by the outbox worker as it sends, so that no queued or
            // failed email holds a working link that staff (who can read queued emails) or a
            // database export could use.
            let link = party.map(|_| format!("{}/c/{}", svc.base_url, crate::mail::outbox::LINK_SLOT));
            let context = email_context(conn, org, case, step, party.is_none(), link, words)?;
            let rendered = svc.emails.render(order.template, &org.slug, &context)?;
            let row = OutboxRow {
                id: new_id(),
                organisation_id: org.id.clone(),
                case_id: Some(case.id.clone()),
                event_id: Some(event.id.clone()),
                template: order.template.as_str().into(),
                recipient_kind: order.to.as_str().into(),
                to_address: address,
                subject: rendered.subject,
                body_text: rendered.text,
                status: "pending".into(),
                attempts: 0,
                last_error: None,
                // Due at once in real time, even when a sweep runs at a later logical instant.
                next_attempt_at: to_db_time(now.min(Utc::now())),
                locked_until: None,
                created_at: to_db_time(now),
                sent_at: None,
                body_html: Some(rendered.html),
            };
            crate::on_backend!(conn, |c| diesel::insert_into(outbox::table).values(&row).execute(c))?;
        }
    }
    Ok(event)
}

/// A fresh private link for a party of a case. Links are never stored, only their hashes, so
/// each email that needs one carries a new one; all stay valid until revoked.
fn mint_link(
    conn: &mut DbConnection,
    svc: &Services,
    case: &CaseRow,
    party: Actor,
    now: DateTime<Utc>,
) -> AppResult<String> {
    let (_, secret) = mint_token(conn, &case.id, party, None, now)?;
    Ok(format!("{}/c/{}", svc.base_url, secret))
}

/// A new private link's secret for a party of a case, and the id of its row; only its hash is
/// stored. `outbox_id` is the email it is minted for, if any.
pub fn mint_token(
    conn: &mut DbConnection,
    case_id: &str,
    party: Actor,
    outbox_id: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<(String, String)> {
    let (id, secret) = (new_id(), new_secret());
    diesel::insert_into(case_tokens::table)
        .values(&CaseToken {
            id: id.clone(),
            case_id: case_id.to_string(),
            party: party.kind_str().into(),
            token_hash: hash_secret(&secret),
            created_at: to_db_time(now),
            revoked_at: None,
            outbox_id: outbox_id.map(str::to_string),
        })
        .execute(conn)?;
    Ok((id, secret))
}

/// The case behind a private link, and which party holds it.
pub fn case_for_link(conn: &mut DbConnection, secret: &str) -> AppResult<(CaseRow, Actor)> {
    let not_found = || {
        AppError::NotFound("This link is not valid. Check that you copied all of it from the email.".into())
    };
    if secret.len() != 64 || !secret.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let hash = hash_secret(secret);
    let token: Option<CaseToken> = crate::on_backend!(conn, |c| case_tokens::table
        .filter(case_tokens::token_hash.eq(&hash))
        .filter(case_tokens::revoked_at.is_null())
        .select(CaseToken::as_select())
        .get_result(c)
        .optional())?;
    let token = token.ok_or_else(not_found)?;
    let party = if token.party == "reporter" { Actor::Reporter } else { Actor::Poster };
    let case = store::case_by_id(conn, &token.case_id)?;
    crate::web::edge::record_actor(party.kind_str());
    crate::web::edge::record_case(&case.reference);
    Ok((case, party))
}

// ---------------------------------------------------------------------------------------------
// Email context: one serialisable shape for every template.

#[derive(Serialize)]
struct EmailContext {
    org: OrgView,
    case: CaseView,
    /// The private link, for emails to the poster or the reporter.
    link: Option<String>,
    /// The running deadline after this step.
    due: Option<DueView>,
    /// Until when a request for more information waits for its answer.
    answer_by: Option<String>,
    outcome: Option<String>,
    /// What the person who took this step wrote.
    words: Option<String>,
    /// Staff emails only: the reporter and the timeline so far.
    staff: Option<StaffView>,
}

#[derive(Serialize)]
struct OrgView {
    name: String,
    secretary_email: String,
}

#[derive(Serialize)]
struct CaseView {
    reference: String,
    kind: String,
    state: String,
    state_words: String,
    platform: String,
    content_url: String,
    content_text: String,
    author_name: String,
    explanation: String,
    rules: Vec<CitedRule>,
    opened_on: String,
}

#[derive(Serialize)]
struct DueView {
    kind: String,
    date: String,
}

#[derive(Serialize)]
struct StaffView {
    reporter_name: String,
    reporter_email: String,
    timeline: Vec<TimelineLine>,
}

#[derive(Serialize)]
struct TimelineLine {
    when: String,
    what: String,
    words: Option<String>,
}

pub fn event_words(kind: &str, outcome: Option<&str>) -> String {
    let outcome = outcome.map(|o| o.replace('_', " "));
    match (kind, outcome) {
        ("removal_recorded", _) => "Removal recorded and notice given".into(),
        ("complaint_received", _) => "Complaint received".into(),
        ("appeal_lodged", _) => "Appeal lodged".into(),
        ("response_given", Some(o)) => format!("Moderators responded: {o}"),
        ("marked_overdue", _) => "Deadline passed without an answer".into(),
        ("escalated", _) => "Escalated to the executive committee".into(),
        ("decision_recorded", Some(o)) => format!("Executive committee decided: {o}"),
        ("withdrawn", _) => "Withdrawn".into(),
        ("window_expired", _) => "Closed when the time allowed ran out".into(),
        ("info_requested", _) => "Moderators asked for more information; the response clock stopped".into(),
        ("info_provided", _) => "More information given; the response clock restarted".into(),
        ("info_window_expired", _) => {
            "No answer to the request for information; the response clock restarted".into()
        }
        ("reminder_sent", _) => "Reminder sent".into(),
        ("note_added", _) => "Internal note (staff only)".into(),
        ("link_reissued", _) => "Private link replaced; earlier links no longer work".into(),
        (other, _) => other.replace('_', " "),
    }
}

fn email_context(
    conn: &mut DbConnection,
    org: &Organisation,
    case: &CaseRow,
    step: &Transition,
    for_staff: bool,
    link: Option<String>,
    words: Option<&str>,
) -> AppResult<EmailContext> {
    let tz = org.tz();
    let staff = if for_staff {
        let timeline = store::events_of(conn, &case.id)?
            .into_iter()
            .map(|e| TimelineLine {
                when: long_date_time(from_db_time(e.created_at), tz),
                what: event_words(&e.kind, e.outcome.as_deref()),
                words: e.body,
            })
            .collect();
        Some(StaffView {
            reporter_name: case.reporter_name.clone().unwrap_or_default(),
            reporter_email: case.reporter_email.clone().unwrap_or_default(),
            timeline,
        })
    } else {
        None
    };
    Ok(EmailContext {
        org: OrgView { name: org.name.clone(), secretary_email: org.secretary_email.clone() },
        case: CaseView {
            reference: case.reference.clone(),
            kind: case.kind.clone(),
            state: step.to.state.as_str().into(),
            state_words: step.to.state.describe().into(),
            platform: case.platform.clone(),
            content_url: case.content_url.clone(),
            content_text: case.content_text.clone(),
            author_name: case.author_name.clone().unwrap_or_default(),
            explanation: case.explanation.clone(),
            rules: case.rules(),
            opened_on: long_date(from_db_time(case.created_at), tz),
        },
        link,
        due: step.to.due.map(|d| DueView { kind: d.kind.as_str().into(), date: long_date(d.at, tz) }),
        answer_by: step.to.paused.map(|p| long_date(p.answer_by, tz)),
        outcome: step.outcome.map(|o| o.as_str().into()),
        words: words.map(str::to_string),
        staff,
    })
}

// ---------------------------------------------------------------------------------------------
// The deadline sweep.

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    pub closed: Vec<String>,
    pub marked_overdue: Vec<String>,
    /// Paused clocks restarted because the request for information went unanswered.
    pub resumed: Vec<String>,
    pub reminded: Vec<String>,
    /// Cases another sweep handled first.
    pub skipped: usize,
    /// Cases this sweep could not act on (each logged, and kept in `sweep_failures` for the
    /// organisation's admins); the sweep went on with the others.
    pub failed: usize,
}

/// Acts on every deadline passed at `now` and sends the reminders due by then, each case in
/// its own transaction. Running it again, or two at once, changes nothing more: the guarded
/// update lets only one transition win, and the alert ledger lets each reminder out once.
pub fn sweep(conn: &mut DbConnection, svc: &Services, now: DateTime<Utc>) -> AppResult<SweepReport> {
    sweep_until(conn, svc, now, None)
}

/// As `sweep`, stopping between cases once `stop` is set. A case the sweep cannot act on (an
/// email template that fails for it, say) is logged, counted and recorded for its
/// organisation's admins, and the sweep goes on with every other case: it is tried again at
/// the next sweep.
pub fn sweep_until(
    conn: &mut DbConnection,
    svc: &Services,
    now: DateTime<Utc>,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> AppResult<SweepReport> {
    let stopping = || stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed));
    let at = to_db_time(now);
    // Two look-ups, each along an index that holds only the cases it concerns, so that a sweep
    // reads what is due and never the open cases that are not.
    let passed: Vec<(String, String, String)> = cases::table
        .filter(cases::due_at.lt(at))
        .filter(diesel::dsl::not(cases::overdue))
        .select((cases::id, cases::reference, cases::state))
        .order(cases::due_at)
        .load(conn)?;
    let unanswered: Vec<(String, String, String)> = cases::table
        .filter(cases::info_due_at.lt(at))
        .select((cases::id, cases::reference, cases::state))
        .order(cases::info_due_at)
        .load(conn)?;
    // The cases that failed before: few, and each is forgotten once it goes through.
    let mut failing: std::collections::HashSet<String> =
        sweep_failures::table.select(sweep_failures::case_id).load::<String>(conn)?.into_iter().collect();
    let mut report = SweepReport::default();
    let system = ActorRef { actor: Actor::System, user_id: None };
    let mut seen = std::collections::HashSet::new();
    let due = passed.into_iter().map(|c| (c, false)).chain(unanswered.into_iter().map(|c| (c, true)));
    for ((id, reference, state_before), paused) in due {
        if stopping() {
            return Ok(report);
        }
        if !seen.insert(id.clone()) {
            continue;
        }
        match act(conn, svc, &id, Action::DeadlinePassed, &system, None, now) {
            Ok(case) => {
                if case.state != state_before {
                    report.closed.push(reference);
                } else if paused {
                    report.resumed.push(reference);
                } else {
                    report.marked_overdue.push(reference);
                }
                if failing.remove(&id) {
                    forget_sweep_failure(conn, &id)?;
                }
            }
            Err(AppError::Conflict(_)) => report.skipped += 1,
            Err(e) => {
                report.failed += 1;
                note_sweep_failure(conn, &id, &reference, &e, now)?;
            }
        }
    }
    if !stopping() {
        send_reminders(conn, svc, now, &mut report, &mut failing, stopping)?;
    }
    Ok(report)
}

/// Records that the sweep could not act on a case. The first failure of a case is logged as an
/// error and shown to its organisation's admins on their work queue; later ones only count, so
/// nobody is told again every minute.
fn note_sweep_failure(
    conn: &mut DbConnection,
    case_id: &str,
    reference: &str,
    error: &AppError,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let at = to_db_time(now);
    let why = error.to_string().chars().take(500).collect::<String>();
    let first = write_tx(conn, |conn| {
        let again = diesel::update(sweep_failures::table.find(case_id))
            .set((
                sweep_failures::failures.eq(sweep_failures::failures + 1),
                sweep_failures::last_at.eq(at),
                sweep_failures::error.eq(&why),
            ))
            .execute(conn)?;
        if again == 1 {
            return Ok::<_, AppError>(false);
        }
        let org: String = cases::table.find(case_id).select(cases::organisation_id).get_result(conn)?;
        diesel::insert_into(sweep_failures::table)
            .values((
                sweep_failures::case_id.eq(case_id),
                sweep_failures::organisation_id.eq(org),
                sweep_failures::error.eq(&why),
                sweep_failures::failures.eq(1),
                sweep_failures::first_at.eq(at),
                sweep_failures::last_at.eq(at),
            ))
            .execute(conn)?;
        Ok(true)
    })?;
    if first {
        tracing::error!(case = %reference, error = %why, "the deadline sweep could not act on a case; it goes on with the others and tries this one again next time");
    } else {
        tracing::debug!(case = %reference, error = %why, "the deadline sweep still cannot act on a case");
    }
    Ok(())
}

fn forget_sweep_failure(conn: &mut DbConnection, case_id: &str) -> AppResult<()> {
    write_tx(conn, |conn| diesel::delete(sweep_failures::table.find(case_id)).execute(conn))?;
    Ok(())
}

/// A case the deadline sweep cannot act on.
#[derive(Debug, Clone)]
pub struct StuckCase {
    pub reference: String,
    /// What went wrong, the last time.
    pub error: String,
    /// How many sweeps have failed on it.
    pub failures: i32,
    pub since: DateTime<Utc>,
}

/// The cases of an organisation that the sweep cannot act on, oldest first.
pub fn sweep_failures_of(conn: &mut DbConnection, org_id: &str, limit: i64) -> AppResult<Vec<StuckCase>> {
    let rows: Vec<(String, String, i32, chrono::NaiveDateTime)> = sweep_failures::table
        .inner_join(cases::table.on(cases::id.eq(sweep_failures::case_id)))
        .filter(sweep_failures::organisation_id.eq(org_id))
        .order(sweep_failures::first_at)
        .limit(limit)
        .select((cases::reference, sweep_failures::error, sweep_failures::failures, sweep_failures::first_at))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(reference, error, failures, since)| StuckCase {
            reference,
            error,
            failures,
            since: from_db_time(since),
        })
        .collect())
}

/// What a sweep at `now` would do, without doing it: the same sweep in a transaction that is
/// rolled back, so nothing is written and no email is queued.
pub fn sweep_dry_run(conn: &mut DbConnection, svc: &Services, now: DateTime<Utc>) -> AppResult<SweepReport> {
    let result: Result<(), DryRun> = write_tx(conn, |conn| {
        Err(match sweep(conn, svc, now) {
            Ok(report) => DryRun::Done(report),
            Err(e) => DryRun::Failed(e),
        })
    });
    match result {
        Err(DryRun::Done(report)) => Ok(report),
        Err(DryRun::Failed(e)) => Err(e),
        Ok(()) => Err(AppError::Internal("the dry run did not roll back".into())),
    }
}

/// How a dry run leaves its transaction: always by an error, so that it rolls back.
enum DryRun {
    Done(SweepReport),
    Failed(AppError),
}

impl From<diesel::result::Error> for DryRun {
    fn from(e: diesel::result::Error) -> Self {
        DryRun::Failed(e.into())
    }
}

/// Reminders before a response deadline (to the moderators) and before the committee's target
/// (to the secretary), each at most once per case and deadline. Every step that starts a
/// deadline stores when its reminder falls due (`next_reminder_at`); the sweep opens only the
/// cases whose instant has come.
fn send_reminders(
    conn: &mut DbConnection,
    svc: &Services,
    now: DateTime<Utc>,
    report: &mut SweepReport,
    failing: &mut std::collections::HashSet<String>,
    stopping: impl Fn() -> bool,
) -> AppResult<()> {
    let at = to_db_time(now);
    let due: Vec<String> = cases::table
        .filter(cases::next_reminder_at.le(at))
        .select(cases::id)
        .order(cases::next_reminder_at)
        .load(conn)?;
    for id in due {
        if stopping() {
            return Ok(());
        }
        let reminded = write_tx(conn, |conn| {
            store::lock_case(conn, &id)?;
            let case = store::case_by_id(conn, &id)?;
            let org = store::org_by_id(conn, &case.organisation_id)?;
            let status = status_of(&case)?;
            // Worked out again as the case and its organisation stand now: a step or a change
            // of settings since the instant was stored decides.
            let instant = reminder_instant(conn, &org, &status)?;
            let reminder = match (instant, status.due) {
                (Some(instant), Some(_)) if now < from_db_time(instant) => {
                    set_next_reminder(conn, &id, Some(instant))?;
                    return Ok(());
                }
                (Some(_), Some(due)) if now <= due.at => due,
                _ => {
                    set_next_reminder(conn, &id, None)?;
                    return Ok(());
                }
            };
            set_next_reminder(conn, &id, None)?;
            let (kind, template, to) = match reminder.kind {
                DueKind::CommitteeTarget => {
                    ("committee_reminder", EmailTemplate::CommitteeReminder, Recipient::Secretary)
                }
                _ => ("response_reminder", EmailTemplate::ResponseReminder, Recipient::Moderators),
            };
            if !record_alert(conn, &case.id, kind, reminder.at, now)? {
                return Ok(());
            }
            let step = Transition {
                from: Some(status.state),
                to: status,
                event: EventKind::ReminderSent,
                outcome: None,
                emails: vec![domain::EmailOrder { template, to }],
            };
            let by = ActorRef { actor: Actor::System, user_id: None };
            let ctx = StepContext { svc, org: &org, by: &by, words: None, now };
            record(conn, &ctx, &case, &step)?;
            report.reminded.push(case.reference.clone());
            Ok::<_, AppError>(())
        });
        match reminded {
            Ok(()) if failing.remove(&id) => forget_sweep_failure(conn, &id)?,
            Ok(()) => {}
            Err(e) => {
                report.failed += 1;
                let reference: String = cases::table.find(&id).select(cases::reference).get_result(conn)?;
                note_sweep_failure(conn, &id, &reference, &e, now)?;
            }
        }
    }
    Ok(())
}

fn set_next_reminder(
    conn: &mut DbConnection,
    case_id: &str,
    at: Option<chrono::NaiveDateTime>,
) -> QueryResult<()> {
    diesel::update(cases::table.find(case_id)).set(cases::next_reminder_at.eq(at)).execute(conn)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Administration of an organisation.

/// The settings an admin may change.
#[derive(Debug, Clone, Default, serde::Deserialize, Serialize)]
#[serde(default)]
pub struct OrgSettings {
    pub name: String,
    pub secretary_email: String,
    pub timezone: String,
    pub appeal_window_days: String,
    pub response_days: String,
    pub escalation_window_days: String,
    pub committee_target_days: String,
    pub nation: String,
    pub appeal_window_count: String,
    pub response_count: String,
    pub escalation_window_count: String,
    pub committee_target_count: String,
    pub response_reminder_days: String,
    pub committee_reminder_days: String,
    pub info_answer_days: String,
}

impl OrgSettings {
    pub fn of(org: &Organisation) -> Self {
        OrgSettings {
            name: org.name.clone(),
            secretary_email: org.secretary_email.clone(),
            timezone: org.timezone.clone(),
            appeal_window_days: org.appeal_window_days.to_string(),
            response_days: org.response_days.to_string(),
            escalation_window_days: org.escalation_window_days.to_string(),
            committee_target_days: org.committee_target_days.to_string(),
            nation: org.nation.clone(),
            appeal_window_count: org.appeal_window_count.clone(),
            response_count: org.response_count.clone(),
            escalation_window_count: org.escalation_window_count.clone(),
            committee_target_count: org.committee_target_count.clone(),
            response_reminder_days: org.response_reminder_days.to_string(),
            committee_reminder_days: org.committee_reminder_days.to_string(),
            info_answer_days: org.info_answer_days.to_string(),
        }
    }
}

/// Changes an organisation's settings. New deadline lengths apply to clocks started from now
/// on; a deadline already running keeps the date people were given.
pub fn update_org(conn: &mut DbConnection, org: &Organisation, s: &OrgSettings) -> AppResult<()> {
    let mut c = Checker::new();
    let name = c.line("name", Some(&s.name), validate::NAME_MAX, true).unwrap_or_default();
    let secretary_email = c.email("secretary_email", Some(&s.secretary_email), true).unwrap_or_default();
    let timezone = s.timezone.trim().to_string();
    if parse_timezone(&timezone).is_none() {
        c.fail("timezone", "Enter a time zone name like Europe/London");
    }
    let mut days = |field: &str, v: &str| match v.trim().parse::<i32>() {
        Ok(d) if (1..=365).contains(&d) => d,
        _ => {
            c.fail(field, "Enter a number of days from 1 to 365");
            0
        }
    };
    let appeal = days("appeal_window_days", &s.appeal_window_days);
    let response = days("response_days", &s.response_days);
    let escalation = days("escalation_window_days", &s.escalation_window_days);
    let committee = days("committee_target_days", &s.committee_target_days);
    let info = days("info_answer_days", &s.info_answer_days);
    let mut reminder = |field: &str, v: &str| match v.trim().parse::<i32>() {
        Ok(d) if (0..=30).contains(&d) => d,
        _ => {
            c.fail(field, "Enter a number of working days from 0 (no reminder) to 30");
            0
        }
    };
    let response_reminder = reminder("response_reminder_days", &s.response_reminder_days);
    let committee_reminder = reminder("committee_reminder_days", &s.committee_reminder_days);
    let nation = Nation::parse(s.nation.trim());
    if nation.is_none() {
        c.fail("nation", "Choose england-and-wales, scotland or northern-ireland");
    }
    let mut count = |field: &str, v: &str| match DayCount::parse(v.trim()) {
        Some(d) => d.as_str(),
        None => {
            c.fail(field, "Choose calendar or working days");
            "calendar"
        }
    };
    let counts = [
        count("appeal_window_count", &s.appeal_window_count),
        count("response_count", &s.response_count),
        count("escalation_window_count", &s.escalation_window_count),
        count("committee_target_count", &s.committee_target_count),
    ];
    c.finish()?;
    let nation = nation.expect("checked above").as_str();
    let calendar_changed = response_reminder != org.response_reminder_days
        || committee_reminder != org.committee_reminder_days
        || nation != org.nation
        || timezone != org.timezone
        || counts[1] != org.response_count
        || counts[3] != org.committee_target_count;
    write_tx(conn, |conn| {
        diesel::update(organisations::table.find(&org.id))
            .set((
                organisations::name.eq(name),
                organisations::secretary_email.eq(secretary_email),
                organisations::timezone.eq(timezone),
                organisations::appeal_window_days.eq(appeal),
                organisations::response_days.eq(response),
                organisations::escalation_window_days.eq(escalation),
                organisations::committee_target_days.eq(committee),
                organisations::info_answer_days.eq(info),
                organisations::response_reminder_days.eq(response_reminder),
                organisations::committee_reminder_days.eq(committee_reminder),
                organisations::nation.eq(nation),
                organisations::appeal_window_count.eq(counts[0]),
                organisations::response_count.eq(counts[1]),
                organisations::escalation_window_count.eq(counts[2]),
                organisations::committee_target_count.eq(counts[3]),
            ))
            .execute(conn)?;
        // Reminder instants depend on the reminder days and the calendar: when those change,
        // the next sweep works out again the instants of the organisation's cases waiting on a
        // response or on the committee.
        if !calendar_changed {
            return Ok(());
        }
        let waiting =
            [CaseState::AppealLodged, CaseState::ComplaintReceived, CaseState::Escalated].map(|s| s.as_str());
        diesel::update(
            cases::table
                .filter(cases::organisation_id.eq(&org.id))
                .filter(cases::state.eq_any(waiting))
                .filter(diesel::dsl::not(cases::overdue)),
        )
        .set(cases::next_reminder_at.eq(Some(to_db_time(Utc::now()))))
        .execute(conn)?;
        Ok(())
    })
}

/// Adds a day that no clock counts: a one-off bank holiday of a nation, or one of an
/// organisation's own closure days.
pub fn add_closed_day(
    conn: &mut DbConnection,
    nation: Option<Nation>,
    org: Option<&Organisation>,
    day: NaiveDate,
    title: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let mut c = Checker::new();
    let title = c.line("title", Some(title), validate::NAME_MAX, true).unwrap_or_default();
    c.finish()?;
    write_tx(conn, |conn| {
        let mut query = closed_days::table.filter(closed_days::day.eq(day)).into_boxed();
        query = match (nation, org) {
            (Some(n), _) => query.filter(closed_days::nation.eq(n.as_str())),
            (None, Some(o)) => query.filter(closed_days::organisation_id.eq(o.id.clone())),
            (None, None) => {
                return Err(AppError::Internal("a closed day needs a nation or an organisation".into()))
            }
        };
        let exists: i64 = query.count().get_result(conn)?;
        if exists > 0 {
            return Err(AppError::Conflict(format!("{day} is already a closed day there")));
        }
        diesel::insert_into(closed_days::table)
            .values((
                closed_days::id.eq(new_id()),
                closed_days::nation.eq(nation.map(|n| n.as_str())),
                closed_days::organisation_id.eq(org.map(|o| o.id.clone())),
                closed_days::day.eq(day),
                closed_days::title.eq(title),
                closed_days::created_at.eq(to_db_time(now)),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// An organisation's own closure days, for the admin page.
pub fn closures(conn: &mut DbConnection, org: &Organisation) -> AppResult<Vec<(NaiveDate, String)>> {
    Ok(closed_days::table
        .filter(closed_days::organisation_id.eq(&org.id))
        .order(closed_days::day)
        .select((closed_days::day, closed_days::title))
        .load(conn)?)
}

/// Edits a rule's wording. Cases keep the copy they were given, so this changes only what
/// future removals cite.
pub fn update_rule(
    conn: &mut DbConnection,
    org: &Organisation,
    code: &str,
    title: &str,
    summary: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let mut c = Checker::new();
    let title = c.line("title", Some(title), validate::NAME_MAX, true).unwrap_or_default();
    let summary = c.required("summary", Some(summary), 2000);
    c.finish()?;
    write_tx(conn, |conn| {
        let n = diesel::update(
            policy_rules::table
                .filter(policy_rules::organisation_id.eq(&org.id))
                .filter(policy_rules::code.eq(code)),
        )
        .set((
            policy_rules::title.eq(title),
            policy_rules::summary.eq(summary),
            policy_rules::updated_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
        if n == 0 {
            return Err(AppError::NotFound(format!("no rule {code:?}")));
        }
        Ok(())
    })
}

/// A staff member of an organisation with their roles, for the admin's list.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    pub can_sign_in: bool,
}

pub fn members(conn: &mut DbConnection, org: &Organisation) -> AppResult<Vec<MemberView>> {
    let rows: Vec<(User, String)> = memberships::table
        .inner_join(users::table)
        .filter(memberships::organisation_id.eq(&org.id))
        .order((users::name, users::email, memberships::role))
        .select((User::as_select(), memberships::role))
        .load(conn)?;
    let mut out: Vec<MemberView> = Vec::new();
    for (user, role) in rows {
        match out.iter_mut().find(|m| m.user_id == user.id) {
            Some(m) => m.roles.push(role),
            None => out.push(MemberView {
                user_id: user.id,
                email: user.email,
                name: user.name,
                roles: vec![role],
                can_sign_in: user.password_hash.is_some(),
            }),
        }
    }
    Ok(out)
}

/// Takes a role away. The last admin of an organisation keeps theirs, so nobody is locked out.
pub fn remove_role(conn: &mut DbConnection, org: &Organisation, user_id: &str, role: Role) -> AppResult<()> {
    write_tx(conn, |conn| {
        if role == Role::Admin {
            // Two admins removing each other at once must not both see two admins and leave
            // none: the organisation's row is locked while counting (PostgreSQL; SQLite
            // writes one at a time anyway).
            store::lock_org(conn, &org.id)?;
            let admins: i64 = memberships::table
                .filter(memberships::organisation_id.eq(&org.id))
                .filter(memberships::role.eq("admin"))
                .count()
                .get_result(conn)?;
            if admins <= 1 {
                return Err(AppError::Conflict("An organisation needs at least one admin.".into()));
            }
        }
        let n = diesel::delete(
            memberships::table
                .filter(memberships::organisation_id.eq(&org.id))
                .filter(memberships::user_id.eq(user_id))
                .filter(memberships::role.eq(role.as_str())),
        )
        .execute(conn)?;
        if n == 0 {
            return Err(AppError::NotFound("No such role to remove.".into()));
        }
        Ok(())
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    pub id: String,
    pub label: String,
    pub email: String,
    /// The issuing admin's email, or none when issued from the command line.
    pub issued_by: Option<String>,
    pub created_at: chrono::NaiveDateTime,
    pub last_used_at: Option<chrono::NaiveDateTime>,
    pub revoked: bool,
}

pub fn tokens(conn: &mut DbConnection, org: &Organisation) -> AppResult<Vec<TokenView>> {
    let rows: Vec<(store::ApiToken, String)> = api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::organisation_id.eq(&org.id))
        .order(api_tokens::created_at.desc())
        .select((store::ApiToken::as_select(), users::email))
        .load(conn)?;
    rows.into_iter()
        .map(|(t, email)| {
            let issued_by = match &t.created_by {
                Some(id) => store::user_by_id(conn, id)?.map(|u| u.email),
                None => None,
            };
            Ok(TokenView {
                id: t.id,
                label: t.label,
                email,
                issued_by,
                created_at: t.created_at,
                last_used_at: t.last_used_at,
                revoked: t.revoked_at.is_some(),
            })
        })
        .collect()
}

pub fn revoke_token(
    conn: &mut DbConnection,
    org: &Organisation,
    id: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let n = diesel::update(
        api_tokens::table
            .filter(api_tokens::organisation_id.eq(&org.id))
            .filter(api_tokens::id.eq(id))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(Some(to_db_time(now))))
    .execute(conn)?;
    if n == 0 {
        return Err(AppError::NotFound("No such token, or it is already revoked.".into()));
    }
    Ok(())
}

/// The notice email a removal would send, rendered without recording anything: what the
/// moderator checks before sending.
pub fn preview_removal(
    conn: &mut DbConnection,
    svc: &Services,
    staff: &StaffContext,
    input: RemovalInput,
    now: DateTime<Utc>,
) -> AppResult<crate::mail::RenderedEmail> {
    let actor = staff.actor_for(CaseKind::Removal, None);
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
    let context = email_context(conn, &staff.org, &case, &opening, false, link, Some(&explanation))?;
    Ok(svc.emails.render(EmailTemplate::RemovalNotice, &staff.org.slug, &context)?)
}

/// A sample case's email context for a template, shaped as the real ones are for it (staff
/// details only in staff emails, a link only in the parties' ones): for the snapshots, and for
/// trying every organisation's own templates at start-up.
fn sample_context(template: EmailTemplate) -> EmailContext {
    let staff = matches!(
        template,
        EmailTemplate::NewAppeal
            | EmailTemplate::NewComplaint
            | EmailTemplate::OverdueSecretary
            | EmailTemplate::CommitteeOverdue
            | EmailTemplate::EscalationReceived
            | EmailTemplate::DecisionStaff
            | EmailTemplate::WithdrawnStaff
            | EmailTemplate::InfoProvided
            | EmailTemplate::InfoNotProvided
            | EmailTemplate::ResponseReminder
            | EmailTemplate::CommitteeReminder
    );
    let complaint = matches!(template, EmailTemplate::ComplaintReceived | EmailTemplate::NewComplaint);
    EmailContext {
        org: OrgView {
            name: "Penrith & The Border CLP".into(),
            secretary_email: "secretary@penrith.example".into(),
        },
        case: CaseView {
            reference: "PEN-2026-0007".into(),
            kind: if complaint { "complaint" } else { "removal" }.into(),
            state: "appeal_lodged".into(),
            state_words: CaseState::AppealLodged.describe().into(),
            platform: "Facebook".into(),
            content_url: "https://facebook.com/penrithclp/posts/1234".into(),
            content_text: "You are all <idiots> & crooks.".into(),
            author_name: "Pat Poster".into(),
            explanation: "A personal insult aimed at other members.".into(),
            rules: vec![CitedRule {
                code: "3a".into(),
                title: "Personal attacks".into(),
                summary: "Criticise views, never people.".into(),
            }],
            opened_on: "Thursday 2 April 2026".into(),
        },
        link: (!staff).then(|| "https://redress.example/c/0123456789abcdef".into()),
        due: Some(DueView { kind: "response".into(), date: "Monday 13 April 2026".into() }),
        answer_by: (template == EmailTemplate::InfoRequest).then(|| "Friday 10 April 2026".into()),
        outcome: Some(if complaint { "no_action" } else { "uphold" }.into()),
        words: Some("The words written with this step.\n\nA second paragraph.".into()),
        staff: staff.then(|| StaffView {
            reporter_name: "Robin Reporter".into(),
            reporter_email: "robin@reporter.example".into(),
            timeline: vec![TimelineLine {
                when: "Thursday 2 April 2026 at 10:00".into(),
                what: "Removal recorded and notice given".into(),
                words: Some("A personal insult aimed at other members.".into()),
            }],
        }),
    }
}

/// Renders every email template, an organisation's own included, for a sample case, so that a
/// template that cannot render is found when the server starts rather than when a case needs
/// it. The errors, one per template that failed.
pub fn check_email_templates(emails: &EmailTemplates) -> Vec<String> {
    let mut errors = Vec::new();
    let mut slugs = vec![String::new()];
    slugs.extend(emails.organisations_with_own_templates());
    for slug in &slugs {
        for template in EmailTemplate::ALL {
            if let Err(e) = emails.render(*template, slug, &sample_context(*template)) {
                let whose = if slug.is_empty() { String::new() } else { format!(" of organisation {slug}") };
                errors.push(format!("email template {template}{whose} does not render: {e}"));
            }
        }
    }
    errors
}

#[cfg(test)]
mod email_snapshots {
    //! Every email template rendered for one sample case, subject, text and HTML, compared with
    //! the snapshots in `src/snapshots/` (review changes with `cargo insta review`, or accept
    //! them with `INSTA_UPDATE=always`).

    use super::*;

    #[test]
    fn every_email_template() {
        let templates = EmailTemplates::load(None).unwrap();
        for template in EmailTemplate::ALL {
            let rendered = templates.render(*template, "penrith", &sample_context(*template)).unwrap();
            assert!(!rendered.subject.contains('\n'));
            assert!(
                rendered.html.contains("&lt;idiots&gt;") || !rendered.text.contains("<idiots>"),
                "{template}: HTML escaped"
            );
            insta::assert_snapshot!(
                template.as_str(),
                format!(
                    "Subject: {}\n\n{}\n----- HTML -----\n{}",
                    rendered.subject, rendered.text, rendered.html
                )
            );
        }
    }

    #[test]
    fn an_organisation_may_override_a_template() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("orgs/penrith/removal_notice");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(own.join("subject.hbs"), "Notice from {{org.name}} about {{case.reference}}").unwrap();
        let everyone = dir.path().join("appeal_received");
        std::fs::create_dir_all(&everyone).unwrap();
        std::fs::write(everyone.join("subject.hbs"), "Appeal received: {{case.reference}}").unwrap();
        let templates = EmailTemplates::load(Some(dir.path())).unwrap();
        let ctx = sample_context(EmailTemplate::RemovalNotice);
        assert_eq!(
            templates.render(EmailTemplate::RemovalNotice, "penrith", &ctx).unwrap().subject,
            "Notice from Penrith & The Border CLP about PEN-2026-0007"
        );
        assert!(templates
            .render(EmailTemplate::RemovalNotice, "westend", &ctx)
            .unwrap()
            .subject
            .contains("your post was removed"));
        assert_eq!(
            templates.render(EmailTemplate::AppealReceived, "westend", &ctx).unwrap().subject,
            "Appeal received: PEN-2026-0007"
        );
        // A broken override is refused at start-up, not at the first email.
        std::fs::write(everyone.join("text.hbs"), "{{#if}}").unwrap();
        assert!(EmailTemplates::load(Some(dir.path())).is_err());
    }
}
