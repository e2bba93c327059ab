/* Looks at the IP packets lwIP sends, without lwIP: pure functions, unit-tested. */
#ifndef VPN2SOCKS_STACK_PACKET_H
#define VPN2SOCKS_STACK_PACKET_H

#include <stddef.h>
#include <stdint.h>

enum {
    /* A TCP connection's key: IP version, source and destination addresses, ports. */
    PACKET_TCP_KEY_MAX = 1 + 16 + 16 + 2 + 2,
};

enum packet_tcp_kind {
    PACKET_NOT_TCP,       /* not TCP, a fragment, behind IPv6 extension headers, or truncated */
    PACKET_TCP_OTHER,     /* TCP carrying data, flags besides ACK, SACK blocks or odd options */
    PACKET_TCP_PURE_ACK,  /* only acknowledges: ACK flag, no data, no SACK blocks */
};

struct packet_tcp_info {
    uint8_t key[PACKET_TCP_KEY_MAX];
    uint8_t key_len;
    uint32_t ackno;
};

/* Classifies an IPv4 or IPv6 packet; for TCP, fills info's key and acknowledgement number. */
enum packet_tcp_kind packet_classify_tcp(const uint8_t *pkt, size_t len, struct packet_tcp_info *info);

#endif
