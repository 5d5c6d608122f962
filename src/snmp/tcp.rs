//! SNMP over TCP (RFC 3430): one connection per session, opened on the
//! first request and kept for the rest of the poll.
//!
//! A message on the stream is sent as it is, with no framing of its own:
//! its BER length says where it ends. Requests on one connection take turns
//! (a session rarely has more than two outstanding, and an agent answers a
//! connection in order). Each attempt has the session's timeout and the
//! retries resend on the same connection, as over UDP; a reply to an
//! earlier attempt is as good as one to the last, since they carry the same
//! request-id. A connection that fails (refused, reset, closed, garbled
//! stream) is dropped and the next attempt connects again.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::transport::{Counters, ExchangeError, answers, gave_up, next_request_id};

/// The largest message accepted from an agent. UDP caps a reply at 64 KiB;
/// over TCP an agent could announce any length, so a bound keeps a hostile
/// one from making us buffer gigabytes.
pub const MAX_MESSAGE: usize = 1 << 20;

/// Why a stream stopped making sense.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the agent sent a byte 0x{0:02x} where a message (SEQUENCE) should start")]
    NotASequence(u8),
    #[error("the agent announced a message with an unsupported length encoding")]
    BadLength,
    #[error("the agent announced a message of {0} bytes, more than the {MAX_MESSAGE} accepted")]
    TooLong(usize),
}

/// The length of the first whole message in `buf`, if it holds one yet.
pub fn message_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != 0x30 {
        return Err(FrameError::NotASequence(first));
    }
    let Some(&len0) = buf.get(1) else {
        return Ok(None);
    };
    let (header, content) = if len0 < 0x80 {
        (2, usize::from(len0))
    } else {
        // Long form: the low bits count the length octets. The indefinite
        // form (0x80) is not allowed in SNMP, and four octets already
        // exceed any bound we accept.
        let octets = usize::from(len0 & 0x7f);
        if octets == 0 || octets > 4 {
            return Err(FrameError::BadLength);
        }
        let Some(bytes) = buf.get(2..2 + octets) else {
            return Ok(None);
        };
        let content = bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
        (2 + octets, content)
    };
    let total = header + content;
    if total > MAX_MESSAGE {
        return Err(FrameError::TooLong(total));
    }
    Ok((buf.len() >= total).then_some(total))
}

struct Connection {
    stream: TcpStream,
    /// Bytes read but not yet taken as a message.
    pending: Vec<u8>,
}

impl Connection {
    /// The next whole message. Cancel-safe: bytes read before a timeout
    /// stay in `pending` for the next call.
    async fn next_message(&mut self) -> io::Result<Vec<u8>> {
        loop {
            match message_len(&self.pending) {
                Ok(Some(len)) => {
                    let rest = self.pending.split_off(len);
                    return Ok(std::mem::replace(&mut self.pending, rest));
                }
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            self.pending.reserve(4096);
            if self.stream.read_buf(&mut self.pending).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the agent closed the connection",
                ));
            }
        }
    }
}

/// One agent's TCP connection, shared by the sessions on it.
pub struct TcpChannel {
    peer: SocketAddr,
    connection: Mutex<Option<Connection>>,
    next_id: AtomicU32,
}

impl std::fmt::Debug for TcpChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpChannel")
            .field("peer", &self.peer)
            .finish()
    }
}

impl TcpChannel {
    pub fn new(peer: SocketAddr) -> TcpChannel {
        TcpChannel {
            peer,
            connection: Mutex::new(None),
            next_id: AtomicU32::new(rand::random::<u32>()),
        }
    }

    /// A request-id (msgID for v3) for the next request, as over UDP.
    pub fn next_id(&self) -> i32 {
        next_request_id(&self.next_id)
    }

    /// Sends `packet` (carrying `id`) and waits for a reply with that id
    /// that `accept` takes, resending after each `timeout` up to `retries`
    /// times.
    pub(super) async fn exchange<T, E>(
        &self,
        id: i32,
        packet: &[u8],
        timeout: Duration,
        retries: u32,
        counters: &Counters,
        mut accept: impl FnMut(&[u8]) -> Result<T, E>,
    ) -> Result<T, ExchangeError<E>> {
        let mut slot = self.connection.lock().await;
        let mut rejected = None;
        let mut failure = None;
        for attempt in 0..=retries {
            if attempt > 0 {
                counters.retransmitted.fetch_add(1, Ordering::Relaxed);
            }
            let deadline = Instant::now() + timeout;
            if slot.is_none() {
                match tokio::time::timeout_at(deadline, TcpStream::connect(self.peer)).await {
                    Ok(Ok(stream)) => {
                        counters.tcp_connects.fetch_add(1, Ordering::Relaxed);
                        // Requests are small and each waits for its reply.
                        let _ = stream.set_nodelay(true);
                        *slot = Some(Connection {
                            stream,
                            pending: Vec::new(),
                        });
                    }
                    Ok(Err(e)) => {
                        counters.tcp_errors.fetch_add(1, Ordering::Relaxed);
                        failure = Some(e);
                        // A refused connection fails at once; wait out the
                        // attempt, as a lost datagram would, so retries
                        // are spread over the same time as over UDP.
                        tokio::time::sleep_until(deadline).await;
                        continue;
                    }
                    Err(_) => continue,
                }
            }
            let Some(connection) = slot.as_mut() else {
                continue;
            };
            // A write cut short by the deadline leaves half a message on the
            // stream: the connection cannot be used after it.
            match tokio::time::timeout_at(deadline, connection.stream.write_all(packet)).await {
                Ok(Ok(())) => {
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Err(e)) => {
                    counters.tcp_errors.fetch_add(1, Ordering::Relaxed);
                    failure = Some(e);
                    *slot = None;
                    continue;
                }
                Err(_) => {
                    *slot = None;
                    continue;
                }
            }
            loop {
                match tokio::time::timeout_at(deadline, connection.next_message()).await {
                    // The attempt timed out; the connection stays, and a late
                    // reply on it still counts on the next attempt.
                    Err(_) => break,
                    Ok(Err(e)) => {
                        counters.tcp_errors.fetch_add(1, Ordering::Relaxed);
                        failure = Some(e);
                        *slot = None;
                        break;
                    }
                    Ok(Ok(message)) => {
                        if !answers(&message, id, counters) {
                            continue;
                        }
                        match accept(&message) {
                            Ok(v) => return Ok(v),
                            Err(e) => rejected = Some(e),
                        }
                    }
                }
            }
        }
        Err(gave_up(counters, rejected, failure))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_where_their_ber_length_says() {
        assert_eq!(message_len(&[]).unwrap(), None);
        assert_eq!(message_len(&[0x30]).unwrap(), None);
        assert_eq!(message_len(&[0x30, 0x02, 0x01]).unwrap(), None);
        assert_eq!(
            message_len(&[0x30, 0x02, 0x01, 0x02, 0x30]).unwrap(),
            Some(4)
        );
        // Long form, two length octets: 0x0100 content bytes.
        let mut long = vec![0x30, 0x82, 0x01, 0x00];
        assert_eq!(message_len(&long).unwrap(), None);
        long.resize(4 + 256, 0);
        assert_eq!(message_len(&long).unwrap(), Some(260));
        assert_eq!(message_len(&[0x30, 0x82, 0x01]).unwrap(), None);
    }

    #[test]
    fn a_garbled_or_hostile_stream_is_an_error_not_a_wait() {
        assert!(matches!(
            message_len(b"HTTP/1.1 400"),
            Err(FrameError::NotASequence(b'H'))
        ));
        assert!(matches!(
            message_len(&[0x30, 0x80]),
            Err(FrameError::BadLength)
        ));
        assert!(matches!(
            message_len(&[0x30, 0x85, 1, 1, 1, 1, 1]),
            Err(FrameError::BadLength)
        ));
        assert!(matches!(
            message_len(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            Err(FrameError::TooLong(_))
        ));
    }
}
