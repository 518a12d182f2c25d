//! Staff sign-in: password checks and server-side sessions kept in the database.

use chrono::{DateTime, Duration, Utc};

use crate::db::{from_db_time, write_tx, DbConnection};
use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::ids::UserId;
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
pub fn memberships_of(
    conn: &mut DbConnection,
    user_id: &UserId,
) -> AppResult<Vec<(Organisation, Vec<Role>)>> {
    let rows = store::membership_rows(conn, user_id)?;
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
        (Some(user), Some(device)) => {
            store::device_trusted(conn, &hash_secret(device), &user.id, Utc::now() - DEVICE_LIFETIME)?
        }
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
            store::delete_session(conn, &hash_secret(old))?;
        }
        let org_id = if orgs.len() == 1 { Some(&orgs[0].0.id) } else { None };
        store::insert_session(conn, &hash_secret(&secret), &user.id, org_id, &new_secret(), now)?;
        if let Some(device) = &device {
            store::insert_trusted_device(conn, &hash_secret(device), &user.id, now)?;
        }
        // Sessions that ran out, and trusted devices whose cookie has expired, are deleted here
        // (sessions also when presented), so neither table keeps every sign-in ever made.
        store::purge_sign_ins(conn, now - IDLE_LIMIT, now - ABSOLUTE_LIMIT, now - DEVICE_LIFETIME)?;
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
    let Some(row) = store::session_by_hash(conn, &id_hash)? else { return Ok(None) };
    let (seen, created) = (from_db_time(row.last_seen_at), from_db_time(row.created_at));
    if now - seen > IDLE_LIMIT || now - created > ABSOLUTE_LIMIT {
        store::delete_session(conn, &id_hash)?;
        return Ok(None);
    }
    // Writing on every request would serialise all reads behind the write lock; a minute of
    // slack on a 30-minute limit costs nothing.
    if now - seen > Duration::minutes(1) {
        store::touch_session(conn, &id_hash, now)?;
    }
    let (user_id, org_id, csrf) = (row.user_id, row.organisation_id, row.csrf_token);
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
    Ok(store::delete_session(conn, id_hash)?)
}

/// Switches the session to another organisation the user belongs to.
pub fn select_org(conn: &mut DbConnection, session: &Session, slug: &str) -> AppResult<()> {
    let org =
        store::org_by_slug(conn, slug)?.ok_or_else(|| AppError::NotFound("No such organisation.".into()))?;
    if store::roles_of(conn, &session.user.id, &org.id)?.is_empty() {
        return Err(AppError::NotFound("No such organisation.".into()));
    }
    store::set_session_org(conn, &session.id_hash, &org.id)?;
    Ok(())
}

pub fn setup_needed(conn: &mut DbConnection) -> AppResult<bool> {
    Ok(store::user_count(conn)? == 0)
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
                services::NewMember {
                    email: &input.admin_email,
                    name: &input.admin_name,
                    role: "admin",
                    password: Some(&input.password),
                },
                services::ChangedBy::CommandLine,
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
                        // The references' prefix is made from the short name, which the form
                        // asks for; its own rule is said in terms of the short name.
                        "reference_prefix" => {
                            return (
                                "org_slug".to_string(),
                                "The short name needs at least 2 letters or digits: case references begin with them".to_string(),
                            )
                        }
                        other => other,
                    };
                    (k.to_string(), v)
                })
                .collect(),
        ),
        other => other,
    })
}
