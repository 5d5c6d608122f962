//! The database writer: the rows many device polls produce, written in
//! multi-row statements, one transaction per flush.
//!
//! A flush that fails on the connection is retried, the changes held up to
//! a bound. A flush that fails on its data is retried one poll at a time so
//! that one device's odd row costs no other device its data; the poll that
//! still fails is dropped, counted and logged. A transaction that hangs
//! past its deadline is abandoned with its connection and retried on a
//! fresh one.
//!
//! What the writer holds, queue included, is bounded by its [`Backlog`]:
//! [`DbWriter::send`] waits while the database is behind.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::backlog::{Backlog, Bound};

use super::changes::{Changes, Filter, RowUpdate, TableChange};
use super::packed::PackedRow;
use super::{Db, DbError, Dialect, MAX_BINDS, Statement, Val, chunk_sizes, upsert_clause};

/// The statements that write `changes`. Alike changes (the same table,
/// kind and columns) become multi-row statements; groups are written in
/// the order they first appear, so each poll's changes keep their order
/// (modules record in a fixed order). When one batch updates a row twice
/// with the same columns, the later values win.
pub fn statements<'a>(
    d: Dialect,
    changes: impl IntoIterator<Item = &'a TableChange>,
) -> Vec<Statement> {
    let mut groups: Vec<Group<'a>> = Vec::new();
    let mut index: HashMap<GroupKey<'a>, usize> = HashMap::new();
    for change in changes {
        let (key, group) = match change {
            TableChange::Update { table, key, row } => (
                GroupKey::Update(table, key, row.cols.shape()),
                Group::Update {
                    table,
                    key,
                    rows: Vec::new(),
                    seen: HashMap::new(),
                },
            ),
            TableChange::Insert { table, row } => (
                GroupKey::Insert(table, row.shape()),
                Group::Rows {
                    table,
                    keys: None,
                    rows: Vec::new(),
                },
            ),
            TableChange::Upsert { table, keys, row } => (
                GroupKey::Upsert(table, keys, row.shape()),
                Group::Rows {
                    table,
                    keys: Some(keys),
                    rows: Vec::new(),
                },
            ),
            other => {
                groups.push(Group::Single(other));
                continue;
            }
        };
        let at = *index.entry(key).or_insert_with(|| {
            groups.push(group);
            groups.len() - 1
        });
        match (&mut groups[at], change) {
            (Group::Update { rows, seen, .. }, TableChange::Update { row, .. }) => {
                match seen.get(&row.key) {
                    Some(&i) => rows[i] = row,
                    None => {
                        seen.insert(row.key, rows.len());
                        rows.push(row);
                    }
                }
            }
            (
                Group::Rows { rows, .. },
                TableChange::Insert { row, .. } | TableChange::Upsert { row, .. },
            ) => rows.push(row),
            _ => unreachable!("a group holds one kind of change"),
        }
    }
    let mut out = Vec::new();
    for group in groups {
        match group {
            Group::Single(change) => single(d, change, &mut out),
            Group::Update {
                table, key, rows, ..
            } => update_rows(d, table, key, &rows, &mut out),
            Group::Rows { table, keys, rows } => insert_rows(d, table, &rows, keys, &mut out),
        }
    }
    out
}

/// What makes changes alike: their kind, table and columns (a packed
/// row's shape).
#[derive(Debug, PartialEq, Eq, Hash)]
enum GroupKey<'a> {
    Update(&'static str, &'static str, &'a [u8]),
    Insert(&'static str, &'a [u8]),
    Upsert(&'static str, &'static [&'static str], &'a [u8]),
}

enum Group<'a> {
    /// Rows by key, and where each key sits (a later update of the same
    /// row replaces the earlier one).
    Update {
        table: &'static str,
        key: &'static str,
        rows: Vec<&'a RowUpdate>,
        seen: HashMap<u64, usize>,
    },
    /// Inserted rows; upserted ones when `keys` are given.
    Rows {
        table: &'static str,
        keys: Option<&'static [&'static str]>,
        rows: Vec<&'a PackedRow>,
    },
    Single(&'a TableChange),
}

fn names(cols: &[(&'static str, Val)]) -> Vec<&'static str> {
    cols.iter().map(|(c, _)| *c).collect()
}

fn bind_limit(d: Dialect) -> usize {
    match d {
        Dialect::Mysql => MAX_BINDS,
        Dialect::Sqlite => 32_766,
    }
}

/// Multi-row UPDATE through a derived table of new values.
fn update_rows(d: Dialect, table: &str, key: &str, rows: &[&RowUpdate], out: &mut Vec<Statement>) {
    let Some(first) = rows.first() else {
        return;
    };
    let cols = first.cols.names();
    let max_rows = (bind_limit(d) / (cols.len() + 1)).max(1);
    let mut rest = rows;
    for size in chunk_sizes(rows.len(), max_rows) {
        let (now, later) = rest.split_at(size);
        rest = later;
        out.push(update_group(d, table, key, &cols, now));
    }
}

fn update_group(
    d: Dialect,
    table: &str,
    key: &str,
    cols: &[&'static str],
    rows: &[&RowUpdate],
) -> Statement {
    let mut derived = Statement::new("");
    for (i, r) in rows.iter().enumerate() {
        derived.push(if i == 0 {
            "SELECT "
        } else {
            " UNION ALL SELECT "
        });
        derived.value(d, Val::UInt(r.key));
        if i == 0 {
            derived.push(" AS `k`");
        }
        for (c, v) in cols.iter().zip(r.cols.values()) {
            derived.push(", ");
            derived.value(d, v);
            if i == 0 {
                derived.push(&format!(" AS `{c}`"));
            }
        }
    }
    let sets = cols
        .iter()
        .map(|c| match d {
            Dialect::Mysql => format!("t.`{c}` = v.`{c}`"),
            Dialect::Sqlite => format!("`{c}` = v.`{c}`"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = match d {
        Dialect::Mysql => format!(
            "UPDATE `{table}` t JOIN ({}) v ON t.`{key}` = v.`k` SET {sets}",
            derived.sql
        ),
        Dialect::Sqlite => format!(
            "UPDATE `{table}` SET {sets} FROM ({}) AS v WHERE `{table}`.`{key}` = v.`k`",
            derived.sql
        ),
    };
    Statement {
        sql,
        args: derived.args,
    }
}

/// Multi-row INSERT, or upsert when `keys` are given.
fn insert_rows(
    d: Dialect,
    table: &str,
    rows: &[&PackedRow],
    keys: Option<&[&str]>,
    out: &mut Vec<Statement>,
) {
    let Some(first) = rows.first() else {
        return;
    };
    let cols = first.names();
    let head = format!("INSERT INTO `{table}` ({}) VALUES ", quoted(&cols));
    let tail = keys.map(|keys| {
        // `created_at` is set when the row is made and kept after.
        let mut updates: Vec<&str> = cols
            .iter()
            .copied()
            .filter(|c| !keys.contains(c) && *c != "created_at")
            .collect();
        if updates.is_empty() {
            updates = keys[..1].to_vec();
        }
        upsert_clause(d, keys, &updates)
    });
    let max_rows = (bind_limit(d) / cols.len().max(1)).clamp(1, 1000);
    for chunk in rows.chunks(max_rows) {
        let mut st = Statement::new(head.clone());
        for (i, row) in chunk.iter().enumerate() {
            st.push(if i > 0 { ", (" } else { "(" });
            st.values(d, row.values());
            st.push(")");
        }
        if let Some(tail) = &tail {
            st.push(tail);
        }
        out.push(st);
    }
}

fn quoted(cols: &[&str]) -> String {
    cols.iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `col = ? AND col IS NULL AND col IN (...)`.
fn push_filters(d: Dialect, st: &mut Statement, filters: &[Filter]) {
    if filters.is_empty() {
        st.push("1 = 1");
    }
    for (i, f) in filters.iter().enumerate() {
        if i > 0 {
            st.push(" AND ");
        }
        match f {
            Filter::Eq(c, v) => {
                st.push(&format!("`{c}` = "));
                st.value(d, v.clone());
            }
            Filter::IsNull(c) => {
                st.push(&format!("`{c}` IS NULL"));
            }
            Filter::In(_, vals) if vals.is_empty() => {
                st.push("1 = 0");
            }
            Filter::NotIn(_, vals) if vals.is_empty() => {
                st.push("1 = 1");
            }
            Filter::In(c, vals) | Filter::NotIn(c, vals) => {
                let not = if matches!(f, Filter::NotIn(..)) {
                    "NOT "
                } else {
                    ""
                };
                st.push(&format!("`{c}` {not}IN ("));
                st.values(d, vals.iter().cloned());
                st.push(")");
            }
        }
    }
}

/// The statement of a change that is written on its own.
fn single(d: Dialect, change: &TableChange, out: &mut Vec<Statement>) {
    match change {
        TableChange::UpdateWhere {
            table,
            set,
            filters,
        } => {
            // A long id list is written 1,000 ids a statement.
            let split = filters
                .iter()
                .position(|f| matches!(f, Filter::In(_, v) if v.len() > 1000));
            let parts: Vec<Vec<Filter>> = match split {
                Some(at) => {
                    let Filter::In(col, ids) = &filters[at] else {
                        unreachable!("found an In filter")
                    };
                    ids.chunks(1000)
                        .map(|chunk| {
                            let mut f = filters.clone();
                            f[at] = Filter::In(col, chunk.to_vec());
                            f
                        })
                        .collect()
                }
                None => vec![filters.clone()],
            };
            for filters in parts {
                let mut st = Statement::new(format!("UPDATE `{table}` SET "));
                for (i, (c, v)) in set.iter().enumerate() {
                    if i > 0 {
                        st.push(", ");
                    }
                    st.push(&format!("`{c}` = "));
                    st.value(d, v.clone());
                }
                st.push(" WHERE ");
                push_filters(d, &mut st, &filters);
                out.push(st);
            }
        }
        TableChange::Delete { table, filters } => {
            let mut st = Statement::new(format!("DELETE FROM `{table}` WHERE "));
            push_filters(d, &mut st, filters);
            out.push(st);
        }
        TableChange::InsertUnless { table, row, exists } => {
            let mut st = Statement::new(format!(
                "INSERT INTO `{table}` ({}) SELECT ",
                quoted(&names(row))
            ));
            st.values(d, row.iter().map(|(_, v)| v.clone()));
            st.push(match d {
                Dialect::Mysql => " FROM DUAL",
                Dialect::Sqlite => "",
            });
            st.push(&format!(
                " WHERE NOT EXISTS (SELECT 1 FROM `{table}` WHERE "
            ));
            push_filters(d, &mut st, exists);
            st.push(")");
            out.push(st);
        }
        TableChange::Update { .. } | TableChange::Insert { .. } | TableChange::Upsert { .. } => {
            unreachable!("grouped changes are not written alone")
        }
    }
}

#[derive(Debug, Clone)]
pub struct DbWriterOptions {
    pub flush_interval: Duration,
    /// Rows held while the database is unreachable; past this the oldest
    /// polls' changes are dropped and counted. Above `held`, it never
    /// comes into play: polls wait for room instead.
    pub buffer_rows: usize,
    /// The most the writer holds, queue included, before
    /// [`DbWriter::send`] waits.
    pub held: Bound,
    /// How long one transaction may take before it is abandoned with its
    /// connection and retried on a fresh one.
    pub commit_deadline: Duration,
    /// Rows written in one transaction at most. Reaching it starts a write
    /// before the flush interval ends, so the statements built for one
    /// write (which hold a second copy of the rows) stay small.
    pub batch_rows: usize,
}

impl Default for DbWriterOptions {
    fn default() -> Self {
        DbWriterOptions {
            flush_interval: Duration::from_millis(500),
            buffer_rows: 2_000_000,
            // Large enough for multi-row statements of hundreds of rows;
            // small enough that building them (a second copy of the rows,
            // as SQL and binds) stays a few megabytes.
            batch_rows: 5_000,
            held: Bound {
                units: 50_000,
                bytes: 24 << 20,
            },
            commit_deadline: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Default)]
pub struct DbWriterStats {
    pub polls: AtomicU64,
    pub rows: AtomicU64,
    pub flushes: AtomicU64,
    /// Polls whose changes were refused by the database (one-by-one retry).
    pub refused_polls: AtomicU64,
    /// Polls dropped because the buffer was full while the DB was down.
    pub dropped_polls: AtomicU64,
    /// Transactions abandoned at their deadline and retried.
    pub hung_commits: AtomicU64,
}

/// How one poll's changes ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// In the database.
    Committed,
    /// The database refused them (a bad row); the reason.
    Refused(String),
    /// Never written: the buffer overflowed while the database was down,
    /// or the writer stopped.
    Dropped,
}

/// Resolves when one poll's changes are committed (or will never be).
pub struct Commit(Option<oneshot::Receiver<Written>>);

impl Commit {
    /// Waits for the outcome.
    pub async fn wait(self) -> Written {
        match self.0 {
            None => Written::Committed,
            Some(rx) => rx.await.unwrap_or(Written::Dropped),
        }
    }
}

/// Changes waiting to be written, and whom to tell.
struct Held {
    changes: Changes,
    done: Option<oneshot::Sender<Written>>,
    /// What it was admitted as (rows and bytes), given back when it
    /// finishes.
    rows: usize,
    bytes: u64,
    backlog: Arc<Backlog>,
}

impl Held {
    fn rows(&self) -> usize {
        self.rows
    }

    fn finish(self, outcome: Written) {
        self.backlog.release(self.rows as u64, self.bytes);
        if let Some(done) = self.done {
            let _ = done.send(outcome);
        }
    }
}

enum Msg {
    Changes(Box<Held>),
    Flush(oneshot::Sender<Result<(), String>>),
}

/// A handle on the writer task.
#[derive(Clone)]
pub struct DbWriter {
    tx: mpsc::UnboundedSender<Msg>,
    stats: Arc<DbWriterStats>,
    backlog: Arc<Backlog>,
}

impl DbWriter {
    pub fn start(db: Db, options: DbWriterOptions) -> (DbWriter, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(DbWriterStats::default());
        let backlog = Arc::new(Backlog::new("the database", options.held));
        let task = tokio::spawn(run(db, options, stats.clone(), rx));
        (DbWriter { tx, stats, backlog }, task)
    }

    /// Queues one poll's changes, first waiting while the database is
    /// behind; the returned [`Commit`] says when they are in the database.
    pub async fn send(&self, changes: Changes) -> Commit {
        if changes.is_empty() {
            return Commit(None);
        }
        let (done, rx) = oneshot::channel();
        let (rows, bytes) = (changes.rows(), changes.bytes() as u64);
        self.backlog.admit(rows as u64, bytes).await;
        let held = Held {
            changes,
            done: Some(done),
            rows,
            bytes,
            backlog: self.backlog.clone(),
        };
        if let Err(mpsc::error::SendError(Msg::Changes(held))) =
            self.tx.send(Msg::Changes(Box::new(held)))
        {
            self.stats.dropped_polls.fetch_add(1, Ordering::Relaxed);
            held.finish(Written::Dropped);
        }
        Commit(Some(rx))
    }

    /// Writes everything sent so far.
    pub async fn flush(&self) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Flush(ack))
            .map_err(|_| "the database writer has stopped".to_string())?;
        done.await
            .map_err(|_| "the database writer has stopped".to_string())?
    }

    pub fn stats(&self) -> &DbWriterStats {
        &self.stats
    }

    /// What the writer holds, and whether the database is behind.
    pub fn backlog(&self) -> &Arc<Backlog> {
        &self.backlog
    }
}

async fn run(
    db: Db,
    options: DbWriterOptions,
    stats: Arc<DbWriterStats>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
) {
    let mut held: VecDeque<Held> = VecDeque::new();
    let mut held_rows = 0usize;
    let mut due: Option<Instant> = None;
    let mut retry_at: Option<Instant> = None;
    let mut backoff = Duration::from_millis(250);
    let mut waiters: Vec<oneshot::Sender<Result<(), String>>> = Vec::new();
    let mut down_since: Option<Instant> = None;
    let mut closing = false;
    loop {
        let wake = if held.is_empty() {
            None
        } else {
            let now = Instant::now();
            Some(due.unwrap_or(now).max(retry_at.unwrap_or(now)))
        };
        if !closing {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Msg::Changes(c)) => {
                        held_rows += c.rows();
                        held.push_back(*c);
                        while held_rows > options.buffer_rows && held.len() > 1 {
                            let old = held.pop_front().expect("len > 1");
                            held_rows -= old.rows();
                            stats.dropped_polls.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(device = ?old.changes.device, "database writer buffer full: dropped one poll's changes");
                            old.finish(Written::Dropped);
                        }
                        due.get_or_insert_with(|| Instant::now() + options.flush_interval);
                    }
                    Some(Msg::Flush(ack)) => waiters.push(ack),
                    None => closing = true,
                },
                _ = async {
                    match wake {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
        }
        let now = Instant::now();
        let ready = retry_at.is_none_or(|r| now >= r);
        if !held.is_empty()
            && ready
            && (closing
                || !waiters.is_empty()
                || held_rows >= options.batch_rows
                || due.is_some_and(|d| now >= d))
        {
            let mut batch: Vec<Held> = Vec::new();
            let mut batch_rows = 0usize;
            while batch_rows < options.batch_rows
                && let Some(c) = held.pop_front()
            {
                batch_rows += c.rows();
                batch.push(c);
            }
            held_rows -= batch_rows;
            let began = Instant::now();
            let written = write(&db, &stats, batch, options.commit_deadline).await;
            metrics::histogram!("ironpoll_db_commit_seconds").record(began.elapsed().as_secs_f64());
            match written {
                Ok(()) => {
                    if let Some(since) = down_since.take() {
                        tracing::warn!(down_for = ?since.elapsed(), "the database answers again; held changes written");
                    }
                    retry_at = None;
                    backoff = Duration::from_millis(250);
                    // What is left over is written right away.
                    due = if held.is_empty() { None } else { Some(now) };
                }
                Err((e, back)) => {
                    if down_since.is_none() {
                        down_since = Some(now);
                        tracing::warn!(error = %e, "holding poll results until the database answers");
                    }
                    for c in back.into_iter().rev() {
                        held_rows += c.rows();
                        held.push_front(c);
                    }
                    retry_at = Some(now + backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
        if !waiters.is_empty() && (held.is_empty() || retry_at.is_some()) {
            let result = if held.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} polls' changes held: the database is unreachable",
                    held.len()
                ))
            };
            for w in waiters.drain(..) {
                let _ = w.send(result.clone());
            }
        }
        if closing && (held.is_empty() || retry_at.is_some()) {
            if !held.is_empty() {
                tracing::error!(
                    polls = held.len(),
                    "database unreachable at shutdown: poll results lost"
                );
                for h in held.drain(..) {
                    h.finish(Written::Dropped);
                }
            }
            return;
        }
    }
}

/// Writes a batch of polls; on a connection failure returns the batch to
/// hold.
async fn write(
    db: &Db,
    stats: &DbWriterStats,
    batch: Vec<Held>,
    deadline: Duration,
) -> Result<(), (DbError, Vec<Held>)> {
    let d = db.dialect();
    let all = statements(d, batch.iter().flat_map(|h| &h.changes.ops));
    let hung = |e: &DbError| {
        if e.is_hung() {
            stats.hung_commits.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "retrying the same rows on a fresh connection");
        }
    };
    match db
        .transaction_within(&all, deadline)
        .await
        .inspect_err(hung)
    {
        Ok(_) => {
            drop(all);
            stats.flushes.fetch_add(1, Ordering::Relaxed);
            stats.polls.fetch_add(batch.len() as u64, Ordering::Relaxed);
            let rows: usize = batch.iter().map(Held::rows).sum();
            stats.rows.fetch_add(rows as u64, Ordering::Relaxed);
            for h in batch {
                h.finish(Written::Committed);
            }
            Ok(())
        }
        Err(e) if e.is_unavailable() => Err((e, batch)),
        Err(e) => {
            drop(all);
            tracing::debug!(error = %e, "batched write failed; writing poll by poll");
            let mut polls = batch.into_iter();
            while let Some(h) = polls.next() {
                match db
                    .transaction_within(&statements(d, &h.changes.ops), deadline)
                    .await
                    .inspect_err(hung)
                {
                    Ok(_) => {
                        stats.polls.fetch_add(1, Ordering::Relaxed);
                        stats.rows.fetch_add(h.rows() as u64, Ordering::Relaxed);
                        h.finish(Written::Committed);
                    }
                    Err(e) if e.is_unavailable() => {
                        let mut back = vec![h];
                        back.extend(polls);
                        return Err((e, back));
                    }
                    Err(e) => {
                        stats.refused_polls.fetch_add(1, Ordering::Relaxed);
                        let device = h
                            .changes
                            .device
                            .map_or_else(|| "?".to_string(), |d| d.to_string());
                        tracing::warn!(device, error = %e, "the database refused a poll's results");
                        h.finish(Written::Refused(e.to_string()));
                    }
                }
            }
            stats.flushes.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }
}
