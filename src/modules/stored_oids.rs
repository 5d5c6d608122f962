//! GETs of the OIDs discovery stored (processors, mempools, storage,
//! sensors, wireless): the device's max OIDs per request, the requests of
//! a module sent together (the session keeps each agent's in-flight
//! limit), and a request that fails costs only its own OIDs, as in
//! LibreNMS, which parses whatever net-snmp printed.

use std::collections::HashMap;

use futures_util::future::join_all;

use super::SnmpSource;
use crate::mib::{Syntax, render};
use crate::snmp::{Oid, Value};

/// The values of stored OIDs, by the OID as LibreNMS stores it (numeric,
/// with a leading dot), rendered as net-snmp prints them.
#[derive(Debug, Default)]
pub struct Fetched {
    values: HashMap<String, Value>,
    /// Why some OIDs have no value: unparseable OIDs, failed requests.
    pub problems: Vec<String>,
}

/// How net-snmp is asked to print: LibreNMS's `-OUQn` (text as is) or
/// sensors' `-OUQntea` (numeric timeticks and enums, strings as ASCII).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Print {
    Plain,
    Ascii,
}

impl Fetched {
    /// The raw value of `oid`.
    pub fn value(&self, oid: &str) -> Option<&Value> {
        self.values.get(&key(oid))
    }

    /// The text LibreNMS reads for `oid` (quotes, backslashes and line
    /// ends trimmed as `snmp_get_multi_oid` trims them), or None when the
    /// agent had no such object.
    pub fn text(&self, oid: &str, print: Print) -> Option<String> {
        let v = self.value(oid)?;
        let syntax = match print {
            Print::Plain => Syntax::OctetString,
            Print::Ascii => Syntax::DisplayString,
        };
        let text = render(v, syntax, print == Print::Ascii)?;
        Some(
            text.trim_matches(|c| matches!(c, '\\' | '"' | ' ' | '\n' | '\r'))
                .to_string(),
        )
    }
}

/// `.1.3.6` and `1.3.6` name the same OID.
fn key(oid: &str) -> String {
    let t = oid.trim();
    if t.starts_with('.') {
        t.to_string()
    } else {
        format!(".{t}")
    }
}

/// GETs `oids` (duplicates asked once).
pub async fn get(snmp: &dyn SnmpSource, oids: &[&str]) -> Fetched {
    let mut out = Fetched::default();
    let mut wanted: Vec<Oid> = Vec::with_capacity(oids.len());
    let mut seen = std::collections::HashSet::new();
    for raw in oids {
        let k = key(raw);
        if !seen.insert(k.clone()) {
            continue;
        }
        match k[1..].parse::<Oid>() {
            Ok(o) => wanted.push(o),
            Err(_) => out.problems.push(format!("{raw:?} is not a numeric OID")),
        }
    }
    let per_request = snmp.max_oids().max(1);
    let answers = join_all(wanted.chunks(per_request).map(|chunk| snmp.get(chunk))).await;
    for (chunk, answer) in wanted.chunks(per_request).zip(answers) {
        match answer {
            Ok(varbinds) => {
                for vb in varbinds {
                    if !vb.value.is_exception() {
                        out.values.insert(format!(".{}", vb.oid), vb.value);
                    }
                }
            }
            Err(e) => out.problems.push(format!(
                "GET of {} OIDs from .{} failed: {e}",
                chunk.len(),
                chunk[0]
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::RecordingSource;
    use crate::snmp::VarBind;

    #[tokio::test]
    async fn stored_oids_come_back_as_librenms_reads_them() {
        let src = RecordingSource::new(vec![
            VarBind::new("1.3.6.1.4.1.9.1.0".parse().unwrap(), Value::Gauge32(42)),
            VarBind::new(
                "1.3.6.1.4.1.9.2.0".parse().unwrap(),
                Value::OctetString(b"\"12.5 %\"".to_vec()),
            ),
            VarBind::new("1.3.6.1.4.1.9.3.0".parse().unwrap(), Value::TimeTicks(100)),
        ]);
        let got = get(
            &src,
            &[
                ".1.3.6.1.4.1.9.1.0",
                "1.3.6.1.4.1.9.2.0",
                ".1.3.6.1.4.1.9.3.0",
                ".1.3.6.1.4.1.9.9.0",
                "bogus",
            ],
        )
        .await;
        assert_eq!(
            got.text(".1.3.6.1.4.1.9.1.0", Print::Plain).as_deref(),
            Some("42")
        );
        assert_eq!(
            got.text(".1.3.6.1.4.1.9.2.0", Print::Plain).as_deref(),
            Some("12.5 %")
        );
        assert_eq!(
            got.text("1.3.6.1.4.1.9.3.0", Print::Ascii).as_deref(),
            Some("100")
        );
        assert_eq!(got.text(".1.3.6.1.4.1.9.9.0", Print::Plain), None);
        assert_eq!(got.problems.len(), 1, "{:?}", got.problems);
    }
}
