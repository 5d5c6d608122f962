//! The Cisco additions to the ports module: the PAgP mode of a port
//! (stored and logged when it changes, on the cisco OS group) and
//! CISCO-IF-EXTENSION-MIB's error and drop counters (`port-id<id>-cie.rrd`,
//! IOS and IOS-XE only).

use ironpoll::db::{Db, Statement, Val};
use ironpoll::modules::{self, RecordingSource};
use ironpoll::rrd::Datum;
use ironpoll::snmp::{Value, VarBind};
use serde_json::json;

use crate::harness;

fn vb(oid: &str, v: Value) -> VarBind {
    VarBind::new(oid.parse().unwrap(), v)
}

fn text(s: &str) -> Value {
    Value::OctetString(s.as_bytes().to_vec())
}

/// One interface, ifIndex 7, up, with or without a PAgP mode.
fn agent(pagp: Option<i64>) -> RecordingSource {
    let mut v = vec![
        vb("1.3.6.1.2.1.2.2.1.2.7", text("GigabitEthernet1/0/7")),
        vb("1.3.6.1.2.1.2.2.1.3.7", Value::Integer(6)),
        vb("1.3.6.1.2.1.2.2.1.7.7", Value::Integer(1)),
        vb("1.3.6.1.2.1.2.2.1.8.7", Value::Integer(1)),
        vb("1.3.6.1.2.1.2.2.1.10.7", Value::Counter32(1000)),
        vb("1.3.6.1.2.1.31.1.1.1.1.7", text("Gi1/0/7")),
    ];
    if let Some(mode) = pagp {
        v.push(vb("1.3.6.1.4.1.9.9.98.1.2.1.1.1.7", Value::Integer(mode)));
    }
    // cieIfInRuntsErrs .. cieIfOutputQueueDrops: 11, 12, .. 18.
    for column in 4..=11u32 {
        v.push(vb(
            &format!("1.3.6.1.4.1.9.9.276.1.1.1.1.{column}.7"),
            Value::Counter32(column + 7),
        ));
    }
    RecordingSource::new(v)
}

async fn one(db: &Db, sql: &str) -> Val {
    db.fetch(&Statement::new(sql)).await.unwrap()[0].values()[0].clone()
}

async fn device(db: &Db, os: &str) -> (u32, u32) {
    let extra = json!({"os": os});
    let id = harness::add_device(db, &format!("{os}-sw"), extra.as_object().unwrap()).await;
    harness::insert_row(
        db,
        "ports",
        &[("device_id", Val::from(id))],
        json!({"ifIndex": 7, "ifDescr": "GigabitEthernet1/0/7", "ifName": "Gi1/0/7",
               "ifOperStatus": "up", "ifAdminStatus": "up", "ifType": "ethernetCsmacd"})
        .as_object()
        .unwrap(),
    )
    .await;
    let port_id = one(
        db,
        &format!("SELECT `port_id` FROM `ports` WHERE `device_id` = {id}"),
    )
    .await;
    (id, u32::try_from(port_id.as_i64().unwrap()).unwrap())
}

async fn poll(db: &Db, id: u32, src: &RecordingSource, now: i64) -> harness::Polled {
    let ports = modules::module("ports")
        .unwrap()
        .native_for("iosxe", "")
        .unwrap();
    harness::poll(db, id, src, now, &harness::librenms_settings(), &[ports]).await
}

#[tokio::test]
async fn pagp_mode_and_cisco_if_extension_counters() {
    let store = harness::sqlite_store().await;
    let db = &store.db;
    let (id, port_id) = device(db, "iosxe").await;
    let mode = format!("SELECT `pagpOperationMode` FROM `ports` WHERE `port_id` = {port_id}");
    let events = format!(
        "SELECT COUNT(*) FROM `eventlog` WHERE `device_id` = {id} AND `type` = 'interface' \
         AND `reference` = '{port_id}' AND `message` LIKE 'pagpOperationMode -> %'"
    );

    let polled = poll(db, id, &agent(Some(1)), 1_700_000_000).await;
    assert_eq!(one(db, &mode).await, Val::from("desirable"));
    assert_eq!(one(db, &events).await, Val::Int(1));
    let cie: Vec<_> = polled
        .rrd
        .iter()
        .filter(|u| u.file.name == format!("port-id{port_id}-cie.rrd"))
        .collect();
    assert_eq!(cie.len(), 1, "one cie update for the port");
    assert_eq!(
        cie[0].values,
        (11..=18).map(Datum::Uint).collect::<Vec<_>>(),
        "the eight counters in LibreNMS's data-source order"
    );
    let names: Vec<&str> = cie[0].def.datasets.iter().map(|d| d.name).collect();
    assert_eq!(
        names,
        [
            "InRuntsErrs",
            "InGiantsErrs",
            "InFramingErrs",
            "InOverrunErrs",
            "InIgnored",
            "InAbortErrs",
            "InputQueueDrops",
            "OutputQueueDrops"
        ]
    );

    // Unchanged: nothing logged.
    poll(db, id, &agent(Some(1)), 1_700_000_300).await;
    assert_eq!(one(db, &events).await, Val::Int(1));
    // Changed: stored and logged.
    poll(db, id, &agent(Some(3)), 1_700_000_600).await;
    assert_eq!(one(db, &mode).await, Val::from("automatic"));
    assert_eq!(one(db, &events).await, Val::Int(2));
    // Gone: cleared and logged, as LibreNMS does.
    poll(db, id, &agent(None), 1_700_000_900).await;
    assert_eq!(one(db, &mode).await, Val::Null);
    assert_eq!(one(db, &events).await, Val::Int(3));
}

#[tokio::test]
async fn cisco_extensions_stay_on_their_oses() {
    let store = harness::sqlite_store().await;
    let db = &store.db;
    // Linux: neither PAgP nor the cie counters, whatever the agent has.
    let (id, port_id) = device(db, "linux").await;
    let polled = poll(db, id, &agent(Some(1)), 1_700_000_000).await;
    let mode = format!("SELECT `pagpOperationMode` FROM `ports` WHERE `port_id` = {port_id}");
    assert_eq!(one(db, &mode).await, Val::Null);
    assert!(
        polled
            .rrd
            .iter()
            .all(|u| !u.file.name.ends_with("-cie.rrd")),
        "no cie file off IOS"
    );
    // NX-OS is in the cisco group (PAgP) but not IOS (no cie counters).
    let (id, port_id) = device(db, "nxos").await;
    let polled = poll(db, id, &agent(Some(2)), 1_700_000_000).await;
    let mode = format!("SELECT `pagpOperationMode` FROM `ports` WHERE `port_id` = {port_id}");
    assert_eq!(one(db, &mode).await, Val::from("desirableSilent"));
    assert!(
        polled
            .rrd
            .iter()
            .all(|u| !u.file.name.ends_with("-cie.rrd"))
    );
}
