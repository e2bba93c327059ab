/* Listener specs and the reload's diff: see listeners.h. */
#include "app/listeners.h"

#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/resource.h>

#include "base/addr.h"

size_t listener_specs(const struct options *o, struct listener_spec *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < o->n_socks && n < cap; i++, n++) {
        memset(&out[n], 0, sizeof(out[n]));
        out[n].kind = LISTENER_SOCKS;
        out[n].fwd.listen = o->socks[i];
    }
    for (size_t i = 0; i < o->n_http && n < cap; i++, n++) {
        memset(&out[n], 0, sizeof(out[n]));
        out[n].kind = LISTENER_HTTP;
        out[n].fwd.listen = o->http[i];
    }
    for (size_t i = 0; i < o->n_forwards && n < cap; i++, n++) {
        const struct options_forward *f = &o->forwards[i];
        out[n].kind = f->remote ? (f->udp ? LISTENER_REMOTE_UDP : LISTENER_REMOTE_TCP)
                                : (f->udp ? LISTENER_LOCAL_UDP : LISTENER_LOCAL_TCP);
        out[n].fwd = *f;
    }
    return n;
}

unsigned listener_fds_per_conn(const struct options *o)
{
    return o->n_socks > 0 || o->n_http > 0 ? 4 : 2;
}

uint64_t listener_fit_nofile(const struct options *o, unsigned max_conns, unsigned reserve, uint64_t *need)
{
    struct rlimit rl;
    *need = (uint64_t)max_conns * listener_fds_per_conn(o) + reserve;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < *need) {
        struct rlimit want = rl;
        want.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > *need ? (rlim_t)*need : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}

static int same_sockaddr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
        return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return 0;
}

int listener_spec_same_port(const struct listener_spec *a, const struct listener_spec *b)
{
    const struct sockaddr *x = (const struct sockaddr *)&a->fwd.listen, *y = (const struct sockaddr *)&b->fwd.listen;
    struct v2s_addr ax, ay;
    uint16_t px = 0, py = 0; /* stays 0 for a family it does not know: then the same */
    v2s_addr_from_sockaddr(x, &ax, &px);
    v2s_addr_from_sockaddr(y, &ay, &py);
    return px == py;
}

int listener_spec_equal(const struct listener_spec *a, const struct listener_spec *b)
{
    if (a->kind != b->kind || !same_sockaddr(&a->fwd.listen, &b->fwd.listen))
        return 0;
    if (a->kind == LISTENER_SOCKS || a->kind == LISTENER_HTTP)
        return 1; /* a proxy is its address */
    return a->fwd.port == b->fwd.port && strcmp(a->fwd.host, b->fwd.host) == 0;
}

const char *listener_spec_name(const struct listener_spec *s, char *buf, size_t cap)
{
    static const char *const kinds[] = {
        [LISTENER_SOCKS] = "SOCKS",
        [LISTENER_LOCAL_TCP] = "forward",
        [LISTENER_LOCAL_UDP] = "UDP forward",
        [LISTENER_REMOTE_TCP] = "remote forward",
        [LISTENER_REMOTE_UDP] = "remote UDP forward",
        [LISTENER_HTTP] = "HTTP",
    };
    char where[V2S_ADDR_STRLEN];
    v2s_sockaddr_format((const struct sockaddr *)&s->fwd.listen, where, sizeof(where));
    if (s->kind == LISTENER_SOCKS || s->kind == LISTENER_HTTP)
        snprintf(buf, cap, "%s %s", kinds[s->kind], where);
    else
        snprintf(buf, cap, strchr(s->fwd.host, ':') ? "%s %s -> [%s]:%u" : "%s %s -> %s:%u", kinds[s->kind], where,
                 s->fwd.host, s->fwd.port);
    return buf;
}

void listener_diff(const struct listener_spec *run, size_t n_run, const struct listener_spec *want, size_t n_want,
                   unsigned char *keep, int *from)
{
    memset(keep, 0, n_run);
    for (size_t j = 0; j < n_want; j++) {
        from[j] = -1;
        for (size_t i = 0; i < n_run && from[j] < 0; i++)
            if (!keep[i] && listener_spec_equal(&run[i], &want[j])) {
                keep[i] = 1;
                from[j] = (int)i;
            }
    }
}
