/* ACK thinning (stack.c, stack_netif_output()): within one loop iteration a pure ACK is held and
 * replaced by a later one of the same connection that acknowledges more, while duplicate ACKs
 * all leave (a sender without SACK counts them); and SACK compression: duplicate ACKs with SACK
 * blocks, past the first few for one number, leave one in several or after a short delay. The
 * real stack and lwIP behind the fake tunnel of harness_tun.h; the test plays the server's TCP
 * by hand (a handshake without window scaling or timestamps, with or without SACK, then data),
 * and a loopback socket is the bridged application. Also: out-of-order segments joined before
 * lwIP takes the next one (tcp_ooseq.c), and a resend of data held past a hole dropped. */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/bytes.h"
#include "harness_tun.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "stack/lwip_pin.h"
#include "stack/stack.h"
#include "test.h"

enum { ACKS_MAX = 64, ACKS_PEER_ISN = 1000000, ACKS_SEG = 100 };

struct acks {
    struct harness_tun_tcp tcp; /* the connection; its application a loopback pair */
    uint32_t acks[ACKS_MAX]; /* acknowledgement numbers of the pure ACKs sent, in order */
    uint32_t sack_edge[ACKS_MAX]; /* the highest right edge of their SACK blocks, 0 for none */
    size_t n_acks;
};

static void acks_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct acks *a = t->arg;
    const uint8_t *tcp = pkt + 20;
    size_t doff = (size_t)(tcp[12] >> 4) * 4;
    if (tcp[13] == 0x10 && len == 20 + doff && a->n_acks < ACKS_MAX) {
        uint32_t edge = 0;
        const uint8_t *sack = harness_tun_tcp_option(tcp, 5);
        for (size_t b = 2; sack && b + 8 <= sack[1]; b += 8)
            if (edge == 0 || v2s_get_be32(sack + b + 4) - edge < 0x80000000u)
                edge = v2s_get_be32(sack + b + 4);
        a->sack_edge[a->n_acks] = edge;
        a->acks[a->n_acks++] = v2s_get_be32(tcp + 8);
    }
}

/* One segment from the peer to the stack, into the stack but not yet through the loop. */
static void acks_segment(struct acks *a, uint8_t flags, uint32_t seq, size_t n)
{
    uint8_t pkt[1500], data[ACKS_SEG];
    memset(data, 'x', sizeof(data));
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &a->tcp.peer, 80, &a->tcp.us, a->tcp.sport, flags, seq,
                                  a->tcp.syn_seq + 1, 65535, NULL, 0, data, n);
    ASSERT(len > 0);
    stack_input(a->tcp.tun.stack, pkt, len);
}

/* The stack up at 10.8.0.2 and one connection to 10.9.0.1:80 through the handshake: SYN, then a
 * SYN-ACK with MSS 1400 (and SACK permitted when sack is set). */
static void acks_open(struct acks *a, uint64_t seed, int sack)
{
    const struct harness_tun_tcp_config cfg = {
        .seed = seed, .port = 80, .isn = ACKS_PEER_ISN, .wnd = 65535, .mss = 1400, .sack = sack};
    harness_tun_tcp_open(&a->tcp, &cfg, acks_send, a);
}

TEST_IMPL(stack_ack_thinning)
{
    static struct acks a;
    memset(&a, 0, sizeof(a));
    acks_open(&a, 3, 0); /* the SYN-ACK with MSS 1400 only */
    ASSERT_EQ(a.n_acks, 1); /* the handshake's ACK */
    ASSERT_EQ(a.acks[0], ACKS_PEER_ISN + 1);

    /* Eight segments in one iteration: lwIP acknowledges every second one, and only the last
     * of those ACKs leaves. */
    a.n_acks = 0;
    uint32_t seq = ACKS_PEER_ISN + 1;
    for (int i = 0; i < 8; i++, seq += ACKS_SEG)
        acks_segment(&a, 0x18, seq, ACKS_SEG);
    ASSERT_EQ(a.n_acks, 0); /* held until the end of the iteration */
    harness_tun_settle(&a.tcp.tun);
    ASSERT_EQ(a.n_acks, 1);
    ASSERT_EQ(a.acks[0], seq);

    /* Three segments past a hole: three duplicate ACKs, all of them sent. */
    a.n_acks = 0;
    for (int i = 1; i <= 3; i++)
        acks_segment(&a, 0x18, seq + (uint32_t)i * ACKS_SEG, ACKS_SEG);
    harness_tun_settle(&a.tcp.tun);
    ASSERT_EQ(a.n_acks, 3);
    for (size_t i = 0; i < 3; i++)
        ASSERT_EQ(a.acks[i], seq);
    /* The hole filled: one ACK for everything (at once: stack_hook_tcp_input()). */
    a.n_acks = 0;
    acks_segment(&a, 0x18, seq, ACKS_SEG);
    harness_tun_advance(&a.tcp.tun, 50);
    ASSERT_EQ(a.n_acks, 1);
    ASSERT_EQ(a.acks[0], seq + 4 * ACKS_SEG);

    harness_tun_tcp_close(&a.tcp);
    ASSERT_EQ(a.tcp.app.done, 1);
    return 0;
}

/* Segments one per loop iteration, as from a server that sends one segment per datagram: lwIP
 * acknowledges every second one. Past a hole (SACK agreed), the first three duplicate ACKs leave
 * at once, then one for every eight segments, and the last within the short delay; the segment
 * that fills the hole is acknowledged at once. */
TEST_IMPL(stack_ack_sack_compression)
{
    static struct acks a;
    memset(&a, 0, sizeof(a));
    acks_open(&a, 5, 1);
    ASSERT_EQ(a.n_acks, 1);

    /* Ten segments, each in its own loop iteration: five ACKs, each for two more. */
    a.n_acks = 0;
    uint32_t seq = ACKS_PEER_ISN + 1;
    for (int i = 0; i < 10; i++, seq += ACKS_SEG) {
        acks_segment(&a, 0x10, seq, ACKS_SEG);
        harness_tun_settle(&a.tcp.tun);
    }
    ASSERT_EQ(a.n_acks, 5);
    for (size_t i = 0; i < 5; i++) {
        ASSERT_EQ(a.acks[i], ACKS_PEER_ISN + 1 + (uint32_t)(i + 1) * 2 * ACKS_SEG);
        ASSERT_EQ(a.sack_edge[i], 0);
    }

    /* A segment sent again: its duplicate ACK leaves with the iteration. */
    a.n_acks = 0;
    acks_segment(&a, 0x10, seq - ACKS_SEG, ACKS_SEG);
    harness_tun_settle(&a.tcp.tun);
    ASSERT_EQ(a.n_acks, 1);
    ASSERT_EQ(a.acks[0], seq);

    /* The segment at seq is lost; twelve after it, one per iteration. */
    a.n_acks = 0;
    for (uint32_t i = 1; i <= 12; i++) {
        acks_segment(&a, 0x10, seq + i * ACKS_SEG, ACKS_SEG);
        harness_tun_settle(&a.tcp.tun);
        if (i == 3)
            ASSERT_EQ(a.n_acks, 3); /* the first three at once */
    }
    /* Then the one for segment 11 (for segments 4 to 11); the one for segment 12 is held. */
    ASSERT_EQ(a.n_acks, 4);
    for (size_t i = 0; i < a.n_acks; i++)
        ASSERT_EQ(a.acks[i], seq);
    ASSERT_EQ(a.sack_edge[2], seq + 4 * ACKS_SEG);
    ASSERT_EQ(a.sack_edge[3], seq + 12 * ACKS_SEG);
    harness_tun_advance(&a.tcp.tun, 2);
    ASSERT_EQ(a.n_acks, 5);
    ASSERT_EQ(a.acks[4], seq);
    ASSERT_EQ(a.sack_edge[4], seq + 13 * ACKS_SEG);

    /* The hole filled: one ACK for everything, without waiting for a timer. */
    a.n_acks = 0;
    acks_segment(&a, 0x10, seq, ACKS_SEG);
    harness_tun_settle(&a.tcp.tun);
    ASSERT_EQ(a.n_acks, 1);
    ASSERT_EQ(a.acks[0], seq + 13 * ACKS_SEG);
    ASSERT_EQ(a.sack_edge[0], 0);

    harness_tun_tcp_close(&a.tcp);
    ASSERT_EQ(a.tcp.app.done, 1);
    return 0;
}

enum { OOSEQ_SEG = 1200, OOSEQ_N = 40 };

/* The peer's byte at offset k of its stream. */
static uint8_t ooseq_byte(uint32_t k)
{
    return (uint8_t)(k * 7u + k / 251u);
}

/* Segment i of the peer's stream (OOSEQ_SEG bytes at offset i * OOSEQ_SEG), into the stack. */
static void ooseq_segment(struct acks *a, uint32_t isn, uint32_t i)
{
    uint8_t pkt[1500], data[OOSEQ_SEG];
    for (uint32_t k = 0; k < OOSEQ_SEG; k++)
        data[k] = ooseq_byte(i * OOSEQ_SEG + k);
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &a->tcp.peer, 80, &a->tcp.us, a->tcp.sport, 0x10,
                                  isn + i * OOSEQ_SEG, a->tcp.syn_seq + 1, 65535, NULL, 0, data, OOSEQ_SEG);
    ASSERT(len > 0);
    stack_input(a->tcp.tun.stack, pkt, len);
}

/* The connection's out-of-order queue: its entries and the bytes they hold. */
static void ooseq_count(size_t *segs, uint32_t *bytes)
{
    *segs = 0;
    *bytes = 0;
    ASSERT(tcp_active_pcbs && !tcp_active_pcbs->next);
    for (const struct tcp_seg *s = tcp_active_pcbs->ooseq; s; s = s->next) {
        (*segs)++;
        *bytes += s->len;
    }
}

/* 40 segments past a lost one are kept as one entry on lwIP's ooseq (not 40, which lwIP walks
 * for each further segment); a resend of one in the middle of them is acknowledged and changes
 * nothing held (lwIP would cut the joined entry there and give back the rest, data
 * already SACKed); the hole filled, the application gets every byte in order. */
TEST_IMPL(stack_ooseq_join)
{
    static struct acks a;
    memset(&a, 0, sizeof(a));
    acks_open(&a, 7, 1);
    const uint32_t isn = ACKS_PEER_ISN + 1;

    /* Segment 0 is lost; 1 to 40 arrive, one per loop iteration. */
    for (uint32_t i = 1; i <= OOSEQ_N; i++) {
        ooseq_segment(&a, isn, i);
        harness_tun_settle(&a.tcp.tun);
    }
    size_t segs;
    uint32_t bytes;
    ooseq_count(&segs, &bytes);
    ASSERT_EQ(bytes, OOSEQ_N * OOSEQ_SEG);
    ASSERT(segs <= 2); /* the last one is joined when the next segment comes */

    /* Segment 20 again: acknowledged (within SACK compression's short delay, as any duplicate
     * ACK past the first few), with the whole range in its SACK block. */
    harness_tun_advance(&a.tcp.tun, 2);
    a.n_acks = 0;
    ooseq_segment(&a, isn, 20);
    harness_tun_advance(&a.tcp.tun, 2);
    ASSERT_EQ(a.n_acks, 1);
    ASSERT_EQ(a.acks[0], isn);
    ASSERT_EQ(a.sack_edge[0], isn + (OOSEQ_N + 1) * OOSEQ_SEG);
    ooseq_count(&segs, &bytes);
    ASSERT_EQ(segs, 1);
    ASSERT_EQ(bytes, OOSEQ_N * OOSEQ_SEG);

    /* The hole filled: one ACK for everything, and every byte reaches the application. */
    a.n_acks = 0;
    ooseq_segment(&a, isn, 0);
    harness_tun_settle(&a.tcp.tun);
    ASSERT_EQ(a.n_acks, 1);
    ASSERT_EQ(a.acks[0], isn + (OOSEQ_N + 1) * OOSEQ_SEG);
    ASSERT_EQ(a.sack_edge[0], 0);
    uv_os_fd_t fd;
    ASSERT_EQ(uv_fileno((uv_handle_t *)&a.tcp.app.client, &fd), 0);
    static uint8_t got[(OOSEQ_N + 1) * OOSEQ_SEG];
    size_t have = 0;
    for (int tries = 0; tries < 100 && have < sizeof(got); tries++) {
        harness_tun_settle(&a.tcp.tun);
        ssize_t n = recv(fd, got + have, sizeof(got) - have, MSG_DONTWAIT);
        if (n > 0)
            have += (size_t)n;
    }
    ASSERT_EQ(have, sizeof(got));
    for (uint32_t k = 0; k < sizeof(got); k++)
        ASSERT_EQ(got[k], ooseq_byte(k));

    harness_tun_tcp_close(&a.tcp);
    ASSERT_EQ(a.tcp.app.done, 1);
    return 0;
}
