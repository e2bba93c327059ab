/* The local TCP listeners' shared part, and the record of this process's own sockets that a
 * direct destination must not be (see listener.h). */
#include "route/listener.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "base/addr.h"
#include "base/log.h"

/* Every socket of this process recorded by listener_own_add() (listener_is_own()), in lists by
 * port. One loop, one thread: process-wide, as the sockets are the process's own. The routed
 * outbound asks for every direct datagram, and every SOCKS UDP association records its relay's
 * socket: with one list, each datagram was compared with every association's socket (thousands
 * under load); by port, with the few sockets that share its bucket. */
enum {
    LISTENER_OWN_BUCKETS = 256,
};
static struct v2s_list listener_own_buckets[LISTENER_OWN_BUCKETS];

unsigned long listener_own_compared;

static struct v2s_list *listener_own_bucket(uint16_t port)
{
    struct v2s_list *b = &listener_own_buckets[port % LISTENER_OWN_BUCKETS];
    if (!b->next)
        v2s_list_init(b);
    return b;
}

void listener_init(struct listener *l, const struct listener_ops *ops, void *owner, struct conn_limit *shared,
                   const char *who)
{
    l->ops = ops;
    l->owner = owner;
    l->shared = shared;
    l->who = who;
    listener_own_init(&l->own);
}

void listener_cap(struct listener *l, unsigned max, const char *what)
{
    conn_limit_init(&l->limit, max, what, "--listener-max-connections");
}

void listener_maybe_free(struct listener *l)
{
    if (!l->closing || l->handles_open > 0 || l->ops->busy(l->owner))
        return;
    void (*cb)(void *) = l->close_cb;
    void *arg = l->close_arg;
    l->ops->free(l->owner);
    if (cb)
        cb(arg);
}

void listener_give(struct listener *l)
{
    conn_limit_give(&l->limit, l->shared);
}

static void listener_on_connection(uv_stream_t *server, int status);

static void listener_refused_closed(void *arg, int retry)
{
    struct listener *l = arg;
    l->handles_open--;
    if (retry && !l->closing) {
        listener_on_connection((uv_stream_t *)&l->tcp, 0);
        return;
    }
    listener_maybe_free(l);
}

static void listener_on_connection(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    if (status < 0) {
        v2s_warn("%s: accept failed: %s", l->who, uv_strerror(status));
        return;
    }
    if (conn_limit_take(&l->limit, l->shared, uv_now(server->loop)) < 0) {
        l->handles_open += refuser_refuse(&l->refuser);
        return;
    }
    if (l->ops->accept(l->owner, server) < 0) {
        conn_limit_give(&l->limit, l->shared);
        l->handles_open += refuser_refuse(&l->refuser);
    }
}

int listener_open(struct listener *l, uv_loop_t *loop, const struct sockaddr *addr)
{
    uv_tcp_init(loop, &l->tcp);
    l->tcp.data = l;
    l->handles_open = 1;
    refuser_init(&l->refuser, (uv_stream_t *)&l->tcp, listener_refused_closed, l);
    int rc = uv_tcp_bind(&l->tcp, addr, 0);
    /* No Nagle delay for what we relay in small pieces (a SOCKS reply, an answer's first bytes).
     * Set on the listening socket, it is inherited by every connection accepted from it (Linux
     * copies the option into the new socket), which saves a setsockopt() per connection. */
    if (rc == 0)
        rc = uv_tcp_nodelay(&l->tcp, 1);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 511, listener_on_connection);
    if (rc < 0) {
        listener_close(l, NULL, NULL);
        return rc;
    }
    listener_own_add(&l->own, (const uv_handle_t *)&l->tcp);
    return 0;
}

void listener_own_init(struct listener_own *o)
{
    v2s_list_init(&o->node);
}

void listener_own_add(struct listener_own *o, const uv_handle_t *h)
{
    /* The socket's own address: with port 0 only it knows the port. */
    struct sockaddr_storage ss;
    int sl = sizeof(ss), rc = UV_EINVAL;
    if (h->type == UV_TCP) {
        o->socktype = SOCK_STREAM;
        rc = uv_tcp_getsockname((const uv_tcp_t *)h, (struct sockaddr *)&ss, &sl);
    } else if (h->type == UV_UDP) {
        o->socktype = SOCK_DGRAM;
        rc = uv_udp_getsockname((const uv_udp_t *)h, (struct sockaddr *)&ss, &sl);
    }
    if (rc == 0 && !v2s_list_linked(&o->node) &&
        v2s_addr_from_sockaddr((struct sockaddr *)&ss, &o->addr, &o->port) == 0) {
        v2s_addr_unmap_v4(&o->addr);
        v2s_list_push_back(listener_own_bucket(o->port), &o->node);
    }
}

void listener_own_remove(struct listener_own *o)
{
    v2s_list_remove(&o->node);
}

static int listener_addr_is_any(const struct v2s_addr *a)
{
    static const uint8_t zero[16];
    return memcmp(a->bytes, zero, v2s_addr_len(a)) == 0;
}

/* Whether a is an address of this host: loopback (all of 127.0.0.0/8 on Linux) or one of its
 * interfaces'. Asked only when a wildcard listener has the port, so the interface list is read
 * then. */
static int listener_addr_is_host(const struct v2s_addr *a)
{
    static const uint8_t v6_loopback[16] = {[15] = 1};
    if ((a->family == AF_INET && a->bytes[0] == 127) ||
        (a->family == AF_INET6 && memcmp(a->bytes, v6_loopback, 16) == 0))
        return 1;
    uv_interface_address_t *ifs;
    int n, found = 0;
    if (uv_interface_addresses(&ifs, &n) < 0)
        return 0;
    for (int i = 0; i < n && !found; i++) {
        struct v2s_addr ia;
        uint16_t port;
        if (v2s_addr_from_sockaddr((const struct sockaddr *)&ifs[i].address, &ia, &port) == 0) {
            v2s_addr_unmap_v4(&ia);
            found = v2s_addr_equal(&ia, a);
        }
    }
    uv_free_interface_addresses(ifs, n);
    return found;
}

int listener_is_own(const struct v2s_addr *addr, uint16_t port, int socktype)
{
    struct v2s_addr a = *addr;
    v2s_addr_unmap_v4(&a);
    if (a.family != AF_INET && a.family != AF_INET6)
        return 0;
    if (listener_addr_is_any(&a)) {
        /* Linux connects 0.0.0.0 to 127.0.0.1 and :: to ::1. */
        memset(a.bytes, 0, sizeof(a.bytes));
        if (a.family == AF_INET) {
            a.bytes[0] = 127;
            a.bytes[3] = 1;
        } else {
            a.bytes[15] = 1;
        }
    }
    struct v2s_list *n, *bucket = listener_own_bucket(port);
    V2S_LIST_FOREACH(n, bucket) {
        const struct listener_own *o = V2S_LIST_ENTRY(n, struct listener_own, node);
        listener_own_compared++;
        if (o->port != port || o->socktype != socktype)
            continue;
        if (v2s_addr_equal(&o->addr, &a))
            return 1;
        /* A wildcard socket of IPv6 takes IPv4 connections too (libuv binds it with IPV6_V6ONLY
         * off). */
        if (listener_addr_is_any(&o->addr) && (o->addr.family == AF_INET6 || a.family == AF_INET) &&
            listener_addr_is_host(&a))
            return 1;
    }
    return 0;
}

void listener_where(const struct listener *l, const struct sockaddr *addr, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &sl) == 0)
        addr = (const struct sockaddr *)&ss;
    v2s_sockaddr_format(addr, buf, len);
}

int listener_local(const struct listener *l, struct sockaddr *addr, int *len)
{
    return uv_tcp_getsockname(&l->tcp, addr, len);
}

void listener_accepted(uv_tcp_t *client, char *peer, size_t len)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    snprintf(peer, len, "?");
    if (uv_tcp_getpeername(client, (struct sockaddr *)&ss, &sl) == 0)
        v2s_sockaddr_format((const struct sockaddr *)&ss, peer, len);
    /* TCP_NODELAY came with the socket from the listener (listener_open()). */
}

static void listener_closed(uv_handle_t *h)
{
    struct listener *l = h->data;
    l->handles_open--;
    listener_maybe_free(l);
}

void listener_close(struct listener *l, void (*cb)(void *arg), void *arg)
{
    listener_own_remove(&l->own);
    l->closing = 1;
    l->close_cb = cb;
    l->close_arg = arg;
    uv_close((uv_handle_t *)&l->tcp, listener_closed);
}
