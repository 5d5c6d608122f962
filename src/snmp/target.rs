//! Agent addresses written as net-snmp writes them, and the credentials a
//! session speaks with.
//!
//! Accepted forms: `host`, `host:port`, `udp:host[:port]`, `udp6:host[:port]`,
//! `udp6:[2001:db8::1]:161`, `[::1]:1161`, and a bare IPv6 literal without a
//! port (`udp6:::1`, `::1`); `tcp:` and `tcp6:` as `udp:` and `udp6:`, for
//! SNMP over TCP (RFC 3430).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use super::pdu::Version;
use super::usm::UsmUser;
use crate::secret::Secret;

pub const DEFAULT_PORT: u16 = 161;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `udp:`, `tcp:`, or no prefix: IPv4 preferred when a name resolves
    /// to both.
    Udp,
    /// `udp6:`, `tcp6:`: IPv6 only.
    Udp6,
}

/// How requests reach the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// Datagrams on the client's shared sockets.
    #[default]
    Udp,
    /// A TCP connection of the session's own (RFC 3430).
    Tcp,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub family: Family,
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("invalid target {0:?}: empty host")]
    EmptyHost(String),
    #[error("invalid target {0:?}: bad port")]
    BadPort(String),
    #[error("invalid target {0:?}: transport {1:?} is not supported (use udp, udp6, tcp or tcp6)")]
    UnsupportedTransport(String, String),
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("{host} has no {family} address")]
    NoAddress { host: String, family: &'static str },
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(text: &str) -> Result<Target, TargetError> {
        const PREFIXES: [(&str, Family, Protocol); 4] = [
            ("udp", Family::Udp, Protocol::Udp),
            ("udp6", Family::Udp6, Protocol::Udp),
            ("tcp", Family::Udp, Protocol::Tcp),
            ("tcp6", Family::Udp6, Protocol::Tcp),
        ];
        const UNSUPPORTED: [&str; 5] = ["unix", "ipx", "dtlsudp", "tlstcp", "ssh"];
        let mut parsed = (Family::Udp, Protocol::Udp, text);
        if let Some((prefix, rest)) = text.split_once(':') {
            let is = |p: &&str| prefix.eq_ignore_ascii_case(p);
            if let Some(&(_, family, protocol)) = PREFIXES.iter().find(|(p, ..)| is(p)) {
                parsed = (family, protocol, rest);
            } else if UNSUPPORTED.iter().any(is) {
                return Err(TargetError::UnsupportedTransport(
                    text.to_string(),
                    prefix.to_string(),
                ));
            }
        }
        let (family, protocol, rest) = parsed;
        let bad_port = || TargetError::BadPort(text.to_string());
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (host, after) = inner.split_once(']').ok_or_else(bad_port)?;
            let port = match after {
                "" => DEFAULT_PORT,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(bad_port)?,
            };
            (host.to_string(), port)
        } else if rest.matches(':').count() > 1 {
            // A bare IPv6 literal: no port can be told apart from its groups.
            (rest.to_string(), DEFAULT_PORT)
        } else if let Some((host, port)) = rest.rsplit_once(':') {
            (host.to_string(), port.parse().map_err(|_| bad_port())?)
        } else {
            (rest.to_string(), DEFAULT_PORT)
        };
        if host.is_empty() {
            return Err(TargetError::EmptyHost(text.to_string()));
        }
        let family = match host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => Family::Udp6,
            _ => family,
        };
        Ok(Target {
            family,
            protocol,
            host,
            port,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.protocol == Protocol::Tcp {
            f.write_str(if self.family == Family::Udp6 {
                "tcp6:"
            } else {
                "tcp:"
            })?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Target {
    pub fn from_addr(addr: SocketAddr) -> Target {
        Target {
            family: if addr.is_ipv6() {
                Family::Udp6
            } else {
                Family::Udp
            },
            protocol: Protocol::Udp,
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }

    /// Resolves the host; a literal address costs no lookup.
    pub async fn resolve(&self) -> Result<SocketAddr, TargetError> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, self.port));
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| TargetError::Resolve {
                host: self.host.clone(),
                reason: e.to_string(),
            })?
            .collect();
        let pick = match self.family {
            Family::Udp6 => addrs.iter().find(|a| a.is_ipv6()),
            Family::Udp => addrs.iter().find(|a| a.is_ipv4()).or_else(|| addrs.first()),
        };
        pick.copied().ok_or(TargetError::NoAddress {
            host: self.host.clone(),
            family: match self.family {
                Family::Udp6 => "IPv6",
                Family::Udp => "IPv4 or IPv6",
            },
        })
    }
}

/// How a session authenticates itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Credentials {
    /// v1 or v2c with a community.
    Community { version: Version, community: Secret },
    /// v3 with a USM user and a context name (empty for the default context).
    Usm { user: UsmUser, context: Vec<u8> },
}

impl Credentials {
    pub fn v2c(community: &str) -> Credentials {
        Credentials::Community {
            version: Version::V2c,
            community: Secret::from(community),
        }
    }

    pub fn v1(community: &str) -> Credentials {
        Credentials::Community {
            version: Version::V1,
            community: Secret::from(community),
        }
    }

    pub fn version(&self) -> Version {
        match self {
            Credentials::Community { version, .. } => *version,
            Credentials::Usm { .. } => Version::V3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        s.parse().unwrap()
    }

    #[test]
    fn parses_net_snmp_target_spellings() {
        assert_eq!(
            t("10.0.0.1"),
            Target {
                family: Family::Udp,
                protocol: Protocol::Udp,
                host: "10.0.0.1".into(),
                port: 161
            }
        );
        assert_eq!(t("udp:sw1:1161").port, 1161);
        assert_eq!(t("udp:sw1:1161").host, "sw1");
        assert_eq!(
            t("udp6:[2001:db8::1]:162"),
            Target {
                family: Family::Udp6,
                protocol: Protocol::Udp,
                host: "2001:db8::1".into(),
                port: 162
            }
        );
        assert_eq!(
            t("udp6:::1"),
            Target {
                family: Family::Udp6,
                protocol: Protocol::Udp,
                host: "::1".into(),
                port: 161
            }
        );
        assert_eq!(t("[::1]:1161").family, Family::Udp6);
        assert_eq!(t("UDP:127.0.0.1").host, "127.0.0.1");
        let tcp = t("tcp:sw1:1161");
        assert_eq!((tcp.protocol, tcp.family), (Protocol::Tcp, Family::Udp));
        assert_eq!(tcp.to_string(), "tcp:sw1:1161");
        let tcp6 = t("TCP6:[2001:db8::1]");
        assert_eq!((tcp6.protocol, tcp6.family), (Protocol::Tcp, Family::Udp6));
        assert_eq!(tcp6.to_string(), "tcp6:[2001:db8::1]:161");
        assert_eq!(t("udp:sw1").to_string(), "sw1:161");
    }

    #[test]
    fn refuses_bad_targets_with_a_reason() {
        assert!(matches!(
            "".parse::<Target>(),
            Err(TargetError::EmptyHost(_))
        ));
        assert!(matches!(
            "sw1:notaport".parse::<Target>(),
            Err(TargetError::BadPort(_))
        ));
        assert!(matches!(
            "sw1:70000".parse::<Target>(),
            Err(TargetError::BadPort(_))
        ));
        assert!(matches!(
            "ssh:sw1".parse::<Target>(),
            Err(TargetError::UnsupportedTransport(..))
        ));
        assert!(matches!(
            "[::1".parse::<Target>(),
            Err(TargetError::BadPort(_))
        ));
    }
}
