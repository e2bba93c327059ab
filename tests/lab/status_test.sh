#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# --status: vpn2socks as nobody with --config against Debian's openvpn 2.6 server, its health and
# metrics endpoint on the client's loopback, read with curl and Prometheus's own text parser
# (python3-prometheus-client, prom_query.py):
#   /healthz 200; /readyz 200 while a transfer runs, 503 "reconnecting" while the server is down,
#   200 again once it is back; /metrics during and after a transfer through SOCKS: the tunnel's
#   bytes in grew by at least the file's size, connections_total by listener and verdict counts
#   what the test did (tunnel, direct, rejected), a name through socks5h counts a DNS query, and
#   reconnects_total grows across the server's restart; SIGUSR1 logs the same figures as /metrics
#   at the same quiet moment.
# Needs root (skips with exit 77 otherwise). The binary: $VPN2SOCKS_BIN, else build/vpn2socks.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/openvpn.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/v2s.sh"

lab_require_root
lab_openvpn_require
"$LAB_PY" -c 'import prometheus_client.parser' 2>/dev/null ||
    lab_die "no prometheus_client for $LAB_PY (Debian: python3-prometheus-client, scripts/install-deps.sh)"
LAB_BIG_MB=32 lab_setup --no-ocserv
v2s_prepare

STATUS=127.0.0.1:9100
PQ=$here/prom_query.py

lab_start_openvpn_server st --proto udp --exit-notify --keepalive "2 10"
lab_openvpn_client_config st
# Routes: the pushed internal network through the tunnel, the server's outer address direct,
# everything else refused.
v2s_start_ovpn st "$LAB_OVPN_CLIENT_DIR" --others reject --exclude "$LAB_SERVER_IP/32" --status "$STATUS" ||
    lab_die "vpn2socks did not bring the tunnel up"

# get PATH [OUT]: curl from the client namespace; prints "CODE BODY" (the body's first line), the
# body kept in OUT when given.
get() {
    local out=${2:-$S/body}
    code=$(lab_in_client curl -sS -m 5 -o "$out" -w '%{http_code}' "http://$STATUS$1") || code=000
    echo "$code $(head -n 1 "$out" 2>/dev/null)"
}
scrape() { lab_in_client curl -sS -f -m 5 -o "$1" "http://$STATUS/metrics"; }
q() { "$LAB_PY" "$PQ" "$@"; }

# Deltas of one sample between two scrapes.
delta() { # FILE0 FILE1 NAME [LABEL=VALUE...]
    local a b f0=$1 f1=$2
    shift 2
    a=$(q "$f0" "$@") && b=$(q "$f1" "$@") || return 1
    echo $((b - a))
}

lab_check_eq "/healthz: 200 ok" "200 ok" "$(get /healthz)"
lab_check_eq "/readyz with the tunnel up: 200 ready" "200 ready" "$(get /readyz)"
lab_check_eq "another path: 404" 404 "$(get /nothing-here | cut -d' ' -f1)"
bad=$(lab_in_client "$LAB_PY" - "${STATUS%:*}" "${STATUS#*:}" <<'PY'
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(b"GARBAGE\x01 / HTTP/9\r\n\r\n")
print(s.recv(100).split(b"\r\n")[0].decode())
PY
)
lab_check_eq "a malformed request: 400" "HTTP/1.1 400 Bad Request" "$bad"

scrape "$S/m0" || lab_die "no /metrics"
types() {
    local f t
    for f in vpn2socks_tunnel_bytes_total:counter vpn2socks_connections_total:counter \
        vpn2socks_connections_open:gauge vpn2socks_tunnel_up:gauge vpn2socks_stack_memory_bytes:gauge; do
        t=$(q --type "$S/m0" "${f%:*}") || return 1
        [ "$t" = "${f#*:}" ] || { echo "${f%:*}: type $t"; return 1; }
    done
}
lab_check "/metrics parses (prometheus_client) with the families' types" types
lab_check_eq "vpn2socks_tunnel_up 1" 1 "$(q "$S/m0" vpn2socks_tunnel_up)"

# A transfer through SOCKS, slowed so that /readyz and /metrics are read while it runs.
rm -f "$S/big"
lab_in_client curl -sS -f -m 40 --limit-rate 8M -x "$PROXY" -o "$S/big" \
    "$LAB_WEB_URL/$LAB_BIG_FILE" 2>"$S/curl.err" &
xfer=$!
# Until the first bytes have come: a fixed pause would read /metrics before curl's connection on a
# slow machine (a sanitizer build) and count it as not open.
for _ in $(seq 200); do
    [ "$(stat -c %s "$S/big" 2>/dev/null || echo 0)" -gt 0 ] && break
    sleep 0.05
done
lab_check_eq "/readyz during the transfer: 200 ready" "200 ready" "$(get /readyz)"
scrape "$S/m_mid" || lab_fail "/metrics during the transfer"
lab_check_eq "during the transfer: connections_open{listener=socks} 1" 1 \
    "$(q "$S/m_mid" vpn2socks_connections_open listener=socks)"
wait "$xfer" && rc=0 || rc=$?
lab_check_eq "the transfer finished (curl exit 0)" 0 "$rc"
lab_check "... byte-exact" v2s_check_file "$S/big" "$LAB_BIG_SHA256" "$LAB_BIG_SIZE"
# One rejected destination (--others reject), one direct (--exclude: nothing listens there, it
# still counts), one name through socks5h (a DNS query through the tunnel).
lab_in_client curl -sS -m 5 -x "$PROXY" -o /dev/null "http://192.0.2.7:80/" 2>/dev/null
lab_in_client curl -sS -m 5 -x "$PROXY" -o /dev/null "http://$LAB_SERVER_IP:9/" 2>/dev/null
lab_check "a name through socks5h" lab_in_client curl -sS -f -m 10 -x "$PROXY_H" -o /dev/null \
    "http://$LAB_WEB_NAME:$LAB_WEB_PORT/"
# The curls have ended; their relays close after them. Scrape until the socks gauge is back to 0
# (for at most 5 s): the check below still fails if it never gets there.
for _ in $(seq 50); do
    scrape "$S/m1" || lab_die "no /metrics after the transfer"
    [ "$(q "$S/m1" vpn2socks_connections_open listener=socks)" = 0 ] && break
    sleep 0.1
done

grew() {
    local d
    d=$(delta "$S/m0" "$S/m1" vpn2socks_tunnel_bytes_total direction=in) || return 1
    echo "bytes in grew by $d, the file is $LAB_BIG_SIZE"
    [ "$d" -ge "$LAB_BIG_SIZE" ]
}
lab_check "tunnel_bytes_total{direction=in} grew by at least the file's size" grew
lab_check_eq "connections_total{socks,tunnel}: +2 (the file, the name)" 2 \
    "$(delta "$S/m0" "$S/m1" vpn2socks_connections_total listener=socks verdict=tunnel)"
lab_check_eq "connections_total{socks,rejected}: +1" 1 \
    "$(delta "$S/m0" "$S/m1" vpn2socks_connections_total listener=socks verdict=rejected)"
lab_check_eq "connections_total{socks,direct}: +1" 1 \
    "$(delta "$S/m0" "$S/m1" vpn2socks_connections_total listener=socks verdict=direct)"
lab_check_eq "connections_open{socks} back to 0" 0 "$(q "$S/m1" vpn2socks_connections_open listener=socks)"
lab_check_eq "dns_queries_total: +1" 1 "$(delta "$S/m0" "$S/m1" vpn2socks_dns_queries_total)"

# SIGUSR1 at a quiet moment: the log's figures are /metrics's.
scrape "$S/m2"
dumps=$(grep -c 'metrics: vpn2socks_stack_held_bytes' "$S/v2s.log")
kill -USR1 "$V2S_PID"
lab_wait_count "$S/v2s.log" 'metrics: vpn2socks_stack_held_bytes' "$((dumps + 1))" 5 ||
    lab_fail "SIGUSR1: no metrics lines in the log"
same() {
    local args a b
    for args in "vpn2socks_tunnel_bytes_total direction=in" "vpn2socks_tunnel_packets_total direction=out" \
        "vpn2socks_connections_total listener=socks verdict=tunnel" \
        "vpn2socks_connections_total listener=socks verdict=rejected" "vpn2socks_dns_queries_total" \
        "vpn2socks_tunnel_reconnects_total reason=session"; do
        # shellcheck disable=SC2086
        a=$(q "$S/m2" $args) && b=$(q --log "$S/v2s.log" $args) || return 1
        echo "$args: /metrics $a, log $b"
        [ "$a" = "$b" ] || return 1
    done
}
lab_check "SIGUSR1 logs the figures /metrics shows" same

# The server goes away: not ready, and why; then back, ready, and a reconnect counted.
lab_stop_openvpn_server st
notready() {
    local i r
    for ((i = 0; i < 50; i++)); do
        r=$(get /readyz)
        case $r in "503 tunnel reconnecting"*) echo "$r"; return 0 ;; esac
        sleep 0.2
    done
    echo "last: $r"
    return 1
}
lab_check "/readyz with the server down: 503 tunnel reconnecting" notready
lab_check_eq "/healthz with the server down: still 200" "200 ok" "$(get /healthz)"
ups=$(grep -c 'tunnel up: address' "$S/v2s.log")
lab_openvpn_launch st
if lab_wait_count "$S/v2s.log" 'tunnel up: address' "$((ups + 1))" 40; then
    lab_pass "the server is back: vpn2socks reconnected"
else
    lab_fail "the server is back: vpn2socks reconnected"
fi
lab_check_eq "/readyz after the reconnect: 200 ready" "200 ready" "$(get /readyz)"
scrape "$S/m3"
lab_check_eq "reconnects_total{reason=session}: +1 (the server's exit notification)" 1 \
    "$(delta "$S/m2" "$S/m3" vpn2socks_tunnel_reconnects_total reason=session)"
lab_check "vpn2socks is still running" v2s_alive
lab_check_eq "SIGTERM: exit status 0" 0 "$(v2s_stop)"

lab_finish
