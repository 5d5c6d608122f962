//! Master election and dispatch, as `librenms-service.py` does them: every
//! second each node tries to take (or, holding it, refresh) the lock
//! `dispatch.master` for `service_master_timeout` seconds. The holder runs
//! the due query and queues each due device whose lock is free, for the
//! whole cluster and every poller group, and runs the timed dispatchers
//! (discovery, services, alerting, billing, ping) on wall-clock multiples
//! of their frequencies. It fills every queue whether or not this node
//! works it, so that PHP and Python nodes are served as their own master
//! would serve them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Node;
use crate::coord::redis::Redis;
use crate::db::dispatch;

/// Consecutive failures of the due query after which the master lets go
/// (`max_db_failures`).
const MAX_DB_FAILURES: u32 = 5;

impl Node {
    /// The election loop, until `stop`; releases the master lock on the way
    /// out.
    pub(super) async fn run_election(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut timers: Option<CancellationToken> = None;
        let mut db_failures = 0u32;
        metrics::gauge!("ironpoll_cluster_master").set(0.0);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            self.engine.heartbeat.turn();
            let election = self
                .redis
                .lock(
                    "dispatch.master",
                    &self.unique_name,
                    u64::from(self.settings.dispatcher.master_timeout),
                    true,
                )
                .await;
            let master = *election.as_ref().unwrap_or(&false);
            if !master {
                if let Some(t) = timers.take() {
                    t.cancel();
                    self.is_master.store(false, Ordering::Relaxed);
                    metrics::gauge!("ironpoll_cluster_master").set(0.0);
                    tracing::info!(name = %self.name, "no longer the master dispatcher");
                }
                // A node that is not master has no due query of its own:
                // the first round Redis answers is its start.
                if election.is_ok() {
                    self.engine.heartbeat.ready();
                }
                continue;
            }
            if timers.is_none() {
                tracing::info!(name = %self.name, "now the master dispatcher");
                self.is_master.store(true, Ordering::Relaxed);
                metrics::gauge!("ironpoll_cluster_master").set(1.0);
                let t = stop.child_token();
                self.clone().start_timers(t.clone());
                timers = Some(t);
            }
            match self.dispatch_due().await {
                Ok(()) => {
                    db_failures = 0;
                    self.engine.heartbeat.ready();
                }
                Err(e) => {
                    db_failures += 1;
                    if db_failures == 1 {
                        tracing::error!(error = %e, "the master's due query failed");
                    }
                    if db_failures > MAX_DB_FAILURES {
                        tracing::warn!(
                            failures = db_failures,
                            "too many database failures: releasing the master lock"
                        );
                        let _ = self
                            .redis
                            .unlock("dispatch.master", &self.unique_name)
                            .await;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
        if let Some(t) = timers.take() {
            t.cancel();
        }
        let _ = self
            .redis
            .unlock("dispatch.master", &self.unique_name)
            .await;
        self.is_master.store(false, Ordering::Relaxed);
    }

    /// One pass of the master: each due device whose poller (or discovery)
    /// lock is free goes on its group's queue.
    async fn dispatch_due(&self) -> Result<(), String> {
        let d = &self.settings.dispatcher;
        let age = self.started.elapsed().as_secs_f64();
        let due = dispatch::due(
            &self.db,
            self.settings.poller.frequency,
            d.discovery.frequency,
            age,
        )
        .await
        .map_err(|e| e.to_string())?;
        for (kind, wanted) in [("poller", true), ("discovery", false)] {
            let list: Vec<&dispatch::Due> = due
                .iter()
                .filter(|x| if wanted { x.poll } else { x.discover })
                .collect();
            let locks: Vec<String> = list
                .iter()
                .map(|x| format!("{kind}.device.{}", x.device_id))
                .collect();
            // A lock that cannot be read counts as held, as in LibreNMS.
            let held = match self.redis.locked(&locks).await {
                Ok(h) => h,
                Err(_) => continue,
            };
            let mut queues: BTreeMap<i64, Vec<String>> = BTreeMap::new();
            for (x, held) in list.iter().zip(held) {
                if !held {
                    queues
                        .entry(x.group)
                        .or_default()
                        .push(x.device_id.to_string());
                }
            }
            for (group, ids) in queues {
                metrics::counter!("ironpoll_cluster_queued_total", "queue" => kind)
                    .increment(ids.len() as u64);
                let _ = self
                    .redis
                    .enqueue(&Redis::queue_key(kind, group), &ids)
                    .await;
            }
        }
        Ok(())
    }

    /// The timed dispatchers, each on wall-clock multiples of its
    /// frequency, until `stop` (this node is no longer master).
    fn start_timers(self: Arc<Self>, stop: CancellationToken) {
        let d = &self.settings.dispatcher;
        let timers: [(&'static str, u32); 6] = [
            ("discovery", d.discovery.frequency),
            ("services", d.services.frequency),
            ("alerting", d.alerting.frequency),
            ("billing", d.billing.frequency),
            ("billing-calculate", d.billing_calculate),
            ("ping", d.ping.frequency),
        ];
        for (what, every) in timers {
            let node = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(until_next_multiple(every)) => {}
                    }
                    if let Err(e) = node.timed_dispatch(what).await {
                        tracing::error!(error = %e, "the {what} dispatch failed");
                    }
                }
            });
        }
    }

    async fn timed_dispatch(&self, what: &str) -> Result<(), String> {
        let r = &self.redis;
        let db_err = |e: crate::db::DbError| e.to_string();
        let queues: Vec<(String, Vec<String>)> = match what {
            "discovery" => by_group(
                "discovery",
                dispatch::discovery_all(&self.db).await.map_err(db_err)?,
            ),
            "services" => by_group(
                "services",
                dispatch::services_devices(&self.db).await.map_err(db_err)?,
            ),
            "alerting" => vec![(Redis::queue_key("alerting", 0), vec!["alerts".into()])],
            "billing" => vec![(Redis::queue_key("billing", 0), vec!["poll".into()])],
            "billing-calculate" => {
                vec![(Redis::queue_key("billing", 0), vec!["calculate".into()])]
            }
            "ping" => dispatch::device_groups(&self.db)
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|g| (Redis::queue_key("ping", g), vec![String::new()]))
                .collect(),
            _ => Vec::new(),
        };
        for (key, payloads) in queues {
            r.enqueue(&key, &payloads)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Devices as queue payloads, per group's queue, in their order.
fn by_group(kind: &str, rows: Vec<(u32, i64)>) -> Vec<(String, Vec<String>)> {
    let mut queues: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (id, group) in rows {
        queues.entry(group).or_default().push(id.to_string());
    }
    queues
        .into_iter()
        .map(|(g, ids)| (Redis::queue_key(kind, g), ids))
        .collect()
}

/// `normalize_wait`: the time to the next multiple of `secs` on the Unix
/// clock.
pub(super) fn until_next_multiple(secs: u32) -> Duration {
    let secs = f64::from(secs.max(1));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    Duration::from_secs_f64((secs - now % secs).ceil().max(1.0))
}
