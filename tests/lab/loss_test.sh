#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# A lossy path: nftables in the client namespace drops a random 3 % of the VPN's UDP datagrams in
# each direction, so lwIP in vpn2socks both receives and sends through loss (several losses per
# window, lost retransmissions, lost ACKs). What must hold: every byte arrives, in order:
#   - a 24 MiB download through SOCKS5, sha256 checked;
#   - a 16 MiB TCP echo (upload and download at once, then half-close both ways);
#   - 6 echoes of 4 MiB side by side;
#   - after the loss is lifted, a 24 MiB upload and download as a control;
#   - the uploads' losses were repaired by our SACK recovery (its count in the log at exit).
# Speed is not asserted (benchmarks measure it). Needs root (skips with 77 otherwise).
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/openvpn.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/v2s.sh"

lab_require_root
LAB_BIG_MB=${LAB_BIG_MB:-24}
export LAB_BIG_MB
lab_setup --no-ocserv
v2s_prepare
LOSS_PERCENT=3

# echo_many N BYTES: N echoes through SOCKS5 at once; all must come back intact
echo_many() {
    local n=$1 bytes=$2 i pids=() bad=0
    for ((i = 0; i < n; i++)); do
        sc echo "$LAB_INTERNAL_IP" "$LAB_ECHO_PORT" "$bytes" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || bad=$((bad + 1)); done
    [ "$bad" = 0 ] || { echo "$bad of $n echoes failed"; return 1; }
}

# dropped: datagrams nftables has dropped so far (both directions)
dropped() {
    lab_in_client nft list table inet v2sloss | awk '/counter packets/ {for (i = 1; i < NF; i++) if ($i == "packets") n += $(i + 1)} END {print n + 0}'
}

lab_start_openvpn_server lossy --proto udp
lab_openvpn_client_config lossy
v2s_start_ovpn lossy "$LAB_OVPN_CLIENT_DIR" || lab_die "vpn2socks did not bring the tunnel up"
port=${LAB_OVPN_PORT[lossy]}
printf 'table inet v2sloss {
 chain out { type filter hook output priority 0; udp dport %s numgen random mod 100 < %s counter drop; }
 chain in { type filter hook input priority 0; udp sport %s numgen random mod 100 < %s counter drop; }
}\n' "$port" "$LOSS_PERCENT" "$port" "$LOSS_PERCENT" | lab_in_client nft -f - || lab_die "nft failed"

lab_check "${LOSS_PERCENT}% loss: ${LAB_BIG_MB} MiB download, sha256 and size match" \
    v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_BIG_FILE" "$S/big" 120 "$LAB_BIG_SHA256" "$LAB_BIG_SIZE"
lab_check "${LOSS_PERCENT}% loss: 16 MiB echo (both directions at once), intact" \
    sc echo "$LAB_INTERNAL_IP" "$LAB_ECHO_PORT" $((16 * 1048576))
# These stalled in about 1 run of 15 until our pure ACKs stayed inside the peer's window
# (stack/recovery.c): an echo server blocked writing to us never saw them.
lab_check "${LOSS_PERCENT}% loss: 6 echoes of 4 MiB side by side, all intact" echo_many 6 $((4 * 1048576))
n=$(dropped)
lab_check "the path really lost datagrams ($n dropped)" test "$n" -gt 100
lab_in_client nft delete table inet v2sloss

lab_check "no loss: 24 MiB echo, intact" sc echo "$LAB_INTERNAL_IP" "$LAB_ECHO_PORT" $((24 * 1048576))
lab_check "no loss: ${LAB_BIG_MB} MiB download, sha256 and size match" \
    v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_BIG_FILE" "$S/big" 60 "$LAB_BIG_SHA256" "$LAB_BIG_SIZE"
lab_check "vpn2socks is still running" v2s_alive
lab_check_eq "vpn2socks exits 0 on SIGTERM" 0 "$(v2s_stop)"
# The echoes sent through the loss: lwIP's own fast retransmit would repair them too, only slower,
# so the check is that our SACK recovery (stack/recovery.c) did the resending.
lab_check "SACK loss recovery resent segments (its log line at exit)" \
    grep -qE 'SACK loss recovery: [1-9][0-9]* episodes, [1-9][0-9]* segments resent' "$S/v2s.log"
lab_stop_openvpn_server lossy
lab_finish
