//! The path of one device poll: the availability check (ICMP and SNMP),
//! the modules in LibreNMS's order, then what LibreNMS records about the
//! poll itself (poller-perf RRDs, last_polled, device_graphs).
//!
//! A poll returns everything it would write; the caller hands the rows to
//! the DB writer and the updates to the RRD writer. A failing device is an
//! outcome in the report, never an error.

pub mod engine;
pub mod fastping;
pub mod php;
pub mod status;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::Settings;
use crate::db::Val;
use crate::db::changes::{Changes, Filter, TableChange};
use crate::db::state::DeviceState;
use crate::device::Device;
use crate::icmp::{PingOptions, PingResult, Pinger};
use crate::modules::{ModuleDef, Poll, PollStore, Requires, Selection, SnmpSource, severity};
use crate::rrd::{Datum, DsType, RrdDef, RrdUpdate, ds};
use crate::snmp::{Session, SnmpClient};

/// `poller-perf.rrd` and `poller-perf-<module>.rrd`: seconds a poll took.
pub static POLLER_PERF: RrdDef = RrdDef {
    name: "poller-perf",
    datasets: &[ds("poller", DsType::Gauge, Some(0.0), None)],
};

const PING_MAX: Option<f64> = Some(65_535.0);

/// `icmp-perf.rrd`: the ping check's RTTs (ms) and packet counts.
pub static ICMP_PERF: RrdDef = RrdDef {
    name: "icmp-perf",
    datasets: &[
        ds("avg", DsType::Gauge, Some(0.0), PING_MAX),
        ds("xmt", DsType::Gauge, Some(0.0), PING_MAX),
        ds("rcv", DsType::Gauge, Some(0.0), PING_MAX),
        ds("min", DsType::Gauge, Some(0.0), PING_MAX),
        ds("max", DsType::Gauge, Some(0.0), PING_MAX),
    ],
};

/// What every poll shares.
#[derive(Clone)]
pub struct PollEnv {
    pub settings: Arc<Settings>,
    pub client: SnmpClient,
    /// None when ICMP is not permitted; checks then count as disabled.
    pub pinger: Option<Pinger>,
    pub store: Arc<dyn PollStore>,
}

/// Who polled a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PolledBy {
    /// ironpoll's own code.
    Native,
    /// LibreNMS's PHP, after ironpoll's rows were committed.
    Php,
}

/// How long one module took, and how it ended.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleReport {
    pub module: &'static str,
    pub by: PolledBy,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The outcome of one device poll.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceReport {
    pub device_id: u32,
    pub hostname: String,
    pub status: bool,
    pub status_reason: String,
    pub seconds: f64,
    pub modules: Vec<ModuleReport>,
    /// Enabled modules LibreNMS's PHP polls for this device, in LibreNMS
    /// order (they run once this poll's rows are committed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub php_modules: Vec<&'static str>,
    /// How the PHP run went, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub php: Option<php::PhpRun>,
    /// LibreNMS's post-poll work done by ironpoll (alert rules, device
    /// groups), or why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_poll: Option<Result<crate::alerting::AfterPoll, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping: Option<PingSummary>,
    /// Why SNMP could not be used, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snmp_error: Option<String>,
    pub output: serde_json::Map<String, serde_json::Value>,
    /// Problems with single entities, by module.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    #[serde(skip)]
    pub changes: Changes,
    #[serde(skip)]
    pub rrd: Vec<RrdUpdate>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PingSummary {
    pub transmitted: u32,
    pub received: u32,
    pub loss_percent: u32,
    pub min_ms: f64,
    pub avg_ms: f64,
    pub max_ms: f64,
}

impl From<&PingResult> for PingSummary {
    fn from(r: &PingResult) -> PingSummary {
        PingSummary {
            transmitted: r.transmitted,
            received: r.received,
            loss_percent: r.loss_percent(),
            min_ms: r.min(),
            avg_ms: r.avg(),
            max_ms: r.max(),
        }
    }
}

/// Polls one device.
pub async fn poll_device(
    env: &PollEnv,
    device: Device,
    state: DeviceState,
    selection: &Selection,
) -> DeviceReport {
    let started = Instant::now();
    let now = unix_now();
    let settings: &Settings = &env.settings;
    let original = device.clone();

    // Where the device is: overwrite_ip or its hostname, resolved once for
    // ICMP and SNMP alike.
    let resolved = resolve(&device).await;

    // The SNMP session, unless the row makes SNMP impossible.
    let mut snmp_error = None;
    let session: Option<Session> = if device.snmp_disable {
        None
    } else {
        match (device.snmp_setup(&state.attribs, settings), &resolved) {
            (Ok(setup), Ok(ip)) => {
                let addr = SocketAddr::new(*ip, setup.target.port);
                Some(
                    env.client
                        .session_to(addr, &setup.target, setup.credentials, setup.options),
                )
            }
            (Err(e), _) => {
                snmp_error = Some(e.to_string());
                None
            }
            (_, Err(e)) => {
                snmp_error = Some(e.clone());
                None
            }
        }
    };

    let icmp_enabled = settings.icmp_check
        && state.attribs.get("override_icmp_disable") != Some("true")
        && env.pinger.is_some();
    let ping = match (&env.pinger, icmp_enabled) {
        (Some(pinger), true) => Some(match &resolved {
            Ok(ip) => {
                pinger
                    .ping(*ip, PingOptions::from_settings(&settings.ping))
                    .await
            }
            Err(e) => PingResult {
                transmitted: 0,
                error: Some(e.clone()),
                ..PingResult::default()
            },
        }),
        _ => None,
    };

    let mut poll = Poll::new(
        device,
        state,
        settings,
        session.as_ref().map(|s| s as &dyn SnmpSource),
        env.store.as_ref(),
        now,
    );
    if let Ok(ip) = &resolved {
        note_ip(&mut poll, &original, *ip);
    }

    // The availability check. Why SNMP failed, when it did: the client's
    // error names the agent and the cause (a timeout, a refused TCP connection), never the community
    // or a key.
    const NO_ANSWER: &str = "no answer to an SNMP get of sysObjectID.0";
    let snmp_check = match (&session, ping.as_ref().is_none_or(PingResult::alive)) {
        (Some(s), true) => Some(
            status::snmp_answers(s)
                .await
                .map_err(|e| format!("{NO_ANSWER}: {e}")),
        ),
        (None, true) if !original.snmp_disable => Some(Err(NO_ANSWER.to_string())),
        _ => None,
    };
    let snmp_ok = snmp_check.as_ref().map(Result::is_ok);
    if let Some(Err(why)) = snmp_check
        && snmp_error.is_none()
    {
        snmp_error = Some(why);
    }
    status::apply(&mut poll, ping.as_ref(), snmp_ok, &original);
    if let Some(p) = &ping {
        status::save_ping_stats(&mut poll, p);
    }

    // The modules.
    let snmp_available = !original.snmp_disable
        && poll.device.status
        && !poll.device.status_reason.split(',').any(|r| r == "snmp")
        && session.is_some();
    let device_for_selection = poll.device.clone();
    let modules: Vec<&'static ModuleDef> =
        selection.modules(&device_for_selection, &poll.state, settings);
    let os = device_for_selection.os.as_deref().unwrap_or("");
    let version = device_for_selection.version.as_deref().unwrap_or("");
    let mut reports = Vec::with_capacity(modules.len());
    let mut php_modules = Vec::new();
    for m in modules {
        // LibreNMS's `shouldPoll`: what the module needs from the device.
        let can_poll = match m.requires {
            Requires::Snmp => snmp_available,
            Requires::Nothing | Requires::UnixAgent => true,
            Requires::Ipmi => poll.state.attribs.get("ipmi_hostname").is_some(),
        };
        if !can_poll {
            continue;
        }
        let Some(poll_fn) = m.native_for(os, version) else {
            php_modules.push(m.name);
            continue;
        };
        let t = Instant::now();
        let result = poll_fn(&mut poll)
            .instrument(tracing::debug_span!("module", module = m.name))
            .await;
        let seconds = t.elapsed().as_secs_f64();
        metrics::histogram!("ironpoll_module_poll_seconds", "module" => m.name).record(seconds);
        let error = match result {
            Ok(()) => None,
            Err(e) => {
                metrics::counter!("ironpoll_module_errors_total", "module" => m.name).increment(1);
                tracing::warn!(
                    device = poll.device.device_id,
                    hostname = %poll.device.hostname,
                    module = m.name,
                    error = %e, "module failed"
                );
                poll.event(
                    format!(
                        "Error polling {} module: {}. Check log file for more details.",
                        m.name,
                        error_class(&e)
                    ),
                    "poller",
                    severity::ERROR,
                    None,
                );
                Some(e.to_string())
            }
        };
        poll.rrd(
            &["poller-perf", m.name],
            &POLLER_PERF,
            vec![Datum::Float(seconds)],
        );
        poll.enable_graph("poller_modules_perf");
        tracing::debug!(
            device = poll.device.device_id,
            module = m.name,
            by = "native",
            seconds = format!("{seconds:.3}"),
            "module polled"
        );
        reports.push(ModuleReport {
            module: m.name,
            by: PolledBy::Native,
            seconds,
            error,
        });
    }

    let seconds = started.elapsed().as_secs_f64();
    if !selection.is_override() {
        if poll.device.status {
            poll.set_device("last_polled", Val::Now);
            poll.set_device("last_polled_timetaken", seconds);
            poll.rrd(&["poller-perf"], &POLLER_PERF, vec![Datum::Float(seconds)]);
        }
        if icmp_enabled {
            poll.enable_graph("ping_perf");
        }
        persist_graphs(&mut poll);
    }
    let step = f64::from(settings.rrd.step);
    if seconds > step {
        poll.event(
            format!(
                "Polling took longer than {} minutes!  This will cause gaps in graphs.",
                crate::librenms::php::float_to_string(crate::librenms::php::round(step / 60.0, 2))
            ),
            "system",
            severity::ERROR,
            None,
        );
    }
    poll.finish_device_row();
    DeviceReport {
        device_id: poll.device.device_id,
        hostname: poll.device.hostname.clone(),
        status: poll.device.status,
        status_reason: poll.device.status_reason.clone(),
        seconds,
        modules: reports,
        php_modules,
        php: None,
        after_poll: None,
        ping: ping.as_ref().map(PingSummary::from),
        snmp_error: if snmp_available { None } else { snmp_error },
        output: poll.output,
        problems: poll.problems,
        changes: poll.changes,
        rrd: poll.rrd,
    }
}

/// The exception class LibreNMS names in its module-error eventlog.
fn error_class(e: &crate::modules::ModuleError) -> &'static str {
    match e {
        crate::modules::ModuleError::Snmp(_) => "SnmpException",
        crate::modules::ModuleError::Db(_) => "QueryException",
        crate::modules::ModuleError::Other(_) => "Exception",
    }
}

/// device_graphs: add what this poll enabled; when the device is up, drop
/// what it did not.
fn persist_graphs(poll: &mut Poll<'_>) {
    let enabled: BTreeSet<String> = poll.graphs.clone();
    let known = poll.state.graphs.clone();
    let device_id = poll.device.device_id;
    for g in enabled.difference(&known) {
        poll.changes.insert(
            "device_graphs",
            vec![("device_id", Val::from(device_id)), ("graph", Val::text(g))],
        );
    }
    if poll.device.status {
        for g in known.difference(&enabled) {
            poll.changes.push(TableChange::Delete {
                table: "device_graphs",
                filters: vec![
                    Filter::Eq("device_id", Val::from(device_id)),
                    Filter::Eq("graph", Val::text(g)),
                ],
            });
        }
    }
}

/// devices.ip follows the address the device resolves to; a change is
/// logged like LibreNMS's device observer logs it.
fn note_ip(poll: &mut Poll<'_>, original: &Device, ip: IpAddr) {
    let packed = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    if original.ip.as_deref() == Some(packed.as_slice()) {
        return;
    }
    let old = original.ip.as_deref().and_then(unpack_ip);
    let message = match old {
        Some(o) if o != ip => format!("IP: {o} -> {ip}"),
        _ => format!("IP: {ip}"),
    };
    poll.event(message, "system", severity::NOTICE, None);
    poll.set_device("ip", Val::Bytes(packed));
}

fn unpack_ip(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

/// The device's address: a literal, or a DNS answer (IPv6 preferred for
/// udp6/tcp6 devices, IPv4 otherwise).
pub(crate) async fn resolve(device: &Device) -> Result<IpAddr, String> {
    let host = device.poll_host().trim_matches(['[', ']']);
    if host.is_empty() {
        return Err(format!("device {}: no hostname", device.device_id));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    let lookup = tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((host, 0)));
    let addrs: Vec<SocketAddr> = match lookup.await {
        Ok(Ok(a)) => a.collect(),
        Ok(Err(e)) => return Err(format!("{host}: {e}")),
        Err(_) => return Err(format!("{host}: name lookup timed out")),
    };
    let want_v6 = device.ipv6();
    addrs
        .iter()
        .find(|a| a.is_ipv6() == want_v6)
        .or_else(|| addrs.first())
        .map(SocketAddr::ip)
        .ok_or_else(|| format!("{host}: no address"))
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The exit status `lnms device:poll` gives: 0 when a device was polled
/// up, 6 when every attempted device was down, 1 when none was attempted.
pub fn exit_code(reports: &[DeviceReport]) -> u8 {
    if reports.iter().any(|r| r.status) {
        0
    } else if reports.is_empty() {
        1
    } else {
        6
    }
}

/// Records a ping's RRD update (icmp-perf.rrd: avg, xmt, rcv, min, max).
pub fn icmp_perf_values(p: &PingResult) -> Vec<Datum> {
    vec![
        Datum::Float(p.avg()),
        Datum::Int(i64::from(p.transmitted)),
        Datum::Int(i64::from(p.received)),
        Datum::Float(p.min()),
        Datum::Float(p.max()),
    ]
}
