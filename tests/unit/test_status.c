/* --status: the Prometheus writer (app/metrics.c) and the endpoint (app/status.c) on a real loop. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>
#include <uv.h>

#include "app/metrics.h"
#include "app/status.h"
#include "base/log.h"
#include "tunnel/fd.h"
#include "tunnel/settings.h"
#include "test.h"
#include "uvtest.h"

/* A table of samples in, the exact text out: HELP and TYPE once per family, labels in order,
 * label values escaped. */
TEST_IMPL(metrics_prometheus_text)
{
    static const struct metric_family up = {"vpn2socks_tunnel_up", "gauge", "Whether the tunnel is up."};
    static const struct metric_family bytes = {"vpn2socks_tunnel_bytes_total", "counter", "Bytes, by\ndirection \\ x."};
    static const struct metric_family conns = {"vpn2socks_connections_total", "counter", "Connections."};
    struct metric_label in = {"direction", "in"}, out = {"direction", "out"};
    struct metric_label odd[2] = {{"listener", "a\"b\\c\nd"}, {"verdict", "tunnel"}};
    char buf[1024];
    struct metrics_text t = {.buf = buf, .cap = sizeof(buf)};
    struct {
        struct metrics_text *t;
        const struct metric_family *last;
    } ctx = {&t, NULL};
    metrics_prometheus_emit(&ctx, &up, NULL, 0, 1);
    metrics_prometheus_emit(&ctx, &bytes, &in, 1, 18446744073709551615ULL);
    metrics_prometheus_emit(&ctx, &bytes, &out, 1, 0);
    metrics_prometheus_emit(&ctx, &conns, odd, 2, 7);
    ASSERT_STR_EQ(buf, "# HELP vpn2socks_tunnel_up Whether the tunnel is up.\n"
                       "# TYPE vpn2socks_tunnel_up gauge\n"
                       "vpn2socks_tunnel_up 1\n"
                       "# HELP vpn2socks_tunnel_bytes_total Bytes, by\\ndirection \\\\ x.\n"
                       "# TYPE vpn2socks_tunnel_bytes_total counter\n"
                       "vpn2socks_tunnel_bytes_total{direction=\"in\"} 18446744073709551615\n"
                       "vpn2socks_tunnel_bytes_total{direction=\"out\"} 0\n"
                       "# HELP vpn2socks_connections_total Connections.\n"
                       "# TYPE vpn2socks_connections_total counter\n"
                       "vpn2socks_connections_total{listener=\"a\\\"b\\\\c\\nd\",verdict=\"tunnel\"} 7\n");
    ASSERT_EQ(t.overflow, 0);
    ASSERT_EQ(t.len, strlen(buf));

    /* Too small a buffer: cut, NUL-terminated, and said so. */
    char small[40];
    struct metrics_text s = {.buf = small, .cap = sizeof(small)};
    ctx.t = &s;
    ctx.last = NULL;
    metrics_prometheus_emit(&ctx, &up, NULL, 0, 1);
    ASSERT_EQ(s.overflow, 1);
    ASSERT_EQ(strlen(small), sizeof(small) - 1);
    return 0;
}

/* Every module's figures: the names and labels /metrics shows, and the SIGUSR1 log lines carry
 * the same samples. */
TEST_IMPL(metrics_every_family)
{
    struct metrics m;
    memset(&m, 0, sizeof(m));
    m.has_tunnel = 1;
    m.tunnel.state = TUNNEL_STATE_RECONNECTING;
    m.tunnel.bytes_in = 1000;
    m.tunnel.bytes_out = 2000;
    m.tunnel.packets_in = 10;
    m.tunnel.packets_out = 20;
    m.tunnel.packets_refused = 11;
    m.tunnel.reconnects[TUNNEL_RECONNECT_SESSION] = 3;
    m.tunnel.renegotiations = 4;
    m.has_stack = 1;
    m.stack.dns_queries = 5;
    m.stack.dns_cache_hits = 2;
    m.stack.dns_failures = 1;
    m.stack.dropped[STACK_DROP_CHECKSUM] = 6;
    m.stack.heap_bytes = 4096;
    m.listeners[0].name = "socks";
    m.listeners[0].dial.total[ROUTER_TUNNEL] = 8;
    m.listeners[0].dial.total[ROUTER_REJECT] = 9;
    m.listeners[0].dial.open = 2;
    m.n_listeners = 1;
    m.has_clients = 1;
    m.clients_open = 11;
    m.clients_max = 1000;
    m.clients_refused = 12;
    char buf[METRICS_TEXT_MAX];
    struct metrics_text t = {.buf = buf, .cap = sizeof(buf)};
    metrics_prometheus(&m, &t);
    ASSERT_EQ(t.overflow, 0);
    static const char *const lines[] = {
        "\nvpn2socks_tunnel_up 0\n",
        "\nvpn2socks_tunnel_state{state=\"reconnecting\"} 1\n",
        "\nvpn2socks_tunnel_state{state=\"up\"} 0\n",
        "\nvpn2socks_tunnel_bytes_total{direction=\"in\"} 1000\n",
        "\nvpn2socks_tunnel_bytes_total{direction=\"out\"} 2000\n",
        "\nvpn2socks_tunnel_packets_total{direction=\"out\"} 20\n",
        "\nvpn2socks_tunnel_packets_refused_total 11\n",
        "\nvpn2socks_tunnel_reconnects_total{reason=\"session\"} 3\n",
        "\nvpn2socks_tunnel_reconnects_total{reason=\"connect\"} 0\n",
        "\nvpn2socks_tunnel_renegotiations_total 4\n",
        "\nvpn2socks_connections_open{listener=\"socks\"} 2\n",
        "\nvpn2socks_connections_total{listener=\"socks\",verdict=\"tunnel\"} 8\n",
        "\nvpn2socks_connections_total{listener=\"socks\",verdict=\"direct\"} 0\n",
        "\nvpn2socks_connections_total{listener=\"socks\",verdict=\"rejected\"} 9\n",
        "\nvpn2socks_clients_open 11\n",
        "\nvpn2socks_clients_max 1000\n",
        "\nvpn2socks_clients_refused_total 12\n",
        "\nvpn2socks_dns_queries_total 5\n",
        "\nvpn2socks_dns_cache_hits_total 2\n",
        "\nvpn2socks_dns_failures_total 1\n",
        "\nvpn2socks_stack_packets_dropped_total{reason=\"checksum\"} 6\n",
        "\nvpn2socks_stack_memory_bytes 4096\n",
        "\n# TYPE vpn2socks_tunnel_bytes_total counter\n",
        "\n# TYPE vpn2socks_connections_open gauge\n",
        "\n# TYPE vpn2socks_stack_memory_bytes gauge\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        if (!strstr(buf, lines[i]))
            TEST_FAIL_AT("missing %s", lines[i]);
    /* Counters end in _total, and nothing else does. */
    for (const char *p = buf; (p = strstr(p, "# TYPE ")) != NULL; p++) {
        char name[80], type[16];
        ASSERT(sscanf(p, "# TYPE %79s %15s", name, type) == 2);
        size_t n = strlen(name);
        int total = n > 6 && strcmp(name + n - 6, "_total") == 0;
        ASSERT_EQ(total, strcmp(type, "counter") == 0);
    }

    int level = v2s_log_level;
    v2s_log_level = V2S_LOG_INFO;
    uvtest_log_begin();
    metrics_log(&m);
    const char *log = uvtest_log_end();
    v2s_log_level = level;
    ASSERT(strstr(log, "metrics: vpn2socks_tunnel_bytes_total{direction=\"in\"} 1000, "
                       "vpn2socks_tunnel_bytes_total{direction=\"out\"} 2000\n"));
    ASSERT(strstr(log, "metrics: vpn2socks_dns_queries_total 5\n"));
    ASSERT(strstr(log, "vpn2socks_connections_total{listener=\"socks\",verdict=\"rejected\"} 9"));
    /* Every sample of /metrics is in the log, as written there. */
    for (const char *p = buf; *p; p = strchr(p, '\n') + 1) {
        const char *e = strchr(p, '\n');
        if (*p != '#') {
            char sample[200];
            ASSERT((size_t)(e - p) < sizeof(sample));
            memcpy(sample, p, (size_t)(e - p));
            sample[e - p] = '\0';
            if (!strstr(log, sample))
                TEST_FAIL_AT("not in the log: %s", sample);
        }
    }
    return 0;
}

struct status_fake {
    int ready;
    int scrapes;
};

static int fake_ready(void *arg, char *why, size_t cap)
{
    struct status_fake *f = arg;
    if (!f->ready)
        snprintf(why, cap, "tunnel reconnecting");
    return f->ready;
}

static void fake_metrics(void *arg, struct metrics_text *t)
{
    struct status_fake *f = arg;
    struct metrics m;
    memset(&m, 0, sizeof(m));
    m.has_tunnel = 1;
    m.tunnel.bytes_in = 12345;
    f->scrapes++;
    metrics_prometheus(&m, t);
}

/* Sends req, reads the whole answer until the server closes. */
static const char *status_get(uv_loop_t *loop, uint16_t port, const char *req, char *buf, size_t cap)
{
    int fd = uvtest_connect(port);
    uvtest_send(loop, fd, req, strlen(req));
    int end = 0;
    size_t n = uvtest_recv(loop, fd, (uint8_t *)buf, cap - 1, &end, 3000);
    ASSERT_EQ(end, 1);
    buf[n] = '\0';
    close(fd);
    return buf;
}

static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A status server on loopback, an ephemeral port, answering from f; returns its port. */
static int status_start(uv_loop_t *loop, struct status_fake *f, struct status_server **s)
{
    struct status_config cfg = {.loop = loop, .ready = fake_ready, .metrics = fake_metrics, .arg = f};
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    *s = NULL;
    ASSERT_EQ(status_server_new(s, &cfg, (const struct sockaddr *)&sin), 0);
    int port = status_server_port(*s);
    ASSERT(port > 0);
    return port;
}

TEST_IMPL(status_endpoint)
{
    uv_loop_t loop;
    ASSERT_EQ(uv_loop_init(&loop), 0);
    struct status_fake f = {0};
    struct status_server *s;
    int port = status_start(&loop, &f, &s);
    char buf[METRICS_TEXT_MAX + 512];
    const char *r;

    r = status_get(&loop, (uint16_t)port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof(buf));
    ASSERT(starts(r, "HTTP/1.1 200 OK\r\n"));
    ASSERT(strstr(r, "\r\nContent-Length: 3\r\n"));
    ASSERT(strstr(r, "\r\n\r\nok\n"));

    r = status_get(&loop, (uint16_t)port, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof(buf));
    ASSERT(starts(r, "HTTP/1.1 503 Service Unavailable\r\n"));
    ASSERT(strstr(r, "\r\n\r\ntunnel reconnecting\n"));
    f.ready = 1;
    r = status_get(&loop, (uint16_t)port, "GET /readyz?verbose HTTP/1.0\r\n\r\n", buf, sizeof(buf));
    ASSERT(starts(r, "HTTP/1.1 200 OK\r\n"));
    ASSERT(strstr(r, "\r\n\r\nready\n"));

    r = status_get(&loop, (uint16_t)port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof(buf));
    ASSERT(starts(r, "HTTP/1.1 200 OK\r\n"));
    ASSERT(strstr(r, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    ASSERT(strstr(r, "\nvpn2socks_tunnel_bytes_total{direction=\"in\"} 12345\n"));
    ASSERT_EQ(f.scrapes, 1);

    /* HEAD: the head alone, its length the GET's. */
    r = status_get(&loop, (uint16_t)port, "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof(buf));
    ASSERT(starts(r, "HTTP/1.1 200 OK\r\n"));
    ASSERT(strstr(r, "\r\nContent-Length: 3\r\n"));
    ASSERT(strcmp(strstr(r, "\r\n\r\n"), "\r\n\r\n") == 0);

    /* The absolute form, as a scraper configured with a proxy sends it (RFC 9112 3.2.2). */
    r = status_get(&loop, (uint16_t)port, "GET http://127.0.0.1:9100/healthz HTTP/1.1\r\nHost: x\r\n\r\n", buf,
                   sizeof(buf));
    ASSERT(starts(r, "HTTP/1.1 200 OK\r\n"));
    r = status_get(&loop, (uint16_t)port, "GET HTTP://host/metrics?x=1 HTTP/1.1\r\n\r\n", buf, sizeof(buf));
    ASSERT(starts(r, "HTTP/1.1 200 OK\r\n"));
    ASSERT_EQ(f.scrapes, 2);
    r = status_get(&loop, (uint16_t)port, "GET http://host HTTP/1.1\r\n\r\n", buf, sizeof(buf));
    ASSERT(starts(r, "HTTP/1.1 404 Not Found\r\n"));
    r = status_get(&loop, (uint16_t)port, "GET http://host/healthz/x HTTP/1.1\r\n\r\n", buf, sizeof(buf));
    ASSERT(starts(r, "HTTP/1.1 404 Not Found\r\n"));

    r = status_get(&loop, (uint16_t)port, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof(buf));
    ASSERT(starts(r, "HTTP/1.1 404 Not Found\r\n"));
    r = status_get(&loop, (uint16_t)port, "GET /healthzz HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof(buf));
    ASSERT(starts(r, "HTTP/1.1 404 Not Found\r\n"));
    r = status_get(&loop, (uint16_t)port, "POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n", buf, sizeof(buf));
    ASSERT(starts(r, "HTTP/1.1 405 Method Not Allowed\r\n"));
    ASSERT(strstr(r, "\r\nAllow: GET, HEAD\r\n") != NULL);
    r = status_get(&loop, (uint16_t)port, "this is not HTTP\r\n\r\n", buf, sizeof(buf));
    ASSERT(starts(r, "HTTP/1.1 400 Bad Request\r\n"));
    r = status_get(&loop, (uint16_t)port, "GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n", buf, sizeof(buf));
    ASSERT(starts(r, "HTTP/1.1 400 Bad Request\r\n"));

    /* A client that says nothing is closed, and the server still answers the next. */
    int idle = uvtest_connect((uint16_t)port);
    r = status_get(&loop, (uint16_t)port, "GET /healthz HTTP/1.1\r\n\r\n", buf, sizeof(buf));
    ASSERT(starts(r, "HTTP/1.1 200 OK\r\n"));

    status_server_close(s);
    close(idle);
    uvtest_loop_finish(&loop);
    return 0;
}

/* Idle clients up to the cap (a local process holding them, each for the request timeout) do not
 * keep a health check out: the oldest idle one makes room for the newcomer, which is answered.
 * On main the newcomer was closed unanswered for as long as the idle ones stayed. */
TEST_IMPL(status_idle_clients_make_room)
{
    uv_loop_t loop;
    ASSERT_EQ(uv_loop_init(&loop), 0);
    struct status_fake f = {.ready = 1};
    struct status_server *s;
    int port = status_start(&loop, &f, &s);
    char buf[1024];
    int idle[STATUS_MAX_CONNS + 2];
    for (size_t i = 0; i < ARRAY_SIZE(idle); i++)
        idle[i] = uvtest_connect((uint16_t)port);
    /* A slot with a request half sent counts as idle too; it is the newest, so it stays. */
    uvtest_send(&loop, idle[ARRAY_SIZE(idle) - 1], "GET /heal", 9);
    for (int round = 0; round < 3; round++) {
        const char *r = status_get(&loop, (uint16_t)port, "GET /healthz HTTP/1.1\r\n\r\n", buf, sizeof(buf));
        ASSERT(starts(r, "HTTP/1.1 200 OK\r\n"));
        ASSERT(strstr(r, "\r\n\r\nok\n"));
    }
    /* The three oldest idle ones went (two past the cap, then one for the first check, which
     * left a free slot behind it); the others are still there, and the newest may finish its
     * request. */
    for (size_t i = 0; i < 3; i++)
        ASSERT_ROW(uvtest_wait_end(&loop, idle[i], NULL, 1000) != 0, "%zu", i);
    for (size_t i = 3; i < ARRAY_SIZE(idle); i++)
        ASSERT_ROW(uvtest_wait_end(&loop, idle[i], NULL, 10) == 0, "%zu", i);
    int fd = idle[ARRAY_SIZE(idle) - 1];
    uvtest_send(&loop, fd, "thz HTTP/1.1\r\n\r\n", 17);
    int end = 0;
    size_t n = uvtest_recv(&loop, fd, (uint8_t *)buf, sizeof(buf) - 1, &end, 3000);
    buf[n] = '\0';
    ASSERT_EQ(end, 1);
    ASSERT(starts(buf, "HTTP/1.1 200 OK\r\n"));
    status_server_close(s);
    for (size_t i = 0; i < ARRAY_SIZE(idle); i++)
        close(idle[i]);
    uvtest_loop_finish(&loop);
    return 0;
}

/* Scrapers and probes that arrive together, more than the cap, each with its whole request sent
 * behind its connect: every one is answered. They come in one batch of accepts, before the loop
 * has read any of them, so the cap took the ones waiting to be read for idle clients and reset
 * them (60 curls at once against a running vpn2socks: 13 got no answer). */
TEST_IMPL(status_burst_all_answered)
{
    uv_loop_t loop;
    ASSERT_EQ(uv_loop_init(&loop), 0);
    struct status_fake f = {.ready = 1};
    struct status_server *s;
    int port = status_start(&loop, &f, &s);
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    int fds[3 * STATUS_MAX_CONNS];
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
        fds[i] = uvtest_connect((uint16_t)port);
        ASSERT_EQ(write(fds[i], req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
    }
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
        char buf[512];
        int end = 0;
        size_t n = uvtest_recv(&loop, fds[i], (uint8_t *)buf, sizeof(buf) - 1, &end, 3000);
        buf[n] = '\0';
        ASSERT_ROW(end == 1 && starts(buf, "HTTP/1.1 200 OK\r\n"), "client %zu of %zu: end %d, %zu bytes", i,
                   ARRAY_SIZE(fds), end, n);
        close(fds[i]);
    }
    status_server_close(s);
    uvtest_loop_finish(&loop);
    return 0;
}

struct fd_events {
    int ups, packets, downs;
};

static void fd_up(void *arg, const struct tunnel_settings *ts)
{
    (void)ts;
    ((struct fd_events *)arg)->ups++;
}

static void fd_packet(void *arg, const uint8_t *pkt, size_t len)
{
    (void)pkt;
    (void)len;
    ((struct fd_events *)arg)->packets++;
}

static void fd_down(void *arg, enum tunnel_down_reason reason, const char *why)
{
    (void)reason;
    (void)why;
    ((struct fd_events *)arg)->downs++;
}

static void fd_closed(struct tunnel *t)
{
    (void)t;
}

/* The packet fd's tunnel_stats: connecting until started, then up, IP packets and bytes each way,
 * down for good when the other end goes. */
TEST_IMPL(tunnel_fd_stats)
{
    uv_loop_t loop;
    ASSERT_EQ(uv_loop_init(&loop), 0);
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    struct fd_events fe = {0};
    struct tunnel_events ev = {.up = fd_up, .packet = fd_packet, .down = fd_down, .arg = &fe};
    struct tunnel_settings ts;
    tunnel_settings_init(&ts);
    ASSERT(v2s_addr_parse(&ts.addr4, "10.0.0.2") == 0);
    ts.prefix4 = 24;
    ts.mtu = 1400;
    struct tunnel *t = NULL;
    ASSERT_EQ(tunnel_fd_new(&t, &loop, sv[0], &ts, &ev), 0);
    tunnel_settings_free(&ts);
    struct tunnel_stats st;
    tunnel_get_stats(t, &st);
    ASSERT_EQ(st.state, TUNNEL_STATE_CONNECTING);
    ASSERT_EQ(tunnel_start(t), 0);
    ASSERT_EQ(fe.ups, 1);
    tunnel_get_stats(t, &st);
    ASSERT_EQ(st.state, TUNNEL_STATE_UP);

    static const uint8_t pkt[40] = {0x45, 0, 0, 40};
    ASSERT_EQ(tunnel_send(t, pkt, sizeof(pkt)), 0);
    ASSERT_EQ(tunnel_send(t, pkt, 20), 0);
    ASSERT_EQ(write(sv[1], pkt, 33), 33);
    ASSERT(uvtest_run_until(&loop, &fe.packets, 3000));
    tunnel_get_stats(t, &st);
    ASSERT_EQ(st.packets_out, 2);
    ASSERT_EQ(st.bytes_out, 60);
    ASSERT_EQ(st.packets_in, 1);
    ASSERT_EQ(st.bytes_in, 33);
    ASSERT_EQ(st.reconnects[TUNNEL_RECONNECT_SESSION], 0);

    close(sv[1]);
    ASSERT(uvtest_run_until(&loop, &fe.downs, 3000));
    tunnel_get_stats(t, &st);
    ASSERT_EQ(st.state, TUNNEL_STATE_DOWN);
    tunnel_close(t, fd_closed);
    uvtest_loop_finish(&loop);
    return 0;
}
