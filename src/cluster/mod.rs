//! A node of a LibreNMS dispatcher cluster: with `distributed_poller` on
//! and Redis configured, `ironpoll run` takes part as `librenms-service.py`
//! does (FACTS section 1), next to Python nodes: master election and
//! dispatch for the whole cluster ([`master`]), the poller work of its
//! groups done natively ([`workers`]), and its rows in `poller_cluster`
//! and `poller_cluster_stats`.

mod master;
mod php_work;
mod workers;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use parking_lot::Mutex;

use crate::config::Settings;
use crate::coord::redis::Redis;
use crate::db::Db;
use crate::db::cluster::QueueStats;
use crate::poller::engine::Engine;
use crate::poller::php::Php;
use crate::scheduler::SchedulerStats;
use php_work::PhpWork;

/// The queue types of LibreNMS's dispatcher, in the order its service
/// reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    Poller,
    Discovery,
    Alerting,
    Services,
    Billing,
    Ping,
}

impl Work {
    const ALL: [Work; 6] = [
        Work::Poller,
        Work::Discovery,
        Work::Alerting,
        Work::Services,
        Work::Billing,
        Work::Ping,
    ];

    fn name(self) -> &'static str {
        match self {
            Work::Poller => "poller",
            Work::Discovery => "discovery",
            Work::Alerting => "alerting",
            Work::Services => "services",
            Work::Billing => "billing",
            Work::Ping => "ping",
        }
    }
}

pub struct Node {
    settings: Arc<Settings>,
    engine: Arc<Engine>,
    db: Db,
    redis: Redis,
    /// `distributed_poller_name` (or `poller_cluster.poller_name`).
    name: String,
    /// `<name>-<uuid>`, new at every start: the master lock's owner and
    /// the prefix of this node's device lock owners.
    unique_name: String,
    groups: Vec<i64>,
    started: Instant,
    is_master: AtomicBool,
    /// Numbers each poll's lock owner, so that no two polls share one.
    seq: AtomicU64,
    /// Devices this node is polling now: one whose lock expired mid-poll
    /// and was queued again is not started twice here.
    polling: Mutex<std::collections::HashSet<u32>>,
    stats: Arc<SchedulerStats>,
    /// Jobs done and their microseconds, per queue type, since start.
    work_done: [AtomicU64; 6],
    work_micros: [AtomicU64; 6],
    /// What the last report counted, to report what came since.
    reported: Mutex<[(u64, u64); 6]>,
}

impl Node {
    /// The node, with this node's `poller_cluster` overrides applied (read
    /// once at start, as LibreNMS does).
    pub async fn new(
        settings: Arc<Settings>,
        engine: Arc<Engine>,
        db: Db,
    ) -> anyhow::Result<Arc<Node>> {
        let redis = Redis::new(&settings).map_err(|e| anyhow::anyhow!("redis settings: {e}"))?;
        let mut settings = (*settings).clone();
        if !settings.node_id.is_empty() {
            match crate::db::cluster::node_overrides(&db, &settings.node_id).await {
                Ok(Some(o)) => o.apply(&mut settings),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read this node's poller_cluster settings")
                }
            }
        }
        let name = settings.distributed_poller_name.clone();
        let uuid = rand::random::<u128>();
        let unique_name = format!(
            "{name}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (uuid >> 96) as u32,
            (uuid >> 80) as u16,
            (uuid >> 64) as u16,
            (uuid >> 48) as u16,
            uuid & 0xffff_ffff_ffff
        );
        let groups = settings.poller.groups.clone();
        Ok(Arc::new(Node {
            settings: Arc::new(settings),
            engine,
            db,
            redis,
            name,
            unique_name,
            groups,
            started: Instant::now(),
            is_master: AtomicBool::new(false),
            seq: AtomicU64::new(0),
            polling: Mutex::default(),
            stats: Arc::default(),
            work_done: Default::default(),
            work_micros: Default::default(),
            reported: Mutex::new([(0, 0); 6]),
        }))
    }

    pub fn stats(&self) -> Arc<SchedulerStats> {
        self.stats.clone()
    }

    pub fn is_master(&self) -> bool {
        self.is_master.load(Ordering::Relaxed)
    }

    /// Master or not, and whether Redis answers, for the status file.
    pub fn view(&self) -> crate::daemon::status_file::ClusterView {
        crate::daemon::status_file::ClusterView {
            master: self.is_master(),
            coordinator: Some(self.redis.server().to_string()),
            coordinator_answers: Some(self.redis.reachable()),
        }
    }

    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    fn count_work(&self, work: Work, took: Duration) {
        self.work_done[work as usize].fetch_add(1, Ordering::Relaxed);
        self.work_micros[work as usize].fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// This node's `poller_cluster_stats` rows, one per queue type as the
    /// Python service reports them: the jobs waiting in the node's groups'
    /// queues, the jobs done and their seconds since the last report, and
    /// the configured workers and frequency.
    pub async fn queue_stats(&self) -> Vec<QueueStats> {
        let s = &self.settings;
        let d = &s.dispatcher;
        let mut out = Vec::new();
        for work in Work::ALL {
            let mut depth = 0;
            for g in &self.groups {
                depth += self
                    .redis
                    .queue_len(&Redis::queue_key(work.name(), *g))
                    .await
                    .unwrap_or(0);
            }
            let done = self.work_done[work as usize].load(Ordering::Relaxed);
            let micros = self.work_micros[work as usize].load(Ordering::Relaxed);
            let (done_before, micros_before) =
                std::mem::replace(&mut self.reported.lock()[work as usize], (done, micros));
            let (workers, frequency) = match work {
                // ironpoll's workers are the polls it keeps in flight.
                Work::Poller => (s.poller.concurrency as u32, s.poller.frequency),
                Work::Discovery => (d.discovery.workers, d.discovery.frequency),
                Work::Alerting => (d.alerting.workers, d.alerting.frequency),
                Work::Services => (d.services.workers, d.services.frequency),
                Work::Billing => (d.billing.workers, d.billing.frequency),
                Work::Ping => (d.ping.workers, d.ping.frequency),
            };
            out.push(QueueStats {
                poller_type: work.name(),
                depth,
                devices: done - done_before,
                // LibreNMS stores whole seconds.
                worker_seconds: ((micros - micros_before) / 1_000_000) as f64,
                workers: u64::from(workers),
                frequency: u64::from(frequency),
            });
        }
        out
    }

    /// Runs until `stop`: the election (and, while master, dispatch) and
    /// the poller workers; then waits for the polls in flight (within
    /// `drain`) and releases what it holds.
    pub async fn run(self: Arc<Self>, stop: CancellationToken, drain: Duration) {
        tracing::info!(
            name = %self.unique_name,
            redis = self.redis.server(),
            groups = ?self.groups,
            "joining the LibreNMS dispatcher cluster"
        );
        let election = tokio::spawn(self.clone().run_election(stop.clone()));
        let tracker = TaskTracker::new();
        let mut poppers = Vec::new();
        if self.settings.dispatcher.poller.dispatched() {
            let window = self.engine.poll_window(self.settings.poller.concurrency);
            for &g in &self.groups {
                poppers.push(tokio::spawn(self.clone().run_poller_worker(
                    g,
                    window.clone(),
                    tracker.clone(),
                    stop.clone(),
                )));
            }
        } else {
            tracing::info!(
                "polling is not dispatched on this node (schedule_type.poller, service_poller_enabled)"
            );
        }
        // Discovery, services, alerting and billing: LibreNMS's PHP, when
        // there is one here. Otherwise those queues are left to others.
        match Php::find(&self.settings) {
            Ok(php) => {
                let php = Arc::new(php);
                for work in PhpWork::ALL {
                    let task = match work {
                        PhpWork::Discovery => &self.settings.dispatcher.discovery,
                        PhpWork::Services => &self.settings.dispatcher.services,
                        PhpWork::Alerting => &self.settings.dispatcher.alerting,
                        PhpWork::Billing => &self.settings.dispatcher.billing,
                    };
                    if !task.dispatched() {
                        continue;
                    }
                    let (groups, per_group) = if work.grouped() {
                        let n = (task.workers as usize / self.groups.len().max(1)).max(1);
                        (self.groups.clone(), n as u32)
                    } else {
                        (vec![0], 1)
                    };
                    for g in groups {
                        for w in 1..=per_group {
                            poppers.push(tokio::spawn(self.clone().run_php_worker(
                                php.clone(),
                                work,
                                g,
                                w,
                                stop.clone(),
                            )));
                        }
                    }
                }
            }
            Err(why) => tracing::info!(
                "discovery, services, alerting and billing are left to other nodes: {why}"
            ),
        }
        // Fast ping comes from the ping queues in a cluster.
        if self.settings.dispatcher.ping.dispatched() {
            for &g in &self.groups {
                poppers.push(tokio::spawn(self.clone().run_ping_worker(g, stop.clone())));
            }
        }
        for p in poppers {
            let _ = p.await;
        }
        tracker.close();
        if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
            tracing::warn!("polls still running at the end of the drain time were abandoned");
        }
        let _ = election.await;
    }
}
