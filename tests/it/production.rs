//! Running ironpoll as a production daemon: systemd's notify protocol on a
//! socket the test owns (READY, STATUS, WATCHDOG, RELOADING on SIGHUP,
//! STOPPING), the Prometheus endpoint scraped during polls, `ironpoll
//! status` against a running node, JSON logs with a span per device poll,
//! the unit file under systemd's own checker, and the .deb.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ironpoll::db::Val;

use crate::services::TestDb;
use crate::support::*;
use crate::within;
use crate::wrapper::{IronpollNode, fleet_in, unix_now};

/// Datagrams on `socket` until one contains `want`, or `secs` pass; all
/// of them, in order.
fn notifications_until(socket: &UnixDatagram, want: &str, secs: f64) -> Vec<String> {
    let until = unix_now() + secs;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while unix_now() < until {
        if let Ok(n) = socket.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).to_string();
            let done = m.lines().any(|l| l == want);
            got.push(m);
            if done {
                return got;
            }
        }
    }
    panic!("no {want} within {secs} s; got {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_systemd_it_says_ready_pings_the_watchdog_reloads_on_sighup_and_says_stopping() {
    within(180, async {
        let t = TestDb::new().await;
        let (sim, _ids) = fleet_in(&t, 3, "127.101.0.1").await;
        let dir = tempfile::tempdir().unwrap();
        let socket_path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&socket_path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let config = dir.path().join("ironpoll.toml");
        std::fs::write(&config, "[poller]\nconcurrency = 50\n").unwrap();
        let mut node = IronpollNode::start_with_env(
            "prod-notify",
            &t.url,
            &[
                ("distributed_poller", "false".into()),
                ("service_poller_frequency", "10".into()),
                ("icmp_check", "false".into()),
                ("--config", config.display().to_string()),
            ],
            &[
                ("NOTIFY_SOCKET", socket_path.display().to_string()),
                ("WATCHDOG_USEC", "2000000".into()),
            ],
        );
        let first = notifications_until(&socket, "READY=1", 60.0);
        let ready = first.last().unwrap();
        assert!(
            ready.lines().any(|l| l.starts_with("STATUS=")
                && l.contains("devices/s")
                && l.contains("polls in flight")),
            "READY came without a STATUS line: {ready:?}"
        );
        // The watchdog (2 s) is pinged every second while the loop turns,
        // with the pace in STATUS.
        let pinged = notifications_until(&socket, "WATCHDOG=1", 10.0);
        assert!(pinged.last().unwrap().contains("STATUS="));
        notifications_until(&socket, "WATCHDOG=1", 10.0);

        // A reload: two keys applied live (the log filter turns on the
        // modules' debug lines), one that needs a restart.
        let module_lines = |log: &str| log.matches("module polled").count();
        assert_eq!(module_lines(&node.log()), 0);
        std::fs::write(
            &config,
            "[poller]\nconcurrency = 80\n[rrd]\nstep = 60\n[log]\nfilter = \"info,ironpoll::scheduler=debug,ironpoll::poller=debug\"\n",
        )
        .unwrap();
        node.signal("HUP");
        let reloading = notifications_until(&socket, "RELOADING=1", 10.0);
        assert!(
            reloading.last().unwrap().contains("MONOTONIC_USEC="),
            "RELOADING=1 without MONOTONIC_USEC: {reloading:?}"
        );
        notifications_until(&socket, "READY=1", 30.0);
        let log = node.log();
        assert!(
            log.contains("reload: poller.concurrency applied") && log.contains("concurrency=80"),
            "the new concurrency was not applied:\n{log}"
        );
        let restart_line = log
            .lines()
            .find(|l| l.contains("applied only after a restart"))
            .unwrap_or_else(|| panic!("no restart-needed line:\n{log}"));
        assert!(restart_line.contains("rrd.step"), "{restart_line}");
        assert!(
            !restart_line.contains("poller.concurrency") && !restart_line.contains("log.filter"),
            "a live key was said to need a restart: {restart_line}"
        );
        assert!(log.contains("reload: log.filter applied"), "{log}");
        // Polling, through the reload, now with the modules' debug lines.
        let start = unix_now();
        while node.polls().len() < 3 || module_lines(&node.log()) == 0 {
            assert!(unix_now() - start < 60.0, "no polls:\n{}", node.log());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }

        node.terminate();
        notifications_until(&socket, "STOPPING=1", 60.0);
        node.stop();
        drop(sim);
        t.drop_database().await;
    })
    .await;
}

/// `ironpoll status --json` with `args` (where the configuration is), as
/// an operator runs it on the node.
pub(crate) fn status_json(args: &[String]) -> serde_json::Value {
    let mut cmd = ironpoll();
    cmd.args(["status", "--json"]).args(args);
    let out = run_ok(cmd, Duration::from_secs(30));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// GET /metrics: the exposition text.
pub(crate) fn scrape(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// The value of the sample `name{labels}` (exactly as written), if present.
pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

pub(crate) fn type_of<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("# TYPE {name} ")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_status_and_json_logs_show_a_running_node() {
    within(240, async {
        let t = TestDb::new().await;
        let (sim, ids) = fleet_in(&t, 3, "127.102.0.1").await;
        // One device nothing answers for, one never discovered (so never
        // polled).
        let dead_port = free_udp_port();
        let dead = t
            .add_device("dead-1", dead_port, &[("overwrite_ip", Val::text("127.103.0.1"))])
            .await;
        let undiscovered = t
            .add_device(
                "new-1",
                dead_port,
                &[
                    ("last_discovered", Val::Null),
                    ("overwrite_ip", Val::text("127.103.0.2")),
                ],
            )
            .await;
        // One that answers slowly: its poll is running whenever we look.
        let slow_sim = address_fleet(
            ironpoll::sim::profile::Profile::Switch48,
            1,
            "127.103.0.3",
            &["latency=700ms"],
        )
        .await;
        let slow_at = slow_sim.fleet[0].addr;
        let slow = t
            .add_device(
                "slow-1",
                slow_at.port(),
                &[("overwrite_ip", Val::text(slow_at.ip().to_string()))],
            )
            .await;
        let dir = tempfile::tempdir().unwrap();
        let status_file = dir.path().join("status.json");
        let metrics_port = free_tcp_port();
        let settings = [
            ("distributed_poller", "false".to_string()),
            ("node_id", "prod-metrics-node".into()),
            ("service_poller_frequency", "20".into()),
            ("snmp.retries", "0".into()),
            ("fast_ping.enable", "true".into()),
            ("fast_ping.interval", "2".into()),
            ("metrics.listen", format!("127.0.0.1:{metrics_port}")),
            ("status_file", status_file.display().to_string()),
            ("--log-format", "json".into()),
        ];
        let mut node = IronpollNode::start_with_env(
            "prod-metrics",
            &t.url,
            &settings,
            &[("RUST_LOG", "info,ironpoll::poller=debug".into())],
        );
        // Every answering device polled, and the dead one tried.
        let start = unix_now();
        loop {
            let up = t
                .scalar("SELECT COUNT(*) FROM `devices` WHERE `last_polled` IS NOT NULL")
                .await
                .as_i64()
                .unwrap_or(0);
            let down = t
                .scalar(&format!("SELECT COUNT(*) FROM `devices` WHERE `device_id` = {dead} AND `status` = 0 AND `status_reason` <> ''"))
                .await
                .as_i64()
                .unwrap_or(0);
            if up == ids.len() as i64 && down == 1 {
                break;
            }
            assert!(unix_now() - start < 90.0, "devices not polled within 90 s:\n{}", node.log());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // The collector copies counters every second.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let m = scrape(metrics_port);
        for (name, kind) in [
            ("ironpoll_module_poll_seconds", "histogram"),
            ("ironpoll_device_poll_seconds", "histogram"),
            ("ironpoll_db_commit_seconds", "histogram"),
            ("ironpoll_rrd_batch_size", "histogram"),
            ("ironpoll_device_polls_total", "counter"),
            ("ironpoll_snmp_requests_total", "counter"),
            ("ironpoll_snmp_timeouts_total", "counter"),
            ("ironpoll_snmp_drops_total", "counter"),
            ("ironpoll_rrd_updates_total", "counter"),
            ("ironpoll_db_statements_total", "counter"),
            ("ironpoll_db_commits_total", "counter"),
            ("ironpoll_db_refused_polls_total", "counter"),
            ("ironpoll_leases_total", "counter"),
            ("ironpoll_polls_in_flight", "gauge"),
            ("ironpoll_snmp_requests_in_flight", "gauge"),
            ("ironpoll_rrd_buffered_updates", "gauge"),
            ("ironpoll_sink_backlog", "gauge"),
            ("ironpoll_fastping_echoes_total", "counter"),
            ("ironpoll_fastping_round_seconds", "histogram"),
        ] {
            assert_eq!(type_of(&m, name), Some(kind), "{name} in:\n{m}");
        }
        let at_least = |series: &str, n: f64| {
            let v = sample(&m, series).unwrap_or_else(|| panic!("no {series} in:\n{m}"));
            assert!(v >= n, "{series} is {v}, want at least {n}");
        };
        at_least("ironpoll_device_polls_total{result=\"up\"}", ids.len() as f64);
        at_least("ironpoll_device_polls_total{result=\"down\"}", 1.0);
        at_least("ironpoll_module_poll_seconds_count{module=\"ports\"}", ids.len() as f64);
        at_least("ironpoll_device_poll_seconds_count", (ids.len() + 1) as f64);
        // The dead device's get timed out; the others' answered.
        at_least("ironpoll_snmp_timeouts_total", 1.0);
        at_least("ironpoll_snmp_replies_total", 10.0);
        let sent = sample(&m, "ironpoll_snmp_requests_total").unwrap();
        let replies = sample(&m, "ironpoll_snmp_replies_total").unwrap();
        assert!(sent >= replies, "more replies ({replies}) than requests ({sent})");
        at_least("ironpoll_rrd_updates_total{outcome=\"received\"}", 1.0);
        at_least("ironpoll_db_commits_total", 1.0);
        at_least("ironpoll_db_commit_seconds_count", 1.0);
        at_least("ironpoll_leases_total{result=\"taken\"}", (ids.len() + 1) as f64);
        assert_eq!(sample(&m, "ironpoll_db_dropped_polls_total"), Some(0.0));
        at_least("ironpoll_fastping_echoes_total{outcome=\"answered\"}", 4.0);
        at_least("ironpoll_fastping_round_seconds_count", 1.0);

        // ironpoll status, as an operator runs it on the node, until the
        // slow device's poll has started (first polls are spread over the
        // period).
        let status_now = || {
            let mut args = vec!["--db".to_string(), t.url.clone()];
            for (k, v) in &settings[..4] {
                args.extend(["--set".to_string(), format!("{k}={v}")]);
            }
            args.extend(["--set".into(), format!("status_file={}", status_file.display())]);
            status_json(&args)
        };
        let slow_running = |status: &serde_json::Value| {
            status["this_node"]["running"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["device_id"].as_u64() == Some(u64::from(slow)) && p["hostname"] == "slow-1")
        };
        let start = unix_now();
        let status = loop {
            let status = status_now();
            if slow_running(&status) {
                break status;
            }
            assert!(
                unix_now() - start < 60.0,
                "the slow device's poll is not shown running: {status:#}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let this = &status["this_node"];
        assert_eq!(this["pid"].as_u64(), node.pid().map(u64::from), "{status:#}");
        assert_eq!(this["distribution"], "alone");
        assert!(this["polls_done"].as_u64().unwrap() >= (ids.len() + 1) as u64, "{status:#}");
        let me = status["cluster"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node_id"] == "prod-metrics-node")
            .unwrap_or_else(|| panic!("this node is not in poller_cluster: {status:#}"));
        assert!(me["last_report_age"].as_i64().unwrap() < 60);
        assert!(me["queues"].as_array().unwrap().iter().any(|q| q["poller_type"] == "poller"));
        let overdue = status["overdue"].as_array().unwrap();
        let why = |id: u32| {
            overdue
                .iter()
                .find(|d| d["device_id"].as_u64() == Some(u64::from(id)))
                .map(|d| d["why"].as_str().unwrap().to_string())
        };
        assert_eq!(
            why(undiscovered).as_deref(),
            Some("never polled: not discovered yet"),
            "{status:#}"
        );
        assert!(
            why(dead).is_some_and(|w| w.starts_with("down: ")),
            "{status:#}"
        );
        for id in &ids {
            assert_eq!(why(*id), None, "device {id} is up and polled, not overdue");
        }
        // The text form says the same.
        let mut cmd = ironpoll();
        cmd.args(["status", "--db", &t.url])
            .args(["--set", &format!("status_file={}", status_file.display())]);
        let text = stdout(&run(cmd, Duration::from_secs(30)));
        assert!(
            text.contains("prod-metrics (pid")
                && text.contains("[prod-metrics-node]")
                && text.contains("never polled: not discovered yet"),
            "{text}"
        );

        // JSON logs: every line an object; lines within a device's poll
        // carry its id and hostname.
        let log = node.log();
        let mut in_poll = 0;
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            assert!(v["level"].is_string() && v["message"].is_string(), "{line}");
            let poll = &v["span"];
            if poll["name"] == "poll" {
                assert!(poll["device"].is_u64() && poll["hostname"].is_string(), "{line}");
                in_poll += 1;
            }
        }
        assert!(in_poll > 0, "no log line within a poll span:\n{log}");
        // The dead device going down is one line (fast ping may have seen
        // it up first: it answers pings, not SNMP), and no later round
        // repeats it.
        let downs: Vec<&str> = log
            .lines()
            .filter(|l| {
                l.contains("\"device status changed\"")
                    && l.contains("\"hostname\":\"dead-1\"")
                    && l.contains("\"up\":false")
            })
            .collect();
        assert_eq!(downs.len(), 1, "{downs:?}");
        assert!(downs[0].contains("\"reason\":\"snmp\""), "{}", downs[0]);
        assert!(!log.contains("\"public\""), "the community reached the log");

        node.stop();
        assert!(!status_file.exists(), "the status file outlived the daemon");
        drop(sim);
        t.drop_database().await;
    })
    .await;
}

#[test]
fn the_unit_passes_systemds_checks_and_runs_the_daemon_as_intended() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("misc/ironpoll.service")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ironpoll.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/ironpoll", env!("CARGO_BIN_EXE_ironpoll")),
    )
    .unwrap();
    let analyze = |args: &[&str]| {
        let mut cmd = Command::new(tool("systemd-analyze"));
        cmd.args(args).arg(&path);
        cmd
    };
    run_ok(analyze(&["verify", "--man=no"]), Duration::from_secs(60));
    let security = run(
        analyze(&["security", "--offline=true", "--no-pager"]),
        Duration::from_secs(60),
    );
    let text = stdout(&security) + &stderr(&security);
    let level: f64 = text
        .split("Overall exposure level for ironpoll.service:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    // systemd's scale: 0-10, "OK" below 4 (a network daemon that keeps
    // CAP_NET_RAW cannot reach 0).
    assert!(level < 4.0, "exposure {level}:\n{text}");
    // The ExecStart line runs the daemon.
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    assert!(exec.starts_with("/usr/bin/ironpoll run "), "{exec}");
}

#[test]
fn the_package_installs_the_binary_unit_config_man_pages_and_completions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let mut package = Command::new(root.join("misc/package.sh"));
    package
        .args(["--bin", env!("CARGO_BIN_EXE_ironpoll"), "--out"])
        .arg(out.path());
    let deb = stdout(&run_ok(package, Duration::from_secs(300)))
        .trim()
        .to_string();
    assert!(deb.ends_with(".deb"), "{deb}");
    let dpkg_deb = |args: &[&str]| {
        let mut cmd = Command::new(tool("dpkg-deb"));
        cmd.args(args).arg(&deb);
        cmd
    };
    let field = |f: &str| {
        let mut cmd = dpkg_deb(&["-f"]);
        cmd.arg(f);
        stdout(&run(cmd, Duration::from_secs(30)))
            .trim()
            .to_string()
    };
    assert_eq!(field("Package"), "ironpoll");
    assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));
    // The tree is root's, and its top is not private (dpkg would make
    // the target's directories so).
    let listing = stdout(&run(dpkg_deb(&["-c"]), Duration::from_secs(30)));
    let top = listing.lines().next().unwrap_or_default();
    assert!(top.starts_with("drwxr-xr-x root/root"), "{top}");
    assert!(
        listing.lines().all(|l| l.contains(" root/root ")),
        "{listing}"
    );
    let tree = tempfile::tempdir().unwrap();
    let mut extract = dpkg_deb(&["-x"]);
    extract.arg(tree.path());
    run_ok(extract, Duration::from_secs(60));
    let t = tree.path();
    for f in [
        "usr/bin/ironpoll",
        "lib/systemd/system/ironpoll.service",
        "etc/ironpoll/ironpoll.toml",
        "usr/share/man/man1/ironpoll.1.gz",
        "usr/share/man/man1/ironpoll-run.1.gz",
        "usr/share/man/man1/ironpoll-status.1.gz",
        "usr/share/bash-completion/completions/ironpoll",
        "usr/share/zsh/vendor-completions/_ironpoll",
        "usr/share/fish/vendor_completions.d/ironpoll.fish",
        "usr/share/doc/ironpoll/copyright",
    ] {
        assert!(t.join(f).is_file(), "{f} is not in the package");
    }
    // The packaged binary runs, and reads the packaged config.
    let packaged = || Command::new(t.join("usr/bin/ironpoll"));
    let mut version = packaged();
    version.arg("--version");
    assert!(stdout(&run(version, Duration::from_secs(30))).starts_with("ironpoll "));
    let mut check = packaged();
    check
        .args(["check-config", "--db"])
        .arg(format!("sqlite:{}", t.join("store.db").display()))
        .arg("--config")
        .arg(t.join("etc/ironpoll/ironpoll.toml"));
    run_ok(check, Duration::from_secs(30));
    // The man page is troff from the CLI definitions; the completions know
    // the commands.
    let mut zcat = Command::new(tool("zcat"));
    zcat.arg(t.join("usr/share/man/man1/ironpoll.1.gz"));
    let man = stdout(&run(zcat, Duration::from_secs(30)));
    assert!(
        man.starts_with(".ie") || man.contains(".TH ironpoll"),
        "{man}"
    );
    assert!(
        man.contains("check\\-config") || man.contains("check-config"),
        "{man}"
    );
    let bash =
        std::fs::read_to_string(t.join("usr/share/bash-completion/completions/ironpoll")).unwrap();
    assert!(bash.contains("status") && bash.contains("walk"));
    // The conffile is marked as one.
    let mut control = dpkg_deb(&["-e"]);
    control.arg(t.join("DEBIAN"));
    run_ok(control, Duration::from_secs(30));
    assert_eq!(
        std::fs::read_to_string(t.join("DEBIAN/conffiles"))
            .unwrap()
            .trim(),
        "/etc/ironpoll/ironpoll.toml"
    );
}
