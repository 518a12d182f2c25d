//! The rules of an organisation's published policy that removals cite.

use chrono::{DateTime, Utc};

use crate::db::{new_id, to_db_time, write_tx, DbConnection};
use crate::error::{AppError, AppResult};
use crate::store::{self, Organisation};
use crate::validate::{self, Checker};

use super::*;

pub fn add_rule(
    conn: &mut DbConnection,
    org_slug: &str,
    code: &str,
    title: &str,
    summary: &str,
    by: ChangedBy,
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
        if store::rule_exists(conn, &org.id, &rule.code)? {
            return Err(AppError::Conflict(format!("rule {} already exists in {}", rule.code, org.slug)));
        }
        store::insert_rule(conn, &rule)?;
        log_change(conn, &org.id, by, OrgChange::RuleAdded, &rule.code, Some(rule.title.clone()), now)?;
        Ok(rule)
    })
}

/// Edits a rule's wording. Cases keep the copy they were given, so this changes only what
/// future removals cite.
pub fn update_rule(
    conn: &mut DbConnection,
    org: &Organisation,
    code: &str,
    title: &str,
    summary: &str,
    by: ChangedBy,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let mut c = Checker::new();
    let title = c.line("title", Some(title), validate::NAME_MAX, true).unwrap_or_default();
    let summary = c.required("summary", Some(summary), 2000);
    c.finish()?;
    write_tx(conn, |conn| {
        if !store::update_rule(conn, &org.id, code, &title, &summary, now)? {
            return Err(AppError::NotFound(format!("no rule {code:?}")));
        }
        log_change(conn, &org.id, by, OrgChange::RuleChanged, code, Some(title.clone()), now)?;
        Ok(())
    })
}
