/* The listening side of a SOCKS5 BIND: a stack listener (stack/tcp.h, as -R uses) on the tunnel's
 * address at a random port, for one connection.
 *
 * The port is picked at random rather than in sequence so that another host in the VPN cannot
 * guess it and connect first; the connection is also taken only from the address the client
 * named (RFC 1928: DST.ADDR is where the server expects the connection from), unless it named
 * 0.0.0.0 or ::. The first connection taken ends the listening: its caller closes the listener
 * right after, and any connection that completes a handshake meanwhile is reset. */
#include "socks/bind.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "base/addr.h"
#include "base/log.h"
#include "stack/tcp.h"

enum {
    SOCKS_BIND_PORT_MIN = 49152, /* the dynamic ports (RFC 6335) */
    SOCKS_BIND_TRIES = 32,
};

struct socks_bind {
    struct stack_tcp_listener *listener;
    struct v2s_addr expect; /* family 0: any */
    int taken;
    socks_bind_cb cb;
    void *arg;
    char label[V2S_ADDR_STRLEN + 32];
};

static int socks_bind_accept(void *arg, struct stack_tcp *c)
{
    struct socks_bind *b = arg;
    struct v2s_addr from;
    uint16_t port;
    stack_tcp_remote(c, &from, &port);
    if (b->taken)
        return UV_ECONNREFUSED;
    if (b->expect.family != 0 && !v2s_addr_equal(&from, &b->expect)) {
        char who[V2S_ADDR_STRLEN], want[V2S_ADDR_STRLEN];
        v2s_info("%s: a connection from %s to the BIND port reset: the client expects one from %s", b->label,
                 v2s_addr_format_port(&from, port, who, sizeof(who)), v2s_addr_format(&b->expect, want, sizeof(want)));
        return UV_ECONNREFUSED;
    }
    b->taken = 1;
    b->cb(b->arg, c, &from, port);
    return 0;
}

int socks_bind_new(struct socks_bind **out, struct stack *s, const struct v2s_addr *addr,
                   const struct v2s_addr *expect, const char *label, socks_bind_cb cb, void *arg, uint16_t *port)
{
    struct socks_bind *b = calloc(1, sizeof(*b));
    if (!b)
        return UV_ENOMEM;
    if (expect)
        b->expect = *expect;
    b->cb = cb;
    b->arg = arg;
    snprintf(b->label, sizeof(b->label), "%s", label);
    int rc = UV_EADDRINUSE;
    for (int i = 0; i < SOCKS_BIND_TRIES && rc == UV_EADDRINUSE; i++) {
        uint16_t r;
        if ((rc = uv_random(NULL, NULL, &r, sizeof(r), 0, NULL)) < 0)
            break;
        *port = (uint16_t)(SOCKS_BIND_PORT_MIN + r % (65536 - SOCKS_BIND_PORT_MIN));
        rc = stack_tcp_listen(s, addr, *port, socks_bind_accept, b, &b->listener);
    }
    if (rc < 0) {
        free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void socks_bind_close(struct socks_bind *b)
{
    stack_tcp_listen_close(b->listener);
    free(b);
}
