#!/bin/bash
# shellcheck disable=SC2317,SC2119  # helpers are called through lab_check; lab_setup takes no args here
# Faults under load, as users meet them, vpn2socks as nobody with connections in flight (echoes
# through SOCKS5, paced so that they are mid-transfer when the fault strikes; load_gen.py):
#   (a) the OpenVPN server (UDP, ping-restart 10 s) killed mid-transfer and started again: the
#       SOCKS listener stays up, vpn2socks reconnects by itself, every connection in flight ends,
#       its bytes intact or with an error, instead of hanging (with the same address again they
#       may survive: stack.c keeps them), new connections work;
#   (a2) the same over TCP, the server coming back with another address for us: a new CONNECT
#       while the tunnel is down is answered at once with 0x03 (README "SOCKS replies": no route,
#       the tunnel is down), and the connections in flight are reset within seconds of the tunnel
#       coming back (they cannot survive a new address);
#   (b) the path dark (nftables drops the VPN's datagrams in the client namespace) for longer
#       than ping-restart, then back: vpn2socks notices, answers a CONNECT with 0x03 meanwhile,
#       reconnects, every connection in flight ends, and new connections work;
#   (c) 5 % random loss each way during FAULT_LOSS_CONNS connections at once: every byte intact;
#   (d) the tunnel's first DNS server dead (it swallows queries): names given to the proxy
#       (socks5h) resolve through the second;
#   (e) openconnect killed mid-transfer: vpn2socks exits with status 3 (README "Exit status")
#       and the connections in flight get an error at once, not a hang.
# A connection in flight counts as hung when it moves no byte for FAULT_HANG_S (45) seconds, or is
# not done after 120 s (FAULT_DEADLINE_S for (c): crawling); the bounds are correctness bounds,
# sized for the CI form: 1,000 connections at once take minutes even without loss, with the stock
# client too (tests/lab/load_test.sh), so the full form of (c), by hand, widens them:
#   FAULT_CASES=c FAULT_LOSS_CONNS=1000 FAULT_HANG_S=180 FAULT_DEADLINE_S=1200 tests/lab/faults_test.sh
# The times themselves are printed, never asserted.
# FAULT_CAPTURE=FILE (by hand) writes a capture of (c)'s inner TCP headers at the server's tun to
# FILE, and at the first stall the echo server's sockets (out/stall-ss.txt) and vpn2socks's counters.
# Knobs: FAULT_LOSS_CONNS (200), FAULT_LOSS_SIZE (bytes each way, 1048576), FAULT_HANG_S (45),
# FAULT_DEADLINE_S (120), FAULT_CASES ("a a2 b c
# d e"), LAB_KEEP=1 (run dir with out/*.tsv per connection and out/*/v2s.log).
# Needs root (skips with exit 77 otherwise). The binary: $VPN2SOCKS_BIN, else build/vpn2socks.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/openvpn.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/v2s.sh"

FAULT_LOSS_CONNS=${FAULT_LOSS_CONNS:-200}
FAULT_LOSS_SIZE=${FAULT_LOSS_SIZE:-1048576}
FAULT_CASES=${FAULT_CASES:-a a2 b c d e}
FAULT_HANG_S=${FAULT_HANG_S:-45}
FAULT_DEADLINE_S=${FAULT_DEADLINE_S:-120}
LOAD_GEN=$here/load_gen.py
DEAD_DNS=10.99.0.53

lab_require_root
lab_openvpn_require
ulimit -n $((FAULT_LOSS_CONNS * 3 + 1000)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
LAB_BIG_MB=1 lab_setup
v2s_prepare

want() { [[ " $FAULT_CASES " == *" $1 "* ]]; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }

# ---------------------------------------------------------------- connections in flight

# inflight_start NAME N SIZE RATE: N echoes of SIZE bytes each way through the proxy, each paced
# at RATE bytes/s, in the background; one line per connection in $IF_TSV. The case sets IF_FAULT
# (now) just before it does harm, so that inflight_ended can tell that they were in flight then.
inflight_start() {
    IF_TSV=$LAB_RUN_DIR/out/$1.tsv
    IF_FAULT=''
    lab_bg "$1" ip netns exec "$LAB_CLIENT_NS" "$LAB_PY" "$LOAD_GEN" --label "$1" \
        --socks "$SOCKS_ADDR:$SOCKS_PORT" --size "$3" --rate "$4" --stall "$FAULT_HANG_S" \
        --deadline 120 --results "$IF_TSV" "echo=$2@$LAB_INTERNAL_IP:$LAB_ECHO_PORT"
    IF_PID=$LAB_LAST_PID
}

# inflight_wait: until the generator has ended (every connection ended, or hung for FAULT_HANG_S)
inflight_wait() { wait "$IF_PID" 2>/dev/null; }

# inflight_ended T BOUND [reset]: every connection in flight ended at most BOUND s after T (when
# $IF_EVENT, default the tunnel coming back), none hung and none with wrong bytes (an error is
# fine: a reset, an early EOF); with "reset", every one ended with an error. Every one must have
# ended after $IF_FAULT: one that ended before (refused, failed, done) was never in flight, and
# "ended with an error" would pass it whatever the fault did. Prints how they ended.
inflight_ended() {
    awk -F'\t' -v up="$1" -v bound="$2" -v want_reset="${3:-}" -v event="${IF_EVENT:-the tunnel was back}" \
        -v fault="${IF_FAULT:?the case sets IF_FAULT before the fault}" '
        {
            n++
            if ($7 < fault) early++
            if ($3 == 1) ok++
            else { e = $9; gsub(/[0-9]+/, "N", e); err[e]++ }
            if ($9 ~ /stalled|crawling|differ|more bytes/) bad++
            if (n == 1 || $7 > last) last = $7
        }
        END {
            printf "%d connections: %d completed intact, %d ended with an error; the last one ended %.1f s after %s\n", n, ok, n - ok, last - up, event
            for (e in err) printf "  %d x %s\n", err[e], e
            if (n == 0) exit 1
            if (early > 0) { printf "  %d ended before the fault: not in flight, the check proves nothing\n", early; exit 1 }
            if (bad > 0) { print "  hung or wrong bytes: a failure"; exit 1 }
            if (last - up > bound) { printf "  later than %d s after %s\n", bound, event; exit 1 }
            if (want_reset != "" && ok > 0) { print "  expected every one reset"; exit 1 }
        }' "$IF_TSV"
}

# inflight_check DESCRIPTION T_UP BOUND [reset]: lab_check of inflight_ended; how the connections
# ended is printed either way
inflight_check() {
    local desc=$1
    shift
    lab_check "$desc" inflight_ended "$@" && inflight_ended "$@" | sed -n '1s/^/    /p'
}

# ---------------------------------------------------------------- small helpers

# connect_start HOST PORT: one SOCKS5 CONNECT in the background, its outcome ("reply 0xNN after
# S s", "no reply after 25.0 s") into $CONNECT_OUT; connect_answered_03 checks it afterwards:
# answered with 0x03 (no route: the tunnel is down, README "SOCKS replies") within 5 s
connect_start() {
    CONNECT_OUT=$LAB_RUN_DIR/out/connect-$((++CONNECTS)).out
    lab_in_client "$LAB_PY" - "$SOCKS_ADDR" "$SOCKS_PORT" "$1" "$2" >"$CONNECT_OUT" 2>&1 <<'EOF' &
import ipaddress, socket, sys, time
t0 = time.monotonic()
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=25)
s.settimeout(25)
try:
    s.sendall(b"\x05\x01\x00")
    s.recv(2)
    s.sendall(b"\x05\x01\x00\x01" + ipaddress.ip_address(sys.argv[3]).packed
              + int(sys.argv[4]).to_bytes(2, "big"))
    rep = s.recv(10)
    t = time.monotonic() - t0
    print(f"reply {rep[1]:#04x} after {t:.1f} s" if len(rep) > 1 else f"closed after {t:.1f} s")
except socket.timeout:
    print(f"no reply after {time.monotonic() - t0:.1f} s")
except OSError as e:
    print(f"{e} after {time.monotonic() - t0:.1f} s")
EOF
    CONNECT_PID=$!
}
CONNECTS=0

connect_answered_03() {
    wait "$CONNECT_PID"
    cat "$CONNECT_OUT"
    grep -qE '^reply 0x03 after [0-4]\.' "$CONNECT_OUT"
}

# wait_up N TIMEOUT_S: until vpn2socks's log has N "tunnel up: address" lines; T_UP is then
wait_up() {
    lab_wait_count "$S/v2s.log" 'tunnel up: address' "$1" "$2" || return 1
    T_UP=$(now)
}

ups() { grep -c 'tunnel up: address' "$S/v2s.log"; }

socks_listening() {
    lab_in_client ss -Hltn "( sport = :$SOCKS_PORT )" | grep -qF "$SOCKS_ADDR:$SOCKS_PORT" ||
        { echo "nothing listens on $SOCKS_ADDR:$SOCKS_PORT"; return 1; }
}

# echoes_ok N SIZE: N echoes at once through the proxy, every byte back intact
echoes_ok() {
    lab_in_client "$LAB_PY" "$LOAD_GEN" --socks "$SOCKS_ADDR:$SOCKS_PORT" --size "$2" --stall 30 \
        --deadline 60 "echo=$1@$LAB_INTERNAL_IP:$LAB_ECHO_PORT"
}

# loss_run OUT: FAULT_LOSS_CONNS echoes at once through the proxy; the output in OUT and shown
loss_run() {
    local rc
    lab_in_client "$LAB_PY" "$LOAD_GEN" --label loss --socks "$SOCKS_ADDR:$SOCKS_PORT" \
        --size "$FAULT_LOSS_SIZE" --stall "$FAULT_HANG_S" --deadline "$FAULT_DEADLINE_S" --results "$LAB_RUN_DIR/out/loss.tsv" \
        ${FAULT_CAPTURE:+--on-stall "$LAB_RUN_DIR/on-stall.sh"} \
        "echo=$FAULT_LOSS_CONNS@$LAB_INTERNAL_IP:$LAB_ECHO_PORT" >"$1" 2>&1 && rc=0 || rc=$?
    grep -v '^RESULT ' "$1"
    return "$rc"
}

# dns_order: vpn2socks's log lists the DNS servers it took: the dead one first, then the lab's
dns_order() {
    local got
    got=$(sed -n 's/.*tunnel up: DNS //p' "$S/v2s.log" | tr '\n' ' ')
    echo "DNS servers taken: $got"
    [ "$got" = "$DEAD_DNS $LAB_DNS_IP " ]
}

# dark_on PORT / dark_off: nftables drops every datagram to and from the VPN server's PORT
dark_on() {
    printf 'table inet v2sdark {
 chain out { type filter hook output priority 0; udp dport %s drop; }
 chain in { type filter hook input priority 0; udp sport %s drop; }
}\n' "$1" "$1" | lab_in_client nft -f -
}
dark_off() { lab_in_client nft delete table inet v2sdark; }

# ================================================================ (a) server killed, UDP
if want a; then
    lab_start_openvpn_server kill-udp --proto udp --keepalive "2 10"
    lab_openvpn_client_config kill-udp
    if v2s_start_ovpn kill-udp "$LAB_OVPN_CLIENT_DIR"; then
        inflight_start inflight-a 20 $((4 * 1048576)) 262144
        sleep 3
        T_KILL=$(now) IF_FAULT=$T_KILL
        lab_stop_openvpn_server kill-udp KILL
        sleep 3
        lab_check "(a) server killed: the SOCKS listener stays up" socks_listening
        lab_check "(a) server killed: vpn2socks still running" v2s_alive
        lab_openvpn_launch kill-udp
        if wait_up 2 40; then
            lab_pass "(a) vpn2socks reconnected by itself ($(awk -v a="$T_KILL" -v b="$T_UP" 'BEGIN {printf "%.1f", b - a}') s after the kill)"
        else
            lab_fail "(a) vpn2socks reconnected by itself"
            T_UP=$(now)
        fi
        lab_check "(a) a new connection after the reconnect: 20 echoes of 1 MiB intact" echoes_ok 20 1048576
        inflight_wait
        inflight_check "(a) every connection in flight ended (intact or an error), none hung, within 45 s" \
            "$T_UP" 45
        lab_check "(a) the same vpn2socks process throughout" v2s_alive
        lab_check_eq "(a) exits 0 on SIGTERM" 0 "$(v2s_stop)"
    else
        lab_fail "(a) vpn2socks brings the tunnel up"
    fi
    lab_stop_openvpn_server kill-udp
fi

# ================================================================ (a2) server killed, TCP, new address
if want a2; then
    lab_start_openvpn_server kill-tcp --proto tcp
    lab_openvpn_client_config kill-tcp
    if v2s_start_ovpn kill-tcp "$LAB_OVPN_CLIENT_DIR"; then
        inflight_start inflight-a2 20 $((4 * 1048576)) 262144
        sleep 3
        IF_FAULT=$(now)
        lab_stop_openvpn_server kill-tcp KILL
        # it comes back giving this client another address (client-config-dir, by the CN)
        ccd=${LAB_OVPN_DIR[kill-tcp]}/ccd
        mkdir -p "$ccd"
        echo "ifconfig-push ${LAB_OVPN_NET[kill-tcp]%.0}.77 255.255.255.0" >"$ccd/ovpn-client"
        echo "client-config-dir $ccd" >>"${LAB_OVPN_CONF[kill-tcp]}"
        if lab_wait_file_match "$S/v2s.log" 'reconnecting in' 10 "$V2S_PID"; then
            lab_pass "(a2) over TCP the lost server is noticed at once"
        else
            lab_fail "(a2) over TCP the lost server is noticed at once"
        fi
        connect_start "$LAB_INTERNAL_IP" "$LAB_WEB_PORT"
        lab_check "(a2) tunnel down: the SOCKS listener stays up" socks_listening
        sleep 2
        lab_openvpn_launch kill-tcp
        if wait_up 2 40; then
            lab_pass "(a2) vpn2socks reconnected by itself"
        else
            lab_fail "(a2) vpn2socks reconnected by itself"
            T_UP=$(now)
        fi
        lab_check "(a2) tunnel down: a new CONNECT was answered at once with 0x03 (no route)" \
            connect_answered_03
        lab_check "(a2) the new address is taken" grep -qE 'tunnel up: address .*\.77/' "$S/v2s.log"
        inflight_wait
        inflight_check "(a2) every connection in flight was reset within 5 s of the tunnel coming back" \
            "$T_UP" 5 reset
        lab_check "(a2) new connections after the reconnect: 20 echoes of 1 MiB intact" echoes_ok 20 1048576
        lab_check "(a2) the same vpn2socks process throughout" v2s_alive
        lab_check_eq "(a2) exits 0 on SIGTERM" 0 "$(v2s_stop)"
    else
        lab_fail "(a2) vpn2socks brings the tunnel up"
    fi
    lab_stop_openvpn_server kill-tcp
fi

# ================================================================ (b) the path dark, then back
if want b; then
    lab_start_openvpn_server dark --proto udp --keepalive "2 8"
    lab_openvpn_client_config dark
    if v2s_start_ovpn dark "$LAB_OVPN_CLIENT_DIR"; then
        inflight_start inflight-b 20 $((4 * 1048576)) 262144
        sleep 3
        T_DARK=$(now) IF_FAULT=$T_DARK
        dark_on "${LAB_OVPN_PORT[dark]}"
        if lab_wait_file_match "$S/v2s.log" 'ping-restart' 20 "$V2S_PID"; then
            lab_pass "(b) the dark path is noticed (ping-restart, after $(since "$T_DARK") s)"
        else
            lab_fail "(b) the dark path is noticed (ping-restart)"
        fi
        connect_start "$LAB_INTERNAL_IP" "$LAB_WEB_PORT"
        lab_check "(b) path dark: the SOCKS listener stays up" socks_listening
        sleep 5
        dark_off
        T_LIGHT=$(now)
        if wait_up 2 40; then
            lab_pass "(b) reconnected once the path is back ($(awk -v a="$T_LIGHT" -v b="$T_UP" 'BEGIN {printf "%.1f", b - a}') s after; dark for $(awk -v a="$T_DARK" -v b="$T_LIGHT" 'BEGIN {printf "%.1f", b - a}') s)"
        else
            lab_fail "(b) reconnected once the path is back"
            T_UP=$(now)
        fi
        lab_check "(b) path dark: a new CONNECT was answered at once with 0x03 (no route)" \
            connect_answered_03
        lab_check "(b) new connections after the reconnect: 20 echoes of 1 MiB intact" echoes_ok 20 1048576
        lab_check "(b) a download after the reconnect, sha256 matches" \
            v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_BIG_FILE" "$S/big" 30 "$LAB_BIG_SHA256" "$LAB_BIG_SIZE"
        inflight_wait
        inflight_check "(b) every connection in flight ended (intact or an error), none hung, within 45 s" \
            "$T_UP" 45
        lab_check "(b) the same vpn2socks process throughout" v2s_alive
        lab_check_eq "(b) exits 0 on SIGTERM" 0 "$(v2s_stop)"
    else
        lab_fail "(b) vpn2socks brings the tunnel up"
    fi
    lab_stop_openvpn_server dark
fi

# ================================================================ (c) 5 % loss each way, many connections
if want c; then
    lab_start_openvpn_server lossy --proto udp
    lab_openvpn_client_config lossy
    if v2s_start_ovpn lossy "$LAB_OVPN_CLIENT_DIR"; then
        port=${LAB_OVPN_PORT[lossy]}
        printf 'table inet v2sloss {
 chain out { type filter hook output priority 0; udp dport %s numgen random mod 100 < 5 counter drop; }
 chain in { type filter hook input priority 0; udp sport %s numgen random mod 100 < 5 counter drop; }
}\n' "$port" "$port" | lab_in_client nft -f - || lab_die "nft failed"
        if [ -n "${FAULT_CAPTURE:-}" ]; then
            # By hand, to find a stall: the tunnel's inner TCP headers at the server's tun, and at the
            # first stall the echo server's view of its sockets and vpn2socks's counters (SIGUSR1).
            lab_bg capture ip netns exec "$LAB_SERVER_NS" tcpdump -n -i "${LAB_OVPN_DEV[lossy]}" -s 96 \
                -w "$FAULT_CAPTURE" tcp port "$LAB_ECHO_PORT"
            printf '#!/bin/sh\nip netns exec %s ss -tnioe state established "( sport = :%s )" >%s/out/stall-ss.txt 2>&1\nkill -USR1 %s\n' \
                "$LAB_SERVER_NS" "$LAB_ECHO_PORT" "$LAB_RUN_DIR" "$V2S_PID" >"$LAB_RUN_DIR/on-stall.sh"
            chmod 755 "$LAB_RUN_DIR/on-stall.sh"
        fi
        out=$LAB_RUN_DIR/out/loss.out
        t0=$(now)
        lab_check "(c) 5% loss each way: $FAULT_LOSS_CONNS echoes at once ($FAULT_LOSS_SIZE bytes each way), every byte back intact" \
            loss_run "$out" && sed -n -e '1s/^/    /p' -e 's/^  slowest/      slowest/p' "$out"
        lab_log "(c) took $(since "$t0") s"
        # The server's own losses besides the 5 %: what its tun device dropped on the way to the
        # OpenVPN server process (the kernel outran it); a long silence in one connection is the
        # server's TCP backing off after its retransmissions were dropped there (printed only).
        lab_log "(c) the lab server's tun dropped $(lab_in_server ip -s link show dev "${LAB_OVPN_DEV[lossy]}" |
            awk '/TX:/ {getline; print $4; exit}') packets it was given to send to vpn2socks"
        n=$(lab_in_client nft list table inet v2sloss | awk '/counter packets/ {for (i = 1; i < NF; i++) if ($i == "packets") n += $(i + 1)} END {print n + 0}')
        lab_check "(c) the path really lost datagrams ($n dropped)" test "$n" -gt 100
        lab_in_client nft delete table inet v2sloss
        lab_check "(c) vpn2socks still running" v2s_alive
        lab_check_eq "(c) exits 0 on SIGTERM" 0 "$(v2s_stop)"
    else
        lab_fail "(c) vpn2socks brings the tunnel up"
    fi
    lab_stop_openvpn_server lossy
fi

# ================================================================ (d) the first DNS server dead
if want d; then
    # the first server pushed swallows every query (dropped in the server namespace, counted)
    printf 'table inet v2sdns {
 chain pre { type filter hook prerouting priority 0; ip daddr %s counter drop; }
}\n' "$DEAD_DNS" | lab_in_server nft -f - || lab_die "nft failed"
    lab_start_openvpn_server dns --proto udp --dns "$DEAD_DNS $LAB_DNS_IP"
    lab_openvpn_client_config dns
    if v2s_start_ovpn dns "$LAB_OVPN_CLIENT_DIR"; then
        lab_check "(d) the tunnel took both DNS servers, the dead one first" dns_order
        t0=$(now)
        lab_check "(d) socks5h $LAB_WEB_NAME: curl fetches the small file, sha256 matches" \
            v2s_fetch_check "$PROXY_H" "http://$LAB_WEB_NAME:$LAB_WEB_PORT/$LAB_SMALL_FILE" "$S/small" 30 \
            "$LAB_SMALL_SHA256"
        lab_log "(d) curl took $(since "$t0") s"
        t0=$(now)
        lab_check "(d) 20 names given to the proxy at once ($LAB_WEB_NAME), all resolved and fetched intact" \
            lab_in_client "$LAB_PY" "$LOAD_GEN" --socks "$SOCKS_ADDR:$SOCKS_PORT" --stall 30 \
            --size "$(stat -c %s "$LAB_WEB_ROOT/$LAB_SMALL_FILE")" --sha256 "$LAB_SMALL_SHA256" \
            "get=20@$LAB_WEB_NAME:$LAB_WEB_PORT/$LAB_SMALL_FILE"
        lab_log "(d) 20 lookups and fetches took $(since "$t0") s"
        n=$(lab_in_server nft list table inet v2sdns | awk '/counter packets/ {for (i = 1; i < NF; i++) if ($i == "packets") n += $(i + 1)} END {print n + 0}')
        lab_check "(d) the dead server really was asked ($n queries swallowed)" test "$n" -gt 0
        lab_check_eq "(d) exits 0 on SIGTERM" 0 "$(v2s_stop)"
    else
        lab_fail "(d) vpn2socks brings the tunnel up"
    fi
    lab_in_server nft delete table inet v2sdns
    lab_stop_openvpn_server dns
fi

# ================================================================ (e) openconnect killed
if want e; then
    if v2s_start_session faults-oc; then
        inflight_start inflight-e 20 $((4 * 1048576)) 262144
        sleep 3
        T_KILL=$(now) IF_FAULT=$T_KILL
        lab_stop_openconnect KILL
        status=$(v2s_wait_exit "$S" 10)
        lab_check_eq "(e) openconnect killed mid-transfer: vpn2socks exits with status 3 within 10 s" 3 "$status"
        [ "$status" = 3 ] && lab_log "(e) vpn2socks exited $(since "$T_KILL") s after openconnect was killed"
        lab_check "(e) vpn2socks logs that the tunnel was lost" grep -qE 'vpn2socks error: tunnel lost' "$S/v2s.log"
        inflight_wait
        IF_EVENT="the kill" inflight_check "(e) every connection in flight got an error within 10 s of the kill" \
            "$T_KILL" 10 reset
    else
        lab_fail "(e) openconnect starts vpn2socks"
    fi
fi

lab_finish
