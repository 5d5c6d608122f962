//! What this node is doing now, written every second to `status_file`
//! for `ironpoll status`: the polls running, the pace, whether it is the
//! cluster's master. A file, replaced whole (write then rename), so that
//! a reader never sees half of one and needs no connection to the daemon.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::poller::engine::{Engine, RunningPoll};
use crate::scheduler::SchedulerStats;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub pid: u32,
    pub poller_name: String,
    /// Unix seconds of this snapshot.
    pub written: f64,
    /// Unix seconds the daemon started.
    pub started: f64,
    /// How this node shares devices: alone, dispatcher, wrapper.
    pub distribution: String,
    #[serde(flatten)]
    pub cluster: ClusterView,
    pub polls_done: u64,
    pub polls_up: u64,
    pub polls_down: u64,
    pub polls_abandoned: u64,
    pub overdue: u64,
    pub running: Vec<RunningPoll>,
}

/// This node's place in its cluster, now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    /// The dispatcher cluster's master.
    pub master: bool,
    /// What the cluster is coordinated through (`redis at host:port db
    /// n`), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<String>,
    /// Whether it answered the last command: no device is polled without
    /// its lock while it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator_answers: Option<bool>,
}

impl NodeStatus {
    pub fn read(path: &Path) -> std::io::Result<NodeStatus> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }
}

/// Writes the status file every second until `stop`, then removes it.
/// Its directory is not made here: the default, /run/ironpoll, is
/// systemd's `RuntimeDirectory`, and a daemon started by hand without it
/// writes none. A file that cannot be written is said once, and polling
/// goes on.
pub async fn run(
    path: PathBuf,
    engine: Arc<Engine>,
    stats: Arc<SchedulerStats>,
    distribution: String,
    cluster: Arc<dyn Fn() -> ClusterView + Send + Sync>,
    stop: CancellationToken,
) {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.is_dir()
    {
        tracing::info!(file = %path.display(), "no status file for ironpoll status: its directory does not exist");
        return;
    }
    let started = crate::scheduler::unix_seconds();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let (up, down, abandoned) = (l(&stats.up), l(&stats.down), l(&stats.abandoned));
        let status = NodeStatus {
            pid: std::process::id(),
            poller_name: engine.settings().distributed_poller_name.clone(),
            written: crate::scheduler::unix_seconds(),
            started,
            distribution: distribution.clone(),
            cluster: cluster(),
            polls_done: up + down + abandoned,
            polls_up: up,
            polls_down: down,
            polls_abandoned: abandoned,
            overdue: l(&stats.overdue),
            running: engine.running_polls(),
        };
        match write(&path, &status) {
            Ok(()) => {
                if failing {
                    tracing::warn!(file = %path.display(), "the status file is written again");
                }
                failing = false;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(file = %path.display(), error = %e, "cannot write the status file: ironpoll status will not show this node's polls");
                }
                failing = true;
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

fn write(path: &Path, status: &NodeStatus) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec(status).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, path)
}
