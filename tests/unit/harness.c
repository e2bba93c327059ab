/* The harness's world and its clock.
 *
 * Time: lwIP reads the harness's virtual clock (stack_sys_set_clock()), and so do the links and
 * the peer. The driver runs the loop with UV_RUN_NOWAIT until nothing moves (no packet, no read,
 * no write, no callback, and the loop's epoll set has nothing ready), then jumps the clock to the
 * next thing due (a packet on a link, a peer timer, an application's pause, lwIP's next timeout)
 * and runs lwIP's timeouts. Retransmission timeouts of seconds so take microseconds. Only the
 * loopback sockets between the applications and the bridges run in real time; where the kernel
 * holds bytes back for an ACK of its own (see harness_loopback_busy()), the clock waits for it,
 * a millisecond of real time at a time.
 *
 * Determinism: the faults of each connection are drawn from streams of their own (the seed and
 * the connection's port), so they do not depend on how connections interleave; lwIP's ISNs and
 * ports and the stack's jitter come from the seed as well (stack_sys_set_random()). What is left
 * to chance is how the kernel splits reads on loopback; a replayed seed takes the same path.
 *
 * The applications: one listener on 127.0.0.1 and, per transfer, a client socket connected to
 * it before the clock starts. At the transfer's start the accepted socket's connection is opened
 * through the stack and, from the connect callback, bridged with stack_tcp_bridge_start(); the
 * client is the application, which writes its request or upload, half-closes when the script
 * says so, and reads (pausing when it is a slow reader), checking every byte. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <uv.h>

#include "harness_rand.h"
#include "stack/internal.h"
#include "stack/stack.h"
#include "stack/sys_clock.h"
#include "stack/tcp.h"
#include "tunnel/settings.h"
#include "tunnel/tunnel.h"

/* lwIP's own headers, for two things only: running its timeouts on the virtual clock, and
 * reading a connection's pcb for a failure report. */
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "stack/lwip_pin.h"

enum {
    HARNESS_CHUNK = 16 * 1024,        /* one uv_write() of an upload */
    HARNESS_WRITES_IN_FLIGHT = 4,
    HARNESS_CONNECT_TIMEOUT_MS = 120 * 1000,
    HARNESS_SETTLE_MAX = 200000,      /* loop passes at one instant before calling it a livelock */
    HARNESS_PKT_MAX = 2048,
    HARNESS_WAIT_MAX = 20000,         /* real-time waits for loopback per run (1 ms each) */
};

/* 10.8.0.2 is the tunnel's address, 10.9.0.1 the peer's. */
#define HARNESS_STACK_ADDR 0x0A080002U
#define HARNESS_PEER_ADDR 0x0A090001U

enum harness_app_outcome {
    HARNESS_APP_RUNNING,
    HARNESS_APP_COMPLETED, /* every byte, then a clean EOF */
    HARNESS_APP_ERROR,     /* an error reported to the application */
    HARNESS_APP_SHORT,     /* a clean EOF with bytes missing: data lost without an error */
};

struct harness;

struct harness_app {
    struct harness *h;
    size_t index;
    const struct harness_transfer *x;
    uv_tcp_t client;       /* the application */
    uv_tcp_t *accepted;    /* the other end: the bridge owns it once started */
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    uint16_t client_port;
    int client_open, client_connected, started;
    struct stack_tcp *conn;
    int connect_failed;    /* the stack's connect failed (status below) */
    int status;            /* the first error the application saw */
    const char *error_where;
    uint64_t to_send, queued, written;
    unsigned writes_in_flight;
    int shut_sent, shut_done;
    uint64_t expect, read;
    long mismatch;
    int eof, reading, paused;
    uint32_t resume_at;
    uint64_t since_pause;
    int bridged, bridge_done;
    int bridge_reset;      /* the bridge ended by resetting the application's connection */
    enum harness_app_outcome outcome;
    uint32_t end_ms;
    int watched;                /* harness_watch() has seen it */
    uint64_t progress;          /* bytes moved, as last seen by harness_watch() */
    uint32_t progress_ms;       /* when they last changed */
    uint32_t stall_ms, stall_at; /* the longest time nothing moved, and when that began */
};

struct harness_write {
    uv_write_t req;
    struct harness_app *app;
    size_t len;
    uint8_t data[];
};

struct harness {
    const struct harness_config *cfg;
    uv_loop_t loop;
    uv_tcp_t listener;
    int listener_open;
    struct sockaddr_in listen_addr;
    struct tunnel tunnel;
    struct stack *stack;
    int stack_closed;
    struct harness_peer *peer;
    struct harness_link *up, *down;
    struct harness_rand *up_rand, *down_rand; /* per transfer: each connection's own faults */
    struct harness_rand stray_rand;
    struct harness_app *apps;
    uint32_t t0;      /* the clock when the run began: the script's times count from here */
    int congested;
    uint64_t events;  /* anything that happened: the driver runs the loop until this stands still */
    long trace_port;  /* V2S_HARNESS_TRACE=port: print that connection's packets (0: every
                       * connection's, with absolute sequence numbers); -1: none */
    uint32_t trace_isn[2]; /* initial sequence numbers, stack's and peer's, for relative numbers */
    int livelock;
    unsigned waits;   /* real-time waits for loopback (harness_loopback_busy()) */
    uint8_t read_buf[64 * 1024];
};

/* The virtual clock: lwIP reads it through stack_sys_set_clock(). It never goes back, not even
 * from one run to the next in one process: lwIP keeps its timeouts (and any pcb still in
 * TIME_WAIT) across runs, and they must not end up in a far future. */
static uint32_t harness_now_ms;

/* What stack_random() returns during a run (stack_sys_set_random()). */
static struct harness_rand harness_stack_rand;

static uint32_t harness_stack_random(void)
{
    return (uint32_t)harness_rand_next(&harness_stack_rand);
}

static uint32_t harness_clock(void)
{
    return harness_now_ms;
}

static struct harness *harness_of_tunnel(struct tunnel *t)
{
    return (struct harness *)((char *)t - offsetof(struct harness, tunnel));
}

static const char *const harness_fate_names[] = {" LOST", " QUEUE DROP", "", " (delayed)", " (doubled)"};

/* --- tracing one connection (V2S_HARNESS_TRACE=port) --- */

/* One line per packet of the traced connection: when, where (what: "stack>" sent by the stack,
 * ">peer" delivered to the peer, and the reverse), flags, relative sequence numbers, length and
 * window field. A packet sent but never delivered was lost. */
static void harness_trace(struct harness *h, const char *what, int from_stack, const uint8_t *pkt, size_t len,
                          const char *fate)
{
    if (h->trace_port < 0 || len < 40 || pkt[0] >> 4 != 4 || pkt[9] != 6)
        return;
    size_t ihl = (size_t)(pkt[0] & 0x0F) * 4;
    const uint8_t *t = pkt + ihl;
    uint16_t peer_port = (uint16_t)(from_stack ? t[2] << 8 | t[3] : t[0] << 8 | t[1]);
    if (h->trace_port != 0 && peer_port != h->trace_port)
        return;
    uint32_t seq = (uint32_t)t[4] << 24 | (uint32_t)t[5] << 16 | (uint32_t)t[6] << 8 | t[7];
    uint32_t ack = (uint32_t)t[8] << 24 | (uint32_t)t[9] << 16 | (uint32_t)t[10] << 8 | t[11];
    uint8_t flags = t[13];
    size_t doff = (size_t)(t[12] >> 4) * 4, total = (size_t)(pkt[2] << 8 | pkt[3]);
    if (flags & 0x02)
        h->trace_isn[from_stack ? 0 : 1] = seq;
    uint32_t rseq = seq - h->trace_isn[from_stack ? 0 : 1], rack = ack - h->trace_isn[from_stack ? 1 : 0];
    if (h->trace_port == 0) /* every connection: absolute numbers */
        rseq = seq, rack = ack;
    fprintf(stderr, "trace %u %6u %s %s%s%s%s%s seq %u ack %u len %zu win %u%s\n", peer_port, harness_now_ms - h->t0, what,
            (flags & 0x02) ? "S" : ".", (flags & 0x10) ? "A" : ".", (flags & 0x01) ? "F" : ".",
            (flags & 0x04) ? "R" : ".", (flags & 0x08) ? "P" : ".", rseq, (flags & 0x10) ? rack : 0,
            total - ihl - doff, (unsigned)(t[14] << 8 | t[15]), fate);
}

/* One line about the traced connection's application. */
static void harness_trace_app(const struct harness_app *a, const char *what, uint64_t n)
{
    const struct harness *h = a->h;
    if (h->trace_port == a->x->port)
        fprintf(stderr, "trace %6u app %s %llu\n", harness_now_ms - h->t0, what, (unsigned long long)n);
}

/* --- the fake tunnel and the links --- */

/* The transfer a packet belongs to, by the peer's port (source or destination); -1 if none. */
static long harness_flow(const struct harness *h, const uint8_t *pkt, size_t len, int peer_port_offset)
{
    if (len < 20 || pkt[0] >> 4 != 4 || pkt[9] != 6)
        return -1;
    size_t ihl = (size_t)(pkt[0] & 0x0F) * 4;
    if (len < ihl + 4)
        return -1;
    uint16_t port = (uint16_t)(pkt[ihl + peer_port_offset] << 8 | pkt[ihl + peer_port_offset + 1]);
    for (size_t i = 0; i < h->cfg->n; i++)
        if (h->cfg->xfers[i].port == port)
            return (long)i;
    return -1;
}

static int harness_tunnel_start(struct tunnel *t)
{
    (void)t;
    return 0;
}

/* The stack's packets go onto the up link; the tunnel never drops one itself. */
static int harness_tunnel_send(struct tunnel *t, const uint8_t *pkt, size_t len)
{
    struct harness *h = harness_of_tunnel(t);
    long i = harness_flow(h, pkt, len, 2);
    h->events++;
    enum harness_link_fate fate =
        harness_link_send(h->up, harness_now_ms, pkt, len, i >= 0 ? &h->up_rand[i] : &h->stray_rand);
    harness_trace(h, "stack>", 1, pkt, len, harness_fate_names[fate]);
    if (h->cfg->tunnel_high && harness_link_backlog(h->up, harness_now_ms) > h->cfg->tunnel_high) {
        h->congested = 1;
        return 1;
    }
    return 0;
}

static void harness_tunnel_close(struct tunnel *t, void (*cb)(struct tunnel *t))
{
    cb(t);
}

static const struct tunnel_ops harness_tunnel_ops = {
    .start = harness_tunnel_start,
    .send = harness_tunnel_send,
    .close = harness_tunnel_close,
};

/* The peer's packets go onto the down link. */
static void harness_peer_send(void *arg, const uint8_t *pkt, size_t len)
{
    struct harness *h = arg;
    long i = harness_flow(h, pkt, len, 0);
    h->events++;
    enum harness_link_fate fate =
        harness_link_send(h->down, harness_now_ms, pkt, len, i >= 0 ? &h->down_rand[i] : &h->stray_rand);
    harness_trace(h, "      <peer", 0, pkt, len, harness_fate_names[fate]);
}

/* --- the applications --- */

static void harness_app_closed(uv_handle_t *handle)
{
    struct harness_app *a = handle->data;
    a->client_open = 0;
    a->h->events++;
}

/* The application is over (outcome set): it closes its socket. */
static void harness_app_end(struct harness_app *a, enum harness_app_outcome outcome)
{
    if (a->outcome != HARNESS_APP_RUNNING)
        return;
    a->outcome = outcome;
    a->end_ms = harness_now_ms;
    if (a->client_open && !uv_is_closing((uv_handle_t *)&a->client))
        uv_close((uv_handle_t *)&a->client, harness_app_closed);
}

static void harness_app_fail(struct harness_app *a, int status, const char *where)
{
    if (a->outcome != HARNESS_APP_RUNNING)
        return;
    a->status = status;
    a->error_where = where;
    harness_app_end(a, HARNESS_APP_ERROR);
}

/* Whether everything the application had to do is done; then it closes. */
static void harness_app_check(struct harness_app *a)
{
    const struct harness_transfer *x = a->x;
    if (a->outcome != HARNESS_APP_RUNNING || !a->eof)
        return;
    int sent = a->written == a->to_send && (x->kind == HARNESS_DOWNLOAD || a->shut_done);
    if (a->read < a->expect) {
        harness_app_end(a, HARNESS_APP_SHORT);
        return;
    }
    if (sent)
        harness_app_end(a, HARNESS_APP_COMPLETED);
}

static void harness_app_write_more(struct harness_app *a);

static void harness_app_shutdown_cb(uv_shutdown_t *req, int status)
{
    struct harness_app *a = req->data;
    a->h->events++;
    if (status < 0) {
        harness_app_fail(a, status, "shutdown");
        return;
    }
    a->shut_done = 1;
    harness_app_check(a);
}

static void harness_app_write_cb(uv_write_t *req, int status)
{
    struct harness_write *w = (struct harness_write *)req;
    struct harness_app *a = w->app;
    a->h->events++;
    a->writes_in_flight--;
    if (status == 0)
        a->written += w->len;
    free(w);
    if (status < 0) {
        harness_app_fail(a, status, "write");
        return;
    }
    harness_app_write_more(a);
    harness_app_check(a);
}

/* Keeps a few writes in flight until everything is queued, then half-closes if the script says. */
static void harness_app_write_more(struct harness_app *a)
{
    const struct harness_transfer *x = a->x;
    while (a->outcome == HARNESS_APP_RUNNING && a->queued < a->to_send &&
           a->writes_in_flight < HARNESS_WRITES_IN_FLIGHT) {
        size_t len = a->to_send - a->queued;
        if (len > HARNESS_CHUNK)
            len = HARNESS_CHUNK;
        struct harness_write *w = malloc(sizeof(*w) + len);
        if (!w)
            abort();
        w->app = a;
        w->len = len;
        harness_pattern_fill(x->key, a->queued, w->data, len);
        uv_buf_t buf = uv_buf_init((char *)w->data, (unsigned)len);
        int rc = uv_write(&w->req, (uv_stream_t *)&a->client, &buf, 1, harness_app_write_cb);
        if (rc < 0) {
            free(w);
            harness_app_fail(a, rc, "write");
            return;
        }
        a->queued += len;
        a->writes_in_flight++;
    }
    if (a->outcome == HARNESS_APP_RUNNING && a->queued == a->to_send && x->kind != HARNESS_DOWNLOAD &&
        !a->shut_sent) {
        a->shut_sent = 1;
        a->shutdown_req.data = a;
        int rc = uv_shutdown(&a->shutdown_req, (uv_stream_t *)&a->client, harness_app_shutdown_cb);
        if (rc < 0)
            harness_app_fail(a, rc, "shutdown");
    }
}

static void harness_app_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct harness_app *a = handle->data;
    (void)suggested;
    *buf = uv_buf_init((char *)a->h->read_buf, sizeof(a->h->read_buf));
}

/* Linux delays an ACK up to 40 ms of real time, and the bridge's socket may wait for that ACK
 * before it takes more, while the virtual clock would run far ahead. Quick-ACK mode lasts only
 * a while, so the application asks for it again after every read. */
static void harness_quickack(struct harness_app *a)
{
    uv_os_fd_t fd;
    int one = 1;
    if (uv_fileno((const uv_handle_t *)&a->client, &fd) == 0)
        setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

static void harness_app_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct harness_app *a = stream->data;
    const struct harness_transfer *x = a->x;
    a->h->events++;
    if (nread == 0)
        return;
    if (nread == UV_EOF) {
        a->eof = 1;
        uv_read_stop(stream);
        a->reading = 0;
        harness_app_check(a);
        return;
    }
    if (nread < 0) {
        harness_app_fail(a, (int)nread, "read");
        return;
    }
    size_t n = (size_t)nread;
    harness_trace_app(a, "read", n);
    harness_quickack(a);
    if (a->mismatch < 0) {
        if (a->read + n > a->expect) {
            a->mismatch = (long)a->expect;
        } else {
            uint64_t key = x->kind == HARNESS_ECHO ? x->key : ~x->key;
            long bad = harness_pattern_check(key, a->read, (const uint8_t *)buf->base, n);
            if (bad >= 0)
                a->mismatch = (long)a->read + bad;
        }
    }
    a->read += n;
    a->since_pause += n;
    if (x->app_pause_ms && x->app_pause_every && a->since_pause >= x->app_pause_every) {
        /* The slow reader: stops for a while, so the bridge's writes and then lwIP's window
         * have to wait for it. */
        a->since_pause = 0;
        uv_read_stop(stream);
        a->reading = 0;
        a->paused = 1;
        a->resume_at = harness_now_ms + x->app_pause_ms;
        harness_trace_app(a, "pauses for", x->app_pause_ms);
    }
}

static void harness_app_read_start(struct harness_app *a)
{
    if (a->reading || a->eof || a->outcome != HARNESS_APP_RUNNING)
        return;
    int rc = uv_read_start((uv_stream_t *)&a->client, harness_app_alloc, harness_app_read_cb);
    if (rc < 0)
        harness_app_fail(a, rc, "read start");
    else
        a->reading = 1;
    harness_quickack(a);
}

static void harness_bridge_done(void *arg, int reset, uint64_t up, uint64_t down)
{
    struct harness_app *a = arg;
    (void)reset;
    (void)up;
    (void)down;
    a->h->events++;
    a->bridge_done = 1;
    a->bridge_reset = reset;
    free(a->accepted);
    a->accepted = NULL;
}

static void harness_accepted_closed(uv_handle_t *handle)
{
    free(handle);
}

static void harness_connect_cb(void *arg, struct stack_tcp *c, int status)
{
    struct harness_app *a = arg;
    a->h->events++;
    a->conn = NULL;
    if (status < 0) {
        /* A real server would answer the SOCKS request with an error and close. */
        a->connect_failed = 1;
        uv_close((uv_handle_t *)a->accepted, harness_accepted_closed);
        a->accepted = NULL;
        harness_app_fail(a, status, "connect");
        return;
    }
    char label[32];
    snprintf(label, sizeof(label), "xfer %zu", a->index);
    a->bridged = 1;
    stack_tcp_bridge_start(c, a->accepted, NULL, 0, label, harness_bridge_done, a);
    harness_app_read_start(a);
    harness_app_write_more(a);
}

static void harness_app_start(struct harness_app *a)
{
    struct harness *h = a->h;
    a->started = 1;
    h->events++;
    struct v2s_addr dst;
    memset(&dst, 0, sizeof(dst));
    dst.family = AF_INET;
    uint32_t be = htonl(HARNESS_PEER_ADDR);
    memcpy(dst.bytes, &be, 4);
    int rc = stack_tcp_connect(h->stack, &dst, a->x->port, HARNESS_CONNECT_TIMEOUT_MS, harness_connect_cb, a,
                               &a->conn);
    if (rc < 0) {
        a->connect_failed = 1;
        uv_close((uv_handle_t *)a->accepted, harness_accepted_closed);
        a->accepted = NULL;
        harness_app_fail(a, rc, "connect");
    }
}

/* --- setting up the loopback pairs --- */

static void harness_client_connected(uv_connect_t *req, int status)
{
    struct harness_app *a = req->data;
    a->h->events++;
    if (status == 0)
        a->client_connected = 1;
    else
        a->status = status;
}

static void harness_on_connection(uv_stream_t *server, int status)
{
    struct harness *h = server->data;
    h->events++;
    if (status < 0)
        return;
    uv_tcp_t *t = malloc(sizeof(*t));
    if (!t)
        abort();
    uv_tcp_init(&h->loop, t);
    if (uv_accept(server, (uv_stream_t *)t) < 0) {
        uv_close((uv_handle_t *)t, harness_accepted_closed);
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uint16_t port = 0;
    if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len) == 0)
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    for (size_t i = 0; i < h->cfg->n; i++) {
        struct harness_app *a = &h->apps[i];
        if (a->client_port == port && !a->accepted) {
            a->accepted = t;
            /* As socks/server.c does with the sockets it bridges. */
            uv_tcp_nodelay(t, 1);
            if (h->cfg->bridge_sndbuf) {
                int v = h->cfg->bridge_sndbuf;
                uv_send_buffer_size((uv_handle_t *)t, &v);
            }
            return;
        }
    }
    uv_close((uv_handle_t *)t, harness_accepted_closed);
}

static int harness_setup_apps(struct harness *h)
{
    int rc = uv_tcp_init(&h->loop, &h->listener);
    if (rc < 0)
        return rc;
    h->listener.data = h;
    h->listener_open = 1;
    uv_ip4_addr("127.0.0.1", 0, &h->listen_addr);
    if ((rc = uv_tcp_bind(&h->listener, (const struct sockaddr *)&h->listen_addr, 0)) < 0 ||
        (rc = uv_listen((uv_stream_t *)&h->listener, 1024, harness_on_connection)) < 0)
        return rc;
    int len = sizeof(h->listen_addr);
    if ((rc = uv_tcp_getsockname(&h->listener, (struct sockaddr *)&h->listen_addr, &len)) < 0)
        return rc;
    for (size_t i = 0; i < h->cfg->n; i++) {
        struct harness_app *a = &h->apps[i];
        if ((rc = uv_tcp_init_ex(&h->loop, &a->client, AF_INET)) < 0)
            return rc;
        a->client.data = a;
        a->client_open = 1;
        /* Nagle's wait for an ACK would hold the application's small writes back in real time,
         * while virtual time runs on. */
        uv_tcp_nodelay(&a->client, 1);
        if (h->cfg->app_rcvbuf) {
            int v = h->cfg->app_rcvbuf;
            uv_recv_buffer_size((uv_handle_t *)&a->client, &v);
        }
        a->connect_req.data = a;
        if ((rc = uv_tcp_connect(&a->connect_req, &a->client, (const struct sockaddr *)&h->listen_addr,
                                 harness_client_connected)) < 0)
            return rc;
        struct sockaddr_storage ss;
        len = sizeof(ss);
        if ((rc = uv_tcp_getsockname(&a->client, (struct sockaddr *)&ss, &len)) < 0)
            return rc;
        a->client_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    /* Real time, but only for loopback handshakes: a few passes. */
    for (int pass = 0; pass < 100000; pass++) {
        size_t ready = 0;
        for (size_t i = 0; i < h->cfg->n; i++)
            ready += h->apps[i].client_connected && h->apps[i].accepted;
        if (ready == h->cfg->n)
            return 0;
        uv_run(&h->loop, UV_RUN_ONCE);
    }
    return -ETIMEDOUT;
}

/* --- the driver --- */

/* Whether the loop's epoll set has something ready that a pass has not handled yet. */
static int harness_loop_ready(struct harness *h)
{
    struct pollfd pfd = {.fd = uv_backend_fd(&h->loop), .events = POLLIN};
    return poll(&pfd, 1, 0) > 0;
}

/* Everything due at the current instant: packets on both links, the peer's timers, the
 * applications' starts and pauses, the tunnel's writable event. */
static void harness_due(struct harness *h)
{
    uint8_t pkt[HARNESS_PKT_MAX];
    size_t len;
    uint32_t now = harness_now_ms;
    while ((len = harness_link_take(h->up, now, pkt, sizeof(pkt))) > 0) {
        h->events++;
        harness_trace(h, "      >peer", 1, pkt, len, "");
        harness_peer_input(h->peer, now, pkt, len);
    }
    while ((len = harness_link_take(h->down, now, pkt, sizeof(pkt))) > 0) {
        h->events++;
        harness_trace(h, "stack<", 0, pkt, len, "");
        stack_input(h->stack, pkt, len);
    }
    uint32_t due;
    if (harness_peer_next(h->peer, &due) && due <= now) {
        h->events++;
        harness_peer_run_timers(h->peer, now);
    }
    if (h->congested && harness_link_backlog(h->up, now) <= h->cfg->tunnel_low) {
        h->events++;
        h->congested = 0;
        stack_tunnel_writable(h->stack);
    }
    for (size_t i = 0; i < h->cfg->n; i++) {
        struct harness_app *a = &h->apps[i];
        if (!a->started && h->t0 + a->x->start_ms <= now)
            harness_app_start(a);
        if (a->paused && a->resume_at <= now) {
            h->events++;
            a->paused = 0;
            harness_trace_app(a, "resumes after", a->x->app_pause_ms);
            if (a->bridged)
                harness_app_read_start(a);
        }
    }
}

/* Whether bytes are on their way from the bridge to an application that is reading, held back
 * in real time: in libuv's queue, waiting for room in the kernel; in the kernel, not yet sent
 * (the application's window update may be delayed); or, once the bridge has closed its socket,
 * still in that socket's buffer, which the kernel goes on sending before the FIN. An ACK or a
 * window update from the application's socket may wait for Linux's delayed-ACK timer (40 ms),
 * so the virtual clock must wait too. The other way needs no such care: the bridge stops reading
 * its application on purpose. */
static int harness_loopback_busy(struct harness *h)
{
    int busy = 0;
    for (size_t i = 0; i < h->cfg->n; i++) {
        struct harness_app *a = &h->apps[i];
        if (!a->reading || !a->bridged || !a->client_open || a->eof || a->outcome != HARNESS_APP_RUNNING ||
            uv_is_closing((const uv_handle_t *)&a->client))
            continue;
        int held = 0;
        uv_os_fd_t fd;
        if (!a->accepted) {
            held = 1; /* the bridge is done and the application has not seen the end yet */
        } else if (!uv_is_closing((const uv_handle_t *)a->accepted)) {
            int unsent = 0;
            held = uv_stream_get_write_queue_size((const uv_stream_t *)a->accepted) > 0 ||
                   (uv_fileno((const uv_handle_t *)a->accepted, &fd) == 0 && ioctl(fd, SIOCOUTQNSD, &unsent) == 0 &&
                    unsent > 0);
        }
        if (held) {
            /* Ask for the ACK now; Linux honours this while the connection is established. */
            harness_quickack(a);
            busy = 1;
        }
    }
    return busy;
}

/* Runs everything that can happen without the clock moving. */
static void harness_settle(struct harness *h)
{
    int quiet = 0;
    for (int pass = 0; quiet < 2; pass++) {
        if (pass == HARNESS_SETTLE_MAX) {
            h->livelock = 1;
            return;
        }
        uint64_t before = h->events;
        harness_due(h);
        uv_run(&h->loop, UV_RUN_NOWAIT);
        if (h->events != before || harness_loop_ready(h)) {
            quiet = 0;
        } else if (quiet == 1 && harness_loopback_busy(h) && h->waits < HARNESS_WAIT_MAX) {
            /* Give the kernel a millisecond of real time, then look again. */
            struct pollfd pfd = {.fd = uv_backend_fd(&h->loop), .events = POLLIN};
            poll(&pfd, 1, 1);
            h->waits++;
            quiet = 0;
        } else {
            quiet++;
        }
    }
}

static void harness_earliest(uint32_t t, int *any, uint32_t *best)
{
    if (!*any || t < *best) {
        *best = t;
        *any = 1;
    }
}

/* The next instant anything is due; 0 when nothing ever will be. */
static int harness_next(struct harness *h, uint32_t *next)
{
    int any = 0;
    uint32_t t;
    if (harness_link_next(h->up, &t))
        harness_earliest(t, &any, next);
    if (harness_link_next(h->down, &t))
        harness_earliest(t, &any, next);
    if (harness_peer_next(h->peer, &t))
        harness_earliest(t, &any, next);
    if (h->congested)
        harness_earliest(harness_link_backlog_time(h->up, h->cfg->tunnel_low), &any, next);
    for (size_t i = 0; i < h->cfg->n; i++) {
        const struct harness_app *a = &h->apps[i];
        if (!a->started)
            harness_earliest(h->t0 + a->x->start_ms, &any, next);
        if (a->paused)
            harness_earliest(a->resume_at, &any, next);
    }
    u32_t sleep = sys_timeouts_sleeptime();
    if (sleep != SYS_TIMEOUTS_SLEEPTIME_INFINITE)
        harness_earliest(harness_now_ms + sleep, &any, next);
    return any;
}

/* --- verdicts --- */

/* Whether transfer i is over: completed and closed at both ends, or failed for good. */
static int harness_finished(const struct harness *h, size_t i)
{
    const struct harness_app *a = &h->apps[i];
    if (a->outcome == HARNESS_APP_RUNNING || a->client_open)
        return 0;
    if (a->bridged && !a->bridge_done)
        return 0;
    if (a->outcome != HARNESS_APP_COMPLETED)
        return 1;
    struct harness_peer_status st;
    harness_peer_status(h->peer, i, &st);
    return st.reset_received || st.reset_sent || (st.fin_received && st.fin_acked);
}

/* Notes, at each instant, which transfers moved bytes (read by the application, taken in order
 * or acknowledged by the peer), and how long the others have stood still. */
static void harness_watch(struct harness *h)
{
    for (size_t i = 0; i < h->cfg->n; i++) {
        struct harness_app *a = &h->apps[i];
        if (!a->started || harness_finished(h, i))
            continue;
        struct harness_peer_status st;
        harness_peer_status(h->peer, i, &st);
        uint64_t progress = a->read + st.received + st.acked + (uint64_t)a->eof + (uint64_t)st.fin_received +
                            (uint64_t)st.fin_acked + (a->outcome != HARNESS_APP_RUNNING);
        if (progress != a->progress || !a->watched) {
            a->watched = 1;
            a->progress = progress;
            a->progress_ms = harness_now_ms;
            continue;
        }
        uint32_t idle = harness_now_ms - a->progress_ms;
        if (idle > a->stall_ms) {
            a->stall_ms = idle;
            a->stall_at = a->progress_ms;
        }
    }
}

static const char *const harness_kind_names[] = {"download", "upload", "echo"};

static const char *harness_tcp_state_name(enum tcp_state s)
{
    static const char *const names[] = {"CLOSED",     "LISTEN",     "SYN_SENT",   "SYN_RCVD",
                                        "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT",
                                        "CLOSING",    "LAST_ACK",   "TIME_WAIT"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* lwIP's view of the connection to the peer's port, read from its pcb lists. */
static void harness_describe_pcb(uint16_t port, char *buf, size_t cap)
{
    struct tcp_pcb *lists[] = {tcp_active_pcbs, tcp_tw_pcbs};
    for (size_t l = 0; l < 2; l++) {
        for (struct tcp_pcb *pcb = lists[l]; pcb; pcb = pcb->next) {
            if (pcb->remote_port != port)
                continue;
            unsigned n_unsent = 0, n_unacked = 0;
            for (struct tcp_seg *s = pcb->unsent; s; s = s->next)
                n_unsent++;
            for (struct tcp_seg *s = pcb->unacked; s; s = s->next)
                n_unacked++;
            char first[96] = "";
            if (pcb->unsent)
                snprintf(first, sizeof(first), " (first unsent at snd_nxt%+d, %u B%s)",
                         (int)(lwip_ntohl(pcb->unsent->tcphdr->seqno) - pcb->snd_nxt), pcb->unsent->len,
                         (TCPH_FLAGS(pcb->unsent->tcphdr) & TCP_FIN) ? " +FIN" : "");
            snprintf(buf, cap,
                     "lwIP pcb: %s, port %u; sent-unacked %u B, snd_wnd %u, cwnd %u, ssthresh %u; "
                     "unsent %u segs%s, unacked %u segs; rcv_wnd %u, announced %u; rto %d ms, rtime %d, "
                     "nrtx %u, persist backoff %u probes %u, dupacks %u, flags 0x%x",
                     harness_tcp_state_name(pcb->state), pcb->local_port, pcb->snd_nxt - pcb->lastack,
                     (unsigned)pcb->snd_wnd, (unsigned)pcb->cwnd, (unsigned)pcb->ssthresh, n_unsent, first,
                     n_unacked, (unsigned)pcb->rcv_wnd, (unsigned)pcb->rcv_ann_wnd,
                     pcb->rto * TCP_SLOW_INTERVAL, pcb->rtime, pcb->nrtx, pcb->persist_backoff,
                     pcb->persist_probe, pcb->dupacks, (unsigned)pcb->flags);
            return;
        }
    }
    snprintf(buf, cap, "lwIP pcb: none (freed, or let go by the bridge)");
}

/* What sits between the application and its bridge: in the kernel and in libuv's queues. */
static void harness_describe_loopback(const struct harness_app *a, char *buf, size_t cap)
{
    int client_rx = -1, client_tx = -1, acc_tx = -1, acc_unsent = -1;
    uv_os_fd_t fd;
    if (a->client_open && uv_fileno((const uv_handle_t *)&a->client, &fd) == 0) {
        ioctl(fd, FIONREAD, &client_rx);
        ioctl(fd, SIOCOUTQ, &client_tx);
    }
    size_t acc_queue = 0;
    if (a->accepted && uv_fileno((const uv_handle_t *)a->accepted, &fd) == 0) {
        ioctl(fd, SIOCOUTQ, &acc_tx);
        ioctl(fd, SIOCOUTQNSD, &acc_unsent);
        acc_queue = uv_stream_get_write_queue_size((const uv_stream_t *)a->accepted);
    }
    snprintf(buf, cap,
             "loopback: application %s%s, %d B to read, %d B not yet taken by the bridge, %zu B in uv "
             "queue; bridge side: %zu B in uv queue, %d B in kernel (%d unsent)",
             a->reading ? "reading" : "not reading", a->paused ? " (paused)" : "", client_rx, client_tx,
             a->client_open ? uv_stream_get_write_queue_size((const uv_stream_t *)&a->client) : 0, acc_queue, acc_tx,
             acc_unsent);
}

static void harness_report_one(const struct harness *h, size_t i, const char *verdict)
{
    const struct harness_app *a = &h->apps[i];
    const struct harness_transfer *x = a->x;
    char line[1024];
    fprintf(stderr, "  xfer %zu %s %u B (port %u, starts at %u ms%s%s): %s\n", i, harness_kind_names[x->kind], x->len,
            x->port, x->start_ms, x->reset_after ? ", reset by peer" : "",
            x->accept_drops ? ", accept queue full" : "", verdict);
    fprintf(stderr,
            "    app: sent %llu/%llu B (%llu queued)%s, read %llu/%llu B%s%s, %s%s, bridge %s%s; "
            "longest stall %u ms\n",
            (unsigned long long)a->written, (unsigned long long)a->to_send, (unsigned long long)a->queued,
            x->kind == HARNESS_DOWNLOAD ? "" : a->shut_done ? ", half-closed" : a->shut_sent ? ", half-closing" : "",
            (unsigned long long)a->read, (unsigned long long)a->expect, a->eof ? ", EOF" : ", no EOF",
            a->paused ? " (paused)" : "",
            a->status ? "error " : "", a->status ? uv_err_name(a->status) : "no error",
            a->bridge_done ? "done" : a->bridged ? "open" : "never started",
            a->connect_failed ? " (connect failed)" : "", a->stall_ms);
    if (a->error_where)
        fprintf(stderr, "    app error in: %s\n", a->error_where);
    if (a->client_open) {
        harness_describe_loopback(a, line, sizeof(line));
        fprintf(stderr, "    %s\n", line);
    }
    if (a->mismatch >= 0)
        fprintf(stderr, "    app: first wrong byte at offset %ld\n", a->mismatch);
    harness_describe_pcb(x->port, line, sizeof(line));
    fprintf(stderr, "    %s\n", line);
    harness_peer_describe(h->peer, i, harness_now_ms, line, sizeof(line));
    fprintf(stderr, "    %s\n", line);
}

/* Sorts every transfer into the result, reporting the failed ones (all of them when verbose). */
/* The longest silence a transfer may have (see stall_ms and reset_stall_ms in harness.h). */
static uint32_t harness_stall_bound(const struct harness_config *cfg, const struct harness_app *a)
{
    if (a->x->reset_after && a->outcome == HARNESS_APP_ERROR && cfg->reset_stall_ms > cfg->stall_ms)
        return cfg->reset_stall_ms;
    return cfg->stall_ms;
}

static void harness_judge(struct harness *h, struct harness_result *res)
{
    const struct harness_config *cfg = h->cfg;
    int header = 0;
    char stalled[96];
    res->bad_packets = harness_peer_bad_packets(h->peer);
    for (size_t i = 0; i < cfg->n; i++) {
        const struct harness_app *a = &h->apps[i];
        struct harness_peer_status st;
        harness_peer_status(h->peer, i, &st);
        if (a->stall_ms > res->max_stall_ms)
            res->max_stall_ms = a->stall_ms;
        const char *verdict;
        int bad = 1;
        if (st.after_fin) {
            res->corrupt++;
            verdict = "CORRUPT: the stack sent data after its FIN (its stream ended early at the peer)";
        } else if (a->outcome == HARNESS_APP_SHORT && a->mismatch < 0 && st.mismatch < 0 && a->bridge_reset &&
                   a->shut_sent) {
            /* The bridge reset the application's socket (SO_LINGER 0: the kernel sends RST, and
             * read() fails with ECONNRESET), but this application had half-closed, so the RST
             * shut its socket both ways and epoll reported POLLHUP; libuv (before 1.52) then
             * takes a short read as the last one and reports UV_EOF without reading the error.
             * A reset all the same: the peer's reset reached the application's socket. */
            if (a->x->reset_after) {
                res->reset_errors++;
                verdict = "error (the peer reset it: allowed; libuv showed the reset as EOF)";
                bad = 0;
            } else {
                res->errors++;
                verdict = "ERROR where none was injected (a reset libuv showed as EOF)";
            }
        } else if (a->mismatch >= 0 || st.mismatch >= 0 || a->outcome == HARNESS_APP_SHORT) {
            res->corrupt++;
            verdict = a->outcome == HARNESS_APP_SHORT ? "CORRUPT: clean EOF with bytes missing"
                                                        : "CORRUPT: a byte differs or is in excess";
        } else if (!harness_finished(h, i)) {
            res->hung++;
            verdict = "HUNG: neither complete nor failed by the deadline";
        } else if (cfg->stall_ms && a->stall_ms > harness_stall_bound(cfg, a)) {
            res->stalled++;
            snprintf(stalled, sizeof(stalled), "STALLED: moved no byte for %u ms from %u ms on", a->stall_ms,
                     a->stall_at - h->t0);
            verdict = stalled;
        } else if (a->outcome == HARNESS_APP_ERROR) {
            if (a->x->reset_after) {
                res->reset_errors++;
                verdict = "error (the peer reset it: allowed)";
                bad = 0;
            } else {
                res->errors++;
                verdict = "ERROR where none was injected";
            }
        } else if (a->x->reset_after) {
            res->unexpected++;
            verdict = "UNEXPECTED: completed although the peer reset it";
        } else {
            uint64_t peer_expect = a->x->kind == HARNESS_DOWNLOAD ? a->x->request_len : a->x->len;
            if (st.consumed != peer_expect) {
                res->corrupt++;
                verdict = "CORRUPT: the peer did not get every byte";
            } else {
                res->completed++;
                verdict = "completed";
                bad = 0;
            }
        }
        if ((!bad && !cfg->verbose) || cfg->quiet)
            continue;
        if (!header) {
            header = 1;
            fprintf(stderr, "stack_faults: %s seed %llu at %u ms virtual%s:\n", cfg->scenario,
                    (unsigned long long)cfg->seed, harness_now_ms - h->t0, h->livelock ? " (LIVELOCK: the loop never settled)" : "");
            fprintf(stderr, "  replay: V2S_HARNESS_SEED=%llu unit_tests %s\n", (unsigned long long)cfg->seed,
                    cfg->test);
        }
        harness_report_one(h, i, verdict);
    }
    if (res->bad_packets && !cfg->quiet)
        fprintf(stderr, "stack_faults: %s seed %llu: %llu malformed packets from the stack\n", cfg->scenario,
                (unsigned long long)cfg->seed, (unsigned long long)res->bad_packets);
    if (cfg->verbose)
        fprintf(stderr, "  %u real-time waits of 1 ms for loopback sockets\n", h->waits);
    if ((header || cfg->verbose) && !cfg->quiet) {
        const struct harness_link_stats *u = harness_link_stats(h->up), *d = harness_link_stats(h->down);
        fprintf(stderr,
                "  links: up %llu sent, %llu lost, %llu queue drops, %llu dup, %llu reordered; "
                "down %llu sent, %llu lost, %llu queue drops, %llu dup, %llu reordered\n",
                (unsigned long long)u->sent, (unsigned long long)u->dropped, (unsigned long long)u->queue_drops,
                (unsigned long long)u->duplicated, (unsigned long long)u->reordered, (unsigned long long)d->sent,
                (unsigned long long)d->dropped, (unsigned long long)d->queue_drops,
                (unsigned long long)d->duplicated, (unsigned long long)d->reordered);
    }
}

/* --- one run --- */

static void harness_stack_closed(void *arg)
{
    struct harness *h = arg;
    h->stack_closed = 1;
}

static void harness_count_handle(uv_handle_t *handle, void *arg)
{
    (void)handle;
    (*(int *)arg)++;
}

/* Closes everything still open; the stack resets what is left of its connections. */
static void harness_teardown(struct harness *h, struct harness_result *res)
{
    if (h->stack)
        stack_close(h->stack, harness_stack_closed, h);
    for (size_t i = 0; i < h->cfg->n; i++) {
        struct harness_app *a = &h->apps[i];
        if (a->client_open && !uv_is_closing((uv_handle_t *)&a->client))
            uv_close((uv_handle_t *)&a->client, harness_app_closed);
        if (a->accepted && !a->bridged) {
            uv_close((uv_handle_t *)a->accepted, harness_accepted_closed);
            a->accepted = NULL;
        }
    }
    if (h->listener_open)
        uv_close((uv_handle_t *)&h->listener, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    int open = 0;
    uv_walk(&h->loop, harness_count_handle, &open);
    if (open || (h->stack && !h->stack_closed) || uv_loop_close(&h->loop) != 0) {
        res->leaked = 1;
        fprintf(stderr, "stack_faults: %s seed %llu: %d handles left open after the stack closed%s\n",
                h->cfg->scenario, (unsigned long long)h->cfg->seed, open,
                h->stack && !h->stack_closed ? " (the stack never called back)" : "");
    }
}

int harness_run(const struct harness_config *cfg, struct harness_result *res)
{
    memset(res, 0, sizeof(*res));
    struct harness *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->cfg = cfg;
    const char *trace = getenv("V2S_HARNESS_TRACE");
    h->trace_port = trace && *trace ? strtol(trace, NULL, 10) : -1;
    int rc = uv_loop_init(&h->loop);
    if (rc < 0) {
        free(h);
        return rc;
    }
    h->t0 = harness_now_ms;
    uint32_t deadline = h->t0 + cfg->deadline_ms;
    stack_sys_set_clock(harness_clock);
    /* lwIP's ISNs and ports and the stack's jitter come from the seed too: a replay is exact. */
    harness_rand_init(&harness_stack_rand, cfg->seed, 0x5354414bU);
    stack_sys_set_random(harness_stack_random);
    h->apps = calloc(cfg->n ? cfg->n : 1, sizeof(*h->apps));
    h->up_rand = calloc(cfg->n ? cfg->n : 1, sizeof(*h->up_rand));
    h->down_rand = calloc(cfg->n ? cfg->n : 1, sizeof(*h->down_rand));
    struct harness_link_faults up = cfg->up, down = cfg->down;
    if (up.blackhole_at)
        up.blackhole_at += h->t0;
    if (down.blackhole_at)
        down.blackhole_at += h->t0;
    h->up = harness_link_new(&up);
    h->down = harness_link_new(&down);
    struct harness_peer_config pc = cfg->peer;
    pc.seed = cfg->seed;
    pc.addr = HARNESS_PEER_ADDR;
    pc.send = harness_peer_send;
    pc.arg = h;
    h->peer = harness_peer_new(&pc, cfg->xfers, cfg->n);
    if (!h->apps || !h->up_rand || !h->down_rand || !h->up || !h->down || !h->peer)
        abort(); /* a test host out of memory */
    harness_rand_init(&h->stray_rand, cfg->seed, 0x737472617900ULL);
    for (size_t i = 0; i < cfg->n; i++) {
        struct harness_app *a = &h->apps[i];
        const struct harness_transfer *x = &cfg->xfers[i];
        a->h = h;
        a->index = i;
        a->x = x;
        a->mismatch = -1;
        a->to_send = x->kind == HARNESS_DOWNLOAD ? x->request_len : x->len;
        a->expect = x->kind == HARNESS_UPLOAD ? 0 : x->len;
        harness_rand_init(&h->up_rand[i], cfg->seed, 0x7570000000ULL | x->port);
        harness_rand_init(&h->down_rand[i], cfg->seed, 0x646f776e00ULL | x->port);
    }

    h->tunnel.ops = &harness_tunnel_ops;
    if ((rc = stack_new(&h->stack, &h->loop, &h->tunnel)) < 0) {
        h->stack = NULL;
        goto out;
    }
    struct tunnel_settings ts;
    tunnel_settings_init(&ts);
    ts.addr4.family = AF_INET;
    uint32_t be = htonl(HARNESS_STACK_ADDR);
    memcpy(ts.addr4.bytes, &be, 4);
    ts.prefix4 = 24;
    ts.mtu = 1400;
    if (cfg->rx_high)
        h->stack->rx_high = cfg->rx_high;
    rc = stack_tunnel_up(h->stack, &ts);
    tunnel_settings_free(&ts);
    if (rc < 0)
        goto out;
    if ((rc = harness_setup_apps(h)) < 0)
        goto out;

    uint32_t stuck = 0;
    for (;;) {
        harness_settle(h);
        harness_watch(h);
        size_t done = 0;
        for (size_t i = 0; i < cfg->n; i++)
            done += harness_finished(h, i);
        if (done == cfg->n || h->livelock)
            break;
        uint32_t next = 0;
        if (!harness_next(h, &next) || next > deadline) {
            /* Nothing will ever happen again, or not before the deadline: what is open hangs. */
            harness_now_ms = deadline;
            break;
        }
        if (next > harness_now_ms) {
            harness_now_ms = next;
            stuck = 0;
        } else if (++stuck > 1000) {
            harness_now_ms++; /* something claims to be due but never runs: move on */
        }
        sys_check_timeouts();
    }
    res->end_ms = harness_now_ms - h->t0;
    res->rx_held_peak = h->stack->rx_held_peak;
    res->withholds = (unsigned long)h->stack->withholds;
    res->over_bound = cfg->rx_bound && res->rx_held_peak > cfg->rx_bound;
    harness_judge(h, res);
out:
    harness_teardown(h, res);
    stack_sys_set_clock(NULL);
    stack_sys_set_random(NULL);
    res->failed = rc < 0 || res->errors || res->hung || res->corrupt || res->unexpected || res->stalled ||
                  res->bad_packets || res->leaked || res->over_bound || h->livelock;
    harness_peer_free(h->peer);
    harness_link_free(h->up);
    harness_link_free(h->down);
    for (size_t i = 0; i < cfg->n; i++)
        free(h->apps[i].accepted);
    free(h->apps);
    free(h->up_rand);
    free(h->down_rand);
    free(h);
    return rc;
}
