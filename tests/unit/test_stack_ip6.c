/* IPv6 from the tunnel against the stack (stack/, lwIP behind the fake tunnel of harness_tun.h).
 * Packet too big: the test plays a router past the VPN whose next link is smaller than the
 * tunnel's MTU (1400 in the harness), dropping every larger packet with a packet too big, and
 * the server behind it, which reassembles fragments and acknowledges what arrives in order; what
 * a user would check is that an upload arrives whole. Fragments: what a hostile host can send to
 * the tunnel address must not stop the process, and datagrams in fragments still arrive. */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/bytes.h"
#include "harness_tun.h"
#include "stack/internal.h"
#include "stack/stack.h"
#include "stack/tcp.h"
#include "stack/udp.h"
#include "test.h"
#include "tunnel/settings.h"

enum {
    PTB_PEER_ISN = 5000000,
    PTB_PORT = 80,
    PTB_UPLOAD = 30000,
    PTB_QUEUE = 256,
    PTB_PKT_MAX = 1500,
};

struct ptb {
    struct harness_tun tun;
    struct harness_tun_app app;
    struct v2s_addr us, peer;
    uint32_t link_mtu;      /* the router drops what is larger */
    uint32_t said_mtu;      /* ... and says this in its packet too big */
    int forge;              /* quote a sequence number off by 100000 */
    int garble;             /* ... or a byte of the quote changed after the checksum */
    uint16_t syn_mss;       /* the server's MSS option (0: 1440) */
    size_t first;           /* the first write's size (0: two thirds of the upload) */
    size_t total;           /* the upload's (0: PTB_UPLOAD) */
    uint16_t sport;         /* the stack's SYN */
    uint32_t syn_seq;
    int syns;
    uint32_t rcv_nxt;       /* the server's */
    uint8_t got[PTB_UPLOAD];
    size_t n_got;
    size_t segs;            /* data segments the server took, in order or not */
    size_t short_segs;      /* ... with less than STACK_TCP_MSS_FLOOR bytes */
    size_t too_big;         /* packets the router dropped */
    size_t frags;           /* fragments that passed it */
    size_t frags_first;     /* ... by the time the first write had arrived */
    size_t largest_frag;
    size_t whole_after;     /* packets that passed whole after the first drop */
    size_t largest_whole_after;
    uint8_t reass[65536];   /* the server's reassembly of one packet at a time */
    size_t reass_len;
    uint32_t reass_id;
    uint8_t queue[PTB_QUEUE][PTB_PKT_MAX]; /* to inject once the stack's call returned */
    size_t queue_len[PTB_QUEUE];
    size_t n_queue;
    uv_write_t write_req;
};

/* An IPv6 header from src to dst for nexth carrying plen bytes. */
static void ptb_ip6(uint8_t *pkt, const struct v2s_addr *src, const struct v2s_addr *dst, uint8_t nexth, size_t plen)
{
    memset(pkt, 0, 40);
    pkt[0] = 0x60;
    v2s_put_be16(pkt + 4, (uint16_t)plen);
    pkt[6] = nexth;
    pkt[7] = 64;
    memcpy(pkt + 8, src->bytes, 16);
    memcpy(pkt + 24, dst->bytes, 16);
}

/* The checksum over IPv6's pseudo-header and n bytes at p (its checksum field zero), stored at
 * out. */
static void ptb_checksum6(const uint8_t *ip, uint8_t nexth, const uint8_t *p, size_t n, uint8_t *out)
{
    uint32_t sum = harness_tun_sum(0, ip + 8, 32) + nexth + (uint32_t)n;
    v2s_put_be16(out, harness_tun_fold(harness_tun_sum(sum, p, n)));
}

static void ptb_queue(struct ptb *b, const uint8_t *pkt, size_t len)
{
    ASSERT(b->n_queue < PTB_QUEUE && len <= PTB_PKT_MAX);
    memcpy(b->queue[b->n_queue], pkt, len);
    b->queue_len[b->n_queue++] = len;
}

/* A segment from the server (no options but an MSS on the SYN-ACK, 1440 unless b says). */
static void ptb_segment(struct ptb *b, uint8_t flags, uint32_t seq, uint32_t ack)
{
    uint8_t pkt[64];
    size_t tlen = flags & 0x02 ? 24 : 20;
    ptb_ip6(pkt, &b->peer, &b->us, 6, tlen);
    uint8_t *tcp = pkt + 40;
    memset(tcp, 0, tlen);
    v2s_put_be16(tcp, PTB_PORT);
    v2s_put_be16(tcp + 2, b->sport);
    v2s_put_be32(tcp + 4, seq);
    v2s_put_be32(tcp + 8, ack);
    tcp[12] = (uint8_t)(tlen / 4 << 4);
    tcp[13] = flags;
    v2s_put_be16(tcp + 14, 65535);
    if (tlen == 24) {
        tcp[20] = 2;
        tcp[21] = 4;
        v2s_put_be16(tcp + 22, b->syn_mss ? b->syn_mss : 1440);
    }
    ptb_checksum6(pkt, 6, tcp, tlen, tcp + 16);
    ptb_queue(b, pkt, 40 + tlen);
}

/* The server takes a whole TCP segment (after the IPv6 header): in order, it keeps the bytes. */
static void ptb_server(struct ptb *b, const uint8_t *tcp, size_t tlen)
{
    size_t doff = (size_t)(tcp[12] >> 4) * 4;
    ASSERT(tlen >= doff);
    uint32_t seq = v2s_get_be32(tcp + 4);
    size_t n = tlen - doff;
    if (n > 0) {
        b->segs++;
        b->short_segs += n < STACK_TCP_MSS_FLOOR;
    }
    if (n > 0 && seq == b->rcv_nxt && b->n_got + n <= sizeof(b->got)) {
        memcpy(b->got + b->n_got, tcp + doff, n);
        b->n_got += n;
        b->rcv_nxt += (uint32_t)n;
    }
    if (n > 0)
        ptb_segment(b, 0x10, PTB_PEER_ISN + 1, b->rcv_nxt);
}

/* The router: a packet too big for the next link is dropped and answered (quoting as much of
 * it as fits in 1280 bytes, RFC 4443 3.2); what passes goes to the server. */
static void ptb_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct ptb *b = t->arg;
    if (len < 48 || pkt[0] >> 4 != 6)
        return;
    const uint8_t *l4 = pkt + 40;
    if (pkt[6] == 6 && l4[13] == 0x02) {
        b->syns++;
        b->sport = v2s_get_be16(l4);
        b->syn_seq = v2s_get_be32(l4 + 4);
        ptb_segment(b, 0x12, PTB_PEER_ISN, b->syn_seq + 1);
        return;
    }
    if (len > b->link_mtu) {
        b->too_big++;
        uint8_t out[1280];
        size_t quote = len < sizeof(out) - 48 ? len : sizeof(out) - 48;
        ptb_ip6(out, &b->peer, &b->us, 58, 8 + quote);
        memset(out + 40, 0, 8);
        out[40] = 2;
        v2s_put_be32(out + 44, b->said_mtu);
        memcpy(out + 48, pkt, quote);
        if (b->forge)
            v2s_put_be32(out + 48 + 44, v2s_get_be32(out + 48 + 44) + 100000);
        ptb_checksum6(out, 58, out + 40, 8 + quote, out + 42);
        if (b->garble)
            out[48 + 40 + 20] ^= 1; /* the quoted segment's data */
        ptb_queue(b, out, 48 + quote);
        return;
    }
    if (b->too_big) {
        if (pkt[6] == 44) {
            b->frags++;
            if (len > b->largest_frag)
                b->largest_frag = len;
        } else {
            b->whole_after++;
            if (len > b->largest_whole_after)
                b->largest_whole_after = len;
        }
    }
    if (pkt[6] == 6) {
        ptb_server(b, l4, len - 40);
        return;
    }
    ASSERT_EQ(pkt[6], 44);
    /* Fragments of one packet come in order here: gathered until the last. */
    uint16_t off = v2s_get_be16(l4 + 2) & 0xFFF8;
    uint32_t id = v2s_get_be32(l4 + 4);
    size_t n = len - 48;
    if (off == 0) {
        b->reass_id = id;
        b->reass_len = 0;
    }
    ASSERT_EQ(id, b->reass_id);
    ASSERT_EQ(off, b->reass_len);
    ASSERT_EQ(l4[0], 6);
    memcpy(b->reass + off, l4 + 8, n);
    b->reass_len += n;
    if (!(l4[3] & 1))
        ptb_server(b, b->reass, b->reass_len);
}

static void ptb_inject_queued(struct ptb *b)
{
    while (b->n_queue > 0) {
        static uint8_t pkt[PTB_PKT_MAX];
        size_t len = b->queue_len[0];
        memcpy(pkt, b->queue[0], len);
        b->n_queue--;
        memmove(b->queue_len, b->queue_len + 1, b->n_queue * sizeof(b->queue_len[0]));
        memmove(b->queue, b->queue + 1, b->n_queue * sizeof(b->queue[0]));
        harness_tun_inject(&b->tun, pkt, len);
    }
}

static void ptb_written(uv_write_t *req, int status)
{
    (void)req;
    ASSERT_EQ(status, 0);
}

/* Opens a connection through the stack to the server behind the router, uploads PTB_UPLOAD
 * bytes in two writes and runs for up to 30 s each; returns how many arrived in order. */
static size_t ptb_upload(struct ptb *b)
{
    const struct harness_tun_config cfg = {.addr4 = "10.8.0.2", .addr6 = "fd00:0:0:8::2", .seed = 21};
    ASSERT_EQ(harness_tun_up(&b->tun, &cfg, ptb_send, b), 0);
    ASSERT_EQ(v2s_addr_parse(&b->us, "fd00:0:0:8::2"), 0);
    ASSERT_EQ(v2s_addr_parse(&b->peer, "2001:db8::1"), 0);
    ASSERT_EQ(harness_tun_app_open(&b->tun, &b->app), 0);
    struct stack_tcp *c;
    ASSERT_EQ(harness_tun_app_connect(&b->app, &b->peer, PTB_PORT, &c), 0);
    harness_tun_settle(&b->tun);
    ASSERT_EQ(b->syns, 1);
    b->rcv_nxt = b->syn_seq + 1;
    ptb_inject_queued(b);
    ASSERT_EQ(b->app.status, 0);

    /* Two writes: the second once the first has arrived, so nothing is queued unsent then. */
    static uint8_t data[PTB_UPLOAD];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + i / 251);
    const size_t first = b->first ? b->first : PTB_UPLOAD * 2 / 3;
    uv_buf_t buf = uv_buf_init((char *)data, first);
    ASSERT_EQ(uv_write(&b->write_req, (uv_stream_t *)&b->app.client, &buf, 1, ptb_written), 0);
    for (int i = 0; i < 600 && b->n_got < first; i++) {
        harness_tun_advance(&b->tun, 50);
        ptb_inject_queued(b);
    }
    b->frags_first = b->frags;
    b->whole_after = b->largest_whole_after = 0;
    const size_t total = b->total ? b->total : sizeof(data);
    buf = uv_buf_init((char *)data + first, total - first);
    ASSERT_EQ(uv_write(&b->write_req, (uv_stream_t *)&b->app.client, &buf, 1, ptb_written), 0);
    for (int i = 0; i < 600 && b->n_got < total; i++) {
        harness_tun_advance(&b->tun, 50);
        ptb_inject_queued(b);
    }
    ASSERT_EQ(memcmp(b->got, data, b->n_got), 0);
    size_t got = b->n_got;
    harness_tun_app_close(&b->app);
    ASSERT_EQ(harness_tun_down(&b->tun), 0);
    harness_tun_app_free(&b->app);
    return got;
}

/* A link of 1280 bytes past the VPN (the tunnel's MTU is 1400): lwIP 2.1.3 dropped the packet
 * too big (it keeps path MTUs only in a destination cache our netif never fills), so every
 * full-sized segment was lost at each resend and the upload hung; now it arrives whole, the
 * segments queued before the packet too big in fragments of at most 1280 bytes, and the later
 * ones in segments that fit. */
TEST_IMPL(stack_icmp_too_big_upload)
{
    static struct ptb b;
    memset(&b, 0, sizeof(b));
    b.link_mtu = b.said_mtu = 1280;
    ASSERT_EQ(ptb_upload(&b), PTB_UPLOAD);
    ASSERT(b.too_big >= 1);
    ASSERT(b.frags_first >= 2);
    ASSERT(b.largest_frag <= 1280);
    /* The second write, with nothing unsent before it, was cut to the path's MSS: whole
     * packets of at most 1280 bytes, no fragments. */
    ASSERT_EQ(b.frags, b.frags_first);
    ASSERT(b.whole_after >= 5);
    ASSERT(b.largest_whole_after <= 1280);
    return 0;
}

/* The packet too big comes for a write that went out whole (nothing unsent, the dropped segment
 * still unacknowledged), the first or a later one: the MSS must not come down below that
 * segment's size while it may be sent again, or lwIP's retransmission timeout, which sets the
 * congestion window to one (new) MSS, could never send it; the upload arrives whole. */
TEST_IMPL(stack_icmp_too_big_in_flight)
{
    static struct ptb b;
    memset(&b, 0, sizeof(b));
    b.link_mtu = b.said_mtu = 1280;
    for (int round = 0; round < 2; round++) {
        memset(&b, 0, sizeof(b));
        b.link_mtu = b.said_mtu = 1280;
        b.first = round == 0 ? 2000 : 100;
        b.total = round == 0 ? PTB_UPLOAD : 2100;
        ASSERT_ROW(ptb_upload(&b) == (round == 0 ? PTB_UPLOAD : 2100), "%d", round);
        ASSERT_ROW(b.too_big >= 1, "%d", round);
        ASSERT_ROW(b.largest_frag <= 1280, "%d", round);
    }
    return 0;
}

/* A router that says less than IPv6's minimum MTU (here 600) is taken at 1280 (RFC 8201 4): the
 * fragments are as large as that, not smaller. */
TEST_IMPL(stack_icmp_too_big_floor)
{
    static struct ptb b;
    memset(&b, 0, sizeof(b));
    b.link_mtu = 1280;
    b.said_mtu = 600;
    ASSERT_EQ(ptb_upload(&b), PTB_UPLOAD);
    ASSERT_EQ(b.largest_frag, 1280);
    return 0;
}

/* A packet too big quoting a sequence number the connection never sent (an off-path host's
 * guess) is ignored and counted: nothing is fragmented for it (the router here drops the large
 * packets anyway, so the upload does not get through). */
TEST_IMPL(stack_icmp_too_big_forged)
{
    static struct ptb b;
    memset(&b, 0, sizeof(b));
    b.link_mtu = b.said_mtu = 1280;
    b.forge = 1;
    ASSERT(ptb_upload(&b) < PTB_UPLOAD);
    ASSERT(b.too_big >= 2);
    ASSERT_EQ(b.frags, 0);
    return 0;
}

/* A packet too big whose ICMPv6 checksum does not match (garbled on the way) is ignored as lwIP
 * would have ignored it: nothing is fragmented for it. The stack reads it before lwIP checks
 * it, and took it. */
TEST_IMPL(stack_icmp_too_big_garbled)
{
    static struct ptb b;
    memset(&b, 0, sizeof(b));
    b.link_mtu = b.said_mtu = 1280;
    b.garble = 1;
    ASSERT(ptb_upload(&b) < PTB_UPLOAD);
    ASSERT(b.too_big >= 2);
    ASSERT_EQ(b.frags, 0);
    return 0;
}

/* A server announcing an MSS of 40 bytes in its SYN-ACK, behind a link of 1280: the MSS is raised
 * to the floor of 48 (stack.c; Linux's tcp_min_snd_mss), not to anything the path MTU gives (a
 * packet too big only ever lowers it, pmtu.c), so the upload arrives whole in segments of 48
 * bytes but the last of each write, none too big for the link. lwIP took the 40 as it came. */
TEST_IMPL(stack_ip6_mss_floor)
{
    static struct ptb b;
    memset(&b, 0, sizeof(b));
    b.link_mtu = b.said_mtu = 1280;
    b.syn_mss = 40;
    b.first = 2000;
    b.total = 6000;
    ASSERT_EQ(ptb_upload(&b), 6000);
    ASSERT_EQ(b.too_big, 0);
    ASSERT(b.short_segs <= 2);
    ASSERT(b.segs <= 2000 / 48 + 1 + 4000 / 48 + 1);
    return 0;
}

/* --- fragments --- */

struct frag6 {
    struct harness_tun tun;
    struct v2s_addr us, peer;
    int calls;            /* datagrams the socket got */
    size_t len;
    uint8_t data[4096];
};

static void frag6_recv(void *arg, const struct v2s_addr *src, uint16_t sport, const struct v2s_addr *dst,
                       const uint8_t *data, size_t len)
{
    struct frag6 *f = arg;
    (void)src;
    (void)sport;
    (void)dst;
    f->calls++;
    f->len = len < sizeof(f->data) ? len : sizeof(f->data);
    memcpy(f->data, data, f->len);
}

/* Injects one IPv6 fragment from the peer: fragment header (next header nexth, byte offset off,
 * more fragments, id) and n bytes of the fragmentable part. */
static void frag6_inject(struct frag6 *f, uint8_t nexth, uint16_t off, int more, uint32_t id, const uint8_t *data,
                         size_t n)
{
    static uint8_t pkt[2048];
    ASSERT(48 + n <= sizeof(pkt));
    ptb_ip6(pkt, &f->peer, &f->us, 44, 8 + n);
    pkt[40] = nexth;
    pkt[41] = 0;
    v2s_put_be16(pkt + 42, (uint16_t)(off | (more ? 1 : 0)));
    v2s_put_be32(pkt + 44, id);
    memcpy(pkt + 48, data, n);
    harness_tun_inject(&f->tun, pkt, 48 + n);
}

/* A UDP datagram from the peer to port, with its checksum: header and payload into out. */
static size_t frag6_udp(struct frag6 *f, uint16_t port, const uint8_t *payload, size_t n, uint8_t *out)
{
    uint8_t ip[40];
    ptb_ip6(ip, &f->peer, &f->us, 17, 8 + n);
    v2s_put_be16(out, 5000);
    v2s_put_be16(out + 2, port);
    v2s_put_be16(out + 4, (uint16_t)(8 + n));
    v2s_put_be16(out + 6, 0);
    memcpy(out + 8, payload, n);
    ptb_checksum6(ip, 17, out, 8 + n, out + 6);
    return 8 + n;
}

/* Two IPv6 fragments whose datagram holds another fragment header (the first fragment's next
 * header says so, or the datagram starts with destination options that name one): lwIP 2.1.3
 * went on after reassembling with the last fragment's header as the current one, and
 * ip6_reass() asserted on the distance to it, aborting the process (one in a few hundred random
 * packet runs hit it). Such fragments are dropped; a fragmented datagram still arrives. */
TEST_IMPL(stack_ip6_nested_fragments)
{
    static struct frag6 f;
    memset(&f, 0, sizeof(f));
    const struct harness_tun_config cfg = {.addr4 = "10.8.0.2", .addr6 = "fd00:0:0:8::2", .seed = 23};
    ASSERT_EQ(harness_tun_up(&f.tun, &cfg, NULL, NULL), 0);
    ASSERT_EQ(v2s_addr_parse(&f.us, "fd00:0:0:8::2"), 0);
    ASSERT_EQ(v2s_addr_parse(&f.peer, "2001:db8::7"), 0);
    struct stack_udp *sock = NULL;
    ASSERT_EQ(stack_udp_open(f.tun.stack, NULL, 0, frag6_recv, &f, &sock), 0);
    uint16_t port = stack_udp_port(sock);

    static uint8_t inner[1024], udp[1100];
    size_t n_udp = frag6_udp(&f, port, (const uint8_t *)"hidden", 6, udp);
    for (int round = 0; round < 40; round++) {
        /* The datagram: [fragment header, more fragments][UDP] or [destination options naming a
         * fragment header][fragment header][UDP], in two outer fragments, in either order. */
        size_t n = 0;
        int opts = round % 2;
        if (opts) {
            memset(inner, 0, 8);
            inner[0] = 44;
            inner[2] = 1; /* a PadN option filling the header */
            inner[3] = 4;
            n = 8;
        }
        inner[n] = 17;
        inner[n + 1] = 0;
        v2s_put_be16(inner + n + 2, 1);
        v2s_put_be32(inner + n + 4, 0x1000u + (uint32_t)round);
        n += 8;
        memcpy(inner + n, udp, n_udp);
        n += n_udp;
        while (n % 8)
            inner[n++] = 0;
        uint32_t id = 0x2000u + (uint32_t)round;
        uint8_t nexth = opts ? 60 : 44;
        size_t half = (n / 2) & ~(size_t)7;
        if (round % 4 < 2) {
            frag6_inject(&f, nexth, 0, 1, id, inner, half);
            frag6_inject(&f, nexth, (uint16_t)half, 0, id, inner + half, n - half);
        } else {
            frag6_inject(&f, nexth, (uint16_t)half, 0, id, inner + half, n - half);
            frag6_inject(&f, nexth, 0, 1, id, inner, half);
        }
    }
    harness_tun_advance(&f.tun, 100);

    /* A datagram in two fragments, as a server sends one. */
    static uint8_t payload[1000];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 13);
    n_udp = frag6_udp(&f, port, payload, sizeof(payload), udp);
    frag6_inject(&f, 17, 0, 1, 0x3000, udp, 512);
    frag6_inject(&f, 17, 512, 0, 0x3000, udp + 512, n_udp - 512);
    ASSERT_EQ(f.calls, 1);
    ASSERT_EQ(f.len, sizeof(payload));
    ASSERT_MEM_EQ(f.data, payload, sizeof(payload));

    stack_udp_close(sock);
    ASSERT_EQ(harness_tun_down(&f.tun), 0);
    return 0;
}

/* IPv6 packets that end where an extension header or an option's length byte should be: lwIP
 * 2.1.3 reads the header's length (or the option's) before it checks that it is there, a byte
 * past the buffer (AddressSanitizer: heap-buffer-overflow in ip6_input()). They are dropped
 * before lwIP sees them, and a datagram after them arrives. */
TEST_IMPL(stack_ip6_headers_cut)
{
    static struct frag6 f;
    memset(&f, 0, sizeof(f));
    const struct harness_tun_config cfg = {.addr4 = "10.8.0.2", .addr6 = "fd00:0:0:8::2", .seed = 25};
    ASSERT_EQ(harness_tun_up(&f.tun, &cfg, NULL, NULL), 0);
    ASSERT_EQ(v2s_addr_parse(&f.us, "fd00:0:0:8::2"), 0);
    ASSERT_EQ(v2s_addr_parse(&f.peer, "2001:db8::7"), 0);
    struct stack_udp *sock = NULL;
    ASSERT_EQ(stack_udp_open(f.tun.stack, NULL, 0, frag6_recv, &f, &sock), 0);
    uint64_t bad = f.tun.stack->rx_bad;

    static const uint8_t nexths[] = {0, 43, 60};
    uint8_t pkt[48];
    for (size_t i = 0; i < ARRAY_SIZE(nexths); i++) {
        /* The header announced, not there. */
        ptb_ip6(pkt, &f.peer, &f.us, nexths[i], 0);
        harness_tun_inject(&f.tun, pkt, 40);
        /* Its first byte only. */
        ptb_ip6(pkt, &f.peer, &f.us, nexths[i], 1);
        pkt[40] = 17;
        harness_tun_inject(&f.tun, pkt, 41);
    }
    /* Hop-by-hop options whose last option has its type but not its length. */
    static const uint8_t hbh[8] = {17, 0, 1, 2, 0, 0, 0, 1};
    ptb_ip6(pkt, &f.peer, &f.us, 0, 8);
    memcpy(pkt + 40, hbh, 8);
    harness_tun_inject(&f.tun, pkt, 48);
    ASSERT_EQ(f.tun.stack->rx_bad - bad, 2 * ARRAY_SIZE(nexths) + 1);

    static uint8_t udp[64];
    size_t n = frag6_udp(&f, stack_udp_port(sock), (const uint8_t *)"after", 5, udp);
    uint8_t whole[128];
    ptb_ip6(whole, &f.peer, &f.us, 17, n);
    memcpy(whole + 40, udp, n);
    harness_tun_inject(&f.tun, whole, 40 + n);
    ASSERT_EQ(f.calls, 1);
    ASSERT_EQ(f.len, 5);

    stack_udp_close(sock);
    ASSERT_EQ(harness_tun_down(&f.tun), 0);
    return 0;
}

/* --- UDP headers --- */

/* Redoes the UDP checksum of pkt (IP header of hlen bytes, UDP after it) as lwIP checks it: over
 * the pseudo-header with the IP payload's length, whatever the UDP length field says. */
static void udp_recheck(uint8_t *pkt, size_t hlen, size_t len)
{
    uint8_t *udp = pkt + hlen;
    size_t n = len - hlen;
    udp[6] = udp[7] = 0;
    uint32_t sum = hlen == 40 ? harness_tun_sum(0, pkt + 8, 32) : harness_tun_sum(0, pkt + 12, 8);
    sum += 17 + (uint32_t)n;
    uint16_t ck = harness_tun_fold(harness_tun_sum(sum, udp, n));
    v2s_put_be16(udp + 6, ck ? ck : 0xFFFF);
}

/* What a forward receives of datagrams whose UDP header is off: one whose length field says 10
 * of its 20 payload bytes (or 30) went to the socket with all 20 (lwIP never reads the field);
 * an IPv6 one without a checksum was taken unchecked (RFC 8200 8.1 says drop it). Both are
 * dropped now, as Linux drops them; IPv4 without a checksum and well-formed datagrams arrive. */
TEST_IMPL(stack_udp_header_checks)
{
    static struct frag6 f;
    memset(&f, 0, sizeof(f));
    const struct harness_tun_config cfg = {.addr4 = "10.8.0.2", .addr6 = "fd00:0:0:8::2", .seed = 27};
    ASSERT_EQ(harness_tun_up(&f.tun, &cfg, NULL, NULL), 0);
    struct stack_udp *sock = NULL;
    ASSERT_EQ(stack_udp_open(f.tun.stack, NULL, 0, frag6_recv, &f, &sock), 0);
    uint16_t port = stack_udp_port(sock);
    static const struct {
        const char *from, *to;
        int ulen_delta;  /* added to the UDP length field */
        int no_checksum;
        int arrives;
    } rows[] = {
        {"10.9.0.7", "10.8.0.2", 0, 0, 1},
        {"10.9.0.7", "10.8.0.2", 0, 1, 1},
        {"10.9.0.7", "10.8.0.2", -10, 0, 0},
        {"10.9.0.7", "10.8.0.2", 10, 0, 0},
        {"2001:db8::7", "fd00:0:0:8::2", 0, 0, 1},
        {"2001:db8::7", "fd00:0:0:8::2", 0, 1, 0},
        {"2001:db8::7", "fd00:0:0:8::2", -10, 0, 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct v2s_addr from, to;
        ASSERT_EQ(v2s_addr_parse(&from, rows[i].from), 0);
        ASSERT_EQ(v2s_addr_parse(&to, rows[i].to), 0);
        uint8_t pkt[128];
        static const uint8_t payload[20] = "twenty bytes of data";
        size_t len = harness_tun_udp(pkt, sizeof(pkt), &from, 5000, &to, port, payload, sizeof(payload));
        ASSERT(len > 0);
        size_t hlen = from.family == AF_INET6 ? 40 : 20;
        v2s_put_be16(pkt + hlen + 4, (uint16_t)(8 + (int)sizeof(payload) + rows[i].ulen_delta));
        udp_recheck(pkt, hlen, len);
        if (rows[i].no_checksum)
            v2s_put_be16(pkt + hlen + 6, 0);
        f.calls = 0;
        harness_tun_inject(&f.tun, pkt, len);
        ASSERT_ROW(f.calls == rows[i].arrives, "%zu", i);
        if (rows[i].arrives)
            ASSERT_ROW(f.len == sizeof(payload) && memcmp(f.data, payload, f.len) == 0, "%zu", i);
    }
    stack_udp_close(sock);
    ASSERT_EQ(harness_tun_down(&f.tun), 0);
    return 0;
}

/* --- the tunnel up again with another IPv6 address --- */

struct readdr {
    struct harness_tun_tcp tcp;
    int resets;
    uint32_t acked;      /* the highest acknowledgement number the stack sent */
};

static void readdr_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct readdr *r = t->arg;
    (void)len;
    const uint8_t *tcp = pkt + 20;
    if (tcp[13] & 0x04)
        r->resets++;
    if (tcp[13] & 0x10)
        r->acked = v2s_get_be32(tcp + 8);
}

/* A reconnect whose push adds an IPv6 address (or drops it, or changes it) while the IPv4
 * address stays: the IPv4 connections go on. Every connection was reset, whatever its family.
 * Then the IPv4 address changes: they are reset, as before. */
TEST_IMPL(stack_ip6_readdress_keeps_ipv4)
{
    static struct readdr r;
    memset(&r, 0, sizeof(r));
    const struct harness_tun_tcp_config cfg = {.seed = 29, .port = 80, .isn = 9000, .wnd = 65535, .mss = 1400};
    harness_tun_tcp_open(&r.tcp, &cfg, readdr_send, &r);
    uint32_t seq = 9001, our = r.tcp.syn_seq + 1;
    static const char *const v6s[] = {"fd00:0:0:8::2", "fd00:0:0:8::3", NULL};
    uint8_t pkt[256], data[10];
    memset(data, 'z', sizeof(data));
    for (size_t i = 0; i < ARRAY_SIZE(v6s); i++) {
        struct tunnel_settings ts;
        tunnel_settings_init(&ts);
        ASSERT_EQ(v2s_addr_parse(&ts.addr4, "10.8.0.2"), 0);
        ts.prefix4 = 24;
        if (v6s[i]) {
            ASSERT_EQ(v2s_addr_parse(&ts.addr6, v6s[i]), 0);
            ts.prefix6 = 64;
        }
        ts.mtu = 1400;
        ASSERT_EQ(stack_tunnel_up(r.tcp.tun.stack, &ts), 0);
        tunnel_settings_free(&ts);
        harness_tun_settle(&r.tcp.tun);
        size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &r.tcp.peer, 80, &r.tcp.us, r.tcp.sport, 0x18, seq, our,
                                      65535, NULL, 0, data, sizeof(data));
        harness_tun_inject(&r.tcp.tun, pkt, len);
        seq += sizeof(data);
        harness_tun_advance(&r.tcp.tun, 100);
        ASSERT_ROW(r.resets == 0 && r.tcp.app.done == 0, "%zu", i);
        ASSERT_ROW(r.acked == seq, "%zu", i);
    }
    struct tunnel_settings ts;
    tunnel_settings_init(&ts);
    ASSERT_EQ(v2s_addr_parse(&ts.addr4, "10.8.0.9"), 0);
    ts.prefix4 = 24;
    ts.mtu = 1400;
    ASSERT_EQ(stack_tunnel_up(r.tcp.tun.stack, &ts), 0);
    tunnel_settings_free(&ts);
    harness_tun_advance(&r.tcp.tun, 100);
    ASSERT_EQ(r.tcp.app.done, 1);
    harness_tun_tcp_close(&r.tcp);
    return 0;
}

/* --- a UDP datagram to a destination behind a smaller link --- */

struct udp6big {
    struct harness_tun tun;
    size_t n_frags, largest;
    uint8_t whole[8192];  /* the datagram's fragmentable part, as the fragments place it */
    size_t end;           /* its length once the last fragment came */
    uint32_t id;
    int ids;              /* identifications seen */
};

static void udp6big_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct udp6big *u = t->arg;
    if (len < 48 || pkt[0] >> 4 != 6 || pkt[6] != 44)
        return;
    u->n_frags++;
    if (len > u->largest)
        u->largest = len;
    uint16_t f = v2s_get_be16(pkt + 42);
    uint32_t id = v2s_get_be32(pkt + 44);
    if (u->ids == 0 || id != u->id)
        u->ids++;
    u->id = id;
    size_t off = f & 0xFFF8, n = len - 48;
    ASSERT_EQ(pkt[40], 17);
    ASSERT(off + n <= sizeof(u->whole));
    memcpy(u->whole + off, pkt + 48, n);
    if (f & 1)
        ASSERT_EQ(n % 8, 0);
    else
        u->end = off + n;
}

/* A datagram of 4000 bytes to a destination a packet too big named (1300): lwIP cuts it for the
 * tunnel's MTU (1400) and the stack cuts those fragments again to 1300 (a 1352-byte piece into
 * 1248 and 104), keeping the offsets, the flags and the identification, so the receiver puts the
 * same datagram together. */
TEST_IMPL(stack_icmp_too_big_udp)
{
    static struct udp6big u;
    memset(&u, 0, sizeof(u));
    const struct harness_tun_config cfg = {.addr6 = "fd00:0:0:8::2", .seed = 31};
    ASSERT_EQ(harness_tun_up(&u.tun, &cfg, udp6big_send, &u), 0);
    struct v2s_addr us, peer;
    ASSERT_EQ(v2s_addr_parse(&us, "fd00:0:0:8::2"), 0);
    ASSERT_EQ(v2s_addr_parse(&peer, "2001:db8::9"), 0);
    struct stack_udp *sock = NULL;
    static struct frag6 sink;
    ASSERT_EQ(stack_udp_open(u.tun.stack, NULL, 0, frag6_recv, &sink, &sock), 0);
    uint16_t port = stack_udp_port(sock);

    /* The packet too big, quoting a datagram of ours to the peer. */
    uint8_t ptb[48 + 48];
    memset(ptb, 0, sizeof(ptb));
    ptb_ip6(ptb, &peer, &us, 58, 8 + 48);
    ptb[40] = 2;
    v2s_put_be32(ptb + 44, 1300);
    ptb_ip6(ptb + 48, &us, &peer, 17, 1400 - 40);
    v2s_put_be16(ptb + 88, port);
    v2s_put_be16(ptb + 90, 7000);
    ptb_checksum6(ptb, 58, ptb + 40, 8 + 48, ptb + 42);
    harness_tun_inject(&u.tun, ptb, sizeof(ptb));

    static uint8_t data[4000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 11 + 3);
    ASSERT_EQ(stack_udp_send(sock, &peer, 7000, data, sizeof(data)), 0);
    harness_tun_settle(&u.tun);
    ASSERT(u.n_frags >= 4);
    ASSERT(u.largest <= 1300);
    ASSERT_EQ(u.ids, 1);
    ASSERT_EQ(u.end, 8 + sizeof(data));
    ASSERT_EQ(v2s_get_be16(u.whole + 4), 8 + sizeof(data));
    ASSERT_MEM_EQ(u.whole + 8, data, sizeof(data));

    stack_udp_close(sock);
    ASSERT_EQ(harness_tun_down(&u.tun), 0);
    return 0;
}
