#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# Memory under a hostile sender: a server in the VPN sends 4.5 MB of bulk (enough to fill the
# kernel's buffers toward the client), then 1,000,000 one-byte segments, to a SOCKS client that
# reads nothing until they are all sent. Each segment used to hold a 1,600-byte buffer and a
# write request of its own in vpn2socks: RSS grew from 7.6 to 96 MB. What must hold:
#   - vpn2socks's RSS grows by less than TRICKLE_MAX_GROWTH_KB (16 MiB: twice the 4 MiB window,
#     plus room for the allocator) while the client does not read;
#   - once it reads, every byte arrives, in order (the bulk, then the one-byte segments);
#   - vpn2socks still serves, and exits 0.
# Needs root (skips with 77 otherwise).
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/openvpn.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/v2s.sh"

lab_require_root
LAB_BIG_MB=1
export LAB_BIG_MB
lab_setup --no-ocserv
v2s_prepare
TRICKLE_N=${TRICKLE_N:-1000000}
TRICKLE_BULK=${TRICKLE_BULK:-4500000}
TRICKLE_PORT=9099
TRICKLE_MAX_GROWTH_KB=${TRICKLE_MAX_GROWTH_KB:-16384}

# Without this the server's kernel merges the one-byte sends into full segments.
lab_in_server sysctl -qw net.ipv4.tcp_autocorking=0 || lab_die "cannot turn tcp_autocorking off"
lab_bg trickle ip netns exec "$LAB_SERVER_NS" "$LAB_PY" "$here/trickle_server.py" \
    "$LAB_INTERNAL_IP" "$TRICKLE_PORT" "$TRICKLE_N" "$TRICKLE_BULK"
lab_wait_listen "$LAB_SERVER_NS" tcp "$LAB_INTERNAL_IP" "$TRICKLE_PORT" || lab_die "trickle server did not start"
lab_start_openvpn_server mem --proto udp
lab_openvpn_client_config mem
v2s_start_ovpn mem "$LAB_OVPN_CLIENT_DIR" || lab_die "vpn2socks did not bring the tunnel up"

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$V2S_PID/status"; }
go=$S/go
# The client: SOCKS5 CONNECT, then nothing until $go exists, then reads everything and checks it.
lab_in_client "$LAB_PY" - "$SOCKS_ADDR" "$SOCKS_PORT" "$LAB_INTERNAL_IP" "$TRICKLE_PORT" \
    "$TRICKLE_BULK" "$TRICKLE_N" "$go" >"$S/client.out" 2>&1 <<'PY' &
import os, socket, struct, sys, time
host, port, dst, dport, bulk, n, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((host, port))
s.sendall(b"\x05\x01\x00")
assert s.recv(2) == b"\x05\x00"
s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(dst) + struct.pack(">H", dport))
reply = s.recv(10)
assert reply[:2] == b"\x05\x00", reply
deadline = time.time() + 300
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.1)
got = bytearray()
s.settimeout(60)
while True:
    d = s.recv(262144)
    if not d:
        break
    got += d
expect = b"B" * bulk + b"A" * n
print("intact" if got == expect else f"DIFFERENT: {len(got)} bytes, expected {len(expect)}")
PY
client=$!
before=$(rss_kb)
lab_check "the server sent its ${TRICKLE_N} one-byte segments" \
    lab_wait_file_match "$LAB_RUN_DIR/log/trickle.log" "^sent $TRICKLE_N" 240
# Let the last of them cross the tunnel and settle.
sleep 2
during=$(rss_kb)
growth=$((during - before))
lab_log "vpn2socks VmRSS: ${before} kB before, ${during} kB with the client not reading (+${growth} kB)"
lab_check "RSS grew by ${growth} kB, less than ${TRICKLE_MAX_GROWTH_KB} kB" test "$growth" -lt "$TRICKLE_MAX_GROWTH_KB"
touch "$go"
wait "$client"
lab_check_eq "the client got every byte, in order" intact "$(tail -n 1 "$S/client.out")"
lab_check "a download still works" \
    v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_BIG_FILE" "$S/big" 60 "$LAB_BIG_SHA256" "$LAB_BIG_SIZE"
lab_check_eq "vpn2socks exits 0 on SIGTERM" 0 "$(v2s_stop)"
lab_stop_openvpn_server mem
lab_finish
