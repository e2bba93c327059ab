#!/usr/bin/python3
"""A stand-in for vpn2socks under `openconnect --script-tun --script`, to test the lab itself.

usage: probe_tun.py [--ignore-hup] OUTDIR [TIMEOUT_S]

Writes into OUTDIR:
  env.txt     every environment variable openconnect gave (sorted, NAME=VALUE)
  sock.txt    what VPNFD is: family, type, and the process's parent
  events.txt  one line per event, flushed at once:
              "icmp-ok seq N <rtt> ms"  an echo reply from 10.99.0.1 came back through VPNFD
              "icmp-timeout seq N"      none within 10 s
              "write-error <errno>"     writing VPNFD failed (pings stop then)
              "packet <summary>"        any other packet read from VPNFD
              "eof" / "read-error <e>"  reading VPNFD ended
              "signal <name>"           the probe got a signal
              "reparented <ppid>"       its parent changed (openconnect died, fd may live on)
              "exit <reason>"           last line
Every second it sends an ICMP echo request from INTERNAL_IP4_ADDRESS to 10.99.0.1 (PROBE_TARGET
overrides) into VPNFD, and it reads VPNFD until EOF, an error, a signal or TIMEOUT_S (default 300).
With --ignore-hup it logs SIGHUP (openconnect sends it to the script's process group when it
stops) and reads on, to see what the fd itself does.
"""
import errno
import os
import select
import signal
import socket
import struct
import sys
import time

args = sys.argv[1:]
ignore_hup = "--ignore-hup" in args
args = [a for a in args if a != "--ignore-hup"]
outdir = args[0]
timeout = float(args[1]) if len(args) > 1 else 300.0
target = os.environ.get("PROBE_TARGET", "10.99.0.1")
PING_INTERVAL = 1.0
events = open(os.path.join(outdir, "events.txt"), "a", buffering=1)


def event(msg):
    events.write(f"{time.time():.3f} {msg}\n")


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def icmp_echo(src, dst, ident, seq, payload):
    icmp = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + payload
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0x1234, 0x4000, 64, 1, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + icmp


def summary(pkt):
    if len(pkt) >= 20 and pkt[0] >> 4 == 4:
        return (f"ipv4 {socket.inet_ntoa(pkt[12:16])}->{socket.inet_ntoa(pkt[16:20])} "
                f"proto {pkt[9]} len {len(pkt)}")
    if len(pkt) >= 40 and pkt[0] >> 4 == 6:
        return f"ipv6 next {pkt[6]} len {len(pkt)}"
    return f"unknown len {len(pkt)} {pkt[:16].hex()}"


def reply_seq(pkt, src, ident):
    """the sequence number if pkt is an echo reply to us from target, else None"""
    if len(pkt) < 28 or pkt[0] >> 4 != 4 or pkt[9] != 1:
        return None
    ihl = (pkt[0] & 15) * 4
    if pkt[12:16] != socket.inet_aton(target) or pkt[16:20] != socket.inet_aton(src):
        return None
    typ, _code, _ck, rid, rseq = struct.unpack("!BBHHH", pkt[ihl:ihl + 8])
    return rseq if typ == 0 and rid == ident else None


def on_signal(signum, _frame):
    event(f"signal {signal.Signals(signum).name}")
    if ignore_hup and signum == signal.SIGHUP:
        return
    event("exit signal")
    sys.exit(0)


def main():
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, on_signal)
    with open(os.path.join(outdir, "env.txt"), "w") as f:
        for k in sorted(os.environ):
            f.write(f"{k}={os.environ[k]}\n")
    fd = int(os.environ["VPNFD"])
    sock = socket.socket(fileno=fd)
    ppid = os.getppid()
    with open(os.path.join(outdir, "sock.txt"), "w") as f:
        f.write(f"family={sock.family.name}\ntype={sock.type.name}\n")
        f.write(f"pid={os.getpid()}\nppid={ppid}\nuid={os.getuid()}\n")
        try:
            with open(f"/proc/{ppid}/comm") as c:
                f.write(f"parent={c.read().strip()}\n")
        except OSError:
            pass
    src = os.environ["INTERNAL_IP4_ADDRESS"]
    ident, seq = os.getpid() & 0xFFFF, 0
    sent = {}          # seq -> monotonic time sent
    write_failed = False
    start = time.monotonic()
    next_ping = start
    while True:
        now = time.monotonic()
        if now - start > timeout:
            event("exit timeout")
            return
        if now >= next_ping and not write_failed:
            seq += 1
            try:
                os.write(fd, icmp_echo(src, target, ident, seq, b"vpn2socks-lab-probe" * 3))
                sent[seq] = now
            except OSError as e:
                event(f"write-error {errno.errorcode.get(e.errno, e.errno)}")
                write_failed = True
            next_ping = now + PING_INTERVAL
        for s_, t in list(sent.items()):
            if now - t > 10:
                event(f"icmp-timeout seq {s_}")
                del sent[s_]
        if os.getppid() != ppid:
            ppid = os.getppid()
            event(f"reparented {ppid}")
        r, _, _ = select.select([fd], [], [], 0.1)
        if not r:
            continue
        try:
            pkt = os.read(fd, 65536)
        except OSError as e:
            event(f"read-error {errno.errorcode.get(e.errno, e.errno)}")
            event("exit error")
            return
        if not pkt:
            event("eof")
            event("exit eof")
            return
        rseq = reply_seq(pkt, src, ident)
        if rseq in sent:
            event(f"icmp-ok seq {rseq} {(time.monotonic() - sent.pop(rseq)) * 1000:.1f} ms")
        else:
            event(f"packet {summary(pkt)}")


if __name__ == "__main__":
    main()
