//! The database writer: the rows many device polls produce, written in
//! multi-row statements, one transaction per flush.
//!
//! A flush that fails on the connection is retried, the changes held up to
//! a bound. A flush that fails on its data is retried one poll at a time so
//! that one device's odd row costs no other device its data; the poll that
//! still fails is dropped, counted and logged.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{Db, DbError, Dialect, MAX_BINDS, Statement, Val, chunk_sizes, upsert_clause};

/// Column names and their new values.
pub type Cols = Vec<(&'static str, Val)>;

/// One row's new values, by key (device_id or port_id).
#[derive(Debug, Clone, PartialEq)]
pub struct RowUpdate {
    pub key: u64,
    pub cols: Vec<(&'static str, Val)>,
}

/// An eventlog row; its time is the database clock at write.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub device_id: u32,
    pub message: String,
    pub kind: String,
    pub reference: Option<String>,
    pub severity: u8,
}

/// Outage bookkeeping, applied in order.
#[derive(Debug, Clone, PartialEq)]
pub enum OutageChange {
    /// Opens an outage at `going_down` unless one is open already.
    Open { device_id: u32, going_down: i64 },
    /// Closes every open outage of the device.
    Close { device_id: u32, up_again: i64 },
}

/// Everything one device poll writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    pub devices: Vec<RowUpdate>,
    pub ports: Vec<RowUpdate>,
    pub ports_statistics: Vec<RowUpdate>,
    /// Ports of one device whose poll times move together
    /// (`poll_time`, `poll_prev`, `poll_period`).
    pub ports_poll_times: Vec<(Vec<u64>, Cols)>,
    pub events: Vec<Event>,
    pub outages: Vec<OutageChange>,
    /// `device_stats` rows to insert or update, by device.
    pub device_stats: Vec<(u32, Vec<(&'static str, Val)>)>,
    /// `availability` (device, duration, percent) to insert or update; the
    /// device's other durations are deleted.
    pub availability: Vec<(u32, Vec<(i64, f64)>)>,
    pub graphs_add: Vec<(u32, String)>,
    pub graphs_remove: Vec<(u32, String)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self == &Changes::default()
    }

    /// Rows this poll writes (for the writer's bound).
    pub fn rows(&self) -> usize {
        self.devices.len()
            + self.ports.len()
            + self.ports_statistics.len()
            + self
                .ports_poll_times
                .iter()
                .map(|p| p.0.len())
                .sum::<usize>()
            + self.events.len()
            + self.outages.len()
            + self.device_stats.len()
            + self.availability.iter().map(|a| a.1.len()).sum::<usize>()
            + self.graphs_add.len()
            + self.graphs_remove.len()
    }

    pub fn extend(&mut self, other: Changes) {
        self.devices.extend(other.devices);
        self.ports.extend(other.ports);
        self.ports_statistics.extend(other.ports_statistics);
        self.ports_poll_times.extend(other.ports_poll_times);
        self.events.extend(other.events);
        self.outages.extend(other.outages);
        self.device_stats.extend(other.device_stats);
        self.availability.extend(other.availability);
        self.graphs_add.extend(other.graphs_add);
        self.graphs_remove.extend(other.graphs_remove);
    }
}

/// The statements that write `changes`, in a safe order.
pub fn statements(d: Dialect, changes: &Changes) -> Vec<Statement> {
    let mut out = Vec::new();
    update_rows(d, "devices", "device_id", &changes.devices, &mut out);
    update_rows(d, "ports", "port_id", &changes.ports, &mut out);
    update_rows(
        d,
        "ports_statistics",
        "port_id",
        &changes.ports_statistics,
        &mut out,
    );
    for (ids, cols) in &changes.ports_poll_times {
        for chunk in ids.chunks(1000) {
            let mut st = Statement::new("UPDATE `ports` SET ");
            for (i, (c, v)) in cols.iter().enumerate() {
                if i > 0 {
                    st.push(", ");
                }
                st.push(&format!("`{c}` = "));
                st.value(d, v.clone());
            }
            st.push(" WHERE `port_id` IN (");
            st.values(d, chunk.iter().map(|i| Val::UInt(*i)));
            st.push(")");
            out.push(st);
        }
    }
    insert_events(d, &changes.events, &mut out);
    for o in &changes.outages {
        out.push(outage_statement(d, o));
    }
    for (device_id, cols) in &changes.device_stats {
        out.push(upsert(d, "device_stats", &["device_id"], *device_id, cols));
    }
    for (device_id, rows) in &changes.availability {
        for (duration, perc) in rows {
            let cols = vec![
                ("duration", Val::Int(*duration)),
                ("availability_perc", Val::Float(*perc)),
            ];
            out.push(upsert(
                d,
                "availability",
                &["device_id", "duration"],
                *device_id,
                &cols,
            ));
        }
        let mut st = Statement::new("DELETE FROM `availability` WHERE `device_id` = ");
        st.value(d, Val::from(*device_id));
        if !rows.is_empty() {
            st.push(" AND `duration` NOT IN (");
            st.values(d, rows.iter().map(|(dur, _)| Val::Int(*dur)));
            st.push(")");
        }
        out.push(st);
    }
    if !changes.graphs_add.is_empty() {
        for chunk in changes.graphs_add.chunks(1000) {
            let mut st =
                Statement::new("INSERT INTO `device_graphs` (`device_id`, `graph`) VALUES ");
            for (i, (dev, g)) in chunk.iter().enumerate() {
                st.push(if i > 0 { ", (" } else { "(" });
                st.values(d, [Val::from(*dev), Val::text(g)]);
                st.push(")");
            }
            out.push(st);
        }
    }
    for (dev, g) in &changes.graphs_remove {
        let mut st = Statement::new("DELETE FROM `device_graphs` WHERE `device_id` = ");
        st.value(d, Val::from(*dev))
            .push(" AND `graph` = ")
            .value(d, Val::text(g));
        out.push(st);
    }
    out
}

/// Multi-row UPDATE through a derived table of new values, grouped by the
/// set of columns each row changes.
fn update_rows(d: Dialect, table: &str, key: &str, rows: &[RowUpdate], out: &mut Vec<Statement>) {
    let mut groups: BTreeMap<Vec<&'static str>, Vec<&RowUpdate>> = BTreeMap::new();
    for r in rows {
        if r.cols.is_empty() {
            continue;
        }
        groups
            .entry(r.cols.iter().map(|(c, _)| *c).collect())
            .or_default()
            .push(r);
    }
    let bind_limit = match d {
        Dialect::Mysql => MAX_BINDS,
        Dialect::Sqlite => 32_766,
    };
    for (cols, group) in groups {
        let max_rows = (bind_limit / (cols.len() + 1)).max(1);
        let mut rest: &[&RowUpdate] = &group;
        for size in chunk_sizes(group.len(), max_rows) {
            let (now, later) = rest.split_at(size);
            rest = later;
            out.push(update_group(d, table, key, &cols, now));
        }
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
        for (c, v) in &r.cols {
            derived.push(", ");
            derived.value(d, v.clone());
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

fn insert_events(d: Dialect, events: &[Event], out: &mut Vec<Statement>) {
    for chunk in events.chunks(1000) {
        let mut st = Statement::new(
            "INSERT INTO `eventlog` (`device_id`, `datetime`, `message`, `type`, `reference`, `username`, `severity`) VALUES ",
        );
        for (i, e) in chunk.iter().enumerate() {
            st.push(if i > 0 { ", (" } else { "(" });
            st.values(
                d,
                [
                    Val::from(e.device_id),
                    Val::Now,
                    Val::text(&e.message),
                    Val::text(&e.kind),
                    Val::opt_text(e.reference.clone()),
                    // LibreNMS logs '' when no user is logged in.
                    Val::text(""),
                    Val::Int(i64::from(e.severity)),
                ],
            );
            st.push(")");
        }
        out.push(st);
    }
}

fn outage_statement(d: Dialect, o: &OutageChange) -> Statement {
    match o {
        OutageChange::Open {
            device_id,
            going_down,
        } => {
            // One open outage per device, as LibreNMS keeps it.
            let mut st =
                Statement::new("INSERT INTO `device_outages` (`device_id`, `going_down`) SELECT ");
            st.values(d, [Val::from(*device_id), Val::Int(*going_down)]);
            st.push(match d {
                Dialect::Mysql => " FROM DUAL",
                Dialect::Sqlite => "",
            });
            st.push(" WHERE NOT EXISTS (SELECT 1 FROM `device_outages` WHERE `device_id` = ");
            st.value(d, Val::from(*device_id));
            st.push(" AND `up_again` IS NULL)");
            st
        }
        OutageChange::Close {
            device_id,
            up_again,
        } => {
            let mut st = Statement::new("UPDATE `device_outages` SET `up_again` = ");
            st.value(d, Val::Int(*up_again));
            st.push(" WHERE `device_id` = ");
            st.value(d, Val::from(*device_id));
            st.push(" AND `up_again` IS NULL");
            st
        }
    }
}

/// INSERT or UPDATE of a row keyed by `device_id` (and more key columns
/// among `cols`).
fn upsert(
    d: Dialect,
    table: &str,
    keys: &[&str],
    device_id: u32,
    cols: &[(&'static str, Val)],
) -> Statement {
    let mut names = vec!["device_id"];
    names.extend(cols.iter().map(|(c, _)| *c));
    let mut st = Statement::new(format!(
        "INSERT INTO `{table}` ({}) VALUES (",
        names
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    st.value(d, Val::from(device_id));
    for (_, v) in cols {
        st.push(", ");
        st.value(d, v.clone());
    }
    st.push(")");
    // `created_at` is set when the row is made and kept after.
    let updates: Vec<&str> = cols
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| !keys.contains(c) && *c != "created_at")
        .collect();
    st.push(&upsert_clause(d, keys, &updates));
    st
}

#[derive(Debug, Clone)]
pub struct DbWriterOptions {
    pub flush_interval: Duration,
    /// Rows held while the database is unreachable; past this the oldest
    /// polls' changes are dropped and counted.
    pub buffer_rows: usize,
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
}

enum Msg {
    Changes(Box<Changes>),
    Flush(oneshot::Sender<Result<(), String>>),
}

/// A handle on the writer task.
#[derive(Clone)]
pub struct DbWriter {
    tx: mpsc::UnboundedSender<Msg>,
    stats: Arc<DbWriterStats>,
}

impl DbWriter {
    pub fn start(db: Db, options: DbWriterOptions) -> (DbWriter, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(DbWriterStats::default());
        let task = tokio::spawn(run(db, options, stats.clone(), rx));
        (DbWriter { tx, stats }, task)
    }

    pub fn send(&self, changes: Changes) {
        if changes.is_empty() {
            return;
        }
        if self.tx.send(Msg::Changes(Box::new(changes))).is_err() {
            self.stats.dropped_polls.fetch_add(1, Ordering::Relaxed);
        }
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
}

async fn run(
    db: Db,
    options: DbWriterOptions,
    stats: Arc<DbWriterStats>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
) {
    let mut held: VecDeque<Changes> = VecDeque::new();
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
                            tracing::warn!("database writer buffer full: dropped one poll's changes");
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
            let mut batch: Vec<Changes> = Vec::new();
            let mut batch_rows = 0usize;
            while batch_rows < options.batch_rows
                && let Some(c) = held.pop_front()
            {
                batch_rows += c.rows();
                batch.push(c);
            }
            held_rows -= batch_rows;
            match write(&db, &stats, batch).await {
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
                        tracing::warn!("{e}; holding poll results until the database answers");
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
    batch: Vec<Changes>,
) -> Result<(), (DbError, Vec<Changes>)> {
    let mut merged = Changes::default();
    for c in &batch {
        merged.extend(c.clone());
    }
    let d = db.dialect();
    match db.transaction(&statements(d, &merged)).await {
        Ok(_) => {
            stats.flushes.fetch_add(1, Ordering::Relaxed);
            stats.polls.fetch_add(batch.len() as u64, Ordering::Relaxed);
            stats
                .rows
                .fetch_add(merged.rows() as u64, Ordering::Relaxed);
            Ok(())
        }
        Err(e) if e.is_unavailable() => Err((e, batch)),
        Err(e) => {
            tracing::debug!("batched write failed ({e}); writing poll by poll");
            let mut polls = batch.into_iter();
            while let Some(c) = polls.next() {
                match db.transaction(&statements(d, &c)).await {
                    Ok(_) => {
                        stats.polls.fetch_add(1, Ordering::Relaxed);
                        stats.rows.fetch_add(c.rows() as u64, Ordering::Relaxed);
                    }
                    Err(e) if e.is_unavailable() => {
                        let mut back = vec![c];
                        back.extend(polls);
                        return Err((e, back));
                    }
                    Err(e) => {
                        stats.refused_polls.fetch_add(1, Ordering::Relaxed);
                        let device = c
                            .devices
                            .first()
                            .map(|r| r.key.to_string())
                            .unwrap_or_else(|| "?".into());
                        tracing::warn!(device, "the database refused a poll's results: {e}");
                    }
                }
            }
            stats.flushes.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }
}
