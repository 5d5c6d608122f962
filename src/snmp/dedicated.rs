//! A UDP socket of one session's own, used with blocking calls: the way
//! `snmpbulkwalk` talks to its one agent.
//!
//! The shared transport (`transport`) keeps thousands of requests in flight
//! on a few sockets, and pays for that on every request: a request-id in a
//! shared table, a receive task that hands the reply over, a timer in the
//! runtime's wheel and a turn of its I/O driver. A process whose only work
//! is one agent, one request at a time (`ironpoll get` and `walk` of one
//! agent), needs none of it. Here the socket is connected to the agent, so
//! the kernel drops datagrams from any other address; a request is one
//! `send`, and its wait one `recv` that the socket's receive timeout ends.
//!
//! Each exchange blocks the calling thread for up to the session's timeout
//! per attempt, so a session on such a socket must be the only work of its
//! runtime ([`SnmpClient::dedicated_session`](super::client::SnmpClient::dedicated_session)).
//! Timeouts, retries, request-ids and what counts as a reply are the
//! shared transport's.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::transport::{
    Counters, ExchangeError, RECEIVE_ERROR_PAUSE, answers, gave_up, next_request_id,
};
use crate::udp::MAX_DATAGRAM;

pub struct DedicatedSocket {
    socket: UdpSocket,
    receiver: Mutex<Receiver>,
    next_id: AtomicU32,
}

/// The receive side, taken by one exchange at a time.
struct Receiver {
    /// One byte more than the largest datagram, so a longer one shows.
    buf: Vec<u8>,
    /// The receive timeout set on the socket: set again only when a wait
    /// needs another, which saves a system call per request.
    timeout: Option<Duration>,
}

impl std::fmt::Debug for DedicatedSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DedicatedSocket")
            .field("peer", &self.socket.peer_addr().ok())
            .finish()
    }
}

impl DedicatedSocket {
    /// A socket on the wildcard address of `peer`'s family, connected to it.
    pub fn connect(peer: SocketAddr) -> io::Result<DedicatedSocket> {
        let local: SocketAddr = if peer.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)?;
        socket.connect(peer)?;
        Ok(DedicatedSocket {
            socket,
            receiver: Mutex::new(Receiver {
                buf: vec![0; MAX_DATAGRAM + 1],
                timeout: None,
            }),
            next_id: AtomicU32::new(rand::random::<u32>()),
        })
    }

    /// A request-id (msgID for v3) for the next request, drawn as the
    /// shared transport draws them.
    pub fn next_id(&self) -> i32 {
        next_request_id(&self.next_id)
    }

    /// Sends `packet` (carrying `id`) and waits for a reply with that id
    /// that `accept` takes, resending after each `timeout` up to `retries`
    /// times. Blocks the calling thread.
    pub(super) fn exchange<T, E>(
        &self,
        id: i32,
        packet: &[u8],
        timeout: Duration,
        retries: u32,
        counters: &Counters,
        mut accept: impl FnMut(&[u8]) -> Result<T, E>,
    ) -> Result<T, ExchangeError<E>> {
        let mut receiver = self.receiver.lock();
        let mut rejected = None;
        for attempt in 0..=retries {
            if attempt > 0 {
                counters.retransmitted.fetch_add(1, Ordering::Relaxed);
            }
            self.send(packet).map_err(ExchangeError::Send)?;
            counters.sent.fetch_add(1, Ordering::Relaxed);
            let deadline = Instant::now() + timeout;
            let mut wait = timeout;
            loop {
                match receiver.recv(&self.socket, wait) {
                    Ok(Some(reply)) => {
                        if answers(reply, id, counters) {
                            match accept(reply) {
                                Ok(v) => return Ok(v),
                                Err(e) => rejected = Some(e),
                            }
                        }
                    }
                    // Longer than any UDP payload: cut by the kernel.
                    Ok(None) => {
                        counters.dropped_unparsable.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        break;
                    }
                    // A signal, or the ICMP error of an earlier datagram
                    // (nothing listened then): a reply may still come.
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::Interrupted | io::ErrorKind::ConnectionRefused
                        ) => {}
                    Err(e) => {
                        counters.receive_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(error = %e, "SNMP socket receive error.");
                        std::thread::sleep(RECEIVE_ERROR_PAUSE);
                    }
                }
                // Wait out what is left of this attempt.
                match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => wait = left,
                    _ => break,
                }
            }
        }
        Err(gave_up(counters, rejected, None))
    }

    fn send(&self, packet: &[u8]) -> io::Result<()> {
        loop {
            match self.socket.send(packet) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The ICMP error of an earlier datagram, reported on this
                // call: the agent may be listening by now.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Receiver {
    /// The next datagram, waiting up to `wait`; `None` for one cut short.
    fn recv(&mut self, socket: &UdpSocket, wait: Duration) -> io::Result<Option<&[u8]>> {
        // The socket takes no zero timeout (it would mean "wait forever");
        // a session timeout of 0 gives up at once, as on the shared sockets.
        if wait.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        if self.timeout != Some(wait) {
            socket.set_read_timeout(Some(wait))?;
            self.timeout = Some(wait);
        }
        let len = socket.recv(&mut self.buf)?;
        Ok((len <= MAX_DATAGRAM).then(|| &self.buf[..len]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::ber::Writer;
    use crate::snmp::pdu::{
        PduHeader, PduType, Version, encode_community_message, peek_request_id,
    };

    /// A GetResponse with `id`, as an agent would send it.
    fn response(id: i32) -> Vec<u8> {
        let header = PduHeader::request(PduType::Response, id);
        let mut w = Writer::with_capacity(64);
        encode_community_message(&mut w, Version::V2c, b"public", &header, |_| {});
        w.into_vec()
    }

    /// An agent socket on loopback and a session socket connected to it.
    fn pair() -> (UdpSocket, DedicatedSocket) {
        let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let session = DedicatedSocket::connect(agent.local_addr().unwrap()).unwrap();
        (agent, session)
    }

    #[test]
    fn garbage_and_late_replies_are_counted_and_the_wait_goes_on() {
        let (agent, session) = pair();
        let id = session.next_id();
        let served = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let (_, from) = agent.recv_from(&mut buf).unwrap();
            agent.send_to(b"\x30\x03garbage", from).unwrap();
            agent.send_to(&response(id.wrapping_add(7)), from).unwrap();
            agent.send_to(&response(id), from).unwrap();
        });
        let counters = Counters::default();
        let reply = session
            .exchange(id, b"request", Duration::from_secs(5), 0, &counters, |r| {
                Ok::<_, ()>(peek_request_id(r))
            })
            .unwrap();
        served.join().unwrap();
        assert_eq!(reply, Some(id));
        assert_eq!(counters.dropped_unparsable.load(Ordering::Relaxed), 1);
        assert_eq!(counters.dropped_unknown_id.load(Ordering::Relaxed), 1);
        assert_eq!(counters.received.load(Ordering::Relaxed), 1);
        assert_eq!(counters.sent.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_rejected_reply_does_not_end_the_wait_for_a_good_one() {
        let (agent, session) = pair();
        let id = session.next_id();
        let served = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let (_, from) = agent.recv_from(&mut buf).unwrap();
            // The same id twice: the first fails the check (a forged one,
            // say), the second passes.
            agent.send_to(&response(id), from).unwrap();
            agent.send_to(&response(id), from).unwrap();
        });
        let counters = Counters::default();
        let mut seen = 0;
        let result = session.exchange(id, b"request", Duration::from_secs(5), 0, &counters, |_| {
            seen += 1;
            if seen == 1 {
                Err("bad digest")
            } else {
                Ok(seen)
            }
        });
        served.join().unwrap();
        assert_eq!(result.unwrap(), 2);
        assert_eq!(counters.received.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_reply_from_another_address_never_reaches_the_session() {
        let (agent, session) = pair();
        let id = session.next_id();
        let forger = UdpSocket::bind("127.0.0.1:0").unwrap();
        let forged = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            // The agent hears each attempt and stays silent; a forger who
            // learnt the session's port answers with the right id.
            for _ in 0..2 {
                let (_, from) = agent.recv_from(&mut buf).unwrap();
                forger.send_to(&response(id), from).unwrap();
            }
        });
        let counters = Counters::default();
        let timeout = Duration::from_millis(200);
        let started = Instant::now();
        let result = session.exchange(id, b"request", timeout, 1, &counters, |_| Ok::<_, ()>(()));
        forged.join().unwrap();
        assert!(matches!(result, Err(ExchangeError::Timeout)));
        // Each attempt was waited out in full.
        assert!(started.elapsed() >= timeout * 2);
        assert_eq!(counters.received.load(Ordering::Relaxed), 0);
        assert_eq!(counters.sent.load(Ordering::Relaxed), 2);
        assert_eq!(counters.retransmitted.load(Ordering::Relaxed), 1);
        assert_eq!(counters.timed_out.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_zero_timeout_gives_up_at_once_after_each_send() {
        let (agent, session) = pair();
        let counters = Counters::default();
        let result = session.exchange(
            session.next_id(),
            b"request",
            Duration::ZERO,
            1,
            &counters,
            |_| Ok::<_, ()>(()),
        );
        assert!(matches!(result, Err(ExchangeError::Timeout)), "{result:?}");
        assert_eq!(counters.sent.load(Ordering::Relaxed), 2);
        assert_eq!(counters.receive_errors.load(Ordering::Relaxed), 0);
        // Both attempts went out.
        let mut buf = [0u8; 64];
        for _ in 0..2 {
            assert_eq!(agent.recv(&mut buf).unwrap(), b"request".len());
        }
    }

    #[test]
    fn an_agent_that_is_not_listening_times_out_after_every_retry() {
        // A port that was free a moment ago: the host answers each request
        // with an ICMP port unreachable, which the connected socket reports.
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let session = DedicatedSocket::connect(port).unwrap();
        let counters = Counters::default();
        let timeout = Duration::from_millis(100);
        let started = Instant::now();
        let result = session.exchange(session.next_id(), b"request", timeout, 2, &counters, |_| {
            Ok::<_, ()>(())
        });
        assert!(matches!(result, Err(ExchangeError::Timeout)), "{result:?}");
        assert!(started.elapsed() >= timeout * 3);
        assert_eq!(counters.sent.load(Ordering::Relaxed), 3);
        assert_eq!(counters.receive_errors.load(Ordering::Relaxed), 0);
    }
}
