/* The TCP bridge between an application's socket and lwIP (stack/tcp*.c) at its edges: what the
 * peer sent reaching the application whole when the tunnel's address changes after a clean close,
 * and the memory segments of a few hundred bytes cost while the application has not taken them.
 * The real stack and lwIP behind the fake tunnel of harness_tun.h, the test playing the server's
 * TCP by hand; a loopback socket is the bridged application, whose client end the test reads. */
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/bytes.h"
#include "harness_tun.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "stack/stack.h"
#include "stack/tcp_internal.h"
#include "test.h"
#include "tunnel/settings.h"
#include "uvtest.h"

enum { BR_PEER_ISN = 3000000 };

/* One segment from the peer (ACK set, acknowledging up to ack), into the stack but not yet
 * through the loop; its bytes are the low byte of their sequence number. */
static void br_segment(struct harness_tun_tcp *r, uint8_t flags, uint32_t seq, uint32_t ack, size_t n)
{
    uint8_t pkt[1500], data[1400];
    ASSERT(n <= sizeof(data));
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(seq + i);
    size_t len =
        harness_tun_tcp4(pkt, sizeof(pkt), &r->peer, 80, &r->us, r->sport, flags, seq, ack, 65535, NULL, 0, data, n);
    ASSERT(len > 0);
    stack_input(r->tun.stack, pkt, len);
}

/* Reads n bytes at the application and checks them; with want_end, waits for the end of its
 * input too. Returns how the input ended (uvtest_recv: 0 still open, 1 EOF, -errno reset). */
static int br_read_all(struct harness_tun_tcp *r, size_t n, int want_end)
{
    static uint8_t got[256 * 1024];
    ASSERT(n < sizeof(got));
    uv_os_fd_t fd;
    ASSERT_EQ(uv_fileno((uv_handle_t *)&r->app.client, &fd), 0);
    int end = 0;
    size_t k = uvtest_recv(&r->tun.loop, fd, got, n, &end, 2000);
    if (k != n)
        TEST_FAIL_AT("the application got %zu of %zu bytes (its input ended %d)", k, n, end);
    for (size_t i = 0; i < n; i++)
        if (got[i] != (uint8_t)(BR_PEER_ISN + 1 + i))
            TEST_FAIL_AT("byte %zu is %u", i, got[i]);
    if (end == 0 && want_end)
        end = uvtest_wait_end(&r->tun.loop, fd, NULL, 2000);
    return end;
}

/* Both ends closed cleanly (the application half-closed first, then the server sent its last
 * bytes and its FIN), and the tunnel comes back from a reconnect with another address before the
 * application has all of those bytes: the connections using the tunnel are reset, but lwIP is
 * done with this one, so its bytes and the end of the stream still reach the application.
 * Before, stack_tcp_abort_all() reset every bridged connection, this one included: the bytes
 * held for the application were dropped and it saw a reset instead of the end of a download that
 * had completed (a slow reader holds up to its window for as long as it takes). */
TEST_IMPL(stack_bridge_readdress_after_close)
{
    static struct harness_tun_tcp r;
    const struct harness_tun_tcp_config cfg = {.seed = 41, .port = 80, .isn = BR_PEER_ISN, .wnd = 65535, .mss = 1400};
    harness_tun_tcp_open(&r, &cfg, NULL, NULL);
    struct stack_tcp *c = r.c;
    ASSERT(c != NULL);

    /* The application is done sending: the bridge passes its FIN on. */
    uv_os_fd_t fd;
    ASSERT_EQ(uv_fileno((uv_handle_t *)&r.app.client, &fd), 0);
    ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
    for (int i = 0; i < 20 && !c->tx_shut; i++)
        harness_tun_advance(&r.tun, 5);
    ASSERT(c->tx_shut);

    /* The server acknowledges our FIN, sends 20 KB and its own FIN, all in one read from the
     * tunnel; then the tunnel is up again with another address, before the loop hands the
     * bytes to the application. */
    const size_t seg = 1000, n = 20;
    uint32_t seq = BR_PEER_ISN + 1, ack = r.syn_seq + 2;
    for (size_t i = 0; i < n; i++, seq += (uint32_t)seg)
        br_segment(&r, 0x10, seq, ack, seg);
    br_segment(&r, 0x11, seq, ack, 0);
    ASSERT(c->remote_fin);
    struct tunnel_settings ts;
    tunnel_settings_init(&ts);
    ASSERT_EQ(v2s_addr_parse(&ts.addr4, "10.8.0.3"), 0);
    ts.prefix4 = 24;
    ts.mtu = 1400;
    ASSERT_EQ(stack_tunnel_up(r.tun.stack, &ts), 0);
    tunnel_settings_free(&ts);

    ASSERT_EQ(br_read_all(&r, n * seg, 1), 1);
    harness_tun_settle(&r.tun);
    ASSERT_EQ(r.app.done, 1);
    harness_tun_tcp_close(&r);
    return 0;
}

/* Segments of 257 to 512 bytes are small (tcp_recv.c's STACK_TCP_SMALL) and are copied into the
 * buffer of small segments, as 1-256 byte ones are. Before, a buffer was started at 256 bytes
 * when the one before was not there or full, so one of 300 bytes did not fit, was kept as it came
 * and left the new buffer empty behind it: every such segment cost an empty 256-byte buffer too
 * (and an empty descriptor in the write), twice the memory it should, and none was copied. */
TEST_IMPL(stack_bridge_rx_small_segments)
{
    static struct harness_tun_tcp r;
    const struct harness_tun_tcp_config cfg = {.seed = 43, .port = 80, .isn = BR_PEER_ISN, .wnd = 65535, .mss = 1400};
    harness_tun_tcp_open(&r, &cfg, NULL, NULL);
    struct stack_tcp *c = r.c;
    ASSERT(c != NULL);

    /* 30 segments of 300 bytes in one read from the tunnel, held until the loop runs: copied
     * into 5 buffers of 512 to 8192 bytes (before: 60, half of them empty, which held 2.7 times
     * what was received, counted as tcp_recv.c counts its buffers). */
    const size_t seg = 300, n = 30;
    uint32_t seq = BR_PEER_ISN + 1;
    for (size_t i = 0; i < n; i++, seq += (uint32_t)seg)
        br_segment(&r, 0x10, seq, r.syn_seq + 1, seg);
    unsigned empty = 0;
    for (unsigned i = 0; i < c->n_rxq; i++)
        if (c->rxq[i].p->tot_len == 0)
            empty++;
    if (empty || c->n_rxq > 8 || c->held > 2 * n * seg)
        TEST_FAIL_AT("%zu bytes in %u buffers (%u empty) held for %zu bytes received", c->held, c->n_rxq, empty,
                     n * seg);

    ASSERT_EQ(br_read_all(&r, n * seg, 0), 0);
    harness_tun_tcp_close(&r);
    return 0;
}

/* --- an upload the application half-closes while lwIP's queue is full and the window shut --- */

enum { HC_TOTAL = 1024 * 1024 };

struct hc {
    struct harness_tun_tcp tcp;
    uint32_t got;   /* payload received in order, within the windows offered */
    uint32_t sum;   /* and its sum */
    uint32_t edge;  /* the right edge of the window offered, relative to the first byte */
    int fin;        /* the FIN came, right after the last byte received */
    unsigned late;  /* segments with data or a FIN past an earlier FIN */
    uv_write_t wreq;
    uv_shutdown_t sreq;
};

static uint8_t hc_data[HC_TOTAL];

/* The server's TCP: takes what is in order and within its window, as a receiver does. */
static void hc_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct hc *q = t->arg;
    (void)len;
    const uint8_t *tcp = pkt + 20;
    size_t doff = (size_t)(tcp[12] >> 4) * 4, tot = v2s_get_be16(pkt + 2);
    uint32_t off = v2s_get_be32(tcp + 4) - (q->tcp.syn_seq + 1);
    size_t n = tot - 20 - doff;
    int fin = tcp[13] & 0x01;
    if (q->fin) {
        if ((n > 0 && (int32_t)(off + (uint32_t)n - q->got) > 0) || (fin && off + n != q->got))
            q->late++;
        return;
    }
    if (off > q->got || (int32_t)(off + (uint32_t)n - q->got) <= 0) {
        if (fin && off + n == q->got)
            q->fin = 1;
        return; /* a gap (none here) or a resend of what it has */
    }
    size_t skip = q->got - off, take = n - skip;
    if (q->got + take > q->edge)
        take = q->edge - q->got; /* beyond the window: dropped */
    for (size_t i = 0; i < take; i++)
        q->sum += tcp[doff + skip + i];
    q->got += (uint32_t)take;
    if (fin && skip + take == n)
        q->fin = 1;
}

/* The server's ACK of everything it has (and the FIN, once there), its window wnd << 4. */
static void hc_ack(struct hc *q, uint16_t wnd)
{
    uint8_t pkt[100];
    q->edge = q->got + ((uint32_t)wnd << 4);
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &q->tcp.peer, 80, &q->tcp.us, q->tcp.sport, 0x10, BR_PEER_ISN + 1,
                                  q->tcp.syn_seq + 1 + q->got + (q->fin ? 1 : 0), wnd, NULL, 0, NULL, 0);
    ASSERT(len > 0);
    harness_tun_inject(&q->tcp.tun, pkt, len);
}

/* The application writes 1 MiB and half-closes at once; the server's window shuts for 20 s with
 * 4 KB through, 256 KiB unsent in lwIP and the rest (and the end) still in the application's
 * socket, then opens.
 * Every byte arrives once, in order, the FIN right after the last and nothing after it; the
 * server's own FIN then reaches the application as the end of its input, and the bridge ends
 * cleanly. (A regression guard: passes on main.) */
TEST_IMPL(stack_bridge_half_close_full_queue)
{
    static struct hc q;
    memset(&q, 0, sizeof(q));
    const struct harness_tun_tcp_config cfg = {.seed = 47, .port = 80, .isn = BR_PEER_ISN, .wnd = 4096, .mss = 1400,
                                               .scaled = 1, .wscale = 4};
    harness_tun_tcp_up(&q.tcp, &cfg, hc_send, &q);
    harness_tun_tcp_connect(&q.tcp);
    harness_tun_advance(&q.tcp.tun, 1);
    harness_tun_tcp_established(&q.tcp);
    q.edge = 4096u << 4;
    uint32_t sum = 0;
    for (uint32_t i = 0; i < HC_TOTAL; i++) {
        hc_data[i] = (uint8_t)(i * 29u + (i >> 10));
        sum += hc_data[i];
    }
    uv_buf_t buf = uv_buf_init((char *)hc_data, HC_TOTAL);
    ASSERT_EQ(uv_write(&q.wreq, (uv_stream_t *)&q.tcp.app.client, &buf, 1, NULL), 0);
    ASSERT_EQ(uv_shutdown(&q.sreq, (uv_stream_t *)&q.tcp.app.client, NULL), 0);
    harness_tun_advance(&q.tcp.tun, 5);

    /* The window shut: every segment answered, zero-window probes included. */
    for (int i = 0; i < 200; i++) {
        hc_ack(&q, 0);
        harness_tun_advance(&q.tcp.tun, 100);
    }
    ASSERT(q.got < HC_TOTAL);
    ASSERT(!q.fin);

    /* Open: ACKs every millisecond until the FIN is in and acknowledged. */
    for (int rounds = 0; !q.fin; rounds++) {
        ASSERT(rounds < 100000);
        hc_ack(&q, 0xFFFF);
        harness_tun_advance(&q.tcp.tun, 1);
    }
    hc_ack(&q, 0xFFFF);
    harness_tun_advance(&q.tcp.tun, 10);
    ASSERT_EQ(q.got, (uint32_t)HC_TOTAL);
    ASSERT_EQ(q.sum, sum);
    ASSERT_EQ(q.late, 0);
    ASSERT_EQ(q.tcp.c->bytes_up, (uint64_t)HC_TOTAL);

    /* The server's FIN: the application reads the end of its input, and the bridge is over. */
    uint8_t pkt[100];
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &q.tcp.peer, 80, &q.tcp.us, q.tcp.sport, 0x11, BR_PEER_ISN + 1,
                                  q.tcp.syn_seq + 2 + HC_TOTAL, 0xFFFF, NULL, 0, NULL, 0);
    harness_tun_inject(&q.tcp.tun, pkt, len);
    uv_os_fd_t fd;
    ASSERT_EQ(uv_fileno((uv_handle_t *)&q.tcp.app.client, &fd), 0);
    ASSERT_EQ(uvtest_wait_end(&q.tcp.tun.loop, fd, NULL, 2000), 1);
    harness_tun_settle(&q.tcp.tun);
    ASSERT_EQ(q.tcp.app.done, 1);
    harness_tun_tcp_close(&q.tcp);
    return 0;
}

/* The server sends 20 KB and resets, all in one read from the tunnel, before the application has
 * any of it: the application must see a reset, never the end of a stream that looks complete
 * (a truncated download taken for a whole one). (A regression guard: passes on main.) */
TEST_IMPL(stack_bridge_reset_not_eof)
{
    static struct harness_tun_tcp r;
    const struct harness_tun_tcp_config cfg = {.seed = 53, .port = 80, .isn = BR_PEER_ISN, .wnd = 65535, .mss = 1400};
    harness_tun_tcp_open(&r, &cfg, NULL, NULL);
    ASSERT(r.c != NULL);
    const size_t seg = 1000, n = 20;
    uint32_t seq = BR_PEER_ISN + 1;
    for (size_t i = 0; i < n; i++, seq += (uint32_t)seg)
        br_segment(&r, 0x10, seq, r.syn_seq + 1, seg);
    br_segment(&r, 0x14, seq, r.syn_seq + 1, 0);

    uv_os_fd_t fd;
    ASSERT_EQ(uv_fileno((uv_handle_t *)&r.app.client, &fd), 0);
    int end = uvtest_wait_end(&r.tun.loop, fd, NULL, 2000);
    if (end >= 0)
        TEST_FAIL_AT("the application's input ended with %d, not a reset", end);
    harness_tun_settle(&r.tun);
    ASSERT_EQ(r.app.done, 1);
    harness_tun_tcp_close(&r);
    return 0;
}
