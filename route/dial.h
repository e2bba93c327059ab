/* Opening an outbound TCP connection for a listener (SOCKS, -L): resolve the name, ask the router
 * where the destination goes, connect through the tunnel or directly, then relay to the
 * application's socket. The listeners never see which path was taken. */
#ifndef VPN2SOCKS_ROUTE_DIAL_H
#define VPN2SOCKS_ROUTE_DIAL_H

#include <stddef.h>
#include <stdint.h>

#include "route/router.h"
#include "base/addr.h"

struct stack;
struct dial;
typedef struct uv_loop_s uv_loop_t;
typedef struct uv_tcp_s uv_tcp_t;

struct dial_ctx {
    uv_loop_t *loop;
    struct stack *stack;
    struct router *router;
    unsigned connect_timeout_ms;
};

/* status: 0, UV_EAI_NONAME / UV_EAI_AGAIN (name), UV_EACCES (rejected by the router or the
 * network), UV_ENETUNREACH, UV_EHOSTUNREACH, UV_ECONNREFUSED, UV_ETIMEDOUT, UV_ENETDOWN, ...
 * On success bound/port are the local end of the outbound connection, and the callback must call
 * dial_bridge() before it returns. On failure d is gone. */
typedef void (*dial_cb)(void *arg, struct dial *d, int status, const struct v2s_addr *bound, uint16_t port);
typedef void (*dial_done_cb)(void *arg);

/* Starts a connection to name (a host name or a numeric address) or, when name is NULL, to addr.
 * Returns 0 (cb follows exactly once unless cancelled) or a negative error (cb never runs). */
int dial_start(const struct dial_ctx *ctx, const char *name, const struct v2s_addr *addr, uint16_t port,
               dial_cb cb, void *arg, struct dial **out);
/* Abandons a dial whose callback has not run. */
void dial_cancel(struct dial *d);
/* Relays between the connection and app (a connected uv_tcp_t, not reading) until both sides are
 * done; the relay closes app, then calls done(arg). early bytes (copied) go out first. label names
 * the client in the log. */
void dial_bridge(struct dial *d, uv_tcp_t *app, const uint8_t *early, size_t n, const char *client,
                 dial_done_cb done, void *arg);
/* Which way the connection went, once connected. */
enum router_verdict dial_verdict(const struct dial *d);

#endif
