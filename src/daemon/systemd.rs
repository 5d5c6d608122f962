//! systemd's notify protocol (`sd_notify(3)`): datagrams to the socket
//! named in `NOTIFY_SOCKET`. `READY=1` once the scheduling loop has read
//! what is due for the first time, `STATUS=` with the node's pace every few
//! seconds, `WATCHDOG=1` only while the loop keeps turning (`WatchdogSec`),
//! `RELOADING=1` around a reload and `STOPPING=1` at shutdown. Without
//! `NOTIFY_SOCKET` (not started by systemd) nothing is sent.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::poller::engine::Engine;
use crate::scheduler::SchedulerStats;

/// How often STATUS is refreshed when no watchdog asks for more.
const STATUS_EVERY: Duration = Duration::from_secs(5);

pub struct Notifier {
    socket: UnixDatagram,
    to: SocketAddr,
}

impl Notifier {
    /// The notify socket systemd gave this process, if any. A path, or an
    /// abstract name written with a leading `@`.
    pub fn from_env() -> Option<Notifier> {
        let name = std::env::var_os("NOTIFY_SOCKET")?;
        let name = name.to_string_lossy();
        let to = match name.strip_prefix('@') {
            Some(abstract_name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(abstract_name.as_bytes())
            }
            None => SocketAddr::from_pathname(name.as_ref()),
        };
        let to = match to {
            Ok(to) => to,
            Err(e) => {
                tracing::warn!(
                    error = %e, "NOTIFY_SOCKET is not a socket address: systemd is not told when ironpoll is ready"
                );
                return None;
            }
        };
        let socket = match UnixDatagram::unbound().and_then(|s| {
            s.set_nonblocking(true)?;
            Ok(s)
        }) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(
                    error = %e, "cannot open a socket to systemd: systemd is not told when ironpoll is ready"
                );
                return None;
            }
        };
        Some(Notifier { socket, to })
    }

    /// Sends `state` (newline-separated `KEY=VALUE` lines). A datagram
    /// systemd cannot take now is dropped: the next one says the same.
    pub fn send(&self, state: &str) {
        if let Err(e) = self.socket.send_to_addr(state.as_bytes(), &self.to) {
            tracing::debug!(error = %e, "systemd notify not sent");
        }
    }
}

/// `WATCHDOG_USEC` when systemd set it for this process (`WATCHDOG_PID`
/// absent or this process's id).
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID")
        && pid.to_string_lossy().trim() != std::process::id().to_string()
    {
        return None;
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Whether the watchdog is pinged now: only when the scheduling loop has
/// turned since the last look.
#[derive(Debug)]
pub struct Progress {
    turns: u64,
}

impl Progress {
    pub fn new(turns: u64) -> Progress {
        Progress { turns }
    }

    /// True when `turns` moved since the last call (or since `new`).
    pub fn made(&mut self, turns: u64) -> bool {
        let moved = turns != self.turns;
        self.turns = turns;
        moved
    }
}

/// The STATUS line: the pace since the last one, the polls running and
/// the devices past their period.
pub fn status_line(devices_per_second: f64, in_flight: usize, overdue: u64) -> String {
    format!(
        "STATUS={devices_per_second:.1} devices/s, {in_flight} polls in flight, {overdue} overdue"
    )
}

/// Tells systemd about the daemon until `stop`: READY, then STATUS and
/// WATCHDOG pings, then STOPPING.
pub async fn run(
    notifier: Arc<Notifier>,
    engine: Arc<Engine>,
    stats: Arc<SchedulerStats>,
    stop: CancellationToken,
) {
    tokio::select! {
        _ = stop.cancelled() => {
            notifier.send("STOPPING=1");
            return;
        }
        _ = engine.heartbeat.wait_ready() => {}
    }
    let polled = || stats.up.load(Ordering::Relaxed) + stats.down.load(Ordering::Relaxed);
    let status = |rate: f64| {
        status_line(
            rate,
            engine.polls_in_flight(),
            stats.overdue.load(Ordering::Relaxed),
        )
    };
    notifier.send(&format!("READY=1\n{}", status(0.0)));
    tracing::info!("ready: systemd told");
    let watchdog = watchdog_interval();
    // Half the watchdog's time, as sd_watchdog_enabled(3) advises.
    let every = watchdog.map_or(STATUS_EVERY, |w| (w / 2).min(STATUS_EVERY));
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut progress = Progress::new(engine.heartbeat.turns());
    let (mut since, mut polled_before) = (Instant::now(), polled());
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let mut message = String::new();
        // A loop that stopped turning is not pinged for: systemd restarts
        // the process once WatchdogSec passes.
        if progress.made(engine.heartbeat.turns()) && watchdog.is_some() {
            message.push_str("WATCHDOG=1\n");
        }
        let elapsed = since.elapsed().as_secs_f64();
        let done = polled();
        let rate = if elapsed > 0.0 {
            (done - polled_before) as f64 / elapsed
        } else {
            0.0
        };
        (since, polled_before) = (Instant::now(), done);
        message.push_str(&status(rate));
        notifier.send(&message);
    }
    notifier.send("STOPPING=1\nSTATUS=stopping: polls in flight finish, then the writers flush");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_is_pinged_only_after_the_loop_turned() {
        let mut p = Progress::new(5);
        assert!(!p.made(5), "pinged for a loop that did not turn");
        assert!(p.made(6));
        assert!(!p.made(6), "pinged twice for one turn");
        assert!(p.made(9));
    }

    #[test]
    fn the_status_line_says_pace_polls_and_overdue() {
        assert_eq!(
            status_line(12.345, 7, 2),
            "STATUS=12.3 devices/s, 7 polls in flight, 2 overdue"
        );
    }
}
