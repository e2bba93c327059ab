/* SOCKS5 UDP ASSOCIATE: the datagram header parser (socks/socks5.c) on a table of inputs, and the
 * relay (socks/udp_relay.c behind socks/server.c) on a real loop with the direct outbound and a
 * loopback UDP echo: a datagram goes out and its answer comes back wrapped with the echo's
 * address; a datagram from another port of the client's host, a fragment and a malformed header
 * are dropped and counted; the association ends with its TCP connection and after the idle
 * timeout; the cap refuses one association too many; on a dual-stack listener an IPv4 client is
 * told an IPv4 address; an IPv4 host named ::ffff:a.b.c.d is reached as IPv4 over a path without
 * IPv6 and its answers named as the client named it. No root, no tunnel. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "base/log.h"
#include "route/dial.h"
#include "route/direct.h"
#include "route/outbound.h"
#include "route/router.h"
#include "socks/server.h"
#include "socks/socks5.h"
#include "test.h"
#include "uvtest.h"

TEST_IMPL(socks5_udp_header)
{
    static const struct {
        const char *what;
        uint8_t in[40];
        size_t n;
        int rc;
        uint8_t atyp;
        const char *addr; /* or the name, for DOMAIN */
        uint16_t port;
        size_t len;
    } rows[] = {
        {"ipv4", {0, 0, 0, 1, 10, 1, 2, 3, 0, 53, 'x'}, 11, 0, 1, "10.1.2.3", 53, 10},
        {"ipv4 empty payload", {0, 0, 0, 1, 10, 1, 2, 3, 0, 53}, 10, 0, 1, "10.1.2.3", 53, 10},
        {"ipv6", {0, 0, 0, 4, 0xfd, 0, [19] = 1, 0x1f, 0x90}, 22, 0, 4, "fd00::1", 8080, 22},
        {"name", {0, 0, 0, 3, 3, 'w', 'e', 'b', 1, 0xbb, 'p'}, 11, 0, 3, "web", 443, 10},
        {"fragment", {0, 0, 1, 1, 10, 1, 2, 3, 0, 53, 'x'}, 11, -ENOTSUP, 1, "10.1.2.3", 53, 10},
        {"truncated ipv4", {0, 0, 0, 1, 10, 1, 2, 3, 0}, 9, -EINVAL, 0, NULL, 0, 0},
        {"truncated ipv6", {0, 0, 0, 4, 0xfd, 0}, 21, -EINVAL, 0, NULL, 0, 0},
        {"truncated name", {0, 0, 0, 3, 5, 'w', 'e', 'b', 0, 1}, 10, -EINVAL, 0, NULL, 0, 0},
        {"no header", {0, 0, 0}, 3, -EINVAL, 0, NULL, 0, 0},
        {"empty name", {0, 0, 0, 3, 0, 0, 53}, 7, -EINVAL, 0, NULL, 0, 0},
        {"NUL in name", {0, 0, 0, 3, 2, 'a', 0, 0, 53}, 9, -EINVAL, 0, NULL, 0, 0},
        {"unknown atyp", {0, 0, 0, 2, 10, 1, 2, 3, 0, 53}, 10, -EINVAL, 0, NULL, 0, 0},
        {"RSV not 0", {0, 1, 0, 1, 10, 1, 2, 3, 0, 53}, 10, -EINVAL, 0, NULL, 0, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct socks5_udp_header h;
        int rc = socks5_udp_parse(&h, rows[i].in, rows[i].n);
        ASSERT_ROW(rc == rows[i].rc, "%s: rc %d", rows[i].what, rc);
        if (rows[i].addr == NULL)
            continue;
        ASSERT_ROW(h.atyp == rows[i].atyp && h.port == rows[i].port && h.len == rows[i].len, "%s", rows[i].what);
        if (h.atyp == SOCKS5_ATYP_DOMAIN) {
            ASSERT_ROW(strcmp(h.name, rows[i].addr) == 0, "%s", rows[i].what);
        } else {
            struct v2s_addr want;
            ASSERT_EQ(v2s_addr_parse(&want, rows[i].addr), 0);
            ASSERT_ROW(v2s_addr_equal(&h.addr, &want), "%s", rows[i].what);
        }
    }
    /* The answer's header, both families. */
    uint8_t out[SOCKS5_UDP_HEADER_MAX];
    struct v2s_addr a;
    ASSERT_EQ(v2s_addr_parse(&a, "192.0.2.7"), 0);
    ASSERT_EQ(socks5_udp_build_header(out, &a, 5353), 10);
    ASSERT_MEM_EQ(out, "\0\0\0\x01\xc0\x00\x02\x07\x14\xe9", 10);
    ASSERT_EQ(v2s_addr_parse(&a, "2001:db8::9"), 0);
    ASSERT_EQ(socks5_udp_build_header(out, &a, 53), 22);
    ASSERT_MEM_EQ(out, "\0\0\0\x04\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x09\0\x35", 22);
    return 0;
}

/* --- the relay, on a loop --- */

struct sutest {
    uv_loop_t loop;
    struct outbound *direct;
    struct outbound *dialer; /* NULL, or the routed outbound the server was given */
    struct router router;
    struct socks_server *srv;
    uint16_t port;
    int server_closed, outbound_closed;
    int echo;            /* a UDP echo on 127.0.0.1 */
    uint16_t echo_port;
    unsigned echoed;
};

static void sutest_flag(void *arg)
{
    *(int *)arg = 1;
}

static int sutest_udp(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    ASSERT(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t sl = sizeof(sin);
    ASSERT_EQ(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

/* A server listening on listen (NULL: 127.0.0.1), port 0, given out (NULL: the direct outbound),
 * which the caller made on t->loop after sutest_init(). */
static void sutest_serve(struct sutest *t, unsigned idle_ms, unsigned max, const struct sockaddr *listen,
                         struct outbound *out)
{
    struct socks_server_config cfg = {
        .loop = &t->loop,
        .out = out ? out : t->direct,
        .connect_timeout_ms = 3000,
        .handshake_timeout_ms = 3000,
        .udp_idle_timeout_ms = idle_ms,
        .udp_max_assocs = max,
    };
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(socks_server_new(&t->srv, &cfg, listen ? listen : (const struct sockaddr *)&sin), 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    struct v2s_addr a;
    ASSERT_EQ(socks_server_local(t->srv, (struct sockaddr *)&ss, &len), 0);
    ASSERT_EQ(v2s_addr_from_sockaddr((const struct sockaddr *)&ss, &a, &t->port), 0);
    t->echo = sutest_udp(&t->echo_port);
}

static void sutest_init(struct sutest *t)
{
    memset(t, 0, sizeof(*t));
    v2s_log_level = V2S_LOG_INFO;
    ASSERT_EQ(uv_loop_init(&t->loop), 0);
    ASSERT_EQ(direct_new(&t->direct, &t->loop), 0);
    router_init(&t->router);
}

static void sutest_start_at(struct sutest *t, unsigned idle_ms, unsigned max, const struct sockaddr *listen)
{
    sutest_init(t);
    sutest_serve(t, idle_ms, max, listen, NULL);
}

static void sutest_start(struct sutest *t, unsigned idle_ms, unsigned max)
{
    sutest_start_at(t, idle_ms, max, NULL);
}

static void sutest_finish(struct sutest *t)
{
    socks_server_close(t->srv, sutest_flag, &t->server_closed);
    ASSERT(uvtest_run_until(&t->loop, &t->server_closed, 2000));
    if (t->dialer) {
        outbound_close(t->dialer, sutest_flag, &t->outbound_closed);
        ASSERT(uvtest_run_until(&t->loop, &t->outbound_closed, 2000));
        t->outbound_closed = 0;
    }
    outbound_close(t->direct, sutest_flag, &t->outbound_closed);
    ASSERT(uvtest_run_until(&t->loop, &t->outbound_closed, 2000));
    router_free(&t->router);
    uvtest_loop_finish(&t->loop);
    close(t->echo);
}

/* UDP ASSOCIATE (client port as given) on a new TCP connection; returns its fd, the reply code in
 * *rep and the relay's port in *relay. */
static int sutest_associate(struct sutest *t, uint16_t client_port, uint8_t *rep, uint16_t *relay)
{
    int fd = uvtest_connect(t->port);
    uint8_t req[] = {5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, (uint8_t)(client_port >> 8), (uint8_t)client_port};
    uvtest_send(&t->loop, fd, req, sizeof(req));
    uint8_t m[2], r[10];
    int end;
    ASSERT_EQ(uvtest_recv(&t->loop, fd, m, 2, &end, 3000), 2);
    ASSERT_EQ(uvtest_recv(&t->loop, fd, r, 10, &end, 3000), 10);
    *rep = r[1];
    if (r[1] == 0) {
        ASSERT_EQ(r[3], 1);
        ASSERT_MEM_EQ(r + 4, "\x7f\0\0\x01", 4); /* the address the client reached the listener at */
    }
    *relay = (uint16_t)(r[8] << 8 | r[9]);
    return fd;
}

/* Runs the loop for up to ms, echoing what the echo socket gets, until fd has a datagram: its
 * length, or -1 (nothing came) or a negative errno from recv(). */
static ssize_t sutest_pump(struct sutest *t, int fd, uint8_t *buf, size_t cap, unsigned ms)
{
    uint64_t until = uv_now(&t->loop) + ms;
    for (;;) {
        uint8_t e[2048];
        struct sockaddr_storage from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(t->echo, e, sizeof(e), 0, (struct sockaddr *)&from, &fl);
        if (n >= 0) {
            t->echoed++;
            ASSERT_EQ(sendto(t->echo, e, (size_t)n, 0, (struct sockaddr *)&from, fl), n);
        }
        n = recv(fd, buf, cap, 0);
        if (n >= 0)
            return n;
        if (errno != EAGAIN)
            return -errno;
        uv_run(&t->loop, UV_RUN_NOWAIT);
        uv_update_time(&t->loop);
        if (uv_now(&t->loop) >= until)
            return -1;
        usleep(1000);
    }
}

/* A client UDP socket connected to the relay, so that a closed relay shows as ECONNREFUSED. */
static int sutest_client(uint16_t relay, uint16_t *port)
{
    int fd = sutest_udp(port);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(relay)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
    return fd;
}

/* Sends payload to the echo through the relay, with FRAG frag. */
static void sutest_send(struct sutest *t, int fd, uint8_t frag, const char *payload)
{
    uint8_t d[256] = {0, 0, frag, 1, 127, 0, 0, 1, (uint8_t)(t->echo_port >> 8), (uint8_t)t->echo_port};
    size_t n = strlen(payload);
    memcpy(d + 10, payload, n);
    ASSERT_EQ(send(fd, d, 10 + n, 0), (ssize_t)(10 + n));
}

TEST_IMPL(socks_udp_associate)
{
    static struct sutest t;
    sutest_start(&t, 10000, 4);
    uint8_t rep, buf[512];
    uint16_t relay, cport, oport;
    int tcp = sutest_associate(&t, 0, &rep, &relay);
    ASSERT_EQ(rep, 0);
    ASSERT(relay != 0 && relay != t.port);
    int c = sutest_client(relay, &cport);
    int other = sutest_client(relay, &oport);

    uvtest_log_begin();
    /* The first datagram names the client's port; the answer comes back behind a header that
     * names the echo as its source. */
    sutest_send(&t, c, 0, "ping");
    ssize_t n = sutest_pump(&t, c, buf, sizeof(buf), 3000);
    ASSERT_EQ(n, 14);
    uint8_t want[10] = {0, 0, 0, 1, 127, 0, 0, 1, (uint8_t)(t.echo_port >> 8), (uint8_t)t.echo_port};
    ASSERT_MEM_EQ(buf, want, 10);
    ASSERT_MEM_EQ(buf + 10, "ping", 4);
    ASSERT_EQ(t.echoed, 1);

    /* Another port of the same host, a fragment and a malformed header: none reaches the echo. */
    sutest_send(&t, other, 0, "evil");
    sutest_send(&t, c, 1, "frag");
    ASSERT_EQ(send(c, "\0\0\0\x09xyz", 7, 0), 7);
    ASSERT_EQ(sutest_pump(&t, other, buf, sizeof(buf), 300), -1);
    ASSERT_EQ(sutest_pump(&t, c, buf, sizeof(buf), 10), -1);
    ASSERT_EQ(t.echoed, 1);

    /* The TCP connection ends: so does the association, and its socket is gone. */
    close(tcp);
    int gone = 0;
    for (int i = 0; i < 300 && !gone; i++) {
        sutest_send(&t, c, 0, "late");
        gone = sutest_pump(&t, c, buf, sizeof(buf), 10) == -ECONNREFUSED;
    }
    const char *log = uvtest_log_end();
    ASSERT(gone);
    ASSERT_EQ(t.echoed, 1);
    ASSERT(strstr(log, "not the client of this association") != NULL);
    ASSERT(strstr(log, "closed (1 datagrams up, 1 down; dropped: 1 fragments, 1 malformed, 1 from others, "
                       "0 unsent)") != NULL);
    close(c);
    close(other);
    sutest_finish(&t);
    return 0;
}

/* The port named in the request is the only one taken, even for the first datagram. */
TEST_IMPL(socks_udp_associate_named_port)
{
    static struct sutest t;
    sutest_start(&t, 10000, 4);
    uint8_t rep, buf[512];
    uint16_t relay, cport, oport;
    /* The relay's port is not known before the request, so the client socket is made first and
     * connected after. */
    int c = sutest_udp(&cport);
    int tcp = sutest_associate(&t, cport, &rep, &relay);
    ASSERT_EQ(rep, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(relay)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(c, (struct sockaddr *)&to, sizeof(to)), 0);
    int other = sutest_client(relay, &oport);
    sutest_send(&t, other, 0, "first but not named");
    ASSERT_EQ(sutest_pump(&t, other, buf, sizeof(buf), 200), -1);
    ASSERT_EQ(t.echoed, 0);
    sutest_send(&t, c, 0, "named");
    ASSERT_EQ(sutest_pump(&t, c, buf, sizeof(buf), 3000), 15);
    ASSERT_MEM_EQ(buf + 10, "named", 5);
    close(tcp);
    close(c);
    close(other);
    sutest_finish(&t);
    return 0;
}

/* The idle timeout ends the association and its TCP connection; past the cap, a request is
 * refused with "general failure". */
TEST_IMPL(socks_udp_idle_and_cap)
{
    static struct sutest t;
    sutest_start(&t, 300, 1);
    uint8_t rep;
    uint16_t relay, relay2;
    int tcp = sutest_associate(&t, 0, &rep, &relay);
    ASSERT_EQ(rep, 0);
    int tcp2 = sutest_associate(&t, 0, &rep, &relay2);
    ASSERT_EQ(rep, 1);
    ASSERT_EQ(uvtest_wait_end(&t.loop, tcp2, NULL, 2000), 1);
    close(tcp2);
    uvtest_log_begin();
    ASSERT_EQ(uvtest_wait_end(&t.loop, tcp, NULL, 3000), 1);
    const char *log = uvtest_log_end();
    ASSERT(strstr(log, "idle for 300 ms") != NULL);
    close(tcp);
    /* The place is free again. */
    tcp = sutest_associate(&t, 0, &rep, &relay);
    ASSERT_EQ(rep, 0);
    close(tcp);
    sutest_finish(&t);
    return 0;
}

/* A dual-stack listener ([::]) reached over IPv4: the relay is on ::ffff:127.0.0.1, and the reply
 * names it 127.0.0.1 (sutest_associate() checks), which an IPv4 client can send to. */
TEST_IMPL(socks_udp_dual_stack_listener)
{
    static struct sutest t;
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    if (probe < 0) {
        fprintf(stderr, "no IPv6 here: nothing to check\n");
        return 0;
    }
    close(probe);
    struct sockaddr_in6 any = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
    sutest_start_at(&t, 10000, 4, (const struct sockaddr *)&any);
    uint8_t rep, buf[512];
    uint16_t relay, cport;
    int tcp = sutest_associate(&t, 0, &rep, &relay);
    ASSERT_EQ(rep, 0);
    int c = sutest_client(relay, &cport);
    sutest_send(&t, c, 0, "v4 client");
    ASSERT_EQ(sutest_pump(&t, c, buf, sizeof(buf), 3000), 19);
    ASSERT_MEM_EQ(buf + 10, "v4 client", 9);
    close(tcp);
    close(c);
    sutest_finish(&t);
    return 0;
}

/* --- an IPv4 host named ::ffff:a.b.c.d --- */

/* The direct outbound made into a path that carries IPv4 only, as the tunnel's does when the VPN
 * gave no IPv6 address: it says so, and refuses an IPv6 destination as the stack does. */
static const struct outbound_ops *sutest_direct_ops;
static struct outbound_ops sutest_v4_ops;

static int sutest_v4_can_reach(const struct outbound *ob, int family)
{
    (void)ob;
    return family == AF_INET;
}

static int sutest_v4_udp_send(struct outbound_udp *u, const char *name, const struct v2s_addr *dst, uint16_t port,
                              const uint8_t *data, size_t len)
{
    if (!name && dst->family != AF_INET)
        return UV_EAFNOSUPPORT;
    return sutest_direct_ops->udp_send(u, name, dst, port, data, len);
}

/* Sends payload through the relay to the echo, named 127.0.0.1 (ATYP 1) or ::ffff:127.0.0.1
 * (ATYP 4), and checks its answer: back intact, and its source named as mapped says. */
static void sutest_echo_named(struct sutest *t, int fd, int mapped, const char *payload)
{
    uint8_t head[22] = {0, 0, 0, 1, 127, 0, 0, 1};
    size_t hl = 10;
    if (mapped) {
        static const uint8_t v6[16] = {[10] = 0xff, 0xff, 127, 0, 0, 1};
        head[3] = 4;
        memcpy(head + 4, v6, 16);
        hl = 22;
    }
    head[hl - 2] = (uint8_t)(t->echo_port >> 8);
    head[hl - 1] = (uint8_t)t->echo_port;
    uint8_t d[256], buf[256];
    size_t n = strlen(payload);
    memcpy(d, head, hl);
    memcpy(d + hl, payload, n);
    ASSERT_EQ(send(fd, d, hl + n, 0), (ssize_t)(hl + n));
    ASSERT_EQ(sutest_pump(t, fd, buf, sizeof(buf), 3000), (ssize_t)(hl + n));
    ASSERT_MEM_EQ(buf, head, hl);
    ASSERT_MEM_EQ(buf + hl, payload, n);
}

/* A client on a dual-stack socket names an IPv4 host ::ffff:a.b.c.d (ATYP 4). Over a path that
 * carries IPv4 only, behind the routed outbound (as the SOCKS listener is given) and on its own,
 * the datagram reaches the IPv4 host, and the answer's header names it ::ffff:a.b.c.d, the
 * form the client sent to (PySocks drops an answer from "a.b.c.d" on a socket connected to
 * "::ffff:a.b.c.d"); a host named a.b.c.d is answered as a.b.c.d in the same association, and
 * the form follows how the client last named it. Failed before the fix: behind the routed
 * outbound the answer came back named 127.0.0.1 (ATYP 1), and on the path alone the datagram was
 * dropped (unsent, no such family). */
TEST_IMPL(socks_udp_mapped_v4)
{
    static struct sutest t;
    for (int routed = 0; routed < 2; routed++) {
        sutest_init(&t);
        sutest_direct_ops = t.direct->ops;
        sutest_v4_ops = *t.direct->ops;
        sutest_v4_ops.can_reach = sutest_v4_can_reach;
        sutest_v4_ops.udp_send = sutest_v4_udp_send;
        t.direct->ops = &sutest_v4_ops;
        if (routed) {
            struct v2s_cidr c;
            ASSERT_EQ(v2s_cidr_parse(&c, "127.0.0.0/8", 0), 0);
            ASSERT_EQ(router_add_user(&t.router, &c, ROUTER_DIRECT), 0);
            t.router.others = ROUTER_OTHERS_REJECT;
            t.router.allow_direct_local = 1;
            struct dial_config dcfg = {.loop = &t.loop, .router = &t.router};
            dcfg.via[ROUTER_DIRECT] = t.direct;
            ASSERT_EQ(dial_new(&t.dialer, &dcfg), 0);
        }
        sutest_serve(&t, 10000, 4, NULL, t.dialer);
        uint8_t rep;
        uint16_t relay, cport;
        int tcp = sutest_associate(&t, 0, &rep, &relay);
        ASSERT_EQ(rep, 0);
        int c = sutest_client(relay, &cport);
        sutest_echo_named(&t, c, 1, "mapped");
        sutest_echo_named(&t, c, 0, "plain");
        sutest_echo_named(&t, c, 1, "mapped again");
        ASSERT_EQ(t.echoed, 3);
        close(tcp);
        close(c);
        sutest_finish(&t);
    }
    return 0;
}

/* With --allow-direct-local, a client of the relay that names the relay's own socket (127.0.0.1
 * and 0.0.0.0, its port) as the destination is refused (UV_ELOOP) with one line for the
 * association, and the association goes on: the echo is still reached. Failed before the fix: the
 * datagrams went out of the direct association and came back in to the relay, where they were
 * dropped as "not the client of this association" (and a relay whose client is not port-locked
 * would have taken them as the client's and sent them again). */
TEST_IMPL(socks_udp_own_relay)
{
    static struct sutest t;
    sutest_init(&t);
    struct v2s_cidr c;
    ASSERT_EQ(v2s_cidr_parse(&c, "0.0.0.0/1", 0), 0);
    ASSERT_EQ(router_add_user(&t.router, &c, ROUTER_DIRECT), 0);
    t.router.allow_direct_local = 1;
    struct dial_config dcfg = {.loop = &t.loop, .router = &t.router};
    dcfg.via[ROUTER_DIRECT] = t.direct;
    ASSERT_EQ(dial_new(&t.dialer, &dcfg), 0);
    sutest_serve(&t, 10000, 4, NULL, t.dialer);
    uint8_t rep, buf[512];
    uint16_t relay, cport;
    int tcp = sutest_associate(&t, 0, &rep, &relay);
    ASSERT_EQ(rep, 0);
    int fd = sutest_client(relay, &cport);

    uvtest_log_begin();
    sutest_send(&t, fd, 0, "ping"); /* locks the client's port */
    ASSERT_EQ(sutest_pump(&t, fd, buf, sizeof(buf), 3000), 14);
    static const uint8_t to[][4] = {{127, 0, 0, 1}, {127, 0, 0, 1}, {0, 0, 0, 0}};
    for (size_t i = 0; i < sizeof(to) / sizeof(to[0]); i++) {
        uint8_t d[16] = {0, 0, 0, 1, to[i][0], to[i][1], to[i][2], to[i][3], (uint8_t)(relay >> 8), (uint8_t)relay,
                         'l', 'o', 'o', 'p'};
        ASSERT_EQ(send(fd, d, 14, 0), 14);
    }
    ASSERT_EQ(sutest_pump(&t, fd, buf, sizeof(buf), 300), -1);
    sutest_send(&t, fd, 0, "still");
    ASSERT_EQ(sutest_pump(&t, fd, buf, sizeof(buf), 3000), 15);
    close(tcp);
    for (int i = 0; i < 300 && sutest_pump(&t, fd, buf, sizeof(buf), 10) != -ECONNREFUSED; i++)
        sutest_send(&t, fd, 0, "late");
    const char *log = uvtest_log_end();
    ASSERT_EQ(t.echoed, 2);
    char line[128];
    snprintf(line, sizeof(line), "dial: UDP to 127.0.0.1:%u: one of this vpn2socks's own listeners: refused, it would loop",
             relay);
    ASSERT(strstr(log, line) != NULL);
    ASSERT(strstr(strstr(log, line) + 1, line) == NULL); /* once per destination */
    snprintf(line, sizeof(line), "dial: UDP to 0.0.0.0:%u: one of this vpn2socks's own listeners", relay);
    ASSERT(strstr(log, line) != NULL);
    ASSERT(strstr(log, "not the client of this association") == NULL);
    ASSERT(strstr(log, "closed (2 datagrams up, 2 down; dropped: 0 fragments, 0 malformed, 0 from others, 3 unsent)") !=
           NULL);
    close(fd);
    sutest_finish(&t);
    return 0;
}
