# shellcheck shell=bash
# shellcheck disable=SC2034  # variables here are for the tests that source this file
# vpn2socks in the lab: sourced after lib.sh by the tests that run the binary.
#
#   v2s_prepare                  find the binary ($VPN2SOCKS_BIN, else build/vpn2socks), make sure
#                                nobody can run it, write the script wrapper openconnect starts
#   V2S_ARGS="--others reject" v2s_start_session NAME [openconnect args]
#                                openconnect (as nobody) -> vpn2socks (as nobody) with a SOCKS5
#                                listener on $SOCKS_ADDR:$SOCKS_PORT; its files in $S
#   v2s_alive / v2s_wait_exit DIR TIMEOUT_S / v2s_check_file / v2s_fetch_check / sc CASE ...
#   v2s_no_direct_route          dies if the client ns could reach the lab's services without the
#                                tunnel (the start functions call it)

V2S_REPO=$(cd "$LAB_LIB_DIR/../.." && pwd)
SOCKS_ADDR=127.0.0.1
SOCKS_PORT=1080
PROXY=socks5://$SOCKS_ADDR:$SOCKS_PORT
PROXY_H=socks5h://$SOCKS_ADDR:$SOCKS_PORT
SC=$LAB_LIB_DIR/socks_client.py

v2s_prepare() {
    BIN=${VPN2SOCKS_BIN:-$V2S_REPO/build/vpn2socks}
    if [ ! -x "$BIN" ]; then
        echo "lab: no vpn2socks binary at $BIN; build it, or set VPN2SOCKS_BIN" >&2
        exit 1
    fi
    BIN=$(readlink -f "$BIN")
    # nobody runs the binary: copy it where nobody can reach it when the build dir is closed to it
    if ! setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$BIN"; then
        cp "$BIN" "$LAB_RUN_DIR/vpn2socks"
        chmod 755 "$LAB_RUN_DIR/vpn2socks"
        BIN=$LAB_RUN_DIR/vpn2socks
        lab_log "nobody cannot execute the build's binary; running a copy, $BIN"
    fi

    # openconnect runs its script with /bin/sh -c; this wrapper records vpn2socks's pid (the inner sh
    # execs it), its log, and its exit status. openconnect SIGHUPs the script's process group: the
    # wrapper traps HUP so that it lives on to write the status.
    WRAP=$LAB_RUN_DIR/v2s-wrap.sh
    cat >"$WRAP" <<EOF
#!/bin/sh
# usage: v2s-wrap.sh OUTDIR [vpn2socks options]; writes OUTDIR/pid, v2s.log, exit
out=\$1
shift
trap : HUP
sh -c 'out=\$1; shift; echo \$\$ >"\$out/pid"; exec "\$@" 2>>"\$out/v2s.log"' sh "\$out" "$BIN" "\$@"
echo \$? >"\$out/exit.tmp" && mv "\$out/exit.tmp" "\$out/exit"
EOF
    chmod 755 "$WRAP"
}

# v2s_no_direct_route: dies if the client namespace has a route to $LAB_INTERNAL_IP. The lab's
# services must be reachable only through vpn2socks's tunnel: with a route (a kernel TUN left up, a
# test's own route) a fetch that went direct would pass as if it had crossed the tunnel.
v2s_no_direct_route() {
    local r
    r=$(lab_in_client ip route get "$LAB_INTERNAL_IP" 2>/dev/null) || return 0
    lab_die "the client namespace has a route to $LAB_INTERNAL_IP (${r%%$'\n'*}):" \
        "the lab's services are reachable without the tunnel"
}

# v2s_start_session NAME [openconnect args]: openconnect + vpn2socks -D $SOCKS_ADDR:$SOCKS_PORT -vv
# plus $V2S_ARGS; out dir in $S, pid in $V2S_PID; 1 on failure
v2s_start_session() {
    S=$LAB_RUN_DIR/out/$1
    shift
    mkdir -m 1777 "$S"
    v2s_no_direct_route
    : >"$LAB_RUN_DIR/log/openconnect.log"
    lab_start_openconnect "$WRAP $S -D $SOCKS_ADDR:$SOCKS_PORT -vv ${V2S_ARGS:-}" "$@" || return 1
    if ! lab_wait_listen "$LAB_CLIENT_NS" tcp "$SOCKS_ADDR" "$SOCKS_PORT" 10; then
        echo "vpn2socks log:" >&2
        tail -n 20 "$S/v2s.log" >&2
        return 1
    fi
    lab_wait_file_match "$S/pid" '^[0-9]+$' 5 || return 1
    V2S_PID=$(cat "$S/pid")
}

v2s_alive() {
    local st
    st=$(sed -n 's/^State:\t\(.\).*/\1/p' "/proc/$V2S_PID/status" 2>/dev/null)
    if [ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ]; then
        echo "vpn2socks (pid $V2S_PID) is gone"
        return 1
    fi
}

# v2s_check_file FILE SHA256 [SIZE]
v2s_check_file() {
    local sha size
    [ -f "$1" ] || { echo "$1: missing"; return 1; }
    size=$(stat -c %s "$1")
    sha=$(sha256sum <"$1" | cut -d' ' -f1)
    if [ "$sha" != "$2" ]; then
        echo "$1: sha256 $sha, expected $2 (size $size)"
        return 1
    fi
    if [ -n "${3:-}" ] && [ "$size" != "$3" ]; then
        echo "$1: size $size, expected $3"
        return 1
    fi
}

# v2s_fetch_check PROXY_URL URL OUTFILE MAX_S SHA256 [SIZE]: one download through the proxy, checked
v2s_fetch_check() {
    local proxy=$1 url=$2 out=$3 max=$4 sha=$5 size=${6:-}
    lab_in_client curl -sS -f --connect-timeout 20 -m "$max" -x "$proxy" -o "$out" "$url" || return 1
    v2s_check_file "$out" "$sha" "$size" && rm -f "$out"
}

# v2s_wait_exit DIR TIMEOUT_S: wait for the wrapper's exit file; prints the status
v2s_wait_exit() {
    lab_wait_file_match "$1/exit" '^[0-9]+$' "$2" || { echo "no exit status after ${2}s"; return 1; }
    cat "$1/exit"
}

# sc CASE ARGS...: socks_client.py against the proxy, from the client namespace
sc() { lab_in_client timeout 60 "$LAB_PY" "$SC" "$SOCKS_ADDR" "$SOCKS_PORT" "$@"; }

# v2s_start_ovpn NAME CONFIGDIR [vpn2socks args]: vpn2socks --config CONFIGDIR/config.ovpn (with
# --auth-user-pass CONFIGDIR/auth.txt when there is one) as nobody in the client namespace, with a
# SOCKS5 listener on $SOCKS_ADDR:$SOCKS_PORT; out dir in $S (v2s.log, pid, exit), pid in $V2S_PID.
# Returns once the tunnel is up, 1 if it is not within 30 s.
v2s_start_ovpn() {
    local name=$1 dir=$2 extra=()
    shift 2
    S=$LAB_RUN_DIR/out/$name
    mkdir -m 1777 "$S"
    v2s_no_direct_route
    [ -f "$dir/auth.txt" ] && extra=(--auth-user-pass "$dir/auth.txt")
    lab_bg "v2s-$name" ip netns exec "$LAB_CLIENT_NS" setpriv --reuid=nobody --regid=nogroup --clear-groups \
        "$WRAP" "$S" --config "$dir/config.ovpn" "${extra[@]}" -D "$SOCKS_ADDR:$SOCKS_PORT" -vv "$@"
    lab_wait_file_match "$S/pid" '^[0-9]+$' 5 || return 1
    V2S_PID=$(cat "$S/pid")
    if ! lab_wait_file_match "$S/v2s.log" 'tunnel up: address' 30 "$V2S_PID"; then
        echo "vpn2socks log:" >&2
        tail -n 20 "$S/v2s.log" >&2
        # Do not leave it holding the SOCKS port for the next case.
        kill -KILL "$V2S_PID" 2>/dev/null
        return 1
    fi
}

# v2s_stop: SIGTERM to vpn2socks; waits for its exit status (printed).
v2s_stop() {
    kill -TERM "$V2S_PID" 2>/dev/null
    v2s_wait_exit "$S" 10
}

# v2s_run_ovpn_fail NAME CONFIGDIR [vpn2socks args]: runs vpn2socks --config as nobody expecting it
# to give up by itself within 30 s; sets FAIL_STATUS and FAIL_LOG (its stderr).
v2s_run_ovpn_fail() {
    local name=$1 dir=$2 extra=()
    shift 2
    FAIL_LOG=$LAB_RUN_DIR/out/$name.log
    [ -f "$dir/auth.txt" ] && extra=(--auth-user-pass "$dir/auth.txt")
    ip netns exec "$LAB_CLIENT_NS" setpriv --reuid=nobody --regid=nogroup --clear-groups \
        timeout 30 "$BIN" --config "$dir/config.ovpn" "${extra[@]}" -D "$SOCKS_ADDR:$SOCKS_PORT" "$@" \
        >"$FAIL_LOG" 2>&1 && FAIL_STATUS=0 || FAIL_STATUS=$?
}
