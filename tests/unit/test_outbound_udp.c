/* The outbounds' datagram ops (route/outbound.h): the direct one against a real UDP echo socket on
 * loopback, and the routed one over the real stack behind the fake tunnel (harness_tun.h), where
 * the test plays the hosts behind the VPN and its DNS server: a tunnel verdict reaches the
 * tunnel, a direct one the host's socket, a rejected destination is UV_EACCES and logged once, a
 * name is resolved through the tunnel's DNS and remembered, and closing ends everything. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "base/log.h"
#include "harness_tun.h"
#include "route/dgram.h"
#include "route/dial.h"
#include "route/direct.h"
#include "route/listener.h"
#include "route/outbound.h"
#include "route/router.h"
#include "route/via_stack.h"
#include "stack/dnsmsg.h"
#include "stack/stack.h"
#include "test.h"
#include "tunnel/settings.h"
#include "uvtest.h"

enum {
    OT_MAX_PKTS = 64,
    OT_PKT_MAX = 1500,
    OT_MAX_GOT = 16,
};

/* A UDP echo socket of the test: answers "echo:" and what it got, to the sender. */
struct ot_echo {
    uv_udp_t h;
    struct sockaddr_storage last_from; /* the sender of the last datagram */
    int got;
};

static void ot_echo_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char mem[65536];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(mem, sizeof(mem));
}

static void ot_echo_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                         unsigned flags)
{
    struct ot_echo *e = h->data;
    (void)flags;
    if (nread < 0 || !addr)
        return;
    e->got++;
    memcpy(&e->last_from, addr, addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    char out[70000];
    memcpy(out, "echo:", 5);
    memcpy(out + 5, buf->base, (size_t)nread);
    uv_buf_t b = uv_buf_init(out, (unsigned)nread + 5);
    ASSERT_EQ(uv_udp_try_send(h, &b, 1, addr), (int)nread + 5);
}

/* Binds an echo socket on text (a loopback address); returns its port, 0 when that family is
 * not available here. */
static uint16_t ot_echo_start_port(struct ot_echo *e, uv_loop_t *loop, const char *text, uint16_t port);

static uint16_t ot_echo_start(struct ot_echo *e, uv_loop_t *loop, const char *text)
{
    return ot_echo_start_port(e, loop, text, 0);
}

/* The same on a given port (0: one the kernel picks). */
static uint16_t ot_echo_start_port(struct ot_echo *e, uv_loop_t *loop, const char *text, uint16_t want)
{
    struct v2s_addr a;
    struct sockaddr_storage ss;
    memset(e, 0, sizeof(*e));
    ASSERT_EQ(v2s_addr_parse(&a, text), 0);
    ASSERT(v2s_addr_to_sockaddr(&a, want, &ss) > 0);
    ASSERT_EQ(uv_udp_init(loop, &e->h), 0);
    e->h.data = e;
    if (uv_udp_bind(&e->h, (const struct sockaddr *)&ss, 0) < 0) {
        uv_close((uv_handle_t *)&e->h, NULL);
        return 0;
    }
    ASSERT_EQ(uv_udp_recv_start(&e->h, ot_echo_alloc, ot_echo_recv), 0);
    int len = sizeof(ss);
    ASSERT_EQ(uv_udp_getsockname(&e->h, (struct sockaddr *)&ss, &len), 0);
    uint16_t port;
    ASSERT_EQ(v2s_addr_from_sockaddr((const struct sockaddr *)&ss, &a, &port), 0);
    return port;
}

/* What an association's recv got. */
struct ot_got {
    struct outbound_udp *close_in_recv; /* closed by the next recv when set */
    int calls;
    struct v2s_addr from[OT_MAX_GOT];
    uint16_t port[OT_MAX_GOT];
    char data[OT_MAX_GOT][64];
};

static void ot_recv(void *arg, const struct v2s_addr *from, uint16_t port, const uint8_t *data, size_t len)
{
    struct ot_got *g = arg;
    ASSERT(g->calls < OT_MAX_GOT);
    ASSERT(len < sizeof(g->data[0]));
    g->from[g->calls] = *from;
    g->port[g->calls] = port;
    memcpy(g->data[g->calls], data, len);
    g->data[g->calls][len] = '\0';
    g->calls++;
    if (g->close_in_recv) {
        outbound_udp_close(g->close_in_recv);
        g->close_in_recv = NULL;
    }
}

struct ot_wait {
    const struct ot_got *g;
    int n;
};

static int ot_reached(void *arg)
{
    const struct ot_wait *w = arg;
    return w->g->calls >= w->n;
}

/* Runs loop until g has seen n datagrams (3 s at most); returns whether it has. */
static int ot_wait_calls(uv_loop_t *loop, const struct ot_got *g, int n)
{
    struct ot_wait w = {g, n};
    return uvtest_run_until_fn(loop, ot_reached, &w, 3000);
}

static int ot_is(const struct v2s_addr *a, const char *text)
{
    struct v2s_addr b;
    return v2s_addr_parse(&b, text) == 0 && v2s_addr_equal(a, &b);
}

static void ot_closed(void *arg)
{
    (*(int *)arg)++;
}

static int ot_two(void *arg)
{
    return *(int *)arg >= 2;
}

static int ot_send(struct outbound_udp *u, const char *name, const char *dst, uint16_t port, const char *text)
{
    struct v2s_addr a;
    if (dst)
        ASSERT_EQ(v2s_addr_parse(&a, dst), 0);
    return outbound_udp_send(u, name, dst ? &a : NULL, port, (const uint8_t *)text, strlen(text));
}

/* The direct outbound: a datagram to a loopback echo socket and its answer through recv, from
 * the echo's address and port, over IPv4 and (where the host has it) IPv6; a name is refused.
 * Closing the outbound ends the association at once (nothing more arrives, sending is
 * UV_ECANCELED) and frees the outbound once the association's owner closed it too, with every
 * handle closed. */
TEST_IMPL(direct_outbound_udp)
{
    uv_loop_t loop;
    struct outbound *direct;
    static struct ot_echo echo4, echo6;
    static struct ot_got got;
    int closed = 0;
    ASSERT_EQ(uv_loop_init(&loop), 0);
    ASSERT_EQ(direct_new(&direct, &loop), 0);
    uint16_t port4 = ot_echo_start(&echo4, &loop, "127.0.0.1");
    uint16_t port6 = ot_echo_start(&echo6, &loop, "::1");
    ASSERT(port4 != 0);
    struct outbound_udp *u = NULL, *other = NULL;
    ASSERT_EQ(outbound_udp_open(direct, ot_recv, &got, &u), 0);

    ASSERT_EQ(ot_send(u, NULL, "127.0.0.1", port4, "ping"), 0);
    ASSERT(uvtest_run_until(&loop, &got.calls, 3000));
    ASSERT(ot_is(&got.from[0], "127.0.0.1"));
    ASSERT_EQ(got.port[0], port4);
    ASSERT_STR_EQ(got.data[0], "echo:ping");
    if (port6) {
        ASSERT_EQ(ot_send(u, NULL, "::1", port6, "ping6"), 0);
        ASSERT(ot_wait_calls(&loop, &got, 2));
        ASSERT(ot_is(&got.from[1], "::1"));
        ASSERT_EQ(got.port[1], port6);
        ASSERT_STR_EQ(got.data[1], "echo:ping6");
    }
    ASSERT_EQ(ot_send(u, "localhost", NULL, port4, "x"), UV_EINVAL);

    /* A second association gets a socket (and port) of its own; closing it closes that. */
    ASSERT_EQ(outbound_udp_open(direct, ot_recv, &got, &other), 0);
    echo4.got = 0;
    ASSERT_EQ(ot_send(other, NULL, "127.0.0.1", port4, "other"), 0);
    ASSERT(uvtest_run_until(&loop, &echo4.got, 3000));
    unsigned handles = uvtest_handles(&loop);
    outbound_udp_close(other);
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_EQ(uvtest_handles(&loop), handles - 1);

    /* The outbound closes under u: nothing more arrives, nothing more goes. */
    int calls = got.calls;
    struct sockaddr_storage u_addr = echo4.last_from;
    outbound_close(direct, ot_closed, &closed);
    ASSERT_EQ(ot_send(u, NULL, "127.0.0.1", port4, "late"), UV_ECANCELED);
    uv_buf_t b = uv_buf_init((char *)"unasked", 7);
    uv_udp_try_send(&echo4.h, &b, 1, (const struct sockaddr *)&u_addr);
    for (int i = 0; i < 50; i++)
        uvtest_run_until(&loop, &closed, 1);
    ASSERT_EQ(got.calls, calls);
    ASSERT_EQ(closed, 0); /* u's owner has not closed it yet */
    outbound_udp_close(u);
    ASSERT(uvtest_run_until(&loop, &closed, 3000));
    ASSERT_EQ(closed, 1);
    uv_close((uv_handle_t *)&echo4.h, NULL);
    if (port6)
        uv_close((uv_handle_t *)&echo6.h, NULL);
    uvtest_loop_finish(&loop);
    return 0;
}

/* The record of this process's own sockets with many UDP sockets in it (a SOCKS relay's each):
 * every one is found by its address and port, not as a TCP socket nor on another address, and a
 * question compares addr:port with the few recorded sockets of its port's bucket, not with all of
 * them. Failed before the fix: one list held every socket, and asking for each of the 200 ports
 * once compared 20,100 times (the assertion allows 2,000; with the fix, about 300). */
TEST_IMPL(listener_own_many)
{
    enum { N = 200 };
    uv_loop_t loop;
    static uv_udp_t socks[N];
    static struct listener_own own[N];
    static uint16_t ports[N];
    ASSERT_EQ(uv_loop_init(&loop), 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(0x7F000001);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(uv_udp_init(&loop, &socks[i]), 0);
        ASSERT_EQ(uv_udp_bind(&socks[i], (const struct sockaddr *)&sin, 0), 0);
        listener_own_init(&own[i]);
        listener_own_add(&own[i], (const uv_handle_t *)&socks[i]);
        ports[i] = own[i].port;
        ASSERT(ports[i] != 0);
    }
    struct v2s_addr lo, lo2;
    ASSERT_EQ(v2s_addr_parse(&lo, "127.0.0.1"), 0);
    ASSERT_EQ(v2s_addr_parse(&lo2, "127.0.0.2"), 0);
    unsigned long before = listener_own_compared;
    for (int i = 0; i < N; i++)
        ASSERT_ROW(listener_is_own(&lo, ports[i], SOCK_DGRAM), "socket %d (port %u) not found", i, ports[i]);
    unsigned long compared = listener_own_compared - before;
    ASSERT_ROW(compared < 2000, "%lu comparisons for %d questions", compared, N);
    ASSERT_EQ(listener_is_own(&lo, ports[0], SOCK_STREAM), 0);
    ASSERT_EQ(listener_is_own(&lo2, ports[0], SOCK_DGRAM), 0);
    for (int i = 0; i < N; i++) {
        listener_own_remove(&own[i]);
        uv_close((uv_handle_t *)&socks[i], NULL);
    }
    ASSERT_EQ(listener_is_own(&lo, ports[0], SOCK_DGRAM), 0);
    uvtest_loop_finish(&loop);
    return 0;
}

/* The direct outbound when the process is out of descriptors at an association's first datagram:
 * that datagram fails (UV_EMFILE), and once descriptors are free again the next one goes out.
 * Before, the failure was kept as the family's for the association's life, as if the host had no
 * IPv4, and every later datagram failed with it. */
TEST_IMPL(direct_outbound_udp_emfile)
{
    uv_loop_t loop;
    struct outbound *direct;
    static struct ot_echo echo;
    static struct ot_got got;
    int closed = 0;
    ASSERT_EQ(uv_loop_init(&loop), 0);
    ASSERT_EQ(direct_new(&direct, &loop), 0);
    uint16_t port = ot_echo_start(&echo, &loop, "127.0.0.1");
    ASSERT(port != 0);
    struct outbound_udp *u = NULL;
    ASSERT_EQ(outbound_udp_open(direct, ot_recv, &got, &u), 0);

    /* The limit at the lowest free descriptor: the next socket() is EMFILE. */
    struct rlimit saved, low;
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
    int free_fd = open("/dev/null", O_RDONLY);
    ASSERT(free_fd >= 0);
    close(free_fd);
    low = saved;
    low.rlim_cur = (rlim_t)free_fd;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    int rc = ot_send(u, NULL, "127.0.0.1", port, "starved");
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
    ASSERT_EQ(rc, UV_EMFILE);

    ASSERT_EQ(ot_send(u, NULL, "127.0.0.1", port, "again"), 0);
    ASSERT(uvtest_run_until(&loop, &got.calls, 3000));
    ASSERT_STR_EQ(got.data[0], "echo:again");

    outbound_udp_close(u);
    outbound_close(direct, ot_closed, &closed);
    ASSERT(uvtest_run_until(&loop, &closed, 3000));
    uv_close((uv_handle_t *)&echo.h, NULL);
    uvtest_loop_finish(&loop);
    return 0;
}

/* route/dgram.c's bounded queue on a socket that does not take more (a datagram socketpair whose
 * other end reads nothing, so sendmsg() says EAGAIN past a few): empty datagrams are bounded like
 * any other (they queued without end: libuv counts a queue's bytes, and these have none), and
 * once the queue is full a datagram of any size is dropped with UV_ENOBUFS. Closing the socket
 * frees what waited (ASan checks). */
TEST_IMPL(dgram_queue_bounded)
{
    enum { QUEUE_MAX = 64 * 1024, TRIES = 20000 };
    uv_loop_t loop;
    uv_udp_t h;
    int fds[2];
    ASSERT_EQ(uv_loop_init(&loop), 0);
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM, 0, fds), 0);
    ASSERT_EQ(uv_udp_init(&loop, &h), 0);
    ASSERT_EQ(uv_udp_open(&h, fds[0]), 0);
    int rc = 0;
    for (unsigned i = 0; i < TRIES && rc == 0; i++)
        rc = dgram_send(&h, NULL, NULL, 0, (const uint8_t *)"", 0, QUEUE_MAX);
    ASSERT_EQ(rc, UV_ENOBUFS);
    ASSERT(uv_udp_get_send_queue_count(&h) > 0);
    /* What waits holds at most QUEUE_MAX bytes, requests included. */
    ASSERT(uv_udp_get_send_queue_count(&h) * sizeof(uv_udp_send_t) + uv_udp_get_send_queue_size(&h) <= QUEUE_MAX);
    ASSERT_EQ(dgram_send(&h, NULL, (const uint8_t *)"h", 1, (const uint8_t *)"data", 4, QUEUE_MAX), UV_ENOBUFS);
    uv_close((uv_handle_t *)&h, NULL);
    uvtest_loop_finish(&loop);
    close(fds[1]);
    return 0;
}

/* --- the routed outbound over the stack --- */

struct rt_dgram {
    struct v2s_addr src, dst;
    uint16_t sport, dport;
    char data[64];
};

struct rt {
    struct harness_tun tun;
    /* Datagrams the stack sent, DNS queries aside. */
    struct rt_dgram sent[OT_MAX_PKTS];
    int n_sent;
    /* The DNS server: the names it was asked, and its answers waiting to be injected. */
    char asked[16][256];
    int n_asked;
    uint8_t answers[16][OT_PKT_MAX];
    size_t answer_len[16];
    int n_answers;
};

/* Plays the tunnel's DNS server (svc.corp is 10.9.0.8, other names do not exist) and records
 * every other datagram. */
static void rt_on_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct rt *r = t->arg;
    struct v2s_addr src, dst;
    uint16_t sport, dport;
    const uint8_t *m;
    size_t n;
    if (!harness_tun_parse_udp(pkt, len, &src, &sport, &dst, &dport, &m, &n))
        return;
    if (dport == 53) {
        char name[256];
        uint16_t id, qtype;
        size_t qend = harness_tun_dns_question(m, n, name, sizeof(name), &id, &qtype);
        ASSERT(qend > 0 && r->n_asked < 16 && r->n_answers < 16);
        snprintf(r->asked[r->n_asked++], sizeof(r->asked[0]), "%s", name);
        struct v2s_addr a;
        ASSERT_EQ(v2s_addr_parse(&a, "10.9.0.8"), 0);
        int known = strcmp(name, "svc.corp") == 0;
        uint8_t out[OT_PKT_MAX];
        size_t alen = harness_tun_dns_answer(out, m, qend, id, known ? DNSMSG_RCODE_NOERROR : DNSMSG_RCODE_NXDOMAIN,
                                             known ? &a : NULL);
        size_t plen = harness_tun_udp(r->answers[r->n_answers], OT_PKT_MAX, &dst, 53, &src, sport, out, alen);
        ASSERT(plen > 0);
        r->answer_len[r->n_answers++] = plen;
        return;
    }
    ASSERT(r->n_sent < OT_MAX_PKTS && n < sizeof(r->sent[0].data));
    struct rt_dgram *d = &r->sent[r->n_sent++];
    d->src = src;
    d->dst = dst;
    d->sport = sport;
    d->dport = dport;
    memcpy(d->data, m, n);
    d->data[n] = '\0';
}

/* Injects the DNS server's answers held so far. */
static void rt_answer(struct rt *r)
{
    static uint8_t pkt[OT_PKT_MAX];
    for (int i = 0; i < r->n_answers; i++) {
        memcpy(pkt, r->answers[i], r->answer_len[i]);
        harness_tun_inject(&r->tun, pkt, r->answer_len[i]);
    }
    r->n_answers = 0;
}

static size_t rt_count(const char *log, const char *needle)
{
    size_t n = 0;
    for (const char *p = log; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* The routed outbound's UDP: a tunnel verdict goes out of the stack from the tunnel address and
 * its answer comes back through recv; a direct verdict goes out of a host socket to a loopback
 * echo, whose answer comes out of the same recv; a rejected destination is UV_EACCES, logged
 * once; a name is resolved through the tunnel's DNS server while at most 8 datagrams wait (they
 * leave in order once it answers), then remembered (no second query); a name that does not
 * exist is logged once and known at once after. The tunnel's outbound takes no name. Closing
 * the routed outbound ends the association (and its inner ones) and frees the outbound once
 * the owner closed it. */
TEST_IMPL(dial_udp_routes)
{
    static struct rt r;
    static struct ot_got got;
    static struct ot_echo echo;
    memset(&r, 0, sizeof(r));
    struct harness_tun_config cfg = {.addr4 = "10.8.0.2", .dns = {"10.9.0.53"}, .seed = 5};
    ASSERT_EQ(harness_tun_up(&r.tun, &cfg, rt_on_send, &r), 0);
    uv_loop_t *loop = &r.tun.loop;
    struct router router;
    router_init(&router);
    struct v2s_cidr c;
    ASSERT_EQ(v2s_cidr_parse(&c, "10.9.0.0/16", 0), 0);
    ASSERT_EQ(router_add_user(&router, &c, ROUTER_TUNNEL), 0);
    ASSERT_EQ(v2s_cidr_parse(&c, "127.0.0.0/8", 0), 0);
    ASSERT_EQ(router_add_user(&router, &c, ROUTER_DIRECT), 0);
    router.others = ROUTER_OTHERS_REJECT;
    router.allow_direct_local = 1;
    struct outbound *via, *direct, *dialer;
    ASSERT_EQ(via_stack_new(&via, r.tun.stack), 0);
    ASSERT_EQ(direct_new(&direct, loop), 0);
    struct dial_config dcfg = {.loop = loop, .stack = r.tun.stack, .router = &router};
    dcfg.via[ROUTER_TUNNEL] = via;
    dcfg.via[ROUTER_DIRECT] = direct;
    ASSERT_EQ(dial_new(&dialer, &dcfg), 0);
    struct outbound_udp *u = NULL, *raw = NULL;
    ASSERT_EQ(outbound_udp_open(dialer, ot_recv, &got, &u), 0);

    /* The tunnel: out from the tunnel address and a random dynamic port, and back. */
    ASSERT_EQ(ot_send(u, NULL, "10.9.0.7", 5000, "hello"), 0);
    ASSERT_EQ(r.n_sent, 1);
    ASSERT(ot_is(&r.sent[0].src, "10.8.0.2") && ot_is(&r.sent[0].dst, "10.9.0.7"));
    ASSERT(r.sent[0].sport >= 49152);
    ASSERT_EQ(r.sent[0].dport, 5000);
    ASSERT_STR_EQ(r.sent[0].data, "hello");
    uint8_t pkt[OT_PKT_MAX];
    struct v2s_addr peer, self;
    ASSERT_EQ(v2s_addr_parse(&peer, "10.9.0.7"), 0);
    ASSERT_EQ(v2s_addr_parse(&self, "10.8.0.2"), 0);
    size_t len = harness_tun_udp(pkt, sizeof(pkt), &peer, 5000, &self, r.sent[0].sport, (const uint8_t *)"hi", 2);
    harness_tun_inject(&r.tun, pkt, len);
    ASSERT_EQ(got.calls, 1);
    ASSERT(ot_is(&got.from[0], "10.9.0.7"));
    ASSERT_EQ(got.port[0], 5000);
    ASSERT_STR_EQ(got.data[0], "hi");
    /* A numeric name is an address. */
    ASSERT_EQ(ot_send(u, "10.9.0.7", NULL, 5001, "numeric"), 0);
    ASSERT_EQ(r.n_sent, 2);
    ASSERT_EQ(r.sent[1].dport, 5001);
    ASSERT_EQ(r.sent[1].sport, r.sent[0].sport); /* the same inner association */

    /* Rejected: at once, and one log line however many datagrams. */
    int saved_level = v2s_log_level;
    v2s_log_level = V2S_LOG_INFO;
    uvtest_log_begin();
    ASSERT_EQ(ot_send(u, NULL, "203.0.113.1", 53, "no"), UV_EACCES);
    ASSERT_EQ(ot_send(u, NULL, "203.0.113.1", 53, "no"), UV_EACCES);
    const char *log = uvtest_log_end();
    ASSERT_EQ(rt_count(log, "203.0.113.1:53: not allowed by the routes"), 1);
    ASSERT_EQ(r.n_sent, 2);

    /* A name: one query through the tunnel; 8 datagrams wait for it, the 9th is dropped. */
    char text[16];
    for (int i = 0; i < 8; i++) {
        snprintf(text, sizeof(text), "w%d", i);
        ASSERT_EQ(ot_send(u, "svc.corp", NULL, 6000, text), 0);
    }
    ASSERT_EQ(ot_send(u, "svc.corp", NULL, 6000, "w8"), UV_ENOBUFS);
    ASSERT_EQ(r.n_asked, 1);
    ASSERT_STR_EQ(r.asked[0], "svc.corp");
    ASSERT_EQ(r.n_sent, 2);
    rt_answer(&r);
    ASSERT_EQ(r.n_sent, 10);
    for (int i = 0; i < 8; i++) {
        snprintf(text, sizeof(text), "w%d", i);
        ASSERT(ot_is(&r.sent[2 + i].dst, "10.9.0.8"));
        ASSERT_EQ(r.sent[2 + i].dport, 6000);
        ASSERT_STR_EQ(r.sent[2 + i].data, text);
    }
    ASSERT_EQ(ot_send(u, "svc.corp", NULL, 6001, "cached"), 0);
    ASSERT_EQ(r.n_sent, 11);
    ASSERT_EQ(r.n_asked, 1);
    /* A name that does not exist: dropped and logged once; known at once after. */
    uvtest_log_begin();
    ASSERT_EQ(ot_send(u, "nosuch.corp", NULL, 7000, "lost"), 0);
    ASSERT_EQ(ot_send(u, "nosuch.corp", NULL, 7000, "lost"), 0);
    rt_answer(&r);
    ASSERT_EQ(ot_send(u, "nosuch.corp", NULL, 7000, "lost"), UV_EAI_NONAME);
    log = uvtest_log_end();
    v2s_log_level = saved_level;
    ASSERT_EQ(r.n_asked, 2);
    ASSERT_EQ(r.n_sent, 11);
    ASSERT_EQ(rt_count(log, "nosuch.corp:7000"), 1);

    /* Direct: a host socket to a loopback echo, answered through the same recv. */
    uint16_t eport = ot_echo_start(&echo, loop, "127.0.0.1");
    ASSERT(eport != 0);
    ASSERT_EQ(ot_send(u, NULL, "127.0.0.1", eport, "direct"), 0);
    ASSERT(ot_wait_calls(loop, &got, 2));
    ASSERT(ot_is(&got.from[1], "127.0.0.1"));
    ASSERT_EQ(got.port[1], eport);
    ASSERT_STR_EQ(got.data[1], "echo:direct");
    ASSERT_EQ(r.n_sent, 11);

    /* An IPv6 address in brackets, as a URL writes it, given as a name: that address, sent at
     * once without a lookup. Failed before the fix: the tunnel's DNS server was asked for it. */
    ASSERT_EQ(ot_send(u, "[::ffff:10.9.0.7]", NULL, 5003, "bracketed"), 0);
    ASSERT_EQ(r.n_sent, 12);
    ASSERT(ot_is(&r.sent[11].dst, "10.9.0.7"));
    ASSERT_EQ(r.sent[11].dport, 5003);
    ASSERT_STR_EQ(r.sent[11].data, "bracketed");
    ASSERT_EQ(r.n_asked, 2);

    /* The tunnel's own outbound takes addresses only. */
    ASSERT_EQ(outbound_udp_open(via, ot_recv, &got, &raw), 0);
    ASSERT_EQ(ot_send(raw, "svc.corp", NULL, 53, "x"), UV_EINVAL);
    outbound_udp_close(raw);

    /* Closing the routed outbound ends u: nothing more goes, an answer to the inner tunnel
     * socket finds it closed, and the outbound is freed once u is closed. */
    int closed = 0;
    outbound_close(dialer, ot_closed, &closed);
    ASSERT_EQ(ot_send(u, NULL, "10.9.0.7", 5000, "late"), UV_ECANCELED);
    harness_tun_inject(&r.tun, pkt, len);
    ASSERT_EQ(got.calls, 2);
    ASSERT_EQ(closed, 0);
    outbound_udp_close(u);
    ASSERT_EQ(closed, 1);
    outbound_close(via, ot_closed, &closed);
    outbound_close(direct, ot_closed, &closed);
    uv_close((uv_handle_t *)&echo.h, NULL);
    ASSERT_EQ(harness_tun_down(&r.tun), 0);
    ASSERT_EQ(closed, 3);
    router_free(&router);
    return 0;
}

static void split_never(void *arg, struct outbound_conn *c, int status, const struct v2s_addr *bound, uint16_t port)
{
    (void)arg, (void)c, (void)status, (void)bound, (void)port;
    ASSERT(0 && "a refused name must not call back");
}

/* The host's resolver is asked for names that do not exist; a machine whose DNS server does not
 * answer would make glibc wait 5 s a try, twice, past the tests' patience. One second, one try: the
 * answer is then NXDOMAIN or, without a server, EAI_AGAIN, both within the wait below. */
static void ot_quick_host_resolver(void)
{
    setenv("RES_OPTIONS", "timeout:1 attempts:1", 1);
}

/* The split DNS rig of the tests below: a tunnel whose DNS server 10.9.0.53 (routed, with
 * 10.9.0.0/16) serves the given domains, --others direct, a dialer over the tunnel and the host,
 * and one UDP association from it. */
struct split_rig {
    struct rt r;
    struct ot_got got;
    struct router router;
    struct outbound *via, *direct, *dialer;
    struct outbound_udp *u;
    uv_loop_t *loop;
};

static void split_rig_up(struct split_rig *k, const char *domains)
{
    ot_quick_host_resolver();
    memset(k, 0, sizeof(*k));
    struct harness_tun_config cfg = {.addr4 = "10.8.0.2", .dns = {"10.9.0.53"}, .domains = domains, .seed = 5};
    ASSERT_EQ(harness_tun_up(&k->r.tun, &cfg, rt_on_send, &k->r), 0);
    k->loop = &k->r.tun.loop;
    router_init(&k->router);
    k->router.others = ROUTER_OTHERS_DIRECT;
    struct tunnel_settings ts;
    tunnel_settings_init(&ts);
    struct v2s_cidr c;
    ASSERT_EQ(v2s_cidr_parse(&c, "10.9.0.0/16", 0), 0);
    ASSERT_EQ(tunnel_settings_add_route(&ts, &c, 0), 0);
    ASSERT_EQ(v2s_addr_parse(&ts.dns[0], "10.9.0.53"), 0);
    ts.n_dns = 1;
    ts.domains = strdup(domains);
    ASSERT_EQ(router_set_tunnel(&k->router, &ts), 0);
    tunnel_settings_free(&ts);
    ASSERT_EQ(via_stack_new(&k->via, k->r.tun.stack), 0);
    ASSERT_EQ(direct_new(&k->direct, k->loop), 0);
    struct dial_config dcfg = {.loop = k->loop, .stack = k->r.tun.stack, .router = &k->router};
    dcfg.via[ROUTER_TUNNEL] = k->via;
    dcfg.via[ROUTER_DIRECT] = k->direct;
    ASSERT_EQ(dial_new(&k->dialer, &dcfg), 0);
    ASSERT_EQ(outbound_udp_open(k->dialer, ot_recv, &k->got, &k->u), 0);
}

static void split_rig_down(struct split_rig *k)
{
    outbound_udp_close(k->u);
    int closed = 0;
    outbound_close(k->dialer, ot_closed, &closed);
    outbound_close(k->via, ot_closed, &closed);
    outbound_close(k->direct, ot_closed, &closed);
    ASSERT(uvtest_run_until_fn(k->loop, ot_two, &closed, 3000));
    ASSERT_EQ(harness_tun_down(&k->r.tun), 0);
    ASSERT_EQ(closed, 3);
    router_free(&k->router);
}

/* Split DNS in the routed outbound (router_name_decide()): the tunnel pushed the domain corp, a
 * split route and its DNS server. A name under corp, and a single label (searched as svc.corp),
 * go to the tunnel's server; with --others direct any other name goes to the host's resolver and
 * the tunnel's server never hears it; with --others reject it is refused at once, for UDP and for
 * connect, without a lookup anywhere, one log line each (for UDP one per association, however many
 * datagrams); the tunnel's names still resolve. */
TEST_IMPL(dial_split_dns)
{
    static struct split_rig k;
    split_rig_up(&k, "corp");
    uv_loop_t *loop = k.loop;
    struct outbound *dialer = k.dialer;
    struct outbound_udp *u = k.u;

    ASSERT_EQ(ot_send(u, "svc.corp", NULL, 6000, "in"), 0);
    ASSERT_EQ(k.r.n_asked, 1);
    ASSERT_STR_EQ(k.r.asked[0], "svc.corp");
    rt_answer(&k.r);
    ASSERT_EQ(k.r.n_sent, 1);
    ASSERT(ot_is(&k.r.sent[0].dst, "10.9.0.8"));
    ASSERT_EQ(ot_send(u, "svc", NULL, 6000, "short"), 0);
    ASSERT_EQ(k.r.n_asked, 2);
    ASSERT_STR_EQ(k.r.asked[1], "svc.corp");
    rt_answer(&k.r);
    ASSERT_EQ(k.r.n_sent, 2);

    /* --others direct: the host's resolver (which knows no such name), never the tunnel's. */
    int rc = 0, never = 0;
    ASSERT_EQ(ot_send(u, "nosuch.invalid", NULL, 9, "host"), 0);
    for (int i = 0; i < 1000 && (rc == 0 || rc == UV_ENOBUFS); i++) {
        uvtest_run_until(loop, &never, 10);
        rc = ot_send(u, "nosuch.invalid", NULL, 9, "probe");
    }
    ASSERT_ROW(rc == UV_EAI_NONAME || rc == UV_EAI_AGAIN, "rc %d", rc);
    ASSERT_EQ(k.r.n_asked, 2);

    /* --others reject: refused before any lookup. */
    k.router.others = ROUTER_OTHERS_REJECT;
    int saved_level = v2s_log_level;
    v2s_log_level = V2S_LOG_INFO;
    uvtest_log_begin();
    ASSERT_EQ(ot_send(u, "www.example.com", NULL, 80, "no"), UV_EACCES);
    /* More datagrams to the refused name: refused likewise, and no more lines (each logged one). */
    ASSERT_EQ(ot_send(u, "www.example.com", NULL, 80, "no"), UV_EACCES);
    ASSERT_EQ(ot_send(u, "www.example.com", NULL, 80, "no"), UV_EACCES);
    struct outbound_conn *conn = NULL;
    ASSERT_EQ(outbound_connect(dialer, "www.example.com", NULL, 80, 1000, split_never, NULL, &conn), UV_EACCES);
    const char *log = uvtest_log_end();
    v2s_log_level = saved_level;
    ASSERT_EQ(rt_count(log, "www.example.com: not under the tunnel's DNS domains: refused (--others reject)"), 2);
    ASSERT_EQ(k.r.n_asked, 2);
    ASSERT_EQ(ot_send(u, "db.corp", NULL, 5432, "still"), 0);
    ASSERT_EQ(k.r.n_asked, 3);
    ASSERT_STR_EQ(k.r.asked[2], "db.corp");
    rt_answer(&k.r);

    split_rig_down(&k);
    return 0;
}

static void split_idna_connected(void *arg, struct outbound_conn *c, int status, const struct v2s_addr *bound,
                                 uint16_t port)
{
    (void)c, (void)bound, (void)port;
    *(int *)arg = status;
}

/* Names that are not ASCII, as the host's resolver would read them: libuv's uv_getaddrinfo()
 * turns a non-ASCII label into its IDNA form (xn--...) and reads U+3002, U+FF0E and U+FF61 as
 * dots, so the router must judge that form, and the tunnel's resolver ask it. The tunnel pushed
 * the domains corp and xn--bcher-kva.example (buecher.example with the u umlaut), --others
 * direct:
 *   - "svc<U+FF0E>corp" is svc.corp: asked of the tunnel's server as svc.corp, and its datagram
 *     goes to svc.corp's address (without the conversion it was a single label, searched as
 *     "svc<U+FF0E>corp.corp", and did not resolve);
 *   - "www.svc<U+3002>corp" is www.svc.corp: asked of the tunnel's server (without the
 *     conversion the router saw no ".corp" and handed it to the host's resolver, which asked the
 *     host's DNS for www.svc.corp: a VPN name leaked);
 *   - "www.b<u umlaut>cher.example" is under xn--bcher-kva.example: the tunnel's server is asked
 *     www.xn--bcher-kva.example (it too went to the host's DNS before), and the same name by
 *     connect;
 *   - "x<0xFF>.corp" is not UTF-8: it does not resolve (UV_EAI_NONAME, as uv_getaddrinfo() says
 *     for it), and nobody is asked. */
TEST_IMPL(dial_split_dns_idna)
{
    static const char domains[] = "corp xn--bcher-kva.example";
    static struct split_rig k;
    split_rig_up(&k, domains);
    uv_loop_t *loop = k.loop;
    struct outbound *dialer = k.dialer;
    struct outbound_udp *u = k.u;

    ASSERT_EQ(ot_send(u, "svc\xEF\xBC\x8E" "corp", NULL, 6000, "in"), 0);
    ASSERT_EQ(k.r.n_asked, 1);
    ASSERT_STR_EQ(k.r.asked[0], "svc.corp");
    rt_answer(&k.r);
    ASSERT_EQ(k.r.n_sent, 1);
    ASSERT(ot_is(&k.r.sent[0].dst, "10.9.0.8"));

    ASSERT_EQ(ot_send(u, "www.svc\xE3\x80\x82" "corp", NULL, 6000, "leak"), 0);
    ASSERT_EQ(k.r.n_asked, 2);
    ASSERT_STR_EQ(k.r.asked[1], "www.svc.corp");
    rt_answer(&k.r);
    int asked = k.r.n_asked;

    ASSERT_EQ(ot_send(u, "www.b\xC3\xBC" "cher.example", NULL, 6000, "idn"), 0);
    ASSERT_EQ(k.r.n_asked, asked + 1);
    ASSERT_STR_EQ(k.r.asked[asked], "www.xn--bcher-kva.example");
    rt_answer(&k.r);
    asked = k.r.n_asked;

    int status = 0;
    struct outbound_conn *conn = NULL;
    ASSERT_EQ(outbound_connect(dialer, "db.b\xC3\xBC" "cher.example", NULL, 80, 1000, split_idna_connected, &status,
                               &conn), 0);
    ASSERT_EQ(k.r.n_asked, asked + 1);
    ASSERT_STR_EQ(k.r.asked[asked], "db.xn--bcher-kva.example");
    rt_answer(&k.r);
    uvtest_run_until(loop, &status, 1000);
    ASSERT_EQ(status, UV_EAI_NONAME);

    asked = k.r.n_asked;
    ASSERT_EQ(ot_send(u, "x\xFF.corp", NULL, 6000, "bad"), UV_EAI_NONAME);
    ASSERT_EQ(k.r.n_asked, asked);

    split_rig_down(&k);
    return 0;
}

/* Without DNS servers in the tunnel (here: no stack at all), names go to the host's resolver, as
 * for connect: "localhost" reaches a loopback echo (on 127.0.0.1 and ::1, one port), whose answer
 * arrives through recv, which may close the association from inside. A name that does not
 * exist is logged once, then known at once. An association closed while a host lookup runs in
 * the thread pool frees what waited, and the lookup's end touches nothing freed. */
TEST_IMPL(dial_udp_host_names)
{
    ot_quick_host_resolver();
    uv_loop_t loop;
    static struct ot_echo echo4, echo6;
    static struct ot_got got;
    ASSERT_EQ(uv_loop_init(&loop), 0);
    struct router router;
    router_init(&router);
    router.others = ROUTER_OTHERS_DIRECT;
    router.allow_direct_local = 1;
    struct outbound *direct, *dialer;
    ASSERT_EQ(direct_new(&direct, &loop), 0);
    struct dial_config dcfg = {.loop = &loop, .stack = NULL, .router = &router};
    dcfg.via[ROUTER_DIRECT] = direct;
    ASSERT_EQ(dial_new(&dialer, &dcfg), 0);
    uint16_t port = ot_echo_start(&echo4, &loop, "127.0.0.1");
    ASSERT(port != 0);
    int have6 = ot_echo_start_port(&echo6, &loop, "::1", port) == port;

    struct outbound_udp *u = NULL, *gone = NULL;
    ASSERT_EQ(outbound_udp_open(dialer, ot_recv, &got, &u), 0);
    ASSERT_EQ(ot_send(u, "localhost", NULL, port, "by name"), 0);
    ASSERT(ot_wait_calls(&loop, &got, 1));
    ASSERT(ot_is(&got.from[0], "127.0.0.1") || ot_is(&got.from[0], "::1"));
    ASSERT_EQ(got.port[0], port);
    ASSERT_STR_EQ(got.data[0], "echo:by name");

    int saved_level = v2s_log_level;
    v2s_log_level = V2S_LOG_INFO;
    uvtest_log_begin();
    ASSERT_EQ(ot_send(u, "nosuch.invalid", NULL, 9, "lost"), 0);
    ASSERT_EQ(ot_send(u, "nosuch.invalid", NULL, 9, "lost"), 0);
    /* Until the lookup ends, probes wait with the others (or are dropped: UV_ENOBUFS). */
    int rc = 0, never = 0;
    for (int i = 0; i < 1000 && (rc == 0 || rc == UV_ENOBUFS); i++) {
        uvtest_run_until(&loop, &never, 10);
        rc = ot_send(u, "nosuch.invalid", NULL, 9, "probe");
    }
    const char *log = uvtest_log_end();
    v2s_log_level = saved_level;
    ASSERT_ROW(rc == UV_EAI_NONAME || rc == UV_EAI_AGAIN, "rc %d", rc);
    ASSERT_EQ(rt_count(log, "nosuch.invalid:9"), 1);

    /* Closed from its own recv: the second association is closed inside the first answer. */
    ASSERT_EQ(outbound_udp_open(dialer, ot_recv, &got, &gone), 0);
    got.close_in_recv = gone;
    ASSERT_EQ(ot_send(gone, NULL, "127.0.0.1", port, "last"), 0);
    ASSERT(ot_wait_calls(&loop, &got, 2));
    ASSERT_STR_EQ(got.data[1], "echo:last");
    ASSERT(got.close_in_recv == NULL);

    /* Closed under a host lookup. */
    ASSERT_EQ(ot_send(u, "another.invalid", NULL, 9, "waits"), 0);
    outbound_udp_close(u);
    int closed = 0;
    outbound_close(dialer, ot_closed, &closed);
    outbound_close(direct, ot_closed, &closed);
    ASSERT(uvtest_run_until_fn(&loop, ot_two, &closed, 3000));
    uv_close((uv_handle_t *)&echo4.h, NULL);
    if (have6)
        uv_close((uv_handle_t *)&echo6.h, NULL);
    uvtest_loop_finish(&loop);
    ASSERT_EQ(got.calls, 2);
    router_free(&router);
    return 0;
}
