//! `processors`: the usage of each processor discovery stored, from its
//! OID (LibreNMS `LibreNMS/Device/Processor.php`, `poll()`).

use futures_util::future::BoxFuture;
use serde_json::json;

use super::stored_oids::{self, Print};
use super::{ModuleError, Poll};
use crate::db::value::coerce;
use crate::librenms::php::{self, Php, loose_eq};
use crate::rrd::{Datum, DsType, RrdDef, ds};

/// `processor-<type>-<index>.rrd`.
pub static PROCESSOR: RrdDef = RrdDef {
    name: "processor",
    datasets: &[ds("usage", DsType::Gauge, Some(-273.0), Some(1000.0))],
};

pub fn poll<'p, 'a>(p: &'p mut Poll<'a>) -> BoxFuture<'p, Result<(), ModuleError>> {
    Box::pin(run(p))
}

async fn run(p: &mut Poll<'_>) -> Result<(), ModuleError> {
    let rows = p.store.rows("processors", p.device_id()).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let snmp = p.snmp()?;
    let oids: Vec<String> = rows
        .iter()
        .filter_map(|r| r.string("processor_oid"))
        .collect();
    let oid_refs: Vec<&str> = oids.iter().map(String::as_str).collect();
    let fetched = stored_oids::get(snmp, &oid_refs).await;
    for problem in &fetched.problems {
        p.problem("processors", problem);
    }
    let mut shown = serde_json::Map::new();
    for row in &rows {
        let id = row.u64("processor_id").unwrap_or(0);
        let kind = row.string("processor_type").unwrap_or_default();
        let index = row.string("processor_index").unwrap_or_default();
        let precision = row.i64("processor_precision").unwrap_or(1);
        // A missing value reads as 0, as LibreNMS's default polling has it.
        let descr = row.string("processor_descr").unwrap_or_default();
        let text = row
            .string("processor_oid")
            .and_then(|oid| fetched.text(&oid, Print::Plain));
        // LibreNMS writes 0 for a value it could not read; it is still a
        // problem worth a log line.
        let value = match &text {
            None => {
                p.problem(
                    "processors",
                    format!("{descr} ({kind} {index}): no value from the agent"),
                );
                Some(0.0)
            }
            Some(t) => {
                let v = usage(t, precision);
                if v.is_none() {
                    p.problem(
                        "processors",
                        format!("{descr} ({kind} {index}): {t:?} is not a number"),
                    );
                }
                v
            }
        };
        // PHP's round(null, 2) is 0.
        let usage = php::round(value.unwrap_or(0.0), 2);
        p.rrd(
            &["processor", &kind, &index],
            &PROCESSOR,
            vec![Datum::Float(usage)],
        );
        let stored = crate::db::value::php_of(row.get("processor_usage"));
        if !loose_eq(&Php::Float(usage), &stored) {
            p.changes.update(
                "processors",
                "processor_id",
                id,
                vec![(
                    "processor_usage",
                    coerce("processors", "processor_usage", &Php::Float(usage)),
                )],
            );
        }
        shown.insert(format!("{kind}.{index}"), json!(usage));
    }
    p.output.insert("processors".into(), shown.into());
    Ok(())
}

/// LibreNMS's `processData`: the first number of at most five digits (and
/// decimals) in the text; a negative precision means the value is idle
/// time (100 minus it, scaled), a precision above 1 divides.
pub fn usage(text: &str, precision: i64) -> Option<f64> {
    let value = first_number(text)?;
    Some(if precision < 0 {
        100.0 - value / (-precision) as f64
    } else if precision > 1 {
        value / precision as f64
    } else {
        value
    })
}

/// `/([0-9]{1,5}(\.[0-9]+)?)/`: the leftmost run of digits, at most five
/// of them, with the fraction that follows those five.
fn first_number(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let start = b.iter().position(u8::is_ascii_digit)?;
    let mut end = start;
    while end < b.len() && end - start < 5 && b[end].is_ascii_digit() {
        end += 1;
    }
    if end + 1 < b.len() && b[end] == b'.' && b[end + 1].is_ascii_digit() {
        end += 1;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
    }
    text[start..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_reads_as_librenms_processes_it() {
        assert_eq!(usage("45", 1), Some(45.0));
        assert_eq!(usage("CPU 12.5%", 1), Some(12.5));
        assert_eq!(usage("9500", 100), Some(95.0));
        assert_eq!(usage("90", -1), Some(10.0));
        assert_eq!(usage("9000", -100), Some(10.0));
        // Five digits at most, then the fraction that follows them.
        assert_eq!(usage("1234567", 1), Some(12345.0));
        assert_eq!(usage("no number", 1), None);
    }
}
