/* The listening side of a SOCKS5 BIND (RFC 1928): a port in the tunnel that takes exactly one
 * connection, from the host the client named (as FTP's active mode has a server connect back). */
#ifndef VPN2SOCKS_SOCKS_BIND_H
#define VPN2SOCKS_SOCKS_BIND_H

#include <stdint.h>

struct socks_bind;
struct stack;
struct stack_tcp;
struct v2s_addr;

/* The one connection arrived, from from:port, with its handshake complete. Called from the
 * stack's accept callback: keep c and bridge it (stack_tcp_bridge_start()) or cancel it later,
 * outside this call (stack/tcp.h). Later connections to the port are reset. */
typedef void (*socks_bind_cb)(void *arg, struct stack_tcp *c, const struct v2s_addr *from, uint16_t port);

/* Listens on addr (the tunnel's address of the family wanted) at a port picked at random among
 * the dynamic ones (49152-65535), and returns it in *port. expect: the only address a connection
 * is taken from (NULL: any; a connection from another is reset and logged). label names the
 * SOCKS client in the log (copied). 0, or a negative uv error (UV_EADDRINUSE when no free port
 * was found, UV_ENOMEM, ...). */
int socks_bind_new(struct socks_bind **out, struct stack *s, const struct v2s_addr *addr,
                   const struct v2s_addr *expect, const char *label, socks_bind_cb cb, void *arg, uint16_t *port);
/* Stops listening and frees b, at once; never from inside cb. A connection cb was given is the
 * caller's and is not touched. */
void socks_bind_close(struct socks_bind *b);

#endif
