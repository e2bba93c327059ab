#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# -L local forwards: vpn2socks as nobody, with --config against Debian's openvpn 2.6 server and
# --others reject, three forwards on the client's loopback:
#   web   -L 127.0.0.1:18080:web.lab.test:8080   a name, resolved through the tunnel's DNS: curl
#                                                fetches the lab's 100 MiB file byte-exact (sha256)
#   echo  -L 127.0.0.1:17777:10.99.0.1:7777      10 MiB of random bytes come back intact through
#                                                the lab's echo server (half-close ends it)
#   out   -L 127.0.0.1:18090:SERVER_VETH_IP:8080 outside the pushed routes, so rejected: the
#                                                client's connection is reset, no byte comes, and
#                                                the log names the forward and the reason
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
LAB_BIG_MB=100 lab_setup --no-ocserv
v2s_prepare

WEB_FWD=18080
ECHO_FWD=17777
OUT_FWD=18090

lab_start_openvpn_server fwd --proto udp
lab_openvpn_client_config fwd
v2s_start_ovpn fwd "$LAB_OVPN_CLIENT_DIR" --others reject \
    -L "127.0.0.1:$WEB_FWD:$LAB_WEB_NAME:$LAB_WEB_PORT" \
    -L "127.0.0.1:$ECHO_FWD:$LAB_INTERNAL_IP:$LAB_ECHO_PORT" \
    -L "127.0.0.1:$OUT_FWD:$LAB_SERVER_IP:$LAB_WEB_PORT" || lab_die "vpn2socks did not bring the tunnel up"

fetch_forward() {
    lab_in_client curl -sS -f --connect-timeout 10 -m 60 -o "$S/big" \
        "http://127.0.0.1:$WEB_FWD/$LAB_BIG_FILE" || return 1
    v2s_check_file "$S/big" "$LAB_BIG_SHA256" "$LAB_BIG_SIZE" && rm -f "$S/big"
}

# 10 MiB through the echo forward: one thread writes then half-closes, the main one reads to EOF.
echo_forward() {
    lab_in_client timeout 60 "$LAB_PY" "$here/echo_check.py" 127.0.0.1 "$ECHO_FWD" --random $((10 << 20))
}

# The rejected destination: the connection is accepted, then reset with no byte, and logged.
rejected_forward() {
    lab_in_client timeout 20 "$LAB_PY" - "$OUT_FWD" <<'PY' || return 1
import socket, sys
# The reset may come as soon as the connection is accepted: to connect() itself (the router
# answers at once), to the send, or to the read.
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    b = s.recv(4096)
except (ConnectionResetError, BrokenPipeError):
    print("reset"); sys.exit(0)
print(f"got {b!r} instead of a reset"); sys.exit(1)
PY
    local want="-> $LAB_SERVER_IP:$LAB_WEB_PORT: permission denied (forward 127.0.0.1:$OUT_FWD, connection reset)"
    # written before the reset, so there by now
    grep -qF -- "$want" "$S/v2s.log" || { echo "not in the log: $want"; tail -n 5 "$S/v2s.log"; return 1; }
}

lab_check "-L to a name: curl fetches $((LAB_BIG_SIZE >> 20)) MiB byte-exact (sha256)" fetch_forward
lab_check "-L to the echo server: 10 MiB come back intact" echo_forward
lab_check "-L to a destination --others reject covers: reset and logged" rejected_forward
lab_check "vpn2socks is still running" v2s_alive
lab_check_eq "SIGTERM: exit status 0" 0 "$(v2s_stop)"

lab_finish
