/* The routed outbound: what a listener (SOCKS, -L) dials through. It resolves the name, asks the
 * router where each address goes, and hands the connection to the outbound of that verdict (the
 * tunnel's or the direct one); it is a struct outbound itself (route/outbound.h), so listeners
 * never see which path was taken, and nothing after it looks at the verdict. Datagrams take the
 * same way, decided per destination (the UDP ops; "datagrams" in route/dial.c). */
#ifndef VPN2SOCKS_ROUTE_DIAL_H
#define VPN2SOCKS_ROUTE_DIAL_H

#include "route/router.h"

struct outbound;
struct stack;
typedef struct uv_loop_s uv_loop_t;

/* A routed outbound's TCP connections (the metrics): each one asked for counts once, under the
 * verdict of the first address it was sent to (a name whose every address is refused, or refused by
 * --others reject, counts as rejected; one that fails to connect still counts under its verdict;
 * one whose name does not resolve is not counted, having no address to judge). open: relays
 * bridged and not over yet. */
struct dial_stats {
    uint64_t total[ROUTER_REJECT + 1]; /* [ROUTER_TUNNEL], [ROUTER_DIRECT], [ROUTER_REJECT] */
    uint64_t open;
};

struct dial_config {
    uv_loop_t *loop;
    struct stack *stack;           /* resolves the names router_name_decide() sends to the tunnel's
                                    * DNS servers; NULL: the host's resolver for every name */
    const struct router *router;   /* read at each connect: it follows the tunnel's routes */
    struct outbound *via[ROUTER_REJECT]; /* the outbound of each verdict: [ROUTER_TUNNEL], [ROUTER_DIRECT] */
    struct dial_stats *stats; /* counted here when not NULL; the caller's, and it must outlive
                               * every relay (they end after the outbound is closed) */
};

/* 0 or UV_ENOMEM. The outbounds in via are the caller's: close them after this one. */
int dial_new(struct outbound **out, const struct dial_config *cfg);

#endif
