//! ICMP echo (ping) on surge-ping's sockets and packet codec: one socket
//! per address family for the whole process, a receive task per socket
//! that routes each reply to the sweep that sent its sequence number, and
//! sweeps ([`sweep`]) that pace sends and keep their own deadlines, with
//! no task, timer or channel per echo.
//!
//! The socket is a raw one when the process may open it (root or
//! CAP_NET_RAW), else an unprivileged ICMP datagram socket where
//! `net.ipv4.ping_group_range` allows it. Which one was obtained is logged
//! once; when neither is permitted the error says what to change.
//!
//! Replies are matched by (sequence, source address, and on raw sockets
//! the process's identifier). Sequences are handed out in blocks, one
//! value per round of a sweep, so there is no ceiling on hosts per process.

pub mod sweep;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU16;
use std::time::Duration;

use parking_lot::Mutex;
use surge_ping::{AsyncSocket, Config, ICMP, Icmpv4Packet, Icmpv6Packet};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Receive buffer asked for each socket: a burst of replies from thousands
/// of hosts must not overflow the default 208 KiB.
const RECEIVE_BUFFER: usize = 8 << 20;

/// fping's default echo payload size.
const PAYLOAD: [u8; 56] = [0x5a; 56];

/// An echo reply as the receive task hands it to a sweep.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reply {
    from: IpAddr,
    seq: u16,
    at: Instant,
}

/// Sweeps waiting for replies, by sequence number.
type Routes = Arc<Mutex<HashMap<u16, mpsc::UnboundedSender<Reply>>>>;

/// One address family's socket and its receive task.
struct Family {
    socket: AsyncSocket,
    datagram: bool,
    routes: Routes,
    recv: tokio::task::JoinHandle<()>,
}

impl Drop for Family {
    fn drop(&mut self) {
        self.recv.abort();
    }
}

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
    v4: Arc<Family>,
    v6: Option<Arc<Family>>,
    kind: &'static str,
    /// The identifier of every echo this process sends (raw sockets; the
    /// kernel sets its own on datagram sockets).
    ident: u16,
    next_seq: Arc<AtomicU16>,
}

impl std::fmt::Debug for Pinger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pinger({})", self.kind)
    }
}

impl Pinger {
    /// Opens the sockets; must run inside a tokio runtime.
    pub fn new(tos: u8) -> Result<Pinger, NotPermitted> {
        let ident: u16 = rand::random();
        let v4 = open(ICMP::V4, ident).map_err(|e| NotPermitted(e.to_string()))?;
        let kind = if v4.datagram { "datagram" } else { "raw" };
        set_buffer_and_tos(&v4.socket, tos);
        if !v4.datagram {
            pass_only_replies_and_errors(&v4.socket);
        }
        // IPv6 may be absent from the host; v4 alone still works.
        let v6 = open(ICMP::V6, ident).ok();
        if let Some(f) = &v6 {
            set_buffer_and_tos(&f.socket, 0);
        }
        tracing::info!(socket = kind, ipv6 = v6.is_some(), "ICMP pinger ready");
        Ok(Pinger {
            v4: Arc::new(v4),
            v6: v6.map(Arc::new),
            kind,
            ident,
            next_seq: Arc::new(AtomicU16::new(rand::random())),
        })
    }

    /// `raw` or `datagram`.
    pub fn socket_kind(&self) -> &'static str {
        self.kind
    }

    /// The socket for `host`'s family, or why there is none.
    fn family(&self, host: IpAddr) -> Result<&Arc<Family>, &'static str> {
        match (host, &self.v6) {
            (IpAddr::V4(_), _) => Ok(&self.v4),
            (IpAddr::V6(_), Some(f)) => Ok(f),
            (IpAddr::V6(_), None) => Err("no IPv6 ICMP socket"),
        }
    }

    /// Pings `host` `count` times, one echo every `interval`, each waiting
    /// at most `timeout`: fping's count mode for one host.
    pub async fn ping(&self, host: IpAddr, opts: PingOptions) -> PingResult {
        let sweep = sweep::SweepOptions {
            count: opts.count,
            period: opts.interval,
            interval: Duration::ZERO,
            timeout: opts.timeout,
        };
        self.sweep(&[host], sweep, |_| {})
            .await
            .pop()
            .unwrap_or_default()
    }
}

/// An echo request: type 8 (ICMPv6: 128), code 0, checksum, identifier,
/// sequence, payload. The kernel computes the checksum for ICMPv6 and for
/// datagram sockets (and sets their identifier).
fn echo_request(v6: bool, ident: u16, seq: u16) -> [u8; 8 + PAYLOAD.len()] {
    let mut p = [0u8; 8 + PAYLOAD.len()];
    p[0] = if v6 { 128 } else { 8 };
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..].copy_from_slice(&PAYLOAD);
    if !v6 {
        let sum = internet_checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

/// RFC 1071's ones'-complement sum.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Reads replies and hands each to the sweep waiting for its sequence.
/// Anything else (other processes' echoes, errors, garbage) is dropped.
async fn receive(socket: AsyncSocket, v6: bool, datagram: bool, ident: u16, routes: Routes) {
    let mut buf = [0u8; 2048];
    let kind = if datagram {
        socket2::Type::DGRAM
    } else {
        socket2::Type::RAW
    };
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "ICMP receive");
                continue;
            }
        };
        let at = Instant::now();
        let data = &buf[..n];
        let parsed = match from.ip() {
            IpAddr::V4(src) if !v6 => {
                Icmpv4Packet::decode(data, kind, src, std::net::Ipv4Addr::UNSPECIFIED)
                    .ok()
                    .filter(|p| p.get_icmp_type().0 == 0)
                    .map(|p| (p.get_identifier().0, p.get_sequence().0))
            }
            IpAddr::V6(src) if v6 => Icmpv6Packet::decode(data, src)
                .ok()
                .filter(|p| p.get_icmpv6_type().0 == 129)
                .map(|p| (p.get_identifier().0, p.get_sequence().0)),
            _ => None,
        };
        let Some((id, seq)) = parsed else {
            continue;
        };
        if !datagram && id != ident {
            continue;
        }
        if let Some(tx) = routes.lock().get(&seq) {
            let _ = tx.send(Reply {
                from: from.ip(),
                seq,
                at,
            });
        }
    }
}

/// Sends one echo; an error means it left no trace on the wire.
async fn send_echo(family: &Family, host: IpAddr, ident: u16, seq: u16) -> std::io::Result<()> {
    let mut packet = echo_request(host.is_ipv6(), ident, seq);
    family
        .socket
        .send_to(&mut packet, &SocketAddr::new(host, 0))
        .await
        .map(|_| ())
}

fn open(kind: ICMP, ident: u16) -> std::io::Result<Family> {
    // Raw first: it works for root without any sysctl; surge-ping falls
    // back to a datagram socket by itself.
    let config = Config::builder()
        .kind(kind)
        .sock_type_hint(socket2::Type::RAW)
        .build();
    let socket = AsyncSocket::new(&config)?;
    let datagram = socket.get_type() == socket2::Type::DGRAM;
    let routes: Routes = Arc::default();
    let recv = tokio::spawn(receive(
        socket.clone(),
        kind == ICMP::V6,
        datagram,
        ident,
        routes.clone(),
    ));
    Ok(Family {
        socket,
        datagram,
        routes,
        recv,
    })
}

/// ICMP types a raw IPv4 socket still receives: echo reply, destination
/// unreachable, time exceeded. Without the filter a raw socket receives
/// every ICMP packet of the host, the echo requests it sends on loopback
/// included, and each costs a wake-up and a parse.
const PASSED_ICMP_TYPES: [u32; 3] = [0, 3, 11];

/// Linux's `ICMP_FILTER` option of raw ICMP sockets (`linux/icmp.h`): a
/// bit set for each type to drop.
const ICMP_FILTER: libc::c_int = 1;

fn pass_only_replies_and_errors(socket: &AsyncSocket) {
    let drop_mask: u32 = !PASSED_ICMP_TYPES.iter().fold(0u32, |m, t| m | (1 << t));
    let fd = socket.get_native_sock();
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

fn set_buffer_and_tos(socket: &AsyncSocket, tos: u8) {
    use std::os::fd::BorrowedFd;
    let fd = socket.get_native_sock();
    // SAFETY: the fd belongs to the socket, which outlives this call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let sock = socket2::SockRef::from(&borrowed);
    // Past net.core.rmem_max only with CAP_NET_ADMIN (SO_RCVBUFFORCE); a
    // default rmem_max of 208 KiB holds only a few hundred replies.
    let size = RECEIVE_BUFFER as libc::c_int;
    // SAFETY: setsockopt reads a live c_int on the socket's own fd.
    let forced = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    } == 0;
    if !forced && sock.set_recv_buffer_size(RECEIVE_BUFFER).is_err() {
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
    fn echo_requests_carry_a_valid_checksum() {
        let p = echo_request(false, 0x1234, 7);
        assert_eq!((p[0], p[1]), (8, 0));
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
        // A packet with its checksum in place sums to zero.
        assert_eq!(internet_checksum(&p), 0);
        // RFC 1071's example bytes.
        assert_eq!(
            internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
    }

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
