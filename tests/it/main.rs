//! ironpoll's integration tests: one binary, one module per area.
//!
//! They talk to real peers on loopback (net-snmp's snmpd, snmpsim, ironpoll's
//! own simulator) and run the `ironpoll` binary. `./misc/test.sh` installs
//! what they need; a missing peer fails with that hint.

mod alerting;
mod backpressure;
mod cli;
mod dispatcher;
mod engine;
mod fastping;
mod faults;
#[path = "../offline/fixtures.rs"]
mod fixtures;
// Shared with the service-free tier; this tier uses part of it.
#[allow(dead_code)]
#[path = "../offline/harness.rs"]
mod harness;
mod modules_live;
mod ping;
mod production;
mod scheduler;
mod services;
mod sim;
mod snmpd;
mod snmpsim;
mod support;
mod tcp;
mod wrapper;

use std::future::Future;
use std::time::Duration;

/// Runs a test body with a deadline: a hang is a failure, not a stuck run.
pub async fn within<T>(secs: u64, body: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), body).await {
        Ok(v) => v,
        Err(_) => panic!("test did not finish within {secs} s"),
    }
}
