//! A memcached connection that speaks to the keys python-memcached writes:
//! the text protocol through `async-memcached`, values typed by their
//! flags as python-memcached types them, a deadline on every command, and
//! a fresh connection after any failure (python-memcached reconnects the
//! same way).

use std::time::Duration;

use async_memcached::{AsciiProtocol, Client, Error, Status};
use tokio::sync::Mutex;

/// python-memcached's flags: a Python `int` is stored as its digits with
/// `_FLAG_INTEGER`, a `str` as UTF-8 with `_FLAG_TEXT`. A Python reader
/// needs them to get back the same type (the wrapper compares the node
/// count with `> 0`, which a `str` would break).
const FLAG_INTEGER: u32 = 1 << 1;
const FLAG_TEXT: u32 = 1 << 4;

/// A value as python-memcached reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Text(String),
    Int(i64),
    /// Bytes, a pickle or anything else: present, but not one of ours.
    Other,
}

impl Item {
    fn encode(&self) -> (Vec<u8>, u32) {
        match self {
            Item::Text(s) => (s.as_bytes().to_vec(), FLAG_TEXT),
            Item::Int(n) => (n.to_string().into_bytes(), FLAG_INTEGER),
            Item::Other => (Vec::new(), 0),
        }
    }

    fn decode(data: &[u8], flags: u32) -> Item {
        if flags & FLAG_TEXT != 0 {
            std::str::from_utf8(data).map_or(Item::Other, |s| Item::Text(s.to_string()))
        } else if flags & FLAG_INTEGER != 0 {
            std::str::from_utf8(data)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .map_or(Item::Other, Item::Int)
        } else {
            Item::Other
        }
    }
}

/// The server did not answer: refused, reset, timed out or garbled.
#[derive(Debug, Clone, thiserror::Error)]
#[error("memcached at {addr}: {why}")]
pub struct Unreachable {
    pub addr: String,
    pub why: String,
}

pub struct Memcached {
    addr: String,
    timeout: Duration,
    client: Mutex<Option<Client>>,
}

impl std::fmt::Debug for Memcached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memcached")
            .field("addr", &self.addr)
            .finish()
    }
}

/// A command's result: the server's answer, its refusal (a status such
/// as NOT_STORED), or no answer.
type Answer<T> = Result<Result<T, Status>, Unreachable>;

impl Memcached {
    /// No connection is made until the first command.
    pub fn new(host: &str, port: u16, timeout: Duration) -> Memcached {
        let addr = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Memcached {
            addr,
            timeout,
            client: Mutex::new(None),
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn unreachable(&self, why: impl std::fmt::Display) -> Unreachable {
        Unreachable {
            addr: self.addr.clone(),
            why: why.to_string(),
        }
    }

    /// Runs one command on the connection (made first if needed). A
    /// failure other than the server's own refusal drops the connection.
    async fn run<T>(
        &self,
        command: impl AsyncFnOnce(&mut Client) -> Result<T, Error>,
    ) -> Answer<T> {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_none_or(Client::is_closed) {
            let connect = Client::new(format!("tcp://{}", self.addr));
            match tokio::time::timeout(self.timeout, connect).await {
                Ok(Ok(c)) => *slot = Some(c),
                Ok(Err(e)) => return Err(self.unreachable(e)),
                Err(_) => return Err(self.unreachable("no connection within the timeout")),
            }
        }
        let Some(client) = slot.as_mut() else {
            return Err(self.unreachable("no connection"));
        };
        let outcome = tokio::time::timeout(self.timeout, command(client)).await;
        match outcome {
            Ok(Ok(v)) => Ok(Ok(v)),
            Ok(Err(Error::Protocol(status))) if !matches!(status, Status::Error(_)) => {
                Ok(Err(status))
            }
            Ok(Err(e)) => {
                *slot = None;
                Err(self.unreachable(e))
            }
            Err(_) => {
                *slot = None;
                Err(self.unreachable("no answer within the timeout"))
            }
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Item>, Unreachable> {
        let v = self.run(async |c| c.get(key).await).await?;
        Ok(v.ok()
            .flatten()
            .and_then(|v| v.data.map(|d| Item::decode(&d, v.flags.unwrap_or(0)))))
    }

    /// Stores `item` for `ttl` seconds; false when the server refused.
    pub async fn set(&self, key: &str, item: &Item, ttl: u32) -> Result<bool, Unreachable> {
        let (data, flags) = item.encode();
        let v = self
            .run(async |c| {
                c.set(key, data.as_slice(), Some(i64::from(ttl)), Some(flags))
                    .await
            })
            .await?;
        Ok(v.is_ok())
    }

    /// Stores `item` only if `key` holds nothing: true when this call
    /// stored it.
    pub async fn add(&self, key: &str, item: &Item, ttl: u32) -> Result<bool, Unreachable> {
        let (data, flags) = item.encode();
        let v = self
            .run(async |c| {
                c.add(key, data.as_slice(), Some(i64::from(ttl)), Some(flags))
                    .await
            })
            .await?;
        Ok(v.is_ok())
    }

    /// The counter after adding one; None when the key does not exist.
    pub async fn incr(&self, key: &str) -> Result<Option<u64>, Unreachable> {
        Ok(self.run(async |c| c.increment(key, 1).await).await?.ok())
    }

    /// The counter after taking one (memcached stops at 0); None when the
    /// key does not exist.
    pub async fn decr(&self, key: &str) -> Result<Option<u64>, Unreachable> {
        Ok(self.run(async |c| c.decrement(key, 1).await).await?.ok())
    }

    pub async fn delete(&self, key: &str) -> Result<(), Unreachable> {
        self.run(async |c| c.delete(key).await).await?.ok();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_python_memcacheds_flags_both_ways() {
        assert_eq!(
            Item::Text("poller-1".into()).encode(),
            (b"poller-1".to_vec(), 16)
        );
        assert_eq!(Item::Int(0).encode(), (b"0".to_vec(), 2));
        assert_eq!(Item::decode(b"poller-1", 16), Item::Text("poller-1".into()));
        // memcached's incr keeps the flags and may leave a trailing space.
        assert_eq!(Item::decode(b"3 ", 2), Item::Int(3));
        // Bare bytes and pickles are someone else's.
        assert_eq!(Item::decode(b"poller-1", 0), Item::Other);
        assert_eq!(Item::decode(b"\x80\x04N.", 1), Item::Other);
        assert_eq!(Item::decode(b"\xff", 16), Item::Other);
    }

    #[test]
    fn addresses_bracket_ipv6_hosts() {
        let d = Duration::from_secs(1);
        assert_eq!(
            Memcached::new("10.0.0.1", 11211, d).addr(),
            "10.0.0.1:11211"
        );
        assert_eq!(Memcached::new("::1", 11311, d).addr(), "[::1]:11311");
        assert_eq!(
            Memcached::new("mc.example.net", 1, d).addr(),
            "mc.example.net:1"
        );
    }

    #[tokio::test]
    async fn a_server_that_is_not_there_is_unreachable_not_a_panic() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mc = Memcached::new("127.0.0.1", port, Duration::from_secs(1));
        let e = mc.get("poller.master.0").await.unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("memcached at 127.0.0.1:{port}: ")),
            "{e}"
        );
        assert!(mc.add("k", &Item::Int(1), 10).await.is_err());
    }
}
