#!/bin/bash
# The Debian package and the systemd unit, as a user gets them: no lab, no network.
#   deb_test.sh BUILD_DIR SOURCE_DIR     (ctest: pkg.deb, label pkg)
# 1. `cpack -G DEB` on the build makes one vpn2socks_VERSION_ARCH.deb (into a temporary folder,
#    so the build tree gets no package files);
# 2. `dpkg-deb -I`: package vpn2socks, Depends found by dpkg-shlibdeps naming the libraries the
#    binary links (libc6 libuv1 libssl3 liblzo2-2 liblz4-1 libinih1 libhttp-parser2.9);
# 3. `dpkg-deb -c`: exactly the binary, the man page, README.md, the examples folder, the unit
#    and the sysusers.d file; no tests, no headers, no lwIP;
# 4. `dpkg --root=ROOT --unpack` into an empty root with a fresh dpkg database: dpkg accepts the
#    package and registers it there (--force-depends: that root has no libraries; --unpack: the
#    postinst would run chrooted into a root without a shell). Its binary, run with the host's
#    libraries (the ones Depends names): --version, --help, a bad option (status 1), and a SOCKS5
#    proxy serving curl (a direct route to a local web server, the tunnel a socketpair);
# 5. `dpkg -i` for real into a throwaway overlay of this machine's root (a tmpfs upper layer, a
#    private mount namespace, chroot): Depends met by Debian's libraries, the postinst run (the
#    vpn2socks group, /etc/vpn2socks), the binary on PATH, `man -w`, `systemd-analyze verify`
#    on the installed unit as vpn2socks@test.service (no output, exit 0), the files laid out as
#    examples/systemd/README.md says read by a uid with the vpn2socks group (the unit's dynamic
#    user) and refused without it, `dpkg --purge`.
# Needs root (dpkg --root, the mount namespace); skips with 77 otherwise. About 3 s.
set -u
build=$(cd "${1:?usage: deb_test.sh BUILD_DIR SOURCE_DIR}" && pwd)
src=$(cd "${2:?usage: deb_test.sh BUILD_DIR SOURCE_DIR}" && pwd)

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: needs root (dpkg --root, a mount namespace for dpkg -i into an overlay)"
    exit 77
fi
for t in cpack file dpkg-deb dpkg-shlibdeps dpkg systemd-analyze unshare curl python3 openssl; do
    command -v "$t" >/dev/null 2>&1 || { echo "deb_test: missing $t; run scripts/install-deps.sh" >&2; exit 1; }
done

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() {
    local desc=$1 out rc
    shift
    out=$("$@" 2>&1) && rc=0 || rc=$?
    if [ "$rc" -eq 0 ]; then pass "$desc"; else fail "$desc (exit $rc)"; printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /'; fi
    return "$rc"
}

tmp=$(mktemp -d /tmp/vpn2socks-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# ---- 1. the package
if ! cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1; then
    cat "$tmp/cpack.log"
    echo "FAIL: cpack -G DEB"
    exit 1
fi
version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$build/CPackConfig.cmake")
deb=$tmp/out/vpn2socks_${version}_$(dpkg --print-architecture).deb
check "cpack -G DEB made $(basename "$deb")" test -f "$deb" || exit 1

# ---- 2. control: name and Depends
check_control() {
    local pkg deps want missing=()
    pkg=$(dpkg-deb -f "$deb" Package)
    [ "$pkg" = vpn2socks ] || { echo "Package: '$pkg'"; return 1; }
    deps=$(dpkg-deb -f "$deb" Depends)
    echo "Depends: $deps"
    for want in libc6 libuv1 libssl3 liblzo2-2 liblz4-1 libinih1 libhttp-parser2.9; do
        # a package name is followed by a version, a comma or the end
        grep -qE "(^|, )$want( \(|,|$)" <<<"$deps" || missing+=("$want")
    done
    [ ${#missing[@]} -eq 0 ] || { echo "missing from Depends: ${missing[*]}"; return 1; }
    dpkg-deb -I "$deb" postinst >"$tmp/postinst" && sh -n "$tmp/postinst"
}
check "dpkg-deb -I: Package vpn2socks, Depends on libc6 libuv1 libssl3 liblzo2-2 liblz4-1 libinih1 libhttp-parser2.9, a postinst sh accepts" check_control
dpkg-deb -f "$deb" Depends

# ---- 3. the files
check_files() {
    {
        echo ./usr/bin/vpn2socks
        echo ./usr/share/man/man1/vpn2socks.1.gz
        echo ./usr/lib/systemd/system/vpn2socks@.service
        echo ./usr/lib/sysusers.d/vpn2socks.conf
        echo ./usr/share/doc/vpn2socks/README.md
        (cd "$src/examples" && find . -type f) | sed 's|^\./|./usr/share/doc/vpn2socks/examples/|'
    } | sort >"$tmp/want"
    dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sort >"$tmp/got"
    diff -u "$tmp/want" "$tmp/got" || return 1
    # the binary is executable by everyone, the rest readable by everyone and root's
    dpkg-deb -c "$deb" | awk '$1 ~ /^d/ {next}
        $2 != "root/root" {print "owner:", $0; bad=1}
        $6 == "./usr/bin/vpn2socks" && $1 != "-rwxr-xr-x" {print "mode:", $0; bad=1}
        $6 != "./usr/bin/vpn2socks" && $1 != "-rw-r--r--" {print "mode:", $0; bad=1}
        END {exit bad}'
}
check "dpkg-deb -c: binary, man page, README, examples/, unit, sysusers.d and nothing else" check_files
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print "    " $6}'

# ---- 4. into an empty root
root=$tmp/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
: >"$root/var/lib/dpkg/status"
check "dpkg --root=ROOT --force-depends --unpack" dpkg --root="$root" --force-depends --unpack "$deb" || exit 1
check_registered() {
    dpkg --root="$root" -s vpn2socks | grep -qx 'Status: install ok unpacked' &&
        dpkg --root="$root" -L vpn2socks | grep -qx /usr/bin/vpn2socks
}
check "dpkg --root=ROOT -s / -L: vpn2socks unpacked, /usr/bin/vpn2socks is its" check_registered
bin=$root/usr/bin/vpn2socks
check_eq() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi
}
# --version's second line names the libraries it runs with, whose versions are this machine's.
check_eq "installed vpn2socks --version" "vpn2socks $version" "$("$bin" --version 2>&1 | sed -n 1p)"
check "installed vpn2socks --version names the libraries" \
    sh -c "'$bin' --version | sed -n 2p | grep -q '^library versions: OpenSSL .*, libuv .*, lwIP '"
check "installed vpn2socks --help names --conf" sh -c "'$bin' --help | grep -q -- '--conf FILE'"
"$bin" --no-such-option >/dev/null 2>&1
check_eq "installed vpn2socks --no-such-option: exit status 1" 1 "$?"
check_eq "man -l on the installed page: its NAME line" "vpn2socks" \
    "$(MANWIDTH=80 man -l "$root/usr/share/man/man1/vpn2socks.1.gz" 2>/dev/null | awk '/^NAME/{getline; print $1; exit}')"

# The installed binary serving SOCKS5: a socketpair for the tunnel, --others direct to a web
# server on 127.0.0.1, and curl fetching a page through it.
serve_socks() {
    python3 - "$bin" "$tmp" <<'PY'
import http.server, os, socket, subprocess, sys, threading, time
binary, tmp = sys.argv[1], sys.argv[2]
page = os.urandom(64 << 10).hex().encode()
with open(os.path.join(tmp, "page"), "wb") as f:
    f.write(page)
class Quiet(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k): super().__init__(*a, directory=tmp, **k)
    def log_message(self, *a): pass
web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
threading.Thread(target=web.serve_forever, daemon=True).start()
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
log = open(os.path.join(tmp, "v2s.log"), "wb")
p = subprocess.Popen([binary, "--tunnel-fd", str(theirs.fileno()), "--address", "10.255.0.2/24",
                      "--others", "direct", "--allow-direct-local", "-D", f"127.0.0.1:{port}"],
                     pass_fds=(theirs.fileno(),), stdout=log, stderr=log)
theirs.close()
try:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close(); break
        except OSError:
            time.sleep(0.05)
    out = subprocess.run(["curl", "-sS", "-f", "-m", "20", "-x", f"socks5h://127.0.0.1:{port}",
                          f"http://127.0.0.1:{web.server_port}/page"], capture_output=True)
    if out.returncode != 0 or out.stdout != page:
        print("curl:", out.returncode, out.stderr.decode(), len(out.stdout), "bytes")
        print(open(os.path.join(tmp, "v2s.log"), errors="replace").read()[-2000:])
        sys.exit(1)
finally:
    p.terminate()
    rc = p.wait(10)
sys.exit(0 if rc == 0 else f"vpn2socks exit status {rc} after SIGTERM")
PY
}
check "installed vpn2socks serves SOCKS5: curl fetches 128 KiB byte-exact, SIGTERM exits 0" serve_socks

# ---- 5. dpkg -i for real, into a throwaway copy of this machine's root: an overlay whose upper
# layer is a tmpfs, in a private mount namespace, chrooted into. dpkg resolves the Depends against
# the libraries installed here, runs the postinst, and nothing of it reaches the real root. Then,
# as installed: the binary on PATH, the man page where man finds it, the group the postinst made,
# and systemd-analyze verify on the unit as instance vpn2socks@test.service (verify wants an
# instance; a copy): it must print nothing and exit 0 (an unknown key is only a warning there).
cp "$deb" "$tmp/v.deb"
unshare -m --propagation private bash -s "$tmp" >"$tmp/overlay.log" 2>&1 <<'EOS'
set -u
t=$1
mkdir -p "$t/ov"
mount -t tmpfs tmpfs "$t/ov" || exit 10
mkdir -p "$t/ov/upper" "$t/ov/work" "$t/ov/root"
m=$t/ov/root
mount -t overlay overlay -o "lowerdir=/,upperdir=$t/ov/upper,workdir=$t/ov/work" "$m" || exit 11
mount --bind /proc "$m/proc" && mount --bind /dev "$m/dev" && mount -t tmpfs tmpfs "$m/tmp" &&
    mount -t tmpfs tmpfs "$m/run" || exit 12
cp "$t/v.deb" "$m/tmp/v.deb"
step() { echo "== $*"; chroot "$m" sh -c "$*"; echo "== exit $?"; }
step 'dpkg -i /tmp/v.deb'
step 'dpkg -s vpn2socks | grep "^Status:"'
step 'getent group vpn2socks && test -d /etc/vpn2socks && echo /etc/vpn2socks'
step 'v=$(vpn2socks --version) && printf "%s\n" "$v" | sed -n 1p'
step 'man -w vpn2socks'
step 'cp /usr/lib/systemd/system/vpn2socks@.service /tmp/vpn2socks@test.service && systemd-analyze verify /tmp/vpn2socks@test.service 2>&1'
# The files laid out as examples/systemd/README.md says, read as the unit reads them: an
# arbitrary uid (a dynamic user's) with the vpn2socks group beside it and no capabilities. The
# secret is accepted (vpn2socks still runs after 2 s, trying the absent server), and refused
# (status 1) without the group. The SOCKS port is a fixed one, as port 0 is refused (0491c69).
chroot "$m" sh -c '
    set -e
    install -d -m 0750 -g vpn2socks /etc/vpn2socks/work
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=t \
        -keyout /tmp/client.key -out /tmp/client.crt 2>/dev/null
    install -m 0644 /tmp/client.crt /etc/vpn2socks/work/ca.crt
    install -m 0644 /tmp/client.crt /etc/vpn2socks/work/client.crt
    install -m 0640 -g vpn2socks /tmp/client.key /etc/vpn2socks/work/client.key
    printf "client\ndev tun\nproto udp\nremote 127.0.0.1 9\nremote-cert-tls server\nca ca.crt\ncert client.crt\nkey client.key\n" \
        >/etc/vpn2socks/work/config.ovpn
    printf "config = /etc/vpn2socks/work/config.ovpn\nsocks = 127.0.0.1:41983\n" >/etc/vpn2socks/work.conf
    chmod 0644 /etc/vpn2socks/work/config.ovpn /etc/vpn2socks/work.conf'
gid=$(chroot "$m" getent group vpn2socks | cut -d: -f3)
step "timeout 2 setpriv --reuid=61234 --regid=61234 --groups=$gid --inh-caps=-all --bounding-set=-all vpn2socks --conf /etc/vpn2socks/work.conf 2>&1; test \$? = 124"
step "setpriv --reuid=61234 --regid=61234 --clear-groups vpn2socks --conf /etc/vpn2socks/work.conf 2>&1; test \$? = 1"
step 'dpkg --purge vpn2socks >/dev/null && ! test -e /usr/bin/vpn2socks && ! test -e /usr/lib/systemd/system/vpn2socks@.service'
EOS
echo "overlay: exit $?"
# overlay_step N: the output of the Nth step (without its "== exit" line) and its exit status
overlay_step() {
    awk -v n="$1" '/^== / && !/^== exit/ {k++} k == n' "$tmp/overlay.log" | sed '1d;$d'
    awk -v n="$1" '/^== / && !/^== exit/ {k++} k == n && /^== exit/ {print $3}' "$tmp/overlay.log"
}
# step_ok N DESCRIPTION [OUTPUT]: step N exited 0 (and printed exactly OUTPUT, when given)
step_ok() {
    local n=$1 desc=$2 out st
    out=$(overlay_step "$n" | sed '$d')
    st=$(overlay_step "$n" | tail -n 1)
    if [ "$st" = 0 ] && { [ $# -lt 3 ] || [ "$out" = "$3" ]; }; then
        pass "$desc"
    else
        fail "$desc (exit ${st:-none})"
        [ $# -ge 3 ] && echo "    expected: '$3', got:"
        printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /'
    fi
}
if ! grep -q '^== exit' "$tmp/overlay.log"; then
    fail "overlay of / for dpkg -i: could not be set up"
    sed 's/^/    /' "$tmp/overlay.log"
else
    step_ok 1 "dpkg -i (overlay of this machine's root): Depends met, postinst run"
    step_ok 2 "dpkg -s: install ok installed" "Status: install ok installed"
    step_ok 3 "postinst: group vpn2socks and /etc/vpn2socks made"
    step_ok 4 "vpn2socks on PATH: --version" "vpn2socks $version"
    step_ok 5 "man -w vpn2socks: the installed page" /usr/share/man/man1/vpn2socks.1.gz
    step_ok 6 "systemd-analyze verify vpn2socks@test.service (the installed unit): exit 0, no warning" ""
    step_ok 7 "the unit's user model (uid 61234 + group vpn2socks, no capabilities): a root:vpn2socks 0640 key accepted"
    step_ok 8 "the same without the group: refused, status 1"
    step_ok 9 "dpkg --purge removes the binary and the unit"
fi
sed -n '/^Depends\|^Setting up/p' "$tmp/overlay.log" | sed 's/^/    /'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
