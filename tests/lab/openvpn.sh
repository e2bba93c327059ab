# shellcheck shell=bash
# shellcheck disable=SC2034,SC2153  # variables here are for the tests; LAB_ID etc. come from lib.sh
# OpenVPN in the lab: sourced after lib.sh by tests that run Debian's `openvpn` 2.6 server in
# $LAB_SERVER_NS (set up with `lab_setup --no-ocserv`, or alongside ocserv).
# $LAB_OPENVPN_SERVER_BIN runs another server binary instead (default `openvpn`; e.g. a 2.4 or
# 2.5 built from OpenVPN's source): server.conf then holds what that version understands (from
# `BIN --version`; LAB_OVPN_SERVER_VERSION): before 2.6 no disable-dco; before 2.5 ncp-ciphers
# for data-ciphers, `cipher` alone for data-ciphers-fallback (the list's first when not given),
# no allow-compression and no CHACHA20-POLY1305 (2.4 pushes the first of its ncp-ciphers to a
# client that says IV_NCP=2, and gives any other `cipher`).
# Clients, key generation and the stock client stay Debian's openvpn.
#
#   lab_start_openvpn_server NAME [options] [-- "extra config line"...]
#       --proto udp|tcp         (udp)          --port N   (first free port >= 1194 for that proto)
#       --proto udp6|tcp6       the same on $LAB_SERVER_IP6 (proto udp6 / tcp6-server); the
#                               clients' remote is that address, their proto stays udp / tcp
#       --topology subnet|net30|p2p (subnet)   --ciphers LIST (AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305)
#       --profile alibaba       data-ciphers AES-128-CBC, cipher AES-128-CBC, auth SHA1,
#                               topology net30, comp-lzo yes + allow-compression yes (really compresses)
#       --auth DIGEST           --comp-lzo yes|no|adaptive (yes turns on allow-compression yes)
#       --tls-auth | --tls-crypt   a fresh key in the instance dir (server: key-direction 0)
#       --tls-crypt-v2          a fresh server key (tcv2-server.key) and a client key made from it
#                               (tcv2.key) in the instance dir
#       --tls-crypt-v2-mode force-cookie|allow-noncookie   the same, with that second argument
#                               on the server's tls-crypt-v2 line (OpenVPN 2.6)
#       --password              auth-user-pass-verify (via-file) accepting $LAB_OVPN_USER/$LAB_OVPN_PASS
#       --verify-client-cert none|optional|require (require)
#       --reneg-sec N           --keepalive "PING RESTART" ("10 60")   --exit-notify (UDP: tell
#                               clients RESTART when the server stops/restarts)
#       --dns "ADDR..."         the DNS servers pushed, in this order ($LAB_DNS_IP)
#       --cert WHICH            the server's certificate (server): see lab_openvpn_cert
#       --client-ca lab|other|none  which CA the server trusts for client certificates (lab);
#                               none: no ca line (give peer-fingerprint as an extra line)
#       --verb N (3)            --stdin: more config lines from standard input (a here-doc:
#                               piped into, the function would run in a subshell and be lost)
#       --env NAME=VALUE        in the server process's environment (repeatable; e.g. LD_PRELOAD)
#   lab_stop_openvpn_server NAME / lab_restart_openvpn_server NAME [--sighup]
#   lab_openvpn_mgmt NAME|SOCKET COMMAND  one management command ("status 2", "kill ovpn-client")
#   lab_openvpn_clients NAME            how many clients are connected
#   lab_openvpn_cert WHICH / lab_pki_issue NAME KIND [--san S] [--ca PREFIX] [--dates START END] /
#   lab_pki_make_ca PREFIX              certificates (ovpn-*.pem in $LAB_PKI_DIR), other CAs
#   lab_openvpn_client_config NAME [options] [-- "extra line"...] -> $LAB_OVPN_CLIENT_DIR
#       --dir DIR  --inline  --cert client|client-expired|client-otherca|client-selfsigned|none
#       --ca lab|other|none (none: no ca line)   --no-remote-cert-tls (the line is there by default)
#       --password P (what auth.txt holds; default the right one)   --no-auth-user-pass
#       --tls-key none|FILE  leave out the server's tls-auth/tls-crypt/tls-crypt-v2 key, or use another
#   lab_start_stock_openvpn_client CONFIGDIR [openvpn args]   root, kernel TUN, client ns
#   lab_stop_stock_openvpn_client [SIGNAL]
#
# Per instance NAME: dir $LAB_RUN_DIR/ovpn/NAME (server.conf, status, mgmt.sock, pid, keys),
# log $LAB_RUN_DIR/log/openvpn-NAME.log, and in associative arrays keyed by NAME:
# LAB_OVPN_PROTO (udp|tcp, also for udp6|tcp6) LAB_OVPN_ADDR (where it listens: $LAB_SERVER_IP or
# $LAB_SERVER_IP6) LAB_OVPN_PORT LAB_OVPN_NET (10.97.X.0) LAB_OVPN_GW (server's tun address)
# LAB_OVPN_DEV LAB_OVPN_PID LAB_OVPN_CONF LAB_OVPN_LOG LAB_OVPN_MGMT LAB_OVPN_STATUS, and the
# settings the client config follows (LAB_OVPN_CIPHER LAB_OVPN_CIPHERS LAB_OVPN_COMP LAB_OVPN_TA
# LAB_OVPN_AUTH LAB_OVPN_TC LAB_OVPN_PASSWORD LAB_OVPN_VCC LAB_OVPN_PROFILE).

LAB_OVPN_USER=lab
LAB_OPENVPN_SERVER_BIN=${LAB_OPENVPN_SERVER_BIN:-openvpn}
LAB_OVPN_SERVER_VERSION=''   # e.g. 2.6.14, set by lab_openvpn_server_version
LAB_OVPN_SERVER_NAME=vpn.example.com   # the CN of the server-named and server-nulcn certificates
LAB_OVPN_COUNT=0
LAB_OVPN_DEFAULT_CIPHERS=AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305
LAB_STOCK_FAILED='AUTH_FAILED|VERIFY ERROR|TLS Error|SIGUSR1\[|Exiting due to fatal error'
declare -gA LAB_OVPN_PROTO LAB_OVPN_PORT LAB_OVPN_NET LAB_OVPN_GW LAB_OVPN_DEV LAB_OVPN_PID \
    LAB_OVPN_CONF LAB_OVPN_LOG LAB_OVPN_MGMT LAB_OVPN_STATUS LAB_OVPN_DIR LAB_OVPN_CIPHER LAB_OVPN_ENV \
    LAB_OVPN_CIPHERS LAB_OVPN_COMP LAB_OVPN_TA LAB_OVPN_TC LAB_OVPN_PASSWORD LAB_OVPN_VCC \
    LAB_OVPN_PROFILE LAB_OVPN_AUTH LAB_OVPN_ADDR

# ---------------------------------------------------------------- certificates

# lab_openvpn_cert WHICH: make sure $LAB_PKI_DIR/ovpn-WHICH.pem/.key exist (issued on first use);
# WHICH: server client server-expired client-expired server-otherca client-otherca,
# server-named (CN $LAB_OVPN_SERVER_NAME), server-nulcn (CN "$LAB_OVPN_SERVER_NAME\0.attacker.example":
# a NUL byte inside, same CA), server-selfsigned client-selfsigned (no CA at all, for
# peer-fingerprint: what `openssl req -x509` makes, as in OpenVPN's own quick setup)
lab_openvpn_cert() {
    local w=$1 san="IP:$LAB_SERVER_IP"
    [ -f "$LAB_PKI_DIR/ovpn-$w.pem" ] && return 0
    case $w in
    server) lab_pki_issue ovpn-server server --san "$san" ;;
    server-named) lab_pki_issue ovpn-server-named server --san "$san" --cn "$LAB_OVPN_SERVER_NAME" ;;
    server-nulcn)
        lab_pki_issue ovpn-server-nulcn server --san "$san" --cn "$LAB_OVPN_SERVER_NAME#.attacker.example"
        lab_pki_nul_cn ovpn-server-nulcn "$LAB_OVPN_SERVER_NAME#.attacker.example" ;;
    server-selfsigned | client-selfsigned) lab_pki_self_signed "ovpn-$w" ;;
    client) lab_pki_issue ovpn-client client ;;
    server-expired) lab_pki_issue ovpn-server-expired server --san "$san" \
        --dates 20200101000000Z 20200102000000Z ;;
    client-expired) lab_pki_issue ovpn-client-expired client --dates 20200101000000Z 20200102000000Z ;;
    server-otherca) lab_pki_make_ca other && lab_pki_issue ovpn-server-otherca server --san "$san" --ca other ;;
    client-otherca) lab_pki_make_ca other && lab_pki_issue ovpn-client-otherca client --ca other ;;
    *) lab_die "lab_openvpn_cert: unknown certificate $w" ;;
    esac
}

# lab_pki_nul_cn NAME CN: NAME.pem (issued by the lab CA with subject CN=CN, CN holding one '#')
# again with that '#' turned into a NUL byte, signed anew by the lab CA. No openssl command writes
# a NUL into a name, so the certificate's DER is patched (its length does not change) and signed
# with `openssl dgst -sign`; `openssl verify` must accept the result.
lab_pki_nul_cn() {
    local d=$LAB_PKI_DIR
    "$LAB_PY" - "$d/$1.pem" "$LAB_CA_KEY" "$2" <<'EOF' || lab_die "lab_pki_nul_cn $1 failed"
import base64, subprocess, sys
path, ca_key, cn = sys.argv[1], sys.argv[2], sys.argv[3].encode()
der = base64.b64decode("".join(l for l in open(path) if not l.startswith("-----")))

def element(buf, off):
    """(header length, content length) of the DER element at off"""
    n = buf[off + 1]
    if n < 0x80:
        return 2, n
    return 2 + (n & 0x7F), int.from_bytes(buf[off + 2:off + 2 + (n & 0x7F)], "big")

def encode(tag, content):
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content

h, _ = element(der, 0)                      # Certificate ::= SEQUENCE {
th, tl = element(der, h)                    #   tbsCertificate,
tbs = der[h:h + th + tl]
ah, al = element(der, h + th + tl)          #   signatureAlgorithm, signatureValue }
alg = der[h + th + tl:h + th + tl + ah + al]
assert tbs.count(cn) == 1, "the CN is not in the certificate exactly once"
tbs = tbs.replace(cn, cn.replace(b"#", b"\0", 1))
sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", ca_key], input=tbs, capture_output=True,
                     check=True).stdout
b64 = base64.b64encode(encode(0x30, tbs + alg + encode(0x03, b"\0" + sig))).decode()
with open(path, "w") as f:
    f.write("-----BEGIN CERTIFICATE-----\n")
    f.write("".join(b64[i:i + 64] + "\n" for i in range(0, len(b64), 64)))
    f.write("-----END CERTIFICATE-----\n")
EOF
    openssl verify -CAfile "$LAB_CA_CERT" "$d/$1.pem" >/dev/null 2>&1 ||
        lab_die "lab_pki_nul_cn $1: the lab CA does not verify the patched certificate"
}

# lab_pki_self_signed NAME: NAME.pem and NAME.key in $LAB_PKI_DIR, self-signed, CN=NAME, one day
lab_pki_self_signed() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -keyout "$LAB_PKI_DIR/$1.key" -out "$LAB_PKI_DIR/$1.pem" -subj "/CN=$1" 2>/dev/null ||
        lab_die "self-signed certificate $1: creation failed"
    chmod 644 "$LAB_PKI_DIR/$1.pem" "$LAB_PKI_DIR/$1.key"
}

# lab_openvpn_fingerprint WHICH: the SHA-256 fingerprint of ovpn-WHICH.pem as peer-fingerprint
# takes it (AB:CD:...)
lab_openvpn_fingerprint() {
    lab_openvpn_cert "$1"
    openssl x509 -in "$LAB_PKI_DIR/ovpn-$1.pem" -noout -fingerprint -sha256 | sed 's/^.*=//'
}

# ---------------------------------------------------------------- server

lab_openvpn_require() {
    command -v openvpn >/dev/null 2>&1 || { echo "lab: missing openvpn; run scripts/install-deps.sh" >&2; exit 1; }
    command -v "$LAB_OPENVPN_SERVER_BIN" >/dev/null 2>&1 ||
        { echo "lab: no openvpn server binary $LAB_OPENVPN_SERVER_BIN" >&2; exit 1; }
    [ -c /dev/net/tun ] || { echo "SKIP: no /dev/net/tun"; exit 77; }
}

# lab_openvpn_server_version: LAB_OVPN_SERVER_VERSION from the first line of
# `$LAB_OPENVPN_SERVER_BIN --version` ("OpenVPN 2.4.12 x86_64-..."; a git build says 2.7_git: 2.7)
lab_openvpn_server_version() {
    [ -n "$LAB_OVPN_SERVER_VERSION" ] && return 0
    LAB_OVPN_SERVER_VERSION=$("$LAB_OPENVPN_SERVER_BIN" --version 2>/dev/null |
        sed -n '1s/^OpenVPN \([0-9]\+\.[0-9]\+[0-9.]*\).*/\1/p')
    [ -n "$LAB_OVPN_SERVER_VERSION" ] ||
        lab_die "$LAB_OPENVPN_SERVER_BIN --version does not name an OpenVPN version"
}

# lab_openvpn_server_at_least MAJOR.MINOR: the server binary is that version or newer
lab_openvpn_server_at_least() {
    local v=$LAB_OVPN_SERVER_VERSION major minor
    major=${v%%.*} minor=${v#*.}
    minor=${minor%%.*}
    [ "$major" -gt "${1%%.*}" ] || { [ "$major" = "${1%%.*}" ] && [ "$minor" -ge "${1#*.}" ]; }
}

# lab_openvpn_auth_script: the auth-user-pass-verify script (via-file: $1 = file with the user on
# line 1 and the password on line 2); accepts $LAB_OVPN_USER/$LAB_OVPN_PASS, logs each attempt's user.
# The password "temp-once" is refused the first time with a temporary failure (OpenVPN 2.6 sends
# the reason file's text as AUTH_FAILED,TEMP[backoff 1]: busy) and accepted from then on.
lab_openvpn_auth_script() {
    LAB_OVPN_PASS=${LAB_OVPN_PASS:-lab-pass-$LAB_ID}
    LAB_OVPN_AUTH_SCRIPT=$LAB_RUN_DIR/ovpn/auth-verify.sh
    export LAB_OVPN_USER LAB_OVPN_PASS LAB_OVPN_AUTH_SCRIPT
    [ -f "$LAB_OVPN_AUTH_SCRIPT" ] && return 0
    cat >"$LAB_OVPN_AUTH_SCRIPT" <<EOF
#!/bin/sh
user=\$(sed -n 1p "\$1")
pass=\$(sed -n 2p "\$1")
if [ "\$user" = '$LAB_OVPN_USER' ] && [ "\$pass" = temp-once ]; then
    if [ ! -e '$LAB_RUN_DIR/ovpn/temp-once' ] && [ -n "\$auth_failed_reason_file" ]; then
        : >'$LAB_RUN_DIR/ovpn/temp-once'
        echo 'TEMP[backoff 1]: busy' >"\$auth_failed_reason_file"
        echo "temp \$user" >>'$LAB_RUN_DIR/ovpn/auth.log'
        exit 1
    fi
    pass='$LAB_OVPN_PASS'
fi
if [ "\$user" = '$LAB_OVPN_USER' ] && [ "\$pass" = '$LAB_OVPN_PASS' ]; then
    echo "accept \$user" >>'$LAB_RUN_DIR/ovpn/auth.log'
    exit 0
fi
echo "reject \$user" >>'$LAB_RUN_DIR/ovpn/auth.log'
exit 1
EOF
    chmod 755 "$LAB_OVPN_AUTH_SCRIPT"
}

# lab_openvpn_port_free PROTO PORT: no instance of ours uses it
lab_openvpn_port_free() {
    local n
    for n in "${!LAB_OVPN_PORT[@]}"; do
        [ "${LAB_OVPN_PROTO[$n]}" = "$1" ] && [ "${LAB_OVPN_PORT[$n]}" = "$2" ] && return 1
    done
    return 0
}

lab_start_openvpn_server() {
    local name=$1
    shift
    [ -z "${LAB_OVPN_DIR[$name]:-}" ] || lab_die "openvpn server $name exists already"
    local proto=udp port='' topology=subnet ciphers=$LAB_OVPN_DEFAULT_CIPHERS cipher='' auth=''
    local comp='' ta=0 tc=0 tcv2mode='' password=0 vcc=require reneg='' keepalive='10 60'
    local exitnotify=0
    local dns=$LAB_DNS_IP d
    local cert=server clientca=lab verb=3 profile=default extra=() line env=()
    while [ $# -gt 0 ]; do
        case $1 in
        --proto) proto=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --topology) topology=$2; shift 2 ;;
        --ciphers) ciphers=$2; shift 2 ;;
        --profile)
            profile=$2
            [ "$2" = alibaba ] || lab_die "lab_start_openvpn_server: unknown profile $2"
            ciphers=AES-128-CBC; cipher=AES-128-CBC; auth=SHA1; topology=net30; comp=yes
            shift 2 ;;
        --auth) auth=$2; shift 2 ;;
        --comp-lzo) comp=$2; shift 2 ;;
        --tls-auth) ta=1; shift ;;
        --tls-crypt) tc=1; shift ;;
        --tls-crypt-v2) tc=2; shift ;;
        --tls-crypt-v2-mode) tc=2; tcv2mode=$2; shift 2 ;;
        --password) password=1; shift ;;
        --verify-client-cert) vcc=$2; shift 2 ;;
        --reneg-sec) reneg=$2; shift 2 ;;
        --keepalive) keepalive=$2; shift 2 ;;
        --dns) dns=$2; shift 2 ;;
        --exit-notify) exitnotify=1; shift ;;
        --cert) cert=$2; shift 2 ;;
        --client-ca) clientca=$2; shift 2 ;;
        --verb) verb=$2; shift 2 ;;
        --env) env+=("$2"); shift 2 ;;
        --stdin) while IFS= read -r line; do extra+=("$line"); done; shift ;;
        --) shift; extra+=("$@"); break ;;
        *) lab_die "lab_start_openvpn_server: unknown option $1" ;;
        esac
    done
    local addr=$LAB_SERVER_IP six=''
    case $proto in
    udp | tcp) ;;
    udp6 | tcp6)
        [ -n "$LAB_SERVER_IP6" ] || lab_die "lab_start_openvpn_server: $proto, but the lab has no IPv6"
        addr=$LAB_SERVER_IP6 six=6 proto=${proto%6} ;;
    *) lab_die "lab_start_openvpn_server: --proto udp|tcp|udp6|tcp6" ;;
    esac
    if [ -z "$port" ]; then
        port=1194
        while ! lab_openvpn_port_free "$proto" "$port"; do port=$((port + 1)); done
    else
        lab_openvpn_port_free "$proto" "$port" || lab_die "openvpn: $proto port $port is taken"
    fi

    mkdir -p "$LAB_RUN_DIR/ovpn"
    chmod 755 "$LAB_RUN_DIR/ovpn"
    LAB_OVPN_COUNT=$((LAB_OVPN_COUNT + 1))
    local idx=$LAB_OVPN_COUNT dir=$LAB_RUN_DIR/ovpn/$name
    mkdir -p "$dir"
    chmod 755 "$dir"
    lab_openvpn_cert "$cert"
    lab_openvpn_server_version
    local v25=0 v26=0 c all
    lab_openvpn_server_at_least 2.5 && v25=1
    lab_openvpn_server_at_least 2.6 && v26=1
    if [ "$v25" = 0 ]; then
        # 2.4 takes CHACHA20-POLY1305 for a non-AEAD cipher: leave it out
        all=$ciphers ciphers=''
        for c in ${all//:/ }; do [ "$c" = CHACHA20-POLY1305 ] || ciphers+=${ciphers:+:}$c; done
        [ -n "$ciphers" ] || lab_die "lab_start_openvpn_server: OpenVPN $LAB_OVPN_SERVER_VERSION has none of these ciphers"
    fi
    local ca=$LAB_CA_CERT
    if [ "$clientca" = other ]; then lab_pki_make_ca other; ca=$LAB_PKI_DIR/other-ca.pem; fi
    [ "$ta" = 1 ] && openvpn --genkey secret "$dir/ta.key" >/dev/null
    [ "$tc" = 1 ] && openvpn --genkey secret "$dir/tc.key" >/dev/null
    [ "$ta" = 1 ] || [ "$tc" = 1 ] && chmod 644 "$dir"/t?.key
    if [ "$tc" = 2 ]; then
        openvpn --genkey tls-crypt-v2-server "$dir/tcv2-server.key" >/dev/null &&
            openvpn --tls-crypt-v2 "$dir/tcv2-server.key" --genkey tls-crypt-v2-client "$dir/tcv2.key" >/dev/null ||
            lab_die "lab_start_openvpn_server: cannot make tls-crypt-v2 keys"
        chmod 644 "$dir"/tcv2*.key
    fi
    [ "$password" = 1 ] && lab_openvpn_auth_script

    local net=10.97.$idx.0 gw=10.97.$idx.1 dev=ovs$idx
    local conf=$dir/server.conf log=$LAB_RUN_DIR/log/openvpn-$name.log
    {
        echo "# lab openvpn server $name ($profile profile)"
        echo "local $addr"
        echo "port $port"
        [ "$proto" = udp ] && echo "proto udp$six" || echo "proto tcp$six-server"
        echo "dev $dev"
        echo "dev-type tun"
        [ "$v26" = 1 ] && echo "disable-dco"
        echo "topology $topology"
        echo "server $net 255.255.255.0"
        echo "push \"route ${LAB_INTERNAL_NET%/*} 255.255.255.0\""
        for d in $dns; do echo "push \"dhcp-option DNS $d\""; done
        echo "push \"dhcp-option DOMAIN $LAB_DOMAIN\""
        echo "keepalive $keepalive"
        echo "duplicate-cn"
        [ "$clientca" = none ] || echo "ca $ca"
        echo "cert $LAB_PKI_DIR/ovpn-$cert.pem"
        echo "key $LAB_PKI_DIR/ovpn-$cert.key"
        echo "dh none"
        if [ "$v25" = 1 ]; then
            echo "data-ciphers $ciphers"
            [ -n "$cipher" ] && echo "cipher $cipher" && echo "data-ciphers-fallback $cipher"
        else
            # 2.4 pushes the first of ncp-ciphers only to a client that says IV_NCP=2 (a 2.6
            # client says so only when AES-256-GCM and AES-128-GCM are in its data-ciphers); any
            # other gets `cipher` (BF-CBC by default): the list's first, unless given
            echo "ncp-ciphers $ciphers"
            echo "cipher ${cipher:-${ciphers%%:*}}"
        fi
        [ -n "$auth" ] && echo "auth $auth"
        if [ -n "$comp" ]; then
            echo "comp-lzo $comp"
            [ "$comp" = no ] || [ "$v25" = 0 ] || echo "allow-compression yes"
        fi
        [ "$ta" = 1 ] && echo "tls-auth $dir/ta.key 0"
        [ "$tc" = 1 ] && echo "tls-crypt $dir/tc.key"
        [ "$tc" = 2 ] && echo "tls-crypt-v2 $dir/tcv2-server.key${tcv2mode:+ $tcv2mode}"
        if [ "$password" = 1 ]; then
            echo "script-security 2"
            echo "auth-user-pass-verify $LAB_OVPN_AUTH_SCRIPT via-file"
            echo "tmp-dir $dir"
        fi
        echo "verify-client-cert $vcc"
        [ -n "$reneg" ] && echo "reneg-sec $reneg"
        [ "$exitnotify" = 1 ] && [ "$proto" = udp ] && echo "explicit-exit-notify 1"
        echo "verb $verb"
        echo "log-append $log"
        echo "status $dir/status 1"
        echo "management $dir/mgmt.sock unix"
        echo "writepid $dir/pid"
        for line in "${extra[@]}"; do echo "$line"; done
    } >"$conf"

    LAB_OVPN_PROTO[$name]=$proto
    LAB_OVPN_ADDR[$name]=$addr
    LAB_OVPN_PORT[$name]=$port
    LAB_OVPN_NET[$name]=$net
    LAB_OVPN_GW[$name]=$gw
    LAB_OVPN_DEV[$name]=$dev
    LAB_OVPN_CONF[$name]=$conf
    LAB_OVPN_LOG[$name]=$log
    LAB_OVPN_MGMT[$name]=$dir/mgmt.sock
    LAB_OVPN_STATUS[$name]=$dir/status
    LAB_OVPN_DIR[$name]=$dir
    LAB_OVPN_CIPHER[$name]=$cipher
    LAB_OVPN_CIPHERS[$name]=$ciphers
    LAB_OVPN_AUTH[$name]=$auth
    LAB_OVPN_COMP[$name]=$comp
    LAB_OVPN_TA[$name]=$ta
    LAB_OVPN_TC[$name]=$tc
    LAB_OVPN_PASSWORD[$name]=$password
    LAB_OVPN_VCC[$name]=$vcc
    LAB_OVPN_PROFILE[$name]=$profile
    LAB_OVPN_ENV[$name]=${env[*]}
    lab_openvpn_launch "$name"
}

# lab_openvpn_launch NAME: start the process on its existing config; wait for it to come up
lab_openvpn_launch() {
    local name=$1 log=${LAB_OVPN_LOG[$1]} from pid
    touch "$log"
    from=$(wc -l <"$log")
    rm -f "${LAB_OVPN_MGMT[$name]}"
    # shellcheck disable=SC2086  # NAME=VALUE words, split on purpose
    ip netns exec "$LAB_SERVER_NS" env ${LAB_OVPN_ENV[$name]:-} "$LAB_OPENVPN_SERVER_BIN" --config "${LAB_OVPN_CONF[$name]}" </dev/null \
        >>"$LAB_RUN_DIR/log/openvpn-$name.out" 2>&1 &
    pid=$!
    LAB_PIDS+=("$pid")
    echo "$pid openvpn-$name" >>"$LAB_RUN_DIR/pids"
    LAB_OVPN_PID[$name]=$pid
    if ! lab_openvpn_wait_log "$log" "$from" 'Initialization Sequence Completed' 15 "$pid"; then
        tail -n 20 "$log" "$LAB_RUN_DIR/log/openvpn-$name.out" >&2
        lab_die "openvpn server $name did not start"
    fi
    lab_wait_listen "$LAB_SERVER_NS" "${LAB_OVPN_PROTO[$name]}" "${LAB_OVPN_ADDR[$name]}" \
        "${LAB_OVPN_PORT[$name]}" 5 || lab_die "openvpn server $name does not listen"
}

# lab_openvpn_wait_log FILE FROM_LINE REGEX TIMEOUT_S [PID]: a line after FROM_LINE matches
lab_openvpn_wait_log() {
    local file=$1 from=$2 re=$3 timeout=$4 pid=${5:-} i
    for ((i = 0; i < timeout * 20; i++)); do
        tail -n "+$((from + 1))" "$file" 2>/dev/null | grep -qE -- "$re" && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            tail -n "+$((from + 1))" "$file" 2>/dev/null | grep -qE -- "$re"
            return
        fi
        sleep 0.05
    done
    return 1
}

# lab_stop_openvpn_server NAME [SIGNAL]: default TERM; waits for the process to end
lab_stop_openvpn_server() {
    local name=$1 sig=${2:-TERM} pid=${LAB_OVPN_PID[$1]:-} i
    [ -n "$pid" ] || return 0
    {
        kill -s "$sig" "$pid"
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" || break
            sleep 0.05
        done
        kill -KILL "$pid"
        wait "$pid"
    } 2>/dev/null
    LAB_OVPN_PID[$name]=''
}

# lab_restart_openvpn_server NAME [--sighup]: a new process on the same config, port and pool
# (clients lose their session: over TCP at once, over UDP at their ping-restart unless the server
# has --exit-notify); --sighup restarts inside the same process instead (openvpn's SIGHUP).
lab_restart_openvpn_server() {
    local name=$1 from
    if [ "${2:-}" = --sighup ]; then
        from=$(wc -l <"${LAB_OVPN_LOG[$name]}")
        kill -HUP "${LAB_OVPN_PID[$name]}" || return 1
        lab_openvpn_wait_log "${LAB_OVPN_LOG[$name]}" "$from" 'Initialization Sequence Completed' 15 \
            "${LAB_OVPN_PID[$name]}" || lab_die "openvpn server $name did not come back after SIGHUP"
        return 0
    fi
    lab_stop_openvpn_server "$name"
    lab_openvpn_launch "$name"
}

# lab_openvpn_mgmt NAME COMMAND: one command on the instance's management socket; prints the
# answer (up to END, SUCCESS: or ERROR:; real-time '>' lines dropped); exit 1 on ERROR:
lab_openvpn_mgmt() {
    local sock=${LAB_OVPN_MGMT[$1]:-$1}
    shift
    "$LAB_PY" - "$sock" "$*" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
f = s.makefile("rb")
f.readline()                       # >INFO:OpenVPN Management Interface ...
s.sendall(sys.argv[2].encode() + b"\n")
out = []
while True:
    line = f.readline().decode(errors="replace").rstrip("\r\n")
    if not line:
        break
    if line.startswith(">"):
        continue
    out.append(line)
    if line == "END" or line.startswith(("SUCCESS:", "ERROR:")):
        break
s.sendall(b"quit\n")
print("\n".join(out))
sys.exit(1 if out and out[-1].startswith("ERROR:") else 0)
EOF
}

# lab_openvpn_clients NAME: how many clients the server has (management "status")
lab_openvpn_clients() {
    lab_openvpn_mgmt "$1" status 2 | grep -c '^CLIENT_LIST,'
}

# ---------------------------------------------------------------- client configs

# lab_openvpn_client_config NAME [options] [-- "extra line"...]: a directory like the one the
# server's users download, shaped after server NAME's settings: config.ovpn + ca.crt + client.crt
# + client.key (+ ta.key / tc.key) (+ auth.txt: user, password, for --auth-user-pass FILE). What
# holds a secret (client.key, ta.key, tc.key, auth.txt, and config.ovpn with --inline) belongs to
# nobody, mode 600, since vpn2socks (run as nobody) refuses secrets other users can read; the rest is
# mode 644. --inline puts ca/cert/key/tls-auth/tls-crypt in the file instead.
# Sets LAB_OVPN_CLIENT_DIR. For the alibaba profile the file is exactly the Alibaba Cloud shape.
lab_openvpn_client_config() {
    local name=$1
    shift
    [ -n "${LAB_OVPN_DIR[$name]:-}" ] || lab_die "lab_openvpn_client_config: no server $name"
    local dir='' inline=0 cert=client ca=$LAB_CA_CERT aup=auto pass='' tlskey='' extra=() line rct=1
    while [ $# -gt 0 ]; do
        case $1 in
        --dir) dir=$2; shift 2 ;;
        --inline) inline=1; shift ;;
        --cert) cert=$2; shift 2 ;;
        --ca)
            [ "$2" = other ] && { lab_pki_make_ca other; ca=$LAB_PKI_DIR/other-ca.pem; }
            [ "$2" = none ] && ca=''
            shift 2 ;;
        --no-remote-cert-tls) rct=0; shift ;;
        --password) pass=$2; shift 2 ;;
        --no-auth-user-pass) aup=0; shift ;;
        --tls-key) tlskey=$2; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        *) lab_die "lab_openvpn_client_config: unknown option $1" ;;
        esac
    done
    if [ -z "$dir" ]; then
        dir=${LAB_OVPN_DIR[$name]}/client
        [ "$inline" = 1 ] && dir+=-inline
    fi
    [ "$aup" = auto ] && aup=${LAB_OVPN_PASSWORD[$name]}
    [ "$aup" = 1 ] && lab_openvpn_auth_script
    [ -n "$pass" ] || pass=${LAB_OVPN_PASS:-}
    [ "${LAB_OVPN_VCC[$name]}" = none ] && [ "$cert" = client ] && cert=none
    [ "$cert" = none ] || lab_openvpn_cert "$cert"
    rm -rf "$dir"
    mkdir -p "$dir"

    local proto=${LAB_OVPN_PROTO[$name]} c cipher='' ta=${LAB_OVPN_TA[$name]}
    local tc=${LAB_OVPN_TC[$name]} takey=${LAB_OVPN_DIR[$name]}/ta.key tckey=${LAB_OVPN_DIR[$name]}/tc.key
    [ "$tc" = 2 ] && tckey=${LAB_OVPN_DIR[$name]}/tcv2.key
    if [ "$tlskey" = none ]; then ta=0; tc=0
    elif [ -n "$tlskey" ]; then takey=$tlskey; tckey=$tlskey; fi
    # a cipher line only when a 2.6 client's default data-ciphers share nothing with the server's
    # (Alibaba style: `cipher AES-128-CBC`); a modern server needs none
    cipher=${LAB_OVPN_CIPHER[$name]}
    if [ -z "$cipher" ]; then
        cipher=${LAB_OVPN_CIPHERS[$name]%%:*}
        for c in ${LAB_OVPN_CIPHERS[$name]//:/ }; do
            case ":$LAB_OVPN_DEFAULT_CIPHERS:" in *":$c:"*) cipher='' ;; esac
        done
    fi
    pem() { echo "<$1>"; cat "$2"; echo "</$1>"; }
    {
        echo "client"
        echo "dev tun"
        # udp/tcp even for an IPv6 server: since OpenVPN 2.4 the address picks the family, and
        # udp6/tcp6 would only forbid IPv4, which a literal address needs no help with
        echo "proto $proto"
        echo "remote ${LAB_OVPN_ADDR[$name]} ${LAB_OVPN_PORT[$name]}"
        echo "resolv-retry infinite"
        echo "nobind"
        echo "persist-key"
        echo "persist-tun"
        if [ "$inline" = 1 ]; then
            [ -z "$ca" ] || pem ca "$ca"
            [ "$cert" = none ] || { pem cert "$LAB_PKI_DIR/ovpn-$cert.pem"; pem key "$LAB_PKI_DIR/ovpn-$cert.key"; }
        else
            [ -z "$ca" ] || echo "ca ca.crt"
            [ "$cert" = none ] || { echo "cert client.crt"; echo "key client.key"; }
        fi
        [ "$rct" = 1 ] && echo "remote-cert-tls server"
        if [ "$ta" = 1 ]; then
            if [ "$inline" = 1 ]; then echo "key-direction 1"; pem tls-auth "$takey"
            else echo "tls-auth ta.key 1"; fi
        fi
        if [ "$tc" = 1 ]; then
            if [ "$inline" = 1 ]; then pem tls-crypt "$tckey"; else echo "tls-crypt tc.key"; fi
        fi
        if [ "$tc" = 2 ]; then
            if [ "$inline" = 1 ]; then pem tls-crypt-v2 "$tckey"; else echo "tls-crypt-v2 tcv2.key"; fi
        fi
        [ -n "$cipher" ] && echo "cipher $cipher"
        [ "${LAB_OVPN_PROFILE[$name]}" = default ] && [ -n "${LAB_OVPN_AUTH[$name]}" ] &&
            echo "auth ${LAB_OVPN_AUTH[$name]}"
        case ${LAB_OVPN_COMP[$name]} in
        '') ;;
        yes) echo "comp-lzo" ;;
        *) echo "comp-lzo ${LAB_OVPN_COMP[$name]}" ;;
        esac
        [ "$aup" = 1 ] && echo "auth-user-pass"
        echo "verb 3"
        for line in "${extra[@]}"; do echo "$line"; done
    } >"$dir/config.ovpn"
    unset -f pem
    if [ "$inline" = 0 ]; then
        [ -z "$ca" ] || cp "$ca" "$dir/ca.crt"
        if [ "$cert" != none ]; then
            cp "$LAB_PKI_DIR/ovpn-$cert.pem" "$dir/client.crt"
            cp "$LAB_PKI_DIR/ovpn-$cert.key" "$dir/client.key"
        fi
        [ "$ta" = 1 ] && cp "$takey" "$dir/ta.key"
        [ "$tc" = 1 ] && cp "$tckey" "$dir/tc.key"
        [ "$tc" = 2 ] && cp "$tckey" "$dir/tcv2.key"
    fi
    [ "$aup" = 1 ] && printf '%s\n%s\n' "$LAB_OVPN_USER" "$pass" >"$dir/auth.txt"
    chmod 755 "$dir"
    chmod 644 "$dir"/*
    local f secrets=(client.key ta.key tc.key tcv2.key auth.txt)
    [ "$inline" = 1 ] && secrets+=(config.ovpn)
    for f in "${secrets[@]}"; do
        [ -f "$dir/$f" ] || continue
        chown nobody:nogroup "$dir/$f"
        chmod 600 "$dir/$f"
    done
    LAB_OVPN_CLIENT_DIR=$dir
}

# ---------------------------------------------------------------- the stock client

# lab_start_stock_openvpn_client CONFIGDIR [openvpn args]: Debian's openvpn client as root in the
# client namespace with a kernel TUN (device tun0, routes pushed by the server), from
# CONFIGDIR/config.ovpn. Adds, for this client only: --data-ciphers CIPHER when the config has
# `cipher` and no data-ciphers (2.6 no longer offers `cipher`), --auth-user-pass CONFIGDIR/auth.txt
# when it has a bare auth-user-pass, --disable-dco, a status file and a management socket. With
# comp-lzo and no allow-compression a 2.6 client decompresses but never compresses (asym), like ours.
# Waits for "Initialization Sequence Completed"; 1 as soon as the log shows a failure
# ($LAB_STOCK_FAILED: AUTH_FAILED, VERIFY ERROR, TLS Error, a SIGUSR1 restart, a fatal error), when
# it dies, or after $LAB_STOCK_TIMEOUT s (30; 0: return at once without waiting). NB: a client
# whose certificate the server rejects sees nothing until its hand-window (60 s) runs out: look at
# the server's log for that.
# Sets LAB_STOCK_PID, LAB_STOCK_LOG ($LAB_RUN_DIR/log/openvpn-client.log, new on each start),
# LAB_STOCK_STATUS, LAB_STOCK_MGMT (use lab_openvpn_mgmt "$LAB_STOCK_MGMT" ...).
lab_start_stock_openvpn_client() {
    local cfgdir=$1 cfg=$1/config.ovpn args=() c
    shift
    local sdir=$LAB_RUN_DIR/ovpn/stock-client
    mkdir -p "$sdir"
    LAB_STOCK_LOG=$LAB_RUN_DIR/log/openvpn-client.log
    LAB_STOCK_STATUS=$sdir/status
    LAB_STOCK_MGMT=$sdir/mgmt.sock
    rm -f "$LAB_STOCK_MGMT" "$LAB_STOCK_STATUS"
    : >"$LAB_STOCK_LOG"
    c=$(sed -n 's/^cipher[[:space:]]\+\([^[:space:]]\+\).*/\1/p' "$cfg" | tail -n 1)
    if [ -n "$c" ] && ! grep -q '^data-ciphers[[:space:]]' "$cfg"; then
        args+=(--data-ciphers "$c")
    fi
    if grep -qx 'auth-user-pass[[:space:]]*' "$cfg" && [ -f "$cfgdir/auth.txt" ]; then
        args+=(--auth-user-pass "$cfgdir/auth.txt")
    fi
    ip netns exec "$LAB_CLIENT_NS" openvpn --cd "$cfgdir" --config "$cfg" --disable-dco \
        --status "$LAB_STOCK_STATUS" 1 --management "$LAB_STOCK_MGMT" unix "${args[@]}" "$@" \
        </dev/null >>"$LAB_STOCK_LOG" 2>&1 &
    LAB_STOCK_PID=$!
    LAB_PIDS+=("$LAB_STOCK_PID")
    echo "$LAB_STOCK_PID openvpn-client" >>"$LAB_RUN_DIR/pids"
    export LAB_STOCK_PID LAB_STOCK_LOG LAB_STOCK_STATUS LAB_STOCK_MGMT
    local i timeout=${LAB_STOCK_TIMEOUT:-30}
    [ "$timeout" = 0 ] && return 0
    for ((i = 0; i < timeout * 20; i++)); do
        grep -q 'Initialization Sequence Completed' "$LAB_STOCK_LOG" && return 0
        grep -qE "$LAB_STOCK_FAILED" "$LAB_STOCK_LOG" && return 1
        kill -0 "$LAB_STOCK_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# lab_stop_stock_openvpn_client [SIGNAL]: default TERM; waits until it has exited
lab_stop_stock_openvpn_client() {
    local sig=${1:-TERM} i
    [ -n "${LAB_STOCK_PID:-}" ] || return 0
    {
        kill -s "$sig" "$LAB_STOCK_PID"
        for ((i = 0; i < 100; i++)); do
            kill -0 "$LAB_STOCK_PID" || break
            sleep 0.05
        done
        kill -KILL "$LAB_STOCK_PID"
        wait "$LAB_STOCK_PID"
    } 2>/dev/null
    LAB_STOCK_PID=''
}
