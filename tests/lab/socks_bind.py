#!/usr/bin/python3
"""SOCKS5 BIND, scripted: the two ends of an FTP-active-mode-like connection back.

usage: socks_bind.py client PROXY_HOST PROXY_PORT DST_ADDR OUTFILE
  Sends BIND for DST_ADDR:0 (no authentication), writes the first reply's "REP ADDR PORT" to
  OUTFILE (then renames it OUTFILE.ready, for the shell to poll), waits for the second reply and
  prints "peer ADDR PORT", then echoes everything the peer sends until its FIN, half-closes, and
  prints "echoed N bytes". A refused first reply prints "reply REP" and exits 0 after writing it.
usage: socks_bind.py peer SRC_ADDR ADDR PORT BYTES
  Connects from SRC_ADDR (bound, so the proxy sees it) to ADDR:PORT, sends BYTES random bytes
  in one thread and half-closes, reads to EOF in the other, and checks what came back is what it
  sent: prints "ok BYTES both ways", exit 0; "reset" when the connection was reset; else exit 1.
  BYTES 0: sends nothing and only reads (to tell a reset from an end of file).
"""
import hashlib
import os
import socket
import struct
import sys
import threading


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def read_reply(s):
    head = recv_exact(s, 4)
    if head[0] != 5:
        raise ValueError(f"reply version {head[0]}")
    if head[3] == 1:
        addr = socket.inet_ntop(socket.AF_INET, recv_exact(s, 4))
    elif head[3] == 4:
        addr = socket.inet_ntop(socket.AF_INET6, recv_exact(s, 16))
    else:
        raise ValueError(f"reply address type {head[3]}")
    port = struct.unpack("!H", recv_exact(s, 2))[0]
    return head[1], addr, port


def client(phost, pport, dst, outfile):
    s = socket.create_connection((phost, pport), timeout=30)
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    s.sendall(b"\x05\x01\x00" + b"\x05\x02\x00" + (b"\x04" if fam == socket.AF_INET6 else b"\x01") +
              socket.inet_pton(fam, dst) + b"\x00\x00")
    if recv_exact(s, 2) != b"\x05\x00":
        print("method refused")
        return 1
    rep, addr, port = read_reply(s)
    with open(outfile, "w") as f:
        f.write(f"{rep} {addr} {port}\n")
    os.rename(outfile, outfile + ".ready")
    if rep != 0:
        print(f"reply {rep}")
        return 0
    rep, addr, port = read_reply(s)
    print(f"peer {addr} {port}" if rep == 0 else f"second reply {rep}", flush=True)
    if rep != 0:
        return 1
    n = 0
    while True:
        data = s.recv(65536)
        if not data:
            break
        s.sendall(data)
        n += len(data)
    s.shutdown(socket.SHUT_WR)
    print(f"echoed {n} bytes")
    return 0


def peer(src, addr, port, nbytes):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(30)
    s.bind((src, 0))
    try:
        s.connect((addr, port))
        data = os.urandom(nbytes)

        def send():
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        # With 0 bytes nothing is sent, so that a reset is seen by recv() (a send() racing with
        # it could take the error and leave recv() an end of file).
        t = threading.Thread(target=send if nbytes else lambda: None)
        t.start()
        got = hashlib.sha256()
        n = 0
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got.update(chunk)
            n += len(chunk)
        t.join()
    except ConnectionResetError:
        print("reset")
        return 0
    if n != nbytes or got.digest() != hashlib.sha256(data).digest():
        print(f"{n} bytes back of {nbytes}, or not the same bytes")
        return 1
    print(f"ok {nbytes} both ways")
    return 0


def main():
    if sys.argv[1] == "client":
        return client(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    return peer(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))


if __name__ == "__main__":
    sys.exit(main())
