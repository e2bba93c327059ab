/* The OpenVPN link's receive side: reading the server's datagrams (recvmmsg through libuv, or
 * the drain timer's own while coalescing) and TCP stream (framed packets, the low-water mark),
 * each packet handed to the client's events. transport.c opens, sends and closes. */
/* recvmmsg() is a GNU extension. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/bytes.h"
#include "base/log.h"
#include "base/mmsg.h"
#include "tunnel/openvpn/transport_internal.h"

/* UDP receive coalescing. In a bulk download the server sends faster than one datagram at a
 * time but slower than we handle them, so each datagram or two woke us on its own: per wakeup an
 * epoll_wait(), a recvmmsg(), a writev() to the application (which wakes it in turn: two context
 * switches more) and a sendmmsg() of our ACK. In the bench's UDP AES-256-GCM download that was
 * ~280 wakeups per MiB, 2.5 datagrams and 4.3 KB to the application each, and most of our CPU
 * went to the kernel's share of those calls. So once more than OVPN_TRANSPORT_UDP_BULK bytes
 * arrive within one millisecond, libuv stops reading the socket and a timer every
 * OVPN_TRANSPORT_UDP_DRAIN_MS reads all that waits, recvmmsg() after recvmmsg(); the stack then
 * writes to each application and sends its ACKs once per period. A datagram waits at most about
 * a period, the socket's 4 MiB buffer holds dozens of periods at the rates seen, and once a
 * period brings less than OVPN_TRANSPORT_UDP_LOWAT bytes libuv reads each datagram as it comes
 * again. Interactive traffic never gets here. */
static void ovpn_transport_udp_drain(uv_timer_t *timer);

/* Counts n bytes read into the bytes of this millisecond of the loop's clock (rx_ms_bytes), which
 * start UDP coalescing and the TCP low-water mark. */
static void ovpn_transport_rx_count(struct ovpn_transport *t, size_t n)
{
    uint64_t now = uv_now(t->loop);
    if (now != t->rx_ms) {
        t->rx_ms = now;
        t->rx_ms_bytes = 0;
    }
    t->rx_ms_bytes += n;
}

/* Starts (on) or ends coalescing. Never called between the chunks of a recvmmsg batch. */
static void ovpn_transport_udp_coalesce(struct ovpn_transport *t, int on)
{
    t->coalesce_due = 0;
    if (t->coalescing == on)
        return;
    if (on) {
        if (!t->drain_rx)
            t->drain_rx = malloc((size_t)OVPN_TRANSPORT_UDP_DRAIN_SLOTS * OVPN_TRANSPORT_RX_SLOT);
        if (!t->drain_rx)
            return; /* libuv reads on */
        uv_udp_recv_stop(&t->sock.udp);
        uv_timer_start(&t->drain, ovpn_transport_udp_drain, OVPN_TRANSPORT_UDP_DRAIN_MS, OVPN_TRANSPORT_UDP_DRAIN_MS);
        t->coalescing = 1;
        return;
    }
    uv_timer_stop(&t->drain);
    t->coalescing = 0;
    t->rx_drained = 0;
    t->rx_ms_bytes = 0;
    int rc = uv_udp_recv_start(&t->sock.udp, ovpn_transport_alloc, ovpn_transport_udp_recv);
    if (rc < 0)
        ovpn_transport_fail(t, rc, uv_strerror(rc));
}

static void ovpn_transport_udp_drain(uv_timer_t *timer)
{
    struct ovpn_transport *t = timer->data;
    struct mmsghdr msgs[OVPN_TRANSPORT_UDP_DRAIN_SLOTS];
    struct iovec iov[OVPN_TRANSPORT_UDP_DRAIN_SLOTS];
    uv_os_fd_t fd;
    size_t bytes = 0;
    if (t->closing || uv_fileno(&t->sock.handle, &fd) < 0)
        return;
    for (unsigned calls = 0; calls < OVPN_TRANSPORT_UDP_DRAIN_CALLS; calls++) {
        v2s_mmsg_slots(msgs, iov, OVPN_TRANSPORT_UDP_DRAIN_SLOTS, t->drain_rx, OVPN_TRANSPORT_RX_SLOT);
        int n = recvmmsg(fd, msgs, OVPN_TRANSPORT_UDP_DRAIN_SLOTS, MSG_DONTWAIT, NULL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            /* An ICMP error, as in ovpn_transport_udp_recv; what follows it waits for the next
             * period. */
            int err = -errno;
            if (err != UV_EAGAIN) {
                v2s_debug("openvpn: udp receive: %s", uv_strerror(err));
                if (!t->heard && err == UV_ECONNREFUSED)
                    ovpn_transport_fail_later(t, UV_ECONNREFUSED);
            }
            break;
        }
        for (int k = 0; k < n; k++) {
            /* No OpenVPN packet is empty, and none exceeds a slot. */
            if (msgs[k].msg_len == 0 || (msgs[k].msg_hdr.msg_flags & MSG_TRUNC))
                continue;
            t->heard = 1;
            bytes += msgs[k].msg_len;
            t->ev.packet(t->ev.arg, iov[k].iov_base, msgs[k].msg_len);
            if (t->closing)
                return;
        }
        if (n < OVPN_TRANSPORT_UDP_DRAIN_SLOTS)
            break;
    }
    if (bytes < OVPN_TRANSPORT_UDP_LOWAT)
        ovpn_transport_udp_coalesce(t, 0);
}

void ovpn_transport_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct ovpn_transport *t = h->data;
    (void)suggested;
    if (t->proto == OVPN_PROTO_UDP) {
        /* libuv reads until recvmmsg() says EAGAIN. A call that returned fewer datagrams than it
         * had slots for already emptied the socket, so an empty buffer ends this wakeup's reads
         * (libuv then reports UV_ENOBUFS, without a system call) instead of that last
         * recvmmsg(); what arrives meanwhile wakes the level-triggered poll again. libuv stops
         * at 32 datagrams, a multiple of our 4 slots, so only a full call can reach that limit:
         * the flag is always used up in the wakeup that set it. */
        *buf = t->rx_drained ? uv_buf_init(NULL, 0) : uv_buf_init((char *)t->rx, OVPN_TRANSPORT_RX_UDP);
        t->rx_batch = 0;
    } else
        *buf = uv_buf_init((char *)t->rx + t->rx_len, (unsigned)(OVPN_TRANSPORT_RX_TCP - t->rx_len));
}

void ovpn_transport_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                             unsigned flags)
{
    struct ovpn_transport *t = h->data;
    /* rx is ours for the transport's lifetime: after a recvmmsg batch (UV_UDP_MMSG_FREE, nread
     * 0) there is nothing to free, and each UV_UDP_MMSG_CHUNK is one datagram in its own slot. */
    if (flags & UV_UDP_MMSG_FREE) {
        t->rx_drained = t->rx_batch < OVPN_TRANSPORT_RX_UDP / OVPN_TRANSPORT_RX_SLOT;
        /* Not earlier: libuv drops the rest of a batch once reading stops inside it. */
        if (t->coalesce_due && !t->closing)
            ovpn_transport_udp_coalesce(t, 1);
        return;
    }
    if (nread == UV_ENOBUFS && t->rx_drained) {
        t->rx_drained = 0; /* the empty buffer of ovpn_transport_alloc */
        return;
    }
    if (flags & UV_UDP_MMSG_CHUNK)
        t->rx_batch++;
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
    /* No OpenVPN packet is empty, and none exceeds a slot (a datagram's largest payload). */
    if (nread == 0 || (flags & UV_UDP_PARTIAL))
        return;
    t->heard = 1;
    t->ev.packet(t->ev.arg, (uint8_t *)buf->base, (size_t)nread);
    if (t->closing)
        return;
    ovpn_transport_rx_count(t, (size_t)nread);
    if (t->rx_ms_bytes >= OVPN_TRANSPORT_UDP_BULK) {
        t->coalesce_due = 1;
        /* Without recvmmsg each callback is a read of its own, and stopping here loses nothing. */
        if (!(flags & UV_UDP_MMSG_CHUNK))
            ovpn_transport_udp_coalesce(t, 1);
    }
}

/* Hands the complete framed packets in rx to the client; nread more bytes just arrived. */
static void ovpn_transport_tcp_consume(struct ovpn_transport *t, size_t nread)
{
    t->rx_len += nread;
    size_t off = 0;
    while (!t->closing && t->rx_len - off >= 2) {
        size_t len = v2s_get_be16(t->rx + off);
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

/* Receive coalescing on the TCP link. The server writes one packet per write(), and we are
 * faster than it, so each ~1.4 KB segment woke us on its own: a wakeup, a read, a decryption, an
 * lwIP input and, every second segment, an ACK of its own back to the server, whose single
 * thread then spends on our ACKs what it could spend on sending. During a bulk transfer
 * (more than OVPN_TRANSPORT_TCP_BULK bytes read within one millisecond) the socket's low-water
 * mark is raised to OVPN_TRANSPORT_TCP_LOWAT, so one wakeup reads dozens of packets and
 * lwIP's ACKs for them leave together; a timer every OVPN_TRANSPORT_TCP_DRAIN_MS reads what is
 * below the mark, so a packet waits at most about a millisecond, and once less than
 * OVPN_TRANSPORT_TCP_BULK arrived between two drains the mark is lowered again. Interactive
 * traffic never gets here.
 * The mark was 16 KiB: a wakeup per ~11 packets, each followed by a segment of our tunnel ACKs
 * (58-64 per MiB against a 2.5.9 server, tcpdump). At 64 KiB, below ~64 MB/s the drain timer
 * alone reads, above it a wakeup comes per ~45 packets: 18-19 segments of tunnel ACKs per MiB.
 * Quick A/B against 2.5.9, TCP downloads, 3 runs per binary (old, new, new, old): our CPU
 * 3.04-3.36 -> 2.24-2.88 s/GiB (GCM) and 3.60-4.24 -> 2.72-3.12 (CBC); rate medians GCM 116.5,
 * 123.8, 132.2, 118.3 MiB/s, CBC 83.8, 91.3, 96.7, 94.8. The mark now stays up while a period
 * brings BULK or more (it was lowered below a mark's worth), so a download between 16 and
 * 64 MB/s does not switch it on and off every millisecond. */
static void ovpn_transport_tcp_drain(uv_timer_t *timer);

static void ovpn_transport_tcp_lowat(struct ovpn_transport *t, int on)
{
    uv_os_fd_t fd;
    if (t->lowat == on || uv_fileno(&t->sock.handle, &fd) < 0)
        return;
    int v = on ? OVPN_TRANSPORT_TCP_LOWAT : 1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)) < 0)
        return;
    t->lowat = on;
    if (on) {
        t->drain_period_bytes = 0;
        uv_timer_start(&t->drain, ovpn_transport_tcp_drain, OVPN_TRANSPORT_TCP_DRAIN_MS, OVPN_TRANSPORT_TCP_DRAIN_MS);
    } else {
        uv_timer_stop(&t->drain);
    }
}

static void ovpn_transport_tcp_drain(uv_timer_t *timer)
{
    struct ovpn_transport *t = timer->data;
    uv_os_fd_t fd;
    if (t->closing || uv_fileno(&t->sock.handle, &fd) < 0)
        return;
    for (;;) {
        ssize_t n = recv(fd, t->rx + t->rx_len, OVPN_TRANSPORT_RX_TCP - t->rx_len, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                ovpn_transport_fail(t, -errno, uv_strerror(-errno));
            break;
        }
        if (n == 0) {
            ovpn_transport_fail(t, UV_EOF, "the server closed the connection");
            return;
        }
        t->drain_period_bytes += (size_t)n;
        ovpn_transport_tcp_consume(t, (size_t)n);
        if (t->closing)
            return;
    }
    if (t->closing)
        return;
    if (t->drain_period_bytes < OVPN_TRANSPORT_TCP_BULK)
        ovpn_transport_tcp_lowat(t, 0);
    t->drain_period_bytes = 0;
}

void ovpn_transport_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct ovpn_transport *t = s->data;
    (void)buf;
    if (t->closing || nread == 0)
        return;
    if (nread < 0) {
        ovpn_transport_fail(t, (int)nread, nread == UV_EOF ? "the server closed the connection" : uv_strerror((int)nread));
        return;
    }
    ovpn_transport_tcp_consume(t, (size_t)nread);
    if (t->closing)
        return;
    ovpn_transport_rx_count(t, (size_t)nread);
    t->drain_period_bytes += (size_t)nread;
    if (!t->lowat && t->rx_ms_bytes >= OVPN_TRANSPORT_TCP_BULK)
        ovpn_transport_tcp_lowat(t, 1);
}
