//! Rows and queries. Functions here return `QueryResult` and know nothing of HTTP.

mod account;
mod case;
mod email;
pub mod lists;
mod organisation;
pub mod transfer;

pub use account::*;
pub use case::*;
pub use email::*;
pub use organisation::*;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::schema::*;
pub use crate::ids::{CaseId, OrgId, UserId};

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = organisations)]
pub struct Organisation {
    pub id: OrgId,
    pub slug: String,
    pub name: String,
    pub reference_prefix: String,
    pub timezone: String,
    pub secretary_email: String,
    pub appeal_window_days: i32,
    pub response_days: i32,
    pub escalation_window_days: i32,
    pub committee_target_days: i32,
    pub created_at: NaiveDateTime,
    pub nation: String,
    pub appeal_window_count: String,
    pub response_count: String,
    pub escalation_window_count: String,
    pub committee_target_count: String,
    pub response_reminder_days: i32,
    pub committee_reminder_days: i32,
    pub info_answer_days: i32,
    /// As the admin wrote it; none for the model statement.
    #[serde(default)]
    pub accessibility_statement: Option<String>,
    /// The public note's wording, as the admin wrote it; none for the model.
    #[serde(default)]
    pub public_note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = users)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = memberships)]
pub struct Membership {
    pub id: String,
    pub user_id: UserId,
    pub organisation_id: OrgId,
    pub role: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = api_tokens)]
pub struct ApiToken {
    pub id: String,
    pub user_id: UserId,
    pub organisation_id: OrgId,
    pub token_hash: String,
    pub label: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    /// The admin who issued it; none when issued from the command line.
    #[serde(default)]
    pub created_by: Option<UserId>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = policy_rules)]
pub struct PolicyRule {
    pub id: String,
    pub organisation_id: OrgId,
    pub code: String,
    pub title: String,
    pub summary: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A rule as it read when a case cited it; kept on the case as JSON so that later edits of
/// the policy never change what the poster was told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CitedRule {
    pub code: String,
    pub title: String,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = cases)]
pub struct CaseRow {
    pub id: CaseId,
    pub organisation_id: OrgId,
    pub reference: String,
    pub ref_year: i32,
    pub ref_number: i32,
    pub kind: String,
    pub state: String,
    pub overdue: bool,
    pub due_at: Option<NaiveDateTime>,
    pub due_kind: Option<String>,
    pub platform: String,
    pub content_url: String,
    pub content_text: String,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub explanation: String,
    pub cited_rules: String,
    pub notice_method: Option<String>,
    pub reporter_name: Option<String>,
    pub reporter_email: Option<String>,
    pub recorded_by: Option<UserId>,
    pub outcome: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub closed_at: Option<NaiveDateTime>,
    pub paused_days_left: Option<i32>,
    pub info_due_at: Option<NaiveDateTime>,
    /// When the sweep next looks at this case for a reminder before its deadline; none when
    /// no reminder is pending.
    #[serde(default)]
    pub next_reminder_at: Option<NaiveDateTime>,
}

impl CaseRow {
    pub fn rules(&self) -> Vec<CitedRule> {
        serde_json::from_str(&self.cited_rules).unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = case_tokens)]
pub struct CaseToken {
    pub id: String,
    pub case_id: CaseId,
    pub party: String,
    pub token_hash: String,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    /// The email whose sending minted this link; none for a link shown once on a page.
    #[serde(default)]
    pub outbox_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = case_events)]
pub struct CaseEvent {
    pub id: String,
    pub case_id: CaseId,
    pub seq: i32,
    pub kind: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub actor_kind: String,
    pub actor_user_id: Option<UserId>,
    pub actor_role: Option<String>,
    pub outcome: Option<String>,
    pub body: Option<String>,
    pub created_at: NaiveDateTime,
    /// When the step was taken through an API token that an admin issued: that admin.
    #[serde(default)]
    pub token_issued_by: Option<UserId>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: String,
    pub organisation_id: OrgId,
    pub case_id: Option<CaseId>,
    pub event_id: Option<String>,
    pub template: String,
    pub recipient_kind: String,
    pub to_address: String,
    pub subject: String,
    pub body_text: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
    pub body_html: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = saved_reasons)]
pub struct SavedReason {
    pub id: String,
    pub organisation_id: OrgId,
    pub step: String,
    pub title: String,
    pub body: String,
    /// Codes of the rules it goes with, separated by spaces.
    pub rule_codes: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Whether a key from a request could be stored at all. PostgreSQL refuses a NUL in text, even
/// in a WHERE clause, and validation keeps NULs out of every stored value, so a key holding one
/// matches nothing: it is answered "not found" on both backends rather than as a database error.
fn storable(key: &str) -> bool {
    !key.contains('\0')
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = closed_days)]
pub struct ClosedDay {
    pub id: String,
    pub nation: Option<String>,
    pub organisation_id: Option<OrgId>,
    pub day: chrono::NaiveDate,
    pub title: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = case_alerts)]
pub struct CaseAlert {
    pub id: String,
    pub case_id: CaseId,
    pub kind: String,
    pub due_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}
