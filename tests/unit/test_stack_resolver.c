/* stack/resolver.c, DNS through the tunnel, against a scripted DNS server behind the fake tunnel
 * (harness_tun.h): the real stack, lwIP and resolver on a real libuv loop, in virtual time. The
 * server answers each query the stack sends from its zone, or stays silent, or first sends the
 * answers a hostile host would (a wrong id, a wrong source address or port, garbage). Each test
 * counts the callbacks, checks what the queries looked like, and ends with no libuv handle open. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/bytes.h"
#include "harness_tun.h"
#include "stack/dnsmsg.h"
#include "stack/internal.h"
#include "stack/resolver.h"
#include "stack/stack.h"
#include "test.h"
#include "tunnel/settings.h"

enum {
    DNS_MAX_QUERIES = 64,
    DNS_MAX_PENDING = 16,
    DNS_PKT_MAX = 1500,
    DNS_TIMEOUT_MS = 2000, /* the resolver's per attempt (resolver.c) */
};

/* One name the server knows: its addresses, or an error code for it. */
struct dns_record {
    const char *name;
    int rcode;             /* DNSMSG_RCODE_*: NOERROR with the addresses below, or an error */
    const char *a;         /* an IPv4 address, or NULL */
    const char *aaaa;      /* an IPv6 address, or NULL */
};

/* A query as the server saw it. */
struct dns_query {
    char name[256];
    uint16_t id, qtype, sport;
    struct v2s_addr to;
};

enum dns_hostile {
    DNS_HOSTILE_WRONG_ID = 1,     /* the answer with another id, and another address */
    DNS_HOSTILE_WRONG_SERVER = 2, /* from an address that is not one of the tunnel's servers */
    DNS_HOSTILE_WRONG_PORT = 4,   /* from the server, but not from port 53 */
    DNS_HOSTILE_GARBAGE = 8,      /* the right id, then nonsense */
};

struct dns_server {
    struct harness_tun tun;
    const struct dns_record *zone;
    size_t n_zone;
    struct dns_query queries[DNS_MAX_QUERIES];
    size_t n_queries;
    unsigned silent;       /* drops this many queries before answering */
    unsigned silent_aaaa;  /* never answers AAAA */
    int hostile;           /* DNS_HOSTILE_* sent before each genuine answer */
    int genuine;           /* 0: only the hostile ones */
    uint8_t pending[DNS_MAX_PENDING][DNS_PKT_MAX];
    size_t pending_len[DNS_MAX_PENDING];
    size_t n_pending;
    /* The lookup's outcome. */
    int calls, status;
    struct v2s_addr addrs[8];
    size_t n_addrs;
    uint32_t done_ms;
};

static const char *const dns_servers[] = {"10.9.0.53", "10.9.1.53"};

/* Keeps a UDP packet from from:sport to the stack for dns_deliver(). */
static void dns_queue(struct dns_server *srv, const struct v2s_addr *from, uint16_t sport, const struct v2s_addr *to,
                      uint16_t dport, const uint8_t *msg, size_t n)
{
    ASSERT(srv->n_pending < DNS_MAX_PENDING);
    size_t len = harness_tun_udp4(srv->pending[srv->n_pending], DNS_PKT_MAX, from, sport, to, dport, msg, n);
    ASSERT(len > 0);
    srv->pending_len[srv->n_pending++] = len;
}

static void dns_on_send(struct harness_tun *t, const uint8_t *pkt, size_t len)
{
    struct dns_server *srv = t->arg;
    struct v2s_addr src, dst;
    uint16_t sport, dport;
    const uint8_t *m;
    size_t n;
    if (!harness_tun_parse_udp4(pkt, len, &src, &sport, &dst, &dport, &m, &n) || dport != 53)
        return;
    ASSERT(srv->n_queries < DNS_MAX_QUERIES);
    struct dns_query *q = &srv->queries[srv->n_queries++];
    size_t qend = harness_tun_dns_question(m, n, q->name, sizeof(q->name), &q->id, &q->qtype);
    ASSERT(qend > 0);
    q->sport = sport;
    q->to = dst;
    if (srv->silent > 0) {
        srv->silent--;
        return;
    }
    if (srv->silent_aaaa && q->qtype == DNSMSG_TYPE_AAAA)
        return;
    const struct dns_record *r = NULL;
    for (size_t i = 0; i < srv->n_zone; i++)
        if (strcmp(srv->zone[i].name, q->name) == 0)
            r = &srv->zone[i];
    int rcode = r ? r->rcode : DNSMSG_RCODE_NXDOMAIN;
    struct v2s_addr addr, *ans = NULL;
    const char *text = !r ? NULL : q->qtype == DNSMSG_TYPE_A ? r->a : r->aaaa;
    if (text && v2s_addr_parse(&addr, text) == 0)
        ans = &addr;
    uint8_t out[DNS_PKT_MAX];
    struct v2s_addr evil;
    ASSERT_EQ(v2s_addr_parse(&evil, q->qtype == DNSMSG_TYPE_A ? "6.6.6.6" : "fd66::6"), 0);
    if (srv->hostile & DNS_HOSTILE_WRONG_ID)
        dns_queue(srv, &dst, 53, &src, sport, out,
                  harness_tun_dns_answer(out, m, qend, (uint16_t)(q->id ^ 0x5A5A), 0, &evil));
    if (srv->hostile & DNS_HOSTILE_WRONG_SERVER) {
        struct v2s_addr other;
        ASSERT_EQ(v2s_addr_parse(&other, "10.9.0.54"), 0);
        dns_queue(srv, &other, 53, &src, sport, out, harness_tun_dns_answer(out, m, qend, q->id, 0, &evil));
    }
    if (srv->hostile & DNS_HOSTILE_WRONG_PORT)
        dns_queue(srv, &dst, 5353, &src, sport, out, harness_tun_dns_answer(out, m, qend, q->id, 0, &evil));
    if (srv->hostile & DNS_HOSTILE_GARBAGE) {
        size_t glen = harness_tun_dns_answer(out, m, qend, q->id, 0, &evil);
        out[glen - 12 - (evil.family == AF_INET ? 4 : 16) + 10] = 0xFF; /* rdlength past the end */
        dns_queue(srv, &dst, 53, &src, sport, out, glen);
    }
    if (srv->genuine)
        dns_queue(srv, &dst, 53, &src, sport, out, harness_tun_dns_answer(out, m, qend, q->id, rcode, ans));
}

/* Hands the stack what the server queued, and what that sets off, until nothing is left. */
static void dns_deliver(struct dns_server *srv)
{
    while (srv->n_pending > 0) {
        static uint8_t pkt[DNS_PKT_MAX];
        size_t len = srv->pending_len[0];
        memcpy(pkt, srv->pending[0], len);
        srv->n_pending--;
        memmove(srv->pending, srv->pending + 1, srv->n_pending * sizeof(srv->pending[0]));
        memmove(srv->pending_len, srv->pending_len + 1, srv->n_pending * sizeof(srv->pending_len[0]));
        harness_tun_inject(&srv->tun, pkt, len);
    }
}

/* Moves virtual time on by ms, delivering answers as they are queued. */
static void dns_run(struct dns_server *srv, uint32_t ms)
{
    dns_deliver(srv);
    for (uint32_t step = 0; step < ms; step += 100) {
        harness_tun_advance(&srv->tun, ms - step < 100 ? ms - step : 100);
        dns_deliver(srv);
    }
}

static void dns_resolved(void *arg, int status, const struct v2s_addr *addrs, size_t n)
{
    struct dns_server *srv = arg;
    srv->calls++;
    srv->status = status;
    srv->n_addrs = n < 8 ? n : 8;
    memcpy(srv->addrs, addrs, srv->n_addrs * sizeof(*addrs));
    srv->done_ms = srv->tun.now_ms;
}

static void dns_up(struct dns_server *srv, const struct dns_record *zone, size_t n_zone, const char *addr6,
                   const char *domains)
{
    memset(srv, 0, sizeof(*srv));
    srv->zone = zone;
    srv->n_zone = n_zone;
    srv->genuine = 1;
    struct harness_tun_config cfg = {.addr4 = "10.8.0.2", .addr6 = addr6, .domains = domains, .seed = 7};
    cfg.dns[0] = dns_servers[0];
    cfg.dns[1] = dns_servers[1];
    ASSERT_EQ(harness_tun_up(&srv->tun, &cfg, dns_on_send, srv), 0);
}

/* Starts a lookup of name; the first queries are out when it returns. */
static struct resolver_query *dns_lookup(struct dns_server *srv, const char *name)
{
    struct resolver_query *q = NULL;
    ASSERT_EQ(resolver_resolve(srv->tun.stack, name, dns_resolved, srv, &q), 0);
    ASSERT(q != NULL);
    return q;
}

static int dns_is(const struct v2s_addr *a, const char *text)
{
    struct v2s_addr b;
    return v2s_addr_parse(&b, text) == 0 && v2s_addr_equal(a, &b);
}

static const struct dns_record dns_zone[] = {
    {"www.example.com", DNSMSG_RCODE_NOERROR, "93.184.216.34", "2606:2800:220:1::248"},
    {"v4only.example.com", DNSMSG_RCODE_NOERROR, "192.0.2.7", NULL},
    {"intranet.lab.example", DNSMSG_RCODE_NOERROR, "10.1.2.3", NULL},
    {"broken.example.com", DNSMSG_RCODE_SERVFAIL, NULL, NULL},
};

/* An answer: A and AAAA asked at once (the tunnel has IPv6) of one of the tunnel's servers, from
 * a random high port to port 53; IPv4 first in the result; nothing open afterwards. */
TEST_IMPL(stack_resolver_answer)
{
    static struct dns_server srv;
    dns_up(&srv, dns_zone, ARRAY_SIZE(dns_zone), "fd00::2", NULL);
    dns_lookup(&srv, "www.example.com");
    ASSERT_EQ(srv.n_queries, 2);
    ASSERT_EQ(srv.queries[0].qtype, DNSMSG_TYPE_A);
    ASSERT_EQ(srv.queries[1].qtype, DNSMSG_TYPE_AAAA);
    for (size_t i = 0; i < 2; i++) {
        ASSERT_STR_EQ(srv.queries[i].name, "www.example.com");
        ASSERT(srv.queries[i].sport >= STACK_PORT_FIRST);
        ASSERT(dns_is(&srv.queries[i].to, dns_servers[0]) || dns_is(&srv.queries[i].to, dns_servers[1]));
    }
    ASSERT(srv.queries[0].id != srv.queries[1].id);
    ASSERT_EQ(srv.calls, 0);
    dns_run(&srv, 0);
    ASSERT_EQ(srv.calls, 1);
    ASSERT_EQ(srv.status, 0);
    ASSERT_EQ(srv.n_addrs, 2);
    ASSERT(dns_is(&srv.addrs[0], "93.184.216.34"));
    ASSERT(dns_is(&srv.addrs[1], "2606:2800:220:1::248"));
    /* Nothing more is sent and no callback runs again. */
    dns_run(&srv, 20000);
    ASSERT_EQ(srv.n_queries, 2);
    ASSERT_EQ(srv.calls, 1);
    ASSERT_EQ(harness_tun_down(&srv.tun), 0);
    return 0;
}

/* NXDOMAIN: a single label is tried with each search domain, then alone; the first name that
 * exists wins. A name nobody knows, under every candidate, is UV_EAI_NONAME at once (no
 * retries: NXDOMAIN is an answer). */
TEST_IMPL(stack_resolver_nxdomain)
{
    static struct dns_server srv;
    dns_up(&srv, dns_zone, ARRAY_SIZE(dns_zone), NULL, "corp.example lab.example");
    dns_lookup(&srv, "intranet");
    dns_run(&srv, 0);
    ASSERT_EQ(srv.calls, 1);
    ASSERT_EQ(srv.status, 0);
    ASSERT_EQ(srv.n_addrs, 1);
    ASSERT(dns_is(&srv.addrs[0], "10.1.2.3"));
    ASSERT_EQ(srv.n_queries, 2);
    ASSERT_STR_EQ(srv.queries[0].name, "intranet.corp.example");
    ASSERT_STR_EQ(srv.queries[1].name, "intranet.lab.example");

    srv.calls = 0;
    srv.n_queries = 0;
    dns_lookup(&srv, "nosuch.example.com");
    dns_run(&srv, 0);
    ASSERT_EQ(srv.calls, 1);
    ASSERT_EQ(srv.status, UV_EAI_NONAME);
    ASSERT_EQ(srv.n_addrs, 0);
    ASSERT_EQ(srv.n_queries, 3); /* as given, then with each search domain */
    ASSERT_STR_EQ(srv.queries[0].name, "nosuch.example.com");
    ASSERT_STR_EQ(srv.queries[1].name, "nosuch.example.com.corp.example");
    ASSERT_STR_EQ(srv.queries[2].name, "nosuch.example.com.lab.example");
    ASSERT(srv.tun.now_ms < 1000 + DNS_TIMEOUT_MS);
    ASSERT_EQ(harness_tun_down(&srv.tun), 0);
    return 0;
}

/* A silent server: after each 2 s the same question goes to the next server; an answer to the
 * retry is taken. All four attempts unanswered: UV_EAI_AGAIN after 8 s, and nothing after. A
 * server failure (SERVFAIL) is retried at the next server at once. */
TEST_IMPL(stack_resolver_timeout_retry)
{
    static struct dns_server srv;
    dns_up(&srv, dns_zone, ARRAY_SIZE(dns_zone), NULL, NULL);
    srv.silent = 1;
    dns_lookup(&srv, "v4only.example.com");
    dns_run(&srv, DNS_TIMEOUT_MS - 100);
    ASSERT_EQ(srv.calls, 0);
    ASSERT_EQ(srv.n_queries, 1);
    dns_run(&srv, 200);
    ASSERT_EQ(srv.n_queries, 2);
    ASSERT(!v2s_addr_equal(&srv.queries[0].to, &srv.queries[1].to));
    ASSERT_EQ(srv.queries[0].id, srv.queries[1].id); /* the same question again */
    ASSERT_EQ(srv.calls, 1);
    ASSERT_EQ(srv.status, 0);
    ASSERT(dns_is(&srv.addrs[0], "192.0.2.7"));
    ASSERT_EQ(srv.done_ms, 1000 + DNS_TIMEOUT_MS);

    srv.calls = 0;
    srv.n_queries = 0;
    srv.silent = 100;
    uint32_t start = srv.tun.now_ms;
    resolver_flush(srv.tun.stack); /* the answer above is cached */
    dns_lookup(&srv, "v4only.example.com");
    dns_run(&srv, 4 * DNS_TIMEOUT_MS + 5000);
    ASSERT_EQ(srv.calls, 1);
    ASSERT_EQ(srv.status, UV_EAI_AGAIN);
    ASSERT_EQ(srv.done_ms - start, 4 * DNS_TIMEOUT_MS);
    ASSERT_EQ(srv.n_queries, 4);
    for (size_t i = 1; i < 4; i++)
        ASSERT(!v2s_addr_equal(&srv.queries[i].to, &srv.queries[i - 1].to));

    srv.calls = 0;
    srv.n_queries = 0;
    srv.silent = 0;
    dns_lookup(&srv, "broken.example.com");
    dns_run(&srv, 0);
    ASSERT_EQ(srv.calls, 1);
    ASSERT_EQ(srv.status, UV_EAI_AGAIN);
    ASSERT_EQ(srv.n_queries, 4); /* each server failure asks the next server */
    ASSERT_EQ(harness_tun_down(&srv.tun), 0);
    return 0;
}

/* With IPv6, a server that never answers AAAA: the A answer is enough once the attempt's timer
 * fires, and it is not given up for lack of AAAA. */
TEST_IMPL(stack_resolver_aaaa_silent)
{
    static struct dns_server srv;
    dns_up(&srv, dns_zone, ARRAY_SIZE(dns_zone), "fd00::2", NULL);
    srv.silent_aaaa = 1;
    dns_lookup(&srv, "www.example.com");
    dns_run(&srv, DNS_TIMEOUT_MS - 100);
    ASSERT_EQ(srv.calls, 0);
    dns_run(&srv, 200);
    ASSERT_EQ(srv.calls, 1);
    ASSERT_EQ(srv.status, 0);
    ASSERT_EQ(srv.n_addrs, 1);
    ASSERT(dns_is(&srv.addrs[0], "93.184.216.34"));
    ASSERT_EQ(harness_tun_down(&srv.tun), 0);
    return 0;
}

/* Hostile answers before the genuine one: a wrong id, the right id from an address that is not
 * one of the tunnel's DNS servers or from a port other than 53, and a malformed message. None is
 * taken; the genuine answer is. Hostile answers alone end in UV_EAI_AGAIN, never in their
 * address. */
TEST_IMPL(stack_resolver_hostile)
{
    static struct dns_server srv;
    dns_up(&srv, dns_zone, ARRAY_SIZE(dns_zone), NULL, NULL);
    srv.hostile = DNS_HOSTILE_WRONG_ID | DNS_HOSTILE_WRONG_SERVER | DNS_HOSTILE_WRONG_PORT | DNS_HOSTILE_GARBAGE;
    dns_lookup(&srv, "v4only.example.com");
    ASSERT_EQ(srv.n_pending, 5);
    dns_run(&srv, 0);
    ASSERT_EQ(srv.calls, 1);
    ASSERT_EQ(srv.status, 0);
    ASSERT_EQ(srv.n_addrs, 1);
    ASSERT(dns_is(&srv.addrs[0], "192.0.2.7"));

    for (int h = DNS_HOSTILE_WRONG_ID; h <= DNS_HOSTILE_GARBAGE; h <<= 1) {
        srv.calls = 0;
        srv.n_queries = 0;
        srv.hostile = h;
        srv.genuine = 0;
        resolver_flush(srv.tun.stack);
        dns_lookup(&srv, "v4only.example.com");
        dns_run(&srv, 4 * DNS_TIMEOUT_MS + 1000);
        ASSERT_ROW(srv.calls == 1, "hostile %d", h);
        ASSERT_ROW(srv.status == UV_EAI_AGAIN, "hostile %d", h);
        ASSERT_ROW(srv.n_addrs == 0, "hostile %d", h);
    }
    ASSERT_EQ(harness_tun_down(&srv.tun), 0);
    return 0;
}

/* The tunnel goes down under a lookup: UV_ENETDOWN at once, and new lookups are refused until it
 * is up again. A cancelled lookup never calls back, and its answer arriving later is dropped.
 * Malformed names are refused before anything is sent. */
TEST_IMPL(stack_resolver_down_cancel)
{
    static struct dns_server srv;
    struct resolver_query *q;
    dns_up(&srv, dns_zone, ARRAY_SIZE(dns_zone), NULL, NULL);
    ASSERT_EQ(resolver_resolve(srv.tun.stack, "", dns_resolved, &srv, &q), UV_EINVAL);
    ASSERT_EQ(resolver_resolve(srv.tun.stack, "a..b", dns_resolved, &srv, &q), UV_EINVAL);
    ASSERT_EQ(srv.n_queries, 0);

    q = dns_lookup(&srv, "v4only.example.com");
    resolver_cancel(q);
    dns_run(&srv, 4 * DNS_TIMEOUT_MS);
    ASSERT_EQ(srv.calls, 0);
    ASSERT_EQ(srv.n_queries, 1);

    srv.silent = 100;
    dns_lookup(&srv, "v4only.example.com");
    stack_tunnel_down(srv.tun.stack);
    ASSERT_EQ(srv.calls, 1);
    ASSERT_EQ(srv.status, UV_ENETDOWN);
    ASSERT_EQ(resolver_resolve(srv.tun.stack, "v4only.example.com", dns_resolved, &srv, &q), UV_ENETDOWN);
    dns_run(&srv, 4 * DNS_TIMEOUT_MS);
    ASSERT_EQ(srv.calls, 1);

    /* A lookup still running when the stack closes ends with UV_ENETDOWN too, and the stack
     * still frees everything. */
    struct tunnel_settings ts;
    tunnel_settings_init(&ts);
    ASSERT_EQ(v2s_addr_parse(&ts.addr4, "10.8.0.2"), 0);
    ts.prefix4 = 24;
    ASSERT_EQ(v2s_addr_parse(&ts.dns[0], dns_servers[0]), 0);
    ts.n_dns = 1;
    ASSERT_EQ(stack_tunnel_up(srv.tun.stack, &ts), 0);
    tunnel_settings_free(&ts);
    dns_lookup(&srv, "v4only.example.com");
    ASSERT_EQ(srv.calls, 1);
    ASSERT_EQ(harness_tun_down(&srv.tun), 0);
    ASSERT_EQ(srv.calls, 2);
    ASSERT_EQ(srv.status, UV_ENETDOWN);
    return 0;
}
