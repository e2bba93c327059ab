/* TCP connections through the tunnel, and the bridge that relays one to an application's socket
 * with backpressure both ways, half-close and resets passed through. */
#ifndef VPN2SOCKS_STACK_TCP_H
#define VPN2SOCKS_STACK_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "base/addr.h"

struct stack;
struct stack_tcp;
typedef struct uv_tcp_s uv_tcp_t;

/* status: 0, or UV_ECONNREFUSED (reset / port unreachable), UV_ETIMEDOUT (no answer, or TTL
 * expired), UV_EHOSTUNREACH, UV_ENETUNREACH, UV_EACCES (administratively prohibited),
 * UV_ENETDOWN (tunnel lost), UV_ENOMEM. On failure c is already gone. */
typedef void (*stack_tcp_connect_cb)(void *arg, struct stack_tcp *c, int status);
/* The bridge is over and the application handle closed; the caller may free it now. reset: it
 * ended by a reset or an error, not by two FINs; up: bytes the application sent, down: bytes it
 * was given. The caller logs them (route/outbound.c). */
typedef void (*stack_tcp_done_cb)(void *arg, int reset, uint64_t up, uint64_t down);

/* Opens a connection to dst:port from the tunnel address, giving up after timeout_ms. Returns 0
 * (cb follows, exactly once, unless cancelled) or a negative errno (cb never runs). */
int stack_tcp_connect(struct stack *s, const struct v2s_addr *dst, uint16_t port, unsigned timeout_ms,
                      stack_tcp_connect_cb cb, void *arg, struct stack_tcp **out);
/* Abandons a connection whose connect callback has not run yet; the callback never runs. */
void stack_tcp_cancel(struct stack_tcp *c);
/* The tunnel-side address and port of a connected c. */
void stack_tcp_local(const struct stack_tcp *c, struct v2s_addr *addr, uint16_t *port);

/* Call from within the connect callback (data arriving later would have no reader).
 * Relays between c and app (a connected uv_tcp_t the caller owns, not reading) until both
 * directions are closed or either side resets. early (may be NULL) is sent first; it is copied.
 * From here the bridge owns the app handle's lifetime: it closes it and then calls done(arg).
 * label names the connection in the log. */
void stack_tcp_bridge_start(struct stack_tcp *c, uv_tcp_t *app, const uint8_t *early, size_t n,
                            const char *label, stack_tcp_done_cb done, void *arg);

#endif
