#!/usr/bin/python3
"""Under an openconnect that sets no VPNPID (before 9.0), vpn2socks watches its parent when that is
openconnect, and stops with status 3 when it ends, even killed (no SIGHUP then).

usage: openconnect_parent_test.py VPN2SOCKS_BINARY

An idle tunnel shows nothing of openconnect's end: a datagram packet fd gives no EOF, and a killed
openconnect hangs up nobody. Before, vpn2socks ran on and held its port.
- A copy of /bin/sh named openconnect starts vpn2socks as openconnect does its script (VPNFD, the
  tunnel's settings, no VPNPID) and waits; it is killed with SIGKILL: vpn2socks exits with 3.
- The same under a parent of another name (a wrapper script that ended): vpn2socks runs on.
This test is the subreaper of what it starts, so that it gets vpn2socks's exit status.
Exit 0 on success, 1 on failure (with the reason on stderr), 77 when it cannot run here.
"""
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from proclib import fail, free_port

PR_SET_CHILD_SUBREAPER = 36
EXIT_TUNNEL_LOST = 3


def listening(port):
    """Whether 127.0.0.1:port is in LISTEN, from /proc/net/tcp."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        return any(line.split()[1] == want and line.split()[3] == "0A" for line in f.readlines()[1:])


def children(pid):
    """The pids whose parent is pid."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                out.append(int(d))
    return out


def start_under(parent_name, binary, tmp):
    """vpn2socks started by a shell named parent_name, as openconnect starts its script: (shell,
    vpn2socks's pid, SOCKS port, our end of the packet socket)."""
    shell = os.path.join(tmp, parent_name)
    shutil.copy("/bin/sh", shell)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "VPNPID"}
    env.update({"VPNFD": str(theirs.fileno()), "reason": "connect", "INTERNAL_IP4_ADDRESS": "10.7.0.2",
                "INTERNAL_IP4_MTU": "1400", "VPNGATEWAY": "192.0.2.1"})
    p = subprocess.Popen([shell, "-c", '"$0" -D 127.0.0.1:"$1" & wait', binary, str(port)], env=env,
                         pass_fds=[theirs.fileno()], stderr=subprocess.DEVNULL)
    theirs.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not listening(port):
        time.sleep(0.02)
    kids = children(p.pid)
    if not listening(port) or len(kids) != 1:
        p.kill()
        fail(f"vpn2socks under {parent_name} did not start (children {kids})")
    return p, kids[0], port, ours


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        print("usage: openconnect_parent_test.py VPN2SOCKS_BINARY", file=sys.stderr)
        return 77
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        # openconnect killed: no SIGHUP, no VPNPID; the parent watch ends vpn2socks
        p, v2s, port, ours = start_under("openconnect", sys.argv[1], tmp)
        p.kill()
        p.wait()
        status = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pid, st = os.waitpid(v2s, os.WNOHANG)
            if pid == v2s:
                status = st
                break
            time.sleep(0.05)
        if status is None:
            os.kill(v2s, signal.SIGKILL)
            os.waitpid(v2s, 0)
            fail("vpn2socks still ran 10 s after its parent openconnect was killed")
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != EXIT_TUNNEL_LOST:
            fail(f"vpn2socks ended with wait status {status:#x}, not exit {EXIT_TUNNEL_LOST}")
        ours.close()

        # a parent of another name (a wrapper that ended) is not the VPN client: vpn2socks runs on
        p, v2s, port, ours = start_under("wrapper", sys.argv[1], tmp)
        p.kill()
        p.wait()
        time.sleep(1.5)
        pid, st = os.waitpid(v2s, os.WNOHANG)
        if pid == v2s:
            fail(f"vpn2socks ended (wait status {st:#x}) when a parent not named openconnect ended")
        os.kill(v2s, signal.SIGTERM)
        os.waitpid(v2s, 0)
        ours.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
