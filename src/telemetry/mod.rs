//! Logging set-up: lines on stderr (which systemd sends to the journal),
//! filtered by `RUST_LOG` (default `info`, or `warn` for the one-shot tools
//! whose stdout is data); human-readable, or one JSON object per line with
//! `--log-format json`. A device poll is a span (`poll`, with the device's
//! id and hostname), and each line logged within it carries them. The
//! daemon's `log.filter` setting replaces the filter at start and on a
//! reload, so that an operator can turn on a module's debug lines without
//! a restart.

pub mod prometheus;

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// The filter in use, and the one the process started with (`RUST_LOG`
/// or the command's default), for [`set_filter`].
struct Filter {
    handle: reload::Handle<EnvFilter, Registry>,
    at_start: String,
}

static FILTER: OnceLock<Filter> = OnceLock::new();

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn init(default_level: &str, format: LogFormat) {
    let at_start = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| EnvFilter::try_new(v).is_ok())
        .unwrap_or_else(|| default_level.to_string());
    let (filter, handle) = reload::Layer::new(EnvFilter::new(&at_start));
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let lines = match format {
        LogFormat::Text => lines
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    if tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .try_init()
        .is_ok()
    {
        let _ = FILTER.set(Filter { handle, at_start });
    }
}

/// Replaces the log filter (`EnvFilter` directives, as `RUST_LOG`); empty
/// goes back to the one the process started with.
pub fn set_filter(directives: &str) -> Result<(), String> {
    let Some(f) = FILTER.get() else {
        return Err("logging was not set up by ironpoll".into());
    };
    let directives = if directives.trim().is_empty() {
        f.at_start.as_str()
    } else {
        directives
    };
    let filter = EnvFilter::try_new(directives).map_err(|e| e.to_string())?;
    f.handle.reload(filter).map_err(|e| e.to_string())
}

/// User and system CPU seconds another process has used so far, from
/// /proc/<pid>/stat; `None` when the process is gone.
pub fn cpu_seconds_of(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: count from the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // After the command: state is field 0, utime 11, stime 12.
    Some((ticks(11)? / hz, ticks(12)? / hz))
}

/// This process's resident memory in bytes, as the kernel counts it.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|p| *p > 0)?)
}

/// CPU seconds (user + system) this process has used so far.
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if r != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CLOCK_MONOTONIC in microseconds (systemd's `MONOTONIC_USEC`).
pub fn monotonic_usec() -> u64 {
    // SAFETY: clock_gettime fills the struct it is given.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}
