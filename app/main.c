/* vpn2socks: wires a tunnel, the stack, the router and the listeners together on one loop. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <uv.h>

#include "base/conn_limit.h"
#include "base/credentials.h"
#include "route/dial.h"
#include "route/direct.h"
#include "base/log.h"
#include "app/conf.h"
#include "app/listeners.h"
#include "app/memtrim.h"
#include "app/metrics.h"
#include "app/options.h"
#include "app/status.h"
#include "http/proxy.h"
#include "route/outbound.h"
#include "route/router.h"
#include "route/via_stack.h"
#include "port/forward.h"
#include "port/udp_forward.h"
#include "port/reverse.h"
#include "socks/server.h"
#include "stack/stack.h"
#include "tunnel/fd.h"
#include "tunnel/openvpn/client.h"
#include "tunnel/openvpn/config.h"
#include "tunnel/settings.h"
#include "tunnel/tunnel.h"

enum {
    EXIT_USAGE = 1,
    EXIT_AUTH = 2,
    EXIT_TUNNEL_LOST = 3,
};

/* Each kind of listener dials through its own routed outbound, which counts its connections
 * (the metrics' listener label). */
enum app_dial {
    APP_DIAL_SOCKS,
    APP_DIAL_HTTP,
    APP_DIAL_FORWARD, /* -L, TCP and UDP */
    APP_DIALS,
};

static const char *const app_dial_names[APP_DIALS] = {"socks", "http", "forward"};

/* A running listener: what it is, and the object of its kind. */
struct app_listener {
    struct listener_spec spec;
    void *h; /* struct socks_server, struct port_forward, ... as spec.kind says */
};

struct app {
    uv_loop_t *loop;
    int argc;   /* the command line, read again at each reload (--conf) */
    char **argv;
    struct options opt; /* the running configuration */
    struct router router; /* live: the command line's entries, then the tunnel's routes */
    struct tunnel *tunnel;
    struct stack *stack;
    struct outbound *via_tunnel; /* the stack's connections */
    struct outbound *direct;     /* host sockets */
    struct outbound *dialers[APP_DIALS]; /* the router's pick between them: what the listeners dial */
    struct dial_stats dial_stats[APP_DIALS]; /* theirs; here, as relays may outlive them */
    struct status_server *status; /* --status */
    char down_why[200]; /* why the tunnel went down for good, for /readyz */
    struct app_listener listeners[LISTENERS_MAX];
    size_t n_listeners;
    struct v2s_credentials *socks_creds; /* --socks-auth; NULL: no authentication */
    unsigned max_conns;          /* --max-connections and --listener-max-connections as they */
    unsigned listener_max_conns; /* fit the open files limit (app_fit_descriptors) */
    struct conn_limit conns; /* every listener's connections together */
    int hup_reloads; /* SIGHUP reloads --conf, rather than meaning the VPN client ended */
    struct tunnel_settings tunnel_addrs; /* the last tunnel up's addresses (nothing else) */
    int tunnel_was_up;
    uv_signal_t sig[4];
    uv_timer_t stop_timer; /* runs app_stop() from the loop, never from inside the stack or a tunnel */
    struct memtrim memtrim;
    int stop_code;
    uv_poll_t vpn_watch; /* readable when the VPN client process ($VPNPID) exits */
    int vpn_watch_fd;
    int stopping;
    int exit_code;
};

static void app_stop(struct app *a, int code);
static void app_reload(struct app *a);
static void app_listener_close(struct app_listener *l);
static const char *app_getenv(void *arg, const char *name);
static void app_stop_later(struct app *a, int code);
static int app_stop_pending(const struct app *a);

static void app_set_log_level(int verbosity)
{
    v2s_log_level = verbosity < 0 ? V2S_LOG_ERROR : V2S_LOG_WARN + verbosity;
    if (v2s_log_level > V2S_LOG_TRACE)
        v2s_log_level = V2S_LOG_TRACE;
}

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

static void app_log_settings(const struct tunnel_settings *ts)
{
    char buf[V2S_ADDR_STRLEN];
    if (ts->addr4.family)
        v2s_event(V2S_LOG_INFO, "tunnel_up", "tunnel up: address %s/%u", v2s_addr_format(&ts->addr4, buf, sizeof(buf)),
                  ts->prefix4);
    if (ts->addr6.family)
        v2s_event(V2S_LOG_INFO, "tunnel_up", "tunnel up: address %s/%u", v2s_addr_format(&ts->addr6, buf, sizeof(buf)),
                  ts->prefix6);
    v2s_event(V2S_LOG_INFO, "tunnel_up", "tunnel up: MTU %u", ts->mtu);
    for (size_t i = 0; i < ts->n_routes; i++)
        v2s_event(V2S_LOG_INFO, "tunnel_up", "tunnel up: route %s", v2s_cidr_format(&ts->routes[i], buf, sizeof(buf)));
    for (size_t i = 0; i < ts->n_excludes; i++)
        v2s_event(V2S_LOG_INFO, "tunnel_up", "tunnel up: excluded %s",
                  v2s_cidr_format(&ts->excludes[i], buf, sizeof(buf)));
    if (ts->n_routes == 0)
        v2s_event(V2S_LOG_INFO, "tunnel_up",
                  "tunnel up: no split routes, everything goes through the tunnel unless --others says otherwise");
    for (size_t i = 0; i < ts->n_dns; i++)
        v2s_event(V2S_LOG_INFO, "tunnel_up", "tunnel up: DNS %s", v2s_addr_format(&ts->dns[i], buf, sizeof(buf)));
    if (ts->domains) {
        char shown[512]; /* the VPN server chose them */
        v2s_event(V2S_LOG_INFO, "tunnel_up", "tunnel up: search domains %s",
                  v2s_shown(ts->domains, shown, sizeof(shown)));
    }
}

/* The tunnel events run inside the tunnel's own processing: the fd tunnel raises up from inside
 * tunnel_start(), the OpenVPN client from inside its control channel, which carries on after the
 * call; down may come from inside tunnel_send(), that is from inside lwIP. So none of them closes
 * anything itself: a stop they raise goes through app_stop_later(). */
static void app_tunnel_up(void *arg, const struct tunnel_settings *pushed)
{
    struct app *a = arg;
    if (a->stopping || app_stop_pending(a))
        return; /* not worth setting up a tunnel we are leaving */
    /* --dns and --domain replace what the VPN announced, whichever tunnel it is (the packet fd's
     * came through app_settings() already). A shallow copy: everything below copies what it keeps. */
    struct tunnel_settings copy = *pushed;
    const struct tunnel_settings *o = &a->opt.overrides, *ts = &copy;
    if (o->n_dns) {
        memcpy(copy.dns, o->dns, sizeof(copy.dns));
        copy.n_dns = o->n_dns;
    }
    if (o->domains)
        copy.domains = o->domains;
    app_log_settings(ts);
    if (stack_tunnel_up(a->stack, ts) < 0 || router_set_tunnel(&a->router, ts) < 0) {
        v2s_error("cannot use the tunnel's settings");
        app_stop_later(a, EXIT_USAGE);
        return;
    }
    /* What -R forwards started by a later reload are told (they only look at the addresses). */
    tunnel_settings_init(&a->tunnel_addrs);
    a->tunnel_addrs.addr4 = ts->addr4;
    a->tunnel_addrs.prefix4 = ts->prefix4;
    a->tunnel_addrs.addr6 = ts->addr6;
    a->tunnel_addrs.prefix6 = ts->prefix6;
    a->tunnel_was_up = 1;
    for (size_t i = 0; i < a->n_listeners; i++)
        if (a->listeners[i].spec.kind == LISTENER_REMOTE_TCP)
            port_reverse_tunnel_up(a->listeners[i].h, ts);
}

static void app_tunnel_packet(void *arg, const uint8_t *pkt, size_t len)
{
    struct app *a = arg;
    stack_input(a->stack, pkt, len);
}

static void app_tunnel_writable(void *arg)
{
    struct app *a = arg;
    stack_tunnel_writable(a->stack);
}

static void app_deferred_stop(uv_timer_t *t)
{
    struct app *a = t->data;
    app_stop(a, a->stop_code);
}

static int app_stop_pending(const struct app *a)
{
    return uv_is_active((const uv_handle_t *)&a->stop_timer);
}

/* Stops with code from the loop's next turn; the first reason given wins. */
static void app_stop_later(struct app *a, int code)
{
    if (a->stopping || app_stop_pending(a))
        return;
    a->stop_code = code;
    uv_timer_start(&a->stop_timer, app_deferred_stop, 0, 0);
}

static void app_tunnel_down(void *arg, enum tunnel_down_reason reason, const char *why)
{
    struct app *a = arg;
    if (a->stopping || app_stop_pending(a))
        return;
    if (reason == TUNNEL_DOWN_AUTH)
        v2s_log_event(V2S_LOG_ERROR, "auth_failed", NULL, 0, "%s", why);
    else
        v2s_log_event(V2S_LOG_ERROR, "tunnel_down", NULL, 0, "tunnel lost: %s", why);
    snprintf(a->down_why, sizeof(a->down_why), "%s: %s",
             reason == TUNNEL_DOWN_AUTH ? "authentication failed" : "tunnel lost", why);
    app_stop_later(a, reason == TUNNEL_DOWN_AUTH ? EXIT_AUTH : EXIT_TUNNEL_LOST);
}

/* Every module's counters, now. */
static void app_metrics_collect(const struct app *a, struct metrics *m)
{
    memset(m, 0, sizeof(*m));
    if (a->tunnel && !a->stopping) {
        m->has_tunnel = 1;
        tunnel_get_stats(a->tunnel, &m->tunnel);
    }
    if (a->stack && !a->stopping) {
        m->has_stack = 1;
        stack_get_stats(a->stack, &m->stack);
    }
    for (size_t i = 0; i < APP_DIALS; i++) {
        m->listeners[i].name = app_dial_names[i];
        m->listeners[i].dial = a->dial_stats[i];
    }
    m->n_listeners = APP_DIALS;
}

static void app_status_metrics(void *arg, struct metrics_text *t)
{
    struct metrics m;
    app_metrics_collect(arg, &m);
    metrics_prometheus(&m, t);
}

/* /readyz: ready while the tunnel is up. */
static int app_status_ready(void *arg, char *why, size_t cap)
{
    struct app *a = arg;
    if (a->down_why[0]) {
        snprintf(why, cap, "%s", a->down_why);
        return 0;
    }
    if (a->stopping || app_stop_pending(a) || !a->tunnel) {
        snprintf(why, cap, "stopping");
        return 0;
    }
    struct tunnel_stats ts;
    tunnel_get_stats(a->tunnel, &ts);
    if (ts.state == TUNNEL_STATE_UP && a->tunnel_was_up)
        return 1;
    snprintf(why, cap, "tunnel %s", ts.state == TUNNEL_STATE_UP ? "connecting" : tunnel_state_name(ts.state));
    return 0;
}

/* --status: started before the tunnel, so that /readyz says "connecting" meanwhile. */
static int app_status_start(struct app *a)
{
    if (!a->opt.has_status)
        return 0;
    const struct sockaddr *sa = (const struct sockaddr *)&a->opt.status;
    char where[V2S_ADDR_STRLEN];
    v2s_sockaddr_format(sa, where, sizeof(where));
    struct status_config cfg = {
        .loop = a->loop,
        .ready = app_status_ready,
        .metrics = app_status_metrics,
        .arg = a,
    };
    int rc = status_server_new(&a->status, &cfg, sa);
    if (rc < 0) {
        v2s_error("--status %s: %s", where, uv_strerror(rc));
        return rc;
    }
    v2s_info("status endpoint (/healthz, /readyz, /metrics) on http://%s", where);
    if (!options_listen_is_loopback(sa))
        v2s_warn("--status %s: not a loopback address: whoever reaches it can read the metrics", where);
    return 0;
}

static void app_signal(uv_signal_t *h, int signum)
{
    struct app *a = h->data;
    if (signum == SIGHUP) {
        if (a->hup_reloads) {
            app_reload(a);
            return;
        }
        /* openconnect hangs up its script's process group when the session ends. */
        app_tunnel_down(a, TUNNEL_DOWN_CLOSED, "the VPN client ended the session (SIGHUP)");
        return;
    }
    if (signum == SIGUSR1) {
        if (a->tunnel)
            tunnel_log_stats(a->tunnel);
        if (a->stack)
            stack_log_stats(a->stack);
        struct metrics m;
        app_metrics_collect(a, &m);
        metrics_log(&m); /* what /metrics would answer now */
        return;
    }
    v2s_event(V2S_LOG_INFO, "stopping", "%s: stopping", strsignal(signum));
    app_stop(a, 0);
}

static void app_vpn_exited(uv_poll_t *h, int status, int events)
{
    struct app *a = h->data;
    (void)status;
    (void)events;
    app_tunnel_down(a, TUNNEL_DOWN_CLOSED, "the VPN client process exited");
}

/* A datagram packet fd gives no EOF when the other end dies, and a killed openconnect sends no
 * SIGHUP, so watch its process (VPNPID) through a pidfd, which becomes readable when it exits. */
static void app_watch_vpn_client(struct app *a)
{
    a->vpn_watch_fd = -1;
    long pid = tunnel_env_vpnpid(app_getenv, NULL);
    if (pid <= 0)
        return;
    int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    if (fd < 0) {
        v2s_debug("cannot watch the VPN client (pid %ld): %s", pid, strerror(errno));
        return;
    }
    if (uv_poll_init(a->loop, &a->vpn_watch, fd) < 0) {
        close(fd);
        return;
    }
    a->vpn_watch.data = a;
    a->vpn_watch_fd = fd;
    uv_poll_start(&a->vpn_watch, UV_READABLE, app_vpn_exited);
}

static void app_vpn_watch_closed(uv_handle_t *h)
{
    struct app *a = h->data;
    close(a->vpn_watch_fd);
    a->vpn_watch_fd = -1;
}

static void app_tunnel_closed(struct tunnel *t)
{
    (void)t;
}

static void app_stack_closed(void *arg)
{
    (void)arg;
}

static void app_stop(struct app *a, int code)
{
    if (a->stopping)
        return;
    a->stopping = 1;
    a->exit_code = code;
    for (size_t i = 0; i < a->n_listeners; i++)
        app_listener_close(&a->listeners[i]);
    a->n_listeners = 0;
    /* The stack resets what is still open, then the tunnel goes. */
    if (a->stack)
        stack_close(a->stack, app_stack_closed, a);
    if (a->tunnel)
        tunnel_close(a->tunnel, app_tunnel_closed);
    /* Direct relays are ours to end; the stack resets the tunneled ones. */
    for (size_t i = 0; i < APP_DIALS; i++)
        if (a->dialers[i])
            outbound_close(a->dialers[i], NULL, NULL);
    if (a->status)
        status_server_close(a->status);
    a->status = NULL;
    if (a->via_tunnel)
        outbound_close(a->via_tunnel, NULL, NULL);
    if (a->direct)
        outbound_close(a->direct, NULL, NULL);
    memset(a->dialers, 0, sizeof(a->dialers));
    a->via_tunnel = a->direct = NULL;
    for (size_t i = 0; i < sizeof(a->sig) / sizeof(a->sig[0]); i++)
        uv_close((uv_handle_t *)&a->sig[i], NULL);
    /* Closing the watchers restored the default actions; openconnect hangs up its script's process
     * group as it ends, which must not kill us halfway through a clean exit. */
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    uv_close((uv_handle_t *)&a->stop_timer, NULL);
    memtrim_close(&a->memtrim);
    if (a->vpn_watch_fd >= 0)
        uv_close((uv_handle_t *)&a->vpn_watch, app_vpn_watch_closed);
}

static const char *app_getenv(void *arg, const char *name)
{
    (void)arg;
    return getenv(name);
}

/* The tunnel settings: the environment openconnect gives the script, then the command line. */
static int app_settings(struct app *a, struct tunnel_settings *ts)
{
    const struct tunnel_settings *o = &a->opt.overrides;
    char err[256];
    if (tunnel_settings_from_script_env(ts, app_getenv, NULL, err, sizeof(err)) < 0) {
        v2s_error("%s", err);
        return -EINVAL;
    }
    if (o->addr4.family) {
        ts->addr4 = o->addr4;
        ts->prefix4 = o->prefix4;
    }
    if (o->addr6.family) {
        ts->addr6 = o->addr6;
        ts->prefix6 = o->prefix6;
    }
    if (o->mtu)
        ts->mtu = o->mtu;
    if (o->n_dns) {
        memcpy(ts->dns, o->dns, sizeof(ts->dns));
        ts->n_dns = o->n_dns;
    }
    if (o->domains) {
        free(ts->domains);
        if (!(ts->domains = strdup(o->domains)))
            return -ENOMEM;
    }
    if (!ts->addr4.family && !ts->addr6.family) {
        v2s_error("no tunnel address: run me from openconnect --script-tun, or give --address");
        return -EINVAL;
    }
    return 0;
}

/* The packet-fd tunnel: VPNFD (openconnect) or --tunnel-fd. */
static int app_open_fd_tunnel(struct app *a, const struct tunnel_events *ev)
{
    int fd = a->opt.tunnel_fd;
    if (fd < 0) {
        char err[512];
        int rc = tunnel_env_vpnfd(app_getenv, NULL, &fd, err, sizeof(err));
        if (rc == -ENOENT) {
            v2s_error("no tunnel: give --config client.ovpn, run me from openconnect --script-tun, or give --tunnel-fd");
            return EXIT_USAGE;
        }
        if (rc < 0) {
            v2s_error("%s", err);
            return EXIT_USAGE;
        }
    }
    struct tunnel_settings ts;
    if (app_settings(a, &ts) < 0) {
        tunnel_settings_free(&ts);
        return EXIT_USAGE;
    }
    int rc = tunnel_fd_new(&a->tunnel, a->loop, fd, &ts, ev);
    tunnel_settings_free(&ts);
    if (rc < 0) {
        v2s_error("packet fd %d: %s", fd,
                  rc == -EPROTOTYPE ? "a stream socket; packets need a datagram or seqpacket socket"
                                    : strerror(-rc));
        a->tunnel = NULL;
        return EXIT_USAGE;
    }
    return 0;
}

/* The native OpenVPN client: --config. */
static int app_open_openvpn(struct app *a, const struct tunnel_events *ev)
{
    char err[1024];
    struct ovpn_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return EXIT_USAGE;
    unsigned flags = a->opt.allow_readable_secrets ? OVPN_CONFIG_ALLOW_READABLE_SECRETS : 0;
    if (ovpn_config_load_flags(cfg, a->opt.config, a->opt.auth_user_pass, flags, err, sizeof(err)) < 0) {
        v2s_error("%s", err);
        ovpn_config_free(cfg);
        free(cfg);
        return EXIT_USAGE;
    }
    /* The client owns cfg from here, whatever happens. */
    int rc = ovpn_client_new(&a->tunnel, a->loop, cfg, ev, err, sizeof(err));
    if (rc < 0) {
        v2s_error("%s: %s", a->opt.config, err);
        a->tunnel = NULL;
        return rc == -EKEYEXPIRED ? EXIT_AUTH : EXIT_USAGE;
    }
    return 0;
}

/* Descriptors besides the listeners' connections: the tunnel's socket and its reconnects, DNS
 * queries, the listeners themselves, libuv's own, the host resolver's threads. Kept free so that a
 * flood of clients up to the caps cannot take away what the tunnel needs to come back. */
enum { APP_FD_RESERVE = 128 };

/* Makes the open files limit fit the connection caps: a direct connection holds two descriptors
 * (the client's and the destination's), a tunnelled one one. The soft limit is raised as far as
 * the hard one allows (libuv polls with epoll, so a high descriptor number costs nothing); if that
 * is still short, default caps are lowered to fit, and caps the user gave are kept with a warning
 * (connections past the limit then fail with "too many open files" before the cap refuses them). */
static void app_fit_descriptors(struct app *a)
{
    const struct options *o = &a->opt;
    struct rlimit rl;
    a->max_conns = o->max_conns;
    a->listener_max_conns = o->listener_max_conns;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rlim_t need = (rlim_t)o->max_conns * 2 + APP_FD_RESERVE;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            rl.rlim_cur = old;
        else if (rl.rlim_cur != old)
            v2s_debug("open files limit raised from %llu to %llu for --max-connections %u",
                      (unsigned long long)old, (unsigned long long)rl.rlim_cur, o->max_conns);
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return;
    unsigned fit = rl.rlim_cur > APP_FD_RESERVE + 2 ? (unsigned)((rl.rlim_cur - APP_FD_RESERVE) / 2) : 1;
    if (o->max_conns_given) {
        v2s_warn("--max-connections %u needs about %llu open files, but the limit is %llu (ulimit -n): past "
                 "about %u connections, new ones may fail for want of descriptors",
                 o->max_conns, (unsigned long long)need, (unsigned long long)rl.rlim_cur, fit);
        return;
    }
    a->max_conns = fit;
    if (!o->listener_max_conns_given && a->listener_max_conns > fit)
        a->listener_max_conns = fit;
    v2s_info("open files limit %llu (ulimit -n): at most %u connections in all, %u per listener",
             (unsigned long long)rl.rlim_cur, a->max_conns, a->listener_max_conns);
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
static int app_listener_start(struct app *a, struct app_listener *l)
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
static void app_listener_close(struct app_listener *l)
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

/* What a reload works with; too big for the stack. */
struct app_reload_scratch {
    struct listener_spec run[LISTENERS_MAX], want[LISTENERS_MAX];
    unsigned char keep[LISTENERS_MAX];
    int from[LISTENERS_MAX];
    struct app_listener next[LISTENERS_MAX];
};

/* Moves the running listeners to those o asks for: the ones in both keep running untouched, the
 * others are closed first (so that a listener moved to a new destination can bind its address
 * again), then the new ones start. One that cannot start is logged and left out (a later reload
 * tries it again); the rest go on. */
static void app_listeners_reload(struct app *a, const struct options *o, struct app_reload_scratch *w)
{
    char name[V2S_ADDR_STRLEN + 300];
    size_t n_want = listener_specs(o, w->want, LISTENERS_MAX), n_next = 0;
    size_t kept = 0, closed = 0, started = 0, failed = 0;
    for (size_t i = 0; i < a->n_listeners; i++)
        w->run[i] = a->listeners[i].spec;
    listener_diff(w->run, a->n_listeners, w->want, n_want, w->keep, w->from);
    for (size_t i = 0; i < a->n_listeners; i++) {
        if (w->keep[i])
            continue;
        v2s_event(V2S_LOG_INFO, "listener_closed", "reload: closing %s (connections in progress continue)",
                  listener_spec_name(&a->listeners[i].spec, name, sizeof(name)));
        app_listener_close(&a->listeners[i]);
        closed++;
    }
    for (size_t j = 0; j < n_want; j++) {
        struct app_listener *l = &w->next[n_next];
        if (w->from[j] >= 0) {
            *l = a->listeners[w->from[j]];
            n_next++;
            kept++;
            continue;
        }
        l->spec = w->want[j];
        l->h = NULL;
        if (app_listener_start(a, l) < 0) {
            v2s_error("reload: %s not started; the rest of the reload goes on",
                      listener_spec_name(&l->spec, name, sizeof(name)));
            failed++;
            continue;
        }
        n_next++;
        started++;
    }
    memcpy(a->listeners, w->next, n_next * sizeof(w->next[0]));
    a->n_listeners = n_next;
    if (failed)
        v2s_log_event(V2S_LOG_WARN, "reload_done", NULL, 0,
                      "reload: %zu listener%s kept, %zu started, %zu closed, %zu failed to start", kept,
                      kept == 1 ? "" : "s", started, closed, failed);
    else
        v2s_event(V2S_LOG_INFO, "reload_done", "reload: %zu listener%s kept, %zu started, %zu closed", kept,
                  kept == 1 ? "" : "s", started, closed);
}

/* SIGHUP with --conf: the file and the command line read again, as at startup. What can change
 * while running does (listeners, forwards, routes, the log level and format); what cannot is named and left
 * as it is. A file that does not parse changes nothing. */
static void app_reload(struct app *a)
{
    struct options next;
    char err[1024];
    if (a->stopping || app_stop_pending(a))
        return;
    v2s_event(V2S_LOG_INFO, "reload", "SIGHUP: reloading %s", a->opt.conf);
    struct app_reload_scratch *w = malloc(sizeof(*w));
    if (!w) {
        v2s_error("reload: out of memory; the running configuration is kept");
        return;
    }
    options_init(&next);
    if (conf_options(&next, a->argc, a->argv, err, sizeof(err)) < 0) {
        v2s_log_event(V2S_LOG_ERROR, "reload_failed", NULL, 0, "reload: %s; the running configuration is kept", err);
        goto out;
    }
    if (router_set_user(&a->router, &next.route) < 0) {
        v2s_error("reload: out of memory; the running configuration is kept");
        goto out;
    }
    char changed[512];
    options_restart_only_changes(&a->opt, &next, changed, sizeof(changed));
    if (changed[0])
        v2s_warn("reload: %s: %s changed, ignored until a restart", next.conf, changed);
    app_set_log_level(next.verbosity);
    v2s_log_format = (enum v2s_log_format)next.log_format;
    app_listeners_reload(a, &next, w);
    /* The running configuration takes what was reloaded; the rest stays as it started. */
    struct router_config route = a->opt.route;
    a->opt.route = next.route;
    next.route = route;
    memcpy(a->opt.socks, next.socks, sizeof(next.socks));
    a->opt.n_socks = next.n_socks;
    memcpy(a->opt.forwards, next.forwards, sizeof(next.forwards));
    a->opt.n_forwards = next.n_forwards;
    a->opt.verbosity = next.verbosity;
    a->opt.log_format = next.log_format;
out:
    options_free(&next);
    free(w);
}

static int app_run(struct app *a)
{
    /* First, so that every later failure path can close them. */
    uv_timer_init(a->loop, &a->stop_timer);
    a->stop_timer.data = a;
    memtrim_init(&a->memtrim, a->loop);
    static const int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
        uv_signal_init(a->loop, &a->sig[i]);
        a->sig[i].data = a;
        uv_signal_start(&a->sig[i], app_signal, signals[i]);
    }
    struct tunnel_events ev = {
        .up = app_tunnel_up,
        .packet = app_tunnel_packet,
        .writable = app_tunnel_writable,
        .down = app_tunnel_down,
        .arg = a,
    };
    if (router_init_from(&a->router, &a->opt.route) < 0) {
        v2s_error("out of memory");
        return EXIT_USAGE;
    }
    /* Before the tunnel, so that a bad file stops us before we connect. */
    if (a->opt.socks_auth) {
        char err[512];
        int rc = v2s_credentials_load(&a->socks_creds, a->opt.socks_auth, a->opt.allow_readable_secrets, err,
                                      sizeof(err));
        if (rc < 0) {
            v2s_error("--socks-auth: %s", err);
            return EXIT_USAGE;
        }
        if (a->opt.n_socks == 0 && a->opt.n_http == 0)
            v2s_warn("--socks-auth: there is no SOCKS (-D) or HTTP (-H) listener to use it");
        v2s_info("SOCKS and HTTP listeners require one of the %zu users of %s",
                 v2s_credentials_count(a->socks_creds), a->opt.socks_auth);
    }
    int rc = a->opt.config ? app_open_openvpn(a, &ev) : app_open_fd_tunnel(a, &ev);
    if (rc > 0)
        return rc;
    if ((rc = stack_new(&a->stack, a->loop, a->tunnel)) < 0) {
        v2s_error("cannot start the TCP/IP stack: %s", strerror(-rc));
        return EXIT_USAGE;
    }
    struct dial_config dcfg = {
        .loop = a->loop,
        .stack = a->stack,
        .router = &a->router,
    };
    if (via_stack_new(&a->via_tunnel, a->stack) < 0 || direct_new(&a->direct, a->loop) < 0) {
        v2s_error("out of memory");
        app_stop(a, EXIT_USAGE);
        return -1;
    }
    dcfg.via[ROUTER_TUNNEL] = a->via_tunnel;
    dcfg.via[ROUTER_DIRECT] = a->direct;
    for (size_t i = 0; i < APP_DIALS; i++) {
        dcfg.stats = &a->dial_stats[i];
        if (dial_new(&a->dialers[i], &dcfg) < 0) {
            v2s_error("out of memory");
            app_stop(a, EXIT_USAGE);
            return -1;
        }
    }
    app_fit_descriptors(a);
    conn_limit_init(&a->conns, a->max_conns, "SOCKS listeners together", "--max-connections");
    struct listener_spec *specs = calloc(LISTENERS_MAX, sizeof(*specs));
    size_t n = specs ? listener_specs(&a->opt, specs, LISTENERS_MAX) : 0;
    for (size_t i = 0; specs && i < n; i++) {
        struct app_listener *l = &a->listeners[a->n_listeners];
        l->spec = specs[i];
        if (app_listener_start(a, l) < 0) {
            free(specs);
            app_stop(a, EXIT_USAGE);
            return -1;
        }
        a->n_listeners++;
    }
    free(specs);
    if (!specs) {
        v2s_error("out of memory");
        app_stop(a, EXIT_USAGE);
        return -1;
    }
    if (app_status_start(a) < 0) {
        app_stop(a, EXIT_USAGE);
        return -1;
    }
    app_watch_vpn_client(a);
    /* openconnect hangs up its script's process group as the session ends, and SIGHUP has meant
     * that here since before there was a config file to reload. With --conf it reloads, and the end
     * of openconnect is seen by watching its process instead; where that watch is impossible
     * (VPNPID set but no pidfd), SIGHUP keeps its old meaning. */
    if (a->opt.conf) {
        a->hup_reloads = tunnel_env_vpnpid(app_getenv, NULL) <= 0 || a->vpn_watch_fd >= 0;
        if (!a->hup_reloads)
            v2s_warn("%s: SIGHUP will not reload it: the VPN client's process cannot be watched, so SIGHUP "
                     "keeps meaning that it ended the session",
                     a->opt.conf);
    }
    if ((rc = tunnel_start(a->tunnel)) < 0) {
        v2s_error("cannot use the packet fd: %s (it must be a socket or a tun device)", uv_strerror(rc));
        app_stop(a, EXIT_USAGE);
    }
    return -1;
}

int main(int argc, char **argv)
{
    struct app a;
    char err[1024];
    memset(&a, 0, sizeof(a));
    a.vpn_watch_fd = -1;
    a.argc = argc;
    a.argv = argv;
    options_init(&a.opt);
    if (conf_options(&a.opt, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "vpn2socks: %s\nTry 'vpn2socks --help'.\n", err);
        options_free(&a.opt);
        return EXIT_USAGE;
    }
    if (a.opt.help) {
        options_usage(stdout);
        options_free(&a.opt);
        return 0;
    }
    if (a.opt.version) {
        printf("vpn2socks %s\n", VPN2SOCKS_VERSION);
        options_free(&a.opt);
        return 0;
    }
    app_set_log_level(a.opt.verbosity);
    v2s_log_format = (enum v2s_log_format)a.opt.log_format;
    /* A peer that goes away mid-write must not kill the process. */
    signal(SIGPIPE, SIG_IGN);

    a.loop = uv_default_loop();
    int code = app_run(&a);
    if (code >= 0)
        app_stop(&a, code);
    uv_run(a.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(a.loop) != 0)
        v2s_debug("handles still open at exit");
    router_free(&a.router);
    v2s_credentials_free(a.socks_creds);
    options_free(&a.opt);
    return a.exit_code;
}
