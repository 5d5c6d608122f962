//! Engine benchmark: poller CPU per varbind and per GET against a simulated
//! fleet, side by side with net-snmp's `snmpbulkwalk` run once per walk (one
//! process per query, the way LibreNMS polls) against the same fleet.
//!
//! The fleet runs in its own `ironpoll sim` process, so this process's CPU
//! (getrusage RUSAGE_SELF) is the poller's alone; the simulator's CPU is read
//! from /proc, and snmpbulkwalk's from RUSAGE_CHILDREN.
//!
//! Run: `cargo bench --bench engine -- [--devices N] [--latency-ms MS]
//!       [--rounds R] [--sample S] [--max-repetitions M]`

/// The allocator the `ironpoll` binary uses, so the figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/measure.rs"]
mod measure;
use measure::*;

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ironpoll::snmp::{ClientOptions, Credentials, SessionOptions, SnmpClient, oid};
use ironpoll::telemetry::process_cpu_seconds;

struct Args {
    devices: usize,
    latency_ms: u64,
    rounds: usize,
    sample: usize,
    max_repetitions: u32,
}

fn args() -> Args {
    let mut a = Args {
        devices: 5000,
        latency_ms: 20,
        rounds: 20,
        sample: 200,
        max_repetitions: 25,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let v = || {
            argv.get(i + 1)
                .and_then(|s| s.parse::<u64>().ok())
                .expect("numeric value")
        };
        match argv[i].as_str() {
            "--devices" => a.devices = v() as usize,
            "--latency-ms" => a.latency_ms = v(),
            "--rounds" => a.rounds = v() as usize,
            "--sample" => a.sample = v() as usize,
            "--max-repetitions" => a.max_repetitions = v() as u32,
            // cargo bench passes --bench; ignore what is not ours.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sim(a: &Args, dir: &std::path::Path) -> (Sim, Vec<SocketAddr>) {
    let targets = dir.join("fleet.txt");
    let child = Command::new(env!("CARGO_BIN_EXE_ironpoll"))
        .args([
            "sim",
            "--fleet",
            &a.devices.to_string(),
            "--profile",
            "switch48",
        ])
        .args(["--fleet-address", "127.90.0.1", "--fleet-port", "16161"])
        .args(["--fault", &format!("latency={}ms", a.latency_ms)])
        .arg("--targets-out")
        .arg(&targets)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start ironpoll sim");
    let sim = Sim(child);
    let started = Instant::now();
    while !targets.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "simulator did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let addrs = std::fs::read_to_string(&targets)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    (sim, addrs)
}

struct Phase {
    varbinds: u64,
    pdus: u64,
    wall: f64,
    cpu: f64,
    sim_cpu: f64,
    peak_in_flight: usize,
}

fn watch_in_flight(client: &SnmpClient) -> (Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let peak = Arc::new(AtomicUsize::new(0));
    let (c, p) = (client.clone(), peak.clone());
    let task = tokio::spawn(async move {
        loop {
            p.fetch_max(c.pending_requests(), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    (peak, task)
}

/// Runs the jobs that `spawn` puts into the set, all at once, and measures
/// them: each job returns the varbinds it got.
async fn measure(
    client: &SnmpClient,
    sim_pid: u32,
    spawn: impl FnOnce(&mut tokio::task::JoinSet<Result<u64, ironpoll::snmp::Error>>),
) -> Phase {
    let (peak, watcher) = watch_in_flight(client);
    let (cpu0, sim0, sent0) = (process_cpu_seconds(), cpu_of(sim_pid), client.stats().sent);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    spawn(&mut tasks);
    let mut varbinds = 0;
    while let Some(r) = tasks.join_next().await {
        varbinds += r.expect("task").expect("SNMP");
    }
    let wall = started.elapsed().as_secs_f64();
    watcher.abort();
    Phase {
        varbinds,
        pdus: client.stats().sent - sent0,
        wall,
        cpu: process_cpu_seconds() - cpu0,
        sim_cpu: cpu_of(sim_pid) - sim0,
        peak_in_flight: peak.load(Ordering::Relaxed),
    }
}

fn sessions(
    client: &SnmpClient,
    addrs: &[SocketAddr],
    opts: SessionOptions,
) -> Vec<ironpoll::snmp::Session> {
    addrs
        .iter()
        .map(|a| client.session_at(*a, a.to_string(), Credentials::v2c("public"), opts.clone()))
        .collect()
}

async fn walk_phase(a: &Args, client: &SnmpClient, addrs: &[SocketAddr], sim_pid: u32) -> Phase {
    let opts = SessionOptions {
        timeout: Duration::from_secs(5),
        retries: 2,
        max_repetitions: a.max_repetitions,
        ..SessionOptions::default()
    };
    let sessions = sessions(client, addrs, opts);
    measure(client, sim_pid, |tasks| {
        for s in &sessions {
            for t in [oid("1.3.6.1.2.1.2.2"), oid("1.3.6.1.2.1.31.1.1")] {
                let s = s.clone();
                // Count, do not keep: the walk hands each varbind over as it arrives.
                tasks.spawn(async move {
                    let mut n = 0u64;
                    s.walk_with(&t, |_vb| n += 1).await.map(|_| n)
                });
            }
        }
    })
    .await
}

async fn get_phase(a: &Args, client: &SnmpClient, addrs: &[SocketAddr], sim_pid: u32) -> Phase {
    let opts = SessionOptions {
        timeout: Duration::from_secs(5),
        retries: 2,
        ..SessionOptions::default()
    };
    let sessions = sessions(client, addrs, opts);
    measure(client, sim_pid, |tasks| {
        for s in &sessions {
            // Two GET loops per device: the per-agent limit of two, all used.
            for column in [3u32, 5] {
                let (s, rounds) = (s.clone(), a.rounds);
                tasks.spawn(async move {
                    let name = [oid("1.3.6.1.2.1.1").join(&[column, 0])];
                    for _ in 0..rounds {
                        s.get(&name).await?;
                    }
                    Ok(rounds as u64)
                });
            }
        }
    })
    .await
}

/// snmpbulkwalk once per table per device, 32 processes at a time.
fn net_snmp_phase(a: &Args, addrs: &[SocketAddr], max_repetitions: u32) -> (u64, u64, f64, f64) {
    let sample: Vec<SocketAddr> = addrs
        .iter()
        .step_by((addrs.len() / a.sample.max(1)).max(1))
        .take(a.sample)
        .copied()
        .collect();
    let jobs: Vec<(SocketAddr, &str)> = sample
        .iter()
        .flat_map(|s| [(*s, "1.3.6.1.2.1.2.2"), (*s, "1.3.6.1.2.1.31.1.1")])
        .collect();
    let jobs = Arc::new(std::sync::Mutex::new(jobs));
    let varbinds = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let processes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let cpu0 = children_cpu_seconds();
    let started = Instant::now();
    let workers: Vec<_> = (0..32)
        .map(|_| {
            let (jobs, varbinds, processes) = (jobs.clone(), varbinds.clone(), processes.clone());
            std::thread::spawn(move || {
                loop {
                    let Some((addr, table)) = jobs.lock().unwrap().pop() else {
                        return;
                    };
                    let mut child = Command::new("snmpbulkwalk")
                        .args(["-v2c", "-c", "public", "-m", "", "-On", "-t", "5"])
                        .arg(format!("-Cr{max_repetitions}"))
                        .arg(addr.to_string())
                        .arg(table)
                        .stdout(Stdio::piped())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("snmpbulkwalk (apt-get install snmp)");
                    let mut out = String::new();
                    child
                        .stdout
                        .take()
                        .unwrap()
                        .read_to_string(&mut out)
                        .unwrap();
                    child.wait().unwrap();
                    varbinds.fetch_add(out.lines().count() as u64, Ordering::Relaxed);
                    processes.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    (
        varbinds.load(Ordering::Relaxed),
        processes.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        children_cpu_seconds() - cpu0,
    )
}

fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let (sim, addrs) = start_sim(&a, dir.path());
    let sim_pid = sim.0.id();
    println!(
        "fleet: {} simulated switch48 devices (53 interfaces each), latency {} ms, in a separate `ironpoll sim` process",
        addrs.len(),
        a.latency_ms
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (walk, get) = runtime.block_on(async {
        let client = SnmpClient::new(ClientOptions::default()).unwrap();
        let walk = walk_phase(&a, &client, &addrs, sim_pid).await;
        let get = get_phase(&a, &client, &addrs, sim_pid).await;
        (walk, get)
    });
    let rss = peak_rss_mb();
    println!(
        "\n| phase | varbinds | PDUs | varbinds/PDU | wall s | poller CPU s | poller µs/varbind | poller µs/PDU | peak in flight | simulator CPU s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, p) in [
        ("walk ifTable+ifXTable (GETBULK)", &walk),
        ("single-varbind GET", &get),
    ] {
        println!(
            "| {name} | {} | {} | {:.1} | {:.2} | {:.2} | {:.3} | {:.2} | {} | {:.2} |",
            p.varbinds,
            p.pdus,
            p.varbinds as f64 / p.pdus as f64,
            p.wall,
            p.cpu,
            p.cpu * 1e6 / p.varbinds as f64,
            p.cpu * 1e6 / p.pdus as f64,
            p.peak_in_flight,
            p.sim_cpu
        );
    }
    println!("\npoller peak RSS: {rss:.1} MB");
    let ours = walk.cpu * 1e6 / walk.varbinds as f64;
    for reps in [a.max_repetitions, 10] {
        let (vb, procs, wall, cpu) = net_snmp_phase(&a, &addrs, reps);
        let theirs = cpu * 1e6 / vb as f64;
        println!(
            "snmpbulkwalk -Cr{reps}, one process per table, {} devices: {vb} varbinds from {procs} processes in {wall:.2} s wall, {cpu:.2} s CPU = {theirs:.2} µs/varbind; ironpoll {ours:.3} µs/varbind; ratio {:.1}x",
            procs / 2,
            theirs / ours
        );
    }
}
