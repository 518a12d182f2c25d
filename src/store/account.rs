//! Staff accounts, their roles, sessions, trusted browsers and API tokens.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::*;
use crate::db::schema::*;
use crate::db::{to_db_time, DbConnection};

pub fn user_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<User>> {
    if !storable(email) {
        return Ok(None);
    }
    crate::on_backend!(conn, |c| users::table
        .filter(users::email.eq(email.to_lowercase()))
        .select(User::as_select())
        .get_result(c)
        .optional())
}

pub fn user_by_id(conn: &mut DbConnection, id: &UserId) -> QueryResult<Option<User>> {
    crate::on_backend!(conn, |c| users::table.find(id).select(User::as_select()).get_result(c).optional())
}

pub fn roles_of(conn: &mut DbConnection, user_id: &UserId, org_id: &OrgId) -> QueryResult<Vec<String>> {
    crate::on_backend!(conn, |c| memberships::table
        .filter(memberships::user_id.eq(user_id))
        .filter(memberships::organisation_id.eq(org_id))
        .select(memberships::role)
        .order(memberships::role)
        .load(c))
}

/// Addresses of everyone holding `role` in the organisation.
pub fn emails_with_role(conn: &mut DbConnection, org_id: &OrgId, role: &str) -> QueryResult<Vec<String>> {
    crate::on_backend!(conn, |c| memberships::table
        .inner_join(users::table)
        .filter(memberships::organisation_id.eq(org_id))
        .filter(memberships::role.eq(role))
        .select(users::email)
        .order(users::email)
        .load(c))
}

pub fn user_count(conn: &mut DbConnection) -> QueryResult<i64> {
    users::table.count().get_result(conn)
}

pub fn insert_user(conn: &mut DbConnection, user: &User) -> QueryResult<()> {
    diesel::insert_into(users::table).values(user).execute(conn)?;
    Ok(())
}

pub fn insert_membership(conn: &mut DbConnection, membership: &Membership) -> QueryResult<()> {
    diesel::insert_into(memberships::table).values(membership).execute(conn)?;
    Ok(())
}

/// Sets a password and ends every session and trusted browser of the account: a new password
/// is often set because the old one leaked.
pub fn set_password_hash(conn: &mut DbConnection, user_id: &UserId, hash: &str) -> QueryResult<()> {
    diesel::update(users::table.find(user_id)).set(users::password_hash.eq(Some(hash))).execute(conn)?;
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)?;
    diesel::delete(trusted_devices::table.filter(trusted_devices::user_id.eq(user_id))).execute(conn)?;
    Ok(())
}

/// Each member of an organisation with one of their roles, by name.
pub fn member_rows(conn: &mut DbConnection, org_id: &OrgId) -> QueryResult<Vec<(User, String)>> {
    memberships::table
        .inner_join(users::table)
        .filter(memberships::organisation_id.eq(org_id))
        .order((users::name, users::email, memberships::role))
        .select((User::as_select(), memberships::role))
        .load(conn)
}

/// The organisations a user belongs to, each with one of their roles there, by name.
pub fn membership_rows(
    conn: &mut DbConnection,
    user_id: &UserId,
) -> QueryResult<Vec<(Organisation, String)>> {
    memberships::table
        .inner_join(organisations::table)
        .filter(memberships::user_id.eq(user_id))
        .order((organisations::name, memberships::role))
        .select((Organisation::as_select(), memberships::role))
        .load(conn)
}

pub fn count_with_role(conn: &mut DbConnection, org_id: &OrgId, role: &str) -> QueryResult<i64> {
    memberships::table
        .filter(memberships::organisation_id.eq(org_id))
        .filter(memberships::role.eq(role))
        .count()
        .get_result(conn)
}

/// Takes a role away; false when the member did not hold it.
pub fn delete_membership(
    conn: &mut DbConnection,
    org_id: &OrgId,
    user_id: &UserId,
    role: &str,
) -> QueryResult<bool> {
    let n = diesel::delete(
        memberships::table
            .filter(memberships::organisation_id.eq(org_id))
            .filter(memberships::user_id.eq(user_id))
            .filter(memberships::role.eq(role)),
    )
    .execute(conn)?;
    Ok(n > 0)
}

// Sessions and trusted browsers.

/// Whether the browser whose cookie hashes to `device_hash` signed in to this account since
/// `since`.
pub fn device_trusted(
    conn: &mut DbConnection,
    device_hash: &str,
    user_id: &UserId,
    since: DateTime<Utc>,
) -> QueryResult<bool> {
    let n: i64 = trusted_devices::table
        .filter(trusted_devices::token_hash.eq(device_hash))
        .filter(trusted_devices::user_id.eq(user_id))
        .filter(trusted_devices::created_at.ge(to_db_time(since)))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

pub fn insert_trusted_device(
    conn: &mut DbConnection,
    device_hash: &str,
    user_id: &UserId,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(trusted_devices::table)
        .values((
            trusted_devices::token_hash.eq(device_hash),
            trusted_devices::user_id.eq(user_id),
            trusted_devices::created_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// A session as stored: its user, organisation, form token, and when it began and was last seen.
#[derive(Debug, Clone, Queryable)]
pub struct SessionRow {
    pub user_id: UserId,
    pub organisation_id: Option<OrgId>,
    pub csrf_token: String,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
}

pub fn insert_session(
    conn: &mut DbConnection,
    id_hash: &str,
    user_id: &UserId,
    org_id: Option<&OrgId>,
    csrf_token: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::id_hash.eq(id_hash),
            sessions::user_id.eq(user_id),
            sessions::organisation_id.eq(org_id),
            sessions::csrf_token.eq(csrf_token),
            sessions::created_at.eq(to_db_time(now)),
            sessions::last_seen_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn session_by_hash(conn: &mut DbConnection, id_hash: &str) -> QueryResult<Option<SessionRow>> {
    sessions::table
        .filter(sessions::id_hash.eq(id_hash))
        .select((
            sessions::user_id,
            sessions::organisation_id,
            sessions::csrf_token,
            sessions::created_at,
            sessions::last_seen_at,
        ))
        .get_result(conn)
        .optional()
}

pub fn delete_session(conn: &mut DbConnection, id_hash: &str) -> QueryResult<()> {
    diesel::delete(sessions::table.filter(sessions::id_hash.eq(id_hash))).execute(conn)?;
    Ok(())
}

pub fn touch_session(conn: &mut DbConnection, id_hash: &str, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(sessions::table.filter(sessions::id_hash.eq(id_hash)))
        .set(sessions::last_seen_at.eq(to_db_time(now)))
        .execute(conn)?;
    Ok(())
}

pub fn set_session_org(conn: &mut DbConnection, id_hash: &str, org_id: &OrgId) -> QueryResult<()> {
    diesel::update(sessions::table.filter(sessions::id_hash.eq(id_hash)))
        .set(sessions::organisation_id.eq(Some(org_id)))
        .execute(conn)?;
    Ok(())
}

/// Deletes sessions idle since `idle_before` or begun before `begun_before`, and trusted
/// browsers older than `trusted_before`, so neither table keeps every sign-in ever made.
pub fn purge_sign_ins(
    conn: &mut DbConnection,
    idle_before: DateTime<Utc>,
    begun_before: DateTime<Utc>,
    trusted_before: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::delete(
        sessions::table.filter(
            sessions::last_seen_at
                .lt(to_db_time(idle_before))
                .or(sessions::created_at.lt(to_db_time(begun_before))),
        ),
    )
    .execute(conn)?;
    diesel::delete(trusted_devices::table.filter(trusted_devices::created_at.lt(to_db_time(trusted_before))))
        .execute(conn)?;
    Ok(())
}

// API tokens.

pub fn insert_api_token(conn: &mut DbConnection, token: &ApiToken) -> QueryResult<()> {
    diesel::insert_into(api_tokens::table).values(token).execute(conn)?;
    Ok(())
}

/// The live API token with this hash.
pub fn api_token_by_hash(conn: &mut DbConnection, hash: &str) -> QueryResult<Option<ApiToken>> {
    crate::on_backend!(conn, |c| api_tokens::table
        .filter(api_tokens::token_hash.eq(hash))
        .filter(api_tokens::revoked_at.is_null())
        .select(ApiToken::as_select())
        .get_result(c)
        .optional())
}

pub fn touch_api_token(conn: &mut DbConnection, token_id: &str, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(api_tokens::table.find(token_id))
        .set(api_tokens::last_used_at.eq(Some(to_db_time(now))))
        .execute(conn)?;
    Ok(())
}

/// An organisation's API tokens, newest first, each with its holder's address.
pub fn api_tokens_of(conn: &mut DbConnection, org_id: &OrgId) -> QueryResult<Vec<(ApiToken, String)>> {
    api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::organisation_id.eq(org_id))
        .order(api_tokens::created_at.desc())
        .select((ApiToken::as_select(), users::email))
        .load(conn)
}

/// Revokes a live token of the organisation; its label, or none when there is no live token
/// with that id.
pub fn revoke_api_token(
    conn: &mut DbConnection,
    org_id: &OrgId,
    id: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<String>> {
    let live = api_tokens::table
        .filter(api_tokens::organisation_id.eq(org_id))
        .filter(api_tokens::id.eq(id))
        .filter(api_tokens::revoked_at.is_null());
    let Some(label) = live.select(api_tokens::label).get_result::<String>(conn).optional()? else {
        return Ok(None);
    };
    diesel::update(live).set(api_tokens::revoked_at.eq(Some(to_db_time(now)))).execute(conn)?;
    Ok(Some(label))
}
