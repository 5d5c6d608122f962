//! Varbinds printed the way net-snmp prints them with `-On` and no MIBs
//! loaded, so output of `ironpoll walk` can be compared with `snmpwalk -On`
//! line for line.

use std::fmt::Write;

use super::value::{Value, VarBind};

/// net-snmp prints an octet string as text when every byte is printable or
/// whitespace in the C locale (`isprint || isspace`).
pub fn is_printable(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) || (0x09..=0x0d).contains(&b))
}

/// `.OID = TYPE: value`, as `snmpwalk -On` prints it.
pub fn netsnmp_line(vb: &VarBind) -> String {
    let mut out = String::with_capacity(64);
    push_netsnmp_line(&mut out, vb);
    out
}

/// [`netsnmp_line`] appended to `out`, for a caller that reuses one buffer
/// across a walk.
pub fn push_netsnmp_line(out: &mut String, vb: &VarBind) {
    out.push('.');
    vb.oid.write_dotted(|s| out.push_str(s));
    out.push_str(" = ");
    write_value(out, &vb.value);
}

fn write_hex(out: &mut String, bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        // net-snmp breaks hex dumps into lines of 16 bytes.
        if i > 0 && i % 16 == 0 {
            out.push('\n');
        }
        let _ = write!(out, "{b:02X} ");
    }
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Integer(v) => push_number(out, "INTEGER: ", *v),
        Value::OctetString(b) if b.is_empty() => out.push_str("\"\""),
        Value::OctetString(b) if is_printable(b) => {
            out.push_str("STRING: \"");
            for &c in b.iter() {
                if c == b'"' || c == b'\\' {
                    out.push('\\');
                }
                out.push(c as char);
            }
            out.push('"');
        }
        Value::OctetString(b) => {
            out.push_str("Hex-STRING: ");
            write_hex(out, b);
        }
        Value::Null => out.push_str("NULL"),
        Value::ObjectId(o) => {
            out.push_str("OID: .");
            o.write_dotted(|s| out.push_str(s));
        }
        Value::IpAddress(a) => {
            let _ = write!(out, "IpAddress: {}.{}.{}.{}", a[0], a[1], a[2], a[3]);
        }
        Value::Counter32(v) => push_number(out, "Counter32: ", *v),
        Value::Gauge32(v) => push_number(out, "Gauge32: ", *v),
        Value::TimeTicks(v) => {
            let _ = write!(out, "Timeticks: ({v}) {}", timeticks_text(*v));
        }
        Value::Opaque(b) => {
            out.push_str("OPAQUE: ");
            write_hex(out, b);
        }
        Value::Counter64(v) => push_number(out, "Counter64: ", *v),
        Value::NoSuchObject => out.push_str("No Such Object available on this agent at this OID"),
        Value::NoSuchInstance => out.push_str("No Such Instance currently exists at this OID"),
        Value::EndOfMibView => out.push_str(
            "No more variables left in this MIB View (It is past the end of the MIB tree)",
        ),
        Value::Other { tag, bytes } => {
            let _ = write!(out, "Wrong Type (0x{tag:02X}): ");
            write_hex(out, bytes);
        }
    }
}

fn push_number(out: &mut String, label: &str, n: impl itoa::Integer) {
    out.push_str(label);
    out.push_str(itoa::Buffer::new().format(n));
}

/// `1 day, 2:03:04.05`, net-snmp's rendering of hundredths of a second.
pub fn timeticks_text(ticks: u32) -> String {
    let centis = ticks % 100;
    let secs = ticks / 100;
    let days = secs / 86_400;
    let h = (secs / 3600) % 24;
    let m = (secs / 60) % 60;
    let s = secs % 60;
    match days {
        0 => format!("{h}:{m:02}:{s:02}.{centis:02}"),
        1 => format!("1 day, {h}:{m:02}:{s:02}.{centis:02}"),
        d => format!("{d} days, {h}:{m:02}:{s:02}.{centis:02}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::oid::oid;

    #[test]
    fn prints_like_snmpwalk_on() {
        let line = |v| netsnmp_line(&VarBind::new(oid("1.3.6.1.2.1.1.3.0"), v));
        assert_eq!(
            line(Value::TimeTicks(105)),
            ".1.3.6.1.2.1.1.3.0 = Timeticks: (105) 0:00:01.05"
        );
        // snmpd 5.9.3 with `syslocation "Rack \"7\" \\ back"` answers these bytes,
        // and snmpwalk prints them so.
        assert_eq!(
            line(Value::OctetString(br#""Rack \"7\" \\ back""#.to_vec())),
            r#".1.3.6.1.2.1.1.3.0 = STRING: "\"Rack \\\"7\\\" \\\\ back\"""#
        );
        assert_eq!(
            line(Value::OctetString(vec![0x92, 0xb3, 0x7f, 0x4d, 0x5c, 0xf9])),
            ".1.3.6.1.2.1.1.3.0 = Hex-STRING: 92 B3 7F 4D 5C F9 "
        );
        assert_eq!(
            line(Value::OctetString(vec![])),
            ".1.3.6.1.2.1.1.3.0 = \"\""
        );
        assert_eq!(
            timeticks_text(8_640_000 * 2 + 366_105),
            "2 days, 1:01:01.05"
        );
    }
}
