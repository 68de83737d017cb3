//! Domain services: the queries, transactions and invariants below the resolvers.
//!
//! Every function takes the workspace it acts in and never reads across it; objects
//! of another workspace are `NOT_FOUND`, as if they did not exist. A write stores the
//! events it causes in its own transaction ([`feed::commit`]).

pub mod chat;
pub mod core;
pub mod handoff;
pub mod insights;
pub mod knowledge;
pub mod orchestration;
pub mod outbound;
pub mod tenancy;

pub use self::core::Core;

/// Raw statements are built in storage (`crate::db`); domain code uses them too.
pub use crate::db::stmt;

/// Whether a database error is a unique-constraint violation (a duplicate).
pub(crate) fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
