/* Receive windows on a tunnel with little room (stack/tcp_budget.c, "Windows on a short path"):
 * past the tunnel's rx_room a connection's window grows only while the rate its application takes
 * data at, measured over 10 ms at least, times two round trips of the handshake comes to the
 * window, and never where the round trip is 1 ms or less. The real stack and lwIP behind the fake tunnel
 * of harness_tun.h; the test plays the server's TCP by hand (window scaling agreed), sends as far
 * as each window lets it, and a loopback socket is the bridged application, read as it comes.
 * The connection is one the stack opens, or one its listener accepted (-R), whose round trip is
 * its SYN-ACK's. */
#include <stdint.h>
#include <string.h>

#include <uv.h>

#include "base/bytes.h"
#include "harness_tun.h"
#include "stack/stack.h"
#include "stack/tcp.h"
#include "test.h"

enum { WIN_PEER_ISN = 5000000, WIN_SEG = 1400, WIN_ROOM = 256 * 1024, WIN_TOTAL = 3 * 1024 * 1024 };

struct win {
    struct harness_tun_tcp tcp; /* the connection; its application a loopback pair */
    uint16_t pport; /* the server's port */
    struct stack_tcp *accepted; /* from the listener, when the test's side opened it */
    uint32_t edge;  /* the right edge of the windows the stack offered */
    size_t max_wnd; /* the largest window it offered */
    size_t got;      /* bytes the application read */
    uint32_t sum;    /* and their sum, to compare with what was sent */
    char rbuf[65536];
};

static void win_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct win *w = t->arg;
    (void)len;
    const uint8_t *tcp = pkt + 20;
    if (tcp[13] & 0x02) {
        /* A listener's SYN-ACK (its window field is never scaled): the handshake, as the stack's
         * SYN gives it for a connection the stack opens. */
        w->tcp.syns++;
        w->tcp.syn_seq = v2s_get_be32(tcp + 4);
        const uint8_t *ws = harness_tun_tcp_option(tcp, 3);
        w->tcp.syn_scale = ws && ws[1] >= 3 ? ws[2] : 0;
        return;
    }
    if (tcp[13] & 0x10) {
        size_t wnd = (size_t)v2s_get_be16(tcp + 14) << w->tcp.syn_scale;
        uint32_t edge = v2s_get_be32(tcp + 8) + (uint32_t)wnd;
        if (wnd > w->max_wnd)
            w->max_wnd = wnd;
        if ((int32_t)(edge - w->edge) > 0)
            w->edge = edge;
    }
}

static uint8_t win_byte(uint32_t off)
{
    return (uint8_t)(off * 7u + (off >> 11));
}

static void win_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    struct win *w = h->data;
    (void)size;
    *buf = uv_buf_init(w->rbuf, sizeof(w->rbuf));
}

static void win_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct win *w = s->data;
    for (ssize_t i = 0; i < n; i++)
        w->sum += (uint8_t)buf->base[i];
    if (n > 0)
        w->got += (size_t)n;
}

static int win_accept(void *arg, struct stack_tcp *c)
{
    struct win *w = arg;
    w->accepted = c;
    return 0;
}

static void win_done(void *arg, int reset, uint64_t up, uint64_t down)
{
    struct win *w = arg;
    (void)reset;
    (void)up;
    (void)down;
    w->tcp.app.done = 1;
}

/* The other way round (-R): the server connects to a listener of the stack on port 80, the
 * handshake's ACK coming rtt_ms after the SYN-ACK, and the connection is bridged to the test's
 * application; what win_run() does then is the same. */
static void win_open_accepted(struct win *w, uint32_t rtt_ms, struct stack_tcp_listener **lst)
{
    static const uint8_t opts[8] = {2, 4, 0x05, 0x78, 1, 3, 3, 0}; /* MSS 1400, window scale 0 */
    uint8_t pkt[100];
    ASSERT_EQ(stack_tcp_listen(w->tcp.tun.stack, &w->tcp.us, 80, win_accept, w, lst), 0);
    w->pport = 40000;
    w->tcp.sport = 80;
    size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &w->tcp.peer, w->pport, &w->tcp.us, 80, 0x02, WIN_PEER_ISN, 0,
                                  65535, opts, sizeof(opts), NULL, 0);
    harness_tun_inject(&w->tcp.tun, pkt, len);
    ASSERT_EQ(w->tcp.syns, 1);
    ASSERT(w->tcp.syn_scale > 0);
    harness_tun_advance(&w->tcp.tun, rtt_ms);
    len = harness_tun_tcp4(pkt, sizeof(pkt), &w->tcp.peer, w->pport, &w->tcp.us, 80, 0x10, WIN_PEER_ISN + 1,
                           w->tcp.syn_seq + 1, 65535, NULL, 0, NULL, 0);
    harness_tun_inject(&w->tcp.tun, pkt, len);
    ASSERT(w->accepted != NULL);
    stack_tcp_bridge_start(w->accepted, w->tcp.app.accepted, NULL, 0, "win", win_done, w);
    harness_tun_settle(&w->tcp.tun);
}

/* One connection through a tunnel with room bytes of rx_room, the handshake taking rtt_ms, opened
 * by the stack or (accepted) by the server; then WIN_TOTAL bytes from the server, as far as each
 * window lets it, the clock moving on by step_ms after every (bursts + 1)th round (the rounds
 * between come at once, as what a VPN client held back does when it catches up). Returns the
 * largest window the stack offered. */
static size_t win_run_as(struct win *w, int accepted, size_t room, uint32_t rtt_ms, uint32_t step_ms, int bursts)
{
    memset(w, 0, sizeof(*w));
    /* SYN-ACK: MSS 1400, window scale 0 */
    const struct harness_tun_tcp_config cfg = {.seed = 11, .rx_room = room, .port = 80, .isn = WIN_PEER_ISN,
                                               .wnd = 65535, .mss = 1400, .scaled = 1, .wscale = 0};
    harness_tun_tcp_up(&w->tcp, &cfg, win_send, w);
    w->tcp.app.client.data = w;
    ASSERT_EQ(uv_read_start((uv_stream_t *)&w->tcp.app.client, win_alloc, win_read), 0);

    struct stack_tcp_listener *lst = NULL;
    if (accepted) {
        win_open_accepted(w, rtt_ms, &lst);
    } else {
        w->pport = 80;
        harness_tun_tcp_connect(&w->tcp);
        ASSERT(w->tcp.syn_scale > 0);
        harness_tun_advance(&w->tcp.tun, rtt_ms);
        harness_tun_tcp_established(&w->tcp);
    }

    uint8_t pkt[1500], data[WIN_SEG];
    uint32_t sent = 0, sum = 0;
    for (int rounds = 0; sent < WIN_TOTAL; rounds++) {
        ASSERT(rounds < 100000);
        while (sent < WIN_TOTAL && (int32_t)(w->edge - (WIN_PEER_ISN + 1 + sent + WIN_SEG)) >= 0) {
            for (uint32_t i = 0; i < WIN_SEG; i++) {
                data[i] = win_byte(sent + i);
                sum += data[i];
            }
            size_t len = harness_tun_tcp4(pkt, sizeof(pkt), &w->tcp.peer, w->pport, &w->tcp.us, w->tcp.sport, 0x10,
                                          WIN_PEER_ISN + 1 + sent, w->tcp.syn_seq + 1, 65535, NULL, 0, data, WIN_SEG);
            ASSERT(len > 0);
            stack_input(w->tcp.tun.stack, pkt, len);
            sent += WIN_SEG;
        }
        harness_tun_settle(&w->tcp.tun);
        if (step_ms && rounds % (bursts + 1) == bursts)
            harness_tun_advance(&w->tcp.tun, step_ms);
    }
    for (int i = 0; i < 1000 && w->got < sent; i++)
        harness_tun_advance(&w->tcp.tun, 1);
    ASSERT_EQ(w->got, sent);
    ASSERT_EQ(w->sum, sum);

    if (lst)
        stack_tcp_listen_close(lst);
    harness_tun_tcp_close(&w->tcp);
    return w->max_wnd;
}

static size_t win_run(struct win *w, size_t room, uint32_t rtt_ms, uint32_t step_ms, int bursts)
{
    return win_run_as(w, 0, room, rtt_ms, step_ms, bursts);
}

TEST_IMPL(stack_window_short_path)
{
    static struct win w;
    /* A short round trip (1 ms) and a reader that takes each window in 5 ms: the window stops
     * at the tunnel's room. */
    size_t wnd = win_run(&w, WIN_ROOM, 1, 5, 0);
    ASSERT(wnd <= WIN_ROOM);
    ASSERT(wnd > WIN_ROOM / 2);
    /* The same on a tunnel with room to spare (rx_room 0): the window grows as the reader keeps
     * up, to megabytes. */
    wnd = win_run(&w, 0, 1, 5, 0);
    ASSERT(wnd >= 4 * WIN_ROOM);
    /* A long round trip (50 ms): the reader takes each window well within two of them, so the
     * window grows past the room. */
    wnd = win_run(&w, WIN_ROOM, 50, 5, 0);
    ASSERT(wnd >= 4 * WIN_ROOM);
    /* A round trip of 1 ms and a reader that takes every window at once: the room holds a round
     * trip at any rate the tunnel carries. */
    wnd = win_run(&w, WIN_ROOM, 1, 0, 0);
    ASSERT(wnd <= WIN_ROOM);
    ASSERT(wnd > WIN_ROOM / 2);
    /* A round trip of 2 ms, the windows arriving two at once every 10 ms: a burst is taken within
     * no time, but the rate (a window per 5 ms) needs less than the room. */
    wnd = win_run(&w, WIN_ROOM, 2, 10, 1);
    ASSERT(wnd <= WIN_ROOM);
    ASSERT(wnd > WIN_ROOM / 2);
    /* A round trip of 4 ms and a window taken every 5 ms: twice the bandwidth-delay product is
     * 1.6 windows, so the window grows past the room, although no rate is measured over less
     * than 10 ms. */
    wnd = win_run(&w, WIN_ROOM, 4, 5, 0);
    ASSERT(wnd >= 2 * WIN_ROOM);
    return 0;
}

/* The same rule for a connection a listener accepted (-R, SOCKS BIND): its handshake is timed from
 * the SYN-ACK, so data sent into a service through a short path stops at the room too. Without
 * a sample its window grew past the room as on a tunnel with room to spare (to 2 MiB here). */
TEST_IMPL(stack_window_short_path_accepted)
{
    static struct win w;
    size_t wnd = win_run_as(&w, 1, WIN_ROOM, 1, 5, 0);
    ASSERT(wnd <= WIN_ROOM);
    ASSERT(wnd > WIN_ROOM / 2);
    /* A long round trip (50 ms): it grows past the room as the stack's own connections do. */
    wnd = win_run_as(&w, 1, WIN_ROOM, 50, 5, 0);
    ASSERT(wnd >= 4 * WIN_ROOM);
    return 0;
}
