# shellcheck shell=bash
# shellcheck disable=SC2034  # variables here are for the tests that source this file
# An OpenSSH server of the test's own in the lab's server namespace, and a client key for nobody in
# the client namespace (sourced after lib.sh, once lab_setup ran):
#   lab_sshd_require   exits 1 naming what is missing (scripts/install-deps.sh installs it)
#   lab_sshd_start     starts sshd on LAB_INTERNAL_IP:22 with its own host key, config and
#                      authorized_keys (key login only, as root: the one account every Debian has
#                      with a shell); logs to the lab's log dir. Sets:
#     LAB_SSHD_DIR       root's: host key, config, authorized_keys (files to serve may go here)
#     LAB_SSH_CLIENT_DIR nobody's: id_ed25519, known_hosts
#     LAB_SSH_OPTS       ssh options for nobody: no config of its own, no prompt, the lab's key,
#                        accept-new into the lab's known_hosts
LAB_SSHD_BIN=/usr/sbin/sshd     # sshd re-executes itself, so it wants an absolute path

lab_sshd_require() {
    local t
    for t in "$LAB_SSHD_BIN" ssh scp ssh-keygen; do
        command -v "$t" >/dev/null 2>&1 || { echo "lab: missing $t; run scripts/install-deps.sh" >&2; exit 1; }
    done
}

lab_sshd_start() {
    LAB_SSHD_DIR=$LAB_RUN_DIR/sshd
    mkdir -m 755 "$LAB_SSHD_DIR"
    ssh-keygen -q -t ed25519 -N '' -C "lab sshd $LAB_ID" -f "$LAB_SSHD_DIR/host_ed25519" || lab_die "host key"
    # The client's side belongs to nobody: ssh refuses a private key others can read, and nobody
    # must be able to read its own.
    LAB_SSH_CLIENT_DIR=$LAB_RUN_DIR/out/ssh-client
    install -d -o nobody -g nogroup -m 700 "$LAB_SSH_CLIENT_DIR"
    lab_client_nobody ssh-keygen -q -t ed25519 -N '' -C "lab client $LAB_ID" -f "$LAB_SSH_CLIENT_DIR/id_ed25519" ||
        lab_die "client key"
    cp "$LAB_SSH_CLIENT_DIR/id_ed25519.pub" "$LAB_SSHD_DIR/authorized_keys"
    # The privilege separation directory Debian's service would make; sshd will not start without it.
    mkdir -p /run/sshd
    # StrictModes no: the run dir is under /tmp.
    cat >"$LAB_SSHD_DIR/sshd_config" <<EOS
ListenAddress $LAB_INTERNAL_IP:22
HostKey $LAB_SSHD_DIR/host_ed25519
PidFile none
AuthorizedKeysFile $LAB_SSHD_DIR/authorized_keys
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
EOS
    lab_bg sshd ip netns exec "$LAB_SERVER_NS" "$LAB_SSHD_BIN" -D -e -f "$LAB_SSHD_DIR/sshd_config"
    lab_wait_listen "$LAB_SERVER_NS" tcp "$LAB_INTERNAL_IP" 22 || lab_die "sshd did not start"
    LAB_SSH_OPTS=(-F /dev/null -i "$LAB_SSH_CLIENT_DIR/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes
        -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile="$LAB_SSH_CLIENT_DIR/known_hosts"
        -o ConnectTimeout=10 -o LogLevel=ERROR)
}
