//! Staff accounts: adding people to an organisation with a role, passwords, the admin's list
//! of members, and taking a role away.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::{new_id, to_db_time, write_tx, DbConnection};
use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::store::{self, Organisation, User};
use crate::validate::{self, Checker};

use super::*;

/// Adds a staff member to an organisation with a role. Someone who already has an account gets
/// the extra role; a password, when given, is set.
/// Who is to join an organisation, as a form or the command line gives them.
#[derive(Debug, Clone, Copy)]
pub struct NewMember<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub role: &'a str,
    /// For a new account only: an existing one keeps its own.
    pub password: Option<&'a str>,
}

pub fn add_user(
    conn: &mut DbConnection,
    org_slug: &str,
    member: NewMember,
    by: ChangedBy,
    now: DateTime<Utc>,
) -> AppResult<User> {
    let NewMember { email, name, role, password } = member;
    let mut c = Checker::new();
    let email = c.email("email", Some(email), true).unwrap_or_default().to_lowercase();
    let name = c.line("name", Some(name), validate::NAME_MAX, true).unwrap_or_default();
    let parsed = Role::parse(role);
    if role.trim().is_empty() {
        c.fail("role", "Choose the role they will have");
    } else if parsed.is_none() {
        c.fail("role", "must be one of admin, moderator, secretary, committee");
    }
    if let Some(p) = password {
        crate::security::check_new_password(&mut c, "password", p);
    }
    c.finish()?;
    let Some(role) = parsed else {
        return Err(AppError::field("role", "must be one of admin, moderator, secretary, committee"));
    };
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
                let user =
                    User { id: UserId::new(), email, name, password_hash, created_at: to_db_time(now) };
                store::insert_user(conn, &user)?;
                user
            }
        };
        if store::roles_of(conn, &user.id, &org.id)?.iter().any(|r| r == role.as_str()) {
            return Err(AppError::Conflict(format!("{} is already {} in {}", user.email, role, org.slug)));
        }
        store::insert_membership(
            conn,
            &store::Membership {
                id: new_id(),
                user_id: user.id.clone(),
                organisation_id: org.id.clone(),
                role: role.as_str().to_string(),
                created_at: to_db_time(now),
            },
        )?;
        log_change(conn, &org.id, by, OrgChange::MemberAdded, &user.email, Some(role.as_str().into()), now)?;
        Ok(user)
    })
}

/// Sets or replaces a staff member's password.
pub fn set_password(conn: &mut DbConnection, email: &str, password: &str) -> AppResult<()> {
    let mut c = Checker::new();
    crate::security::check_new_password(&mut c, "password", password);
    c.finish()?;
    let hash = hash_password(password)?;
    write_tx(conn, |conn| {
        let user = store::user_by_email(conn, email.trim())?
            .ok_or_else(|| AppError::NotFound(format!("no user with email {email:?}")))?;
        // A new password is often set because the old one leaked: whoever signed in with it is
        // signed out, and browsers it trusted are trusted no more.
        store::set_password_hash(conn, &user.id, &hash)?;
        Ok(())
    })
}

/// A staff member of an organisation with their roles, for the admin's list.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    pub can_sign_in: bool,
}

pub fn members(conn: &mut DbConnection, org: &Organisation) -> AppResult<Vec<MemberView>> {
    let rows = store::member_rows(conn, &org.id)?;
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
pub fn remove_role(
    conn: &mut DbConnection,
    org: &Organisation,
    user_id: &UserId,
    role: Role,
    by: ChangedBy,
    now: DateTime<Utc>,
) -> AppResult<()> {
    write_tx(conn, |conn| {
        if role == Role::Admin {
            // Two admins removing each other at once must not both see two admins and leave
            // none: the organisation's row is locked while counting (PostgreSQL; SQLite
            // writes one at a time anyway).
            store::lock_org(conn, &org.id)?;
            let admins = store::count_with_role(conn, &org.id, Role::Admin.as_str())?;
            if admins <= 1 {
                return Err(AppError::Conflict("An organisation needs at least one admin.".into()));
            }
        }
        if !store::delete_membership(conn, &org.id, user_id, role.as_str())? {
            return Err(AppError::NotFound("No such role to remove.".into()));
        }
        let email = store::user_by_id(conn, user_id)?.map(|u| u.email).unwrap_or_default();
        log_change(conn, &org.id, by, OrgChange::RoleRemoved, &email, Some(role.as_str().into()), now)?;
        Ok(())
    })
}
