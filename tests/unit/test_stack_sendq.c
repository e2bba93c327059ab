/* What lwIP holds unsent for an upload (stack/tcp_send.c, "What lwIP holds unsent"): at most
 * 256 KiB or a congestion window beyond what is in flight, the rest left in the application's
 * socket, and reading resumes as soon as lwIP has sent enough, not one ACK later. The real stack
 * and lwIP behind the fake tunnel of harness_tun.h; a loopback socket is the bridged application,
 * which writes SQ_TOTAL bytes at once; the test plays the server's TCP by hand. */
#include <stdint.h>
#include <string.h>

#include <uv.h>

#include "base/bytes.h"
#include "harness_tun.h"
#include "stack/stack.h"
#include "stack/tcp.h"
#include "stack/tcp_internal.h"
#include "lwip/tcp.h"
#include "test.h"

enum {
    SQ_PEER_ISN = 7000000,
    SQ_TOTAL = 2 * 1024 * 1024,
    SQ_UNSENT_MAX = 256 * 1024, /* tcp_send.c's STACK_TCP_UNSENT_MAX */
    SQ_RESUME = 64 * 1024,      /* and its STACK_TCP_RESUME_UNSENT */
};

struct sq {
    struct harness_tun_tcp tcp; /* the connection; its application a loopback pair */
    uint32_t got;  /* payload bytes received in order */
    uint32_t sum;  /* and their sum */
    uv_write_t wreq;
};

static uint8_t sq_data[SQ_TOTAL];

static void sq_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct sq *q = t->arg;
    (void)len;
    const uint8_t *tcp = pkt + 20;
    size_t doff = (size_t)(tcp[12] >> 4) * 4, tot = v2s_get_be16(pkt + 2);
    uint32_t seq = v2s_get_be32(tcp + 4);
    size_t n = tot - 20 - doff;
    if (n == 0 || seq != q->tcp.syn_seq + 1 + q->got)
        return; /* no loss here: only a resend would be out of order */
    for (size_t i = 0; i < n; i++)
        q->sum += tcp[doff + i];
    q->got += (uint32_t)n;
}

/* The server's ACK of the first `upto` bytes, its window wnd << 4 bytes. */
static void sq_ack_to(struct sq *q, uint32_t upto, uint16_t wnd)
{
    uint8_t pkt[100];
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &q->tcp.peer, 80, &q->tcp.us, q->tcp.sport, 0x10, SQ_PEER_ISN + 1,
                                  q->tcp.syn_seq + 1 + upto, wnd, NULL, 0, NULL, 0);
    ASSERT(len > 0);
    harness_tun_inject(&q->tcp.tun, pkt, len);
}

/* The server's ACK of everything received. */
static void sq_ack(struct sq *q, uint16_t wnd)
{
    sq_ack_to(q, q->got, wnd);
}

static uint32_t sq_unsent(const struct tcp_pcb *pcb)
{
    return pcb->snd_lbb - pcb->snd_nxt;
}

/* Opens the connection (the SYN-ACK: MSS 1400, window scale 4), has its application write
 * SQ_TOTAL bytes of a pattern at once, and runs 20 ms without an ACK. Returns the bytes' sum. */
static uint32_t sq_start(struct sq *q, int seed, uint32_t mul, unsigned shift)
{
    memset(q, 0, sizeof(*q));
    const struct harness_tun_tcp_config cfg = {.seed = seed, .port = 80, .isn = SQ_PEER_ISN, .wnd = 4096, .mss = 1400,
                                               .scaled = 1, .wscale = 4};
    harness_tun_tcp_up(&q->tcp, &cfg, sq_send, q);
    harness_tun_tcp_connect(&q->tcp);
    harness_tun_advance(&q->tcp.tun, 1);
    harness_tun_tcp_established(&q->tcp);
    uint32_t sum = 0;
    for (uint32_t i = 0; i < SQ_TOTAL; i++) {
        sq_data[i] = (uint8_t)(i * mul + (i >> shift));
        sum += sq_data[i];
    }
    uv_buf_t buf = uv_buf_init((char *)sq_data, SQ_TOTAL);
    ASSERT_EQ(uv_write(&q->wreq, (uv_stream_t *)&q->tcp.app.client, &buf, 1, NULL), 0);
    for (int i = 0; i < 20; i++)
        harness_tun_advance(&q->tcp.tun, 1);
    return sum;
}

TEST_IMPL(stack_sendq_unsent_bounded)
{
    static struct sq q;
    uint32_t sum = sq_start(&q, 13, 13u, 9);
    struct stack_tcp *c = q.tcp.c;

    /* No ACK yet: lwIP sent its first flight and holds at most 256 KiB more; the rest of the
     * 2 MiB stays with the application (before the limit, lwIP took all of it). */
    ASSERT(c->pcb != NULL);
    ASSERT(q.got > 0);
    ASSERT(sq_unsent(c->pcb) > SQ_UNSENT_MAX / 2);
    ASSERT(sq_unsent(c->pcb) <= SQ_UNSENT_MAX);
    ASSERT(c->bytes_up <= q.got + SQ_UNSENT_MAX);

    /* The server ACKs what it got, round after round, its window 1 MiB. After each round, once
     * the loop is idle, the stack reads its application whenever lwIP has room again for a read
     * (not only at the next ACK), and never holds more unsent than the limit or its window. */
    int resumed_late = 0;
    for (int rounds = 0; q.got < SQ_TOTAL; rounds++) {
        ASSERT(rounds < 20000);
        sq_ack(&q, 0xFFFF);
        harness_tun_settle(&q.tcp.tun);
        harness_tun_advance(&q.tcp.tun, 1);
        if (!c->pcb)
            break;
        uint32_t max = c->pcb->cwnd > SQ_UNSENT_MAX ? c->pcb->cwnd : SQ_UNSENT_MAX;
        ASSERT(sq_unsent(c->pcb) <= max);
        if (!c->reading && c->bytes_up < SQ_TOTAL && sq_unsent(c->pcb) + SQ_RESUME <= max)
            resumed_late++;
    }

    ASSERT_EQ(resumed_late, 0);
    ASSERT_EQ(q.got, (uint32_t)SQ_TOTAL);
    ASSERT_EQ(q.sum, sum);

    harness_tun_tcp_close(&q.tcp);
    return 0;
}

/* Reading stopped because lwIP holds enough unsent resumes only once 64 KiB more may be held
 * (STACK_TCP_RESUME_UNSENT), not as soon as one 16 KiB read fits: the server acknowledges two
 * segments at a time, as a Linux receiver does, and each of those ACKs lets lwIP send two more
 * segments from unsent. With one 16 KiB mark, reading resumed about every sixth ACK for a read
 * of 16-19 KiB, and each stop and resume cost libuv an epoll_ctl(). */
TEST_IMPL(stack_sendq_resume_hysteresis)
{
    static struct sq q;
    uint32_t sum = sq_start(&q, 17, 7u, 11);
    struct stack_tcp *c = q.tcp.c;
    ASSERT(c->pcb != NULL);

    /* Each ACK covers two more segments of what arrived (or what is left). Count the ACKs after
     * which the stack had read more of the application: one per resume of reading. Past the
     * first 256 KiB the upload moves 1,792 KiB by reads; at one resume per 48 KiB or more that
     * is at most 38 resumes (29 here), at one per 16-19 KiB 83 (before). */
    uint32_t acked = 0, resumes = 0;
    uint64_t up = c->bytes_up;
    for (int n = 0; acked < SQ_TOTAL; n++) {
        ASSERT(n < 100000);
        uint32_t to = acked + 2 * 1400;
        if (to > q.got)
            to = q.got;
        if (to == acked) {
            harness_tun_advance(&q.tcp.tun, 1);
            continue;
        }
        acked = to;
        sq_ack_to(&q, acked, 0xFFFF);
        harness_tun_settle(&q.tcp.tun);
        ASSERT(c->pcb != NULL);
        if (c->bytes_up > up)
            resumes++;
        up = c->bytes_up;
    }
    ASSERT_EQ(q.got, (uint32_t)SQ_TOTAL);
    ASSERT_EQ(q.sum, sum);
    ASSERT(resumes > 0);
    ASSERT((uint64_t)resumes * 48 * 1024 <= (uint64_t)SQ_TOTAL - SQ_UNSENT_MAX + 48 * 1024);

    harness_tun_tcp_close(&q.tcp);
    return 0;
}
