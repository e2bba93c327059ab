/* The SOCKS5 / SOCKS4a proxy listener. */
#ifndef VPN2SOCKS_SOCKS_SERVER_H
#define VPN2SOCKS_SOCKS_SERVER_H

struct socks_server;
struct outbound;
struct conn_limit;
struct v2s_credentials;
struct stack;
struct router;
struct sockaddr;
typedef struct uv_loop_s uv_loop_t;

struct socks_server_config {
    uv_loop_t *loop;
    struct outbound *out;          /* connections are opened through it (route/outbound.h) */
    unsigned connect_timeout_ms;   /* given to each connect */
    unsigned max_conns;            /* this listener's cap; 0: none */
    struct conn_limit *shared;     /* the cap over every listener (the caller keeps it), or NULL */
    unsigned handshake_timeout_ms; /* from accept to a complete request, the login included */
    struct v2s_credentials *credentials; /* users who may log in (the caller keeps it for the listener's
                                          * life); NULL: no authentication */
    /* UDP ASSOCIATE: each association's relay (socks/udp_relay.h) ends after this long without a
     * datagram; at most udp_max_assocs at once on this listener (0: UDP ASSOCIATE refused). */
    unsigned udp_idle_timeout_ms;
    unsigned udp_max_assocs;
    /* BIND: listens in the tunnel through stack, for a DST.ADDR the router sends into the tunnel
     * (both outlive the listener; NULL: BIND refused with "command not supported"). */
    struct stack *stack;
    const struct router *router;
};

/* Listens on addr. 0 or a negative uv error. */
int socks_server_new(struct socks_server **out, const struct socks_server_config *cfg, const struct sockaddr *addr);
/* The address the listener is bound to (the port the kernel chose for port 0). 0 or a uv error. */
int socks_server_local(const struct socks_server *srv, struct sockaddr *addr, int *len);
/* Stops listening and ends every connection; cb runs once all handles are closed. */
void socks_server_close(struct socks_server *srv, void (*cb)(void *arg), void *arg);

#endif
