/* The tunnel: opening the one --config or the packet fd asks for, the settings it starts with,
 * its events (up, packets, writable, down), and the watch on the VPN client's process. The stop
 * those events raise is main.c's (app_stop_later). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "app/app.h"
#include "app/vpn_watch.h"
#include "base/log.h"
#include "stack/stack.h"
#include "tunnel/fd.h"
#include "tunnel/openvpn/client.h"
#include "tunnel/openvpn/config.h"
#include "tunnel/settings.h"
#include "tunnel/tunnel.h"

static void app_log_settings(const struct tunnel_settings *ts)
{
    char buf[V2S_ADDR_STRLEN];
    if (ts->addr4.family)
        v2s_event(V2S_LOG_INFO, "tunnel_up", "tunnel up: address %s/%u", v2s_addr_format(&ts->addr4, buf, sizeof(buf)),
                  ts->prefix4);
    if (ts->addr6.family)
        v2s_event(V2S_LOG_INFO, "tunnel_up", "tunnel up: address %s/%u", v2s_addr_format(&ts->addr6, buf, sizeof(buf)),
                  ts->prefix6);
    if (ts->mtu)
        v2s_event(V2S_LOG_INFO, "tunnel_up", "tunnel up: MTU %u", ts->mtu);
    else /* a packet fd without --mtu or INTERNAL_IP4_MTU */
        v2s_event(V2S_LOG_INFO, "tunnel_up", "tunnel up: MTU %u (none given: --mtu sets it)", STACK_MTU_DEFAULT);
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
    app_listeners_tunnel_up(a, ts);
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

void app_tunnel_down(void *arg, enum tunnel_down_reason reason, const char *why)
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

static void app_vpn_exited(uv_poll_t *h, int status, int events)
{
    struct app *a = h->data;
    (void)status;
    (void)events;
    app_tunnel_down(a, TUNNEL_DOWN_CLOSED, "the VPN client process exited");
}

/* A datagram packet fd gives no EOF when the other end dies, and a killed openconnect sends no
 * SIGHUP, so watch its process (VPNPID, or the parent under an openconnect that sets none)
 * through a pidfd, which becomes readable when it exits. */
void app_watch_vpn_client(struct app *a)
{
    a->vpn_watch_fd = -1;
    long pid = tunnel_env_vpnpid(app_getenv, NULL);
    if (pid <= 0 && app_getenv(NULL, "VPNFD"))
        pid = vpn_watch_openconnect_parent();
    if (pid <= 0)
        return;
    int fd;
    int rc = vpn_watch_open(pid, &fd);
    if (rc == VPN_WATCH_GONE) {
        /* As if the watch had fired: waiting for a packet write to fail could take forever on an
         * idle tunnel. The stop comes on the loop's next turn. */
        app_tunnel_down(a, TUNNEL_DOWN_CLOSED, "the VPN client process exited");
        return;
    }
    if (rc < 0) {
        v2s_debug("cannot watch the VPN client (pid %ld): %s", pid, strerror(-rc));
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

const char *app_getenv(void *arg, const char *name)
{
    (void)arg;
    return getenv(name);
}

extern char **environ; /* POSIX: declared by the program that uses it */

/* The tunnel settings: the environment openconnect gives the script, then the command line. */
static int app_settings(struct app *a, struct tunnel_settings *ts)
{
    const struct tunnel_settings *o = &a->opt.overrides;
    char err[256];
    /* Indexed once: thousands of split routes are thousands of lookups (tunnel/settings.h). */
    struct tunnel_env env;
    int indexed = tunnel_env_init(&env, environ) == 0;
    int rc = indexed ? tunnel_settings_from_script_env(ts, tunnel_env_get, &env, err, sizeof(err))
                     : tunnel_settings_from_script_env(ts, app_getenv, NULL, err, sizeof(err));
    if (indexed)
        tunnel_env_free(&env);
    if (rc < 0) {
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
    /* As over OpenVPN (tunnel_settings_ipv6_mtu()): openconnect hands over an IPv6 address
     * whatever the MTU it settled on, and IPv6 under 1280 bytes fails in ways hard to trace. */
    char msg[200];
    rc = tunnel_settings_ipv6_mtu(ts, msg, sizeof(msg));
    if (rc < 0) {
        v2s_error("%s, and the tunnel has no IPv4 address (INTERNAL_IP4_ADDRESS or --address)", msg);
        return -EINVAL;
    }
    if (rc > 0)
        v2s_warn("%s", msg);
    return 0;
}

/* The packet-fd tunnel: VPNFD (openconnect) or --tunnel-fd. */
static int app_open_fd_tunnel(struct app *a, const struct tunnel_events *ev)
{
    int fd = a->opt.tunnel_fd;
    if (fd < 0) {
        char err[512];
        int rc = tunnel_env_vpnfd(app_getenv, NULL, &fd, err, sizeof(err));
        if (rc == -ENOENT && err[0]) {
            v2s_error("no tunnel: %s", err);
            return EXIT_USAGE;
        }
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
        /* Not open: VPNFD came through, the descriptor did not. A program between openconnect and
         * us closed it, most often sudo (it closes every descriptor above 2), and "Bad file
         * descriptor" alone did not say where to look. */
        v2s_error("packet fd %d%s: %s", fd, a->opt.tunnel_fd < 0 ? " (VPNFD)" : "",
                  rc == -EPROTOTYPE ? "a stream socket; packets need a datagram or seqpacket socket"
                  : rc == -EBADF    ? "not open in this process: a program between the VPN client and "
                                      "vpn2socks closed it (sudo, for one, closes every descriptor above 2)"
                                    : strerror(-rc));
        a->tunnel = NULL;
        return EXIT_USAGE;
    }
    return 0;
}

/* A load error about the .ovpn or the --auth-user-pass file itself names the option that gave it
 * ("--config /x.ovpn: No such file or directory"): the file's name alone left the user to guess
 * which option it came from. */
static void app_name_ovpn_files(char *err, size_t errcap, const char *config, const char *auth_user_pass)
{
    size_t before = strlen(err);
    options_name_file(err, errcap, "--config", config);
    if (auth_user_pass && strlen(err) == before)
        options_name_file(err, errcap, "--auth-user-pass", auth_user_pass);
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
        app_name_ovpn_files(err, sizeof(err), a->opt.config, a->opt.auth_user_pass);
        v2s_error("%s", err);
        ovpn_config_free(cfg);
        free(cfg);
        return EXIT_USAGE;
    }
    memcpy(a->ovpn_digest, cfg->digest, sizeof(a->ovpn_digest));
    /* The client owns cfg from here, whatever happens. */
    int rc = ovpn_client_new(&a->tunnel, a->loop, cfg, ev, err, sizeof(err));
    if (rc < 0) {
        v2s_error("%s: %s", a->opt.config, err);
        a->tunnel = NULL;
        return rc == -EKEYEXPIRED ? EXIT_AUTH : EXIT_USAGE;
    }
    return 0;
}

_Static_assert(sizeof(((struct app *)0)->ovpn_digest) == OVPN_CONFIG_DIGEST_LEN, "the .ovpn's digest");

/* SIGHUP on the native OpenVPN client: as openvpn does on SIGHUP, the .ovpn (and the
 * --auth-user-pass file) are read again and the session restarts on them. With --conf, only when
 * they changed: a reload that adds a forward must not drop the VPN session, and one that follows
 * an edit of the .ovpn (a new remote, a renewed certificate) must not leave it on the old one.
 * The stack, the listeners and the forwards stay: connections through the tunnel wait out the
 * reconnect as they wait out any other. A file that no longer loads changes nothing. */
int app_reload_openvpn(struct app *a, const char *config, const char *auth_user_pass, int always)
{
    char err[1024];
    if (a->stopping || app_stop_pending(a) || !a->tunnel)
        return -ESHUTDOWN;
    if (always)
        v2s_event(V2S_LOG_INFO, "reload", "SIGHUP: reading %s again to reconnect with it", config);
    struct ovpn_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        v2s_error("reload: out of memory; the running session is kept");
        return -ENOMEM;
    }
    unsigned flags = a->opt.allow_readable_secrets ? OVPN_CONFIG_ALLOW_READABLE_SECRETS : 0;
    int rc = ovpn_config_load_flags(cfg, config, auth_user_pass, flags, err, sizeof(err));
    if (rc < 0) {
        app_name_ovpn_files(err, sizeof(err), config, auth_user_pass);
        v2s_log_event(V2S_LOG_ERROR, "reload_failed", NULL, 0, "reload: %s; the running session is kept", err);
        ovpn_config_free(cfg);
        free(cfg);
        return rc;
    }
    if (!always && memcmp(cfg->digest, a->ovpn_digest, sizeof(a->ovpn_digest)) == 0) {
        v2s_info("reload: %s and the files it names are unchanged; the session goes on", config);
        ovpn_config_free(cfg);
        free(cfg);
        return 0;
    }
    uint8_t digest[sizeof(a->ovpn_digest)];
    memcpy(digest, cfg->digest, sizeof(digest));
    /* The client owns cfg from here, whatever happens. */
    if ((rc = ovpn_client_reload(a->tunnel, cfg, err, sizeof(err))) < 0) {
        v2s_log_event(V2S_LOG_ERROR, "reload_failed", NULL, 0, "reload: %s: %s; the running session is kept",
                      config, err);
        return rc;
    }
    memcpy(a->ovpn_digest, digest, sizeof(digest));
    /* A plain SIGHUP's summary, shown at any level as the operator asked for it; under --conf the
     * reload's own summary (app_reload) says the session restarts, and this line is detail. */
    if (always)
        v2s_log_event_requested(V2S_LOG_INFO, "reload_done", NULL, 0,
                                "reload: %s read; the session restarts on it, the listeners stay", config);
    else
        v2s_info("reload: %s read (changed); the session restarts on it, the listeners stay", config);
    return 1;
}

int app_open_tunnel(struct app *a)
{
    struct tunnel_events ev = {
        .up = app_tunnel_up,
        .packet = app_tunnel_packet,
        .writable = app_tunnel_writable,
        .down = app_tunnel_down,
        .arg = a,
    };
    return a->opt.config ? app_open_openvpn(a, &ev) : app_open_fd_tunnel(a, &ev);
}

void app_unwatch_vpn_client(struct app *a)
{
    if (a->vpn_watch_fd >= 0)
        uv_close((uv_handle_t *)&a->vpn_watch, app_vpn_watch_closed);
}
