#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# The clients people use, run as a user would (the commands of examples/clients.md), against
# vpn2socks as nobody with --config (Debian's openvpn 2.6 server), --others reject,
# -D 127.0.0.1:1080, -H 127.0.0.1:8118, -L 127.0.0.1:12222:LAB_INTERNAL_IP:22 and
# --log-format json. Each client runs as nobody in the client namespace, which has no DNS of its
# own: every name must be resolved by vpn2socks through the tunnel.
#   - proxychains4 (proxy_dns, socks5 127.0.0.1 1080) curl: the web server's file byte-exact, and
#     the relay reached web.lab.test by name;
#   - git clone over http:// through the HTTP proxy (http_proxy): a bare repository the lab web
#     server serves with git's dumb HTTP protocol; the clone's HEAD and file are the server's;
#   - ssh with ProxyCommand 'nc -X 5 -x 127.0.0.1:1080 %h %p' (netcat-openbsd) to the lab sshd by
#     name: the remote command sees the tunnel address, a 1 MiB `cat` byte-exact;
#   - ssh with ProxyJump through the -L forward (a config file for the jump's own ssh);
#   - curl --socks5-hostname and curl --proxy http://: byte-exact;
#   - the JSON log: every line vpn2socks wrote is one JSON object with time, level, event and msg;
#     tunnel_up, listener_start (socks, http, local) and relay_closed with the client's
#     destination, via and the bytes are there.
# Needs root (skips with exit 77 otherwise), proxychains4, netcat-openbsd, git, openssh
# (scripts/install-deps.sh). The binary: $VPN2SOCKS_BIN, else build/vpn2socks.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/openvpn.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/v2s.sh"
# shellcheck source-path=SCRIPTDIR
source "$here/sshd.sh"

lab_require_root
lab_openvpn_require
lab_sshd_require
for t in proxychains4 nc git; do
    command -v "$t" >/dev/null 2>&1 || { echo "lab: missing $t; run scripts/install-deps.sh" >&2; exit 1; }
done
nc -h 2>&1 | grep -q -- '-X proxy_protocol' || { echo "lab: nc is not netcat-openbsd (no -X)" >&2; exit 1; }
export LAB_BIG_MB=1
lab_setup --no-ocserv
v2s_prepare
lab_sshd_start

HTTP_PORT=8118
SSH_FWD=12222
WEB=http://$LAB_WEB_NAME:$LAB_WEB_PORT
CD=$LAB_SSH_CLIENT_DIR          # nobody's: ssh key, known_hosts, configs, clones

# A repository the web server serves with the dumb HTTP protocol: plain files, once
# `git update-server-info` wrote info/refs.
G=$LAB_RUN_DIR/git-src
{
    git init -q -b main "$G" && printf 'cloned through vpn2socks %s\n' "$LAB_ID" >"$G/README" &&
        git -C "$G" add README && git -C "$G" -c user.name=lab -c user.email=lab@lab.test commit -q -m first &&
        git clone -q --bare "$G" "$LAB_WEB_ROOT/repo.git" && git -C "$LAB_WEB_ROOT/repo.git" update-server-info &&
        chmod -R a+rX "$LAB_WEB_ROOT/repo.git"
} || lab_die "the git repository"
GIT_HEAD=$(git -C "$G" rev-parse HEAD)
README_SHA=$(sha256sum <"$G/README" | cut -d' ' -f1)

cat >"$CD/proxychains.conf" <<EOF
strict_chain
proxy_dns
remote_dns_subnet 224
tcp_read_time_out 15000
tcp_connect_time_out 8000
[ProxyList]
socks5 127.0.0.1 $SOCKS_PORT
EOF
# ProxyJump starts a second ssh for the jump host, which takes the config file (-F) but not the
# command line's -o options: the lab's settings go in a file.
cat >"$CD/ssh_config" <<EOF
Host *
    User root
    IdentityFile $CD/id_ed25519
    IdentitiesOnly yes
    BatchMode yes
    StrictHostKeyChecking accept-new
    UserKnownHostsFile $CD/known_hosts
    ConnectTimeout 10
    LogLevel ERROR
EOF
chown nobody:nogroup "$CD"/*.conf "$CD/ssh_config"

lab_start_openvpn_server clients --proto udp
lab_openvpn_client_config clients
v2s_start_ovpn clients "$LAB_OVPN_CLIENT_DIR" --others reject --log-format json -H "127.0.0.1:$HTTP_PORT" \
    -L "127.0.0.1:$SSH_FWD:$LAB_INTERNAL_IP:22" || lab_die "vpn2socks did not bring the tunnel up"
lab_wait_listen "$LAB_CLIENT_NS" tcp 127.0.0.1 "$HTTP_PORT" 5 || lab_die "the HTTP proxy does not listen"
lab_wait_listen "$LAB_CLIENT_NS" tcp 127.0.0.1 "$SSH_FWD" 5 || lab_die "the -L forward does not listen"
TUN_ADDR=$(sed -n 's|.*tunnel up: address \([0-9.]*\)/.*|\1|p' "$S/v2s.log" | head -n 1)

as_user() { lab_client_nobody env HOME="$CD" timeout 60 "$@"; }

proxychains_curl() {
    as_user proxychains4 -q -f "$CD/proxychains.conf" curl -sSf -o "$CD/pc.out" "$WEB/$LAB_BIG_FILE" || return 1
    v2s_check_file "$CD/pc.out" "$LAB_BIG_SHA256" "$LAB_BIG_SIZE" || return 1
    # proxy_dns: the name went to vpn2socks, not an address resolved by the client.
    grep -q "\"event\":\"relay_open\".*\"destination\":\"$LAB_WEB_NAME:$LAB_WEB_PORT\"" "$S/v2s.log" ||
        { echo "no relay_open to $LAB_WEB_NAME:$LAB_WEB_PORT in the log"; return 1; }
}

git_clone_http() {
    local head
    as_user env http_proxy="http://127.0.0.1:$HTTP_PORT" git clone -q "$WEB/repo.git" "$CD/clone" || return 1
    head=$(as_user git -C "$CD/clone" rev-parse HEAD) || return 1
    [ "$head" = "$GIT_HEAD" ] || { echo "clone HEAD $head, expected $GIT_HEAD"; return 1; }
    v2s_check_file "$CD/clone/README" "$README_SHA"
}

ssh_proxycommand() {
    local out sha
    # shellcheck disable=SC2016  # expanded by the remote shell
    out=$(as_user ssh -F "$CD/ssh_config" -o ProxyCommand="nc -X 5 -x 127.0.0.1:$SOCKS_PORT %h %p" \
        "$LAB_WEB_NAME" -n 'set -- $SSH_CONNECTION; echo "from $1 to $3 port $4"') || return 1
    [ "$out" = "from $TUN_ADDR to $LAB_INTERNAL_IP port 22" ] ||
        { echo "remote said '$out', expected 'from $TUN_ADDR to $LAB_INTERNAL_IP port 22'"; return 1; }
    sha=$(as_user ssh -F "$CD/ssh_config" -o ProxyCommand="nc -X 5 -x 127.0.0.1:$SOCKS_PORT %h %p" \
        "$LAB_WEB_NAME" -n cat "$LAB_WEB_ROOT/$LAB_BIG_FILE" | sha256sum | cut -d' ' -f1)
    [ "$sha" = "$LAB_BIG_SHA256" ] || { echo "ssh cat: sha256 $sha, expected $LAB_BIG_SHA256"; return 1; }
}

# The jump host is the lab sshd through -L; from there, ssh -W reaches the same sshd at its
# internal address (the jump's own connection, not vpn2socks's).
ssh_proxyjump() {
    local out
    # shellcheck disable=SC2016  # expanded by the remote shell
    out=$(as_user ssh -F "$CD/ssh_config" -J "root@127.0.0.1:$SSH_FWD" "$LAB_INTERNAL_IP" -n \
        'set -- $SSH_CONNECTION; echo "jumped to $3 port $4"') || return 1
    [ "$out" = "jumped to $LAB_INTERNAL_IP port 22" ] || { echo "remote said '$out'"; return 1; }
}

curl_socks5_hostname() {
    as_user curl -sSf --socks5-hostname "127.0.0.1:$SOCKS_PORT" -o "$CD/c1.out" "$WEB/$LAB_SMALL_FILE" || return 1
    v2s_check_file "$CD/c1.out" "$LAB_SMALL_SHA256"
}

curl_http_proxy() {
    as_user curl -sSf --proxy "http://127.0.0.1:$HTTP_PORT" -o "$CD/c2.out" "$WEB/$LAB_SMALL_FILE" || return 1
    v2s_check_file "$CD/c2.out" "$LAB_SMALL_SHA256"
}

# Every line a JSON object of the documented shape, and the events a collector would use.
json_log() {
    "$LAB_PY" - "$S/v2s.log" "$LAB_WEB_NAME:$LAB_WEB_PORT" "$LAB_SMALL_SHA256" <<'EOF'
import json, sys
path, dest = sys.argv[1], sys.argv[2]
lines = open(path, "rb").read().decode("utf-8").splitlines()
events = []
for i, line in enumerate(lines, 1):
    try:
        o = json.loads(line)
    except ValueError as e:
        sys.exit(f"line {i} is not JSON ({e}): {line!r}")
    if list(o)[:3] != ["time", "level", "event"] or "msg" not in o:
        sys.exit(f"line {i}: keys {list(o)}")
    if not (o["time"].endswith("Z") and len(o["time"]) == 24):
        sys.exit(f"line {i}: time {o['time']!r}")
    events.append(o)
names = {o["event"] for o in events}
for want in ("tunnel_up", "listener_start", "relay_open", "relay_closed"):
    if want not in names:
        sys.exit(f"no {want} event among {sorted(names)}")
kinds = {o.get("listener") for o in events if o["event"] == "listener_start"}
if not {"socks", "http", "local"} <= kinds:
    sys.exit(f"listener_start kinds {kinds}")
closed = [o for o in events if o["event"] == "relay_closed" and o.get("destination") == dest
          and o.get("via") == "tunnel" and o.get("client", "").startswith("127.0.0.1:")]
if not closed or not all(isinstance(o["bytes_down"], int) and o["bytes_down"] > 0 and
                         isinstance(o["bytes_up"], int) and o["bytes_up"] > 0 for o in closed):
    sys.exit(f"relay_closed to {dest}: {closed}")
print(f"{len(lines)} lines, events {sorted(names)}")
EOF
}

lab_check "proxychains4 (proxy_dns) curl: 1 MiB byte-exact, the name resolved through the tunnel" \
    proxychains_curl
lab_check "git clone http:// through the HTTP proxy (http_proxy): HEAD and README are the server's" git_clone_http
lab_check "ssh ProxyCommand 'nc -X 5 -x' to $LAB_WEB_NAME: from the tunnel address, 1 MiB cat byte-exact" \
    ssh_proxycommand
lab_check "ssh ProxyJump through -L 127.0.0.1:$SSH_FWD" ssh_proxyjump
lab_check "curl --socks5-hostname: byte-exact" curl_socks5_hostname
lab_check "curl --proxy http://: byte-exact" curl_http_proxy
lab_check "vpn2socks is still running" v2s_alive
lab_check_eq "SIGTERM: exit status 0" 0 "$(v2s_stop)"
lab_check "--log-format json: every line one object; tunnel_up, listener_start, relay_closed with fields" json_log

lab_finish
