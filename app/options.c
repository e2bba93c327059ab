#include "app/options.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "base/addr.h"
#include "base/log.h"

/* Connection caps (see base/conn_limit.h), chosen against what comparable tools do. ocproxy and
 * tunsocks, the closest relatives (lwIP behind a SOCKS listener), stop at about 1,000 connections
 * in all, through the size of lwIP's pool of TCP PCBs (1000 and 1024); 3proxy caps each service
 * at 500 (250 since 0.9.3); dante and wireproxy set no cap of their own and leave it to the open
 * files limit. One listener gets 1,024, a busy user's share: a browser keeps a few hundred
 * connections at most (Firefox's network.http.max-connections has been 256 since Firefox 6).
 * All listeners together get 4,096, so that a few busy listeners fit and one of them cannot take
 * everything; the stack is tested with 4,000 connections at once (tests/lab/close_burst_test.sh).
 * What really runs out first is descriptors: a direct connection takes two, so main() raises the
 * soft open files limit to fit the global cap, or lowers the default caps when the hard limit is
 * too low for them. */
enum {
    OPTIONS_DEFAULT_LISTENER_MAX_CONNS = 1024,
    OPTIONS_DEFAULT_MAX_CONNS = 4096,
    OPTIONS_MAX_CONNS_LIMIT = 1000000,
};

/* sshd gives a client 120 s to log in (LoginGraceTime), but that covers typing a password. A
 * SOCKS client sends its greeting and request at once, one round trip to a local listener, so
 * 10 s is generous and still lets a loaded host or a client across a slow link through. */
enum { OPTIONS_DEFAULT_HANDSHAKE_TIMEOUT_S = 10, OPTIONS_DEFAULT_UDP_TIMEOUT_S = 60, OPTIONS_DEFAULT_UDP_MAX_FLOWS = 256 };

enum {
    OPT_TUNNEL_FD = 256,
    OPT_ROUTE,
    OPT_EXCLUDE,
    OPT_OTHERS,
    OPT_ADDRESS,
    OPT_MTU,
    OPT_DNS,
    OPT_DOMAIN,
    OPT_CONNECT_TIMEOUT,
    OPT_AUTH_USER_PASS,
    OPT_HANDSHAKE_TIMEOUT,
    OPT_MAX_CONNS,
    OPT_LISTENER_MAX_CONNS,
    OPT_ALLOW_DIRECT_LOCAL,
    OPT_ALLOW_READABLE_SECRETS,
    OPT_UDP_TIMEOUT,
    OPT_UDP_MAX_FLOWS,
    OPT_SOCKS_AUTH,
    OPT_CONF,
    OPT_LOG_FORMAT,
    OPT_STATUS,
};

static const struct option long_options[] = {
    {"conf", required_argument, NULL, OPT_CONF},
    {"config", required_argument, NULL, 'c'},
    {"auth-user-pass", required_argument, NULL, OPT_AUTH_USER_PASS},
    {"allow-readable-secrets", no_argument, NULL, OPT_ALLOW_READABLE_SECRETS},
    {"socks", required_argument, NULL, 'D'},
    {"socks-auth", required_argument, NULL, OPT_SOCKS_AUTH},
    {"http", required_argument, NULL, 'H'},
    {"local", required_argument, NULL, 'L'},
    {"remote", required_argument, NULL, 'R'},
    {"status", required_argument, NULL, OPT_STATUS},
    {"udp-timeout", required_argument, NULL, OPT_UDP_TIMEOUT},
    {"udp-max-flows", required_argument, NULL, OPT_UDP_MAX_FLOWS},
    {"tunnel-fd", required_argument, NULL, OPT_TUNNEL_FD},
    {"route", required_argument, NULL, OPT_ROUTE},
    {"exclude", required_argument, NULL, OPT_EXCLUDE},
    {"others", required_argument, NULL, OPT_OTHERS},
    {"address", required_argument, NULL, OPT_ADDRESS},
    {"mtu", required_argument, NULL, OPT_MTU},
    {"dns", required_argument, NULL, OPT_DNS},
    {"domain", required_argument, NULL, OPT_DOMAIN},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNS},
    {"listener-max-connections", required_argument, NULL, OPT_LISTENER_MAX_CONNS},
    {"allow-direct-local", no_argument, NULL, OPT_ALLOW_DIRECT_LOCAL},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

void options_init(struct options *o)
{
    memset(o, 0, sizeof(*o));
    o->tunnel_fd = -1;
    o->connect_timeout_ms = 20 * 1000;
    o->handshake_timeout_ms = OPTIONS_DEFAULT_HANDSHAKE_TIMEOUT_S * 1000;
    o->max_conns = OPTIONS_DEFAULT_MAX_CONNS;
    o->udp_timeout_ms = OPTIONS_DEFAULT_UDP_TIMEOUT_S * 1000;
    o->udp_max_flows = OPTIONS_DEFAULT_UDP_MAX_FLOWS;
    o->listener_max_conns = OPTIONS_DEFAULT_LISTENER_MAX_CONNS;
    router_config_init(&o->route);
    tunnel_settings_init(&o->overrides);
}

void options_free(struct options *o)
{
    router_config_free(&o->route);
    tunnel_settings_free(&o->overrides);
    free(o->config);
    free(o->auth_user_pass);
    free(o->socks_auth);
    free(o->conf);
    o->config = o->auth_user_pass = o->socks_auth = o->conf = NULL;
}

/* -D, -H or --status (flag) [ADDR:]PORT into out. 0, or -EINVAL with the message in err. */
static int listen_arg(struct sockaddr_storage *out, const char *flag, const char *text, char *err, size_t errcap)
{
    int rc = options_parse_listen(out, text);
    if (rc == -EDOM)
        snprintf(err, errcap, "%s %s: the port has a leading zero (a port is written in decimal)", flag, text);
    else if (rc < 0)
        snprintf(err, errcap, "%s %s: expected [ADDR:]PORT", flag, text);
    return rc < 0 ? -EINVAL : 0;
}

static int append_domain(struct tunnel_settings *s, const char *d)
{
    size_t old = s->domains ? strlen(s->domains) : 0;
    char *n = realloc(s->domains, old + strlen(d) + 2);
    if (!n)
        return -ENOMEM;
    if (old)
        n[old++] = ' ';
    strcpy(n + old, d);
    s->domains = n;
    return 0;
}

enum { OPTIONS_N_NAMES = sizeof(long_options) / sizeof(long_options[0]) - 1 };
_Static_assert((int)OPTIONS_N_NAMES <= (int)OPTIONS_MAX_NAMES, "raise OPTIONS_MAX_NAMES");

/* The slot of the long option whose getopt value is c. */
static int option_slot(int c)
{
    for (int i = 0; i < OPTIONS_N_NAMES; i++)
        if (long_options[i].val == c)
            return i;
    return -1;
}

/* Options that add an entry each time they are given, rather than set one value. */
static int option_repeatable(int c)
{
    switch (c) {
    case 'D':
    case 'H':
    case 'L':
    case 'R':
    case OPT_ROUTE:
    case OPT_EXCLUDE:
    case OPT_ADDRESS:
    case OPT_DNS:
    case OPT_DOMAIN:
        return 1;
    default:
        return 0;
    }
}

/* Drops every entry a repeatable option added (the config file's, when the command line gives the
 * option too). */
static void option_clear(struct options *o, int c)
{
    size_t kept = 0;
    switch (c) {
    case 'D':
        o->n_socks = 0;
        break;
    case 'H':
        o->n_http = 0;
        break;
    case 'L':
    case 'R':
        for (size_t i = 0; i < o->n_forwards; i++)
            if (o->forwards[i].remote != (c == 'R'))
                o->forwards[kept++] = o->forwards[i];
        o->n_forwards = kept;
        break;
    case OPT_ROUTE:
    case OPT_EXCLUDE:
        for (size_t i = 0; i < o->route.n_user; i++)
            if (o->route.user[i].verdict != (c == OPT_ROUTE ? ROUTER_TUNNEL : ROUTER_DIRECT))
                o->route.user[kept++] = o->route.user[i];
        o->route.n_user = kept;
        break;
    case OPT_ADDRESS:
        memset(&o->overrides.addr4, 0, sizeof(o->overrides.addr4));
        memset(&o->overrides.addr6, 0, sizeof(o->overrides.addr6));
        o->overrides.prefix4 = o->overrides.prefix6 = 0;
        break;
    case OPT_DNS:
        o->overrides.n_dns = 0;
        break;
    case OPT_DOMAIN:
        free(o->overrides.domains);
        o->overrides.domains = NULL;
        break;
    }
}

/* Notes where an option came from before it is applied. From a file (line > 0): a single-valued
 * option may be set once. From the command line (line 0): the file's setting of it goes. */
static int option_note_source(struct options *o, int c, unsigned line, char *err, size_t errcap)
{
    int slot = option_slot(c);
    if (slot < 0)
        return 0;
    if (line > 0) {
        int first = slot;
        /* verbose and quiet set one thing, the log level: one of them may come, once. */
        if ((c == 'v' || c == 'q') && !o->file_line[slot])
            first = option_slot(c == 'v' ? 'q' : 'v');
        if (o->file_line[first] && !option_repeatable(c)) {
            snprintf(err, errcap, "%s is already set on line %u", long_options[first].name, o->file_line[first]);
            return -EINVAL;
        }
        if (!o->file_line[slot])
            o->file_line[slot] = line;
        return 0;
    }
    if (c == 'v' || c == 'q') {
        int vs = option_slot('v'), qs = option_slot('q');
        if (o->file_line[vs] || o->file_line[qs])
            o->verbosity = 0;
        o->file_line[vs] = o->file_line[qs] = 0;
        return 0;
    }
    if (o->file_line[slot] && option_repeatable(c))
        option_clear(o, c);
    o->file_line[slot] = 0;
    return 0;
}

/* The long options that name (up to any '=') is a prefix of, as "--a, --b or --c" in out; how
 * many. getopt takes a prefix that only one long option starts with, and an exact name over the
 * longer ones it starts (--conf, not --config); with opterr off it reports a prefix of several as
 * it reports an unknown option. */
static int option_candidates(const char *name, char *out, size_t cap)
{
    size_t len = strcspn(name, "="), used = 0;
    int n = 0, total = 0;
    if (len == 0)
        return 0; /* "--=x" names nothing */
    for (int i = 0; i < OPTIONS_N_NAMES; i++)
        if (strncmp(long_options[i].name, name, len) == 0)
            total++;
    if (cap)
        out[0] = '\0';
    for (int i = 0; i < OPTIONS_N_NAMES && used < cap; i++) {
        if (strncmp(long_options[i].name, name, len) != 0)
            continue;
        n++;
        const char *sep = n == 1 ? "" : n == total ? " or " : ", ";
        int w = snprintf(out + used, cap - used, "%s--%s", sep, long_options[i].name);
        used = w < 0 ? cap : used + (size_t)w;
    }
    return total;
}

/* Replaces an owned string. 0 or -ENOMEM. */
static int set_string(char **field, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        return -ENOMEM;
    free(*field);
    *field = copy;
    return 0;
}

/* The per-option code, for the command line (line 0) and for one line of a config file. */
static int options_getopt(struct options *o, int argc, char **argv, unsigned line, char *err, size_t errcap)
{
    int c;
    unsigned long v;
    struct v2s_cidr cidr;
    char names[256];
    optind = 0; /* glibc: start over, forgetting any earlier argv */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:D:H:L:R:vqhV", long_options, NULL)) != -1) {
        if (c != ':' && c != '?' && option_note_source(o, c, line, err, errcap) < 0)
            return -EINVAL;
        switch (c) {
        case OPT_CONF:
            if (set_string(&o->conf, optarg) < 0)
                goto nomem;
            break;
        case 'c':
            if (set_string(&o->config, optarg) < 0)
                goto nomem;
            break;
        case OPT_AUTH_USER_PASS:
            if (set_string(&o->auth_user_pass, optarg) < 0)
                goto nomem;
            break;
        case OPT_ALLOW_READABLE_SECRETS:
            o->allow_readable_secrets = 1;
            break;
        case OPT_SOCKS_AUTH:
            if (set_string(&o->socks_auth, optarg) < 0)
                goto nomem;
            break;
        case 'D':
            if (o->n_socks == OPTIONS_MAX_LISTENERS) {
                snprintf(err, errcap, "too many -D listeners (at most %d)", OPTIONS_MAX_LISTENERS);
                return -EINVAL;
            }
            if (listen_arg(&o->socks[o->n_socks], "-D", optarg, err, errcap) < 0)
                return -EINVAL;
            o->socks_line[o->n_socks] = line;
            o->n_socks++;
            break;
        case OPT_STATUS:
            if (listen_arg(&o->status, "--status", optarg, err, errcap) < 0)
                return -EINVAL;
            o->status_line = line;
            o->has_status = 1;
            break;
        case 'H':
            if (o->n_http == OPTIONS_MAX_LISTENERS) {
                snprintf(err, errcap, "too many -H listeners (at most %d)", OPTIONS_MAX_LISTENERS);
                return -EINVAL;
            }
            if (listen_arg(&o->http[o->n_http], "-H", optarg, err, errcap) < 0)
                return -EINVAL;
            o->http_line[o->n_http] = line;
            o->n_http++;
            break;
        case 'L':
        case 'R': {
            char why[256];
            struct options_forward *f = &o->forwards[o->n_forwards];
            if (o->n_forwards == OPTIONS_MAX_FORWARDS) {
                snprintf(err, errcap, "too many -L and -R forwards (at most %d)", OPTIONS_MAX_FORWARDS);
                return -EINVAL;
            }
            if (options_parse_forward(f, optarg, c == 'R', why, sizeof(why)) < 0) {
                snprintf(err, errcap, "-%c %s: %s", c, optarg, why);
                return -EINVAL;
            }
            f->line = line;
            o->n_forwards++;
            break;
        }
        case OPT_UDP_TIMEOUT:
            if (v2s_parse_uint(optarg, 86400, &v) < 0 || v == 0) {
                snprintf(err, errcap, "--udp-timeout %s: expected seconds from 1 to 86400", optarg);
                return -EINVAL;
            }
            o->udp_timeout_ms = (unsigned)v * 1000;
            break;
        case OPT_UDP_MAX_FLOWS:
            if (v2s_parse_uint(optarg, 65535, &v) < 0 || v == 0) {
                snprintf(err, errcap, "--udp-max-flows %s: expected a number from 1 to 65535", optarg);
                return -EINVAL;
            }
            o->udp_max_flows = (unsigned)v;
            break;
        case OPT_TUNNEL_FD:
            if (v2s_parse_uint(optarg, 65535, &v) < 0) {
                snprintf(err, errcap, "--tunnel-fd %s: expected a file descriptor number", optarg);
                return -EINVAL;
            }
            o->tunnel_fd = (int)v;
            break;
        case OPT_ROUTE:
        case OPT_EXCLUDE:
            if (v2s_cidr_parse(&cidr, optarg, 1) < 0) {
                snprintf(err, errcap, "%s %s: expected ADDR/PREFIX", c == OPT_ROUTE ? "--route" : "--exclude", optarg);
                return -EINVAL;
            }
            if (router_config_add(&o->route, &cidr, c == OPT_ROUTE ? ROUTER_TUNNEL : ROUTER_DIRECT) < 0) {
                snprintf(err, errcap, "out of memory");
                return -ENOMEM;
            }
            break;
        case OPT_OTHERS:
            if (strcmp(optarg, "direct") == 0)
                o->route.others = ROUTER_OTHERS_DIRECT;
            else if (strcmp(optarg, "tunnel") == 0)
                o->route.others = ROUTER_OTHERS_TUNNEL;
            else if (strcmp(optarg, "reject") == 0)
                o->route.others = ROUTER_OTHERS_REJECT;
            else {
                snprintf(err, errcap, "--others %s: expected direct, tunnel or reject", optarg);
                return -EINVAL;
            }
            break;
        case OPT_ADDRESS: {
            /* An interface address keeps its host bits, so this is not a CIDR prefix. */
            char text[64];
            struct v2s_addr a;
            unsigned long prefix = 0;
            snprintf(text, sizeof(text), "%s", optarg);
            char *slash = strchr(text, '/');
            if (slash)
                *slash = '\0';
            if (v2s_addr_parse(&a, text) < 0 ||
                (slash && v2s_parse_uint(slash + 1, a.family == AF_INET ? 32 : 128, &prefix) < 0)) {
                snprintf(err, errcap, "--address %s: expected ADDR[/PREFIX]", optarg);
                return -EINVAL;
            }
            /* /0 made every address the tunnel's own subnet, which the router sends into the
             * tunnel: --others no longer applied to anything. */
            if (slash && prefix == 0) {
                snprintf(err, errcap, "--address %s: a prefix of 0 would make every address the tunnel's subnet; "
                         "give the tunnel's own (/24, /64) or none (a host address)", optarg);
                return -EINVAL;
            }
            /* One address of each family: a second one replaced the first without a word. */
            if ((a.family == AF_INET ? o->overrides.addr4.family : o->overrides.addr6.family) != 0) {
                snprintf(err, errcap, "--address %s: an %s address is already given (one of each family)", optarg,
                         a.family == AF_INET ? "IPv4" : "IPv6");
                return -EINVAL;
            }
            if (a.family == AF_INET) {
                o->overrides.addr4 = a;
                o->overrides.prefix4 = slash ? (unsigned)prefix : 32;
            } else {
                o->overrides.addr6 = a;
                o->overrides.prefix6 = slash ? (unsigned)prefix : 128;
            }
            break;
        }
        case OPT_MTU:
            if (v2s_parse_uint(optarg, 65535, &v) < 0 || v < 576) {
                snprintf(err, errcap, "--mtu %s: expected a number from 576 to 65535", optarg);
                return -EINVAL;
            }
            o->overrides.mtu = (unsigned)v;
            break;
        case OPT_DNS:
            if (o->overrides.n_dns == TUNNEL_MAX_DNS ||
                v2s_addr_parse(&o->overrides.dns[o->overrides.n_dns], optarg) < 0) {
                snprintf(err, errcap, "--dns %s: expected an IP address (at most %d)", optarg, TUNNEL_MAX_DNS);
                return -EINVAL;
            }
            o->overrides.n_dns++;
            break;
        case OPT_DOMAIN:
            /* A name's characters only: a config file's `domain = "corp.example"` kept its quotes,
             * and no name was ever under it. */
            if (!*optarg || strlen(optarg) > 253 || strspn(optarg, OPTIONS_DOMAIN_CHARS) != strlen(optarg) ||
                append_domain(&o->overrides, optarg) < 0) {
                snprintf(err, errcap, "--domain %s: expected one domain name", optarg);
                return -EINVAL;
            }
            break;
        case OPT_CONNECT_TIMEOUT:
            if (v2s_parse_uint(optarg, 3600, &v) < 0 || v == 0) {
                snprintf(err, errcap, "--connect-timeout %s: expected seconds from 1 to 3600", optarg);
                return -EINVAL;
            }
            o->connect_timeout_ms = (unsigned)v * 1000;
            break;
        case OPT_HANDSHAKE_TIMEOUT:
            if (v2s_parse_uint(optarg, 3600, &v) < 0 || v == 0) {
                snprintf(err, errcap, "--handshake-timeout %s: expected seconds from 1 to 3600", optarg);
                return -EINVAL;
            }
            o->handshake_timeout_ms = (unsigned)v * 1000;
            break;
        case OPT_MAX_CONNS:
        case OPT_LISTENER_MAX_CONNS:
            if (v2s_parse_uint(optarg, OPTIONS_MAX_CONNS_LIMIT, &v) < 0 || v == 0) {
                snprintf(err, errcap, "%s %s: expected a number of connections from 1 to %d",
                         c == OPT_MAX_CONNS ? "--max-connections" : "--listener-max-connections", optarg,
                         OPTIONS_MAX_CONNS_LIMIT);
                return -EINVAL;
            }
            if (c == OPT_MAX_CONNS) {
                o->max_conns = (unsigned)v;
                o->max_conns_given = 1;
            } else {
                o->listener_max_conns = (unsigned)v;
                o->listener_max_conns_given = 1;
            }
            break;
        case OPT_ALLOW_DIRECT_LOCAL:
            o->route.allow_direct_local = 1;
            break;
        case OPT_LOG_FORMAT: {
            enum v2s_log_format fmt;
            if (v2s_log_format_parse(optarg, &fmt) < 0) {
                snprintf(err, errcap, "--log-format %s: expected plain or json", optarg);
                return -EINVAL;
            }
            o->log_format = (int)fmt;
            break;
        }
        case 'v':
            /* After -q, counted from the default level: the last of -q and -v wins. */
            o->verbosity = o->verbosity < 0 ? 1 : o->verbosity + 1;
            break;
        case 'q':
            o->verbosity = -1;
            break;
        /* --help and --version read the rest of the command line as any option does: returning
         * here left a stray word after them unread ("vpn2socks -V extra" printed the version and
         * exited 0), where everywhere else it is refused. */
        case 'h':
            o->help = 1;
            break;
        case 'V':
            o->version = 1;
            break;
        case ':':
            snprintf(err, errcap, "%s needs a value", argv[optind - 1]);
            return -EINVAL;
        default:
            /* A short option getopt does not know is optopt: within a cluster ("-xv") optind has
             * not moved past its word yet, and argv[optind - 1] named the word before it ("-D
             * 1080 -xv" said "unknown option 1080"). A long option (unknown, ambiguous, or given a
             * value it does not take) has moved optind on; optopt is then 0 or its value. */
            if (optopt > 0 && optopt < 256 && option_slot(optopt) < 0)
                snprintf(err, errcap, "unknown option -%c", optopt);
            else if (optopt > 0 && strncmp(argv[optind - 1], "--", 2) == 0 && strchr(argv[optind - 1], '='))
                /* A flag given a value ("--allow-direct-local=yes", as the config file writes
                 * it) is an option we know: "unknown option" sent the user looking for a typo. */
                snprintf(err, errcap, "%.*s takes no value: give it alone",
                         (int)strcspn(argv[optind - 1], "="), argv[optind - 1]);
            else if (strncmp(argv[optind - 1], "--", 2) == 0 && argv[optind - 1][2] &&
                     option_candidates(argv[optind - 1] + 2, names, sizeof(names)) > 1)
                snprintf(err, errcap, "ambiguous option %.*s: it could be %s", (int)strcspn(argv[optind - 1], "="),
                         argv[optind - 1], names);
            else
                snprintf(err, errcap, "unknown option %s", argv[optind - 1]);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        /* "vpn2socks client.ovpn", as one runs "openvpn client.ovpn": say where the file goes. */
        size_t l = strlen(argv[optind]);
        int ovpn = l > 5 && strcasecmp(argv[optind] + l - 5, ".ovpn") == 0;
        snprintf(err, errcap, "unexpected argument '%s'%s", argv[optind],
                 ovpn ? ": a .ovpn file goes after --config (-c)" : "");
        return -EINVAL;
    }
    return 0;
nomem:
    snprintf(err, errcap, "out of memory");
    return -ENOMEM;
}

int options_apply_args(struct options *o, int argc, char **argv, char *err, size_t errcap)
{
    return options_getopt(o, argc, argv, 0, err, errcap);
}

int options_parse(struct options *o, int argc, char **argv, char *err, size_t errcap)
{
    int rc = options_getopt(o, argc, argv, 0, err, errcap);
    if (rc < 0 || o->help || o->version)
        return rc;
    return options_check(o, err, errcap);
}

/* yes/no and its spellings, as a flag's value in a config file: 1, 0, or -1. */
static int parse_bool(const char *v)
{
    static const char *const yes[] = {"yes", "true", "1"}, *const no[] = {"no", "false", "0"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return 1;
        if (strcasecmp(v, no[i]) == 0)
            return 0;
    }
    return -1;
}

/* Edits from a to b (insertions, deletions, substitutions and swaps of two neighbours: "scoks" is
 * one from "socks"), counted up to limit + 1 and no further. */
static size_t option_distance(const char *a, const char *b, size_t limit)
{
    enum { MAX = 64 };
    size_t la = strlen(a), lb = strlen(b);
    if (la > MAX || lb > MAX || (la > lb ? la - lb : lb - la) > limit)
        return limit + 1;
    size_t rows[3][MAX + 1], *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t d = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < d)
                d = prev[j] + 1;
            if (cur[j - 1] + 1 < d)
                d = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && prev2[j - 2] + 1 < d)
                d = prev2[j - 2] + 1;
            cur[j] = d;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb] > limit ? limit + 1 : prev[lb];
}

/* The one name a config file takes that is within two edits of name, or NULL when none or several
 * are: "sock = 1080" was only "unknown option 'sock'", and the user had to find socks alone. */
static const char *option_suggestion(const char *name)
{
    const char *best = NULL;
    for (int i = 0; i < OPTIONS_N_NAMES; i++) {
        int c = long_options[i].val;
        if (c == OPT_CONF || c == 'h' || c == 'V' || option_distance(name, long_options[i].name, 2) > 2)
            continue;
        if (best)
            return NULL;
        best = long_options[i].name;
    }
    return best;
}

int options_apply_setting(struct options *o, const char *name, const char *value, unsigned line, const char *dir,
                          char *err, size_t errcap)
{
    int slot = -1;
    if (name[0] == '-') {
        snprintf(err, errcap, "'%s': write the option's name without dashes", name);
        return -EINVAL;
    }
    for (int i = 0; i < OPTIONS_N_NAMES && slot < 0; i++)
        if (strcmp(long_options[i].name, name) == 0)
            slot = i;
    if (slot < 0) {
        const char *near = option_suggestion(name);
        snprintf(err, errcap, "unknown option '%s'%s%s%s", name, near ? ": did you mean '" : "", near ? near : "",
                 near ? "'?" : "");
        return -EINVAL;
    }
    int c = long_options[slot].val;
    if (c == OPT_CONF || c == 'h' || c == 'V') {
        snprintf(err, errcap, "%s only goes on the command line", name);
        return -EINVAL;
    }
    char flag[64], path[4096];
    snprintf(flag, sizeof(flag), "--%s", name);
    char *argv[] = {"vpn2socks", flag, (char *)value, NULL}; /* getopt reorders argv, never the strings */
    int argc = 3;
    if (long_options[slot].has_arg == no_argument) {
        int on = parse_bool(value);
        unsigned long level = 0;
        if (c == 'v' && on < 0 && v2s_parse_uint(value, 3, &level) == 0)
            on = 1;
        else if (c == 'v')
            level = (unsigned long)on;
        if (on < 0) {
            snprintf(err, errcap, "%s = %s: expected %s", name, value,
                     c == 'v' ? "a level from 0 to 3" : "yes or no (true or false, 1 or 0)");
            return -EINVAL;
        }
        if (c == 'v' || !on) {
            /* Nothing for getopt to do (a flag's default is off), but the line counts. */
            if (option_note_source(o, c, line, err, errcap) < 0)
                return -EINVAL;
            if (c == 'v')
                o->verbosity = (int)level;
            return 0;
        }
        argc = 2;
        argv[2] = NULL;
    } else if (!value[0]) {
        snprintf(err, errcap, "%s needs a value", name);
        return -EINVAL;
    } else if ((c == 'c' || c == OPT_AUTH_USER_PASS || c == OPT_SOCKS_AUTH) && value[0] != '/' && dir) {
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, value) >= sizeof(path)) {
            snprintf(err, errcap, "%s: the path is too long", name);
            return -EINVAL;
        }
        argv[2] = path;
    }
    int rc = options_getopt(o, argc, argv, line, err, errcap);
    /* The per-option messages name the option as typed on a command line ("--mtu 1", "-L ..."):
     * say it as the file does. */
    const char *shortname = c == 'D' ? "-D " : c == 'H' ? "-H " : c == 'L' ? "-L " : c == 'R' ? "-R " : NULL;
    size_t fl = strlen(flag);
    char rest[512];
    if (rc < 0 && shortname && strncmp(err, shortname, 3) == 0)
        snprintf(rest, sizeof(rest), "%s", err + 3);
    else if (rc < 0 && strncmp(err, flag, fl) == 0 && err[fl] == ' ')
        snprintf(rest, sizeof(rest), "%s", err + fl + 1);
    else
        return rc;
    snprintf(err, errcap, "%s = %s", name, rest);
    return rc;
}

void options_name_file(char *err, size_t errcap, const char *option, const char *path)
{
    size_t len = strlen(path), add = strlen(option) + 1, have = strlen(err);
    if (strncmp(err, path, len) != 0 || !(err[len] == ' ' || (err[len] == ':' && err[len + 1] == ' ')) ||
        add >= errcap)
        return;
    if (have + add >= errcap)
        have = errcap - 1 - add;
    memmove(err + add, err, have);
    err[add + have] = '\0';
    memcpy(err, option, add - 1);
    err[add - 1] = ' ';
}
