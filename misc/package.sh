#!/usr/bin/env bash
# Builds ironpoll's .deb with Debian's own dpkg-deb: the binary, the
# systemd unit, an example config, the man pages and the bash, zsh and fish
# completions (both made by `ironpoll generate` from the CLI definitions).
#   ./misc/package.sh                 release build, .deb in target/debian/
#   ./misc/package.sh --bin PATH --out DIR
#                                     package an ironpoll already built
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$repo_root"

bin=""
out="$repo_root/target/debian"
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "usage: $0 [--bin PATH] [--out DIR]" >&2; exit 2 ;;
    esac
done
if [ -z "$bin" ]; then
    ensure_build_deps
    log "cargo build --release"
    cargo build --release --locked
    bin="$repo_root/target/release/ironpoll"
fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT

# Stripped: the symbols are for profiling a build, not for a package.
install -D -s -m 0755 "$bin" "$stage/usr/bin/ironpoll"
install -D -m 0644 misc/ironpoll.service "$stage/lib/systemd/system/ironpoll.service"
install -D -m 0640 misc/ironpoll.toml "$stage/etc/ironpoll/ironpoll.toml"
install -D -m 0644 LICENSE "$stage/usr/share/doc/ironpoll/copyright"
install -D -m 0644 README.md "$stage/usr/share/doc/ironpoll/README.md"

man=$(mktemp -d -p "$stage")
"$bin" generate man --out "$man" >/dev/null
mkdir -p "$stage/usr/share/man/man1"
for page in "$man"/*.1; do
    gzip -9n -c "$page" >"$stage/usr/share/man/man1/$(basename "$page").gz"
done
rm -rf "$man"

comp=$(mktemp -d -p "$stage")
"$bin" generate completions --out "$comp" >/dev/null
install -D -m 0644 "$comp/ironpoll.bash" "$stage/usr/share/bash-completion/completions/ironpoll"
install -D -m 0644 "$comp/_ironpoll" "$stage/usr/share/zsh/vendor-completions/_ironpoll"
install -D -m 0644 "$comp/ironpoll.fish" "$stage/usr/share/fish/vendor_completions.d/ironpoll.fish"
rm -rf "$comp"

mkdir -p "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: ironpoll
Version: $version
Architecture: $arch
Maintainer: ironpoll developers <ironpoll@localhost>
Installed-Size: $size
Depends: libc6, librrd8 | librrd8t64
Recommends: rrdcached
Section: net
Priority: optional
Homepage: https://github.com/ironpoll/ironpoll
Description: native poller engine for LibreNMS
 ironpoll polls SNMP and ICMP devices for LibreNMS, writing LibreNMS's
 database rows and RRD files as LibreNMS's own poller does, and joins a
 LibreNMS poller cluster next to librenms-service.py nodes.
CONTROL
echo "/etc/ironpoll/ironpoll.toml" >"$stage/DEBIAN/conffiles"
cat >"$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    # The unit runs as LibreNMS's user; the config is readable by it.
    if getent group librenms >/dev/null; then
        chgrp librenms /etc/ironpoll/ironpoll.toml || true
    fi
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload || true
    fi
fi
POSTINST
cat >"$stage/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
POSTRM
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"

mkdir -p "$out"
deb="$out/ironpoll_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
