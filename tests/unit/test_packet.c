/* stack/packet.c: which of the packets we send are pure ACKs (held back and thinned). */
#include <stdint.h>
#include <sys/socket.h>
#include <string.h>

#include "stack/packet.h"
#include "test.h"

/* An IPv4 + TCP packet: flags, TCP options (a multiple of 4 bytes) and payload length. */
static size_t make4(uint8_t *p, uint8_t flags, const uint8_t *opts, size_t optlen, size_t payload)
{
    size_t doff = 20 + optlen, len = 20 + doff + payload;
    memset(p, 0, len);
    p[0] = 0x45;
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
    p[6] = 0x40; /* DF */
    p[8] = 64;
    p[9] = 6;
    memcpy(p + 12, (const uint8_t[]){10, 97, 1, 6, 10, 99, 0, 1}, 8);
    uint8_t *t = p + 20;
    t[0] = 0xC0, t[1] = 0x01; /* port 49153 */
    t[2] = 0x1F, t[3] = 0x90; /* port 8080 */
    t[8] = 0x11, t[9] = 0x22, t[10] = 0x33, t[11] = 0x44;
    t[12] = (uint8_t)(doff / 4 << 4);
    t[13] = flags;
    if (optlen)
        memcpy(t + 20, opts, optlen);
    return len;
}

static const uint8_t ts_opts[12] = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2};
static const uint8_t sack_opts[12] = {1, 1, 5, 10, 0, 0, 0x10, 0, 0, 0, 0x20, 0};

TEST_IMPL(packet_pure_ack)
{
    uint8_t p[1600];
    struct packet_tcp_info a, b;
    size_t len = make4(p, 0x10, NULL, 0, 0);
    ASSERT_EQ(packet_classify_tcp(p, len, &a), PACKET_TCP_PURE_ACK);
    ASSERT_EQ(a.ackno, 0x11223344);
    ASSERT_EQ(a.key_len, 13);
    ASSERT_EQ(a.key[0], 4);
    /* Timestamps do not stop an ACK from being pure. */
    len = make4(p, 0x10, ts_opts, sizeof(ts_opts), 0);
    ASSERT_EQ(packet_classify_tcp(p, len, &b), PACKET_TCP_PURE_ACK);
    ASSERT_EQ(memcmp(a.key, b.key, a.key_len), 0);
    /* Another port: another connection. */
    p[20 + 1] = 0x02;
    ASSERT_EQ(packet_classify_tcp(p, len, &b), PACKET_TCP_PURE_ACK);
    ASSERT(memcmp(a.key, b.key, a.key_len) != 0);
    return 0;
}

TEST_IMPL(packet_not_pure)
{
    uint8_t p[1600];
    struct packet_tcp_info i;
    static const uint8_t flags[] = {0x18 /* PSH */, 0x11 /* FIN */, 0x14 /* RST */, 0x12 /* SYN */,
                                    0x30 /* URG */, 0x04 /* RST alone */, 0x00};
    for (size_t f = 0; f < sizeof(flags); f++)
        ASSERT_EQ(packet_classify_tcp(p, make4(p, flags[f], NULL, 0, 0), &i), PACKET_TCP_OTHER);
    /* Data, data with SACK blocks, an option that runs past the header, a zero option length. */
    ASSERT_EQ(packet_classify_tcp(p, make4(p, 0x10, NULL, 0, 100), &i), PACKET_TCP_OTHER);
    ASSERT_EQ(packet_classify_tcp(p, make4(p, 0x10, sack_opts, sizeof(sack_opts), 100), &i), PACKET_TCP_OTHER);
    /* A pure ACK with SACK blocks is a kind of its own. */
    ASSERT_EQ(packet_classify_tcp(p, make4(p, 0x10, sack_opts, sizeof(sack_opts), 0), &i), PACKET_TCP_SACK_ACK);
    ASSERT_EQ(packet_classify_tcp(p, make4(p, 0x10, (const uint8_t[]){1, 8, 12, 0}, 4, 0), &i), PACKET_TCP_OTHER);
    ASSERT_EQ(packet_classify_tcp(p, make4(p, 0x10, (const uint8_t[]){3, 0, 0, 0}, 4, 0), &i), PACKET_TCP_OTHER);
    /* A data offset below 20 bytes. */
    size_t len = make4(p, 0x10, NULL, 0, 0);
    p[20 + 12] = 0x40;
    ASSERT_EQ(packet_classify_tcp(p, len, &i), PACKET_TCP_OTHER);
    return 0;
}

TEST_IMPL(packet_not_tcp)
{
    uint8_t p[1600];
    struct packet_tcp_info i;
    size_t len = make4(p, 0x10, NULL, 0, 0);
    p[9] = 17; /* UDP */
    ASSERT_EQ(packet_classify_tcp(p, len, &i), PACKET_NOT_TCP);
    len = make4(p, 0x10, NULL, 0, 0);
    p[6] = 0x20; /* more fragments */
    ASSERT_EQ(packet_classify_tcp(p, len, &i), PACKET_NOT_TCP);
    len = make4(p, 0x10, NULL, 0, 0);
    p[7] = 0x01; /* a fragment offset */
    ASSERT_EQ(packet_classify_tcp(p, len, &i), PACKET_NOT_TCP);
    /* Every truncation of a pure ACK, and a bad IPv4 header length. */
    len = make4(p, 0x10, ts_opts, sizeof(ts_opts), 0);
    for (size_t n = 0; n < 40; n++)
        ASSERT_EQ(packet_classify_tcp(p, n, &i), PACKET_NOT_TCP);
    for (size_t n = 40; n < len; n++)
        ASSERT_EQ(packet_classify_tcp(p, n, &i), PACKET_TCP_OTHER);
    p[0] = 0x44;
    ASSERT_EQ(packet_classify_tcp(p, len, &i), PACKET_NOT_TCP);
    p[0] = 0x46; /* the TCP header would start 4 bytes later: lengths disagree */
    ASSERT_EQ(packet_classify_tcp(p, len, &i), PACKET_TCP_OTHER);
    p[0] = 0x55; /* not IP at all */
    ASSERT_EQ(packet_classify_tcp(p, len, &i), PACKET_NOT_TCP);
    return 0;
}

TEST_IMPL(packet_ipv6)
{
    uint8_t p[128] = {0};
    struct packet_tcp_info i;
    p[0] = 0x60;
    p[5] = 20;
    p[6] = 6;
    p[7] = 64;
    p[8] = 0xfd, p[23] = 2;  /* source fd00::2 */
    p[24] = 0xfd, p[39] = 1; /* destination fd00::1 */
    uint8_t *t = p + 40;
    t[0] = 1, t[1] = 2, t[2] = 3, t[3] = 4;
    t[11] = 9;
    t[12] = 5 << 4;
    t[13] = 0x10;
    ASSERT_EQ(packet_classify_tcp(p, 60, &i), PACKET_TCP_PURE_ACK);
    ASSERT_EQ(i.key_len, 37);
    ASSERT_EQ(i.key[0], 6);
    ASSERT_EQ(i.ackno, 9);
    ASSERT_EQ(packet_classify_tcp(p, 61, &i), PACKET_TCP_OTHER); /* a byte of data */
    p[6] = 0; /* a hop-by-hop header first: not looked into */
    ASSERT_EQ(packet_classify_tcp(p, 60, &i), PACKET_NOT_TCP);
    return 0;
}

/* packet_tcp_key() names a connection exactly as packet_classify_tcp() reads it from a segment. */
TEST_IMPL(packet_tcp_key_matches)
{
    uint8_t p[1600];
    struct packet_tcp_info seen, made;
    size_t len = make4(p, 0x10, NULL, 0, 0);
    ASSERT_EQ(packet_classify_tcp(p, len, &seen), PACKET_TCP_PURE_ACK);
    struct v2s_addr src = {.family = AF_INET, .bytes = {10, 97, 1, 6}};
    struct v2s_addr dst = {.family = AF_INET, .bytes = {10, 99, 0, 1}};
    packet_tcp_key(&src, 49153, &dst, 8080, 0x11223344, &made);
    ASSERT_EQ(made.key_len, seen.key_len);
    ASSERT_MEM_EQ(made.key, seen.key, seen.key_len);
    ASSERT_EQ(made.ackno, seen.ackno);
    packet_tcp_key(&dst, 8080, &src, 49153, 0x11223344, &made); /* the other direction differs */
    ASSERT(memcmp(made.key, seen.key, seen.key_len) != 0);

    uint8_t q[128] = {0};
    q[0] = 0x60, q[5] = 20, q[6] = 6, q[7] = 64;
    q[8] = 0xfd, q[23] = 2;
    q[24] = 0xfd, q[39] = 1;
    q[40] = 1, q[41] = 2, q[42] = 3, q[43] = 4, q[51] = 9, q[52] = 5 << 4, q[53] = 0x10;
    ASSERT_EQ(packet_classify_tcp(q, 60, &seen), PACKET_TCP_PURE_ACK);
    struct v2s_addr s6 = {.family = AF_INET6, .bytes = {0xfd, [15] = 2}};
    struct v2s_addr d6 = {.family = AF_INET6, .bytes = {0xfd, [15] = 1}};
    packet_tcp_key(&s6, 0x0102, &d6, 0x0304, 9, &made);
    ASSERT_EQ(made.key_len, seen.key_len);
    ASSERT_MEM_EQ(made.key, seen.key, seen.key_len);
    return 0;
}

/* --- ICMP errors (packet_parse_icmp_error) --- */

/* One ICMP error to build: the outer family, ICMP type and code, and the quoted packet's
 * protocol; the quote is a full IP header and the first 8 bytes of the transport header. */
struct icmp_case {
    const char *what;
    int v6;
    uint8_t type, code;
    uint8_t proto;
    int ok;                       /* what the parser must say */
    enum packet_icmp_reason reason;
};

static const uint8_t icmp_us4[4] = {10, 8, 0, 2}, icmp_them4[4] = {10, 9, 0, 1};
static const uint8_t icmp_us6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
static const uint8_t icmp_them6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1};

/* An error from them to us quoting our packet us:49153 -> them:443 with sequence number
 * 0x01020304 (for TCP). Returns its length. */
static size_t make_icmp(uint8_t *p, const struct icmp_case *c)
{
    uint8_t *icmp, *inner, *t;
    size_t len;
    if (!c->v6) {
        len = 20 + 8 + 20 + 8;
        memset(p, 0, len);
        p[0] = 0x45, p[3] = (uint8_t)len, p[8] = 64, p[9] = 1;
        memcpy(p + 12, icmp_them4, 4);
        memcpy(p + 16, icmp_us4, 4);
        icmp = p + 20;
        inner = icmp + 8;
        inner[0] = 0x45, inner[3] = 60, inner[8] = 64, inner[9] = c->proto;
        memcpy(inner + 12, icmp_us4, 4);
        memcpy(inner + 16, icmp_them4, 4);
        t = inner + 20;
    } else {
        len = 40 + 8 + 40 + 8;
        memset(p, 0, len);
        p[0] = 0x60, p[5] = (uint8_t)(len - 40), p[6] = 58, p[7] = 64;
        memcpy(p + 8, icmp_them6, 16);
        memcpy(p + 24, icmp_us6, 16);
        icmp = p + 40;
        inner = icmp + 8;
        inner[0] = 0x60, inner[5] = 20, inner[6] = c->proto, inner[7] = 64;
        memcpy(inner + 8, icmp_us6, 16);
        memcpy(inner + 24, icmp_them6, 16);
        t = inner + 40;
    }
    icmp[0] = c->type;
    icmp[1] = c->code;
    t[0] = 0xC0, t[1] = 0x01; /* 49153 */
    t[2] = 0x01, t[3] = 0xBB; /* 443 */
    t[4] = 1, t[5] = 2, t[6] = 3, t[7] = 4;
    return len;
}

static const struct icmp_case icmp_cases[] = {
    {"v4 port unreachable, TCP", 0, 3, 3, 6, 1, PACKET_ICMP_REFUSED},
    {"v4 protocol unreachable, TCP", 0, 3, 2, 6, 1, PACKET_ICMP_REFUSED},
    {"v4 net unreachable, TCP", 0, 3, 0, 6, 1, PACKET_ICMP_NET_UNREACHABLE},
    {"v4 net unknown, TCP", 0, 3, 6, 6, 1, PACKET_ICMP_NET_UNREACHABLE},
    {"v4 host unreachable, TCP", 0, 3, 1, 6, 1, PACKET_ICMP_HOST_UNREACHABLE},
    {"v4 host unreachable for TOS, UDP", 0, 3, 12, 17, 1, PACKET_ICMP_HOST_UNREACHABLE},
    {"v4 administratively prohibited, TCP", 0, 3, 13, 6, 1, PACKET_ICMP_PROHIBITED},
    {"v4 host prohibited, UDP", 0, 3, 10, 17, 1, PACKET_ICMP_PROHIBITED},
    {"v4 TTL exceeded, TCP", 0, 11, 0, 6, 1, PACKET_ICMP_TIME_EXCEEDED},
    {"v4 port unreachable, UDP", 0, 3, 3, 17, 1, PACKET_ICMP_REFUSED},
    {"v4 fragmentation needed: a hint", 0, 3, 4, 6, 0, 0},
    {"v4 unknown unreachable code", 0, 3, 14, 6, 0, 0},
    {"v4 echo reply", 0, 0, 0, 6, 0, 0},
    {"v4 redirect", 0, 5, 1, 6, 0, 0},
    {"v4 quoting ICMP", 0, 3, 3, 1, 0, 0},
    {"v6 port unreachable, TCP", 1, 1, 4, 6, 1, PACKET_ICMP_REFUSED},
    {"v6 no route, TCP", 1, 1, 0, 6, 1, PACKET_ICMP_NET_UNREACHABLE},
    {"v6 address unreachable, UDP", 1, 1, 3, 17, 1, PACKET_ICMP_HOST_UNREACHABLE},
    {"v6 administratively prohibited, TCP", 1, 1, 1, 6, 1, PACKET_ICMP_PROHIBITED},
    {"v6 source address failed policy, TCP", 1, 1, 5, 6, 1, PACKET_ICMP_PROHIBITED},
    {"v6 reject route, UDP", 1, 1, 6, 17, 1, PACKET_ICMP_PROHIBITED},
    {"v6 hop limit exceeded, UDP", 1, 3, 0, 17, 1, PACKET_ICMP_TIME_EXCEEDED},
    {"v6 beyond scope", 1, 1, 2, 6, 0, 0},
    {"v6 packet too big: a hint", 1, 2, 0, 6, 0, 0},
    {"v6 echo reply", 1, 129, 0, 6, 0, 0},
    {"v6 quoting a hop-by-hop header", 1, 1, 4, 0, 0, 0},
    {"v6 quoting ICMPv6", 1, 1, 4, 58, 0, 0},
};

/* Each row: the verdict, and for an error the reason and the quoted connection exactly (our
 * address and port as the source, theirs as the destination, the sequence number for TCP). */
TEST_IMPL(packet_icmp_error_table)
{
    uint8_t p[256];
    for (size_t i = 0; i < ARRAY_SIZE(icmp_cases); i++) {
        const struct icmp_case *c = &icmp_cases[i];
        struct packet_icmp_error e;
        size_t len = make_icmp(p, c);
        int ok = packet_parse_icmp_error(p, len, &e);
        ASSERT_ROW(ok == c->ok, "%s", c->what);
        if (!ok)
            continue;
        ASSERT_ROW(e.reason == c->reason, "%s", c->what);
        ASSERT_ROW(e.proto == c->proto, "%s", c->what);
        int fam = c->v6 ? AF_INET6 : AF_INET;
        size_t alen = c->v6 ? 16 : 4;
        ASSERT_ROW(e.src.family == fam && e.dst.family == fam, "%s", c->what);
        ASSERT_ROW(memcmp(e.src.bytes, c->v6 ? icmp_us6 : icmp_us4, alen) == 0, "%s", c->what);
        ASSERT_ROW(memcmp(e.dst.bytes, c->v6 ? icmp_them6 : icmp_them4, alen) == 0, "%s", c->what);
        ASSERT_ROW(e.sport == 49153 && e.dport == 443, "%s", c->what);
        ASSERT_ROW(e.seq == (c->proto == 6 ? 0x01020304u : 0), "%s", c->what);
    }
    return 0;
}

/* A quote cut anywhere short of the transport header's first 8 bytes is no error; trailing
 * bytes (a router quoting more) change nothing. */
TEST_IMPL(packet_icmp_error_truncated)
{
    uint8_t p[256];
    struct packet_icmp_error e;
    for (int v6 = 0; v6 <= 1; v6++) {
        for (uint8_t proto = 6; proto <= 17; proto += 11) {
            struct icmp_case c = {"", v6, v6 ? 1 : 3, v6 ? 4 : 3, proto, 1, PACKET_ICMP_REFUSED};
            size_t len = make_icmp(p, &c);
            for (size_t n = 0; n < len; n++)
                ASSERT_ROW(packet_parse_icmp_error(p, n, &e) == 0, "v6 %d proto %u length %zu", v6, proto, n);
            ASSERT_EQ(packet_parse_icmp_error(p, len, &e), 1);
            memset(p + len, 0xAA, 40);
            ASSERT_EQ(packet_parse_icmp_error(p, len + 40, &e), 1);
            ASSERT_EQ(e.sport, 49153);
        }
    }
    return 0;
}

/* Header fields that make a packet no ICMP error we can use: wrong versions, header lengths
 * below 20, a quoted IPv4 header with options (read past them), an outer packet not ICMP. */
TEST_IMPL(packet_icmp_error_malformed)
{
    uint8_t p[256];
    struct packet_icmp_error e;
    const struct icmp_case v4 = {"", 0, 3, 3, 6, 1, PACKET_ICMP_REFUSED};
    const struct icmp_case v6 = {"", 1, 1, 4, 6, 1, PACKET_ICMP_REFUSED};
    size_t len = make_icmp(p, &v4);
    p[0] = 0x44; /* outer IHL 16 */
    ASSERT_EQ(packet_parse_icmp_error(p, len, &e), 0);
    make_icmp(p, &v4);
    p[28] = 0x44; /* quoted IHL 16 */
    ASSERT_EQ(packet_parse_icmp_error(p, len, &e), 0);
    make_icmp(p, &v4);
    p[28] = 0x65; /* quoted version 6 inside ICMP for IPv4 */
    ASSERT_EQ(packet_parse_icmp_error(p, len, &e), 0);
    make_icmp(p, &v4);
    p[9] = 6; /* TCP, not ICMP */
    ASSERT_EQ(packet_parse_icmp_error(p, len, &e), 0);
    make_icmp(p, &v4);
    p[0] = 0x55;
    ASSERT_EQ(packet_parse_icmp_error(p, len, &e), 0);
    /* A quoted header with 4 bytes of options: the ports come after them. */
    make_icmp(p, &v4);
    memmove(p + 52, p + 48, 8);
    memset(p + 48, 1, 4); /* NOPs */
    p[28] = 0x46;
    ASSERT_EQ(packet_parse_icmp_error(p, len, &e), 0); /* 4 bytes short now */
    ASSERT_EQ(packet_parse_icmp_error(p, len + 4, &e), 1);
    ASSERT_EQ(e.sport, 49153);
    ASSERT_EQ(e.dport, 443);
    ASSERT(e.seq == 0x01020304u);
    /* IPv6: outer next header not ICMPv6, quoted version 4. */
    len = make_icmp(p, &v6);
    p[6] = 17;
    ASSERT_EQ(packet_parse_icmp_error(p, len, &e), 0);
    make_icmp(p, &v6);
    p[48] = 0x45;
    ASSERT_EQ(packet_parse_icmp_error(p, len, &e), 0);
    make_icmp(p, &v6);
    ASSERT_EQ(packet_parse_icmp_error(p, len, &e), 1);
    return 0;
}

/* An IPv6 packet of 40 + n bytes whose payload length says plen, next header nexth, followed by
 * the n bytes of ext. */
static size_t ip6_with(uint8_t *pkt, uint8_t nexth, size_t plen, const uint8_t *ext, size_t n)
{
    memset(pkt, 0, 40);
    pkt[0] = 0x60;
    pkt[4] = (uint8_t)(plen >> 8);
    pkt[5] = (uint8_t)plen;
    pkt[6] = nexth;
    pkt[7] = 64;
    memcpy(pkt + 40, ext, n);
    return 40 + n;
}

/* Which IPv6 packets stack.c keeps from lwIP: extension headers or their options cut off by the
 * end of the packet (as its payload length gives it), and fragments that name an extension
 * header next; everything else goes on to lwIP. */
TEST_IMPL(packet_ip6_drop_table)
{
    static const uint8_t udp[8] = {0, 1, 0, 2, 0, 8, 0, 0};
    static const uint8_t frag_udp[16] = {17, 0, 0, 1, 0, 0, 0, 9, 0, 1, 0, 2, 0, 8, 0, 0};
    static const uint8_t frag_frag[16] = {44, 0, 0, 1, 0, 0, 0, 9, 17, 0, 0, 1, 0, 0, 0, 10};
    static const uint8_t frag_dest[16] = {60, 0, 0, 1, 0, 0, 0, 9, 44, 0, 1, 4, 0, 0, 0, 0};
    static const uint8_t frag_later_ext[8] = {0, 0, 0, 16, 0, 0, 0, 9};
    static const uint8_t hbh_ok[16] = {17, 0, 5, 2, 0, 0, 1, 0, 0, 1, 0, 2, 0, 8, 0, 0};
    static const uint8_t hbh_pad1[8] = {17, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t hbh_opt_cut[8] = {17, 0, 1, 2, 0, 0, 0, 1};
    static const uint8_t hbh_opt_long[8] = {17, 0, 1, 9, 0, 0, 0, 0};
    static const uint8_t dest_2[16] = {17, 1, 1, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t rout[8] = {17, 0, 0, 0, 0, 0, 0, 0};
    static const struct {
        uint8_t nexth;
        const uint8_t *ext;
        size_t n, plen;
        int drop;
    } rows[] = {
        {17, udp, 8, 8, 0},
        {58, udp, 8, 8, 0},
        {43, NULL, 0, 0, 1},                /* a routing header that is not there */
        {0, NULL, 0, 0, 1},
        {60, rout, 1, 1, 1},                /* its first byte only */
        {43, rout, 8, 8, 0},
        {43, rout, 8, 7, 1},                /* cut by the payload length */
        {0, hbh_ok, 16, 16, 0},
        {0, hbh_pad1, 8, 8, 0},
        {0, hbh_opt_cut, 8, 8, 1},          /* the last option's length byte past the header */
        {0, hbh_opt_long, 8, 8, 0},         /* an option longer than its header: lwIP stops */
        {60, dest_2, 16, 16, 0},
        {60, dest_2, 16, 8, 1},
        {44, frag_udp, 16, 16, 0},
        {44, frag_udp, 7, 7, 1},
        {44, frag_frag, 16, 16, 1},         /* a fragment header next */
        {44, frag_dest, 16, 16, 1},         /* destination options next */
        {44, frag_later_ext, 8, 8, 1},      /* hop-by-hop next, in a later fragment too */
        {60, frag_dest + 8, 8, 8, 1},       /* destination options naming a fragment header cut off */
        {17, udp, 8, 100, 0},               /* shorter than its payload length: lwIP drops it */
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        uint8_t pkt[64];
        size_t len = ip6_with(pkt, rows[i].nexth, rows[i].plen, rows[i].ext ? rows[i].ext : udp, rows[i].n);
        ASSERT_ROW(packet_ip6_drop(pkt, len) == rows[i].drop, "%zu", i);
    }
    /* Not IPv6, or too short for its header. */
    uint8_t v4[40] = {0x45};
    ASSERT_EQ(packet_ip6_drop(v4, sizeof(v4)), 0);
    uint8_t short6[20] = {0x60};
    ASSERT_EQ(packet_ip6_drop(short6, sizeof(short6)), 0);
    return 0;
}

/* Which UDP datagrams stack.c drops before lwIP: a length field that is not what the IP header
 * leaves, and a zero checksum over IPv6; fragments are not measured. */
TEST_IMPL(packet_udp_drop_table)
{
    static const struct {
        int v6;
        uint16_t ulen;      /* the UDP length field; the datagram is 8 + 12 bytes */
        uint16_t cksum;
        uint16_t frag;      /* IPv4: flags and offset; IPv6: 1 + the fragment header's field */
        int hbh;            /* IPv6: a hop-by-hop header first */
        int drop;
    } rows[] = {
        {0, 20, 0x1234, 0, 0, 0},
        {0, 20, 0, 0, 0, 0},             /* no checksum: IPv4 allows it */
        {0, 12, 0x1234, 0, 0, 1},        /* shorter than the IP payload */
        {0, 28, 0x1234, 0, 0, 1},        /* longer */
        {0, 7, 0x1234, 0, 0, 1},
        {0, 28, 0x1234, 0x2000, 0, 0},   /* a first fragment: not measured */
        {0, 28, 0x1234, 0x0003, 0, 0},
        {1, 20, 0x1234, 0, 0, 0},
        {1, 20, 0, 0, 0, 1},             /* IPv6 needs the checksum */
        {1, 12, 0x1234, 0, 0, 1},
        {1, 20, 0, 0, 1, 1},
        {1, 20, 0x1234, 0, 1, 0},
        {1, 12, 0x1234, 0, 1, 1},
        {1, 20, 0, 1, 0, 1},             /* an atomic fragment (offset 0, no more) */
        {1, 12, 0x1234, 1, 0, 1},
        {1, 900, 0x1234, 1 + 1, 0, 0},   /* a first fragment: length not measured */
        {1, 900, 0, 1 + 1, 0, 1},        /* ... but the checksum is */
        {1, 900, 0, 1 + 0x0101, 0, 0},   /* a later fragment: its bytes are not a UDP header */
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        uint8_t pkt[96];
        size_t at;
        memset(pkt, 0, sizeof(pkt));
        if (!rows[i].v6) {
            pkt[0] = 0x45;
            pkt[2] = 0;
            pkt[3] = 40;
            pkt[6] = (uint8_t)(rows[i].frag >> 8);
            pkt[7] = (uint8_t)rows[i].frag;
            pkt[9] = 17;
            at = 20;
        } else {
            pkt[0] = 0x60;
            at = 40;
            uint8_t *nexth = &pkt[6];
            if (rows[i].hbh) {
                *nexth = 0;
                nexth = &pkt[at];
                pkt[at + 2] = 1; /* PadN filling it */
                pkt[at + 3] = 4;
                at += 8;
            }
            if (rows[i].frag) {
                *nexth = 44;
                nexth = &pkt[at];
                uint16_t f = (uint16_t)(rows[i].frag - 1);
                pkt[at + 2] = (uint8_t)(f >> 8);
                pkt[at + 3] = (uint8_t)f;
                at += 8;
            }
            *nexth = 17;
            pkt[5] = (uint8_t)(at + 20 - 40);
        }
        uint8_t *udp = pkt + at;
        udp[4] = (uint8_t)(rows[i].ulen >> 8);
        udp[5] = (uint8_t)rows[i].ulen;
        udp[6] = (uint8_t)(rows[i].cksum >> 8);
        udp[7] = (uint8_t)rows[i].cksum;
        ASSERT_ROW(packet_udp_drop(pkt, at + 20) == rows[i].drop, "%zu", i);
    }
    return 0;
}
