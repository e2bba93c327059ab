#!/usr/bin/python3
"""A server that sends BULK bytes of b"B", then N one-byte segments of b"A" (TCP_NODELAY, one send
each), to every client, then half-closes and waits for the client to close. It prints
"sent N" once a client's bytes are all handed to its kernel.

usage: trickle_server.py ADDR PORT N BULK

Run it where tcp_autocorking is off (sysctl net.ipv4.tcp_autocorking=0 in its namespace), or the
kernel merges the small sends into full segments.
"""
import socket
import sys
import threading


def serve(conn, n, bulk):
    try:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(b"B" * bulk)
        one = b"A"
        for _ in range(n):
            conn.sendall(one)
        print(f"sent {n}", flush=True)
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    addr, port, n, bulk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((addr, port))
    sock.listen(16)
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve, args=(conn, n, bulk), daemon=True).start()


if __name__ == "__main__":
    main()
