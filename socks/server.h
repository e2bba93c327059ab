/* The SOCKS5 / SOCKS4a proxy listener. */
#ifndef VPN2SOCKS_SOCKS_SERVER_H
#define VPN2SOCKS_SOCKS_SERVER_H

struct socks_server;
struct dial_ctx;
struct sockaddr;

/* Listens on addr; connections are opened through ctx (copied). 0 or a negative uv error. */
int socks_server_new(struct socks_server **out, const struct dial_ctx *ctx, const struct sockaddr *addr);
/* Stops listening and ends every connection; cb runs once all handles are closed. */
void socks_server_close(struct socks_server *srv, void (*cb)(void *arg), void *arg);

#endif
