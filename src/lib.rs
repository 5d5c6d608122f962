//! ironpoll: a native poller engine for LibreNMS.
//!
//! Layout (see ARCHITECTURE.md for the whole map):
//! * `snmp`: the SNMP codec and the shared-socket async client.
//! * `sim`: simulated agents serving recordings and generated device profiles.
//! * `cli`: the `ironpoll` command line.

pub mod alerting;
pub mod alloc;
pub mod backlog;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod coord;
pub mod daemon;
pub mod db;
pub mod device;
pub mod heartbeat;
pub mod icmp;
pub mod librenms;
pub mod memory;
pub mod mib;
pub mod modules;
pub mod poller;
pub mod rrd;
pub mod scheduler;
pub mod secret;
pub mod sim;
pub mod snmp;
pub mod telemetry;
pub mod udp;
pub mod window;

#[cfg(test)]
mod tidy;

/// LibreNMS's fixtures beside the project (or `$IRONPOLL_LIBRENMS_FIXTURES`),
/// which the tests of generated files compare against.
#[cfg(test)]
pub(crate) fn librenms_fixtures() -> std::path::PathBuf {
    std::env::var_os("IRONPOLL_LIBRENMS_FIXTURES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/librenms")
        })
}
