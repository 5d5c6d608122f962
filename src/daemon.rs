//! `ironpoll run`: the wiring of the poller daemon and its shutdown order.
//! SIGTERM or SIGINT stops the scheduler and the fast-ping loop; polls in
//! flight finish (within a bound), as does a fast-ping round; both writers
//! flush; the process exits.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{Mode, Settings};
use crate::coord::MemoryLeases;
use crate::db::Db;
use crate::poller::engine::Engine;
use crate::scheduler::{Scheduler, SchedulerOptions};

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
    let settings = Arc::new(settings);
    let engine = Arc::new(Engine::start(settings.clone(), db.clone()).await?);
    let scheduler = Scheduler::new(
        engine.clone(),
        Arc::new(MemoryLeases::new()),
        scheduler_options(&settings),
    );
    tracing::info!(
        mode = %settings.mode,
        frequency = settings.poller.frequency,
        concurrency = settings.poller.concurrency,
        rrd = if settings.rrd.rrdcached.is_empty() { "local files" } else { settings.rrd.rrdcached.as_str() },
        "ironpoll poller started"
    );
    let fast_ping = if settings.fast_ping.enable && settings.icmp_check {
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
    let signals = stop.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: shutting down");
        signals.cancel();
    });
    scheduler.run(stop).await;
    if let Some(task) = fast_ping {
        // Its round in progress ends with its rows written.
        let _ = task.await;
    }
    match Arc::try_unwrap(engine) {
        Ok(engine) => {
            for p in engine.finish().await {
                tracing::error!("at shutdown: {p}");
            }
        }
        Err(engine) => {
            for p in engine.flush().await {
                tracing::error!("at shutdown: {p}");
            }
        }
    }
    db.close().await;
    tracing::info!("ironpoll poller stopped");
    Ok(())
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
