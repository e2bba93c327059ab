#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# Many connections closed at once, over a UDP OpenVPN tunnel: every close must reach the server.
# CLOSE_COUNT (default 4,000) idle connections are opened through the SOCKS5 listener to
# netbench serve behind the tunnel, then the client closes them all in one go. Sent in one burst,
# their FINs overflowed the VPN server's UDP socket buffer and lwIP retransmitted the lost ones
# only 3 s, 9 s, 21 s... later, together, losing many again: connections stayed open at the
# server for minutes. Checked: all opened, all closes seen by the server within CLOSE_BOUND_S
# (a correctness bound, not a speed target), vpn2socks alive and still relaying afterwards.
# Needs root (skips with exit 77 otherwise). The binary: $VPN2SOCKS_BIN, else build/vpn2socks.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/openvpn.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/v2s.sh"

CLOSE_COUNT=${CLOSE_COUNT:-4000}
CLOSE_BOUND_S=${CLOSE_BOUND_S:-20}
NB_PORT=8090

lab_require_root
lab_openvpn_require
# the holder, vpn2socks and the server each need a descriptor per connection
ulimit -n $((CLOSE_COUNT * 2 + 1000)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((CLOSE_COUNT + 500)) ]; then
    echo "SKIP: open files limit $(ulimit -n) is too low for $CLOSE_COUNT connections"
    exit 77
fi
bin_dir=$(dirname "$(readlink -f "${VPN2SOCKS_BIN:-$here/../../build/vpn2socks}")")
LAB_BIG_MB=1 lab_setup --no-ocserv
v2s_prepare

# netbench from the same build, else compiled here
NETBENCH=$bin_dir/bench/netbench
if [ ! -x "$NETBENCH" ]; then
    NETBENCH=$LAB_RUN_DIR/netbench
    cc -O2 -o "$NETBENCH" "$here/../../bench/netbench.c" -lcrypto || lab_die "compiling bench/netbench.c failed"
fi
lab_bg netbench ip netns exec "$LAB_SERVER_NS" "$NETBENCH" serve "$LAB_INTERNAL_IP" "$NB_PORT" \
    "$LAB_WEB_ROOT/$LAB_SMALL_FILE"
lab_wait_listen "$LAB_SERVER_NS" tcp "$LAB_INTERNAL_IP" "$NB_PORT" || lab_die "netbench serve did not start"
# "open N accepted N": connections the server holds (its /stats request itself included)
server_open() { lab_in_server curl -s -m 5 "http://$LAB_INTERNAL_IP:$NB_PORT/stats" | awk '{print $2}'; }

lab_start_openvpn_server close --proto udp
lab_openvpn_client_config close
# all of them through one listener: above its default cap (1024), so the caps are raised to fit
v2s_start_ovpn close "$LAB_OVPN_CLIENT_DIR" --listener-max-connections $((CLOSE_COUNT + 100)) \
    --max-connections $((CLOSE_COUNT + 100)) || lab_die "vpn2socks did not bring the tunnel up"

BASE=$(server_open)
fifo=$LAB_RUN_DIR/hold.fifo
HOLD_OUT=$LAB_RUN_DIR/hold.out
mkfifo "$fifo"
lab_in_client "$NETBENCH" hold --socks "$SOCKS_ADDR:$SOCKS_PORT" "$LAB_INTERNAL_IP" "$NB_PORT" "$CLOSE_COUNT" \
    <"$fifo" >"$HOLD_OUT" 2>&1 &
HOLD_PID=$!
exec 7>"$fifo"
lab_wait_file_match "$HOLD_OUT" '^opened' 60 "$HOLD_PID"

all_opened() {
    local opened
    opened=$(awk '/^opened/ {print $2}' "$HOLD_OUT")
    [ "${opened:-0}" = "$CLOSE_COUNT" ] || { cat "$HOLD_OUT"; return 1; }
}
server_holds_all() {
    local n
    for ((i = 0; i < 50; i++)); do
        n=$(server_open)
        [ "$((n - BASE))" -ge "$CLOSE_COUNT" ] && return 0
        sleep 0.1
    done
    echo "the server holds $((n - BASE)) of $CLOSE_COUNT"
    return 1
}
lab_check "$CLOSE_COUNT connections opened through SOCKS5" all_opened
lab_check "the server holds all $CLOSE_COUNT" server_holds_all

# the client closes every connection at once
exec 7>&-
wait "$HOLD_PID"
T0=$(date +%s.%N)
all_closed() {
    local n=''
    while :; do
        n=$(server_open)
        if [ -n "$n" ] && [ "$n" -le "$BASE" ]; then
            awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f\n", b - a}' >"$LAB_RUN_DIR/closed_s"
            return 0
        fi
        if [ "$(awk -v a="$T0" -v b="$(date +%s.%N)" -v m="$CLOSE_BOUND_S" 'BEGIN {print (b - a >= m)}')" = 1 ]; then
            echo "$((${n:-0} - BASE)) connections still open at the server after ${CLOSE_BOUND_S} s"
            ip netns exec "$LAB_SERVER_NS" nstat -az UdpRcvbufErrors 2>/dev/null | grep Udp
            return 1
        fi
        sleep 0.2
    done
}
lab_check "all $CLOSE_COUNT closes reach the server within ${CLOSE_BOUND_S} s" all_closed &&
    lab_log "all $CLOSE_COUNT closes reached the server in $(cat "$LAB_RUN_DIR/closed_s") s"
lab_check "vpn2socks still running" v2s_alive
lab_check "a new connection after the burst relays" \
    v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_SMALL_FILE" "$S/after" 20 "$LAB_SMALL_SHA256"
lab_check_eq "clean stop" 0 "$(v2s_stop)"
lab_stop_openvpn_server close

lab_finish
