# shellcheck shell=bash
# Lab library: real VPN servers in network namespaces, for tests that need root.
#
#   source "$(dirname "$0")/lib.sh"
#   lab_require_root                 # not root / no netns: prints "SKIP: ..." and exits 77
#   lab_setup                        # namespaces, services, PKI, ocserv; teardown on EXIT
#   lab_start_openconnect "vpn2socks -D 1080"
#   lab_check "fetch small file" lab_client_nobody curl ...
#   lab_finish                       # "N passed, N failed[, N skipped]"; exit 0 or 1
#
# Topology (one pair of namespaces per run, names carry the shell's pid):
#   client ns  $LAB_CLIENT_NS  veth $LAB_CLIENT_IP/24  -- no route to 10.99.0.0/24
#   server ns  $LAB_SERVER_NS  veth $LAB_SERVER_IP/24, lo + $LAB_INTERNAL_IP/32 where
#     HTTP  $LAB_INTERNAL_IP:$LAB_WEB_PORT  (web root $LAB_WEB_ROOT)
#     echo  $LAB_INTERNAL_IP:$LAB_ECHO_PORT tcp and udp (TCP: echoes until half-close, then closes)
#     DNS   $LAB_INTERNAL_IP:53  web.lab.test and web -> $LAB_INTERNAL_IP, $LAB_LOOPBACK_NAME
#           (loopback.lab.test) -> 127.0.0.1 (what a hostile VPN's DNS may answer), NXDOMAIN for the rest
#     ocserv on $LAB_SERVER_IP:$LAB_OCSERV_PORT tcp (+udp for DTLS unless LAB_OCSERV_UDP=0)
# The veth pair also has $LAB_SERVER_IP6/64 and $LAB_CLIENT_IP6/64 (fd00:30:X::1 and ::2, a ULA
# prefix) for VPN servers on IPv6; both are empty when the kernel has no IPv6 (IPv6 cases skip).
#
# Knobs (environment): LAB_KEEP=1 keeps the run dir; LAB_BIG_MB (default 100) sizes the big file;
# LAB_OCSERV_UDP=0 serves TLS only; LAB_OCSERV_EXTRA holds more lines for ocserv.conf (say, an
# ipv6-network), and LAB_OCSERV_NO_IPV4=1 leaves out its IPv4 pool, DNS server and route; LAB_TMP
# is where the run dir goes (default /tmp).

LAB_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_PY=/usr/bin/python3          # Debian's python: python3 on PATH may lack Debian's modules
LAB_PASSED=0
LAB_FAILED=0
LAB_SKIPPED=0
LAB_PIDS=()
LAB_NAMESPACES=()

lab_log() { echo "lab: $*" >&2; }
lab_die() { echo "lab: error: $*" >&2; lab_dump_logs; exit 1; }

# ---------------------------------------------------------------- assertions and summary

lab_pass() { LAB_PASSED=$((LAB_PASSED + 1)); echo "PASS: $*"; }
lab_fail() { LAB_FAILED=$((LAB_FAILED + 1)); echo "FAIL: $*"; }
lab_skip() { LAB_SKIPPED=$((LAB_SKIPPED + 1)); echo "SKIP: $*"; }

# lab_check DESCRIPTION COMMAND...: pass if the command succeeds, else fail (its output is shown)
lab_check() {
    local desc=$1 out rc
    shift
    out=$("$@" 2>&1) && rc=0 || rc=$?
    if [ "$rc" -eq 0 ]; then
        lab_pass "$desc"
    else
        lab_fail "$desc (exit $rc)"
        [ -n "$out" ] && printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /'
    fi
    return "$rc"
}

# lab_check_eq DESCRIPTION EXPECTED ACTUAL
lab_check_eq() {
    if [ "$2" = "$3" ]; then
        lab_pass "$1"
    else
        lab_fail "$1: expected '$2', got '$3'"
        return 1
    fi
}

lab_summary() {
    local line="$LAB_PASSED passed, $LAB_FAILED failed"
    [ "$LAB_SKIPPED" -gt 0 ] && line+=", $LAB_SKIPPED skipped"
    echo "$line"
    [ "$LAB_FAILED" -eq 0 ]
}

# lab_finish: print the summary (and log tails on failure), exit 0 if nothing failed, else 1
lab_finish() {
    [ "$LAB_FAILED" -gt 0 ] && lab_dump_logs
    if lab_summary; then exit 0; else exit 1; fi
}

lab_dump_logs() {
    [ -n "${LAB_RUN_DIR:-}" ] && [ -d "$LAB_RUN_DIR/log" ] || return 0
    local f
    # the services' logs, and each vpn2socks's own (v2s.sh keeps them in out/NAME/v2s.log)
    for f in "$LAB_RUN_DIR"/log/*.log "$LAB_RUN_DIR"/out/*/v2s.log; do
        [ -s "$f" ] || continue
        echo "---- last lines of $f" >&2
        tail -n 25 "$f" >&2
    done
}

# ---------------------------------------------------------------- preconditions

lab_require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: lab tests need root (network namespaces, veth, ocserv); run as root or in CI"
        exit 77
    fi
    local probe="v2s-probe-$$"
    if ! ip netns add "$probe" 2>/dev/null; then
        echo "SKIP: 'ip netns add' does not work here (no network namespace support?)"
        exit 77
    fi
    ip netns del "$probe" 2>/dev/null
    local t missing=()
    for t in ocserv openconnect dnsmasq openssl setpriv ss sha256sum; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    [ -x "$LAB_PY" ] || missing+=("$LAB_PY")
    if [ ${#missing[@]} -gt 0 ]; then
        echo "lab: missing ${missing[*]}; run scripts/install-deps.sh" >&2
        exit 1
    fi
}

# ---------------------------------------------------------------- process helpers

lab_in_server() { ip netns exec "$LAB_SERVER_NS" "$@"; }
lab_in_client() { ip netns exec "$LAB_CLIENT_NS" "$@"; }
# as nobody:nogroup without capabilities, in the client namespace (how vpn2socks runs)
lab_client_nobody() {
    ip netns exec "$LAB_CLIENT_NS" setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
}

# lab_bg NAME COMMAND...: start in the background, output to $LAB_RUN_DIR/log/NAME.log; sets
# LAB_LAST_PID. Everything started this way is ended by lab_teardown.
lab_bg() {
    local name=$1
    shift
    "$@" </dev/null >"$LAB_RUN_DIR/log/$name.log" 2>&1 &
    LAB_LAST_PID=$!
    LAB_PIDS+=("$LAB_LAST_PID")
    echo "$LAB_LAST_PID $name" >>"$LAB_RUN_DIR/pids"
}

# lab_wait_listen NS tcp|udp ADDR PORT [TIMEOUT_S]: wait until something listens there (ADDR an
# IPv4 or IPv6 address as ss prints it, IPv6 without brackets)
lab_wait_listen() {
    local ns=$1 proto=$2 addr=$3 port=$4 timeout=${5:-10} flag i
    [ "$proto" = udp ] && flag=-Hlun || flag=-Hltn
    [[ $addr == *:* ]] && addr="[$addr]"
    for ((i = 0; i < timeout * 20; i++)); do
        if ip netns exec "$ns" ss $flag "( sport = :$port )" 2>/dev/null | grep -qF "$addr:$port"; then
            return 0
        fi
        sleep 0.05
    done
    echo "lab: nothing listens on $proto $addr:$port in $ns after ${timeout}s" >&2
    return 1
}

# lab_wait_file_match FILE REGEX [TIMEOUT_S] [PID]: wait until FILE has a line matching REGEX;
# fails early if PID is given and dies
# lab_wait_count FILE REGEX N [TIMEOUT_S]: until at least N lines of FILE match (default 10 s)
lab_wait_count() {
    local i
    for ((i = 0; i < ${4:-10} * 20; i++)); do
        [ "$(grep -cE -- "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
        sleep 0.05
    done
    return 1
}

lab_wait_file_match() {
    local file=$1 re=$2 timeout=${3:-10} pid=${4:-} i
    for ((i = 0; i < timeout * 20; i++)); do
        grep -qE -- "$re" "$file" 2>/dev/null && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            grep -qE -- "$re" "$file" 2>/dev/null && return 0
            return 1
        fi
        sleep 0.05
    done
    return 1
}

# ---------------------------------------------------------------- PKI

# lab_pki_ca FILE_PREFIX CN: a self-signed CA, FILE_PREFIX.pem (mode 644) and FILE_PREFIX.key
lab_pki_ca() {
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -sha256 -keyout "$1.key" -out "$1.pem" \
        -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || lab_die "CA $2: creation failed"
    chmod 644 "$1.pem"
    chmod 600 "$1.key"
}

# lab_pki_init: a CA valid one day in $LAB_PKI_DIR (ca.pem, ca.key)
lab_pki_init() {
    LAB_PKI_DIR=$LAB_RUN_DIR/pki
    LAB_CA_CERT=$LAB_PKI_DIR/ca.pem
    LAB_CA_KEY=$LAB_PKI_DIR/ca.key
    mkdir -p "$LAB_PKI_DIR"
    lab_pki_ca "$LAB_PKI_DIR/ca" "vpn2socks lab CA $LAB_ID"
    export LAB_PKI_DIR LAB_CA_CERT LAB_CA_KEY
}

# lab_pki_make_ca PREFIX: a second, unrelated CA, $LAB_PKI_DIR/PREFIX-ca.pem and .key
lab_pki_make_ca() {
    [ -f "$LAB_PKI_DIR/$1-ca.pem" ] || lab_pki_ca "$LAB_PKI_DIR/$1-ca" "vpn2socks lab $1 CA $LAB_ID"
}

# lab_pki_issue NAME server|client [--san SAN] [--ca PREFIX] [--dates START END] [--cn CN]:
# NAME.pem and NAME.key in $LAB_PKI_DIR, subject CN=NAME (or CN), signed by the lab CA (or
# PREFIX-ca.pem from lab_pki_make_ca), valid one day from now or between fixed dates
# (YYYYMMDDHHMMSSZ; e.g. --dates 20200101000000Z 20200102000000Z for an expired certificate).
# SAN like "IP:172.30.1.1,DNS:vpn.lab.test". The key
# is mode 644 so an unprivileged client can read it (throwaway). OpenSSL 3.0's `x509 -req` takes
# only -days, so dated certificates go through `openssl ca` with a throwaway config.
lab_pki_issue() {
    local name=$1 kind=$2 san='' cacert=$LAB_CA_CERT cakey=$LAB_CA_KEY start='' end='' eku cn=$1
    shift 2
    while [ $# -gt 0 ]; do
        case $1 in
        --san) san=$2; shift 2 ;;
        --cn) cn=$2; shift 2 ;;
        --ca) cacert=$LAB_PKI_DIR/$2-ca.pem; cakey=$LAB_PKI_DIR/$2-ca.key; shift 2 ;;
        --dates) start=$2; end=$3; shift 3 ;;
        *) lab_die "lab_pki_issue: unknown option $1" ;;
        esac
    done
    local d=$LAB_PKI_DIR ext=$LAB_PKI_DIR/$name.ext
    [ "$kind" = server ] && eku=serverAuth || eku=clientAuth
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$eku"
        [ -n "$san" ] && echo "subjectAltName=$san"
    } >"$ext"
    openssl req -new -newkey rsa:2048 -nodes -keyout "$d/$name.key" -out "$d/$name.csr" \
        -subj "/CN=$cn" 2>/dev/null || lab_die "CSR for $name failed"
    if [ -n "$start" ]; then
        local cadir=$d/ca-db
        mkdir -p "$cadir/new"
        [ -f "$cadir/index.txt" ] || : >"$cadir/index.txt"
        cat >"$cadir/ca.cnf" <<EOF
[ca]
default_ca = lab
[lab]
database = $cadir/index.txt
new_certs_dir = $cadir/new
rand_serial = yes
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[anything]
commonName = supplied
EOF
        openssl ca -batch -notext -config "$cadir/ca.cnf" -cert "$cacert" -keyfile "$cakey" \
            -startdate "$start" -enddate "$end" -extfile "$ext" \
            -in "$d/$name.csr" -out "$d/$name.pem" >"$cadir/$name.out" 2>&1 ||
            lab_die "signing $name failed: $(tail -n 3 "$cadir/$name.out")"
    else
        openssl x509 -req -in "$d/$name.csr" -CA "$cacert" -CAkey "$cakey" \
            -set_serial "0x$(openssl rand -hex 8)" -days 1 -sha256 -extfile "$ext" \
            -out "$d/$name.pem" 2>/dev/null || lab_die "signing $name failed"
    fi
    chmod 644 "$d/$name.pem" "$d/$name.key"
}

# ---------------------------------------------------------------- setup

# lab_setup [--no-ocserv]: everything above; with --no-ocserv, the namespaces, services and CA
# only (for tests that run another VPN server, e.g. openvpn, in $LAB_SERVER_NS).
lab_setup() {
    local want_ocserv=1 a t0
    for a in "$@"; do
        case $a in
        --no-ocserv) want_ocserv=0 ;;
        *) lab_die "lab_setup: unknown option $a" ;;
        esac
    done
    t0=$(date +%s.%N)
    trap lab_teardown EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    LAB_ID=$$
    LAB_RUN_DIR=$(mktemp -d "${LAB_TMP:-/tmp}/vpn2socks-lab.XXXXXX") || lab_die "mktemp failed"
    chmod 755 "$LAB_RUN_DIR"          # nobody reads the CA cert and runs scripts from here
    mkdir -p "$LAB_RUN_DIR/log" "$LAB_RUN_DIR/out"
    chmod 1777 "$LAB_RUN_DIR/out"     # writable by the unprivileged client side
    : >"$LAB_RUN_DIR/pids"

    LAB_SERVER_NS=v2s-srv-$LAB_ID
    LAB_CLIENT_NS=v2s-cli-$LAB_ID
    local third=$((16 + LAB_ID % 224))
    LAB_SERVER_IP=172.30.$third.1
    LAB_CLIENT_IP=172.30.$third.2
    LAB_SERVER_IP6=fd00:30:$third::1
    LAB_CLIENT_IP6=fd00:30:$third::2
    LAB_INTERNAL_IP=10.99.0.1
    LAB_INTERNAL_NET=10.99.0.0/24
    LAB_VPN_POOL=10.98.0.0/24
    LAB_DNS_IP=$LAB_INTERNAL_IP
    LAB_DOMAIN=lab.test
    LAB_WEB_NAME=web.lab.test
    LAB_LOOPBACK_NAME=loopback.lab.test
    LAB_WEB_PORT=8080
    LAB_ECHO_PORT=7777
    LAB_WEB_URL=http://$LAB_INTERNAL_IP:$LAB_WEB_PORT
    export LAB_ID LAB_RUN_DIR LAB_SERVER_NS LAB_CLIENT_NS LAB_SERVER_IP LAB_CLIENT_IP \
        LAB_SERVER_IP6 LAB_CLIENT_IP6 LAB_INTERNAL_IP LAB_INTERNAL_NET LAB_VPN_POOL LAB_DNS_IP \
        LAB_DOMAIN LAB_WEB_NAME LAB_LOOPBACK_NAME LAB_WEB_PORT LAB_ECHO_PORT LAB_WEB_URL

    lab_setup_net
    lab_setup_web
    lab_setup_echo
    lab_setup_dns
    lab_pki_init
    [ "$want_ocserv" = 1 ] && lab_setup_ocserv
    lab_wait_listen "$LAB_SERVER_NS" tcp "$LAB_INTERNAL_IP" "$LAB_WEB_PORT" || lab_die "web server did not start"
    lab_wait_listen "$LAB_SERVER_NS" tcp "$LAB_INTERNAL_IP" "$LAB_ECHO_PORT" || lab_die "echo server did not start"
    lab_wait_listen "$LAB_SERVER_NS" udp "$LAB_INTERNAL_IP" 53 || lab_die "dnsmasq did not start"
    lab_log "setup done in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s, run dir $LAB_RUN_DIR"
}

lab_setup_net() {
    local vs=v2s${LAB_ID}s vc=v2s${LAB_ID}c
    ip netns add "$LAB_SERVER_NS" || lab_die "ip netns add $LAB_SERVER_NS failed"
    LAB_NAMESPACES+=("$LAB_SERVER_NS")
    ip netns add "$LAB_CLIENT_NS" || lab_die "ip netns add $LAB_CLIENT_NS failed"
    LAB_NAMESPACES+=("$LAB_CLIENT_NS")
    ip link add "$vs" netns "$LAB_SERVER_NS" type veth peer name "$vc" netns "$LAB_CLIENT_NS" ||
        lab_die "veth pair failed"
    lab_in_server ip link set lo up
    lab_in_client ip link set lo up
    lab_in_server ip addr add "$LAB_SERVER_IP/24" dev "$vs"
    lab_in_client ip addr add "$LAB_CLIENT_IP/24" dev "$vc"
    # nodad: usable at once, no duplicate address detection to wait for on a link of two
    if ! lab_in_server ip -6 addr add "$LAB_SERVER_IP6/64" dev "$vs" nodad 2>/dev/null ||
        ! lab_in_client ip -6 addr add "$LAB_CLIENT_IP6/64" dev "$vc" nodad 2>/dev/null; then
        lab_log "no IPv6 on the veth pair (IPv6 disabled?): IPv6 cases will skip"
        LAB_SERVER_IP6=''
        LAB_CLIENT_IP6=''
    fi
    lab_in_server ip link set "$vs" up
    lab_in_client ip link set "$vc" up
    # reachable only through the tunnel: the client ns has no route to it
    lab_in_server ip addr add "$LAB_INTERNAL_IP/32" dev lo
    LAB_SERVER_VETH=$vs
    LAB_CLIENT_VETH=$vc
    export LAB_SERVER_VETH LAB_CLIENT_VETH
}

lab_setup_web() {
    LAB_WEB_ROOT=$LAB_RUN_DIR/www
    mkdir -p "$LAB_WEB_ROOT"
    LAB_SMALL_FILE=hello.txt
    printf 'hello from the vpn2socks lab %s\n' "$LAB_ID" >"$LAB_WEB_ROOT/$LAB_SMALL_FILE"
    LAB_SMALL_SHA256=$(sha256sum "$LAB_WEB_ROOT/$LAB_SMALL_FILE" | cut -d' ' -f1)
    LAB_BIG_FILE=big.bin
    LAB_BIG_SIZE=$(( ${LAB_BIG_MB:-100} * 1048576 ))
    head -c "$LAB_BIG_SIZE" /dev/urandom >"$LAB_WEB_ROOT/$LAB_BIG_FILE"
    LAB_BIG_SHA256=$(sha256sum "$LAB_WEB_ROOT/$LAB_BIG_FILE" | cut -d' ' -f1)
    chmod 644 "$LAB_WEB_ROOT"/*
    export LAB_WEB_ROOT LAB_SMALL_FILE LAB_SMALL_SHA256 LAB_BIG_FILE LAB_BIG_SIZE LAB_BIG_SHA256
    lab_bg web ip netns exec "$LAB_SERVER_NS" "$LAB_PY" "$LAB_LIB_DIR/web_server.py" \
        "$LAB_INTERNAL_IP" "$LAB_WEB_PORT" "$LAB_WEB_ROOT"
}

lab_setup_echo() {
    lab_bg echo ip netns exec "$LAB_SERVER_NS" "$LAB_PY" "$LAB_LIB_DIR/echo_server.py" \
        "$LAB_INTERNAL_IP" "$LAB_ECHO_PORT"
}

lab_setup_dns() {
    # --local=/#/ makes every other name NXDOMAIN instead of REFUSED (there is no upstream);
    # dnsmasq-base brings no dnsmasq user; nobody works (it binds port 53 before dropping).
    lab_bg dnsmasq ip netns exec "$LAB_SERVER_NS" dnsmasq --keep-in-foreground \
        --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
        --listen-address="$LAB_INTERNAL_IP" --bind-interfaces --port=53 \
        --user=nobody --group=nogroup --pid-file="$LAB_RUN_DIR/dnsmasq.pid" \
        --log-facility=- --log-queries \
        --host-record="$LAB_WEB_NAME,$LAB_INTERNAL_IP" --host-record="web,$LAB_INTERNAL_IP" \
        --host-record="$LAB_LOOPBACK_NAME,127.0.0.1" \
        --local=/#/
}

# lab_setup_ocserv: a server certificate for $LAB_SERVER_IP, then lab_start_ocserv
lab_setup_ocserv() {
    lab_pki_issue server server --san "IP:$LAB_SERVER_IP"
    LAB_SERVER_CERT=$LAB_PKI_DIR/server.pem
    LAB_SERVER_KEY=$LAB_PKI_DIR/server.key
    chmod 600 "$LAB_SERVER_KEY"
    export LAB_SERVER_CERT LAB_SERVER_KEY
    lab_start_ocserv
}

# lab_start_ocserv: ocserv in the server ns with password auth, its config at
# $LAB_RUN_DIR/ocserv.conf, its log at $LAB_RUN_DIR/log/ocserv.log
lab_start_ocserv() {
    LAB_VPN_USER=lab
    LAB_VPN_PASS=lab-pass-$LAB_ID
    LAB_OCSERV_PORT=443
    LAB_VPN_URL=https://$LAB_SERVER_IP:$LAB_OCSERV_PORT/
    LAB_OCCTL_SOCK=$LAB_RUN_DIR/occtl.sock
    LAB_OCSERV_CONF=$LAB_RUN_DIR/ocserv.conf
    export LAB_VPN_USER LAB_VPN_PASS LAB_OCSERV_PORT LAB_VPN_URL LAB_OCCTL_SOCK LAB_OCSERV_CONF
    # plain[] takes crypt(3) hashes: user:group:hash
    echo "$LAB_VPN_USER:*:$(openssl passwd -6 "$LAB_VPN_PASS")" >"$LAB_PKI_DIR/ocpasswd"
    chmod 600 "$LAB_PKI_DIR/ocpasswd"
    local udp="udp-port = $LAB_OCSERV_PORT"
    [ "${LAB_OCSERV_UDP:-1}" = 0 ] && udp="# no udp-port: TLS only"
    cat >"$LAB_OCSERV_CONF" <<EOF
auth = "plain[passwd=$LAB_PKI_DIR/ocpasswd]"
listen-host = $LAB_SERVER_IP
tcp-port = $LAB_OCSERV_PORT
$udp
run-as-user = nobody
run-as-group = nogroup
socket-file = $LAB_RUN_DIR/ocserv.sock
use-occtl = true
occtl-socket-file = $LAB_OCCTL_SOCK
pid-file = $LAB_RUN_DIR/ocserv.pid
server-cert = $LAB_SERVER_CERT
server-key = $LAB_SERVER_KEY
isolate-workers = ${LAB_OCSERV_ISOLATE:-true}
max-clients = 16
max-same-clients = 0
rate-limit-ms = 0
max-ban-score = 0
keepalive = 30
dpd = 30
mobile-dpd = 30
switch-to-tcp-timeout = 25
try-mtu-discovery = false
auth-timeout = 60
cookie-timeout = 300
deny-roaming = false
rekey-time = 172800
rekey-method = ssl
log-level = 2
device = vpns
predictable-ips = true
ipv4-network = ${LAB_VPN_POOL%/*}
ipv4-netmask = 255.255.255.0
dns = $LAB_DNS_IP
default-domain = $LAB_DOMAIN
route = $LAB_INTERNAL_NET
mtu = 1400
ping-leases = false
cisco-client-compat = true
dtls-legacy = true
EOF
    # an IPv6-only server: no IPv4 pool, and neither the IPv4 DNS server nor the IPv4 route
    [ "${LAB_OCSERV_NO_IPV4:-0}" = 1 ] && sed -i '/^ipv4-/d; /^dns = /d; /^route = /d' "$LAB_OCSERV_CONF"
    [ -n "${LAB_OCSERV_EXTRA:-}" ] && printf '%s\n' "$LAB_OCSERV_EXTRA" >>"$LAB_OCSERV_CONF"
    lab_bg ocserv ip netns exec "$LAB_SERVER_NS" ocserv -f -c "$LAB_OCSERV_CONF"
    LAB_OCSERV_PID=$LAB_LAST_PID
    export LAB_OCSERV_PID
    lab_wait_listen "$LAB_SERVER_NS" tcp "$LAB_SERVER_IP" "$LAB_OCSERV_PORT" 15 ||
        lab_die "ocserv did not start (see $LAB_RUN_DIR/log/ocserv.log)"
}

# lab_occtl ARGS...: e.g. lab_occtl show users; lab_occtl disconnect user lab
lab_occtl() { lab_in_server occtl -s "$LAB_OCCTL_SOCK" "$@"; }

# ---------------------------------------------------------------- openconnect

# lab_start_openconnect SCRIPT [OPENCONNECT_ARGS...]: openconnect in the client ns as
# nobody:nogroup with --script-tun --script SCRIPT, against the lab's ocserv. Returns once
# openconnect reports the tunnel up (and so has started SCRIPT); 1 if it died or timed out.
# Sets LAB_OC_PID; log in $LAB_OC_LOG. Extra args, e.g. --no-dtls, go to openconnect.
lab_start_openconnect() {
    local script=$1
    shift
    LAB_OC_LOG=$LAB_RUN_DIR/log/openconnect.log
    ip netns exec "$LAB_CLIENT_NS" setpriv --reuid=nobody --regid=nogroup --clear-groups \
        openconnect --non-inter --passwd-on-stdin -u "$LAB_VPN_USER" --cafile "$LAB_CA_CERT" \
        --script-tun --script "$script" "$@" "$LAB_VPN_URL" \
        <<<"$LAB_VPN_PASS" >>"$LAB_OC_LOG" 2>&1 &
    LAB_OC_PID=$!
    LAB_PIDS+=("$LAB_OC_PID")
    echo "$LAB_OC_PID openconnect" >>"$LAB_RUN_DIR/pids"
    export LAB_OC_PID LAB_OC_LOG
    if ! lab_wait_file_match "$LAB_OC_LOG" '^(Connected as|Configured as)' 20 "$LAB_OC_PID"; then
        lab_log "openconnect did not connect; log $LAB_OC_LOG:"
        tail -n 20 "$LAB_OC_LOG" >&2
        return 1
    fi
}

# lab_stop_openconnect [SIGNAL]: default TERM (openconnect says goodbye to the server)
lab_stop_openconnect() {
    local sig=${1:-TERM} i
    [ -n "${LAB_OC_PID:-}" ] || return 0
    {   # the braces' redirection also silences bash's "Killed" job notice
        kill -s "$sig" "$LAB_OC_PID"
        for ((i = 0; i < 100; i++)); do
            kill -0 "$LAB_OC_PID" || break
            sleep 0.05
        done
        wait "$LAB_OC_PID"
    } 2>/dev/null
}

# ---------------------------------------------------------------- teardown

lab_teardown() {
    local rc=$? pid ns i left
    set +e
    trap - EXIT INT TERM
    for ((i = ${#LAB_PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${LAB_PIDS[i]}" 2>/dev/null
    done
    # whatever else runs inside our namespaces (scripts openconnect started, ocserv workers)
    for ns in "${LAB_NAMESPACES[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null; done
    done
    for ((i = 0; i < 40; i++)); do
        left=0
        for pid in "${LAB_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
        for ns in "${LAB_NAMESPACES[@]}"; do
            [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && left=1
        done
        [ "$left" = 0 ] && break
        sleep 0.05
    done
    for pid in "${LAB_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    for ns in "${LAB_NAMESPACES[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    done
    wait 2>/dev/null
    for ns in "${LAB_NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null; done
    if [ -n "${LAB_RUN_DIR:-}" ] && [ -d "$LAB_RUN_DIR" ]; then
        if [ "${LAB_KEEP:-0}" = 1 ]; then
            lab_log "kept run dir $LAB_RUN_DIR"
        else
            rm -rf "$LAB_RUN_DIR"
        fi
    fi
    exit "$rc"
}
