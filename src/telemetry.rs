//! Logging set-up: human-readable lines on stderr, filtered by `RUST_LOG`
//! (default `info`, or `warn` for the one-shot tools whose stdout is data).

use tracing_subscriber::EnvFilter;

pub fn init(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
