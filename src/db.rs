//! Storage: connecting to SQLite or PostgreSQL, migrating, and the statement counter.
//!
//! SQLite gets one writer connection (SQLite allows one writer at a time; queueing in
//! the pool is cheaper than `SQLITE_BUSY` retries) and a pool of read-only connections,
//! in WAL mode so readers never wait for the writer. `synchronous=FULL` makes a
//! committed message survive power loss. PostgreSQL uses one pool for both roles.

pub mod backup;
pub mod seal;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, SqlxPostgresConnector,
    SqlxSqliteConnector, Statement, Value,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::error::{AppError, AppResult};

/// How long a SQLite connection waits for a lock held by another process (the CLI,
/// a backup) before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of the file each analytics connection maps into memory (address
/// space, not memory: pages are read on demand and shared with the OS page cache).
const ANALYTICS_MMAP_BYTES: u64 = 1 << 30;

/// Connections of the analytics pool on SQLite.
const ANALYTICS_CONNECTIONS: u32 = 2;

/// How long a health check waits for each answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// The read pool's size when none is configured. SQLite's readers run on this
/// machine's cores, where two per core keep them busy; each also holds its own page
/// cache (up to 2 MB) and thread, which more readers would grow without serving
/// more (measured on 2 cores: 8 readers cost an idle subscribed connection ~2 KiB
/// more than 4, for the same inbox throughput). PostgreSQL's work is the server's.
pub fn default_pool_size(url: &str) -> u32 {
    if url.starts_with("sqlite:") {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (2 * cores).clamp(2, 16) as u32
    } else {
        8
    }
}

/// Connect once to the PostgreSQL server of `options`, within `timeout`, and say
/// in a sentence why that failed: the server is away, the database is missing, the
/// user is refused.
async fn reach_postgres(options: &PgConnectOptions, timeout: Duration) -> AppResult<()> {
    use sqlx::ConnectOptions;
    let (host, port) = (options.get_host(), options.get_port());
    let database = options.get_database().unwrap_or("postgres").to_owned();
    let attempt = tokio::time::timeout(timeout, options.connect()).await;
    let err = match attempt {
        Ok(Ok(conn)) => {
            let _ = sqlx::Connection::close(conn).await;
            return Ok(());
        }
        Ok(Err(err)) => err,
        Err(_) => {
            return Err(AppError::Unavailable(format!(
                "PostgreSQL on {host}:{port} did not answer within {} s: is the server up, and the address right?",
                timeout.as_secs()
            )));
        }
    };
    let code = match &err {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    };
    let sentence = match code.as_deref() {
        Some("3D000") => format!(
            "database \"{database}\" does not exist on {host}:{port}: create it with `createdb {database}`"
        ),
        Some("28P01" | "28000") => format!(
            "PostgreSQL on {host}:{port} refused user \"{}\": {}",
            options.get_username(),
            reason(&err)
        ),
        _ => format!("cannot reach PostgreSQL on {host}:{port}: {}", reason(&err)),
    };
    Err(AppError::Unavailable(sentence))
}

/// The innermost reason of a connection error, as plain words ("connection
/// refused").
fn reason(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
            _ => io.to_string(),
        },
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}

/// The database handles of one server.
#[derive(Clone)]
pub struct Db {
    /// Where writes (and reads that must see them inside a transaction) go.
    pub writer: DatabaseConnection,
    /// Where plain reads go.
    pub reader: DatabaseConnection,
    /// Where the insights digest reads: statements that scan a period of the
    /// workspace. On SQLite a small pool of its own whose connections read the file
    /// through `mmap` (a scan of 100,000 conversations costs half the CPU it costs
    /// through `read()` into a 2 MB page cache); kept apart from [`Db::reader`] so
    /// the pages a scan touches are not mapped by every connection that serves
    /// requests. PostgreSQL's own pool otherwise. Counted like the reader.
    pub analytics: DatabaseConnection,
    /// The readers again, for the background (the event log's reader, webhook
    /// scheduling): not counted in [`Db::statement_count`], which tests use to
    /// count what one request costs.
    pub background: DatabaseConnection,
    /// The PostgreSQL pool, for LISTEN/NOTIFY; `None` on SQLite.
    pub pg_pool: Option<sqlx::PgPool>,
    /// Seals the secrets it keeps (with `CASEFILE_MASTER_KEY`).
    pub sealer: seal::Sealer,
    statements: Arc<Statements>,
}

/// What the counted connections run: how many statements, and, while a test
/// records them, their text.
#[derive(Default)]
struct Statements {
    count: AtomicU64,
    recording: std::sync::atomic::AtomicBool,
    recorded: std::sync::Mutex<Vec<String>>,
}

impl Db {
    /// Connect to `url` (`sqlite://…` or `postgres://…`), creating a SQLite file if
    /// it does not exist, and run the migrations; calls wait at most 5 s for a
    /// connection.
    pub async fn connect(url: &str, pool_size: u32) -> AppResult<Db> {
        Self::connect_with_timeout(url, pool_size, Duration::from_secs(5)).await
    }

    /// [`Db::connect`], where a call waits at most `timeout` for a connection (then
    /// it fails with `SERVICE_UNAVAILABLE` rather than hang while the database is
    /// away).
    pub async fn connect_with_timeout(
        url: &str,
        pool_size: u32,
        timeout: Duration,
    ) -> AppResult<Db> {
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::connect_postgres(url, pool_size, timeout).await?
        } else if url.starts_with("sqlite:") {
            Self::connect_sqlite(url, pool_size, timeout).await?
        } else {
            let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
            return Err(AppError::Unavailable(format!(
                "the database URL scheme \"{scheme}\" is not supported: use sqlite://PATH or postgres://USER@HOST:PORT/DATABASE"
            )));
        };
        let pending = Migrator::get_pending_migrations(&db.writer).await?.len();
        Migrator::up(&db.writer, None).await?;
        // One line for them all: sea-orm-migration's line per migration is left
        // to `RUST_LOG=sea_orm_migration=info`.
        match pending {
            0 => tracing::info!(
                "database ready: up to date ({} migrations)",
                Migrator::migrations().len()
            ),
            n => tracing::info!("database ready: {n} migrations applied"),
        }
        Ok(db)
    }

    async fn connect_sqlite(url: &str, pool_size: u32, timeout: Duration) -> AppResult<Db> {
        let options = SqliteConnectOptions::from_str(url).map_err(|err| {
            AppError::Unavailable(format!(
                "{url} is not a SQLite URL such as sqlite://casefile.db: {err}"
            ))
        })?;
        let path = options.get_filename().to_owned();
        if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty())
            && !folder.is_dir()
        {
            return Err(AppError::Unavailable(format!(
                "the folder {} for the SQLite database {} does not exist: create it, or point --database-url elsewhere",
                folder.display(),
                path.display()
            )));
        }
        let cannot_open = |err: sqlx::Error| {
            AppError::Unavailable(format!(
                "cannot open the SQLite database {}: {}",
                path.display(),
                reason(&err)
            ))
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .acquire_timeout(timeout)
            .max_connections(1)
            .min_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(cannot_open)?;
        // Readers open after the writer has created the file and switched it to WAL.
        // Opened up front: a burst must not wait for connections to open.
        let reader = SqlitePoolOptions::new()
            .acquire_timeout(timeout)
            .max_connections(pool_size.max(1))
            .min_connections(pool_size.max(1))
            .connect_with(options.clone().read_only(true))
            .await
            .map_err(cannot_open)?;
        let analytics = SqlitePoolOptions::new()
            .acquire_timeout(timeout)
            .max_connections(ANALYTICS_CONNECTIONS)
            .connect_with(
                options
                    .read_only(true)
                    .pragma("mmap_size", ANALYTICS_MMAP_BYTES.to_string()),
            )
            .await?;
        let statements = Arc::<Statements>::default();
        Ok(Db {
            analytics: counted(
                SqlxSqliteConnector::from_sqlx_sqlite_pool(analytics),
                &statements,
            ),
            writer: counted(
                SqlxSqliteConnector::from_sqlx_sqlite_pool(writer),
                &statements,
            ),
            background: SqlxSqliteConnector::from_sqlx_sqlite_pool(reader.clone()),
            reader: counted(
                SqlxSqliteConnector::from_sqlx_sqlite_pool(reader),
                &statements,
            ),
            pg_pool: None,
            sealer: Default::default(),
            statements,
        })
    }

    async fn connect_postgres(url: &str, pool_size: u32, timeout: Duration) -> AppResult<Db> {
        let options = PgConnectOptions::from_str(url).map_err(|err| {
            AppError::Unavailable(format!(
                "the database URL is not a PostgreSQL URL such as postgres://USER@HOST:PORT/DATABASE: {err}"
            ))
        })?;
        // One connection first, to say plainly why none can be had (the pool only
        // says that it timed out).
        reach_postgres(&options, timeout).await?;
        // No JIT compilation: it pays off for queries running for seconds, not for
        // ours. The planner's cost of the insights digest's aggregates over 100,000
        // conversations passes `jit_above_cost`, and compiling them cost more than
        // running them (225 ms of the topics query's 644 ms). No parallel workers
        // either: the server runs many statements at once (the digest its own
        // seven), so a statement's workers only compete with the others for the
        // same cores (the digest at 100,000 conversations: 402 → 261 ms).
        let options = options.options([("jit", "off"), ("max_parallel_workers_per_gather", "0")]);
        let pool = PgPoolOptions::new()
            .acquire_timeout(timeout)
            .max_connections(pool_size.max(2) * 2)
            .connect_with(options.clone())
            .await?;
        // The requests' reads run the same few prepared statements over and over,
        // each finding rows by workspace and id along an index whatever the values:
        // planning them again for each execution (PostgreSQL's custom plans for
        // the first runs, and whenever it judges them cheaper) cost more than the
        // inbox page's reading itself (2.86 → 1.31 ms of the database's CPU per
        // page). Their own pool plans each once per connection. Writes and the
        // insights digest, whose ranges the plan should see, keep custom plans.
        let generic = PgPoolOptions::new()
            .acquire_timeout(timeout)
            .max_connections(pool_size.max(2) * 2)
            .connect_with(options.options([("plan_cache_mode", "force_generic_plan")]))
            .await?;
        let statements = Arc::<Statements>::default();
        let conn = counted(
            SqlxPostgresConnector::from_sqlx_postgres_pool(pool.clone()),
            &statements,
        );
        Ok(Db {
            writer: conn.clone(),
            analytics: conn,
            reader: counted(
                SqlxPostgresConnector::from_sqlx_postgres_pool(generic),
                &statements,
            ),
            background: SqlxPostgresConnector::from_sqlx_postgres_pool(pool.clone()),
            pg_pool: Some(pool),
            sealer: Default::default(),
            statements,
        })
    }

    /// Which database this is, for the start-up line: the SQLite file's absolute
    /// URL, or the PostgreSQL user, server and database (never the password).
    pub fn describe(url: &str) -> String {
        if let Ok(options) = PgConnectOptions::from_str(url)
            && !url.starts_with("sqlite:")
        {
            return format!(
                "postgres://{}@{}:{}/{}",
                options.get_username(),
                options.get_host(),
                options.get_port(),
                options.get_database().unwrap_or("postgres"),
            );
        }
        match SqliteConnectOptions::from_str(url) {
            Ok(options) => {
                let path = options.get_filename();
                let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
                format!("sqlite://{}", path.display())
            }
            Err(_) => url.to_owned(),
        }
    }

    pub fn backend(&self) -> DbBackend {
        self.writer.get_database_backend()
    }

    /// How many SQL statements this server has executed through sea-orm. Tests use
    /// it to prove that a query is batched (no N+1).
    pub fn statement_count(&self) -> u64 {
        self.statements.count.load(Ordering::Relaxed)
    }

    /// Keep the text of every statement counted from now on, until
    /// [`Db::recorded`] (tests use it to see what a request reads).
    pub fn record_statements(&self) {
        self.statements.recording.store(true, Ordering::Relaxed);
    }

    /// The statements kept since [`Db::record_statements`]; keeping stops.
    pub fn recorded(&self) -> Vec<String> {
        self.statements.recording.store(false, Ordering::Relaxed);
        std::mem::take(
            &mut self
                .statements
                .recorded
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    /// The value of a setting, storing `value` first when there is none (the first
    /// of several racing processes wins; all read the same value back).
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> AppResult<String> {
        let backend = self.backend();
        self.writer
            .execute_raw(stmt(
                backend,
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
                vec![key.into(), value.into()],
            ))
            .await?;
        let row = crate::entity::setting::Entity::find_by_id(key)
            .one(&self.writer)
            .await?
            .ok_or_else(|| AppError::internal("setting missing after insert"))?;
        Ok(row.value)
    }

    /// Replace the value of an existing setting.
    pub async fn set_setting(&self, key: &str, value: &str) -> AppResult<()> {
        use sea_orm::{ActiveModelTrait, Set};
        crate::entity::setting::ActiveModel {
            key: Set(key.to_owned()),
            value: Set(value.to_owned()),
        }
        .update(&self.writer)
        .await?;
        Ok(())
    }

    /// `Ok` when the database answers a trivial query.
    pub async fn ping(&self) -> AppResult<()> {
        self.reader.ping().await?;
        Ok(())
    }

    /// Whether the writer takes a write (a row of `settings` is rewritten: a ping
    /// would not notice a file that became read-only, or a PostgreSQL server that
    /// became a standby) and the readers answer, each within `HEALTH_TIMEOUT`.
    pub async fn health(&self) -> (AppResult<()>, AppResult<()>) {
        let backend = self.backend();
        let write = async {
            self.writer
                .execute_raw(stmt(
                    backend,
                    "INSERT INTO settings (key, value) VALUES ('healthz', ?) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    vec![crate::entity::now_ms().to_string().into()],
                ))
                .await?;
            Ok(())
        };
        tokio::join!(within(write), within(self.ping()))
    }
}

async fn within(check: impl std::future::Future<Output = AppResult<()>>) -> AppResult<()> {
    tokio::time::timeout(HEALTH_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| Err(AppError::Unavailable("no answer in time".into())))
}

fn counted(mut conn: DatabaseConnection, counter: &Arc<Statements>) -> DatabaseConnection {
    let counter = Arc::clone(counter);
    conn.set_metric_callback(move |info| {
        counter.count.fetch_add(1, Ordering::Relaxed);
        if counter.recording.load(Ordering::Relaxed) {
            counter
                .recorded
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(info.statement.sql.clone());
        }
        tracing::trace!(target: "casefile::sql", elapsed = ?info.elapsed, sql = %info.statement.sql);
    });
    conn
}

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

/// A JSON array of an object of `columns` for each row of `from` (`FROM …
/// WHERE …`, its rows named `t`): a column of a [`json_flat_statement`]'s inner
/// statement, named in its `nested`.
pub fn json_array_of(backend: DbBackend, columns: &[&'static str], from: &str) -> String {
    match backend {
        DbBackend::Postgres => format!(
            "(SELECT json_agg(t) FROM (SELECT {} {from}) t)",
            selected(columns)
        ),
        _ => format!(
            "(SELECT json_group_array({}) {from})",
            sqlite_object(columns, "t")
        ),
    }
}

/// An object of `columns` of the first row of `from` (its rows named `t`), or
/// `null`: a column of a [`json_flat_statement`]'s inner statement, named in its
/// `nested`.
pub fn json_object_of(backend: DbBackend, columns: &[&'static str], from: &str) -> String {
    match backend {
        DbBackend::Postgres => format!(
            "(SELECT row_to_json(t) FROM (SELECT {} {from} LIMIT 1) t)",
            selected(columns)
        ),
        _ => format!("(SELECT {} {from} LIMIT 1)", sqlite_object(columns, "t")),
    }
}

/// `columns` of the rows `t`, for a SELECT list.
fn selected(columns: &[&'static str]) -> String {
    let columns: Vec<String> = columns.iter().map(|c| format!("t.\"{c}\"")).collect();
    columns.join(", ")
}

/// A SQLite JSON object of `columns` of the row `alias`.
fn sqlite_object(columns: &[&str], alias: &str) -> String {
    let fields: Vec<String> = columns
        .iter()
        .map(|column| format!("'{column}', {alias}.\"{column}\""))
        .collect();
    format!("json_object({})", fields.join(", "))
}

/// A statement that reads every row of `inner` (a SELECT whose columns are
/// `columns`) in one row, as one JSON array of flat objects keyed by column, the
/// columns named in `nested` holding JSON themselves; [`json_rows`] runs it.
///
/// Why a hot path leaves the ORM's row decoding here: sqlx hands each row of a
/// SQLite result from its connection thread to the async side on its own (a
/// channel send and, often, a thread wake-up), copies every column value, and
/// sea-orm finds each column by a name it formats per value. For an inbox page of
/// 50 rows of 35 columns that was a third of the page's CPU; built by the database
/// as one JSON document, the page crosses threads once and decodes with serde.
/// PostgreSQL writes each row as a whole (`json_agg` of the row: about a third less
/// of its CPU for an inbox page than `json_build_object` key by key). The array's
/// order is not guaranteed: callers sort. Tested on both databases through every
/// inbox test.
pub fn json_flat_statement(inner: Statement, columns: &[String], nested: &[&str]) -> Statement {
    let backend = inner.db_backend;
    let sql = match backend {
        DbBackend::Postgres => format!(
            "SELECT COALESCE(json_agg(p), '[]'::json)::text AS page FROM ({}) AS p",
            inner.sql
        ),
        _ => {
            let fields: Vec<String> = columns
                .iter()
                .map(|column| {
                    if nested.contains(&column.as_str()) {
                        format!("'{column}', json(p.\"{column}\")")
                    } else {
                        format!("'{column}', p.\"{column}\"")
                    }
                })
                .collect();
            format!(
                "SELECT json_group_array(json_object({})) AS page FROM ({}) AS p",
                fields.join(", "),
                inner.sql
            )
        }
    };
    Statement {
        sql,
        values: inner.values,
        db_backend: backend,
    }
}

/// The rows a [`json_flat_statement`] read, decoded into `T`.
pub async fn json_rows<T: serde::de::DeserializeOwned>(
    conn: &impl ConnectionTrait,
    statement: Statement,
) -> AppResult<Vec<T>> {
    let Some(row) = conn.query_one_raw(statement).await? else {
        return Ok(Vec::new());
    };
    let text: String = row.try_get_by_index(0)?;
    Ok(serde_json::from_str(&text)?)
}

/// Every model `select` reads, through [`json_flat_statement`] (see there why).
pub async fn json_models<E>(
    conn: &impl ConnectionTrait,
    select: sea_orm::Select<E>,
) -> AppResult<Vec<E::Model>>
where
    E: EntityTrait,
    E::Model: serde::de::DeserializeOwned,
{
    use sea_orm::{IdenStatic, Iterable};
    let columns: Vec<String> = E::Column::iter()
        .map(|column| column.as_str().to_owned())
        .collect();
    let inner = sea_orm::QueryTrait::build(&select, conn.get_database_backend());
    json_rows(conn, json_flat_statement(inner, &columns, &[])).await
}

/// Whether a database error is a unique-constraint violation (a duplicate).
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
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

    #[test]
    fn the_default_read_pool_follows_the_cores_on_sqlite_only() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let sqlite = default_pool_size("sqlite://casefile.db");
        assert_eq!(sqlite as usize, (2 * cores).clamp(2, 16));
        assert!((2..=16).contains(&sqlite));
        assert_eq!(
            default_pool_size("postgres://postgres@127.0.0.1/casefile"),
            8
        );
    }
}
