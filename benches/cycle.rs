//! One full poll cycle of a LibreNMS-sized fleet, end to end: a simulated
//! fleet of 48-port switches (1-50 ms latency, a share dead), the devices in
//! a LibreNMS database on real MariaDB, RRD updates to a real rrdcached over
//! TCP. Measures the poller's CPU, wall time, peak RSS and database
//! statements per device for the first cycle (new ports inserted, RRD files
//! created) and for the steady-state cycle after it.
//!
//! Then, in the same run, the queries LibreNMS's PHP poller makes for the
//! `availability`, `core` and `ports` modules are issued its way (one
//! net-snmp CLI process per query, one fping per device) against a sample
//! of the same devices, and the CPU per device is compared.
//!
//! Needs IRONPOLL_TEST_MYSQL (mysql://root@127.0.0.1:PORT) and rrdcached,
//! snmpget, snmpbulkwalk and fping on the PATH; `benches/run.sh` sets all
//! of that up. Options: `--devices N --sample N --dead-percent P
//! --latency-ms A..B --workers N --rra "RRA:..." --concurrency N`.

#[path = "support/measure.rs"]
mod measure;
use measure::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The allocator the ironpoll binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
ironpoll::tune_allocator_at_load!();

use ironpoll::config::{Layer, Mode, Source, resolve, settings_defaults};
use ironpoll::db::{Db, Statement, devices};
use ironpoll::modules::Selection;
use ironpoll::poller::engine::Engine;
use ironpoll::telemetry::process_cpu_seconds;

struct Args {
    devices: usize,
    sample: usize,
    dead_percent: f64,
    latency: String,
    workers: usize,
    rra: String,
    /// Polls in flight (poller.concurrency); 0 keeps the default.
    concurrency: usize,
}

fn args() -> Args {
    let mut a = Args {
        devices: 10_000,
        sample: 100,
        dead_percent: 2.0,
        latency: "1ms..50ms".into(),
        workers: 16,
        // One row per RRA: what rrdcached writes costs rrdcached, not the
        // poller, and LibreNMS's default RRAs would need ~2 MB per port
        // file (1 TB for this fleet). The CREATE the poller sends is the
        // same size either way.
        rra: "RRA:AVERAGE:0.5:1:10 RRA:MAX:0.5:1:10".into(),
        concurrency: 0,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--devices" => a.devices = v.parse().expect("--devices N"),
            "--sample" => a.sample = v.parse().expect("--sample N"),
            "--dead-percent" => a.dead_percent = v.parse().expect("--dead-percent P"),
            "--latency-ms" => {
                a.latency = v
                    .split("..")
                    .map(|p| format!("{p}ms"))
                    .collect::<Vec<_>>()
                    .join("..")
            }
            "--workers" => a.workers = v.parse().expect("--workers N"),
            "--rra" => a.rra = v,
            "--concurrency" => a.concurrency = v.parse().expect("--concurrency N"),
            "--bench" => {
                i += 1;
                continue;
            }
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    a
}

/// A child process killed on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The simulated fleet: (address, community) per device.
fn start_sim(a: &Args, dir: &Path) -> (Guard, Vec<(std::net::SocketAddr, String)>) {
    let targets = dir.join("fleet.txt");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ironpoll"));
    cmd.args(["sim", "--fleet", &a.devices.to_string()])
        .args(["--profile", "switch48"])
        .args(["--fleet-address", "127.91.0.1", "--fleet-port", "16161"])
        .args(["--fault", &format!("latency={}", a.latency)])
        .arg("--targets-out")
        .arg(&targets)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    if a.dead_percent > 0.0 {
        cmd.args(["--fault", &format!("{}%:silence", a.dead_percent)]);
    }
    let sim = Guard(cmd.spawn().expect("start ironpoll sim"));
    let started = Instant::now();
    while !targets.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "simulator did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let fleet = std::fs::read_to_string(&targets)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut p = l.split_whitespace();
            Some((p.next()?.parse().ok()?, p.next()?.to_string()))
        })
        .collect();
    (sim, fleet)
}

/// A private rrdcached listening on TCP, as a LibreNMS node uses it.
fn start_rrdcached(dir: &Path) -> (Guard, u16, PathBuf) {
    let base = dir.join("rrd");
    let journal = dir.join("journal");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::create_dir_all(&journal).unwrap();
    let port = free_tcp_port();
    let child = Guard(
        Command::new("rrdcached")
            .args(["-g", "-l", &format!("127.0.0.1:{port}")])
            .arg("-b")
            .arg(&base)
            .args(["-B", "-R", "-F", "-w", "1800", "-z", "900", "-t", "4"])
            .arg("-j")
            .arg(&journal)
            .arg("-p")
            .arg(dir.join("rrdcached.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rrdcached (benches/run.sh installs it)"),
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (child, port, base);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("rrdcached did not listen on {port}");
}

/// The private MariaDB that misc/lib.sh starts (its pid file).
fn mariadb_pid() -> Option<u32> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(".work/mariadb/mariadbd.pid");
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

async fn fresh_database(base: &str) -> Db {
    let mut layer = Layer::new(Source::Flag, true);
    layer.set("db.url", serde_json::json!(format!("{base}/mysql")));
    let admin_settings = resolve(&[layer], settings_defaults(Mode::Librenms)).unwrap();
    let admin = Db::connect(&admin_settings.db)
        .await
        .expect("connect to MariaDB");
    for sql in [
        "DROP DATABASE IF EXISTS `ironpoll_bench`",
        "CREATE DATABASE `ironpoll_bench`",
    ] {
        admin.execute(&Statement::new(sql)).await.unwrap();
    }
    admin.close().await;
    let mut layer = Layer::new(Source::Flag, true);
    layer.set(
        "db.url",
        serde_json::json!(format!("{base}/ironpoll_bench")),
    );
    let s = resolve(&[layer], settings_defaults(Mode::Librenms)).unwrap();
    let db = Db::connect(&s.db).await.unwrap();
    db.create_schema().await.unwrap();
    db
}

/// Devices rows as LibreNMS's discovery leaves them (up, discovered).
async fn add_devices(db: &Db, fleet: &[(std::net::SocketAddr, String)]) {
    for chunk in fleet.chunks(1000) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|(addr, community)| {
                format!(
                    "('{}', {}, 'v2c', '{}', 'udp', 1, '', NOW(), 'generic')",
                    addr.ip(),
                    addr.port(),
                    community.replace('\'', "")
                )
            })
            .collect();
        db.execute(&Statement::new(format!(
            "INSERT INTO `devices` (`hostname`, `port`, `snmpver`, `community`, `transport`, `status`, `status_reason`, `last_discovered`, `os`) VALUES {}",
            rows.join(", ")
        )))
        .await
        .unwrap();
    }
}

/// What one cycle measured. A cycle runs in a child process of its own so
/// that its peak RSS is its own, not what an earlier cycle left behind.
#[derive(Default)]
struct Cycle {
    wall: f64,
    cpu: f64,
    peak_rss_mb: f64,
    statements: u64,
    up: usize,
    down: usize,
    abandoned: usize,
    db_server_cpu: f64,
    rrdcached_cpu: f64,
    rrd_updates: u64,
    up_hosts: std::collections::HashSet<String>,
}

/// The child's side: one poll of every device, results on stdout as
/// `key value` lines, hostnames of devices that were up as `up HOST`.
fn child_cycle(mysql_db: &str, rrd_port: u16, rrd_base: &str, rra: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut layer = Layer::new(Source::Flag, true);
        for (k, v) in [
            ("db.url", mysql_db.to_string()),
            ("rrdcached", format!("127.0.0.1:{rrd_port}")),
            ("rrd_dir", rrd_base.to_string()),
            ("rrd_rra", rra.to_string()),
            // The first cycle inserts the ports, as LibreNMS's discovery
            // would have before the poller runs.
            ("ports.discover_when_empty", "true".into()),
        ] {
            layer.set(k, serde_json::Value::String(v));
        }
        if let Ok(n) = std::env::var("IRONPOLL_CYCLE_CONCURRENCY")
            && n != "0"
        {
            layer.set("poller.concurrency", serde_json::Value::String(n));
        }
        let settings = resolve(&[layer], settings_defaults(Mode::Librenms)).unwrap();
        let concurrency = settings.poller.concurrency;
        let db = Db::connect(&settings.db).await.unwrap();
        let engine = Engine::start(Arc::new(settings), db.clone()).await.unwrap();
        let list = devices::find(&db, "all").await.unwrap();
        let total = list.len();
        let statements_before = db.stats().statements.load(Ordering::Relaxed);
        let cpu_before = process_cpu_seconds();
        let started = Instant::now();
        // What the cycle needs of each report is kept; the reports are not
        // (the daemon keeps none either).
        let mut polled = 0usize;
        let mut up_hosts: Vec<String> = Vec::new();
        engine
            .poll_devices(list, &Selection::Configured, concurrency, |r| {
                polled += 1;
                if r.status {
                    up_hosts.push(r.hostname);
                }
                if polled.is_multiple_of(1000) {
                    eprintln!(
                        "  {polled}/{total} devices polled, {:.0} s",
                        started.elapsed().as_secs_f64()
                    );
                }
            })
            .await
            .unwrap();
        let problems = engine.flush().await;
        assert!(problems.is_empty(), "writers reported {problems:?}");
        let wall = started.elapsed().as_secs_f64();
        let cpu = process_cpu_seconds() - cpu_before;
        let up = up_hosts.len();
        println!("wall {wall}");
        println!("cpu {cpu}");
        println!(
            "statements {}",
            db.stats().statements.load(Ordering::Relaxed) - statements_before
        );
        println!("up {up}");
        println!("down {}", polled - up);
        println!("abandoned {}", total - polled);
        println!("rrd_updates {}", engine.rrd.stats().written);
        println!("concurrency {concurrency}");
        for host in &up_hosts {
            println!("host {host}");
        }
        let _ = engine.finish().await;
        db.close().await;
    });
    println!("peak_rss_mb {}", peak_rss_mb());
}

/// The parent's side: runs a cycle in a child and reads what it measured,
/// with the CPU the database server and rrdcached spent meanwhile.
fn cycle(
    mysql_db: &str,
    rrd_port: u16,
    rrd_base: &Path,
    a: &Args,
    rrdcached_pid: u32,
) -> (Cycle, usize) {
    let mariadb = mariadb_pid();
    let db_before = mariadb.map_or(0.0, cpu_of);
    let rrd_before = cpu_of(rrdcached_pid);
    let out = Command::new(std::env::current_exe().unwrap())
        .env("IRONPOLL_CYCLE_CHILD", "1")
        .env("IRONPOLL_CYCLE_DB", mysql_db)
        .env("IRONPOLL_CYCLE_RRD_PORT", rrd_port.to_string())
        .env("IRONPOLL_CYCLE_RRD_BASE", rrd_base)
        .env("IRONPOLL_CYCLE_RRA", &a.rra)
        .env("IRONPOLL_CYCLE_CONCURRENCY", a.concurrency.to_string())
        .stderr(Stdio::inherit())
        .output()
        .expect("run a cycle");
    assert!(out.status.success(), "the cycle failed");
    let mut c = Cycle {
        db_server_cpu: mariadb.map_or(0.0, cpu_of) - db_before,
        rrdcached_cpu: cpu_of(rrdcached_pid) - rrd_before,
        ..Cycle::default()
    };
    let mut concurrency = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((k, v)) = line.split_once(' ') else {
            continue;
        };
        let f = || v.parse::<f64>().unwrap_or(0.0);
        match k {
            "wall" => c.wall = f(),
            "cpu" => c.cpu = f(),
            "peak_rss_mb" => c.peak_rss_mb = f(),
            "statements" => c.statements = f() as u64,
            "up" => c.up = f() as usize,
            "down" => c.down = f() as usize,
            "abandoned" => c.abandoned = f() as usize,
            "rrd_updates" => c.rrd_updates = f() as u64,
            "concurrency" => concurrency = f() as usize,
            "host" => {
                c.up_hosts.insert(v.to_string());
            }
            _ => {}
        }
    }
    (c, concurrency)
}

/// What LibreNMS's PHP poller runs for one device with the availability,
/// core and ports modules: one process per query. OIDs are numeric because
/// this machine has no IETF MIB files; LibreNMS names them and passes its
/// MIB directories, so each of its processes also parses MIBs, which makes
/// its real cost higher than measured here.
fn librenms_commands(host: &str, community: &str) -> Vec<Vec<String>> {
    let snmp = |tool: &str, oids: &[&str]| {
        let mut c: Vec<String> = [
            tool, "-v2c", "-c", community, "-On", "-OQUte", "-t", "1", "-r", "3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        c.push(format!("udp:{host}"));
        c.extend(oids.iter().map(|o| o.to_string()));
        c
    };
    let ip = host.rsplit_once(':').map_or(host, |(ip, _)| ip);
    let mut cmds = vec![
        // availability: fping with LibreNMS's default fping_options, then
        // the SNMP check (sysObjectID.0).
        ["fping", "-e", "-q", "-c", "3", "-p", "500", "-t", "500", ip]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        snmp("snmpget", &["1.3.6.1.2.1.1.2.0"]),
        // core: sysUpTime.0, then snmpEngineTime.0 and hrSystemUptime.0
        snmp("snmpget", &["1.3.6.1.2.1.1.3.0"]),
        snmp(
            "snmpget",
            &["1.3.6.1.6.3.10.2.1.3.0", "1.3.6.1.2.1.25.1.1.0"],
        ),
        // ports: ifXEntry
        snmp("snmpbulkwalk", &["1.3.6.1.2.1.31.1.1.1"]),
    ];
    // ifDescr ifType ifMtu ifPhysAddress ifAdminStatus ifOperStatus
    // ifLastChange ifInDiscards ifInErrors ifOutDiscards ifOutErrors
    for column in [2, 3, 4, 6, 7, 8, 9, 13, 14, 19, 20] {
        cmds.push(snmp(
            "snmpbulkwalk",
            &[&format!("1.3.6.1.2.1.2.2.1.{column}")],
        ));
    }
    // dot3StatsDuplexStatus, dot1qPortVlanEntry
    cmds.push(snmp("snmpbulkwalk", &["1.3.6.1.2.1.10.7.2.1.19"]));
    cmds.push(snmp("snmpbulkwalk", &["1.3.6.1.2.1.17.7.1.4.5.1"]));
    cmds
}

/// Runs the PHP poller's commands for `sample` devices, `workers` devices
/// at a time, each device's commands one after the other.
fn librenms_way(sample: &[(std::net::SocketAddr, String)], workers: usize) -> (f64, f64, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let processes = Arc::new(AtomicUsize::new(0));
    let cpu_before = children_cpu_seconds();
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let next = next.clone();
            let processes = processes.clone();
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((addr, community)) = sample.get(i) else {
                        break;
                    };
                    for cmd in librenms_commands(&addr.to_string(), community) {
                        let status = Command::new(&cmd[0])
                            .args(&cmd[1..])
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .status();
                        if status.is_ok_and(|s| s.success()) {
                            processes.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    (
        children_cpu_seconds() - cpu_before,
        started.elapsed().as_secs_f64(),
        processes.load(Ordering::Relaxed),
    )
}

fn print_cycle(name: &str, c: &Cycle, devices: usize) {
    let polled = (c.up + c.down).max(1) as f64;
    println!(
        "| {name} | {devices} | {} up, {} down, {} abandoned | {:.1} | {:.2} | **{:.1}%** | {:.2} | **{:.1}** | {:.1} | {} | {:.2} | {:.2} |",
        c.up,
        c.down,
        c.abandoned,
        c.wall,
        c.cpu,
        100.0 * c.cpu / 300.0 / 2.0,
        c.cpu * 1e3 / polled,
        c.peak_rss_mb,
        c.statements as f64 / polled,
        c.rrd_updates,
        c.db_server_cpu,
        c.rrdcached_cpu,
    );
}

fn main() {
    if std::env::var_os("IRONPOLL_CYCLE_CHILD").is_some() {
        let var = |k: &str| std::env::var(k).unwrap();
        child_cycle(
            &var("IRONPOLL_CYCLE_DB"),
            var("IRONPOLL_CYCLE_RRD_PORT").parse().unwrap(),
            &var("IRONPOLL_CYCLE_RRD_BASE"),
            &var("IRONPOLL_CYCLE_RRA"),
        );
        return;
    }
    let a = args();
    let mysql = std::env::var("IRONPOLL_TEST_MYSQL")
        .expect("IRONPOLL_TEST_MYSQL is not set; run benches/run.sh, which starts MariaDB");
    let dir = tempfile::Builder::new()
        .prefix("ironpoll-cycle")
        .tempdir()
        .unwrap();
    let (_sim, fleet) = start_sim(&a, dir.path());
    let (rrdcached, rrd_port, rrd_base) = start_rrdcached(dir.path());
    let rrdcached_pid = rrdcached.0.id();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = fresh_database(&mysql).await;
        add_devices(&db, &fleet).await;
        db.close().await;
    });
    let mysql_db = format!("{mysql}/ironpoll_bench");
    eprintln!("cycle 1 (new ports, RRD files created)");
    let (first, concurrency) = cycle(&mysql_db, rrd_port, &rrd_base, &a, rrdcached_pid);
    eprintln!("cycle 2 (steady state)");
    let (second, _) = cycle(&mysql_db, rrd_port, &rrd_base, &a, rrdcached_pid);
    println!(
        "fleet: {} switch48 devices, latency {}, {}% dead; poller concurrency {concurrency}, RRAs \"{}\"",
        fleet.len(),
        a.latency,
        a.dead_percent,
        a.rra
    );
    println!();
    println!(
        "| cycle | devices | result | wall s | poller CPU s | share of 2 cores over 300 s | poller CPU ms/device | peak RSS MB | DB statements/device | RRD updates | MariaDB CPU s | rrdcached CPU s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    print_cycle("first (inserts ports, creates files)", &first, fleet.len());
    print_cycle("second (steady state)", &second, fleet.len());

    // The sample: devices spread over the fleet that were up (LibreNMS
    // skips the SNMP modules of down devices, as ironpoll does).
    let step = (fleet.len() / a.sample.max(1)).max(1);
    let sample: Vec<_> = fleet
        .iter()
        .step_by(step)
        .filter(|(addr, _)| second.up_hosts.contains(&addr.ip().to_string()))
        .take(a.sample)
        .cloned()
        .collect();
    let (cli_cpu, cli_wall, processes) = librenms_way(&sample, a.workers);
    // All of the cycle's CPU charged to the devices that were up: the
    // conservative side, since dead devices cost the poller little.
    let ours = second.cpu / second.up.max(1) as f64;
    let theirs = cli_cpu / sample.len().max(1) as f64;
    println!();
    println!(
        "LibreNMS's way on {} sampled devices ({processes} processes: fping, snmpget, snmpbulkwalk; {} devices at a time): {cli_cpu:.2} CPU s in {cli_wall:.1} s, {:.1} ms per device (PHP's own CPU not counted)",
        sample.len(),
        a.workers,
        theirs * 1e3
    );
    println!(
        "ironpoll steady state: {:.2} ms per device that was up (the whole cycle's CPU); **ratio {:.1}x less CPU per device**",
        ours * 1e3,
        theirs / ours.max(1e-9)
    );
}
