#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# The unprivileged container, proven without a container runtime (this machine's podman cannot
# start containers). A root file system is built from the build output with what
# examples/container/Containerfile's image needs to run vpn2socks, and no more: the binary, the
# shared libraries ldd names and the dynamic loader, /etc/passwd and /etc/group with nobody, the
# image's --conf file (examples/container/vpn2socks.conf, as it is) and the .ovpn folder it names;
# no shell, no /dev/net/tun. vpn2socks runs in it under bubblewrap as the container would run:
# started by nobody (not root) in the lab's client namespace, `bwrap --unshare-all --share-net`
# (its own user, pid, mount, ipc, uts and cgroup namespaces; the client namespace's network, as
# a pod's containers share theirs), the root read-only, uid and gid 65534, every capability
# dropped, a /dev without TUN.
# Against Debian's openvpn 2.6 server, from outside the sandbox:
#   - curl in the client namespace fetches the lab's 100 MiB file byte-exact (sha256) through the
#     sandboxed vpn2socks's SOCKS5 port;
#   - the process, seen through /proc: uid and gid 65534 (and its user namespace maps only
#     65534, to the host's nobody), CapEff, CapPrm and CapBnd 0,
#     NoNewPrivs 1, another user and pid namespace than the host's, the client's network
#     namespace, its root mounted read-only, /dev/net/tun absent (present on the host);
#   - SIGTERM: vpn2socks exits 0 and bwrap passes that on.
# Needs root to set up the lab (skips with exit 77 otherwise) and bubblewrap
# (scripts/install-deps.sh). The binary: $VPN2SOCKS_BIN, else build/vpn2socks.
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
command -v bwrap >/dev/null 2>&1 || { echo "lab: missing bwrap (bubblewrap); run scripts/install-deps.sh" >&2; exit 1; }
# bwrap (not setuid in Debian) needs user namespaces for an unprivileged caller: say so plainly
# when this kernel refuses them, rather than fail later with a tunnel that never came up
if ! out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups bwrap --unshare-all --ro-bind / / true 2>&1); then
    echo "lab: bwrap cannot make its namespaces as nobody here ($out); see user.max_user_namespaces" >&2
    exit 1
fi
LAB_BIG_MB=100 lab_setup --no-ocserv
v2s_prepare

# ---- the image's root file system
ROOT=$LAB_RUN_DIR/rootfs
mkdir -p "$ROOT/usr/bin" "$ROOT/etc/vpn2socks" "$ROOT/dev" "$ROOT/proc" "$ROOT/tmp"
install -m 0755 "$BIN" "$ROOT/usr/bin/vpn2socks"
# every library the binary loads, and the loader, at the paths the loader looks for them
ldd "$BIN" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' >"$LAB_RUN_DIR/libs"
[ -s "$LAB_RUN_DIR/libs" ] || lab_die "ldd $BIN listed no library"
while read -r lib; do
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
done <"$LAB_RUN_DIR/libs"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOT/etc/group"
lab_start_openvpn_server sbx --proto udp
# the image's --conf file as it is (SOCKS5 on 0.0.0.0:1080), the .ovpn folder where it says
lab_openvpn_client_config sbx --dir "$ROOT/etc/vpn2socks/vpn"
install -m 0644 "$V2S_REPO/examples/container/vpn2socks.conf" "$ROOT/etc/vpn2socks/vpn2socks.conf"
chmod -R a+rX,go-w "$ROOT/usr" "$ROOT/lib"* "$ROOT/etc/passwd" "$ROOT/etc/group" 2>/dev/null
lab_log "root file system: $(find "$ROOT" -type f | wc -l) files, $(du -sh "$ROOT" | cut -f1)"

# ---- vpn2socks in it, started by nobody
S=$LAB_RUN_DIR/out/sbx
mkdir -m 1777 "$S"
v2s_no_direct_route
lab_bg v2s-sbx ip netns exec "$LAB_CLIENT_NS" setpriv --reuid=nobody --regid=nogroup --clear-groups \
    bwrap --unshare-all --share-net --die-with-parent --new-session \
    --ro-bind "$ROOT" / --proc /proc --dev /dev \
    --uid 65534 --gid 65534 --cap-drop ALL \
    /usr/bin/vpn2socks --conf /etc/vpn2socks/vpn2socks.conf     # the image's ENTRYPOINT and CMD
BWRAP_PID=$LAB_LAST_PID
LOG=$LAB_RUN_DIR/log/v2s-sbx.log
if ! lab_wait_file_match "$LOG" 'tunnel up: address' 30 "$BWRAP_PID"; then
    tail -n 20 "$LOG" >&2
    lab_die "the sandboxed vpn2socks did not bring the tunnel up"
fi
lab_wait_listen "$LAB_CLIENT_NS" tcp 0.0.0.0 "$SOCKS_PORT" 10 || lab_die "no SOCKS listener on 0.0.0.0:$SOCKS_PORT"
V2S_PID=''
for p in $(ip netns pids "$LAB_CLIENT_NS"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = vpn2socks ] && V2S_PID=$p
done
[ -n "$V2S_PID" ] || lab_die "no vpn2socks process in $LAB_CLIENT_NS"

# ---- what the process is
status_field() { awk -v k="$1:" '$1 == k {$1 = ""; sub(/^ /, ""); print}' "/proc/$V2S_PID/status"; }
identity() {
    local uid gid
    uid=$(status_field Uid) gid=$(status_field Gid)
    echo "Uid: $uid  Gid: $gid  Groups: $(status_field Groups)"
    # inside its user namespace too: the only uid and gid there are 65534, the host's nobody
    echo "uid_map: $(xargs <"/proc/$V2S_PID/uid_map")  gid_map: $(xargs <"/proc/$V2S_PID/gid_map")"
    [ "$uid" = "65534 65534 65534 65534" ] && [ "$gid" = "65534 65534 65534 65534" ] &&
        [ "$(xargs <"/proc/$V2S_PID/uid_map")" = "65534 65534 1" ] &&
        [ "$(xargs <"/proc/$V2S_PID/gid_map")" = "65534 65534 1" ]
}
capabilities() {
    local f bad=0
    for f in CapInh CapPrm CapEff CapBnd CapAmb; do
        echo "$f: $(status_field "$f")"
        [ "$(status_field "$f")" = 0000000000000000 ] || bad=1
    done
    echo "NoNewPrivs: $(status_field NoNewPrivs)"
    [ "$(status_field NoNewPrivs)" = 1 ] && [ "$bad" = 0 ]
}
namespaces() {
    local ns host mine client
    for ns in user pid mnt; do
        host=$(readlink "/proc/self/ns/$ns") mine=$(readlink "/proc/$V2S_PID/ns/$ns")
        echo "$ns: host $host, sandbox $mine"
        [ "$host" != "$mine" ] || return 1
    done
    client=$(lab_in_client readlink /proc/self/ns/net) mine=$(readlink "/proc/$V2S_PID/ns/net")
    echo "net: client namespace $client, sandbox $mine"
    [ "$client" = "$mine" ]
}
# its root (mountinfo's mount point "/", as the process sees it) is mounted read-only
read_only_root() {
    local opts
    opts=$(awk '$5 == "/" {print $6}' "/proc/$V2S_PID/mountinfo" | tail -n 1)
    echo "/ mounted $opts"
    [[ ,$opts, == *,ro,* ]]
}
no_tun() {
    [ -c /dev/net/tun ] || { echo "the host has no /dev/net/tun: nothing to compare"; return 1; }
    echo "its /dev: $(cd "/proc/$V2S_PID/root/dev" && echo *)"
    [ ! -e "/proc/$V2S_PID/root/dev/net/tun" ] && [ ! -e "/proc/$V2S_PID/root/dev/net" ]
}
fetch_big() {
    v2s_fetch_check "$PROXY" "$LAB_WEB_URL/$LAB_BIG_FILE" "$S/big" 60 "$LAB_BIG_SHA256" "$LAB_BIG_SIZE"
}

lab_check "uid and gid 65534" identity
lab_check "no capabilities (CapInh/Prm/Eff/Bnd/Amb 0), NoNewPrivs 1" capabilities
lab_check "own user, pid and mount namespaces; the client's network namespace" namespaces
lab_check "its root file system is read-only" read_only_root
lab_check "/dev/net/tun absent in the sandbox (present on the host)" no_tun
lab_check "curl outside the sandbox fetches $((LAB_BIG_SIZE >> 20)) MiB byte-exact through its SOCKS port" fetch_big
# The image's HEALTHCHECK command, taken from the Containerfile, against the sandboxed vpn2socks
# (the image's conf has status = 0.0.0.0:9100): bash's /dev/tcp asks /readyz, healthy on 200.
HEALTH_CMD=$("$LAB_PY" - "$V2S_REPO/examples/container/Containerfile" <<'PY'
import json, sys
line = [l for l in open(sys.argv[1]) if l.lstrip().startswith('CMD ["bash"')][0]
print(json.loads(line.split("CMD ", 1)[1])[2])
PY
)
healthcheck() { lab_in_client bash -c "$HEALTH_CMD"; }
lab_check "the image's HEALTHCHECK (/readyz on the conf's status port): healthy" healthcheck
lab_check "vpn2socks is still running" v2s_alive
kill -TERM "$V2S_PID"
for ((i = 0; i < 200; i++)); do kill -0 "$BWRAP_PID" 2>/dev/null || break; sleep 0.05; done
wait "$BWRAP_PID" 2>/dev/null
status=$?
lab_check_eq "SIGTERM: vpn2socks exits 0 (bwrap's status)" 0 "$status"

lab_finish
