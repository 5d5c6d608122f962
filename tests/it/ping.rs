//! `ironpoll ping` as a drop-in for fping: the same flags give the same
//! lines (numbers aside) and the same exit codes, checked against fping
//! itself on loopback.

use std::process::{Command, Output};
use std::time::Duration;

use crate::support::*;

fn ironpoll_ping(args: &[&str]) -> Output {
    let mut cmd = ironpoll();
    cmd.arg("ping").args(args);
    run(cmd, Duration::from_secs(60))
}

fn fping(args: &[&str]) -> Output {
    let mut cmd = Command::new(tool("fping"));
    cmd.args(args);
    run(cmd, Duration::from_secs(60))
}

/// A line with its numbers replaced, so that two runs compare by shape.
fn shape(text: &str) -> Vec<String> {
    let number = regex::Regex::new(r"\d+(\.\d+)?").unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| number.replace_all(l, "N").into_owned())
        .collect();
    lines.sort();
    lines
}

#[test]
fn count_mode_prints_what_fping_prints() {
    // IPv4 and IPv6 hosts in one sweep.
    let args = ["-c", "3", "-p", "50", "127.0.0.1", "127.0.0.2", "::1"];
    let ours = ironpoll_ping(&args);
    let theirs = fping(&args);
    assert_eq!(ours.status.code(), Some(0), "{}", stderr(&ours));
    assert_eq!(ours.status.code(), theirs.status.code());
    assert_eq!(shape(&stdout(&ours)), shape(&stdout(&theirs)));
    assert_eq!(shape(&stderr(&ours)), shape(&stderr(&theirs)));
    assert!(stderr(&ours).contains("127.0.0.2 : xmt/rcv/%loss = 3/3/0%, min/avg/max = "));
    assert!(stderr(&ours).contains("::1       : xmt/rcv/%loss = 3/3/0%"));
    // Every echo answered, in rounds 0..2.
    for round in 0..3 {
        assert!(stdout(&ours).contains(&format!("127.0.0.1 : [{round}], 64 bytes, ")));
    }
}

#[test]
fn quiet_mode_prints_only_the_summaries() {
    let args = ["-q", "-c", "2", "-p", "20", "127.0.0.1"];
    let ours = ironpoll_ping(&args);
    let theirs = fping(&args);
    assert_eq!(stdout(&ours), "");
    assert_eq!(shape(&stderr(&ours)), shape(&stderr(&theirs)));
}

#[test]
fn hosts_come_from_a_file_and_alive_mode_reports_each() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts");
    std::fs::write(&file, "127.0.0.1\n# a comment\n\n127.0.0.3\n").unwrap();
    let f = file.to_str().unwrap();
    let ours = ironpoll_ping(&["-f", f]);
    let theirs = fping(&["-f", f]);
    assert_eq!(ours.status.code(), Some(0), "{}", stderr(&ours));
    let text = stdout(&ours);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    assert_eq!(lines, ["127.0.0.1 is alive", "127.0.0.3 is alive"]);
    assert_eq!(shape(&stdout(&ours)), shape(&stdout(&theirs)));
}

#[test]
fn exit_codes_follow_fping() {
    // A name that does not resolve: 2, with one line naming it.
    let ours = ironpoll_ping(&["-c", "1", "127.0.0.1", "no-such-host.invalid"]);
    assert_eq!(ours.status.code(), Some(2));
    assert!(
        stderr(&ours).contains("no-such-host.invalid: Name or service not known"),
        "{}",
        stderr(&ours)
    );
    assert!(stderr(&ours).contains("127.0.0.1 : xmt/rcv/%loss = 1/1/0%"));
    assert_eq!(
        fping(&["-c", "1", "127.0.0.1", "no-such-host.invalid"])
            .status
            .code(),
        Some(2)
    );
    // A bad option value: 3, as fping's invalid arguments.
    assert_eq!(
        ironpoll_ping(&["-c", "x", "127.0.0.1"]).status.code(),
        Some(3)
    );
    assert_eq!(
        ironpoll_ping(&["-p", "-5", "127.0.0.1"]).status.code(),
        Some(3)
    );
    assert_eq!(ironpoll_ping(&[]).status.code(), Some(3));
}

#[test]
fn many_hosts_and_rounds_have_no_sequence_ceiling() {
    // 2,000 hosts x 40 rounds = 80,000 echoes, past the 65,536 sequence
    // numbers a per-echo numbering would run out of.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts");
    let hosts: Vec<String> = (0..2000)
        .map(|i| format!("127.94.{}.{}", i / 200, i % 200 + 1))
        .collect();
    std::fs::write(&file, hosts.join("\n")).unwrap();
    let out = ironpoll_ping(&[
        "-q",
        "-c",
        "40",
        "-p",
        "50",
        "-i",
        "0.01",
        "-f",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summaries: Vec<String> = stderr(&out).lines().map(str::to_string).collect();
    assert_eq!(summaries.len(), 2000);
    assert!(
        summaries
            .iter()
            .all(|l| l.contains("xmt/rcv/%loss = 40/40/0%")),
        "{:?}",
        summaries.iter().find(|l| !l.contains("40/40/0%"))
    );
}
