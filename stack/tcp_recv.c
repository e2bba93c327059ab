/* TCP through the tunnel, the bridge's receive path: what lwIP received goes to the application's
 * socket, and the window opens only as the application takes it.
 *
 * Backpressure, tunnel to application: every pbuf lwIP hands over is kept until uv_write() has
 * given its bytes to the application socket, and only then is tcp_recved() called. The advertised
 * window therefore bounds what we buffer. Refusing data instead would park it until lwIP's 250 ms
 * timer retries, so we never refuse.
 *
 * Memory, tunnel to application: the window bounds payload, not memory, and a peer sending
 * 1-byte segments makes each byte cost a buffer. So a run of segments of at most STACK_TCP_SMALL
 * bytes is copied together into buffers that double from STACK_TCP_COALESCE_MIN to
 * STACK_TCP_COALESCE_MAX bytes (so a short run wastes little), and only one uv_write() per
 * connection is in flight: what arrives meanwhile waits and goes in the next one, instead of a
 * request and its buffers per batch.
 *
 * Segments for the application are gathered until the end of the poll phase (or STACK_TCP_RXQ_FLUSH
 * of them) and written with one writev(): one system call and one wakeup of the application per
 * batch, not per segment. How far the window opens once the application has the bytes is the
 * connection's budget (tcp_budget.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "base/log.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "stack/tcp_internal.h"

enum {
    STACK_TCP_RXQ = 16, /* rxq's first size: most connections never hold more */
    /* A batch this long is written at once. A coalesced read from the tunnel (a UDP drain
     * period, a TCP low-water read) brings ~75 segments per connection at 100 MiB/s: in the
     * bench's UDP AES-256-GCM download, flushing at 16 made 52 writev() per MiB of ~20 KB, each
     * a loopback segment and a wakeup of the application; at 64, 18 per MiB of ~57 KB, and the
     * client's CPU per GiB fell by a tenth. The descriptors of 64 single-pbuf segments fit in
     * stack_tcp_flush()'s array on the stack. */
    STACK_TCP_RXQ_FLUSH = 64,
    STACK_TCP_SMALL = 512,
    STACK_TCP_COALESCE_MIN = 256,
    STACK_TCP_COALESCE_MAX = 8192,
    /* What a buffer costs beyond its payload, as counted against a connection's share: the pbuf,
     * the IP and TCP headers it keeps, the allocator's own word. An estimate, on the high side. */
    STACK_TCP_PBUF_COST = 128,
};

/* len bytes are in the application's socket: now, and only now, open the window by as much (within
 * the connection's budget). */
static void stack_tcp_app_wrote(struct stack_tcp *c, size_t len)
{
    c->bytes_down += len;
    c->withheld += len;
    c->since_grow += len;
    stack_tcp_open_window(c);
    stack_tcp_maybe_shutdown_app(c);
}

static int stack_tcp_flush(struct stack_tcp *c);

static void stack_tcp_app_write_cb(uv_write_t *req, int status)
{
    struct stack_tcp_write *w = (struct stack_tcp_write *)req;
    struct stack_tcp *c = w->c;
    size_t len = w->len;
    for (unsigned i = 0; i < w->n; i++)
        pbuf_free(w->rx[i].p);
    stack_tcp_hold(c, 0, w->held);
    free(w->rx);
    free(w);
    c->writing = NULL;
    if (c->state != STACK_TCP_BRIDGED)
        return;
    if (status < 0) {
        v2s_debug("%s: write to application failed: %s", c->label, uv_strerror(status));
        stack_tcp_end(c, 1);
        return;
    }
    stack_tcp_app_wrote(c, len);
    /* What arrived while this write was in flight goes now, in one write. */
    if (c->state == STACK_TCP_BRIDGED && stack_tcp_flush(c) < 0)
        stack_tcp_end(c, 1);
}

void stack_tcp_free_rxq(struct stack_tcp *c)
{
    for (unsigned i = 0; i < c->n_rxq; i++) {
        stack_tcp_hold(c, 0, c->rxq[i].cost);
        pbuf_free(c->rxq[i].p);
    }
    c->n_rxq = 0;
    c->coalesce_size = c->coalesce_room = 0;
}

/* Writes the gathered segments to the application. Most of the time its socket takes them all at
 * once: then one writev() is the whole cost, the window opens at once, and there is no request
 * to allocate and no completion to wait for (libuv reports even a uv_write() that finished at
 * once only from the next loop iteration, and re-registers the descriptor with epoll for it).
 * What the socket does not take goes into one uv_write(). 0, or a negative uv error with the
 * segments freed. */
static int stack_tcp_flush(struct stack_tcp *c)
{
    if (c->n_rxq == 0)
        return 0;
    v2s_list_remove(&c->flush_node);
    if (c->writing)
        return 0; /* its completion writes what gathered meanwhile */
    size_t nbufs = 0, len = 0;
    for (unsigned i = 0; i < c->n_rxq; i++) {
        nbufs += pbuf_clen(c->rxq[i].p);
        len += c->rxq[i].p->tot_len;
    }
    uv_buf_t small[64];
    uv_buf_t *bufs = nbufs <= 64 ? small : malloc(nbufs * sizeof(*bufs));
    if (!bufs) {
        stack_tcp_free_rxq(c);
        return UV_ENOMEM;
    }
    size_t k = 0;
    for (unsigned i = 0; i < c->n_rxq; i++)
        for (struct pbuf *q = c->rxq[i].p; q; q = q->next)
            bufs[k++] = uv_buf_init(q->payload, q->len);
    /* While a uv_write() is queued, uv_try_write() refuses (UV_EAGAIN), which keeps the order. */
    int rc = uv_try_write((uv_stream_t *)c->app, bufs, (unsigned)nbufs);
    size_t done = rc > 0 ? (size_t)rc : 0;
    struct stack_tcp_write *w = NULL;
    if ((rc < 0 && rc != UV_EAGAIN) || done == len || !(w = malloc(sizeof(*w)))) {
        if (bufs != small)
            free(bufs);
        stack_tcp_free_rxq(c);
        if (rc < 0 && rc != UV_EAGAIN)
            return rc;
        if (done < len)
            return UV_ENOMEM;
        stack_tcp_app_wrote(c, len);
        return 0;
    }
    /* The rest: skip the descriptors, and the part of one, that the socket took. */
    size_t first = 0;
    while (done >= bufs[first].len) {
        done -= bufs[first].len;
        first++;
    }
    bufs[first].base += done;
    bufs[first].len -= done;
    /* The window opens for the whole batch when the uv_write() completes; the write takes the
     * array of pbufs with it and rxq starts afresh. */
    w->c = c;
    w->len = len;
    w->held = 0;
    for (unsigned i = 0; i < c->n_rxq; i++)
        w->held += c->rxq[i].cost;
    w->n = c->n_rxq;
    w->rx = c->rxq;
    c->rxq = NULL;
    c->n_rxq = c->cap_rxq = 0;
    c->coalesce_size = c->coalesce_room = 0;
    /* uv_write() copies the descriptors, so bufs may go when it returns. */
    rc = uv_write(&w->req, (uv_stream_t *)c->app, bufs + first, (unsigned)(nbufs - first), stack_tcp_app_write_cb);
    if (bufs != small)
        free(bufs);
    if (rc < 0) {
        for (unsigned i = 0; i < w->n; i++)
            pbuf_free(w->rx[i].p);
        stack_tcp_hold(c, 0, w->held);
        free(w->rx);
        free(w);
        return rc;
    }
    c->writing = w;
    return 0;
}

/* Appends p (consumed) to rxq, counted as cost. 0, or UV_ENOMEM with p freed. */
static int stack_tcp_rxq_push(struct stack_tcp *c, struct pbuf *p, uint32_t cost)
{
    if (c->n_rxq == c->cap_rxq) {
        unsigned cap = c->cap_rxq ? 2 * c->cap_rxq : STACK_TCP_RXQ;
        struct stack_tcp_rx *grown = realloc(c->rxq, cap * sizeof(*grown));
        if (!grown) {
            pbuf_free(p);
            return UV_ENOMEM;
        }
        c->rxq = grown;
        c->cap_rxq = cap;
    }
    c->rxq[c->n_rxq].p = p;
    c->rxq[c->n_rxq].cost = cost;
    c->n_rxq++;
    stack_tcp_hold(c, cost, 0);
    c->coalesce_size = c->coalesce_room = 0;
    return 0;
}

/* Keeps p (consumed) in rxq: a small segment is copied into the buffer of small segments at
 * rxq's end, which is started (or followed by one twice its size, up to the largest) when it
 * has no room. 0, or UV_ENOMEM with p freed. */
static int stack_tcp_rxq_add(struct stack_tcp *c, struct pbuf *p)
{
    if (p->tot_len <= STACK_TCP_SMALL) {
        if (c->coalesce_room < p->tot_len) {
            uint32_t size = c->coalesce_size ? 2 * c->coalesce_size : STACK_TCP_COALESCE_MIN;
            /* Large enough for p (up to STACK_TCP_SMALL, twice the smallest buffer): a buffer
             * that p does not fit would stay empty behind it, a 256-byte buffer wasted for each
             * 257-512 byte segment (stack_bridge_rx_small_segments). */
            while (size < p->tot_len)
                size *= 2;
            if (size > STACK_TCP_COALESCE_MAX)
                size = STACK_TCP_COALESCE_MAX;
            struct pbuf *q = pbuf_alloc(PBUF_RAW, (u16_t)size, PBUF_RAM);
            if (q && stack_tcp_rxq_push(c, q, size + STACK_TCP_PBUF_COST) == 0) {
                q->len = q->tot_len = 0;
                c->coalesce_size = c->coalesce_room = size;
            }
        }
        if (c->coalesce_room >= p->tot_len) {
            struct pbuf *q = c->rxq[c->n_rxq - 1].p;
            pbuf_copy_partial(p, (uint8_t *)q->payload + q->len, p->tot_len, 0);
            q->len = q->tot_len = (u16_t)(q->len + p->tot_len);
            c->coalesce_room -= p->tot_len;
            pbuf_free(p);
            return 0;
        }
        /* No memory for a buffer: keep p as it is. */
    }
    return stack_tcp_rxq_push(c, p, (uint32_t)(p->tot_len + pbuf_clen(p) * STACK_TCP_PBUF_COST));
}

/* Keeps p (consumed) for the next flush; flushes at once when a batch is full and no write is in
 * flight. 0, or a negative uv error (p and the batch freed). */
static int stack_tcp_deliver(struct stack_tcp *c, struct pbuf *p)
{
    if (c->n_rxq == 0) {
        struct stack *s = c->s;
        v2s_list_push_front(&s->flushes, &c->flush_node);
        stack_check_arm(s);
    }
    int rc = stack_tcp_rxq_add(c, p);
    if (rc < 0) {
        v2s_list_remove(&c->flush_node);
        stack_tcp_free_rxq(c);
        return rc;
    }
    return c->n_rxq >= STACK_TCP_RXQ_FLUSH && !c->writing ? stack_tcp_flush(c) : 0;
}

void stack_tcp_deliver_held(struct stack_tcp *c)
{
    if (c->n_rxq == 0 || c->state != STACK_TCP_BRIDGED)
        return;
    v2s_list_remove(&c->flush_node);
    v2s_list_push_front(&c->s->flushes, &c->flush_node);
    stack_check_arm(c->s);
}

void stack_tcp_flush_all(struct stack *s)
{
    struct v2s_list *n;
    while ((n = v2s_list_first(&s->flushes)) != NULL) {
        struct stack_tcp *c = V2S_LIST_ENTRY(n, struct stack_tcp, flush_node);
        if (stack_tcp_flush(c) < 0)
            stack_tcp_end(c, 1);
    }
}

err_t stack_tcp_on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct stack_tcp *c = arg;
    (void)err; /* lwIP passes ERR_OK for data and FIN */
    if (!p) {
        c->remote_fin = 1;
        stack_tcp_remote_fin_ack_later(c, pcb);
        stack_tcp_maybe_release(c);
        stack_tcp_maybe_shutdown_app(c);
        return c->aborted ? ERR_ABRT : ERR_OK;
    }
    if (c->state == STACK_TCP_CONNECTED) {
        /* Before the bridge (an accepted connection whose application side is still opening):
         * kept and counted as for the application, and, as there, the window opens only once
         * the application has the bytes, so the peer can send no more than it was offered. */
        if (stack_tcp_rxq_add(c, p) < 0) {
            stack_tcp_release_pcb(c, 1); /* the bridge, when it starts, ends with a reset */
            return ERR_ABRT;
        }
        return ERR_OK;
    }
    if (c->state != STACK_TCP_BRIDGED) {
        /* Nobody to give it to (the bridge is closing): take it so lwIP does not retry. */
        tcp_recved(pcb, p->tot_len);
        pbuf_free(p);
        return ERR_OK;
    }
    if (stack_tcp_deliver(c, p) < 0) {
        /* The pcb is aborted inside its own callback, so lwIP must hear ERR_ABRT. */
        stack_tcp_end(c, 1);
        return ERR_ABRT;
    }
    /* A full batch was written at once, which may have ended the bridge. */
    return c->aborted ? ERR_ABRT : ERR_OK;
}
