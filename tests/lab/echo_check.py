#!/usr/bin/env python3
"""echo_check.py HOST PORT (--random BYTES | --text TEXT): a TCP client of an echo service.

One thread writes the data and half-closes; the main one reads to EOF. Exit 0 when what came back
is exactly what was sent (compared by SHA-256 for random data), 1 otherwise; prints the sizes."""
import argparse
import hashlib
import os
import socket
import sys
import threading


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--random", type=int, metavar="BYTES")
    what.add_argument("--text")
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    data = os.urandom(a.random) if a.random is not None else a.text.encode()
    s = socket.create_connection((a.host, a.port), timeout=a.timeout)

    def send():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=send)
    t.start()
    got = bytearray()
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        got += b
    t.join()
    if a.text is not None:
        print(f"got {bytes(got)!r}")
    else:
        print(f"sent {len(data)}, got {len(got)} back")
    return 0 if hashlib.sha256(got).digest() == hashlib.sha256(data).digest() else 1


if __name__ == "__main__":
    sys.exit(main())
