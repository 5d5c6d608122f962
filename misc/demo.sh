#!/usr/bin/env bash
# Builds ironpoll (installing a Rust toolchain and a C compiler if missing)
# and runs the demo: a simulated fleet on loopback, walked by the engine.
# No servers and no privileges needed. Extra arguments go to `ironpoll demo`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ensure_build_deps
cd "$repo_root"
log "building ironpoll (release)"
cargo build --release --locked --quiet
exec target/release/ironpoll demo "$@"
