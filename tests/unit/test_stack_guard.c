/* What a host on the VPN side must not be able to guess or forge: the stack's initial sequence
 * numbers and local ports (RFC 6528, RFC 6056), and ICMP errors that would abort a connection
 * still opening (RFC 5927). The real stack and lwIP on a real libuv loop, behind the fake tunnel
 * of harness_tun.h, which hands us what the stack sends; nothing answers, so every connection
 * stays in SYN-SENT until an ICMP error ends it. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <uv.h>

#include "harness_tun.h"
#include "stack/internal.h"
#include "stack/stack.h"
#include "stack/tcp.h"
#include "test.h"
#include "tunnel/settings.h"

enum { GUARD_MAX_SYNS = 512, GUARD_CONNS = 200 };

/* One SYN the stack sent: its local port and sequence number. */
struct guard_syn {
    int v6;
    uint16_t sport, dport;
    uint32_t seq;
};

struct guard {
    struct harness_tun tun; /* the stack behind a fake tunnel that hands us what it sends */
    struct guard_syn syns[GUARD_MAX_SYNS];
    size_t n_syns;
    int results[GUARD_CONNS]; /* 1: no callback yet; else the status */
};

static void guard_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct guard *g = t->arg;
    int v6 = len >= 60 && pkt[0] >> 4 == 6 && pkt[6] == 6;
    if (!v6 && (len < 40 || pkt[0] >> 4 != 4 || pkt[9] != 6))
        return;
    if (g->n_syns == GUARD_MAX_SYNS)
        return;
    size_t ihl = v6 ? 40 : (size_t)(pkt[0] & 0x0F) * 4;
    const uint8_t *tcp = pkt + ihl;
    if (!(tcp[13] & 0x02) || (tcp[13] & 0x10)) /* SYN without ACK: a connection opening */
        return;
    struct guard_syn *s = &g->syns[g->n_syns++];
    s->v6 = v6;
    s->sport = (uint16_t)(tcp[0] << 8 | tcp[1]);
    s->dport = (uint16_t)(tcp[2] << 8 | tcp[3]);
    s->seq = (uint32_t)tcp[4] << 24 | (uint32_t)tcp[5] << 16 | (uint32_t)tcp[6] << 8 | tcp[7];
}

static void guard_connect_cb(void *arg, struct stack_tcp *c, int status)
{
    (void)c;
    *(int *)arg = status;
}

static const uint8_t guard_local[4] = {10, 8, 0, 2}, guard_remote[4] = {10, 9, 0, 1};
static const uint8_t guard_local6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 2};
static const uint8_t guard_remote6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1};

static void guard_up(struct guard *g)
{
    memset(g, 0, sizeof(*g));
    /* No seed: ISNs and ports from getrandom(), as in use. */
    const struct harness_tun_config cfg = {.addr4 = "10.8.0.2", .addr6 = "fd00:0:0:8::2"};
    ASSERT_EQ(harness_tun_up(&g->tun, &cfg, guard_send, g), 0);
}

static void guard_open_to(struct guard *g, const struct v2s_addr *to, size_t n);

/* Opens n connections to the remote address (port 80 + i % 3, so that tuples differ in more than
 * the local port) and lets the loop send their SYNs. */
static void guard_open(struct guard *g, size_t n)
{
    struct v2s_addr dst = {.family = AF_INET};
    memcpy(dst.bytes, guard_remote, 4);
    guard_open_to(g, &dst, n);
}

static void guard_open_to(struct guard *g, const struct v2s_addr *to, size_t n)
{
    struct v2s_addr dst = *to;
    size_t first = g->n_syns;
    for (size_t i = first; i < first + n; i++) {
        struct stack_tcp *c;
        g->results[i] = 1;
        ASSERT_EQ(stack_tcp_connect(g->tun.stack, &dst, (uint16_t)(80 + i % 3), 60000, guard_connect_cb,
                                    &g->results[i], &c),
                  0);
    }
    harness_tun_settle(&g->tun);
    ASSERT_EQ(g->n_syns, first + n);
}

static void guard_down(struct guard *g)
{
    ASSERT_EQ(harness_tun_down(&g->tun), 0);
}

/* The Internet checksum of n bytes (an even count) at p, stored big-endian at out. */
static void guard_checksum(const uint8_t *p, size_t n, uint8_t *out)
{
    uint32_t sum = 0;
    for (size_t i = 0; i < n; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    out[0] = (uint8_t)(~sum >> 8);
    out[1] = (uint8_t)~sum;
}

/* An ICMP destination unreachable (type 3, code 3: port) from the remote host, quoting a TCP
 * header from src:sport to the remote host's dport with sequence number seq. */
static size_t guard_icmp(uint8_t *pkt, const uint8_t src[4], uint16_t sport, uint16_t dport, uint32_t seq)
{
    memset(pkt, 0, 56);
    uint8_t *ip = pkt, *icmp = pkt + 20, *inner = pkt + 28, *tcp = pkt + 48;
    ip[0] = 0x45;
    ip[2] = 0;
    ip[3] = 56;
    ip[8] = 64;
    ip[9] = 1;
    memcpy(ip + 12, guard_remote, 4);
    memcpy(ip + 16, guard_local, 4);
    icmp[0] = 3;
    icmp[1] = 3;
    inner[0] = 0x45;
    inner[3] = 60;
    inner[8] = 64;
    inner[9] = 6;
    memcpy(inner + 12, src, 4);
    memcpy(inner + 16, guard_remote, 4);
    tcp[0] = (uint8_t)(sport >> 8);
    tcp[1] = (uint8_t)sport;
    tcp[2] = (uint8_t)(dport >> 8);
    tcp[3] = (uint8_t)dport;
    tcp[4] = (uint8_t)(seq >> 24);
    tcp[5] = (uint8_t)(seq >> 16);
    tcp[6] = (uint8_t)(seq >> 8);
    tcp[7] = (uint8_t)seq;
    /* Header checksums, so that lwIP would take the packet as well. */
    guard_checksum(ip, 20, ip + 10);
    guard_checksum(icmp, 36, icmp + 2);
    return 56;
}

/* The SipHash-2-4 test vector of its paper (key 00..0f, message 00..0e). */
TEST_IMPL(stack_siphash_vector)
{
    uint8_t key[16], msg[15];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 15; i++)
        msg[i] = (uint8_t)i;
    ASSERT(stack_siphash(key, msg, sizeof(msg)) == 0xa129ca6149be45e5ULL);
    /* and the empty message (the first line of the reference's vector table) */
    ASSERT(stack_siphash(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
    return 0;
}

/* Local ports and ISNs of connections opened at once: no two ports in a row one apart (lwIP's own
 * allocator counts up by one) and ISNs that neither repeat nor step by a constant (lwIP's own are
 * 6510 plus the tick count). */
TEST_IMPL(stack_isn_and_ports_unpredictable)
{
    static struct guard g;
    guard_up(&g);
    guard_open(&g, GUARD_CONNS);
    size_t sequential = 0, same_step = 0, same_isn = 0;
    for (size_t i = 1; i < g.n_syns; i++) {
        const struct guard_syn *a = &g.syns[i - 1], *b = &g.syns[i];
        ASSERT(b->sport >= STACK_PORT_FIRST);
        if ((uint16_t)(b->sport - a->sport) == 1)
            sequential++;
        if (b->seq == a->seq)
            same_isn++;
        if (i >= 2 && b->seq - a->seq == a->seq - g.syns[i - 2].seq)
            same_step++;
    }
    /* By chance, one neighbour in 16,384 is one port up and one step in 2^32 repeats. */
    ASSERT(sequential <= 2);
    ASSERT_EQ(same_isn, 0);
    ASSERT(same_step <= 1);
    guard_down(&g);
    return 0;
}

/* A port unreachable for a connection still opening fails it at once, but only when it quotes
 * the connection exactly, down to the SYN's sequence number; anything else is counted and
 * ignored. */
TEST_IMPL(stack_icmp_forged_ignored)
{
    static struct guard g;
    guard_up(&g);
    guard_open(&g, 1);
    const struct guard_syn *syn = &g.syns[0];
    uint8_t pkt[56];
    static const uint8_t other[4] = {10, 8, 0, 3};
    /* Sequence numbers an off-path host would try, a local address that is not ours, and a
     * destination port that is not the connection's. */
    const uint32_t seqs[] = {syn->seq + 1, syn->seq - 2, syn->seq + 0x10000, 0, 6510};
    for (size_t i = 0; i < ARRAY_SIZE(seqs); i++) {
        harness_tun_inject(&g.tun, pkt, guard_icmp(pkt, guard_local, syn->sport, syn->dport, seqs[i]));
                ASSERT_ROW(g.results[0] == 1, "%zu", i);
    }
    harness_tun_inject(&g.tun, pkt, guard_icmp(pkt, other, syn->sport, syn->dport, syn->seq));
    harness_tun_inject(&g.tun, pkt, guard_icmp(pkt, guard_local, syn->sport, (uint16_t)(syn->dport + 1), syn->seq));
        ASSERT_EQ(g.results[0], 1);
    ASSERT_EQ(g.tun.stack->icmp_ignored, ARRAY_SIZE(seqs) + 2);
    /* The real thing. */
    harness_tun_inject(&g.tun, pkt, guard_icmp(pkt, guard_local, syn->sport, syn->dport, syn->seq));
        ASSERT_EQ(g.results[0], UV_ECONNREFUSED);
    guard_down(&g);
    return 0;
}

/* The ICMPv6 checksum of the len-byte IPv6 packet pkt (RFC 8200 8.1's pseudo-header). */
static void guard_checksum6(uint8_t *pkt, size_t len)
{
    uint8_t pseudo[40] = {0};
    memcpy(pseudo, pkt + 8, 32);
    pseudo[34] = (uint8_t)((len - 40) >> 8);
    pseudo[35] = (uint8_t)(len - 40);
    pseudo[39] = 58;
    pkt[42] = pkt[43] = 0;
    uint16_t sum = harness_tun_fold(harness_tun_sum(harness_tun_sum(0, pseudo, 40), pkt + 40, len - 40));
    pkt[42] = (uint8_t)(sum >> 8);
    pkt[43] = (uint8_t)sum;
}

/* An ICMP or ICMPv6 error of type and code from the remote host, quoting the first 8 bytes of
 * the transport header of our packet (proto) that the SYN syn names, with sequence number seq.
 * Every checksum is right. */
static size_t guard_icmp_any(uint8_t *pkt, uint8_t type, uint8_t code, uint8_t proto, const struct guard_syn *syn,
                             uint32_t seq)
{
    if (!syn->v6) {
        size_t len = guard_icmp(pkt, guard_local, syn->sport, syn->dport, seq);
        pkt[20] = type;
        pkt[21] = code;
        pkt[28 + 9] = proto;
        pkt[22] = pkt[23] = 0;
        guard_checksum(pkt + 20, 36, pkt + 22);
        return len;
    }
    size_t len = 40 + 8 + 40 + 8;
    memset(pkt, 0, len);
    uint8_t *icmp = pkt + 40, *inner = pkt + 48, *tcp = pkt + 88;
    pkt[0] = 0x60;
    pkt[5] = (uint8_t)(len - 40);
    pkt[6] = 58;
    pkt[7] = 64;
    memcpy(pkt + 8, guard_remote6, 16);
    memcpy(pkt + 24, guard_local6, 16);
    icmp[0] = type;
    icmp[1] = code;
    inner[0] = 0x60;
    inner[5] = 20;
    inner[6] = proto;
    inner[7] = 64;
    memcpy(inner + 8, guard_local6, 16);
    memcpy(inner + 24, guard_remote6, 16);
    tcp[0] = (uint8_t)(syn->sport >> 8);
    tcp[1] = (uint8_t)syn->sport;
    tcp[2] = (uint8_t)(syn->dport >> 8);
    tcp[3] = (uint8_t)syn->dport;
    tcp[4] = (uint8_t)(seq >> 24);
    tcp[5] = (uint8_t)(seq >> 16);
    tcp[6] = (uint8_t)(seq >> 8);
    tcp[7] = (uint8_t)seq;
    guard_checksum6(pkt, len);
    return len;
}

/* What each ICMP error does to a connection still opening, for IPv4 and IPv6: the connect
 * callback gets the status the error means (what the SOCKS client then hears), while a hint
 * (fragmentation needed, packet too big), an error quoting UDP, and one quoting a sequence
 * number the connection never sent leave it opening; only the last is counted as forged. */
TEST_IMPL(stack_icmp_reasons)
{
    static const struct {
        int v6;
        uint8_t type, code, proto;
        int seq_off;    /* added to the SYN's sequence number */
        int status;     /* the connect callback's, or 1: none (still opening) */
        int ignored;    /* counted as naming no connection */
    } rows[] = {
        {0, 3, 0, 6, 0, UV_ENETUNREACH, 0},
        {0, 3, 1, 6, 0, UV_EHOSTUNREACH, 0},
        {0, 3, 3, 6, 0, UV_ECONNREFUSED, 0},
        {0, 3, 13, 6, 0, UV_EACCES, 0},
        {0, 11, 0, 6, 0, UV_ETIMEDOUT, 0},
        {0, 3, 4, 6, 0, 1, 0},
        {0, 3, 3, 17, 0, 1, 0},
        {0, 3, 3, 6, 1, 1, 1},
        {1, 1, 0, 6, 0, UV_ENETUNREACH, 0},
        {1, 1, 3, 6, 0, UV_EHOSTUNREACH, 0},
        {1, 1, 4, 6, 0, UV_ECONNREFUSED, 0},
        {1, 1, 1, 6, 0, UV_EACCES, 0},
        {1, 3, 0, 6, 0, UV_ETIMEDOUT, 0},
        {1, 2, 0, 6, 0, 1, 0},
        {1, 1, 4, 17, 0, 1, 0},
        {1, 1, 4, 6, 1, 1, 1},
    };
    static struct guard g;
    guard_up(&g);
    struct v2s_addr dst4 = {.family = AF_INET}, dst6 = {.family = AF_INET6};
    memcpy(dst4.bytes, guard_remote, 4);
    memcpy(dst6.bytes, guard_remote6, 16);
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
        guard_open_to(&g, rows[i].v6 ? &dst6 : &dst4, 1);
    uint64_t ignored = 0;
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        const struct guard_syn *syn = &g.syns[i];
        uint8_t pkt[128];
        ASSERT_ROW(syn->v6 == rows[i].v6, "%zu", i);
        size_t len = guard_icmp_any(pkt, rows[i].type, rows[i].code, rows[i].proto, syn,
                                    syn->seq + (uint32_t)rows[i].seq_off);
        harness_tun_inject(&g.tun, pkt, len);
                ignored += (uint64_t)rows[i].ignored;
        ASSERT_ROW(g.results[i] == rows[i].status, "%zu: status %d", i, g.results[i]);
        ASSERT_ROW(g.tun.stack->icmp_ignored == ignored, "%zu", i);
    }
    guard_down(&g);
    return 0;
}

/* An ICMP error that would fail a connection still opening, but garbled on the way or not one
 * whole packet, leaves it opening, IPv4 and IPv6: a bad IPv4 header checksum, a bad ICMP or
 * ICMPv6 checksum, an IP length longer than what arrived, an IPv4 fragment. The stack reads
 * errors before lwIP checks them, and took each of these. */
TEST_IMPL(stack_icmp_garbled_ignored)
{
    static struct guard g;
    guard_up(&g);
    struct v2s_addr dst6 = {.family = AF_INET6};
    memcpy(dst6.bytes, guard_remote6, 16);
    guard_open(&g, 1);
    guard_open_to(&g, &dst6, 1);
    const struct guard_syn *syn4 = &g.syns[0], *syn6 = &g.syns[1];
    uint8_t pkt[128];
    size_t len;
    for (int i = 0; i < 5; i++) {
        len = guard_icmp(pkt, guard_local, syn4->sport, syn4->dport, syn4->seq);
        switch (i) {
        case 0: pkt[10] ^= 1; break;                 /* the IPv4 header's checksum */
        case 1: pkt[22] ^= 1; break;                 /* the ICMP checksum */
        case 2: pkt[55] ^= 1; break;                 /* a byte it covers */
        case 3:                                      /* 4 bytes more than arrive */
            memset(pkt + len, 0, 4);
            pkt[3] = (uint8_t)(len + 4);
            pkt[22] = pkt[23] = 0;
            guard_checksum(pkt + 20, len + 4 - 20, pkt + 22);
            break;
        case 4: pkt[6] = 0x20; break;                /* more fragments */
        }
        if (i >= 3) {
            pkt[10] = pkt[11] = 0;
            guard_checksum(pkt, 20, pkt + 10);
        }
        harness_tun_inject(&g.tun, pkt, len);
        ASSERT_ROW(g.results[0] == 1, "v4 %d: status %d", i, g.results[0]);
    }
    for (int i = 0; i < 3; i++) {
        len = guard_icmp_any(pkt, 1, 4, 6, syn6, syn6->seq);
        switch (i) {
        case 0: pkt[43] ^= 1; break;                 /* the checksum */
        case 1: pkt[8] ^= 1; break;                  /* the pseudo-header's source address */
        case 2:                                      /* 8 bytes more than arrive */
            memset(pkt + len, 0, 8);
            pkt[5] = (uint8_t)(len + 8 - 40);
            guard_checksum6(pkt, len + 8);
            break;
        }
        harness_tun_inject(&g.tun, pkt, len);
        ASSERT_ROW(g.results[1] == 1, "v6 %d: status %d", i, g.results[1]);
    }
    /* The same errors whole. */
    harness_tun_inject(&g.tun, pkt, guard_icmp(pkt, guard_local, syn4->sport, syn4->dport, syn4->seq));
    ASSERT_EQ(g.results[0], UV_ECONNREFUSED);
    harness_tun_inject(&g.tun, pkt, guard_icmp_any(pkt, 1, 4, 6, syn6, syn6->seq));
    ASSERT_EQ(g.results[1], UV_ECONNREFUSED);
    guard_down(&g);
    return 0;
}

/* The tunnel's events as stack.c handles them, for connections still opening: down resets them
 * (UV_ENETDOWN) and refuses new ones; up again with the same address keeps them; up with
 * another address resets them; a family the tunnel has no address of is unreachable; packets
 * while down are counted and dropped. */
TEST_IMPL(stack_tunnel_events)
{
    static struct guard g;
    guard_up(&g);
    struct stack *s = g.tun.stack;
    struct v2s_addr dst4 = {.family = AF_INET}, dst6 = {.family = AF_INET6};
    memcpy(dst4.bytes, guard_remote, 4);
    memcpy(dst6.bytes, guard_remote6, 16);
    ASSERT(stack_has_family(s, AF_INET));
    ASSERT(stack_has_family(s, AF_INET6));
    guard_open_to(&g, &dst4, 1);
    guard_open_to(&g, &dst6, 1);

    /* Up again with the same addresses: the connections live on, IPv6 too. */
    struct tunnel_settings ts;
    tunnel_settings_init(&ts);
    ASSERT_EQ(v2s_addr_parse(&ts.addr4, "10.8.0.2"), 0);
    ts.prefix4 = 24;
    ASSERT_EQ(v2s_addr_parse(&ts.addr6, "fd00:0:0:8::2"), 0);
    ts.prefix6 = 64;
    ASSERT_EQ(stack_tunnel_up(s, &ts), 0);
    harness_tun_settle(&g.tun);
    ASSERT_EQ(g.results[0], 1);
    ASSERT_EQ(g.results[1], 1);

    /* Up with another IPv4 address and none for IPv6: both are reset, and IPv6 is unreachable. */
    ASSERT_EQ(v2s_addr_parse(&ts.addr4, "10.8.0.3"), 0);
    ts.addr6.family = 0;
    ASSERT_EQ(stack_tunnel_up(s, &ts), 0);
    harness_tun_settle(&g.tun);
    ASSERT_EQ(g.results[0], UV_ENETDOWN);
    ASSERT_EQ(g.results[1], UV_ENETDOWN);
    ASSERT(!stack_has_family(s, AF_INET6));
    struct stack_tcp *c;
    ASSERT_EQ(stack_tcp_connect(s, &dst6, 80, 60000, guard_connect_cb, &g.results[1], &c), UV_ENETUNREACH);

    /* Down: the next connection opened is reset, new ones are refused, packets dropped. */
    g.results[1] = 1;
    ASSERT_EQ(stack_tcp_connect(s, &dst4, 80, 60000, guard_connect_cb, &g.results[1], &c), 0);
    stack_tunnel_down(s);
    ASSERT_EQ(g.results[1], UV_ENETDOWN);
    ASSERT(!stack_has_family(s, AF_INET));
    ASSERT_EQ(stack_tcp_connect(s, &dst4, 80, 60000, guard_connect_cb, &g.results[2], &c), UV_ENETDOWN);
    uint64_t bad = s->rx_bad;
    uint8_t pkt[56];
    harness_tun_inject(&g.tun, pkt, guard_icmp(pkt, guard_local, 50000, 80, 1));
    ASSERT_EQ(s->rx_bad, bad + 1);
    /* Without any address the tunnel cannot come up. */
    ts.addr4.family = 0;
    ASSERT_EQ(stack_tunnel_up(s, &ts), -EINVAL);
    tunnel_settings_free(&ts);
    guard_down(&g);
    return 0;
}
