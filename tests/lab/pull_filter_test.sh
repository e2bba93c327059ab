#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# pull-filter against Debian's openvpn 2.6 server, which pushes route 10.99.0.0/24 (the only way to
# the lab's web server), a second route 10.95.0.0/16, dhcp-option DNS and dhcp-option DOMAIN:
#   ignore        `pull-filter ignore "route 10.99."`, "dhcp-option DOMAIN" and "dhcp-option DNS"
#                 (the DNS server is the web server's address too): the log names the options as
#                 ignored, none is used (no such route, search domain or DNS server), the other
#                 route is, and with --others reject a connection to the web server is refused by
#                 the router (0x02) instead of going into the tunnel
#   first match   `accept "route 10.99."` before `ignore "route"`: that route is used (a file
#                 fetched through it, intact), the other route is ignored
#   reject        `reject "dhcp-option DNS"` with the server listed twice as remotes: each session
#                 is refused in turn, then vpn2socks stops with exit status 3 and one error line
#                 naming the option and the filter
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
LAB_BIG_MB=1 lab_setup --no-ocserv
v2s_prepare

logged() { grep -qF -- "$1" "$S/v2s.log" || { echo "not in the log: $1"; tail -n 8 "$S/v2s.log"; return 1; }; }
not_logged() { ! grep -F -- "$1" "$S/v2s.log" || { echo "in the log: $1"; return 1; }; }

lab_start_openvpn_server pf --proto udp -- 'push "route 10.95.0.0 255.255.0.0"'
net=${LAB_INTERNAL_NET%/*}

# ================================================================ ignore
# The DNS server is 10.99.0.1 too, and DNS servers are always reached through the tunnel: it goes.
lab_openvpn_client_config pf -- 'pull-filter ignore "route 10.99."' 'pull-filter ignore "dhcp-option DOMAIN"' \
    'pull-filter ignore "dhcp-option DNS"'
line=$(grep -n 'pull-filter ignore "route 10.99."' "$LAB_OVPN_CLIENT_DIR/config.ovpn" | cut -d: -f1)
if v2s_start_ovpn ignore "$LAB_OVPN_CLIENT_DIR" --others reject; then
    lab_check "ignore: the pushed route is logged as ignored, with the filter and its line" \
        logged "openvpn: pushed option 'route $net 255.255.255.0' ignored (pull-filter ignore \"route 10.99.\", config line $line)"
    lab_check "ignore: the pushed search domain is logged as ignored" \
        logged "openvpn: pushed option 'dhcp-option DOMAIN $LAB_DOMAIN' ignored"
    lab_check "ignore: the route is not used" not_logged "tunnel up: route $LAB_INTERNAL_NET"
    lab_check "ignore: the other route is" logged "tunnel up: route 10.95.0.0/16"
    lab_check "ignore: no search domain" not_logged "search domains"
    lab_check "ignore: no DNS server" not_logged "tunnel up: DNS"
    lab_check "ignore: $LAB_INTERNAL_IP is not sent into the tunnel (--others reject: reply 0x02)" \
        sc connect "$LAB_INTERNAL_IP" "$LAB_WEB_PORT" 0x02
    lab_check_eq "ignore: SIGTERM stops vpn2socks with status 0" 0 "$(v2s_stop)"
else
    lab_fail "ignore: tunnel up"
fi

# ================================================================ the first match decides
lab_openvpn_client_config pf -- 'pull-filter accept "route 10.99."' 'pull-filter ignore route'
if v2s_start_ovpn first "$LAB_OVPN_CLIENT_DIR" --others reject; then
    lab_check "first match: the accepted route is used" logged "tunnel up: route $LAB_INTERNAL_NET"
    lab_check "first match: the other route is ignored" \
        logged "openvpn: pushed option 'route 10.95.0.0 255.255.0.0' ignored (pull-filter ignore \"route\""
    lab_check "first match: no route to 10.95.0.0/16" not_logged "tunnel up: route 10.95.0.0/16"
    lab_check "first match: a file through the accepted route, sha256 matches" \
        v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_SMALL_FILE" "$S/a" 20 "$LAB_SMALL_SHA256"
    lab_check_eq "first match: SIGTERM stops vpn2socks with status 0" 0 "$(v2s_stop)"
else
    lab_fail "first match: tunnel up"
fi

# ================================================================ reject
# The same server twice: OpenVPN goes on to the next remote after a reject; once every remote has
# been refused there is nothing left to try.
lab_openvpn_client_config pf --dir "$LAB_RUN_DIR/ovpn/reject" -- 'pull-filter reject "dhcp-option DNS"' \
    "remote ${LAB_OVPN_ADDR[pf]} ${LAB_OVPN_PORT[pf]}"
line=$(grep -n 'pull-filter reject' "$LAB_OVPN_CLIENT_DIR/config.ovpn" | cut -d: -f1)
before=$(wc -l <"${LAB_OVPN_LOG[pf]}")
v2s_run_ovpn_fail reject "$LAB_OVPN_CLIENT_DIR"
lab_check_eq "reject: exit status" 3 "$FAIL_STATUS"
want="tunnel lost: pushed option 'dhcp-option DNS $LAB_DNS_IP' rejected by pull-filter reject \"dhcp-option DNS\" (config line $line) (by every remote in turn)"
if [ "$(grep -c 'vpn2socks error:' "$FAIL_LOG")" = 1 ] && grep -qF -- "error: $want" "$FAIL_LOG"; then
    lab_pass "reject: one error line: $want"
else
    lab_fail "reject: one error line: $want"
    cat "$FAIL_LOG"
fi
lab_check "reject: the first refusal went on to the next remote" \
    grep -qF "rejected by pull-filter reject \"dhcp-option DNS\" (config line $line); trying the next remote" "$FAIL_LOG"
lab_check_eq "reject: the server saw two sessions (one per remote), no more" 2 \
    "$(tail -n +"$((before + 1))" "${LAB_OVPN_LOG[pf]}" | grep -c "Peer Connection Initiated with \[AF_INET\]$LAB_CLIENT_IP:")"
lab_stop_openvpn_server pf

lab_finish
