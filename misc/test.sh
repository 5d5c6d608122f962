#!/usr/bin/env bash
# Installs what the tests need (on Debian/Ubuntu; idempotent) and runs them.
#   net-snmp's snmpd and command-line tools, the reference SNMP peer
#   snmpsim (in .work/snmpsim-venv), an independent simulator
#   rrdtool and rrdcached, the RRD sinks the service tests write to
#   fping, the reference ironpoll ping is compared with; iproute2 and
#   nftables for the network namespaces of the fast-ping tests
#   MariaDB, a private instance in .work/mariadb (see misc/lib.sh)
#   memcached, and a venv for LibreNMS's poller-wrapper.py (the tests
#   start their own memcached on a free port)
#   openssl, systemd's systemd-analyze and binutils, for the TLS, unit and
#   package tests
# The tests start their own private snmpd and snmpsim instances on free
# loopback ports and stop them when they finish.
# Extra arguments go to `cargo test`, e.g. ./misc/test.sh faults::
# Plain `cargo test` runs only the service-free tier (unit tests, the
# modules on recordings, conformance on SQLite).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ensure_build_deps
ensure_packages snmpd snmp rrdtool rrdcached fping iproute2 nftables memcached redis-server
# openssl for the Redis TLS test's certificates; systemd for systemd-analyze
# (the unit's checks, without running systemd); binutils' strip for the .deb.
ensure_packages openssl systemd binutils
ensure_snmpsim
ensure_dispatcher_venv
ensure_mariadb

export IRONPOLL_SNMPSIM="$work_dir/snmpsim-venv/bin/snmpsim-command-responder"
export IRONPOLL_DISPATCHER_PYTHON="$work_dir/dispatcher-venv/bin/python"
# LibreNMS's recordings live beside the project, never inside it.
export IRONPOLL_LIBRENMS_FIXTURES="${IRONPOLL_LIBRENMS_FIXTURES:-$repo_root/../shared/fixtures/librenms}"

cd "$repo_root"
log "running the tests"
cargo test --locked --features services "$@"
