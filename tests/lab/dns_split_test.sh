#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# Split DNS through the native OpenVPN client: vpn2socks as nobody with --others direct against
# Debian's openvpn 2.6 server, which pushes the domain lab.test, the route to 10.99.0.0/24 and two
# DNS servers in this order: a dead one (dns_server.py silent: it logs what reaches it and never
# answers) and one that answers UDP with TC=1 and no records, and TCP in full (dns_server.py tc).
# The client namespace's /etc/hosts (ip netns exec's /etc/netns/NS/hosts) knows outside.example,
# and maps web.lab.test to 127.0.0.2 (a name the host's resolver must never be asked).
#   - curl --socks5-hostname to web.lab.test (a tunnel-domain name): the page byte-exact; the
#     dead server was asked first, then the second over UDP (truncated) and over TCP;
#   - the same again: no query anywhere (the cache);
#   - the single label "web" (searched as web.lab.test): the page, asked of the good server first
#     (the dead one's failure is remembered: nothing more reaches it, so its 2 s timeout is not
#     paid again; the time is logged, not asserted);
#   - the dead server is named in one warning ("is not answering"), the good one never;
#   - outside.example (not under lab.test): resolved by the host's resolver, the page through
#     the tunnel; neither tunnel DNS server ever hears the name;
#   - web.lab<U+3002>test (the ideographic full stop the host's resolver reads as a dot): through
#     the tunnel's DNS, connected, not the host's 127.0.0.2;
#   - with --others reject instead: web.lab.test still works, outside.example is refused (SOCKS
#     reply 2, curl exit 97) without a lookup, and still no tunnel DNS server hears it;
#   - with --dns GOOD: it replaces the pushed servers (the log shows only it, the dead one is
#     never asked).
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
lab_setup --no-ocserv
v2s_prepare

DEAD=10.99.0.54
GOOD=10.99.0.53
DEAD_LOG=$LAB_RUN_DIR/log/dns-dead-queries.log
GOOD_LOG=$LAB_RUN_DIR/log/dns-good-queries.log
: >"$DEAD_LOG"
: >"$GOOD_LOG"
lab_in_server ip addr add "$DEAD/32" dev lo
lab_in_server ip addr add "$GOOD/32" dev lo
lab_bg dns-dead ip netns exec "$LAB_SERVER_NS" "$LAB_PY" "$here/dns_server.py" "$DEAD" "$DEAD_LOG" silent
lab_bg dns-good ip netns exec "$LAB_SERVER_NS" "$LAB_PY" "$here/dns_server.py" "$GOOD" "$GOOD_LOG" tc \
    "$LAB_WEB_NAME=$LAB_INTERNAL_IP"
lab_wait_listen "$LAB_SERVER_NS" udp "$DEAD" 53 || lab_die "the silent DNS server did not start"
lab_wait_listen "$LAB_SERVER_NS" tcp "$GOOD" 53 || lab_die "the TC DNS server did not start"

NETNS_ETC=/etc/netns/$LAB_CLIENT_NS
mkdir -p "$NETNS_ETC"
printf '127.0.0.1 localhost\n%s outside.example\n127.0.0.2 %s\n' "$LAB_INTERNAL_IP" "$LAB_WEB_NAME" >"$NETNS_ETC/hosts"
trap 'rc=$?; rm -rf "$NETNS_ETC"; (exit $rc); lab_teardown' EXIT

lab_start_openvpn_server dns --proto udp --dns "$DEAD $GOOD"
lab_openvpn_client_config dns
v2s_start_ovpn dns "$LAB_OVPN_CLIENT_DIR" --others direct || lab_die "vpn2socks did not bring the tunnel up"

# fetch HOST: the small file from http://HOST:PORT/ through --socks5-hostname, byte-exact
fetch() {
    local out=$S/small
    rm -f "$out"
    lab_in_client curl -sS -f --connect-timeout 10 -m 20 -o "$out" --socks5-hostname "$SOCKS_ADDR:$SOCKS_PORT" \
        "http://$1:$LAB_WEB_PORT/$LAB_SMALL_FILE" || return 1
    v2s_check_file "$out" "$LAB_SMALL_SHA256"
}
# asked LOG PROTO NAME: how many questions for NAME (type A) came over PROTO
asked() { grep -cx -- "$2 $3 1" "$1"; }

lab_check "web.lab.test (the tunnel's domain) through SOCKS: the page byte-exact" fetch "$LAB_WEB_NAME"
lab_check_eq "the dead first server was asked first" 1 "$(asked "$DEAD_LOG" udp "$LAB_WEB_NAME")"
lab_check_eq "the second server over UDP (it answered TC=1)" 1 "$(asked "$GOOD_LOG" udp "$LAB_WEB_NAME")"
lab_check_eq "... then over TCP" 1 "$(asked "$GOOD_LOG" tcp "$LAB_WEB_NAME")"

lab_check "web.lab.test again: the page" fetch "$LAB_WEB_NAME"
lab_check_eq "... answered from the cache: no query anywhere (still 1 and 2 questions)" "1 2" \
    "$(wc -l <"$DEAD_LOG") $(wc -l <"$GOOD_LOG")"

t0=$(date +%s%N)
lab_check "the single label web (searched as web.lab.test): the page" fetch web
ms=$((($(date +%s%N) - t0) / 1000000))
lab_check_eq "... the good server asked first: nothing more reached the dead one" 1 "$(wc -l <"$DEAD_LOG")"
lab_check_eq "... which answered it over UDP and TCP" "2 2" \
    "$(asked "$GOOD_LOG" udp "$LAB_WEB_NAME") $(asked "$GOOD_LOG" tcp "$LAB_WEB_NAME")"
# No check on the time it took (tests assert no timings): the dead server's log above shows it
# was not asked, which is what spares its 2 s timeout.
lab_log "the single label took ${ms} ms"
lab_check_eq "the dead server named in one warning, the good one in none" "1 0" \
    "$(grep -c "warn: resolver: DNS server $DEAD is not answering" "$S/v2s.log") $(grep -c "DNS server $GOOD" "$S/v2s.log")"

lab_check "outside.example (not the tunnel's) through SOCKS: the page, by the host's resolver" fetch outside.example
lab_check_eq "... the tunnel's DNS servers never heard the name" 0 \
    "$(cat "$DEAD_LOG" "$GOOD_LOG" | grep -c outside)"
lab_check "... the log says who resolved it" grep -qF "dial: outside.example: resolved by the host's resolver" \
    "$S/v2s.log"
lab_check "... and that it went through the tunnel" grep -qE -- "-> outside.example:$LAB_WEB_PORT .*\(tunnel\) open$" \
    "$S/v2s.log"

# The tunnel's name written with an ideographic full stop (U+3002), which the host's resolver
# (libuv's IDNA conversion) reads as a dot: judged as web.lab.test, so resolved through the
# tunnel and connected (reply 0). Were it handed to the host's resolver, that would leak the
# name to the host's DNS; here the namespace's hosts file maps it to 127.0.0.2, which --others
# direct refuses as a local address (reply 2).
lab_check "web.lab<U+3002>test through SOCKS: connected through the tunnel's DNS (reply 0)" \
    sc connect "${LAB_WEB_NAME%.test}"$'\u3002'test "$LAB_WEB_PORT" 0x00

lab_check "vpn2socks is still running" v2s_alive
lab_check_eq "SIGTERM: exit status 0" 0 "$(v2s_stop)"

# --others reject: a name outside the tunnel's domains is refused without a lookup anywhere.
v2s_start_ovpn dns-reject "$LAB_OVPN_CLIENT_DIR" --others reject || lab_die "vpn2socks did not bring the tunnel up"
lab_check "--others reject: web.lab.test still through the tunnel" fetch "$LAB_WEB_NAME"
rc=0
err=$(lab_in_client curl -sS --connect-timeout 10 -m 20 -o /dev/null --socks5-hostname "$SOCKS_ADDR:$SOCKS_PORT" \
    "http://outside.example:$LAB_WEB_PORT/$LAB_SMALL_FILE" 2>&1) || rc=$?
lab_check_eq "... outside.example refused with SOCKS reply 2 (not allowed): curl exit 97 ($err)" "97 (2)" \
    "$rc $(grep -o '([0-9])$' <<<"$err")"
lab_check "... the log says why" grep -qF \
    "dial: outside.example: not under the tunnel's DNS domains: refused (--others reject)" "$S/v2s.log"
lab_check_eq "... and the tunnel's DNS servers never heard the name" 0 "$(cat "$DEAD_LOG" "$GOOD_LOG" | grep -c outside)"
lab_check_eq "SIGTERM: exit status 0" 0 "$(v2s_stop)"

# --dns replaces the pushed servers for the native OpenVPN client: the dead one is never asked.
dead_before=$(wc -l <"$DEAD_LOG")
v2s_start_ovpn dns-override "$LAB_OVPN_CLIENT_DIR" --dns "$GOOD" || lab_die "vpn2socks did not bring the tunnel up"
lab_check_eq "--dns $GOOD: the only DNS server the log shows" "DNS $GOOD" \
    "$(grep -o 'tunnel up: DNS .*' "$S/v2s.log" | sed 's/tunnel up: //' | tr '\n' ' ' | sed 's/ $//')"
t0=$(date +%s%N)
lab_check "... web.lab.test through SOCKS: the page" fetch "$LAB_WEB_NAME"
ms=$((($(date +%s%N) - t0) / 1000000))
lab_check_eq "... the pushed dead server was not asked" "$dead_before" "$(wc -l <"$DEAD_LOG")"
lab_log "--dns $GOOD: the lookup and fetch took ${ms} ms"
lab_check_eq "SIGTERM: exit status 0" 0 "$(v2s_stop)"
lab_finish
