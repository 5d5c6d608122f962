//! Every setting ironpoll reads, its LibreNMS key, default and validation.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::{ConfigError, Mode, Source};
use crate::secret::Secret;

/// Names after `IRONPOLL_` that are not settings (scripts and tests use them).
/// (`IRONPOLL_TEST_*` are the tests' own too.)
pub(super) const NON_SETTING_ENV: &[&str] = &[
    "SNMPSIM",
    "LIBRENMS_FIXTURES",
    "DISPATCHER_PYTHON",
    "WORK",
    "CONFIG",
    "MARIADB_PORT",
    "UPDATE_BASELINE",
    "UPDATE_GOLDEN",
    "CONFORMANCE_ONLY",
];

/// LibreNMS's default RRAs (`rrd_rra`).
pub const DEFAULT_RRA: &str = "RRA:AVERAGE:0.5:1:2016 RRA:AVERAGE:0.5:6:1440 RRA:AVERAGE:0.5:24:1440 RRA:AVERAGE:0.5:288:1440 RRA:MIN:0.5:1:2016 RRA:MIN:0.5:6:1440 RRA:MIN:0.5:24:1440 RRA:MIN:0.5:288:1440 RRA:MAX:0.5:1:2016 RRA:MAX:0.5:6:1440 RRA:MAX:0.5:24:1440 RRA:MAX:0.5:288:1440 RRA:LAST:0.5:1:2016";

/// What the defaults depend on.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub mode: Mode,
    pub librenms_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct DbSettings {
    /// `mysql://...` or `sqlite:PATH`; when empty, built from the parts.
    pub url: String,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub username: String,
    pub password: Secret,
    pub socket: String,
    /// Session time zone; empty keeps the server's.
    pub timezone: String,
    /// Connections ironpoll may hold open at once.
    pub max_connections: u32,
    /// Rows the database writer holds at most (queue included) before
    /// polls wait for it.
    pub held_rows: u64,
    /// The same bound in memory, MiB.
    pub held_mb: u64,
    /// Seconds a write transaction may take before it is abandoned with
    /// its connection and retried on a fresh one.
    pub commit_deadline_secs: u32,
}

#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub host: String,
    pub port: u16,
    pub db: i64,
    pub username: String,
    pub password: Secret,
    pub scheme: String,
    pub socket: String,
    pub sentinel: String,
    pub sentinel_service: String,
    pub timeout: u32,
}

/// Who else polls this node's devices, and how they agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coordination {
    /// No one: in-process leases.
    Alone,
    /// A LibreNMS dispatcher cluster, through Redis.
    Dispatcher,
    /// A cron-driven poller-wrapper.py cluster, through memcached.
    Wrapper,
}

impl std::fmt::Display for Coordination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Coordination::Alone => "alone",
            Coordination::Dispatcher => "dispatcher",
            Coordination::Wrapper => "wrapper",
        })
    }
}

/// One kind of work of LibreNMS's dispatcher service
/// (`service_<task>_enabled`, `_frequency`, `_workers`).
#[derive(Debug, Clone)]
pub struct TaskSettings {
    /// `service_<task>_enabled`, used while `schedule_type.<task>` is
    /// `legacy`.
    pub enabled: bool,
    /// `schedule_type.<task>`: `legacy`, `cron`, `dispatcher`, `scheduler`.
    pub schedule: String,
    pub frequency: u32,
    pub workers: u32,
}

impl TaskSettings {
    fn new(enabled: bool, frequency: u32, workers: u32) -> TaskSettings {
        TaskSettings {
            enabled,
            schedule: "legacy".into(),
            frequency,
            workers,
        }
    }

    /// Whether the dispatcher runs this work, as `ServiceConfig.populate`
    /// decides: the enable flag under `legacy`, else only `dispatcher`.
    pub fn dispatched(&self) -> bool {
        if self.schedule == "legacy" {
            self.enabled
        } else {
            self.schedule == "dispatcher"
        }
    }
}

/// What a node of a LibreNMS dispatcher cluster (Redis) needs besides the
/// poller's own settings.
#[derive(Debug, Clone)]
pub struct DispatcherSettings {
    /// `service_master_timeout`: the master lock's lifetime.
    pub master_timeout: u32,
    /// `service_poller_enabled` and `schedule_type.poller`; frequency and
    /// workers are the poller's.
    pub poller: TaskSettings,
    pub discovery: TaskSettings,
    pub services: TaskSettings,
    pub alerting: TaskSettings,
    pub billing: TaskSettings,
    /// `service_billing_calculate_frequency`.
    pub billing_calculate: u32,
    pub ping: TaskSettings,
    /// `REDIS_SENTINEL_USERNAME` / `REDIS_SENTINEL_PASSWORD`.
    pub sentinel_username: String,
    pub sentinel_password: Secret,
}

#[derive(Debug, Clone)]
pub struct MemcachedSettings {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone)]
pub struct RrdSettings {
    pub enable: bool,
    pub dir: PathBuf,
    /// `host:port`, `unix:/path` or a socket path; empty for local files.
    pub rrdcached: String,
    pub step: u32,
    pub heartbeat: u32,
    pub rra: Vec<String>,
    /// Updates held while rrdcached is unreachable; past this they are
    /// dropped and counted (only when below `held_updates`: otherwise
    /// polls wait for room first).
    pub buffer_limit: usize,
    /// Updates the RRD writer holds at most (queue included) before polls
    /// wait for it.
    pub held_updates: u64,
    /// The same bound in memory, MiB.
    pub held_mb: u64,
}

#[derive(Debug, Clone)]
pub struct SnmpSettings {
    pub timeout_secs: f64,
    pub retries: u32,
    /// 0: net-snmp's default (10).
    pub max_repeaters: u32,
    pub max_oid: usize,
}

/// `fping_options.*`.
#[derive(Debug, Clone)]
pub struct PingSettings {
    pub count: u32,
    pub interval_ms: u32,
    pub timeout_ms: u32,
    pub tos: u8,
    pub retries: u32,
}

/// ironpoll's fast ping (`fast_ping.*`): every device pinged between polls.
#[derive(Debug, Clone)]
pub struct FastPingSettings {
    /// Run the fast-ping loop in `ironpoll run`.
    pub enable: bool,
    /// Seconds between two pings of a device.
    pub interval: u32,
    /// Echoes per device per round (then `fping_options.retries` more for
    /// a device that did not answer).
    pub count: u32,
    /// Step of icmp-perf.rrd written by fast ping; 0 writes it only from
    /// the regular poll, at `rrd.step`.
    pub rrd_step: u32,
}

#[derive(Debug, Clone)]
pub struct PollerSettings {
    pub frequency: u32,
    pub workers: u32,
    pub down_retry: u32,
    pub groups: Vec<i64>,
    /// Device polls in flight at once.
    pub concurrency: usize,
    /// A poll still running after this many seconds is abandoned.
    pub device_deadline: u32,
    /// MiB of resident memory at which no new poll starts (0: no mark).
    pub memory_high: u64,
}

/// LibreNMS's PHP, for the modules ironpoll hands to it.
#[derive(Debug, Clone)]
pub struct PhpSettings {
    /// `lnms device:poll` processes at once.
    pub processes: usize,
    /// Seconds a PHP run may take before it is killed; 0: the poller
    /// frequency.
    pub deadline: u32,
}

/// LibreNMS's per-OS settings (`os.<os>.<key>`), from its OS definitions
/// and the `config` table: read with LibreNMS's `getOsSetting` (the OS's
/// value, else the global one) and `getCombined` (global and OS lists
/// together) rules by the code that needs them.
#[derive(Debug, Clone, Default)]
pub struct OsSettings(BTreeMap<String, BTreeMap<String, Value>>);

/// How a per-OS key's value is checked.
enum OsKind {
    Bool,
    Text,
    List,
    Regexes,
    Count,
}

fn os_kind(key: &str) -> Option<OsKind> {
    Some(match key {
        "empty_ifdescr" | "snmp_bulk" | "sensor_descr" | "bad_uptime" | "bad_snmpEngineTime"
        | "bad_hrSystemUptime" | "ifname" | "ifXmcbc" => OsKind::Bool,
        "os" | "group" | "icon" => OsKind::Text,
        "good_if"
        | "bad_if"
        | "bad_iftype"
        | "bad_ifoperstatus"
        | "bad_ifXEntry"
        | "ignore_mount_string"
        | "ignore_mount_type"
        | "oids.unordered"
        | "oids.no_bulk" => OsKind::List,
        "bad_if_regexp"
        | "bad_ifname_regexp"
        | "bad_ifalias_regexp"
        | "bad_disk_regexp"
        | "ignore_mount_regexp" => OsKind::Regexes,
        "snmp_max_oid" | "snmp.max_repeaters" => OsKind::Count,
        _ => return None,
    })
}

impl OsSettings {
    /// `os.<os>.<key>` when the OS sets it.
    pub fn get(&self, os: &str, key: &str) -> Option<&Value> {
        self.0.get(os)?.get(key)
    }

    pub fn flag(&self, os: &str, key: &str) -> Option<bool> {
        self.get(os, key).and_then(Value::as_bool)
    }

    pub fn text(&self, os: &str, key: &str) -> Option<&str> {
        self.get(os, key).and_then(Value::as_str)
    }

    pub fn count(&self, os: &str, key: &str) -> Option<u64> {
        self.get(os, key).and_then(Value::as_u64)
    }

    /// The OS's list for `key` (empty when it sets none).
    pub fn list(&self, os: &str, key: &str) -> Vec<String> {
        match self.get(os, key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// LibreNMS's `getCombined`: the global list and the OS's, without
    /// duplicates, global entries first.
    pub fn combined(&self, os: &str, key: &str, global: &[String]) -> Vec<String> {
        let mut out: Vec<String> = global.to_vec();
        for item in self.list(os, key) {
            if !out.contains(&item) {
                out.push(item);
            }
        }
        out
    }

    /// Whether LibreNMS's definitions know the OS.
    pub fn defined(&self, os: &str) -> bool {
        self.text(os, "os").is_some()
    }

    /// The OS's group (`cisco`, `unix`, `printer`...).
    pub fn group(&self, os: &str) -> Option<&str> {
        self.text(os, "group")
    }

    fn set(&mut self, os: &str, key: &str, v: &Value) -> Result<(), ApplyError> {
        let inv = ApplyError::Invalid;
        let value = match os_kind(key).ok_or(ApplyError::Unknown)? {
            OsKind::Bool => Value::Bool(boolean(v).map_err(inv)?),
            OsKind::Text => Value::String(string(v).map_err(inv)?),
            OsKind::List => Value::from(str_list(v).map_err(inv)?),
            OsKind::Regexes => Value::from(regex_list(v).map_err(inv)?),
            OsKind::Count => Value::from(ranged(v, 0, 1_000_000).map_err(inv)?),
        };
        self.0
            .entry(os.to_string())
            .or_default()
            .insert(key.to_string(), value);
        Ok(())
    }
}

/// `poller_modules.*` and `os.<os>.poller_modules.*` overrides.
#[derive(Debug, Clone, Default)]
pub struct ModuleSettings {
    pub global: BTreeMap<String, bool>,
    pub os: BTreeMap<String, BTreeMap<String, bool>>,
}

/// What decides which interfaces LibreNMS polls (global lists; LibreNMS
/// adds per-OS lists from its OS definitions).
#[derive(Debug, Clone)]
pub struct PortSettings {
    pub good_if: Vec<String>,
    pub bad_if: Vec<String>,
    pub bad_if_regexp: Vec<String>,
    pub bad_iftype: Vec<String>,
    pub bad_ifname_regexp: Vec<String>,
    pub bad_ifalias_regexp: Vec<String>,
    pub bad_ifoperstatus: Vec<String>,
    pub empty_ifdescr: bool,
    pub default_port_association_mode: String,
    pub ignore_unmapable_port: bool,
    pub rrdtool_tune: bool,
    /// Insert every valid interface when a device has no ports yet (the
    /// standalone store has no separate discovery; LibreNMS waits for its
    /// discovery instead).
    pub discover_when_empty: bool,
    /// LibreNMS's PoE port graphs (`port-id<N>-poe.rrd`), not polled
    /// natively: check-config and the start say so when it is on.
    pub enable_ports_poe: bool,
    /// LibreNMS's EtherLike port graphs: in LibreNMS 4ab87302 the code
    /// sends data-source names its file does not have, so nothing is
    /// recorded; ironpoll does not write the file either.
    pub enable_ports_etherlike: bool,
    /// The filters of each OS, compiled once each.
    filters: std::sync::Arc<parking_lot::Mutex<BTreeMap<String, std::sync::Arc<PortFilters>>>>,
}

/// What decides whether an interface of one OS is polled
/// (`is_port_valid`): LibreNMS's `getOsSetting` for `empty_ifdescr` and
/// `good_if` (the OS's value replaces the global one), `getCombined` for
/// the `bad_*` lists (the global list and the OS's), patterns compiled as
/// LibreNMS applies them (with the `i` flag).
#[derive(Debug)]
pub struct PortFilters {
    pub empty_ifdescr: bool,
    pub good_if: Vec<String>,
    pub bad_if: Vec<String>,
    pub bad_if_regexp: Vec<crate::librenms::php::Regex>,
    pub bad_ifname_regexp: Vec<crate::librenms::php::Regex>,
    pub bad_ifalias_regexp: Vec<crate::librenms::php::Regex>,
    pub bad_iftype: Vec<String>,
    pub bad_ifoperstatus: Vec<String>,
}

impl Settings {
    /// What an operator who turned on a ports option ironpoll does not do
    /// natively should be told.
    pub fn ports_not_native(&self) -> Vec<&'static str> {
        let mut notes = Vec::new();
        if self.ports.enable_ports_poe {
            notes.push(
                "enable_ports_poe is on: ironpoll does not poll PoE port counters (port-id<N>-poe.rrd); those graphs stop while ironpoll polls ports",
            );
        }
        if self.ports.enable_ports_etherlike {
            notes.push(
                "enable_ports_etherlike is on: LibreNMS's own EtherLike code records no data in this version (its data-source names do not match), and ironpoll does not write port-id<N>-dot3.rrd either",
            );
        }
        notes
    }

    /// The port filters of an OS.
    pub fn port_filters(&self, os: &str) -> std::sync::Arc<PortFilters> {
        let mut cache = self.ports.filters.lock();
        if let Some(f) = cache.get(os) {
            return f.clone();
        }
        let p = &self.ports;
        let o = &self.os;
        let compile = |list: Vec<String>| {
            list.iter()
                .filter_map(|r| crate::librenms::php::Regex::new_with_flags(r, "i").ok())
                .collect()
        };
        let filters = std::sync::Arc::new(PortFilters {
            empty_ifdescr: o.flag(os, "empty_ifdescr").unwrap_or(p.empty_ifdescr),
            good_if: match o.get(os, "good_if") {
                Some(_) => o.list(os, "good_if"),
                None => p.good_if.clone(),
            },
            bad_if: o.combined(os, "bad_if", &p.bad_if),
            bad_if_regexp: compile(o.combined(os, "bad_if_regexp", &p.bad_if_regexp)),
            bad_ifname_regexp: compile(o.combined(os, "bad_ifname_regexp", &p.bad_ifname_regexp)),
            bad_ifalias_regexp: compile(o.combined(
                os,
                "bad_ifalias_regexp",
                &p.bad_ifalias_regexp,
            )),
            bad_iftype: o.combined(os, "bad_iftype", &p.bad_iftype),
            bad_ifoperstatus: o.combined(os, "bad_ifoperstatus", &p.bad_ifoperstatus),
        });
        cache.insert(os.to_string(), filters.clone());
        filters
    }
}

#[derive(Debug, Clone)]
pub struct AvailabilitySettings {
    pub durations: Vec<i64>,
    pub consider_maintenance: bool,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub librenms_dir: PathBuf,
    pub db: DbSettings,
    pub node_id: String,
    pub redis: RedisSettings,
    pub rrd: RrdSettings,
    pub snmp: SnmpSettings,
    pub ping: PingSettings,
    pub fast_ping: FastPingSettings,
    pub icmp_check: bool,
    /// Where the Prometheus endpoint listens (`metrics.listen`,
    /// `host:port`); empty: no endpoint.
    pub metrics_listen: String,
    /// Where `ironpoll run` writes what it is doing now, for `ironpoll
    /// status` (`status_file`); empty: nowhere.
    pub status_file: String,
    /// `log.filter`: the daemon's log filter (`RUST_LOG` directives,
    /// e.g. `info,ironpoll::poller=debug`), applied at start and by a
    /// reload; empty: `RUST_LOG`, or `info`.
    pub log_filter: String,
    pub poller: PollerSettings,
    pub modules: ModuleSettings,
    pub os: OsSettings,
    pub php: PhpSettings,
    pub ports: PortSettings,
    pub availability: AvailabilitySettings,
    pub device_stats_avg_factor: f64,
    /// Disks ucd-diskio leaves out (PHP patterns; OS lists add to it).
    pub bad_disk_regexp: Vec<String>,
    pub discovery_on_reboot: bool,
    pub distributed_poller: bool,
    pub distributed_poller_name: String,
    /// The memcached server `poller-wrapper.py` nodes share
    /// (`distributed_poller_memcached_host`/`_port`).
    pub memcached: MemcachedSettings,
    pub dispatcher: DispatcherSettings,
    pub alert: AlertSettings,
    sources: BTreeMap<String, Source>,
}

/// Whether ironpoll runs the alert rules and device groups itself after a
/// device's rows are committed (`alerting.native`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeAlerting {
    /// For every device whose poll handed no module to LibreNMS's PHP
    /// (a PHP poll runs LibreNMS's own post-poll work).
    Auto,
    /// After every poll, PHP run or not.
    On,
    /// Never: other nodes (LibreNMS's own pollers) do it.
    Off,
}

impl std::fmt::Display for NativeAlerting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NativeAlerting::Auto => "auto",
            NativeAlerting::On => "on",
            NativeAlerting::Off => "off",
        })
    }
}

/// LibreNMS's alerting settings that decide what the rules write
/// (`alert.*`), and ironpoll's switch for running them.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    pub native: NativeAlerting,
    /// `alert.disable`: no rules run after a poll.
    pub disable: bool,
    /// `alert.default_only`: the contacts are the default address alone.
    pub default_only: bool,
    /// `alert.default_mail` (false in LibreNMS when unset).
    pub default_mail: Option<String>,
    pub syscontact: bool,
    pub users: bool,
    pub globals: bool,
    pub admins: bool,
    pub default_copy: bool,
    pub default_if_none: bool,
    /// Macros added or replaced by configuration (`alert.macros.rule.*`).
    pub macros: BTreeMap<String, String>,
    /// PHP's `date.timezone`, LibreNMS's application time zone
    /// (`php.timezone`): the day of the week of recurring maintenance is
    /// taken there. A name needs MariaDB's time zone tables; an offset
    /// (`+02:00`) does not.
    pub timezone: String,
}

pub(super) enum ApplyError {
    Unknown,
    Invalid(String),
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Settings {
    pub fn defaults(d: Defaults) -> Settings {
        let standalone = d.mode == Mode::Standalone;
        Settings {
            mode: d.mode,
            db: DbSettings {
                url: if standalone {
                    "sqlite:ironpoll.db".into()
                } else {
                    String::new()
                },
                host: "localhost".into(),
                port: 3306,
                database: "librenms".into(),
                username: "librenms".into(),
                password: Secret::from(""),
                socket: String::new(),
                timezone: String::new(),
                max_connections: 4,
                held_rows: 50_000,
                held_mb: 24,
                commit_deadline_secs: 60,
            },
            node_id: String::new(),
            redis: RedisSettings {
                host: "localhost".into(),
                port: 6379,
                db: 0,
                username: String::new(),
                password: Secret::from(""),
                scheme: String::new(),
                socket: String::new(),
                sentinel: String::new(),
                sentinel_service: String::new(),
                timeout: 60,
            },
            rrd: RrdSettings {
                enable: true,
                dir: if standalone {
                    PathBuf::from("rrd")
                } else {
                    d.librenms_dir.join("rrd")
                },
                rrdcached: String::new(),
                step: 300,
                heartbeat: 600,
                rra: DEFAULT_RRA.split_whitespace().map(str::to_string).collect(),
                buffer_limit: 1_000_000,
                held_updates: 100_000,
                held_mb: 24,
            },
            snmp: SnmpSettings {
                timeout_secs: 1.0,
                retries: 5,
                max_repeaters: 0,
                max_oid: 10,
            },
            ping: PingSettings {
                count: 3,
                interval_ms: 500,
                timeout_ms: 500,
                tos: 0,
                retries: 2,
            },
            fast_ping: FastPingSettings {
                enable: true,
                interval: 30,
                count: 1,
                rrd_step: 0,
            },
            icmp_check: true,
            metrics_listen: String::new(),
            // systemd's RuntimeDirectory=ironpoll (misc/ironpoll.service);
            // not written where that directory does not exist.
            status_file: "/run/ironpoll/status.json".into(),
            log_filter: String::new(),
            poller: PollerSettings {
                frequency: 300,
                workers: 24,
                down_retry: 60,
                groups: vec![0],
                concurrency: 512,
                device_deadline: 0,
                // No mark: holding polls back costs the cycle its period
                // (benches/RESULTS.md); it is for a node in a container
                // with a memory limit.
                memory_high: 0,
            },
            modules: ModuleSettings::default(),
            os: OsSettings::default(),
            // LibreNMS's dispatcher runs up to its poller workers (24) PHP
            // polls at once; a node that does most modules natively needs
            // fewer, each PHP process costing ~50 MB.
            php: PhpSettings {
                processes: 8,
                deadline: 0,
            },
            ports: PortSettings {
                good_if: Vec::new(),
                bad_if: strings(&[
                    "voip-null",
                    "virtual-",
                    "unrouted",
                    "eobc",
                    "lp0",
                    "-atm",
                    "faith0",
                    "container",
                    "async",
                    "plip",
                    "-physical",
                    "container",
                    "unrouted",
                    "bluetooth",
                    "isatap",
                    "ras",
                    "qos",
                    "span rp",
                    "span sp",
                    "sslvpn",
                    "pppoe-",
                    "irtual",
                ]),
                bad_if_regexp: strings(&["/^ng[0-9]+$/", "/^sl[0-9]/"]),
                bad_iftype: strings(&[
                    "voiceEncap",
                    "voiceFXO",
                    "voiceFXS",
                    "voiceOverAtm",
                    "voiceOverFrameRelay",
                    "voiceOverIp",
                    "ds0",
                    "ds1",
                    "ds3",
                    "sonet",
                    "atmSubInterface",
                    "aal5",
                    "mpls",
                ]),
                bad_ifname_regexp: Vec::new(),
                bad_ifalias_regexp: Vec::new(),
                bad_ifoperstatus: strings(&["notPresent"]),
                empty_ifdescr: false,
                default_port_association_mode: "ifIndex".into(),
                ignore_unmapable_port: false,
                rrdtool_tune: false,
                discover_when_empty: standalone,
                enable_ports_poe: false,
                enable_ports_etherlike: false,
                filters: Default::default(),
            },
            availability: AvailabilitySettings {
                durations: vec![86_400, 604_800, 2_592_000, 31_536_000],
                consider_maintenance: false,
            },
            device_stats_avg_factor: 0.05,
            bad_disk_regexp: Vec::new(),
            discovery_on_reboot: false,
            distributed_poller: false,
            distributed_poller_name: local_hostname(),
            // LibreNMS's defaults: a placeholder host, which fails to
            // answer as the wrapper expects of an unset server.
            memcached: MemcachedSettings {
                host: "example.net".into(),
                port: 11211,
            },
            // LibreNMS's config definitions (config_definitions.json).
            dispatcher: DispatcherSettings {
                master_timeout: 20,
                poller: TaskSettings::new(true, 300, 24),
                discovery: TaskSettings::new(true, 21_600, 16),
                services: TaskSettings::new(true, 300, 8),
                alerting: TaskSettings::new(true, 60, 1),
                billing: TaskSettings::new(true, 300, 2),
                billing_calculate: 60,
                ping: TaskSettings::new(false, 300, 1),
                sentinel_username: String::new(),
                sentinel_password: Secret::from(""),
            },
            alert: AlertSettings {
                native: NativeAlerting::Auto,
                disable: false,
                default_only: true,
                default_mail: None,
                syscontact: true,
                users: false,
                globals: true,
                admins: true,
                default_copy: true,
                default_if_none: false,
                macros: BTreeMap::new(),
                timezone: "UTC".into(),
            },
            librenms_dir: d.librenms_dir,
            sources: BTreeMap::new(),
        }
    }

    /// Where the value of `key` came from.
    /// How `ironpoll run` shares devices with other nodes: with
    /// `distributed_poller` on, through LibreNMS's dispatcher cluster when
    /// Redis is configured, else through poller-wrapper.py's memcached.
    pub fn coordination(&self) -> Coordination {
        if self.mode != Mode::Librenms || !self.distributed_poller {
            Coordination::Alone
        } else if self.redis_configured() {
            Coordination::Dispatcher
        } else {
            Coordination::Wrapper
        }
    }

    /// Whether a Redis server is configured at all: `REDIS_HOST`,
    /// `REDIS_SOCKET` or `REDIS_SENTINEL` given by some layer, not only
    /// the built-in `localhost`.
    pub fn redis_configured(&self) -> bool {
        ["redis.host", "redis.socket", "redis.sentinel"]
            .iter()
            .any(|k| self.source_of(k) != Source::Default)
    }

    pub fn source_of(&self, key: &str) -> Source {
        self.sources.get(key).cloned().unwrap_or(Source::Default)
    }

    pub(super) fn apply(
        &mut self,
        key: &str,
        v: &Value,
        source: &Source,
    ) -> Result<(), ApplyError> {
        use ApplyError::Invalid;
        let inv = Invalid;
        // Filters compiled before this setting are stale (and a clone's
        // cache is not this one's).
        self.ports.filters = Default::default();
        match key {
            "db.url" => self.db.url = string(v).map_err(inv)?,
            "db.host" => self.db.host = string(v).map_err(inv)?,
            "db.port" => self.db.port = ranged(v, 1, 65_535).map_err(inv)? as u16,
            "db.database" => self.db.database = string(v).map_err(inv)?,
            "db.username" => self.db.username = string(v).map_err(inv)?,
            "db.password" => self.db.password = Secret::from(string(v).map_err(inv)?.as_str()),
            "db.socket" => self.db.socket = string(v).map_err(inv)?,
            "db.timezone" => self.db.timezone = string(v).map_err(inv)?,
            "db.max_connections" => {
                self.db.max_connections = ranged(v, 1, 1_000).map_err(inv)? as u32
            }
            "db.held_rows" => self.db.held_rows = ranged(v, 1_000, 1 << 32).map_err(inv)? as u64,
            "db.held_mb" => self.db.held_mb = ranged(v, 1, 1 << 20).map_err(inv)? as u64,
            "db.commit_deadline" => {
                self.db.commit_deadline_secs = ranged(v, 1, 86_400).map_err(inv)? as u32
            }
            "node_id" => self.node_id = string(v).map_err(inv)?,
            "redis.host" => self.redis.host = string(v).map_err(inv)?,
            "redis.port" => self.redis.port = ranged(v, 1, 65_535).map_err(inv)? as u16,
            "redis.db" => self.redis.db = ranged(v, 0, 1 << 20).map_err(inv)?,
            "redis.username" => self.redis.username = string(v).map_err(inv)?,
            "redis.password" => {
                self.redis.password = Secret::from(string(v).map_err(inv)?.as_str())
            }
            "redis.scheme" => self.redis.scheme = string(v).map_err(inv)?,
            "redis.socket" => self.redis.socket = string(v).map_err(inv)?,
            "redis.sentinel" => self.redis.sentinel = string(v).map_err(inv)?,
            "redis.sentinel_service" => self.redis.sentinel_service = string(v).map_err(inv)?,
            "redis.timeout" => self.redis.timeout = ranged(v, 1, 86_400).map_err(inv)? as u32,
            "rrd.enable" => self.rrd.enable = boolean(v).map_err(inv)?,
            "rrd_dir" => {
                let dir = string(v).map_err(inv)?;
                if dir.is_empty() {
                    return Err(Invalid("must not be empty".into()));
                }
                self.rrd.dir = PathBuf::from(dir);
            }
            "rrdcached" => self.rrd.rrdcached = string(v).map_err(inv)?.trim().to_string(),
            "rrd.step" => self.rrd.step = ranged(v, 1, 86_400).map_err(inv)? as u32,
            "rrd.heartbeat" => self.rrd.heartbeat = ranged(v, 1, 864_000).map_err(inv)? as u32,
            "rrd_rra" => self.rrd.rra = rra_list(v).map_err(inv)?,
            "rrd.buffer_limit" => {
                self.rrd.buffer_limit = ranged(v, 0, 1 << 32).map_err(inv)? as usize
            }
            "rrd.held_updates" => {
                self.rrd.held_updates = ranged(v, 1_000, 1 << 32).map_err(inv)? as u64
            }
            "rrd.held_mb" => self.rrd.held_mb = ranged(v, 1, 1 << 20).map_err(inv)? as u64,
            "snmp.timeout" => {
                let t = float(v).map_err(inv)?;
                if !(t > 0.0 && t <= 600.0) {
                    return Err(Invalid("expected seconds between 0 and 600".into()));
                }
                self.snmp.timeout_secs = t;
            }
            "snmp.retries" => self.snmp.retries = ranged(v, 0, 100).map_err(inv)? as u32,
            "snmp.max_repeaters" => {
                self.snmp.max_repeaters = ranged(v, 0, 10_000).map_err(inv)? as u32
            }
            "snmp.max_oid" => self.snmp.max_oid = ranged(v, 1, 1_000).map_err(inv)? as usize,
            "fping_options.count" => self.ping.count = ranged(v, 1, 10_000).map_err(inv)? as u32,
            "fping_options.interval" => {
                self.ping.interval_ms = ranged(v, 20, 3_600_000).map_err(inv)? as u32
            }
            "fping_options.timeout" => {
                self.ping.timeout_ms = ranged(v, 1, 3_600_000).map_err(inv)? as u32
            }
            "fping_options.tos" => self.ping.tos = ranged(v, 0, 255).map_err(inv)? as u8,
            "fping_options.retries" => self.ping.retries = ranged(v, 0, 100).map_err(inv)? as u32,
            "icmp_check" => self.icmp_check = boolean(v).map_err(inv)?,
            "metrics.listen" => {
                let listen = string(v).map_err(inv)?;
                if !listen.is_empty() {
                    listen.parse::<std::net::SocketAddr>().map_err(|e| {
                        inv(format!("expected host:port, like 127.0.0.1:9923 ({e})"))
                    })?;
                }
                self.metrics_listen = listen;
            }
            "status_file" => self.status_file = string(v).map_err(inv)?,
            "log.filter" => {
                let directives = string(v).map_err(inv)?;
                tracing_subscriber::EnvFilter::try_new(&directives)
                    .map_err(|e| inv(format!("not a log filter ({e})")))?;
                self.log_filter = directives;
            }
            "fast_ping.enable" => self.fast_ping.enable = boolean(v).map_err(inv)?,
            "fast_ping.interval" => {
                self.fast_ping.interval = ranged(v, 1, 3_600).map_err(inv)? as u32
            }
            "fast_ping.count" => self.fast_ping.count = ranged(v, 1, 100).map_err(inv)? as u32,
            "fast_ping.rrd_step" => {
                self.fast_ping.rrd_step = ranged(v, 0, 86_400).map_err(inv)? as u32
            }
            "service_poller_frequency" => {
                self.poller.frequency = ranged(v, 1, 86_400).map_err(inv)? as u32
            }
            "service_poller_workers" => {
                self.poller.workers = ranged(v, 1, 100_000).map_err(inv)? as u32
            }
            "service_poller_down_retry" => {
                self.poller.down_retry = ranged(v, 1, 86_400).map_err(inv)? as u32
            }
            "distributed_poller_group" => self.poller.groups = int_list(v).map_err(inv)?,
            "poller.concurrency" => {
                self.poller.concurrency = ranged(v, 1, 1_000_000).map_err(inv)? as usize
            }
            "poller.device_deadline" => {
                self.poller.device_deadline = ranged(v, 0, 86_400).map_err(inv)? as u32
            }
            "poller.memory_high" => {
                self.poller.memory_high = ranged(v, 0, 1 << 30).map_err(inv)? as u64
            }
            "php.processes" => self.php.processes = ranged(v, 1, 1_000).map_err(inv)? as usize,
            "php.deadline" => self.php.deadline = ranged(v, 0, 86_400).map_err(inv)? as u32,
            "good_if" => self.ports.good_if = str_list(v).map_err(inv)?,
            "bad_if" => self.ports.bad_if = str_list(v).map_err(inv)?,
            "bad_if_regexp" => {
                self.ports.bad_if_regexp = regex_list(v).map_err(inv)?;
            }
            "bad_iftype" => self.ports.bad_iftype = str_list(v).map_err(inv)?,
            "bad_ifname_regexp" => {
                self.ports.bad_ifname_regexp = regex_list(v).map_err(inv)?;
            }
            "bad_ifalias_regexp" => {
                self.ports.bad_ifalias_regexp = regex_list(v).map_err(inv)?;
            }
            "bad_ifoperstatus" => self.ports.bad_ifoperstatus = str_list(v).map_err(inv)?,
            "empty_ifdescr" => self.ports.empty_ifdescr = boolean(v).map_err(inv)?,
            "default_port_association_mode" => {
                let mode = string(v).map_err(inv)?;
                if !["ifIndex", "ifName", "ifDescr", "ifAlias"].contains(&mode.as_str()) {
                    return Err(Invalid(
                        "expected ifIndex, ifName, ifDescr or ifAlias".into(),
                    ));
                }
                self.ports.default_port_association_mode = mode;
            }
            "ignore_unmapable_port" => {
                self.ports.ignore_unmapable_port = boolean(v).map_err(inv)?
            }
            "rrdtool_tune" => self.ports.rrdtool_tune = boolean(v).map_err(inv)?,
            "ports.discover_when_empty" => {
                self.ports.discover_when_empty = boolean(v).map_err(inv)?
            }
            "enable_ports_poe" => self.ports.enable_ports_poe = boolean(v).map_err(inv)?,
            "enable_ports_etherlike" => {
                self.ports.enable_ports_etherlike = boolean(v).map_err(inv)?
            }
            "graphing.availability" => {
                let d = int_list(v).map_err(inv)?;
                if d.iter().any(|x| *x <= 0) {
                    return Err(Invalid("durations must be positive seconds".into()));
                }
                self.availability.durations = d;
            }
            "graphing.availability_consider_maintenance" => {
                self.availability.consider_maintenance = boolean(v).map_err(inv)?
            }
            "device_stats_avg_factor" => {
                let f = float(v).map_err(inv)?;
                if !(0.000_001..=0.9).contains(&f) {
                    return Err(Invalid("expected a factor between 0.000001 and 0.9".into()));
                }
                self.device_stats_avg_factor = f;
            }
            "discovery_on_reboot" => self.discovery_on_reboot = boolean(v).map_err(inv)?,
            "bad_disk_regexp" => self.bad_disk_regexp = regex_list(v).map_err(inv)?,
            "distributed_poller" => self.distributed_poller = boolean(v).map_err(inv)?,
            "distributed_poller_name" => self.distributed_poller_name = string(v).map_err(inv)?,
            "service_master_timeout" => {
                self.dispatcher.master_timeout = ranged(v, 1, 3_600).map_err(inv)? as u32
            }
            "service_poller_enabled" => self.dispatcher.poller.enabled = boolean(v).map_err(inv)?,
            "service_discovery_enabled" => {
                self.dispatcher.discovery.enabled = boolean(v).map_err(inv)?
            }
            "service_discovery_frequency" => {
                self.dispatcher.discovery.frequency = ranged(v, 1, 604_800).map_err(inv)? as u32
            }
            "service_discovery_workers" => {
                self.dispatcher.discovery.workers = ranged(v, 1, 10_000).map_err(inv)? as u32
            }
            "service_services_enabled" => {
                self.dispatcher.services.enabled = boolean(v).map_err(inv)?
            }
            "service_services_frequency" => {
                self.dispatcher.services.frequency = ranged(v, 1, 86_400).map_err(inv)? as u32
            }
            "service_services_workers" => {
                self.dispatcher.services.workers = ranged(v, 1, 10_000).map_err(inv)? as u32
            }
            "service_alerting_enabled" => {
                self.dispatcher.alerting.enabled = boolean(v).map_err(inv)?
            }
            "service_alerting_frequency" => {
                self.dispatcher.alerting.frequency = ranged(v, 1, 86_400).map_err(inv)? as u32
            }
            "service_billing_enabled" => {
                self.dispatcher.billing.enabled = boolean(v).map_err(inv)?
            }
            "service_billing_frequency" => {
                self.dispatcher.billing.frequency = ranged(v, 1, 86_400).map_err(inv)? as u32
            }
            "service_billing_calculate_frequency" => {
                self.dispatcher.billing_calculate = ranged(v, 1, 86_400).map_err(inv)? as u32
            }
            "service_ping_enabled" => self.dispatcher.ping.enabled = boolean(v).map_err(inv)?,
            "service_ping_frequency" => {
                self.dispatcher.ping.frequency = ranged(v, 1, 86_400).map_err(inv)? as u32
            }
            "schedule_type.poller" => self.dispatcher.poller.schedule = string(v).map_err(inv)?,
            "schedule_type.discovery" => {
                self.dispatcher.discovery.schedule = string(v).map_err(inv)?
            }
            "schedule_type.services" => {
                self.dispatcher.services.schedule = string(v).map_err(inv)?
            }
            "schedule_type.alerting" => {
                self.dispatcher.alerting.schedule = string(v).map_err(inv)?
            }
            "schedule_type.billing" => self.dispatcher.billing.schedule = string(v).map_err(inv)?,
            "schedule_type.ping" => self.dispatcher.ping.schedule = string(v).map_err(inv)?,
            "redis.sentinel_username" => {
                self.dispatcher.sentinel_username = string(v).map_err(inv)?
            }
            "redis.sentinel_password" => {
                self.dispatcher.sentinel_password = Secret::from(string(v).map_err(inv)?.as_str())
            }
            "distributed_poller_memcached_host" => self.memcached.host = string(v).map_err(inv)?,
            "distributed_poller_memcached_port" => {
                self.memcached.port = ranged(v, 1, 65_535).map_err(inv)? as u16
            }
            "alerting.native" => {
                self.alert.native = match string(v).map_err(inv)?.as_str() {
                    "auto" => NativeAlerting::Auto,
                    "on" | "true" => NativeAlerting::On,
                    "off" | "false" => NativeAlerting::Off,
                    _ => return Err(Invalid("expected auto, on or off".into())),
                }
            }
            "alert.disable" => self.alert.disable = boolean(v).map_err(inv)?,
            "php.timezone" => {
                let tz = string(v).map_err(inv)?;
                if tz.is_empty()
                    || tz.contains(|c: char| !(c.is_ascii_alphanumeric() || "/_+-:".contains(c)))
                {
                    return Err(Invalid(
                        "expected a time zone name (Europe/Berlin) or offset (+02:00)".into(),
                    ));
                }
                self.alert.timezone = tz
            }
            "alert.default_only" => self.alert.default_only = boolean(v).map_err(inv)?,
            "alert.default_mail" => {
                // LibreNMS's default is false: no address.
                self.alert.default_mail = match v {
                    Value::Bool(false) | Value::Null => None,
                    v => Some(string(v).map_err(inv)?).filter(|s| !s.is_empty()),
                }
            }
            "alert.syscontact" => self.alert.syscontact = boolean(v).map_err(inv)?,
            "alert.users" => self.alert.users = boolean(v).map_err(inv)?,
            "alert.globals" => self.alert.globals = boolean(v).map_err(inv)?,
            "alert.admins" => self.alert.admins = boolean(v).map_err(inv)?,
            "alert.default_copy" => self.alert.default_copy = boolean(v).map_err(inv)?,
            "alert.default_if_none" => self.alert.default_if_none = boolean(v).map_err(inv)?,
            "alert.macros.rule" => {
                let Value::Object(map) = v else {
                    return Err(Invalid("expected a map of macro names to SQL".into()));
                };
                for (name, sql) in map {
                    self.alert
                        .macros
                        .insert(name.clone(), string(sql).map_err(inv)?);
                }
            }
            _ => {
                if let Some(name) = key.strip_prefix("alert.macros.rule.") {
                    self.alert
                        .macros
                        .insert(name.to_string(), string(v).map_err(inv)?);
                } else if let Some(module) = key.strip_prefix("poller_modules.") {
                    self.modules
                        .global
                        .insert(module.to_string(), boolean(v).map_err(inv)?);
                } else if let Some((os, module)) = key
                    .strip_prefix("os.")
                    .and_then(|r| r.split_once(".poller_modules."))
                {
                    self.modules
                        .os
                        .entry(os.to_string())
                        .or_default()
                        .insert(module.to_string(), boolean(v).map_err(inv)?);
                } else if let Some((os, rest)) =
                    key.strip_prefix("os.").and_then(|r| r.split_once('.'))
                {
                    self.os.set(os, rest, v)?;
                } else {
                    return Err(ApplyError::Unknown);
                }
            }
        }
        self.sources.insert(key.to_string(), source.clone());
        Ok(())
    }

    /// Checks that span settings.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if self.rrd.heartbeat < self.rrd.step {
            return Err(ConfigError::Invalid {
                key: "rrd.heartbeat".into(),
                shown: self.rrd.heartbeat.to_string(),
                origin: self.source_of("rrd.heartbeat"),
                reason: format!("must not be below rrd.step ({})", self.rrd.step),
            });
        }
        if self.fast_ping.rrd_step > self.rrd.step {
            return Err(ConfigError::Invalid {
                key: "fast_ping.rrd_step".into(),
                shown: self.fast_ping.rrd_step.to_string(),
                origin: self.source_of("fast_ping.rrd_step"),
                reason: format!(
                    "must not be above rrd.step ({}); 0 leaves icmp-perf.rrd to the poll",
                    self.rrd.step
                ),
            });
        }
        if self.mode == Mode::Librenms && self.db.url.is_empty() && self.db.database.is_empty() {
            return Err(ConfigError::Invalid {
                key: "db.database".into(),
                shown: "\"\"".into(),
                origin: self.source_of("db.database"),
                reason: "no database name".into(),
            });
        }
        Ok(())
    }

    /// The seconds a device poll may take before it is abandoned.
    pub fn device_deadline_secs(&self) -> u32 {
        if self.poller.device_deadline == 0 {
            self.poller.frequency
        } else {
            self.poller.device_deadline
        }
    }

    /// The seconds a PHP run may take before it is killed.
    pub fn php_deadline_secs(&self) -> u32 {
        if self.php.deadline == 0 {
            self.poller.frequency
        } else {
            self.php.deadline
        }
    }

    /// Every setting as `(key, shown value, source)`, secrets masked.
    pub fn entries(&self) -> Vec<(String, String, Source)> {
        let mut out = Vec::new();
        let mut add = |key: &str, value: String| {
            out.push((key.to_string(), value, self.source_of(key)));
        };
        let q = |s: &str| format!("{s:?}");
        let list = |v: &[String]| format!("{v:?}");
        add("mode", self.mode.to_string());
        add("librenms_dir", q(&self.librenms_dir.display().to_string()));
        add("db.url", q(&mask_url(&self.db.url)));
        add("db.host", q(&self.db.host));
        add("db.port", self.db.port.to_string());
        add("db.database", q(&self.db.database));
        add("db.username", q(&self.db.username));
        add("db.password", mask(self.db.password.is_empty()));
        add("db.socket", q(&self.db.socket));
        add("db.timezone", q(&self.db.timezone));
        add("db.max_connections", self.db.max_connections.to_string());
        add("db.held_rows", self.db.held_rows.to_string());
        add("db.held_mb", self.db.held_mb.to_string());
        add(
            "db.commit_deadline",
            self.db.commit_deadline_secs.to_string(),
        );
        add("node_id", q(&self.node_id));
        add("redis.host", q(&self.redis.host));
        add("redis.port", self.redis.port.to_string());
        add("redis.db", self.redis.db.to_string());
        add("redis.password", mask(self.redis.password.is_empty()));
        add("rrd.enable", self.rrd.enable.to_string());
        add("rrd_dir", q(&self.rrd.dir.display().to_string()));
        add("rrdcached", q(&self.rrd.rrdcached));
        add("rrd.step", self.rrd.step.to_string());
        add("rrd.heartbeat", self.rrd.heartbeat.to_string());
        add("rrd_rra", q(&self.rrd.rra.join(" ")));
        add("rrd.buffer_limit", self.rrd.buffer_limit.to_string());
        add("rrd.held_updates", self.rrd.held_updates.to_string());
        add("rrd.held_mb", self.rrd.held_mb.to_string());
        add("snmp.timeout", self.snmp.timeout_secs.to_string());
        add("snmp.retries", self.snmp.retries.to_string());
        add("snmp.max_repeaters", self.snmp.max_repeaters.to_string());
        add("snmp.max_oid", self.snmp.max_oid.to_string());
        add("fping_options.count", self.ping.count.to_string());
        add("fping_options.interval", self.ping.interval_ms.to_string());
        add("fping_options.timeout", self.ping.timeout_ms.to_string());
        add("fping_options.tos", self.ping.tos.to_string());
        add("fping_options.retries", self.ping.retries.to_string());
        add("fast_ping.enable", self.fast_ping.enable.to_string());
        add("fast_ping.interval", self.fast_ping.interval.to_string());
        add("fast_ping.count", self.fast_ping.count.to_string());
        add("fast_ping.rrd_step", self.fast_ping.rrd_step.to_string());
        add("icmp_check", self.icmp_check.to_string());
        add("metrics.listen", q(&self.metrics_listen));
        add("status_file", q(&self.status_file));
        add("log.filter", q(&self.log_filter));
        add(
            "service_poller_frequency",
            self.poller.frequency.to_string(),
        );
        add("service_poller_workers", self.poller.workers.to_string());
        add(
            "service_poller_down_retry",
            self.poller.down_retry.to_string(),
        );
        add(
            "distributed_poller_group",
            format!("{:?}", self.poller.groups),
        );
        add("poller.concurrency", self.poller.concurrency.to_string());
        add(
            "poller.device_deadline",
            self.device_deadline_secs().to_string(),
        );
        add("poller.memory_high", self.poller.memory_high.to_string());
        add("php.processes", self.php.processes.to_string());
        add("php.deadline", self.php_deadline_secs().to_string());
        add("distributed_poller", self.distributed_poller.to_string());
        add("distributed_poller_name", q(&self.distributed_poller_name));
        add("distributed_poller_memcached_host", q(&self.memcached.host));
        add(
            "distributed_poller_memcached_port",
            self.memcached.port.to_string(),
        );
        for (m, on) in &self.modules.global {
            add(&format!("poller_modules.{m}"), on.to_string());
        }
        // Per-OS settings of the OSes an operator touched (below the
        // config table, the OS definitions' own: thousands, summed up by
        // check-config rather than listed).
        let from_definitions = |key: &str| {
            matches!(
                self.source_of(key),
                Source::OsDefinitions(_) | Source::BuiltinOsDefinitions
            )
        };
        let mut per_os: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
        for (os, mods) in &self.modules.os {
            for (m, on) in mods {
                per_os
                    .entry(os)
                    .or_default()
                    .push((format!("os.{os}.poller_modules.{m}"), on.to_string()));
            }
        }
        for (os, keys) in &self.os.0 {
            for (k, v) in keys {
                per_os
                    .entry(os)
                    .or_default()
                    .push((format!("os.{os}.{k}"), v.to_string()));
            }
        }
        for entries in per_os.values() {
            if entries.iter().all(|(k, _)| from_definitions(k)) {
                continue;
            }
            for (key, value) in entries {
                add(key, value.clone());
            }
        }
        add("bad_disk_regexp", list(&self.bad_disk_regexp));
        add("good_if", list(&self.ports.good_if));
        add("bad_if", list(&self.ports.bad_if));
        add("bad_if_regexp", list(&self.ports.bad_if_regexp));
        add("bad_iftype", list(&self.ports.bad_iftype));
        add("bad_ifname_regexp", list(&self.ports.bad_ifname_regexp));
        add("bad_ifalias_regexp", list(&self.ports.bad_ifalias_regexp));
        add("bad_ifoperstatus", list(&self.ports.bad_ifoperstatus));
        add("empty_ifdescr", self.ports.empty_ifdescr.to_string());
        add(
            "default_port_association_mode",
            q(&self.ports.default_port_association_mode),
        );
        add(
            "ignore_unmapable_port",
            self.ports.ignore_unmapable_port.to_string(),
        );
        add("rrdtool_tune", self.ports.rrdtool_tune.to_string());
        add(
            "ports.discover_when_empty",
            self.ports.discover_when_empty.to_string(),
        );
        add("enable_ports_poe", self.ports.enable_ports_poe.to_string());
        add(
            "enable_ports_etherlike",
            self.ports.enable_ports_etherlike.to_string(),
        );
        add(
            "graphing.availability",
            format!("{:?}", self.availability.durations),
        );
        add(
            "graphing.availability_consider_maintenance",
            self.availability.consider_maintenance.to_string(),
        );
        add(
            "device_stats_avg_factor",
            self.device_stats_avg_factor.to_string(),
        );
        add("discovery_on_reboot", self.discovery_on_reboot.to_string());
        add("alerting.native", self.alert.native.to_string());
        add("alert.disable", self.alert.disable.to_string());
        add("php.timezone", q(&self.alert.timezone));
        add("alert.default_only", self.alert.default_only.to_string());
        add(
            "alert.default_mail",
            self.alert.default_mail.as_deref().map_or("false".into(), q),
        );
        add("alert.syscontact", self.alert.syscontact.to_string());
        add("alert.users", self.alert.users.to_string());
        add("alert.globals", self.alert.globals.to_string());
        add("alert.admins", self.alert.admins.to_string());
        add("alert.default_copy", self.alert.default_copy.to_string());
        add(
            "alert.default_if_none",
            self.alert.default_if_none.to_string(),
        );
        for (name, sql) in &self.alert.macros {
            add(&format!("alert.macros.rule.{name}"), q(sql));
        }
        out
    }
}

fn local_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn mask(empty: bool) -> String {
    if empty {
        "\"\"".into()
    } else {
        "********".into()
    }
}

/// A database URL with its password replaced.
pub fn mask_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((creds, host)) = rest.rsplit_once('@')
        && let Some((user, _)) = creds.split_once(':')
    {
        return format!("{scheme}://{user}:********@{host}");
    }
    url.to_string()
}

/// A value as an error message may show it: secrets masked.
pub(super) fn show(key: &str, v: &Value) -> String {
    if key.contains("password") {
        return "********".into();
    }
    if key == "db.url"
        && let Value::String(s) = v
    {
        return format!("{:?}", mask_url(s));
    }
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

pub(super) fn key_from_env(rest: &str) -> String {
    let key = rest.to_ascii_lowercase().replace("__", ".");
    match key.strip_prefix("poller_modules.") {
        Some(module) => format!("poller_modules.{}", module.replace('_', "-")),
        None => key,
    }
}

pub(super) fn env_from_key(key: &str) -> String {
    key.to_ascii_uppercase()
        .replace('.', "__")
        .replace('-', "_")
}

fn string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        _ => Err("expected a string".into()),
    }
}

fn ranged(v: &Value, min: i64, max: i64) -> Result<i64, String> {
    let n = match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(|| "expected a whole number".to_string())?;
    if n < min || n > max {
        return Err(format!("expected a number from {min} to {max}"));
    }
    Ok(n)
}

fn float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
    .ok_or_else(|| "expected a number".into())
}

fn boolean(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" | "" => Ok(false),
            _ => Err("expected true or false".into()),
        },
        _ => Err("expected true or false".into()),
    }
}

/// A list from a JSON/TOML array, or a comma-separated string.
fn str_list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Array(items) => items.iter().map(string).collect(),
        Value::String(s) if s.trim().is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(s.split(',').map(|x| x.trim().to_string()).collect()),
        Value::Null => Ok(Vec::new()),
        _ => Err("expected a list".into()),
    }
}

fn int_list(v: &Value) -> Result<Vec<i64>, String> {
    let items: Vec<Value> = match v {
        Value::Array(items) => items.clone(),
        Value::Number(_) => vec![v.clone()],
        Value::String(s) => s
            .split(',')
            .map(|x| Value::String(x.trim().to_string()))
            .collect(),
        _ => return Err("expected a number or a list of numbers".into()),
    };
    items
        .iter()
        .map(|i| ranged(i, i64::MIN, i64::MAX))
        .collect::<Result<_, _>>()
        .map_err(|_| "expected a number or a list of numbers".into())
}

/// PHP regexes (`/pattern/flags`), checked to compile.
fn regex_list(v: &Value) -> Result<Vec<String>, String> {
    let list = str_list(v)?;
    for r in &list {
        crate::librenms::php::Regex::new(r).map_err(|e| format!("{r}: {e}"))?;
    }
    Ok(list)
}

/// `rrd_rra`: whitespace-separated `RRA:CF:xff:steps:rows` definitions.
fn rra_list(v: &Value) -> Result<Vec<String>, String> {
    let text = string(v)?;
    let list: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    if list.is_empty() {
        return Err("no RRA definitions".into());
    }
    for rra in &list {
        crate::rrd::Rra::parse(rra)?;
    }
    Ok(list)
}
