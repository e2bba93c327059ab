/* What a whole configuration must hold once every option is read (options_check(): options that
 * go together, listeners on distinct ports), and which of its changes a reload cannot apply
 * without a restart (options_restart_only_changes()). */
#include "app/options.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "base/addr.h"

/* Where a listener takes its port: this host's TCP or UDP ports, or the tunnel address's (lwIP). */
enum options_port_space { PORTS_HOST_TCP, PORTS_HOST_UDP, PORTS_TUNNEL_TCP, PORTS_TUNNEL_UDP };

struct options_bind {
    const struct sockaddr_storage *addr;
    enum options_port_space space;
    const char *flag; /* as the user typed it: "-D", "--status", ... */
    const char *name; /* as the config file names it: "socks", "status", ... */
    unsigned line;    /* the config file's line; 0: the command line */
};

static uint16_t bind_port(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
                                    : ((const struct sockaddr_in6 *)ss)->sin6_port;
}

static int bind_unspecified(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static int bind_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return IN6_ARE_ADDR_EQUAL(&((const struct sockaddr_in6 *)a)->sin6_addr,
                              &((const struct sockaddr_in6 *)b)->sin6_addr);
}

/* Whether b cannot bind once a has: the same port and address, or on this host a wildcard address
 * beside another of its family (the kernel refuses that even with SO_REUSEADDR). lwIP, built
 * with SO_REUSE, lets -R on one tunnel address sit beside one on all of them. Only what surely
 * fails: an IPv6 wildcard beside an IPv4 address depends on net.ipv6.bindv6only. */
static int binds_clash(const struct options_bind *a, const struct options_bind *b)
{
    if (a->space != b->space || bind_port(a->addr) != bind_port(b->addr))
        return 0;
    if (bind_same_addr(a->addr, b->addr))
        return 1;
    return (a->space == PORTS_HOST_TCP || a->space == PORTS_HOST_UDP) && a->addr->ss_family == b->addr->ss_family &&
           (bind_unspecified(a->addr) || bind_unspecified(b->addr));
}

/* "-D 127.0.0.1:1080", "-L 127.0.0.1:5353/udp", "-R 8022" (every tunnel address); from the config
 * file, by its name there: "socks 127.0.0.1:1080". */
static void bind_name(const struct options_bind *b, char *buf, size_t cap)
{
    char where[V2S_ADDR_STRLEN];
    int tunnel = b->space == PORTS_TUNNEL_TCP || b->space == PORTS_TUNNEL_UDP;
    if (tunnel && b->addr->ss_family == AF_INET && bind_unspecified(b->addr))
        snprintf(where, sizeof(where), "%u", ntohs(bind_port(b->addr)));
    else
        v2s_sockaddr_format((const struct sockaddr *)b->addr, where, sizeof(where));
    snprintf(buf, cap, "%s %s%s", b->line ? b->name : b->flag, where,
             b->space == PORTS_HOST_UDP || b->space == PORTS_TUNNEL_UDP ? "/udp" : "");
}

/* Two listeners on one port: the second failed at start with "address already in use", as if
 * another process held the port, and a reload closed the running listener before failing so.
 * When the config file gave either, the message starts with FILE:LINE (the later line when it
 * gave both) and names them as the file does: "-D" would send the user looking for a command
 * line that has none. */
static int options_check_ports(const struct options *o, char *err, size_t errcap)
{
    struct options_bind b[2 * OPTIONS_MAX_LISTENERS + OPTIONS_MAX_FORWARDS + 1];
    size_t n = 0;
    for (size_t i = 0; i < o->n_socks; i++)
        b[n++] = (struct options_bind){&o->socks[i], PORTS_HOST_TCP, "-D", "socks", o->socks_line[i]};
    for (size_t i = 0; i < o->n_http; i++)
        b[n++] = (struct options_bind){&o->http[i], PORTS_HOST_TCP, "-H", "http", o->http_line[i]};
    for (size_t i = 0; i < o->n_forwards; i++) {
        const struct options_forward *f = &o->forwards[i];
        b[n++] = (struct options_bind){&f->listen,
                                       f->remote ? (f->udp ? PORTS_TUNNEL_UDP : PORTS_TUNNEL_TCP)
                                                 : (f->udp ? PORTS_HOST_UDP : PORTS_HOST_TCP),
                                       f->remote ? "-R" : "-L", f->remote ? "remote" : "local", f->line};
    }
    if (o->has_status)
        b[n++] = (struct options_bind){&o->status, PORTS_HOST_TCP, "--status", "status", o->status_line};
    for (size_t j = 1; j < n; j++)
        for (size_t i = 0; i < j; i++) {
            if (!binds_clash(&b[i], &b[j]))
                continue;
            const struct options_bind *at = b[i].line > b[j].line ? &b[i] : &b[j], *other = at == &b[i] ? &b[j] : &b[i];
            char first[V2S_ADDR_STRLEN + 16], second[V2S_ADDR_STRLEN + 16], where[300] = "", line[32] = "";
            bind_name(at->line ? at : &b[i], first, sizeof(first));
            bind_name(at->line ? other : &b[j], second, sizeof(second));
            if (at->line)
                snprintf(where, sizeof(where), "%s:%u: ", o->conf ? o->conf : "line", at->line);
            if (at->line && other->line)
                snprintf(line, sizeof(line), " (line %u)", other->line);
            snprintf(err, errcap, "%s%s and %s%s listen on the same port: give each listener its own", where, first,
                     second, line);
            return -EINVAL;
        }
    return 0;
}

int options_check(const struct options *o, char *err, size_t errcap)
{
    if (o->auth_user_pass && !o->config) {
        snprintf(err, errcap, "--auth-user-pass goes with --config");
        return -EINVAL;
    }
    if (o->config && (o->tunnel_fd >= 0 || o->overrides.addr4.family || o->overrides.addr6.family)) {
        snprintf(err, errcap, "--config brings its own tunnel: --tunnel-fd and --address do not apply");
        return -EINVAL;
    }
    /* Taken and ignored, it let a user believe the MTU was set; OpenVPN's peers must agree on it,
     * so the .ovpn or the server decides. */
    if (o->config && o->overrides.mtu) {
        snprintf(err, errcap, "--config brings its own tunnel: --mtu does not apply (the MTU is the .ovpn's "
                              "tun-mtu, or the one the server pushes)");
        return -EINVAL;
    }
    if (o->n_socks == 0 && o->n_http == 0 && o->n_forwards == 0) {
        snprintf(err, errcap, "nothing to serve: give at least one listener (-D PORT, -H PORT, "
                              "-L PORT:HOST:HOSTPORT or -R PORT:HOST:HOSTPORT)");
        return -EINVAL;
    }
    return options_check_ports(o, err, errcap);
}

static int same_string(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static int same_addr(const struct v2s_addr *a, unsigned pa, const struct v2s_addr *b, unsigned pb)
{
    return a->family == b->family && (!a->family || (v2s_addr_equal(a, b) && pa == pb));
}

static int same_dns(const struct tunnel_settings *a, const struct tunnel_settings *b)
{
    if (a->n_dns != b->n_dns)
        return 0;
    for (size_t i = 0; i < a->n_dns; i++)
        if (!v2s_addr_equal(&a->dns[i], &b->dns[i]))
            return 0;
    return 1;
}

void options_restart_only_changes(const struct options *run, const struct options *now, char *out, size_t cap)
{
    const struct tunnel_settings *r = &run->overrides, *n = &now->overrides;
    const struct {
        const char *name;
        int same;
    } rows[] = {
        /* Another .ovpn or --auth-user-pass file is loaded by the reload (app_reload_openvpn);
         * going from a packet fd to our OpenVPN client, or back, is another tunnel. */
        {"config", (run->config == NULL) == (now->config == NULL)},
        /* A file read again, or another one, is applied; turning authentication on or off
         * would need every SOCKS and HTTP listener started again. */
        {"socks-auth", (run->socks_auth == NULL) == (now->socks_auth == NULL)},
        {"allow-readable-secrets", run->allow_readable_secrets == now->allow_readable_secrets},
        {"tunnel-fd", run->tunnel_fd == now->tunnel_fd},
        {"address", same_addr(&r->addr4, r->prefix4, &n->addr4, n->prefix4) &&
                        same_addr(&r->addr6, r->prefix6, &n->addr6, n->prefix6)},
        {"mtu", r->mtu == n->mtu},
        {"dns", same_dns(r, n)},
        {"domain", same_string(r->domains, n->domains)},
        {"connect-timeout", run->connect_timeout_ms == now->connect_timeout_ms},
        {"handshake-timeout", run->handshake_timeout_ms == now->handshake_timeout_ms},
        {"max-connections", run->max_conns == now->max_conns},
        {"listener-max-connections", run->listener_max_conns == now->listener_max_conns},
        {"udp-timeout", run->udp_timeout_ms == now->udp_timeout_ms},
        {"udp-max-flows", run->udp_max_flows == now->udp_max_flows},
        {"status", run->has_status == now->has_status &&
                       (!run->has_status || memcmp(&run->status, &now->status, sizeof(run->status)) == 0)},
    };
    size_t used = 0;
    if (cap)
        out[0] = '\0';
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (rows[i].same || used >= cap)
            continue;
        int w = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", rows[i].name);
        used = w < 0 ? cap : used + (size_t)w;
    }
}
