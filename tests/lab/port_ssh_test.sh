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
# shellcheck source-path=SCRIPTDIR
source "$here/sshd.sh"

lab_require_root
lab_openvpn_require
lab_sshd_require
LAB_BIG_MB=1 lab_setup --no-ocserv
v2s_prepare

SSH_FWD=12222
FILE_MB=16

# ---------------------------------------------------------------- the server's sshd

lab_sshd_start
SD=$LAB_SSHD_DIR
CD=$LAB_SSH_CLIENT_DIR
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

SSH_OPTS=("${LAB_SSH_OPTS[@]}")
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

# Ten sessions at once, each echoing its own number back: ssh's exit status and the remote
# command's output. What the remote shell's own startup prints on stderr is not the forward's:
# this machine's root ~/.bashrc runs `pyenv rehash`, and ten at once raced on its lock ("pyenv:
# cannot rehash") in one CI run. It is shown when a session fails.
parallel_sessions() {
    local i fails=0 pids=()
    for i in $(seq 1 10); do
        nssh -n "echo session $i" >"$CD/par.$i" 2>"$CD/par.$i.err" &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[i]}" || { echo "session $((i + 1)): ssh failed: $(cat "$CD/par.$((i + 1)).err")"; fails=$((fails + 1)); }
    done
    for i in $(seq 1 10); do
        [ "$(cat "$CD/par.$i")" = "session $i" ] ||
            { echo "session $i: '$(cat "$CD/par.$i")'; stderr: $(cat "$CD/par.$i.err")"; fails=$((fails + 1)); }
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
