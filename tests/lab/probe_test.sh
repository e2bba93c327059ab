#!/bin/bash
# shellcheck disable=SC2317,SC2119  # helpers are called through lab_check; lab_setup takes no args here
# Tests the lab itself, without vpn2socks: the services in the server namespace, and the path
# openconnect (as nobody, --script-tun) -> ocserv -> internal address, with probe_tun.py standing
# in for vpn2socks. Also pins down what vpn2socks relies on from openconnect: the environment,
# the kind of socket VPNFD is, and what the script sees when openconnect stops.
# Needs root (skips with exit 77 otherwise). LAB_KEEP=1 keeps the run dir.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/lib.sh"

lab_require_root
lab_setup

PROBE=$here/probe_tun.py
envval() { sed -n "s/^$2=//p" "$1/env.txt"; }
# alive and not a zombie (an orphan's new parent may never reap it)
probe_alive() {
    local pid st
    pid=$(sed -n 's/^pid=//p' "$1/sock.txt")
    st=$(sed -n 's/^State:\t\(.\).*/\1/p' "/proc/$pid/status" 2>/dev/null)
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
newdir() { mkdir -m 1777 "$LAB_RUN_DIR/out/$1" && echo "$LAB_RUN_DIR/out/$1"; }

# ---- the services, from inside the server namespace (no VPN)
sha_of_url() { lab_in_server curl -sf "$1" | sha256sum | cut -d' ' -f1; }
lab_check_eq "web: small file sha256" "$LAB_SMALL_SHA256" "$(sha_of_url "$LAB_WEB_URL/$LAB_SMALL_FILE")"
lab_check_eq "web: big file ($LAB_BIG_SIZE bytes) sha256" "$LAB_BIG_SHA256" "$(sha_of_url "$LAB_WEB_URL/$LAB_BIG_FILE")"

echo_check() {
    lab_in_server "$LAB_PY" - "$LAB_INTERNAL_IP" "$LAB_ECHO_PORT" <<'EOF'
import os, socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
data = os.urandom(1 << 20)
s = socket.create_connection((addr, port), timeout=5)
s.sendall(data)
s.shutdown(socket.SHUT_WR)          # half-close: the server must echo the rest, then close
got = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
assert got == data, f"tcp echo: {len(got)} bytes back of {len(data)}"
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(3)
u.sendto(b"ping-udp", (addr, port))
assert u.recvfrom(100)[0] == b"ping-udp", "udp echo"
EOF
}
lab_check "echo: 1 MiB over TCP with half-close, and UDP" echo_check

dns() { lab_in_server "$LAB_PY" "$here/dns_query.py" "$LAB_DNS_IP" "$1"; }
lab_check_eq "dns: $LAB_WEB_NAME" "NOERROR $LAB_INTERNAL_IP" "$(dns "$LAB_WEB_NAME")"
lab_check_eq "dns: web (search domain)" "NOERROR $LAB_INTERNAL_IP" "$(dns web)"
lab_check_eq "dns: other.lab.test" "NXDOMAIN" "$(dns other.lab.test)"
lab_check_eq "dns: example.com" "NXDOMAIN" "$(dns example.com)"

if lab_in_client curl -s -m 2 -o /dev/null "$LAB_WEB_URL/$LAB_SMALL_FILE"; then
    lab_fail "client ns reaches $LAB_INTERNAL_IP without the VPN"
else
    lab_pass "client ns cannot reach $LAB_INTERNAL_IP without the VPN"
fi
# shellcheck disable=SC2016  # expanded by the inner shell, as nobody
lab_check_eq "setpriv: nobody without capabilities" "65534 0000000000000000" \
    "$(lab_client_nobody sh -c 'echo $(id -u) $(sed -n "s/^CapEff:\t//p" /proc/self/status)')"

# ---- session A: DTLS; ICMP through VPNFD; env; survives a reconnect; SIGHUP on clean stop
A=$(newdir a)
if lab_start_openconnect "$LAB_PY $PROBE $A 120"; then
    lab_pass "openconnect (nobody, --script-tun) connects"
else
    lab_fail "openconnect (nobody, --script-tun) connects"
    lab_finish
fi
lab_check "probe: ICMP echo to $LAB_INTERNAL_IP through VPNFD" \
    lab_wait_file_match "$A/events.txt" 'icmp-ok' 10
if [ "${LAB_OCSERV_UDP:-1}" = 0 ]; then
    lab_skip "DTLS (LAB_OCSERV_UDP=0: ocserv serves TLS only)"
else
    lab_check "openconnect: DTLS established" \
        lab_wait_file_match "$LAB_OC_LOG" '^Established DTLS' 10
fi
lab_check_eq "VPNFD is an AF_UNIX SOCK_DGRAM socket" "AF_UNIX SOCK_DGRAM" \
    "$(sed -n 's/^family=//p' "$A/sock.txt") $(sed -n 's/^type=//p' "$A/sock.txt")"
lab_check_eq "script runs as nobody" 65534 "$(sed -n 's/^uid=//p' "$A/sock.txt")"
addr=$(envval "$A" INTERNAL_IP4_ADDRESS)
case $addr in 10.98.0.*) lab_pass "INTERNAL_IP4_ADDRESS=$addr in $LAB_VPN_POOL" ;;
*) lab_fail "INTERNAL_IP4_ADDRESS='$addr' not in $LAB_VPN_POOL" ;; esac
mtu=$(envval "$A" INTERNAL_IP4_MTU)
if [[ $mtu =~ ^[0-9]+$ ]] && [ "$mtu" -ge 1200 ] && [ "$mtu" -le 1400 ]; then
    lab_pass "INTERNAL_IP4_MTU=$mtu"
else
    lab_fail "INTERNAL_IP4_MTU='$mtu'"
fi
lab_check_eq "INTERNAL_IP4_DNS" "$LAB_DNS_IP" "$(envval "$A" INTERNAL_IP4_DNS)"
lab_check_eq "CISCO_DEF_DOMAIN" "$LAB_DOMAIN" "$(envval "$A" CISCO_DEF_DOMAIN)"
lab_check_eq "CISCO_SPLIT_INC_0 (count, addr, mask, masklen)" "1 10.99.0.0 255.255.255.0 24" \
    "$(envval "$A" CISCO_SPLIT_INC) $(envval "$A" CISCO_SPLIT_INC_0_ADDR) $(envval "$A" CISCO_SPLIT_INC_0_MASK) $(envval "$A" CISCO_SPLIT_INC_0_MASKLEN)"
lab_check_eq "VPNGATEWAY" "$LAB_SERVER_IP" "$(envval "$A" VPNGATEWAY)"
lab_check_eq "VPNPID is openconnect's pid" "$LAB_OC_PID" "$(envval "$A" VPNPID)"

# openconnect reconnects when the server's worker dies; the same script and fd go on working
worker=$(lab_occtl show users 2>/dev/null | awk -v u="$LAB_VPN_USER" '$2 == u {print $1; exit}')
if [[ $worker =~ ^[0-9]+$ ]]; then
    connects=$(grep -c '^Got CONNECT response' "$LAB_OC_LOG")
    lab_in_server kill -KILL "$worker"
    before=$(grep -c icmp-ok "$A/events.txt")
    lab_check "openconnect reconnects after the server worker dies" \
        lab_wait_count "$LAB_OC_LOG" '^Got CONNECT response' "$((connects + 1))" 15
    # An echo reply after the reconnect (one ping a second), waited for rather than a fixed pause.
    lab_wait_count "$A/events.txt" icmp-ok "$((before + 1))" 10
    after=$(grep -c icmp-ok "$A/events.txt")
    if probe_alive "$A" && [ "$after" -gt "$before" ] && ! grep -q '^[0-9.]* \(signal\|eof\|read-error\|write-error\)' "$A/events.txt"; then
        lab_pass "same script keeps working across the reconnect ($before -> $after echo replies)"
    else
        lab_fail "script across reconnect: alive=$(probe_alive "$A" && echo yes || echo no) replies $before -> $after"
    fi
else
    lab_fail "occtl show users: no worker for $LAB_VPN_USER"
fi

lab_stop_openconnect TERM
lab_check "SIGTERM to openconnect: the script gets SIGHUP" \
    lab_wait_file_match "$A/events.txt" 'signal SIGHUP' 5
for _ in $(seq 100); do probe_alive "$A" || break; sleep 0.05; done
if probe_alive "$A"; then
    lab_fail "probe still running 5 s after SIGHUP"
else
    lab_pass "probe exited on SIGHUP"
fi

# ---- session B: TLS only; openconnect SIGKILLed: no SIGHUP, no EOF, writes fail
B=$(newdir b)
: >"$LAB_OC_LOG"
if lab_start_openconnect "$LAB_PY $PROBE --ignore-hup $B 60" --no-dtls; then
    lab_pass "openconnect --no-dtls connects"
    lab_check "openconnect: DTLS disabled" grep -q 'DTLS disabled' "$LAB_OC_LOG"
    lab_check "probe: ICMP echo over TLS only" lab_wait_file_match "$B/events.txt" 'icmp-ok' 10
    lab_stop_openconnect KILL
    lab_check "SIGKILL to openconnect: the next write to VPNFD fails with ECONNREFUSED" \
        lab_wait_file_match "$B/events.txt" 'write-error ECONNREFUSED' 5
    if grep -qE 'signal|eof|read-error' "$B/events.txt"; then
        lab_fail "SIGKILL to openconnect: expected no signal/EOF, got: $(grep -E 'signal|eof|read-error' "$B/events.txt" | tr '\n' ' ')"
    else
        lab_pass "SIGKILL to openconnect: no SIGHUP and no EOF on VPNFD reads (watch VPNPID)"
    fi
    # What openconnect leaves behind, noted for whoever tears down; not a check (it has no fail).
    if probe_alive "$B"; then lab_log "the orphaned script lingers (teardown must kill it)"; fi
else
    lab_fail "openconnect --no-dtls connects"
fi

# ---- session C: the server ends the session: openconnect exits, the script gets SIGHUP
C=$(newdir c)
: >"$LAB_OC_LOG"
if lab_start_openconnect "$LAB_PY $PROBE --ignore-hup $C 60"; then
    lab_wait_file_match "$C/events.txt" 'icmp-ok' 10
    lab_occtl disconnect user "$LAB_VPN_USER" >/dev/null
    lab_check "server disconnect: openconnect exits" \
        lab_wait_file_match "$LAB_OC_LOG" 'Session terminated by server' 10
    lab_check "server disconnect: the script gets SIGHUP" \
        lab_wait_file_match "$C/events.txt" 'signal SIGHUP' 5
    lab_check "after SIGHUP: writes to VPNFD fail with ECONNREFUSED" \
        lab_wait_file_match "$C/events.txt" 'write-error ECONNREFUSED' 5
else
    lab_fail "openconnect connects (session C)"
fi

lab_finish
