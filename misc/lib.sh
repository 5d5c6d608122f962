# Shared set-up steps for misc/*.sh. Each step checks before it acts, so
# running a script twice does nothing the second time.
# shellcheck shell=bash

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work_dir=${IRONPOLL_WORK:-$repo_root/.work}

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs Debian/Ubuntu packages that are not installed yet.
ensure_packages() {
    local missing=()
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# A Rust toolchain: the one on PATH, or rustup's stable.
ensure_rust() {
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    if command -v cargo >/dev/null 2>&1; then return 0; fi
    ensure_packages curl ca-certificates build-essential
    log "installing Rust (rustup, stable)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    . "$HOME/.cargo/env"
}

# What building and running ironpoll needs from the system: a C compiler
# (mimalloc, ring), and librrd, which ironpoll opens at run time for local
# RRD files and graphs (src/rrd/librrd.rs). rrdtool's package brings the
# library under whichever name this release gives it (librrd8, librrd8t64).
ensure_build_deps() {
    ensure_packages gcc pkg-config rrdtool
    ensure_rust
}

# snmpsim in its own venv, from Debian's Python (its gdbm module keeps
# snmpsim's indexes fast). cryptography is not pulled in by snmpsim but is
# needed for SNMPv3 privacy.
ensure_snmpsim() {
    local venv=$work_dir/snmpsim-venv
    if [ -x "$venv/bin/snmpsim-command-responder" ] && "$venv/bin/python" -c 'import cryptography, pysmi' 2>/dev/null; then
        return 0
    fi
    ensure_packages python3 python3-venv python3-gdbm
    log "installing snmpsim into $venv"
    mkdir -p "$work_dir"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'snmpsim==1.2.2' 'pysmi==1.6.3' 'pysnmp==7.1.30' 'pyasn1==0.6.5' 'cryptography>=42'
}

# A venv for LibreNMS's own Python dispatcher and cron wrapper
# (../shared/fixtures/librenms/dispatcher), which the cluster tests run
# beside ironpoll: its requirements.txt, and python-memcached, which
# poller-wrapper.py imports for distributed polling.
ensure_dispatcher_venv() {
    local venv=$work_dir/dispatcher-venv
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import memcache, pymysql, dotenv, redis, psutil, command_runner' 2>/dev/null; then
        return 0
    fi
    ensure_packages python3 python3-venv
    log "installing LibreNMS's dispatcher requirements into $venv"
    mkdir -p "$work_dir"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'python-memcached==1.62' 'PyMySQL==1.2.4' 'python-dotenv==1.2.4' \
        'redis==8.2.0' 'psutil==7.2.2' 'command_runner==1.7.6' setuptools
}

# A private MariaDB for the service tests: its own data directory under
# .work, its own port (IRONPOLL_MARIADB_PORT, default 13306) and socket,
# root without a password. Started once; later runs reuse it.
ensure_mariadb() {
    ensure_packages mariadb-server mariadb-client
    local port=${IRONPOLL_MARIADB_PORT:-13306}
    local dir=$work_dir/mariadb
    local sock=$dir/mysqld.sock
    if [ -S "$sock" ] && mariadb --no-defaults -uroot -S "$sock" -e 'SELECT 1' >/dev/null 2>&1; then
        export IRONPOLL_TEST_MYSQL="mysql://root@127.0.0.1:$port"
        return 0
    fi
    if [ ! -d "$dir/data/mysql" ]; then
        log "initialising a private MariaDB in $dir"
        mkdir -p "$dir"
        mariadb-install-db --no-defaults --datadir="$dir/data" --user="$(id -un)" \
            --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1
    fi
    log "starting the private MariaDB on 127.0.0.1:$port"
    # Started in its own session so it outlives this script, like a service.
    setsid /usr/sbin/mariadbd --no-defaults --user="$(id -un)" --datadir="$dir/data" \
        --socket="$sock" --port="$port" --bind-address=127.0.0.1 \
        --pid-file="$dir/mariadbd.pid" --log-error="$dir/mariadbd.err" \
        --skip-name-resolve --innodb-buffer-pool-size=256M --max-connections=500 \
        </dev/null >/dev/null 2>&1 &
    local i
    for i in $(seq 1 60); do
        if mariadb --no-defaults -uroot -S "$sock" -e 'SELECT 1' >/dev/null 2>&1; then
            export IRONPOLL_TEST_MYSQL="mysql://root@127.0.0.1:$port"
            return 0
        fi
        sleep 0.5
    done
    log "MariaDB did not start; see $dir/mariadbd.err"
    return 1
}
