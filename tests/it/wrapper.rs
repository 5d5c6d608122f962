//! A cron-driven LibreNMS cluster shared through memcached: ironpoll
//! nodes beside LibreNMS's own `poller-wrapper.py` (from
//! ../shared/fixtures/librenms/dispatcher), on one database, one memcached
//! and one fleet of simulated devices. The wrapper's `php` and `lnms` are
//! small stand-ins: `php` runs its script, `lnms` answers `config:get
//! --dump` and records each `device:poll <id>` (node, start, end) after
//! stamping `last_polled`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ironpoll::sim::Simulator;
use ironpoll::sim::profile::Profile;

use crate::services::TestDb;
use crate::support::*;
use crate::within;

/// A private memcached on a free loopback port.
struct Memcached {
    port: u16,
    child: Option<Child>,
}

impl Memcached {
    fn start() -> Memcached {
        let port = free_tcp_port();
        let mut m = Memcached { port, child: None };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("memcached");
        cmd.args([
            "-l",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "0",
            "-m",
            "16",
        ]);
        // memcached refuses to run as root unless told which user to be.
        // SAFETY: geteuid only reads the process's credentials.
        if unsafe { libc::geteuid() } == 0 {
            cmd.args(["-u", "root"]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start memcached ({e}): {SETUP_HINT}"));
        self.child = Some(child);
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("memcached did not listen on port {}", self.port);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn dispatcher_python() -> PathBuf {
    let p = std::env::var_os("IRONPOLL_DISPATCHER_PYTHON").unwrap_or_else(|| {
        panic!("IRONPOLL_DISPATCHER_PYTHON is not set (the venv of misc/lib.sh's ensure_dispatcher_venv): {SETUP_HINT}")
    });
    PathBuf::from(p)
}

pub(crate) fn dispatcher_dir() -> PathBuf {
    let fixtures = std::env::var_os("IRONPOLL_LIBRENMS_FIXTURES").unwrap_or_else(|| {
        panic!("IRONPOLL_LIBRENMS_FIXTURES is not set: {SETUP_HINT}");
    });
    PathBuf::from(fixtures).join("dispatcher")
}

pub(crate) fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            // Real copies, writable: the wrapper finds its base directory
            // from its own path.
            std::fs::write(&target, std::fs::read(entry.path()).unwrap()).unwrap();
        }
    }
}

/// The database coordinates the stand-in `lnms` connects with.
pub(crate) struct DbCoords {
    pub host: String,
    pub port: String,
    pub user: String,
    pub password: String,
    pub name: String,
}

pub(crate) fn db_coords(url: &str) -> DbCoords {
    let rest = url.strip_prefix("mysql://").expect("a mysql:// URL");
    let (auth, rest) = rest.split_once('@').expect("user@host in the URL");
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let (hostport, name) = rest.split_once('/').expect("a database in the URL");
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "3306"));
    DbCoords {
        host: host.into(),
        port: port.into(),
        user: user.into(),
        password: password.into(),
        name: name.into(),
    }
}

pub(crate) const STAND_IN_LNMS: &str = r#"
import json, os, sys, time
base = os.path.dirname(os.path.realpath(__file__))
cfg = json.load(open(os.path.join(base, "config.json")))
args = sys.argv[1:]
if args[:2] == ["config:get", "--dump"]:
    print(json.dumps(cfg))
    sys.exit(0)
if args[:1] == ["device:poll"]:
    import pymysql
    device = int(args[1])
    start = time.time()
    time.sleep(cfg["test_poll_seconds"])
    db = pymysql.connect(host=os.environ["DB_HOST"], port=int(os.environ["DB_PORT"]),
                         user=os.environ["DB_USERNAME"], password=os.environ.get("DB_PASSWORD", ""),
                         database=os.environ["DB_DATABASE"], autocommit=True)
    with db.cursor() as c:
        c.execute("UPDATE devices SET last_polled = NOW(), last_polled_timetaken = %s WHERE device_id = %s",
                  (time.time() - start, device))
    db.close()
    end = time.time()
    with open(cfg["test_record"], "a") as f:
        f.write("%s %d %.3f %.3f\n" % (cfg["distributed_poller_name"], device, start, end))
    sys.exit(0)
# device:discover, device:ping and the rest: nothing to do here.
sys.exit(0)
"#;

/// One `poller-wrapper.py` node: its own copy of LibreNMS's files, `.env`,
/// config and stand-ins.
struct WrapperNode {
    name: String,
    dir: tempfile::TempDir,
}

impl WrapperNode {
    fn new(name: &str, db_url: &str, memcached: u16, step: u32, record: &Path) -> WrapperNode {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let src = dispatcher_dir();
        std::fs::write(
            base.join("poller-wrapper.py"),
            std::fs::read(src.join("poller-wrapper.py")).unwrap(),
        )
        .unwrap();
        copy_tree(&src.join("LibreNMS"), &base.join("LibreNMS"));
        let python = dispatcher_python();
        let lnms = base.join("lnms");
        std::fs::write(&lnms, format!("#!{}\n{STAND_IN_LNMS}", python.display())).unwrap();
        std::fs::create_dir(base.join("bin")).unwrap();
        let php = base.join("bin/php");
        std::fs::write(&php, "#!/bin/sh\nexec \"$@\"\n").unwrap();
        for f in [&lnms, &php] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let config = serde_json::json!({
            "log_dir": base.display().to_string(),
            // The wrapper reads these; a LibreNMS dump always has them.
            "schedule_type": {"poller": "legacy"},
            "distributed_poller": true,
            "distributed_poller_name": name,
            "distributed_poller_group": "0",
            "distributed_poller_memcached_host": "127.0.0.1",
            "distributed_poller_memcached_port": memcached,
            "rrd": {"step": step},
            "test_poll_seconds": 1.0,
            "test_record": record.display().to_string(),
        });
        std::fs::write(base.join("config.json"), config.to_string()).unwrap();
        let db = db_coords(db_url);
        std::fs::write(
            base.join(".env"),
            format!(
                "NODE_ID={name}\nDB_HOST={}\nDB_PORT={}\nDB_DATABASE={}\nDB_USERNAME={}\nDB_PASSWORD={}\n",
                db.host, db.port, db.name, db.user, db.password
            ),
        )
        .unwrap();
        WrapperNode {
            name: name.into(),
            dir,
        }
    }

    /// Starts one cron run of `poller-wrapper.py` with `workers` threads.
    fn run(&self, workers: u32) -> Child {
        let base = self.dir.path();
        let path = format!(
            "{}:{}",
            base.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new(dispatcher_python())
            .arg(base.join("poller-wrapper.py"))
            .arg(workers.to_string())
            .env("PATH", path)
            .current_dir(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("poller_wrapper.log")).unwrap_or_default()
    }
}

/// `ironpoll run` as a node of the cluster, its log in a file.
pub(crate) struct IronpollNode {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl IronpollNode {
    fn start(
        name: &str,
        db_url: &str,
        memcached: u16,
        step: u32,
        concurrency: u32,
    ) -> IronpollNode {
        IronpollNode::start_in_steps(name, db_url, memcached, step, concurrency, &[])
    }

    /// A wrapper-cluster node on `memcached`, in steps of `step` seconds,
    /// with `extra` settings.
    fn start_in_steps(
        name: &str,
        db_url: &str,
        memcached: u16,
        step: u32,
        concurrency: u32,
        extra: &[(&str, String)],
    ) -> IronpollNode {
        let mut settings = vec![
            ("distributed_poller_memcached_host", "127.0.0.1".to_string()),
            ("distributed_poller_memcached_port", memcached.to_string()),
            ("rrd.step", step.to_string()),
            ("service_poller_frequency", step.to_string()),
            ("poller.concurrency", concurrency.to_string()),
        ];
        settings.extend(extra.iter().cloned());
        IronpollNode::start_with(name, db_url, &settings)
    }

    /// `ironpoll run` as a distributed node named `name`, with `extra`
    /// settings.
    pub(crate) fn start_with(name: &str, db_url: &str, extra: &[(&str, String)]) -> IronpollNode {
        IronpollNode::start_with_env(name, db_url, extra, &[])
    }

    /// [`IronpollNode::start_with`], with `env` variables too.
    pub(crate) fn start_with_env(
        name: &str,
        db_url: &str,
        extra: &[(&str, String)],
        env: &[(&str, String)],
    ) -> IronpollNode {
        IronpollNode::spawn(name, &["--db", db_url], extra, env)
    }

    /// `ironpoll run --librenms-dir DIR`, which finds the database, Redis
    /// and the node's id in that directory's `.env`, as on a LibreNMS node.
    pub(crate) fn start_on_librenms(
        name: &str,
        librenms_dir: &Path,
        extra: &[(&str, String)],
    ) -> IronpollNode {
        let dir = librenms_dir.display().to_string();
        IronpollNode::spawn(name, &["--librenms-dir", &dir], extra, &[])
    }

    fn spawn(
        name: &str,
        source: &[&str],
        extra: &[(&str, String)],
        env: &[(&str, String)],
    ) -> IronpollNode {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("ironpoll.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ironpoll"));
        cmd.arg("run").args(source);
        let base = [
            ("distributed_poller", "true".to_string()),
            ("distributed_poller_name", name.to_string()),
            ("rrd_dir", dir.path().join("rrd").display().to_string()),
            ("fping_options.count", "1".into()),
            ("snmp.timeout", "1".into()),
        ];
        for (k, v) in base.iter().chain(extra) {
            // A flag (`--librenms-dir`) as it is, a setting with --set.
            if k.starts_with("--") {
                cmd.args([k, v.as_str()]);
            } else {
                cmd.args(["--set", &format!("{k}={v}")]);
            }
        }
        // The test's own variables last: it may ask for more of the log.
        cmd.env("RUST_LOG", "info,ironpoll::scheduler=debug");
        cmd.envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        IronpollNode {
            name: name.into(),
            child: Some(cmd.spawn().unwrap()),
            log,
            _dir: dir,
        }
    }

    /// SIGTERM, without waiting.
    pub(crate) fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends a signal (`HUP`, `TERM`) to the node, without waiting.
    pub(crate) fn signal(&self, name: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args([&format!("-{name}"), &c.id().to_string()])
                .status();
        }
    }

    /// The node's process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, and the wait for its clean exit (polls drain for up to
    /// 30 s, then the writers flush).
    pub(crate) fn stop(&mut self) {
        self.terminate();
        if let Some(mut c) = self.child.take()
            && !wait_or_kill(&mut c, Duration::from_secs(90))
        {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "{} did not stop within 90 s of SIGTERM; its log ends:\n{}",
                self.name,
                tail.join("\n")
            );
        }
    }

    /// kill -9: nothing is finished or released.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The lines of this node's log about one device, and its warnings
    /// and errors: what a failed assertion about the device shows.
    pub(crate) fn story_of(&self, device: u32) -> String {
        let tag = format!("device={device}");
        self.log()
            .lines()
            .filter(|l| {
                l.split_whitespace().any(|w| w == tag)
                    || l.contains(" WARN ")
                    || l.contains(" ERROR ")
                    || l.contains("master dispatcher")
            })
            .map(|l| format!("{}: {l}\n", self.name))
            .collect()
    }

    /// The polls this node logged.
    pub(crate) fn polls(&self) -> Vec<Poll> {
        self.log()
            .lines()
            .filter(|l| l.contains("device polled"))
            .map(|l| {
                let maybe = |k: &str| {
                    l.split_whitespace()
                        .find_map(|w| w.strip_prefix(&format!("{k}=")))
                        .map(|v| v.trim_matches('"').to_string())
                };
                let field = |k: &str| maybe(k).unwrap_or_else(|| panic!("no {k} in {l}"));
                Poll {
                    node: self.name.clone(),
                    device: field("device").parse().unwrap(),
                    start: field("started").parse().unwrap(),
                    end: field("ended").parse().unwrap(),
                    step: maybe("step").map(|s| s.parse().unwrap()),
                }
            })
            .collect()
    }
}

impl Drop for IronpollNode {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Poll {
    pub node: String,
    pub device: u32,
    pub start: f64,
    pub end: f64,
    /// The step an ironpoll node claimed it in.
    step: Option<i64>,
}

impl Poll {
    fn step(&self, secs: u32) -> i64 {
        self.step
            .unwrap_or_else(|| self.start as i64 - (self.start as i64).rem_euclid(i64::from(secs)))
    }
}

pub(crate) fn wrapper_polls(record: &Path) -> Vec<Poll> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Poll {
                node: f[0].into(),
                device: f[1].parse().unwrap(),
                start: f[2].parse().unwrap(),
                end: f[3].parse().unwrap(),
                step: None,
            }
        })
        .collect()
}

/// Waits for a wrapper run to exit.
pub(crate) async fn exit_of(mut run: Child) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || run.wait())
        .await
        .unwrap()
        .unwrap()
}

pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Sleeps until `offset` seconds into the next step; returns its start.
async fn next_step(secs: u32, offset: f64) -> i64 {
    let now = unix_now();
    let start = (now as i64 / i64::from(secs) + 1) * i64::from(secs);
    tokio::time::sleep(Duration::from_secs_f64(start as f64 + offset - now)).await;
    start
}

/// Sleeps until `at` (Unix seconds).
pub(crate) async fn until(at: f64) {
    let wait = at - unix_now();
    if wait > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(wait)).await;
    }
}

pub(crate) async fn fleet_in(t: &TestDb, size: usize, first: &str) -> (Simulator, Vec<u32>) {
    // Polls of about a second, as a real device's are, so that nodes
    // overlap. One loopback address each from `first`, on one port, so
    // that no run of ports can collide with another test's.
    let sim = address_fleet(Profile::Switch48, size, first, &["latency=5ms"]).await;
    let mut ids = Vec::new();
    for (i, d) in sim.fleet.iter().enumerate() {
        // Names of their own, so that each has its own RRD directory.
        let name = format!("switch-{i}");
        let at = [(
            "overwrite_ip",
            ironpoll::db::Val::text(d.addr.ip().to_string()),
        )];
        ids.push(t.add_device(&name, d.addr.port(), &at).await);
    }
    (sim, ids)
}

/// No device polled by two nodes at once.
pub(crate) fn assert_no_overlap(polls: &[Poll]) {
    let mut by_device: BTreeMap<u32, Vec<&Poll>> = BTreeMap::new();
    for p in polls {
        by_device.entry(p.device).or_default().push(p);
    }
    for (device, mut ps) in by_device {
        ps.sort_by(|a, b| a.start.total_cmp(&b.start));
        for pair in ps.windows(2) {
            assert!(
                pair[1].start >= pair[0].end,
                "device {device} polled by {} and {} at once: {:?}",
                pair[0].node,
                pair[1].node,
                pair
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ironpoll_and_poller_wrapper_nodes_poll_each_device_once_per_step() {
    within(240, async {
        const STEP: u32 = 20;
        let t = TestDb::new().await;
        let mc = Memcached::start();
        let (sim, ids) = fleet_in(&t, 24, "127.91.0.1").await;
        let record_dir = tempfile::tempdir().unwrap();
        let record = record_dir.path().join("polls.txt");
        let wrappers: Vec<WrapperNode> = ["wrapper-1", "wrapper-2"]
            .iter()
            .map(|n| WrapperNode::new(n, &t.url, mc.port, STEP, &record))
            .collect();

        let first = next_step(STEP, 0.2).await;
        let mut nodes: Vec<IronpollNode> = ["ironpoll-1", "ironpoll-2"]
            .iter()
            .map(|n| IronpollNode::start(n, &t.url, mc.port, STEP, 3))
            .collect();
        let steps: Vec<i64> = (0..3).map(|i| first + i * i64::from(STEP)).collect();
        let mut runs = Vec::new();
        for &step in &steps {
            // cron starts every wrapper node at the step's start.
            until(step as f64 + 0.5).await;
            for w in &wrappers {
                runs.push(w.run(3));
            }
        }
        until((steps[2] + i64::from(STEP)) as f64 + 1.0).await;
        for n in &nodes {
            n.terminate();
        }
        for n in &mut nodes {
            n.stop();
        }
        for r in runs {
            let status = exit_of(r).await;
            // 0, or 2 for a run past its step; never a crash.
            assert!(matches!(status.code(), Some(0 | 2)), "poller-wrapper.py exited {status}");
        }

        let mut polls = wrapper_polls(&record);
        for n in &nodes {
            polls.extend(n.polls());
        }
        let logs = || {
            let mut s = String::new();
            for n in &nodes {
                s += &format!("--- {}\n{}", n.name, n.log());
            }
            for w in &wrappers {
                s += &format!("--- {}\n{}", w.name, w.log());
            }
            s
        };
        assert_no_overlap(&polls);
        for &step in &steps {
            let mut count: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
            for p in polls.iter().filter(|p| p.step(STEP) == step) {
                count.entry(p.device).or_default().push(&p.node);
            }
            for id in &ids {
                let by = count.get(id).cloned().unwrap_or_default();
                assert_eq!(
                    by.len(),
                    1,
                    "device {id} in step {step} was polled by {by:?}\n{}",
                    logs()
                );
            }
        }
        // Both kinds of node took part, and each node reported its runs
        // in `pollers`, as cron pollers do.
        let in_steps: Vec<&Poll> = polls
            .iter()
            .filter(|p| steps.contains(&p.step(STEP)))
            .collect();
        let kinds: BTreeSet<bool> = in_steps
            .iter()
            .map(|p| p.node.starts_with("ironpoll"))
            .collect();
        let mut share: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &in_steps {
            *share.entry(p.node.as_str()).or_default() += 1;
        }
        eprintln!("polls per node over {} steps: {share:?}", steps.len());
        assert_eq!(kinds.len(), 2, "one kind of node polled everything\n{}", logs());
        let pollers = t
            .db
            .fetch(&ironpoll::db::Statement::new(
                "SELECT `poller_name`, `devices` FROM `pollers` ORDER BY `poller_name`",
            ))
            .await
            .unwrap();
        let names: Vec<String> = pollers.iter().filter_map(|r| r.string("poller_name")).collect();
        assert_eq!(names, ["ironpoll-1", "ironpoll-2", "wrapper-1", "wrapper-2"]);
        // ironpoll stamped last_polled for what it polled.
        let mine = polls.iter().find(|p| p.node.starts_with("ironpoll")).unwrap();
        let stamped = t
            .scalar(&format!(
                "SELECT COUNT(*) FROM `devices` WHERE `device_id` = {} AND `last_polled` IS NOT NULL",
                mine.device
            ))
            .await;
        assert_eq!(stamped.as_i64(), Some(1));
        drop(sim);
        t.drop_database().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_memcached_is_lost_the_master_takes_over_and_nodes_stop() {
    within(300, async {
        const STEP: u32 = 30;
        let t = TestDb::new().await;
        let mut mc = Memcached::start();
        let (sim, ids) = fleet_in(&t, 30, "127.92.0.1").await;
        let record_dir = tempfile::tempdir().unwrap();
        let record = record_dir.path().join("polls.txt");
        let wrapper = WrapperNode::new("wrapper-1", &t.url, mc.port, STEP, &record);

        // ironpoll first in the step: the master. The wrapper joins as a
        // node, and memcached goes away mid-step.
        let step = next_step(STEP, 0.1).await;
        // `ironpoll status` reads whether memcached answers from here.
        let run_dir = tempfile::tempdir().unwrap();
        let status_file = run_dir.path().join("status.json");
        let memcached_answers = || {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&status_file).unwrap()).unwrap();
            assert_eq!(v["distribution"], "wrapper", "{v}");
            assert!(
                v["coordinator"]
                    .as_str()
                    .unwrap()
                    .starts_with("memcached at 127.0.0.1:"),
                "{v}"
            );
            v["coordinator_answers"].as_bool().unwrap()
        };
        let mut master = IronpollNode::start_in_steps(
            "ironpoll-master",
            &t.url,
            mc.port,
            STEP,
            4,
            &[("status_file", status_file.display().to_string())],
        );
        until(step as f64 + 2.5).await;
        assert!(memcached_answers());
        let run = wrapper.run(2);
        until(step as f64 + 7.0).await;
        mc.stop();
        let lost_at = unix_now();
        let status = exit_of(run).await;
        assert!(
            status.code().is_some(),
            "poller-wrapper.py crashed: {status}"
        );
        until((step + i64::from(STEP)) as f64 - 3.0).await;
        assert!(
            !memcached_answers(),
            "the status file says memcached answers after it was stopped"
        );
        master.stop();

        let log = master.log();
        let wlog = wrapper.log();
        let both = || format!("--- ironpoll\n{log}\n--- wrapper\n{wlog}");
        assert!(
            log.contains("registered as master of the step"),
            "{}",
            both()
        );
        assert!(
            wlog.contains("Registered as Node joining Master ironpoll-master"),
            "{}",
            both()
        );
        // The loss is said once, however many claims it stopped.
        assert_eq!(log.matches("lost memcached").count(), 1, "{}", both());
        assert_eq!(log.matches("device claims stop").count(), 1, "{}", both());
        let mut polls = wrapper_polls(&record);
        let wrapper_count = polls.len();
        polls.extend(master.polls());
        assert!(
            wrapper_count > 0,
            "the wrapper node polled nothing before the loss\n{}",
            both()
        );
        // The node polls nothing it did not start before the loss.
        for p in polls.iter().filter(|p| p.node == "wrapper-1") {
            assert!(
                p.start < lost_at + 1.0,
                "the wrapper node started {p:?} after the loss"
            );
        }
        // The master polled every device the node did not.
        let polled: BTreeSet<u32> = polls
            .iter()
            .filter(|p| p.step(STEP) == step)
            .map(|p| p.device)
            .collect();
        let missing: Vec<&u32> = ids.iter().filter(|id| !polled.contains(id)).collect();
        assert!(
            missing.is_empty(),
            "not polled in the step: {missing:?}\n{}",
            both()
        );
        let taken_over = master.polls().iter().filter(|p| p.start > lost_at).count();
        eprintln!(
            "wrapper node: {wrapper_count} polls; ironpoll master after the loss: {taken_over}"
        );
        assert!(
            taken_over > 0,
            "the master polled nothing after the loss\n{}",
            both()
        );
        // Before the loss, claims kept them apart.
        let before: Vec<Poll> = polls
            .iter()
            .filter(|p| p.start < lost_at)
            .cloned()
            .collect();
        assert_no_overlap(&before);

        // The other way round: the wrapper is master, ironpoll a node.
        mc.spawn();
        let step = next_step(STEP, 0.2).await;
        let run = wrapper.run(2);
        until(step as f64 + 2.5).await;
        let mut node = IronpollNode::start("ironpoll-node", &t.url, mc.port, STEP, 2);
        until(step as f64 + 8.0).await;
        mc.stop();
        let lost_at = unix_now();
        until(step as f64 + 14.0).await;
        node.stop();
        let status = exit_of(run).await;
        assert!(
            status.code().is_some(),
            "poller-wrapper.py crashed: {status}"
        );
        let log = node.log();
        assert!(
            log.contains("registered as node joining the step's master"),
            "{log}"
        );
        assert!(log.contains("master=wrapper-1"), "{log}");
        assert_eq!(log.matches("lost memcached").count(), 1, "{log}");
        let polls = node.polls();
        assert!(
            !polls.is_empty(),
            "the ironpoll node polled nothing before the loss\n{log}"
        );
        for p in &polls {
            assert!(
                p.start < lost_at + 1.0,
                "the ironpoll node started {p:?} after the loss\n{log}"
            );
        }
        drop(sim);
        t.drop_database().await;
        let _ = std::io::stderr().flush();
    })
    .await;
}
