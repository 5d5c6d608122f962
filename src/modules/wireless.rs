//! `wireless`: the wireless sensors discovery stored (clients, signal,
//! frequency...), from their OIDs (LibreNMS `LibreNMS/Modules/Wireless.php`,
//! `app/Models/WirelessSensor.php`). A sensor of several OIDs is their
//! sum or average.

use futures_util::future::BoxFuture;
use serde_json::json;

use super::stored_oids::{self, Print};
use super::{ModuleError, Poll};
use crate::db::Val;
use crate::db::value::{coerce, php_of};
use crate::librenms::number;
use crate::librenms::php::{Php, changed};
use crate::rrd::{Datum, Ds, DsType, RrdDef};

macro_rules! wireless_def {
    ($kind:ident) => {
        RrdDef {
            name: "wireless-sensor",
            datasets: &[Ds {
                name: "sensor",
                kind: DsType::$kind,
                min: None,
                max: None,
            }],
        }
    };
}

/// `wireless-sensor-<class>-<type>-<index>.rrd`, per RRD type.
static WIRELESS: [RrdDef; 6] = [
    wireless_def!(Gauge),
    wireless_def!(Counter),
    wireless_def!(Derive),
    wireless_def!(Dcounter),
    wireless_def!(Dderive),
    wireless_def!(Absolute),
];

pub fn poll<'p, 'a>(p: &'p mut Poll<'a>) -> BoxFuture<'p, Result<(), ModuleError>> {
    Box::pin(run(p))
}

async fn run(p: &mut Poll<'_>) -> Result<(), ModuleError> {
    let rows = p.store.rows("wireless_sensors", p.device_id()).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let snmp = p.snmp()?;
    // Each sensor's OIDs, a JSON list.
    let mut sensor_oids: Vec<Vec<String>> = Vec::with_capacity(rows.len());
    for row in &rows {
        let text = row.string("sensor_oids").unwrap_or_default();
        match serde_json::from_str::<Vec<String>>(&text) {
            Ok(list) => sensor_oids.push(list),
            Err(e) => {
                p.problem(
                    "wireless",
                    format!(
                        "sensor {}: sensor_oids {text:?}: {e}",
                        row.u64("sensor_id").unwrap_or(0)
                    ),
                );
                sensor_oids.push(Vec::new());
            }
        }
    }
    let all: Vec<&str> = sensor_oids.iter().flatten().map(String::as_str).collect();
    let fetched = if all.is_empty() {
        stored_oids::Fetched::default()
    } else {
        stored_oids::get(snmp, &all).await
    };
    for problem in &fetched.problems {
        p.problem("wireless", problem);
    }
    let mut shown = serde_json::Map::new();
    for (row, oids) in rows.iter().zip(&sensor_oids) {
        let id = row.u64("sensor_id").unwrap_or(0);
        let class = row.string("sensor_class").unwrap_or_default();
        let kind = row.string("sensor_type").unwrap_or_default();
        let index = row.string("sensor_index").unwrap_or_default();
        let values: Vec<Php> = oids
            .iter()
            .filter_map(|o| fetched.text(o, Print::Plain))
            .map(Php::Str)
            .collect();
        if values.len() < oids.len() {
            // LibreNMS leaves out what the agent did not answer.
            p.problem(
                "wireless",
                format!(
                    "{class} sensor {index}: {} of {} OIDs without a value",
                    oids.len() - values.len(),
                    oids.len()
                ),
            );
        }
        let current = fill_value(
            &values,
            row.string("sensor_aggregator").as_deref(),
            &php_of(row.get("sensor_divisor")),
            &php_of(row.get("sensor_multiplier")),
        );
        // The previous value is the one the row had; Eloquent saves what
        // changed and stamps lastupdate when it saves.
        let old_current = php_of(row.get("sensor_current"));
        let old_prev = php_of(row.get("sensor_prev"));
        let mut cols = Vec::new();
        if changed(&old_current, &current) {
            cols.push((
                "sensor_current",
                coerce("wireless_sensors", "sensor_current", &current),
            ));
        }
        if changed(&old_prev, &old_current) {
            cols.push((
                "sensor_prev",
                coerce("wireless_sensors", "sensor_prev", &old_current),
            ));
        }
        if !cols.is_empty() {
            cols.push(("lastupdate", Val::Now));
        }
        p.changes.update("wireless_sensors", "sensor_id", id, cols);
        let rrd_type = row.string("rrd_type").unwrap_or_else(|| "GAUGE".into());
        match DsType::parse(&rrd_type)
            .and_then(|k| WIRELESS.iter().find(|d| d.datasets[0].kind == k))
        {
            Some(def) => p.rrd(
                &["wireless-sensor", &class, &kind, &index],
                def,
                vec![datum(&current)],
            ),
            None => p.problem(
                "wireless",
                format!("sensor {id}: unknown rrd_type {rrd_type:?}"),
            ),
        }
        shown.insert(
            format!("{class}.{kind}.{index}"),
            json!(current.to_string()),
        );
    }
    p.output.insert("wireless".into(), shown.into());
    Ok(())
}

/// `WirelessSensor::fillValue`: no value is NULL; several are summed (or
/// averaged); then the first number, divided and multiplied.
fn fill_value(values: &[Php], aggregator: Option<&str>, divisor: &Php, multiplier: &Php) -> Php {
    let Some(first) = values.first() else {
        return Php::Null;
    };
    let f = |v: &Php| match number::cast(v) {
        Php::Int(i) => i as f64,
        Php::Float(x) => x,
        _ => 0.0,
    };
    let value = if values.len() > 1 {
        let sum = number::cast(&Php::Float(values.iter().map(f).sum::<f64>()));
        match (aggregator, &sum) {
            // PHP's int division stays an int when exact.
            (Some("avg"), Php::Int(s)) if s % values.len() as i64 == 0 => {
                Php::Int(s / values.len() as i64)
            }
            (Some("avg"), _) => Php::Float(f(&sum) / values.len() as f64),
            _ => sum,
        }
    } else {
        first.clone()
    };
    let mut v = number::extract(&value);
    if divisor.truthy() {
        v = match (&v, number::cast(divisor)) {
            (Php::Int(x), Php::Int(d)) if d != 0 && x % d == 0 => Php::Int(x / d),
            _ => Php::Float(f(&v) / f(divisor)),
        };
    }
    match (&v, number::cast(multiplier)) {
        (Php::Int(x), Php::Int(m)) => x
            .checked_mul(m)
            .map_or(Php::Float(*x as f64 * m as f64), Php::Int),
        _ => Php::Float(f(&v) * f(multiplier)),
    }
}

fn datum(v: &Php) -> Datum {
    match v {
        Php::Int(i) => Datum::Int(*i),
        Php::Float(f) => Datum::Float(*f),
        Php::Str(s) => Datum::parse(s),
        Php::Null => Datum::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_aggregated_and_scaled() {
        let one = Php::Int(1);
        assert_eq!(fill_value(&[], None, &one, &one), Php::Null);
        assert_eq!(
            fill_value(&[Php::str("42")], None, &one, &one),
            Php::Int(42)
        );
        assert_eq!(
            fill_value(&[Php::str("10"), Php::str("20")], Some("sum"), &one, &one),
            Php::Int(30)
        );
        assert_eq!(
            fill_value(&[Php::str("10"), Php::str("25")], Some("avg"), &one, &one),
            Php::Float(17.5)
        );
        assert_eq!(
            fill_value(&[Php::str("-605")], None, &Php::Int(10), &one),
            Php::Float(-60.5)
        );
    }
}
