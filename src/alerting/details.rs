//! `alert_log.details` as LibreNMS writes it: the rule's result rows and
//! the contacts, `json_encode`d and `gzcompress`ed (`app/Casts/
//! CompressedJson.php`). `alerts.php` reads them back to build the
//! notification, so the rows carry every column of the rule's tables, as
//! PDO hands them to PHP.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use serde_json::Value;

use crate::db::{Row, Val};

/// One result row as PHP holds it: columns in first-seen order, a column
/// that several joined tables share taking the last table's value.
pub type PhpRow = Vec<(String, Value)>;

/// A result row of a rule's SQL as PHP sees it. `ip` is shown as an
/// address (LibreNMS's `inet6_ntop`).
pub fn php_row(row: &Row) -> PhpRow {
    let mut out: PhpRow = Vec::with_capacity(row.columns().len());
    for (name, v) in row.columns().iter().zip(row.values()) {
        let value = if name == "ip" {
            match v {
                Val::Bytes(b) => ntop(b).map_or(Value::Null, Value::String),
                other => php_value(other),
            }
        } else {
            php_value(v)
        };
        match out.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => out.push((name.clone(), value)),
        }
    }
    out
}

fn php_value(v: &Val) -> Value {
    match v {
        Val::Null | Val::Now => Value::Null,
        Val::Int(i) => Value::from(*i),
        Val::UInt(u) => Value::from(*u),
        Val::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Val::Text(s) => Value::String(s.clone()),
        Val::Bytes(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
    }
}

/// `inet6_ntop`: 4 or 16 bytes as an address; anything else is none.
fn ntop(b: &[u8]) -> Option<String> {
    match b.len() {
        4 => Some(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
        16 => {
            let a: [u8; 16] = b.try_into().ok()?;
            Some(std::net::Ipv6Addr::from(a).to_string())
        }
        _ => None,
    }
}

/// PHP's `json_encode` of a string: `/` and every non-ASCII character
/// escaped.
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn number(out: &mut String, n: &serde_json::Number) {
    match n.as_f64() {
        // PHP writes a float that is whole with ".0".
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => {
            out.push_str(&format!("{f:.1}"))
        }
        _ => out.push_str(&n.to_string()),
    }
}

/// `json_encode` of a value (objects in their map's order).
pub fn encode(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => number(out, n),
        Value::String(s) => string(out, s),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode(out, x);
            }
            out.push(']');
        }
        Value::Object(m) => object(out, m.iter()),
    }
}

fn object<'a>(out: &mut String, entries: impl Iterator<Item = (&'a String, &'a Value)>) {
    out.push('{');
    for (i, (k, x)) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, k);
        out.push(':');
        encode(out, x);
    }
    out.push('}');
}

/// The details of an alert: earlier keys kept, then `contacts` and
/// `rule` (LibreNMS's `[...$details, 'contacts' => ..., 'rule' => ...]`).
pub fn details_json(
    earlier: &serde_json::Map<String, Value>,
    contacts: &[(String, String)],
    rows: &[PhpRow],
) -> String {
    let mut out = String::from("{");
    let mut first = true;
    let mut key = |out: &mut String, k: &str| {
        if !first {
            out.push(',');
        }
        first = false;
        string(out, k);
        out.push(':');
    };
    for (k, v) in earlier {
        if k != "contacts" && k != "rule" {
            key(&mut out, k);
            encode(&mut out, v);
        }
    }
    key(&mut out, "contacts");
    // A PHP array keyed 0, 1, ... (empty included) is a JSON list.
    let is_list = contacts
        .iter()
        .enumerate()
        .all(|(i, (k, _))| *k == i.to_string());
    if is_list {
        out.push('[');
        for (i, (_, name)) in contacts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            string(&mut out, name);
        }
        out.push(']');
    } else {
        out.push('{');
        for (i, (mail, name)) in contacts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            string(&mut out, mail);
            out.push(':');
            string(&mut out, name);
        }
        out.push('}');
    }
    key(&mut out, "rule");
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        object(&mut out, row.iter().map(|(k, v)| (k, v)));
    }
    out.push(']');
    out.push('}');
    out
}

/// `gzcompress`: zlib at PHP's default level.
pub fn compress(json: &str) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::new(6));
    // Writing to a Vec cannot fail.
    let _ = e.write_all(json.as_bytes());
    e.finish().unwrap_or_default()
}

/// The stored details read back (`gzuncompress` then `json_decode`);
/// anything unreadable is no details, as for LibreNMS.
pub fn decompress(stored: &[u8]) -> serde_json::Map<String, Value> {
    let mut text = String::new();
    if ZlibDecoder::new(stored).read_to_string(&mut text).is_err() {
        return Default::default();
    }
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => m,
        _ => Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_encode_as_php_does() {
        let mut out = String::new();
        encode(&mut out, &Value::String("a/b \"é\" 😀\n".into()));
        assert_eq!(out, r#""a\/b \"\u00e9\" \ud83d\ude00\n""#);
        let mut out = String::new();
        encode(&mut out, &serde_json::json!([1, 2.0, 2.5, null, true]));
        assert_eq!(out, "[1,2.0,2.5,null,true]");
    }

    #[test]
    fn details_round_trip_through_compression() {
        let rows = vec![vec![
            ("device_id".to_string(), Value::from(7)),
            ("hostname".to_string(), Value::String("r1".into())),
        ]];
        let earlier: serde_json::Map<String, Value> =
            serde_json::from_str(r#"{"extra": 1, "rule": []}"#).unwrap();
        let json = details_json(&earlier, &[], &rows);
        assert_eq!(
            json,
            r#"{"extra":1,"contacts":[],"rule":[{"device_id":7,"hostname":"r1"}]}"#
        );
        let back = decompress(&compress(&json));
        assert_eq!(back["rule"][0]["hostname"], "r1");
        assert!(decompress(b"not zlib").is_empty());
        // LibreNMS's copy to a default address that is not set: key 0.
        let json = details_json(&Default::default(), &[("0".into(), String::new())], &[]);
        assert_eq!(json, r#"{"contacts":[""],"rule":[]}"#);
        let json = details_json(&Default::default(), &[("a@b.c".into(), "A".into())], &[]);
        assert_eq!(json, r#"{"contacts":{"a@b.c":"A"},"rule":[]}"#);
    }
}
