/* Tunnel settings and the openconnect / vpnc-script environment that carries them.
 *
 * What openconnect (script.c, prepare_script_env) actually sets, which is what this reads:
 *   INTERNAL_IP4_ADDRESS, INTERNAL_IP4_NETMASK (dotted; also NETMASKLEN and NETADDR, only when the
 *   netmask is valid), INTERNAL_IP4_MTU (always set, from the negotiated MTU), INTERNAL_IP4_DNS
 *   (up to three servers joined by spaces; newer openconnect puts IPv6 servers here too),
 *   INTERNAL_IP6_ADDRESS, INTERNAL_IP6_NETMASK ("addr/len": the address *and* its prefix),
 *   CISCO_DEF_DOMAIN (as the server sent it: space or comma separated),
 *   CISCO_SPLIT_INC / CISCO_SPLIT_EXC = N with _%d_ADDR, _%d_MASK, _%d_MASKLEN (IPv4, host bits
 *   already cleared), CISCO_IPV6_SPLIT_INC / CISCO_IPV6_SPLIT_EXC = N with _%d_ADDR, _%d_MASKLEN.
 * openconnect itself never sets INTERNAL_IP6_DNS; vpnc-script documents it and other producers
 * (vpnc, hand-written wrappers) may, so it is read as well. Split includes of one family only
 * add the other family's default route, as vpnc-script would (settings_default_routes()).
 *
 * Policy: a value that is present but malformed fails the whole parse with a reason naming the
 * variable, because a silently dropped route or DNS server sends traffic the wrong way. An empty
 * value counts as unset (shell wrappers export empty variables). */
#include "tunnel/settings.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/errmsg.h"

/* Upper bound on the count in CISCO_SPLIT_INC and friends. Real concentrators push tens to a few
 * hundred; the bound keeps a hostile count from costing millions of lookups. */
enum { SETTINGS_MAX_ROUTES = 4096 };

/* MTU bounds: 68 is the smallest MTU IPv4 allows (RFC 791); 65535 is the largest IP datagram.
 * 0 means "unknown" (openconnect exports its MTU even before one was negotiated). A small MTU with
 * IPv6 (which needs 1280) is judged once the command line had its say
 * (tunnel_settings_ipv6_mtu()). */
enum { SETTINGS_MTU_MIN = 68, SETTINGS_MTU_MAX = 65535 };

/* Longest environment variable name we build: "CISCO_IPV6_SPLIT_INC_4095_MASKLEN" and room. */
enum { SETTINGS_NAME_MAX = 64 };

void tunnel_settings_init(struct tunnel_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->prefix4 = 32;
    s->prefix6 = 128;
}

void tunnel_settings_free(struct tunnel_settings *s)
{
    free(s->domains);
    free(s->routes);
    free(s->excludes);
    tunnel_settings_init(s);
}

/* Below 1280 the VPN server's own tun carries no IPv6 (Linux turns IPv6 off on such a link;
 * OpenVPN on Linux then fails to add the address and exits, ocserv gives the client none), and
 * our packets would leave in fragments under 1280, which Linux receivers drop. So IPv6 stays off
 * and IPv4 works. The IPv6 routes stay: what the VPN routes through the tunnel fails there
 * rather than leaving directly. */
int tunnel_settings_ipv6_mtu(struct tunnel_settings *s, char *msg, size_t cap)
{
    if (!s->addr6.family || s->mtu == 0 || s->mtu >= TUNNEL_IPV6_MTU_MIN)
        return 0;
    if (!s->addr4.family) {
        snprintf(msg, cap, "the tunnel MTU %u is below IPv6's minimum of %u", s->mtu,
                 (unsigned)TUNNEL_IPV6_MTU_MIN);
        return -EINVAL;
    }
    char a6[V2S_ADDR_STRLEN];
    v2s_addr_format(&s->addr6, a6, sizeof(a6));
    snprintf(msg, cap, "the tunnel MTU %u is below IPv6's minimum of %u: IPv6 (%s) left off on this tunnel, "
             "IPv4 only", s->mtu, (unsigned)TUNNEL_IPV6_MTU_MIN, a6);
    memset(&s->addr6, 0, sizeof(s->addr6));
    s->prefix6 = 0;
    return 1;
}

int tunnel_settings_add_route(struct tunnel_settings *s, const struct v2s_cidr *c, int exclude)
{
    struct v2s_cidr **list = exclude ? &s->excludes : &s->routes;
    size_t *n = exclude ? &s->n_excludes : &s->n_routes;
    struct v2s_cidr *grown = realloc(*list, (*n + 1) * sizeof(**list));
    if (grown == NULL)
        return -ENOMEM;
    grown[*n] = *c;
    *list = grown;
    (*n)++;
    return 0;
}

/* Parsing context: where variables come from and where the one-line reason goes. */
struct settings_env {
    tunnel_getenv_fn get;
    void *arg;
    char *err;
    size_t errcap;
};

/* Returns the value, or NULL when unset or empty. */
static const char *settings_get(const struct settings_env *env, const char *name)
{
    const char *v = env->get(env->arg, name);
    if (v == NULL || v[0] == '\0')
        return NULL;
    return v;
}

/* Writes "NAME=VALUE: why" with the value shortened and stripped of control characters, so a
 * hostile value cannot forge log lines. Always returns -EINVAL. */
static int settings_fail(const struct settings_env *env, const char *name, const char *value,
                         const char *why)
{
    char shown[48];
    if (value == NULL)
        return v2s_fail(env->err, env->errcap, "%s: %s", name, why);
    return v2s_fail(env->err, env->errcap, "%s=\"%s\": %s", name, v2s_shown(value, shown, sizeof(shown)), why);
}

static void settings_name(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void settings_name(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, SETTINGS_NAME_MAX, fmt, ap);
    va_end(ap);
}

static int settings_is_sep(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == ',';
}

/* Adds every address of a space/comma separated list; past TUNNEL_MAX_DNS the rest are checked
 * but not kept. Duplicates (the same server in IP4_DNS and IP6_DNS) are kept once. */
static int settings_read_dns(struct tunnel_settings *s, const struct settings_env *env,
                             const char *name)
{
    const char *v = settings_get(env, name);
    if (v == NULL)
        return 0;
    const char *p = v;
    for (;;) {
        while (settings_is_sep(*p))
            p++;
        if (*p == '\0')
            return 0;
        const char *start = p;
        while (*p != '\0' && !settings_is_sep(*p))
            p++;
        char text[64];
        struct v2s_addr a;
        size_t len = (size_t)(p - start);
        if (len >= sizeof(text))
            return settings_fail(env, name, v, "not a list of IP addresses");
        memcpy(text, start, len);
        text[len] = '\0';
        if (v2s_addr_parse(&a, text) != 0)
            return settings_fail(env, name, v, "not a list of IP addresses");
        int dup = 0;
        for (size_t i = 0; i < s->n_dns; i++)
            dup |= v2s_addr_equal(&s->dns[i], &a);
        if (!dup && s->n_dns < TUNNEL_MAX_DNS)
            s->dns[s->n_dns++] = a;
    }
}

/* Joins the tokens of CISCO_DEF_DOMAIN (the search domains) and CISCO_SPLIT_DNS (the split-DNS
 * domains, comma-separated) with single spaces, each domain once. */
static int settings_read_domains(struct tunnel_settings *s, const struct settings_env *env)
{
    static const char *const vars[] = {"CISCO_DEF_DOMAIN", "CISCO_SPLIT_DNS"};
    size_t cap = 1;
    for (size_t i = 0; i < 2; i++) {
        const char *v = settings_get(env, vars[i]);
        cap += v ? strlen(v) + 1 : 0;
    }
    char *out = malloc(cap);
    if (out == NULL)
        return -ENOMEM;
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < 2; i++) {
        const char *v = settings_get(env, vars[i]);
        for (const char *p = v; p && *p;) {
            while (settings_is_sep(*p))
                p++;
            size_t len = 0;
            while (p[len] != '\0' && !settings_is_sep(p[len]))
                len++;
            for (size_t k = 0; k < len; k++) {
                unsigned char c = (unsigned char)p[k];
                if (c < 0x20 || c == 0x7F) {
                    free(out);
                    return settings_fail(env, vars[i], v, "control character in domain list");
                }
            }
            int seen = 0;
            for (size_t at = 0; len > 0 && at < n && !seen; at += strcspn(out + at, " ") + 1)
                seen = strncmp(out + at, p, len) == 0 && (out[at + len] == ' ' || at + len == n);
            if (len > 0 && !seen) {
                if (n > 0)
                    out[n++] = ' ';
                memcpy(out + n, p, len);
                n += len;
                out[n] = '\0'; /* for the next one's look for duplicates */
            }
            p += len;
        }
    }
    out[n] = '\0';
    if (n == 0) {
        free(out);
        return 0;
    }
    s->domains = out;
    return 0;
}

static int settings_read_ip4(struct tunnel_settings *s, const struct settings_env *env)
{
    const char *v = settings_get(env, "INTERNAL_IP4_ADDRESS");
    if (v == NULL)
        return 0;
    if (v2s_addr_parse(&s->addr4, v) != 0 || s->addr4.family != AF_INET) {
        memset(&s->addr4, 0, sizeof(s->addr4));
        return settings_fail(env, "INTERNAL_IP4_ADDRESS", v, "not an IPv4 address");
    }
    /* openconnect sets NETMASK and NETMASKLEN together; other producers may give only one. */
    const char *mask = settings_get(env, "INTERNAL_IP4_NETMASK");
    const char *masklen = settings_get(env, "INTERNAL_IP4_NETMASKLEN");
    if (mask != NULL) {
        int prefix = v2s_netmask_prefix(mask);
        if (prefix < 0)
            return settings_fail(env, "INTERNAL_IP4_NETMASK", mask, "not a contiguous IPv4 netmask");
        s->prefix4 = (unsigned)prefix;
    } else if (masklen != NULL) {
        unsigned long prefix;
        if (v2s_parse_uint(masklen, 999999999UL, &prefix) != 0 || prefix > 32)
            return settings_fail(env, "INTERNAL_IP4_NETMASKLEN", masklen, "not a number in 0..32");
        s->prefix4 = (unsigned)prefix;
    }
    return 0;
}

static int settings_read_ip6(struct tunnel_settings *s, const struct settings_env *env)
{
    const char *v = settings_get(env, "INTERNAL_IP6_ADDRESS");
    const char *mask = settings_get(env, "INTERNAL_IP6_NETMASK");
    if (v != NULL && (v2s_addr_parse(&s->addr6, v) != 0 || s->addr6.family != AF_INET6)) {
        memset(&s->addr6, 0, sizeof(s->addr6));
        return settings_fail(env, "INTERNAL_IP6_ADDRESS", v, "not an IPv6 address");
    }
    if (mask == NULL)
        return 0;
    /* openconnect's netmask6 is "addr/len"; a bare "len" or "/len" is accepted from others. */
    unsigned long prefix;
    const char *len_text = mask[0] == '/' ? mask + 1 : mask;
    if (strchr(len_text, ':') == NULL) {
        if (v2s_parse_uint(len_text, 999999999UL, &prefix) != 0 || prefix > 128)
            return settings_fail(env, "INTERNAL_IP6_NETMASK", mask, "not addr/len or a prefix length");
        s->prefix6 = (unsigned)prefix;
        return 0;
    }
    struct v2s_cidr c;
    if (strchr(mask, '/') == NULL || v2s_cidr_parse(&c, mask, 1) != 0 || c.addr.family != AF_INET6)
        return settings_fail(env, "INTERNAL_IP6_NETMASK", mask, "not an IPv6 addr/len");
    s->prefix6 = c.prefix;
    if (s->addr6.family == 0) {
        /* openconnect derives INTERNAL_IP6_ADDRESS from this itself; do the same for others. */
        char host[64];
        size_t hl = (size_t)(strchr(mask, '/') - mask);
        memcpy(host, mask, hl); /* hl < 64: v2s_cidr_parse refused longer */
        host[hl] = '\0';
        v2s_addr_parse(&s->addr6, host);
    }
    return 0;
}

static int settings_read_mtu(struct tunnel_settings *s, const struct settings_env *env)
{
    const char *v = settings_get(env, "INTERNAL_IP4_MTU");
    unsigned long mtu;
    if (v == NULL)
        return 0;
    if (v2s_parse_uint(v, 999999999UL, &mtu) != 0 ||
        (mtu != 0 && (mtu < SETTINGS_MTU_MIN || mtu > SETTINGS_MTU_MAX)))
        return settings_fail(env, "INTERNAL_IP4_MTU", v, "not a number in 68..65535 (or 0)");
    s->mtu = (unsigned)mtu;
    return 0;
}

/* Reads one list of split routes: base is e.g. "CISCO_SPLIT_INC" or "CISCO_IPV6_SPLIT_EXC". IPv4
 * entries take _MASKLEN, else _MASK; IPv6 entries have only _MASKLEN. Host bits are cleared, as
 * openconnect does itself (with a warning) before it exports them. */
static int settings_read_split(struct tunnel_settings *s, const struct settings_env *env,
                               const char *base, int family, int exclude)
{
    const char *count_text = settings_get(env, base);
    unsigned long count;
    char name[SETTINGS_NAME_MAX];
    if (count_text == NULL)
        return 0;
    if (v2s_parse_uint(count_text, 999999999UL, &count) != 0 || count > SETTINGS_MAX_ROUTES)
        return settings_fail(env, base, count_text, "not a route count in 0..4096");

    for (unsigned long i = 0; i < count; i++) {
        struct v2s_addr a;
        struct v2s_cidr c;
        unsigned long prefix;

        settings_name(name, "%s_%lu_ADDR", base, i);
        const char *addr = settings_get(env, name);
        if (addr == NULL)
            return settings_fail(env, name, NULL, "missing, but the count includes it");
        if (v2s_addr_parse(&a, addr) != 0 || a.family != family)
            return settings_fail(env, name, addr,
                                 family == AF_INET ? "not an IPv4 address" : "not an IPv6 address");

        settings_name(name, "%s_%lu_MASKLEN", base, i);
        const char *masklen = settings_get(env, name);
        if (masklen != NULL) {
            if (v2s_parse_uint(masklen, 999999999UL, &prefix) != 0 || prefix > (family == AF_INET ? 32 : 128))
                return settings_fail(env, name, masklen, "not a prefix length");
        } else if (family == AF_INET) {
            settings_name(name, "%s_%lu_MASK", base, i);
            const char *mask = settings_get(env, name);
            if (mask == NULL)
                return settings_fail(env, name, NULL, "missing, and so is _MASKLEN");
            int p = v2s_netmask_prefix(mask);
            if (p < 0)
                return settings_fail(env, name, mask, "not a contiguous IPv4 netmask");
            prefix = (unsigned long)p;
        } else {
            return settings_fail(env, name, NULL, "missing");
        }

        v2s_cidr_make(&c, &a, (unsigned)prefix);
        int r = tunnel_settings_add_route(s, &c, exclude);
        if (r < 0)
            return r;
    }
    return 0;
}

/* vpnc-script routes each family on its own: CISCO_SPLIT_INC decides IPv4 (its routes, else the
 * default route through the tunnel when it has an IPv4 address), CISCO_IPV6_SPLIT_INC IPv6. The
 * router knows only "the VPN sent split routes", after which the rest goes direct; so when the
 * routes are of one family only, the other family's default route (a /0 through the tunnel) is
 * made explicit, for a family the tunnel has an address of. Without it, a server that splits IPv4
 * and tunnels all IPv6 (or the reverse) had that other family's traffic go direct, outside the
 * VPN. */
static int settings_default_routes(struct tunnel_settings *s)
{
    int has4 = 0, has6 = 0;
    for (size_t i = 0; i < s->n_routes; i++) {
        has4 |= s->routes[i].addr.family == AF_INET;
        has6 |= s->routes[i].addr.family == AF_INET6;
    }
    if (has4 == has6)
        return 0; /* a full tunnel, or split routes of both families */
    int family = has4 ? AF_INET6 : AF_INET;
    if ((family == AF_INET ? s->addr4.family : s->addr6.family) != family)
        return 0; /* vpnc-script leaves a family the tunnel has no address of alone */
    struct v2s_cidr all;
    memset(&all, 0, sizeof(all));
    all.addr.family = (uint8_t)family;
    return tunnel_settings_add_route(s, &all, 0);
}

int tunnel_settings_from_env(struct tunnel_settings *s, tunnel_getenv_fn get, void *arg,
                             char *err, size_t errcap)
{
    struct settings_env env = {.get = get, .arg = arg, .err = err, .errcap = errcap};
    int r;

    tunnel_settings_init(s);
    if (err != NULL && errcap > 0)
        err[0] = '\0';

    if ((r = settings_read_ip4(s, &env)) < 0 || (r = settings_read_ip6(s, &env)) < 0 ||
        (r = settings_read_mtu(s, &env)) < 0 ||
        (r = settings_read_dns(s, &env, "INTERNAL_IP4_DNS")) < 0 ||
        (r = settings_read_dns(s, &env, "INTERNAL_IP6_DNS")) < 0 ||
        (r = settings_read_domains(s, &env)) < 0 ||
        (r = settings_read_split(s, &env, "CISCO_SPLIT_INC", AF_INET, 0)) < 0 ||
        (r = settings_read_split(s, &env, "CISCO_IPV6_SPLIT_INC", AF_INET6, 0)) < 0 ||
        (r = settings_read_split(s, &env, "CISCO_SPLIT_EXC", AF_INET, 1)) < 0 ||
        (r = settings_read_split(s, &env, "CISCO_IPV6_SPLIT_EXC", AF_INET6, 1)) < 0 ||
        (r = settings_default_routes(s)) < 0)
        goto out;

    if (s->addr4.family == 0 && s->addr6.family == 0) {
        r = settings_fail(&env, "INTERNAL_IP4_ADDRESS", NULL,
                          "missing, and so is INTERNAL_IP6_ADDRESS: the tunnel has no address");
        goto out;
    }
    r = 0;
out:
    if (r == -ENOMEM && err != NULL && errcap > 0)
        snprintf(err, errcap, "out of memory reading the tunnel settings");
    return r;
}

int tunnel_settings_from_script_env(struct tunnel_settings *s, tunnel_getenv_fn get, void *arg,
                                    char *err, size_t errcap)
{
    struct settings_env env = {.get = get, .arg = arg};
    /* Empty counts as unset here too (see "Policy" at the top). */
    if (!settings_get(&env, "INTERNAL_IP4_ADDRESS") && !settings_get(&env, "INTERNAL_IP6_ADDRESS")) {
        tunnel_settings_init(s);
        if (err != NULL && errcap > 0)
            err[0] = '\0';
        return 0;
    }
    return tunnel_settings_from_env(s, get, arg, err, errcap);
}

struct tunnel_env_var {
    const char *entry; /* "NAME=VALUE" */
    size_t name_len;
    size_t order; /* its place in envp: of two with the same name, the first wins, as in getenv() */
};

static int settings_env_cmp_name(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int settings_env_cmp(const void *x, const void *y)
{
    const struct tunnel_env_var *a = x, *b = y;
    int c = settings_env_cmp_name(a->entry, a->name_len, b->entry, b->name_len);
    if (c != 0)
        return c;
    return a->order < b->order ? -1 : a->order > b->order;
}

int tunnel_env_init(struct tunnel_env *e, char *const *envp)
{
    size_t n = 0;
    e->vars = NULL;
    e->n = 0;
    while (envp[n] != NULL)
        n++;
    if (n == 0)
        return 0;
    if (!(e->vars = malloc(n * sizeof(*e->vars))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(envp[i], '=');
        if (eq == NULL)
            continue; /* getenv() never matches it */
        e->vars[e->n++] = (struct tunnel_env_var){.entry = envp[i], .name_len = (size_t)(eq - envp[i]), .order = i};
    }
    qsort(e->vars, e->n, sizeof(*e->vars), settings_env_cmp);
    /* Keeps the first of each name. */
    size_t kept = 0;
    for (size_t i = 0; i < e->n; i++)
        if (kept == 0 || settings_env_cmp_name(e->vars[kept - 1].entry, e->vars[kept - 1].name_len,
                                               e->vars[i].entry, e->vars[i].name_len) != 0)
            e->vars[kept++] = e->vars[i];
    e->n = kept;
    return 0;
}

void tunnel_env_free(struct tunnel_env *e)
{
    free(e->vars);
    e->vars = NULL;
    e->n = 0;
}

const char *tunnel_env_get(void *arg, const char *name)
{
    const struct tunnel_env *e = arg;
    size_t len = strlen(name), lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct tunnel_env_var *v = &e->vars[mid];
        int c = settings_env_cmp_name(name, len, v->entry, v->name_len);
        if (c == 0)
            return v->entry + v->name_len + 1;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

int tunnel_env_vpnfd(tunnel_getenv_fn get, void *arg, int *fd, char *err, size_t errcap)
{
    const char *env = get(arg, "VPNFD");
    if (!env) {
        /* openconnect (and vpnc) set reason only for a vpnc-script, which configures a TUN device
         * the VPN client made; with --script-tun it is never set. So reason without VPNFD means
         * --script without --script-tun: say that, rather than only that no tunnel was given. */
        const char *reason = get(arg, "reason");
        char shown[48];
        if (reason && *reason)
            snprintf(err, errcap, "the VPN client ran me as a vpnc-script (reason=%s), which hands over no "
                     "packet socket: give openconnect --script-tun too (openconnect --script-tun --script "
                     "\"vpn2socks ...\")", v2s_shown(reason, shown, sizeof(shown)));
        else if (errcap > 0)
            err[0] = '\0';
        return -ENOENT;
    }
    unsigned long v;
    if (v2s_parse_uint(env, 65535, &v) != 0) {
        /* Escaped, as every other value of this environment is (settings_fail()). */
        char shown[48];
        snprintf(err, errcap, "VPNFD=%s is not a file descriptor number", v2s_shown(env, shown, sizeof(shown)));
        return -EINVAL;
    }
    *fd = (int)v;
    return 0;
}

long tunnel_env_vpnpid(tunnel_getenv_fn get, void *arg)
{
    const char *env = get(arg, "VPNPID");
    char *end;
    if (!env || !*env)
        return 0;
    long pid = strtol(env, &end, 10);
    if (*end || pid <= 0)
        return 0;
    return pid;
}
