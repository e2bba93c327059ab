#!/bin/bash
# shellcheck disable=SC2317,SC2119  # helpers are called through lab_check; lab_setup takes no args here
# IPv6 through openconnect: ocserv hands out an IPv6 address and an IPv6 split route besides the
# IPv4 ones (s1), then IPv6 alone (s2, ocserv restarted without its IPv4 pool), and vpn2socks
# (as nobody, under openconnect --script-tun) must take them from the script's environment
# (INTERNAL_IP6_ADDRESS, INTERNAL_IP6_NETMASK, CISCO_IPV6_SPLIT_INC_*, an IPv6 server in
# INTERNAL_IP4_DNS) and carry SOCKS5 connections to an echo server on fd00:99::1, which only the
# tunnel reaches:
#   s1 (dual stack, --others tunnel): an IPv6 and an IPv4 echo; ::1, :: and ff02::1 through the
#      tunnel answered at once with reply 3 (before, their SYNs went into the VPN and the client waited out the
#      20 s connect timeout for reply 6: this case's client gives up after 10 s);
#   s2 (IPv6 only): the IPv6 echo, a name resolved by the tunnel's DNS server over IPv6 (FQDN
#      and a single label through the search domain); openconnect TERM: exit status 3.
# Needs root and IPv6 in the namespaces (skips with exit 77 otherwise). The binary:
# $VPN2SOCKS_BIN, else build/vpn2socks.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/v2s.sh"

SC=$here/socks_client.py
POOL6=fd00:98::/64
NET6=fd00:99::/64
ECHO6=fd00:99::1
NAME6=echo6

lab_require_root
LAB_BIG_MB=1 LAB_OCSERV_EXTRA="ipv6-network = $POOL6
route = $NET6" lab_setup
if [ -z "$LAB_SERVER_IP6" ]; then
    echo "SKIP: no IPv6 in the lab's namespaces"
    exit 77
fi
v2s_prepare
SOCKS_ADDR=127.0.0.1
SOCKS_PORT=1080

# the IPv6 services: echo (TCP) and a DNS server that knows echo6.lab.test
lab_in_server ip -6 addr add "$ECHO6/128" dev lo
lab_in_server sysctl -qw net.ipv6.conf.all.forwarding=1
lab_bg echo6 ip netns exec "$LAB_SERVER_NS" "$LAB_PY" "$LAB_LIB_DIR/echo_server.py" "$ECHO6" "$LAB_ECHO_PORT"
lab_bg dnsmasq6 ip netns exec "$LAB_SERVER_NS" dnsmasq --keep-in-foreground \
    --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
    --listen-address="$ECHO6" --bind-interfaces --port=53 \
    --user=nobody --group=nogroup --pid-file="$LAB_RUN_DIR/dnsmasq6.pid" --log-facility=- \
    --host-record="$NAME6.$LAB_DOMAIN,$ECHO6" --local=/#/
lab_wait_listen "$LAB_SERVER_NS" tcp "$ECHO6" "$LAB_ECHO_PORT" || lab_die "IPv6 echo server did not start"
lab_wait_listen "$LAB_SERVER_NS" udp "$ECHO6" 53 || lab_die "IPv6 dnsmasq did not start"

# envval NAME: the variable as vpn2socks got it from openconnect
envval() { tr '\0' '\n' <"/proc/$V2S_PID/environ" | sed -n "s/^$1=//p"; }

# ---- s1: dual stack; every destination through the tunnel (else ::1 and :: would go direct,
# refused as local addresses with reply 2)
if V2S_ARGS="--others tunnel" v2s_start_session s1; then
    lab_pass "s1: openconnect starts vpn2socks with an IPv6 address"
    lab_check_eq "s1: CISCO_IPV6_SPLIT_INC_0 (count, addr, masklen)" "1 ${NET6%/*} 64" \
        "$(envval CISCO_IPV6_SPLIT_INC) $(envval CISCO_IPV6_SPLIT_INC_0_ADDR) $(envval CISCO_IPV6_SPLIT_INC_0_MASKLEN)"
    lab_check "s1: the log names the IPv6 address" grep -q 'tunnel up: address fd00:98:' "$S/v2s.log"
    lab_check "s1: the log names the IPv6 route" grep -q "tunnel up: route $NET6" "$S/v2s.log"
    lab_check "s1: IPv6 echo through the tunnel" sc echo "$ECHO6" "$LAB_ECHO_PORT" 20000
    lab_check "s1: IPv4 echo through the tunnel" sc echo "$LAB_INTERNAL_IP" "$LAB_ECHO_PORT" 20000
    for no_host in ::1 :: ff02::1; do
        lab_check "s1: CONNECT [$no_host] through the tunnel: reply 3 at once" \
            sc connect "$no_host" 80 0x03
    done
    lab_stop_openconnect TERM
    lab_check_eq "s1: exit status after openconnect TERM" 3 "$(v2s_wait_exit "$S" 10)"
else
    lab_fail "s1: openconnect starts vpn2socks with an IPv6 address"
fi

# ---- s2: IPv6 only
kill -TERM "$LAB_OCSERV_PID"
for ((i = 0; i < 100; i++)); do kill -0 "$LAB_OCSERV_PID" 2>/dev/null || break; sleep 0.05; done
LAB_OCSERV_NO_IPV4=1 LAB_OCSERV_EXTRA="ipv6-network = $POOL6
route = $NET6
dns = $ECHO6" lab_start_ocserv
if v2s_start_session s2; then
    lab_pass "s2: openconnect starts vpn2socks with only an IPv6 address"
    lab_check_eq "s2: no INTERNAL_IP4_ADDRESS" "" "$(envval INTERNAL_IP4_ADDRESS)"
    lab_check_eq "s2: INTERNAL_IP4_DNS holds the IPv6 server" "$ECHO6" "$(envval INTERNAL_IP4_DNS)"
    lab_check "s2: the log names no IPv4 address" bash -c "! grep -q 'tunnel up: address [0-9]*\\.' '$S/v2s.log'"
    lab_check "s2: IPv6 echo through the tunnel" sc echo "$ECHO6" "$LAB_ECHO_PORT" 20000
    lab_check "s2: a name through the tunnel's IPv6 DNS server" \
        sc connect "$NAME6.$LAB_DOMAIN" "$LAB_ECHO_PORT" 0x00
    lab_check "s2: a single label through the search domain" sc connect "$NAME6" "$LAB_ECHO_PORT" 0x00
    lab_stop_openconnect TERM
    lab_check_eq "s2: exit status after openconnect TERM" 3 "$(v2s_wait_exit "$S" 10)"
else
    lab_fail "s2: openconnect starts vpn2socks with only an IPv6 address"
fi

lab_finish
