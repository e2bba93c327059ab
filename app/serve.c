/* The listeners of every kind (-D, -H, -L, -R, TCP and UDP): starting each on the routed outbound
 * of its kind, closing it, and the reload's apply step, which moves the running ones to those a
 * configuration asks for (listeners.c computes the difference). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "app/app.h"
#include "base/addr.h"
#include "base/log.h"
#include "http/proxy.h"
#include "port/forward.h"
#include "port/reverse.h"
#include "port/udp_forward.h"
#include "socks/server.h"

/* A listener's start line: event listener_start, with its kind and the address it listens on. */
static void app_log_listening(const char *kind, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void app_log_listening(const char *kind, const char *where, const char *fmt, ...)
{
    if (!V2S_LOG_ENABLED(V2S_LOG_INFO))
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct v2s_log_field f[] = {V2S_LOG_TEXT("listener", kind), V2S_LOG_TEXT("listen", where)};
    v2s_log_event(V2S_LOG_INFO, "listener_start", f, 2, "%s", msg);
}

/* A listener without authentication on any address but loopback hands the VPN (and this host's
 * own network, for direct destinations) to whoever can reach it. */
static void app_warn_exposed(const struct sockaddr *sa, const char *what, const char *name)
{
    if (options_listen_is_loopback(sa))
        return;
    v2s_warn("%s %s is reachable from other hosts and has no authentication: anyone who can "
             "connect to it can use the VPN through it; bind 127.0.0.1 (the default) unless that is meant",
             what, name);
}

/* Starts one -L/udp or -R/udp forward: a host socket into the routed outbound, or a socket in
 * the tunnel toward this host. 0, or a negative uv error once the reason is logged. */
static int app_start_udp_forward(struct app *a, const struct options_forward *f, struct port_udp **pu)
{
    const struct sockaddr *sa = (const struct sockaddr *)&f->listen;
    char name[V2S_ADDR_STRLEN], to[300];
    v2s_sockaddr_format(sa, name, sizeof(name));
    snprintf(to, sizeof(to), strchr(f->host, ':') ? "[%s]:%u/udp" : "%s:%u/udp", f->host, f->port);
    struct port_udp_config cfg = {
        .loop = a->loop,
        .host = f->host,
        .port = f->port,
        .idle_timeout_ms = a->opt.udp_timeout_ms,
        .max_flows = a->opt.udp_max_flows,
    };
    int rc;
    if (f->remote) {
        /* -R: the address inside the tunnel; 0.0.0.0 stands for every tunnel address. */
        struct v2s_addr local;
        uint16_t port;
        v2s_addr_from_sockaddr(sa, &local, &port);
        int every = local.family == AF_INET && !memcmp(local.bytes, "\0\0\0\0", 4);
        rc = port_udp_remote_new(pu, &cfg, a->stack, every ? NULL : &local, port);
        if (every)
            snprintf(name, sizeof(name), "port %u", port);
        if (rc < 0) {
            v2s_error("remote forward %s/udp (tunnel) -> %s: %s", name, to, uv_strerror(rc));
            return rc;
        }
        app_log_listening("remote_udp", name, "forwarding %s/udp of the tunnel to %s", name, to);
        return 0;
    }
    if ((rc = port_udp_local_new(pu, &cfg, a->dialers[APP_DIAL_FORWARD], sa)) < 0) {
        v2s_error("forward %s/udp -> %s: %s", name, to, uv_strerror(rc));
        return rc;
    }
    app_log_listening("local_udp", name, "forwarding %s/udp to %s", name, to);
    app_warn_exposed(sa, "forward", name);
    return 0;
}

/* Starts one listener; every kind is started here, and closed in app_listener_close(). 0, or a
 * negative uv error, logged. */
int app_listener_start(struct app *a, struct app_listener *l)
{
    const struct options_forward *f = &l->spec.fwd;
    const struct sockaddr *sa = (const struct sockaddr *)&f->listen;
    char where[V2S_ADDR_STRLEN], to[300];
    int rc = UV_ENOTSUP;
    v2s_sockaddr_format(sa, where, sizeof(where));
    snprintf(to, sizeof(to), strchr(f->host, ':') ? "[%s]:%u" : "%s:%u", f->host, f->port);
    switch (l->spec.kind) {
    case LISTENER_SOCKS: {
        struct socks_server_config cfg = {
            .loop = a->loop,
            .out = a->dialers[APP_DIAL_SOCKS],
            .connect_timeout_ms = a->opt.connect_timeout_ms,
            .max_conns = a->listener_max_conns,
            .shared = &a->conns,
            .handshake_timeout_ms = a->opt.handshake_timeout_ms,
            .credentials = a->socks_creds,
            .udp_idle_timeout_ms = a->opt.udp_timeout_ms,
            .udp_max_assocs = a->opt.udp_max_flows,
            .stack = a->stack,
            .router = &a->router,
        };
        struct socks_server *srv = NULL;
        if ((rc = socks_server_new(&srv, &cfg, sa)) < 0) {
            v2s_error("SOCKS listener %s: %s", where, uv_strerror(rc));
            return rc;
        }
        l->h = srv;
        app_log_listening("socks", where, "SOCKS5 proxy listening on %s", where);
        if (a->socks_creds == NULL)
            app_warn_exposed(sa, "SOCKS listener", where);
        return 0;
    }
    case LISTENER_HTTP: {
        struct http_proxy_config cfg = {
            .loop = a->loop,
            .out = a->dialers[APP_DIAL_HTTP],
            .connect_timeout_ms = a->opt.connect_timeout_ms,
            .max_conns = a->listener_max_conns,
            .shared = &a->conns,
            .handshake_timeout_ms = a->opt.handshake_timeout_ms,
            .credentials = a->socks_creds,
            .router = &a->router,
        };
        struct http_proxy *hp = NULL;
        if ((rc = http_proxy_new(&hp, &cfg, sa)) < 0) {
            v2s_error("HTTP listener %s: %s", where, uv_strerror(rc));
            return rc;
        }
        l->h = hp;
        app_log_listening("http", where, "HTTP proxy listening on %s", where);
        if (a->socks_creds == NULL)
            app_warn_exposed(sa, "HTTP listener", where);
        return 0;
    }
    case LISTENER_LOCAL_TCP: {
        struct port_forward_config cfg = {
            .loop = a->loop,
            .out = a->dialers[APP_DIAL_FORWARD],
            .connect_timeout_ms = a->opt.connect_timeout_ms,
            .max_conns = a->listener_max_conns,
            .shared = &a->conns,
            .host = f->host,
            .port = f->port,
        };
        struct port_forward *pf = NULL;
        if ((rc = port_forward_new(&pf, &cfg, sa)) < 0) {
            v2s_error("forward %s -> %s: %s", where, to, uv_strerror(rc));
            return rc;
        }
        l->h = pf;
        app_log_listening("local", where, "forwarding %s to %s", where, to);
        app_warn_exposed(sa, "forward", where);
        return 0;
    }
    case LISTENER_LOCAL_UDP:
    case LISTENER_REMOTE_UDP: {
        struct port_udp *pu = NULL;
        if ((rc = app_start_udp_forward(a, f, &pu)) < 0)
            return rc;
        l->h = pu;
        if (f->remote && a->tunnel_was_up)
            port_udp_tunnel_up(pu, &a->tunnel_addrs); /* started by a reload */
        return 0;
    }
    case LISTENER_REMOTE_TCP: {
        /* It listens in the stack before the tunnel is up (lwIP listens on an address it does
         * not have yet); each tunnel up says where, or that an -R ADDR is not the tunnel's. */
        struct port_reverse_config cfg = {
            .loop = a->loop,
            .stack = a->stack,
            .connect_timeout_ms = a->opt.connect_timeout_ms,
            .max_conns = a->listener_max_conns,
            .shared = &a->conns,
            .host = f->host,
            .port = f->port,
        };
        struct port_reverse *pr = NULL;
        if ((rc = port_reverse_new(&pr, &cfg, sa)) < 0) {
            v2s_error("remote forward %s -> %s: %s", where, to, uv_strerror(rc));
            return rc;
        }
        l->h = pr;
        if (a->tunnel_was_up)
            port_reverse_tunnel_up(pr, &a->tunnel_addrs);
        return 0;
    }
    }
    char name[V2S_ADDR_STRLEN + 300];
    v2s_error("%s: %s", listener_spec_name(&l->spec, name, sizeof(name)), uv_strerror(rc));
    return rc;
}

/* Stops accepting; connections already relaying carry on until they end (the listener's object
 * goes with the last of them), those still being set up are closed. */
void app_listener_close(struct app_listener *l)
{
    switch (l->spec.kind) {
    case LISTENER_SOCKS:
        socks_server_close(l->h, NULL, NULL);
        break;
    case LISTENER_HTTP:
        http_proxy_close(l->h, NULL, NULL);
        break;
    case LISTENER_LOCAL_TCP:
        port_forward_close(l->h, NULL, NULL);
        break;
    case LISTENER_LOCAL_UDP:
    case LISTENER_REMOTE_UDP:
        port_udp_close(l->h, NULL, NULL); /* a UDP forward's flows end with it */
        break;
    case LISTENER_REMOTE_TCP:
        port_reverse_close(l->h, NULL, NULL);
        break;
    }
    l->h = NULL;
}

/* The reload's undo: the listeners it started are closed and those it closed start again, so that
 * what ran before runs again. One that cannot start again (its port taken meanwhile) is logged
 * and left out. */
static void app_listeners_undo(struct app *a, struct app_reload_scratch *w, size_t n_want, int closed)
{
    char name[V2S_ADDR_STRLEN + 300];
    size_t n = 0;
    for (size_t j = 0; j < n_want; j++)
        if (w->from[j] < 0 && w->next[j].h)
            app_listener_close(&w->next[j]);
    for (size_t i = 0; i < a->n_listeners; i++) {
        struct app_listener *l = &a->listeners[i];
        if (!w->keep[i] && closed && app_listener_start(a, l) < 0) {
            v2s_error("reload: %s could not start again; it is gone until a reload or a restart",
                      listener_spec_name(&l->spec, name, sizeof(name)));
            continue;
        }
        a->listeners[n++] = *l;
    }
    a->n_listeners = n;
}

/* Moves the running listeners to those o asks for, all or nothing, as nginx and haproxy do: the
 * ones in both keep running untouched; the new ones start, then the others close. A new one
 * that shares its port with one that closes starts only after that close (a forward moved to a
 * new destination binds its address again). When one cannot start (its port taken by another
 * process), what the reload did is undone and every listener that ran keeps serving: an operator
 * who moved a listener to a taken port would otherwise be left with neither. 0, or the negative
 * uv error of the listener that failed, named in err. */
int app_listeners_reload(struct app *a, const struct options *o, struct app_reload_scratch *w, char *err,
                         size_t errcap)
{
    char name[V2S_ADDR_STRLEN + 300];
    size_t n_want = listener_specs(o, w->want, LISTENERS_MAX);
    size_t kept = 0, closed = 0, started = 0, j;
    int rc = 0;
    for (size_t i = 0; i < a->n_listeners; i++)
        w->run[i] = a->listeners[i].spec;
    listener_diff(w->run, a->n_listeners, w->want, n_want, w->keep, w->from);
    for (j = 0; j < n_want; j++) {
        w->late[j] = 0;
        if (w->from[j] >= 0) {
            w->next[j] = a->listeners[w->from[j]];
            kept++;
            continue;
        }
        w->next[j].spec = w->want[j];
        w->next[j].h = NULL;
        for (size_t i = 0; i < a->n_listeners && !w->late[j]; i++)
            w->late[j] = !w->keep[i] && listener_spec_same_port(&w->run[i], &w->want[j]);
    }
    /* First the new listeners no closing one stands in the way of, then the closes, then the
     * others (w->late). */
    for (j = 0; j < n_want; j++)
        if (w->from[j] < 0 && !w->late[j]) {
            if ((rc = app_listener_start(a, &w->next[j])) < 0)
                goto fail;
            started++;
        }
    for (size_t i = 0; i < a->n_listeners; i++) {
        if (w->keep[i])
            continue;
        enum listener_kind k = a->listeners[i].spec.kind;
        v2s_event(V2S_LOG_INFO, "listener_closed", "reload: closing %s (%s)",
                  listener_spec_name(&a->listeners[i].spec, name, sizeof(name)),
                  k == LISTENER_LOCAL_UDP || k == LISTENER_REMOTE_UDP ? "its flows end with it"
                                                                      : "connections in progress continue");
        app_listener_close(&a->listeners[i]);
        closed++;
    }
    for (j = 0; j < n_want; j++)
        if (w->late[j]) {
            if ((rc = app_listener_start(a, &w->next[j])) < 0)
                goto fail;
            started++;
        }
    memcpy(a->listeners, w->next, n_want * sizeof(w->next[0]));
    a->n_listeners = n_want;
    w->kept = kept;
    w->started = started;
    w->closed = closed;
    return 0;
fail:
    snprintf(err, errcap, "%s: %s", listener_spec_name(&w->next[j].spec, name, sizeof(name)), uv_strerror(rc));
    app_listeners_undo(a, w, n_want, closed > 0);
    return rc;
}

void app_listeners_tunnel_up(struct app *a, const struct tunnel_settings *ts)
{
    for (size_t i = 0; i < a->n_listeners; i++) {
        if (a->listeners[i].spec.kind == LISTENER_REMOTE_TCP)
            port_reverse_tunnel_up(a->listeners[i].h, ts);
        else if (a->listeners[i].spec.kind == LISTENER_REMOTE_UDP)
            port_udp_tunnel_up(a->listeners[i].h, ts);
    }
}
