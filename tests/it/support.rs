//! Shared pieces of the integration tests: finding tools and fixtures,
//! starting real peers (net-snmp's snmpd, snmpsim, ironpoll's simulator), and
//! running the `ironpoll` binary.
//!
//! A peer that cannot be started fails the test with what to run; nothing is
//! skipped.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ironpoll::snmp::ber::Writer;
use ironpoll::snmp::pdu::{self, Message, PduHeader, PduType, Version};
use ironpoll::snmp::{
    ClientOptions, Credentials, Oid, Session, SessionOptions, SnmpClient, VarBind, oid,
};

pub use crate::fixtures::{librenms_fixtures, repo_root};

pub const SETUP_HINT: &str = "run ./misc/test.sh, which installs and starts what the tests need";

/// The `ironpoll` binary built for these tests.
pub fn ironpoll() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ironpoll"));
    c.env("RUST_LOG", "warn");
    c
}

/// Runs a command with a deadline, so a hang fails the test instead of
/// stalling it. Output is collected while the command runs, so a command
/// that prints more than a pipe holds cannot block on it.
pub fn run(mut cmd: Command, deadline: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(out) => out.expect("collect output"),
        Err(_) => {
            // SAFETY: signalling a child we started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let out = rx.recv().expect("collect output").expect("collect output");
            let tail = |b: &[u8]| {
                let s = String::from_utf8_lossy(b);
                s.chars()
                    .rev()
                    .take(2000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<String>()
            };
            panic!(
                "{cmd:?} did not finish within {deadline:?}\nstdout (end): {}\nstderr (end): {}",
                tail(&out.stdout),
                tail(&out.stderr)
            );
        }
    }
}

/// Waits up to `deadline` for `child` to exit; true when it did. A child
/// still running then is killed and reaped, and false returned.
pub fn wait_or_kill(child: &mut Child, deadline: Duration) -> bool {
    let until = std::time::Instant::now() + deadline;
    while std::time::Instant::now() < until {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// [`run`], for a command that must succeed: a failure shows its stderr.
pub fn run_ok(cmd: Command, deadline: Duration) -> Output {
    let shown = format!("{cmd:?}");
    let out = run(cmd, deadline);
    assert!(out.status.success(), "{shown}: {}", stderr(&out));
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A program from the system, or a failure that says how to get it.
pub fn tool(name: &str) -> PathBuf {
    let dirs = std::env::var("PATH").unwrap_or_default();
    for dir in dirs.split(':').chain(["/usr/sbin", "/usr/bin", "/sbin"]) {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is not installed: {SETUP_HINT}");
}

pub fn librenms_recordings() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(librenms_fixtures().join("snmpsim"))
        .expect("read recordings")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "snmprec"))
        .collect();
    files.sort();
    files
}

/// A UDP port free on both 127.0.0.1 and ::1 right now.
pub fn free_udp_port() -> u16 {
    loop {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind probe");
        let port = s.local_addr().unwrap().port();
        if UdpSocket::bind(("::1", port)).is_ok() {
            return port;
        }
    }
}

/// A TCP port of 127.0.0.1 free a moment ago.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a child that is killed when the test process exits, from a thread
/// that lives as long as the process (PR_SET_PDEATHSIG follows the thread
/// that forked).
pub fn spawn_for_process_lifetime(mut cmd: Command) -> u32 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: prctl is async-signal-safe and touches only this child.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(child) => {
                let _ = tx.send(Ok(child.id()));
                let mut child: Child = child;
                let _ = child.wait();
            }
            Err(e) => {
                let _ = tx.send(Err(format!("{cmd:?}: {e}")));
            }
        }
        // Keep the thread alive so the child's death signal does not fire.
        loop {
            std::thread::park();
        }
    });
    match rx.recv().expect("spawner thread") {
        Ok(pid) => pid,
        Err(e) => panic!("cannot start {e}: {SETUP_HINT}"),
    }
}

/// Sends a v1/v2c GET for sysUpTime.0 until the agent answers.
pub fn wait_for_agent(addr: SocketAddr, version: Version, community: &str, deadline: Duration) {
    let sock = UdpSocket::bind(if addr.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    })
    .unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut w = Writer::default();
    pdu::encode_community_message(
        &mut w,
        version,
        community.as_bytes(),
        &PduHeader::request(PduType::GetRequest, 4242),
        |w| pdu::write_request_varbinds(w, &[oid("1.3.6.1.2.1.1.3.0")]),
    );
    let started = Instant::now();
    let mut buf = [0u8; 2048];
    while started.elapsed() < deadline {
        let _ = sock.send_to(w.as_slice(), addr);
        if let Ok((n, _)) = sock.recv_from(&mut buf)
            && matches!(
                pdu::decode_message(&buf[..n]),
                Ok(Message::Community { .. })
            )
        {
            return;
        }
    }
    panic!("agent at {addr} did not answer within {deadline:?}");
}

/// net-snmp's snmpd on loopback (UDP, UDP over IPv6, and TCP) with v1/v2c
/// community `public` and v3 users for every auth/priv family, shared by
/// all tests of the process.
pub struct Snmpd {
    pub port: u16,
}

pub const SNMPD_USERS: &[(&str, &str, Option<&str>)] = &[
    ("authNoPrivUser", "SHA", None),
    ("authPrivUser", "SHA", Some("AES")),
    ("md5des", "MD5", Some("DES")),
    ("sha224aes", "SHA-224", Some("AES")),
    ("sha256aes256", "SHA-256", Some("AES-256")),
    ("sha384aes192", "SHA-384", Some("AES-192")),
    ("sha512aes256", "SHA-512", Some("AES-256")),
    ("shaaes256c", "SHA", Some("AES-256-C")),
    ("md5aes192c", "MD5", Some("AES-192-C")),
];
pub const AUTH_PASS: &str = "authpass123";
pub const PRIV_PASS: &str = "privpass123";

pub fn snmpd() -> &'static Snmpd {
    static SNMPD: OnceLock<Snmpd> = OnceLock::new();
    SNMPD.get_or_init(|| {
        let snmpd = tool("snmpd");
        let dir = tempfile::Builder::new()
            .prefix("ironpoll-snmpd")
            .tempdir()
            .expect("temp dir")
            .keep();
        let port = free_udp_port();
        let mut conf = format!(
            "agentaddress udp:127.0.0.1:{port},udp6:[::1]:{port},tcp:127.0.0.1:{port}\n\
             rocommunity public 127.0.0.1\nrocommunity6 public ::1\n\
             syslocation ironpoll test rack\nsyscontact noc@example.net\n"
        );
        for (user, auth, privacy) in SNMPD_USERS {
            match privacy {
                Some(p) => {
                    conf += &format!("createUser {user} {auth} \"{AUTH_PASS}\" {p} \"{PRIV_PASS}\"\nrouser {user} priv\n")
                }
                None => conf += &format!("createUser {user} {auth} \"{AUTH_PASS}\"\nrouser {user} auth\n"),
            }
        }
        std::fs::write(dir.join("snmpd.conf"), conf).unwrap();
        let mut cmd = Command::new(snmpd);
        cmd.env("SNMP_PERSISTENT_DIR", dir.join("persist"))
            .arg("-f")
            .arg("-C")
            .arg("-c")
            .arg(dir.join("snmpd.conf"))
            .arg("-Lf")
            .arg(dir.join("snmpd.log"))
            .args(["-m", "", "-I", "-smux"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        spawn_for_process_lifetime(cmd);
        wait_for_agent(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Version::V2c,
            "public",
            Duration::from_secs(10),
        );
        Snmpd { port }
    })
}

impl Snmpd {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn agent(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The same agent over TCP (RFC 3430), on the same port number.
    pub fn tcp_agent(&self) -> String {
        format!("tcp:127.0.0.1:{}", self.port)
    }
}

/// snmpsim serving LibreNMS's recordings, shared by all tests of the process.
pub struct Snmpsim {
    pub port: u16,
}

pub fn snmpsim_binary() -> PathBuf {
    let p = std::env::var_os("IRONPOLL_SNMPSIM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".work/snmpsim-venv/bin/snmpsim-command-responder"));
    assert!(
        p.is_file(),
        "snmpsim not found at {}: {SETUP_HINT}",
        p.display()
    );
    p
}

/// Starts snmpsim on `data_dir` with a v3 user `authPrivUser` (SHA, AES).
pub fn start_snmpsim(data_dir: &Path) -> Snmpsim {
    let port = free_udp_port();
    let cache = tempfile::Builder::new()
        .prefix("ironpoll-snmpsim-cache")
        .tempdir()
        .expect("temp dir")
        .keep();
    let mut cmd = Command::new(snmpsim_binary());
    cmd.arg(format!("--data-dir={}", data_dir.display()))
        .arg(format!("--cache-dir={}", cache.display()))
        .arg(format!("--agent-udpv4-endpoint=127.0.0.1:{port}"))
        .args([
            "--v3-user=authPrivUser",
            "--v3-auth-key=authpass123",
            "--v3-auth-proto=SHA",
            "--v3-priv-key=privpass123",
            "--v3-priv-proto=AES",
            "--logging-method=null",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // snmpsim insists on dropping privileges when started as root; staying
    // root keeps it able to read its own venv.
    if unsafe { libc::geteuid() } == 0 {
        cmd.args(["--process-user=root", "--process-group=root"]);
    }
    spawn_for_process_lifetime(cmd);
    // Indexing many recordings takes snmpsim a few seconds.
    let first = std::fs::read_dir(data_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.path()
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .min()
        .expect("a recording");
    wait_for_agent(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Version::V2c,
        &first,
        Duration::from_secs(120),
    );
    Snmpsim { port }
}

pub fn librenms_snmpsim() -> &'static Snmpsim {
    static SNMPSIM: OnceLock<Snmpsim> = OnceLock::new();
    SNMPSIM.get_or_init(|| start_snmpsim(&librenms_fixtures().join("snmpsim")))
}

/// A client on a multi-threaded runtime of the test.
pub fn client() -> SnmpClient {
    SnmpClient::new(ClientOptions::default()).expect("client sockets")
}

pub fn session(
    client: &SnmpClient,
    addr: SocketAddr,
    credentials: Credentials,
    options: SessionOptions,
) -> Session {
    client.session_at(addr, addr.to_string(), credentials, options)
}

/// Fast failing options for tests against agents on loopback.
pub fn quick() -> SessionOptions {
    SessionOptions {
        timeout: Duration::from_millis(400),
        retries: 2,
        max_repetitions: 25,
        ..SessionOptions::default()
    }
}

/// A varbind list as `OID|TAG|VALUE` lines, for readable diffs.
pub fn as_snmprec(vbs: &[VarBind]) -> Vec<String> {
    vbs.iter()
        .filter_map(ironpoll::sim::snmprec::format_line)
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .collect()
}

/// Asserts two varbind lists are equal, showing the first difference.
pub fn assert_same_varbinds(what: &str, got: &[VarBind], want: &[VarBind]) {
    if got != want {
        assert_same_lines(
            what,
            &as_snmprec(got).join("\n"),
            &as_snmprec(want).join("\n"),
        );
        panic!("{what}: the varbinds differ in a way their snmprec lines do not show");
    }
}

/// Asserts two texts are equal line by line, showing the first difference
/// rather than both texts whole.
pub fn assert_same_lines(what: &str, got: &str, want: &str) {
    if got == want {
        return;
    }
    let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    let first = g
        .iter()
        .zip(w.iter())
        .position(|(a, b)| a != b)
        .unwrap_or(g.len().min(w.len()));
    panic!(
        "{what}: {} lines, expected {}; first difference at line {}:\n  got:  {:?}\n  want: {:?}",
        g.len(),
        w.len(),
        first + 1,
        g.get(first),
        w.get(first)
    );
}

pub fn root() -> Oid {
    Oid::from_slice(&[1])
}

/// A fleet of `size` `profile` devices with `faults`, one loopback address
/// each from `first` upward, all on one port the system picks.
pub async fn address_fleet(
    profile: ironpoll::sim::profile::Profile,
    size: usize,
    first: &str,
    faults: &[&str],
) -> ironpoll::sim::Simulator {
    let first = first.parse().unwrap();
    fleet(
        profile,
        size,
        ironpoll::sim::FleetLayout::Addresses { first, port: 0 },
        faults,
    )
    .await
}

/// `size` simulated `profile` devices with `faults`, each on its own port
/// of 127.0.0.1, community `public`.
pub async fn port_fleet(
    profile: ironpoll::sim::profile::Profile,
    size: usize,
    faults: &[&str],
) -> ironpoll::sim::Simulator {
    let layout = ironpoll::sim::FleetLayout::Ports {
        addr: "127.0.0.1".parse().unwrap(),
        first_port: free_udp_port(),
    };
    fleet(profile, size, layout, faults).await
}

async fn fleet(
    profile: ironpoll::sim::profile::Profile,
    size: usize,
    layout: ironpoll::sim::FleetLayout,
    faults: &[&str],
) -> ironpoll::sim::Simulator {
    use ironpoll::sim::{FleetConfig, Member, SimConfig, Simulator};
    Simulator::start(SimConfig {
        fleet: Some(FleetConfig {
            size,
            mix: vec![(Member::Profile(profile), 1)],
            layout,
            community: "public".into(),
        }),
        faults: faults.iter().map(|f| f.parse().unwrap()).collect(),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}
