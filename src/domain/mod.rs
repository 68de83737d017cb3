//! Domain services: the queries, transactions and invariants below the resolvers.
//!
//! Every function takes the workspace it acts in and never reads across it; objects
//! of another workspace are `NOT_FOUND`, as if they did not exist. A write stores the
//! events it causes in its own transaction ([`feed::commit`]).

pub mod agents;
pub mod api_keys;
pub mod case_file;
pub mod conversations;
pub mod feed;
pub mod handoffs;
pub mod identity;
pub mod insights;
pub mod knowledge;
pub mod leads;
pub mod lifecycle;
pub mod messages;
pub mod pipeline;
pub mod policy;
pub mod ratings;
pub mod responder;
pub mod retag;
pub mod streams;
pub mod tagger;
pub mod tags;
pub mod teams;
pub mod text;
pub mod validate;
pub mod webhooks;
pub mod workspaces;

use sea_orm::{DbBackend, Statement, Value};

/// A raw statement written with `?` placeholders, numbered for PostgreSQL.
pub fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DbBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for ch in sql.chars() {
            if ch == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(ch);
            }
        }
        out
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Whether a database error is a unique-constraint violation (a duplicate).
pub(crate) fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        let s = stmt(
            DbBackend::Postgres,
            "a = ? AND b = ?",
            vec![1.into(), 2.into()],
        );
        assert_eq!(s.sql, "a = $1 AND b = $2");
        let s = stmt(DbBackend::Sqlite, "a = ?", vec![1.into()]);
        assert_eq!(s.sql, "a = ?");
    }
}
