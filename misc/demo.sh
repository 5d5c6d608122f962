#!/usr/bin/env bash
# Builds ironpoll (installing a Rust toolchain and a C compiler if missing)
# and runs the demo: a simulated fleet on loopback polled into an embedded
# store, RRD files and a traffic graph, in under a minute.
# No servers and no privileges needed. Extra arguments go to `ironpoll demo`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ensure_build_deps
cd "$repo_root"
log "building ironpoll (release)"
cargo build --release --locked --quiet
exec target/release/ironpoll demo "$@"
