#!/usr/bin/python3
"""Many connections to a SOCKS5 listener at once, held open: what a flood of idle or half-open
clients does, and how many of them the listener kept.

usage: conn_flood.py PROXY_HOST PROXY_PORT MODE N [HOST PORT]

  MODE silent    connect and send nothing
       partial   send the greeting (05 01 00) and half a CONNECT request, then nothing
       connect   CONNECT to HOST PORT (an IPv4 literal), then stay idle
       garbage   send 64 random bytes whose first is neither 4 nor 5 (not SOCKS at all)

Connections are opened BATCH at a time (each batch's handshakes completed before the next), so
that the listener's accept queue (511) never overflows: a dropped SYN would come back a second
later and blur what the listener did. Then, once nothing has changed for SETTLE_S, each is
sorted:
  held      still open (for connect: after reply 0x00; for partial: after the method reply 0500)
  refused   reset or closed by the listener before any byte of a reply (its cap)
  closed    closed by the listener after an answer; for garbage, ended in any way (what the
            listener must do with it)
  failed    anything else (connect() failed, another reply), with the first reason
It prints "held H refused R closed C failed F" on one line (the first line of output, flushed),
then keeps every connection open until its standard input reaches EOF, then closes them all and
exits 0. It never judges: the test compares the counts with what it expects.
"""
import errno
import os
import selectors
import socket
import sys
import time

BATCH = 200
SETTLE_S = 1.0        # nothing read or closed for this long: the listener has done what it does
DEADLINE_S = 60       # a hang is reported as such, not waited out


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    proxy = (sys.argv[1], int(sys.argv[2]))
    mode, n = sys.argv[3], int(sys.argv[4])
    if mode == "connect":
        host, port = sys.argv[5], int(sys.argv[6])
        request = b"\x05\x01\x00" + b"\x05\x01\x00\x01" + socket.inet_aton(host) + port.to_bytes(2, "big")
        answer_len = 2 + 10
    elif mode == "partial":
        request = b"\x05\x01\x00" + b"\x05\x01\x00\x01\x0a"
        answer_len = 2
    elif mode == "silent":
        request, answer_len = b"", 0
    elif mode == "garbage":
        request, answer_len = None, 0
    else:
        sys.exit(f"conn_flood: unknown mode {mode}")

    sel = selectors.DefaultSelector()
    conns = []          # [socket, bytes received, state]
    failed_why = None

    def fail(c, why):
        nonlocal failed_why
        c[2] = "failed"
        failed_why = failed_why or why

    def on_connected(c):
        s = c[0]
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            sel.unregister(s)
            if err == errno.ECONNRESET:
                c[2] = "refused"    # accepted and reset before we looked
            else:
                fail(c, f"connect: {os.strerror(err)}")
            return
        c[2] = "open"
        data = request
        if data is None:
            data = bytes([0x47 + os.urandom(1)[0] % 0x40]) + os.urandom(63)
        try:
            if data:
                s.send(data)
        except OSError:
            c[2] = "refused"        # reset before we could even send
            sel.unregister(s)
            return
        sel.modify(s, selectors.EVENT_READ, c)

    def on_readable(c):
        s = c[0]
        try:
            chunk = s.recv(4096)
        except (ConnectionResetError, ConnectionAbortedError):
            chunk = None
        if chunk:
            c[1] += chunk
            return
        sel.unregister(s)
        # garbage must end, however it ends (a reset too: Linux resets a socket closed with
        # unread bytes); the others were refused if nothing came before the end
        c[2] = "refused" if not c[1] and mode != "garbage" else "closed"

    def handle(events):
        for key, _ in events:
            c = key.data
            if c[2] == "connecting":
                on_connected(c)
            else:
                on_readable(c)

    start = time.monotonic()
    for first in range(0, n, BATCH):
        batch = []
        for _ in range(min(BATCH, n - first)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(proxy)
            c = [s, b"", "connecting"]
            conns.append(c)
            batch.append(c)
            sel.register(s, selectors.EVENT_WRITE, c)
        while any(c[2] == "connecting" for c in batch):
            if time.monotonic() - start > DEADLINE_S:
                sys.exit(f"conn_flood: connects still pending after {DEADLINE_S} s")
            handle(sel.select(timeout=1))

    # Sort them: read answers and ends until nothing has changed for SETTLE_S.
    last_change = time.monotonic()
    while time.monotonic() - last_change < SETTLE_S:
        if time.monotonic() - start > DEADLINE_S:
            sys.exit(f"conn_flood: still sorting after {DEADLINE_S} s")
        events = sel.select(timeout=0.1)
        if events:
            last_change = time.monotonic()
            handle(events)

    counts = {"held": 0, "refused": 0, "closed": 0, "failed": 0}
    for c in conns:
        if c[2] == "open":
            if mode == "garbage":
                fail(c, "garbage: the listener kept the connection open")
            elif len(c[1]) < answer_len:
                fail(c, f"{mode}: only {c[1].hex() or 'nothing'} received, still open")
            elif mode == "connect" and c[1][2 + 1] != 0:
                fail(c, f"connect: reply {c[1][3]:#04x}")
            elif mode != "silent" and not c[1].startswith(b"\x05\x00"):
                fail(c, f"{mode}: method reply {c[1][:2].hex()}")
            else:
                c[2] = "held"
        elif c[2] == "closed" and mode != "garbage":
            fail(c, f"{mode}: closed by the listener after {c[1].hex()}")
        counts[c[2] if c[2] in counts else "failed"] += 1
    line = " ".join(f"{k} {v}" for k, v in counts.items())
    if failed_why:
        line += f" (first failure: {failed_why})"
    print(line, flush=True)

    sys.stdin.read()  # hold until the test is done measuring
    for c in conns:
        c[0].close()


if __name__ == "__main__":
    main()
