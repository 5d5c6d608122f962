//! Fast ping against hosts a test network makes: a network namespace behind
//! a veth pair (addresses answering, one dropping half the echoes with
//! nftables) and blackhole routes that make some of them unreachable. Statuses, outages,
//! eventlog, device_stats and icmp-perf.rrd are checked after each change.
//!
//! Needs root (raw ICMP, namespaces), `ip` (iproute2), `nft` (nftables) and
//! `rrdtool`; `./misc/test.sh` installs them. The kernel here has no
//! sch_netem, so slow replies come from a token-bucket qdisc instead.

use std::process::Command;
use std::sync::Arc;

use ironpoll::config::{Layer, Mode, Source, resolve, settings_defaults};
use ironpoll::db::{Db, Statement, Val};
use ironpoll::poller::engine::Engine;
use ironpoll::poller::fastping::{FastPing, PingOutcome};

use crate::harness::{add_device, sqlite_store};
use crate::support::*;
use crate::within;

/// A namespace, its veth pair and blackhole routes, removed on drop.
struct TestNet {
    ns: String,
    veth: String,
    peer: String,
    prefix: String,
    blackholes: Vec<String>,
}

fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(tool(args[0]))
        .args(&args[1..])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl TestNet {
    fn new() -> TestNet {
        // Distinct per test and per run; a leftover of a killed run with the
        // same name is removed first.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = (std::process::id() * 7 + n * 101) % 230 + 20;
        let net = TestNet {
            ns: format!("ipfp{id}"),
            veth: format!("ipfp{id}a"),
            peer: format!("ipfp{id}b"),
            prefix: format!("10.251.{id}"),
            blackholes: Vec::new(),
        };
        let p = net.prefix.clone();
        let peer = format!("ipfp{id}b");
        let ns = net.ns.clone();
        let _ = sh(&["ip", "link", "del", &net.veth]);
        let _ = sh(&["ip", "netns", "del", &net.ns]);
        let mut steps: Vec<Vec<String>> = Vec::new();
        let mut step = |args: &[&str]| steps.push(args.iter().map(|a| a.to_string()).collect());
        let in_ns = |args: &[&str]| {
            let mut v = vec!["ip", "netns", "exec", ns.as_str()];
            v.extend_from_slice(args);
            v.iter().map(|a| a.to_string()).collect::<Vec<String>>()
        };
        step(&["ip", "netns", "add", &ns]);
        step(&[
            "ip", "link", "add", &net.veth, "type", "veth", "peer", "name", &peer,
        ]);
        step(&["ip", "link", "set", &peer, "netns", &ns]);
        step(&["ip", "addr", "add", &format!("{p}.1/24"), "dev", &net.veth]);
        step(&["ip", "link", "set", &net.veth, "up"]);
        // .2 answers, .3 loses half its echoes, .9 and .10 answer once
        // their blackhole routes are gone.
        let mut ns_steps = Vec::new();
        for host in [2, 3, 9, 10] {
            let addr = format!("{p}.{host}/24");
            ns_steps.push(in_ns(&["ip", "addr", "add", &addr, "dev", &peer]));
        }
        ns_steps.push(in_ns(&["ip", "link", "set", &peer, "up"]));
        ns_steps.push(in_ns(&["nft", "add", "table", "inet", "t"]));
        ns_steps.push(in_ns(&[
            "nft",
            "add",
            "chain",
            "inet",
            "t",
            "in",
            "{ type filter hook input priority 0; }",
        ]));
        let lossy = format!("{p}.3");
        ns_steps.push(in_ns(&[
            "nft",
            "add",
            "rule",
            "inet",
            "t",
            "in",
            "ip",
            "daddr",
            &lossy,
            "icmp",
            "type",
            "echo-request",
            "numgen",
            "random",
            "mod",
            "2",
            "==",
            "0",
            "drop",
        ]));
        steps.extend(ns_steps);
        for step in steps {
            let args: Vec<&str> = step.iter().map(String::as_str).collect();
            if let Err(e) = sh(&args) {
                panic!(
                    "cannot build the test network ({e}): these tests need root, network \
                     namespaces, iproute2 and nftables: {SETUP_HINT}"
                );
            }
        }
        net
    }

    fn addr(&self, host: u8) -> String {
        format!("{}.{host}", self.prefix)
    }

    fn blackhole(&mut self, host: u8) {
        let route = format!("{}/32", self.addr(host));
        sh(&["ip", "route", "add", "blackhole", &route]).unwrap();
        self.blackholes.push(route);
    }

    /// Makes every reply from the namespace slow: a token bucket of 100
    /// bytes a second holds each echo reply (98 bytes on the wire) about a
    /// second behind the one before. (This kernel has no sch_netem.)
    fn slow_replies(&self) {
        let tc = [
            "ip", "netns", "exec", &self.ns, "tc", "qdisc", "replace", "dev", &self.peer, "root",
            "tbf", "rate", "800bit", "burst", "100", "latency", "10s",
        ];
        sh(&tc).unwrap_or_else(|e| panic!("cannot slow the test network ({e}): {SETUP_HINT}"));
    }

    fn clear_blackhole(&mut self, host: u8) {
        let route = format!("{}/32", self.addr(host));
        sh(&["ip", "route", "del", "blackhole", &route]).unwrap();
        self.blackholes.retain(|r| *r != route);
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for r in &self.blackholes {
            let _ = sh(&["ip", "route", "del", "blackhole", r]);
        }
        let _ = sh(&["ip", "link", "del", &self.veth]);
        let _ = sh(&["ip", "netns", "del", &self.ns]);
    }
}

async fn rows(db: &Db, sql: &str) -> Vec<Vec<Val>> {
    db.fetch(&Statement::new(sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.values().to_vec())
        .collect()
}

fn by_id(outcomes: &[PingOutcome], id: u32) -> &PingOutcome {
    outcomes
        .iter()
        .find(|o| o.device_id == id)
        .expect("outcome")
}

/// `rrdtool lastupdate` values of a device's icmp-perf.rrd: avg xmt rcv min max.
fn icmp_perf_last(rrd_dir: &std::path::Path, host: &str) -> Vec<f64> {
    let file = rrd_dir.join(host).join("icmp-perf.rrd");
    let out = Command::new(tool("rrdtool"))
        .arg("lastupdate")
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}: {}", file.display(), stderr(&out));
    let text = stdout(&out);
    let last = text.lines().last().unwrap_or("");
    last.split_once(':')
        .map(|(_, v)| {
            v.split_whitespace()
                .map(|x| x.parse().unwrap_or(f64::NAN))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_ping_follows_hosts_going_down_and_up() {
    let mut net = TestNet::new();
    within(120, async {
        let store = sqlite_store().await;
        let db = &store.db;
        let rrd_dir = tempfile::tempdir().unwrap();
        let none = serde_json::Map::new();
        let up = add_device(db, &net.addr(2), &none).await;
        let lossy = add_device(db, &net.addr(3), &none).await;
        // The child gets the lower id, so id order alone would write it first.
        let child = add_device(db, &net.addr(10), &none).await;
        let parent = add_device(db, &net.addr(9), &none).await;
        let nowhere = add_device(db, "no-such-host.invalid", &none).await;
        // A device the last poll found down on SNMP stays down on SNMP.
        let snmp_down = add_device(db, &net.addr(2), &none).await;
        db.execute(&Statement::new(format!(
            "UPDATE `devices` SET `status` = 0, `status_reason` = 'snmp' WHERE `device_id` = {snmp_down}"
        )))
        .await
        .unwrap();
        db.execute(&Statement::new(format!(
            "INSERT INTO `device_relationships` (`parent_device_id`, `child_device_id`) VALUES ({parent}, {child})"
        )))
        .await
        .unwrap();
        net.blackhole(9);
        net.blackhole(10);

        let mut layer = Layer::new(Source::Flag, true);
        for (k, v) in [
            ("rrd_dir", rrd_dir.path().display().to_string()),
            ("fast_ping.rrd_step", "10".into()),
            ("fast_ping.count", "20".into()),
            ("fping_options.interval", "20".into()),
            ("fping_options.timeout", "300".into()),
            ("fping_options.retries", "1".into()),
        ] {
            layer.set(k, serde_json::Value::String(v));
        }
        let settings = resolve(&[layer], settings_defaults(Mode::Standalone)).unwrap();
        let engine = Engine::start(Arc::new(settings), db.clone()).await.unwrap();
        let mut fast = FastPing::new(engine.clone()).expect("this test runs as root: raw ICMP");

        // Round 1: the blackholed pair and the unresolvable name go down.
        let round = fast.round(fast.devices().await.unwrap()).await.unwrap();
        assert!(by_id(&round, up).status);
        assert_eq!(by_id(&round, up).received, 20);
        let l = by_id(&round, lossy);
        assert!(l.status, "half the echoes answered is up");
        assert!(l.received > 0 && l.received < l.transmitted, "{l:?}");
        for id in [child, parent, nowhere] {
            let o = by_id(&round, id);
            assert!(!o.status, "{o:?}");
            assert_eq!(o.status_reason, "icmp");
        }
        assert!(by_id(&round, nowhere).error.as_deref().unwrap().contains("no-such-host.invalid"));
        let s = by_id(&round, snmp_down);
        assert!(!s.status && s.status_reason == "snmp", "{s:?}");
        // Parents first, in the round and in the rows written.
        let pos = |id| round.iter().position(|o| o.device_id == id).unwrap();
        assert!(pos(parent) < pos(child));
        let downs = rows(db, "SELECT `device_id` FROM `eventlog` WHERE `type` = 'down' ORDER BY `event_id`").await;
        let downs: Vec<i64> = downs.iter().map(|r| r[0].as_i64().unwrap()).collect();
        let at = |id: u32| downs.iter().position(|d| *d == i64::from(id)).unwrap();
        assert!(at(parent) < at(child), "{downs:?}");
        assert!(!downs.contains(&i64::from(snmp_down)));
        let outages = rows(db, "SELECT `device_id` FROM `device_outages` WHERE `up_again` IS NULL ORDER BY `id`").await;
        let outages: Vec<i64> = outages.iter().map(|r| r[0].as_i64().unwrap()).collect();
        assert!(outages.contains(&i64::from(parent)) && outages.contains(&i64::from(child)));
        assert!(outages.iter().position(|d| *d == i64::from(parent)) < outages.iter().position(|d| *d == i64::from(child)));
        // Ping statistics and the RRD at the fast-ping step.
        let stats = rows(db, &format!("SELECT `ping_loss_last`, `ping_rtt_last` FROM `device_stats` WHERE `device_id` = {lossy}")).await;
        let loss = stats[0][0].as_f64().unwrap();
        assert!(loss > 0.0 && loss < 100.0, "{loss}");
        let perf = icmp_perf_last(rrd_dir.path(), &net.addr(2));
        assert_eq!(&perf[1..3], &[20.0, 20.0], "xmt and rcv of {perf:?}");
        let perf = icmp_perf_last(rrd_dir.path(), &net.addr(9));
        assert_eq!(perf[2], 0.0, "nothing received from a blackholed host: {perf:?}");
        let info = Command::new(tool("rrdtool"))
            .arg("info")
            .arg(rrd_dir.path().join(net.addr(2)).join("icmp-perf.rrd"))
            .output()
            .unwrap();
        assert!(stdout(&info).contains("step = 10"), "{}", stdout(&info));
        let last_ping = rows(db, &format!("SELECT `last_ping`, `last_ping_timetaken` FROM `devices` WHERE `device_id` = {up}")).await;
        assert!(!last_ping[0][0].is_null() && last_ping[0][1].as_f64().unwrap() > 0.0);

        // Round 2: nothing changed; nothing is logged again.
        let events_before = rows(db, "SELECT COUNT(*) FROM `eventlog`").await[0][0].as_i64();
        let round = fast.round(fast.devices().await.unwrap()).await.unwrap();
        assert!(round.iter().all(|o| !o.changed), "{round:?}");
        assert_eq!(rows(db, "SELECT COUNT(*) FROM `eventlog`").await[0][0].as_i64(), events_before);

        // Round 3: the parent answers again; its outage closes, the child's stays.
        net.clear_blackhole(9);
        let round = fast.round(fast.devices().await.unwrap()).await.unwrap();
        assert!(
            by_id(&round, parent).status && by_id(&round, parent).changed,
            "{:?}",
            by_id(&round, parent)
        );
        assert!(!by_id(&round, child).status && !by_id(&round, child).changed);
        let open = rows(db, &format!("SELECT COUNT(*) FROM `device_outages` WHERE `device_id` = {parent} AND `up_again` IS NULL")).await;
        assert_eq!(open[0][0].as_i64(), Some(0));
        let open = rows(db, &format!("SELECT COUNT(*) FROM `device_outages` WHERE `device_id` = {child} AND `up_again` IS NULL")).await;
        assert_eq!(open[0][0].as_i64(), Some(1));
        let ups = rows(db, &format!("SELECT `message` FROM `eventlog` WHERE `type` = 'up' AND `device_id` = {parent}")).await;
        assert_eq!(ups.len(), 1);
        assert!(ups[0][0].as_str().unwrap().contains("from icmp check"), "{ups:?}");
        let perf = icmp_perf_last(rrd_dir.path(), &net.addr(9));
        assert!(perf[2] > 0.0, "the parent answers again: {perf:?}");
        drop(fast);
        let _ = engine.finish().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_host_is_up_with_its_round_trip_times_recorded() {
    let net = TestNet::new();
    net.slow_replies();
    within(60, async {
        let store = sqlite_store().await;
        let db = &store.db;
        let rrd_dir = tempfile::tempdir().unwrap();
        let id = add_device(db, &net.addr(2), &serde_json::Map::new()).await;
        let mut layer = Layer::new(Source::Flag, true);
        for (k, v) in [
            ("rrd_dir", rrd_dir.path().display().to_string()),
            ("fast_ping.rrd_step", "10".into()),
            ("fast_ping.count", "3".into()),
            ("fping_options.interval", "20".into()),
            ("fping_options.timeout", "5000".into()),
        ] {
            layer.set(k, serde_json::Value::String(v));
        }
        let settings = resolve(&[layer], settings_defaults(Mode::Standalone)).unwrap();
        let engine = Engine::start(Arc::new(settings), db.clone()).await.unwrap();
        let mut fast = FastPing::new(engine.clone()).expect("this test runs as root: raw ICMP");
        let round = fast.round(fast.devices().await.unwrap()).await.unwrap();
        let o = by_id(&round, id);
        // Three echoes 20 ms apart; the replies leave about a second apart.
        assert!(o.status && o.received == 3, "{o:?}");
        assert!(o.avg_ms > 300.0, "{o:?}");
        let stats = rows(
            db,
            &format!("SELECT `ping_rtt_last` FROM `device_stats` WHERE `device_id` = {id}"),
        )
        .await;
        assert!(stats[0][0].as_f64().unwrap() > 300.0, "{stats:?}");
        let taken = rows(
            db,
            &format!("SELECT `last_ping_timetaken` FROM `devices` WHERE `device_id` = {id}"),
        )
        .await;
        assert!(taken[0][0].as_f64().unwrap() > 300.0, "{taken:?}");
        // avg xmt rcv min max
        let perf = icmp_perf_last(rrd_dir.path(), &net.addr(2));
        assert!(
            perf[0] > 300.0 && perf[4] > 1000.0 && perf[3] < perf[4],
            "{perf:?}"
        );
        drop(fast);
        let _ = engine.finish().await;
    })
    .await;
}

/// Waits until `sql` returns `want` in its first column, or fails after
/// `secs` seconds.
async fn wait_for(db: &Db, sql: &str, want: i64, secs: u64) {
    for _ in 0..secs * 10 {
        if rows(db, sql).await.first().and_then(|r| r[0].as_i64()) == Some(want) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{sql} did not become {want} within {secs} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_notices_a_device_going_down_between_polls() {
    let mut net = TestNet::new();
    within(120, async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("d.db").display());
        let db = Db::open_sqlite(&url["sqlite:".len()..], 2).await.unwrap();
        db.create_schema().await.unwrap();
        // A ping-only device: its polls and its fast pings use ICMP alone.
        let id = add_device(&db, &net.addr(2), &serde_json::Map::new()).await;
        db.execute(&Statement::new(format!(
            "UPDATE `devices` SET `snmp_disable` = 1 WHERE `device_id` = {id}"
        )))
        .await
        .unwrap();
        let child = fast_ping_daemon(&url, dir.path(), &[]);
        let down = format!("SELECT `status` FROM `devices` WHERE `device_id` = {id}");
        let polled = format!("SELECT COUNT(*) FROM `devices` WHERE `device_id` = {id} AND `last_polled` IS NOT NULL");
        wait_for(&db, &polled, 1, 20).await;
        wait_for(&db, &down, 1, 10).await;
        let last_polled = format!("SELECT `last_polled` FROM `devices` WHERE `device_id` = {id}");
        let first_poll = rows(&db, &last_polled).await;
        net.blackhole(2);
        wait_for(&db, &down, 0, 10).await;
        let reason = rows(&db, &format!("SELECT `status_reason` FROM `devices` WHERE `device_id` = {id}")).await;
        assert_eq!(reason[0][0].as_str(), Some("icmp"));
        wait_for(&db, &format!("SELECT COUNT(*) FROM `device_outages` WHERE `device_id` = {id} AND `up_again` IS NULL"), 1, 10).await;
        net.clear_blackhole(2);
        wait_for(&db, &down, 1, 10).await;
        wait_for(&db, &format!("SELECT COUNT(*) FROM `eventlog` WHERE `device_id` = {id} AND `type` = 'down'"), 1, 5).await;
        let ups = format!("SELECT COUNT(*) FROM `eventlog` WHERE `device_id` = {id} AND `type` = 'up'");
        assert_eq!(rows(&db, &ups).await[0][0].as_i64(), Some(1), "one up after the outage");
        // No second poll ran: the changes came from fast ping.
        assert_eq!(rows(&db, &last_polled).await, first_poll);
        drop(child);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_blackholed_between_polls_raises_its_alert_from_fast_ping() {
    use crate::alerting::{alert, librenms_db, load_librenms_rules, log_states, rule_id};
    let mut net = TestNet::new();
    within(180, async {
        let t = librenms_db().await;
        load_librenms_rules(&t, &["Devices up/down"]).await;
        let rule = rule_id(&t, "Devices up/down").await;
        // A ping-only device: its polls and its fast pings use ICMP alone.
        let id = t
            .add_device(&net.addr(2), 161, &[("snmp_disable", Val::Int(1))])
            .await;
        let rrd = tempfile::tempdir().unwrap();
        let librenms_dir = rrd.path().display().to_string();
        let child = fast_ping_daemon(&t.url, rrd.path(), &["--librenms-dir", &librenms_dir]);
        let db = &t.db;
        let polled = format!("SELECT COUNT(*) FROM `devices` WHERE `device_id` = {id} AND `last_polled` IS NOT NULL");
        wait_for(db, &polled, 1, 30).await;
        // The poll ran the rules: the device is up, the rule recovered.
        let state = format!("SELECT COALESCE(MAX(`state`), -1) FROM `alerts` WHERE `device_id` = {id} AND `rule_id` = {rule}");
        wait_for(db, &state, 0, 10).await;
        let last_polled = format!("SELECT `last_polled` FROM `devices` WHERE `device_id` = {id}");
        let first_poll = rows(db, &last_polled).await;
        net.blackhole(2);
        wait_for(db, &state, 1, 15).await;
        assert_eq!(log_states(&t, id, rule).await, [0, 1]);
        net.clear_blackhole(2);
        wait_for(db, &state, 0, 15).await;
        assert_eq!(log_states(&t, id, rule).await, [0, 1, 0]);
        assert_eq!(alert(&t, id, rule).await.map(|a| a.0), Some(0));
        // No second poll ran: fast ping alone raised and recovered it.
        assert_eq!(rows(db, &last_polled).await, first_poll);
        drop(child);
        t.drop_database().await;
    })
    .await;
}

/// A child process killed when the test ends, passed or not.
/// `ironpoll run` on `db_url`, pinging every second with its next poll
/// five minutes away (so only fast ping can notice a change), RRD files
/// under `dir`, and `extra` arguments; killed when dropped.
fn fast_ping_daemon(db_url: &str, dir: &std::path::Path, extra: &[&str]) -> Guarded {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ironpoll"));
    cmd.args(["run", "--db", db_url])
        .args(extra)
        .args(["--set", "service_poller_frequency=300"])
        .args(["--set", "fast_ping.interval=1"])
        .args(["--set", "fping_options.timeout=200"])
        .args(["--set", &format!("rrd_dir={}", dir.join("rrd").display())])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    Guarded(cmd.spawn().unwrap())
}

struct Guarded(std::process::Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
