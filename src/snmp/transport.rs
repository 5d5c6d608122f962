//! The one UDP transport every SNMP request in the process goes through.
//!
//! A handful of unconnected sockets (IPv4 and IPv6) serve all agents. Each
//! request registers its request-id (msgID for v3) with the agent's address in
//! a sharded table; a receive task per socket reads the id from each datagram
//! and hands the bytes to the waiting request. What cannot be matched (unknown
//! or late id, wrong source address, unparsable header) is dropped and counted.
//!
//! A request waits per attempt for `timeout`, resends the same bytes up to
//! `retries` times, and may look at several replies: one that fails its
//! check (bad digest, garbage) is set aside and the wait goes on, so a forged or
//! broken datagram cannot cancel a request that a good reply would answer.
//!
//! Unlike snmp2's session, nothing here holds a socket per agent or breaks after
//! a timeout: a late reply simply finds no waiter.

use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::task::AbortHandle;

use super::pdu::peek_request_id;
use crate::udp::{Batcher, MAX_DATAGRAM, set_receive_buffer};

const SHARDS: usize = 16;
/// Replies a request can hold before further ones for it are dropped.
const REPLY_QUEUE: usize = 4;
/// Replies read per system call.
const RECEIVE_BATCH: usize = 16;
/// How long a send waits before trying a full send buffer again.
const SEND_PAUSE: Duration = Duration::from_millis(1);
/// How long a receive error pauses the reading of a socket, so that one
/// that persists does not spin a core.
pub(super) const RECEIVE_ERROR_PAUSE: Duration = Duration::from_millis(1);

type Socket = AsyncFd<std::net::UdpSocket>;

#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// IPv4 sockets; requests are spread over them by agent address.
    pub sockets_v4: usize,
    /// IPv6 sockets; none are opened when the host has no IPv6.
    pub sockets_v6: usize,
    /// Receive buffer per socket. Bursts of replies from thousands of agents
    /// overflow the kernel default (about 200 KB) and are lost.
    pub receive_buffer: usize,
    pub bind_v4: IpAddr,
    pub bind_v6: IpAddr,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            sockets_v4: 2,
            sockets_v6: 1,
            receive_buffer: 8 << 20,
            bind_v4: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            bind_v6: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

/// Counters of what the transport did (and the TCP sessions beside it);
/// read with [`Transport::stats`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) sent: AtomicU64,
    pub(super) retransmitted: AtomicU64,
    /// Sends that found the socket's send buffer full and paused.
    send_waits: AtomicU64,
    pub(super) received: AtomicU64,
    pub(super) timed_out: AtomicU64,
    pub(super) dropped_unknown_id: AtomicU64,
    dropped_wrong_source: AtomicU64,
    pub(super) dropped_unparsable: AtomicU64,
    dropped_queue_full: AtomicU64,
    pub(super) receive_errors: AtomicU64,
    /// TCP connections opened to agents.
    pub(super) tcp_connects: AtomicU64,
    /// TCP connections that failed: refused, reset, closed by the agent,
    /// or a stream that stopped making sense.
    pub(super) tcp_errors: AtomicU64,
}

/// A snapshot of the transport counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TransportStats {
    pub sent: u64,
    pub retransmitted: u64,
    pub send_waits: u64,
    pub received: u64,
    pub timed_out: u64,
    pub dropped_unknown_id: u64,
    pub dropped_wrong_source: u64,
    pub dropped_unparsable: u64,
    pub dropped_queue_full: u64,
    pub receive_errors: u64,
    pub tcp_connects: u64,
    pub tcp_errors: u64,
}

/// Where replies for one request wait to be taken.
#[derive(Default)]
struct Mailbox {
    replies: Mutex<SmallVec<[Vec<u8>; 1]>>,
    waker: AtomicWaker,
}

impl Mailbox {
    /// Leaves a reply; false when the mailbox is full.
    fn put(&self, reply: &[u8]) -> bool {
        {
            let mut replies = self.replies.lock();
            if replies.len() >= REPLY_QUEUE {
                return false;
            }
            replies.push(reply.to_vec());
        }
        self.waker.wake();
        true
    }

    /// Waits for the next reply.
    async fn take(&self) -> Vec<u8> {
        poll_fn(|cx| {
            self.waker.register(cx.waker());
            let mut replies = self.replies.lock();
            if replies.is_empty() {
                Poll::Pending
            } else {
                Poll::Ready(replies.remove(0))
            }
        })
        .await
    }
}

struct Waiter {
    peer: SocketAddr,
    mailbox: Arc<Mailbox>,
}

struct PendingTable {
    shards: [Mutex<FxHashMap<i32, Waiter>>; SHARDS],
}

impl PendingTable {
    fn shard(&self, id: i32) -> &Mutex<FxHashMap<i32, Waiter>> {
        &self.shards[(id as usize) % SHARDS]
    }

    fn deliver(&self, datagram: &[u8], from: SocketAddr, counters: &Counters) {
        let Some(id) = peek_request_id(datagram) else {
            counters.dropped_unparsable.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let shard = self.shard(id).lock();
        match shard.get(&id) {
            None => {
                counters.dropped_unknown_id.fetch_add(1, Ordering::Relaxed);
            }
            Some(w) if w.peer != from => {
                counters
                    .dropped_wrong_source
                    .fetch_add(1, Ordering::Relaxed);
            }
            Some(w) => {
                if w.mailbox.put(datagram) {
                    counters.received.fetch_add(1, Ordering::Relaxed);
                } else {
                    counters.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Why an exchange produced no accepted reply.
#[derive(Debug)]
pub enum ExchangeError<E> {
    /// No reply passed the check within all attempts.
    Timeout,
    /// Replies came, but none passed the check; this is the last reason.
    Rejected(E),
    /// The request could not be sent.
    Send(io::Error),
    /// No reply, and the last attempt's TCP connection failed this way.
    Connection(io::Error),
    /// No socket for the agent's address family.
    NoSocket(&'static str),
}

/// A request-id reserved in the pending table; dropping it frees the id, so a
/// cancelled request leaves nothing behind.
pub struct Registration {
    id: i32,
    peer: SocketAddr,
    mailbox: Arc<Mailbox>,
    table: Arc<PendingTable>,
}

impl Registration {
    /// The request-id (v1/v2c) or msgID (v3) to put in the request.
    pub fn id(&self) -> i32 {
        self.id
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.table.shard(self.id).lock().remove(&self.id);
    }
}

/// Counts an exchange whose attempts all ran out as timed out, and says
/// why it failed: the last rejected reply if any came, else the last
/// connection failure (TCP), else no reply at all.
pub(super) fn gave_up<E>(
    counters: &Counters,
    rejected: Option<E>,
    failure: Option<io::Error>,
) -> ExchangeError<E> {
    counters.timed_out.fetch_add(1, Ordering::Relaxed);
    match (rejected, failure) {
        (Some(e), _) => ExchangeError::Rejected(e),
        (None, Some(e)) => ExchangeError::Connection(e),
        (None, None) => ExchangeError::Timeout,
    }
}

/// Whether `reply`, read from a link of one session's own (its TCP
/// connection or dedicated socket, where no other request's reply can
/// come), answers request `id`; what does not is counted as dropped: a
/// header that does not parse, or a late reply to an earlier request.
pub(super) fn answers(reply: &[u8], id: i32, counters: &Counters) -> bool {
    let dropped = match peek_request_id(reply) {
        None => &counters.dropped_unparsable,
        Some(other) if other != id => &counters.dropped_unknown_id,
        Some(_) => {
            counters.received.fetch_add(1, Ordering::Relaxed);
            return true;
        }
    };
    dropped.fetch_add(1, Ordering::Relaxed);
    false
}

/// The next request-id (msgID for v3) from `counter`: a positive 31-bit
/// number, since some agents mishandle negative ones, and never 0.
pub(super) fn next_request_id(counter: &AtomicU32) -> i32 {
    loop {
        let id = (counter.fetch_add(1, Ordering::Relaxed) & 0x7fff_ffff) as i32;
        if id != 0 {
            return id;
        }
    }
}

pub struct Transport {
    v4: Vec<Arc<Socket>>,
    v6: Vec<Arc<Socket>>,
    table: Arc<PendingTable>,
    next_id: AtomicU32,
    counters: Arc<Counters>,
    receivers: Vec<AbortHandle>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("sockets_v4", &self.v4.len())
            .field("sockets_v6", &self.v6.len())
            .finish()
    }
}

fn open_socket(addr: SocketAddr, receive_buffer: usize) -> io::Result<Socket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    set_receive_buffer(&socket, receive_buffer);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let socket: std::net::UdpSocket = socket.into();
    // Readable only: epoll is edge-triggered, and a socket registered for
    // writability reports it again after every send, which costs a wasted
    // `epoll_wait` and driver turn per request. Sends go straight to the
    // socket instead (see `send`).
    // SAFETY: the UdpSocket owns its descriptor and keeps it open, unchanged,
    // for as long as the AsyncFd that owns the socket lives.
    unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

impl Transport {
    /// Opens the sockets and starts their receive tasks on the current runtime.
    pub fn bind(options: &TransportOptions) -> io::Result<Transport> {
        let table = Arc::new(PendingTable {
            shards: std::array::from_fn(|_| Mutex::new(FxHashMap::default())),
        });
        let counters = Arc::new(Counters::default());
        let mut v4 = Vec::new();
        for _ in 0..options.sockets_v4.max(1) {
            v4.push(Arc::new(open_socket(
                SocketAddr::new(options.bind_v4, 0),
                options.receive_buffer,
            )?));
        }
        let mut v6 = Vec::new();
        for _ in 0..options.sockets_v6 {
            // A host without IPv6 still polls IPv4 agents; IPv6 targets then
            // fail with a clear error instead of the whole client.
            match open_socket(SocketAddr::new(options.bind_v6, 0), options.receive_buffer) {
                Ok(s) => v6.push(Arc::new(s)),
                Err(e) => {
                    tracing::warn!(error = %e, "IPv6 SNMP socket unavailable; IPv6 agents cannot be polled.");
                    break;
                }
            }
        }
        let mut receivers = Vec::new();
        for socket in v4.iter().chain(v6.iter()) {
            let task = tokio::spawn(receive_loop(
                socket.clone(),
                table.clone(),
                counters.clone(),
            ));
            receivers.push(task.abort_handle());
        }
        Ok(Transport {
            v4,
            v6,
            table,
            next_id: AtomicU32::new(rand::random::<u32>() & 0x7fff_ffff),
            counters,
            receivers,
        })
    }

    /// Reserves a request-id that no pending request uses.
    pub fn register(&self, peer: SocketAddr) -> Registration {
        let mailbox = Arc::new(Mailbox::default());
        loop {
            let id = next_request_id(&self.next_id);
            let mut shard = self.table.shard(id).lock();
            if shard.contains_key(&id) {
                continue;
            }
            shard.insert(
                id,
                Waiter {
                    peer,
                    mailbox: mailbox.clone(),
                },
            );
            return Registration {
                id,
                peer,
                mailbox,
                table: self.table.clone(),
            };
        }
    }

    fn socket_for(&self, peer: SocketAddr) -> Option<&Arc<Socket>> {
        let sockets = if peer.is_ipv4() { &self.v4 } else { &self.v6 };
        if sockets.is_empty() {
            return None;
        }
        // Spread agents over the sockets; one agent always uses the same one.
        let h = match peer.ip() {
            IpAddr::V4(a) => u32::from(a) as usize,
            IpAddr::V6(a) => a.segments()[7] as usize,
        } ^ peer.port() as usize;
        Some(&sockets[h % sockets.len()])
    }

    /// Sends `packet` and waits for a reply that `accept` takes, resending
    /// after each `timeout` up to `retries` times.
    pub async fn exchange<T, E>(
        &self,
        reg: &mut Registration,
        packet: &[u8],
        timeout: Duration,
        retries: u32,
        mut accept: impl FnMut(&[u8]) -> Result<T, E>,
    ) -> Result<T, ExchangeError<E>> {
        let socket =
            self.socket_for(reg.peer)
                .ok_or(ExchangeError::NoSocket(if reg.peer.is_ipv4() {
                    "IPv4"
                } else {
                    "IPv6"
                }))?;
        let mut rejected = None;
        for attempt in 0..=retries {
            if attempt > 0 {
                self.counters.retransmitted.fetch_add(1, Ordering::Relaxed);
            }
            self.send(socket, packet, reg.peer)
                .await
                .map_err(ExchangeError::Send)?;
            let deadline = tokio::time::Instant::now() + timeout;
            while let Ok(reply) = tokio::time::timeout_at(deadline, reg.mailbox.take()).await {
                match accept(&reply) {
                    Ok(v) => return Ok(v),
                    Err(e) => rejected = Some(e),
                }
            }
        }
        Err(gave_up(&self.counters, rejected, None))
    }

    /// Sends one datagram. A full send buffer (the kernel has not yet put
    /// earlier datagrams on the wire) is waited out in short pauses: the
    /// socket is not registered for writability, and such a wait is rare
    /// enough that polling for it costs less than hearing of it after
    /// every send.
    async fn send(&self, socket: &Socket, packet: &[u8], peer: SocketAddr) -> io::Result<()> {
        loop {
            match socket.get_ref().send_to(packet, peer) {
                Ok(_) => {
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.counters.send_waits.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(SEND_PAUSE).await;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The counters, for the TCP sessions to count into.
    pub(super) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Requests waiting for a reply right now.
    pub fn pending(&self) -> usize {
        self.table.shards.iter().map(|s| s.lock().len()).sum()
    }

    pub fn stats(&self) -> TransportStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TransportStats {
            sent: get(&c.sent),
            retransmitted: get(&c.retransmitted),
            send_waits: get(&c.send_waits),
            received: get(&c.received),
            timed_out: get(&c.timed_out),
            dropped_unknown_id: get(&c.dropped_unknown_id),
            dropped_wrong_source: get(&c.dropped_wrong_source),
            dropped_unparsable: get(&c.dropped_unparsable),
            dropped_queue_full: get(&c.dropped_queue_full),
            receive_errors: get(&c.receive_errors),
            tcp_connects: get(&c.tcp_connects),
            tcp_errors: get(&c.tcp_errors),
        }
    }

    /// Local addresses of the sockets, for tests that send forged replies.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.v4
            .iter()
            .chain(self.v6.iter())
            .filter_map(|s| s.get_ref().local_addr().ok())
            .collect()
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        for r in &self.receivers {
            r.abort();
        }
    }
}

async fn receive_loop(socket: Arc<Socket>, table: Arc<PendingTable>, counters: Arc<Counters>) {
    let mut batch = Batcher::new(RECEIVE_BATCH, MAX_DATAGRAM + 1);
    loop {
        let Ok(mut guard) = socket.readable().await else {
            return;
        };
        match guard.try_io(|s| batch.recv(s.as_raw_fd())) {
            Ok(Ok(n)) => {
                for i in 0..n {
                    let r = batch.received[i];
                    if r.truncated {
                        counters.dropped_unparsable.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    table.deliver(batch.datagram(i), r.from, &counters);
                }
                if n < batch.capacity() {
                    // The queue is drained: skip the read that would only say
                    // so. tokio keeps the readiness if a reply arrived meanwhile.
                    guard.clear_ready();
                }
            }
            Ok(Err(e)) => {
                counters.receive_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "SNMP socket receive error.");
                // Errors on an unconnected UDP socket are transient (an ICMP
                // error queued by the kernel); a short pause keeps a
                // persistent one from spinning a core.
                tokio::time::sleep(RECEIVE_ERROR_PAUSE).await;
            }
            // WouldBlock: readiness cleared, wait again.
            Err(_) => {}
        }
    }
}
