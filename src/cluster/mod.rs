//! A node of a LibreNMS dispatcher cluster: with `distributed_poller` on
//! and Redis configured, `ironpoll run` takes part as `librenms-service.py`
//! does (FACTS section 1), next to Python nodes: master election and
//! dispatch for the whole cluster ([`master`]), the poller work of its
//! groups done natively ([`workers`]), and its rows in `poller_cluster`
//! and `poller_cluster_stats`.

mod master;
mod workers;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::coord::redis::Redis;
use crate::db::Db;
use crate::poller::engine::Engine;
use crate::scheduler::SchedulerStats;

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
    stats: Arc<SchedulerStats>,
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
                Err(e) => tracing::warn!("cannot read this node's poller_cluster settings: {e}"),
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
            stats: Arc::default(),
        }))
    }

    pub fn stats(&self) -> Arc<SchedulerStats> {
        self.stats.clone()
    }

    pub fn is_master(&self) -> bool {
        self.is_master.load(Ordering::Relaxed)
    }

    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    /// Devices waiting in this node's poller queues.
    pub async fn poller_depth(&self) -> u64 {
        let mut depth = 0;
        for g in &self.groups {
            depth += self
                .redis
                .queue_len(&Redis::queue_key("poller", *g))
                .await
                .unwrap_or(0);
        }
        depth
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
