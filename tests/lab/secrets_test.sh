#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# Secrets against Debian's openvpn 2.6 server with tls-crypt and a username/password, vpn2socks as
# nobody:
#   files        a private key, a tls-crypt key or a password file that other users (or the
#                group) can read, and a config holding an inline <key> that anyone can read: each
#                refused before connecting, exit status 1, one error line naming the file and
#                "chmod 600"; --allow-readable-secrets uses the readable key with a warning
#   logs         a session at the highest verbosity (-vvv) through a renegotiation: the log holds
#                neither the password, nor the tls-crypt key's hex, nor the private key's PEM; a
#                SOCKS host name with a line break and an escape sequence is logged escaped
#   memory       in that session (auth-nocache: the password is read again from its file at the
#                renegotiation), the running process's memory holds neither the private key's
#                PEM, nor the tls-crypt key, nor the password
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

lab_start_openvpn_server sec --proto udp --tls-crypt --password --reneg-sec 6
lab_openvpn_client_config sec
DIR=$LAB_OVPN_CLIENT_DIR

# refused NAME FILE PATTERN [vpn2socks args]: vpn2socks stops before connecting, status 1, one
# error line matching PATTERN that names FILE and says chmod 600
refused() {
    local name=$1 file=$2 pattern=$3 errors
    shift 3
    v2s_run_ovpn_fail "$name" "$DIR" -v "$@"
    lab_check_eq "$name: exit status" 1 "$FAIL_STATUS"
    errors=$(grep -c 'vpn2socks error:' "$FAIL_LOG")
    if [ "$errors" = 1 ] && grep 'vpn2socks error:' "$FAIL_LOG" | grep -qE -- "$pattern" &&
        grep 'vpn2socks error:' "$FAIL_LOG" | grep -qF -- "run chmod 600 $file,"; then
        lab_pass "$name: one error line: $(grep 'vpn2socks error:' "$FAIL_LOG" | sed 's/.*error: //')"
    else
        lab_fail "$name: one error line matching '$pattern' and naming $file"
        cat "$FAIL_LOG"
    fi
    lab_check "$name: nothing sent to the server" sh -c "! grep -q 'connecting to' '$FAIL_LOG'"
}

# not_in_log FILE: no line of FILE appears anywhere in the log (case-insensitive: hex either way)
not_in_log() {
    if grep -iF -f "$1" "$S/v2s.log"; then
        echo "(the lines above hold a secret)"
        return 1
    fi
}

# ================================================================ file modes
chmod 644 "$DIR/client.key"
refused key-0644 "$DIR/client.key" \
    "config.ovpn:[0-9]+: key 'client.key': .*client.key holds a private key that other users can read \\(mode 0644\\)"
chmod 600 "$DIR/client.key"
chmod 640 "$DIR/tc.key"
refused tls-crypt-0640 "$DIR/tc.key" "tc.key holds a tls-crypt key that its group can read \\(mode 0640\\)"
chmod 600 "$DIR/tc.key"
chmod 604 "$DIR/auth.txt"
refused password-0604 "$DIR/auth.txt" "auth.txt holds a password that other users can read \\(mode 0604\\)"
chmod 600 "$DIR/auth.txt"

lab_openvpn_client_config sec --inline
INLINE=$LAB_OVPN_CLIENT_DIR
chmod 644 "$INLINE/config.ovpn"
DIR=$INLINE refused inline-key-0644 "$INLINE/config.ovpn" \
    "config.ovpn holds a private key \\(<key>\\) that other users can read \\(mode 0644\\)"
lab_openvpn_client_config sec
DIR=$LAB_OVPN_CLIENT_DIR

# --allow-readable-secrets: the same readable key, used, with a warning naming it
chmod 644 "$DIR/client.key"
if v2s_start_ovpn allowed "$DIR" --allow-readable-secrets; then
    lab_check "--allow-readable-secrets: a warning names the key" grep -qE \
        "vpn2socks warn: .*client.key holds a private key that other users can read \\(mode 0644\\); used anyway" \
        "$S/v2s.log"
    lab_check "--allow-readable-secrets: a file through the tunnel, sha256 matches" \
        v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_SMALL_FILE" "$S/a" 20 "$LAB_SMALL_SHA256"
    lab_check_eq "--allow-readable-secrets: SIGTERM stops vpn2socks with status 0" 0 "$(v2s_stop)"
else
    lab_fail "--allow-readable-secrets: tunnel up with a readable key"
fi
chmod 600 "$DIR/client.key"

# ================================================================ logs and memory
# What must appear nowhere: the password, the tls-crypt key (hex as in its file, and its bytes),
# the private key's PEM (three of its base64 lines in a row: OpenSSL reads a PEM a line at a time,
# so only a copy of the whole text holds them together).
PASS=$LAB_OVPN_PASS
KEY_LINES=$(grep -v -- '-----' "$DIR/client.key" | sed -n '2,4p')
TC_HEX=$(sed -n '/BEGIN OpenVPN Static key/,/END OpenVPN Static key/p' "$DIR/tc.key" | grep -v -- '-----' | tr -d '\n')
TC_LINES=$(sed -n '/BEGIN OpenVPN Static key/,/END OpenVPN Static key/p' "$DIR/tc.key" | grep -v -- '-----' | sed -n '5,6p')
if [ ${#TC_HEX} != 512 ] || [ -z "$PASS" ] || [ "$(printf '%s\n' "$KEY_LINES" | wc -l)" != 3 ]; then
    lab_die "could not read the secrets back from $DIR"
fi

echo "auth-nocache" >>"$DIR/config.ovpn"
export -n LAB_OVPN_PASS # the lab's own copy must not reach vpn2socks's environment (its stack)
auth_before=$(grep -c "^accept $LAB_OVPN_USER" "$LAB_RUN_DIR/ovpn/auth.log" 2>/dev/null)
if v2s_start_ovpn verbose "$DIR" -v; then
    lab_check "verbose: a file through the tunnel, sha256 matches" \
        v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_SMALL_FILE" "$S/a" 20 "$LAB_SMALL_SHA256"
    # The server renegotiates every 6 s and checks the password again each time: with
    # auth-nocache, vpn2socks has to read it from its file again.
    if lab_wait_file_match "$S/v2s.log" 'openvpn: renegotiated' 20 "$V2S_PID"; then
        lab_pass "verbose: renegotiated"
    else
        lab_fail "verbose: renegotiated"
    fi
    lab_check "verbose: the server accepted the password again at the renegotiation" \
        test "$(grep -c "^accept $LAB_OVPN_USER" "$LAB_RUN_DIR/ovpn/auth.log")" -ge $((auth_before + 2))
    lab_check "verbose: a file through the tunnel after the renegotiation, sha256 matches" \
        v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_SMALL_FILE" "$S/b" 20 "$LAB_SMALL_SHA256"
    lab_check "memory: no private key PEM, tls-crypt key or password in the running process" \
        "$LAB_PY" "$LAB_LIB_DIR/mem_scan.py" "$V2S_PID" "key-pem:text:$KEY_LINES" "tls-crypt-bytes:hex:$TC_HEX" \
        "tls-crypt-hex:text:$TC_LINES" "password:text:$PASS"
    # A proxy client's host name with a line break and a terminal escape in it: logged escaped.
    lab_check "logs: a hostile SOCKS host name gets its failure reply (0x04)" \
        sc connect $'web\nvpn2socks error: forged\e[2J' "$LAB_WEB_PORT" 0x04
    lab_check_eq "verbose: SIGTERM stops vpn2socks with status 0" 0 "$(v2s_stop)"
    lab_check "logs: the host name is logged escaped (web\\x0avpn2socks error: forged\\x1b[2J)" \
        grep -qF 'web\x0avpn2socks error: forged\x1b[2J' "$S/v2s.log"
    lab_check "logs: no forged line, no raw escape byte" \
        sh -c "! grep -q '^vpn2socks error: forged' '$S/v2s.log' && ! grep -q \"\$(printf '\\033')\" '$S/v2s.log'"
    lab_check "logs: the log is at the highest level (debug lines present)" grep -q 'vpn2socks debug:' "$S/v2s.log"
    printf '%s\n' "$PASS" >"$LAB_RUN_DIR/needle-password"
    sed -n '/BEGIN/,/END/p' "$DIR/tc.key" | grep -v -- ----- >"$LAB_RUN_DIR/needle-tc"
    grep -v -- ----- "$DIR/client.key" >"$LAB_RUN_DIR/needle-key"
    lab_check "logs: the password is in no log line" not_in_log "$LAB_RUN_DIR/needle-password"
    lab_check "logs: no line of the tls-crypt key's hex" not_in_log "$LAB_RUN_DIR/needle-tc"
    lab_check "logs: no line of the private key's PEM" not_in_log "$LAB_RUN_DIR/needle-key"
else
    lab_fail "verbose: tunnel up with -vvv"
fi
lab_stop_openvpn_server sec

lab_finish
