//! A device as LibreNMS's `devices` row describes it, and how ironpoll
//! reaches it over SNMP.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::Settings;
use crate::secret::Secret;
use crate::snmp::target::{Family, Protocol};
use crate::snmp::usm::{AuthProtocol, PrivProtocol, SecurityLevel, UsmUser};
use crate::snmp::{Credentials, SessionOptions, Target, Version};

/// The `devices` columns the poller uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Device {
    pub device_id: u32,
    pub hostname: String,
    pub sys_name: Option<String>,
    pub overwrite_ip: Option<String>,
    /// The address the hostname resolved to last (packed, as LibreNMS stores it).
    pub ip: Option<Vec<u8>>,
    pub community: Option<Secret>,
    pub authlevel: Option<String>,
    pub authname: Option<String>,
    pub authpass: Option<Secret>,
    pub authalgo: Option<String>,
    pub cryptopass: Option<Secret>,
    pub cryptoalgo: Option<String>,
    pub snmpver: String,
    pub port: i64,
    pub transport: String,
    pub timeout: Option<i64>,
    pub retries: Option<i64>,
    pub snmp_disable: bool,
    pub sys_object_id: Option<String>,
    pub sys_descr: Option<String>,
    pub os: Option<String>,
    pub hardware: Option<String>,
    /// The OS version discovery found.
    pub version: Option<String>,
    pub status: bool,
    pub status_reason: String,
    pub disabled: bool,
    pub ignore: bool,
    pub uptime: Option<i64>,
    pub inserted: Option<i64>,
    pub last_polled: Option<i64>,
    pub last_polled_timetaken: Option<f64>,
    pub last_discovered: Option<i64>,
    pub last_ping: Option<i64>,
    pub last_ping_timetaken: Option<f64>,
    pub poller_group: i64,
    pub port_association_mode: i64,
}

/// `devices_attribs` of one device: `attrib_type` to `attrib_value`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribs(pub BTreeMap<String, String>);

impl Attribs {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// An attribute LibreNMS stores as the text `true`/`false`.
    pub fn flag(&self, name: &str) -> Option<bool> {
        self.get(name).map(|v| v == "true" || v == "1")
    }

    fn number(&self, name: &str) -> Option<i64> {
        self.get(name)
            .and_then(|v| v.trim().parse().ok())
            .filter(|n| *n > 0)
    }
}

/// Why a device cannot be polled over SNMP as its row stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("device {id}: no hostname")]
    NoHostname { id: u32 },
    #[error("device {id}: SNMP version {version:?} is not one of v1, v2c, v3")]
    BadVersion { id: u32, version: String },
    #[error("device {id}: transport {transport:?} is not supported (udp, udp6, tcp or tcp6)")]
    Transport { id: u32, transport: String },
    #[error("device {id}: port {port} is not a UDP port")]
    BadPort { id: u32, port: i64 },
    #[error("device {id}: no SNMP community")]
    NoCommunity { id: u32 },
    #[error("device {id}: SNMPv3 settings unusable: {reason}")]
    V3 { id: u32, reason: String },
}

/// Everything needed to open an SNMP session on a device.
#[derive(Debug, Clone)]
pub struct SnmpSetup {
    pub target: Target,
    pub credentials: Credentials,
    pub options: SessionOptions,
}

impl Device {
    /// The address LibreNMS polls: `overwrite_ip` when set, else the hostname.
    pub fn poll_host(&self) -> &str {
        match self.overwrite_ip.as_deref().map(str::trim) {
            Some(ip) if !ip.is_empty() => ip,
            _ => self.hostname.trim(),
        }
    }

    /// Whether the device is reached over IPv6 (`udp6`, `tcp6`).
    pub fn ipv6(&self) -> bool {
        self.transport.ends_with('6')
    }

    /// The SNMP target, credentials and limits of this device, with
    /// LibreNMS's precedence: device columns and attributes over the global
    /// settings.
    pub fn snmp_setup(
        &self,
        attribs: &Attribs,
        settings: &Settings,
    ) -> Result<SnmpSetup, DeviceError> {
        let id = self.device_id;
        let host = self.poll_host();
        if host.is_empty() {
            return Err(DeviceError::NoHostname { id });
        }
        let (family, protocol) = match self.transport.trim().to_ascii_lowercase().as_str() {
            "" | "udp" => (Family::Udp, Protocol::Udp),
            "udp6" => (Family::Udp6, Protocol::Udp),
            "tcp" => (Family::Udp, Protocol::Tcp),
            "tcp6" => (Family::Udp6, Protocol::Tcp),
            other => {
                return Err(DeviceError::Transport {
                    id,
                    transport: other.to_string(),
                });
            }
        };
        let port =
            u16::try_from(self.port)
                .ok()
                .filter(|p| *p > 0)
                .ok_or(DeviceError::BadPort {
                    id,
                    port: self.port,
                })?;
        let target = Target {
            family,
            protocol,
            host: host.trim_matches(['[', ']']).to_string(),
            port,
        };
        let credentials = match self.snmpver.trim() {
            "v1" | "v2c" => {
                let community = self
                    .community
                    .clone()
                    .filter(|c| !c.is_empty())
                    .ok_or(DeviceError::NoCommunity { id })?;
                let version = if self.snmpver.trim() == "v1" {
                    Version::V1
                } else {
                    Version::V2c
                };
                Credentials::Community { version, community }
            }
            "v3" => Credentials::Usm {
                user: self
                    .usm_user()
                    .map_err(|reason| DeviceError::V3 { id, reason })?,
                context: Vec::new(),
            },
            other => {
                return Err(DeviceError::BadVersion {
                    id,
                    version: other.to_string(),
                });
            }
        };
        let mut options = SessionOptions::default();
        // LibreNMS uses a device's timeout and retries when they are positive.
        let timeout = self
            .timeout
            .filter(|t| *t > 0)
            .map_or(settings.snmp.timeout_secs, |t| t as f64);
        options.timeout = Duration::from_secs_f64(timeout.clamp(0.001, 600.0));
        options.retries = self
            .retries
            .filter(|r| *r > 0)
            .map_or(settings.snmp.retries, |r| r.min(100) as u32);
        // The device's attribute, else its OS's setting, else the global
        // one (LibreNMS's get_device_oid_limit and max repeaters).
        let os = self.os.as_deref().unwrap_or("");
        let os_count = |key: &str| settings.os.count(os, key).filter(|n| *n > 0);
        options.max_oids_per_pdu = attribs.number("snmp_max_oid").map_or_else(
            || os_count("snmp_max_oid").map_or(settings.snmp.max_oid, |n| n.min(1000) as usize),
            |n| n.min(1000) as usize,
        );
        let repeaters = attribs.number("snmp_max_repeaters").map_or_else(
            || {
                os_count("snmp.max_repeaters")
                    .map_or(settings.snmp.max_repeaters, |n| n.min(10_000) as u32)
            },
            |n| n.min(10_000) as u32,
        );
        options.bulk = settings.os.flag(os, "snmp_bulk") != Some(false);
        options.no_bulk = crate::mib::oids_named(&settings.os.list(os, "oids.no_bulk"));
        options.unordered = crate::mib::oids_named(&settings.os.list(os, "oids.unordered"));
        // 0 means net-snmp's own default.
        options.max_repetitions = if repeaters == 0 { 10 } else { repeaters };
        // A module walk that finds nothing gets nothing: LibreNMS discards
        // the root fallback's "No Such Object" line.
        options.walk_root_fallback = false;
        Ok(SnmpSetup {
            target,
            credentials,
            options,
        })
    }

    fn usm_user(&self) -> Result<UsmUser, String> {
        let level: SecurityLevel = self
            .authlevel
            .as_deref()
            .unwrap_or("noAuthNoPriv")
            .parse()?;
        let name = match self.authname.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => n.to_string(),
            // LibreNMS's default v3 user.
            _ => "root".to_string(),
        };
        let auth_proto: AuthProtocol = self.authalgo.as_deref().unwrap_or("MD5").parse()?;
        let priv_proto: PrivProtocol = self.cryptoalgo.as_deref().unwrap_or("AES").parse()?;
        UsmUser::new(
            name,
            level,
            self.authpass.clone().map(|p| (auth_proto, p)),
            self.cryptopass.clone().map(|p| (priv_proto, p)),
        )
        .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings_defaults;
    use crate::config::{Mode, resolve};

    fn settings() -> Settings {
        resolve(&[], settings_defaults(Mode::Standalone)).unwrap()
    }

    fn device() -> Device {
        Device {
            device_id: 7,
            hostname: "sw1".into(),
            community: Some(Secret::from("public")),
            snmpver: "v2c".into(),
            port: 161,
            transport: "udp".into(),
            ..Device::default()
        }
    }

    #[test]
    fn device_columns_override_global_settings() {
        let mut d = device();
        d.overwrite_ip = Some("10.0.0.7".into());
        d.timeout = Some(3);
        d.retries = Some(0);
        let mut attribs = Attribs::default();
        attribs.0.insert("snmp_max_repeaters".into(), "30".into());
        attribs.0.insert("snmp_max_oid".into(), "5".into());
        let s = d.snmp_setup(&attribs, &settings()).unwrap();
        assert_eq!(s.target.host, "10.0.0.7");
        assert_eq!(s.options.timeout, Duration::from_secs(3));
        // A zero retries column falls back to the setting, as in LibreNMS.
        assert_eq!(s.options.retries, 5);
        assert_eq!(s.options.max_repetitions, 30);
        assert_eq!(s.options.max_oids_per_pdu, 5);
    }

    #[test]
    fn tcp_devices_are_polled_over_tcp() {
        for (transport, family) in [("tcp", Family::Udp), ("TCP6", Family::Udp6)] {
            let mut d = device();
            d.transport = transport.into();
            let s = d.snmp_setup(&Attribs::default(), &settings()).unwrap();
            assert_eq!(
                (s.target.protocol, s.target.family),
                (Protocol::Tcp, family)
            );
        }
        let s = device()
            .snmp_setup(&Attribs::default(), &settings())
            .unwrap();
        assert_eq!(s.target.protocol, Protocol::Udp);
    }

    #[test]
    fn unusable_rows_get_a_clear_error_without_secrets() {
        let mut d = device();
        d.transport = "sctp".into();
        assert!(matches!(
            d.snmp_setup(&Attribs::default(), &settings()),
            Err(DeviceError::Transport { .. })
        ));
        let mut d = device();
        d.snmpver = "v4".into();
        assert!(d.snmp_setup(&Attribs::default(), &settings()).is_err());
        let mut d = device();
        d.snmpver = "v3".into();
        d.authlevel = Some("authPriv".into());
        d.authpass = Some(Secret::from("short"));
        d.cryptopass = Some(Secret::from("alsoshort-but-long-enough"));
        let e = d
            .snmp_setup(&Attribs::default(), &settings())
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 8"), "{e}");
        assert!(!e.contains("short\""), "{e}");
        let mut d = device();
        d.port = 70000;
        assert!(matches!(
            d.snmp_setup(&Attribs::default(), &settings()),
            Err(DeviceError::BadPort { .. })
        ));
    }
}
