/* socks/server.c on a real libuv loop: loopback client sockets against a fake outbound that
 * records what it is asked, answers success or a given error, and plays the remote end of the
 * relay. Checks the reply a client gets for each outcome, that bytes pass both ways with
 * half-close, and that no handle is left open. No root, no tunnel. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "base/credentials.h"
#include "base/log.h"
#include "base/uvstream.h"
#include "route/dial.h"
#include "route/direct.h"
#include "route/outbound.h"
#include "route/router.h"
#include "socks/server.h"
#include "test.h"
#include "uvtest.h"

/* --- the fake outbound --- */

enum fake_mode {
    FAKE_ANSWER, /* succeed (status 0) or fail with status, on the next loop turn */
    FAKE_HANG,   /* never answer */
};

struct fake_conn;

struct fake_outbound {
    struct outbound ob;
    uv_loop_t *loop;
    enum fake_mode mode;
    int status; /* what FAKE_ANSWER answers */
    /* What it was asked. */
    int connects, cancels, bridges, closed;
    int backend_timeout_at_end; /* uv_backend_timeout() right after a relay's end was reported */
    char name[256];
    struct v2s_addr addr;
    uint16_t port;
    unsigned timeout_ms;
    struct fake_conn *conn; /* the last one */
};

struct fake_conn {
    struct outbound_conn base;
    struct fake_outbound *f;
    uv_timer_t timer;
    outbound_connect_cb cb;
    void *arg;
    /* The relay: the fake is the remote end. */
    uv_tcp_t *app;
    outbound_done_cb done;
    void *done_arg;
    char label[OUTBOUND_LABEL_MAX];
    uint8_t got[4096]; /* early bytes, then what the client sent */
    size_t n_got;
    int got_eof, shut, done_ran;
    int reading_at_bridge; /* the listener handed app over still reading it */
    uv_write_t wr;
    uv_shutdown_t sh;
    char out[256];
};

static struct fake_outbound *fake_of(struct outbound *ob)
{
    return (struct fake_outbound *)ob;
}

static void fake_timer_closed(uv_handle_t *h)
{
    struct fake_conn *c = h->data;
    if (!c->app)
        free(c); /* failed or cancelled; a bridged one is freed when its relay ends */
}

static void fake_answer(uv_timer_t *t)
{
    struct fake_conn *c = t->data;
    struct fake_outbound *f = c->f;
    uv_close((uv_handle_t *)&c->timer, fake_timer_closed);
    if (f->status < 0) {
        f->conn = NULL;
        c->cb(c->arg, NULL, f->status, NULL, 0);
        return;
    }
    struct v2s_addr bound;
    ASSERT(v2s_addr_parse(&bound, "10.1.2.3") == 0);
    c->cb(c->arg, &c->base, 0, &bound, 4321);
    ASSERT(c->app != NULL); /* the listener must bridge from inside the callback */
}

static int fake_connect(struct outbound *ob, const char *name, const struct v2s_addr *addr, uint16_t port,
                        unsigned timeout_ms, outbound_connect_cb cb, void *arg, struct outbound_conn **out)
{
    struct fake_outbound *f = fake_of(ob);
    struct fake_conn *c = calloc(1, sizeof(*c));
    ASSERT(c != NULL);
    f->connects++;
    snprintf(f->name, sizeof(f->name), "%s", name ? name : "");
    f->addr = name ? (struct v2s_addr){0} : *addr;
    f->port = port;
    f->timeout_ms = timeout_ms;
    f->conn = c;
    c->base.ob = ob;
    c->f = f;
    c->cb = cb;
    c->arg = arg;
    uv_timer_init(f->loop, &c->timer);
    c->timer.data = c;
    if (f->mode == FAKE_ANSWER)
        uv_timer_start(&c->timer, fake_answer, 0, 0);
    *out = &c->base;
    return 0;
}

static void fake_cancel(struct outbound_conn *base)
{
    struct fake_conn *c = (struct fake_conn *)base;
    c->f->cancels++;
    c->f->conn = NULL;
    uv_close((uv_handle_t *)&c->timer, fake_timer_closed);
}

static void fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct fake_conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)c->got + c->n_got, (unsigned)(sizeof(c->got) - c->n_got));
}

static void fake_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct fake_conn *c = s->data;
    (void)buf;
    if (nread > 0)
        c->n_got += (size_t)nread;
    else if (nread < 0) {
        c->got_eof = nread == UV_EOF ? 1 : (int)nread;
        uv_read_stop(s);
    }
}

static void fake_bridge(struct outbound_conn *base, uv_tcp_t *app, const uint8_t *early, size_t n,
                        const char *label, outbound_done_cb done, void *arg)
{
    struct fake_conn *c = (struct fake_conn *)base;
    c->f->bridges++;
    c->app = app;
    c->done = done;
    c->done_arg = arg;
    snprintf(c->label, sizeof(c->label), "%s", label);
    ASSERT(n < sizeof(c->got));
    if (n > 0)
        memcpy(c->got, early, n);
    c->n_got = n;
    c->reading_at_bridge = uv_is_active((uv_handle_t *)app);
    /* Small replies and relayed pieces go without a Nagle delay (inherited from the listener). */
    uv_os_fd_t fd;
    int nodelay = 0;
    socklen_t nl = sizeof(nodelay);
    ASSERT_EQ(uv_fileno((uv_handle_t *)app, &fd), 0);
    ASSERT_EQ(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &nl), 0);
    ASSERT_EQ(nodelay, 1);
    app->data = c;
    ASSERT_EQ(v2s_read_take((uv_stream_t *)app, fake_alloc, fake_read), 0);
}

static void fake_close(struct outbound *ob)
{
    fake_of(ob)->closed++;
    outbound_free_closed(ob, NULL); /* nothing to free: the test holds it */
}

static const struct outbound_ops fake_ops = {
    .connect = fake_connect,
    .cancel = fake_cancel,
    .bridge = fake_bridge,
    .close = fake_close,
};

static void fake_init(struct fake_outbound *f, uv_loop_t *loop, enum fake_mode mode, int status)
{
    memset(f, 0, sizeof(*f));
    f->ob.ops = &fake_ops;
    f->ob.name = "fake";
    f->loop = loop;
    f->mode = mode;
    f->status = status;
}

/* The remote end sends text to the client. */
static void fake_send(struct fake_conn *c, const char *text)
{
    snprintf(c->out, sizeof(c->out), "%s", text);
    uv_buf_t b = uv_buf_init(c->out, (unsigned)strlen(c->out));
    ASSERT_EQ(uv_write(&c->wr, (uv_stream_t *)c->app, &b, 1, NULL), 0);
}

static void fake_shut_cb(uv_shutdown_t *req, int status)
{
    struct fake_conn *c = req->data;
    ASSERT_EQ(status, 0);
    c->shut = 1;
}

/* The remote end half-closes toward the client. */
static void fake_shutdown(struct fake_conn *c)
{
    c->sh.data = c;
    ASSERT_EQ(uv_shutdown(&c->sh, (uv_stream_t *)c->app, fake_shut_cb), 0);
}

static void fake_app_closed(uv_handle_t *h)
{
    struct fake_conn *c = h->data;
    struct fake_outbound *f = c->f;
    outbound_done_cb done = c->done;
    void *arg = c->done_arg;
    free(c);
    done(arg);
    f->backend_timeout_at_end = uv_backend_timeout(f->loop);
}

/* The relay ends: the client handle is closed and the listener told. */
static void fake_end(struct fake_conn *c)
{
    c->f->conn = NULL;
    uv_close((uv_handle_t *)c->app, fake_app_closed);
}

/* --- a SOCKS client on a plain socket --- */

struct sstest {
    uv_loop_t loop;
    struct fake_outbound fake;
    struct socks_server *srv;
    uint16_t port;
    int server_closed;
};

static void sstest_server_closed(void *arg)
{
    ((struct sstest *)arg)->server_closed = 1;
}

/* A listener over the fake outbound; with creds, it requires a login. */
static void sstest_start_with(struct sstest *t, enum fake_mode mode, int status, struct v2s_credentials *creds,
                              unsigned handshake_timeout_ms)
{
    memset(t, 0, sizeof(*t));
    ASSERT_EQ(uv_loop_init(&t->loop), 0);
    fake_init(&t->fake, &t->loop, mode, status);
    struct socks_server_config cfg = {
        .loop = &t->loop,
        .out = &t->fake.ob,
        .connect_timeout_ms = 1234,
        .handshake_timeout_ms = handshake_timeout_ms,
        .credentials = creds,
    };
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(socks_server_new(&t->srv, &cfg, (const struct sockaddr *)&sin), 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    ASSERT_EQ(socks_server_local(t->srv, (struct sockaddr *)&ss, &len), 0);
    t->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void sstest_start(struct sstest *t, enum fake_mode mode, int status)
{
    sstest_start_with(t, mode, status, NULL, 5000);
}

static void sstest_finish(struct sstest *t)
{
    socks_server_close(t->srv, sstest_server_closed, t);
    ASSERT(uvtest_run_until(&t->loop, &t->server_closed, 2000));
    uvtest_loop_finish(&t->loop);
}

/* Greeting (no authentication) and a CONNECT to name:port, plus extra bytes in the same send. */
static int sstest_request(struct sstest *t, const char *name, uint16_t port, const char *extra)
{
    uint8_t req[512];
    size_t n = 0;
    req[n++] = 5;
    req[n++] = 1;
    req[n++] = 0;
    req[n++] = 5;
    req[n++] = 1;
    req[n++] = 0;
    struct v2s_addr a;
    if (v2s_addr_parse(&a, name) == 0 && a.family == AF_INET) {
        req[n++] = 1;
        memcpy(req + n, a.bytes, 4);
        n += 4;
    } else {
        req[n++] = 3;
        req[n++] = (uint8_t)strlen(name);
        memcpy(req + n, name, strlen(name));
        n += strlen(name);
    }
    req[n++] = (uint8_t)(port >> 8);
    req[n++] = (uint8_t)port;
    memcpy(req + n, extra, strlen(extra));
    n += strlen(extra);
    int fd = uvtest_connect(t->port);
    uvtest_send(&t->loop, fd, req, n);
    return fd;
}

/* Reads the method choice and the 10-byte IPv4 reply; returns the reply code. */
static int sstest_reply(struct sstest *t, int fd, uint8_t reply[10])
{
    uint8_t m[2];
    int end;
    ASSERT_EQ(uvtest_recv(&t->loop, fd, m, 2, &end, 3000), 2);
    ASSERT_EQ(m[0], 5);
    ASSERT_EQ(m[1], 0);
    ASSERT_EQ(uvtest_recv(&t->loop, fd, reply, 10, &end, 3000), 10);
    ASSERT_EQ(reply[0], 5);
    ASSERT_EQ(reply[3], 1); /* IPv4 bound address */
    return reply[1];
}

TEST_IMPL(socks_server_outcomes)
{
    static const struct {
        int status;
        int rep;
    } rows[] = {
        {UV_ECONNREFUSED, 5}, {UV_ETIMEDOUT, 6}, {UV_EHOSTUNREACH, 4}, {UV_EAI_NONAME, 4},
        {UV_ENETUNREACH, 3},  {UV_ENETDOWN, 3},  {UV_EACCES, 2},       {UV_ECANCELED, 1},
        /* What the host's kernel can say to a direct connect. */
        {UV_EAFNOSUPPORT, 3}, {UV_ENONET, 3},    {UV_EHOSTDOWN, 4},    {UV_ECONNRESET, 5},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct sstest t;
        uint8_t reply[10];
        sstest_start(&t, FAKE_ANSWER, rows[i].status);
        int fd = sstest_request(&t, "example.test", 443, "");
        int rep = sstest_reply(&t, fd, reply);
        ASSERT_ROW(rep == rows[i].rep, "%zu: status %d gave reply %d", i, rows[i].status, rep);
        /* The client is told, then the connection ends. */
        ASSERT_ROW(uvtest_wait_end(&t.loop, fd, NULL, 3000) == 1, "%zu", i);
        ASSERT_EQ(t.fake.connects, 1);
        ASSERT_STR_EQ(t.fake.name, "example.test");
        ASSERT_EQ(t.fake.port, 443);
        ASSERT_EQ(t.fake.timeout_ms, 1234);
        ASSERT_EQ(t.fake.bridges, 0);
        close(fd);
        sstest_finish(&t);
    }

    /* Success, to a numeric address: the outbound gets the address, the client the bound one. */
    struct sstest t;
    uint8_t reply[10];
    sstest_start(&t, FAKE_ANSWER, 0);
    int fd = sstest_request(&t, "192.0.2.7", 8080, "");
    ASSERT_EQ(sstest_reply(&t, fd, reply), 0);
    static const uint8_t bound[6] = {10, 1, 2, 3, 4321 >> 8, 4321 & 0xff};
    ASSERT_MEM_EQ(reply + 4, bound, 6);
    ASSERT_STR_EQ(t.fake.name, "");
    char a[V2S_ADDR_STRLEN];
    ASSERT_STR_EQ(v2s_addr_format(&t.fake.addr, a, sizeof(a)), "192.0.2.7");
    ASSERT_EQ(t.fake.port, 8080);
    ASSERT_EQ(t.fake.bridges, 1);
    /* The relay is given the client's address as the start of its label. */
    ASSERT(strncmp(t.fake.conn->label, "127.0.0.1:", 10) == 0);
    close(fd);
    struct fake_conn *c = t.fake.conn;
    ASSERT(uvtest_run_until(&t.loop, &c->got_eof, 2000) != 0);
    fake_end(c);
    sstest_finish(&t);
    return 0;
}

TEST_IMPL(socks_server_relay_half_close)
{
    struct sstest t;
    uint8_t reply[10], buf[64];
    int end;
    sstest_start(&t, FAKE_ANSWER, 0);
    /* Bytes behind the request, in the same segment, reach the outbound first. */
    int fd = sstest_request(&t, "example.test", 80, "early;");
    ASSERT_EQ(sstest_reply(&t, fd, reply), 0);
    struct fake_conn *c = t.fake.conn;
    ASSERT(c != NULL && c->app != NULL);
    uvtest_send(&t.loop, fd, "up1;", 4);
    for (unsigned i = 0; i < 2000 && c->n_got < 10; i++)
        uvtest_run_until(&t.loop, &c->got_eof, 1);
    ASSERT_EQ(c->n_got, 10);
    ASSERT_MEM_EQ(c->got, "early;up1;", 10);

    fake_send(c, "down1;");
    ASSERT_EQ(uvtest_recv(&t.loop, fd, buf, 6, &end, 3000), 6);
    ASSERT_MEM_EQ(buf, "down1;", 6);

    /* The client half-closes: the remote end sees EOF and can still send. */
    ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
    ASSERT(uvtest_run_until(&t.loop, &c->got_eof, 3000) == 1);
    fake_send(c, "down2;");
    ASSERT_EQ(uvtest_recv(&t.loop, fd, buf, 6, &end, 3000), 6);
    ASSERT_MEM_EQ(buf, "down2;", 6);
    ASSERT_EQ(end, 0);

    /* Then the remote end half-closes too: the client gets EOF. */
    fake_shutdown(c);
    ASSERT(uvtest_run_until(&t.loop, &c->shut, 3000));
    ASSERT_EQ(uvtest_wait_end(&t.loop, fd, NULL, 3000), 1);
    fake_end(c);
    close(fd);
    sstest_finish(&t);
    ASSERT_EQ(t.fake.cancels, 0);
    return 0;
}

/* When the relay reports its end (from the client handle's close callback), the listener has
 * nothing left to close: its timer went when the relay started. A close started from inside a
 * close callback waits for the next loop iteration, whose poll then cannot block (libuv's
 * backend timeout is 0): an epoll_wait() more per connection. */
TEST_IMPL(socks_server_relay_end_closes_nothing_more)
{
    struct sstest t;
    uint8_t reply[10];
    sstest_start(&t, FAKE_ANSWER, 0);
    int fd = sstest_request(&t, "example.test", 80, "");
    ASSERT_EQ(sstest_reply(&t, fd, reply), 0);
    struct fake_conn *c = t.fake.conn;
    ASSERT(c != NULL && c->app != NULL);
    close(fd);
    ASSERT(uvtest_run_until(&t.loop, &c->got_eof, 2000) != 0);
    t.fake.backend_timeout_at_end = 0;
    fake_end(c);
    /* The close callback runs within one turn of the loop. */
    ASSERT_EQ(uv_run(&t.loop, UV_RUN_NOWAIT), 1);
    ASSERT_EQ(t.fake.backend_timeout_at_end, -1); /* no timer, nothing closing: poll may block */
    sstest_finish(&t);
    return 0;
}

static int sstest_connected_once(void *arg)
{
    return ((struct fake_outbound *)arg)->connects == 1;
}

/* The client is read on while its CONNECT is dialed, and handed to the relay still being read:
 * a stop and a start of the read would cost two epoll_ctl() calls per connection. What it sends
 * meanwhile reaches the remote end first, in order, and its end of file after that. */
TEST_IMPL(socks_server_reads_while_dialing)
{
    for (int eof_early = 0; eof_early < 2; eof_early++) {
        struct sstest t;
        uint8_t reply[10];
        sstest_start(&t, FAKE_HANG, 0);
        int fd = sstest_request(&t, "example.test", 80, "early;");
        ASSERT(uvtest_run_until_fn(&t.loop, sstest_connected_once, &t.fake, 3000));
        struct fake_conn *c = t.fake.conn;
        uvtest_send(&t.loop, fd, "mid;", 4);
        if (eof_early)
            ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
        int never = 0;
        uvtest_run_until(&t.loop, &never, 50);
        ASSERT(c->app == NULL);
        uv_timer_start(&c->timer, fake_answer, 0, 0);
        ASSERT_EQ(sstest_reply(&t, fd, reply), 0);
        ASSERT(c->app != NULL);
        /* Without an end of file the read went on up to the relay; after one it had stopped. */
        ASSERT_EQ(c->reading_at_bridge, !eof_early);
        ASSERT_EQ(c->n_got, 10);
        ASSERT_MEM_EQ(c->got, "early;mid;", 10);
        if (!eof_early)
            ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
        ASSERT(uvtest_run_until(&t.loop, &c->got_eof, 3000) == 1);
        ASSERT_EQ(c->n_got, 10);
        fake_shutdown(c);
        ASSERT(uvtest_run_until(&t.loop, &c->shut, 3000));
        ASSERT_EQ(uvtest_wait_end(&t.loop, fd, NULL, 3000), 1);
        fake_end(c);
        close(fd);
        sstest_finish(&t);
        ASSERT_EQ(t.fake.cancels, 0);
    }
    return 0;
}

TEST_IMPL(socks_server_close_while_dialing)
{
    struct sstest t;
    sstest_start(&t, FAKE_HANG, 0);
    int fd = sstest_request(&t, "slow.example", 443, "");
    ASSERT(uvtest_run_until_fn(&t.loop, sstest_connected_once, &t.fake, 3000));
    /* Closing the listener abandons the dial and drops the client. */
    socks_server_close(t.srv, sstest_server_closed, &t);
    ASSERT(uvtest_run_until(&t.loop, &t.server_closed, 3000));
    ASSERT_EQ(t.fake.cancels, 1);
    uint8_t m[2];
    int end;
    ASSERT_EQ(uvtest_recv(&t.loop, fd, m, 2, &end, 3000), 2);
    ASSERT(uvtest_wait_end(&t.loop, fd, NULL, 3000) != 0);
    close(fd);
    uvtest_loop_finish(&t.loop);
    return 0;
}

/* --- the routed outbound (route/dial.c) behind the SOCKS server --- */

struct rtest {
    struct sstest s;
    struct router router;
    struct outbound *direct, *dialer;
    int closed; /* close callbacks of the outbounds */
};

static void rtest_closed(void *arg)
{
    ((struct rtest *)arg)->closed++;
}

static void rtest_start(struct rtest *t)
{
    memset(t, 0, sizeof(*t));
    ASSERT_EQ(uv_loop_init(&t->s.loop), 0);
    fake_init(&t->s.fake, &t->s.loop, FAKE_ANSWER, 0);
    t->s.fake.ob.name = "tunnel";
    router_init(&t->router);
    struct v2s_cidr c;
    ASSERT(v2s_cidr_parse(&c, "192.0.2.0/24", 1) == 0);
    ASSERT_EQ(router_add_user(&t->router, &c, ROUTER_TUNNEL), 0);
    ASSERT(v2s_cidr_parse(&c, "198.51.100.0/24", 1) == 0);
    ASSERT_EQ(router_add_user(&t->router, &c, ROUTER_DIRECT), 0);
    t->router.others = ROUTER_OTHERS_REJECT;
    t->router.allow_direct_local = 1;
    ASSERT(v2s_cidr_parse(&c, "127.0.0.0/8", 1) == 0);
    ASSERT_EQ(router_add_user(&t->router, &c, ROUTER_DIRECT), 0);
    ASSERT_EQ(direct_new(&t->direct, &t->s.loop), 0);
    struct dial_config dcfg = {.loop = &t->s.loop, .stack = NULL, .router = &t->router};
    dcfg.via[ROUTER_TUNNEL] = &t->s.fake.ob;
    dcfg.via[ROUTER_DIRECT] = t->direct;
    ASSERT_EQ(dial_new(&t->dialer, &dcfg), 0);
    struct socks_server_config cfg = {
        .loop = &t->s.loop,
        .out = t->dialer,
        .connect_timeout_ms = 3000,
        .handshake_timeout_ms = 5000,
    };
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(socks_server_new(&t->s.srv, &cfg, (const struct sockaddr *)&sin), 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    ASSERT_EQ(socks_server_local(t->s.srv, (struct sockaddr *)&ss, &len), 0);
    t->s.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* One request through the routed outbound; returns the reply code, the client's fd in *fd. */
static int rtest_ask(struct rtest *t, const char *name, uint16_t port, int *fd)
{
    uint8_t reply[10];
    *fd = sstest_request(&t->s, name, port, "");
    return sstest_reply(&t->s, *fd, reply);
}

TEST_IMPL(dial_routes_per_verdict)
{
    struct rtest t;
    uint8_t buf[16];
    int end, fd;
    rtest_start(&t);

    /* A --route destination goes to the tunnel's outbound, whose name ends the label. */
    ASSERT_EQ(rtest_ask(&t, "192.0.2.9", 80, &fd), 0);
    ASSERT_EQ(t.s.fake.connects, 1);
    ASSERT_EQ(t.s.fake.timeout_ms, 3000);
    struct fake_conn *c = t.s.fake.conn;
    const char *tail = " -> 192.0.2.9:80 (tunnel)";
    ASSERT(strlen(c->label) > strlen(tail) && strcmp(c->label + strlen(c->label) - strlen(tail), tail) == 0);
    close(fd);
    ASSERT(uvtest_run_until(&t.s.loop, &c->got_eof, 3000) != 0);
    fake_end(c);

    /* A direct destination: a real connection to a loopback listener, relayed both ways. */
    uint16_t port;
    int l = uvtest_listen(&port);
    ASSERT_EQ(rtest_ask(&t, "127.0.0.1", port, &fd), 0);
    int remote = uvtest_accept(&t.s.loop, l, 3000);
    ASSERT(remote >= 0);
    uvtest_send(&t.s.loop, fd, "ping", 4);
    ASSERT_EQ(uvtest_recv(&t.s.loop, remote, buf, 4, &end, 3000), 4);
    ASSERT_MEM_EQ(buf, "ping", 4);
    uvtest_send(&t.s.loop, remote, "pong", 4);
    ASSERT_EQ(uvtest_recv(&t.s.loop, fd, buf, 4, &end, 3000), 4);
    ASSERT_MEM_EQ(buf, "pong", 4);
    ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
    ASSERT_EQ(uvtest_wait_end(&t.s.loop, remote, NULL, 3000), 1);
    ASSERT_EQ(shutdown(remote, SHUT_WR), 0);
    ASSERT_EQ(uvtest_wait_end(&t.s.loop, fd, NULL, 3000), 1);
    close(fd);
    close(remote);
    ASSERT_EQ(t.s.fake.connects, 1); /* not the tunnel's */

    /* An IPv6 address in brackets, as a URL writes it, given as a name (ATYP 3; reqwest with
     * socks5h:// sends one so): that address, as if given as one; no resolver is asked. Failed
     * before the fix: the host's resolver was asked for "[::ffff:192.0.2.9]", reply 4. */
    ASSERT_EQ(rtest_ask(&t, "[::ffff:192.0.2.9]", 80, &fd), 0);
    ASSERT_EQ(t.s.fake.connects, 2);
    ASSERT_STR_EQ(t.s.fake.name, "");
    char shown[V2S_ADDR_STRLEN];
    ASSERT_STR_EQ(v2s_addr_format(&t.s.fake.addr, shown, sizeof(shown)), "192.0.2.9");
    c = t.s.fake.conn;
    close(fd);
    ASSERT(uvtest_run_until(&t.s.loop, &c->got_eof, 3000) != 0);
    fake_end(c);
    /* Brackets around what is no address stay a name, which does not resolve. */
    ASSERT_EQ(rtest_ask(&t, "[192.0.2.9]", 80, &fd), 4);
    close(fd);
    ASSERT_EQ(rtest_ask(&t, "[not-an-address]", 80, &fd), 4);
    close(fd);
    ASSERT_EQ(t.s.fake.connects, 2);

    /* A name, through the host's resolver (no stack): a refused port gives "connection refused". */
    ASSERT_EQ(rtest_ask(&t, "localhost", uvtest_closed_port(), &fd), 5);
    close(fd);
    /* --others reject: "not allowed". */
    ASSERT_EQ(rtest_ask(&t, "203.0.113.1", 80, &fd), 2);
    close(fd);
    /* A local address without --allow-direct-local: "not allowed" too. */
    t.router.allow_direct_local = 0;
    ASSERT_EQ(rtest_ask(&t, "127.0.0.1", port, &fd), 2);
    close(fd);
    ASSERT_EQ(t.s.fake.connects, 2);

    close(l);
    socks_server_close(t.s.srv, sstest_server_closed, &t.s);
    ASSERT(uvtest_run_until(&t.s.loop, &t.s.server_closed, 3000));
    outbound_close(t.dialer, rtest_closed, &t);
    outbound_close(t.direct, rtest_closed, &t);
    outbound_close(&t.s.fake.ob, rtest_closed, &t);
    ASSERT_EQ(t.s.fake.closed, 1);
    for (int i = 0; i < 3000 && t.closed < 3; i++)
        uvtest_run_until(&t.s.loop, &t.s.server_closed, 1);
    ASSERT_EQ(t.closed, 3);
    router_free(&t.router);
    uvtest_loop_finish(&t.s.loop);
    return 0;
}

/* A CONNECT to one of our own listeners (with --allow-direct-local, as here) is "not allowed"
 * (reply 2) rather than a connection to itself; the tunnel's outbound is never asked. A listener on
 * the wildcard address is ours at any loopback address (127.0.0.2 here); one on 127.0.0.1 is not
 * at 127.0.0.2, which the kernel refuses (reply 5). Failed before the fix: reply 0, the server
 * connected to itself. */
TEST_IMPL(dial_refuses_own_listener)
{
    struct rtest t;
    int fd;
    rtest_start(&t);
    struct v2s_cidr c;
    ASSERT(v2s_cidr_parse(&c, "0.0.0.0/32", 0) == 0);
    ASSERT_EQ(router_add_user(&t.router, &c, ROUTER_DIRECT), 0); /* else --others reject has it */
    ASSERT_EQ(rtest_ask(&t, "127.0.0.1", t.s.port, &fd), 2);
    close(fd);
    ASSERT_EQ(rtest_ask(&t, "0.0.0.0", t.s.port, &fd), 2);
    close(fd);
    ASSERT_EQ(rtest_ask(&t, "127.0.0.2", t.s.port, &fd), 5);
    close(fd);

    struct socks_server_config cfg = {.loop = &t.s.loop, .out = t.dialer, .connect_timeout_ms = 3000,
                                      .handshake_timeout_ms = 5000};
    struct sockaddr_in sin = {.sin_family = AF_INET}; /* 0.0.0.0, port 0 */
    struct socks_server *any;
    ASSERT_EQ(socks_server_new(&any, &cfg, (const struct sockaddr *)&sin), 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    ASSERT_EQ(socks_server_local(any, (struct sockaddr *)&ss, &len), 0);
    uint16_t any_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    ASSERT_EQ(rtest_ask(&t, "127.0.0.2", any_port, &fd), 2);
    close(fd);
    ASSERT_EQ(t.s.fake.connects, 0);

    /* Once closed, the port is no longer ours: the kernel refuses it (reply 5). */
    socks_server_close(any, rtest_closed, &t);
    ASSERT_EQ(rtest_ask(&t, "127.0.0.2", any_port, &fd), 5);
    close(fd);

    socks_server_close(t.s.srv, sstest_server_closed, &t.s);
    ASSERT(uvtest_run_until(&t.s.loop, &t.s.server_closed, 3000));
    outbound_close(t.dialer, rtest_closed, &t);
    outbound_close(t.direct, rtest_closed, &t);
    outbound_close(&t.s.fake.ob, rtest_closed, &t);
    for (int i = 0; i < 3000 && t.closed < 4; i++)
        uvtest_run_until(&t.s.loop, &t.s.server_closed, 1);
    ASSERT_EQ(t.closed, 4);
    router_free(&t.router);
    uvtest_loop_finish(&t.s.loop);
    return 0;
}

/* Closing the routed outbound fails the dials still connecting (the client is told "general
 * failure") and cancels them in the outbound the router picked. */
TEST_IMPL(dial_close_fails_pending)
{
    struct rtest t;
    int fd;
    rtest_start(&t);
    t.s.fake.mode = FAKE_HANG;
    uint8_t reply[10];
    fd = sstest_request(&t.s, "192.0.2.9", 80, "");
    ASSERT(uvtest_run_until_fn(&t.s.loop, sstest_connected_once, &t.s.fake, 3000));
    outbound_close(t.dialer, rtest_closed, &t);
    ASSERT_EQ(t.s.fake.cancels, 1);
    ASSERT_EQ(t.closed, 1); /* nothing pending any more: freed at once */
    ASSERT_EQ(sstest_reply(&t.s, fd, reply), 1);
    ASSERT_EQ(uvtest_wait_end(&t.s.loop, fd, NULL, 3000), 1);
    close(fd);
    socks_server_close(t.s.srv, sstest_server_closed, &t.s);
    ASSERT(uvtest_run_until(&t.s.loop, &t.s.server_closed, 3000));
    outbound_close(t.direct, rtest_closed, &t);
    router_free(&t.router);
    uvtest_loop_finish(&t.s.loop);
    ASSERT_EQ(t.closed, 2);
    return 0;
}

/* The tunnel's outbound of an IPv4-only tunnel (as a VPN that pushed no IPv6 address). */
static int fake_v4_can_reach(const struct outbound *ob, int family)
{
    (void)ob;
    return family == AF_INET;
}

/* A client on a dual-stack socket names an IPv4 host as ::ffff:a.b.c.d (ATYP 4): that host is
 * reached, through the tunnel the router sends it to, as IPv4. Failed before the fix: the router
 * took it as 192.0.2.9 (the tunnel), which could not reach an IPv6 address: reply 3 ("network
 * unreachable") where 192.0.2.9 itself connects. */
TEST_IMPL(socks_server_mapped_v4)
{
    struct rtest t;
    rtest_start(&t);
    struct outbound_ops v4_ops = fake_ops;
    v4_ops.can_reach = fake_v4_can_reach;
    t.s.fake.ob.ops = &v4_ops;
    static const uint8_t req[] = {5, 1, 0, 5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 9, 0, 80};
    int fd = uvtest_connect(t.s.port);
    uvtest_send(&t.s.loop, fd, req, sizeof(req));
    uint8_t reply[10];
    ASSERT_EQ(sstest_reply(&t.s, fd, reply), 0);
    ASSERT_EQ(t.s.fake.connects, 1);
    char a[V2S_ADDR_STRLEN];
    ASSERT_STR_EQ(v2s_addr_format(&t.s.fake.addr, a, sizeof(a)), "192.0.2.9");
    struct fake_conn *c = t.s.fake.conn;
    close(fd);
    ASSERT(uvtest_run_until(&t.s.loop, &c->got_eof, 3000) != 0);
    fake_end(c);
    socks_server_close(t.s.srv, sstest_server_closed, &t.s);
    ASSERT(uvtest_run_until(&t.s.loop, &t.s.server_closed, 3000));
    outbound_close(t.dialer, rtest_closed, &t);
    outbound_close(t.direct, rtest_closed, &t);
    outbound_close(&t.s.fake.ob, rtest_closed, &t);
    for (int i = 0; i < 3000 && t.closed < 3; i++)
        uvtest_run_until(&t.s.loop, &t.s.server_closed, 1);
    ASSERT_EQ(t.closed, 3);
    router_free(&t.router);
    uvtest_loop_finish(&t.s.loop);
    return 0;
}

/* --- a listener with credentials (--socks-auth) --- */

/* Builds VER ULEN UNAME PLEN PASSWD. */
static size_t sstest_login(uint8_t *out, const char *user, const char *password)
{
    size_t n = 0, ul = strlen(user), pl = strlen(password);
    out[n++] = 0x01;
    out[n++] = (uint8_t)ul;
    memcpy(out + n, user, ul);
    n += ul;
    out[n++] = (uint8_t)pl;
    memcpy(out + n, password, pl);
    return n + pl;
}

/* Sends the login and reads the method choice and the login's answer. Returns the answer's status. */
static int sstest_auth(struct sstest *t, int fd, const char *user, const char *password)
{
    static const uint8_t greeting[] = {0x05, 0x02, 0x00, 0x02};
    uint8_t login[600], m[2];
    int end;
    uvtest_send(&t->loop, fd, greeting, sizeof(greeting));
    ASSERT_EQ(uvtest_recv(&t->loop, fd, m, 2, &end, 3000), 2);
    ASSERT_MEM_EQ(m, "\x05\x02", 2);
    uvtest_send(&t->loop, fd, login, sstest_login(login, user, password));
    ASSERT_EQ(uvtest_recv(&t->loop, fd, m, 2, &end, 3000), 2);
    ASSERT_EQ(m[0], 0x01);
    return m[1];
}

/* A CONNECT to example.test:443 by name. */
static size_t sstest_connect_req(uint8_t *out)
{
    static const uint8_t req[] = {0x05, 0x01, 0x00, 0x03, 12, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 't', 'e', 's',
                                  't', 0x01, 0xBB};
    memcpy(out, req, sizeof(req));
    return sizeof(req);
}

static void sstest_relay_end(struct sstest *t, int fd)
{
    struct fake_conn *c = t->fake.conn;
    ASSERT(c != NULL);
    close(fd);
    ASSERT(uvtest_run_until(&t->loop, &c->got_eof, 3000) != 0);
    fake_end(c);
}

/* Right and wrong logins on the wire: 05 02 then 01 00 and the request goes through; 05 FF for a
 * client offering no login; 01 01 and the end for a wrong password or user, and for a login whose
 * version is not 1; 91 for SOCKS4; and a right login still works after all that. Every refusal is
 * logged with the client and the user, never the password; nothing refused reaches the outbound. */
TEST_IMPL(socks_server_auth)
{
    struct sstest t;
    struct v2s_credentials *creds;
    char err[128];
    static const char users[] = "bob:pa:ss\nalice:x\n";
    uint8_t buf[600], reply[10], m[2];
    int end, zero = 0;
    size_t n;
    ASSERT_EQ(v2s_credentials_parse(&creds, "users", users, sizeof(users) - 1, err, sizeof(err)), 0);
    sstest_start_with(&t, FAKE_ANSWER, 0, creds, 5000);
    int saved = v2s_log_level;
    v2s_log_level = V2S_LOG_WARN;
    uvtest_log_begin();

    /* Greeting, login and request one byte per read. */
    static const uint8_t greeting[] = {0x05, 0x02, 0x00, 0x02};
    n = 0;
    memcpy(buf, greeting, sizeof(greeting));
    n += sizeof(greeting);
    n += sstest_login(buf + n, "bob", "pa:ss");
    n += sstest_connect_req(buf + n);
    int fd = uvtest_connect(t.port);
    for (size_t i = 0; i < n; i++) {
        uvtest_send(&t.loop, fd, buf + i, 1);
        uvtest_run_until(&t.loop, &zero, 2);
    }
    ASSERT_EQ(uvtest_recv(&t.loop, fd, m, 2, &end, 3000), 2);
    ASSERT_MEM_EQ(m, "\x05\x02", 2);
    ASSERT_EQ(uvtest_recv(&t.loop, fd, m, 2, &end, 3000), 2);
    ASSERT_MEM_EQ(m, "\x01\x00", 2);
    ASSERT_EQ(uvtest_recv(&t.loop, fd, reply, 10, &end, 3000), 10);
    ASSERT_EQ(reply[1], 0);
    ASSERT_EQ(t.fake.connects, 1);
    ASSERT_STR_EQ(t.fake.name, "example.test");
    sstest_relay_end(&t, fd);

    /* Only "no authentication" offered (curl without credentials): 0xFF, then the end. */
    fd = uvtest_connect(t.port);
    uvtest_send(&t.loop, fd, "\x05\x01\x00", 3);
    ASSERT_EQ(uvtest_recv(&t.loop, fd, m, 2, &end, 3000), 2);
    ASSERT_MEM_EQ(m, "\x05\xff", 2);
    ASSERT_EQ(uvtest_wait_end(&t.loop, fd, NULL, 3000), 1);
    close(fd);

    /* A wrong password, then an unknown user: 01 01, then the end. */
    fd = uvtest_connect(t.port);
    ASSERT_EQ(sstest_auth(&t, fd, "bob", "pa:sS"), 0x01);
    ASSERT_EQ(uvtest_wait_end(&t.loop, fd, NULL, 3000), 1);
    close(fd);
    fd = uvtest_connect(t.port);
    ASSERT_EQ(sstest_auth(&t, fd, "mal\nlory", "x"), 0x01);
    ASSERT_EQ(uvtest_wait_end(&t.loop, fd, NULL, 3000), 1);
    close(fd);
    /* Another user's password is wrong too. */
    fd = uvtest_connect(t.port);
    ASSERT_EQ(sstest_auth(&t, fd, "alice", "pa:ss"), 0x01);
    ASSERT_EQ(uvtest_wait_end(&t.loop, fd, NULL, 3000), 1);
    close(fd);

    /* A login of a version other than RFC 1929's 1 (a client sending 5, as if it were a
     * request): 01 01, then the end, whole and one byte per read. It was closed without an
     * answer. */
    for (int split = 0; split < 2; split++) {
        static const uint8_t v5[] = {0x05, 0x01, 0x02, /* the greeting, then the login */
                                     0x05, 3, 'b', 'o', 'b', 5, 'p', 'a', ':', 's', 's'};
        fd = uvtest_connect(t.port);
        for (size_t i = 0; i < sizeof(v5); i += split ? 1 : sizeof(v5)) {
            uvtest_send(&t.loop, fd, v5 + i, split ? 1 : sizeof(v5));
            uvtest_run_until(&t.loop, &zero, 2);
            if (split && i == 4)
                break; /* VER ULEN are in: the server reads no more */
        }
        ASSERT_EQ(uvtest_recv(&t.loop, fd, buf, 4, &end, 3000), 4);
        ASSERT_MEM_EQ(buf, "\x05\x02\x01\x01", 4);
        ASSERT_EQ(uvtest_wait_end(&t.loop, fd, NULL, 3000), 1);
        close(fd);
    }

    /* SOCKS4a carries no password: rejected (91). */
    static const uint8_t socks4a[] = {0x04, 0x01, 0x00, 0x50, 0, 0, 0, 1, 'b', 'o', 'b', 0, 'h', 0};
    fd = uvtest_connect(t.port);
    uvtest_send(&t.loop, fd, socks4a, sizeof(socks4a));
    ASSERT_EQ(uvtest_recv(&t.loop, fd, buf, 8, &end, 3000), 8);
    ASSERT_EQ(buf[0], 0);
    ASSERT_EQ(buf[1], 91);
    ASSERT_EQ(uvtest_wait_end(&t.loop, fd, NULL, 3000), 1);
    close(fd);
    ASSERT_EQ(t.fake.connects, 1);

    /* A right login still works, the other user's, with the request right behind it. */
    fd = uvtest_connect(t.port);
    ASSERT_EQ(sstest_auth(&t, fd, "alice", "x"), 0x00);
    n = sstest_connect_req(buf);
    uvtest_send(&t.loop, fd, buf, n);
    ASSERT_EQ(uvtest_recv(&t.loop, fd, reply, 10, &end, 3000), 10);
    ASSERT_EQ(reply[1], 0);
    ASSERT_EQ(t.fake.connects, 2);
    sstest_relay_end(&t, fd);

    const char *log = uvtest_log_end();
    v2s_log_level = saved;
    ASSERT(strstr(log, ": login refused for a client without a user name: no username/password offered") != NULL);
    ASSERT(strstr(log, "SOCKS listener 127.0.0.1:") != NULL);
    ASSERT(strstr(log, ": 127.0.0.1:") != NULL);
    ASSERT(strstr(log, ": login refused for user \"bob\": wrong password\n") != NULL);
    ASSERT(strstr(log, ": login refused for user \"mal\\x0alory\": unknown user\n") != NULL);
    ASSERT(strstr(log, ": login refused for user \"alice\": wrong password\n") != NULL);
    ASSERT(strstr(log, ": login refused for a client without a user name: a SOCKS4 request") != NULL);
    const char *wrong_version = ": login refused for a client without a user name: "
                                "username/password sub-negotiation version is not 1 (RFC 1929)\n";
    const char *first = strstr(log, wrong_version);
    ASSERT(first != NULL && strstr(first + 1, wrong_version) != NULL); /* one line each */
    ASSERT(strstr(log, "pa:s") == NULL);
    sstest_finish(&t);
    v2s_credentials_free(creds);
    return 0;
}

/* The handshake timeout covers the login: a client that stops halfway through its password is
 * dropped, and nothing is dialed. */
TEST_IMPL(socks_server_auth_timeout)
{
    struct sstest t;
    struct v2s_credentials *creds;
    char err[128];
    uint8_t m[2];
    int end;
    ASSERT_EQ(v2s_credentials_parse(&creds, "users", "bob:secret\n", 11, err, sizeof(err)), 0);
    sstest_start_with(&t, FAKE_ANSWER, 0, creds, 300);
    int fd = uvtest_connect(t.port);
    uvtest_send(&t.loop, fd, "\x05\x01\x02\x01\x03" "bob\x06" "sec", 12);
    ASSERT_EQ(uvtest_recv(&t.loop, fd, m, 2, &end, 3000), 2);
    ASSERT_MEM_EQ(m, "\x05\x02", 2);
    uint64_t start = uv_now(&t.loop);
    ASSERT_EQ(uvtest_wait_end(&t.loop, fd, NULL, 3000), 1);
    uv_update_time(&t.loop);
    ASSERT(uv_now(&t.loop) - start < 2000);
    ASSERT_EQ(t.fake.connects, 0);
    close(fd);
    sstest_finish(&t);
    v2s_credentials_free(creds);
    return 0;
}

/* A client that sends its greeting, a login with the longest user and password RFC 1929 allows
 * (255 bytes each), its request and its first bytes in one write gets 05 02, 01 00 and the reply,
 * and the remote end gets those bytes; a login with an empty user or an empty password, sent the
 * same way, gets 01 01 and the end, and nothing is dialed for it. A regression guard: passes on
 * main. */
TEST_IMPL(socks_server_auth_pipelined)
{
    static char users[600], user[256], password[256];
    memset(user, 'u', 255);
    memset(password, 'p', 255);
    password[0] = ':'; /* the password is the rest of the line, colons included */
    snprintf(users, sizeof(users), "%s:%s\n", user, password);
    struct v2s_credentials *creds;
    char err[128];
    ASSERT_EQ(v2s_credentials_parse(&creds, "users", users, strlen(users), err, sizeof(err)), 0);
    for (int k = 0; k < 3; k++) {
        struct sstest t;
        sstest_start_with(&t, FAKE_ANSWER, 0, creds, 5000);
        uint8_t buf[700], got[16];
        size_t n = 0;
        memcpy(buf, "\x05\x01\x02", 3);
        n += 3;
        n += sstest_login(buf + n, k == 1 ? "" : user, k == 2 ? "" : password);
        n += sstest_connect_req(buf + n);
        memcpy(buf + n, "early", 5);
        n += 5;
        int fd = uvtest_connect(t.port);
        uvtest_send(&t.loop, fd, buf, n);
        int end;
        ASSERT_EQ(uvtest_recv(&t.loop, fd, got, 4, &end, 3000), 4);
        if (k > 0) {
            ASSERT_MEM_EQ(got, "\x05\x02\x01\x01", 4);
            ASSERT_EQ(uvtest_wait_end(&t.loop, fd, NULL, 3000), 1);
            ASSERT_EQ(t.fake.connects, 0);
            close(fd);
            sstest_finish(&t);
            continue;
        }
        ASSERT_MEM_EQ(got, "\x05\x02\x01\x00", 4);
        ASSERT_EQ(uvtest_recv(&t.loop, fd, got, 10, &end, 3000), 10);
        ASSERT_EQ(got[1], 0);
        struct fake_conn *c = t.fake.conn;
        ASSERT(c != NULL && c->app != NULL);
        ASSERT_EQ(c->n_got, 5);
        ASSERT_MEM_EQ(c->got, "early", 5);
        sstest_relay_end(&t, fd);
        sstest_finish(&t);
    }
    v2s_credentials_free(creds);
    return 0;
}

/* --- hostile and broken clients --- */

/* Every invalid field a client can send, whole and split at every byte: the client gets the
 * answer RFC 1928 has for it (none where the protocol has none), then the end of the connection,
 * and nothing is dialed. Each input stops where the server stops reading, so that no unread byte
 * turns the close into a reset. A regression guard: passes on main. */
TEST_IMPL(socks_server_bad_requests)
{
#define REPLY(rep) "\x05" rep "\x00\x01\x00\x00\x00\x00\x00\x00"
    static const struct {
        const char *what;
        const char *in;
        size_t n;
        const char *out;
        size_t out_n;
    } rows[] = {
        {"version 6", "\x06", 1, "", 0},
        {"no methods (NMETHODS 0)", "\x05\x00", 2, "\x05\xff", 2},
        {"only username/password offered", "\x05\x01\x02", 3, "\x05\xff", 2},
        {"request version 4", "\x05\x01\x00\x04\x01\x00\x01", 7, "\x05\x00" REPLY("\x01"), 12},
        {"address type 9", "\x05\x01\x00\x05\x01\x00\x09", 7, "\x05\x00" REPLY("\x08"), 12},
        {"empty name", "\x05\x01\x00\x05\x01\x00\x03\x00\x00\x50", 10, "\x05\x00" REPLY("\x04"), 12},
        {"NUL in the name", "\x05\x01\x00\x05\x01\x00\x03\x03" "a\x00" "b\x00\x50", 13, "\x05\x00" REPLY("\x04"), 12},
        {"command 9", "\x05\x01\x00\x05\x09\x00\x01\x01\x02\x03\x04\x00\x50", 13, "\x05\x00" REPLY("\x07"), 12},
        {"UDP ASSOCIATE not enabled", "\x05\x01\x00\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00", 13,
         "\x05\x00" REPLY("\x07"), 12},
        {"BIND without a tunnel", "\x05\x01\x00\x05\x02\x00\x01\x0a\x00\x00\x01\x00\x50", 13,
         "\x05\x00" REPLY("\x07"), 12},
        {"SOCKS4 command 3", "\x04\x03\x00\x50\x01\x02\x03\x04\x00", 9, "\x00\x5b\x00\x00\x00\x00\x00\x00", 8},
        {"SOCKS4a empty host", "\x04\x01\x00\x50\x00\x00\x00\x01\x00\x00", 10, "\x00\x5b\x00\x00\x00\x00\x00\x00",
         8},
    };
#undef REPLY
    uint8_t many[2 + 255];
    many[0] = 5;
    many[1] = 255;
    for (int i = 0; i < 255; i++)
        many[2 + i] = (uint8_t)(i + 1); /* every method but "no authentication" */
    /* A SOCKS4 user id longer than the parser takes (256 bytes, not ended): the reply's layout is
     * known, so it is answered 91 as any refused SOCKS4 request is. */
    uint8_t long4[8 + 256];
    memcpy(long4, "\x04\x01\x00\x50\x01\x02\x03\x04", 8);
    memset(long4 + 8, 'u', sizeof(long4) - 8);
    const struct {
        const char *what;
        const uint8_t *in;
        size_t n;
        const char *out;
        size_t out_n;
    } extra[] = {
        {"255 methods, none acceptable", many, sizeof(many), "\x05\xff", 2},
        {"SOCKS4 user id too long", long4, sizeof(long4), "\x00\x5b\x00\x00\x00\x00\x00\x00", 8},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows) + ARRAY_SIZE(extra); i++) {
        int x = i >= ARRAY_SIZE(rows);
        size_t j = x ? i - ARRAY_SIZE(rows) : i;
        const char *what = x ? extra[j].what : rows[j].what;
        const uint8_t *in = x ? extra[j].in : (const uint8_t *)rows[j].in;
        size_t n = x ? extra[j].n : rows[j].n;
        const uint8_t *out = (const uint8_t *)(x ? extra[j].out : rows[j].out);
        size_t out_n = x ? extra[j].out_n : rows[j].out_n;
        for (int split = 0; split < 2; split++) {
            struct sstest t;
            sstest_start(&t, FAKE_ANSWER, 0);
            int fd = uvtest_connect(t.port);
            if (split) {
                for (size_t k = 0; k < n; k++) {
                    uvtest_send(&t.loop, fd, in + k, 1);
                    int never = 0;
                    uvtest_run_until(&t.loop, &never, 2);
                }
            } else
                uvtest_send(&t.loop, fd, in, n);
            uint8_t got[32];
            int end = 0;
            size_t len = uvtest_recv(&t.loop, fd, got, sizeof(got), &end, 3000);
            ASSERT_ROW(len == out_n && memcmp(got, out, out_n) == 0, "%s (split %d): %zu bytes", what, split, len);
            if (end == 0)
                end = uvtest_wait_end(&t.loop, fd, NULL, 3000);
            ASSERT_ROW(end == 1, "%s (split %d): end %d", what, split, end);
            ASSERT_ROW(t.fake.connects == 0, "%s", what);
            close(fd);
            sstest_finish(&t);
        }
    }
    return 0;
}

/* A request whose VER is not 5 after a version 5 greeting (4 here, as a client that mixes its
 * SOCKS4 and SOCKS5 code sends): VER 5 REP 1 (general failure), then the end, and one line at info
 * naming the client and the version it sent; a connection in its handshake meanwhile goes on to
 * its CONNECT. Failed before the fix: the connection closed without a reply, and the line said
 * only "request version is not 5". */
TEST_IMPL(socks_server_bad_request_version)
{
    struct sstest t;
    uint8_t buf[64], reply[10], m[2];
    int end;
    sstest_start(&t, FAKE_ANSWER, 0);
    int saved = v2s_log_level;
    v2s_log_level = V2S_LOG_INFO;
    uvtest_log_begin();
    int other = uvtest_connect(t.port);
    uvtest_send(&t.loop, other, "\x05\x01\x00", 3);
    ASSERT_EQ(uvtest_recv(&t.loop, other, m, 2, &end, 3000), 2);
    ASSERT_MEM_EQ(m, "\x05\x00", 2);

    int fd = uvtest_connect(t.port);
    uvtest_send(&t.loop, fd, "\x05\x01\x00\x04\x01\x00\x01", 7);
    ASSERT_EQ(uvtest_recv(&t.loop, fd, buf, 12, &end, 3000), 12);
    ASSERT_MEM_EQ(buf, "\x05\x00\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00", 12);
    ASSERT_EQ(uvtest_wait_end(&t.loop, fd, NULL, 3000), 1);
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    ASSERT_EQ(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    close(fd);

    size_t n = sstest_connect_req(buf);
    uvtest_send(&t.loop, other, buf, n);
    ASSERT_EQ(uvtest_recv(&t.loop, other, reply, 10, &end, 3000), 10);
    ASSERT_EQ(reply[1], 0);
    ASSERT_EQ(t.fake.connects, 1);
    sstest_relay_end(&t, other);

    const char *log = uvtest_log_end();
    v2s_log_level = saved;
    char want[128];
    snprintf(want, sizeof(want),
             "127.0.0.1:%u: bad SOCKS request: request version is 4, not 5 (reply 1)\n",
             ntohs(sin.sin_port));
    ASSERT(strstr(log, want) != NULL);
    sstest_finish(&t);
    return 0;
}

static int sstest_handles_at(void *arg)
{
    struct sstest *t = arg;
    return (int)uvtest_handles(&t->loop) == t->fake.backend_timeout_at_end; /* the baseline, see below */
}

static int sstest_connects_at(void *arg)
{
    struct sstest *t = arg;
    return t->fake.connects == t->fake.cancels + 1;
}

/* A client that leaves at every step of a CONNECT (after each byte of its greeting, request and
 * early data, by a reset or, before its request is complete, by its end of stream) is dropped at
 * once: its handles are closed and a dial it started is cancelled, with no timer left to fire
 * (the handshake timeout is 60 s here). A regression guard: passes on main. */
TEST_IMPL(socks_server_client_leaves_every_step)
{
    static const uint8_t ex[] = "\x05\x01\x00" "\x05\x01\x00\x03\x07" "a.tests" "\x01\xbb" "early";
    const size_t n = sizeof(ex) - 1, request_end = 3 + 5 + 7 + 2;
    struct sstest t;
    sstest_start_with(&t, FAKE_HANG, 0, NULL, 60000);
    int never = 0;
    uvtest_run_until(&t.loop, &never, 5);
    /* The listener's handles; the fake's field is free for it (nothing is bridged here). */
    t.fake.backend_timeout_at_end = (int)uvtest_handles(&t.loop);
    int dials = 0;
    for (int reset = 0; reset < 2; reset++) {
        for (size_t k = 0; k <= n; k++) {
            if (!reset && k >= request_end)
                break; /* an end of stream while dialing is a half-close: kept for the relay */
            int fd = uvtest_connect(t.port);
            if (k > 0)
                uvtest_send(&t.loop, fd, ex, k);
            /* A reset discards what the listener has not read: a whole request is waited for. */
            dials += k >= request_end;
            if (k >= request_end)
                ASSERT(uvtest_run_until_fn(&t.loop, sstest_connects_at, &t, 3000));
            else
                uvtest_run_until(&t.loop, &never, 5);
            if (reset) {
                struct linger lg = {1, 0};
                ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
            }
            close(fd);
            ASSERT_ROW(uvtest_run_until_fn(&t.loop, sstest_handles_at, &t, 3000), "reset %d, %zu bytes: %u handles",
                       reset, k, uvtest_handles(&t.loop));
            ASSERT_ROW(t.fake.connects == dials && t.fake.cancels == dials, "reset %d, %zu bytes", reset, k);
        }
    }
    sstest_finish(&t);
    return 0;
}
