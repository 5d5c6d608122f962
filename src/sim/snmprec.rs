//! The snmprec format of snmpsim: one `OID|TAG|VALUE` per line, OIDs numeric
//! without a leading dot.
//!
//! Tags: 2 Integer32, 4 OCTET STRING, 5 NULL, 6 OBJECT IDENTIFIER, 64 IpAddress,
//! 65 Counter32, 66 Gauge32, 67 TimeTicks, 68 Opaque, 70 Counter64. A suffix
//! `x` means the value is hex (`4x|00215e1898a1`), `e` means backslash escapes.
//!
//! Parsing is byte-based: recordings carry non-UTF-8 strings, CRLF line ends
//! and `|` inside values (only the first two `|` split a line).

use std::path::Path;

use crate::snmp::display::is_printable;
use crate::snmp::{Oid, Value, VarBind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct SnmprecError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

fn hex_decode(text: &[u8]) -> Option<Vec<u8>> {
    let text: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

/// Python-style backslash escapes, as snmpsim writes `e` values.
fn unescape(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let next = *text.get(i + 1)?;
        i += 2;
        match next {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'0' => out.push(0),
            b'\\' | b'\'' | b'"' => out.push(next),
            b'x' => {
                let hex = text.get(i..i + 2)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

fn parse_text<T: std::str::FromStr>(raw: &[u8]) -> Option<T> {
    std::str::from_utf8(raw).ok()?.trim().parse().ok()
}

/// Whitespace as snmpsim sees it: it decodes a line as ISO-8859-1 and
/// Python's `str.strip()` removes these from both ends, so a recorded value
/// never keeps trailing blanks (nor the CR of a CRLF file).
fn is_snmpsim_whitespace(b: u8) -> bool {
    matches!(
        b,
        b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x1c..=0x20 | 0x85 | 0xa0
    )
}

fn trim(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|&b| !is_snmpsim_whitespace(b))
        .unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|&b| !is_snmpsim_whitespace(b))
        .map_or(start, |i| i + 1);
    &line[start..end]
}

/// Parses one value of a line.
pub fn parse_value(tag: &[u8], raw: &[u8]) -> Result<Value, String> {
    let (base, mode) = match tag.last() {
        Some(b'x') => (&tag[..tag.len() - 1], Some(b'x')),
        Some(b'e') => (&tag[..tag.len() - 1], Some(b'e')),
        _ => (tag, None),
    };
    let bytes = || -> Result<Vec<u8>, String> {
        match mode {
            Some(b'x') => hex_decode(raw).ok_or_else(|| "bad hex value".to_string()),
            Some(b'e') => unescape(raw).ok_or_else(|| "bad escaped value".to_string()),
            _ => Ok(raw.to_vec()),
        }
    };
    let number = |what: &str| format!("bad {what} value {:?}", String::from_utf8_lossy(raw));
    let tag_text = std::str::from_utf8(base).map_err(|_| "non-ASCII tag".to_string())?;
    Ok(match tag_text {
        "2" => Value::Integer(parse_text(raw).ok_or_else(|| number("Integer32"))?),
        "4" => Value::OctetString(bytes()?),
        "5" => Value::Null,
        "6" => {
            let text = String::from_utf8(bytes()?).map_err(|_| "non-ASCII OID".to_string())?;
            let oid: Oid = text
                .trim()
                .parse()
                .map_err(|e: crate::snmp::oid::ParseOidError| e.to_string())?;
            // BER has no one-arc OID value; "0" would go out as 0.0.
            if oid.len() < 2 {
                return Err(format!("OID value {text:?} has fewer than two arcs"));
            }
            Value::ObjectId(oid)
        }
        "64" => {
            let b = if mode == Some(b'x') {
                bytes()?
            } else {
                let text = std::str::from_utf8(raw).map_err(|_| number("IpAddress"))?;
                let ip: std::net::Ipv4Addr =
                    text.trim().parse().map_err(|_| number("IpAddress"))?;
                ip.octets().to_vec()
            };
            let a: [u8; 4] = b.try_into().map_err(|_| number("IpAddress"))?;
            Value::IpAddress(a)
        }
        "65" => Value::Counter32(parse_text(raw).ok_or_else(|| number("Counter32"))?),
        "66" => Value::Gauge32(parse_text(raw).ok_or_else(|| number("Gauge32"))?),
        "67" => Value::TimeTicks(parse_text(raw).ok_or_else(|| number("TimeTicks"))?),
        "68" => Value::Opaque(bytes()?),
        "70" => Value::Counter64(parse_text(raw).ok_or_else(|| number("Counter64"))?),
        other => return Err(format!("unsupported tag {other:?}")),
    })
}

/// A parsed recording: its varbinds sorted by OID, and the lines that could
/// not be read (skipped, so one bad record does not cost the others).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recording {
    pub varbinds: Vec<VarBind>,
    pub skipped: Vec<SnmprecError>,
}

/// Parses a whole recording. A repeated OID keeps its last value.
pub fn parse(file: &str, data: &[u8]) -> Recording {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (i, raw_line) in data.split(|&b| b == b'\n').enumerate() {
        let line = trim(raw_line);
        if line.is_empty() || line.first() == Some(&b'#') {
            continue;
        }
        match parse_line(line) {
            Ok(vb) => out.push(vb),
            Err(reason) => skipped.push(SnmprecError {
                file: file.to_string(),
                line: i + 1,
                reason,
            }),
        }
    }
    out.sort_by(|a, b| a.oid.cmp(&b.oid));
    // Keep the last of duplicates, as a later line overrides an earlier one.
    let mut varbinds: Vec<VarBind> = Vec::with_capacity(out.len());
    for vb in out {
        match varbinds.last_mut() {
            Some(last) if last.oid == vb.oid => *last = vb,
            _ => varbinds.push(vb),
        }
    }
    Recording { varbinds, skipped }
}

fn parse_line(line: &[u8]) -> Result<VarBind, String> {
    let mut parts = line.splitn(3, |&b| b == b'|');
    let (Some(oid_raw), Some(tag), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("expected OID|TAG|VALUE".into());
    };
    let oid_text = std::str::from_utf8(oid_raw).map_err(|_| "non-ASCII OID".to_string())?;
    let oid: Oid = oid_text
        .trim()
        .parse()
        .map_err(|e: crate::snmp::oid::ParseOidError| e.to_string())?;
    Ok(VarBind::new(oid, parse_value(tag, value)?))
}

/// Reads and parses a recording file; only an unreadable file is an error.
pub fn parse_file(path: &Path) -> Result<Recording, SnmprecError> {
    let name = path.display().to_string();
    let data = std::fs::read(path).map_err(|e| SnmprecError {
        file: name.clone(),
        line: 0,
        reason: e.to_string(),
    })?;
    Ok(parse(&name, &data))
}

fn hex_encode(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// One snmprec line (without the newline) for a varbind, or `None` for the
/// exceptions, which a recording does not hold.
pub fn format_line(vb: &VarBind) -> Option<Vec<u8>> {
    let mut line = Vec::with_capacity(48);
    push_line(&mut line, vb).then_some(line)
}

/// [`format_line`] appended to `out`, without its line end, for a caller
/// that writes a whole recording into one buffer; false (and nothing
/// appended) for an exception, which has no snmprec form.
pub fn push_line(out: &mut Vec<u8>, vb: &VarBind) -> bool {
    use std::io::Write as _;
    let number = |out: &mut Vec<u8>, tag: &[u8], n: u64| {
        out.extend_from_slice(tag);
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    };
    let start = out.len();
    vb.oid.write_dotted(|s| out.extend_from_slice(s.as_bytes()));
    out.push(b'|');
    match &vb.value {
        Value::Integer(v) => {
            out.extend_from_slice(b"2|");
            out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes());
        }
        // Text is kept readable; anything a line could not carry (line ends,
        // non-printable bytes) goes as hex.
        Value::OctetString(b)
            if is_printable(b)
                && !b.iter().any(|&c| matches!(c, b'\n' | b'\r' | 0x0b | 0x0c))
                && !b.last().is_some_and(|&c| is_snmpsim_whitespace(c)) =>
        {
            out.extend_from_slice(b"4|");
            out.extend_from_slice(b);
        }
        Value::OctetString(b) => {
            out.extend_from_slice(b"4x|");
            out.extend_from_slice(hex_encode(b).as_bytes());
        }
        Value::Null => out.extend_from_slice(b"5|"),
        Value::ObjectId(o) => {
            let _ = write!(out, "6|{o}");
        }
        Value::IpAddress(a) => {
            let _ = write!(out, "64|{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
        }
        Value::Counter32(v) => number(out, b"65|", u64::from(*v)),
        Value::Gauge32(v) => number(out, b"66|", u64::from(*v)),
        Value::TimeTicks(v) => number(out, b"67|", u64::from(*v)),
        Value::Opaque(b) => {
            out.extend_from_slice(b"68x|");
            out.extend_from_slice(hex_encode(b).as_bytes());
        }
        Value::Counter64(v) => number(out, b"70|", *v),
        Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView | Value::Other { .. } => {
            out.truncate(start);
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::oid;

    #[test]
    fn parses_every_tag_and_the_quirks_of_real_recordings() {
        let data = b"1.3.6.1.2.1.1.1.0|4|Linux box|with pipe\r\n\
1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.8072.3.2.10\r\n\
\r\n\
1.3.6.1.2.1.1.3.0|67|646753272\n\
1.3.6.1.2.1.2.2.1.6.1|4x|00215E1898A1\n\
1.3.6.1.2.1.2.2.1.6.2|4|\n\
1.3.6.1.2.1.4.20.1.1.10.0.0.1|64x|0a000001\n\
1.3.6.1.2.1.4.20.1.2.10.0.0.1|64|10.0.0.1\n\
1.3.6.1.2.1.2.2.1.10.1|65|4294967295\n\
1.3.6.1.2.1.2.2.1.5.1|66|1000000000\n\
1.3.6.1.2.1.31.1.1.1.6.1|70|18446744073709551615\n\
1.3.6.1.2.1.2.2.1.1.1|2|-5\n\
1.3.6.1.4.1.1.1|4e|a\\nb\\x00\n\
1.3.6.1.4.1.1.2|5|\n\
1.3.6.1.4.1.1.3|4| padded \xa0\t\r\n";
        let rec = parse("t", data);
        assert_eq!(rec.skipped, vec![]);
        let vbs = rec.varbinds;
        let get = |o: &str| vbs.iter().find(|v| v.oid == oid(o)).unwrap().value.clone();
        assert_eq!(
            get("1.3.6.1.2.1.1.1.0"),
            Value::OctetString(b"Linux box|with pipe".to_vec())
        );
        assert_eq!(get("1.3.6.1.2.1.1.3.0"), Value::TimeTicks(646753272));
        assert_eq!(
            get("1.3.6.1.2.1.2.2.1.6.1"),
            Value::OctetString(vec![0, 0x21, 0x5e, 0x18, 0x98, 0xa1])
        );
        assert_eq!(get("1.3.6.1.2.1.2.2.1.6.2"), Value::OctetString(vec![]));
        assert_eq!(
            get("1.3.6.1.2.1.4.20.1.1.10.0.0.1"),
            Value::IpAddress([10, 0, 0, 1])
        );
        assert_eq!(
            get("1.3.6.1.2.1.4.20.1.2.10.0.0.1"),
            Value::IpAddress([10, 0, 0, 1])
        );
        assert_eq!(get("1.3.6.1.2.1.31.1.1.1.6.1"), Value::Counter64(u64::MAX));
        assert_eq!(
            get("1.3.6.1.4.1.1.1"),
            Value::OctetString(b"a\nb\0".to_vec())
        );
        assert_eq!(get("1.3.6.1.4.1.1.2"), Value::Null);
        assert_eq!(
            get("1.3.6.1.4.1.1.3"),
            Value::OctetString(b" padded".to_vec())
        );
        assert!(vbs.windows(2).all(|w| w[0].oid < w[1].oid));
    }

    #[test]
    fn skips_and_reports_bad_records_keeping_the_rest() {
        let rec = parse(
            "f.snmprec",
            b"1.3.6.1.2.1.1.1.0|4|ok\n1.3.6.1.2.1.1.3.0|67|<private>\n1.3.6.1.2.1|99|x\nnonsense\n1.3.6.1.2.1.1.5.0|4|name\n",
        );
        assert_eq!(rec.varbinds.len(), 2);
        let lines: Vec<usize> = rec.skipped.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4]);
        let one_arc = parse("f", b"1.3.6.1.2.1.2.2.1.22.1|6|0\n");
        assert_eq!((one_arc.varbinds.len(), one_arc.skipped.len()), (0, 1));
        assert!(
            rec.skipped[0]
                .to_string()
                .starts_with("f.snmprec:2: bad TimeTicks")
        );
    }

    #[test]
    fn formatted_lines_parse_back_to_the_same_varbind() {
        for value in [
            Value::Integer(-7),
            Value::OctetString(b"plain text".to_vec()),
            Value::OctetString(b"line\nbreak".to_vec()),
            Value::OctetString(b"trailing blank ".to_vec()),
            Value::OctetString(b" leading blank".to_vec()),
            Value::OctetString(vec![0xff, 0x00]),
            Value::OctetString(vec![]),
            Value::Null,
            Value::ObjectId(oid("1.3.6.1.4.1.9")),
            Value::IpAddress([192, 0, 2, 1]),
            Value::Counter32(7),
            Value::Gauge32(8),
            Value::TimeTicks(9),
            Value::Opaque(vec![0x9f, 0x78, 0x04, 0x3f, 0xc0, 0x00, 0x00]),
            Value::Counter64(u64::MAX),
        ] {
            let vb = VarBind::new(oid("1.3.6.1.4.1.1.0"), value);
            let line = format_line(&vb).unwrap();
            let back = parse("t", &line);
            assert_eq!(back.varbinds, vec![vb]);
        }
        assert!(format_line(&VarBind::new(oid("1.3"), Value::NoSuchObject)).is_none());
    }
}
