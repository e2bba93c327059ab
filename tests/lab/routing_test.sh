#!/bin/bash
# shellcheck disable=SC2317,SC2119  # helpers are called through lab_check; lab_setup takes no args here
# Where connections go: ocserv pushes one split route (the internal net); a second web server
# listens on the server's veth address, which the client namespace reaches directly, without the
# VPN. For each routing setting, vpn2socks's log names the path taken and the replies are checked:
#   default          split route -> tunnel; everything else -> direct
#   --others reject  everything outside the routes -> reply 0x02, the internal net still works
#   --others tunnel  the veth address through the tunnel (ocserv's host answers it there too)
#   --exclude        the internal host taken out of the tunnel -> direct -> unreachable (0x03)
#   --route          the veth address added to the tunnel
# Needs root (skips with exit 77 otherwise). The binary: $VPN2SOCKS_BIN, else build/vpn2socks.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/v2s.sh"

lab_require_root
LAB_BIG_MB=${LAB_BIG_MB:-8} lab_setup
v2s_prepare

OUTSIDE_PORT=8090
OUTSIDE_URL=http://$LAB_SERVER_IP:$OUTSIDE_PORT
lab_bg web-outside ip netns exec "$LAB_SERVER_NS" "$LAB_PY" "$LAB_LIB_DIR/web_server.py" \
    "$LAB_SERVER_IP" "$OUTSIDE_PORT" "$LAB_WEB_ROOT"
lab_wait_listen "$LAB_SERVER_NS" tcp "$LAB_SERVER_IP" "$OUTSIDE_PORT" || lab_die "outside web server"

# path_logged HOSTPORT PATH: vpn2socks logged a connection to HOSTPORT taking PATH
path_logged() {
    if ! grep -qE -- "-> $1 \\($2\\) open" "$S/v2s.log"; then
        echo "no '$1 ($2)' connection in the log:"
        grep -F -- "-> " "$S/v2s.log" | tail -n 5
        return 1
    fi
}

# fetch_via NAME URL HOSTPORT PATH: the file arrives intact and took PATH
fetch_via() {
    v2s_fetch_check "$PROXY" "$2/$LAB_BIG_FILE" "$S/$1" 60 "$LAB_BIG_SHA256" "$LAB_BIG_SIZE" &&
        path_logged "$3" "$4"
}

# session NAME VPN2SOCKS_ARGS: a fresh openconnect + vpn2socks with these routing options
session() {
    if [ -n "${S:-}" ]; then
        lab_stop_openconnect TERM
        v2s_wait_exit "$S" 10 >/dev/null
    fi
    V2S_ARGS=$2 v2s_start_session "$1" || lab_die "session $1 did not start"
}

inside=$LAB_INTERNAL_IP:$LAB_WEB_PORT
outside=$LAB_SERVER_IP:$OUTSIDE_PORT

session default ""
lab_check "default: split route $inside goes through the tunnel" \
    fetch_via in "$LAB_WEB_URL" "$inside" tunnel
lab_check "default: $outside, outside the split routes, goes direct" \
    fetch_via out "$OUTSIDE_URL" "$outside" direct
lab_check "default: a direct connection to a closed port gives reply 0x05" \
    sc connect "$LAB_SERVER_IP" 1 0x05

session reject "--others reject"
lab_check "--others reject: $outside gives reply 0x02" sc connect "$LAB_SERVER_IP" "$OUTSIDE_PORT" 0x02
lab_check "--others reject: the split route still works" fetch_via in "$LAB_WEB_URL" "$inside" tunnel

session tunnel "--others tunnel"
lab_check "--others tunnel: $outside goes through the tunnel" \
    fetch_via out "$OUTSIDE_URL" "$outside" tunnel

session exclude "--exclude $LAB_INTERNAL_IP/32"
lab_check "--exclude: $LAB_INTERNAL_IP leaves the tunnel, and directly it is unreachable (0x03)" \
    sc connect "$LAB_INTERNAL_IP" "$LAB_WEB_PORT" 0x03

session route "--others reject --route $LAB_SERVER_IP/32"
lab_check "--route: $outside goes through the tunnel despite --others reject" \
    fetch_via out "$OUTSIDE_URL" "$outside" tunnel
lab_check "vpn2socks is still running" v2s_alive

lab_finish
