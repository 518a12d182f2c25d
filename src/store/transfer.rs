//! An organisation's whole history as rows: read in one go for an export, written in one go
//! by an import.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::*;
use crate::db::schema::*;
use crate::db::DbConnection;

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
    /// The organisation's own log (absent from exports made before it existed).
    #[serde(default)]
    pub org_events: Vec<OrgEvent>,
    /// Its saved reasons (absent from exports made before they existed).
    #[serde(default)]
    pub saved_reasons: Vec<SavedReason>,
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
                + self.case_alerts.len()
                + self.org_events.len()
                + self.saved_reasons.len(),
        }
    }
}

/// Reads everything that belongs to an organisation, ordered by id so that two reads of the
/// same history are equal.
pub fn read_org(conn: &mut DbConnection, organisation: Organisation) -> QueryResult<OrgExport> {
    let org_id = organisation.id.clone();
    let memberships: Vec<Membership> = memberships::table
        .filter(memberships::organisation_id.eq(&org_id))
        .order(memberships::id)
        .select(Membership::as_select())
        .load(conn)?;
    let case_ids: Vec<CaseId> = cases::table
        .filter(cases::organisation_id.eq(&org_id))
        .order(cases::id)
        .select(cases::id)
        .load(conn)?;
    // Every account the history refers to, not only today's members: someone who has since
    // left still recorded cases, took steps and held or issued tokens, and the import needs
    // their account for those references to hold.
    let mut user_ids: std::collections::BTreeSet<UserId> =
        memberships.iter().map(|m| m.user_id.clone()).collect();
    let token_people: Vec<(UserId, Option<UserId>)> = api_tokens::table
        .filter(api_tokens::organisation_id.eq(&org_id))
        .select((api_tokens::user_id, api_tokens::created_by))
        .load(conn)?;
    for (holder, issuer) in token_people {
        user_ids.insert(holder);
        user_ids.extend(issuer);
    }
    let recorders: Vec<Option<UserId>> =
        cases::table.filter(cases::organisation_id.eq(&org_id)).select(cases::recorded_by).load(conn)?;
    user_ids.extend(recorders.into_iter().flatten());
    let actors: Vec<Option<UserId>> = case_events::table
        .filter(case_events::case_id.eq_any(&case_ids))
        .select((case_events::actor_user_id, case_events::token_issued_by))
        .load::<(Option<UserId>, Option<UserId>)>(conn)?
        .into_iter()
        .flat_map(|(actor, issuer)| [actor, issuer])
        .collect();
    user_ids.extend(actors.into_iter().flatten());
    let org_events: Vec<OrgEvent> = org_events::table
        .filter(org_events::organisation_id.eq(&org_id))
        .order(org_events::id)
        .select(OrgEvent::as_select())
        .load(conn)?;
    for e in &org_events {
        user_ids.extend(e.actor_user_id.iter().chain(&e.token_issued_by).cloned());
    }
    let user_ids: Vec<UserId> = user_ids.into_iter().collect();
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
        org_events,
        saved_reasons: saved_reasons::table
            .filter(saved_reasons::organisation_id.eq(&org_id))
            .order(saved_reasons::id)
            .select(SavedReason::as_select())
            .load(conn)?,
        organisation,
    })
}

/// Writes an export's rows into this database, in the caller's transaction. Accounts that
/// exist here already (by email) are reused: their ids replace the exported ones wherever they
/// are referred to. `tick` is told how many rows each stretch wrote.
pub fn write_org(conn: &mut DbConnection, data: &OrgExport, tick: &mut dyn FnMut(usize)) -> QueryResult<()> {
    diesel::insert_into(organisations::table).values(&data.organisation).execute(conn)?;
    tick(1);
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
    tick(data.users.len());
    let map = |id: &UserId| user_map.get(id).cloned().unwrap_or_else(|| id.clone());
    for m in &data.memberships {
        diesel::insert_into(memberships::table)
            .values(&Membership { user_id: map(&m.user_id), ..m.clone() })
            .execute(conn)?;
    }
    for t in &data.api_tokens {
        diesel::insert_into(api_tokens::table)
            .values(&ApiToken {
                user_id: map(&t.user_id),
                created_by: t.created_by.as_ref().map(map),
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
    tick(data.memberships.len() + data.api_tokens.len() + data.policy_rules.len() + data.closed_days.len());
    for (i, c) in data.cases.iter().enumerate() {
        let row = CaseRow { recorded_by: c.recorded_by.as_ref().map(map), ..c.clone() };
        diesel::insert_into(cases::table).values(&row).execute(conn)?;
        if i % 100 == 99 {
            tick(100);
        }
    }
    tick(data.cases.len() % 100);
    for t in &data.case_tokens {
        diesel::insert_into(case_tokens::table).values(t).execute(conn)?;
    }
    for (i, e) in data.case_events.iter().enumerate() {
        let row = CaseEvent {
            actor_user_id: e.actor_user_id.as_ref().map(map),
            token_issued_by: e.token_issued_by.as_ref().map(map),
            ..e.clone()
        };
        diesel::insert_into(case_events::table).values(&row).execute(conn)?;
        if i % 100 == 99 {
            tick(100);
        }
    }
    tick(data.case_events.len() % 100 + data.case_tokens.len());
    for a in &data.case_alerts {
        diesel::insert_into(case_alerts::table).values(a).execute(conn)?;
    }
    for (i, m) in data.outbox.iter().enumerate() {
        diesel::insert_into(outbox::table).values(m).execute(conn)?;
        if i % 100 == 99 {
            tick(100);
        }
    }
    for e in &data.org_events {
        let row = OrgEvent {
            actor_user_id: e.actor_user_id.as_ref().map(map),
            token_issued_by: e.token_issued_by.as_ref().map(map),
            ..e.clone()
        };
        diesel::insert_into(org_events::table).values(&row).execute(conn)?;
    }
    for r in &data.saved_reasons {
        diesel::insert_into(saved_reasons::table).values(r).execute(conn)?;
    }
    tick(data.outbox.len() % 100 + data.case_alerts.len() + data.org_events.len() + data.saved_reasons.len());
    Ok(())
}
