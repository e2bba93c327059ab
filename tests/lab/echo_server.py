#!/usr/bin/python3
"""TCP and UDP echo server for the lab.

TCP: echoes everything until the client half-closes (shutdown write), then closes its own side,
so a test sees both halves of a half-close cross the tunnel. A reset from the client ends the
connection quietly.
UDP: sends every datagram back to its sender.

usage: echo_server.py ADDR PORT     (same port for TCP and UDP)
"""
import os
import socket
import sys
import threading

from lab_cc import pin_cubic


def serve_tcp_conn(conn):
    try:
        while True:
            data = conn.recv(262144)
            if not data:
                break
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        conn.close()


def tcp_loop(sock):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve_tcp_conn, args=(conn,), daemon=True).start()


def udp_loop(sock):
    while True:
        data, peer = sock.recvfrom(65535)
        try:
            sock.sendto(data, peer)
        except OSError:
            pass


def main():
    addr, port = sys.argv[1], int(sys.argv[2])
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    t = socket.socket(family, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    pin_cubic(t)
    t.bind((addr, port))
    t.listen(1024)      # a thousand connections at once (the kernel caps it at somaxconn)
    u = socket.socket(family, socket.SOCK_DGRAM)
    u.bind((addr, port))
    threading.Thread(target=udp_loop, args=(u,), daemon=True).start()
    print(f"echo server on {addr}:{port} tcp+udp pid {os.getpid()}", flush=True)
    tcp_loop(t)


if __name__ == "__main__":
    main()
