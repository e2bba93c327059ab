#!/usr/bin/python3
"""HTTP server for the lab: serves DIR on BIND:PORT, one thread per connection.

usage: web_server.py BIND PORT DIR

Unlike `python3 -m http.server` (listen backlog 5), the accept queue holds 1024 connections, so a
test opening a hundred connections at once does not lose handshakes to the server's own queue.
A POST (any path) is an upload: the server reads Content-Length bytes (or a chunked body) and
answers 200 with "LENGTH SHA256" of what it received, so a client can check that every byte arrived.
A QUERY (the safe method with a body, which the standard library does not know) is read the same
way and answered "QUERY LENGTH SHA256", so a client can check that the method came as it was sent.
Two paths are not files: GET /echo-headers answers the request's head as it arrived (to see what a
proxy sent), and GET /chunked-anyway answers "hello" chunked whatever the request's version (as
some origins do to HTTP/1.0), then closes.
"""
import functools
import hashlib
import http.server
import socket
import sys

from lab_cc import pin_cubic


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True

    def server_bind(self):
        pin_cubic(self.socket)
        super().server_bind()


class Handler(http.server.SimpleHTTPRequestHandler):
    def read_chunked(self, h):
        got = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailer
                return got
            data = self.rfile.read(size)
            self.rfile.readline()  # the chunk's CRLF
            h.update(data)
            got += len(data)

    def do_GET(self):
        if self.path.endswith("/echo-headers"):
            body = (self.requestline + "\r\n" + str(self.headers)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path.endswith("/chunked-anyway"):
            self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n")
            self.close_connection = True
            return
        super().do_GET()

    def do_POST(self):
        self.upload("")

    def do_QUERY(self):
        self.upload("QUERY ")

    def upload(self, prefix):
        want = int(self.headers.get("Content-Length") or 0)
        h = hashlib.sha256()
        got = 0
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            got = self.read_chunked(h)
            want = 0
        while got < want:
            chunk = self.rfile.read1(min(want - got, 262144))
            if not chunk:
                break
            h.update(chunk)
            got += len(chunk)
        body = f"{prefix}{got} {h.hexdigest()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    bind, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if ":" in bind:
        Server.address_family = socket.AF_INET6
    handler = functools.partial(Handler, directory=root)
    Server((bind, port), handler).serve_forever()


if __name__ == "__main__":
    main()
