/* What a tunnel tells the stack when it comes up: addresses, MTU, routes, DNS, domains. */
#ifndef VPN2SOCKS_TUNNEL_SETTINGS_H
#define VPN2SOCKS_TUNNEL_SETTINGS_H

#include <stddef.h>

#include "base/addr.h"

enum { TUNNEL_MAX_DNS = 8 };

struct tunnel_settings {
    struct v2s_addr addr4;      /* family 0 when the tunnel has no IPv4 */
    unsigned prefix4;           /* from the netmask; 32 when none given */
    struct v2s_addr addr6;      /* family 0 when the tunnel has no IPv6 */
    unsigned prefix6;
    unsigned mtu;               /* 0 = unknown, the stack picks a default */
    struct v2s_addr dns[TUNNEL_MAX_DNS];
    size_t n_dns;
    char *domains;              /* space-separated search domains, NULL when none */
    struct v2s_cidr *routes;    /* split-include; none = everything goes through the tunnel */
    size_t n_routes;
    struct v2s_cidr *excludes;  /* split-exclude */
    size_t n_excludes;
};

/* IPv6 needs a link MTU of 1280 (RFC 8200 5). */
enum { TUNNEL_IPV6_MTU_MIN = 1280 };

void tunnel_settings_init(struct tunnel_settings *s);
/* IPv6 on a tunnel whose MTU (mtu; 0, unknown, is not judged) is under TUNNEL_IPV6_MTU_MIN: 0
 * when there is none or the MTU is large enough; 1 when IPv6 was turned off and IPv4 stays, with
 * a warning line for the log in msg ("the tunnel MTU 1200 is below IPv6's minimum of 1280: IPv6
 * (fd00::2) left off on this tunnel, IPv4 only"); -EINVAL when the tunnel has no IPv4 to fall
 * back on, with "the tunnel MTU 1200 is below IPv6's minimum of 1280" in msg for the caller to
 * finish with where the IPv4 address was to come from. Both tunnels (OpenVPN, packet fd) ask. */
int tunnel_settings_ipv6_mtu(struct tunnel_settings *s, char *msg, size_t cap);
void tunnel_settings_free(struct tunnel_settings *s);
/* Appends a prefix to routes or excludes. 0 or -ENOMEM. */
int tunnel_settings_add_route(struct tunnel_settings *s, const struct v2s_cidr *c, int exclude);

/* Looks up one variable; returns NULL when unset. */
typedef const char *(*tunnel_getenv_fn)(void *arg, const char *name);

/* Reads the openconnect/vpnc-script variables (INTERNAL_IP4_ADDRESS, INTERNAL_IP4_NETMASK,
 * INTERNAL_IP4_MTU, INTERNAL_IP4_DNS, INTERNAL_IP6_ADDRESS, INTERNAL_IP6_NETMASK, INTERNAL_IP6_DNS,
 * CISCO_DEF_DOMAIN, CISCO_SPLIT_INC/EXC and CISCO_IPV6_SPLIT_INC/EXC with their _%d_ADDR, _MASK,
 * _MASKLEN). Split includes of one family only add the other family's default route (a /0) when
 * the tunnel has an address of it, as vpnc-script does. On error returns -EINVAL and writes a
 * one-line reason naming the variable into err; s is left initialised (free it either way). */
int tunnel_settings_from_env(struct tunnel_settings *s, tunnel_getenv_fn get, void *arg,
                             char *err, size_t errcap);

/* The process environment read once, looked up by name in log time: openconnect exports up to three
 * variables per split route, and getenv() scans the whole environment for each, so thousands of
 * routes made startup quadratic (4096 + 4096 IPv4 routes: 2.0 s of getenv()). */
struct tunnel_env_var;
struct tunnel_env {
    struct tunnel_env_var *vars; /* sorted by name, one per name */
    size_t n;
};
/* Indexes envp ("NAME=VALUE" strings, NULL-terminated: environ), which must stay as it is while e
 * is used. 0 or -ENOMEM. */
int tunnel_env_init(struct tunnel_env *e, char *const *envp);
void tunnel_env_free(struct tunnel_env *e);
/* A tunnel_getenv_fn over arg, a struct tunnel_env: what getenv() answers for envp (of a name
 * given twice the first, an entry without '=' never), as a pointer into envp. */
const char *tunnel_env_get(void *arg, const char *name);

/* The rest of what openconnect's --script-tun environment says, read through the same callback
 * (getenv in the process, a table in the unit tests). */

/* Like tunnel_settings_from_env() when INTERNAL_IP4_ADDRESS or INTERNAL_IP6_ADDRESS is set; when
 * neither is, or both are empty (not run by openconnect, or the addresses come from the command
 * line), returns 0 with s initialised and empty. */
int tunnel_settings_from_script_env(struct tunnel_settings *s, tunnel_getenv_fn get, void *arg,
                                    char *err, size_t errcap);
/* VPNFD, the packet fd openconnect hands over: 0 with *fd set; -ENOENT when unset, with err empty
 * or, when a vpnc-script's reason is set (openconnect given --script without --script-tun), a line
 * that says so; or -EINVAL with "VPNFD=... is not a file descriptor number" in err. */
int tunnel_env_vpnfd(tunnel_getenv_fn get, void *arg, int *fd, char *err, size_t errcap);
/* VPNPID, openconnect's process (watched so that its end is noticed): the pid, or 0 when unset or
 * not a positive number. */
long tunnel_env_vpnpid(tunnel_getenv_fn get, void *arg);

#endif
