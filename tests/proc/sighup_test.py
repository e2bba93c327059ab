#!/usr/bin/python3
"""SIGHUP without --conf: a restart on the .ovpn read again for our OpenVPN client, the end of
the session for a packet fd.

usage: sighup_test.py VPN2SOCKS_BINARY

No VPN server: two UDP sockets on 127.0.0.1 stand for two servers that never answer, and each
hard reset the client sends them shows where it is connecting. vpn2socks runs with
--config client.ovpn (remote: server A) and -D.
- The .ovpn is rewritten to name server B, and SIGHUP: the client's next hard reset goes to B at
  once, vpn2socks still runs and its SOCKS listener still accepts. (openvpn does the same on
  SIGHUP: a restart on the config read again.) The log says so in one info line, though
  vpn2socks runs at the default level (warnings): it said nothing there before.
- A line the parser refuses is added, and SIGHUP: the log names FILE:LINE and says the running
  session is kept; the client still sends to B, never to A; vpn2socks still runs.
- SIGTERM: exit 0.
- A packet fd (--tunnel-fd, as openconnect hands one over) without --conf: SIGHUP still means that
  the VPN client ended the session, exit 3.
Before, SIGHUP ended the OpenVPN client's process with status 3 as well.
With --conf (`config = client.ovpn` in vpn2socks.conf), SIGHUP reloads vpn2socks.conf, and the
.ovpn with it when it or a file it names changed:
- A forward added to vpn2socks.conf, the .ovpn untouched: the forward listens, and the session
  goes on (no hard reset with another session id).
- The .ovpn switched from A to B: a hard reset reaches B at once. (Before, the .ovpn was not read
  again until a restart.)
- The ca file renewed: a new session (another session id) at B.
- vpn2socks.conf names another .ovpn (remote A): a hard reset reaches A at once.
Exit 0 on success, 1 on failure (with the reason on stderr), 77 when it cannot run here.
"""
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from proclib import fail, free_port, term_exits_0

HARD_RESET_CLIENT_V2 = 7
WAIT_S = 10


def udp_server():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def drain(s):
    while select.select([s], [], [], 0)[0]:
        s.recv(65536)


def hard_reset_within(s, seconds):
    """Whether a hard reset (a new session's first packet, or its retransmission) reaches s."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            return False
        pkt = s.recv(65536)
        if pkt and pkt[0] >> 3 == HARD_RESET_CLIENT_V2:
            return True


def hard_reset_sid(s, seconds):
    """The session id of the next hard reset that reaches s within seconds, or None."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            return None
        pkt = s.recv(65536)
        if len(pkt) >= 9 and pkt[0] >> 3 == HARD_RESET_CLIENT_V2:
            return pkt[1:9]


def make_ca(d):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", os.path.join(d, "ca.key"), "-out", os.path.join(d, "ca.pem"), "-days", "1",
                    "-subj", "/CN=test-ca"], check=True, capture_output=True)


def write_config(path, port, extra=""):
    with open(path, "w") as f:
        f.write(f"client\ndev tun\n{extra}remote 127.0.0.1 {port} udp\nca ca.pem\nverify-x509-name server name\n")


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 1
    binary = sys.argv[1]
    d = tempfile.mkdtemp(prefix="sighup_test.")
    try:
        make_ca(d)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"SKIP: cannot make a certificate with openssl: {e}", file=sys.stderr)
        return 77
    a, b = udp_server(), udp_server()
    conf = os.path.join(d, "client.ovpn")
    write_config(conf, a.getsockname()[1])
    port = free_port()
    log_path = os.path.join(d, "vpn2socks.log")
    log = open(log_path, "w")
    # The default log level (warnings), as an operator runs it: the reload's summary must show.
    proc = subprocess.Popen([binary, "--config", conf, "-D", f"127.0.0.1:{port}"], stdout=log, stderr=log)

    def log_text():
        with open(log_path, errors="replace") as f:
            return f.read()

    def alive(what):
        if proc.poll() is not None:
            fail(f"{what}: vpn2socks exited with {proc.returncode}:\n{log_text()}")

    def socks_accepts(what):
        deadline = time.monotonic() + WAIT_S
        while True:
            alive(what)
            try:
                c = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    fail(f"{what}: the SOCKS listener does not accept")
                time.sleep(0.05)
        try:
            c.sendall(b"\x05\x01\x00")
            ok = c.recv(2) == b"\x05\x00"
            c.close()
        except OSError as e:
            fail(f"{what}: the SOCKS listener does not answer: {e}")
        if not ok:
            fail(f"{what}: the SOCKS listener refused the greeting")

    try:
        if not hard_reset_within(a, WAIT_S):
            fail(f"no hard reset reached server A:\n{log_text()}")
        socks_accepts("at start")

        # The .ovpn names B now: SIGHUP reads it and the session restarts there, at once.
        write_config(conf, b.getsockname()[1])
        drain(a)
        proc.send_signal(signal.SIGHUP)
        if not hard_reset_within(b, 5):
            alive("after SIGHUP")
            fail(f"after SIGHUP with B in the .ovpn, no hard reset reached B within 5 s:\n{log_text()}")
        alive("after SIGHUP")
        socks_accepts("after SIGHUP")
        if " info: reload: " + conf + " read" not in log_text():
            fail(f"after SIGHUP: the log does not say the .ovpn was read again:\n{log_text()}")

        # A line the parser refuses (line 3): logged with FILE:LINE, the running session kept.
        write_config(conf, a.getsockname()[1], extra="no-such-option 1\n")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + WAIT_S
        while f"{conf}:3:" not in log_text():
            alive("after SIGHUP with a bad .ovpn")
            if time.monotonic() > deadline:
                fail(f"after SIGHUP with a bad .ovpn, the log does not name {conf}:3:\n{log_text()}")
            time.sleep(0.05)
        if "the running session is kept" not in log_text():
            fail(f"after SIGHUP with a bad .ovpn, the log does not say the session is kept:\n{log_text()}")
        drain(a)
        drain(b)
        if not hard_reset_within(b, WAIT_S):
            fail(f"after SIGHUP with a bad .ovpn, the client stopped trying B:\n{log_text()}")
        if select.select([a], [], [], 0)[0]:
            fail("after SIGHUP with a bad .ovpn, the client went to the bad file's remote")
        alive("after SIGHUP with a bad .ovpn")
        socks_accepts("after SIGHUP with a bad .ovpn")

        term_exits_0(proc, log_text)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # With --conf: the .ovpn is read again with vpn2socks.conf, the session restarted only when it
    # (or a file it names) changed.
    a, b = udp_server(), udp_server()
    write_config(conf, a.getsockname()[1])
    port, fwd = free_port(), free_port()
    vconf = os.path.join(d, "vpn2socks.conf")
    with open(vconf, "w") as f:
        f.write(f"config = client.ovpn\nsocks = 127.0.0.1:{port}\n")
    proc = subprocess.Popen([binary, "--conf", vconf, "-v"], stdout=log, stderr=log)
    try:
        sid = hard_reset_sid(a, WAIT_S)
        if sid is None:
            fail(f"--conf: no hard reset reached server A:\n{log_text()}")
        socks_accepts("--conf, at start")

        # A forward added, the .ovpn as it was: the forward listens, the session goes on.
        with open(vconf, "a") as f:
            f.write(f"local = 127.0.0.1:{fwd}:127.0.0.1:9\n")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + WAIT_S
        while "the session goes on" not in log_text():
            alive("--conf, after SIGHUP with a forward added")
            if time.monotonic() > deadline:
                fail(f"--conf, after SIGHUP with a forward added: the log does not say the session goes on:\n"
                     f"{log_text()}")
            time.sleep(0.05)
        try:
            socket.create_connection(("127.0.0.1", fwd), timeout=WAIT_S).close()
        except ConnectionRefusedError:
            fail(f"--conf, after SIGHUP with a forward added: the forward does not listen:\n{log_text()}")
        except OSError:
            pass  # accepted, then closed at once: the tunnel is not up
        other = hard_reset_sid(a, 2)
        if other is not None and other != sid:
            fail(f"--conf, after SIGHUP with a forward added: a new session started:\n{log_text()}")

        # The .ovpn names B now: the reload reads it and the session restarts there, at once.
        write_config(conf, b.getsockname()[1])
        drain(a)
        proc.send_signal(signal.SIGHUP)
        sid = hard_reset_sid(b, 5)
        if sid is None:
            alive("--conf, after SIGHUP with B in the .ovpn")
            fail(f"--conf, after SIGHUP with B in the .ovpn, no hard reset reached B within 5 s:\n{log_text()}")
        socks_accepts("--conf, after SIGHUP with B in the .ovpn")

        # A renewed ca file, the .ovpn as it was: a new session at B.
        make_ca(d)
        drain(b)
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while True:
            other = hard_reset_sid(b, max(deadline - time.monotonic(), 0))
            if other is None:
                alive("--conf, after SIGHUP with a new ca file")
                fail(f"--conf, after SIGHUP with a new ca file, no new session within 5 s:\n{log_text()}")
            if other != sid:
                break

        # vpn2socks.conf names another .ovpn, with remote A: loaded, not left for a restart.
        write_config(os.path.join(d, "other.ovpn"), a.getsockname()[1])
        with open(vconf, "w") as f:
            f.write(f"config = other.ovpn\nsocks = 127.0.0.1:{port}\nlocal = 127.0.0.1:{fwd}:127.0.0.1:9\n")
        drain(a)
        proc.send_signal(signal.SIGHUP)
        if not hard_reset_within(a, 5):
            alive("--conf, after SIGHUP with another .ovpn")
            fail(f"--conf, after SIGHUP with another .ovpn, no hard reset reached A within 5 s:\n{log_text()}")
        if "ignored until a restart" in log_text():
            fail(f"--conf: a reload said something waits for a restart:\n{log_text()}")
        socks_accepts("--conf, after SIGHUP with another .ovpn")

        term_exits_0(proc, log_text, "--conf")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # The packet fd keeps openconnect's meaning of SIGHUP.
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    port = free_port()
    proc = subprocess.Popen([binary, "--tunnel-fd", str(theirs.fileno()), "--address", "10.255.0.2/24",
                             "-D", f"127.0.0.1:{port}", "-v"], pass_fds=(theirs.fileno(),), stdout=log, stderr=log)
    theirs.close()
    try:
        socks_accepts("packet fd, at start")
        proc.send_signal(signal.SIGHUP)
        try:
            rc = proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            fail("packet fd: no exit within 10 s of SIGHUP")
        if rc != 3:
            fail(f"packet fd: exit status {rc} after SIGHUP, not 3:\n{log_text()}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        ours.close()
    log.close()
    shutil.rmtree(d)
    print("ok: SIGHUP restarts the OpenVPN client on the .ovpn read again, keeps it on a bad one; with --conf "
          "only when the .ovpn or a file it names changed; a packet fd still ends on SIGHUP")
    return 0


if __name__ == "__main__":
    sys.exit(main())
