//! API tokens: issuing, checking, listing and revoking them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::{from_db_time, new_id, to_db_time, write_tx, DbConnection};
use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::store::{self, Organisation};
use crate::validate::Checker;

use super::*;

/// Issues an API token for a member of the organisation. The token is returned once; only its
/// hash is kept. `issued_by` is the admin issuing it (none from the command line): the token
/// acts in its holder's name, so who made it is recorded and shown.
pub fn add_token(
    conn: &mut DbConnection,
    org_slug: &str,
    email: &str,
    label: &str,
    issued_by: Option<&UserId>,
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
        store::insert_api_token(
            conn,
            &store::ApiToken {
                id: id.clone(),
                user_id: user.id.clone(),
                organisation_id: org.id.clone(),
                token_hash: hash_secret(&token),
                label: label.clone(),
                created_at: to_db_time(now),
                last_used_at: None,
                revoked_at: None,
                created_by: issued_by.cloned(),
            },
        )?;
        let by = issued_by.map_or(ChangedBy::CommandLine, ChangedBy::User);
        log_change(
            conn,
            &org.id,
            by,
            OrgChange::TokenIssued,
            &label,
            Some(format!("for {}", user.email)),
            now,
        )?;
        tracing::info!(
            event = "token_issued",
            token = %id,
            holder = %user.id,
            actor = issued_by.map_or("command line", |id| id.as_str()),
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
    let row = store::api_token_by_hash(conn, &hash)?;
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
    // A token someone made for themselves is theirs alone; one an admin issued names them too.
    let token_issued_by = row.created_by.filter(|issuer| *issuer != user.id);
    Ok((StaffContext { user, org, roles, token_issued_by }, stale.then_some(row.id)))
}

/// Notes that an API token was used now.
pub fn touch_token(conn: &mut DbConnection, token_id: &str) -> AppResult<()> {
    write_tx(conn, |conn| {
        store::touch_api_token(conn, token_id, Utc::now())?;
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
    let rows = store::api_tokens_of(conn, &org.id)?;
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
    by: ChangedBy,
    now: DateTime<Utc>,
) -> AppResult<()> {
    write_tx(conn, |conn| {
        let Some(label) = store::revoke_api_token(conn, &org.id, id, now)? else {
            return Err(AppError::NotFound("No such token, or it is already revoked.".into()));
        };
        log_change(conn, &org.id, by, OrgChange::TokenRevoked, &label, None, now)
    })
}
