//! ICMP echo at fleet scale: `ironpoll ping` and fping given the same
//! flags, one after the other in the same run, against loopback targets
//! (127.0.0.0/8 answers on every address).
//!
//! Phases (each a child process, its CPU read from RUSAGE_CHILDREN):
//! - sustained: every target once a second for `--seconds` (ironpoll only);
//! - fast: every target every 250 ms, to show the rate the pinger keeps up;
//! - versus: `-c 10 -p 1000 -i 0.1` on every target, ironpoll then fping.
//!
//! Needs root (or CAP_NET_RAW) for raw ICMP sockets and fping on the PATH;
//! `benches/run.sh` installs fping. Options: `--targets N --seconds S`.

#[path = "support/measure.rs"]
mod measure;
use measure::*;

use std::process::{Command, Stdio};
use std::time::Instant;

struct Args {
    targets: usize,
    seconds: u32,
}

fn args() -> Args {
    let mut a = Args {
        targets: 10_000,
        seconds: 60,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--targets" => a.targets = v.parse().expect("--targets N"),
            "--seconds" => a.seconds = v.parse().expect("--seconds S"),
            "--bench" => {
                i += 1;
                continue;
            }
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    a
}

/// What one run of a pinger did, from its own summary lines.
struct Run {
    tool: &'static str,
    phase: String,
    wall: f64,
    cpu: f64,
    sent: u64,
    received: u64,
    exit: i32,
}

impl Run {
    fn print(&self) {
        println!(
            "| {} | {} | {:.1} | {:.2} | {} | {} | {} | {:.0} | **{:.2}** | {} |",
            self.phase,
            self.tool,
            self.wall,
            self.cpu,
            self.sent,
            self.received,
            self.sent - self.received,
            self.sent as f64 / self.wall,
            self.cpu * 1e6 / self.sent.max(1) as f64,
            self.exit
        );
    }
}

/// Runs `tool ARGS -q -f FILE`, reading fping's summary lines (stderr).
fn run(
    tool: &'static str,
    program: &str,
    pre: &[&str],
    flags: &[&str],
    file: &str,
    phase: &str,
) -> Run {
    let cpu_before = children_cpu_seconds();
    let started = Instant::now();
    let out = Command::new(program)
        .args(pre)
        .args(flags)
        .args(["-q", "-f", file])
        .stdout(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let wall = started.elapsed().as_secs_f64();
    let cpu = children_cpu_seconds() - cpu_before;
    let (mut sent, mut received) = (0u64, 0u64);
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        // HOST : xmt/rcv/%loss = 10/10/0%, min/avg/max = ...
        let Some(rest) = line.split("xmt/rcv/%loss = ").nth(1) else {
            continue;
        };
        let mut parts = rest.split('/');
        sent += parts
            .next()
            .and_then(|x| x.parse::<u64>().ok())
            .unwrap_or(0);
        received += parts
            .next()
            .and_then(|x| x.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Run {
        tool,
        phase: phase.to_string(),
        wall,
        cpu,
        sent,
        received,
        exit: out.status.code().unwrap_or(-1),
    }
}

fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.txt");
    // 127.93.0.1 onwards: loopback, one address per target.
    let hosts: Vec<String> = (0..a.targets)
        .map(|i| {
            let n = i + 1;
            format!("127.93.{}.{}", n / 250, n % 250 + 1)
        })
        .collect();
    std::fs::write(&file, hosts.join("\n")).unwrap();
    let file = file.to_str().unwrap();
    let ironpoll = env!("CARGO_BIN_EXE_ironpoll");
    let interval_1s = format!("{}", 1000.0 / a.targets as f64);
    let interval_250ms = format!("{}", 250.0 / a.targets as f64);
    let sustained_count = a.seconds.to_string();
    let fast_count = (a.seconds.min(20) * 4).to_string();

    let runs = [
        run(
            "ironpoll",
            ironpoll,
            &["ping"],
            &["-c", &sustained_count, "-p", "1000", "-i", &interval_1s],
            file,
            &format!("sustained: every target each second for {} s", a.seconds),
        ),
        run(
            "ironpoll",
            ironpoll,
            &["ping"],
            &["-c", &fast_count, "-p", "250", "-i", &interval_250ms],
            file,
            "fast: every target each 250 ms",
        ),
        run(
            "ironpoll",
            ironpoll,
            &["ping"],
            &["-c", "10", "-p", "1000", "-i", "0.1"],
            file,
            "versus: -c 10 -p 1000 -i 0.1",
        ),
        run(
            "fping",
            "fping",
            &[],
            &["-c", "10", "-p", "1000", "-i", "0.1"],
            file,
            "versus: -c 10 -p 1000 -i 0.1",
        ),
    ];
    println!("{} loopback targets", a.targets);
    println!();
    println!(
        "| phase | tool | wall s | CPU s | echoes sent | replies | lost | echoes/s | **CPU µs/echo** | exit |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &runs {
        r.print();
    }
    let (ours, theirs) = (&runs[2], &runs[3]);
    let per = |r: &Run| r.cpu / r.sent.max(1) as f64;
    println!();
    println!(
        "versus fping: {:.1}x less CPU per echo, wall {:.1} s against {:.1} s",
        per(theirs) / per(ours).max(1e-12),
        ours.wall,
        theirs.wall
    );
}
