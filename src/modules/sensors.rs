//! `sensors`: every SNMP sensor discovery stored, of every class, from its
//! OID (LibreNMS `includes/polling/sensors.inc.php` and
//! `record_sensor_data()` in `includes/polling/functions.inc.php`):
//! state sensors through their translations, divisor, multiplier and
//! `user_func`, `sensor_current`/`sensor_prev` only when the value
//! changes, and the threshold and state-change eventlog rows.

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use serde_json::json;

use super::stored_oids::{self, Print};
use super::{ModuleError, Poll, severity};
use crate::db::value::{coerce, php_of};
use crate::db::{Row, Val};
use crate::librenms::number;
use crate::librenms::php::{self, Php, loose_cmp, loose_eq};
use crate::rrd::{Datum, Ds, DsType, RrdDef};

macro_rules! sensor_def {
    ($kind:ident) => {
        RrdDef {
            name: "sensor",
            datasets: &[Ds {
                name: "sensor",
                kind: DsType::$kind,
                min: None,
                max: None,
            }],
        }
    };
}

/// `sensor-<class>-<type>-<index>.rrd`, one definition per RRD type a
/// sensor row may name (`sensors.rrd_type`).
static SENSOR: [RrdDef; 6] = [
    sensor_def!(Gauge),
    sensor_def!(Counter),
    sensor_def!(Derive),
    sensor_def!(Dcounter),
    sensor_def!(Dderive),
    sensor_def!(Absolute),
];

/// The definition of a sensor whose `rrd_type` is `kind`.
pub fn definition(kind: &str) -> Option<&'static RrdDef> {
    let kind = DsType::parse(kind)?;
    SENSOR.iter().find(|d| d.datasets[0].kind == kind)
}

/// LibreNMS's sensor classes: their short name and unit
/// (`lang/en/sensors.php`), for the eventlog.
const CLASSES: &[(&str, &str, &str)] = &[
    ("airflow", "Airflow", "cfm"),
    ("ber", "BER", ""),
    ("bitrate", "Bitrate", "bps"),
    ("charge", "Charge", "%"),
    ("chromatic_dispersion", "Chromatic Dispersion", "ps/nm"),
    ("cooling", "Cooling", "W"),
    ("count", "Count", ""),
    ("current", "Current", "A"),
    ("dbm", "dBm", "dBm"),
    ("delay", "Delay", "s"),
    ("eer", "EER", ""),
    ("fanspeed", "Fanspeed", "RPM"),
    ("frequency", "Frequency", "Hz"),
    ("humidity", "Humidity", "%"),
    ("load", "Load", "%"),
    ("loss", "Percent", "%"),
    ("percent", "Percent", "%"),
    ("power", "Power", "W"),
    ("power_consumed", "Power Consumed", "kWh"),
    ("power_factor", "Power Factor", ""),
    ("pressure", "Pressure", "kPa"),
    ("quality_factor", "Quality Factor", ""),
    ("runtime", "Runtime", "Min"),
    ("signal", "Signal", "dBm"),
    ("signal_loss", "SL", "dB"),
    ("snr", "SNR", "dB"),
    ("state", "State", ""),
    ("temperature", "Temperature", "°C"),
    ("tv_signal", "Signal", "dBmV"),
    ("voltage", "Voltage", "V"),
    ("waterflow", "Waterflow", "l/m"),
];

pub fn poll<'p, 'a>(p: &'p mut Poll<'a>) -> BoxFuture<'p, Result<(), ModuleError>> {
    Box::pin(run(p))
}

async fn run(p: &mut Poll<'_>) -> Result<(), ModuleError> {
    let mut rows: Vec<Row> = p
        .store
        .rows("sensors", p.device_id())
        .await?
        .into_iter()
        // Agent and IPMI sensors are their modules'; others are not polled.
        .filter(|r| r.string("poller_type").as_deref() == Some("snmp"))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    // LibreNMS polls class by class (its GROUP BY sorts them).
    rows.sort_by(|a, b| {
        a.string("sensor_class")
            .cmp(&b.string("sensor_class"))
            .then(a.u64("sensor_id").cmp(&b.u64("sensor_id")))
    });
    let snmp = p.snmp()?;
    let oids: Vec<String> = rows.iter().filter_map(|r| r.string("sensor_oid")).collect();
    let refs: Vec<&str> = oids.iter().map(String::as_str).collect();
    // One round of requests for every class: the values are the same as
    // LibreNMS's per-class batches, in fewer round trips.
    let fetched = stored_oids::get(snmp, &refs).await;
    for problem in &fetched.problems {
        p.problem("sensors", problem);
    }
    let translations = if rows
        .iter()
        .any(|r| r.string("sensor_class").as_deref() == Some("state"))
    {
        Translations::new(p.store.state_translations(p.device_id()).await?)
    } else {
        Translations::default()
    };
    let by_descr = p
        .device
        .os
        .as_deref()
        .and_then(|os| p.settings.os.flag(os, "sensor_descr"))
        .unwrap_or(false);
    let mut shown = serde_json::Map::new();
    for row in &rows {
        let sensor = Sensor::new(row);
        // What net-snmp printed, quotes removed.
        let what = format!(
            "{} sensor {} ({})",
            sensor.class, sensor.descr, sensor.index
        );
        let fetched_text = sensor
            .oid
            .as_deref()
            .and_then(|o| fetched.text(o, Print::Ascii));
        if fetched_text.is_none() {
            // LibreNMS reads "" as 0 and writes that; the log says why.
            p.problem("sensors", format!("{what}: no value from the agent"));
        }
        let raw = fetched_text.unwrap_or_default().replace('"', "");
        let mut text = php::trim(&raw).to_string();
        if sensor.class == "state" && !php::is_numeric(&text) {
            // A state given as its name: its translation's value.
            match translations.value_of(sensor.id, &text) {
                Some(v) => text = v.to_string(),
                None if !text.is_empty() => p.problem(
                    "sensors",
                    format!("{what}: state {text:?} has no translation"),
                ),
                None => {}
            }
        } else if !text.is_empty() && number::first_number_of(&text).is_none() {
            p.problem("sensors", format!("{what}: {text:?} is not a number"));
        }
        let value = match sensor.value(&text, p.now) {
            Ok(v) => v,
            Err(e) => {
                p.problem("sensors", format!("{} {}: {e}", sensor.class, sensor.descr));
                continue;
            }
        };
        record(p, &sensor, &value, &translations, by_descr);
        shown.insert(
            format!("{}.{}.{}", sensor.class, sensor.kind, sensor.index),
            json!(value.to_string()),
        );
    }
    p.output.insert("sensors".into(), shown.into());
    Ok(())
}

/// A `sensors` row, as record_sensor_data reads it.
struct Sensor {
    id: u64,
    class: String,
    kind: String,
    index: String,
    descr: String,
    oid: Option<String>,
    divisor: Php,
    multiplier: Php,
    user_func: Option<String>,
    current: Php,
    limit: Php,
    limit_low: Php,
    alert: Php,
    rrd_type: String,
}

impl Sensor {
    fn new(r: &Row) -> Sensor {
        let php = |c: &str| php_of(r.get(c));
        Sensor {
            id: r.u64("sensor_id").unwrap_or(0),
            class: r.string("sensor_class").unwrap_or_default(),
            kind: r.string("sensor_type").unwrap_or_default(),
            index: r.string("sensor_index").unwrap_or_default(),
            descr: r.string("sensor_descr").unwrap_or_default(),
            oid: r.string("sensor_oid"),
            divisor: php("sensor_divisor"),
            multiplier: php("sensor_multiplier"),
            user_func: r.string("user_func"),
            current: php("sensor_current"),
            limit: php("sensor_limit"),
            limit_low: php("sensor_limit_low"),
            alert: php("sensor_alert"),
            rrd_type: r.string("rrd_type").unwrap_or_else(|| "GAUGE".into()),
        }
    }

    /// The value LibreNMS stores: the first number of the text, -32768
    /// read as 0, divided, multiplied, then the row's `user_func`.
    fn value(&self, raw: &str, now: i64) -> Result<Php, String> {
        let mut v = number::extract(&Php::str(raw));
        if loose_eq(&v, &Php::Int(-32768)) {
            v = Php::Int(0);
        }
        if self.divisor.truthy() && v != Php::Int(0) {
            v = arith(&v, &self.divisor, Op::Div);
        }
        if self.multiplier.truthy() {
            v = arith(&v, &self.multiplier, Op::Mul);
        }
        if let Some(func) = &self.user_func {
            v = user_func(func, &v, raw, self, now)?;
        }
        Ok(v)
    }
}

#[derive(Clone, Copy)]
enum Op {
    Div,
    Mul,
}

/// PHP's arithmetic on numbers: ints stay ints when the result is exact.
fn arith(a: &Php, b: &Php, op: Op) -> Php {
    let (a, b) = (number::cast(a), number::cast(b));
    if let (Php::Int(x), Php::Int(y)) = (&a, &b) {
        match op {
            Op::Div if *y != 0 && x % y == 0 => return Php::Int(x / y),
            Op::Mul => {
                if let Some(r) = x.checked_mul(*y) {
                    return Php::Int(r);
                }
            }
            _ => {}
        }
    }
    let f = |v: &Php| match v {
        Php::Int(i) => *i as f64,
        Php::Float(f) => *f,
        _ => 0.0,
    };
    Php::Float(match op {
        Op::Div => f(&a) / f(&b),
        Op::Mul => f(&a) * f(&b),
    })
}

/// The functions LibreNMS's sensor definitions name (`includes/common.php`
/// and `LibreNMS/Util/UserFuncHelper.php`).
fn user_func(name: &str, v: &Php, raw: &str, sensor: &Sensor, now: i64) -> Result<Php, String> {
    let f = |v: &Php| match number::cast(v) {
        Php::Int(i) => i as f64,
        Php::Float(x) => x,
        _ => 0.0,
    };
    Ok(match name {
        "fahrenheit_to_celsius" => Php::Str(format!("{:.2}", (f(v) - 32.0) / 1.8)),
        "string_to_float" => Php::Str(format!("{:.2}", f(v))),
        "round" => Php::Float(php::round(f(v), 0)),
        "mw_to_dbm" | "uw_to_dbm" => {
            let x = f(v);
            if x < 0.0 {
                Php::Null
            } else if x == 0.0 {
                Php::Int(-60)
            } else if name == "mw_to_dbm" {
                Php::Float(10.0 * x.log10())
            } else {
                Php::Float(10.0 * (x / 1000.0).log10())
            }
        }
        "hhmmssToMinutes" => {
            let parts: Vec<&str> = raw.split(':').collect();
            let [h, m, s] = parts.as_slice() else {
                return Err(format!("hhmmssToMinutes: {raw:?} is not hh:mm:ss"));
            };
            Php::Int(php::intval(h) * 60 + php::intval(m) + php::intval(s) / 60)
        }
        "fsParseChannelValue" => {
            let channel = sensor.index.rsplit('.').next().unwrap_or("");
            let field = channel
                .parse::<usize>()
                .ok()
                .and_then(|c| raw.split(',').nth(c))
                .unwrap_or("");
            let x = f(&number::cast(&Php::str(field))) * f(&sensor.multiplier);
            Php::Float(x / f(&sensor.divisor))
        }
        "dateToRuntime" => match parse_date(raw) {
            Some(t) => Php::Int((t - now) / 60),
            None => {
                return Err(format!(
                    "dateToRuntime: {raw:?} is not a date ironpoll reads"
                ));
            }
        },
        other => return Err(format!("unknown user_func {other:?}")),
    })
}

/// `YYYY-MM-DD[ T]HH:MM[:SS]` or `YYYY-MM-DD` (UTC) as Unix seconds.
fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = match s.split_once([' ', 'T']) {
        Some((d, t)) => (d, t),
        None => (s, "00:00:00"),
    };
    let d: Vec<i64> = date
        .split(['-', '/'])
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [y, mo, da] = d.as_slice() else {
        return None;
    };
    let (h, mi, se) = (
        *t.first()?,
        *t.get(1).unwrap_or(&0),
        *t.get(2).unwrap_or(&0),
    );
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if *mo <= 2 { y - 1 } else { *y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// The state translations of the device's state sensors.
#[derive(Default)]
struct Translations(HashMap<u64, Vec<(String, i64)>>);

impl Translations {
    fn new(rows: Vec<Row>) -> Translations {
        let mut map: HashMap<u64, Vec<(String, i64)>> = HashMap::new();
        for r in rows {
            if let (Some(id), Some(descr), Some(value)) = (
                r.u64("sensor_id"),
                r.string("state_descr"),
                r.i64("state_value"),
            ) {
                map.entry(id).or_default().push((descr, value));
            }
        }
        Translations(map)
    }

    /// The value of the state named `text` (`state_descr LIKE ?`).
    fn value_of(&self, sensor: u64, text: &str) -> Option<i64> {
        self.0
            .get(&sensor)?
            .iter()
            .find(|(descr, _)| sql_like(descr, text))
            .map(|(_, v)| *v)
    }

    /// The name of state `value` (PHP's integer array key).
    fn descr_of(&self, sensor: u64, value: &Php) -> Option<&str> {
        if value.is_null() {
            return None;
        }
        let key = value.intval();
        self.0
            .get(&sensor)?
            .iter()
            .find(|(_, v)| *v == key)
            .map(|(d, _)| d.as_str())
    }
}

/// MySQL's `subject LIKE pattern` under a case-insensitive collation: `%`
/// any run, `_` one character, `\` escapes.
fn sql_like(subject: &str, pattern: &str) -> bool {
    let s: Vec<char> = subject.to_lowercase().chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    fn matches(s: &[char], p: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('%') => (0..=s.len()).any(|i| matches(&s[i..], &p[1..])),
            Some('_') => !s.is_empty() && matches(&s[1..], &p[1..]),
            Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && matches(&s[1..], &p[2..]),
            Some(c) => s.first() == Some(c) && matches(&s[1..], &p[1..]),
        }
    }
    matches(&s, &p)
}

/// `record_sensor_data` for one sensor: RRD, threshold and state-change
/// events, and the row when the value changed.
fn record(p: &mut Poll<'_>, s: &Sensor, value: &Php, tr: &Translations, by_descr: bool) {
    let (short, unit) = CLASSES
        .iter()
        .find(|(c, _, _)| *c == s.class)
        .map_or((s.class.as_str(), ""), |(_, short, unit)| (*short, *unit));
    let last = if by_descr { &s.descr } else { &s.index };
    match definition(&s.rrd_type) {
        Some(def) => p.rrd(
            &["sensor", &s.class, &s.kind, last],
            def,
            vec![datum(value)],
        ),
        None => p.problem(
            "sensors",
            format!("{} {}: unknown rrd_type {:?}", s.class, s.descr, s.rrd_type),
        ),
    }
    let prev = &s.current;
    let below = |a: &Php, b: &Php| loose_cmp(a, b) == Some(std::cmp::Ordering::Less);
    let alerting = loose_eq(&s.alert, &Php::Int(1));
    let reference = Some(s.id.to_string());
    if !loose_eq(&s.limit_low, &Php::str(""))
        && below(&s.limit_low, prev)
        && below(value, &s.limit_low)
        && alerting
    {
        p.event(
            format!(
                "{short} under threshold: {value} {unit} (< {} {unit})",
                s.limit_low
            ),
            &s.class,
            severity::WARNING,
            reference.clone(),
        );
    } else if !loose_eq(&s.limit, &Php::str(""))
        && below(prev, &s.limit)
        && below(&s.limit, value)
        && alerting
    {
        p.event(
            format!(
                "{short} above threshold: {value} {unit} (> {} {unit})",
                s.limit
            ),
            &s.class,
            severity::WARNING,
            reference.clone(),
        );
    }
    if s.class == "state" && !loose_eq(prev, value) {
        let name = |v: &Php| tr.descr_of(s.id, v).unwrap_or("#unamed state#").to_string();
        p.event(
            format!(
                "{short} sensor {} has changed from {}({prev}) to {} ({value})",
                s.descr,
                name(prev),
                name(value)
            ),
            &s.class,
            severity::NOTICE,
            reference,
        );
    }
    if !loose_eq(value, prev) {
        p.changes.update(
            "sensors",
            "sensor_id",
            s.id,
            vec![
                ("sensor_current", coerce("sensors", "sensor_current", value)),
                ("sensor_prev", coerce("sensors", "sensor_prev", prev)),
                ("lastupdate", Val::Now),
            ],
        );
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
    fn arithmetic_keeps_php_types() {
        assert_eq!(arith(&Php::Int(300), &Php::Int(10), Op::Div), Php::Int(30));
        assert_eq!(
            arith(&Php::Int(305), &Php::Int(10), Op::Div),
            Php::Float(30.5)
        );
        assert_eq!(
            arith(&Php::Float(1.5), &Php::Int(2), Op::Mul),
            Php::Float(3.0)
        );
    }

    #[test]
    fn states_by_name_match_like_mysql() {
        assert!(sql_like("Normal", "normal"));
        assert!(sql_like("on battery", "on%"));
        assert!(sql_like("ok", "o_"));
        assert!(!sql_like("ok", "okay"));
    }

    #[test]
    fn user_functions_as_librenms_defines_them() {
        let s = Sensor {
            id: 1,
            class: "temperature".into(),
            kind: "t".into(),
            index: "1.2".into(),
            descr: "d".into(),
            oid: None,
            divisor: Php::Int(1),
            multiplier: Php::Int(1),
            user_func: None,
            current: Php::Null,
            limit: Php::Null,
            limit_low: Php::Null,
            alert: Php::Int(1),
            rrd_type: "GAUGE".into(),
        };
        let uf = |n: &str, v: Php, raw: &str| user_func(n, &v, raw, &s, 0).unwrap();
        assert_eq!(
            uf("fahrenheit_to_celsius", Php::Int(212), "212"),
            Php::str("100.00")
        );
        assert_eq!(uf("mw_to_dbm", Php::Int(1), "1"), Php::Float(0.0));
        assert_eq!(uf("mw_to_dbm", Php::Int(0), "0"), Php::Int(-60));
        assert_eq!(uf("uw_to_dbm", Php::Int(-1), "-1"), Php::Null);
        assert_eq!(uf("hhmmssToMinutes", Php::Int(0), "01:30:59"), Php::Int(90));
        assert_eq!(
            uf("fsParseChannelValue", Php::Int(0), "1,2.5,3"),
            Php::Float(3.0)
        );
        assert_eq!(
            uf("dateToRuntime", Php::Int(0), "1970-01-01 01:00:00"),
            Php::Int(60)
        );
        assert!(user_func("bogus", &Php::Int(1), "1", &s, 0).is_err());
    }

    #[test]
    fn values_are_extracted_scaled_and_cleaned() {
        let mut s = Sensor::new(&Row::default());
        s.divisor = Php::Int(10);
        s.multiplier = Php::Int(1);
        assert_eq!(s.value("235", 0).unwrap(), Php::Float(23.5));
        assert_eq!(s.value("-32768", 0).unwrap(), Php::Int(0));
        assert_eq!(s.value("240", 0).unwrap(), Php::Int(24));
        assert_eq!(s.value("12.5 V", 0).unwrap(), Php::Float(1.25));
    }
}
