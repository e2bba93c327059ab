#!/bin/bash
# shellcheck disable=SC2317,SC2119  # helpers are called through lab_check; lab_setup takes no args here
# Hostile local clients: what the SOCKS listeners do with garbage, trickling and silent clients,
# floods of connections, and clients that ask for this host's own addresses. openconnect (as
# nobody) starts vpn2socks (as nobody) against ocserv, whose split route makes every other
# destination go direct. Beside each session's abuse, a transfer through the tunnel runs the whole
# time: 4 MiB each way to the echo server, sent at an even pace over TRANSFER_S (a rate-limited
# download is no good here: the kernel buffers take the whole file from the proxy within a
# second), which must come back with the same sha256 and never stall for 2 s.
#   s1 (defaults, plus -D 0.0.0.0:1081):
#     - the start warning for the listener other hosts can reach, and none for 127.0.0.1;
#     - garbage: bad versions, no methods, no acceptable method, unknown ATYP, an empty name, a
#       request of version 4 after a SOCKS5 greeting, an unknown command, an endless SOCKS4 user
#       id, SOCKS4a without a host, 1 MB of random bytes, 500 non-SOCKS clients at once: the
#       right reply or a close, and nothing held;
#     - the handshake timeout (10 s): one byte a second, a greeting that promises 255 methods and
#       sends 3, a SOCKS4 user id without its end, half a request: each cut at 10 s, before the
#       request completes (the timeout was 30 s before);
#     - direct connections to 127.0.0.1, 0.0.0.0, 169.254.169.254, ::1, ::ffff:127.0.0.1,
#       fe80::1 and a name the VPN's DNS resolves to 127.0.0.1: reply 0x02; another direct
#       destination still connects.
#   s2 (--max-connections 1500 --handshake-timeout 60 --allow-direct-local, a second listener):
#     - 500 idle relays through the tunnel, 300 half-open handshakes and 1,000 silent clients on
#       the first listener: it holds exactly its default cap (1024, the transfer included) and
#       resets the rest at once; 1,000 silent clients on the second: it holds what the global cap
#       leaves (476); 3,000 more are all refused; one log line per cap; vpn2socks's RSS grows by
#       less than S2_RSS_HELD_KB while it holds 1,500 and by less than S2_RSS_REFUSED_KB over the
#       3,000 refusals; the transfer beside them never stalls;
#     - once the flood lets go, both listeners take connections again, and with
#       --allow-direct-local a direct connection to a service on 127.0.0.1 is allowed, but not one
#       to vpn2socks's own second listener (reply 0x02: it would loop).
# Needs root (skips with exit 77 otherwise). The binary: $VPN2SOCKS_BIN, else build/vpn2socks.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/v2s.sh"

FLOOD=$here/conn_flood.py
LOCAL_ECHO_PORT=9097 # a service of the client namespace's own, on loopback (s2)
# RSS bounds. Held: 1,500 connections of a few KiB each (the SOCKS connection, libuv's handles,
# for the relays lwIP's PCB and the bridge): 3.3 MB measured, 2.2 KiB each; without the caps the
# same floods would hold 5,800 connections, about 12 MB. Refused: nothing is kept (0 kB measured).
S1_TRANSFER_S=${S1_TRANSFER_S:-15}
S2_TRANSFER_S=${S2_TRANSFER_S:-15}
S2_RSS_HELD_KB=${S2_RSS_HELD_KB:-8192}
S2_RSS_REFUSED_KB=${S2_RSS_REFUSED_KB:-2048}

lab_require_root
# the floods hold ~6,000 sockets in the client, and vpn2socks ~1,500 (it inherits the limit)
ulimit -n 16000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 12000 ]; then
    echo "SKIP: open files limit $(ulimit -n) is too low for the floods"
    exit 77
fi
LAB_BIG_MB=1 lab_setup
v2s_prepare

t_start=$SECONDS
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
ip_hex=$(printf '%02x' ${LAB_INTERNAL_IP//./ })
port_hex=$(printf '%04x' "$LAB_ECHO_PORT")
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$V2S_PID/status"; }

# transfer_start NAME SECONDS: 4 MiB each way through 127.0.0.1:1080 to the echo server behind the
# tunnel, paced over SECONDS; TRANSFER_PID, TRANSFER_LOG
transfer_start() {
    lab_bg "$1" ip netns exec "$LAB_CLIENT_NS" "$LAB_PY" "$SC" "$SOCKS_ADDR" "$SOCKS_PORT" \
        paced "$LAB_INTERNAL_IP" "$LAB_ECHO_PORT" 4194304 "$2" 2
    TRANSFER_PID=$LAB_LAST_PID
    TRANSFER_LOG=$LAB_RUN_DIR/log/$1.log
    lab_wait_count "$S/v2s.log" "-> $LAB_INTERNAL_IP:$LAB_ECHO_PORT \\(tunnel\\) open" 1 10
}

# transfer_check DESCRIPTION: it was still running until now, then ends intact and never stalled
transfer_check() {
    if kill -0 "$TRANSFER_PID" 2>/dev/null; then
        lab_pass "$1: the transfer was still under way throughout"
    else
        lab_fail "$1: the transfer had already ended (not beside the abuse; give it more seconds)"
    fi
    local rc=0
    wait "$TRANSFER_PID" || rc=$?
    if [ "$rc" -eq 0 ]; then
        lab_pass "$1: the transfer beside it: $(tail -n 1 "$TRANSFER_LOG")"
    else
        lab_fail "$1: the transfer beside it (exit $rc)"
        sed 's/^/    /' "$TRANSFER_LOG"
    fi
}

# ================================================================ s1: defaults
V2S_ARGS="-D 0.0.0.0:1081" v2s_start_session s1 || lab_die "session s1 did not start"

exposed() {
    grep -c "SOCKS listener $1 is reachable from other hosts and has no authentication" "$S/v2s.log"
}
lab_check_eq "s1: -D 0.0.0.0:1081: one warning that other hosts can reach it unauthenticated" 1 "$(exposed 0.0.0.0:1081)"
lab_check_eq "s1: -D 127.0.0.1:1080: no such warning" 0 "$(exposed 127.0.0.1:1080)"

transfer_start transfer-s1 "$S1_TRANSFER_S"

# the handshake timeout, in the background while the rest goes on
req_hex=05010001${ip_hex}${port_hex}
lab_bg trickle ip netns exec "$LAB_CLIENT_NS" "$LAB_PY" "$SC" "$SOCKS_ADDR" "$SOCKS_PORT" \
    trickle "$LAB_INTERNAL_IP" "$LAB_ECHO_PORT" 1 9.5 12.5
trickle_pid=$LAB_LAST_PID
stall_pids=()
stall_names=("greeting of 255 methods with 3 sent" "SOCKS4 user id without its end" "half a request")
for data in 05ff000102 "04010050${ip_hex}$(hex AAAAAAAA)" "050100${req_hex:0:10}"; do
    lab_bg "stall-${#stall_pids[@]}" ip netns exec "$LAB_CLIENT_NS" "$LAB_PY" "$SC" "$SOCKS_ADDR" \
        "$SOCKS_PORT" stall "$data" 9.5 12 0500
    stall_pids+=("$LAB_LAST_PID")
done

# garbage
lab_check "s1 garbage: bad version ('GET / HTTP/1.1'): closed" sc close "$(hex $'GET / HTTP/1.1\r\n\r\n')"
# RFC 1928 answers a greeting it takes no method of with 05 FF: a silent close fails (3e9be84).
lab_check "s1 garbage: greeting with no methods: 05ff, then closed" sc answer 0500 05ff
lab_check "s1 garbage: greeting offering only user/password: 05ff, then closed" \
    sc answer 050102 05ff
lab_check "s1 garbage: ATYP 0x09: reply 0x08, then closed" sc request "05010009${ip_hex}${port_hex}" 0x08
# A name no resolver can be asked about is the client's fault, answered as a name that does not
# resolve (4), not as a broken proxy (1).
lab_check "s1 garbage: domain name of length 0: reply 0x04, then closed" sc request "0501000300${port_hex}" 0x04
lab_check "s1 garbage: domain name with a NUL byte: reply 0x04, then closed" \
    sc request "0501000303610062${port_hex}" 0x04
lab_check "s1 garbage: request of version 4 after a SOCKS5 greeting: 0500, reply 0x01, then closed" \
    sc close "0501000401${req_hex:4}" 050005010001000000000000
lab_check "s1 garbage: CMD 0x7f: reply 0x07, then closed" sc request "057f0001${ip_hex}${port_hex}" 0x07
lab_check "s1 garbage: SOCKS4 with a 300-byte user id: reply 0x5b, then closed" \
    sc answer "04010050${ip_hex}$(hex "$(printf 'A%.0s' {1..300})")" 005b000000000000
lab_check "s1 garbage: SOCKS4a without a host name: reply 0x5b, then closed" \
    sc close 04010050000000010000 005b000000000000
lab_check "s1 garbage: 1 MB of random bytes: closed" sc random 1000000
lab_check "s1 garbage: 1 MB of random bytes again: closed" sc random 1000000
garbage_flood() {
    local out
    out=$(lab_in_client timeout 60 "$LAB_PY" "$FLOOD" "$SOCKS_ADDR" "$SOCKS_PORT" garbage 500 </dev/null)
    echo "$out"
    [ "$out" = "held 0 refused 0 closed 500 failed 0" ]
}
lab_check "s1 garbage: 500 non-SOCKS clients at once: every one closed, none held or refused" garbage_flood

# direct connections to this host's own addresses (others go direct: ocserv pushes a split route)
lab_check "s1 local: 127.0.0.1:1080 (this very listener): reply 0x02" sc connect 127.0.0.1 "$SOCKS_PORT" 0x02
lab_check "s1 local: 0.0.0.0:1080: reply 0x02" sc connect 0.0.0.0 "$SOCKS_PORT" 0x02
lab_check "s1 local: 169.254.169.254:80 (cloud metadata): reply 0x02" sc connect 169.254.169.254 80 0x02
lab_check "s1 local: [::1]:1080: reply 0x02" sc connect ::1 "$SOCKS_PORT" 0x02
lab_check "s1 local: [::ffff:127.0.0.1]:1080: reply 0x02" sc connect ::ffff:127.0.0.1 "$SOCKS_PORT" 0x02
lab_check "s1 local: [fe80::1]:1080: reply 0x02" sc connect fe80::1 "$SOCKS_PORT" 0x02
lab_check "s1 local: $LAB_LOOPBACK_NAME (127.0.0.1 by the VPN's DNS): reply 0x02" \
    sc connect "$LAB_LOOPBACK_NAME" "$SOCKS_PORT" 0x02
lab_check "s1 local: the log says why" grep -qF "$LAB_LOOPBACK_NAME: 127.0.0.1 is a local address" "$S/v2s.log"
lab_check "s1 local: a direct destination that is not local ($LAB_SERVER_IP:$LAB_OCSERV_PORT) still connects" \
    sc connect "$LAB_SERVER_IP" "$LAB_OCSERV_PORT" 0x00

# the handshake timeout's results
bg_check() { # DESCRIPTION PID LOG
    local rc=0
    wait "$2" || rc=$?
    if [ "$rc" -eq 0 ]; then lab_pass "$1: $(tail -n 1 "$3")"; else lab_fail "$1"; sed 's/^/    /' "$3"; fi
}
bg_check "s1 timeout: one byte a second: cut at 10 s, before the request was complete" \
    "$trickle_pid" "$LAB_RUN_DIR/log/trickle.log"
for i in "${!stall_pids[@]}"; do
    bg_check "s1 timeout: ${stall_names[i]}, then nothing: cut at 10 s" "${stall_pids[i]}" "$LAB_RUN_DIR/log/stall-$i.log"
done
transfer_check "s1"
lab_check "s1: vpn2socks still running" v2s_alive
lab_stop_openconnect TERM
v2s_wait_exit "$S" 10 >/dev/null

# ================================================================ s2: floods at the caps
V2S_ARGS="-D 127.0.0.1:1081 --max-connections 1500 --handshake-timeout 60 --allow-direct-local" \
    v2s_start_session s2 || lab_die "session s2 did not start"

# flood NAME PORT MODE N [HOST PORT]: conn_flood.py holding its connections until flood_release;
# its counts line in FLOOD_RESULT
FLOOD_FDS=()
FLOOD_PIDS=()
flood() {
    local name=$1 port=$2 fifo=$LAB_RUN_DIR/$1.fifo out=$LAB_RUN_DIR/log/$1.log fd
    shift 2
    mkfifo "$fifo"
    # shellcheck disable=SC2016  # the inner shell expands them
    lab_bg "$name" sh -c 'exec "$@" <"$0"' "$fifo" ip netns exec "$LAB_CLIENT_NS" "$LAB_PY" "$FLOOD" \
        "$SOCKS_ADDR" "$port" "$@"
    FLOOD_PIDS+=("$LAB_LAST_PID")
    exec {fd}>"$fifo"
    FLOOD_FDS+=("$fd")
    lab_wait_file_match "$out" '^held ' 90 "$LAB_LAST_PID" || { cat "$out"; lab_die "flood $name gave no counts"; }
    FLOOD_RESULT=$(grep -m1 '^held ' "$out")
}
flood_release() {
    local fd pid
    for fd in "${FLOOD_FDS[@]}"; do exec {fd}>&-; done
    for pid in "${FLOOD_PIDS[@]}"; do wait "$pid"; done
    FLOOD_FDS=()
    FLOOD_PIDS=()
}
flood_check() { # DESCRIPTION EXPECTED
    if [ "$FLOOD_RESULT" = "$2" ]; then lab_pass "$1: $2"; else lab_fail "$1: expected '$2', got '$FLOOD_RESULT'"; fi
}

transfer_start transfer-s2 "$S2_TRANSFER_S"
rss0=$(rss_kb)

flood relays 1080 connect 500 "$LAB_INTERNAL_IP" "$LAB_ECHO_PORT"
flood_check "s2: 500 idle relays to the echo server through the tunnel" "held 500 refused 0 closed 0 failed 0"
flood halfopen 1080 partial 300
flood_check "s2: 300 half-open handshakes (greeting, half a request)" "held 300 refused 0 closed 0 failed 0"
flood silent 1080 silent 1000
flood_check "s2: 1,000 silent clients: the listener's cap (1024) holds 223 more, the rest reset at once" \
    "held 223 refused 777 closed 0 failed 0"
flood silent2 1081 silent 1000
flood_check "s2: 1,000 silent clients on the second listener: the global cap (1500) leaves 476" \
    "held 476 refused 524 closed 0 failed 0"
rss1=$(rss_kb)
flood more 1080 silent 2000
flood_check "s2: 2,000 more at the first listener's cap: all reset" "held 0 refused 2000 closed 0 failed 0"
flood more2 1081 silent 1000
flood_check "s2: 1,000 more at the global cap: all reset" "held 0 refused 1000 closed 0 failed 0"
rss2=$(rss_kb)

lab_log "vpn2socks VmRSS: ${rss0} kB before, ${rss1} kB holding 1,500, ${rss2} kB after 3,000 more refused"
if grep -q __asan_init "$BIN"; then
    # AddressSanitizer keeps freed memory in quarantine and pads every block: RSS means nothing
    lab_skip "s2: RSS bounds (an AddressSanitizer build)"
else
    lab_check "s2: RSS grew by $((rss1 - rss0)) kB holding 1,500 connections (bound ${S2_RSS_HELD_KB} kB)" \
        test "$((rss1 - rss0))" -lt "$S2_RSS_HELD_KB"
    lab_check "s2: RSS grew by $((rss2 - rss1)) kB over 3,000 refusals (bound ${S2_RSS_REFUSED_KB} kB)" \
        test "$((rss2 - rss1))" -lt "$S2_RSS_REFUSED_KB"
fi
cap_lines() { grep -c "$1" "$S/v2s.log"; }
lab_check_eq "s2: one log line for the listener's cap over 2,777 refusals" 1 \
    "$(cap_lines 'SOCKS listener 127.0.0.1:1080: 1024 connections, its cap (--listener-max-connections)')"
lab_check_eq "s2: one log line for the global cap over 1,524 refusals" 1 \
    "$(cap_lines 'every listener together: 1500 connections, its cap (--max-connections)')"
lab_check_eq "s2: no other line about the caps" 0 "$(cap_lines 'still at its cap')"

flood_release
lab_check "s2: after the flood, 1080 relays again (echo through the tunnel)" \
    sc echo "$LAB_INTERNAL_IP" "$LAB_ECHO_PORT" 100000
sc_1081() { local SOCKS_PORT=1081; sc "$@"; }
lab_check "s2: after the flood, 1081 relays again" sc_1081 echo "$LAB_INTERNAL_IP" "$LAB_ECHO_PORT" 100000
# A service of this host's own on loopback (an echo server in the client's namespace).
lab_bg local-echo ip netns exec "$LAB_CLIENT_NS" "$LAB_PY" "$LAB_LIB_DIR/echo_server.py" 127.0.0.1 "$LOCAL_ECHO_PORT"
lab_wait_listen "$LAB_CLIENT_NS" tcp 127.0.0.1 "$LOCAL_ECHO_PORT" 10 || lab_die "the local echo server did not start"
lab_check "s2: with --allow-direct-local, 127.0.0.1:$LOCAL_ECHO_PORT through 1080: reply 0x00" \
    sc connect 127.0.0.1 "$LOCAL_ECHO_PORT" 0x00
lab_check "s2: ... and the log shows it went direct" \
    grep -qE -- "-> 127\\.0\\.0\\.1:$LOCAL_ECHO_PORT \\(direct\\) open" "$S/v2s.log"
lab_check "s2: but 127.0.0.1:1081, vpn2socks's own listener, through 1080: reply 0x02" sc connect 127.0.0.1 1081 0x02
lab_check "s2: ... with one line that says it would loop" \
    grep -qE -- '-> 127\.0\.0\.1:1081: one of this vpn2socks.s own listeners: refused, it would loop \(reply 2\)' \
    "$S/v2s.log"
transfer_check "s2"
lab_check "s2: vpn2socks still running" v2s_alive
lab_stop_openconnect TERM
lab_check_eq "s2: exit status after openconnect TERM" 3 "$(v2s_wait_exit "$S" 10)"

lab_log "tests took $((SECONDS - t_start))s after setup"
lab_finish
