#include "stack/packet.h"

#include <string.h>
#include <sys/socket.h>

#include "base/bytes.h"
#include "stack/lwipopts.h" /* stack_chksum() */

enum {
    IPPROTO_ICMP_NUM = 1,
    IPPROTO_ICMPV6_NUM = 58,
    ICMP_UNREACHABLE = 3,
    ICMP_TIME_EXCEEDED = 11,
    ICMPV6_UNREACHABLE = 1,
    ICMPV6_TOO_BIG = 2,
    IP6_NEXTH_HOPBYHOP = 0,
    IP6_NEXTH_ROUTING = 43,
    IP6_NEXTH_FRAGMENT = 44,
    IP6_NEXTH_DESTOPTS = 60,
    IPPROTO_UDP_NUM = 17,
    ICMPV6_TIME_EXCEEDED = 3,
    IPPROTO_TCP_NUM = 6,
    TCP_FLAG_ACK = 0x10,
    TCP_FLAGS_MASK = 0x3F, /* URG ACK PSH RST SYN FIN */
    TCP_OPT_END = 0,
    TCP_OPT_NOP = 1,
    TCP_OPT_SACK = 5,
};

enum packet_tcp_kind packet_classify_tcp(const uint8_t *pkt, size_t len, struct packet_tcp_info *info)
{
    size_t ihl;
    if (len >= 20 && pkt[0] >> 4 == 4) {
        ihl = (size_t)(pkt[0] & 15) * 4;
        if (pkt[9] != IPPROTO_TCP_NUM || ihl < 20 || (((pkt[6] & 0x3F) << 8) | pkt[7]))
            return PACKET_NOT_TCP; /* not TCP, or a fragment (MF set or an offset) */
        info->key[0] = 4;
        memcpy(info->key + 1, pkt + 12, 8);
        info->key_len = 1 + 8 + 4;
    } else if (len >= 40 && pkt[0] >> 4 == 6) {
        ihl = 40;
        if (pkt[6] != IPPROTO_TCP_NUM)
            return PACKET_NOT_TCP;
        info->key[0] = 6;
        memcpy(info->key + 1, pkt + 8, 32);
        info->key_len = 1 + 32 + 4;
    } else {
        return PACKET_NOT_TCP;
    }
    if (len < ihl + 20)
        return PACKET_NOT_TCP;
    const uint8_t *tcp = pkt + ihl;
    memcpy(info->key + info->key_len - 4, tcp, 4);
    info->ackno = (uint32_t)tcp[8] << 24 | (uint32_t)tcp[9] << 16 | (uint32_t)tcp[10] << 8 | tcp[11];
    size_t doff = (size_t)(tcp[12] >> 4) * 4;
    if (doff < 20 || len != ihl + doff || (tcp[13] & TCP_FLAGS_MASK) != TCP_FLAG_ACK)
        return PACKET_TCP_OTHER;
    int sack = 0;
    for (size_t i = 20; i < doff;) {
        uint8_t kind = tcp[i];
        if (kind == TCP_OPT_END)
            break;
        if (kind == TCP_OPT_NOP) {
            i++;
            continue;
        }
        if (i + 1 >= doff || tcp[i + 1] < 2 || i + tcp[i + 1] > doff)
            return PACKET_TCP_OTHER; /* options we cannot walk */
        if (kind == TCP_OPT_SACK)
            sack = 1;
        i += tcp[i + 1];
    }
    return sack ? PACKET_TCP_SACK_ACK : PACKET_TCP_PURE_ACK;
}

void packet_tcp_key(const struct v2s_addr *src, uint16_t sport, const struct v2s_addr *dst, uint16_t dport,
                    uint32_t ackno, struct packet_tcp_info *info)
{
    size_t alen = src->family == AF_INET6 ? 16 : 4;
    info->key[0] = src->family == AF_INET6 ? 6 : 4;
    memcpy(info->key + 1, src->bytes, alen);
    memcpy(info->key + 1 + alen, dst->bytes, alen);
    v2s_put_be16(info->key + 1 + 2 * alen, sport);
    v2s_put_be16(info->key + 3 + 2 * alen, dport);
    info->key_len = (uint8_t)(1 + 2 * alen + 4);
    info->ackno = ackno;
}

/* The reason an IPv4 ICMP error gives, or -1 for one that is not a failure (code 4, fragmentation
 * needed, is a path MTU hint) or not an error at all. */
static int packet_icmp4_reason(uint8_t type, uint8_t code)
{
    if (type == ICMP_TIME_EXCEEDED)
        return PACKET_ICMP_TIME_EXCEEDED;
    if (type != ICMP_UNREACHABLE)
        return -1;
    switch (code) {
    case 0: case 6: case 11: return PACKET_ICMP_NET_UNREACHABLE;
    case 1: case 5: case 7: case 8: case 12: return PACKET_ICMP_HOST_UNREACHABLE;
    case 2: case 3: return PACKET_ICMP_REFUSED;
    case 9: case 10: case 13: return PACKET_ICMP_PROHIBITED;
    default: return -1;
    }
}

/* The same for ICMPv6 (RFC 4443); code 2 (beyond the scope of the source address) and the
 * newer codes are not taken as failures. */
static int packet_icmp6_reason(uint8_t type, uint8_t code)
{
    if (type == ICMPV6_TIME_EXCEEDED)
        return PACKET_ICMP_TIME_EXCEEDED;
    if (type != ICMPV6_UNREACHABLE)
        return -1;
    switch (code) {
    case 0: return PACKET_ICMP_NET_UNREACHABLE;
    case 1: case 5: case 6: return PACKET_ICMP_PROHIBITED;
    case 3: return PACKET_ICMP_HOST_UNREACHABLE;
    case 4: return PACKET_ICMP_REFUSED;
    default: return -1;
    }
}

/* The one's complement sum of the n bytes at p added to sum, folded to 16 bits: 0xFFFF over a
 * packet whose checksum is right (RFC 1071), in either byte order. */
static uint32_t packet_sum(uint32_t sum, const uint8_t *p, size_t n)
{
    sum += stack_chksum(p, (int)n);
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return sum;
}

size_t packet_icmp_intact(const uint8_t *pkt, size_t len)
{
    if (len >= 20 && pkt[0] >> 4 == 4) {
        size_t ihl = (size_t)(pkt[0] & 0x0F) * 4, tot = v2s_get_be16(pkt + 2);
        if (pkt[9] != IPPROTO_ICMP_NUM || ihl < 20 || tot < ihl + 8 || tot > len || (v2s_get_be16(pkt + 6) & 0x3FFF))
            return 0;
        if (packet_sum(0, pkt, ihl) != 0xFFFF || packet_sum(0, pkt + ihl, tot - ihl) != 0xFFFF)
            return 0;
        return tot;
    }
    if (len >= 40 && pkt[0] >> 4 == 6) {
        size_t plen = v2s_get_be16(pkt + 4);
        if (pkt[6] != IPPROTO_ICMPV6_NUM || plen < 8 || plen > len - 40)
            return 0;
        /* RFC 8200 8.1: the addresses, the upper-layer length and the next header. */
        uint8_t pseudo[40];
        memcpy(pseudo, pkt + 8, 32);
        v2s_put_be32(pseudo + 32, (uint32_t)plen);
        memset(pseudo + 36, 0, 3);
        pseudo[39] = IPPROTO_ICMPV6_NUM;
        if (packet_sum(packet_sum(0, pseudo, sizeof(pseudo)), pkt + 40, plen) != 0xFFFF)
            return 0;
        return 40 + plen;
    }
    return 0;
}

int packet_parse_icmp_error(const uint8_t *pkt, size_t len, struct packet_icmp_error *err)
{
    const uint8_t *inner;
    int reason;
    memset(err, 0, sizeof(*err));
    if (len >= 20 && pkt[0] >> 4 == 4) {
        size_t ihl = (size_t)(pkt[0] & 0x0F) * 4;
        if (pkt[9] != IPPROTO_ICMP_NUM || ihl < 20 || len < ihl + 8)
            return 0;
        const uint8_t *icmp = pkt + ihl;
        if ((reason = packet_icmp4_reason(icmp[0], icmp[1])) < 0)
            return 0;
        inner = icmp + 8;
        size_t ilen = len - ihl - 8;
        if (ilen < 20 || inner[0] >> 4 != 4)
            return 0;
        size_t iihl = (size_t)(inner[0] & 0x0F) * 4;
        if (iihl < 20 || ilen < iihl + 8)
            return 0;
        err->proto = inner[9];
        err->src.family = err->dst.family = AF_INET;
        memcpy(err->src.bytes, inner + 12, 4);
        memcpy(err->dst.bytes, inner + 16, 4);
        inner += iihl;
    } else if (len >= 40 && pkt[0] >> 4 == 6) {
        if (pkt[6] != IPPROTO_ICMPV6_NUM || len < 40 + 8)
            return 0;
        const uint8_t *icmp = pkt + 40;
        if ((reason = packet_icmp6_reason(icmp[0], icmp[1])) < 0)
            return 0;
        inner = icmp + 8;
        /* Only a transport header straight after the quoted IPv6 header; extension headers are
         * rare here. */
        if (len - 48 < 48 || inner[0] >> 4 != 6)
            return 0;
        err->proto = inner[6];
        err->src.family = err->dst.family = AF_INET6;
        memcpy(err->src.bytes, inner + 8, 16);
        memcpy(err->dst.bytes, inner + 24, 16);
        inner += 40;
    } else {
        return 0;
    }
    if (err->proto != PACKET_PROTO_TCP && err->proto != PACKET_PROTO_UDP)
        return 0;
    err->reason = (enum packet_icmp_reason)reason;
    err->sport = v2s_get_be16(inner);
    err->dport = v2s_get_be16(inner + 2);
    /* The first 8 bytes are all an IPv4 router must quote: for TCP, the ports and the sequence
     * number; UDP's are its ports, length and checksum. */
    err->seq = err->proto == PACKET_PROTO_TCP ? v2s_get_be32(inner + 4) : 0;
    return 1;
}

int packet_parse_icmp6_too_big(const uint8_t *pkt, size_t len, struct packet_too_big *out)
{
    memset(out, 0, sizeof(*out));
    /* Our IPv6 header, the ICMPv6 header with the MTU, the quoted IPv6 header. */
    if (len < 40 + 8 + 40 || pkt[0] >> 4 != 6 || pkt[6] != IPPROTO_ICMPV6_NUM)
        return 0;
    const uint8_t *icmp = pkt + 40, *inner = icmp + 8;
    if (icmp[0] != ICMPV6_TOO_BIG || icmp[1] != 0 || inner[0] >> 4 != 6)
        return 0;
    out->mtu = v2s_get_be32(icmp + 4);
    out->proto = inner[6];
    out->src.family = out->dst.family = AF_INET6;
    memcpy(out->src.bytes, inner + 8, 16);
    memcpy(out->dst.bytes, inner + 24, 16);
    if ((out->proto == PACKET_PROTO_TCP || out->proto == PACKET_PROTO_UDP) && len >= 40 + 8 + 40 + 8) {
        out->sport = v2s_get_be16(inner + 40);
        out->dport = v2s_get_be16(inner + 42);
        if (out->proto == PACKET_PROTO_TCP)
            out->seq = v2s_get_be32(inner + 44);
    }
    return 1;
}

static int packet_ip6_is_extension(uint8_t nexth)
{
    return nexth == IP6_NEXTH_HOPBYHOP || nexth == IP6_NEXTH_ROUTING || nexth == IP6_NEXTH_FRAGMENT ||
           nexth == IP6_NEXTH_DESTOPTS;
}

/* 1 when every option of the hop-by-hop or destination options header h (hlen bytes) has its
 * type and length bytes inside it; a Pad1 is one byte. */
static int packet_ip6_options_fit(const uint8_t *h, size_t hlen)
{
    for (size_t at = 2; at < hlen;) {
        if (h[at] == 0) {
            at++;
            continue;
        }
        if (hlen - at < 2)
            return 0;
        at += 2 + (size_t)h[at + 1];
    }
    return 1;
}

int packet_ip6_drop(const uint8_t *pkt, size_t len)
{
    if (len < 40 || pkt[0] >> 4 != 6)
        return 0;
    size_t plen = v2s_get_be16(pkt + 4);
    if (plen > len - 40)
        return 0; /* lwIP drops a packet shorter than its payload length */
    len = 40 + plen; /* and cuts one that is longer */
    uint8_t nexth = pkt[6];
    for (size_t at = 40; packet_ip6_is_extension(nexth);) {
        if (len - at < 8)
            return 1;
        const uint8_t *h = pkt + at;
        if (nexth == IP6_NEXTH_FRAGMENT)
            return packet_ip6_is_extension(h[0]);
        size_t hlen = ((size_t)h[1] + 1) * 8;
        if (len - at < hlen)
            return 1;
        if (nexth != IP6_NEXTH_ROUTING && !packet_ip6_options_fit(h, hlen))
            return 1;
        nexth = h[0];
        at += hlen;
    }
    return 0;
}

int packet_udp_drop(const uint8_t *pkt, size_t len)
{
    size_t at, end;
    int v6 = 0, first_fragment = 0;
    if (len >= 20 && pkt[0] >> 4 == 4) {
        at = (size_t)(pkt[0] & 0x0F) * 4;
        end = v2s_get_be16(pkt + 2);
        if (pkt[9] != IPPROTO_UDP_NUM || at < 20 || end < at || end > len || (v2s_get_be16(pkt + 6) & 0x3FFF))
            return 0;
    } else if (len >= 40 && pkt[0] >> 4 == 6) {
        v6 = 1;
        end = 40 + (size_t)v2s_get_be16(pkt + 4);
        if (end > len)
            return 0;
        uint8_t nexth = pkt[6];
        for (at = 40; packet_ip6_is_extension(nexth);) {
            if (end - at < 8)
                return 0;
            const uint8_t *h = pkt + at;
            size_t hlen = nexth == IP6_NEXTH_FRAGMENT ? 8 : ((size_t)h[1] + 1) * 8;
            if (nexth == IP6_NEXTH_FRAGMENT) {
                uint16_t off = v2s_get_be16(h + 2);
                if (off & 0xFFF8)
                    return 0; /* a later fragment: no UDP header in it */
                first_fragment |= off & 1;
            }
            if (end - at < hlen)
                return 0;
            nexth = h[0];
            at += hlen;
        }
        if (nexth != IPPROTO_UDP_NUM)
            return 0;
    } else {
        return 0;
    }
    if (end - at < 8)
        return 0; /* lwIP drops it */
    if (v6 && v2s_get_be16(pkt + at + 6) == 0)
        return 1;
    return !first_fragment && v2s_get_be16(pkt + at + 4) != end - at;
}
