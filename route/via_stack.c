/* The tunnel's outbound: wraps stack/tcp.h. A connection is a small record around the stack's
 * struct stack_tcp that lives from connect until the relay's end, so that the relay's totals come
 * back here and are logged by the shared bookkeeping (route/outbound.c). */
#include "route/via_stack.h"

#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "base/list.h"
#include "route/outbound.h"
#include "stack/stack.h"
#include "stack/tcp.h"

struct via_stack {
    struct outbound ob;
    struct stack *stack;
    struct v2s_list conns; /* connecting and relaying */
    int closing;
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
    if (v->closing && v2s_list_empty(&v->conns))
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

static void via_stack_close(struct outbound *ob)
{
    struct via_stack *v = via_stack_of(ob);
    v->closing = 1;
    struct v2s_list *n, *tmp;
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
    *out = &v->ob;
    return 0;
}
