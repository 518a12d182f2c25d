//! Staff accounts: adding people to an organisation with a role, passwords, the admin's list
//! of members, and taking a role away.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::{memberships, sessions, trusted_devices, users};
use crate::db::{new_id, to_db_time, write_tx, DbConnection};
use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::store::{self, Organisation, User};
use crate::validate::{self, Checker};

use super::*;

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
    let parsed = Role::parse(role);
    if parsed.is_none() {
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
    crate::security::check_new_password(&mut c, "password", password);
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
