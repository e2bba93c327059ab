/* DNS through the tunnel. Each lookup has its own UDP pcb (a fresh random source port) and sends
 * an A query, plus AAAA when the tunnel has IPv6, to one server at a time. Timers: one per lookup,
 * RESOLVER_TIMEOUT_MS per attempt, RESOLVER_ATTEMPTS attempts rotating through the servers; a
 * lookup that has addresses for one question when the timer fires is done.
 *
 * Servers: a lookup starts at the server with the fewest recent failures (ties: the first in the
 * tunnel's order, as resolv.conf does). A server that let an attempt time out without a word,
 * answered SERVFAIL/REFUSED, or was named by an ICMP error for the attempt's query (port or host
 * unreachable: the attempt ends at once) has one failure more; any other answer from it clears
 * them. A SERVFAIL/REFUSED from a server an earlier attempt asked, coming late, is that server's
 * failure and leaves the attempt at the server asked now running. Failures older than
 * RESOLVER_FORGET_MS are forgotten, so a server that came back is tried again. A server that let an
 * attempt go unanswered is named in one warning (dns_server_down), and in one info line
 * (dns_server_up) when it answers again: a line per change of its state, never per query, however
 * many lookups waited on it; forgetting its failures is no change.
 *
 * Truncated answers (TC): the same question goes to the same server over TCP (dnstcp.c) within the
 * attempt's time. When that exchange fails (a server or a firewall that refuses DNS over TCP) or
 * does not finish in time, the addresses the truncated answer did carry are taken, as a stub
 * resolver that ignores TC would: some addresses of a long list rather than none.
 *
 * Cache: the outcome of a lookup, by the name as asked, for the smallest TTL of the records used
 * (at most RESOLVER_MAX_TTL_S); a name that does not exist (NXDOMAIN, or no address of either
 * type) for the SOA's negative TTL (RFC 2308: the smaller of its TTL and MINIMUM, at most
 * RESOLVER_MAX_NEG_TTL_S), and not at all without an SOA. Failures (no answer, SERVFAIL) are never
 * cached. The cache and the failures are forgotten when the servers, the search domains or the
 * tunnel's address families change.
 *
 * Names are tried like a stub resolver with ndots 1: a name with a dot as given first, then with
 * each search domain; a single label with each search domain first, then as given; a trailing dot
 * means exactly this name. */
#include "stack/resolver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/list.h"
#include "base/log.h"
#include "lwip/pbuf.h"
#include "lwip/sys.h"
#include "lwip/timeouts.h"
#include "lwip/udp.h"
#include "stack/dnsmsg.h"
#include "stack/dnstcp.h"
#include "stack/internal.h"

enum {
    RESOLVER_TIMEOUT_MS = 2000,
    RESOLVER_ATTEMPTS = 4,
    RESOLVER_MAX_CANDIDATES = 8,
    RESOLVER_MAX_MSG = 4096,
    RESOLVER_DNS_PORT = 53,
    RESOLVER_FORGET_MS = 60 * 1000,
    RESOLVER_CACHE_SIZE = 256,
    RESOLVER_MAX_TTL_S = 3600,
    RESOLVER_MAX_NEG_TTL_S = 300,
    RESOLVER_CACHE_ADDRS = 8,
};

enum resolver_sub_state {
    RESOLVER_SUB_WAITING,
    RESOLVER_SUB_ANSWERED, /* NOERROR, with or without addresses */
    RESOLVER_SUB_NXDOMAIN,
    RESOLVER_SUB_FAILED,   /* SERVFAIL, REFUSED, TCP failed... */
    RESOLVER_SUB_TCP,      /* truncated over UDP: asked again over TCP */
};

/* One question (A or AAAA) of the current candidate name. */
struct resolver_sub {
    uint16_t qtype;
    uint16_t id;
    enum resolver_sub_state state;
    struct dnstcp *tcp;
    struct resolver_query *q;
    int has_partial;              /* asked over TCP after a truncated answer with addresses, ... */
    struct dnsmsg_answer partial; /* ... which is this, taken if the exchange fails */
};

struct resolver_cached {
    char name[256];        /* as asked, lowercased; "" for a free slot */
    uint32_t expires;      /* sys_now() */
    int status;            /* 0 or UV_EAI_NONAME */
    struct v2s_addr addrs[RESOLVER_CACHE_ADDRS];
    size_t n;
};

/* What the resolver remembers between lookups (struct stack's resolver). */
struct resolver_state {
    struct v2s_addr servers[TUNNEL_MAX_DNS]; /* the servers the memory is about */
    size_t n_servers;
    char *domains;
    int v6;
    unsigned fails[TUNNEL_MAX_DNS];
    uint32_t failed_at[TUNNEL_MAX_DNS];
    unsigned char down[TUNNEL_MAX_DNS]; /* logged as not answering, not yet as answering again */
    struct resolver_cached cache[RESOLVER_CACHE_SIZE];
};

struct resolver_query {
    struct stack *s;
    struct v2s_list node; /* on the stack's list of lookups */
    struct udp_pcb *pcb;
    char *cands[RESOLVER_MAX_CANDIDATES];
    size_t n_cands;
    size_t cand;
    struct resolver_sub sub[2];
    size_t n_sub;
    unsigned attempt;
    size_t server;
    struct v2s_addr addrs[2 * DNSMSG_MAX_ADDRS];
    size_t n_addrs;
    resolver_cb cb;
    void *arg;
    char key[256];      /* the name as asked, lowercased: the cache's key */
    int heard;          /* the server of this attempt answered something */
    uint32_t ttl;       /* smallest TTL of the addresses kept */
    uint32_t neg_ttl;   /* smallest negative TTL met */
    int neg_uncacheable; /* a negative answer came without an SOA */
    int cached_status;  /* from the cache: delivered by resolver_cached_fire() */
    int any_failed;     /* an earlier candidate ended in server failures, not in an answer */
};

static void resolver_timeout(void *arg);
static void resolver_cached_fire(void *arg);
static void resolver_take(struct resolver_query *q, struct resolver_sub *sub, const struct dnsmsg_answer *ans);

static uint32_t resolver_now(void)
{
    return sys_now();
}

static void resolver_sub_stop_tcp(struct resolver_sub *sub)
{
    if (sub->tcp) {
        dnstcp_cancel(sub->tcp);
        sub->tcp = NULL;
    }
}

static void resolver_free(struct resolver_query *q)
{
    sys_untimeout(resolver_timeout, q);
    sys_untimeout(resolver_cached_fire, q);
    for (size_t i = 0; i < q->n_sub; i++)
        resolver_sub_stop_tcp(&q->sub[i]);
    if (q->pcb) {
        udp_recv(q->pcb, NULL, NULL);
        udp_remove(q->pcb);
    }
    v2s_list_remove(&q->node);
    for (size_t i = 0; i < q->n_cands; i++)
        free(q->cands[i]);
    free(q);
}

/* The state for s's current servers, domains and families; made, or reset, as needed. NULL
 * without memory (then nothing is remembered). */
static struct resolver_state *resolver_state(struct stack *s)
{
    struct resolver_state *st = s->resolver;
    int v6 = stack_has_family(s, AF_INET6);
    const char *domains = s->domains ? s->domains : "";
    if (st && st->n_servers == s->n_dns && memcmp(st->servers, s->dns, s->n_dns * sizeof(s->dns[0])) == 0 &&
        st->v6 == v6 && strcmp(st->domains, domains) == 0)
        return st;
    char *d = strdup(domains);
    if (!d)
        return NULL;
    if (!st && !(st = malloc(sizeof(*st)))) {
        free(d);
        return NULL;
    }
    if (s->resolver)
        free(s->resolver->domains);
    memset(st, 0, sizeof(*st));
    st->n_servers = s->n_dns;
    memcpy(st->servers, s->dns, s->n_dns * sizeof(s->dns[0]));
    st->domains = d;
    st->v6 = v6;
    s->resolver = st;
    return st;
}

/* Index of server addr among the tunnel's, or -1. */
static int resolver_server_index(const struct stack *s, const struct v2s_addr *addr)
{
    for (size_t i = 0; i < s->n_dns; i++)
        if (v2s_addr_equal(&s->dns[i], addr))
            return (int)i;
    return -1;
}

static unsigned resolver_fails(struct resolver_state *st, size_t i, uint32_t now)
{
    if (st->fails[i] && (int32_t)(now - st->failed_at[i]) >= RESOLVER_FORGET_MS)
        st->fails[i] = 0;
    return st->fails[i];
}

/* Logs a change of the state of server (the index of addr), once: dns_server_down or
 * dns_server_up. */
static void resolver_log_server(struct resolver_state *st, size_t server, const struct v2s_addr *addr, int down)
{
    if (st->down[server] == down)
        return;
    st->down[server] = (unsigned char)down;
    char text[V2S_ADDR_STRLEN];
    v2s_addr_format(addr, text, sizeof(text));
    struct v2s_log_field f = V2S_LOG_TEXT("server", text);
    if (down)
        v2s_log_event(V2S_LOG_WARN, "dns_server_down", &f, 1, "resolver: DNS server %s is not answering", text);
    else
        v2s_log_event(V2S_LOG_INFO, "dns_server_up", &f, 1, "resolver: DNS server %s answers again", text);
}

/* ok: server answered; else it failed an attempt, silent (no answer in time, or an ICMP error)
 * or not (SERVFAIL, REFUSED: it answers, but no use). */
static void resolver_health(struct stack *s, size_t server, int ok, int silent)
{
    struct resolver_state *st = s->resolver;
    if (!st || server >= st->n_servers || server >= s->n_dns)
        return;
    if (ok) {
        st->fails[server] = 0;
    } else {
        st->fails[server]++;
        st->failed_at[server] = resolver_now();
    }
    resolver_log_server(st, server, &s->dns[server], !ok && silent);
}

/* The server a new lookup asks first. */
static size_t resolver_pick_server(struct stack *s)
{
    struct resolver_state *st = s->resolver;
    size_t best = 0;
    if (!st)
        return 0;
    uint32_t now = resolver_now();
    for (size_t i = 1; i < st->n_servers; i++)
        if (resolver_fails(st, i, now) < resolver_fails(st, best, now))
            best = i;
    return best;
}

static struct resolver_cached *resolver_cache_find(struct resolver_state *st, const char *key)
{
    uint32_t now = resolver_now();
    for (size_t i = 0; i < RESOLVER_CACHE_SIZE; i++) {
        struct resolver_cached *c = &st->cache[i];
        if (c->name[0] && (int32_t)(c->expires - now) > 0 && strcmp(c->name, key) == 0)
            return c;
    }
    return NULL;
}

/* Keeps the outcome of q for ttl seconds, in a free or expired slot, else the one that expires
 * first. */
static void resolver_cache_put(struct resolver_query *q, int status, uint32_t ttl)
{
    struct resolver_state *st = q->s->resolver;
    if (!st || ttl == 0 || !q->key[0])
        return;
    uint32_t now = resolver_now();
    struct resolver_cached *slot = &st->cache[0];
    for (size_t i = 0; i < RESOLVER_CACHE_SIZE; i++) {
        struct resolver_cached *c = &st->cache[i];
        if (!c->name[0] || (int32_t)(c->expires - now) <= 0 || strcmp(c->name, q->key) == 0) {
            slot = c;
            break;
        }
        if ((int32_t)(c->expires - slot->expires) < 0)
            slot = c;
    }
    snprintf(slot->name, sizeof(slot->name), "%s", q->key);
    slot->expires = now + ttl * 1000u;
    slot->status = status;
    slot->n = 0;
    /* IPv4 first, as resolver_finish() hands them out. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < q->n_addrs && slot->n < RESOLVER_CACHE_ADDRS; i++)
            if ((q->addrs[i].family == AF_INET) == (pass == 0))
                slot->addrs[slot->n++] = q->addrs[i];
}

void resolver_flush(struct stack *s)
{
    if (s->resolver)
        memset(s->resolver->cache, 0, sizeof(s->resolver->cache));
}

void stack_resolver_free(struct stack *s)
{
    if (s->resolver)
        free(s->resolver->domains);
    free(s->resolver);
    s->resolver = NULL;
}

static void resolver_finish(struct resolver_query *q, int status)
{
    struct stack *s = q->s;
    if (!q->cached_status) {
        if (status == 0)
            resolver_cache_put(q, 0, q->ttl < RESOLVER_MAX_TTL_S ? q->ttl : RESOLVER_MAX_TTL_S);
        else if (status == UV_EAI_NONAME && !q->neg_uncacheable)
            resolver_cache_put(q, status, q->neg_ttl < RESOLVER_MAX_NEG_TTL_S ? q->neg_ttl : RESOLVER_MAX_NEG_TTL_S);
    }
    if (status < 0)
        s->dns_failures++;
    resolver_cb cb = q->cb;
    void *arg = q->arg;
    struct v2s_addr addrs[2 * DNSMSG_MAX_ADDRS];
    size_t n = 0;
    /* IPv4 first: it is what every tunnel has. */
    for (size_t i = 0; i < q->n_addrs; i++)
        if (q->addrs[i].family == AF_INET)
            addrs[n++] = q->addrs[i];
    for (size_t i = 0; i < q->n_addrs; i++)
        if (q->addrs[i].family != AF_INET)
            addrs[n++] = q->addrs[i];
    resolver_free(q);
    cb(arg, status, addrs, n);
    stack_maybe_free(s);
}

/* The index of the server this attempt asks, among the tunnel's. */
static size_t resolver_server_now(const struct resolver_query *q)
{
    return q->s->n_dns ? q->server % q->s->n_dns : 0;
}

static void resolver_send(struct resolver_query *q)
{
    struct stack *s = q->s;
    if (s->n_dns == 0) {
        /* The tunnel came up again (a reconnect raises no "down") without DNS servers: as if
         * it had none when the lookup began. */
        resolver_finish(q, UV_ENETDOWN);
        return;
    }
    /* A server of a family the tunnel has no address of cannot be asked (openconnect lists IPv6
     * servers in INTERNAL_IP4_DNS whether or not the tunnel has IPv6): the next one is, at once.
     * Before, the query went nowhere and the lookup waited an attempt's time (2 s) for it, again
     * each time the failure was forgotten. When no server can be asked, it goes as before. */
    for (size_t k = 0; k < s->n_dns && !stack_has_family(s, s->dns[resolver_server_now(q)].family); k++)
        q->server++;
    const struct v2s_addr *server = &s->dns[resolver_server_now(q)];
    uint8_t msg[DNSMSG_MAX_UDP];
    ip_addr_t ip;
    stack_addr_to_lwip(server, &ip);
    q->heard = 0;
    for (size_t i = 0; i < q->n_sub; i++) {
        struct resolver_sub *sub = &q->sub[i];
        if (sub->state != RESOLVER_SUB_WAITING)
            continue;
        int len = dnsmsg_build_query(msg, sizeof(msg), sub->id, q->cands[q->cand], sub->qtype);
        if (len < 0)
            continue;
        struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_RAM);
        if (!p)
            continue;
        memcpy(p->payload, msg, (size_t)len);
        err_t e = udp_sendto(q->pcb, p, &ip, RESOLVER_DNS_PORT);
        pbuf_free(p);
        if (e != ERR_OK)
            v2s_debug("resolver: query to DNS server failed: %s", uv_strerror(stack_err_to_uv(e)));
    }
    sys_timeout(RESOLVER_TIMEOUT_MS, resolver_timeout, q);
}

/* Starts the questions for the current candidate name. */
static void resolver_start_candidate(struct resolver_query *q)
{
    for (size_t i = 0; i < q->n_sub; i++)
        resolver_sub_stop_tcp(&q->sub[i]);
    q->n_sub = 0;
    q->sub[q->n_sub++] = (struct resolver_sub){.qtype = DNSMSG_TYPE_A, .q = q};
    if (stack_has_family(q->s, AF_INET6))
        q->sub[q->n_sub++] = (struct resolver_sub){.qtype = DNSMSG_TYPE_AAAA, .q = q};
    for (size_t i = 0; i < q->n_sub; i++)
        q->sub[i].id = (uint16_t)stack_random();
    q->attempt = 0;
    resolver_send(q);
}

/* Every question of this candidate has an answer: succeed, move on, or give up. */
static void resolver_candidate_done(struct resolver_query *q)
{
    int failed = 0, nxdomain = 0;
    for (size_t i = 0; i < q->n_sub; i++) {
        if (q->sub[i].state == RESOLVER_SUB_WAITING || q->sub[i].state == RESOLVER_SUB_TCP)
            return;
        if (q->sub[i].state == RESOLVER_SUB_FAILED)
            failed = 1;
        if (q->sub[i].state == RESOLVER_SUB_NXDOMAIN)
            nxdomain = 1;
    }
    sys_untimeout(resolver_timeout, q);
    if (q->n_addrs > 0) {
        resolver_finish(q, 0);
        return;
    }
    if (failed && ++q->attempt < RESOLVER_ATTEMPTS) {
        /* A server failure: ask the next server the same questions. */
        for (size_t i = 0; i < q->n_sub; i++)
            if (q->sub[i].state == RESOLVER_SUB_FAILED)
                q->sub[i].state = RESOLVER_SUB_WAITING;
        q->server++;
        resolver_send(q);
        return;
    }
    if (++q->cand < q->n_cands) {
        /* A candidate the servers failed on may exist: a later one that does not (the bare label
         * under the root) does not make the name unknown, as glibc's search says TRY_AGAIN then.
         * One that either question called NXDOMAIN does not exist, whatever the other met (servers
         * that fail AAAA are common). */
        q->any_failed |= failed && !nxdomain;
        resolver_start_candidate(q);
        return;
    }
    resolver_finish(q, failed || q->any_failed ? UV_EAI_AGAIN : UV_EAI_NONAME);
}

static void resolver_timeout(void *arg)
{
    struct resolver_query *q = arg;
    if (!q->heard)
        resolver_health(q->s, resolver_server_now(q), 0, 1);
    /* An exchange over TCP that did not finish in the attempt's time is asked again, over UDP
     * first, of the next server. */
    for (size_t i = 0; i < q->n_sub; i++) {
        if (q->sub[i].state == RESOLVER_SUB_TCP) {
            resolver_sub_stop_tcp(&q->sub[i]);
            q->sub[i].state = RESOLVER_SUB_WAITING;
            if (q->sub[i].has_partial)
                resolver_take(q, &q->sub[i], &q->sub[i].partial);
        }
    }
    if (q->n_addrs > 0) {
        /* One question answered with addresses and the other silent (servers often drop AAAA):
         * what we have is good enough. */
        resolver_finish(q, 0);
        return;
    }
    if (++q->attempt >= RESOLVER_ATTEMPTS) {
        resolver_finish(q, UV_EAI_AGAIN);
        return;
    }
    q->server++;
    resolver_send(q);
}

/* Whether an answer says the server failed the question (SERVFAIL, REFUSED, ..., or truncated
 * with nothing in it) rather than answering it. */
static int resolver_answer_failed(const struct dnsmsg_answer *ans)
{
    return ans->rcode != DNSMSG_RCODE_NXDOMAIN &&
           (ans->rcode != DNSMSG_RCODE_NOERROR || (ans->truncated && ans->n_addrs == 0));
}

/* What an answer to sub says, from UDP or TCP; the health of the server that failed it is the
 * caller's. */
static void resolver_take(struct resolver_query *q, struct resolver_sub *sub, const struct dnsmsg_answer *ans)
{
    if (ans->rcode == DNSMSG_RCODE_NXDOMAIN)
        sub->state = RESOLVER_SUB_NXDOMAIN;
    else if (resolver_answer_failed(ans))
        sub->state = RESOLVER_SUB_FAILED;
    else
        sub->state = RESOLVER_SUB_ANSWERED;
    if (ans->n_addrs > 0) {
        if (q->n_addrs == 0 || ans->ttl < q->ttl)
            q->ttl = ans->ttl;
    } else if (sub->state != RESOLVER_SUB_FAILED) {
        /* NXDOMAIN or no address of this type: cacheable only with the zone's SOA. */
        if (!ans->has_soa)
            q->neg_uncacheable = 1;
        else if (q->neg_ttl == 0 || ans->neg_ttl < q->neg_ttl)
            q->neg_ttl = ans->neg_ttl;
        if (ans->has_soa && ans->neg_ttl == 0)
            q->neg_uncacheable = 1;
    }
    for (size_t k = 0; k < ans->n_addrs && q->n_addrs < 2 * DNSMSG_MAX_ADDRS; k++)
        q->addrs[q->n_addrs++] = ans->addrs[k];
}

static void resolver_tcp_answer(void *arg, int status, const uint8_t *msg, size_t len)
{
    struct resolver_sub *sub = arg;
    struct resolver_query *q = sub->q;
    sub->tcp = NULL;
    struct dnsmsg_answer ans;
    if (status == 0 &&
        dnsmsg_parse_answer(msg, len, sub->id, q->cands[q->cand], sub->qtype, &ans) == 0) {
        ans.truncated = 0; /* over TCP, what came is all there is */
        if (resolver_answer_failed(&ans)) /* the exchange ends with the attempt: its server */
            resolver_health(q->s, resolver_server_now(q), 0, 0);
        resolver_take(q, sub, &ans);
    } else {
        v2s_debug("resolver: DNS over TCP failed: %s", status < 0 ? uv_strerror(status) : "not the answer");
        sub->state = RESOLVER_SUB_FAILED;
        if (sub->has_partial)
            resolver_take(q, sub, &sub->partial);
    }
    resolver_candidate_done(q);
}

/* A truncated answer: the same question to the same server over TCP. 0, or -1 when it cannot
 * be asked (then the truncated answer counts as it is). */
static int resolver_ask_tcp(struct resolver_query *q, struct resolver_sub *sub, const struct v2s_addr *server)
{
    uint8_t msg[DNSMSG_MAX_UDP];
    int len = dnsmsg_build_query(msg, sizeof(msg), sub->id, q->cands[q->cand], sub->qtype);
    if (len < 0 || dnstcp_ask(q->s, server, msg, (size_t)len, resolver_tcp_answer, sub, &sub->tcp) < 0)
        return -1;
    sub->state = RESOLVER_SUB_TCP;
    return 0;
}

static void resolver_on_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr,
                             u16_t port)
{
    struct resolver_query *q = arg;
    static uint8_t msg[RESOLVER_MAX_MSG];
    (void)pcb;
    if (!stack_udp_length_ok(p)) {
        pbuf_free(p);
        return;
    }
    size_t len = p->tot_len < sizeof(msg) ? p->tot_len : sizeof(msg);
    pbuf_copy_partial(p, msg, (u16_t)len, 0);
    pbuf_free(p);
    /* Only answers from one of the tunnel's DNS servers count. */
    struct v2s_addr from;
    stack_addr_from_lwip(addr, &from);
    int idx = resolver_server_index(q->s, &from);
    if (idx < 0 || port != RESOLVER_DNS_PORT)
        return;
    for (size_t i = 0; i < q->n_sub; i++) {
        struct resolver_sub *sub = &q->sub[i];
        if (sub->state != RESOLVER_SUB_WAITING)
            continue;
        struct dnsmsg_answer ans;
        int rc = dnsmsg_parse_answer(msg, len, sub->id, q->cands[q->cand], sub->qtype, &ans);
        if (rc == -ENOENT)
            continue;
        if (rc < 0) {
            char shown[128]; /* the name came from a proxy client */
            v2s_debug("resolver: malformed answer for %s ignored", v2s_shown(q->cands[q->cand], shown, sizeof(shown)));
            return;
        }
        int current = (size_t)idx == resolver_server_now(q);
        if (current)
            q->heard = 1;
        int failed = ans.rcode != DNSMSG_RCODE_NOERROR && ans.rcode != DNSMSG_RCODE_NXDOMAIN;
        resolver_health(q->s, (size_t)idx, !failed, 0);
        if (failed && !current) {
            /* A server asked in an earlier attempt failed late: that is its failure, and the
             * server asked now is still waited for. Before, the failure counted against the
             * server asked now, which the next lookups then avoided, and ended its attempt at
             * once. */
            return;
        }
        if (ans.truncated && ans.rcode == DNSMSG_RCODE_NOERROR) {
            sub->has_partial = ans.n_addrs > 0;
            if (sub->has_partial)
                sub->partial = ans;
            if (resolver_ask_tcp(q, sub, &from) == 0)
                break;
        }
        resolver_take(q, sub, &ans);
        break;
    }
    resolver_candidate_done(q);
}

/* Adds name (with domain appended when given) to the names to try, unless it cannot be put in a
 * query (a label over 63 bytes, too long with the domain): such a name is skipped. */
static int resolver_add_candidate(struct resolver_query *q, const char *name, const char *domain,
                                  size_t dlen)
{
    if (q->n_cands >= RESOLVER_MAX_CANDIDATES)
        return 0;
    size_t nlen = strlen(name);
    char *c = malloc(nlen + dlen + 2);
    if (!c)
        return UV_ENOMEM;
    memcpy(c, name, nlen);
    if (domain) {
        c[nlen] = '.';
        memcpy(c + nlen + 1, domain, dlen);
        c[nlen + 1 + dlen] = '\0';
    } else {
        c[nlen] = '\0';
    }
    uint8_t probe[DNSMSG_MAX_UDP];
    if (dnsmsg_build_query(probe, sizeof(probe), 0, c, DNSMSG_TYPE_A) < 0) {
        free(c);
        return 0;
    }
    q->cands[q->n_cands++] = c;
    return 0;
}

/* Binds the query's pcb to a random high port, so an off-path attacker must guess the port as
 * well as the 16-bit id. */
static void resolver_bind_random(struct udp_pcb *pcb)
{
    for (int i = 0; i < STACK_PORT_TRIES; i++) {
        if (udp_bind(pcb, IP_ANY_TYPE, stack_random_port()) == ERR_OK)
            return;
    }
}

static int resolver_add_searched(struct resolver_query *q, const char *name, const char *domains)
{
    const char *d = domains;
    while (d && *d) {
        d += strspn(d, " ,");
        size_t dlen = strcspn(d, " ,");
        /* ".corp.example" is "corp.example", as the router reads it; the root (".") adds no
         * candidate, the name as given is one already. */
        size_t skip = strspn(d, ".");
        skip = skip < dlen ? skip : dlen;
        if (dlen > skip) {
            int rc = resolver_add_candidate(q, name, d + skip, dlen - skip);
            if (rc < 0)
                return rc;
        }
        d += dlen;
    }
    return 0;
}

int resolver_resolve(struct stack *s, const char *name, resolver_cb cb, void *arg,
                     struct resolver_query **out)
{
    size_t len = strlen(name);
    if (len == 0 || len > 253 || strstr(name, ".."))
        return UV_EINVAL;
    if (!s->up || s->closing || s->n_dns == 0)
        return UV_ENETDOWN;
    struct resolver_query *q = calloc(1, sizeof(*q));
    if (!q)
        return UV_ENOMEM;
    q->s = s;
    v2s_list_init(&q->node);
    q->cb = cb;
    q->arg = arg;
    for (size_t i = 0; i <= len; i++)
        q->key[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] + ('a' - 'A')) : name[i];
    struct resolver_state *st = resolver_state(s);
    struct resolver_cached *hit = st ? resolver_cache_find(st, q->key) : NULL;
    s->dns_queries++;
    if (hit) {
        s->dns_cache_hits++;
        /* The callback must not run before this call returns: a zero timeout delivers it. */
        q->cached_status = hit->status < 0 ? hit->status : 1;
        q->n_addrs = hit->n;
        memcpy(q->addrs, hit->addrs, hit->n * sizeof(hit->addrs[0]));
        v2s_list_push_front(&s->queries, &q->node);
        sys_timeout(0, resolver_cached_fire, q);
        *out = q;
        return 0;
    }
    int rc = 0;
    if (name[len - 1] == '.') {
        char exact[254];
        memcpy(exact, name, len - 1);
        exact[len - 1] = '\0';
        rc = resolver_add_candidate(q, exact, NULL, 0);
    } else if (strchr(name, '.')) {
        rc = resolver_add_candidate(q, name, NULL, 0);
        if (rc == 0)
            rc = resolver_add_searched(q, name, s->domains);
    } else {
        rc = resolver_add_searched(q, name, s->domains);
        if (rc == 0)
            rc = resolver_add_candidate(q, name, NULL, 0);
    }
    if (rc == 0 && q->n_cands == 0)
        rc = UV_EINVAL;
    q->pcb = rc == 0 ? udp_new_ip_type(IPADDR_TYPE_ANY) : NULL;
    if (!q->pcb) {
        for (size_t i = 0; i < q->n_cands; i++)
            free(q->cands[i]);
        free(q);
        return rc < 0 ? rc : UV_ENOMEM;
    }
    resolver_bind_random(q->pcb);
    udp_recv(q->pcb, resolver_on_recv, q);
    q->server = resolver_pick_server(s);
    v2s_list_push_front(&s->queries, &q->node);
    resolver_start_candidate(q);
    *out = q;
    return 0;
}

static void resolver_cached_fire(void *arg)
{
    struct resolver_query *q = arg;
    char shown[128];
    v2s_debug("resolver: %s from the cache", v2s_shown(q->key, shown, sizeof(shown)));
    resolver_finish(q, q->cached_status < 0 ? q->cached_status : 0);
}

void resolver_cancel(struct resolver_query *q)
{
    struct stack *s = q->s;
    resolver_free(q);
    stack_maybe_free(s);
}

int stack_resolver_icmp_error(struct stack *s, const struct v2s_addr *src, const struct v2s_addr *dst,
                              uint16_t sport, uint16_t dport)
{
    struct v2s_addr ours;
    if (dport != RESOLVER_DNS_PORT || stack_tunnel_addr(s, src->family, &ours) != 0 || !v2s_addr_equal(&ours, src))
        return -1;
    struct v2s_list *n;
    V2S_LIST_FOREACH(n, &s->queries) {
        struct resolver_query *q = V2S_LIST_ENTRY(n, struct resolver_query, node);
        if (!q->pcb || q->pcb->local_port != sport || s->n_dns == 0 ||
            !v2s_addr_equal(&s->dns[resolver_server_now(q)], dst))
            continue;
        /* The server of this attempt cannot be reached, or does not serve DNS: the attempt is
         * over now rather than at its timer, as a stub resolver moves on at ECONNREFUSED. */
        sys_untimeout(resolver_timeout, q);
        q->heard = 0;
        resolver_timeout(q);
        return 0;
    }
    return -1;
}

void stack_resolver_tunnel_back(struct stack *s)
{
    /* Only sends, which call nothing back (a tunnel without DNS servers now is left to the
     * attempt's timer, whose resolver_send() ends the lookup): the walk is safe. */
    if (s->n_dns == 0)
        return;
    struct v2s_list *n;
    V2S_LIST_FOREACH(n, &s->queries) {
        struct resolver_query *q = V2S_LIST_ENTRY(n, struct resolver_query, node);
        if (q->cached_status || !q->pcb)
            continue;
        sys_untimeout(resolver_timeout, q);
        resolver_send(q);
    }
}

void stack_resolver_abort_all(struct stack *s, int status)
{
    struct v2s_list *n;
    while ((n = v2s_list_first(&s->queries)) != NULL)
        resolver_finish(V2S_LIST_ENTRY(n, struct resolver_query, node), status);
}
