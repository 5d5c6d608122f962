//! `ironpoll demo`: the whole poller on one machine with no servers.
//!
//! A simulated fleet (generated profiles and the project's own recording,
//! some devices dead, some slow) runs as a child `ironpoll sim` process; the
//! devices go into an embedded SQLite store; ironpoll polls them for a few
//! cycles at a short step, writes RRD files locally, prints a summary and
//! renders a traffic graph.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::time::Instant;

use crate::config::{Layer, Mode, Source, resolve, settings_defaults};
use crate::db::devices::{self, NewDevice};
use crate::db::{Db, Statement};
use crate::modules::Selection;
use crate::poller::DeviceReport;
use crate::poller::engine::Engine;
use crate::telemetry::{cpu_seconds_of, process_cpu_seconds};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Devices in the simulated fleet
    #[arg(long, default_value_t = 120)]
    devices: usize,
    /// Poll cycles (rates need two)
    #[arg(long, default_value_t = 3)]
    cycles: u32,
    /// Seconds between cycles (the RRD step of the demo's files)
    #[arg(long, default_value_t = 10)]
    step: u32,
    /// Share of devices that never answer SNMP, in percent
    #[arg(long, default_value_t = 3.0)]
    dead_percent: f64,
    /// Share of devices that answer slowly (20-50 ms), in percent
    #[arg(long, default_value_t = 10.0)]
    slow_percent: f64,
    /// Directory for the store, the RRD files and the graph (emptied first)
    #[arg(long, default_value = "ironpoll-demo")]
    dir: PathBuf,
}

/// The project's own recording, served as one of the fleet's members.
const RECORDINGS: &str = "fixtures/recordings";

/// Small RRAs for the demo's files: 20 minutes of steps. LibreNMS's
/// default RRAs make each port file about 2 MB, which on a demo fleet
/// means gigabytes written in a minute.
const DEMO_RRA: &str = "RRA:AVERAGE:0.5:1:120 RRA:MAX:0.5:1:120";

/// Device deadline in the demo: a 500-port chassis at 10 ms per PDU needs
/// a few seconds; a poll still running after this is abandoned and counted.
const DEMO_DEADLINE: &str = "30";

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if args.devices == 0 || args.cycles == 0 || args.step == 0 {
        bail!("--devices, --cycles and --step must be positive");
    }
    prepare_dir(&args.dir)?;
    let mut out = std::io::stdout();
    let recordings = Path::new(RECORDINGS).join("linux-snmpd.snmprec").is_file();
    // Weights that add up to 100, so they read as percentages.
    let mix = if recordings {
        "switch48=63,linux=25,chassis500=2,rec:linux-snmpd=10"
    } else {
        "switch48=68,linux=30,chassis500=2"
    };
    let mix_label = mix.replace('=', " ").replace(',', "%, ") + "%";
    let port = free_udp_port()?;
    let targets = args.dir.join("targets.txt");
    let mut sim = Sim::start(&args, mix, port, &targets, recordings)?;
    let fleet = sim.wait_ready(&targets)?;
    writeln!(
        out,
        "ironpoll demo: {} simulated devices on {} .. {} ({mix_label}); {}% never answer, {}% answer slowly",
        fleet.len(),
        fleet[0].0,
        fleet[fleet.len() - 1].0,
        args.dead_percent,
        args.slow_percent
    )?;

    // The embedded store and its devices.
    let db_path = args.dir.join("ironpoll.db");
    let db = Db::open_sqlite(&db_path.display().to_string(), 2).await?;
    db.create_schema().await?;
    for (addr, community, name) in &fleet {
        let device_id = devices::add(
            &db,
            &NewDevice {
                hostname: addr.ip().to_string(),
                snmpver: "v2c".into(),
                community: Some(community.clone()),
                port: addr.port(),
                transport: "udp".into(),
                ..NewDevice::default()
            },
        )
        .await?;
        // What LibreNMS's discovery would have found on the device, so
        // that processors, memory, storage and sensors are polled too.
        let profile = name
            .rsplit_once('-')
            .and_then(|(label, _)| label.parse::<crate::sim::profile::Profile>().ok());
        if let Some(profile) = profile {
            crate::db::inventory::insert(&db, device_id, &profile.discovered()).await?;
        }
    }
    let step = args.step.to_string();
    let heartbeat = (args.step * 2).to_string();
    let rrd_dir = args.dir.join("rrd").display().to_string();
    let mut layer = Layer::new(Source::Flag, true);
    for (k, v) in [
        ("rrd_dir", rrd_dir.as_str()),
        ("rrd.step", step.as_str()),
        ("rrd.heartbeat", heartbeat.as_str()),
        ("service_poller_frequency", step.as_str()),
        ("snmp.timeout", "1"),
        ("snmp.retries", "1"),
        ("snmp.max_repeaters", "50"),
        ("rrd_rra", DEMO_RRA),
        ("poller.device_deadline", DEMO_DEADLINE),
        ("poller.concurrency", "256"),
    ] {
        layer.set(k, serde_json::Value::String(v.into()));
    }
    let mut settings = resolve(&[layer], settings_defaults(Mode::Standalone))?;
    let icmp = match crate::icmp::Pinger::new(0) {
        Ok(p) => format!("ICMP checks on a {} socket", p.socket_kind()),
        Err(_) => {
            settings.icmp_check = false;
            "ICMP checks off (this user may not send pings)".to_string()
        }
    };
    writeln!(
        out,
        "store {} (SQLite), RRD files under {rrd_dir}, step {} s; {icmp}",
        db_path.display(),
        args.step
    )?;
    let engine = Engine::start(Arc::new(settings), db.clone()).await?;

    let cpu_before = process_cpu_seconds();
    let sim_cpu_before = sim.cpu();
    let mut reports: Vec<DeviceReport> = Vec::new();
    let started = Instant::now();
    for cycle in 1..=args.cycles {
        let begun = Instant::now();
        let list = devices::find(&db, "all").await?;
        let total = list.len();
        let mut done = 0usize;
        let tty = std::io::stderr().is_terminal();
        let mut cycle_reports = Vec::with_capacity(total);
        engine
            .poll_devices(list, &Selection::Configured, 256, |r| {
                cycle_reports.push(r);
                done += 1;
                if tty && (done.is_multiple_of(10) || done == total) {
                    eprint!(
                        "\r  cycle {cycle}/{}: {done}/{total} devices polled",
                        args.cycles
                    );
                }
            })
            .await?;
        if tty {
            eprint!("\r");
        }
        let up = cycle_reports.iter().filter(|r| r.status).count();
        let abandoned = total - cycle_reports.len();
        write!(
            out,
            "  cycle {cycle}/{}: {total} devices polled in {:.1} s: {up} up, {} down",
            args.cycles,
            begun.elapsed().as_secs_f64(),
            cycle_reports.len() - up
        )?;
        if abandoned > 0 {
            write!(out, ", {abandoned} abandoned after {DEMO_DEADLINE} s")?;
        }
        writeln!(out)?;
        reports = cycle_reports;
        if cycle < args.cycles {
            let next = begun + Duration::from_secs(u64::from(args.step));
            tokio::time::sleep_until(next).await;
        }
    }
    let problems = engine.flush().await;
    let poller_cpu = process_cpu_seconds() - cpu_before;
    let sim_cpu = sim.cpu() - sim_cpu_before;
    let wall = started.elapsed().as_secs_f64();
    summary(
        &mut out,
        &db,
        &engine,
        &reports,
        fleet.len(),
        args.cycles,
        poller_cpu,
        sim_cpu,
        wall,
    )
    .await?;
    for p in problems {
        writeln!(out, "  not written: {p}")?;
    }
    match graph(&db, &args.dir, args.cycles, args.step).await {
        Ok(Some((png, what))) => writeln!(out, "graph: {} ({what})", png.display())?,
        Ok(None) => writeln!(out, "graph: no port with traffic to draw")?,
        Err(e) => writeln!(out, "graph: not drawn: {e}")?,
    }
    let _ = engine.finish().await;
    db.close().await;
    sim.stop();
    Ok(ExitCode::SUCCESS)
}

fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        // Only what a previous demo made.
        for name in [
            "ironpoll.db",
            "ironpoll.db-wal",
            "ironpoll.db-shm",
            "targets.txt",
            "traffic.png",
        ] {
            let _ = std::fs::remove_file(dir.join(name));
        }
        let _ = std::fs::remove_dir_all(dir.join("rrd"));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

fn free_udp_port() -> anyhow::Result<u16> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").context("no free UDP port")?;
    Ok(s.local_addr()?.port())
}

/// The simulator child process.
struct Sim {
    child: Child,
}

impl Sim {
    fn start(
        args: &DemoArgs,
        mix: &str,
        port: u16,
        targets: &Path,
        recordings: bool,
    ) -> anyhow::Result<Sim> {
        let exe = std::env::current_exe().context("cannot find the ironpoll binary")?;
        let mut cmd = Command::new(exe);
        cmd.arg("sim")
            .args(["--fleet", &args.devices.to_string()])
            .args(["--profile", mix])
            .args(["--fleet-address", "127.42.0.1"])
            .args(["--fleet-port", &port.to_string()])
            .args(["--fault", "latency=1ms..10ms"])
            .arg("--targets-out")
            .arg(targets)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if args.slow_percent > 0.0 {
            cmd.args([
                "--fault",
                &format!("{}%:latency=20ms..50ms", args.slow_percent),
            ]);
        }
        if args.dead_percent > 0.0 {
            cmd.args(["--fault", &format!("{}%:silence", args.dead_percent)]);
        }
        if recordings {
            cmd.arg("--data").arg(RECORDINGS);
        }
        let child = cmd.spawn().context("cannot start the simulator")?;
        Ok(Sim { child })
    }

    /// Waits for the simulator's list of devices: (address, community, name).
    fn wait_ready(&mut self, targets: &Path) -> anyhow::Result<Vec<(SocketAddr, String, String)>> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(targets)
                && !text.is_empty()
            {
                return Ok(text
                    .lines()
                    .filter_map(|l| {
                        let mut p = l.split_whitespace();
                        Some((
                            p.next()?.parse().ok()?,
                            p.next()?.to_string(),
                            p.next()?.to_string(),
                        ))
                    })
                    .collect());
            }
            if let Some(status) = self.child.try_wait()? {
                let mut err = String::new();
                if let Some(e) = self.child.stderr.as_mut() {
                    let _ = std::io::Read::read_to_string(e, &mut err);
                }
                bail!("the simulator stopped ({status}): {}", err.trim());
            }
            if std::time::Instant::now() > deadline {
                bail!("the simulator did not start within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn cpu(&self) -> f64 {
        cpu_seconds_of(self.child.id()).map_or(0.0, |(u, s)| u + s)
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(clippy::too_many_arguments)]
async fn summary(
    out: &mut impl Write,
    db: &Db,
    engine: &Engine,
    last: &[DeviceReport],
    fleet: usize,
    cycles: u32,
    poller_cpu: f64,
    sim_cpu: f64,
    wall: f64,
) -> anyhow::Result<()> {
    let up: Vec<&DeviceReport> = last.iter().filter(|r| r.status).collect();
    let down = last.len() - up.len();
    let mut times: Vec<f64> = up.iter().map(|r| r.seconds).collect();
    times.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        times
            .get(((times.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let row = db
        .fetch(&Statement::new(
            "SELECT COUNT(*) AS ports, SUM(CASE WHEN `ifInOctets_rate` > 0 THEN 1 ELSE 0 END) AS busy, \
             SUM(`ifInOctets_rate`) AS inrate, SUM(`ifOutOctets_rate`) AS outrate, \
             SUM(CASE WHEN `ifOperStatus` = 'up' THEN 1 ELSE 0 END) AS oper_up FROM `ports` WHERE `deleted` = 0",
        ))
        .await?
        .remove(0);
    let events = db
        .fetch(&Statement::new("SELECT COUNT(*) AS n FROM `eventlog`"))
        .await?
        .remove(0)
        .i64("n")
        .unwrap_or(0);
    let rrd = engine.rrd.stats();
    let polls = fleet as f64 * f64::from(cycles);
    writeln!(out, "summary after {cycles} cycles ({wall:.1} s):")?;
    write!(
        out,
        "  devices: {} polled, {} up, {down} down (status_reason snmp: the simulated dead ones)",
        last.len(),
        up.len()
    )?;
    if fleet > last.len() {
        write!(
            out,
            ", {} abandoned after {DEMO_DEADLINE} s",
            fleet - last.len()
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "  ports: {} in the store, {} up, {} with traffic",
        row.i64("ports").unwrap_or(0),
        row.i64("oper_up").unwrap_or(0),
        row.i64("busy").unwrap_or(0)
    )?;
    writeln!(
        out,
        "  traffic (sum of port rates, last cycle): in {}, out {}",
        bits(row.f64("inrate").unwrap_or(0.0)),
        bits(row.f64("outrate").unwrap_or(0.0))
    )?;
    let ping = &engine.settings().ping;
    let icmp = if engine.settings().icmp_check {
        format!(
            "ICMP check of {} echoes {} ms apart (fping_options), then SNMP",
            ping.count, ping.interval_ms
        )
    } else {
        "SNMP only".to_string()
    };
    writeln!(
        out,
        "  time per device that answered ({icmp}): median {:.3} s, 95th percentile {:.3} s, max {:.3} s",
        pct(0.5),
        pct(0.95),
        times.last().copied().unwrap_or(0.0)
    )?;
    writeln!(
        out,
        "  CPU: poller {poller_cpu:.2} s for {polls:.0} device polls ({:.2} ms each); simulator {sim_cpu:.2} s (its own process)",
        poller_cpu * 1e3 / polls.max(1.0)
    )?;
    writeln!(
        out,
        "  written: {} RRD updates ({} files created), {events} eventlog rows (mostly the first poll filling new ports, one row per field as LibreNMS logs them), {} DB statements",
        rrd.written,
        rrd.created,
        db.stats()
            .statements
            .load(std::sync::atomic::Ordering::Relaxed)
    )?;
    Ok(())
}

fn bits(octets_per_second: f64) -> String {
    crate::librenms::format::format_si(octets_per_second * 8.0, 2, "bit/s")
}

/// Draws in/out traffic of the busiest port.
async fn graph(
    db: &Db,
    dir: &Path,
    cycles: u32,
    step: u32,
) -> anyhow::Result<Option<(PathBuf, String)>> {
    let rows = db
        .fetch(&Statement::new(
            "SELECT p.`port_id`, p.`ifName`, d.`hostname` FROM `ports` p JOIN `devices` d ON d.`device_id` = p.`device_id` \
             WHERE p.`ifInOctets_rate` IS NOT NULL ORDER BY p.`ifInOctets_rate` DESC LIMIT 1",
        ))
        .await?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let host = r.string("hostname").unwrap_or_default();
    let name = r.string("ifName").unwrap_or_default();
    let file = dir
        .join("rrd")
        .join(crate::librenms::names::host_dir(&host))
        .join(format!("port-id{}.rrd", r.i64("port_id").unwrap_or(0)));
    let png = dir.join("traffic.png");
    let now = crate::poller::unix_now();
    let span = i64::from(cycles + 2) * i64::from(step);
    let f = file.display();
    let args: Vec<String> = [
        format!("--start={}", now - span),
        format!("--end={now}"),
        "--width=800".into(),
        "--height=250".into(),
        format!("--title={host} {name} traffic"),
        "--vertical-label=bits per second".into(),
        "--lower-limit=0".into(),
        format!("DEF:in={f}:INOCTETS:AVERAGE"),
        format!("DEF:out={f}:OUTOCTETS:AVERAGE"),
        "CDEF:inb=in,8,*".into(),
        "CDEF:outb=out,8,*".into(),
        "AREA:inb#7CB342:In ".into(),
        "GPRINT:inb:LAST:%6.2lf %sbit/s last".into(),
        "LINE2:outb#1E88E5:Out".into(),
        "GPRINT:outb:LAST:%6.2lf %sbit/s last\\l".into(),
    ]
    .into();
    crate::rrd::graph::render(&png, &args).map_err(anyhow::Error::msg)?;
    Ok(Some((
        png,
        format!("{host} {name}, in and out bits per second"),
    )))
}
