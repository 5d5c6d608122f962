//! Poller modules, one file per LibreNMS module name, run in LibreNMS's
//! order. A module reads SNMP through a [`SnmpSource`], reads what the
//! database knew through the [`Poll`]'s preloaded state, and records what
//! it found in the [`Poll`]: rows to write, RRD updates, events, graphs.
//! Modules never do IO themselves.
//!
//! Adding a module is adding a file and one line to [`MODULES`].

pub mod availability;
pub mod core;
pub mod hooks;
pub mod hr_mib;
pub mod ip_system_stats;
pub mod mempools;
pub mod netstats;
pub mod ports;
pub mod processors;
pub mod sensors;
pub mod source;
pub mod storage;
pub mod stored_oids;
pub mod table;
pub mod ucd_diskio;
pub mod ucd_mib;
pub mod wireless;

use std::collections::{BTreeMap, BTreeSet};

use futures_util::future::BoxFuture;

use crate::config::Settings;
use crate::db::changes::{Changes, Event};
use crate::db::state::{DeviceState, PortRow};
use crate::db::{Row, Val};
use crate::device::Device;
use crate::rrd::{Datum, RrdDef, RrdFile, RrdUpdate};
use crate::snmp;

pub use source::{RecordingSource, SnmpSource};

/// LibreNMS eventlog severities.
pub mod severity {
    pub const OK: u8 = 1;
    pub const INFO: u8 = 2;
    pub const NOTICE: u8 = 3;
    pub const WARNING: u8 = 4;
    pub const ERROR: u8 = 5;
}

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error(transparent)]
    Snmp(#[from] snmp::Error),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("{0}")]
    Other(String),
}

/// What a poll reads and creates in the database while it runs, rather
/// than before it starts: its ports rows (read once the agent has been
/// walked, so that the seconds a poll waits on the agent are not spent
/// holding them), and new ports, which need their port_id at once for
/// their RRD file name.
pub trait PollStore: Send + Sync {
    /// The device's `ports` rows with their `ports_statistics`, in
    /// port_id order.
    fn ports(&self, device_id: u32) -> BoxFuture<'_, Result<Vec<PortRow>, crate::db::DbError>>;

    /// Inserts `ports` rows (ifIndex, ifName) and their `ports_statistics`
    /// rows; returns the new port_ids in the same order.
    fn new_ports<'a>(
        &'a self,
        device_id: u32,
        ports: &'a [(i64, Option<String>)],
    ) -> BoxFuture<'a, Result<Vec<u32>, crate::db::DbError>>;

    /// The device's rows of `table` (every column), in primary key order:
    /// what discovery stored for a module to poll.
    fn rows<'a>(
        &'a self,
        table: &'static str,
        device_id: u32,
    ) -> BoxFuture<'a, Result<Vec<Row>, crate::db::DbError>>;

    /// The state translations of the device's state sensors: `sensor_id`,
    /// `state_descr`, `state_value`.
    fn state_translations(
        &self,
        device_id: u32,
    ) -> BoxFuture<'_, Result<Vec<Row>, crate::db::DbError>>;
}

/// A store without a database (tests, dry runs): no ports known, new ones
/// get counted ids.
#[derive(Debug, Default)]
pub struct CountingIds(pub std::sync::atomic::AtomicU32);

impl PollStore for CountingIds {
    fn ports(&self, _device_id: u32) -> BoxFuture<'_, Result<Vec<PortRow>, crate::db::DbError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn new_ports<'a>(
        &'a self,
        _device_id: u32,
        ports: &'a [(i64, Option<String>)],
    ) -> BoxFuture<'a, Result<Vec<u32>, crate::db::DbError>> {
        Box::pin(async move {
            Ok(ports
                .iter()
                .map(|_| 1_000_000 + self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                .collect())
        })
    }

    fn rows<'a>(
        &'a self,
        _table: &'static str,
        _device_id: u32,
    ) -> BoxFuture<'a, Result<Vec<Row>, crate::db::DbError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn state_translations(
        &self,
        _device_id: u32,
    ) -> BoxFuture<'_, Result<Vec<Row>, crate::db::DbError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// One device poll in progress: what modules read and what they produce.
pub struct Poll<'a> {
    /// The device as loaded; modules keep it current (uptime, status).
    pub device: Device,
    pub state: DeviceState,
    pub settings: &'a Settings,
    pub snmp: Option<&'a dyn SnmpSource>,
    pub store: &'a dyn PollStore,
    /// Unix time of this poll (LibreNMS's `time()`).
    pub now: i64,
    /// New values of `devices` columns.
    pub device_columns: BTreeMap<&'static str, Val>,
    pub changes: Changes,
    pub rrd: Vec<RrdUpdate>,
    /// Graphs enabled by this poll.
    pub graphs: BTreeSet<String>,
    /// Each module's output, for `ironpoll poll --json`.
    pub output: serde_json::Map<String, serde_json::Value>,
    /// Problems with single entities (an OID that no longer answers, a
    /// value that is not a number): each logged, the entity skipped or
    /// written as LibreNMS would, the rest of the module unaffected.
    pub problems: Vec<String>,
}

impl<'a> Poll<'a> {
    pub fn new(
        device: Device,
        state: DeviceState,
        settings: &'a Settings,
        snmp: Option<&'a dyn SnmpSource>,
        store: &'a dyn PollStore,
        now: i64,
    ) -> Poll<'a> {
        let device_id = device.device_id;
        Poll {
            device,
            state,
            settings,
            snmp,
            store,
            now,
            device_columns: BTreeMap::new(),
            changes: Changes::for_device(device_id),
            rrd: Vec::new(),
            graphs: BTreeSet::new(),
            output: serde_json::Map::new(),
            problems: Vec::new(),
        }
    }

    pub fn device_id(&self) -> u32 {
        self.device.device_id
    }

    pub fn snmp(&self) -> Result<&'a dyn SnmpSource, ModuleError> {
        self.snmp
            .ok_or_else(|| ModuleError::Other("SNMP is not available for this device".into()))
    }

    /// An eventlog row for this device.
    pub fn event(
        &mut self,
        message: impl Into<String>,
        kind: &str,
        severity: u8,
        reference: Option<String>,
    ) {
        self.changes.event(Event {
            device_id: self.device.device_id,
            message: message.into(),
            kind: kind.to_string(),
            reference,
            severity,
        });
    }

    /// An update of this device's RRD file named by `parts`, at this poll's
    /// time.
    pub fn rrd(&mut self, parts: &[&str], def: &'static RrdDef, values: Vec<Datum>) {
        let file = RrdFile::new(&self.device.hostname, parts);
        self.rrd.push(RrdUpdate::new(file, def, self.now, values));
    }

    /// Records a problem with one entity of `module`.
    pub fn problem(&mut self, module: &str, text: impl std::fmt::Display) {
        let text = format!("{module}: {text}");
        tracing::warn!(
            device = self.device.device_id,
            hostname = %self.device.hostname,
            "{text}"
        );
        self.problems.push(text);
    }

    pub fn set_device(&mut self, column: &'static str, value: impl Into<Val>) {
        self.device_columns.insert(column, value.into());
    }

    pub fn enable_graph(&mut self, graph: &str) {
        self.graphs.insert(graph.to_string());
    }

    /// Moves the new `devices` column values into the rows to write.
    pub fn finish_device_row(&mut self) {
        if self.device_columns.is_empty() {
            return;
        }
        let cols = std::mem::take(&mut self.device_columns)
            .into_iter()
            .collect();
        self.changes.update(
            "devices",
            "device_id",
            u64::from(self.device.device_id),
            cols,
        );
    }
}

/// A module's poll function.
pub type PollFn = for<'p, 'a> fn(&'p mut Poll<'a>) -> BoxFuture<'p, Result<(), ModuleError>>;

/// How ironpoll runs a LibreNMS poller module.
#[derive(Clone, Copy)]
pub enum Implementation {
    /// ironpoll's own code, except for the OSes whose LibreNMS PHP replaces
    /// the module's generic polling ([`hooks::PHP_HOOKS`]).
    Native(PollFn),
    /// LibreNMS's PHP (`lnms device:poll <id> -m <module>`), run after
    /// ironpoll's rows for the device are committed.
    Php,
}

/// What a module needs from the device before LibreNMS polls it
/// (`shouldPoll`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requires {
    /// SNMP answering (the device up, SNMP not failing or disabled).
    Snmp,
    /// Nothing: runs when the device is down too.
    Nothing,
    /// IPMI credentials (`ipmi_hostname` attribute).
    Ipmi,
    /// The unix agent (a TCP check-mk agent; LibreNMS's own business).
    UnixAgent,
}

/// A LibreNMS poller module.
pub struct ModuleDef {
    /// LibreNMS's module name (`poller_modules.<name>`).
    pub name: &'static str,
    pub requires: Requires,
    /// LibreNMS's default for `poller_modules.<name>`.
    pub default_enabled: bool,
    pub implementation: Implementation,
    /// Modules whose data this one reads (LibreNMS's `dependencies()`).
    pub depends_on: &'static [&'static str],
    /// OSes of [`hooks::PHP_HOOKS`] whose LibreNMS code for this module
    /// ironpoll runs itself.
    pub native_hooks: &'static [&'static str],
    /// Devices whose LibreNMS code for this module depends on more than
    /// their OS (a version): PHP's.
    pub php_when: Option<fn(os: &str, version: &str) -> bool>,
}

impl ModuleDef {
    /// ironpoll's poll function for a device of `os` (and OS `version`),
    /// or None when the module is LibreNMS's PHP's for it.
    pub fn native_for(&self, os: &str, version: &str) -> Option<PollFn> {
        let Implementation::Native(f) = self.implementation else {
            return None;
        };
        let hooked = php_hook(self.name, os) && !self.native_hooks.contains(&os);
        let by_version = self.php_when.is_some_and(|when| when(os, version));
        (!hooked && !by_version).then_some(f)
    }
}

/// Whether LibreNMS's PHP replaces `module`'s generic polling for `os`.
pub fn php_hook(module: &str, os: &str) -> bool {
    hooks::PHP_HOOKS
        .iter()
        .find(|(m, _)| *m == module)
        .is_some_and(|(_, oses)| oses.binary_search(&os).is_ok())
}

const fn native(
    name: &'static str,
    requires: Requires,
    default_enabled: bool,
    poll: PollFn,
) -> ModuleDef {
    ModuleDef {
        name,
        requires,
        default_enabled,
        implementation: Implementation::Native(poll),
        depends_on: &[],
        native_hooks: &[],
        php_when: None,
    }
}

const fn php(
    name: &'static str,
    default_enabled: bool,
    depends_on: &'static [&'static str],
) -> ModuleDef {
    ModuleDef {
        name,
        requires: Requires::Snmp,
        default_enabled,
        implementation: Implementation::Php,
        depends_on,
        native_hooks: &[],
        php_when: None,
    }
}

/// Every LibreNMS poller module, in LibreNMS's order (the key order of
/// `poller_modules` in its config definitions; `core` always runs first).
/// Adding a native module is a file and one line here.
pub static MODULES: &[ModuleDef] = &[
    ModuleDef {
        requires: Requires::UnixAgent,
        ..php("unix-agent", false, &[])
    },
    native("core", Requires::Snmp, true, core::poll),
    php("os", true, &[]),
    native("availability", Requires::Nothing, true, availability::poll),
    ModuleDef {
        requires: Requires::Ipmi,
        ..php("ipmi", true, &[])
    },
    php("qos", true, &[]),
    native("sensors", Requires::Snmp, true, sensors::poll),
    native("processors", Requires::Snmp, true, processors::poll),
    native("mempools", Requires::Snmp, true, mempools::poll),
    native("storage", Requires::Snmp, true, storage::poll),
    native("netstats", Requires::Snmp, true, netstats::poll),
    native("hr-mib", Requires::Snmp, true, hr_mib::poll),
    native("ucd-mib", Requires::Snmp, true, ucd_mib::poll),
    native(
        "ip-system-stats",
        Requires::Snmp,
        true,
        ip_system_stats::poll,
    ),
    ModuleDef {
        native_hooks: ports::os_hooks::NATIVE,
        php_when: Some(ports::php_ports),
        ..native("ports", Requires::Snmp, true, ports::poll)
    },
    php("ports-stack", false, &["ports"]),
    php("xdsl", false, &["ports"]),
    php("arp-table", false, &["ports"]),
    php("ipv6-nd", false, &["ports"]),
    php("customoid", true, &[]),
    php(
        "bgp-peers",
        true,
        &["ports", "vrf", "ipv4-addresses", "ipv6-addresses"],
    ),
    php("vlans", false, &["ports"]),
    php("junose-atm-vp", false, &[]),
    php("printer-supplies", false, &[]),
    native("ucd-diskio", Requires::Snmp, true, ucd_diskio::poll),
    php("vminfo", false, &[]),
    ModuleDef {
        depends_on: &["os", "ports"],
        ..native("wireless", Requires::Snmp, true, wireless::poll)
    },
    php("ospf", true, &["ports"]),
    php("ospfv3", true, &["ports", "vrf"]),
    php("isis", false, &["ports"]),
    php("cisco-ipsec-flow-monitor", false, &[]),
    php("cisco-remote-access-monitor", false, &[]),
    php("cisco-cef", false, &[]),
    php("slas", false, &[]),
    php("mac-accounting", true, &["ports"]),
    php("cipsec-tunnels", false, &[]),
    php("cisco-ace-loadbalancer", false, &[]),
    php("cisco-ace-serverfarms", false, &[]),
    php("cisco-otv", false, &[]),
    php("cisco-qfp", false, &[]),
    php("cisco-vpdn", false, &[]),
    php("nac", false, &["ports"]),
    php("netscaler-vsvr", false, &[]),
    php("aruba-controller", false, &[]),
    php("entity-physical", true, &[]),
    php("transceivers", true, &["ports"]),
    php("entity-state", false, &[]),
    php("applications", true, &[]),
    php("stp", true, &["ports", "vlans"]),
    php("ntp", true, &[]),
    php("loadbalancers", false, &[]),
    php("mef", false, &[]),
    php("mpls", true, &["ports", "vrf"]),
    php("port-security", false, &[]),
];

#[cfg(test)]
#[test]
fn the_registry_lists_librenms_modules_once_each_and_fits_a_bitmask() {
    // The engine notes modules skipped for want of PHP in a u64 per device.
    assert!(MODULES.len() <= 64);
    let mut names: Vec<&str> = MODULES.iter().map(|m| m.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), MODULES.len());
    for m in MODULES {
        for d in m.depends_on {
            // vrf, ipv4-addresses and ipv6-addresses are discovery modules.
            assert!(
                module(d).is_some() || ["vrf", "ipv4-addresses", "ipv6-addresses"].contains(d),
                "{} depends on unknown {d}",
                m.name
            );
        }
    }
}

pub fn module(name: &str) -> Option<&'static ModuleDef> {
    MODULES.iter().find(|m| m.name == name)
}

/// Which modules a poll runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// LibreNMS's rules: device attribute `poll_<module>`, then the OS
    /// setting, then the global setting.
    Configured,
    /// `-m module,...`: exactly these (a manual override).
    Only(Vec<String>),
}

impl Selection {
    /// Parses `-m`: LibreNMS module names, `module/submodule` accepted
    /// (submodules are not split further).
    pub fn parse_list(list: &str) -> Result<Selection, String> {
        let mut names = Vec::new();
        for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let name = raw.split('/').next().unwrap_or(raw);
            if module(name).is_none() {
                return Err(format!(
                    "unknown module {name:?}; LibreNMS's poller modules are {}",
                    MODULES
                        .iter()
                        .map(|m| m.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            names.push(name.to_string());
        }
        if names.is_empty() {
            return Err("no module given".into());
        }
        Ok(Selection::Only(names))
    }

    pub fn is_override(&self) -> bool {
        matches!(self, Selection::Only(_))
    }

    /// The modules to run for a device, in LibreNMS order. `core` always
    /// runs, first, as in LibreNMS (`-m` included).
    pub fn modules(
        &self,
        device: &Device,
        state: &DeviceState,
        settings: &Settings,
    ) -> Vec<&'static ModuleDef> {
        let core = module("core").expect("core is registered");
        std::iter::once(core)
            .chain(MODULES.iter().filter(|m| {
                m.name != "core"
                    && match self {
                        Selection::Only(names) => names.iter().any(|n| n == m.name),
                        Selection::Configured => enabled(m, device, state, settings),
                    }
            }))
            .collect()
    }
}

/// LibreNMS's precedence for a module: device attribute > OS setting >
/// global setting > default.
fn enabled(m: &ModuleDef, device: &Device, state: &DeviceState, settings: &Settings) -> bool {
    if let Some(on) = state.attribs.flag(&format!("poll_{}", m.name)) {
        return on;
    }
    if let Some(os) = device.os.as_deref()
        && let Some(on) = settings
            .modules
            .os
            .get(os)
            .and_then(|mods| mods.get(m.name))
    {
        return *on;
    }
    settings
        .modules
        .global
        .get(m.name)
        .copied()
        .unwrap_or(m.default_enabled)
}
