/* SACK loss recovery for what the stack sends (stack/recovery.c): a resent segment that is lost
 * again is resent once the peer SACKs what left after it, without waiting for lwIP's
 * retransmission timer (which would resend the whole window from the hole). The real stack and
 * lwIP behind the fake tunnel; the test plays the server's TCP by hand (harness_tun_tcp), and a
 * loopback socket is the bridged application, which uploads. */
#include <stdint.h>
#include <string.h>

#include <uv.h>

#include "base/bytes.h"
#include "harness_tun.h"
#include "stack/stack.h"
#include "test.h"

enum { REC_MAX = 512, REC_PEER_ISN = 3000000, REC_MSS = 1000, REC_UPLOAD = 200 * 1000 };

struct rec {
    struct harness_tun_tcp tcp; /* the connection; its application a loopback pair */
    uint32_t seq[REC_MAX];      /* every data segment the stack sent, in order: its sequence number */
    uint32_t len[REC_MAX];      /* and payload length */
    size_t n;
};

static void rec_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct rec *k = t->arg;
    const uint8_t *tcp = pkt + 20;
    size_t payload = len - 20 - (size_t)(tcp[12] >> 4) * 4;
    if (payload > 0 && k->n < REC_MAX) {
        k->seq[k->n] = v2s_get_be32(tcp + 4);
        k->len[k->n++] = (uint32_t)payload;
    }
}

/* An ACK from the peer for everything below ack, with one SACK block [left, right) unless left
 * is 0, run through the loop. */
static void rec_ack(struct rec *k, uint32_t ack, uint32_t left, uint32_t right)
{
    uint8_t pkt[200], opts[12] = {1, 1, 5, 10};
    v2s_put_be32(opts + 4, left);
    v2s_put_be32(opts + 8, right);
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &k->tcp.peer, 80, &k->tcp.us, k->tcp.sport, 0x10,
                                  REC_PEER_ISN + 1, ack, 65535, opts, left ? sizeof(opts) : 0, NULL, 0);
    ASSERT(len > 0);
    stack_input(k->tcp.tun.stack, pkt, len);
    harness_tun_settle(&k->tcp.tun);
}

/* The same with two SACK blocks, [l1, r1) first. */
static void rec_ack2(struct rec *k, uint32_t ack, uint32_t l1, uint32_t r1, uint32_t l2, uint32_t r2)
{
    uint8_t pkt[200], opts[20] = {1, 1, 5, 18};
    v2s_put_be32(opts + 4, l1);
    v2s_put_be32(opts + 8, r1);
    v2s_put_be32(opts + 12, l2);
    v2s_put_be32(opts + 16, r2);
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &k->tcp.peer, 80, &k->tcp.us, k->tcp.sport, 0x10,
                                  REC_PEER_ISN + 1, ack, 65535, opts, sizeof(opts), NULL, 0);
    ASSERT(len > 0);
    stack_input(k->tcp.tun.stack, pkt, len);
    harness_tun_settle(&k->tcp.tun);
}

/* How often the segment starting at seq was sent. */
static int rec_times(const struct rec *k, uint32_t seq)
{
    int n = 0;
    for (size_t i = 0; i < k->n; i++)
        n += k->seq[i] == seq;
    return n;
}

/* The highest sequence number sent so far. */
static uint32_t rec_high(const struct rec *k)
{
    uint32_t high = k->tcp.syn_seq + 1;
    for (size_t i = 0; i < k->n; i++)
        if (k->seq[i] + k->len[i] - high < 0x80000000u)
            high = k->seq[i] + k->len[i];
    return high;
}

/* The stack at 10.8.0.2, one connection to 10.9.0.1:80 (SYN-ACK with MSS REC_MSS, SACK permitted,
 * a 64 KiB window), and the application's upload written into its socket. */
static void rec_open(struct rec *k, uint64_t seed)
{
    memset(k, 0, sizeof(*k));
    const struct harness_tun_tcp_config cfg = {
        .seed = seed, .port = 80, .isn = REC_PEER_ISN, .wnd = 65535, .mss = REC_MSS, .sack = 1};
    harness_tun_tcp_open(&k->tcp, &cfg, rec_send, k);
    static uint8_t data[REC_UPLOAD];
    memset(data, 'u', sizeof(data));
    size_t off = 0;
    while (off < sizeof(data)) {
        uv_buf_t b = uv_buf_init((char *)data + off, (unsigned)(sizeof(data) - off));
        int w = uv_try_write((uv_stream_t *)&k->tcp.app.client, &b, 1);
        ASSERT(w > 0);
        off += (size_t)w;
    }
    harness_tun_settle(&k->tcp.tun);
}

/* A segment lost, then its resend lost as well (a VPN server's socket overflowing twice in one
 * round trip): once three segments sent after the resend are SACKed, the stack resends it
 * again, with the clock standing still; nothing else is sent twice. */
TEST_IMPL(stack_recovery_lost_resend)
{
    static struct rec k;
    rec_open(&k, 21);
    /* Slow start up to at least 12 segments in flight, every segment acknowledged. */
    uint32_t acked = k.tcp.syn_seq + 1;
    while (rec_high(&k) - acked < 12 * REC_MSS) {
        acked = rec_high(&k);
        rec_ack(&k, acked, 0, 0);
    }
    size_t first = 0;
    while (k.seq[first] != acked)
        first++;
    uint32_t hole = k.seq[first], high = rec_high(&k);

    /* The segment at the hole is lost; the peer SACKs the rest of the flight, one ACK each. */
    for (size_t i = first + 1; i < k.n && k.seq[i] != high; i++)
        rec_ack(&k, hole, k.seq[first + 1], k.seq[i] + k.len[i]);
    ASSERT_EQ(rec_times(&k, hole), 2); /* resent from the SACKs */
    size_t resend = k.n;
    while (k.seq[resend - 1] != hole)
        resend--;
    ASSERT(k.n - resend >= 3); /* new segments left after the resend... */
    uint32_t edge = high;
    for (size_t i = resend; i < k.n && i < resend + 3; i++) {
        ASSERT(k.seq[i] == edge);
        edge += k.len[i];
        /* ...and the resend is lost: only what follows it is SACKed. */
        rec_ack(&k, hole, k.seq[first + 1], edge);
    }
    ASSERT_EQ(rec_times(&k, hole), 3);
    for (size_t i = first + 1; i < resend - 1; i++)
        ASSERT_EQ(rec_times(&k, k.seq[i]), 1); /* no go-back-N */

    /* Everything acknowledged; the upload finishes. */
    while (rec_high(&k) != acked || acked - (k.tcp.syn_seq + 1) < REC_UPLOAD) {
        acked = rec_high(&k);
        rec_ack(&k, acked, 0, 0);
    }
    harness_tun_tcp_close(&k.tcp);
    ASSERT_EQ(k.tcp.app.done, 1);
    return 0;
}

/* Slow start up to at least 12 segments in flight, every segment acknowledged; returns the
 * index of the first segment not acknowledged. */
static size_t rec_grow(struct rec *k)
{
    uint32_t acked = k->tcp.syn_seq + 1;
    while (rec_high(k) - acked < 12 * REC_MSS) {
        acked = rec_high(k);
        rec_ack(k, acked, 0, 0);
    }
    size_t first = 0;
    while (k->seq[first] != acked)
        first++;
    return first;
}

/* Acknowledges everything until the upload is done, and closes. */
static void rec_finish(struct rec *k)
{
    uint32_t acked = 0;
    while (rec_high(k) != acked || acked - (k->tcp.syn_seq + 1) < REC_UPLOAD) {
        acked = rec_high(k);
        rec_ack(k, acked, 0, 0);
    }
    harness_tun_tcp_close(&k->tcp);
    ASSERT_EQ(k->tcp.app.done, 1);
}

/* A segment lost, then its resend lost as well, and nothing sent after the resend arrives (the
 * window full, or the upload at its end): no SACK can show the resend lost. The recovery timer
 * resends it within a few milliseconds (the virtual clock's round trip is 0: its 2 ms floor),
 * long before lwIP's retransmission timer (150 ms at least), and resends nothing else. */
TEST_IMPL(stack_recovery_timer_resend)
{
    static struct rec k;
    rec_open(&k, 22);
    size_t first = rec_grow(&k);
    uint32_t hole = k.seq[first], high = rec_high(&k);
    for (size_t i = first + 1; i < k.n && k.seq[i] != high; i++)
        rec_ack(&k, hole, k.seq[first + 1], k.seq[i] + k.len[i]);
    ASSERT_EQ(rec_times(&k, hole), 2);
    size_t resend = k.n;
    while (k.seq[resend - 1] != hole)
        resend--;

    /* The peer hears nothing more: the resend and all after it are lost. */
    for (int ms = 0; ms < 20 && rec_times(&k, hole) == 2; ms++)
        harness_tun_advance(&k.tcp.tun, 1);
    ASSERT_EQ(rec_times(&k, hole), 3);
    for (size_t i = first + 1; i < k.n; i++)
        if (k.seq[i] != hole)
            ASSERT_EQ(rec_times(&k, k.seq[i]), 1); /* no go-back-N, nothing else again */

    rec_finish(&k);
    return 0;
}

/* Two segments lost (A and C), both resends lost too, and the peer silent until lwIP's
 * retransmission timer fires; it puts every unacknowledged segment back in line. The peer then
 * has A and acknowledges up to C, SACKing everything after C: only C is sent again, not the
 * SACKed segment D after it that the window would let out beside it. */
TEST_IMPL(stack_recovery_timeout_keeps_sacked)
{
    static struct rec k;
    rec_open(&k, 23);
    size_t first = rec_grow(&k);
    uint32_t a = k.seq[first], b = k.seq[first + 1], c = k.seq[first + 2], d = k.seq[first + 3];
    uint32_t high = rec_high(&k);
    rec_ack(&k, a, b, c);
    for (size_t i = first + 3; i < k.n && k.seq[i] != high; i++)
        rec_ack2(&k, a, d, k.seq[i] + k.len[i], b, c);
    ASSERT_EQ(rec_times(&k, a), 2);
    ASSERT_EQ(rec_times(&k, c), 2);
    size_t before = k.n;

    /* Silence: the recovery timer resends A (with backoff), then lwIP's timer fires. */
    harness_tun_advance(&k.tcp.tun, 3000);
    ASSERT(k.n > before);
    int c_sent = rec_times(&k, c);
    rec_ack2(&k, c, d, high, 0, 0);
    ASSERT_EQ(rec_times(&k, c), c_sent + 1);
    ASSERT_EQ(rec_times(&k, d), 1);

    rec_finish(&k);
    return 0;
}
