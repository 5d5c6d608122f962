//! One task per socket: receive a batch, answer each datagram, send the
//! answers as a batch. Answers with a latency fault wait in a time-ordered
//! queue of the same task, so a slow device never holds up a fast one.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::agent::{Agent, Responder, Rng};
use super::udp::{self, BATCH, Batcher, Outgoing};

/// Batches read per wake-up before due answers get their turn.
const READS_PER_TURN: usize = 16;

struct Pending {
    bytes: Vec<u8>,
    to: SocketAddr,
    from: Option<IpAddr>,
}

/// Binds `addr` and serves it. With `packet_info` the socket is a wildcard
/// that learns each datagram's destination; `reuse_port` lets several
/// sockets (one per thread) share a port.
pub(super) fn spawn_socket(
    addr: SocketAddr,
    packet_info: bool,
    reuse_port: bool,
    responder: Responder,
    agent: Arc<Agent>,
    seed: u64,
) -> anyhow::Result<(SocketAddr, AbortHandle)> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    crate::snmp::transport::set_receive_buffer(&socket, 8 << 20);
    socket.set_send_buffer_size(4 << 20)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    if packet_info {
        udp::enable_packet_info(socket.as_raw_fd(), addr.is_ipv6())?;
    }
    let socket = UdpSocket::from_std(socket.into())?;
    let local = socket.local_addr()?;
    let task = tokio::spawn(serve(socket, responder, agent, seed));
    Ok((local, task.abort_handle()))
}

async fn serve(socket: UdpSocket, responder: Responder, agent: Arc<Agent>, seed: u64) {
    let fd = socket.as_raw_fd();
    let mut batch = Batcher::new();
    let mut rng = Rng::new(seed);
    let mut out: Vec<Pending> = Vec::with_capacity(BATCH);
    let mut due: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut parked: HashMap<u64, Pending> = HashMap::new();
    let mut next_park = 0u64;
    loop {
        let next_due = due.peek().map(|Reverse((t, _))| *t);
        tokio::select! {
            ready = socket.readable() => {
                if ready.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {}
        }
        for _ in 0..READS_PER_TURN {
            let n = match socket.try_io(Interest::READABLE, || batch.recv(fd)) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(error = %e, "simulator receive error");
                    break;
                }
            };
            for i in 0..n {
                let r = batch.received[i];
                if r.truncated {
                    agent
                        .counters
                        .dropped_malformed
                        .fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let Some(reply) = agent.handle(&responder, r.to, batch.datagram(i), &mut rng)
                else {
                    continue;
                };
                let pending = Pending {
                    bytes: reply.bytes,
                    to: r.from,
                    from: r.to,
                };
                if reply.delay.is_zero() {
                    out.push(pending);
                    if out.len() == BATCH {
                        flush(&socket, &mut out).await;
                    }
                } else {
                    next_park += 1;
                    due.push(Reverse((Instant::now() + reply.delay, next_park)));
                    parked.insert(next_park, pending);
                }
            }
            if n < BATCH {
                break;
            }
        }
        let now = Instant::now();
        while let Some(Reverse((t, id))) = due.peek().copied() {
            if t > now {
                break;
            }
            due.pop();
            if let Some(p) = parked.remove(&id) {
                out.push(p);
                if out.len() == BATCH {
                    flush(&socket, &mut out).await;
                }
            }
        }
        flush(&socket, &mut out).await;
    }
}

async fn flush(socket: &UdpSocket, out: &mut Vec<Pending>) {
    let fd = socket.as_raw_fd();
    let mut start = 0;
    while start < out.len() {
        let items: Vec<Outgoing<'_>> = out[start..]
            .iter()
            .take(BATCH)
            .map(|p| Outgoing {
                bytes: &p.bytes,
                to: p.to,
                from: p.from,
            })
            .collect();
        match socket
            .async_io(Interest::WRITABLE, || udp::send(fd, &items))
            .await
        {
            Ok(n) => start += n.max(1),
            Err(e) => {
                // One datagram the kernel will not take (a vanished address):
                // skip it, keep the rest.
                tracing::debug!(error = %e, "simulator send error");
                start += 1;
            }
        }
    }
    out.clear();
}
