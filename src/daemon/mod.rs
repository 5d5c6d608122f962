//! `ironpoll run`: the wiring of the poller daemon and its shutdown order.
//! SIGTERM or SIGINT stops the scheduler and the fast-ping loop; polls in
//! flight finish (within a bound), as does a fast-ping round; both writers
//! flush; the process exits. Under systemd the daemon speaks the notify
//! protocol ([`systemd`]); SIGHUP reads the configuration again
//! ([`reload`]).

pub mod reload;
pub mod status_file;
pub mod systemd;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cluster::Node;
use crate::config::{Coordination, Mode, Settings};
use crate::coord::MemoryLeases;
use crate::coord::memcached::Memcached;
use crate::coord::wrapper::WrapperCluster;
use crate::db::Db;
use crate::db::cluster::{NodeReport, QueueStats, report_node};
use crate::poller::engine::Engine;
use crate::scheduler::{Scheduler, SchedulerOptions, SchedulerStats};

pub fn scheduler_options(settings: &Settings) -> SchedulerOptions {
    let librenms = settings.mode == Mode::Librenms;
    SchedulerOptions {
        frequency: Duration::from_secs(u64::from(settings.poller.frequency)),
        down_retry: Duration::from_secs(u64::from(settings.poller.down_retry)),
        concurrency: settings.poller.concurrency,
        deadline: Duration::from_secs(u64::from(settings.device_deadline_secs())),
        tick: Duration::from_secs(1),
        groups: librenms.then(|| settings.poller.groups.clone()),
        require_discovery: librenms,
        drain: Duration::from_secs(30),
    }
}

/// Runs the daemon until a signal, or until `stop` is cancelled.
pub async fn run(settings: Settings, db: Db, stop: CancellationToken) -> anyhow::Result<()> {
    run_with_reload(settings, db, stop, None).await
}

/// [`run`], reading the configuration again with `reload` on SIGHUP.
pub async fn run_with_reload(
    settings: Settings,
    db: Db,
    stop: CancellationToken,
    reload: Option<reload::Reload>,
) -> anyhow::Result<()> {
    let boot_settings = settings.clone();
    let settings = Arc::new(settings);
    if !settings.log_filter.is_empty()
        && let Err(e) = crate::telemetry::set_filter(&settings.log_filter)
    {
        tracing::warn!(error = %e, "log.filter not applied");
    }
    if !settings.metrics_listen.is_empty() {
        crate::telemetry::prometheus::install(&settings.metrics_listen)?;
    }
    let engine = Engine::start(settings.clone(), db.clone()).await?;
    let mut scheduler = Scheduler::new(
        engine.clone(),
        Arc::new(MemoryLeases::new()),
        scheduler_options(&settings),
    );
    let wrapper_cluster = settings.coordination() == Coordination::Wrapper;
    let mut wrapper: Option<Arc<WrapperCluster>> = None;
    if wrapper_cluster {
        // No Redis: the cluster, if any, is poller-wrapper.py's, shared
        // through memcached.
        let mc = Memcached::new(
            &settings.memcached.host,
            settings.memcached.port,
            Duration::from_secs(2),
        );
        tracing::info!(
            memcached = mc.addr(),
            step = settings.rrd.step,
            "distributed polling without Redis: polling as a poller-wrapper.py node"
        );
        let cluster = Arc::new(WrapperCluster::new(
            mc,
            &settings.distributed_poller_name,
            settings.rrd.step,
        ));
        wrapper = Some(cluster.clone());
        scheduler = scheduler.in_wrapper_cluster(cluster);
    }
    tracing::info!(
        mode = %settings.mode,
        frequency = settings.poller.frequency,
        concurrency = settings.poller.concurrency,
        rrd = if settings.rrd.rrdcached.is_empty() { "local files" } else { settings.rrd.rrdcached.as_str() },
        "ironpoll poller started"
    );
    // In a dispatcher cluster fast ping is the ping queues' work instead.
    let dispatcher_cluster = settings.coordination() == Coordination::Dispatcher;
    let fast_ping = if settings.fast_ping.enable && settings.icmp_check && !dispatcher_cluster {
        match crate::poller::fastping::FastPing::new(engine.clone()) {
            Some(fp) => Some(tokio::spawn(fp.run(stop.clone(), |_| {}))),
            None => {
                tracing::warn!("fast ping is off: this process may not send ICMP echoes");
                None
            }
        }
    } else {
        None
    };
    // With Redis, a node of LibreNMS's dispatcher cluster.
    let cluster_node = if dispatcher_cluster {
        Some(Node::new(settings.clone(), engine.clone(), db.clone()).await?)
    } else {
        None
    };
    // A wrapper node reports in `pollers` after each step instead.
    let reporter = if wrapper_cluster {
        None
    } else if settings.node_id.is_empty() {
        if settings.mode == Mode::Librenms {
            tracing::warn!(
                "NODE_ID is not set: this node does not report itself in poller_cluster"
            );
        }
        None
    } else {
        let (settings, stats) = match &cluster_node {
            Some(n) => (n.settings().clone(), n.stats()),
            None => (settings.clone(), scheduler.stats()),
        };
        Some(tokio::spawn(report_node_every_period(
            db.clone(),
            settings,
            stats,
            cluster_node.clone(),
            stop.clone(),
        )))
    };
    let signals = stop.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: shutting down");
        signals.cancel();
    });
    let node_stats = match &cluster_node {
        Some(n) => n.stats(),
        None => scheduler.stats(),
    };
    let view: Arc<dyn Fn() -> status_file::ClusterView + Send + Sync> =
        match (&cluster_node, &wrapper) {
            (Some(n), _) => {
                let n = n.clone();
                Arc::new(move || n.view())
            }
            (None, Some(w)) => {
                let w = w.clone();
                Arc::new(move || w.view())
            }
            (None, None) => Arc::new(status_file::ClusterView::default),
        };
    let observers = start_observers(
        &settings,
        boot_settings,
        &engine,
        node_stats,
        view,
        reload,
        &stop,
    );
    match cluster_node {
        Some(node) => {
            node.run(stop, scheduler_options(&settings).drain).await;
            for p in engine.flush().await {
                tracing::error!("at shutdown: {p}");
            }
        }
        None => scheduler.run(stop).await,
    }
    if let Some(task) = reporter {
        let _ = task.await;
    }
    if let Some(task) = fast_ping {
        // Its round in progress ends with its rows written.
        let _ = task.await;
    }
    for p in engine.finish().await {
        tracing::error!("at shutdown: {p}");
    }
    // The status file removed, STOPPING sent.
    for task in observers {
        let _ = task.await;
    }
    db.close().await;
    tracing::info!("ironpoll poller stopped");
    Ok(())
}

/// What watches the daemon from beside the poll path: the status file,
/// the Prometheus collector, systemd's notifications and SIGHUP. Each ends
/// when `stop` is cancelled; their tasks are waited for at the end.
fn start_observers(
    settings: &Arc<Settings>,
    boot_settings: Settings,
    engine: &Arc<Engine>,
    stats: Arc<SchedulerStats>,
    view: Arc<dyn Fn() -> status_file::ClusterView + Send + Sync>,
    reload: Option<reload::Reload>,
    stop: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if !settings.status_file.is_empty() {
        tasks.push(tokio::spawn(status_file::run(
            settings.status_file.clone().into(),
            engine.clone(),
            stats.clone(),
            settings.coordination().to_string(),
            view,
            stop.clone(),
        )));
    }
    if !settings.metrics_listen.is_empty() {
        tasks.push(tokio::spawn(crate::telemetry::prometheus::collect(
            engine.clone(),
            stats.clone(),
            stop.clone(),
        )));
    }
    let notifier = systemd::Notifier::from_env().map(Arc::new);
    if let Some(n) = &notifier {
        tasks.push(tokio::spawn(systemd::run(
            n.clone(),
            engine.clone(),
            stats,
            stop.clone(),
        )));
    }
    if let Some(reload) = reload {
        tasks.push(tokio::spawn(reload::on_sighup(
            reload,
            boot_settings,
            engine.clone(),
            notifier,
            stop.clone(),
        )));
    }
    tasks
}

/// Reports this node in `poller_cluster` and `poller_cluster_stats` at
/// start and then on every poller-frequency boundary of the Unix clock, as
/// LibreNMS's dispatcher does, so that LibreNMS's poller page and
/// `validate.php` see it. `master` is 1 while this node is the master of
/// a dispatcher cluster, and its queue depth is then what waits in Redis
/// for its groups; a node of its own reports master 0 and the devices due
/// and waiting.
async fn report_node_every_period(
    db: Db,
    settings: Arc<Settings>,
    stats: Arc<SchedulerStats>,
    node: Option<Arc<Node>>,
    stop: CancellationToken,
) {
    let frequency = u64::from(settings.poller.frequency.max(1));
    let groups = settings
        .poller
        .groups
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let (mut done_before, mut micros_before) = (0u64, 0u64);
    let mut failing = false;
    loop {
        let done = stats.up.load(Ordering::Relaxed) + stats.down.load(Ordering::Relaxed);
        let micros = stats.poll_micros.load(Ordering::Relaxed);
        let depth = stats.pending.load(Ordering::Relaxed);
        let (master, queues) = match &node {
            Some(n) => (n.is_master(), n.queue_stats().await),
            None => (
                false,
                vec![QueueStats {
                    poller_type: "poller",
                    depth,
                    devices: done - done_before,
                    worker_seconds: (micros - micros_before) as f64 / 1e6,
                    workers: settings.poller.concurrency as u64,
                    frequency,
                }],
            ),
        };
        let report = NodeReport {
            node_id: settings.node_id.clone(),
            poller_name: settings.distributed_poller_name.clone(),
            poller_version: format!("ironpoll {}", env!("CARGO_PKG_VERSION")),
            poller_groups: groups.clone(),
            master,
            queues,
        };
        match report_node(&db, &report).await {
            Ok(()) => {
                if failing {
                    tracing::warn!("this node's poller_cluster report is written again");
                }
                failing = false;
                (done_before, micros_before) = (done, micros);
            }
            Err(e) => {
                if !failing {
                    tracing::error!(error = %e, "cannot report this node in poller_cluster");
                }
                failing = true;
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let next = Duration::from_secs((now.as_secs() / frequency + 1) * frequency);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(next.saturating_sub(now)) => {}
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
