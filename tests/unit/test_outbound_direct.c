/* route/direct.c, the direct outbound, on a real libuv loop against loopback sockets: connect,
 * relay both ways with early bytes and half-close, a reset passed through, a refused port, the
 * shared "closed" log line with its byte counts, and no handle left open. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "base/log.h"
#include "route/direct.h"
#include "route/outbound.h"
#include "test.h"
#include "uvtest.h"

struct dtest {
    uv_loop_t loop;
    struct outbound *direct;
    /* the connect */
    int answered;
    int status;
    struct outbound_conn *conn;
    struct v2s_addr bound;
    uint16_t bound_port;
    /* the application side: app_fd is the test's end, app the relay's */
    uv_tcp_t *app;
    int app_fd;
    int done;
    int closed; /* the outbound's close callback ran */
};

static void dtest_closed(void *arg)
{
    ((struct dtest *)arg)->closed++;
}

static void dtest_connected(void *arg, struct outbound_conn *c, int status, const struct v2s_addr *bound,
                            uint16_t port)
{
    struct dtest *t = arg;
    t->answered = 1;
    t->status = status;
    t->conn = c;
    if (status == 0) {
        t->bound = *bound;
        t->bound_port = port;
    }
}

static void dtest_done(void *arg)
{
    struct dtest *t = arg;
    free(t->app);
    t->app = NULL;
    t->done = 1;
}

static void dtest_start(struct dtest *t)
{
    memset(t, 0, sizeof(*t));
    ASSERT_EQ(uv_loop_init(&t->loop), 0);
    ASSERT_EQ(direct_new(&t->direct, &t->loop), 0);
}

/* Connects the direct outbound to 127.0.0.1:port; returns the status it answered. */
static int dtest_connect(struct dtest *t, uint16_t port)
{
    struct v2s_addr dst;
    ASSERT(v2s_addr_parse(&dst, "127.0.0.1") == 0);
    t->answered = 0;
    ASSERT_EQ(outbound_connect(t->direct, NULL, &dst, port, 3000, dtest_connected, t, &t->conn), 0);
    ASSERT(uvtest_run_until(&t->loop, &t->answered, 3000));
    return t->status;
}

/* A connected application socket pair: the test's end (app_fd) and a uv_tcp_t for the relay. */
static void dtest_app(struct dtest *t)
{
    uint16_t port;
    int l = uvtest_listen(&port);
    t->app_fd = uvtest_connect(port);
    int fd = uvtest_accept(&t->loop, l, 3000);
    ASSERT(fd >= 0);
    close(l);
    t->app = malloc(sizeof(*t->app));
    ASSERT(t->app != NULL);
    ASSERT_EQ(uv_tcp_init(&t->loop, t->app), 0);
    ASSERT_EQ(uv_tcp_open(t->app, fd), 0);
}

TEST_IMPL(direct_outbound_relay)
{
    struct dtest t;
    uint8_t buf[64];
    int end;
    uint16_t port;
    dtest_start(&t);
    int l = uvtest_listen(&port);
    ASSERT_EQ(dtest_connect(&t, port), 0);
    int remote = uvtest_accept(&t.loop, l, 3000);
    ASSERT(remote >= 0);
    char a[V2S_ADDR_STRLEN];
    ASSERT_STR_EQ(v2s_addr_format(&t.bound, a, sizeof(a)), "127.0.0.1");
    ASSERT(t.bound_port != 0 && t.bound_port != port);

    int saved_level = v2s_log_level;
    v2s_log_level = V2S_LOG_INFO;
    uvtest_log_begin();
    dtest_app(&t);
    outbound_bridge(t.conn, t.app, (const uint8_t *)"early;", 6, "client -> remote", dtest_done, &t);

    /* Early bytes first, then what the application sends. */
    uvtest_send(&t.loop, t.app_fd, "up1;", 4);
    ASSERT_EQ(uvtest_recv(&t.loop, remote, buf, 10, &end, 3000), 10);
    ASSERT_MEM_EQ(buf, "early;up1;", 10);
    uvtest_send(&t.loop, remote, "down1;", 6);
    ASSERT_EQ(uvtest_recv(&t.loop, t.app_fd, buf, 6, &end, 3000), 6);
    ASSERT_MEM_EQ(buf, "down1;", 6);

    /* The application half-closes: the remote end sees EOF and can still send. */
    ASSERT_EQ(shutdown(t.app_fd, SHUT_WR), 0);
    ASSERT_EQ(uvtest_wait_end(&t.loop, remote, NULL, 3000), 1);
    uvtest_send(&t.loop, remote, "down2;", 6);
    ASSERT_EQ(uvtest_recv(&t.loop, t.app_fd, buf, 6, &end, 3000), 6);
    ASSERT_MEM_EQ(buf, "down2;", 6);
    ASSERT_EQ(end, 0);
    ASSERT_EQ(t.done, 0);

    /* The remote end half-closes too: the application gets EOF and the relay is over. */
    ASSERT_EQ(shutdown(remote, SHUT_WR), 0);
    ASSERT_EQ(uvtest_wait_end(&t.loop, t.app_fd, NULL, 3000), 1);
    ASSERT(uvtest_run_until(&t.loop, &t.done, 3000));
    const char *log = uvtest_log_end();
    v2s_log_level = saved_level;
    ASSERT(strstr(log, "client -> remote open") != NULL);
    ASSERT(strstr(log, "client -> remote closed (10 bytes up, 12 down)") != NULL);

    close(remote);
    close(t.app_fd);
    close(l);
    outbound_close(t.direct, dtest_closed, &t);
    ASSERT(uvtest_run_until(&t.loop, &t.closed, 3000));
    uvtest_loop_finish(&t.loop);
    ASSERT_EQ(t.closed, 1);
    return 0;
}

TEST_IMPL(direct_outbound_reset)
{
    struct dtest t;
    uint8_t buf[64];
    int end;
    uint16_t port;
    dtest_start(&t);
    int l = uvtest_listen(&port);
    ASSERT_EQ(dtest_connect(&t, port), 0);
    int remote = uvtest_accept(&t.loop, l, 3000);
    ASSERT(remote >= 0);
    int saved_level = v2s_log_level;
    v2s_log_level = V2S_LOG_INFO;
    uvtest_log_begin();
    dtest_app(&t);
    outbound_bridge(t.conn, t.app, NULL, 0, "c -> r", dtest_done, &t);
    uvtest_send(&t.loop, t.app_fd, "x", 1);
    ASSERT_EQ(uvtest_recv(&t.loop, remote, buf, 1, &end, 3000), 1);

    /* The remote end resets: the application gets a reset too, not an EOF. */
    struct linger lg = {1, 0};
    ASSERT_EQ(setsockopt(remote, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(remote);
    ASSERT_EQ(uvtest_wait_end(&t.loop, t.app_fd, NULL, 3000), -ECONNRESET);
    ASSERT(uvtest_run_until(&t.loop, &t.done, 3000));
    const char *log = uvtest_log_end();
    v2s_log_level = saved_level;
    ASSERT(strstr(log, "c -> r closed by reset (1 bytes up, 0 down)") != NULL);
    close(t.app_fd);

    /* Closing the outbound resets a live relay and frees it once its handles are closed. */
    ASSERT_EQ(dtest_connect(&t, port), 0);
    remote = uvtest_accept(&t.loop, l, 3000);
    ASSERT(remote >= 0);
    t.done = 0;
    dtest_app(&t);
    outbound_bridge(t.conn, t.app, NULL, 0, "c -> r", dtest_done, &t);
    outbound_close(t.direct, dtest_closed, &t);
    ASSERT(uvtest_run_until(&t.loop, &t.done, 3000));
    ASSERT(uvtest_run_until(&t.loop, &t.closed, 3000));
    ASSERT_EQ(uvtest_wait_end(&t.loop, t.app_fd, NULL, 3000), -ECONNRESET);
    ASSERT_EQ(uvtest_wait_end(&t.loop, remote, NULL, 3000), -ECONNRESET);
    close(remote);
    close(t.app_fd);
    close(l);
    ASSERT(uvtest_run_until(&t.loop, &t.closed, 3000));
    uvtest_loop_finish(&t.loop);
    return 0;
}

TEST_IMPL(direct_outbound_errors)
{
    struct dtest t;
    dtest_start(&t);
    /* Nothing listens: refused, and the connection is gone (c NULL). */
    ASSERT_EQ(dtest_connect(&t, uvtest_closed_port()), UV_ECONNREFUSED);
    ASSERT(t.conn == NULL);
    /* The direct outbound takes addresses, not names. */
    struct v2s_addr dst;
    ASSERT(v2s_addr_parse(&dst, "127.0.0.1") == 0);
    struct outbound_conn *c = NULL;
    ASSERT_EQ(outbound_connect(t.direct, "localhost", &dst, 80, 1000, dtest_connected, &t, &c), UV_EINVAL);
    /* A connection cancelled while connecting: its callback never runs, its handles close. */
    uint16_t port;
    int l = uvtest_listen(&port);
    t.answered = 0;
    ASSERT_EQ(outbound_connect(t.direct, NULL, &dst, port, 1000, dtest_connected, &t, &c), 0);
    outbound_cancel(c);
    for (int i = 0; i < 50; i++)
        uvtest_run_until(&t.loop, &t.answered, 1);
    ASSERT_EQ(t.answered, 0);
    ASSERT_EQ(uvtest_handles(&t.loop), 0);
    /* Closing the outbound fails a pending connect with UV_ECANCELED. */
    ASSERT_EQ(outbound_connect(t.direct, NULL, &dst, port, 1000, dtest_connected, &t, &c), 0);
    outbound_close(t.direct, dtest_closed, &t);
    ASSERT_EQ(t.answered, 1);
    ASSERT_EQ(t.status, UV_ECANCELED);
    ASSERT(t.conn == NULL);
    close(l);
    ASSERT(uvtest_run_until(&t.loop, &t.closed, 3000));
    uvtest_loop_finish(&t.loop);
    return 0;
}

/* A relay's label taken apart for the JSON log's fields, for each shape outbound_label and the
 * BIND relay write; another shape gives no fields (the message still has it all). */
TEST_IMPL(outbound_label_fields)
{
    static const struct {
        const char *name, *dst;
        uint16_t port;
        const char *via, *fields;
    } rows[] = {
        {NULL, "10.0.0.2", 80, "tunnel", "client=127.0.0.1:5000 destination=10.0.0.2:80 via=tunnel"},
        {"web.lab.test", "10.0.0.2", 80, "tunnel",
         "client=127.0.0.1:5000 destination=web.lab.test:80 address=10.0.0.2:80 via=tunnel"},
        {"fd00::2", "fd00::2", 443, "direct", "client=127.0.0.1:5000 destination=[fd00::2]:443 via=direct"},
        {"odd [name] -> (x)", "fd00::2", 22, "forward 127.0.0.1:2222",
         "client=127.0.0.1:5000 destination=odd [name] -> (x):22 address=[fd00::2]:22 via=forward 127.0.0.1:2222"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        char label[OUTBOUND_LABEL_MAX], got[512] = "";
        struct v2s_addr dst;
        struct outbound_label_parts parts;
        struct v2s_log_field f[4];
        ASSERT_ROW(v2s_addr_parse(&dst, rows[i].dst) == 0, "%zu", i);
        outbound_label(label, sizeof(label), "127.0.0.1:5000", rows[i].name, &dst, rows[i].port, rows[i].via);
        size_t n = outbound_label_fields(label, &parts, f);
        for (size_t j = 0; j < n; j++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s=%s", j ? " " : "", f[j].key, f[j].text);
        ASSERT_ROW(strcmp(got, rows[i].fields) == 0, "%zu: %s", i, got);
    }
    struct outbound_label_parts parts;
    struct v2s_log_field f[4];
    ASSERT_EQ(outbound_label_fields("[::1]:6000 <- 10.0.0.9:4444 (BIND, tunnel)", &parts, f), 3);
    ASSERT_STR_EQ(f[0].text, "[::1]:6000");
    ASSERT_STR_EQ(f[1].text, "10.0.0.9:4444");
    ASSERT_STR_EQ(f[2].text, "BIND, tunnel");
    ASSERT_EQ(outbound_label_fields("xfer 3", &parts, f), 0);
    ASSERT_EQ(outbound_label_fields("a -> b", &parts, f), 0);
    ASSERT_EQ(outbound_label_fields("a -> (via)", &parts, f), 0);
    return 0;
}
