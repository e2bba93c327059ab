#!/usr/bin/python3
"""Load generator for the lab: many TCP connections at once, directly or through a SOCKS5 proxy,
every byte checked.

usage: load_gen.py [options] JOB...

  JOB is KIND=N@HOST:PORT[/PATH]:
    echo=N@HOST:PORT        N connections to the lab's TCP echo server: send SIZE bytes and shut
                            down writing while reading; the echo must be the same SIZE bytes,
                            then EOF
    get=N@HOST:PORT/PATH    N HTTP/1.0 GETs of PATH: status 200, a body of SIZE bytes whose
                            sha256 is --sha256
    post=N@HOST:PORT/PATH   N HTTP/1.0 POSTs of SIZE bytes: the lab's web server answers
                            "LENGTH SHA256", both must match what was sent

  --socks HOST:PORT   connect through this SOCKS5 proxy (CONNECT, no authentication); without it,
                      directly (e.g. through a kernel TUN)
  --size BYTES        bytes each way per connection (1048576)
  --sha256 HEX        expected sha256 of each GET body
  --stall S           a connection that moves no byte for S seconds is a failure, "stalled" (30);
                      every other wait is bounded by it too, so nothing hangs
  --deadline S        a connection still not done S seconds after it started (after the barrier)
                      is a failure too, "crawling": bytes trickling through a connection that a
                      user would call hung (0: no deadline, the default)
  --no-barrier        each connection transfers as soon as it is up; by default every connection
                      is opened first and all transfer together (so N really are open at once)
  --rate BYTES_S      pace each connection's sending (echo, post) or reading (get) at this rate
  --results FILE      one line per connection: index kind ok step sent received t_end
                      local_port error (t_end: Unix time it ended; local_port: of its socket
                      to the proxy, or to the server when direct)
  --on-stall CMD      run this shell command once, at the first stall or crawl, before those
                      connections are closed (e.g. ss, to see both ends while they are stuck);
                      $STALLED_PORTS holds their local ports
  --label TEXT        a name for the summary line

Every connection sends different bytes (one random block, rotated by an offset of its own), so
data crossed between connections is caught too. Output: a summary line, the failures grouped by
kind, step and error with examples (bytes moved, seconds after the start), and a last line
"RESULT ok=N failed=N wall_s=S peak_open=N". Exit 0 when every connection succeeded, 1 otherwise,
2 on bad usage.
"""
import argparse
import asyncio
import collections
import hashlib
import ipaddress
import os
import sys
import time

CHUNK = 65536


class Failure(Exception):
    pass


class Conn:
    __slots__ = ("idx", "kind", "step", "sent", "recvd", "error", "ok", "t_end", "t_rel", "last",
                 "waiting", "at_barrier", "eof_sent", "sport", "gap", "t_start")

    def __init__(self, idx, kind):
        self.idx = idx
        self.kind = kind
        self.step = "connect"
        self.sent = 0
        self.recvd = 0
        self.error = ""
        self.ok = False
        self.t_end = 0.0
        self.t_rel = 0.0
        self.last = time.monotonic()
        self.waiting = False
        self.at_barrier = False
        self.eof_sent = False
        self.sport = 0
        self.gap = 0.0
        self.t_start = self.last

    def progress(self):
        now = time.monotonic()
        self.gap = max(self.gap, now - self.last)
        self.last = now


class Run:
    def __init__(self, args):
        self.args = args
        self.size = args.size
        block = os.urandom(self.size)
        self.data = memoryview(block + block)
        self.open_now = 0
        self.peak = 0
        self.pending_connect = 0
        self.go = asyncio.Event()
        self.t0 = time.monotonic()

    def payload(self, idx):
        # 4099 is prime, so the offsets differ for any power-of-two size larger than the count
        off = (idx * 4099) % self.size if self.size else 0
        return self.data[off:off + self.size]

    def connected_one(self):
        self.pending_connect -= 1
        if self.pending_connect <= 0:
            self.go.set()


def parse_job(text):
    try:
        kind, rest = text.split("=", 1)
        count, target = rest.split("@", 1)
        hostport, _, path = target.partition("/")
        host, _, port = hostport.rpartition(":")
        host = host.strip("[]")
        if kind not in ("echo", "get", "post") or not host:
            raise ValueError
        return kind, int(count), host, int(port), "/" + path
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad job {text!r}: KIND=N@HOST:PORT[/PATH]") from None


async def read_some(conn, reader, n=CHUNK):
    data = await reader.read(n)
    if data:
        conn.progress()
    return data


async def socks5_connect(conn, reader, writer, host, port):
    conn.step = "socks-greeting"
    writer.write(b"\x05\x01\x00")
    rep = await reader.readexactly(2)
    if rep != b"\x05\x00":
        raise Failure(f"method selection {rep.hex()}, expected 0500")
    conn.progress()
    conn.step = "socks-connect"
    try:
        a = ipaddress.ip_address(host)
        dest = (b"\x01" if a.version == 4 else b"\x04") + a.packed
    except ValueError:
        name = host.encode()
        dest = b"\x03" + bytes([len(name)]) + name
    writer.write(b"\x05\x01\x00" + dest + port.to_bytes(2, "big"))
    hdr = await reader.readexactly(4)
    if hdr[0] != 5:
        raise Failure(f"reply version {hdr[0]:#04x}")
    if hdr[1] != 0:
        raise Failure(f"SOCKS reply {hdr[1]:#04x}")
    atyp = hdr[3]
    if atyp == 1:
        rest = 6
    elif atyp == 4:
        rest = 18
    elif atyp == 3:
        rest = (await reader.readexactly(1))[0] + 2
    else:
        raise Failure(f"reply ATYP {atyp:#04x}")
    await reader.readexactly(rest)
    conn.progress()


async def paced_send(run, conn, writer, data):
    rate = run.args.rate
    t0 = time.monotonic()
    for i in range(0, len(data), CHUNK):
        chunk = data[i:i + CHUNK]
        writer.write(chunk)
        await writer.drain()
        conn.sent += len(chunk)
        conn.progress()
        if rate:
            ahead = conn.sent / rate - (time.monotonic() - t0)
            if ahead > 0:
                await asyncio.sleep(ahead)


async def do_echo(run, conn, reader, writer):
    data = run.payload(conn.idx)

    async def sender():
        await paced_send(run, conn, writer, data)
        writer.write_eof()
        conn.eof_sent = True

    async def receiver():
        while True:
            chunk = await read_some(conn, reader)
            if not chunk:
                break
            n = len(chunk)
            if conn.recvd + n > run.size:
                raise Failure(f"more bytes back than sent ({conn.recvd + n} > {run.size})")
            if chunk != data[conn.recvd:conn.recvd + n]:
                exp = bytes(data[conn.recvd:conn.recvd + n])
                at = next(i for i in range(n) if chunk[i] != exp[i])
                raise Failure(f"data differ at byte {conn.recvd + at}")
            conn.recvd += n
        if conn.recvd != run.size:
            raise Failure(f"EOF after {conn.recvd} of {run.size} bytes")

    # both directions at once: the first error (a reset while sending, bad data) ends both
    tasks = [asyncio.ensure_future(sender()), asyncio.ensure_future(receiver())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            if t.exception():
                raise t.exception()
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()


async def read_http_head(conn, reader):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await read_some(conn, reader, 4096)
        if not chunk:
            raise Failure(f"EOF in the response head ({len(head)} bytes: {head[:60]!r})")
        head += chunk
        if len(head) > 65536:
            raise Failure("response head over 64 KiB")
    head, _, body = head.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or parts[1] != "200":
        raise Failure(f"status line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return headers, body


async def do_get(run, conn, reader, writer, host, port, path):
    conn.step = "request"
    req = f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: load_gen\r\n\r\n".encode()
    writer.write(req)
    await writer.drain()
    conn.sent += len(req)
    conn.step = "response"
    headers, body = await read_http_head(conn, reader)
    clen = headers.get("content-length")
    if clen is not None and int(clen) != run.size:
        raise Failure(f"Content-Length {clen}, expected {run.size}")
    h = hashlib.sha256()
    rate, t0 = run.args.rate, time.monotonic()
    while True:
        if body:
            h.update(body)
            conn.recvd += len(body)
            if conn.recvd > run.size:
                raise Failure(f"body longer than {run.size}")
        if rate:
            ahead = conn.recvd / rate - (time.monotonic() - t0)
            if ahead > 0:
                await asyncio.sleep(ahead)
        body = await read_some(conn, reader)
        if not body:
            break
    if conn.recvd != run.size:
        raise Failure(f"EOF after {conn.recvd} of {run.size} body bytes")
    if run.args.sha256 and h.hexdigest() != run.args.sha256:
        raise Failure(f"body sha256 {h.hexdigest()[:16]}..., expected {run.args.sha256[:16]}...")


async def do_post(run, conn, reader, writer, host, port, path):
    data = run.payload(conn.idx)
    conn.step = "request"
    writer.write(f"POST {path} HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: load_gen\r\n"
                 f"Content-Type: application/octet-stream\r\nContent-Length: {run.size}\r\n\r\n".encode())
    await paced_send(run, conn, writer, data)
    conn.step = "response"
    headers, body = await read_http_head(conn, reader)
    while True:
        chunk = await read_some(conn, reader)
        if not chunk:
            break
        body += chunk
        if len(body) > 4096:
            raise Failure("answer over 4 KiB")
    conn.recvd = len(body)
    want = f"{run.size} {hashlib.sha256(data).hexdigest()}"
    got = body.decode("latin-1").strip()
    if got != want:
        raise Failure(f"server received {got[:40]!r}, sent {want[:40]!r}")


async def one(run, conn, host, port, path):
    args = run.args
    writer = None
    counted = False
    try:
        if args.socks:
            reader, writer = await asyncio.open_connection(args.socks[0], args.socks[1])
        else:
            reader, writer = await asyncio.open_connection(host, port)
        run.open_now += 1
        conn.sport = writer.get_extra_info("sockname")[1]
        counted = True
        run.peak = max(run.peak, run.open_now)
        conn.progress()
        if args.socks:
            await socks5_connect(conn, reader, writer, host, port)
        if not args.no_barrier:
            conn.step = "barrier"
            conn.waiting = True
            conn.at_barrier = True
            run.connected_one()
            await run.go.wait()
            conn.waiting = False
            conn.last = conn.t_start = time.monotonic()     # the wait is no silence
        conn.step = "transfer"
        if conn.kind == "echo":
            await do_echo(run, conn, reader, writer)
        elif conn.kind == "get":
            await do_get(run, conn, reader, writer, host, port, path)
        else:
            await do_post(run, conn, reader, writer, host, port, path)
        conn.ok = True
        conn.step = "done"
    except Failure as e:
        conn.error = str(e)
    except asyncio.IncompleteReadError as e:
        conn.error = f"EOF after {len(e.partial)} of {e.expected} bytes"
    except asyncio.CancelledError:
        conn.error = conn.error or "cancelled"
    except (OSError, ValueError) as e:
        conn.error = f"{type(e).__name__}: {e}"
    finally:
        conn.t_end = time.time()
        conn.t_rel = time.monotonic() - run.t0
        if not conn.waiting:
            conn.gap = max(conn.gap, time.monotonic() - conn.last)     # a silence until the end
        if not args.no_barrier and not conn.at_barrier:
            run.connected_one()     # failed before the barrier: the others need not wait for it
        if counted:
            run.open_now -= 1
        if writer is not None:
            if conn.ok:
                writer.close()
            else:
                writer.transport.abort()


async def on_stall(cmd, stalled):
    env = dict(os.environ, STALLED_PORTS=" ".join(str(c.sport) for c in stalled))
    try:
        proc = await asyncio.create_subprocess_shell(cmd, env=env)
        await asyncio.wait_for(proc.wait(), 20)
    except (OSError, asyncio.TimeoutError) as e:
        print(f"load_gen: --on-stall: {e}", file=sys.stderr)


async def watchdog(run, conns, tasks):
    stall = run.args.stall
    deadline = run.args.deadline
    hook = run.args.on_stall
    while True:
        await asyncio.sleep(0.5)
        now = time.monotonic()
        stalled = [(c, t) for c, t in zip(conns, tasks)
                   if not t.done() and not c.waiting and
                   (now - c.last > stall or (deadline and now - c.t_start > deadline))]
        if stalled and hook:
            await on_stall(hook, [c for c, _ in stalled])
            hook = None
        for conn, task in stalled:
            if now - conn.last > stall:
                conn.error = f"stalled: no byte moved for {stall:g} s"
            else:
                conn.error = (f"crawling: not done after {deadline:g} s, "
                              f"{(conn.sent + conn.recvd) / deadline:.0f} bytes/s on average")
            task.cancel()


async def main_async(args):
    run = Run(args)
    conns, coros = [], []
    for kind, count, host, port, path in args.jobs:
        for _ in range(count):
            conn = Conn(len(conns), kind)
            conns.append(conn)
            coros.append((conn, host, port, path))
    run.pending_connect = len(conns)
    if not conns:
        run.go.set()
    run.t0 = time.monotonic()
    tasks = [asyncio.ensure_future(one(run, c, h, p, pa)) for c, h, p, pa in coros]
    dog = asyncio.ensure_future(watchdog(run, conns, tasks))
    await asyncio.gather(*tasks, return_exceptions=True)
    dog.cancel()
    wall = time.monotonic() - run.t0
    return run, conns, wall


def report(args, run, conns, wall):
    ok = sum(c.ok for c in conns)
    failed = len(conns) - ok
    kinds = collections.Counter(c.kind for c in conns)
    moved = sum(c.sent + c.recvd for c in conns) / 1048576
    label = f" [{args.label}]" if args.label else ""
    via = f"SOCKS5 {args.socks[0]}:{args.socks[1]}" if args.socks else "direct"
    print(f"load_gen{label}: {len(conns)} connections ("
          + ", ".join(f"{k} {n}" for k, n in kinds.items())
          + f", {args.size} bytes each way, {via}): {ok} ok, {failed} failed; "
          f"{moved:.1f} MiB moved; wall {wall:.2f} s; peak open {run.peak}")
    groups = collections.defaultdict(list)
    for c in conns:
        if not c.ok:
            err = c.error
            # group by the error's words, not its byte counts
            key = "".join(ch for ch in err if not ch.isdigit())
            groups[(c.kind, c.step, key)].append(c)
    for (kind, step, _), cs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        print(f"  FAILED {len(cs)} x {kind} at step '{step}': {cs[0].error}")
        for c in cs[:5]:
            eof = "+EOF" if c.eof_sent else ""
            print(f"    #{c.idx} (port {c.sport}): sent {c.sent}{eof}, received {c.recvd}, ended "
                  f"{c.t_rel:.1f} s after the start: {c.error}")
        if len(cs) > 5:
            print(f"    ... and {len(cs) - 5} more")
    if args.results:
        with open(args.results, "w") as f:
            for c in conns:
                err = c.error.replace("\t", " ").replace("\n", " ")
                f.write(f"{c.idx}\t{c.kind}\t{int(c.ok)}\t{c.step}\t{c.sent}\t{c.recvd}\t"
                        f"{c.t_end:.3f}\t{c.sport}\t{err}\n")
    slow = max(conns, key=lambda c: c.t_rel - (c.t_start - run.t0), default=None)
    quiet = max(conns, key=lambda c: c.gap, default=None)
    if slow is not None:
        print(f"  slowest: #{slow.idx} (port {slow.sport}) {slow.t_rel - (slow.t_start - run.t0):.1f} s;"
              f" longest silence: #{quiet.idx} (port {quiet.sport}) {quiet.gap:.1f} s without a byte")
    print(f"RESULT ok={ok} failed={failed} wall_s={wall:.2f} peak_open={run.peak}")
    return failed == 0


def main():
    p = argparse.ArgumentParser(description="lab load generator", add_help=True)
    p.add_argument("--socks", type=lambda s: (s.rpartition(":")[0], int(s.rpartition(":")[2])))
    p.add_argument("--size", type=int, default=1048576)
    p.add_argument("--sha256", default="")
    p.add_argument("--stall", type=float, default=30.0)
    p.add_argument("--deadline", type=float, default=0.0)
    p.add_argument("--no-barrier", action="store_true")
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--results", default="")
    p.add_argument("--label", default="")
    p.add_argument("--on-stall", default="")
    p.add_argument("jobs", nargs="+", type=parse_job)
    args = p.parse_args()
    run, conns, wall = asyncio.run(main_async(args))
    sys.exit(0 if report(args, run, conns, wall) else 1)


if __name__ == "__main__":
    main()
