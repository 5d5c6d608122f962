//! Every fault the simulator can inject, seen by ironpoll's client and by
//! net-snmp's tools: a fault is an error for that device, a counted drop, or
//! something the client works around; never a panic, a hang, or another
//! device's loss.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use ironpoll::sim::profile::Profile;
use ironpoll::sim::{FleetConfig, FleetLayout, Member, SimConfig, Simulator};
use ironpoll::snmp::pdu::ErrorStatus;
use ironpoll::snmp::{Credentials, Error, Oid, Session, SessionOptions, SnmpClient, oid};

use crate::support::*;
use crate::within;

/// One Linux-profile device with `faults`, on a port of its own.
async fn device_with(faults: &[&str]) -> (Simulator, SocketAddr) {
    let sim = port_fleet(Profile::Linux, 1, faults).await;
    let addr = sim.fleet[0].addr;
    (sim, addr)
}

async fn net_snmp(tool_name: &'static str, addr: SocketAddr, extra: &[&str], root: &str) -> Output {
    let mut args: Vec<String> = ["-v2c", "-c", "public", "-m", "", "-On"]
        .map(String::from)
        .to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(addr.to_string());
    args.push(root.to_string());
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(tool(tool_name));
        cmd.args(&args);
        run(cmd, Duration::from_secs(60))
    })
    .await
    .unwrap()
}

fn opts(timeout_ms: u64, retries: u32) -> SessionOptions {
    SessionOptions {
        timeout: Duration::from_millis(timeout_ms),
        retries,
        max_repetitions: 25,
        ..SessionOptions::default()
    }
}

fn if_table() -> Oid {
    oid("1.3.6.1.2.1.2.2")
}

/// A device with a fault walked beside a clean one.
struct Compared {
    client: SnmpClient,
    /// The session on the faulty device.
    session: Session,
    addr: SocketAddr,
    /// The ifTable OIDs both walks returned.
    oids: Vec<Oid>,
    _simulators: (Simulator, Simulator),
}

/// Walks ifTable of a clean device and of one with `fault` (through
/// `faulty_opts`), and asserts both gave the same OIDs.
async fn walk_compared(fault: &str, faulty_opts: SessionOptions) -> Compared {
    let (clean, clean_addr) = device_with(&[]).await;
    let (faulty, addr) = device_with(&[fault]).await;
    let client = client();
    let want = if_table_oids(&session(
        &client,
        clean_addr,
        Credentials::v2c("public"),
        opts(200, 0),
    ))
    .await;
    let s = session(&client, addr, Credentials::v2c("public"), faulty_opts);
    assert_eq!(if_table_oids(&s).await, want, "walk through {fault}");
    Compared {
        client,
        session: s,
        addr,
        oids: want,
        _simulators: (clean, faulty),
    }
}

/// The OIDs of a device's ifTable, walked through `s`.
async fn if_table_oids(s: &ironpoll::snmp::Session) -> Vec<Oid> {
    s.walk(&if_table())
        .await
        .unwrap()
        .into_iter()
        .map(|vb| vb.oid)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_is_a_timeout_after_every_retry() {
    within(60, async {
        let (_sim, addr) = device_with(&["silence"]).await;
        let client = client();
        let s = session(&client, addr, Credentials::v2c("public"), opts(100, 2));
        let e = s.get(&[oid("1.3.6.1.2.1.1.5.0")]).await.unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert_eq!(e.to_string(), format!("Timeout: No Response from {addr}"));
        assert_eq!(client.stats().sent, 3, "first try and two retries");
        let out = net_snmp("snmpwalk", addr, &["-t", "0.1", "-r", "1"], "1.3.6.1.2.1.1").await;
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("Timeout: No Response"),
            "{}",
            stderr(&out)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_is_recovered_by_retries() {
    within(120, async {
        let c = walk_compared(
            "loss=40%",
            SessionOptions {
                max_repetitions: 5,
                ..opts(60, 12)
            },
        )
        .await;
        let (client, addr, want) = (&c.client, c.addr, &c.oids);
        assert!(client.stats().retransmitted > 0, "{:?}", client.stats());
        let out = net_snmp(
            "snmpbulkwalk",
            addr,
            &["-t", "0.06", "-r", "12", "-Cr5"],
            "1.3.6.1.2.1.2.2",
        )
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out).lines().count(), want.len());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_beyond_the_timeout_times_out_and_within_it_answers() {
    within(60, async {
        let (_sim, addr) = device_with(&["latency=150ms..200ms"]).await;
        let client = client();
        let name = [oid("1.3.6.1.2.1.1.5.0")];
        let short = session(&client, addr, Credentials::v2c("public"), opts(40, 0));
        assert!(matches!(short.get(&name).await, Err(Error::Timeout { .. })));
        let long = session(&client, addr, Credentials::v2c("public"), opts(1000, 0));
        assert_eq!(long.get(&name).await.unwrap().len(), 1);
        // The late reply to the short request found no one waiting: counted.
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(
            client.stats().dropped_unknown_id >= 1,
            "{:?}",
            client.stats()
        );
        assert!(
            !net_snmp(
                "snmpwalk",
                addr,
                &["-t", "0.04", "-r", "0"],
                "1.3.6.1.2.1.1"
            )
            .await
            .status
            .success()
        );
        assert!(
            net_snmp(
                "snmpbulkwalk",
                addr,
                &["-t", "1", "-r", "0"],
                "1.3.6.1.2.1.1"
            )
            .await
            .status
            .success()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_with_a_wrong_request_id_are_dropped_and_counted() {
    within(60, async {
        let (_sim, addr) = device_with(&["wrong-id"]).await;
        let client = client();
        let s = session(&client, addr, Credentials::v2c("public"), opts(100, 1));
        assert!(matches!(
            s.get(&[oid("1.3.6.1.2.1.1.5.0")]).await,
            Err(Error::Timeout { .. })
        ));
        assert_eq!(client.stats().dropped_unknown_id, 2, "{:?}", client.stats());
        let out = net_snmp("snmpwalk", addr, &["-t", "0.1", "-r", "1"], "1.3.6.1.2.1.1").await;
        assert!(stderr(&out).contains("Timeout"), "{}", stderr(&out));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_replies_are_dropped_and_counted() {
    within(60, async {
        let (_sim, addr) = device_with(&["truncate"]).await;
        let client = client();
        let s = session(&client, addr, Credentials::v2c("public"), opts(100, 1));
        assert!(matches!(
            s.walk(&if_table()).await,
            Err(Error::Timeout { .. })
        ));
        assert_eq!(client.stats().dropped_unparsable, 2, "{:?}", client.stats());
        let out = net_snmp(
            "snmpbulkwalk",
            addr,
            &["-t", "0.1", "-r", "1"],
            "1.3.6.1.2.1.2.2",
        )
        .await;
        assert!(stderr(&out).contains("Timeout"), "{}", stderr(&out));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_replies_are_a_named_error_for_that_device() {
    within(60, async {
        let (_sim, addr) = device_with(&["malformed"]).await;
        let client = client();
        let s = session(&client, addr, Credentials::v2c("public"), opts(100, 1));
        let e = s.get(&[oid("1.3.6.1.2.1.1.5.0")]).await.unwrap_err();
        assert!(matches!(e, Error::BadResponse { .. }), "{e}");
        assert!(e.to_string().contains("malformed object identifier"), "{e}");
        // net-snmp drops what it cannot parse and times out.
        let out = net_snmp(
            "snmpbulkwalk",
            addr,
            &["-t", "0.1", "-r", "0"],
            "1.3.6.1.2.1.1",
        )
        .await;
        assert!(stderr(&out).contains("Timeout"), "{}", stderr(&out));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_increasing_oids_stop_the_walk_and_an_endless_walk_is_bounded() {
    within(60, async {
        let (_sim, addr) = device_with(&["non-increasing"]).await;
        let client = client();
        let s = session(&client, addr, Credentials::v2c("public"), opts(200, 0));
        let e = s.walk(&if_table()).await.unwrap_err();
        assert!(matches!(e, Error::NotIncreasing { .. }), "{e}");
        // Without the check (net-snmp's -Cc) the agent would loop forever;
        // the varbind limit ends it.
        let unchecked = SessionOptions {
            check_increasing: false,
            max_walk_varbinds: 500,
            ..opts(200, 0)
        };
        let s = session(&client, addr, Credentials::v2c("public"), unchecked);
        let e = s.walk(&if_table()).await.unwrap_err();
        assert!(matches!(e, Error::WalkLimit { limit: 500, .. }), "{e}");
        for tool_name in ["snmpwalk", "snmpbulkwalk"] {
            let out = net_snmp(
                tool_name,
                addr,
                &["-t", "0.2", "-r", "0"],
                "1.3.6.1.2.1.2.2",
            )
            .await;
            assert!(
                stderr(&out).contains("OID not increasing"),
                "{tool_name}: {}",
                stderr(&out)
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_big_halves_max_repetitions_until_the_walk_fits() {
    within(60, async {
        let c = walk_compared(
            "toobig=700",
            SessionOptions {
                max_repetitions: 50,
                ..opts(200, 0)
            },
        )
        .await;
        let (client, s, addr, want) = (&c.client, &c.session, c.addr, &c.oids);
        assert!(
            s.current_max_repetitions() < 50,
            "{}",
            s.current_max_repetitions()
        );
        // A GET too large for the agent is its error to report.
        let many: Vec<Oid> = want.iter().take(40).cloned().collect();
        let big = session(
            client,
            addr,
            Credentials::v2c("public"),
            SessionOptions {
                max_oids_per_pdu: 40,
                ..opts(200, 0)
            },
        );
        let e = big.get(&many).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::ErrorStatus {
                    status: ErrorStatus::TooBig,
                    ..
                }
            ),
            "{e}"
        );
        // net-snmp's bulk walk gives up on tooBig; its GETNEXT walk fits.
        let out = net_snmp(
            "snmpbulkwalk",
            addr,
            &["-t", "0.2", "-r", "0", "-Cr50"],
            "1.3.6.1.2.1.2.2",
        )
        .await;
        assert!(stderr(&out).contains("tooBig"), "{}", stderr(&out));
        let out = net_snmp(
            "snmpwalk",
            addr,
            &["-t", "0.2", "-r", "0"],
            "1.3.6.1.2.1.2.2",
        )
        .await;
        assert_eq!(stdout(&out).lines().count(), want.len());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_devices_cost_the_healthy_ones_nothing() {
    within(120, async {
        let faults = [
            "switch48-00001:silence",
            "switch48-00002:loss=100%",
            "switch48-00003:wrong-id",
            "switch48-00004:truncate",
            "switch48-00005:malformed",
            "switch48-00006:non-increasing",
            "switch48-00007:toobig=400",
            "switch48-00008:latency=80ms",
        ];
        let sim = Simulator::start(SimConfig {
            fleet: Some(FleetConfig {
                size: 60,
                mix: vec![(Member::Profile(Profile::Switch48), 1)],
                layout: FleetLayout::Addresses {
                    first: "127.80.0.1".parse().unwrap(),
                    port: 0,
                },
                community: "public".into(),
            }),
            faults: faults.iter().map(|f| f.parse().unwrap()).collect(),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let client = client();
        let mut tasks = tokio::task::JoinSet::new();
        for d in sim.fleet.clone() {
            let s = session(&client, d.addr, Credentials::v2c("public"), opts(150, 1));
            tasks
                .spawn(async move { (d.name.clone(), s.walk(&oid("1.3.6.1.2.1.31.1.1.1")).await) });
        }
        let mut healthy = 0;
        while let Some(done) = tasks.join_next().await {
            let (name, result) = done.unwrap();
            let faulty = ["00001", "00002", "00003", "00004", "00005", "00006"]
                .iter()
                .any(|n| name.ends_with(n));
            match result {
                Ok(v) => {
                    assert!(!faulty, "{name} should have failed");
                    assert_eq!(v.len(), 53 * 19, "{name}");
                    healthy += 1;
                }
                Err(e) => assert!(faulty, "{name} failed: {e}"),
            }
        }
        // toobig and latency devices still deliver everything.
        assert_eq!(healthy, 54);
    })
    .await;
}

/// `ironpoll walk` of one agent runs on one thread with one request in
/// flight: a reply wakes the walk on the thread that read it. The engine a
/// daemon runs is busy instead: many threads, thousands of requests in
/// flight, replies read in batches. For every fault the simulator injects,
/// both paths must return the same varbinds, or fail with the same error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_walk_returns_what_a_busy_engine_returns_for_every_fault_kind() {
    within(600, async {
        let dir = tempfile::tempdir().unwrap();
        // A recording, so that nothing in it moves between the two walks.
        std::fs::copy(
            repo_root().join("fixtures/recordings/linux-snmpd.snmprec"),
            dir.path().join("agent.snmprec"),
        )
        .unwrap();
        let client = std::sync::Arc::new(client());
        // The load: walks of a 300-device fleet 20 ms away, 300 at a time,
        // for as long as the comparisons run. One address each on one
        // port: 300 consecutive free ports are not to be had while other
        // tests run.
        let fleet = address_fleet(Profile::Switch48, 300, "127.77.0.1", &["latency=20ms"]).await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Each device is walked over and over by a task of its own, so the
        // load has no lull between rounds.
        let load: Vec<_> = fleet
            .fleet
            .iter()
            .map(|d| {
                let s = session(&client, d.addr, Credentials::v2c("public"), opts(2000, 2));
                let stop = stop.clone();
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let _ = s.walk(&oid("1.3.6.1.2.1.31.1.1")).await;
                    }
                })
            })
            .collect();
        while client.pending_requests() < 200 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let kinds = [
            "latency=2ms..20ms",
            "loss=30%",
            "silence",
            "wrong-id",
            "truncate",
            "malformed",
            "non-increasing",
            "toobig=1200",
        ];
        for kind in kinds {
            let port = free_udp_port();
            let agent = SocketAddr::from(([127, 0, 0, 1], port));
            let _sim = Simulator::start(SimConfig {
                endpoints: vec![agent],
                recordings: vec![dir.path().to_path_buf()],
                faults: vec![kind.parse().unwrap()],
                ..SimConfig::default()
            })
            .await
            .unwrap();
            // The lone walk: the command, on its own runtime.
            let mut cmd = ironpoll();
            cmd.args(["walk", "-v2c", "-c", "agent", "-t", "0.15", "-r", "10"])
                .args(["-Cr10", "--format", "snmprec"])
                .arg(agent.to_string())
                .arg("1.3.6.1");
            let lone = tokio::task::spawn_blocking(move || run(cmd, Duration::from_secs(240)))
                .await
                .unwrap();
            // The busy walk: the shared client, with the load in flight.
            let mut busy_opts = opts(150, 10);
            busy_opts.max_repetitions = 10;
            let s = session(&client, agent, Credentials::v2c("agent"), busy_opts);
            let mut in_flight = Vec::new();
            let root = oid("1.3.6.1");
            let walk = s.walk(&root);
            tokio::pin!(walk);
            let busy = loop {
                in_flight.push(client.pending_requests());
                tokio::select! {
                    done = &mut walk => break done,
                    _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                }
            };
            in_flight.sort_unstable();
            let median = in_flight[in_flight.len() / 2];
            assert!(median > 100, "{kind}: only {median} requests in flight");
            match busy {
                Ok(varbinds) => {
                    assert!(lone.status.success(), "{kind}: {}", stderr(&lone));
                    let lone_lines: Vec<&str> =
                        std::str::from_utf8(&lone.stdout).unwrap().lines().collect();
                    assert!(lone_lines.len() > 100, "{kind}: {}", lone_lines.len());
                    assert_eq!(lone_lines, as_snmprec(&varbinds), "{kind}");
                }
                Err(e) => {
                    assert_eq!(lone.status.code(), Some(1), "{kind}: {e}");
                    // Where in a garbled reply the decoder gave up varies
                    // with the garbling; the error must not.
                    let said = stderr(&lone);
                    let error = e.to_string();
                    let what = error.split(" at byte ").next().unwrap();
                    assert!(said.contains(what), "{kind}: {said} / {error}");
                }
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for task in load {
            task.await.unwrap();
        }
    })
    .await;
}
