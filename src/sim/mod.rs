//! Simulated SNMP agents, for tests, benchmarks and the demo.
//!
//! * Recordings (snmprec files) are served on the given endpoints; as with
//!   snmpsim, the v1/v2c community or the v3 context names the recording.
//! * A fleet is N devices built from generated profiles or recordings, each on
//!   its own loopback address (127.x.y.z, one wildcard socket per thread) or
//!   its own port.
//! * Faults are set per device or for a share of the fleet.
//!
//! Answering is cheap: images are shared, fixed varbinds are pre-encoded, and
//! datagrams move in batches of up to 32 per system call.

pub mod agent;
pub mod fault;
pub mod image;
pub mod profile;
mod server;
use server::{ServerHandle, SocketOptions};
pub mod snmprec;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, bail};
use rayon::prelude::*;

pub use crate::telemetry::process_cpu_seconds;
use rustc_hash::FxHashMap;

pub use agent::{Agent, SimStats};
use agent::{BootClock, Catalog, Device, Responder};
use fault::{FaultRule, Faults};
use image::{Image, mix, name_hash, unit};
use profile::Profile;

use crate::snmp::usm::UsmUser;
use crate::snmp::{Value, oid};

/// A fleet member: a generated profile or a loaded recording.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Member {
    Profile(Profile),
    Recording(String),
}

impl FromStr for Member {
    type Err = String;

    /// A profile name, or `rec:NAME` for a loaded recording.
    fn from_str(s: &str) -> Result<Member, String> {
        match s.strip_prefix("rec:") {
            Some(name) if !name.is_empty() => Ok(Member::Recording(name.to_string())),
            Some(_) => Err("rec: needs a recording name".into()),
            None => s.parse().map(Member::Profile),
        }
    }
}

impl Member {
    fn label(&self) -> &str {
        match self {
            Member::Profile(p) => p.name(),
            Member::Recording(r) => r,
        }
    }
}

/// Where fleet devices listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetLayout {
    /// One address each from `first` upward (skipping .0 and .255), all on `port`.
    Addresses { first: Ipv4Addr, port: u16 },
    /// One port each from `first_port` upward, all on `addr`.
    Ports { addr: IpAddr, first_port: u16 },
}

#[derive(Debug, Clone)]
pub struct FleetConfig {
    pub size: usize,
    /// Members and their weights; devices are dealt out in these proportions.
    pub mix: Vec<(Member, u32)>,
    pub layout: FleetLayout,
    pub community: String,
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Addresses that serve every recording, chosen by community or context.
    pub endpoints: Vec<SocketAddr>,
    /// snmprec files, or folders of them.
    pub recordings: Vec<PathBuf>,
    /// Make recorded counters advance and uptimes tick.
    pub animate_recordings: bool,
    pub fleet: Option<FleetConfig>,
    pub users: Vec<UsmUser>,
    pub faults: Vec<FaultRule>,
    pub seed: u64,
    /// Largest response the agents send.
    pub max_message_size: usize,
    /// Sockets sharing a fleet's wildcard port, one per serving thread.
    pub sockets_per_port: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            endpoints: Vec::new(),
            recordings: Vec::new(),
            animate_recordings: false,
            fleet: None,
            users: Vec::new(),
            faults: Vec::new(),
            seed: 1,
            max_message_size: 65_507,
            sockets_per_port: 1,
        }
    }
}

/// A fleet device as a poller sees it.
#[derive(Debug, Clone)]
pub struct FleetDevice {
    pub name: String,
    pub member: String,
    pub addr: SocketAddr,
    pub community: String,
    pub faults: Faults,
}

/// A running simulator; dropping it stops every agent.
pub struct Simulator {
    pub endpoints: Vec<SocketAddr>,
    pub fleet: Vec<FleetDevice>,
    pub recordings: Vec<String>,
    devices: HashMap<String, Arc<Device>>,
    agent: Arc<Agent>,
    servers: Vec<ServerHandle>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("endpoints", &self.endpoints)
            .field("fleet", &self.fleet.len())
            .field("recordings", &self.recordings.len())
            .finish()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        for s in &self.servers {
            s.stop();
        }
    }
}

/// An SNMP engine ID (RFC 3411 format 5, octets) unique to a name and seed.
fn engine_id(name: &str, seed: u64) -> Vec<u8> {
    let h = mix(seed, name_hash(name));
    // Enterprise 8072 (net-snmp) with the high bit set, format 5 (octets).
    let mut id = vec![0x80, 0x00, 0x1f, 0x88, 0x05];
    id.extend_from_slice(&h.to_be_bytes());
    id
}

/// Lists the snmprec files of the given files and folders.
fn recording_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut in_dir: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot read {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "snmprec"))
                .collect();
            in_dir.sort();
            files.extend(in_dir);
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            bail!("{} is neither an snmprec file nor a folder", p.display());
        }
    }
    Ok(files)
}

fn recording_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Seconds a recording says its device had been up.
fn recorded_uptime(img: &Image) -> f64 {
    img.find(oid("1.3.6.1.2.1.1.3.0").arcs())
        .map(|i| match img.entries()[i].source {
            image::Source::Fixed(Value::TimeTicks(t)) => t as f64 / 100.0,
            _ => 0.0,
        })
        .unwrap_or(0.0)
}

impl Simulator {
    /// Loads, builds and binds everything, then serves on the current runtime.
    pub async fn start(config: SimConfig) -> anyhow::Result<Simulator> {
        let files = recording_files(&config.recordings)?;
        let animate = config.animate_recordings;
        // Parsing thousands of recordings is CPU-bound batch work.
        let loaded: Vec<(String, Vec<crate::snmp::VarBind>, Arc<Image>)> = files
            .par_iter()
            .map(|f| {
                let name = recording_name(f);
                let snmprec::Recording { varbinds, skipped } = snmprec::parse_file(f)?;
                if let Some(first) = skipped.first() {
                    tracing::warn!(
                        file = %f.display(),
                        skipped = skipped.len(),
                        first = %first,
                        "skipping unreadable snmprec records"
                    );
                }
                let img = Arc::new(Image::from_recording(
                    name.clone(),
                    varbinds.clone(),
                    animate,
                ));
                Ok((name, varbinds, img))
            })
            .collect::<Result<_, snmprec::SnmprecError>>()?;
        let mut recordings: HashMap<String, &[crate::snmp::VarBind]> = HashMap::new();
        for (name, varbinds, _) in &loaded {
            if recordings.insert(name.clone(), varbinds).is_some() {
                bail!("two recordings are named {name:?}; the community could not tell them apart");
            }
        }
        let agent = Arc::new(Agent::new(config.users.clone(), config.max_message_size));
        let mut sim = Simulator {
            endpoints: Vec::new(),
            fleet: Vec::new(),
            recordings: loaded.iter().map(|(n, _, _)| n.clone()).collect(),
            devices: HashMap::new(),
            agent: agent.clone(),
            servers: Vec::new(),
        };
        if !config.endpoints.is_empty() {
            if loaded.is_empty() {
                bail!("endpoints need recordings to serve (--data)");
            }
            let catalog_engine = engine_id("catalog", config.seed);
            let by_name: HashMap<Vec<u8>, Arc<Device>> = loaded
                .iter()
                .map(|(name, _, img)| {
                    let device = Device {
                        name: name.clone(),
                        image: img.clone(),
                        seed: mix(config.seed, name_hash(name)),
                        clock: BootClock::new(recorded_uptime(img)),
                        faults: Faults::for_device(&config.faults, name, config.seed),
                        community: name.clone().into_bytes(),
                        engine_id: catalog_engine.clone(),
                    };
                    (name.clone().into_bytes(), Arc::new(device))
                })
                .collect();
            for device in by_name.values() {
                sim.devices.insert(device.name.clone(), Arc::clone(device));
            }
            let responder = Responder::Catalog(Arc::new(Catalog {
                by_name,
                engine_id: catalog_engine,
                clock: BootClock::new(0.0),
            }));
            for ep in &config.endpoints {
                let options = SocketOptions {
                    packet_info: false,
                    reuse_port: false,
                    threaded: true,
                };
                let (addr, task) = server::spawn_socket(
                    *ep,
                    options,
                    responder.clone(),
                    agent.clone(),
                    config.seed,
                )
                .with_context(|| format!("cannot serve on {ep}"))?;
                sim.endpoints.push(addr);
                sim.servers.push(task);
            }
        }
        if let Some(fleet) = &config.fleet {
            sim.start_fleet(fleet, &config, &recordings)?;
        }
        Ok(sim)
    }

    fn start_fleet(
        &mut self,
        fleet: &FleetConfig,
        config: &SimConfig,
        recordings: &HashMap<String, &[crate::snmp::VarBind]>,
    ) -> anyhow::Result<()> {
        if fleet.mix.is_empty() || fleet.mix.iter().all(|(_, w)| *w == 0) {
            bail!("a fleet needs at least one profile with a weight above 0");
        }
        // One image per member, shared by all its devices.
        let mut member_images: HashMap<Member, Arc<Image>> = HashMap::new();
        for (member, _) in &fleet.mix {
            let img = match member {
                Member::Profile(p) => Arc::new(p.image(config.seed)),
                Member::Recording(name) => {
                    let varbinds = recordings.get(name).with_context(|| {
                        format!("fleet member rec:{name} is not among the loaded recordings")
                    })?;
                    // Fleet devices move: their recordings are always animated.
                    Arc::new(Image::from_recording(name.clone(), varbinds.to_vec(), true))
                }
            };
            member_images.insert(member.clone(), img);
        }
        let mut devices = Vec::with_capacity(fleet.size);
        let mut addresses = Vec::with_capacity(fleet.size);
        let mut next_v4 = u32::from(match fleet.layout {
            FleetLayout::Addresses { first, .. } => first,
            FleetLayout::Ports { .. } => Ipv4Addr::LOCALHOST,
        });
        let weights: Vec<u32> = fleet.mix.iter().map(|(_, w)| *w).collect();
        for (i, chosen) in deal(&weights, fleet.size).into_iter().enumerate() {
            let member = fleet.mix[chosen].0.clone();
            let name = format!("{}-{:05}", member.label(), i + 1);
            let seed = mix(config.seed, i as u64 + 1);
            let addr = match fleet.layout {
                FleetLayout::Addresses { port, .. } => {
                    while matches!(next_v4 & 0xff, 0 | 255) {
                        next_v4 += 1;
                    }
                    let ip = Ipv4Addr::from(next_v4);
                    if ip.octets()[0] != 127 {
                        bail!(
                            "the fleet ran out of 127.0.0.0/8 addresses at device {}",
                            i + 1
                        );
                    }
                    next_v4 += 1;
                    SocketAddr::new(IpAddr::V4(ip), port)
                }
                FleetLayout::Ports { addr, first_port } => {
                    let port = first_port as usize + i;
                    if port > u16::MAX as usize {
                        bail!("the fleet ran out of ports at device {}", i + 1);
                    }
                    SocketAddr::new(addr, port as u16)
                }
            };
            let faults = Faults::for_device(&config.faults, &name, config.seed);
            let device = Arc::new(Device {
                name: name.clone(),
                image: member_images[&member].clone(),
                seed,
                // Up between one hour and sixty days.
                clock: BootClock::new(3600.0 + unit(seed, 0x0b007) * 60.0 * 86_400.0),
                faults: faults.clone(),
                community: fleet.community.clone().into_bytes(),
                engine_id: engine_id(&name, config.seed),
            });
            self.fleet.push(FleetDevice {
                name,
                member: member.label().to_string(),
                addr,
                community: fleet.community.clone(),
                faults,
            });
            addresses.push(addr);
            self.devices.insert(device.name.clone(), device.clone());
            devices.push(device);
        }
        match fleet.layout {
            FleetLayout::Addresses { port, .. } => {
                let map: FxHashMap<IpAddr, Arc<Device>> = addresses
                    .iter()
                    .zip(devices)
                    .map(|(a, d)| (a.ip(), d))
                    .collect();
                let responder = Responder::ByAddress(Arc::new(map));
                let bind = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
                let sockets = config.sockets_per_port.max(1);
                let mut bound_port = port;
                for s in 0..sockets {
                    let at = SocketAddr::new(bind.ip(), bound_port);
                    let options = SocketOptions {
                        packet_info: true,
                        reuse_port: sockets > 1,
                        threaded: true,
                    };
                    let (addr, task) = server::spawn_socket(
                        at,
                        options,
                        responder.clone(),
                        self.agent.clone(),
                        mix(config.seed, s as u64),
                    )
                    .with_context(|| format!("cannot serve the fleet on {at}"))?;
                    // Port 0 asks for any port: every socket then shares the first one's.
                    bound_port = addr.port();
                    self.servers.push(task);
                }
                if port == 0 {
                    for d in &mut self.fleet {
                        d.addr.set_port(bound_port);
                    }
                }
            }
            FleetLayout::Ports { .. } => {
                for (i, (addr, device)) in addresses.iter().zip(devices).enumerate() {
                    // Thousands of sockets: tasks, not threads.
                    let options = SocketOptions {
                        packet_info: false,
                        reuse_port: false,
                        threaded: false,
                    };
                    let (_, task) = server::spawn_socket(
                        *addr,
                        options,
                        Responder::Device(device),
                        self.agent.clone(),
                        mix(config.seed, i as u64),
                    )
                    .with_context(|| format!("cannot serve fleet device on {addr}"))?;
                    self.servers.push(task);
                }
            }
        }
        Ok(())
    }

    /// Reboots a device: its uptime starts again from zero and, for a fleet
    /// device, its snmpEngineBoots goes up by one. False for an unknown name.
    pub fn reboot(&self, name: &str) -> bool {
        match self.devices.get(name) {
            Some(d) => {
                d.clock.reboot(self.agent.elapsed_secs());
                true
            }
            None => false,
        }
    }

    pub fn stats(&self) -> SimStats {
        self.agent.counters.snapshot()
    }

    /// `TARGET COMMUNITY NAME` lines for `ironpoll walk --targets`.
    pub fn targets_text(&self) -> String {
        let mut s = String::new();
        for d in &self.fleet {
            s.push_str(&format!("{} {} {}\n", d.addr, d.community, d.name));
        }
        for ep in &self.endpoints {
            for r in &self.recordings {
                s.push_str(&format!("{ep} {r} {r}\n"));
            }
        }
        s
    }
}

/// Which member each of `size` devices is: by weight, interleaved as
/// devices are in a real install (smooth weighted round-robin: exact
/// shares, each member spread evenly over the fleet), not in blocks.
fn deal(weights: &[u32], size: usize) -> Vec<usize> {
    let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
    let mut credit = vec![0i64; weights.len()];
    (0..size)
        .map(|_| {
            for (c, w) in credit.iter_mut().zip(weights) {
                *c += i64::from(*w);
            }
            let chosen = (0..credit.len())
                .max_by_key(|&j| (credit[j], std::cmp::Reverse(j)))
                .unwrap_or(0);
            credit[chosen] -= total;
            chosen
        })
        .collect()
}

#[cfg(test)]
#[test]
fn fleets_are_dealt_by_weight_and_interleaved() {
    let dealt = deal(&[80, 15, 5], 1000);
    let count = |m: usize| dealt.iter().filter(|&&d| d == m).count();
    assert_eq!((count(0), count(1), count(2)), (800, 150, 50));
    // The 5% member is spread over the fleet: one in every 20 devices.
    for window in dealt.chunks(20) {
        assert_eq!(window.iter().filter(|&&d| d == 2).count(), 1, "{window:?}");
    }
    assert_eq!(deal(&[3, 1], 4).iter().filter(|&&d| d == 1).count(), 1);
    assert_eq!(deal(&[0, 2], 3), vec![1, 1, 1]);
}
