/* The proxy auto-config (PAC) file for the HTTP listener: FindProxyForURL() sends to the proxy
 * what the router would carry through the tunnel and everything else DIRECT. Pure code. */
#ifndef VPN2SOCKS_ROUTE_PAC_H
#define VPN2SOCKS_ROUTE_PAC_H

struct router;

/* The PAC text (malloc'd, NUL-terminated; the caller frees it) for r, naming the proxy as
 * "PROXY proxy" (proxy is "host:port", "[v6]:port"; only [A-Za-z0-9.:[]_-] characters), or NULL
 * when out of memory or proxy has other characters.
 *
 * The answer agrees with the router (route/router.h):
 *   - an IPv4 literal: the router's entries, longest prefix first (a tie ordered as
 *     router_decide() breaks it), each with isInNet(); no match: --others;
 *   - an IPv6 literal (brackets and a %zone dropped; ::ffff:a.b.c.d is the IPv4 host): the
 *     same, compared by the PAC's own code (isInNetEx is Chrome's only);
 *   - a name: router_name_decide(): the tunnel's resolver -> PROXY, the host's -> DIRECT, never
 *     a lookup in the PAC (dnsResolve would ask the host's DNS for the VPN's names);
 *   - TUNNEL -> PROXY; DIRECT and REJECT -> DIRECT: what the proxy would refuse (--others reject,
 *     a local address) the browser may still reach itself, as it does without the PAC.
 * The tunnel's domains come from the VPN server: one with characters other than
 * [A-Za-z0-9._-] is left out rather than written into the script. */
char *router_pac(const struct router *r, const char *proxy);

#endif
