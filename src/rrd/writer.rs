//! The RRD writer: one task that batches updates from every device poll
//! and hands them to rrdcached (pipelined BATCH blocks) or to local files.
//!
//! While rrdcached is unreachable the writer holds updates, up to
//! `buffer_limit`; none is lost within that bound. Past it the oldest are
//! dropped, counted and logged. A missing file is created when rrdcached
//! says so; the writer never asks rrdcached for a file's last update.
//!
//! What the writer holds, queue included, is bounded by its [`Backlog`]:
//! [`RrdWriter::send`] waits while rrdcached is behind (slow, stopped or
//! unreachable). With `buffer_limit` below that bound, an unreachable
//! rrdcached costs the oldest updates instead and polls go on.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::backlog::{Backlog, Bound};

use super::local::LocalFiles;
use super::rrdcached::{self, Address, Connection, Failure};
use super::{CreateSpec, RrdFile, RrdUpdate};

/// Where updates go.
#[derive(Debug, Clone)]
pub enum RrdSink {
    Cached(Address),
    Local(LocalFiles),
    /// `rrd.enable` is off: updates are counted and discarded.
    Disabled,
}

#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Updates held while rrdcached is unreachable; past this the oldest
    /// are dropped and counted.
    pub buffer_limit: usize,
    /// The most the writer holds, queue included, before
    /// [`RrdWriter::send`] waits.
    pub held: Bound,
    /// How long an update may wait for company before it is sent.
    pub flush_interval: Duration,
    /// Updates per BATCH block.
    pub batch_max: usize,
    /// Deadline of each rrdcached read and write.
    pub io_timeout: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            buffer_limit: 1_000_000,
            held: Bound {
                units: 100_000,
                bytes: 24 << 20,
            },
            flush_interval: Duration::from_millis(500),
            batch_max: 10_000,
            io_timeout: Duration::from_secs(10),
        }
    }
}

/// Counters of the writer's work since it started.
#[derive(Debug, Default)]
pub struct RrdStats {
    pub received: AtomicU64,
    pub written: AtomicU64,
    pub created: AtomicU64,
    /// Refused by rrdcached or librrd (too old, bad values); not retried.
    pub rejected: AtomicU64,
    /// Dropped because the buffer was full while rrdcached was unreachable.
    pub dropped: AtomicU64,
    /// Held right now, waiting to be written.
    pub buffered: AtomicU64,
    pub batches: AtomicU64,
    pub connects: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RrdCounts {
    pub received: u64,
    pub written: u64,
    pub created: u64,
    pub rejected: u64,
    pub dropped: u64,
    pub buffered: u64,
    pub batches: u64,
    pub connects: u64,
}

impl RrdStats {
    pub fn snapshot(&self) -> RrdCounts {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RrdCounts {
            received: l(&self.received),
            written: l(&self.written),
            created: l(&self.created),
            rejected: l(&self.rejected),
            dropped: l(&self.dropped),
            buffered: l(&self.buffered),
            batches: l(&self.batches),
            connects: l(&self.connects),
        }
    }
}

enum Msg {
    Updates(Vec<RrdUpdate>),
    Flush(oneshot::Sender<Result<(), String>>),
}

/// A handle on the writer task.
#[derive(Clone)]
pub struct RrdWriter {
    tx: mpsc::UnboundedSender<Msg>,
    stats: Arc<RrdStats>,
    backlog: Arc<Backlog>,
}

impl std::fmt::Debug for RrdWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RrdWriter({:?})", self.stats.snapshot())
    }
}

impl RrdWriter {
    /// Starts the writer task; it ends when every handle is dropped, after
    /// a last attempt to write what it holds.
    pub fn start(
        sink: RrdSink,
        spec: CreateSpec,
        options: WriterOptions,
    ) -> (RrdWriter, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(RrdStats::default());
        let backlog = Arc::new(Backlog::new("rrdcached", options.held));
        let task = Task {
            sink,
            spec,
            options,
            stats: stats.clone(),
            backlog: backlog.clone(),
            buf: VecDeque::new(),
            conn: None,
            retry_at: None,
            backoff: Duration::from_millis(250),
            outage_since: None,
            last_drop_log: None,
        };
        let handle = tokio::spawn(task.run(rx));
        (RrdWriter { tx, stats, backlog }, handle)
    }

    /// Queues updates, first waiting while rrdcached is behind.
    pub async fn send(&self, updates: Vec<RrdUpdate>) {
        if updates.is_empty() {
            return;
        }
        let count = updates.len() as u64;
        let bytes = held_bytes(&updates);
        self.backlog.admit(count, bytes).await;
        self.stats.received.fetch_add(count, Ordering::Relaxed);
        // A closed channel means shutdown; the updates count as dropped.
        if let Err(e) = self.tx.send(Msg::Updates(updates))
            && let Msg::Updates(u) = e.0
        {
            self.stats
                .dropped
                .fetch_add(u.len() as u64, Ordering::Relaxed);
            self.backlog.release(count, bytes);
        }
    }

    /// What the writer holds, and whether rrdcached is behind.
    pub fn backlog(&self) -> &Arc<Backlog> {
        &self.backlog
    }

    /// Writes everything sent so far; Err when the sink could not take it
    /// (what could not be written stays held).
    pub async fn flush(&self) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Flush(ack))
            .map_err(|_| "the RRD writer has stopped".to_string())?;
        done.await
            .map_err(|_| "the RRD writer has stopped".to_string())?
    }

    pub fn stats(&self) -> RrdCounts {
        self.stats.snapshot()
    }
}

struct Task {
    sink: RrdSink,
    spec: CreateSpec,
    options: WriterOptions,
    stats: Arc<RrdStats>,
    backlog: Arc<Backlog>,
    buf: VecDeque<RrdUpdate>,
    conn: Option<Connection>,
    /// While rrdcached is unreachable: when to try again.
    retry_at: Option<Instant>,
    backoff: Duration,
    outage_since: Option<Instant>,
    last_drop_log: Option<Instant>,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut due: Option<Instant> = None;
        let mut waiters: Vec<oneshot::Sender<Result<(), String>>> = Vec::new();
        loop {
            // Wake when held updates are due, but not before a retry is.
            let wake = if self.buf.is_empty() {
                None
            } else {
                let now = Instant::now();
                Some(due.unwrap_or(now).max(self.retry_at.unwrap_or(now)))
            };
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Msg::Updates(u)) => {
                        self.push(u);
                        due.get_or_insert_with(|| Instant::now() + self.options.flush_interval);
                    }
                    Some(Msg::Flush(ack)) => waiters.push(ack),
                    None => {
                        self.write_out().await;
                        return;
                    }
                },
                _ = sleep_until(wake) => {}
            }
            let now = Instant::now();
            let ready = self.retry_at.is_none_or(|r| now >= r);
            let full = self.buf.len() >= self.options.batch_max;
            let timely = due.is_some_and(|d| now >= d);
            if ready && (full || timely || !waiters.is_empty()) && !self.buf.is_empty() {
                self.write_out().await;
            }
            if self.buf.is_empty() {
                due = None;
            }
            if !waiters.is_empty() && (self.buf.is_empty() || self.retry_at.is_some()) {
                let result = if self.buf.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "{} RRD updates held: the RRD sink is unreachable",
                        self.buf.len()
                    ))
                };
                for w in waiters.drain(..) {
                    let _ = w.send(result.clone());
                }
            }
            self.stats
                .buffered
                .store(self.buf.len() as u64, Ordering::Relaxed);
        }
    }

    fn push(&mut self, updates: Vec<RrdUpdate>) {
        for u in updates {
            if self.buf.len() >= self.options.buffer_limit {
                if let Some(old) = self.buf.pop_front() {
                    self.done_with(std::slice::from_ref(&old));
                }
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                if self
                    .last_drop_log
                    .is_none_or(|t| now.duration_since(t) > Duration::from_secs(60))
                {
                    self.last_drop_log = Some(now);
                    tracing::warn!(
                        limit = self.options.buffer_limit,
                        dropped_total = self.stats.dropped.load(Ordering::Relaxed),
                        "RRD buffer full while the sink is unreachable: dropping the oldest updates"
                    );
                }
            }
            self.buf.push_back(u);
        }
        self.stats
            .buffered
            .store(self.buf.len() as u64, Ordering::Relaxed);
    }

    /// Writes as much of the buffer as the sink takes.
    async fn write_out(&mut self) {
        match self.sink.clone() {
            RrdSink::Disabled => {
                let all: Vec<RrdUpdate> = self.buf.drain(..).collect();
                self.done_with(&all);
            }
            RrdSink::Local(files) => {
                while !self.buf.is_empty() {
                    let n = self.buf.len().min(self.options.batch_max);
                    let batch: Vec<RrdUpdate> = self.buf.drain(..n).collect();
                    let files = files.clone();
                    self.done_with(&batch);
                    metrics::histogram!("ironpoll_rrd_batch_size").record(batch.len() as f64);
                    let outcome = tokio::task::spawn_blocking(move || files.apply(batch)).await;
                    self.stats.batches.fetch_add(1, Ordering::Relaxed);
                    match outcome {
                        Ok(o) => {
                            self.stats.written.fetch_add(o.written, Ordering::Relaxed);
                            self.stats.created.fetch_add(o.created, Ordering::Relaxed);
                            self.stats.rejected.fetch_add(o.rejected, Ordering::Relaxed);
                            for e in o.errors {
                                tracing::warn!(error = %e, "RRD update refused");
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "local RRD writer failed"),
                    }
                }
            }
            RrdSink::Cached(addr) => self.write_cached(&addr).await,
        }
    }

    async fn write_cached(&mut self, addr: &Address) {
        let mut created_now: HashSet<RrdFile> = HashSet::new();
        while !self.buf.is_empty() {
            if self.conn.is_none() {
                match Connection::connect(addr, self.options.io_timeout).await {
                    Ok(c) => {
                        self.stats.connects.fetch_add(1, Ordering::Relaxed);
                        self.conn = Some(c);
                    }
                    Err(e) => return self.unreachable(e),
                }
            }
            let n = self.buf.len().min(self.options.batch_max);
            let batch: Vec<RrdUpdate> = self.buf.drain(..n).collect();
            let commands: Vec<String> = batch
                .iter()
                .map(|u| format!("UPDATE {} {}", u.file.relative(), u.argument()))
                .collect();
            let conn = self.conn.as_mut().expect("connected above");
            let failures = match conn.batch(&commands).await {
                Ok(f) => f,
                Err(e) => {
                    for u in batch.into_iter().rev() {
                        self.buf.push_front(u);
                    }
                    self.conn = None;
                    return self.unreachable(e);
                }
            };
            self.reachable();
            self.stats.batches.fetch_add(1, Ordering::Relaxed);
            metrics::histogram!("ironpoll_rrd_batch_size").record(batch.len() as f64);
            self.stats
                .written
                .fetch_add((batch.len() - failures.len()) as u64, Ordering::Relaxed);
            let mut missing: BTreeMap<RrdFile, Vec<RrdUpdate>> = BTreeMap::new();
            let mut refused = 0u64;
            let mut first_refusal = None;
            let mut slots: Vec<Option<RrdUpdate>> = batch.into_iter().map(Some).collect();
            for (i, msg) in failures {
                let Some(u) = slots[i].take() else { continue };
                match rrdcached::classify(&msg) {
                    Failure::NoSuchFile if !created_now.contains(&u.file) => {
                        missing.entry(u.file.clone()).or_default().push(u);
                    }
                    _ => {
                        refused += 1;
                        first_refusal.get_or_insert(msg);
                        self.done_with(std::slice::from_ref(&u));
                    }
                }
            }
            // Written: no longer held.
            let written: Vec<RrdUpdate> = slots.into_iter().flatten().collect();
            self.done_with(&written);
            drop(written);
            if refused > 0 {
                self.stats.rejected.fetch_add(refused, Ordering::Relaxed);
                tracing::debug!(
                    refused,
                    first = first_refusal.as_deref().unwrap_or(""),
                    "rrdcached refused updates"
                );
            }
            // Create the missing files, then send their updates again ahead
            // of everything else so each file's updates stay in order.
            let mut retry: Vec<RrdUpdate> = Vec::new();
            for (file, ups) in missing {
                let start = ups.iter().map(|u| u.time).min().unwrap_or(0) - 1;
                let path = file.relative();
                let spec = ups[0].create_spec(&self.spec);
                let cmd = rrdcached::create_command(&path, spec, ups[0].def, start);
                let conn = self.conn.as_mut().expect("connected above");
                match conn.create(&path, &cmd).await {
                    Ok(Ok(())) => {
                        self.stats.created.fetch_add(1, Ordering::Relaxed);
                        created_now.insert(file);
                        retry.extend(ups);
                    }
                    Ok(Err(reason)) => {
                        tracing::warn!(file = %path, "rrdcached cannot create the file: {reason}");
                        self.stats
                            .rejected
                            .fetch_add(ups.len() as u64, Ordering::Relaxed);
                        self.done_with(&ups);
                    }
                    Err(e) => {
                        retry.extend(ups);
                        for u in retry.into_iter().rev() {
                            self.buf.push_front(u);
                        }
                        self.conn = None;
                        return self.unreachable(e);
                    }
                }
            }
            for u in retry.into_iter().rev() {
                self.buf.push_front(u);
            }
        }
    }

    /// Updates the writer no longer holds (written, refused or dropped)
    /// leave the backlog.
    fn done_with(&self, updates: &[RrdUpdate]) {
        self.backlog
            .release(updates.len() as u64, held_bytes(updates));
    }

    fn unreachable(&mut self, e: rrdcached::Error) {
        let now = Instant::now();
        if self.outage_since.is_none() {
            self.outage_since = Some(now);
            tracing::warn!(
                error = %e, "holding RRD updates (up to {}) until it answers",
                self.options.buffer_limit
            );
        } else {
            tracing::debug!(error = %e, "rrdcached still does not answer");
        }
        self.retry_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(Duration::from_secs(10));
    }

    fn reachable(&mut self) {
        if let Some(since) = self.outage_since.take() {
            tracing::warn!(
                down_for = ?since.elapsed(),
                "rrdcached answers again; writing the held RRD updates"
            );
        }
        self.retry_at = None;
        self.backoff = Duration::from_millis(250);
    }
}

/// Memory updates take while held.
fn held_bytes(updates: &[RrdUpdate]) -> u64 {
    updates.iter().map(|u| u.bytes() as u64).sum()
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
