//! `ports`: interface counters, rates and state, the way LibreNMS's
//! `includes/polling/ports.inc.php` computes and stores them.
//!
//! The comparisons below follow PHP's loose rules on purpose (see
//! `librenms::php`): they decide which columns LibreNMS writes and which
//! eventlog rows it adds, and ironpoll must write the same.

use std::collections::HashSet;

use rustc_hash::FxHashMap;

use futures_util::future::BoxFuture;
use serde_json::json;

use super::table::{self, Rows};
use super::{ModuleError, Poll, severity};
use crate::config::PortFilters;
use crate::db::Val;
use crate::db::changes::{Filter, RowUpdate, TableChange};
use crate::db::packed::PackedRow;
use crate::db::state::PortRow;
use crate::db::value::coerce;
use crate::librenms::format;
use crate::librenms::php::{self, Php, loose_eq};
use crate::mib::{
    CIE_IF_PACKET_STATS_ENTRY, DOT1Q_PORT_VLAN_ENTRY, DOT3_STATS_ENTRY, IF_ENTRY, IF_X_ENTRY,
    PAGP_PROTOCOL_CONFIG_ENTRY, VLAN_TRUNK_PORT_ENTRY, VM_MEMBERSHIP_ENTRY,
};
use crate::rrd::{Datum, DsType, RrdDef, ds};
use crate::snmp;

pub mod os_hooks;

const PORT_MAX: Option<f64> = Some(12_500_000_000.0);

/// `port-id<port_id>.rrd`: the 15 interface counters (ports module).
pub static PORT: RrdDef = RrdDef {
    name: "port",
    datasets: &[
        ds("INOCTETS", DsType::Derive, Some(0.0), PORT_MAX),
        ds("OUTOCTETS", DsType::Derive, Some(0.0), PORT_MAX),
        ds("INERRORS", DsType::Derive, Some(0.0), PORT_MAX),
        ds("OUTERRORS", DsType::Derive, Some(0.0), PORT_MAX),
        ds("INUCASTPKTS", DsType::Derive, Some(0.0), PORT_MAX),
        ds("OUTUCASTPKTS", DsType::Derive, Some(0.0), PORT_MAX),
        ds("INNUCASTPKTS", DsType::Derive, Some(0.0), PORT_MAX),
        ds("OUTNUCASTPKTS", DsType::Derive, Some(0.0), PORT_MAX),
        ds("INDISCARDS", DsType::Derive, Some(0.0), PORT_MAX),
        ds("OUTDISCARDS", DsType::Derive, Some(0.0), PORT_MAX),
        ds("INUNKNOWNPROTOS", DsType::Derive, Some(0.0), PORT_MAX),
        ds("INBROADCASTPKTS", DsType::Derive, Some(0.0), PORT_MAX),
        ds("OUTBROADCASTPKTS", DsType::Derive, Some(0.0), PORT_MAX),
        ds("INMULTICASTPKTS", DsType::Derive, Some(0.0), PORT_MAX),
        ds("OUTMULTICASTPKTS", DsType::Derive, Some(0.0), PORT_MAX),
    ],
};

/// `port-id<port_id>-cie.rrd`: CISCO-IF-EXTENSION-MIB's error and drop
/// counters of IOS and IOS-XE ports.
pub static PORT_CIE: RrdDef = RrdDef {
    name: "drops",
    datasets: &[
        ds("InRuntsErrs", DsType::Derive, Some(0.0), None),
        ds("InGiantsErrs", DsType::Derive, Some(0.0), None),
        ds("InFramingErrs", DsType::Derive, Some(0.0), None),
        ds("InOverrunErrs", DsType::Derive, Some(0.0), None),
        ds("InIgnored", DsType::Derive, Some(0.0), None),
        ds("InAbortErrs", DsType::Derive, Some(0.0), None),
        ds("InputQueueDrops", DsType::Derive, Some(0.0), None),
        ds("OutputQueueDrops", DsType::Derive, Some(0.0), None),
    ],
};

/// The CISCO-IF-EXTENSION-MIB columns feeding [`PORT_CIE`], in file order.
const CIE_OIDS: [&str; 8] = [
    "cieIfInRuntsErrs",
    "cieIfInGiantsErrs",
    "cieIfInFramingErrs",
    "cieIfInOverrunErrs",
    "cieIfInIgnored",
    "cieIfInAbortErrs",
    "cieIfInputQueueDrops",
    "cieIfOutputQueueDrops",
];

/// Columns whose changes LibreNMS writes and logs.
const DATA_OIDS: [&str; 13] = [
    "ifName",
    "ifDescr",
    "ifAlias",
    "ifAdminStatus",
    "ifOperStatus",
    "ifMtu",
    "ifSpeed",
    "ifType",
    "ifPhysAddress",
    "ifConnectorPresent",
    "ifDuplex",
    "ifTrunk",
    "ifVlan",
];

/// A counter column and the three columns LibreNMS derives from it.
struct Counter {
    oid: &'static str,
    prev: &'static str,
    rate: &'static str,
    delta: &'static str,
}

macro_rules! counter {
    ($oid:literal) => {
        Counter {
            oid: $oid,
            prev: concat!($oid, "_prev"),
            rate: concat!($oid, "_rate"),
            delta: concat!($oid, "_delta"),
        }
    };
}

/// Counters kept in `ports`, then those kept in `ports_statistics`.
const COUNTERS: [Counter; 15] = [
    counter!("ifInOctets"),
    counter!("ifOutOctets"),
    counter!("ifInErrors"),
    counter!("ifOutErrors"),
    counter!("ifInUcastPkts"),
    counter!("ifOutUcastPkts"),
    counter!("ifInNUcastPkts"),
    counter!("ifOutNUcastPkts"),
    counter!("ifInDiscards"),
    counter!("ifOutDiscards"),
    counter!("ifInUnknownProtos"),
    counter!("ifInBroadcastPkts"),
    counter!("ifOutBroadcastPkts"),
    counter!("ifInMulticastPkts"),
    counter!("ifOutMulticastPkts"),
];

/// How many of [`COUNTERS`] live in `ports`.
const DB_COUNTERS: usize = 6;

/// Descriptive columns every port update writes, besides [`DATA_OIDS`].
const STATE_COLUMNS: [&str; 11] = [
    "ifIndex",
    "pagpOperationMode",
    "ifOperStatus_prev",
    "ifAdminStatus_prev",
    "ifSpeed_prev",
    "ifLastChange",
    "port_descr_type",
    "port_descr_descr",
    "port_descr_circuit",
    "port_descr_speed",
    "port_descr_notes",
];

const POLL_TIMES: [&str; 3] = ["poll_time", "poll_prev", "poll_period"];

/// The columns of a port's UPDATE: always the same set, so that the
/// multi-row statements repeat and stay prepared. Columns a poll did not
/// change are written back as they were.
fn port_shape(counters: bool) -> &'static [&'static str] {
    static WITH: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    static WITHOUT: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let build = |with_counters: bool| {
        let mut v: Vec<&'static str> = DATA_OIDS
            .iter()
            .chain(STATE_COLUMNS.iter())
            .copied()
            .collect();
        if with_counters {
            for c in &COUNTERS[..DB_COUNTERS] {
                v.extend([c.oid, c.prev, c.rate, c.delta]);
            }
        }
        v.extend(POLL_TIMES);
        v
    };
    if counters {
        WITH.get_or_init(|| build(true))
    } else {
        WITHOUT.get_or_init(|| build(false))
    }
}

fn statistics_shape() -> &'static [&'static str] {
    static SHAPE: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    SHAPE.get_or_init(|| {
        COUNTERS[DB_COUNTERS..]
            .iter()
            .flat_map(|c| [c.oid, c.prev, c.rate, c.delta])
            .collect()
    })
}

/// ifEntry columns walked when the device has usable ifXEntry data.
const IFMIB_OIDS: [&str; 11] = [
    "ifDescr",
    "ifAdminStatus",
    "ifOperStatus",
    "ifLastChange",
    "ifType",
    "ifPhysAddress",
    "ifMtu",
    "ifInErrors",
    "ifOutErrors",
    "ifInDiscards",
    "ifOutDiscards",
];

/// Columns read per port by selected-port polling before deciding to poll it.
const TABLE_BASE_OIDS: [&str; 6] = [
    "ifName",
    "ifAlias",
    "ifDescr",
    "ifHighSpeed",
    "ifOperStatus",
    "ifAdminStatus",
];

const HC_OIDS: [&str; 13] = [
    "ifInMulticastPkts",
    "ifInBroadcastPkts",
    "ifOutMulticastPkts",
    "ifOutBroadcastPkts",
    "ifHCInOctets",
    "ifHCInUcastPkts",
    "ifHCInMulticastPkts",
    "ifHCInBroadcastPkts",
    "ifHCOutOctets",
    "ifHCOutUcastPkts",
    "ifHCOutMulticastPkts",
    "ifHCOutBroadcastPkts",
    "ifConnectorPresent",
];

const NON_HC_OIDS: [&str; 6] = [
    "ifSpeed",
    "ifInOctets",
    "ifInUcastPkts",
    "ifInUnknownProtos",
    "ifOutOctets",
    "ifOutUcastPkts",
];

const SHARED_OIDS: [&str; 10] = [
    "ifInErrors",
    "ifOutErrors",
    "ifInNUcastPkts",
    "ifOutNUcastPkts",
    "ifInDiscards",
    "ifOutDiscards",
    "ifPhysAddress",
    "ifLastChange",
    "ifType",
    "ifMtu",
];

/// 64-bit counters that replace their 32-bit twins when present.
const HC_MAPPINGS: [(&str, &str); 8] = [
    ("ifHCInOctets", "ifInOctets"),
    ("ifHCOutOctets", "ifOutOctets"),
    ("ifHCInUcastPkts", "ifInUcastPkts"),
    ("ifHCOutUcastPkts", "ifOutUcastPkts"),
    ("ifHCInBroadcastPkts", "ifInBroadcastPkts"),
    ("ifHCOutBroadcastPkts", "ifOutBroadcastPkts"),
    ("ifHCInMulticastPkts", "ifInMulticastPkts"),
    ("ifHCOutMulticastPkts", "ifOutMulticastPkts"),
];

/// RRD data sources and the counters that feed them, in file order.
const RRD_FIELDS: [&str; 15] = [
    "ifInOctets",
    "ifOutOctets",
    "ifInErrors",
    "ifOutErrors",
    "ifInUcastPkts",
    "ifOutUcastPkts",
    "ifInNUcastPkts",
    "ifOutNUcastPkts",
    "ifInDiscards",
    "ifOutDiscards",
    "ifInUnknownProtos",
    "ifInBroadcastPkts",
    "ifOutBroadcastPkts",
    "ifInMulticastPkts",
    "ifOutMulticastPkts",
];

/// The devices whose ports LibreNMS polls with code of its own outside
/// `ports/os/`: F5 BIG-IP 11.2 to 11.6 (`ports/f5.inc.php`) and
/// exalink-fusion.
pub fn php_ports(os: &str, version: &str) -> bool {
    match os {
        "exalink-fusion" => true,
        "f5" => {
            php::version_compare(version, "11.2.0").is_ge()
                && php::version_compare(version, "11.7").is_lt()
        }
        _ => false,
    }
}

pub fn poll<'p, 'a>(p: &'p mut Poll<'a>) -> BoxFuture<'p, Result<(), ModuleError>> {
    Box::pin(run(p))
}

/// A port as the poll holds it: the database row, changed as LibreNMS
/// changes it in memory.
struct Port {
    row: PortRow,
    skipped: bool,
    new: bool,
}

impl Port {
    fn get(&self, column: &str) -> Php {
        self.row.get(column).clone()
    }

    fn set(&mut self, column: &str, v: Php) {
        self.row.set(column, v);
    }

    fn flag(&self, column: &str) -> bool {
        loose_eq(self.row.get(column), &Php::Int(1))
    }
}

/// One port's polled values (`$this_port`): SNMP text, and a few computed
/// values that PHP holds as other types.
type PolledPort = FxHashMap<&'static str, Php>;

fn polled_from(row: table::Row) -> PolledPort {
    row.iter().map(|(k, v)| (k, Php::str(v))).collect()
}

/// What LibreNMS's port checks read of a walked row (`is_port_valid` and
/// the association key), with `ifIndex` set as LibreNMS sets it on its
/// copy of the row for those checks only.
fn checked_fields(row: Option<&table::Row>, if_index: &str) -> PolledPort {
    let mut fields: PolledPort = ["ifDescr", "ifName", "ifAlias", "ifType", "ifOperStatus"]
        .into_iter()
        .filter_map(|k| Some((k, Php::str(row?.get(k)?))))
        .collect();
    fields.insert("ifIndex", Php::Str(if_index.to_string()));
    fields
}

fn isset(p: &PolledPort, key: &str) -> bool {
    p.get(key).is_some_and(|v| !v.is_null())
}

fn val(p: &PolledPort, key: &str) -> Php {
    p.get(key).cloned().unwrap_or(Php::Null)
}

/// The device's ports rows, as the poll holds them.
async fn load_ports(p: &Poll<'_>) -> Result<Vec<Port>, ModuleError> {
    Ok(p.store
        .ports(p.device.device_id)
        .await?
        .into_iter()
        .map(|row| Port {
            row,
            skipped: false,
            new: false,
        })
        .collect())
}

/// LibreNMS polls no ports of a device discovery has not seen ports on.
fn nothing_to_poll(p: &mut Poll<'_>, ports: &[Port]) -> bool {
    if ports.is_empty() && !p.settings.ports.discover_when_empty {
        p.output.insert(
            "ports".into(),
            json!({"skipped": "no ports: discovery needs to run first"}),
        );
        return true;
    }
    false
}

async fn run(p: &mut Poll<'_>) -> Result<(), ModuleError> {
    let snmp = p.snmp()?;
    let settings = p.settings;
    let mut stats = Rows::default();
    let selected = match p.state.attribs.get("selected_ports") {
        Some(v) => v == "true",
        None => false,
    };
    // Selected-port polling reads the rows first (it asks for those ports
    // only); otherwise they are read once the agent has been walked, so
    // that the seconds a poll waits on the agent are not spent holding
    // them.
    // Walk errors: each costs only its own walk (LibreNMS parses whatever
    // net-snmp printed, and goes on to the next walk).
    let mut failed: Vec<snmp::Error> = Vec::new();
    let os = p.device.os.clone().unwrap_or_default();
    let group = settings.os.group(&os).unwrap_or("").to_string();
    let ports = if selected {
        let mut ports = load_ports(p).await?;
        if nothing_to_poll(p, &ports) {
            return Ok(());
        }
        fetch_selected(p, snmp, &mut ports, &mut stats).await?;
        Some(ports)
    } else {
        // A model the OS lists in bad_ifXEntry gets only ifAlias and ifName
        // of ifXEntry.
        let hardware = p.device.hardware.clone().unwrap_or_default().to_lowercase();
        let bad_x = settings
            .os
            .list(&os, "bad_ifXEntry")
            .iter()
            .any(|h| h.to_lowercase() == hardware);
        if bad_x {
            failed.extend(
                table::walk_columns(snmp, &IF_X_ENTRY, &["ifAlias", "ifName"], true, &mut stats)
                    .await,
            );
        } else {
            failed.extend(table::walk_table(snmp, &IF_X_ENTRY, false, &mut stats).await);
        }
        let usable_hc = stats.first().is_some_and(|first| {
            first.get("ifHCInOctets").is_some_and(php::is_numeric)
                && first.get("ifHighSpeed").is_some_and(php::is_numeric)
        });
        if usable_hc {
            failed
                .extend(table::walk_columns(snmp, &IF_ENTRY, &IFMIB_OIDS, true, &mut stats).await);
        } else {
            failed.extend(table::walk_table(snmp, &IF_ENTRY, true, &mut stats).await);
        }
        if os != "asa" {
            failed.extend(
                table::walk_columns(
                    snmp,
                    &DOT3_STATS_ENTRY,
                    &["dot3StatsDuplexStatus"],
                    false,
                    &mut stats,
                )
                .await,
            );
            failed.extend(table::walk_table(snmp, &DOT1Q_PORT_VLAN_ENTRY, false, &mut stats).await);
        }
        None
    };

    // The OS's own additions (LibreNMS's includes/polling/ports/os/<os>).
    if let Some(hook) = os_hooks::hook(&os) {
        match hook(&p.device, snmp, &mut stats).await {
            Ok(()) => {}
            Err(e) => failed.push(e),
        }
    }

    if group == "cisco" && os != "asa" {
        // LibreNMS also walks the rest of CISCO-PAGP-MIB when a port has a
        // PAgP mode, but stores only the mode: those walks are left out.
        failed.extend(
            table::walk_columns(
                snmp,
                &PAGP_PROTOCOL_CONFIG_ENTRY,
                &["pagpOperationMode"],
                false,
                &mut stats,
            )
            .await,
        );
        failed.extend(
            table::walk_columns(snmp, &VM_MEMBERSHIP_ENTRY, &["vmVlan"], false, &mut stats).await,
        );
        failed.extend(
            table::walk_columns(
                snmp,
                &VLAN_TRUNK_PORT_ENTRY,
                &[
                    "vlanTrunkPortEncapsulationOperType",
                    "vlanTrunkPortNativeVlan",
                ],
                false,
                &mut stats,
            )
            .await,
        );
    }
    if matches!(os.as_str(), "ios" | "iosxe") {
        failed.extend(
            table::walk_columns(
                snmp,
                &CIE_IF_PACKET_STATS_ENTRY,
                &CIE_OIDS,
                false,
                &mut stats,
            )
            .await,
        );
    }
    for e in &failed {
        p.problem("ports", format!("a walk failed part-way: {e}"));
    }
    let mut ports = match ports {
        Some(ports) => ports,
        None => {
            let ports = load_ports(p).await?;
            if nothing_to_poll(p, &ports) {
                return Ok(());
            }
            ports
        }
    };
    // An agent that lists no interface at all (every walk empty) is far
    // more likely broken for the moment than without ports: LibreNMS would
    // mark every port deleted; ironpoll leaves them as they are.
    if stats.is_empty() && !ports.is_empty() && !selected {
        p.problem(
            "ports",
            "the agent returned no interfaces: ports left as they were, none marked deleted",
        );
        p.output.insert(
            "ports".into(),
            json!({"skipped": "the agent returned no interfaces"}),
        );
        return Ok(());
    }

    let filters = settings.port_filters(&os);
    let polled = p.now;
    let mode = association_mode(
        p.device.port_association_mode,
        &settings.ports.default_port_association_mode,
    );

    // Maps from the association key to a port, later ports winning.
    let mut maps: FxHashMap<&'static str, FxHashMap<String, usize>> = FxHashMap::default();
    for (pos, port) in ports.iter().enumerate() {
        for key in ["ifIndex", "ifName", "ifDescr", "ifAlias"] {
            maps.entry(key)
                .or_default()
                .insert(port.get(key).to_string(), pos);
        }
    }

    let mut found: Vec<usize> = Vec::new();
    let mut deleted_now: HashSet<usize> = HashSet::new();
    // Ports to create: their place in `ports`, ifIndex and ifName.
    let mut new_ports: Vec<(usize, i64, Option<String>)> = Vec::new();
    // The walked rows stay compact until their port is polled: each is
    // converted then, so a poll holds one converted row at a time.
    let indexes: Vec<String> = stats.indexes().to_vec();
    for if_index in &indexes {
        let row = &checked_fields(stats.get(if_index), if_index);
        // PHP looks the value up as an array key; a missing one is "".
        let key = val(row, mode).to_string();
        let position = maps.get(mode).and_then(|m| m.get(&key)).copied();
        let valid = is_port_valid(row, &filters);
        let unmappable = val(row, mode).empty() && !loose_eq(&val(row, mode), &Php::str("0"));
        let if_name = row.get("ifName").and_then(Php::as_str).map(str::to_string);
        if valid {
            let pos = match position {
                Some(pos) => {
                    if ports[pos].flag("deleted") {
                        p.changes.update(
                            "ports",
                            "port_id",
                            u64::from(ports[pos].row.port_id),
                            vec![("deleted", Val::Int(0))],
                        );
                        ports[pos].set("deleted", Php::Int(0));
                    }
                    pos
                }
                None => {
                    if settings.ports.ignore_unmapable_port && unmappable {
                        continue;
                    }
                    let index_num = php::intval(if_index);
                    let mut row = PortRow::new(0, p.device.device_id, true);
                    row.set("device_id", Php::Int(i64::from(p.device.device_id)));
                    row.set("ifIndex", Php::Int(index_num));
                    row.set("ifName", if_name.clone().map_or(Php::Null, Php::Str));
                    for zero in ["ifLastChange", "ifVrf", "ignore", "disabled", "deleted"] {
                        row.set(zero, Php::Int(0));
                    }
                    ports.push(Port {
                        row,
                        skipped: false,
                        new: true,
                    });
                    new_ports.push((ports.len() - 1, index_num, if_name));
                    ports.len() - 1
                }
            };
            ports[pos].set("ifIndex", Php::Str(if_index.clone()));
            found.push(pos);
        } else if let Some(pos) = position
            && !ports[pos].skipped
            && !ports[pos].flag("deleted")
        {
            deleted_now.insert(pos);
            ports[pos].set("deleted", Php::Int(1));
            p.changes.update(
                "ports",
                "port_id",
                u64::from(ports[pos].row.port_id),
                vec![("deleted", Val::Int(1))],
            );
        }
    }
    // New ports get their rows (and ids) in one go.
    if !new_ports.is_empty() {
        let wanted: Vec<(i64, Option<String>)> =
            new_ports.iter().map(|(_, i, n)| (*i, n.clone())).collect();
        let ids = p.store.new_ports(p.device.device_id, &wanted).await?;
        for ((pos, _, _), id) in new_ports.iter().zip(ids) {
            ports[*pos].row.port_id = id;
            ports[*pos].set("port_id", Php::Int(i64::from(id)));
        }
    }

    // LibreNMS's bulk update of unchanged ports (with its poll_period quirk).
    let max_prev = ports
        .iter()
        .filter(|x| x.get("poll_time").truthy())
        .map(|x| x.get("poll_time").intval())
        .max();
    let global_poll_prev = max_prev.map_or(Php::Null, Php::Int);
    let global_period: Val = match max_prev {
        Some(_) => Val::Null,
        None => Val::Int(polled),
    };
    let mut globally_updated: Vec<u64> = Vec::new();
    let found_set: HashSet<usize> = found.iter().copied().collect();
    let mut report = Vec::new();

    for (pos, port) in ports.iter_mut().enumerate() {
        let port_id = port.row.port_id;
        if port.flag("disabled") {
            continue;
        }
        if !found_set.contains(&pos) {
            if !port.flag("deleted") && !deleted_now.contains(&pos) {
                port.set("deleted", Php::Int(1));
                p.changes.update(
                    "ports",
                    "port_id",
                    u64::from(port_id),
                    vec![("deleted", Val::Int(1))],
                );
            }
            continue;
        }
        let if_index = port.get("ifIndex").to_string();
        let Some(mut this) = stats.take(&if_index).map(polled_from) else {
            continue;
        };
        if this.is_empty() {
            continue;
        }
        let outcome = poll_port(
            p,
            port,
            &mut this,
            mode,
            polled,
            &global_poll_prev,
            &global_period,
        );
        match outcome {
            PortWrite::Row => report.push(port_id),
            PortWrite::Global => globally_updated.push(u64::from(port_id)),
        }
    }
    if !globally_updated.is_empty() {
        p.changes.push(TableChange::UpdateWhere {
            table: "ports",
            filters: vec![Filter::In(
                "port_id",
                globally_updated.into_iter().map(Val::UInt).collect(),
            )],
            set: vec![
                ("poll_time", Val::Int(polled)),
                ("poll_prev", coerce("ports", "poll_prev", &global_poll_prev)),
                ("poll_period", global_period),
            ],
        });
    }
    p.output.insert(
        "ports".into(),
        json!({
            "polled": found.len(),
            "in_database": ports.iter().filter(|x| !x.new).count(),
            "new": ports.iter().filter(|x| x.new).map(|x| x.row.port_id).collect::<Vec<_>>(),
            "deleted": ports.iter().filter(|x| x.flag("deleted")).map(|x| x.row.port_id).collect::<Vec<_>>(),
            "updated": report,
        }),
    );
    Ok(())
}

enum PortWrite {
    /// The port got its own UPDATE.
    Row,
    /// Only the device-wide poll times changed.
    Global,
}

#[allow(clippy::too_many_arguments)]
fn poll_port(
    p: &mut Poll<'_>,
    port: &mut Port,
    this: &mut PolledPort,
    mode: &str,
    polled: i64,
    global_poll_prev: &Php,
    global_period: &Val,
) -> PortWrite {
    let port_id = port.row.port_id;
    let if_index = port.get("ifIndex").to_string();
    let polled_period = (polled - port.get("poll_time").intval()).max(1);
    let mut update: Vec<(&'static str, Php)> = Vec::new();
    let mut extended: Vec<(&'static str, Php)> = Vec::new();

    // VMware vCenter names its devices in ifDescr.
    if p.device.os.as_deref() == Some("vmware-vcsa") {
        static DEVICE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
        let re =
            DEVICE.get_or_init(|| regex::Regex::new("Device ([a-z0-9]+) at .*").expect("valid"));
        let descr = val(this, "ifDescr").to_string();
        if let Some(c) = re.captures(&descr) {
            this.insert("ifName", Php::str(c[1].to_string()));
        }
    }

    if mode != "ifIndex" {
        update.push(("ifIndex", Php::Str(if_index.clone())));
    }
    if isset(this, "ifPhysAddress") {
        let mac = mac_hex(&val(this, "ifPhysAddress").to_string());
        this.insert("ifPhysAddress", Php::Str(mac));
    }
    for (hc, base) in HC_MAPPINGS {
        if isset(this, hc) && val(this, hc).truthy() {
            let v = val(this, hc);
            this.insert(base, v);
        }
    }
    // ifHighSpeed is signed on some Fortinet agents (LibreNMS's workaround).
    let os = p.device.os.as_deref().unwrap_or("");
    if matches!(os, "fortigate" | "fortisandbox")
        && isset(this, "ifHighSpeed")
        && php::loose_cmp(&val(this, "ifHighSpeed"), &Php::Int(2_147_483_647))
            == Some(std::cmp::Ordering::Greater)
    {
        this.insert("ifHighSpeed", Php::Null);
    }
    if isset(this, "ifHighSpeed") && val(this, "ifHighSpeed").is_numeric() {
        let hs = val(this, "ifHighSpeed");
        let speed = if loose_eq(&hs, &Php::str("0")) {
            Php::Int(0)
        } else {
            Php::Str(format!("{hs}000000"))
        };
        this.insert("ifSpeed", speed);
    } else if isset(this, "ifSpeed") && val(this, "ifSpeed").is_numeric() {
        // kept as polled
    } else {
        this.insert("ifSpeed", Php::Int(0));
    }
    if isset(this, "dot3StatsDuplexStatus") {
        let d = val(this, "dot3StatsDuplexStatus");
        this.insert("ifDuplex", d);
    }
    if isset(this, "ifLastChange") && val(this, "ifLastChange").is_numeric() {
        if val(this, "ifLastChange").intval() != port.get("ifLastChange").intval() {
            update.push(("ifLastChange", val(this, "ifLastChange")));
        }
    } else if !loose_eq(&port.get("ifLastChange"), &Php::Int(0)) {
        update.push(("ifLastChange", Php::Int(0)));
    }
    if isset(this, "vlanTrunkPortEncapsulationOperType")
        && !loose_eq(
            &val(this, "vlanTrunkPortEncapsulationOperType"),
            &Php::str("notApplicable"),
        )
    {
        let t = val(this, "vlanTrunkPortEncapsulationOperType");
        this.insert("ifTrunk", t);
        if isset(this, "vlanTrunkPortNativeVlan") {
            let v = val(this, "vlanTrunkPortNativeVlan");
            this.insert("ifVlan", v);
        }
    }
    if isset(this, "vmVlan") {
        let v = val(this, "vmVlan");
        this.insert("ifVlan", v);
    }
    if !isset(this, "ifVlan") && isset(this, "dot1qPvid") {
        let v = val(this, "dot1qPvid");
        this.insert("ifVlan", v);
    }
    if isset(this, "ifConnectorPresent") {
        let c = val(this, "ifConnectorPresent");
        if !(loose_eq(&c, &Php::str("true")) || loose_eq(&c, &Php::str("false"))) {
            this.insert("ifConnectorPresent", Php::Null);
        }
    }
    let alias_overridden = fill_missing_and_trim(this, &p.state.attribs, &port.get("ifName"));

    let port_name = port.get("ifName").to_string();
    for oid in DATA_OIDS {
        let mut current = val(this, oid);
        if oid == "ifAlias" {
            current = match p.state.attribs.get(&format!("ifName:{port_name}")) {
                Some("1") => port.get("ifAlias"),
                Some(v) => Php::str(v),
                None if alias_overridden => port.get("ifAlias"),
                None => val(this, "ifAlias"),
            };
        }
        if oid == "ifSpeed"
            && let Some(v) = p.state.attribs.get(&format!("ifSpeed:{port_name}"))
        {
            current = Php::str(v);
        }
        let old = port.get(oid);
        if !loose_eq(&old, &current) && current.is_null() {
            update.push((oid, Php::Null));
            p.event(
                format!("{oid}: {old} -> NULL"),
                "interface",
                severity::WARNING,
                Some(port_id.to_string()),
            );
        } else if !loose_eq(&old, &current) {
            update.push((oid, current.clone()));
            this.insert(oid, current.clone());
            if matches!(oid, "ifOperStatus" | "ifAdminStatus" | "ifSpeed") {
                update.push((prev_column(oid), old.clone()));
            }
            let (o, n) = if oid == "ifSpeed" {
                (si_speed(&old), si_speed(&current))
            } else {
                (old.to_string(), current.to_string())
            };
            p.event(
                format!("{oid}: {o} -> {n}"),
                "interface",
                severity::NOTICE,
                Some(port_id.to_string()),
            );
        } else if matches!(oid, "ifOperStatus" | "ifAdminStatus" | "ifSpeed")
            && loose_eq(&port.get(prev_column(oid)), &Php::Null)
        {
            update.push((prev_column(oid), current.clone()));
        }
    }

    // LibreNMS's default port description parser (`type: descr [speed]
    // {circuit} (notes)`).
    let parsed = parse_description(&val(this, "ifAlias").to_string());
    for (attrib, value) in [
        ("type", parsed.as_ref().map(|d| d.kind.clone())),
        ("descr", parsed.as_ref().map(|d| d.descr.clone())),
        ("circuit", parsed.as_ref().map(|d| d.circuit.clone())),
        ("speed", parsed.as_ref().map(|d| d.speed.clone())),
        ("notes", parsed.as_ref().map(|d| d.notes.clone())),
    ] {
        let column = descr_column(attrib);
        let new = value.map_or(Php::Null, Php::Str);
        let old = port.get(column);
        if !loose_eq(&new, &old) {
            update.push((column, new.clone()));
            let shown = if new.is_null() {
                "NULL".to_string()
            } else {
                new.to_string()
            };
            p.event(
                format!("{attrib}: {old} -> {shown}"),
                "interface",
                severity::NOTICE,
                Some(port_id.to_string()),
            );
        }
    }

    let adsl = matches!(port.get("ifType").to_string().as_str(), "vdsl" | "adsl");
    let down = |v: &Php| loose_eq(v, &Php::str("down"));
    let still_down = !adsl
        && down(&port.get("ifOperStatus"))
        && down(&port.get("ifOperStatus_prev"))
        && down(&val(this, "ifOperStatus"))
        && loose_eq(&val(this, "ifLastChange"), &port.get("ifLastChange"));
    let counted = !port.skipped && !still_down;
    if counted {
        for (i, c) in COUNTERS.iter().enumerate() {
            let target = if i < DB_COUNTERS {
                &mut update
            } else {
                &mut extended
            };
            let current = val(this, c.oid);
            let current = if current.is_null() {
                Php::Int(0)
            } else {
                current
            };
            target.push((c.oid, set_numeric(&current)));
            let previous = port.get(c.oid);
            target.push((c.prev, set_numeric(&previous)));
            if !previous.is_null() {
                let mut diff = current.intval().saturating_sub(previous.intval());
                let mut rate = diff as f64 / polled_period as f64;
                if rate < 0.0 {
                    rate = 0.0;
                    diff = 0;
                }
                target.push((c.rate, Php::Float(rate)));
                target.push((c.delta, Php::Int(diff)));
            }
        }
        let values = RRD_FIELDS
            .iter()
            .map(|f| Datum::parse(&val(this, f).to_string()))
            .collect();
        p.rrd(&[&format!("port-id{port_id}")], &PORT, values);

        // PAgP: the mode is stored (and logged) when it or the stored one is
        // set and they differ.
        let pagp = val(this, "pagpOperationMode");
        let stored = port.get("pagpOperationMode");
        if (pagp.truthy() || stored.truthy()) && !loose_eq(&pagp, &stored) {
            p.event(
                format!("pagpOperationMode -> {pagp}"),
                "interface",
                severity::NOTICE,
                Some(port_id.to_string()),
            );
            update.push(("pagpOperationMode", pagp));
        }

        if isset(this, "cieIfInRuntsErrs") {
            let values = CIE_OIDS
                .iter()
                .map(|oid| Datum::parse(&val(this, oid).to_string()))
                .collect();
            p.rrd(&[&format!("port-id{port_id}"), "cie"], &PORT_CIE, values);
        }
    }

    let poll_time = port.get("poll_time");
    if !update.is_empty() || !loose_eq(global_poll_prev, &poll_time) {
        update.push(("poll_time", Php::Int(polled)));
        update.push(("poll_prev", poll_time.clone()));
        update.push(("poll_period", Php::Int(polled_period)));
        p.changes
            .push(full_row("ports", port, &update, port_shape(counted)));
        if !extended.is_empty() {
            p.changes.push(full_row(
                "ports_statistics",
                port,
                &extended,
                statistics_shape(),
            ));
        }
        PortWrite::Row
    } else {
        let _ = global_period;
        PortWrite::Global
    }
}

/// Selected-port polling: GETs per port instead of table walks.
async fn fetch_selected(
    p: &mut Poll<'_>,
    snmp: &dyn super::SnmpSource,
    ports: &mut [Port],
    stats: &mut Rows,
) -> Result<(), ModuleError> {
    let total = ports.len();
    let polled: Vec<usize> = (0..ports.len())
        .filter(|i| !(ports[*i].flag("deleted") || ports[*i].flag("disabled")))
        .collect();
    // Set per device: no guessing. LibreNMS guesses only for the global
    // setting, which ironpoll does not read.
    let walk_base = false;
    let _ = total;
    for i in polled {
        let if_index = ports[i].get("ifIndex").to_string();
        stats.set(&if_index, "ifType", ports[i].get("ifType").to_string());
        let db_row: PolledPort = ["ifDescr", "ifName", "ifAlias", "ifType", "ifOperStatus"]
            .into_iter()
            .map(|k| (k, ports[i].get(k)))
            .collect();
        if !is_port_valid(
            &db_row,
            &p.settings
                .port_filters(p.device.os.as_deref().unwrap_or("")),
        ) {
            continue;
        }
        if !walk_base {
            let mut base = Rows::default();
            for col in TABLE_BASE_OIDS {
                let (t, c) = if IF_X_ENTRY.column(col).is_some() {
                    (&IF_X_ENTRY, col)
                } else {
                    (&IF_ENTRY, col)
                };
                table::get_columns(snmp, t, &[c], &if_index, &mut base).await?;
            }
            if let Some(row) = base.get(&if_index) {
                for (k, v) in row.iter() {
                    stats.set(&if_index, k, v);
                }
            }
        }
        let row = stats.get(&if_index).cloned().unwrap_or_default();
        let now = |c: &str| row.get(c);
        let admin_down = ports[i].get("ifAdminStatus_prev") == Php::str("down")
            && now("ifAdminStatus") == Some("down");
        let oper_down = ports[i].get("ifOperStatus_prev") == Php::str("down")
            && now("ifOperStatus") == Some("down");
        let ll_down = ports[i].get("ifOperStatus_prev") == Php::str("lowerLayerDown")
            && now("ifOperStatus") == Some("lowerLayerDown");
        if admin_down || oper_down || ll_down {
            ports[i].skipped = true;
            continue;
        }
        let hc = row
            .get("ifHighSpeed")
            .is_some_and(|v| php::is_numeric(v) && php::intval(v) > 0);
        let full: Vec<&str> = if hc {
            HC_OIDS.iter().chain(SHARED_OIDS.iter()).copied().collect()
        } else {
            NON_HC_OIDS
                .iter()
                .chain(SHARED_OIDS.iter())
                .copied()
                .collect()
        };
        let (x_cols, cols): (Vec<&str>, Vec<&str>) = full
            .into_iter()
            .partition(|c| IF_X_ENTRY.column(c).is_some());
        table::get_columns(snmp, &IF_X_ENTRY, &x_cols, &if_index, stats).await?;
        table::get_columns(snmp, &IF_ENTRY, &cols, &if_index, stats).await?;
        table::get_columns(
            snmp,
            &DOT3_STATS_ENTRY,
            &["dot3StatsIndex", "dot3StatsDuplexStatus"],
            &if_index,
            stats,
        )
        .await?;
        if p.device.os.as_deref() != Some("asa") {
            table::get_columns(
                snmp,
                &DOT1Q_PORT_VLAN_ENTRY,
                &["dot1qPvid"],
                &if_index,
                stats,
            )
            .await?;
        }
    }
    Ok(())
}

fn prev_column(oid: &str) -> &'static str {
    match oid {
        "ifOperStatus" => "ifOperStatus_prev",
        "ifAdminStatus" => "ifAdminStatus_prev",
        _ => "ifSpeed_prev",
    }
}

fn descr_column(attrib: &str) -> &'static str {
    match attrib {
        "type" => "port_descr_type",
        "descr" => "port_descr_descr",
        "circuit" => "port_descr_circuit",
        "speed" => "port_descr_speed",
        _ => "port_descr_notes",
    }
}

/// LibreNMS's association modes (`devices.port_association_mode`).
fn association_mode(id: i64, default: &str) -> &'static str {
    match id {
        1 => "ifIndex",
        2 => "ifName",
        3 => "ifDescr",
        4 => "ifAlias",
        _ => match default {
            "ifName" => "ifName",
            "ifDescr" => "ifDescr",
            "ifAlias" => "ifAlias",
            _ => "ifIndex",
        },
    }
}

/// PHP's `set_numeric`: a number stays, anything else becomes 0.
fn set_numeric(v: &Php) -> Php {
    if v.is_numeric() {
        v.clone()
    } else {
        Php::Int(0)
    }
}

fn si_speed(v: &Php) -> String {
    let n = match v {
        Php::Null => 0.0,
        other => php::numeric_value(&other.to_string()).map_or(0.0, |n| match n {
            Php::Int(i) => i as f64,
            Php::Float(f) => f,
            _ => 0.0,
        }),
    };
    format::format_si(n, 2, "bps")
}

/// LibreNMS's `Mac::parse($mac)->hex()`: twelve hex digits, or empty when
/// the text is not a MAC address.
pub fn mac_hex(text: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            "^([0-9a-f]{1,2})[-:.]?([0-9a-f]{1,2})[-:.]?([0-9a-f]{1,2})[-:.]?([0-9a-f]{1,2})[-:.]?([0-9a-f]{1,2})[-:.]?([0-9a-f]{1,2})$",
        )
        .expect("valid pattern")
    });
    let mac = php::trim(&text.to_ascii_lowercase()).replace(' ', ":");
    let Some(caps) = re.captures(&mac) else {
        return String::new();
    };
    // Without delimiters a MAC must have all twelve digits.
    if mac.len() <= 11 && mac.bytes().all(|b| b.is_ascii_hexdigit()) {
        return String::new();
    }
    (1..=6).map(|i| format!("{:0>2}", &caps[i])).collect()
}

/// LibreNMS's `is_port_valid` on a polled row, with its OS's filters.
fn is_port_valid(row: &PolledPort, f: &PortFilters) -> bool {
    let text = |k: &str| match row.get(k) {
        Some(Php::Null) | None => String::new(),
        Some(v) => v.to_string(),
    };
    let descr = row.get("ifDescr").cloned().unwrap_or(Php::Null);
    if descr.empty() {
        let alias = row.get("ifAlias").cloned().unwrap_or(Php::Null);
        let name = row.get("ifName").cloned().unwrap_or(Php::Null);
        if alias.empty() && name.empty() {
            return false;
        }
        if !f.empty_ifdescr {
            return false;
        }
    }
    let if_descr = text("ifDescr");
    let if_name = text("ifName");
    let if_alias = text("ifAlias");
    let if_type = text("ifType");
    let oper = text("ifOperStatus");
    let lower = if_descr.to_lowercase();
    if f.good_if
        .iter()
        .any(|g| !g.is_empty() && lower.contains(&g.to_lowercase()))
    {
        return true;
    }
    if f.bad_if
        .iter()
        .any(|b| !b.is_empty() && lower.contains(&b.to_lowercase()))
    {
        return false;
    }
    let matches =
        |patterns: &[php::Regex], subject: &str| patterns.iter().any(|re| re.is_match(subject));
    if matches(&f.bad_if_regexp, &if_descr)
        || matches(&f.bad_ifname_regexp, &if_name)
        || matches(&f.bad_ifalias_regexp, &if_alias)
    {
        return false;
    }
    if f.bad_iftype
        .iter()
        .any(|t| !t.is_empty() && if_type.contains(t.as_str()))
    {
        return false;
    }
    if f.bad_ifoperstatus
        .iter()
        .any(|s| !s.is_empty() && oper.contains(s.as_str()))
    {
        return false;
    }
    true
}

/// LibreNMS's `port_fill_missing_and_trim`: trims names, fills an empty
/// ifDescr from ifName, ifAlias from ifDescr, ifName from ifDescr. Returns
/// whether ifAlias is overridden by the `ifName:<name>` attribute.
fn fill_missing_and_trim(
    this: &mut PolledPort,
    attribs: &crate::device::Attribs,
    _db_name: &Php,
) -> bool {
    for k in ["ifDescr", "ifAlias", "ifName"] {
        let v = match this.get(k) {
            Some(Php::Null) | None => Php::Null,
            Some(v) => Php::str(php::trim(&v.to_string())),
        };
        this.insert(k, v);
    }
    let empty = |p: &PolledPort, k: &str| match p.get(k) {
        Some(Php::Null) | None => true,
        Some(v) => v.to_string().is_empty(),
    };
    if empty(this, "ifDescr") {
        let v = val(this, "ifName");
        this.insert("ifDescr", v);
    }
    let name = val(this, "ifName").to_string();
    let overridden = attribs
        .get(&format!("ifName:{name}"))
        .is_some_and(|v| Php::str(v).truthy());
    if overridden {
        this.remove("ifAlias");
    } else if empty(this, "ifAlias") {
        let v = val(this, "ifDescr");
        this.insert("ifAlias", v);
    }
    if empty(this, "ifName") {
        let v = val(this, "ifDescr");
        this.insert("ifName", v);
    }
    overridden
}

/// A description in LibreNMS's classic scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    pub kind: String,
    pub descr: String,
    pub circuit: String,
    pub speed: String,
    pub notes: String,
}

/// LibreNMS's default `port-descr-parser`: `Type: description [speed]
/// {circuit} (notes)`.
pub fn parse_description(alias: &str) -> Option<Description> {
    let split: Vec<&str> = alias.split([':', '[', ']', '{', '}', '(', ')']).collect();
    let kind = split.first().map(|s| php::trim(s)).unwrap_or("");
    let descr = split.get(1).map(|s| php::trim(s)).unwrap_or("");
    if !Php::str(kind).truthy() || !Php::str(descr).truthy() {
        return None;
    }
    let between = |seps: &[char]| {
        alias
            .split(seps)
            .nth(1)
            .map(|s| php::trim(s).to_string())
            .unwrap_or_default()
    };
    let speed = between(&['[', ']']);
    Some(Description {
        kind: kind.to_lowercase(),
        descr: descr.to_string(),
        circuit: between(&['{', '}']),
        speed,
        notes: between(&['(', ')']),
    })
}

/// A port's row in `shape`: the poll's value for a column it set (the last
/// one, as in PHP's array), else the value the row has.
fn full_row(
    table: &'static str,
    port: &Port,
    set: &[(&'static str, Php)],
    shape: &[&'static str],
) -> TableChange {
    // Later entries win, as in PHP's array.
    let latest: FxHashMap<&str, &Php> = set.iter().map(|(k, v)| (*k, v)).collect();
    let cols = PackedRow::pack(shape.iter().map(|c| {
        let v = match latest.get(c) {
            Some(v) => coerce(table, c, v),
            None => coerce(table, c, port.row.get(c)),
        };
        (*c, v)
    }));
    TableChange::Update {
        table,
        key: "port_id",
        row: RowUpdate {
            key: u64::from(port.row.port_id),
            cols,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_normalise_like_librenms() {
        assert_eq!(mac_hex("0:21:5e:18:98:a1"), "00215e1898a1");
        assert_eq!(mac_hex("00-12-34-AB-CD-EF"), "001234abcdef");
        assert_eq!(mac_hex("0012.34ab.cdef"), "001234abcdef");
        assert_eq!(mac_hex("001234abcdef"), "001234abcdef");
        assert_eq!(mac_hex(""), "");
        assert_eq!(mac_hex("0:1:2:3:4:5:6:7"), "");
        assert_eq!(mac_hex("12345"), "");
    }

    #[test]
    fn descriptions_parse_in_the_classic_scheme() {
        let d = parse_description("Cust: Acme Corp [10Mbit] {CIR-123} (backup link)").unwrap();
        assert_eq!(d.kind, "cust");
        assert_eq!(d.descr, "Acme Corp");
        assert_eq!(d.speed, "10Mbit");
        assert_eq!(d.circuit, "CIR-123");
        assert_eq!(d.notes, "backup link");
        let d = parse_description("LAN port (eth0)").unwrap();
        assert_eq!(
            (d.kind.as_str(), d.descr.as_str(), d.notes.as_str()),
            ("lan port", "eth0", "eth0")
        );
        assert!(parse_description("GigabitEthernet0/1").is_none());
        assert!(parse_description("").is_none());
    }
}
