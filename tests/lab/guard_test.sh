#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check and show
# What a host on the VPN side sees of vpn2socks's TCP, checked the way an auditor would, with
# tcpdump on the OpenVPN server's tun device (the server side of the tunnel):
#   (1) GUARD_CONNS (1000) SOCKS5 CONNECTs one after another to a port in the server's namespace:
#       the captured SYNs show no pattern. Source ports are not one apart from one SYN to the next
#       more often than chance allows (lwIP counted up by one); initial sequence numbers never
#       repeat and their differences are neither constant, nor mostly small (|diff| < 2^24: 0.8 %
#       for random ones; lwIP gave 6510 plus its tick count), nor mostly upwards.
#   (2) A forged ICMP error does not abort a connection that is opening: the server's namespace
#       drops the SYNs to one port (nftables), so a CONNECT there hangs; ICMP port unreachables
#       injected into the tunnel from the server's namespace (a raw socket) quote that SYN with
#       four wrong sequence numbers (one below and one above the SYN's among them), a wrong
#       source port and a wrong source address: the SOCKS request is still pending a second
#       later. Then one with the SYN's sequence number (read from the capture): the SOCKS client
#       gets 0x05 (connection refused) at once. SIGUSR1 makes vpn2socks log "N ICMP errors
#       ignored": the six forged ones (and so does its exit).
# Summaries (ports and ISNs: counts, ranges, sample values) are printed whether the checks pass
# or not. Knobs: GUARD_CONNS (1000), LAB_KEEP=1 keeps the run dir (log/tcpdump.log: the capture).
# Needs root and tcpdump (skips with exit 77 without root). The binary: $VPN2SOCKS_BIN, else
# build/vpn2socks.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/openvpn.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/v2s.sh"

GUARD_CONNS=${GUARD_CONNS:-1000}
PROBE=$here/guard_probe.py
HANG_PORT=7778

lab_require_root
lab_openvpn_require
command -v tcpdump >/dev/null 2>&1 || { echo "lab: missing tcpdump; run scripts/install-deps.sh" >&2; exit 1; }
LAB_BIG_MB=1 lab_setup --no-ocserv
v2s_prepare

probe() { "$LAB_PY" "$PROBE" "$@"; }

# show DESCRIPTION COMMAND...: lab_check, with the command's output shown either way
show() {
    local desc=$1 out rc
    shift
    out=$("$@" 2>&1) && rc=0 || rc=$?
    if [ "$rc" -eq 0 ]; then lab_pass "$desc"; else lab_fail "$desc (exit $rc)"; fi
    [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/    /'
    return "$rc"
}

lab_start_openvpn_server guard --proto udp
lab_openvpn_client_config guard
CAP=$LAB_RUN_DIR/log/tcpdump.log
# Every SYN that leaves the tunnel at the server (no ACK: the SYNs vpn2socks sends, not the
# server's SYN-ACKs), as text with absolute sequence numbers.
lab_bg tcpdump ip netns exec "$LAB_SERVER_NS" tcpdump -i "${LAB_OVPN_DEV[guard]}" -nn -S -l \
    'tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn'
lab_wait_file_match "$CAP" '^listening on' 10 "$LAB_LAST_PID" || lab_die "tcpdump did not start"
v2s_start_ovpn guard "$LAB_OVPN_CLIENT_DIR" || lab_die "vpn2socks did not bring the tunnel up"

# ================================================================ (1) ISNs and ports
lab_check "(1) $GUARD_CONNS SOCKS5 CONNECTs one after another, each answered 0x00" \
    lab_in_client "$LAB_PY" "$PROBE" connects "$SOCKS_ADDR" "$SOCKS_PORT" "$LAB_INTERNAL_IP" \
    "$LAB_ECHO_PORT" "$GUARD_CONNS"
for ((i = 0; i < 100; i++)); do
    probe syns "$CAP" "$LAB_ECHO_PORT" count "$GUARD_CONNS" >/dev/null && break
    sleep 0.05
done
show "(1) tcpdump at the server captured the SYNs" probe syns "$CAP" "$LAB_ECHO_PORT" count "$GUARD_CONNS"
show "(1) source ports: no counting up" probe syns "$CAP" "$LAB_ECHO_PORT" ports "$GUARD_CONNS"
show "(1) initial sequence numbers: no repeat, no pattern" probe syns "$CAP" "$LAB_ECHO_PORT" isns "$GUARD_CONNS"

# ================================================================ (2) forged ICMP errors
printf 'table inet v2sguard {
 chain in { type filter hook input priority 0; ip daddr %s tcp dport %s counter drop; }
}\n' "$LAB_INTERNAL_IP" "$HANG_PORT" | lab_in_server nft -f - || lab_die "nft failed"
PENDING=$LAB_RUN_DIR/out/pending.out
lab_bg pending ip netns exec "$LAB_CLIENT_NS" "$LAB_PY" "$PROBE" pending "$SOCKS_ADDR" "$SOCKS_PORT" \
    "$LAB_INTERNAL_IP" "$HANG_PORT" "$PENDING"
syn=''
for ((i = 0; i < 100; i++)); do
    syn=$(probe syn "$CAP" "$HANG_PORT") && break
    sleep 0.05
done
[ -n "$syn" ] || lab_die "no SYN to port $HANG_PORT in the capture"
read -r csrc sport seq <<<"$syn"
lab_log "the SYN to hang: $csrc:$sport -> $LAB_INTERNAL_IP:$HANG_PORT seq $seq"

# icmp INNER_SRC SPORT SEQ: a port unreachable from $LAB_INTERNAL_IP to the client's tunnel
# address, quoting INNER_SRC:SPORT -> $LAB_INTERNAL_IP:$HANG_PORT with sequence number SEQ
icmp() { lab_in_server "$LAB_PY" "$PROBE" icmp "$csrc" "$LAB_INTERNAL_IP" "$1" "$LAB_INTERNAL_IP" "$2" "$HANG_PORT" "$3"; }
m32() { echo $(($1 & 0xFFFFFFFF)); }
other_src=${csrc%.*}.$(((${csrc##*.} + 1) % 256))
FORGED=0
for wrong in "$csrc $sport $(m32 $((seq - 1)))" "$csrc $sport $(m32 $((seq + 1)))" \
    "$csrc $sport $(m32 $((seq + 65536)))" "$csrc $sport $(m32 $((seq ^ 0x80000000)))" \
    "$csrc $((sport ^ 1)) $seq" "$other_src $sport $seq"; do
    # shellcheck disable=SC2086  # three words: address, port, sequence number
    icmp $wrong || lab_die "sending an ICMP error failed"
    FORGED=$((FORGED + 1))
done
sleep 1

# still_pending: the CONNECT was sent and has no answer yet
still_pending() {
    cat "$PENDING"
    [ "$(cat "$PENDING")" = sent ]
}
forged="sequence numbers -1, +1, +2^16, +2^31; port $((sport ^ 1)); source $other_src"
show "(2) $FORGED forged port unreachables ($forged): the CONNECT is still pending" still_pending

t_icmp=$(date +%s.%N)
icmp "$csrc" "$sport" "$seq" || lab_die "sending an ICMP error failed"
lab_wait_file_match "$PENDING" '^(reply|closed|error)' 5

# refused_at_once: the answer is 0x05 and came after the ICMP error. Only the ICMP error can give
# 0x05 here (the SYNs are dropped: without it the CONNECT waits for --connect-timeout and gets
# 0x06), so no bound on the time is asserted; the wait above gives it 5 s.
refused_at_once() {
    local line at
    line=$(grep -E '^(reply|closed|error)' "$PENDING")
    at=${line##* at }
    echo "$line (the ICMP error was sent at $t_icmp)"
    [[ $line == "reply 0x05 at "* ]] && awk -v a="$t_icmp" -v b="$at" 'BEGIN { exit !(b >= a) }'
}
show "(2) the port unreachable with the SYN's sequence number: 0x05 (connection refused) at once" \
    refused_at_once

# ignored_count N: the log has N "ICMP errors ignored" lines (within 5 s), the last one counting
# the $FORGED forged errors
ignored_count() {
    local last n
    lab_wait_count "$S/v2s.log" 'ICMP errors ignored' "$1" 5 || { echo "fewer than $1 'ICMP errors ignored' lines in the log"; return 1; }
    last=$(grep -E 'ICMP errors ignored' "$S/v2s.log" | tail -n 1)
    echo "${last#*stack: }"
    n=$(sed -n 's/.* \([0-9][0-9]*\) ICMP errors ignored.*/\1/p' <<<"$last")
    [ "$n" = "$FORGED" ]
}
kill -USR1 "$V2S_PID"
show "(2) SIGUSR1: the log counts the $FORGED forged ICMP errors as ignored" ignored_count 1

lab_check "vpn2socks is still running" v2s_alive
lab_check "an echo through the proxy still works" sc echo "$LAB_INTERNAL_IP" "$LAB_ECHO_PORT" 65536
lab_check_eq "vpn2socks exits 0 on SIGTERM" 0 "$(v2s_stop)"
show "its log at exit counts them too" ignored_count 2
lab_stop_openvpn_server guard
lab_finish
