//! SNMP over TCP (RFC 3430) against net-snmp's snmpd listening on TCP, and
//! against listeners the tests own: one that cuts connections, one that
//! never answers, none at all, and ones that send what is not SNMP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ironpoll::snmp::{Credentials, Error, SessionOptions, SnmpClient, Target, oid};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;
use crate::within;

fn opts(timeout_ms: u64, retries: u32) -> SessionOptions {
    SessionOptions {
        timeout: Duration::from_millis(timeout_ms),
        retries,
        ..SessionOptions::default()
    }
}

async fn tcp_session(
    client: &SnmpClient,
    addr: SocketAddr,
    options: SessionOptions,
) -> ironpoll::snmp::Session {
    let target: Target = format!("tcp:{addr}").parse().unwrap();
    client
        .session(&target, Credentials::v2c("public"), options)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_keeps_one_connection_for_all_its_requests() {
    within(60, async {
        let client = client();
        let s = tcp_session(&client, snmpd().addr(), opts(1000, 1)).await;
        let walked = s.walk(&oid("1.3.6.1.2.1")).await.unwrap();
        let sys = s.get(&[oid("1.3.6.1.2.1.1.5.0")]).await.unwrap();
        assert!(walked.len() > 500, "{}", walked.len());
        assert!(!sys[0].value.is_exception());
        let stats = client.stats();
        assert_eq!(stats.tcp_connects, 1, "{stats:?}");
        assert!(stats.sent > 50, "{stats:?}");
        assert_eq!(stats.received, stats.sent, "{stats:?}");
        assert_eq!(stats.tcp_errors, 0, "{stats:?}");
        // The same walk over UDP returns the same OIDs.
        let udp = session(
            &client,
            snmpd().addr(),
            Credentials::v2c("public"),
            opts(1000, 1),
        );
        let over_udp = udp.walk(&oid("1.3.6.1.2.1.2.2.1.2")).await.unwrap();
        let over_tcp = s.walk(&oid("1.3.6.1.2.1.2.2.1.2")).await.unwrap();
        assert_eq!(over_tcp, over_udp);
    })
    .await;
}

/// Forwards connections to `upstream`, and closes each one after it has
/// carried `replies` replies.
async fn cutting_proxy(upstream: SocketAddr, replies: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut down, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut up = TcpStream::connect(upstream).await.unwrap();
                let mut buf = vec![0u8; 65536];
                for _ in 0..replies {
                    // Requests are small: one read is one request.
                    let Ok(n) = down.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 || up.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    let Ok(n) = up.read(&mut buf).await else {
                        return;
                    };
                    if down.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
                // Dropping both ends closes the connection.
            });
        }
    });
    (addr, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_agent_closes_is_opened_again() {
    within(60, async {
        let (proxy, accepted) = cutting_proxy(snmpd().addr(), 3).await;
        let client = client();
        let s = tcp_session(&client, proxy, opts(1000, 2)).await;
        let oids = [
            oid("1.3.6.1.2.1.1.1.0"),
            oid("1.3.6.1.2.1.1.5.0"),
            oid("1.3.6.1.2.1.1.6.0"),
        ];
        let mut answers = Vec::new();
        for _ in 0..7 {
            for o in &oids {
                answers.push(s.get(std::slice::from_ref(o)).await.unwrap());
            }
        }
        assert_eq!(answers.len(), 21);
        assert!(answers.iter().all(|a| !a[0].value.is_exception()));
        // Three replies per connection: seven connections carried 21.
        assert_eq!(accepted.load(Ordering::SeqCst), 7);
        let stats = client.stats();
        assert_eq!(stats.tcp_connects, 7, "{stats:?}");
        assert_eq!(stats.tcp_errors, 6, "each cut is seen once: {stats:?}");
        assert_eq!(stats.timed_out, 0, "{stats:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_agent_times_out_after_every_retry_on_one_connection() {
    within(60, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(AtomicUsize::new(0));
        let bytes = received.clone();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let bytes = bytes.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = conn.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        bytes.fetch_add(n, Ordering::SeqCst);
                    }
                });
            }
        });
        let client = client();
        let s = tcp_session(&client, addr, opts(150, 2)).await;
        let started = std::time::Instant::now();
        let e = s.get(&[oid("1.3.6.1.2.1.1.5.0")]).await.unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!("Timeout: No Response from tcp:{addr}")
        );
        // Three attempts of 150 ms each, not one.
        assert!(started.elapsed() >= Duration::from_millis(440));
        let stats = client.stats();
        assert_eq!((stats.sent, stats.retransmitted), (3, 2), "{stats:?}");
        assert_eq!(stats.tcp_connects, 1, "{stats:?}");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert!(received.load(Ordering::SeqCst) > 3 * 30);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_clear_error_after_the_retries() {
    within(60, async {
        // A port nothing listens on.
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let client = client();
        let s = tcp_session(&client, addr, opts(100, 2)).await;
        let started = std::time::Instant::now();
        let e = s.get(&[oid("1.3.6.1.2.1.1.5.0")]).await.unwrap_err();
        assert!(matches!(e, Error::Connection { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("no TCP connection to tcp:{addr}: ")),
            "{text}"
        );
        assert!(text.to_lowercase().contains("refused"), "{text}");
        assert!(started.elapsed() >= Duration::from_millis(290));
        assert_eq!(client.stats().tcp_errors, 3);
        // The command line says the same in one line, exit 1.
        let mut cmd = ironpoll();
        cmd.args(["get", "-v2c", "-c", "public", "-t", "0.1", "-r", "1"])
            .arg(format!("tcp:{addr}"))
            .arg("1.3.6.1.2.1.1.5.0");
        let out = tokio::task::spawn_blocking(move || run(cmd, Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("no TCP connection to tcp:"),
            "{}",
            stderr(&out)
        );
    })
    .await;
}

/// A listener that answers every connection's first request with `reply`.
async fn answering(reply: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                if conn.read(&mut buf).await.unwrap_or(0) > 0 {
                    let _ = conn.write_all(reply).await;
                }
                // Keep the connection open, silent.
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_is_not_snmp_is_refused_without_waiting_or_buffering() {
    within(60, async {
        let client = client();
        for (reply, says) in [
            (&b"HTTP/1.1 400 Bad Request\r\n\r\n"[..], "should start"),
            // A SEQUENCE announcing 4 GiB.
            (&[0x30, 0x84, 0xff, 0xff, 0xff, 0xf0][..], "more than"),
            (&[0x30, 0x80, 0x00, 0x00][..], "length encoding"),
        ] {
            let addr = answering(reply).await;
            let s = tcp_session(&client, addr, opts(200, 0)).await;
            let e = s.get(&[oid("1.3.6.1.2.1.1.5.0")]).await.unwrap_err();
            assert!(matches!(e, Error::Connection { .. }), "{e}");
            assert!(e.to_string().contains(says), "{e}");
        }
        // A reply cut short, then silence: a timeout, the partial message
        // held, not a hang.
        let addr = answering(&[0x30, 0x20, 0x02, 0x01]).await;
        let s = tcp_session(&client, addr, opts(200, 1)).await;
        let e = s.get(&[oid("1.3.6.1.2.1.1.5.0")]).await.unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
    })
    .await;
}
