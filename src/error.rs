//! One error type for the edges (HTTP and CLI): a kind that maps to a status, and a message
//! written for the person who made the request.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::WorkflowError;

/// Field name → what is wrong with it.
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{}", summarise(.0))]
    Validation(FieldErrors),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    /// Too many attempts from one address; try again after this many seconds.
    #[error("{0}")]
    TooMany(String, u64),
    #[error("internal error: {0}")]
    Internal(String),
    /// The database failed in a way that trying again will not mend; the cause is kept for
    /// the log.
    #[error("database: {0}")]
    Database(#[source] diesel::result::Error),
    #[error("template: {0}")]
    Template(#[source] handlebars::RenderError),
    /// Something below failed (a file, a socket, the configuration): what was being done, and
    /// the cause, kept.
    #[error("{context}: {source}")]
    Failed { context: String, source: Box<dyn std::error::Error + Send + Sync> },
}

fn summarise(fields: &FieldErrors) -> String {
    let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("invalid input ({})", parts.join("; "))
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn field(name: &str, message: impl Into<String>) -> Self {
        let mut fields = FieldErrors::new();
        fields.insert(name.to_string(), message.into());
        AppError::Validation(fields)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            AppError::NotFound(_) => "not_found",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::Validation(_) => "validation",
            AppError::Conflict(_) => "conflict",
            AppError::Unavailable(_) => "unavailable",
            AppError::TooMany(..) => "too_many_requests",
            AppError::Internal(_)
            | AppError::Database(_)
            | AppError::Template(_)
            | AppError::Failed { .. } => "internal",
        }
    }

    /// A failure below, with what was being done when it happened.
    pub fn because(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        AppError::Failed { context: context.into(), source: source.into() }
    }

    /// A failure on our side rather than a refusal of the request.
    pub fn is_internal(&self) -> bool {
        self.kind() == "internal"
    }

    /// Logs a failure on our side with its whole chain of causes; a refusal is not logged.
    pub fn log_if_internal(&self, what: &str) {
        if self.is_internal() {
            tracing::error!(error = %self, causes = %self.causes(), "{what}");
        }
    }

    /// The chain of causes below this error, innermost last, for the log.
    pub fn causes(&self) -> String {
        let mut out = vec![];
        let mut next = std::error::Error::source(self);
        while let Some(cause) = next {
            out.push(cause.to_string());
            next = cause.source();
        }
        out.join(" <- ")
    }

    /// What may be shown to the person: internal details stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            e if e.is_internal() => {
                "Something went wrong on our side; nothing was changed. Please try again.".into()
            }
            AppError::Validation(_) => "Some of the input is not valid; see the fields.".into(),
            other => other.to_string(),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a FieldErrors>,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::TooMany(..) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal(_)
            | AppError::Database(_)
            | AppError::Template(_)
            | AppError::Failed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.log_if_internal("request failed");
        let fields = match self {
            AppError::Validation(f) => Some(f),
            _ => None,
        };
        let mut response = HttpResponse::build(self.status_code());
        if let AppError::Unauthorized(_) = self {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let AppError::TooMany(_, secs) = self {
            response.insert_header(("Retry-After", secs.to_string()));
        }
        if let AppError::Unavailable(_) = self {
            response.insert_header(("Retry-After", "5"));
        }
        response.json(ErrorBody { error: self.kind(), message: self.public_message(), fields })
    }
}

impl From<WorkflowError> for AppError {
    fn from(e: WorkflowError) -> Self {
        match e {
            WorkflowError::NotPermitted { .. } | WorkflowError::MayNotOpen { .. } => {
                AppError::Forbidden(e.to_string())
            }
            WorkflowError::WrongOutcome { .. } => AppError::field("outcome", e.to_string()),
            _ => AppError::Conflict(e.to_string()),
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        // PostgreSQL refuses a NUL anywhere in text (SQLite stores it). Validation keeps NULs
        // out of every field it checks; this catches any input that reaches a query unchecked,
        // so that it is the request that is refused, not the server that fails.
        if let diesel::result::Error::DatabaseError(kind, info) = &e {
            if info.message().contains("0x00") {
                return AppError::field("input", "contains a NUL character, which cannot be stored");
            }
            // Another process held SQLite's write lock too long, or PostgreSQL could not
            // serialise two transactions: nothing was changed, and trying again will work.
            if is_busy(&e) || matches!(kind, diesel::result::DatabaseErrorKind::SerializationFailure) {
                tracing::warn!(error = %e, "database busy; answered 503");
                return AppError::Unavailable(
                    "The database is busy at the moment; nothing was changed. Please try again in a few seconds."
                        .into(),
                );
            }
            // Two requests made the same thing at once: the check before the insert saw
            // nothing, and the database's unique index turned the second away.
            if matches!(kind, diesel::result::DatabaseErrorKind::UniqueViolation) {
                return AppError::Conflict(already_exists(info.as_ref()).into());
            }
        }
        AppError::Database(e)
    }
}

/// What a unique index refused, in plain words. PostgreSQL names the table; SQLite's message
/// does ("UNIQUE constraint failed: policy_rules.code, …").
fn already_exists(info: &dyn diesel::result::DatabaseErrorInformation) -> &'static str {
    let table = info.table_name().map(str::to_string).unwrap_or_else(|| {
        let message = info.message();
        let columns = message.split_once(": ").map_or(message, |(_, columns)| columns);
        columns.split('.').next().unwrap_or_default().to_string()
    });
    match table.as_str() {
        "policy_rules" => "A rule with that code already exists; nothing was changed.",
        "memberships" => "That person already has that role; nothing was changed.",
        "closed_days" => "That day is already a closed day; nothing was changed.",
        "organisations" => {
            "An organisation with that short name or case prefix already exists; nothing was changed."
        }
        "users" => "An account with that email address already exists; nothing was changed.",
        "cases" | "case_events" | "case_tokens" | "api_tokens" => {
            "Another change was made at the same moment; nothing was changed. Please try again."
        }
        _ => "That already exists; nothing was changed.",
    }
}

impl From<diesel::r2d2::PoolError> for AppError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        tracing::error!(error = %e, "database connection unavailable");
        AppError::Unavailable(
            "The database is unavailable at the moment; nothing was changed. Please try again shortly."
                .into(),
        )
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        AppError::Internal(format!("blocking task: {e}"))
    }
}

impl From<handlebars::RenderError> for AppError {
    fn from(e: handlebars::RenderError) -> Self {
        AppError::Template(e)
    }
}

/// Whether an error is SQLite's "database is locked" (or "busy"): another process held the
/// write lock for longer than `busy_timeout`.
pub fn is_busy(e: &diesel::result::Error) -> bool {
    match e {
        diesel::result::Error::DatabaseError(_, info) => {
            let m = info.message();
            m.contains("database is locked") || m.contains("database is busy")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, RunQueryDsl, SqliteConnection};

    use super::AppError;

    #[test]
    fn a_unique_violation_is_a_conflict_named_in_plain_words() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.batch_execute(
            "CREATE TABLE policy_rules (organisation_id TEXT, code TEXT, UNIQUE (organisation_id, code))",
        )
        .unwrap();
        conn.batch_execute("INSERT INTO policy_rules VALUES ('o', '3a')").unwrap();
        let refused = diesel::sql_query("INSERT INTO policy_rules VALUES ('o', '3a')").execute(&mut conn);
        match AppError::from(refused.unwrap_err()) {
            AppError::Conflict(message) => {
                assert_eq!(message, "A rule with that code already exists; nothing was changed.")
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    /// A database failure keeps its cause for the log, while the person is told only that
    /// nothing was changed.
    #[test]
    fn a_database_failure_keeps_its_cause() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        let failed = diesel::sql_query("SELECT * FROM no_such_table").execute(&mut conn);
        let e = AppError::from(failed.unwrap_err());
        assert!(matches!(e, AppError::Database(_)), "{e:?}");
        assert!(e.is_internal());
        assert!(std::error::Error::source(&e).is_some(), "the cause is kept");
        assert!(e.causes().contains("no_such_table"), "{}", e.causes());
        assert!(!e.public_message().contains("no_such_table"), "no detail reaches the person");
        let io = AppError::because("cannot read x", std::io::Error::other("disk on fire"));
        assert_eq!(io.to_string(), "cannot read x: disk on fire");
        assert_eq!(io.causes(), "disk on fire");
    }
}
