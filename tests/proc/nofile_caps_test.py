#!/usr/bin/python3
"""A low open files limit: the default connection caps are lowered, and the operator is told at
start, at the default log level, with the caps it leaves and what raises them.

usage: nofile_caps_test.py VPN2SOCKS_BINARY

vpn2socks runs with -D under a hard open files limit of 200. Each SOCKS connection may hold four
descriptors and 128 are kept for the rest, so the caps come to (200 - 128) / 4 = 18 connections.
- stderr, without -v, has the warning naming the limit (200) and both caps (18).
  Before, this was an info line, shown only with -v: the first the operator heard of the caps was
  the refusals.
- The caps are the ones it names: 18 connections are held open and the 19th is reset at once.
No VPN server: the .ovpn names a port nothing answers on (the SOCKS listener accepts all the same).
Exit 0 on success, 1 on failure (with the reason on stderr), 77 when it cannot run here.
"""
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

from proclib import fail, free_port

OVPN = (
    "client\ndev tun\nproto udp\nremote 127.0.0.1 9\nauth-user-pass\n"
    "peer-fingerprint " + ":".join(["AB"] * 32) + "\n"
)
LIMIT = 200
CAP = (LIMIT - 128) // 4


def low_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def read_until(stream, want, seconds):
    """stderr read for up to seconds: what came, once it holds want (or the time is up)."""
    got = ""
    deadline = time.monotonic() + seconds
    while want not in got:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([stream], [], [], left)[0]:
            break
        chunk = os.read(stream.fileno(), 65536).decode(errors="replace")
        if not chunk:
            break
        got += chunk
    return got


def wait_listening(port, seconds):
    """Whether 127.0.0.1:port is listening within seconds, from /proc/net/tcp (a probe connection
    would take one of the connections the test counts). The warning comes before the listeners
    open, so the test waits for this too."""
    want = "0100007F:%04X" % port
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1] == want and fields[3] == "0A":
                    return True
        time.sleep(0.02)
    return False


def refused_at_once(port):
    """Whether a new connection to port is closed or reset without waiting for a request.
    The reset can come before connect() has returned: with a timeout the socket does not block,
    and the RST may already be there when the connect's result is read."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except ConnectionResetError:
        return True
    try:
        s.settimeout(3)
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    finally:
        s.close()


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        print("usage: nofile_caps_test.py VPN2SOCKS_BINARY", file=sys.stderr)
        return 77
    with tempfile.TemporaryDirectory() as d:
        ovpn = os.path.join(d, "client.ovpn")
        with open(ovpn, "w") as f:
            f.write(OVPN)
        up = os.path.join(d, "up")
        with open(up, "w") as f:
            f.write("user\npassword\n")
        os.chmod(ovpn, 0o600)
        os.chmod(up, 0o600)
        port = free_port()
        p = subprocess.Popen([sys.argv[1], "--config", ovpn, "--auth-user-pass", up, "-D", f"127.0.0.1:{port}"],
                             stderr=subprocess.PIPE, preexec_fn=low_limit)
        held = []
        try:
            err = read_until(p.stderr, "per listener", 5)
            if f"open files limit {LIMIT}" not in err or f"lowered to {CAP} connections in all, {CAP} per" not in err:
                fail(f"no warning of the lowered caps at the default log level; stderr: {err!r}")
            if not wait_listening(port, 5):
                fail(f"the SOCKS listener on 127.0.0.1:{port} did not open; stderr: {err!r}")
            for i in range(CAP):
                held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            time.sleep(0.3)
            last = held[-1]
            last.settimeout(0.5)
            try:
                if last.recv(1) == b"":
                    fail(f"connection {CAP} was closed: the caps are below the {CAP} the warning names")
            except socket.timeout:
                pass  # still open, waiting for its SOCKS greeting, as it should
            except ConnectionResetError:
                fail(f"connection {CAP} was reset: the caps are below the {CAP} the warning names")
            if not refused_at_once(port):
                fail(f"connection {CAP + 1} was not refused: the caps are not the {CAP} the warning names")
        finally:
            for s in held:
                s.close()
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
