/* Direct connections (the router's DIRECT verdict): a plain host socket, relayed to the
 * application's socket with backpressure, half-close and resets passed through. */
#ifndef VPN2SOCKS_ROUTE_DIRECT_H
#define VPN2SOCKS_ROUTE_DIRECT_H

#include <stddef.h>
#include <stdint.h>

#include "base/addr.h"

struct direct_conn;
typedef struct uv_loop_s uv_loop_t;
typedef struct uv_tcp_s uv_tcp_t;

/* status as in stack_tcp_connect_cb; on failure c is gone. */
typedef void (*direct_connect_cb)(void *arg, struct direct_conn *c, int status);
typedef void (*direct_done_cb)(void *arg);

int direct_connect(uv_loop_t *loop, const struct v2s_addr *dst, uint16_t port, unsigned timeout_ms,
                   direct_connect_cb cb, void *arg, struct direct_conn **out);
void direct_cancel(struct direct_conn *c);
void direct_local(const struct direct_conn *c, struct v2s_addr *addr, uint16_t *port);
/* Like stack_tcp_bridge_start(): owns app from here, closes it, then calls done(arg). */
void direct_bridge_start(struct direct_conn *c, uv_tcp_t *app, const uint8_t *early, size_t n,
                         const char *label, direct_done_cb done, void *arg);

/* Resets every direct relay and pending direct connection (the process is stopping). */
void direct_abort_all(void);

#endif
