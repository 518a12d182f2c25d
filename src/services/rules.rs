//! The rules of an organisation's published policy that removals cite.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::policy_rules;
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
