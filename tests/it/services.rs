//! The service tier: real MariaDB, rrdcached and snmpd (and ironpoll's
//! simulator) on loopback. `./misc/test.sh` installs and starts MariaDB
//! (a private instance) and installs rrdcached; the tests start their own
//! rrdcached instances so they can stop and restart them.

use std::collections::BTreeSet;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ironpoll::config::{DbSettings, Mode, Settings, resolve, settings_defaults};
use ironpoll::db::{Db, Statement, Val, devices};
use ironpoll::modules::Selection;
use ironpoll::modules::core::UPTIME;
use ironpoll::poller::engine::Engine;
use ironpoll::rrd::rrdcached::Address;
use ironpoll::rrd::writer::WriterOptions;
use ironpoll::rrd::{CreateSpec, Datum, Rra, RrdFile, RrdSink, RrdUpdate, RrdWriter};
use ironpoll::sim::profile::Profile;
use ironpoll::sim::{FleetConfig, FleetLayout, Member, SimConfig, Simulator};

use crate::support::*;
use crate::within;

/// A fresh database on the test MariaDB, with ironpoll's tables.
pub struct TestDb {
    pub url: String,
    pub db: Db,
}

fn mysql_base() -> String {
    std::env::var("IRONPOLL_TEST_MYSQL").unwrap_or_else(|_| {
        panic!("IRONPOLL_TEST_MYSQL is not set (mysql://root@127.0.0.1:PORT): {SETUP_HINT}")
    })
}

fn db_settings(url: &str) -> DbSettings {
    let mut s = resolve(&[], settings_defaults(Mode::Librenms)).unwrap().db;
    s.url = url.to_string();
    s
}

impl TestDb {
    pub async fn new() -> TestDb {
        let base = mysql_base();
        let admin = Db::connect(&db_settings(&format!("{base}/mysql")))
            .await
            .unwrap_or_else(|e| panic!("{e}: {SETUP_HINT}"));
        let name = format!("ironpoll_t{}_{}", std::process::id(), rand::random::<u32>());
        admin
            .execute(&Statement::new(format!("CREATE DATABASE `{name}`")))
            .await
            .unwrap();
        admin.close().await;
        let url = format!("{base}/{name}");
        let db = Db::connect(&db_settings(&url)).await.unwrap();
        db.create_schema().await.unwrap();
        TestDb { url, db }
    }

    pub async fn drop_database(self) {
        let name = self.url.rsplit('/').next().unwrap().to_string();
        self.db.close().await;
        let admin = Db::connect(&db_settings(&format!("{}/mysql", mysql_base())))
            .await
            .unwrap();
        let _ = admin
            .execute(&Statement::new(format!("DROP DATABASE IF EXISTS `{name}`")))
            .await;
        admin.close().await;
    }

    pub async fn scalar(&self, sql: &str) -> Val {
        self.db
            .fetch(&Statement::new(sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .first()
            .map_or(Val::Null, |r| r.values()[0].clone())
    }

    pub async fn add_device(&self, hostname: &str, port: u16, extra: &[(&str, Val)]) -> u32 {
        let mut cols = vec![
            ("hostname", Val::text(hostname)),
            ("port", Val::from(u32::from(port))),
            ("snmpver", Val::text("v2c")),
            ("community", Val::text("public")),
            ("status_reason", Val::text("")),
            ("last_discovered", Val::Now),
        ];
        for (k, v) in extra {
            cols.retain(|(c, _)| c != k);
            cols.push((k, v.clone()));
        }
        let names: Vec<String> = cols.iter().map(|(c, _)| format!("`{c}`")).collect();
        let mut st = Statement::new(format!(
            "INSERT INTO `devices` ({}) VALUES (",
            names.join(", ")
        ));
        st.values(self.db.dialect(), cols.into_iter().map(|(_, v)| v));
        st.push(")");
        self.db.insert(&st).await.unwrap() as u32
    }
}

/// A private rrdcached: unix socket and TCP, base directory, journal.
pub struct Rrdcached {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Rrdcached {
    pub fn start() -> Rrdcached {
        let dir = tempfile::Builder::new()
            .prefix("ironpoll-rrdcached")
            .tempdir()
            .unwrap()
            .keep();
        std::fs::create_dir_all(dir.join("rrd")).unwrap();
        std::fs::create_dir_all(dir.join("journal")).unwrap();
        let port = free_tcp_port();
        let mut r = Rrdcached {
            socket: dir.join("rrdcached.sock"),
            dir,
            port,
            child: None,
        };
        r.spawn();
        r
    }

    pub fn base(&self) -> PathBuf {
        self.dir.join("rrd")
    }

    pub fn address(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let child = Command::new(tool("rrdcached"))
            .arg("-g")
            .arg("-l")
            .arg(self.address())
            .arg("-l")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("-b")
            .arg(self.base())
            .args(["-B", "-R", "-F", "-w", "3600"])
            .arg("-j")
            .arg(self.dir.join("journal"))
            .arg("-p")
            .arg(self.dir.join("rrdcached.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start rrdcached: {e}: {SETUP_HINT}"));
        self.child = Some(child);
        for _ in 0..100 {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("rrdcached did not open {}", self.socket.display());
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Sends a signal to rrdcached (`STOP`, `CONT`).
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("rrdcached running").id();
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {pid}");
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// `rrdtool info` of a file under the base directory, after making
    /// rrdcached write it out.
    pub fn info(&self, relative: &str) -> String {
        let out = run(
            {
                let mut c = Command::new(tool("rrdtool"));
                c.arg("info")
                    .arg("--daemon")
                    .arg(self.address())
                    .arg(self.base().join(relative));
                c
            },
            Duration::from_secs(20),
        );
        assert!(
            out.status.success(),
            "rrdtool info {relative}: {}",
            stderr(&out)
        );
        stdout(&out)
    }

    /// `rrdtool fetch` rows (time, values) of a file.
    pub fn fetch(
        &self,
        relative: &str,
        start: i64,
        end: i64,
        resolution: u32,
    ) -> Vec<(i64, Vec<f64>)> {
        let out = run(
            {
                let mut c = Command::new(tool("rrdtool"));
                c.arg("fetch")
                    .arg("--daemon")
                    .arg(self.address())
                    .arg(self.base().join(relative))
                    .arg("AVERAGE")
                    .args([
                        "-s",
                        &start.to_string(),
                        "-e",
                        &end.to_string(),
                        "-r",
                        &resolution.to_string(),
                    ]);
                c
            },
            Duration::from_secs(20),
        );
        assert!(
            out.status.success(),
            "rrdtool fetch {relative}: {}",
            stderr(&out)
        );
        stdout(&out)
            .lines()
            .filter_map(|l| {
                let (t, rest) = l.split_once(':')?;
                let t: i64 = t.trim().parse().ok()?;
                let vals = rest
                    .split_whitespace()
                    .map(|v| v.parse::<f64>().unwrap_or(f64::NAN))
                    .collect();
                Some((t, vals))
            })
            .collect()
    }
}

impl Drop for Rrdcached {
    fn drop(&mut self) {
        // The directory outlives restarts (kept from the TempDir) but not
        // the test: RRD files of a fleet run to gigabytes.
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn info_value<'a>(info: &'a str, key: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(" = "))
        .map(|v| v.trim_matches('"'))
}

fn ironpoll_poll(url: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = ironpoll();
    cmd.arg("poll").args(args).arg("--db").arg(url);
    // No .env of a real LibreNMS may leak in.
    cmd.current_dir(std::env::temp_dir())
        .arg("--librenms-dir")
        .arg("/nonexistent");
    run(cmd, Duration::from_secs(120))
}

async fn switch_sim(size: usize, faults: &[&str]) -> Simulator {
    port_fleet(Profile::Switch48, size, faults).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_librenms_poll_writes_rows_and_rrd_files_through_rrdcached() {
    within(180, async {
        let t = TestDb::new().await;
        let rrd = Rrdcached::start();
        let snmpd = snmpd();
        let id = t.add_device("127.0.0.1", snmpd.port, &[]).await;
        // The same agent over TCP, as a device of its own.
        let tcp_id = t
            .add_device(
                "127.0.0.2",
                snmpd.port,
                &[("transport", Val::text("tcp")), ("overwrite_ip", Val::text("127.0.0.1"))],
            )
            .await;
        // Settings come from LibreNMS's config table, JSON-encoded.
        let mut st = Statement::new("INSERT INTO `config` (`config_name`, `config_value`) VALUES ('rrdcached', ");
        st.value(t.db.dialect(), Val::text(format!("\"{}\"", rrd.address())));
        st.push("), ('rrd_dir', ");
        st.value(t.db.dialect(), Val::text(format!("\"{}\"", rrd.base().display())));
        st.push(")");
        t.db.execute(&st).await.unwrap();

        // The first poll finds the ports (as LibreNMS's discovery would).
        let out = ironpoll_poll(&t.url, &["all", "--set", "ports.discover_when_empty=true"]);
        assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
        assert!(stdout(&out).contains("ports"), "{}", stdout(&out));

        let dev = devices::load(&t.db, &[id]).await.unwrap().remove(0);
        assert!(dev.status, "{dev:?}");
        assert_eq!(dev.status_reason, "");
        assert!(dev.uptime.unwrap_or(0) > 0);
        assert!(dev.sys_descr.as_deref().unwrap_or("").starts_with("Linux"));
        assert!(dev.last_polled.is_some() && dev.last_polled_timetaken.is_some());
        assert!(dev.last_ping.is_some());
        let ports = t.scalar(&format!("SELECT COUNT(*) FROM `ports` WHERE `device_id` = {id}")).await;
        let ports = ports.as_i64().unwrap();
        assert!(ports >= 2, "snmpd shows at least lo and one more interface");
        let tcp_dev = devices::load(&t.db, &[tcp_id]).await.unwrap().remove(0);
        assert!(tcp_dev.status, "{tcp_dev:?}");
        assert_eq!(tcp_dev.sys_descr, dev.sys_descr);
        let tcp_ports = t.scalar(&format!("SELECT COUNT(*) FROM `ports` WHERE `device_id` = {tcp_id}")).await;
        assert_eq!(tcp_ports.as_i64(), Some(ports), "the same ports over TCP");
        let lo = t
            .scalar(&format!(
                "SELECT `ifInOctets` FROM `ports` WHERE `device_id` = {id} AND `ifName` = 'lo'"
            ))
            .await;
        assert!(lo.as_u64().is_some(), "lo has a counter: {lo:?}");
        let graphs: BTreeSet<String> = t
            .db
            .fetch(&Statement::new(format!("SELECT `graph` FROM `device_graphs` WHERE `device_id` = {id}")))
            .await
            .unwrap()
            .iter()
            .filter_map(|r| r.string("graph"))
            .collect();
        for g in ["uptime", "poller_modules_perf", "ping_perf", "availability"] {
            assert!(graphs.contains(g), "graph {g} in {graphs:?}");
        }
        let stats = t.scalar(&format!("SELECT `ping_loss_last` FROM `device_stats` WHERE `device_id` = {id}")).await;
        assert_eq!(stats.as_f64(), Some(0.0));

        // The RRD files LibreNMS makes, with its definitions.
        let host = "127.0.0.1";
        let port_id = t
            .scalar(&format!("SELECT MIN(`port_id`) FROM `ports` WHERE `device_id` = {id}"))
            .await
            .as_i64()
            .unwrap();
        let info = rrd.info(&format!("{host}/port-id{port_id}.rrd"));
        assert_eq!(info_value(&info, "step"), Some("300"));
        assert_eq!(info_value(&info, "ds[INOCTETS].type"), Some("DERIVE"));
        assert_eq!(info_value(&info, "ds[INOCTETS].minimal_heartbeat"), Some("600"));
        assert_eq!(info_value(&info, "ds[OUTMULTICASTPKTS].max"), Some("1.2500000000e+10"));
        assert_eq!(info_value(&info, "rra[12].cf"), Some("LAST"));
        assert_eq!(info_value(&info, "rra[3].pdp_per_row"), Some("288"));
        assert!(info_value(&info, "rra[13].cf").is_none(), "13 archives");
        for file in ["uptime.rrd", "poller-perf.rrd", "poller-perf-ports.rrd", "icmp-perf.rrd", "availability-86400.rrd"] {
            let info = rrd.info(&format!("{host}/{file}"));
            assert!(info_value(&info, "last_update").is_some(), "{file}");
        }
        let uptime_info = rrd.info(&format!("{host}/uptime.rrd"));
        assert_eq!(
            info_value(&uptime_info, "ds[uptime].last_ds"),
            Some(dev.uptime.unwrap().to_string().as_str())
        );

        // A second poll: deltas and rates over the time between the polls.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let out = ironpoll_poll(&t.url, &["all"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let rows = t
            .db
            .fetch(&Statement::new(format!(
                "SELECT `ifInOctets_delta`, `ifInOctets_rate`, `poll_period`, `poll_prev`, `poll_time` FROM `ports` WHERE `device_id` = {id} AND `ifName` = 'lo'"
            )))
            .await
            .unwrap();
        let r = &rows[0];
        let period = r.i64("poll_period").unwrap();
        assert!(period >= 2, "{r:?}");
        assert_eq!(r.i64("poll_time").unwrap() - r.i64("poll_prev").unwrap(), period);
        let delta = r.i64("ifInOctets_delta").unwrap();
        assert!(delta > 0, "our own polls moved lo's counter: {r:?}");
        assert_eq!(r.i64("ifInOctets_rate").unwrap(), (delta as f64 / period as f64).round() as i64);
        t.drop_database().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_in_the_database_match_the_rrd_files() {
    within(180, async {
        let t = TestDb::new().await;
        let rrd = Rrdcached::start();
        let sim = switch_sim(1, &[]).await;
        let addr = sim.fleet[0].addr;
        let id = t.add_device("127.0.0.1", addr.port(), &[]).await;
        // One-second steps so that two polls seconds apart make a rate.
        let common = [
            "--set".to_string(),
            format!("rrdcached={}", rrd.address()),
            "--set".into(),
            format!("rrd_dir={}", rrd.base().display()),
            "--set".into(),
            "rrd.step=1".into(),
            "--set".into(),
            "ports.discover_when_empty=true".into(),
        ];
        let args = |extra: &[&str]| -> Vec<String> {
            let mut v: Vec<String> = vec!["all".into()];
            v.extend(common.iter().cloned());
            v.extend(extra.iter().map(|s| s.to_string()));
            v
        };
        let a1 = args(&[]);
        let out = ironpoll_poll(&t.url, &a1.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        tokio::time::sleep(Duration::from_secs(3)).await;
        let out = ironpoll_poll(&t.url, &a1.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let rows = t
            .db
            .fetch(&Statement::new(format!(
                "SELECT `port_id`, `ifInOctets_rate`, `ifInOctets_delta`, `poll_time`, `poll_prev` FROM `ports` WHERE `device_id` = {id} AND `ifInOctets_delta` > 1000 ORDER BY `port_id` LIMIT 1"
            )))
            .await
            .unwrap();
        let r = rows.first().expect("a busy port");
        let (port_id, rate) = (r.i64("port_id").unwrap(), r.i64("ifInOctets_rate").unwrap() as f64);
        let (t1, t0) = (r.i64("poll_time").unwrap(), r.i64("poll_prev").unwrap());
        let fetched = rrd.fetch(&format!("127.0.0.1/port-id{port_id}.rrd"), t0, t1, 1);
        let in_rate: Vec<f64> = fetched
            .iter()
            .filter(|(ts, v)| *ts > t0 && *ts <= t1 && v[0].is_finite())
            .map(|(_, v)| v[0])
            .collect();
        assert!(!in_rate.is_empty(), "{fetched:?}");
        for v in in_rate {
            assert!((v - rate).abs() <= rate * 0.01 + 1.0, "rrd {v} vs db {rate}");
        }
        drop(sim);
        t.drop_database().await;
    })
    .await;
}

fn spec() -> CreateSpec {
    CreateSpec {
        step: 300,
        heartbeat: 600,
        rras: vec![Rra::parse("RRA:AVERAGE:0.5:1:10").unwrap()],
    }
}

fn updates(files: usize, time: i64) -> Vec<RrdUpdate> {
    (0..files)
        .map(|i| {
            RrdUpdate::new(
                RrdFile::new(&format!("dev{}", i % 7), &["uptime", &i.to_string()]),
                &UPTIME,
                time,
                vec![Datum::Uint(time as u64 + i as u64)],
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rrdcached_restart_loses_nothing_within_the_buffer_bound() {
    within(120, async {
        let mut rrd = Rrdcached::start();
        let addr = Address::parse(&rrd.address()).unwrap();
        let options = WriterOptions {
            buffer_limit: 10_000,
            flush_interval: Duration::from_millis(50),
            io_timeout: Duration::from_secs(2),
            ..WriterOptions::default()
        };
        let (w, _task) = RrdWriter::start(RrdSink::Cached(addr.clone()), spec(), options.clone());
        let t0 = 1_700_000_000;
        w.send(updates(200, t0)).await;
        w.flush().await.unwrap();
        assert_eq!(w.stats().created, 200);

        rrd.stop();
        w.send(updates(200, t0 + 300)).await;
        w.send(updates(200, t0 + 600)).await;
        assert!(w.flush().await.is_err(), "rrdcached is down");
        let held = w.stats();
        assert_eq!((held.buffered, held.dropped), (400, 0), "{held:?}");

        rrd.restart();
        // The writer retries on its own; a flush waits for it.
        let mut tries = 0;
        while w.flush().await.is_err() {
            tries += 1;
            assert!(tries < 100, "held updates never written");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let s = w.stats();
        assert_eq!(
            (s.written, s.dropped, s.rejected, s.buffered),
            (600, 0, 0, 0),
            "{s:?}"
        );
        let info = rrd.info("dev3/uptime-3.rrd");
        assert_eq!(
            info_value(&info, "last_update"),
            Some((t0 + 600).to_string().as_str())
        );

        // Past the bound the oldest updates go, counted.
        let small = WriterOptions {
            buffer_limit: 50,
            ..options
        };
        let (w2, _task2) = RrdWriter::start(RrdSink::Cached(addr), spec(), small);
        rrd.stop();
        w2.send(updates(80, t0 + 900)).await;
        assert!(w2.flush().await.is_err());
        rrd.restart();
        let mut tries = 0;
        while w2.flush().await.is_err() {
            tries += 1;
            assert!(tries < 100, "held updates never written");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let s = w2.stats();
        assert_eq!((s.received, s.written, s.dropped), (80, 50, 30), "{s:?}");
    })
    .await;
}

pub fn librenms_settings(overrides: &[(&str, &str)]) -> Settings {
    let mut layer = ironpoll::config::Layer::new(ironpoll::config::Source::Flag, true);
    for (k, v) in overrides {
        layer.set(*k, serde_json::Value::String(v.to_string()));
    }
    resolve(&[layer], settings_defaults(Mode::Librenms)).unwrap()
}

pub async fn engine(t: &TestDb, overrides: &[(&str, &str)]) -> (Arc<Engine>, Rrdcached) {
    let rrd = Rrdcached::start();
    let mut all = vec![
        ("rrdcached", rrd.address()),
        ("rrd_dir", rrd.base().display().to_string()),
    ];
    all.extend(overrides.iter().map(|(k, v)| (*k, v.to_string())));
    let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let settings = librenms_settings(&pairs);
    (
        Engine::start(Arc::new(settings), t.db.clone())
            .await
            .unwrap(),
        rrd,
    )
}

pub async fn poll_all(e: &Arc<Engine>) -> Vec<ironpoll::poller::DeviceReport> {
    let list = devices::find(&e.db, "all").await.unwrap();
    let mut reports = Vec::new();
    e.poll_devices(list, &Selection::Configured, 16, |r| reports.push(r))
        .await
        .unwrap();
    assert!(e.flush().await.is_empty());
    reports.sort_by_key(|r| r.device_id);
    reports
}

async fn outages(t: &TestDb, id: u32) -> Vec<(i64, Option<i64>)> {
    t.db
        .fetch(&Statement::new(format!(
            "SELECT `going_down`, `up_again` FROM `device_outages` WHERE `device_id` = {id} ORDER BY `id`"
        )))
        .await
        .unwrap()
        .iter()
        .map(|r| (r.i64("going_down").unwrap(), r.i64("up_again")))
        .collect()
}

async fn events(t: &TestDb, id: u32, kind: &str) -> Vec<String> {
    t.db
        .fetch(&Statement::new(format!(
            "SELECT `message` FROM `eventlog` WHERE `device_id` = {id} AND `type` = '{kind}' ORDER BY `event_id`"
        )))
        .await
        .unwrap()
        .iter()
        .filter_map(|r| r.string("message"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_device_is_marked_down_with_its_reason_and_outage_then_comes_back() {
    within(180, async {
        let t = TestDb::new().await;
        let (e, _rrd) = engine(&t, &[("snmp.timeout", "0.2"), ("snmp.retries", "1")]).await;
        // Nothing listens here yet: ICMP answers (loopback), SNMP does not.
        let port = free_udp_port();
        let id = t.add_device("127.0.0.1", port, &[("status", Val::Int(1))]).await;
        // Nothing answers for TEST-NET-2: ICMP fails.
        let gone = t.add_device("198.51.100.1", 161, &[("status", Val::Int(1))]).await;

        let reports = poll_all(&e).await;
        assert_eq!(reports.len(), 2);
        let d = devices::load(&t.db, &[id]).await.unwrap().remove(0);
        assert!(!d.status);
        assert_eq!(d.status_reason, "snmp");
        assert!(d.last_polled.is_none(), "a down device keeps last_polled");
        assert_eq!(events(&t, id, "down").await, ["Device status changed to Down from snmp check."]);
        let o = outages(&t, id).await;
        assert_eq!(o.len(), 1);
        assert!(o[0].1.is_none(), "open outage: {o:?}");
        let g = devices::load(&t.db, &[gone]).await.unwrap().remove(0);
        assert_eq!((g.status, g.status_reason.as_str()), (false, "icmp"));
        assert_eq!(events(&t, gone, "down").await, ["Device status changed to Down from icmp check."]);

        // Still down: no second event, still one outage.
        poll_all(&e).await;
        assert_eq!(events(&t, id, "down").await.len(), 1);
        assert_eq!(outages(&t, id).await.len(), 1);

        // The agent answers: up again, the outage closes.
        let sim = Simulator::start(SimConfig {
            fleet: Some(FleetConfig {
                size: 1,
                mix: vec![(Member::Profile(Profile::Linux), 1)],
                layout: FleetLayout::Ports {
                    addr: "127.0.0.1".parse().unwrap(),
                    first_port: port,
                },
                community: "public".into(),
            }),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        poll_all(&e).await;
        let d = devices::load(&t.db, &[id]).await.unwrap().remove(0);
        assert!(d.status);
        assert_eq!(d.status_reason, "");
        assert!(d.last_polled.is_some());
        assert_eq!(events(&t, id, "up").await, ["Device status changed to Up from snmp check."]);
        let o = outages(&t, id).await;
        assert_eq!(o.len(), 1);
        assert!(o[0].1.is_some_and(|up| up >= o[0].0), "closed outage: {o:?}");
        let day = t
            .scalar(&format!(
                "SELECT `availability_perc` FROM `availability` WHERE `device_id` = {id} AND `duration` = 86400"
            ))
            .await;
        // The device is seconds old and was down most of them.
        let day = day.as_f64().unwrap();
        assert!(day < 100.0, "the outage counts against the day: {day}");
        drop(sim);
        t.drop_database().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_and_garbage_agents_cost_only_themselves() {
    within(180, async {
        let t = TestDb::new().await;
        let (e, _rrd) = engine(
            &t,
            &[("snmp.timeout", "0.3"), ("snmp.retries", "1"), ("ports.discover_when_empty", "true")],
        )
        .await;
        let sim = switch_sim(2, &["switch48-00002:malformed"]).await;
        assert_eq!(sim.fleet[1].name, "switch48-00002");
        let good = t.add_device("127.0.0.1", sim.fleet[0].addr.port(), &[]).await;
        let garbage = t.add_device("127.0.0.1", sim.fleet[1].addr.port(), &[("overwrite_ip", Val::text("127.0.0.1"))]).await;
        let sctp = t.add_device("127.0.0.1", 161, &[("transport", Val::text("sctp"))]).await;
        // Over TCP, to a port nothing listens on.
        let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let tcp_refused = t
            .add_device("127.0.0.1", closed_port, &[("transport", Val::text("tcp"))])
            .await;
        let no_host = t.add_device("", 161, &[]).await;
        let bad_v3 = t
            .add_device(
                "127.0.0.1",
                161,
                &[
                    ("snmpver", Val::text("v3")),
                    ("authlevel", Val::text("authPriv")),
                    ("authname", Val::text("admin")),
                    ("authpass", Val::text("s3cr")),
                    ("authalgo", Val::text("SHA")),
                    ("cryptopass", Val::text("hunter2hunter2")),
                    ("cryptoalgo", Val::text("AES")),
                ],
            )
            .await;
        let bad_version = t.add_device("127.0.0.1", 161, &[("snmpver", Val::text("v9"))]).await;
        let unresolvable = t.add_device("no-such-host.invalid", 161, &[]).await;
        // A port row LibreNMS would never write: no ifIndex, odd values.
        t.db.execute(&Statement::new(format!(
            "INSERT INTO `ports` (`device_id`, `ifIndex`, `ifName`, `ifSpeed`, `ifOperStatus`) VALUES ({good}, NULL, 'weird', -5, 'sideways')"
        )))
        .await
        .unwrap();

        let reports = poll_all(&e).await;
        let by_id = |id: u32| reports.iter().find(|r| r.device_id == id).unwrap();
        assert!(by_id(good).status, "{:?}", by_id(good));
        let ports = t
            .scalar(&format!("SELECT COUNT(*) FROM `ports` WHERE `device_id` = {good} AND `ifInOctets` IS NOT NULL"))
            .await;
        assert_eq!(ports.as_i64(), Some(53), "the good device's ports are written");
        let weird = t
            .scalar(&format!("SELECT `deleted` FROM `ports` WHERE `device_id` = {good} AND `ifName` = 'weird'"))
            .await;
        assert_eq!(weird.as_i64(), Some(1), "the odd row is marked deleted, nothing else");
        for (id, needle) in [
            (sctp, "transport"),
            (tcp_refused, "no TCP connection"),
            (no_host, "no hostname"),
            (bad_v3, "at least 8"),
            (bad_version, "v9"),
            (unresolvable, "no-such-host.invalid"),
        ] {
            let r = by_id(id);
            assert!(!r.status, "device {id} cannot be up");
            let why = format!("{:?} {:?}", r.snmp_error, r.ping);
            assert!(
                r.snmp_error.as_deref().unwrap_or("").contains(needle),
                "device {id}: {why}"
            );
            assert!(!why.contains("s3cr") && !why.contains("hunter2"), "no secret in {why}");
        }
        let g = by_id(garbage);
        assert!(!g.status && g.status_reason == "snmp", "{g:?}");
        drop(sim);
        t.drop_database().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_reads_the_config_table_and_names_a_bad_value() {
    within(60, async {
        let t = TestDb::new().await;
        t.db.execute(&Statement::new(
            "INSERT INTO `config` (`config_name`, `config_value`) VALUES ('rrd.step', '60'), ('rrd.heartbeat', '120'), ('some.php.setting', '{\"x\":1}')",
        ))
        .await
        .unwrap();
        let url = t.url.clone();
        let check_config = |librenms_dir: &Path| {
            let mut c = ironpoll();
            c.args(["check-config", "--db", &url, "--librenms-dir"])
                .arg(librenms_dir)
                .current_dir(std::env::temp_dir());
            run(c, Duration::from_secs(30))
        };
        let out = check_config(Path::new("/nonexistent"));
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let line = text.lines().find(|l| l.starts_with("rrd.step ")).unwrap();
        assert!(line.contains("= 60") && line.contains("LibreNMS config table"), "{line}");
        assert!(!text.contains("s3cret"));
        // ironpoll's own tables only: no alerting, said once.
        assert!(
            text.contains("# alert rules and device groups: not run by ironpoll: the database has no LibreNMS alerting tables"),
            "{text}"
        );

        // LibreNMS's OS definitions sit below the config table.
        let librenms = tempfile::tempdir().unwrap();
        let defs = librenms.path().join("resources/definitions/os_detection");
        std::fs::create_dir_all(&defs).unwrap();
        std::fs::write(
            defs.join("edgeswitch.yaml"),
            "os: edgeswitch\ntype: network\npoller_modules:\n  bgp-peers: false\n  stp: false\n",
        )
        .unwrap();
        t.db.execute(&Statement::new(
            "INSERT INTO `config` (`config_name`, `config_value`) VALUES ('os.edgeswitch.poller_modules.stp', 'true'), ('enable_ports_poe', 'true')",
        ))
        .await
        .unwrap();
        let out = check_config(librenms.path());
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let line = |key: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("{key} ")))
                .unwrap_or_else(|| panic!("{key} missing from\n{text}"))
                .to_string()
        };
        let bgp = line("os.edgeswitch.poller_modules.bgp-peers");
        assert!(bgp.contains("= false") && bgp.contains("LibreNMS OS definitions"), "{bgp}");
        let stp = line("os.edgeswitch.poller_modules.stp");
        assert!(stp.contains("= true") && stp.contains("LibreNMS config table"), "{stp}");
        // An option ironpoll does not do natively is said.
        assert!(
            text.contains("# ports: enable_ports_poe is on: ironpoll does not poll PoE"),
            "{text}"
        );

        t.db.execute(&Statement::new(
            "UPDATE `config` SET `config_value` = '\"often\"' WHERE `config_name` = 'rrd.step'",
        ))
        .await
        .unwrap();
        let out = check_config(Path::new("/nonexistent"));
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            stderr(&out).trim(),
            "ironpoll: invalid rrd.step = \"often\" (from LibreNMS config table): expected a whole number"
        );
        t.drop_database().await;
    })
    .await;
}

/// The node report on LibreNMS's schema: the row is made once and then
/// only its version, report time and master flag move, as LibreNMS's
/// dispatcher keeps them; queue rows are one per type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_report_upserts_poller_cluster_rows_on_mariadb() {
    use ironpoll::db::cluster::{NodeReport, QueueStats, report_node};
    within(60, async {
        let t = TestDb::new().await;
        let mut report = NodeReport {
            node_id: "5f1c".into(),
            poller_name: "poller-a".into(),
            poller_version: "ironpoll 0.1.0".into(),
            poller_groups: "0,2".into(),
            master: false,
            queues: vec![QueueStats {
                poller_type: "poller",
                depth: 7,
                devices: 120,
                worker_seconds: 315.5,
                workers: 16,
                frequency: 300,
            }],
        };
        report_node(&t.db, &report).await.unwrap();
        report.poller_name = "renamed".into();
        report.poller_groups = "9".into();
        report.poller_version = "ironpoll 0.2.0".into();
        report.queues[0].devices = 80;
        report.queues[0].depth = 0;
        report_node(&t.db, &report).await.unwrap();

        let node = t
            .db
            .fetch(&Statement::new(
                "SELECT `id`, `poller_name`, `poller_groups`, `poller_version`, `master`, TIMESTAMPDIFF(SECOND, `last_report`, NOW()) AS `age` FROM `poller_cluster`",
            ))
            .await
            .unwrap();
        assert_eq!(node.len(), 1);
        assert_eq!(node[0].string("poller_name").as_deref(), Some("poller-a"));
        assert_eq!(node[0].string("poller_groups").as_deref(), Some("0,2"));
        assert_eq!(node[0].string("poller_version").as_deref(), Some("ironpoll 0.2.0"));
        assert_eq!(node[0].i64("master"), Some(0));
        assert!(node[0].i64("age").unwrap() <= 5);
        let stats = t
            .db
            .fetch(&Statement::new(
                "SELECT `parent_poller`, `poller_type`, `depth`, `devices`, `worker_seconds` FROM `poller_cluster_stats`",
            ))
            .await
            .unwrap();
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].u64("parent_poller"), node[0].u64("id"));
        assert_eq!(stats[0].i64("devices"), Some(80));
        assert_eq!(stats[0].i64("depth"), Some(0));
        assert_eq!(stats[0].f64("worker_seconds"), Some(315.5));
        t.drop_database().await;
    })
    .await;
}

/// New ports come back with their own ids, in the order asked, even where
/// an older row (a deleted port) has the same ifIndex; each gets its
/// ports_statistics row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_ports_get_their_own_ids_on_mariadb() {
    use ironpoll::modules::PollStore;
    within(60, async {
        let t = TestDb::new().await;
        let device = t.add_device("127.0.0.1", 161, &[]).await;
        t.db.execute(&Statement::new(format!(
            "INSERT INTO `ports` (`device_id`, `ifIndex`, `ifName`, `deleted`) VALUES ({device}, 7, 'old7', 1)"
        )))
        .await
        .unwrap();
        let old = t.scalar("SELECT MAX(`port_id`) FROM `ports`").await.as_i64().unwrap();
        let wanted: Vec<(i64, Option<String>)> = (1..=1500)
            .rev()
            .map(|i| (i, Some(format!("eth{i}"))))
            .collect();
        let ids = t.db.new_ports(device, &wanted).await.unwrap();
        assert_eq!(ids.len(), 1500);
        assert!(ids.iter().all(|id| i64::from(*id) > old));
        for ((if_index, name), id) in wanted.iter().zip(&ids).step_by(97) {
            let row = t
                .db
                .fetch(&Statement::new(format!(
                    "SELECT `ifIndex`, `ifName`, `device_id` FROM `ports` WHERE `port_id` = {id}"
                )))
                .await
                .unwrap();
            assert_eq!(row[0].i64("ifIndex"), Some(*if_index));
            assert_eq!(row[0].string("ifName"), name.clone());
            assert_eq!(row[0].u64("device_id"), Some(u64::from(device)));
        }
        let seven = wanted.iter().position(|(i, _)| *i == 7).unwrap();
        assert!(i64::from(ids[seven]) > old, "not the deleted port's id");
        let stats = t
            .scalar(&format!(
                "SELECT COUNT(*) FROM `ports_statistics` WHERE `port_id` > {old}"
            ))
            .await;
        assert_eq!(stats.as_i64(), Some(1500));
        t.drop_database().await;
    })
    .await;
}
