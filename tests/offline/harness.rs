//! Polling a device in the test process: a SQLite store, rows seeded, the
//! real modules run against an in-memory source, the rows written with the
//! real statements.

use ironpoll::config::{Mode, Settings, resolve, settings_defaults};
use ironpoll::db::changes::{Changes, Event};
use ironpoll::db::state::{Needs, load as load_state};
use ironpoll::db::writer::statements;
use ironpoll::db::{Db, Statement, Val, devices, schema};
use ironpoll::modules::{Poll, PollFn, SnmpSource};
use ironpoll::rrd::RrdUpdate;
use serde_json::Value as Json;

pub struct Store {
    pub db: Db,
    _dir: tempfile::TempDir,
}

pub async fn sqlite_store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite(dir.path().join("store.db").to_str().unwrap(), 1)
        .await
        .unwrap();
    db.create_schema().await.unwrap();
    Store { db, _dir: dir }
}

/// LibreNMS's defaults, as its test suite polls: no ICMP, ports polled even
/// before discovery found any.
pub fn librenms_settings() -> Settings {
    let mut s = resolve(
        &[ironpoll::config::os_definitions::builtin()],
        settings_defaults(Mode::Librenms),
    )
    .unwrap();
    s.ports.discover_when_empty = true;
    s.icmp_check = false;
    s
}

/// Inserts a row into `table`: `fixed` columns, then the JSON object's
/// columns that the table has.
pub async fn insert_row(
    db: &Db,
    table: &str,
    fixed: &[(&str, Val)],
    row: &serde_json::Map<String, Json>,
) -> u64 {
    let t = schema::table(table).unwrap();
    let mut cols: Vec<String> = Vec::new();
    let mut vals: Vec<Val> = Vec::new();
    for (k, v) in fixed {
        cols.push(format!("`{k}`"));
        vals.push(v.clone());
    }
    for (k, v) in row {
        if t.columns.iter().any(|c| c.name == k) && !fixed.iter().any(|(f, _)| f == k) {
            cols.push(format!("`{k}`"));
            vals.push(Val::from(v));
        }
    }
    let mut st = Statement::new(format!(
        "INSERT INTO `{table}` ({}) VALUES (",
        cols.join(", ")
    ));
    st.values(db.dialect(), vals);
    st.push(")");
    db.insert(&st)
        .await
        .unwrap_or_else(|e| panic!("seed {table}: {e}"))
}

/// A v2c device row, up, as discovery leaves it.
pub async fn add_device(db: &Db, hostname: &str, extra: &serde_json::Map<String, Json>) -> u32 {
    insert_row(
        db,
        "devices",
        &[
            ("hostname", Val::text(hostname)),
            ("snmpver", Val::text("v2c")),
            ("community", Val::text("public")),
            ("status", Val::Int(1)),
            ("status_reason", Val::text("")),
        ],
        extra,
    )
    .await as u32
}

/// What a poll produced besides its rows.
pub struct Polled {
    pub rrd: Vec<RrdUpdate>,
    /// Problems with single entities, as logged.
    pub problems: Vec<String>,
}

/// Runs `modules` on a device at `now` and writes what they produced.
pub async fn poll(
    db: &Db,
    device_id: u32,
    src: &dyn SnmpSource,
    now: i64,
    settings: &Settings,
    modules: &[PollFn],
) -> Polled {
    let device = devices::load(db, &[device_id]).await.unwrap().remove(0);
    let state = load_state(db, &[device_id], Needs { outages_since: 0 })
        .await
        .unwrap()
        .remove(&device_id)
        .unwrap();
    let ids = db.clone();
    let mut p = Poll::new(device, state, settings, Some(src), &ids, now);
    for m in modules {
        if let Err(e) = m(&mut p).await {
            panic!("device {device_id}: module failed: {e}");
        }
    }
    p.finish_device_row();
    db.transaction(&statements(db.dialect(), &p.changes.ops))
        .await
        .unwrap_or_else(|e| panic!("device {device_id}: writing the poll: {e}"));
    Polled {
        rrd: p.rrd,
        problems: p.problems,
    }
}

/// One poll's changes: an eventlog row for `device_id`, numbered `n`.
pub fn one_event(device_id: u32, n: usize) -> Changes {
    let mut c = Changes::for_device(device_id);
    c.event(Event {
        device_id,
        message: format!("event {n}"),
        kind: "system".into(),
        reference: None,
        severity: 3,
    });
    c
}
