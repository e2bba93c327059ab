#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# UDP forwards: vpn2socks as nobody, with --config against Debian's openvpn 2.6 server and
# --others reject:
#   dns   -L 127.0.0.1:5353:10.99.0.1:53/udp      dig through it gets the lab's dnsmasq answer
#   echo  -L 127.0.0.1:17777:10.99.0.1:7777/udp   datagrams of 1 to 9000 bytes (past the tunnel
#                                                 MTU: fragmented) echoed byte-exact, two clients
#                                                 at once each getting only its own
#   out   -L 127.0.0.1:5354:SERVER_VETH_IP:53/udp outside the pushed routes: nothing sent, and
#                                                 the log says why, once
#   back  -R 7000:127.0.0.1:17007/udp             from the server's namespace, datagrams to the
#                                                 client's tunnel address port 7000 reach a UDP
#                                                 echo on the client's loopback and come back;
#                                                 port 7001, not forwarded, answers ICMP port
#                                                 unreachable (ECONNREFUSED on a connected socket)
#   shut  -R 7002:127.0.0.1:17008/udp             nothing listens on 17008: the refusal comes
#                                                 back as ICMP port unreachable too
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
command -v dig >/dev/null || lab_die "no dig; run scripts/install-deps.sh (bind9-dnsutils)"
LAB_BIG_MB=1 lab_setup --no-ocserv
v2s_prepare

DNS_FWD=5353
ECHO_FWD=17777
OUT_FWD=5354
BACK_PORT=7000
NOT_FORWARDED=7001
SHUT_PORT=7002
LOCAL_ECHO=17007
LOCAL_SHUT=17008 # nothing listens there

# The service -R reaches: a UDP (and TCP) echo on the client's loopback.
lab_bg local-echo ip netns exec "$LAB_CLIENT_NS" "$LAB_PY" "$here/echo_server.py" 127.0.0.1 "$LOCAL_ECHO"
lab_wait_listen "$LAB_CLIENT_NS" udp 127.0.0.1 "$LOCAL_ECHO" || lab_die "the client's echo did not start"

lab_start_openvpn_server udp --proto udp
lab_openvpn_client_config udp
v2s_start_ovpn udp "$LAB_OVPN_CLIENT_DIR" --others reject \
    -L "127.0.0.1:$DNS_FWD:$LAB_INTERNAL_IP:53/udp" \
    -L "127.0.0.1:$ECHO_FWD:$LAB_INTERNAL_IP:$LAB_ECHO_PORT/udp" \
    -L "127.0.0.1:$OUT_FWD:$LAB_SERVER_IP:53/udp" \
    -R "$BACK_PORT:127.0.0.1:$LOCAL_ECHO/udp" \
    -R "$SHUT_PORT:127.0.0.1:$LOCAL_SHUT/udp" || lab_die "vpn2socks did not bring the tunnel up"
TUN_ADDR=$(sed -n 's/.*tunnel up: address \([0-9.]*\)\/.*/\1/p' "$S/v2s.log" | head -n 1)
[ -n "$TUN_ADDR" ] || lab_die "no tunnel address in the log"
lab_log "the client's tunnel address: $TUN_ADDR"

dig_forward() {
    local got
    got=$(lab_in_client dig @127.0.0.1 -p "$DNS_FWD" +short +time=3 +tries=2 "$LAB_WEB_NAME" A) || return 1
    [ "$got" = "$LAB_INTERNAL_IP" ] || { echo "dig answered '$got', not $LAB_INTERNAL_IP"; return 1; }
}

# udp_echo lab_in_client|lab_in_server HOST PORT SIZES...: from a connected socket in that
# namespace, each size (random bytes) must come back byte-exact. A datagram may be lost on the way
# (UDP): up to three tries each.
udp_echo() {
    local where=$1
    shift
    "$where" timeout 60 "$LAB_PY" - "$@" <<'PY'
import os, socket, sys
host, port, sizes = sys.argv[1], int(sys.argv[2]), [int(n) for n in sys.argv[3:]]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, port))
s.settimeout(3)
for n in sizes:
    data = os.urandom(n)
    for attempt in range(3):
        s.send(data)
        try:
            got = s.recv(65535)
        except socket.timeout:
            continue
        if got != data:
            print(f"{n} bytes: {len(got)} came back, not the same"); sys.exit(1)
        print(f"{n} bytes: intact")
        break
    else:
        print(f"{n} bytes: no echo"); sys.exit(1)
PY
}

# Two clients of one forward, interleaved: each gets its own datagrams back, never the other's.
two_clients() {
    lab_in_client timeout 60 "$LAB_PY" - "$ECHO_FWD" <<'PY'
import socket, sys
port = int(sys.argv[1])
a, b = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
for s in (a, b):
    s.connect(("127.0.0.1", port))
    s.settimeout(3)
for i in range(5):
    a.send(b"A%d" % i)
    b.send(b"B%d" % i)
    ga, gb = a.recv(100), b.recv(100)
    if ga != b"A%d" % i or gb != b"B%d" % i:
        print(f"round {i}: a got {ga!r}, b got {gb!r}"); sys.exit(1)
print("each client got only its own")
PY
}

# A destination the routes reject: nothing comes back, and the log says why, once.
rejected_forward() {
    lab_in_client timeout 20 "$LAB_PY" - "$OUT_FWD" <<'PY' || return 1
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.settimeout(1)
for _ in range(3):
    s.send(b"x")
try:
    print(f"got {s.recv(100)!r}"); sys.exit(1)
except socket.timeout:
    print("nothing came back")
PY
    local want="dial: UDP to $LAB_SERVER_IP:53: not allowed by the routes"
    lab_wait_count "$S/v2s.log" "$want" 1 5 || { echo "not in the log: $want"; tail -n 5 "$S/v2s.log"; return 1; }
    [ "$(grep -cF -- "$want" "$S/v2s.log")" = 1 ] || { echo "logged more than once: $want"; return 1; }
}

# refused PORT: a datagram from the server's namespace to the tunnel address's PORT is answered
# with ICMP port unreachable, which a connected socket reports as ECONNREFUSED.
refused() {
    lab_in_server timeout 20 "$LAB_PY" - "$TUN_ADDR" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((sys.argv[1], int(sys.argv[2])))
s.settimeout(2)
for _ in range(3):
    try:
        s.send(b"anyone?")
        print(f"got {s.recv(100)!r}"); sys.exit(1)
    except ConnectionRefusedError:
        print("connection refused (ICMP port unreachable)"); sys.exit(0)
    except socket.timeout:
        pass
print("no answer at all"); sys.exit(1)
PY
}

flows_logged() {
    local re
    for re in "udp 127\.0\.0\.1:[0-9]+ -> $LAB_INTERNAL_IP:53 \(forward 127\.0\.0\.1:$DNS_FWD\) open" \
        "udp 127\.0\.0\.1:[0-9]+ -> $LAB_INTERNAL_IP:$LAB_ECHO_PORT \(forward 127\.0\.0\.1:$ECHO_FWD\) open" \
        "udp [0-9.]+:[0-9]+ -> 127\.0\.0\.1:$LOCAL_ECHO \(forward tunnel port $BACK_PORT\) open"; do
        grep -qE -- "$re" "$S/v2s.log" || { echo "not in the log: $re"; return 1; }
    done
}

closed_logged() {
    grep -qE "udp 127\.0\.0\.1:[0-9]+ -> $LAB_INTERNAL_IP:$LAB_ECHO_PORT \(forward 127\.0\.0\.1:$ECHO_FWD\) closed \([1-9][0-9]* datagrams up, [1-9][0-9]* down\)" "$S/v2s.log"
}

lab_check "-L/udp to the lab's DNS: dig answers $LAB_WEB_NAME = $LAB_INTERNAL_IP" dig_forward
lab_check "-L/udp to the echo: 1 to 9000 bytes (past the MTU) come back byte-exact" \
    udp_echo lab_in_client 127.0.0.1 "$ECHO_FWD" 1 1000 1472 4000 9000
lab_check "-L/udp: two clients at once, each gets only its own answers" two_clients
lab_check "-L/udp to a destination --others reject covers: nothing sent, logged once" rejected_forward
lab_check "-R/udp from the server's namespace: 1 to 4000 bytes echoed by the client's loopback" \
    udp_echo lab_in_server "$TUN_ADDR" "$BACK_PORT" 1 1000 4000
lab_check "a tunnel port not forwarded: ICMP port unreachable (ECONNREFUSED)" refused "$NOT_FORWARDED"
lab_check "-R/udp to a closed port of this host: ICMP port unreachable (ECONNREFUSED)" refused "$SHUT_PORT"
lab_check "each flow's open is logged" flows_logged
lab_check "vpn2socks is still running" v2s_alive
lab_check_eq "SIGTERM: exit status 0" 0 "$(v2s_stop)"
lab_check "at exit each flow's close is logged with its datagrams" closed_logged

lab_finish
