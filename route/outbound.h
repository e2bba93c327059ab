/* One outbound interface: how a listener (SOCKS today; the HTTP proxy, -L/-R forwards and the SOCKS
 * UDP relay next) opens a connection and relays a client to it, without knowing which path it
 * takes. An ops table in the style of struct tunnel_ops, with three implementations:
 *
 *   - through the stack (route/via_stack.c): a TCP connection inside the tunnel;
 *   - direct (route/direct.c): a socket of this host;
 *   - routed (route/dial.c): resolves a name, asks the router for each address, and hands the
 *     connection to the outbound the router picked (tunnel or direct). This is the one listeners
 *     are given; the verdict is looked at once, there, and nowhere after.
 *
 * The bookkeeping every implementation shares (how a relay is named in the log, its "open" and
 * "closed ... bytes up, down" lines, how a reset is reported) is written once, in route/outbound.c.
 *
 * Datagrams get their own ops next to the stream ones (udp_open, udp_send, udp_close below), so
 * a listener holds one struct outbound for both. */
#ifndef VPN2SOCKS_ROUTE_OUTBOUND_H
#define VPN2SOCKS_ROUTE_OUTBOUND_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "base/addr.h"

typedef struct uv_tcp_s uv_tcp_t;

struct outbound;
struct outbound_udp;
struct v2s_log_field;

/* The part of a connection every implementation embeds first: the ops that own it. */
struct outbound_conn {
    struct outbound *ob;
};

/* status: 0, UV_EAI_NONAME / UV_EAI_AGAIN (name), UV_EACCES (rejected by the router or the
 * network), UV_ELOOP (a direct destination that is one of our own listeners), UV_ENETUNREACH,
 * UV_EHOSTUNREACH, UV_ECONNREFUSED, UV_ETIMEDOUT, UV_ENETDOWN, UV_ECANCELED (the outbound was
 * closed), ... On success bound/port are the local end of the outbound connection, and the
 * callback must call outbound_bridge() before it returns: data arriving later would have no
 * reader. On failure c is NULL (already gone). */
typedef void (*outbound_connect_cb)(void *arg, struct outbound_conn *c, int status, const struct v2s_addr *bound,
                                    uint16_t port);
/* The relay is over and the client handle closed; the listener may free what holds it. */
typedef void (*outbound_done_cb)(void *arg);
/* A datagram arrived for a UDP association, from from:port (what its sender would see as the
 * peer); data is borrowed for the call. */
typedef void (*outbound_udp_recv_cb)(void *arg, const struct v2s_addr *from, uint16_t port, const uint8_t *data,
                                     size_t len);

struct outbound_ops {
    /* Opens a TCP connection to name (a host name; NULL: addr) port, giving up after timeout_ms.
     * Only the routed outbound takes names: the stack and direct ones answer UV_EINVAL to one.
     * 0 (cb follows exactly once, unless cancelled) or a negative uv error (cb never runs). */
    int (*connect)(struct outbound *ob, const char *name, const struct v2s_addr *addr, uint16_t port,
                   unsigned timeout_ms, outbound_connect_cb cb, void *arg, struct outbound_conn **out);
    /* Abandons a connection whose callback has not run; the callback never runs then. */
    void (*cancel)(struct outbound_conn *c);
    /* Relays between c and app (a connected uv_tcp_t the caller owns) until both directions are
     * closed or either side resets; early bytes (copied) go out first. app may still be being
     * read by the caller (the SOCKS listener's, to save the epoll_ctl() calls of a stop and a
     * start): the relay starts its reads with v2s_read_take() (base/uvstream.h), which takes the
     * reading over, and the caller stops its own once this returns if the relay did not. From here
     * the relay owns app: it closes it, then calls done(arg). label names the relay in the log;
     * each layer adds what it knows (the routed outbound is given the client's name and passes
     * "client -> destination (tunnel)" on). */
    void (*bridge)(struct outbound_conn *c, uv_tcp_t *app, const uint8_t *early, size_t n, const char *label,
                   outbound_done_cb done, void *arg);
    /* Whether this path can reach an address of this family now (the tunnel may lack IPv6).
     * NULL: every family. */
    int (*can_reach)(const struct outbound *ob, int family);
    /* Resets every connection and relay, fails pending connects with UV_ECANCELED, ends every UDP
     * association (recv never runs again, udp_send answers UV_ECANCELED; its owner still calls
     * outbound_udp_close(), which then only frees it), and once the last handle is closed and
     * the last association freed, frees the outbound and calls outbound_free_closed(). */
    void (*close)(struct outbound *ob);

    /* Datagrams (the -L/udp forwards; the SOCKS UDP relay next). An association is one local
     * port that sends to any destination and hands every answer to recv. */
    /* Opens one. 0, or a negative uv error (UV_ENOMEM, UV_ENETDOWN, UV_ECANCELED: the outbound
     * is closing). */
    int (*udp_open)(struct outbound *ob, outbound_udp_recv_cb recv, void *arg, struct outbound_udp **out);
    /* Sends one datagram (data copied if it has to wait) to name (a host name; NULL: dst) port.
     * Datagrams are never buffered without bound: what cannot go is dropped, as IP would.
     * 0 (sent, or queued behind a name being resolved), or a negative uv error when it is known
     * at once (UV_EACCES rejected by the router, UV_ELOOP a direct destination that is one of
     * our own UDP sockets, UV_EMSGSIZE, UV_ENETDOWN, UV_EINVAL: a name to an outbound that takes
     * none, UV_ENOBUFS: dropped, the host socket's send queue is full or too many datagrams wait
     * for names, UV_ECANCELED: the outbound was closed). Errors learnt later (a name that does
     * not resolve) are logged once per association and destination, and the datagram dropped;
     * the routed outbound logs its rejections (UV_EACCES, UV_ELOOP) that way too, so the caller
     * need not. */
    int (*udp_send)(struct outbound_udp *u, const char *name, const struct v2s_addr *dst, uint16_t port,
                    const uint8_t *data, size_t len);
    /* Closes the association at once; recv never runs again. */
    void (*udp_close)(struct outbound_udp *u);
};

/* The part of a UDP association every implementation embeds first. */
struct outbound_udp {
    struct outbound *ob;
};

struct outbound {
    const struct outbound_ops *ops;
    const char *name; /* how the log names the path: "tunnel", "direct" */
    void (*close_cb)(void *arg); /* from outbound_close() */
    void *close_arg;
};

static inline int outbound_connect(struct outbound *ob, const char *name, const struct v2s_addr *addr,
                                   uint16_t port, unsigned timeout_ms, outbound_connect_cb cb, void *arg,
                                   struct outbound_conn **out)
{
    return ob->ops->connect(ob, name, addr, port, timeout_ms, cb, arg, out);
}

static inline void outbound_cancel(struct outbound_conn *c)
{
    c->ob->ops->cancel(c);
}

static inline void outbound_bridge(struct outbound_conn *c, uv_tcp_t *app, const uint8_t *early, size_t n,
                                   const char *label, outbound_done_cb done, void *arg)
{
    c->ob->ops->bridge(c, app, early, n, label, done, arg);
}

static inline int outbound_can_reach(const struct outbound *ob, int family)
{
    return ob->ops->can_reach ? ob->ops->can_reach(ob, family) : 1;
}

static inline int outbound_udp_open(struct outbound *ob, outbound_udp_recv_cb recv, void *arg,
                                    struct outbound_udp **out)
{
    return ob->ops->udp_open ? ob->ops->udp_open(ob, recv, arg, out) : -ENOTSUP /* UV_ENOTSUP */;
}

static inline int outbound_udp_send(struct outbound_udp *u, const char *name, const struct v2s_addr *dst,
                                    uint16_t port, const uint8_t *data, size_t len)
{
    return u->ob->ops->udp_send(u, name, dst, port, data, len);
}

static inline void outbound_udp_close(struct outbound_udp *u)
{
    u->ob->ops->udp_close(u);
}

/* Ends everything ob carries (see the close op); cb (may be NULL) runs once ob is freed. The
 * caller does not use ob again. */
static inline void outbound_close(struct outbound *ob, void (*cb)(void *arg), void *arg)
{
    ob->close_cb = cb;
    ob->close_arg = arg;
    ob->ops->close(ob);
}

/* For implementations, at the end of a close: frees mem (the object that holds ob), then runs the
 * close callback. */
void outbound_free_closed(struct outbound *ob, void *mem);

/* --- the bookkeeping every implementation shares (route/outbound.c) --- */

/* What a connect status means, for a listener's log line and answer: uv_strerror(), except for
 * the statuses an outbound gives a meaning of its own (UV_ELOOP). */
const char *outbound_strerror(int status);

enum { OUTBOUND_LABEL_MAX = 320 };

/* The label of a relay: "client -> dst:port (via)", or "client -> name:port [dst:port] (via)" when
 * the client asked for a name (name: as shown in the log, escaped; NULL or numeric: none). */
void outbound_label(char *buf, size_t cap, const char *client, const char *name, const struct v2s_addr *dst,
                    uint16_t port, const char *via);
/* A relay starts: "LABEL open" (event relay_open). */
void outbound_log_open(const char *label);
/* A relay ended: "LABEL closed[ by reset] (U bytes up, D down)"; up is what the client sent
 * (event relay_closed). */
void outbound_log_closed(const char *label, int reset, uint64_t up, uint64_t down);

/* A label taken apart again for a log line's fields (JSON logs): "CLIENT -> DEST (VIA)",
 * "CLIENT -> NAME:PORT [ADDR:PORT] (VIA)" or "CLIENT <- PEER (VIA)" gives client, destination,
 * address (NULL unless a name was asked for) and via, pointing into buf. A label of another shape
 * gives 0 fields. */
struct outbound_label_parts {
    char buf[OUTBOUND_LABEL_MAX];
    const char *client, *destination, *address, *via;
};
/* Fills f (room for 4) with the parts of label as text fields; returns how many. */
size_t outbound_label_fields(const char *label, struct outbound_label_parts *p, struct v2s_log_field *f);
/* Makes the close of h send a TCP reset instead of a FIN (SO_LINGER 0): how a reset or an error on
 * one side is passed to the other. */
void outbound_set_reset(uv_tcp_t *h);

#endif
