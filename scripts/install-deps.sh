#!/bin/bash
# Installs what building vpn2socks and running its tests needs, from Debian's archive.
#
# Runs apt-get only when something is missing, so a second run returns at once. Needs root to
# install; without root it lists what is missing and exits 1.
#   scripts/install-deps.sh            install what is missing
#   scripts/install-deps.sh --check    only report; exit 1 if something is missing
#   scripts/install-deps.sh --build    only what building (and cpack -G DEB) needs: the
#                                      container's build stage (examples/container/Containerfile)
set -euo pipefail

build_pkgs=(
    build-essential cmake pkg-config
    libuv1-dev libssl-dev liblzo2-dev liblz4-dev
    libinih-dev                  # the config file (--conf)
    libhttp-parser-dev           # the HTTP proxy's parser (http/)
    dpkg-dev xz-utils            # `apt-get source lwip` (scripts/fetch-lwip.sh); dpkg-shlibdeps (cpack -G DEB)
    file                         # cpack -G DEB: finds the ELF files for dpkg-shlibdeps
)
pkgs=(
    "${build_pkgs[@]}"
    # packaging (tests/pkg): systemd-analyze verify on the unit, man -l on the installed page
    systemd man-db
    # lab: real servers and clients
    ocserv openconnect openvpn
    ocproxy                      # bench/openconnect.sh: the user-space stack vpn2socks is measured against
    openssl ca-certificates      # throwaway PKI
    dnsmasq-base                 # DNS inside the server namespace
    iproute2 util-linux          # ip netns / veth, setpriv
    nftables                     # packet loss in lab tests
    tcpdump                      # lab.guard: the SYNs captured at the server
    procps                       # pkill/pgrep -P for cleanup helpers
    iputils-ping                 # lab.port_remote: ping to the tunnel address, over -R's tunnel
    # test clients
    curl python3 python3-socks
    python3-pacparser            # lab.http_pac: a real PAC engine evaluates the PAC file
    chromium                     # lab.http_pac: headless Chromium with --proxy-pac-url
    firefox-esr                  # lab.http_pac: headless Firefox with a PAC URL and with SOCKS v5
    python3-prometheus-client    # lab.status: /metrics read by Prometheus's own text parser
    bind9-dnsutils               # dig (lab.port_udp)
    openssh-client openssh-server  # lab.port_ssh: ssh and scp through -L to its own sshd
    proxychains4 netcat-openbsd git  # lab.clients: the clients of examples/clients.md
    bubblewrap                   # lab.sandbox: the container's root file system, unprivileged
    # fuzzing: clang with libFuzzer and the sanitizer runtimes (tests/fuzz)
    clang libclang-rt-dev
)

mode=${1:-}
[ "$mode" = --build ] && pkgs=("${build_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#pkgs[@]} packages present"
    exit 0
fi

echo "install-deps: missing: ${missing[*]}"
if [ "$mode" = --check ]; then
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: not root; run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"

# ocserv's and openssh-server's packages start system services; the lab runs its own instances
# and wants none. sshd is stopped only when this run installed it: a machine that already had it
# may be reached through it.
stop=(ocserv.service ocserv.socket)
[[ " ${missing[*]} " == *" openssh-server "* ]] && stop+=(ssh.service ssh.socket)
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    for u in "${stop[@]}"; do   # one at a time: a unit the system lacks fails only itself
        systemctl disable --now "$u" >/dev/null 2>&1 || true
    done
elif [[ " ${stop[*]} " == *" ssh.service "* ]] && [ -x /etc/init.d/ssh ]; then
    # no systemd: the package's init script may have started it (unless policy-rc.d said no)
    /etc/init.d/ssh stop >/dev/null 2>&1 || true
    update-rc.d ssh disable >/dev/null 2>&1 || true
fi
echo "install-deps: done"
