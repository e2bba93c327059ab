/* port/udp_forward.c, the -L/udp flow table, on a real libuv loop with real UDP clients on
 * 127.0.0.1 and a fake outbound (an ops table here) that records what each association sends and
 * plays the destination's answers: a flow per client, each client getting only its own answers
 * and only those from the destination; a 9000-byte datagram whole both ways; the idle timeout;
 * the cap on flows, with one line per burst; a destination the router rejects; no handle left.
 * Then -R/udp (a refused datagram answered with ICMP port unreachable), and -L/udp end to end,
 * through the real stack behind a fake tunnel. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "base/log.h"
#include "port/udp_forward.h"
#include "route/dial.h"
#include "route/direct.h"
#include "route/outbound.h"
#include "route/router.h"
#include "route/via_stack.h"
#include "harness_tun.h"
#include "stack/stack.h"
#include "test.h"
#include "tunnel/settings.h"
#include "uvtest.h"

enum { FAKE_MAX_ASSOCS = 8, FAKE_MAX_LEN = 9000 };

struct fake_assoc {
    struct outbound_udp base;
    outbound_udp_recv_cb recv;
    void *arg;
    int closed;
    int sends;
    /* the last datagram sent */
    const char *name;
    struct v2s_addr dst;
    uint16_t port;
    uint8_t data[FAKE_MAX_LEN];
    size_t len;
};

struct fake_ob {
    struct outbound base;
    struct fake_assoc assocs[FAKE_MAX_ASSOCS];
    int opened, closed;
    int send_rc; /* what udp_send answers: 0, or UV_EACCES as the router would */
};

static int fake_udp_open(struct outbound *ob, outbound_udp_recv_cb recv, void *arg, struct outbound_udp **out)
{
    struct fake_ob *f = (struct fake_ob *)ob;
    if (f->opened == FAKE_MAX_ASSOCS)
        return UV_ENOMEM;
    struct fake_assoc *a = &f->assocs[f->opened++];
    a->base.ob = ob;
    a->recv = recv;
    a->arg = arg;
    *out = &a->base;
    return 0;
}

static int fake_udp_send(struct outbound_udp *u, const char *name, const struct v2s_addr *dst, uint16_t port,
                         const uint8_t *data, size_t len)
{
    struct fake_assoc *a = (struct fake_assoc *)u;
    struct fake_ob *f = (struct fake_ob *)u->ob;
    ASSERT(!a->closed);
    if (f->send_rc < 0)
        return f->send_rc;
    ASSERT(len <= FAKE_MAX_LEN);
    a->sends++;
    a->name = name;
    a->dst = *dst;
    a->port = port;
    memcpy(a->data, data, len);
    a->len = len;
    return 0;
}

static void fake_udp_close(struct outbound_udp *u)
{
    struct fake_assoc *a = (struct fake_assoc *)u;
    ASSERT(!a->closed);
    a->closed = 1;
    ((struct fake_ob *)u->ob)->closed++;
}

static const struct outbound_ops fake_ops = {
    .udp_open = fake_udp_open,
    .udp_send = fake_udp_send,
    .udp_close = fake_udp_close,
};

/* The destination (or another host) answers on association a. */
static void fake_answer(struct fake_assoc *a, const char *from, uint16_t port, const void *data, size_t len)
{
    struct v2s_addr src;
    ASSERT_EQ(v2s_addr_parse(&src, from), 0);
    ASSERT(!a->closed);
    a->recv(a->arg, &src, port, data, len);
}

struct utest {
    uv_loop_t loop;
    struct fake_ob ob;
    struct port_udp *pu;
    uint16_t port; /* the forward's */
    int closed;
};

static void utest_closed(void *arg)
{
    ((struct utest *)arg)->closed++;
}

static void utest_closed_flag(void *arg)
{
    (*(int *)arg)++;
}

static void utest_start(struct utest *t, const char *host, uint16_t port, unsigned idle_ms, unsigned max_flows)
{
    memset(t, 0, sizeof(*t));
    ASSERT_EQ(uv_loop_init(&t->loop), 0);
    t->ob.base.ops = &fake_ops;
    t->ob.base.name = "fake";
    struct port_udp_config cfg = {
        .loop = &t->loop,
        .host = host,
        .port = port,
        .idle_timeout_ms = idle_ms,
        .max_flows = max_flows,
    };
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(port_udp_local_new(&t->pu, &cfg, &t->ob.base, (const struct sockaddr *)&sin), 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    ASSERT_EQ(port_udp_local(t->pu, (struct sockaddr *)&ss, &len), 0);
    t->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void utest_finish(struct utest *t)
{
    port_udp_close(t->pu, utest_closed, t);
    ASSERT(uvtest_run_until(&t->loop, &t->closed, 3000));
    ASSERT_EQ(t->ob.closed, t->ob.opened); /* every association closed */
    uvtest_loop_finish(&t->loop);
}

/* A client: a UDP socket on 127.0.0.1 connected to the forward (so it sees only the forward). */
static int utest_client(const struct utest *t)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    ASSERT(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(t->port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

static void utest_send(int fd, const void *data, size_t len)
{
    ASSERT_EQ(send(fd, data, len, 0), (ssize_t)len);
}

/* One datagram for fd within ms while the loop runs: its length, or -1 for none. */
static ssize_t utest_recv(struct utest *t, int fd, uint8_t *buf, size_t cap, unsigned ms)
{
    for (unsigned i = 0; i <= ms; i++) {
        ssize_t r = recv(fd, buf, cap, MSG_DONTWAIT);
        if (r >= 0)
            return r;
        ASSERT(errno == EAGAIN || errno == EWOULDBLOCK);
        uv_run(&t->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    return -1;
}

struct utest_wait {
    const int *counter;
    int want;
};

static int utest_reached(void *arg)
{
    struct utest_wait *w = arg;
    return *w->counter >= w->want;
}

/* Runs the loop until *counter reaches want (3 s at most). */
static void utest_wait_count(struct utest *t, const int *counter, int want)
{
    struct utest_wait w = {counter, want};
    ASSERT(uvtest_run_until_fn(&t->loop, utest_reached, &w, 3000));
}

/* Runs the loop until association a has sent want datagrams. */
static void utest_wait_sends(struct utest *t, struct fake_assoc *a, int want)
{
    utest_wait_count(t, &a->sends, want);
}

static size_t utest_count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* Two clients, two flows; each gets its own answers and only the destination's; 9000 bytes pass
 * whole both ways; closing the forward closes both flows with their counts. */
TEST_IMPL(port_udp_flows)
{
    struct utest t;
    uint8_t buf[FAKE_MAX_LEN + 100];
    int saved = v2s_log_level;
    v2s_log_level = V2S_LOG_INFO;
    uvtest_log_begin();
    utest_start(&t, "10.0.0.2", 53, 5000, 4);
    int a = utest_client(&t), b = utest_client(&t);

    utest_send(a, "from A", 6);
    utest_wait_count(&t, &t.ob.opened, 1);
    struct fake_assoc *fa = &t.ob.assocs[0], *fb = &t.ob.assocs[1];
    utest_wait_sends(&t, fa, 1);
    ASSERT(fa->name == NULL); /* an address goes as one */
    char dst[V2S_ADDR_STRLEN];
    ASSERT_STR_EQ(v2s_addr_format(&fa->dst, dst, sizeof(dst)), "10.0.0.2");
    ASSERT_EQ(fa->port, 53);
    ASSERT_EQ(fa->len, 6);
    ASSERT_MEM_EQ(fa->data, "from A", 6);

    utest_send(b, "from B", 6);
    utest_wait_count(&t, &t.ob.opened, 2);
    utest_wait_sends(&t, fb, 1);
    ASSERT_MEM_EQ(fb->data, "from B", 6);
    utest_send(a, "A again", 7);
    utest_wait_sends(&t, fa, 2); /* the same flow */
    ASSERT_MEM_EQ(fa->data, "A again", 7);
    ASSERT_EQ(t.ob.opened, 2);
    ASSERT_EQ(port_udp_flows(t.pu), 2);

    /* Answers: each to its own client; another host's, or another port's, to nobody. */
    fake_answer(fa, "10.0.0.9", 53, "spoofed", 7);
    fake_answer(fa, "10.0.0.2", 54, "other port", 10);
    fake_answer(fb, "10.0.0.2", 53, "to B", 4);
    fake_answer(fa, "10.0.0.2", 53, "to A", 4);
    ASSERT_EQ(utest_recv(&t, a, buf, sizeof(buf), 1000), 4);
    ASSERT_MEM_EQ(buf, "to A", 4);
    ASSERT_EQ(utest_recv(&t, b, buf, sizeof(buf), 1000), 4);
    ASSERT_MEM_EQ(buf, "to B", 4);
    ASSERT_EQ(utest_recv(&t, a, buf, sizeof(buf), 100), -1);
    ASSERT_EQ(utest_recv(&t, b, buf, sizeof(buf), 10), -1);

    /* 9000 bytes, more than any MTU on the way, whole both ways. */
    uint8_t *big = malloc(FAKE_MAX_LEN);
    ASSERT(big);
    for (size_t i = 0; i < FAKE_MAX_LEN; i++)
        big[i] = (uint8_t)(i * 13 + (i >> 8));
    utest_send(a, big, FAKE_MAX_LEN);
    utest_wait_sends(&t, fa, 3);
    ASSERT_EQ(fa->len, FAKE_MAX_LEN);
    ASSERT_MEM_EQ(fa->data, big, FAKE_MAX_LEN);
    big[0] ^= 0xFF;
    fake_answer(fa, "10.0.0.2", 53, big, FAKE_MAX_LEN);
    ASSERT_EQ(utest_recv(&t, a, buf, sizeof(buf), 1000), FAKE_MAX_LEN);
    ASSERT_MEM_EQ(buf, big, FAKE_MAX_LEN);
    free(big);

    char port[16];
    snprintf(port, sizeof(port), ":%u)", t.port);
    utest_finish(&t);
    const char *log = uvtest_log_end();
    v2s_log_level = saved;
    ASSERT_EQ(utest_count(log, " -> 10.0.0.2:53 (forward 127.0.0.1"), 4); /* two opens, two closes */
    ASSERT(strstr(log, "open\n") != NULL);
    ASSERT(strstr(log, "closed (3 datagrams up, 2 down)") != NULL);
    ASSERT(strstr(log, "closed (1 datagrams up, 1 down)") != NULL);
    ASSERT(strstr(log, port) != NULL);
    close(a);
    close(b);
    return 0;
}

/* A destination given as an IPv4-mapped IPv6 address (-L 5353:[::ffff:10.0.0.2]:53/udp) is the
 * IPv4 host: the outbound is asked for 10.0.0.2, and its answers, which come from 10.0.0.2 (the
 * routed outbound sends to the IPv4 host), reach the client. Failed before the fix: the mapped
 * form was kept, and an answer from 10.0.0.2 was dropped as not the destination's. */
TEST_IMPL(port_udp_mapped_target)
{
    struct utest t;
    uint8_t buf[64];
    utest_start(&t, "::ffff:10.0.0.2", 53, 5000, 4);
    int a = utest_client(&t);
    utest_send(a, "q", 1);
    utest_wait_count(&t, &t.ob.opened, 1);
    struct fake_assoc *fa = &t.ob.assocs[0];
    utest_wait_sends(&t, fa, 1);
    char dst[V2S_ADDR_STRLEN];
    ASSERT_STR_EQ(v2s_addr_format(&fa->dst, dst, sizeof(dst)), "10.0.0.2");
    fake_answer(fa, "10.0.0.2", 53, "answer", 6);
    ASSERT_EQ(utest_recv(&t, a, buf, sizeof(buf), 1000), 6);
    ASSERT_MEM_EQ(buf, "answer", 6);
    utest_finish(&t);
    close(a);
    return 0;
}

/* A flow idle for the timeout ends, one that keeps sending does not; at the cap a new client's
 * datagrams are dropped with one line for the burst, and it gets a flow once one ended. A name
 * goes to the outbound as a name. */
TEST_IMPL(port_udp_idle_and_cap)
{
    struct utest t;
    uint8_t buf[64];
    int saved = v2s_log_level;
    v2s_log_level = V2S_LOG_INFO;
    uvtest_log_begin();
    /* 600 ms idle against b's datagram every 100 ms: b keeps its flow through a stall of half a
     * second (an ASan build on a busy machine), and a still ends within the loop below. */
    utest_start(&t, "dns.corp.test", 53, 600, 2);
    int a = utest_client(&t), b = utest_client(&t), c = utest_client(&t);
    utest_send(a, "a", 1);
    utest_wait_count(&t, &t.ob.opened, 1);
    utest_wait_sends(&t, &t.ob.assocs[0], 1);
    ASSERT_STR_EQ(t.ob.assocs[0].name, "dns.corp.test");
    ASSERT_EQ(t.ob.assocs[0].port, 53);
    utest_send(b, "b", 1);
    utest_wait_count(&t, &t.ob.opened, 2);
    for (int i = 0; i < 3; i++)
        utest_send(c, "c", 1);
    /* A name's answers are told by their port: the outbound alone knows its addresses. */
    fake_answer(&t.ob.assocs[0], "10.0.0.53", 53, "A", 1);
    ASSERT_EQ(utest_recv(&t, a, buf, sizeof(buf), 1000), 1);
    ASSERT_EQ(utest_recv(&t, c, buf, sizeof(buf), 50), -1);
    ASSERT_EQ(t.ob.opened, 2);
    ASSERT_EQ(port_udp_flows(t.pu), 2);

    /* b keeps its flow alive with a datagram every 100 ms; a goes idle and ends. */
    int a_closed = 0;
    for (int i = 0; i < 40 && !a_closed; i++) {
        utest_send(b, "b", 1);
        ASSERT_EQ(utest_recv(&t, b, buf, sizeof(buf), 100), -1);
        if (t.ob.assocs[0].closed)
            a_closed = 1;
    }
    ASSERT(a_closed);
    ASSERT(!t.ob.assocs[1].closed);
    ASSERT_EQ(port_udp_flows(t.pu), 1);

    /* A place is free: c's next datagram opens a flow. */
    utest_send(c, "c2", 2);
    utest_wait_count(&t, &t.ob.opened, 3);
    utest_wait_sends(&t, &t.ob.assocs[2], 1);
    ASSERT_MEM_EQ(t.ob.assocs[2].data, "c2", 2);
    /* Then both end once idle. */
    utest_wait_count(&t, &t.ob.closed, 3);
    ASSERT_EQ(port_udp_flows(t.pu), 0);

    utest_finish(&t);
    const char *log = uvtest_log_end();
    v2s_log_level = saved;
    ASSERT_EQ(utest_count(log, "2 flows, the most it keeps (--udp-max-flows)"), 1);
    ASSERT_EQ(utest_count(log, "3 datagrams from new clients dropped at the cap of 2 flows"), 1);
    ASSERT(strstr(log, " -> dns.corp.test:53 (forward 127.0.0.1:") != NULL);
    ASSERT(strstr(log, "closed after 600 ms idle (1 datagrams up, 1 down)") != NULL);
    close(a);
    close(b);
    close(c);
    return 0;
}

/* A destination the router rejects: nothing sent, and no line of the forward's own beyond the
 * flow's open and close (the routed outbound logs its rejections, once per association). */
TEST_IMPL(port_udp_rejected)
{
    struct utest t;
    int saved = v2s_log_level;
    v2s_log_level = V2S_LOG_INFO;
    uvtest_log_begin();
    utest_start(&t, "203.0.113.1", 53, 5000, 4);
    t.ob.send_rc = UV_EACCES;
    int a = utest_client(&t);
    for (int i = 0; i < 3; i++)
        utest_send(a, "x", 1);
    utest_wait_count(&t, &t.ob.opened, 1);
    uint8_t buf[8];
    ASSERT_EQ(utest_recv(&t, a, buf, sizeof(buf), 100), -1);
    ASSERT_EQ(t.ob.assocs[0].sends, 0);
    ASSERT_EQ(t.ob.opened, 1);
    utest_finish(&t);
    const char *log = uvtest_log_end();
    v2s_log_level = saved;
    ASSERT_EQ(utest_count(log, " -> 203.0.113.1:53 (forward 127.0.0.1:"), 2); /* open, close */
    ASSERT(strstr(log, "permission denied") == NULL);
    ASSERT(strstr(log, "closed (0 datagrams up, 0 down)") != NULL);
    close(a);
    return 0;
}

/* --- -R/udp: the real stack behind a fake tunnel (harness_tun.h), real host sockets --- */

enum { RTEST_MAX_SENT = 16, RTEST_BIG = 5000 };

/* What the stack sent toward the VPN: whole UDP datagrams, fragments put back together. */
struct rtest {
    struct harness_tun tun;
    struct port_udp *pu;
    int closed;
    int n;                          /* datagrams seen */
    int fragments;                  /* IP fragments among the packets */
    struct v2s_addr src[RTEST_MAX_SENT], dst[RTEST_MAX_SENT];
    uint16_t sport[RTEST_MAX_SENT], dport[RTEST_MAX_SENT];
    uint8_t *data[RTEST_MAX_SENT];
    size_t len[RTEST_MAX_SENT];
    uint8_t frag[0x10000];          /* the IP payload of a fragmented datagram so far */
    int n_icmp;                     /* ICMP and ICMPv6 packets seen */
    uint8_t icmp[1500];             /* the last of them, whole */
    size_t icmp_len;
};

static void rtest_keep(struct rtest *r, const uint8_t *pkt, size_t len)
{
    ASSERT(r->n < RTEST_MAX_SENT);
    const uint8_t *payload;
    size_t n;
    int i = r->n;
    ASSERT(harness_tun_parse_udp4(pkt, len, &r->src[i], &r->sport[i], &r->dst[i], &r->dport[i], &payload, &n));
    r->data[i] = malloc(n + 1);
    ASSERT(r->data[i]);
    memcpy(r->data[i], payload, n);
    r->len[i] = n;
    r->n++;
}

static void rtest_on_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct rtest *r = t->arg;
    if ((len >= 20 && pkt[0] >> 4 == 4 && pkt[9] == 1) || (len >= 40 && pkt[0] >> 4 == 6 && pkt[6] == 58)) {
        ASSERT(len <= sizeof(r->icmp));
        memcpy(r->icmp, pkt, len);
        r->icmp_len = len;
        r->n_icmp++;
        return;
    }
    if (len < 20 || pkt[0] >> 4 != 4 || pkt[9] != 17)
        return; /* not UDP over IPv4 */
    size_t ihl = (size_t)(pkt[0] & 0x0F) * 4;
    unsigned off = ((unsigned)(pkt[6] & 0x1F) << 8 | pkt[7]) * 8;
    int more = pkt[6] & 0x20;
    if (!more && off == 0) {
        rtest_keep(r, pkt, len);
        return;
    }
    /* A fragment (lwIP sends them in order): gather, and parse the whole once the last came. */
    r->fragments++;
    ASSERT(off + (len - ihl) <= sizeof(r->frag) - 20);
    memcpy(r->frag + 20 + off, pkt + ihl, len - ihl);
    if (more)
        return;
    size_t total = 20 + off + (len - ihl);
    memcpy(r->frag, pkt, 20);
    r->frag[0] = 0x45;
    r->frag[2] = (uint8_t)(total >> 8);
    r->frag[3] = (uint8_t)total;
    r->frag[6] = r->frag[7] = 0;
    rtest_keep(r, r->frag, total);
}

static void rtest_closed(void *arg)
{
    ((struct rtest *)arg)->closed = 1;
}

/* Runs the loop until the stack sent want datagrams or ms passed. */
static int rtest_wait_sent(struct rtest *r, int want, unsigned ms)
{
    for (unsigned i = 0; i < ms && r->n < want; i++) {
        harness_tun_settle(&r->tun);
        usleep(1000);
    }
    return r->n >= want;
}

/* A datagram from the tunnel: src:sport to the tunnel address 10.8.0.2:dport. */
static void rtest_inject(struct rtest *r, const char *src, uint16_t sport, uint16_t dport, const void *data,
                         size_t len)
{
    static uint8_t pkt[0x10000];
    struct v2s_addr s, d;
    ASSERT_EQ(v2s_addr_parse(&s, src), 0);
    ASSERT_EQ(v2s_addr_parse(&d, "10.8.0.2"), 0);
    size_t n = harness_tun_udp4(pkt, sizeof(pkt), &s, sport, &d, dport, data, len);
    ASSERT(n > 0);
    harness_tun_inject(&r->tun, pkt, n);
}

/* A host service: a UDP socket on 127.0.0.1 (or :: taking IPv4 too, for a name). */
static int rtest_service(int dual, uint16_t *port)
{
    int fd = socket(dual ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    ASSERT(fd >= 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl;
    if (dual) {
        int off = 0;
        ASSERT_EQ(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)), 0);
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        sl = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof(*s4);
    }
    ASSERT_EQ(bind(fd, (struct sockaddr *)&ss, sl), 0);
    ASSERT_EQ(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
    *port = ntohs(dual ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* One datagram at the service while the loop runs: its length (-1: none within ms) and sender. */
static ssize_t rtest_service_recv(struct rtest *r, int fd, uint8_t *buf, size_t cap, struct sockaddr_storage *from,
                                  socklen_t *fromlen, unsigned ms)
{
    for (unsigned i = 0; i <= ms; i++) {
        *fromlen = sizeof(*from);
        ssize_t n = recvfrom(fd, buf, cap, MSG_DONTWAIT, (struct sockaddr *)from, fromlen);
        if (n >= 0)
            return n;
        harness_tun_settle(&r->tun);
        usleep(1000);
    }
    return -1;
}

static uint16_t rtest_sockaddr_port(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                           : ((const struct sockaddr_in *)ss)->sin_port);
}

/* A fresh rtest, its harness tunnel up at 10.8.0.2 (and at addr6, when not NULL). */
static struct rtest *rtest_new_with(const char *addr6)
{
    struct rtest *r = calloc(1, sizeof(*r));
    ASSERT(r);
    struct harness_tun_config cfg = {.addr4 = "10.8.0.2", .addr6 = addr6};
    ASSERT_EQ(harness_tun_up(&r->tun, &cfg, rtest_on_send, r), 0);
    return r;
}

static struct rtest *rtest_new(void)
{
    return rtest_new_with(NULL);
}

/* The -R/udp forward from tunnel port tport to host:port (4 flows at most, idle ones end after
 * idle_ms), on every tunnel address. */
static void rtest_forward(struct rtest *r, const char *host, uint16_t port, unsigned idle_ms, uint16_t tport)
{
    struct port_udp_config pcfg = {
        .loop = &r->tun.loop,
        .host = host,
        .port = port,
        .idle_timeout_ms = idle_ms,
        .max_flows = 4,
    };
    ASSERT_EQ(port_udp_remote_new(&r->pu, &pcfg, r->tun.stack, NULL, tport), 0);
}

/* Frees r and the datagrams it kept. */
static void rtest_free(struct rtest *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->data[i]);
    free(r);
}

/* -R [::]:PORT:.../udp listens on every tunnel address, as a TCP -R on [::] does: an IPv4
 * client's datagram to the tunnel's IPv4 address reaches the service, and the answer comes back.
 * Failed before the fix: "::" bound the IPv6 any-address alone, and the IPv4 datagram was
 * answered port unreachable. */
TEST_IMPL(port_udp_remote_any6)
{
    struct rtest *r = rtest_new();
    uint16_t svc_port;
    int svc = rtest_service(0, &svc_port);
    struct port_udp_config pcfg = {
        .loop = &r->tun.loop,
        .host = "127.0.0.1",
        .port = svc_port,
        .idle_timeout_ms = 5000,
        .max_flows = 4,
    };
    struct v2s_addr any6;
    ASSERT_EQ(v2s_addr_parse(&any6, "::"), 0);
    ASSERT_EQ(port_udp_remote_new(&r->pu, &pcfg, r->tun.stack, &any6, 5000), 0);
    rtest_inject(r, "10.8.0.1", 4000, 5000, "v4 client", 9);
    uint8_t buf[64];
    struct sockaddr_storage from;
    socklen_t fl;
    ASSERT_EQ(rtest_service_recv(r, svc, buf, sizeof(buf), &from, &fl, 1000), 9);
    ASSERT_MEM_EQ(buf, "v4 client", 9);
    ASSERT_EQ(sendto(svc, "back", 4, 0, (struct sockaddr *)&from, fl), 4);
    ASSERT(rtest_wait_sent(r, 1, 1000));
    ASSERT_EQ(r->sport[0], 5000);
    ASSERT_EQ(r->dport[0], 4000);
    ASSERT_MEM_EQ(r->data[0], "back", 4);
    port_udp_close(r->pu, rtest_closed, r);
    ASSERT_EQ(harness_tun_down(&r->tun), 0);
    ASSERT(r->closed);
    close(svc);
    rtest_free(r);
    return 0;
}

/* -R ADDR:PORT:.../udp with an ADDR the tunnel does not have: a warning at tunnel up names it and
 * what the tunnel has, as for a TCP -R. Before, nothing was said, and every datagram to the
 * tunnel's real address was answered port unreachable with no hint why. None when the tunnel
 * has ADDR, and none for a forward on every tunnel address. */
TEST_IMPL(port_udp_remote_wrong_address)
{
    struct rtest *r = rtest_new();
    struct port_udp_config pcfg = {
        .loop = &r->tun.loop,
        .host = "127.0.0.1",
        .port = 7,
        .idle_timeout_ms = 5000,
        .max_flows = 4,
    };
    struct v2s_addr wrong;
    ASSERT_EQ(v2s_addr_parse(&wrong, "10.96.0.9"), 0);
    struct port_udp *every;
    ASSERT_EQ(port_udp_remote_new(&r->pu, &pcfg, r->tun.stack, &wrong, 7002), 0);
    ASSERT_EQ(port_udp_remote_new(&every, &pcfg, r->tun.stack, NULL, 7003), 0);
    struct tunnel_settings ts;
    tunnel_settings_init(&ts);
    ASSERT_EQ(v2s_addr_parse(&ts.addr4, "10.8.0.2"), 0);
    ts.prefix4 = 24;

    uvtest_log_begin();
    port_udp_tunnel_up(r->pu, &ts);
    port_udp_tunnel_up(every, &ts);
    const char *log = uvtest_log_end();
    ASSERT(strstr(log, "10.96.0.9 is not the tunnel's address (the tunnel has 10.8.0.2)") != NULL);
    ASSERT(strstr(log, "7003") == NULL);

    ts.addr4 = wrong;
    uvtest_log_begin();
    port_udp_tunnel_up(r->pu, &ts);
    log = uvtest_log_end();
    ASSERT(strstr(log, "is not the tunnel's address") == NULL);

    tunnel_settings_free(&ts);
    port_udp_close(every, NULL, NULL);
    port_udp_close(r->pu, rtest_closed, r);
    ASSERT_EQ(harness_tun_down(&r->tun), 0);
    ASSERT(r->closed);
    rtest_free(r);
    return 0;
}

/* -R/udp: each remote client of the tunnel port gets its own host socket, answers go back to it
 * from the forwarded port (fragmented past the MTU), another host's datagrams to a flow's socket
 * go nowhere, a name is resolved for the flow (on a forward bound to one tunnel address), idle
 * flows end, and closing leaves no handle. */
TEST_IMPL(port_udp_remote)
{
    struct rtest *r = rtest_new();
    int saved = v2s_log_level;
    v2s_log_level = V2S_LOG_INFO;
    uvtest_log_begin();
    uint16_t svc_port;
    int svc = rtest_service(0, &svc_port);
    /* Flows idle out after 1 s, not 400 ms: a step below may wait up to 1 s for a datagram, and
     * on a loaded machine a flow could idle out between two datagrams of one client. */
    rtest_forward(r, "127.0.0.1", svc_port, 1000, 5000);

    /* Two remote clients, two host sockets. */
    uint8_t buf[0x10000];
    struct sockaddr_storage from1, from2, from;
    socklen_t fl1, fl2, fl;
    rtest_inject(r, "10.8.0.1", 4000, 5000, "hello", 5);
    ASSERT_EQ(rtest_service_recv(r, svc, buf, sizeof(buf), &from1, &fl1, 1000), 5);
    ASSERT_MEM_EQ(buf, "hello", 5);
    rtest_inject(r, "10.8.0.3", 4000, 5000, "howdy", 5);
    ASSERT_EQ(rtest_service_recv(r, svc, buf, sizeof(buf), &from2, &fl2, 1000), 5);
    ASSERT_MEM_EQ(buf, "howdy", 5);
    ASSERT(rtest_sockaddr_port(&from1) != rtest_sockaddr_port(&from2));
    rtest_inject(r, "10.8.0.1", 4000, 5000, "again", 5);
    ASSERT_EQ(rtest_service_recv(r, svc, buf, sizeof(buf), &from, &fl, 1000), 5);
    ASSERT_EQ(rtest_sockaddr_port(&from), rtest_sockaddr_port(&from1)); /* the same flow */
    ASSERT_EQ(port_udp_flows(r->pu), 2);

    /* Answers go to their own client, from the tunnel address and the forwarded port. */
    ASSERT_EQ(sendto(svc, "to 3", 4, 0, (struct sockaddr *)&from2, fl2), 4);
    ASSERT(rtest_wait_sent(r, 1, 1000));
    ASSERT_EQ(sendto(svc, "to 1", 4, 0, (struct sockaddr *)&from1, fl1), 4);
    ASSERT(rtest_wait_sent(r, 2, 1000));
    char a[V2S_ADDR_STRLEN];
    ASSERT_STR_EQ(v2s_addr_format(&r->src[0], a, sizeof(a)), "10.8.0.2");
    ASSERT_EQ(r->sport[0], 5000);
    ASSERT_STR_EQ(v2s_addr_format(&r->dst[0], a, sizeof(a)), "10.8.0.3");
    ASSERT_EQ(r->dport[0], 4000);
    ASSERT_EQ(r->len[0], 4);
    ASSERT_MEM_EQ(r->data[0], "to 3", 4);
    ASSERT_STR_EQ(v2s_addr_format(&r->dst[1], a, sizeof(a)), "10.8.0.1");
    ASSERT_MEM_EQ(r->data[1], "to 1", 4);

    /* Another host socket's datagram to a flow's socket goes nowhere (the socket is connected). */
    uint16_t other_port;
    int other = rtest_service(0, &other_port);
    ASSERT_EQ(sendto(other, "stray", 5, 0, (struct sockaddr *)&from1, fl1), 5);
    ASSERT(!rtest_wait_sent(r, 3, 100));

    /* 5000 bytes each way: in whole, out in fragments of the 1400-byte MTU, put back intact. */
    uint8_t *big = malloc(RTEST_BIG);
    ASSERT(big);
    for (size_t i = 0; i < RTEST_BIG; i++)
        big[i] = (uint8_t)(i * 31 + (i >> 7));
    rtest_inject(r, "10.8.0.1", 4000, 5000, big, RTEST_BIG);
    ASSERT_EQ(rtest_service_recv(r, svc, buf, sizeof(buf), &from, &fl, 1000), RTEST_BIG);
    ASSERT_MEM_EQ(buf, big, RTEST_BIG);
    big[1] ^= 0x55;
    ASSERT_EQ(sendto(svc, big, RTEST_BIG, 0, (struct sockaddr *)&from1, fl1), RTEST_BIG);
    ASSERT(rtest_wait_sent(r, 3, 1000));
    ASSERT(r->fragments >= 3);
    ASSERT_EQ(r->len[2], RTEST_BIG);
    ASSERT_MEM_EQ(r->data[2], big, RTEST_BIG);
    free(big);

    /* Idle flows end. */
    for (int i = 0; i < 6000 && port_udp_flows(r->pu) > 0; i++) {
        harness_tun_settle(&r->tun);
        usleep(1000);
    }
    ASSERT_EQ(port_udp_flows(r->pu), 0);
    port_udp_close(r->pu, rtest_closed, r);

    /* A name, resolved on this host for each flow: "localhost" reaches a service on both
     * loopback addresses, whichever comes first. */
    struct port_udp *named;
    uint16_t dual_port;
    int dual = rtest_service(1, &dual_port);
    /* The first forward's settings, but for the name and port. */
    struct port_udp_config pcfg = {
        .loop = &r->tun.loop,
        .host = "localhost",
        .port = dual_port,
        .idle_timeout_ms = 1000,
        .max_flows = 4,
    };
    struct v2s_addr local;
    ASSERT_EQ(v2s_addr_parse(&local, "10.8.0.2"), 0); /* and on one tunnel address only */
    ASSERT_EQ(port_udp_remote_new(&named, &pcfg, r->tun.stack, &local, 5001), 0);
    rtest_inject(r, "10.8.0.1", 4001, 5001, "by name", 7);
    ASSERT_EQ(rtest_service_recv(r, dual, buf, sizeof(buf), &from, &fl, 3000), 7);
    ASSERT_MEM_EQ(buf, "by name", 7);
    ASSERT_EQ(sendto(dual, "named", 5, 0, (struct sockaddr *)&from, fl), 5);
    ASSERT(rtest_wait_sent(r, 4, 1000));
    ASSERT_EQ(r->sport[3], 5001);
    ASSERT_EQ(r->dport[3], 4001);
    ASSERT_MEM_EQ(r->data[3], "named", 5);
    int named_closed = 0;
    port_udp_close(named, utest_closed_flag, &named_closed);

    ASSERT_EQ(harness_tun_down(&r->tun), 0);
    ASSERT(r->closed);
    ASSERT_EQ(named_closed, 1);
    const char *log = uvtest_log_end();
    v2s_log_level = saved;
    char want[128];
    snprintf(want, sizeof(want), "udp 10.8.0.1:4000 -> 127.0.0.1:%u (forward tunnel port 5000) open", svc_port);
    ASSERT(strstr(log, want) != NULL);
    snprintf(want, sizeof(want), "udp 10.8.0.3:4000 -> 127.0.0.1:%u (forward tunnel port 5000) closed after 1 s "
             "idle (1 datagrams up, 1 down)", svc_port);
    ASSERT(strstr(log, want) != NULL);
    ASSERT(strstr(log, "closed after 1 s idle (3 datagrams up, 2 down)") != NULL);
    snprintf(want, sizeof(want), "udp 10.8.0.1:4001 -> localhost:%u (forward tunnel 10.8.0.2:5001) open", dual_port);
    ASSERT(strstr(log, want) != NULL);
    close(svc);
    close(other);
    close(dual);
    rtest_free(r);
    return 0;
}

/* Runs the loop until the stack sent want ICMP packets or ms passed. */
static int rtest_wait_icmp(struct rtest *r, int want, unsigned ms)
{
    for (unsigned i = 0; i < ms && r->n_icmp < want; i++) {
        harness_tun_settle(&r->tun);
        usleep(1000);
    }
    return r->n_icmp >= want;
}

/* A UDP port of 127.0.0.1 that nothing listens on (it was bound a moment ago). */
static uint16_t rtest_closed_udp_port(void)
{
    uint16_t port;
    close(rtest_service(0, &port));
    return port;
}

/* -R/udp to a closed host port: the host socket's ECONNREFUSED goes back into the tunnel as ICMP
 * port unreachable (ICMPv6 for IPv6) from the tunnel address to the remote client, quoting its
 * datagram (the IP header and the UDP header with its real checksum; over IPv6 the payload too),
 * once for each datagram refused. Failed before the fix: nothing came back, and the client only
 * learnt it at its own timeout. */
TEST_IMPL(port_udp_remote_refused)
{
    struct rtest *r = rtest_new_with("fd00:0:0:8::2");
    uint16_t closed = rtest_closed_udp_port();
    struct v2s_addr any6;
    ASSERT_EQ(v2s_addr_parse(&any6, "::"), 0);
    struct port_udp_config pcfg = {
        .loop = &r->tun.loop,
        .host = "127.0.0.1",
        .port = closed,
        .idle_timeout_ms = 5000,
        .max_flows = 4,
    };
    ASSERT_EQ(port_udp_remote_new(&r->pu, &pcfg, r->tun.stack, &any6, 5000), 0);

    /* IPv4: type 3 code 3, the quote of the datagram as it came (its TTL aside). */
    static uint8_t pkt[256];
    struct v2s_addr cli, tun;
    ASSERT_EQ(v2s_addr_parse(&cli, "10.8.0.1"), 0);
    ASSERT_EQ(v2s_addr_parse(&tun, "10.8.0.2"), 0);
    size_t n = harness_tun_udp4(pkt, sizeof(pkt), &cli, 4000, &tun, 5000, (const uint8_t *)"knock", 5);
    harness_tun_inject(&r->tun, pkt, n);
    ASSERT(rtest_wait_icmp(r, 1, 2000));
    const uint8_t *ip = r->icmp;
    ASSERT_EQ(r->icmp_len, 20 + 8 + 28);
    ASSERT_EQ(ip[9], 1);
    ASSERT_MEM_EQ(ip + 12, tun.bytes, 4); /* from the tunnel address */
    ASSERT_MEM_EQ(ip + 16, cli.bytes, 4); /* to the client */
    ASSERT_EQ(harness_tun_fold(harness_tun_sum(0, ip, 20)), 0);
    const uint8_t *icmp = ip + 20;
    ASSERT_EQ(icmp[0], 3);
    ASSERT_EQ(icmp[1], 3);
    ASSERT_EQ(harness_tun_fold(harness_tun_sum(0, icmp, 36)), 0);
    const uint8_t *quote = icmp + 8;
    ASSERT_MEM_EQ(quote, pkt, 8);               /* version, length, id, fragment bits */
    ASSERT_MEM_EQ(quote + 9, pkt + 9, 20 - 9 + 8); /* protocol, addresses, the UDP header */
    /* Once for each datagram refused. */
    harness_tun_inject(&r->tun, pkt, n);
    ASSERT(rtest_wait_icmp(r, 2, 2000));

    /* IPv6: type 1 code 4, quoting the whole datagram. */
    ASSERT_EQ(v2s_addr_parse(&cli, "fd00:0:0:8::1"), 0);
    ASSERT_EQ(v2s_addr_parse(&tun, "fd00:0:0:8::2"), 0);
    n = harness_tun_udp(pkt, sizeof(pkt), &cli, 4001, &tun, 5000, (const uint8_t *)"knock knock", 11);
    harness_tun_inject(&r->tun, pkt, n);
    ASSERT(rtest_wait_icmp(r, 3, 2000));
    ip = r->icmp;
    ASSERT_EQ(r->icmp_len, 40 + 8 + n);
    ASSERT_EQ(ip[6], 58);
    ASSERT_MEM_EQ(ip + 8, tun.bytes, 16);
    ASSERT_MEM_EQ(ip + 24, cli.bytes, 16);
    icmp = ip + 40;
    ASSERT_EQ(icmp[0], 1);
    ASSERT_EQ(icmp[1], 4);
    uint32_t sum = harness_tun_sum(0, ip + 8, 32) + 58 + (uint32_t)(8 + n);
    ASSERT_EQ(harness_tun_fold(harness_tun_sum(sum, icmp, 8 + n)), 0);
    ASSERT_MEM_EQ(icmp + 8, pkt, 4);              /* version, traffic class, flow label */
    ASSERT_MEM_EQ(icmp + 8 + 4, pkt + 4, 3);      /* payload length, next header */
    ASSERT_MEM_EQ(icmp + 8 + 8, pkt + 8, n - 8);  /* addresses, UDP header, payload */

    port_udp_close(r->pu, rtest_closed, r);
    ASSERT_EQ(harness_tun_down(&r->tun), 0);
    ASSERT(r->closed);
    rtest_free(r);
    return 0;
}

/* -R/udp to a name: what a remote client sends while the name resolves waits, within a bound on
 * the memory it holds, empty datagrams included. Before, an empty datagram counted nothing against
 * the bound: all 20000 waited and went out once the name resolved. */
TEST_IMPL(port_udp_remote_pending_bounded)
{
    enum { EMPTY = 20000 };
    struct rtest *r = rtest_new();
    int saved = v2s_log_level;
    v2s_log_level = V2S_LOG_INFO;
    uvtest_log_begin();
    uint16_t svc_port;
    int svc = rtest_service(1, &svc_port);
    rtest_forward(r, "localhost", svc_port, 60000, 5002);

    /* Straight into the stack without turning the loop, so the lookup cannot come back meanwhile. */
    uint8_t pkt[64];
    struct v2s_addr src, dst;
    ASSERT_EQ(v2s_addr_parse(&src, "10.8.0.1"), 0);
    ASSERT_EQ(v2s_addr_parse(&dst, "10.8.0.2"), 0);
    size_t n = harness_tun_udp4(pkt, sizeof(pkt), &src, 4002, &dst, 5002, (const uint8_t *)"", 0);
    ASSERT(n > 0);
    for (int i = 0; i < EMPTY; i++)
        stack_input(r->tun.stack, pkt, n);

    /* The name resolves and what waited goes out; a last datagram follows it. */
    uint8_t buf[64];
    struct sockaddr_storage from;
    socklen_t fromlen;
    ASSERT_EQ(rtest_service_recv(r, svc, buf, sizeof(buf), &from, &fromlen, 5000), 0);
    while (rtest_service_recv(r, svc, buf, sizeof(buf), &from, &fromlen, 100) == 0)
        ; /* the rest that the service's socket kept */
    rtest_inject(r, "10.8.0.1", 4002, 5002, "last", 4);
    ASSERT_EQ(rtest_service_recv(r, svc, buf, sizeof(buf), &from, &fromlen, 1000), 4);
    ASSERT_MEM_EQ(buf, "last", 4);
    int closed = 0;
    port_udp_close(r->pu, utest_closed_flag, &closed);
    ASSERT_EQ(harness_tun_down(&r->tun), 0);
    ASSERT_EQ(closed, 1);
    const char *log = uvtest_log_end();
    v2s_log_level = saved;
    const char *line = strstr(log, "(forward tunnel port 5002) closed (");
    ASSERT(line != NULL);
    unsigned long long up = 0;
    ASSERT_EQ(sscanf(line, "(forward tunnel port 5002) closed (%llu datagrams up", &up), 1);
    /* 128 KiB of records of at least 24 bytes: at most 5461 waited, and the last one. */
    ASSERT(up >= 2);
    ASSERT(up <= 128 * 1024 / 24 + 1);
    close(svc);
    free(r);
    return 0;
}

/* A datagram for fd within ms while the harness's loop runs: its length, or -1 for none. */
static ssize_t rtest_client_recv(struct rtest *r, int fd, uint8_t *buf, size_t cap, unsigned ms)
{
    for (unsigned i = 0; i <= ms; i++) {
        ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
        if (n >= 0)
            return n;
        harness_tun_settle(&r->tun);
        usleep(1000);
    }
    return -1;
}

/* -L/udp end to end on the real outbounds: the routed one picks the tunnel, the datagram leaves
 * the stack from the tunnel address (in fragments past the MTU), the destination's answer comes
 * back to the client, and another host's datagram to the same port of the tunnel address does
 * not. */
TEST_IMPL(port_udp_local_tunnel)
{
    struct rtest *r = rtest_new();
    uv_loop_t *loop = &r->tun.loop;
    struct router router;
    router_init(&router);
    struct v2s_cidr c;
    ASSERT_EQ(v2s_cidr_parse(&c, "10.99.0.0/24", 0), 0);
    ASSERT_EQ(router_add_user(&router, &c, ROUTER_TUNNEL), 0);
    router.others = ROUTER_OTHERS_REJECT;
    struct outbound *via, *direct, *dialer;
    ASSERT_EQ(via_stack_new(&via, r->tun.stack), 0);
    ASSERT_EQ(direct_new(&direct, loop), 0);
    struct dial_config dcfg = {.loop = loop, .stack = r->tun.stack, .router = &router};
    dcfg.via[ROUTER_TUNNEL] = via;
    dcfg.via[ROUTER_DIRECT] = direct;
    ASSERT_EQ(dial_new(&dialer, &dcfg), 0);
    struct port_udp_config pcfg = {
        .loop = loop,
        .host = "10.99.0.1",
        .port = 53,
        .idle_timeout_ms = 5000,
        .max_flows = 4,
    };
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(port_udp_local_new(&r->pu, &pcfg, dialer, (const struct sockaddr *)&sin), 0);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    ASSERT_EQ(port_udp_local(r->pu, (struct sockaddr *)&ss, &sl), 0);
    struct utest fake_t = {.port = ntohs(((struct sockaddr_in *)&ss)->sin_port)};
    int client = utest_client(&fake_t);

    utest_send(client, "query", 5);
    ASSERT(rtest_wait_sent(r, 1, 1000));
    char a[V2S_ADDR_STRLEN];
    ASSERT_STR_EQ(v2s_addr_format(&r->src[0], a, sizeof(a)), "10.8.0.2");
    ASSERT_STR_EQ(v2s_addr_format(&r->dst[0], a, sizeof(a)), "10.99.0.1");
    ASSERT_EQ(r->dport[0], 53);
    ASSERT_MEM_EQ(r->data[0], "query", 5);
    uint16_t sport = r->sport[0];

    /* Another host inside the tunnel aims at the association's port: nothing reaches the client. */
    struct v2s_addr self, dest, other;
    ASSERT_EQ(v2s_addr_parse(&self, "10.8.0.2"), 0);
    ASSERT_EQ(v2s_addr_parse(&dest, "10.99.0.1"), 0);
    ASSERT_EQ(v2s_addr_parse(&other, "10.99.0.9"), 0);
    static uint8_t pkt[0x10000];
    uint8_t buf[0x10000];
    size_t n = harness_tun_udp4(pkt, sizeof(pkt), &other, 53, &self, sport, (const uint8_t *)"spoof", 5);
    harness_tun_inject(&r->tun, pkt, n);
    ASSERT_EQ(rtest_client_recv(r, client, buf, sizeof(buf), 50), -1);
    n = harness_tun_udp4(pkt, sizeof(pkt), &dest, 53, &self, sport, (const uint8_t *)"answer", 6);
    harness_tun_inject(&r->tun, pkt, n);
    ASSERT_EQ(rtest_client_recv(r, client, buf, sizeof(buf), 1000), 6);
    ASSERT_MEM_EQ(buf, "answer", 6);

    /* 4000 bytes: out in fragments of the 1400-byte MTU, whole at the far end; and back. */
    uint8_t *big = malloc(4000);
    ASSERT(big);
    for (size_t i = 0; i < 4000; i++)
        big[i] = (uint8_t)(i * 7 + 3);
    utest_send(client, big, 4000);
    ASSERT(rtest_wait_sent(r, 2, 1000));
    ASSERT(r->fragments >= 3);
    ASSERT_EQ(r->len[1], 4000);
    ASSERT_MEM_EQ(r->data[1], big, 4000);
    ASSERT_EQ(r->sport[1], sport); /* the same flow */
    n = harness_tun_udp4(pkt, sizeof(pkt), &dest, 53, &self, sport, big, 4000);
    harness_tun_inject(&r->tun, pkt, n);
    ASSERT_EQ(rtest_client_recv(r, client, buf, sizeof(buf), 1000), 4000);
    ASSERT_MEM_EQ(buf, big, 4000);
    free(big);

    int closed = 0;
    port_udp_close(r->pu, utest_closed_flag, &closed);
    outbound_close(dialer, utest_closed_flag, &closed);
    outbound_close(via, utest_closed_flag, &closed);
    outbound_close(direct, utest_closed_flag, &closed);
    ASSERT_EQ(harness_tun_down(&r->tun), 0);
    ASSERT_EQ(closed, 4);
    router_free(&router);
    close(client);
    rtest_free(r);
    return 0;
}

/* A free UDP port on 127.0.0.1 (asked of the kernel, then let go), for a forward to itself. */
static uint16_t utest_free_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sin);
    ASSERT_EQ(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ASSERT_EQ(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

/* A -L/udp forward pointed at itself (with --allow-direct-local: loopback goes direct here), at
 * its own address, and one on 0.0.0.0 at another loopback address of its port: each datagram is
 * refused (UV_ELOOP), with one line for the flow, however many datagrams it sends. Failed before
 * the fix: one datagram came back in from the direct association as a new client, which sent it
 * again, a new flow each time, until the cap of 4 flows was full ("4 flows, the most it keeps"). */
TEST_IMPL(port_udp_local_self)
{
    struct rtest *r = rtest_new();
    uv_loop_t *loop = &r->tun.loop;
    struct router router;
    router_init(&router);
    struct v2s_cidr c;
    ASSERT_EQ(v2s_cidr_parse(&c, "127.0.0.0/8", 0), 0);
    ASSERT_EQ(router_add_user(&router, &c, ROUTER_DIRECT), 0);
    router.allow_direct_local = 1;
    struct outbound *direct, *dialer;
    ASSERT_EQ(direct_new(&direct, loop), 0);
    struct dial_config dcfg = {.loop = loop, .stack = r->tun.stack, .router = &router};
    dcfg.via[ROUTER_DIRECT] = direct;
    ASSERT_EQ(dial_new(&dialer, &dcfg), 0);
    int saved = v2s_log_level;
    v2s_log_level = V2S_LOG_INFO;
    uvtest_log_begin();

    static const struct {
        const char *listen, *target;
    } cases[] = {{"127.0.0.1", "127.0.0.1"}, {"0.0.0.0", "127.0.0.5"}};
    struct port_udp *pu[2];
    int client[2];
    for (size_t i = 0; i < 2; i++) {
        uint16_t port = utest_free_port();
        struct port_udp_config pcfg = {
            .loop = loop,
            .host = cases[i].target,
            .port = port,
            .idle_timeout_ms = 5000,
            .max_flows = 4,
        };
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
        ASSERT_EQ(uv_inet_pton(AF_INET, cases[i].listen, &sin.sin_addr), 0);
        ASSERT_EQ(port_udp_local_new(&pu[i], &pcfg, dialer, (const struct sockaddr *)&sin), 0);
        struct utest fake_t = {.port = port};
        client[i] = utest_client(&fake_t);
        for (int k = 0; k < 3; k++)
            utest_send(client[i], "x", 1);
    }
    uint8_t buf[8];
    ASSERT_EQ(rtest_client_recv(r, client[0], buf, sizeof(buf), 300), -1);
    ASSERT_EQ(rtest_client_recv(r, client[1], buf, sizeof(buf), 10), -1);

    int closed = 0;
    for (size_t i = 0; i < 2; i++)
        port_udp_close(pu[i], utest_closed_flag, &closed);
    outbound_close(dialer, utest_closed_flag, &closed);
    outbound_close(direct, utest_closed_flag, &closed);
    ASSERT_EQ(harness_tun_down(&r->tun), 0);
    ASSERT_EQ(closed, 4);
    const char *log = uvtest_log_end();
    v2s_log_level = saved;
    ASSERT_EQ(utest_count(log, ") open"), 2); /* one flow each: the clients' */
    ASSERT_EQ(utest_count(log, "one of this vpn2socks's own listeners: refused, it would loop"), 2);
    ASSERT(strstr(log, "dial: UDP to 127.0.0.5:") != NULL);
    ASSERT(strstr(log, "the most it keeps") == NULL);
    router_free(&router);
    close(client[0]);
    close(client[1]);
    rtest_free(r);
    return 0;
}
