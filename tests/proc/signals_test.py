#!/usr/bin/python3
"""What the signals an operator sends do to a running vpn2socks.

usage: signals_test.py VPN2SOCKS_BINARY

vpn2socks runs on a packet fd (a socketpair stands in for the tunnel) with a SOCKS listener, at
the default log level, as an operator runs it. Each row sends one signal and checks what follows:
- SIGUSR1: the counters are logged (the "metrics:" lines) and vpn2socks keeps running. They are
  info lines, and the default level shows warnings: the signal printed nothing until -v;
- SIGUSR2: the same, as openvpn's SIGUSR2 logs its statistics. It had no handler, so its default
  action ended the process at once, without a line in the log: an OpenVPN user asking for the
  statistics as openvpn's manual says killed the proxy;
- SIGTERM: exit 0.
Exit 0 on success, 1 on failure (with the reason on stderr), 77 when it cannot run here.
"""
import os
import select
import signal
import socket
import subprocess
import sys
import time

from proclib import fail, free_port

WAIT_S = 10


class Log:
    """vpn2socks's stderr, read from the pipe itself: a buffered reader hides lines from select."""

    def __init__(self, fd):
        self.fd = fd
        self.seen = b""

    def wait(self, text, seconds):
        """Reads until text is logged after the last call's text (True), or time or the log ends."""
        deadline = time.monotonic() + seconds
        while text.encode() not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return False
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return False
            self.seen += chunk
        self.seen = self.seen[self.seen.index(text.encode()) + len(text):]
        return True


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        print("usage: signals_test.py VPN2SOCKS_BINARY", file=sys.stderr)
        return 77
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    port = free_port()
    p = subprocess.Popen(
        [sys.argv[1], "--tunnel-fd", str(theirs.fileno()), "--address", "10.9.0.2",
         "-D", f"127.0.0.1:{port}"],
        pass_fds=(theirs.fileno(),), stderr=subprocess.PIPE)
    theirs.close()
    log = Log(p.stderr.fileno())
    try:
        # The signal handlers are in place before any listener starts.
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=WAIT_S).close()
                break
            except ConnectionRefusedError:
                if p.poll() is not None or time.monotonic() > deadline:
                    fail("no SOCKS listener started")
                time.sleep(0.05)
        for sig in (signal.SIGUSR1, signal.SIGUSR2):
            p.send_signal(sig)
            # The last of the metrics lines, once per signal.
            if not log.wait("metrics: vpn2socks_stack_held_bytes", WAIT_S):
                try:
                    rc = p.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    rc = "none: still running"
                fail(f"{sig.name}: no metrics logged (exit status {rc})")
            if p.poll() is not None:
                fail(f"{sig.name}: vpn2socks ended, status {p.returncode}")
            socket.create_connection(("127.0.0.1", port), timeout=WAIT_S).close()
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=WAIT_S)
        if rc != 0:
            fail(f"SIGTERM: exit status {rc}, expected 0")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        ours.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
