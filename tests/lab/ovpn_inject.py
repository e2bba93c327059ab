#!/usr/bin/python3
"""Forged OpenVPN data packets for the lab, sent as if from the server (raw IPv4, spoofed source).

usage: ovpn_inject.py sniff IFACE SRC_PORT TIMEOUT_S
           print (hex) the UDP payload of the first DATA_V1/V2 packet seen on IFACE from SRC_PORT
       ovpn_inject.py send SRC_IP SRC_PORT DST_IP DST_PORT KIND COUNT
           send COUNT datagrams of KIND from SRC_IP:SRC_PORT to DST_IP:DST_PORT:
             badtag      DATA_V2 of key 0 with a random packet id, tag and ciphertext
             unknownkey  the same with key id 6, which no session this short reaches
             short       a DATA_V2 byte of key 0 and nothing else (shorter than any header)
             hex:HEX     exactly these bytes (a captured packet, sent again: a replay)

Run sniff in the server's namespace on the veth, send there too: the client's UDP socket sees
packets from the server's address and port. Needs root (raw and packet sockets). Exit 0, or 1
with a message on stderr.
"""
import os
import select
import socket
import struct
import sys
import time

ETH_P_ALL, ETH_P_IP = 0x0003, 0x0800
OP_DATA_V1, OP_DATA_V2 = 6, 9


def fail(msg):
    print(f"ovpn_inject: {msg}", file=sys.stderr)
    sys.exit(1)


def sniff(iface, src_port, timeout):
    # Only ETH_P_ALL taps see outgoing packets.
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
        if not r:
            break
        frame, addr = s.recvfrom(65535)
        if addr[2] != socket.PACKET_OUTGOING or struct.unpack("!H", frame[12:14])[0] != ETH_P_IP:
            continue
        ip = frame[14:]
        if len(ip) < 28 or ip[9] != socket.IPPROTO_UDP:
            continue
        ihl = (ip[0] & 0x0F) * 4
        sport, _dport, ulen = struct.unpack("!HHH", ip[ihl:ihl + 6])
        payload = ip[ihl + 8:ihl + ulen]
        if sport == src_port and payload and payload[0] >> 3 in (OP_DATA_V1, OP_DATA_V2):
            print(payload.hex())
            return
    fail(f"no data packet from port {src_port} on {iface} within {timeout} s")


def forged(kind):
    if kind == "badtag":
        return bytes([OP_DATA_V2 << 3 | 0, 0, 0, 0]) + os.urandom(4 + 16 + 32)
    if kind == "unknownkey":
        return bytes([OP_DATA_V2 << 3 | 6, 0, 0, 0]) + os.urandom(4 + 16 + 32)
    if kind == "short":
        return bytes([OP_DATA_V2 << 3 | 0])
    if kind.startswith("hex:"):
        return bytes.fromhex(kind[4:])
    fail(f"unknown kind {kind}")
    return b""


def send(src_ip, src_port, dst_ip, dst_port, kind, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    for _ in range(count):
        payload = forged(kind)
        udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload  # no UDP checksum
        # The kernel fills in the IP checksum (and the id when it is 0) for IP_HDRINCL.
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, socket.IPPROTO_UDP, 0,
                         socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
        s.sendto(ip + udp, (dst_ip, 0))
        time.sleep(0.01)


def main(argv):
    if len(argv) == 5 and argv[1] == "sniff":
        sniff(argv[2], int(argv[3]), float(argv[4]))
    elif len(argv) == 8 and argv[1] == "send":
        send(argv[2], int(argv[3]), argv[4], int(argv[5]), argv[6], int(argv[7]))
    else:
        fail(__doc__.strip().splitlines()[2])


if __name__ == "__main__":
    main(sys.argv)
