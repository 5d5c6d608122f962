//! The poller work of this node's groups, done natively: what
//! `PollerQueueManager` does with a PHP process per device, with three
//! differences that keep LibreNMS's rules and close its gaps:
//! - one popper per group takes a device only when the poll window has
//!   room, so a busy node leaves the queue to the others;
//! - after taking the device's lock the worker asks the database whether
//!   the device is still due, so a poll that another node finished since
//!   the master queued it is not repeated;
//! - the lock is checked again just before the results are written, so a
//!   poll whose lock expired does not overwrite a newer poll's rows.
//!
//! As in LibreNMS: the lock `poller.device.<id>` is taken for the poller
//! frequency; an up device is unlocked after its poll, a down one is
//! locked again for `service_poller_down_retry`, an abandoned poll is
//! unlocked.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::MultiplexedConnection;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Node;
use crate::coord::redis::Redis;
use crate::db::{devices, dispatch, state};
use crate::modules::Selection;
use crate::poller::engine::Fence;
use crate::window::{PollWindow, Slot};

/// How long one blocking pop waits (LibreNMS waits 10 s; shorter here so
/// that a stop is seen soon).
const POP_WAIT: Duration = Duration::from_secs(1);

/// The poll still holds its device while the lock names its owner.
struct LockFence<'a> {
    redis: &'a Redis,
    lock: &'a str,
    owner: &'a str,
}

impl Fence for LockFence<'_> {
    fn holds(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            matches!(self.redis.holder(self.lock).await, Ok(Some(h)) if h == self.owner)
        })
    }
}

/// One queue's blocking pops, on a connection of their own, connected
/// again with back-off after a failure.
pub(super) struct Popper {
    key: String,
    conn: Option<MultiplexedConnection>,
    backoff: Duration,
}

impl Popper {
    pub(super) fn new(key: String) -> Popper {
        Popper {
            key,
            conn: None,
            backoff: Duration::from_secs(1),
        }
    }

    /// The next payload (None inside when the wait ended empty or failed);
    /// None when `stop` came.
    pub(super) fn key(&self) -> &str {
        &self.key
    }

    pub(super) async fn next(
        &mut self,
        redis: &Redis,
        stop: &CancellationToken,
    ) -> Option<Option<String>> {
        let conn = match self.conn.as_mut() {
            Some(c) => c,
            None => match redis.blocking_connection().await {
                Ok(c) => {
                    self.backoff = Duration::from_secs(1);
                    self.conn.insert(c)
                }
                Err(_) => {
                    tokio::select! {
                        _ = stop.cancelled() => return None,
                        _ = tokio::time::sleep(self.backoff) => {}
                    }
                    self.backoff = (self.backoff * 2).min(Duration::from_secs(30));
                    return Some(None);
                }
            },
        };
        let popped = tokio::select! {
            _ = stop.cancelled() => return None,
            r = Redis::pop(conn, &self.key, POP_WAIT) => r,
        };
        match popped {
            Ok(p) => Some(p),
            Err(_) => {
                self.conn = None;
                Some(None)
            }
        }
    }
}

impl Node {
    pub(super) async fn run_poller_worker(
        self: Arc<Self>,
        group: i64,
        window: Arc<PollWindow>,
        tracker: TaskTracker,
        stop: CancellationToken,
    ) {
        let mut queue = Popper::new(Redis::queue_key("poller", group));
        let _ = self.redis.ensure_queue(&queue.key).await;
        loop {
            let slot = tokio::select! {
                _ = stop.cancelled() => break,
                s = self.engine.poll_slot(&window) => s,
            };
            let Some(payload) = queue.next(&self.redis, &stop).await else {
                break;
            };
            let Some(payload) = payload else {
                continue;
            };
            metrics::counter!("ironpoll_cluster_popped_total", "queue" => "poller").increment(1);
            let Ok(id) = payload.trim().parse::<u32>() else {
                tracing::warn!(queue = %queue.key, %payload, "not a device id: dropped");
                continue;
            };
            if let Some(owner) = self.take(id, group).await {
                tracker.spawn(self.clone().poll(id, owner, slot));
            }
        }
    }

    /// The ping work of a group (`PingQueueManager.do_work`): with the
    /// group's lock `ping.group.<g>`, one fast-ping round over its enabled
    /// devices, done natively; the lock is released after.
    pub(super) async fn run_ping_worker(self: Arc<Self>, group: i64, stop: CancellationToken) {
        let Some(mut pinger) = crate::poller::fastping::FastPing::new(self.engine.clone()) else {
            tracing::warn!(
                group,
                "ping work not taken: this process may not send ICMP echoes"
            );
            return;
        };
        let mut queue = Popper::new(Redis::queue_key("ping", group));
        let _ = self.redis.ensure_queue(&queue.key).await;
        let lock = format!("ping.group.{group}");
        let owner = format!("{}-Ping_{group}-1", self.unique_name);
        let ttl = u64::from(self.settings.dispatcher.ping.frequency);
        while let Some(payload) = queue.next(&self.redis, &stop).await {
            if payload.is_none() {
                continue;
            }
            if !matches!(self.redis.lock(&lock, &owner, ttl, false).await, Ok(true)) {
                continue;
            }
            let round = async {
                let list = crate::db::devices::enabled(&self.db, Some(&[group])).await?;
                pinger.round(list).await
            };
            let started = tokio::time::Instant::now();
            let outcome = round.await;
            self.count_work(super::Work::Ping, started.elapsed());
            // Each change was logged as it was found (`status::apply`).
            if let Err(e) = outcome {
                tracing::warn!(group, error = %e, "fast ping round failed");
            }
            let _ = self.redis.unlock(&lock, &owner).await;
        }
    }

    /// Takes the device's lock and checks it is still due; the lock's
    /// owner when this node is to poll it.
    async fn take(&self, id: u32, group: i64) -> Option<String> {
        if self.polling.lock().contains(&id) {
            tracing::debug!(device = id, "still polled here: not started again");
            return None;
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let owner = format!("{}-Poller_{group}-{seq}", self.unique_name);
        let lock = format!("poller.device.{id}");
        let frequency = self.settings.poller.frequency;
        match self
            .redis
            .lock(&lock, &owner, u64::from(frequency), false)
            .await
        {
            Ok(true) => {
                metrics::counter!("ironpoll_leases_total", "result" => "taken").increment(1);
            }
            Ok(false) => {
                metrics::counter!("ironpoll_leases_total", "result" => "held").increment(1);
                tracing::debug!(device = id, "tried to poll, but it is locked");
                return None;
            }
            // No poll without its lock.
            Err(_) => {
                metrics::counter!("ironpoll_leases_total", "result" => "failed").increment(1);
                return None;
            }
        }
        match dispatch::still_due(&self.db, id, frequency).await {
            Ok(true) => {
                self.polling.lock().insert(id);
                Some(owner)
            }
            Ok(false) => {
                tracing::debug!(device = id, "polled since it was queued: not polled again");
                let _ = self.redis.unlock(&lock, &owner).await;
                None
            }
            Err(e) => {
                tracing::warn!(device = id, error = %e, "cannot check the device is still due");
                let _ = self.redis.unlock(&lock, &owner).await;
                None
            }
        }
    }

    async fn poll(self: Arc<Self>, id: u32, owner: String, slot: Slot) {
        self.poll_held(id, &owner, slot).await;
        self.polling.lock().remove(&id);
    }

    async fn poll_held(&self, id: u32, owner: &str, slot: Slot) {
        let _slot = slot;
        let lock = format!("poller.device.{id}");
        let loaded = async {
            let list = devices::load(&self.db, &[id]).await?;
            let mut states = state::load(&self.db, &[id], self.engine.needs()).await?;
            Ok::<_, crate::db::DbError>((list, states.remove(&id).unwrap_or_default()))
        }
        .await;
        let (device, st) = match loaded {
            Ok((mut list, st)) if !list.is_empty() => (list.remove(0), st),
            Ok(_) => {
                let _ = self.redis.unlock(&lock, owner).await;
                return;
            }
            Err(e) => {
                tracing::error!(device = id, error = %e, "cannot load the device");
                let _ = self.redis.unlock(&lock, owner).await;
                return;
            }
        };
        self.stats.started.fetch_add(1, Ordering::Relaxed);
        let started = crate::scheduler::unix_seconds();
        let fence = LockFence {
            redis: &self.redis,
            lock: &lock,
            owner,
        };
        let deadline = Duration::from_secs(u64::from(self.settings.device_deadline_secs()));
        let report = self
            .engine
            .poll_one_fenced(device, st, &Selection::Configured, deadline, Some(&fence))
            .await;
        crate::scheduler::note_poll(id, started, report.as_ref().map(|r| r.status), None);
        let down_retry = u64::from(self.settings.poller.down_retry);
        match report {
            Some(r) => {
                self.count_work(super::Work::Poller, Duration::from_secs_f64(r.seconds));
                self.stats
                    .poll_micros
                    .fetch_add((r.seconds * 1e6) as u64, Ordering::Relaxed);
                if r.status {
                    self.stats.up.fetch_add(1, Ordering::Relaxed);
                    let _ = self.redis.unlock(&lock, owner).await;
                } else {
                    self.stats.down.fetch_add(1, Ordering::Relaxed);
                    // Retried after down_retry, as exit 6 does in LibreNMS.
                    let _ = self.redis.lock(&lock, owner, down_retry, true).await;
                }
            }
            None => {
                self.stats.abandoned.fetch_add(1, Ordering::Relaxed);
                let _ = self.redis.unlock(&lock, owner).await;
            }
        }
    }
}
