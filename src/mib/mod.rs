//! The project's own MIB knowledge: the objects ironpoll polls, their OIDs
//! and syntaxes, and how net-snmp prints their values.
//!
//! LibreNMS reads SNMP through net-snmp's command-line tools with MIBs
//! loaded (`-OQUs`), so what lands in its database is net-snmp's text:
//! enumeration names (`up`, `ethernetCsmacd`), display hints
//! (`0:21:5e:18:98:a1` for a PhysAddress). [`render`] produces that text from
//! a decoded value so that ironpoll stores the same strings.

pub mod data;
mod iana_if_type;

use crate::snmp::{Oid, Value};

/// How an object's value is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// INTEGER, Integer32, Unsigned32: the number.
    Integer,
    /// An enumerated INTEGER: the label, or the number when not listed.
    Enum(&'static [(i64, &'static str)]),
    /// IANAifType.
    IfType,
    /// DisplayString and SnmpAdminString: the bytes as text.
    DisplayString,
    /// PhysAddress (display hint `1x:`).
    PhysAddress,
    /// An OCTET STRING without a display hint: text when printable, else hex.
    OctetString,
    Counter,
    Gauge,
    TimeTicks,
    ObjectId,
}

pub const TRUTH_VALUE: &[(i64, &str)] = &[(1, "true"), (2, "false")];
pub const IF_ADMIN_STATUS: &[(i64, &str)] = &[(1, "up"), (2, "down"), (3, "testing")];
pub const IF_OPER_STATUS: &[(i64, &str)] = &[
    (1, "up"),
    (2, "down"),
    (3, "testing"),
    (4, "unknown"),
    (5, "dormant"),
    (6, "notPresent"),
    (7, "lowerLayerDown"),
];
pub const DUPLEX_STATUS: &[(i64, &str)] = &[(1, "unknown"), (2, "halfDuplex"), (3, "fullDuplex")];
pub const ENABLED_DISABLED: &[(i64, &str)] = &[(1, "enabled"), (2, "disabled")];
pub const TRUNK_ENCAPSULATION: &[(i64, &str)] = &[
    (1, "isl"),
    (2, "dot10"),
    (3, "lane"),
    (4, "dot1Q"),
    (5, "negotiate"),
    (6, "notApplicable"),
];

/// One column of a conceptual table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub sub_id: u32,
    pub syntax: Syntax,
}

/// A table entry (`ifEntry`): the OID its columns hang below.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub entry: &'static [u32],
    pub columns: &'static [Column],
}

impl Table {
    pub fn entry_oid(&self) -> Oid {
        Oid::from_slice(self.entry)
    }

    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn column_oid(&self, column: &Column) -> Oid {
        let mut arcs = self.entry.to_vec();
        arcs.push(column.sub_id);
        Oid::from_slice(&arcs)
    }

    /// The column and the index (dotted) of an OID below this entry.
    pub fn locate(&self, oid: &Oid) -> Option<(&'static Column, String)> {
        let arcs = oid.arcs();
        if arcs.len() < self.entry.len() + 2 || !arcs.starts_with(self.entry) {
            return None;
        }
        let sub_id = arcs[self.entry.len()];
        let column = self.columns.iter().find(|c| c.sub_id == sub_id)?;
        Some((column, dotted(&arcs[self.entry.len() + 1..])))
    }
}

/// Arcs as dotted text (`1.5`, a row's index as LibreNMS keys it). Every
/// walked varbind needs one, so digits come from itoa, not `write!`.
pub fn dotted(arcs: &[u32]) -> String {
    let mut text = String::with_capacity(arcs.len() * 4);
    let mut digits = itoa::Buffer::new();
    for (i, &arc) in arcs.iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        text.push_str(digits.format(arc));
    }
    text
}

macro_rules! col {
    ($name:literal, $id:literal, $syntax:expr) => {
        Column {
            name: $name,
            sub_id: $id,
            syntax: $syntax,
        }
    };
}

/// IF-MIB::ifEntry (RFC 2863).
pub static IF_ENTRY: Table = Table {
    name: "ifEntry",
    entry: &[1, 3, 6, 1, 2, 1, 2, 2, 1],
    columns: &[
        col!("ifIndex", 1, Syntax::Integer),
        col!("ifDescr", 2, Syntax::DisplayString),
        col!("ifType", 3, Syntax::IfType),
        col!("ifMtu", 4, Syntax::Integer),
        col!("ifSpeed", 5, Syntax::Gauge),
        col!("ifPhysAddress", 6, Syntax::PhysAddress),
        col!("ifAdminStatus", 7, Syntax::Enum(IF_ADMIN_STATUS)),
        col!("ifOperStatus", 8, Syntax::Enum(IF_OPER_STATUS)),
        col!("ifLastChange", 9, Syntax::TimeTicks),
        col!("ifInOctets", 10, Syntax::Counter),
        col!("ifInUcastPkts", 11, Syntax::Counter),
        col!("ifInNUcastPkts", 12, Syntax::Counter),
        col!("ifInDiscards", 13, Syntax::Counter),
        col!("ifInErrors", 14, Syntax::Counter),
        col!("ifInUnknownProtos", 15, Syntax::Counter),
        col!("ifOutOctets", 16, Syntax::Counter),
        col!("ifOutUcastPkts", 17, Syntax::Counter),
        col!("ifOutNUcastPkts", 18, Syntax::Counter),
        col!("ifOutDiscards", 19, Syntax::Counter),
        col!("ifOutErrors", 20, Syntax::Counter),
        col!("ifOutQLen", 21, Syntax::Gauge),
        col!("ifSpecific", 22, Syntax::ObjectId),
    ],
};

/// IF-MIB::ifXEntry (RFC 2863).
pub static IF_X_ENTRY: Table = Table {
    name: "ifXEntry",
    entry: &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1],
    columns: &[
        col!("ifName", 1, Syntax::DisplayString),
        col!("ifInMulticastPkts", 2, Syntax::Counter),
        col!("ifInBroadcastPkts", 3, Syntax::Counter),
        col!("ifOutMulticastPkts", 4, Syntax::Counter),
        col!("ifOutBroadcastPkts", 5, Syntax::Counter),
        col!("ifHCInOctets", 6, Syntax::Counter),
        col!("ifHCInUcastPkts", 7, Syntax::Counter),
        col!("ifHCInMulticastPkts", 8, Syntax::Counter),
        col!("ifHCInBroadcastPkts", 9, Syntax::Counter),
        col!("ifHCOutOctets", 10, Syntax::Counter),
        col!("ifHCOutUcastPkts", 11, Syntax::Counter),
        col!("ifHCOutMulticastPkts", 12, Syntax::Counter),
        col!("ifHCOutBroadcastPkts", 13, Syntax::Counter),
        col!("ifLinkUpDownTrapEnable", 14, Syntax::Enum(ENABLED_DISABLED)),
        col!("ifHighSpeed", 15, Syntax::Gauge),
        col!("ifPromiscuousMode", 16, Syntax::Enum(TRUTH_VALUE)),
        col!("ifConnectorPresent", 17, Syntax::Enum(TRUTH_VALUE)),
        col!("ifAlias", 18, Syntax::DisplayString),
        col!("ifCounterDiscontinuityTime", 19, Syntax::TimeTicks),
    ],
};

/// EtherLike-MIB::dot3StatsEntry, the two columns the ports poller reads.
pub static DOT3_STATS_ENTRY: Table = Table {
    name: "dot3StatsEntry",
    entry: &[1, 3, 6, 1, 2, 1, 10, 7, 2, 1],
    columns: &[
        col!("dot3StatsIndex", 1, Syntax::Integer),
        col!("dot3StatsDuplexStatus", 19, Syntax::Enum(DUPLEX_STATUS)),
    ],
};

/// Q-BRIDGE-MIB::dot1qPortVlanEntry, its PVID column.
pub static DOT1Q_PORT_VLAN_ENTRY: Table = Table {
    name: "dot1qPortVlanEntry",
    entry: &[1, 3, 6, 1, 2, 1, 17, 7, 1, 4, 5, 1],
    columns: &[col!("dot1qPvid", 1, Syntax::Gauge)],
};

/// CISCO-VLAN-MEMBERSHIP-MIB::vmMembershipEntry, the access VLAN of a port.
pub static VM_MEMBERSHIP_ENTRY: Table = Table {
    name: "vmMembershipEntry",
    entry: &[1, 3, 6, 1, 4, 1, 9, 9, 68, 1, 2, 2, 1],
    columns: &[col!("vmVlan", 2, Syntax::Integer)],
};

/// CISCO-VTP-MIB::vlanTrunkPortEntry, a port's trunking.
pub static VLAN_TRUNK_PORT_ENTRY: Table = Table {
    name: "vlanTrunkPortEntry",
    entry: &[1, 3, 6, 1, 4, 1, 9, 9, 46, 1, 6, 1, 1],
    columns: &[
        col!("vlanTrunkPortNativeVlan", 5, Syntax::Integer),
        col!(
            "vlanTrunkPortEncapsulationOperType",
            16,
            Syntax::Enum(TRUNK_ENCAPSULATION)
        ),
    ],
};

/// CISCO-PAGP-MIB PagpOperationMode.
pub const PAGP_OPERATION_MODE: &[(i64, &str)] = &[
    (1, "desirable"),
    (2, "desirableSilent"),
    (3, "automatic"),
    (4, "automaticSilent"),
];

/// CISCO-PAGP-MIB::pagpProtocolConfigEntry, the PAgP mode of a port (the
/// only PAgP column LibreNMS's poller stores).
pub static PAGP_PROTOCOL_CONFIG_ENTRY: Table = Table {
    name: "pagpProtocolConfigEntry",
    entry: &[1, 3, 6, 1, 4, 1, 9, 9, 98, 1, 2, 1, 1],
    columns: &[col!(
        "pagpOperationMode",
        1,
        Syntax::Enum(PAGP_OPERATION_MODE)
    )],
};

/// CISCO-IF-EXTENSION-MIB::cieIfPacketStatsEntry, the error and drop
/// counters of IOS's `show interface`.
pub static CIE_IF_PACKET_STATS_ENTRY: Table = Table {
    name: "cieIfPacketStatsEntry",
    entry: &[1, 3, 6, 1, 4, 1, 9, 9, 276, 1, 1, 1, 1],
    columns: &[
        col!("cieIfInRuntsErrs", 4, Syntax::Counter),
        col!("cieIfInGiantsErrs", 5, Syntax::Counter),
        col!("cieIfInFramingErrs", 6, Syntax::Counter),
        col!("cieIfInOverrunErrs", 7, Syntax::Counter),
        col!("cieIfInIgnored", 8, Syntax::Counter),
        col!("cieIfInAbortErrs", 9, Syntax::Counter),
        col!("cieIfInputQueueDrops", 10, Syntax::Counter),
        col!("cieIfOutputQueueDrops", 11, Syntax::Counter),
    ],
};

/// SNMPv2-MIB system scalars and the uptimes the core module reads.
pub mod scalars {
    pub const SYS_DESCR: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 1, 0];
    pub const SYS_OBJECT_ID: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 2, 0];
    pub const SYS_UP_TIME: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 3, 0];
    pub const SYS_NAME: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 5, 0];
    /// SNMP-FRAMEWORK-MIB::snmpEngineTime.0 (seconds).
    pub const SNMP_ENGINE_TIME: &[u32] = &[1, 3, 6, 1, 6, 3, 10, 2, 1, 3, 0];
    /// HOST-RESOURCES-MIB::hrSystemUptime.0 (hundredths of a second).
    pub const HR_SYSTEM_UPTIME: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 1, 1, 0];
}

/// The OIDs of objects ironpoll knows by name (`ifEntry`, `IF-MIB::ifDescr`,
/// or numeric), for LibreNMS's per-OS OID lists; names of other MIBs are
/// left out (the modules that walk them are LibreNMS's PHP's).
pub fn oids_named(names: &[String]) -> Vec<Oid> {
    names
        .iter()
        .filter_map(|n| {
            let name = n.rsplit("::").next().unwrap_or(n).trim_start_matches('.');
            if let Ok(oid) = name.parse::<Oid>() {
                return Some(oid);
            }
            [&IF_ENTRY, &IF_X_ENTRY].into_iter().find_map(|t| {
                if t.name == name {
                    Some(t.entry_oid())
                } else {
                    t.column(name).map(|c| t.column_oid(c))
                }
            })
        })
        .collect()
}

/// net-snmp's text for a value of the given syntax, as printed with `-OQUs`
/// (and `-Ot` when `numeric_timeticks`), before LibreNMS's own clean-up.
/// Varbind exceptions have no text.
pub fn render(value: &Value, syntax: Syntax, numeric_timeticks: bool) -> Option<String> {
    Some(match (value, syntax) {
        (Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView, _) => return None,
        (Value::Integer(i), Syntax::Enum(labels)) => labels
            .iter()
            .find(|(n, _)| n == i)
            .map_or_else(|| i.to_string(), |(_, l)| l.to_string()),
        (Value::Integer(i), Syntax::IfType) => {
            iana_if_type::name(*i).map_or_else(|| i.to_string(), str::to_string)
        }
        (Value::OctetString(b), Syntax::DisplayString) => display_string(b),
        (Value::OctetString(b), Syntax::PhysAddress) => b
            .iter()
            .map(|x| format!("{x:x}"))
            .collect::<Vec<_>>()
            .join(":"),
        (Value::OctetString(b), _) => octet_string(b),
        (Value::Integer(i), _) => i.to_string(),
        (Value::Counter32(v) | Value::Gauge32(v), _) => v.to_string(),
        (Value::Counter64(v), _) => v.to_string(),
        (Value::TimeTicks(t), _) if numeric_timeticks => t.to_string(),
        (Value::TimeTicks(t), _) => timeticks(*t),
        (Value::IpAddress(a), _) => format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]),
        (Value::ObjectId(o), _) => format!(".{o}"),
        (Value::Null, _) => String::new(),
        (Value::Opaque(b) | Value::Other { bytes: b, .. }, _) => hex(b),
    })
}

/// A DisplayString as net-snmp prints it with the MIB's `255a` hint: every
/// byte that is neither printable nor white space becomes a dot.
pub fn display_string(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' || (b'\t'..=b'\r').contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

/// Bytes as text: UTF-8 when valid, else each byte as its Windows-1252
/// character (what LibreNMS's encoding guess settles on for Western text).
pub fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| cp1252(b)).collect(),
    }
}

fn cp1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9f => HIGH[(b - 0x80) as usize],
        _ => b as char,
    }
}

/// net-snmp's choice for an OCTET STRING without a hint: text when every
/// byte prints (a trailing NUL allowed), else `Hex-STRING` bytes.
fn octet_string(b: &[u8]) -> String {
    let body = b.strip_suffix(&[0]).unwrap_or(b);
    if body
        .iter()
        .all(|&c| c.is_ascii_graphic() || c.is_ascii_whitespace())
    {
        text(body)
    } else {
        hex(b)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// TimeTicks as net-snmp prints them without `-Ot`: `d:h:mm:ss.cc`.
fn timeticks(t: u32) -> String {
    let centis = t % 100;
    let secs = t / 100;
    format!(
        "{}:{}:{:02}:{:02}.{:02}",
        secs / 86_400,
        (secs / 3_600) % 24,
        (secs / 60) % 60,
        secs % 60,
        centis
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_as_net_snmp_prints_them() {
        let e = Syntax::Enum(IF_OPER_STATUS);
        assert_eq!(
            render(&Value::Integer(7), e, false).unwrap(),
            "lowerLayerDown"
        );
        assert_eq!(render(&Value::Integer(9), e, false).unwrap(), "9");
        assert_eq!(
            render(&Value::Integer(6), Syntax::IfType, false).unwrap(),
            "ethernetCsmacd"
        );
        assert_eq!(
            render(
                &Value::OctetString(vec![0, 0x21, 0x5e, 0x18, 0x98, 0xa1]),
                Syntax::PhysAddress,
                false
            )
            .unwrap(),
            "0:21:5e:18:98:a1"
        );
        assert_eq!(
            render(
                &Value::OctetString(vec![1, 2, 0xff]),
                Syntax::OctetString,
                false
            )
            .unwrap(),
            "01 02 FF"
        );
        assert_eq!(
            render(&Value::TimeTicks(12345), Syntax::TimeTicks, true).unwrap(),
            "12345"
        );
        assert_eq!(
            render(&Value::TimeTicks(9_006_103), Syntax::TimeTicks, false).unwrap(),
            "1:1:01:01.03"
        );
        assert!(render(&Value::NoSuchInstance, Syntax::Integer, false).is_none());
    }

    #[test]
    fn display_strings_show_dots_for_unprintable_bytes() {
        assert_eq!(display_string(b"ag\x01\x00\x00"), "ag...");
        assert_eq!(display_string(b"a\r\nb\tc"), "a\r\nb\tc");
        assert_eq!(display_string("café".as_bytes()), "caf..");
    }

    #[test]
    fn invalid_utf8_reads_as_windows_1252() {
        assert_eq!(text(b"caf\xe9"), "café");
        assert_eq!(text("café".as_bytes()), "café");
    }

    #[test]
    fn tables_locate_column_and_index() {
        let oid: Oid = "1.3.6.1.2.1.31.1.1.1.18.1001".parse().unwrap();
        let (col, index) = IF_X_ENTRY.locate(&oid).unwrap();
        assert_eq!(col.name, "ifAlias");
        assert_eq!(index, "1001");
        assert!(IF_ENTRY.locate(&oid).is_none());
    }
}
