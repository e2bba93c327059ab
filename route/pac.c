/* The PAC file: a JavaScript FindProxyForURL() written from the router's table (route/pac.h).
 *
 * The router picks the longest matching prefix, a tie going to a user entry over a tunnel entry
 * and then to the more cautious verdict; the script tests the entries in exactly that order and
 * answers with the first that matches, which is the same pick. */
#include "route/pac.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "route/router.h"

struct pac_buf {
    char *text;
    size_t len, cap;
    int failed;
};

static void pac_printf(struct pac_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void pac_printf(struct pac_buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->text ? b->text + b->len : NULL, b->text ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->text && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 2048;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *grown = realloc(b->text, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->text = grown;
        b->cap = cap;
    }
}

struct pac_entry {
    const struct router_entry *e;
    int user;
    size_t index; /* in the router's table: equal entries keep their order */
};

static int pac_rank(enum router_verdict v)
{
    return v == ROUTER_REJECT ? 2 : v == ROUTER_DIRECT ? 1 : 0;
}

/* The router's order of preference: longer prefix, then user entry, then the more cautious. */
static int pac_entry_cmp(const void *pa, const void *pb)
{
    const struct pac_entry *a = pa, *b = pb;
    if (a->e->cidr.prefix != b->e->cidr.prefix)
        return a->e->cidr.prefix > b->e->cidr.prefix ? -1 : 1;
    if (a->user != b->user)
        return a->user ? -1 : 1;
    if (pac_rank(a->e->verdict) != pac_rank(b->e->verdict))
        return pac_rank(b->e->verdict) - pac_rank(a->e->verdict);
    return a->index < b->index ? -1 : 1;
}

static const char *pac_answer(enum router_verdict v)
{
    return v == ROUTER_TUNNEL ? "p" : "\"DIRECT\"";
}

static int pac_domain_ok(const char *d, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = d[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == '_'))
            return 0;
    }
    return 1;
}

static int pac_proxy_ok(const char *p)
{
    if (!p[0])
        return 0;
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr(".:[]_-", *p)))
            return 0;
    return 1;
}

/* The address rules of one family: a function v2s_v4(h, p) or v2s_v6(w, p). */
static void pac_address_rules(struct pac_buf *b, const struct router *r, const struct pac_entry *sorted, size_t n,
                              int family)
{
    if (family == AF_INET)
        pac_printf(b, "function v2s_v4(h, p) {\n");
    else
        pac_printf(b, "function v2s_v6(w, p) {\n");
    for (size_t i = 0; i < n; i++) {
        const struct v2s_cidr *c = &sorted[i].e->cidr;
        if (c->addr.family != family)
            continue;
        const char *answer = pac_answer(sorted[i].e->verdict);
        const uint8_t *a = c->addr.bytes;
        if (family == AF_INET) {
            uint32_t mask = c->prefix == 0 ? 0 : 0xFFFFFFFFu << (32 - c->prefix);
            pac_printf(b, "    if (isInNet(h, \"%u.%u.%u.%u\", \"%u.%u.%u.%u\")) return %s;\n", a[0], a[1], a[2], a[3],
                       mask >> 24, (mask >> 16) & 255, (mask >> 8) & 255, mask & 255, answer);
        } else {
            pac_printf(b, "    if (v2s_in6(w, [");
            for (int g = 0; g < 8; g++)
                pac_printf(b, "%s0x%x", g ? ", " : "", (unsigned)(a[2 * g] << 8 | a[2 * g + 1]));
            pac_printf(b, "], %u)) return %s;\n", c->prefix, answer);
        }
    }
    pac_printf(b, "    return %s;\n}\n\n", pac_answer(router_others_verdict(r)));
}

/* What FindProxyForURL answers for a name (h, lower case, n without a trailing dot). */
static void pac_name_rules(struct pac_buf *b, const struct router *r)
{
    if (router_others_verdict(r) == ROUTER_TUNNEL || !r->tunnel_dns_known) {
        /* Every name: with a full tunnel (or --others tunnel) whatever it resolves to goes
         * there; before the tunnel's first settings the proxy's resolver is the tunnel's. */
        pac_printf(b, "    return p;\n");
        return;
    }
    if (!r->tunnel_has_dns) {
        pac_printf(b, "    return \"DIRECT\"; /* the tunnel has no DNS servers: the host resolves names */\n");
        return;
    }
    pac_printf(b, "    if (isPlainHostName(h)) return p;\n");
    pac_printf(b, "    var n = h.charAt(h.length - 1) == \".\" ? h.substring(0, h.length - 1) : h;\n");
    for (const char *d = r->tunnel_domains; d && *d;) {
        d += strspn(d, " ,");
        size_t dlen = strcspn(d, " ,");
        const char *dom = d;
        size_t len = dlen;
        d += dlen;
        if (len == 0)
            continue;
        if (len == 1 && dom[0] == '.') {
            pac_printf(b, "    return p; /* the root domain holds every name */\n");
            return;
        }
        while (len > 0 && dom[0] == '.') {
            dom++;
            len--;
        }
        if (len > 0 && dom[len - 1] == '.')
            len--;
        if (len == 0 || !pac_domain_ok(dom, len))
            continue;
        char lower[256];
        if (len >= sizeof(lower))
            continue;
        for (size_t i = 0; i < len; i++)
            lower[i] = (char)((dom[i] >= 'A' && dom[i] <= 'Z') ? dom[i] + ('a' - 'A') : dom[i]);
        lower[len] = '\0';
        pac_printf(b, "    if (n == \"%s\" || dnsDomainIs(n, \".%s\")) return p;\n", lower, lower);
    }
    /* Other names: the host's resolver (--others direct, split routes), or refused by the proxy
     * (--others reject with the tunnel's domains named: DIRECT, see route/pac.h), or the tunnel's
     * resolver (--others reject and no domains named). */
    int tunnel = r->others == ROUTER_OTHERS_REJECT && !r->tunnel_domains;
    pac_printf(b, "    return %s;\n", tunnel ? "p" : "\"DIRECT\"");
}

char *router_pac(const struct router *r, const char *proxy)
{
    if (!pac_proxy_ok(proxy))
        return NULL;
    struct pac_entry *sorted = NULL;
    if (r->n_entries && !(sorted = malloc(r->n_entries * sizeof(*sorted))))
        return NULL;
    for (size_t i = 0; i < r->n_entries; i++) {
        sorted[i].e = &r->entries[i];
        sorted[i].user = i < r->n_user;
        sorted[i].index = i;
    }
    if (r->n_entries)
        qsort(sorted, r->n_entries, sizeof(*sorted), pac_entry_cmp);

    struct pac_buf b = {0};
    pac_printf(&b,
               "// vpn2socks: the tunnel's routes and DNS domains go to the proxy, everything else DIRECT.\n"
               "// Written from the live routes; fetched again, it follows what the VPN server pushes.\n\n");
    pac_printf(&b, "function FindProxyForURL(url, host) {\n"
                   "    var p = \"PROXY %s\";\n"
                   "    var h = host.toLowerCase();\n"
                   "    if (h.charAt(0) == \"[\") h = h.substring(1, h.length - 1);\n"
                   "    var z = h.indexOf(\"%%\");\n"
                   "    if (z >= 0) h = h.substring(0, z);\n"
                   "    if (/^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$/.test(h)) return v2s_v4(h, p);\n"
                   "    if (h.indexOf(\":\") >= 0) {\n"
                   "        var w = v2s_words(h);\n"
                   "        if (w[0] == 0 && w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0xffff)\n"
                   "            return v2s_v4((w[6] >> 8) + \".\" + (w[6] & 255) + \".\" + (w[7] >> 8) + \".\" + "
                   "(w[7] & 255), p);\n"
                   "        return v2s_v6(w, p);\n"
                   "    }\n",
               proxy);
    pac_name_rules(&b, r);
    pac_printf(&b, "}\n\n");
    pac_address_rules(&b, r, sorted, r->n_entries, AF_INET);
    pac_address_rules(&b, r, sorted, r->n_entries, AF_INET6);
    pac_printf(&b, "// An IPv6 address as eight 16-bit numbers.\n"
                   "function v2s_groups(s) {\n"
                   "    var r = [];\n"
                   "    var g = s ? s.split(\":\") : [];\n"
                   "    for (var i = 0; i < g.length; i++) {\n"
                   "        if (g[i].indexOf(\".\") >= 0) {\n"
                   "            var q = g[i].split(\".\");\n"
                   "            r.push(q[0] * 256 + q[1] * 1, q[2] * 256 + q[3] * 1);\n"
                   "        } else\n"
                   "            r.push(parseInt(g[i], 16));\n"
                   "    }\n"
                   "    return r;\n"
                   "}\n\n"
                   "function v2s_words(h) {\n"
                   "    var t = h.split(\"::\");\n"
                   "    var a = v2s_groups(t[0]), b = t.length > 1 ? v2s_groups(t[1]) : [];\n"
                   "    while (a.length + b.length < 8) a.push(0);\n"
                   "    return a.concat(b);\n"
                   "}\n\n"
                   "function v2s_in6(w, net, len) {\n"
                   "    for (var i = 0; i < 8 && len > 0; i++, len -= 16) {\n"
                   "        var m = len >= 16 ? 0xffff : (0xffff << (16 - len)) & 0xffff;\n"
                   "        if ((w[i] & m) != net[i]) return false;\n"
                   "    }\n"
                   "    return true;\n"
                   "}\n");
    free(sorted);
    if (b.failed) {
        free(b.text);
        return NULL;
    }
    return b.text;
}
