#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# SOCKS5 username/password (RFC 1929, --socks-auth FILE): vpn2socks as nobody with --config
# against Debian's openvpn 2.6 server, two listeners (127.0.0.1:1080 and 0.0.0.0:1081), a users
# file of two users (a password holding ':' and '#'), owned by nobody, mode 600.
#   - the same file readable by others is refused at start: exit 1, one error line with the fix;
#   - no start warning for the listener beyond loopback (it has authentication);
#   - curl --socks5 and --socks5-hostname with the right credentials (in the proxy URL, and with
#     --proxy-user) fetch a 4 MiB file byte-exact (sha256), by address and by a name the tunnel's
#     DNS resolves;
#   - no credentials (curl offers only "no authentication": 0xFF), a wrong password, an unknown
#     user: curl exits 97 with its message for each; --socks4a: exit 97, request rejected (91);
#     a raw login whose version byte is 5, not 1: 05 02, then 01 01 and the close;
#   - each refusal is one warning naming the listener, the client and the user, and no password
#     appears anywhere in the log;
#   - after the failures a right login still works, on either listener.
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
LAB_BIG_MB=4 lab_setup --no-ocserv
v2s_prepare

ALICE_PASS='s3:cr#t pa55'
ALICE_URL_PASS='s3%3Acr%23t%20pa55' # the same, percent-encoded for a proxy URL
BOB_PASS='b0b-only'
USERS=$LAB_RUN_DIR/users
printf '# vpn2socks users\nalice:%s\r\n\nbob:%s\n' "$ALICE_PASS" "$BOB_PASS" >"$USERS"
chown nobody:nogroup "$USERS"

lab_start_openvpn_server auth --proto udp
lab_openvpn_client_config auth

# The file other users can read: refused before anything starts.
chmod 644 "$USERS"
v2s_run_ovpn_fail readable "$LAB_OVPN_CLIENT_DIR" --socks-auth "$USERS"
lab_check_eq "a users file other users can read: exit status" 1 "$FAIL_STATUS"
lab_check "... with one error line saying the fix" grep -qF -- \
    "--socks-auth: $USERS holds passwords that other users can read (mode 0644): run chmod 600 $USERS" "$FAIL_LOG"
chmod 600 "$USERS"

v2s_start_ovpn auth "$LAB_OVPN_CLIENT_DIR" --socks-auth "$USERS" -D 0.0.0.0:1081 ||
    lab_die "vpn2socks did not bring the tunnel up"
lab_wait_listen "$LAB_CLIENT_NS" tcp 0.0.0.0 1081 || lab_die "no listener on 0.0.0.0:1081"
lab_check_eq "no warning that 0.0.0.0:1081 is open without authentication" 0 \
    "$(grep -c 'has no authentication' "$S/v2s.log")"
lab_check "the log says the listeners require a login" grep -qF "require one of the 2 users of $USERS" "$S/v2s.log"

BIG_URL=$LAB_WEB_URL/$LAB_BIG_FILE
BIG_NAME_URL=http://$LAB_WEB_NAME:$LAB_WEB_PORT/$LAB_BIG_FILE

# fetch URL curl-args...: the big file through the proxy, byte-exact (sha256 and size)
fetch() {
    local url=$1 out=$S/big
    shift
    rm -f "$out"
    lab_in_client curl -sS -f --connect-timeout 10 -m 60 -o "$out" "$@" "$url" || return 1
    v2s_check_file "$out" "$LAB_BIG_SHA256" "$LAB_BIG_SIZE"
}
# refused DESCRIPTION MESSAGE curl-args...: curl exits 97 (CURLE_PROXY) with MESSAGE
refused() {
    local desc=$1 want=$2 rc=0 err
    shift 2
    err=$(lab_in_client curl -sS --connect-timeout 10 -m 20 -o /dev/null "$@" "$LAB_WEB_URL/$LAB_SMALL_FILE" 2>&1) ||
        rc=$?
    if [ "$rc" = 97 ] && grep -qF -- "$want" <<<"$err"; then
        lab_pass "$desc: curl exit 97: $err"
    else
        lab_fail "$desc: expected curl exit 97 with '$want', got exit $rc: $err"
    fi
}
# refusals PATTERN: how many warnings in the log match PATTERN (grep -E)
refusals() { grep -cE -- "vpn2socks warn: $1" "$S/v2s.log"; }

P=127.0.0.1:$SOCKS_PORT
lab_check "--socks5 (socks5://alice:...@) by address: 4 MiB byte-exact" \
    fetch "$BIG_URL" --proxy "socks5://alice:$ALICE_URL_PASS@$P"
lab_check "--socks5-hostname (socks5h://alice:...@) by name: 4 MiB byte-exact" \
    fetch "$BIG_NAME_URL" --proxy "socks5h://alice:$ALICE_URL_PASS@$P"
lab_check "--socks5-hostname --proxy-user bob:...: 4 MiB byte-exact" \
    fetch "$BIG_NAME_URL" --socks5-hostname "$P" --proxy-user "bob:$BOB_PASS"

refused "no credentials (--socks5-hostname)" "No authentication method was acceptable" --socks5-hostname "$P"
refused "no credentials (--socks5)" "No authentication method was acceptable" --socks5 "$P"
refused "a wrong password" "User was rejected by the SOCKS5 server" --proxy "socks5h://alice:s3%3Acr%23t@$P"
refused "bob's password for alice" "User was rejected by the SOCKS5 server" \
    --socks5-hostname "$P" --proxy-user "alice:$BOB_PASS"
refused "an unknown user" "User was rejected by the SOCKS5 server" --proxy "socks5h://mallory:$ALICE_URL_PASS@$P"
refused "--socks4a (no password in SOCKS4)" "request rejected" --socks4a "$P"
refused "--socks4" "request rejected" --socks4 "$P"
# RFC 1929: a login whose VER is not 1 (here 5, as if it were a request) is a failed login too.
lab_check "a login of version 5, not 1: 05 02, then 01 01 and the close" \
    sc answer "050102$(printf '\005\003bob\005pa:ss' | od -An -v -tx1 | tr -d ' \n')" 05020101

client='127\.0\.0\.1:[0-9]+'
where="SOCKS listener 127\\.0\\.0\\.1:$SOCKS_PORT: $client: login refused for"
lab_check_eq "log: the two clients without credentials" 2 \
    "$(refusals "$where a client without a user name: no username/password offered")"
lab_check_eq "log: the two wrong passwords, with the user" 2 "$(refusals "$where user \"alice\": wrong password$")"
lab_check_eq "log: the unknown user" 1 "$(refusals "$where user \"mallory\": unknown user$")"
lab_check_eq "log: the two SOCKS4 requests" 2 "$(refusals "$where a client without a user name: a SOCKS4 request")"
v5_why="a client without a user name: username/password sub-negotiation version is not 1"
lab_check_eq "log: the login of version 5" 1 "$(refusals "$where $v5_why")"
lab_check_eq "log: the three fetches went through the tunnel, and nothing refused was dialed" 3 \
    "$(grep -cE -- '-> .* \(tunnel\) open$' "$S/v2s.log")"
lab_check "log: a login at -vv names the user" grep -qE -- "$client: logged in as \"bob\"" "$S/v2s.log"
lab_check_eq "log: no password in it" 0 "$(grep -cF -e "s3:cr" -e "$BOB_PASS" -e "s3%3A" "$S/v2s.log")"

lab_check "after the failures, alice again: 4 MiB byte-exact" \
    fetch "$BIG_URL" --proxy "socks5h://alice:$ALICE_URL_PASS@$P"
lab_check "... and bob on the 0.0.0.0:1081 listener" \
    fetch "$BIG_NAME_URL" --proxy "socks5h://bob:$BOB_PASS@127.0.0.1:1081"
refused "... where no credentials are refused too" "No authentication method was acceptable" \
    --socks5-hostname 127.0.0.1:1081
lab_check "vpn2socks is still running" v2s_alive
lab_check_eq "SIGTERM: exit status 0" 0 "$(v2s_stop)"

lab_finish
