/* Router: a linear longest-prefix match over the user's entries and the tunnel's. The tables are
 * tens to hundreds of entries and a decision is made once per connection, so a scan is enough.
 *
 * What the tunnel contributes, mirroring what vpnc-script would install as kernel routes:
 *   - split-include routes -> TUNNEL, split-exclude routes -> DIRECT;
 *   - the tunnel's own subnet (address/prefix, when wider than a host) -> TUNNEL;
 *   - the tunnel's DNS servers, as host routes -> TUNNEL: they are only reachable through it, and a
 *     split-tunnel VPN often pushes DNS servers outside its split-include list. */
#include "route/router.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tunnel/settings.h"

void router_init(struct router *r)
{
    memset(r, 0, sizeof(*r));
    r->others = ROUTER_OTHERS_DEFAULT;
}

void router_free(struct router *r)
{
    free(r->entries);
    free(r->tunnel_domains);
    router_init(r);
}

void router_config_init(struct router_config *c)
{
    memset(c, 0, sizeof(*c));
    c->others = ROUTER_OTHERS_DEFAULT;
}

void router_config_free(struct router_config *c)
{
    free(c->user);
    router_config_init(c);
}

int router_config_add(struct router_config *c, const struct v2s_cidr *cidr, enum router_verdict v)
{
    struct router_entry *grown = realloc(c->user, (c->n_user + 1) * sizeof(*grown));
    if (grown == NULL)
        return -ENOMEM;
    c->user = grown;
    c->user[c->n_user].cidr = *cidr;
    v2s_cidr_unmap_v4(&c->user[c->n_user].cidr); /* as router_lookup() unmaps destinations */
    c->user[c->n_user].verdict = v;
    c->n_user++;
    return 0;
}

int router_init_from(struct router *r, const struct router_config *c)
{
    router_init(r);
    r->others = c->others;
    r->allow_direct_local = c->allow_direct_local;
    for (size_t i = 0; i < c->n_user; i++) {
        if (router_add_user(r, &c->user[i].cidr, c->user[i].verdict) < 0) {
            router_free(r);
            return -ENOMEM;
        }
    }
    return 0;
}

static int router_reserve(struct router *r, size_t n)
{
    if (n == 0)
        return 0;
    struct router_entry *grown = realloc(r->entries, n * sizeof(*grown));
    if (grown == NULL)
        return -ENOMEM;
    r->entries = grown;
    return 0;
}

int router_add_user(struct router *r, const struct v2s_cidr *c, enum router_verdict v)
{
    int err = router_reserve(r, r->n_entries + 1);
    if (err < 0)
        return err;
    /* User entries stay in front of the tunnel's, which router_set_tunnel() replaces wholesale. */
    memmove(r->entries + r->n_user + 1, r->entries + r->n_user,
            (r->n_entries - r->n_user) * sizeof(*r->entries));
    r->entries[r->n_user].cidr = *c;
    v2s_cidr_unmap_v4(&r->entries[r->n_user].cidr); /* as router_lookup() unmaps destinations */
    r->entries[r->n_user].verdict = v;
    r->n_user++;
    r->n_entries++;
    r->generation++;
    return 0;
}

int router_set_user(struct router *r, const struct router_config *c)
{
    size_t n_tunnel = r->n_entries - r->n_user, n = c->n_user + n_tunnel;
    struct router_entry *entries = NULL;
    if (n > 0 && !(entries = malloc(n * sizeof(*entries))))
        return -ENOMEM;
    if (c->n_user)
        memcpy(entries, c->user, c->n_user * sizeof(*entries));
    if (n_tunnel)
        memcpy(entries + c->n_user, r->entries + r->n_user, n_tunnel * sizeof(*entries));
    free(r->entries);
    r->entries = entries;
    r->n_entries = n;
    r->n_user = c->n_user;
    r->others = c->others;
    r->allow_direct_local = c->allow_direct_local;
    r->generation++;
    return 0;
}

static void router_append(struct router *r, const struct v2s_cidr *c, enum router_verdict v)
{
    r->entries[r->n_entries].cidr = *c;
    r->entries[r->n_entries].verdict = v;
    r->n_entries++;
}

static void router_append_subnet(struct router *r, const struct v2s_addr *a, unsigned prefix)
{
    struct v2s_cidr c;
    if (prefix >= v2s_addr_len(a) * 8 || v2s_cidr_make(&c, a, prefix) != 0)
        return; /* no address, or a host prefix: nothing but ourselves lives there */
    router_append(r, &c, ROUTER_TUNNEL);
}

/* A NULL s removes the tunnel's entries (the tunnel went down); what it said about names stays,
 * so a name of the VPN does not go to the host's resolver while it reconnects. */
int router_set_tunnel(struct router *r, const struct tunnel_settings *s)
{
    r->n_entries = r->n_user;
    r->tunnel_has_routes = 0;
    r->generation++;
    if (s == NULL)
        return 0;
    char *domains = NULL;
    if (s->domains && s->domains[0] && !(domains = strdup(s->domains)))
        return -ENOMEM;
    free(r->tunnel_domains);
    r->tunnel_domains = domains;
    r->tunnel_dns_known = 1;
    r->tunnel_has_dns = s->n_dns > 0;
    size_t n = r->n_user + s->n_routes + s->n_excludes + s->n_dns + 2;
    int err = router_reserve(r, n);
    if (err < 0)
        return err;
    for (size_t i = 0; i < s->n_routes; i++)
        router_append(r, &s->routes[i], ROUTER_TUNNEL);
    for (size_t i = 0; i < s->n_excludes; i++)
        router_append(r, &s->excludes[i], ROUTER_DIRECT);
    router_append_subnet(r, &s->addr4, s->prefix4);
    router_append_subnet(r, &s->addr6, s->prefix6);
    for (size_t i = 0; i < s->n_dns; i++) {
        struct v2s_cidr c;
        if (v2s_cidr_make(&c, &s->dns[i], (unsigned)(v2s_addr_len(&s->dns[i]) * 8)) == 0)
            router_append(r, &c, ROUTER_TUNNEL);
    }
    r->tunnel_has_routes = s->n_routes > 0;
    r->generation++;
    return 0;
}

/* On equal prefixes the more cautious verdict wins: REJECT over DIRECT over TUNNEL. */
static int router_verdict_rank(enum router_verdict v)
{
    switch (v) {
    case ROUTER_REJECT:
        return 2;
    case ROUTER_DIRECT:
        return 1;
    default:
        return 0;
    }
}

int router_addr_is_local(const struct v2s_addr *dst)
{
    struct v2s_addr a = *dst;
    v2s_addr_unmap_v4(&a); /* ::ffff:a.b.c.d is the IPv4 host a.b.c.d */
    if (a.family == AF_INET)
        return a.bytes[0] == 127 || a.bytes[0] == 0 || (a.bytes[0] == 169 && a.bytes[1] == 254);
    if (a.family != AF_INET6)
        return 0;
    static const uint8_t zero[15] = {0};
    if (memcmp(a.bytes, zero, 15) == 0 && (a.bytes[15] == 0 || a.bytes[15] == 1))
        return 1; /* :: and ::1 */
    return a.bytes[0] == 0xFE && (a.bytes[1] & 0xC0) == 0x80; /* fe80::/10 */
}

/* What the table and --others say, before the local-address rule. */
static enum router_verdict router_lookup(const struct router *r, const struct v2s_addr *dst)
{
    struct v2s_addr a = *dst;
    v2s_addr_unmap_v4(&a); /* ::ffff:a.b.c.d is the IPv4 host a.b.c.d */
    if (v2s_addr_len(&a) == 0)
        return ROUTER_REJECT;

    const struct router_entry *best = NULL;
    int best_user = 0;
    for (size_t i = 0; i < r->n_entries; i++) {
        const struct router_entry *e = &r->entries[i];
        int user = i < r->n_user;
        if (!v2s_cidr_contains(&e->cidr, &a))
            continue;
        if (best != NULL) {
            if (e->cidr.prefix < best->cidr.prefix)
                continue;
            if (e->cidr.prefix == best->cidr.prefix) {
                if (best_user && !user)
                    continue;
                if (best_user == user &&
                    router_verdict_rank(e->verdict) <= router_verdict_rank(best->verdict))
                    continue;
            }
        }
        best = e;
        best_user = user;
    }
    if (best != NULL)
        return best->verdict;
    return router_others_verdict(r);
}

enum router_verdict router_others_verdict(const struct router *r)
{
    switch (r->others) {
    case ROUTER_OTHERS_TUNNEL:
        return ROUTER_TUNNEL;
    case ROUTER_OTHERS_DIRECT:
        return ROUTER_DIRECT;
    case ROUTER_OTHERS_REJECT:
        return ROUTER_REJECT;
    case ROUTER_OTHERS_DEFAULT:
    default:
        return r->tunnel_has_routes ? ROUTER_DIRECT : ROUTER_TUNNEL;
    }
}

/* With split routes, DIRECT is what every destination outside them gets, so whoever can use the
 * proxy would reach the services that listen on this host's loopback, the cloud metadata service
 * and the link, with this process's address and user: the very places an unprivileged or remote
 * client must not get to. A tunnel verdict is left alone: there the address means a host behind
 * the VPN (or nothing). */
enum router_verdict router_decide(const struct router *r, const struct v2s_addr *dst)
{
    return router_refuses_local(r, dst) ? ROUTER_REJECT : router_lookup(r, dst);
}

int router_refuses_local(const struct router *r, const struct v2s_addr *dst)
{
    return !r->allow_direct_local && router_addr_is_local(dst) && router_lookup(r, dst) == ROUTER_DIRECT;
}

const char *router_verdict_name(enum router_verdict v)
{
    switch (v) {
    case ROUTER_TUNNEL:
        return "tunnel";
    case ROUTER_DIRECT:
        return "direct";
    case ROUTER_REJECT:
        return "reject";
    }
    return "unknown";
}

static char router_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

int router_name_under(const char *name, const char *domain, size_t dlen)
{
    if (dlen == 1 && domain[0] == '.')
        return 1; /* the root: every name (DOMAIN-ROUTE .) */
    size_t nlen = strlen(name);
    if (nlen > 0 && name[nlen - 1] == '.')
        nlen--;
    while (dlen > 0 && domain[0] == '.') { /* ".corp.example" means the same as "corp.example" */
        domain++;
        dlen--;
    }
    if (dlen > 0 && domain[dlen - 1] == '.')
        dlen--;
    if (dlen == 0 || nlen < dlen)
        return 0;
    const char *tail = name + nlen - dlen;
    if (nlen > dlen && tail[-1] != '.')
        return 0; /* "notcorp.example" is not under "corp.example" */
    for (size_t i = 0; i < dlen; i++)
        if (router_lower(tail[i]) != router_lower(domain[i]))
            return 0;
    return 1;
}

enum router_name_verdict router_name_decide(const struct router *r, const char *name)
{
    if (!r->tunnel_dns_known)
        return ROUTER_NAME_TUNNEL;
    if (!r->tunnel_has_dns)
        return ROUTER_NAME_HOST;
    enum router_others others = r->others;
    if (others == ROUTER_OTHERS_DEFAULT)
        others = r->tunnel_has_routes ? ROUTER_OTHERS_DIRECT : ROUTER_OTHERS_TUNNEL;
    if (others == ROUTER_OTHERS_TUNNEL || strchr(name, '.') == NULL)
        return ROUTER_NAME_TUNNEL;
    for (const char *d = r->tunnel_domains; d && *d;) {
        d += strspn(d, " ,");
        size_t dlen = strcspn(d, " ,");
        if (dlen > 0 && router_name_under(name, d, dlen))
            return ROUTER_NAME_TUNNEL;
        d += dlen;
    }
    if (others == ROUTER_OTHERS_DIRECT)
        return ROUTER_NAME_HOST;
    return r->tunnel_domains ? ROUTER_NAME_REJECT : ROUTER_NAME_TUNNEL;
}

const char *router_name_verdict_name(enum router_name_verdict v)
{
    switch (v) {
    case ROUTER_NAME_TUNNEL:
        return "the tunnel's DNS";
    case ROUTER_NAME_HOST:
        return "the host's resolver";
    case ROUTER_NAME_REJECT:
        return "refused";
    }
    return "unknown";
}
