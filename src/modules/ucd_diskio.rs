//! `ucd-diskio`: net-snmp's per-disk I/O counters (LibreNMS
//! `LibreNMS/Modules/UcdDiskio.php`): `ucd_diskio-<device>.rrd` for each
//! disk that has read or written anything (and that no `bad_disk_regexp`
//! excludes), and the device's `ucd_diskio` rows kept in step. OIDs and
//! files: `mibs/ucd-diskio.toml`.

use futures_util::future::BoxFuture;
use serde_json::json;

use super::table::walk_data;
use super::{ModuleError, Poll};
use crate::db::Val;
use crate::db::changes::{Filter, TableChange};
use crate::db::value::coerce;
use crate::librenms::php::{self, Php, loose_cmp};
use crate::mib::data;
use crate::rrd::Datum;

pub fn poll<'p, 'a>(p: &'p mut Poll<'a>) -> BoxFuture<'p, Result<(), ModuleError>> {
    Box::pin(run(p))
}

async fn run(p: &mut Poll<'_>) -> Result<(), ModuleError> {
    let mib = data::module("ucd-diskio");
    let snmp = p.snmp()?;
    let (rows, error) = walk_data(snmp, mib, "diskIOEntry").await;
    if let Some(e) = error {
        p.problem("ucd-diskio", format!("walk of diskIOTable: {e}"));
    }
    let os = p.device.os.clone().unwrap_or_default();
    let bad: Vec<php::Regex> = p
        .settings
        .os
        .combined(&os, "bad_disk_regexp", &p.settings.bad_disk_regexp)
        .iter()
        .filter_map(|r| php::Regex::new_with_flags(r, "i").ok())
        .collect();
    let spec = mib.rrd("ucd_diskio");
    // (diskio_index, diskio_descr) of the disks polled, in walk order.
    let mut disks: Vec<(String, String)> = Vec::new();
    for index in rows.indexes() {
        let Some(disk) = rows.get(index) else {
            continue;
        };
        let device = disk.get("diskIODevice").unwrap_or_default().to_string();
        let positive = |c: &str| {
            loose_cmp(&disk.get(c).map_or(Php::Null, Php::str), &Php::str("0"))
                == Some(std::cmp::Ordering::Greater)
        };
        let valid = !bad.iter().any(|re| re.is_match(&device));
        if !(valid && (positive("diskIONRead") || positive("diskIONWritten"))) {
            continue;
        }
        let values = spec
            .sources
            .iter()
            .map(|s| {
                s.as_deref()
                    .and_then(|c| disk.get(c))
                    .map_or(Datum::Unknown, Datum::parse)
            })
            .collect();
        p.rrd(&[spec.def.name, &device], spec.def, values);
        let disk_index = disk.get("diskIOIndex").unwrap_or_default().to_string();
        disks.push((disk_index, device));
    }
    sync_rows(p, &disks).await?;
    p.output.insert(
        "ucd-diskio".into(),
        json!(disks.iter().map(|(_, d)| d).collect::<Vec<_>>()),
    );
    Ok(())
}

/// LibreNMS's `syncModels` on `ucd_diskio`, keyed by index and name: rows
/// of disks no longer polled (and duplicates) go, new disks get rows.
async fn sync_rows(p: &mut Poll<'_>, disks: &[(String, String)]) -> Result<(), ModuleError> {
    let existing = p.store.rows("ucd_diskio", p.device_id()).await?;
    let key = |index: &str, descr: &str| format!("{index}-{descr}");
    let wanted: Vec<String> = disks.iter().map(|(i, d)| key(i, d)).collect();
    let mut kept = std::collections::HashSet::new();
    let mut gone = Vec::new();
    for row in &existing {
        let k = key(
            &row.string("diskio_index").unwrap_or_default(),
            &row.string("diskio_descr").unwrap_or_default(),
        );
        if wanted.contains(&k) && kept.insert(k) {
            continue;
        }
        gone.push(Val::UInt(row.u64("diskio_id").unwrap_or(0)));
    }
    if !gone.is_empty() {
        p.changes.push(TableChange::Delete {
            table: "ucd_diskio",
            filters: vec![Filter::In("diskio_id", gone)],
        });
    }
    for ((index, descr), k) in disks.iter().zip(&wanted) {
        if kept.contains(k) {
            continue;
        }
        kept.insert(k.clone());
        p.changes.insert(
            "ucd_diskio",
            vec![
                ("device_id", Val::from(p.device_id())),
                (
                    "diskio_index",
                    coerce("ucd_diskio", "diskio_index", &Php::str(index.clone())),
                ),
                (
                    "diskio_descr",
                    coerce("ucd_diskio", "diskio_descr", &Php::str(descr.clone())),
                ),
            ],
        );
    }
    Ok(())
}
