//! The daemon: LibreNMS's due rule, down-retry, concurrency, and a clean
//! stop on SIGTERM that writes what the polls found.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ironpoll::config::{Layer, Mode, Source, resolve, settings_defaults};
use ironpoll::coord::MemoryLeases;
use ironpoll::db::{Db, Statement, Val, devices};
use ironpoll::poller::engine::Engine;
use ironpoll::scheduler::{Scheduler, SchedulerOptions};
use ironpoll::sim::Simulator;
use ironpoll::sim::profile::Profile;
use tokio_util::sync::CancellationToken;

use crate::support::*;
use crate::within;

async fn fleet(size: usize) -> Simulator {
    port_fleet(Profile::Switch48, size, &[]).await
}

async fn add(db: &Db, port: u16) -> u32 {
    let mut st = Statement::new(
        "INSERT INTO `devices` (`hostname`, `port`, `snmpver`, `community`, `status_reason`) VALUES ('127.0.0.1', ",
    );
    st.value(db.dialect(), Val::from(u32::from(port)))
        .push(", 'v2c', 'public', '')");
    db.insert(&st).await.unwrap() as u32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_are_polled_on_schedule_and_down_ones_after_the_retry_time() {
    within(120, async {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(dir.path().join("s.db").to_str().unwrap(), 2)
            .await
            .unwrap();
        db.create_schema().await.unwrap();
        let sim = fleet(2).await;
        let a = add(&db, sim.fleet[0].addr.port()).await;
        let b = add(&db, sim.fleet[1].addr.port()).await;
        let dead = add(&db, free_udp_port()).await;
        let mut layer = Layer::new(Source::Flag, true);
        for (k, v) in [
            ("rrd_dir", dir.path().join("rrd").display().to_string()),
            ("snmp.timeout", "0.2".into()),
            ("snmp.retries", "0".into()),
            ("fping_options.count", "1".into()),
        ] {
            layer.set(k, serde_json::Value::String(v));
        }
        let settings = Arc::new(resolve(&[layer], settings_defaults(Mode::Standalone)).unwrap());
        let engine = Engine::start(settings, db.clone()).await.unwrap();
        let opts = SchedulerOptions {
            frequency: Duration::from_secs(4),
            down_retry: Duration::from_secs(2),
            concurrency: 8,
            deadline: Duration::from_secs(20),
            tick: Duration::from_millis(250),
            groups: None,
            require_discovery: false,
            drain: Duration::from_secs(10),
        };
        let scheduler = Scheduler::new(engine.clone(), Arc::new(MemoryLeases::new()), opts);
        let stats = scheduler.stats();
        let stop = CancellationToken::new();
        let run = tokio::spawn(scheduler.run(stop.clone()));
        tokio::time::sleep(Duration::from_secs(11)).await;
        stop.cancel();
        run.await.unwrap();

        let up = stats.up.load(Ordering::Relaxed);
        let down = stats.down.load(Ordering::Relaxed);
        // Two devices every ~4 s (their first polls spread over a period)
        // over ~11 s; the dead one every ~2 s plus its poll time.
        assert!((4..=8).contains(&up), "up polls: {up}");
        assert!(down >= 3, "down polls: {down}");
        let list = devices::load(&db, &[a, b, dead]).await.unwrap();
        assert!(list[0].status && list[1].status);
        assert!(list[0].last_polled.is_some() && list[1].last_polled.is_some());
        assert!(!list[2].status && list[2].last_polled.is_none());
        // The writers flushed on the way out.
        let ports = db
            .fetch(&Statement::new(format!(
                "SELECT COUNT(*) AS n FROM `ports` WHERE `device_id` = {a}"
            )))
            .await
            .unwrap();
        assert_eq!(ports[0].i64("n"), Some(53));
        assert!(dir.path().join("rrd/127.0.0.1/poller-perf.rrd").is_file());
        drop(sim);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_daemon_after_writing_its_results() {
    within(120, async {
        let dir = tempfile::tempdir().unwrap();
        let sim = fleet(1).await;
        let url = format!("sqlite:{}", dir.path().join("d.db").display());
        {
            let db = Db::open_sqlite(&url["sqlite:".len()..], 1).await.unwrap();
            db.create_schema().await.unwrap();
            add(&db, sim.fleet[0].addr.port()).await;
            db.close().await;
        }
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ironpoll"));
        cmd.args(["run", "--db", &url])
            .args(["--set", "service_poller_frequency=60"])
            .args([
                "--set",
                &format!("rrd_dir={}", dir.path().join("rrd").display()),
            ])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        // Wait for the first poll to land.
        let rrd = dir.path().join("rrd/127.0.0.1/poller-perf.rrd");
        for _ in 0..100 {
            if rrd.is_file() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(rrd.is_file(), "no poll within 10 s");
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let out = tokio::task::spawn_blocking(move || {
            let status = child.wait().unwrap();
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            (status, err)
        })
        .await
        .unwrap();
        assert!(out.0.success(), "{}", out.1);
        assert!(
            out.1.contains("shutting down") && out.1.contains("stopped"),
            "{}",
            out.1
        );
        let db = Db::open_sqlite(&url["sqlite:".len()..], 1).await.unwrap();
        let rows = db
            .fetch(&Statement::new(
                "SELECT COUNT(*) AS n FROM `ports` WHERE `ifInOctets` IS NOT NULL",
            ))
            .await
            .unwrap();
        assert_eq!(rows[0].i64("n"), Some(53));
        drop(sim);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_reports_its_node_in_poller_cluster_every_period() {
    within(120, async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let db = Db::open_sqlite(path.to_str().unwrap(), 2).await.unwrap();
        db.create_schema().await.unwrap();
        let sim = fleet(2).await;
        for d in &sim.fleet {
            add(&db, d.addr.port()).await;
        }
        let mut layer = Layer::new(Source::Flag, true);
        for (k, v) in [
            ("rrd_dir", dir.path().join("rrd").display().to_string()),
            ("node_id", "ironpoll-test-node".into()),
            ("distributed_poller_name", "poller-7".into()),
            ("distributed_poller_group", "0,4".into()),
            ("service_poller_frequency", "2".into()),
            ("poller.concurrency", "12".into()),
            ("fping_options.count", "1".into()),
        ] {
            layer.set(k, serde_json::Value::String(v));
        }
        let settings = resolve(&[layer], settings_defaults(Mode::Standalone)).unwrap();
        let stop = CancellationToken::new();
        let daemon = tokio::spawn(ironpoll::daemon::run(settings, db.clone(), stop.clone()));
        tokio::time::sleep(Duration::from_secs(7)).await;
        stop.cancel();
        daemon.await.unwrap().unwrap();
        // The daemon closes its pool on the way out.
        let db = Db::open_sqlite(path.to_str().unwrap(), 1).await.unwrap();

        let nodes = db
            .fetch(&Statement::new(
                "SELECT `id`, `node_id`, `poller_name`, `poller_version`, `poller_groups`, `master`, `last_report` FROM `poller_cluster`",
            ))
            .await
            .unwrap();
        // One row however many reports: an upsert on node_id.
        assert_eq!(nodes.len(), 1);
        let node = &nodes[0];
        assert_eq!(node.string("node_id").as_deref(), Some("ironpoll-test-node"));
        assert_eq!(node.string("poller_name").as_deref(), Some("poller-7"));
        assert!(node.string("poller_version").unwrap().starts_with("ironpoll "));
        assert_eq!(node.string("poller_groups").as_deref(), Some("0,4"));
        assert_eq!(node.i64("master"), Some(0));
        assert!(node.string("last_report").is_some());
        let stats = db
            .fetch(&Statement::new(
                "SELECT `parent_poller`, `poller_type`, `devices`, `worker_seconds`, `workers`, `frequency` FROM `poller_cluster_stats`",
            ))
            .await
            .unwrap();
        assert_eq!(stats.len(), 1);
        let s = &stats[0];
        assert_eq!(s.u64("parent_poller"), node.u64("id"));
        assert_eq!(s.string("poller_type").as_deref(), Some("poller"));
        assert_eq!(s.i64("workers"), Some(12));
        assert_eq!(s.i64("frequency"), Some(2));
        // The last report counts the polls since the one before it: each of
        // the two devices is polled about once per 2 s period.
        let devices = s.i64("devices").unwrap();
        assert!((1..=6).contains(&devices), "devices in the last period: {devices}");
        assert!(s.f64("worker_seconds").unwrap() > 0.0);
        drop(sim);
    })
    .await;
}
