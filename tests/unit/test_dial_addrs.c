/* A destination name with several addresses, dialed through the routed outbound (route/dial.c)
 * under a -L forward (port/forward.c): the real stack behind the fake tunnel of harness_tun.h,
 * the test playing the tunnel's DNS server (multi.example.com has two A records) and a server
 * at the first address that refuses every connection with a reset. What is checked is what the
 * forward's client sees: its bytes reach the address that answers, or, when none does, its
 * connection is reset with one line naming the last address's failure. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "base/bytes.h"
#include "base/log.h"
#include "harness_tun.h"
#include "port/forward.h"
#include "route/dial.h"
#include "route/direct.h"
#include "route/outbound.h"
#include "route/router.h"
#include "route/via_stack.h"
#include "stack/dnsmsg.h"
#include "stack/stack.h"
#include "test.h"
#include "uvtest.h"

enum {
    DA_PKT_MAX = 1500,
    DA_MAX_ANSWERS = 16,
};

struct da {
    struct harness_tun tun;
    struct router router;
    struct outbound *via, *direct, *dialer;
    struct port_forward *pf;
    struct dial_stats stats;
    uint16_t fport; /* the forward's port on 127.0.0.1 */
    int closed;
    const char *addrs[2]; /* multi.example.com's A records, in the answer's order */
    int syns;             /* SYNs the stack sent into the tunnel (each answered with a reset) */
    int blackhole;        /* ... or with nothing: the address never answers */
    int datagrams;        /* UDP datagrams into the tunnel to another port than 53 */
    struct v2s_addr datagram_dst; /* the last one's destination */
    uint8_t answers[DA_MAX_ANSWERS][DA_PKT_MAX];
    size_t answer_len[DA_MAX_ANSWERS];
    int n_answers;
};

/* The tunnel's side: a DNS server that knows multi.example.com (both A records; no AAAA), and
 * a reset for every SYN into the tunnel. Answers wait for da_pump(), outside lwIP's output. */
static void da_on_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct da *d = t->arg;
    ASSERT(d->n_answers < DA_MAX_ANSWERS);
    uint8_t *out = d->answers[d->n_answers];
    if (len >= 40 && pkt[0] == 0x45 && pkt[9] == 6 && (pkt[33] & 0x12) == 0x02) {
        d->syns++;
        if (d->blackhole)
            return;
        struct v2s_addr from = {.family = AF_INET}, to = {.family = AF_INET};
        memcpy(from.bytes, pkt + 16, 4);
        memcpy(to.bytes, pkt + 12, 4);
        uint32_t seq = v2s_get_be32(pkt + 24);
        size_t plen = harness_tun_tcp4(out, DA_PKT_MAX, &from, v2s_get_be16(pkt + 22), &to, v2s_get_be16(pkt + 20),
                                       0x14, 0, seq + 1, 0, NULL, 0, NULL, 0);
        ASSERT(plen > 0);
        d->answer_len[d->n_answers++] = plen;
        return;
    }
    struct v2s_addr src, dst;
    uint16_t sport, dport, id, qtype;
    const uint8_t *m;
    size_t n;
    if (!harness_tun_parse_udp(pkt, len, &src, &sport, &dst, &dport, &m, &n))
        return;
    if (dport != 53) {
        d->datagrams++;
        d->datagram_dst = dst;
        return;
    }
    char name[256];
    size_t qend = harness_tun_dns_question(m, n, name, sizeof(name), &id, &qtype);
    ASSERT(qend > 0);
    int known = strcmp(name, "multi.example.com") == 0;
    uint8_t msg[DA_PKT_MAX];
    size_t mlen;
    if (known && qtype == DNSMSG_TYPE_A) {
        struct v2s_addr a0, a1;
        ASSERT_EQ(v2s_addr_parse(&a0, d->addrs[0]), 0);
        ASSERT_EQ(v2s_addr_parse(&a1, d->addrs[1]), 0);
        mlen = harness_tun_dns_answer(msg, m, qend, id, DNSMSG_RCODE_NOERROR, &a0);
        /* The second record: the first one's again (name pointer, type, class, TTL, length),
         * with the other address. */
        memcpy(msg + mlen, msg + qend, 12);
        memcpy(msg + mlen + 12, a1.bytes, 4);
        mlen += 16;
        v2s_put_be16(msg + 6, 2);
    } else {
        mlen = harness_tun_dns_answer(msg, m, qend, id, known ? DNSMSG_RCODE_NOERROR : DNSMSG_RCODE_NXDOMAIN,
                                      NULL);
    }
    size_t plen = harness_tun_udp(out, DA_PKT_MAX, &dst, 53, &src, sport, msg, mlen);
    ASSERT(plen > 0);
    d->answer_len[d->n_answers++] = plen;
}

/* Runs the loop a little and hands the tunnel side's answers to the stack. */
static void da_pump(struct da *d)
{
    static uint8_t pkt[DA_PKT_MAX];
    int never = 0;
    uvtest_run_until(&d->tun.loop, &never, 5);
    int n = d->n_answers;
    d->n_answers = 0;
    for (int i = 0; i < n; i++) {
        memcpy(pkt, d->answers[i], d->answer_len[i]);
        harness_tun_inject(&d->tun, pkt, d->answer_len[i]);
    }
}

static void da_closed(void *arg)
{
    ((struct da *)arg)->closed++;
}

/* The forwards' --connect-timeout. */
static unsigned da_timeout_ms = 3000;

/* The tunnel up with one DNS server (names go to it: the router has not seen the tunnel's
 * settings), 127.0.0.0/8 direct (--allow-direct-local), everything else into the tunnel; a -L
 * forward on 127.0.0.1 to multi.example.com:port, whose addresses are a0 then a1. */
static void da_up(struct da *d, const char *a0, const char *a1, uint16_t port)
{
    memset(d, 0, sizeof(*d));
    d->addrs[0] = a0;
    d->addrs[1] = a1;
    const struct harness_tun_config cfg = {.addr4 = "10.8.0.2", .dns = {"10.9.0.53"}, .seed = 5};
    ASSERT_EQ(harness_tun_up(&d->tun, &cfg, da_on_send, d), 0);
    router_init(&d->router);
    struct v2s_cidr c;
    ASSERT_EQ(v2s_cidr_parse(&c, "127.0.0.0/8", 1), 0);
    ASSERT_EQ(router_add_user(&d->router, &c, ROUTER_DIRECT), 0);
    d->router.allow_direct_local = 1;
    ASSERT_EQ(via_stack_new(&d->via, d->tun.stack), 0);
    ASSERT_EQ(direct_new(&d->direct, &d->tun.loop), 0);
    struct dial_config dcfg = {.loop = &d->tun.loop, .stack = d->tun.stack, .router = &d->router};
    dcfg.via[ROUTER_TUNNEL] = d->via;
    dcfg.via[ROUTER_DIRECT] = d->direct;
    dcfg.stats = &d->stats;
    ASSERT_EQ(dial_new(&d->dialer, &dcfg), 0);
    struct port_forward_config fcfg = {
        .loop = &d->tun.loop,
        .out = d->dialer,
        .connect_timeout_ms = da_timeout_ms,
        .host = "multi.example.com",
        .port = port,
    };
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(port_forward_new(&d->pf, &fcfg, (const struct sockaddr *)&sin), 0);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    ASSERT_EQ(port_forward_local(d->pf, (struct sockaddr *)&ss, &sl), 0);
    d->fport = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int da_all_closed(void *arg)
{
    return ((struct da *)arg)->closed == 4;
}

/* Closes everything da_up() opened; no handle may be left. */
static void da_down(struct da *d)
{
    port_forward_close(d->pf, da_closed, d);
    outbound_close(d->dialer, da_closed, d);
    outbound_close(d->via, da_closed, d);
    outbound_close(d->direct, da_closed, d);
    ASSERT(uvtest_run_until_fn(&d->tun.loop, da_all_closed, d, 3000));
    router_free(&d->router);
    ASSERT_EQ(harness_tun_down(&d->tun), 0);
}

/* The first address (in the tunnel) refuses; the second (direct, 127.0.0.1) listens: the
 * forward's client reaches it and bytes go both ways. The same with both addresses direct, the
 * first refusing (nothing listens on 127.0.0.2). Failed before the fix: the dial stopped at the
 * first address, and the client's connection was reset (the log said "connection refused"). */
TEST_IMPL(dial_addrs_next_after_refused)
{
    static struct da d;
    const char *first[] = {"10.9.0.8", "127.0.0.2"};
    for (size_t i = 0; i < ARRAY_SIZE(first); i++) {
        uint16_t port;
        int l = uvtest_listen(&port);
        da_up(&d, first[i], "127.0.0.1", port);
        int fd = uvtest_connect(d.fport);
        int remote = -1;
        for (int k = 0; k < 400 && remote < 0; k++) {
            da_pump(&d);
            remote = accept(l, NULL, NULL);
        }
        ASSERT_ROW(remote >= 0, "%zu: the second address was not reached", i);
        ASSERT_EQ(d.syns, i == 0 ? 1 : 0); /* the tunnel's address was tried first */
        uint8_t buf[8];
        int end;
        uvtest_send(&d.tun.loop, fd, "ping", 4);
        ASSERT_EQ(uvtest_recv(&d.tun.loop, remote, buf, 4, &end, 3000), 4);
        ASSERT_MEM_EQ(buf, "ping", 4);
        uvtest_send(&d.tun.loop, remote, "pong", 4);
        ASSERT_EQ(uvtest_recv(&d.tun.loop, fd, buf, 4, &end, 3000), 4);
        ASSERT_MEM_EQ(buf, "pong", 4);
        /* Counted once, under the verdict of the first address tried. */
        ASSERT_EQ(d.stats.total[ROUTER_TUNNEL] + d.stats.total[ROUTER_DIRECT], 1);
        ASSERT_EQ(d.stats.total[i == 0 ? ROUTER_TUNNEL : ROUTER_DIRECT], 1);
        ASSERT_EQ(d.stats.open, 1);
        close(fd);
        ASSERT_EQ(uvtest_wait_end(&d.tun.loop, remote, NULL, 3000), 1);
        close(remote);
        close(l);
        da_down(&d);
    }
    return 0;
}

/* The first address (in the tunnel) never answers a SYN, the second (direct, 127.0.0.1)
 * listens, and the connect timeout is 8 s: once the SYN is out, lwIP's clock jumps 5 s (the
 * dial's own deadline, on the loop's clock, is far off), which ends the first attempt if it was
 * given its share (4 s) and not the whole timeout; then the client reaches the second address.
 * Failed before the fix: the first attempt had the whole timeout and was still waiting, the
 * second address never tried (with the clocks together, the client's connection was reset when
 * the 8 s ran out, "connection timed out"). */
TEST_IMPL(dial_addrs_next_after_silent)
{
    static struct da d;
    uint16_t port;
    int l = uvtest_listen(&port);
    da_timeout_ms = 8000;
    da_up(&d, "10.9.0.8", "127.0.0.1", port);
    da_timeout_ms = 3000;
    d.blackhole = 1;
    int fd = uvtest_connect(d.fport);
    for (int k = 0; k < 400 && d.syns == 0; k++)
        da_pump(&d);
    ASSERT_EQ(d.syns, 1); /* the tunnel's address is tried first */
    harness_tun_advance(&d.tun, 5000);
    int remote = -1;
    for (int k = 0; k < 400 && remote < 0; k++) {
        da_pump(&d);
        remote = accept(l, NULL, NULL);
    }
    ASSERT(remote >= 0); /* the second address was reached */
    uint8_t buf[8];
    int end;
    uvtest_send(&d.tun.loop, fd, "ping", 4);
    ASSERT_EQ(uvtest_recv(&d.tun.loop, remote, buf, 4, &end, 3000), 4);
    ASSERT_MEM_EQ(buf, "ping", 4);
    close(fd);
    ASSERT_EQ(uvtest_wait_end(&d.tun.loop, remote, NULL, 3000), 1);
    close(remote);
    close(l);
    da_down(&d);
    return 0;
}

/* The same, but the second address is one the router refuses: the first is the only one that can
 * be tried, and its attempt keeps the whole timeout. After the same 5 s jump of lwIP's clock the
 * client is still waiting (its connection neither reset nor closed), and another 4 s end it.
 * Guards the count of the addresses that share the time: counted by how many follow, a refused
 * one among them, the attempt got 4 s and the client was reset at the jump. */
TEST_IMPL(dial_addrs_silent_alone)
{
    static struct da d;
    da_timeout_ms = 8000;
    da_up(&d, "10.9.0.8", "10.99.0.1", 80);
    da_timeout_ms = 3000;
    struct v2s_cidr c;
    ASSERT_EQ(v2s_cidr_parse(&c, "10.99.0.0/16", 1), 0);
    ASSERT_EQ(router_add_user(&d.router, &c, ROUTER_REJECT), 0);
    d.blackhole = 1;
    int fd = uvtest_connect(d.fport);
    for (int k = 0; k < 400 && d.syns == 0; k++)
        da_pump(&d);
    ASSERT_EQ(d.syns, 1);
    harness_tun_advance(&d.tun, 5000);
    for (int k = 0; k < 20; k++)
        da_pump(&d);
    ASSERT_EQ(uvtest_wait_end(&d.tun.loop, fd, NULL, 1), 0); /* still waiting */
    harness_tun_advance(&d.tun, 4000);
    int end = 0;
    for (int k = 0; k < 400 && end == 0; k++) {
        da_pump(&d);
        end = uvtest_wait_end(&d.tun.loop, fd, NULL, 1);
    }
    ASSERT_EQ(end, -ECONNRESET);
    close(fd);
    da_down(&d);
    return 0;
}

/* Every address refuses: the client's connection is reset once the last has been tried, with one
 * line naming the failure; the forward goes on serving. Never failed: a guard of the end of the
 * list and of the retry's bookkeeping (run under ASan). */
TEST_IMPL(dial_addrs_all_refused)
{
    static struct da d;
    uint16_t closed_port = uvtest_closed_port();
    da_up(&d, "10.9.0.8", "127.0.0.2", closed_port);
    int saved = v2s_log_level;
    v2s_log_level = V2S_LOG_INFO;
    uvtest_log_begin();
    int fd = uvtest_connect(d.fport);
    int end = 0;
    for (int k = 0; k < 400 && end == 0; k++) {
        da_pump(&d);
        end = uvtest_wait_end(&d.tun.loop, fd, NULL, 1);
    }
    const char *log = uvtest_log_end();
    v2s_log_level = saved;
    ASSERT_EQ(end, -ECONNRESET);
    close(fd);
    ASSERT_EQ(d.syns, 1);
    char want[160];
    snprintf(want, sizeof(want),
             " -> multi.example.com:%u: connection refused (forward 127.0.0.1:%u, connection reset)", closed_port,
             d.fport);
    ASSERT(strstr(log, want) != NULL);
    ASSERT_EQ(d.stats.total[ROUTER_TUNNEL], 1);
    ASSERT_EQ(d.stats.total[ROUTER_DIRECT], 0);
    ASSERT_EQ(d.stats.open, 0);
    da_down(&d);
    return 0;
}

/* A forward closed while a dial waits to try its next address (the reset of the first has come,
 * the retry has not run): the client is reset, nothing more is dialed, and every handle closes.
 * Never failed: a guard of the retry's cancel. */
TEST_IMPL(dial_addrs_close_between_attempts)
{
    static struct da d;
    uint16_t port;
    int l = uvtest_listen(&port);
    da_up(&d, "10.9.0.8", "127.0.0.1", port);
    int fd = uvtest_connect(d.fport);
    for (int k = 0; k < 400 && d.syns == 0; k++)
        da_pump(&d);
    ASSERT_EQ(d.syns, 1);
    ASSERT_EQ(d.n_answers, 1); /* the reset, not injected yet */
    /* Into the stack without running the loop (harness_tun_inject() would): the dial has its
     * reset and waits on the retry, which would run on the next turn of the loop. */
    stack_input(d.tun.stack, d.answers[0], d.answer_len[0]);
    d.n_answers = 0;
    port_forward_close(d.pf, da_closed, &d);
    ASSERT_EQ(uvtest_wait_end(&d.tun.loop, fd, NULL, 3000), -ECONNRESET);
    close(fd);
    int never = 0;
    uvtest_run_until(&d.tun.loop, &never, 20);
    ASSERT_EQ(accept(l, NULL, NULL), -1); /* the second address was never dialed */
    close(l);
    outbound_close(d.dialer, da_closed, &d);
    outbound_close(d.via, da_closed, &d);
    outbound_close(d.direct, da_closed, &d);
    ASSERT(uvtest_run_until_fn(&d.tun.loop, da_all_closed, &d, 3000));
    router_free(&d.router);
    ASSERT_EQ(harness_tun_down(&d.tun), 0);
    return 0;
}

struct da_dial {
    int done;
    int status;
};

static void da_dialed(void *arg, struct outbound_conn *c, int status, const struct v2s_addr *bound, uint16_t port)
{
    struct da_dial *r = arg;
    (void)bound;
    (void)port;
    ASSERT(c == NULL); /* every connect here is refused */
    r->done = 1;
    r->status = status;
}

/* A destination given as an IPv4-mapped IPv6 address (a SOCKS client on a dual-stack socket, -L
 * [::ffff:10.9.0.8]:80) is the IPv4 host the router judges it to be: its connection goes into
 * the tunnel as IPv4 (a SYN to 10.9.0.8, refused here). Failed before the fix: the tunnel's path
 * was asked for an IPv6 destination it cannot carry, and the connect failed at once with
 * "network unreachable" and no SYN. */
TEST_IMPL(dial_addrs_mapped_v4)
{
    static struct da d;
    da_up(&d, "10.9.0.8", "127.0.0.1", 80);
    struct v2s_addr mapped;
    ASSERT_EQ(v2s_addr_parse(&mapped, "::ffff:10.9.0.8"), 0);
    ASSERT_EQ(mapped.family, AF_INET6);
    struct da_dial r = {0};
    struct outbound_conn *conn = NULL;
    int rc = outbound_connect(d.dialer, NULL, &mapped, 80, 3000, da_dialed, &r, &conn);
    if (rc < 0) {
        r.done = 1;
        r.status = rc;
    }
    for (int k = 0; k < 400 && !r.done; k++)
        da_pump(&d);
    ASSERT(r.done);
    ASSERT_EQ(d.syns, 1);
    ASSERT_EQ(r.status, UV_ECONNREFUSED);
    ASSERT_EQ(d.stats.total[ROUTER_TUNNEL], 1);
    da_down(&d);
    return 0;
}

static void da_udp_recv(void *arg, const struct v2s_addr *from, uint16_t port, const uint8_t *data, size_t len)
{
    (void)arg;
    (void)from;
    (void)port;
    (void)data;
    (void)len;
}

/* The same for a datagram (the SOCKS UDP relay, -L/udp): to ::ffff:10.9.0.8 it goes into the
 * tunnel to 10.9.0.8. Failed before the fix: UV_ENETUNREACH at once, nothing sent. */
TEST_IMPL(dial_addrs_mapped_v4_udp)
{
    static struct da d;
    da_up(&d, "10.9.0.8", "127.0.0.1", 80);
    struct v2s_addr mapped;
    ASSERT_EQ(v2s_addr_parse(&mapped, "::ffff:10.9.0.8"), 0);
    struct outbound_udp *u = NULL;
    ASSERT_EQ(outbound_udp_open(d.dialer, da_udp_recv, &d, &u), 0);
    ASSERT_EQ(outbound_udp_send(u, NULL, &mapped, 5353, (const uint8_t *)"q", 1), 0);
    da_pump(&d);
    ASSERT_EQ(d.datagrams, 1);
    char to[V2S_ADDR_STRLEN];
    ASSERT_STR_EQ(v2s_addr_format(&d.datagram_dst, to, sizeof(to)), "10.9.0.8");
    outbound_udp_close(u);
    da_down(&d);
    return 0;
}
