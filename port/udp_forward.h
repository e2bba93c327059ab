/* UDP port forwards: -L …/udp (a host UDP socket whose clients' datagrams go into the tunnel
 * through an outbound, route/outbound.h) and -R …/udp (a UDP socket in the tunnel, stack/udp.h,
 * whose remote clients' datagrams go to a host UDP socket of this machine). Each client address
 * and port is one flow with its own path to the destination, so answers reach only the client
 * they belong to; a flow ends after a time without a datagram either way, and a forward keeps at
 * most a set number of flows. */
#ifndef VPN2SOCKS_PORT_UDP_FORWARD_H
#define VPN2SOCKS_PORT_UDP_FORWARD_H

#include <stdint.h>

struct port_udp;
struct outbound;
struct stack;
struct tunnel_settings;
struct sockaddr;
struct v2s_addr;
typedef struct uv_loop_s uv_loop_t;

struct port_udp_config {
    uv_loop_t *loop;
    const char *host;         /* the destination: an IP address, or a name (copied); -L passes the
                               * name to the outbound, -R resolves it on this host at each flow */
    uint16_t port;
    unsigned idle_timeout_ms; /* a flow without a datagram either way this long ends */
    unsigned max_flows;       /* flows at once; past it a new client's datagrams are dropped */
};

/* -L: listens on addr (a host UDP socket); each client's flow is an association of out (the
 * routed outbound: the router applies, names resolve through the tunnel). 0 or a negative uv
 * error (UV_EINVAL: host empty or too long, max_flows or idle_timeout_ms 0). */
int port_udp_local_new(struct port_udp **out, const struct port_udp_config *cfg, struct outbound *ob,
                       const struct sockaddr *addr);
/* -R: listens in the tunnel on local (NULL, 0.0.0.0 or ::: every tunnel address) and port; each
 * remote client's flow is a host UDP socket connected to the destination. s must outlive the
 * forward (or be closed first: its sockets are then detached, see stack/udp.h). 0 or a negative uv
 * error. */
int port_udp_remote_new(struct port_udp **out, const struct port_udp_config *cfg, struct stack *s,
                        const struct v2s_addr *local, uint16_t port);
/* -R: the tunnel came up with ts: warns when the forward listens on one address and it is not
 * one the tunnel has (no datagram can arrive there then), as a TCP -R does. Nothing for -L. */
void port_udp_tunnel_up(struct port_udp *pu, const struct tunnel_settings *ts);
/* -L: the address the socket is bound to (the port the kernel chose for port 0). 0 or a uv
 * error (UV_EINVAL for -R). */
int port_udp_local(const struct port_udp *pu, struct sockaddr *addr, int *len);
/* Flows open now. */
unsigned port_udp_flows(const struct port_udp *pu);
/* Stops listening and ends every flow (each logs its close); cb (may be NULL) runs once every
 * handle of the forward is closed and it is freed. */
void port_udp_close(struct port_udp *pu, void (*cb)(void *arg), void *arg);

#endif
