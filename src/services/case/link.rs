//! Private links: minting, reissuing, and finding the case behind one.

use chrono::{DateTime, Utc};

use crate::db::{write_tx, DbConnection};
use crate::domain::{self, Actor, CaseKind};
use crate::error::{AppError, AppResult};
use crate::store::{self, CaseRow};

use super::*;

/// What reissuing a private link did.
pub struct Reissued {
    pub case: CaseRow,
    /// Whom the new link was emailed to: the poster or the reporter.
    pub party: Actor,
    /// The new link when there is no address to email it to, for staff to hand over once.
    pub link_to_hand_over: Option<String>,
}

/// Revokes every private link of a case's poster (or reporter) and issues a new one, emailed
/// when there is an address. For a link that leaked, or an email sent to the wrong person.
pub fn reissue_link(
    conn: &mut DbConnection,
    svc: &Services,
    staff: &StaffContext,
    reference: &str,
    now: DateTime<Utc>,
) -> AppResult<Reissued> {
    write_tx(conn, |conn| {
        let case = find_case(conn, &staff.org, reference)?;
        store::lock_case(conn, &case.id)?;
        let case = store::case_by_id(conn, &case.id)?;
        let status = status_of(&case)?;
        let (party, address) = match status.kind {
            CaseKind::Removal => (Actor::Poster, case.author_email.clone()),
            CaseKind::Complaint => (Actor::Reporter, case.reporter_email.clone()),
        };
        // The workflow decides who may: a moderator, the secretary or an admin.
        let by = ActorRef::staff(staff, staff.actor_for(status.kind, Some(Action::ReissueLink)));
        let schedule = schedule_of(conn, &staff.org)?;
        let mut step = domain::transition(&status, Action::ReissueLink, by.actor, now, &schedule)?;
        store::revoke_links(conn, &case.id, now)?;
        if address.is_none() {
            // Nowhere to send it: staff are shown the link once instead.
            step.emails.clear();
        }
        let ctx = StepContext { svc, org: &staff.org, by: &by, words: None, now };
        record(conn, &ctx, &case, &step)?;
        let link_to_hand_over = match address {
            Some(_) => None,
            None => Some(mint_link(conn, svc, &case, party, now)?),
        };
        Ok(Reissued { case, party, link_to_hand_over })
    })
}

/// A fresh private link for a party of a case. Links are never stored, only their hashes, so
/// each email that needs one carries a new one; all stay valid until revoked.
pub(super) fn mint_link(
    conn: &mut DbConnection,
    svc: &Services,
    case: &CaseRow,
    party: Actor,
    now: DateTime<Utc>,
) -> AppResult<String> {
    let (_, secret) = store::mint_token(conn, &case.id, party, None, now)?;
    Ok(format!("{}/c/{}", svc.base_url, secret))
}

/// The case behind a private link, and which party holds it.
pub fn case_for_link(conn: &mut DbConnection, secret: &str) -> AppResult<(CaseRow, Actor)> {
    let not_found = || {
        AppError::NotFound("This link is not valid. Check that you copied all of it from the email.".into())
    };
    if secret.len() != 64 || !secret.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let hash = hash_secret(secret);
    let token = store::link_by_hash(conn, &hash)?;
    let token = token.ok_or_else(not_found)?;
    let party = if token.party == "reporter" { Actor::Reporter } else { Actor::Poster };
    let case = store::case_by_id(conn, &token.case_id)?;
    Ok((case, party))
}
