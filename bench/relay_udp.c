/* relay_udp.c: the relay's UDP side: datagrams held in a ring per direction, released in
 * sendmmsg/GSO batches, one connected upstream socket per client address. */
#define _GNU_SOURCE
#include "relay.h"

static int relay_udp_fd_for(struct relay_udp *u, struct relay_udp_ring *q, uint32_t session)
{
    return q == &u->up ? u->sessions[session].fd : u->fd;
}

/* Sends the datagrams at the head of q whose time has come, in sendmmsg batches that share a
 * socket. Runs of datagrams of one size to one destination go as one UDP GSO message
 * (UDP_SEGMENT): the kernel walks its output path once per run instead of once per datagram, which
 * is most of what a relay costs. */
void relay_udp_flush(struct relay *r, struct relay_udp *u, struct relay_udp_ring *q,
                     uint64_t now)
{
    struct mmsghdr msgs[RELAY_BATCH];
    struct iovec iov[RELAY_GSO_IOV];
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } ctl[RELAY_BATCH];
    uint32_t segs[RELAY_BATCH];
    if (q->blocked)
        return;
    while (q->head != q->tail) {
        struct relay_udp_slot *first = relay_ring_at(q, q->head);
        if (first->due_ns > now)
            break;
        int fd = relay_udp_fd_for(u, q, first->session);
        int n = 0, niov = 0;
        uint32_t i = q->head;
        while (n < RELAY_BATCH && i != q->tail && niov < RELAY_GSO_IOV) {
            struct relay_udp_slot *s = relay_ring_at(q, i);
            if (s->due_ns > now || relay_udp_fd_for(u, q, s->session) != fd)
                break;
            /* one message: s, then while GSO is on, the datagrams after it of the same size to
             * the same peer (the last of a run may be shorter) */
            struct msghdr *m = &msgs[n].msg_hdr;
            memset(&msgs[n], 0, sizeof(msgs[n]));
            m->msg_iov = &iov[niov];
            uint32_t count = 0, bytes = 0;
            do {
                struct relay_udp_slot *t = relay_ring_at(q, i);
                iov[niov].iov_base = t->data;
                iov[niov].iov_len = t->len;
                niov++;
                count++;
                bytes += t->len;
                i++;
                if (t->len != s->len)
                    break; /* a shorter datagram ends the run */
                if (!r->gso || count == RELAY_GSO_SEGS || niov == RELAY_GSO_IOV || i == q->tail)
                    break;
                t = relay_ring_at(q, i);
                if (t->due_ns > now || t->session != s->session || t->len > s->len ||
                    bytes + t->len > RELAY_GSO_BYTES)
                    break;
            } while (1);
            m->msg_iovlen = count;
            if (q == &u->down) {
                m->msg_name = &u->sessions[s->session].client;
                m->msg_namelen = sizeof(struct sockaddr_in);
            }
            if (count > 1) {
                m->msg_control = ctl[n].buf;
                m->msg_controllen = sizeof(ctl[n].buf);
                struct cmsghdr *cm = CMSG_FIRSTHDR(m);
                cm->cmsg_level = SOL_UDP;
                cm->cmsg_type = UDP_SEGMENT;
                cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
                uint16_t gso = (uint16_t)s->len;
                memcpy(CMSG_DATA(cm), &gso, sizeof(gso));
            }
            segs[n] = count;
            n++;
        }
        int sent = sendmmsg(fd, msgs, (unsigned)n, MSG_DONTWAIT);
        if (sent < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
                q->blocked = 1;
                q->blocked_fd = fd;
                struct relay_ev *ev = q == &u->up ? &u->sessions[first->session].ev : &u->ev;
                relay_epoll_mod(r, fd, EPOLLIN | EPOLLOUT, ev);
                return;
            }
            if (segs[0] > 1 && (errno == EINVAL || errno == EIO || errno == EOPNOTSUPP)) {
                /* no UDP GSO here (old kernel, odd device): send one by one from now on */
                fprintf(stderr, "relay: UDP GSO refused (%s); sending datagrams singly\n", strerror(errno));
                r->gso = 0;
                continue;
            }
            /* ECONNREFUSED and the like: an ICMP error for an earlier datagram. Drop this message
             * rather than loop on it; the VPN's own retransmissions cope. */
            q->dropped_err += segs[0];
            q->head += segs[0];
            continue;
        }
        for (int k = 0; k < sent; k++) {
            q->sent += segs[k];
            q->head += segs[k];
            if (segs[k] > 1)
                q->gso_msgs++;
        }
    }
}

static int relay_udp_session_for(struct relay *r, struct relay_udp *u, const struct sockaddr_in *from,
                                 uint64_t now)
{
    int free_i = -1, oldest = 0;
    for (int i = 0; i < RELAY_UDP_MAX_SESSIONS; i++) {
        struct relay_udp_session *s = &u->sessions[i];
        if (!s->used) {
            if (free_i < 0)
                free_i = i;
            continue;
        }
        if (s->client.sin_addr.s_addr == from->sin_addr.s_addr && s->client.sin_port == from->sin_port) {
            s->last_ns = now;
            return i;
        }
        if (s->last_ns < u->sessions[oldest].last_ns)
            oldest = i;
    }
    if (free_i < 0) {
        /* Full: reuse the quietest session if it has been idle long enough. Packets for it still
         * in the rings go to the new client, which is harmless for a benchmark. */
        if (now - u->sessions[oldest].last_ns < (uint64_t)RELAY_UDP_SESSION_IDLE_S * 1000000000u)
            return -ENOSPC;
        struct relay_udp_session *s = &u->sessions[oldest];
        epoll_ctl(r->ep, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
        s->used = 0;
        free_i = oldest;
    }
    struct relay_udp_session *s = &u->sessions[free_i];
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    relay_sockbufs(fd);
    if (connect(fd, (const struct sockaddr *)&u->upstream, sizeof(u->upstream)) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    s->used = 1;
    s->client = *from;
    s->fd = fd;
    s->last_ns = now;
    s->ev = (struct relay_ev){.kind = RELAY_K_UDP_UPSTREAM, .obj = u, .side = free_i};
    if (relay_epoll_add(r, fd, EPOLLIN, &s->ev) < 0) {
        close(fd);
        s->used = 0;
        return -EIO;
    }
    char a[INET_ADDRSTRLEN];
    fprintf(stderr, "relay: udp session %d for %s:%u\n", free_i,
            inet_ntop(AF_INET, &from->sin_addr, a, sizeof(a)), ntohs(from->sin_port));
    return free_i;
}

/* Reads one batch from fd into q; session is the sender's session for upstream sockets, or -1
 * on the listening socket (looked up per datagram). */
void relay_udp_read(struct relay *r, struct relay_udp *u, int fd, struct relay_udp_ring *q,
                    int session, uint64_t now)
{
    struct mmsghdr msgs[RELAY_BATCH];
    struct iovec iov[RELAY_BATCH];
    struct sockaddr_in from[RELAY_BATCH];
    uint8_t scratch[RELAY_UDP_SLOT_DATA];
    uint32_t room = RELAY_UDP_RING_SLOTS - relay_ring_used(q);
    int n = room < RELAY_BATCH ? (int)room : RELAY_BATCH;
    int discard = n == 0;
    if (discard)
        n = 1; /* full: take one datagram off the socket and count it as lost */
    for (int i = 0; i < n; i++) {
        struct relay_udp_slot *s = relay_ring_at(q, q->tail + (uint32_t)i);
        iov[i].iov_base = discard ? scratch : s->data;
        iov[i].iov_len = RELAY_UDP_SLOT_DATA;
        memset(&msgs[i], 0, sizeof(msgs[i]));
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
    }
    int got = recvmmsg(fd, msgs, (unsigned)n, MSG_DONTWAIT, NULL);
    if (got <= 0)
        return;
    if (discard) {
        q->dropped_full++;
        return;
    }
    uint64_t due = now + r->delay_ns;
    for (int i = 0; i < got; i++) {
        struct relay_udp_slot *s = relay_ring_at(q, q->tail + (uint32_t)i);
        if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
            u->dropped_big++;
            s->len = 0;
        } else {
            s->len = msgs[i].msg_len;
        }
        s->due_ns = due;
        if (session >= 0) {
            s->session = (uint32_t)session;
        } else {
            int sess = relay_udp_session_for(r, u, &from[i], now);
            if (sess < 0) {
                u->dropped_nosession++;
                s->len = 0;
                sess = 0;
            }
            s->session = (uint32_t)sess;
        }
    }
    /* Compact away the slots marked empty (truncated, no session) so the sender never sees them. */
    uint32_t w = q->tail;
    for (int i = 0; i < got; i++) {
        struct relay_udp_slot *s = relay_ring_at(q, q->tail + (uint32_t)i);
        if (s->len == 0)
            continue;
        if (relay_ring_at(q, w) != s)
            memcpy(relay_ring_at(q, w), s, offsetof(struct relay_udp_slot, data) + s->len);
        w++;
    }
    q->tail = w;
}

void relay_udp_writable(struct relay *r, struct relay_udp *u, struct relay_udp_ring *q, int fd,
                        struct relay_ev *ev, uint64_t now)
{
    if (q->blocked && q->blocked_fd == fd) {
        q->blocked = 0;
        relay_epoll_mod(r, fd, EPOLLIN, ev);
        relay_udp_flush(r, u, q, now);
    }
}

int relay_udp_open(struct relay *r, struct relay_udp *u)
{
    u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (u->fd < 0)
        return -errno;
    int one = 1;
    setsockopt(u->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    relay_sockbufs(u->fd);
    if (bind(u->fd, (const struct sockaddr *)&u->listen, sizeof(u->listen)) < 0)
        return -errno;
    u->up.slots = calloc(RELAY_UDP_RING_SLOTS, sizeof(struct relay_udp_slot));
    u->down.slots = calloc(RELAY_UDP_RING_SLOTS, sizeof(struct relay_udp_slot));
    if (!u->up.slots || !u->down.slots)
        return -ENOMEM;
    u->ev = (struct relay_ev){.kind = RELAY_K_UDP_LISTEN, .obj = u};
    return relay_epoll_add(r, u->fd, EPOLLIN, &u->ev);
}
