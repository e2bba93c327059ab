/* stack/udp.c, datagram sockets of the tunnel address, and what lwIP answers by itself (ICMP port
 * unreachable, echo replies), against the fake tunnel (harness_tun.h): the real stack and lwIP
 * on a real libuv loop. Each test captures what the stack sends toward the VPN, injects what a
 * host behind it would answer, and ends with no libuv handle open. */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/bytes.h"
#include "harness_tun.h"
#include "stack/internal.h"
#include "stack/stack.h"
#include "stack/udp.h"
#include "test.h"
#include "tunnel/settings.h"

enum {
    UT_MAX_PKTS = 160,
    UT_PKT_MAX = 1500,
    UT_MTU = 1400, /* harness_tun_up()'s */
};

struct ut {
    struct harness_tun tun;
    uint8_t pkts[UT_MAX_PKTS][UT_PKT_MAX];
    size_t lens[UT_MAX_PKTS];
    size_t n_pkts;
    size_t too_big; /* packets larger than the MTU */
    /* What the socket's callback saw. */
    int calls;
    struct v2s_addr src, dst;
    uint16_t sport;
    uint8_t data[65536];
    size_t len;
    struct stack_udp *close_in_cb; /* closed by the callback when set */
};

static void ut_on_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct ut *u = t->arg;
    if (len > UT_MTU)
        u->too_big++;
    ASSERT(u->n_pkts < UT_MAX_PKTS);
    ASSERT(len <= UT_PKT_MAX);
    memcpy(u->pkts[u->n_pkts], pkt, len);
    u->lens[u->n_pkts++] = len;
}

static void ut_recv(void *arg, const struct v2s_addr *src, uint16_t sport, const struct v2s_addr *dst,
                    const uint8_t *data, size_t len)
{
    struct ut *u = arg;
    u->calls++;
    u->src = *src;
    u->dst = *dst;
    u->sport = sport;
    ASSERT(len <= sizeof(u->data));
    memcpy(u->data, data, len);
    u->len = len;
    if (u->close_in_cb) {
        stack_udp_close(u->close_in_cb);
        u->close_in_cb = NULL;
    }
}

static void ut_up(struct ut *u, const char *addr4, const char *addr6)
{
    memset(u, 0, sizeof(*u));
    struct harness_tun_config cfg = {.addr4 = addr4, .addr6 = addr6, .seed = 11};
    ASSERT_EQ(harness_tun_up(&u->tun, &cfg, ut_on_send, u), 0);
}

static struct v2s_addr ut_addr(const char *text)
{
    struct v2s_addr a;
    ASSERT_EQ(v2s_addr_parse(&a, text), 0);
    return a;
}

/* Injects a datagram from src:sport to dst:dport. */
static void ut_inject(struct ut *u, const char *src, uint16_t sport, const char *dst, uint16_t dport,
                      const uint8_t *data, size_t n)
{
    static uint8_t pkt[65536 + 64];
    struct v2s_addr s = ut_addr(src), d = ut_addr(dst);
    size_t len = harness_tun_udp(pkt, sizeof(pkt), &s, sport, &d, dport, data, n);
    ASSERT(len > 0);
    harness_tun_inject(&u->tun, pkt, len);
}

static void ut_fill(uint8_t *buf, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(i * 131 + seed + (i >> 8));
}

/* The Internet checksum of n bytes after sum (0 when a packet's own checksum is right). */
static uint16_t ut_checksum(uint32_t sum, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += v2s_get_be16(p + i);
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)~sum;
}

/* A datagram out and an answer in, over IPv4 and IPv6: the packet at the tunnel carries the
 * tunnel address of dst's family, the socket's random dynamic port, and the payload; the answer
 * reaches the callback with its source and the tunnel address it was sent to. */
TEST_IMPL(stack_udp_roundtrip)
{
    static struct ut u;
    ut_up(&u, "10.8.0.2", "fd00::2");
    struct stack_udp *sock = NULL;
    ASSERT_EQ(stack_udp_open(u.tun.stack, NULL, 0, ut_recv, &u, &sock), 0);
    uint16_t port = stack_udp_port(sock);
    ASSERT(port >= STACK_PORT_FIRST);
    static const char *const peers[][2] = {{"10.9.0.7", "10.8.0.2"}, {"fd09::7", "fd00::2"}};
    for (size_t row = 0; row < ARRAY_SIZE(peers); row++) {
        struct v2s_addr peer = ut_addr(peers[row][0]), self = ut_addr(peers[row][1]);
        const uint8_t out[] = "query from the stack";
        u.n_pkts = 0;
        ASSERT_EQ(stack_udp_send(sock, &peer, 5000, out, sizeof(out)), 0);
        ASSERT_EQ(u.n_pkts, 1);
        struct v2s_addr src, dst;
        uint16_t sport, dport;
        const uint8_t *payload;
        size_t n;
        ASSERT_ROW(harness_tun_parse_udp(u.pkts[0], u.lens[0], &src, &sport, &dst, &dport, &payload, &n), "%zu",
                   row);
        ASSERT_ROW(v2s_addr_equal(&src, &self), "%zu", row);
        ASSERT_ROW(v2s_addr_equal(&dst, &peer), "%zu", row);
        ASSERT_EQ(sport, port);
        ASSERT_EQ(dport, 5000);
        ASSERT_EQ(n, sizeof(out));
        ASSERT_MEM_EQ(payload, out, n);

        const uint8_t in[] = "answer from behind the VPN";
        u.calls = 0;
        ut_inject(&u, peers[row][0], 5000, peers[row][1], port, in, sizeof(in));
        ASSERT_EQ(u.calls, 1);
        ASSERT(v2s_addr_equal(&u.src, &peer));
        ASSERT(v2s_addr_equal(&u.dst, &self));
        ASSERT_EQ(u.sport, 5000);
        ASSERT_EQ(u.len, sizeof(in));
        ASSERT_MEM_EQ(u.data, in, sizeof(in));
    }
    /* An empty datagram is one too. */
    struct v2s_addr peer = ut_addr("10.9.0.7");
    u.n_pkts = 0;
    ASSERT_EQ(stack_udp_send(sock, &peer, 7, NULL, 0), 0);
    ASSERT_EQ(u.n_pkts, 1);
    ASSERT_EQ(u.lens[0], 28);

    /* A fixed port, taken once; a socket bound to the IPv4 address sends no IPv6. */
    struct stack_udp *fixed = NULL, *again = NULL, *v4 = NULL;
    struct v2s_addr self4 = ut_addr("10.8.0.2"), peer6 = ut_addr("fd09::7");
    ASSERT_EQ(stack_udp_open(u.tun.stack, NULL, 5353, ut_recv, &u, &fixed), 0);
    ASSERT_EQ(stack_udp_port(fixed), 5353);
    ASSERT_EQ(stack_udp_open(u.tun.stack, NULL, 5353, ut_recv, &u, &again), UV_EADDRINUSE);
    ASSERT_EQ(stack_udp_open(u.tun.stack, &self4, 0, ut_recv, &u, &v4), 0);
    ASSERT_EQ(stack_udp_send(v4, &peer6, 7, (const uint8_t *)"x", 1), UV_EAFNOSUPPORT);
    ASSERT_EQ(stack_udp_send(v4, &peer, 7, (const uint8_t *)"x", 1), 0);

    /* Many sockets at once (one per flow of every forward), each on its own port; a datagram to
     * one reaches that one only. */
    enum { MANY = 300 };
    static struct stack_udp *many[MANY];
    for (size_t i = 0; i < MANY; i++) {
        ASSERT_EQ(stack_udp_open(u.tun.stack, NULL, 0, ut_recv, &u, &many[i]), 0);
        for (size_t k = 0; k < i; k++)
            ASSERT(stack_udp_port(many[k]) != stack_udp_port(many[i]));
    }
    u.calls = 0;
    ut_inject(&u, "10.9.0.8", 9999, "10.8.0.2", stack_udp_port(many[MANY - 1]), (const uint8_t *)"m", 1);
    ASSERT_EQ(u.calls, 1);
    ASSERT_EQ(u.sport, 9999);
    for (size_t i = 0; i < MANY; i++)
        stack_udp_close(many[i]);

    /* Closed from its own callback: the datagram is delivered once, the next finds the port
     * closed. */
    u.close_in_cb = sock;
    u.calls = 0;
    ut_inject(&u, "10.9.0.7", 5000, "10.8.0.2", port, (const uint8_t *)"a", 1);
    ut_inject(&u, "10.9.0.7", 5000, "10.8.0.2", port, (const uint8_t *)"b", 1);
    ASSERT_EQ(u.calls, 1);
    ASSERT_EQ(u.data[0], 'a');
    stack_udp_close(fixed);
    stack_udp_close(v4);
    ASSERT_EQ(harness_tun_down(&u.tun), 0);
    return 0;
}

/* Puts the captured fragments of one datagram back together (IPv4: flags and offset in the
 * header; IPv6: a fragment header right after the fixed one), checking each fits the MTU and
 * comes from src to dst. Returns the reassembled UDP datagram's length (header included), 0 if
 * the fragments do not make one whole. */
static size_t ut_reassemble(struct ut *u, const struct v2s_addr *src, const struct v2s_addr *dst, uint8_t *out,
                            size_t cap)
{
    size_t total = 0, covered = 0;
    int v6 = src->family == AF_INET6;
    for (size_t i = 0; i < u->n_pkts; i++) {
        const uint8_t *p = u->pkts[i];
        size_t len = u->lens[i], hlen, off;
        int more;
        ASSERT(len <= UT_MTU);
        if (v6) {
            ASSERT(p[0] >> 4 == 6 && p[6] == 44 && len >= 48 && p[40] == 17);
            ASSERT(memcmp(p + 8, src->bytes, 16) == 0 && memcmp(p + 24, dst->bytes, 16) == 0);
            hlen = 48;
            off = v2s_get_be16(p + 42) & 0xFFF8;
            more = p[43] & 1;
            ASSERT_EQ(40 + v2s_get_be16(p + 4), len);
        } else {
            ASSERT(p[0] == 0x45 && p[9] == 17 && len >= 20);
            ASSERT(memcmp(p + 12, src->bytes, 4) == 0 && memcmp(p + 16, dst->bytes, 4) == 0);
            ASSERT_EQ(ut_checksum(0, p, 20), 0);
            hlen = 20;
            off = (size_t)(v2s_get_be16(p + 6) & 0x1FFF) * 8;
            more = (v2s_get_be16(p + 6) & 0x2000) != 0;
            ASSERT_EQ(v2s_get_be16(p + 2), len);
        }
        if (more)
            ASSERT((len - hlen) % 8 == 0);
        else
            total = off + len - hlen;
        ASSERT(off + len - hlen <= cap);
        memcpy(out + off, p + hlen, len - hlen);
        covered += len - hlen;
    }
    return total && covered == total ? total : 0;
}

/* A datagram larger than the tunnel MTU leaves in fragments no larger than the MTU (IPv4 and
 * IPv6), which put together give the datagram intact; the largest datagram each family carries
 * goes, one byte more is UV_EMSGSIZE with nothing sent. A fragmented datagram from the tunnel
 * is reassembled and handed over whole. */
TEST_IMPL(stack_udp_fragments)
{
    static struct ut u;
    static uint8_t big[65536], whole[65536];
    ut_up(&u, "10.8.0.2", "fd00::2");
    struct stack_udp *sock = NULL;
    ASSERT_EQ(stack_udp_open(u.tun.stack, NULL, 0, ut_recv, &u, &sock), 0);
    static const struct {
        const char *peer, *self;
        size_t len;
        int rc;
    } rows[] = {
        {"10.9.0.7", "10.8.0.2", 4000, 0},
        {"10.9.0.7", "10.8.0.2", 65507, 0},
        {"10.9.0.7", "10.8.0.2", 65508, UV_EMSGSIZE},
        {"fd09::7", "fd00::2", 4000, 0},
        {"fd09::7", "fd00::2", 65487, 0},
        {"fd09::7", "fd00::2", 65488, UV_EMSGSIZE},
    };
    for (size_t row = 0; row < ARRAY_SIZE(rows); row++) {
        struct v2s_addr peer = ut_addr(rows[row].peer), self = ut_addr(rows[row].self);
        size_t len = rows[row].len;
        ut_fill(big, len, (unsigned)row);
        u.n_pkts = 0;
        u.too_big = 0;
        ASSERT_ROW(stack_udp_send(sock, &peer, 6000, big, len) == rows[row].rc, "%zu", row);
        if (rows[row].rc != 0) {
            ASSERT_ROW(u.n_pkts == 0, "%zu", row);
            continue;
        }
        ASSERT_ROW(u.n_pkts >= (len + UT_MTU - 1) / UT_MTU, "%zu", row);
        ASSERT_ROW(u.too_big == 0, "%zu", row);
        size_t total = ut_reassemble(&u, &self, &peer, whole, sizeof(whole));
        ASSERT_ROW(total == 8 + len, "%zu", row);
        ASSERT_EQ(v2s_get_be16(whole), stack_udp_port(sock));
        ASSERT_EQ(v2s_get_be16(whole + 2), 6000);
        ASSERT_EQ(v2s_get_be16(whole + 4), 8 + len);
        ASSERT_MEM_EQ(whole + 8, big, len);
    }

    /* In: 3000 bytes in three fragments, given to the callback as one datagram. */
    static uint8_t pkt[4096], frag[1500];
    struct v2s_addr peer = ut_addr("10.9.0.7"), self = ut_addr("10.8.0.2");
    ut_fill(big, 3000, 99);
    size_t len = harness_tun_udp(pkt, sizeof(pkt), &peer, 6000, &self, stack_udp_port(sock), big, 3000);
    ASSERT(len > 0);
    u.calls = 0;
    for (size_t off = 0; off < len - 20; off += 1200) {
        size_t n = len - 20 - off < 1200 ? len - 20 - off : 1200;
        size_t flen = harness_tun_fragment4(frag, sizeof(frag), pkt, len, off, n);
        ASSERT(flen > 0);
        harness_tun_inject(&u.tun, frag, flen);
    }
    ASSERT_EQ(u.calls, 1);
    ASSERT_EQ(u.len, 3000);
    ASSERT_MEM_EQ(u.data, big, 3000);
    ASSERT_EQ(u.sport, 6000);
    stack_udp_close(sock);
    ASSERT_EQ(harness_tun_down(&u.tun), 0);
    return 0;
}

/* The tunnel down: UV_ENETDOWN, and the socket works again once it is up. No IPv6 on the
 * tunnel: UV_EAFNOSUPPORT. The stack closing with a socket open frees itself; the socket is
 * detached (sending answers UV_ENETDOWN) and its close afterwards only frees it. */
TEST_IMPL(stack_udp_down)
{
    static struct ut u;
    ut_up(&u, "10.8.0.2", NULL);
    struct stack_udp *sock = NULL, *other = NULL;
    ASSERT_EQ(stack_udp_open(u.tun.stack, NULL, 0, ut_recv, &u, &sock), 0);
    uint16_t port = stack_udp_port(sock);
    struct v2s_addr peer = ut_addr("10.9.0.7"), peer6 = ut_addr("fd09::7");
    ASSERT_EQ(stack_udp_send(sock, &peer6, 53, (const uint8_t *)"x", 1), UV_EAFNOSUPPORT);
    ASSERT_EQ(u.n_pkts, 0);

    stack_tunnel_down(u.tun.stack);
    ASSERT_EQ(stack_udp_send(sock, &peer, 53, (const uint8_t *)"x", 1), UV_ENETDOWN);
    ASSERT_EQ(u.n_pkts, 0);
    struct tunnel_settings ts;
    tunnel_settings_init(&ts);
    ASSERT_EQ(v2s_addr_parse(&ts.addr4, "10.8.0.2"), 0);
    ts.prefix4 = 24;
    ts.mtu = UT_MTU;
    ASSERT_EQ(stack_tunnel_up(u.tun.stack, &ts), 0);
    tunnel_settings_free(&ts);
    ASSERT_EQ(stack_udp_send(sock, &peer, 53, (const uint8_t *)"x", 1), 0);
    ASSERT_EQ(u.n_pkts, 1);
    ASSERT_EQ(stack_udp_port(sock), port);
    u.calls = 0;
    ut_inject(&u, "10.9.0.7", 53, "10.8.0.2", port, (const uint8_t *)"y", 1);
    ASSERT_EQ(u.calls, 1);

    ASSERT_EQ(stack_udp_open(u.tun.stack, NULL, 0, ut_recv, &u, &other), 0);
    ASSERT_EQ(harness_tun_down(&u.tun), 0);
    ASSERT_EQ(stack_udp_send(sock, &peer, 53, (const uint8_t *)"x", 1), UV_ENETDOWN);
    ASSERT_EQ(stack_udp_port(sock), port);
    stack_udp_close(sock);
    stack_udp_close(other);
    return 0;
}

/* A datagram to no host behind the VPN, the unspecified address and "this network" (0.0.0.0/8,
 * ::) or loopback (127/8, ::1), or to port 0, is refused as Linux refuses it (ENETUNREACH,
 * EINVAL) and nothing goes into the tunnel; a datagram to a host behind it still goes. */
TEST_IMPL(stack_udp_no_host)
{
    static struct ut u;
    ut_up(&u, "10.8.0.2", "fd08::2");
    struct stack_udp *sock = NULL;
    ASSERT_EQ(stack_udp_open(u.tun.stack, NULL, 0, ut_recv, &u, &sock), 0);
    static const char *const nowhere[] = {"0.0.0.0", "0.1.2.3", "127.0.0.1", "127.9.9.9", "::", "::1"};
    for (size_t i = 0; i < sizeof(nowhere) / sizeof(nowhere[0]); i++) {
        struct v2s_addr a = ut_addr(nowhere[i]);
        ASSERT_EQ(stack_udp_send(sock, &a, 53, (const uint8_t *)"x", 1), UV_ENETUNREACH);
    }
    struct v2s_addr peer = ut_addr("10.9.0.7"), peer6 = ut_addr("fd09::7");
    ASSERT_EQ(stack_udp_send(sock, &peer, 0, (const uint8_t *)"x", 1), UV_EINVAL);
    ASSERT_EQ(stack_udp_send(sock, &peer6, 0, (const uint8_t *)"x", 1), UV_EINVAL);
    ASSERT_EQ(u.n_pkts, 0);
    ASSERT_EQ(stack_udp_send(sock, &peer, 53, (const uint8_t *)"x", 1), 0);
    ASSERT_EQ(stack_udp_send(sock, &peer6, 53, (const uint8_t *)"x", 1), 0);
    ASSERT_EQ(u.n_pkts, 2);
    stack_udp_close(sock);
    ASSERT_EQ(harness_tun_down(&u.tun), 0);
    return 0;
}

/* The first ICMP or ICMPv6 message captured, checked for its addresses and checksum: a pointer
 * to it and its length. */
static const uint8_t *ut_icmp(struct ut *u, const struct v2s_addr *from, const struct v2s_addr *to, size_t *n)
{
    ASSERT_EQ(u->n_pkts, 1);
    const uint8_t *p = u->pkts[0];
    size_t len = u->lens[0];
    if (from->family == AF_INET6) {
        ASSERT(len >= 48 && p[0] >> 4 == 6 && p[6] == 58);
        ASSERT(memcmp(p + 8, from->bytes, 16) == 0 && memcmp(p + 24, to->bytes, 16) == 0);
        *n = len - 40;
        uint32_t sum = 0;
        for (size_t i = 8; i < 40; i += 2)
            sum += v2s_get_be16(p + i);
        ASSERT_EQ(ut_checksum(sum + 58 + (uint32_t)*n, p + 40, *n), 0);
        return p + 40;
    }
    ASSERT(len >= 28 && p[0] == 0x45 && p[9] == 1);
    ASSERT(memcmp(p + 12, from->bytes, 4) == 0 && memcmp(p + 16, to->bytes, 4) == 0);
    *n = len - 20;
    ASSERT_EQ(ut_checksum(0, p + 20, *n), 0);
    return p + 20;
}

/* What lwIP answers by itself: a datagram to a port nobody opened gets port unreachable (IPv4
 * type 3 code 3, IPv6 type 1 code 4) quoting the datagram; an echo request to the tunnel
 * address gets an echo reply with the same id, sequence and data. */
TEST_IMPL(stack_udp_icmp_answers)
{
    static struct ut u;
    ut_up(&u, "10.8.0.2", "fd00::2");
    static const struct {
        const char *peer, *self;
        uint8_t unreach_type, unreach_code, echo_reply;
    } rows[] = {
        {"10.9.0.7", "10.8.0.2", 3, 3, 0},
        {"fd09::7", "fd00::2", 1, 4, 129},
    };
    for (size_t row = 0; row < ARRAY_SIZE(rows); row++) {
        struct v2s_addr peer = ut_addr(rows[row].peer), self = ut_addr(rows[row].self);
        size_t n, quote = peer.family == AF_INET6 ? 48 : 28;
        u.n_pkts = 0;
        ut_inject(&u, rows[row].peer, 40000, rows[row].self, 9, (const uint8_t *)"nobody", 6);
        const uint8_t *icmp = ut_icmp(&u, &self, &peer, &n);
        ASSERT_ROW(icmp[0] == rows[row].unreach_type && icmp[1] == rows[row].unreach_code, "%zu", row);
        ASSERT_ROW(n >= 8 + quote, "%zu", row);
        /* The quote: the datagram's own header, its ports. */
        ASSERT_EQ(v2s_get_be16(icmp + 8 + quote - 8), 40000);
        ASSERT_EQ(v2s_get_be16(icmp + 8 + quote - 6), 9);

        uint8_t pkt[256];
        const uint8_t data[] = "ping payload";
        size_t len = harness_tun_icmp_echo(pkt, sizeof(pkt), &peer, &self, 0x1234, 7, data, sizeof(data));
        ASSERT(len > 0);
        u.n_pkts = 0;
        harness_tun_inject(&u.tun, pkt, len);
        icmp = ut_icmp(&u, &self, &peer, &n);
        ASSERT_ROW(icmp[0] == rows[row].echo_reply && icmp[1] == 0, "%zu", row);
        ASSERT_EQ(v2s_get_be16(icmp + 4), 0x1234);
        ASSERT_EQ(v2s_get_be16(icmp + 6), 7);
        ASSERT_EQ(n, 8 + sizeof(data));
        ASSERT_MEM_EQ(icmp + 8, data, sizeof(data));
    }
    ASSERT_EQ(harness_tun_down(&u.tun), 0);
    return 0;
}

/* A packet whose source can be no host behind the VPN (the tunnel's own address, loopback, "this
 * network", IPv4 and IPv6) is dropped unanswered and counted, as Linux drops a martian; the same
 * ping and datagram from a real peer are answered (an echo reply, a port unreachable). lwIP
 * answered every one, into the tunnel to ourselves or to loopback. */
TEST_IMPL(stack_input_martian_source)
{
    static struct ut u;
    ut_up(&u, "10.8.0.2", "fd00::2");
    static const struct {
        const char *src, *self;
        int answered;
    } rows[] = {
        {"10.8.0.2", "10.8.0.2", 0}, {"127.0.0.1", "10.8.0.2", 0}, {"0.0.0.0", "10.8.0.2", 0},
        {"0.1.2.3", "10.8.0.2", 0},  {"fd00::2", "fd00::2", 0},     {"::1", "fd00::2", 0},
        {"::", "fd00::2", 0},        {"10.8.0.3", "10.8.0.2", 1},   {"fd00::3", "fd00::2", 1},
    };
    for (size_t row = 0; row < ARRAY_SIZE(rows); row++) {
        struct v2s_addr src = ut_addr(rows[row].src), self = ut_addr(rows[row].self);
        uint8_t pkt[256];
        const uint8_t data[] = "ping";
        size_t len = harness_tun_icmp_echo(pkt, sizeof(pkt), &src, &self, 0x1234, 7, data, sizeof(data));
        ASSERT(len > 0);
        uint64_t bad = u.tun.stack->rx_bad;
        u.n_pkts = 0;
        harness_tun_inject(&u.tun, pkt, len);
        ut_inject(&u, rows[row].src, 40000, rows[row].self, 9, (const uint8_t *)"nobody", 6);
        ASSERT_ROW(u.n_pkts == (rows[row].answered ? 2u : 0u), "%s: %zu sent", rows[row].src, u.n_pkts);
        ASSERT_ROW(u.tun.stack->rx_bad == bad + (rows[row].answered ? 0 : 2), "%s", rows[row].src);
    }
    ASSERT_EQ(harness_tun_down(&u.tun), 0);
    return 0;
}

/* A datagram for a multicast group, IPv4 or IPv6, is dropped and counted: we join none, as Linux
 * drops one for a group it did not join. lwIP without IGMP took every IPv4 group as joined, and
 * without MLD the IPv6 all-nodes group, so a socket bound to every address (a -R .../udp
 * forward) got them. The same datagram to the tunnel address still arrives. */
TEST_IMPL(stack_input_multicast_dest)
{
    static struct ut u;
    ut_up(&u, "10.8.0.2", "fd00::2");
    struct stack_udp *sock = NULL;
    ASSERT_EQ(stack_udp_open(u.tun.stack, NULL, 5353, ut_recv, &u, &sock), 0);
    static const struct {
        const char *src, *dst;
        int delivered;
    } rows[] = {
        {"10.9.0.7", "224.0.0.251", 0}, {"10.9.0.7", "224.0.0.1", 0},  {"10.9.0.7", "239.1.2.3", 0},
        {"fd09::7", "ff02::1", 0},      {"fd09::7", "ff02::fb", 0},    {"fd09::7", "ff02::1:ff00:2", 0},
        {"fd09::7", "ff05::1:3", 0},    {"10.9.0.7", "10.8.0.2", 1},   {"fd09::7", "fd00::2", 1},
    };
    for (size_t row = 0; row < ARRAY_SIZE(rows); row++) {
        uint64_t bad = u.tun.stack->rx_bad;
        u.calls = 0;
        u.n_pkts = 0;
        ut_inject(&u, rows[row].src, 40000, rows[row].dst, 5353, (const uint8_t *)"query", 5);
        ASSERT_ROW(u.calls == rows[row].delivered, "%s: %d delivered", rows[row].dst, u.calls);
        ASSERT_ROW(u.n_pkts == 0, "%s: %zu sent", rows[row].dst, u.n_pkts);
        ASSERT_ROW(u.tun.stack->rx_bad == bad + (rows[row].delivered ? 0 : 1), "%s", rows[row].dst);
    }
    stack_udp_close(sock);
    ASSERT_EQ(harness_tun_down(&u.tun), 0);
    return 0;
}

/* A fragment past the end of a datagram (after the one without "more fragments") joins it in
 * lwIP 2.1.3, which puts a datagram together once it runs from 0 to its last fragment with no
 * hole, whatever lies beyond; Linux drops the whole datagram (ip_frag_queue()). So anyone who
 * guessed the identification of a fragmented datagram could append bytes to it, checksum kept
 * (its first two bytes make up for the length the pseudo-header gains). The datagram is dropped:
 * its UDP length no longer matches, and nothing of it reaches the socket. */
TEST_IMPL(stack_udp_fragment_past_end)
{
    static struct ut u;
    ut_up(&u, "10.8.0.2", "fd00::2");
    struct stack_udp *sock = NULL;
    ASSERT_EQ(stack_udp_open(u.tun.stack, NULL, 0, ut_recv, &u, &sock), 0);
    struct v2s_addr peer = ut_addr("10.9.0.7"), self = ut_addr("10.8.0.2");
    /* The datagram: 8 bytes of data after the UDP header; then a copy with 8 more, the
     * appended fragment's bytes, which sum to minus 8 so the checksum still holds. */
    static const uint8_t real[8] = "realdata", more[16] = {'r', 'e', 'a', 'l', 'd', 'a', 't', 'a', 0xFF, 0xF7};
    uint8_t pkt[128], longer[128], frag[128];
    size_t len = harness_tun_udp(pkt, sizeof(pkt), &peer, 6000, &self, stack_udp_port(sock), real, sizeof(real));
    size_t llen = harness_tun_udp(longer, sizeof(longer), &peer, 6000, &self, stack_udp_port(sock), more, sizeof(more));
    ASSERT(len == 36 && llen == 44);
    /* The first fragment (the UDP header), the forged one past the end, the last. */
    size_t flen = harness_tun_fragment4(frag, sizeof(frag), pkt, len, 0, 8);
    harness_tun_inject(&u.tun, frag, flen);
    flen = harness_tun_fragment4(frag, sizeof(frag), longer, llen, 16, 8);
    v2s_put_be16(frag + 6, (uint16_t)(16 / 8 | 0x2000));
    v2s_put_be16(frag + 10, 0);
    v2s_put_be16(frag + 10, harness_tun_fold(harness_tun_sum(0, frag, 20)));
    harness_tun_inject(&u.tun, frag, flen);
    ASSERT_EQ(u.calls, 0);
    flen = harness_tun_fragment4(frag, sizeof(frag), pkt, len, 8, 8);
    harness_tun_inject(&u.tun, frag, flen);
    ASSERT_ROW(u.calls == 0, "delivered %zu bytes", u.len);
    /* The same datagram whole is taken. */
    harness_tun_inject(&u.tun, pkt, len);
    ASSERT_EQ(u.calls, 1);
    ASSERT_EQ(u.len, sizeof(real));
    stack_udp_close(sock);
    ASSERT_EQ(harness_tun_down(&u.tun), 0);
    return 0;
}
