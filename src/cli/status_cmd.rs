//! `ironpoll status`: what LibreNMS's Poller page shows, from a shell. The
//! cluster's nodes (`poller_cluster`, `poller_cluster_stats`, `pollers`)
//! with the age of their last report, their groups and each period's work;
//! the polls this node runs now (from the daemon's status file); the
//! devices overdue by more than one period, and why.

use std::process::ExitCode;

use serde::Serialize;

use super::setup::ConfigArgs;
use crate::daemon::status_file::NodeStatus;
use crate::db::status::{self, ClusterNode, CronPoller, OverdueDevice};

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Print one JSON object instead of tables
    #[arg(long)]
    pub json: bool,
    /// List at most this many overdue devices (all are counted)
    #[arg(long, default_value_t = 20)]
    pub overdue_limit: usize,
}

/// The daemon on this host, as its status file says.
#[derive(Debug, Serialize)]
struct ThisNode {
    status_file: String,
    /// Why there is no snapshot: no file, or one too old to be a running
    /// daemon's.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_running: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    status: Option<NodeStatus>,
}

#[derive(Debug, Serialize)]
struct Report {
    poller_frequency: u32,
    this_node: ThisNode,
    cluster: Vec<ClusterNode>,
    cron_pollers: Vec<CronPoller>,
    overdue_count: usize,
    overdue: Vec<OverdueDevice>,
}

/// A status file older than this is not a running daemon's (it writes
/// every second).
const STALE_SECS: f64 = 10.0;

pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let loaded = args.config.load().await?;
    let s = &loaded.settings;
    let db = &loaded.db;
    let groups = (s.mode == crate::config::Mode::Librenms).then_some(s.poller.groups.as_slice());
    let mut overdue = status::overdue(db, s.poller.frequency, groups).await?;
    let overdue_count = overdue.len();
    overdue.truncate(args.overdue_limit);
    let report = Report {
        poller_frequency: s.poller.frequency,
        this_node: this_node(&s.status_file),
        cluster: status::cluster_nodes(db).await.unwrap_or_default(),
        cron_pollers: status::cron_pollers(db).await.unwrap_or_default(),
        overdue_count,
        overdue,
    };
    db.close().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn this_node(path: &str) -> ThisNode {
    let mut node = ThisNode {
        status_file: path.to_string(),
        not_running: None,
        status: None,
    };
    if path.is_empty() {
        node.not_running = Some("status_file is empty: the daemon writes no status".into());
        return node;
    }
    match NodeStatus::read(std::path::Path::new(path)) {
        Ok(st) => {
            let age = crate::scheduler::unix_seconds() - st.written;
            if age > STALE_SECS {
                node.not_running = Some(format!(
                    "the status file is {age:.0} s old: no daemon is running (pid {} was)",
                    st.pid
                ));
            } else {
                node.status = Some(st);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            node.not_running = Some("no status file: no daemon is running here".into());
        }
        Err(e) => node.not_running = Some(format!("cannot read the status file: {e}")),
    }
    node
}

fn render(r: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let now = crate::scheduler::unix_seconds();
    let _ = writeln!(out, "This node ({})", r.this_node.status_file);
    match (&r.this_node.status, &r.this_node.not_running) {
        (Some(st), _) => {
            let _ = writeln!(
                out,
                "  {} (pid {}), {}{}, up {}; polls: {} done ({} up, {} down, {} abandoned), {} running, {} overdue",
                st.poller_name,
                st.pid,
                st.distribution,
                if st.cluster.master { ", master" } else { "" },
                age(now - st.started),
                st.polls_done,
                st.polls_up,
                st.polls_down,
                st.polls_abandoned,
                st.running.len(),
                st.overdue
            );
            if let (Some(c), Some(answers)) =
                (&st.cluster.coordinator, st.cluster.coordinator_answers)
            {
                let _ = writeln!(
                    out,
                    "  {c}: {}",
                    if answers { "answers" } else { "not answering" }
                );
            }
            for p in &st.running {
                let _ = writeln!(
                    out,
                    "    polling {:>6} {:<40} for {}",
                    p.device_id,
                    p.hostname,
                    age(now - p.started)
                );
            }
        }
        (None, Some(why)) => {
            let _ = writeln!(out, "  {why}");
        }
        (None, None) => {}
    }
    let _ = writeln!(out, "\nDispatcher nodes (poller_cluster)");
    if r.cluster.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for n in &r.cluster {
        let _ = writeln!(
            out,
            "  {}{} [{}] groups {} - last report {} ago ({})",
            n.poller_name,
            if n.master { " (master)" } else { "" },
            n.node_id,
            if n.poller_groups.is_empty() {
                "0"
            } else {
                &n.poller_groups
            },
            age(n.last_report_age as f64),
            n.poller_version
        );
        for q in &n.queues {
            let _ = writeln!(
                out,
                "    {:<10} {:>6} done, {:>8.0} worker-seconds per {} s, {} workers, {} waiting",
                q.poller_type, q.devices, q.worker_seconds, q.frequency, q.workers, q.depth
            );
        }
    }
    if !r.cron_pollers.is_empty() {
        let _ = writeln!(out, "\nCron pollers (pollers)");
        for p in &r.cron_pollers {
            let _ = writeln!(
                out,
                "  {} - last run {} ago: {} devices in {:.1} s",
                p.poller_name,
                age(p.last_polled_age as f64),
                p.devices,
                p.time_taken
            );
        }
    }
    let _ = writeln!(
        out,
        "\nOverdue by more than one period ({} s): {}",
        r.poller_frequency, r.overdue_count
    );
    for d in &r.overdue {
        let _ = writeln!(out, "  {:>6} {:<40} {}", d.device_id, d.hostname, d.why);
    }
    if r.overdue_count > r.overdue.len() {
        let _ = writeln!(out, "  ... and {} more", r.overdue_count - r.overdue.len());
    }
    out
}

/// 75 -> "1m15s".
fn age(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_durations() {
        assert_eq!(age(4.4), "4s");
        assert_eq!(age(75.0), "1m15s");
        assert_eq!(age(7260.0), "2h01m");
        assert_eq!(age(-3.0), "0s");
    }
}
