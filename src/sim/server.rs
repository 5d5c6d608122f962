//! Serving sockets. Datagrams are read and answered in batches; answers with
//! a latency fault wait in a time-ordered queue, so a slow device never
//! holds up a fast one.
//!
//! Two ways to wait, one way to answer:
//! * a thread per socket that blocks in `recvmmsg` (MSG_WAITFORONE) and
//!   needs no event loop at all: two system calls per batch. For the few
//!   sockets of recording endpoints and wildcard fleets;
//! * a tokio task per socket, for fleets with a port per device (thousands
//!   of sockets).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::agent::{Agent, Responder, Rng};
use crate::udp::{self, BATCH, Batcher, Outgoing};

/// Batches read per wake-up before due answers get their turn.
const READS_PER_TURN: usize = 16;
/// How long a serving thread blocks before it checks whether to stop.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// How a socket is served.
#[derive(Debug, Clone, Copy)]
pub(super) struct SocketOptions {
    /// A wildcard socket that learns each datagram's destination.
    pub packet_info: bool,
    /// Several sockets (one per thread) share the port.
    pub reuse_port: bool,
    /// Serve from a thread of its own rather than a task of the runtime.
    pub threaded: bool,
}

/// Stops what [`spawn_socket`] started.
pub(super) enum ServerHandle {
    Task(tokio::task::AbortHandle),
    Thread(Arc<AtomicBool>),
}

impl ServerHandle {
    pub(super) fn stop(&self) {
        match self {
            ServerHandle::Task(t) => t.abort(),
            ServerHandle::Thread(stop) => stop.store(true, Ordering::Relaxed),
        }
    }
}

/// Binds `addr` and serves it.
pub(super) fn spawn_socket(
    addr: SocketAddr,
    options: SocketOptions,
    responder: Responder,
    agent: Arc<Agent>,
    seed: u64,
) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if options.reuse_port {
        socket.set_reuse_port(true)?;
    }
    udp::set_receive_buffer(&socket, 8 << 20);
    socket.set_send_buffer_size(4 << 20)?;
    socket.bind(&addr.into())?;
    if options.packet_info {
        udp::enable_packet_info(socket.as_raw_fd(), addr.is_ipv6())?;
    }
    let served = Served::new(responder, agent, seed);
    if options.threaded {
        socket.set_read_timeout(Some(STOP_CHECK))?;
        let socket: std::net::UdpSocket = socket.into();
        let local = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        std::thread::Builder::new()
            .name(format!("sim {local}"))
            .spawn(move || serve_blocking(socket, served, &thread_stop))?;
        return Ok((local, ServerHandle::Thread(stop)));
    }
    socket.set_nonblocking(true)?;
    let socket: std::net::UdpSocket = socket.into();
    let local = socket.local_addr()?;
    // SAFETY: the UdpSocket owns its descriptor and keeps it open, unchanged,
    // for as long as the AsyncFd that owns the socket lives.
    let fd = unsafe { AsyncFd::register(socket) }.map_err(|e| e.into_parts().1)?;
    let task = tokio::spawn(serve_task(fd, served));
    Ok((local, ServerHandle::Task(task.abort_handle())))
}

struct Pending {
    bytes: Vec<u8>,
    to: SocketAddr,
    from: Option<IpAddr>,
}

/// The state of one served socket, whichever way it waits.
struct Served {
    responder: Responder,
    agent: Arc<Agent>,
    rng: Rng,
    batch: Batcher,
    /// Answers to send now.
    out: Vec<Pending>,
    /// Answers held back by a latency fault, by due time.
    due: BinaryHeap<Reverse<(Instant, u64)>>,
    parked: HashMap<u64, Pending>,
    next_park: u64,
}

impl Served {
    fn new(responder: Responder, agent: Arc<Agent>, seed: u64) -> Served {
        Served {
            responder,
            agent,
            rng: Rng::new(seed),
            batch: Batcher::new(BATCH, udp::MAX_REQUEST),
            out: Vec::with_capacity(BATCH),
            due: BinaryHeap::new(),
            parked: HashMap::new(),
            next_park: 0,
        }
    }

    /// Answers the `n` datagrams just read into `out` or the latency queue.
    fn answer(&mut self, n: usize) {
        for i in 0..n {
            let r = self.batch.received[i];
            if r.truncated {
                self.agent
                    .counters
                    .dropped_malformed
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Some(reply) =
                self.agent
                    .handle(&self.responder, r.to, self.batch.datagram(i), &mut self.rng)
            else {
                continue;
            };
            let pending = Pending {
                bytes: reply.bytes,
                to: r.from,
                from: r.to,
            };
            if reply.delay.is_zero() {
                self.out.push(pending);
            } else {
                self.next_park += 1;
                self.due
                    .push(Reverse((Instant::now() + reply.delay, self.next_park)));
                self.parked.insert(self.next_park, pending);
            }
        }
    }

    /// Moves answers whose delay has passed (or passes within half a
    /// millisecond, the precision latency faults are kept to) to `out`.
    fn release_due(&mut self) {
        let now = Instant::now() + Duration::from_micros(500);
        while let Some(Reverse((t, id))) = self.due.peek().copied() {
            if t > now {
                break;
            }
            self.due.pop();
            if let Some(p) = self.parked.remove(&id) {
                self.out.push(p);
            }
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.due.peek().map(|Reverse((t, _))| *t)
    }

    /// The next batch of `out` to send, from `start`.
    fn batch_from(&self, start: usize) -> Vec<Outgoing<'_>> {
        self.out[start..]
            .iter()
            .take(BATCH)
            .map(|p| Outgoing {
                bytes: &p.bytes,
                to: p.to,
                from: p.from,
            })
            .collect()
    }
}

/// Where to continue in `out` after a send returned `result`.
fn advance(start: usize, result: std::io::Result<usize>) -> usize {
    match result {
        Ok(n) => start + n.max(1),
        Err(e) => {
            // One datagram the kernel will not take (a vanished address):
            // skip it, keep the rest.
            tracing::debug!(error = %e, "simulator send error");
            start + 1
        }
    }
}

fn serve_blocking(socket: std::net::UdpSocket, mut served: Served, stop: &AtomicBool) {
    let fd = socket.as_raw_fd();
    while !stop.load(Ordering::Relaxed) {
        // Wake for the next delayed answer, or to look at the stop flag. With
        // answers held back by a latency fault, wait on ppoll's precise
        // timer: the socket's own timeout (STOP_CHECK, for the flag) counts
        // in scheduler ticks, and would hold a 2 ms answer back for 4 to 8.
        let received = match served.next_due() {
            Some(due) => {
                let wait = due
                    .saturating_duration_since(Instant::now())
                    .min(STOP_CHECK);
                match udp::wait_readable(fd, wait) {
                    Ok(true) => served.batch.recv(fd),
                    Ok(false) => Err(std::io::ErrorKind::WouldBlock.into()),
                    Err(e) => Err(e),
                }
            }
            None => served.batch.recv_wait(fd),
        };
        match received {
            Ok(n) => served.answer(n),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                tracing::debug!(error = %e, "simulator receive error");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        served.release_due();
        let mut start = 0;
        while start < served.out.len() {
            start = advance(start, udp::send_wait(fd, &served.batch_from(start)));
        }
        served.out.clear();
    }
}

async fn serve_task(socket: AsyncFd<std::net::UdpSocket>, mut served: Served) {
    loop {
        let next_due = served.next_due().map(tokio::time::Instant::from_std);
        let mut guard = tokio::select! {
            ready = socket.readable() => match ready {
                Ok(g) => Some(g),
                Err(_) => return,
            },
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(tokio::time::Instant::now)), if next_due.is_some() => None,
        };
        if let Some(guard) = guard.as_mut() {
            for _ in 0..READS_PER_TURN {
                let n = match guard.try_io(|s| served.batch.recv(s.as_raw_fd())) {
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "simulator receive error");
                        break;
                    }
                    // WouldBlock: readiness is cleared; wait for the next datagram.
                    Err(_) => break,
                };
                served.answer(n);
                if served.out.len() >= BATCH {
                    flush_async(&socket, &mut served).await;
                }
                if n < BATCH {
                    // This read drained the queue: skip the read that would
                    // only say so. tokio keeps the readiness if a datagram
                    // arrived meanwhile, so none is missed.
                    guard.clear_ready();
                    break;
                }
            }
        }
        served.release_due();
        flush_async(&socket, &mut served).await;
    }
}

async fn flush_async(socket: &AsyncFd<std::net::UdpSocket>, served: &mut Served) {
    let mut start = 0;
    while start < served.out.len() {
        let items = served.batch_from(start);
        let sent = socket
            .async_io(Interest::WRITABLE, |s| udp::send(s.as_raw_fd(), &items))
            .await;
        start = advance(start, sent);
    }
    served.out.clear();
}
