/* The options a config file shares with a push: routes, DNS servers, search domains,
 * redirect-gateway. One implementation, so a route reads the same from a .ovpn file as from a
 * server.
 *
 * What it guarantees:
 * - A known option with a value we cannot read fails with a reason, because a dropped route or
 *   DNS server sends traffic the wrong way; the Windows-only dhcp-option types, unknown dns
 *   sub-options and unknown redirect-gateway flags are ignored, as a newer server may add some.
 * - Routes are numeric (names are not resolved); the special gateways vpn_gateway and
 *   remote_host add nothing, net_gateway makes the route an exclude. A route repeated is kept
 *   once, and each list holds at most SOPT_MAX_ROUTES, as tunnel/settings.c.
 * - DNS servers are kept once each, up to TUNNEL_MAX_DNS; search domains are a space-separated
 *   list of at most SOPT_MAX_DOMAINS bytes, each domain once, no control characters or commas.
 * - No logging and no I/O: errors go back in (err, errcap). */
#include "tunnel/openvpn/settings_opt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/errmsg.h"

enum {
    SOPT_MAX_ROUTES = 4096,    /* per list, as tunnel/settings.c; servers push tens to hundreds */
    SOPT_MAX_DOMAINS = 4096,   /* bytes of the space-separated domain list */
    SOPT_DOMAIN_MAX = 253,     /* longest DNS name in text form */
    SOPT_SHOWN_MAX = 48,       /* how much of a hostile value an error message shows */
};

int ovpn_option_bad(char *err, size_t errcap, const char *option, const char *value, const char *why)
{
    char shown[SOPT_SHOWN_MAX];
    return v2s_fail(err, errcap, "%s '%s': %s", option, v2s_shown(value, shown, sizeof(shown)), why);
}

static int sopt_is_special_gateway(const char *text)
{
    return strcmp(text, "vpn_gateway") == 0 || strcmp(text, "net_gateway") == 0 ||
           strcmp(text, "remote_host") == 0;
}

static int sopt_add_route(struct tunnel_settings *s, const struct v2s_cidr *c, int exclude, char *err,
                          size_t errcap)
{
    const struct v2s_cidr *list = exclude ? s->excludes : s->routes;
    size_t n = exclude ? s->n_excludes : s->n_routes;
    for (size_t i = 0; i < n; i++)
        if (list[i].prefix == c->prefix && v2s_addr_equal(&list[i].addr, &c->addr))
            return 0; /* servers repeat routes (redirect-gateway twice, a route in two parts) */
    if (n >= SOPT_MAX_ROUTES)
        return v2s_fail(err, errcap, "more than %d routes", SOPT_MAX_ROUTES);
    return tunnel_settings_add_route(s, c, exclude);
}

/* OpenVPN takes "default" for a route's netmask, gateway or metric as that argument left out
 * (route.c is_route_parm_defined): a config may write "route 10.1.0.0 255.255.0.0 default 50". */
static int sopt_is_default(const char *text)
{
    return strcmp(text, "default") == 0;
}

/* route network [netmask [gateway [metric]]] */
static int sopt_route4(struct tunnel_settings *s, char **w, int n, char *err, size_t errcap)
{
    struct v2s_addr net;
    struct v2s_cidr c;
    int prefix = 32;
    int exclude = 0;

    if (n < 2 || n > 5)
        return v2s_fail(err, errcap, "route takes 1 to 4 arguments");
    if (n >= 4 && !sopt_is_default(w[3])) {
        if (strcmp(w[3], "net_gateway") == 0)
            exclude = 1;
        else if (!sopt_is_special_gateway(w[3]) &&
                 (v2s_addr_parse(&net, w[3]) != 0 || net.family != AF_INET))
            return ovpn_option_bad(err, errcap, "route gateway", w[3], "not an IPv4 address");
    }
    if (n >= 3 && !sopt_is_default(w[2])) {
        prefix = v2s_netmask_prefix(w[2]);
        if (prefix < 0)
            return ovpn_option_bad(err, errcap, "route netmask", w[2], "not an IPv4 netmask");
    }
    /* The tunnel's own gateway and the VPN server are reached anyway; nothing to add. */
    if (sopt_is_special_gateway(w[1]))
        return 0;
    if (v2s_addr_parse(&net, w[1]) != 0 || net.family != AF_INET)
        return ovpn_option_bad(err, errcap, "route", w[1], "not a numeric IPv4 address (names are not resolved)");
    v2s_cidr_make(&c, &net, (unsigned)prefix); /* OpenVPN only warns about host bits */
    return sopt_add_route(s, &c, exclude, err, errcap);
}

/* route-ipv6 prefix[/bits] [gateway [metric]] */
static int sopt_route6(struct tunnel_settings *s, char **w, int n, char *err, size_t errcap)
{
    struct v2s_cidr c;
    struct v2s_addr gw;
    int exclude = 0;

    if (n < 2 || n > 4)
        return v2s_fail(err, errcap, "route-ipv6 takes 1 to 3 arguments");
    if (n >= 3 && !sopt_is_default(w[2])) {
        if (strcmp(w[2], "net_gateway") == 0)
            exclude = 1;
        else if (v2s_addr_parse(&gw, w[2]) != 0 || gw.family != AF_INET6)
            return ovpn_option_bad(err, errcap, "route-ipv6 gateway", w[2], "not an IPv6 address");
    }
    if (v2s_cidr_parse(&c, w[1], 1) != 0 || c.addr.family != AF_INET6)
        return ovpn_option_bad(err, errcap, "route-ipv6", w[1], "not an IPv6 prefix");
    return sopt_add_route(s, &c, exclude, err, errcap);
}

static int sopt_add_dns(struct tunnel_settings *s, const char *text, char *err, size_t errcap)
{
    struct v2s_addr a;
    if (v2s_addr_parse(&a, text) != 0)
        return ovpn_option_bad(err, errcap, "DNS server", text, "not an IP address");
    for (size_t i = 0; i < s->n_dns; i++)
        if (v2s_addr_equal(&s->dns[i], &a))
            return 0;
    if (s->n_dns < TUNNEL_MAX_DNS)
        s->dns[s->n_dns++] = a;
    return 0;
}

/* Appends one domain to the space-separated list, once. */
static int sopt_add_domain(struct tunnel_settings *s, const char *d, char *err, size_t errcap)
{
    size_t len = strlen(d);
    if (len == 0 || len > SOPT_DOMAIN_MAX)
        return ovpn_option_bad(err, errcap, "domain", d, "not a DNS name");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c <= 0x20 || c == 0x7F || c == ',')
            return ovpn_option_bad(err, errcap, "domain", d, "not a DNS name");
    }
    size_t have = s->domains ? strlen(s->domains) : 0;
    if (s->domains != NULL) {
        for (const char *p = s->domains; (p = strstr(p, d)) != NULL; p++)
            if ((p == s->domains || p[-1] == ' ') && (p[len] == '\0' || p[len] == ' '))
                return 0;
    }
    if (have + 1 + len > SOPT_MAX_DOMAINS)
        return v2s_fail(err, errcap, "the search domains are longer than %d bytes", SOPT_MAX_DOMAINS);
    char *grown = realloc(s->domains, have + 1 + len + 1);
    if (grown == NULL)
        return -ENOMEM;
    if (have > 0)
        grown[have++] = ' ';
    memcpy(grown + have, d, len + 1);
    s->domains = grown;
    return 0;
}

/* dhcp-option TYPE [value]: DNS servers and domains; the Windows-only types are ignored. */
static int sopt_dhcp_option(struct tunnel_settings *s, char **w, int n, char *err, size_t errcap)
{
    const char *type = w[1];
    int is_dns = strcmp(type, "DNS") == 0 || strcmp(type, "DNS6") == 0;
    /* DOMAIN-ROUTE (OpenVPN 2.6): names under it go to the VPN's DNS; for us every domain is
     * both searched and routed (route/router.h, router_name_decide()). */
    int is_domain = strcmp(type, "DOMAIN") == 0 || strcmp(type, "DOMAIN-SEARCH") == 0 ||
                    strcmp(type, "DOMAIN-ROUTE") == 0 || strcmp(type, "ADAPTER_DOMAIN_SUFFIX") == 0;
    if (!is_dns && !is_domain)
        return 0;
    if (n != 3)
        return ovpn_option_bad(err, errcap, "dhcp-option", type, "takes exactly one value");
    return is_dns ? sopt_add_dns(s, w[2], err, errcap) : sopt_add_domain(s, w[2], err, errcap);
}

/* One address of "dns server N address A ...": "A", "A:port" (IPv4) or "[A]:port". The port is
 * dropped: the resolver over the tunnel talks to port 53. */
static int sopt_dns_address(struct tunnel_settings *s, const char *text, char *err, size_t errcap)
{
    char host[64];
    size_t len = strlen(text);
    const char *colon = strchr(text, ':');
    if (len >= sizeof(host))
        return ovpn_option_bad(err, errcap, "dns server address", text, "not an IP address");
    memcpy(host, text, len + 1);
    if (text[0] == '[') {
        char *close = strchr(host, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            return ovpn_option_bad(err, errcap, "dns server address", text, "not an IP address");
        *close = '\0';
        return sopt_add_dns(s, host + 1, err, errcap);
    }
    if (colon != NULL && strchr(colon + 1, ':') == NULL)
        host[colon - text] = '\0'; /* IPv4 with a port; two colons or more is IPv6 */
    return sopt_add_dns(s, host, err, errcap);
}

/* OpenVPN 2.6's dns option: server addresses, search domains and resolve-domains (the split-DNS
 * domains, kept with the others); the rest (DNSSEC, DoT) is for the host's resolver and is
 * ignored. */
static int sopt_dns(struct tunnel_settings *s, char **w, int n, char *err, size_t errcap)
{
    unsigned long prio;
    if (n < 2)
        return v2s_fail(err, errcap, "dns needs arguments");
    if (strcmp(w[1], "search-domains") == 0) {
        for (int i = 2; i < n; i++) {
            int r = sopt_add_domain(s, w[i], err, errcap);
            if (r < 0)
                return r;
        }
        return 0;
    }
    if (strcmp(w[1], "server") != 0)
        return 0;
    if (n < 5)
        return v2s_fail(err, errcap, "dns server needs a priority, a type and a value");
    /* The priority may be negative in a config file; only its syntax matters here. */
    if (v2s_parse_uint(w[2][0] == '-' ? w[2] + 1 : w[2], 1000000, &prio) != 0)
        return ovpn_option_bad(err, errcap, "dns server priority", w[2], "not a number");
    if (strcmp(w[3], "resolve-domains") == 0) {
        for (int i = 4; i < n; i++) {
            int r = sopt_add_domain(s, w[i], err, errcap);
            if (r < 0)
                return r;
        }
        return 0;
    }
    if (strcmp(w[3], "address") != 0)
        return 0;
    for (int i = 4; i < n; i++) {
        int r = sopt_dns_address(s, w[i], err, errcap);
        if (r < 0)
            return r;
    }
    return 0;
}

/* redirect-gateway [flags]: everything goes through the tunnel. redirect-private sets the same
 * flags without the default route. Unknown flags are ignored, as a newer server may add some. */
static int sopt_redirect(struct tunnel_settings *s, int *redirect_gateway, char **w, int n, char *err,
                         size_t errcap)
{
    int ipv4 = 1, ipv6 = 0;
    struct v2s_cidr all;
    struct v2s_addr any;
    int r;

    if (strcmp(w[0], "redirect-private") == 0)
        return 0;
    for (int i = 1; i < n; i++) {
        if (strcmp(w[i], "!ipv4") == 0)
            ipv4 = 0;
        else if (strcmp(w[i], "ipv6") == 0)
            ipv6 = 1;
    }
    if (ipv4) {
        v2s_addr_parse(&any, "0.0.0.0");
        v2s_cidr_make(&all, &any, 0);
        if ((r = sopt_add_route(s, &all, 0, err, errcap)) < 0)
            return r;
    }
    if (ipv6) {
        v2s_addr_parse(&any, "::");
        v2s_cidr_make(&all, &any, 0);
        if ((r = sopt_add_route(s, &all, 0, err, errcap)) < 0)
            return r;
    }
    if (redirect_gateway != NULL)
        *redirect_gateway = 1;
    return 0;
}

int ovpn_settings_option(struct tunnel_settings *s, int *redirect_gateway, char **words, int n, char *err,
                         size_t errcap)
{
    const char *name = words[0];
    int r;
    if (strcmp(name, "route") == 0)
        r = sopt_route4(s, words, n, err, errcap);
    else if (strcmp(name, "route-ipv6") == 0)
        r = sopt_route6(s, words, n, err, errcap);
    else if (strcmp(name, "dhcp-option") == 0)
        r = n < 2 ? v2s_fail(err, errcap, "dhcp-option needs a type")
                  : sopt_dhcp_option(s, words, n, err, errcap);
    else if (strcmp(name, "dns") == 0)
        r = sopt_dns(s, words, n, err, errcap);
    else if (strcmp(name, "redirect-gateway") == 0 || strcmp(name, "redirect-private") == 0)
        r = sopt_redirect(s, redirect_gateway, words, n, err, errcap);
    else
        return 0;
    if (r == -ENOMEM)
        v2s_fail(err, errcap, "out of memory");
    return r < 0 ? r : 1;
}
