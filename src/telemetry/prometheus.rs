//! The Prometheus endpoint (`metrics.listen`, off by default), through the
//! `metrics` crate and its Prometheus exporter. The counters the engine
//! keeps anyway (the SNMP transport's, the writers', the scheduler's) are
//! copied once a second by [`collect`]; durations and sizes are recorded
//! where they happen: a module's poll, a device's poll, a database commit,
//! an RRD batch, a fast-ping round, a cluster lock or queue event. With no
//! endpoint, no recorder is installed and each of those is a no-op.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tokio_util::sync::CancellationToken;

use crate::poller::engine::Engine;
use crate::scheduler::SchedulerStats;

/// Buckets of the `_seconds` histograms: an SNMP poll of a module takes
/// milliseconds, a device's poll seconds, a slow chassis minutes.
const SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Buckets of the batch-size histograms.
const SIZES: &[f64] = &[1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0];

/// Starts the endpoint on `listen` (`host:port`). Called once, inside the
/// runtime.
pub fn install(listen: &str) -> anyhow::Result<()> {
    let addr: std::net::SocketAddr = listen
        .parse()
        .map_err(|e| anyhow::anyhow!("metrics.listen {listen:?}: {e}"))?;
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)?
        .set_buckets_for_metric(Matcher::Suffix("_size".into()), SIZES)?
        .install()
        .map_err(|e| anyhow::anyhow!("cannot serve metrics on {listen}: {e}"))?;
    describe();
    tracing::info!(listen, "Prometheus metrics served at /metrics");
    Ok(())
}

fn describe() {
    describe_histogram!(
        "ironpoll_module_poll_seconds",
        metrics::Unit::Seconds,
        "Time one module took to poll one device."
    );
    describe_counter!("ironpoll_module_errors_total", "Module polls that failed.");
    describe_histogram!(
        "ironpoll_device_poll_seconds",
        metrics::Unit::Seconds,
        "Time one device's poll took, all modules."
    );
    describe_counter!(
        "ironpoll_device_polls_total",
        "Device polls ended, by result (up, down, abandoned)."
    );
    describe_gauge!("ironpoll_polls_in_flight", "Device polls running now.");
    describe_gauge!(
        "ironpoll_devices_overdue",
        "Devices not started within their polling period."
    );
    describe_gauge!(
        "ironpoll_devices_waiting",
        "Due devices waiting for room in the poll window."
    );
    describe_counter!(
        "ironpoll_snmp_requests_total",
        "SNMP requests sent, retries included."
    );
    describe_counter!(
        "ironpoll_snmp_retries_total",
        "SNMP requests sent again after a timeout."
    );
    describe_counter!(
        "ironpoll_snmp_timeouts_total",
        "SNMP requests that got no answer after every retry."
    );
    describe_counter!("ironpoll_snmp_replies_total", "SNMP replies received.");
    describe_counter!(
        "ironpoll_snmp_drops_total",
        "SNMP datagrams dropped, by kind."
    );
    describe_gauge!(
        "ironpoll_snmp_requests_in_flight",
        "SNMP requests waiting for a reply now."
    );
    describe_counter!(
        "ironpoll_rrd_updates_total",
        "RRD updates, by outcome (received, written, rejected, dropped)."
    );
    describe_counter!(
        "ironpoll_rrd_batches_total",
        "Batches written to rrdcached or the RRD files."
    );
    describe_histogram!("ironpoll_rrd_batch_size", "RRD updates in one batch.");
    describe_gauge!(
        "ironpoll_rrd_buffered_updates",
        "RRD updates held while rrdcached cannot take them (the outage buffer)."
    );
    describe_gauge!(
        "ironpoll_sink_backlog",
        "Units handed to a writer and not yet written (sink: database rows, rrdcached updates)."
    );
    describe_counter!(
        "ironpoll_db_statements_total",
        "Statements sent to the database."
    );
    describe_counter!(
        "ironpoll_db_rows_read_total",
        "Rows read from the database."
    );
    describe_counter!(
        "ironpoll_db_rows_written_total",
        "Rows written by the poll writer."
    );
    describe_counter!(
        "ironpoll_db_commits_total",
        "Transactions the poll writer committed."
    );
    describe_histogram!(
        "ironpoll_db_commit_seconds",
        metrics::Unit::Seconds,
        "Time to write and commit one batch of polls."
    );
    describe_counter!(
        "ironpoll_db_refused_polls_total",
        "Polls whose rows the database refused, retried row by row."
    );
    describe_counter!(
        "ironpoll_db_dropped_polls_total",
        "Polls whose rows were dropped: the buffer was full while the database was down."
    );
    describe_counter!(
        "ironpoll_db_hung_commits_total",
        "Commits abandoned at their deadline and retried."
    );
    describe_counter!(
        "ironpoll_leases_total",
        "Device leases and cluster locks asked for, by result (taken, held elsewhere, failed)."
    );
    describe_counter!(
        "ironpoll_cluster_queued_total",
        "Jobs the master put on LibreNMS's Redis queues, by queue type."
    );
    describe_counter!(
        "ironpoll_cluster_popped_total",
        "Jobs this node took from LibreNMS's Redis queues, by queue type."
    );
    describe_gauge!(
        "ironpoll_cluster_master",
        "1 while this node is the dispatcher cluster's master."
    );
    describe_counter!(
        "ironpoll_fastping_echoes_total",
        "Fast-ping echo requests, by outcome (answered, lost)."
    );
    describe_histogram!(
        "ironpoll_fastping_round_seconds",
        metrics::Unit::Seconds,
        "Time one fast-ping round took."
    );
}

/// Copies the engine's and the scheduler's counters into the recorder
/// every second, until `stop`.
pub async fn collect(engine: Arc<Engine>, stats: Arc<SchedulerStats>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        copy(&engine, &stats);
    }
}

fn copy(engine: &Engine, stats: &SchedulerStats) {
    let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    for (result, n) in [
        ("up", l(&stats.up)),
        ("down", l(&stats.down)),
        ("abandoned", l(&stats.abandoned)),
    ] {
        counter!("ironpoll_device_polls_total", "result" => result).absolute(n);
    }
    gauge!("ironpoll_polls_in_flight").set(engine.polls_in_flight() as f64);
    gauge!("ironpoll_devices_overdue").set(l(&stats.overdue) as f64);
    gauge!("ironpoll_devices_waiting").set(l(&stats.pending) as f64);

    let snmp = engine.env.client.stats();
    counter!("ironpoll_snmp_requests_total").absolute(snmp.sent);
    counter!("ironpoll_snmp_retries_total").absolute(snmp.retransmitted);
    counter!("ironpoll_snmp_timeouts_total").absolute(snmp.timed_out);
    counter!("ironpoll_snmp_replies_total").absolute(snmp.received);
    for (kind, n) in [
        ("unknown_request_id", snmp.dropped_unknown_id),
        ("wrong_source", snmp.dropped_wrong_source),
        ("unparsable", snmp.dropped_unparsable),
        ("queue_full", snmp.dropped_queue_full),
        ("receive_error", snmp.receive_errors),
        ("tcp_error", snmp.tcp_errors),
    ] {
        counter!("ironpoll_snmp_drops_total", "kind" => kind).absolute(n);
    }
    gauge!("ironpoll_snmp_requests_in_flight").set(engine.env.client.pending_requests() as f64);

    let rrd = engine.rrd.stats();
    for (outcome, n) in [
        ("received", rrd.received),
        ("written", rrd.written),
        ("rejected", rrd.rejected),
        ("dropped", rrd.dropped),
    ] {
        counter!("ironpoll_rrd_updates_total", "outcome" => outcome).absolute(n);
    }
    counter!("ironpoll_rrd_batches_total").absolute(rrd.batches);
    gauge!("ironpoll_rrd_buffered_updates").set(rrd.buffered as f64);
    for backlog in engine.backlogs() {
        gauge!("ironpoll_sink_backlog", "sink" => backlog.sink()).set(backlog.held().0 as f64);
    }

    let db = engine.db.stats();
    counter!("ironpoll_db_statements_total").absolute(l(&db.statements));
    counter!("ironpoll_db_rows_read_total").absolute(l(&db.rows_read));
    let w = engine.db_writer.stats();
    counter!("ironpoll_db_rows_written_total").absolute(l(&w.rows));
    counter!("ironpoll_db_commits_total").absolute(l(&w.flushes));
    counter!("ironpoll_db_refused_polls_total").absolute(l(&w.refused_polls));
    counter!("ironpoll_db_dropped_polls_total").absolute(l(&w.dropped_polls));
    counter!("ironpoll_db_hung_commits_total").absolute(l(&w.hung_commits));
}
