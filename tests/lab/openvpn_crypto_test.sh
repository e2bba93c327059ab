#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# What the OpenVPN server may decide about the data channel, against Debian's openvpn 2.6 server,
# vpn2socks as nobody:
#   a server that pushes a cipher outside our list (cipher none, and AES-128-CBC, which we
#   implement but do not list): refused, exit 3, one line saying so, no tunnel. A stock 2.6
#   server only ever picks from the client's IV_CIPHERS, so the hostile one is the real server
#   with tests/lab/push_rewrite.c preloaded, which rewrites the cipher in its PUSH_REPLY;
#   the same server without the rewrite is taken (the control case);
#   cipher none when our own config lists it: a warning at start, and the tunnel carries data;
#   data-ciphers written in lower case: offered as OpenVPN spells them, so the server finds them;
#   reneg-bytes 1000000 in the client's config: an 8 MiB download and a 4 MiB echo through
#   SOCKS intact while the client renegotiates every megabyte (counted in its log and the
#   server's), and the exit line counts the data packets dropped, by reason;
#   forged data packets from the server's address (bad tag, unknown key id, too short, a replay
#   of a real one): dropped, counted by reason at exit, the tunnel still carries data;
#   tls-crypt-v2, the server's key made with --genkey tls-crypt-v2-server and the client's from it:
#   the tunnel comes up with the key as a file and inline, a file through it intact; a client key
#   made from another server key: the server says it cannot unwrap it, and vpn2socks gives up
#   after its hand-window with the handshake named, exit status 3, not a hang or a crash;
#   tls-crypt-v2 force-cookie (2.6: the UDP server keeps no state for a reset until the client,
#   which offered early negotiation, brings its wrapped key again in P_CONTROL_WKC_V1), over UDP
#   and TCP, and allow-noncookie: the tunnel comes up, a file through it intact.
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
LAB_BIG_MB=8 lab_setup --no-ocserv
v2s_prepare

SHIM=$LAB_RUN_DIR/push_rewrite.so
cc -shared -fPIC -o "$SHIM" "$here/push_rewrite.c" -ldl || lab_die "cannot build push_rewrite.so"

logged() { grep -qE -- "$1" "$2" || { echo "not in $2: $1"; tail -n 5 "$2"; return 1; }; }
not_logged() { ! grep -qE -- "$1" "$2" || { echo "in $2: $(grep -E -- "$1" "$2" | head -n 3)"; return 1; }; }

# ================================================================ a hostile server's cipher
# hostile NAME CIPHER: the server pushes CIPHER instead of the one it negotiated
hostile() {
    local name=$1 cipher=$2 shown
    lab_start_openvpn_server "$name" --env "LD_PRELOAD=$SHIM" --env "V2S_PUSH_CIPHER=$cipher"
    lab_openvpn_client_config "$name"
    v2s_run_ovpn_fail "$name" "$LAB_OVPN_CLIENT_DIR" -v
    lab_check_eq "$name: vpn2socks refuses the pushed cipher $cipher, exit status 3" 3 "$FAIL_STATUS"
    shown=$cipher
    [ "$cipher" = none ] && shown='none \(no encryption\)'
    lab_check "$name: the reason names the cipher and our list" logged \
        "tunnel lost: the server chose data cipher $shown, which is not one we allow \(AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305\)" \
        "$FAIL_LOG"
    lab_check "$name: no data channel, no tunnel" not_logged 'data channel|tunnel up' "$FAIL_LOG"
    lab_check "$name: the server got as far as its PUSH_REPLY" logged 'SENT CONTROL.*PUSH_REPLY' "${LAB_OVPN_LOG[$name]}"
    lab_stop_openvpn_server "$name"
}
hostile hostile-none none
hostile hostile-cbc AES-128-CBC

# The control case: the same preload passing the cipher through untouched is taken. Then forged
# data packets from the server's address and port, each dropped and counted by its reason.
INJECT=$here/ovpn_inject.py
inject() { lab_in_server "$LAB_PY" "$INJECT" send "$LAB_SERVER_IP" "${LAB_OVPN_PORT[control]}" "$LAB_CLIENT_IP" "$cport" "$@"; }
lab_start_openvpn_server control --env "LD_PRELOAD=$SHIM" --env "V2S_PUSH_CIPHER=AES-256-GCM"
lab_openvpn_client_config control
if v2s_start_ovpn control "$LAB_OVPN_CLIENT_DIR"; then
    lab_check "control: data channel AES-256-GCM" logged 'data channel AES-256-GCM' "$S/v2s.log"
    # vpn2socks's UDP port, and a real data packet of the server's to send again
    cport=$(lab_in_client ss -Hun dst "$LAB_SERVER_IP:${LAB_OVPN_PORT[control]}" |
        grep -o "$LAB_CLIENT_IP:[0-9]*" | head -n 1 | cut -d: -f2)
    lab_in_server "$LAB_PY" "$INJECT" sniff "$LAB_SERVER_VETH" "${LAB_OVPN_PORT[control]}" 10 >"$S/captured" &
    sniffer=$!
    sleep 0.3
    lab_check "control: a file through the tunnel" \
        v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_SMALL_FILE" "$S/small" 20 "$LAB_SMALL_SHA256"
    wait "$sniffer"
    if [ -n "$cport" ] && [ -s "$S/captured" ]; then
        inject badtag 5
        inject unknownkey 4
        inject short 3
        inject "hex:$(cat "$S/captured")" 1
        sleep 0.5
        lab_check "control: after the forgeries the tunnel still carries data" \
            v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_BIG_FILE" "$S/big" 30 "$LAB_BIG_SHA256" "$LAB_BIG_SIZE"
    else
        lab_fail "control: vpn2socks's UDP port ('$cport') and a captured data packet"
    fi
    lab_check_eq "control: SIGTERM, status 0" 0 "$(v2s_stop)"
    lab_check "control: the forged packets are counted by reason at exit" logged \
        'dropped: 5 bad tag/HMAC, 1 replayed, 3 malformed, 4 unknown key, 0 on a worn-out key' "$S/v2s.log"
else
    lab_fail "control: the tunnel comes up through the preloaded server"
fi
lab_stop_openvpn_server control

# ================================================================ cipher none, asked for
# The server lists none first, so it picks none whenever the client offers it.
lab_start_openvpn_server plain --ciphers none:AES-256-GCM
lab_openvpn_client_config plain -- "data-ciphers AES-256-GCM:none"
if v2s_start_ovpn plain "$LAB_OVPN_CLIENT_DIR"; then
    lab_check "plain: a warning at start that the config allows cipher none" logged \
        'the config allows data cipher none: if the server picks it, tunnelled packets cross the network unencrypted' \
        "$S/v2s.log"
    lab_check "plain: data channel none" logged 'data channel none' "$S/v2s.log"
    lab_check "plain: the server runs none too" logged "'--cipher none' was specified" "${LAB_OVPN_LOG[plain]}"
    lab_check "plain: a file through the tunnel, sha256 matches" \
        v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_BIG_FILE" "$S/big" 30 "$LAB_BIG_SHA256" "$LAB_BIG_SIZE"
    lab_check_eq "plain: SIGTERM, status 0" 0 "$(v2s_stop)"
else
    lab_fail "plain: the tunnel comes up with cipher none"
fi
lab_stop_openvpn_server plain
# Without none in our list the same server gives us AES-256-GCM, and nothing warns.
lab_start_openvpn_server plain2 --ciphers none:AES-256-GCM
lab_openvpn_client_config plain2
if v2s_start_ovpn plain2 "$LAB_OVPN_CLIENT_DIR"; then
    lab_check "plain2: not asked for, none is not offered: AES-256-GCM" logged 'data channel AES-256-GCM' "$S/v2s.log"
    lab_check "plain2: no warning about none" not_logged 'allows data cipher none' "$S/v2s.log"
    lab_check_eq "plain2: SIGTERM, status 0" 0 "$(v2s_stop)"
else
    lab_fail "plain2: the tunnel comes up"
fi
lab_stop_openvpn_server plain2

# ================================================================ cipher names in any case
# OpenVPN 2.6 reads cipher names in any case and offers them spelt its way; the server matches
# IV_CIPHERS case-sensitively. A config's "data-ciphers aes-128-gcm" against a server with only
# AES-128-GCM found no shared cipher while we offered the name as written.
lab_start_openvpn_server lower --ciphers AES-128-GCM
lab_openvpn_client_config lower -- "data-ciphers aes-128-gcm:aes-256-gcm"
if v2s_start_ovpn lower "$LAB_OVPN_CLIENT_DIR"; then
    lab_check "lower: data channel AES-128-GCM" logged 'data channel AES-128-GCM' "$S/v2s.log"
    lab_check "lower: a file through the tunnel, sha256 matches" \
        v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_SMALL_FILE" "$S/small" 20 "$LAB_SMALL_SHA256"
    lab_check_eq "lower: SIGTERM, status 0" 0 "$(v2s_stop)"
else
    lab_fail "lower: the tunnel comes up with data-ciphers written in lower case"
fi
lab_stop_openvpn_server lower

# ================================================================ tls-crypt-v2
# The client key is used as a tls-crypt key; its wrapped copy follows the first reset (opcode 10)
# in the clear, which the server unwraps with its own key before it can check that reset.
lab_start_openvpn_server tcv2 --tls-crypt-v2
for how in file inline; do
    if [ "$how" = inline ]; then lab_openvpn_client_config tcv2 --inline; else lab_openvpn_client_config tcv2; fi
    if v2s_start_ovpn "tcv2-$how" "$LAB_OVPN_CLIENT_DIR"; then
        lab_check "tcv2 ($how): a file through the tunnel, sha256 matches" \
            v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_SMALL_FILE" "$S/small" 20 "$LAB_SMALL_SHA256"
        lab_check_eq "tcv2 ($how): SIGTERM, status 0" 0 "$(v2s_stop)"
    else
        lab_fail "tcv2 ($how): the tunnel comes up with a tls-crypt-v2 client key"
    fi
done
lab_check "tcv2: the server took the client's key (P_CONTROL_HARD_RESET_CLIENT_V3)" \
    not_logged 'can not extract tls-crypt-v2 client key' "${LAB_OVPN_LOG[tcv2]}"
# A client key wrapped by another server's key: the server cannot unwrap it and drops the reset.
openvpn --genkey tls-crypt-v2-server "$LAB_RUN_DIR/tcv2-other-server.key" >/dev/null
openvpn --tls-crypt-v2 "$LAB_RUN_DIR/tcv2-other-server.key" --genkey tls-crypt-v2-client \
    "$LAB_RUN_DIR/tcv2-other.key" >/dev/null
lab_openvpn_client_config tcv2 --tls-key "$LAB_RUN_DIR/tcv2-other.key" -- "hand-window 5" "connect-retry-max 1"
v2s_run_ovpn_fail tcv2-other "$LAB_OVPN_CLIENT_DIR" -v
lab_check_eq "tcv2-other: vpn2socks gives up (connect-retry-max 1), exit status 3" 3 "$FAIL_STATUS"
lab_check "tcv2-other: it names the handshake that did not happen" logged \
    'no TLS handshake within hand-window \(5 s\)' "$FAIL_LOG"
lab_check "tcv2-other: the server could not unwrap the client key" logged \
    'can not extract tls-crypt-v2 client key' "${LAB_OVPN_LOG[tcv2]}"
lab_check "tcv2-other: no tunnel" not_logged 'tunnel up' "$FAIL_LOG"
lab_stop_openvpn_server tcv2
# force-cookie ignores a reset that does not offer early negotiation ("ignoring connection attempt
# from old client", logged only at verb 7); over TCP a 2.6 server keeps state per connection and
# asks for nothing more. allow-noncookie (the default) answers an offer the same stateless way.
if lab_openvpn_server_at_least 2.6; then
    for mode in force-cookie/udp force-cookie/tcp allow-noncookie/udp; do
        name=tcv2-${mode%/*}-${mode#*/}
        lab_start_openvpn_server "$name" --tls-crypt-v2-mode "${mode%/*}" --proto "${mode#*/}"
        lab_openvpn_client_config "$name"
        if v2s_start_ovpn "$name" "$LAB_OVPN_CLIENT_DIR"; then
            lab_check "$name: a file through the tunnel, sha256 matches" v2s_fetch_check \
                "$PROXY" "$LAB_WEB_URL/$LAB_SMALL_FILE" "$S/small" 20 "$LAB_SMALL_SHA256"
            lab_check_eq "$name: SIGTERM, status 0" 0 "$(v2s_stop)"
            if [ "${mode#*/}" = udp ]; then
                lab_check "$name: the server's reset asked for the wrapped key again" logged \
                    'keeps no state until it has the wrapped client key again' "$S/v2s.log"
            else
                lab_check "$name: over TCP the server asked for nothing more" not_logged \
                    'keeps no state until' "$S/v2s.log"
            fi
        else
            lab_fail "$name: the tunnel comes up with tls-crypt-v2 ${mode%/*} (${mode#*/})"
        fi
        lab_stop_openvpn_server "$name"
    done
fi

# ================================================================ reneg-bytes
lab_start_openvpn_server reneg
lab_openvpn_client_config reneg -- "reneg-bytes 1000000"
if v2s_start_ovpn reneg "$LAB_OVPN_CLIENT_DIR"; then
    server_keys0=$(grep -c 'Control Channel: TLS' "${LAB_OVPN_LOG[reneg]}")
    for n in 1 2; do
        lab_check "reneg: 8 MiB download ($n of 2), sha256 and size match" \
            v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_BIG_FILE" "$S/big" 30 "$LAB_BIG_SHA256" "$LAB_BIG_SIZE"
    done
    lab_check "reneg: 4 MiB echoed back intact" sc echo "$LAB_INTERNAL_IP" "$LAB_ECHO_PORT" 4194304
    started=$(grep -c 'openvpn: renegotiating (key [0-7]): reneg-bytes' "$S/v2s.log")
    done_=$(grep -c 'openvpn: renegotiated, key' "$S/v2s.log")
    server_keys=$(( $(grep -c 'Control Channel: TLS' "${LAB_OVPN_LOG[reneg]}") - server_keys0 ))
    lab_log "reneg: $started started by reneg-bytes, $done_ finished; the server negotiated $server_keys keys"
    # 16 MiB down and 8 MiB of echo, about 27 MB both ways on the wire: a new key every 1 MB at
    # most, fewer as data also flows on each old key while its successor is negotiated. With
    # one download (18 MB): 13 or 14 on a quiet machine, 6 on a busy one, 3 once while three
    # helpers built beside it; without reneg-bytes, none.
    lab_check "reneg: at least 4 renegotiations started by reneg-bytes ($started)" test "$started" -ge 4
    lab_check "reneg: all but perhaps the last finished ($done_)" test "$done_" -ge $((started - 1))
    lab_check "reneg: the server negotiated as many new keys ($server_keys)" test "$server_keys" -ge "$done_"
    # shellcheck disable=SC2016  # an awk program
    lab_check "reneg: each at about 1 MB (no key went past 2 MB)" awk \
        '/renegotiating \(key [0-7]\): reneg-bytes \(/ { sub(/.*reneg-bytes \(/, ""); if ($1 + 0 > 2000000) bad++ }
         END { exit bad > 0 }' "$S/v2s.log"
    lab_check_eq "reneg: SIGTERM, status 0" 0 "$(v2s_stop)"
    lab_check "reneg: the exit line counts dropped data packets by reason" logged \
        'dropped: [0-9]+ bad tag/HMAC, [0-9]+ replayed, [0-9]+ malformed, [0-9]+ unknown key' "$S/v2s.log"
else
    lab_fail "reneg: the tunnel comes up"
fi
lab_stop_openvpn_server reneg

lab_finish
