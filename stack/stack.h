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

/* Tunnel events, forwarded by whoever owns the tunnel. */
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
