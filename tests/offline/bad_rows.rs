//! Rows discovery stored that no longer fit the device: an OID the agent
//! no longer answers, precision or divisor 0, a value that is not a
//! number, a state with no translation, OIDs that are not JSON. Each costs
//! its own entity a logged problem (and what LibreNMS writes for it); the
//! device's other entities are written, and nothing panics.

use ironpoll::db::{Db, Statement, Val};
use ironpoll::modules::{self, PollFn, RecordingSource};
use ironpoll::snmp::{Value, VarBind};
use serde_json::json;

use crate::harness;

fn vb(oid: &str, v: Value) -> VarBind {
    VarBind::new(oid.parse().unwrap(), v)
}

fn row(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    v.as_object().unwrap().clone()
}

async fn value(db: &Db, sql: &str) -> Val {
    db.fetch(&Statement::new(sql)).await.unwrap()[0].values()[0].clone()
}

fn native(names: &[&str]) -> Vec<PollFn> {
    names
        .iter()
        .map(|n| modules::module(n).unwrap().native_for("linux", "").unwrap())
        .collect()
}

#[tokio::test]
async fn bad_rows_cost_only_their_own_entity() {
    let store = harness::sqlite_store().await;
    let db = &store.db;
    let id = harness::add_device(db, "bad-rows", &row(json!({"os": "linux"}))).await;
    let device = [("device_id", Val::from(id))];
    // Processors: one good, one whose OID is gone, one with precision 0,
    // one answering text.
    for (index, oid, precision) in [
        ("1", ".1.3.6.1.4.1.99.1.1", 1),
        ("2", ".1.3.6.1.4.1.99.1.2", 1),
        ("3", ".1.3.6.1.4.1.99.1.3", 0),
        ("4", ".1.3.6.1.4.1.99.1.4", 1),
    ] {
        harness::insert_row(
            db,
            "processors",
            &device,
            &row(
                json!({"processor_oid": oid, "processor_index": index, "processor_type": "t",
                "processor_descr": format!("cpu {index}"), "processor_precision": precision,
                "processor_usage": -1}),
            ),
        )
        .await;
    }
    // Sensors: a good one, one gone, divisor 0, text, a state with no
    // translation.
    for (index, class, oid, divisor) in [
        ("1", "temperature", ".1.3.6.1.4.1.99.2.1", 10),
        ("2", "temperature", ".1.3.6.1.4.1.99.2.2", 10),
        ("3", "voltage", ".1.3.6.1.4.1.99.2.3", 0),
        ("4", "voltage", ".1.3.6.1.4.1.99.2.4", 1),
        ("5", "state", ".1.3.6.1.4.1.99.2.5", 1),
    ] {
        harness::insert_row(
            db,
            "sensors",
            &device,
            &row(
                json!({"sensor_class": class, "sensor_oid": oid, "sensor_index": index,
                "sensor_type": "t", "sensor_descr": format!("s{index}"), "sensor_divisor": divisor,
                "sensor_current": -1}),
            ),
        )
        .await;
    }
    // Wireless: a good one, one whose OIDs are not JSON.
    for (index, oids) in [("1", "[\".1.3.6.1.4.1.99.3.1\"]"), ("2", "not json")] {
        harness::insert_row(
            db,
            "wireless_sensors",
            &device,
            &row(
                json!({"sensor_class": "clients", "sensor_index": index, "sensor_type": "t",
                "sensor_descr": "w", "sensor_oids": oids, "sensor_current": -1}),
            ),
        )
        .await;
    }
    let src = RecordingSource::new(vec![
        vb("1.3.6.1.4.1.99.1.1", Value::Gauge32(42)),
        vb("1.3.6.1.4.1.99.1.3", Value::Gauge32(7)),
        vb("1.3.6.1.4.1.99.1.4", Value::OctetString(b"n/a".to_vec())),
        vb("1.3.6.1.4.1.99.2.1", Value::Integer(235)),
        vb("1.3.6.1.4.1.99.2.3", Value::Integer(12)),
        vb("1.3.6.1.4.1.99.2.4", Value::OctetString(b"broken".to_vec())),
        vb(
            "1.3.6.1.4.1.99.2.5",
            Value::OctetString(b"melting".to_vec()),
        ),
        vb("1.3.6.1.4.1.99.3.1", Value::Gauge32(17)),
    ]);
    let polled = harness::poll(
        db,
        id,
        &src,
        1_700_000_000,
        &harness::librenms_settings(),
        &native(&["processors", "sensors", "wireless"]),
    )
    .await;

    // The good entities are written.
    let usage = |i: &str| {
        format!("SELECT `processor_usage` FROM `processors` WHERE `processor_index` = '{i}'")
    };
    assert_eq!(value(db, &usage("1")).await, Val::Int(42));
    // Precision 0 reads the value as it is, as LibreNMS does.
    assert_eq!(value(db, &usage("3")).await, Val::Int(7));
    let current =
        |i: &str| format!("SELECT `sensor_current` FROM `sensors` WHERE `sensor_index` = '{i}'");
    assert_eq!(value(db, &current("1")).await, Val::Float(23.5));
    // Divisor 0 is no division (LibreNMS skips it).
    assert_eq!(value(db, &current("3")).await, Val::Float(12.0));
    assert_eq!(
        value(
            db,
            "SELECT `sensor_current` FROM `wireless_sensors` WHERE `sensor_index` = '1'"
        )
        .await,
        Val::Float(17.0)
    );
    // What LibreNMS writes for the bad ones: 0.
    assert_eq!(value(db, &usage("2")).await, Val::Int(0));
    assert_eq!(value(db, &current("2")).await, Val::Float(0.0));
    assert_eq!(value(db, &current("5")).await, Val::Float(0.0));

    // Each bad entity is one problem, naming it.
    let problems = polled.problems.join("\n");
    for wanted in [
        "processors: cpu 2 (t 2): no value from the agent",
        "processors: cpu 4 (t 4): \"n/a\" is not a number",
        "sensors: temperature sensor s2 (2): no value from the agent",
        "sensors: voltage sensor s4 (4): \"broken\" is not a number",
        "sensors: state sensor s5 (5): state \"melting\" has no translation",
        "wireless: sensor 2: sensor_oids \"not json\"",
    ] {
        assert!(problems.contains(wanted), "{wanted} not in:\n{problems}");
    }
    assert_eq!(polled.problems.len(), 6, "{problems}");
    // RRD updates for every entity that has a file.
    let files: Vec<&str> = polled.rrd.iter().map(|u| u.file.name.as_str()).collect();
    assert!(files.contains(&"processor-t-1.rrd"), "{files:?}");
    assert!(files.contains(&"sensor-temperature-t-1.rrd"), "{files:?}");
    assert!(
        files.contains(&"wireless-sensor-clients-t-1.rrd"),
        "{files:?}"
    );
}
