//! The organisation's own log: each change an admin makes to how the organisation works, with
//! who made it and when, written in the same transaction as the change.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::{from_db_time, new_id, to_db_time, DbConnection};
use crate::domain::deadline::long_date_time;
use crate::error::AppResult;
use crate::store::{self, Organisation};

use super::{OrgId, StaffContext, UserId};

/// What an admin changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgChange {
    SettingsChanged,
    ClosureAdded,
    RuleAdded,
    RuleChanged,
    MemberAdded,
    RoleRemoved,
    TokenIssued,
    TokenRevoked,
    StatementChanged,
    PublicNoteChanged,
    ReasonAdded,
    ReasonChanged,
    ReasonRemoved,
}

impl OrgChange {
    pub const ALL: [OrgChange; 13] = [
        OrgChange::SettingsChanged,
        OrgChange::ClosureAdded,
        OrgChange::RuleAdded,
        OrgChange::RuleChanged,
        OrgChange::MemberAdded,
        OrgChange::RoleRemoved,
        OrgChange::TokenIssued,
        OrgChange::TokenRevoked,
        OrgChange::StatementChanged,
        OrgChange::PublicNoteChanged,
        OrgChange::ReasonAdded,
        OrgChange::ReasonChanged,
        OrgChange::ReasonRemoved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrgChange::SettingsChanged => "settings_changed",
            OrgChange::ClosureAdded => "closure_added",
            OrgChange::RuleAdded => "rule_added",
            OrgChange::RuleChanged => "rule_changed",
            OrgChange::MemberAdded => "member_added",
            OrgChange::RoleRemoved => "role_removed",
            OrgChange::TokenIssued => "token_issued",
            OrgChange::TokenRevoked => "token_revoked",
            OrgChange::StatementChanged => "statement_changed",
            OrgChange::PublicNoteChanged => "public_note_changed",
            OrgChange::ReasonAdded => "reason_added",
            OrgChange::ReasonChanged => "reason_changed",
            OrgChange::ReasonRemoved => "reason_removed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// What happened, as staff read it after the person's name.
    pub fn words(self) -> &'static str {
        match self {
            OrgChange::SettingsChanged => "changed the organisation's settings",
            OrgChange::ClosureAdded => "added a closure day",
            OrgChange::RuleAdded => "added a policy rule",
            OrgChange::RuleChanged => "reworded a policy rule",
            OrgChange::MemberAdded => "gave a role to",
            OrgChange::RoleRemoved => "took a role from",
            OrgChange::TokenIssued => "issued an API token",
            OrgChange::TokenRevoked => "revoked an API token",
            OrgChange::StatementChanged => "rewrote the accessibility statement",
            OrgChange::PublicNoteChanged => "reworded the public note left where a comment was removed",
            OrgChange::ReasonAdded => "added a saved reason",
            OrgChange::ReasonChanged => "reworded a saved reason",
            OrgChange::ReasonRemoved => "removed a saved reason",
        }
    }
}

/// Who made a change: a staff member (perhaps through a token an admin issued), or nobody
/// signed in (the command line, the first-run set-up).
#[derive(Debug, Clone, Copy)]
pub enum ChangedBy<'a> {
    Staff(&'a StaffContext),
    /// A staff member known only by id (the admin issuing a token from the web).
    User(&'a UserId),
    CommandLine,
}

/// Writes one entry of the organisation's log, in the caller's transaction.
pub(crate) fn log_change(
    conn: &mut DbConnection,
    org_id: &OrgId,
    by: ChangedBy,
    change: OrgChange,
    subject: &str,
    detail: Option<String>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let (actor, issuer) = match by {
        ChangedBy::Staff(s) => (Some(s.user.id.clone()), s.token_issued_by.clone()),
        ChangedBy::User(id) => (Some(id.clone()), None),
        ChangedBy::CommandLine => (None, None),
    };
    store::insert_org_event(
        conn,
        &store::OrgEvent {
            id: new_id(),
            organisation_id: org_id.clone(),
            actor_user_id: actor,
            token_issued_by: issuer,
            kind: change.as_str().into(),
            subject: subject.to_string(),
            detail,
            created_at: to_db_time(now),
        },
    )?;
    Ok(())
}

/// One line of the log as the admin's page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OrgLogEntry {
    pub when: String,
    pub who: String,
    pub what: String,
    pub subject: String,
    pub detail: Option<String>,
}

/// The newest `limit` entries of an organisation's log, in words.
pub fn org_log(conn: &mut DbConnection, org: &Organisation, limit: i64) -> AppResult<Vec<OrgLogEntry>> {
    let tz = org.tz();
    let mut names = std::collections::HashMap::new();
    let mut name = |conn: &mut DbConnection, id: &UserId| -> AppResult<String> {
        if let Some(n) = names.get(id) {
            return Ok(String::clone(n));
        }
        let n =
            store::user_by_id(conn, id)?.map(|u| u.name).unwrap_or_else(|| "someone since removed".into());
        names.insert(id.clone(), n.clone());
        Ok(n)
    };
    let mut out = vec![];
    for e in store::org_events_of(conn, &org.id, limit)? {
        let who = match (&e.actor_user_id, &e.token_issued_by) {
            (Some(actor), Some(issuer)) => {
                format!("{}, through an API token issued by {}", name(conn, actor)?, name(conn, issuer)?)
            }
            (Some(actor), None) => name(conn, actor)?,
            (None, _) => "Someone at the command line".into(),
        };
        out.push(OrgLogEntry {
            when: long_date_time(from_db_time(e.created_at), tz),
            who,
            what: OrgChange::parse(&e.kind).map_or("made a change", OrgChange::words).into(),
            subject: e.subject,
            detail: e.detail,
        });
    }
    Ok(out)
}
