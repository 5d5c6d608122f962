//! Fast ping: every enabled device pinged every `fast_ping.interval`
//! seconds, between the regular polls, as LibreNMS's `PingCheck` does.
//!
//! A round pings every device in one sweep, then goes through the devices
//! parents first along `device_relationships` and, for each, recomputes
//! the status for the `icmp` source only (an SNMP failure stays from the
//! last poll), opens or closes outages, logs up/down once per change, and
//! stores last_ping, last_ping_timetaken and device_stats. icmp-perf.rrd
//! is written at `fast_ping.rrd_step` when the operator set one. The round
//! ends when its rows are written, so the next round starts from them.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::engine::Engine;
use super::{ICMP_PERF, icmp_perf_values, resolve, status, unix_now};
use crate::config::{Mode, Settings};
use crate::db::state;
use crate::db::writer::{Commit, Written};
use crate::db::{DbError, devices};
use crate::device::Device;
use crate::icmp::sweep::SweepOptions;
use crate::icmp::{PingResult, Pinger};
use crate::modules::Poll;
use crate::rrd::{CreateSpec, RrdFile, RrdUpdate};

/// One device's outcome in a round.
#[derive(Debug, Clone, Serialize)]
pub struct PingOutcome {
    pub device_id: u32,
    pub hostname: String,
    pub status: bool,
    pub status_reason: String,
    /// The status changed in this round.
    pub changed: bool,
    pub transmitted: u32,
    pub received: u32,
    pub avg_ms: f64,
    /// Why no echo could be sent (the name did not resolve).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The alert rules run on a status change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<crate::alerting::rules::DeviceAlerts>,
}

/// What fast ping keeps between rounds.
pub struct FastPing {
    engine: Arc<Engine>,
    pinger: Pinger,
    /// icmp-perf.rrd's creation at the fast-ping step, when one is set.
    rrd_spec: Option<Arc<CreateSpec>>,
    /// Devices whose name did not resolve, logged once until it resolves.
    unresolved: HashSet<u32>,
}

impl FastPing {
    /// None when the engine has no pinger (ICMP not permitted or disabled).
    pub fn new(engine: Arc<Engine>) -> Option<FastPing> {
        let pinger = engine.env.pinger.clone()?;
        let s = engine.settings();
        let rrd_spec = (s.fast_ping.rrd_step > 0)
            .then(|| CreateSpec::from_settings(&s.rrd).ok())
            .flatten()
            .map(|mut spec| {
                // The heartbeat follows the step as LibreNMS's rrd-step
                // maintenance sets it: twice the step.
                spec.step = s.fast_ping.rrd_step;
                spec.heartbeat = s.fast_ping.rrd_step * 2;
                Arc::new(spec)
            });
        Some(FastPing {
            engine,
            pinger,
            rrd_spec,
            unresolved: HashSet::new(),
        })
    }

    fn settings(&self) -> &Settings {
        self.engine.settings()
    }

    /// The enabled devices this node pings (its poller groups in LibreNMS
    /// mode), without those whose ICMP check is overridden off.
    pub async fn devices(&self) -> Result<Vec<Device>, DbError> {
        let s = self.settings();
        let groups = (s.mode == Mode::Librenms).then(|| s.poller.groups.clone());
        devices::enabled(&self.engine.db, groups.as_deref()).await
    }

    /// One round over `list`; returns each device's outcome, parents first.
    pub async fn round(&mut self, list: Vec<Device>) -> Result<Vec<PingOutcome>, DbError> {
        let db = &self.engine.db;
        let ids: Vec<u32> = list.iter().map(|d| d.device_id).collect();
        let mut states = state::load(db, &ids, self.engine.needs()).await?;
        let list: Vec<Device> = list
            .into_iter()
            .filter(|d| {
                states
                    .get(&d.device_id)
                    .is_none_or(|st| st.attribs.get("override_icmp_disable") != Some("true"))
            })
            .collect();
        let ordered = parents_first(list, &devices::relationships(db).await?);

        // Where each device is; a name that does not resolve is logged once.
        let resolved = futures_util::future::join_all(ordered.iter().map(resolve)).await;
        let mut targets: Vec<IpAddr> = Vec::new();
        let mut slot: Vec<Option<usize>> = Vec::with_capacity(ordered.len());
        for (device, r) in ordered.iter().zip(&resolved) {
            match r {
                Ok(ip) => {
                    if self.unresolved.remove(&device.device_id) {
                        tracing::info!(device = device.device_id, hostname = %device.hostname, "resolves again");
                    }
                    slot.push(Some(targets.len()));
                    targets.push(*ip);
                }
                Err(e) => {
                    if self.unresolved.insert(device.device_id) {
                        tracing::warn!(device = device.device_id, error = %e, "fast ping: not pinged");
                    }
                    slot.push(None);
                }
            }
        }

        let began = std::time::Instant::now();
        let mut results = self
            .pinger
            .sweep_with_retries(
                &targets,
                self.sweep_options(targets.len()),
                self.settings().ping.retries,
            )
            .await;
        metrics::histogram!("ironpoll_fastping_round_seconds")
            .record(began.elapsed().as_secs_f64());
        let (sent, answered) = results.iter().fold((0u64, 0u64), |(s, a), r| {
            (s + u64::from(r.transmitted), a + u64::from(r.received))
        });
        metrics::counter!("ironpoll_fastping_echoes_total", "outcome" => "answered")
            .increment(answered);
        metrics::counter!("ironpoll_fastping_echoes_total", "outcome" => "lost")
            .increment(sent.saturating_sub(answered));

        let now = unix_now();
        let mut outcomes = Vec::with_capacity(ordered.len());
        let mut changed = Vec::new();
        for ((device, r), at) in ordered.into_iter().zip(resolved).zip(slot) {
            let ping = match (at, r) {
                (Some(i), _) => std::mem::take(&mut results[i]),
                (None, Err(e)) => PingResult {
                    error: Some(e),
                    ..PingResult::default()
                },
                (None, Ok(_)) => PingResult::default(),
            };
            let original = device.clone();
            let st = states.remove(&device.device_id).unwrap_or_default();
            let mut poll = Poll::new(
                device,
                st,
                self.settings(),
                None,
                self.engine.env.store.as_ref(),
                now,
            );
            status::apply(&mut poll, Some(&ping), None, &original);
            status::save_ping_row(&mut poll, &ping);
            if let Some(spec) = &self.rrd_spec {
                let file = RrdFile::new(&poll.device.hostname, &["icmp-perf"]);
                let update = RrdUpdate::new(file, &ICMP_PERF, now, icmp_perf_values(&ping));
                poll.rrd.push(update.with_spec(spec.clone()));
            }
            poll.finish_device_row();
            outcomes.push(PingOutcome {
                device_id: original.device_id,
                hostname: original.hostname.clone(),
                status: poll.device.status,
                status_reason: poll.device.status_reason.clone(),
                changed: poll.device.status != original.status,
                transmitted: ping.transmitted,
                received: ping.received,
                avg_ms: ping.avg(),
                error: ping.error.clone(),
                alerts: None,
            });
            // Handed over in order: parents' rows before their children's.
            let committed = self
                .engine
                .hand_over(
                    std::mem::take(&mut poll.changes),
                    std::mem::take(&mut poll.rrd),
                )
                .await;
            if outcomes.last().is_some_and(|o| o.changed) {
                changed.push((outcomes.len() - 1, committed));
            }
        }
        for p in self.engine.flush().await {
            tracing::warn!("fast ping: {p}");
        }
        self.alert_on_changes(&mut outcomes, changed).await;
        Ok(outcomes)
    }

    /// The alert rules of each device whose status changed, once its row
    /// is committed, parents before children (LibreNMS's `PingCheck`,
    /// which defers a child until its parents are recorded: here the whole
    /// round is). LibreNMS runs them here whatever `alert.disable` says.
    async fn alert_on_changes(&self, outcomes: &mut [PingOutcome], changed: Vec<(usize, Commit)>) {
        let Ok(alerting) = &self.engine.alerting else {
            return;
        };
        let mut ids = Vec::with_capacity(changed.len());
        for (i, committed) in changed {
            let o = &outcomes[i];
            if committed.wait().await == Written::Committed {
                ids.push(o.device_id);
            } else {
                tracing::warn!(
                    device = o.device_id,
                    "alert rules not run: the status change was not written"
                );
            }
        }
        match alerting.rules_only(&ids).await {
            Ok(done) => {
                for (id, a) in done {
                    if let Some(o) = outcomes.iter_mut().find(|o| o.device_id == id) {
                        o.alerts = Some(a);
                    }
                }
            }
            Err(e) => tracing::warn!(devices = ids.len(), error = %e, "alert rules not run"),
        }
    }

    /// fping's pacing for a round: `fast_ping.count` echoes
    /// `fping_options.interval` apart, the sends of one round spread over
    /// at most a quarter of the fast-ping interval.
    fn sweep_options(&self, hosts: usize) -> SweepOptions {
        let s = self.settings();
        let spread = Duration::from_secs(u64::from(s.fast_ping.interval)) / 4;
        SweepOptions {
            count: s.fast_ping.count,
            period: Duration::from_millis(u64::from(s.ping.interval_ms)),
            interval: (spread / hosts.max(1) as u32).min(Duration::from_millis(10)),
            timeout: Duration::from_millis(u64::from(s.ping.timeout_ms)),
        }
    }

    /// Rounds every `fast_ping.interval` until `stop`; a round that takes
    /// longer delays the next instead of overlapping it.
    pub async fn run(mut self, stop: CancellationToken, mut on_round: impl FnMut(&[PingOutcome])) {
        let every = Duration::from_secs(u64::from(self.settings().fast_ping.interval));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(interval = ?every, "fast ping started");
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let list = match self.devices().await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "fast ping: cannot load devices");
                    continue;
                }
            };
            match self.round(list).await {
                // Each change was logged as it was found (`status::apply`).
                Ok(outcomes) => on_round(&outcomes),
                Err(e) => tracing::warn!(error = %e, "fast ping round failed"),
            }
        }
        tracing::info!("fast ping stopped");
    }
}

/// Devices ordered so that every parent comes before its children
/// (device_relationships); within a level, and for devices in a cycle, by
/// id.
pub fn parents_first(list: Vec<Device>, relations: &[(u32, u32)]) -> Vec<Device> {
    let present: HashSet<u32> = list.iter().map(|d| d.device_id).collect();
    let mut parents: HashMap<u32, Vec<u32>> = HashMap::new();
    for (p, c) in relations {
        if present.contains(p) && present.contains(c) && p != c {
            parents.entry(*c).or_default().push(*p);
        }
    }
    let mut by_id: std::collections::BTreeMap<u32, Device> =
        list.into_iter().map(|d| (d.device_id, d)).collect();
    let mut placed: HashSet<u32> = HashSet::new();
    let mut out = Vec::with_capacity(by_id.len());
    while !by_id.is_empty() {
        let ready: Vec<u32> = by_id
            .keys()
            .copied()
            .filter(|id| {
                parents
                    .get(id)
                    .is_none_or(|ps| ps.iter().all(|p| placed.contains(p)))
            })
            .collect();
        // A cycle: take the lowest id and go on.
        let ready = if ready.is_empty() {
            vec![*by_id.keys().next().expect("not empty")]
        } else {
            ready
        };
        for id in ready {
            if let Some(d) = by_id.remove(&id) {
                placed.insert(id);
                out.push(d);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(id: u32) -> Device {
        Device {
            device_id: id,
            ..Device::default()
        }
    }

    #[test]
    fn parents_come_before_children_and_cycles_do_not_hang() {
        let ids = |v: Vec<Device>| v.iter().map(|d| d.device_id).collect::<Vec<_>>();
        // 1 <- 3 <- 2 (3 is 2's parent, 1 is 3's parent), 4 alone.
        let order = parents_first(vec![dev(1), dev(2), dev(3), dev(4)], &[(3, 2), (1, 3)]);
        assert_eq!(ids(order), vec![1, 4, 3, 2]);
        // A parent not in the list does not hold its child back.
        assert_eq!(ids(parents_first(vec![dev(2)], &[(9, 2)])), vec![2]);
        // 5 and 6 each other's parent.
        assert_eq!(
            ids(parents_first(vec![dev(6), dev(5)], &[(5, 6), (6, 5)])),
            vec![5, 6]
        );
    }
}
