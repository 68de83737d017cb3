//! Domain services: the queries, transactions and invariants below the resolvers.
//!
//! Every function takes the workspace it acts in and never reads across it; objects
//! of another workspace are `NOT_FOUND`, as if they did not exist. A write stores the
//! events it causes in its own transaction ([`feed::commit`]).

pub mod agents;
pub mod api_keys;
pub mod case_file;
pub mod conversations;
pub mod core;
pub mod feed;
pub mod feedback;
pub mod handoffs;
pub mod hours;
pub mod identity;
pub mod insights;
pub mod knowledge;
pub mod leads;
pub mod lifecycle;
pub mod messages;
pub mod pipeline;
pub mod policy;
pub mod presence;
pub mod ratings;
pub mod responder;
pub mod retag;
pub mod routing;
pub mod streams;
pub mod sweeper;
pub mod tagger;
pub mod tags;
pub mod teams;
pub mod text;
pub mod validate;
pub mod webhooks;
pub mod workspaces;

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
