/* The command line, and the config file's settings (app/conf.c reads the file and hands each
 * `name = value` line here). Parsing is pure: main() acts on the result. */
#ifndef VPN2SOCKS_APP_OPTIONS_H
#define VPN2SOCKS_APP_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "route/router.h"
#include "tunnel/settings.h"

/* What a host or domain name is made of, as -L's HOST and --domain take it. */
#define OPTIONS_DOMAIN_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_"

enum { OPTIONS_MAX_LISTENERS = 8, OPTIONS_MAX_FORWARDS = 64 };
/* More than the long options there are (options.c checks): one slot each in options.file_line. */
enum { OPTIONS_MAX_NAMES = 48 };

/* One -L or -R [ADDR:]PORT:HOST:HOSTPORT[/udp]. */
struct options_forward {
    struct sockaddr_storage listen; /* -R: an address inside the tunnel; 0.0.0.0 (no ADDR given):
                                     * every tunnel address, IPv4 and IPv6 */
    char host[256]; /* an IP address (without brackets) or a name */
    uint16_t port;
    int udp;        /* /udp: datagrams, in flows per client address and port */
    int remote;     /* -R: listens in the tunnel, connects from this host */
    unsigned line;  /* the config file's line that gave it; 0: the command line */
};

struct options {
    struct sockaddr_storage socks[OPTIONS_MAX_LISTENERS];
    size_t n_socks;
    struct sockaddr_storage http[OPTIONS_MAX_LISTENERS]; /* -H */
    size_t n_http;
    unsigned socks_line[OPTIONS_MAX_LISTENERS]; /* the config file's line of each; 0: the command */
    unsigned http_line[OPTIONS_MAX_LISTENERS];  /* line (for messages that name it) */
    struct options_forward forwards[OPTIONS_MAX_FORWARDS]; /* -L and -R, in the order given */
    struct sockaddr_storage status; /* --status: the health and metrics endpoint */
    int has_status;
    unsigned status_line;
    size_t n_forwards;
    int tunnel_fd;             /* -1 = from VPNFD */
    char *config;              /* --config: a .ovpn file for the native OpenVPN client (owned) */
    char *auth_user_pass;      /* --auth-user-pass FILE (owned) */
    char *socks_auth;          /* --socks-auth FILE: the user:password lines every SOCKS and HTTP
                                * listener requires (owned) */
    char *conf;                /* --conf FILE: the config file these options came from (owned) */
    int allow_readable_secrets; /* --allow-readable-secrets: warn about exposed key files instead of refusing */
    struct router_config route; /* --route / --exclude / --others / --allow-direct-local */
    struct tunnel_settings overrides; /* --address / --mtu / --dns / --domain */
    unsigned connect_timeout_ms;
    unsigned udp_timeout_ms;        /* --udp-timeout: a UDP flow idle this long ends */
    unsigned udp_max_flows;         /* --udp-max-flows: flows of each UDP forward */
    unsigned handshake_timeout_ms;  /* --handshake-timeout */
    unsigned max_conns;             /* --max-connections: every listener together */
    unsigned listener_max_conns;    /* --listener-max-connections: each listener */
    int max_conns_given;            /* set on the command line, so not lowered to fit */
    int listener_max_conns_given;
    int verbosity;             /* added to the default log level */
    int log_format;            /* --log-format: enum v2s_log_format (base/log.h) */
    int help;
    int version;
    /* For each long option, the line of the config file that set it, 0 when the file did not: a
     * second line of a single-valued option is an error, and a repeatable option given on the
     * command line replaces the file's lines of it. */
    unsigned file_line[OPTIONS_MAX_NAMES];
};

void options_init(struct options *o);
void options_free(struct options *o);
/* Parses argv and checks the whole (options_check). 0, or -EINVAL with a one-line message in err. */
int options_parse(struct options *o, int argc, char **argv, char *err, size_t errcap);
/* Applies argv onto what o holds, without the checks on the whole. Every option a config file set
 * is replaced: a single-valued one takes the command line's value, and a repeatable one (socks,
 * http, local, remote, route, exclude, address, dns, domain) drops all of the file's lines of it. -v and
 * -q replace the file's verbose and quiet. 0, or -EINVAL with a message in err. */
int options_apply_args(struct options *o, int argc, char **argv, char *err, size_t errcap);
/* One `name = value` line of a config file, at line (1 and up), as if "--name value" had been
 * given: the same per-option code, so the same values are accepted. name is a long option,
 * spelled out; a flag takes yes, no, true, false, 1 or 0; verbose takes a level from 0 to 3.
 * A relative path (config, auth-user-pass) is taken from dir, the file's directory. A
 * single-valued option may appear once. 0, or -EINVAL with a message in err (without the line). */
int options_apply_setting(struct options *o, const char *name, const char *value, unsigned line, const char *dir,
                          char *err, size_t errcap);
/* The checks on the whole (a listener at least, --auth-user-pass with --config, ...). 0 or -EINVAL. */
int options_check(const struct options *o, char *err, size_t errcap);
/* The names of the options in now that differ from run and only take effect at a restart (the
 * tunnel, its settings, --socks-auth turned on or off, the caps and timeouts), comma-separated in
 * out (empty: none). */
void options_restart_only_changes(const struct options *run, const struct options *now, char *out, size_t cap);
/* Makes a message about the file an option gave name the option too: "PATH: why" or "PATH holds
 * ..." becomes "OPTION PATH: why" (truncated to errcap). Any other message, such as one about a
 * line of the file ("PATH:3: ..."), which names the file's contents, is left as it is. */
void options_name_file(char *err, size_t errcap, const char *option, const char *path);
/* Parses "[ADDR:]PORT" ("[v6]:PORT" for IPv6); a bare port binds 127.0.0.1. 0, -EINVAL, or -EDOM
 * for a port written with a leading zero (01080). */
int options_parse_listen(struct sockaddr_storage *out, const char *text);
/* Parses "[ADDR:]PORT:HOST:HOSTPORT[/tcp|/udp]" (IPv6 addresses in brackets). For -L (remote 0)
 * ADDR defaults to 127.0.0.1; for -R (remote 1) it must be an IP address and defaults to 0.0.0.0,
 * every tunnel address. 0, or -EINVAL with what is wrong in err (without the option's name). */
int options_parse_forward(struct options_forward *out, const char *text, int remote, char *err, size_t errcap);
/* Whether only this host can connect to a listener bound to addr (a loopback address). */
int options_listen_is_loopback(const struct sockaddr *addr);
/* The --help text (app/usage.c). */
void options_usage(FILE *f);

#endif
