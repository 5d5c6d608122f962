//! The master of a LibreNMS dispatcher cluster: what one dispatch pass
//! costs in Redis commands, round trips and master CPU per device, for
//! ironpoll and for LibreNMS's own `librenms-service.py` in the same run,
//! and how long after a kill -9 of the master the next one dispatches.
//!
//!   cargo bench --locked --bench dispatch -- --devices 10000 --seconds 30
//!
//! Every device is due and none is locked (no node polls: polling is not
//! dispatched on the measured node), so each pass queues every device:
//! the most a pass can cost. Round trips are counted from the Redis side:
//! commands, and connections' reads (`total_reads_processed`).
//! Needs IRONPOLL_TEST_MYSQL, IRONPOLL_DISPATCHER_PYTHON and
//! IRONPOLL_LIBRENMS_FIXTURES (`./misc/test.sh --no-run` sets them up).

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ironpoll::config::{Layer, Mode, Source, resolve, settings_defaults};
use ironpoll::db::{Db, Statement};

#[path = "support/children.rs"]
mod children;
#[path = "support/measure.rs"]
mod measure;

use children::{Guard, free_tcp_port};

struct Args {
    devices: u64,
    seconds: u64,
}

fn args() -> Args {
    let mut a = Args {
        devices: 10_000,
        seconds: 30,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut num = || it.next().and_then(|v| v.parse().ok()).expect("a number");
        match k.as_str() {
            "--devices" => a.devices = num(),
            "--seconds" => a.seconds = num(),
            _ => {}
        }
    }
    a
}

fn redis_server() -> (Guard, u16) {
    let port = free_tcp_port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install redis-server)");
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (Guard(child), port)
}

fn redis(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap()
}

/// Commands by name, and reads processed, since the server started.
fn redis_counts(port: u16) -> (BTreeMap<String, u64>, u64) {
    let mut c = redis(port);
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut c)
        .unwrap();
    let mut calls = BTreeMap::new();
    for line in info.lines() {
        if let Some(rest) = line.strip_prefix("cmdstat_")
            && let Some((name, stats)) = rest.split_once(':')
            && let Some(n) = stats
                .split(',')
                .find_map(|f| f.strip_prefix("calls="))
                .and_then(|n| n.parse().ok())
        {
            calls.insert(name.to_string(), n);
        }
    }
    let stats: String = redis::cmd("INFO").arg("stats").query(&mut c).unwrap();
    let reads = stats
        .lines()
        .find_map(|l| l.strip_prefix("total_reads_processed:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (calls, reads)
}

fn master_owner(port: u16) -> Option<String> {
    redis::cmd("GET")
        .arg("librenms.lock:dispatch.master")
        .query(&mut redis(port))
        .unwrap()
}

async fn fresh_database(base: &str, devices: u64) -> String {
    let mut layer = Layer::new(Source::Flag, true);
    layer.set("db.url", serde_json::json!(format!("{base}/mysql")));
    let admin = Db::connect(
        &resolve(&[layer], settings_defaults(Mode::Librenms))
            .unwrap()
            .db,
    )
    .await
    .expect("connect to MariaDB");
    for sql in [
        "DROP DATABASE IF EXISTS `ironpoll_dispatch_bench`",
        "CREATE DATABASE `ironpoll_dispatch_bench`",
    ] {
        admin.execute(&Statement::new(sql)).await.unwrap();
    }
    admin.close().await;
    let url = format!("{base}/ironpoll_dispatch_bench");
    let mut layer = Layer::new(Source::Flag, true);
    layer.set("db.url", serde_json::json!(url.clone()));
    let db = Db::connect(
        &resolve(&[layer], settings_defaults(Mode::Librenms))
            .unwrap()
            .db,
    )
    .await
    .unwrap();
    db.create_schema().await.unwrap();
    // Discovered, never polled: every device is due for a poll.
    db.execute(&Statement::new(format!(
        "INSERT INTO `devices` (`hostname`, `snmpver`, `community`, `status_reason`, `last_discovered`, `port`) \
         SELECT CONCAT('dev-', `seq`), 'v2c', 'public', '', NOW(), 161 FROM seq_1_to_{devices}"
    )))
    .await
    .unwrap();
    db.close().await;
    url
}

fn ironpoll_node(db_url: &str, redis: u16, name: &str) -> Guard {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ironpoll"));
    cmd.args(["run", "--db", db_url]);
    for (k, v) in [
        ("distributed_poller", "true".to_string()),
        ("distributed_poller_name", name.into()),
        ("node_id", name.into()),
        ("redis.host", "127.0.0.1".into()),
        ("redis.port", redis.to_string()),
        // The node measured only dispatches.
        ("service_poller_enabled", "false".into()),
        (
            "rrd_dir",
            std::env::temp_dir()
                .join("ironpoll-dispatch-bench")
                .display()
                .to_string(),
        ),
    ] {
        cmd.args(["--set", &format!("{k}={v}")]);
    }
    Guard(
        cmd.env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::write(to.join(e.file_name()), std::fs::read(e.path()).unwrap()).unwrap();
        }
    }
}

/// `librenms-service.py` with a stand-in `lnms` that answers
/// `config:get --dump`; polling is not dispatched on it either.
fn python_node(dir: &Path, db_url: &str, redis: u16, name: &str) -> Guard {
    let fixtures = PathBuf::from(
        std::env::var_os("IRONPOLL_LIBRENMS_FIXTURES").expect("IRONPOLL_LIBRENMS_FIXTURES"),
    );
    let python = PathBuf::from(
        std::env::var_os("IRONPOLL_DISPATCHER_PYTHON").expect("IRONPOLL_DISPATCHER_PYTHON"),
    );
    let base = dir.join(name);
    let src = fixtures.join("dispatcher");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(
        base.join("librenms-service.py"),
        std::fs::read(src.join("librenms-service.py")).unwrap(),
    )
    .unwrap();
    copy_tree(&src.join("LibreNMS"), &base.join("LibreNMS"));
    let config = serde_json::json!({
        "distributed_poller": true,
        "distributed_poller_name": name,
        "distributed_poller_group": "0",
        "schedule_type": {"poller": "legacy"},
        "service_poller_enabled": false,
        // What LibreNMS's dump holds by default.
        "service_master_timeout": 20,
        "service_poller_frequency": 300,
        "service_update_enabled": false,
        "log_dir": base.display().to_string(),
    });
    let lnms = base.join("lnms");
    std::fs::write(
        &lnms,
        format!(
            "#!{}\nimport sys\nprint({:?})\n",
            python.display(),
            config.to_string()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(base.join("bin")).unwrap();
    std::fs::write(base.join("bin/php"), "#!/bin/sh\nexec \"$@\"\n").unwrap();
    for f in [lnms, base.join("bin/php")] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let rest = db_url.strip_prefix("mysql://").unwrap();
    let (user, rest) = rest.split_once('@').unwrap();
    let (hostport, dbname) = rest.split_once('/').unwrap();
    let (host, port) = hostport.split_once(':').unwrap();
    std::fs::write(
        base.join(".env"),
        format!("NODE_ID={name}\nDB_HOST={host}\nDB_PORT={port}\nDB_DATABASE={dbname}\nDB_USERNAME={user}\nDB_PASSWORD=\nREDIS_HOST=127.0.0.1\nREDIS_PORT={redis}\n"),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        base.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Guard(
        Command::new(python)
            .arg(base.join("librenms-service.py"))
            .env("PATH", path)
            .current_dir(&base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

struct Pass {
    passes: f64,
    commands_per_device: f64,
    reads_per_pass: f64,
    cpu_us_per_device: f64,
    by_command: BTreeMap<String, u64>,
}

/// Runs `node` as the only node for `seconds` once it is master.
fn measure(node: Guard, redis: u16, devices: u64, seconds: u64, pass_command: &str) -> Pass {
    let deadline = Instant::now() + Duration::from_secs(120);
    while master_owner(redis).is_none() {
        assert!(Instant::now() < deadline, "no master within 120 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let the first passes (and the queue's first fill) settle.
    std::thread::sleep(Duration::from_secs(5));
    let pid = node.0.id();
    let (calls0, reads0) = redis_counts(redis);
    let cpu0 = measure::cpu_of(pid);
    std::thread::sleep(Duration::from_secs(seconds));
    let cpu = measure::cpu_of(pid) - cpu0;
    let (calls1, reads1) = redis_counts(redis);
    drop(node);
    let mut by_command = BTreeMap::new();
    for (k, v) in &calls1 {
        let d = v - calls0.get(k).copied().unwrap_or(0);
        if d > 0 && k != "info" {
            by_command.insert(k.clone(), d);
        }
    }
    // Each pass asks once per device about its lock: EXISTS (ironpoll,
    // pipelined) or GET (LibreNMS).
    let passes = by_command.get(pass_command).copied().unwrap_or(0) as f64 / devices as f64;
    let commands: u64 = by_command.values().sum();
    // Less the reads of this reading's own connection.
    let reads = (reads1 - reads0).saturating_sub(3) as f64;
    Pass {
        passes,
        commands_per_device: commands as f64 / passes.max(1e-9) / devices as f64,
        reads_per_pass: reads / passes.max(1e-9),
        cpu_us_per_device: cpu * 1e6 / passes.max(1e-9) / devices as f64,
        by_command,
    }
}

/// kill -9 of the master among two nodes: seconds until another holds
/// the master lock (the new master dispatches in that same second).
fn failover(mut start: impl FnMut(&str) -> Guard, port: u16) -> f64 {
    let _: () = redis::cmd("FLUSHALL").query(&mut redis(port)).unwrap();
    let a = start("node-a");
    while master_owner(port).is_none() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let b = start("node-b");
    std::thread::sleep(Duration::from_secs(5));
    let owner = master_owner(port).unwrap();
    let (master, other) = if owner.starts_with("node-a") {
        (a, b)
    } else {
        (b, a)
    };
    drop(master);
    let killed = Instant::now();
    loop {
        if master_owner(port).is_some_and(|o| o != owner) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
        assert!(killed.elapsed() < Duration::from_secs(120), "no new master");
    }
    let took = killed.elapsed().as_secs_f64();
    drop(other);
    took
}

fn main() {
    let a = args();
    let mysql = std::env::var("IRONPOLL_TEST_MYSQL")
        .expect("IRONPOLL_TEST_MYSQL is not set; run ./misc/test.sh --no-run");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db_url = rt.block_on(fresh_database(&mysql, a.devices));
    let (_redis_guard, redis_port) = redis_server();
    let dir = tempfile::tempdir().unwrap();
    println!(
        "# one dispatch pass over {} due devices, {} s per master",
        a.devices, a.seconds
    );
    let mut results = Vec::new();
    for kind in ["ironpoll", "librenms-service.py"] {
        let _: () = redis::cmd("FLUSHALL")
            .query(&mut redis(redis_port))
            .unwrap();
        let node = match kind {
            "ironpoll" => ironpoll_node(&db_url, redis_port, "bench-master"),
            _ => python_node(dir.path(), &db_url, redis_port, "bench-master"),
        };
        let pass_command = if kind == "ironpoll" { "exists" } else { "get" };
        let p = measure(node, redis_port, a.devices, a.seconds, pass_command);
        println!(
            "{kind:>20}: {:.1} passes in {} s; per device per pass: {:.2} commands, {:.1} µs master CPU; {:.1} round trips per pass; commands: {:?}",
            p.passes,
            a.seconds,
            p.commands_per_device,
            p.cpu_us_per_device,
            p.reads_per_pass,
            p.by_command
        );
        results.push(p);
    }
    let (i, l) = (&results[0], &results[1]);
    println!(
        "ratios (LibreNMS / ironpoll): {:.0}x the round trips per pass, {:.1}x the commands and {:.1}x the master CPU per device",
        l.reads_per_pass / i.reads_per_pass.max(1e-9),
        l.commands_per_device / i.commands_per_device.max(1e-9),
        l.cpu_us_per_device / i.cpu_us_per_device.max(1e-9)
    );
    let took = failover(|n| ironpoll_node(&db_url, redis_port, n), redis_port);
    println!(
        "ironpoll: kill -9 of the master to the next master's dispatch: {took:.1} s (service_master_timeout 20)"
    );
    let took = failover(
        |n| python_node(dir.path(), &db_url, redis_port, n),
        redis_port,
    );
    println!(
        "librenms-service.py: kill -9 of the master to the next master's dispatch: {took:.1} s (service_master_timeout 20)"
    );
}
