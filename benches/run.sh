#!/usr/bin/env bash
# Runs every benchmark and a bounded fuzzing session, keeping the raw output
# in benches/runs/<date>/ (benches/RESULTS.md quotes it). Installs what it
# needs (net-snmp's snmpd and tools, cargo-fuzz) like misc/test.sh does.
# The cycle benchmark also needs rrdcached, fping and MariaDB (the private
# instance misc/test.sh uses).
#   FUZZ_SECONDS=60 ./benches/run.sh            every benchmark
#   ./benches/run.sh cycle                      only those named
set -euo pipefail
. "$(dirname "$0")/../misc/lib.sh"

ensure_build_deps
ensure_packages snmpd snmp rrdcached fping
ensure_mariadb
ensure_packages redis-server
ensure_dispatcher_venv
export IRONPOLL_DISPATCHER_PYTHON="$work_dir/dispatcher-venv/bin/python"
export IRONPOLL_LIBRENMS_FIXTURES="${IRONPOLL_LIBRENMS_FIXTURES:-$repo_root/../shared/fixtures/librenms}"
cd "$repo_root"
out=$repo_root/benches/runs/$(date -u +%Y-%m-%d)
mkdir -p "$out"
machine=$out/machine.txt
[ $# -gt 0 ] && machine=$out/machine-$(IFS=-; echo "$*").txt
{
    echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) CPUs"
    rustc --version
    snmpd -v 2>/dev/null | grep -m1 -i version || true
    fping --version 2>/dev/null || true
    /usr/sbin/mariadbd --version 2>/dev/null || true
} > "$machine"

wanted=("$@")
run() {
    local name=$1; shift
    if [ ${#wanted[@]} -gt 0 ] && [[ ! " ${wanted[*]} " =~ " ${name%%-*} " ]]; then
        return 0
    fi
    log "$name: $*"
    { echo "\$ $*"; "$@"; } 2>&1 | grep -v -E '^\s+(Compiling|Finished|Running)' | tee "$out/$name.txt"
}

run codec cargo bench --locked --bench codec
run engine cargo bench --locked --bench engine
for c in 8 32 128; do
    run "simulator-c$c" cargo bench --locked --bench simulator -- --requests 200000 --concurrency "$c" --load batched
done
run simulator-client-c32 cargo bench --locked --bench simulator -- --requests 200000 --concurrency 32 --load client
# One walk and 44 walks at once against snmpbulkwalk: few requests in flight.
run walk env RUNS=5 ./benches/walk.sh
# A dispatcher cluster's master: Redis commands, round trips and CPU per
# device per pass, against librenms-service.py; and the time to the next
# master after a kill -9.
run dispatch-10k cargo bench --locked --bench dispatch -- --devices 10000 --seconds 30
run dispatch-50k cargo bench --locked --bench dispatch -- --devices 50000 --seconds 60
run cycle cargo bench --locked --bench cycle -- --devices 10000 --sample 100 --concurrency 400
# The same cycles with MariaDB at a third of its speed (issue: bounded
# memory when a sink falls behind); a small LibreNMS-way sample as the
# machine's yardstick.
run cycle-slowdb cargo bench --locked --bench cycle -- --devices 10000 --sample 20 --module-sample 0 --concurrency 400 --slow-db 3
run ping cargo bench --locked --bench ping -- --targets 10000 --seconds 60

if [ ${#wanted[@]} -gt 0 ] && [[ ! " ${wanted[*]} " =~ " fuzz " ]]; then
    log "results in $out"
    exit 0
fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable compiler take them.
( cd fuzz && run fuzz env RUSTC_BOOTSTRAP=1 cargo fuzz run decode_message -- -max_total_time="${FUZZ_SECONDS:-60}" )
log "results in $out"
