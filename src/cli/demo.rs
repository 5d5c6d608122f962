//! `ironpoll demo`: a simulated fleet in this process, walked by the engine.
//!
//! Needs no server and no privileges: the fleet listens on 127.x.y.z
//! addresses, a few of its devices are dead and every one answers after a
//! delay, and the shared-socket client walks their interface tables.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;

use super::sim_cmd::parse_mix;
use crate::sim::{FleetConfig, FleetLayout, SimConfig, Simulator, process_cpu_seconds};
use crate::snmp::{ClientOptions, Credentials, SessionOptions, SnmpClient, oid};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Devices in the simulated fleet
    #[arg(long, default_value_t = 300)]
    devices: usize,
    /// Fleet members and weights
    #[arg(long, default_value = "switch48=75,linux=20,chassis500=5")]
    profile: String,
    /// Share of devices that never answer, in percent
    #[arg(long, default_value_t = 3.0)]
    dead_percent: f64,
    /// Port of the fleet's addresses (0: any free port)
    #[arg(long, default_value_t = 0)]
    port: u16,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let mut faults = vec!["latency=1ms..10ms".parse().map_err(anyhow::Error::msg)?];
    if args.dead_percent > 0.0 {
        faults.push(
            format!("{}%:silence", args.dead_percent)
                .parse()
                .map_err(anyhow::Error::msg)?,
        );
    }
    let sim = Simulator::start(SimConfig {
        fleet: Some(FleetConfig {
            size: args.devices.max(1),
            mix: parse_mix(&args.profile)?,
            layout: FleetLayout::Addresses {
                first: "127.42.0.1".parse()?,
                port: args.port,
            },
            community: "public".into(),
        }),
        faults,
        ..SimConfig::default()
    })
    .await
    .context("cannot start the simulated fleet")?;
    let stdout = std::io::stdout();
    writeln!(
        stdout.lock(),
        "simulating {} devices on {} .. {} (3 profiles, latency 1-10 ms, {}% dead)",
        sim.fleet.len(),
        sim.fleet[0].addr,
        sim.fleet[sim.fleet.len() - 1].addr,
        args.dead_percent
    )?;
    let client = SnmpClient::new(ClientOptions::default())?;
    let options = SessionOptions {
        timeout: Duration::from_millis(500),
        retries: 1,
        max_repetitions: 25,
        ..SessionOptions::default()
    };
    let done = Arc::new(AtomicUsize::new(0));
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for device in &sim.fleet {
        let session = client.session_at(
            device.addr,
            device.name.clone(),
            Credentials::v2c(&device.community),
            options.clone(),
        );
        let done = done.clone();
        tasks.spawn(async move {
            let begun = Instant::now();
            let mut varbinds = 0;
            let mut result = Ok(());
            for table in ["1.3.6.1.2.1.2.2", "1.3.6.1.2.1.31.1.1"] {
                match session.walk(&oid(table)).await {
                    Ok(v) => varbinds += v.len(),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            done.fetch_add(1, Ordering::Relaxed);
            (result, varbinds, begun.elapsed())
        });
    }
    let total = sim.fleet.len();
    let progress = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                eprintln!("  walked {}/{total} devices", done.load(Ordering::Relaxed));
            }
        })
    };
    let (mut ok, mut failed, mut varbinds) = (0usize, 0usize, 0usize);
    let mut times = Vec::new();
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let (result, n, elapsed) = joined.context("walk task failed")?;
        varbinds += n;
        match result {
            Ok(()) => {
                ok += 1;
                times.push(elapsed.as_secs_f64() * 1e3);
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    progress.abort();
    let wall = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu_before;
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
    let stats = client.stats();
    let mut out = stdout.lock();
    writeln!(
        out,
        "devices answering: {ok}, not answering: {failed} (the simulated dead ones)"
    )?;
    writeln!(
        out,
        "varbinds walked: {varbinds} (ifTable and ifXTable) in {wall:.2} s"
    )?;
    writeln!(out, "per answering device: median {median:.1} ms")?;
    writeln!(
        out,
        "SNMP requests: {} sent, {} retransmitted, {} replies; process CPU {cpu:.2} s (simulator and poller together)",
        stats.sent, stats.retransmitted, stats.received
    )?;
    if let Some(e) = first_error {
        writeln!(out, "first failure: {e}")?;
    }
    Ok(ExitCode::SUCCESS)
}
