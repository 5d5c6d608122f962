//! net-snmp's command-line options (`snmpcmd(1)`) for the options ironpoll
//! shares with it. Every field is optional so that a line of a targets file
//! can override only what it names; defaults are applied when the options
//! become [`Credentials`] and [`SessionOptions`].

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use crate::secret::Secret;
use crate::snmp::usm::{AuthProtocol, PrivProtocol, SecurityLevel, UsmUser};
use crate::snmp::{Credentials, SessionOptions, Version};

#[derive(Debug, Clone, Default, Args)]
pub struct SnmpArgs {
    /// SNMP version: 1, 2c or 3 [default: 2c]
    #[arg(short = 'v', id = "snmp_version", value_name = "1|2c|3")]
    pub version: Option<String>,
    /// Community (v1, v2c)
    #[arg(short = 'c', value_name = "COMMUNITY")]
    pub community: Option<String>,
    /// Security level (v3): noAuthNoPriv, authNoPriv or authPriv [default: noAuthNoPriv]
    #[arg(short = 'l', value_name = "LEVEL")]
    pub level: Option<String>,
    /// Security name (v3 user)
    #[arg(short = 'u', value_name = "USER")]
    pub user: Option<String>,
    /// Authentication protocol (v3): MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512 [default: MD5]
    #[arg(short = 'a', value_name = "PROTOCOL")]
    pub auth_protocol: Option<String>,
    /// Authentication passphrase (v3)
    #[arg(short = 'A', value_name = "PASSPHRASE")]
    pub auth_passphrase: Option<String>,
    /// Privacy protocol (v3): DES, AES, AES-192, AES-256, AES-192-C, AES-256-C [default: DES]
    #[arg(short = 'x', value_name = "PROTOCOL")]
    pub priv_protocol: Option<String>,
    /// Privacy passphrase (v3)
    #[arg(short = 'X', value_name = "PASSPHRASE")]
    pub priv_passphrase: Option<String>,
    /// Context name (v3)
    #[arg(short = 'n', value_name = "CONTEXT")]
    pub context: Option<String>,
    /// Timeout per attempt, in seconds [default: 1]
    #[arg(short = 't', value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Retries after the first attempt [default: 5]
    #[arg(short = 'r', value_name = "RETRIES")]
    pub retries: Option<u32>,
    /// Application options: c (do not check that OIDs increase), I (no GET of
    /// the root when a walk finds nothing), r<N> (GETBULK max-repetitions)
    #[arg(short = 'C', value_name = "OPTS", action = clap::ArgAction::Append)]
    pub app_options: Vec<String>,
    /// Output options; only n (numeric OIDs) is supported, and is the default
    #[arg(short = 'O', value_name = "OPTS", action = clap::ArgAction::Append)]
    pub output_options: Vec<String>,
    /// MIBs to load; ironpoll loads none and prints numeric OIDs, so only an
    /// empty list is meaningful
    #[arg(short = 'm', value_name = "MIBLIST")]
    pub mibs: Option<String>,
    /// OIDs per GET request; larger requests are split [default: 10]
    #[arg(long = "max-oids", value_name = "N")]
    pub max_oids: Option<usize>,
}

impl SnmpArgs {
    /// These options with `over`'s given options taking precedence.
    pub fn merged(&self, over: &SnmpArgs) -> SnmpArgs {
        fn pick<T: Clone>(base: &Option<T>, over: &Option<T>) -> Option<T> {
            over.clone().or_else(|| base.clone())
        }
        SnmpArgs {
            version: pick(&self.version, &over.version),
            community: pick(&self.community, &over.community),
            level: pick(&self.level, &over.level),
            user: pick(&self.user, &over.user),
            auth_protocol: pick(&self.auth_protocol, &over.auth_protocol),
            auth_passphrase: pick(&self.auth_passphrase, &over.auth_passphrase),
            priv_protocol: pick(&self.priv_protocol, &over.priv_protocol),
            priv_passphrase: pick(&self.priv_passphrase, &over.priv_passphrase),
            context: pick(&self.context, &over.context),
            timeout: pick(&self.timeout, &over.timeout),
            retries: pick(&self.retries, &over.retries),
            app_options: self
                .app_options
                .iter()
                .chain(over.app_options.iter())
                .cloned()
                .collect(),
            output_options: self
                .output_options
                .iter()
                .chain(over.output_options.iter())
                .cloned()
                .collect(),
            mibs: pick(&self.mibs, &over.mibs),
            max_oids: pick(&self.max_oids, &over.max_oids),
        }
    }

    pub fn version(&self) -> anyhow::Result<Version> {
        match self.version.as_deref().unwrap_or("2c") {
            "1" => Ok(Version::V1),
            "2c" | "2" => Ok(Version::V2c),
            "3" => Ok(Version::V3),
            other => bail!("invalid version {other:?} (use 1, 2c or 3)"),
        }
    }

    pub fn credentials(&self) -> anyhow::Result<Credentials> {
        let version = self.version()?;
        if version != Version::V3 {
            let community = self
                .community
                .as_deref()
                .context("no community name specified (-c)")?;
            return Ok(Credentials::Community {
                version,
                community: Secret::from(community),
            });
        }
        let name = self
            .user
            .as_deref()
            .context("no security name specified (-u)")?;
        let level: SecurityLevel = match &self.level {
            Some(l) => l.parse().map_err(anyhow::Error::msg)?,
            None => SecurityLevel::NoAuthNoPriv,
        };
        let auth_protocol: AuthProtocol = match &self.auth_protocol {
            Some(a) => a.parse().map_err(anyhow::Error::msg)?,
            None => AuthProtocol::Md5,
        };
        let priv_protocol: PrivProtocol = match &self.priv_protocol {
            Some(x) => x.parse().map_err(anyhow::Error::msg)?,
            None => PrivProtocol::Des,
        };
        let user = UsmUser::new(
            name,
            level,
            self.auth_passphrase
                .as_deref()
                .map(|p| (auth_protocol, Secret::from(p))),
            self.priv_passphrase
                .as_deref()
                .map(|p| (priv_protocol, Secret::from(p))),
        )?;
        Ok(Credentials::Usm {
            user,
            context: self.context.clone().unwrap_or_default().into_bytes(),
        })
    }

    pub fn session_options(&self) -> anyhow::Result<SessionOptions> {
        let mut opts = SessionOptions::default();
        if let Some(t) = self.timeout {
            if !(t.is_finite() && t > 0.0 && t <= 3600.0) {
                bail!("invalid timeout {t} (seconds, above 0 and at most 3600)");
            }
            opts.timeout = Duration::from_secs_f64(t);
        }
        if let Some(r) = self.retries {
            opts.retries = r;
        }
        if let Some(n) = self.max_oids {
            if n == 0 {
                bail!("--max-oids must be at least 1");
            }
            opts.max_oids_per_pdu = n;
        }
        for group in &self.app_options {
            let mut chars = group.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    'c' => opts.check_increasing = false,
                    'I' => opts.walk_root_fallback = false,
                    'r' => {
                        let digits: String =
                            std::iter::from_fn(|| chars.next_if(|d| d.is_ascii_digit())).collect();
                        let n: u32 = digits
                            .parse()
                            .ok()
                            .filter(|n| *n > 0)
                            .with_context(|| format!("invalid -Cr value in -C{group}"))?;
                        opts.max_repetitions = n;
                    }
                    other => bail!("unsupported application option -C{other}"),
                }
            }
        }
        for group in &self.output_options {
            if let Some(c) = group.chars().find(|c| *c != 'n') {
                bail!("unsupported output option -O{c} (ironpoll prints numeric OIDs, as -On)");
            }
        }
        if let Some(m) = &self.mibs
            && !m.is_empty()
        {
            bail!("ironpoll loads no MIBs; use numeric OIDs and -m \"\"");
        }
        Ok(opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_walk_application_options() {
        let args = SnmpArgs {
            app_options: vec!["cI".into(), "r25".into()],
            ..SnmpArgs::default()
        };
        let o = args.session_options().unwrap();
        assert!(!o.check_increasing && !o.walk_root_fallback);
        assert_eq!(o.max_repetitions, 25);
        let bad = SnmpArgs {
            app_options: vec!["r".into()],
            ..SnmpArgs::default()
        };
        assert!(bad.session_options().is_err());
    }

    #[test]
    fn line_options_override_global_ones() {
        let global = SnmpArgs {
            version: Some("3".into()),
            user: Some("u".into()),
            ..SnmpArgs::default()
        };
        let line = SnmpArgs {
            user: Some("other".into()),
            ..SnmpArgs::default()
        };
        let m = global.merged(&line);
        assert_eq!(m.version.as_deref(), Some("3"));
        assert_eq!(m.user.as_deref(), Some("other"));
    }

    #[test]
    fn errors_never_contain_the_passphrase() {
        let args = SnmpArgs {
            version: Some("3".into()),
            user: Some("u".into()),
            level: Some("authPriv".into()),
            auth_passphrase: Some("secretpass".into()),
            priv_passphrase: Some("x9q!z".into()),
            ..SnmpArgs::default()
        };
        let e = args.credentials().unwrap_err().to_string();
        assert!(e.contains("at least 8"), "{e}");
        assert!(!e.contains("x9q!z") && !e.contains("secretpass"), "{e}");
    }
}
