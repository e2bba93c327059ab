/* route/pac.c: the PAC file written from the router, over a table of router setups. The script
 * is checked line by line here; a JavaScript engine evaluates it in the lab (lab.http_pac). */
#include <stdlib.h>
#include <string.h>

#include "route/pac.h"
#include "route/router.h"
#include "test.h"
#include "tunnel/settings.h"

enum { MAX_LINES = 8 };

struct pac_row {
    const char *what;
    const char *user;    /* "+cidr" a --route, "-cidr" an --exclude, space-separated */
    int up;              /* the tunnel came up with the following */
    const char *routes;  /* "+cidr" pushed route, "-cidr" pushed exclude */
    const char *domains; /* the tunnel's DNS domains, or NULL */
    const char *dns;     /* one DNS server, or NULL */
    enum router_others others;
    /* Lines that must come in this order in FindProxyForURL (names), v2s_v4 and v2s_v6. */
    const char *names[MAX_LINES], *v4[MAX_LINES], *v6[MAX_LINES];
};

static const struct pac_row rows[] = {
    {"split routes, an --exclude, domains", "-10.99.0.0/16 +203.0.113.0/24", 1,
     "+10.0.0.0/8 +10.99.5.0/24 -10.0.7.0/24 +fd00::/16 -fd00:99::/32", "lab.test Corp.Example.", "192.0.2.53",
     ROUTER_OTHERS_DEFAULT,
     {"    if (isPlainHostName(h)) return p;\n",
      "    if (n == \"lab.test\" || dnsDomainIs(n, \".lab.test\")) return p;\n",
      "    if (n == \"corp.example\" || dnsDomainIs(n, \".corp.example\")) return p;\n", "    return \"DIRECT\";\n}"},
     {"    if (isInNet(h, \"192.0.2.53\", \"255.255.255.255\")) return p;\n",
      "    if (isInNet(h, \"203.0.113.0\", \"255.255.255.0\")) return p;\n",
      "    if (isInNet(h, \"10.0.7.0\", \"255.255.255.0\")) return \"DIRECT\";\n",
      "    if (isInNet(h, \"10.99.5.0\", \"255.255.255.0\")) return p;\n",
      "    if (isInNet(h, \"10.8.0.0\", \"255.255.255.0\")) return p;\n",
      "    if (isInNet(h, \"10.99.0.0\", \"255.255.0.0\")) return \"DIRECT\";\n",
      "    if (isInNet(h, \"10.0.0.0\", \"255.0.0.0\")) return p;\n", "    return \"DIRECT\";\n}"},
     {"    if (v2s_in6(w, [0xfd00, 0x99, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0], 32)) return \"DIRECT\";\n",
      "    if (v2s_in6(w, [0xfd00, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0], 16)) return p;\n", "    return \"DIRECT\";\n}"}},
    {"full tunnel: every name and address to the proxy but the --exclude", "-192.168.0.0/16", 1, "", "lab.test",
     "10.8.0.1", ROUTER_OTHERS_DEFAULT, {"    return p;\n}"},
     {"    if (isInNet(h, \"10.8.0.1\", \"255.255.255.255\")) return p;\n",
      "    if (isInNet(h, \"192.168.0.0\", \"255.255.0.0\")) return \"DIRECT\";\n", "    return p;\n}"},
     {"    return p;\n}"}},
    {"--others tunnel with split routes", "", 1, "+10.0.0.0/8", "lab.test", "10.8.0.1", ROUTER_OTHERS_TUNNEL,
     {"    return p;\n}"}, {"    if (isInNet(h, \"10.0.0.0\", \"255.0.0.0\")) return p;\n", "    return p;\n}"},
     {"    return p;\n}"}},
    {"--others reject, domains named: the rest DIRECT", "", 1, "+10.0.0.0/8", "lab.test", "10.8.0.1",
     ROUTER_OTHERS_REJECT,
     {"    if (isPlainHostName(h)) return p;\n",
      "    if (n == \"lab.test\" || dnsDomainIs(n, \".lab.test\")) return p;\n", "    return \"DIRECT\";\n}"},
     {"    return \"DIRECT\";\n}"}, {"    return \"DIRECT\";\n}"}},
    {"--others reject, no domains: names to the tunnel's resolver", "", 1, "+10.0.0.0/8", NULL, "10.8.0.1",
     ROUTER_OTHERS_REJECT, {"    if (isPlainHostName(h)) return p;\n", "    return p;\n}"},
     {"    return \"DIRECT\";\n}"},
     {"    return \"DIRECT\";\n}"}},
    {"--others direct, a tunnel without DNS: names DIRECT", "+10.1.0.0/16", 1, "", NULL, NULL, ROUTER_OTHERS_DIRECT,
     {"    return \"DIRECT\"; /* the tunnel has no DNS servers: the host resolves names */\n}"},
     {"    if (isInNet(h, \"10.1.0.0\", \"255.255.0.0\")) return p;\n", "    return \"DIRECT\";\n}"}, {NULL}},
    {"before the tunnel: names to the proxy (its resolver is the tunnel's)", "-10.99.0.0/16", 0, NULL, NULL, NULL,
     ROUTER_OTHERS_DIRECT, {"    return p;\n}"},
     {"    if (isInNet(h, \"10.99.0.0\", \"255.255.0.0\")) return \"DIRECT\";\n", "    return \"DIRECT\";\n}"}, {NULL}},
    {"a tie: the user's entry first, then the more cautious", "+10.0.0.0/8", 1, "-10.0.0.0/8 +10.5.0.0/16 -10.5.0.0/16",
     "lab.test", "10.8.0.1", ROUTER_OTHERS_DEFAULT, {"    return \"DIRECT\";\n}"},
     {"    if (isInNet(h, \"10.5.0.0\", \"255.255.0.0\")) return \"DIRECT\";\n",
      "    if (isInNet(h, \"10.5.0.0\", \"255.255.0.0\")) return p;\n",
      "    if (isInNet(h, \"10.0.0.0\", \"255.0.0.0\")) return p;\n",
      "    if (isInNet(h, \"10.0.0.0\", \"255.0.0.0\")) return \"DIRECT\";\n"}, {NULL}},
    {"the root domain: every name", "", 1, "+10.0.0.0/8", "lab.test .", "10.8.0.1", ROUTER_OTHERS_DIRECT,
     {"    if (n == \"lab.test\" || dnsDomainIs(n, \".lab.test\")) return p;\n", "    return p; /* the root domain"},
     {NULL},
     {NULL}},
    {"a domain that is not a DNS name stays out of the script", "", 1, "+10.0.0.0/8",
     "evil\");alert(\"x ok.test", "10.8.0.1", ROUTER_OTHERS_DIRECT,
     {"    if (n == \"ok.test\" || dnsDomainIs(n, \".ok.test\")) return p;\n", "    return \"DIRECT\";\n}"},
     {NULL},
     {NULL}},
};

static void pac_entries(const char *list, void (*add)(void *ctx, const struct v2s_cidr *c, int direct), void *ctx)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", list ? list : "");
    for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        struct v2s_cidr c;
        ASSERT_ROW(v2s_cidr_parse(&c, tok + 1, 0) == 0, "%s", tok);
        add(ctx, &c, tok[0] == '-');
    }
}

static void pac_add_user(void *ctx, const struct v2s_cidr *c, int direct)
{
    ASSERT_EQ(router_add_user(ctx, c, direct ? ROUTER_DIRECT : ROUTER_TUNNEL), 0);
}

static void pac_add_pushed(void *ctx, const struct v2s_cidr *c, int direct)
{
    ASSERT_EQ(tunnel_settings_add_route(ctx, c, direct), 0);
}

/* The text of function name, through its closing brace. */
static char *pac_function(const char *pac, const char *name)
{
    const char *start = strstr(pac, name);
    ASSERT(start != NULL);
    const char *end = strstr(start, "\n}\n");
    ASSERT(end != NULL);
    return strndup(start, (size_t)(end - start) + 2);
}

static void pac_check_order(const char *what, const char *section, const char *text, const char *const *lines)
{
    const char *at = text;
    for (int i = 0; i < MAX_LINES && lines[i]; i++) {
        const char *found = strstr(at, lines[i]);
        ASSERT_ROW(found != NULL, "%s: %s: \"%s\" missing or out of order in:\n%s", what, section, lines[i], text);
        at = found + strlen(lines[i]);
    }
}

TEST_IMPL(pac_from_router)
{
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        const struct pac_row *row = &rows[i];
        struct router r;
        router_init(&r);
        r.others = row->others;
        pac_entries(row->user, pac_add_user, &r);
        if (row->up) {
            struct tunnel_settings s;
            tunnel_settings_init(&s);
            ASSERT_EQ(v2s_addr_parse(&s.addr4, "10.8.0.6"), 0);
            s.prefix4 = 24;
            pac_entries(row->routes, pac_add_pushed, &s);
            if (row->domains)
                s.domains = strdup(row->domains);
            if (row->dns)
                ASSERT_EQ(v2s_addr_parse(&s.dns[s.n_dns++], row->dns), 0);
            unsigned gen = r.generation;
            ASSERT_EQ(router_set_tunnel(&r, &s), 0);
            ASSERT_ROW(r.generation != gen, "%s: the generation moves", row->what);
            tunnel_settings_free(&s);
        }
        char *pac = router_pac(&r, "127.0.0.1:8080");
        ASSERT(pac != NULL);
        ASSERT_ROW(strstr(pac, "    var p = \"PROXY 127.0.0.1:8080\";\n") != NULL, "%s", row->what);
        /* Never a lookup: the browser would ask the host's DNS for the VPN's names. */
        ASSERT_ROW(strstr(pac, "dnsResolve") == NULL && strstr(pac, "myIpAddress") == NULL &&
                       strstr(pac, "isResolvable") == NULL,
                   "%s", row->what);
        ASSERT_ROW(strstr(pac, "alert") == NULL, "%s", row->what);
        char *names = pac_function(pac, "function FindProxyForURL(");
        char *v4 = pac_function(pac, "function v2s_v4(");
        char *v6 = pac_function(pac, "function v2s_v6(");
        /* The names' rules come after the address literals are sent to theirs. */
        pac_check_order(row->what, "FindProxyForURL", names,
                        (const char *const[]){"return v2s_v4(h, p);", "return v2s_v6(w, p);", NULL});
        pac_check_order(row->what, "FindProxyForURL", names, row->names);
        pac_check_order(row->what, "v2s_v4", v4, row->v4);
        pac_check_order(row->what, "v2s_v6", v6, row->v6);
        free(names);
        free(v4);
        free(v6);
        free(pac);
        router_free(&r);
    }

    /* The proxy's name goes into the script: only characters a host:port has. */
    struct router r;
    router_init(&r);
    ASSERT(router_pac(&r, "127.0.0.1:80\";alert(1);\"") == NULL);
    ASSERT(router_pac(&r, "") == NULL);
    char *pac = router_pac(&r, "[::1]:3128");
    ASSERT(pac != NULL && strstr(pac, "\"PROXY [::1]:3128\"") != NULL);
    free(pac);
    /* Every change the PAC depends on moves the generation. */
    unsigned gen = r.generation;
    struct v2s_cidr c;
    ASSERT_EQ(v2s_cidr_parse(&c, "10.0.0.0/8", 0), 0);
    ASSERT_EQ(router_add_user(&r, &c, ROUTER_TUNNEL), 0);
    ASSERT(r.generation != gen);
    gen = r.generation;
    ASSERT_EQ(router_set_tunnel(&r, NULL), 0);
    ASSERT(r.generation != gen);
    gen = r.generation;
    struct router_config rc;
    router_config_init(&rc);
    ASSERT_EQ(router_set_user(&r, &rc), 0);
    ASSERT(r.generation != gen);
    router_config_free(&rc);
    router_free(&r);
    return 0;
}
