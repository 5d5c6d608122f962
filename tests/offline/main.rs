//! The service-free tier: the real modules polled from recordings into
//! SQLite stores (LibreNMS's conformance data, the project's golden
//! files) and the database writer on SQLite. Plain `cargo test` runs it;
//! the service tier (`tests/it`, feature `services`) runs from
//! `./misc/test.sh`.

mod bad_rows;
mod conformance;
mod fixtures;
mod golden;
mod harness;
mod ports_cisco;
mod query_builder;
mod writer;

use std::future::Future;
use std::time::Duration;

/// Runs a test body with a deadline: a hang is a failure, not a stuck run.
pub async fn within<T>(secs: u64, body: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), body).await {
        Ok(v) => v,
        Err(_) => panic!("test did not finish within {secs} s"),
    }
}

pub mod support {
    pub use crate::fixtures::{librenms_fixtures, repo_root};
}
