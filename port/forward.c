/* A local port forward (-L): accept, dial the one destination, relay.
 *
 * The connection caps and the refusal at the cap are the SOCKS listener's (socks/server.c): a
 * connection holds a slot of this forward's cap and of the cap shared by every listener from
 * accept until its last handle is closed, and one past the cap is accepted and reset at once.
 * A destination that cannot be reached (refused, unreachable, rejected by the router, a name that
 * does not resolve) ends the client's connection with a reset, the nearest a forward has to a
 * SOCKS error reply: the client sees its connection fail rather than end cleanly. */
#include "port/forward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "base/addr.h"
#include "base/conn_limit.h"
#include "base/list.h"
#include "base/log.h"
#include "port/target.h"
#include "route/outbound.h"
#include "route/refuse.h"

enum fwd_conn_state {
    FWD_CONN_DIALING,
    FWD_CONN_RELAYING, /* the relay owns the client handle */
    FWD_CONN_CLOSING,
};

struct fwd_conn {
    struct port_forward *pf;
    struct v2s_list node; /* on the forward's conns */
    uv_tcp_t client;
    enum fwd_conn_state state;
    struct outbound_conn *dial;
    char peer[V2S_ADDR_STRLEN];
};

struct port_forward {
    struct outbound *out;
    unsigned connect_timeout_ms;
    uv_tcp_t listener;
    struct v2s_list conns;
    struct conn_limit limit;   /* this listener's cap */
    struct conn_limit *shared; /* every listener's, or NULL */
    struct port_target dst;
    char where[V2S_ADDR_STRLEN]; /* the listen address, for the log */
    struct refuser refuser;    /* resets connections past the caps */
    int closing;
    int handles_open;
    void (*close_cb)(void *arg);
    void *close_arg;
};

static void fwd_maybe_free(struct port_forward *pf)
{
    if (!pf->closing || pf->handles_open > 0 || !v2s_list_empty(&pf->conns))
        return;
    void (*cb)(void *) = pf->close_cb;
    void *arg = pf->close_arg;
    port_target_free(&pf->dst);
    free(pf);
    if (cb)
        cb(arg);
}

static void fwd_conn_closed(uv_handle_t *h)
{
    struct fwd_conn *c = h->data;
    struct port_forward *pf = c->pf;
    v2s_list_remove(&c->node);
    conn_limit_give(&pf->limit, pf->shared);
    free(c);
    fwd_maybe_free(pf);
}

/* Ends a connection the relay does not own: with a reset when reset, else a FIN. */
static void fwd_conn_close(struct fwd_conn *c, int reset)
{
    if (c->state == FWD_CONN_CLOSING)
        return;
    if (c->state == FWD_CONN_DIALING && c->dial)
        outbound_cancel(c->dial);
    c->dial = NULL;
    c->state = FWD_CONN_CLOSING;
    if (!reset || uv_tcp_close_reset(&c->client, fwd_conn_closed) < 0)
        uv_close((uv_handle_t *)&c->client, fwd_conn_closed);
}

/* The relay closed the client handle. */
static void fwd_conn_relay_done(void *arg)
{
    struct fwd_conn *c = arg;
    struct port_forward *pf = c->pf;
    v2s_list_remove(&c->node);
    conn_limit_give(&pf->limit, pf->shared);
    free(c);
    fwd_maybe_free(pf);
}

static void fwd_conn_dialed(void *arg, struct outbound_conn *d, int status, const struct v2s_addr *bound,
                            uint16_t port)
{
    struct fwd_conn *c = arg;
    (void)bound;
    (void)port;
    c->dial = NULL;
    if (status < 0) {
        v2s_info("%s -> %s: %s (forward %s, connection reset)", c->peer, c->pf->dst.text, uv_strerror(status),
                 c->pf->where);
        fwd_conn_close(c, 1);
        return;
    }
    c->state = FWD_CONN_RELAYING;
    outbound_bridge(d, &c->client, NULL, 0, c->peer, fwd_conn_relay_done, c);
}

static void fwd_on_connection(uv_stream_t *listener, int status);

static void fwd_refused_closed(void *arg, int retry)
{
    struct port_forward *pf = arg;
    pf->handles_open--;
    if (retry && !pf->closing) {
        fwd_on_connection((uv_stream_t *)&pf->listener, 0);
        return;
    }
    fwd_maybe_free(pf);
}

static void fwd_on_connection(uv_stream_t *listener, int status)
{
    struct port_forward *pf = listener->data;
    if (status < 0) {
        v2s_warn("forward %s: accept failed: %s", pf->where, uv_strerror(status));
        return;
    }
    if (conn_limit_take(&pf->limit, pf->shared, uv_now(listener->loop)) < 0) {
        pf->handles_open += refuser_refuse(&pf->refuser);
        return;
    }
    struct fwd_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        conn_limit_give(&pf->limit, pf->shared);
        pf->handles_open += refuser_refuse(&pf->refuser);
        return;
    }
    c->pf = pf;
    uv_tcp_init(listener->loop, &c->client);
    c->client.data = c;
    v2s_list_init(&c->node);
    v2s_list_push_front(&pf->conns, &c->node);
    if (uv_accept(listener, (uv_stream_t *)&c->client) < 0) {
        fwd_conn_close(c, 0);
        return;
    }
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    snprintf(c->peer, sizeof(c->peer), "?");
    if (uv_tcp_getpeername(&c->client, (struct sockaddr *)&ss, &sl) == 0)
        v2s_sockaddr_format((const struct sockaddr *)&ss, c->peer, sizeof(c->peer));
    uv_tcp_nodelay(&c->client, 1);
    int rc = outbound_connect(pf->out, pf->dst.name, &pf->dst.addr, pf->dst.port, pf->connect_timeout_ms, fwd_conn_dialed, c,
                              &c->dial);
    if (rc < 0) {
        v2s_info("%s -> %s: %s (forward %s, connection reset)", c->peer, pf->dst.text, uv_strerror(rc), pf->where);
        c->dial = NULL;
        fwd_conn_close(c, 1);
    }
}

int port_forward_new(struct port_forward **out, const struct port_forward_config *cfg, const struct sockaddr *addr)
{
    struct port_forward *pf = calloc(1, sizeof(*pf));
    if (!pf)
        return UV_ENOMEM;
    int rc = port_target_init(&pf->dst, cfg->host, cfg->port);
    if (rc < 0) {
        free(pf);
        return rc;
    }
    pf->out = cfg->out;
    pf->connect_timeout_ms = cfg->connect_timeout_ms;
    pf->shared = cfg->shared;
    v2s_list_init(&pf->conns);
    uv_tcp_init(cfg->loop, &pf->listener);
    pf->listener.data = pf;
    pf->handles_open = 1;
    refuser_init(&pf->refuser, (uv_stream_t *)&pf->listener, fwd_refused_closed, pf);
    rc = uv_tcp_bind(&pf->listener, addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&pf->listener, 511, fwd_on_connection);
    if (rc < 0) {
        port_forward_close(pf, NULL, NULL);
        return rc;
    }
    /* Named by the address it got (the port the kernel chose for port 0). */
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getsockname(&pf->listener, (struct sockaddr *)&ss, &sl) == 0)
        addr = (const struct sockaddr *)&ss;
    v2s_sockaddr_format(addr, pf->where, sizeof(pf->where));
    char name[V2S_ADDR_STRLEN + 32];
    snprintf(name, sizeof(name), "forward %s", pf->where);
    conn_limit_init(&pf->limit, cfg->max_conns, name, "--listener-max-connections");
    *out = pf;
    return 0;
}

int port_forward_local(const struct port_forward *pf, struct sockaddr *addr, int *len)
{
    return uv_tcp_getsockname(&pf->listener, addr, len);
}

static void fwd_listener_closed(uv_handle_t *h)
{
    struct port_forward *pf = h->data;
    pf->handles_open--;
    fwd_maybe_free(pf);
}

void port_forward_close(struct port_forward *pf, void (*cb)(void *arg), void *arg)
{
    pf->closing = 1;
    pf->close_cb = cb;
    pf->close_arg = arg;
    uv_close((uv_handle_t *)&pf->listener, fwd_listener_closed);
    struct v2s_list *n, *tmp;
    /* fwd_conn_close() only starts the close: c stays on the list until its handle is closed. */
    V2S_LIST_FOREACH_SAFE(n, tmp, &pf->conns) {
        struct fwd_conn *c = V2S_LIST_ENTRY(n, struct fwd_conn, node);
        if (c->state != FWD_CONN_RELAYING)
            fwd_conn_close(c, 0);
    }
}
