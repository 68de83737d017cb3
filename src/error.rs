//! The one error type of the crate, and how it crosses into GraphQL.
//!
//! Policy: every error a client sees carries `extensions.code`, one of the constants in
//! [`code`]. Database and other internal failures are logged once, here, with their
//! detail, and reach the client as `INTERNAL` with a generic message: SQL text and file
//! paths never leave the server. `AppError` deliberately does not implement `Display`,
//! so async-graphql's blanket `From<impl Display>` cannot turn it into an error without
//! its code; the only way across is [`From<AppError> for async_graphql::Error`].

use async_graphql::ErrorExtensions;

/// The client-visible error codes (`extensions.code`).
pub mod code {
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    /// A document the server does not answer as a whole (introspection while it
    /// is off), as Apollo Server names it.
    pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
    pub const CONFLICT: &str = "CONFLICT";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// The database (or another part the server needs) does not answer; retry later.
    pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
    /// A subscriber fell behind and missed events; it should refetch.
    pub const LAGGED: &str = "LAGGED";
    pub const INTERNAL: &str = "INTERNAL";
}

#[derive(Clone, Debug)]
pub enum AppError {
    /// No credentials, or credentials that are expired, malformed or wrongly signed.
    Unauthenticated(&'static str),
    /// Valid credentials that do not allow this operation.
    Forbidden(String),
    /// The object does not exist, or belongs to another workspace (indistinguishable).
    NotFound(&'static str),
    /// Input that fails validation; `field` names the offending input field, and
    /// `reason` (`extensions.reason`) refines it where a client acts on it, such
    /// as `CURSOR_EXPIRED`.
    BadInput {
        field: String,
        message: String,
        reason: Option<&'static str>,
    },
    /// The operation collides with the current state; `reason` is a machine-readable
    /// refinement (`extensions.reason`), such as `CONTROL_NOT_HELD`.
    Conflict {
        message: String,
        reason: Option<&'static str>,
    },
    /// Too many requests from one client; `retry_after` is in whole seconds (≥ 1).
    RateLimited { message: String, retry_after: u64 },
    /// The database does not answer (down, unreachable, read-only, out of
    /// connections); the request may succeed later. `detail` is logged, not shown.
    Unavailable(String),
    /// A subscription missed events (its client read too slowly, or a listener
    /// connection dropped); the stream goes on, and the client should refetch.
    Lagged(String),
    /// Anything the client cannot act on: database failures, broken invariants.
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::BadInput {
            field: field.into(),
            message: message.into(),
            reason: None,
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::Forbidden(message.into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        AppError::Conflict {
            message: message.into(),
            reason: None,
        }
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        AppError::Internal(detail.into())
    }

    /// The client-visible code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated(_) => code::UNAUTHENTICATED,
            AppError::Forbidden(_) => code::FORBIDDEN,
            AppError::NotFound(_) => code::NOT_FOUND,
            AppError::BadInput { .. } => code::BAD_USER_INPUT,
            AppError::Conflict { .. } => code::CONFLICT,
            AppError::RateLimited { .. } => code::RATE_LIMITED,
            AppError::Unavailable(_) => code::SERVICE_UNAVAILABLE,
            AppError::Lagged(_) => code::LAGGED,
            AppError::Internal(_) => code::INTERNAL,
        }
    }

    /// What the operator is told (logs, the command line): the details clients
    /// are spared.
    pub fn detail(&self) -> String {
        match self {
            AppError::Unavailable(detail) | AppError::Internal(detail) => detail.clone(),
            other => other.message(),
        }
    }

    /// The client-visible message; internal details are replaced.
    pub fn message(&self) -> String {
        match self {
            AppError::Unauthenticated(why) => format!("not authenticated: {why}"),
            AppError::Forbidden(message) => message.clone(),
            AppError::NotFound(what) => format!("{what} not found"),
            AppError::BadInput { field, message, .. } => format!("invalid `{field}`: {message}"),
            AppError::Conflict { message, .. } => message.clone(),
            AppError::RateLimited { message, .. } | AppError::Lagged(message) => message.clone(),
            AppError::Unavailable(_) => {
                "the database is not answering; try again in a few seconds".to_owned()
            }
            AppError::Internal(_) => "internal error".to_owned(),
        }
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        use sea_orm::{DbErr, RuntimeErr};
        let unavailable = match &err {
            // Failing to get a connection at all is an outage, whatever the reason
            // (refused, database not accepting connections, pool time-out).
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
            DbErr::Exec(RuntimeErr::SqlxError(sqlx))
            | DbErr::Query(RuntimeErr::SqlxError(sqlx)) => is_outage(sqlx),
            _ => false,
        };
        if unavailable {
            AppError::Unavailable(format!("database: {err}"))
        } else {
            AppError::Internal(format!("database: {err}"))
        }
    }
}

/// Whether a database error means the database is not answering (or cannot take
/// writes), rather than that this statement is wrong: connection failures, pool
/// time-outs, PostgreSQL's connection and shutdown classes, SQLite's I/O, read-only,
/// full-disk and locked errors.
pub fn is_outage(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            match code.parse::<i64>() {
                // SQLite: the primary result code is the low byte. BUSY, LOCKED,
                // IOERR, FULL, CANTOPEN, READONLY.
                Ok(sqlite) => matches!(sqlite & 0xff, 5 | 6 | 8 | 10 | 13 | 14),
                // PostgreSQL: connection exceptions, insufficient resources,
                // operator intervention (terminated backends, shutdown).
                Err(_) => {
                    code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
                }
            }
        }
        _ => false,
    }
}

impl From<sea_orm::TransactionError<AppError>> for AppError {
    fn from(err: sea_orm::TransactionError<AppError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(err) => err.into(),
            sea_orm::TransactionError::Transaction(err) => err,
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        if is_outage(&err) {
            AppError::Unavailable(format!("database: {err}"))
        } else {
            AppError::Internal(format!("database: {err}"))
        }
    }
}

impl From<serde_json::Error> for AppError {
    fn from(err: serde_json::Error) -> Self {
        AppError::Internal(format!("json: {err}"))
    }
}

impl ErrorExtensions for AppError {
    fn extend(&self) -> async_graphql::Error {
        match self {
            AppError::Internal(detail) => tracing::error!(error.detail = %detail, "internal error"),
            AppError::Unavailable(detail) => {
                tracing::warn!(error.detail = %detail, "database unavailable");
            }
            _ => {}
        }
        async_graphql::Error::new(self.message()).extend_with(|_, ext| {
            ext.set("code", self.code());
            match self {
                AppError::BadInput { field, reason, .. } => {
                    ext.set("field", field.as_str());
                    if let Some(reason) = reason {
                        ext.set("reason", *reason);
                    }
                }
                AppError::Conflict {
                    reason: Some(reason),
                    ..
                } => ext.set("reason", *reason),
                AppError::RateLimited { retry_after, .. } => {
                    ext.set("retryAfter", *retry_after);
                }
                _ => {}
            }
        })
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        err.extend()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_errors_reach_clients_without_their_text() {
        let err: AppError = sea_orm::DbErr::Custom("SELECT secret FROM /var/db".into()).into();
        let gql: async_graphql::Error = err.into();
        assert_eq!(gql.message, "internal error");
        let ext = gql.extensions.expect("extensions are set");
        assert_eq!(
            ext.get("code"),
            Some(&async_graphql::Value::from("INTERNAL"))
        );
    }

    #[test]
    fn bad_input_names_the_field() {
        let gql: async_graphql::Error =
            AppError::bad_input("fields.cmsVersion", "not a number").into();
        let ext = gql.extensions.expect("extensions are set");
        assert_eq!(
            ext.get("field"),
            Some(&async_graphql::Value::from("fields.cmsVersion"))
        );
        assert!(gql.message.contains("cmsVersion"));
    }
}
