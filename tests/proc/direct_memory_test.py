#!/usr/bin/python3
"""A direct relay holds a bounded amount of memory when the application stops reading.

usage: direct_memory_test.py VPN2SOCKS_BINARY [SEGMENTS]

vpn2socks runs without a VPN: its tunnel is one end of a socketpair nobody writes to, and
`--others direct` sends every destination directly from this host. A SOCKS5 client connects
through it to a peer on 127.0.0.1 and then reads nothing. First the peer sends bulk data until the
kernel holds all it will for the client (vpn2socks's socket toward the client and the client's own
receive queue, both read from /proc/net/tcp) and vpn2socks starts queueing in its own memory.
Then it sends SEGMENTS (default 100,000) segments of one byte each: TCP_NODELAY and one send() per
byte, so vpn2socks sees many tiny reads while the client's side cannot take them. What the relay
holds meanwhile is measured as the growth of vpn2socks's VmRSS from the end of the bulk phase, and
must stay under GROWTH_LIMIT: the relay's own bound (route/direct.c) is about 1 MiB per direction.
While that bound counted bytes read instead of memory allocated (64 KiB per read), this grew the
process by tens of MB. Then the client reads: every byte must arrive, in order, followed by EOF.

Nothing here asserts a timing. Waits have generous deadlines only so that a hang is reported as a
failure; the measurement is taken once the relay has settled (the peer has sent everything and
vpn2socks has read it all, or nothing moved for a while: the relay stopped reading).
Exit 0 on success, 1 on failure (with the reason on stderr), 77 when it cannot run here.
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from proclib import fail, free_port

MiB = 1024 * 1024
GROWTH_LIMIT = 4 * MiB
BULK_CHUNK = 16 * 1024
BULK_MAX = 64 * MiB     # the kernel holds a few MiB at most; past this the setup is broken
DEADLINE_S = 300        # for each wait: a hang, not a timing
SETTLED_SAMPLES = 20    # nothing moved for this many samples in a row...
SAMPLE_S = 0.1          # ...taken this far apart
CLIENT_RCVBUF = 4096
PERIOD = 251            # byte i of the stream is i % 251: a lost, repeated or reordered byte shows
CYCLE = bytes(range(PERIOD)) * (BULK_CHUNK // PERIOD + 2)


def stream_bytes(off, n):
    """Bytes off .. off + n - 1 of the stream; n <= BULK_CHUNK."""
    return CYCLE[off % PERIOD:off % PERIOD + n]


def vm_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    fail(f"no VmRSS for pid {pid}")


def tcp_queues(local_port, remote_port):
    """(tx_queue, rx_queue) of the socket 127.0.0.1:local_port -> 127.0.0.1:remote_port: bytes
    written but not yet acked, and bytes arrived but not yet read."""
    want_l = f"0100007F:{local_port:04X}"
    want_r = f"0100007F:{remote_port:04X}"
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == want_l and fields[2] == want_r:
                tx, rx = fields[4].split(":")
                return int(tx, 16), int(rx, 16)
    fail(f"no socket 127.0.0.1:{local_port} -> 127.0.0.1:{remote_port} in /proc/net/tcp")


def recv_exact(s, n, what):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            fail(f"{what}: connection closed after {buf.hex() or 'nothing'}")
        buf += chunk
    return buf


def socks_connect(proxy_port, port):
    c = socket.socket()
    # Set before connect, so that the window the client advertises stays small.
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)
    c.settimeout(30)
    c.connect(("127.0.0.1", proxy_port))
    c.sendall(b"\x05\x01\x00")
    if recv_exact(c, 2, "method selection") != b"\x05\x00":
        fail("method selection refused")
    c.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", port))
    rep = recv_exact(c, 10, "CONNECT reply")
    if rep[1] != 0:
        fail(f"CONNECT 127.0.0.1:{port}: reply 0x{rep[1]:02x}")
    return c


class Trickle(threading.Thread):
    """Sends bytes off .. off + n - 1 of the stream one send() each, then half-closes."""

    def __init__(self, conn, off, n):
        super().__init__(daemon=True)
        self.conn = conn
        self.off = off
        self.n = n
        self.sent = 0
        self.error = None

    def run(self):
        try:
            for i in range(self.n):
                self.conn.send(stream_bytes(self.off + i, 1))
                self.sent = i + 1
            self.conn.shutdown(socket.SHUT_WR)
        except OSError as e:
            self.error = e


class Relay:
    """vpn2socks with a SOCKS5 listener, a silent tunnel and every destination direct."""

    def __init__(self, binary):
        self.port = free_port()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.tunnel = ours  # kept open: a closed tunnel would end the process
        self.log = tempfile.NamedTemporaryFile(prefix="direct_memory_test.", suffix=".log", delete=False)
        cmd = [binary, "--tunnel-fd", str(theirs.fileno()), "--address", "10.255.0.2/24",
               "--others", "direct", "--allow-direct-local", "-D", f"127.0.0.1:{self.port}", "-v"]
        self.proc = subprocess.Popen(cmd, pass_fds=(theirs.fileno(),), stdout=self.log, stderr=self.log)
        theirs.close()

    def log_tail(self):
        with open(self.log.name, errors="replace") as f:
            return "".join(f.readlines()[-15:])

    def check_alive(self):
        if self.proc.poll() is not None:
            fail(f"vpn2socks exited with {self.proc.returncode}:\n{self.log_tail()}")

    def wait_listening(self):
        deadline = time.monotonic() + DEADLINE_S
        while True:
            self.check_alive()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    fail(f"vpn2socks is not listening on 127.0.0.1:{self.port}:\n{self.log_tail()}")
                time.sleep(0.05)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(DEADLINE_S)
        except subprocess.TimeoutExpired:
            fail("vpn2socks did not exit on SIGTERM")
        if rc != 0:
            fail(f"vpn2socks exited with {rc} on SIGTERM:\n{self.log_tail()}")

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.unlink(self.log.name)


def wait_until(what, cond):
    deadline = time.monotonic() + DEADLINE_S
    while not cond():
        if time.monotonic() > deadline:
            fail(f"{what}: nothing after {DEADLINE_S} s")
        time.sleep(0.01)


def run(relay, n):
    peer = socket.socket()
    peer.bind(("127.0.0.1", 0))
    peer.listen(1)
    peer_port = peer.getsockname()[1]
    relay.wait_listening()
    client = socks_connect(relay.port, peer_port)
    client_port = client.getsockname()[1]
    peer.settimeout(30)
    conn, _ = peer.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    relay_port = conn.getpeername()[1]  # vpn2socks's socket toward the peer

    # Bulk until vpn2socks holds bytes in its own queue: the kernel between it and the client is full.
    sent = 0
    while True:
        conn.sendall(stream_bytes(sent, BULK_CHUNK))
        sent += BULK_CHUNK
        wait_until("vpn2socks reading the bulk data", lambda: tcp_queues(relay_port, peer_port)[1] == 0)
        in_kernel = tcp_queues(relay.port, client_port)[0] + tcp_queues(client_port, relay.port)[1]
        if sent - in_kernel >= BULK_CHUNK:
            break
        if sent >= BULK_MAX:
            fail(f"{sent} bytes sent and the kernel still takes them all for the client")
        relay.check_alive()
    rss0 = vm_rss(relay.proc.pid)
    print(f"bulk: {sent} bytes, {in_kernel} held by the kernel toward the client, "
          f"{sent - in_kernel} queued in vpn2socks; VmRSS {rss0 / MiB:.1f} MiB")

    trickle = Trickle(conn, sent, n)
    trickle.start()
    peak = rss0
    last = None
    still = 0
    deadline = time.monotonic() + DEADLINE_S
    while True:
        time.sleep(SAMPLE_S)
        relay.check_alive()
        rss = vm_rss(relay.proc.pid)
        peak = max(peak, rss)
        unread = tcp_queues(relay_port, peer_port)[1]
        if trickle.error:
            fail(f"the peer's send failed after {trickle.sent} segments: {trickle.error}")
        if trickle.sent == n and unread == 0:
            break  # vpn2socks took everything
        now = (trickle.sent, unread, rss)
        still = still + 1 if now == last else 0
        last = now
        if still >= SETTLED_SAMPLES:
            break  # vpn2socks stopped reading and the peer is blocked or done
        if time.monotonic() > deadline:
            fail(f"no settling within {DEADLINE_S} s: sent {trickle.sent}, unread {unread}")
    growth = peak - rss0
    print(f"trickle: {trickle.sent} one-byte segments sent, {unread} bytes left unread by vpn2socks; "
          f"VmRSS peak {peak / MiB:.1f} MiB, growth {growth / MiB:.2f} MiB (limit {GROWTH_LIMIT / MiB:.0f} MiB)")
    if growth >= GROWTH_LIMIT:
        fail(f"vpn2socks grew by {growth / MiB:.2f} MiB holding bytes for a client that does not read")

    # The client reads now: every byte, in order, then EOF.
    total = sent + n
    client.settimeout(60)
    got = 0
    while True:
        try:
            chunk = client.recv(BULK_CHUNK)
        except socket.timeout:
            fail(f"the client stalled after {got} of {total} bytes")
        if not chunk:
            break
        if got + len(chunk) > total:
            fail(f"more than the {total} bytes sent arrived")
        if chunk != stream_bytes(got, len(chunk)):
            bad = next(i for i in range(len(chunk)) if chunk[i] != (got + i) % PERIOD)
            fail(f"byte {got + bad}: 0x{chunk[bad]:02x}, expected 0x{(got + bad) % PERIOD:02x}")
        got += len(chunk)
    if got != total:
        fail(f"EOF after {got} of {total} bytes")
    trickle.join(DEADLINE_S)
    if trickle.error or trickle.sent != n:
        fail(f"the peer sent {trickle.sent} of {n} segments ({trickle.error})")
    print(f"all {total} bytes arrived in order, then EOF")
    client.close()
    conn.close()
    peer.close()


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 1
    if not os.path.exists("/proc/self/status") or not os.path.exists("/proc/net/tcp"):
        print("direct_memory_test: needs Linux's /proc; skipped", file=sys.stderr)
        return 77
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    relay = Relay(sys.argv[1])
    try:
        run(relay, n)
        relay.stop()
    finally:
        relay.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
