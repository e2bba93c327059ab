#!/usr/bin/python3
"""Hostile packets from the tunnel are dropped, counted by reason, and harm nothing else.

usage: hostile_packets_test.py VPN2SOCKS_BINARY

vpn2socks runs without a VPN: its tunnel is one end of a socketpair (--tunnel-fd), and this
script is the VPN side. It plays a TCP server at 10.255.0.1:80 by hand: a SOCKS5 client connects
through vpn2socks, the script answers the SYN and moves a few KiB each way. Between those steps
it writes malformed and forged packets into the tunnel: bad IP versions, header and total
lengths, truncated headers, bad IP and TCP checksums, an unknown protocol, forged ICMP errors,
an IPv6 packet longer than it says, a datagram longer than any IP packet, and segments for
connections that do not exist. Then:
- the real connection's bytes arrive intact both ways and it closes cleanly;
- vpn2socks still runs, and on SIGUSR1 logs the drops by reason (the figures asserted are lower
  bounds: each kind written must be counted where lwIP counts it);
- it exits 0 on SIGTERM.
Exit 0 on success, 1 on failure (with the reason on stderr), 77 when it cannot run here.
"""
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from proclib import fail

OURS = bytes([10, 255, 0, 1])   # the VPN side: the server this script plays
THEIRS = bytes([10, 255, 0, 2])  # vpn2socks's tunnel address
PORT = 80
DEADLINE_S = 20


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(proto, payload, src=OURS, dst=THEIRS, ident=1):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0, 64, proto, 0, src, dst)
    return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + payload


def tcp(sport, dport, seq, ack, flags, data=b"", win=65535, src=OURS, dst=THEIRS, bad_sum=False):
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, win, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(hdr) + len(data))
    s = csum(pseudo + hdr + data) ^ (0x1234 if bad_sum else 0)
    return hdr[:16] + struct.pack("!H", s) + hdr[18:] + data


def parse(pkt):
    """(flags, seq, ack, sport, dport, payload) of a TCP/IPv4 packet from vpn2socks, else None."""
    if len(pkt) < 40 or pkt[0] >> 4 != 4 or pkt[9] != 6:
        return None
    ihl = (pkt[0] & 0x0F) * 4
    total = struct.unpack("!H", pkt[2:4])[0]
    t = pkt[ihl:total]
    sport, dport, seq, ack, off, flags = struct.unpack("!HHIIBB", t[:14])
    return flags, seq, ack, sport, dport, t[(off >> 4) * 4:]


class Tunnel:
    def __init__(self, sock):
        self.sock = sock

    def send(self, pkt):
        self.sock.send(pkt)

    def expect(self, want, what):
        """Reads packets until want(parsed) is true; returns that one."""
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.sock], [], [], 0.5)
            if not r:
                continue
            p = parse(self.sock.recv(65536))
            if p and want(p):
                return p
        fail(f"no {what} from vpn2socks within {DEADLINE_S} s")


def garbage(sport, seq, ack):
    """Every hostile packet, with the lwIP counter that must see it ('' for none asserted)."""
    good_tcp = tcp(PORT, sport, seq, ack, 0x10)
    out = []
    out.append((b"", ""))                                      # empty datagram
    out.append((b"\x45", ""))                                  # one byte
    out.append((bytes([0x55]) + ipv4(6, good_tcp)[1:], ""))    # version 5
    p = bytearray(ipv4(6, good_tcp)); p[0] = 0x44              # IHL 16 bytes
    out.append((bytes(p), "ip.lenerr"))
    p = bytearray(ipv4(6, good_tcp)); p[2:4] = struct.pack("!H", 1500)  # longer than sent
    out.append((bytes(p), "ip.lenerr"))
    p = bytearray(ipv4(6, good_tcp)); p[0] = 0x4F             # IHL 60 bytes > total length
    out.append((bytes(p), "ip.lenerr"))
    out.append((ipv4(6, good_tcp)[:30], "ip.lenerr"))          # cut inside the TCP header
    p = bytearray(ipv4(6, good_tcp)); p[10] ^= 0xFF            # bad IP checksum
    out.append((bytes(p), "ip.chkerr"))
    out.append((ipv4(6, tcp(PORT, sport, seq, ack, 0x18, b"evil", bad_sum=True)), "tcp.chkerr"))
    out.append((ipv4(253, b"\0" * 32), "ip.proterr"))          # a protocol nobody speaks
    out.append((ipv4(6, tcp(PORT, 1, 12345, 0, 0x10)), ""))    # a connection that does not exist
    p = bytearray(ipv4(6, good_tcp)); p[9] = 6; p = p[:20] + b"\x00\x50"  # 2 bytes of TCP
    p[2:4] = struct.pack("!H", len(p)); p[10:12] = b"\0\0"; p[10:12] = struct.pack("!H", csum(bytes(p[:20])))
    out.append((bytes(p), "tcp.lenerr"))
    # forged ICMP port unreachables quoting the real connection with wrong sequence numbers
    for bad_seq in (seq + 1, seq ^ 0x80000000):
        inner = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 60, 0, 0, 64, 6, 0, THEIRS, OURS)
        inner += struct.pack("!HHI", sport, PORT, bad_seq)
        icmp = struct.pack("!BBHI", 3, 3, 0, 0) + inner
        icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
        out.append((ipv4(1, icmp), "icmp_ignored"))
    # IPv6 whose payload length says more than the datagram holds, and a bare version nibble
    v6 = struct.pack("!IHBB16s16s", 6 << 28, 4000, 6, 64, b"\xfd" + b"\0" * 15, b"\xfd" + b"\0" * 14 + b"\2")
    out.append((v6 + b"\0" * 20, ""))
    out.append((b"\x60" + b"\0" * 10, ""))
    # a datagram longer than any IP packet, starting as a real one: dropped whole (its first
    # 65535 bytes went to the stack as a packet)
    out.append((ipv4(6, good_tcp) + b"\0" * 70000, ""))
    # a flood of the same: 2,000 packets with random bytes after a plausible first byte
    for i in range(2000):
        out.append((b"\x45" + os.urandom(19 + i % 200), ""))
    return out


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 1
    binary = sys.argv[1]
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    tun = Tunnel(ours)
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    log = tempfile.NamedTemporaryFile(prefix="hostile_packets_test.", suffix=".log", delete=False)
    cmd = [binary, "--tunnel-fd", str(theirs.fileno()), "--address", "10.255.0.2/24", "--others", "tunnel",
           "-D", f"127.0.0.1:{port}", "-v"]
    proc = subprocess.Popen(cmd, pass_fds=(theirs.fileno(),), stdout=log, stderr=log)
    theirs.close()

    def log_text():
        with open(log.name, errors="replace") as f:
            return f.read()

    try:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            if proc.poll() is not None:
                fail(f"vpn2socks exited with {proc.returncode}:\n{log_text()}")
            try:
                c = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S)
                break
            except OSError:
                if time.monotonic() > deadline:
                    fail("vpn2socks is not listening")
                time.sleep(0.05)
        c.sendall(b"\x05\x01\x00")
        if c.recv(2) != b"\x05\x00":
            fail("SOCKS greeting refused")
        c.sendall(b"\x05\x01\x00\x01" + OURS + struct.pack("!H", PORT))
        flags, seq, _, sport, _, _ = tun.expect(lambda p: p[0] & 0x02 and p[4] == PORT, "SYN")
        iss = 0x10000000
        their = seq + 1
        # garbage before the handshake completes, then the SYN-ACK
        for pkt, _ in garbage(sport, iss + 1, their):
            tun.send(pkt)
        tun.send(ipv4(6, tcp(PORT, sport, iss, their, 0x12)))
        reply = c.recv(10)
        if len(reply) < 2 or reply[1] != 0:
            fail(f"SOCKS CONNECT failed: {reply!r}\n{log_text()}")
        mine = iss + 1
        # the client's bytes reach the server intact, through more garbage
        up = os.urandom(3000)
        c.sendall(up)
        got = b""
        while len(got) < len(up):
            p = tun.expect(lambda p: p[3] == sport and len(p[5]) > 0, "data from the client")
            if p[1] == their:
                got += p[5]
                their += len(p[5])
                tun.send(ipv4(6, tcp(PORT, sport, mine, their, 0x10)))
        if got != up:
            fail("the client's bytes arrived changed")
        for pkt, _ in garbage(sport, mine, their):
            tun.send(pkt)
        # the server's bytes reach the client intact, then FIN both ways
        down = os.urandom(4000)
        for i in range(0, len(down), 1000):
            tun.send(ipv4(6, tcp(PORT, sport, mine + i, their, 0x18, down[i:i + 1000])))
        mine += len(down)
        tun.send(ipv4(6, tcp(PORT, sport, mine, their, 0x11)))
        c.settimeout(DEADLINE_S)
        rx = b""
        while True:
            b = c.recv(65536)
            if not b:
                break
            rx += b
        if rx != down:
            fail(f"the server's bytes arrived changed ({len(rx)} of {len(down)})")
        c.close()
        tun.expect(lambda p: p[0] & 0x01 and p[3] == sport, "FIN")
        if proc.poll() is not None:
            fail(f"vpn2socks exited with {proc.returncode}:\n{log_text()}")
        # the counts, on SIGUSR1
        proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + DEADLINE_S
        line = None
        while line is None and time.monotonic() < deadline:
            m = re.search(r"stack: from the tunnel .*", log_text())
            line = m.group(0) if m else None
            time.sleep(0.1)
        if line is None:
            fail(f"no statistics line after SIGUSR1:\n{log_text()}")
        print(f"after SIGUSR1: {line}")
        kinds = {}
        for _, k in garbage(sport, 0, 0):
            if k:
                kinds[k] = kinds.get(k, 0) + 2  # each kind was written twice
        m = re.search(r"IPv4 \d+ dropped \((\d+) bad checksum, (\d+) bad length, (\d+) not taken by protocol", line)
        t = re.search(r"TCP \d+ dropped \((\d+) bad checksum, (\d+) bad length", line)
        ic = re.search(r"(\d+) ICMP errors ignored", line)
        if not m or not t or not ic:
            fail(f"the statistics line lacks IPv4, TCP or ICMP figures: {line}")
        have = {"ip.chkerr": int(m.group(1)), "ip.lenerr": int(m.group(2)), "ip.proterr": int(m.group(3)),
                "tcp.chkerr": int(t.group(1)), "tcp.lenerr": int(t.group(2)), "icmp_ignored": int(ic.group(1))}
        for k, n in kinds.items():
            if have[k] < n:
                fail(f"{k}: {have[k]} counted, at least {n} written: {line}")
            print(f"ok: {k} counted {have[k]} (at least {n} written)")
        if "packet fd: a datagram longer than 65535 bytes" not in log_text():
            fail(f"no line for the datagram longer than any IP packet:\n{log_text()}")
        print("ok: the datagram longer than any IP packet dropped, with its line")
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(DEADLINE_S)
        except subprocess.TimeoutExpired:
            fail("vpn2socks did not exit on SIGTERM")
        if rc != 0:
            fail(f"vpn2socks exited with {rc} on SIGTERM:\n{log_text()}")
        print("PASS: hostile packets dropped and counted; the connection beside them intact both ways")
        return 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.unlink(log.name)


if __name__ == "__main__":
    sys.exit(main())
