/* dial: name -> addresses -> route verdict -> connection -> relay. */
#include "route/dial.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "route/direct.h"
#include "base/log.h"
#include "stack/resolver.h"
#include "stack/stack.h"
#include "stack/tcp.h"

enum dial_state {
    DIAL_RESOLVING_TUNNEL, /* resolver_resolve() through the tunnel's DNS */
    DIAL_RESOLVING_HOST,   /* uv_getaddrinfo(): the tunnel announced no DNS server */
    DIAL_CONNECTING,
    DIAL_CONNECTED,
};

struct dial {
    struct dial_ctx ctx;
    enum dial_state state;
    enum router_verdict verdict;
    struct v2s_addr dst;
    uint16_t port;
    char name[256];
    struct resolver_query *query;
    uv_getaddrinfo_t gai;
    int gai_cancelled;
    struct stack_tcp *tcp;
    struct direct_conn *direct;
    dial_cb cb;
    void *arg;
};

static void dial_fail(struct dial *d, int status)
{
    dial_cb cb = d->cb;
    void *arg = d->arg;
    free(d);
    cb(arg, NULL, status, NULL, 0);
}

static void dial_tcp_connected(void *arg, struct stack_tcp *c, int status)
{
    struct dial *d = arg;
    if (status < 0) {
        d->tcp = NULL;
        dial_fail(d, status);
        return;
    }
    struct v2s_addr bound;
    uint16_t port;
    d->state = DIAL_CONNECTED;
    stack_tcp_local(c, &bound, &port);
    d->cb(d->arg, d, 0, &bound, port);
}

static void dial_direct_connected(void *arg, struct direct_conn *c, int status)
{
    struct dial *d = arg;
    if (status < 0) {
        d->direct = NULL;
        dial_fail(d, status);
        return;
    }
    struct v2s_addr bound;
    uint16_t port;
    d->state = DIAL_CONNECTED;
    direct_local(c, &bound, &port);
    d->cb(d->arg, d, 0, &bound, port);
}

/* Picks the first address the router lets through on a path that can carry it, and connects.
 * 0, or a negative error for the caller to report. */
static int dial_connect_any(struct dial *d, const struct v2s_addr *addrs, size_t n)
{
    int rejected = 0;
    for (size_t i = 0; i < n; i++) {
        enum router_verdict v = router_decide(d->ctx.router, &addrs[i]);
        if (v == ROUTER_REJECT) {
            if (router_refuses_local(d->ctx.router, &addrs[i])) {
                char a[V2S_ADDR_STRLEN];
                v2s_addr_format(&addrs[i], a, sizeof(a));
                /* The name is the client's text, escaped when dial_start() stored it. */
                int same = strcmp(d->name, a) == 0;
                v2s_info("dial: %s%s%s is a local address (loopback, link-local or unspecified): "
                         "direct connections to it are refused without --allow-direct-local",
                         same ? "" : d->name, same ? "" : ": ", a);
            }
            rejected = 1;
            continue;
        }
        if (v == ROUTER_TUNNEL && !stack_has_family(d->ctx.stack, addrs[i].family))
            continue;
        d->verdict = v;
        d->dst = addrs[i];
        d->state = DIAL_CONNECTING;
        if (v == ROUTER_TUNNEL)
            return stack_tcp_connect(d->ctx.stack, &d->dst, d->port, d->ctx.connect_timeout_ms,
                                     dial_tcp_connected, d, &d->tcp);
        return direct_connect(d->ctx.loop, &d->dst, d->port, d->ctx.connect_timeout_ms, dial_direct_connected,
                              d, &d->direct);
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
        free(d);
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

int dial_start(const struct dial_ctx *ctx, const char *name, const struct v2s_addr *addr, uint16_t port,
               dial_cb cb, void *arg, struct dial **out)
{
    struct dial *d = calloc(1, sizeof(*d));
    if (!d)
        return UV_ENOMEM;
    d->ctx = *ctx;
    d->port = port;
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
        if (stack_dns_servers(ctx->stack, &servers) > 0) {
            d->state = DIAL_RESOLVING_TUNNEL;
            rc = resolver_resolve(ctx->stack, name, dial_resolved, d, &d->query);
        } else {
            /* No DNS server in the tunnel: the host's resolver is all there is. */
            struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
            d->state = DIAL_RESOLVING_HOST;
            d->gai.data = d;
            rc = uv_getaddrinfo(ctx->loop, &d->gai, dial_host_resolved, name, NULL, &hints);
        }
    }
    if (rc < 0) {
        free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void dial_cancel(struct dial *d)
{
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
        if (d->tcp)
            stack_tcp_cancel(d->tcp);
        else if (d->direct)
            direct_cancel(d->direct);
        break;
    case DIAL_CONNECTED:
        break;
    }
    free(d);
}

void dial_bridge(struct dial *d, uv_tcp_t *app, const uint8_t *early, size_t n, const char *client,
                 dial_done_cb done, void *arg)
{
    char dst[V2S_ADDR_STRLEN];
    char label[2 * V2S_ADDR_STRLEN + 300];
    v2s_addr_format_port(&d->dst, d->port, dst, sizeof(dst));
    if (strcmp(d->name, dst) == 0 || v2s_addr_parse(&(struct v2s_addr){0}, d->name) == 0)
        snprintf(label, sizeof(label), "%s -> %s (%s)", client, dst, router_verdict_name(d->verdict));
    else
        snprintf(label, sizeof(label), "%s -> %s:%u [%s] (%s)", client, d->name, d->port, dst,
                 router_verdict_name(d->verdict));
    v2s_info("%s open", label);
    if (d->verdict == ROUTER_TUNNEL)
        stack_tcp_bridge_start(d->tcp, app, early, n, label, done, arg);
    else
        direct_bridge_start(d->direct, app, early, n, label, done, arg);
    free(d);
}

enum router_verdict dial_verdict(const struct dial *d)
{
    return d->verdict;
}
