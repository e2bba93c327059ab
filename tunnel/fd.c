/* The packet-fd tunnel: one IP packet per read() and per write() on a file descriptor another
 * program handed over (openconnect --script-tun passes a datagram socket in VPNFD).
 *
 * Reading takes up to TUNNEL_FD_READ_BATCH packets per wakeup. Writing goes straight to the fd;
 * what the fd cannot take now is queued (never dropped) and flushed when it becomes writable.
 * Above TUNNEL_FD_QUEUE_HIGH queued bytes tunnel_send() tells the stack to stop producing; the
 * writable event fires once the queue is below TUNNEL_FD_QUEUE_LOW. */
#include "tunnel/fd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "base/log.h"
#include "tunnel/settings.h"

enum {
    TUNNEL_FD_READ_BATCH = 64,
    TUNNEL_FD_MAX_PACKET = 65535,
    TUNNEL_FD_QUEUE_HIGH = 4 * 1024 * 1024,
    TUNNEL_FD_QUEUE_LOW = 1024 * 1024,
};

struct tunnel_fd_packet {
    struct tunnel_fd_packet *next;
    size_t len;
    uint8_t data[];
};

struct tunnel_fd {
    struct tunnel t; /* first: the ops receive a struct tunnel * */
    uv_loop_t *loop;
    uv_poll_t poll;
    int fd;
    int zero_is_eof; /* a 0-byte read means EOF (seqpacket, tun, pipe), not an empty datagram */
    int is_socket;
    int polling;     /* UV_READABLE / UV_WRITABLE currently requested */
    int down;
    int congested;   /* tunnel_send() returned 1 and writable has not fired since */
    struct tunnel_settings settings;
    uint8_t *rbuf;
    struct tunnel_fd_packet *head, *tail;
    size_t queued;
    int started;
    struct tunnel_stats stats; /* the counters; the state is worked out when asked */
    void (*close_cb)(struct tunnel *t);
};

static void tunnel_fd_update_poll(struct tunnel_fd *tf);

static void tunnel_fd_go_down(struct tunnel_fd *tf, enum tunnel_down_reason reason, const char *why)
{
    if (tf->down)
        return;
    tf->down = 1;
    uv_poll_stop(&tf->poll);
    tf->polling = 0;
    tf->t.ev.down(tf->t.ev.arg, reason, why);
}

static ssize_t tunnel_fd_write(struct tunnel_fd *tf, const uint8_t *pkt, size_t len)
{
    ssize_t n;
    do {
        n = tf->is_socket ? send(tf->fd, pkt, len, MSG_DONTWAIT | MSG_NOSIGNAL) : write(tf->fd, pkt, len);
    } while (n < 0 && errno == EINTR);
    return n;
}

static int tunnel_fd_would_block(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS;
}

/* Writes queued packets in order until the fd pushes back. 0, or -errno when the fd failed. */
static int tunnel_fd_flush(struct tunnel_fd *tf)
{
    while (tf->head) {
        struct tunnel_fd_packet *p = tf->head;
        ssize_t n = tunnel_fd_write(tf, p->data, p->len);
        if (n < 0) {
            if (tunnel_fd_would_block(errno))
                return 0;
            return -errno;
        }
        tf->head = p->next;
        if (!tf->head)
            tf->tail = NULL;
        tf->queued -= p->len;
        free(p);
    }
    return 0;
}

static void tunnel_fd_read_some(struct tunnel_fd *tf)
{
    for (int i = 0; i < TUNNEL_FD_READ_BATCH && !tf->down; i++) {
        ssize_t n = read(tf->fd, tf->rbuf, TUNNEL_FD_MAX_PACKET);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (tunnel_fd_would_block(errno))
                return;
            char why[128];
            snprintf(why, sizeof(why), "reading the packet fd failed: %s", strerror(errno));
            tunnel_fd_go_down(tf, TUNNEL_DOWN_ERROR, why);
            return;
        }
        if (n == 0) {
            if (tf->zero_is_eof) {
                tunnel_fd_go_down(tf, TUNNEL_DOWN_CLOSED, "the VPN client closed the packet fd");
                return;
            }
            continue; /* an empty datagram */
        }
        tf->stats.packets_in++;
        tf->stats.bytes_in += (size_t)n;
        tf->t.ev.packet(tf->t.ev.arg, tf->rbuf, (size_t)n);
    }
}

static void tunnel_fd_poll_cb(uv_poll_t *h, int status, int events)
{
    struct tunnel_fd *tf = h->data;
    if (status < 0) {
        char why[128];
        snprintf(why, sizeof(why), "polling the packet fd failed: %s", uv_strerror(status));
        tunnel_fd_go_down(tf, TUNNEL_DOWN_ERROR, why);
        return;
    }
    if (events & UV_WRITABLE) {
        int rc = tunnel_fd_flush(tf);
        if (rc < 0) {
            char why[128];
            snprintf(why, sizeof(why), "writing to the packet fd failed: %s", strerror(-rc));
            tunnel_fd_go_down(tf, rc == -ECONNREFUSED || rc == -EPIPE ? TUNNEL_DOWN_CLOSED : TUNNEL_DOWN_ERROR,
                              why);
            return;
        }
        if (tf->congested && tf->queued < TUNNEL_FD_QUEUE_LOW) {
            tf->congested = 0;
            tf->t.ev.writable(tf->t.ev.arg);
        }
    }
    if ((events & UV_READABLE) || (events & UV_DISCONNECT))
        tunnel_fd_read_some(tf);
    if (!tf->down)
        tunnel_fd_update_poll(tf);
}

static void tunnel_fd_update_poll(struct tunnel_fd *tf)
{
    int want = UV_READABLE | (tf->head ? UV_WRITABLE : 0);
    if (want == tf->polling || tf->down)
        return;
    if (uv_poll_start(&tf->poll, want, tunnel_fd_poll_cb) == 0)
        tf->polling = want;
}

static int tunnel_fd_send(struct tunnel *t, const uint8_t *pkt, size_t len)
{
    struct tunnel_fd *tf = (struct tunnel_fd *)t;
    if (tf->down)
        return -ENETDOWN;
    if (!tf->head) {
        ssize_t n = tunnel_fd_write(tf, pkt, len);
        if (n >= 0) {
            tf->stats.packets_out++;
            tf->stats.bytes_out += len;
            return 0;
        }
        if (!tunnel_fd_would_block(errno)) {
            int err = errno;
            char why[128];
            snprintf(why, sizeof(why), "writing to the packet fd failed: %s", strerror(err));
            tunnel_fd_go_down(tf, err == ECONNREFUSED || err == EPIPE ? TUNNEL_DOWN_CLOSED : TUNNEL_DOWN_ERROR,
                              why);
            return -err;
        }
    }
    struct tunnel_fd_packet *p = malloc(sizeof(*p) + len);
    if (!p)
        return -ENOMEM;
    p->next = NULL;
    p->len = len;
    memcpy(p->data, pkt, len);
    if (tf->tail)
        tf->tail->next = p;
    else
        tf->head = p;
    tf->tail = p;
    tf->queued += len;
    tf->stats.packets_out++;
    tf->stats.bytes_out += len;
    tunnel_fd_update_poll(tf);
    if (tf->queued > TUNNEL_FD_QUEUE_HIGH) {
        tf->congested = 1;
        return 1;
    }
    return 0;
}

static int tunnel_fd_start(struct tunnel *t)
{
    struct tunnel_fd *tf = (struct tunnel_fd *)t;
    int rc = uv_poll_init(tf->loop, &tf->poll, tf->fd);
    if (rc < 0)
        return rc;
    tf->poll.data = tf;
    tunnel_fd_update_poll(tf);
    tf->started = 1;
    tf->t.ev.up(tf->t.ev.arg, &tf->settings);
    return 0;
}

static void tunnel_fd_closed(uv_handle_t *h)
{
    struct tunnel_fd *tf = h->data;
    void (*cb)(struct tunnel *) = tf->close_cb;
    while (tf->head) {
        struct tunnel_fd_packet *p = tf->head;
        tf->head = p->next;
        free(p);
    }
    close(tf->fd);
    tunnel_settings_free(&tf->settings);
    free(tf->rbuf);
    free(tf);
    if (cb)
        cb(NULL);
}

static void tunnel_fd_close(struct tunnel *t, void (*cb)(struct tunnel *t))
{
    struct tunnel_fd *tf = (struct tunnel_fd *)t;
    tf->close_cb = cb;
    tf->down = 1;
    if (uv_is_active((uv_handle_t *)&tf->poll) || tf->poll.data) {
        uv_close((uv_handle_t *)&tf->poll, tunnel_fd_closed);
        return;
    }
    tf->poll.data = tf;
    tunnel_fd_closed((uv_handle_t *)&tf->poll);
}

/* The packet fd never reconnects: it is up from the start until it goes down for good. */
static void tunnel_fd_get_stats(const struct tunnel *t, struct tunnel_stats *out)
{
    const struct tunnel_fd *tf = (const struct tunnel_fd *)t;
    *out = tf->stats;
    out->state = tf->down ? TUNNEL_STATE_DOWN : tf->started ? TUNNEL_STATE_UP : TUNNEL_STATE_CONNECTING;
}

static const struct tunnel_ops tunnel_fd_ops = {
    .start = tunnel_fd_start,
    .send = tunnel_fd_send,
    .close = tunnel_fd_close,
    .get_stats = tunnel_fd_get_stats,
};

static int tunnel_fd_copy_settings(struct tunnel_settings *dst, const struct tunnel_settings *src)
{
    tunnel_settings_init(dst);
    dst->addr4 = src->addr4;
    dst->prefix4 = src->prefix4;
    dst->addr6 = src->addr6;
    dst->prefix6 = src->prefix6;
    dst->mtu = src->mtu;
    dst->n_dns = src->n_dns;
    memcpy(dst->dns, src->dns, sizeof(dst->dns));
    if (src->domains && !(dst->domains = strdup(src->domains)))
        return -ENOMEM;
    for (size_t i = 0; i < src->n_routes; i++)
        if (tunnel_settings_add_route(dst, &src->routes[i], 0) < 0)
            return -ENOMEM;
    for (size_t i = 0; i < src->n_excludes; i++)
        if (tunnel_settings_add_route(dst, &src->excludes[i], 1) < 0)
            return -ENOMEM;
    return 0;
}

int tunnel_fd_new(struct tunnel **out, uv_loop_t *loop, int fd, const struct tunnel_settings *settings,
                  const struct tunnel_events *ev)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    int type = 0;
    if (S_ISSOCK(st.st_mode)) {
        socklen_t tl = sizeof(type);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
            return -errno;
        /* A byte stream has no packet boundaries; one packet per read() needs datagrams. */
        if (type == SOCK_STREAM)
            return -EPROTOTYPE;
    }
    struct tunnel_fd *tf = calloc(1, sizeof(*tf));
    if (!tf)
        return -ENOMEM;
    tf->rbuf = malloc(TUNNEL_FD_MAX_PACKET);
    if (!tf->rbuf || tunnel_fd_copy_settings(&tf->settings, settings) < 0) {
        tunnel_settings_free(&tf->settings);
        free(tf->rbuf);
        free(tf);
        return -ENOMEM;
    }
    tf->t.ops = &tunnel_fd_ops;
    tf->t.ev = *ev;
    tf->loop = loop;
    tf->fd = fd;
    tf->is_socket = S_ISSOCK(st.st_mode);
    tf->zero_is_eof = !tf->is_socket || type == SOCK_SEQPACKET;
    *out = &tf->t;
    return 0;
}
