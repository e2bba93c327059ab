/* A SOCKS client's names through the routed outbound and the tunnel's DNS (route/dial.c over
 * stack/resolver.c): the real stack behind the fake tunnel of harness_tun.h, the test playing
 * the tunnel's DNS server, and a SOCKS listener on loopback whose outbound is the routed one.
 * What is checked is what a client sees: the SOCKS reply code for each outcome of the lookup. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "harness_tun.h"
#include "route/dial.h"
#include "route/direct.h"
#include "route/outbound.h"
#include "route/router.h"
#include "route/via_stack.h"
#include "socks/server.h"
#include "stack/dnsmsg.h"
#include "stack/resolver.h"
#include "stack/stack.h"
#include "test.h"
#include "tunnel/settings.h"
#include "uvtest.h"

enum {
    DD_PKT_MAX = 1500,
    DD_MAX_ASKED = 64,
};

struct dd {
    struct harness_tun tun;
    struct router router;
    struct outbound *via, *direct, *dialer;
    struct socks_server *srv;
    uint16_t port;
    int closed;
    /* The DNS server: the names it was asked, and its answers waiting for dd_answer(). */
    char asked[DD_MAX_ASKED][256];
    int n_asked;
    uint8_t answers[DD_MAX_ASKED][DD_PKT_MAX];
    size_t answer_len[DD_MAX_ASKED];
    int n_answers;
    int syn53, syn_other; /* TCP SYNs the stack sent: to port 53, to any other */
    int refuse53;         /* a SYN to port 53 is answered with a reset */
};

/* Plays the tunnel's DNS server over UDP: svc.example.com is 10.9.0.8, tc.example.com is
 * answered truncated (TC, nothing in it: ask over TCP), tcaddr.example.com truncated with
 * 10.9.0.8 in it, every other name is NXDOMAIN. Counts the TCP SYNs the stack sends, by
 * destination port; with refuse53, answers one to port 53 with a reset. */
static void dd_on_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct dd *d = t->arg;
    struct v2s_addr src, dst;
    uint16_t sport, dport;
    const uint8_t *m;
    size_t n;
    if (len >= 40 && pkt[0] == 0x45 && pkt[9] == 6 && (pkt[33] & 0x12) == 0x02) {
        uint16_t port = (uint16_t)(pkt[22] << 8 | pkt[23]);
        if (port != 53) {
            d->syn_other++;
            return;
        }
        d->syn53++;
        if (d->refuse53) {
            struct v2s_addr from, to;
            from.family = to.family = AF_INET;
            memcpy(from.bytes, pkt + 16, 4);
            memcpy(to.bytes, pkt + 12, 4);
            uint32_t seq = (uint32_t)pkt[24] << 24 | (uint32_t)pkt[25] << 16 | (uint32_t)pkt[26] << 8 | pkt[27];
            size_t plen = harness_tun_tcp4(d->answers[d->n_answers], DD_PKT_MAX, &from, 53, &to,
                                           (uint16_t)(pkt[20] << 8 | pkt[21]), 0x14, 0, seq + 1, 0, NULL, 0, NULL, 0);
            ASSERT(plen > 0);
            d->answer_len[d->n_answers++] = plen;
        }
        return;
    }
    if (!harness_tun_parse_udp(pkt, len, &src, &sport, &dst, &dport, &m, &n) || dport != 53)
        return;
    char name[256];
    uint16_t id, qtype;
    size_t qend = harness_tun_dns_question(m, n, name, sizeof(name), &id, &qtype);
    ASSERT(qend > 0 && d->n_asked < DD_MAX_ASKED);
    snprintf(d->asked[d->n_asked++], sizeof(d->asked[0]), "%s", name);
    uint8_t out[DD_PKT_MAX];
    struct v2s_addr a;
    ASSERT_EQ(v2s_addr_parse(&a, "10.9.0.8"), 0);
    int tcaddr = strcmp(name, "tcaddr.example.com") == 0;
    int known = tcaddr || strcmp(name, "svc.example.com") == 0, tc = tcaddr || strcmp(name, "tc.example.com") == 0;
    size_t alen = harness_tun_dns_answer(out, m, qend, id, known || tc ? DNSMSG_RCODE_NOERROR : DNSMSG_RCODE_NXDOMAIN,
                                         known ? &a : NULL);
    if (tc)
        out[2] |= 0x02;
    size_t plen = harness_tun_udp(d->answers[d->n_answers], DD_PKT_MAX, &dst, 53, &src, sport, out, alen);
    ASSERT(plen > 0);
    d->answer_len[d->n_answers++] = plen;
}

/* Injects the DNS server's answers held so far. */
static void dd_answer(struct dd *d)
{
    static uint8_t pkt[DD_PKT_MAX];
    int n = d->n_answers;
    d->n_answers = 0;
    for (int i = 0; i < n; i++) {
        memcpy(pkt, d->answers[i], d->answer_len[i]);
        harness_tun_inject(&d->tun, pkt, d->answer_len[i]);
    }
}

static void dd_closed(void *arg)
{
    ((struct dd *)arg)->closed++;
}

/* The tunnel up with one DNS server; the routed outbound (names to the tunnel's DNS: the router
 * has not seen the tunnel's settings) under a SOCKS listener on 127.0.0.1. */
static void dd_up(struct dd *d)
{
    memset(d, 0, sizeof(*d));
    const struct harness_tun_config cfg = {.addr4 = "10.8.0.2", .dns = {"10.9.0.53"}, .seed = 3};
    ASSERT_EQ(harness_tun_up(&d->tun, &cfg, dd_on_send, d), 0);
    router_init(&d->router);
    ASSERT_EQ(via_stack_new(&d->via, d->tun.stack), 0);
    ASSERT_EQ(direct_new(&d->direct, &d->tun.loop), 0);
    struct dial_config dcfg = {.loop = &d->tun.loop, .stack = d->tun.stack, .router = &d->router};
    dcfg.via[ROUTER_TUNNEL] = d->via;
    dcfg.via[ROUTER_DIRECT] = d->direct;
    ASSERT_EQ(dial_new(&d->dialer, &dcfg), 0);
    struct socks_server_config scfg = {
        .loop = &d->tun.loop,
        .out = d->dialer,
        .connect_timeout_ms = 3000,
        .handshake_timeout_ms = 3000,
    };
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(socks_server_new(&d->srv, &scfg, (const struct sockaddr *)&sin), 0);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    ASSERT_EQ(socks_server_local(d->srv, (struct sockaddr *)&ss, &sl), 0);
    d->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int dd_all_closed(void *arg)
{
    return ((struct dd *)arg)->closed == 4;
}

/* Closes everything dd_up() opened and checks that no handle is left. */
static void dd_down(struct dd *d)
{
    socks_server_close(d->srv, dd_closed, d);
    outbound_close(d->dialer, dd_closed, d);
    outbound_close(d->via, dd_closed, d);
    outbound_close(d->direct, dd_closed, d);
    ASSERT(uvtest_run_until_fn(&d->tun.loop, dd_all_closed, d, 3000));
    router_free(&d->router);
    ASSERT_EQ(harness_tun_down(&d->tun), 0);
}

static void dd_udp_recv(void *arg, const struct v2s_addr *from, uint16_t port, const uint8_t *data, size_t len)
{
    (void)arg;
    (void)from;
    (void)port;
    (void)data;
    (void)len;
    ASSERT(0); /* nothing answers here */
}

/* Sends a SOCKS5 greeting and a CONNECT to name:port (name as given, length byte and all) in
 * one write; returns the client's socket. */
static int dd_connect(struct dd *d, const char *name, uint16_t port)
{
    uint8_t req[300];
    size_t n = 0, len = strlen(name);
    ASSERT(len <= 255);
    memcpy(req, "\x05\x01\x00\x05\x01\x00\x03", 7);
    n = 7;
    req[n++] = (uint8_t)len;
    memcpy(req + n, name, len);
    n += len;
    req[n++] = (uint8_t)(port >> 8);
    req[n++] = (uint8_t)port;
    int fd = uvtest_connect(d->port);
    uvtest_send(&d->tun.loop, fd, req, n);
    return fd;
}

/* Reads the method choice and the reply; returns the reply code, and checks that the listener
 * closes the connection after a failure. */
static int dd_reply(struct dd *d, int fd)
{
    uint8_t m[2], rep[10];
    int end;
    ASSERT_EQ(uvtest_recv(&d->tun.loop, fd, m, 2, &end, 3000), 2);
    ASSERT_MEM_EQ(m, "\x05\x00", 2);
    ASSERT_EQ(uvtest_recv(&d->tun.loop, fd, rep, 10, &end, 3000), 10);
    ASSERT_EQ(rep[0], 5);
    if (rep[1] != 0)
        ASSERT_EQ(uvtest_wait_end(&d->tun.loop, fd, NULL, 3000), 1);
    return rep[1];
}

/* A name that cannot be asked of a DNS server (an empty label, one over 63 bytes, over 253
 * bytes in all, a lone dot) is a name that does not resolve: SOCKS reply 4 (host unreachable),
 * as for a name the server says does not exist, not 1 (general failure), which says the proxy
 * broke. No query leaves for any of them. The same through the host's resolver for a name that
 * is not UTF-8, and for a datagram to such a name. Failed before the fix: reply 1 for each bad
 * name (the UV_EINVAL of resolver_resolve() or uv_getaddrinfo() went to the client as it was). */
TEST_IMPL(dial_dns_bad_name_unreachable)
{
    static struct dd d;
    dd_up(&d);
    char label64[80], long_name[260];
    memset(label64, 'a', 64);
    snprintf(label64 + 64, sizeof(label64) - 64, ".example.com");
    /* 254 bytes of valid labels: one over what fits in a query. */
    memset(long_name, 'b', 254);
    for (size_t i = 50; i < 254; i += 51)
        long_name[i] = '.';
    long_name[254] = '\0';
    const char *bad[] = {"a..example.com", ".example.com", "example.com..", ".", label64, long_name};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int fd = dd_connect(&d, bad[i], 80);
        int rep = dd_reply(&d, fd);
        ASSERT_ROW(rep == 4, "%zu: reply %d", i, rep);
        close(fd);
    }
    ASSERT_EQ(d.n_asked, 0);
    /* A datagram to such a name is refused the same way (the UDP relay logs why). */
    struct outbound_udp *u = NULL;
    ASSERT_EQ(outbound_udp_open(d.dialer, dd_udp_recv, &d, &u), 0);
    ASSERT_EQ(outbound_udp_send(u, "a..example.com", NULL, 53, (const uint8_t *)"x", 1), UV_EAI_NONAME);
    outbound_udp_close(u);
    ASSERT_EQ(d.n_asked, 0);
    /* The server's NXDOMAIN gives the same reply. */
    int fd = dd_connect(&d, "nosuch.example.com", 80);
    int never = 0;
    uvtest_run_until(&d.tun.loop, &never, 20);
    ASSERT_EQ(d.n_asked, 1);
    ASSERT_STR_EQ(d.asked[0], "nosuch.example.com");
    dd_answer(&d);
    ASSERT_EQ(dd_reply(&d, fd), 4);
    close(fd);
    /* A tunnel without DNS servers: names go to the host's resolver, where libuv refuses a name
     * that is not UTF-8 (its IDNA conversion) before any lookup: the same reply. */
    struct tunnel_settings ts;
    tunnel_settings_init(&ts);
    ASSERT_EQ(router_set_tunnel(&d.router, &ts), 0);
    tunnel_settings_free(&ts);
    fd = dd_connect(&d, "a\xff.example.com", 80);
    ASSERT_EQ(dd_reply(&d, fd), 4);
    close(fd);
    ASSERT_EQ(d.n_asked, 1);
    dd_down(&d);
    return 0;
}

/* The OpenVPN client reconnects without a "down" (a ping-restart, the next remote) and comes up
 * with the same address but no DNS server, while a SOCKS client waits on a lookup whose query is
 * out: the lookup ends, the client gets reply 3 (network unreachable, as for a name asked while
 * the tunnel has no DNS), and the proxy goes on serving. Failed before the fix: the lookup's
 * next attempt took its server modulo zero servers, and the process died of SIGFPE. */
TEST_IMPL(dial_dns_reup_without_dns)
{
    static struct dd d;
    dd_up(&d);
    int fd = dd_connect(&d, "svc.example.com", 80);
    int never = 0;
    uvtest_run_until(&d.tun.loop, &never, 20);
    ASSERT_EQ(d.n_asked, 1);
    d.n_answers = 0; /* the server never answers */
    struct harness_tun_config again = {.addr4 = "10.8.0.2"};
    ASSERT_EQ(harness_tun_again(&d.tun, &again), 0);
    harness_tun_advance(&d.tun, 10000);
    ASSERT_EQ(dd_reply(&d, fd), 3);
    close(fd);
    ASSERT_EQ(d.n_asked, 1);
    /* The listener still answers: a name now fails at once. */
    fd = dd_connect(&d, "svc.example.com", 80);
    ASSERT_EQ(dd_reply(&d, fd), 3);
    close(fd);
    dd_down(&d);
    return 0;
}

/* A SOCKS client that goes away while its name resolves: nothing is dialled for it when the
 * answer comes later, whether its lookup waited on UDP or had gone over to TCP (a truncated
 * answer), and the listener serves the next client. Never failed: a guard (run under ASan)
 * for the cancel paths of the dial, the lookup and its TCP exchange. */
TEST_IMPL(dial_dns_client_leaves_mid_lookup)
{
    static struct dd d;
    dd_up(&d);
    int never = 0;
    /* Over UDP: the client resets before the answer. */
    int fd = dd_connect(&d, "svc.example.com", 80);
    uvtest_run_until(&d.tun.loop, &never, 20);
    ASSERT_EQ(d.n_asked, 1);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    uvtest_run_until(&d.tun.loop, &never, 20);
    dd_answer(&d);
    harness_tun_advance(&d.tun, 10000);
    ASSERT_EQ(d.syn_other, 0);
    /* Over TCP: the truncated answer sends the question to port 53 over TCP; the client goes
     * while that connection is still opening. */
    fd = dd_connect(&d, "tc.example.com", 80);
    uvtest_run_until(&d.tun.loop, &never, 20);
    ASSERT_EQ(d.n_asked, 2);
    dd_answer(&d);
    ASSERT_EQ(d.syn53, 1);
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    uvtest_run_until(&d.tun.loop, &never, 20);
    harness_tun_advance(&d.tun, 10000);
    ASSERT_EQ(d.syn53, 1);
    ASSERT_EQ(d.n_asked, 2);
    ASSERT_EQ(d.syn_other, 0);
    /* The next client is dialled: a SYN goes out for it. */
    fd = dd_connect(&d, "svc.example.com", 80);
    uvtest_run_until(&d.tun.loop, &never, 20);
    dd_answer(&d);
    ASSERT_EQ(d.syn_other, 1);
    close(fd);
    uvtest_run_until(&d.tun.loop, &never, 20);
    dd_down(&d);
    return 0;
}

/* A truncated answer that carries an address, and DNS over TCP that does not work: refused by a
 * reset, or never answered in the attempt's 2 s. The address the truncated answer carried is
 * taken and dialled, instead of the lookup failing with reply 4 after asking again and again.
 * Failed before the change: reply 4 after four exchanges refused (and after 8 s of silence). */
TEST_IMPL(dial_dns_truncated_tcp_fails)
{
    static struct dd d;
    dd_up(&d);
    int never = 0;
    d.refuse53 = 1;
    int fd = dd_connect(&d, "tcaddr.example.com", 80);
    uvtest_run_until(&d.tun.loop, &never, 20);
    ASSERT_EQ(d.n_asked, 1);
    for (int i = 0; i < 8 && d.n_answers > 0; i++)
        dd_answer(&d);
    ASSERT_EQ(d.syn_other, 1); /* the connect to 10.9.0.8:80 */
    ASSERT_EQ(d.syn53, 1);
    close(fd);
    uvtest_run_until(&d.tun.loop, &never, 20);
    /* Silence over TCP: the attempt's timer takes the address. */
    resolver_flush(d.tun.stack);
    d.refuse53 = 0;
    fd = dd_connect(&d, "tcaddr.example.com", 80);
    uvtest_run_until(&d.tun.loop, &never, 20);
    dd_answer(&d);
    ASSERT_EQ(d.syn53, 2);
    harness_tun_advance(&d.tun, 1900);
    ASSERT_EQ(d.syn_other, 1);
    harness_tun_advance(&d.tun, 200);
    ASSERT_EQ(d.syn_other, 2);
    ASSERT_EQ(d.n_asked, 2);
    close(fd);
    uvtest_run_until(&d.tun.loop, &never, 20);
    dd_down(&d);
    return 0;
}

/* Many clients at once, each with its own lookup, the answers coming back in the reverse order
 * of the questions: each client gets the outcome of its own name (a connect for the name that
 * exists, reply 4 for each that does not), none another's. Never failed: a guard. */
TEST_IMPL(dial_dns_many_lookups)
{
    static struct dd d;
    enum { N = 24 };
    dd_up(&d);
    int fds[N], never = 0;
    char name[64];
    for (int i = 0; i < N; i++) {
        if (i % 2)
            snprintf(name, sizeof(name), "nosuch%d.example.com", i);
        else
            snprintf(name, sizeof(name), "svc.example.com");
        fds[i] = dd_connect(&d, name, 80);
    }
    for (int i = 0; i < 100 && d.n_asked < N; i++)
        uvtest_run_until(&d.tun.loop, &never, 10);
    ASSERT_EQ(d.n_asked, N);
    static uint8_t pkt[DD_PKT_MAX];
    for (int i = d.n_answers - 1; i >= 0; i--) {
        memcpy(pkt, d.answers[i], d.answer_len[i]);
        harness_tun_inject(&d.tun, pkt, d.answer_len[i]);
    }
    d.n_answers = 0;
    uvtest_run_until(&d.tun.loop, &never, 20);
    ASSERT_EQ(d.syn_other, N / 2);
    for (int i = 1; i < N; i += 2)
        ASSERT_ROW(dd_reply(&d, fds[i]) == 4, "%d", i);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    uvtest_run_until(&d.tun.loop, &never, 20);
    dd_down(&d);
    return 0;
}
