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

#include "base/log.h"

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
    struct direct_conn *next, *prev; /* every live one, for direct_abort_all() */
    uv_tcp_t remote;
    uv_connect_t connect_req;
    uv_timer_t timer;
    enum direct_state state;
    int handles_open;
    int reset;
    struct direct_side side[2]; /* 0: application, 1: remote */
    direct_connect_cb connect_cb;
    void *arg;
    direct_done_cb done;
    void *done_arg;
    char label[320];
};

struct direct_write {
    uv_write_t req;
    struct direct_side *from;
    size_t cost; /* counted in from->queued */
    char data[];
};

static struct direct_conn *direct_all;

/* Every read lands here first; see the top of the file. */
static char direct_read_buf[DIRECT_READ_SIZE];

static void direct_link(struct direct_conn *c)
{
    c->next = direct_all;
    if (direct_all)
        direct_all->prev = c;
    direct_all = c;
}

static void direct_unlink(struct direct_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        direct_all = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

static void direct_handle_closed(uv_handle_t *h)
{
    struct direct_conn *c = h->data;
    if (--c->handles_open > 0)
        return;
    direct_unlink(c);
    if (c->done) {
        v2s_info("%s closed%s (%llu bytes up, %llu down)", c->label, c->reset ? " by reset" : "",
                 (unsigned long long)c->side[0].bytes, (unsigned long long)c->side[1].bytes);
        c->done(c->done_arg);
    }
    free(c);
}

static void direct_set_reset(uv_tcp_t *h)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)h, &fd) == 0) {
        struct linger l = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
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
        direct_set_reset(&c->remote);
        if (bridged)
            direct_set_reset(c->side[0].h);
    }
    uv_close((uv_handle_t *)&c->timer, direct_handle_closed);
    uv_close((uv_handle_t *)&c->remote, direct_handle_closed);
    if (bridged)
        uv_close((uv_handle_t *)c->side[0].h, direct_handle_closed);
}

static void direct_connect_timeout(uv_timer_t *t)
{
    struct direct_conn *c = t->data;
    direct_connect_cb cb = c->connect_cb;
    void *arg = c->arg;
    direct_end(c, 1);
    cb(arg, NULL, UV_ETIMEDOUT);
}

static void direct_connected(uv_connect_t *req, int status)
{
    struct direct_conn *c = req->data;
    if (c->state != DIRECT_CONNECTING)
        return; /* timed out or cancelled: the close already owns c */
    uv_timer_stop(&c->timer);
    if (status < 0) {
        direct_connect_cb cb = c->connect_cb;
        void *arg = c->arg;
        direct_end(c, 0);
        cb(arg, NULL, status);
        return;
    }
    c->state = DIRECT_CONNECTED;
    c->connect_cb(c->arg, c, 0);
}

int direct_connect(uv_loop_t *loop, const struct v2s_addr *dst, uint16_t port, unsigned timeout_ms,
                   direct_connect_cb cb, void *arg, struct direct_conn **out)
{
    struct sockaddr_storage ss;
    if (v2s_addr_to_sockaddr(dst, port, &ss) < 0)
        return UV_EINVAL;
    struct direct_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return UV_ENOMEM;
    direct_link(c);
    uv_tcp_init(loop, &c->remote);
    uv_timer_init(loop, &c->timer);
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
    *out = c;
    return 0;
}

void direct_cancel(struct direct_conn *c)
{
    direct_end(c, 1);
}

void direct_abort_all(void)
{
    for (struct direct_conn *c = direct_all; c; c = c->next) {
        if (c->state == DIRECT_CONNECTING) {
            /* The dial waiting on it learns through its callback, as on a timeout. */
            direct_connect_cb cb = c->connect_cb;
            void *arg = c->arg;
            direct_end(c, 1);
            if (cb)
                cb(arg, NULL, UV_ECANCELED);
        } else {
            direct_end(c, 1);
        }
    }
}

void direct_local(const struct direct_conn *c, struct v2s_addr *addr, uint16_t *port)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    memset(addr, 0, sizeof(*addr));
    *port = 0;
    if (uv_tcp_getsockname(&c->remote, (struct sockaddr *)&ss, &len) < 0)
        return;
    v2s_addr_from_sockaddr((const struct sockaddr *)&ss, addr, port);
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
    if (uv_read_start((uv_stream_t *)s->h, direct_alloc_cb, direct_read_cb) == 0)
        s->reading = 1;
}

void direct_bridge_start(struct direct_conn *c, uv_tcp_t *app, const uint8_t *early, size_t n,
                         const char *label, direct_done_cb done, void *arg)
{
    c->state = DIRECT_BRIDGED;
    c->done = done;
    c->done_arg = arg;
    snprintf(c->label, sizeof(c->label), "%s", label);
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
