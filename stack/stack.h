/* The embedded TCP/IP stack: lwIP on the libuv loop, one netif over the tunnel. Callers never see
 * an lwIP type. */
#ifndef VPN2SOCKS_STACK_STACK_H
#define VPN2SOCKS_STACK_STACK_H

#include <stddef.h>
#include <stdint.h>

#include "base/addr.h"

struct stack;
struct tunnel;
struct tunnel_settings;
typedef struct uv_loop_s uv_loop_t;

/* Creates the (single) stack on loop; packets it emits go to tunnel_send(t). 0 or -errno. */
int stack_new(struct stack **out, uv_loop_t *loop, struct tunnel *t);
/* Closes every connection and handle; cb runs when s has been freed. Logs the statistics first. */
void stack_close(struct stack *s, void (*cb)(void *arg), void *arg);
/* Logs what the tunnel sent that was dropped, by reason, loss recovery and memory (at exit and
 * on SIGUSR1). */
void stack_log_stats(const struct stack *s);

/* Why the stack dropped a packet from the tunnel (or a datagram of its UDP sockets). lwIP's
 * per-protocol counters are summed by kind; "other" is what lwIP dropped for none of those. */
enum stack_drop_reason {
    STACK_DROP_NOT_TAKEN,    /* lwIP could not take it (malformed, no memory) */
    STACK_DROP_CHECKSUM,
    STACK_DROP_LENGTH,
    STACK_DROP_PROTOCOL,     /* no protocol, port or connection took it */
    STACK_DROP_OPTIONS,
    STACK_DROP_MEMORY,
    STACK_DROP_OTHER,
    STACK_DROP_ICMP_IGNORED, /* ICMP errors naming no connection we opened */
    STACK_DROP_UDP,          /* datagrams of UDP sockets refused or not delivered */
    STACK_DROP_REASONS,
};

struct stack_stats {
    uint64_t dropped[STACK_DROP_REASONS];
    size_t heap_bytes; /* lwIP's heap in use */
    size_t held_bytes; /* received data held for applications */
    uint64_t dns_queries, dns_cache_hits, dns_failures;
};

/* The counters as they are now (cheap: the metrics endpoint reads them at each scrape). */
void stack_get_stats(const struct stack *s, struct stack_stats *out);
/* "not_taken", "checksum", ... for the metrics' reason label. */
const char *stack_drop_reason_name(enum stack_drop_reason r);
/* The lwIP release compiled in ("2.2.0"), for --version: only stack/ sees lwIP's headers. */
const char *stack_lwip_version(void);

/* Tunnel events, forwarded by whoever owns the tunnel. */
/* The MTU taken when the tunnel gives none (ts->mtu 0): IPv6's minimum, safe for IPv4 too. */
enum { STACK_MTU_DEFAULT = 1280 };
/* The tunnel is up (again): take its address, MTU and DNS servers. 0 or -EINVAL. */
int stack_tunnel_up(struct stack *s, const struct tunnel_settings *ts);
/* One IP packet from the tunnel (borrowed). Malformed packets are counted and dropped. */
void stack_input(struct stack *s, const uint8_t *pkt, size_t len);
/* The tunnel's queue drained: resume reading applications that were paused for it. */
void stack_tunnel_writable(struct stack *s);
/* The tunnel is gone: every tunneled connection is reset and no new one starts until up. */
void stack_tunnel_down(struct stack *s);

/* Whether the tunnel has an address of this family (AF_INET / AF_INET6) right now. */
int stack_has_family(const struct stack *s, int family);
/* The tunnel's address of this family, right now (what a SOCKS BIND announces). 0, or
 * UV_ENETDOWN when the tunnel has none. */
int stack_tunnel_addr(const struct stack *s, int family, struct v2s_addr *out);
/* The tunnel's DNS servers and search domains (NULL when none) as last announced. */
size_t stack_dns_servers(const struct stack *s, const struct v2s_addr **servers);
const char *stack_domains(const struct stack *s);

#endif
