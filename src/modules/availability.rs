//! `availability`: the share of each window (a day, a week, a month, a
//! year by default) the device was up, from its outages
//! (LibreNMS `LibreNMS/Modules/Availability.php`, `Device/Availability.php`).

use futures_util::future::BoxFuture;
use serde_json::json;

use super::{ModuleError, Poll};
use crate::db::Val;
use crate::db::changes::{Filter, TableChange};
use crate::db::state::Outage;
use crate::librenms::format;
use crate::rrd::{Datum, DsType, RrdDef, ds};

/// `availability-<seconds>.rrd` (availability module).
pub static AVAILABILITY: RrdDef = RrdDef {
    name: "availability",
    datasets: &[ds("availability", DsType::Gauge, Some(0.0), Some(100.0))],
};

pub fn poll<'p, 'a>(p: &'p mut Poll<'a>) -> BoxFuture<'p, Result<(), ModuleError>> {
    Box::pin(async move {
        run(p);
        Ok(())
    })
}

fn run(p: &mut Poll<'_>) {
    p.enable_graph("availability");
    let durations = p.settings.availability.durations.clone();
    let mut rows = Vec::with_capacity(durations.len());
    let mut shown = serde_json::Map::new();
    for duration in durations {
        let perc = availability(
            &p.state.outages,
            p.device.status,
            p.device.inserted,
            duration,
            p.now,
        );
        // The column is decimal(9,6).
        let stored = (perc * 1e6).round() / 1e6;
        rows.push((duration, stored));
        let name = duration.to_string();
        p.rrd(
            &["availability", &name],
            &AVAILABILITY,
            vec![Datum::Float(stored)],
        );
        shown.insert(name, json!(stored));
    }
    let device_id = Val::from(p.device.device_id);
    for (duration, perc) in &rows {
        p.changes.upsert(
            "availability",
            &["device_id", "duration"],
            vec![
                ("device_id", device_id.clone()),
                ("duration", Val::Int(*duration)),
                ("availability_perc", Val::Float(*perc)),
            ],
        );
    }
    // Durations no longer configured go.
    let mut filters = vec![Filter::Eq("device_id", device_id)];
    if !rows.is_empty() {
        filters.push(Filter::NotIn(
            "duration",
            rows.iter().map(|(d, _)| Val::Int(*d)).collect(),
        ));
    }
    p.changes.push(TableChange::Delete {
        table: "availability",
        filters,
    });
    p.output
        .insert("availability".into(), serde_json::Value::Object(shown));
}

/// LibreNMS's availability of a device over `duration` seconds ending at
/// `now`: 100 minus the outages' share, counting only outages that ended
/// within the window; with none, 100 when up and 0 when down.
pub fn availability(
    outages: &[Outage],
    up: bool,
    inserted: Option<i64>,
    duration: i64,
    now: i64,
) -> f64 {
    let mut found: Vec<&Outage> = outages
        .iter()
        .filter(|o| o.up_again.is_some_and(|u| u >= now - duration))
        .collect();
    if found.is_empty() {
        return if up { 100.0 } else { 0.0 };
    }
    found.sort_by_key(|o| o.going_down);
    // Do not count time before the device existed.
    let duration = match inserted {
        Some(t) => duration.min((now - t).max(0)),
        None => duration,
    };
    let mut down = 0i64;
    for o in found {
        let up_again = o.up_again.unwrap_or(now);
        let going_down = o.going_down.max(now - duration);
        down += up_again - going_down;
    }
    format::percent((duration - down) as f64, duration as f64, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outage(down: i64, up: Option<i64>) -> Outage {
        Outage {
            id: 1,
            going_down: down,
            up_again: up,
        }
    }

    #[test]
    fn availability_follows_librenms() {
        let now = 1_000_000;
        // No finished outage in the window: the current status decides.
        assert_eq!(availability(&[], true, None, 86_400, now), 100.0);
        assert_eq!(
            availability(&[outage(now - 10, None)], false, None, 86_400, now),
            0.0
        );
        // One hour down within a day.
        let o = [outage(now - 7200, Some(now - 3600))];
        assert_eq!(availability(&o, true, None, 86_400, now), 95.833);
        // An outage that began before the window counts from its start.
        let o = [outage(now - 100_000, Some(now - 86_000))];
        assert_eq!(availability(&o, true, None, 86_400, now), 99.537);
        // A device two hours old, down for one of them.
        let o = [outage(now - 3600, Some(now))];
        assert_eq!(availability(&o, true, Some(now - 7200), 86_400, now), 50.0);
    }
}
