/* The tunnel's outbound: wraps stack/tcp.h and stack/udp.h. A connection is a small record around
 * the stack's struct stack_tcp that lives from connect until the relay's end, so that the relay's
 * totals come back here and are logged by the shared bookkeeping (route/outbound.c). A UDP
 * association is one stack_udp socket on a random port of the tunnel address. */
#include "route/via_stack.h"

#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "base/list.h"
#include "route/outbound.h"
#include "stack/stack.h"
#include "stack/tcp.h"
#include "stack/udp.h"

struct via_stack {
    struct outbound ob;
    struct stack *stack;
    struct v2s_list conns; /* connecting and relaying */
    struct v2s_list udps;  /* UDP associations not yet closed by their owners */
    int closing;
};

struct via_stack_udp {
    struct outbound_udp base;
    struct v2s_list node;
    struct stack_udp *sock; /* NULL once ended by via_stack_close() */
    outbound_udp_recv_cb recv;
    void *arg;
};

struct via_stack_conn {
    struct outbound_conn base;
    struct v2s_list node;
    struct stack_tcp *tcp;
    outbound_connect_cb cb;
    void *arg;
    outbound_done_cb done;
    void *done_arg;
    int connecting;
    char label[OUTBOUND_LABEL_MAX];
};

static struct via_stack *via_stack_of(struct outbound *ob)
{
    return (struct via_stack *)ob;
}

static void via_stack_maybe_free(struct via_stack *v)
{
    if (v->closing && v2s_list_empty(&v->conns) && v2s_list_empty(&v->udps))
        outbound_free_closed(&v->ob, v);
}

static void via_stack_conn_free(struct via_stack_conn *c)
{
    struct via_stack *v = via_stack_of(c->base.ob);
    v2s_list_remove(&c->node);
    free(c);
    via_stack_maybe_free(v);
}

static void via_stack_connected(void *arg, struct stack_tcp *tcp, int status)
{
    struct via_stack_conn *c = arg;
    outbound_connect_cb cb = c->cb;
    void *cb_arg = c->arg;
    c->connecting = 0;
    if (status < 0) {
        via_stack_conn_free(c);
        cb(cb_arg, NULL, status, NULL, 0);
        return;
    }
    struct v2s_addr bound;
    uint16_t port;
    stack_tcp_local(tcp, &bound, &port);
    cb(cb_arg, &c->base, 0, &bound, port);
}

static int via_stack_connect(struct outbound *ob, const char *name, const struct v2s_addr *addr, uint16_t port,
                             unsigned timeout_ms, outbound_connect_cb cb, void *arg, struct outbound_conn **out)
{
    struct via_stack *v = via_stack_of(ob);
    if (name || v->closing)
        return name ? UV_EINVAL : UV_ECANCELED;
    struct via_stack_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return UV_ENOMEM;
    c->base.ob = ob;
    c->cb = cb;
    c->arg = arg;
    c->connecting = 1;
    v2s_list_init(&c->node);
    v2s_list_push_front(&v->conns, &c->node);
    int rc = stack_tcp_connect(v->stack, addr, port, timeout_ms, via_stack_connected, c, &c->tcp);
    if (rc < 0) {
        c->connecting = 0;
        via_stack_conn_free(c);
        return rc;
    }
    *out = &c->base;
    return 0;
}

static void via_stack_cancel(struct outbound_conn *base)
{
    struct via_stack_conn *c = (struct via_stack_conn *)base;
    /* Only a pending connect can be cancelled in the stack; a connected one must be bridged from
     * its callback (stack/tcp.h), as every listener does, so here it is only forgotten. */
    if (c->connecting)
        stack_tcp_cancel(c->tcp);
    via_stack_conn_free(c);
}

static void via_stack_relay_done(void *arg, int reset, uint64_t up, uint64_t down)
{
    struct via_stack_conn *c = arg;
    outbound_done_cb done = c->done;
    void *done_arg = c->done_arg;
    outbound_log_closed(c->label, reset, up, down);
    via_stack_conn_free(c);
    if (done)
        done(done_arg);
}

static void via_stack_bridge(struct outbound_conn *base, uv_tcp_t *app, const uint8_t *early, size_t n,
                             const char *label, outbound_done_cb done, void *arg)
{
    struct via_stack_conn *c = (struct via_stack_conn *)base;
    c->done = done;
    c->done_arg = arg;
    snprintf(c->label, sizeof(c->label), "%s", label);
    outbound_log_open(c->label);
    stack_tcp_bridge_start(c->tcp, app, early, n, c->label, via_stack_relay_done, c);
}

static int via_stack_can_reach(const struct outbound *ob, int family)
{
    return stack_has_family(((const struct via_stack *)ob)->stack, family);
}

/* --- datagrams --- */

static void via_stack_udp_recv(void *arg, const struct v2s_addr *src, uint16_t sport, const struct v2s_addr *dst,
                               const uint8_t *data, size_t len)
{
    struct via_stack_udp *u = arg;
    (void)dst;
    u->recv(u->arg, src, sport, data, len);
}

static int via_stack_udp_open(struct outbound *ob, outbound_udp_recv_cb recv, void *arg, struct outbound_udp **out)
{
    struct via_stack *v = via_stack_of(ob);
    if (v->closing)
        return UV_ECANCELED;
    struct via_stack_udp *u = calloc(1, sizeof(*u));
    if (!u)
        return UV_ENOMEM;
    u->base.ob = ob;
    u->recv = recv;
    u->arg = arg;
    int rc = stack_udp_open(v->stack, NULL, 0, via_stack_udp_recv, u, &u->sock);
    if (rc < 0) {
        free(u);
        return rc;
    }
    v2s_list_init(&u->node);
    v2s_list_push_front(&v->udps, &u->node);
    *out = &u->base;
    return 0;
}

static int via_stack_udp_send(struct outbound_udp *base, const char *name, const struct v2s_addr *dst,
                              uint16_t port, const uint8_t *data, size_t len)
{
    struct via_stack_udp *u = (struct via_stack_udp *)base;
    if (name)
        return UV_EINVAL;
    if (!u->sock)
        return UV_ECANCELED;
    return stack_udp_send(u->sock, dst, port, data, len);
}

static void via_stack_udp_close(struct outbound_udp *base)
{
    struct via_stack_udp *u = (struct via_stack_udp *)base;
    struct via_stack *v = via_stack_of(base->ob);
    if (u->sock)
        stack_udp_close(u->sock);
    v2s_list_remove(&u->node);
    free(u);
    via_stack_maybe_free(v);
}

static void via_stack_close(struct outbound *ob)
{
    struct via_stack *v = via_stack_of(ob);
    v->closing = 1;
    struct v2s_list *n, *tmp;
    /* Associations end now; each is freed by its owner's outbound_udp_close(). */
    V2S_LIST_FOREACH(n, &v->udps) {
        struct via_stack_udp *u = V2S_LIST_ENTRY(n, struct via_stack_udp, node);
        if (u->sock)
            stack_udp_close(u->sock);
        u->sock = NULL;
    }
    V2S_LIST_FOREACH_SAFE(n, tmp, &v->conns) {
        struct via_stack_conn *c = V2S_LIST_ENTRY(n, struct via_stack_conn, node);
        if (!c->connecting)
            continue; /* a relay: stack_close() resets it, and its end frees c */
        outbound_connect_cb cb = c->cb;
        void *arg = c->arg;
        stack_tcp_cancel(c->tcp);
        c->connecting = 0;
        v2s_list_remove(&c->node);
        free(c);
        cb(arg, NULL, UV_ECANCELED, NULL, 0);
    }
    via_stack_maybe_free(v);
}

static const struct outbound_ops via_stack_ops = {
    .connect = via_stack_connect,
    .cancel = via_stack_cancel,
    .bridge = via_stack_bridge,
    .can_reach = via_stack_can_reach,
    .close = via_stack_close,
    .udp_open = via_stack_udp_open,
    .udp_send = via_stack_udp_send,
    .udp_close = via_stack_udp_close,
};

int via_stack_new(struct outbound **out, struct stack *s)
{
    struct via_stack *v = calloc(1, sizeof(*v));
    if (!v)
        return UV_ENOMEM;
    v->ob.ops = &via_stack_ops;
    v->ob.name = "tunnel";
    v->stack = s;
    v2s_list_init(&v->conns);
    v2s_list_init(&v->udps);
    *out = &v->ob;
    return 0;
}
