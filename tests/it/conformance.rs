//! The conformance suite: LibreNMS's own test data, polled by ironpoll.
//!
//! For every recording in `../shared/fixtures/librenms` with expected data,
//! the device and its ports are seeded from the JSON `discovery` section,
//! ironpoll's modules poll the recording (through an in-memory image of it,
//! at LibreNMS's frozen test time), the rows are written to a SQLite store
//! with ironpoll's own statements, and what the store then holds is
//! compared, field by field, with the JSON `poller` section.
//!
//! Agreement per field is printed and must not fall below the baseline in
//! `tests/conformance-baseline.tsv` (regenerate it with
//! `IRONPOLL_UPDATE_BASELINE=1` after an improvement).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ironpoll::db::state::{PortRow, load_ports};
use ironpoll::db::{Db, Statement, Val, devices};
use ironpoll::librenms::php::Php;
use ironpoll::modules::{PollFn, RecordingSource, availability, core, ports};
use ironpoll::sim::snmprec;
use serde_json::Value as Json;

use crate::harness;
use crate::support::{librenms_fixtures, repo_root};

/// LibreNMS freezes its tests at 2022-01-01 00:00:00 UTC.
const TEST_TIME: i64 = 1_640_995_200;

/// Fields LibreNMS's dump leaves out of `ports` (module_tables.yaml).
const PORT_EXCLUDED: &[&str] = &["device_id", "port_id", "poll_time", "poll_period", "ifVrf"];

#[derive(Default)]
struct Tally {
    /// field -> (matched, total)
    fields: BTreeMap<String, (u64, u64)>,
    /// recording -> (matched, total)
    recordings: BTreeMap<String, (u64, u64)>,
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
}

fn canon_json(v: &Json) -> Option<String> {
    match v {
        Json::Null => None,
        Json::Bool(b) => Some(if *b { "1" } else { "0" }.into()),
        Json::Number(n) => Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) if f == f.trunc() && f.abs() < 1e18 => (f as i64).to_string(),
            (_, _, Some(f)) => f.to_string(),
            _ => n.to_string(),
        }),
        Json::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn canon_php(v: &Php) -> Option<String> {
    match v {
        Php::Null => None,
        Php::Int(i) => Some(i.to_string()),
        Php::Float(f) if *f == f.trunc() && f.abs() < 1e18 => Some((*f as i64).to_string()),
        Php::Float(f) => Some(f.to_string()),
        Php::Str(s) => Some(s.clone()),
    }
}

fn sort_key(fields: &dyn Fn(&str) -> Option<String>) -> (i64, Option<String>, Option<String>) {
    (
        fields("ifIndex")
            .and_then(|s| s.parse().ok())
            .unwrap_or(i64::MIN),
        fields("ifDescr"),
        fields("ifName"),
    )
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

fn discovery_rows<'a>(
    data: &'a serde_json::Map<String, Json>,
    module: &str,
    table: &str,
) -> Vec<&'a serde_json::Map<String, Json>> {
    data.get(module)
        .and_then(|m| m.get("discovery"))
        .and_then(|d| d.get(table))
        .and_then(Json::as_array)
        .map(|rows| rows.iter().filter_map(Json::as_object).collect())
        .unwrap_or_default()
}

/// The poller section's rows; "matches discovery" means the discovery rows.
fn poller_rows<'a>(
    data: &'a serde_json::Map<String, Json>,
    module: &str,
    table: &str,
) -> Option<Vec<&'a serde_json::Map<String, Json>>> {
    let m = data.get(module)?;
    match m.get("poller")? {
        Json::String(s) if s == "matches discovery" => Some(discovery_rows(data, module, table)),
        Json::Object(o) => Some(
            o.get(table)?
                .as_array()?
                .iter()
                .filter_map(Json::as_object)
                .collect(),
        ),
        _ => None,
    }
}

async fn run_case(db: &Db, case: &Case, tally: &mut Tally) {
    let d = db.dialect();
    let settings = harness::librenms_settings();
    let os_row = discovery_rows(&case.data, "os", "devices")
        .first()
        .copied()
        .cloned()
        .unwrap_or_default();
    let mut seed = os_row.clone();
    // Let core fill these from the recording.
    seed.remove("sysDescr");
    seed.remove("sysObjectID");
    let device_id = harness::add_device(db, &case.name, &seed).await;
    for port in discovery_rows(&case.data, "ports", "ports") {
        let port_id =
            harness::insert_row(db, "ports", &[("device_id", Val::from(device_id))], port).await;
        harness::insert_row(
            db,
            "ports_statistics",
            &[("port_id", Val::UInt(port_id))],
            port,
        )
        .await;
    }

    let recording = snmprec::parse_file(&case.recording).unwrap();
    let walls = unreadable_records(&case.recording, &recording.skipped);
    let src = RecordingSource::new(recording.varbinds).with_walls(walls);
    let mut modules: Vec<PollFn> = vec![core::poll, availability::poll];
    if case.data.contains_key("ports") {
        modules.push(ports::poll);
    }
    harness::poll(db, device_id, &src, TEST_TIME, &settings, &modules).await;

    // devices: the fields the core module fills.
    let written = devices::load(db, &[device_id]).await.unwrap().remove(0);
    for (field, got) in [
        ("devices.sysDescr", written.sys_descr.clone()),
        ("devices.sysObjectID", written.sys_object_id.clone()),
    ] {
        if os_row.is_empty() {
            break;
        }
        let want = os_row.get(&field[8..]).and_then(canon_json);
        tally.count(&case.name, field, got == want, || {
            format!("got {got:?}, want {want:?}")
        });
    }

    if let Some(want_rows) = poller_rows(&case.data, "availability", "availability") {
        let mut st = Statement::new(
            "SELECT `duration`, `availability_perc` FROM `availability` WHERE `device_id` = ",
        );
        st.value(d, Val::from(device_id))
            .push(" ORDER BY `duration`");
        let got = db.fetch(&st).await.unwrap();
        for (i, want) in want_rows.iter().enumerate() {
            let g = got.get(i);
            let ok = g.is_some_and(|g| {
                g.i64("duration") == want.get("duration").and_then(Json::as_i64)
                    && g.f64("availability_perc")
                        == want
                            .get("availability_perc")
                            .and_then(|v| v.as_str().and_then(|s| s.parse().ok()).or(v.as_f64()))
            });
            tally.count(&case.name, "availability.availability_perc", ok, || {
                format!("row {i}")
            });
        }
    }

    let Some(want_ports) = poller_rows(&case.data, "ports", "ports") else {
        return;
    };
    let got_ports: Vec<PortRow> = load_ports(db, &[device_id])
        .await
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    // Rows pair up by ifIndex (then by order among equal ones), so that one
    // missing or extra port does not shift every row after it.
    let mut by_index: BTreeMap<Option<String>, Vec<&PortRow>> = BTreeMap::new();
    let mut got_sorted: Vec<&PortRow> = got_ports.iter().collect();
    got_sorted.sort_by_key(|p| sort_key(&|f| canon_php(p.get(f))));
    for p in got_sorted {
        by_index
            .entry(canon_php(p.get("ifIndex")))
            .or_default()
            .push(p);
    }
    let mut want_sorted = want_ports.clone();
    want_sorted.sort_by_key(|r| sort_key(&|f| r.get(f).and_then(canon_json)));
    let fields: Vec<&String> = want_sorted
        .first()
        .map(|r| {
            r.keys()
                .filter(|k| !PORT_EXCLUDED.contains(&k.as_str()))
                .collect()
        })
        .unwrap_or_default();
    for want in &want_sorted {
        let index = want.get("ifIndex").and_then(canon_json);
        let got = by_index
            .get_mut(&index)
            .and_then(|v| (!v.is_empty()).then(|| v.remove(0)));
        for field in &fields {
            let w = want.get(*field).and_then(canon_json);
            let g = got.and_then(|p| canon_php(p.get(field)));
            tally.count(
                &case.name,
                &format!("ports.{field}"),
                got.is_some() && g == w,
                || format!("ifIndex {index:?}: got {g:?}, want {w:?}"),
            );
        }
    }
    for (index, rest) in by_index {
        for _ in rest {
            tally.count(&case.name, "ports.(extra rows)", false, || {
                format!("ifIndex {index:?}: a port LibreNMS did not have")
            });
        }
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

fn read_baseline() -> BTreeMap<String, (u64, u64)> {
    let Ok(text) = std::fs::read_to_string(baseline_path()) else {
        return BTreeMap::new();
    };
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut p = l.split('\t');
            Some((
                p.next()?.to_string(),
                (p.next()?.parse().ok()?, p.next()?.parse().ok()?),
            ))
        })
        .collect()
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
    for case in &cases {
        run_case(&db, case, &mut tally).await;
    }

    let mut report = String::from("field\tmatched\ttotal\tagreement\n");
    let (mut all_ok, mut all) = (0, 0);
    for (field, (ok, total)) in &tally.fields {
        all_ok += ok;
        all += total;
        report.push_str(&format!(
            "{field}\t{ok}\t{total}\t{:.2}%\n",
            100.0 * *ok as f64 / (*total).max(1) as f64
        ));
    }
    let perfect = tally.recordings.values().filter(|(ok, t)| ok == t).count();
    report.push_str(&format!(
        "ALL\t{all_ok}\t{all}\t{:.2}%\nrecordings fully reproduced: {perfect} of {}\n",
        100.0 * all_ok as f64 / all.max(1) as f64,
        tally.recordings.len()
    ));
    for (name, (ok, total)) in &tally.recordings {
        if ok != total {
            report.push_str(&format!("recording {name}: {ok}/{total}\n"));
        }
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
            "# Conformance baseline: per field, values matching LibreNMS's poller data.\n# Regenerate: IRONPOLL_UPDATE_BASELINE=1 ./misc/test.sh conformance\n",
        );
        for (field, (ok, total)) in &tally.fields {
            text.push_str(&format!("{field}\t{ok}\t{total}\n"));
        }
        std::fs::write(baseline_path(), text).unwrap();
        return;
    }
    let baseline = read_baseline();
    assert!(
        !baseline.is_empty(),
        "no baseline at {}",
        baseline_path().display()
    );
    let mut regressions = Vec::new();
    for (field, (base_ok, base_total)) in &baseline {
        let (ok, total) = tally.fields.get(field).copied().unwrap_or((0, 0));
        // Fewer matches than recorded, or fewer values compared, is a
        // regression either way.
        if ok < *base_ok || total < *base_total {
            regressions.push(format!(
                "{field}: {ok}/{total}, baseline {base_ok}/{base_total}"
            ));
        }
    }
    assert!(
        regressions.is_empty(),
        "conformance regressed:\n{}",
        regressions.join("\n")
    );
}
