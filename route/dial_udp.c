/* dial's datagrams: a routed UDP association (route/dial_internal.h), split from dial.c, which
 * routes TCP connections the same way. */
#include "route/dial_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/list.h"
#include "base/log.h"
#include "route/listener.h"
#include "route/outbound.h"
#include "stack/resolver.h"
#include "stack/stack.h"

/* --- datagrams ---
 *
 * A routed association sends each datagram where the router says its destination goes, through
 * an association of that outbound (the tunnel's, the direct one) opened on the first datagram
 * that needs it; answers from both come out of the one recv. A destination given by name is
 * resolved as dial_connect() resolves (split DNS: dial_name_route()), and
 * the answer kept per association for DIAL_UDP_NAME_LIFE_MS (a failure for DIAL_UDP_FAIL_LIFE_MS),
 * so a flow of datagrams costs one lookup a minute. While names resolve, at most
 * DIAL_UDP_WAITING datagrams of the association wait (copied); more are dropped. A rejected
 * destination, an address or a name (--others reject), is UV_EACCES, and one to go direct that
 * is one of this process's own UDP sockets (a -L .../udp forward's, a SOCKS relay's) UV_ELOOP;
 * both are logged once per association and destination (DIAL_UDP_LOGGED of them; after that,
 * silently). */
enum {
    DIAL_UDP_NAMES = 8,
    DIAL_UDP_ADDRS = 4,
    DIAL_UDP_NAME_LIFE_MS = 60 * 1000,
    DIAL_UDP_FAIL_LIFE_MS = 5 * 1000,
    DIAL_UDP_WAITING = 8,
    DIAL_UDP_LOGGED = 32,
    DIAL_UDP_NAME_MAX = 255,
};

struct dial_udp_name {
    char name[DIAL_UDP_NAME_MAX + 1]; /* "" for a free slot */
    uint64_t expires;                 /* uv_now() */
    int status;                       /* 0, or why the name did not resolve */
    struct v2s_addr addrs[DIAL_UDP_ADDRS];
    size_t n;
};

struct dial_udp_waiting {
    struct v2s_list node; /* on its lookup's waiting */
    uint16_t port;
    size_t len;
    uint8_t data[];
};

struct dial_udp_lookup {
    struct dial_udp *u;   /* NULL once the association ended under a host lookup */
    struct v2s_list node; /* on u->lookups */
    char name[DIAL_UDP_NAME_MAX + 1];
    struct resolver_query *query; /* through the tunnel */
    uv_getaddrinfo_t gai;         /* the host's resolver (query NULL) */
    struct v2s_list waiting;
};

struct dial_udp {
    struct outbound_udp base;
    struct v2s_list node; /* on struct dialer's udps */
    struct outbound_udp *inner[ROUTER_REJECT];
    outbound_udp_recv_cb recv;
    void *arg;
    struct dial_udp_name names[DIAL_UDP_NAMES];
    struct v2s_list lookups;
    unsigned n_waiting;
    uint64_t logged[DIAL_UDP_LOGGED]; /* destinations whose failure was logged (hashed) */
    unsigned n_logged;
    int ended;
};

static void dial_udp_inner_recv(void *arg, const struct v2s_addr *from, uint16_t port, const uint8_t *data,
                                size_t len)
{
    struct dial_udp *u = arg;
    u->recv(u->arg, from, port, data, len);
}

int dial_udp_open(struct outbound *ob, outbound_udp_recv_cb recv, void *arg, struct outbound_udp **out)
{
    struct dialer *r = dialer_of(ob);
    if (r->closing)
        return UV_ECANCELED;
    struct dial_udp *u = calloc(1, sizeof(*u));
    if (!u)
        return UV_ENOMEM;
    u->base.ob = ob;
    u->recv = recv;
    u->arg = arg;
    v2s_list_init(&u->lookups);
    v2s_list_init(&u->node);
    v2s_list_push_front(&r->udps, &u->node);
    *out = &u->base;
    return 0;
}

/* Logs "dial: UDP to WHERE: why" unless this association has logged WHERE before. */
void dial_udp_log_once(struct dial_udp *u, const char *where, const char *why)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *p = where; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    for (unsigned i = 0; i < u->n_logged; i++)
        if (u->logged[i] == h)
            return;
    if (u->n_logged >= DIAL_UDP_LOGGED)
        return;
    u->logged[u->n_logged++] = h;
    v2s_info("dial: UDP to %s: %s", where, why);
}

/* "name:port [addr]" or "addr:port" (name escaped: a client's bytes). */
static void dial_udp_where(char *buf, size_t cap, const char *name, const struct v2s_addr *addr, uint16_t port)
{
    char a[V2S_ADDR_STRLEN];
    if (!name) {
        v2s_addr_format_port(addr, port, buf, cap);
        return;
    }
    char shown[DIAL_UDP_NAME_MAX + 1];
    v2s_shown(name, shown, sizeof(shown));
    if (addr)
        snprintf(buf, cap, "%s:%u [%s]", shown, port, v2s_addr_format(addr, a, sizeof(a)));
    else
        snprintf(buf, cap, "%s:%u", shown, port);
}

/* Sends to the first of addrs the router lets through on a path that can carry it, through that
 * path's association (opened now if need be). name (NULL for none) is for the log. UV_ELOOP when
 * an address to go direct is one of our own UDP sockets (listener_is_own()), else UV_EACCES when
 * the router refused one, else UV_ENETUNREACH when no path carries any. */
static int dial_udp_send_addrs(struct dial_udp *u, const char *name, const struct v2s_addr *addrs, size_t n,
                               uint16_t port, const uint8_t *data, size_t len)
{
    const struct dial_config *cfg = &dialer_of(u->base.ob)->cfg;
    const struct v2s_addr *rejected = NULL, *own = NULL;
    for (size_t i = 0; i < n; i++) {
        enum router_verdict v = router_decide(cfg->router, &addrs[i]);
        if (v == ROUTER_REJECT) {
            if (!rejected)
                rejected = &addrs[i];
            continue;
        }
        if (v == ROUTER_DIRECT && listener_is_own(&addrs[i], port, SOCK_DGRAM)) {
            /* A -L .../udp forward pointed at itself (or at another that points back), a SOCKS
             * client sending to a relay's socket: each datagram would come in again and be sent
             * again, a new flow each time, until the caps are full. */
            if (!own)
                own = &addrs[i];
            continue;
        }
        /* ::ffff:a.b.c.d goes to the IPv4 host a.b.c.d the router judged, as a connect does
         * (dial_connect_any()); its answers come from a.b.c.d. */
        struct v2s_addr to = addrs[i];
        v2s_addr_unmap_v4(&to);
        struct outbound *via = cfg->via[v];
        if (!via || !outbound_can_reach(via, to.family))
            continue;
        if (!u->inner[v]) {
            int rc = outbound_udp_open(via, dial_udp_inner_recv, u, &u->inner[v]);
            if (rc < 0) {
                u->inner[v] = NULL;
                return rc;
            }
        }
        return outbound_udp_send(u->inner[v], NULL, &to, port, data, len);
    }
    char where[DIAL_UDP_NAME_MAX + 2 * V2S_ADDR_STRLEN];
    if (own) {
        dial_udp_where(where, sizeof(where), name, own, port);
        dial_udp_log_once(u, where, outbound_strerror(UV_ELOOP));
        return UV_ELOOP;
    }
    if (!rejected)
        return UV_ENETUNREACH;
    dial_udp_where(where, sizeof(where), name, rejected, port);
    dial_udp_log_once(u, where,
                      router_refuses_local(cfg->router, rejected)
                          ? "a local address (loopback, link-local or unspecified): refused without "
                            "--allow-direct-local"
                          : "not allowed by the routes");
    return UV_EACCES;
}

/* The cached answer for name, if still fresh. */
static struct dial_udp_name *dial_udp_cached(struct dial_udp *u, const char *name, uint64_t now)
{
    for (size_t i = 0; i < DIAL_UDP_NAMES; i++)
        if (u->names[i].name[0] && u->names[i].expires > now && strcmp(u->names[i].name, name) == 0)
            return &u->names[i];
    return NULL;
}

/* Keeps an answer in the slot of an expired name, or else of the one that expires first. */
static void dial_udp_remember(struct dial_udp *u, const char *name, int status, const struct v2s_addr *addrs,
                              size_t n, uint64_t now)
{
    struct dial_udp_name *slot = &u->names[0];
    for (size_t i = 0; i < DIAL_UDP_NAMES; i++) {
        struct dial_udp_name *c = &u->names[i];
        if (!c->name[0] || c->expires <= now || strcmp(c->name, name) == 0) {
            slot = c;
            break;
        }
        if (c->expires < slot->expires)
            slot = c;
    }
    snprintf(slot->name, sizeof(slot->name), "%s", name);
    slot->status = status;
    slot->expires = now + (status == 0 ? DIAL_UDP_NAME_LIFE_MS : DIAL_UDP_FAIL_LIFE_MS);
    slot->n = n < DIAL_UDP_ADDRS ? n : DIAL_UDP_ADDRS;
    memcpy(slot->addrs, addrs, slot->n * sizeof(*addrs));
}

static void dial_udp_lookup_free(struct dial_udp_lookup *l)
{
    struct v2s_list *n;
    while ((n = v2s_list_first(&l->waiting)) != NULL) {
        v2s_list_remove(n);
        free(V2S_LIST_ENTRY(n, struct dial_udp_waiting, node));
        if (l->u)
            l->u->n_waiting--;
    }
    v2s_list_remove(&l->node);
    free(l);
}

/* A name resolved (or not): remember it, and send or drop what waited for it. */
static void dial_udp_lookup_done(struct dial_udp_lookup *l, int status, const struct v2s_addr *addrs, size_t n)
{
    struct dial_udp *u = l->u;
    struct dialer *r = dialer_of(u->base.ob);
    dial_udp_remember(u, l->name, status, addrs, n, uv_now(r->cfg.loop));
    struct v2s_list *node;
    while ((node = v2s_list_first(&l->waiting)) != NULL) {
        struct dial_udp_waiting *w = V2S_LIST_ENTRY(node, struct dial_udp_waiting, node);
        v2s_list_remove(node);
        u->n_waiting--;
        if (status == 0) {
            dial_udp_send_addrs(u, l->name, addrs, n, w->port, w->data, w->len);
        } else {
            char where[DIAL_UDP_NAME_MAX + 2 * V2S_ADDR_STRLEN];
            dial_udp_where(where, sizeof(where), l->name, NULL, w->port);
            dial_udp_log_once(u, where, uv_strerror(status));
        }
        free(w);
    }
    dial_udp_lookup_free(l);
}

static void dial_udp_resolved(void *arg, int status, const struct v2s_addr *addrs, size_t n)
{
    struct dial_udp_lookup *l = arg;
    l->query = NULL;
    dial_udp_lookup_done(l, status, addrs, n);
}

static void dial_udp_host_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct dial_udp_lookup *l = req->data;
    struct v2s_addr addrs[DIAL_UDP_ADDRS];
    size_t n = 0;
    for (struct addrinfo *ai = res; ai && n < DIAL_UDP_ADDRS; ai = ai->ai_next) {
        uint16_t unused;
        if (v2s_addr_from_sockaddr(ai->ai_addr, &addrs[n], &unused) == 0)
            n++;
    }
    uv_freeaddrinfo(res);
    if (!l->u) {
        /* The association ended while the lookup ran in the pool. */
        dial_udp_lookup_free(l);
        return;
    }
    if (status == UV_EAI_NONAME || status == UV_EAI_NODATA || (status == 0 && n == 0))
        status = UV_EAI_NONAME;
    else if (status < 0)
        status = UV_EAI_AGAIN;
    dial_udp_lookup_done(l, status, addrs, n);
}

/* Starts resolving name for u. 0 or a negative error (nothing started). */
static int dial_udp_lookup_start(struct dial_udp *u, const char *name, struct dial_udp_lookup **out)
{
    struct dialer *r = dialer_of(u->base.ob);
    struct dial_udp_lookup *l = calloc(1, sizeof(*l));
    if (!l)
        return UV_ENOMEM;
    l->u = u;
    snprintf(l->name, sizeof(l->name), "%s", name);
    v2s_list_init(&l->waiting);
    v2s_list_init(&l->node);
    char shown[DIAL_UDP_NAME_MAX + 1];
    v2s_shown(name, shown, sizeof(shown));
    char ascii[DIAL_NAME_MAX];
    int rc = dial_name_route(r, name, shown, u, ascii);
    if (rc == ROUTER_NAME_TUNNEL) {
        rc = resolver_resolve(r->cfg.stack, ascii, dial_udp_resolved, l, &l->query);
    } else if (rc == ROUTER_NAME_HOST) {
        struct addrinfo hints = {.ai_socktype = SOCK_DGRAM};
        l->gai.data = l;
        rc = uv_getaddrinfo(r->cfg.loop, &l->gai, dial_udp_host_resolved, ascii, NULL, &hints);
    }
    rc = dial_lookup_failed(rc);
    if (rc < 0) {
        free(l);
        return rc;
    }
    v2s_list_push_back(&u->lookups, &l->node);
    *out = l;
    return 0;
}

int dial_udp_send(struct outbound_udp *base, const char *name, const struct v2s_addr *dst, uint16_t port,
                  const uint8_t *data, size_t len)
{
    struct dial_udp *u = (struct dial_udp *)base;
    struct dialer *r = dialer_of(base->ob);
    if (u->ended)
        return UV_ECANCELED;
    struct v2s_addr numeric;
    if (name && dial_name_numeric(name, &numeric) == 0) {
        dst = &numeric;
        name = NULL;
    }
    if (!name)
        return dial_udp_send_addrs(u, NULL, dst, 1, port, data, len);
    if (!name[0] || strlen(name) > DIAL_UDP_NAME_MAX)
        return UV_EINVAL;
    struct dial_udp_name *c = dial_udp_cached(u, name, uv_now(r->cfg.loop));
    if (c)
        return c->status < 0 ? c->status : dial_udp_send_addrs(u, name, c->addrs, c->n, port, data, len);
    if (u->n_waiting >= DIAL_UDP_WAITING)
        return UV_ENOBUFS;
    struct dial_udp_lookup *l = NULL;
    struct v2s_list *n;
    V2S_LIST_FOREACH(n, &u->lookups) {
        struct dial_udp_lookup *x = V2S_LIST_ENTRY(n, struct dial_udp_lookup, node);
        if (strcmp(x->name, name) == 0) {
            l = x;
            break;
        }
    }
    struct dial_udp_waiting *w = malloc(sizeof(*w) + len);
    if (!w)
        return UV_ENOMEM;
    int rc;
    if (!l && (rc = dial_udp_lookup_start(u, name, &l)) < 0) {
        free(w);
        return rc;
    }
    w->port = port;
    w->len = len;
    memcpy(w->data, data, len);
    v2s_list_init(&w->node);
    v2s_list_push_back(&l->waiting, &w->node);
    u->n_waiting++;
    return 0;
}

/* Closes the inner associations and drops the lookups; nothing more goes or comes. */
static void dial_udp_end(struct dial_udp *u)
{
    if (u->ended)
        return;
    u->ended = 1;
    for (size_t i = 0; i < ROUTER_REJECT; i++) {
        if (u->inner[i])
            outbound_udp_close(u->inner[i]);
        u->inner[i] = NULL;
    }
    struct v2s_list *n;
    while ((n = v2s_list_first(&u->lookups)) != NULL) {
        struct dial_udp_lookup *l = V2S_LIST_ENTRY(n, struct dial_udp_lookup, node);
        if (l->query) {
            resolver_cancel(l->query);
            dial_udp_lookup_free(l);
        } else {
            /* In the thread pool: its callback runs either way and frees l. */
            struct v2s_list *wn;
            while ((wn = v2s_list_first(&l->waiting)) != NULL) {
                v2s_list_remove(wn);
                free(V2S_LIST_ENTRY(wn, struct dial_udp_waiting, node));
            }
            l->u = NULL;
            v2s_list_remove(&l->node);
            uv_cancel((uv_req_t *)&l->gai);
        }
    }
    u->n_waiting = 0;
}

void dial_udp_close(struct outbound_udp *base)
{
    struct dial_udp *u = (struct dial_udp *)base;
    struct dialer *r = dialer_of(base->ob);
    dial_udp_end(u);
    v2s_list_remove(&u->node);
    free(u);
    dialer_maybe_free(r);
}

void dial_udp_end_all(struct dialer *r)
{
    struct v2s_list *n;
    V2S_LIST_FOREACH(n, &r->udps)
        dial_udp_end(V2S_LIST_ENTRY(n, struct dial_udp, node));
}
