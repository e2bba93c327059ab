/* A local port forward (-L): accept, dial the one destination, relay.
 *
 * The connection caps and the refusal at the cap (route/listener.c) are the SOCKS listener's
 * (socks/server.c): a connection holds a slot of this forward's cap and of the cap shared by every
 * listener from accept until its last handle is closed, and one past the cap is accepted and reset
 * at once.
 * A destination that cannot be reached (refused, unreachable, rejected by the router, a name that
 * does not resolve) ends the client's connection with a reset, the nearest a forward has to a
 * SOCKS error reply: the client sees its connection fail rather than end cleanly. */
#include "port/forward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "base/addr.h"
#include "base/list.h"
#include "base/log.h"
#include "port/target.h"
#include "route/outbound.h"
#include "route/listener.h"

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
    struct listener l;         /* the socket, the caps, the refusal, the close */
    struct v2s_list conns;
    struct port_target dst;
    char where[V2S_ADDR_STRLEN]; /* the listen address, for the log */
    char name[V2S_ADDR_STRLEN + 32]; /* "forward ADDR", the cap's and the accept failure's */
};

static int fwd_busy(void *arg)
{
    struct port_forward *pf = arg;
    return !v2s_list_empty(&pf->conns);
}

static void fwd_free(void *arg)
{
    struct port_forward *pf = arg;
    port_target_free(&pf->dst);
    free(pf);
}

static void fwd_conn_closed(uv_handle_t *h)
{
    struct fwd_conn *c = h->data;
    struct port_forward *pf = c->pf;
    v2s_list_remove(&c->node);
    listener_give(&pf->l);
    free(c);
    listener_maybe_free(&pf->l);
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
    listener_give(&pf->l);
    free(c);
    listener_maybe_free(&pf->l);
}

static void fwd_conn_dialed(void *arg, struct outbound_conn *d, int status, const struct v2s_addr *bound,
                            uint16_t port)
{
    struct fwd_conn *c = arg;
    (void)bound;
    (void)port;
    c->dial = NULL;
    if (status < 0) {
        v2s_info("%s -> %s: %s (forward %s, connection reset)", c->peer, c->pf->dst.text, outbound_strerror(status),
                 c->pf->where);
        fwd_conn_close(c, 1);
        return;
    }
    c->state = FWD_CONN_RELAYING;
    outbound_bridge(d, &c->client, NULL, 0, c->peer, fwd_conn_relay_done, c);
}

/* A connection holding its slot of the caps (route/listener.h). */
static int fwd_accept(void *arg, uv_stream_t *listener)
{
    struct port_forward *pf = arg;
    struct fwd_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    c->pf = pf;
    uv_tcp_init(listener->loop, &c->client);
    c->client.data = c;
    v2s_list_init(&c->node);
    v2s_list_push_front(&pf->conns, &c->node);
    if (uv_accept(listener, (uv_stream_t *)&c->client) < 0) {
        fwd_conn_close(c, 0);
        return 0;
    }
    listener_accepted(&c->client, c->peer, sizeof(c->peer));
    int rc = outbound_connect(pf->out, pf->dst.name, &pf->dst.addr, pf->dst.port, pf->connect_timeout_ms, fwd_conn_dialed, c,
                              &c->dial);
    if (rc < 0) {
        v2s_info("%s -> %s: %s (forward %s, connection reset)", c->peer, pf->dst.text, outbound_strerror(rc),
                 pf->where);
        c->dial = NULL;
        fwd_conn_close(c, 1);
    }
    return 0;
}

static const struct listener_ops fwd_ops = {
    .accept = fwd_accept,
    .busy = fwd_busy,
    .free = fwd_free,
};

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
    v2s_list_init(&pf->conns);
    listener_init(&pf->l, &fwd_ops, pf, cfg->shared, pf->name);
    rc = listener_open(&pf->l, cfg->loop, addr);
    if (rc < 0)
        return rc;
    /* Named by the address it got (the port the kernel chose for port 0). */
    listener_where(&pf->l, addr, pf->where, sizeof(pf->where));
    snprintf(pf->name, sizeof(pf->name), "forward %s", pf->where);
    listener_cap(&pf->l, cfg->max_conns, pf->name);
    *out = pf;
    return 0;
}

int port_forward_local(const struct port_forward *pf, struct sockaddr *addr, int *len)
{
    return listener_local(&pf->l, addr, len);
}

void port_forward_close(struct port_forward *pf, void (*cb)(void *arg), void *arg)
{
    listener_close(&pf->l, cb, arg);
    struct v2s_list *n, *tmp;
    /* fwd_conn_close() only starts the close: c stays on the list until its handle is closed.
     * With a reset, as when the destination cannot be reached: it was not, and a FIN would tell
     * the client that it answered and closed. */
    V2S_LIST_FOREACH_SAFE(n, tmp, &pf->conns) {
        struct fwd_conn *c = V2S_LIST_ENTRY(n, struct fwd_conn, node);
        if (c->state != FWD_CONN_RELAYING)
            fwd_conn_close(c, 1);
    }
}
