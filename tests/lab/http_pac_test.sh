#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# The PAC file on the HTTP listener (-H): vpn2socks as nobody with -H 127.0.0.1:8118 (and the
# default --others: split routes, the rest direct) against Debian's openvpn 2.6 server, which
# pushes the lab's internal network and DNS domain $LAB_DOMAIN:
#   - curl fetches http://127.0.0.1:8118/proxy.pac: 200, Content-Type
#     application/x-ns-proxy-autoconfig; HEAD of /wpad.dat the same;
#   - pacparser (Debian's python3-pacparser, a real PAC engine) evaluates FindProxyForURL:
#     $LAB_WEB_NAME (a name under the tunnel's domain) and an address in the pushed route ->
#     "PROXY 127.0.0.1:8118"; a name and an address outside -> DIRECT;
#   - curl through the proxy the PAC names fetches the tunnel's web server byte-exact;
#   - the server is restarted pushing one more route: vpn2socks reconnects and the PAC fetched
#     again sends that network to the proxy (it went DIRECT before).
#   - headless Chromium (Debian's chromium; a failure when not installed) with --proxy-pac-url
#     loads the tunnel's page through the proxy and one outside the routes DIRECT;
#   - headless Firefox (Debian's firefox-esr; a failure when not installed) the same with its
#     "Automatic proxy configuration URL", and the tunnel's page by name with its SOCKS v5 settings.
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
# A missing dependency fails, as in lab_require_root: a skip would pass unseen in CI.
"$LAB_PY" -c 'import pacparser' 2>/dev/null ||
    { echo "lab: missing python3-pacparser; run scripts/install-deps.sh" >&2; exit 1; }
lab_setup --no-ocserv
v2s_prepare

HTTP_PORT=8118
HPROXY=127.0.0.1:$HTTP_PORT
WEB=http://$LAB_WEB_NAME:$LAB_WEB_PORT
NEW_NET=10.123.0.0    # pushed after the restart only
NEW_HOST=10.123.4.5

lab_start_openvpn_server pac --proto udp --exit-notify --keepalive "2 10"
lab_openvpn_client_config pac
v2s_start_ovpn pac "$LAB_OVPN_CLIENT_DIR" -H "$HPROXY" || lab_die "vpn2socks did not bring the tunnel up"
lab_wait_listen "$LAB_CLIENT_NS" tcp 127.0.0.1 "$HTTP_PORT" 5 || lab_die "the HTTP proxy does not listen"

# fetch_pac FILE [PATH]: the PAC over plain HTTP from the listener (no proxy); prints the type
fetch_pac() {
    lab_in_client curl -sS -f -m 10 -o "$1" -w '%{content_type}' "http://$HPROXY/${2:-proxy.pac}"
}

# pac FILE HOST...: what FindProxyForURL answers for http://HOST/, one line per host
pac() {
    "$LAB_PY" -W ignore - "$@" <<'PY'
import sys, pacparser
pacparser.init()
pacparser.parse_pac_file(sys.argv[1])
for h in sys.argv[2:]:
    print(pacparser.find_proxy("http://%s/" % h, h))
PY
}

lab_check_eq "GET /proxy.pac: 200 with the PAC content type" application/x-ns-proxy-autoconfig \
    "$(fetch_pac "$S/proxy.pac")"
wpad_head() {
    lab_in_client curl -sS -f -m 10 -I "http://$HPROXY/wpad.dat" | tr -d '\r' | grep -i '^content-type:'
}
lab_check_eq "HEAD /wpad.dat: 200 with the PAC content type" "Content-Type: application/x-ns-proxy-autoconfig" \
    "$(wpad_head)"
lab_check_eq "pacparser: $LAB_WEB_NAME (the tunnel's domain) goes to the proxy" "PROXY $HPROXY" \
    "$(pac "$S/proxy.pac" "$LAB_WEB_NAME")"
lab_check_eq "pacparser: $LAB_INTERNAL_IP (in the pushed route) goes to the proxy" "PROXY $HPROXY" \
    "$(pac "$S/proxy.pac" "$LAB_INTERNAL_IP")"
lab_check_eq "pacparser: www.example.org (outside the tunnel's domains) goes DIRECT" DIRECT \
    "$(pac "$S/proxy.pac" www.example.org)"
lab_check_eq "pacparser: $LAB_SERVER_IP (outside the routes) goes DIRECT" DIRECT \
    "$(pac "$S/proxy.pac" "$LAB_SERVER_IP")"
lab_check_eq "pacparser: $NEW_HOST (not pushed yet) goes DIRECT" DIRECT "$(pac "$S/proxy.pac" "$NEW_HOST")"

# As a browser does: the proxy the PAC names for the URL, then the request through it.
as_the_pac_says() {
    local answer
    answer=$(pac "$S/proxy.pac" "$LAB_WEB_NAME")
    [ "${answer#PROXY }" != "$answer" ] || { echo "the PAC says '$answer'"; return 1; }
    lab_in_client curl -sS -f -m 20 -x "http://${answer#PROXY }" -o "$S/small" "$WEB/$LAB_SMALL_FILE" || return 1
    v2s_check_file "$S/small" "$LAB_SMALL_SHA256"
}
lab_check "curl through the proxy the PAC names fetches $WEB byte-exact" as_the_pac_says

# Headless Chromium with --proxy-pac-url (Debian's chromium, from scripts/install-deps.sh;
# a failure when it is not installed): the tunnel's name through the proxy (the proxy
# logs the request), an address outside the routes DIRECT (a second web server on the VPN
# server's own address, which the client namespace reaches without the tunnel; the proxy never
# sees it).
chrome() {
    lab_in_client timeout 40 chromium --headless --no-sandbox --disable-gpu --no-first-run \
        --user-data-dir="$S/chrome" --proxy-pac-url="http://$HPROXY/proxy.pac" --dump-dom "$1" 2>/dev/null
}
chrome_proxy() {
    local from
    from=$(wc -l <"$S/v2s.log")
    chrome "$WEB/$LAB_SMALL_FILE" | grep -q "hello from the vpn2socks lab $LAB_ID" || return 1
    tail -n "+$((from + 1))" "$S/v2s.log" | grep -q "GET to $LAB_WEB_NAME:$LAB_WEB_PORT" ||
        { echo "the proxy logged no GET to $LAB_WEB_NAME:$LAB_WEB_PORT"; return 1; }
}
chrome_direct() {
    local from url=http://$LAB_SERVER_IP:$((LAB_WEB_PORT + 1))/$LAB_SMALL_FILE
    from=$(wc -l <"$S/v2s.log")
    chrome "$url" | grep -q "hello from the vpn2socks lab $LAB_ID" || return 1
    if tail -n "+$((from + 1))" "$S/v2s.log" | grep -q "$LAB_SERVER_IP:$((LAB_WEB_PORT + 1))"; then
        echo "the proxy saw $url"
        return 1
    fi
}
if command -v chromium >/dev/null || command -v firefox-esr >/dev/null; then
    lab_bg web-direct ip netns exec "$LAB_SERVER_NS" "$LAB_PY" "$LAB_LIB_DIR/web_server.py" \
        "$LAB_SERVER_IP" "$((LAB_WEB_PORT + 1))" "$LAB_WEB_ROOT"
    lab_wait_listen "$LAB_SERVER_NS" tcp "$LAB_SERVER_IP" "$((LAB_WEB_PORT + 1))" 5 ||
        lab_die "the second web server did not start"
fi
if command -v chromium >/dev/null; then
    lab_check "chromium --proxy-pac-url: $WEB through the proxy" chrome_proxy
    lab_check "chromium --proxy-pac-url: $LAB_SERVER_IP DIRECT (the proxy never sees it)" chrome_direct
else
    lab_fail "headless Chromium: Debian's chromium is not installed (scripts/install-deps.sh)"
fi

# Headless Firefox (Debian's firefox-esr; a failure when it is not installed), set up as a user
# would: a fresh profile whose user.js holds the proxy settings of about:preferences, Network
# Settings. Firefox has no --dump-dom: it renders each page to a PNG, and the web servers' logs
# say what it fetched. Each page is a file of its own, so a log line belongs to one check.
#   - "Automatic proxy configuration URL" (network.proxy.type 2): the tunnel's name through the
#     proxy, an address outside the routes DIRECT;
#   - "Manual proxy configuration", SOCKS v5 with "Proxy DNS when using SOCKS v5" (type 1,
#     socks5_remote_dns): the tunnel's name reaches vpn2socks as a name.
# firefox NAME URL PREF...: the profile $S/NAME, user_pref(PREF) each; the page to $S/NAME.png
firefox() {
    local prof=$S/$1 url=$2 p
    shift 2
    mkdir -p "$prof" "$S/ffhome"
    for p in "$@"; do printf 'user_pref(%s);\n' "$p"; done >"$prof/user.js"
    # a page it cannot load keeps it waiting: 20 s (it takes about 1 s here)
    HOME=$S/ffhome lab_in_client timeout 20 firefox-esr --headless --no-remote --profile "$prof" \
        --screenshot "$prof.png" "$url" >"$prof.log" 2>&1 ||
        { echo "firefox-esr: exit $? (124: timed out) for $url"; tail -n 5 "$prof.log"; return 1; }
    [ -s "$prof.png" ] || { echo "no screenshot"; return 1; }
}
ff_page() { # ff_page FILE: a page of its own on both web servers
    printf 'hello from the vpn2socks lab %s: %s\n' "$LAB_ID" "$1" >"$LAB_WEB_ROOT/$1"
}
# served LOG FILE: the web server's log shows a 200 for /FILE
served() {
    grep -q "\"GET /$2 HTTP/1.1\" 200" "$LAB_RUN_DIR/log/$1.log" ||
        { echo "$1 did not serve /$2:"; tail -n 5 "$LAB_RUN_DIR/log/$1.log"; return 1; }
}
ff_pac=('"network.proxy.type", 2' "\"network.proxy.autoconfig_url\", \"http://$HPROXY/proxy.pac\"")
ff_pac_proxy() {
    local from
    from=$(wc -l <"$S/v2s.log")
    ff_page firefox-pac.txt
    firefox ff-pac "$WEB/firefox-pac.txt" "${ff_pac[@]}" || return 1
    served web firefox-pac.txt || return 1
    tail -n "+$((from + 1))" "$S/v2s.log" | grep -q "GET /proxy.pac" ||
        { echo "the proxy logged no GET /proxy.pac"; return 1; }
    tail -n "+$((from + 1))" "$S/v2s.log" | grep -q "GET to $LAB_WEB_NAME:$LAB_WEB_PORT" ||
        { echo "the proxy logged no GET to $LAB_WEB_NAME:$LAB_WEB_PORT"; return 1; }
}
ff_pac_direct() {
    local from url=http://$LAB_SERVER_IP:$((LAB_WEB_PORT + 1))/firefox-direct.txt
    from=$(wc -l <"$S/v2s.log")
    ff_page firefox-direct.txt
    firefox ff-direct "$url" "${ff_pac[@]}" || return 1
    served web-direct firefox-direct.txt || return 1
    if tail -n "+$((from + 1))" "$S/v2s.log" | grep -q "$LAB_SERVER_IP:$((LAB_WEB_PORT + 1))"; then
        echo "the proxy saw $url"
        return 1
    fi
}
ff_socks() {
    local from
    from=$(wc -l <"$S/v2s.log")
    ff_page firefox-socks.txt
    firefox ff-socks "$WEB/firefox-socks.txt" '"network.proxy.type", 1' \
        "\"network.proxy.socks\", \"$SOCKS_ADDR\"" "\"network.proxy.socks_port\", $SOCKS_PORT" \
        '"network.proxy.socks_version", 5' '"network.proxy.socks5_remote_dns", true' || return 1
    served web firefox-socks.txt || return 1
    tail -n "+$((from + 1))" "$S/v2s.log" | grep -q -- "-> $LAB_WEB_NAME:$LAB_WEB_PORT \[.*(tunnel) open" ||
        { echo "vpn2socks logged no relay to $LAB_WEB_NAME:$LAB_WEB_PORT by name"; return 1; }
}
if command -v firefox-esr >/dev/null; then
    lab_check "firefox-esr, automatic proxy configuration URL: $WEB through the proxy" ff_pac_proxy
    lab_check "firefox-esr, automatic proxy configuration URL: $LAB_SERVER_IP DIRECT (the proxy never sees it)" \
        ff_pac_direct
    lab_check "firefox-esr, SOCKS v5 with remote DNS: $WEB by name through vpn2socks" ff_socks
else
    lab_fail "headless Firefox: Debian's firefox-esr is not installed (scripts/install-deps.sh)"
fi

# The server pushes one more route from its next start; vpn2socks reconnects (explicit-exit-notify).
echo "push \"route $NEW_NET 255.255.0.0\"" >>"${LAB_OVPN_CONF[pac]}"
ups=$(grep -c 'tunnel up: address' "$S/v2s.log")
lab_restart_openvpn_server pac
if lab_wait_count "$S/v2s.log" 'tunnel up: address' "$((ups + 1))" 40; then
    lab_pass "the server restarted with a new route: vpn2socks reconnected"
    fetch_pac "$S/proxy2.pac" >/dev/null
    lab_check_eq "the PAC fetched again: $NEW_HOST (the new route) goes to the proxy" "PROXY $HPROXY" \
        "$(pac "$S/proxy2.pac" "$NEW_HOST")"
    lab_check_eq "the PAC fetched again: $LAB_WEB_NAME still goes to the proxy" "PROXY $HPROXY" \
        "$(pac "$S/proxy2.pac" "$LAB_WEB_NAME")"
    lab_check "after the reconnect: curl through the proxy fetches $WEB byte-exact" as_the_pac_says
else
    lab_fail "the server restarted with a new route: vpn2socks reconnected"
fi
lab_check "vpn2socks is still running" v2s_alive
lab_check_eq "SIGTERM: exit status 0" 0 "$(v2s_stop)"

lab_finish
