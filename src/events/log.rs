//! The `events` table: appending inside a write's transaction, reading by cursor,
//! and pruning what is older than the retention.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, TransactionTrait, Value,
};

use super::{Cursor, Record};
use crate::db::Db;
use crate::db::stmt;
use crate::error::AppResult;

/// The setting that remembers the newest cursor pruned: resuming from below it
/// would skip events that no longer exist.
const PRUNED_THROUGH: &str = "events_pruned_through";

/// Rows deleted per pruning transaction.
const PRUNE_BATCH: usize = 1000;

/// An event about to be stored.
#[derive(Clone, Debug)]
pub struct NewRecord {
    pub id: String,
    pub workspace_id: String,
    pub conversation_id: Option<String>,
    pub kind: String,
    pub subject_id: Option<String>,
    pub occurred_at: i64,
    pub payload: String,
}

/// Which events a read wants; everything when empty.
#[derive(Clone, Debug, Default)]
pub struct Scope<'a> {
    pub workspace_id: Option<&'a str>,
    pub conversation_id: Option<&'a str>,
    /// Any of these types.
    pub kinds: &'a [String],
}

/// A cursor older than what the log still holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Expired;

/// Store `records` in `txn`, the transaction of the change they describe; the
/// cursor of each, in their order.
pub async fn append<C: ConnectionTrait>(txn: &C, records: &[NewRecord]) -> AppResult<Vec<Cursor>> {
    let mut sql = String::from(
        "INSERT INTO events (id, workspace_id, type, conversation_id, subject_id, occurred_at, payload) VALUES ",
    );
    let mut values: Vec<Value> = Vec::with_capacity(records.len() * 7);
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str("(?, ?, ?, ?, ?, ?, ?)");
        values.extend([
            record.id.as_str().into(),
            record.workspace_id.as_str().into(),
            record.kind.as_str().into(),
            record.conversation_id.clone().into(),
            record.subject_id.clone().into(),
            record.occurred_at.into(),
            record.payload.as_str().into(),
        ]);
    }
    sql.push_str(" RETURNING id, tx, pos");
    let rows = txn
        .query_all_raw(stmt(txn.get_database_backend(), &sql, values))
        .await?;
    // Matched by id: the order of RETURNING rows is not promised.
    let mut cursors = Vec::with_capacity(records.len());
    for record in records {
        let row = rows
            .iter()
            .find(|row| {
                row.try_get::<String>("", "id")
                    .is_ok_and(|id| id == record.id)
            })
            .ok_or_else(|| crate::error::AppError::internal("an event row went missing"))?;
        cursors.push(cursor_of(row)?);
    }
    Ok(cursors)
}

fn cursor_of(row: &QueryResult) -> AppResult<Cursor> {
    Ok(Cursor {
        tx: row.try_get("", "tx")?,
        pos: row.try_get("", "pos")?,
    })
}

/// The condition "after `cursor`" on the columns of `prefix` (`""` or `"e."`), with
/// `tx` and `pos` standing for the cursor's parts (placeholders or columns), as
/// the indexes seek it: `(tx, pos)` on PostgreSQL; on SQLite `tx` is always 0 and
/// `pos` is the row id, so `pos` alone.
pub fn after_sql(backend: DbBackend, prefix: &str, tx: &str, pos: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("({prefix}tx, {prefix}pos) > ({tx}, {pos})"),
        _ => format!("{prefix}pos > {pos}"),
    }
}

/// The values of [`after_sql`] with placeholders.
fn after_values(backend: DbBackend, cursor: Cursor) -> Vec<Value> {
    match backend {
        DbBackend::Postgres => vec![cursor.tx.into(), cursor.pos.into()],
        _ => vec![cursor.pos.into()],
    }
}

/// Log order.
fn order(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => " ORDER BY tx, pos",
        _ => " ORDER BY pos",
    }
}

/// Only rows no older transaction can still precede (see the module docs of
/// `crate::events`); every row, on SQLite.
fn visible(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => " AND tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
        _ => "",
    }
}

/// Up to `limit` events after `after` in `scope`, in cursor order, read on `conn`
/// (a request's reader, or the background's).
pub async fn read(
    conn: &DatabaseConnection,
    after: Cursor,
    scope: &Scope<'_>,
    limit: u64,
) -> AppResult<Vec<Record>> {
    let backend = conn.get_database_backend();
    let mut sql = format!(
        "SELECT tx, pos, id, workspace_id, type, conversation_id, subject_id, occurred_at, payload \
         FROM events WHERE {}",
        after_sql(backend, "", "?", "?")
    );
    let mut values = after_values(backend, after);
    if let Some(workspace) = scope.workspace_id {
        sql.push_str(" AND workspace_id = ?");
        values.push(workspace.into());
    }
    if let Some(conversation) = scope.conversation_id {
        sql.push_str(" AND conversation_id = ?");
        values.push(conversation.into());
    }
    if !scope.kinds.is_empty() {
        sql.push_str(" AND type IN (");
        for (i, kind) in scope.kinds.iter().enumerate() {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
            values.push(kind.as_str().into());
        }
        sql.push(')');
    }
    sql.push_str(visible(backend));
    sql.push_str(order(backend));
    sql.push_str(" LIMIT ?");
    values.push((limit as i64).into());
    let rows = conn.query_all_raw(stmt(backend, &sql, values)).await?;
    rows.iter()
        .map(|row| {
            Ok(Record::new(
                Some(cursor_of(row)?),
                super::NewRecord {
                    id: row.try_get("", "id")?,
                    workspace_id: row.try_get("", "workspace_id")?,
                    conversation_id: row.try_get("", "conversation_id")?,
                    kind: row.try_get("", "type")?,
                    subject_id: row.try_get("", "subject_id")?,
                    occurred_at: row.try_get("", "occurred_at")?,
                    payload: row.try_get("", "payload")?,
                },
            ))
        })
        .collect()
}

/// The cursor of the newest event readers may consume (the start, when the log is
/// empty): where a reader that wants only what happens from now on begins.
pub async fn newest(db: &Db) -> AppResult<Cursor> {
    let backend = db.backend();
    let newest_first = match backend {
        DbBackend::Postgres => "ORDER BY tx DESC, pos DESC",
        _ => "ORDER BY pos DESC",
    };
    let sql = format!(
        "SELECT tx, pos FROM events WHERE 1 = 1{} {newest_first} LIMIT 1",
        visible(backend)
    );
    let row = db.reader.query_one_raw(stmt(backend, &sql, vec![])).await?;
    row.map_or(Ok(Cursor::START), |row| cursor_of(&row))
}

/// `Err(Expired)` when events after `cursor` have been pruned.
pub async fn check_cursor(db: &Db, cursor: Cursor) -> AppResult<Result<(), Expired>> {
    use sea_orm::EntityTrait;
    let row = crate::entity::setting::Entity::find_by_id(PRUNED_THROUGH)
        .one(&db.reader)
        .await?;
    let through = row
        .and_then(|row| Cursor::parse(&row.value))
        .unwrap_or(Cursor::START);
    Ok(if cursor < through {
        Err(Expired)
    } else {
        Ok(())
    })
}

/// Delete the events that occurred before `cutoff` (unix ms), oldest first,
/// remembering the newest cursor deleted; how many were deleted.
pub async fn prune(db: &Db, cutoff: i64) -> AppResult<u64> {
    let backend = db.backend();
    let mut deleted = 0;
    loop {
        let rows = db
            .writer
            .query_all_raw(stmt(
                backend,
                &format!(
                    "SELECT tx, pos, occurred_at FROM events{} LIMIT ?",
                    order(backend)
                ),
                vec![(PRUNE_BATCH as i64).into()],
            ))
            .await?;
        // Only a prefix in log order: a reader resuming after the pruned cursor
        // must find everything after it.
        let mut through = None;
        for row in &rows {
            let at: i64 = row.try_get("", "occurred_at")?;
            if at >= cutoff {
                break;
            }
            through = Some(cursor_of(row)?);
        }
        let Some(through) = through else {
            return Ok(deleted);
        };
        let txn = db.writer.begin().await?;
        txn.execute_raw(stmt(
            backend,
            // Never lowered: another process may have pruned further meanwhile.
            "INSERT INTO settings (key, value) VALUES (?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = CASE WHEN excluded.value > settings.value \
             THEN excluded.value ELSE settings.value END",
            vec![PRUNED_THROUGH.into(), through.encode().into()],
        ))
        .await?;
        let done = txn
            .execute_raw(stmt(
                backend,
                &format!(
                    "DELETE FROM events WHERE NOT ({})",
                    after_sql(backend, "", "?", "?")
                ),
                after_values(backend, through),
            ))
            .await?;
        txn.commit().await?;
        deleted += done.rows_affected();
        if rows.len() < PRUNE_BATCH {
            return Ok(deleted);
        }
    }
}
