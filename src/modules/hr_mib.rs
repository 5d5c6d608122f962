//! `hr-mib`: HOST-RESOURCES-MIB's process and user counts (LibreNMS
//! `includes/polling/hr-mib.inc.php`): `hr_processes.rrd`, `hr_users.rrd`
//! and the device's `hrSystem` row. OIDs and files: `mibs/hr-mib.toml`.

use futures_util::future::BoxFuture;
use serde_json::json;

use super::stored_oids::{self, Print};
use super::{ModuleError, Poll};
use crate::db::value::{coerce, php_of};
use crate::librenms::php::{self, Php, changed};
use crate::mib::data;
use crate::rrd::Datum;

const COLUMNS: [&str; 3] = [
    "hrSystemNumUsers",
    "hrSystemProcesses",
    "hrSystemMaxProcesses",
];

pub fn poll<'p, 'a>(p: &'p mut Poll<'a>) -> BoxFuture<'p, Result<(), ModuleError>> {
    Box::pin(run(p))
}

async fn run(p: &mut Poll<'_>) -> Result<(), ModuleError> {
    let mib = data::module("hr-mib");
    let snmp = p.snmp()?;
    let oids: Vec<String> = [
        "hrSystemMaxProcesses",
        "hrSystemProcesses",
        "hrSystemNumUsers",
    ]
    .iter()
    .map(|n| mib.oid(n).to_string())
    .collect();
    let refs: Vec<&str> = oids.iter().map(String::as_str).collect();
    let fetched = stored_oids::get(snmp, &refs).await;
    for problem in &fetched.problems {
        p.problem("hr-mib", problem);
    }
    let value = |name: &str| {
        fetched
            .text(&mib.oid(name).to_string(), Print::Plain)
            .map_or(Php::Null, Php::Str)
    };
    let values: Vec<Php> = COLUMNS.iter().map(|c| value(c)).collect();
    let (users, processes) = (&values[0], &values[1]);
    if processes.is_numeric() {
        let spec = mib.rrd("hr_processes");
        p.rrd(&[spec.def.name], spec.def, vec![datum(processes)]);
        for g in &spec.graphs {
            p.enable_graph(g);
        }
    }
    if users.is_numeric() {
        let spec = mib.rrd("hr_users");
        p.rrd(&[spec.def.name], spec.def, vec![datum(users)]);
        for g in &spec.graphs {
            p.enable_graph(g);
        }
        // HrSystem::updateOrCreate: the device's row, created when missing.
        let rows = p.store.rows("hrSystem", p.device_id()).await?;
        match rows.first() {
            Some(row) => {
                let cols = COLUMNS
                    .iter()
                    .zip(&values)
                    .filter(|(c, v)| changed(&php_of(row.get(c)), v))
                    .map(|(c, v)| (*c, coerce("hrSystem", c, v)))
                    .collect();
                p.changes.update(
                    "hrSystem",
                    "hrSystem_id",
                    row.u64("hrSystem_id").unwrap_or(0),
                    cols,
                );
            }
            None => {
                let mut row = vec![("device_id", crate::db::Val::from(p.device_id()))];
                row.extend(
                    COLUMNS
                        .iter()
                        .zip(&values)
                        .map(|(c, v)| (*c, coerce("hrSystem", c, v))),
                );
                p.changes.insert("hrSystem", row);
            }
        }
    }
    p.output.insert(
        "hr-mib".into(),
        json!({"users": users.to_string(), "processes": processes.to_string(), "max_processes": values[2].to_string()}),
    );
    Ok(())
}

fn datum(v: &Php) -> Datum {
    Datum::parse(php::trim(&v.to_string()))
}
