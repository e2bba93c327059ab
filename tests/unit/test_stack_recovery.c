/* SACK loss recovery for what the stack sends (stack/recovery.c): a resent segment that is lost
 * again is resent once the peer SACKs what left after it, without waiting for lwIP's
 * retransmission timer (which would resend the whole window from the hole); and a loss cuts the
 * window to half of what was in flight, but not below the pipe the connection is known to fill.
 * The real stack and lwIP behind the fake tunnel; the test plays the server's TCP by hand
 * (harness_tun_tcp), and a loopback socket is the bridged application, which uploads. */
#include <stdint.h>
#include <string.h>

#include <uv.h>

#include "base/bytes.h"
#include "harness_tun.h"
#include "lwip/tcp.h"
#include "stack/stack.h"
#include "stack/tcp_internal.h"
#include "test.h"

enum { REC_MAX = 512, REC_PEER_ISN = 3000000, REC_MSS = 1000, REC_UPLOAD = 200 * 1000 };

struct rec {
    struct harness_tun_tcp tcp; /* the connection; its application a loopback pair */
    uint32_t seq[REC_MAX];      /* every data segment the stack sent, in order: its sequence number */
    uint32_t len[REC_MAX];      /* and payload length */
    size_t n;
    int fins;                   /* segments sent with FIN... */
    uint32_t fin_end;           /* ...and the sequence number after the FIN */
};

static void rec_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct rec *k = t->arg;
    const uint8_t *tcp = pkt + 20;
    size_t payload = len - 20 - (size_t)(tcp[12] >> 4) * 4;
    if (tcp[13] & 0x01) {
        k->fins++;
        k->fin_end = v2s_get_be32(tcp + 4) + (uint32_t)payload + 1;
    }
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

/* Moves the clock on a millisecond at a time, at most max_ms, until a packet is sent; returns the
 * index of the first packet sent meanwhile (k->n if none was). */
static size_t rec_wait_send(struct rec *k, int max_ms)
{
    size_t before = k->n;
    for (int ms = 0; ms < max_ms && k->n == before; ms++)
        harness_tun_advance(&k->tcp.tun, 1);
    return before;
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

static void rec_upload(struct rec *k);

/* The stack at 10.8.0.2, one connection to 10.9.0.1:80 (SYN-ACK with MSS REC_MSS, SACK permitted,
 * a 64 KiB window), and the application's upload written into its socket. */
static void rec_open(struct rec *k, uint64_t seed)
{
    memset(k, 0, sizeof(*k));
    const struct harness_tun_tcp_config cfg = {
        .seed = seed, .port = 80, .isn = REC_PEER_ISN, .wnd = 65535, .mss = REC_MSS, .sack = 1};
    harness_tun_tcp_open(&k->tcp, &cfg, rec_send, k);
    rec_upload(k);
}

/* The application writes the upload into its socket. */
static void rec_upload(struct rec *k)
{
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
 * resends it within a few milliseconds (the virtual clock's round trip is 0: its 10 ms floor),
 * long before lwIP's retransmission timer (150 ms at least), and no SACKed segment again (no
 * go-back-N); what left after the resend and was lost with it may go again once. */
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
    for (size_t i = first + 1; i + 1 < resend; i++)
        ASSERT_EQ(rec_times(&k, k.seq[i]), 1); /* SACKed: never again */
    for (size_t i = resend; i < k.n; i++)
        if (k.seq[i] != hole)
            ASSERT(rec_times(&k, k.seq[i]) <= 2);

    rec_finish(&k);
    return 0;
}

/* A segment lost and three after it SACKed, which starts recovery; then the resend and the whole
 * tail of the window are lost (a burst that overflowed a VPN server's socket), so nothing above
 * the tail is SACKed and no ACK can show any of it lost. When the recovery timer runs out it
 * resends the tail with the hole, as the window allows, not the hole alone: one segment per
 * firing made an openconnect upload crawl at 1.8 MiB/s. */
TEST_IMPL(stack_recovery_timer_tail)
{
    static struct rec k;
    rec_open(&k, 24);
    size_t first = rec_grow(&k);
    uint32_t hole = k.seq[first], high = rec_high(&k);
    ASSERT(k.n - first >= 12);
    for (size_t i = first + 1; i <= first + 3; i++)
        rec_ack(&k, hole, k.seq[first + 1], k.seq[i] + k.len[i]);
    ASSERT_EQ(rec_times(&k, hole), 2);
    ASSERT_EQ(rec_high(&k), high); /* the lost tail fills the pipe: no new data went */

    for (int ms = 0; ms < 20 && rec_times(&k, hole) == 2; ms++)
        harness_tun_advance(&k.tcp.tun, 1);
    ASSERT_EQ(rec_times(&k, hole), 3);
    /* The first firing sent the tail's first segments too. */
    ASSERT_EQ(rec_times(&k, k.seq[first + 4]), 2);
    ASSERT_EQ(rec_times(&k, k.seq[first + 5]), 2);
    for (size_t i = first + 1; i <= first + 3; i++)
        ASSERT_EQ(rec_times(&k, k.seq[i]), 1);

    rec_finish(&k);
    return 0;
}

/* Outside recovery, the whole tail of the window is lost (a burst that overflowed a VPN server's
 * socket took everything in flight), so no ACK comes at all. Within the tail loss probe's wait
 * (10 ms: the virtual clock's round trip is 0), long before lwIP's retransmission timer (200 ms
 * at least), the last segment goes again, and nothing else; one probe per silence. The peer
 * SACKs it, which shows everything before it lost: the hole and what follows go again at once. */
TEST_IMPL(stack_recovery_tail_probe)
{
    static struct rec k;
    rec_open(&k, 26);
    size_t first = rec_grow(&k);
    uint32_t hole = k.seq[first], high = rec_high(&k);
    size_t last = k.n - 1;
    ASSERT_EQ(k.seq[last] + k.len[last], high);
    size_t before = rec_wait_send(&k, 30);
    ASSERT_EQ(k.n, before + 1);
    ASSERT_EQ(k.seq[before], k.seq[last]);
    harness_tun_advance(&k.tcp.tun, 40);
    ASSERT_EQ(k.n, before + 1);

    rec_ack(&k, hole, k.seq[last], high);
    ASSERT_EQ(rec_times(&k, hole), 2);
    ASSERT_EQ(rec_times(&k, k.seq[first + 1]), 2);
    ASSERT_EQ(rec_times(&k, k.seq[last]), 2);

    rec_finish(&k);
    return 0;
}

/* The same, but the last segment of the window arrived: the peer SACKs it, too little to show
 * the holes below it lost (more than two segments' worth must be SACKed above a hole), and then
 * nothing more comes. The probe is the last segment not SACKed; once it is SACKed as well, the
 * holes go again. */
TEST_IMPL(stack_recovery_tail_probe_sacked_tail)
{
    static struct rec k;
    rec_open(&k, 27);
    size_t first = rec_grow(&k);
    uint32_t hole = k.seq[first], high = rec_high(&k);
    size_t last = k.n - 1;
    rec_ack(&k, hole, k.seq[last], high);
    ASSERT_EQ(rec_times(&k, hole), 1);
    size_t before = rec_wait_send(&k, 30);
    ASSERT_EQ(k.n, before + 1);
    ASSERT_EQ(k.seq[before], k.seq[last - 1]);

    rec_ack(&k, hole, k.seq[last - 1], high);
    ASSERT_EQ(rec_times(&k, hole), 2);
    ASSERT_EQ(rec_times(&k, k.seq[last]), 1);

    rec_finish(&k);
    return 0;
}

/* A loss episode ends with the recovery timer still set, its wait (10 ms: the floor) counting
 * from the episode's last ACK at 0 ms; a new loss 1 ms later is resent at once. The old timer comes
 * due at 10 ms, when the new resend has waited 9 ms only: it must not be declared lost and sent
 * again then. */
TEST_IMPL(stack_recovery_timer_next_episode)
{
    static struct rec k;
    rec_open(&k, 25);
    size_t first = rec_grow(&k);
    uint32_t hole = k.seq[first];
    for (size_t i = first + 1; i <= first + 3; i++)
        rec_ack(&k, hole, k.seq[first + 1], k.seq[i] + k.len[i]);
    ASSERT_EQ(rec_times(&k, hole), 2);
    rec_ack(&k, rec_high(&k), 0, 0); /* the episode is over */

    harness_tun_advance(&k.tcp.tun, 1);
    uint32_t acked = rec_high(&k);
    rec_ack(&k, acked, 0, 0); /* everything out now is acknowledged; new data follows */
    size_t start = 0;
    while (start < k.n && k.seq[start] != acked)
        start++;
    ASSERT(k.n - start >= 4);
    uint32_t hole2 = k.seq[start];
    for (size_t i = start + 1; i <= start + 3; i++)
        rec_ack(&k, hole2, k.seq[start + 1], k.seq[i] + k.len[i]);
    ASSERT_EQ(rec_times(&k, hole2), 2);

    harness_tun_advance(&k.tcp.tun, 9); /* the first episode's timer comes due */
    ASSERT_EQ(rec_times(&k, hole2), 2);

    rec_finish(&k);
    return 0;
}

/* In recovery the ACK path stalls: one of the processes on it is off the CPU for 6 ms (two cores,
 * four busy processes), no ACK comes, then the ACKs come for everything sent. The recovery timer
 * must not declare the flight lost in that silence: with a 2 ms floor it did, and in the
 * openconnect upload such firings resent 50-130 segments whose originals had arrived. The hole's
 * resend goes once, nothing else twice. */
TEST_IMPL(stack_recovery_timer_stall)
{
    static struct rec k;
    rec_open(&k, 28);
    size_t first = rec_grow(&k);
    uint32_t hole = k.seq[first], high = rec_high(&k);
    for (size_t i = first + 1; i <= first + 3; i++)
        rec_ack(&k, hole, k.seq[first + 1], k.seq[i] + k.len[i]);
    ASSERT_EQ(rec_times(&k, hole), 2);
    size_t last = k.n;
    harness_tun_advance(&k.tcp.tun, 6);
    rec_ack(&k, high, 0, 0);
    ASSERT_EQ(rec_times(&k, hole), 2);
    for (size_t i = first + 1; i < last; i++)
        if (k.seq[i] != hole)
            ASSERT_EQ(rec_times(&k, k.seq[i]), 1);

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

/* A path for the window cut at a loss: the stack's segments reach the peer delay_ms later,
 * through a bottleneck that passes per_ms segments a millisecond in order; the peer acknowledges
 * each one as it passes, with a SACK block while a hole is open, and a window of wnd bytes for
 * the first half of the upload, 64 KiB after. The one segment of new data sent while limit
 * segments or more are outstanding is lost. */
enum { PATH_QUEUE = 512, PATH_UPLOAD = 600 * 1000 };

/* Sequence number order. */
static int seq_lt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

struct path {
    struct harness_tun_tcp tcp;
    unsigned per_ms, delay_ms, limit;
    uint16_t wnd;
    uint32_t seq[PATH_QUEUE], len[PATH_QUEUE], ready[PATH_QUEUE]; /* the bottleneck's queue */
    size_t head, tail;
    uint32_t high;            /* the highest sequence number sent */
    uint32_t rcv_nxt, sack_l, sack_r;
    int dropped;
};

/* An ACK from the peer of a path (below) for everything below ack, with one SACK block
 * [left, right) unless left is 0, and the window field wnd, run through the loop. */
static void path_ack(struct harness_tun_tcp *h, uint32_t ack, uint32_t left, uint32_t right, uint16_t wnd)
{
    uint8_t pkt[200], opts[12] = {1, 1, 5, 10};
    v2s_put_be32(opts + 4, left);
    v2s_put_be32(opts + 8, right);
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &h->peer, 80, &h->us, h->sport, 0x10, REC_PEER_ISN + 1, ack,
                                  wnd, opts, left ? sizeof(opts) : 0, NULL, 0);
    ASSERT(len > 0);
    stack_input(h->tun.stack, pkt, len);
    harness_tun_settle(&h->tun);
}

static void path_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct path *k = t->arg;
    const uint8_t *tcp = pkt + 20;
    uint32_t payload = (uint32_t)(len - 20 - (size_t)(tcp[12] >> 4) * 4), seq = v2s_get_be32(tcp + 4);
    if (!payload)
        return;
    if (seq + payload - k->high < 0x80000000u) {
        if (!k->dropped && k->high - k->rcv_nxt >= k->limit * REC_MSS) {
            k->dropped = 1;
            k->high = seq + payload;
            return;
        }
        k->high = seq + payload;
    }
    ASSERT(k->tail - k->head < PATH_QUEUE);
    size_t i = k->tail++ % PATH_QUEUE;
    k->seq[i] = seq;
    k->len[i] = payload;
    k->ready[i] = t->now_ms + k->delay_ms;
}

/* Runs the upload to its end; returns ssthresh right after the loss, with *flight what was in
 * flight just before it. */
static uint32_t path_run(struct path *k, unsigned per_ms, unsigned delay_ms, uint16_t wnd, unsigned limit,
                         uint32_t *flight)
{
    memset(k, 0, sizeof(*k));
    k->wnd = wnd;
    k->per_ms = per_ms;
    k->delay_ms = delay_ms;
    k->limit = limit;
    const struct harness_tun_tcp_config cfg = {
        .seed = 23, .port = 80, .isn = REC_PEER_ISN, .wnd = 65535, .mss = REC_MSS, .sack = 1};
    harness_tun_tcp_up(&k->tcp, &cfg, path_send, k);
    harness_tun_tcp_connect(&k->tcp);
    k->high = k->rcv_nxt = k->tcp.syn_seq + 1;
    harness_tun_tcp_established(&k->tcp);
    static uint8_t data[PATH_UPLOAD];
    memset(data, 'u', sizeof(data));
    for (size_t off = 0; off < sizeof(data);) {
        uv_buf_t b = uv_buf_init((char *)data + off, (unsigned)(sizeof(data) - off));
        int w = uv_try_write((uv_stream_t *)&k->tcp.app.client, &b, 1);
        ASSERT(w > 0);
        off += (size_t)w;
    }
    harness_tun_settle(&k->tcp.tun);
    struct tcp_pcb *pcb = k->tcp.c->pcb;
    uint32_t initial = pcb->ssthresh, cut = 0;
    for (unsigned ms = 0; k->rcv_nxt - (k->tcp.syn_seq + 1) < PATH_UPLOAD; ms++) {
        ASSERT(ms < 5000); /* never a retransmission timeout */
        harness_tun_advance(&k->tcp.tun, 1);
        for (unsigned n = 0; n < k->per_ms && k->head != k->tail; n++) {
            size_t i = k->head % PATH_QUEUE;
            if (k->ready[i] > k->tcp.tun.now_ms)
                break;
            k->head++;
            uint32_t start = k->seq[i], end = start + k->len[i];
            if (!seq_lt(k->rcv_nxt, start) && seq_lt(k->rcv_nxt, end)) {
                k->rcv_nxt = end;
                if (k->sack_l && !seq_lt(k->rcv_nxt, k->sack_l)) {
                    k->rcv_nxt = seq_lt(k->rcv_nxt, k->sack_r) ? k->sack_r : k->rcv_nxt;
                    k->sack_l = 0;
                }
            } else if (seq_lt(k->rcv_nxt, start)) {
                if (!k->sack_l || seq_lt(start, k->sack_l))
                    k->sack_l = start;
                if (!k->sack_r || seq_lt(k->sack_r, end))
                    k->sack_r = end;
            }
            uint32_t before = pcb->snd_nxt - pcb->lastack;
            uint16_t now_wnd = k->rcv_nxt - k->tcp.syn_seq < PATH_UPLOAD / 2 ? k->wnd : 65535;
            path_ack(&k->tcp, k->rcv_nxt, k->sack_l, k->sack_l ? k->sack_r : 0, now_wnd);
            if (!cut && pcb->ssthresh < initial) {
                cut = pcb->ssthresh;
                *flight = before;
            }
        }
    }
    ASSERT(k->dropped);
    harness_tun_tcp_close(&k->tcp);
    ASSERT_EQ(k->tcp.app.done, 1);
    return cut;
}

/* A loss on a fast short path (30 MB/s, 1 ms; a 40 KB window for the first half of the upload,
 * then 64 KiB, and the loss at 45 KB in flight): the window is cut to the pipe the connection is
 * known to fill, the delivery rate times (the minimum RTT + 0.75 ms), 30 KB/ms x 1.75 ms = 52.5
 * KB, not to half of what was in flight (65 KB). The openconnect upload, whose ocserv drops bursts
 * at ~100-130 KB in flight at ~110 MB/s, lost half its window to every burst. */
TEST_IMPL(stack_recovery_cut_fast_path)
{
    static struct path k;
    uint32_t flight = 0, cut = path_run(&k, 30, 1, 40000, 45, &flight);
    ASSERT(flight >= 60 * REC_MSS);
    ASSERT(cut >= 50 * REC_MSS);
    ASSERT(cut <= 55 * REC_MSS);
    return 0;
}

/* The same loss on a slow path with a deep buffer (1 MB/s, 20 ms, the loss at 60 KB in flight,
 * three times the pipe): the pipe, 1 KB/ms x 20.75 ms, is less than half of what was in flight,
 * which is what the window is cut to, as before. */
TEST_IMPL(stack_recovery_cut_slow_path)
{
    static struct path k;
    uint32_t flight = 0, cut = path_run(&k, 1, 20, 65535, 60, &flight);
    ASSERT(flight >= 60 * REC_MSS);
    ASSERT(cut <= flight / 2 + REC_MSS);
    ASSERT(cut >= flight / 2 - REC_MSS);
    return 0;
}

/* Advances the clock a millisecond at a time, at most max_ms, until the segment at seq has been
 * sent times times; returns the milliseconds it took (max_ms if it never was). */
static int rec_wait_times(struct rec *k, uint32_t seq, int times, int max_ms)
{
    int ms = 0;
    while (ms < max_ms && rec_times(k, seq) < times) {
        harness_tun_advance(&k->tcp.tun, 1);
        ms++;
    }
    return ms;
}

/* The peer reneges on what it SACKed from segment `from` on: its ACK stops at that segment with no
 * SACK block. Each segment up to `last` goes again at once (within 100 ms, not a retransmission
 * timeout per segment), and the peer acknowledges each as its second copy arrives. */
static void rec_renege_resent(struct rec *k, size_t from, size_t last)
{
    rec_ack(k, k->seq[from], 0, 0);
    for (size_t i = from; i <= last; i++) {
        ASSERT(rec_wait_times(k, k->seq[i], 2, 100) < 100);
        rec_ack(k, k->seq[i] + k->len[i], 0, 0);
    }
}

/* A segment lost and everything after it SACKed; the peer then reneges (RFC 2018 lets a receiver
 * short of memory throw away what it SACKed; Linux's tcp_prune_ofo_queue() does): it takes the
 * resent hole and acknowledges up to the first segment it had SACKed, with no SACK block. What
 * it had SACKed is lost and goes again at once, not one segment per retransmission timeout of
 * 225 ms or more (the SACK marks kept it from ever being resent otherwise). */
TEST_IMPL(stack_recovery_renege)
{
    static struct rec k;
    rec_open(&k, 28);
    size_t first = rec_grow(&k);
    uint32_t hole = k.seq[first], b = k.seq[first + 1], high = rec_high(&k);
    size_t last = first + 1;
    for (size_t i = first + 1; i < k.n && k.seq[i] != high; i++) {
        rec_ack(&k, hole, b, k.seq[i] + k.len[i]);
        last = i;
    }
    ASSERT_EQ(rec_times(&k, hole), 2);
    ASSERT_EQ(rec_times(&k, b), 1);

    /* The peer acknowledges each segment as its second copy arrives. */
    rec_renege_resent(&k, first + 1, last);

    rec_finish(&k);
    return 0;
}

/* The same renege, but found while lwIP's retransmission timer is running its course (the hole's
 * resends were lost too, and the peer was silent until the timer fired; then a duplicate ACK
 * still SACKed everything past the hole): the segments the peer had SACKed, which recovery keeps
 * out of lwIP's resends (recovery_rto_skip_sacked()), go again at once too, not one per timeout
 * (1475 ms for the first without this). */
TEST_IMPL(stack_recovery_renege_timeout)
{
    static struct rec k;
    rec_open(&k, 29);
    size_t first = rec_grow(&k);
    uint32_t hole = k.seq[first], b = k.seq[first + 1], c = k.seq[first + 2], high = rec_high(&k);
    for (size_t i = first + 1; i < k.n && k.seq[i] != high; i++)
        rec_ack(&k, hole, b, k.seq[i] + k.len[i]);
    ASSERT_EQ(rec_times(&k, hole), 2);
    harness_tun_advance(&k.tcp.tun, 3000); /* the recovery timer, then lwIP's timer */
    ASSERT(k.tcp.c->pcb->flags & TF_RTO);
    rec_ack(&k, hole, b, high); /* lwIP's resend of the hole lost as well */
    ASSERT_EQ(rec_times(&k, b), 1);

    rec_ack(&k, b, 0, 0);
    ASSERT(rec_wait_times(&k, b, 2, 100) < 100);
    rec_ack(&k, c, 0, 0);
    ASSERT(rec_wait_times(&k, c, 2, 100) < 100);

    rec_finish(&k);
    return 0;
}

/* An ACK from the peer for everything below ack with the raw TCP options opts (optlen bytes, a
 * multiple of 4), run through the loop. */
static void rec_ack_opts(struct rec *k, uint32_t ack, const uint8_t *opts, size_t optlen)
{
    uint8_t pkt[200];
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &k->tcp.peer, 80, &k->tcp.us, k->tcp.sport, 0x10,
                                  REC_PEER_ISN + 1, ack, 65535, opts, optlen, NULL, 0);
    ASSERT(len > 0);
    stack_input(k->tcp.tun.stack, pkt, len);
    harness_tun_settle(&k->tcp.tun);
}

/* Whether any segment from `from` up to `to` was sent more than max times. */
static int rec_resent_over(const struct rec *k, uint32_t from, uint32_t to, int max)
{
    for (size_t i = 0; i < k->n; i++)
        if (!seq_lt(k->seq[i], from) && seq_lt(k->seq[i], to) && rec_times(k, k->seq[i]) > max)
            return 1;
    return 0;
}

/* Hostile or broken SACK blocks from the peer, each in a duplicate ACK at the first segment in
 * flight: below the cumulative ACK, past what was ever sent, right edge before the left, empty,
 * spanning more than half the sequence space, four overlapping ones. None covers a segment: nothing
 * is resent, and lwIP's own duplicate-ACK count, which recovery keeps at zero, starts no fast
 * retransmit either. Then a block from a segment's edge to past snd_nxt, [b, b + 2^31): it is
 * taken for what it says of the data sent (the hole below it is resent at once), but the peer
 * lied, and its next ACK stops at b with no block: a renege, and what it claimed goes again. */
TEST_IMPL(stack_recovery_hostile_blocks)
{
    static struct rec k;
    rec_open(&k, 30);
    size_t first = rec_grow(&k);
    uint32_t hole = k.seq[first], b = k.seq[first + 1], c = k.seq[first + 2], high = rec_high(&k);
    size_t last = k.n - 1;
    ASSERT_EQ(k.seq[last] + k.len[last], high);
    const uint32_t blocks[][2] = {
        {hole - 5000, hole - 1000},         /* below the cumulative ACK (a D-SACK's place) */
        {hole - 5000, hole},                /* up to it */
        {high, high + 50000},               /* past snd_nxt */
        {high + 1000, high + 50000},
        {c, b},                             /* right edge before the left */
        {b, b},                             /* empty */
        {high, hole},                       /* all but the flight: the span wraps */
        {hole, hole + 0x80000001u},         /* more than half the sequence space */
    };
    for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++)
        for (int n = 0; n < 4; n++)
            rec_ack(&k, hole, blocks[i][0], blocks[i][1]);
    for (int n = 0; n < 4; n++) {
        uint8_t opts[36] = {1, 1, 5, 34};
        const uint32_t lr[8] = {hole - 2000, hole, high, high + 3000, c, b, hole - 1000, hole - 500};
        for (int j = 0; j < 8; j++)
            v2s_put_be32(opts + 4 + 4 * j, lr[j]);
        rec_ack_opts(&k, hole, opts, sizeof(opts));
    }
    ASSERT(!rec_resent_over(&k, hole, high, 1));

    rec_ack(&k, hole, b, b + 0x80000000u);
    ASSERT_EQ(rec_times(&k, hole), 2);
    ASSERT(!rec_resent_over(&k, b, high, 1));
    rec_renege_resent(&k, first + 1, last);
    rec_finish(&k);
    return 0;
}

/* Malformed TCP options around SACK blocks in duplicate ACKs: option lengths of 0 and 1 (a
 * parser that trusts them never moves on), a length past the end of the options, a SACK option
 * claiming five blocks where only four fit, one of 3 bytes, one cut short by the end of the
 * header, an option kind as the last byte. Nothing is read past the header (ASan), no loop runs
 * forever (the test's timeout), and no SACK block comes out of them: what follows is lwIP's own
 * fast retransmit of the first segment after three duplicate ACKs, nothing else. */
TEST_IMPL(stack_recovery_malformed_options)
{
    static struct rec k;
    rec_open(&k, 31);
    size_t first = rec_grow(&k);
    uint32_t hole = k.seq[first], b = k.seq[first + 1], high = rec_high(&k);
    uint8_t opts[8][40];
    size_t lens[8];
    memset(opts, 1, sizeof(opts)); /* NOPs */
    /* kind 5 with length 0, then a block that must not be read */
    opts[0][0] = 5, opts[0][1] = 0, lens[0] = 12;
    v2s_put_be32(opts[0] + 4, b), v2s_put_be32(opts[0] + 8, high);
    /* a timestamp option's kind with length 1 */
    opts[1][0] = 8, opts[1][1] = 1, lens[1] = 12;
    v2s_put_be32(opts[1] + 4, b), v2s_put_be32(opts[1] + 8, high);
    /* a SACK block whose length runs past the options */
    opts[2][2] = 5, opts[2][3] = 255, lens[2] = 12;
    v2s_put_be32(opts[2] + 4, b), v2s_put_be32(opts[2] + 8, high);
    /* five blocks claimed (42 bytes) in 40 */
    opts[3][2] = 5, opts[3][3] = 42, lens[3] = 40;
    for (int j = 0; j < 4; j++)
        v2s_put_be32(opts[3] + 4 + 8 * j, b), v2s_put_be32(opts[3] + 8 + 8 * j, high);
    /* a SACK option of 3 bytes, then an end-of-options and a block behind it */
    opts[4][0] = 5, opts[4][1] = 3, opts[4][3] = 0, lens[4] = 12;
    v2s_put_be32(opts[4] + 4, b), v2s_put_be32(opts[4] + 8, high);
    /* a SACK option of 10 bytes starting 6 bytes before the end */
    opts[5][6] = 5, opts[5][7] = 10, lens[5] = 12;
    v2s_put_be32(opts[5] + 8, b);
    /* an option kind as the header's last byte */
    opts[6][3] = 5, lens[6] = 4;
    /* a block of 7 bytes' room: length 9 */
    opts[7][2] = 5, opts[7][3] = 9, lens[7] = 12;
    v2s_put_be32(opts[7] + 4, b), v2s_put_be32(opts[7] + 8, high);
    for (int i = 0; i < 8; i++)
        rec_ack_opts(&k, hole, opts[i], lens[i]);
    ASSERT(rec_times(&k, hole) <= 2);
    ASSERT(!rec_resent_over(&k, b, high, 1));
    rec_finish(&k);
    return 0;
}

/* rec_open(), with the stack's sequence numbers wrapping around 2^32 between wrap and wrap + 250
 * bytes into the upload. Its ISN counts the clock, 250 a millisecond (RFC 6528, stack/sys.c), and
 * the rest of it is the same for the same seed: a first connection shows it, and the second
 * connects once the clock is where its ISN comes out right. */
static void rec_open_wrap(struct rec *k, uint64_t seed, uint32_t wrap)
{
    const struct harness_tun_tcp_config cfg = {
        .seed = seed, .port = 80, .isn = REC_PEER_ISN, .wnd = 65535, .mss = REC_MSS, .sack = 1};
    memset(k, 0, sizeof(*k));
    harness_tun_tcp_up(&k->tcp, &cfg, rec_send, k);
    harness_tun_tcp_connect(&k->tcp);
    uint32_t isn = k->tcp.syn_seq, at = k->tcp.tun.now_ms;
    harness_tun_tcp_established(&k->tcp);
    harness_tun_tcp_close(&k->tcp);
    uint32_t ms = (0u - 1u - wrap - isn) / 250u;
    memset(k, 0, sizeof(*k));
    harness_tun_tcp_up(&k->tcp, &cfg, rec_send, k);
    k->tcp.tun.now_ms = at + ms;
    harness_tun_tcp_connect(&k->tcp);
    ASSERT_EQ(k->tcp.syn_seq, isn + 250u * ms);
    harness_tun_tcp_established(&k->tcp);
    rec_upload(k);
}

/* Loss recovery with the flight across 2^32 (a segment straddles it): SACK blocks that wrap, the
 * hole below 2^32 resent from them and then by the recovery timer, nothing SACKed resent, and a
 * renege after it. Every comparison of sequence numbers must be TCP_SEQ_*'s. */
TEST_IMPL(stack_recovery_wrap)
{
    static struct rec k;
    rec_open_wrap(&k, 32, 33000);
    size_t first = rec_grow(&k);
    uint32_t hole = k.seq[first], b = k.seq[first + 1], high = rec_high(&k);
    ASSERT(hole > 0x80000000u && high < 0x80000000u);
    size_t last = k.n - 1;
    for (size_t i = first + 1; i <= last; i++)
        rec_ack(&k, hole, b, k.seq[i] + k.len[i]);
    ASSERT_EQ(rec_times(&k, hole), 2);
    ASSERT(!rec_resent_over(&k, b, high, 1));
    ASSERT(rec_wait_times(&k, hole, 3, 20) < 20); /* the resend lost too: the timer */
    ASSERT(!rec_resent_over(&k, b, high, 1));

    rec_renege_resent(&k, first + 1, last);
    rec_finish(&k);
    return 0;
}

/* The peer resets the connection in the middle of loss recovery, with the recovery timer set: lwIP
 * frees the pcb, and the timer goes with it (its firing on the freed pcb would be a use after free,
 * which ASan shows); nothing is sent after the reset. */
TEST_IMPL(stack_recovery_reset_armed)
{
    static struct rec k;
    rec_open(&k, 33);
    size_t first = rec_grow(&k);
    uint32_t hole = k.seq[first], b = k.seq[first + 1];
    for (size_t i = first + 1; i <= first + 3; i++)
        rec_ack(&k, hole, b, k.seq[i] + k.len[i]);
    ASSERT_EQ(rec_times(&k, hole), 2);

    uint8_t pkt[100];
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &k.tcp.peer, 80, &k.tcp.us, k.tcp.sport, 0x14, REC_PEER_ISN + 1,
                                  hole, 0, NULL, 0, NULL, 0);
    ASSERT(len > 0);
    stack_input(k.tcp.tun.stack, pkt, len);
    harness_tun_settle(&k.tcp.tun);
    size_t sent = k.n;
    harness_tun_advance(&k.tcp.tun, 3000);
    ASSERT_EQ(k.n, sent);
    harness_tun_tcp_close(&k.tcp);
    return 0;
}

/* The renege takes a resent segment too: the tail loss probe (the window's last segment again)
 * is SACKed, which starts recovery, and once the holes are filled the peer acknowledges up to
 * that segment only. It goes a third time at once, not after the recovery timer's wait: its
 * earlier resend, which the peer threw away, is not one still in the network. */
TEST_IMPL(stack_recovery_renege_resent)
{
    static struct rec k;
    rec_open(&k, 34);
    size_t first = rec_grow(&k);
    uint32_t hole = k.seq[first], high = rec_high(&k);
    size_t last = k.n - 1;
    size_t probe = rec_wait_send(&k, 30);
    ASSERT_EQ(k.seq[probe], k.seq[last]);
    rec_ack(&k, hole, k.seq[last], high);
    ASSERT_EQ(rec_times(&k, hole), 2);

    rec_ack(&k, k.seq[last], 0, 0);
    ASSERT_EQ(rec_times(&k, k.seq[last]), 3);
    rec_finish(&k);
    return 0;
}

static void rec_shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)req;
    ASSERT_EQ(status, 0);
}

/* The application closes its end after the upload, and the whole tail of the window is lost, the
 * FIN with it: the tail loss probe resends the last segment, FIN included (TCP_TCPLEN counts it);
 * the peer SACKs it up to and with the FIN, which shows the holes lost, and they go again. */
TEST_IMPL(stack_recovery_tail_probe_fin)
{
    static struct rec k;
    static uv_shutdown_t req;
    rec_open(&k, 35);
    ASSERT_EQ(uv_shutdown(&req, (uv_stream_t *)&k.tcp.app.client, rec_shutdown_cb), 0);
    harness_tun_settle(&k.tcp.tun);
    uint32_t acked = k.tcp.syn_seq + 1;
    while (!k.fins) {
        ASSERT(rec_high(&k) != acked);
        acked = rec_high(&k);
        rec_ack(&k, acked, 0, 0);
    }
    ASSERT_EQ(k.fin_end, rec_high(&k) + 1);
    size_t first = 0;
    while (k.seq[first] != acked)
        first++;
    ASSERT(k.n - first >= 3);
    size_t last = k.n - 1;
    rec_wait_send(&k, 30);
    ASSERT_EQ(rec_times(&k, k.seq[last]), 2);
    ASSERT_EQ(k.fins, 2);
    ASSERT_EQ(rec_times(&k, acked), 1);

    rec_ack(&k, acked, k.seq[last], k.fin_end);
    ASSERT_EQ(rec_times(&k, acked), 2);
    for (size_t i = first; i < last; i++) {
        ASSERT(rec_wait_times(&k, k.seq[i], 2, 100) < 100);
        rec_ack(&k, k.seq[i] + k.len[i], k.seq[last], k.fin_end);
    }
    rec_ack(&k, k.fin_end, 0, 0);
    ASSERT_EQ(k.fins, 2);
    ASSERT_EQ(k.tcp.c->pcb->unacked, NULL);
    harness_tun_tcp_close(&k.tcp);
    return 0;
}

/* The peer closes its window with data in flight: neither the tail loss probe nor the recovery
 * timer sends past it, and no timer spins (nothing but lwIP's one-byte window probes goes out in
 * a second). lwIP's retransmission timer fires meanwhile, puts everything in unsent, cannot send
 * it and starts its persist timer; the peer's answers to its probes then SACK a hole, still in a
 * zero window. recovery_rto_skip_sacked() put the SACKed segments back in unacked, and lwIP's
 * persist timer, which asserts that nothing is in flight, aborted the process at its next tick.
 * Once the window opens, the upload completes. */
TEST_IMPL(stack_recovery_zero_window)
{
    static struct rec k;
    rec_open(&k, 36);
    size_t first = rec_grow(&k);
    uint32_t b = k.seq[first + 1], c = k.seq[first + 2], high = rec_high(&k);
    path_ack(&k.tcp, b, 0, 0, 0);
    size_t before = k.n;
    harness_tun_advance(&k.tcp.tun, 1000);
    for (size_t i = before; i < k.n; i++)
        ASSERT(k.len[i] <= 1);

    for (size_t i = first + 2; i < before && k.seq[i] != high; i++)
        path_ack(&k.tcp, b, c, k.seq[i] + k.len[i], 0);
    size_t in_recovery = k.n;
    harness_tun_advance(&k.tcp.tun, 1000);
    for (size_t i = in_recovery; i < k.n; i++)
        ASSERT(k.len[i] <= 1);
    ASSERT(k.n - in_recovery < 20);

    path_ack(&k.tcp, b, c, high, 65535);
    ASSERT(rec_times(&k, b) >= 2);
    rec_finish(&k);
    return 0;
}
