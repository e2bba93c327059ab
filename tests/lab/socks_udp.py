#!/usr/bin/python3
"""Datagrams through a SOCKS5 proxy's UDP ASSOCIATE with python3-socks (PySocks), to a UDP echo.

usage: socks_udp.py PROXY_HOST PROXY_PORT HOST PORT [COUNT]
  An IPv6 PROXY_HOST (PySocks talks to a proxy over IPv4 only) uses a client of our own, Raw below.
  Sends COUNT (default 20) datagrams of different sizes (1 to 1200 bytes, random content) to
  HOST:PORT (an address, or a name the proxy resolves), each with its own number, and checks that
  each comes back intact, wrapped with the echo's address as source, in HOST's form (an IPv4
  address written ::ffff:a.b.c.d comes back so; for a name: that the source port is PORT).
  Prints "ok N datagrams, source ADDR:PORT", exit 0; else what went wrong, exit 1.
"""
import os
import socket
import sys

import socks


class Raw:
    """UDP ASSOCIATE by hand, for a proxy on an IPv6 address: the same calls as PySocks's."""

    def __init__(self, phost, pport):
        self.tcp = socket.create_connection((phost, pport), timeout=10)
        self.tcp.sendall(b"\x05\x01\x00\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
        r = b""
        while len(r) < 2 + 4 + 16 + 2:
            chunk = self.tcp.recv(64)
            if not chunk:
                break
            r += chunk
        if r[:4] != b"\x05\x00\x05\x00" or r[5] != 4:  # the method, then the reply (ATYP 4)
            raise OSError(f"UDP ASSOCIATE refused: {r!r}")
        relay = (socket.inet_ntop(socket.AF_INET6, r[6:22]), int.from_bytes(r[22:24], "big"))
        self.udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.udp.connect(relay)

    def settimeout(self, t):
        self.udp.settimeout(t)

    def sendto(self, data, dst):
        host, port = dst
        if ":" in host:
            head = b"\x04" + socket.inet_pton(socket.AF_INET6, host)
        elif host[0].isdigit():
            head = b"\x01" + socket.inet_pton(socket.AF_INET, host)
        else:
            head = b"\x03" + bytes([len(host)]) + host.encode()
        self.udp.send(b"\x00\x00\x00" + head + port.to_bytes(2, "big") + data)

    def recvfrom(self, n):
        d = self.udp.recv(n + 262)
        if d[3] == 1:
            return d[10:], (socket.inet_ntop(socket.AF_INET, d[4:8]), int.from_bytes(d[8:10], "big"))
        return d[22:], (socket.inet_ntop(socket.AF_INET6, d[4:20]), int.from_bytes(d[20:22], "big"))

    def close(self):
        self.udp.close()
        self.tcp.close()


def main():
    phost, pport, host, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    count = int(sys.argv[5]) if len(sys.argv) > 5 else 20
    if ":" in phost:
        s = Raw(phost, pport)
    else:
        s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
        s.set_proxy(socks.SOCKS5, phost, pport)  # names go to the proxy (rdns)
    s.settimeout(3)
    source = None
    for i in range(count):
        size = 1 + (i * 97) % 1200
        msg = i.to_bytes(4, "big") + os.urandom(size)
        s.sendto(msg, (host, port))
        # A lost datagram is sent again, a few times (UDP through a VPN may lose one).
        for attempt in range(5):
            try:
                data, src = s.recvfrom(65535)
            except socket.timeout:
                if attempt == 4:
                    print(f"datagram {i}: no answer")
                    return 1
                s.sendto(msg, (host, port))
                continue
            if data[:4] != msg[:4]:
                continue  # an earlier datagram's late copy
            break
        if data != msg:
            print(f"datagram {i}: {len(data)} bytes back, not the {len(msg)} sent")
            return 1
        if src[1] != port or (host[0].isdigit() or ":" in host) and socket.inet_pton(
                socket.AF_INET6 if ":" in host else socket.AF_INET, src[0]) != socket.inet_pton(
                socket.AF_INET6 if ":" in host else socket.AF_INET, host):
            print(f"datagram {i}: source {src}, expected the echo {host}:{port}")
            return 1
        source = src
    print(f"ok {count} datagrams, source {source[0]}:{source[1]}")
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
