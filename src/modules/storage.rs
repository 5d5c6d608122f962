//! `storage`: the disks and file systems discovery stored, from their
//! OIDs (LibreNMS `LibreNMS/Modules/Storage.php`, `app/Models/Storage.php`).

use futures_util::future::BoxFuture;
use serde_json::json;

use super::stored_oids::{self, Print};
use super::{ModuleError, Poll};
use crate::db::value::{coerce, php_of};
use crate::librenms::number;
use crate::librenms::php::{Php, changed};
use crate::rrd::{Datum, DsType, RrdDef, ds};

/// `storage-<type>-<descr>.rrd`.
pub static STORAGE: RrdDef = RrdDef {
    name: "storage",
    datasets: &[
        ds("used", DsType::Gauge, Some(0.0), None),
        ds("free", DsType::Gauge, Some(0.0), None),
    ],
};

const OID_COLUMNS: [&str; 4] = [
    "storage_used_oid",
    "storage_size_oid",
    "storage_free_oid",
    "storage_perc_oid",
];

const VALUE_COLUMNS: [&str; 4] = [
    "storage_size",
    "storage_used",
    "storage_free",
    "storage_perc",
];

pub fn poll<'p, 'a>(p: &'p mut Poll<'a>) -> BoxFuture<'p, Result<(), ModuleError>> {
    Box::pin(run(p))
}

fn number_of(v: &Php) -> Option<f64> {
    match v {
        Php::Null => None,
        other => match number::cast(other) {
            Php::Int(i) => Some(i as f64),
            Php::Float(f) => Some(f),
            _ => None,
        },
    }
}

async fn run(p: &mut Poll<'_>) -> Result<(), ModuleError> {
    let rows = p.store.rows("storage", p.device_id()).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let snmp = p.snmp()?;
    let oids: Vec<String> = rows
        .iter()
        .flat_map(|r| OID_COLUMNS.iter().filter_map(|c| r.string(c)))
        .filter(|o| !o.is_empty())
        .collect();
    let fetched = if oids.is_empty() {
        stored_oids::Fetched::default()
    } else {
        let refs: Vec<&str> = oids.iter().map(String::as_str).collect();
        stored_oids::get(snmp, &refs).await
    };
    for problem in &fetched.problems {
        p.problem("storage", problem);
    }
    let mut shown = serde_json::Map::new();
    for row in &rows {
        let id = row.u64("storage_id").unwrap_or(0);
        let kind = row.string("type").unwrap_or_default();
        let descr = row.string("storage_descr").unwrap_or_default();
        let stored: Vec<Php> = VALUE_COLUMNS.iter().map(|c| php_of(row.get(c))).collect();
        let mut values = stored.clone();
        if !oids.is_empty() {
            let value = |c: &str| {
                row.string(c)
                    .filter(|o| !o.is_empty())
                    .and_then(|o| fetched.text(&o, Print::Plain))
                    .map_or(Php::Null, Php::Str)
            };
            let units = row.f64("storage_units").unwrap_or(0.0);
            // The size in units, from the stored size.
            let total = (units != 0.0)
                .then(|| number_of(&stored[0]).map(|size| size / units))
                .flatten();
            match number::fill_missing_ratio(
                total,
                number_of(&value("storage_used_oid")),
                number_of(&value("storage_free_oid")),
                &value("storage_perc_oid"),
                0,
                units,
            ) {
                Ok([t, u, f, pc]) => {
                    values = vec![Php::Float(t), Php::Float(u), Php::Float(f), Php::Float(pc)];
                }
                Err(e) => p.problem("storage", format!("{descr}: {e:?}")),
            }
        }
        let cols = VALUE_COLUMNS
            .iter()
            .zip(stored.iter().zip(&values))
            .filter(|(_, (old, new))| changed(old, new))
            .map(|(c, (_, new))| (*c, coerce("storage", c, new)))
            .collect();
        p.changes.update("storage", "storage_id", id, cols);
        p.rrd(
            &["storage", &kind, &descr],
            &STORAGE,
            vec![datum(&values[1]), datum(&values[2])],
        );
        shown.insert(
            format!("{kind}.{descr}"),
            json!({"size": values[0].to_string(), "used": values[1].to_string(), "perc": values[3].to_string()}),
        );
    }
    p.output.insert("storage".into(), shown.into());
    Ok(())
}

fn datum(v: &Php) -> Datum {
    number_of(v).map_or(Datum::Unknown, Datum::Float)
}
