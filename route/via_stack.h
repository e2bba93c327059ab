/* The outbound through the tunnel: TCP connections of the embedded stack (stack/tcp.h) behind the
 * struct outbound ops. */
#ifndef VPN2SOCKS_ROUTE_VIA_STACK_H
#define VPN2SOCKS_ROUTE_VIA_STACK_H

struct outbound;
struct stack;

/* An outbound named "tunnel" over s, which must outlive every connection it opens. 0 or
 * UV_ENOMEM. outbound_close() it before or after stack_close(): the stack resets the relays. */
int via_stack_new(struct outbound **out, struct stack *s);

#endif
