/* relay: forwards UDP datagrams and TCP streams to an upstream address, holding every packet or
 * chunk for a fixed one-way delay in each direction. The bench puts it between a VPN client and
 * its server to give the path a round-trip time, because this kernel has no netem.
 *
 *   relay [-d ONE_WAY_MS] [-b GATHER_US] [-u LISTEN=UPSTREAM]... [-t LISTEN=UPSTREAM]...
 *         addresses are IPv4 ADDR:PORT; -u relays UDP, -t relays TCP; -b: after a wakeup that
 *         found work, sleep GATHER_US so that the next one finds a batch (default 0)
 *
 * One thread, one epoll loop. The delay is the same for every packet, so release times grow with
 * arrival times and a FIFO ring per direction is a sorted queue: only its head needs a timer. UDP
 * goes through recvmmsg into ring slots and out with sendmmsg, 64 at a time; each client address
 * gets its own connected upstream socket. A TCP connection gets an upstream connection and a queue
 * of timed chunks per direction; reading stops while a queue holds RELAY_TCP_MAX_QUEUED bytes, so
 * TCP backpressure crosses the relay. With -d 0 nothing waits for a timer.
 *
 * What a relay costs is mostly the kernel's: every datagram crosses the UDP stack twice. Runs of
 * datagrams of one size to one peer therefore leave as one UDP GSO message, and -b trades a little
 * delay under load (none for a lone datagram) for fewer, fuller wakeups. RELAY_NO_GSO=1 in the
 * environment turns GSO off.
 *
 * SIGUSR1 prints counters to stderr; SIGINT / SIGTERM print them and exit 0. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h, 4.18+ */
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

enum {
    RELAY_MAX_LISTENERS = 8,
    RELAY_UDP_SLOT_DATA = 2048,       /* an OpenVPN UDP packet at MTU 1500 is well below */
    RELAY_UDP_RING_SLOTS = 16384,     /* 30 ms of 500k packets/s per direction */
    RELAY_UDP_MAX_SESSIONS = 16,
    RELAY_UDP_SESSION_IDLE_S = 120,
    RELAY_BATCH = 64,
    RELAY_GSO_SEGS = 64,              /* the kernel takes up to UDP_MAX_SEGMENTS (64 or 128) */
    RELAY_GSO_BYTES = 65000,          /* one UDP message: under 64 KiB with headers */
    RELAY_GSO_IOV = 256,
    RELAY_SOCKBUF = 8 * 1024 * 1024,
    RELAY_TCP_CHUNK = 64 * 1024,
    RELAY_TCP_MAX_QUEUED = 32 * 1024 * 1024, /* above the bandwidth-delay product we need */
    RELAY_MAX_EVENTS = 64,
};

enum relay_kind {
    RELAY_K_UDP_LISTEN,
    RELAY_K_UDP_UPSTREAM,
    RELAY_K_TCP_LISTEN,
    RELAY_K_TCP_CONN,
    RELAY_K_TIMER,
    RELAY_K_SIGNAL,
};

/* What epoll hands back: every registered fd has one of these. */
struct relay_ev {
    enum relay_kind kind;
    void *obj;
    int side; /* for TCP connections: 0 the accepted side, 1 the upstream side */
};

struct relay_udp_slot {
    uint64_t due_ns;
    uint32_t len;
    uint32_t session;
    uint8_t data[RELAY_UDP_SLOT_DATA];
};

/* A FIFO of datagrams waiting for their release time, all going out of one kind of socket. */
struct relay_udp_ring {
    struct relay_udp_slot *slots;
    uint32_t head, tail; /* free-running; index with % RELAY_UDP_RING_SLOTS */
    int blocked;         /* the last send got EAGAIN: wait for EPOLLOUT */
    int blocked_fd;
    uint64_t sent, gso_msgs, dropped_full, dropped_err;
};

struct relay_udp_session {
    int used;
    struct sockaddr_in client;
    int fd; /* connected to the upstream address */
    uint64_t last_ns;
    struct relay_ev ev;
};

struct relay_udp {
    int fd;
    struct sockaddr_in listen, upstream;
    struct relay_ev ev;
    struct relay_udp_ring up, down; /* up: towards upstream; down: towards clients */
    struct relay_udp_session sessions[RELAY_UDP_MAX_SESSIONS];
    uint64_t dropped_big, dropped_nosession;
};

struct relay_tcp_chunk {
    struct relay_tcp_chunk *next;
    uint64_t due_ns;
    uint32_t len, off;
    uint8_t data[RELAY_TCP_CHUNK];
};

/* One direction of a TCP connection: bytes read from src wait here, then go to dst. */
struct relay_tcp_dir {
    struct relay_tcp_chunk *head, *tail;
    size_t queued;
    int eof;      /* src said EOF */
    int shut;     /* dst got SHUT_WR */
    int src_paused;
    int dst_wait; /* dst got EAGAIN */
};

struct relay_tcp_conn {
    struct relay_tcp_conn *next, *prev;
    int fd[2]; /* 0 accepted, 1 upstream */
    int connected;
    uint32_t events[2];
    struct relay_ev ev[2];
    struct relay_tcp_dir dir[2]; /* dir[i]: read from fd[i], written to fd[1 - i] */
    uint64_t bytes[2];
};

struct relay_tcp {
    int fd;
    struct sockaddr_in listen, upstream;
    struct relay_ev ev;
};

struct relay {
    int ep, tfd, sfd;
    uint64_t delay_ns;
    uint64_t batch_ns; /* after a busy wakeup, let packets gather this long */
    int gso;           /* send runs of equal datagrams as one UDP_SEGMENT message */
    uint64_t armed_ns; /* what tfd is armed for; 0 when disarmed */
    struct relay_ev tev, sev;
    struct relay_udp *udp[RELAY_MAX_LISTENERS];
    int n_udp;
    struct relay_tcp *tcp[RELAY_MAX_LISTENERS];
    int n_tcp;
    struct relay_tcp_conn *conns;
    struct relay_tcp_chunk *free_chunks;
    uint64_t tcp_accepted, tcp_bytes;
};

static uint64_t relay_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int relay_parse_addr(const char *s, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host))
        return -EINVAL;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port <= 0 || port > 65535)
        return -EINVAL;
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return -EINVAL;
    return 0;
}

static void relay_sockbufs(int fd)
{
    int v = RELAY_SOCKBUF;
    /* FORCE goes past net.core.[rw]mem_max when we are root; the plain one is the fallback. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}

static int relay_epoll_add(struct relay *r, int fd, uint32_t events, struct relay_ev *ev)
{
    struct epoll_event e = {.events = events, .data.ptr = ev};
    return epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

static void relay_epoll_mod(struct relay *r, int fd, uint32_t events, struct relay_ev *ev)
{
    struct epoll_event e = {.events = events, .data.ptr = ev};
    epoll_ctl(r->ep, EPOLL_CTL_MOD, fd, &e);
}

/* ---------------------------------------------------------------- UDP */

static uint32_t relay_ring_used(const struct relay_udp_ring *q) { return q->tail - q->head; }

static struct relay_udp_slot *relay_ring_at(struct relay_udp_ring *q, uint32_t i)
{
    return &q->slots[i % RELAY_UDP_RING_SLOTS];
}

static int relay_udp_fd_for(struct relay_udp *u, struct relay_udp_ring *q, uint32_t session)
{
    return q == &u->up ? u->sessions[session].fd : u->fd;
}

/* Sends the datagrams at the head of q whose time has come, in sendmmsg batches that share a
 * socket. Runs of datagrams of one size to one destination go as one UDP GSO message
 * (UDP_SEGMENT): the kernel walks its output path once per run instead of once per datagram, which
 * is most of what a relay costs. */
static void relay_udp_flush(struct relay *r, struct relay_udp *u, struct relay_udp_ring *q,
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
static void relay_udp_read(struct relay *r, struct relay_udp *u, int fd, struct relay_udp_ring *q,
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

static void relay_udp_writable(struct relay *r, struct relay_udp *u, struct relay_udp_ring *q, int fd,
                               struct relay_ev *ev, uint64_t now)
{
    if (q->blocked && q->blocked_fd == fd) {
        q->blocked = 0;
        relay_epoll_mod(r, fd, EPOLLIN, ev);
        relay_udp_flush(r, u, q, now);
    }
}

static int relay_udp_open(struct relay *r, struct relay_udp *u)
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

/* ---------------------------------------------------------------- TCP */

static struct relay_tcp_chunk *relay_chunk_get(struct relay *r)
{
    struct relay_tcp_chunk *c = r->free_chunks;
    if (c)
        r->free_chunks = c->next;
    else
        c = malloc(sizeof(*c));
    return c;
}

static void relay_chunk_put(struct relay *r, struct relay_tcp_chunk *c)
{
    c->next = r->free_chunks;
    r->free_chunks = c;
}

static void relay_tcp_update_events(struct relay *r, struct relay_tcp_conn *c)
{
    for (int side = 0; side < 2; side++) {
        if (c->fd[side] < 0)
            continue;
        uint32_t ev = 0;
        if (side == 1 && !c->connected) {
            ev = EPOLLOUT;
        } else {
            /* read from side unless its queue is full or it ended; write to it while the queue
             * that feeds it waits on EAGAIN */
            if (!c->dir[side].eof && !c->dir[side].src_paused)
                ev |= EPOLLIN;
            if (c->dir[1 - side].dst_wait)
                ev |= EPOLLOUT;
        }
        if (ev != c->events[side]) {
            c->events[side] = ev;
            relay_epoll_mod(r, c->fd[side], ev, &c->ev[side]);
        }
    }
}

static void relay_tcp_close(struct relay *r, struct relay_tcp_conn *c, const char *why)
{
    for (int side = 0; side < 2; side++) {
        struct relay_tcp_chunk *ch = c->dir[side].head;
        while (ch) {
            struct relay_tcp_chunk *next = ch->next;
            relay_chunk_put(r, ch);
            ch = next;
        }
        if (c->fd[side] >= 0)
            close(c->fd[side]); /* also drops it from the epoll set */
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        r->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    fprintf(stderr, "relay: tcp connection closed (%s): %llu bytes up, %llu down\n", why,
            (unsigned long long)c->bytes[0], (unsigned long long)c->bytes[1]);
    r->tcp_bytes += c->bytes[0] + c->bytes[1];
    free(c);
}

/* Writes what is due in dir d (fd[d] -> fd[1-d]); returns -1 after closing the connection. */
static int relay_tcp_flush(struct relay *r, struct relay_tcp_conn *c, int d, uint64_t now)
{
    struct relay_tcp_dir *q = &c->dir[d];
    int dst = c->fd[1 - d];
    while (q->head && q->head->due_ns <= now && !q->dst_wait) {
        struct iovec iov[RELAY_BATCH];
        int n = 0;
        for (struct relay_tcp_chunk *ch = q->head; ch && n < RELAY_BATCH && ch->due_ns <= now; ch = ch->next) {
            iov[n].iov_base = ch->data + ch->off;
            iov[n].iov_len = ch->len - ch->off;
            n++;
        }
        ssize_t w = writev(dst, iov, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                q->dst_wait = 1;
                break;
            }
            relay_tcp_close(r, c, strerror(errno));
            return -1;
        }
        c->bytes[d] += (uint64_t)w;
        q->queued -= (size_t)w;
        while (w > 0) {
            struct relay_tcp_chunk *ch = q->head;
            size_t left = ch->len - ch->off;
            if ((size_t)w < left) {
                ch->off += (uint32_t)w;
                break;
            }
            w -= (ssize_t)left;
            q->head = ch->next;
            if (!q->head)
                q->tail = NULL;
            relay_chunk_put(r, ch);
        }
    }
    if (q->src_paused && q->queued < RELAY_TCP_MAX_QUEUED / 2)
        q->src_paused = 0;
    if (q->eof && !q->head && !q->shut) {
        shutdown(dst, SHUT_WR);
        q->shut = 1;
    }
    if (c->dir[0].shut && c->dir[1].shut) {
        relay_tcp_close(r, c, "both sides done");
        return -1;
    }
    return 0;
}

/* Reads from fd[d] into dir d's queue; returns -1 after closing the connection. */
static int relay_tcp_read(struct relay *r, struct relay_tcp_conn *c, int d, uint64_t now)
{
    struct relay_tcp_dir *q = &c->dir[d];
    for (int rounds = 0; rounds < 16 && !q->eof; rounds++) {
        if (q->queued >= RELAY_TCP_MAX_QUEUED) {
            q->src_paused = 1;
            break;
        }
        /* Append to the tail chunk while it has room and the same release time (with -d 0 or
         * within one wakeup), so small reads do not each take a 64 KiB chunk. */
        struct relay_tcp_chunk *ch = q->tail;
        if (!ch || ch->due_ns != now + r->delay_ns || ch->len == RELAY_TCP_CHUNK) {
            ch = relay_chunk_get(r);
            if (!ch) {
                relay_tcp_close(r, c, "out of memory");
                return -1;
            }
            ch->next = NULL;
            ch->due_ns = now + r->delay_ns;
            ch->len = ch->off = 0;
            if (q->tail)
                q->tail->next = ch;
            else
                q->head = ch;
            q->tail = ch;
        }
        ssize_t n = read(c->fd[d], ch->data + ch->len, RELAY_TCP_CHUNK - ch->len);
        if (n > 0) {
            ch->len += (uint32_t)n;
            q->queued += (size_t)n;
            continue;
        }
        if (ch->len == 0) { /* nothing landed in the chunk we just added: take it back */
            struct relay_tcp_chunk **pp = &q->head;
            while (*pp != ch)
                pp = &(*pp)->next;
            *pp = NULL;
            q->tail = NULL;
            for (struct relay_tcp_chunk *t = q->head; t; t = t->next)
                q->tail = t;
            relay_chunk_put(r, ch);
        }
        if (n == 0) {
            q->eof = 1;
            break;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        relay_tcp_close(r, c, strerror(errno));
        return -1;
    }
    return relay_tcp_flush(r, c, d, now);
}

static void relay_tcp_accept(struct relay *r, struct relay_tcp *t)
{
    for (;;) {
        int fd = accept4(t->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct relay_tcp_conn *c = calloc(1, sizeof(*c));
        int up = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (!c || up < 0) {
            free(c);
            close(fd);
            if (up >= 0)
                close(up);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(up, (const struct sockaddr *)&t->upstream, sizeof(t->upstream)) < 0 &&
            errno != EINPROGRESS) {
            close(fd);
            close(up);
            free(c);
            continue;
        }
        c->fd[0] = fd;
        c->fd[1] = up;
        for (int side = 0; side < 2; side++)
            c->ev[side] = (struct relay_ev){.kind = RELAY_K_TCP_CONN, .obj = c, .side = side};
        /* the accepted side waits (no EPOLLIN) until the upstream connection is made */
        relay_epoll_add(r, fd, 0, &c->ev[0]);
        c->events[1] = EPOLLOUT;
        relay_epoll_add(r, up, EPOLLOUT, &c->ev[1]);
        c->next = r->conns;
        if (r->conns)
            r->conns->prev = c;
        r->conns = c;
        r->tcp_accepted++;
    }
}

static void relay_tcp_event(struct relay *r, struct relay_tcp_conn *c, int side, uint32_t events,
                            uint64_t now)
{
    if (side == 1 && !c->connected) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            relay_tcp_close(r, c, strerror(err));
            return;
        }
        c->connected = 1;
        relay_tcp_update_events(r, c);
        return;
    }
    if (events & EPOLLOUT) {
        c->dir[1 - side].dst_wait = 0;
        if (relay_tcp_flush(r, c, 1 - side, now) < 0)
            return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (relay_tcp_read(r, c, side, now) < 0)
            return;
    }
    relay_tcp_update_events(r, c);
}

static int relay_tcp_open(struct relay *r, struct relay_tcp *t)
{
    t->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (t->fd < 0)
        return -errno;
    int one = 1;
    setsockopt(t->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(t->fd, (const struct sockaddr *)&t->listen, sizeof(t->listen)) < 0 || listen(t->fd, 128) < 0)
        return -errno;
    t->ev = (struct relay_ev){.kind = RELAY_K_TCP_LISTEN, .obj = t};
    return relay_epoll_add(r, t->fd, EPOLLIN, &t->ev);
}

/* ---------------------------------------------------------------- loop */

static void relay_flush_all(struct relay *r, uint64_t now)
{
    for (int i = 0; i < r->n_udp; i++) {
        relay_udp_flush(r, r->udp[i], &r->udp[i]->up, now);
        relay_udp_flush(r, r->udp[i], &r->udp[i]->down, now);
    }
    struct relay_tcp_conn *c = r->conns;
    while (c) {
        struct relay_tcp_conn *next = c->next;
        if (relay_tcp_flush(r, c, 0, now) == 0 && relay_tcp_flush(r, c, 1, now) == 0)
            relay_tcp_update_events(r, c);
        c = next;
    }
}

/* Arms the timer for the earliest release time still waiting, if any. */
static void relay_arm_timer(struct relay *r)
{
    uint64_t next = 0;
#define RELAY_CONSIDER(t) do { if ((t) && (!next || (t) < next)) next = (t); } while (0)
    for (int i = 0; i < r->n_udp; i++) {
        struct relay_udp_ring *qs[2] = {&r->udp[i]->up, &r->udp[i]->down};
        for (int k = 0; k < 2; k++)
            if (!qs[k]->blocked && qs[k]->head != qs[k]->tail)
                RELAY_CONSIDER(relay_ring_at(qs[k], qs[k]->head)->due_ns);
    }
    for (struct relay_tcp_conn *c = r->conns; c; c = c->next)
        for (int d = 0; d < 2; d++)
            if (c->dir[d].head && !c->dir[d].dst_wait)
                RELAY_CONSIDER(c->dir[d].head->due_ns);
#undef RELAY_CONSIDER
    if (next == r->armed_ns)
        return;
    struct itimerspec its = {0};
    if (next) {
        its.it_value.tv_sec = (time_t)(next / 1000000000u);
        its.it_value.tv_nsec = (long)(next % 1000000000u);
    }
    timerfd_settime(r->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    r->armed_ns = next;
}

static void relay_print_stats(const struct relay *r)
{
    for (int i = 0; i < r->n_udp; i++) {
        const struct relay_udp *u = r->udp[i];
        fprintf(stderr,
                "relay: udp %d: sent up %llu down %llu (%llu GSO messages); dropped: queue full %llu/%llu, send error "
                "%llu/%llu, too big %llu, no session %llu\n",
                i, (unsigned long long)u->up.sent, (unsigned long long)u->down.sent,
                (unsigned long long)(u->up.gso_msgs + u->down.gso_msgs),
                (unsigned long long)u->up.dropped_full, (unsigned long long)u->down.dropped_full,
                (unsigned long long)u->up.dropped_err, (unsigned long long)u->down.dropped_err,
                (unsigned long long)u->dropped_big, (unsigned long long)u->dropped_nosession);
    }
    unsigned long long live = 0;
    for (const struct relay_tcp_conn *c = r->conns; c; c = c->next)
        live += c->bytes[0] + c->bytes[1];
    fprintf(stderr, "relay: tcp: %llu accepted, %llu bytes relayed\n",
            (unsigned long long)r->tcp_accepted, (unsigned long long)(r->tcp_bytes + live));
}

static int relay_run(struct relay *r)
{
    struct epoll_event events[RELAY_MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(r->ep, events, RELAY_MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("relay: epoll_wait");
            return 1;
        }
        uint64_t now = relay_now_ns();
        for (int i = 0; i < n; i++) {
            struct relay_ev *ev = events[i].data.ptr;
            uint32_t e = events[i].events;
            switch (ev->kind) {
            case RELAY_K_UDP_LISTEN: {
                struct relay_udp *u = ev->obj;
                if (e & EPOLLOUT)
                    relay_udp_writable(r, u, &u->down, u->fd, &u->ev, now);
                if (e & EPOLLIN)
                    relay_udp_read(r, u, u->fd, &u->up, -1, now);
                break;
            }
            case RELAY_K_UDP_UPSTREAM: {
                struct relay_udp *u = ev->obj;
                struct relay_udp_session *s = &u->sessions[ev->side];
                if (e & EPOLLOUT)
                    relay_udp_writable(r, u, &u->up, s->fd, &s->ev, now);
                if (e & (EPOLLIN | EPOLLERR))
                    relay_udp_read(r, u, s->fd, &u->down, ev->side, now);
                break;
            }
            case RELAY_K_TCP_LISTEN:
                relay_tcp_accept(r, ev->obj);
                break;
            case RELAY_K_TCP_CONN:
                relay_tcp_event(r, ev->obj, ev->side, e, now);
                break;
            case RELAY_K_TIMER: {
                uint64_t ticks;
                if (read(r->tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
                    perror("relay: timerfd");
                r->armed_ns = 0;
                break;
            }
            case RELAY_K_SIGNAL: {
                struct signalfd_siginfo si;
                if (read(r->sfd, &si, sizeof(si)) != sizeof(si))
                    break;
                relay_print_stats(r);
                if (si.ssi_signo != SIGUSR1)
                    return 0;
                break;
            }
            }
        }
        /* one clock read per wakeup: release what is due, then sleep until the next release */
        relay_flush_all(r, relay_now_ns());
        relay_arm_timer(r);
        if (r->batch_ns && n > 0) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)r->batch_ns};
            nanosleep(&ts, NULL);
        }
    }
}

static void relay_usage(void)
{
    fprintf(stderr, "usage: relay [-d ONE_WAY_MS] [-b GATHER_US] [-u LISTEN=UPSTREAM]... [-t LISTEN=UPSTREAM]...\n"
                    "  addresses are IPv4 ADDR:PORT; -u relays UDP, -t relays TCP\n");
}

int main(int argc, char **argv)
{
    struct relay r = {0};
    int opt;
    double delay_ms = 0;
    while ((opt = getopt(argc, argv, "b:d:u:t:h")) != -1) {
        struct sockaddr_in l, up;
        char *eq = optarg ? strchr(optarg, '=') : NULL;
        switch (opt) {
        case 'b':
            r.batch_ns = (uint64_t)strtoul(optarg, NULL, 10) * 1000u;
            break;
        case 'd':
            delay_ms = strtod(optarg, NULL);
            if (delay_ms < 0 || delay_ms > 10000) {
                relay_usage();
                return 1;
            }
            break;
        case 'u':
        case 't':
            if (!eq || (*eq = '\0', relay_parse_addr(optarg, &l) < 0) || relay_parse_addr(eq + 1, &up) < 0) {
                fprintf(stderr, "relay: bad address pair %s\n", optarg);
                return 1;
            }
            if ((opt == 'u' ? r.n_udp : r.n_tcp) >= RELAY_MAX_LISTENERS) {
                fprintf(stderr, "relay: at most %d of each\n", RELAY_MAX_LISTENERS);
                return 1;
            }
            if (opt == 'u') {
                struct relay_udp *u = calloc(1, sizeof(*u));
                if (!u)
                    return 1;
                u->listen = l;
                u->upstream = up;
                r.udp[r.n_udp++] = u;
            } else {
                struct relay_tcp *t = calloc(1, sizeof(*t));
                if (!t)
                    return 1;
                t->listen = l;
                t->upstream = up;
                r.tcp[r.n_tcp++] = t;
            }
            break;
        default:
            relay_usage();
            return opt == 'h' ? 0 : 1;
        }
    }
    if (optind != argc || r.n_udp + r.n_tcp == 0) {
        relay_usage();
        return 1;
    }
    r.delay_ns = (uint64_t)(delay_ms * 1e6);
    r.gso = getenv("RELAY_NO_GSO") == NULL;
    signal(SIGPIPE, SIG_IGN);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    r.ep = epoll_create1(EPOLL_CLOEXEC);
    r.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    r.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (r.ep < 0 || r.tfd < 0 || r.sfd < 0) {
        perror("relay: setup");
        return 1;
    }
    r.tev = (struct relay_ev){.kind = RELAY_K_TIMER};
    r.sev = (struct relay_ev){.kind = RELAY_K_SIGNAL};
    relay_epoll_add(&r, r.tfd, EPOLLIN, &r.tev);
    relay_epoll_add(&r, r.sfd, EPOLLIN, &r.sev);
    for (int i = 0; i < r.n_udp; i++) {
        int rc = relay_udp_open(&r, r.udp[i]);
        if (rc < 0) {
            fprintf(stderr, "relay: udp listener %d: %s\n", i, strerror(-rc));
            return 1;
        }
    }
    for (int i = 0; i < r.n_tcp; i++) {
        int rc = relay_tcp_open(&r, r.tcp[i]);
        if (rc < 0) {
            fprintf(stderr, "relay: tcp listener %d: %s\n", i, strerror(-rc));
            return 1;
        }
    }
    fprintf(stderr, "relay: %d udp, %d tcp listeners, one-way delay %.3f ms\n", r.n_udp, r.n_tcp, delay_ms);
    return relay_run(&r);
}
