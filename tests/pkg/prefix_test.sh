#!/bin/bash
# `cmake --install build --prefix PREFIX` (README "Install") lays out the files under PREFIX, and
# the systemd unit it installs there must start the binary it installed: a unit under
# /usr/local/lib/systemd/system (which systemd reads) that runs /usr/bin/vpn2socks fails to start
# on a machine without the package. Installed into a scratch DESTDIR; no root needed.
#   prefix_test.sh BUILD_DIR
set -u
build=$1
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
status=0
for prefix in /usr/local /opt/vpn2socks; do
    if ! DESTDIR="$tmp/root" cmake --install "$build" --prefix "$prefix" >"$tmp/log" 2>&1; then
        cat "$tmp/log" >&2
        exit 1
    fi
    unit="$tmp/root$prefix/lib/systemd/system/vpn2socks@.service"
    exec_start=$(grep '^ExecStart=' "$unit" 2>/dev/null)
    want="ExecStart=$prefix/bin/vpn2socks --conf /etc/vpn2socks/%i.conf"
    if [ "$exec_start" != "$want" ]; then
        echo "--prefix $prefix: the unit has '$exec_start', want '$want'" >&2
        status=1
    elif [ ! -x "$tmp/root$prefix/bin/vpn2socks" ]; then
        echo "--prefix $prefix: no $prefix/bin/vpn2socks installed" >&2
        status=1
    else
        echo "--prefix $prefix: $exec_start"
    fi
done
exit "$status"
