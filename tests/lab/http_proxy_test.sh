#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# -H, the HTTP proxy: vpn2socks as nobody, with --config against Debian's openvpn 2.6 server,
# --others reject, -H 127.0.0.1:8118 and -H 0.0.0.0:8119 (warned about at start: no authentication
# beyond loopback); curl in the client namespace with --proxy http://127.0.0.1:8118:
#   - an absolute-URI GET to the web server by name (resolved through the tunnel's DNS), byte-exact;
#   - the big file (LAB_BIG_MB, 100 MiB by default) byte-exact;
#   - two URLs in one curl: both byte-exact over one connection to the proxy (num_connects 1, 0);
#   - a chunked POST: the web server gets every byte (it answers with their length and sha256);
#   - CONNECT (curl --proxytunnel) to the web server, byte-exact;
#   - https:// through CONNECT to a TLS server behind the tunnel (openssl s_server -WWW serving
#     the web root, its certificate checked by curl against the lab CA), byte-exact;
#   - a destination outside the pushed routes: 403, for a GET and for a CONNECT;
#   - a name the tunnel's DNS does not know: 502;
#   - Via: "1.1 vpn2socks" on the request the web server gets and "1.0 vpn2socks" on its answer;
#   - a GET without Host (curl -H 'Host:'): 400;
#   - TRACE with Max-Forwards: 0: the proxy's own answer, the request it got without its Cookie;
#   - curl --http1.0 and a chunked answer: the body de-chunked;
#   - curl -X QUERY (a method http-parser does not know) with a Content-Length body and with a
#     chunked one: the web server gets the method and every byte; a method that is not a token
#     (curl -X 'QU(ERY'): 400.
# Then again with --socks-auth USERS (owned by nobody, mode 600) and -H 0.0.0.0:8120:
#   - no start warning for the listener beyond loopback (it has authentication);
#   - curl --proxy-user with the right user: a GET and a CONNECT byte-exact;
#   - no credentials, a wrong password, an unknown user: 407 (and 407 to a CONNECT), each
#     refusal logged with the user, no password anywhere in the log.
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

HTTP_PORT=8118
HPROXY=http://127.0.0.1:$HTTP_PORT
WEB=http://$LAB_WEB_NAME:$LAB_WEB_PORT

# An HTTPS server behind the tunnel, with a certificate for the web server's name.
HTTPS_PORT=8443
lab_pki_issue web-tls server --san "DNS:$LAB_WEB_NAME"
# (-WWW serves files relative to its working directory.)
# shellcheck disable=SC2016  # $1.. are the inner shell's
lab_bg https ip netns exec "$LAB_SERVER_NS" sh -c 'cd "$1" && shift && exec openssl s_server -quiet -WWW "$@"' \
    sh "$LAB_WEB_ROOT" -accept "$LAB_INTERNAL_IP:$HTTPS_PORT" -cert "$LAB_PKI_DIR/web-tls.pem" \
    -key "$LAB_PKI_DIR/web-tls.key"
lab_wait_listen "$LAB_SERVER_NS" tcp "$LAB_INTERNAL_IP" "$HTTPS_PORT" 5 || lab_die "the HTTPS server did not start"

lab_start_openvpn_server http --proto udp
lab_openvpn_client_config http
v2s_start_ovpn http "$LAB_OVPN_CLIENT_DIR" --others reject -H "127.0.0.1:$HTTP_PORT" -H "0.0.0.0:$((HTTP_PORT + 1))" ||
    lab_die "vpn2socks did not bring the tunnel up"
lab_wait_listen "$LAB_CLIENT_NS" tcp 127.0.0.1 "$HTTP_PORT" 5 || lab_die "the HTTP proxy does not listen"

hcurl() { lab_in_client curl -sS --connect-timeout 10 -x "$HPROXY" "$@"; }

get_small() {
    hcurl -f -m 20 -o "$S/small" "$WEB/$LAB_SMALL_FILE" || return 1
    v2s_check_file "$S/small" "$LAB_SMALL_SHA256"
}

get_big() {
    hcurl -f -m 60 -o "$S/big" "$WEB/$LAB_BIG_FILE" || return 1
    v2s_check_file "$S/big" "$LAB_BIG_SHA256" "$LAB_BIG_SIZE" && rm -f "$S/big"
}

# curl keeps its connection to the proxy for the second URL: one connect, then none.
two_on_one() {
    local n
    n=$(hcurl -f -m 20 -w '%{num_connects} ' -o "$S/one" "$WEB/$LAB_SMALL_FILE" -o "$S/two" \
        "$WEB/$LAB_SMALL_FILE") || return 1
    [ "$n" = "1 0 " ] || { echo "connections made per URL: '$n', expected '1 0 '"; return 1; }
    v2s_check_file "$S/one" "$LAB_SMALL_SHA256" && v2s_check_file "$S/two" "$LAB_SMALL_SHA256"
}

chunked_post() {
    local got want
    head -c 3000000 /dev/urandom >"$S/upload"
    want="3000000 $(sha256sum <"$S/upload" | cut -d' ' -f1)"
    got=$(hcurl -f -m 30 -H 'Transfer-Encoding: chunked' --data-binary @"$S/upload" "$WEB/upload") || return 1
    [ "$got" = "$want" ] || { echo "the web server got '$got', expected '$want'"; return 1; }
}

connect_tunnel() {
    hcurl -f -m 20 -p -o "$S/tunnel" "$WEB/$LAB_SMALL_FILE" || return 1
    v2s_check_file "$S/tunnel" "$LAB_SMALL_SHA256"
}

https_connect() {
    hcurl -f -m 20 --cacert "$LAB_CA_CERT" -o "$S/https" "https://$LAB_WEB_NAME:$HTTPS_PORT/$LAB_SMALL_FILE" ||
        return 1
    v2s_check_file "$S/https" "$LAB_SMALL_SHA256"
}

outside_get() {
    hcurl -m 20 -o /dev/null -w '%{http_code}' "http://$LAB_SERVER_IP:$LAB_WEB_PORT/$LAB_SMALL_FILE"
}

outside_connect() {
    hcurl -m 20 -p -o /dev/null -w '%{http_connect}' "http://$LAB_SERVER_IP:$LAB_WEB_PORT/$LAB_SMALL_FILE" 2>/dev/null
}

exposed() {
    grep -c "HTTP listener $1 is reachable from other hosts and has no authentication" "$S/v2s.log"
}
lab_check_eq "-H 0.0.0.0:$((HTTP_PORT + 1)): one warning that other hosts can reach it unauthenticated" 1 \
    "$(exposed "0.0.0.0:$((HTTP_PORT + 1))")"
lab_check_eq "-H 127.0.0.1:$HTTP_PORT: no such warning" 0 "$(exposed "127.0.0.1:$HTTP_PORT")"
nosuch_name() {
    hcurl -m 20 -o /dev/null -w '%{http_code}' "http://nosuch.$LAB_DOMAIN:$LAB_WEB_PORT/"
}

lab_check "GET with an absolute URI to a name in the tunnel: byte-exact (sha256)" get_small
lab_check "GET of ${LAB_BIG_SIZE} bytes: byte-exact" get_big
lab_check "two URLs in one curl: one connection to the proxy, both byte-exact" two_on_one
lab_check "chunked POST: the web server gets every byte" chunked_post
lab_check "CONNECT (curl --proxytunnel) to the web server: byte-exact" connect_tunnel
lab_check "https:// through CONNECT to a TLS server in the tunnel (certificate checked): byte-exact" https_connect
lab_check_eq "GET outside the routes (--others reject): 403" 403 "$(outside_get)"
lab_check_eq "CONNECT outside the routes (--others reject): 403" 403 "$(outside_connect)"
lab_check_eq "GET of a name the tunnel's DNS does not know: 502" 502 "$(nosuch_name)"
# RFC 9110 7.6.3: the proxy's Via, a pseudonym, on the request the origin gets and on the answer.
via_both() {
    local head body
    body=$(hcurl -f -m 20 -D "$S/via-head" "$WEB/echo-headers") || return 1
    head=$(tr -d '\r' <"$S/via-head")
    grep -qx 'Via: 1.1 vpn2socks' <<<"$body" || { echo "the origin got no Via: $body"; return 1; }
    grep -qx 'Via: 1.0 vpn2socks' <<<"$head" || { echo "the answer has no Via (a 1.0 origin): $head"; return 1; }
}
# RFC 9112 3.2: an HTTP/1.1 request without Host is refused (curl -H 'Host:' leaves it out).
no_host() { hcurl -m 20 -o /dev/null -w '%{http_code}' -H 'Host:' "$WEB/$LAB_SMALL_FILE"; }
# RFC 9110 7.6.2: a TRACE with Max-Forwards: 0 is the proxy's to answer, with the request it got.
trace_here() {
    local body
    body=$(hcurl -f -m 20 -X TRACE -H 'Max-Forwards: 0' -H 'Cookie: c=1' "$WEB/t") || return 1
    head -n1 <<<"$body" | grep -q "^TRACE $WEB/t HTTP/1.1" || { echo "not the request: $body"; return 1; }
    if grep -qi '^Cookie' <<<"$body"; then echo "the Cookie was echoed: $body"; return 1; fi
}
# RFC 9112 7.1: an HTTP/1.0 client gets a chunked answer de-chunked.
http10_chunked() {
    local body
    body=$(hcurl -f -m 20 --http1.0 -D "$S/h10-head" "$WEB/chunked-anyway") || return 1
    [ "$body" = hello ] || { echo "the body was '$body', expected 'hello'"; return 1; }
    # curl reads chunks whatever the version; a real HTTP/1.0 client would not.
    if grep -qi '^Transfer-Encoding' "$S/h10-head"; then echo "still chunked: $(cat "$S/h10-head")"; return 1; fi
}
lab_check "Via: 1.1 vpn2socks to the origin, Via: 1.0 vpn2socks on its answer" via_both
lab_check_eq "an HTTP/1.1 GET without Host: 400" 400 "$(no_host)"
lab_check "TRACE with Max-Forwards: 0: answered by the proxy with the request, no Cookie" trace_here
lab_check "curl --http1.0 and an origin that answers chunked: the bare body" http10_chunked
# RFC 9110 9.1: a proxy forwards a method it does not know, its body framed as any other's.
query_method() {
    local got want
    head -c "$1" /dev/urandom >"$S/query"
    want="QUERY $1 $(sha256sum <"$S/query" | cut -d' ' -f1)"
    got=$(hcurl -f -m 30 -X QUERY -H 'Content-Type: application/octet-stream' "${@:2}" \
        --data-binary @"$S/query" "$WEB/q") || return 1
    [ "$got" = "$want" ] || { echo "the web server got '$got', expected '$want'"; return 1; }
}
bad_method() { hcurl -m 20 -o /dev/null -w '%{http_code}' -X 'QU(ERY' "$WEB/$LAB_SMALL_FILE"; }
lab_check "curl -X QUERY --data-binary (Content-Length): the web server gets QUERY and every byte" \
    query_method 200000
lab_check "curl -X QUERY, chunked: the web server gets QUERY and every byte" query_method 300000 \
    -H 'Transfer-Encoding: chunked'
lab_check_eq "a method that is not a token (QU(ERY): 400" 400 "$(bad_method)"
lab_check "vpn2socks is still running" v2s_alive
lab_check_eq "SIGTERM: exit status 0" 0 "$(v2s_stop)"

# ---------------------------------------------------------------- with --socks-auth
ALICE_PASS='s3:cr#t pa55'
USERS=$LAB_RUN_DIR/users
printf 'alice:%s\nbob:b0b\n' "$ALICE_PASS" >"$USERS"
chown nobody:nogroup "$USERS"
chmod 600 "$USERS"
v2s_start_ovpn http-auth "$LAB_OVPN_CLIENT_DIR" --others reject --socks-auth "$USERS" \
    -H "127.0.0.1:$HTTP_PORT" -H "0.0.0.0:$((HTTP_PORT + 2))" || lab_die "vpn2socks did not bring the tunnel up"
lab_wait_listen "$LAB_CLIENT_NS" tcp 127.0.0.1 "$HTTP_PORT" 5 || lab_die "the HTTP proxy does not listen"

auth_get() {
    hcurl -f -m 20 --proxy-user "alice:$ALICE_PASS" -o "$S/auth" "$WEB/$LAB_SMALL_FILE" || return 1
    v2s_check_file "$S/auth" "$LAB_SMALL_SHA256"
}
auth_connect() {
    hcurl -f -m 20 -p --proxy-user "bob:b0b" -o "$S/auth-tunnel" "$WEB/$LAB_SMALL_FILE" || return 1
    v2s_check_file "$S/auth-tunnel" "$LAB_SMALL_SHA256"
}
auth_code() { hcurl -m 20 -o /dev/null -w '%{http_code}' "$@" "$WEB/$LAB_SMALL_FILE" 2>/dev/null; }
auth_connect_code() { hcurl -m 20 -p -o /dev/null -w '%{http_connect}' "$@" "$WEB/$LAB_SMALL_FILE" 2>/dev/null; }

lab_check_eq "auth: no warning that 0.0.0.0:$((HTTP_PORT + 2)) is open without authentication" 0 \
    "$(grep -c 'has no authentication' "$S/v2s.log")"
lab_check "auth: GET with the right user (--proxy-user): byte-exact" auth_get
lab_check "auth: CONNECT with the right user: byte-exact" auth_connect
lab_check_eq "auth: GET without credentials: 407" 407 "$(auth_code)"
lab_check_eq "auth: GET with a wrong password: 407" 407 "$(auth_code --proxy-user alice:wrong)"
lab_check_eq "auth: GET as an unknown user: 407" 407 "$(auth_code --proxy-user carol:x)"
lab_check_eq "auth: CONNECT with a wrong password: 407" 407 "$(auth_connect_code --proxy-user alice:wrong)"
refusals() {
    echo "$(grep -c 'login refused for user "alice": wrong password' "$S/v2s.log")" \
        "$(grep -c 'login refused for user "carol": unknown user' "$S/v2s.log")"
}
lab_check_eq "auth: each refusal logged (wrong password twice, unknown user once)" "2 1" "$(refusals)"
lab_check_eq "auth: no password in the log" 0 "$(grep -c -e "$ALICE_PASS" -e 'b0b' -e ':wrong' "$S/v2s.log")"
lab_check_eq "auth: SIGTERM: exit status 0" 0 "$(v2s_stop)"

lab_finish
