/* Local port forwards (-L): a TCP listener whose every connection is dialed to one fixed
 * destination through an outbound (route/outbound.h; the routed one, so the router applies) and
 * then relayed by the outbound's bridge, as the SOCKS listener does after its handshake. */
#ifndef VPN2SOCKS_PORT_FORWARD_H
#define VPN2SOCKS_PORT_FORWARD_H

#include <stdint.h>

struct port_forward;
struct outbound;
struct conn_limit;
struct sockaddr;
typedef struct uv_loop_s uv_loop_t;

struct port_forward_config {
    uv_loop_t *loop;
    struct outbound *out;        /* connections are opened through it */
    unsigned connect_timeout_ms; /* given to each connect */
    unsigned max_conns;          /* this listener's cap; 0: none */
    struct conn_limit *shared;   /* the cap over every listener (the caller keeps it), or NULL */
    const char *host;            /* the destination: an IP address, or a name resolved at each
                                  * connection (copied) */
    uint16_t port;
};

/* Listens on addr. 0 or a negative uv error (UV_EINVAL: host too long or empty). */
int port_forward_new(struct port_forward **out, const struct port_forward_config *cfg, const struct sockaddr *addr);
/* The address the listener is bound to (the port the kernel chose for port 0). 0 or a uv error. */
int port_forward_local(const struct port_forward *pf, struct sockaddr *addr, int *len);
/* Stops listening and resets every connection not yet relaying (relays end with their outbound's
 * close); cb runs once all of this forward's handles are closed. */
void port_forward_close(struct port_forward *pf, void (*cb)(void *arg), void *arg);

#endif
