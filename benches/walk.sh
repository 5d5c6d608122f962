#!/usr/bin/env bash
# The SNMP engine with few requests in flight, beside net-snmp's
# snmpbulkwalk in the same run:
#   1. one walk of one agent (a simulated 500-interface chassis, about
#      22,000 varbinds, with a 2 ms latency fault), ironpoll walk against
#      snmpbulkwalk at -Cr10 and -Cr25, RUNS times each, interleaved;
#      the ratio of the means and the median of the runs' ratios;
#   2. 44 such agents at once: ironpoll walk --targets against one
#      snmpbulkwalk per agent, all started together;
#   3. user and system CPU and context switches per request of one walk
#      at -Cr10, each tool RUNS times;
#   4. system calls per request (strace -c) of one walk of each tool.
# CPU is user + system time of the finished child (getrusage), so the
# agent's CPU is never counted. Prints markdown tables.
#   ./benches/walk.sh            RUNS=5 by default
set -euo pipefail
. "$(dirname "$0")/../misc/lib.sh"
ensure_build_deps
ensure_packages snmp strace
cd "$repo_root"
cargo build --release --locked --quiet
# IRONPOLL_BIN: another build to compare (the simulator is always this one).
sim=$repo_root/target/release/ironpoll
bin=${IRONPOLL_BIN:-$sim}
runs=${RUNS:-5}
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

port=$((20000 + RANDOM % 20000))
"$sim" sim --fleet 1 --profile chassis500 --fleet-address 127.0.0.1 \
    --fleet-port "$port" --fault latency=2ms > "$work/sim1.log" 2>&1 &
pids+=($!)
# A fleet serves its port on every address: it needs a port of its own.
"$sim" sim --fleet 44 --profile chassis500 --fleet-address 127.3.0.1 \
    --fleet-port $((port + 1)) --fault latency=2ms --targets-out "$work/targets.txt" \
    > "$work/sim44.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    [ -s "$work/targets.txt" ] && snmpget -v2c -c public -t 0.2 -r 0 "127.0.0.1:$port" \
        1.3.6.1.2.1.1.3.0 > /dev/null 2>&1 && break
    sleep 0.1
done
agent=127.0.0.1:$port

# User and system CPU seconds and context switches of one command run to
# its end, its output discarded. The children's usage is read before and
# after: it survives exec, so the shell that launched python3 (pyenv's
# shim is one) is already in it.
usage() {
    python3 - "$@" <<'EOF'
import resource, subprocess, sys
def used():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r.ru_utime, r.ru_stime, r.ru_nvcsw + r.ru_nivcsw)
before = used()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
print(" ".join(f"{a - b:.4f}" for a, b in zip(used(), before)))
EOF
}

# CPU seconds (user + system) of one command.
cpu() { usage "$@" | awk '{ print $1 + $2 }'; }

sum() { awk -v a="$1" -v b="$2" 'BEGIN { print a + b }'; }

count=$("$bin" walk -v2c -c public -Cr10 "$agent" 1.3.6.1 | wc -l)
echo "agent: simulated chassis500, $count varbinds below 1.3.6.1, has a 2 ms latency fault"
echo
# The ratio is given twice: of the mean CPU of each tool, and the median
# of the runs' own ratios (each run is one walk of each tool, back to
# back), which a burst of noise on the shared machine moves less.
echo "| walk of one agent | runs | ironpoll CPU ms | snmpbulkwalk CPU ms | ironpoll µs/varbind | snmpbulkwalk µs/varbind | **ratio of means** | median of runs' ratios |"
echo "|---|---|---|---|---|---|---|---|"
for r in 10 25; do
    ours=() theirs=()
    for _ in $(seq "$runs"); do
        ours+=("$(cpu "$bin" walk -v2c -c public -Cr$r "$agent" 1.3.6.1)")
        theirs+=("$(cpu snmpbulkwalk -On -v2c -c public -Cr$r "$agent" 1.3.6.1)")
    done
    python3 -c "
import statistics
ours, theirs, c = [${ours[*]/%/,}], [${theirs[*]/%/,}], $count
o, t = statistics.mean(ours), statistics.mean(theirs)
m = statistics.median(b / a for a, b in zip(ours, theirs))
print(f'| -Cr$r | {len(ours)} | {o*1e3:.1f} | {t*1e3:.1f} | {o*1e6/c:.2f} | {t*1e6/c:.2f} | **{t/o:.2f}x less** | {m:.2f}x less |')"
done

echo
echo "| one walk at -Cr10, per request (mean of $runs, interleaved) | user µs | system µs | context switches |"
echo "|---|---|---|---|"
requests=$(( (count + 9) / 10 ))
ours_use=(0 0 0) theirs_use=(0 0 0)
for _ in $(seq "$runs"); do
    read -r u s c < <(usage "$bin" walk -v2c -c public -Cr10 "$agent" 1.3.6.1)
    ours_use=("$(sum "${ours_use[0]}" "$u")" "$(sum "${ours_use[1]}" "$s")" "$(sum "${ours_use[2]}" "$c")")
    read -r u s c < <(usage snmpbulkwalk -On -v2c -c public -Cr10 "$agent" 1.3.6.1)
    theirs_use=("$(sum "${theirs_use[0]}" "$u")" "$(sum "${theirs_use[1]}" "$s")" "$(sum "${theirs_use[2]}" "$c")")
done
per_request() {
    python3 -c "
n = $runs * $requests
print(f'| $1 | {$2*1e6/n:.1f} | {$3*1e6/n:.1f} | {$4/n:.2f} |')"
}
per_request ironpoll "${ours_use[@]}"
per_request snmpbulkwalk "${theirs_use[@]}"

echo
echo "| 44 agents at once | ironpoll CPU s | snmpbulkwalk x44 CPU s | varbinds | ironpoll µs/varbind | snmpbulkwalk µs/varbind | **ratio** |"
echo "|---|---|---|---|---|---|---|"
for r in 10 25; do
    ours=$(cpu "$bin" walk -v2c -Cr$r --targets "$work/targets.txt" --output-dir "$work/rec" 1.3.6.1)
    total=$(cat "$work"/rec/*.snmprec | wc -l)
    theirs=$(cpu bash -c "while read -r a c n; do snmpbulkwalk -On -v2c -c \$c -Cr$r \$a 1.3.6.1 > /dev/null & done < '$work/targets.txt'; wait")
    python3 -c "
o, t, c = $ours, $theirs, $total
print(f'| -Cr$r | {o:.2f} | {t:.2f} | {c} | {o*1e6/c:.2f} | {t*1e6/c:.2f} | **{t/o:.2f}x less** |')"
done

echo
echo "| system calls per request, one walk at -Cr10 | calls |"
echo "|---|---|"
for tool in ironpoll snmpbulkwalk; do
    if [ $tool = ironpoll ]; then
        cmd=("$bin" walk -v2c -c public -Cr10 "$agent" 1.3.6.1)
    else
        cmd=(snmpbulkwalk -On -v2c -c public -Cr10 "$agent" 1.3.6.1)
    fi
    strace -f -c -o "$work/strace.txt" "${cmd[@]}" > /dev/null
    # Calls made at least once per ten requests, per request.
    summary=$(awk -v n="$requests" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $4 >= n / 10 && $NF != "total" {
        printf "%s%s %.2f", sep, $NF, $4 / n; sep = ", " }' "$work/strace.txt")
    echo "| $tool ($requests requests) | $summary |"
done
