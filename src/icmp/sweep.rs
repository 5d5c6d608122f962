//! Many hosts pinged the way fping paces them: round-robin over the hosts,
//! at least `interval` between any two echoes (`-i`), at least `period`
//! between two echoes to the same host (`-p`), `count` rounds (`-c`), each
//! echo waiting at most `timeout` (`-t`).
//!
//! One task drives every echo: sends are released in batches as their time
//! comes (the timer's resolution is a millisecond, fping's `-i` can be a
//! tenth of one), replies are matched by the pinger's socket task.

use std::net::IpAddr;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use surge_ping::{PingIdentifier, PingSequence, SurgeError};
use tokio::time::Instant;

use super::{PAYLOAD, PingResult, Pinger, is_echo_reply};

/// fping's pacing options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepOptions {
    pub count: u32,
    pub period: Duration,
    pub interval: Duration,
    pub timeout: Duration,
}

/// One echo's outcome, reported as it happens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Echo {
    /// Index of the host in the sweep's list.
    pub host: usize,
    /// Round, from 0 (fping's `[N]`).
    pub round: u32,
    /// Round-trip time in milliseconds; None when it timed out.
    pub rtt_ms: Option<f64>,
}

impl Pinger {
    /// Pings every host `count` times with fping's pacing. `on_echo` sees
    /// each echo's outcome as it completes; the result holds one summary
    /// per host, in the order given.
    pub async fn sweep(
        &self,
        hosts: &[IpAddr],
        opts: SweepOptions,
        mut on_echo: impl FnMut(&Echo),
    ) -> Vec<PingResult> {
        let n = hosts.len();
        let mut results: Vec<PingResult> = hosts
            .iter()
            .map(|h| match self.client_for(*h) {
                Ok(_) => PingResult::default(),
                Err(e) => PingResult {
                    error: Some(e.into()),
                    ..PingResult::default()
                },
            })
            .collect();
        if n == 0 || opts.count == 0 {
            return results;
        }
        // A round lasts a period, or longer when the hosts do not fit in
        // it at the interval.
        let round_len = opts.period.max(opts.interval * n as u32);
        let ident = PingIdentifier(self.take_sequences(1));
        let first_seq = self.take_sequences(opts.count.min(u32::from(u16::MAX)) as u16);
        let total = n as u64 * u64::from(opts.count);
        let start = Instant::now();
        let due = |k: u64| {
            let (round, host) = ((k / n as u64) as u32, (k % n as u64) as u32);
            start + round_len * round + opts.interval * host
        };
        let mut pending = FuturesUnordered::new();
        let mut next = 0u64;
        while next < total || !pending.is_empty() {
            let now = Instant::now();
            while next < total && due(next) <= now {
                let (round, h) = ((next / n as u64) as u32, (next % n as u64) as usize);
                next += 1;
                let host = hosts[h];
                let Ok(client) = self.client_for(host) else {
                    continue;
                };
                results[h].transmitted += 1;
                let seq = PingSequence(first_seq.wrapping_add(round as u16));
                let client = client.clone();
                let timeout = opts.timeout;
                pending.push(async move {
                    let mut pinger = client.pinger(host, ident).await;
                    pinger.timeout(timeout);
                    (h, round, pinger.ping(seq, &PAYLOAD).await)
                });
            }
            let wake = (next < total).then(|| due(next));
            tokio::select! {
                Some((h, round, outcome)) = pending.next(), if !pending.is_empty() => {
                    let r = &mut results[h];
                    let rtt_ms = match outcome {
                        Ok((packet, rtt)) if is_echo_reply(&packet) => {
                            let ms = rtt.as_secs_f64() * 1000.0;
                            r.received += 1;
                            r.rtts.push(ms);
                            Some(ms)
                        }
                        Ok(_) | Err(SurgeError::Timeout { .. }) => None,
                        Err(SurgeError::IdenticalRequests { .. }) => {
                            r.duplicates += 1;
                            None
                        }
                        Err(e) => {
                            r.error.get_or_insert_with(|| e.to_string());
                            None
                        }
                    };
                    on_echo(&Echo { host: h, round, rtt_ms });
                }
                _ = tokio::time::sleep_until(wake.unwrap_or(now)), if wake.is_some() => {}
            }
        }
        results
    }
}

impl Pinger {
    /// A sweep, then up to `retries` more echoes for each host that has not
    /// answered yet, each waiting 1.5 times longer than the one before
    /// (fping's `-r` and `-B 1.5`). Results add up per host.
    pub async fn sweep_with_retries(
        &self,
        hosts: &[IpAddr],
        opts: SweepOptions,
        retries: u32,
    ) -> Vec<PingResult> {
        let mut results = self.sweep(hosts, opts, |_| {}).await;
        let mut timeout = opts.timeout;
        for _ in 0..retries {
            let waiting: Vec<usize> = (0..hosts.len())
                .filter(|&i| results[i].received == 0 && results[i].error.is_none())
                .collect();
            if waiting.is_empty() {
                break;
            }
            timeout = timeout.mul_f64(1.5);
            let batch: Vec<IpAddr> = waiting.iter().map(|&i| hosts[i]).collect();
            let retry = SweepOptions {
                count: 1,
                period: Duration::ZERO,
                interval: opts.interval,
                timeout,
            };
            for (&i, r) in waiting.iter().zip(self.sweep(&batch, retry, |_| {}).await) {
                let total = &mut results[i];
                total.transmitted += r.transmitted;
                total.received += r.received;
                total.rtts.extend(r.rtts);
                total.duplicates += r.duplicates;
                if total.error.is_none() {
                    total.error = r.error;
                }
            }
        }
        results
    }
}
