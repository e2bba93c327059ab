/* The options that say where and how a client connects: what a client is (client, dev, mode),
 * its servers (remote, proto, port, <connection>), its timers and sizes (connect-retry, ping,
 * keepalive, tun-mtu, mssfix), compression, and what goes through the tunnel (route, dns,
 * redirect-gateway, pull-filter).
 *
 * What it guarantees, following OpenVPN 2.6 (options.c add_option):
 * - Only a TUN client: dev tap, dev null, mode server and the *-server protocols are refused with
 *   the reason rather than misbehaving later.
 * - A remote is a host name or address without spaces or control characters, an optional port
 *   and an optional protocol; what it does not say it takes from its <connection> block
 *   (settled when the block ends) or, for plain remote lines, from the proto and port in force at
 *   the end of the file. A <connection> block takes exactly one remote, and a port, rport or
 *   proto line after the remote in the block overrides what the remote line said.
 * - A port (remote, port, rport) is a number in 1..65535 or a service name such as "https", which
 *   OpenVPN hands to getaddrinfo() with the remote's socket type. The name is looked up when the
 *   file is loaded (config.c, config_load.c), so an unknown one fails there, naming the line,
 *   rather than at every connection attempt as in OpenVPN.
 * - keepalive A B on a client is ping A plus ping-restart B; the restart must be at least twice
 *   the ping (OpenVPN's rule); the conflict with ping lines is checked at the end (config.c).
 *   ping-exit is taken as ping-restart, with a warning.
 * - comp-lzo with any argument, "no" included, and compress pick the framing (compress lzo is
 *   comp-lzo's on the wire); compress migrate leaves it to the server.
 * - route, route-ipv6, dhcp-option, dns and redirect-gateway are read by the same code as a push
 *   (settings_opt.c). */
#include "tunnel/openvpn/config_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tunnel/openvpn/settings_opt.h"

static int config_apply_client(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)w, (void)n, (void)block;
    p->cfg.pull = 1;
    return 0;
}

static const char config_tun_only[] = "vpn2socks carries IP packets (dev tun) only";

static int config_apply_dev(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    if (strncmp(w[1], "tap", 3) == 0)
        return config_fail(p, "dev tap is not supported: %s", config_tun_only);
    if (strcmp(w[1], "null") == 0)
        return config_fail(p, "dev null is not supported: %s", config_tun_only);
    return 0; /* "tun", "tun0", or a name that dev-type tun qualifies */
}

static int config_apply_dev_type(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char shown[CONFIG_SHOWN_MAX];
    (void)n, (void)block;
    if (strcmp(w[1], "tun") == 0)
        return 0;
    return config_fail(p, "dev-type %s is not supported: %s", v2s_shown(w[1], shown, sizeof(shown)), config_tun_only);
}

static int config_apply_mode(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char shown[CONFIG_SHOWN_MAX];
    (void)n, (void)block;
    if (strcmp(w[1], "p2p") == 0)
        return 0;
    if (strcmp(w[1], "server") == 0)
        return config_fail(p, "mode server: this is a server config; vpn2socks is a client");
    return config_fail(p, "mode '%s': expected p2p", v2s_shown(w[1], shown, sizeof(shown)));
}

struct config_proto_name {
    const char *name;
    enum ovpn_proto proto;
    int family;
};

static const struct config_proto_name config_protos[] = {
    {"udp", OVPN_PROTO_UDP, 0},          {"udp4", OVPN_PROTO_UDP, AF_INET},
    {"udp6", OVPN_PROTO_UDP, AF_INET6},  {"tcp", OVPN_PROTO_TCP, 0},
    {"tcp4", OVPN_PROTO_TCP, AF_INET},   {"tcp6", OVPN_PROTO_TCP, AF_INET6},
    {"tcp-client", OVPN_PROTO_TCP, 0},   {"tcp4-client", OVPN_PROTO_TCP, AF_INET},
    {"tcp6-client", OVPN_PROTO_TCP, AF_INET6},
};

static int config_parse_proto(struct ovpn_config_parser *p, const char *text, enum ovpn_proto *proto,
                              int *family)
{
    char shown[CONFIG_SHOWN_MAX];
    for (size_t i = 0; i < sizeof(config_protos) / sizeof(config_protos[0]); i++) {
        if (strcmp(text, config_protos[i].name) == 0) {
            *proto = config_protos[i].proto;
            *family = config_protos[i].family;
            return 0;
        }
    }
    if (strstr(text, "-server") != NULL)
        return config_fail(p, "proto %s is for servers; a client uses udp or tcp", v2s_shown(text, shown, sizeof(shown)));
    return config_fail(p, "unknown protocol '%s': expected udp, udp4, udp6, tcp, tcp4 or tcp6",
                       v2s_shown(text, shown, sizeof(shown)));
}

/* Whether text can be a service name (RFC 6335: letters, digits and hyphens, at least one letter);
 * '.', '_' and '+' are let through too, as /etc/services has such names. A leading digit makes it
 * a number, as getaddrinfo() reads "443x" as no service at all. */
static int config_is_service_name(const char *text, size_t cap)
{
    size_t len = strlen(text);
    if (len == 0 || len >= cap || !((text[0] >= 'a' && text[0] <= 'z') || (text[0] >= 'A' && text[0] <= 'Z')))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '.' || c == '_' || c == '+'))
            return 0;
    }
    return 1;
}

static int config_parse_port(struct ovpn_config_parser *p, const char *text, char *port, size_t cap)
{
    unsigned long v;
    char shown[CONFIG_SHOWN_MAX];
    if (config_is_service_name(text, cap)) {
        memcpy(port, text, strlen(text) + 1); /* looked up when the file is finished */
        return 0;
    }
    if (v2s_parse_uint(text, 65535, &v) != 0 || v == 0)
        return config_fail(p, "port '%s' is neither a number in 1..65535 nor a service name",
                           v2s_shown(text, shown, sizeof(shown)));
    snprintf(port, cap, "%u", (unsigned)(v & 0xFFFF)); /* v <= 65535 */
    return 0;
}

static struct config_ce *config_current_ce(struct ovpn_config_parser *p)
{
    return p->in_connection ? &p->conn_ce : &p->ce;
}

/* Inside a <connection> block OpenVPN writes a remote's port and proto into the block's settings
 * as it reads the remote line, so a port, rport or proto line after it in the same block wins;
 * outside blocks a remote's own port and proto always win. */
static int config_apply_proto(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    struct config_ce *ce = config_current_ce(p);
    (void)n, (void)block;
    if (p->in_connection)
        p->conn_remote.proto_given = 0;
    return config_parse_proto(p, w[1], &ce->proto, &ce->family);
}

static int config_apply_port(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    struct config_ce *ce = config_current_ce(p);
    (void)n, (void)block;
    if (p->in_connection)
        p->conn_remote.port_given = 0;
    ce->port_line = p->opt_line;
    return config_parse_port(p, w[1], ce->port, sizeof(ce->port));
}

int ovpn_config_append_remote(struct ovpn_config_parser *p, const struct config_remote *r)
{
    if (p->n_remotes >= CONFIG_MAX_REMOTES)
        return config_fail(p, "more than %d remotes", CONFIG_MAX_REMOTES);
    if (p->n_remotes == p->cap_remotes) {
        size_t cap = p->cap_remotes ? p->cap_remotes * 2 : 8;
        struct config_remote *grown = realloc(p->remotes, cap * sizeof(*grown));
        if (grown == NULL)
            return ovpn_config_nomem(p);
        p->remotes = grown;
        p->cap_remotes = cap;
    }
    p->remotes[p->n_remotes++] = *r;
    return 0;
}

/* remote host [port [proto]] */
static int config_apply_remote(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    struct config_remote r;
    char shown[CONFIG_SHOWN_MAX];
    size_t len = strlen(w[1]);
    int rc;
    (void)block;

    memset(&r, 0, sizeof(r));
    if (len == 0 || len >= sizeof(r.r.host))
        return config_fail(p, "remote: '%s' is not a host name or address", v2s_shown(w[1], shown, sizeof(shown)));
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)w[1][i];
        if (c <= 0x20 || c == 0x7F)
            return config_fail(p, "remote: '%s' is not a host name or address", v2s_shown(w[1], shown, sizeof(shown)));
    }
    memcpy(r.r.host, w[1], len + 1);
    if (n >= 3) {
        if ((rc = config_parse_port(p, w[2], r.r.port, sizeof(r.r.port))) < 0)
            return rc;
        r.port_given = 1;
        r.port_line = p->opt_line;
    }
    if (n >= 4) {
        if ((rc = config_parse_proto(p, w[3], &r.r.proto, &r.r.family)) < 0)
            return rc;
        r.proto_given = 1;
    }
    r.line = p->opt_line;
    if (!p->in_connection)
        return ovpn_config_append_remote(p, &r);
    if (p->conn_has_remote)
        return config_fail(p, "a <connection> block takes exactly one remote");
    r.in_connection = 1;
    p->conn_remote = r;
    p->conn_has_remote = 1;
    return 0;
}

static int config_apply_remote_random(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)w, (void)n, (void)block;
    p->cfg.remote_random = 1;
    return 0;
}

static int config_apply_connection(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)w, (void)n, (void)block;
    return config_fail(p, "connection must be an inline <connection> ... </connection> block");
}

/* connect-retry n [max]: the first wait between attempts, and the longest the back-off reaches
 * (300 s unless given; client.c). */
static int config_apply_connect_retry(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    int rc;
    (void)block;
    if ((rc = ovpn_config_seconds(p, w[0], w[1], 0, &p->cfg.connect_retry)) < 0)
        return rc;
    return n == 3 ? ovpn_config_seconds(p, w[0], w[2], 0, &p->cfg.connect_retry_wait_max) : 0;
}

static int config_apply_connect_retry_max(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    p->connect_retry_max_line = p->opt_line;
    return ovpn_config_number(p, w[0], w[1], 0, CONFIG_MAX_NUMBER, &p->cfg.connect_retry_max);
}

static int config_apply_server_poll_timeout(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    return ovpn_config_seconds(p, w[0], w[1], 0, &p->cfg.server_poll_timeout);
}

static int config_apply_connect_timeout(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    return ovpn_config_seconds(p, w[0], w[1], 0, &p->cfg.connect_timeout);
}

static int config_apply_explicit_exit_notify(struct ovpn_config_parser *p, char **w, int n,
                                             const char *block)
{
    (void)block;
    if (n == 1) {
        p->cfg.explicit_exit_notify = 1;
        return 0;
    }
    return ovpn_config_number(p, w[0], w[1], 0, 100, &p->cfg.explicit_exit_notify);
}

/* tun-mtu n [occ-mtu]: the second value is only what OpenVPN reports to its peer. */
static int config_apply_tun_mtu(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    unsigned occ;
    int rc;
    (void)block;
    if ((rc = ovpn_config_number(p, w[0], w[1], CONFIG_MTU_MIN, CONFIG_MTU_MAX, &p->cfg.tun_mtu)) < 0)
        return rc;
    return n == 3 ? ovpn_config_number(p, w[0], w[2], 0, CONFIG_MTU_MAX, &occ) : 0;
}

/* mssfix [n [mtu|fixed]] */
static int config_apply_mssfix(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char shown[CONFIG_SHOWN_MAX];
    (void)block;
    if (n == 1) {
        p->cfg.mssfix = CONFIG_MSSFIX_DEFAULT;
        return 0;
    }
    if (n == 3 && strcmp(w[2], "mtu") != 0 && strcmp(w[2], "fixed") != 0)
        return config_fail(p, "mssfix: '%s' is not mtu or fixed", v2s_shown(w[2], shown, sizeof(shown)));
    return ovpn_config_number(p, w[0], w[1], 0, CONFIG_MTU_MAX, &p->cfg.mssfix);
}

static int config_apply_route_nopull(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)w, (void)n, (void)block;
    p->cfg.route_nopull = 1;
    return 0;
}

/* pull-filter accept|ignore|reject TEXT: kept in order for the push parser (push.c). */
static int config_apply_pull_filter(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    static const char *const actions[] = {"accept", "ignore", "reject"};
    static const enum ovpn_pull_action values[] = {OVPN_PULL_ACCEPT, OVPN_PULL_IGNORE, OVPN_PULL_REJECT};
    struct ovpn_config *cfg = &p->cfg;
    char shown[CONFIG_SHOWN_MAX];
    size_t i = 0;
    (void)n, (void)block;
    while (i < 3 && strcmp(w[1], actions[i]) != 0)
        i++;
    if (i == 3)
        return config_fail(p, "pull-filter '%s': expected accept, ignore or reject", v2s_shown(w[1], shown, sizeof(shown)));
    if (cfg->n_pull_filters >= CONFIG_MAX_PULL_FILTERS)
        return config_fail(p, "more than %d pull-filter lines", CONFIG_MAX_PULL_FILTERS);
    struct ovpn_pull_filter *grown = realloc(cfg->pull_filters, (cfg->n_pull_filters + 1) * sizeof(*grown));
    if (grown == NULL)
        return ovpn_config_nomem(p);
    cfg->pull_filters = grown;
    if ((grown[cfg->n_pull_filters].text = strdup(w[2])) == NULL)
        return ovpn_config_nomem(p);
    grown[cfg->n_pull_filters].action = values[i];
    grown[cfg->n_pull_filters].line = p->opt_line;
    cfg->n_pull_filters++;
    return 0;
}

static int config_apply_ping(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    p->ping_line = p->opt_line;
    return ovpn_config_seconds(p, w[0], w[1], 0, &p->cfg.ping);
}

/* ping-restart, and ping-exit, which OpenVPN ends the process on: we restart instead. */
static int config_apply_ping_restart(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    if (strcmp(w[0], "ping-exit") == 0)
        ovpn_config_warn(p, p->opt_line, "ping-exit is treated as ping-restart");
    p->ping_line = p->opt_line;
    return ovpn_config_seconds(p, w[0], w[1], 0, &p->cfg.ping_restart);
}

/* topology net30|p2p|subnet: how a pushed "ifconfig LOCAL X" is read when the server pushes no
 * topology of its own (X is the peer under net30 and p2p, the netmask under subnet). OpenVPN 2.6
 * refuses any other word (options.c parse_topology). */
static int config_apply_topology(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char shown[CONFIG_SHOWN_MAX];
    (void)n, (void)block;
    if (strcmp(w[1], "net30") == 0)
        p->cfg.topology = OVPN_TOPOLOGY_NET30;
    else if (strcmp(w[1], "p2p") == 0)
        p->cfg.topology = OVPN_TOPOLOGY_P2P;
    else if (strcmp(w[1], "subnet") == 0)
        p->cfg.topology = OVPN_TOPOLOGY_SUBNET;
    else
        return config_fail(p, "topology %s: expected net30, p2p or subnet", v2s_shown(w[1], shown, sizeof(shown)));
    return 0;
}

static int config_apply_keepalive(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    int rc;
    (void)n, (void)block;
    if ((rc = ovpn_config_seconds(p, w[0], w[1], 1, &p->keepalive_ping)) < 0 ||
        (rc = ovpn_config_seconds(p, w[0], w[2], 1, &p->keepalive_restart)) < 0)
        return rc;
    if (p->keepalive_restart < 2 * p->keepalive_ping)
        return config_fail(p, "keepalive %u %u: the restart time must be at least twice the ping interval",
                           p->keepalive_ping, p->keepalive_restart);
    p->keepalive_line = p->opt_line;
    return 0;
}

/* comp-lzo [yes|no|adaptive]: every form, "no" included, frames with one byte. */
static int config_apply_comp_lzo(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char shown[CONFIG_SHOWN_MAX];
    (void)block;
    if (n == 2 && strcmp(w[1], "yes") != 0 && strcmp(w[1], "no") != 0 && strcmp(w[1], "adaptive") != 0)
        return config_fail(p, "comp-lzo '%s': expected yes, no or adaptive", v2s_shown(w[1], shown, sizeof(shown)));
    p->cfg.comp = OVPN_COMP_FRAMING_LZO;
    p->cfg.comp_set = 1;
    p->comp_compresses = !(n == 2 && strcmp(w[1], "no") == 0);
    return 0;
}

static int config_apply_compress(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    static const struct {
        const char *name;
        enum ovpn_comp_framing framing;
        int compresses;
    } algs[] = {
        /* lzo: the one-byte framing of comp-lzo; OpenVPN sends it without the swap (lzo.c). */
        {"stub", OVPN_COMP_FRAMING_V1, 0}, {"lzo", OVPN_COMP_FRAMING_LZO, 1},
        {"lz4", OVPN_COMP_FRAMING_V1, 1},  {"stub-v2", OVPN_COMP_FRAMING_V2, 0},
        {"lz4-v2", OVPN_COMP_FRAMING_V2, 1},
    };
    const char *alg = n == 2 ? w[1] : "stub";
    char shown[CONFIG_SHOWN_MAX];
    (void)block;
    if (strcmp(alg, "migrate") == 0) {
        /* The server picks from what we send in the options string; nothing is fixed here. */
        p->cfg.comp = OVPN_COMP_FRAMING_NONE;
        p->cfg.comp_set = 0;
        p->comp_compresses = 0;
        return 0;
    }
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        if (strcmp(alg, algs[i].name) == 0) {
            p->cfg.comp = algs[i].framing;
            p->cfg.comp_set = 1;
            p->comp_compresses = algs[i].compresses;
            return 0;
        }
    }
    return config_fail(p, "compress '%s': expected stub, stub-v2, lzo, lz4, lz4-v2 or migrate",
                       v2s_shown(alg, shown, sizeof(shown)));
}

static int config_apply_allow_compression(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char shown[CONFIG_SHOWN_MAX];
    (void)n, (void)block;
    if (strcmp(w[1], "no") == 0) {
        p->allow_comp_no_line = p->opt_line;
        return 0;
    }
    if (strcmp(w[1], "yes") == 0 || strcmp(w[1], "asym") == 0)
        return 0;
    return config_fail(p, "allow-compression '%s': expected yes, no or asym", v2s_shown(w[1], shown, sizeof(shown)));
}

/* route, route-ipv6, dhcp-option, dns, redirect-gateway: the same code as a push. */
static int config_apply_settings(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char why[CONFIG_ERR_MAX / 2];
    (void)block;
    int rc = ovpn_settings_option(&p->cfg.settings, NULL, w, n, why, sizeof(why));
    if (rc == -ENOMEM)
        return ovpn_config_nomem(p);
    if (rc < 0)
        return config_fail(p, "%s", why);
    return 0;
}

const struct config_option ovpn_config_net_options[] = {
    /* What a client is and where it connects. */
    CONFIG_APPLY_ROW("client", 0, 0, 0, config_apply_client),
    CONFIG_APPLY_ROW("pull", 0, 0, 0, config_apply_client),
    CONFIG_IGNORE_ROW("tls-client", 0),
    CONFIG_APPLY_ROW("dev", 0, 1, 1, config_apply_dev),
    CONFIG_APPLY_ROW("dev-type", 0, 1, 1, config_apply_dev_type),
    CONFIG_APPLY_ROW("topology", 0, 1, 1, config_apply_topology),
    CONFIG_APPLY_ROW("mode", 0, 1, 1, config_apply_mode),
    CONFIG_APPLY_ROW("remote", CONFIG_CONN, 1, 3, config_apply_remote),
    CONFIG_APPLY_ROW("proto", CONFIG_CONN, 1, 1, config_apply_proto),
    CONFIG_APPLY_ROW("port", CONFIG_CONN, 1, 1, config_apply_port),
    CONFIG_APPLY_ROW("rport", CONFIG_CONN, 1, 1, config_apply_port),
    CONFIG_APPLY_ROW("remote-random", 0, 0, 0, config_apply_remote_random),
    CONFIG_APPLY_ROW("connection", 0, 0, 15, config_apply_connection),
    /* Timers and sizes. */
    CONFIG_APPLY_ROW("connect-retry", CONFIG_CONN, 1, 2, config_apply_connect_retry),
    CONFIG_APPLY_ROW("connect-retry-max", CONFIG_CONN, 1, 1, config_apply_connect_retry_max),
    CONFIG_APPLY_ROW("server-poll-timeout", CONFIG_CONN, 1, 1, config_apply_server_poll_timeout),
    CONFIG_APPLY_ROW("connect-timeout", CONFIG_CONN, 1, 1, config_apply_connect_timeout),
    CONFIG_APPLY_ROW("explicit-exit-notify", CONFIG_CONN, 0, 1, config_apply_explicit_exit_notify),
    CONFIG_APPLY_ROW("tun-mtu", CONFIG_CONN, 1, 2, config_apply_tun_mtu),
    CONFIG_APPLY_ROW("mssfix", CONFIG_CONN, 0, 2, config_apply_mssfix),
    CONFIG_APPLY_ROW("ping", 0, 1, 1, config_apply_ping),
    CONFIG_APPLY_ROW("ping-restart", 0, 1, 1, config_apply_ping_restart),
    CONFIG_APPLY_ROW("ping-exit", 0, 1, 1, config_apply_ping_restart),
    CONFIG_APPLY_ROW("keepalive", 0, 2, 2, config_apply_keepalive),
    CONFIG_APPLY_ROW("comp-lzo", 0, 0, 1, config_apply_comp_lzo),
    CONFIG_APPLY_ROW("compress", 0, 0, 1, config_apply_compress),
    CONFIG_APPLY_ROW("allow-compression", 0, 1, 1, config_apply_allow_compression),
    /* What goes through the tunnel. */
    CONFIG_APPLY_ROW("route", 0, 1, 4, config_apply_settings),
    CONFIG_APPLY_ROW("route-ipv6", 0, 1, 3, config_apply_settings),
    CONFIG_APPLY_ROW("dhcp-option", 0, 1, 2, config_apply_settings),
    CONFIG_APPLY_ROW("dns", 0, 1, 15, config_apply_settings),
    CONFIG_APPLY_ROW("redirect-gateway", 0, 0, 15, config_apply_settings),
    CONFIG_APPLY_ROW("redirect-private", 0, 0, 15, config_apply_settings),
    CONFIG_APPLY_ROW("route-nopull", 0, 0, 0, config_apply_route_nopull),
    CONFIG_APPLY_ROW("pull-filter", 0, 2, 2, config_apply_pull_filter),
};
const size_t ovpn_config_net_n_options = sizeof(ovpn_config_net_options) / sizeof(ovpn_config_net_options[0]);
