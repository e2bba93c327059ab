#!/usr/bin/env python3
"""Time until a tunnel is usable: up_probe.py [--socks HOST:PORT] HOST PORT TIMEOUT_S

Prints "ready" and waits for a line on standard input; the moment it reads one is time zero (the
caller starts the client right after writing it). From then on it starts a new attempt every
millisecond while fewer than 20 are under way, each a TCP connect to HOST:PORT (through the SOCKS5
proxy with --socks: greeting, CONNECT) followed by "GET /hello" (bench/netbench serve), and
prints "up MS ms, ATTEMPTS attempts" when the first byte of an answer arrives: the tunnel carried
a connection both ways. Attempts that fail (refused, no route, a SOCKS error) are dropped; one
older than 500 ms is given up (an attempt the client holds until its tunnel is up stays under
way meanwhile). Exit 1, "up nan ms", after TIMEOUT_S.
"""
import errno
import selectors
import socket
import struct
import sys
import time

EVERY_S = 0.001
MAX_LIVE = 20
GIVE_UP_S = 0.5
REQUEST = b"GET /hello HTTP/1.1\r\nHost: bench\r\nUser-Agent: up_probe\r\n\r\n"


class Attempt:
    def __init__(self, sel, target, socks):
        self.sel, self.target, self.socks = sel, target, socks
        self.started = time.monotonic()
        self.buf = b""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        err = self.sock.connect_ex(socks or target)
        if err not in (0, errno.EINPROGRESS):
            self.sock.close()
            raise OSError(err, "connect")
        self.state = "connect"
        sel.register(self.sock, selectors.EVENT_WRITE, self)

    def close(self):
        self.sel.unregister(self.sock)
        self.sock.close()

    def want_read(self, data):
        self.sock.sendall(data)
        self.sel.modify(self.sock, selectors.EVENT_READ, self)

    def step(self):
        """Advances on an event: True once the answer's first byte is here; OSError on failure."""
        if self.state == "connect":
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, "connect")
            if self.socks:
                self.state = "greeting"
                self.want_read(b"\x05\x01\x00")
            else:
                self.state = "answer"
                self.want_read(REQUEST)
            return False
        data = self.sock.recv(4096)
        if not data:
            raise OSError(errno.ECONNRESET, "closed")
        if self.state == "answer":
            return True
        self.buf += data
        if self.state == "greeting":
            if len(self.buf) < 2:
                return False
            if self.buf[:2] != b"\x05\x00":
                raise OSError(errno.EPROTO, "SOCKS greeting refused")
            self.buf = b""
            self.state = "reply"
            ip, port = self.target
            self.sock.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(ip) + struct.pack(">H", port))
            return False
        # SOCKS reply: VER REP RSV ATYP BND.ADDR BND.PORT
        if len(self.buf) < 5:
            return False
        if self.buf[1] != 0:
            raise OSError(errno.ECONNREFUSED, "SOCKS reply %d" % self.buf[1])
        need = {1: 10, 4: 22, 3: 7 + self.buf[4]}.get(self.buf[3], 10)
        if len(self.buf) < need:
            return False
        self.state = "answer"
        extra, self.buf = self.buf[need:], b""
        self.sock.sendall(REQUEST)
        return bool(extra)


def main():
    args = sys.argv[1:]
    socks = None
    if args and args[0] == "--socks":
        host, port = args[1].rsplit(":", 1)
        socks = (host, int(port))
        args = args[2:]
    if len(args) != 3:
        sys.exit(__doc__)
    target, timeout = (args[0], int(args[1])), float(args[2])
    sel = selectors.DefaultSelector()
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.monotonic()
    attempts, live, next_at = 0, [], t0
    while True:
        now = time.monotonic()
        if now - t0 > timeout:
            print("up nan ms, %d attempts" % attempts, flush=True)
            sys.exit(1)
        if now >= next_at and len(live) < MAX_LIVE:
            next_at = now + EVERY_S
            attempts += 1
            try:
                live.append(Attempt(sel, target, socks))
            except OSError:
                pass
        for a in [a for a in live if now - a.started > GIVE_UP_S]:
            a.close()
            live.remove(a)
        wait = max(0.0, next_at - time.monotonic()) if len(live) < MAX_LIVE else EVERY_S
        for key, _ in sel.select(wait):
            a = key.data
            try:
                done = a.step()
            except OSError:
                a.close()
                live.remove(a)
                continue
            if done:
                print("up %.1f ms, %d attempts" % ((time.monotonic() - t0) * 1000, attempts), flush=True)
                return


if __name__ == "__main__":
    main()
