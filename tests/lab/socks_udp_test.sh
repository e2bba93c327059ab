#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# SOCKS5 UDP ASSOCIATE and BIND, and IPv6: vpn2socks as nobody with --config against Debian's
# openvpn 2.6 server (which pushes an IPv6 tunnel address too when the lab has IPv6), listeners on
# 127.0.0.1:1080 and [::1]:1082.
#   UDP ASSOCIATE with python3-socks (PySocks): 20 datagrams of 1 to 1200 bytes to the lab's UDP
#   echo by address and by a name the tunnel's DNS resolves, each back intact behind a header
#   naming the echo, and by its address written ::ffff:a.b.c.d (ATYP 4, as a client on a
#   dual-stack socket names it), answered behind a header naming it so; an A query for
#   web.lab.test to the lab's dnsmasq answered 10.99.0.1, which dnsmasq saw come from the tunnel
#   address; each association closed with its TCP connection.
#   BIND, scripted (tests/lab/socks_bind.py, playing FTP's active mode): the first reply names the
#   tunnel address; a connection from another address of the VPN is reset; one from DST.ADDR gets
#   the second reply naming it, and 1 MiB of random bytes goes to the client and back intact. A
#   BIND for an address the routes send direct is answered 2.
#   IPv6: curl --socks5 to a web server on the VPN's IPv6 address (ATYP 4), UDP datagrams to an
#   IPv6 echo, a BIND for an IPv6 peer (the tunnel's IPv6 address announced), and through the [::1] listener curl --socks5-hostname and UDP ASSOCIATE (a client
#   of our own: PySocks reaches proxies over IPv4 only).
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
# A missing dependency fails, as in lab_require_root: a skip would pass unseen in CI.
"$LAB_PY" -c 'import socks' 2>/dev/null ||
    { echo "lab: missing python3-socks; run scripts/install-deps.sh" >&2; exit 1; }
LAB_BIG_MB=1 lab_setup --no-ocserv
v2s_prepare

SRV6=fd00:97:77::1 # the openvpn server's tunnel address with server-ipv6 below
WEB6_PORT=8081     # a web server and an echo on the server namespace's every IPv6 address
ECHO6_PORT=7778
six=()
if [ -n "$LAB_SERVER_IP6" ]; then
    six=(-- "server-ipv6 fd00:97:77::/64")
    lab_bg web6 ip netns exec "$LAB_SERVER_NS" "$LAB_PY" "$here/web_server.py" :: "$WEB6_PORT" "$LAB_WEB_ROOT"
    lab_bg echo6 ip netns exec "$LAB_SERVER_NS" "$LAB_PY" "$here/echo_server.py" :: "$ECHO6_PORT"
fi
lab_start_openvpn_server udp --proto udp "${six[@]}"
lab_openvpn_client_config udp
LISTEN6=()
[ -n "$LAB_SERVER_IP6" ] && LISTEN6=(-D "[::1]:1082")
v2s_start_ovpn udp "$LAB_OVPN_CLIENT_DIR" "${LISTEN6[@]}" || lab_die "vpn2socks did not bring the tunnel up"
TUN4=$(sed -n 's/.*tunnel up: address \([0-9.]*\)\/.*/\1/p' "$S/v2s.log" | head -n 1)
[ -n "$TUN4" ] || lab_die "no IPv4 tunnel address in the log"
P=127.0.0.1:$SOCKS_PORT

udp() { lab_client_nobody timeout 60 "$LAB_PY" "$here/socks_udp.py" 127.0.0.1 "$SOCKS_PORT" "$@"; }
udp_at() { lab_client_nobody timeout 60 "$LAB_PY" "$here/socks_udp.py" "$@"; }
lab_check "UDP ASSOCIATE: 20 datagrams to the echo at $LAB_INTERNAL_IP:$LAB_ECHO_PORT, intact, source named" \
    udp "$LAB_INTERNAL_IP" "$LAB_ECHO_PORT"
lab_check "UDP ASSOCIATE: 20 datagrams to ::ffff:$LAB_INTERNAL_IP:$LAB_ECHO_PORT, source named so" \
    udp "::ffff:$LAB_INTERNAL_IP" "$LAB_ECHO_PORT"
lab_check "UDP ASSOCIATE: 20 datagrams to $LAB_WEB_NAME:$LAB_ECHO_PORT (the name resolved in the tunnel)" \
    udp "$LAB_WEB_NAME" "$LAB_ECHO_PORT"
answer=$(lab_client_nobody timeout 30 "$LAB_PY" "$here/dns_query.py" "$LAB_DNS_IP" "$LAB_WEB_NAME" --socks "$P" 2>&1)
lab_check_eq "UDP ASSOCIATE: an A query for $LAB_WEB_NAME to dnsmasq at $LAB_DNS_IP:53" \
    "NOERROR $LAB_INTERNAL_IP" "$answer"
lab_check "... which dnsmasq saw come from the tunnel address $TUN4" \
    grep -qE "query\[A\] $LAB_WEB_NAME from $TUN4\$" "$LAB_RUN_DIR/log/dnsmasq.log"

# BIND: the client in the background, the peer from the server's namespace.
# bind_start NAME DST: starts the client; waits for its first reply; sets REP ADDR PORT
bind_start() {
    lab_bg "bind-$1" ip netns exec "$LAB_CLIENT_NS" setpriv --reuid=nobody --regid=nogroup --clear-groups \
        "$LAB_PY" "$here/socks_bind.py" client 127.0.0.1 "$SOCKS_PORT" "$2" "$S/bind-$1"
    lab_wait_file_match "$S/bind-$1.ready" '^[0-9]+ ' 10 || lab_die "BIND $1: no first reply"
    read -r REP ADDR PORT <"$S/bind-$1.ready"
}
peer() { lab_in_server timeout 60 "$LAB_PY" "$here/socks_bind.py" peer "$@"; }

bind_start ok "$LAB_INTERNAL_IP"
lab_check_eq "BIND $LAB_INTERNAL_IP: the first reply names the tunnel address" "0 $TUN4" "$REP $ADDR"
lab_check_eq "... a connection from another address of the VPN ($LAB_SERVER_IP) is reset" reset \
    "$(peer "$LAB_SERVER_IP" "$ADDR" "$PORT" 0)"
lab_check_eq "... the one from $LAB_INTERNAL_IP: 1 MiB to the client and back, intact" "ok 1048576 both ways" \
    "$(peer "$LAB_INTERNAL_IP" "$ADDR" "$PORT" 1048576)"
lab_check "... the client's second reply named the peer" \
    lab_wait_file_match "$LAB_RUN_DIR/log/bind-ok.log" "^peer $LAB_INTERNAL_IP [0-9]+\$" 5
lab_check "... and it echoed every byte" lab_wait_file_match "$LAB_RUN_DIR/log/bind-ok.log" '^echoed 1048576 bytes$' 5
lab_check_eq "... the port took one connection: another is refused" refused \
    "$(lab_in_server timeout 20 "$LAB_PY" -c 'import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10); print("connected")
except ConnectionRefusedError:
    print("refused")' "$ADDR" "$PORT")"
bind_start direct "$LAB_SERVER_IP"
lab_check_eq "BIND $LAB_SERVER_IP (not routed into the tunnel): reply 2" 2 "$REP"
lab_check "log: the BIND relay opened and closed, 1 MiB each way" grep -qE -- \
    "<- $LAB_INTERNAL_IP:[0-9]+ \(BIND, tunnel\) closed \(1048576 bytes up, 1048576 down\)" "$S/v2s.log"

if [ -n "$LAB_SERVER_IP6" ]; then
    lab_wait_listen "$LAB_CLIENT_NS" tcp ::1 1082 || lab_die "no listener on [::1]:1082"
    got=$(lab_in_client curl -sS -m 20 --socks5 "$P" "http://[$SRV6]:$WEB6_PORT/$LAB_SMALL_FILE" 2>&1)
    lab_check_eq "IPv6: curl --socks5 to http://[$SRV6]:$WEB6_PORT/ (ATYP 4)" "$(cat "$LAB_WEB_ROOT/$LAB_SMALL_FILE")" "$got"
    lab_check "... through the tunnel" grep -qF -- "-> [$SRV6]:$WEB6_PORT (tunnel) open" "$S/v2s.log"
    lab_check "IPv6: UDP ASSOCIATE, 20 datagrams to the echo at [$SRV6]:$ECHO6_PORT" udp "$SRV6" "$ECHO6_PORT"
    got=$(lab_in_client curl -sS -m 20 --socks5-hostname "[::1]:1082" "http://$LAB_WEB_NAME:$LAB_WEB_PORT/$LAB_SMALL_FILE" 2>&1)
    lab_check_eq "IPv6 listener: curl --socks5-hostname [::1]:1082 fetches http://$LAB_WEB_NAME/" \
        "$(cat "$LAB_WEB_ROOT/$LAB_SMALL_FILE")" "$got"
    lab_check "IPv6 listener: UDP ASSOCIATE (the relay on ::1), 20 datagrams to $LAB_WEB_NAME:$LAB_ECHO_PORT" \
        udp_at ::1 1082 "$LAB_WEB_NAME" "$LAB_ECHO_PORT"
    lab_check "... and to [$SRV6]:$ECHO6_PORT" udp_at ::1 1082 "$SRV6" "$ECHO6_PORT"
    TUN6=$(sed -n 's/.*tunnel up: address \([0-9a-f:]*:[0-9a-f:]*\)\/.*/\1/p' "$S/v2s.log" | head -n 1)
    bind_start six "$SRV6"
    lab_check_eq "IPv6: BIND $SRV6: the first reply names the tunnel's IPv6 address" "0 $TUN6" "$REP $ADDR"
    lab_check_eq "... 1 MiB from $SRV6 to the client and back, intact" "ok 1048576 both ways" \
        "$(peer "$SRV6" "$ADDR" "$PORT" 1048576)"
else
    lab_skip "IPv6: the lab has no IPv6"
fi

# Four associations over IPv4 (echo by address, mapped address and name, DNS), three more with
# IPv6.
want=4
[ -n "$LAB_SERVER_IP6" ] && want=7
lab_check_eq "log: $want UDP associations opened" "$want" "$(grep -c 'SOCKS association on .* open$' "$S/v2s.log")"
lab_check "... each closed with its TCP connection" \
    lab_wait_count "$S/v2s.log" 'SOCKS association on .* closed \(' "$want" 5
lab_check_eq "... having dropped nothing" 0 "$(grep -c 'SOCKS association on .* closed .*dropped' "$S/v2s.log")"
lab_check "vpn2socks is still running" v2s_alive
lab_check_eq "SIGTERM: exit status 0" 0 "$(v2s_stop)"
lab_finish
