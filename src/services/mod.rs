//! Use cases. Each one that changes a case owns one database transaction: a guarded update of
//! the case, one event, and the outbox rows of the emails it causes — all or nothing.

mod accounts;
mod audit;
pub mod case;
mod organisation;
pub mod procedure;
pub mod reasons;
mod rules;
mod tokens;
pub mod transfer;

pub use accounts::*;
pub use audit::*;
pub use case::*;
pub use organisation::*;
pub use rules::*;
pub use tokens::*;

use crate::domain::{self, Action, Actor, CaseKind, Role};
pub use crate::ids::{CaseId, OrgId, UserId};
use crate::mail::EmailTemplates;
use crate::security::{hash_password, hash_secret, new_secret};
use crate::store::{Organisation, User};

/// What the use cases need besides a connection: the email templates and where the public
/// reaches this instance.
pub struct Services {
    pub base_url: String,
    pub emails: EmailTemplates,
}

/// A staff member acting within one organisation.
#[derive(Debug, Clone)]
pub struct StaffContext {
    pub user: User,
    pub org: Organisation,
    pub roles: Vec<Role>,
    /// Acting through an API token an admin issued for them: that admin's user id.
    pub token_issued_by: Option<UserId>,
}

impl StaffContext {
    /// The role this person acts in for `action`: the first of theirs that may take it, or
    /// else any of theirs, so the refusal names a role they hold.
    fn actor_for(&self, kind: CaseKind, action: Option<Action>) -> Actor {
        let fits = |a: &Actor| match action {
            Some(action) => action.permitted(kind, *a),
            None => domain::may_open(kind, *a),
        };
        self.roles
            .iter()
            .map(|r| Actor::Staff(*r))
            .find(fits)
            .unwrap_or(Actor::Staff(self.roles.first().copied().unwrap_or(Role::Admin)))
    }
}

/// Who did something, for the timeline.
#[derive(Debug, Clone)]
pub struct ActorRef {
    pub actor: Actor,
    pub user_id: Option<UserId>,
    /// The admin who issued the API token the step was taken through, if any.
    pub token_issued_by: Option<UserId>,
}

impl ActorRef {
    /// A staff member acting in `actor`'s role, through a token when they are.
    pub fn staff(staff: &StaffContext, actor: Actor) -> Self {
        ActorRef {
            actor,
            user_id: Some(staff.user.id.clone()),
            token_issued_by: staff.token_issued_by.clone(),
        }
    }

    /// Someone with no account: a party through their private link, or the deadline clock.
    pub fn without_account(actor: Actor) -> Self {
        ActorRef { actor, user_id: None, token_issued_by: None }
    }
}
