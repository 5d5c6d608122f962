#!/usr/bin/env bash
# Records a local net-snmp snmpd with ironpoll's own recorder into
# fixtures/recordings/linux-snmpd.snmprec: the project's own device image of
# a Linux host, used by tests and the demo.
# Only the subtrees a poller reads are kept; the running-process tables
# (hrSWRun*) are left out, as command lines can carry secrets.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ensure_build_deps
ensure_packages snmpd

cd "$repo_root"
cargo build --release --locked --quiet
tmp=$(mktemp -d)
trap 'kill "$(cat "$tmp/pid" 2>/dev/null)" 2>/dev/null || true; sleep 1; rm -rf "$tmp"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$tmp/snmpd.conf" <<CONF
agentaddress udp:127.0.0.1:$port
rocommunity public 127.0.0.1
syslocation Server room, rack 12
syscontact noc@example.net
sysname ironpoll-fixture
CONF
SNMP_PERSISTENT_DIR=$tmp/persist snmpd -C -c "$tmp/snmpd.conf" -Lf "$tmp/log" -p "$tmp/pid" -m "" -I -smux
sleep 1
out=fixtures/recordings/linux-snmpd.snmprec
mkdir -p "$(dirname "$out")"
: > "$out"
for root in 1.3.6.1.2.1.1 1.3.6.1.2.1.2 1.3.6.1.2.1.4 1.3.6.1.2.1.25.1 1.3.6.1.2.1.25.2 \
            1.3.6.1.2.1.25.3 1.3.6.1.2.1.31 1.3.6.1.4.1.2021 1.3.6.1.6.3.10.2.1; do
    target/release/ironpoll walk --format snmprec -v2c -c public "127.0.0.1:$port" "$root" >> "$out"
done
log "wrote $(wc -l < "$out") records to $out"
