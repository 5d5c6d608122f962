//! ironpoll's client against net-snmp's snmpd, with net-snmp's own tools
//! as the reference for what the agent said.

use std::process::Command;
use std::time::Duration;

use ironpoll::secret::Secret;
use ironpoll::snmp::usm::{SecurityLevel, UsmError, UsmUser};
use ironpoll::snmp::{Credentials, Error, Oid, SessionOptions, Version, oid};

use crate::support::*;
use crate::within;

fn net_snmp(tool_name: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(tool(tool_name));
    cmd.args(["-m", "", "-On"]).args(args);
    let out = run(cmd, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{tool_name} {args:?}: {}",
        stderr(&out)
    );
    stdout(&out)
}

fn ironpoll_out(args: &[&str]) -> String {
    let mut cmd = ironpoll();
    cmd.args(args);
    let out = run(cmd, Duration::from_secs(30));
    assert!(out.status.success(), "ironpoll {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// Lines whose values move while two walks run one after the other.
fn is_live(line: &str) -> bool {
    let oid = line.split(' ').next().unwrap_or("");
    let live_prefixes = [
        ".1.3.6.1.2.1.1.3.",      // sysUpTime
        ".1.3.6.1.2.1.25.1.",     // hrSystem (uptime, date, processes)
        ".1.3.6.1.2.1.2.2.1.1",   // ifTable counters (10..21 columns)
        ".1.3.6.1.2.1.31.1.1.1.", // ifXTable counters
        ".1.3.6.1.2.1.4.",        // IP-MIB statistics
        ".1.3.6.1.2.1.5.",        // ICMP
        ".1.3.6.1.2.1.6.",        // TCP
        ".1.3.6.1.2.1.7.",        // UDP
        ".1.3.6.1.2.1.11.",       // SNMP statistics
        ".1.3.6.1.2.1.25.",       // host resources
        ".1.3.6.1.2.1.88.",       // DISMAN-EVENT
        ".1.3.6.1.2.1.92.",       // NOTIFICATION-LOG
        ".1.3.6.1.6.3.",          // SNMP engine time, stats
    ];
    live_prefixes.iter().any(|p| oid.starts_with(p))
}

fn stable(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !is_live(l))
        .map(str::to_owned)
        .collect()
}

fn oids_only(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split(" = ").next().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn v2c_walk_prints_what_snmpbulkwalk_prints() {
    // Over UDP and over TCP: the same agent, the same answers.
    for agent in [snmpd().agent(), snmpd().tcp_agent()] {
        let ours = ironpoll_out(&["walk", "-v2c", "-c", "public", &agent, ".1.3.6.1.2.1"]);
        let theirs = net_snmp(
            "snmpbulkwalk",
            &["-v2c", "-c", "public", &agent, ".1.3.6.1.2.1"],
        );
        assert!(
            ours.lines().count() > 500,
            "a whole agent walk at {agent}, got {}",
            ours.lines().count()
        );
        // Same OIDs in the same order, and the same text, for everything
        // that does not move between the two walks (the machine's
        // connections and processes come and go while other tests run).
        assert_eq!(
            oids_only(&stable(&ours).join("\n")),
            oids_only(&stable(&theirs).join("\n")),
            "{agent}"
        );
        assert_same_lines(
            &format!("mib-2 walk at {agent}"),
            &stable(&ours).join("\n"),
            &stable(&theirs).join("\n"),
        );
    }
}

#[test]
fn v1_walk_prints_what_snmpwalk_prints() {
    for agent in [snmpd().agent(), snmpd().tcp_agent()] {
        for root in [
            ".1.3.6.1.2.1.1",
            ".1.3.6.1.2.1.2.2.1.2",
            ".1.3.6.1.6.3.10.2.1",
        ] {
            let ours = ironpoll_out(&["walk", "-v1", "-c", "public", &agent, root]);
            let theirs = net_snmp("snmpwalk", &["-v1", "-c", "public", &agent, root]);
            assert_same_lines(root, &stable(&ours).join("\n"), &stable(&theirs).join("\n"));
            assert_eq!(
                oids_only(&ours),
                oids_only(&theirs),
                "walk of {root} at {agent}"
            );
        }
    }
}

#[test]
fn get_prints_what_snmpget_prints_including_missing_objects() {
    let oids = [
        ".1.3.6.1.2.1.1.1.0",
        ".1.3.6.1.2.1.1.5.0",
        ".1.3.6.1.2.1.1.99.0",
        ".1.3.6.1.2.1.2.2.1.2.99",
    ];
    for agent in [snmpd().agent(), snmpd().tcp_agent()] {
        for version in ["-v1", "-v2c"] {
            let mut args = vec!["get", version, "-c", "public", &agent];
            args.extend(oids);
            let mut ours = ironpoll();
            ours.args(&args);
            let ours = run(ours, Duration::from_secs(30));
            let mut theirs_args = vec![version, "-c", "public", agent.as_str()];
            theirs_args.extend(oids);
            let mut theirs = Command::new(tool("snmpget"));
            theirs.args(["-m", "", "-On"]).args(&theirs_args);
            let theirs = run(theirs, Duration::from_secs(30));
            // v1 answers a missing object with noSuchName: both fail.
            assert_eq!(
                ours.status.success(),
                theirs.status.success(),
                "{version} at {agent}: {} / {}",
                stderr(&ours),
                stderr(&theirs)
            );
            if ours.status.success() {
                assert_eq!(stdout(&ours), stdout(&theirs), "{version} at {agent}");
            }
        }
    }
}

#[test]
fn walk_of_a_single_instance_falls_back_to_get_like_snmpwalk() {
    let agent = snmpd().agent();
    for root in [".1.3.6.1.2.1.1.5.0", ".1.3.6.1.2.1.1.99"] {
        let ours = ironpoll_out(&["walk", "-v2c", "-c", "public", &agent, root]);
        let theirs = net_snmp("snmpwalk", &["-v2c", "-c", "public", &agent, root]);
        assert_eq!(ours, theirs, "walk of {root}");
    }
}

#[test]
fn ipv6_agents_answer_through_the_shared_transport() {
    let port = snmpd().port;
    let ours = ironpoll_out(&[
        "get",
        "-v2c",
        "-c",
        "public",
        &format!("udp6:[::1]:{port}"),
        ".1.3.6.1.2.1.1.5.0",
    ]);
    let theirs = net_snmp(
        "snmpget",
        &[
            "-v2c",
            "-c",
            "public",
            &format!("udp6:[::1]:{port}"),
            ".1.3.6.1.2.1.1.5.0",
        ],
    );
    assert_eq!(ours, theirs);
}

#[test]
fn every_v3_auth_and_privacy_protocol_interoperates_with_snmpd() {
    for agent in [snmpd().agent(), snmpd().tcp_agent()] {
        v3_users_interoperate(&agent);
    }
}

fn v3_users_interoperate(agent: &str) {
    for (user, auth, privacy) in SNMPD_USERS {
        let mut args = vec!["-v3", "-u", user, "-a", auth, "-A", AUTH_PASS];
        match privacy {
            Some(p) => args.extend(["-l", "authPriv", "-x", p, "-X", PRIV_PASS]),
            None => args.extend(["-l", "authNoPriv"]),
        }
        args.push(agent);
        let mut get = vec!["get"];
        get.extend(&args);
        get.extend([".1.3.6.1.2.1.1.5.0", ".1.3.6.1.2.1.1.6.0"]);
        let mut theirs = args.clone();
        theirs.extend([".1.3.6.1.2.1.1.5.0", ".1.3.6.1.2.1.1.6.0"]);
        assert_eq!(
            ironpoll_out(&get),
            net_snmp("snmpget", &theirs),
            "user {user} at {agent}"
        );
        let mut walk = vec!["walk"];
        walk.extend(&args);
        walk.push(".1.3.6.1.2.1.2.2.1.2");
        let mut theirs = args.clone();
        theirs.push(".1.3.6.1.2.1.2.2.1.2");
        assert_eq!(
            ironpoll_out(&walk),
            net_snmp("snmpbulkwalk", &theirs),
            "user {user} at {agent}"
        );
    }
}

fn v3(user: &str, auth_pass: &str, priv_pass: Option<&str>) -> Credentials {
    let level = if priv_pass.is_some() {
        SecurityLevel::AuthPriv
    } else {
        SecurityLevel::AuthNoPriv
    };
    Credentials::Usm {
        user: UsmUser::new(
            user,
            level,
            Some(("SHA".parse().unwrap(), Secret::from(auth_pass))),
            priv_pass.map(|p| ("AES".parse().unwrap(), Secret::from(p))),
        )
        .unwrap(),
        context: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_failures_are_named_and_never_leak_the_passphrase() {
    within(60, async {
        let client = client();
        let addr = snmpd().addr();
        let opts = SessionOptions {
            timeout: Duration::from_millis(300),
            retries: 1,
            ..SessionOptions::default()
        };
        let name = [oid("1.3.6.1.2.1.1.5.0")];

        let s = session(
            &client,
            addr,
            v3("authPrivUser", "wrongpass-9x", Some(PRIV_PASS)),
            opts.clone(),
        );
        let e = s.get(&name).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Usm {
                    error: UsmError::WrongDigest,
                    ..
                }
            ),
            "{e}"
        );
        assert!(!e.to_string().contains("wrongpass-9x"));

        let s = session(&client, addr, v3("nobody", AUTH_PASS, None), opts.clone());
        let e = s.get(&name).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Usm {
                    error: UsmError::UnknownUserName,
                    ..
                }
            ),
            "{e}"
        );

        // snmpd drops what it cannot decrypt: the request times out.
        let s = session(
            &client,
            addr,
            v3("authPrivUser", AUTH_PASS, Some("wrongpriv-7q")),
            opts.clone(),
        );
        let e = s.get(&name).await.unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert!(!format!("{e} {e:?}").contains("wrongpriv-7q"));

        // A user asked for a level it was not created with.
        let s = session(
            &client,
            addr,
            v3("authNoPrivUser", AUTH_PASS, Some(PRIV_PASS)),
            opts.clone(),
        );
        assert!(s.get(&name).await.is_err());

        // The right credentials still work afterwards, on the same client.
        let s = session(
            &client,
            addr,
            v3("authPrivUser", AUTH_PASS, Some(PRIV_PASS)),
            opts,
        );
        assert_eq!(s.get(&name).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_get_of_a_missing_object_is_a_no_such_name_error() {
    within(30, async {
        let client = client();
        let s = session(&client, snmpd().addr(), Credentials::v1("public"), quick());
        let e = s
            .get(&[oid("1.3.6.1.2.1.1.5.0"), oid("1.3.6.1.2.1.1.99.0")])
            .await
            .unwrap_err();
        match e {
            Error::ErrorStatus {
                status,
                index,
                oid: Some(o),
                ..
            } => {
                assert_eq!(status, ironpoll::snmp::pdu::ErrorStatus::NoSuchName);
                assert_eq!(index, 2);
                assert_eq!(*o, oid("1.3.6.1.2.1.1.99.0"));
            }
            other => panic!("{other}"),
        }
        assert_eq!(s.version(), Version::V1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gets_are_split_by_max_oids_and_keep_their_order() {
    within(30, async {
        let client = client();
        let opts = SessionOptions {
            max_oids_per_pdu: 3,
            ..quick()
        };
        let s = session(&client, snmpd().addr(), Credentials::v2c("public"), opts);
        let oids: Vec<Oid> = (1..=9)
            .map(|i| oid("1.3.6.1.2.1.1").join(&[i, 0]))
            .collect();
        let before = client.stats().sent;
        let got = s.get(&oids).await.unwrap();
        assert_eq!(client.stats().sent - before, 3, "9 OIDs at 3 per PDU");
        let names: Vec<Oid> = got.iter().map(|vb| vb.oid.clone()).collect();
        assert_eq!(names, oids);
    })
    .await;
}

/// The recorder: a walk written as snmprec is served back by snmpsim (an
/// independent implementation of the format) exactly as recorded.
#[test]
fn recordings_made_by_walk_are_served_back_by_snmpsim() {
    let agent = snmpd().agent();
    let dir = tempfile::tempdir().unwrap();
    let text = ironpoll_out(&[
        "walk",
        "--format",
        "snmprec",
        "-v2c",
        "-c",
        "public",
        &agent,
        ".1.3.6.1.2.1.1",
    ]);
    let system = ironpoll_out(&[
        "walk",
        "--format",
        "snmprec",
        "-v2c",
        "-c",
        "public",
        &agent,
        ".1.3.6.1.2.1.2",
    ]);
    std::fs::write(
        dir.path().join("localhost.snmprec"),
        format!("{text}{system}"),
    )
    .unwrap();
    let sim = start_snmpsim(dir.path());
    let served = ironpoll_out(&[
        "walk",
        "--format",
        "snmprec",
        "-v2c",
        "-c",
        "localhost",
        &format!("127.0.0.1:{}", sim.port),
        ".1",
    ]);
    assert_eq!(served, format!("{text}{system}"));
}
