//! Moving an organisation's whole history between databases (a SQLite file into PostgreSQL,
//! say): `redress export` writes it as one JSON document, `redress import` writes it into
//! another database in one transaction and checks the counts.

use std::io::Write;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::schema::*;
use crate::db::{write_tx, DbConnection};
use crate::error::{AppError, AppResult};
use crate::store::*;

/// Everything that belongs to one organisation. Sessions are left behind: people sign in
/// again on the new database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgExport {
    pub format: u32,
    pub organisation: Organisation,
    pub users: Vec<User>,
    pub memberships: Vec<Membership>,
    pub api_tokens: Vec<ApiToken>,
    pub policy_rules: Vec<PolicyRule>,
    pub closed_days: Vec<ClosedDay>,
    pub cases: Vec<CaseRow>,
    pub case_tokens: Vec<CaseToken>,
    pub case_events: Vec<CaseEvent>,
    pub case_alerts: Vec<CaseAlert>,
    pub outbox: Vec<OutboxRow>,
}

/// Row counts of an export, for the report and the check after an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub users: usize,
    pub cases: usize,
    pub events: usize,
    pub emails: usize,
    pub others: usize,
}

impl OrgExport {
    pub fn counts(&self) -> Counts {
        Counts {
            users: self.users.len(),
            cases: self.cases.len(),
            events: self.case_events.len(),
            emails: self.outbox.len(),
            others: self.memberships.len()
                + self.api_tokens.len()
                + self.policy_rules.len()
                + self.closed_days.len()
                + self.case_tokens.len()
                + self.case_alerts.len(),
        }
    }
}

pub fn export(conn: &mut DbConnection, slug: &str) -> AppResult<OrgExport> {
    let organisation =
        org_by_slug(conn, slug)?.ok_or_else(|| AppError::NotFound(format!("no organisation {slug:?}")))?;
    let org_id = organisation.id.clone();
    let memberships: Vec<Membership> = memberships::table
        .filter(memberships::organisation_id.eq(&org_id))
        .order(memberships::id)
        .select(Membership::as_select())
        .load(conn)?;
    let case_ids: Vec<String> = cases::table
        .filter(cases::organisation_id.eq(&org_id))
        .order(cases::id)
        .select(cases::id)
        .load(conn)?;
    // Every account the history refers to, not only today's members: someone who has since
    // left still recorded cases, took steps and held or issued tokens, and the import needs
    // their account for those references to hold.
    let mut user_ids: std::collections::BTreeSet<String> =
        memberships.iter().map(|m| m.user_id.clone()).collect();
    let token_people: Vec<(String, Option<String>)> = api_tokens::table
        .filter(api_tokens::organisation_id.eq(&org_id))
        .select((api_tokens::user_id, api_tokens::created_by))
        .load(conn)?;
    for (holder, issuer) in token_people {
        user_ids.insert(holder);
        user_ids.extend(issuer);
    }
    let recorders: Vec<Option<String>> =
        cases::table.filter(cases::organisation_id.eq(&org_id)).select(cases::recorded_by).load(conn)?;
    user_ids.extend(recorders.into_iter().flatten());
    let actors: Vec<Option<String>> = case_events::table
        .filter(case_events::case_id.eq_any(&case_ids))
        .select((case_events::actor_user_id, case_events::token_issued_by))
        .load::<(Option<String>, Option<String>)>(conn)?
        .into_iter()
        .flat_map(|(actor, issuer)| [actor, issuer])
        .collect();
    user_ids.extend(actors.into_iter().flatten());
    let user_ids: Vec<String> = user_ids.into_iter().collect();
    Ok(OrgExport {
        format: 1,
        users: users::table
            .filter(users::id.eq_any(&user_ids))
            .order(users::id)
            .select(User::as_select())
            .load(conn)?,
        memberships,
        api_tokens: api_tokens::table
            .filter(api_tokens::organisation_id.eq(&org_id))
            .order(api_tokens::id)
            .select(ApiToken::as_select())
            .load(conn)?,
        policy_rules: policy_rules::table
            .filter(policy_rules::organisation_id.eq(&org_id))
            .order(policy_rules::id)
            .select(PolicyRule::as_select())
            .load(conn)?,
        closed_days: closed_days::table
            .filter(closed_days::organisation_id.eq(&org_id))
            .order(closed_days::id)
            .select(ClosedDay::as_select())
            .load(conn)?,
        cases: cases::table
            .filter(cases::organisation_id.eq(&org_id))
            .order(cases::id)
            .select(CaseRow::as_select())
            .load(conn)?,
        case_tokens: case_tokens::table
            .filter(case_tokens::case_id.eq_any(&case_ids))
            .order(case_tokens::id)
            .select(CaseToken::as_select())
            .load(conn)?,
        case_events: case_events::table
            .filter(case_events::case_id.eq_any(&case_ids))
            .order(case_events::id)
            .select(CaseEvent::as_select())
            .load(conn)?,
        case_alerts: case_alerts::table
            .filter(case_alerts::case_id.eq_any(&case_ids))
            .order(case_alerts::id)
            .select(CaseAlert::as_select())
            .load(conn)?,
        outbox: outbox::table
            .filter(outbox::organisation_id.eq(&org_id))
            .order(outbox::id)
            .select(OutboxRow::as_select())
            .load(conn)?,
        organisation,
    })
}

/// Writes an export into this database, all or nothing, reporting progress on `progress`.
/// Staff who already have an account here (by email) keep it and gain the organisation's
/// roles; the organisation itself must be new here.
pub fn import(conn: &mut DbConnection, data: &OrgExport, progress: &mut dyn Write) -> AppResult<Counts> {
    if data.format != 1 {
        return Err(AppError::field(
            "format",
            format!("export format {} is not one this version reads", data.format),
        ));
    }
    let total = data.counts();
    let all = total.users + total.cases + total.events + total.emails + total.others + 1;
    let mut done = 0usize;
    let mut tick = |n: usize, progress: &mut dyn Write| {
        done += n;
        let width = 40;
        let filled = done * width / all.max(1);
        let _ =
            write!(progress, "\r[{}{}] {done}/{all} rows", "#".repeat(filled), " ".repeat(width - filled));
        let _ = progress.flush();
    };
    write_tx(conn, |conn| {
        if org_by_slug(conn, &data.organisation.slug)?.is_some() {
            return Err(AppError::Conflict(format!(
                "organisation {:?} already exists in this database",
                data.organisation.slug
            )));
        }
        if let Some(other) = crate::store::org_by_prefix(conn, &data.organisation.reference_prefix)? {
            return Err(AppError::Conflict(format!(
                "organisation {:?} here already numbers its cases {}-…, as the imported one does; case references must be unique",
                other.slug, data.organisation.reference_prefix
            )));
        }
        diesel::insert_into(organisations::table).values(&data.organisation).execute(conn)?;
        tick(1, progress);
        // Accounts that exist here already (by email) are reused; their ids replace the
        // exported ones wherever they are referred to.
        let mut user_map = std::collections::HashMap::new();
        for user in &data.users {
            let id = match user_by_email(conn, &user.email)? {
                Some(existing) => existing.id,
                None => {
                    diesel::insert_into(users::table).values(user).execute(conn)?;
                    user.id.clone()
                }
            };
            user_map.insert(user.id.clone(), id);
        }
        tick(data.users.len(), progress);
        let map = |id: &str| user_map.get(id).cloned().unwrap_or_else(|| id.to_string());
        for m in &data.memberships {
            diesel::insert_into(memberships::table)
                .values(&Membership { user_id: map(&m.user_id), ..m.clone() })
                .execute(conn)?;
        }
        for t in &data.api_tokens {
            diesel::insert_into(api_tokens::table)
                .values(&ApiToken {
                    user_id: map(&t.user_id),
                    created_by: t.created_by.as_deref().map(map),
                    ..t.clone()
                })
                .execute(conn)?;
        }
        for r in &data.policy_rules {
            diesel::insert_into(policy_rules::table).values(r).execute(conn)?;
        }
        for d in &data.closed_days {
            diesel::insert_into(closed_days::table).values(d).execute(conn)?;
        }
        tick(
            data.memberships.len() + data.api_tokens.len() + data.policy_rules.len() + data.closed_days.len(),
            progress,
        );
        for (i, c) in data.cases.iter().enumerate() {
            let row = CaseRow { recorded_by: c.recorded_by.as_deref().map(map), ..c.clone() };
            diesel::insert_into(cases::table).values(&row).execute(conn)?;
            if i % 100 == 99 {
                tick(100, progress);
            }
        }
        tick(data.cases.len() % 100, progress);
        for t in &data.case_tokens {
            diesel::insert_into(case_tokens::table).values(t).execute(conn)?;
        }
        for (i, e) in data.case_events.iter().enumerate() {
            let row = CaseEvent {
                actor_user_id: e.actor_user_id.as_deref().map(map),
                token_issued_by: e.token_issued_by.as_deref().map(map),
                ..e.clone()
            };
            diesel::insert_into(case_events::table).values(&row).execute(conn)?;
            if i % 100 == 99 {
                tick(100, progress);
            }
        }
        tick(data.case_events.len() % 100 + data.case_tokens.len(), progress);
        for a in &data.case_alerts {
            diesel::insert_into(case_alerts::table).values(a).execute(conn)?;
        }
        for (i, m) in data.outbox.iter().enumerate() {
            diesel::insert_into(outbox::table).values(m).execute(conn)?;
            if i % 100 == 99 {
                tick(100, progress);
            }
        }
        tick(data.outbox.len() % 100 + data.case_alerts.len(), progress);
        let _ = writeln!(progress);
        // The check: what is now here is what was exported.
        let written = export(conn, &data.organisation.slug)?.counts();
        if written != total {
            return Err(AppError::Internal(format!(
                "imported counts {written:?} differ from the export's {total:?}"
            )));
        }
        Ok(written)
    })
}
