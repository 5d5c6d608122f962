//! The per-OS additions to the ports module that ironpoll makes itself:
//! LibreNMS's `includes/polling/ports/os/<os>.inc.php` for ciscosb, epmp,
//! fabos, junos, moxa-etherdevice, nokia-isam, timos and zynos. They run
//! after the standard walks and before ports are matched to their rows,
//! as in LibreNMS; a row a hook adds under an ifIndex the walks did not
//! return becomes a new port. The other OSes with such a file poll ports
//! through LibreNMS's PHP (`modules::hooks`). Objects: `mibs/ports-os.toml`.

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;

use super::table::{self, Rows, clean_walk_value};
use super::{IF_ENTRY, IF_X_ENTRY, IFMIB_OIDS};
use crate::device::Device;
use crate::librenms::php::{self, Php};
use crate::mib::{self, Syntax, data};
use crate::modules::SnmpSource;
use crate::snmp::{self, Oid, VarBind};

/// A hook: the device, the agent, the walked rows to add to.
pub type Hook = for<'a> fn(
    &'a Device,
    &'a dyn SnmpSource,
    &'a mut Rows,
) -> BoxFuture<'a, Result<(), snmp::Error>>;

/// The OSes whose port hook ironpoll runs itself.
pub const NATIVE: &[&str] = &[
    "ciscosb",
    "epmp",
    "fabos",
    "junos",
    "moxa-etherdevice",
    "nokia-isam",
    "timos",
    "zynos",
];

pub fn hook(os: &str) -> Option<Hook> {
    Some(match os {
        "ciscosb" => |d, s, r| Box::pin(ciscosb(d, s, r)),
        "epmp" => |d, s, r| Box::pin(epmp(d, s, r)),
        "fabos" => |d, s, r| Box::pin(fabos(d, s, r)),
        "junos" => |d, s, r| Box::pin(junos(d, s, r)),
        "moxa-etherdevice" => |d, s, r| Box::pin(moxa_etherdevice(d, s, r)),
        "nokia-isam" => |d, s, r| Box::pin(nokia_isam(d, s, r)),
        "timos" => |d, s, r| Box::pin(timos(d, s, r)),
        "zynos" => |d, s, r| Box::pin(zynos(d, s, r)),
        _ => return None,
    })
}

fn objects() -> &'static data::MibData {
    data::module("ports-os")
}

/// The varbinds below one column, as (index, net-snmp's text); a walk
/// that fails part-way keeps what came, with its error.
async fn walk_column(
    src: &dyn SnmpSource,
    column: &str,
    labels: Option<&str>,
) -> (Vec<(Vec<u32>, String)>, Option<snmp::Error>) {
    let root: Oid = objects().oid(column).clone();
    let depth = root.arcs().len();
    let names = labels.map(|t| objects().table(t));
    let mut out = Vec::new();
    let mut take = |vb: VarBind| {
        let index = vb.oid.arcs()[depth..].to_vec();
        let text = match (&vb.value, names) {
            (snmp::Value::Integer(i), Some(names)) => names
                .get(&i.to_string())
                .cloned()
                .unwrap_or_else(|| i.to_string()),
            (v, _) => match mib::render(v, Syntax::OctetString, true) {
                Some(t) => clean_walk_value(&t).into_owned(),
                None => return,
            },
        };
        out.push((index, text));
    };
    let result = src.walk_each(&root, &mut take).await;
    (out, result.err())
}

/// ciscosb: a port in trunk mode (vlanPortModeState 12) is a dot1Q trunk.
async fn ciscosb(_d: &Device, src: &dyn SnmpSource, rows: &mut Rows) -> Result<(), snmp::Error> {
    let (states, error) = walk_column(src, "vlanPortModeState", None).await;
    for (index, state) in states {
        let index = crate::mib::dotted(&index);
        if php::loose_eq(&Php::str(state), &Php::Int(12)) && rows.get(&index).is_some() {
            rows.set(&index, "ifTrunk", "dot1Q");
        }
    }
    error.map_or(Ok(()), Err)
}

/// epmp: the two LAN ports' speed and duplex come from Cambium's status
/// scalars; other ports' ifHighSpeed is corrected when the agent reports
/// it in bits or as a large bogus value on a port that is not up.
async fn epmp(_d: &Device, src: &dyn SnmpSource, rows: &mut Rows) -> Result<(), snmp::Error> {
    let o = objects();
    let names = [
        "cambiumLANModeStatus",
        "cambiumLANSpeedStatus",
        "cambiumLAN2ModeStatus",
        "cambiumLAN2SpeedStatus",
    ];
    let oids: Vec<Oid> = names.iter().map(|n| o.oid(n).clone()).collect();
    let got = src.get(&oids).await?;
    let value = |i: usize| {
        got.get(i)
            .and_then(|vb| mib::render(&vb.value, Syntax::OctetString, true))
            .map(Php::Str)
            .unwrap_or(Php::Null)
    };
    let lan = [("LAN interface 1", 0, 1), ("LAN interface 2", 2, 3)];
    for index in rows.indexes().to_vec() {
        let row = rows.get(&index).cloned().unwrap_or_default();
        let descr = row.get("ifDescr").unwrap_or_default().to_string();
        if let Some((_, mode_at, speed_at)) = lan.iter().find(|(name, _, _)| *name == descr) {
            let (mode, speed) = (value(*mode_at), value(*speed_at));
            if speed.is_numeric() {
                let speed = speed.intval();
                rows.set(&index, "ifHighSpeed", speed.max(0).to_string());
            }
            if mode.is_numeric() {
                match mode.intval() {
                    0 => rows.set(&index, "ifDuplex", "halfDuplex"),
                    1 => rows.set(&index, "ifDuplex", "fullDuplex"),
                    _ => {
                        if let Some(r) = rows.get_mut(&index) {
                            r.remove("ifDuplex");
                        }
                    }
                }
            }
            continue;
        }
        let Some(raw) = row.get("ifHighSpeed").filter(|v| php::is_numeric(v)) else {
            continue;
        };
        let raw = php::intval(raw);
        if raw == 0 {
            continue;
        }
        if raw >= 4_290_000_000 && row.get("ifOperStatus") != Some("up") {
            rows.set(&index, "ifHighSpeed", "0");
            continue;
        }
        if raw > 1_000_000 {
            rows.set(
                &index,
                "ifHighSpeed",
                (php::round(raw as f64 / 1_000_000.0, 0) as i64).to_string(),
            );
        }
    }
    Ok(())
}

/// fabos: Fibre Channel port names are the aliases of the ports at
/// ifIndex 1073741823 + the switch's port index.
async fn fabos(_d: &Device, src: &dyn SnmpSource, rows: &mut Rows) -> Result<(), snmp::Error> {
    let (names, error) = walk_column(src, "swFCPortName", None).await;
    for (index, name) in names {
        let Some(first) = index.first() else {
            continue;
        };
        let if_index = i64::from(*first) + 1_073_741_823;
        rows.set(&if_index.to_string(), "ifAlias", name);
    }
    error.map_or(Ok(()), Err)
}

/// junos: virtual-chassis ports as interfaces. LibreNMS matches the index
/// `<fpc>.vcp-255/<pic>/<port>`; net-snmp prints the port-name part of
/// the index in quotes (`0."vcp-255/0/0"`), which the pattern does not
/// match, so no virtual-chassis port is added, here as there.
async fn junos(_d: &Device, src: &dyn SnmpSource, rows: &mut Rows) -> Result<(), snmp::Error> {
    let columns = [
        ("jnxVirtualChassisPortInOctets", "ifHCInOctets", None),
        ("jnxVirtualChassisPortOutOctets", "ifHCOutOctets", None),
        ("jnxVirtualChassisPortInPkts", "ifHCInUcastPkts", None),
        ("jnxVirtualChassisPortOutPkts", "ifHCOutUcastPkts", None),
        ("jnxVirtualChassisPortInMcasts", "ifInMulticastPkts", None),
        ("jnxVirtualChassisPortOutMcasts", "ifOutMulticastPkts", None),
        ("jnxVirtualChassisPortInCRCAlignErrors", "ifInErrors", None),
        (
            "jnxVirtualChassisPortAdminStatus",
            "ifAdminStatus",
            Some("jnxVirtualChassisPortStatus"),
        ),
        (
            "jnxVirtualChassisPortOperStatus",
            "ifOperStatus",
            Some("jnxVirtualChassisPortStatus"),
        ),
    ];
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        regex::Regex::new(r"^(\d{1,2})\.vcp-255/(\d)/(\d{1,2})$").expect("valid pattern")
    });
    let mut stats: BTreeMap<String, Vec<(&'static str, String)>> = BTreeMap::new();
    let mut failed = None;
    for (column, field, labels) in columns {
        let (values, error) = walk_column(src, column, labels).await;
        failed = failed.or(error);
        for (index, value) in values {
            stats
                .entry(junos_index(&index))
                .or_default()
                .push((field, value));
        }
    }
    for (index, fields) in stats {
        let Some(c) = pattern.captures(&index) else {
            continue;
        };
        let nms_index = format!("100{:0>2}{}{:0>2}", &c[1], &c[2], &c[3]);
        let name = format!("fpc{index}");
        rows.set(&nms_index, "ifDescr", name.clone());
        rows.set(&nms_index, "ifType", "vcp");
        rows.set(&nms_index, "ifName", name);
        for (field, value) in fields {
            rows.set(&nms_index, field, value);
        }
    }
    failed.map_or(Ok(()), Err)
}

/// A (jnxVirtualChassisFpcId, jnxVirtualChassisPortName) index as net-snmp
/// prints it: the number, then the string in quotes.
fn junos_index(index: &[u32]) -> String {
    let Some((fpc, rest)) = index.split_first() else {
        return String::new();
    };
    // The string is length-prefixed.
    let name: String = rest
        .iter()
        .skip(1)
        .map(|b| char::from_u32(*b).unwrap_or('?'))
        .collect();
    format!("{fpc}.\"{name}\"")
}

/// moxa-etherdevice: port names under `<sysObjectID>.1.9.1.1.7` become
/// the ports' aliases.
async fn moxa_etherdevice(
    d: &Device,
    src: &dyn SnmpSource,
    rows: &mut Rows,
) -> Result<(), snmp::Error> {
    let Some(base) = d
        .sys_object_id
        .as_deref()
        .and_then(|o| o.trim_start_matches('.').parse::<Oid>().ok())
    else {
        return Ok(());
    };
    let root: Oid = format!("{base}.1.9.1.1.7").parse().expect("a valid OID");
    let mut names = Vec::new();
    let result = src
        .walk_each(&root, &mut |vb| {
            if let Some(text) = mib::render(&vb.value, Syntax::OctetString, true) {
                names.push((vb.oid, clean_walk_value(&text).into_owned()));
            }
        })
        .await;
    for (oid, name) in names {
        if Php::str(name.clone()).truthy()
            && let Some(last) = oid.arcs().last()
        {
            rows.set(&last.to_string(), "ifAlias", name);
        }
    }
    result.map(|_| ())
}

/// nokia-isam: customer ids as aliases, and the interfaces of the `ihub`
/// context walked over the standard ones.
async fn nokia_isam(_d: &Device, src: &dyn SnmpSource, rows: &mut Rows) -> Result<(), snmp::Error> {
    let (ids, mut failed) = walk_column(src, "asamIfExtCustomerId", None).await;
    for (index, id) in ids {
        rows.set(&crate::mib::dotted(&index), "ifAlias", id);
    }
    if let Some(ihub) = src.in_context("ihub") {
        let mut walked = Rows::default();
        failed = failed.or(table::walk_table(ihub.as_ref(), &IF_X_ENTRY, false, &mut walked).await);
        rows.overwrite(&walked);
        let usable_hc = rows.first().is_some_and(|first| {
            first.get("ifHCInOctets").is_some_and(php::is_numeric)
                && first.get("ifHighSpeed").is_some_and(php::is_numeric)
        });
        let mut walked = Rows::default();
        if usable_hc {
            let errors =
                table::walk_columns(ihub.as_ref(), &IF_ENTRY, &IFMIB_OIDS, true, &mut walked).await;
            failed = failed.or(errors.into_iter().next());
        } else {
            failed =
                failed.or(table::walk_table(ihub.as_ref(), &IF_ENTRY, true, &mut walked).await);
        }
        rows.overwrite(&walked);
    }
    // The agent says NULL for an MTU it does not have.
    for index in rows.indexes().to_vec() {
        if let Some(row) = rows.get_mut(&index)
            && row.get("ifMtu") == Some("NULL")
        {
            row.remove("ifMtu");
        }
    }
    failed.map_or(Ok(()), Err)
}

/// timos: the router interfaces of every VRF, as ports; the standard
/// walks' values win where both have one (`array_replace_recursive`).
async fn timos(_d: &Device, src: &dyn SnmpSource, rows: &mut Rows) -> Result<(), snmp::Error> {
    let translate = [
        ("vRtrIfName", "ifName", None),
        ("vRtrIfAlias", "ifAlias", None),
        ("vRtrIfDescription", "ifDescr", None),
        ("vRtrIfSpeed", "ifSpeed", None),
        ("vRtrIfType", "ifType", Some("vRtrIfType")),
        ("vRtrIfMtu", "ifMtu", None),
        ("vRtrIfRxBytes", "ifHCInOctets", None),
        ("vRtrIfTxBytes", "ifHCOutOctets", None),
        ("vRtrIfRxPkts", "ifHCInUcastPkts", None),
        ("vRtrIfTxPkts", "ifHCOutUcastPkts", None),
    ];
    // By (vRtrID, vRtrIfIndex); a later VRF's interface replaces an earlier
    // one with the same ifIndex. LibreNMS gives up on any failed walk.
    let mut by_vrf: BTreeMap<(u32, String), Vec<(&'static str, String)>> = BTreeMap::new();
    for (column, field, labels) in translate {
        let (values, error) = walk_column(src, column, labels).await;
        if let Some(e) = error {
            return Err(e);
        }
        for (index, value) in values {
            let Some((vrf, rest)) = index.split_first() else {
                continue;
            };
            by_vrf
                .entry((*vrf, crate::mib::dotted(rest)))
                .or_default()
                .push((field, value));
        }
    }
    let mut timos: BTreeMap<String, Vec<(&'static str, String)>> = BTreeMap::new();
    for ((_, index), fields) in by_vrf {
        timos.insert(index, fields);
    }
    for (index, mut fields) in timos {
        let get = |f: &[(&str, String)], name: &str| {
            f.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
        };
        if get(&fields, "ifDescr").is_none_or(|d| Php::str(d).empty()) {
            let name = get(&fields, "ifName").unwrap_or_default();
            fields.retain(|(n, _)| *n != "ifDescr");
            fields.push(("ifDescr", name));
        }
        let existing = rows.get(&index).cloned().unwrap_or_default();
        for (field, value) in fields {
            if !existing.contains_key(field) {
                rows.set(&index, field, value);
            }
        }
    }
    Ok(())
}

/// zynos: `swp<N>` port names become `<unit>/<port>`, as LibreNMS writes
/// them (including its arithmetic on the boundary values).
async fn zynos(_d: &Device, _src: &dyn SnmpSource, rows: &mut Rows) -> Result<(), snmp::Error> {
    for index in rows.indexes().to_vec() {
        let Some(name) = rows
            .get(&index)
            .and_then(|r| r.get("ifName"))
            .map(str::to_string)
        else {
            continue;
        };
        if let Some(new) = zynos_name(&name) {
            rows.set(&index, "ifName", new);
        }
    }
    Ok(())
}

fn zynos_name(name: &str) -> Option<String> {
    if !name.starts_with("swp") {
        return None;
    }
    let digits: String = name.chars().filter(|c| !c.is_ascii_lowercase()).collect();
    let mut n = php::intval(&digits);
    let mut out = None;
    let unit = |u: i64, n: i64| Some(format!("{u}/{n:0>2}"));
    if n <= 63 {
        n += 1;
        out = unit(1, n);
    }
    if n > 63 && n < 128 {
        n -= 63;
        out = unit(2, n);
    }
    if n > 127 && n < 192 {
        n -= 127;
        out = unit(3, n);
    }
    if n > 191 {
        n -= 191;
        out = unit(4, n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zynos_names_are_renumbered_as_librenms_does() {
        assert_eq!(zynos_name("swp00").as_deref(), Some("1/01"));
        assert_eq!(zynos_name("swp23").as_deref(), Some("1/24"));
        // 63 becomes 64 first, then falls into the second unit's range.
        assert_eq!(zynos_name("swp63").as_deref(), Some("2/01"));
        assert_eq!(zynos_name("swp70").as_deref(), Some("2/07"));
        assert_eq!(zynos_name("swp200").as_deref(), Some("4/09"));
        assert_eq!(zynos_name("eth0"), None);
    }

    #[test]
    fn junos_indexes_print_as_net_snmp_prints_them() {
        let index: Vec<u32> = [0, 11]
            .into_iter()
            .chain("vcp-255/0/0".bytes().map(u32::from))
            .collect();
        assert_eq!(junos_index(&index), "0.\"vcp-255/0/0\"");
    }
}
