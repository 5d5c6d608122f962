//! A LibreNMS dispatcher cluster shared through Redis: ironpoll nodes next
//! to LibreNMS's own `librenms-service.py` (from
//! ../shared/fixtures/librenms/dispatcher), one Redis, one database, one
//! fleet. The service's `php` runs its script; its `lnms` answers
//! `config:get --dump` and records each `device:poll <id>` (node, start,
//! end) after stamping `last_polled`, as in the wrapper tests.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::services::TestDb;
use crate::support::*;
use crate::within;
use crate::wrapper::{
    IronpollNode, Poll, STAND_IN_LNMS, assert_no_overlap, copy_tree, db_coords, dispatcher_dir,
    dispatcher_python, fleet_in, unix_now, until, wrapper_polls,
};

/// A private Redis on a free loopback port, with `extra` arguments.
struct RedisServer {
    port: u16,
    /// A config file, which redis-server wants first.
    conf: Option<String>,
    extra: Vec<String>,
    /// Its working directory: a replica's copy of the data set lands
    /// there, not in the checkout.
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    fn start_with(extra: &[&str]) -> RedisServer {
        let mut r = RedisServer::unstarted(None, extra.iter().map(|s| s.to_string()).collect());
        r.spawn();
        r
    }

    /// A server on a free port, not yet spawned.
    fn unstarted(conf: Option<String>, extra: Vec<String>) -> RedisServer {
        RedisServer {
            port: free_tcp_port(),
            conf,
            extra,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        }
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(&self.conf);
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .current_dir(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server ({e}): {SETUP_HINT}"));
        self.child = Some(child);
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not listen on port {}", self.port);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A plain connection, for the test's own looks and writes.
    fn connection(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    fn get(&self, key: &str) -> Option<String> {
        redis::cmd("GET")
            .arg(key)
            .query(&mut self.connection())
            .unwrap()
    }

    /// The settings that point a node at this server.
    fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("redis.host", "127.0.0.1".into()),
            ("redis.port", self.port.to_string()),
        ]
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One `librenms-service.py` node: its own copy of LibreNMS's files.
struct ServiceNode {
    name: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl ServiceNode {
    fn start(name: &str, db_url: &str, redis: u16, config: serde_json::Value) -> ServiceNode {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let src = dispatcher_dir();
        std::fs::write(
            base.join("librenms-service.py"),
            std::fs::read(src.join("librenms-service.py")).unwrap(),
        )
        .unwrap();
        copy_tree(&src.join("LibreNMS"), &base.join("LibreNMS"));
        let python = dispatcher_python();
        std::fs::create_dir(base.join("bin")).unwrap();
        let scripts = [
            (
                base.join("lnms"),
                format!("#!{}\n{STAND_IN_LNMS}", python.display()),
            ),
            (base.join("bin/php"), "#!/bin/sh\nexec \"$@\"\n".to_string()),
        ];
        for (path, text) in &scripts {
            std::fs::write(path, text).unwrap();
        }
        // LibreNMS's other scripts: nothing to do in these tests.
        let mut executables: Vec<std::path::PathBuf> =
            scripts.iter().map(|(p, _)| p.clone()).collect();
        for php in [
            "alerts.php",
            "poll-billing.php",
            "billing-calculate.php",
            "check-services.php",
        ] {
            let p = base.join(php);
            std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
            executables.push(p);
        }
        for f in &executables {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mut config = config;
        config["distributed_poller_name"] = name.into();
        config["log_dir"] = base.display().to_string().into();
        std::fs::write(base.join("config.json"), config.to_string()).unwrap();
        let db = db_coords(db_url);
        std::fs::write(
            base.join(".env"),
            format!(
                "NODE_ID={name}\nDB_HOST={}\nDB_PORT={}\nDB_DATABASE={}\nDB_USERNAME={}\nDB_PASSWORD={}\nREDIS_HOST=127.0.0.1\nREDIS_PORT={redis}\n",
                db.host, db.port, db.name, db.user, db.password
            ),
        )
        .unwrap();
        let path = format!(
            "{}:{}",
            base.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new(&python)
            .arg(base.join("librenms-service.py"))
            .arg("-v")
            .env("PATH", path)
            .current_dir(base)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(base.join("service.log")).unwrap())
            .spawn()
            .unwrap();
        ServiceNode {
            name: name.into(),
            dir,
            child: Some(child),
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, as `systemctl stop librenms` sends, and the wait for the
    /// service to exit (killed after 30 s).
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            wait_or_kill(&mut c, Duration::from_secs(30));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }
}

impl Drop for ServiceNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The master's name: its lock's owner without the `-<uuid>` LibreNMS
/// appends.
fn master_name(redis: &RedisServer) -> Option<String> {
    let owner = redis.get("librenms.lock:dispatch.master")?;
    // <name>-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
    let parts: Vec<&str> = owner.rsplitn(6, '-').collect();
    parts.last().map(|s| s.to_string())
}

/// For each device, its polls in start order.
fn by_device(polls: &[Poll]) -> BTreeMap<u32, Vec<&Poll>> {
    let mut m: BTreeMap<u32, Vec<&Poll>> = BTreeMap::new();
    for p in polls {
        m.entry(p.device).or_default().push(p);
    }
    for v in m.values_mut() {
        v.sort_by(|a, b| a.start.total_cmp(&b.start));
    }
    m
}

/// The `lnms config:get --dump` the Python nodes read: a distributed
/// poller of group 0, every dispatcher task on the service, and the
/// stand-in's own keys (how long a poll takes, where it is recorded).
fn service_config(
    freq: u32,
    master_timeout: u32,
    workers: u32,
    poll_seconds: f64,
    record: &std::path::Path,
) -> serde_json::Value {
    serde_json::json!({
        "distributed_poller": true,
        "distributed_poller_group": "0",
        // LibreNMS's dump always has it, and the service needs it.
        "schedule_type": {"poller": "legacy", "discovery": "legacy", "services": "legacy",
                          "alerting": "legacy", "billing": "legacy", "ping": "legacy"},
        "service_poller_frequency": freq,
        "service_poller_workers": workers,
        "service_poller_down_retry": 5,
        "service_master_timeout": master_timeout,
        "service_update_enabled": false,
        "test_poll_seconds": poll_seconds,
        "test_record": record.display().to_string(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ironpoll_and_librenms_service_nodes_share_one_cluster_through_failures() {
    within(300, async {
        const FREQ: u32 = 20;
        const MASTER_TIMEOUT: u32 = 6;
        let t = TestDb::new().await;
        let redis = RedisServer::start();
        let (sim, ids) = fleet_in(&t, 12, "127.93.0.1").await;
        let record_dir = tempfile::tempdir().unwrap();
        let record = record_dir.path().join("polls.txt");
        let config = service_config(FREQ, MASTER_TIMEOUT, 4, 1.0, &record);
        let mut node_settings = redis.settings();
        node_settings.push(("service_poller_down_retry", "5".into()));
        node_settings.push(("poller.concurrency", "4".into()));
        let ironpoll =
            |name: &str| cluster_node(name, &t.url, FREQ, MASTER_TIMEOUT, &node_settings, &[]);
        let began = unix_now();
        let mut services = vec![
            ServiceNode::start("python-1", &t.url, redis.port, config.clone()),
            ServiceNode::start("python-2", &t.url, redis.port, config.clone()),
        ];
        // A Python master first, so that ironpoll works under it; the
        // kill -9 below then hands the cluster to whichever node wins.
        while !master_name(&redis).is_some_and(|m| m.starts_with("python")) {
            assert!(unix_now() - began < 60.0, "no Python master within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut irons = vec![ironpoll("ironpoll-1"), ironpoll("ironpoll-2")];
        until(began + 3.5 * f64::from(FREQ)).await;

        // kill -9 the master, whichever kind it is.
        let old = master_name(&redis).expect("a master");
        if let Some(s) = services.iter_mut().find(|s| s.name == old) {
            s.kill();
        } else if let Some(n) = irons.iter_mut().find(|n| n.name == old) {
            n.kill();
        } else {
            panic!("the master {old:?} is none of the nodes");
        }
        let killed_master = unix_now();
        let new = loop {
            match master_name(&redis) {
                Some(m) if m != old => break m,
                _ => {}
            }
            assert!(
                unix_now() - killed_master < f64::from(MASTER_TIMEOUT) + 5.0,
                "no new master within the master timeout after {old} was killed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let took = unix_now() - killed_master;
        eprintln!("master {old} killed; {new} took over after {took:.1} s");
        until(killed_master + 2.5 * f64::from(FREQ)).await;

        // kill -9 an ironpoll node that is still running, mid-poll.
        let victim = irons
            .iter()
            .position(|n| n.name != old && n.name != new)
            .or_else(|| irons.iter().position(|n| n.name != old))
            .expect("a running ironpoll node");
        let victim = &mut irons[victim];
        let victim_name = victim.name.clone();
        // Mid-poll: when it holds a device's lock.
        let holding = || {
            let mut c = redis.connection();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg("librenms.lock:poller.device.*")
                .query(&mut c)
                .unwrap();
            keys.iter().any(|k| {
                redis
                    .get(k)
                    .is_some_and(|owner| owner.starts_with(&format!("{victim_name}-")))
            })
        };
        let waited = unix_now();
        while !holding() {
            assert!(
                unix_now() - waited < 2.0 * f64::from(FREQ),
                "{victim_name} never held a device"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        victim.kill();
        let killed_node = unix_now();
        until(killed_node + 2.5 * f64::from(FREQ)).await;

        // Last, Python workers under an ironpoll master: the Python
        // master (if it is one) goes, and a new Python node joins.
        let current = master_name(&redis).expect("a master");
        if let Some(s) = services.iter_mut().find(|s| s.name == current) {
            s.kill();
            let since = unix_now();
            while !master_name(&redis).is_some_and(|m| m.starts_with("ironpoll")) {
                assert!(
                    unix_now() - since < f64::from(MASTER_TIMEOUT) + 5.0,
                    "ironpoll did not take over from {current}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let python_joined = unix_now();
        services.push(ServiceNode::start(
            "python-3",
            &t.url,
            redis.port,
            config.clone(),
        ));
        until(python_joined + 1.5 * f64::from(FREQ)).await;
        let ended = unix_now();
        for n in &irons {
            n.terminate();
        }
        for n in &mut irons {
            n.stop();
        }
        for s in &mut services {
            s.kill();
        }

        let mut polls = wrapper_polls(&record);
        for n in &irons {
            polls.extend(n.polls());
        }
        let logs = || {
            let mut s = String::new();
            for n in &irons {
                s += &format!("--- {}\n{}", n.name, n.log());
            }
            for n in &services {
                s += &format!("--- {}\n{}", n.name, n.log());
            }
            s
        };
        let mut share: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &polls {
            *share.entry(p.node.as_str()).or_default() += 1;
        }
        eprintln!("polls per node: {share:?}; the ironpoll node killed: {victim_name}");
        assert!(
            share.keys().any(|n| n.starts_with("ironpoll"))
                && share.keys().any(|n| n.starts_with("python")),
            "one kind of node polled everything\n{}",
            logs()
        );
        assert!(
            share.get("python-3").is_some_and(|n| *n > 0),
            "the Python node that joined under an ironpoll master polled nothing\n{}",
            logs()
        );
        // Never two nodes at once.
        assert_no_overlap(&polls);
        let slack = 5.0;
        for (device, ps) in by_device(&polls) {
            // Every device, at least once per frequency + master timeout;
            // a poll cut short by the kill -9 of its node holds its
            // device until the lock expires, one frequency more.
            let mut last = began;
            for p in &ps {
                let mut bound = f64::from(FREQ + MASTER_TIMEOUT) + slack;
                if last <= killed_node && killed_node <= p.start {
                    bound += f64::from(FREQ);
                }
                assert!(
                    p.start - last <= bound,
                    "device {device} waited {:.1} s (bound {bound:.1}) for its poll by {}\n{}",
                    p.start - last,
                    p.node,
                    logs()
                );
                last = p.start;
            }
            assert!(
                ended - last <= f64::from(FREQ + MASTER_TIMEOUT) + slack,
                "device {device} was not polled in the last {:.1} s",
                ended - last
            );
            // ironpoll never polls a device again within its period.
            for pair in ps.windows(2) {
                if pair[1].node.starts_with("ironpoll") {
                    assert!(
                        pair[1].start - pair[0].start >= f64::from(FREQ) - 3.0,
                        "{} polled device {device} {:.1} s after {}",
                        pair[1].node,
                        pair[1].start - pair[0].start,
                        pair[0].node
                    );
                }
            }
        }
        assert_eq!(
            by_device(&polls).len(),
            ids.len(),
            "some device was never polled"
        );
        // Nodes report themselves, and the master says so.
        let nodes =
            t.db.fetch(&ironpoll::db::Statement::new(
                "SELECT `node_id`, `poller_version` FROM `poller_cluster` ORDER BY `node_id`",
            ))
            .await
            .unwrap();
        let ids_seen: Vec<String> = nodes.iter().filter_map(|r| r.string("node_id")).collect();
        assert!(ids_seen.contains(&"ironpoll-1".to_string()), "{ids_seen:?}");
        drop(sim);
        t.drop_database().await;
    })
    .await;
}

/// An ironpoll node alone in a cluster on `redis` settings, polling every
/// `FREQ_ALONE` seconds.
const FREQ_ALONE: u32 = 10;

fn lone_node(
    name: &str,
    db_url: &str,
    redis: &[(&str, String)],
    env: &[(&str, String)],
) -> IronpollNode {
    let mut settings = vec![
        ("service_poller_down_retry", "5".to_string()),
        ("poller.concurrency", "8".into()),
    ];
    settings.extend(redis.iter().cloned());
    cluster_node(name, db_url, FREQ_ALONE, 5, &settings, env)
}

/// `ironpoll run` as a cluster node named `name` (its node id too),
/// polling every `freq` seconds with `master_timeout`; `settings` name its
/// Redis and the rest.
fn cluster_node(
    name: &str,
    db_url: &str,
    freq: u32,
    master_timeout: u32,
    settings: &[(&str, String)],
    env: &[(&str, String)],
) -> IronpollNode {
    let mut all = vec![
        ("node_id", name.to_string()),
        ("service_poller_frequency", freq.to_string()),
        ("service_master_timeout", master_timeout.to_string()),
    ];
    all.extend(settings.iter().cloned());
    IronpollNode::start_with_env(name, db_url, &all, env)
}

async fn polled_count(t: &TestDb) -> i64 {
    t.scalar("SELECT COUNT(*) FROM `devices` WHERE `last_polled` IS NOT NULL")
        .await
        .as_i64()
        .unwrap_or(0)
}

/// Waits until every device has been polled once, or `secs` pass.
async fn wait_all_polled(t: &TestDb, n: usize, secs: f64) -> bool {
    let until_t = unix_now() + secs;
    while unix_now() < until_t {
        if polled_count(t).await == n as i64 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// A CA and a server certificate for 127.0.0.1, made with openssl.
fn test_certificates(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let mut cmd = Command::new(tool("openssl"));
        cmd.args(args).current_dir(dir);
        run_ok(cmd, Duration::from_secs(60));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=ironpoll test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reaches_redis_over_tls_as_an_acl_user_and_never_logs_the_password() {
    within(120, async {
        const PASSWORD: &str = "s3cret-Pw-never-logged";
        let t = TestDb::new().await;
        let (sim, ids) = fleet_in(&t, 3, "127.94.0.1").await;
        let certs = tempfile::tempdir().unwrap();
        test_certificates(certs.path());
        let conf = certs.path().join("redis.conf");
        std::fs::write(
            &conf,
            format!("user default off\nuser poller on >{PASSWORD} ~* &* +@all\n"),
        )
        .unwrap();
        let file = |f: &str| certs.path().join(f).display().to_string();
        let mut redis = RedisServer::unstarted(Some(conf.display().to_string()), Vec::new());
        redis.extra = vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            redis.port.to_string(),
            "--tls-cert-file".into(),
            file("server.crt"),
            "--tls-key-file".into(),
            file("server.key"),
            "--tls-ca-cert-file".into(),
            file("ca.crt"),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        redis.spawn();
        let settings = |password: &str| {
            let mut s = redis.settings();
            s.extend([
                ("redis.scheme", "tls".to_string()),
                ("redis.username", "poller".into()),
                ("redis.password", password.to_string()),
            ]);
            s
        };
        // Trusting the test's CA, as an operator's system trusts theirs.
        let env = [("SSL_CERT_FILE", file("ca.crt"))];
        let mut node = lone_node("ironpoll-tls", &t.url, &settings(PASSWORD), &env);
        let all = wait_all_polled(&t, ids.len(), 30.0).await;
        node.stop();
        let log = node.log();
        assert!(all, "not every device was polled over TLS\n{log}");
        assert!(log.contains("now the master dispatcher"), "{log}");
        assert!(
            !log.contains(PASSWORD),
            "the password reached the log\n{log}"
        );

        // A wrong password: said clearly, once, and nothing is polled.
        t.db.execute(&ironpoll::db::Statement::new(
            "UPDATE `devices` SET `last_polled` = NULL",
        ))
        .await
        .unwrap();
        let wrong = "not-the-Pw-either";
        let mut node = lone_node("ironpoll-wrong", &t.url, &settings(wrong), &env);
        tokio::time::sleep(Duration::from_secs(8)).await;
        node.stop();
        let log = node.log();
        assert_eq!(polled_count(&t).await, 0, "polled without a lock\n{log}");
        let said: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("until it answers"))
            .collect();
        assert_eq!(said.len(), 1, "{log}");
        // The error is a field of its own, naming the server.
        assert!(
            said[0].contains("error=redis at tls://127.0.0.1"),
            "{}",
            said[0]
        );
        assert!(!log.contains(wrong), "the password reached the log\n{log}");
        drop(sim);
        t.drop_database().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_nothing_is_polled_and_polling_resumes_after() {
    within(150, async {
        let t = TestDb::new().await;
        let (sim, ids) = fleet_in(&t, 6, "127.95.0.1").await;
        let mut redis = RedisServer::start();
        let mut settings = redis.settings();
        let run_dir = tempfile::tempdir().unwrap();
        let status_file = run_dir.path().join("status.json");
        settings.push(("status_file", status_file.display().to_string()));
        // What `ironpoll status` shows of Redis, from the status file.
        let redis_answers = || {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&status_file).unwrap()).unwrap();
            assert!(
                v["coordinator"].as_str().unwrap().starts_with("redis at 127.0.0.1:"),
                "{v}"
            );
            v["coordinator_answers"].as_bool().unwrap()
        };
        let mut node = lone_node("ironpoll-restart", &t.url, &settings, &[]);
        assert!(wait_all_polled(&t, ids.len(), 30.0).await, "{}", node.log());
        assert!(redis_answers());
        redis.stop();
        let down = unix_now();
        tokio::time::sleep(Duration::from_secs(2 * u64::from(FREQ_ALONE))).await;
        assert!(!redis_answers(), "the status file says redis answers while it is down");
        redis.spawn();
        let up = unix_now();
        tokio::time::sleep(Duration::from_secs(2 * u64::from(FREQ_ALONE) + 5)).await;
        assert!(redis_answers(), "the status file says redis is still down");
        node.stop();
        let log = node.log();
        let polls = node.polls();
        for p in &polls {
            assert!(
                !(p.start > down + 0.5 && p.start < up),
                "device {} was polled at {:.1} while redis was down ({down:.1}..{up:.1})\n{log}",
                p.device,
                p.start
            );
        }
        let after: std::collections::BTreeSet<u32> = polls
            .iter()
            .filter(|p| p.start > up)
            .map(|p| p.device)
            .collect();
        assert_eq!(
            after.len(),
            ids.len(),
            "polling did not resume for every device\n{log}"
        );
        assert_eq!(log.matches("until it answers").count(), 1, "{log}");
        assert_eq!(log.matches("redis answers again").count(), 1, "{log}");
        // The master said so in poller_cluster, with a row per queue type.
        let node = t
            .db
            .fetch(&ironpoll::db::Statement::new(
                "SELECT `id`, `master`, `poller_version` FROM `poller_cluster` WHERE `node_id` = 'ironpoll-restart'",
            ))
            .await
            .unwrap();
        assert_eq!(node[0].i64("master"), Some(1), "{log}");
        let types = t
            .db
            .fetch(&ironpoll::db::Statement::new(format!(
                "SELECT `poller_type` FROM `poller_cluster_stats` WHERE `parent_poller` = {} ORDER BY `poller_type`",
                node[0].i64("id").unwrap()
            )))
            .await
            .unwrap();
        let types: Vec<String> = types.iter().filter_map(|r| r.string("poller_type")).collect();
        assert_eq!(types, ["alerting", "billing", "discovery", "ping", "poller", "services"]);
        drop(sim);
        t.drop_database().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_failover_under_sentinel_costs_no_device_more_than_a_period() {
    within(200, async {
        let t = TestDb::new().await;
        let (sim, ids) = fleet_in(&t, 8, "127.96.0.1").await;
        let mut master = RedisServer::start();
        let replica_of = ["--replicaof".to_string(), "127.0.0.1".into(), master.port.to_string()];
        let replicas: Vec<RedisServer> = (0..2)
            .map(|_| {
                let args: Vec<&str> = replica_of.iter().map(String::as_str).collect();
                RedisServer::start_with(&args)
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let mut sentinels = Vec::new();
        for i in 0..3 {
            let conf = dir.path().join(format!("sentinel-{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "sentinel monitor ironpoll 127.0.0.1 {} 2\nsentinel down-after-milliseconds ironpoll 1000\nsentinel failover-timeout ironpoll 5000\nsentinel parallel-syncs ironpoll 1\n",
                    master.port
                ),
            )
            .unwrap();
            // Sentinel rewrites its config file, in the test's directory.
            let mut s =
                RedisServer::unstarted(Some(conf.display().to_string()), vec!["--sentinel".into()]);
            s.spawn();
            sentinels.push(s);
        }
        let sentinel_list = sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect::<Vec<_>>()
            .join(",");
        let settings = [
            ("redis.sentinel", sentinel_list),
            ("redis.sentinel_service", "ironpoll".to_string()),
        ];
        let mut nodes = vec![
            lone_node("ironpoll-s1", &t.url, &settings, &[]),
            lone_node("ironpoll-s2", &t.url, &settings, &[]),
        ];
        assert!(wait_all_polled(&t, ids.len(), 40.0).await, "{}", nodes[0].log());
        tokio::time::sleep(Duration::from_secs(u64::from(FREQ_ALONE))).await;
        master.stop();
        let failed = unix_now();
        tokio::time::sleep(Duration::from_secs(4 * u64::from(FREQ_ALONE))).await;
        for n in &nodes {
            n.terminate();
        }
        for n in &mut nodes {
            n.stop();
        }
        let mut polls = Vec::new();
        let mut logs = String::new();
        for n in &nodes {
            polls.extend(n.polls());
            logs += &format!("--- {}\n{}", n.name, n.log());
        }
        assert_no_overlap(&polls);
        let end = unix_now();
        for (device, ps) in by_device(&polls) {
            let starts: Vec<f64> = ps.iter().map(|p| p.start).collect();
            let mut last = *starts.first().unwrap();
            for s in starts.iter().skip(1).chain(std::iter::once(&end)) {
                // One period late at most, failover included.
                assert!(
                    s - last <= 2.0 * f64::from(FREQ_ALONE) + 2.0,
                    "device {device} waited {:.1} s around the failover at {failed:.1}\n{logs}",
                    s - last
                );
                last = *s;
            }
        }
        drop(replicas);
        drop(sim);
        t.drop_database().await;
    })
    .await;
}

/// A LibreNMS directory of stand-ins: `lnms` and LibreNMS's PHP scripts
/// record each call (script and arguments) in `calls.txt`; `bin/php` runs
/// its script.
fn recording_librenms(dir: &std::path::Path) -> std::path::PathBuf {
    let record = dir.join("calls.txt");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let recorder = format!(
        "#!/bin/sh\necho \"$(basename \"$0\") $*\" >> {}\nexit 0\n",
        record.display()
    );
    let files = [
        ("lnms", recorder.clone()),
        ("alerts.php", recorder.clone()),
        ("poll-billing.php", recorder.clone()),
        ("billing-calculate.php", recorder.clone()),
        ("check-services.php", recorder.clone()),
        ("bin/php", "#!/bin/sh\nexec \"$@\"\n".to_string()),
    ];
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn php_work_goes_to_librenms_where_it_is_installed_and_ping_work_is_native() {
    within(120, async {
        let t = TestDb::new().await;
        let (sim, ids) = fleet_in(&t, 3, "127.97.0.1").await;
        t.db.execute(&ironpoll::db::Statement::new(format!(
            "INSERT INTO `services` (`device_id`, `service_type`) VALUES ({}, 'icmp')",
            ids[0]
        )))
        .await
        .unwrap();
        let redis = RedisServer::start();
        let mut often = redis.settings();
        often.extend([
            ("service_discovery_frequency", "5".to_string()),
            ("service_services_frequency", "5".into()),
            ("service_alerting_frequency", "5".into()),
            ("service_billing_frequency", "5".into()),
            ("service_billing_calculate_frequency", "5".into()),
            ("service_ping_enabled", "true".into()),
            ("service_ping_frequency", "5".into()),
        ]);
        // First a node without LibreNMS: it dispatches everything and
        // leaves the PHP queues alone.
        let mut bare = lone_node("ironpoll-bare", &t.url, &often, &[]);
        tokio::time::sleep(Duration::from_secs(12)).await;
        bare.stop();
        let waiting = |kind: &str| {
            let mut c = redis.connection();
            let n: u64 = redis::cmd("ZCOUNT")
                .arg(format!("librenms.queue:{kind}:0"))
                .arg("-inf")
                .arg("+inf")
                .query(&mut c)
                .unwrap();
            n
        };
        let log = bare.log();
        for kind in ["discovery", "services", "alerting", "billing"] {
            assert!(
                waiting(kind) > 0,
                "nothing waits in the {kind} queue\n{log}"
            );
        }
        assert!(log.contains("left to other nodes"), "{log}");
        assert_eq!(waiting("ping"), 0, "the ping queue was not worked\n{log}");
        let pinged = t
            .scalar("SELECT COUNT(*) FROM `devices` WHERE `last_ping` IS NOT NULL")
            .await;
        assert_eq!(pinged.as_i64(), Some(ids.len() as i64), "{log}");

        // Then a node with LibreNMS: it runs LibreNMS's commands for them.
        let dir = tempfile::tempdir().unwrap();
        let calls = recording_librenms(dir.path());
        let mut with_php = often.clone();
        with_php.push(("--librenms-dir", dir.path().display().to_string()));
        let path = format!(
            "{}:{}",
            dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut node = lone_node("ironpoll-php", &t.url, &with_php, &[("PATH", path)]);
        tokio::time::sleep(Duration::from_secs(8)).await;
        node.stop();
        let log = node.log();
        let calls = std::fs::read_to_string(&calls).unwrap_or_default();
        for id in &ids {
            assert!(
                calls.contains(&format!("lnms device:discover {id} -q")),
                "no discovery of {id}:\n{calls}\n{log}"
            );
        }
        for want in [
            format!("check-services.php -h {}", ids[0]),
            "alerts.php -f".to_string(),
            "poll-billing.php -f".to_string(),
            "billing-calculate.php -f".to_string(),
        ] {
            assert!(calls.contains(&want), "no {want:?} in:\n{calls}\n{log}");
        }
        // Polls stay native: PHP gets only the modules ironpoll hands it.
        for call in calls.lines().filter(|c| c.contains("device:poll")) {
            assert!(call.contains(" -m "), "a whole poll went to PHP: {call}");
        }
        for kind in ["discovery", "services", "alerting", "billing"] {
            assert_eq!(waiting(kind), 0, "the {kind} queue was left\n{log}");
        }
        drop(sim);
        t.drop_database().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_ironpoll_nodes_in_two_groups_poll_two_thousand_devices_once_per_cycle() {
    within(420, async {
        const FREQ: u32 = 60;
        const DEVICES: usize = 2000;
        let t = TestDb::new().await;
        let redis = RedisServer::start();
        let sim = address_fleet(ironpoll::sim::profile::Profile::Linux, DEVICES, "127.3.0.1", &[]).await;
        // Half the devices in group 1, half in group 2, added in one go.
        let mut groups: BTreeMap<u32, i64> = BTreeMap::new();
        for chunk in sim.fleet.chunks(500) {
            let mut st = ironpoll::db::Statement::new(
                "INSERT INTO `devices` (`hostname`, `overwrite_ip`, `port`, `snmpver`, `community`, `status_reason`, `last_discovered`, `poller_group`) VALUES ",
            );
            for (i, d) in chunk.iter().enumerate() {
                if i > 0 {
                    st.push(", ");
                }
                let group = 1 + i64::from(d.addr.ip().to_string().ends_with(['0', '2', '4', '6', '8']));
                st.push(&format!(
                    "('dev-{}', '{}', {}, 'v2c', 'public', '', NOW(), {group})",
                    d.addr.ip(),
                    d.addr.ip(),
                    d.addr.port()
                ));
            }
            t.db.execute(&st).await.unwrap();
        }
        for r in t
            .db
            .fetch(&ironpoll::db::Statement::new("SELECT `device_id`, `poller_group` FROM `devices`"))
            .await
            .unwrap()
        {
            groups.insert(r.u64("device_id").unwrap() as u32, r.i64("poller_group").unwrap());
        }
        let node = |name: &str, serves: &str| {
            let mut settings = redis.settings();
            settings.extend([
                ("distributed_poller_group", serves.to_string()),
                ("poller.concurrency", "200".into()),
                ("icmp_check", "false".into()),
            ]);
            // The workers' debug lines say why a device was not polled.
            let log = ("RUST_LOG", "info,ironpoll::scheduler=debug,ironpoll::cluster=debug".to_string());
            cluster_node(name, &t.url, FREQ, 5, &settings, &[log])
        };
        let serves: BTreeMap<&str, Vec<i64>> = [
            ("ironpoll-g1", vec![1]),
            ("ironpoll-g2", vec![2]),
            ("ironpoll-g12", vec![1, 2]),
        ]
        .into_iter()
        .collect();
        let began = unix_now();
        let mut nodes = vec![
            node("ironpoll-g1", "1"),
            node("ironpoll-g2", "2"),
            node("ironpoll-g12", "1,2"),
        ];
        until(began + 2.0 * f64::from(FREQ) + 10.0).await;
        // No poll starts after SIGTERM: the last cycle is judged up to
        // here, not up to the end of the drain.
        let ended = unix_now();
        for n in &nodes {
            n.terminate();
        }
        for n in &mut nodes {
            n.stop();
        }
        let mut polls = Vec::new();
        for n in &nodes {
            polls.extend(n.polls());
        }
        let mut share: BTreeMap<String, usize> = BTreeMap::new();
        for p in &polls {
            *share.entry(p.node.clone()).or_default() += 1;
        }
        eprintln!("{} polls: {share:?}", polls.len());
        assert_no_overlap(&polls);
        let per_device = by_device(&polls);
        assert_eq!(per_device.len(), DEVICES, "some device was never polled");
        let story = |device: u32| -> String { nodes.iter().map(|n| n.story_of(device)).collect() };
        for (device, ps) in per_device {
            let group = groups[&device];
            for p in &ps {
                assert!(
                    serves[p.node.as_str()].contains(&group),
                    "{} polled device {device} of group {group}",
                    p.node
                );
            }
            // Once per cycle: never again within the period, and never a
            // cycle missed (the first waits for the nodes to start).
            for pair in ps.windows(2) {
                let gap = pair[1].start - pair[0].start;
                assert!(
                    gap >= f64::from(FREQ) - 3.0 && gap <= 2.0 * f64::from(FREQ),
                    "device {device} polled {gap:.1} s apart (began {began:.1}, ended {ended:.1})\n{}",
                    story(device)
                );
            }
            let last = ps.last().unwrap().start;
            assert!(
                ended - last <= 2.0 * f64::from(FREQ),
                "device {device} last polled {:.1} s before the end (began {began:.1}, ended {ended:.1})\n{}",
                ended - last,
                story(device)
            );
        }
        drop(sim);
        t.drop_database().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_that_outlives_its_lock_does_not_write_over_the_newer_poll() {
    within(120, async {
        const FREQ: u32 = 4;
        let t = TestDb::new().await;
        let redis = RedisServer::start();
        // A device whose poll takes longer than its lock lives.
        let sim = port_fleet(ironpoll::sim::profile::Profile::Linux, 1, &["latency=400ms"]).await;
        let id = t
            .add_device(
                "slow-1",
                sim.fleet[0].addr.port(),
                &[("overwrite_ip", ironpoll::db::Val::text("127.0.0.1"))],
            )
            .await;
        let mut settings = redis.settings();
        settings.extend([
            ("poller.device_deadline", "60".to_string()),
            ("icmp_check", "false".into()),
        ]);
        let mut node = cluster_node("ironpoll-f1", &t.url, FREQ, 3, &settings, &[]);
        let lock = format!("librenms.lock:poller.device.{id}");
        let wait_for = |what: &str, ok: &dyn Fn(Option<String>) -> bool| {
            let start = unix_now();
            while !ok(redis.get(&lock)) {
                assert!(unix_now() - start < 30.0, "waited 30 s for {what}");
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        wait_for("ironpoll to lock the device", &|h| {
            h.is_some_and(|h| h.starts_with("ironpoll-f1"))
        });
        wait_for("the lock to expire mid-poll", &|h| h.is_none());
        // Another node takes the device and writes its poll first.
        let mut c = redis.connection();
        let _: () = redis::cmd("SET")
            .arg(&lock)
            .arg("python-9-0a0a0a0a-0000-0000-0000-000000000000-Poller_0-1")
            .arg("EX")
            .arg(60)
            .query(&mut c)
            .unwrap();
        let newer = "2031-02-03 04:05:06";
        t.db
            .execute(&ironpoll::db::Statement::new(format!(
                "UPDATE `devices` SET `last_polled` = '{newer}', `sysName` = 'from-the-newer-poll' WHERE `device_id` = {id}"
            )))
            .await
            .unwrap();
        let start = unix_now();
        while !node.log().contains("they are discarded") && unix_now() - start < 30.0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Whatever the old poll would write has had time to land.
        tokio::time::sleep(Duration::from_secs(2)).await;
        node.stop();
        let log = node.log();
        assert!(log.contains("they are discarded"), "{log}");
        let row = t
            .db
            .fetch(&ironpoll::db::Statement::new(format!(
                "SELECT CAST(`last_polled` AS CHAR) AS `lp`, `sysName` FROM `devices` WHERE `device_id` = {id}"
            )))
            .await
            .unwrap();
        assert_eq!(row[0].string("lp").as_deref(), Some(newer), "{log}");
        assert_eq!(row[0].string("sysName").as_deref(), Some("from-the-newer-poll"), "{log}");
        // The lock the other node holds is left alone.
        assert!(redis.get(&lock).is_some_and(|h| h.starts_with("python-9")));
        drop(sim);
        t.drop_database().await;
    })
    .await;
}

/// README, "Switching a node": a node of a Python cluster stops
/// librenms-service, runs ironpoll with the same `.env`, shows in
/// `ironpoll status` and `poller_cluster` as the same node, and goes back;
/// the other Python node polls on throughout, and no device is polled by
/// two nodes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_switches_from_librenms_service_to_ironpoll_and_back() {
    within(300, async {
        const FREQ: u32 = 15;
        const MASTER_TIMEOUT: u32 = 5;
        let t = TestDb::new().await;
        let redis = RedisServer::start();
        let (sim, ids) = fleet_in(&t, 6, "127.104.0.1").await;
        let record_dir = tempfile::tempdir().unwrap();
        let record = record_dir.path().join("polls.txt");
        let config = service_config(FREQ, MASTER_TIMEOUT, 2, 0.5, &record);
        // What the operator set in LibreNMS (its config table), which
        // ironpoll reads there and the Python nodes through `lnms`.
        t.db.execute(&ironpoll::db::Statement::new(format!(
            "INSERT INTO `config` (`config_name`, `config_value`) VALUES \
             ('distributed_poller', 'true'), ('service_poller_frequency', '{FREQ}'), \
             ('service_master_timeout', '{MASTER_TIMEOUT}'), ('service_poller_down_retry', '5')"
        )))
        .await
        .unwrap();
        let began = unix_now();
        let mut node_a = ServiceNode::start("node-a", &t.url, redis.port, config.clone());
        let _node_b = ServiceNode::start("node-b", &t.url, redis.port, config.clone());
        let polled_by = |node: &str, after: f64| {
            wrapper_polls(&record)
                .into_iter()
                .filter(|p| p.node == node && p.start >= after)
                .count()
        };
        while polled_by("node-a", began) == 0 {
            assert!(
                unix_now() - began < 90.0,
                "node-a never polled:\n{}",
                node_a.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // 1. Stop librenms-service on the node.
        node_a.stop();
        let env = std::fs::read_to_string(node_a.dir.path().join(".env")).unwrap();
        // 2. ironpoll with the same .env (in LibreNMS's directory, without
        //    LibreNMS's PHP here: the modules it does not poll are skipped).
        let librenms = tempfile::tempdir().unwrap();
        std::fs::write(librenms.path().join(".env"), &env).unwrap();
        let mut check = ironpoll();
        check
            .args(["check-config", "--librenms-dir"])
            .arg(librenms.path());
        let check = run(check, Duration::from_secs(30));
        let said = stdout(&check);
        assert!(
            said.contains("# distribution: a LibreNMS dispatcher cluster through Redis"),
            "{said}{}",
            stderr(&check)
        );
        // 3. Start it.
        let switched = unix_now();
        let metrics_port = free_tcp_port();
        let mut iron = IronpollNode::start_on_librenms(
            "node-a",
            librenms.path(),
            &[
                ("icmp_check", "false".into()),
                ("metrics.listen", format!("127.0.0.1:{metrics_port}")),
            ],
        );
        // Every device is polled again, some by ironpoll, within a period
        // and the master timeout.
        let settle = f64::from(FREQ + MASTER_TIMEOUT) + 10.0;
        loop {
            let mut all = wrapper_polls(&record);
            all.extend(iron.polls());
            let fresh: std::collections::BTreeSet<u32> = all
                .iter()
                .filter(|p| p.start >= switched)
                .map(|p| p.device)
                .collect();
            if fresh.len() == ids.len() && !iron.polls().is_empty() {
                break;
            }
            assert!(
                unix_now() - switched < 2.0 * settle,
                "after the switch, polled: {fresh:?}\n{}",
                iron.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // ironpoll status, as on the node: the same node in poller_cluster,
        // now ironpoll's.
        let status = loop {
            let v = crate::production::status_json(&[
                "--librenms-dir".into(),
                librenms.path().display().to_string(),
            ]);
            let ours = v["cluster"].as_array().unwrap().iter().any(|n| {
                n["node_id"] == "node-a"
                    && n["poller_version"]
                        .as_str()
                        .unwrap()
                        .starts_with("ironpoll ")
            });
            if ours {
                break v;
            }
            assert!(
                unix_now() - switched < 2.0 * settle,
                "node-a is not ironpoll's in poller_cluster: {v:#}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let nodes = status["cluster"].as_array().unwrap();
        assert_eq!(
            nodes.iter().filter(|n| n["node_id"] == "node-a").count(),
            1,
            "the switched node has two rows: {status:#}"
        );
        assert!(nodes.iter().any(|n| n["node_id"] == "node-b"), "{status:#}");
        assert_eq!(
            nodes.iter().filter(|n| n["master"] == true).count(),
            1,
            "{status:#}"
        );
        // Its queue and lock events, as Prometheus sees them.
        let m = crate::production::scrape(metrics_port);
        let at_least_one = |series: &str| {
            assert!(
                crate::production::sample(&m, series).is_some_and(|v| v >= 1.0),
                "{series} in:\n{m}"
            );
        };
        at_least_one("ironpoll_cluster_popped_total{queue=\"poller\"}");
        at_least_one("ironpoll_leases_total{result=\"taken\"}");
        assert_eq!(
            crate::production::type_of(&m, "ironpoll_cluster_master"),
            Some("gauge")
        );

        // 4. Back to librenms-service.
        iron.stop();
        let back = unix_now();
        let node_a_again = ServiceNode::start("node-a", &t.url, redis.port, config.clone());
        while polled_by("node-a", back) == 0 {
            assert!(
                unix_now() - back < 2.0 * settle,
                "node-a did not poll again on librenms-service:\n{}",
                node_a_again.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let mut all = wrapper_polls(&record);
        all.extend(iron.polls());
        assert_no_overlap(&all);
        drop(sim);
        t.drop_database().await;
    })
    .await;
}
