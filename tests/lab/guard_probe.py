#!/usr/bin/python3
"""What lab.guard (guard_test.sh) needs besides the lab itself, standard library only.

  guard_probe.py connects SOCKS_HOST SOCKS_PORT HOST PORT N
      N SOCKS5 CONNECTs one after another, each closed once answered; exit 1 unless all got 0x00
  guard_probe.py syns CAPTURE PORT count|ports|isns N
      reads tcpdump's text output (-nn -S) of SYNs; for the SYNs to PORT (a retransmission, the
      same port and sequence number again, counted once) checks one property, prints what it saw:
        count  at least N SYNs were captured
        ports  source ports one apart between consecutive SYNs no more often than chance allows
        isns   initial sequence numbers: no repeat, consecutive differences not constant, not
               mostly small (|diff| < 2^24), not mostly climbing
  guard_probe.py syn CAPTURE PORT
      the last SYN to PORT as "SRC SPORT SEQ"; exit 1 if there is none
  guard_probe.py pending SOCKS_HOST SOCKS_PORT HOST PORT OUT
      one SOCKS5 CONNECT; appends "sent" to OUT once the request is out, then "reply 0xNN at
      EPOCH" or "closed at EPOCH" (EPOCH: time.time() when the answer came)
  guard_probe.py icmp TO FROM INNER_SRC INNER_DST SPORT DPORT SEQ
      sends one ICMP port unreachable (type 3 code 3) from FROM to TO quoting a TCP SYN
      INNER_SRC:SPORT -> INNER_DST:DPORT with sequence number SEQ (raw socket: needs root)
"""
import ipaddress
import math
import re
import socket
import struct
import sys
import time

SYN_RE = re.compile(r" IP (\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+): "
                    r"Flags \[S\], seq (\d+)")
# Checks are set so that real randomness fails them less than once in this many runs.
FALSE_FAIL = 1e-6


def socks_connect(host, port, dst, dport, timeout=25):
    s = socket.create_connection((host, port), timeout=timeout)
    s.sendall(b"\x05\x01\x00")
    if s.recv(2) != b"\x05\x00":
        raise OSError("SOCKS5 greeting refused")
    s.sendall(b"\x05\x01\x00\x01" + ipaddress.IPv4Address(dst).packed + struct.pack("!H", dport))
    return s


def cmd_connects(host, port, dst, dport, n):
    t0 = time.monotonic()
    bad = 0
    for _ in range(int(n)):
        try:
            s = socks_connect(host, int(port), dst, int(dport))
            rep = s.recv(10)
            s.close()
            if len(rep) < 2 or rep[1] != 0:
                bad += 1
        except OSError:
            bad += 1
    print(f"{int(n) - bad} of {n} CONNECTs answered 0x00 in {time.monotonic() - t0:.1f} s")
    return 1 if bad else 0


def read_syns(path, dport):
    syns = []
    with open(path, errors="replace") as f:
        for line in f:
            m = SYN_RE.search(line)
            if not m or int(m.group(4)) != int(dport):
                continue
            syn = (m.group(1), int(m.group(2)), int(m.group(5)))
            if syn not in syns[-8:]:      # a retransmitted SYN is the same SYN
                syns.append(syn)
    return syns


def binom_limit(n, p):
    """The smallest k such that Binomial(n, p) exceeds k with probability below FALSE_FAIL."""
    tail, k = 1.0, 0
    while True:
        tail -= math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                         + k * math.log(p) + (n - k) * math.log1p(-p))
        if tail < FALSE_FAIL:
            return k
        k += 1


def signed32(x):
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x >= 1 << 31 else x


def check_ports(syns):
    ports = [p for _, p, _ in syns]
    pairs = len(ports) - 1
    adjacent = sum(1 for a, b in zip(ports, ports[1:]) if abs(a - b) == 1)
    # lwIP's range for local ports, and ours: 49152-65535
    limit = max(2, binom_limit(pairs, 2 / 16384))
    print(f"source ports: {len(ports)} SYNs, min {min(ports)} max {max(ports)}, {len(set(ports))} distinct; "
          f"first {ports[:6]}")
    print(f"consecutive SYNs with ports one apart: {adjacent} of {pairs} (at most {limit} allowed; "
          f"random ports give {pairs * 2 / 16384:.2f} on average)")
    return adjacent <= limit


def check_isns(syns):
    isns = [s for _, _, s in syns]
    diffs = [signed32(b - a) for a, b in zip(isns, isns[1:])]
    pairs = len(diffs)
    small = sum(1 for d in diffs if abs(d) < 1 << 24)
    up = sum(1 for d in diffs if d > 0)
    small_limit = binom_limit(pairs, 1 / 128)
    # climbing: a fair coin, both tails
    up_hi = binom_limit(pairs, 0.5)
    up_lo = pairs - up_hi
    ok = True
    print(f"ISNs: {len(isns)} SYNs, min {min(isns)} max {max(isns)}, {len(set(isns))} distinct; "
          f"first {isns[:4]}")
    print(f"differences between consecutive ISNs: {len(set(diffs))} distinct of {pairs}; first {diffs[:4]}")
    print(f"|difference| < 2^24: {small} of {pairs} ({100 * small / pairs:.1f} %; random ISNs give 0.8 %, "
          f"at most {small_limit} allowed)")
    print(f"ISN above the one before: {up} of {pairs} (random: half; {up_lo} to {up_hi} allowed)")
    if len(set(isns)) != len(isns):
        print("a repeated ISN")
        ok = False
    # two equal differences among random 32-bit ones: about n^2 / 2^33 (1e-4 at 1,000)
    if len(set(diffs)) < pairs - 2:
        print("differences repeat: a pattern")
        ok = False
    if small > small_limit:
        print("too many small differences: ISNs close to each other")
        ok = False
    if not up_lo <= up <= up_hi:
        print("ISNs climb (or fall) from one connection to the next")
        ok = False
    return ok


def cmd_syns(path, dport, what, n):
    syns = read_syns(path, dport)
    if what == "count":
        print(f"{len(syns)} SYNs to port {dport} captured (wanted {n})")
        return 0 if len(syns) >= int(n) else 1
    if len(syns) < 3:
        print(f"only {len(syns)} SYNs to port {dport} captured")
        return 1
    return 0 if (check_ports if what == "ports" else check_isns)(syns) else 1


def cmd_syn(path, dport):
    syns = read_syns(path, dport)
    if not syns:
        return 1
    print("%s %d %d" % syns[-1])
    return 0


def cmd_pending(host, port, dst, dport, out):
    def note(text):
        with open(out, "a") as f:
            f.write(text + "\n")
    s = socks_connect(host, int(port), dst, int(dport), timeout=60)
    note("sent")
    try:
        rep = s.recv(10)
    except OSError as e:
        note(f"error {e} at {time.time():.3f}")
        return 1
    note(f"reply {rep[1]:#04x} at {time.time():.3f}" if len(rep) > 1 else f"closed at {time.time():.3f}")
    return 0


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_header(src, dst, proto, payload_len, ident):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident, 0x4000, 64, proto, 0,
                    ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    return h[:10] + struct.pack("!H", checksum(h)) + h[12:]


def cmd_icmp(to, frm, isrc, idst, sport, dport, seq):
    # The SYN as the router or host that refused it would quote it: its IP header and TCP header.
    tcp = struct.pack("!HHIIBBHHH", int(sport), int(dport), int(seq) & 0xFFFFFFFF, 0, 5 << 4, 0x02,
                      64240, 0, 0)
    quoted = ipv4_header(isrc, idst, socket.IPPROTO_TCP, len(tcp), 0x1234) + tcp
    icmp = struct.pack("!BBHI", 3, 3, 0, 0) + quoted
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    pkt = ipv4_header(frm, to, socket.IPPROTO_ICMP, len(icmp), 0x4321) + icmp
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.sendto(pkt, (to, 0))
    return 0


def main(argv):
    cmds = {"connects": (cmd_connects, 5), "syns": (cmd_syns, 4), "syn": (cmd_syn, 2),
            "pending": (cmd_pending, 5), "icmp": (cmd_icmp, 7)}
    if len(argv) < 2 or argv[1] not in cmds or len(argv) - 2 != cmds[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    return cmds[argv[1]][0](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
