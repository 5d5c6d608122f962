//! The database: LibreNMS's MariaDB in LibreNMS mode, SQLite for the
//! embedded store. Only this module talks SQL.
//!
//! Both dialects share one small value model ([`Val`], [`Row`]) so that the
//! queries above it are written once. Statements are assembled from the
//! project's own table and column names only; every value travels as a bind
//! parameter.

pub mod changes;
pub mod cluster;
pub mod devices;
pub mod dispatch;
pub mod emulate;
pub mod ids;
pub mod inventory;
pub mod packed;
pub mod schema;
pub mod state;
pub mod status;
pub mod value;
pub mod writer;

pub use value::{Row, Val};

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{AssertSqlSafe, Column, Row as _, TypeInfo, ValueRef};

use crate::config::DbSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Mysql,
    Sqlite,
}

impl Dialect {
    /// The database's clock, now.
    pub fn now(self) -> &'static str {
        match self {
            Dialect::Mysql => "NOW()",
            Dialect::Sqlite => "datetime('now')",
        }
    }

    /// A point-in-time column as Unix seconds.
    pub fn unix(self, column: &str) -> String {
        match self {
            Dialect::Mysql => format!("UNIX_TIMESTAMP({column})"),
            Dialect::Sqlite => format!("CAST(strftime('%s', {column}) AS INTEGER)"),
        }
    }

    /// The database clock as Unix seconds.
    pub fn unix_now(self) -> &'static str {
        match self {
            Dialect::Mysql => "UNIX_TIMESTAMP()",
            Dialect::Sqlite => "CAST(strftime('%s', 'now') AS INTEGER)",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to the database {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("database error: {0}")]
    Query(String),
    #[error("database unreachable: {0}")]
    Unavailable(String),
    #[error("a database transaction hung for {0:?} and was abandoned with its connection")]
    Hung(std::time::Duration),
}

impl DbError {
    fn query(e: sqlx::Error) -> DbError {
        let text = first_line(&e.to_string());
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_) => DbError::Unavailable(text),
            _ => DbError::Query(text),
        }
    }

    /// Whether the failure is the connection's (worth retrying), not the
    /// statement's.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            DbError::Unavailable(_) | DbError::Connect { .. } | DbError::Hung(_)
        )
    }

    /// Whether a transaction was abandoned at its deadline.
    pub fn is_hung(&self) -> bool {
        matches!(self, DbError::Hung(_))
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// A statement ready to run: SQL text and its bind values.
#[derive(Debug, Clone, Default)]
pub struct Statement {
    pub sql: String,
    pub args: Vec<Val>,
}

impl Statement {
    pub fn new(sql: impl Into<String>) -> Statement {
        Statement {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, sql: &str) -> &mut Statement {
        self.sql.push_str(sql);
        self
    }

    /// Appends a value: a `?` placeholder, or the clock for [`Val::Now`].
    pub fn value(&mut self, dialect: Dialect, v: Val) -> &mut Statement {
        if v == Val::Now {
            self.sql.push_str(dialect.now());
        } else {
            self.sql.push('?');
            self.args.push(v);
        }
        self
    }

    /// Appends `?, ?, ?` for a list of values.
    pub fn values(
        &mut self,
        dialect: Dialect,
        vals: impl IntoIterator<Item = Val>,
    ) -> &mut Statement {
        for (i, v) in vals.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.value(dialect, v);
        }
        self
    }
}

/// Round trips to the database, for the benchmark's per-device figure.
#[derive(Debug, Default)]
pub struct DbStats {
    pub statements: AtomicU64,
    pub rows_read: AtomicU64,
}

impl DbStats {
    /// Counts a query and the rows it read.
    fn count_read(&self, rows: Result<Vec<Row>, DbError>) -> Result<Vec<Row>, DbError> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        if let Ok(rows) = &rows {
            self.rows_read
                .fetch_add(rows.len() as u64, Ordering::Relaxed);
        }
        rows
    }
}

/// A bounded pool on one of the two databases.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    stats: Arc<DbStats>,
}

#[derive(Clone)]
enum Pool {
    Mysql(MySqlPool),
    Sqlite(SqlitePool),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Db({:?})", self.dialect())
    }
}

/// The most bind parameters one MySQL statement may carry.
pub const MAX_BINDS: usize = 65_535;

impl Db {
    /// Connects as the settings say: `db.url` when set, else LibreNMS's
    /// DB_* parts (host and port, or the unix socket).
    pub async fn connect(s: &DbSettings) -> Result<Db, DbError> {
        let url = s.url.trim();
        if let Some(path) = url.strip_prefix("sqlite:") {
            return Db::open_sqlite(path.trim_start_matches("//"), s.max_connections).await;
        }
        let mut opts = if url.is_empty() {
            let mut o = MySqlConnectOptions::new()
                .username(&s.username)
                .database(&s.database);
            // An empty DB_PASSWORD is no password, as PHP's PDO reads it:
            // sqlx would answer the server's challenge with a scramble of
            // "" and be refused.
            if !s.password.is_empty() {
                o = o.password(&s.password.expose_str());
            }
            o = if s.socket.is_empty() {
                o.host(&s.host).port(s.port)
            } else {
                o.socket(&s.socket)
            };
            o
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            MySqlConnectOptions::from_str(&url.replacen("mariadb://", "mysql://", 1)).map_err(
                |e| DbError::Connect {
                    target: crate::config::mask_db_url(url),
                    reason: first_line(&e.to_string()),
                },
            )?
        } else {
            return Err(DbError::Connect {
                target: crate::config::mask_db_url(url),
                reason: "expected a mysql:// or sqlite: URL".into(),
            });
        };
        // Keep the server's time zone (as LibreNMS's PHP does) unless told.
        opts = opts.timezone(if s.timezone.is_empty() {
            None
        } else {
            Some(s.timezone.clone())
        });
        let target = if s.socket.is_empty() || !url.is_empty() {
            if url.is_empty() {
                format!("{}@{}:{}/{}", s.username, s.host, s.port, s.database)
            } else {
                crate::config::mask_db_url(url)
            }
        } else {
            format!("{}@unix:{}/{}", s.username, s.socket, s.database)
        };
        let pool = MySqlPoolOptions::new()
            .max_connections(s.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await
            .map_err(|e| DbError::Connect {
                target,
                reason: first_line(&e.to_string()),
            })?;
        Ok(Db {
            pool: Pool::Mysql(pool),
            stats: Arc::default(),
        })
    }

    /// Opens (creating it when missing) a SQLite database file.
    pub async fn open_sqlite(path: &str, max_connections: u32) -> Result<Db, DbError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            // With a write-ahead log, NORMAL stays consistent after a crash
            // and spares a disk flush per commit.
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(opts)
            .await
            .map_err(|e| DbError::Connect {
                target: format!("sqlite:{path}"),
                reason: first_line(&e.to_string()),
            })?;
        Ok(Db {
            pool: Pool::Sqlite(pool),
            stats: Arc::default(),
        })
    }

    pub fn dialect(&self) -> Dialect {
        match self.pool {
            Pool::Mysql(_) => Dialect::Mysql,
            Pool::Sqlite(_) => Dialect::Sqlite,
        }
    }

    pub fn stats(&self) -> &DbStats {
        &self.stats
    }

    /// Creates the tables ironpoll uses when they do not exist.
    pub async fn create_schema(&self) -> Result<(), DbError> {
        for sql in schema::ddl(self.dialect()) {
            self.execute(&Statement::new(sql)).await?;
        }
        Ok(())
    }

    /// Runs a statement; returns the rows it changed.
    pub async fn execute(&self, st: &Statement) -> Result<u64, DbError> {
        self.stats.statements.fetch_add(1, Ordering::Relaxed);
        match &self.pool {
            Pool::Mysql(p) => mysql_query(st)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
                .map_err(DbError::query),
            Pool::Sqlite(p) => sqlite_query(st)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
                .map_err(DbError::query),
        }
    }

    /// Runs an INSERT and returns the id it created.
    pub async fn insert(&self, st: &Statement) -> Result<u64, DbError> {
        self.stats.statements.fetch_add(1, Ordering::Relaxed);
        match &self.pool {
            Pool::Mysql(p) => mysql_query(st)
                .execute(p)
                .await
                .map(|r| r.last_insert_id())
                .map_err(DbError::query),
            Pool::Sqlite(p) => sqlite_query(st)
                .execute(p)
                .await
                .map(|r| r.last_insert_rowid() as u64)
                .map_err(DbError::query),
        }
    }

    pub async fn fetch(&self, st: &Statement) -> Result<Vec<Row>, DbError> {
        let rows = match &self.pool {
            Pool::Mysql(p) => mysql_fetch(p, st).await,
            Pool::Sqlite(p) => sqlite_fetch(p, st).await,
        };
        self.stats.count_read(rows)
    }

    /// Runs a query bound on the client and sent as text, as PHP's PDO
    /// does: for SQL of many shapes, each run once (see `emulate`).
    pub async fn fetch_emulated(&self, st: &Statement) -> Result<Vec<Row>, DbError> {
        let text = emulate::bind(&st.sql, &st.args).map_err(DbError::Query)?;
        let rows = match &self.pool {
            Pool::Mysql(p) => sqlx::raw_sql(AssertSqlSafe(text))
                .fetch_all(p)
                .await
                .map(|rows| convert_rows(&rows, mysql_value))
                .map_err(DbError::query),
            Pool::Sqlite(p) => sqlx::raw_sql(AssertSqlSafe(text))
                .fetch_all(p)
                .await
                .map(|rows| convert_rows(&rows, sqlite_value))
                .map_err(DbError::query),
        };
        self.stats.count_read(rows)
    }

    /// Runs statements in one transaction: all of them or none.
    pub async fn transaction(&self, statements: &[Statement]) -> Result<u64, DbError> {
        self.transaction_within(statements, Duration::MAX).await
    }

    /// Runs statements in one transaction, abandoning it after `deadline`
    /// ([`DbError::Hung`]). The connection of an abandoned transaction is
    /// closed rather than handed back to the pool: a server that stopped
    /// answering on it may never finish the statement, and the next
    /// attempt must not wait behind it.
    pub async fn transaction_within(
        &self,
        statements: &[Statement],
        deadline: Duration,
    ) -> Result<u64, DbError> {
        use sqlx::Connection;
        if statements.is_empty() {
            return Ok(0);
        }
        // BEGIN and COMMIT are round trips too.
        self.stats
            .statements
            .fetch_add(statements.len() as u64 + 2, Ordering::Relaxed);
        // The same steps on either pool; a macro because their connection
        // and query types differ.
        macro_rules! run {
            ($pool:expr, $query:ident) => {{
                let mut conn = $pool.acquire().await.map_err(DbError::query)?;
                let work = async {
                    let mut changed = 0;
                    let mut tx = conn.begin().await.map_err(DbError::query)?;
                    for st in statements {
                        changed += $query(st)
                            .execute(&mut *tx)
                            .await
                            .map_err(DbError::query)?
                            .rows_affected();
                    }
                    tx.commit().await.map_err(DbError::query)?;
                    Ok(changed)
                };
                let outcome = match tokio::time::Instant::now().checked_add(deadline) {
                    Some(end) => tokio::time::timeout_at(end, work).await,
                    None => Ok(work.await),
                };
                outcome.unwrap_or_else(|_| {
                    conn.close_on_drop();
                    Err(DbError::Hung(deadline))
                })
            }};
        }
        match &self.pool {
            Pool::Mysql(p) => run!(p, mysql_query),
            Pool::Sqlite(p) => run!(p, sqlite_query),
        }
    }

    /// Opens a transaction for statements that depend on each other.
    pub async fn begin(&self) -> Result<Tx, DbError> {
        self.stats.statements.fetch_add(1, Ordering::Relaxed);
        let inner = match &self.pool {
            Pool::Mysql(p) => TxInner::Mysql(p.begin().await.map_err(DbError::query)?),
            Pool::Sqlite(p) => TxInner::Sqlite(p.begin().await.map_err(DbError::query)?),
        };
        Ok(Tx {
            inner,
            stats: self.stats.clone(),
        })
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Mysql(p) => p.close().await,
            Pool::Sqlite(p) => p.close().await,
        }
    }
}

/// A transaction; dropped without `commit` it rolls back.
pub struct Tx {
    inner: TxInner,
    stats: Arc<DbStats>,
}

enum TxInner {
    Mysql(sqlx::Transaction<'static, sqlx::MySql>),
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

impl Tx {
    pub async fn execute(&mut self, st: &Statement) -> Result<u64, DbError> {
        self.stats.statements.fetch_add(1, Ordering::Relaxed);
        match &mut self.inner {
            TxInner::Mysql(t) => mysql_query(st)
                .execute(&mut **t)
                .await
                .map(|r| r.rows_affected())
                .map_err(DbError::query),
            TxInner::Sqlite(t) => sqlite_query(st)
                .execute(&mut **t)
                .await
                .map(|r| r.rows_affected())
                .map_err(DbError::query),
        }
    }

    /// Runs a query inside the transaction (it sees the transaction's own
    /// writes).
    pub async fn fetch(&mut self, st: &Statement) -> Result<Vec<Row>, DbError> {
        let rows = match &mut self.inner {
            TxInner::Mysql(t) => mysql_fetch(&mut **t, st).await,
            TxInner::Sqlite(t) => sqlite_fetch(&mut **t, st).await,
        };
        self.stats.count_read(rows)
    }

    /// Runs an INSERT and returns the id it created.
    pub async fn insert(&mut self, st: &Statement) -> Result<u64, DbError> {
        self.stats.statements.fetch_add(1, Ordering::Relaxed);
        match &mut self.inner {
            TxInner::Mysql(t) => mysql_query(st)
                .execute(&mut **t)
                .await
                .map(|r| r.last_insert_id())
                .map_err(DbError::query),
            TxInner::Sqlite(t) => sqlite_query(st)
                .execute(&mut **t)
                .await
                .map(|r| r.last_insert_rowid() as u64)
                .map_err(DbError::query),
        }
    }

    pub async fn commit(self) -> Result<(), DbError> {
        self.stats.statements.fetch_add(1, Ordering::Relaxed);
        match self.inner {
            TxInner::Mysql(t) => t.commit().await.map_err(DbError::query),
            TxInner::Sqlite(t) => t.commit().await.map_err(DbError::query),
        }
    }
}

type MysqlQuery = sqlx::query::Query<'static, sqlx::MySql, sqlx::mysql::MySqlArguments>;
type SqliteQuery = sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

fn mysql_query(st: &Statement) -> MysqlQuery {
    // The SQL text is assembled from this crate's own identifiers; values
    // are bound, never spliced.
    let mut q = sqlx::query(AssertSqlSafe(st.sql.clone()));
    for v in &st.args {
        q = match v {
            Val::Null | Val::Now => q.bind(None::<i64>),
            Val::Int(i) => q.bind(*i),
            Val::UInt(u) => q.bind(*u),
            Val::Float(f) => q.bind(*f),
            Val::Text(s) => q.bind(s.clone()),
            Val::Bytes(b) => q.bind(b.clone()),
        };
    }
    q
}

fn sqlite_query(st: &Statement) -> SqliteQuery {
    let mut q = sqlx::query(AssertSqlSafe(st.sql.clone()));
    for v in &st.args {
        q = match v {
            Val::Null | Val::Now => q.bind(None::<i64>),
            Val::Int(i) => q.bind(*i),
            // SQLite integers are signed 64-bit; larger counters keep their
            // magnitude as a float.
            Val::UInt(u) => match i64::try_from(*u) {
                Ok(i) => q.bind(i),
                Err(_) => q.bind(*u as f64),
            },
            Val::Float(f) => q.bind(*f),
            Val::Text(s) => q.bind(s.clone()),
            Val::Bytes(b) => q.bind(b.clone()),
        };
    }
    q
}

async fn mysql_fetch<'e>(
    on: impl sqlx::Executor<'e, Database = sqlx::MySql>,
    st: &Statement,
) -> Result<Vec<Row>, DbError> {
    let rows = mysql_query(st)
        .fetch_all(on)
        .await
        .map_err(DbError::query)?;
    Ok(convert_rows(&rows, mysql_value))
}

async fn sqlite_fetch<'e>(
    on: impl sqlx::Executor<'e, Database = sqlx::Sqlite>,
    st: &Statement,
) -> Result<Vec<Row>, DbError> {
    let rows = sqlite_query(st)
        .fetch_all(on)
        .await
        .map_err(DbError::query)?;
    Ok(convert_rows(&rows, sqlite_value))
}

fn convert_rows<R: sqlx::Row>(rows: &[R], value: fn(&R, usize) -> Val) -> Vec<Row> {
    let Some(first) = rows.first() else {
        return Vec::new();
    };
    let columns: Arc<[String]> = first
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    rows.iter()
        .map(|r| Row {
            columns: columns.clone(),
            values: (0..columns.len()).map(|i| value(r, i)).collect(),
        })
        .collect()
}

fn mysql_value(row: &MySqlRow, i: usize) -> Val {
    let Ok(raw) = row.try_get_raw(i) else {
        return Val::Null;
    };
    if raw.is_null() {
        return Val::Null;
    }
    let ty = raw.type_info().name().to_ascii_uppercase();
    if ty.contains("INT") {
        if ty.contains("UNSIGNED") {
            return row.try_get::<u64, _>(i).map_or(Val::Null, Val::UInt);
        }
        return row.try_get::<i64, _>(i).map_or(Val::Null, Val::Int);
    }
    if ty.contains("DOUBLE") || ty.contains("FLOAT") {
        return row.try_get::<f64, _>(i).map_or(Val::Null, Val::Float);
    }
    if ty.contains("BINARY") || ty.contains("BLOB") {
        return row.try_get::<Vec<u8>, _>(i).map_or(Val::Null, Val::Bytes);
    }
    if matches!(ty.as_str(), "DATETIME" | "TIMESTAMP" | "DATE" | "TIME") {
        return row
            .try_get_unchecked::<Vec<u8>, _>(i)
            .map_or(Val::Null, |raw| {
                temporal_text(&ty, &raw).map_or(Val::Null, Val::Text)
            });
    }
    if let Ok(s) = row.try_get::<String, _>(i) {
        return Val::Text(s);
    }
    // DECIMAL and anything else text-like arrives as text on the wire.
    row.try_get_unchecked::<String, _>(i)
        .map_or(Val::Null, |s| match s.parse::<f64>() {
            Ok(f) if ty.contains("DECIMAL") || ty.contains("NEWDECIMAL") => Val::Float(f),
            _ => Val::Text(s),
        })
}

/// A date or time as MySQL's text protocol writes it (what PHP reads):
/// prepared statements send them in the binary protocol instead, a length
/// byte and the fields.
fn temporal_text(ty: &str, raw: &[u8]) -> Option<String> {
    let binary = raw.first().is_some_and(|&len| {
        matches!(len, 0 | 4 | 7 | 8 | 11 | 12) && raw.len() == 1 + len as usize
    });
    if !binary {
        return String::from_utf8(raw.to_vec()).ok();
    }
    let b = &raw[1..];
    if ty == "TIME" {
        if b.is_empty() {
            return Some("00:00:00".into());
        }
        let negative = b[0] == 1;
        let days = u32::from_le_bytes(b.get(1..5)?.try_into().ok()?);
        let hours = days * 24 + u32::from(*b.get(5)?);
        let sign = if negative { "-" } else { "" };
        return Some(format!(
            "{sign}{hours:02}:{:02}:{:02}",
            b.get(6)?,
            b.get(7)?
        ));
    }
    let (year, month, day) = if b.len() >= 4 {
        (u16::from_le_bytes([b[0], b[1]]), b[2], b[3])
    } else {
        (0, 0, 0)
    };
    let date = format!("{year:04}-{month:02}-{day:02}");
    if ty == "DATE" {
        return Some(date);
    }
    let (h, m, s) = if b.len() >= 7 {
        (b[4], b[5], b[6])
    } else {
        (0, 0, 0)
    };
    Some(format!("{date} {h:02}:{m:02}:{s:02}"))
}

fn sqlite_value(row: &SqliteRow, i: usize) -> Val {
    let Ok(raw) = row.try_get_raw(i) else {
        return Val::Null;
    };
    if raw.is_null() {
        return Val::Null;
    }
    match raw.type_info().name() {
        "INTEGER" | "BOOLEAN" => row.try_get::<i64, _>(i).map_or(Val::Null, Val::Int),
        "REAL" => row.try_get::<f64, _>(i).map_or(Val::Null, Val::Float),
        "BLOB" => row.try_get::<Vec<u8>, _>(i).map_or(Val::Null, Val::Bytes),
        _ => row.try_get::<String, _>(i).map_or(Val::Null, Val::Text),
    }
}

/// The end of an upsert in either dialect: when `keys` collide, the
/// `update` columns take the new row's values.
pub fn upsert_clause(d: Dialect, keys: &[&str], update: &[&str]) -> String {
    let list = |cols: &[&str], f: &dyn Fn(&str) -> String| {
        cols.iter().map(|c| f(c)).collect::<Vec<_>>().join(", ")
    };
    match d {
        Dialect::Mysql => format!(
            " ON DUPLICATE KEY UPDATE {}",
            list(update, &|c| format!("`{c}` = VALUES(`{c}`)"))
        ),
        Dialect::Sqlite => format!(
            " ON CONFLICT ({}) DO UPDATE SET {}",
            list(keys, &|c| format!("`{c}`")),
            list(update, &|c| format!("`{c}` = excluded.`{c}`"))
        ),
    }
}

/// Splits `n` rows into chunk sizes from a small fixed set, so that the
/// multi-row statements built from them repeat and stay prepared on the
/// server, and no statement exceeds `max_rows`.
pub fn chunk_sizes(n: usize, max_rows: usize) -> Vec<usize> {
    const SIZES: [usize; 6] = [1024, 256, 64, 16, 4, 1];
    let mut left = n;
    let mut out = Vec::new();
    for size in SIZES.into_iter().filter(|s| *s <= max_rows.max(1)) {
        while left >= size {
            out.push(size);
            left -= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_come_from_a_fixed_set() {
        assert_eq!(chunk_sizes(0, 100), Vec::<usize>::new());
        assert_eq!(chunk_sizes(5, 100), vec![4, 1]);
        assert_eq!(chunk_sizes(300, 1000), vec![256, 16, 16, 4, 4, 4]);
        assert_eq!(chunk_sizes(300, 100).iter().sum::<usize>(), 300);
        assert!(chunk_sizes(300, 100).iter().all(|s| *s <= 100));
    }

    #[tokio::test]
    async fn sqlite_round_trips_values() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(dir.path().join("t.db").to_str().unwrap(), 1)
            .await
            .unwrap();
        db.create_schema().await.unwrap();
        let mut st = Statement::new(
            "INSERT INTO `devices` (`hostname`, `community`, `status_reason`, `uptime`) VALUES (",
        );
        st.values(
            db.dialect(),
            [
                Val::text("sw1"),
                Val::text("public"),
                Val::text(""),
                Val::UInt(42),
            ],
        );
        st.push(")");
        let id = db.insert(&st).await.unwrap();
        assert_eq!(id, 1);
        let rows = db
            .fetch(&Statement::new(format!(
                "SELECT `hostname`, `uptime`, `sysName`, {} AS `inserted` FROM `devices`",
                db.dialect().unix("`inserted`")
            )))
            .await
            .unwrap();
        assert_eq!(rows[0].string("hostname").as_deref(), Some("sw1"));
        assert_eq!(rows[0].i64("uptime"), Some(42));
        assert!(rows[0].get("sysName").is_null());
        assert!(rows[0].i64("inserted").unwrap() > 1_700_000_000);
    }
}
