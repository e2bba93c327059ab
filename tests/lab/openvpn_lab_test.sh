#!/bin/bash
# shellcheck disable=SC2317,SC2119  # helpers are called through lab_check; optional args unused
# Tests the OpenVPN lab itself, without vpn2socks: Debian's openvpn 2.6 server in the server
# namespace (tests/lab/openvpn.sh), proven with the stock openvpn client as root with a kernel TUN
# in the client namespace. For UDP and TCP and each server variant (default ciphers, the Alibaba
# Cloud profile, CHACHA20-POLY1305, tls-auth, tls-crypt, user+password): the client connects with
# the expected data cipher, fetches the small and the big file intact from the internal web server
# through the tunnel, and resolves a name with the pushed DNS server; the same over IPv6 (UDP and
# TCP servers on $LAB_SERVER_IP6, the default variant). Then: inline configs, a wrong
# password (AUTH_FAILED), expired and foreign-CA certificates, the Alibaba server against a 2.6
# client without data-ciphers, LZO compression on the wire, renegotiation, server restarts and the
# management interface. Needs root (skips with exit 77 otherwise). LAB_KEEP=1 keeps the run dir.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/openvpn.sh"

lab_require_root
lab_openvpn_require
LAB_BIG_MB=${LAB_BIG_MB:-16} lab_setup --no-ocserv
T0=$SECONDS
OUT=$LAB_RUN_DIR/out

# compressible and incompressible files of the same size, for the comp-lzo check
COMP_SIZE=$((8 * 1048576))
yes 'vpn2socks lab: a highly compressible line of text' | head -c "$COMP_SIZE" >"$LAB_WEB_ROOT/text.txt"
head -c "$COMP_SIZE" /dev/urandom >"$LAB_WEB_ROOT/random.bin"
chmod 644 "$LAB_WEB_ROOT"/*

# ---- several servers at once: one per variant and transport
VARIANTS=(alibaba default chacha tlsauth tlscrypt password)
declare -A CIPHER=([default]=AES-256-GCM [alibaba]=AES-128-CBC [chacha]=CHACHA20-POLY1305
    [tlsauth]=AES-256-GCM [tlscrypt]=AES-256-GCM [password]=AES-256-GCM)
declare -A OPTS=([default]="" [alibaba]="--profile alibaba --port 1194" [chacha]="--ciphers CHACHA20-POLY1305"
    [tlsauth]="--tls-auth" [tlscrypt]="--tls-crypt" [password]="--password")
t=$SECONDS
for proto in udp tcp; do
    for v in "${VARIANTS[@]}"; do
        # shellcheck disable=SC2086  # OPTS holds several words
        lab_start_openvpn_server "$proto-$v" --proto "$proto" ${OPTS[$v]}
    done
done
lab_pass "12 openvpn servers up in $((SECONDS - t))s (udp ports ${LAB_OVPN_PORT[udp-default]}.., tcp ${LAB_OVPN_PORT[tcp-default]}.., pools 10.97.1-12.0/24)"
lab_check_eq "the Alibaba-profile servers listen on 1194" "1194 1194" \
    "${LAB_OVPN_PORT[udp-alibaba]} ${LAB_OVPN_PORT[tcp-alibaba]}"

pushed_dns() {
    sed -n "s/.*PUSH: Received control message: .*dhcp-option DNS \([0-9.]*\).*/\1/p" "$LAB_STOCK_LOG" | head -n 1
}
# fetch NAME FILE SHA256: curl in the client ns, through the kernel TUN
fetch() {
    lab_in_client curl -sS -f --connect-timeout 10 -m 60 -o "$OUT/$1" "$LAB_WEB_URL/$2" || return 1
    local sha
    sha=$(sha256sum <"$OUT/$1" | cut -d' ' -f1)
    rm -f "$OUT/$1"
    [ "$sha" = "$3" ] || { echo "sha256 $sha, expected $3"; return 1; }
}
# timed COMMAND...: run it; print how long it took (shown by lab_check on failure only)
timed() {
    local t=$SECONDS rc=0
    "$@" || rc=$?
    echo "    $* took $((SECONDS - t))s" >&2
    return "$rc"
}
dns_via_push() {
    local dns
    dns=$(pushed_dns)
    [ "$dns" = "$LAB_DNS_IP" ] || { echo "pushed DNS '$dns'"; return 1; }
    lab_in_client "$LAB_PY" "$here/dns_query.py" "$dns" "$LAB_WEB_NAME"
}

# one_case NAME CIPHER: connect, cipher, files, DNS, disconnect
one_case() {
    local name=$1 cipher=$2 t args=()
    # verb 4 logs the control channel's tls-auth / tls-crypt setup
    case $name in *-tlsauth | *-tlscrypt) args=(--verb 4) ;; esac
    lab_openvpn_client_config "$name"
    t=$SECONDS
    if ! lab_start_stock_openvpn_client "$LAB_OVPN_CLIENT_DIR" "${args[@]}"; then
        lab_fail "$name: stock client connects"
        tail -n 15 "$LAB_STOCK_LOG" | sed 's/^/    /'
        lab_stop_stock_openvpn_client
        return
    fi
    lab_pass "$name: stock client connects ($((SECONDS - t))s)"
    lab_check "$name: data channel $cipher" grep -q "Data Channel: cipher '$cipher'" "$LAB_STOCK_LOG"
    lab_check "$name: small file" fetch "$name-small" "$LAB_SMALL_FILE" "$LAB_SMALL_SHA256"
    lab_check "$name: big file ($LAB_BIG_SIZE bytes)" timed fetch "$name-big" "$LAB_BIG_FILE" "$LAB_BIG_SHA256"
    lab_check_eq "$name: $LAB_WEB_NAME via the pushed DNS" "NOERROR $LAB_INTERNAL_IP" "$(dns_via_push)"
    case $name in
    *-tlsauth) lab_check "$name: tls-auth in use" \
        grep -q "Outgoing Control Channel Authentication: Using 160 bit message hash 'SHA1'" "$LAB_STOCK_LOG" ;;
    *-tlscrypt) lab_check "$name: tls-crypt in use" \
        grep -q "Outgoing Control Channel Encryption: Cipher 'AES-256-CTR'" "$LAB_STOCK_LOG" ;;
    *-password) lab_check "$name: the server's script accepted lab" grep -q '^accept lab$' "$LAB_RUN_DIR/ovpn/auth.log" ;;
    esac
    lab_stop_stock_openvpn_client
}

for proto in udp tcp; do
    for v in "${VARIANTS[@]}"; do
        one_case "$proto-$v" "${CIPHER[$v]}"
    done
done

# ---- IPv6: the server on the lab's IPv6 address only, the client's remote that address
for proto in udp tcp; do
    name=${proto}6-default
    if [ -z "$LAB_SERVER_IP6" ]; then
        lab_skip "$name: the lab has no IPv6"
        continue
    fi
    lab_start_openvpn_server "$name" --proto "${proto}6"
    one_case "$name" AES-256-GCM
    lab_check "$name: the stock client's peer is [$LAB_SERVER_IP6]:${LAB_OVPN_PORT[$name]}" \
        grep -qF "[AF_INET6]$LAB_SERVER_IP6:${LAB_OVPN_PORT[$name]}" "$LAB_STOCK_LOG"
    lab_stop_openvpn_server "$name"
done

# ---- inline configs (<ca> <cert> <key> <tls-auth> with key-direction 1, <tls-crypt>)
lab_openvpn_client_config udp-alibaba --inline
lab_check "inline config has no file references" \
    bash -c "! grep -qE '^(ca|cert|key|tls-auth|tls-crypt) ' '$LAB_OVPN_CLIENT_DIR/config.ovpn' && [ \$(ls '$LAB_OVPN_CLIENT_DIR' | wc -l) = 1 ]"
for n in udp-alibaba udp-tlsauth tcp-tlscrypt; do
    lab_openvpn_client_config "$n" --inline
    if lab_start_stock_openvpn_client "$LAB_OVPN_CLIENT_DIR"; then
        lab_check "$n inline: connects, small file" fetch "$n-inline" "$LAB_SMALL_FILE" "$LAB_SMALL_SHA256"
    else
        lab_fail "$n inline: connects"
    fi
    lab_stop_stock_openvpn_client
done

# ---- the Alibaba client file as users get it
lab_openvpn_client_config udp-alibaba
ALI_EXPECTED="client
dev tun
proto udp
remote $LAB_SERVER_IP 1194
resolv-retry infinite
nobind
persist-key
persist-tun
ca ca.crt
cert client.crt
key client.key
remote-cert-tls server
cipher AES-128-CBC
comp-lzo
verb 3"
lab_check_eq "alibaba client config.ovpn shape" "$ALI_EXPECTED" "$(cat "$LAB_OVPN_CLIENT_DIR/config.ovpn")"
lab_check "alibaba client dir readable by nobody" lab_client_nobody sh -c \
    "cat '$LAB_OVPN_CLIENT_DIR'/config.ovpn '$LAB_OVPN_CLIENT_DIR'/ca.crt '$LAB_OVPN_CLIENT_DIR'/client.crt '$LAB_OVPN_CLIENT_DIR'/client.key >/dev/null"

# a 2.6 client with the file as is (its data-ciphers lack AES-128-CBC) is refused
if lab_start_stock_openvpn_client "$LAB_OVPN_CLIENT_DIR" --data-ciphers "$LAB_OVPN_DEFAULT_CIPHERS"; then
    lab_fail "alibaba: 2.6 client without data-ciphers AES-128-CBC connected"
else
    lab_check "alibaba: 2.6 client without data-ciphers AES-128-CBC gets AUTH_FAILED" \
        grep -q AUTH_FAILED "$LAB_STOCK_LOG"
    grep -m1 -E 'no shared cipher|cipher negotiation' "${LAB_OVPN_LOG[udp-alibaba]}" | sed 's/^/    server: /'
    grep -m1 -E 'AUTH_FAILED' "$LAB_STOCK_LOG" | sed 's/^/    client: /'
fi
lab_stop_stock_openvpn_client

# ---- comp-lzo yes: the server sends LZO-compressed packets
# bytes received on the client's veth while fetching 8 MiB of text vs 8 MiB of random data
rx() { lab_in_client cat /proc/net/dev | awk -v d="$LAB_CLIENT_VETH:" '$1 == d {print $2}'; }
lab_openvpn_client_config udp-alibaba
if lab_start_stock_openvpn_client "$LAB_OVPN_CLIENT_DIR"; then
    r0=$(rx)
    lab_in_client curl -sSf -o /dev/null "$LAB_WEB_URL/text.txt"
    r1=$(rx)
    lab_in_client curl -sSf -o /dev/null "$LAB_WEB_URL/random.bin"
    r2=$(rx)
    text=$((r1 - r0)) rand=$((r2 - r1))
    echo "    comp-lzo: veth rx for 8 MiB text $text bytes, for 8 MiB random $rand bytes"
    if [ "$text" -lt $((rand / 4)) ]; then
        lab_pass "comp-lzo yes: the server compresses (text $text vs random $rand bytes on the wire)"
    else
        lab_fail "comp-lzo yes: no compression seen (text $text vs random $rand bytes on the wire)"
    fi
    st=$(lab_openvpn_mgmt "$LAB_STOCK_MGMT" status)
    pre=$(sed -n 's/^pre-decompress bytes,//p' <<<"$st")
    post=$(sed -n 's/^post-decompress bytes,//p' <<<"$st")
    comp=$(sed -n 's/^post-compress bytes,//p' <<<"$st")
    echo "    client stats: pre-decompress $pre, post-decompress $post, post-compress (sent) $comp"
    if [ "${pre:-0}" -gt 0 ] && [ "${post:-0}" -gt $((pre * 4)) ]; then
        lab_pass "comp-lzo: the stock client decompressed LZO packets ($pre -> $post bytes)"
    else
        lab_fail "comp-lzo: the stock client's decompress counters: $pre -> $post"
    fi
    lab_check_eq "comp-lzo without allow-compression: the 2.6 client sends nothing compressed" 0 "$comp"
    lab_check "server: comp-lzo with allow-compression yes compresses both ways" \
        grep -q 'WARNING: Compression for sending and receiving enabled' "$LAB_RUN_DIR/log/openvpn-udp-alibaba.out"
else
    lab_fail "alibaba (compression check): stock client connects"
fi
lab_stop_stock_openvpn_client

# ---- a wrong password: AUTH_FAILED
lab_openvpn_client_config udp-password --dir "$OUT/wrongpass" --password wrong
if lab_start_stock_openvpn_client "$LAB_OVPN_CLIENT_DIR"; then
    lab_fail "wrong password: the client connected"
else
    lab_check "wrong password: AUTH_FAILED in the client log" grep -q AUTH_FAILED "$LAB_STOCK_LOG"
    lab_check "wrong password: the server's script rejected it" grep -q '^reject lab$' "$LAB_RUN_DIR/ovpn/auth.log"
fi
lab_stop_stock_openvpn_client

# ---- certificates and keys that must fail
# must_fail DESC SERVER LOGFILE|client REGEX [client config options]: REGEX shows up in the log
# (a client the server rejects sees nothing until its hand-window: so watch the server's log)
must_fail() {
    local desc=$1 name=$2 file=$3 re=$4 from=0
    shift 4
    lab_openvpn_client_config "$name" --dir "$OUT/$desc" "$@"
    [ "$file" = client ] || from=$(wc -l <"$file")
    LAB_STOCK_TIMEOUT=0 lab_start_stock_openvpn_client "$LAB_OVPN_CLIENT_DIR"
    [ "$file" = client ] && file=$LAB_STOCK_LOG
    lab_check "$desc: '$re'" lab_openvpn_wait_log "$file" "$from" "$re" 10
    if grep -q 'Initialization Sequence Completed' "$LAB_STOCK_LOG"; then
        lab_fail "$desc: the client connected"
    fi
    lab_stop_stock_openvpn_client
}
lab_start_openvpn_server udp-expired --cert server-expired
lab_start_openvpn_server udp-otherca --cert server-otherca
must_fail expired-client-cert udp-default "${LAB_OVPN_LOG[udp-default]}" \
    'VERIFY ERROR: .*certificate has expired' --cert client-expired
must_fail otherca-client-cert tcp-default "${LAB_OVPN_LOG[tcp-default]}" \
    'VERIFY ERROR: .*unable to get local issuer certificate' --cert client-otherca
must_fail expired-server-cert udp-expired client 'VERIFY ERROR: .*certificate has expired'
must_fail otherca-server-cert udp-otherca client 'VERIFY ERROR: .*unable to get local issuer certificate'
must_fail tls-auth-without-key udp-tlsauth "${LAB_OVPN_LOG[udp-tlsauth]}" \
    'TLS Error: cannot locate HMAC in incoming packet' --tls-key none
openvpn --genkey secret "$OUT/other.key"
must_fail tls-crypt-wrong-key tcp-tlscrypt "${LAB_OVPN_LOG[tcp-tlscrypt]}" \
    'TLS Error: tls-crypt unwrapping failed' --tls-key "$OUT/other.key"
openssl x509 -noout -dates -in "$LAB_PKI_DIR/ovpn-client-expired.pem" | tr '\n' ' ' | sed 's/^/    expired cert: /'
echo

# ---- renegotiation (reneg-sec 3): new keys, the tunnel goes on
lab_start_openvpn_server udp-reneg --reneg-sec 3
lab_openvpn_client_config udp-reneg
if lab_start_stock_openvpn_client "$LAB_OVPN_CLIENT_DIR"; then
    lab_check "reneg-sec 3: two more TLS handshakes within 10s" \
        lab_wait_count "$LAB_STOCK_LOG" 'Control Channel: TLSv' 3 10
    lab_check "reneg-sec 3: big file after renegotiation" fetch reneg-big "$LAB_BIG_FILE" "$LAB_BIG_SHA256"
else
    lab_fail "reneg: stock client connects"
fi
lab_stop_stock_openvpn_client

# ---- management, then the server restarted mid-session (TCP: the client sees the reset)
lab_openvpn_client_config tcp-default
if lab_start_stock_openvpn_client "$LAB_OVPN_CLIENT_DIR"; then
    lab_check_eq "management: status lists one client" 1 "$(lab_openvpn_clients tcp-default)"
    lab_check "management: kill ovpn-client" lab_openvpn_mgmt tcp-default kill ovpn-client
    lab_check "client reconnects after the management kill" \
        lab_openvpn_wait_log "$LAB_STOCK_LOG" "$(grep -n -m1 'Initialization Sequence Completed' "$LAB_STOCK_LOG" | cut -d: -f1)" \
        'Initialization Sequence Completed' 15
    t=$SECONDS
    n=$(wc -l <"$LAB_STOCK_LOG")
    lab_restart_openvpn_server tcp-default
    lab_check "tcp server restart: client reconnects" \
        lab_openvpn_wait_log "$LAB_STOCK_LOG" "$n" 'Initialization Sequence Completed' 20
    lab_check "tcp server restart: small file after ($((SECONDS - t))s)" \
        fetch restart "$LAB_SMALL_FILE" "$LAB_SMALL_SHA256"
else
    lab_fail "tcp-default (restart): stock client connects"
fi
lab_stop_stock_openvpn_client

# UDP with explicit-exit-notify on the server: RESTART reaches the client at once
lab_start_openvpn_server udp-notify --exit-notify --keepalive "2 10"
lab_openvpn_client_config udp-notify
if lab_start_stock_openvpn_client "$LAB_OVPN_CLIENT_DIR"; then
    t=$SECONDS
    n=$(wc -l <"$LAB_STOCK_LOG")
    lab_restart_openvpn_server udp-notify
    lab_check "udp server restart (explicit-exit-notify): client reconnects" \
        lab_openvpn_wait_log "$LAB_STOCK_LOG" "$n" 'Initialization Sequence Completed' 20
    lab_check "udp server restart: small file after ($((SECONDS - t))s)" \
        fetch restart-udp "$LAB_SMALL_FILE" "$LAB_SMALL_SHA256"
    grep -m1 -E 'RESTART|restart' <(tail -n "+$((n + 1))" "$LAB_STOCK_LOG") | sed 's/^/    client: /'
    n=$(wc -l <"$LAB_STOCK_LOG")
    lab_restart_openvpn_server udp-notify --sighup
    lab_check "udp server SIGHUP: client reconnects" \
        lab_openvpn_wait_log "$LAB_STOCK_LOG" "$n" 'Initialization Sequence Completed' 20
else
    lab_fail "udp-notify: stock client connects"
fi
lab_stop_stock_openvpn_client

# The stock client's explicit-exit-notify, which ours follows (openvpn_client_test.sh, sighup):
# openvpn 2.6 tells the server only when it exits (SIGTERM, SIGINT), not when SIGHUP restarts it.
# Over the data channel the server logs remote-exit; a 2.6 pair uses the control channel's EXIT,
# which the server logs as a delayed exit.
lab_start_openvpn_server udp-exit --proto udp
lab_openvpn_client_config udp-exit -- "explicit-exit-notify 1"
if lab_start_stock_openvpn_client "$LAB_OVPN_CLIENT_DIR"; then
    n=$(wc -l <"$LAB_STOCK_LOG")
    from=$(wc -l <"${LAB_OVPN_LOG[udp-exit]}")
    kill -HUP "$LAB_STOCK_PID"
    lab_check "stock client SIGHUP: reconnects" \
        lab_openvpn_wait_log "$LAB_STOCK_LOG" "$n" 'Initialization Sequence Completed' 20
    sleep 2
    lab_check "stock client SIGHUP: the server is not told of an exit" \
        bash -c "! tail -n +$((from + 1)) '${LAB_OVPN_LOG[udp-exit]}' | grep -qE 'remote-exit|Delayed exit'"
    from=$(wc -l <"${LAB_OVPN_LOG[udp-exit]}")
    lab_stop_stock_openvpn_client
    lab_check "stock client SIGTERM: the server is told of the exit" \
        lab_openvpn_wait_log "${LAB_OVPN_LOG[udp-exit]}" "$from" 'remote-exit|Delayed exit' 5
else
    lab_fail "udp-exit: stock client connects"
fi
lab_stop_stock_openvpn_client
lab_stop_openvpn_server udp-exit

lab_stop_openvpn_server udp-chacha
lab_check "lab_stop_openvpn_server: nothing listens on udp ${LAB_OVPN_PORT[udp-chacha]} any more" \
    bash -c "! ip netns exec '$LAB_SERVER_NS' ss -Hlun | grep -q ':${LAB_OVPN_PORT[udp-chacha]} '"

echo "    openvpn lab test body: $((SECONDS - T0))s"
lab_finish
