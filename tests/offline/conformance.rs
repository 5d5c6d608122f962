//! The conformance suite: LibreNMS's own test data, polled by ironpoll.
//!
//! For every recording in `../shared/fixtures/librenms` with expected data,
//! the device and each natively polled module's tables are seeded from the
//! JSON `discovery` section, with the columns the poller fills blanked (so
//! that a module that does nothing cannot pass). ironpoll's modules then
//! poll the recording (an in-memory image of it, at LibreNMS's frozen test
//! time), the rows are written to a SQLite store with ironpoll's own
//! statements, and the store is compared, table by table and field by
//! field, with the JSON `poller` section (LibreNMS's dump of the same
//! tables after one poll).
//!
//! Agreement per field, per module and overall is printed. It must not
//! fall below the baseline in `tests/conformance-baseline.tsv`, and the
//! rows ironpoll has that LibreNMS did not (extra rows) must not rise
//! above it (regenerate with `IRONPOLL_UPDATE_BASELINE=1` after an
//! improvement).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ironpoll::db::value::php_of;
use ironpoll::db::{Db, Row, Statement, Val};
use ironpoll::librenms::php::{Php, loose_eq};
use ironpoll::modules::{self, PollFn, RecordingSource};
use ironpoll::sim::snmprec;
use serde_json::Value as Json;

use crate::harness;
use crate::support::{librenms_fixtures, repo_root};

/// LibreNMS freezes its tests at 2022-01-01 00:00:00 UTC.
const TEST_TIME: i64 = 1_640_995_200;

/// One table LibreNMS's test dumps for a module, and how to compare it.
struct TableSpec {
    /// The module's key in the JSON (and its LibreNMS name).
    module: &'static str,
    /// The table's key in the JSON.
    table: &'static str,
    /// What LibreNMS's dump leaves out (module_tables.yaml, or the
    /// module's own `dump()`).
    excluded: &'static [&'static str],
    /// The fields rows pair up by.
    key: &'static [&'static str],
    /// The columns the poller fills: blanked in the seeded rows.
    blank: &'static [&'static str],
    /// The query that dumps the device's rows, `?` the device id.
    dump: &'static str,
}

const SPECS: &[TableSpec] = &[
    TableSpec {
        module: "ports",
        table: "ports",
        excluded: &["device_id", "port_id", "poll_time", "poll_period", "ifVrf"],
        key: &["ifIndex"],
        // Discovery leaves the counters empty already.
        blank: &[],
        dump: "SELECT * FROM `ports` p LEFT JOIN `ports_statistics` s ON s.`port_id` = p.`port_id` WHERE p.`device_id` = ?",
    },
    TableSpec {
        module: "processors",
        table: "processors",
        excluded: &["device_id", "processor_id"],
        key: &["processor_type", "processor_index"],
        blank: &["processor_usage"],
        dump: "SELECT * FROM `processors` WHERE `device_id` = ?",
    },
    TableSpec {
        module: "mempools",
        table: "mempools",
        excluded: &["device_id", "mempool_id"],
        key: &["mempool_type", "mempool_index"],
        blank: &["mempool_perc", "mempool_used", "mempool_free"],
        dump: "SELECT * FROM `mempools` WHERE `device_id` = ?",
    },
    TableSpec {
        module: "storage",
        table: "storage",
        excluded: &["device_id", "storage_id"],
        key: &["type", "storage_index"],
        blank: &["storage_used", "storage_free", "storage_perc"],
        dump: "SELECT * FROM `storage` WHERE `device_id` = ?",
    },
    TableSpec {
        module: "sensors",
        table: "sensors",
        excluded: &[
            "device_id",
            "sensor_id",
            "state_translation_id",
            "state_index_id",
            "sensors_to_state_translations_id",
            "lastupdate",
        ],
        key: &["sensor_class", "sensor_type", "sensor_index"],
        blank: &["sensor_current"],
        dump: "SELECT s.*, i.`state_name` FROM `sensors` s LEFT JOIN `sensors_to_state_indexes` m ON m.`sensor_id` = s.`sensor_id` LEFT JOIN `state_indexes` i ON i.`state_index_id` = m.`state_index_id` WHERE s.`device_id` = ?",
    },
    TableSpec {
        module: "sensors",
        table: "state_indexes",
        // state_draw_graph is in the fixtures' data, no longer in LibreNMS's
        // schema (removed by #19356): nothing can write it.
        excluded: &[
            "device_id",
            "sensor_id",
            "state_translation_id",
            "state_index_id",
            "state_lastupdated",
            "state_draw_graph",
        ],
        key: &["state_name", "state_value"],
        blank: &[],
        dump: "SELECT i.`state_name`, t.* FROM `state_indexes` i JOIN `state_translations` t ON t.`state_index_id` = i.`state_index_id` WHERE i.`state_index_id` IN (SELECT m.`state_index_id` FROM `sensors_to_state_indexes` m JOIN `sensors` s ON s.`sensor_id` = m.`sensor_id` WHERE s.`device_id` = ?)",
    },
    TableSpec {
        module: "wireless",
        table: "wireless_sensors",
        excluded: &["device_id", "sensor_id", "access_point_id", "lastupdate"],
        key: &["sensor_class", "sensor_type", "sensor_index"],
        blank: &["sensor_current"],
        dump: "SELECT * FROM `wireless_sensors` WHERE `device_id` = ?",
    },
    TableSpec {
        module: "availability",
        table: "availability",
        excluded: &["device_id", "availability_id"],
        key: &["duration"],
        blank: &[],
        dump: "SELECT * FROM `availability` WHERE `device_id` = ?",
    },
];

/// Expectations in the fixtures that LibreNMS itself no longer meets at
/// the version whose code and definitions ironpoll follows: the fixture
/// holds the JSON from before a change that upstream regenerated. Each was
/// checked against LibreNMS's regenerated file at that version (which
/// ironpoll reproduces). `case`, `table` or `table.field`, and why.
const STALE: &[(&str, &str, &str)] = &[
    (
        "iosxr_c8200-400g",
        "ports",
        "predates LibreNMS #19889 (iosxr's bad_iftype now leaves out Optics and MACsec interfaces); LibreNMS's regenerated file agrees with ironpoll",
    ),
    (
        "epmp",
        "ports.ifSpeed",
        "predates LibreNMS #19462 (the epmp port hook now divides a bits-per-second ifHighSpeed); LibreNMS's regenerated file has 220000000, as ironpoll",
    ),
];

/// The `STALE` entry covering a field, by position.
fn stale(case: &str, table: &str, field: &str) -> Option<usize> {
    STALE.iter().position(|(c, what, _)| {
        *c == case && (*what == table || *what == format!("{table}.{field}"))
    })
}

/// Counts per field: (matched, total).
#[derive(Default)]
struct Tally {
    fields: BTreeMap<String, (u64, u64)>,
    /// Rows ironpoll wrote that LibreNMS's dump does not have, per table.
    extra: BTreeMap<String, u64>,
    recordings: BTreeMap<String, (u64, u64)>,
    /// Modules skipped for a case because LibreNMS's PHP polls them for
    /// its OS.
    handed_to_php: BTreeMap<String, Vec<String>>,
    /// `STALE` entries met: fields not compared.
    stale: std::collections::BTreeSet<usize>,
    examples: BTreeMap<String, Vec<String>>,
}

impl Tally {
    fn count(&mut self, recording: &str, field: &str, ok: bool, detail: impl FnOnce() -> String) {
        let f = self.fields.entry(field.to_string()).or_default();
        f.1 += 1;
        let r = self.recordings.entry(recording.to_string()).or_default();
        r.1 += 1;
        if ok {
            f.0 += 1;
            r.0 += 1;
        } else {
            let ex = self.examples.entry(field.to_string()).or_default();
            if ex.len() < 3 || std::env::var_os("IRONPOLL_CONFORMANCE_ONLY").is_some() {
                ex.push(format!("{recording}: {}", detail()));
            }
        }
    }

    /// Agreement per module: (matched, total).
    fn modules(&self) -> BTreeMap<String, (u64, u64)> {
        let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for (field, (ok, total)) in &self.fields {
            let table = field.split('.').next().unwrap_or("");
            let module = SPECS
                .iter()
                .find(|s| s.table == table)
                .map_or("core", |s| s.module);
            let m = out.entry(module.to_string()).or_default();
            m.0 += ok;
            m.1 += total;
        }
        out
    }
}

/// A value as LibreNMS's JSON dump and PHP's loose `==` compare it:
/// numbers by value, NULL apart.
fn canon_json(v: &Json) -> Option<String> {
    match v {
        Json::Null => None,
        Json::Bool(b) => Some(if *b { "1" } else { "0" }.into()),
        Json::Number(n) => Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => canon_float(f),
            _ => n.to_string(),
        }),
        Json::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn canon_float(f: f64) -> String {
    if f == f.trunc() && f.abs() < 1e18 {
        (f as i64).to_string()
    } else {
        f.to_string()
    }
}

fn canon_val(v: &Val) -> Option<String> {
    match v {
        Val::Null | Val::Now => None,
        Val::Int(i) => Some(i.to_string()),
        Val::UInt(u) => Some(u.to_string()),
        Val::Float(f) => Some(canon_float(*f)),
        Val::Text(s) => Some(s.clone()),
        Val::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
    }
}

/// Whether two canonical values are equal as the JSON shows them: a
/// number written as text in one and as a number in the other is equal,
/// and LibreNMS's dump writes doubles with 14 significant digits.
fn same(got: &Option<String>, want: &Option<String>) -> bool {
    match (got, want) {
        (Some(g), Some(w)) if g != w => match (g.parse::<f64>(), w.parse::<f64>()) {
            (Ok(a), Ok(b)) => a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs()),
            _ => false,
        },
        _ => got == want,
    }
}

struct Case {
    name: String,
    recording: PathBuf,
    data: serde_json::Map<String, Json>,
}

fn cases(dir: &Path) -> Vec<Case> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("data"))
        .expect("read LibreNMS data")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for f in files {
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        let recording = dir.join("snmpsim").join(format!("{name}.snmprec"));
        if !recording.is_file() {
            continue;
        }
        let Ok(Json::Object(data)) = serde_json::from_str(&std::fs::read_to_string(&f).unwrap())
        else {
            panic!("{} is not a JSON object", f.display());
        };
        out.push(Case {
            name,
            recording,
            data,
        });
    }
    out
}

type JsonRow = serde_json::Map<String, Json>;

fn discovery_rows<'a>(data: &'a JsonRow, module: &str, table: &str) -> Vec<&'a JsonRow> {
    data.get(module)
        .and_then(|m| m.get("discovery"))
        .and_then(|d| d.get(table))
        .and_then(Json::as_array)
        .map(|rows| rows.iter().filter_map(Json::as_object).collect())
        .unwrap_or_default()
}

/// The poller section's rows, and whether they are only known up to PHP's
/// `==`: LibreNMS's test writes "matches discovery" when its dump after
/// the poll equals the discovery dump by PHP's loose comparison (NULL and
/// 0 alike), so the discovery rows stand for the poller's that loosely.
fn poller_rows<'a>(
    data: &'a JsonRow,
    module: &str,
    table: &str,
) -> Option<(Vec<&'a JsonRow>, bool)> {
    let m = data.get(module)?;
    match m.get("poller")? {
        Json::String(s) if s == "matches discovery" => {
            Some((discovery_rows(data, module, table), true))
        }
        Json::Object(o) => Some((
            o.get(table)?
                .as_array()?
                .iter()
                .filter_map(Json::as_object)
                .collect(),
            false,
        )),
        _ => None,
    }
}

/// A JSON value as PHP holds it.
fn php_of_json(v: Option<&Json>) -> Php {
    match v {
        None | Some(Json::Null) => Php::Null,
        Some(Json::Bool(b)) => Php::Int(i64::from(*b)),
        Some(Json::Number(n)) => n
            .as_i64()
            .map(Php::Int)
            .unwrap_or_else(|| Php::Float(n.as_f64().unwrap_or(0.0))),
        Some(Json::String(s)) => Php::Str(s.clone()),
        Some(other) => Php::Str(other.to_string()),
    }
}

/// What a blanked column is seeded with: a number no device reports.
/// (NULL would not do: PHP's `==` takes NULL for 0, so a sensor reading 0
/// would look unchanged.)
const BLANK: i64 = -987_654_321;

/// A seeded row: the JSON row, with the poller's columns blanked when
/// `blank`.
fn seeded(row: &JsonRow, columns: &[&str], blank: bool) -> JsonRow {
    let mut row = row.clone();
    if blank {
        for c in columns {
            if row.contains_key(*c) {
                row.insert((*c).to_string(), Json::from(BLANK));
            }
        }
    }
    row
}

/// Seeds a module's tables from the JSON discovery section, with the
/// poller's columns blanked when `blank`.
async fn seed(db: &Db, device_id: u32, data: &JsonRow, module: &str, blank: bool) {
    let device = [("device_id", Val::from(device_id))];
    match module {
        "ports" => {
            for port in discovery_rows(data, "ports", "ports") {
                let port_id = harness::insert_row(db, "ports", &device, port).await;
                harness::insert_row(
                    db,
                    "ports_statistics",
                    &[("port_id", Val::UInt(port_id))],
                    port,
                )
                .await;
            }
        }
        "sensors" => {
            // State sensors reach their translations through
            // sensors_to_state_indexes.
            // State indexes are shared by every device (their names are
            // unique); a case reuses one an earlier case made.
            let mut indexes: BTreeMap<String, (u64, bool)> = BTreeMap::new();
            for t in discovery_rows(data, "sensors", "state_indexes") {
                let Some(name) = t.get("state_name").and_then(Json::as_str) else {
                    continue;
                };
                let (id, fresh) = match indexes.get(name) {
                    Some(known) => *known,
                    None => {
                        let mut st = Statement::new(
                            "SELECT `state_index_id` FROM `state_indexes` WHERE `state_name` = ",
                        );
                        st.value(db.dialect(), Val::text(name));
                        let known = db.fetch(&st).await.unwrap();
                        let entry = match known.first().and_then(|r| r.u64("state_index_id")) {
                            Some(id) => (id, false),
                            None => (harness::insert_row(db, "state_indexes", &[], t).await, true),
                        };
                        indexes.insert(name.to_string(), entry);
                        entry
                    }
                };
                if fresh {
                    harness::insert_row(
                        db,
                        "state_translations",
                        &[("state_index_id", Val::UInt(id))],
                        t,
                    )
                    .await;
                }
            }
            let spec = spec("sensors");
            for s in discovery_rows(data, "sensors", "sensors") {
                let sensor_id =
                    harness::insert_row(db, "sensors", &device, &seeded(s, spec.blank, blank))
                        .await;
                if let Some(index) = s
                    .get("state_name")
                    .and_then(Json::as_str)
                    .and_then(|n| indexes.get(n))
                {
                    harness::insert_row(
                        db,
                        "sensors_to_state_indexes",
                        &[
                            ("sensor_id", Val::UInt(sensor_id)),
                            ("state_index_id", Val::UInt(index.0)),
                        ],
                        &JsonRow::new(),
                    )
                    .await;
                }
            }
        }
        _ => {
            for spec in SPECS.iter().filter(|s| s.module == module) {
                for row in discovery_rows(data, module, spec.table) {
                    harness::insert_row(db, spec.table, &device, &seeded(row, spec.blank, blank))
                        .await;
                }
            }
        }
    }
}

fn spec(table: &str) -> &'static TableSpec {
    SPECS
        .iter()
        .find(|s| s.table == table)
        .expect("a table spec")
}

/// The natively polled modules this case has data for, in LibreNMS's
/// order, and those LibreNMS's PHP polls for its OS.
fn modules_of(case: &Case, os: &str, version: &str) -> (Vec<(&'static str, PollFn)>, Vec<String>) {
    let mut native = Vec::new();
    let mut php = Vec::new();
    for m in modules::MODULES {
        let wanted = m.name == "core"
            || m.name == "availability"
            || (case.data.contains_key(m.name) && SPECS.iter().any(|s| s.module == m.name));
        if !wanted {
            continue;
        }
        match m.native_for(os, version) {
            Some(f) => native.push((m.name, f)),
            None => php.push(m.name.to_string()),
        }
    }
    (native, php)
}

async fn dump(db: &Db, spec: &TableSpec, device_id: u32) -> Vec<Row> {
    let mut parts = spec.dump.split('?');
    let mut st = Statement::new(parts.next().unwrap_or(""));
    for rest in parts {
        st.value(db.dialect(), Val::from(device_id));
        st.push(rest);
    }
    db.fetch(&st)
        .await
        .unwrap_or_else(|e| panic!("dump {}: {e}", spec.table))
}

/// Compares LibreNMS's rows with two polled copies of the device: the
/// poller's columns with the one seeded blank, every other column with
/// the one seeded as discovery left it (where `_prev` columns keep
/// LibreNMS's meaning).
fn compare_table(
    tally: &mut Tally,
    case: &str,
    spec: &TableSpec,
    (want, loose): (&[&JsonRow], bool),
    got: Vec<Row>,
    got_blanked: Vec<Row>,
) {
    let key_of_json = |r: &JsonRow| -> Vec<Option<String>> {
        spec.key
            .iter()
            .map(|k| r.get(*k).and_then(canon_json))
            .collect()
    };
    let key_of_row =
        |r: &Row| -> Vec<Option<String>> { spec.key.iter().map(|k| canon_val(r.get(k))).collect() };
    // Rows pair up by key (then by order among equal keys), so that one
    // missing or extra row does not shift every row after it.
    let index = |rows: Vec<Row>| {
        let mut by_key: BTreeMap<Vec<Option<String>>, Vec<Row>> = BTreeMap::new();
        for r in rows {
            by_key.entry(key_of_row(&r)).or_default().push(r);
        }
        by_key
    };
    let mut by_key = index(got);
    let mut blanked_by_key = index(got_blanked);
    let fields: Vec<&String> = want
        .first()
        .map(|r| {
            r.keys()
                .filter(|k| !spec.excluded.contains(&k.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let take = |map: &mut BTreeMap<Vec<Option<String>>, Vec<Row>>, key: &Vec<Option<String>>| {
        map.get_mut(key)
            .and_then(|v| (!v.is_empty()).then(|| v.remove(0)))
    };
    for w in want {
        let key = key_of_json(w);
        let g = take(&mut by_key, &key);
        let b = take(&mut blanked_by_key, &key);
        for field in &fields {
            if let Some(entry) = stale(case, spec.table, field) {
                tally.stale.insert(entry);
                continue;
            }
            let row = if spec.blank.contains(&field.as_str()) {
                &b
            } else {
                &g
            };
            let wv = w.get(*field).and_then(canon_json);
            let gv = row.as_ref().and_then(|r| canon_val(r.get(field)));
            let equal = same(&gv, &wv)
                || (loose
                    && row.as_ref().is_some_and(|r| {
                        loose_eq(&php_of(r.get(field)), &php_of_json(w.get(*field)))
                    }));
            tally.count(
                case,
                &format!("{}.{field}", spec.table),
                row.is_some() && equal,
                || format!("{key:?}: got {gv:?}, want {wv:?}"),
            );
        }
    }
    let extra: usize = by_key.values().map(Vec::len).sum();
    if extra > 0 {
        *tally.extra.entry(spec.table.to_string()).or_default() += extra as u64;
        let ex = tally
            .examples
            .entry(format!("{} (extra rows)", spec.table))
            .or_default();
        for (key, rows) in &by_key {
            if !rows.is_empty() && ex.len() < 3 {
                ex.push(format!("{case}: {key:?}: a row LibreNMS did not have"));
            }
        }
    }
}

async fn run_case(db: &Db, settings: &ironpoll::config::Settings, case: &Case, tally: &mut Tally) {
    let os_row = discovery_rows(&case.data, "os", "devices")
        .first()
        .copied()
        .cloned()
        .unwrap_or_default();
    let os = os_row
        .get("os")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string();
    let mut seed_row = os_row.clone();
    // core fills these from the recording.
    seed_row.remove("sysDescr");
    seed_row.remove("sysObjectID");
    let version = os_row
        .get("version")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string();
    let (native, php) = modules_of(case, &os, &version);
    if !php.is_empty() {
        tally.handed_to_php.insert(case.name.clone(), php);
    }
    // State indexes are shared by all devices, and the cases do not agree
    // on them: each case starts without any.
    for table in [
        "sensors_to_state_indexes",
        "state_translations",
        "state_indexes",
    ] {
        db.execute(&Statement::new(format!("DELETE FROM `{table}`")))
            .await
            .unwrap();
    }
    let recording = snmprec::parse_file(&case.recording).unwrap();
    let walls = unreadable_records(&case.recording, &recording.skipped);
    let src = RecordingSource::new(recording.varbinds).with_walls(walls);
    let polls: Vec<PollFn> = native.iter().map(|(_, f)| *f).collect();
    // Two copies of the device: one seeded as discovery left it, one with
    // the poller's columns blanked.
    let mut devices = Vec::new();
    for blank in [false, true] {
        let device_id = harness::add_device(db, &case.name, &seed_row).await;
        for (name, _) in &native {
            seed(db, device_id, &case.data, name, blank).await;
        }
        harness::poll(db, device_id, &src, TEST_TIME, settings, &polls).await;
        devices.push(device_id);
    }
    let (device_id, blanked_id) = (devices[0], devices[1]);

    // devices: the fields the core module fills.
    if !os_row.is_empty() {
        let mut st =
            Statement::new("SELECT `sysDescr`, `sysObjectID` FROM `devices` WHERE `device_id` = ");
        st.value(db.dialect(), Val::from(device_id));
        let written = db.fetch(&st).await.unwrap().remove(0);
        for field in ["sysDescr", "sysObjectID"] {
            let got = canon_val(written.get(field));
            let want = os_row.get(field).and_then(canon_json);
            tally.count(&case.name, &format!("devices.{field}"), got == want, || {
                format!("got {got:?}, want {want:?}")
            });
        }
    }

    for spec in SPECS {
        if !native.iter().any(|(m, _)| *m == spec.module) {
            continue;
        }
        let Some((want, loose)) = poller_rows(&case.data, spec.module, spec.table) else {
            continue;
        };
        let got = dump(db, spec, device_id).await;
        let got_blanked = dump(db, spec, blanked_id).await;
        compare_table(tally, &case.name, spec, (&want, loose), got, got_blanked);
    }
}

/// The OIDs of records snmpsim cannot read: LibreNMS's data was taken
/// through snmpsim, whose walks end there.
fn unreadable_records(path: &Path, skipped: &[snmprec::SnmprecError]) -> Vec<ironpoll::snmp::Oid> {
    let text = std::fs::read(path).unwrap();
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    skipped
        .iter()
        .filter_map(|e| {
            let line = lines.get(e.line.checked_sub(1)?)?;
            let oid = line.split(|&b| b == b'|').next()?;
            std::str::from_utf8(oid).ok()?.trim().parse().ok()
        })
        .collect()
}

fn baseline_path() -> PathBuf {
    repo_root().join("tests/conformance-baseline.tsv")
}

/// The baseline: per field (matched, total); per table, `extra` rows.
struct Baseline {
    fields: BTreeMap<String, (u64, u64)>,
    extra: BTreeMap<String, u64>,
}

fn read_baseline() -> Baseline {
    let text = std::fs::read_to_string(baseline_path()).unwrap_or_default();
    let mut b = Baseline {
        fields: BTreeMap::new(),
        extra: BTreeMap::new(),
    };
    for l in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let p: Vec<&str> = l.split('\t').collect();
        match p.as_slice() {
            ["extra", table, n] => {
                b.extra.insert(table.to_string(), n.parse().unwrap_or(0));
            }
            [field, ok, total] => {
                b.fields.insert(
                    field.to_string(),
                    (ok.parse().unwrap_or(0), total.parse().unwrap_or(0)),
                );
            }
            _ => {}
        }
    }
    b
}

fn percent(ok: u64, total: u64) -> f64 {
    100.0 * ok as f64 / total.max(1) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librenms_poller_data_is_reproduced() {
    let fixtures = librenms_fixtures();
    let store = harness::sqlite_store().await;
    let db = store.db.clone();
    let mut cases = cases(&fixtures);
    assert!(
        cases.len() > 100,
        "only {} LibreNMS cases found",
        cases.len()
    );
    // For investigating: IRONPOLL_CONFORMANCE_ONLY=name,... runs those and
    // prints every difference.
    let only: Option<Vec<String>> = std::env::var("IRONPOLL_CONFORMANCE_ONLY")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    if let Some(names) = &only {
        cases.retain(|c| names.contains(&c.name));
    }
    let mut tally = Tally::default();
    let settings = harness::librenms_settings();
    for case in &cases {
        run_case(&db, &settings, case, &mut tally).await;
    }

    let mut report = String::from("field\tmatched\ttotal\tagreement\n");
    let (mut all_ok, mut all) = (0, 0);
    for (field, (ok, total)) in &tally.fields {
        all_ok += ok;
        all += total;
        report.push_str(&format!(
            "{field}\t{ok}\t{total}\t{:.2}%\n",
            percent(*ok, *total)
        ));
    }
    for (table, n) in &tally.extra {
        report.push_str(&format!("{table}: {n} rows LibreNMS did not have\n"));
    }
    report.push_str("module\tmatched\ttotal\tagreement\n");
    for (module, (ok, total)) in tally.modules() {
        report.push_str(&format!(
            "{module}\t{ok}\t{total}\t{:.2}%\n",
            percent(ok, total)
        ));
    }
    let perfect = tally.recordings.values().filter(|(ok, t)| ok == t).count();
    report.push_str(&format!(
        "ALL\t{all_ok}\t{all}\t{:.2}%\nrecordings fully reproduced: {perfect} of {}\n",
        percent(all_ok, all),
        tally.recordings.len()
    ));
    for (name, (ok, total)) in &tally.recordings {
        if ok != total {
            report.push_str(&format!("recording {name}: {ok}/{total}\n"));
        }
    }
    for (case, what, why) in tally.stale.iter().map(|i| STALE[*i]) {
        report.push_str(&format!(
            "not compared, stale expectation: {case} {what}: {why}\n"
        ));
    }
    for (name, modules) in &tally.handed_to_php {
        report.push_str(&format!(
            "{name}: for LibreNMS's PHP: {}\n",
            modules.join(", ")
        ));
    }
    for (field, ex) in &tally.examples {
        for e in ex {
            report.push_str(&format!("  {field}: {e}\n"));
        }
    }
    eprintln!("{report}");
    let out = repo_root().join("target/conformance-report.txt");
    let _ = std::fs::write(&out, &report);

    if only.is_some() {
        return;
    }
    if std::env::var_os("IRONPOLL_UPDATE_BASELINE").is_some() {
        let mut text = String::from(
            "# Conformance baseline: per field, values matching LibreNMS's poller data;\n# per table, rows LibreNMS did not have (extra).\n# Regenerate: IRONPOLL_UPDATE_BASELINE=1 cargo test conformance\n",
        );
        for (field, (ok, total)) in &tally.fields {
            text.push_str(&format!("{field}\t{ok}\t{total}\n"));
        }
        for (table, n) in &tally.extra {
            text.push_str(&format!("extra\t{table}\t{n}\n"));
        }
        std::fs::write(baseline_path(), text).unwrap();
        return;
    }
    let baseline = read_baseline();
    assert!(
        !baseline.fields.is_empty(),
        "no baseline at {}",
        baseline_path().display()
    );
    let mut regressions = Vec::new();
    for (field, (base_ok, base_total)) in &baseline.fields {
        let (ok, total) = tally.fields.get(field).copied().unwrap_or((0, 0));
        // Fewer matches than recorded, or fewer values compared, is a
        // regression either way.
        if ok < *base_ok || total < *base_total {
            regressions.push(format!(
                "{field}: {ok}/{total}, baseline {base_ok}/{base_total}"
            ));
        }
    }
    for (table, n) in &tally.extra {
        let allowed = baseline.extra.get(table).copied().unwrap_or(0);
        if *n > allowed {
            regressions.push(format!(
                "{table}: {n} rows LibreNMS did not have, baseline {allowed}"
            ));
        }
    }
    assert!(
        regressions.is_empty(),
        "conformance regressed:\n{}",
        regressions.join("\n")
    );
}
