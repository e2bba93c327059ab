/* Direct connections (the router's DIRECT verdict): a plain host socket, relayed to the
 * application's socket with backpressure, half-close and resets passed through; the "direct"
 * struct outbound (route/outbound.h). */
#ifndef VPN2SOCKS_ROUTE_DIRECT_H
#define VPN2SOCKS_ROUTE_DIRECT_H

struct outbound;
typedef struct uv_loop_s uv_loop_t;

/* An outbound named "direct" on loop. 0 or UV_ENOMEM. outbound_close() resets every direct relay
 * and pending connection (the process is stopping), ends every UDP association (host sockets of
 * this machine, route/direct.c), and frees it once their handles are closed. */
int direct_new(struct outbound **out, uv_loop_t *loop);

#endif
