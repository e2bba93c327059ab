/* DNS through the tunnel. Each lookup has its own UDP pcb (a fresh random source port) and sends
 * an A query, plus AAAA when the tunnel has IPv6, to one server at a time. Timers: one per lookup,
 * RESOLVER_TIMEOUT_MS per attempt, RESOLVER_ATTEMPTS attempts rotating through the servers; a
 * lookup that has addresses for one question when the timer fires is done.
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
#include "lwip/timeouts.h"
#include "lwip/udp.h"
#include "stack/dnsmsg.h"
#include "stack/internal.h"

enum {
    RESOLVER_TIMEOUT_MS = 2000,
    RESOLVER_ATTEMPTS = 4,
    RESOLVER_MAX_CANDIDATES = 8,
    RESOLVER_MAX_MSG = 4096,
    RESOLVER_DNS_PORT = 53,
};

enum resolver_sub_state {
    RESOLVER_SUB_WAITING,
    RESOLVER_SUB_ANSWERED, /* NOERROR, with or without addresses */
    RESOLVER_SUB_NXDOMAIN,
    RESOLVER_SUB_FAILED,   /* SERVFAIL, REFUSED, truncated... */
};

/* One question (A or AAAA) of the current candidate name. */
struct resolver_sub {
    uint16_t qtype;
    uint16_t id;
    enum resolver_sub_state state;
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
};

static void resolver_timeout(void *arg);

static void resolver_free(struct resolver_query *q)
{
    sys_untimeout(resolver_timeout, q);
    if (q->pcb) {
        udp_recv(q->pcb, NULL, NULL);
        udp_remove(q->pcb);
    }
    v2s_list_remove(&q->node);
    for (size_t i = 0; i < q->n_cands; i++)
        free(q->cands[i]);
    free(q);
}

static void resolver_finish(struct resolver_query *q, int status)
{
    struct stack *s = q->s;
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

static void resolver_send(struct resolver_query *q)
{
    struct stack *s = q->s;
    const struct v2s_addr *server = &s->dns[q->server % s->n_dns];
    uint8_t msg[DNSMSG_MAX_UDP];
    ip_addr_t ip;
    stack_addr_to_lwip(server, &ip);
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
    q->n_sub = 0;
    q->sub[q->n_sub++] = (struct resolver_sub){.qtype = DNSMSG_TYPE_A};
    if (stack_has_family(q->s, AF_INET6))
        q->sub[q->n_sub++] = (struct resolver_sub){.qtype = DNSMSG_TYPE_AAAA};
    for (size_t i = 0; i < q->n_sub; i++)
        q->sub[i].id = (uint16_t)stack_random();
    q->attempt = 0;
    resolver_send(q);
}

/* Every question of this candidate has an answer: succeed, move on, or give up. */
static void resolver_candidate_done(struct resolver_query *q)
{
    int failed = 0;
    for (size_t i = 0; i < q->n_sub; i++) {
        if (q->sub[i].state == RESOLVER_SUB_WAITING)
            return;
        if (q->sub[i].state == RESOLVER_SUB_FAILED)
            failed = 1;
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
        resolver_start_candidate(q);
        return;
    }
    resolver_finish(q, failed ? UV_EAI_AGAIN : UV_EAI_NONAME);
}

static void resolver_timeout(void *arg)
{
    struct resolver_query *q = arg;
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

static void resolver_on_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr,
                             u16_t port)
{
    struct resolver_query *q = arg;
    static uint8_t msg[RESOLVER_MAX_MSG];
    (void)pcb;
    size_t len = p->tot_len < sizeof(msg) ? p->tot_len : sizeof(msg);
    pbuf_copy_partial(p, msg, (u16_t)len, 0);
    pbuf_free(p);
    /* Only answers from one of the tunnel's DNS servers count. */
    struct v2s_addr from;
    stack_addr_from_lwip(addr, &from);
    int known = 0;
    for (size_t i = 0; i < q->s->n_dns; i++)
        known |= v2s_addr_equal(&q->s->dns[i], &from);
    if (!known || port != RESOLVER_DNS_PORT)
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
        if (ans.rcode == DNSMSG_RCODE_NXDOMAIN)
            sub->state = RESOLVER_SUB_NXDOMAIN;
        else if (ans.rcode != DNSMSG_RCODE_NOERROR || (ans.truncated && ans.n_addrs == 0))
            sub->state = RESOLVER_SUB_FAILED;
        else
            sub->state = RESOLVER_SUB_ANSWERED;
        for (size_t k = 0; k < ans.n_addrs && q->n_addrs < 2 * DNSMSG_MAX_ADDRS; k++)
            q->addrs[q->n_addrs++] = ans.addrs[k];
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
        if (dlen > 0) {
            int rc = resolver_add_candidate(q, name, d, dlen);
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
    q->server = stack_random() % s->n_dns;
    v2s_list_push_front(&s->queries, &q->node);
    resolver_start_candidate(q);
    *out = q;
    return 0;
}

void resolver_cancel(struct resolver_query *q)
{
    struct stack *s = q->s;
    resolver_free(q);
    stack_maybe_free(s);
}

void stack_resolver_abort_all(struct stack *s, int status)
{
    struct v2s_list *n;
    while ((n = v2s_list_first(&s->queries)) != NULL)
        resolver_finish(V2S_LIST_ENTRY(n, struct resolver_query, node), status);
}
