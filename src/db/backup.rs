//! Backups of a SQLite database while it serves, and putting one back.
//!
//! - `casefile backup --to FILE` runs `VACUUM INTO` on a read-only connection: one
//!   read transaction, so the copy is the database as of one moment (every
//!   transaction committed before it, none after), compacted, and written while
//!   the server goes on writing (WAL lets readers and the writer run together).
//! - `casefile restore --from FILE` checks that FILE is a Casefile SQLite database
//!   (`PRAGMA quick_check`, and its migrations table), refuses while a server uses
//!   the database (every `serve` holds a shared lock on `DATABASE.lock` while it
//!   runs; restoring takes it exclusively), then copies FILE beside the database,
//!   syncs it, removes the old write-ahead log and shared-memory files, and renames
//!   the copy into place. The next start migrates it if it is older.
//!
//! PostgreSQL has its own tools: `pg_dump` and `pg_restore` (see the book's guides/backups.md).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};

use crate::error::{AppError, AppResult};

/// What PostgreSQL users run instead.
const ON_POSTGRES: &str = "on PostgreSQL, back up with `pg_dump --format=custom --file=casefile.dump \
     DATABASE_URL` and restore into an empty database with `pg_restore --no-owner --dbname \
     DATABASE_URL casefile.dump` (see docs/src/guides/backups.md)";

/// The file of a `sqlite://` URL; `None` for another database.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    SqliteConnectOptions::from_str(url)
        .ok()
        .map(|options| options.get_filename().to_owned())
}

fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// A server's hold on its SQLite database: `casefile restore` waits for none.
pub struct ServingLock(#[allow(dead_code)] File);

/// Hold the database at `url` while serving (a shared lock: several servers may
/// share a file); `None` for PostgreSQL.
pub fn hold_while_serving(url: &str) -> AppResult<Option<ServingLock>> {
    let Some(database) = sqlite_path(url) else {
        return Ok(None);
    };
    let path = lock_path(&database);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|err| {
            AppError::Unavailable(format!(
                "cannot open the lock file {}: {err}",
                path.display()
            ))
        })?;
    match file.try_lock_shared() {
        Ok(()) => Ok(Some(ServingLock(file))),
        Err(std::fs::TryLockError::WouldBlock) => Err(AppError::Unavailable(format!(
            "{} is being restored (casefile restore holds {}): start the server when it is done",
            database.display(),
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(err)) => Err(AppError::Unavailable(format!(
            "cannot lock {}: {err}",
            path.display()
        ))),
    }
}

/// Copy the database at `url` to `to`, consistent as of one moment, while it
/// serves; the copy's size in bytes.
pub async fn backup(url: &str, to: &Path) -> AppResult<u64> {
    let database = sqlite_path(url).ok_or_else(|| AppError::Unavailable(ON_POSTGRES.to_owned()))?;
    if to.exists() {
        return Err(AppError::Unavailable(format!(
            "{} exists: back up to a new file (a backup never overwrites one)",
            to.display()
        )));
    }
    if !database.exists() {
        return Err(AppError::Unavailable(format!(
            "there is no database at {}",
            database.display()
        )));
    }
    let mut conn = SqliteConnectOptions::new()
        .filename(&database)
        .read_only(true)
        .busy_timeout(std::time::Duration::from_secs(10))
        .connect()
        .await
        .map_err(|err| {
            AppError::Unavailable(format!("cannot open {}: {err}", database.display()))
        })?;
    sqlx::query("VACUUM INTO ?")
        .bind(to.to_string_lossy().into_owned())
        .execute(&mut conn)
        .await
        .map_err(|err| {
            AppError::Unavailable(format!("backing up to {} failed: {err}", to.display()))
        })?;
    conn.close().await.ok();
    let size = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
    Ok(size)
}

/// Put the backup `from` in place of the database at `url`, which no server may
/// be using.
pub async fn restore(url: &str, from: &Path) -> AppResult<()> {
    let database = sqlite_path(url).ok_or_else(|| AppError::Unavailable(ON_POSTGRES.to_owned()))?;
    check_backup(from).await?;
    let lock_file = lock_path(&database);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_file)
        .map_err(|err| {
            AppError::Unavailable(format!("cannot open {}: {err}", lock_file.display()))
        })?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(AppError::Unavailable(format!(
                "a casefile server is using {}: stop it, then restore",
                database.display()
            )));
        }
        Err(std::fs::TryLockError::Error(err)) => {
            return Err(AppError::Unavailable(format!(
                "cannot lock {}: {err}",
                lock_file.display()
            )));
        }
    }
    let mut staged = database.as_os_str().to_owned();
    staged.push(".restoring");
    let staged = PathBuf::from(staged);
    let io = |what: &str, err: std::io::Error| {
        AppError::Unavailable(format!("restoring {}: {what}: {err}", database.display()))
    };
    std::fs::copy(from, &staged).map_err(|err| io("copying the backup", err))?;
    File::open(&staged)
        .and_then(|file| file.sync_all())
        .map_err(|err| io("syncing the copy", err))?;
    for suffix in ["-wal", "-shm"] {
        let mut side = database.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::remove_file(PathBuf::from(side)) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(io("removing the old write-ahead log", err)),
        }
    }
    std::fs::rename(&staged, &database).map_err(|err| io("moving the copy in place", err))?;
    drop(lock);
    Ok(())
}

/// `from` is a readable Casefile SQLite database.
async fn check_backup(from: &Path) -> AppResult<()> {
    let not = |why: String| {
        AppError::Unavailable(format!(
            "{} is not a Casefile backup: {why}",
            from.display()
        ))
    };
    if !from.is_file() {
        return Err(not("there is no such file".to_owned()));
    }
    let mut conn = SqliteConnectOptions::new()
        .filename(from)
        .read_only(true)
        .connect()
        .await
        .map_err(|err| not(err.to_string()))?;
    let check: String = sqlx::query("PRAGMA quick_check")
        .fetch_one(&mut conn)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|err| not(err.to_string()))?;
    if check != "ok" {
        return Err(not(format!("SQLite finds it damaged ({check})")));
    }
    let migrated: i64 = sqlx::query(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('seaql_migrations', 'messages')",
    )
    .fetch_one(&mut conn)
    .await
    .and_then(|row| row.try_get(0))
    .map_err(|err| not(err.to_string()))?;
    if migrated != 2 {
        return Err(not("it has no Casefile tables".to_owned()));
    }
    conn.close().await.ok();
    Ok(())
}
