#!/bin/bash
# The main job, end to end, on a throwaway lab: installs what is missing, builds vpn2socks, starts
# a VPN server (ocserv) in a network namespace with a web server behind it that only the VPN
# reaches, connects openconnect to it as an unprivileged user with vpn2socks as its --script-tun
# script (also unprivileged), and fetches a page through vpn2socks's SOCKS5 port with curl.
# Everything it started is removed when it ends. Needs root (for the namespaces).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it builds network namespaces)" >&2; exit 1; }

./scripts/install-deps.sh
./scripts/build.sh build

export LAB_BIG_MB=1
# shellcheck source=../tests/lab/lib.sh
source tests/lab/lib.sh
lab_require_root
lab_setup
bin=$LAB_RUN_DIR/vpn2socks
install -m 755 build/vpn2socks "$bin"
log=$LAB_RUN_DIR/out/vpn2socks.log

echo
echo "== openconnect (as nobody) -> ocserv at $LAB_VPN_URL, with vpn2socks -D 1080 as its script"
lab_start_openconnect "$bin -D 127.0.0.1:1080 -v 2>>$log"
lab_wait_listen "$LAB_CLIENT_NS" tcp 127.0.0.1 1080 10
echo "== curl --socks5-hostname 127.0.0.1:1080 http://$LAB_WEB_NAME:$LAB_WEB_PORT/$LAB_SMALL_FILE"
out=$LAB_RUN_DIR/out/fetched
lab_in_client curl -sS --max-time 20 --socks5-hostname 127.0.0.1:1080 -o "$out" \
    "http://$LAB_WEB_NAME:$LAB_WEB_PORT/$LAB_SMALL_FILE"
cat "$out"
echo "== the same without vpn2socks (must fail: only the tunnel reaches $LAB_INTERNAL_IP)"
if lab_in_client curl -sS --max-time 3 -o /dev/null "http://$LAB_INTERNAL_IP:$LAB_WEB_PORT/" 2>&1; then
    echo "demo: the web server was reachable without the tunnel; the lab is broken" >&2
    exit 1
fi
echo "== vpn2socks log"
cat "$log"
got=$(sha256sum "$out" | cut -d' ' -f1)
echo
if [ "$got" = "$LAB_SMALL_SHA256" ]; then
    echo "demo: OK: fetched through the VPN by vpn2socks running as nobody (sha256 $got)"
else
    echo "demo: FAILED: sha256 $got, expected $LAB_SMALL_SHA256" >&2
    exit 1
fi
