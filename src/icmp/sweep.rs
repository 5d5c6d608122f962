//! Many hosts pinged the way fping paces them: round-robin over the hosts,
//! at least `interval` between any two echoes (`-i`), at least `period`
//! between two echoes to the same host (`-p`), `count` rounds (`-c`), each
//! echo waiting at most `timeout` (`-t`).
//!
//! One task drives a whole sweep: sends are released in batches as their
//! time comes (the timer's resolution is a millisecond, fping's `-i` can be
//! a tenth of one); replies come from the socket's receive task over one
//! channel; deadlines are walked in send order, since every echo of a sweep
//! waits the same time. No task, timer or channel per echo.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Family, PingResult, Pinger, Reply, send_echo};

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

/// Where one echo stands.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Waiting,
    Answered,
    Lost,
}

/// The sequence numbers of a sweep, routed to it until it ends.
struct Registration {
    families: Vec<Arc<Family>>,
    seqs: Vec<u16>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        for f in &self.families {
            let mut routes = f.routes.lock();
            for s in &self.seqs {
                routes.remove(s);
            }
        }
    }
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
            .map(|h| match self.family(*h) {
                Ok(_) => PingResult::default(),
                Err(e) => PingResult {
                    error: Some(e.into()),
                    ..PingResult::default()
                },
            })
            .collect();
        let count = opts.count.min(u32::from(u16::MAX));
        if n == 0 || count == 0 {
            return results;
        }
        // One sequence number per round, routed to this sweep.
        let first_seq = self
            .next_seq
            .fetch_add(count as u16, std::sync::atomic::Ordering::Relaxed);
        let seqs: Vec<u16> = (0..count)
            .map(|r| first_seq.wrapping_add(r as u16))
            .collect();
        let (tx, mut rx) = mpsc::unbounded_channel::<Reply>();
        let mut families: Vec<Arc<Family>> = vec![self.v4.clone()];
        families.extend(self.v6.clone());
        for f in &families {
            let mut routes = f.routes.lock();
            for s in &seqs {
                routes.insert(*s, tx.clone());
            }
        }
        let _registration = Registration { families, seqs };
        drop(tx);

        let index: HashMap<IpAddr, usize> = hosts
            .iter()
            .enumerate()
            .rev()
            .map(|(i, h)| (*h, i))
            .collect();
        // A round lasts a period, or longer when the hosts do not fit in
        // it at the interval.
        let round_len = opts.period.max(opts.interval * n as u32);
        let total = n * count as usize;
        let start = Instant::now();
        let due = |k: usize| start + round_len * (k / n) as u32 + opts.interval * (k % n) as u32;
        let mut sent_at: Vec<Instant> = Vec::with_capacity(total);
        let mut state: Vec<State> = Vec::with_capacity(total);
        let mut expired = 0usize;
        // Echoes sent and neither answered nor expired.
        let mut waiting = 0usize;
        let mut inbox: Vec<Reply> = Vec::new();
        loop {
            // Send what is due.
            let now = Instant::now();
            while sent_at.len() < total && due(sent_at.len()) <= now {
                let k = sent_at.len();
                let (round, h) = ((k / n) as u32, k % n);
                let host = hosts[h];
                let seq = first_seq.wrapping_add(round as u16);
                let outcome = match self.family(host) {
                    Ok(f) => {
                        results[h].transmitted += 1;
                        let t = Instant::now();
                        send_echo(f, host, self.ident, seq).await.map(|_| t)
                    }
                    Err(e) => Err(std::io::Error::other(e)),
                };
                match outcome {
                    Ok(t) => {
                        sent_at.push(t);
                        state.push(State::Waiting);
                        waiting += 1;
                    }
                    Err(e) => {
                        tracing::debug!(%host, error = %e, "echo not sent");
                        sent_at.push(Instant::now());
                        state.push(State::Lost);
                        on_echo(&Echo {
                            host: h,
                            round,
                            rtt_ms: None,
                        });
                    }
                }
            }
            // Take the replies that have come.
            while let Ok(reply) = rx.try_recv() {
                inbox.push(reply);
            }
            for reply in inbox.drain(..) {
                let Some(&h) = index.get(&reply.from) else {
                    continue;
                };
                let round = u32::from(reply.seq.wrapping_sub(first_seq));
                let k = round as usize * n + h;
                if round >= count || k >= sent_at.len() {
                    continue;
                }
                let rtt = reply.at.saturating_duration_since(sent_at[k]);
                match state[k] {
                    State::Waiting if rtt <= opts.timeout => {
                        state[k] = State::Answered;
                        waiting -= 1;
                        let ms = rtt.as_secs_f64() * 1000.0;
                        let r = &mut results[h];
                        r.received += 1;
                        r.rtts.push(ms);
                        on_echo(&Echo {
                            host: h,
                            round,
                            rtt_ms: Some(ms),
                        });
                    }
                    State::Answered => results[h].duplicates += 1,
                    // Late: counted lost, as fping does.
                    _ => {}
                }
            }
            // Walk the deadlines in send order.
            let now = Instant::now();
            while expired < sent_at.len() && sent_at[expired] + opts.timeout <= now {
                if state[expired] == State::Waiting {
                    state[expired] = State::Lost;
                    waiting -= 1;
                    let (round, h) = ((expired / n) as u32, expired % n);
                    on_echo(&Echo {
                        host: h,
                        round,
                        rtt_ms: None,
                    });
                }
                expired += 1;
            }
            if sent_at.len() == total && waiting == 0 {
                break;
            }
            // Wake for the next send or the next deadline, or a reply.
            let next_send = (sent_at.len() < total).then(|| due(sent_at.len()));
            let next_deadline = (expired < sent_at.len()).then(|| sent_at[expired] + opts.timeout);
            let wake = match (next_send, next_deadline) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => break,
            };
            tokio::select! {
                Some(r) = rx.recv() => inbox.push(r),
                _ = tokio::time::sleep_until(wake) => {}
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
