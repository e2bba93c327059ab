#include "tunnel/openvpn/transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "app/log.h"
#include "tunnel/openvpn/proto.h"

enum {
    OVPN_TRANSPORT_RX = 2 + OVPN_MAX_PACKET,  /* one whole framed TCP packet fits */
    OVPN_TRANSPORT_QUEUE_HIGH = 1024 * 1024,
    OVPN_TRANSPORT_QUEUE_LOW = 256 * 1024,
};

struct ovpn_transport {
    uv_loop_t *loop;
    enum ovpn_proto proto;
    union {
        uv_udp_t udp;
        uv_tcp_t tcp;
        uv_handle_t handle;
    } sock;
    uv_timer_t timer;   /* TCP connect timeout */
    uv_connect_t connect_req;
    struct ovpn_transport_events ev;
    int closing;
    int handles_open;
    int congested;
    int deferred_status; /* a send failure waiting to be reported */
    int heard;           /* a packet arrived from the server */
    size_t queued;      /* bytes in uv_udp_send / uv_write requests */
    uint8_t *rx;
    size_t rx_len;
};

struct ovpn_transport_write {
    union {
        uv_write_t w;
        uv_udp_send_t u;
    } req;
    struct ovpn_transport *t;
    size_t len;
    uint8_t data[];
};

static void ovpn_transport_fail(struct ovpn_transport *t, int status, const char *why)
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
static void ovpn_transport_fail_later(struct ovpn_transport *t, int status)
{
    if (t->closing || t->deferred_status)
        return;
    t->deferred_status = status;
    uv_timer_start(&t->timer, ovpn_transport_fail_deferred, 0, 0);
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
    if (t->congested && t->queued < OVPN_TRANSPORT_QUEUE_LOW) {
        t->congested = 0;
        t->ev.writable(t->ev.arg);
    }
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

int ovpn_transport_send(struct ovpn_transport *t, const uint8_t *pkt, size_t len)
{
    if (t->closing || t->deferred_status)
        return UV_ENOTCONN;
    if (len > OVPN_MAX_PACKET)
        return UV_EMSGSIZE;
    if (t->proto == OVPN_PROTO_UDP) {
        uv_buf_t b = uv_buf_init((char *)pkt, (unsigned)len);
        int rc = t->queued ? UV_EAGAIN : uv_udp_try_send(&t->sock.udp, &b, 1, NULL);
        if (rc >= 0 || (rc != UV_EAGAIN && rc != UV_ENOBUFS))
            return 0; /* sent, or lost like any datagram (e.g. ICMP refused) */
        struct ovpn_transport_write *w = malloc(sizeof(*w) + len);
        if (!w)
            return UV_ENOMEM;
        w->t = t;
        w->len = len;
        memcpy(w->data, pkt, len);
        b = uv_buf_init((char *)w->data, (unsigned)len);
        if ((rc = uv_udp_send(&w->req.u, &t->sock.udp, &b, 1, NULL, ovpn_transport_udp_sent)) < 0) {
            free(w);
            return 0;
        }
        t->queued += len;
    } else {
        uint8_t hdr[2] = {(uint8_t)(len >> 8), (uint8_t)len};
        uv_buf_t b[2] = {uv_buf_init((char *)hdr, 2), uv_buf_init((char *)pkt, (unsigned)len)};
        int n = uv_try_write((uv_stream_t *)&t->sock.tcp, b, 2);
        if (n == UV_EAGAIN)
            n = 0;
        if (n < 0) {
            ovpn_transport_fail_later(t, n);
            return n;
        }
        size_t total = len + 2;
        if ((size_t)n == total)
            return 0;
        /* Keep the stream in order: the unsent tail goes into one queued write. */
        size_t rest = total - (size_t)n;
        struct ovpn_transport_write *w = malloc(sizeof(*w) + rest);
        if (!w)
            return UV_ENOMEM;
        w->t = t;
        w->len = rest;
        size_t off = (size_t)n;
        size_t hrest = off < 2 ? 2 - off : 0;
        memcpy(w->data, hdr + (2 - hrest), hrest);
        memcpy(w->data + hrest, pkt + (off > 2 ? off - 2 : 0), rest - hrest);
        uv_buf_t wb = uv_buf_init((char *)w->data, (unsigned)rest);
        int rc = uv_write(&w->req.w, (uv_stream_t *)&t->sock.tcp, &wb, 1, ovpn_transport_tcp_written);
        if (rc < 0) {
            free(w);
            ovpn_transport_fail_later(t, rc);
            return rc;
        }
        t->queued += rest;
    }
    if (t->queued > OVPN_TRANSPORT_QUEUE_HIGH) {
        t->congested = 1;
        return 1;
    }
    return 0;
}

static void ovpn_transport_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct ovpn_transport *t = h->data;
    (void)suggested;
    if (t->proto == OVPN_PROTO_UDP)
        *buf = uv_buf_init((char *)t->rx, OVPN_TRANSPORT_RX);
    else
        *buf = uv_buf_init((char *)t->rx + t->rx_len, (unsigned)(OVPN_TRANSPORT_RX - t->rx_len));
}

static void ovpn_transport_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                                    unsigned flags)
{
    struct ovpn_transport *t = h->data;
    (void)flags;
    if (t->closing || (nread == 0 && !addr))
        return;
    if (nread < 0) {
        /* ICMP errors surface here on a connected socket. Before the server ever answered, "port
         * unreachable" means nothing listens there: move on instead of waiting out hand-window.
         * Later, they are transient and the session's timers decide. */
        v2s_debug("openvpn: udp receive: %s", uv_strerror((int)nread));
        if (!t->heard && nread == UV_ECONNREFUSED)
            ovpn_transport_fail_later(t, UV_ECONNREFUSED);
        return;
    }
    if (nread == 0)
        return;
    t->heard = 1;
    t->ev.packet(t->ev.arg, (uint8_t *)buf->base, (size_t)nread);
}

static void ovpn_transport_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct ovpn_transport *t = s->data;
    (void)buf;
    if (t->closing || nread == 0)
        return;
    if (nread < 0) {
        ovpn_transport_fail(t, (int)nread, nread == UV_EOF ? "the server closed the connection" : uv_strerror((int)nread));
        return;
    }
    t->rx_len += (size_t)nread;
    size_t off = 0;
    while (!t->closing && t->rx_len - off >= 2) {
        size_t len = (size_t)t->rx[off] << 8 | t->rx[off + 1];
        if (len == 0) {
            ovpn_transport_fail(t, UV_EPROTO, "a zero-length packet on the TCP link");
            return;
        }
        if (t->rx_len - off - 2 < len)
            break;
        t->ev.packet(t->ev.arg, t->rx + off + 2, len);
        off += 2 + len;
    }
    if (off && !t->closing) {
        memmove(t->rx, t->rx + off, t->rx_len - off);
        t->rx_len -= off;
    }
}

static void ovpn_transport_connected(uv_connect_t *req, int status)
{
    struct ovpn_transport *t = req->data;
    if (t->closing)
        return;
    uv_timer_stop(&t->timer);
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

static void ovpn_transport_connect_timeout(uv_timer_t *timer)
{
    ovpn_transport_fail(timer->data, UV_ETIMEDOUT, "connection timed out");
}

/* UDP has no handshake: "connected" is announced from the loop, after open() returned. */
static void ovpn_transport_udp_ready(uv_timer_t *timer)
{
    struct ovpn_transport *t = timer->data;
    if (!t->closing)
        t->ev.connected(t->ev.arg);
}

static void ovpn_transport_handle_closed(uv_handle_t *h);

int ovpn_transport_open(struct ovpn_transport **out, uv_loop_t *loop, const struct sockaddr *addr,
                        enum ovpn_proto proto, unsigned connect_timeout_ms, const struct ovpn_transport_events *ev)
{
    struct ovpn_transport *t = calloc(1, sizeof(*t));
    if (!t)
        return UV_ENOMEM;
    t->rx = malloc(OVPN_TRANSPORT_RX);
    if (!t->rx) {
        free(t);
        return UV_ENOMEM;
    }
    t->loop = loop;
    t->proto = proto;
    t->ev = *ev;
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    t->handles_open = 2;
    int rc;
    if (proto == OVPN_PROTO_UDP) {
        rc = uv_udp_init_ex(loop, &t->sock.udp, addr->sa_family);
        if (rc < 0) {
            /* No socket (out of descriptors): only the timer exists to close. */
            t->closing = 1;
            t->handles_open = 1;
            uv_close((uv_handle_t *)&t->timer, ovpn_transport_handle_closed);
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
            t->handles_open = 1;
            uv_close((uv_handle_t *)&t->timer, ovpn_transport_handle_closed);
            return rc;
        }
        t->sock.tcp.data = t;
        t->connect_req.data = t;
        rc = uv_tcp_connect(&t->connect_req, &t->sock.tcp, addr, ovpn_transport_connected);
        if (rc == 0)
            uv_timer_start(&t->timer, ovpn_transport_connect_timeout, connect_timeout_ms, 0);
    }
    if (rc < 0) {
        t->closing = 1;
        ovpn_transport_close(t);
        return rc;
    }
    *out = t;
    return 0;
}

static void ovpn_transport_handle_closed(uv_handle_t *h)
{
    struct ovpn_transport *t = h->data;
    if (--t->handles_open > 0)
        return;
    free(t->rx);
    free(t);
}

void ovpn_transport_close(struct ovpn_transport *t)
{
    t->closing = 1;
    uv_close((uv_handle_t *)&t->timer, ovpn_transport_handle_closed);
    uv_close(&t->sock.handle, ovpn_transport_handle_closed);
}
