/* The UDP relay of a SOCKS5 UDP ASSOCIATE.
 *
 * What it guarantees, and why:
 *   - Only the client that asked uses it: datagrams are taken from the TCP client's IP address
 *     only, and from one port: the one named in the request, else the first that sends (RFC 1928
 *     lets a client name 0.0.0.0:0 when it does not know its port yet, as most do). Anything
 *     else is dropped and counted, so the relay is no open relay for other local users.
 *   - Each datagram's header (RSV FRAG ATYP DST.ADDR DST.PORT) is checked: a fragment (FRAG != 0)
 *     or a malformed header is dropped and counted; the payload goes out through one association
 *     of the routed outbound with the name or address the client gave, so the router applies to
 *     each destination and names resolve through the tunnel's DNS. Answers come back wrapped in a
 *     header naming their source.
 *   - An IPv4 host named ::ffff:a.b.c.d (ATYP 4: a client on a dual-stack socket) is the IPv4
 *     host a.b.c.d, as it is for CONNECT and BIND (socks/server.c): sent to as such, it gets
 *     through a tunnel without IPv6. Its answers are named ::ffff:a.b.c.d again: RFC 1928 leaves
 *     the form of an answer's source open, and the form the client used is the one it looks for,
 *     as its own dual-stack socket would show it (PySocks drops an answer from "a.b.c.d" on a
 *     socket connected to "::ffff:a.b.c.d"). The last SOCKS_UDP_FORMS IPv4 hosts named are
 *     remembered with their form; an answer from another takes the form of the latest one.
 *   - It ends with its TCP connection (the owner closes it) and after idle_timeout_ms without a
 *     datagram either way (the owner is told and ends the TCP connection too: RFC 1928 ties the
 *     two together, so one never outlives the other).
 *   - Nothing is buffered without bound: a datagram to the client waits in libuv's queue only
 *     while it holds less than SOCKS_UDP_QUEUE_MAX bytes (route/dgram.h); the outbound bounds its
 *     side the same way. Past that, datagrams are dropped, as IP drops them.
 *   - Open and close are logged like the other relays, with the datagrams each way and the
 *     drops by reason. */
#include "socks/udp_relay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <uv.h>

#include "base/addr.h"
#include "base/log.h"
#include "route/dgram.h"
#include "route/listener.h"
#include "route/outbound.h"
#include "socks/socks5.h"

enum {
    SOCKS_UDP_QUEUE_MAX = 256 * 1024, /* bytes waiting in the socket's send queue */
    SOCKS_UDP_FORMS = 16, /* IPv4 hosts whose form (a.b.c.d or ::ffff:a.b.c.d) is remembered:
                           * a DNS client or a game names fewer, and a client naming more in
                           * one form still gets it from the latest */
};

/* How the client last named one IPv4 host. */
struct socks_udp_form {
    uint8_t v4[4];
    uint8_t mapped; /* as ::ffff:a.b.c.d */
};

struct socks_udp_relay {
    uv_loop_t *loop;
    uv_udp_t sock;
    struct listener_own own; /* sock, which no datagram may go to (listener_is_own()) */
    uv_timer_t timer;
    struct outbound_udp *assoc;
    struct v2s_addr client;
    uint16_t client_port; /* 0 until the first datagram, when the request named none */
    unsigned idle_ms;
    uint64_t last_ms;     /* uv_now() of the last datagram either way */
    uint8_t *buf;
    void (*idle)(void *arg);
    void *arg;
    uint64_t up, down;
    unsigned long frag, malformed, foreign, unsent;
    struct socks_udp_form forms[SOCKS_UDP_FORMS]; /* a ring, the oldest replaced first */
    unsigned n_forms, next_form;
    int last_mapped; /* the latest IPv4 host was named ::ffff:a.b.c.d */
    int closing;
    int handles_open;
    void (*close_cb)(void *arg);
    void *close_arg;
    char label[2 * V2S_ADDR_STRLEN + 48]; /* "udp CLIENT (SOCKS association on RELAY)" */
};

static void socks_udp_handle_closed(uv_handle_t *h)
{
    struct socks_udp_relay *r = h->data;
    if (--r->handles_open > 0)
        return;
    void (*cb)(void *) = r->close_cb;
    void *arg = r->close_arg;
    free(r);
    if (cb)
        cb(arg);
}

static void socks_udp_on_timer(uv_timer_t *t)
{
    struct socks_udp_relay *r = t->data;
    uint64_t now = uv_now(r->loop);
    if (r->last_ms + r->idle_ms > now) {
        uv_timer_start(&r->timer, socks_udp_on_timer, r->last_ms + r->idle_ms - now, 0);
        return;
    }
    v2s_info("%s: idle for %u ms, ending it", r->label, r->idle_ms);
    r->idle(r->arg);
}

static void socks_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct socks_udp_relay *r = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)r->buf, SOCKS_UDP_BUF);
}

/* A datagram could not go on: dropped, with a debug line (the routed outbound logs its own
 * rejections and names that do not resolve, route/outbound.h). */
static void socks_udp_unsent(struct socks_udp_relay *r, int rc, const char *way, size_t len)
{
    r->unsent++;
    v2s_debug("%s: a datagram of %zu bytes %s dropped: %s", r->label, len, way, outbound_strerror(rc));
}

static struct socks_udp_form *socks_udp_form_of(struct socks_udp_relay *r, const struct v2s_addr *v4)
{
    for (unsigned i = 0; i < r->n_forms; i++)
        if (memcmp(r->forms[i].v4, v4->bytes, 4) == 0)
            return &r->forms[i];
    return NULL;
}

/* The client named the IPv4 host v4 as a.b.c.d, or (mapped) as ::ffff:a.b.c.d. */
static void socks_udp_note_form(struct socks_udp_relay *r, const struct v2s_addr *v4, int mapped)
{
    r->last_mapped = mapped;
    struct socks_udp_form *f = socks_udp_form_of(r, v4);
    if (!f) {
        f = &r->forms[r->next_form];
        r->next_form = (r->next_form + 1) % SOCKS_UDP_FORMS;
        if (r->n_forms < SOCKS_UDP_FORMS)
            r->n_forms++;
        memcpy(f->v4, v4->bytes, 4);
    }
    f->mapped = (uint8_t)mapped;
}

/* An answer on the association: to the client, behind a header naming its source in the form
 * the client named that host (see the top of this file). */
static void socks_udp_answer(void *arg, const struct v2s_addr *from, uint16_t port, const uint8_t *data,
                             size_t len)
{
    struct socks_udp_relay *r = arg;
    if (r->closing || r->client_port == 0)
        return;
    struct v2s_addr src = *from;
    v2s_addr_unmap_v4(&src);
    if (src.family == AF_INET) {
        const struct socks_udp_form *f = socks_udp_form_of(r, &src);
        if (f ? f->mapped : r->last_mapped)
            v2s_addr_map_v4(&src);
    }
    uint8_t head[SOCKS5_UDP_HEADER_MAX];
    size_t hl = socks5_udp_build_header(head, &src, port);
    struct sockaddr_storage ss;
    if (v2s_addr_to_sockaddr(&r->client, r->client_port, &ss) < 0)
        return;
    r->last_ms = uv_now(r->loop);
    int rc = dgram_send(&r->sock, (const struct sockaddr *)&ss, head, hl, data, len, SOCKS_UDP_QUEUE_MAX);
    if (rc < 0) {
        socks_udp_unsent(r, rc, "to the client", len);
        return;
    }
    r->down++;
}

static void socks_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                           unsigned flags)
{
    struct socks_udp_relay *r = h->data;
    if (nread < 0) {
        v2s_debug("%s: receive: %s", r->label, uv_strerror((int)nread));
        return;
    }
    if (!addr || r->closing)
        return;
    struct v2s_addr src;
    uint16_t sport;
    if (v2s_addr_from_sockaddr(addr, &src, &sport) < 0 || !v2s_addr_equal(&src, &r->client) ||
        (r->client_port != 0 && sport != r->client_port)) {
        if (r->foreign++ == 0) {
            char who[V2S_ADDR_STRLEN];
            v2s_info("%s: a datagram from %s dropped: not the client of this association", r->label,
                     v2s_sockaddr_format(addr, who, sizeof(who)));
        }
        return;
    }
    if (flags & UV_UDP_PARTIAL) {
        r->malformed++;
        return;
    }
    struct socks5_udp_header hd;
    int rc = socks5_udp_parse(&hd, (const uint8_t *)buf->base, (size_t)nread);
    if (rc == -ENOTSUP) {
        if (r->frag++ == 0)
            v2s_info("%s: a fragment (FRAG %u) dropped: fragments are not reassembled", r->label, hd.frag);
        return;
    }
    if (rc < 0) {
        if (r->malformed++ == 0)
            v2s_info("%s: a datagram with a malformed SOCKS header dropped", r->label);
        return;
    }
    if (r->client_port == 0)
        r->client_port = sport; /* the first datagram names the client's port */
    r->last_ms = uv_now(r->loop);
    const uint8_t *payload = (const uint8_t *)buf->base + hd.len;
    size_t len = (size_t)nread - hd.len;
    if (hd.atyp != SOCKS5_ATYP_DOMAIN) {
        v2s_addr_unmap_v4(&hd.addr);
        if (hd.addr.family == AF_INET)
            socks_udp_note_form(r, &hd.addr, hd.atyp == SOCKS5_ATYP_IPV6);
    }
    rc = outbound_udp_send(r->assoc, hd.atyp == SOCKS5_ATYP_DOMAIN ? hd.name : NULL, &hd.addr, hd.port, payload,
                           len);
    if (rc < 0) {
        socks_udp_unsent(r, rc, "to its destination", len);
        return;
    }
    r->up++;
}

int socks_udp_relay_new(struct socks_udp_relay **out, const struct socks_udp_relay_config *cfg,
                        struct sockaddr_storage *bound)
{
    struct v2s_addr local;
    uint16_t lport;
    if (v2s_addr_from_sockaddr(cfg->local, &local, &lport) < 0 || cfg->idle_timeout_ms == 0)
        return UV_EINVAL;
    struct socks_udp_relay *r = calloc(1, sizeof(*r));
    if (!r)
        return UV_ENOMEM;
    r->loop = cfg->loop;
    r->client = *cfg->client;
    r->client_port = cfg->client_port;
    r->idle_ms = cfg->idle_timeout_ms;
    r->buf = cfg->buf;
    r->idle = cfg->idle;
    r->arg = cfg->arg;
    r->last_ms = uv_now(cfg->loop);
    listener_own_init(&r->own);
    uv_udp_init(cfg->loop, &r->sock);
    uv_timer_init(cfg->loop, &r->timer);
    r->sock.data = r;
    r->timer.data = r;
    r->handles_open = 2;
    struct sockaddr_storage ss;
    v2s_addr_to_sockaddr(&local, 0, &ss);
    int sl = sizeof(*bound);
    int rc = uv_udp_bind(&r->sock, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_udp_getsockname(&r->sock, (struct sockaddr *)bound, &sl);
    if (rc == 0)
        rc = outbound_udp_open(cfg->out, socks_udp_answer, r, &r->assoc);
    if (rc == 0)
        rc = uv_udp_recv_start(&r->sock, socks_udp_alloc, socks_udp_recv);
    if (rc < 0) {
        if (r->assoc)
            outbound_udp_close(r->assoc);
        r->assoc = NULL;
        r->closing = 1;
        uv_close((uv_handle_t *)&r->sock, socks_udp_handle_closed);
        uv_close((uv_handle_t *)&r->timer, socks_udp_handle_closed);
        return rc;
    }
    listener_own_add(&r->own, (const uv_handle_t *)&r->sock);
    char where[V2S_ADDR_STRLEN];
    v2s_sockaddr_format((const struct sockaddr *)bound, where, sizeof(where));
    snprintf(r->label, sizeof(r->label), "udp %s (SOCKS association on %s)", cfg->peer, where);
    uv_timer_start(&r->timer, socks_udp_on_timer, r->idle_ms, 0);
    v2s_info("%s open", r->label);
    *out = r;
    return 0;
}

void socks_udp_relay_close(struct socks_udp_relay *r, void (*cb)(void *arg), void *arg)
{
    r->closing = 1;
    r->close_cb = cb;
    r->close_arg = arg;
    listener_own_remove(&r->own);
    outbound_udp_close(r->assoc);
    r->assoc = NULL;
    char drops[160] = "";
    if (r->frag || r->malformed || r->foreign || r->unsent)
        snprintf(drops, sizeof(drops), "; dropped: %lu fragments, %lu malformed, %lu from others, %lu unsent",
                 r->frag, r->malformed, r->foreign, r->unsent);
    v2s_info("%s closed (%llu datagrams up, %llu down%s)", r->label, (unsigned long long)r->up,
             (unsigned long long)r->down, drops);
    uv_close((uv_handle_t *)&r->sock, socks_udp_handle_closed);
    uv_close((uv_handle_t *)&r->timer, socks_udp_handle_closed);
}
