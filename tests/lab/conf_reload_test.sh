#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# --conf FILE and SIGHUP: vpn2socks as nobody, started with nothing but `--conf FILE` (config =,
# socks =, two local = forwards), against Debian's openvpn 2.6 server:
#   A  local = 127.0.0.1:18081:web.lab.test:8080      kept across the reload
#   C  local = 127.0.0.1:18083:10.99.0.1:7777         removed by the reload
#   B  local = 127.0.0.1:18082:10.99.0.1:7777         added by the reload
#   E  local = 127.0.0.1:18086:10.99.0.1:7777/udp     added by the reload
#   D  local = 127.0.0.1:18085:...                    added by a first reload, which fails as
#                                                     another program holds the port
#   R  remote = 18087:127.0.0.1:17001                 added: from the server's namespace, the
#                                                     tunnel address's port 18087 reaches an echo
#                                                     server on the client's loopback
# A first reload asks for A, B and D (C removed): D cannot start, so the reload fails as a whole
# and names D; C still echoes and B is not there. Then,
# while a slowly read download through A runs (about 6 s), a connection through C is open and a
# SOCKS client is halfway through its handshake, the file is rewritten (with a connect-timeout,
# which needs a restart) and vpn2socks gets SIGHUP: connect-timeout is logged
# as ignored until a restart; B, E and R answer, C refuses new connections, the connection through
# C carries on, the SOCKS handshake completes on the kept listener, and the download through A
# completes byte-exact (sha256), as the .ovpn, read again, is unchanged and the session is kept.
# Then a file with a bad line gets SIGHUP: the log names FILE:LINE,
# and B and A still work. SIGTERM: exit 0.
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
LAB_BIG_MB=8 lab_setup --no-ocserv
v2s_prepare

A_PORT=18081
B_PORT=18082
C_PORT=18083
D_PORT=18085
E_PORT=18086
R_PORT=18087     # -R, on the tunnel address
R_LOCAL=17001    # the service it exposes, on the client's loopback
# The download through A is read slowly: 64 KiB every 50 ms, about 6 s for the 8 MiB file. (curl's
# --limit-rate was tried first: curl 7.88 let bursts through, and some runs ended in 1.5 s.)

lab_start_openvpn_server conf --proto udp
lab_openvpn_client_config conf

# The config file: root's, mode 644 (vpn2socks refuses one that others may write).
CONF_DIR=$LAB_RUN_DIR/conf
mkdir -p "$CONF_DIR"
chmod 755 "$CONF_DIR"
CONF=$CONF_DIR/vpn2socks.conf
AUTH=''
[ -f "$LAB_OVPN_CLIENT_DIR/auth.txt" ] && AUTH="auth-user-pass = $LAB_OVPN_CLIENT_DIR/auth.txt"
HEAD="# vpn2socks for the lab
config = $LAB_OVPN_CLIENT_DIR/config.ovpn
$AUTH
socks  = $SOCKS_ADDR:$SOCKS_PORT   ; the SOCKS listener stays across every reload
verbose = 2
"
# write_conf TEXT: replaces the file at once (rename), as an editor or a deploy tool would
write_conf() {
    printf '%s' "$HEAD$1" >"$CONF.tmp"
    chmod 644 "$CONF.tmp"
    mv "$CONF.tmp" "$CONF"
}
write_conf "local  = 127.0.0.1:$A_PORT:$LAB_WEB_NAME:$LAB_WEB_PORT
local  = 127.0.0.1:$C_PORT:$LAB_INTERNAL_IP:$LAB_ECHO_PORT
"

S=$LAB_RUN_DIR/out/conf
mkdir -m 1777 "$S"
v2s_no_direct_route
lab_bg v2s-conf ip netns exec "$LAB_CLIENT_NS" setpriv --reuid=nobody --regid=nogroup --clear-groups \
    "$WRAP" "$S" --conf "$CONF"
lab_wait_file_match "$S/pid" '^[0-9]+$' 5 || lab_die "vpn2socks did not start"
V2S_PID=$(cat "$S/pid")
lab_wait_file_match "$S/v2s.log" 'tunnel up: address' 30 "$V2S_PID" || lab_die "vpn2socks did not bring the tunnel up"

# echo_once PORT: a line through the forward comes back (the lab's echo server)
echo_once() {
    lab_in_client timeout 20 "$LAB_PY" "$here/echo_check.py" 127.0.0.1 "$1" --text $'ping\n' --timeout 10
}

# refused PORT: nothing listens there any more
refused() {
    lab_in_client timeout 20 "$LAB_PY" - "$1" <<'PY'
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
except ConnectionRefusedError:
    print("refused"); sys.exit(0)
print("connected"); sys.exit(1)
PY
}

fetch_small() {
    lab_in_client curl -sS -f --connect-timeout 10 -m 20 -o "$S/small" \
        "http://127.0.0.1:$A_PORT/$LAB_SMALL_FILE" || return 1
    v2s_check_file "$S/small" "$LAB_SMALL_SHA256"
}

# D's port is taken by another program: a reload that adds D fails as a whole.
lab_bg blocker ip netns exec "$LAB_CLIENT_NS" "$LAB_PY" -c "
import socket, time
s = socket.socket()
s.bind(('127.0.0.1', $D_PORT))
s.listen()
time.sleep(120)"
lab_wait_listen "$LAB_CLIENT_NS" tcp 127.0.0.1 "$D_PORT" 10 || lab_fail "the program holding D's port did not start"
lab_bg cli-echo ip netns exec "$LAB_CLIENT_NS" "$LAB_PY" "$here/echo_server.py" 127.0.0.1 "$R_LOCAL"
lab_wait_listen "$LAB_CLIENT_NS" tcp 127.0.0.1 "$R_LOCAL" || lab_die "the client's echo server did not start"
TUN4=$(sed -n 's/.*tunnel up: address \([0-9.]*\)\/.*/\1/p' "$S/v2s.log" | head -n 1)
[ -n "$TUN4" ] || lab_die "no IPv4 tunnel address in the log"

lab_check "before the reload: A (a name) fetches a file" fetch_small
lab_check "before the reload: C echoes" echo_once "$C_PORT"
lab_check "before the reload: B is not there yet" refused "$B_PORT"

# A reload that drops C and adds B and D, whose port another program holds: nothing of it applies.
write_conf "local  = 127.0.0.1:$A_PORT:$LAB_WEB_NAME:$LAB_WEB_PORT
local  = 127.0.0.1:$B_PORT:$LAB_INTERNAL_IP:$LAB_ECHO_PORT
local  = 127.0.0.1:$D_PORT:$LAB_INTERNAL_IP:$LAB_ECHO_PORT
"
kill -HUP "$V2S_PID"
lab_check "SIGHUP with D's port taken: the reload fails as a whole, naming D and why" \
    lab_wait_file_match "$S/v2s.log" \
    "reload: forward 127.0.0.1:$D_PORT -> $LAB_INTERNAL_IP:$LAB_ECHO_PORT: address already in use; the running configuration is kept" 10
lab_check "after the failed reload: C (which it dropped) still echoes" echo_once "$C_PORT"
lab_check "after the failed reload: B (which it added) is not there" refused "$B_PORT"
write_conf "local  = 127.0.0.1:$A_PORT:$LAB_WEB_NAME:$LAB_WEB_PORT
local  = 127.0.0.1:$C_PORT:$LAB_INTERNAL_IP:$LAB_ECHO_PORT
"

# The long download through A, and a connection through C held open across the reload: it echoes
# once before, waits for $S/reloaded, and must echo again after.
lab_in_client timeout 60 "$LAB_PY" - "$A_PORT" "/$LAB_BIG_FILE" "$S/big" >"$S/slow.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
s.sendall(f"GET {sys.argv[2]} HTTP/1.0\r\nHost: web\r\n\r\n".encode())
head = b""
while b"\r\n\r\n" not in head:
    b = s.recv(4096)
    if not b:
        sys.exit("the connection ended in the headers")
    head += b
head, body = head.split(b"\r\n\r\n", 1)
status = head.split(b"\r\n")[0]
length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
with open(sys.argv[3], "wb") as out:
    out.write(body)
    got = len(body)
    while True:
        time.sleep(0.05)
        b = s.recv(65536)
        if not b:
            break
        out.write(b)
        out.flush()
        got += len(b)
print(f"{status.decode()}: {got} bytes of {length}")
sys.exit(0 if b" 200 " in status and length == [got] else 1)
PY
SLOW_PID=$!
lab_in_client timeout 60 "$LAB_PY" - "$C_PORT" "$S/reloaded" >"$S/held.out" 2>&1 <<'PY' &
import os, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
def echo(word):
    s.sendall(word)
    got = b""
    while len(got) < len(word):
        b = s.recv(100)
        if not b:
            break
        got += b
    return got
print("before:", echo(b"before\n"), flush=True)
for _ in range(300):
    if os.path.exists(sys.argv[2]):
        break
    time.sleep(0.1)
after = echo(b"after the reload\n")
print("after:", after, flush=True)
sys.exit(0 if after == b"after the reload\n" else 1)
PY
HELD_PID=$!
# A SOCKS client halfway through its handshake on the kept SOCKS listener: greeting sent before the
# reload, request after. A listener closed and opened again would have ended it.
lab_in_client timeout 60 "$LAB_PY" - "$SOCKS_PORT" "$LAB_INTERNAL_IP" "$LAB_ECHO_PORT" "$S/reloaded" \
    >"$S/mid.out" 2>&1 <<'PY' &
import ipaddress, os, socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
s.sendall(b"\x05\x01\x00")
print("method:", s.recv(2), flush=True)
for _ in range(300):
    if os.path.exists(sys.argv[4]):
        break
    time.sleep(0.1)
s.sendall(b"\x05\x01\x00\x01" + ipaddress.ip_address(sys.argv[2]).packed + struct.pack(">H", int(sys.argv[3])))
reply = s.recv(10)
print("reply:", reply, flush=True)
s.sendall(b"mid-handshake\n")
got = s.recv(100)
print("echo:", got, flush=True)
sys.exit(0 if reply[:2] == b"\x05\x00" and got == b"mid-handshake\n" else 1)
PY
MID_PID=$!

lab_wait_file_match "$S/held.out" '^before:' 10 || lab_fail "the connection through C did not echo before the reload"
lab_wait_file_match "$S/mid.out" '^method:' 10 || lab_fail "the SOCKS client got no method choice before the reload"
# The download is under way: some bytes, far from all.
for _ in $(seq 100); do
    [ "$(stat -c %s "$S/big" 2>/dev/null || echo 0)" -gt 100000 ] && break
    sleep 0.05
done

write_conf "local  = 127.0.0.1:$A_PORT:$LAB_WEB_NAME:$LAB_WEB_PORT

local  = 127.0.0.1:$B_PORT:$LAB_INTERNAL_IP:$LAB_ECHO_PORT
local  = 127.0.0.1:$E_PORT:$LAB_INTERNAL_IP:$LAB_ECHO_PORT/udp
remote = $R_PORT:127.0.0.1:$R_LOCAL
connect-timeout = 7
"
size_at_hup=$(stat -c %s "$S/big" 2>/dev/null || echo 0)
kill -HUP "$V2S_PID"
if kill -0 "$SLOW_PID" 2>/dev/null && [ "$size_at_hup" -lt "$LAB_BIG_SIZE" ]; then
    lab_pass "the download through A was under way at SIGHUP ($size_at_hup of $LAB_BIG_SIZE bytes)"
else
    lab_fail "the download through A was not under way at SIGHUP ($size_at_hup bytes): the test proves nothing"
fi
lab_check "SIGHUP: the log says what the reload did" \
    lab_wait_file_match "$S/v2s.log" 'reload: 2 listeners kept, 3 started, 1 closed' 10
lab_check "SIGHUP: connect-timeout, which needs a restart, is named as ignored" grep -q \
    "reload: $CONF: connect-timeout changed, ignored until a restart" "$S/v2s.log"
lab_check "SIGHUP: the .ovpn, read again and unchanged, leaves the session as it is" \
    lab_wait_file_match "$S/v2s.log" 'are unchanged; the session goes on' 10
touch "$S/reloaded"

lab_check "after the reload: B (added) echoes" echo_once "$B_PORT"
lab_check "after the reload: C (removed) refuses connections" refused "$C_PORT"
udp_echo() {
    lab_in_client timeout 20 "$LAB_PY" - "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect(("127.0.0.1", int(sys.argv[1])))
for _ in range(3):
    s.send(b"datagram")
    try:
        got = s.recv(100)
    except socket.timeout:
        continue
    print(f"got {got!r}")
    sys.exit(0 if got == b"datagram" else 1)
print("no answer"); sys.exit(1)
PY
}
lab_check "after the reload: E (added, UDP) echoes a datagram" udp_echo "$E_PORT"
remote_echo() {
    lab_in_server timeout 20 "$LAB_PY" "$here/echo_check.py" "$TUN4" "$R_PORT" --text $'from the VPN side\n' --timeout 10
}
lab_check "after the reload: R (added, -R) answers on the tunnel address $TUN4:$R_PORT" remote_echo
# (waited for here, not inside lab_check: its subshell cannot wait for this shell's children)
wait "$HELD_PID" && held=0 || held=$?
sed 's/^/    /' "$S/held.out"
lab_check_eq "after the reload: the connection opened through C before it carries on (exit status)" 0 "$held"
wait "$MID_PID" && mid=0 || mid=$?
sed 's/^/    /' "$S/mid.out"
lab_check_eq "after the reload: the SOCKS handshake begun before it on the kept listener completes (exit status)" 0 "$mid"
wait "$SLOW_PID" && slow_rc=0 || slow_rc=$?
sed 's/^/    /' "$S/slow.out"
lab_check_eq "the download through A (kept) ends well across the reload (exit status)" 0 "$slow_rc"
lab_check "the download through A is byte-exact (sha256)" v2s_check_file "$S/big" "$LAB_BIG_SHA256" "$LAB_BIG_SIZE"
lab_check "SOCKS (kept) still works" \
    v2s_fetch_check "$PROXY_H" "http://$LAB_WEB_NAME:$LAB_WEB_PORT/$LAB_SMALL_FILE" "$S/viasocks" 20 "$LAB_SMALL_SHA256"

# A file that no longer parses: reported with its line, the running configuration kept.
write_conf "local  = 127.0.0.1:$A_PORT:$LAB_WEB_NAME:$LAB_WEB_PORT
local  = 127.0.0.1:18084
"
bad_line=$(grep -n ':18084$' "$CONF" | cut -d: -f1)
kill -HUP "$V2S_PID"
lab_check "a bad line: the log names $CONF:$bad_line and keeps the running configuration" \
    lab_wait_file_match "$S/v2s.log" \
    "reload: $CONF:$bad_line: local = 127.0.0.1:18084: expected .*; the running configuration is kept" 10
lab_check "after the bad reload: B still echoes" echo_once "$B_PORT"
lab_check "after the bad reload: A still fetches" fetch_small
lab_check "vpn2socks is still running" v2s_alive
lab_check_eq "SIGTERM: exit status 0" 0 "$(v2s_stop)"

lab_finish
