//! `ucd-mib`: net-snmp's UCD-SNMP-MIB CPU, I/O and load counters (LibreNMS
//! `includes/polling/ucd-mib.inc.php`): `ucd_cpu.rrd`, one `ucd_<counter>.rrd`
//! per raw counter, `ucd_load.rrd`, and the graphs of the counters the
//! agent has. OIDs and files: `mibs/ucd-mib.toml`.

use futures_util::future::BoxFuture;
use serde_json::json;

use super::stored_oids::{self, Print};
use super::table::walk_data;
use super::{ModuleError, Poll};
use crate::librenms::php;
use crate::mib::data;
use crate::rrd::Datum;

pub fn poll<'p, 'a>(p: &'p mut Poll<'a>) -> BoxFuture<'p, Result<(), ModuleError>> {
    Box::pin(run(p))
}

async fn run(p: &mut Poll<'_>) -> Result<(), ModuleError> {
    let mib = data::module("ucd-mib");
    let snmp = p.snmp()?;
    let (rows, error) = walk_data(snmp, mib, "systemStats").await;
    if let Some(e) = error {
        p.problem("ucd-mib", format!("walk of systemStats: {e}"));
    }
    let mut shown = serde_json::Map::new();
    // The scalars are instance 0.
    if let Some(ss) = rows.get("0") {
        let numeric = |name: &str| ss.get(name).filter(|v| php::is_numeric(v));
        let cpu = mib.rrd("ucd_cpu");
        let sources: Vec<Option<&str>> = cpu
            .sources
            .iter()
            .map(|s| s.as_deref().and_then(numeric))
            .collect();
        if sources.iter().all(Option::is_some) {
            let values = sources
                .iter()
                .map(|v| Datum::parse(v.expect("all some")))
                .collect();
            p.rrd(&[cpu.def.name], cpu.def, values);
            for g in &cpu.graphs {
                p.enable_graph(g);
            }
        }
        // One file per raw counter; each enables the CPU graph.
        let raw = mib.rrd("ucd_raw");
        for name in &raw.objects {
            if let Some(v) = numeric(name) {
                p.rrd(&[&format!("ucd_{name}")], raw.def, vec![Datum::parse(v)]);
                p.enable_graph("ucd_cpu");
                shown.insert(name.clone(), json!(v));
            }
        }
        for (name, graph) in mib.table("graphs") {
            if numeric(name).is_some() {
                p.enable_graph(graph);
            }
        }
    }
    // The load averages, fetched apart; written when the 5-minute one is
    // there.
    let load = mib.rrd("ucd_load");
    let oids: Vec<String> = load
        .sources
        .iter()
        .flatten()
        .map(|n| mib.oid(n).to_string())
        .collect();
    let refs: Vec<&str> = oids.iter().map(String::as_str).collect();
    let fetched = stored_oids::get(snmp, &refs).await;
    let values: Vec<Option<String>> = oids.iter().map(|o| fetched.text(o, Print::Plain)).collect();
    if values[1].as_deref().is_some_and(php::is_numeric) {
        let data = values
            .iter()
            .map(|v| v.as_deref().map_or(Datum::Unknown, Datum::parse))
            .collect();
        p.rrd(&[load.def.name], load.def, data);
        for g in &load.graphs {
            p.enable_graph(g);
        }
        shown.insert("load".into(), json!(values));
    }
    p.output.insert("ucd-mib".into(), shown.into());
    Ok(())
}
