/* The part every local TCP listener (socks/, http/, port/'s -L) shares: the host socket, its
 * connection caps (this listener's and the one shared by every listener, base/conn_limit.h), the
 * refusal of a connection past a cap or when memory runs out (route/refuse.h), and the close:
 * stop accepting, then free the owner once the listener's handles are closed and the owner has
 * nothing else open. The owner embeds a struct listener and keeps its own connections; for each
 * connection it is given one callback, after the caps' slot is taken. Here too, the record of
 * this process's own sockets, TCP and UDP, that the routed outbound refuses to send to
 * (listener_is_own()). */
#ifndef VPN2SOCKS_ROUTE_LISTENER_H
#define VPN2SOCKS_ROUTE_LISTENER_H

#include <uv.h>

#include "base/addr.h"
#include "base/conn_limit.h"
#include "base/list.h"
#include "route/refuse.h"

/* A socket of this process that a direct destination must not be (listener_is_own()): every TCP
 * listener (recorded by listener_open()), and the UDP sockets that take datagrams to send on (a -L
 * .../udp forward's, a SOCKS UDP association's relay). Sent to, any of them would hand what it got
 * to the routed outbound again: a -L forward pointed at itself, a SOCKS client sending to it. */
struct listener_own {
    struct v2s_list node; /* on the process's list while recorded */
    struct v2s_addr addr; /* where the socket is bound (the port the kernel chose for 0) */
    uint16_t port;
    int socktype;         /* SOCK_STREAM or SOCK_DGRAM */
};

struct listener_ops {
    /* A connection waits in the listener and holds a slot of both caps: the owner allocates its
     * connection and takes it with uv_accept(server, ...). 0: done (whatever happened to it after
     * the allocation is the owner's; its slot is given back with listener_give() when its last
     * handle is closed); -1: out of memory, nothing done: the slot is given back and the
     * connection refused. */
    int (*accept)(void *owner, uv_stream_t *server);
    /* Whether the owner still has something open (connections, ...): the free waits for it. */
    int (*busy)(void *owner);
    /* Frees the owner (and so the listener in it); the close callback is called after. */
    void (*free)(void *owner);
};

struct listener {
    uv_tcp_t tcp;
    struct conn_limit limit;   /* this listener's cap */
    struct conn_limit *shared; /* every listener's, or NULL */
    struct refuser refuser;    /* resets connections past the caps */
    const char *who;           /* "socks", "forward ADDR": "<who>: accept failed: ..." */
    const struct listener_ops *ops;
    void *owner;
    int closing;
    int handles_open;          /* the listener's and the refused connections' */
    struct listener_own own;   /* recorded while listening */
    void (*close_cb)(void *arg);
    void *close_arg;
};

/* Before listener_open(): the owner, its ops, the shared cap (or NULL), and who names it in the
 * "accept failed" line (kept as given: the owner's string, filled in before the loop runs). */
void listener_init(struct listener *l, const struct listener_ops *ops, void *owner, struct conn_limit *shared,
                   const char *who);
/* Names this listener's cap (what, for its log line) with at most max connections (0: no cap). */
void listener_cap(struct listener *l, unsigned max, const char *what);
/* Opens the socket on loop at addr and listens. 0, or a negative uv error: then the listener is
 * closing, and the owner is freed through ops->free once its handle is closed. */
int listener_open(struct listener *l, uv_loop_t *loop, const struct sockaddr *addr);
/* Formats the address the listener got (the port the kernel chose for port 0), or addr when the
 * socket cannot tell. */
void listener_where(const struct listener *l, const struct sockaddr *addr, char *buf, size_t len);
int listener_local(const struct listener *l, struct sockaddr *addr, int *len);
/* For an owner's accepted connection: its peer's address into peer ("?" when the socket cannot
 * tell). It has no Nagle delay: that is set on the listening socket and inherited. */
void listener_accepted(uv_tcp_t *client, char *peer, size_t len);
/* Gives back a connection's slot of the caps. */
void listener_give(struct listener *l);
/* Frees the owner if it is closing and nothing is left open. */
void listener_maybe_free(struct listener *l);
/* Stops accepting; cb(arg) follows the owner's free. The owner then closes its connections. */
void listener_close(struct listener *l, void (*cb)(void *arg), void *arg);
/* Before listener_own_add() or listener_own_remove(). */
void listener_own_init(struct listener_own *o);
/* Records the bound socket h (a uv_tcp_t or uv_udp_t) with the address the kernel gave it, until
 * listener_own_remove(); nothing when the socket cannot tell. Removing twice is harmless. */
void listener_own_add(struct listener_own *o, const uv_handle_t *h);
void listener_own_remove(struct listener_own *o);
/* Whether a connection (SOCK_STREAM) or a datagram (SOCK_DGRAM) from this host to addr:port would
 * reach one of the sockets recorded in this process: the same type and port, and addr the
 * socket's address, or any address of this host (loopback, an interface's, unspecified) when the
 * socket is bound to a wildcard. 0.0.0.0 and :: count as 127.0.0.1 and ::1, where Linux sends to
 * them. The routed outbound refuses such a direct destination (route/dial.c): each connection
 * would make another to itself, each datagram would be sent again. */
int listener_is_own(const struct v2s_addr *addr, uint16_t port, int socktype);
/* Tests only: how many recorded sockets listener_is_own() has compared addr:port with, in all. */
extern unsigned long listener_own_compared;

#endif
