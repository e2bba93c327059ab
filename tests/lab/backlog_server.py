#!/usr/bin/python3
"""A small-backlog HTTP/1.0 file server for the lab: GET of files in DIR, one asyncio loop.

usage: backlog_server.py BIND PORT DIR [BACKLOG]     (BACKLOG default 5)

Like many real servers it listens with a small backlog (5 is `python3 -m http.server`'s), so a
burst of connections overflows its accept queue and the kernel drops handshakes, which clients
must retry. Unlike `python3 -m http.server`, whose accept loop starves behind its sending
threads for so long that the kernel gives up on handshakes it had already answered (and a
kernel-TUN client then fails as often as any other), it accepts as soon as connections are
queued, so every client that retries correctly gets its file.
"""
import asyncio
import os
import sys

from lab_cc import pin_cubic


async def serve(reader, writer, root):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        parts = head.split(b" ", 2)
        name = os.path.basename(parts[1].decode("latin-1")) if len(parts) > 2 else ""
        path = os.path.join(root, name)
        if parts[0] != b"GET" or not name or not os.path.isfile(path):
            writer.write(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        else:
            size = os.path.getsize(path)
            writer.write(f"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         f"Content-Length: {size}\r\n\r\n".encode())
            with open(path, "rb") as f:
                while True:
                    chunk = f.read(262144)
                    if not chunk:
                        break
                    writer.write(chunk)
                    await writer.drain()
        await writer.drain()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main():
    bind, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    backlog = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    server = await asyncio.start_server(lambda r, w: serve(r, w, root), bind, port,
                                        backlog=backlog, reuse_address=True)
    for sock in server.sockets:
        pin_cubic(sock)
    print(f"backlog_server on {bind}:{port} backlog {backlog} pid {os.getpid()}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
