#!/usr/bin/python3
"""SOCKS5 test client for the lab: raw protocol cases, and an echo through python-socks.

usage: socks_client.py PROXY_HOST PROXY_PORT CASE [ARGS...]

  connect HOST PORT EXPECT       CONNECT to HOST (IPv4 literal or name) and check the reply code
                                 (e.g. 0x00, 0x04, 0x05); on a failure reply the server must also
                                 close the connection
  request HEX EXPECT             greeting 05 01 00, then the raw request HEX; check the reply code
                                 and that the server closes afterwards
  close HEX [ALLOWED...]         send HEX; the server must close within the timeout, having sent
                                 nothing or exactly one of the ALLOWED hex strings
  answer HEX EXPECT              send HEX; the server must send exactly the hex string EXPECT,
                                 then close within the timeout (nothing is not enough: where the
                                 protocol has an answer, a silent close is a failure)
  truncated HEX                  greeting, then the incomplete request HEX, then close abruptly
  random NBYTES                  send NBYTES of random bytes; the server must close the connection
  stall HEX MIN_S MAX_S [ALLOWED...]
                                 send HEX, then nothing: the server must close between MIN_S and
                                 MAX_S after the connection opened, having sent nothing or one of
                                 the ALLOWED hex strings
  trickle HOST PORT INTERVAL_S MIN_S MAX_S
                                 the greeting and a CONNECT request for HOST:PORT, one byte every
                                 INTERVAL_S: the server must close between MIN_S and MAX_S after
                                 the connection opened, before the request is complete, having
                                 sent only the method choice (0500)
  echo HOST PORT NBYTES          python-socks: send NBYTES random to the echo server, half-close,
                                 read to EOF, compare
  paced HOST PORT NBYTES SECONDS MAX_GAP_S
                                 like echo, but the NBYTES go out evenly over SECONDS, so the
                                 transfer is under way through the proxy all that time; the echo
                                 must come back with the same sha256, and never fall silent for
                                 MAX_GAP_S or more while bytes are outstanding

Every socket has a timeout (TIMEOUT_S), so a hang is a failure. Exit 0 when the case passes;
otherwise a message on stderr and exit 1.
"""
import ipaddress
import os
import selectors
import socket
import sys
import time

TIMEOUT_S = 10


def fail(msg):
    print(f"socks_client: {msg}", file=sys.stderr)
    sys.exit(1)


def dial(proxy):
    s = socket.create_connection(proxy, timeout=TIMEOUT_S)
    s.settimeout(TIMEOUT_S)
    return s


def recv_exact(s, n, what):
    buf = b""
    while len(buf) < n:
        try:
            chunk = s.recv(n - len(buf))
        except socket.timeout:
            fail(f"{what}: timed out after {TIMEOUT_S}s with {buf.hex() or 'nothing'}")
        except ConnectionResetError:
            fail(f"{what}: connection reset after {buf.hex() or 'nothing'}")
        if not chunk:
            fail(f"{what}: connection closed after {buf.hex() or 'nothing'} ({n} bytes expected)")
        buf += chunk
    return buf


def wait_closed(s, what):
    """Read until EOF or reset; return what arrived. Fails if the server keeps it open."""
    got = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            fail(f"{what}: server did not close the connection within {TIMEOUT_S}s"
                 f" (received {got.hex() or 'nothing'})")
        except ConnectionResetError:
            return got
        if not chunk:
            return got
        got += chunk


def greet(s):
    s.sendall(b"\x05\x01\x00")
    rep = recv_exact(s, 2, "method selection")
    if rep != b"\x05\x00":
        fail(f"method selection: expected 0500, got {rep.hex()}")


def read_reply(s, what):
    hdr = recv_exact(s, 4, what)
    if hdr[0] != 5:
        fail(f"{what}: reply version {hdr[0]:#04x}, expected 0x05 (reply {hdr.hex()})")
    atyp = hdr[3]
    if atyp == 1:
        rest = 4 + 2
    elif atyp == 4:
        rest = 16 + 2
    elif atyp == 3:
        rest = recv_exact(s, 1, what)[0] + 2
    else:
        fail(f"{what}: reply has ATYP {atyp:#04x} (reply {hdr.hex()})")
    recv_exact(s, rest, what)
    return hdr[1]


def check_reply(s, expect, what):
    rep = read_reply(s, what)
    if rep != expect:
        fail(f"{what}: reply {rep:#04x}, expected {expect:#04x}")
    if rep != 0:
        extra = wait_closed(s, f"{what}: after failure reply {rep:#04x}")
        if extra:
            fail(f"{what}: {len(extra)} unexpected bytes after failure reply")
    print(f"{what}: reply {rep:#04x}")


def encode_dest(host, port):
    try:
        a = ipaddress.ip_address(host)
        atyp = b"\x01" if a.version == 4 else b"\x04"
        dest = atyp + a.packed
    except ValueError:
        name = host.encode()
        dest = b"\x03" + bytes([len(name)]) + name
    return dest + int(port).to_bytes(2, "big")


def case_connect(proxy, host, port, expect):
    s = dial(proxy)
    greet(s)
    s.sendall(b"\x05\x01\x00" + encode_dest(host, port))
    check_reply(s, int(expect, 0), f"CONNECT {host}:{port}")


def case_request(proxy, req_hex, expect):
    s = dial(proxy)
    greet(s)
    s.sendall(bytes.fromhex(req_hex))
    check_reply(s, int(expect, 0), f"request {req_hex}")


def case_close(proxy, data_hex, *allowed):
    s = dial(proxy)
    s.sendall(bytes.fromhex(data_hex))
    got = wait_closed(s, f"sent {data_hex}")
    if got and got.hex() not in allowed:
        fail(f"sent {data_hex}: got {got.hex()} before close, allowed: {' '.join(allowed) or 'nothing'}")
    print(f"sent {data_hex}: closed after {got.hex() or 'nothing'}")


def case_answer(proxy, data_hex, expect):
    s = dial(proxy)
    s.sendall(bytes.fromhex(data_hex))
    got = wait_closed(s, f"sent {data_hex}")
    if got.hex() != expect.lower():
        fail(f"sent {data_hex}: got {got.hex() or 'nothing'} before close, expected {expect}")
    print(f"sent {data_hex}: closed after {got.hex()}")


def case_truncated(proxy, req_hex):
    s = dial(proxy)
    greet(s)
    s.sendall(bytes.fromhex(req_hex))
    # abortive close: RST instead of FIN, the harshest way to go
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    print(f"truncated request {req_hex}: reset the connection")


def case_random(proxy, nbytes):
    data = os.urandom(int(nbytes))
    s = dial(proxy)
    sent = 0
    try:
        while sent < len(data):
            sent += s.send(data[sent:sent + 65536])
    except socket.timeout:
        fail(f"random: server neither read nor closed after {sent} bytes ({TIMEOUT_S}s)")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server closed on the garbage: expected
    wait_closed(s, f"random ({sent} bytes sent, first {data[:4].hex()})")
    print(f"random: server closed after {sent} of {len(data)} bytes (first bytes {data[:4].hex()})")


def wait_closed_between(s, t0, min_s, max_s, what):
    """Waits for the server to close; fails unless that happens between min_s and max_s after t0.
    Returns what arrived before."""
    s.settimeout(max(0.1, t0 + max_s + 2 - time.monotonic()))
    got = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            fail(f"{what}: still open {time.monotonic() - t0:.1f}s after connecting"
                 f" (expected a close within {max_s}s; received {got.hex() or 'nothing'})")
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            break
        got += chunk
    took = time.monotonic() - t0
    if took < float(min_s):
        fail(f"{what}: closed after {took:.1f}s, before {min_s}s (received {got.hex() or 'nothing'})")
    return got, took


def case_stall(proxy, data_hex, min_s, max_s, *allowed):
    t0 = time.monotonic()
    s = dial(proxy)
    s.sendall(bytes.fromhex(data_hex))
    got, took = wait_closed_between(s, t0, float(min_s), float(max_s), f"stall after {data_hex}")
    if got and got.hex() not in allowed:
        fail(f"stall after {data_hex}: got {got.hex()} before close, allowed: {' '.join(allowed) or 'nothing'}")
    print(f"stall after {data_hex}: closed after {took:.1f}s, having sent {got.hex() or 'nothing'}")


def case_trickle(proxy, host, port, interval_s, min_s, max_s):
    data = b"\x05\x01\x00" + b"\x05\x01\x00" + encode_dest(host, port)
    t0 = time.monotonic()
    s = dial(proxy)
    got = b""
    sent = 0
    for i in range(len(data)):
        if i:
            time.sleep(float(interval_s))
        try:
            s.send(data[i:i + 1])
            sent += 1
        except (BrokenPipeError, ConnectionResetError):
            break
        # whatever the server sent so far, without waiting
        s.setblocking(False)
        try:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        except BlockingIOError:
            pass
        except ConnectionResetError:
            break
        finally:
            s.setblocking(True)
    rest, took = wait_closed_between(s, t0, float(min_s), float(max_s),
                                     f"trickle ({sent} of {len(data)} bytes sent)")
    got += rest
    if sent == len(data):
        fail(f"trickle: the whole request ({len(data)} bytes) went out before the close"
             f" ({took:.1f}s; received {got.hex() or 'nothing'})")
    if got != b"\x05\x00":
        fail(f"trickle: received {got.hex() or 'nothing'}, expected only the method choice 0500")
    print(f"trickle: one byte every {interval_s}s, closed after {took:.1f}s with {sent} of {len(data)}"
          f" bytes sent, received {got.hex()}")


def case_echo(proxy, host, port, nbytes):
    import socks  # Debian's python3-socks, in /usr/bin/python3

    data = os.urandom(int(nbytes))
    s = socks.socksocket()
    s.set_proxy(socks.SOCKS5, proxy[0], proxy[1], rdns=False)
    s.settimeout(TIMEOUT_S * 3)
    s.connect((host, int(port)))
    # the echo comes back while we send: interleave, never block on one direction
    got = bytearray()
    view = memoryview(data)
    sent = 0
    s.setblocking(False)

    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    write_open = True
    while True:
        events = sel.select(timeout=TIMEOUT_S * 3)
        if not events:
            fail(f"echo: stalled after sending {sent}, receiving {len(got)} of {len(data)} bytes")
        for _, mask in events:
            if mask & selectors.EVENT_WRITE and write_open:
                try:
                    sent += s.send(view[sent:sent + 65536])
                except BlockingIOError:
                    pass
                if sent == len(data):
                    s.shutdown(socket.SHUT_WR)  # half-close: the echo server then closes its side
                    write_open = False
                    sel.modify(s, selectors.EVENT_READ)
            if mask & selectors.EVENT_READ:
                try:
                    chunk = s.recv(262144)
                except BlockingIOError:
                    continue
                if not chunk:
                    if write_open:
                        fail(f"echo: EOF from the server before we finished sending ({sent} sent)")
                    if bytes(got) != data:
                        fail(f"echo: {len(got)} bytes back of {len(data)}, first "
                             f"{len(os.path.commonprefix([bytes(got), data]))} equal")
                    print(f"echo: {len(data)} bytes out and back, half-close both ways")
                    return
                got += chunk


def case_paced(proxy, host, port, nbytes, seconds, max_gap_s):
    import hashlib
    import socks  # Debian's python3-socks, in /usr/bin/python3

    nbytes, seconds, max_gap_s = int(nbytes), float(seconds), float(max_gap_s)
    data = os.urandom(nbytes)
    chunk = 16384
    s = socks.socksocket()
    s.set_proxy(socks.SOCKS5, proxy[0], proxy[1], rdns=False)
    s.settimeout(TIMEOUT_S * 3)
    s.connect((host, int(port)))
    s.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ)
    got = bytearray()
    sent = 0
    t0 = time.monotonic()
    last_rx = t0
    longest = 0.0
    write_open = True
    while True:
        now = time.monotonic()
        if write_open:
            due = min(nbytes, int(nbytes * (now - t0) / seconds) + chunk)
            while sent < due:
                try:
                    sent += s.send(data[sent:min(due, sent + chunk)])
                except BlockingIOError:
                    break
            if sent == nbytes:
                s.shutdown(socket.SHUT_WR)
                write_open = False
        events = sel.select(timeout=0.02)
        now = time.monotonic()
        if not events:
            if len(got) < sent:
                longest = max(longest, now - last_rx)
                if now - last_rx > max(max_gap_s, 1) * 10:
                    fail(f"paced: stalled {now - last_rx:.1f}s with {sent - len(got)} bytes outstanding")
            else:
                last_rx = now
            continue
        try:
            buf = s.recv(262144)
        except BlockingIOError:
            continue
        if not buf:
            break
        longest = max(longest, now - last_rx)
        last_rx = now
        got += buf
    took = time.monotonic() - t0
    want = hashlib.sha256(data).hexdigest()
    have = hashlib.sha256(bytes(got)).hexdigest()
    if len(got) != nbytes or have != want:
        fail(f"paced: {len(got)} of {nbytes} bytes back, sha256 {have}, sent {want}")
    if longest >= max_gap_s:
        fail(f"paced: the echo fell silent for {longest:.1f}s (limit {max_gap_s}s) with bytes outstanding")
    print(f"paced: {nbytes} bytes each way in {took:.1f}s, sha256 {want[:16]}... matches,"
          f" longest silence {longest:.2f}s")


def main():
    if len(sys.argv) < 4:
        fail(__doc__)
    proxy = (sys.argv[1], int(sys.argv[2]))
    case, args = sys.argv[3], sys.argv[4:]
    cases = {
        "connect": case_connect,
        "request": case_request,
        "close": case_close,
        "answer": case_answer,
        "truncated": case_truncated,
        "random": case_random,
        "stall": case_stall,
        "trickle": case_trickle,
        "echo": case_echo,
        "paced": case_paced,
    }
    if case not in cases:
        fail(f"unknown case {case}")
    try:
        cases[case](proxy, *args)
    except TypeError as e:
        fail(f"{case}: bad arguments: {e}")
    except OSError as e:
        fail(f"{case}: {e!r}")


if __name__ == "__main__":
    main()
