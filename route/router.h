/* The router decides where a destination goes: into the tunnel, directly from this host, or
 * nowhere. Pure code: the tunnel's split routes plus the user's --route / --exclude / --others. */
#ifndef VPN2SOCKS_ROUTE_ROUTER_H
#define VPN2SOCKS_ROUTE_ROUTER_H

#include <stddef.h>

#include "base/addr.h"

struct tunnel_settings;

enum router_verdict {
    ROUTER_TUNNEL,
    ROUTER_DIRECT,
    ROUTER_REJECT,
};

enum router_others {
    ROUTER_OTHERS_DEFAULT, /* tunnel when the VPN pushed no routes (full tunnel), else direct */
    ROUTER_OTHERS_TUNNEL,
    ROUTER_OTHERS_DIRECT,
    ROUTER_OTHERS_REJECT,
};

struct router_entry {
    struct v2s_cidr cidr;
    enum router_verdict verdict;
};

struct router {
    struct router_entry *entries; /* user entries first; tunnel entries follow */
    size_t n_entries;
    size_t n_user;                /* how many of entries came from the command line */
    enum router_others others;
    int tunnel_has_routes;        /* the VPN pushed split-include routes */
    int allow_direct_local;       /* --allow-direct-local: see router_addr_is_local() */
    /* For names (router_name_decide): kept when the tunnel goes down, replaced when it comes up. */
    int tunnel_dns_known;         /* the tunnel has come up at least once */
    int tunnel_has_dns;           /* ... and announced DNS servers */
    char *tunnel_domains;         /* its DNS domains, space-separated; NULL when none */
    unsigned generation;          /* changes with every change of the above (the PAC file's cache) */
};

/* What the command line says about routing (app/options.c fills it); the live router, which the
 * process owns, starts from it and adds the tunnel's routes as they come. */
struct router_config {
    struct router_entry *user;    /* --route (TUNNEL) and --exclude (DIRECT), in the order given */
    size_t n_user;
    enum router_others others;    /* --others */
    int allow_direct_local;       /* --allow-direct-local */
};

void router_config_init(struct router_config *c);
void router_config_free(struct router_config *c);
/* Appends a --route (verdict TUNNEL) or --exclude (verdict DIRECT). An IPv4-mapped prefix
 * (::ffff:a.b.c.d/N, N >= 96) is kept as the IPv4 prefix it maps, a.b.c.d/(N - 96): the router
 * judges a mapped destination as the IPv4 host it is, so in the mapped form it matched nothing.
 * 0 or -ENOMEM. */
int router_config_add(struct router_config *c, const struct v2s_cidr *cidr, enum router_verdict v);
/* A live router with c's entries and settings and no tunnel routes yet. 0 or -ENOMEM (r is then
 * empty, and router_free() on it is harmless). */
int router_init_from(struct router *r, const struct router_config *c);

void router_init(struct router *r);
void router_free(struct router *r);
/* Replaces the user's entries, --others and --allow-direct-local with c's and keeps the tunnel's
 * routes (a reload of the config file). Connections already open are not looked at again.
 * 0, or -ENOMEM with r unchanged. */
int router_set_user(struct router *r, const struct router_config *c);
/* A user's --route (verdict TUNNEL) or --exclude (verdict DIRECT), a mapped prefix as in
 * router_config_add(). 0 or -ENOMEM. */
int router_add_user(struct router *r, const struct v2s_cidr *c, enum router_verdict v);
/* Replaces the tunnel's routes with those of the settings (called on every tunnel up).
 * 0 or -ENOMEM. */
int router_set_tunnel(struct router *r, const struct tunnel_settings *s);
/* Longest prefix wins; on a tie, a user entry beats a tunnel entry and DIRECT beats TUNNEL.
 * Without a match, --others decides. A DIRECT verdict for a local address (router_addr_is_local)
 * becomes REJECT unless allow_direct_local is set. */
enum router_verdict router_decide(const struct router *r, const struct v2s_addr *dst);
/* What --others gives an address no entry matches (the default: TUNNEL without pushed routes). */
enum router_verdict router_others_verdict(const struct router *r);
/* Whether a direct connection to a reaches this host or its link rather than a network: loopback
 * (127.0.0.0/8, ::1), unspecified (0.0.0.0/8, ::, which Linux connects to this host) and
 * link-local (169.254.0.0/16, the cloud metadata service 169.254.169.254 among them, fe80::/10),
 * IPv4 ones also as ::ffff:a.b.c.d. */
int router_addr_is_local(const struct v2s_addr *a);
/* Whether router_decide() rejects dst only because it is local (for the log). */
int router_refuses_local(const struct router *r, const struct v2s_addr *dst);
const char *router_verdict_name(enum router_verdict v);

/* Which resolver a name goes to (split DNS). */
enum router_name_verdict {
    ROUTER_NAME_TUNNEL, /* the tunnel's DNS servers */
    ROUTER_NAME_HOST,   /* the host's resolver */
    ROUTER_NAME_REJECT, /* nobody: the destination is refused without a lookup */
};
/* The split-DNS decision for name (not an address literal), in this order:
 *   - before the tunnel's first settings: TUNNEL (its resolver fails while it is down; a name we
 *     cannot place yet is told to nobody);
 *   - a tunnel without DNS servers: HOST (there is no other resolver);
 *   - --others tunnel (or the default with a full tunnel): TUNNEL;
 *   - a single label (no dot, no trailing dot: the search domains complete it) or a name equal to
 *     or under one of the tunnel's DNS domains: TUNNEL;
 *   - any other name: HOST with --others direct (or the default with split routes); with
 *     --others reject, REJECT when the tunnel named its domains (the name is not the VPN's and
 *     nothing may leave outside it), TUNNEL when it named none (its servers are the only ones
 *     that may be asked; the router then judges the address).
 * Names are compared without case and without a trailing dot. */
enum router_name_verdict router_name_decide(const struct router *r, const char *name);
/* Whether name is domain or under it (both dotted; case and a trailing dot ignored; "." holds every
 * name). */
int router_name_under(const char *name, const char *domain, size_t dlen);
const char *router_name_verdict_name(enum router_name_verdict v);

#endif
