#!/usr/bin/python3
"""HTTP server for the lab: serves DIR on BIND:PORT, one thread per connection.

usage: web_server.py BIND PORT DIR

Unlike `python3 -m http.server` (listen backlog 5), the accept queue holds 1024 connections, so a
test opening a hundred connections at once does not lose handshakes to the server's own queue.
"""
import functools
import http.server
import sys


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True


def main():
    bind, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
    Server((bind, port), handler).serve_forever()


if __name__ == "__main__":
    main()
