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
 * (cb follows, exactly once, unless cancelled) or a negative errno (cb never runs): among them
 * UV_ENETUNREACH, with nothing sent, for a dst no host can have (0.0.0.0/8, ::, 127/8, ::1,
 * multicast, 255.255.255.255). */
int stack_tcp_connect(struct stack *s, const struct v2s_addr *dst, uint16_t port, unsigned timeout_ms,
                      stack_tcp_connect_cb cb, void *arg, struct stack_tcp **out);
/* Abandons a connection that is not bridged: one whose connect callback has not run yet (the
 * callback never runs then), or one connected or accepted that was not given to
 * stack_tcp_bridge_start() (the peer gets a reset, and what it sent meanwhile is dropped). Never
 * from inside the connect or accept callback (refuse there by returning an error). */
void stack_tcp_cancel(struct stack_tcp *c);
/* The tunnel-side address and port of a connected c. */
void stack_tcp_local(const struct stack_tcp *c, struct v2s_addr *addr, uint16_t *port);
/* The far end of c: the destination it was opened to, or the peer a listener accepted it from. */
void stack_tcp_remote(const struct stack_tcp *c, struct v2s_addr *addr, uint16_t *port);

/* Relays between c and app (a connected uv_tcp_t the caller owns, not reading) until both
 * directions are closed or either side resets. c is one the connect callback was given, or one a
 * listener accepted; either may be bridged later than its callback (a listener's caller opens the
 * application side first): what the peer sends meanwhile is held (within the window it was
 * offered, so nothing is acknowledged beyond it) and goes to app first, a FIN after it, and a
 * reset or the tunnel going down meanwhile makes the bridge end at once with a reset. early (may
 * be NULL) is sent first; it is copied. From here the bridge owns the app handle's lifetime: it
 * closes it and then calls done(arg). label names the connection in the log. */
void stack_tcp_bridge_start(struct stack_tcp *c, uv_tcp_t *app, const uint8_t *early, size_t n,
                            const char *label, stack_tcp_done_cb done, void *arg);

/* --- listening in the tunnel (stack/tcp_listen.c) --- */

struct stack_tcp_listener;

/* A connection arrived and its handshake is complete. Return 0 to keep c (then bridge it with
 * stack_tcp_bridge_start(), or give it up with stack_tcp_cancel(), later, outside this call), or a
 * negative error to refuse it: the stack resets it and c is gone. */
typedef int (*stack_tcp_accept_cb)(void *arg, struct stack_tcp *c);

/* Listens on local:port in the tunnel (local NULL: every tunnel address, IPv4 and IPv6, whatever
 * they are now or become). Works before the tunnel is up and across its going down and up; a
 * listener on a given address stays on it when the tunnel's address changes (and accepts again
 * once the tunnel has it). At most 64 handshakes are half done at once per listener (see
 * tcp_listen.c: a SYN flood holds that many, and later SYNs are dropped until they end). 0, or UV_EADDRINUSE, UV_EINVAL, UV_ENOMEM (cb never runs). */
int stack_tcp_listen(struct stack *s, const struct v2s_addr *local, uint16_t port, stack_tcp_accept_cb cb,
                     void *arg, struct stack_tcp_listener **out);
/* Stops listening at once: SYNs to the port are answered with a reset again, handshakes still
 * half done are reset when they complete. Connections already accepted are not touched. */
void stack_tcp_listen_close(struct stack_tcp_listener *l);

#endif
