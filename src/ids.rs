//! The ids of the three things most often passed around: a case, an organisation and a
//! person. Each is its own type, so an organisation's id can never be handed to a function
//! that expects a case's; the compiler refuses it. They are stored as text (uuids), as every
//! id is, and read and written as text on both backends.
//!
//! A function that wants a case's id takes a `CaseId`:
//!
//! ```
//! use redress::ids::CaseId;
//! fn wants_a_case(_: &CaseId) {}
//! wants_a_case(&CaseId::new());
//! ```
//!
//! and an organisation's id is refused there at compile time:
//!
//! ```compile_fail,E0308
//! use redress::ids::{CaseId, OrgId};
//! fn wants_a_case(_: &CaseId) {}
//! wants_a_case(&OrgId::new());
//! ```

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, AsExpression, FromSqlRow,
        )]
        #[diesel(sql_type = Text)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh id, for a row about to be inserted.
            pub fn new() -> Self {
                Self(uuid::Uuid::new_v4().to_string())
            }

            /// An id as it came from outside (a URL, a form, an export): it names a row only
            /// if one with this id exists, which the query that uses it finds out.
            pub fn from_raw(raw: impl Into<String>) -> Self {
                Self(raw.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        // Reading an id as text (to format it, hash it or compare it) is always safe; what
        // the types forbid is mixing one kind of id up with another.
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // One impl per direction covers SQLite, PostgreSQL and the multi-backend enum: each
        // already reads and writes text.
        impl<DB: Backend> ToSql<Text, DB> for $name
        where
            str: ToSql<Text, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.0.as_str().to_sql(out)
            }
        }

        impl<DB: Backend> FromSql<Text, DB> for $name
        where
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                String::from_sql(bytes).map(Self)
            }
        }
    };
}

id_type!(
    /// A case's id (not its reference, which people read; this one only the system does).
    CaseId
);
id_type!(
    /// An organisation's id.
    OrgId
);
id_type!(
    /// A person's id: a member of staff, whatever their roles.
    UserId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_and_write_as_plain_text() {
        let id = CaseId::from_raw("3f1c");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"3f1c\"");
        let back: CaseId = serde_json::from_str("\"3f1c\"").unwrap();
        assert_eq!(back, id);
        assert_eq!(id.to_string(), "3f1c");
        assert_ne!(OrgId::new(), OrgId::new());
    }
}
