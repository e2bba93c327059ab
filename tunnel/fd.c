/* The packet-fd tunnel: one IP packet per datagram on a file descriptor another program handed
 * over (openconnect --script-tun passes one end of an AF_UNIX datagram socketpair in VPNFD).
 *
 * Reading: one wakeup reads up to TUNNEL_FD_READ_BATCH packets, TUNNEL_FD_RX_SLOTS per
 * recvmmsg() on a socket (one read() per packet on anything else). openconnect writes to us
 * without blocking and, once a write fails with EAGAIN, stops reading its DTLS socket (the
 * server's packets are then dropped there) and spins on the write until we read. Its end of the
 * pair holds only its SO_SNDBUF's worth of datagrams (212992 bytes by default: 93 packets of
 * 1400 bytes; our SO_RCVBUF does not count for an AF_UNIX datagram pair), about a millisecond
 * of a fast download, so each wakeup drains all that can be there.
 *
 * Writing: the packets one loop iteration produces (the stack's ACKs while downloading, a burst
 * of segments while uploading) are gathered in tx and leave in one sendmmsg() (write() per
 * packet on a non-socket fd) once the I/O callbacks of the iteration ran, so openconnect is woken
 * once per burst, not once per packet. As in tunnel/openvpn/transport.c, a check handle flushes
 * after the poll phase and an idle handle (which also keeps poll from blocking) flushes what
 * timers and other phases produced; both run only while tx holds packets. What the fd does not
 * take now is queued in order (never dropped) and flushed when it becomes writable; above
 * TUNNEL_FD_QUEUE_HIGH queued bytes tunnel_send() tells the stack to stop producing, and the
 * writable event fires once the queue is below TUNNEL_FD_QUEUE_LOW. Our SO_SNDBUF stays the
 * kernel's default: raised to 2 MiB, uploads through openconnect were slower (bench/RESULTS.md).
 * Not everything stops at "full": UDP (forwards, SOCKS UDP, DNS) and ICMP answers go on, and
 * openconnect reads nothing from the pair while it retries its server (up to its
 * --reconnect-timeout, 300 s by default), so past TUNNEL_FD_QUEUE_MAX the queue takes no more:
 * tunnel_send() refuses each packet with -ENOBUFS (as a tunnel between sessions refuses them;
 * TCP sends them again) and one line says so, rather than memory growing with all of them.
 *
 * What the pair and openconnect's DTLS socket hold (about 192 KiB) is all the path from the
 * server to us can queue: past it the server's packets are dropped. A socket's tunnel says so
 * (rx_room), and the stack keeps receive windows within it unless a connection's round trip needs
 * more (stack/tcp_budget.c): with the 4 MiB windows of before, a download through openconnect lost
 * 5,700-13,500 packets per 100 MiB and ran at 0.65x the kernel TUN's rate (bench/RESULTS.md).
 *
 * Scheduling: on a socket, the loop's thread runs as SCHED_BATCH once the tunnel starts. The VPN
 * client writes to us a packet at a time, each write a wakeup; woken as an ordinary task we
 * preempt whoever runs on that CPU, often the VPN client itself in the middle of draining its DTLS
 * socket (past its default buffer of ~90 datagrams the server's packets are dropped there) or the
 * VPN server. A batch task is woken alike but does not preempt: it runs when that task sleeps or
 * its slice ends, and then reads more per wakeup. Measured on the bench's openconnect download at
 * 0 ms (two cores, four busy processes; four rounds of alternating runs, medians of three or five
 * each): vpn2socks's CPU 2.08-2.80 s/GiB against 2.56-3.92, the rate 0.97-1.51x the kernel TUN's
 * (median 1.28) against 0.91-1.28 (1.07); in the quietest round 174-177 MiB/s against 141-146. Per
 * run, the drops at openconnect's DTLS socket, our ACKs and our sleeps per MiB all fall as the
 * rate rises (runs above 170 MiB/s: 121-512 drops per 100 MiB, 37-55 ACKs and 33-51 sleeps per
 * MiB); with the change more runs are fast. Uploads are not hurt (0.70-0.77x the kernel TUN
 * against 0.52-0.68). The price, only when every core is busy: the slowest SOCKS requests wait
 * longer for their turn (p99 through openconnect up to 8 ms against 4-5 with two busy loops on
 * both cores; bench/RESULTS.md). Only our own thread's policy changes, and an unprivileged one may
 * set it; where it cannot, nothing else depends on it. */
/* recvmmsg() and sendmmsg() are GNU extensions. */
#define _GNU_SOURCE

#include "tunnel/fd.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "base/log.h"
#include "base/mmsg.h"
#include "tunnel/settings.h"

enum {
    /* More than the 93 packets a default-buffered peer can have queued for us. */
    TUNNEL_FD_READ_BATCH = 128,
    /* Each slot holds the largest datagram, so none is ever truncated; only the pages a packet
     * touches become resident (the buffer is one large allocation). */
    TUNNEL_FD_RX_SLOTS = 32,
    TUNNEL_FD_MAX_PACKET = 65535,
    TUNNEL_FD_TX_PACKETS = 64, /* packets per sendmmsg() */
    TUNNEL_FD_TX_BYTES = 2 * TUNNEL_FD_MAX_PACKET,
    TUNNEL_FD_QUEUE_HIGH = 4 * 1024 * 1024,
    TUNNEL_FD_QUEUE_LOW = 1024 * 1024,
    /* What the queue may hold at most (see "Writing"): 4 times the high mark, so the stack's own
     * TCP, which stops at the high mark, never reaches it. */
    TUNNEL_FD_QUEUE_MAX = 16 * 1024 * 1024,
    /* What the path from the server to us holds (struct tunnel's rx_room): openconnect's end of
     * the pair (its default SO_SNDBUF, 93 packets of 1400 bytes, 127 KiB of TCP payload) and
     * its DTLS socket's receive buffer (the same default, fewer packets: each costs more there).
     * Chosen by A/B (bench/RESULTS.md): 192 KiB. */
    TUNNEL_FD_RX_ROOM = 192 * 1024,
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
    uv_check_t check; /* active while tx holds packets: flushes after the poll phase */
    uv_idle_t idle;   /* active while tx holds packets: flushes, and keeps poll from blocking */
    int handles_open;
    int fd;
    int zero_is_eof; /* a 0-byte read means EOF (seqpacket, tun, pipe), not an empty datagram */
    int is_socket;
    int polling;     /* UV_READABLE / UV_WRITABLE currently requested */
    int down;
    int congested;   /* tunnel_send() returned 1 and writable has not fired since */
    uint64_t refused; /* packets refused at TUNNEL_FD_QUEUE_MAX since the queue was last low */
    uint64_t oversized; /* datagrams longer than any IP packet, dropped (tunnel_fd_read_socket) */
    struct tunnel_settings settings;
    uint8_t *rbuf; /* TUNNEL_FD_RX_SLOTS slots of TUNNEL_FD_MAX_PACKET (one on a non-socket) */
    uint8_t *tx;   /* gathered packets, back to back; their lengths in tx_sizes */
    size_t tx_len;
    unsigned tx_count;
    uint16_t tx_sizes[TUNNEL_FD_TX_PACKETS];
    struct tunnel_fd_packet *head, *tail; /* what the fd refused, in order */
    size_t queued;                        /* bytes in head..tail */
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

/* A write error other than "full": the VPN client is gone (refused, broken pipe) or the fd broke. */
static void tunnel_fd_write_failed(struct tunnel_fd *tf, int err)
{
    char why[128];
    snprintf(why, sizeof(why), "writing to the packet fd failed: %s", strerror(err));
    tunnel_fd_go_down(tf, err == ECONNREFUSED || err == EPIPE ? TUNNEL_DOWN_CLOSED : TUNNEL_DOWN_ERROR, why);
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
static int tunnel_fd_flush_queue(struct tunnel_fd *tf)
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

/* Appends a copy of pkt to the queue of what the fd refused. */
static int tunnel_fd_enqueue(struct tunnel_fd *tf, const uint8_t *pkt, size_t len)
{
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
    return 0;
}

/* Writes the first packets of tx to the fd, as many as it takes now; returns how many it took,
 * or -errno when it failed. */
static int tunnel_fd_write_tx(struct tunnel_fd *tf)
{
    unsigned count = tf->tx_count, done = 0;
    size_t off = 0;
    if (!tf->is_socket) {
        for (; done < count; done++) {
            ssize_t n = tunnel_fd_write(tf, tf->tx + off, tf->tx_sizes[done]);
            if (n < 0)
                return tunnel_fd_would_block(errno) ? (int)done : -errno;
            off += tf->tx_sizes[done];
        }
        return (int)done;
    }
    struct mmsghdr msgs[TUNNEL_FD_TX_PACKETS];
    struct iovec iov[TUNNEL_FD_TX_PACKETS];
    memset(msgs, 0, count * sizeof(msgs[0]));
    for (unsigned i = 0; i < count; i++) {
        iov[i].iov_base = tf->tx + off;
        iov[i].iov_len = tf->tx_sizes[i];
        off += tf->tx_sizes[i];
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    while (done < count) {
        int n = sendmmsg(tf->fd, msgs + done, count - done, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            done += (unsigned)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || tunnel_fd_would_block(errno))
            break;
        return -errno;
    }
    return (int)done;
}

/* Empties tx: to the fd now, the rest (in order) to the queue, which waits for POLLWRITE. */
static void tunnel_fd_flush_tx(struct tunnel_fd *tf)
{
    uv_check_stop(&tf->check);
    uv_idle_stop(&tf->idle);
    if (!tf->tx_count)
        return;
    int done = 0;
    if (!tf->down && !tf->head)
        done = tunnel_fd_write_tx(tf);
    if (done < 0) {
        tunnel_fd_write_failed(tf, -done);
        done = (int)tf->tx_count; /* the tunnel is down: nothing more leaves */
    }
    size_t off = 0;
    for (unsigned i = 0; i < tf->tx_count; i++) {
        if (i >= (unsigned)done && tunnel_fd_enqueue(tf, tf->tx + off, tf->tx_sizes[i]) < 0) {
            v2s_warn("packet fd: out of memory: %u packets to the VPN client lost", tf->tx_count - i);
            break;
        }
        off += tf->tx_sizes[i];
    }
    tf->tx_len = 0;
    tf->tx_count = 0;
    if (!tf->down)
        tunnel_fd_update_poll(tf);
}

static void tunnel_fd_check_cb(uv_check_t *h)
{
    tunnel_fd_flush_tx(h->data);
}

static void tunnel_fd_idle_cb(uv_idle_t *h)
{
    tunnel_fd_flush_tx(h->data);
}

static void tunnel_fd_deliver(struct tunnel_fd *tf, const uint8_t *pkt, size_t n)
{
    tf->stats.packets_in++;
    tf->stats.bytes_in += n;
    tf->t.ev.packet(tf->t.ev.arg, pkt, n);
}

static void tunnel_fd_read_failed(struct tunnel_fd *tf, int err)
{
    char why[128];
    snprintf(why, sizeof(why), "reading the packet fd failed: %s", strerror(err));
    tunnel_fd_go_down(tf, TUNNEL_DOWN_ERROR, why);
}

/* A socket: recvmmsg() until it returns fewer than it had slots for (the socket is then empty)
 * or TUNNEL_FD_READ_BATCH packets were read. */
static void tunnel_fd_read_socket(struct tunnel_fd *tf)
{
    struct mmsghdr msgs[TUNNEL_FD_RX_SLOTS];
    struct iovec iov[TUNNEL_FD_RX_SLOTS];
    unsigned total = 0;
    while (total < TUNNEL_FD_READ_BATCH && !tf->down) {
        v2s_mmsg_slots(msgs, iov, TUNNEL_FD_RX_SLOTS, tf->rbuf, TUNNEL_FD_MAX_PACKET);
        int n = recvmmsg(tf->fd, msgs, TUNNEL_FD_RX_SLOTS, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (!tunnel_fd_would_block(errno))
                tunnel_fd_read_failed(tf, errno);
            return;
        }
        for (int i = 0; i < n && !tf->down; i++) {
            size_t len = msgs[i].msg_len;
            if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
                /* Longer than the largest IP packet (an AF_UNIX datagram may be ~200 KiB): not
                 * one, and its first 65535 bytes, which is all a slot holds, were handed to the
                 * stack as if they were. */
                if (!tf->oversized++)
                    v2s_warn("packet fd: a datagram longer than %d bytes, which no IP packet is, was "
                             "dropped (and any more will be, with no further line)", TUNNEL_FD_MAX_PACKET);
                continue;
            }
            if (len == 0) {
                if (tf->zero_is_eof) {
                    tunnel_fd_go_down(tf, TUNNEL_DOWN_CLOSED, "the VPN client closed the packet fd");
                    return;
                }
                continue; /* an empty datagram */
            }
            tunnel_fd_deliver(tf, iov[i].iov_base, len);
        }
        total += (unsigned)n;
        if (n < TUNNEL_FD_RX_SLOTS)
            return;
    }
}

/* Anything else (a tun device, a pipe): one read() per packet. */
static void tunnel_fd_read_other(struct tunnel_fd *tf)
{
    for (int i = 0; i < TUNNEL_FD_READ_BATCH && !tf->down; i++) {
        ssize_t n = read(tf->fd, tf->rbuf, TUNNEL_FD_MAX_PACKET);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (!tunnel_fd_would_block(errno))
                tunnel_fd_read_failed(tf, errno);
            return;
        }
        if (n == 0) {
            if (tf->zero_is_eof) {
                tunnel_fd_go_down(tf, TUNNEL_DOWN_CLOSED, "the VPN client closed the packet fd");
                return;
            }
            continue; /* an empty datagram */
        }
        tunnel_fd_deliver(tf, tf->rbuf, (size_t)n);
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
        int rc = tunnel_fd_flush_queue(tf);
        if (rc < 0) {
            tunnel_fd_write_failed(tf, -rc);
            return;
        }
        if (tf->congested && tf->queued + tf->tx_len < TUNNEL_FD_QUEUE_LOW) {
            tf->congested = 0;
            if (tf->refused)
                v2s_info("packet fd: the VPN client reads again; %llu packets to it were dropped meanwhile",
                         (unsigned long long)tf->refused);
            tf->refused = 0;
            tf->t.ev.writable(tf->t.ev.arg);
        }
    }
    if ((events & UV_READABLE) || (events & UV_DISCONNECT)) {
        if (tf->is_socket)
            tunnel_fd_read_socket(tf);
        else
            tunnel_fd_read_other(tf);
    }
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
    if (len > TUNNEL_FD_MAX_PACKET)
        return -EMSGSIZE;
    if (tf->queued + tf->tx_len + len > TUNNEL_FD_QUEUE_MAX) {
        tf->stats.packets_refused++;
        if (!tf->refused++)
            v2s_warn("packet fd: the VPN client is not reading (%zu KiB wait for it): packets to it are "
                     "dropped until it reads", (tf->queued + tf->tx_len) / 1024);
        return -ENOBUFS;
    }
    if (tf->tx_count == TUNNEL_FD_TX_PACKETS || tf->tx_len + len > TUNNEL_FD_TX_BYTES) {
        tunnel_fd_flush_tx(tf);
        if (tf->down)
            return -ENETDOWN;
    }
    memcpy(tf->tx + tf->tx_len, pkt, len);
    tf->tx_sizes[tf->tx_count++] = (uint16_t)len;
    tf->tx_len += len;
    tf->stats.packets_out++;
    tf->stats.bytes_out += len;
    /* No-ops while already active. */
    uv_check_start(&tf->check, tunnel_fd_check_cb);
    uv_idle_start(&tf->idle, tunnel_fd_idle_cb);
    if (tf->queued + tf->tx_len > TUNNEL_FD_QUEUE_HIGH) {
        tf->congested = 1;
        return 1;
    }
    return 0;
}

/* See "Scheduling" at the top. */
static void tunnel_fd_sched_batch(void)
{
#ifdef SCHED_BATCH
    struct sched_param sp = {.sched_priority = 0};
    if (sched_getscheduler(0) == SCHED_OTHER && sched_setscheduler(0, SCHED_BATCH, &sp) < 0)
        v2s_debug("packet fd: cannot run as SCHED_BATCH: %s", strerror(errno));
#endif
}

static int tunnel_fd_start(struct tunnel *t)
{
    struct tunnel_fd *tf = (struct tunnel_fd *)t;
    if (tf->is_socket)
        tunnel_fd_sched_batch();
    int rc = uv_poll_init(tf->loop, &tf->poll, tf->fd);
    if (rc < 0)
        return rc;
    tf->poll.data = tf;
    uv_check_init(tf->loop, &tf->check);
    tf->check.data = tf;
    uv_idle_init(tf->loop, &tf->idle);
    tf->idle.data = tf;
    tf->handles_open = 3;
    tunnel_fd_update_poll(tf);
    tf->started = 1;
    tf->t.ev.up(tf->t.ev.arg, &tf->settings);
    return 0;
}

static void tunnel_fd_free(struct tunnel_fd *tf)
{
    void (*cb)(struct tunnel *) = tf->close_cb;
    while (tf->head) {
        struct tunnel_fd_packet *p = tf->head;
        tf->head = p->next;
        free(p);
    }
    close(tf->fd);
    tunnel_settings_free(&tf->settings);
    free(tf->rbuf);
    free(tf->tx);
    free(tf);
    if (cb)
        cb(NULL);
}

static void tunnel_fd_closed(uv_handle_t *h)
{
    struct tunnel_fd *tf = h->data;
    if (--tf->handles_open == 0)
        tunnel_fd_free(tf);
}

static void tunnel_fd_close(struct tunnel *t, void (*cb)(struct tunnel *t))
{
    struct tunnel_fd *tf = (struct tunnel_fd *)t;
    tf->close_cb = cb;
    /* What this iteration gathered (e.g. the resets of a shutdown) still leaves, if the fd takes
     * it now; the queue of what it refused earlier is dropped with the tunnel. */
    if (!tf->down && !tf->head && tf->tx_count)
        (void)tunnel_fd_write_tx(tf);
    tf->down = 1;
    if (!tf->handles_open) {
        tunnel_fd_free(tf);
        return;
    }
    uv_close((uv_handle_t *)&tf->poll, tunnel_fd_closed);
    uv_close((uv_handle_t *)&tf->check, tunnel_fd_closed);
    uv_close((uv_handle_t *)&tf->idle, tunnel_fd_closed);
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
    int is_socket = S_ISSOCK(st.st_mode);
    tf->rbuf = malloc((size_t)(is_socket ? TUNNEL_FD_RX_SLOTS : 1) * TUNNEL_FD_MAX_PACKET);
    tf->tx = malloc(TUNNEL_FD_TX_BYTES);
    if (!tf->rbuf || !tf->tx || tunnel_fd_copy_settings(&tf->settings, settings) < 0) {
        tunnel_settings_free(&tf->settings);
        free(tf->rbuf);
        free(tf->tx);
        free(tf);
        return -ENOMEM;
    }
    tf->t.ops = &tunnel_fd_ops;
    tf->t.ev = *ev;
    tf->t.rx_room = is_socket ? TUNNEL_FD_RX_ROOM : 0;
    tf->loop = loop;
    tf->fd = fd;
    tf->is_socket = is_socket;
    tf->zero_is_eof = !tf->is_socket || type == SOCK_SEQPACKET;
    *out = &tf->t;
    return 0;
}
