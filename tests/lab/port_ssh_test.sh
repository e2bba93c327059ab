#!/bin/bash
# shellcheck disable=SC2317  # helpers are called through lab_check
# A real TCP client through -L: OpenSSH. vpn2socks runs as nobody with --config against Debian's
# openvpn 2.6 server and --others reject, with one forward on the client's loopback,
#   -L 127.0.0.1:12222:LAB_INTERNAL_IP:22
# to an sshd of the test's own in the server namespace (its own host key, config and
# authorized_keys; key login only; logs to the lab's log dir). The ssh and scp clients run as
# nobody in the client namespace with a key, a known_hosts and no config of their own, and check:
#   - the host key accepted on first use is the lab sshd's (accept-new wrote it to known_hosts)
#   - a remote command's output: sshd saw the connection come from vpn2socks's tunnel address
#   - scp up and scp down (SFTP, OpenSSH 9's default) byte-exact (sha256)
#   - `ssh host cat FILE` piped into sha256sum: the session channel carries bytes intact too
#   - ten ssh sessions at once, each with its remote command's output intact
# Needs root (skips with exit 77 otherwise) and openssh-server / openssh-client
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
SSHD=/usr/sbin/sshd             # sshd re-executes itself, so it wants an absolute path
for t in "$SSHD" ssh scp ssh-keygen; do
    command -v "$t" >/dev/null 2>&1 || { echo "lab: missing $t; run scripts/install-deps.sh" >&2; exit 1; }
done
LAB_BIG_MB=1 lab_setup --no-ocserv
v2s_prepare

SSH_FWD=12222
FILE_MB=16

# ---------------------------------------------------------------- the server's sshd

SD=$LAB_RUN_DIR/sshd            # root's: host key, config, authorized_keys, the files served
mkdir -m 755 "$SD"
ssh-keygen -q -t ed25519 -N '' -C "lab sshd $LAB_ID" -f "$SD/host_ed25519" || lab_die "host key"
# The client's side belongs to nobody: ssh refuses a private key others can read, and nobody
# must be able to read its own.
CD=$LAB_RUN_DIR/out/ssh-client
install -d -o nobody -g nogroup -m 700 "$CD"
lab_client_nobody ssh-keygen -q -t ed25519 -N '' -C "lab client $LAB_ID" -f "$CD/id_ed25519" ||
    lab_die "client key"
cp "$CD/id_ed25519.pub" "$SD/authorized_keys"
# The privilege separation directory Debian's service would make; sshd will not start without it.
mkdir -p /run/sshd
# Root login with the key only: root is the one account every Debian has with a shell, and the
# server namespace is the lab's "other machine". StrictModes no: the run dir is under /tmp.
cat >"$SD/sshd_config" <<EOF
ListenAddress $LAB_INTERNAL_IP:22
HostKey $SD/host_ed25519
PidFile none
AuthorizedKeysFile $SD/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
MaxStartups 32
MaxSessions 32
Subsystem sftp internal-sftp
LogLevel VERBOSE
EOF
lab_bg sshd ip netns exec "$LAB_SERVER_NS" "$SSHD" -D -e -f "$SD/sshd_config"
lab_wait_listen "$LAB_SERVER_NS" tcp "$LAB_INTERNAL_IP" 22 || lab_die "sshd did not start"
head -c $((FILE_MB << 20)) /dev/urandom >"$SD/down.bin"
DOWN_SHA=$(sha256sum <"$SD/down.bin" | cut -d' ' -f1)
lab_client_nobody sh -c "head -c $((FILE_MB << 20)) /dev/urandom >'$CD/up.bin'"
UP_SHA=$(sha256sum <"$CD/up.bin" | cut -d' ' -f1)

# ---------------------------------------------------------------- vpn2socks with the forward

lab_start_openvpn_server ssh --proto udp
lab_openvpn_client_config ssh
v2s_start_ovpn ssh "$LAB_OVPN_CLIENT_DIR" --others reject \
    -L "127.0.0.1:$SSH_FWD:$LAB_INTERNAL_IP:22" || lab_die "vpn2socks did not bring the tunnel up"
lab_wait_listen "$LAB_CLIENT_NS" tcp 127.0.0.1 "$SSH_FWD" || lab_die "the -L forward does not listen"
TUN_ADDR=$(sed -n 's|.*tunnel up: address \([0-9.]*\)/.*|\1|p' "$S/v2s.log" | head -n 1)

# The client's options: nothing from ~/.ssh (nobody has none), no prompt, the lab's key and
# known_hosts; the first connection adds the host key.
SSH_OPTS=(-F /dev/null -i "$CD/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes
    -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile="$CD/known_hosts"
    -o ConnectTimeout=10 -o LogLevel=ERROR)
nssh() { lab_client_nobody timeout 60 ssh "${SSH_OPTS[@]}" -p "$SSH_FWD" root@127.0.0.1 "$@"; }
nscp() { lab_client_nobody timeout 60 scp -q "${SSH_OPTS[@]}" -P "$SSH_FWD" "$@"; }

# The remote command: sshd's view of the connection. Through the forward it comes from the tunnel
# address to LAB_INTERNAL_IP port 22.
remote_command() {
    local out
    # shellcheck disable=SC2016  # expanded by the remote shell
    out=$(nssh -n 'set -- $SSH_CONNECTION; echo "from $1 to $3 port $4"') || return 1
    [ "$out" = "from $TUN_ADDR to $LAB_INTERNAL_IP port 22" ] ||
        { echo "remote said '$out', expected 'from $TUN_ADDR to $LAB_INTERNAL_IP port 22'"; return 1; }
}

host_key_learned() {
    local want got
    want=$(cut -d' ' -f1,2 "$SD/host_ed25519.pub")
    got=$(cut -d' ' -f2,3 "$CD/known_hosts" 2>/dev/null)
    [ "$got" = "$want" ] || { echo "known_hosts has '$got', the lab sshd's key is '$want'"; return 1; }
}

scp_up() {
    nscp "$CD/up.bin" "root@127.0.0.1:$SD/up.bin" || return 1
    v2s_check_file "$SD/up.bin" "$UP_SHA" $((FILE_MB << 20))
}

scp_down() {
    nscp "root@127.0.0.1:$SD/down.bin" "$CD/down.bin" || return 1
    v2s_check_file "$CD/down.bin" "$DOWN_SHA" $((FILE_MB << 20))
}

cat_down() {
    local sha
    sha=$(nssh -n cat "$SD/down.bin" | sha256sum | cut -d' ' -f1)
    [ "$sha" = "$DOWN_SHA" ] || { echo "ssh cat: sha256 $sha, expected $DOWN_SHA"; return 1; }
}

# Ten sessions at once, each echoing its own number back.
parallel_sessions() {
    local i fails=0 pids=()
    for i in $(seq 1 10); do
        nssh -n "echo session $i" >"$CD/par.$i" 2>&1 &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do wait "${pids[i]}" || fails=$((fails + 1)); done
    for i in $(seq 1 10); do
        [ "$(cat "$CD/par.$i")" = "session $i" ] || { echo "session $i: $(cat "$CD/par.$i")"; fails=$((fails + 1)); }
    done
    [ "$fails" = 0 ]
}

lab_check "ssh through -L: a remote command sees the tunnel address ($TUN_ADDR) as the client" remote_command
lab_check "ssh through -L: accept-new learned the lab sshd's host key" host_key_learned
lab_check "scp up through -L: $FILE_MB MiB byte-exact" scp_up
lab_check "scp down through -L: $FILE_MB MiB byte-exact" scp_down
lab_check "ssh cat through -L: $FILE_MB MiB byte-exact" cat_down
lab_check "ten ssh sessions at once through -L" parallel_sessions
lab_check "vpn2socks is still running" v2s_alive
lab_check_eq "SIGTERM: exit status 0" 0 "$(v2s_stop)"

lab_finish
