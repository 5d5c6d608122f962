//! The availability check: ICMP and SNMP decide a device's status, its
//! status_reason, its outages and the up/down eventlog, as LibreNMS's
//! `CheckDeviceAvailability` does.

use std::collections::BTreeSet;

use crate::db::Val;
use crate::db::changes::{Filter, TableChange};
use crate::db::state::{DeviceStats, Outage};
use crate::device::Device;
use crate::icmp::PingResult;
use crate::mib::scalars;
use crate::modules::{Poll, severity};
use crate::snmp::{Oid, Session};

use super::icmp_perf_values;

/// LibreNMS's SNMP check: any answer to a GET of sysObjectID.0 counts,
/// even noSuchObject. The error says why there was none.
pub async fn snmp_answers(session: &Session) -> Result<(), crate::snmp::Error> {
    session
        .get(&[Oid::from_slice(scalars::SYS_OBJECT_ID)])
        .await
        .map(drop)
}

/// Sets status and status_reason from this run's checks; writes the
/// eventlog and outage rows a change brings.
///
/// `ping` is None when ICMP is disabled; `snmp` None when SNMP was not
/// checked (disabled, or ICMP already failed).
pub fn apply(
    poll: &mut Poll<'_>,
    ping: Option<&PingResult>,
    snmp: Option<bool>,
    original: &Device,
) {
    let icmp_enabled = ping.is_some();
    let snmp_enabled = !original.snmp_disable;
    let mut failed = BTreeSet::new();
    let mut checked = BTreeSet::new();
    if let Some(p) = ping {
        checked.insert("icmp");
        if !p.alive() {
            failed.insert("icmp");
        }
    }
    if let Some(ok) = snmp {
        checked.insert("snmp");
        if !ok {
            failed.insert("snmp");
        }
    }
    // Sources that failed before and were not checked this time still
    // count, as long as they are enabled.
    for previous in original.status_reason.split(',').map(str::trim) {
        let enabled = match previous {
            "icmp" => icmp_enabled,
            "snmp" => snmp_enabled,
            _ => false,
        };
        if enabled && !checked.contains(previous) {
            failed.insert(if previous == "icmp" { "icmp" } else { "snmp" });
        }
    }
    let status = failed.is_empty();
    let reason = failed.into_iter().collect::<Vec<_>>().join(",");
    let changed = status != original.status || reason != original.status_reason;
    poll.device.status = status;
    poll.device.status_reason = reason.clone();
    if status != original.status {
        poll.set_device("status", status);
    }
    if reason != original.status_reason {
        poll.set_device("status_reason", reason.clone());
    }
    if changed {
        let (kind, why) = if status {
            ("up", original.status_reason.as_str())
        } else {
            ("down", reason.as_str())
        };
        // One line per change, from every path that checks a device (a
        // poll, a fast-ping round).
        tracing::info!(
            device = original.device_id,
            hostname = %original.hostname,
            up = status,
            reason = %reason,
            was = %original.status_reason,
            "device status changed"
        );
        let by = if poll.settings.distributed_poller && !poll.settings.node_id.is_empty() {
            format!(" by {}", poll.settings.node_id)
        } else {
            String::new()
        };
        let title = if status { "Up" } else { "Down" };
        poll.event(
            format!("Device status changed to {title} from {why} check{by}."),
            kind,
            severity::INFO,
            None,
        );
    }
    update_outages(poll, status);
}

/// Closes open outages when up; opens one when down and none is open.
fn update_outages(poll: &mut Poll<'_>, up: bool) {
    let device_id = poll.device.device_id;
    let now = poll.now;
    let open = poll.state.outages.iter().any(|o| o.up_again.is_none());
    if up {
        if open {
            poll.changes.push(TableChange::UpdateWhere {
                table: "device_outages",
                set: vec![("up_again", Val::Int(now))],
                filters: vec![
                    Filter::Eq("device_id", Val::from(device_id)),
                    Filter::IsNull("up_again"),
                ],
            });
            for o in poll
                .state
                .outages
                .iter_mut()
                .filter(|o| o.up_again.is_none())
            {
                o.up_again = Some(now);
            }
        }
    } else if !open {
        // One open outage per device, as LibreNMS keeps it.
        poll.changes.push(TableChange::InsertUnless {
            table: "device_outages",
            row: vec![
                ("device_id", Val::from(device_id)),
                ("going_down", Val::Int(now)),
            ],
            exists: vec![
                Filter::Eq("device_id", Val::from(device_id)),
                Filter::IsNull("up_again"),
            ],
        });
        poll.state.outages.push(Outage {
            id: 0,
            going_down: now,
            up_again: None,
        });
    }
}

/// last_ping, last_ping_timetaken, device_stats and icmp-perf.rrd from a
/// ping, as LibreNMS saves them after its fping.
pub fn save_ping_stats(poll: &mut Poll<'_>, p: &PingResult) {
    save_ping_row(poll, p);
    poll.rrd(&["icmp-perf"], &super::ICMP_PERF, icmp_perf_values(p));
}

/// last_ping, last_ping_timetaken and device_stats from a ping.
pub fn save_ping_row(poll: &mut Poll<'_>, p: &PingResult) {
    poll.set_device("last_ping", Val::Now);
    let avg = p.avg();
    if avg != 0.0 {
        poll.set_device("last_ping_timetaken", avg);
        poll.device.last_ping_timetaken = Some(avg);
    }
    let factor = poll.settings.device_stats_avg_factor;
    let mut stats = poll.state.stats.clone().unwrap_or_default();
    fill_stats(&mut stats, p, factor);
    poll.state.stats = Some(stats.clone());
    let opt = |v: Option<f64>| v.map_or(Val::Null, Val::Float);
    poll.changes.upsert(
        "device_stats",
        &["device_id"],
        vec![
            ("device_id", Val::from(poll.device.device_id)),
            ("ping_last_timestamp", Val::Now),
            ("ping_rtt_last", opt(stats.ping_rtt_last)),
            ("ping_rtt_prev", opt(stats.ping_rtt_prev)),
            ("ping_rtt_avg", opt(stats.ping_rtt_avg)),
            ("ping_loss_last", opt(stats.ping_loss_last)),
            ("ping_loss_prev", opt(stats.ping_loss_prev)),
            ("ping_loss_avg", opt(stats.ping_loss_avg)),
            ("created_at", Val::Now),
            ("updated_at", Val::Now),
        ],
    );
}

/// LibreNMS's `DeviceStats::fillStats`: last, previous and an exponentially
/// weighted average of RTT and loss. PHP's `?:` treats 0 as missing.
pub fn fill_stats(s: &mut DeviceStats, p: &PingResult, factor: f64) {
    let truthy = |v: Option<f64>| v.filter(|x| *x != 0.0);
    let avg = p.avg();
    if avg != 0.0 {
        s.ping_rtt_prev = Some(truthy(s.ping_rtt_last).unwrap_or(avg));
        s.ping_rtt_last = Some(avg);
        s.ping_rtt_avg = Some(match truthy(s.ping_rtt_avg) {
            Some(a) => a + (avg - a) * factor,
            None => avg,
        });
    }
    if p.transmitted > 0 {
        let loss = 100.0 * f64::from(p.transmitted - p.received) / f64::from(p.transmitted);
        s.ping_loss_prev = Some(truthy(s.ping_loss_last).unwrap_or(loss));
        s.ping_loss_last = Some(loss);
        s.ping_loss_avg = Some(match truthy(s.ping_loss_avg) {
            Some(a) => a + (loss - a) * factor,
            None => loss,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(xmt: u32, rcv: u32, rtt: f64) -> PingResult {
        PingResult {
            transmitted: xmt,
            received: rcv,
            rtts: vec![rtt; rcv as usize],
            ..PingResult::default()
        }
    }

    #[test]
    fn stats_average_as_librenms_does() {
        let mut s = DeviceStats {
            ping_rtt_last: Some(20.0),
            ping_rtt_prev: Some(10.0),
            ping_rtt_avg: Some(10.0),
            ..DeviceStats::default()
        };
        fill_stats(&mut s, &ping(3, 3, 30.0), 0.05);
        assert_eq!(
            (s.ping_rtt_prev, s.ping_rtt_last, s.ping_rtt_avg),
            (Some(20.0), Some(30.0), Some(11.0))
        );
        // No replies: RTT stays, loss moves.
        fill_stats(&mut s, &ping(3, 0, 0.0), 0.05);
        assert_eq!(s.ping_rtt_last, Some(30.0));
        assert_eq!(s.ping_loss_last, Some(100.0));
        let mut s = DeviceStats {
            ping_loss_last: Some(20.0),
            ping_loss_prev: Some(10.0),
            ping_loss_avg: Some(5.0),
            ..DeviceStats::default()
        };
        fill_stats(&mut s, &ping(5, 4, 1.0), 0.05);
        assert_eq!(
            (s.ping_loss_prev, s.ping_loss_last, s.ping_loss_avg),
            (Some(20.0), Some(20.0), Some(5.75))
        );
    }
}
