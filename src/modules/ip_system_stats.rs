//! `ip-system-stats`: IP-MIB's per-address-family IP counters (LibreNMS
//! `LibreNMS/Modules/IpSystemStats.php`): `ipSystemStats-<af>.rrd` and its
//! graphs for each address family the agent lists. OIDs and files:
//! `mibs/ip-system-stats.toml`.

use futures_util::future::BoxFuture;
use serde_json::json;

use super::table::walk_data;
use super::{ModuleError, Poll};
use crate::mib::data;
use crate::rrd::Datum;

pub fn poll<'p, 'a>(p: &'p mut Poll<'a>) -> BoxFuture<'p, Result<(), ModuleError>> {
    Box::pin(run(p))
}

async fn run(p: &mut Poll<'_>) -> Result<(), ModuleError> {
    let mib = data::module("ip-system-stats");
    let snmp = p.snmp()?;
    let (rows, error) = walk_data(snmp, mib, "ipSystemStatsEntry").await;
    if let Some(e) = error {
        p.problem(
            "ip-system-stats",
            format!("walk of ipSystemStatsTable: {e}"),
        );
    }
    let spec = mib.rrd("ipSystemStats");
    let labels = mib.table("labels");
    let substitutes = mib.table("substitutes");
    let mut shown = Vec::new();
    for index in rows.indexes() {
        let Some(stats) = rows.get(index) else {
            continue;
        };
        // The index is the address family (InetVersion), as net-snmp
        // names it.
        let af = labels.get(index).cloned().unwrap_or_else(|| index.clone());
        let value = |object: &str| {
            // A 64-bit counter, where the agent has it, replaces its 32-bit
            // twin.
            let hc = substitutes
                .iter()
                .find(|(_, standard)| *standard == object)
                .and_then(|(hc, _)| stats.get(hc.as_str()));
            hc.or_else(|| stats.get(object))
                .map_or(Datum::Int(0), Datum::parse)
        };
        let values = spec
            .sources
            .iter()
            .map(|s| s.as_deref().map_or(Datum::Int(0), value))
            .collect();
        p.rrd(&[spec.def.name, &af], spec.def, values);
        p.enable_graph(&format!("ipsystemstats_{af}"));
        p.enable_graph(&format!("ipsystemstats_{af}_frag"));
        shown.push(af);
    }
    p.output.insert("ip-system-stats".into(), json!(shown));
    Ok(())
}
