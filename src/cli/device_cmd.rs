//! `ironpoll device add|list|remove`: the embedded store's devices.

use std::process::ExitCode;

use anyhow::bail;

use super::setup::ConfigArgs;
use crate::config::Mode;
use crate::db::devices::{self, NewDevice};
use crate::snmp::usm::{AuthProtocol, PrivProtocol, SecurityLevel};

#[derive(Debug, clap::Args)]
pub struct DeviceArgs {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    config: ConfigArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Add a device (hostname or IP) with its SNMP credentials
    Add(Box<AddArgs>),
    /// List devices
    List {
        /// As JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove a device and everything stored for it
    Remove {
        /// Device id or hostname
        device: String,
    },
}

#[derive(Debug, clap::Args)]
struct AddArgs {
    /// Hostname or IP address (also the name of its RRD directory)
    hostname: String,
    /// SNMP version: 1, 2c or 3
    #[arg(short = 'v', value_name = "VERSION", default_value = "2c")]
    snmp_version: String,
    /// Community (v1, v2c)
    #[arg(short = 'c', default_value = "public")]
    community: String,
    /// v3 security level: noAuthNoPriv, authNoPriv or authPriv
    #[arg(short = 'l')]
    level: Option<String>,
    /// v3 user
    #[arg(short = 'u')]
    user: Option<String>,
    /// v3 authentication protocol: MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512
    #[arg(short = 'a')]
    auth_protocol: Option<String>,
    /// v3 authentication passphrase
    #[arg(short = 'A')]
    auth_passphrase: Option<String>,
    /// v3 privacy protocol: DES, AES, AES-192, AES-256, AES-256-C
    #[arg(short = 'x')]
    priv_protocol: Option<String>,
    /// v3 privacy passphrase
    #[arg(short = 'X')]
    priv_passphrase: Option<String>,
    /// SNMP port
    #[arg(long, default_value_t = 161)]
    port: u16,
    /// udp, udp6, tcp or tcp6
    #[arg(long, default_value = "udp")]
    transport: String,
    /// Address to poll instead of the hostname
    #[arg(long)]
    overwrite_ip: Option<String>,
    /// Poller group
    #[arg(long, default_value_t = 0)]
    poller_group: i64,
    /// Ping only: no SNMP
    #[arg(long)]
    ping_only: bool,
}

pub async fn run(args: DeviceArgs) -> anyhow::Result<ExitCode> {
    let loaded = args.config.load().await?;
    let db = &loaded.db;
    let embedded = loaded.settings.mode == Mode::Standalone;
    let result = match args.action {
        Action::Add(a) => {
            if !embedded {
                bail!(
                    "this is a LibreNMS store: add devices with `lnms device:add`, which also discovers them"
                );
            }
            let dev = new_device(*a)?;
            let id = devices::add(db, &dev).await?;
            println!("added {} (device {id})", dev.hostname);
            ExitCode::SUCCESS
        }
        Action::List { json } => {
            let list = devices::find(db, "all").await?;
            if json {
                let rows: Vec<_> = list
                    .iter()
                    .map(|d| {
                        serde_json::json!({
                            "device_id": d.device_id,
                            "hostname": d.hostname,
                            "snmpver": d.snmpver,
                            "port": d.port,
                            "transport": d.transport,
                            "poller_group": d.poller_group,
                            "status": d.status,
                            "status_reason": d.status_reason,
                            "disabled": d.disabled,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:>6}  {:<32} {:<5} {:>5} {:<6} {:>5}  status",
                    "id", "hostname", "snmp", "port", "trans", "group"
                );
                for d in list {
                    let status = if d.disabled {
                        "disabled".to_string()
                    } else if d.status {
                        "up".to_string()
                    } else if d.last_polled.is_none() && d.status_reason.is_empty() {
                        "not polled".to_string()
                    } else {
                        format!("down ({})", d.status_reason)
                    };
                    println!(
                        "{:>6}  {:<32} {:<5} {:>5} {:<6} {:>5}  {status}",
                        d.device_id, d.hostname, d.snmpver, d.port, d.transport, d.poller_group
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Action::Remove { device } => {
            if !embedded {
                bail!("this is a LibreNMS store: remove devices with `lnms device:remove`");
            }
            let found = devices::find(db, &device).await?;
            if found.is_empty() {
                eprintln!("ironpoll: no device {device}");
                ExitCode::from(1)
            } else {
                for d in found {
                    devices::remove(db, d.device_id).await?;
                    println!("removed {} (device {})", d.hostname, d.device_id);
                }
                ExitCode::SUCCESS
            }
        }
    };
    db.close().await;
    Ok(result)
}

fn new_device(a: AddArgs) -> anyhow::Result<NewDevice> {
    let hostname = a.hostname.trim().to_string();
    if hostname.is_empty() {
        bail!("empty hostname");
    }
    if !["udp", "udp6", "tcp", "tcp6"].contains(&a.transport.as_str()) {
        bail!(
            "transport {:?} is not supported (udp, udp6, tcp or tcp6)",
            a.transport
        );
    }
    let mut dev = NewDevice {
        hostname,
        overwrite_ip: a.overwrite_ip,
        port: a.port,
        transport: a.transport,
        poller_group: a.poller_group,
        snmp_disable: a.ping_only,
        ..NewDevice::default()
    };
    match a.snmp_version.as_str() {
        "1" | "v1" => {
            dev.snmpver = "v1".into();
            dev.community = Some(a.community);
        }
        "2c" | "v2c" | "2" => {
            dev.snmpver = "v2c".into();
            dev.community = Some(a.community);
        }
        "3" | "v3" => {
            dev.snmpver = "v3".into();
            let level: SecurityLevel = a
                .level
                .as_deref()
                .unwrap_or("noAuthNoPriv")
                .parse()
                .map_err(anyhow::Error::msg)?;
            dev.authlevel = Some(level.to_string());
            dev.authname = Some(a.user.unwrap_or_else(|| "root".into()));
            if level >= SecurityLevel::AuthNoPriv {
                let proto: AuthProtocol = a
                    .auth_protocol
                    .as_deref()
                    .unwrap_or("MD5")
                    .parse()
                    .map_err(anyhow::Error::msg)?;
                let pass = a.auth_passphrase.unwrap_or_default();
                if pass.len() < 8 {
                    bail!("the authentication passphrase (-A) must be at least 8 characters");
                }
                dev.authalgo = Some(proto.name().to_string());
                dev.authpass = Some(pass);
            }
            if level == SecurityLevel::AuthPriv {
                let proto: PrivProtocol = a
                    .priv_protocol
                    .as_deref()
                    .unwrap_or("AES")
                    .parse()
                    .map_err(anyhow::Error::msg)?;
                let pass = a.priv_passphrase.unwrap_or_default();
                if pass.len() < 8 {
                    bail!("the privacy passphrase (-X) must be at least 8 characters");
                }
                dev.cryptoalgo = Some(proto.name().to_string());
                dev.cryptopass = Some(pass);
            }
        }
        other => bail!("invalid version {other:?} (use 1, 2c or 3)"),
    }
    Ok(dev)
}
