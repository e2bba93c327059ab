#!/usr/bin/python3
"""Minimal DNS A query over UDP, for checking the lab's dnsmasq.

usage: dns_query.py SERVER NAME [--socks HOST:PORT]
       prints "RCODE addr..." e.g. "NOERROR 10.99.0.1", "NXDOMAIN"; with --socks the query goes
       through that SOCKS5 proxy's UDP ASSOCIATE (python3-socks)
exit 0 when an answer (any rcode) came back, 1 on timeout or a malformed reply
"""
import os
import socket
import struct
import sys

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def skip_name(msg, off):
    while True:
        n = msg[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


def main():
    server, name = sys.argv[1], sys.argv[2]
    qid = struct.unpack("!H", os.urandom(2))[0]
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack("!HH", 1, 1)
    if len(sys.argv) > 4 and sys.argv[3] == "--socks":
        import socks  # python3-socks, only here: the other uses need no proxy

        host, port = sys.argv[4].rsplit(":", 1)
        s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
        s.set_proxy(socks.SOCKS5, host.strip("[]"), int(port))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(q, (server, 53))
    try:
        msg, _ = s.recvfrom(4096)
    except socket.timeout:
        print("TIMEOUT")
        return 1
    rid, flags, qd, an, _ns, _ar = struct.unpack("!HHHHHH", msg[:12])
    if rid != qid:
        print("BADID")
        return 1
    off = 12
    for _ in range(qd):
        off = skip_name(msg, off) + 4
    addrs = []
    for _ in range(an):
        off = skip_name(msg, off)
        typ, _cls, _ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        if typ == 1 and rdlen == 4:
            addrs.append(socket.inet_ntoa(msg[off:off + 4]))
        off += rdlen
    print(" ".join([RCODES.get(flags & 15, str(flags & 15))] + addrs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
