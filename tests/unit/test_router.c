/* route/router.c: longest prefix match over user and tunnel entries, and --others. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "route/idna.h"
#include "route/router.h"
#include "test.h"
#include "tunnel/settings.h"

static struct v2s_cidr cidr(const char *text)
{
    struct v2s_cidr c;
    ASSERT(v2s_cidr_parse(&c, text, 0) == 0);
    return c;
}

static enum router_verdict decide(const struct router *r, const char *dst)
{
    struct v2s_addr a;
    ASSERT(v2s_addr_parse(&a, dst) == 0);
    return router_decide(r, &a);
}

static void add_user(struct router *r, const char *text, enum router_verdict v)
{
    struct v2s_cidr c = cidr(text);
    ASSERT(router_add_user(r, &c, v) == 0);
}

static void settings_route(struct tunnel_settings *s, const char *text, int exclude)
{
    struct v2s_cidr c = cidr(text);
    ASSERT(tunnel_settings_add_route(s, &c, exclude) == 0);
}

static void settings_dns(struct tunnel_settings *s, const char *text)
{
    ASSERT(v2s_addr_parse(&s->dns[s->n_dns++], text) == 0);
}

/* A split tunnel plus user overrides, checked destination by destination. */
TEST_IMPL(router_longest_prefix)
{
    struct router r;
    struct tunnel_settings s;
    router_init(&r);
    tunnel_settings_init(&s);
    ASSERT_EQ(v2s_addr_parse(&s.addr4, "10.8.0.17"), 0);
    s.prefix4 = 24;
    settings_route(&s, "10.0.0.0/8", 0);
    settings_route(&s, "172.16.0.0/12", 0);
    settings_route(&s, "fd00::/16", 0);
    settings_route(&s, "10.99.0.0/16", 1);
    settings_route(&s, "10.99.5.0/24", 0); /* include inside an exclude */
    settings_route(&s, "fd00:99::/32", 1);
    settings_dns(&s, "192.0.2.53");        /* outside every split route */
    settings_dns(&s, "2001:db8::53");

    add_user(&r, "172.20.0.0/16", ROUTER_DIRECT);
    add_user(&r, "203.0.113.0/24", ROUTER_TUNNEL);
    add_user(&r, "10.99.7.7/32", ROUTER_TUNNEL);
    ASSERT_EQ(router_set_tunnel(&r, &s), 0);
    ASSERT_EQ(r.n_user, 3);
    ASSERT(r.tunnel_has_routes);

    static const struct {
        const char *dst;
        enum router_verdict want;
    } rows[] = {
        {"10.1.2.3", ROUTER_TUNNEL},      /* split include */
        {"10.99.1.1", ROUTER_DIRECT},     /* split exclude, longer than the include */
        {"10.99.5.1", ROUTER_TUNNEL},     /* include nested in the exclude */
        {"10.99.7.7", ROUTER_TUNNEL},     /* user host route beats the exclude */
        {"10.99.7.8", ROUTER_DIRECT},
        {"172.16.0.1", ROUTER_TUNNEL},
        {"172.20.1.1", ROUTER_DIRECT},    /* user --exclude inside a split include */
        {"203.0.113.9", ROUTER_TUNNEL},   /* user --route */
        {"192.0.2.53", ROUTER_TUNNEL},    /* the tunnel's DNS server */
        {"192.0.2.54", ROUTER_DIRECT},    /* others: direct, since routes were pushed */
        {"2001:db8::53", ROUTER_TUNNEL},
        {"2001:db8::54", ROUTER_DIRECT},
        {"fd00:1::1", ROUTER_TUNNEL},
        {"fd00:99::1", ROUTER_DIRECT},
        {"8.8.8.8", ROUTER_DIRECT},
        {"10.8.0.200", ROUTER_TUNNEL},    /* the tunnel's own subnet */
        {"::ffff:10.1.2.3", ROUTER_TUNNEL}, /* IPv4-mapped is matched as IPv4 */
        {"::ffff:8.8.8.8", ROUTER_DIRECT},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        enum router_verdict v = decide(&r, rows[i].dst);
        ASSERT_ROW(v == rows[i].want, "%zu %s -> %s", i, rows[i].dst, router_verdict_name(v));
    }
    tunnel_settings_free(&s);
    router_free(&r);
    return 0;
}

/* On equal prefixes: a user entry beats a tunnel entry whatever its verdict, and between entries
 * of the same origin DIRECT beats TUNNEL, whichever was added first. */
TEST_IMPL(router_ties)
{
    struct router r;
    struct tunnel_settings s;
    router_init(&r);
    tunnel_settings_init(&s);
    ASSERT_EQ(v2s_addr_parse(&s.addr4, "10.8.0.17"), 0);
    settings_route(&s, "10.1.0.0/16", 0);
    settings_route(&s, "10.1.0.0/16", 1);
    settings_route(&s, "10.3.0.0/16", 1);
    settings_route(&s, "10.3.0.0/16", 0);
    settings_route(&s, "10.2.0.0/16", 1);
    ASSERT_EQ(router_set_tunnel(&r, &s), 0);
    add_user(&r, "10.2.0.0/16", ROUTER_TUNNEL); /* added after the tunnel: still user */
    add_user(&r, "10.4.0.0/16", ROUTER_TUNNEL);
    add_user(&r, "10.4.0.0/16", ROUTER_DIRECT);
    add_user(&r, "10.5.0.0/16", ROUTER_DIRECT);
    add_user(&r, "10.5.0.0/16", ROUTER_TUNNEL);

    ASSERT_EQ(decide(&r, "10.1.1.1"), ROUTER_DIRECT);
    ASSERT_EQ(decide(&r, "10.3.1.1"), ROUTER_DIRECT);
    ASSERT_EQ(decide(&r, "10.2.1.1"), ROUTER_TUNNEL);
    ASSERT_EQ(decide(&r, "10.4.1.1"), ROUTER_DIRECT);
    ASSERT_EQ(decide(&r, "10.5.1.1"), ROUTER_DIRECT);
    /* User entries stay in front of tunnel entries. */
    ASSERT_EQ(r.n_user, 5);
    ASSERT_EQ(r.n_entries, 10);
    struct v2s_cidr first_tunnel = cidr("10.1.0.0/16");
    ASSERT(v2s_addr_equal(&r.entries[5].cidr.addr, &first_tunnel.addr));
    tunnel_settings_free(&s);
    router_free(&r);
    return 0;
}

TEST_IMPL(router_others)
{
    struct router r;
    struct tunnel_settings s;
    router_init(&r);
    tunnel_settings_init(&s);
    ASSERT_EQ(v2s_addr_parse(&s.addr4, "10.8.0.17"), 0);

    /* No tunnel yet, and a full tunnel (no split includes): others go through the tunnel. */
    ASSERT_EQ(decide(&r, "8.8.8.8"), ROUTER_TUNNEL);
    settings_route(&s, "10.99.0.0/16", 1); /* excludes alone keep it a full tunnel */
    ASSERT_EQ(router_set_tunnel(&r, &s), 0);
    ASSERT(!r.tunnel_has_routes);
    ASSERT_EQ(decide(&r, "8.8.8.8"), ROUTER_TUNNEL);
    ASSERT_EQ(decide(&r, "2001:db8::1"), ROUTER_TUNNEL);
    ASSERT_EQ(decide(&r, "10.99.0.1"), ROUTER_DIRECT);

    /* Split includes make others direct. */
    settings_route(&s, "10.0.0.0/8", 0);
    ASSERT_EQ(router_set_tunnel(&r, &s), 0);
    ASSERT_EQ(decide(&r, "8.8.8.8"), ROUTER_DIRECT);

    static const struct {
        enum router_others others;
        enum router_verdict want;
    } rows[] = {
        {ROUTER_OTHERS_TUNNEL, ROUTER_TUNNEL},
        {ROUTER_OTHERS_DIRECT, ROUTER_DIRECT},
        {ROUTER_OTHERS_REJECT, ROUTER_REJECT},
        {ROUTER_OTHERS_DEFAULT, ROUTER_DIRECT},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        r.others = rows[i].others;
        ASSERT_ROW(decide(&r, "8.8.8.8") == rows[i].want, "%zu", i);
        ASSERT_ROW(decide(&r, "10.0.0.1") == ROUTER_TUNNEL, "%zu: matches are not others", i);
    }

    /* An address of no family is refused outright. */
    struct v2s_addr none;
    memset(&none, 0, sizeof(none));
    ASSERT_EQ(router_decide(&r, &none), ROUTER_REJECT);
    tunnel_settings_free(&s);
    router_free(&r);
    return 0;
}

/* Every tunnel up replaces the tunnel's entries; user entries survive; NULL removes them. */
TEST_IMPL(router_set_tunnel_replaces)
{
    struct router r;
    struct tunnel_settings a, b;
    router_init(&r);
    tunnel_settings_init(&a);
    tunnel_settings_init(&b);
    ASSERT_EQ(v2s_addr_parse(&a.addr4, "10.8.0.17"), 0);
    ASSERT_EQ(v2s_addr_parse(&b.addr4, "10.8.0.18"), 0);
    settings_route(&a, "10.1.0.0/16", 0);
    settings_route(&b, "10.2.0.0/16", 0);
    add_user(&r, "192.168.0.0/16", ROUTER_TUNNEL);

    ASSERT_EQ(router_set_tunnel(&r, &a), 0);
    ASSERT_EQ(decide(&r, "10.1.0.1"), ROUTER_TUNNEL);
    ASSERT_EQ(decide(&r, "10.2.0.1"), ROUTER_DIRECT);
    ASSERT_EQ(router_set_tunnel(&r, &b), 0);
    ASSERT_EQ(decide(&r, "10.1.0.1"), ROUTER_DIRECT);
    ASSERT_EQ(decide(&r, "10.2.0.1"), ROUTER_TUNNEL);
    ASSERT_EQ(decide(&r, "192.168.1.1"), ROUTER_TUNNEL);
    for (int i = 0; i < 1000; i++) /* no growth across reconnects */
        ASSERT_EQ(router_set_tunnel(&r, i % 2 ? &a : &b), 0);
    ASSERT_EQ(r.n_entries, 2);

    ASSERT_EQ(router_set_tunnel(&r, NULL), 0);
    ASSERT_EQ(r.n_entries, 1);
    ASSERT(!r.tunnel_has_routes);
    ASSERT_EQ(decide(&r, "192.168.1.1"), ROUTER_TUNNEL);
    tunnel_settings_free(&a);
    tunnel_settings_free(&b);
    router_free(&r);
    router_free(&r); /* idempotent */
    return 0;
}

TEST_IMPL(router_verdict_name)
{
    ASSERT_STR_EQ(router_verdict_name(ROUTER_TUNNEL), "tunnel");
    ASSERT_STR_EQ(router_verdict_name(ROUTER_DIRECT), "direct");
    ASSERT_STR_EQ(router_verdict_name(ROUTER_REJECT), "reject");
    ASSERT_STR_EQ(router_verdict_name((enum router_verdict)42), "unknown");
    return 0;
}

/* Which addresses count as this host's or its link's, for the direct-local rule. */
TEST_IMPL(router_addr_is_local)
{
    static const struct {
        const char *addr;
        int local;
    } rows[] = {
        {"127.0.0.1", 1},
        {"127.255.255.254", 1},
        {"0.0.0.0", 1},
        {"0.1.2.3", 1},
        {"169.254.169.254", 1},
        {"169.254.0.1", 1},
        {"::1", 1},
        {"::", 1},
        {"fe80::1", 1},
        {"febf:ffff::1", 1},
        {"::ffff:127.0.0.1", 1},
        {"::ffff:169.254.169.254", 1},
        {"::ffff:0.0.0.0", 1},
        {"1.0.0.127", 0},
        {"126.255.255.255", 0},
        {"128.0.0.1", 0},
        {"169.253.255.255", 0},
        {"169.255.0.1", 0},
        {"10.0.0.1", 0},
        {"192.168.1.1", 0},
        {"8.8.8.8", 0},
        {"::2", 0},
        {"fec0::1", 0},
        {"fe7f::1", 0},
        {"2001:db8::1", 0},
        {"::ffff:8.8.8.8", 0},
        {"::127.0.0.1", 0}, /* IPv4-compatible, deprecated: Linux does not send it to IPv4 */
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct v2s_addr a;
        ASSERT_ROW(v2s_addr_parse(&a, rows[i].addr) == 0, "%s", rows[i].addr);
        ASSERT_ROW(router_addr_is_local(&a) == rows[i].local, "%s", rows[i].addr);
    }
    return 0;
}

/* A direct verdict for a local address becomes a rejection unless --allow-direct-local; a tunnel
 * verdict and other addresses are left alone. */
TEST_IMPL(router_direct_local)
{
    struct router r;
    struct tunnel_settings s;
    router_init(&r);
    tunnel_settings_init(&s);
    ASSERT_EQ(v2s_addr_parse(&s.addr4, "10.8.0.17"), 0);
    settings_route(&s, "10.0.0.0/8", 0);
    ASSERT_EQ(router_set_tunnel(&r, &s), 0); /* split routes: others go direct */
    add_user(&r, "169.254.0.0/16", ROUTER_DIRECT);
    add_user(&r, "fe80::/10", ROUTER_TUNNEL);

    static const char *const local[] = {"127.0.0.1", "::1", "0.0.0.0", "::", "169.254.169.254",
                                        "::ffff:127.0.0.1"};
    for (size_t i = 0; i < ARRAY_SIZE(local); i++) {
        struct v2s_addr a;
        ASSERT(v2s_addr_parse(&a, local[i]) == 0);
        r.allow_direct_local = 0;
        ASSERT_ROW(router_decide(&r, &a) == ROUTER_REJECT, "%s", local[i]);
        ASSERT_ROW(router_refuses_local(&r, &a), "%s", local[i]);
        r.allow_direct_local = 1;
        ASSERT_ROW(router_decide(&r, &a) == ROUTER_DIRECT, "%s", local[i]);
        ASSERT_ROW(!router_refuses_local(&r, &a), "%s", local[i]);
    }
    r.allow_direct_local = 0;
    /* The user's route sends link-local IPv6 into the tunnel: not a direct connection. */
    ASSERT_EQ(decide(&r, "fe80::1"), ROUTER_TUNNEL);
    ASSERT_EQ(decide(&r, "8.8.8.8"), ROUTER_DIRECT);
    ASSERT_EQ(decide(&r, "10.1.1.1"), ROUTER_TUNNEL);

    /* --others tunnel: local addresses go into the tunnel like any other. */
    r.others = ROUTER_OTHERS_TUNNEL;
    ASSERT_EQ(decide(&r, "127.0.0.1"), ROUTER_TUNNEL);
    /* --others reject: rejected, but not for being local. */
    r.others = ROUTER_OTHERS_REJECT;
    struct v2s_addr lo;
    ASSERT(v2s_addr_parse(&lo, "127.0.0.1") == 0);
    ASSERT_EQ(router_decide(&r, &lo), ROUTER_REJECT);
    ASSERT(!router_refuses_local(&r, &lo));
    tunnel_settings_free(&s);
    router_free(&r);
    return 0;
}

/* The command line's routing (struct router_config, as app/options.c fills it) makes the live
 * router: entries, --others and --allow-direct-local carried over; the tunnel's routes come after
 * without touching the config. */
TEST_IMPL(router_from_config)
{
    struct router_config cfg;
    router_config_init(&cfg);
    struct v2s_cidr c = cidr("10.1.0.0/16");
    ASSERT_EQ(router_config_add(&cfg, &c, ROUTER_DIRECT), 0);
    c = cidr("10.0.0.0/8");
    ASSERT_EQ(router_config_add(&cfg, &c, ROUTER_TUNNEL), 0);
    c = cidr("127.0.0.0/8");
    ASSERT_EQ(router_config_add(&cfg, &c, ROUTER_DIRECT), 0);
    cfg.others = ROUTER_OTHERS_REJECT;
    cfg.allow_direct_local = 1;

    struct router r;
    ASSERT_EQ(router_init_from(&r, &cfg), 0);
    ASSERT_EQ(r.n_user, 3);
    ASSERT_EQ(decide(&r, "10.1.2.3"), ROUTER_DIRECT);
    ASSERT_EQ(decide(&r, "10.2.3.4"), ROUTER_TUNNEL);
    ASSERT_EQ(decide(&r, "127.0.0.1"), ROUTER_DIRECT); /* allowed local */
    ASSERT_EQ(decide(&r, "192.0.2.1"), ROUTER_REJECT); /* --others reject */

    struct tunnel_settings s;
    tunnel_settings_init(&s);
    settings_route(&s, "192.0.2.0/24", 0);
    ASSERT_EQ(router_set_tunnel(&r, &s), 0);
    ASSERT_EQ(decide(&r, "192.0.2.1"), ROUTER_TUNNEL);
    ASSERT_EQ(decide(&r, "10.1.2.3"), ROUTER_DIRECT);
    ASSERT_EQ(cfg.n_user, 3);
    tunnel_settings_free(&s);
    router_free(&r);

    /* Without --allow-direct-local the same entry is refused. */
    cfg.allow_direct_local = 0;
    ASSERT_EQ(router_init_from(&r, &cfg), 0);
    ASSERT_EQ(decide(&r, "127.0.0.1"), ROUTER_REJECT);
    router_free(&r);
    router_config_free(&cfg);
    ASSERT_EQ(cfg.n_user, 0);
    return 0;
}

/* --route and --exclude in the IPv4-mapped form (::ffff:a.b.c.d/N): the router judges a mapped
 * destination as the IPv4 host it is (route/dial.c connects it as one), so such an entry matched
 * nothing, not even the mapped addresses it was written for. It stands for the IPv4 range it
 * maps, through the config (app/options.c) and added to the router directly alike; a shorter
 * IPv6 prefix (::/0) keeps meaning IPv6 destinations only. */
TEST_IMPL(router_mapped_prefix)
{
    struct router_config cfg;
    router_config_init(&cfg);
    struct v2s_cidr c = cidr("::ffff:10.0.0.0/104");
    ASSERT_EQ(router_config_add(&cfg, &c, ROUTER_TUNNEL), 0);
    c = cidr("::ffff:10.9.0.0/112");
    ASSERT_EQ(router_config_add(&cfg, &c, ROUTER_DIRECT), 0);
    c = cidr("::/0");
    ASSERT_EQ(router_config_add(&cfg, &c, ROUTER_TUNNEL), 0);
    cfg.others = ROUTER_OTHERS_REJECT;
    struct router r;
    ASSERT_EQ(router_init_from(&r, &cfg), 0);
    add_user(&r, "::ffff:192.0.2.7", ROUTER_DIRECT);

    static const struct {
        const char *dst;
        enum router_verdict want;
    } rows[] = {
        {"10.1.2.3", ROUTER_TUNNEL},
        {"::ffff:10.1.2.3", ROUTER_TUNNEL},
        {"10.9.1.1", ROUTER_DIRECT},
        {"::ffff:10.9.1.1", ROUTER_DIRECT},
        {"192.0.2.7", ROUTER_DIRECT},
        {"192.0.2.8", ROUTER_REJECT},     /* IPv4 outside them: --others, not ::/0 */
        {"11.0.0.1", ROUTER_REJECT},
        {"2001:db8::1", ROUTER_TUNNEL},   /* ::/0 */
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
        ASSERT_ROW(decide(&r, rows[i].dst) == rows[i].want, "%zu %s", i, rows[i].dst);
    router_free(&r);

    /* All of IPv4, and a reload carries the same form. */
    router_config_free(&cfg);
    c = cidr("::ffff:0:0/96");
    ASSERT_EQ(router_config_add(&cfg, &c, ROUTER_TUNNEL), 0);
    cfg.others = ROUTER_OTHERS_REJECT;
    router_init(&r);
    ASSERT_EQ(router_set_user(&r, &cfg), 0);
    ASSERT_EQ(decide(&r, "198.51.100.1"), ROUTER_TUNNEL);
    ASSERT_EQ(decide(&r, "2001:db8::1"), ROUTER_REJECT);
    router_free(&r);
    router_config_free(&cfg);
    return 0;
}

/* A reload: the user's entries, --others and --allow-direct-local replaced, the tunnel's kept. */
TEST_IMPL(router_set_user_keeps_tunnel)
{
    struct router_config cfg;
    router_config_init(&cfg);
    struct v2s_cidr c = cidr("10.1.0.0/16");
    ASSERT_EQ(router_config_add(&cfg, &c, ROUTER_DIRECT), 0);
    struct router r;
    ASSERT_EQ(router_init_from(&r, &cfg), 0);
    struct tunnel_settings s;
    tunnel_settings_init(&s);
    settings_route(&s, "10.0.0.0/8", 0);
    ASSERT_EQ(router_set_tunnel(&r, &s), 0);
    ASSERT_EQ(decide(&r, "10.1.2.3"), ROUTER_DIRECT);
    ASSERT_EQ(decide(&r, "10.2.3.4"), ROUTER_TUNNEL);
    ASSERT_EQ(decide(&r, "192.0.2.1"), ROUTER_DIRECT); /* split routes: others go direct */

    router_config_free(&cfg);
    router_config_init(&cfg);
    c = cidr("10.2.0.0/16");
    ASSERT_EQ(router_config_add(&cfg, &c, ROUTER_DIRECT), 0);
    c = cidr("198.51.100.0/24");
    ASSERT_EQ(router_config_add(&cfg, &c, ROUTER_TUNNEL), 0);
    cfg.others = ROUTER_OTHERS_REJECT;
    ASSERT_EQ(router_set_user(&r, &cfg), 0);
    ASSERT_EQ(r.n_user, 2);
    ASSERT_EQ(decide(&r, "10.1.2.3"), ROUTER_TUNNEL);     /* the old exclude is gone; the tunnel's route stays */
    ASSERT_EQ(decide(&r, "10.2.3.4"), ROUTER_DIRECT);     /* the new exclude */
    ASSERT_EQ(decide(&r, "198.51.100.7"), ROUTER_TUNNEL); /* the new route */
    ASSERT_EQ(decide(&r, "192.0.2.1"), ROUTER_REJECT);    /* the new --others */

    /* No user entries at all, then the tunnel's routes replaced as on a reconnect. */
    router_config_free(&cfg);
    router_config_init(&cfg);
    ASSERT_EQ(router_set_user(&r, &cfg), 0);
    ASSERT_EQ(r.n_user, 0);
    ASSERT_EQ(decide(&r, "10.2.3.4"), ROUTER_TUNNEL);
    ASSERT_EQ(router_set_tunnel(&r, &s), 0);
    ASSERT_EQ(decide(&r, "10.2.3.4"), ROUTER_TUNNEL);
    ASSERT_EQ(decide(&r, "192.0.2.1"), ROUTER_DIRECT);
    tunnel_settings_free(&s);
    router_config_free(&cfg);
    router_free(&r);
    return 0;
}

/* Split DNS, the decision table: name x the tunnel's domains x --others -> the tunnel's DNS, the
 * host's resolver, or refused. */
TEST_IMPL(router_name_decide)
{
    static const struct {
        const char *name;
        const char *domains; /* NULL: the tunnel named none */
        enum router_others others;
        int split;           /* the tunnel pushed split routes */
        enum router_name_verdict want;
    } rows[] = {
        /* --others direct: the VPN's names to the tunnel, the rest to the host. */
        {"intranet.corp.example", "corp.example", ROUTER_OTHERS_DIRECT, 1, ROUTER_NAME_TUNNEL},
        {"INTRANET.Corp.Example.", "corp.example", ROUTER_OTHERS_DIRECT, 1, ROUTER_NAME_TUNNEL},
        {"corp.example", "corp.example", ROUTER_OTHERS_DIRECT, 1, ROUTER_NAME_TUNNEL},
        {"a.b.lab.test", "corp.example lab.test", ROUTER_OTHERS_DIRECT, 1, ROUTER_NAME_TUNNEL},
        {"a.lab.test", "corp.example,.lab.test.", ROUTER_OTHERS_DIRECT, 1, ROUTER_NAME_TUNNEL},
        {"intranet", "corp.example", ROUTER_OTHERS_DIRECT, 1, ROUTER_NAME_TUNNEL},
        {"intranet", NULL, ROUTER_OTHERS_DIRECT, 1, ROUTER_NAME_TUNNEL},
        {"www.example.com", "corp.example", ROUTER_OTHERS_DIRECT, 1, ROUTER_NAME_HOST},
        {"notcorp.example", "corp.example", ROUTER_OTHERS_DIRECT, 1, ROUTER_NAME_HOST},
        {"corp.example.evil.com", "corp.example", ROUTER_OTHERS_DIRECT, 1, ROUTER_NAME_HOST},
        {"example", "corp.example", ROUTER_OTHERS_DIRECT, 1, ROUTER_NAME_TUNNEL},
        {"com.", "corp.example", ROUTER_OTHERS_DIRECT, 1, ROUTER_NAME_HOST},
        {"www.example.com", NULL, ROUTER_OTHERS_DIRECT, 1, ROUTER_NAME_HOST},
        {"www.example.com", "corp.example .", ROUTER_OTHERS_DIRECT, 1, ROUTER_NAME_TUNNEL},
        /* The default is direct with split routes, tunnel without. */
        {"www.example.com", "corp.example", ROUTER_OTHERS_DEFAULT, 1, ROUTER_NAME_HOST},
        {"www.example.com", "corp.example", ROUTER_OTHERS_DEFAULT, 0, ROUTER_NAME_TUNNEL},
        {"x.corp.example", "corp.example", ROUTER_OTHERS_DEFAULT, 1, ROUTER_NAME_TUNNEL},
        /* --others tunnel: everything. */
        {"www.example.com", "corp.example", ROUTER_OTHERS_TUNNEL, 1, ROUTER_NAME_TUNNEL},
        {"www.example.com", NULL, ROUTER_OTHERS_TUNNEL, 1, ROUTER_NAME_TUNNEL},
        /* --others reject: not the VPN's name, refused without asking anyone; with no domains
         * named, the tunnel's servers are the only ones asked. */
        {"www.example.com", "corp.example", ROUTER_OTHERS_REJECT, 1, ROUTER_NAME_REJECT},
        {"x.corp.example", "corp.example", ROUTER_OTHERS_REJECT, 1, ROUTER_NAME_TUNNEL},
        {"intranet", "corp.example", ROUTER_OTHERS_REJECT, 1, ROUTER_NAME_TUNNEL},
        {"www.example.com", NULL, ROUTER_OTHERS_REJECT, 1, ROUTER_NAME_TUNNEL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct router r;
        router_init(&r);
        r.others = rows[i].others;
        struct tunnel_settings s;
        tunnel_settings_init(&s);
        if (rows[i].split)
            settings_route(&s, "10.0.0.0/8", 0);
        settings_dns(&s, "10.0.0.53");
        s.domains = rows[i].domains ? strdup(rows[i].domains) : NULL;
        ASSERT_EQ(router_set_tunnel(&r, &s), 0);
        tunnel_settings_free(&s);
        enum router_name_verdict got = router_name_decide(&r, rows[i].name);
        ASSERT_ROW(got == rows[i].want, "%s in [%s] others %d: %s, want %s", rows[i].name,
                   rows[i].domains ? rows[i].domains : "", rows[i].others, router_name_verdict_name(got),
                   router_name_verdict_name(rows[i].want));
        /* The tunnel going down keeps what it said about names: no leak while it reconnects. */
        ASSERT_EQ(router_set_tunnel(&r, NULL), 0);
        if (rows[i].others != ROUTER_OTHERS_DEFAULT)
            ASSERT_ROW(router_name_decide(&r, rows[i].name) == rows[i].want, "%s after down", rows[i].name);
        router_free(&r);
    }

    /* Before the tunnel's first settings nothing is known: the tunnel (which fails while down).
     * A tunnel without DNS servers: the host's resolver is the only one. */
    struct router r;
    router_init(&r);
    r.others = ROUTER_OTHERS_DIRECT;
    ASSERT_EQ(router_name_decide(&r, "www.example.com"), ROUTER_NAME_TUNNEL);
    struct tunnel_settings s;
    tunnel_settings_init(&s);
    settings_route(&s, "10.0.0.0/8", 0);
    s.domains = strdup("corp.example");
    ASSERT_EQ(router_set_tunnel(&r, &s), 0);
    ASSERT_EQ(router_name_decide(&r, "x.corp.example"), ROUTER_NAME_HOST);
    tunnel_settings_free(&s);
    router_free(&r);
    return 0;
}

/* A name's IDNA form, as uv_getaddrinfo() makes it before asking the host's DNS (route/idna.h):
 * Punycode for labels outside ASCII (the expected strings are RFC 3492's encoder's, checked
 * against Python's punycode codec), ASCII labels byte for byte (case kept), the three ideographic
 * and fullwidth full stops read as dots, and anything that is not strict UTF-8 refused. */
TEST_IMPL(idna_to_ascii_table)
{
    static const struct {
        const char *in, *out; /* out NULL: UV_EINVAL */
    } rows[] = {
        {"www.example.com", "www.example.com"},
        {"", ""},
        {"svc.corp.", "svc.corp."},
        {"B\xC3\xBC" "cher.example", "xn--Bcher-kva.example"},
        {"m\xC3\xBC" "nchen", "xn--mnchen-3ya"},
        {"ma\xC3\xB1" "ana.com", "xn--maana-pta.com"},
        {"\xE4\xB8\xAD\xE5\x9B\xBD", "xn--fiqs8s"},
        {"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x80\x82jp", "xn--wgv71a119e.jp"},
        {"\xC3\xBC.", "xn--tda."},
        {"\xF0\x9F\x98\x80x", "xn--x-iv3s"},
        {"a\xEF\xBD\xA1" "b\xEF\xBC\x8E" "c\xE3\x80\x82" "d", "a.b.c.d"},
        {"\xFF.corp", NULL},            /* not UTF-8 */
        {"\xC0\x80", NULL},            /* an overlong NUL */
        {"\xED\xA0\x80", NULL},       /* a surrogate */
        {"\xF4\x90\x80\x80", NULL},   /* past U+10FFFF */
        {"ab\xC3", NULL},               /* cut short */
    };
    char out[256];
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        int rc = idna_to_ascii(rows[i].in, out, sizeof(out));
        if (!rows[i].out) {
            ASSERT_ROW(rc == -EINVAL, "row %zu: rc %d", i, rc);
            continue;
        }
        ASSERT_ROW(rc == 0, "row %zu: rc %d", i, rc);
        ASSERT_ROW(strcmp(out, rows[i].out) == 0, "row %zu: %s", i, out);
    }
    /* What does not fit is refused, never cut. */
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ASSERT_EQ(idna_to_ascii(longname, out, sizeof(out)), -EINVAL);
    ASSERT_EQ(idna_to_ascii("\xC3\xBC", out, 5), -EINVAL); /* "xn--tda" needs 8 */
    ASSERT_EQ(idna_to_ascii("\xC3\xBC", out, 8), 0);
    ASSERT_STR_EQ(out, "xn--tda");
    return 0;
}
