/* ACKs that ride on our own segments, counted in packets. Closing (tcp_close.c): a FIN from the
 * far end that arrives before ours is acknowledged by our own FIN when the application closes in
 * answer, not by a pure ACK of its own first; if the application does not close, a delayed ACK
 * still leaves on the next TCP tick. Opening (tcp_send.c): the handshake's ACK goes with the
 * application's first bytes when they are there by the end of the loop iteration, and alone in
 * that iteration when they are not. The real stack and lwIP behind the fake tunnel of
 * harness_tun.h; the test plays the server's TCP by hand (as test_stack_acks.c), and a loopback
 * socket is the bridged application. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/bytes.h"
#include "harness_tun.h"
#include "stack/stack.h"
#include "test.h"

enum { CLOSE_MAX = 16, CLOSE_PEER_ISN = 2000000, CLOSE_ANSWER = 143 };

struct close_case {
    struct harness_tun_tcp tcp; /* the connection; its application a loopback pair */
    uint8_t flags[CLOSE_MAX]; /* every segment after the SYN, in order: its flags... */
    uint32_t ackno[CLOSE_MAX]; /* ...acknowledgement number... */
    size_t paylen[CLOSE_MAX];  /* ...and payload length */
    size_t n;
    char buf[512];
    size_t got;    /* bytes the application read */
    int eof;       /* it read the end */
    int close_on_eof;
    uv_shutdown_t shut;
};

static void close_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct close_case *k = t->arg;
    const uint8_t *tcp = pkt + 20;
    if (k->n < CLOSE_MAX) {
        k->flags[k->n] = tcp[13];
        k->paylen[k->n] = len - 20 - (size_t)(tcp[12] >> 4) * 4;
        k->ackno[k->n++] = v2s_get_be32(tcp + 8);
    }
}

static void close_segment(struct close_case *k, uint8_t flags, uint32_t seq, uint32_t ack, size_t n)
{
    uint8_t pkt[1500], data[CLOSE_ANSWER];
    memset(data, 'a', sizeof(data));
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &k->tcp.peer, 80, &k->tcp.us, k->tcp.sport, flags, seq, ack,
                                  65535, NULL, 0, data, n);
    ASSERT(len > 0);
    stack_input(k->tcp.tun.stack, pkt, len);
}

/* The server at 10.9.0.1:80; its SYN-ACK with MSS 1400. */
static struct harness_tun_tcp_config close_config(uint64_t seed)
{
    return (struct harness_tun_tcp_config){.seed = seed, .port = 80, .isn = CLOSE_PEER_ISN, .wnd = 65535, .mss = 1400};
}

static void close_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct close_case *k = h->data;
    (void)suggested;
    *buf = uv_buf_init(k->buf, sizeof(k->buf));
}

/* The application: reads the answer to its end, then (if told to) closes its side, as an HTTP
 * client does after a "Connection: close" answer. */
static void close_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct close_case *k = s->data;
    (void)buf;
    if (nread > 0) {
        k->got += (size_t)nread;
        return;
    }
    if (nread != UV_EOF)
        return;
    k->eof = 1;
    uv_read_stop(s);
    if (k->close_on_eof)
        ASSERT_EQ(uv_shutdown(&k->shut, s, NULL), 0);
}

/* Up to the server's answer and FIN in one segment, read by the application to its end. Returns
 * the sequence number after the FIN, which is what acknowledges it. */
static uint32_t close_setup(struct close_case *k, uint64_t seed, int close_on_eof)
{
    memset(k, 0, sizeof(*k));
    k->close_on_eof = close_on_eof;
    const struct harness_tun_tcp_config cfg = close_config(seed);
    harness_tun_tcp_up(&k->tcp, &cfg, close_send, k);
    k->tcp.app.client.data = k;
    ASSERT_EQ(uv_read_start((uv_stream_t *)&k->tcp.app.client, close_alloc, close_read), 0);

    harness_tun_tcp_connect(&k->tcp);
    harness_tun_tcp_established(&k->tcp);
    ASSERT_EQ(k->n, 1); /* the handshake's ACK, at once */
    ASSERT_EQ(k->flags[0], 0x10);
    ASSERT_EQ(k->ackno[0], CLOSE_PEER_ISN + 1);

    /* The answer and the FIN (FIN, PSH, ACK), as a server that closes right after writing. */
    k->n = 0;
    close_segment(k, 0x19, CLOSE_PEER_ISN + 1, k->tcp.syn_seq + 1, CLOSE_ANSWER);
    harness_tun_settle(&k->tcp.tun);
    ASSERT_EQ(k->got, CLOSE_ANSWER);
    ASSERT_EQ(k->eof, 1);
    return CLOSE_PEER_ISN + 1 + CLOSE_ANSWER + 1;
}

/* The application closes as soon as it read the end: one packet, our FIN carrying the ACK of
 * theirs; no pure ACK before it. */
TEST_IMPL(stack_close_fin_ack_on_our_fin)
{
    static struct close_case k;
    uint32_t fin_end = close_setup(&k, 7, 1);
    ASSERT_EQ(k.n, 1);
    ASSERT_EQ(k.flags[0], 0x11); /* FIN, ACK */
    ASSERT_EQ(k.ackno[0], fin_end);
    /* Nothing more on the next ticks: the delayed ACK went with the FIN. */
    harness_tun_advance(&k.tcp.tun, 100);
    ASSERT_EQ(k.n, 1);
    /* The server acknowledges our FIN: the bridge is over. */
    close_segment(&k, 0x10, fin_end, k.tcp.syn_seq + 2, 0);
    harness_tun_settle(&k.tcp.tun);
    ASSERT_EQ(k.tcp.app.done, 1);
    harness_tun_tcp_close(&k.tcp);
    return 0;
}

/* The application keeps its side open: the FIN is acknowledged by a delayed ACK on the next TCP
 * tick (25 ms), long before the server would resend it (200 ms at the least for Linux); our FIN
 * follows when the application closes. */
TEST_IMPL(stack_close_fin_ack_delayed)
{
    static struct close_case k;
    uint32_t fin_end = close_setup(&k, 8, 0);
    ASSERT_EQ(k.n, 0);
    harness_tun_advance(&k.tcp.tun, 60);
    ASSERT_EQ(k.n, 1);
    ASSERT_EQ(k.flags[0], 0x10);
    ASSERT_EQ(k.ackno[0], fin_end);
    ASSERT_EQ(uv_shutdown(&k.shut, (uv_stream_t *)&k.tcp.app.client, NULL), 0);
    harness_tun_settle(&k.tcp.tun);
    ASSERT_EQ(k.n, 2);
    ASSERT_EQ(k.flags[1], 0x11);
    ASSERT_EQ(k.ackno[1], fin_end);
    close_segment(&k, 0x10, fin_end, k.tcp.syn_seq + 2, 0);
    harness_tun_settle(&k.tcp.tun);
    ASSERT_EQ(k.tcp.app.done, 1);
    harness_tun_tcp_close(&k.tcp);
    return 0;
}

/* Up to the handshake: the SYN sent, the loopback application bridged once the SYN-ACK is in. */
static void ride_open(struct close_case *k, uint64_t seed)
{
    memset(k, 0, sizeof(*k));
    const struct harness_tun_tcp_config cfg = close_config(seed);
    harness_tun_tcp_up(&k->tcp, &cfg, close_send, k);
    harness_tun_tcp_connect(&k->tcp);
}

/* The application's request is in its socket by the end of the iteration that took the SYN-ACK
 * in (as when it answers a SOCKS reply at once): one segment, the request carrying the ACK. */
TEST_IMPL(stack_handshake_ack_rides_on_request)
{
    static struct close_case k;
    ride_open(&k, 11);
    /* The SYN-ACK is taken in (the bridge starts in the connected callback), then the client
     * writes before the loop turns. */
    harness_tun_tcp_synack(&k.tcp);
    ASSERT_EQ(k.tcp.app.status, 0);
    uv_buf_t b = uv_buf_init("GET / HTTP/1.1\r\n\r\n", 18);
    ASSERT_EQ(uv_try_write((uv_stream_t *)&k.tcp.app.client, &b, 1), 18);
    harness_tun_settle(&k.tcp.tun);
    ASSERT_EQ(k.n, 1);
    ASSERT_EQ(k.flags[0] & 0x10, 0x10);
    ASSERT_EQ(k.ackno[0], CLOSE_PEER_ISN + 1);
    ASSERT_EQ(k.paylen[0], 18);
    harness_tun_tcp_close(&k.tcp);
    return 0;
}

/* Nothing from the application by then (a protocol where the server speaks first): the ACK
 * leaves alone within the same settle of the loop, without any timer, and the application's
 * bytes, later, are a segment of their own. */
TEST_IMPL(stack_handshake_ack_alone_at_once)
{
    static struct close_case k;
    ride_open(&k, 12);
    harness_tun_tcp_established(&k.tcp);
    ASSERT_EQ(k.n, 1);
    ASSERT_EQ(k.flags[0], 0x10);
    ASSERT_EQ(k.ackno[0], CLOSE_PEER_ISN + 1);
    ASSERT_EQ(k.paylen[0], 0);
    uv_buf_t b = uv_buf_init("QUIT\r\n", 6);
    ASSERT_EQ(uv_try_write((uv_stream_t *)&k.tcp.app.client, &b, 1), 6);
    harness_tun_settle(&k.tcp.tun);
    ASSERT_EQ(k.n, 2);
    ASSERT_EQ(k.paylen[1], 6);
    harness_tun_tcp_close(&k.tcp);
    return 0;
}

/* Early bytes pushed from the connected callback leave with the handshake's acknowledgement, in
 * one segment (lwIP sends nothing from inside its input processing), and the ride reads nothing
 * more before they are acknowledged: a guard that holds without the ride too. */
TEST_IMPL(stack_handshake_ack_early_bytes)
{
    static struct close_case k;
    memset(&k, 0, sizeof(k));
    const struct harness_tun_tcp_config cfg = close_config(13);
    harness_tun_tcp_up(&k.tcp, &cfg, close_send, &k);
    /* As a listener with bytes the client sent behind its request (a SOCKS client's optimistic
     * data, an HTTP proxy's rewritten request): bridged with them from the connected callback. */
    k.tcp.app.early = (const uint8_t *)"EARLY";
    k.tcp.app.n_early = 5;
    harness_tun_tcp_connect(&k.tcp);
    harness_tun_tcp_established(&k.tcp);
    ASSERT_EQ(k.n, 1);
    ASSERT_EQ(k.paylen[0], 5);
    ASSERT_EQ(k.ackno[0], CLOSE_PEER_ISN + 1);
    harness_tun_tcp_close(&k.tcp);
    return 0;
}

/* The server's FIN reaches the application as a shutdown() made at once, with the answer, in
 * the loop iteration that received them: not through uv_shutdown(), which libuv carries out from
 * its pending callbacks and follows with an epoll_ctl() on the next poll (it stops a POLLOUT
 * watch, which queues the socket's watcher again; a queued watcher is also what makes
 * uv_backend_timeout() 0, which is how this test sees it). */
TEST_IMPL(stack_close_shutdown_app_at_once)
{
    static struct close_case k;
    memset(&k, 0, sizeof(k));
    const struct harness_tun_tcp_config cfg = close_config(9);
    harness_tun_tcp_open(&k.tcp, &cfg, close_send, &k);

    uv_os_fd_t fd;
    ASSERT_EQ(uv_fileno((uv_handle_t *)&k.tcp.app.client, &fd), 0);
    close_segment(&k, 0x19, CLOSE_PEER_ISN + 1, k.tcp.syn_seq + 1, CLOSE_ANSWER);
    /* Loop iterations one at a time until the application's socket holds the answer and its end;
     * that iteration must leave no watcher queued. */
    int eof = 0, turns = 0;
    while (!eof && turns++ < 100) {
        uv_run(&k.tcp.tun.loop, UV_RUN_NOWAIT);
        ssize_t n;
        while ((n = recv(fd, k.buf, sizeof(k.buf), MSG_DONTWAIT)) > 0)
            k.got += (size_t)n;
        if (n == 0)
            eof = 1;
        else
            ASSERT(errno == EAGAIN);
    }
    ASSERT_EQ(eof, 1);
    ASSERT_EQ(k.got, CLOSE_ANSWER);
    ASSERT(uv_backend_timeout(&k.tcp.tun.loop) != 0);

    ASSERT_EQ(uv_shutdown(&k.shut, (uv_stream_t *)&k.tcp.app.client, NULL), 0);
    harness_tun_settle(&k.tcp.tun);
    close_segment(&k, 0x10, CLOSE_PEER_ISN + 1 + CLOSE_ANSWER + 1, k.tcp.syn_seq + 2, 0);
    harness_tun_settle(&k.tcp.tun);
    ASSERT_EQ(k.tcp.app.done, 1);
    harness_tun_tcp_close(&k.tcp);
    return 0;
}
