//! The daemon's scheduler: LibreNMS's due rule on the database clock, start
//! times spread over the period when many devices are due at once (a fresh
//! start), a window of concurrent polls ([`PollWindow`]: up to
//! `poller.concurrency`, fewer while a sink cannot keep up), a deadline per
//! poll, and leases so that no device is polled twice at once. Down devices
//! are retried after `service_poller_down_retry` seconds, as LibreNMS's
//! dispatcher does.
//!
//! While a writer is behind (the database or rrdcached slower than the
//! polls), or resident memory is at `poller.memory_high`, no new poll
//! starts; the devices that wait count as deferred, and those that miss
//! their period are reported overdue with the reason.
//!
//! In a `poller-wrapper.py` cluster the schedule is the wrapper's instead
//! ([`steps`]): every step, every device of the node's groups, each
//! claimed in memcached first.

mod steps;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::coord::Leases;
use crate::coord::wrapper::WrapperCluster;
use crate::db::{devices, state};
use crate::modules::Selection;
use crate::poller::engine::Engine;
use crate::window::PollWindow;

#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub frequency: Duration,
    pub down_retry: Duration,
    pub concurrency: usize,
    pub deadline: Duration,
    /// How often the due rule is evaluated.
    pub tick: Duration,
    /// Poller groups this node serves (None: all devices).
    pub groups: Option<Vec<i64>>,
    /// LibreNMS waits for discovery before polling a new device.
    pub require_discovery: bool,
    /// How long in-flight polls may take to finish at shutdown.
    pub drain: Duration,
}

/// Counters of the scheduler's work.
#[derive(Debug, Default)]
pub struct SchedulerStats {
    pub started: AtomicU64,
    pub up: AtomicU64,
    pub down: AtomicU64,
    pub abandoned: AtomicU64,
    /// Sum of poll durations, in microseconds.
    pub poll_micros: AtomicU64,
    /// Due devices waiting for room at the last tick (LibreNMS's queue
    /// depth).
    pub pending: AtomicU64,
    /// Due devices held back because a sink was behind (each counted once
    /// per wait).
    pub deferred: AtomicU64,
    /// Devices not started within the period after they fell due, now.
    pub overdue: AtomicU64,
}

pub struct Scheduler {
    engine: Arc<Engine>,
    leases: Arc<dyn Leases>,
    /// Set in a `poller-wrapper.py` cluster: steps instead of the due rule.
    wrapper: Option<Arc<WrapperCluster>>,
    opts: SchedulerOptions,
    stats: Arc<SchedulerStats>,
}

impl Scheduler {
    pub fn new(engine: Arc<Engine>, leases: Arc<dyn Leases>, opts: SchedulerOptions) -> Scheduler {
        Scheduler {
            engine,
            leases,
            wrapper: None,
            opts,
            stats: Arc::default(),
        }
    }

    /// Polls as a node of a `poller-wrapper.py` cluster: every step, each
    /// device of this node's groups that this node claims in memcached.
    pub fn in_wrapper_cluster(mut self, cluster: Arc<WrapperCluster>) -> Scheduler {
        self.wrapper = Some(cluster);
        self
    }

    pub fn stats(&self) -> Arc<SchedulerStats> {
        self.stats.clone()
    }

    /// Runs until `shutdown` is cancelled, then lets in-flight polls finish
    /// (within the drain time) and writes everything held.
    pub async fn run(self, shutdown: CancellationToken) {
        let window = self.engine.poll_window(self.opts.concurrency);
        let tracker = TaskTracker::new();
        let in_flight: Arc<Mutex<HashSet<u32>>> = Arc::default();
        match self.wrapper.clone() {
            Some(cluster) => {
                self.run_steps(cluster, &window, &tracker, &in_flight, &shutdown)
                    .await
            }
            None => self.run_due(&window, &tracker, &in_flight, &shutdown).await,
        }
        self.stop(&tracker, &in_flight).await;
    }

    /// LibreNMS's dispatcher schedule: each tick, the devices due by the
    /// database clock, each leased before it starts.
    async fn run_due(
        &self,
        window: &Arc<PollWindow>,
        tracker: &TaskTracker,
        in_flight: &Arc<Mutex<HashSet<u32>>>,
        shutdown: &CancellationToken,
    ) {
        let opts = &self.opts;
        let mut not_before: HashMap<u32, Instant> = HashMap::new();
        let mut first_pass = true;
        let mut ticker = tokio::time::interval(opts.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut db_errors = 0u32;
        let mut last_report = Instant::now();
        // Since when each due device has been waiting to start, and those
        // already counted as deferred in this wait.
        let mut waiting_since: HashMap<u32, Instant> = HashMap::new();
        let mut deferred: HashSet<u32> = HashSet::new();
        let mut overdue_said = 0u64;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            self.engine.heartbeat.turn();
            let due = match devices::due(
                &self.engine.db,
                opts.frequency.as_secs() as u32,
                opts.groups.as_deref(),
                opts.require_discovery,
            )
            .await
            {
                Ok(d) => {
                    if db_errors > 0 {
                        tracing::warn!("the device query works again");
                    }
                    db_errors = 0;
                    self.engine.heartbeat.ready();
                    d
                }
                Err(e) => {
                    if db_errors == 0 {
                        tracing::error!(error = %e, "cannot read due devices; retrying every tick");
                    }
                    db_errors += 1;
                    continue;
                }
            };
            let now = Instant::now();
            // A fresh start finds many devices due at once: spread their
            // first polls over one period instead of starting all of them.
            if first_pass {
                first_pass = false;
                let n = due.len().max(1) as u32;
                if n > 1 {
                    for (i, d) in due.iter().enumerate() {
                        not_before.insert(d.device_id, now + opts.frequency * i as u32 / n);
                    }
                }
            }
            let mut start = Vec::new();
            // Back-pressure: no new poll while a sink is behind or resident
            // memory is high (unless none is in flight).
            let behind = self.held_back(in_flight);
            let room = if behind.is_empty() { window.room() } else { 0 };
            let mut eligible: HashSet<u32> = HashSet::new();
            for d in &due {
                if in_flight.lock().contains(&d.device_id) {
                    continue;
                }
                if not_before.get(&d.device_id).is_some_and(|t| *t > now) {
                    continue;
                }
                eligible.insert(d.device_id);
                waiting_since.entry(d.device_id).or_insert(now);
                if !behind.is_empty() && deferred.insert(d.device_id) {
                    self.stats.deferred.fetch_add(1, Ordering::Relaxed);
                }
                if start.len() >= room {
                    continue;
                }
                if !self.leases.acquire(d.device_id, opts.frequency).await {
                    metrics::counter!("ironpoll_leases_total", "result" => "held").increment(1);
                    continue;
                }
                metrics::counter!("ironpoll_leases_total", "result" => "taken").increment(1);
                not_before.remove(&d.device_id);
                waiting_since.remove(&d.device_id);
                deferred.remove(&d.device_id);
                start.push(d.device_id);
            }
            // Devices no longer due (polled elsewhere, disabled) stop
            // waiting.
            waiting_since.retain(|id, _| eligible.contains(id));
            deferred.retain(|id| eligible.contains(id));
            let overdue = waiting_since
                .values()
                .filter(|since| now.duration_since(**since) >= opts.frequency)
                .count() as u64;
            self.stats.overdue.store(overdue, Ordering::Relaxed);
            if overdue > 0 && (overdue_said == 0 || last_report.elapsed() >= opts.frequency) {
                let reason = if behind.is_empty() {
                    format!(
                        "no room: {} polls in flight, the most the sinks have kept up with (poller.concurrency is {})",
                        window.size(),
                        window.max()
                    )
                } else {
                    behind.join("; ")
                };
                tracing::warn!(
                    overdue,
                    deferred = self.stats.deferred.load(Ordering::Relaxed),
                    "devices not started within their polling period: {reason}"
                );
            }
            overdue_said = overdue;
            let waiting = {
                let in_flight = in_flight.lock();
                due.iter()
                    .filter(|d| !in_flight.contains(&d.device_id))
                    .count()
            };
            self.stats.pending.store(
                waiting.saturating_sub(start.len()) as u64,
                Ordering::Relaxed,
            );
            if !start.is_empty() {
                self.start_polls(start, window, tracker, in_flight, None)
                    .await;
            }
            if last_report.elapsed() >= opts.frequency {
                last_report = Instant::now();
                self.log_progress(in_flight.lock().len(), window);
            }
        }
    }

    /// Lets in-flight polls finish (within the drain time) and writes
    /// everything held.
    async fn stop(&self, tracker: &TaskTracker, in_flight: &Mutex<HashSet<u32>>) {
        let opts = &self.opts;
        tracing::info!(
            in_flight = in_flight.lock().len(),
            "stopping: waiting for polls in flight"
        );
        tracker.close();
        if tokio::time::timeout(opts.drain, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                abandoned = in_flight.lock().len(),
                "polls still running at the end of the drain time were abandoned"
            );
        }
        let problems = self.engine.flush().await;
        for p in problems {
            tracing::error!("at shutdown: {p}");
        }
    }

    /// Why no new poll may start now: sinks behind, or resident memory at
    /// `poller.memory_high` (unless no poll is in flight). Empty when
    /// polls may start.
    fn held_back(&self, in_flight: &Mutex<HashSet<u32>>) -> Vec<String> {
        let mut behind: Vec<String> = self
            .engine
            .sinks_behind()
            .into_iter()
            .map(|sink| format!("sinks behind: {sink}"))
            .collect();
        if self.engine.memory.is_high() && !in_flight.lock().is_empty() {
            behind.push(format!(
                "memory high: poller.memory_high is {} MiB",
                self.engine.memory.high_mib()
            ));
        }
        behind
    }

    async fn start_polls(
        &self,
        ids: Vec<u32>,
        window: &Arc<PollWindow>,
        tracker: &TaskTracker,
        in_flight: &Arc<Mutex<HashSet<u32>>>,
        step: Option<(&TaskTracker, i64)>,
    ) {
        let selection = Selection::Configured;
        let loaded = async {
            let list = devices::load(&self.engine.db, &ids).await?;
            let states = state::load(&self.engine.db, &ids, self.engine.needs()).await?;
            Ok::<_, crate::db::DbError>((list, states))
        }
        .await;
        let (list, mut states) = match loaded {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "cannot load {} due devices", ids.len());
                for id in ids {
                    self.leases.release(id).await;
                }
                return;
            }
        };
        for device in list {
            let id = device.device_id;
            // A disabled device can still show up between the due query
            // and this load.
            if device.disabled {
                self.leases.release(id).await;
                continue;
            }
            let Some(permit) = window.try_acquire() else {
                self.leases.release(id).await;
                continue;
            };
            in_flight.lock().insert(id);
            let state = states.remove(&id).unwrap_or_default();
            let engine = self.engine.clone();
            let leases = self.leases.clone();
            let stats = self.stats.clone();
            let opts = self.opts.clone();
            let in_flight = in_flight.clone();
            let selection = selection.clone();
            stats.started.fetch_add(1, Ordering::Relaxed);
            let step_token = step.map(|(polls, _)| polls.token());
            let step_start = step.map(|(_, start)| start);
            tracker.spawn(async move {
                let _permit = permit;
                let _step_token = step_token;
                let started = unix_seconds();
                let report = engine
                    .poll_one(device, state, &selection, opts.deadline)
                    .await;
                note_poll(id, started, report.as_ref().map(|r| r.status), step_start);
                match report {
                    Some(r) => {
                        stats
                            .poll_micros
                            .fetch_add((r.seconds * 1e6) as u64, Ordering::Relaxed);
                        if r.status {
                            stats.up.fetch_add(1, Ordering::Relaxed);
                            // Until the written last_polled is visible to
                            // the due rule, the lease keeps the device.
                            leases
                                .hold(
                                    id,
                                    opts.frequency
                                        .saturating_sub(Duration::from_secs(1))
                                        .max(Duration::from_secs(1)),
                                )
                                .await;
                        } else {
                            stats.down.fetch_add(1, Ordering::Relaxed);
                            leases.hold(id, opts.down_retry).await;
                        }
                    }
                    None => {
                        stats.abandoned.fetch_add(1, Ordering::Relaxed);
                        leases.hold(id, opts.down_retry).await;
                    }
                }
                in_flight.lock().remove(&id);
            });
        }
    }

    fn log_progress(&self, in_flight: usize, window: &PollWindow) {
        let s = &self.stats;
        let started = s.started.load(Ordering::Relaxed);
        let done = s.up.load(Ordering::Relaxed) + s.down.load(Ordering::Relaxed);
        let mean = if done > 0 {
            s.poll_micros.load(Ordering::Relaxed) as f64 / 1e6 / done as f64
        } else {
            0.0
        };
        let rrd = self.engine.rrd.stats();
        let db = self.engine.db_writer.stats();
        tracing::info!(
            started,
            up = s.up.load(Ordering::Relaxed),
            down = s.down.load(Ordering::Relaxed),
            abandoned = s.abandoned.load(Ordering::Relaxed),
            in_flight,
            window = window.size(),
            mean_poll_seconds = format!("{mean:.3}"),
            rrd_written = rrd.written,
            rrd_buffered = rrd.buffered,
            rrd_dropped = rrd.dropped,
            db_polls_written = db.polls.load(Ordering::Relaxed),
            db_polls_refused = db.refused_polls.load(Ordering::Relaxed),
            deferred = s.deferred.load(Ordering::Relaxed),
            overdue = s.overdue.load(Ordering::Relaxed),
            sinks_behind_seconds = format!("{:.1}", self.sinks_behind_seconds()),
            memory_high_seconds = format!("{:.1}", self.engine.memory.seconds_high()),
            "poller progress"
        );
    }

    /// How long polls have waited on the writers, all episodes, in
    /// seconds (the database's and rrdcached's summed).
    fn sinks_behind_seconds(&self) -> f64 {
        self.engine
            .backlogs()
            .iter()
            .map(|b| b.seconds_behind())
            .sum()
    }
}

/// One line per poll, for whoever needs to know who polled what when
/// (`RUST_LOG=ironpoll::scheduler=debug`): the device, when its poll
/// started and ended, whether it was up (none when abandoned), and the
/// wrapper step it was claimed in.
pub(crate) fn note_poll(id: u32, started: f64, up: Option<bool>, step: Option<i64>) {
    tracing::debug!(
        target: "ironpoll::scheduler",
        device = id,
        started = format!("{started:.3}"),
        ended = format!("{:.3}", unix_seconds()),
        up,
        step,
        "device polled"
    );
}

/// The Unix time now, in seconds.
pub(crate) fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}
