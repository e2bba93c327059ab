/* One DNS question over TCP through the tunnel (RFC 1035 4.2.2, RFC 7766), for an answer that was
 * truncated over UDP: connect to the server's port 53, send the query with its two-byte length,
 * read one length-prefixed answer, close. Uses lwIP's raw TCP API directly (the bridge's
 * connections in tcp.h carry applications' bytes; this carries a few hundred of our own). */
#ifndef VPN2SOCKS_STACK_DNSTCP_H
#define VPN2SOCKS_STACK_DNSTCP_H

#include <stddef.h>
#include <stdint.h>

#include "base/addr.h"

struct stack;
struct dnstcp;

/* status 0 with the answer (msg valid during the call only), or a negative libuv error: the
 * connection failed or closed before a whole answer came. */
typedef void (*dnstcp_cb)(void *arg, int status, const uint8_t *msg, size_t len);

/* Sends query (qlen <= 512 bytes) to server:53. 0 (cb follows exactly once unless cancelled) or a
 * negative libuv error. There is no timer here: the caller's gives up with dnstcp_cancel(). */
int dnstcp_ask(struct stack *s, const struct v2s_addr *server, const uint8_t *query, size_t qlen, dnstcp_cb cb,
               void *arg, struct dnstcp **out);
/* Drops the exchange (the connection is closed, or reset if it cannot be); cb never runs. */
void dnstcp_cancel(struct dnstcp *t);

#endif
