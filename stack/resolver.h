/* Name resolution through the tunnel: A and AAAA queries over UDP (TCP when an answer is
 * truncated) to the DNS servers the VPN announced, with failover between them, the search domains
 * tried for single-label names, and a cache that honours TTLs and negative answers. Which names
 * come here at all is route/router.h's router_name_decide(). */
#ifndef VPN2SOCKS_STACK_RESOLVER_H
#define VPN2SOCKS_STACK_RESOLVER_H

#include <stddef.h>

#include "base/addr.h"

struct stack;
struct resolver_query;

/* status: 0 with at least one address (IPv4 ones first), UV_EAI_NONAME (no such name),
 * UV_EAI_AGAIN (no answer in time, or server failure), UV_ENETDOWN (tunnel lost, or up again
 * without DNS servers). addrs is valid only during the call. */
typedef void (*resolver_cb)(void *arg, int status, const struct v2s_addr *addrs, size_t n);

/* Starts resolving name. Returns 0 (cb follows exactly once unless cancelled) or a negative
 * error: UV_EINVAL for a malformed name, UV_ENETDOWN when the tunnel is down or has no DNS. */
int resolver_resolve(struct stack *s, const char *name, resolver_cb cb, void *arg,
                     struct resolver_query **out);
/* Stops a query; its callback never runs. */
void resolver_cancel(struct resolver_query *q);
/* Forgets every cached answer (tests; the cache also goes when the servers or domains change). */
void resolver_flush(struct stack *s);

#endif
