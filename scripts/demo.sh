#!/bin/bash
# The main job, end to end, on a throwaway lab: installs what is missing, builds vpn2socks, starts
# a VPN server in a network namespace with a web server behind it that only the VPN reaches,
# connects vpn2socks to it as an unprivileged user, and fetches a page through vpn2socks's SOCKS5
# port with curl. Everything it started is removed when it ends. Needs root (for the namespaces).
#
#   scripts/demo.sh              OpenVPN 2.6 server with the Alibaba Cloud SSL-VPN profile
#                                (AES-128-CBC, comp-lzo, net30); vpn2socks --config config.ovpn
#   scripts/demo.sh openconnect  ocserv; openconnect --script-tun starts vpn2socks
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
mode=${1:-openvpn}
case $mode in openvpn | openconnect) ;; *) echo "usage: $0 [openvpn|openconnect]" >&2; exit 1 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it builds network namespaces)" >&2; exit 1; }

./scripts/install-deps.sh
./scripts/build.sh build

export LAB_BIG_MB=1
# shellcheck source=../tests/lab/lib.sh
source tests/lab/lib.sh
# shellcheck source=../tests/lab/openvpn.sh
source tests/lab/openvpn.sh
lab_require_root
if [ "$mode" = openvpn ]; then lab_setup --no-ocserv; else lab_setup; fi
bin=$LAB_RUN_DIR/vpn2socks
install -m 755 build/vpn2socks "$bin"
log=$LAB_RUN_DIR/out/vpn2socks.log

echo
if [ "$mode" = openvpn ]; then
    lab_start_openvpn_server demo --proto udp --profile alibaba
    lab_openvpn_client_config demo
    echo "== the config.ovpn this server's users get (with ca.crt, client.crt, client.key):"
    sed 's/^/    /' "$LAB_OVPN_CLIENT_DIR/config.ovpn"
    echo "== vpn2socks --config config.ovpn -D 1080 -v   (as nobody, in the client namespace)"
    ip netns exec "$LAB_CLIENT_NS" setpriv --reuid=nobody --regid=nogroup --clear-groups \
        "$bin" --config "$LAB_OVPN_CLIENT_DIR/config.ovpn" -D 127.0.0.1:1080 -v 2>>"$log" &
    LAB_PIDS+=("$!")
    lab_wait_file_match "$log" 'tunnel up: address' 30 "$!" || { cat "$log"; exit 1; }
else
    echo "== openconnect (as nobody) -> ocserv at $LAB_VPN_URL, with vpn2socks -D 1080 as its script"
    lab_start_openconnect "$bin -D 127.0.0.1:1080 -v 2>>$log"
fi
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
