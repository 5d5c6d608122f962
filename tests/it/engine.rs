//! The shared-socket engine: thousands of requests in flight on a few
//! sockets, a per-agent limit, and datagrams that match no request dropped
//! and counted.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ironpoll::sim::profile::Profile;
use ironpoll::sim::{FleetConfig, FleetLayout, Member, SimConfig, Simulator};
use ironpoll::snmp::ber::Writer;
use ironpoll::snmp::pdu::{self, Message, PduHeader, PduType, Version};
use ironpoll::snmp::{
    ClientOptions, Credentials, Error, SessionOptions, SnmpClient, Value, VarBind, oid,
};

use crate::support::*;
use crate::within;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_are_in_flight_at_once_on_a_few_sockets() {
    within(120, async {
        // 5,000 devices that each take 600 ms to answer: two GETs per device
        // (the per-agent limit) keep 10,000 requests outstanding together.
        let sim = address_fleet(Profile::Linux, 5000, "127.81.0.1", &["latency=600ms"]).await;
        let client = client();
        assert!(
            client.local_addrs().len() <= 4,
            "a few sockets: {:?}",
            client.local_addrs()
        );
        let peak = Arc::new(AtomicUsize::new(0));
        let watcher = {
            let (client, peak) = (client.clone(), peak.clone());
            tokio::spawn(async move {
                loop {
                    peak.fetch_max(client.pending_requests(), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let opts = SessionOptions {
            timeout: Duration::from_secs(10),
            retries: 0,
            ..SessionOptions::default()
        };
        let mut tasks = tokio::task::JoinSet::new();
        for d in &sim.fleet {
            let s = session(&client, d.addr, Credentials::v2c("public"), opts.clone());
            for column in [5u32, 6] {
                let s = s.clone();
                let name = d.name.clone();
                tasks.spawn(async move {
                    let vb = s.get(&[oid("1.3.6.1.2.1.1").join(&[column, 0])]).await?;
                    Ok::<_, Error>((name, column, vb))
                });
            }
        }
        let mut answered = 0;
        while let Some(done) = tasks.join_next().await {
            let (name, column, vb) = done.unwrap().unwrap();
            if column == 5 {
                assert_eq!(vb[0].value, Value::OctetString(name.into_bytes()));
            }
            answered += 1;
        }
        watcher.abort();
        assert_eq!(answered, 10_000);
        let stats = client.stats();
        assert_eq!(
            (
                stats.sent,
                stats.received,
                stats.retransmitted,
                stats.timed_out
            ),
            (10_000, 10_000, 0, 0)
        );
        assert!(
            peak.load(Ordering::Relaxed) >= 9_000,
            "peak in flight {}",
            peak.load(Ordering::Relaxed)
        );
        assert_eq!(client.pending_requests(), 0);
    })
    .await;
}

/// A responder that holds requests until told to answer, counting how many
/// are outstanding at once.
fn holding_agent(hold: Duration) -> (SocketAddr, Arc<AtomicUsize>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let peak = Arc::new(AtomicUsize::new(0));
    let peak2 = peak.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        sock.set_read_timeout(Some(hold)).unwrap();
        let mut held: Vec<(SocketAddr, i32)> = Vec::new();
        loop {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    if let Ok(Message::Community { pdu, .. }) = pdu::decode_message(&buf[..n]) {
                        held.push((from, pdu.header.request_id));
                        peak2.fetch_max(held.len(), Ordering::Relaxed);
                    }
                }
                // Quiet for `hold`: answer everything held.
                Err(_) => {
                    for (to, id) in held.drain(..) {
                        let mut w = Writer::default();
                        let header = PduHeader {
                            pdu_type: PduType::Response,
                            request_id: id,
                            error_status: 0,
                            error_index: 0,
                        };
                        pdu::encode_community_message(
                            &mut w,
                            Version::V2c,
                            b"public",
                            &header,
                            |w| {
                                VarBind::new(
                                    oid("1.3.6.1.2.1.1.5.0"),
                                    Value::OctetString(b"held".to_vec()),
                                )
                                .encode(w)
                            },
                        );
                        let _ = sock.send_to(w.as_slice(), to);
                    }
                }
            }
        }
    });
    (addr, peak)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_never_has_more_requests_outstanding_than_its_limit() {
    within(60, async {
        let (addr, peak) = holding_agent(Duration::from_millis(100));
        for limit in [1usize, 2, 4] {
            peak.store(0, Ordering::Relaxed);
            let client = SnmpClient::new(ClientOptions {
                max_in_flight_per_agent: limit,
                ..ClientOptions::default()
            })
            .unwrap();
            let opts = SessionOptions {
                timeout: Duration::from_secs(5),
                retries: 0,
                ..SessionOptions::default()
            };
            // Two sessions on one agent share its limit.
            let a = session(&client, addr, Credentials::v2c("public"), opts.clone());
            let b = session(&client, addr, Credentials::v2c("public"), opts);
            let gets = (0..12).map(|i| {
                let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                async move { s.get(&[oid("1.3.6.1.2.1.1.5.0")]).await }
            });
            for r in futures_util::future::join_all(gets).await {
                r.unwrap();
            }
            assert_eq!(peak.load(Ordering::Relaxed), limit, "limit {limit}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_from_another_address_are_dropped_and_counted() {
    within(30, async {
        // An agent that answers from a second socket (another port).
        let listen = UdpSocket::bind("127.0.0.1:0").unwrap();
        let other = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = listen.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = listen.recv_from(&mut buf) {
                if let Ok(Message::Community { pdu, .. }) = pdu::decode_message(&buf[..n]) {
                    let mut w = Writer::default();
                    let header = PduHeader {
                        pdu_type: PduType::Response,
                        ..pdu.header
                    };
                    pdu::encode_community_message(&mut w, Version::V2c, b"public", &header, |w| {
                        for vb in pdu.varbinds.iter().rev() {
                            vb.encode(w);
                        }
                    });
                    let _ = other.send_to(w.as_slice(), from);
                }
            }
        });
        let client = client();
        let s = session(
            &client,
            addr,
            Credentials::v2c("public"),
            SessionOptions {
                timeout: Duration::from_millis(100),
                retries: 1,
                ..SessionOptions::default()
            },
        );
        assert!(matches!(
            s.get(&[oid("1.3.6.1.2.1.1.5.0")]).await,
            Err(Error::Timeout { .. })
        ));
        assert_eq!(client.stats().dropped_wrong_source, 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_garbage_datagrams_are_counted_and_harm_no_request() {
    within(30, async {
        let sim = Simulator::start(SimConfig {
            fleet: Some(FleetConfig {
                size: 1,
                mix: vec![(Member::Profile(Profile::Linux), 1)],
                layout: FleetLayout::Addresses {
                    first: "127.82.0.1".parse().unwrap(),
                    port: 0,
                },
                community: "public".into(),
            }),
            faults: vec!["latency=100ms".parse().unwrap()],
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let client = client();
        let s = session(
            &client,
            sim.fleet[0].addr,
            Credentials::v2c("public"),
            SessionOptions {
                timeout: Duration::from_secs(2),
                retries: 0,
                ..SessionOptions::default()
            },
        );
        let pending = tokio::spawn(async move { s.get(&[oid("1.3.6.1.2.1.1.5.0")]).await });
        // While it waits, throw garbage and forged responses at every socket.
        let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
        for to in client.local_addrs().into_iter().filter(|a| a.is_ipv4()) {
            let to = SocketAddr::from(([127, 0, 0, 1], to.port()));
            attacker.send_to(b"\x30\x82\xff\xff garbage", to).unwrap();
            attacker.send_to(&[], to).unwrap();
            for id in 1..=50 {
                let mut w = Writer::default();
                pdu::encode_community_message(
                    &mut w,
                    Version::V2c,
                    b"public",
                    &PduHeader::request(PduType::Response, id),
                    |_| {},
                );
                attacker.send_to(w.as_slice(), to).unwrap();
            }
        }
        let got = pending.await.unwrap().unwrap();
        assert_eq!(
            got[0].value,
            Value::OctetString(sim.fleet[0].name.clone().into_bytes())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stats = client.stats();
        assert!(stats.dropped_unparsable >= 2, "{stats:?}");
        // Forged ids either match nothing or the right id from the wrong address.
        assert_eq!(
            stats.dropped_unknown_id + stats.dropped_wrong_source,
            50 * client.local_addrs().iter().filter(|a| a.is_ipv4()).count() as u64
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_request_leaves_nothing_behind() {
    within(30, async {
        let sim = Simulator::start(SimConfig {
            fleet: Some(FleetConfig {
                size: 50,
                mix: vec![(Member::Profile(Profile::Linux), 1)],
                layout: FleetLayout::Addresses {
                    first: "127.83.0.1".parse().unwrap(),
                    port: 0,
                },
                community: "public".into(),
            }),
            faults: vec!["silence".parse().unwrap()],
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let client = client();
        let mut walks = Vec::new();
        for d in &sim.fleet {
            let s = session(
                &client,
                d.addr,
                Credentials::v2c("public"),
                SessionOptions::default(),
            );
            walks.push(tokio::spawn(async move {
                s.walk(&oid("1.3.6.1.2.1.2.2")).await
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(client.pending_requests(), 50);
        for w in &walks {
            w.abort();
        }
        for w in walks {
            let _ = w.await;
        }
        assert_eq!(client.pending_requests(), 0);
    })
    .await;
}
