//! Staff sign-in: password checks and server-side sessions kept in the database.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

use crate::db::schema::{memberships, organisations, sessions, trusted_devices, users};
use crate::db::{from_db_time, to_db_time, write_tx, DbConnection};
use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::security::{hash_secret, new_secret, password_hasher};
use crate::services::{self, OrgInput};
use crate::store::{self, Organisation, User};
use crate::validate::Checker;

/// A session ends after this long without a request…
pub const IDLE_LIMIT: Duration = Duration::minutes(30);
/// …and after this long in all, however busy.
pub const ABSOLUTE_LIMIT: Duration = Duration::hours(12);
/// How long a browser stays trusted after signing in to an account (its cookie's lifetime).
pub const DEVICE_LIFETIME: Duration = Duration::days(180);

/// The signed-in staff member, the organisation they are working in, and their roles there.
#[derive(Debug, Clone)]
pub struct Session {
    pub id_hash: String,
    pub user: User,
    pub org: Option<Organisation>,
    pub roles: Vec<Role>,
    pub csrf: String,
}

impl Session {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::password_hash::{phc::PasswordHash, PasswordVerifier};
    match PasswordHash::new(hash) {
        Ok(parsed) => password_hasher().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// The organisations a user belongs to, with their roles in each.
pub fn memberships_of(conn: &mut DbConnection, user_id: &str) -> QueryResult<Vec<(Organisation, Vec<Role>)>> {
    let rows: Vec<(Organisation, String)> = memberships::table
        .inner_join(organisations::table)
        .filter(memberships::user_id.eq(user_id))
        .order((organisations::name, memberships::role))
        .select((Organisation::as_select(), memberships::role))
        .load(conn)?;
    let mut out: Vec<(Organisation, Vec<Role>)> = Vec::new();
    for (org, role) in rows {
        let Some(role) = Role::parse(&role) else { continue };
        match out.iter_mut().find(|(o, _)| o.id == org.id) {
            Some((_, roles)) => roles.push(role),
            None => out.push((org, vec![role])),
        }
    }
    Ok(out)
}

/// What a sign-in attempt needs from the database before the password is checked: the
/// account (if the address is one) with its hash, and whether this browser has signed in to it
/// before.
pub struct SignInCandidate {
    pub user: Option<User>,
    /// The hash to check the password against: the account's, or a dummy one so that an
    /// unknown address costs the same time as a wrong password.
    pub hash: String,
    pub trusted_device: bool,
}

pub fn sign_in_candidate(
    conn: &mut DbConnection,
    email: &str,
    device: Option<&str>,
) -> AppResult<SignInCandidate> {
    let user = store::user_by_email(conn, email.trim())?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let trusted_device = match (&user, device) {
        (Some(user), Some(device)) => trusted_devices::table
            .filter(trusted_devices::token_hash.eq(hash_secret(device)))
            .filter(trusted_devices::user_id.eq(&user.id))
            .filter(trusted_devices::created_at.ge(to_db_time(Utc::now() - DEVICE_LIFETIME)))
            .count()
            .get_result::<i64>(conn)?
            .gt(&0),
        _ => false,
    };
    let user = user.filter(|u| u.password_hash.is_some());
    Ok(SignInCandidate { user, hash: hash.unwrap_or_else(|| DUMMY_HASH.to_string()), trusted_device })
}

/// Opens a session for a user whose password has been checked; returns the session's secret
/// (for the cookie) and, for a browser not yet trusted, the secret of its new trusted-device
/// cookie.
pub fn start_session(
    conn: &mut DbConnection,
    user: &User,
    trusted_device: bool,
    replacing: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<(String, Option<String>)> {
    let orgs = memberships_of(conn, &user.id)?;
    let secret = new_secret();
    let device = (!trusted_device).then(new_secret);
    write_tx(conn, |conn| {
        // The browser's previous session, if it had one, ends here rather than lingering
        // until it times out.
        if let Some(old) = replacing {
            diesel::delete(sessions::table.filter(sessions::id_hash.eq(hash_secret(old)))).execute(conn)?;
        }
        diesel::insert_into(sessions::table)
            .values((
                sessions::id_hash.eq(hash_secret(&secret)),
                sessions::user_id.eq(&user.id),
                sessions::organisation_id.eq(if orgs.len() == 1 { Some(orgs[0].0.id.clone()) } else { None }),
                sessions::csrf_token.eq(new_secret()),
                sessions::created_at.eq(to_db_time(now)),
                sessions::last_seen_at.eq(to_db_time(now)),
            ))
            .execute(conn)?;
        if let Some(device) = &device {
            diesel::insert_into(trusted_devices::table)
                .values((
                    trusted_devices::token_hash.eq(hash_secret(device)),
                    trusted_devices::user_id.eq(&user.id),
                    trusted_devices::created_at.eq(to_db_time(now)),
                ))
                .execute(conn)?;
        }
        // Sessions that ran out, and trusted devices whose cookie has expired, are deleted here
        // (sessions also when presented), so neither table keeps every sign-in ever made.
        diesel::delete(
            sessions::table.filter(
                sessions::last_seen_at
                    .lt(to_db_time(now - IDLE_LIMIT))
                    .or(sessions::created_at.lt(to_db_time(now - ABSOLUTE_LIMIT))),
            ),
        )
        .execute(conn)?;
        diesel::delete(
            trusted_devices::table.filter(trusted_devices::created_at.lt(to_db_time(now - DEVICE_LIFETIME))),
        )
        .execute(conn)?;
        Ok::<_, AppError>(())
    })?;
    Ok((secret, device))
}

/// The same answer for an unknown address and a wrong password, so neither can be told from
/// the other.
pub fn refused_sign_in() -> AppError {
    AppError::Unauthorized("The email address or the password is not right.".into())
}

/// A valid argon2id hash of a random password, used to make failed look-ups cost the same.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Sa4fyJJh2Pp5X2k7m8qsOgBqtdZmMcDw0r+jD2IN0Bc";

/// The session behind a cookie, if it is still alive. Seeing it keeps it alive.
pub fn load(conn: &mut DbConnection, secret: &str, now: DateTime<Utc>) -> AppResult<Option<Session>> {
    let id_hash = hash_secret(secret);
    let row: Option<(String, Option<String>, String, chrono::NaiveDateTime, chrono::NaiveDateTime)> =
        sessions::table
            .filter(sessions::id_hash.eq(&id_hash))
            .select((
                sessions::user_id,
                sessions::organisation_id,
                sessions::csrf_token,
                sessions::created_at,
                sessions::last_seen_at,
            ))
            .get_result(conn)
            .optional()?;
    let Some((user_id, org_id, csrf, created, seen)) = row else { return Ok(None) };
    if now - from_db_time(seen) > IDLE_LIMIT || now - from_db_time(created) > ABSOLUTE_LIMIT {
        diesel::delete(sessions::table.filter(sessions::id_hash.eq(&id_hash))).execute(conn)?;
        return Ok(None);
    }
    // Writing on every request would serialise all reads behind the write lock; a minute of
    // slack on a 30-minute limit costs nothing.
    if now - from_db_time(seen) > Duration::minutes(1) {
        diesel::update(sessions::table.filter(sessions::id_hash.eq(&id_hash)))
            .set(sessions::last_seen_at.eq(to_db_time(now)))
            .execute(conn)?;
    }
    let Some(user) = store::user_by_id(conn, &user_id)? else { return Ok(None) };
    let (org, roles) = match org_id {
        Some(id) => {
            let org = store::org_by_id(conn, &id)?;
            let roles: Vec<Role> =
                store::roles_of(conn, &user.id, &org.id)?.iter().filter_map(|r| Role::parse(r)).collect();
            if roles.is_empty() {
                (None, vec![])
            } else {
                (Some(org), roles)
            }
        }
        None => (None, vec![]),
    };
    Ok(Some(Session { id_hash, user, org, roles, csrf }))
}

pub fn sign_out(conn: &mut DbConnection, id_hash: &str) -> AppResult<()> {
    diesel::delete(sessions::table.filter(sessions::id_hash.eq(id_hash))).execute(conn)?;
    Ok(())
}

/// Switches the session to another organisation the user belongs to.
pub fn select_org(conn: &mut DbConnection, session: &Session, slug: &str) -> AppResult<()> {
    let org =
        store::org_by_slug(conn, slug)?.ok_or_else(|| AppError::NotFound("No such organisation.".into()))?;
    if store::roles_of(conn, &session.user.id, &org.id)?.is_empty() {
        return Err(AppError::NotFound("No such organisation.".into()));
    }
    diesel::update(sessions::table.filter(sessions::id_hash.eq(&session.id_hash)))
        .set(sessions::organisation_id.eq(Some(org.id)))
        .execute(conn)?;
    Ok(())
}

pub fn setup_needed(conn: &mut DbConnection) -> AppResult<bool> {
    let n: i64 = users::table.count().get_result(conn)?;
    Ok(n == 0)
}

/// What the first-run form collects.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct SetupInput {
    pub org_name: String,
    pub org_slug: String,
    pub secretary_email: String,
    pub timezone: String,
    pub admin_name: String,
    pub admin_email: String,
    pub password: String,
}

/// Creates the first organisation and its admin, once: on a database that has no users yet.
pub fn first_run(conn: &mut DbConnection, input: &SetupInput, now: DateTime<Utc>) -> AppResult<()> {
    // Once set up, the form is gone: nothing about the input is judged.
    if !setup_needed(conn)? {
        return Err(AppError::Conflict("Redress is already set up; sign in instead.".into()));
    }
    let mut c = Checker::new();
    let org_input = OrgInput {
        slug: input.org_slug.trim().to_string(),
        name: input.org_name.clone(),
        secretary_email: input.secretary_email.clone(),
        timezone: Some(match input.timezone.trim() {
            "" => "Europe/London".to_string(),
            tz => tz.to_string(),
        }),
        ..OrgInput::default()
    };
    services::org_from_input(&mut c, org_input.clone(), now);
    c.line("admin_name", Some(&input.admin_name), crate::validate::NAME_MAX, true);
    c.email("admin_email", Some(&input.admin_email), true);
    crate::security::check_new_password(&mut c, "password", &input.password);
    let result = c.finish().and_then(|()| {
        write_tx(conn, |conn| {
            // Two first-run forms sent at once must not both find no organisation.
            crate::db::lock_organisations(conn)?;
            if !setup_needed(conn)? {
                return Err(AppError::Conflict("Redress is already set up; sign in instead.".into()));
            }
            services::add_org(conn, org_input, now)?;
            services::add_user(
                conn,
                input.org_slug.trim(),
                &input.admin_email,
                &input.admin_name,
                "admin",
                Some(&input.password),
                now,
            )?;
            Ok(())
        })
    });
    // The organisation's and the user's checks name their own fields; the form's differ.
    result.map_err(|e| match e {
        AppError::Validation(fields) => AppError::Validation(
            fields
                .into_iter()
                .map(|(k, v)| {
                    let k = match k.as_str() {
                        "slug" => "org_slug",
                        "name" => "org_name",
                        "email" => "admin_email",
                        other => other,
                    };
                    (k.to_string(), v)
                })
                .collect(),
        ),
        other => other,
    })
}
