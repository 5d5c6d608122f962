//! ICMP echo (ping) on surge-ping: one socket per address family for the
//! whole process, replies matched by (host, identifier, sequence).
//!
//! The socket is a raw one when the process may open it (root or
//! CAP_NET_RAW), else an unprivileged ICMP datagram socket where
//! `net.ipv4.ping_group_range` allows it. Which one was obtained is logged
//! once; when neither is permitted the error says what to change.

pub mod sweep;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use surge_ping::{Client, Config, ICMP, IcmpPacket, PingIdentifier, PingSequence, SurgeError};
use tokio::time::Instant;

/// Receive buffer asked for each socket: a burst of replies from thousands
/// of hosts must not overflow the default 208 KiB.
const RECEIVE_BUFFER: usize = 8 << 20;

/// fping's default echo payload size.
const PAYLOAD: [u8; 56] = [0x5a; 56];

/// How to ping one host, in fping's terms (`-c`, `-p`, `-t`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PingOptions {
    pub count: u32,
    pub interval: Duration,
    pub timeout: Duration,
}

impl PingOptions {
    pub fn from_settings(s: &crate::config::PingSettings) -> PingOptions {
        PingOptions {
            count: s.count.max(1),
            interval: Duration::from_millis(u64::from(s.interval_ms.max(1))),
            timeout: Duration::from_millis(u64::from(s.timeout_ms.max(1))),
        }
    }
}

/// The outcome of pinging one host, as fping summarises it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PingResult {
    pub transmitted: u32,
    pub received: u32,
    /// Round-trip times (ms) of the replies, in send order.
    pub rtts: Vec<f64>,
    pub duplicates: u32,
    /// Set when no echo could be sent (name did not resolve, no route).
    pub error: Option<String>,
}

impl PingResult {
    /// fping's `%loss`: whole percent, rounded down.
    pub fn loss_percent(&self) -> u32 {
        if self.transmitted == 0 {
            return 100;
        }
        (self.transmitted - self.received) * 100 / self.transmitted
    }

    /// Alive as LibreNMS decides it: at least one reply.
    pub fn alive(&self) -> bool {
        self.error.is_none() && self.received > 0
    }

    pub fn min(&self) -> f64 {
        if self.rtts.is_empty() {
            0.0
        } else {
            self.rtts.iter().copied().fold(f64::INFINITY, f64::min)
        }
    }

    pub fn max(&self) -> f64 {
        self.rtts.iter().copied().fold(0.0, f64::max)
    }

    pub fn avg(&self) -> f64 {
        if self.rtts.is_empty() {
            0.0
        } else {
            self.rtts.iter().sum::<f64>() / self.rtts.len() as f64
        }
    }
}

/// Why ICMP cannot be used at all.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "ICMP echo is not permitted for this process ({0}): run as root, give the binary CAP_NET_RAW \
     (setcap cap_net_raw+ep), or allow unprivileged ping sockets for its group \
     (sysctl net.ipv4.ping_group_range)"
)]
pub struct NotPermitted(pub String);

/// The process's pinger.
#[derive(Clone)]
pub struct Pinger {
    v4: Client,
    v6: Option<Client>,
    kind: &'static str,
    next: std::sync::Arc<AtomicU16>,
}

impl std::fmt::Debug for Pinger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pinger({})", self.kind)
    }
}

impl Pinger {
    /// Opens the sockets; must run inside a tokio runtime.
    pub fn new(tos: u8) -> Result<Pinger, NotPermitted> {
        let v4 = open(ICMP::V4).map_err(|e| NotPermitted(e.to_string()))?;
        let kind = if v4.get_socket().get_type() == socket2::Type::RAW {
            "raw"
        } else {
            "datagram"
        };
        set_buffer_and_tos(&v4, tos);
        if kind == "raw" {
            pass_only_replies_and_errors(&v4);
        }
        // IPv6 may be absent from the host; v4 alone still works.
        let v6 = open(ICMP::V6).ok();
        if let Some(c) = &v6 {
            set_buffer_and_tos(c, 0);
        }
        tracing::info!(socket = kind, ipv6 = v6.is_some(), "ICMP pinger ready");
        Ok(Pinger {
            v4,
            v6,
            kind,
            next: std::sync::Arc::new(AtomicU16::new(rand::random())),
        })
    }

    /// `raw` or `datagram`.
    pub fn socket_kind(&self) -> &'static str {
        self.kind
    }

    /// The socket for `host`'s family, or why there is none.
    fn client_for(&self, host: IpAddr) -> Result<&Client, &'static str> {
        match (host, &self.v6) {
            (IpAddr::V4(_), _) => Ok(&self.v4),
            (IpAddr::V6(_), Some(c)) => Ok(c),
            (IpAddr::V6(_), None) => Err("no IPv6 ICMP socket"),
        }
    }

    /// `n` consecutive values of the process's identifier/sequence counter
    /// (the first one returned). Sequences only need to differ per host,
    /// so wrapping at 65,536 sets no ceiling on hosts or echoes.
    fn take_sequences(&self, n: u16) -> u16 {
        self.next.fetch_add(n, Ordering::Relaxed)
    }

    /// Pings `host` `count` times, one echo every `interval`, each waiting
    /// at most `timeout`: fping's count mode.
    pub async fn ping(&self, host: IpAddr, opts: PingOptions) -> PingResult {
        let client = match self.client_for(host) {
            Ok(c) => c,
            Err(e) => {
                return PingResult {
                    error: Some(e.into()),
                    ..PingResult::default()
                };
            }
        };
        // A fresh identifier per call, and sequence numbers drawn from the
        // same counter: raw sockets match on both, datagram sockets (whose
        // identifier the kernel sets) on the sequence alone.
        let ident = PingIdentifier(self.next.fetch_add(1, Ordering::Relaxed));
        let start = Instant::now();
        let mut sends = Vec::with_capacity(opts.count as usize);
        for i in 0..opts.count {
            let seq = PingSequence(self.next.fetch_add(1, Ordering::Relaxed));
            let client = client.clone();
            let at = start + opts.interval * i;
            sends.push(async move {
                tokio::time::sleep_until(at).await;
                let mut pinger = client.pinger(host, ident).await;
                pinger.timeout(opts.timeout);
                pinger.ping(seq, &PAYLOAD).await
            });
        }
        let mut result = PingResult {
            transmitted: opts.count,
            ..PingResult::default()
        };
        for outcome in futures_util::future::join_all(sends).await {
            match outcome {
                Ok((packet, rtt)) if is_echo_reply(&packet) => {
                    result.received += 1;
                    result.rtts.push(rtt.as_secs_f64() * 1000.0);
                }
                Ok(_) | Err(SurgeError::Timeout { .. }) => {}
                Err(SurgeError::IdenticalRequests { .. }) => result.duplicates += 1,
                Err(e) => {
                    result.error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        result
    }
}

fn is_echo_reply(p: &IcmpPacket) -> bool {
    match p {
        IcmpPacket::V4(p) => p.get_icmp_type().0 == 0,
        IcmpPacket::V6(p) => p.get_icmpv6_type().0 == 129,
    }
}

fn open(kind: ICMP) -> std::io::Result<Client> {
    // Raw first: it works for root without any sysctl; surge-ping falls
    // back to a datagram socket by itself.
    let config = Config::builder()
        .kind(kind)
        .sock_type_hint(socket2::Type::RAW)
        .build();
    Client::new(&config)
}

/// ICMP types a raw IPv4 socket still receives: echo reply, destination
/// unreachable, time exceeded. Without the filter a raw socket receives
/// every ICMP packet of the host, the echo requests it sends on loopback
/// included, and each costs a wake-up and a parse.
const PASSED_ICMP_TYPES: [u32; 3] = [0, 3, 11];

/// Linux's `ICMP_FILTER` option of raw ICMP sockets (`linux/icmp.h`): a
/// bit set for each type to drop.
const ICMP_FILTER: libc::c_int = 1;

fn pass_only_replies_and_errors(client: &Client) {
    let drop_mask: u32 = !PASSED_ICMP_TYPES.iter().fold(0u32, |m, t| m | (1 << t));
    let fd = client.get_socket().get_native_sock();
    // SAFETY: setsockopt reads `size_of::<u32>()` bytes from a live u32, on
    // the client's own socket, which outlives this call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_RAW,
            ICMP_FILTER,
            (&drop_mask as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!("cannot set ICMP_FILTER on the raw socket");
    }
}

fn set_buffer_and_tos(client: &Client, tos: u8) {
    use std::os::fd::BorrowedFd;
    let fd = client.get_socket().get_native_sock();
    // SAFETY: the fd belongs to the client's socket, which outlives this call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let sock = socket2::SockRef::from(&borrowed);
    if sock.set_recv_buffer_size(RECEIVE_BUFFER).is_err() {
        tracing::debug!("cannot raise the ICMP receive buffer");
    }
    if tos != 0 {
        let _ = sock.set_tos_v4(u32::from(tos));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_follow_fping() {
        let r = PingResult {
            transmitted: 3,
            received: 2,
            rtts: vec![0.5, 1.5],
            ..PingResult::default()
        };
        assert_eq!(r.loss_percent(), 33);
        assert!(r.alive());
        assert_eq!((r.min(), r.avg(), r.max()), (0.5, 1.0, 1.5));
        let none = PingResult {
            transmitted: 3,
            ..PingResult::default()
        };
        assert_eq!(none.loss_percent(), 100);
        assert!(!none.alive());
        assert_eq!((none.min(), none.avg(), none.max()), (0.0, 0.0, 0.0));
    }
}
