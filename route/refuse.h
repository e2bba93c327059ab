/* Refusing a connection a listener will not serve (a cap reached): take it off the listener and
 * reset it at once, so the client sees a refusal instead of waiting in the accept queue. One per
 * listener, in route/listener.c, which every local TCP listener embeds. */
#ifndef VPN2SOCKS_ROUTE_REFUSE_H
#define VPN2SOCKS_ROUTE_REFUSE_H

#include <uv.h>

/* A refused connection's handle is closed. retry: a connection waited in the listener for the
 * spare handle, and libuv stopped watching the listener meanwhile: the owner takes it now (calls
 * its connection callback, unless it is closing), which starts the watch again. */
typedef void (*refuse_closed_cb)(void *arg, int retry);

struct refuser {
    uv_stream_t *listener;
    uv_tcp_t spare;     /* resets a refused connection when malloc fails */
    int spare_busy;
    int accept_pending; /* a connection waits in the listener for the spare */
    refuse_closed_cb closed;
    void *arg;
};

void refuser_init(struct refuser *r, uv_stream_t *listener, refuse_closed_cb closed, void *arg);
/* Takes the waiting connection and resets it. 1: a handle was opened, and closed(arg, ...)
 * follows once it is closed; 0: out of memory with the spare in use, the connection stays in the
 * listener and closed(arg, 1) follows when the spare is free. */
int refuser_refuse(struct refuser *r);

#endif
