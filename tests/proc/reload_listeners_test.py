#!/usr/bin/python3
"""A reload (SIGHUP with --conf) that cannot start a listener changes nothing.

usage: reload_listeners_test.py VPN2SOCKS_BINARY

No VPN: the tunnel is one end of a socketpair (--tunnel-fd). vpn2socks runs with --conf FILE:
a SOCKS listener on port S and a forward on port F.
- Another process listens on port T, and the file moves the SOCKS listener from S to T and adds a
  forward on port G: SIGHUP. The log names T's listener, says why (address already in use) and
  that the running configuration is kept; S still answers a SOCKS greeting, F still accepts, G
  does not listen.
- The file moves the SOCKS listener from 127.0.0.1:S to 0.0.0.0:S, which must wait for the close
  of S and then fails, as another process holds 127.0.0.2:S: SIGHUP, the log says why, and S (on
  127.0.0.1) answers again.
- The forward on F gets another destination (the same port, so the old one must close before the
  new one binds): SIGHUP, and F accepts. vpn2socks runs at the default log level (warnings), and
  the reload logs one line, its summary, at info priority: at that level a successful reload
  logged nothing at all, and the operator could not tell it happened.
- The other process lets T go, and SIGHUP with the file moving SOCKS to T: T answers, S refuses.
- SIGTERM: exit 0.
Before, the reload closed S first and then failed to bind T: nothing listened for SOCKS at all
until another reload, and the rest of the reload went on.
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


def write_conf(path, socks, forward, extra="", socks_host="127.0.0.1"):
    with open(path, "w") as f:
        f.write(f"socks = {socks_host}:{socks}\nlocal = 127.0.0.1:{forward}\naddress = 10.255.0.2/24\n{extra}")
    os.chmod(path, 0o600)


def refused(port):
    """Whether nothing listens on port. A forward accepts and then resets at once, as its
    destination (127.0.0.1 through the tunnel) cannot be reached: when the reset comes before
    connect() has returned, connect() fails with ECONNRESET, which still means a listener."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=WAIT_S).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        return False
    return False


def socks_answers(port):
    """Whether a SOCKS5 greeting on port gets its method choice."""
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
        c.sendall(b"\x05\x01\x00")
        ok = c.recv(2) == b"\x05\x00"
        c.close()
        return ok
    except OSError:
        return False


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 1
    binary = sys.argv[1]
    d = tempfile.mkdtemp(prefix="reload_listeners_test.")
    s_port, t_port, f_port, g_port = free_port(), free_port(), free_port(), free_port()
    conf = os.path.join(d, "v.conf")
    write_conf(conf, s_port, f"{f_port}:127.0.0.1:9")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    log_path = os.path.join(d, "vpn2socks.log")
    log = open(log_path, "w")
    # The default log level (warnings), as an operator runs it: the reload's summary must show.
    proc = subprocess.Popen([binary, "--conf", conf, "--tunnel-fd", str(theirs.fileno())],
                            pass_fds=(theirs.fileno(),), stdout=log, stderr=log)
    theirs.close()
    holder = socket.socket()
    holder.bind(("127.0.0.1", t_port))
    holder.listen()

    def log_text():
        with open(log_path, errors="replace") as f:
            return f.read()

    def alive(what):
        if proc.poll() is not None:
            fail(f"{what}: vpn2socks exited with {proc.returncode}:\n{log_text()}")

    def reload_ends():
        return len(re.findall(r"reload: \d+ listeners? kept|the running configuration is kept", log_text()))

    def hup_and_wait(what):
        """SIGHUP, and the log lines the reload wrote, once it ended."""
        before = reload_ends()
        seen = len(log_text().splitlines())
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + WAIT_S
        while reload_ends() == before:
            alive(what)
            if time.monotonic() > deadline:
                fail(f"{what}: the reload did not finish within 10 s:\n{log_text()}")
            time.sleep(0.05)
        alive(what)
        return log_text().splitlines()[seen:]

    try:
        deadline = time.monotonic() + WAIT_S
        while not socks_answers(s_port):
            alive("at start")
            if time.monotonic() > deadline:
                fail(f"the SOCKS listener does not answer:\n{log_text()}")
            time.sleep(0.05)

        write_conf(conf, t_port, f"{f_port}:127.0.0.1:9", f"local = 127.0.0.1:{g_port}:127.0.0.1:9\n")
        lines = hup_and_wait("T held by another process")
        if not any(f"127.0.0.1:{t_port}" in line and "address already in use" in line
                   and "the running configuration is kept" in line for line in lines):
            fail(f"T held: no line names T's listener, why, and that the running configuration is kept:\n"
                 f"{log_text()}")
        if not socks_answers(s_port):
            fail(f"T held: the SOCKS listener on S no longer answers (nothing listens for SOCKS):\n{log_text()}")
        if refused(f_port):
            fail(f"T held: the forward on F no longer listens:\n{log_text()}")
        if not refused(g_port):
            fail(f"T held: the forward on G, added by the failed reload, listens:\n{log_text()}")

        # S closes before 0.0.0.0:S binds, which fails as another process holds 127.0.0.2:S
        # (no listener on 0.0.0.0 ever exists): the listener on 127.0.0.1:S starts again.
        other = socket.socket()
        other.bind(("127.0.0.2", s_port))
        other.listen()
        write_conf(conf, s_port, f"{f_port}:127.0.0.1:9", socks_host="0.0.0.0")
        lines = hup_and_wait("0.0.0.0:S with 127.0.0.2:S held")
        other.close()
        if not any(f"0.0.0.0:{s_port}" in line and "address already in use" in line
                   and "the running configuration is kept" in line for line in lines):
            fail(f"0.0.0.0:S: no line names the listener, why, and that the running configuration is kept:\n"
                 f"{log_text()}")
        if not socks_answers(s_port):
            fail(f"0.0.0.0:S: the SOCKS listener on 127.0.0.1:S did not start again:\n{log_text()}")

        write_conf(conf, s_port, f"{f_port}:127.0.0.1:10")
        lines = hup_and_wait("F to another destination")
        # One line, at info priority, though the level shows warnings: it showed nothing before.
        if len(lines) != 1 or " info: reload: 1 listener kept, 1 started, 1 closed" not in lines[0]:
            fail(f"F to another destination: the log is not one summary line (1 kept, 1 started, 1 closed):\n"
                 f"{log_text()}")
        if refused(f_port):
            fail(f"F to another destination: the forward on F does not listen:\n{log_text()}")

        holder.close()
        write_conf(conf, t_port, f"{f_port}:127.0.0.1:10")
        lines = hup_and_wait("T free")
        if not socks_answers(t_port):
            fail(f"T free: the SOCKS listener on T does not answer:\n{log_text()}")
        if not refused(s_port):
            fail(f"T free: S still listens:\n{log_text()}")

        term_exits_0(proc, log_text)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        holder.close()
        ours.close()
        log.close()
    shutil.rmtree(d)
    print("ok: a reload that cannot bind a listener keeps every running one; a forward moves on its own port")
    return 0


if __name__ == "__main__":
    sys.exit(main())
