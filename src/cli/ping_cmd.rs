//! `ironpoll ping`, two ways.
//!
//! On plain addresses: fping's options, output and exit codes for what the
//! two share, so scripts written for fping keep working. With `-c`, one
//! line per echo on stdout and a summary per host on stderr; without,
//! `HOST is alive` / `HOST is unreachable` after up to `-r` retries with
//! fping's 1.5 back-off.
//!
//! On devices of the store (`--all`, `--devices`, or `--interval`): fast
//! ping rounds that write status, outages, eventlog and ping statistics
//! as `ironpoll run` does; once, or every `--interval` seconds.

use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use crate::icmp::sweep::{Echo, SweepOptions};
use crate::icmp::{PingResult, Pinger};

/// fping's exit codes.
pub const EXIT_ALL_ALIVE: u8 = 0;
pub const EXIT_SOME_UNREACHABLE: u8 = 1;
pub const EXIT_NOT_FOUND: u8 = 2;
pub const EXIT_INVALID: u8 = 3;
pub const EXIT_SYSTEM: u8 = 4;

/// Echo size fping reports: its 56-byte payload and the 8-byte header.
const ECHO_BYTES: u32 = 64;

/// `ironpoll ping`: fping's options, or the store's devices.
#[derive(Debug, clap::Args)]
pub struct PingArgs {
    #[command(flatten)]
    pub fping: FpingArgs,
    /// Ping every enabled device of the store (fast ping)
    #[arg(long)]
    pub all: bool,
    /// The HOST arguments are devices of the store (ids or hostnames)
    #[arg(long)]
    pub devices: bool,
    /// Fast ping the devices every S seconds until interrupted
    #[arg(long, value_name = "S")]
    pub interval: Option<u32>,
    #[command(flatten)]
    pub config: super::setup::ConfigArgs,
}

/// fping's options.
#[derive(Debug, Clone, clap::Args)]
pub struct FpingArgs {
    /// Hosts to ping (names or addresses), or devices with --devices
    #[arg(value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Read the hosts from FILE, one per line (`-` for stdin)
    #[arg(short = 'f', value_name = "FILE")]
    pub file: Option<String>,
    /// Echoes per host; prints one line per echo and a summary per host
    #[arg(short = 'c', value_name = "COUNT")]
    pub count: Option<u32>,
    /// Milliseconds between echoes to one host
    #[arg(short = 'p', value_name = "PERIOD_MS", default_value_t = 1000.0)]
    pub period_ms: f64,
    /// Milliseconds between any two echoes (fractions allowed)
    #[arg(short = 'i', value_name = "INTERVAL_MS", default_value_t = 10.0)]
    pub interval_ms: f64,
    /// Milliseconds an echo waits for its reply
    #[arg(short = 't', value_name = "TIMEOUT_MS", default_value_t = 500.0)]
    pub timeout_ms: f64,
    /// Retries without -c (each waiting 1.5 times longer)
    #[arg(short = 'r', value_name = "RETRIES", default_value_t = 3)]
    pub retries: u32,
    /// Quiet: no per-echo lines, only the summaries
    #[arg(short = 'q')]
    pub quiet: bool,
}

fn millis(name: &str, v: f64, min: f64) -> Result<Duration, String> {
    if !v.is_finite() || v < min || v > 3_600_000.0 {
        return Err(format!(
            "{name} must be between {min} and 3600000 milliseconds"
        ));
    }
    Ok(Duration::from_secs_f64(v / 1000.0))
}

/// Runs `ironpoll ping`; every outcome is an exit code, as fping's are.
pub async fn run(args: PingArgs) -> ExitCode {
    let result = if args.all || args.devices || args.interval.is_some() {
        devices_mode(args).await
    } else {
        run_inner(args.fping).await
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err((code, message)) => {
            eprintln!("ironpoll ping: {message}");
            ExitCode::from(code)
        }
    }
}

async fn run_inner(args: FpingArgs) -> Result<u8, (u8, String)> {
    let invalid = |m: String| (EXIT_INVALID, m);
    let period = millis("-p", args.period_ms, 0.0).map_err(invalid)?;
    let interval = millis("-i", args.interval_ms, 0.0).map_err(invalid)?;
    let timeout = millis("-t", args.timeout_ms, 0.001).map_err(invalid)?;
    let mut names = args.hosts.clone();
    if let Some(file) = &args.file {
        let text = if file == "-" {
            std::io::read_to_string(std::io::stdin())
        } else {
            std::fs::read_to_string(file)
        }
        .map_err(|e| (EXIT_SYSTEM, format!("cannot read {file}: {e}")))?;
        names.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    if names.is_empty() {
        return Err(invalid("no hosts given (HOST... or -f FILE)".into()));
    }
    let pinger = Pinger::new(0).map_err(|e| (EXIT_SYSTEM, e.to_string()))?;

    // Resolve; a name that does not resolve is reported once and skipped.
    let mut not_found = false;
    let mut hosts: Vec<(String, IpAddr)> = Vec::with_capacity(names.len());
    for name in names {
        match resolve(&name).await {
            Some(ip) => hosts.push((name, ip)),
            None => {
                not_found = true;
                if !args.quiet {
                    eprintln!("{name}: Name or service not known");
                }
            }
        }
    }
    let width = hosts.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let addrs: Vec<IpAddr> = hosts.iter().map(|(_, ip)| *ip).collect();
    let results = match args.count {
        Some(count) => {
            count_mode(
                &pinger, &hosts, &addrs, width, count, period, interval, timeout, args.quiet,
            )
            .await
        }
        None => alive_mode(&pinger, &hosts, &addrs, interval, timeout, &args).await,
    };
    let all_alive = results.iter().all(PingResult::alive);
    Ok(if not_found {
        EXIT_NOT_FOUND
    } else if all_alive {
        EXIT_ALL_ALIVE
    } else {
        EXIT_SOME_UNREACHABLE
    })
}

async fn resolve(name: &str) -> Option<IpAddr> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Some(ip);
    }
    tokio::net::lookup_host((name, 0))
        .await
        .ok()?
        .map(|a| a.ip())
        .next()
}

#[allow(clippy::too_many_arguments)]
async fn count_mode(
    pinger: &Pinger,
    hosts: &[(String, IpAddr)],
    addrs: &[IpAddr],
    width: usize,
    count: u32,
    period: Duration,
    interval: Duration,
    timeout: Duration,
    quiet: bool,
) -> Vec<PingResult> {
    // Running figures for the per-echo lines: (answered, sum of RTTs).
    let mut running = vec![(0u32, 0.0f64); hosts.len()];
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let opts = SweepOptions {
        count,
        period,
        interval,
        timeout,
    };
    let results = pinger
        .sweep(addrs, opts, |e: &Echo| {
            if quiet {
                return;
            }
            let (answered, sum) = &mut running[e.host];
            if let Some(ms) = e.rtt_ms {
                *answered += 1;
                *sum += ms;
            }
            let sent = e.round + 1;
            let loss = (sent.saturating_sub(*answered)) * 100 / sent;
            let avg = if *answered == 0 {
                "NaN".to_string()
            } else {
                fping_ms(*sum / f64::from(*answered))
            };
            let name = &hosts[e.host].0;
            let _ = match e.rtt_ms {
                Some(ms) => writeln!(
                    out,
                    "{name:<width$} : [{}], {ECHO_BYTES} bytes, {} ms ({avg} avg, {loss}% loss)",
                    e.round,
                    fping_ms(ms)
                ),
                None => writeln!(
                    out,
                    "{name:<width$} : [{}], timed out ({avg} avg, {loss}% loss)",
                    e.round
                ),
            };
        })
        .await;
    let _ = out.flush();
    drop(out);
    let mut err = std::io::stderr().lock();
    if !quiet {
        let _ = writeln!(err);
    }
    for ((name, _), r) in hosts.iter().zip(&results) {
        let _ = writeln!(err, "{}", summary_line(name, width, r));
    }
    results
}

/// fping's per-host summary in count mode.
pub fn summary_line(name: &str, width: usize, r: &PingResult) -> String {
    let mut line = format!(
        "{name:<width$} : xmt/rcv/%loss = {}/{}/{}%",
        r.transmitted,
        r.received,
        r.loss_percent()
    );
    if r.received > 0 {
        line.push_str(&format!(
            ", min/avg/max = {}/{}/{}",
            fping_ms(r.min()),
            fping_ms(r.avg()),
            fping_ms(r.max())
        ));
    }
    line
}

/// Milliseconds the way fping prints them: more decimals for shorter times.
pub fn fping_ms(ms: f64) -> String {
    if ms < 0.0 {
        format!("{ms:.2}")
    } else if ms < 1.0 {
        format!("{ms:.3}")
    } else if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else if ms < 1_000_000.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms:.3e}")
    }
}

async fn alive_mode(
    pinger: &Pinger,
    hosts: &[(String, IpAddr)],
    addrs: &[IpAddr],
    interval: Duration,
    timeout: Duration,
    args: &FpingArgs,
) -> Vec<PingResult> {
    let opts = SweepOptions {
        count: 1,
        period: Duration::ZERO,
        interval,
        timeout,
    };
    let results = pinger.sweep_with_retries(addrs, opts, args.retries).await;
    if !args.quiet {
        let mut out = std::io::stdout().lock();
        for ((name, _), r) in hosts.iter().zip(&results) {
            let state = if r.alive() { "alive" } else { "unreachable" };
            let _ = writeln!(out, "{name} is {state}");
        }
    }
    results
}

/// Fast ping of the store's devices, once or every `--interval` seconds.
async fn devices_mode(args: PingArgs) -> Result<u8, (u8, String)> {
    use crate::poller::engine::Engine;
    use crate::poller::fastping::FastPing;
    use std::sync::Arc;

    // Exactly one of --all and a list of devices.
    if args.all != args.fping.hosts.is_empty() {
        return Err((
            EXIT_INVALID,
            "give either --all or the devices to ping".into(),
        ));
    }
    if args.interval == Some(0) {
        return Err((EXIT_INVALID, "--interval must be at least 1 second".into()));
    }
    let system = |e: anyhow::Error| (EXIT_SYSTEM, format!("{e:#}"));
    let mut loaded = args.config.load().await.map_err(system)?;
    if let Some(s) = args.interval {
        loaded.settings.fast_ping.interval = s;
    }
    loaded.settings.icmp_check = true;
    let db = loaded.db.clone();
    let engine = Engine::start(Arc::new(loaded.settings), db.clone())
        .await
        .map_err(system)?;
    let Some(mut fast) = FastPing::new(engine.clone()) else {
        return Err((
            EXIT_SYSTEM,
            "ICMP echo is not permitted for this process: run as root, give the binary              CAP_NET_RAW, or allow unprivileged ping sockets (sysctl net.ipv4.ping_group_range)"
                .into(),
        ));
    };
    let db_err = |e: crate::db::DbError| (EXIT_SYSTEM, e.to_string());
    let list = if args.all {
        fast.devices().await.map_err(db_err)?
    } else {
        let mut list = Vec::new();
        for spec in &args.fping.hosts {
            let found = crate::db::devices::find(&db, spec).await.map_err(db_err)?;
            if found.is_empty() {
                return Err((EXIT_NOT_FOUND, format!("no device matches {spec}")));
            }
            list.extend(found);
        }
        list
    };
    let quiet = args.fping.quiet;
    let code = match args.interval {
        None => {
            let outcomes = fast.round(list).await.map_err(db_err)?;
            if !quiet {
                for o in &outcomes {
                    println!("{}", device_line(o));
                }
            }
            if outcomes.iter().all(|o| o.status) {
                EXIT_ALL_ALIVE
            } else {
                EXIT_SOME_UNREACHABLE
            }
        }
        Some(_) => {
            let stop = tokio_util::sync::CancellationToken::new();
            let signals = stop.clone();
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                signals.cancel();
            });
            let mut round = 0u64;
            fast.run(stop, |outcomes| {
                round += 1;
                let up = outcomes.iter().filter(|o| o.status).count();
                if !quiet {
                    for o in outcomes.iter().filter(|o| o.changed) {
                        println!("{}", device_line(o));
                    }
                }
                println!(
                    "round {round}: {} devices, {up} up, {} down, {} changed",
                    outcomes.len(),
                    outcomes.len() - up,
                    outcomes.iter().filter(|o| o.changed).count()
                );
            })
            .await;
            EXIT_ALL_ALIVE
        }
    };
    drop(engine);
    db.close().await;
    Ok(code)
}

fn device_line(o: &crate::poller::fastping::PingOutcome) -> String {
    let state = if o.status {
        "up".to_string()
    } else {
        format!("down ({})", o.status_reason)
    };
    let mut line = format!(
        "{} ({}) : {state}, xmt/rcv = {}/{}",
        o.hostname, o.device_id, o.transmitted, o.received
    );
    if o.received > 0 {
        line.push_str(&format!(", avg {} ms", fping_ms(o.avg_ms)));
    }
    if let Some(e) = &o.error {
        line.push_str(&format!(", {e}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_with_fpings_precision() {
        assert_eq!(fping_ms(0.0172), "0.017");
        assert_eq!(fping_ms(2.345), "2.35");
        assert_eq!(fping_ms(23.45), "23.4");
        assert_eq!(fping_ms(234.5), "234");
    }

    #[test]
    fn summaries_read_like_fpings() {
        let r = PingResult {
            transmitted: 3,
            received: 2,
            rtts: vec![0.013, 0.017],
            ..PingResult::default()
        };
        assert_eq!(
            summary_line("127.0.0.1", 12, &r),
            "127.0.0.1    : xmt/rcv/%loss = 3/2/33%, min/avg/max = 0.013/0.015/0.017"
        );
        let lost = PingResult {
            transmitted: 2,
            ..PingResult::default()
        };
        assert_eq!(
            summary_line("10.255.255.1", 12, &lost),
            "10.255.255.1 : xmt/rcv/%loss = 2/0/100%"
        );
    }
}
