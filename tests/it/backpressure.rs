//! Back-pressure from the sinks: a database slowed on purpose (a throttling
//! TCP proxy in front of the test MariaDB), a transaction that hangs, and an
//! rrdcached paused with SIGSTOP. Polls wait for the writers instead of
//! piling their results up; every row and update arrives once the sink
//! recovers; devices that miss their period are reported overdue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ironpoll::config::DbSettings;
use ironpoll::coord::MemoryLeases;
use ironpoll::db::writer::{DbWriter, DbWriterOptions};
use ironpoll::db::{Db, Statement, Val};
use ironpoll::modules::Selection;
use ironpoll::poller::engine::Engine;
use ironpoll::scheduler::{Scheduler, SchedulerOptions};
use ironpoll::sim::profile::Profile;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::harness::one_event;
use crate::services::{Rrdcached, TestDb, librenms_settings};
use crate::support::*;
use crate::within;

/// A TCP proxy that forwards at most `rate` bytes a second in each
/// direction of each connection (0: as fast as it can).
struct Throttle {
    port: u16,
    rate: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Throttle {
    async fn start(upstream: String, rate: u64) -> Throttle {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let rate = Arc::new(AtomicU64::new(rate));
        let task = {
            let rate = rate.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        continue;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    for (r, w) in [
                        (Box::new(cr) as Box<_>, Box::new(sw) as Box<_>),
                        (Box::new(sr), Box::new(cw)),
                    ] {
                        tokio::spawn(pump(r, w, rate.clone()));
                    }
                }
            })
        };
        Throttle { port, rate, task }
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Reader = Box<dyn tokio::io::AsyncRead + Unpin + Send>;
type Writer = Box<dyn tokio::io::AsyncWrite + Unpin + Send>;

async fn pump(mut r: Reader, mut w: Writer, rate: Arc<AtomicU64>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let rate_now = rate.load(Ordering::Relaxed);
        // Small reads when throttled, so the pace is even.
        let max = if rate_now == 0 {
            buf.len()
        } else {
            ((rate_now / 20) as usize).clamp(256, buf.len())
        };
        let got = match r.read(&mut buf[..max]).await {
            Ok(0) | Err(_) => return,
            Ok(got) => got,
        };
        if rate_now > 0 {
            tokio::time::sleep(Duration::from_secs_f64(got as f64 / rate_now as f64)).await;
        }
        if w.write_all(&buf[..got]).await.is_err() {
            return;
        }
    }
}

/// The test database, reached through a throttle.
async fn throttled(t: &TestDb, rate: u64, max_connections: u32) -> (Throttle, Db) {
    let rest = t.url.strip_prefix("mysql://").unwrap();
    let (auth_host, name) = rest.split_once('/').unwrap();
    let (auth, host) = auth_host.rsplit_once('@').unwrap();
    let proxy = Throttle::start(host.to_string(), rate).await;
    let mut s: DbSettings = librenms_settings(&[]).db;
    s.url = format!("mysql://{auth}@127.0.0.1:{}/{name}", proxy.port);
    s.max_connections = max_connections;
    let db = Db::connect(&s).await.unwrap();
    (proxy, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_commit_is_retried_on_a_fresh_connection_with_the_same_rows() {
    within(120, async {
        let t = TestDb::new().await;
        let (writer, task) = DbWriter::start(
            t.db.clone(),
            DbWriterOptions {
                flush_interval: Duration::from_millis(20),
                commit_deadline: Duration::from_secs(2),
                ..DbWriterOptions::default()
            },
        );
        writer.send(one_event(1, 1)).await;
        writer.flush().await.unwrap();
        // Another session holds the table, as a backup or a long ALTER
        // would: the writer's INSERT waits on it and never returns.
        let mut holder = t.db.begin().await.unwrap();
        holder
            .execute(&Statement::new("LOCK TABLES `eventlog` WRITE"))
            .await
            .unwrap();
        let started = std::time::Instant::now();
        writer.send(one_event(1, 2)).await;
        while writer.stats().hung_commits.load(Ordering::Relaxed) == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the commit deadline never fired"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(started.elapsed() >= Duration::from_secs(2));
        holder
            .execute(&Statement::new("UNLOCK TABLES"))
            .await
            .unwrap();
        drop(holder);
        let mut tries = 0;
        while writer.flush().await.is_err() {
            tries += 1;
            assert!(tries < 100, "the held rows were never written");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Written once: the abandoned transaction never committed.
        let n = t
            .scalar("SELECT COUNT(*) FROM `eventlog` WHERE `message` = 'event 2'")
            .await;
        assert_eq!(n, Val::Int(1));
        assert_eq!(writer.stats().dropped_polls.load(Ordering::Relaxed), 0);
        drop(writer);
        task.await.unwrap();
        t.drop_database().await;
    })
    .await;
}

/// `size` simulated 48-port switches in the test database.
async fn switches(t: &TestDb, size: usize) -> (ironpoll::sim::Simulator, Vec<u32>) {
    let sim = port_fleet(Profile::Switch48, size, &[]).await;
    let mut ids = Vec::new();
    for (i, d) in sim.fleet.iter().enumerate() {
        let overwrite = [("overwrite_ip", Val::text("127.0.0.1"))];
        ids.push(
            t.add_device(&format!("sw{i}"), d.addr.port(), &overwrite)
                .await,
        );
    }
    (sim, ids)
}

/// An engine writing to `db` and a private rrdcached, that inserts the
/// ports it finds (as discovery would have), with `extra` settings.
async fn engine_on(db: &Db, extra: &[(&str, &str)]) -> (Arc<Engine>, Rrdcached) {
    let rrd = Rrdcached::start();
    let (address, base) = (rrd.address(), rrd.base().display().to_string());
    let mut pairs = vec![
        ("rrdcached", address.as_str()),
        ("rrd_dir", base.as_str()),
        ("ports.discover_when_empty", "true"),
        // One row per RRA: these tests are about the hand-over, and
        // LibreNMS's default RRAs would take gigabytes for a fleet's ports.
        ("rrd_rra", "RRA:AVERAGE:0.5:1:10 RRA:MAX:0.5:1:10"),
    ];
    pairs.extend_from_slice(extra);
    let settings = librenms_settings(&pairs);
    let engine = Engine::start(Arc::new(settings), db.clone()).await.unwrap();
    (engine, rrd)
}

/// Every one of `devices` switches was polled, and its 53 ports are in
/// the database.
async fn assert_every_switch_written(t: &TestDb, devices: usize) {
    assert_eq!(
        count(t, POLLED).await,
        devices as i64,
        "devices with a last_polled"
    );
    assert_eq!(
        count(t, "SELECT COUNT(*) FROM `ports`").await,
        53 * devices as i64,
        "ports"
    );
}

const POLLED: &str = "SELECT COUNT(*) FROM `devices` WHERE `last_polled` IS NOT NULL";

async fn count(t: &TestDb, sql: &str) -> i64 {
    match t.scalar(sql).await {
        Val::Int(n) => n,
        Val::UInt(n) => n as i64,
        other => panic!("{sql}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_database_makes_polls_wait_within_the_bound_and_loses_nothing() {
    within(300, async {
        let t = TestDb::new().await;
        let (sim, ids) = switches(&t, 30).await;
        // About 150 KB/s each way: far slower than 30 switches' first
        // polls (their ports inserted) produce rows.
        let (proxy, db) = throttled(&t, 150_000, 2).await;
        let (engine, _rrd) = engine_on(&db, &[("db.held_rows", "1000"), ("db.held_mb", "1")]).await;
        let list = ironpoll::db::devices::find(&db, "all").await.unwrap();
        let mut polled = 0;
        engine
            .poll_devices(list, &Selection::Configured, 16, |_| polled += 1)
            .await
            .unwrap();
        assert!(engine.flush().await.is_empty());
        assert_eq!(polled, ids.len());

        let backlog = engine.db_writer.backlog();
        let s = backlog.stats();
        // Polls waited, and what the writer held stayed at the bound plus
        // at most one poll's rows per poll in flight.
        assert!(s.episodes.load(Ordering::Relaxed) >= 1, "{s:?}");
        assert!(s.waits.load(Ordering::Relaxed) >= 1, "{s:?}");
        let peak_bytes = s.peak_bytes.load(Ordering::Relaxed);
        assert!(peak_bytes <= (1 << 20) + 16 * (512 << 10), "{s:?}");
        // Fewer polls were let in flight while the database was behind:
        // they would only have waited with their rows.
        let window = &engine.window_stats;
        assert!(window.cuts.load(Ordering::Relaxed) >= 1, "{window:?}");
        assert_eq!(window.smallest.load(Ordering::Relaxed), 8, "{window:?}");
        assert_eq!(backlog.held(), (0, 0));
        assert_eq!(
            engine
                .db_writer
                .stats()
                .dropped_polls
                .load(Ordering::Relaxed),
            0
        );
        // Every poll's rows arrived.
        drop(proxy);
        assert_every_switch_written(&t, ids.len()).await;
        let _ = engine.finish().await;
        db.close().await;
        drop(sim);
        t.drop_database().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_defers_polls_while_the_database_is_behind_and_reports_them_overdue() {
    within(300, async {
        let t = TestDb::new().await;
        // Few enough devices that, once the database is fast again, the
        // node has room for all of them within the period (LibreNMS's
        // order starts the slowest devices first, so an overloaded node
        // would starve the never-polled ones).
        let (sim, ids) = switches(&t, 12).await;
        let (proxy, db) = throttled(&t, 40_000, 2).await;
        let (engine, _rrd) = engine_on(&db, &[("db.held_rows", "1000"), ("db.held_mb", "1")]).await;
        let opts = SchedulerOptions {
            frequency: Duration::from_secs(5),
            down_retry: Duration::from_secs(5),
            concurrency: 8,
            deadline: Duration::from_secs(120),
            tick: Duration::from_millis(200),
            groups: None,
            require_discovery: false,
            drain: Duration::from_secs(120),
        };
        let scheduler = Scheduler::new(engine.clone(), Arc::new(MemoryLeases::new()), opts);
        let stats = scheduler.stats();
        let stop = CancellationToken::new();
        let run = tokio::spawn(scheduler.run(stop.clone()));
        // Watch for the database falling behind and devices going overdue.
        let (mut saw_behind, mut most_overdue) = (false, 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while most_overdue == 0 || !saw_behind || stats.deferred.load(Ordering::Relaxed) == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no device deferred and reported overdue (behind: {saw_behind}, overdue: {most_overdue}, deferred: {})",
                stats.deferred.load(Ordering::Relaxed)
            );
            saw_behind |= engine.sinks_behind() == vec!["the database"];
            most_overdue = most_overdue.max(stats.overdue.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The database recovers: every device gets polled and its rows
        // arrive.
        proxy.rate.store(0, Ordering::Relaxed);
        let polled_all = async {
            loop {
                if count(&t, POLLED).await == ids.len() as i64 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(120), polled_all)
            .await
            .is_err()
        {
            panic!(
                "not every device was polled once the database caught up: behind {:?}, held {:?}, started {}, up {}, down {}, abandoned {}, pending {}, overdue {}",
                engine.sinks_behind(),
                engine.db_writer.backlog().held(),
                stats.started.load(Ordering::Relaxed),
                stats.up.load(Ordering::Relaxed),
                stats.down.load(Ordering::Relaxed),
                stats.abandoned.load(Ordering::Relaxed),
                stats.pending.load(Ordering::Relaxed),
                stats.overdue.load(Ordering::Relaxed),
            );
        }
        stop.cancel();
        run.await.unwrap();
        assert_every_switch_written(&t, ids.len()).await;
        assert_eq!(engine.db_writer.stats().dropped_polls.load(Ordering::Relaxed), 0);
        let _ = engine.finish().await;
        db.close().await;
        drop(sim);
        t.drop_database().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_rrdcached_holds_polls_at_the_bound_and_gets_every_update_after() {
    within(300, async {
        let t = TestDb::new().await;
        let (sim, ids) = switches(&t, 40).await;
        let (engine, rrd) = engine_on(&t.db, &[("rrd.held_updates", "1000")]).await;
        rrd.signal("STOP");
        let polls = {
            let engine = engine.clone();
            let db = t.db.clone();
            tokio::spawn(async move {
                let list = ironpoll::db::devices::find(&db, "all").await.unwrap();
                engine
                    .poll_devices(list, &Selection::Configured, 8, |_| {})
                    .await
                    .unwrap();
            })
        };
        let backlog = engine.rrd.backlog().clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while !backlog.is_behind() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "rrdcached never fell behind"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Polls wait: more time passes and they do not finish.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            !polls.is_finished(),
            "polls went on while rrdcached was stopped"
        );
        let held = backlog.held().0;
        assert!(held <= 1000 + 8 * 100, "held {held}");
        rrd.signal("CONT");
        polls.await.unwrap();
        let mut tries = 0;
        // Both writers: the rows are counted below.
        while !engine.flush().await.is_empty() {
            tries += 1;
            assert!(tries < 100, "held updates never written");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let s = engine.rrd.stats();
        assert_eq!(s.dropped, 0, "{s:?}");
        assert_eq!(s.written + s.rejected, s.received, "{s:?}");
        let peak = backlog.stats().peak_units.load(Ordering::Relaxed);
        assert!(peak <= 1000 + 8 * 100, "peak {peak}");
        // Every device's port files are there.
        for i in 0..ids.len() {
            let dir = rrd.base().join(format!("sw{i}"));
            let ports = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .filter(|f| {
                    let name = f.as_ref().unwrap().file_name();
                    let name = name.to_string_lossy();
                    name.starts_with("port-id") && name.ends_with(".rrd")
                })
                .count();
            assert_eq!(ports, 53, "{}", dir.display());
        }
        assert_every_switch_written(&t, ids.len()).await;
        let _ = engine.finish().await;
        drop(sim);
        t.drop_database().await;
    })
    .await;
}

/// Above `poller.memory_high` no new poll starts while one is in flight:
/// with a mark below what any process holds, the fleet is polled one
/// device at a time (their poll times fit within the wall time, which
/// overlapping polls' would not), and every device still gets polled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn above_memory_high_polls_start_one_at_a_time_and_every_device_is_polled() {
    within(300, async {
        let t = TestDb::new().await;
        let (sim, ids) = switches(&t, 6).await;
        let db = t.db.clone();
        let (engine, _rrd) = engine_on(&db, &[("poller.memory_high", "1")]).await;
        let list = ironpoll::db::devices::find(&db, "all").await.unwrap();
        let started = std::time::Instant::now();
        let mut seconds = Vec::new();
        engine
            .poll_devices(list, &Selection::Configured, 8, |r| seconds.push(r.seconds))
            .await
            .unwrap();
        let wall = started.elapsed().as_secs_f64();
        assert_eq!(seconds.len(), ids.len());
        let polling: f64 = seconds.iter().sum();
        assert!(
            polling <= wall,
            "polls overlapped: {polling:.3} s of polling in {wall:.3} s"
        );
        let memory = engine.memory.stats();
        assert_eq!(memory.episodes.load(Ordering::Relaxed), 1);
        assert!(
            memory.waits.load(Ordering::Relaxed) >= 1,
            "no start waited on memory"
        );
        assert!(engine.flush().await.is_empty());
        assert_every_switch_written(&t, ids.len()).await;
        let _ = engine.finish().await;

        // Without a mark the same polls overlap.
        let (engine, _rrd) = engine_on(&db, &[("poller.memory_high", "0")]).await;
        let list = ironpoll::db::devices::find(&db, "all").await.unwrap();
        let started = std::time::Instant::now();
        let mut polling = 0.0;
        engine
            .poll_devices(list, &Selection::Configured, 8, |r| polling += r.seconds)
            .await
            .unwrap();
        let wall = started.elapsed().as_secs_f64();
        assert!(polling > wall, "{polling:.3} s of polling in {wall:.3} s");
        assert_eq!(engine.memory.stats().waits.load(Ordering::Relaxed), 0);
        let _ = engine.finish().await;
        drop(sim);
        t.drop_database().await;
    })
    .await;
}
