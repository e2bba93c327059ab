/* dial: name -> addresses -> route verdict -> the outbound of that verdict -> relay.
 *
 * A TCP connection tries the name's addresses in turn within the one connect timeout
 * (dial_connected()). While more addresses wait, an attempt gets only its share of the time left
 * (dial_attempt_ms()), so one that never answers (a blackholed IPv6 address the host's resolver
 * put first) leaves time for the next. Its one timer, the dialer's retry_timer, runs at 0 ms: the
 * next address is tried from the loop, never from inside the failed path's callback. */
#include "route/dial.h"
#include "route/dial_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/list.h"
#include "base/log.h"
#include "route/idna.h"
#include "route/listener.h"
#include "route/outbound.h"
#include "stack/resolver.h"
#include "stack/stack.h"


enum dial_state {
    DIAL_RESOLVING_TUNNEL, /* resolver_resolve() through the tunnel's DNS */
    DIAL_RESOLVING_HOST,   /* uv_getaddrinfo(): the tunnel announced no DNS server */
    DIAL_CONNECTING, /* an attempt in flight, or (conn NULL) waiting on the dialer's retry */
    DIAL_CONNECTED,
};

enum {
    DIAL_ADDRS_MAX = 16, /* the addresses of a name a dial keeps and tries */
    /* The least an attempt gets while others wait: a lost SYN is sent again after 1 s by Linux
     * and 3 s by lwIP, and the answer to it must still count. */
    DIAL_ATTEMPT_MIN_MS = 4000,
};

struct dial {
    struct outbound_conn base;
    struct v2s_list node;       /* on struct dialer's dials */
    struct v2s_list retry_node; /* on struct dialer's retry while waiting to try the next address */
    enum dial_state state;
    struct outbound *via; /* the router's pick for the address being tried */
    struct outbound_conn *conn;
    struct v2s_addr dst;
    uint16_t port;
    unsigned timeout_ms;
    /* The addresses of the destination, tried in turn (see dial_try_next()). */
    struct v2s_addr addrs[DIAL_ADDRS_MAX];
    size_t n_addrs, next_addr;
    uint64_t deadline; /* uv_now() by which an attempt must have connected: timeout_ms for all */
    int error;         /* why the last attempt failed, 0 before one did */
    int rejected;      /* the router refused one of addrs */
    int own;           /* one of addrs, to go direct, is a listener of ours (listener_is_own()) */
    int counted;       /* counted in the statistics (once per dial) */
    char name[256];
    struct resolver_query *query;
    uv_getaddrinfo_t gai;
    int gai_cancelled;
    outbound_connect_cb cb;
    void *arg;
};

void dialer_maybe_free(struct dialer *r)
{
    if (r->closing && !r->in_close && !r->timer_open && v2s_list_empty(&r->dials) && v2s_list_empty(&r->udps))
        outbound_free_closed(&r->ob, r);
}

static void dial_free(struct dial *d)
{
    struct dialer *r = dialer_of(d->base.ob);
    v2s_list_remove(&d->node);
    v2s_list_remove(&d->retry_node);
    free(d);
    dialer_maybe_free(r);
}

static void dial_fail(struct dial *d, int status)
{
    outbound_connect_cb cb = d->cb;
    void *arg = d->arg;
    dial_free(d);
    cb(arg, NULL, status, NULL, 0);
}

static void dial_connected(void *arg, struct outbound_conn *c, int status, const struct v2s_addr *bound,
                           uint16_t port);

void dial_count(struct dialer *r, enum router_verdict v)
{
    if (r->cfg.stats)
        r->cfg.stats->total[v]++;
}

/* The path the router gives a, if it is one a connection to a can take now (the log line and
 * the counts of a refused one are dial_try_next()'s). */
static struct outbound *dial_path(const struct dial *d, const struct v2s_addr *a)
{
    const struct dial_config *cfg = &dialer_of(d->base.ob)->cfg;
    enum router_verdict v = router_decide(cfg->router, a);
    if (v == ROUTER_REJECT || (v == ROUTER_DIRECT && listener_is_own(a, d->port, SOCK_STREAM)))
        return NULL;
    struct outbound *via = cfg->via[v];
    return via && outbound_can_reach(via, a->family) ? via : NULL;
}

/* How long the attempt at an address may take, left ms before the deadline: an equal share of
 * what is left among it and the addresses after it that can be tried, at least
 * DIAL_ATTEMPT_MIN_MS; the last gets it all. Before, the first attempt had the whole timeout, and
 * a destination whose first address never answered failed with a timeout though its second
 * would have connected at once. */
static unsigned dial_attempt_ms(const struct dial *d, unsigned left)
{
    unsigned waiting = 0;
    for (size_t i = d->next_addr; i < d->n_addrs; i++)
        waiting += dial_path(d, &d->addrs[i]) != NULL;
    unsigned share = left / (waiting + 1);
    if (share < DIAL_ATTEMPT_MIN_MS)
        share = DIAL_ATTEMPT_MIN_MS;
    return share < left ? share : left;
}

/* Tries the next of d's addresses that the router lets through on a path that can carry it,
 * while time is left. 0 (dial_connected() follows), or a negative error for the caller to
 * report: UV_ELOOP when an address to go direct is one of our own listeners, else the last
 * attempt's, else UV_EACCES when the router refused an address, else UV_ENETUNREACH (no path
 * carries any of them). */
static int dial_try_next(struct dial *d)
{
    struct dialer *r = dialer_of(d->base.ob);
    const struct dial_config *cfg = &r->cfg;
    while (d->next_addr < d->n_addrs) {
        const struct v2s_addr *a = &d->addrs[d->next_addr++];
        enum router_verdict v = router_decide(cfg->router, a);
        if (v == ROUTER_REJECT) {
            if (router_refuses_local(cfg->router, a)) {
                char text[V2S_ADDR_STRLEN];
                v2s_addr_format(a, text, sizeof(text));
                /* The name is the client's text, escaped when dial_connect() stored it. */
                int same = strcmp(d->name, text) == 0;
                v2s_info("dial: %s%s%s is a local address (loopback, link-local or unspecified): "
                         "direct connections to it are refused without --allow-direct-local",
                         same ? "" : d->name, same ? "" : ": ", text);
            }
            d->rejected = 1;
            continue;
        }
        if (v == ROUTER_DIRECT && listener_is_own(a, d->port, SOCK_STREAM)) {
            /* A client could send the proxy or a -L forward to itself (to loopback with
             * --allow-direct-local, or to an interface's address when it listens on a
             * wildcard): each connection would open another, until the caps are full. */
            d->own = 1;
            continue;
        }
        struct outbound *via = cfg->via[v];
        if (!via || !outbound_can_reach(via, a->family))
            continue;
        uint64_t now = uv_now(cfg->loop);
        if (d->error && now >= d->deadline)
            break; /* an attempt failed and the time is spent */
        d->via = via;
        d->dst = *a;
        d->state = DIAL_CONNECTING;
        if (!d->counted) {
            d->counted = 1;
            dial_count(r, v);
        }
        unsigned left = d->deadline > now ? (unsigned)(d->deadline - now) : 0;
        left = dial_attempt_ms(d, left);
        int rc = outbound_connect(via, NULL, &d->dst, d->port, left, dial_connected, d, &d->conn);
        if (rc == 0)
            return 0;
        d->conn = NULL;
        d->error = rc; /* at once (no route for the family, out of descriptors): the next one */
        if (rc == UV_ECANCELED)
            break; /* the path is closing: so is the process */
    }
    if (d->own || (d->rejected && !d->error)) {
        if (!d->counted) {
            d->counted = 1;
            dial_count(r, ROUTER_REJECT);
        }
        return d->own ? UV_ELOOP : UV_EACCES;
    }
    if (d->error)
        return d->error;
    return UV_ENETUNREACH;
}

/* The dialer's retry timer: each dial waiting on it tries its next address. */
static void dial_retry_run(uv_timer_t *t)
{
    struct dialer *r = t->data;
    struct v2s_list *n;
    /* A failure's callback may end other dials (a listener closing): each leaves the list as it
     * goes, so the list is taken from its head each time. */
    while ((n = v2s_list_first(&r->retry)) != NULL) {
        struct dial *d = V2S_LIST_ENTRY(n, struct dial, retry_node);
        v2s_list_remove(n);
        int rc = dial_try_next(d);
        if (rc < 0)
            dial_fail(d, rc);
    }
}

/* An attempt failed and d has more addresses: the next is tried from the loop rather than from
 * inside the failed path's callback, which for the tunnel runs inside lwIP's input of the reset. */
static void dial_retry_later(struct dial *d)
{
    struct dialer *r = dialer_of(d->base.ob);
    if (!r->timer_open) {
        uv_timer_init(r->cfg.loop, &r->retry_timer);
        r->retry_timer.data = r;
        r->timer_open = 1;
    }
    v2s_list_push_back(&r->retry, &d->retry_node);
    uv_timer_start(&r->retry_timer, dial_retry_run, 0, 0);
}

/* A name's addresses are tried in turn within the one connect timeout, as -R does
 * (port/reverse.c): "localhost" gives ::1 before 127.0.0.1 where the service may listen on one
 * of them only, and a name with an address that refuses or has no route (a dead server of
 * several, an IPv6 address the host cannot reach) still reaches the one that answers. A client
 * learnt only the first address's failure before. */
static void dial_connected(void *arg, struct outbound_conn *c, int status, const struct v2s_addr *bound,
                           uint16_t port)
{
    struct dial *d = arg;
    if (status < 0) {
        d->conn = NULL;
        d->error = status;
        if (status != UV_ECANCELED && d->next_addr < d->n_addrs &&
            uv_now(dialer_of(d->base.ob)->cfg.loop) < d->deadline) {
            char a[V2S_ADDR_STRLEN];
            v2s_debug("dial: %s: %s: %s, trying the next address", d->name,
                      v2s_addr_format(&d->dst, a, sizeof(a)), uv_strerror(status));
            dial_retry_later(d);
            return;
        }
        dial_fail(d, status);
        return;
    }
    d->state = DIAL_CONNECTED;
    d->conn = c;
    d->cb(d->arg, &d->base, 0, bound, port);
}

/* Keeps the first DIAL_ADDRS_MAX of addrs and connects to the first that can be had. 0, or a
 * negative error for the caller to report. */
static int dial_connect_any(struct dial *d, const struct v2s_addr *addrs, size_t n)
{
    d->n_addrs = n < DIAL_ADDRS_MAX ? n : DIAL_ADDRS_MAX;
    memcpy(d->addrs, addrs, d->n_addrs * sizeof(*addrs));
    /* ::ffff:a.b.c.d (a client on a dual-stack socket, -L [::ffff:a.b.c.d]:...) is the IPv4 host
     * a.b.c.d, as the router judges it: connected as such, or the tunnel's path got an IPv6
     * destination it cannot carry (network unreachable without IPv6 in the tunnel, a packet to
     * a mapped address with it) for a host its IPv4 routes hold (dial_addrs_mapped_v4). */
    for (size_t i = 0; i < d->n_addrs; i++)
        v2s_addr_unmap_v4(&d->addrs[i]);
    d->next_addr = 0;
    d->deadline = uv_now(dialer_of(d->base.ob)->cfg.loop) + d->timeout_ms;
    return dial_try_next(d);
}

/* Split DNS: which resolver name goes to (router_name_decide()): ROUTER_NAME_TUNNEL (the stack's
 * resolver), ROUTER_NAME_HOST (uv_getaddrinfo() in the thread pool), or UV_EACCES for a name
 * --others reject refuses, logged for each connection, or for u (a UDP association: datagram
 * after datagram) once per name, or UV_EINVAL for a name that is not UTF-8. shown is the name
 * escaped, for the log. ascii (DIAL_NAME_MAX bytes) gets the name both resolvers are to be given:
 * its IDNA form (route/idna.h), which is what uv_getaddrinfo() would ask the host's DNS, so the
 * router judges the name the host's resolver would see. */
int dial_name_route(struct dialer *r, const char *name, const char *shown, struct dial_udp *u, char *ascii)
{
    if (idna_to_ascii(name, ascii, DIAL_NAME_MAX) != 0)
        return UV_EINVAL;
    if (!r->cfg.stack)
        return ROUTER_NAME_HOST; /* no tunnel at all (dial.h) */
    enum router_name_verdict v = router_name_decide(r->cfg.router, ascii);
    v2s_debug("dial: %s: resolved by %s", shown, router_name_verdict_name(v));
    switch (v) {
    case ROUTER_NAME_TUNNEL:
        return ROUTER_NAME_TUNNEL;
    case ROUTER_NAME_HOST:
        return ROUTER_NAME_HOST;
    case ROUTER_NAME_REJECT:
        break;
    }
    static const char why[] = "not under the tunnel's DNS domains: refused (--others reject)";
    if (u)
        dial_udp_log_once(u, shown, why);
    else
        v2s_info("dial: %s: %s", shown, why);
    dial_count(r, ROUTER_REJECT);
    return UV_EACCES;
}

/* What a lookup that could not start (rc < 0) tells the caller. A name neither resolver can ask
 * about (UV_EINVAL from resolver_resolve(): an empty label, one over 63 bytes, over 253 bytes in
 * all; from dial_name_route()'s IDNA form: bytes that are not UTF-8) does not resolve, as one
 * the server says does not exist: UV_EAI_NONAME, SOCKS reply 4 (host unreachable), not the
 * "general failure" (1) of a proxy that broke. */
int dial_lookup_failed(int rc)
{
    return rc == UV_EINVAL ? UV_EAI_NONAME : rc;
}

/* An IPv6 address in brackets is how a URL writes one, and a SOCKS client that passes its URL's
 * host on as a name sends it so (reqwest and tokio-socks with socks5h:// do): asked of a resolver,
 * it did not resolve (reply 4), and went to the tunnel's DNS servers as a name. Only IPv6 goes in
 * brackets, as in a URL. */
int dial_name_numeric(const char *name, struct v2s_addr *out)
{
    if (v2s_addr_parse(out, name) == 0)
        return 0;
    size_t len = strlen(name);
    char inner[V2S_ADDR_STRLEN];
    if (len < 3 || name[0] != '[' || name[len - 1] != ']' || len - 2 >= sizeof(inner))
        return -EINVAL;
    memcpy(inner, name + 1, len - 2);
    inner[len - 2] = '\0';
    if (v2s_addr_parse(out, inner) != 0 || out->family != AF_INET6)
        return -EINVAL;
    return 0;
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
    struct v2s_addr addrs[DIAL_ADDRS_MAX];
    size_t n = 0;
    for (struct addrinfo *ai = res; ai && n < DIAL_ADDRS_MAX; ai = ai->ai_next) {
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
    v2s_list_init(&d->retry_node);
    v2s_list_push_front(&r->dials, &d->node);
    d->port = port;
    d->timeout_ms = timeout_ms;
    d->cb = cb;
    d->arg = arg;
    struct v2s_addr numeric;
    if (name && dial_name_numeric(name, &numeric) == 0) {
        addr = &numeric;
        name = NULL;
    }
    int rc;
    if (!name) {
        v2s_addr_format(addr, d->name, sizeof(d->name));
        rc = dial_connect_any(d, addr, 1);
    } else {
        v2s_shown(name, d->name, sizeof(d->name)); /* only ever logged: a client's bytes, escaped */
        char ascii[DIAL_NAME_MAX];
        rc = dial_name_route(r, name, d->name, NULL, ascii);
        if (rc == ROUTER_NAME_TUNNEL) {
            d->state = DIAL_RESOLVING_TUNNEL;
            rc = resolver_resolve(r->cfg.stack, ascii, dial_resolved, d, &d->query);
        } else if (rc == ROUTER_NAME_HOST) {
            struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
            d->state = DIAL_RESOLVING_HOST;
            d->gai.data = d;
            rc = uv_getaddrinfo(r->cfg.loop, &d->gai, dial_host_resolved, ascii, NULL, &hints);
        }
        rc = dial_lookup_failed(rc);
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

/* A relay counted open until it ends (dial_stats.open). */
struct dial_relay {
    struct dial_stats *stats;
    outbound_done_cb done;
    void *arg;
};

static void dial_relay_done(void *arg)
{
    struct dial_relay *rl = arg;
    outbound_done_cb done = rl->done;
    void *done_arg = rl->arg;
    rl->stats->open--;
    free(rl);
    done(done_arg);
}

static void dial_bridge(struct outbound_conn *base, uv_tcp_t *app, const uint8_t *early, size_t n,
                        const char *client, outbound_done_cb done, void *arg)
{
    struct dial *d = (struct dial *)base;
    char label[OUTBOUND_LABEL_MAX];
    outbound_label(label, sizeof(label), client, d->name, &d->dst, d->port, d->via->name);
    struct outbound_conn *c = d->conn;
    struct dial_stats *stats = dialer_of(base->ob)->cfg.stats;
    dial_free(d);
    struct dial_relay *rl = stats && done ? malloc(sizeof(*rl)) : NULL;
    if (rl) {
        *rl = (struct dial_relay){.stats = stats, .done = done, .arg = arg};
        stats->open++;
        done = dial_relay_done;
        arg = rl;
    }
    outbound_bridge(c, app, early, n, label, done, arg);
}

static void dialer_timer_closed(uv_handle_t *h)
{
    struct dialer *r = h->data;
    r->timer_open = 0;
    dialer_maybe_free(r);
}

/* Fails every dial still resolving or connecting with UV_ECANCELED and ends every UDP
 * association; frees the dialer once the last dial is gone (a host lookup in the thread pool
 * comes back first) and the owners have closed their associations. */
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
    dial_udp_end_all(r);
    if (r->timer_open && !uv_is_closing((uv_handle_t *)&r->retry_timer))
        uv_close((uv_handle_t *)&r->retry_timer, dialer_timer_closed);
    r->in_close = 0;
    dialer_maybe_free(r);
}

static const struct outbound_ops dialer_ops = {
    .connect = dial_connect,
    .cancel = dial_cancel,
    .bridge = dial_bridge,
    .close = dialer_close,
    .udp_open = dial_udp_open,
    .udp_send = dial_udp_send,
    .udp_close = dial_udp_close,
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
    v2s_list_init(&r->udps);
    v2s_list_init(&r->retry);
    *out = &r->ob;
    return 0;
}
