//! The native modules and the hand-off to LibreNMS's PHP, end to end on
//! LibreNMS's schema in MariaDB, RRD files through rrdcached, agents
//! simulated (the Linux and chassis profiles) and real (net-snmp's
//! snmpd).

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ironpoll::config::{Defaults, Layer, Mode, Source, resolve};
use ironpoll::db::{Val, devices, inventory};
use ironpoll::modules::Selection;
use ironpoll::poller::PolledBy;
use ironpoll::poller::engine::Engine;
use ironpoll::sim::profile::Profile;

use crate::services::{Rrdcached, TestDb, engine, info_value, poll_all};
use crate::support::{port_fleet, snmpd};
use crate::within;

/// `rrdtool info` says the file has these data sources, with these types
/// and bounds (`U` is an unknown bound, `NaN` in rrdtool's words).
fn assert_ds(rrd: &Rrdcached, file: &str, ds: &[(&str, &str, &str, &str)]) {
    let info = rrd.info(file);
    assert_eq!(info_value(&info, "step"), Some("300"), "{file}");
    assert_eq!(
        info_value(&info, "rra[12].cf"),
        Some("LAST"),
        "{file}: LibreNMS's 13 archives"
    );
    for (name, kind, min, max) in ds {
        let get = |k: &str| info_value(&info, &format!("ds[{name}].{k}")).map(str::to_string);
        assert_eq!(get("type").as_deref(), Some(*kind), "{file} {name}\n{info}");
        assert_eq!(get("min").as_deref(), Some(*min), "{file} {name} min");
        assert_eq!(get("max").as_deref(), Some(*max), "{file} {name} max");
        assert_eq!(
            get("minimal_heartbeat").as_deref(),
            Some("600"),
            "{file} {name}"
        );
    }
    let count = info
        .lines()
        .filter(|l| l.ends_with(".index = 0") || l.contains("].index = "))
        .count();
    assert_eq!(count, ds.len(), "{file}: data sources\n{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_modules_write_librenms_rows_and_rrd_files() {
    within(240, async {
        let t = TestDb::new().await;
        let linux_sim = port_fleet(Profile::Linux, 1, &[]).await;
        let chassis_sim = port_fleet(Profile::Chassis500, 1, &[]).await;
        let agent = |sim: &ironpoll::sim::Simulator| sim.fleet[0].addr;
        let linux = t
            .add_device("127.0.0.1", agent(&linux_sim).port(), &[("os", Val::text("linux"))])
            .await;
        let chassis = t
            .add_device("127.0.0.2", agent(&chassis_sim).port(), &[("os", Val::text("ios")), ("overwrite_ip", Val::text("127.0.0.1"))])
            .await;
        t.add_device("127.0.0.3", snmpd().port, &[("os", Val::text("linux")), ("overwrite_ip", Val::text("127.0.0.1"))])
            .await;
        inventory::insert(&t.db, linux, &Profile::Linux.discovered()).await.unwrap();
        inventory::insert(&t.db, chassis, &Profile::Chassis500.discovered()).await.unwrap();
        let (engine, rrd) = engine(&t, &[("icmp_check", "false")]).await;
        let reports = poll_all(&engine).await;
        for r in &reports {
            assert!(r.status, "{r:?}");
            let native: Vec<&str> = r
                .modules
                .iter()
                .filter(|m| m.by == PolledBy::Native)
                .map(|m| m.module)
                .collect();
            for m in ["core", "processors", "mempools", "storage", "sensors", "netstats", "hr-mib", "ucd-mib", "ip-system-stats", "ports", "ucd-diskio", "wireless"] {
                assert!(native.contains(&m), "{m} polled natively: {native:?}");
            }
            for m in &r.modules {
                assert!(m.error.is_none() || m.by == PolledBy::Php, "{}: {:?}", m.module, m.error);
            }
        }

        // Rows: what discovery stored, filled by the poll.
        let usage = t.scalar(&format!("SELECT MIN(`processor_usage`) FROM `processors` WHERE `device_id` = {linux}")).await;
        assert!(usage.as_i64().is_some_and(|u| (0..=100).contains(&u)), "{usage:?}");
        let perc = t.scalar(&format!("SELECT `mempool_perc` FROM `mempools` WHERE `device_id` = {linux} AND `mempool_class` = 'system'")).await;
        assert!(perc.as_i64().is_some_and(|p| p > 0 && p < 100), "{perc:?}");
        let used = t.scalar(&format!("SELECT `storage_used` FROM `storage` WHERE `device_id` = {linux} AND `storage_descr` = '/'")).await;
        // Units of 4096 bytes, about 40% of 25,000,000 units.
        assert!(used.as_i64().is_some_and(|u| u > 30_000_000_000 && u < 50_000_000_000), "{used:?}");
        let temps = t.scalar(&format!("SELECT COUNT(*) FROM `sensors` WHERE `device_id` = {chassis} AND `sensor_class` = 'temperature' AND `sensor_current` BETWEEN 30 AND 55")).await;
        assert_eq!(temps.as_i64(), Some(40), "42 °C give or take, divisor 10");
        let states = t.scalar(&format!("SELECT COUNT(*) FROM `sensors` WHERE `device_id` = {chassis} AND `sensor_class` = 'state' AND `sensor_current` IS NOT NULL")).await;
        assert_eq!(states.as_i64(), Some(20));
        let users = t.scalar(&format!("SELECT `hrSystemProcesses` FROM `hrSystem` WHERE `device_id` = {linux}")).await;
        assert!(users.as_i64().is_some_and(|n| n > 0), "{users:?}");
        let disks = t.scalar(&format!("SELECT COUNT(*) FROM `ucd_diskio` WHERE `device_id` = {linux}")).await;
        assert_eq!(disks.as_i64(), Some(3));
        let graphs: BTreeSet<String> = t
            .db
            .fetch(&ironpoll::db::Statement::new(format!("SELECT `graph` FROM `device_graphs` WHERE `device_id` = {linux}")))
            .await
            .unwrap()
            .iter()
            .filter_map(|r| r.string("graph"))
            .collect();
        for g in ["ucd_cpu", "ucd_load", "ucd_io", "hr_processes", "hr_users", "poller_modules_perf"] {
            assert!(graphs.contains(g), "graph {g} in {graphs:?}");
        }

        // Files, with LibreNMS's names and definitions.
        let gauge0 = ("GAUGE", "0.0000000000e+00", "NaN");
        assert_ds(&rrd, "127.0.0.1/processor-hr-196608.rrd", &[("usage", "GAUGE", "-2.7300000000e+02", "1.0000000000e+03")]);
        assert_ds(&rrd, "127.0.0.1/mempool-hrstorage-system-1.rrd", &[("used", gauge0.0, gauge0.1, gauge0.2), ("free", gauge0.0, gauge0.1, gauge0.2)]);
        assert_ds(&rrd, "127.0.0.1/storage-hrstorage-_.rrd", &[("used", gauge0.0, gauge0.1, gauge0.2), ("free", gauge0.0, gauge0.1, gauge0.2)]);
        assert_ds(&rrd, "127.0.0.1/ucd_cpu.rrd", &[("user", "COUNTER", "0.0000000000e+00", "NaN"), ("system", "COUNTER", "0.0000000000e+00", "NaN"), ("nice", "COUNTER", "0.0000000000e+00", "NaN"), ("idle", "COUNTER", "0.0000000000e+00", "NaN")]);
        assert_ds(&rrd, "127.0.0.1/ucd_ssCpuRawSteal.rrd", &[("value", "COUNTER", "0.0000000000e+00", "NaN")]);
        assert_ds(&rrd, "127.0.0.1/ucd_load.rrd", &[("1min", gauge0.0, gauge0.1, gauge0.2), ("5min", gauge0.0, gauge0.1, gauge0.2), ("15min", gauge0.0, gauge0.1, gauge0.2)]);
        assert_ds(&rrd, "127.0.0.1/hr_processes.rrd", &[("procs", gauge0.0, gauge0.1, gauge0.2)]);
        assert_ds(&rrd, "127.0.0.1/hr_users.rrd", &[("users", gauge0.0, gauge0.1, gauge0.2)]);
        let io = ("DERIVE", "0.0000000000e+00", "1.2500000000e+11");
        assert_ds(&rrd, "127.0.0.1/ucd_diskio-sda.rrd", &[("read", io.0, io.1, io.2), ("written", io.0, io.1, io.2), ("reads", io.0, io.1, io.2), ("writes", io.0, io.1, io.2)]);
        assert_ds(&rrd, "127.0.0.2/sensor-temperature-entity-sensor-5001.rrd", &[("sensor", "GAUGE", "NaN", "NaN")]);
        assert_ds(&rrd, "127.0.0.2/sensor-state-entPhySensorOperStatus-5001.rrd", &[("sensor", "GAUGE", "NaN", "NaN")]);
        assert_ds(&rrd, "127.0.0.1/poller-perf-sensors.rrd", &[("poller", gauge0.0, gauge0.1, gauge0.2)]);
        // net-snmp's agent has the MIB-2 groups netstats reads.
        let counter = ("COUNTER", "NaN", "1.0000000000e+11");
        let info = rrd.info("127.0.0.3/netstats-snmp.rrd");
        // snmpInBadCommunityNames, cut to rrdtool's 19 characters.
        assert_eq!(info_value(&info, "ds[snmpInBadCommunityN].type"), Some("COUNTER"), "{info}");
        assert_ds(&rrd, "127.0.0.3/netstats-udp.rrd", &[("udpInDatagrams", counter.0, counter.1, counter.2), ("udpOutDatagrams", counter.0, counter.1, counter.2), ("udpInErrors", counter.0, counter.1, counter.2), ("udpNoPorts", counter.0, counter.1, counter.2)]);
        for file in ["netstats-ip.rrd", "netstats-icmp.rrd", "netstats-tcp.rrd", "ipSystemStats-ipv4.rrd"] {
            let info = rrd.info(&format!("127.0.0.3/{file}"));
            assert!(info_value(&info, "last_update").is_some(), "{file}");
        }
        let info = rrd.info("127.0.0.3/ipSystemStats-ipv4.rrd");
        assert_eq!(info_value(&info, "ds[InReceives].type"), Some("COUNTER"));
        assert_eq!(info_value(&info, "ds[InReceives].max"), Some("NaN"));
        drop(engine);
        t.drop_database().await;
    })
    .await;
}

/// A stand-in for LibreNMS's `lnms`: records each call (arguments,
/// directory, user, start and end, and the device's last_polled as the
/// database had it when PHP started), prints LibreNMS's per-module
/// runtime lines, and sleeps `seconds`.
pub fn stand_in_lnms(dir: &Path, db_url: &str, seconds: f64) {
    let db = db_url.rsplit('/').next().unwrap();
    let port = db_url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap();
    let script = format!(
        r#"#!/bin/bash
start=$(date +%s.%N)
polled=$(mariadb --no-defaults -h127.0.0.1 -P{port} -uroot -N -e "SELECT last_polled IS NOT NULL FROM devices WHERE device_id = $2" {db})
sleep {seconds}
mods="$4"
for m in ${{mods//,/ }}; do echo ">> Runtime for Poller module '$m': 0.0123 seconds with 4096 bytes"; done
echo "$* | $PWD | $(id -u) | $start | $(date +%s.%N) | $polled" >> "{log}"
exit 0
"#,
        log = dir.join("calls.log").display()
    );
    let path = dir.join("lnms");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

pub async fn php_engine(t: &TestDb, librenms: &Path, overrides: &[(&str, &str)]) -> Arc<Engine> {
    let mut layer = Layer::new(Source::Flag, true);
    for (k, v) in [("rrd.enable", "false"), ("icmp_check", "false")]
        .iter()
        .chain(overrides)
    {
        layer.set(*k, serde_json::Value::String(v.to_string()));
    }
    let settings = resolve(
        &[layer],
        Defaults {
            mode: Mode::Librenms,
            librenms_dir: librenms.to_path_buf(),
        },
    )
    .unwrap();
    Engine::start(Arc::new(settings), t.db.clone())
        .await
        .unwrap()
}

/// The modules LibreNMS polls by default that ironpoll hands to PHP, in
/// LibreNMS's order.
const DEFAULT_PHP: &str = "os,qos,customoid,bgp-peers,ospf,ospfv3,mac-accounting,entity-physical,transceivers,applications,stp,ntp,mpls";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_left_to_php_run_once_per_device_after_the_rows_are_committed() {
    within(180, async {
        let t = TestDb::new().await;
        let sim = port_fleet(Profile::Switch48, 3, &[]).await;
        let mut ids = Vec::new();
        for d in &sim.fleet {
            ids.push(
                t.add_device("127.0.0.1", d.addr.port(), &[("os", Val::text("ios"))])
                    .await,
            );
        }
        let librenms = tempfile::tempdir().unwrap();
        stand_in_lnms(librenms.path(), &t.url, 0.3);
        // One PHP process at a time.
        let engine = php_engine(&t, librenms.path(), &[("php.processes", "1")]).await;
        let list = devices::find(&t.db, "all").await.unwrap();
        let mut reports = Vec::new();
        engine
            .poll_devices(list, &Selection::Configured, 16, |r| reports.push(r))
            .await
            .unwrap();
        let calls = std::fs::read_to_string(librenms.path().join("calls.log")).unwrap();
        let calls: Vec<Vec<&str>> = calls.lines().map(|l| l.split(" | ").collect()).collect();
        assert_eq!(calls.len(), 3, "{calls:?}");
        let mut seen = BTreeSet::new();
        let mut spans = Vec::new();
        for c in &calls {
            let args: Vec<&str> = c[0].split(' ').collect();
            assert_eq!(args[0], "device:poll");
            seen.insert(args[1].parse::<u32>().unwrap());
            assert_eq!(args[2..], ["-m", DEFAULT_PHP, "-v"], "{c:?}");
            // From LibreNMS's directory, as its service runs it.
            assert_eq!(Path::new(c[1]), librenms.path());
            // The device's rows were in the database when PHP started.
            assert_eq!(c[5], "1", "last_polled committed before PHP ran: {c:?}");
            spans.push((c[3].parse::<f64>().unwrap(), c[4].parse::<f64>().unwrap()));
        }
        assert_eq!(seen, ids.iter().copied().collect());
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        for w in spans.windows(2) {
            assert!(
                w[1].0 >= w[0].1,
                "php.processes = 1, yet two ran at once: {spans:?}"
            );
        }
        for r in &reports {
            let php: Vec<_> = r.modules.iter().filter(|m| m.by == PolledBy::Php).collect();
            assert_eq!(php.len(), DEFAULT_PHP.split(',').count(), "{r:?}");
            assert!(
                php.iter().all(|m| m.error.is_none() && m.seconds == 0.0123),
                "{php:?}"
            );
            assert_eq!(r.php.as_ref().unwrap().exit_code, Some(0));
        }
        let _ = engine.finish().await;

        // A run past its deadline is killed and reported.
        stand_in_lnms(librenms.path(), &t.url, 5.0);
        let engine = php_engine(&t, librenms.path(), &[("php.deadline", "1")]).await;
        let list = devices::find(&t.db, &ids[0].to_string()).await.unwrap();
        let started = std::time::Instant::now();
        let mut reports = Vec::new();
        engine
            .poll_devices(list, &Selection::Configured, 16, |r| reports.push(r))
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "killed at the deadline"
        );
        let run = reports[0].php.as_ref().unwrap();
        assert!(
            run.error.as_deref().unwrap_or("").contains("php.deadline"),
            "{run:?}"
        );
        let _ = engine.finish().await;

        // Without LibreNMS's PHP the modules are listed, not polled.
        let empty = tempfile::tempdir().unwrap();
        let engine = php_engine(&t, empty.path(), &[]).await;
        let list = devices::find(&t.db, &ids[0].to_string()).await.unwrap();
        let mut reports = Vec::new();
        engine
            .poll_devices(list, &Selection::Configured, 16, |r| reports.push(r))
            .await
            .unwrap();
        assert!(reports[0].php.is_none());
        assert_eq!(reports[0].php_modules.join(","), DEFAULT_PHP);
        assert!(reports[0].modules.iter().all(|m| m.by == PolledBy::Native));
        assert!(
            engine
                .php
                .as_ref()
                .is_err_and(|e| e.contains("no LibreNMS at")),
            "{:?}",
            engine.php.as_ref().err()
        );
        let _ = engine.finish().await;
        t.drop_database().await;
    })
    .await;
}
