/* sendmmsg() and recvmmsg() are GNU extensions. */
#define _GNU_SOURCE

#include "tunnel/openvpn/transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "base/bytes.h"
#include "base/log.h"
#include "base/mmsg.h"
#include "tunnel/openvpn/proto.h"
#include "tunnel/openvpn/transport_internal.h"

/* Sending: the packets one loop iteration produces (mostly lwIP's ACKs while downloading) are
 * gathered in tx and leave in one write() (TCP) or sendmmsg() (UDP), so the server gets one TCP
 * segment or one burst instead of one per packet and we make one syscall instead of dozens.
 *
 * No gathered packet may wait for a blocking poll. libuv runs an iteration as timers, pending
 * callbacks, idle, prepare, poll (I/O callbacks), check, close callbacks, and it runs the
 * handles of one phase in an order we do not choose (the stack's prepare handle may send after
 * ours ran). So when tx becomes non-empty we start two handles and stop both once it is flushed:
 * - a check handle, which flushes right after the poll phase, where most packets are produced
 *   (packets read from the server or an application, write completions);
 * - an idle handle, which flushes what timers and pending callbacks produced, and whose being
 *   active makes libuv poll without blocking: packets produced in prepare are flushed by the
 *   check after that poll, those produced in check (after ours) or close callbacks by the idle
 *   of the next iteration, before its poll.
 * Both handles are stopped while tx is empty, so an idle link costs nothing and a link whose
 * socket is full waits in libuv's queue for POLLOUT rather than spinning.
 * A full tx (a largest framed packet would not fit) is flushed at once from ovpn_transport_send.
 * A flush always empties tx: what the socket does not take now goes to libuv's own queue
 * (uv_write for TCP, uv_udp_send for UDP), which preserves order and waits for POLLOUT. */

void ovpn_transport_fail(struct ovpn_transport *t, int status, const char *why)
{
    if (t->closing)
        return;
    /* The owner closes us from its callback; block further events until then. */
    t->closing = 1;
    t->ev.failed(t->ev.arg, status, why);
}

static void ovpn_transport_fail_deferred(uv_timer_t *timer)
{
    struct ovpn_transport *t = timer->data;
    int status = t->deferred_status;
    t->deferred_status = 0;
    ovpn_transport_fail(t, status, uv_strerror(status));
}

/* A failure found inside ovpn_transport_send() is reported from the loop: the caller may be deep
 * inside the client's own processing, which must not see the link vanish under it. */
void ovpn_transport_fail_later(struct ovpn_transport *t, int status)
{
    if (t->closing || t->deferred_status)
        return;
    t->deferred_status = status;
    uv_timer_start(&t->timer, ovpn_transport_fail_deferred, 0, 0);
}

/* The send queue is below its low mark again after ovpn_transport_send() returned 1. Only ever
 * called from the loop, never from inside ovpn_transport_send(). */
static void ovpn_transport_check_writable(struct ovpn_transport *t)
{
    if (t->congested && t->queued + t->tx_len < OVPN_TRANSPORT_QUEUE_LOW) {
        t->congested = 0;
        if (t->refused)
            v2s_info("openvpn: the link to the server takes packets again; %llu were dropped meanwhile",
                     (unsigned long long)t->refused);
        t->refused = 0;
        t->ev.writable(t->ev.arg);
    }
}

static void ovpn_transport_sent(struct ovpn_transport *t, size_t len, int status)
{
    t->queued -= len;
    if (t->closing)
        return;
    if (status < 0 && t->proto == OVPN_PROTO_TCP) {
        ovpn_transport_fail(t, status, uv_strerror(status));
        return;
    }
    ovpn_transport_check_writable(t);
}

static void ovpn_transport_udp_sent(uv_udp_send_t *req, int status)
{
    struct ovpn_transport_write *w = (struct ovpn_transport_write *)req;
    struct ovpn_transport *t = w->t;
    size_t len = w->len;
    free(w);
    /* A lost datagram is the protocol's business (retransmission, TCP inside), not a failure. */
    (void)status;
    ovpn_transport_sent(t, len, 0);
}

static void ovpn_transport_tcp_written(uv_write_t *req, int status)
{
    struct ovpn_transport_write *w = (struct ovpn_transport_write *)req;
    struct ovpn_transport *t = w->t;
    size_t len = w->len;
    free(w);
    ovpn_transport_sent(t, len, status);
}

/* Writes the gathered stream bytes; the unsent tail, if may_queue, goes into one uv_write. */
static void ovpn_transport_tcp_flush(struct ovpn_transport *t, int may_queue)
{
    size_t n = 0;
    /* While a uv_write is queued, uv_try_write refuses (UV_EAGAIN) and so keeps the order. */
    uv_buf_t b = uv_buf_init((char *)t->tx, (unsigned)t->tx_len);
    int rc = uv_try_write((uv_stream_t *)&t->sock.tcp, &b, 1);
    if (rc >= 0)
        n = (size_t)rc;
    else if (rc != UV_EAGAIN) {
        ovpn_transport_fail_later(t, rc);
        return;
    }
    if (n == t->tx_len || !may_queue)
        return;
    size_t rest = t->tx_len - n;
    struct ovpn_transport_write *w = malloc(sizeof(*w) + rest);
    if (!w) {
        /* Whole packets may go missing (the tunnel's TCP resends them), a packet's tail may not. */
        if (n)
            ovpn_transport_fail_later(t, UV_ENOMEM);
        return;
    }
    w->t = t;
    w->len = rest;
    memcpy(w->data, t->tx + n, rest);
    uv_buf_t wb = uv_buf_init((char *)w->data, (unsigned)rest);
    rc = uv_write(&w->req.w, (uv_stream_t *)&t->sock.tcp, &wb, 1, ovpn_transport_tcp_written);
    if (rc < 0) {
        free(w);
        ovpn_transport_fail_later(t, rc);
        return;
    }
    t->queued += rest;
}

/* UDP GSO, bounded. A run of up to OVPN_TRANSPORT_GSO_SEGS consecutive datagrams of one size
 * (the last may be shorter) leaves as one sendmmsg() message with a UDP_SEGMENT control message:
 * the kernel builds, routes and queues one skb and cuts it into the datagrams only at the end
 * of its output path, where sendmmsg() alone walks all of it once per datagram (~44 % of our CPU
 * on an upload). Runs are short because a run reaches the server as a burst: unbounded (64
 * datagrams) an OpenVPN 2.4.12 server, single-threaded, fell from 1.04 to 0.76-0.83 of the
 * stock client's upload rate. With 4 (bench --quick, A B B A, uploads): against 2.6, our CPU
 * 4.16-4.32 -> 2.96-3.20 s/GiB on AES-256-GCM and 5.68-6.00 -> 5.04-5.36 on AES-128-CBC, rates
 * equal or higher; against 2.4.12, 4.56-4.72 -> 4.08-4.16 and 5.44-5.68 -> 4.32-4.40, rates
 * 67-82 -> 73-77 MiB/s (GCM) and 97-103 -> 98-115 (CBC). */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h, 4.18+ */
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

/* Lays out the gathered datagrams from index first on as sendmmsg() messages, a run of equal
 * ones per message while gso; segs[k] is the datagrams of message k. Returns the messages. */
static unsigned ovpn_transport_udp_msgs(struct ovpn_transport *t, unsigned first, int gso, struct mmsghdr *msgs,
                                        struct iovec *iov, union ovpn_transport_gso_cmsg *ctl, unsigned *segs,
                                        const size_t *offs)
{
    unsigned n = 0;
    for (unsigned i = first; i < t->tx_count; n++) {
        unsigned run = 1;
        size_t size = t->tx_sizes[i];
        int may_run = gso && (!t->gso_too_long || size < t->gso_too_long);
        while (may_run && run < OVPN_TRANSPORT_GSO_SEGS && i + run < t->tx_count && t->tx_sizes[i + run] <= size &&
               t->tx_sizes[i + run - 1] == size)
            run++;
        memset(&msgs[n], 0, sizeof(msgs[n]));
        iov[n].iov_base = t->tx + offs[i];
        iov[n].iov_len = offs[i + run] - offs[i]; /* the run lies back to back in tx */
        msgs[n].msg_hdr.msg_iov = &iov[n];
        msgs[n].msg_hdr.msg_iovlen = 1;
        if (run > 1) {
            struct msghdr *m = &msgs[n].msg_hdr;
            m->msg_control = ctl[n].buf;
            m->msg_controllen = sizeof(ctl[n].buf);
            struct cmsghdr *cm = CMSG_FIRSTHDR(m);
            cm->cmsg_level = SOL_UDP;
            cm->cmsg_type = UDP_SEGMENT;
            cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t seg = (uint16_t)size;
            memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
        }
        segs[n] = run;
        i += run;
    }
    return n;
}

/* Sends the gathered datagrams with sendmmsg(); from the first the socket refuses for lack of
 * room on, they go (if may_queue) to uv_udp_send, which keeps them in order and waits for POLLOUT. */
static void ovpn_transport_udp_flush(struct ovpn_transport *t, int may_queue)
{
    struct mmsghdr msgs[OVPN_TRANSPORT_BATCH_DGRAMS];
    struct iovec iov[OVPN_TRANSPORT_BATCH_DGRAMS];
    union ovpn_transport_gso_cmsg ctl[OVPN_TRANSPORT_BATCH_DGRAMS];
    unsigned segs[OVPN_TRANSPORT_BATCH_DGRAMS];
    size_t offs[OVPN_TRANSPORT_BATCH_DGRAMS + 1];
    unsigned count = t->tx_count;
    offs[0] = 0;
    for (unsigned i = 0; i < count; i++)
        offs[i + 1] = offs[i] + t->tx_sizes[i];
    unsigned done = 0; /* datagrams */
    uv_os_fd_t fd;
    /* Datagrams still in libuv's queue go first. */
    if (uv_udp_get_send_queue_count(&t->sock.udp) == 0 && uv_fileno(&t->sock.handle, &fd) == 0) {
        unsigned nmsg = ovpn_transport_udp_msgs(t, 0, !t->no_gso, msgs, iov, ctl, segs, offs);
        unsigned m = 0; /* messages sent or given up */
        while (m < nmsg) {
            int n = sendmmsg(fd, msgs + m, nmsg - m, MSG_DONTWAIT);
            if (n > 0) {
                for (int k = 0; k < n; k++)
                    done += segs[m + (unsigned)k];
                m += (unsigned)n;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0 || errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
                break;
            if (segs[m] > 1 && (errno == EINVAL || errno == EIO || errno == EOPNOTSUPP)) {
                /* No UDP GSO on this path (an old kernel, a device without checksum offload):
                 * datagram by datagram from now on. */
                v2s_debug("openvpn: udp GSO refused (%s); sending datagrams singly", strerror(errno));
                t->no_gso = 1;
                nmsg = m + ovpn_transport_udp_msgs(t, done, 0, msgs + m, iov + m, ctl + m, segs + m, offs);
                continue;
            }
            if (segs[m] > 1 && errno == EMSGSIZE) {
                /* Datagrams larger than the route's MTU (so on Linux 6.18; older kernels said
                 * EINVAL, handled above) or a run longer than a datagram's 65507 bytes: singly
                 * they leave (in IP fragments), as one message never. Given up, every run of
                 * full-size datagrams was lost: with lo's MTU at 1300, 1400-byte runs never
                 * arrived. Runs of this size or larger go singly from now on. */
                size_t size = t->tx_sizes[done];
                if (!t->gso_too_long || size < t->gso_too_long)
                    t->gso_too_long = size;
                v2s_debug("openvpn: udp GSO of %zu-byte datagrams too long; sending them singly", size);
                nmsg = m + ovpn_transport_udp_msgs(t, done, 1, msgs + m, iov + m, ctl + m, segs + m, offs);
                continue;
            }
            /* The first unsent datagram is lost like any datagram (e.g. an ICMP error of an
             * earlier one reported here). "Refused" before the server ever answered means
             * nothing listens there, as in ovpn_transport_udp_recv, which this error no
             * longer reaches. */
            int err = -errno;
            v2s_debug("openvpn: udp send: %s", uv_strerror(err));
            if (!t->heard && err == UV_ECONNREFUSED)
                ovpn_transport_fail_later(t, UV_ECONNREFUSED);
            done += segs[m];
            m++;
        }
    }
    for (unsigned i = done; i < count && may_queue; i++) {
        size_t len = t->tx_sizes[i];
        struct ovpn_transport_write *w = malloc(sizeof(*w) + len);
        if (!w)
            return; /* lost like any datagram */
        w->t = t;
        w->len = len;
        memcpy(w->data, t->tx + offs[i], len);
        uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
        if (uv_udp_send(&w->req.u, &t->sock.udp, &b, 1, NULL, ovpn_transport_udp_sent) < 0) {
            free(w);
            return;
        }
        t->queued += len;
    }
}

/* Empties tx: to the socket now, or into libuv's queue if may_queue (else dropped). */
static void ovpn_transport_flush(struct ovpn_transport *t, int may_queue)
{
    if (t->tx_len) {
        if (t->proto == OVPN_PROTO_UDP)
            ovpn_transport_udp_flush(t, may_queue);
        else
            ovpn_transport_tcp_flush(t, may_queue);
    }
    t->tx_len = 0;
    t->tx_count = 0;
    uv_idle_stop(&t->idle);
    uv_check_stop(&t->check);
}

static void ovpn_transport_flush_from_loop(struct ovpn_transport *t)
{
    /* A failed link sends nothing more. */
    if (t->closing || t->deferred_status) {
        ovpn_transport_flush(t, 0);
        return;
    }
    ovpn_transport_flush(t, 1);
    ovpn_transport_check_writable(t);
}

static void ovpn_transport_idle_cb(uv_idle_t *idle)
{
    ovpn_transport_flush_from_loop(idle->data);
}

static void ovpn_transport_check_cb(uv_check_t *check)
{
    ovpn_transport_flush_from_loop(check->data);
}

int ovpn_transport_send(struct ovpn_transport *t, const uint8_t *pkt, size_t len)
{
    if (t->closing || t->deferred_status)
        return UV_ENOTCONN;
    if (len > OVPN_MAX_PACKET)
        return UV_EMSGSIZE;
    if (t->queued + t->tx_len + len > OVPN_TRANSPORT_QUEUE_MAX) {
        if (!t->refused++)
            v2s_warn("openvpn: the link to the server takes nothing (%zu KiB wait for it): packets to it "
                     "are dropped until it does", (t->queued + t->tx_len) / 1024);
        return UV_ENOBUFS;
    }
    if (t->proto == OVPN_PROTO_UDP) {
        if (len == 0)
            return 0;
        if (t->tx_count == OVPN_TRANSPORT_BATCH_DGRAMS || t->tx_len + len > OVPN_TRANSPORT_BATCH)
            ovpn_transport_flush(t, 1);
        if (t->deferred_status)
            return t->deferred_status; /* the flush failed; the owner hears it from the loop */
        memcpy(t->tx + t->tx_len, pkt, len);
        t->tx_sizes[t->tx_count++] = (uint16_t)len;
        t->tx_len += len;
    } else {
        if (t->tx_len + 2 + len > OVPN_TRANSPORT_BATCH)
            ovpn_transport_flush(t, 1);
        if (t->deferred_status)
            return t->deferred_status;
        v2s_put_be16(t->tx + t->tx_len, (uint16_t)len);
        memcpy(t->tx + t->tx_len + 2, pkt, len);
        t->tx_len += 2 + len;
    }
    /* No-ops while already active. */
    uv_idle_start(&t->idle, ovpn_transport_idle_cb);
    uv_check_start(&t->check, ovpn_transport_check_cb);
    if (t->queued + t->tx_len > OVPN_TRANSPORT_QUEUE_HIGH) {
        t->congested = 1;
        return 1;
    }
    return 0;
}

static void ovpn_transport_connected(uv_connect_t *req, int status)
{
    struct ovpn_transport *t = req->data;
    if (t->closing)
        return;
    if (status < 0) {
        ovpn_transport_fail(t, status, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&t->sock.tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&t->sock.tcp, ovpn_transport_alloc, ovpn_transport_tcp_read);
    if (rc < 0) {
        ovpn_transport_fail(t, rc, uv_strerror(rc));
        return;
    }
    t->ev.connected(t->ev.arg);
}

/* UDP has no handshake: "connected" is announced from the loop, after open() returned. */
static void ovpn_transport_udp_ready(uv_timer_t *timer)
{
    struct ovpn_transport *t = timer->data;
    if (!t->closing)
        t->ev.connected(t->ev.arg);
}

static void ovpn_transport_handle_closed(uv_handle_t *h);

/* Closes the handles that exist besides the socket. */
static void ovpn_transport_close_helpers(struct ovpn_transport *t)
{
    uv_close((uv_handle_t *)&t->timer, ovpn_transport_handle_closed);
    uv_close((uv_handle_t *)&t->idle, ovpn_transport_handle_closed);
    uv_close((uv_handle_t *)&t->check, ovpn_transport_handle_closed);
    uv_close((uv_handle_t *)&t->drain, ovpn_transport_handle_closed);
}

int ovpn_transport_open(struct ovpn_transport **out, uv_loop_t *loop, const struct sockaddr *addr,
                        enum ovpn_proto proto, const struct ovpn_transport_events *ev)
{
    struct ovpn_transport *t = calloc(1, sizeof(*t));
    if (!t)
        return UV_ENOMEM;
    t->rx = malloc(proto == OVPN_PROTO_UDP ? OVPN_TRANSPORT_RX_UDP : OVPN_TRANSPORT_RX_TCP);
    t->tx = malloc(OVPN_TRANSPORT_BATCH);
    if (!t->rx || !t->tx) {
        free(t->rx);
        free(t->tx);
        free(t);
        return UV_ENOMEM;
    }
    t->loop = loop;
    t->proto = proto;
    t->ev = *ev;
    uv_timer_init(loop, &t->timer);
    uv_idle_init(loop, &t->idle);
    uv_check_init(loop, &t->check);
    uv_timer_init(loop, &t->drain);
    t->drain.data = t;
    t->timer.data = t;
    t->idle.data = t;
    t->check.data = t;
    t->handles_open = 5;
    int rc;
    if (proto == OVPN_PROTO_UDP) {
        /* recvmmsg: one wakeup reads many datagrams (libuv falls back to recvmsg without it). */
        rc = uv_udp_init_ex(loop, &t->sock.udp, addr->sa_family | UV_UDP_RECVMMSG);
        if (rc < 0) {
            /* No socket (out of descriptors): only the helpers exist to close. */
            t->closing = 1;
            t->handles_open = 4;
            ovpn_transport_close_helpers(t);
            return rc;
        }
        t->sock.udp.data = t;
        rc = uv_udp_connect(&t->sock.udp, addr);
        if (rc == 0)
            rc = uv_udp_recv_start(&t->sock.udp, ovpn_transport_alloc, ovpn_transport_udp_recv);
        if (rc == 0) {
            /* Large socket buffers absorb bursts at high rates. */
            int size = 4 * 1024 * 1024;
            uv_send_buffer_size(&t->sock.handle, &size);
            size = 4 * 1024 * 1024;
            uv_recv_buffer_size(&t->sock.handle, &size);
            uv_timer_start(&t->timer, ovpn_transport_udp_ready, 0, 0);
        }
    } else {
        rc = uv_tcp_init(loop, &t->sock.tcp);
        if (rc < 0) {
            t->closing = 1;
            t->handles_open = 4;
            ovpn_transport_close_helpers(t);
            return rc;
        }
        t->sock.tcp.data = t;
        t->connect_req.data = t;
        rc = uv_tcp_connect(&t->connect_req, &t->sock.tcp, addr, ovpn_transport_connected);
    }
    if (rc < 0) {
        t->closing = 1;
        ovpn_transport_close(t);
        return rc;
    }
    *out = t;
    return 0;
}

size_t ovpn_transport_mss(struct ovpn_transport *t)
{
    uv_os_fd_t fd;
    int v = 0;
    socklen_t len = sizeof(v);
    if (t->proto != OVPN_PROTO_TCP || t->closing || uv_fileno(&t->sock.handle, &fd) < 0 ||
        getsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &v, &len) < 0 || v <= 0)
        return 0;
    return (size_t)v;
}

static void ovpn_transport_handle_closed(uv_handle_t *h)
{
    struct ovpn_transport *t = h->data;
    if (--t->handles_open > 0)
        return;
    free(t->rx);
    free(t->tx);
    free(t->drain_rx);
    free(t);
}

/* Sends tx's datagrams one by one from the first, on fd, as far as the socket takes them; the
 * rest move to the front of tx. Whether any are left. */
static int ovpn_transport_linger_send(struct ovpn_transport *t, int fd)
{
    unsigned i = 0;
    size_t off = 0;
    while (i < t->tx_count) {
        ssize_t n = send(fd, t->tx + off, t->tx_sizes[i], MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS))
            break;
        off += t->tx_sizes[i++]; /* sent, or lost like any datagram */
    }
    memmove(t->tx, t->tx + off, t->tx_len - off);
    memmove(t->tx_sizes, t->tx_sizes + i, (t->tx_count - i) * sizeof(t->tx_sizes[0]));
    t->tx_len -= off;
    t->tx_count -= i;
    return t->tx_count > 0;
}

/* The lingering close: the rest of tx goes out once the socket has room, or is given up after
 * OVPN_TRANSPORT_LINGER_MS. The send comes first, so that a tick that came late still sends. */
static void ovpn_transport_linger_tick(uv_timer_t *timer)
{
    struct ovpn_transport *t = timer->data;
    if (ovpn_transport_linger_send(t, t->linger_fd) &&
        ++t->linger_ticks < OVPN_TRANSPORT_LINGER_MS / OVPN_TRANSPORT_LINGER_TICK_MS)
        return;
    if (t->tx_count)
        v2s_debug("openvpn: %u datagram%s to the server not sent at the close: the socket took nothing",
                  t->tx_count, t->tx_count == 1 ? "" : "s");
    close(t->linger_fd);
    t->linger_fd = -1;
    uv_close((uv_handle_t *)&t->timer, ovpn_transport_handle_closed);
}

void ovpn_transport_close(struct ovpn_transport *t)
{
    /* Packets gathered in this iteration still leave: the client sends explicit-exit-notify right
     * before closing. Nothing goes into libuv's queue any more, as closing the socket cancels it.
     * Over UDP they go to the socket ahead of that queue: behind a saturated uplink the queue is
     * rarely empty, and the notice was dropped whenever it was not. Should the socket's buffer be
     * full, a dup of the socket outlives the handle (whose queue the close cancels, so the
     * notice is next in line) and sends them as soon as the kernel has room, for a second at most. */
    int linger = 0;
    if (!t->closing && !t->deferred_status && t->tx_len) {
        uv_os_fd_t fd;
        if (t->proto == OVPN_PROTO_TCP)
            ovpn_transport_tcp_flush(t, 0);
        else if (uv_fileno(&t->sock.handle, &fd) == 0 && ovpn_transport_linger_send(t, fd))
            linger = (t->linger_fd = dup(fd)) >= 0;
    }
    t->closing = 1;
    if (!linger) {
        t->tx_len = 0;
        t->tx_count = 0;
        ovpn_transport_close_helpers(t);
        uv_close(&t->sock.handle, ovpn_transport_handle_closed);
        return;
    }
    uv_close((uv_handle_t *)&t->idle, ovpn_transport_handle_closed);
    uv_close((uv_handle_t *)&t->check, ovpn_transport_handle_closed);
    uv_close((uv_handle_t *)&t->drain, ovpn_transport_handle_closed);
    uv_close(&t->sock.handle, ovpn_transport_handle_closed);
    uv_timer_stop(&t->timer);
    uv_timer_start(&t->timer, ovpn_transport_linger_tick, OVPN_TRANSPORT_LINGER_TICK_MS,
                   OVPN_TRANSPORT_LINGER_TICK_MS);
}
