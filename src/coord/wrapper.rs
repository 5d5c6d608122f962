//! LibreNMS's cron-driven distribution, as `poller-wrapper.py` runs it
//! (`LibreNMS/wrapper.py`): every step, each node walks its groups'
//! devices and claims each one in a shared memcached with `add` before
//! polling it, so that one node polls it in that step.
//!
//! The keys, per step (`<tag>` is `.` and the step's start, the Unix time
//! rounded down to `rrd.step`):
//! - `poller.device.<id><tag>`: the claim, the node's
//!   `distributed_poller_name`, for one step;
//! - `poller.master<tag>`: the master's name, kept alive for 10 s at a
//!   time while it runs; the first node of a step becomes master;
//! - `poller.nodes<tag>`: how many other nodes run (an integer), which
//!   the master waits to reach 0 before it clears both tags.
//!
//! When memcached is lost, the master stops claiming and polls every
//! device left on its list, and nodes stop polling: the wrapper's way.
//! Unlike the wrapper, a master whose claim fails for want of memcached
//! polls that device instead of skipping it, and a node's count is taken
//! back only by a node that added it.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use super::memcached::{Item, Memcached, Unreachable};

/// What the wrapper works: only polling is done natively.
const KIND: &str = "poller";
/// How long the master tag and the node count live between touches
/// (`memc_touch_time`).
const TOUCH_SECS: u32 = 10;
/// The node count's first lifetime (`nodes_stepping`).
const NODES_SECS: u32 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// First in this step: keeps the master tag and clears the tags at
    /// the end.
    Master,
    /// Joined a master: counted in the node tag.
    Node,
    /// memcached did not answer at the start of the step: every device is
    /// polled unclaimed, as the wrapper does.
    Alone,
    /// The master tag of this step already names this node (a restart
    /// within the step): the wrapper exits, and this node sits the step
    /// out.
    AlreadyMaster,
}

/// Whether this node polls a device in this step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Mine,
    /// Another node holds it.
    Taken,
    /// memcached is lost and this node is not the master: the master
    /// polls it.
    Lost,
}

/// This node's part in one step.
#[derive(Debug)]
pub struct Step {
    /// The step's start (Unix seconds).
    pub start: i64,
    pub role: Role,
    tag: String,
    /// Cleared when memcached is lost mid-step (`DISTRIBUTED_POLLING`).
    distributed: AtomicBool,
    /// The last node count the master saw, to log changes only.
    nodes_seen: AtomicI64,
    /// Whether this node's count is in the node tag.
    counted: AtomicBool,
}

impl Step {
    pub fn distributed(&self) -> bool {
        self.distributed.load(Ordering::Relaxed)
    }

    fn key(&self, what: &str) -> String {
        format!("{KIND}.{what}{}", self.tag)
    }

    fn device_key(&self, id: u32) -> String {
        format!("{KIND}.device.{id}{}", self.tag)
    }
}

/// A node of a `poller-wrapper.py` cluster.
#[derive(Debug)]
pub struct WrapperCluster {
    mc: Memcached,
    /// `distributed_poller_name`.
    name: String,
    /// `rrd.step`: the length of a step and of a claim.
    step_secs: u32,
    /// Whether the last command reached memcached, to log each change of
    /// state once.
    reachable: AtomicBool,
}

impl WrapperCluster {
    pub fn new(mc: Memcached, name: &str, step_secs: u32) -> WrapperCluster {
        WrapperCluster {
            mc,
            name: name.to_string(),
            step_secs: step_secs.max(1),
            reachable: AtomicBool::new(true),
        }
    }

    pub fn step_secs(&self) -> u32 {
        self.step_secs
    }

    /// memcached, and whether it answered the last command, for the
    /// status file.
    pub fn view(&self) -> crate::daemon::status_file::ClusterView {
        crate::daemon::status_file::ClusterView {
            master: false,
            coordinator: Some(format!("memcached at {}", self.mc.addr())),
            coordinator_answers: Some(self.reachable.load(Ordering::Relaxed)),
        }
    }

    /// The start of the step `unix` falls in.
    pub fn step_start(&self, unix: i64) -> i64 {
        unix - unix.rem_euclid(i64::from(self.step_secs))
    }

    /// Notes whether memcached answered; logs the first failure and the
    /// first answer after failures.
    fn note<T>(&self, r: Result<T, Unreachable>) -> Result<T, Unreachable> {
        match &r {
            Ok(_) => {
                if !self.reachable.swap(true, Ordering::Relaxed) {
                    tracing::warn!(memcached = self.mc.addr(), "memcached answers again");
                }
            }
            Err(e) => {
                if self.reachable.swap(false, Ordering::Relaxed) {
                    tracing::error!(error = %e, "device claims stop until it answers");
                }
            }
        }
        r
    }

    /// `memc_alive`: a random key written, read back and deleted.
    pub async fn alive(&self) -> bool {
        let token = format!("{:032x}", rand::random::<u128>());
        let key = format!("{KIND}.ping.{token}");
        let check = async {
            self.mc.set(&key, &Item::Text(token.clone()), 60).await?;
            let back = self.mc.get(&key).await?;
            self.mc.delete(&key).await?;
            Ok::<_, Unreachable>(back == Some(Item::Text(token.clone())))
        };
        self.note(check.await).unwrap_or(false)
    }

    /// Joins the step that starts at `start`, as a wrapper started then
    /// would.
    pub async fn join(&self, start: i64) -> Step {
        let mut step = Step {
            start,
            role: Role::Alone,
            tag: format!(".{start}"),
            distributed: AtomicBool::new(false),
            nodes_seen: AtomicI64::new(0),
            counted: AtomicBool::new(false),
        };
        let master_key = step.key("master");
        let master = self.note(self.mc.get(&master_key).await).ok().flatten();
        if master == Some(Item::Text(self.name.clone())) {
            tracing::warn!(
                step = start,
                "this node already holds this step's master tag (restarted within the step?): it sits the step out, as poller-wrapper.py does"
            );
            step.role = Role::AlreadyMaster;
            return step;
        }
        let was_reachable = self.reachable.load(Ordering::Relaxed);
        if !self.alive().await {
            // Said when memcached is first found gone, not every step.
            if was_reachable {
                tracing::warn!(
                    step = start,
                    memcached = self.mc.addr(),
                    "memcached does not answer: each step's devices are polled unclaimed until it does, as poller-wrapper.py does"
                );
            }
            return step;
        }
        let master = self.mc.get(&master_key).await.ok().flatten();
        if master.is_none() {
            let _ = self
                .mc
                .set(&master_key, &Item::Text(self.name.clone()), TOUCH_SECS)
                .await;
            let _ = self
                .mc
                .set(&step.key("nodes"), &Item::Int(0), NODES_SECS)
                .await;
            step.role = Role::Master;
            tracing::info!(step = start, "registered as master of the step");
        } else {
            let master = match master {
                Some(Item::Text(m)) => m,
                _ => "?".into(),
            };
            step.role = Role::Node;
            let counted = matches!(self.mc.incr(&step.key("nodes")).await, Ok(Some(_)));
            step.counted.store(counted, Ordering::Relaxed);
            tracing::info!(step = start, %master, "registered as node joining the step's master");
        }
        step.distributed.store(true, Ordering::Relaxed);
        step
    }

    /// Whether this node polls `id` in `step`.
    pub async fn claim(&self, step: &Step, id: u32) -> Claim {
        match step.role {
            Role::AlreadyMaster => return Claim::Taken,
            Role::Alone => return Claim::Mine,
            Role::Master | Role::Node => {}
        }
        if !step.distributed() {
            return self.when_lost(step);
        }
        let key = step.device_key(id);
        match self.note(self.mc.get(&key).await) {
            Ok(Some(_)) => return Claim::Taken,
            Ok(None) => {}
            Err(_) => return self.lose(step),
        }
        let mine = Item::Text(self.name.clone());
        match self.note(self.mc.add(&key, &mine, self.step_secs).await) {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(device = id, "being polled by another node in this step");
                return Claim::Taken;
            }
            Err(_) => return self.lose(step),
        }
        // A node checks memcached once more before it polls.
        if step.role == Role::Node && !self.alive().await {
            return self.lose(step);
        }
        Claim::Mine
    }

    /// memcached is lost mid-step: the master takes over every device,
    /// nodes stop.
    fn lose(&self, step: &Step) -> Claim {
        if step.distributed.swap(false, Ordering::Relaxed) {
            match step.role {
                Role::Master => tracing::warn!(
                    step = step.start,
                    "lost memcached: as master, this node polls every device left on its list, unclaimed; nodes stop"
                ),
                _ => tracing::warn!(
                    step = step.start,
                    "lost memcached: as a node, this node polls no more devices in this step; the master polls them"
                ),
            }
        }
        self.when_lost(step)
    }

    fn when_lost(&self, step: &Step) -> Claim {
        if step.role == Role::Master {
            Claim::Mine
        } else {
            Claim::Lost
        }
    }

    /// Once a second while the step runs (the wrapper's print worker): the
    /// master keeps its tag alive and watches the node count, a node keeps
    /// the count alive.
    pub async fn keep(&self, step: &Step) {
        if !step.distributed() {
            return;
        }
        match step.role {
            Role::Master => {
                self.touch(&step.key("master"), TOUCH_SECS).await;
                match self.note(self.mc.get(&step.key("nodes")).await) {
                    Ok(Some(Item::Int(n))) => {
                        if step.nodes_seen.swap(n, Ordering::Relaxed) != n {
                            tracing::info!(step = step.start, nodes = n, "nodes in the step");
                        }
                    }
                    Ok(_) => {
                        if !self.alive().await {
                            self.lose(step);
                        }
                    }
                    Err(_) => {
                        self.lose(step);
                    }
                }
            }
            Role::Node => self.touch(&step.key("nodes"), TOUCH_SECS).await,
            Role::Alone | Role::AlreadyMaster => {}
        }
    }

    /// `memc_touch`: the value read and written back with a new lifetime.
    async fn touch(&self, key: &str, ttl: u32) {
        if let Ok(Some(v)) = self.note(self.mc.get(key).await) {
            let _ = self.note(self.mc.set(key, &v, ttl).await);
        }
    }

    /// The end of this node's step, once its polls are done: the master
    /// waits for the nodes to finish (keeping its tag alive), then clears
    /// both tags; a node takes its count back. With `wait` false (the
    /// daemon is stopping) the master does not wait.
    pub async fn finish(&self, step: &Step, wait: bool) {
        match step.role {
            Role::Master => {
                if !step.distributed() && !self.alive().await {
                    return;
                }
                let master = self.mc.get(&step.key("master")).await.ok().flatten();
                if master != Some(Item::Text(self.name.clone())) {
                    return;
                }
                if wait {
                    tracing::info!(step = step.start, "waiting for the step's nodes to finish");
                    loop {
                        match self.note(self.mc.get(&step.key("nodes")).await) {
                            Ok(Some(Item::Int(n))) if n > 0 => {}
                            Ok(_) | Err(_) => break,
                        }
                        self.keep(step).await;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                let _ = self.mc.delete(&step.key("master")).await;
                let _ = self.mc.delete(&step.key("nodes")).await;
            }
            Role::Node => {
                if step.counted.swap(false, Ordering::Relaxed) {
                    let _ = self.note(self.mc.decr(&step.key("nodes")).await);
                }
            }
            Role::Alone | Role::AlreadyMaster => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_start_on_multiples_of_the_rrd_step() {
        let c = WrapperCluster::new(
            Memcached::new("127.0.0.1", 1, Duration::from_secs(1)),
            "n",
            300,
        );
        assert_eq!(c.step_start(1_700_000_123), 1_700_000_100);
        assert_eq!(c.step_start(1_700_000_100), 1_700_000_100);
        let step = Step {
            start: 1_700_000_100,
            role: Role::Node,
            tag: ".1700000100".into(),
            distributed: AtomicBool::new(true),
            nodes_seen: AtomicI64::new(0),
            counted: AtomicBool::new(false),
        };
        assert_eq!(step.device_key(42), "poller.device.42.1700000100");
        assert_eq!(step.key("master"), "poller.master.1700000100");
        assert_eq!(step.key("nodes"), "poller.nodes.1700000100");
    }

    #[tokio::test]
    async fn without_memcached_a_step_is_polled_alone_and_unclaimed() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = WrapperCluster::new(
            Memcached::new("127.0.0.1", port, Duration::from_millis(500)),
            "n",
            300,
        );
        let step = c.join(c.step_start(1_700_000_000)).await;
        assert_eq!(step.role, Role::Alone);
        assert!(!step.distributed());
        assert_eq!(c.claim(&step, 1).await, Claim::Mine);
        // Nothing to keep or finish, and neither blocks.
        c.keep(&step).await;
        c.finish(&step, true).await;
    }
}
