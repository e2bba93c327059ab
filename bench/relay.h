/* relay.h: what the relay's three files share (relay.c: the loop and main; relay_udp.c: the
 * UDP rings and sessions; relay_tcp.c: the TCP connections). relay.c's opening comment says
 * how the relay works. */
#ifndef BENCH_RELAY_H
#define BENCH_RELAY_H

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

static inline uint32_t relay_ring_used(const struct relay_udp_ring *q) { return q->tail - q->head; }
static inline struct relay_udp_slot *relay_ring_at(struct relay_udp_ring *q, uint32_t i)
{
    return &q->slots[i % RELAY_UDP_RING_SLOTS];
}

/* relay.c */
uint64_t relay_now_ns(void);
int relay_parse_addr(const char *s, struct sockaddr_in *sa);
void relay_sockbufs(int fd);
int relay_epoll_add(struct relay *r, int fd, uint32_t events, struct relay_ev *ev);
void relay_epoll_mod(struct relay *r, int fd, uint32_t events, struct relay_ev *ev);

/* relay_udp.c */
void relay_udp_flush(struct relay *r, struct relay_udp *u, struct relay_udp_ring *q, uint64_t now);
void relay_udp_read(struct relay *r, struct relay_udp *u, int fd, struct relay_udp_ring *q, int session,
                    uint64_t now);
void relay_udp_writable(struct relay *r, struct relay_udp *u, struct relay_udp_ring *q, int fd,
                        struct relay_ev *ev, uint64_t now);
int relay_udp_open(struct relay *r, struct relay_udp *u);

/* relay_tcp.c */
void relay_tcp_update_events(struct relay *r, struct relay_tcp_conn *c);
int relay_tcp_flush(struct relay *r, struct relay_tcp_conn *c, int d, uint64_t now);
void relay_tcp_accept(struct relay *r, struct relay_tcp *t);
void relay_tcp_event(struct relay *r, struct relay_tcp_conn *c, int side, uint32_t events, uint64_t now);
int relay_tcp_open(struct relay *r, struct relay_tcp *t);

#endif
