//! Module tests on the project's own fixtures: a recording of net-snmp's
//! snmpd and generated device profiles, polled by the real modules into a
//! SQLite store; the rows, events and RRD updates are compared with golden
//! files in `fixtures/golden/` (regenerate: IRONPOLL_UPDATE_GOLDEN=1).

use std::fmt::Write as _;

use ironpoll::db::state::load_ports;
use ironpoll::db::{Db, Statement, Val};
use ironpoll::librenms::php::Php;
use ironpoll::modules::{self, PollFn, RecordingSource};
use ironpoll::rrd::RrdUpdate;
use ironpoll::sim::image::DeviceContext;
use ironpoll::sim::profile::Profile;
use ironpoll::sim::snmprec;
use ironpoll::snmp::VarBind;

use crate::harness;
use crate::support::repo_root;

const T0: i64 = 1_700_000_000;
/// Every module ironpoll polls natively, in LibreNMS's order.
fn native_modules() -> Vec<PollFn> {
    modules::MODULES
        .iter()
        .filter_map(|m| m.native_for("", ""))
        .collect()
}

fn profile_snapshot(profile: Profile, seed: u64, uptime_secs: f64) -> Vec<VarBind> {
    let image = profile.image(seed);
    image.snapshot(&DeviceContext {
        name: "golden",
        seed,
        uptime_secs,
        engine_id: b"\x80\x00\x1f\x88\x80golden",
        engine_boots: 1,
    })
}

fn show(v: &Php) -> String {
    match v {
        Php::Null => "NULL".into(),
        Php::Str(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// The store's rows for a device, and the polls' RRD updates, as text.
async fn dump(db: &Db, device_id: u32, rrd: &[RrdUpdate]) -> String {
    let mut out = String::new();
    let mut st = Statement::new(
        "SELECT `sysDescr`, `sysObjectID`, `uptime`, `status`, `status_reason` FROM `devices` WHERE `device_id` = ",
    );
    st.value(db.dialect(), Val::from(device_id));
    let dev = db.fetch(&st).await.unwrap().remove(0);
    writeln!(out, "# device").unwrap();
    for c in dev.columns() {
        writeln!(out, "{c} = {:?}", dev.get(c)).unwrap();
    }
    writeln!(out, "# ports").unwrap();
    let mut rows = load_ports(db, &[device_id]).await.unwrap();
    rows.sort_by_key(|(_, p)| p.int("ifIndex"));
    for (_, p) in rows {
        let mut cols: Vec<&str> = p
            .fields()
            .map(|(k, _)| k)
            .filter(|k| !["device_id", "poll_time", "ports_statistics_port_id"].contains(k))
            .collect();
        cols.sort();
        let line: Vec<String> = cols
            .iter()
            .map(|c| format!("{c}={}", show(p.get(c))))
            .collect();
        writeln!(out, "{}", line.join(" ")).unwrap();
    }
    for (table, order) in [("hrSystem", "hrSystem_id"), ("ucd_diskio", "diskio_id")] {
        writeln!(out, "# {table}").unwrap();
        let mut st = Statement::new(format!("SELECT * FROM `{table}` WHERE `device_id` = "));
        st.value(db.dialect(), Val::from(device_id))
            .push(&format!(" ORDER BY `{order}`"));
        for r in db.fetch(&st).await.unwrap() {
            let line: Vec<String> = r
                .columns()
                .iter()
                .filter(|c| !["device_id", order].contains(&c.as_str()))
                .map(|c| format!("{c}={:?}", r.get(c)))
                .collect();
            writeln!(out, "{}", line.join(" ")).unwrap();
        }
    }
    writeln!(out, "# eventlog").unwrap();
    let mut st = Statement::new(
        "SELECT `type`, `severity`, `reference`, `message` FROM `eventlog` WHERE `device_id` = ",
    );
    st.value(db.dialect(), Val::from(device_id))
        .push(" ORDER BY `event_id`");
    for r in db.fetch(&st).await.unwrap() {
        writeln!(
            out,
            "{} {} ref={} {}",
            r.string("type").unwrap_or_default(),
            r.i64("severity").unwrap_or(-1),
            r.string("reference").unwrap_or_default(),
            r.string("message").unwrap_or_default()
        )
        .unwrap();
    }
    writeln!(out, "# rrd").unwrap();
    for u in rrd {
        writeln!(out, "{} {} {}", u.file.name, u.def.name, u.argument()).unwrap();
    }
    out
}

fn check(name: &str, got: &str) {
    let path = repo_root()
        .join("fixtures/golden")
        .join(format!("{name}.txt"));
    if std::env::var_os("IRONPOLL_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (generate with IRONPOLL_UPDATE_GOLDEN=1)",
            path.display()
        )
    });
    if got != want {
        let (i, (g, w)) = got
            .lines()
            .zip(want.lines())
            .enumerate()
            .find(|(_, (g, w))| g != w)
            .unwrap_or((
                got.lines().count().min(want.lines().count()),
                ("<end>", "<end>"),
            ));
        panic!(
            "{name} differs from {} at line {}:\n got: {g}\nwant: {w}",
            path.display(),
            i + 1
        );
    }
}

#[tokio::test]
async fn snmpd_recording_polls_to_the_golden_rows() {
    let store = harness::sqlite_store().await;
    let rec =
        snmprec::parse_file(&repo_root().join("fixtures/recordings/linux-snmpd.snmprec")).unwrap();
    assert!(rec.skipped.is_empty());
    let id = harness::add_device(&store.db, "linux-snmpd", &Default::default()).await;
    let src = RecordingSource::new(rec.varbinds);
    let rrd = harness::poll(
        &store.db,
        id,
        &src,
        T0,
        &harness::librenms_settings(),
        &native_modules(),
    )
    .await
    .rrd;
    check("linux-snmpd", &dump(&store.db, id, &rrd).await);
}

#[tokio::test]
async fn a_switch_polled_twice_gets_rates_and_deltas() {
    let store = harness::sqlite_store().await;
    let settings = harness::librenms_settings();
    let id = harness::add_device(&store.db, "switch48", &Default::default()).await;
    let first = RecordingSource::new(profile_snapshot(Profile::Switch48, 7, 86_400.0));
    let mut rrd = harness::poll(&store.db, id, &first, T0, &settings, &native_modules())
        .await
        .rrd;
    let second = RecordingSource::new(profile_snapshot(Profile::Switch48, 7, 86_700.0));
    let more = harness::poll(
        &store.db,
        id,
        &second,
        T0 + 300,
        &settings,
        &native_modules(),
    )
    .await
    .rrd;
    rrd.extend(more);
    let text = dump(&store.db, id, &rrd).await;
    // Independent of the golden file: a busy up port shows a rate that is
    // its delta over the 300 s between polls.
    let rows = load_ports(&store.db, &[id]).await.unwrap();
    let busy = rows
        .iter()
        .map(|(_, p)| p)
        .find(|p| p.int("ifInOctets_delta").is_some_and(|d| d > 300_000))
        .expect("a port with traffic");
    let delta = busy.int("ifInOctets_delta").unwrap();
    let rate = busy.int("ifInOctets_rate").unwrap();
    assert_eq!(rate, (delta as f64 / 300.0).round() as i64);
    assert_eq!(busy.int("poll_period"), Some(300));
    assert_eq!(busy.int("poll_prev"), Some(T0));
    check("switch48-two-polls", &text);
}

#[tokio::test]
async fn a_linux_server_profile_polls_to_the_golden_rows() {
    let store = harness::sqlite_store().await;
    let id = harness::add_device(&store.db, "linux", &Default::default()).await;
    let src = RecordingSource::new(profile_snapshot(Profile::Linux, 3, 5_000.0));
    let rrd = harness::poll(
        &store.db,
        id,
        &src,
        T0,
        &harness::librenms_settings(),
        &native_modules(),
    )
    .await
    .rrd;
    check("linux-profile", &dump(&store.db, id, &rrd).await);
}
