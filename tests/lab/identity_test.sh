#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# Who the server is: vpn2socks as nobody against Debian's openvpn 2.6 server.
#   - A config that checks nothing beyond the chain (none of remote-cert-tls server,
#     verify-x509-name, peer-fingerprint) works and warns at start, at the default verbosity;
#     each of the three alone leaves the warning out.
#   - verify-x509-name vpn.example.com name: a server whose certificate has that CN is reached and
#     a file comes through byte-exact; a server whose CN is "vpn.example.com\0.attacker.example",
#     signed by the same CA, is refused: exit 2 and one error line naming the NUL byte.
#   - peer-fingerprint and no ca, OpenVPN 2.6's quick setup (self-signed certificates on both
#     sides, the server pinning ours): an inline block with another fingerprint and the server's
#     reaches it and a file comes through byte-exact; the other fingerprint alone is refused:
#     exit 2 and one error line showing the server's fingerprint.
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

WARNING="the server's identity is not checked"

warned() { grep -qF -- "$WARNING" "$1" || { echo "no warning in $1:"; cat "$1"; return 1; }; }
not_warned() { ! grep -F -- "$WARNING" "$1"; }

# quiet_session NAME CONFIGDIR: vpn2socks --config CONFIGDIR/config.ovpn as nobody at the default
# verbosity (no -v), in the background; returns once the small file came through the proxy
# byte-exact (20 s at most). Out dir $S, pid $V2S_PID, as v2s_start_ovpn.
quiet_session() {
    local i
    S=$LAB_RUN_DIR/out/$1
    mkdir -m 1777 "$S"
    v2s_no_direct_route
    lab_bg "v2s-$1" ip netns exec "$LAB_CLIENT_NS" setpriv --reuid=nobody --regid=nogroup --clear-groups \
        "$WRAP" "$S" --config "$2/config.ovpn" -D "$SOCKS_ADDR:$SOCKS_PORT"
    lab_wait_file_match "$S/pid" '^[0-9]+$' 5 || return 1
    V2S_PID=$(cat "$S/pid")
    for ((i = 0; i < 40; i++)); do
        v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_SMALL_FILE" "$S/small" 5 "$LAB_SMALL_SHA256" 2>/dev/null &&
            return 0
        sleep 0.5
    done
    cat "$S/v2s.log"
    kill -KILL "$V2S_PID" 2>/dev/null
    return 1
}

# started DESCRIPTION COMMAND...: pass or fail as the command (run in this shell) does
started() {
    local desc=$1
    shift
    if "$@"; then lab_pass "$desc"; else lab_fail "$desc"; return 1; fi
}

# fail_case NAME STATUS PATTERN SERVER [client config options] [-- extra lines]: vpn2socks at the
# default verbosity gives up by itself with STATUS and exactly one error line, matching PATTERN;
# its output stays in $FAIL_LOG
fail_case() {
    local name=$1 want=$2 pattern=$3 server=$4 errors
    shift 4
    lab_openvpn_client_config "$server" --dir "$LAB_RUN_DIR/ovpn/$name" "$@"
    v2s_run_ovpn_fail "$name" "$LAB_OVPN_CLIENT_DIR"
    lab_check_eq "$name: exit status" "$want" "$FAIL_STATUS"
    errors=$(grep -c 'vpn2socks error:' "$FAIL_LOG")
    if [ "$errors" = 1 ] && grep 'vpn2socks error:' "$FAIL_LOG" | grep -qE -- "$pattern"; then
        lab_pass "$name: one error line: $(grep 'vpn2socks error:' "$FAIL_LOG" | sed 's/.*error: //')"
    else
        lab_fail "$name: one error line matching '$pattern'"
        cat "$FAIL_LOG"
    fi
}

# ================================================================ the warning
lab_start_openvpn_server plain --proto udp
lab_openvpn_client_config plain --dir "$LAB_RUN_DIR/ovpn/nocheck" --no-remote-cert-tls
# (started here, not through lab_check, whose subshell would lose $S and $V2S_PID)
if started "no identity check: a file comes through, default verbosity" quiet_session nocheck "$LAB_OVPN_CLIENT_DIR"; then
    lab_check "no identity check: the warning is in the log" warned "$S/v2s.log"
    lab_check_eq "no identity check: SIGTERM stops vpn2socks with status 0" 0 "$(v2s_stop)"
fi
lab_openvpn_client_config plain --dir "$LAB_RUN_DIR/ovpn/rct"
if started "remote-cert-tls server: a file comes through, default verbosity" quiet_session rct "$LAB_OVPN_CLIENT_DIR"; then
    lab_check "remote-cert-tls server: no warning" not_warned "$S/v2s.log"
    lab_check_eq "remote-cert-tls server: SIGTERM stops vpn2socks with status 0" 0 "$(v2s_stop)"
fi
lab_stop_openvpn_server plain

# ================================================================ verify-x509-name
NAME_LINE="verify-x509-name $LAB_OVPN_SERVER_NAME name"
lab_start_openvpn_server named --proto udp --cert server-named
lab_openvpn_client_config named --no-remote-cert-tls -- "$NAME_LINE"
if started "verify-x509-name: the server named $LAB_OVPN_SERVER_NAME is reached" \
    v2s_start_ovpn named "$LAB_OVPN_CLIENT_DIR"; then
    lab_check "verify-x509-name: 1 MiB file, sha256 and size match" \
        v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_BIG_FILE" "$S/big" 30 "$LAB_BIG_SHA256" "$LAB_BIG_SIZE"
    lab_check "verify-x509-name: the log names the server's CN" grep -qF "server CN=$LAB_OVPN_SERVER_NAME)" "$S/v2s.log"
    lab_check "verify-x509-name: no warning" not_warned "$S/v2s.log"
    lab_check_eq "verify-x509-name: SIGTERM stops vpn2socks with status 0" 0 "$(v2s_stop)"
fi
lab_stop_openvpn_server named

lab_start_openvpn_server nulcn --proto udp --cert server-nulcn
fail_case nul-cn 2 "common name '$LAB_OVPN_SERVER_NAME\\\\x00\\.attacker\\.example' contains a NUL byte" nulcn \
    --no-remote-cert-tls -- "$NAME_LINE"
lab_check "nul-cn: no warning" not_warned "$FAIL_LOG"
lab_stop_openvpn_server nulcn

# ================================================================ peer-fingerprint
SERVER_FP=$(lab_openvpn_fingerprint server-selfsigned)
CLIENT_FP=$(lab_openvpn_fingerprint client-selfsigned)
OTHER_FP=$(lab_openvpn_fingerprint server)   # a real certificate's, just not this server's
lab_start_openvpn_server pinned --proto udp --cert server-selfsigned --client-ca none -- "peer-fingerprint $CLIENT_FP"
lab_openvpn_client_config pinned --inline --ca none --cert client-selfsigned --no-remote-cert-tls -- \
    "<peer-fingerprint>" "$OTHER_FP" "$SERVER_FP" "</peer-fingerprint>"
if started "peer-fingerprint, no ca: the self-signed server is reached" v2s_start_ovpn pinned "$LAB_OVPN_CLIENT_DIR"; then
    lab_check "peer-fingerprint: 1 MiB file, sha256 and size match" \
        v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_BIG_FILE" "$S/big" 30 "$LAB_BIG_SHA256" "$LAB_BIG_SIZE"
    lab_check "peer-fingerprint: no warning" not_warned "$S/v2s.log"
    lab_check_eq "peer-fingerprint: SIGTERM stops vpn2socks with status 0" 0 "$(v2s_stop)"
fi
fail_case wrong-fingerprint 2 "fingerprint $SERVER_FP is not one of the config's peer-fingerprint" pinned \
    --inline --ca none --cert client-selfsigned --no-remote-cert-tls -- "peer-fingerprint $OTHER_FP"
lab_check "wrong-fingerprint: no warning" not_warned "$FAIL_LOG"
lab_stop_openvpn_server pinned

lab_finish
