#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# -R remote forwards: vpn2socks as nobody, with --config against Debian's openvpn 2.6 server
# (which also pushes an IPv6 tunnel address when the lab has IPv6), and services on the client
# namespace's own loopback that only the forwards expose:
#   web   -R 8080:127.0.0.1:WEB       the lab's web server on the client's 127.0.0.1: curl from the
#                                     server's namespace to the tunnel address fetches a file
#                                     byte-exact (sha256), over IPv4 and, with IPv6, over IPv6
#   echo  -R 7777:localhost:ECHO      a name resolved on the client: 10 MiB of random bytes come
#                                     back intact (half-close ends it)
#   dead  -R 7001:127.0.0.1:CLOSED    nothing listens there: the connection is reset, and logged
#   wrong -R 10.96.0.9:7002:...       an address the tunnel does not have: a warning at tunnel up
# and a port not forwarded is refused (a reset), and ping to the tunnel address is answered. Then
# the server restarts: the forwards outlive the tunnel going down and coming back.
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
LAB_BIG_MB=4 lab_setup --no-ocserv
v2s_prepare

WEB_R=8080      # the forwarded ports, on the tunnel address
ECHO_R=7777
DEAD_R=7001
WRONG_R=7002
LOCAL_WEB=18080 # the services, on the client's loopback
LOCAL_ECHO=17777

# The client's services: nothing outside its namespace reaches its loopback but the forwards.
lab_bg cli-web ip netns exec "$LAB_CLIENT_NS" "$LAB_PY" "$here/web_server.py" 127.0.0.1 "$LOCAL_WEB" "$LAB_WEB_ROOT"
lab_bg cli-echo ip netns exec "$LAB_CLIENT_NS" "$LAB_PY" "$here/echo_server.py" 127.0.0.1 "$LOCAL_ECHO"
lab_wait_listen "$LAB_CLIENT_NS" tcp 127.0.0.1 "$LOCAL_WEB" || lab_die "the client's web server did not start"
lab_wait_listen "$LAB_CLIENT_NS" tcp 127.0.0.1 "$LOCAL_ECHO" || lab_die "the client's echo server did not start"
# A port where nothing listens on the client.
DEAD_LOCAL=$(lab_in_client "$LAB_PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

six=()
[ -n "$LAB_SERVER_IP6" ] && six=(-- "server-ipv6 fd00:97:77::/64")
lab_start_openvpn_server rev --proto udp --exit-notify --keepalive "2 10" "${six[@]}"
lab_openvpn_client_config rev
v2s_start_ovpn rev "$LAB_OVPN_CLIENT_DIR" --others reject \
    -R "$WEB_R:127.0.0.1:$LOCAL_WEB" \
    -R "$ECHO_R:localhost:$LOCAL_ECHO" \
    -R "$DEAD_R:127.0.0.1:$DEAD_LOCAL" \
    -R "10.96.0.9:$WRONG_R:127.0.0.1:$LOCAL_WEB" || lab_die "vpn2socks did not bring the tunnel up"

# The tunnel addresses, as vpn2socks logs them at tunnel up.
TUN4=$(sed -n 's/.*tunnel up: address \([0-9.]*\)\/.*/\1/p' "$S/v2s.log" | head -n 1)
TUN6=$(sed -n 's/.*tunnel up: address \([0-9a-f:]*:[0-9a-f:]*\)\/.*/\1/p' "$S/v2s.log" | head -n 1)
[ -n "$TUN4" ] || lab_die "no IPv4 tunnel address in the log"
lab_log "tunnel addresses: $TUN4 ${TUN6:-(no IPv6)}"

fetch() { # URL_HOST
    rm -f "$S/big"
    lab_in_server curl -sS -f --connect-timeout 10 -m 60 -o "$S/big" "http://$1:$WEB_R/$LAB_BIG_FILE" || return 1
    v2s_check_file "$S/big" "$LAB_BIG_SHA256" "$LAB_BIG_SIZE"
}

# 10 MiB through the echo forward: one thread writes then half-closes, the main one reads to EOF.
echo_remote() {
    lab_in_server timeout 60 "$LAB_PY" "$here/echo_check.py" "$TUN4" "$ECHO_R" --random $((10 << 20))
}

# connect() to PORT on the tunnel address: "refused" (a reset answered the SYN), "reset" (the
# handshake completed, then a reset: it may reach connect() itself, which waits for the handshake
# in poll() and reads the socket's error after it), or what else happened.
probe() {
    lab_in_server timeout 20 "$LAB_PY" - "$TUN4" "$1" <<'PY'
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
except ConnectionRefusedError:
    print("refused"); sys.exit(0)
except ConnectionResetError:
    print("reset"); sys.exit(0)
except OSError as e:
    print(f"connect: {e}"); sys.exit(0)
try:
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    b = s.recv(4096)
    print("reset" if not b else f"got {b[:20]!r}")
except (ConnectionResetError, BrokenPipeError):
    print("reset")
PY
}

dead_logged() {
    local want="-> 127.0.0.1:$DEAD_LOCAL: connection refused (remote forward *:$DEAD_R, connection reset)"
    grep -qF -- "$want" "$S/v2s.log" || { echo "not in the log: $want"; tail -n 5 "$S/v2s.log"; return 1; }
}

wrong_warned() {
    local want="remote forward 10.96.0.9:$WRONG_R: 10.96.0.9 is not the tunnel's address"
    grep -qF -- "$want" "$S/v2s.log" || { echo "not in the log: $want"; grep -F "remote forward" "$S/v2s.log"; return 1; }
}

relay_logged() {
    local open="(remote forward *:$WEB_R) open"
    if ! grep -qF -- "$open" "$S/v2s.log" ||
        ! lab_wait_count "$S/v2s.log" "remote forward \\*:$WEB_R\\) closed \\(" 1 5; then
        echo "no '$open' and closed lines"
        grep -F "remote forward" "$S/v2s.log" | tail -n 5
        return 1
    fi
}

lab_check "-R to the client's web server: curl over IPv4 fetches a file byte-exact (sha256)" fetch "$TUN4"
lab_check "-R to a name (localhost): 10 MiB come back intact through the echo server" echo_remote
lab_check_eq "a port no -R forwards: refused (a reset)" refused "$(probe 7999)"
lab_check_eq "-R to a port where nothing listens: reset" reset "$(probe "$DEAD_R")"
lab_check "... and logged with the forward and the reason" dead_logged
lab_check "-R on an address the tunnel does not have: warned at tunnel up" wrong_warned
lab_check "the relays log their open and closed lines" relay_logged
lab_check "ping to the tunnel address is answered" lab_in_server ping -c 3 -i 0.2 -W 2 "$TUN4"
# The server pushes an IPv6 address whenever the lab has IPv6 (server-ipv6 above): then a tunnel
# without one is a failure, not a reason to skip.
if [ -z "$LAB_SERVER_IP6" ]; then
    lab_skip "IPv6 (the lab has no IPv6)"
elif [ -z "$TUN6" ]; then
    lab_fail "IPv6: the server pushed fd00:97:77::/64 and vpn2socks logged no IPv6 tunnel address"
else
    lab_check "-R over IPv6: curl fetches the file byte-exact" fetch "[$TUN6]"
    lab_check "ping -6 to the tunnel's IPv6 address is answered" lab_in_server ping -6 -c 3 -i 0.2 -W 2 "$TUN6"
fi
# The tunnel goes down and comes back (the server restarts and tells the client): the same
# listeners serve again, on whatever address the tunnel has now.
ups=$(grep -c 'tunnel up: address' "$S/v2s.log")
lab_restart_openvpn_server rev
if lab_wait_count "$S/v2s.log" 'tunnel up: address' "$((ups + 1))" 40; then
    lab_pass "the server restarted: vpn2socks reconnected"
    TUN4=$(sed -n 's/.*tunnel up: address \([0-9.]*\)\/.*/\1/p' "$S/v2s.log" | tail -n 1)
    lab_check "-R after the reconnect: curl fetches the file byte-exact" fetch "$TUN4"
else
    lab_fail "the server restarted: vpn2socks reconnected"
fi
lab_check "vpn2socks is still running" v2s_alive
lab_check_eq "SIGTERM: exit status 0" 0 "$(v2s_stop)"

lab_finish
