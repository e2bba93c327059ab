/* port/forward.c, the -L listener, on a real libuv loop: through the routed outbound (route/dial.c)
 * and the real direct one to loopback servers. Bytes both ways, half-close both ways, a reset
 * passed on, a name resolved per connection, a refused port and a destination the router rejects
 * (the client's connection reset, a log line naming both), the listener cap, and no handle left. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "base/log.h"
#include "port/forward.h"
#include "route/dial.h"
#include "route/direct.h"
#include "route/outbound.h"
#include "route/router.h"
#include "test.h"
#include "uvtest.h"

struct ftest {
    uv_loop_t loop;
    struct router router;
    struct outbound *direct, *dialer;
    int ob_closed;
    int fwd_closed;
    struct dial_stats stats; /* the routed outbound's (the metrics) */
};

static void ftest_ob_closed(void *arg)
{
    ((struct ftest *)arg)->ob_closed++;
}

static void ftest_fwd_closed(void *arg)
{
    ((struct ftest *)arg)->fwd_closed++;
}

/* 127.0.0.0/8 goes direct (with --allow-direct-local), everything else is rejected. */
static void ftest_start(struct ftest *t)
{
    memset(t, 0, sizeof(*t));
    ASSERT_EQ(uv_loop_init(&t->loop), 0);
    router_init(&t->router);
    struct v2s_cidr c;
    ASSERT(v2s_cidr_parse(&c, "127.0.0.0/8", 1) == 0);
    ASSERT_EQ(router_add_user(&t->router, &c, ROUTER_DIRECT), 0);
    t->router.others = ROUTER_OTHERS_REJECT;
    t->router.allow_direct_local = 1;
    ASSERT_EQ(direct_new(&t->direct, &t->loop), 0);
    struct dial_config dcfg = {.loop = &t->loop, .stack = NULL, .router = &t->router};
    dcfg.via[ROUTER_TUNNEL] = t->direct; /* nothing here goes to the tunnel */
    dcfg.via[ROUTER_DIRECT] = t->direct;
    dcfg.stats = &t->stats;
    ASSERT_EQ(dial_new(&t->dialer, &dcfg), 0);
}

static int ftest_none_open(void *arg)
{
    return ((struct ftest *)arg)->stats.open == 0;
}

/* A forward from 127.0.0.1 (a port the kernel picks) to host:port; returns its port. */
static uint16_t ftest_forward(struct ftest *t, struct port_forward **pf, const char *host, uint16_t port,
                              unsigned max_conns)
{
    struct port_forward_config cfg = {
        .loop = &t->loop,
        .out = t->dialer,
        .connect_timeout_ms = 3000,
        .max_conns = max_conns,
        .host = host,
        .port = port,
    };
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(port_forward_new(pf, &cfg, (const struct sockaddr *)&sin), 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    ASSERT_EQ(port_forward_local(*pf, (struct sockaddr *)&ss, &len), 0);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A blocking connect to 127.0.0.1:port: 0, or the errno it failed with. */
static int ftest_connect_errno(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ? errno : 0;
    close(fd);
    return rc;
}

static void ftest_finish(struct ftest *t)
{
    outbound_close(t->dialer, ftest_ob_closed, t);
    outbound_close(t->direct, ftest_ob_closed, t);
    for (int i = 0; i < 3000 && t->ob_closed < 2; i++)
        uvtest_run_until(&t->loop, &t->ob_closed, 1);
    ASSERT_EQ(t->ob_closed, 2);
    router_free(&t->router);
    uvtest_loop_finish(&t->loop);
}

/* The destination's side of the forward's next connection, accepted on its listener l. */
static int ftest_accept(struct ftest *t, int l)
{
    int remote = uvtest_accept(&t->loop, l, 3000);
    ASSERT(remote >= 0);
    return remote;
}

/* Closes fd with a reset rather than a FIN (SO_LINGER 0). */
static void ftest_abort(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(fd);
}

/* Closes the forward pf and runs the loop until it said it was closed. */
static void ftest_close_forward(struct ftest *t, struct port_forward *pf)
{
    port_forward_close(pf, ftest_fwd_closed, t);
    ASSERT(uvtest_run_until(&t->loop, &t->fwd_closed, 3000));
}

TEST_IMPL(port_forward_relay)
{
    struct ftest t;
    struct port_forward *pf;
    uint8_t buf[64];
    int end;
    ftest_start(&t);
    uint16_t port;
    int l = uvtest_listen(&port);
    uint16_t fport = ftest_forward(&t, &pf, "127.0.0.1", port, 0);

    /* Bytes both ways, then each side's half-close reaches the other. */
    int fd = uvtest_connect(fport);
    int remote = ftest_accept(&t, l);
    uvtest_send(&t.loop, fd, "ping", 4);
    ASSERT_EQ(uvtest_recv(&t.loop, remote, buf, 4, &end, 3000), 4);
    ASSERT_MEM_EQ(buf, "ping", 4);
    ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
    ASSERT_EQ(uvtest_wait_end(&t.loop, remote, NULL, 3000), 1);
    /* the other direction still carries data after the client's half-close */
    uvtest_send(&t.loop, remote, "pong", 4);
    ASSERT_EQ(uvtest_recv(&t.loop, fd, buf, 4, &end, 3000), 4);
    ASSERT_MEM_EQ(buf, "pong", 4);
    ASSERT_EQ(shutdown(remote, SHUT_WR), 0);
    ASSERT_EQ(uvtest_wait_end(&t.loop, fd, NULL, 3000), 1);
    close(fd);
    close(remote);

    /* 1 MiB through, with the server reading only once it is all sent (backpressure). */
    size_t big = 1 << 20;
    uint8_t *out = malloc(big), *in = malloc(big);
    ASSERT(out && in);
    for (size_t i = 0; i < big; i++)
        out[i] = (uint8_t)(i * 7 + (i >> 11));
    fd = uvtest_connect(fport);
    remote = ftest_accept(&t, l);
    uvtest_send(&t.loop, remote, out, big);
    ASSERT_EQ(uvtest_recv(&t.loop, fd, in, big, &end, 5000), big);
    ASSERT(memcmp(in, out, big) == 0);
    free(out);
    free(in);

    /* A reset from the server reaches the client as a reset. */
    ftest_abort(remote);
    ASSERT_EQ(uvtest_wait_end(&t.loop, fd, NULL, 3000), -ECONNRESET);
    close(fd);

    close(l);
    ftest_close_forward(&t, pf);
    ftest_finish(&t);
    return 0;
}

/* A destination that cannot be had ends the client's connection with a reset and a log line; a
 * name is resolved at each connection; the listener's cap resets the one past it. */
TEST_IMPL(port_forward_refused)
{
    struct ftest t;
    struct port_forward *closed_pf, *reject_pf, *name_pf;
    uint8_t buf[8];
    int end;
    ftest_start(&t);
    int saved = v2s_log_level;
    v2s_log_level = V2S_LOG_INFO;

    uint16_t closed_port = uvtest_closed_port();
    uint16_t p1 = ftest_forward(&t, &closed_pf, "127.0.0.1", closed_port, 0);
    uint16_t p2 = ftest_forward(&t, &reject_pf, "203.0.113.1", 80, 0);
    uvtest_log_begin();
    int fd = uvtest_connect(p1);
    ASSERT_EQ(uvtest_wait_end(&t.loop, fd, NULL, 3000), -ECONNRESET);
    close(fd);
    fd = uvtest_connect(p2);
    ASSERT_EQ(uvtest_wait_end(&t.loop, fd, NULL, 3000), -ECONNRESET);
    close(fd);
    const char *log = uvtest_log_end();
    char want[128];
    snprintf(want, sizeof(want), " -> 127.0.0.1:%u: connection refused (forward 127.0.0.1:%u, connection reset)",
             closed_port, p1);
    ASSERT(strstr(log, want) != NULL);
    snprintf(want, sizeof(want), " -> 203.0.113.1:80: permission denied (forward 127.0.0.1:%u, connection reset)",
             p2);
    ASSERT(strstr(log, want) != NULL);
    /* The metrics' counts: one direct (refused, still counted), one rejected, none open. */
    ASSERT_EQ(t.stats.total[ROUTER_DIRECT], 1);
    ASSERT_EQ(t.stats.total[ROUTER_REJECT], 1);
    ASSERT_EQ(t.stats.total[ROUTER_TUNNEL], 0);
    ASSERT_EQ(t.stats.open, 0);

    /* A name, and a cap of one connection. */
    uint16_t port;
    int l = uvtest_listen(&port);
    uint16_t p3 = ftest_forward(&t, &name_pf, "localhost", port, 1);
    fd = uvtest_connect(p3);
    int remote = ftest_accept(&t, l);
    int over = uvtest_connect(p3);
    ASSERT_EQ(uvtest_wait_end(&t.loop, over, NULL, 3000), -ECONNRESET);
    close(over);
    uvtest_send(&t.loop, remote, "hi", 2);
    ASSERT_EQ(uvtest_recv(&t.loop, fd, buf, 2, &end, 3000), 2);
    ASSERT_MEM_EQ(buf, "hi", 2);
    /* Relaying: open; the one the cap refused never dialed. */
    ASSERT_EQ(t.stats.open, 1);
    ASSERT_EQ(t.stats.total[ROUTER_DIRECT], 2);
    close(fd);
    ASSERT_EQ(uvtest_wait_end(&t.loop, remote, NULL, 3000), 1);
    close(remote);
    ASSERT(uvtest_run_until_fn(&t.loop, ftest_none_open, &t, 3000));
    close(l);
    v2s_log_level = saved;

    port_forward_close(closed_pf, ftest_fwd_closed, &t);
    port_forward_close(reject_pf, ftest_fwd_closed, &t);
    port_forward_close(name_pf, ftest_fwd_closed, &t);
    for (int i = 0; i < 3000 && t.fwd_closed < 3; i++)
        uvtest_run_until(&t.loop, &t.fwd_closed, 1);
    ASSERT_EQ(t.fwd_closed, 3);
    ftest_finish(&t);
    return 0;
}

/* Closing a forward stops the listener; a relay in flight goes on, and the close callback waits
 * for its end. */
TEST_IMPL(port_forward_close_with_relay)
{
    struct ftest t;
    struct port_forward *pf;
    int end;
    uint8_t buf[4];
    ftest_start(&t);
    uint16_t port;
    int l = uvtest_listen(&port);
    uint16_t fport = ftest_forward(&t, &pf, "127.0.0.1", port, 0);
    int fd = uvtest_connect(fport);
    int remote = ftest_accept(&t, l);
    uvtest_send(&t.loop, fd, "abc", 3);
    ASSERT_EQ(uvtest_recv(&t.loop, remote, buf, 3, &end, 3000), 3); /* relaying */
    port_forward_close(pf, ftest_fwd_closed, &t);
    /* the relay goes on after the listener is gone */
    uvtest_send(&t.loop, fd, "def", 3);
    ASSERT_EQ(uvtest_recv(&t.loop, remote, buf, 3, &end, 3000), 3);
    ASSERT_MEM_EQ(buf, "def", 3);
    ASSERT_EQ(ftest_connect_errno(fport), ECONNREFUSED); /* the listener is gone */
    ASSERT_EQ(t.fwd_closed, 0);
    close(fd);
    ASSERT_EQ(uvtest_wait_end(&t.loop, remote, NULL, 3000), 1);
    close(remote);
    ASSERT(uvtest_run_until(&t.loop, &t.fwd_closed, 3000));
    close(l);
    ftest_finish(&t);
    return 0;
}

/* A client that sends its request and half-closes (or resets) before the forward has reached the
 * destination: the request and its end reach the destination, whose answer (sent after it read
 * that end) reaches the client whole, with a FIN; a client's reset reaches the destination as a
 * reset, not as the end of a request (libuv reports a reset that came with data as UV_EOF: see
 * base/uvstream.h, v2s_eof_or_error()). */
TEST_IMPL(port_forward_early_close)
{
    struct ftest t;
    struct port_forward *pf;
    uint8_t buf[64];
    int end;
    ftest_start(&t);
    uint16_t port;
    int l = uvtest_listen(&port);
    uint16_t fport = ftest_forward(&t, &pf, "127.0.0.1", port, 0);

    int fd = uvtest_connect(fport);
    ASSERT_EQ(send(fd, "GET /", 5, 0), 5);
    ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
    int remote = ftest_accept(&t, l);
    ASSERT_EQ(uvtest_recv(&t.loop, remote, buf, sizeof(buf), &end, 3000), 5);
    ASSERT_MEM_EQ(buf, "GET /", 5);
    ASSERT_EQ(end, 1);
    uvtest_send(&t.loop, remote, "200 OK", 6);
    close(remote);
    ASSERT_EQ(uvtest_recv(&t.loop, fd, buf, sizeof(buf), &end, 3000), 6);
    ASSERT_MEM_EQ(buf, "200 OK", 6);
    ASSERT_EQ(end, 1);
    close(fd);

    fd = uvtest_connect(fport);
    ASSERT_EQ(send(fd, "half", 4, 0), 4);
    ftest_abort(fd);
    remote = ftest_accept(&t, l);
    size_t extra = 0;
    ASSERT_EQ(uvtest_wait_end(&t.loop, remote, &extra, 3000), -ECONNRESET);
    close(remote);
    ASSERT(uvtest_run_until_fn(&t.loop, ftest_none_open, &t, 3000));
    close(l);
    ftest_close_forward(&t, pf);
    ftest_finish(&t);
    return 0;
}

/* A forward closed (a reload, the shutdown) while a connection is still dialing resets the client,
 * as a destination it could not reach does (see forward.c): the destination was never reached,
 * so a clean end would say it had answered and closed. */
TEST_IMPL(port_forward_close_dialing)
{
    struct ftest t;
    struct port_forward *pf;
    ftest_start(&t);
    uint16_t port;
    int l = uvtest_listen(&port);
    uint16_t fport = ftest_forward(&t, &pf, "127.0.0.1", port, 0);
    /* One loop turn: the forward accepts and starts dialing; the dial cannot complete in it. */
    int fd = uvtest_connect(fport);
    uv_run(&t.loop, UV_RUN_NOWAIT);
    ASSERT_EQ(t.stats.total[ROUTER_DIRECT], 1); /* dialing */
    ASSERT_EQ(t.stats.open, 0);                 /* not relaying */
    port_forward_close(pf, ftest_fwd_closed, &t);
    ASSERT_EQ(uvtest_wait_end(&t.loop, fd, NULL, 3000), -ECONNRESET);
    close(fd);
    ASSERT(uvtest_run_until(&t.loop, &t.fwd_closed, 3000));
    close(l);
    ftest_finish(&t);
    return 0;
}

/* A reload that moves a forward to another destination: the forward is closed and a new one
 * opened on the same address and port while a connection of the old one is relaying. The old
 * connection goes on to the old destination (bytes both ways, then its end), and a new client
 * reaches the new destination. Never failed: a guard of the reload's order (close, then open on
 * the port the old listener gave back, its accepted connection still open). */
TEST_IMPL(port_forward_moved_on_same_port)
{
    struct ftest t;
    struct port_forward *old_pf, *new_pf;
    uint8_t buf[8];
    int end;
    ftest_start(&t);
    uint16_t port1, port2;
    int l1 = uvtest_listen(&port1), l2 = uvtest_listen(&port2);
    uint16_t fport = ftest_forward(&t, &old_pf, "127.0.0.1", port1, 0);
    int fd1 = uvtest_connect(fport);
    int r1 = ftest_accept(&t, l1);
    uvtest_send(&t.loop, fd1, "old", 3);
    ASSERT_EQ(uvtest_recv(&t.loop, r1, buf, 3, &end, 3000), 3);

    port_forward_close(old_pf, ftest_fwd_closed, &t);
    struct port_forward_config cfg = {
        .loop = &t.loop,
        .out = t.dialer,
        .connect_timeout_ms = 3000,
        .host = "127.0.0.1",
        .port = port2,
    };
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(fport)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(port_forward_new(&new_pf, &cfg, (const struct sockaddr *)&sin), 0);

    int fd2 = uvtest_connect(fport);
    int r2 = ftest_accept(&t, l2);
    uvtest_send(&t.loop, fd2, "new", 3);
    ASSERT_EQ(uvtest_recv(&t.loop, r2, buf, 3, &end, 3000), 3);
    ASSERT_MEM_EQ(buf, "new", 3);
    /* The old connection still goes to the old destination, both ways. */
    uvtest_send(&t.loop, fd1, "more", 4);
    ASSERT_EQ(uvtest_recv(&t.loop, r1, buf, 4, &end, 3000), 4);
    ASSERT_MEM_EQ(buf, "more", 4);
    uvtest_send(&t.loop, r1, "back", 4);
    ASSERT_EQ(uvtest_recv(&t.loop, fd1, buf, 4, &end, 3000), 4);
    ASSERT_MEM_EQ(buf, "back", 4);
    ASSERT_EQ(t.fwd_closed, 0); /* the old forward waits for its relay */
    close(fd1);
    ASSERT_EQ(uvtest_wait_end(&t.loop, r1, NULL, 3000), 1);
    close(r1);
    ASSERT(uvtest_run_until(&t.loop, &t.fwd_closed, 3000));
    close(fd2);
    ASSERT_EQ(uvtest_wait_end(&t.loop, r2, NULL, 3000), 1);
    close(r2);
    close(l1);
    close(l2);
    t.fwd_closed = 0;
    ftest_close_forward(&t, new_pf);
    ftest_finish(&t);
    return 0;
}
