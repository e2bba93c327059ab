#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets: tests/fuzz/corpus/NAME/<seed name>.

  tests/fuzz/make_corpus.py            (re)writes every corpus; the output is the same each run

The seeds are the unit tests' vectors (tests/unit/test_*.c) and the messages of real sessions,
laid out as each target reads its input (see the comment at the top of tests/fuzz/NAME.c). A
corpus only gives the fuzzer a start: small, valid, and reaching every mode of its target.
Files a fuzzer finds are not added here; a long run by hand keeps its own folder (FUZZ_KEEP).
"""
import base64
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")

corpora = {}


def seed(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    corpora.setdefault(target, {})[name] = bytes(data)


def u16(v):
    return struct.pack(">H", v)


def u32(v):
    return struct.pack(">I", v)


# ---------------------------------------------------------------- fuzz_socks5 (test_socks5.c)
seed("fuzz_socks5", "connect-ipv4", b"\x05\x01\x00" b"\x05\x01\x00\x01" + bytes([192, 0, 2, 1]) + u16(80))
seed("fuzz_socks5", "connect-ipv6-two-methods",
     b"\x05\x02\x00\x02" b"\x05\x01\x00\x04" + bytes(range(16)) + u16(443))
seed("fuzz_socks5", "connect-domain", b"\x05\x01\x00" b"\x05\x01\x00\x03\x0fwww.example.com" + u16(80))
seed("fuzz_socks5", "udp-associate", b"\x05\x01\x00" b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
seed("fuzz_socks5", "bind-rsv7", b"\x05\x01\x00" b"\x05\x02\x07\x01\x0a\x00\x00\x01\x00\x50")
seed("fuzz_socks5", "socks4-user", b"\x04\x01\x15\x38\x00\x00\x00\x09bob\x00")
seed("fuzz_socks5", "socks4a-host", b"\x04\x01\x00\x50\x00\x00\x00\x01\x00web.lab.test\x00")
# a user id and a host name, each near its bound (the user id is counted, not kept)
seed("fuzz_socks5", "socks4a-long-host",
     b"\x04\x01\x00\x50\x00\x00\x00\x01" + b"u" * 250 + b"\x00"
     + (b"a" * 63 + b".") * 3 + b"b" * 61 + b"\x00")
seed("fuzz_socks5", "nmethods-0", b"\x05\x00\x05\x01")
# with --socks-auth (the target parses every input both ways): curl's greeting, a login, a request
seed("fuzz_socks5", "auth-userpass",
     b"\x05\x02\x00\x02" b"\x01\x05alice\x06pa:ss!" b"\x05\x01\x00\x03\x0cweb.lab.test" + u16(8080))
# UDP ASSOCIATE datagrams (the target parses every input as one too; test_socks_udp.c)
seed("fuzz_socks5", "udp-datagram-name", b"\x00\x00\x00\x03\x0cweb.lab.test" + u16(53) + b"query")
seed("fuzz_socks5", "udp-datagram-ipv6-frag", b"\x00\x00\x01\x04" + bytes(range(16)) + u16(7777) + b"x")

# ---------------------------------------------------------------- fuzz_dnsmsg (test_dnsmsg.c)
QNAME = b"\x03www\x07example\x03com\x00"


def dns_answer(qtype, answers, rcode=0, qid=0x1234):
    head = u16(qid) + u16(0x8180 | rcode) + u16(1) + u16(len(answers)) + u16(0) + u16(0)
    return head + QNAME + u16(qtype) + u16(1) + b"".join(answers)


def rr(name, rtype, rdata, ttl=300):
    return name + u16(rtype) + u16(1) + u32(ttl) + u16(len(rdata)) + rdata


PTR_QNAME = b"\xc0\x0c"  # a pointer to the question's name
seed("fuzz_dnsmsg", "a-two", b"\x00" + dns_answer(1, [rr(PTR_QNAME, 1, bytes([10, 0, 0, 1])),
                                                      rr(PTR_QNAME, 1, bytes([10, 0, 0, 2]))]))
cname = b"\x03web\x03lab\x04test\x00"
seed("fuzz_dnsmsg", "aaaa-after-cname",
     b"\x01" + dns_answer(28, [rr(PTR_QNAME, 5, cname), rr(b"\xc0\x2d", 28, bytes(range(16)))]))
seed("fuzz_dnsmsg", "nxdomain", b"\x00" + dns_answer(1, [], rcode=3))
seed("fuzz_dnsmsg", "name-as-query", "intranet.corp.example")

# ---------------------------------------------------------------- fuzz_settings (test_settings.c)
seed("fuzz_settings", "openconnect-dual-stack", "\n".join([
    "reason=connect", "VPNGATEWAY=198.51.100.7", "INTERNAL_IP4_ADDRESS=10.8.0.17",
    "INTERNAL_IP4_NETMASK=255.255.255.0", "INTERNAL_IP4_NETMASKLEN=24", "INTERNAL_IP4_MTU=1399",
    "INTERNAL_IP4_DNS=10.8.0.1 10.8.0.2 fd00::53", "INTERNAL_IP6_ADDRESS=fd00:1::17",
    "INTERNAL_IP6_NETMASK=fd00:1::17/64", "CISCO_DEF_DOMAIN=corp.example, lab.example",
    "CISCO_SPLIT_INC=2", "CISCO_SPLIT_INC_0_ADDR=10.0.0.0", "CISCO_SPLIT_INC_0_MASK=255.0.0.0",
    "CISCO_SPLIT_INC_0_MASKLEN=8", "CISCO_SPLIT_INC_1_ADDR=172.16.0.0", "CISCO_SPLIT_INC_1_MASK=255.240.0.0",
    "CISCO_SPLIT_INC_1_MASKLEN=12", "CISCO_SPLIT_EXC=1", "CISCO_SPLIT_EXC_0_ADDR=10.99.0.0",
    "CISCO_SPLIT_EXC_0_MASK=255.255.0.0", "CISCO_SPLIT_EXC_0_MASKLEN=16",
    "CISCO_IPV6_SPLIT_INC=1", "CISCO_IPV6_SPLIT_INC_0_ADDR=fd00::", "CISCO_IPV6_SPLIT_INC_0_MASKLEN=48"]))
seed("fuzz_settings", "minimal", "INTERNAL_IP4_ADDRESS=192.0.2.10")
seed("fuzz_settings", "ipv6-only", "INTERNAL_IP6_NETMASK=2001:db8:1::5/64\nINTERNAL_IP6_ADDRESS=2001:db8:1::5")
# a vpnc-script's environment (reason set, an escape sequence and DEL in it) and VPNFD
seed("fuzz_settings", "vpnc-script-reason",
     "reason=pre-init\x1b[31m\x7f\rx\nINTERNAL_IP4_ADDRESS=10.0.0.2\nINTERNAL_IP4_MTU=1334")
seed("fuzz_settings", "vpnfd", "VPNFD=7\nreason=connect")

# ---------------------------------------------------------------- fuzz_ovpn_config (test_ovpn_config.c)
ALIBABA = ("client\ndev tun\nproto udp\nremote 47.100.1.2 1194\nresolv-retry infinite\nnobind\n"
           "persist-key\npersist-tun\nca ca.crt\ncert client.crt\nkey client.key\n"
           "remote-cert-tls server\ncipher AES-128-CBC\ncomp-lzo\nauth-user-pass\nverb 3\n")
STATIC_KEY = ("-----BEGIN OpenVPN Static key V1-----\n" +
              "".join(bytes((i * 16 + j) * 7 % 256 for j in range(16)).hex() + "\n" for i in range(16)) +
              "-----END OpenVPN Static key V1-----\n")
PEM = "-----BEGIN CERTIFICATE-----\nMIIBCA==\n-----END CERTIFICATE-----\n"
PROFILE = ("# Generated by the server\r\nclient\r\ndev tun\r\nproto tcp-client\r\n"
           "remote vpn.example.com 443\r\nremote 2001:db8::1 1194 udp6\r\nremote-random\r\n"
           "remote-cert-tls server\r\nverify-x509-name 'server_Q7abc' name\r\nauth SHA256\r\n"
           "cipher AES-256-CBC\r\ndata-ciphers AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305\r\n"
           "tls-version-min 1.2\r\nignore-unknown-option block-outside-dns\r\nsetenv opt block-outside-dns\r\n"
           "key-direction 1\r\n<ca>\r\n" + PEM + "</ca>\r\n<tls-auth>\r\n" + STATIC_KEY + "</tls-auth>\r\n")
BLOCKS = ("client\n<connection>\nremote a.example 1194 udp\nconnect-timeout 5\n</connection>\n"
          "<connection>\nremote b.example 443 tcp\n</connection>\n"
          "<auth-user-pass>\nuser\npass word\n</auth-user-pass>\n"
          "route 10.1.0.0 255.255.0.0\nroute-nopull\ndhcp-option DNS 10.1.0.53\n"
          "compress stub-v2\nping 10\nping-restart 60\ntun-mtu 1400\n<tls-crypt>\n" + STATIC_KEY + "</tls-crypt>\n")
seed("fuzz_ovpn_config", "alibaba", b"\x80" + ALIBABA.encode())
seed("fuzz_ovpn_config", "server-profile", b"\x40" + PROFILE.encode())
seed("fuzz_ovpn_config", "connection-blocks", b"\xc0" + BLOCKS.encode())
seed("fuzz_ovpn_config", "static-key", b"\x00" + STATIC_KEY.encode())
# A tls-crypt-v2 client key laid out as OpenVPN's: Kc (256 bytes), then WKc ending in its length.
_wkc = bytes((i * 7 + 5) & 0xFF for i in range(297))
_wkc += u16(len(_wkc) + 2)
_b64 = base64.b64encode(bytes(range(256)) + _wkc).decode()
TCV2_KEY = ("-----BEGIN OpenVPN tls-crypt-v2 client key-----\n"
            + "".join(_b64[i:i + 64] + "\n" for i in range(0, len(_b64), 64))
            + "-----END OpenVPN tls-crypt-v2 client key-----\n")
seed("fuzz_ovpn_config", "tls-crypt-v2",
     b"\x60" + ("client\nremote vpn.example.com 1194\n<tls-crypt-v2>\n" + TCV2_KEY + "</tls-crypt-v2>\n").encode())

# ---------------------------------------------------------------- fuzz_ovpn_push (test_ovpn_push.c)
seed("fuzz_ovpn_push", "subnet-2.6",
     "PUSH_REPLY,route-gateway 10.8.0.1,topology subnet,ping 10,ping-restart 120,"
     "ifconfig 10.8.0.2 255.255.255.0,peer-id 0,cipher AES-256-GCM,"
     "protocol-flags cc-exit tls-ekm dyn-tls-crypt,tun-mtu 1500")
seed("fuzz_ovpn_push", "net30-alibaba",
     "PUSH_REPLY,route 10.8.0.1,topology net30,ping 10,ping-restart 120,ifconfig 10.8.0.6 10.8.0.5,"
     "peer-id 16777215,cipher AES-128-CBC,auth SHA256,key-derivation tls-ekm,comp-lzo no")
seed("fuzz_ovpn_push", "continuation",
     "PUSH_REPLY,route 10.1.0.0 255.255.0.0,dhcp-option DNS 10.1.0.53,push-continuation 2\n"
     "PUSH_REPLY,route 10.2.0.0 255.255.0.0,dhcp-option DNS 10.2.0.53,push-continuation 2\n"
     "PUSH_REPLY,route 10.3.0.0 255.255.0.0,ifconfig 10.8.0.9 10.8.0.10,push-continuation 1")
seed("fuzz_ovpn_push", "routes-ipv6-dns",
     "route 172.16.0.0 255.240.0.0,route 192.168.10.0 255.255.255.0 vpn_gateway,"
     "route 10.9.8.7 255.255.255.0 10.8.0.1 100,route 203.0.113.0 255.255.255.0 net_gateway,"
     "route-ipv6 2001:db8:1::/48,ifconfig-ipv6 fd00::2/64 fd00::1,dhcp-option DOMAIN lab.test,"
     "dhcp-option DNS6 fd00::53,block-outside-dns,redirect-gateway def1,auth-token SESS_ID_AT_abc,"
     "auth-token-user dXNlcg==,compress lz4-v2")

# ---------------------------------------------------------------- fuzz_ovpn_data (test_ovpn_data.c)
# byte 0: config (low nibble, 8 of them) and mode (high nibble % 3: 0 decrypt a hostile packet,
# 1 round trip, 2 one byte changed); byte 1: output room / 8; bytes 2, 3: the byte to change and
# how; then the packet or the payload: an IPv4 TCP SYN.
SYN = bytes.fromhex("4500003c1c4640004006b1e60a0800020a010001c35000501c46a8b400000000a002faf0fe300000"
                    "020405b40402080a0001a2b30000000001030307")
for config in range(8):
    for mode in range(3):
        seed("fuzz_ovpn_data", "config%d-mode%d" % (config, mode), bytes([mode << 4 | config, 0xFF, 5, 0x40]) + SYN)
seed("fuzz_ovpn_data", "hostile-v2-header", bytes([0x01, 0x20, 0, 0]) + b"\x48\x01\x02\x03" + u32(1) + bytes(32))

# ---------------------------------------------------------------- fuzz_ovpn_comp (test_ovpn_comp.c)
# byte 0: framing (0 none, 1 LZO, 2 V1, 3 V2); byte 1: output room / 16; the rest the payload.
LZO_LITERALS = bytes([17 + 11]) + b"hello world" + b"\x11\x00\x00"  # one literal run, then the end marker
LZ4_BLOCK = b"\x84ABCDEFGH\x08\x00\x50IJKLM"  # 8 literals, a match of 8 at distance 8, 5 literals
seed("fuzz_ovpn_comp", "none", b"\x00\x10" + SYN)
seed("fuzz_ovpn_comp", "lzo-plain", b"\x01\x10\xfa" + SYN)
seed("fuzz_ovpn_comp", "lzo-compressed", b"\x01\x10\x66" + LZO_LITERALS)
seed("fuzz_ovpn_comp", "v1-plain", b"\x02\x10\xfb" + SYN[1:] + SYN[:1])
seed("fuzz_ovpn_comp", "v1-lz4", b"\x02\x10\x69" + LZ4_BLOCK)
seed("fuzz_ovpn_comp", "v2-plain", b"\x03\x10" + SYN)
seed("fuzz_ovpn_comp", "v2-escaped", b"\x03\x10\x50\x00\x50" + SYN[1:])
seed("fuzz_ovpn_comp", "v2-lz4", b"\x03\x10\x50\x01" + LZ4_BLOCK)

# ---------------------------------------------------------------- fuzz_ovpn_control (test_ovpn_control.c)
# byte 0: wrapping (low nibble: 0 plain, 1-5 tls-auth, 6-7 tls-crypt) and action (high nibble:
# 0 hostile packet, 1 round trip, 2 tamper, 3 replay, 4 early negotiation records). A described
# packet: op/key id byte (op = [3, 4, 5, 7, 8][b % 5], key id = b >> 4 & 7), ack count byte, sid,
# acks, ack sid, msg id, payload.
SID_C, SID_S = bytes.fromhex("a1a2a3a4a5a6a7a8"), bytes.fromhex("b1b2b3b4b5b6b7b8")
CLIENT_HELLO_HEAD = bytes.fromhex("16030100f5010000f10303") + bytes(range(32))
OPS = {3: 0, 4: 1, 5: 2, 7: 3, 8: 4}


def plain_packet(op, key_id, sid, acks, ack_sid, msg_id, payload):
    p = bytes([op << 3 | key_id]) + sid + bytes([len(acks)]) + b"".join(u32(a) for a in acks)
    if acks:
        p += ack_sid
    if msg_id is not None:
        p += u32(msg_id)
    return p + payload


def described(op, key_id, acks, msg_id, payload, sid=SID_S, ack_sid=SID_C):
    d = bytes([key_id << 4 | OPS[op], len(acks)]) + sid + b"".join(u32(a) for a in acks)
    if acks:
        d += ack_sid
    if op != 5:
        d += u32(msg_id)
    return d + payload


# What a session's first packets look like: the server's reset acking ours, an ack, TLS data.
reset = plain_packet(8, 0, SID_S, [0], SID_C, 0, b"")
ack = plain_packet(5, 0, SID_S, [1, 2], SID_C, None, b"")
tls = plain_packet(4, 0, SID_S, [3], SID_C, 1, CLIENT_HELLO_HEAD)
soft = plain_packet(3, 1, SID_S, [], b"", 0, b"")
for wrap in range(8):
    for name, pkt in (("server-reset", reset), ("ack", ack), ("tls-data", tls), ("soft-reset", soft)):
        seed("fuzz_ovpn_control", "w%d-hostile-%s" % (wrap, name), bytes([wrap]) + pkt)
    seed("fuzz_ovpn_control", "w%d-roundtrip-reset" % wrap, bytes([0x10 | wrap, 0, 0, 0]) + described(8, 0, [0], 0, b""))
    seed("fuzz_ovpn_control", "w%d-roundtrip-tls" % wrap,
         bytes([0x10 | wrap, 0, 0, 0]) + described(4, 2, [3, 4, 5, 6, 7, 8, 9, 10], 7, CLIENT_HELLO_HEAD))
    seed("fuzz_ovpn_control", "w%d-tamper" % wrap, bytes([0x20 | wrap, 17, 0x40, 30]) + described(4, 0, [1], 2, b"data"))
    replay = bytes([0x30 | wrap, 4])
    for i in range(5):
        replay += bytes([16]) + described([8, 5, 4, 4, 4][i], 0, [i] if i else [], i, b"")
    seed("fuzz_ovpn_control", "w%d-replay" % wrap, replay + bytes([0, 1, 2, 1, 3, 4, 4, 0]))
# A 2.6 server's stateless reset to a tls-crypt-v2 client: EARLY_NEG_FLAGS with RESEND_WKC, and a
# record of a type the client skips.
seed("fuzz_ovpn_control", "early-neg", b"\x40" + bytes.fromhex("000100020001" "00090003aabbcc"))

# ---------------------------------------------------------------- fuzz_ovpn_reliable (test_ovpn_control.c)
# Steps: 0 send (byte: op bit, length << 1; then the bytes), 1 ack (byte: id selector), 2 time
# (byte * 250 ms), 3 receive (id selector, op bit + length << 1, bytes), 4 deliver (count - 1),
# 5 take acks (low nibble: fresh, high nibble: repeats).
def send(data):
    return bytes([0, 1 | len(data) << 1]) + data


def recv(offset, data):
    return bytes([3, 4 + offset, 1 | len(data) << 1]) + data


handshake = (send(b"") + bytes([2, 0]) + recv(0, b"") + bytes([5, 0x11]) + bytes([1, 0]) + bytes([4, 0]) +
             send(b"client hello") + recv(1, b"server hello") + recv(2, b"certificate") + bytes([4, 3]) +
             bytes([5, 0x48]) + bytes([1, 0]))
seed("fuzz_ovpn_reliable", "handshake", handshake)
seed("fuzz_ovpn_reliable", "reordered", recv(2, b"c") + recv(0, b"a") + recv(0, b"a") + recv(1, b"b") +
     recv(13, b"z") + bytes([4, 3]) + recv(-4, b"old") + bytes([5, 0x88, 5, 0x44]))
seed("fuzz_ovpn_reliable", "window-and-retransmit",
     b"".join(send(b"x%d" % i) for i in range(7)) + bytes([2, 0, 2, 8, 2, 16]) +
     bytes([1, 0, 1, 1, 1, 2, 2, 0, 1, 5, 1, 4, 1, 3, 2, 255, 2, 255]))
seed("fuzz_ovpn_reliable", "many-acks", b"".join(recv(i % 12, b"") + bytes([4, 0]) for i in range(40)) +
     bytes([5, 0x88, 5, 0x88, 5, 0x88]))

# ---------------------------------------------------------------- fuzz_ovpn_keymethod (test_ovpn_control.c)
# byte 0: 0 the server's message, 1 the client's message, 2 the offered ciphers; byte 1: room.
SERVER_OPTIONS = (b"V4,dev-type tun,link-mtu 1559,tun-mtu 1500,proto UDPv4,cipher AES-256-CBC,auth SHA1,"
                  b"keysize 256,key-method 2,tls-server")
randoms = bytes((i * 29 + 7) % 256 for i in range(64))
server_msg = u32(0) + b"\x02" + randoms + u16(len(SERVER_OPTIONS) + 1) + SERVER_OPTIONS + b"\x00"
seed("fuzz_ovpn_keymethod", "server-2.6", b"\x00\x80" + server_msg + u16(0) + u16(0) +
     u16(31) + b"IV_VER=2.6.14\nIV_PROTO=990\nx\x00\x00")
seed("fuzz_ovpn_keymethod", "server-short-room", b"\x00\x05" + server_msg)
seed("fuzz_ovpn_keymethod", "server-km1", b"\x00\x80" + u32(0) + b"\x01" + randoms + u16(1) + b"\x00")
key_source = bytes((i * 13 + 1) % 256 for i in range(112))
seed("fuzz_ovpn_keymethod", "client-user-pass", b"\x01\x01" + key_source +
     b"V4,dev-type tun,link-mtu 1549,tun-mtu 1500,proto UDPv4,cipher AES-128-CBC,auth SHA1,keysize 128,"
     b"key-method 2,tls-client\nalice\nsecret\nIV_VER=2.6.14\nIV_PLAT=linux\nIV_PROTO=14\nIV_NCP=2\n"
     b"IV_CIPHERS=AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305:AES-128-CBC")
seed("fuzz_ovpn_keymethod", "client-no-credentials", b"\x01\x02" + key_source + b"V4\n-\n-\nIV_VER=2.6.14")
seed("fuzz_ovpn_keymethod", "ciphers-alibaba", b"\x02\x80\nAES-128-CBC\n")
seed("fuzz_ovpn_keymethod", "ciphers-listed", b"\x02\x20CHACHA20-POLY1305:BF-CBC:aes-128-cbc:AES-128-CBC\n"
     b"AES-256-CBC\nAES-192-GCM")
seed("fuzz_ovpn_keymethod", "ciphers-none", b"\x02\xff\nnone\nnone")


# ---------------------------------------------------------------- fuzz_http_msg (test_http_proxy.c)
# First byte: bit 0 responses, bit 1 responses to HEAD, bit 2 de-chunked (to an HTTP/1.0 client);
# then the connection's bytes.
seed("fuzz_http_msg", "get-hop-by-hop", b"\x00GET http://127.0.0.1:8080/a/b?c=d#frag HTTP/1.1\r\nHost: wrong\r\n"
     b"Connection: keep-alive, X-Hop\r\nProxy-Connection: keep-alive\r\nX-Hop: 1\r\nAccept: */*\r\n\r\n")
seed("fuzz_http_msg", "proxy-authorization", b"\x00GET http://h/ HTTP/1.1\r\n"
     b"Proxy-Authorization: Basic YWxpY2U6czM6Y3IjdA==\r\n\r\n")
seed("fuzz_http_msg", "pipelined", b"\x00GET http://h/1 HTTP/1.1\r\n\r\nGET http://h/2 HTTP/1.1\r\n\r\n")
seed("fuzz_http_msg", "post-chunked", b"\x00POST http://h/up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n")
seed("fuzz_http_msg", "put-length", b"\x00PUT http://h/p HTTP/1.0\r\nContent-Length: 4\r\n\r\nbody")
seed("fuzz_http_msg", "connect", b"\x00CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\nping")
seed("fuzz_http_msg", "smuggle", b"\x00POST http://h/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
seed("fuzz_http_msg", "response-continue-chunked", b"\x01HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
     b"Transfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\n\r\n3\r\none\r\n0\r\n\r\n")
seed("fuzz_http_msg", "response-eof", b"\x01HTTP/1.0 200 OK\r\nServer: x\r\n\r\ntwo")
seed("fuzz_http_msg", "response-head", b"\x03HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
     b"HTTP/1.1 304 Not Modified\r\n\r\n")
seed("fuzz_http_msg", "trace-max-forwards", b"\x00TRACE http://h/t HTTP/1.1\r\nHost: h\r\nMax-Forwards: 3\r\n"
     b"Cookie: c=1\r\nVia: 1.0 a\r\n\r\nOPTIONS http://h HTTP/1.1\r\nHost: h\r\nMax-Forwards: 0\r\n\r\n")
seed("fuzz_http_msg", "response-unchunked", b"\x05HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n"
     b"Transfer-Encoding: x, chunked\r\n\r\n3\r\none\r\n0\r\n\r\n")
# A header past the cap whose name is malformed: the same answer (400) fed whole or byte by byte.
seed("fuzz_http_msg", "headers-past-cap", b"\x00GET http://a/ HTTP/1.1\r\n" + b"X: y\r\n" * 128 + b"Ba\x01d: z\r\n\r\n")
# Methods the parser does not know, read ahead of it (http_msg_read_method): QUERY with a body
# after an empty line, a chunked extension, a method of every token character, then a GET.
seed("fuzz_http_msg", "extension-methods", b"\x00\r\nQUERY http://h/q HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
     b"VERSION-CONTROL http://h/v HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"
     b"Z!#$%&'*+-.^_`|~09az http://h/z HTTP/1.1\r\n\r\nGET http://h/ HTTP/1.1\r\n\r\n")

# ---------------------------------------------------------------- fuzz_packet (test_packet.c,
# test_stack_guard.c): IP packets from the tunnel, with right checksums.
def csum(data):
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(">%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


US4, THEM4 = bytes([10, 8, 0, 2]), bytes([10, 9, 0, 1])
US6, THEM6 = bytes([0xfd] + [0] * 14 + [2]), bytes([0xfd] + [0] * 6 + [9] + [0] * 7 + [1])


def ip4(proto, src, dst, payload, frag=0):
    head = bytes([0x45, 0]) + u16(20 + len(payload)) + u16(1) + u16(frag) + bytes([64, proto]) + u16(0) + src + dst
    return head[:10] + u16(csum(head)) + head[12:] + payload


def ip6(nexth, src, dst, payload):
    return bytes([0x60, 0, 0, 0]) + u16(len(payload)) + bytes([nexth, 64]) + src + dst + payload


def icmp4(typ, code, rest, body):
    msg = bytes([typ, code]) + u16(0) + rest + body
    return msg[:2] + u16(csum(msg)) + msg[4:]


def icmp6(src, dst, typ, code, rest, body):
    msg = bytes([typ, code]) + u16(0) + rest + body
    pseudo = src + dst + u32(len(msg)) + b"\x00\x00\x00\x3a"
    return msg[:2] + u16(csum(pseudo + msg)) + msg[4:]


TCP_QUOTE = u16(49153) + u16(443) + u32(0x01020304)
seed("fuzz_packet", "icmp4-port-unreachable-tcp",
     ip4(1, THEM4, US4, icmp4(3, 3, bytes(4), ip4(6, US4, THEM4, TCP_QUOTE + bytes(12))[:28])))
seed("fuzz_packet", "icmp4-fragment", ip4(1, THEM4, US4, icmp4(3, 3, bytes(4), bytes(28)), frag=0x2000))
seed("fuzz_packet", "icmp6-port-unreachable-udp",
     ip6(58, THEM6, US6, icmp6(THEM6, US6, 1, 4, bytes(4), ip6(17, US6, THEM6, bytes(8))[:40] + bytes(8))))
seed("fuzz_packet", "icmp6-too-big-tcp",
     ip6(58, THEM6, US6, icmp6(THEM6, US6, 2, 0, u32(1280), ip6(6, US6, THEM6, TCP_QUOTE + bytes(12)))))
seed("fuzz_packet", "tcp4-ack-sack",
     ip4(6, US4, THEM4, u16(49153) + u16(8080) + u32(1) + u32(2) + bytes([0x80, 0x10]) + u16(512) + bytes(4)
         + bytes([1, 1, 5, 10]) + u32(100) + u32(200) + bytes([0, 0])))
seed("fuzz_packet", "udp6-hopbyhop-fragment",
     ip6(0, THEM6, US6, bytes([44, 0, 1, 4, 0, 0, 0, 0]) + bytes([17, 0, 0, 1]) + u32(7) + u16(53) + u16(40000)
         + u16(12) + u16(0) + b"abcd"))

# fuzz_idna: the first byte is also the output buffer's size.
seed("fuzz_idna", "ascii", b"\xffwww.example.com")
seed("fuzz_idna", "umlaut", b"\xff" + "www.b\u00fccher.example".encode())
seed("fuzz_idna", "cjk", b"\xff" + "\u65e5\u672c\u8a9e\u3002jp".encode())
seed("fuzz_idna", "dots", b"\x10" + "a\uff61b\uff0ec".encode())
seed("fuzz_idna", "emoji", b"\xff" + "\U0001F600x.".encode())


def main():
    for target, seeds in sorted(corpora.items()):
        folder = os.path.join(OUT, target)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        for name, data in sorted(seeds.items()):
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
    total = sum(len(s) for s in corpora.values())
    print("make_corpus: %d seeds for %d targets in %s" % (total, len(corpora), OUT))


if __name__ == "__main__":
    main()
