/* dial: name -> addresses -> route verdict -> the outbound of that verdict -> relay. */
#include "route/dial.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/list.h"
#include "base/log.h"
#include "route/outbound.h"
#include "stack/resolver.h"
#include "stack/stack.h"

struct dialer {
    struct outbound ob;
    struct dial_config cfg;
    struct v2s_list dials; /* every dial not yet bridged, failed or freed */
    int closing;
    int in_close; /* inside dialer_close(), which frees it at the end */
};

enum dial_state {
    DIAL_RESOLVING_TUNNEL, /* resolver_resolve() through the tunnel's DNS */
    DIAL_RESOLVING_HOST,   /* uv_getaddrinfo(): the tunnel announced no DNS server */
    DIAL_CONNECTING,
    DIAL_CONNECTED,
};

struct dial {
    struct outbound_conn base;
    struct v2s_list node; /* on struct dialer's dials */
    enum dial_state state;
    struct outbound *via; /* the router's pick, once an address is chosen */
    struct outbound_conn *conn;
    struct v2s_addr dst;
    uint16_t port;
    unsigned timeout_ms;
    char name[256];
    struct resolver_query *query;
    uv_getaddrinfo_t gai;
    int gai_cancelled;
    outbound_connect_cb cb;
    void *arg;
};

static struct dialer *dialer_of(struct outbound *ob)
{
    return (struct dialer *)ob;
}

static void dial_free(struct dial *d)
{
    struct dialer *r = dialer_of(d->base.ob);
    v2s_list_remove(&d->node);
    free(d);
    if (r->closing && !r->in_close && v2s_list_empty(&r->dials))
        outbound_free_closed(&r->ob, r);
}

static void dial_fail(struct dial *d, int status)
{
    outbound_connect_cb cb = d->cb;
    void *arg = d->arg;
    dial_free(d);
    cb(arg, NULL, status, NULL, 0);
}

static void dial_connected(void *arg, struct outbound_conn *c, int status, const struct v2s_addr *bound,
                           uint16_t port)
{
    struct dial *d = arg;
    if (status < 0) {
        d->conn = NULL;
        dial_fail(d, status);
        return;
    }
    d->state = DIAL_CONNECTED;
    d->conn = c;
    d->cb(d->arg, &d->base, 0, bound, port);
}

/* Picks the first address the router lets through on a path that can carry it, and connects.
 * 0, or a negative error for the caller to report. */
static int dial_connect_any(struct dial *d, const struct v2s_addr *addrs, size_t n)
{
    const struct dial_config *cfg = &dialer_of(d->base.ob)->cfg;
    int rejected = 0;
    for (size_t i = 0; i < n; i++) {
        enum router_verdict v = router_decide(cfg->router, &addrs[i]);
        if (v == ROUTER_REJECT) {
            if (router_refuses_local(cfg->router, &addrs[i])) {
                char a[V2S_ADDR_STRLEN];
                v2s_addr_format(&addrs[i], a, sizeof(a));
                /* The name is the client's text, escaped when dial_connect() stored it. */
                int same = strcmp(d->name, a) == 0;
                v2s_info("dial: %s%s%s is a local address (loopback, link-local or unspecified): "
                         "direct connections to it are refused without --allow-direct-local",
                         same ? "" : d->name, same ? "" : ": ", a);
            }
            rejected = 1;
            continue;
        }
        struct outbound *via = cfg->via[v];
        if (!via || !outbound_can_reach(via, addrs[i].family))
            continue;
        d->via = via;
        d->dst = addrs[i];
        d->state = DIAL_CONNECTING;
        return outbound_connect(via, NULL, &d->dst, d->port, d->timeout_ms, dial_connected, d, &d->conn);
    }
    return rejected ? UV_EACCES : UV_ENETUNREACH;
}

static void dial_resolved(void *arg, int status, const struct v2s_addr *addrs, size_t n)
{
    struct dial *d = arg;
    d->query = NULL;
    if (status == 0)
        status = dial_connect_any(d, addrs, n);
    if (status < 0) {
        v2s_debug("dial: %s: %s", d->name, uv_strerror(status));
        dial_fail(d, status);
    }
}

static void dial_host_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct dial *d = req->data;
    if (d->gai_cancelled) {
        uv_freeaddrinfo(res);
        dial_free(d);
        return;
    }
    struct v2s_addr addrs[16];
    size_t n = 0;
    for (struct addrinfo *ai = res; ai && n < 16; ai = ai->ai_next) {
        uint16_t unused;
        if (v2s_addr_from_sockaddr(ai->ai_addr, &addrs[n], &unused) == 0)
            n++;
    }
    uv_freeaddrinfo(res);
    if (status == UV_EAI_NONAME || status == UV_EAI_NODATA)
        status = UV_EAI_NONAME;
    else if (status < 0)
        status = UV_EAI_AGAIN;
    else if (n == 0)
        status = UV_EAI_NONAME;
    dial_resolved(d, status, addrs, n);
}

static int dial_connect(struct outbound *ob, const char *name, const struct v2s_addr *addr, uint16_t port,
                        unsigned timeout_ms, outbound_connect_cb cb, void *arg, struct outbound_conn **out)
{
    struct dialer *r = dialer_of(ob);
    if (r->closing)
        return UV_ECANCELED;
    struct dial *d = calloc(1, sizeof(*d));
    if (!d)
        return UV_ENOMEM;
    d->base.ob = ob;
    v2s_list_init(&d->node);
    v2s_list_push_front(&r->dials, &d->node);
    d->port = port;
    d->timeout_ms = timeout_ms;
    d->cb = cb;
    d->arg = arg;
    struct v2s_addr numeric;
    if (name && v2s_addr_parse(&numeric, name) == 0) {
        addr = &numeric;
        name = NULL;
    }
    int rc;
    if (!name) {
        v2s_addr_format(addr, d->name, sizeof(d->name));
        rc = dial_connect_any(d, addr, 1);
    } else {
        v2s_shown(name, d->name, sizeof(d->name)); /* only ever logged: a client's bytes, escaped */
        const struct v2s_addr *servers;
        if (r->cfg.stack && stack_dns_servers(r->cfg.stack, &servers) > 0) {
            d->state = DIAL_RESOLVING_TUNNEL;
            rc = resolver_resolve(r->cfg.stack, name, dial_resolved, d, &d->query);
        } else {
            /* No DNS server in the tunnel: the host's resolver is all there is. */
            struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
            d->state = DIAL_RESOLVING_HOST;
            d->gai.data = d;
            rc = uv_getaddrinfo(r->cfg.loop, &d->gai, dial_host_resolved, name, NULL, &hints);
        }
    }
    if (rc < 0) {
        dial_free(d);
        return rc;
    }
    *out = &d->base;
    return 0;
}

static void dial_cancel(struct outbound_conn *base)
{
    struct dial *d = (struct dial *)base;
    switch (d->state) {
    case DIAL_RESOLVING_TUNNEL:
        resolver_cancel(d->query);
        break;
    case DIAL_RESOLVING_HOST:
        /* The lookup runs in the thread pool; its callback runs either way (with UV_ECANCELED
         * if uv_cancel() caught it in time) and frees d. */
        d->gai_cancelled = 1;
        uv_cancel((uv_req_t *)&d->gai);
        return;
    case DIAL_CONNECTING:
    case DIAL_CONNECTED:
        if (d->conn)
            outbound_cancel(d->conn);
        break;
    }
    dial_free(d);
}

static void dial_bridge(struct outbound_conn *base, uv_tcp_t *app, const uint8_t *early, size_t n,
                        const char *client, outbound_done_cb done, void *arg)
{
    struct dial *d = (struct dial *)base;
    char label[OUTBOUND_LABEL_MAX];
    outbound_label(label, sizeof(label), client, d->name, &d->dst, d->port, d->via->name);
    struct outbound_conn *c = d->conn;
    dial_free(d);
    outbound_bridge(c, app, early, n, label, done, arg);
}

/* Fails every dial still resolving or connecting with UV_ECANCELED; frees the dialer once the last
 * is gone (a host lookup in the thread pool comes back first). */
static void dialer_close(struct outbound *ob)
{
    struct dialer *r = dialer_of(ob);
    r->closing = 1;
    r->in_close = 1;
    struct v2s_list *n, *tmp;
    V2S_LIST_FOREACH_SAFE(n, tmp, &r->dials) {
        struct dial *d = V2S_LIST_ENTRY(n, struct dial, node);
        if (d->state == DIAL_RESOLVING_HOST && d->gai_cancelled)
            continue;
        outbound_connect_cb cb = d->cb;
        void *arg = d->arg;
        if (d->state == DIAL_RESOLVING_HOST) {
            d->gai_cancelled = 1;
            uv_cancel((uv_req_t *)&d->gai);
        } else {
            dial_cancel(&d->base);
        }
        cb(arg, NULL, UV_ECANCELED, NULL, 0);
        /* The callbacks may have freed more than d: start over. */
        tmp = r->dials.next;
    }
    r->in_close = 0;
    if (v2s_list_empty(&r->dials))
        outbound_free_closed(&r->ob, r);
}

static const struct outbound_ops dialer_ops = {
    .connect = dial_connect,
    .cancel = dial_cancel,
    .bridge = dial_bridge,
    .close = dialer_close,
};

int dial_new(struct outbound **out, const struct dial_config *cfg)
{
    struct dialer *r = calloc(1, sizeof(*r));
    if (!r)
        return UV_ENOMEM;
    r->ob.ops = &dialer_ops;
    r->ob.name = "routed";
    r->cfg = *cfg;
    v2s_list_init(&r->dials);
    *out = &r->ob;
    return 0;
}
