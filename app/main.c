/* vpn2socks: wires a tunnel, the stack, the router and the listeners together on one loop. main.c
 * runs the loop, the signals, the --status wiring and the stop; the tunnel is opened in
 * tunnel_setup.c and the listeners are started, closed and reloaded in serve.c (app/app.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <uv.h>

#include "app/app.h"
#include "app/conf.h"
#include "app/listeners.h"
#include "app/metrics.h"
#include "app/status.h"
#include "app/version.h"
#include "base/conn_limit.h"
#include "base/credentials.h"
#include "base/log.h"
#include "route/dial.h"
#include "route/direct.h"
#include "route/outbound.h"
#include "route/router.h"
#include "route/via_stack.h"
#include "stack/stack.h"
#include "tunnel/settings.h"
#include "tunnel/tunnel.h"

static const char *const app_dial_names[APP_DIALS] = {"socks", "http", "forward"};

static void app_stop(struct app *a, int code);
static void app_reload(struct app *a);

static void app_set_log_level(int verbosity)
{
    v2s_log_level = verbosity < 0 ? V2S_LOG_ERROR : V2S_LOG_WARN + verbosity;
    if (v2s_log_level > V2S_LOG_TRACE)
        v2s_log_level = V2S_LOG_TRACE;
}

static void app_deferred_stop(uv_timer_t *t)
{
    struct app *a = t->data;
    app_stop(a, a->stop_code);
}

int app_stop_pending(const struct app *a)
{
    return uv_is_active((const uv_handle_t *)&a->stop_timer);
}

/* Stops with code from the loop's next turn; the first reason given wins. */
void app_stop_later(struct app *a, int code)
{
    if (a->stopping || app_stop_pending(a))
        return;
    a->stop_code = code;
    uv_timer_start(&a->stop_timer, app_deferred_stop, 0, 0);
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
    m->has_clients = 1;
    m->clients_open = a->conns.count;
    m->clients_max = a->conns.max;
    m->clients_refused = a->conns.refused_total;
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
        /* Our own OpenVPN client: what openvpn's users expect of SIGHUP, a restart on the
         * config read again (systemctl reload, kill -HUP), never an exit. */
        if (a->opt.config) {
            app_reload_openvpn(a, a->opt.config, a->opt.auth_user_pass, 1);
            return;
        }
        /* openconnect hangs up its script's process group when the session ends. */
        app_tunnel_down(a, TUNNEL_DOWN_CLOSED, "the VPN client ended the session (SIGHUP)");
        return;
    }
    /* SIGUSR2 too: it is openvpn's signal for its statistics, and its default action ended the
     * process without a word. */
    if (signum == SIGUSR1 || signum == SIGUSR2) {
        /* Asked for by name, so shown at any level, at info priority: the default level shows
         * warnings, and the signal printed nothing there (openvpn prints its SIGUSR2 statistics
         * at its default verbosity). */
        int level = v2s_log_level;
        if (level < V2S_LOG_INFO)
            v2s_log_level = V2S_LOG_INFO;
        if (a->tunnel)
            tunnel_log_stats(a->tunnel);
        if (a->stack)
            stack_log_stats(a->stack);
        struct metrics m;
        app_metrics_collect(a, &m);
        metrics_log(&m); /* what /metrics would answer now */
        v2s_log_level = level;
        return;
    }
    v2s_event(V2S_LOG_INFO, "stopping", "%s: stopping", strsignal(signum));
    app_stop(a, 0);
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
    /* A SIGTERM read in the turn that a tunnel loss asked for a stop does not hide the loss. */
    a->exit_code = loop_exit_code(app_stop_pending(a), a->stop_code, code);
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
    signal(SIGUSR2, SIG_IGN);
    uv_close((uv_handle_t *)&a->stop_timer, NULL);
    memtrim_close(&a->memtrim);
    app_unwatch_vpn_client(a);
    loop_exit_arm(&a->loop_exit, a->loop);
}

/* Descriptors besides the listeners' connections: the tunnel's socket and its reconnects, DNS
 * queries, the listeners themselves, libuv's own, the host resolver's threads. Kept free so that a
 * flood of clients up to the caps cannot take away what the tunnel needs to come back. */
enum { APP_FD_RESERVE = 128 };

/* Makes the open files limit fit the connection caps, at the most descriptors a connection of the
 * configured listeners can hold (listener_fds_per_conn(): 4 with SOCKS or HTTP listeners, 2 with
 * forwards only). The soft limit is raised as far as the hard one allows (libuv polls with epoll,
 * so a high descriptor number costs nothing); if that is still short, default caps are lowered to
 * fit, and caps the user gave are kept with a warning (connections past the limit then fail with
 * "too many open files" before the cap refuses them). */
static void app_fit_descriptors(struct app *a)
{
    const struct options *o = &a->opt;
    struct rlimit rl;
    a->max_conns = o->max_conns;
    a->listener_max_conns = o->listener_max_conns;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    unsigned per = listener_fds_per_conn(o);
    uint64_t need, now = listener_fit_nofile(o, o->max_conns, APP_FD_RESERVE, &need);
    if (now == 0)
        return;
    if (now != UINT64_MAX && now != (uint64_t)rl.rlim_cur)
        v2s_debug("open files limit raised from %llu to %llu for --max-connections %u",
                  (unsigned long long)rl.rlim_cur, (unsigned long long)now, o->max_conns);
    rl.rlim_cur = now == UINT64_MAX ? RLIM_INFINITY : (rlim_t)now;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return;
    unsigned fit = rl.rlim_cur > APP_FD_RESERVE + per ? (unsigned)((rl.rlim_cur - APP_FD_RESERVE) / per) : 1;
    if (o->max_conns_given) {
        v2s_warn("--max-connections %u needs about %llu open files, but the limit is %llu (ulimit -n): past "
                 "about %u connections, new ones may fail for want of descriptors",
                 o->max_conns, (unsigned long long)need, (unsigned long long)rl.rlim_cur, fit);
        return;
    }
    a->max_conns = fit;
    if (!o->listener_max_conns_given && a->listener_max_conns > fit)
        a->listener_max_conns = fit;
    /* A warning, not a note: past these caps connections are refused, and the operator who did
     * not set them would otherwise first hear of them from the refusals. */
    v2s_warn("open files limit %llu (ulimit -n, as far as the hard limit lets it go): the default caps are "
             "lowered to %u connections in all, %u per listener; raise the hard limit (ulimit -Hn, "
             "LimitNOFILE= under systemd) to keep them",
             (unsigned long long)rl.rlim_cur, a->max_conns, a->listener_max_conns);
}

/* The --socks-auth file on a reload: read again (or the other file the reload names), its users
 * take over for new logins, while connections already in keep going; users rotating proxy
 * passwords expect that of a reload. A file that does not load keeps the users there were.
 * Turning authentication on or off needs the listeners started again: that waits for a restart
 * (options_restart_only_changes). */
static void app_reload_socks_auth(struct app *a, struct options *next)
{
    char err[512];
    struct v2s_credentials *users;
    if (!a->socks_creds || !next->socks_auth)
        return;
    if (v2s_credentials_load(&users, next->socks_auth, a->opt.allow_readable_secrets, err, sizeof(err)) < 0) {
        v2s_error("reload: --socks-auth: %s; the %zu users of %s are kept", err, v2s_credentials_count(a->socks_creds),
                  a->opt.socks_auth);
        return;
    }
    v2s_credentials_replace(a->socks_creds, users);
    v2s_info("reload: SOCKS and HTTP listeners require one of the %zu users of %s",
             v2s_credentials_count(a->socks_creds), next->socks_auth);
    char *path = a->opt.socks_auth;
    a->opt.socks_auth = next->socks_auth;
    next->socks_auth = path;
}

/* SIGHUP with --conf: the file and the command line read again, as at startup. What can change
 * while running does (listeners, forwards, routes, the --socks-auth users, the log level and
 * format, and for our OpenVPN client the .ovpn: app_reload_openvpn restarts the session when it or
 * a file it names changed); what cannot is named and left as it is. A file that does not parse,
 * or asks for a listener that cannot start, changes nothing. */
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
    /* The first -D or -H added to forwards: a connection may now hold 4 descriptors, not 2 (see
     * app_fit_descriptors). The caps stay as they started, so the soft limit is raised for them;
     * only the hard limit can stop that, and then a warning says so. */
    unsigned per = listener_fds_per_conn(&next);
    if (per > listener_fds_per_conn(&a->opt)) {
        uint64_t need, now = listener_fit_nofile(&next, a->max_conns, APP_FD_RESERVE, &need);
        if (now != 0 && now < need)
            v2s_warn("reload: %u connections of these listeners need about %llu open files, but the limit is %llu "
                     "(ulimit -n): past about %llu connections, new ones may fail for want of descriptors",
                     a->max_conns, (unsigned long long)need, (unsigned long long)now,
                     (unsigned long long)(now > APP_FD_RESERVE + per ? (now - APP_FD_RESERVE) / per : 1));
    }
    /* The listeners first: the only step that another process can make fail (a port it holds),
     * and then nothing of the file applies. */
    if (app_listeners_reload(a, &next, w, err, sizeof(err)) < 0) {
        v2s_log_event(V2S_LOG_ERROR, "reload_failed", NULL, 0, "reload: %s; the running configuration is kept", err);
        goto out;
    }
    char changed[512];
    options_restart_only_changes(&a->opt, &next, changed, sizeof(changed));
    if (changed[0])
        v2s_warn("reload: %s: %s changed, ignored until a restart", next.conf, changed);
    if (router_set_user(&a->router, &next.route) < 0)
        v2s_error("reload: out of memory; the routes are kept as they were");
    else {
        struct router_config route = a->opt.route;
        a->opt.route = next.route;
        next.route = route;
    }
    app_set_log_level(next.verbosity);
    v2s_log_format = (enum v2s_log_format)next.log_format;
    app_reload_socks_auth(a, &next);
    /* The running configuration takes what was reloaded; the rest stays as it started. */
    memcpy(a->opt.socks, next.socks, sizeof(next.socks));
    a->opt.n_socks = next.n_socks;
    memcpy(a->opt.http, next.http, sizeof(next.http));
    a->opt.n_http = next.n_http;
    memcpy(a->opt.forwards, next.forwards, sizeof(next.forwards));
    a->opt.n_forwards = next.n_forwards;
    a->opt.verbosity = next.verbosity;
    a->opt.log_format = next.log_format;
    /* Last, once the listeners are in place: the session restarts only on a .ovpn (or another
     * one) that reads differently; the paths the session runs on move only once it does. */
    int session = 0;
    if (a->opt.config && next.config && (session = app_reload_openvpn(a, next.config, next.auth_user_pass, 0)) >= 0) {
        char *config = a->opt.config, *auth = a->opt.auth_user_pass;
        a->opt.config = next.config;
        a->opt.auth_user_pass = next.auth_user_pass;
        next.config = config;
        next.auth_user_pass = auth;
    }
    /* One line says the reload happened, at any level: at the default one (warnings) an operator
     * who sent SIGHUP saw nothing, and could not tell a reload from a signal that never came. The
     * .ovpn's failure, if any, was an error line of its own just before. */
    const char *sep = "", *path = "", *note = "";
    if (session > 0) {
        sep = "; ";
        path = a->opt.config;
        note = " changed: the session restarts on it";
    } else if (session < 0 && session != -ESHUTDOWN)
        note = "; the running session is kept";
    const struct v2s_log_field fields[] = {V2S_LOG_NUM("kept", w->kept), V2S_LOG_NUM("started", w->started),
                                           V2S_LOG_NUM("closed", w->closed)};
    v2s_log_event_requested(V2S_LOG_INFO, "reload_done", fields, sizeof(fields) / sizeof(fields[0]),
                            "reload: %zu listener%s kept, %zu started, %zu closed%s%s%s", w->kept,
                            w->kept == 1 ? "" : "s", w->started, w->closed, sep, path, note);
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
    static const int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};
    _Static_assert(sizeof(signals) / sizeof(signals[0]) == sizeof(a->sig) / sizeof(a->sig[0]),
                   "a->sig holds one watcher per signal");
    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
        uv_signal_init(a->loop, &a->sig[i]);
        a->sig[i].data = a;
        uv_signal_start(&a->sig[i], app_signal, signals[i]);
    }
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
    int rc = app_open_tunnel(a);
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
    conn_limit_init(&a->conns, a->max_conns, "every listener together", "--max-connections");
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
        if (!a->hup_reloads && !app_stop_pending(a)) /* not when it has ended already */
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
    v2s_log_stamp = v2s_log_stamp_for(STDERR_FILENO);
    if (conf_options(&a.opt, argc, argv, err, sizeof(err)) < 0) {
        /* Under systemd the most common failure of all, a bad line in the --conf file, is an
         * error to the journal too (journalctl -p err), and nobody there can try --help. */
        if (v2s_log_stamp == V2S_LOG_STAMP_JOURNAL)
            fprintf(stderr, "<3>vpn2socks: %s\n", err);
        else
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
        version_print(stdout, VPN2SOCKS_VERSION);
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
    unsigned lookups = loop_exit_finish(&a.loop_exit);
    if (lookups == 0 && uv_loop_close(a.loop) != 0)
        v2s_debug("handles still open at exit");
    router_free(&a.router);
    v2s_credentials_free(a.socks_creds);
    options_free(&a.opt);
    if (lookups > 0) {
        /* exit() would run libuv's destructor, which joins the thread pool: it would wait for
         * the lookups that the loop was just left not to wait for (app/loop_exit.h). */
        fflush(NULL);
        _exit(a.exit_code);
    }
    return a.exit_code;
}
