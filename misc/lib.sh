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

# What building ironpoll needs from the system.
ensure_build_deps() {
    ensure_packages gcc pkg-config
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
