//! ironpoll's simulator: it must serve LibreNMS's recordings as recorded,
//! fleets of generated devices that move, and SNMPv3 that independent
//! implementations (net-snmp, snmp2) accept.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use ironpoll::secret::Secret;
use ironpoll::sim::profile::Profile;
use ironpoll::sim::{FleetConfig, FleetLayout, Member, SimConfig, Simulator, snmprec};
use ironpoll::snmp::usm::{SecurityLevel, UsmUser};
use ironpoll::snmp::{Credentials, SessionOptions, Value, oid};

use crate::support::*;
use crate::within;

fn v3_users() -> Vec<UsmUser> {
    SNMPD_USERS
        .iter()
        .map(|(name, auth, privacy)| {
            UsmUser::new(
                *name,
                if privacy.is_some() {
                    SecurityLevel::AuthPriv
                } else {
                    SecurityLevel::AuthNoPriv
                },
                Some((auth.parse().unwrap(), Secret::from(AUTH_PASS))),
                privacy.map(|p| (p.parse().unwrap(), Secret::from(PRIV_PASS))),
            )
            .unwrap()
        })
        .collect()
}

async fn recordings_sim() -> Simulator {
    Simulator::start(SimConfig {
        endpoints: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        recordings: vec![librenms_fixtures().join("snmpsim")],
        users: v3_users(),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_librenms_recording_walks_back_unchanged_through_ironpoll_sim() {
    within(300, async {
        let sim = recordings_sim().await;
        let client = client();
        let mut total = 0;
        for path in librenms_recordings() {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let want = snmprec::parse_file(&path).unwrap().varbinds;
            for creds in [Credentials::v2c(&name), Credentials::v1(&name)] {
                let s = session(&client, sim.endpoints[0], creds, quick());
                let got = s
                    .walk(&root())
                    .await
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_same_varbinds(&name, &got, &want);
            }
            total += want.len();
        }
        assert_eq!(librenms_recordings().len(), sim.recordings.len());
        assert!(total > 100_000, "{total}");
        assert_eq!(sim.stats().dropped_malformed, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn net_snmp_prints_the_same_from_ironpoll_sim_as_from_snmpsim() {
    let snmpsim_port = librenms_snmpsim().port;
    within(300, async {
        let sim = recordings_sim().await;
        let ours = sim.endpoints[0];
        for name in [
            "arista_eos",
            "ios_nac",
            "aix_std",
            "linux_icecast",
            "junos_rpm",
            "wut_57605",
        ] {
            let walk = move |port: u16| {
                let mut cmd = Command::new(tool("snmpbulkwalk"));
                cmd.args(["-v2c", "-c", name, "-m", "", "-On", "-t", "3"])
                    .arg(format!("127.0.0.1:{port}"))
                    .arg(".1");
                stdout(&run(cmd, Duration::from_secs(120)))
            };
            let (a, b) =
                tokio::task::spawn_blocking(move || (walk(ours.port()), walk(snmpsim_port)))
                    .await
                    .unwrap();
            assert!(a.lines().count() > 20, "{name}");
            // At the end of the MIB snmpsim repeats endOfMibView for every
            // remaining repetition; snmpd, like ironpoll's simulator, sends it once.
            let end = "No more variables left in this MIB View";
            let values = |t: &str| {
                t.lines()
                    .filter(|l| !l.contains(end))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            assert_same_lines(
                &format!("{name}: net-snmp on ironpoll sim vs snmpsim"),
                &values(&a),
                &values(&b),
            );
            assert_eq!(a.lines().filter(|l| l.contains(end)).count(), 1, "{name}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_of_ironpoll_sim_is_accepted_by_net_snmp_and_by_snmp2() {
    within(120, async {
        let sim = recordings_sim().await;
        let port = sim.endpoints[0].port();
        for (user, auth, privacy) in SNMPD_USERS {
            let mut args: Vec<String> = [
                "-v3",
                "-u",
                user,
                "-a",
                auth,
                "-A",
                AUTH_PASS,
                "-n",
                "linux_icecast",
                "-m",
                "",
                "-On",
                "-t",
                "2",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            match privacy {
                Some(p) => {
                    args.extend(["-l", "authPriv", "-x", p, "-X", PRIV_PASS].map(String::from))
                }
                None => args.extend(["-l", "authNoPriv"].map(String::from)),
            }
            args.push(format!("127.0.0.1:{port}"));
            args.push(".1.3.6.1.2.1.1.5.0".into());
            let out = tokio::task::spawn_blocking(move || {
                let mut cmd = Command::new(tool("snmpget"));
                cmd.args(&args);
                run(cmd, Duration::from_secs(30))
            })
            .await
            .unwrap();
            assert!(out.status.success(), "{user}: {}", stderr(&out));
            assert!(
                stdout(&out).starts_with(".1.3.6.1.2.1.1.5.0 = STRING:"),
                "{user}: {}",
                stdout(&out)
            );
        }
        // snmp2's own v3 implementation (SHA/AES-128) against the simulator.
        // Its session holds two 64 KB buffers inline: keep that future boxed.
        Box::pin(snmp2_get(sim.endpoints[0])).await;
    })
    .await;
}

async fn snmp2_get(addr: SocketAddr) {
    {
        let security = snmp2::v3::Security::new(b"authPrivUser", AUTH_PASS.as_bytes())
            .with_auth_protocol(snmp2::v3::AuthProtocol::Sha1)
            .with_auth(snmp2::v3::Auth::AuthPriv {
                cipher: snmp2::v3::Cipher::Aes128,
                privacy_password: PRIV_PASS.as_bytes().to_vec(),
            })
            .with_context_name("linux_icecast");
        let mut session = snmp2::AsyncSession::new_v3(addr, 1, security)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), session.init())
            .await
            .unwrap()
            .unwrap();
        let name = snmp2::Oid::from(&[1u64, 3, 6, 1, 2, 1, 1, 5, 0]).unwrap();
        let mut pdu = loop {
            match tokio::time::timeout(Duration::from_secs(5), session.get(&name))
                .await
                .unwrap()
            {
                Ok(p) => break p,
                // snmp2 asks to resend after it learns the engine clock.
                Err(snmp2::Error::AuthUpdated) => continue,
                Err(e) => panic!("snmp2: {e:?}"),
            }
        };
        let (_, value) = pdu.varbinds.next().unwrap();
        assert!(matches!(value, snmp2::Value::OctetString(_)), "{value:?}");
    }
}

async fn fleet(
    size: usize,
    mix: Vec<(Member, u32)>,
    layout: FleetLayout,
    faults: &[&str],
) -> Simulator {
    Simulator::start(SimConfig {
        fleet: Some(FleetConfig {
            size,
            mix,
            layout,
            community: "public".into(),
        }),
        faults: faults.iter().map(|f| f.parse().unwrap()).collect(),
        users: v3_users(),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleets_answer_on_their_own_addresses_or_ports_with_their_own_names() {
    within(120, async {
        let client = client();
        for layout in [
            FleetLayout::Addresses {
                first: "127.77.0.250".parse().unwrap(),
                port: 0,
            },
            FleetLayout::Ports {
                addr: "127.0.0.1".parse().unwrap(),
                first_port: free_udp_port(),
            },
        ] {
            let mix = vec![
                (Member::Profile(Profile::Switch48), 3),
                (Member::Profile(Profile::Linux), 1),
            ];
            let sim = fleet(40, mix, layout, &[]).await;
            assert_eq!(sim.fleet.len(), 40);
            // Addresses skip .255 and .0 of each /24.
            assert!(sim.fleet.iter().all(|d| !matches!(
                d.addr.ip().to_string().rsplit('.').next(),
                Some("0") | Some("255")
            )));
            let mut switches = 0;
            for d in &sim.fleet {
                let s = session(&client, d.addr, Credentials::v2c("public"), quick());
                let got = s
                    .get(&[oid("1.3.6.1.2.1.1.5.0"), oid("1.3.6.1.2.1.2.1.0")])
                    .await
                    .unwrap();
                assert_eq!(
                    got[0].value,
                    Value::OctetString(d.name.clone().into_bytes())
                );
                if d.member == "switch48" {
                    switches += 1;
                    assert_eq!(got[1].value, Value::Integer(53));
                }
                // A wrong community gets silence, as from a real agent.
                let wrong = session(
                    &client,
                    d.addr,
                    Credentials::v2c("private"),
                    SessionOptions {
                        timeout: Duration::from_millis(50),
                        retries: 0,
                        ..quick()
                    },
                );
                assert!(wrong.get(&[oid("1.3.6.1.2.1.1.5.0")]).await.is_err());
            }
            assert_eq!(switches, 30, "weights 3:1 over 40 devices");
            assert_eq!(sim.stats().dropped_unknown_community, 40);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_advance_wrap_consistently_and_uptime_ticks() {
    within(60, async {
        let sim = fleet(
            1,
            vec![(Member::Profile(Profile::Switch48), 1)],
            FleetLayout::Addresses {
                first: "127.78.0.1".parse().unwrap(),
                port: 0,
            },
            &[],
        )
        .await;
        let client = client();
        let s = session(
            &client,
            sim.fleet[0].addr,
            Credentials::v2c("public"),
            quick(),
        );
        // An uplink that is up: TenGigabitEthernet1/1/1 is ifIndex 10201.
        let oids = [
            oid("1.3.6.1.2.1.2.2.1.10.10201"),
            oid("1.3.6.1.2.1.31.1.1.1.6.10201"),
            oid("1.3.6.1.2.1.1.3.0"),
        ];
        let first = s.get(&oids).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let second = s.get(&oids).await.unwrap();
        for got in [&first, &second] {
            let c32 = got[0].value.as_u64().unwrap();
            let c64 = got[1].value.as_u64().unwrap();
            assert!(
                matches!(got[0].value, Value::Counter32(_))
                    && matches!(got[1].value, Value::Counter64(_))
            );
            assert_eq!(
                c32,
                c64 & 0xffff_ffff,
                "ifInOctets is ifHCInOctets modulo 2^32"
            );
        }
        assert!(
            second[1].value.as_u64() > first[1].value.as_u64(),
            "ifHCInOctets grows"
        );
        assert!(
            second[2].value.as_u64() > first[2].value.as_u64(),
            "sysUpTime grows"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebooted_device_restarts_its_uptime_and_v3_resyncs_to_the_new_boot() {
    within(60, async {
        let sim = fleet(
            1,
            vec![(Member::Profile(Profile::Linux), 1)],
            FleetLayout::Addresses {
                first: "127.79.0.1".parse().unwrap(),
                port: 0,
            },
            &[],
        )
        .await;
        let client = client();
        let device = &sim.fleet[0];
        let user = v3_users()
            .into_iter()
            .find(|u| u.name == b"authPrivUser")
            .unwrap();
        let s = session(
            &client,
            device.addr,
            Credentials::Usm {
                user,
                context: Vec::new(),
            },
            quick(),
        );
        let engine_boots = oid("1.3.6.1.6.3.10.2.1.2.0");
        let uptime = oid("1.3.6.1.2.1.1.3.0");
        let before = s
            .get(&[uptime.clone(), engine_boots.clone()])
            .await
            .unwrap();
        assert!(
            before[0].value.as_u64().unwrap() > 360_000,
            "up for more than an hour"
        );
        assert!(sim.reboot(&device.name));
        // The session still holds the old boots: the agent answers
        // notInTimeWindow, the session takes the new clock and resends.
        let after = s.get(&[uptime, engine_boots]).await.unwrap();
        assert!(
            after[0].value.as_u64().unwrap() < 500,
            "uptime restarted: {:?}",
            after[0].value
        );
        assert_eq!(before[1].value, Value::Integer(1));
        assert_eq!(after[1].value, Value::Integer(2));
        assert!(!sim.reboot("no-such-device"));
    })
    .await;
}
