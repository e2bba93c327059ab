/* Remote port forwards (-R): a listener in the tunnel (stack/tcp.h, stack_tcp_listen()) whose
 * every connection is connected to one fixed destination reachable from this host, then relayed
 * by the stack's bridge (half-close, resets and backpressure as for every tunnelled connection). */
#ifndef VPN2SOCKS_PORT_REVERSE_H
#define VPN2SOCKS_PORT_REVERSE_H

#include <stdint.h>

struct port_reverse;
struct stack;
struct conn_limit;
struct sockaddr;
struct tunnel_settings;
typedef struct uv_loop_s uv_loop_t;

struct port_reverse_config {
    uv_loop_t *loop;
    struct stack *stack;         /* listens in it */
    unsigned connect_timeout_ms; /* resolving and connecting to the destination, together */
    unsigned max_conns;          /* this listener's cap; 0: none */
    struct conn_limit *shared;   /* the cap over every listener (the caller keeps it), or NULL */
    const char *host;            /* the destination: an IP address, or a name resolved on this
                                  * host at each connection (copied) */
    uint16_t port;
};

/* Listens in the tunnel on listen's address and port; the unspecified address (0.0.0.0 or ::)
 * means every tunnel address, IPv4 and IPv6. It may be called before the tunnel is up. 0 or a
 * negative uv error (UV_EINVAL: host too long or empty, port 0; UV_EADDRINUSE). */
int port_reverse_new(struct port_reverse **out, const struct port_reverse_config *cfg, const struct sockaddr *listen);
/* The tunnel came up with ts: logs where the forward listens, and warns when its address is not
 * one the tunnel has (nothing can arrive there then). */
void port_reverse_tunnel_up(struct port_reverse *pr, const struct tunnel_settings *ts);
/* Stops listening and ends every connection not yet relaying (its tunnel side reset); relays go
 * on until they end (or the stack closes). cb runs once the last of them has ended and
 * everything of the forward is freed. */
void port_reverse_close(struct port_reverse *pr, void (*cb)(void *arg), void *arg);

#endif
