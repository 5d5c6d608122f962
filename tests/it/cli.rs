//! The `ironpoll` command line as an operator meets it: net-snmp spellings,
//! one-line errors with a non-zero exit, never a panic or a hang.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use ironpoll::sim::snmprec;
use ironpoll::snmp::Version;

use crate::support::*;

fn ironpoll_run(args: &[&str]) -> Output {
    let mut cmd = ironpoll();
    cmd.args(args);
    run(cmd, Duration::from_secs(60))
}

/// The error contract: exit code `code`, one line on stderr naming the
/// problem, and no panic.
fn assert_one_line_error(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.starts_with("ironpoll: "), "{err:?}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    assert!(!err.contains("panicked"));
}

/// mimalloc's options as the binary runs with them, from its verbose
/// start-up report.
fn allocator_options(env: &[(&str, &str)]) -> String {
    let mut cmd = ironpoll();
    cmd.arg("--version").env("MIMALLOC_VERBOSE", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    stderr(&run(cmd, Duration::from_secs(30)))
}

#[test]
fn the_binary_tunes_its_allocator_and_the_environment_still_wins() {
    let tuned = allocator_options(&[]);
    assert!(tuned.contains("option 'arena_eager_commit': 0"), "{tuned}");
    assert!(tuned.contains("option 'purge_delay': 0"), "{tuned}");
    let chosen = allocator_options(&[("MIMALLOC_PURGE_DELAY", "250")]);
    assert!(chosen.contains("option 'purge_delay': 250"), "{chosen}");
    assert!(
        chosen.contains("option 'arena_eager_commit': 0"),
        "{chosen}"
    );
}

#[test]
fn wrong_options_get_one_line_and_exit_2() {
    assert_one_line_error(
        &ironpoll_run(&["walk", "--bogus", "127.0.0.1"]),
        2,
        "--bogus",
    );
    assert_one_line_error(&ironpoll_run(&["frobnicate"]), 2, "frobnicate");
    assert_one_line_error(
        &ironpoll_run(&["get", "-c", "public", "127.0.0.1"]),
        2,
        "required",
    );
}

#[test]
fn bad_values_get_one_line_and_exit_1() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["get", "-v", "9", "-c", "public", "127.0.0.1", ".1.3.6.1"],
            "invalid version",
        ),
        (
            &["get", "127.0.0.1", ".1.3.6.1"],
            "no community name specified",
        ),
        (
            &["get", "-c", "public", "127.0.0.1", "sysDescr.0"],
            "only numeric OIDs",
        ),
        (
            &["get", "-c", "public", "127.0.0.1", ".1.3.6.1.99999999999"],
            "invalid OID",
        ),
        (
            &["get", "-c", "public", "ssh:127.0.0.1", ".1.3.6.1"],
            "not supported",
        ),
        (
            &["get", "-c", "public", "127.0.0.1:99999", ".1.3.6.1"],
            "bad port",
        ),
        (
            &[
                "get",
                "-v3",
                "-u",
                "u",
                "-l",
                "authPriv",
                "-A",
                "authpass123",
                "127.0.0.1",
                ".1.3",
            ],
            "privacy passphrase",
        ),
        (
            &[
                "get",
                "-v3",
                "-u",
                "u",
                "-l",
                "authNoPriv",
                "-a",
                "SHA-999",
                "-A",
                "authpass123",
                "127.0.0.1",
                ".1.3",
            ],
            "unknown authentication protocol",
        ),
        (
            &["walk", "-c", "public", "-Cz", "127.0.0.1"],
            "unsupported application option",
        ),
        (
            &["walk", "-c", "public", "-t", "0", "127.0.0.1"],
            "invalid timeout",
        ),
        (
            &["get", "-c", "public", "no-such-host.invalid", ".1.3.6.1"],
            "cannot resolve",
        ),
        (&["sim", "--fleet", "2", "--fault", "fly"], "unknown fault"),
        (&["sim"], "nothing to serve"),
    ];
    for (args, needle) in cases {
        assert_one_line_error(&ironpoll_run(args), 1, needle);
    }
}

#[test]
fn an_unreachable_agent_times_out_with_net_snmps_words() {
    let port = free_udp_port();
    let out = ironpoll_run(&[
        "walk",
        "-c",
        "public",
        "-t",
        "0.2",
        "-r",
        "1",
        &format!("127.0.0.1:{port}"),
    ]);
    assert_one_line_error(
        &out,
        1,
        &format!("Timeout: No Response from 127.0.0.1:{port}"),
    );
}

/// `ironpoll sim` as a separate process; killed when dropped.
struct SimProcess(Child);

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sim(args: &[&str], probe: SocketAddr, community: &str) -> SimProcess {
    let child = ironpoll()
        .env("RUST_LOG", "info")
        .arg("sim")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ironpoll sim");
    let sim = SimProcess(child);
    wait_for_agent(probe, Version::V2c, community, Duration::from_secs(20));
    sim
}

#[test]
fn a_malformed_reply_is_one_line_and_exit_1() {
    let port = free_udp_port();
    let _sim = start_sim(
        &[
            "--fleet",
            "2",
            "--fleet-ports",
            &port.to_string(),
            "--fault",
            "switch48-00002:malformed",
        ],
        SocketAddr::from(([127, 0, 0, 1], port)),
        "public",
    );
    let out = ironpoll_run(&[
        "get",
        "-c",
        "public",
        "-t",
        "0.3",
        "-r",
        "1",
        &format!("127.0.0.1:{}", port + 1),
        ".1.3.6.1.2.1.1.5.0",
    ]);
    assert_one_line_error(&out, 1, "malformed object identifier");
}

#[test]
fn walk_targets_records_many_agents_and_reports_the_failures() {
    let fleet_port = free_udp_port();
    let rec_port = free_udp_port();
    let dir = tempfile::tempdir().unwrap();
    let fixtures = librenms_fixtures().join("snmpsim");
    let _sim = start_sim(
        &[
            "--fleet",
            "20",
            "--profile",
            "switch48=3,linux=1",
            "--fleet-address",
            "127.84.0.1",
            "--fleet-port",
            &fleet_port.to_string(),
            "--data",
            fixtures.to_str().unwrap(),
            "--endpoint",
            &format!("127.0.0.1:{rec_port}"),
            "--v3-user",
            "authPrivUser:SHA:authpass123:AES:privpass123",
            "--targets-out",
            dir.path().join("fleet.txt").to_str().unwrap(),
        ],
        SocketAddr::from(([127, 0, 0, 1], rec_port)),
        "linux_icecast",
    );
    // The simulator writes its targets file once every agent is up.
    let fleet_file = dir.path().join("fleet.txt");
    let started = std::time::Instant::now();
    while !fleet_file.exists() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let fleet = std::fs::read_to_string(&fleet_file).unwrap();
    let fleet_lines: Vec<&str> = fleet.lines().filter(|l| l.starts_with("127.84.")).collect();
    assert_eq!(fleet_lines.len(), 20);
    let dead = free_udp_port();
    let targets = format!(
        "# fleet devices, as ironpoll sim wrote them\n{}\n\
         127.0.0.1:{rec_port} arista_eos\n\
         -v3 -l authPriv -u authPrivUser -a SHA -A authpass123 -x AES -X privpass123 127.0.0.1:{rec_port} linux_icecast v3-linux\n\
         127.0.0.1:{dead} public dead-agent\n",
        fleet_lines.join("\n")
    );
    std::fs::write(dir.path().join("targets.txt"), targets).unwrap();
    let out_dir = dir.path().join("out");
    let out = ironpoll_run(&[
        "walk",
        "-t",
        "0.3",
        "-r",
        "1",
        "--targets",
        dir.path().join("targets.txt").to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(text.contains("walked 23 agents: 22 ok, 1 failed"), "{text}");
    assert!(
        text.contains(&format!(
            "failed 127.0.0.1:{dead} (dead-agent): Timeout: No Response"
        )),
        "{text}"
    );
    let files = std::fs::read_dir(&out_dir).unwrap().count();
    assert_eq!(files, 22);
    // A recording of a recording is the recording.
    for (name, file) in [("arista_eos", "arista_eos"), ("linux_icecast", "v3-linux")] {
        let want = snmprec::parse_file(&fixtures.join(format!("{name}.snmprec")))
            .unwrap()
            .varbinds;
        let got = snmprec::parse_file(&out_dir.join(format!("{file}.snmprec"))).unwrap();
        assert!(got.skipped.is_empty());
        assert_same_varbinds(file, &got.varbinds, &want);
    }
    let switch = snmprec::parse_file(&out_dir.join("switch48-00001.snmprec"))
        .unwrap()
        .varbinds;
    assert!(switch.len() > 2000, "{}", switch.len());
}

#[test]
fn a_bad_targets_file_is_refused_before_anything_is_walked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.txt");
    for (content, needle) in [
        (
            "127.0.0.1 public a\n127.0.0.1 public b --frob\n",
            "t.txt:2:",
        ),
        (
            "127.0.0.1 public a\n127.0.0.1 public a\n",
            "already used on line 1",
        ),
        ("127.0.0.1 public ../escape\n", "recording name"),
        ("-v3 127.0.0.1 ctx\n", "no security name"),
    ] {
        std::fs::write(&file, content).unwrap();
        let out = ironpoll_run(&[
            "walk",
            "--targets",
            file.to_str().unwrap(),
            "--output-dir",
            dir.path().join("o").to_str().unwrap(),
        ]);
        assert_one_line_error(&out, 1, needle);
        assert!(!Path::new(&dir.path().join("o")).exists(), "nothing walked");
    }
}

#[test]
fn sim_serves_until_sigterm_and_then_reports() {
    let port = free_udp_port();
    let mut sim = start_sim(
        &[
            "--fleet",
            "3",
            "--fleet-ports",
            &port.to_string(),
            "--profile",
            "chassis500",
        ],
        SocketAddr::from(([127, 0, 0, 1], port)),
        "public",
    );
    let out = ironpoll_run(&[
        "walk",
        "-c",
        "public",
        "-Cr40",
        &format!("127.0.0.1:{}", port + 2),
        ".1.3.6.1.2.1.2.2.1.2",
    ]);
    assert_eq!(stdout(&out).lines().count(), 500, "{}", stderr(&out));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(sim.0.id() as i32, libc::SIGTERM) };
    let status = sim.0.wait().unwrap();
    assert!(status.success());
    let mut err = String::new();
    use std::io::Read;
    sim.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("simulator stopping"), "{err}");
}

#[test]
fn demo_polls_a_simulated_fleet_and_draws_a_graph() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let out = ironpoll_run(&[
        "demo",
        "--devices",
        "40",
        "--cycles",
        "2",
        "--step",
        "5",
        "--dead-percent",
        "10",
        "--slow-percent",
        "0",
        "--dir",
        demo_dir.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("40 simulated devices"), "{text}");
    assert!(text.contains("cycle 1/2: 40 devices polled"), "{text}");
    assert!(text.contains("cycle 2/2: 40 devices polled"), "{text}");
    // "devices: 40 polled, U up, D down": 10% of 40 never answer.
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("devices: "))
        .expect("summary line");
    let numbers: Vec<usize> = line
        .split([',', ' '])
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(numbers[0], 40, "{text}");
    assert_eq!(numbers[1] + numbers[2], 40, "{text}");
    // The simulator picks its 10% from the seed and the devices' names:
    // about 4 of 40, the same ones in every cycle.
    let down = numbers[2];
    assert!((2..=6).contains(&down), "{text}");
    for cycle in ["cycle 1/2", "cycle 2/2"] {
        let line = text.lines().find(|l| l.contains(cycle)).unwrap();
        assert!(
            line.ends_with(&format!("{} up, {down} down", 40 - down)),
            "{text}"
        );
    }
    let ports: usize = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("ports: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("ports line");
    assert!(ports > 40 * 3, "{text}");
    // The second cycle gave rates, so some port carries traffic.
    assert!(!text.contains(" 0 with traffic"), "{text}");
    let png = std::fs::read(demo_dir.join("traffic.png")).expect("graph written");
    assert_eq!(&png[1..4], b"PNG");
    assert!(demo_dir.join("ironpoll.db").is_file());
}
