//! `ironpoll sim`: serve recordings and fleets until interrupted.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::secret::Secret;
use crate::sim::fault::FaultRule;
use crate::sim::{FleetConfig, FleetLayout, Member, SimConfig, Simulator};
use crate::snmp::usm::{SecurityLevel, UsmUser};

#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// snmprec file, or folder of them; the community (v1/v2c) or context (v3)
    /// selects a recording by its file name without .snmprec
    #[arg(long = "data", value_name = "PATH")]
    pub data: Vec<PathBuf>,
    /// Address serving the recordings; repeat for more [default: 127.0.0.1:1161 when --data is given]
    #[arg(long = "endpoint", value_name = "ADDR")]
    pub endpoints: Vec<SocketAddr>,
    /// Make recorded counters advance and uptimes tick (fleet members always do)
    #[arg(long)]
    pub animate: bool,
    /// Serve a fleet of N devices
    #[arg(long, value_name = "N")]
    pub fleet: Option<usize>,
    /// Fleet members and weights: switch48, chassis500, linux, or rec:NAME for a
    /// loaded recording; e.g. switch48=80,linux=15,chassis500=5
    #[arg(long, default_value = "switch48", value_name = "LIST")]
    pub profile: String,
    /// First fleet address; device i gets the i-th address after it
    #[arg(long, default_value = "127.1.0.1", value_name = "ADDR")]
    pub fleet_address: Ipv4Addr,
    /// UDP port of every fleet address
    #[arg(long, default_value_t = 1161, value_name = "PORT")]
    pub fleet_port: u16,
    /// Give each fleet device its own port on 127.0.0.1, from PORT up, instead
    /// of its own address
    #[arg(long, value_name = "PORT", conflicts_with = "fleet_address")]
    pub fleet_ports: Option<u16>,
    /// Community fleet devices answer to
    #[arg(long, default_value = "public")]
    pub community: String,
    /// v3 user NAME[:AUTH-PROTOCOL:AUTH-PASSPHRASE[:PRIV-PROTOCOL:PRIV-PASSPHRASE]],
    /// e.g. admin:SHA:authpass123:AES:privpass123; repeatable
    #[arg(long = "v3-user", value_name = "SPEC")]
    pub v3_users: Vec<String>,
    /// Fault rule [SELECTOR:]KIND[=VALUE]; SELECTOR is N% or a device name;
    /// KIND is latency=D[..D], loss=P, silence, wrong-id, truncate, malformed,
    /// non-increasing or toobig=BYTES; repeatable
    #[arg(long = "fault", value_name = "RULE")]
    pub faults: Vec<String>,
    /// Seed for everything the simulator varies
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Serving threads (and sockets sharing the fleet port)
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Largest response an agent sends, in bytes
    #[arg(long, default_value_t = 65_507)]
    pub max_message_size: usize,
    /// Write one `TARGET COMMUNITY NAME` line per simulated device to FILE
    /// (the format of ironpoll walk --targets)
    #[arg(long, value_name = "FILE")]
    pub targets_out: Option<PathBuf>,
    /// Print request counters every N seconds (0: only when stopping)
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub stats_interval: u64,
}

fn parse_user(spec: &str) -> anyhow::Result<UsmUser> {
    let parts: Vec<&str> = spec.split(':').collect();
    let bad = || {
        anyhow::anyhow!(
            "bad --v3-user (NAME[:AUTH-PROTOCOL:AUTH-PASSPHRASE[:PRIV-PROTOCOL:PRIV-PASSPHRASE]])"
        )
    };
    let user = match parts.as_slice() {
        [name] => UsmUser::new(*name, SecurityLevel::NoAuthNoPriv, None, None)?,
        [name, ap, apass] => UsmUser::new(
            *name,
            SecurityLevel::AuthNoPriv,
            Some((
                ap.parse().map_err(anyhow::Error::msg)?,
                Secret::from(*apass),
            )),
            None,
        )?,
        [name, ap, apass, pp, ppass] => UsmUser::new(
            *name,
            SecurityLevel::AuthPriv,
            Some((
                ap.parse().map_err(anyhow::Error::msg)?,
                Secret::from(*apass),
            )),
            Some((
                pp.parse().map_err(anyhow::Error::msg)?,
                Secret::from(*ppass),
            )),
        )?,
        _ => return Err(bad()),
    };
    if user.name.is_empty() {
        return Err(bad());
    }
    Ok(user)
}

/// Parses `switch48=80,linux=15` (a missing weight is 1).
pub fn parse_mix(text: &str) -> anyhow::Result<Vec<(Member, u32)>> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|part| {
            let (name, weight) = match part.split_once('=') {
                Some((n, w)) => (
                    n,
                    w.parse()
                        .with_context(|| format!("bad weight in {part:?}"))?,
                ),
                None => (part, 1),
            };
            Ok((name.trim().parse().map_err(anyhow::Error::msg)?, weight))
        })
        .collect()
}

impl SimArgs {
    pub fn config(&self) -> anyhow::Result<SimConfig> {
        let faults = self
            .faults
            .iter()
            .map(|f| {
                f.parse::<FaultRule>()
                    .map_err(|e| anyhow::anyhow!("--fault {f:?}: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let users = self
            .v3_users
            .iter()
            .map(|u| parse_user(u))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut endpoints = self.endpoints.clone();
        if endpoints.is_empty() && !self.data.is_empty() && self.fleet.is_none() {
            endpoints.push(SocketAddr::from(([127, 0, 0, 1], 1161)));
        }
        let fleet = match self.fleet {
            None => None,
            Some(0) => bail!("--fleet needs at least one device"),
            Some(size) => Some(FleetConfig {
                size,
                mix: parse_mix(&self.profile)?,
                layout: match self.fleet_ports {
                    Some(first_port) => FleetLayout::Ports {
                        addr: Ipv4Addr::LOCALHOST.into(),
                        first_port,
                    },
                    None => FleetLayout::Addresses {
                        first: self.fleet_address,
                        port: self.fleet_port,
                    },
                },
                community: self.community.clone(),
            }),
        };
        if endpoints.is_empty() && fleet.is_none() {
            bail!("nothing to serve: give --data (recordings) and/or --fleet N");
        }
        if self.threads == 0 {
            bail!("--threads must be at least 1");
        }
        Ok(SimConfig {
            endpoints,
            recordings: self.data.clone(),
            animate_recordings: self.animate,
            fleet,
            users,
            faults,
            seed: self.seed,
            max_message_size: self.max_message_size,
            sockets_per_port: self.threads,
        })
    }
}

pub async fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    let sim = Simulator::start(config).await?;
    for ep in &sim.endpoints {
        tracing::info!(endpoint = %ep, recordings = sim.recordings.len(), "serving recordings");
    }
    if let (Some(first), Some(last)) = (sim.fleet.first(), sim.fleet.last()) {
        tracing::info!(devices = sim.fleet.len(), first = %first.addr, last = %last.addr, "serving fleet");
    }
    if let Some(path) = &args.targets_out {
        std::fs::write(path, sim.targets_text())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut ticker = (args.stats_interval > 0)
        .then(|| tokio::time::interval(Duration::from_secs(args.stats_interval)));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = async { ticker.as_mut().unwrap().tick().await }, if ticker.is_some() => {
                tracing::info!(stats = ?sim.stats(), cpu_seconds = crate::sim::process_cpu_seconds(), "simulator");
            }
        }
    }
    tracing::info!(stats = ?sim.stats(), cpu_seconds = crate::sim::process_cpu_seconds(), "simulator stopping");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_users_and_mixes() {
        let u = parse_user("admin:SHA:authpass123:AES:privpass123").unwrap();
        assert_eq!(u.level, SecurityLevel::AuthPriv);
        assert!(parse_user("admin:SHA").is_err());
        assert!(parse_user("admin:SHA:short").is_err());
        let m = parse_mix("switch48=80,linux=15,rec:ios").unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[2], (Member::Recording("ios".into()), 1));
        assert!(parse_mix("router").is_err());
    }
}
