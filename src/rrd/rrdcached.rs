//! rrdcached's text protocol: addresses, a connection, BATCH and CREATE.
//!
//! The parsing helpers do no IO; [`Connection`] speaks the protocol over TCP
//! or a unix socket, every read and write bounded by a deadline.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::{CreateSpec, RrdDef};

/// rrdcached's default TCP port.
pub const DEFAULT_PORT: u16 = 42217;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Tcp(String),
    Unix(PathBuf),
}

impl Address {
    /// LibreNMS's `rrdcached` setting: `unix:/path`, `/path`, `host:port` or
    /// `host` (port 42217).
    pub fn parse(text: &str) -> Result<Address, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("empty rrdcached address".into());
        }
        if let Some(path) = t.strip_prefix("unix:") {
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        if t.starts_with('/') {
            return Ok(Address::Unix(PathBuf::from(t)));
        }
        // [v6]:port, host:port, bare host (a bare IPv6 literal has several colons).
        if let Some(rest) = t.strip_prefix('[') {
            let (host, port) = rest
                .split_once(']')
                .ok_or_else(|| format!("bad rrdcached address {t:?}"))?;
            let port = match port.strip_prefix(':') {
                Some(p) => p.parse::<u16>().map_err(|_| format!("bad port in {t:?}"))?,
                None => DEFAULT_PORT,
            };
            return Ok(Address::Tcp(format!("[{host}]:{port}")));
        }
        match t.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => {
                let port: u16 = port.parse().map_err(|_| format!("bad port in {t:?}"))?;
                Ok(Address::Tcp(format!("{host}:{port}")))
            }
            Some(_) => Ok(Address::Tcp(format!("[{t}]:{DEFAULT_PORT}"))),
            None => Ok(Address::Tcp(format!("{t}:{DEFAULT_PORT}"))),
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(a) => f.write_str(a),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("rrdcached {addr}: {reason}")]
    Io { addr: String, reason: String },
    #[error("rrdcached {addr}: unexpected reply {line:?}")]
    Protocol { addr: String, line: String },
}

/// A status line: `<n> <message>`; n < 0 is an error, n > 0 counts the
/// lines that follow.
pub fn parse_status(line: &str) -> Option<(i64, &str)> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (n, msg) = line.split_once(' ').unwrap_or((line, ""));
    n.parse().ok().map(|n| (n, msg))
}

/// A BATCH error line: `<command number> <message>` (numbers from 1).
pub fn parse_batch_error(line: &str) -> Option<(usize, &str)> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (n, msg) = line.split_once(' ')?;
    n.parse().ok().map(|n| (n, msg))
}

/// What a failed command's message means for the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The file does not exist yet: create it and send the update again.
    NoSuchFile,
    /// The update is older than the file's last one; it can never succeed.
    TooOld,
    Other,
}

pub fn classify(message: &str) -> Failure {
    if message.contains("No such file") {
        Failure::NoSuchFile
    } else if message.contains("illegal attempt to update")
        || message.contains("minimum one second step")
    {
        Failure::TooOld
    } else {
        Failure::Other
    }
}

/// The CREATE command for a file: `-O` keeps an existing file.
pub fn create_command(path: &str, spec: &CreateSpec, def: &RrdDef, start: i64) -> String {
    let mut cmd = format!("CREATE {path} -s {} -b {start} -O", spec.step);
    for arg in spec.ds_args(def).into_iter().chain(spec.rra_args()) {
        cmd.push(' ');
        cmd.push_str(&arg);
    }
    cmd
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One connection to rrdcached.
pub struct Connection {
    addr: String,
    io: BufReader<Box<dyn Stream>>,
    timeout: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Connection({})", self.addr)
    }
}

impl Connection {
    pub async fn connect(addr: &Address, timeout: Duration) -> Result<Connection, Error> {
        let name = addr.to_string();
        let io_err = |e: io::Error| Error::Io {
            addr: name.clone(),
            reason: e.to_string(),
        };
        let stream: Box<dyn Stream> = match addr {
            Address::Tcp(a) => {
                let s = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(a))
                    .await
                    .map_err(|_| io_err(io::ErrorKind::TimedOut.into()))?
                    .map_err(io_err)?;
                let _ = s.set_nodelay(true);
                Box::new(s)
            }
            Address::Unix(p) => {
                let s = tokio::time::timeout(timeout, tokio::net::UnixStream::connect(p))
                    .await
                    .map_err(|_| io_err(io::ErrorKind::TimedOut.into()))?
                    .map_err(io_err)?;
                Box::new(s)
            }
        };
        Ok(Connection {
            addr: name,
            io: BufReader::new(stream),
            timeout,
        })
    }

    fn err(&self, reason: impl ToString) -> Error {
        Error::Io {
            addr: self.addr.clone(),
            reason: reason.to_string(),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let fut = async {
            self.io.get_mut().write_all(bytes).await?;
            self.io.get_mut().flush().await
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.err(e)),
            Err(_) => Err(self.err("write timed out")),
        }
    }

    async fn read_line(&mut self) -> Result<String, Error> {
        let mut line = String::new();
        match tokio::time::timeout(self.timeout, self.io.read_line(&mut line)).await {
            Ok(Ok(0)) => Err(self.err("connection closed")),
            Ok(Ok(_)) => Ok(line.trim_end_matches(['\r', '\n']).to_string()),
            Ok(Err(e)) => Err(self.err(e)),
            Err(_) => Err(self.err("no reply in time")),
        }
    }

    /// Reads a status line and the lines it announces.
    async fn read_response(&mut self) -> Result<(i64, String, Vec<String>), Error> {
        let line = self.read_line().await?;
        let Some((n, msg)) = parse_status(&line) else {
            return Err(Error::Protocol {
                addr: self.addr.clone(),
                line,
            });
        };
        let msg = msg.to_string();
        let mut extra = Vec::new();
        for _ in 0..n.max(0) {
            extra.push(self.read_line().await?);
        }
        Ok((n, msg, extra))
    }

    /// One command; Ok(message) for a success, Err((status, message)) for a
    /// refusal.
    pub async fn command(
        &mut self,
        line: &str,
    ) -> Result<Result<(String, Vec<String>), String>, Error> {
        self.write(format!("{line}\n").as_bytes()).await?;
        let (n, msg, extra) = self.read_response().await?;
        Ok(if n < 0 { Err(msg) } else { Ok((msg, extra)) })
    }

    /// Sends `commands` in one BATCH; returns the failures as
    /// (index into `commands`, message).
    pub async fn batch(&mut self, commands: &[String]) -> Result<Vec<(usize, String)>, Error> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let mut buf =
            String::with_capacity(16 + commands.iter().map(|c| c.len() + 1).sum::<usize>());
        buf.push_str("BATCH\n");
        for c in commands {
            buf.push_str(c);
            buf.push('\n');
        }
        buf.push_str(".\n");
        self.write(buf.as_bytes()).await?;
        let go = self.read_line().await?;
        match parse_status(&go) {
            Some((0, _)) => {}
            _ => {
                return Err(Error::Protocol {
                    addr: self.addr.clone(),
                    line: go,
                });
            }
        }
        let (n, _msg, lines) = self.read_response().await?;
        if n < 0 {
            return Err(Error::Protocol {
                addr: self.addr.clone(),
                line: format!("{n} {_msg}"),
            });
        }
        let mut failures = Vec::with_capacity(lines.len());
        for line in lines {
            match parse_batch_error(&line) {
                Some((i, msg)) if i >= 1 && i <= commands.len() => {
                    failures.push((i - 1, msg.to_string()));
                }
                _ => {
                    return Err(Error::Protocol {
                        addr: self.addr.clone(),
                        line,
                    });
                }
            }
        }
        Ok(failures)
    }

    /// Creates a file (FORGET first, so a re-created file does not inherit
    /// rrdcached's memory of the old one). A PING after the CREATE marks the
    /// end of its reply: rrdcached can answer a failed CREATE with more
    /// lines than its status announces.
    pub async fn create(&mut self, path: &str, command: &str) -> Result<Result<(), String>, Error> {
        let text = format!("FORGET {path}\n{command}\nPING\n");
        self.write(text.as_bytes()).await?;
        // FORGET's reply (an error when rrdcached did not know the file).
        self.read_response().await?;
        let (n, msg, _) = self.read_response().await?;
        let mut detail = msg;
        loop {
            let line = self.read_line().await?;
            if line.starts_with("0 PONG") {
                break;
            }
            detail.push(' ');
            detail.push_str(line.trim());
        }
        Ok(if n < 0 { Err(detail) } else { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_like_librenms_writes_them() {
        assert_eq!(
            Address::parse("unix:/run/rrdcached.sock").unwrap(),
            Address::Unix("/run/rrdcached.sock".into())
        );
        assert_eq!(
            Address::parse("/run/rrdcached.sock").unwrap(),
            Address::Unix("/run/rrdcached.sock".into())
        );
        assert_eq!(
            Address::parse("rrd.example:42217").unwrap(),
            Address::Tcp("rrd.example:42217".into())
        );
        assert_eq!(
            Address::parse("localhost").unwrap(),
            Address::Tcp("localhost:42217".into())
        );
        assert_eq!(
            Address::parse("[::1]:4000").unwrap(),
            Address::Tcp("[::1]:4000".into())
        );
        assert!(Address::parse("host:notaport").is_err());
    }

    #[test]
    fn replies_parse() {
        assert_eq!(
            parse_status("0 Go ahead.  End with dot '.' on its own line."),
            Some((0, "Go ahead.  End with dot '.' on its own line."))
        );
        assert_eq!(parse_status("2 errors"), Some((2, "errors")));
        assert_eq!(
            parse_status("-1 No such file: /x.rrd"),
            Some((-1, "No such file: /x.rrd"))
        );
        assert_eq!(parse_status("garbage"), None);
        assert_eq!(
            parse_batch_error("3 Unknown command: BOGUS"),
            Some((3, "Unknown command: BOGUS"))
        );
        assert_eq!(
            classify("No such file: sw1/port-id1.rrd"),
            Failure::NoSuchFile
        );
        assert_eq!(
            classify(
                "illegal attempt to update using time 10 when last update time is 20 (minimum one second step)"
            ),
            Failure::TooOld
        );
    }
}
