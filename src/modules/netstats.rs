//! `netstats`: the IP, ICMP, SNMP, TCP and UDP counters of the standard
//! MIBs (LibreNMS `LibreNMS/Modules/Netstats.php`): one GET round for all
//! six groups, a `netstats-<group>.rrd` and its graphs for each group the
//! agent answers. OIDs and files: `mibs/netstats.toml`.

use futures_util::future::BoxFuture;
use serde_json::json;

use super::stored_oids::{self, Print};
use super::{ModuleError, Poll};
use crate::mib::data;
use crate::rrd::Datum;

pub fn poll<'p, 'a>(p: &'p mut Poll<'a>) -> BoxFuture<'p, Result<(), ModuleError>> {
    Box::pin(run(p))
}

async fn run(p: &mut Poll<'_>) -> Result<(), ModuleError> {
    let mib = data::module("netstats");
    let snmp = p.snmp()?;
    let oids: Vec<String> = mib
        .rrds()
        .iter()
        .flat_map(|r| r.sources.iter().flatten())
        .map(|name| mib.oid(name).to_string())
        .collect();
    let refs: Vec<&str> = oids.iter().map(String::as_str).collect();
    let fetched = stored_oids::get(snmp, &refs).await;
    for problem in &fetched.problems {
        p.problem("netstats", problem);
    }
    let mut shown = serde_json::Map::new();
    for spec in mib.rrds() {
        let values: Vec<Option<String>> = spec
            .sources
            .iter()
            .map(|name| {
                name.as_deref()
                    .and_then(|n| fetched.text(&mib.oid(n).to_string(), Print::Plain))
            })
            .collect();
        // A group the agent does not have at all is not written.
        if values.iter().all(Option::is_none) {
            continue;
        }
        let data = values
            .iter()
            .map(|v| v.as_deref().map_or(Datum::Unknown, Datum::parse))
            .collect();
        p.rrd(&[spec.def.name], spec.def, data);
        for g in &spec.graphs {
            p.enable_graph(g);
        }
        shown.insert(
            spec.def.name.to_string(),
            json!(values.iter().filter(|v| v.is_some()).count()),
        );
    }
    p.output.insert("netstats".into(), shown.into());
    Ok(())
}
