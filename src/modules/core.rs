//! `core`: uptime and reboots, and sysDescr/sysObjectID when the device row
//! lacks them (LibreNMS `LibreNMS/Modules/Core.php`).

use futures_util::future::BoxFuture;
use serde_json::json;

use super::{ModuleError, Poll, severity};
use crate::librenms::format;
use crate::mib::{Syntax, render, scalars};
use crate::rrd::{Datum, DsType, RrdDef, ds};
use crate::snmp::{Oid, Value};

/// `uptime.rrd` (core module).
pub static UPTIME: RrdDef = RrdDef {
    name: "uptime",
    datasets: &[ds("uptime", DsType::Gauge, Some(0.0), None)],
};

pub fn poll<'p, 'a>(p: &'p mut Poll<'a>) -> BoxFuture<'p, Result<(), ModuleError>> {
    Box::pin(run(p))
}

async fn run(p: &mut Poll<'_>) -> Result<(), ModuleError> {
    let snmp = p.snmp()?;
    let mut oids = Vec::new();
    if p.device.sys_descr.is_none() {
        oids.push(Oid::from_slice(scalars::SYS_DESCR));
    }
    if p.device.sys_object_id.is_none() {
        oids.push(Oid::from_slice(scalars::SYS_OBJECT_ID));
    }
    oids.push(Oid::from_slice(scalars::SYS_UP_TIME));
    let values = snmp.get(&oids).await?;
    let mut sys_uptime = None;
    for vb in &values {
        let arcs = vb.oid.arcs();
        if arcs == scalars::SYS_DESCR
            && let Some(text) = render(&vb.value, Syntax::DisplayString, true)
        {
            let text = query_value(&text);
            p.device.sys_descr = Some(text.clone());
            p.set_device("sysDescr", text);
        } else if arcs == scalars::SYS_OBJECT_ID
            && let Value::ObjectId(o) = &vb.value
        {
            let text = format!(".{o}");
            p.device.sys_object_id = Some(text.clone());
            p.set_device("sysObjectID", text);
        } else if arcs == scalars::SYS_UP_TIME {
            sys_uptime = number(&vb.value);
        }
    }
    // LibreNMS asks for these two in a second query.
    let extra = snmp
        .get(&[
            Oid::from_slice(scalars::SNMP_ENGINE_TIME),
            Oid::from_slice(scalars::HR_SYSTEM_UPTIME),
        ])
        .await?;
    let engine_time = extra
        .first()
        .and_then(|vb| number(&vb.value))
        .unwrap_or(0.0);
    let hr_uptime = extra.get(1).and_then(|vb| number(&vb.value)).unwrap_or(0.0);
    let uptime = [
        (sys_uptime.unwrap_or(0.0) / 100.0).round(),
        engine_time,
        (hr_uptime / 100.0).round(),
    ]
    .into_iter()
    .fold(0.0, f64::max) as i64;

    let previous = p.device.uptime;
    if uptime > 0 {
        if let Some(prev) = previous
            && uptime < prev
        {
            p.event(
                format!(
                    "Device rebooted after {} -> {uptime}s",
                    format::format_interval(prev)
                ),
                "reboot",
                severity::WARNING,
                Some(prev.to_string()),
            );
            if p.settings.discovery_on_reboot {
                p.set_device("last_discovered", crate::db::Val::Null);
            }
        }
        p.rrd(&["uptime"], &UPTIME, vec![Datum::Int(uptime)]);
        p.enable_graph("uptime");
        p.device.uptime = Some(uptime);
        p.set_device("uptime", uptime);
    }
    p.output.insert(
        "core".into(),
        json!({
            "sysUpTime": sys_uptime,
            "snmpEngineTime": engine_time,
            "hrSystemUptime": hr_uptime,
            "uptime": uptime,
            "previous_uptime": previous,
        }),
    );
    Ok(())
}

/// LibreNMS's reading of a quoted string from net-snmp (`SnmpResponse`):
/// backslashes stripped, then quotes, spaces and line ends trimmed.
pub fn query_value(raw: &str) -> String {
    let quoted = format!("\"{raw}\"");
    let mut stripped = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                stripped.push(next);
            }
        } else {
            stripped.push(c);
        }
    }
    stripped
        .trim_matches(|c| matches!(c, '"' | ' ' | '\n' | '\r'))
        .to_string()
}

/// A number from a varbind (TimeTicks, counters, integers, numeric text).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::TimeTicks(t) => Some(f64::from(*t)),
        Value::Integer(i) => Some(*i as f64),
        Value::Counter32(c) | Value::Gauge32(c) => Some(f64::from(*c)),
        Value::Counter64(c) => Some(*c as f64),
        Value::OctetString(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}
