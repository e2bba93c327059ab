#!/usr/bin/python3
"""What a user sees on stderr when the command line is wrong: each message names the option to fix.

usage: cli_messages_test.py VPN2SOCKS_BINARY

Each row runs vpn2socks with a command line it must refuse and checks that it exits with status 1
and that stderr holds the message expected:
- a file given to --config, --auth-user-pass or --conf that is missing or a folder: the message
  names the option as well as the file (it named the file alone, "/x.ovpn: No such file or
  directory", and left the user to guess which option gave it);
- no listener at all: every kind of listener is offered, -R too;
- --mtu with --config: refused, with what sets the MTU there (it was taken and ignored: vpn2socks
  ran, connecting, until the 10 s timeout here);
- a prefix of several long options (--co): the candidates are named (it was "unknown option");
- openconnect's environment with VPNFD naming a descriptor that is not open (a wrapper such as
  sudo closed it): the message says so (it was "Bad file descriptor"); reason set and no VPNFD
  (openconnect given --script without --script-tun): the message says to add --script-tun;
- openconnect's environment with an MTU under 1280 and an IPv6 address: refused when the tunnel
  has no IPv4, IPv6 left off with a warning when it has (IPv6 stayed on);
- a stray word after --version (-V extra): refused as anywhere else (it was ignored, exit 0); and
  --version alone exits 0 with a second line naming OpenSSL, libuv and lwIP;
- under journald ($JOURNAL_STREAM naming stderr, as systemd sets it): the message is an error to
  the journal, "<3>vpn2socks: ...", without "Try --help" (it went in at priority info, so
  `journalctl -p err` did not show why the service failed to start).
No VPN server: the .ovpn names a port nothing answers on, and each run stops before connecting.
Exit 0 on success, 1 on failure (with the reason on stderr), 77 when it cannot run here.
"""
import os
import re
import subprocess
import sys
import tempfile

from proclib import fail, free_port

# A .ovpn the loader accepts: a password login, the server checked by its fingerprint.
OVPN = (
    "client\ndev tun\nproto udp\nremote 127.0.0.1 9\nauth-user-pass\n"
    "peer-fingerprint " + ":".join(["AB"] * 32) + "\n"
)


def refused(binary, args, want, env=None):
    """Runs binary with args (and env added to the environment): None when it exits with 1 and
    stderr holds want, else what it did."""
    try:
        p = subprocess.run([binary] + args, capture_output=True, text=True, timeout=10,
                           env=dict(os.environ, **(env or {})))
    except subprocess.TimeoutExpired:
        return f"{' '.join(args)}: still running after 10 s; expected a refusal"
    if p.returncode != 1 or want not in p.stderr:
        return f"{' '.join(args)}: exit {p.returncode}, stderr {p.stderr!r}; expected exit 1 with {want!r}"
    return None


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        print("usage: cli_messages_test.py VPN2SOCKS_BINARY", file=sys.stderr)
        return 77
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        ovpn = os.path.join(d, "client.ovpn")
        with open(ovpn, "w") as f:
            f.write(OVPN)
        os.chmod(ovpn, 0o600)
        up = os.path.join(d, "up")
        with open(up, "w") as f:
            f.write("user\npassword\n")
        os.chmod(up, 0o600)
        missing = os.path.join(d, "missing")
        listen = ["-D", f"127.0.0.1:{free_port()}"]
        rows = [
            (["--config", missing + ".ovpn"] + listen, f"--config {missing}.ovpn: No such file or directory"),
            (["--config", d] + listen, f"--config {d}: "),
            (["--config", ovpn, "--auth-user-pass", missing] + listen,
             f"--auth-user-pass {missing}: No such file or directory"),
            (["--conf", missing + ".conf"], f"--conf {missing}.conf: No such file or directory"),
            (["--config", ovpn, "--auth-user-pass", missing],
             "give at least one listener (-D PORT, -H PORT, -L PORT:HOST:HOSTPORT or -R PORT:HOST:HOSTPORT)"),
            (["--config", ovpn, "--auth-user-pass", up, "--mtu", "1400"] + listen,
             "--config brings its own tunnel: --mtu does not apply (the MTU is the .ovpn's tun-mtu"),
            (["--co", ovpn] + listen, "ambiguous option --co: it could be --conf, --config or --connect-timeout"),
            (["-V", "extra"], "unexpected argument 'extra'"),
            (["--version", "extra"], "unexpected argument 'extra'"),
        ]
        # openconnect's environment without its descriptor (a wrapper closed it: sudo does), and
        # openconnect given --script without --script-tun (reason set, no VPNFD).
        oc_env = {"INTERNAL_IP4_ADDRESS": "10.0.0.2", "INTERNAL_IP4_MTU": "1334"}
        env_rows = [
            (listen, "packet fd 987 (VPNFD): not open in this process: a program between the VPN client",
             dict(oc_env, VPNFD="987")),
            (listen, "no tunnel: the VPN client ran me as a vpnc-script (reason=connect)",
             dict(oc_env, reason="connect")),
            # An MTU under IPv6's 1280 (RFC 8200 5): IPv6 only is refused, and with IPv4 too the
            # IPv6 address is left off with a warning (then the closed descriptor stops it), as
            # over OpenVPN; IPv6 stayed on before.
            (listen, "the tunnel MTU 1200 is below IPv6's minimum of 1280, and the tunnel has no IPv4 address",
             {"INTERNAL_IP6_ADDRESS": "fd00::2", "INTERNAL_IP4_MTU": "1200", "VPNFD": "987"}),
            (listen, "IPv6 (fd00::2) left off on this tunnel, IPv4 only",
             dict(oc_env, INTERNAL_IP6_ADDRESS="fd00::2", INTERNAL_IP4_MTU="1200", VPNFD="987")),
        ]
        rows = [(args, want, None) for args, want in rows] + env_rows
        wrong = [w for w in (refused(binary, args, want, env) for args, want, env in rows) if w]
        with open(os.path.join(d, "journal"), "w+") as err:
            st = os.fstat(err.fileno())
            env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
            p = subprocess.run([binary, "--conf", missing + ".conf"], stderr=err, env=env, timeout=10)
            err.seek(0)
            text = err.read()
        want = f"<3>vpn2socks: --conf {missing}.conf: No such file or directory\n"
        if p.returncode != 1 or text != want:
            wrong.append(f"under journald: exit {p.returncode}, stderr {text!r}; expected exit 1 with {want!r}")
        p = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        lines = p.stdout.splitlines()
        if p.returncode != 0 or len(lines) != 2 or not lines[0].startswith("vpn2socks ") or \
                not re.fullmatch(r"library versions: OpenSSL \S.*, libuv \d+\.\d+\.\d+\S*, lwIP \d+\.\d+\.\d+\S*",
                                 lines[1]):
            wrong.append(f"--version: exit {p.returncode}, stdout {p.stdout!r}; expected exit 0 with the "
                         "library versions")
        if wrong:
            fail(f"{len(wrong)} of {len(rows)} rows:\n" + "\n".join(wrong))
    print(f"cli_messages: {len(rows)} command lines refused with the expected messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
