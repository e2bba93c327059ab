/* Looks at IP packets without lwIP: which of those lwIP sends are pure ACKs (with SACK blocks or
 * not), and what an ICMP error from the tunnel says about the connection it quotes. Pure
 * functions, unit-tested. */
#ifndef VPN2SOCKS_STACK_PACKET_H
#define VPN2SOCKS_STACK_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "base/addr.h"

enum {
    /* A TCP connection's key: IP version, source and destination addresses, ports. */
    PACKET_TCP_KEY_MAX = 1 + 16 + 16 + 2 + 2,
};

enum packet_tcp_kind {
    PACKET_NOT_TCP,       /* not TCP, a fragment, behind IPv6 extension headers, or truncated */
    PACKET_TCP_OTHER,     /* TCP carrying data, flags besides ACK, or options we cannot walk */
    PACKET_TCP_PURE_ACK,  /* only acknowledges: ACK flag, no data, no SACK blocks */
    PACKET_TCP_SACK_ACK,  /* the same with SACK blocks: what a receiver sends while data is missing */
};

struct packet_tcp_info {
    uint8_t key[PACKET_TCP_KEY_MAX];
    uint8_t key_len;
    uint32_t ackno;
};

/* Classifies an IPv4 or IPv6 packet; for TCP, fills info's key and acknowledgement number. */
enum packet_tcp_kind packet_classify_tcp(const uint8_t *pkt, size_t len, struct packet_tcp_info *info);

/* Fills info's key as packet_classify_tcp() does for a segment from src:sport to dst:dport (both
 * of one family), and its acknowledgement number with ackno. */
void packet_tcp_key(const struct v2s_addr *src, uint16_t sport, const struct v2s_addr *dst, uint16_t dport,
                    uint32_t ackno, struct packet_tcp_info *info);

/* Why a packet did not arrive, as an ICMP or ICMPv6 error says it. */
enum packet_icmp_reason {
    PACKET_ICMP_NET_UNREACHABLE,
    PACKET_ICMP_HOST_UNREACHABLE,
    PACKET_ICMP_REFUSED,       /* port (or IPv4 protocol) unreachable */
    PACKET_ICMP_PROHIBITED,    /* administratively prohibited, or beyond the source's scope */
    PACKET_ICMP_TIME_EXCEEDED, /* the TTL or hop limit ran out, or reassembly timed out */
};

/* An ICMP error and the packet it quotes: the quoted packet is one we sent, so src is our
 * address and dst the host we sent to. */
struct packet_icmp_error {
    enum packet_icmp_reason reason;
    uint8_t proto;             /* the quoted packet's protocol: PACKET_PROTO_TCP or _UDP */
    struct v2s_addr src, dst;
    uint16_t sport, dport;
    uint32_t seq;              /* TCP: the quoted sequence number; UDP: 0 */
};

enum { PACKET_PROTO_TCP = 6, PACKET_PROTO_UDP = 17 };

/* Parses an IPv4 ICMP or IPv6 ICMPv6 error (destination unreachable, time exceeded) that quotes
 * the start of a TCP or UDP packet: 1 with err filled, or 0 for anything else (another ICMP
 * type, "fragmentation needed" and "packet too big", which are hints rather than failures, a
 * quote too short for the ports and sequence number, a quoted IPv6 packet with extension
 * headers, a packet that is not ICMP). Checksums are not looked at. */
int packet_parse_icmp_error(const uint8_t *pkt, size_t len, struct packet_icmp_error *err);

/* The length of the IPv4 ICMP or IPv6 ICMPv6 packet pkt (len bytes read) as its IP header gives
 * it, when that fits in len and its checksums are right (the IPv4 header's and the ICMP one, or
 * ICMPv6's over its pseudo-header) and it is no IPv4 fragment; 0 for anything else. The two
 * parsers here check none of it: lwIP checks the checksums only after stack.c read the error. */
size_t packet_icmp_intact(const uint8_t *pkt, size_t len);

/* An ICMPv6 packet too big (RFC 4443 3.2) and the packet it quotes, one we sent: src is our
 * address. */
struct packet_too_big {
    uint32_t mtu;              /* the next hop's MTU, as the router gave it */
    uint8_t proto;             /* the quoted packet's next header */
    struct v2s_addr src, dst;
    uint16_t sport, dport;     /* TCP and UDP quotes; 0 for others */
    uint32_t seq;              /* TCP: the quoted sequence number; else 0 */
};

/* Parses an IPv6 ICMPv6 packet too big that quotes an IPv6 header: 1 with out filled, or 0 for
 * anything else (ports and sequence number are read only when the quote holds the transport
 * header's first 8 bytes right after the IPv6 header). Checksums are not looked at. */
int packet_parse_icmp6_too_big(const uint8_t *pkt, size_t len, struct packet_too_big *out);

/* 1 when stack.c must drop the IPv6 packet pkt before lwIP 2.1.3 reads it: an extension header
 * (hop-by-hop options, routing, destination options, fragment) or an option in one that does
 * not fit in the packet as its payload length gives it (lwIP reads its length before checking,
 * past the end of the buffer), or a fragment whose fragment header names an extension header as
 * the next one (lwIP aborts on a fragment header in a reassembled datagram). 0 for anything
 * else, other malformed packets included: lwIP drops those itself. */
int packet_ip6_drop(const uint8_t *pkt, size_t len);

/* 1 when the UDP datagram in pkt (IPv4 or IPv6, after IPv6's extension headers) must be dropped
 * where lwIP 2.1.3 would take it: a length field other than what the IP header leaves for it
 * (lwIP hands over whatever the IP header says and never reads the field), or, over IPv6, a zero
 * checksum (RFC 8200 8.1; lwIP skips the check as IPv4 allows). Fragments are left alone, but
 * for the checksum of an IPv6 datagram's first one; 0 for anything else. */
int packet_udp_drop(const uint8_t *pkt, size_t len);

#endif
