#!/bin/bash
# shellcheck disable=SC2317,SC2119  # helpers are called through lab_check; lab_setup takes no args here
# vpn2socks end to end against ocserv: openconnect (as nobody, --script-tun) starts vpn2socks
# (as nobody) with a SOCKS5 listener in the client namespace; curl and raw SOCKS5 clients there
# reach the web, echo and DNS services that only the tunnel reaches.
#   small and 100 MiB downloads, 100 parallel small + 10 parallel big downloads, names through the
#   tunnel's DNS (FQDN, single label via the search domain, NXDOMAIN -> reply 4), TCP half-close
#   both ways, refused port -> reply 5, hostile SOCKS input during a download, and the tunnel
#   going away (openconnect TERM -> SIGHUP, openconnect KILL -> VPNPID watch): exit status 3;
#   openconnect given --script without --script-tun: exit status 1 and a line that says to add it.
# (Routing outside the split routes, --others, is not covered here.)
# Needs root (skips with exit 77 otherwise). The binary: $VPN2SOCKS_BIN, else build/vpn2socks.
# LAB_KEEP=1 keeps the run dir (logs of vpn2socks in out/s*/v2s.log).
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/v2s.sh"

lab_require_root
lab_setup
v2s_prepare

# parallel_check N FILE SHA256 MAX_S: N parallel downloads of FILE with one curl; all N must match
parallel_check() {
    local n=$1 file=$2 sha=$3 max=$4 dir i ok=0 bad=0 rc=0 args=()
    dir=$S/par-$file-$n
    mkdir -p "$dir"
    for ((i = 1; i <= n; i++)); do args+=(-o "$dir/$i" "$LAB_WEB_URL/$file"); done
    lab_in_client curl -sS -f --parallel --parallel-immediate --parallel-max "$n" \
        --connect-timeout 20 -m "$max" -x "$PROXY" "${args[@]}" || rc=$?
    for ((i = 1; i <= n; i++)); do
        if v2s_check_file "$dir/$i" "$sha" >/dev/null; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
    done
    rm -rf "$dir"
    echo "$ok of $n downloads complete and matching (curl exit $rc)"
    [ "$ok" -eq "$n" ] && [ "$bad" -eq 0 ] && [ "$rc" -eq 0 ]
}

# dns_queried NAME SKIP_LINES: the lab's DNS logged an A query for NAME after line SKIP_LINES
dns_queried() {
    local new
    new=$(tail -n +"$(($2 + 1))" "$LAB_RUN_DIR/log/dnsmasq.log" | grep -F 'query[')
    if ! grep -qF "query[A] $1 from" <<<"$new"; then
        echo "no A query for $1; queries: ${new:-none}"
        return 1
    fi
}


# curl_socks_error PROXY_URL URL CODE: curl fails with its SOCKS5 error naming reply CODE
curl_socks_error() {
    local out rc
    out=$(lab_in_client curl -sS -f --connect-timeout 20 -m 30 -x "$1" -o /dev/null "$2" 2>&1) && rc=0 || rc=$?
    echo "curl exit $rc: $out"
    # curl 7.88: "(97) Can't complete SOCKS5 connection to HOST. (4)"
    [ "$rc" -eq 97 ] && [[ $out == *"SOCKS5"*"($3)"* ]]
}


t_start=$SECONDS
# ================================================================ session 1: DTLS, all traffic
if v2s_start_session s1; then
    lab_pass "openconnect starts vpn2socks (as nobody); SOCKS5 listens on $SOCKS_ADDR:$SOCKS_PORT"
else
    lab_fail "openconnect starts vpn2socks (as nobody); SOCKS5 listens on $SOCKS_ADDR:$SOCKS_PORT"
    lab_finish
fi
S1=$S

# ---- 1, 2: downloads by numeric address
lab_check "socks5 $LAB_INTERNAL_IP: small file, sha256 matches" \
    v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_SMALL_FILE" "$S/small" 30 "$LAB_SMALL_SHA256"
t0=$SECONDS
lab_check "socks5 $LAB_INTERNAL_IP: $((LAB_BIG_SIZE >> 20)) MiB file, sha256 and size match" \
    v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_BIG_FILE" "$S/big" 120 "$LAB_BIG_SHA256" "$LAB_BIG_SIZE"
lab_log "big download took $((SECONDS - t0))s"

# ---- 3: parallel
lab_check "100 parallel small downloads: all 100 complete, sha256 match" \
    parallel_check 100 "$LAB_SMALL_FILE" "$LAB_SMALL_SHA256" 60
t0=$SECONDS
lab_check "10 parallel $((LAB_BIG_SIZE >> 20)) MiB downloads: all 10 complete, sha256 match" \
    parallel_check 10 "$LAB_BIG_FILE" "$LAB_BIG_SHA256" 240
lab_log "10 parallel big downloads took $((SECONDS - t0))s"

# ---- 4: names through the tunnel's DNS
# the single label first, before anything could be cached: the lab's DNS answers both "web" and
# "web.lab.test", so its query log is what shows that the search domain was applied
dns_log=$LAB_RUN_DIR/log/dnsmasq.log
dns_lines=$(wc -l <"$dns_log")
lab_check "socks5h single-label 'web': small file, sha256 matches" \
    v2s_fetch_check "$PROXY_H" "http://web:$LAB_WEB_PORT/$LAB_SMALL_FILE" "$S/small-web" 30 "$LAB_SMALL_SHA256"
lab_check "socks5h single-label 'web': looked up as web.$LAB_DOMAIN (search domain from the VPN)" \
    dns_queried "web.$LAB_DOMAIN" "$dns_lines"
lab_check "socks5h $LAB_WEB_NAME (tunnel DNS): small file, sha256 matches" \
    v2s_fetch_check "$PROXY_H" "http://$LAB_WEB_NAME:$LAB_WEB_PORT/$LAB_SMALL_FILE" "$S/small-fqdn" 30 "$LAB_SMALL_SHA256"
lab_check "socks5h nosuch.$LAB_DOMAIN (NXDOMAIN): curl reports SOCKS5 error 4" \
    curl_socks_error "$PROXY_H" "http://nosuch.$LAB_DOMAIN:$LAB_WEB_PORT/" 4
lab_check "raw SOCKS5 CONNECT nosuch.$LAB_DOMAIN: reply 0x04 (host unreachable), then close" \
    sc connect "nosuch.$LAB_DOMAIN" "$LAB_WEB_PORT" 0x04

# ---- 5: half-close
lab_check "TCP echo, 1 MiB through SOCKS5, half-close both ways (python-socks)" \
    sc echo "$LAB_INTERNAL_IP" "$LAB_ECHO_PORT" 1048576

# ---- 6: refused
lab_check "raw SOCKS5 CONNECT $LAB_INTERNAL_IP:1 (refused): reply 0x05, then close" \
    sc connect "$LAB_INTERNAL_IP" 1 0x05
lab_check "curl via socks5 to $LAB_INTERNAL_IP:1: SOCKS5 error 5" \
    curl_socks_error "$PROXY" "http://$LAB_INTERNAL_IP:1/" 5

# ---- 7: hostile input while a download runs (rate-limited so that it outlasts the abuse)
lab_bg concurrent-dl ip netns exec "$LAB_CLIENT_NS" curl -sS -f --connect-timeout 20 -m 120 \
    --limit-rate 10M -x "$PROXY" -o "$S/concurrent" "$LAB_WEB_URL/$LAB_BIG_FILE"
dl_pid=$LAB_LAST_PID
ip_hex=$(printf '%02x' ${LAB_INTERNAL_IP//./ })
port_hex=$(printf '%04x' "$LAB_WEB_PORT")
lab_check "hostile: bad version byte 0x47 ('GET / HTTP/1.1'): server closes" \
    sc close "$(printf 'GET / HTTP/1.1\r\n\r\n' | od -An -tx1 | tr -d ' \n')"
lab_check "hostile: greeting 05 00 (no methods): 05ff (no acceptable method), then close" \
    sc answer 0500 05ff
lab_check "hostile: request with ATYP 0x09: reply 0x08, then close" \
    sc request "05010009${ip_hex}${port_hex}" 0x08
# BIND itself is served (lab.socks_udp); it names the host that connects back, never a name.
lab_check "hostile: BIND (CMD 0x02) for a host name: reply 0x08, then close" \
    sc request "050200030c$(printf 'bind.example' | od -An -tx1 | tr -d ' \n')${port_hex}" 0x08
lab_check "hostile: unknown CMD 0x7f: reply 0x07, then close" \
    sc request "057f0001${ip_hex}${port_hex}" 0x07
lab_check "hostile: truncated request, then reset by the client" \
    sc truncated "05010001${ip_hex:0:4}"
lab_check "hostile: 1 MB of random bytes: server closes" sc random 1000000
lab_check "hostile: 1 MB of random bytes again (other first bytes): server closes" sc random 1000000
if kill -0 "$dl_pid" 2>/dev/null; then
    lab_pass "hostile: the concurrent download was still running throughout"
else
    lab_fail "hostile: the concurrent download had already ended (not concurrent; raise LAB_BIG_MB or lower --limit-rate)"
fi
dl_rc=0
wait "$dl_pid" || dl_rc=$?
lab_check_eq "hostile: concurrent download, curl exit status" 0 "$dl_rc"
lab_check "hostile: concurrent download, sha256 and size match" \
    v2s_check_file "$S/concurrent" "$LAB_BIG_SHA256" "$LAB_BIG_SIZE"
rm -f "$S/concurrent"
lab_check "hostile: vpn2socks still alive" v2s_alive
lab_check "hostile: a fresh download still works afterwards" \
    v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_SMALL_FILE" "$S/small-after" 30 "$LAB_SMALL_SHA256"

# ---- 9a: openconnect TERM: it SIGHUPs the script's process group -> exit 3, "tunnel lost"
lab_stop_openconnect TERM
lab_check_eq "openconnect TERM (SIGHUP): vpn2socks exit status" 3 "$(v2s_wait_exit "$S1" 10)"
lab_check "openconnect TERM (SIGHUP): vpn2socks logs that the tunnel was lost" \
    grep -E 'vpn2socks error: tunnel lost' "$S1/v2s.log"

# ================================================================ session 2: openconnect KILLed
if v2s_start_session s2; then
    lab_pass "session 2: openconnect starts vpn2socks again"
    lab_check "session 2: small file through the new tunnel" \
        v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_SMALL_FILE" "$S/small" 30 "$LAB_SMALL_SHA256"
    lab_stop_openconnect KILL
    t0=$SECONDS
    status=$(v2s_wait_exit "$S" 10)
    lab_check_eq "openconnect KILL (no SIGHUP): vpn2socks exits with status 3 within 10s" 3 "$status"
    [ "$status" = 3 ] && lab_log "vpn2socks exited $((SECONDS - t0))s after openconnect was killed"
    lab_check "openconnect KILL: vpn2socks logs that the tunnel was lost" \
        grep -E 'vpn2socks error: tunnel lost' "$S/v2s.log"
else
    lab_fail "session 2: openconnect starts vpn2socks again"
fi

# ================================================================ session 3: --script alone
# A user who leaves out --script-tun: openconnect runs the script as a vpnc-script (reason=pre-init,
# then it wants a TUN device, which nobody may make), with no packet socket. vpn2socks says what to
# add and exits 1, rather than only that no tunnel was given.
S=$LAB_RUN_DIR/out/s3
mkdir -m 1777 "$S"
: >"$LAB_RUN_DIR/log/openconnect-noscripttun.log"
ip netns exec "$LAB_CLIENT_NS" setpriv --reuid=nobody --regid=nogroup --clear-groups \
    timeout 30 openconnect --non-inter --passwd-on-stdin -u "$LAB_VPN_USER" --cafile "$LAB_CA_CERT" \
    --script "$WRAP $S -D $SOCKS_ADDR:$SOCKS_PORT" "$LAB_VPN_URL" <<<"$LAB_VPN_PASS" \
    >>"$LAB_RUN_DIR/log/openconnect-noscripttun.log" 2>&1
lab_check_eq "openconnect --script without --script-tun: vpn2socks exit status" 1 "$(v2s_wait_exit "$S" 10)"
lab_check "openconnect --script without --script-tun: vpn2socks says to add --script-tun" \
    grep -E 'vpn2socks error: no tunnel: the VPN client ran me as a vpnc-script \(reason=pre-init\).*--script-tun' \
    "$S/v2s.log"

lab_log "tests took $((SECONDS - t_start))s after setup"
if [ "$LAB_FAILED" -gt 0 ]; then
    for f in "$LAB_RUN_DIR"/out/s*/v2s.log; do
        [ -s "$f" ] || continue
        echo "---- last lines of $f" >&2
        tail -n 25 "$f" >&2
    done
fi
lab_finish
