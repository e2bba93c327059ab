#!/usr/bin/python3
"""A small DNS server for the split-DNS lab test, logging every question it gets.

usage: dns_server.py ADDR LOGFILE MODE [NAME=IPV4 ...]
  MODE  answer  answers over UDP and TCP
        tc      answers over UDP with TC=1 and no records, over TCP in full
        silent  logs and never answers (a dead server that still shows what reached it)
Each question is one log line "udp|tcp NAME TYPE" (NAME lowercased, TYPE a number), flushed at
once. Known names get their A record (TTL 300); AAAA of a known name is NOERROR without records,
an unknown name NXDOMAIN, both with an SOA (TTL and MINIMUM 60) in the authority section.
"""
import socket
import struct
import sys
import threading


def parse_question(msg):
    """(id, flags, name, qtype, end of question) or None"""
    if len(msg) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    if qd != 1:
        return None
    off, labels = 12, []
    while off < len(msg) and msg[off] != 0:
        n = msg[off]
        if n & 0xC0:
            return None
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace").lower())
        off += 1 + n
    off += 1
    if off + 4 > len(msg):
        return None
    qtype = struct.unpack("!H", msg[off:off + 2])[0]
    return qid, flags, ".".join(labels), qtype, off + 4


def answer(msg, zone, truncate):
    q = parse_question(msg)
    if q is None:
        return None, None
    qid, flags, name, qtype, qend = q
    question = msg[12:qend]
    addr = zone.get(name)
    rcode = 0 if addr else 3
    out_flags = 0x8180 | rcode | (flags & 0x0100)
    if truncate:
        return q, struct.pack("!HHHHHH", qid, out_flags | 0x0200, 1, 0, 0, 0) + question
    answers, authority = b"", b""
    if addr and qtype == 1:
        answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + socket.inet_aton(addr)
    else:
        rdata = b"\x00\x00" + struct.pack("!IIIII", 1, 3600, 600, 86400, 60)
        authority = b"\x00" + struct.pack("!HHIH", 6, 1, 60, len(rdata)) + rdata
    head = struct.pack("!HHHHHH", qid, out_flags, 1, 1 if answers else 0, 1 if authority else 0, 0)
    return q, head + question + answers + authority


def main():
    addr, logfile, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    zone = dict(arg.lower().split("=", 1) for arg in sys.argv[4:])
    log = open(logfile, "a", buffering=1)
    lock = threading.Lock()

    def note(proto, q):
        with lock:
            log.write("%s %s %d\n" % (proto, q[2], q[3]))

    def serve_tcp(conn):
        with conn:
            conn.settimeout(10)
            buf = b""
            try:
                while True:
                    data = conn.recv(4096)
                    if not data:
                        return
                    buf += data
                    while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                        n = struct.unpack("!H", buf[:2])[0]
                        msg, buf = buf[2:2 + n], buf[2 + n:]
                        q, reply = answer(msg, zone, False)
                        if q is None:
                            return
                        note("tcp", q)
                        if mode != "silent":
                            conn.sendall(struct.pack("!H", len(reply)) + reply)
            except OSError:
                return

    def tcp_loop(lsock):
        while True:
            conn, _ = lsock.accept()
            threading.Thread(target=serve_tcp, args=(conn,), daemon=True).start()

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((addr, 53))
    lsock.listen(16)
    threading.Thread(target=tcp_loop, args=(lsock,), daemon=True).start()
    usock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    usock.bind((addr, 53))
    while True:
        msg, peer = usock.recvfrom(4096)
        q, reply = answer(msg, zone, mode == "tc")
        if q is None:
            continue
        note("udp", q)
        if mode != "silent":
            usock.sendto(reply, peer)


if __name__ == "__main__":
    main()
