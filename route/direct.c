/* Direct connections: a host socket to the destination, relayed to the application's socket.
 * An EOF becomes a shutdown of the other side (libuv runs it after the queued writes); an error on
 * either side resets both.
 *
 * Backpressure, and the memory it bounds. Every read lands in one buffer shared by all relays (the
 * loop is single-threaded and libuv calls alloc, read and read_cb back to back), and exactly the
 * bytes read are copied into a write request of their own size. What a side counts against
 * DIRECT_QUEUE_HIGH is the memory its pending writes hold, header and allocator overhead included,
 * not the bytes they carry: reading that side stops once the count is above the mark and resumes
 * from the write callback when it is back under. This was measured: when each read took a 64 KiB
 * block and only the bytes read were counted, a peer sending one-byte segments to a client that
 * had stopped reading grew the process by 24 to 168 MiB over 100,000 segments
 * (tests/proc/direct_memory_test.py): a one-byte read held 64 KiB and counted as one byte.
 *
 * Worst case per direct connection: per direction DIRECT_QUEUE_HIGH plus the one write that crossed
 * it (a header and DIRECT_READ_SIZE), about 1.06 MiB, so about 2.1 MiB for both, plus the
 * struct direct_conn (under 1 KiB). The shared read buffer is 64 KiB for the whole process. */
#include "route/direct.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/list.h"
#include "base/log.h"
#include "base/uvstream.h"
#include "route/dgram.h"
#include "route/outbound.h"

enum {
    DIRECT_READ_SIZE = 64 * 1024,
    DIRECT_QUEUE_HIGH = 1024 * 1024,
    /* What malloc adds to a block: glibc keeps an 8-byte size field and rounds up to 16. */
    DIRECT_ALLOC_OVERHEAD = 32,
};

enum direct_state {
    DIRECT_CONNECTING,
    DIRECT_CONNECTED,
    DIRECT_BRIDGED,
    DIRECT_CLOSING,
};

struct direct {
    struct outbound ob;
    uv_loop_t *loop;
    struct v2s_list conns; /* every live connection, for direct_close() */
    struct v2s_list udps;  /* every UDP association until it is freed */
    int closing;
};

struct direct_side {
    struct direct_conn *c;
    uv_tcp_t *h;
    struct direct_side *peer;
    uv_shutdown_t shutdown_req;
    uint64_t bytes; /* read from this side */
    size_t queued;  /* memory held by writes of what was read from this side, not yet completed */
    unsigned reading : 1;
    unsigned eof : 1;
    unsigned shut_done : 1; /* this side's write direction is shut */
};

struct direct_conn {
    struct outbound_conn base;
    struct v2s_list node; /* on struct direct's conns */
    uv_tcp_t remote;
    uv_connect_t connect_req;
    uv_timer_t timer;
    enum direct_state state;
    int handles_open;
    int reset;
    struct direct_side side[2]; /* 0: application, 1: remote */
    outbound_connect_cb connect_cb;
    void *arg;
    outbound_done_cb done;
    void *done_arg;
    char label[OUTBOUND_LABEL_MAX];
};

struct direct_write {
    uv_write_t req;
    struct direct_side *from;
    size_t cost; /* counted in from->queued */
    char data[];
};

/* Every read lands here first; see the top of the file. */
static char direct_read_buf[DIRECT_READ_SIZE];

static struct direct *direct_of(struct outbound *ob)
{
    return (struct direct *)ob;
}

static void direct_maybe_free(struct direct *d)
{
    if (d->closing && v2s_list_empty(&d->conns) && v2s_list_empty(&d->udps))
        outbound_free_closed(&d->ob, d);
}

static void direct_handle_closed(uv_handle_t *h)
{
    struct direct_conn *c = h->data;
    if (--c->handles_open > 0)
        return;
    struct direct *d = direct_of(c->base.ob);
    v2s_list_remove(&c->node);
    if (c->done) {
        outbound_log_closed(c->label, c->reset, c->side[0].bytes, c->side[1].bytes);
        c->done(c->done_arg);
    }
    free(c);
    direct_maybe_free(d);
}

/* Closes every handle; with reset both sockets send RST. */
static void direct_end(struct direct_conn *c, int reset)
{
    if (c->state == DIRECT_CLOSING)
        return;
    int bridged = c->state == DIRECT_BRIDGED;
    c->state = DIRECT_CLOSING;
    c->reset = reset;
    c->handles_open = 2 + bridged;
    if (reset) {
        outbound_set_reset(&c->remote);
        if (bridged)
            outbound_set_reset(c->side[0].h);
    }
    uv_close((uv_handle_t *)&c->timer, direct_handle_closed);
    uv_close((uv_handle_t *)&c->remote, direct_handle_closed);
    if (bridged)
        uv_close((uv_handle_t *)c->side[0].h, direct_handle_closed);
}

static void direct_connect_timeout(uv_timer_t *t)
{
    struct direct_conn *c = t->data;
    outbound_connect_cb cb = c->connect_cb;
    void *arg = c->arg;
    direct_end(c, 1);
    cb(arg, NULL, UV_ETIMEDOUT, NULL, 0);
}

static void direct_local(const struct direct_conn *c, struct v2s_addr *addr, uint16_t *port)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    memset(addr, 0, sizeof(*addr));
    *port = 0;
    if (uv_tcp_getsockname(&c->remote, (struct sockaddr *)&ss, &len) < 0)
        return;
    v2s_addr_from_sockaddr((const struct sockaddr *)&ss, addr, port);
}

static void direct_connected(uv_connect_t *req, int status)
{
    struct direct_conn *c = req->data;
    if (c->state != DIRECT_CONNECTING)
        return; /* timed out or cancelled: the close already owns c */
    uv_timer_stop(&c->timer);
    if (status < 0) {
        outbound_connect_cb cb = c->connect_cb;
        void *arg = c->arg;
        direct_end(c, 0);
        cb(arg, NULL, status, NULL, 0);
        return;
    }
    c->state = DIRECT_CONNECTED;
    struct v2s_addr bound;
    uint16_t bound_port;
    direct_local(c, &bound, &bound_port);
    c->connect_cb(c->arg, &c->base, 0, &bound, bound_port);
}

static int direct_connect(struct outbound *ob, const char *name, const struct v2s_addr *dst, uint16_t port,
                          unsigned timeout_ms, outbound_connect_cb cb, void *arg, struct outbound_conn **out)
{
    struct direct *d = direct_of(ob);
    struct sockaddr_storage ss;
    if (name || v2s_addr_to_sockaddr(dst, port, &ss) < 0)
        return UV_EINVAL;
    if (d->closing)
        return UV_ECANCELED;
    struct direct_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return UV_ENOMEM;
    c->base.ob = ob;
    v2s_list_init(&c->node);
    v2s_list_push_front(&d->conns, &c->node);
    uv_tcp_init(d->loop, &c->remote);
    uv_timer_init(d->loop, &c->timer);
    c->remote.data = c;
    c->timer.data = c;
    c->connect_req.data = c;
    c->connect_cb = cb;
    c->arg = arg;
    int rc = uv_tcp_connect(&c->connect_req, &c->remote, (const struct sockaddr *)&ss, direct_connected);
    if (rc < 0) {
        c->connect_cb = NULL;
        direct_end(c, 0);
        return rc;
    }
    uv_timer_start(&c->timer, direct_connect_timeout, timeout_ms, 0);
    *out = &c->base;
    return 0;
}

static void direct_cancel(struct outbound_conn *base)
{
    direct_end((struct direct_conn *)base, 1);
}

static void direct_udp_end_all(struct direct *d);

/* Resets every direct relay and pending direct connection (the process is stopping) and ends every
 * UDP association; d is freed once the last one's handles are closed. */
static void direct_close(struct outbound *ob)
{
    struct direct *d = direct_of(ob);
    d->closing = 1;
    struct v2s_list *n;
    /* direct_end() only starts closes: every connection stays on the list until its handles are
     * closed, so walking it here is safe. */
    V2S_LIST_FOREACH(n, &d->conns) {
        struct direct_conn *c = V2S_LIST_ENTRY(n, struct direct_conn, node);
        if (c->state == DIRECT_CONNECTING) {
            /* The dial waiting on it learns through its callback, as on a timeout. */
            outbound_connect_cb cb = c->connect_cb;
            void *arg = c->arg;
            direct_end(c, 1);
            if (cb)
                cb(arg, NULL, UV_ECANCELED, NULL, 0);
        } else {
            direct_end(c, 1);
        }
    }
    /* UDP associations end too; each is freed once its owner closed it and its sockets are. */
    direct_udp_end_all(d);
    direct_maybe_free(d);
}

static void direct_read_start(struct direct_side *s);

static void direct_maybe_finish(struct direct_conn *c)
{
    if (c->side[0].shut_done && c->side[1].shut_done)
        direct_end(c, 0);
}

static void direct_shutdown_cb(uv_shutdown_t *req, int status)
{
    struct direct_side *s = req->data;
    if (s->c->state != DIRECT_BRIDGED)
        return;
    if (status < 0) {
        direct_end(s->c, 1);
        return;
    }
    s->shut_done = 1;
    direct_maybe_finish(s->c);
}

static void direct_write_cb(uv_write_t *req, int status)
{
    struct direct_write *w = (struct direct_write *)req;
    struct direct_side *from = w->from;
    assert(from->queued >= w->cost);
    from->queued -= w->cost;
    free(w);
    if (from->c->state != DIRECT_BRIDGED)
        return;
    if (status < 0) {
        direct_end(from->c, 1);
        return;
    }
    direct_read_start(from);
}

/* Writes len bytes read from side from to its peer; the copy is counted in from->queued until its
 * write completes. 0 or a negative uv error (nothing queued then). */
static int direct_forward(struct direct_side *from, const char *data, size_t len)
{
    struct direct_write *w = malloc(sizeof(*w) + len);
    if (!w)
        return UV_ENOMEM;
    memcpy(w->data, data, len);
    w->from = from;
    w->cost = sizeof(*w) + len + DIRECT_ALLOC_OVERHEAD;
    uv_buf_t out = uv_buf_init(w->data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)from->peer->h, &out, 1, direct_write_cb);
    if (rc < 0) {
        free(w);
        return rc;
    }
    from->queued += w->cost;
    return 0;
}

static void direct_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(direct_read_buf, sizeof(direct_read_buf));
}

static struct direct_side *direct_side_of(uv_stream_t *h)
{
    struct direct_conn *c = h->data;
    return (uv_tcp_t *)h == &c->remote ? &c->side[1] : &c->side[0];
}

static void direct_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct direct_side *s = direct_side_of(h);
    if (nread <= 0 || s->c->state != DIRECT_BRIDGED) {
        if (nread == 0 || s->c->state != DIRECT_BRIDGED)
            return;
        if (nread == UV_EOF)
            nread = v2s_eof_or_error(h); /* a reset after data ends as a reset (base/uvstream.h) */
        if (nread == UV_EOF) {
            uv_read_stop(h);
            s->reading = 0;
            s->eof = 1;
            s->peer->shutdown_req.data = s->peer;
            if (uv_shutdown(&s->peer->shutdown_req, (uv_stream_t *)s->peer->h, direct_shutdown_cb) < 0)
                direct_end(s->c, 1);
            return;
        }
        direct_end(s->c, 1);
        return;
    }
    s->bytes += (uint64_t)nread;
    if (direct_forward(s, buf->base, (size_t)nread) < 0) {
        direct_end(s->c, 1);
        return;
    }
    if (s->queued > DIRECT_QUEUE_HIGH) {
        uv_read_stop(h);
        s->reading = 0;
    }
}

static void direct_read_start(struct direct_side *s)
{
    if (s->reading || s->eof || s->c->state != DIRECT_BRIDGED)
        return;
    if (s->queued > DIRECT_QUEUE_HIGH)
        return;
    if (v2s_read_take((uv_stream_t *)s->h, direct_alloc_cb, direct_read_cb) == 0)
        s->reading = 1;
}

static void direct_bridge(struct outbound_conn *base, uv_tcp_t *app, const uint8_t *early, size_t n,
                          const char *label, outbound_done_cb done, void *arg)
{
    struct direct_conn *c = (struct direct_conn *)base;
    c->state = DIRECT_BRIDGED;
    c->done = done;
    c->done_arg = arg;
    snprintf(c->label, sizeof(c->label), "%s", label);
    outbound_log_open(c->label);
    app->data = c;
    for (int i = 0; i < 2; i++) {
        c->side[i].c = c;
        c->side[i].peer = &c->side[1 - i];
    }
    c->side[0].h = app;
    c->side[1].h = &c->remote;
    if (n > 0) {
        c->side[0].bytes += n;
        if (direct_forward(&c->side[0], (const char *)early, n) < 0) {
            direct_end(c, 1);
            return;
        }
    }
    direct_read_start(&c->side[0]);
    direct_read_start(&c->side[1]);
}

/* --- datagrams ---
 *
 * An association has a host UDP socket per family, each opened on the first datagram to an
 * address of its family and bound to the wildcard address and a port the kernel picks. One
 * socket per family rather than one dual-stack IPv6 socket: a host or container without IPv6
 * (ipv6.disable=1) still carries IPv4, and no address is ever seen in its v4-mapped form.
 * A datagram goes out through dgram_send() (route/dgram.h), whose queue is bounded by
 * DIRECT_UDP_QUEUE_MAX bytes: past that it is dropped (UV_ENOBUFS), as a full interface queue drops. */
enum {
    DIRECT_UDP_QUEUE_MAX = 256 * 1024,
};

struct direct_udp {
    struct outbound_udp base;
    struct v2s_list node;  /* on struct direct's udps */
    uv_udp_t h[2];         /* [0] IPv4, [1] IPv6 */
    unsigned opened[2];    /* h[i] initialised (and so owed a uv_close) */
    int failed[2];         /* why h[i] could not be opened, when its family fails the same way
                            * after (no such family here; a handle that failed after init) */
    int handles_open;
    int ended;             /* the handles are closing: nothing more goes or comes */
    int released;          /* its owner called outbound_udp_close() */
    outbound_udp_recv_cb recv;
    void *arg;
};

static void direct_udp_maybe_free(struct direct_udp *u)
{
    if (!u->released || u->handles_open > 0)
        return;
    struct direct *d = direct_of(u->base.ob);
    v2s_list_remove(&u->node);
    free(u);
    direct_maybe_free(d);
}

static void direct_udp_handle_closed(uv_handle_t *h)
{
    struct direct_udp *u = h->data;
    u->handles_open--;
    direct_udp_maybe_free(u);
}

static void direct_udp_end(struct direct_udp *u)
{
    if (u->ended)
        return;
    u->ended = 1;
    for (int i = 0; i < 2; i++) {
        if (u->opened[i]) {
            u->handles_open++;
            uv_close((uv_handle_t *)&u->h[i], direct_udp_handle_closed);
        }
    }
}

static void direct_udp_end_all(struct direct *d)
{
    struct v2s_list *n;
    /* Ending only starts closes: nothing leaves the list here. */
    V2S_LIST_FOREACH(n, &d->udps)
        direct_udp_end(V2S_LIST_ENTRY(n, struct direct_udp, node));
}

static void direct_udp_recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                               unsigned flags)
{
    struct direct_udp *u = h->data;
    struct v2s_addr from;
    uint16_t port;
    (void)flags;
    /* 0 with no address: the socket had nothing more; an error on an unconnected UDP socket
     * names no datagram of ours worth passing on. */
    if (nread < 0 || !addr || u->ended)
        return;
    if (v2s_addr_from_sockaddr(addr, &from, &port) < 0)
        return;
    u->recv(u->arg, &from, port, (const uint8_t *)buf->base, (size_t)nread);
}

/* Opens the socket of family index i (0: IPv4, 1: IPv6). 0 or a uv error. */
static int direct_udp_socket(struct direct_udp *u, int i)
{
    struct direct *d = direct_of(u->base.ob);
    int rc = uv_udp_init_ex(d->loop, &u->h[i], i ? AF_INET6 : AF_INET);
    if (rc < 0) {
        /* No socket, and no handle to close. Only a family the host lacks is kept: out of
         * descriptors or memory passes, and keeping it failed every later datagram of the
         * association (direct_outbound_udp_emfile). */
        if (rc == UV_EAFNOSUPPORT || rc == UV_EPROTONOSUPPORT)
            u->failed[i] = rc;
        return rc;
    }
    u->opened[i] = 1;
    u->h[i].data = u;
    struct sockaddr_storage any;
    memset(&any, 0, sizeof(any));
    any.ss_family = i ? AF_INET6 : AF_INET;
    rc = uv_udp_bind(&u->h[i], (const struct sockaddr *)&any, 0);
    if (rc == 0)
        rc = uv_udp_recv_start(&u->h[i], direct_alloc_cb, direct_udp_recv_cb);
    if (rc < 0) {
        u->opened[i] = 0;
        u->failed[i] = rc;
        u->handles_open++;
        uv_close((uv_handle_t *)&u->h[i], direct_udp_handle_closed);
    }
    return rc;
}

static int direct_udp_open(struct outbound *ob, outbound_udp_recv_cb recv, void *arg, struct outbound_udp **out)
{
    struct direct *d = direct_of(ob);
    if (d->closing)
        return UV_ECANCELED;
    struct direct_udp *u = calloc(1, sizeof(*u));
    if (!u)
        return UV_ENOMEM;
    u->base.ob = ob;
    u->recv = recv;
    u->arg = arg;
    v2s_list_init(&u->node);
    v2s_list_push_front(&d->udps, &u->node);
    *out = &u->base;
    return 0;
}

static int direct_udp_send(struct outbound_udp *base, const char *name, const struct v2s_addr *dst, uint16_t port,
                           const uint8_t *data, size_t len)
{
    struct direct_udp *u = (struct direct_udp *)base;
    struct sockaddr_storage ss;
    if (name || v2s_addr_to_sockaddr(dst, port, &ss) < 0)
        return UV_EINVAL;
    if (u->ended)
        return UV_ECANCELED;
    int i = dst->family == AF_INET6;
    int rc;
    if (u->failed[i])
        return u->failed[i];
    if (!u->opened[i] && (rc = direct_udp_socket(u, i)) < 0)
        return rc;
    return dgram_send(&u->h[i], (const struct sockaddr *)&ss, NULL, 0, data, len, DIRECT_UDP_QUEUE_MAX);
}

static void direct_udp_close(struct outbound_udp *base)
{
    struct direct_udp *u = (struct direct_udp *)base;
    u->released = 1;
    direct_udp_end(u);
    direct_udp_maybe_free(u);
}

static const struct outbound_ops direct_ops = {
    .connect = direct_connect,
    .cancel = direct_cancel,
    .bridge = direct_bridge,
    .close = direct_close,
    .udp_open = direct_udp_open,
    .udp_send = direct_udp_send,
    .udp_close = direct_udp_close,
};

int direct_new(struct outbound **out, uv_loop_t *loop)
{
    struct direct *d = calloc(1, sizeof(*d));
    if (!d)
        return UV_ENOMEM;
    d->ob.ops = &direct_ops;
    d->ob.name = "direct";
    d->loop = loop;
    v2s_list_init(&d->conns);
    v2s_list_init(&d->udps);
    *out = &d->ob;
    return 0;
}
