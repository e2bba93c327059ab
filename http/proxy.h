/* The HTTP proxy listener (-H): CONNECT tunnels and absolute-URI requests (http:// only). */
#ifndef VPN2SOCKS_HTTP_PROXY_H
#define VPN2SOCKS_HTTP_PROXY_H

struct http_proxy;
struct outbound;
struct conn_limit;
struct v2s_credentials;
struct sockaddr;
struct router;
typedef struct uv_loop_s uv_loop_t;

struct http_proxy_config {
    uv_loop_t *loop;
    struct outbound *out;          /* connections are opened through it (route/outbound.h) */
    unsigned connect_timeout_ms;   /* given to each connect */
    unsigned max_conns;            /* this listener's cap; 0: none */
    struct conn_limit *shared;     /* the cap over every listener (the caller keeps it), or NULL */
    unsigned handshake_timeout_ms; /* from accept (or the end of the last answer) to a complete head */
    unsigned body_timeout_ms;      /* the longest wait for the next bytes of a request body (0: 60 s) */
    unsigned origin_timeout_ms;    /* the longest wait on the origin while its answer is owed, for
                                    * its next bytes or for it to take the request's (0: 15 min) */
    unsigned client_timeout_ms;    /* the longest the client may take no byte of an answer the proxy
                                    * has for it (0: 15 min) */
    struct v2s_credentials *credentials; /* users who may use the proxy (Proxy-Authorization basic; the
                                          * caller keeps it for the listener's life), or NULL: anyone */
    const struct router *router;   /* the live routes, for the PAC file (GET /proxy.pac, /wpad.dat;
                                    * the caller keeps it), or NULL: no PAC file */
};

/* Listens on addr. 0 or a negative uv error. */
int http_proxy_new(struct http_proxy **out, const struct http_proxy_config *cfg, const struct sockaddr *addr);
/* The address the listener is bound to (the port the kernel chose for port 0). 0 or a uv error. */
int http_proxy_local(const struct http_proxy *hp, struct sockaddr *addr, int *len);
/* Stops listening and ends the connections still being set up or idle between requests; CONNECT
 * tunnels carry on until they end, and a request being answered until its answer is written (then
 * its connection closes). cb runs once all handles are closed. */
void http_proxy_close(struct http_proxy *hp, void (*cb)(void *arg), void *arg);

#endif
