//! ironpoll against snmpsim serving LibreNMS's recordings: a walk of a whole
//! recording must give back the recording, OID for OID, type for type.

use ironpoll::secret::Secret;
use ironpoll::sim::snmprec;
use ironpoll::snmp::usm::{SecurityLevel, UsmUser};
use ironpoll::snmp::{Credentials, SessionOptions, VarBind};

use crate::support::*;
use crate::within;

/// A recording snmpsim can serve whole: every record readable and the file
/// sorted (snmpsim searches the file as if it were, and ends a walk at the
/// first record it cannot read).
fn servable_by_snmpsim(path: &std::path::Path) -> Result<Vec<VarBind>, String> {
    let data = std::fs::read(path).unwrap();
    let rec = snmprec::parse(&path.display().to_string(), &data);
    if let Some(bad) = rec.skipped.first() {
        return Err(format!("unreadable record ({bad})"));
    }
    // Sorted in the file means parse (which sorts) kept the file's order.
    let in_file_order: Vec<String> = data
        .split(|&b| b == b'\n')
        .filter_map(|l| l.split(|&b| b == b'|').next())
        .map(|o| String::from_utf8_lossy(o).trim().to_owned())
        .filter(|o| !o.is_empty())
        .collect();
    let sorted: Vec<String> = rec.varbinds.iter().map(|vb| vb.oid.to_string()).collect();
    if in_file_order != sorted {
        return Err("records not in OID order".into());
    }
    Ok(rec.varbinds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_servable_librenms_recording_walks_back_unchanged_through_snmpsim() {
    let sim = librenms_snmpsim();
    within(600, async {
        let client = client();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], sim.port));
        let (mut walked, mut excluded) = (0, Vec::new());
        let mut varbinds = 0;
        for path in librenms_recordings() {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let want = match servable_by_snmpsim(&path) {
                Ok(v) => v,
                Err(why) => {
                    excluded.push(format!("{name}: {why}"));
                    continue;
                }
            };
            let opts = SessionOptions {
                timeout: std::time::Duration::from_secs(3),
                retries: 2,
                ..SessionOptions::default()
            };
            let s = session(&client, addr, Credentials::v2c(&name), opts);
            let got = s
                .walk(&root())
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_same_varbinds(&name, &got, &want);
            walked += 1;
            varbinds += got.len();
        }
        // The exclusions are the recordings snmpsim itself cannot serve whole;
        // they are walked through ironpoll's simulator in tests/it/sim.rs.
        assert!(
            walked >= 130,
            "only {walked} recordings walked; excluded: {excluded:#?}"
        );
        assert!(excluded.len() <= 20, "{excluded:#?}");
        assert!(varbinds > 80_000, "{varbinds} varbinds");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_context_selects_the_recording_in_snmpsim() {
    let sim = librenms_snmpsim();
    within(120, async {
        let client = client();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], sim.port));
        for name in ["arista_eos", "ios_nac", "linux_icecast"] {
            let path = librenms_fixtures()
                .join("snmpsim")
                .join(format!("{name}.snmprec"));
            let want = servable_by_snmpsim(&path).unwrap();
            let user = UsmUser::new(
                "authPrivUser",
                SecurityLevel::AuthPriv,
                Some(("SHA".parse().unwrap(), Secret::from("authpass123"))),
                Some(("AES".parse().unwrap(), Secret::from("privpass123"))),
            )
            .unwrap();
            let creds = Credentials::Usm {
                user,
                context: name.as_bytes().to_vec(),
            };
            let opts = SessionOptions {
                timeout: std::time::Duration::from_secs(3),
                ..SessionOptions::default()
            };
            let s = session(&client, addr, creds, opts);
            let got = s
                .walk(&root())
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_same_varbinds(name, &got, &want);
        }
    })
    .await;
}

/// The project's own recording (made by misc/record-fixture.sh with
/// `ironpoll walk --format snmprec`) is clean and served back whole by both
/// snmpsim and ironpoll's simulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projects_own_recording_is_served_back_whole_by_both_simulators() {
    let dir = repo_root().join("fixtures/recordings");
    let rec = snmprec::parse_file(&dir.join("linux-snmpd.snmprec")).unwrap();
    assert!(rec.skipped.is_empty(), "{:?}", rec.skipped);
    assert!(rec.varbinds.len() > 500, "{}", rec.varbinds.len());
    let snmpsim = start_snmpsim(&dir);
    within(120, async {
        let ours = ironpoll::sim::Simulator::start(ironpoll::sim::SimConfig {
            endpoints: vec![std::net::SocketAddr::from(([127, 0, 0, 1], 0))],
            recordings: vec![dir.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
        let client = client();
        for addr in [
            std::net::SocketAddr::from(([127, 0, 0, 1], snmpsim.port)),
            ours.endpoints[0],
        ] {
            let s = session(&client, addr, Credentials::v2c("linux-snmpd"), quick());
            let got = s.walk(&root()).await.unwrap();
            assert_same_varbinds(&format!("linux-snmpd from {addr}"), &got, &rec.varbinds);
        }
    })
    .await;
}
