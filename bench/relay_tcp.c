/* relay_tcp.c: the relay's TCP side: each accepted connection gets an upstream connection and
 * a queue of timed chunks per direction. */
#define _GNU_SOURCE
#include "relay.h"

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

void relay_tcp_update_events(struct relay *r, struct relay_tcp_conn *c)
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
int relay_tcp_flush(struct relay *r, struct relay_tcp_conn *c, int d, uint64_t now)
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

void relay_tcp_accept(struct relay *r, struct relay_tcp *t)
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

void relay_tcp_event(struct relay *r, struct relay_tcp_conn *c, int side, uint32_t events,
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

int relay_tcp_open(struct relay *r, struct relay_tcp *t)
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
