//! CPU and memory readings the benchmarks share (included with `#[path]`).
#![allow(dead_code)]

use ironpoll::telemetry::cpu_seconds_of;

/// CPU seconds (user + system) of another process.
pub fn cpu_of(pid: u32) -> f64 {
    cpu_seconds_of(pid).map_or(0.0, |(user, system)| user + system)
}

/// CPU seconds of the children this process has waited for.
pub fn children_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// This process's peak resident set, in MB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
