//! Simulator benchmark: PDUs answered per CPU-second by net-snmp's snmpd and
//! by `ironpoll sim` serving a recording of that same snmpd, for the same
//! requests from the same load generator.
//!
//! Each agent runs as its own process; its CPU is read from /proc/<pid>/stat.
//! Two load generators:
//! * `--load batched` (default): one socket keeps C requests outstanding and
//!   sends and receives them in batches (`sendmmsg`/`recvmmsg`), as a poller
//!   with thousands of requests in flight does;
//! * `--load client`: ironpoll's client with C requests in flight, each task
//!   sending its own request.
//!
//! Run: `cargo bench --bench simulator -- [--requests N] [--concurrency C] [--load batched|client]`

/// The allocator the `ironpoll` binary uses, so the figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ironpoll::snmp::ber::Writer;
use ironpoll::snmp::pdu::{self, Message, PduHeader, PduType, Version};
use ironpoll::snmp::{ClientOptions, Credentials, Oid, SessionOptions, SnmpClient, oid};
use ironpoll::udp::{self, Batcher, Outgoing};

/// One kind of request of the benchmark.
struct Kind {
    label: &'static str,
    oids: Vec<Oid>,
    bulk: bool,
}

fn encode(kind: &Kind, request_id: i32) -> Vec<u8> {
    let header = if kind.bulk {
        PduHeader::get_bulk(request_id, 0, 25)
    } else {
        PduHeader::request(PduType::GetRequest, request_id)
    };
    let mut w = Writer::with_capacity(256);
    pdu::encode_community_message(&mut w, Version::V2c, b"public", &header, |w| {
        pdu::write_request_varbinds(w, &kind.oids)
    });
    w.into_vec()
}

/// Keeps `window` requests outstanding from one socket, in batches, until
/// `total` were answered or given up (no answer within half a second).
/// Returns (answered, varbinds answered, given up).
fn drive_batched(addr: SocketAddr, kind: &Kind, total: usize, window: usize) -> (u64, u64, u64) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_nonblocking(true).unwrap();
    let fd = sock.as_raw_fd();
    let mut batch = Batcher::new(32, 65_536);
    let (mut sent, mut outstanding) = (0usize, 0usize);
    let (mut done, mut varbinds, mut lost) = (0u64, 0u64, 0u64);
    while (done + lost) < total as u64 {
        let room = window.saturating_sub(outstanding).min(total - sent);
        let packets: Vec<Vec<u8>> = (0..room)
            .map(|i| encode(kind, (sent + i + 1) as i32))
            .collect();
        for chunk in packets.chunks(32) {
            let items: Vec<Outgoing<'_>> = chunk
                .iter()
                .map(|p| Outgoing {
                    bytes: p,
                    to: addr,
                    from: None,
                })
                .collect();
            let mut off = 0;
            while off < items.len() {
                match udp::send(fd, &items[off..]) {
                    Ok(n) => off += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::yield_now()
                    }
                    Err(e) => panic!("send: {e}"),
                }
            }
        }
        sent += room;
        outstanding += room;
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 500) } <= 0 {
            lost += outstanding as u64;
            outstanding = 0;
            continue;
        }
        while let Ok(n) = batch.recv(fd) {
            for i in 0..n {
                if let Ok(Message::Community { pdu, .. }) = pdu::decode_message(batch.datagram(i))
                    && pdu.header.pdu_type == PduType::Response
                {
                    done += 1;
                    varbinds += pdu.varbinds.len() as u64;
                    outstanding = outstanding.saturating_sub(1);
                }
            }
            if n < batch.capacity() {
                break;
            }
        }
    }
    (done, varbinds, lost)
}

struct Agent {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// User and system CPU seconds of an agent process.
fn cpu_of(pid: u32) -> (f64, f64) {
    ironpoll::telemetry::cpu_seconds_of(pid).unwrap_or((0.0, 0.0))
}

fn wait_until_answering(rt: &tokio::runtime::Runtime, client: &SnmpClient, addr: SocketAddr) {
    rt.block_on(async {
        let s = client.session_at(
            addr,
            addr.to_string(),
            Credentials::v2c("public"),
            SessionOptions {
                timeout: Duration::from_millis(200),
                retries: 50,
                ..SessionOptions::default()
            },
        );
        s.get(&[oid("1.3.6.1.2.1.1.1.0")])
            .await
            .expect("agent answers");
    });
}

/// ironpoll's client with `concurrency` tasks, each sending its own requests.
fn drive_client(
    rt: &tokio::runtime::Runtime,
    client: &SnmpClient,
    agent: &Agent,
    kind: &Kind,
    requests: usize,
    concurrency: usize,
) -> (u64, u64) {
    let session = client.session_at(
        agent.addr,
        agent.name.into(),
        Credentials::v2c("public"),
        SessionOptions {
            timeout: Duration::from_secs(2),
            retries: 3,
            ..SessionOptions::default()
        },
    );
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let (s, t, bulk, n) = (
                session.clone(),
                kind.oids.clone(),
                kind.bulk,
                requests / concurrency,
            );
            tasks.spawn(async move {
                let (mut ok, mut vbs) = (0u64, 0u64);
                for _ in 0..n {
                    let r = if bulk {
                        s.get_bulk(0, 25, &t).await
                    } else {
                        s.get(&t).await
                    };
                    if let Ok(v) = r {
                        ok += 1;
                        vbs += v.len() as u64;
                    }
                }
                (ok, vbs)
            });
        }
        let (mut ok, mut vbs) = (0, 0);
        while let Some(r) = tasks.join_next().await {
            let (o, v) = r.unwrap();
            ok += o;
            vbs += v;
        }
        (ok, vbs)
    })
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let requests = arg("--requests", 40_000);
    let concurrency = arg("--concurrency", 8);
    let batched = !argv.iter().any(|a| a == "client");
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = rt.block_on(async {
        SnmpClient::new(ClientOptions {
            max_in_flight_per_agent: concurrency,
            ..ClientOptions::default()
        })
        .unwrap()
    });

    // net-snmp's snmpd with its own MIB.
    let port = free_port();
    std::fs::write(
        dir.path().join("snmpd.conf"),
        format!("agentaddress udp:127.0.0.1:{port}\nrocommunity public 127.0.0.1\n"),
    )
    .unwrap();
    let snmpd = Agent {
        name: "net-snmp snmpd 5.9",
        child: Command::new("snmpd")
            .env("SNMP_PERSISTENT_DIR", dir.path().join("persist"))
            .args(["-f", "-C", "-c"])
            .arg(dir.path().join("snmpd.conf"))
            .args(["-Lf", "/dev/null", "-m", "", "-I", "-smux"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("snmpd (apt-get install snmpd)"),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    wait_until_answering(&rt, &client, snmpd.addr);

    // The same agent recorded with ironpoll's recorder, served by ironpoll sim.
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let recording = Command::new(env!("CARGO_BIN_EXE_ironpoll"))
        .args(["walk", "--format", "snmprec", "-v2c", "-c", "public"])
        .arg(snmpd.addr.to_string())
        .arg(".1.3.6.1.2.1")
        .output()
        .unwrap();
    assert!(recording.status.success());
    std::fs::write(data.join("public.snmprec"), &recording.stdout).unwrap();
    let sim_port = free_port();
    let sim = Agent {
        name: "ironpoll sim",
        child: Command::new(env!("CARGO_BIN_EXE_ironpoll"))
            .args(["sim", "--data"])
            .arg(&data)
            .args(["--endpoint", &format!("127.0.0.1:{sim_port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
        addr: SocketAddr::from(([127, 0, 0, 1], sim_port)),
    };
    wait_until_answering(&rt, &client, sim.addr);
    println!(
        "recording of snmpd: {} varbinds; load: {requests} requests per kind, {concurrency} in flight, {} load generator",
        recording.stdout.iter().filter(|b| **b == b'\n').count(),
        if batched {
            "batched"
        } else {
            "ironpoll client"
        }
    );

    println!(
        "\n| request | agent | PDUs | agent CPU s (user + system) | PDUs per agent CPU-second | varbinds per response |"
    );
    println!("|---|---|---|---|---|---|");
    // The request shapes a poller sends: single GETs, GETs of LibreNMS's
    // snmp.max_oid (10) objects, and GETBULK walks of interface tables.
    let system: Vec<Oid> = (1..=7)
        .map(|i| oid("1.3.6.1.2.1.1").join(&[i, 0]))
        .collect();
    let ten: Vec<Oid> = system
        .iter()
        .cloned()
        .chain((1..=3).map(|i| oid("1.3.6.1.2.1.2.2.1.2").child(i)))
        .collect();
    let kinds = [
        Kind {
            label: "GET sysDescr.0 (1 varbind)",
            oids: vec![oid("1.3.6.1.2.1.1.1.0")],
            bulk: false,
        },
        Kind {
            label: "GET of 10 OIDs (LibreNMS snmp.max_oid)",
            oids: ten,
            bulk: false,
        },
        Kind {
            label: "GETBULK ifTable, max-repetitions 25",
            oids: vec![oid("1.3.6.1.2.1.2.2.1")],
            bulk: true,
        },
    ];
    for kind in &kinds {
        let label = kind.label;
        let mut rates = Vec::new();
        for agent in [&snmpd, &sim] {
            let (user0, sys0) = cpu_of(agent.child.id());
            let started = Instant::now();
            let (done, varbinds) = if batched {
                let (done, varbinds, lost) = drive_batched(agent.addr, kind, requests, concurrency);
                if lost > 0 {
                    println!("({} gave no answer to {lost} requests)", agent.name);
                }
                (done, varbinds)
            } else {
                drive_client(&rt, &client, agent, kind, requests, concurrency)
            };
            let _wall = started.elapsed();
            let (user1, sys1) = cpu_of(agent.child.id());
            let (user, sys) = (user1 - user0, sys1 - sys0);
            let cpu = user + sys;
            let rate = done as f64 / cpu;
            rates.push(rate);
            println!(
                "| {label} | {} | {done} | {cpu:.2} ({user:.2} + {sys:.2}) | {rate:.0} | {:.1} |",
                agent.name,
                varbinds as f64 / done.max(1) as f64
            );
        }
        println!(
            "| {label} | ratio ironpoll sim / snmpd | | | {:.1}x | |",
            rates[1] / rates[0]
        );
    }
}
