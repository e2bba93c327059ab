#!/usr/bin/python3
"""SIGHUP without --conf: a restart on the .ovpn read again for our OpenVPN client, the end of
the session for a packet fd.

usage: sighup_test.py VPN2SOCKS_BINARY

No VPN server: two UDP sockets on 127.0.0.1 stand for two servers that never answer, and each
hard reset the client sends them shows where it is connecting. vpn2socks runs with
--config client.ovpn (remote: server A) and -D.
- The .ovpn is rewritten to name server B, and SIGHUP: the client's next hard reset goes to B at
  once, vpn2socks still runs and its SOCKS listener still accepts. (openvpn does the same on
  SIGHUP: a restart on the config read again.)
- A line the parser refuses is added, and SIGHUP: the log names FILE:LINE and says the running
  session is kept; the client still sends to B, never to A; vpn2socks still runs.
- SIGTERM: exit 0.
- A packet fd (--tunnel-fd, as openconnect hands one over) without --conf: SIGHUP still means that
  the VPN client ended the session, exit 3.
Before, SIGHUP ended the OpenVPN client's process with status 3 as well.
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

HARD_RESET_CLIENT_V2 = 7
WAIT_S = 10


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


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


def write_config(path, port, extra=""):
    with open(path, "w") as f:
        f.write(f"client\ndev tun\n{extra}remote 127.0.0.1 {port} udp\nca ca.pem\nverify-x509-name server name\n")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 1
    binary = sys.argv[1]
    d = tempfile.mkdtemp(prefix="sighup_test.")
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", os.path.join(d, "ca.key"), "-out", os.path.join(d, "ca.pem"), "-days", "1",
                        "-subj", "/CN=test-ca"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"SKIP: cannot make a certificate with openssl: {e}", file=sys.stderr)
        return 77
    a, b = udp_server(), udp_server()
    conf = os.path.join(d, "client.ovpn")
    write_config(conf, a.getsockname()[1])
    port = free_port()
    log_path = os.path.join(d, "vpn2socks.log")
    log = open(log_path, "w")
    proc = subprocess.Popen([binary, "--config", conf, "-D", f"127.0.0.1:{port}", "-v"], stdout=log, stderr=log)

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
        if "reload: " + conf + " read" not in log_text():
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

        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            fail("no exit within 10 s of SIGTERM")
        if rc != 0:
            fail(f"exit status {rc} after SIGTERM, not 0:\n{log_text()}")
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
    print("ok: SIGHUP restarts the OpenVPN client on the .ovpn read again, keeps it on a bad one; a packet fd "
          "still ends on SIGHUP")
    return 0


if __name__ == "__main__":
    sys.exit(main())
