#!/usr/bin/python3
"""A reload (SIGHUP with --conf) reads the --socks-auth file again.

usage: socks_auth_reload_test.py VPN2SOCKS_BINARY

No VPN: the tunnel is one end of a socketpair (--tunnel-fd), as no login needs it. vpn2socks runs
with --conf FILE naming a SOCKS listener and socks-auth = users.txt (alice:one).
- alice:one logs in (RFC 1929); a connection is left open after its login.
- users.txt becomes alice:two and bob:three, and SIGHUP: alice:two and bob:three log in,
  alice:one is refused; the connection opened before the reload is still open (no reset).
- users.txt becomes readable by others (chmod 644), and SIGHUP: the log says why (chmod) and
  that the users are kept; alice:two still logs in.
- users.txt has a bad line, and SIGHUP: the log names users.txt:LINE; bob:three still logs in.
- SIGTERM: exit 0.
Before, the file was read once at start: after the reload alice:two was refused.
Exit 0 on success, 1 on failure (with the reason on stderr), 77 when it cannot run here.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from proclib import fail, free_port, term_exits_0

WAIT_S = 10


def write_secret(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def login(port, user, password):
    """A SOCKS5 login; returns the connection (still open) when accepted, None when refused."""
    c = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
    c.sendall(b"\x05\x01\x02")
    if c.recv(2) != b"\x05\x02":
        fail("the listener did not pick username/password authentication")
    u, p = user.encode(), password.encode()
    c.sendall(bytes([1, len(u)]) + u + bytes([len(p)]) + p)
    reply = c.recv(2)
    if reply == b"\x01\x00":
        return c
    c.close()
    return None


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 1
    binary = sys.argv[1]
    d = tempfile.mkdtemp(prefix="socks_auth_reload_test.")
    os.chmod(d, 0o700)
    users = os.path.join(d, "users.txt")
    write_secret(users, "alice:one\n")
    port = free_port()
    conf = os.path.join(d, "v.conf")
    write_secret(conf, f"socks = 127.0.0.1:{port}\nsocks-auth = users.txt\naddress = 10.255.0.2/24\n")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    log_path = os.path.join(d, "vpn2socks.log")
    log = open(log_path, "w")
    proc = subprocess.Popen([binary, "--conf", conf, "--tunnel-fd", str(theirs.fileno()), "-v"],
                            pass_fds=(theirs.fileno(),), stdout=log, stderr=log)
    theirs.close()

    def log_text():
        with open(log_path, errors="replace") as f:
            return f.read()

    def alive(what):
        if proc.poll() is not None:
            fail(f"{what}: vpn2socks exited with {proc.returncode}:\n{log_text()}")

    def logs_in(what, user, password, want):
        alive(what)
        c = login(port, user, password)
        if (c is not None) != want:
            fail(f"{what}: {user}:{password} {'refused' if want else 'let in'}:\n{log_text()}")
        if c:
            c.close()

    def reloads():
        return len(re.findall(r"reload: \d+ listeners? kept", log_text()))

    def hup_and_wait(what, text):
        """SIGHUP, then waits for the reload's last line; text must be in the log by then."""
        before = reloads()
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + WAIT_S
        while reloads() == before:
            alive(what)
            if time.monotonic() > deadline:
                fail(f"{what}: the reload did not finish within 10 s:\n{log_text()}")
            time.sleep(0.05)
        if text not in log_text():
            fail(f"{what}: not in the log after SIGHUP: {text}\n{log_text()}")

    try:
        deadline = time.monotonic() + WAIT_S
        while True:
            alive("at start")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=WAIT_S).close()
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    fail(f"vpn2socks is not listening:\n{log_text()}")
                time.sleep(0.05)
        logs_in("at start", "alice", "one", True)
        logs_in("at start", "alice", "two", False)
        held = login(port, "alice", "one")
        if held is None:
            fail("at start: alice:one refused the second time")

        write_secret(users, "alice:two\nbob:three\n")
        hup_and_wait("new users", "")
        logs_in("after the reload", "alice", "two", True)
        logs_in("after the reload", "bob", "three", True)
        logs_in("after the reload", "alice", "one", False)
        if "require one of the 2 users of" not in log_text():
            fail(f"after the reload: the log does not count the new users:\n{log_text()}")
        # The connection logged in before the reload is left alone: it still waits for a request.
        held.settimeout(0.2)
        try:
            if held.recv(1) == b"":
                fail("the connection logged in before the reload was closed by it")
            fail("the connection logged in before the reload got bytes nobody asked for")
        except socket.timeout:
            pass
        held.close()

        write_secret(users, "alice:three\n", mode=0o644)
        hup_and_wait("readable file", " are kept")
        if not any("--socks-auth" in line and "chmod" in line and "the 2 users of" in line
                   for line in log_text().splitlines()):
            fail(f"readable file: the log does not say why, nor that the users are kept:\n{log_text()}")
        logs_in("after a refused file", "alice", "two", True)
        logs_in("after a refused file", "alice", "three", False)

        write_secret(users, "carol:four\nno colon here\n")
        hup_and_wait("bad line", "users.txt:2:")
        logs_in("after a bad file", "bob", "three", True)
        logs_in("after a bad file", "carol", "four", False)

        term_exits_0(proc, log_text)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        ours.close()
        log.close()
    shutil.rmtree(d)
    print("ok: a reload applies the --socks-auth file read again, and keeps the users on a bad one")
    return 0


if __name__ == "__main__":
    sys.exit(main())
