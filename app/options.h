/* The command line. Parsing is pure: main() acts on the result. */
#ifndef VPN2SOCKS_APP_OPTIONS_H
#define VPN2SOCKS_APP_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "route/router.h"
#include "tunnel/settings.h"

enum { OPTIONS_MAX_LISTENERS = 8, OPTIONS_MAX_FORWARDS = 64 };

/* One -L or -R [ADDR:]PORT:HOST:HOSTPORT[/udp]. */
struct options_forward {
    struct sockaddr_storage listen; /* -R: an address inside the tunnel; 0.0.0.0 (no ADDR given):
                                     * every tunnel address, IPv4 and IPv6 */
    char host[256]; /* an IP address (without brackets) or a name */
    uint16_t port;
    int udp;        /* /udp: datagrams, in flows per client address and port */
    int remote;     /* -R: listens in the tunnel, connects from this host */
};

struct options {
    struct sockaddr_storage socks[OPTIONS_MAX_LISTENERS];
    size_t n_socks;
    struct options_forward forwards[OPTIONS_MAX_FORWARDS]; /* -L and -R, in the order given */
    size_t n_forwards;
    int tunnel_fd;             /* -1 = from VPNFD */
    const char *config;        /* --config: a .ovpn file for the native OpenVPN client */
    const char *auth_user_pass; /* --auth-user-pass FILE */
    const char *socks_auth;     /* --socks-auth FILE: user:password lines every SOCKS listener requires */
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
    int help;
    int version;
};

void options_init(struct options *o);
void options_free(struct options *o);
/* Parses argv. 0, or -EINVAL with a one-line message in err. */
int options_parse(struct options *o, int argc, char **argv, char *err, size_t errcap);
/* Parses "[ADDR:]PORT" ("[v6]:PORT" for IPv6); a bare port binds 127.0.0.1. 0 or -EINVAL. */
int options_parse_listen(struct sockaddr_storage *out, const char *text);
/* Parses "[ADDR:]PORT:HOST:HOSTPORT[/tcp|/udp]" (IPv6 addresses in brackets). For -L (remote 0)
 * ADDR defaults to 127.0.0.1; for -R (remote 1) it must be an IP address and defaults to 0.0.0.0,
 * every tunnel address. 0, or -EINVAL with what is wrong in err (without the option's name). */
int options_parse_forward(struct options_forward *out, const char *text, int remote, char *err, size_t errcap);
/* Whether only this host can connect to a listener bound to addr (a loopback address). */
int options_listen_is_loopback(const struct sockaddr *addr);
void options_usage(FILE *f);

#endif
