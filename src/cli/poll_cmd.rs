//! `ironpoll poll`: poll devices once and write the results, like
//! `lnms device:poll`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;

use super::setup::ConfigArgs;
use crate::db::devices;
use crate::modules::Selection;
use crate::poller::engine::Engine;
use crate::poller::{DeviceReport, PolledBy, exit_code};

#[derive(Debug, clap::Args)]
pub struct PollArgs {
    /// Devices: ids, hostnames (* wildcards), all, odd, even or new
    #[arg(required = true, value_name = "DEVICE")]
    devices: Vec<String>,
    /// Only these modules (comma-separated), as a manual override
    #[arg(short = 'm', long = "modules", value_name = "MODULES")]
    modules: Option<String>,
    /// Print each device's report, with every module's output, as JSON
    #[arg(long)]
    json: bool,
    /// Devices polled at once
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[command(flatten)]
    config: ConfigArgs,
}

pub async fn run(args: PollArgs) -> anyhow::Result<ExitCode> {
    let selection = match &args.modules {
        Some(list) => Selection::parse_list(list).map_err(anyhow::Error::msg)?,
        None => Selection::Configured,
    };
    let loaded = args.config.load().await?;
    let mut list = Vec::new();
    for spec in &args.devices {
        for d in devices::find(&loaded.db, spec).await? {
            if !list
                .iter()
                .any(|x: &crate::device::Device| x.device_id == d.device_id)
            {
                list.push(d);
            }
        }
    }
    if list.is_empty() {
        eprintln!("ironpoll: no device matches {}", args.devices.join(" "));
        return Ok(ExitCode::from(1));
    }
    let engine = Engine::start(Arc::new(loaded.settings), loaded.db.clone()).await?;
    let json = args.json;
    let mut reports = Vec::new();
    engine
        .poll_devices(list, &selection, args.concurrency, |r| {
            if !json {
                print_report(&r);
            }
            reports.push(r);
        })
        .await?;
    reports.sort_by_key(|r| r.device_id);
    let problems = engine.finish().await;
    loaded.db.close().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    if !problems.is_empty() {
        bail!(
            "polled, but not everything was written: {}",
            problems.join("; ")
        );
    }
    Ok(ExitCode::from(exit_code(&reports)))
}

fn print_report(r: &DeviceReport) {
    let state = if r.status {
        "up".to_string()
    } else {
        format!("down ({})", r.status_reason)
    };
    println!(
        ">>> Polled {} ({}) in {:.3} seconds: {state}",
        r.hostname, r.device_id, r.seconds
    );
    if let Some(p) = &r.ping {
        println!(
            "    icmp           xmt/rcv/%loss = {}/{}/{}%, min/avg/max = {:.2}/{:.2}/{:.2} ms",
            p.transmitted, p.received, p.loss_percent, p.min_ms, p.avg_ms, p.max_ms
        );
    }
    if let Some(e) = &r.snmp_error {
        println!("    snmp           {e}");
    }
    for m in &r.modules {
        let by = match m.by {
            PolledBy::Native => "",
            PolledBy::Php => "  (LibreNMS PHP)",
        };
        match &m.error {
            None => println!("    {:<14} {:.3}s{by}", m.module, m.seconds),
            Some(e) => println!("    {:<14} {:.3}s{by}  error: {e}", m.module, m.seconds),
        }
    }
    // Modules for PHP that did not run (no PHP here) are listed once.
    let unpolled: Vec<&str> = r
        .php_modules
        .iter()
        .filter(|m| !r.modules.iter().any(|x| x.module == **m))
        .copied()
        .collect();
    if !unpolled.is_empty() {
        println!(
            "    not polled (LibreNMS's PHP is needed for them): {}",
            unpolled.join(", ")
        );
    }
}
