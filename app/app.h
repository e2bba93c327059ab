/* The process's own state and what app/'s files share about it; internal to the vpn2socks
 * executable. main.c runs the loop, the signals and the stop; tunnel_setup.c opens the tunnel and
 * takes its events; serve.c starts, closes and reloads the listeners of every kind. */
#ifndef VPN2SOCKS_APP_APP_H
#define VPN2SOCKS_APP_APP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "app/listeners.h"
#include "app/loop_exit.h"
#include "app/memtrim.h"
#include "app/options.h"
#include "base/conn_limit.h"
#include "route/dial.h"
#include "route/router.h"
#include "tunnel/settings.h"
#include "tunnel/tunnel.h"

struct outbound;
struct stack;
struct status_server;
struct v2s_credentials;

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
    int hup_reloads; /* SIGHUP reloads --conf, rather than what it means without (app_signal) */
    uint8_t ovpn_digest[32]; /* --config: the OVPN_CONFIG_DIGEST_LEN digest of the files the
                              * running session was started on (app_reload_openvpn) */
    struct tunnel_settings tunnel_addrs; /* the last tunnel up's addresses (nothing else) */
    int tunnel_was_up;
    uv_signal_t sig[5]; /* SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 */
    uv_timer_t stop_timer; /* runs app_stop() from the loop, never from inside the stack or a tunnel */
    struct memtrim memtrim;
    struct loop_exit loop_exit; /* the stop leaves the loop without waiting for host lookups */
    int stop_code;
    uv_poll_t vpn_watch; /* readable when the VPN client process ($VPNPID) exits */
    int vpn_watch_fd;
    int stopping;
    int exit_code;
};

/* main.c */
/* Stops with code from the loop's next turn; the first reason given wins. */
void app_stop_later(struct app *a, int code);
int app_stop_pending(const struct app *a);

/* tunnel_setup.c */
/* Opens the tunnel (a->tunnel) that --config or the packet fd asks for, not yet started, its
 * events going to a. 0, or the exit code once the reason is logged. */
int app_open_tunnel(struct app *a);
/* The tunnel went down for good: logged, kept for /readyz, and a stop with its exit code. */
void app_tunnel_down(void *arg, enum tunnel_down_reason reason, const char *why);
/* Watches the VPN client's process ($VPNPID) when there is one; a->vpn_watch_fd >= 0 when it does. */
void app_watch_vpn_client(struct app *a);
void app_unwatch_vpn_client(struct app *a);
/* The native OpenVPN client's reload: config (the .ovpn) and auth_user_pass (NULL: none) read
 * and the session restarted on them, the listeners kept. always: as SIGHUP without --conf does,
 * as openvpn does; otherwise (a --conf reload) only when what they read differs from what the
 * running session started on. 1 restarted, 0 unchanged; negative when they did not load or the
 * client refused them, logged, and the running session goes on. */
int app_reload_openvpn(struct app *a, const char *config, const char *auth_user_pass, int always);
const char *app_getenv(void *arg, const char *name);

/* serve.c */
/* One listener of any kind. 0, or a negative uv error, logged. */
int app_listener_start(struct app *a, struct app_listener *l);
void app_listener_close(struct app_listener *l);
/* What a reload works with; too big for the stack. */
struct app_reload_scratch {
    struct listener_spec run[LISTENERS_MAX], want[LISTENERS_MAX];
    unsigned char keep[LISTENERS_MAX];
    unsigned char late[LISTENERS_MAX]; /* want[j] starts once the closes are done */
    int from[LISTENERS_MAX];
    struct app_listener next[LISTENERS_MAX];
    size_t kept, started, closed; /* what app_listeners_reload did, for the reload's summary */
};
/* The reload's apply step: moves the running listeners to those o asks for, all or nothing. 0, or
 * a negative uv error with err naming the listener that could not start and why, every listener
 * that ran before running again. */
int app_listeners_reload(struct app *a, const struct options *o, struct app_reload_scratch *w, char *err,
                         size_t errcap);
/* Tells the running -R (TCP) forwards where the tunnel is now. */
void app_listeners_tunnel_up(struct app *a, const struct tunnel_settings *ts);

#endif
