//! One full poll cycle of a LibreNMS-sized fleet, end to end: a simulated
//! fleet (by default 80% 48-port switches, 15% Linux servers with
//! processors, memory, storage, UCD and HOST-RESOURCES counters, 5%
//! 500-port chassis with a hundred sensors; 1-50 ms latency, a share dead),
//! the devices and what discovery would have stored for them in a LibreNMS
//! database on real MariaDB, RRD updates to a real rrdcached over TCP,
//! every native module on. Measures the poller's CPU, wall time, peak RSS
//! and database statements per device for the first cycle (new ports
//! inserted, RRD files created) and for the steady-state cycle after it,
//! then the CPU each module costs per device (one module at a time over a
//! sample of the fleet).
//!
//! Then, in the same run, the queries LibreNMS's PHP poller makes for the
//! same modules are issued its way (one net-snmp CLI process per query, one
//! fping per device) against a sample of the same devices, and the CPU per
//! device is compared.
//!
//! Needs IRONPOLL_TEST_MYSQL (mysql://root@127.0.0.1:PORT) and rrdcached,
//! snmpget, snmpbulkwalk and fping on the PATH; `benches/run.sh` sets all
//! of that up. Options: `--devices N --sample N --dead-percent P
//! --latency-ms A..B --workers N --rra "RRA:..." --concurrency N
//! --mix switch48=80,linux=15,chassis500=5 --module-sample N --slow-db N`.
//!
//! `--slow-db N` runs the two cycles with MariaDB slowed to 1/N of its
//! speed: stopped (SIGSTOP) and resumed (SIGCONT) in turn, running 10 ms
//! in every N×10 ms, as a CPU quota would. The writers fall behind and the
//! polls wait for them; the table says for how long.

#[path = "support/children.rs"]
mod children;
#[path = "support/measure.rs"]
mod measure;

use children::{Guard, free_tcp_port};
use measure::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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
use ironpoll::sim::profile::Profile;
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
    /// The fleet's profiles and their shares.
    mix: String,
    /// Devices the per-module CPU is measured on (0: none).
    module_sample: usize,
    /// MariaDB runs at 1/N of its speed during the cycles (1: as it is).
    slow_db: u32,
    /// poller.memory_high in MiB; None keeps ironpoll's default.
    memory_high: Option<u64>,
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
        mix: "switch48=80,linux=15,chassis500=5".into(),
        module_sample: 1000,
        slow_db: 1,
        memory_high: None,
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
            "--mix" => a.mix = v,
            "--module-sample" => a.module_sample = v.parse().expect("--module-sample N"),
            "--slow-db" => a.slow_db = v.parse::<u32>().expect("--slow-db N").max(1),
            "--memory-high" => a.memory_high = Some(v.parse().expect("--memory-high MiB")),
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

/// A device of the simulated fleet.
#[derive(Clone)]
struct FleetDevice {
    addr: std::net::SocketAddr,
    community: String,
    profile: Profile,
}

/// The simulated fleet.
fn start_sim(a: &Args, dir: &Path) -> (Guard, Vec<FleetDevice>) {
    let targets = dir.join("fleet.txt");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ironpoll"));
    cmd.args(["sim", "--fleet", &a.devices.to_string()])
        .args(["--profile", &a.mix])
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
            let addr = p.next()?.parse().ok()?;
            let community = p.next()?.to_string();
            // Names are <profile>-<number>.
            let profile = p.next()?.rsplit_once('-')?.0.parse().ok()?;
            Some(FleetDevice {
                addr,
                community,
                profile,
            })
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
/// Slows MariaDB to 1/`n` of its speed until dropped: it runs 10 ms in
/// every `n`×10 ms, stopped the rest of the time.
struct SlowDb {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SlowDb {
    fn start(n: u32) -> Option<SlowDb> {
        if n <= 1 {
            return None;
        }
        let pid = mariadb_pid().expect("--slow-db needs the private MariaDB of benches/run.sh");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let signal = |sig: &str| {
                    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
                };
                while !stop.load(Ordering::Relaxed) {
                    signal("-CONT");
                    std::thread::sleep(Duration::from_millis(10));
                    signal("-STOP");
                    std::thread::sleep(Duration::from_millis(10 * u64::from(n - 1)));
                }
                signal("-CONT");
            })
        };
        Some(SlowDb {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for SlowDb {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

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
    librenms_alerting(&db).await;
    db
}

/// LibreNMS's fixtures beside the project.
fn librenms_fixtures() -> PathBuf {
    std::env::var_os("IRONPOLL_LIBRENMS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/librenms")
        })
}

/// The rest of LibreNMS's schema (alert rules may read any table) and its
/// default alert rules, stored as LibreNMS's "create default rules" stores
/// them: the builder, its SQL, LibreNMS's default extra.
async fn librenms_alerting(db: &Db) {
    let fixtures = librenms_fixtures();
    let yaml = std::fs::read_to_string(fixtures.join("db_schema.yaml")).unwrap_or_else(|e| {
        panic!(
            "LibreNMS's schema not found under {} ({e}); set IRONPOLL_LIBRENMS_FIXTURES",
            fixtures.display()
        )
    });
    for sql in ironpoll::db::schema::mysql_ddl_from_yaml(&yaml).unwrap() {
        db.execute(&Statement::new(sql)).await.unwrap();
    }
    let rules: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("definitions/alert_rules.json")).unwrap(),
    )
    .unwrap();
    let macros = ironpoll::alerting::Macros::builtin();
    for r in rules
        .iter()
        .filter(|r| r["default"] == serde_json::json!(true))
    {
        let query = ironpoll::alerting::QueryBuilder::new(r["builder"].clone(), &macros)
            .to_sql(true)
            .unwrap()
            .unwrap_or_default();
        let mut st = Statement::new(
            "INSERT INTO `alert_rules` (`severity`, `extra`, `disabled`, `name`, `query`, `builder`) VALUES ('critical', ?, 0, ?, ?, ?)",
        );
        st.args = vec![
            ironpoll::db::Val::text(
                r#"{"mute":false,"count":-1,"delay":300,"invert":false,"interval":300}"#,
            ),
            ironpoll::db::Val::text(r["name"].as_str().unwrap()),
            ironpoll::db::Val::text(query),
            ironpoll::db::Val::text(r["builder"].to_string()),
        ];
        db.execute(&st).await.unwrap();
    }
}

/// The alert rules and device groups of `ids` (after the cycles, so every
/// rule's first state is recorded), one device at a time and in batches,
/// each way's CPU printed.
fn child_alerting(mysql_db: &str, rrd_port: u16, rrd_base: &str, rra: &str, ids: &str) {
    let rt = child_runtime();
    rt.block_on(async {
        let settings = child_settings(mysql_db, rrd_port, rrd_base, rra, Vec::new());
        let db = Db::connect(&settings.db).await.unwrap();
        let alerting = ironpoll::alerting::Alerting::for_node(&settings, &db)
            .await
            .expect("alerting available");
        let ids: Vec<u32> = ids.split(',').filter_map(|i| i.parse().ok()).collect();
        // One device at a time (a quiet node), then in passes of 64 (a
        // busy node's batches).
        let db_cpu = || mariadb_pid().map_or(0.0, cpu_of);
        let (before, db_before) = (process_cpu_seconds(), db_cpu());
        for id in &ids {
            alerting.after_poll(*id).await.expect("alert pass");
        }
        println!(
            "alerting one-by-one {} {} {}",
            process_cpu_seconds() - before,
            db_cpu() - db_before,
            ids.len()
        );
        let (before, db_before) = (process_cpu_seconds(), db_cpu());
        for chunk in ids.chunks(64) {
            alerting.after_polls(chunk).await.expect("alert pass");
        }
        println!(
            "alerting batches-of-64 {} {} {}",
            process_cpu_seconds() - before,
            db_cpu() - db_before,
            ids.len()
        );
        db.close().await;
    });
}

/// Runs the alerting measurement in a child: (devices per pass, ironpoll
/// CPU ms per device, MariaDB CPU ms per device).
fn alerting_cpu(
    mysql_db: &str,
    rrd_port: u16,
    rrd_base: &Path,
    a: &Args,
    ids: &[u32],
) -> Vec<(String, f64, f64)> {
    let out = Command::new(std::env::current_exe().unwrap())
        .env("IRONPOLL_CYCLE_CHILD", "alerting")
        .env("IRONPOLL_CYCLE_DB", mysql_db)
        .env("IRONPOLL_CYCLE_RRD_PORT", rrd_port.to_string())
        .env("IRONPOLL_CYCLE_RRD_BASE", rrd_base)
        .env("IRONPOLL_CYCLE_RRA", &a.rra)
        .env(
            "IRONPOLL_CYCLE_SAMPLES",
            ids.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
        )
        .stderr(Stdio::inherit())
        .output()
        .expect("run the alerting passes");
    assert!(out.status.success(), "the alerting passes failed");
    let mut passes = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let ["alerting", way, cpu, db, n] = line.split_whitespace().collect::<Vec<_>>()[..] {
            let n = n.parse::<f64>().unwrap().max(1.0);
            passes.push((
                way.to_string(),
                cpu.parse::<f64>().unwrap() * 1e3 / n,
                db.parse::<f64>().unwrap() * 1e3 / n,
            ));
        }
    }
    passes
}

/// The LibreNMS OS a profile's devices would be discovered as.
fn os_of(p: Profile) -> &'static str {
    match p {
        Profile::Switch48 => "generic",
        Profile::Linux => "linux",
        Profile::Chassis500 => "iosxe",
    }
}

/// Devices rows as LibreNMS's discovery leaves them (up, discovered), and
/// what discovery would have stored for each (processors, memory,
/// storage, sensors).
async fn add_devices(db: &Db, fleet: &[FleetDevice]) {
    for chunk in fleet.chunks(1000) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|d| {
                format!(
                    "('{}', {}, 'v2c', '{}', 'udp', 1, '', NOW(), '{}')",
                    d.addr.ip(),
                    d.addr.port(),
                    d.community.replace('\'', ""),
                    os_of(d.profile)
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
    let ids = db
        .fetch(&Statement::new(
            "SELECT `device_id` FROM `devices` ORDER BY `device_id`",
        ))
        .await
        .unwrap();
    for (d, row) in fleet.iter().zip(ids) {
        let rows = d.profile.discovered();
        if !rows.is_empty() {
            let id = row.u64("device_id").unwrap() as u32;
            ironpoll::db::inventory::insert(db, id, &rows)
                .await
                .unwrap();
        }
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
    /// The most RRD updates and database rows the writers held at once.
    rrd_peak_held: u64,
    db_peak_held: u64,
    /// Seconds each sink was behind the polls (polls waited).
    db_behind: f64,
    rrd_behind: f64,
    /// Seconds resident memory was at poller.memory_high (polls waited).
    memory_high: f64,
    memory_high_mib: u64,
    /// Times the poll window was cut because a sink fell behind, and the
    /// fewest polls in flight it was cut to.
    window_cuts: u64,
    window_smallest: u64,
    up_hosts: std::collections::HashSet<String>,
}

/// A child's settings: the bench's database, rrdcached and RRAs, and
/// `extra`.
fn child_settings(
    mysql_db: &str,
    rrd_port: u16,
    rrd_base: &str,
    rra: &str,
    extra: Vec<(&str, String)>,
) -> ironpoll::config::Settings {
    let mut layer = Layer::new(Source::Flag, true);
    let base = [
        ("db.url", mysql_db.to_string()),
        ("rrdcached", format!("127.0.0.1:{rrd_port}")),
        ("rrd_dir", rrd_base.to_string()),
        ("rrd_rra", rra.to_string()),
    ];
    for (k, v) in base.into_iter().chain(extra) {
        layer.set(k, serde_json::Value::String(v));
    }
    resolve(&[layer], settings_defaults(Mode::Librenms)).unwrap()
}

/// The runtime a child process measures in.
fn child_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The child's side: one poll of every device, results on stdout as
/// `key value` lines, hostnames of devices that were up as `up HOST`.
fn child_cycle(mysql_db: &str, rrd_port: u16, rrd_base: &str, rra: &str) {
    let rt = child_runtime();
    rt.block_on(async {
        // The first cycle inserts the ports, as LibreNMS's discovery would
        // have before the poller runs.
        let mut extra = vec![("ports.discover_when_empty", "true".to_string())];
        if let Ok(n) = std::env::var("IRONPOLL_CYCLE_CONCURRENCY")
            && n != "0"
        {
            extra.push(("poller.concurrency", n));
        }
        if let Ok(n) = std::env::var("IRONPOLL_CYCLE_MEMORY_HIGH") {
            extra.push(("poller.memory_high", n));
        }
        let settings = child_settings(mysql_db, rrd_port, rrd_base, rra, extra);
        let concurrency = settings.poller.concurrency;
        println!("memory_high_mib {}", settings.poller.memory_high);
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
        // What each writer held at most (its queue included), and how
        // long polls waited for it.
        for (name, b) in [
            ("db", engine.db_writer.backlog()),
            ("rrd", engine.rrd.backlog()),
        ] {
            let peak = b.stats().peak_units.load(Ordering::Relaxed);
            println!("{name}_peak_held {peak}");
            println!("{name}_behind {}", b.seconds_behind());
        }
        println!("memory_high {}", engine.memory.seconds_high());
        let window = &engine.window_stats;
        println!("window_cuts {}", window.cuts.load(Ordering::Relaxed));
        println!(
            "window_smallest {}",
            window.smallest.load(Ordering::Relaxed)
        );
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
    // IRONPOLL_CYCLE_WRAP runs the child under a profiler, e.g.
    // "heaptrack -o /tmp/cycle" (with the bench built on the system
    // allocator, since heaptrack sees malloc, not mimalloc).
    let wrap = std::env::var("IRONPOLL_CYCLE_WRAP").unwrap_or_default();
    let mut wrap = wrap.split_whitespace();
    let mut cmd = match wrap.next() {
        Some(tool) => {
            let mut c = Command::new(tool);
            c.args(wrap).arg(std::env::current_exe().unwrap());
            c
        }
        None => Command::new(std::env::current_exe().unwrap()),
    };
    let out = cmd
        .env("IRONPOLL_CYCLE_CHILD", "1")
        .env("IRONPOLL_CYCLE_DB", mysql_db)
        .env("IRONPOLL_CYCLE_RRD_PORT", rrd_port.to_string())
        .env("IRONPOLL_CYCLE_RRD_BASE", rrd_base)
        .env("IRONPOLL_CYCLE_RRA", &a.rra)
        .env("IRONPOLL_CYCLE_CONCURRENCY", a.concurrency.to_string())
        .envs(
            a.memory_high
                .map(|m| ("IRONPOLL_CYCLE_MEMORY_HIGH", m.to_string())),
        )
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
            "rrd_peak_held" => c.rrd_peak_held = f() as u64,
            "db_peak_held" => c.db_peak_held = f() as u64,
            "db_behind" => c.db_behind = f(),
            "rrd_behind" => c.rrd_behind = f(),
            "memory_high" => c.memory_high = f(),
            "memory_high_mib" => c.memory_high_mib = f() as u64,
            "window_cuts" => c.window_cuts = f() as u64,
            "window_smallest" => c.window_smallest = f() as u64,
            "concurrency" => concurrency = f() as usize,
            "host" => {
                c.up_hosts.insert(v.to_string());
            }
            _ => {}
        }
    }
    (c, concurrency)
}

/// The native modules whose CPU is measured one at a time, after `core`
/// (which every poll runs and which is the baseline).
const MEASURED: [&str; 12] = [
    "availability",
    "sensors",
    "processors",
    "mempools",
    "storage",
    "netstats",
    "hr-mib",
    "ucd-mib",
    "ip-system-stats",
    "ports",
    "ucd-diskio",
    "wireless",
];

/// One process LibreNMS's PHP poller starts for a device, and the module
/// it starts it for.
struct CliCall {
    module: &'static str,
    argv: Vec<String>,
}

/// What LibreNMS's PHP poller runs for one device with the native modules
/// on: one net-snmp process per query (OIDs chunked by snmp.max_oid, 10),
/// fping for availability. OIDs are numeric because this machine has no
/// IETF MIB files; LibreNMS names them and passes its MIB directories, so
/// each of its processes also parses MIBs, which makes its real cost
/// higher than measured here.
fn librenms_commands(d: &FleetDevice) -> Vec<CliCall> {
    let host = d.addr.to_string();
    let mut calls = Vec::new();
    let mut snmp = |module: &'static str, tool: &str, oids: &[String]| {
        let mut argv: Vec<String> = [
            tool,
            "-v2c",
            "-c",
            &d.community,
            "-On",
            "-OQUte",
            "-t",
            "1",
            "-r",
            "3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        argv.push(format!("udp:{host}"));
        argv.extend(oids.iter().cloned());
        calls.push(CliCall { module, argv });
    };
    let gets = |oids: Vec<String>| -> Vec<Vec<String>> {
        oids.chunks(10).map(<[String]>::to_vec).collect()
    };
    let o = |s: &str| vec![s.to_string()];

    // availability: the SNMP check (fping is added below).
    snmp("availability", "snmpget", &o("1.3.6.1.2.1.1.2.0"));
    // core: sysUpTime.0, then snmpEngineTime.0 and hrSystemUptime.0.
    snmp("core", "snmpget", &o("1.3.6.1.2.1.1.3.0"));
    snmp(
        "core",
        "snmpget",
        &[
            "1.3.6.1.6.3.10.2.1.3.0".into(),
            "1.3.6.1.2.1.25.1.1.0".into(),
        ],
    );
    // The modules that GET what discovery stored: sensors one class at a
    // time, the others all at once.
    let discovered = d.profile.discovered();
    let column = |row: &ironpoll::sim::profile::Discovered, name: &str| {
        row.row
            .iter()
            .find(|(c, _)| *c == name)
            .and_then(|(_, v)| v.as_str())
            .map(|v| v.trim_start_matches('.').to_string())
    };
    let mut classes: Vec<String> = Vec::new();
    for r in discovered.iter().filter(|r| r.table == "sensors") {
        let class = column(r, "sensor_class").unwrap_or_default();
        if !classes.contains(&class) {
            classes.push(class);
        }
    }
    for class in &classes {
        let oids = discovered
            .iter()
            .filter(|r| r.table == "sensors" && column(r, "sensor_class").as_ref() == Some(class))
            .filter_map(|r| column(r, "sensor_oid"))
            .collect();
        for chunk in gets(oids) {
            snmp("sensors", "snmpget", &chunk);
        }
    }
    for (module, table, columns) in [
        ("processors", "processors", &["processor_oid"][..]),
        (
            "mempools",
            "mempools",
            &["mempool_used_oid", "mempool_total_oid"][..],
        ),
        ("storage", "storage", &["storage_used_oid"][..]),
    ] {
        let oids = discovered
            .iter()
            .filter(|r| r.table == table)
            .flat_map(|r| columns.iter().filter_map(|c| column(r, c)))
            .collect();
        for chunk in gets(oids) {
            snmp(module, "snmpget", &chunk);
        }
    }
    // netstats: each group's scalars.
    let netstats = ironpoll::mib::data::module("netstats");
    for spec in netstats.rrds() {
        let oids = spec
            .sources
            .iter()
            .flatten()
            .map(|n| {
                netstats
                    .oid(n)
                    .to_string()
                    .trim_start_matches('.')
                    .to_string()
            })
            .collect();
        for chunk in gets(oids) {
            snmp("netstats", "snmpget", &chunk);
        }
    }
    // hr-mib: hrSystemProcesses.0, hrSystemNumUsers.0.
    snmp(
        "hr-mib",
        "snmpget",
        &["1.3.6.1.2.1.25.1.6.0".into(), "1.3.6.1.2.1.25.1.5.0".into()],
    );
    // ucd-mib: systemStats, then laLoadInt.1-3.
    snmp("ucd-mib", "snmpbulkwalk", &o("1.3.6.1.4.1.2021.11"));
    snmp(
        "ucd-mib",
        "snmpget",
        &(1..=3)
            .map(|i| format!("1.3.6.1.4.1.2021.10.1.5.{i}"))
            .collect::<Vec<_>>(),
    );
    // ip-system-stats: ipSystemStatsTable.
    snmp("ip-system-stats", "snmpbulkwalk", &o("1.3.6.1.2.1.4.31.1"));
    // ports: ifXEntry, then the ifEntry columns ifDescr ifType ifMtu
    // ifPhysAddress ifAdminStatus ifOperStatus ifLastChange ifInDiscards
    // ifInErrors ifOutDiscards ifOutErrors, dot3StatsDuplexStatus and
    // dot1qPortVlanEntry.
    snmp("ports", "snmpbulkwalk", &o("1.3.6.1.2.1.31.1.1.1"));
    for column in [2, 3, 4, 6, 7, 8, 9, 13, 14, 19, 20] {
        snmp(
            "ports",
            "snmpbulkwalk",
            &o(&format!("1.3.6.1.2.1.2.2.1.{column}")),
        );
    }
    snmp("ports", "snmpbulkwalk", &o("1.3.6.1.2.1.10.7.2.1.19"));
    snmp("ports", "snmpbulkwalk", &o("1.3.6.1.2.1.17.7.1.4.5.1"));
    if os_of(d.profile) == "iosxe" {
        // The cisco group: pagpOperationMode, vmVlan and the two
        // vlanTrunkPortEntry columns; IOS-XE: the eight cie counters.
        for oid in [
            "1.3.6.1.4.1.9.9.98.1.2.1.1.1",
            "1.3.6.1.4.1.9.9.68.1.2.2.1.2",
            "1.3.6.1.4.1.9.9.46.1.6.1.1.16",
            "1.3.6.1.4.1.9.9.46.1.6.1.1.5",
        ] {
            snmp("ports", "snmpbulkwalk", &o(oid));
        }
        for column in 4..=11 {
            snmp(
                "ports",
                "snmpbulkwalk",
                &o(&format!("1.3.6.1.4.1.9.9.276.1.1.1.1.{column}")),
            );
        }
    }
    // ucd-diskio: diskIOTable.
    snmp("ucd-diskio", "snmpbulkwalk", &o("1.3.6.1.4.1.2021.13.15.1"));
    // availability's fping, with LibreNMS's default fping_options.
    calls.push(CliCall {
        module: "availability",
        argv: [
            "fping",
            "-e",
            "-q",
            "-c",
            "3",
            "-p",
            "500",
            "-t",
            "500",
            &d.addr.ip().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    });
    calls
}

/// What LibreNMS's way cost: CPU seconds of its processes, per module.
#[derive(Default)]
struct CliCost {
    cpu: f64,
    wall: f64,
    processes: usize,
    per_module: std::collections::BTreeMap<&'static str, f64>,
}

/// Runs the PHP poller's commands for `sample` devices, `workers` devices
/// at a time, one module after the other (so that each module's CPU is its
/// own), each device's commands for the module one after the other.
fn librenms_way(sample: &[FleetDevice], workers: usize) -> CliCost {
    let calls: Vec<Vec<CliCall>> = sample.iter().map(librenms_commands).collect();
    let mut cost = CliCost::default();
    let started = Instant::now();
    for module in std::iter::once("core").chain(MEASURED) {
        let next = AtomicUsize::new(0);
        let processes = AtomicUsize::new(0);
        let cpu_before = children_cpu_seconds();
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    while let Some(device) = calls.get(next.fetch_add(1, Ordering::Relaxed)) {
                        for call in device.iter().filter(|c| c.module == module) {
                            let status = Command::new(&call.argv[0])
                                .args(&call.argv[1..])
                                .stdout(Stdio::null())
                                .stderr(Stdio::null())
                                .status();
                            if status.is_ok() {
                                processes.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
        });
        let cpu = children_cpu_seconds() - cpu_before;
        cost.cpu += cpu;
        cost.processes += processes.load(Ordering::Relaxed);
        cost.per_module.insert(module, cpu);
    }
    cost.wall = started.elapsed().as_secs_f64();
    cost
}

/// The child's side of the per-module measurement: for each profile's
/// sample, a poll with `core` alone, then `core` and one module, for each
/// measured module, then `core` alone again; prints `module PROFILE
/// MODULE CPU_S DEVICES` lines (MODULE `core` twice, first and last).
fn child_modules(mysql_db: &str, rrd_port: u16, rrd_base: &str, rra: &str, samples: &str) {
    let rt = child_runtime();
    rt.block_on(async {
        // The modules alone: alerting is measured on its own.
        let settings = child_settings(
            mysql_db,
            rrd_port,
            rrd_base,
            rra,
            vec![("alerting.native", "off".to_string())],
        );
        let concurrency = settings.poller.concurrency;
        let db = Db::connect(&settings.db).await.unwrap();
        let engine = Engine::start(Arc::new(settings), db.clone()).await.unwrap();
        let all = devices::find(&db, "all").await.unwrap();
        for group in samples.split(';').filter(|g| !g.is_empty()) {
            let (profile, ids) = group.split_once(':').unwrap();
            let ids: std::collections::HashSet<u32> =
                ids.split(',').filter_map(|i| i.parse().ok()).collect();
            let sample: Vec<_> = all
                .iter()
                .filter(|d| ids.contains(&d.device_id))
                .cloned()
                .collect();
            let phases = std::iter::once(None)
                .chain(MEASURED.iter().map(Some))
                .chain(std::iter::once(None));
            for module in phases {
                let mut names = vec!["core".to_string()];
                names.extend(module.map(|m| m.to_string()));
                let before = process_cpu_seconds();
                engine
                    .poll_devices(sample.clone(), &Selection::Only(names), concurrency, |_| {})
                    .await
                    .unwrap();
                let problems = engine.flush().await;
                assert!(problems.is_empty(), "writers reported {problems:?}");
                println!(
                    "module {profile} {} {} {}",
                    module.copied().unwrap_or("core"),
                    process_cpu_seconds() - before,
                    sample.len()
                );
            }
        }
        let _ = engine.finish().await;
        db.close().await;
    });
}

/// Per profile and module: ironpoll's CPU ms per device.
type ModuleCpu = std::collections::BTreeMap<(String, String), f64>;

/// Runs the per-module measurement in a child and reads it: a module's
/// cost is its poll's CPU less the mean of the two `core`-only polls.
fn module_cpu(
    mysql_db: &str,
    rrd_port: u16,
    rrd_base: &Path,
    a: &Args,
    samples: &std::collections::BTreeMap<String, Vec<u32>>,
) -> ModuleCpu {
    let spec: Vec<String> = samples
        .iter()
        .map(|(p, ids)| {
            format!(
                "{p}:{}",
                ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    let out = Command::new(std::env::current_exe().unwrap())
        .env("IRONPOLL_CYCLE_CHILD", "modules")
        .env("IRONPOLL_CYCLE_DB", mysql_db)
        .env("IRONPOLL_CYCLE_RRD_PORT", rrd_port.to_string())
        .env("IRONPOLL_CYCLE_RRD_BASE", rrd_base)
        .env("IRONPOLL_CYCLE_RRA", &a.rra)
        .env("IRONPOLL_CYCLE_SAMPLES", spec.join(";"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run the per-module polls");
    assert!(out.status.success(), "the per-module polls failed");
    let mut raw: std::collections::BTreeMap<(String, String), Vec<f64>> = Default::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let ["module", profile, module, cpu, n] = f[..] {
            let per_device = cpu.parse::<f64>().unwrap() / n.parse::<f64>().unwrap().max(1.0);
            raw.entry((profile.to_string(), module.to_string()))
                .or_default()
                .push(per_device * 1e3);
        }
    }
    let mut out = ModuleCpu::new();
    for profile in samples.keys() {
        let core = raw
            .get(&(profile.clone(), "core".to_string()))
            .map_or(0.0, |v| v.iter().sum::<f64>() / v.len() as f64);
        out.insert((profile.clone(), "core".into()), core);
        for m in MEASURED {
            if let Some(v) = raw.get(&(profile.clone(), m.to_string())) {
                out.insert((profile.clone(), m.to_string()), v[0] - core);
            }
        }
    }
    out
}

fn print_cycle(name: &str, c: &Cycle, devices: usize) {
    let polled = (c.up + c.down).max(1) as f64;
    println!(
        "| {name} | {devices} | {} up, {} down, {} abandoned | {:.1} | {:.2} | **{:.1}%** | {:.2} | **{:.1}** | {:.1} | {} | {} | {} | {:.1} | {:.1} | {} | {:.1} | {:.2} | {:.2} |",
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
        c.db_peak_held,
        c.rrd_peak_held,
        c.db_behind,
        c.rrd_behind,
        if c.window_cuts == 0 {
            "0".to_string()
        } else {
            format!("{} (to {})", c.window_cuts, c.window_smallest)
        },
        c.memory_high,
        c.db_server_cpu,
        c.rrdcached_cpu,
    );
}

fn main() {
    if let Ok(child) = std::env::var("IRONPOLL_CYCLE_CHILD") {
        let var = |k: &str| std::env::var(k).unwrap();
        let (db, port, base, rra) = (
            var("IRONPOLL_CYCLE_DB"),
            var("IRONPOLL_CYCLE_RRD_PORT").parse().unwrap(),
            var("IRONPOLL_CYCLE_RRD_BASE"),
            var("IRONPOLL_CYCLE_RRA"),
        );
        if child == "modules" {
            child_modules(&db, port, &base, &rra, &var("IRONPOLL_CYCLE_SAMPLES"));
        } else if child == "alerting" {
            child_alerting(&db, port, &base, &rra, &var("IRONPOLL_CYCLE_SAMPLES"));
        } else {
            child_cycle(&db, port, &base, &rra);
        }
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
    let slow = SlowDb::start(a.slow_db);
    eprintln!("cycle 1 (new ports, RRD files created)");
    let (first, concurrency) = cycle(&mysql_db, rrd_port, &rrd_base, &a, rrdcached_pid);
    eprintln!("cycle 2 (steady state)");
    let (second, _) = cycle(&mysql_db, rrd_port, &rrd_base, &a, rrdcached_pid);
    drop(slow);
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for d in &fleet {
        *counts.entry(d.profile.name()).or_default() += 1;
    }
    println!(
        "fleet: {} devices ({}), latency {}, {}% dead; poller concurrency {concurrency}, poller.memory_high {} MiB, every native module on, RRAs \"{}\"{}",
        fleet.len(),
        counts
            .iter()
            .map(|(p, n)| format!("{n} {p}"))
            .collect::<Vec<_>>()
            .join(", "),
        a.latency,
        a.dead_percent,
        first.memory_high_mib,
        a.rra,
        if a.slow_db > 1 {
            format!(
                "; MariaDB slowed to 1/{} of its speed during both cycles",
                a.slow_db
            )
        } else {
            String::new()
        }
    );
    println!();
    println!(
        "| cycle | devices | result | wall s | poller CPU s | share of 2 cores over 300 s | poller CPU ms/device | peak RSS MB | DB statements/device | RRD updates | most DB rows held | most RRD updates held | s the DB was behind | s rrdcached was behind | poll window cuts (fewest in flight) | s memory was at poller.memory_high | MariaDB CPU s | rrdcached CPU s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    print_cycle("first (inserts ports, creates files)", &first, fleet.len());
    print_cycle("second (steady state)", &second, fleet.len());

    // Devices that were up, per profile, in fleet order (LibreNMS skips
    // the SNMP modules of down devices, as ironpoll does). Device ids
    // follow the fleet's order (add_devices inserts them so).
    let up: Vec<(u32, &FleetDevice)> = fleet
        .iter()
        .enumerate()
        .filter(|(_, d)| second.up_hosts.contains(&d.addr.ip().to_string()))
        .map(|(i, d)| (i as u32 + 1, d))
        .collect();
    let pick = |n: usize| {
        let mut by_profile: std::collections::BTreeMap<String, Vec<(u32, &FleetDevice)>> =
            Default::default();
        for (id, d) in &up {
            by_profile
                .entry(d.profile.name().to_string())
                .or_default()
                .push((*id, d));
        }
        for v in by_profile.values_mut() {
            let step = (v.len() / n.max(1)).max(1);
            *v = v.iter().step_by(step).take(n).copied().collect();
        }
        by_profile
    };

    let mut per_module = ModuleCpu::new();
    let module_sample = pick(a.module_sample);
    if a.module_sample > 0 {
        eprintln!("per-module CPU");
        let ids = module_sample
            .iter()
            .map(|(p, v)| (p.clone(), v.iter().map(|(id, _)| *id).collect()))
            .collect();
        per_module = module_cpu(&mysql_db, rrd_port, &rrd_base, &a, &ids);
    }

    let mut alerting = Vec::new();
    if a.module_sample > 0 {
        eprintln!("alerting CPU");
        let ids: Vec<u32> = module_sample
            .values()
            .flat_map(|v| v.iter().map(|(id, _)| *id))
            .collect();
        alerting = alerting_cpu(&mysql_db, rrd_port, &rrd_base, &a, &ids);
    }

    eprintln!("LibreNMS's way");
    let cli_sample = pick(a.sample);
    let mut cli: std::collections::BTreeMap<String, (CliCost, usize)> = Default::default();
    for (profile, devices) in &cli_sample {
        let sample: Vec<FleetDevice> = devices.iter().map(|(_, d)| (*d).clone()).collect();
        cli.insert(
            profile.clone(),
            (librenms_way(&sample, a.workers), sample.len()),
        );
    }

    println!();
    println!(
        "CPU ms per device, per module (ironpoll: a poll of `core` and the module less a poll of `core` alone, over {} devices per profile that were up; LibreNMS's way: its net-snmp and fping processes for the module, over {} devices per profile, {} at a time, PHP's own CPU not counted):",
        a.module_sample, a.sample, a.workers
    );
    println!();
    let profiles: Vec<&String> = cli.keys().collect();
    let mut header = "| module |".to_string();
    let mut rule = "|---|".to_string();
    for p in &profiles {
        header.push_str(&format!(" {p} ironpoll | {p} LibreNMS's way | {p} ratio |"));
        rule.push_str("---|---|---|");
    }
    println!("{header}");
    println!("{rule}");
    for module in std::iter::once("core").chain(MEASURED) {
        let mut line = format!("| {module} |");
        for p in &profiles {
            let ours = per_module.get(&((*p).clone(), module.to_string())).copied();
            let (cost, n) = &cli[*p];
            let theirs =
                cost.per_module.get(module).copied().unwrap_or(0.0) * 1e3 / (*n).max(1) as f64;
            match ours {
                Some(o) => line.push_str(&format!(
                    " {o:.3} | {theirs:.2} | {} |",
                    if o > 0.0 {
                        format!("{:.0}x", theirs / o)
                    } else {
                        "-".to_string()
                    }
                )),
                None => line.push_str(&format!(" - | {theirs:.2} | - |")),
            }
        }
        println!("{line}");
    }

    // The whole cycle against the whole of LibreNMS's way, per profile
    // weighted by the fleet's mix.
    let ours = second.cpu / second.up.max(1) as f64;
    let up_total = up.len().max(1) as f64;
    let mut theirs = 0.0;
    let mut processes = 0;
    let mut cli_wall = 0.0;
    let mut cli_cpu = 0.0;
    let mut sampled = 0;
    for (profile, (cost, n)) in &cli {
        let share = up
            .iter()
            .filter(|(_, d)| d.profile.name() == profile)
            .count() as f64
            / up_total;
        theirs += share * cost.cpu / (*n).max(1) as f64;
        processes += cost.processes;
        cli_wall += cost.wall;
        cli_cpu += cost.cpu;
        sampled += n;
    }
    println!();
    println!(
        "LibreNMS's way on {sampled} sampled devices ({processes} processes: fping, snmpget, snmpbulkwalk; {} devices at a time): {cli_cpu:.2} CPU s in {cli_wall:.1} s, {:.1} ms per device weighted by the fleet's mix (PHP's own CPU not counted)",
        a.workers,
        theirs * 1e3
    );
    println!(
        "ironpoll steady state: {:.2} ms per device that was up (the whole cycle's CPU); **ratio {:.1}x less CPU per device**",
        ours * 1e3,
        theirs / ours.max(1e-9)
    );
    if !alerting.is_empty() {
        println!();
        println!(
            "Alert rules and device groups after a poll (LibreNMS's {} default rules, run natively by ironpoll on {} devices that were up, after the cycles):",
            default_rule_count(),
            module_sample.values().map(Vec::len).sum::<usize>()
        );
        println!();
        println!("| devices per pass | ironpoll CPU ms/device | MariaDB CPU ms/device |");
        println!("|---|---|---|");
        for (pass, ours, db) in &alerting {
            println!("| {pass} | {ours:.3} | {db:.3} |");
        }
    }
}

/// How many of LibreNMS's rules are its defaults (`"default": true`).
fn default_rule_count() -> usize {
    let rules: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(librenms_fixtures().join("definitions/alert_rules.json")).unwrap(),
    )
    .unwrap();
    rules
        .iter()
        .filter(|r| r["default"] == serde_json::json!(true))
        .count()
}
