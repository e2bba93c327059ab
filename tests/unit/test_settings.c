/* tunnel/settings.c: the openconnect / vpnc-script environment. */
#include <errno.h>
#include <sys/socket.h>

#include "route/router.h"
#include "test.h"
#include "tunnel/settings.h"

/* A fake environment: "NAME=VALUE" strings, NULL-terminated. */
static const char *fake_getenv(void *arg, const char *name)
{
    const char *const *env = arg;
    size_t n = strlen(name);
    for (; *env != NULL; env++)
        if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

static int parse(struct tunnel_settings *s, const char *const *env, char *err, size_t errcap)
{
    return tunnel_settings_from_env(s, fake_getenv, (void *)env, err, errcap);
}

static const char *fmt_cidr(const struct v2s_cidr *c)
{
    static char buf[64];
    return v2s_cidr_format(c, buf, sizeof(buf));
}

static const char *fmt_addr(const struct v2s_addr *a)
{
    static char buf[64];
    return v2s_addr_format(a, buf, sizeof(buf));
}

/* What openconnect 9 exports for a dual-stack AnyConnect session with split tunnelling. */
TEST_IMPL(settings_openconnect_env)
{
    static const char *const env[] = {
        "reason=connect",
        "VPNGATEWAY=198.51.100.7",
        "TUNDEV=",
        "INTERNAL_IP4_ADDRESS=10.8.0.17",
        "INTERNAL_IP4_NETMASK=255.255.255.0",
        "INTERNAL_IP4_NETMASKLEN=24",
        "INTERNAL_IP4_NETADDR=10.8.0.0",
        "INTERNAL_IP4_MTU=1399",
        "INTERNAL_IP4_DNS=10.8.0.1 10.8.0.2 fd00::53",
        "INTERNAL_IP6_ADDRESS=fd00:1::17",
        "INTERNAL_IP6_NETMASK=fd00:1::17/64",
        "CISCO_DEF_DOMAIN=corp.example, lab.example",
        "CISCO_SPLIT_DNS=split.example,lab.example,,other.example",
        "CISCO_SPLIT_INC=2",
        "CISCO_SPLIT_INC_0_ADDR=10.0.0.0",
        "CISCO_SPLIT_INC_0_MASK=255.0.0.0",
        "CISCO_SPLIT_INC_0_MASKLEN=8",
        "CISCO_SPLIT_INC_1_ADDR=172.16.0.0",
        "CISCO_SPLIT_INC_1_MASK=255.240.0.0",
        "CISCO_SPLIT_INC_1_MASKLEN=12",
        "CISCO_SPLIT_EXC=1",
        "CISCO_SPLIT_EXC_0_ADDR=10.99.0.0",
        "CISCO_SPLIT_EXC_0_MASK=255.255.0.0",
        "CISCO_SPLIT_EXC_0_MASKLEN=16",
        "CISCO_IPV6_SPLIT_INC=1",
        "CISCO_IPV6_SPLIT_INC_0_ADDR=fd00::",
        "CISCO_IPV6_SPLIT_INC_0_MASKLEN=16",
        "CISCO_IPV6_SPLIT_EXC=1",
        "CISCO_IPV6_SPLIT_EXC_0_ADDR=fd00:99::",
        "CISCO_IPV6_SPLIT_EXC_0_MASKLEN=32",
        "CISCO_SPLIT_DNS=corp.example,lab.example",
        NULL,
    };
    struct tunnel_settings s;
    char err[128];
    ASSERT_EQ(parse(&s, env, err, sizeof(err)), 0);
    ASSERT_STR_EQ(err, "");
    ASSERT_STR_EQ(fmt_addr(&s.addr4), "10.8.0.17");
    ASSERT_EQ(s.prefix4, 24);
    ASSERT_STR_EQ(fmt_addr(&s.addr6), "fd00:1::17");
    ASSERT_EQ(s.prefix6, 64);
    ASSERT_EQ(s.mtu, 1399);
    ASSERT_EQ(s.n_dns, 3);
    ASSERT_STR_EQ(fmt_addr(&s.dns[0]), "10.8.0.1");
    ASSERT_STR_EQ(fmt_addr(&s.dns[1]), "10.8.0.2");
    ASSERT_STR_EQ(fmt_addr(&s.dns[2]), "fd00::53");
    ASSERT_STR_EQ(s.domains, "corp.example lab.example split.example other.example");
    ASSERT_EQ(s.n_routes, 3);
    ASSERT_STR_EQ(fmt_cidr(&s.routes[0]), "10.0.0.0/8");
    ASSERT_STR_EQ(fmt_cidr(&s.routes[1]), "172.16.0.0/12");
    ASSERT_STR_EQ(fmt_cidr(&s.routes[2]), "fd00::/16");
    ASSERT_EQ(s.n_excludes, 2);
    ASSERT_STR_EQ(fmt_cidr(&s.excludes[0]), "10.99.0.0/16");
    ASSERT_STR_EQ(fmt_cidr(&s.excludes[1]), "fd00:99::/32");
    tunnel_settings_free(&s);
    ASSERT(s.routes == NULL && s.n_routes == 0 && s.domains == NULL);
    return 0;
}

TEST_IMPL(settings_minimal)
{
    static const char *const env[] = {"INTERNAL_IP4_ADDRESS=192.0.2.10", NULL};
    struct tunnel_settings s;
    char err[128];
    ASSERT_EQ(parse(&s, env, err, sizeof(err)), 0);
    ASSERT_STR_EQ(fmt_addr(&s.addr4), "192.0.2.10");
    ASSERT_EQ(s.prefix4, 32);
    ASSERT_EQ(s.addr6.family, 0);
    ASSERT_EQ(s.mtu, 0);
    ASSERT_EQ(s.n_dns, 0);
    ASSERT(s.domains == NULL);
    ASSERT_EQ(s.n_routes, 0);
    ASSERT_EQ(s.n_excludes, 0);
    tunnel_settings_free(&s);

    /* openconnect exports its MTU even when it is still 0; empty values count as unset. */
    static const char *const env2[] = {"INTERNAL_IP4_ADDRESS=192.0.2.10", "INTERNAL_IP4_MTU=0",
                                       "INTERNAL_IP4_DNS=", "CISCO_SPLIT_INC=", "CISCO_DEF_DOMAIN= ,\n ",
                                       "INTERNAL_IP4_NETMASKLEN=20", NULL};
    ASSERT_EQ(parse(&s, env2, err, sizeof(err)), 0);
    ASSERT_EQ(s.mtu, 0);
    ASSERT_EQ(s.prefix4, 20); /* NETMASKLEN is used when NETMASK is absent */
    ASSERT(s.domains == NULL);
    tunnel_settings_free(&s);
    return 0;
}

TEST_IMPL(settings_ipv6_only)
{
    /* openconnect may give only the netmask, which holds the address too. */
    static const char *const env[] = {"INTERNAL_IP6_NETMASK=2001:db8:1::5/64",
                                      "INTERNAL_IP6_DNS=2001:db8:1::53", NULL};
    struct tunnel_settings s;
    char err[128];
    ASSERT_EQ(parse(&s, env, err, sizeof(err)), 0);
    ASSERT_EQ(s.addr4.family, 0);
    ASSERT_STR_EQ(fmt_addr(&s.addr6), "2001:db8:1::5");
    ASSERT_EQ(s.prefix6, 64);
    ASSERT_EQ(s.n_dns, 1);
    tunnel_settings_free(&s);

    static const char *const env2[] = {"INTERNAL_IP6_ADDRESS=2001:db8:1::5", NULL};
    ASSERT_EQ(parse(&s, env2, err, sizeof(err)), 0);
    ASSERT_EQ(s.prefix6, 128);
    tunnel_settings_free(&s);

    static const char *const env3[] = {"INTERNAL_IP6_ADDRESS=2001:db8:1::5", "INTERNAL_IP6_NETMASK=/56",
                                       NULL};
    ASSERT_EQ(parse(&s, env3, err, sizeof(err)), 0);
    ASSERT_EQ(s.prefix6, 56);
    tunnel_settings_free(&s);
    return 0;
}

/* Host bits in split routes are cleared; IPv4 entries fall back to _MASK without _MASKLEN. */
TEST_IMPL(settings_split_routes)
{
    static const char *const env[] = {
        "INTERNAL_IP4_ADDRESS=10.8.0.17",
        "CISCO_SPLIT_INC=3",
        "CISCO_SPLIT_INC_0_ADDR=10.1.2.3",
        "CISCO_SPLIT_INC_0_MASKLEN=16",
        "CISCO_SPLIT_INC_1_ADDR=192.168.7.9",
        "CISCO_SPLIT_INC_1_MASK=255.255.255.0",
        "CISCO_SPLIT_INC_2_ADDR=203.0.113.5",
        "CISCO_SPLIT_INC_2_MASKLEN=32",
        "CISCO_SPLIT_INC_3_ADDR=1.1.1.1", /* beyond the count: ignored */
        "CISCO_SPLIT_INC_3_MASKLEN=32",
        "CISCO_IPV6_SPLIT_EXC=1",
        "CISCO_IPV6_SPLIT_EXC_0_ADDR=2001:db8::ffff",
        "CISCO_IPV6_SPLIT_EXC_0_MASKLEN=48",
        "CISCO_SPLIT_EXC=0",
        NULL,
    };
    struct tunnel_settings s;
    char err[128];
    ASSERT_EQ(parse(&s, env, err, sizeof(err)), 0);
    ASSERT_EQ(s.n_routes, 3);
    ASSERT_STR_EQ(fmt_cidr(&s.routes[0]), "10.1.0.0/16");
    ASSERT_STR_EQ(fmt_cidr(&s.routes[1]), "192.168.7.0/24");
    ASSERT_STR_EQ(fmt_cidr(&s.routes[2]), "203.0.113.5/32");
    ASSERT_EQ(s.n_excludes, 1);
    ASSERT_STR_EQ(fmt_cidr(&s.excludes[0]), "2001:db8::/48");
    tunnel_settings_free(&s);
    return 0;
}

TEST_IMPL(settings_dns_limit)
{
    static const char *const env[] = {
        "INTERNAL_IP4_ADDRESS=10.8.0.17",
        "INTERNAL_IP4_DNS=10.0.0.1 10.0.0.2,10.0.0.3\t10.0.0.4  10.0.0.1 10.0.0.5 10.0.0.6",
        "INTERNAL_IP6_DNS=fd00::1 fd00::2 fd00::3 fd00::4",
        NULL,
    };
    struct tunnel_settings s;
    char err[128];
    ASSERT_EQ(parse(&s, env, err, sizeof(err)), 0);
    ASSERT_EQ(s.n_dns, TUNNEL_MAX_DNS);
    /* The duplicate 10.0.0.1 is kept once; the first eight distinct servers survive. */
    static const char *const want[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4",
                                       "10.0.0.5", "10.0.0.6", "fd00::1",  "fd00::2"};
    for (size_t i = 0; i < ARRAY_SIZE(want); i++)
        ASSERT_STR_EQ(fmt_addr(&s.dns[i]), want[i]);
    tunnel_settings_free(&s);
    return 0;
}

/* Every malformed value fails with -EINVAL and a reason that names the variable. */
TEST_IMPL(settings_bad_values)
{
#define IP4 "INTERNAL_IP4_ADDRESS=10.8.0.17"
    static const struct {
        const char *env[6];
        const char *names; /* the variable the reason must mention */
    } rows[] = {
        {{"INTERNAL_IP4_ADDRESS=10.8.0.300"}, "INTERNAL_IP4_ADDRESS"},
        {{"INTERNAL_IP4_ADDRESS=fd00::1"}, "INTERNAL_IP4_ADDRESS"},
        {{"INTERNAL_IP4_ADDRESS=10.8.0.17 "}, "INTERNAL_IP4_ADDRESS"},
        {{"INTERNAL_IP6_ADDRESS=10.8.0.17"}, "INTERNAL_IP6_ADDRESS"},
        {{IP4, "INTERNAL_IP4_NETMASK=255.0.255.0"}, "INTERNAL_IP4_NETMASK"},
        {{IP4, "INTERNAL_IP4_NETMASK=24"}, "INTERNAL_IP4_NETMASK"},
        {{IP4, "INTERNAL_IP4_NETMASKLEN=33"}, "INTERNAL_IP4_NETMASKLEN"},
        {{IP4, "INTERNAL_IP4_MTU=abc"}, "INTERNAL_IP4_MTU"},
        {{IP4, "INTERNAL_IP4_MTU=67"}, "INTERNAL_IP4_MTU"},
        {{IP4, "INTERNAL_IP4_MTU=65536"}, "INTERNAL_IP4_MTU"},
        {{IP4, "INTERNAL_IP4_MTU=-1"}, "INTERNAL_IP4_MTU"},
        {{IP4, "INTERNAL_IP4_MTU=1400 "}, "INTERNAL_IP4_MTU"},
        {{IP4, "INTERNAL_IP4_MTU=99999999999999999999"}, "INTERNAL_IP4_MTU"},
        {{IP4, "INTERNAL_IP4_DNS=10.0.0.1 dns.example"}, "INTERNAL_IP4_DNS"},
        {{IP4, "INTERNAL_IP4_DNS=10.0.0.1 1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc"},
         "INTERNAL_IP4_DNS"},
        {{IP4, "INTERNAL_IP6_DNS=fd00::1/64"}, "INTERNAL_IP6_DNS"},
        {{IP4, "INTERNAL_IP6_NETMASK=fd00::1/129"}, "INTERNAL_IP6_NETMASK"},
        {{IP4, "INTERNAL_IP6_NETMASK=fd00::1"}, "INTERNAL_IP6_NETMASK"},
        {{IP4, "INTERNAL_IP6_NETMASK=ffff:ffff::"}, "INTERNAL_IP6_NETMASK"},
        {{IP4, "CISCO_DEF_DOMAIN=corp.example\rINJECTED"}, "CISCO_DEF_DOMAIN"},
        {{IP4, "CISCO_DEF_DOMAIN=corp.example \x1b[2J"}, "CISCO_DEF_DOMAIN"},
        {{IP4, "CISCO_SPLIT_INC=x"}, "CISCO_SPLIT_INC"},
        {{IP4, "CISCO_SPLIT_INC=-1"}, "CISCO_SPLIT_INC"},
        {{IP4, "CISCO_SPLIT_INC=4097"}, "CISCO_SPLIT_INC"},
        {{IP4, "CISCO_SPLIT_INC=4294967296"}, "CISCO_SPLIT_INC"},
        {{IP4, "CISCO_SPLIT_INC=1"}, "CISCO_SPLIT_INC_0_ADDR"},
        {{IP4, "CISCO_SPLIT_INC=2", "CISCO_SPLIT_INC_0_ADDR=10.0.0.0", "CISCO_SPLIT_INC_0_MASKLEN=8"},
         "CISCO_SPLIT_INC_1_ADDR"},
        {{IP4, "CISCO_SPLIT_INC=1", "CISCO_SPLIT_INC_0_ADDR=10.0.0.0/8"}, "CISCO_SPLIT_INC_0_ADDR"},
        {{IP4, "CISCO_SPLIT_INC=1", "CISCO_SPLIT_INC_0_ADDR=fd00::"}, "CISCO_SPLIT_INC_0_ADDR"},
        {{IP4, "CISCO_SPLIT_INC=1", "CISCO_SPLIT_INC_0_ADDR=10.0.0.0"}, "CISCO_SPLIT_INC_0_MASK"},
        {{IP4, "CISCO_SPLIT_INC=1", "CISCO_SPLIT_INC_0_ADDR=10.0.0.0", "CISCO_SPLIT_INC_0_MASKLEN=33"},
         "CISCO_SPLIT_INC_0_MASKLEN"},
        {{IP4, "CISCO_SPLIT_INC=1", "CISCO_SPLIT_INC_0_ADDR=10.0.0.0", "CISCO_SPLIT_INC_0_MASK=255.0.1.0"},
         "CISCO_SPLIT_INC_0_MASK"},
        {{IP4, "CISCO_SPLIT_EXC=1", "CISCO_SPLIT_EXC_0_ADDR=bogus"}, "CISCO_SPLIT_EXC_0_ADDR"},
        {{IP4, "CISCO_IPV6_SPLIT_INC=1", "CISCO_IPV6_SPLIT_INC_0_ADDR=fd00::"}, "CISCO_IPV6_SPLIT_INC_0_MASKLEN"},
        {{IP4, "CISCO_IPV6_SPLIT_INC=1", "CISCO_IPV6_SPLIT_INC_0_ADDR=10.0.0.0",
          "CISCO_IPV6_SPLIT_INC_0_MASKLEN=8"},
         "CISCO_IPV6_SPLIT_INC_0_ADDR"},
        {{IP4, "CISCO_IPV6_SPLIT_EXC=1", "CISCO_IPV6_SPLIT_EXC_0_ADDR=fd00::",
          "CISCO_IPV6_SPLIT_EXC_0_MASKLEN=129"},
         "CISCO_IPV6_SPLIT_EXC_0_MASKLEN"},
        {{"INTERNAL_IP4_MTU=1400"}, "INTERNAL_IP4_ADDRESS"}, /* no address at all */
        {{"INTERNAL_IP4_ADDRESS="}, "INTERNAL_IP6_ADDRESS"},
    };
#undef IP4
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct tunnel_settings s;
        char err[256];
        ASSERT_ROW(parse(&s, rows[i].env, err, sizeof(err)) == -EINVAL, "%zu", i);
        ASSERT_ROW(strstr(err, rows[i].names) != NULL, "%zu: \"%s\" lacks %s", i, err, rows[i].names);
        ASSERT_ROW(strchr(err, '\n') == NULL, "%zu: one line", i);
        tunnel_settings_free(&s); /* the contract: s is freeable after an error too */
    }

    /* A tiny or absent error buffer is fine. */
    static const char *const bad[] = {"INTERNAL_IP4_ADDRESS=x", NULL};
    struct tunnel_settings s;
    char small[8];
    ASSERT_EQ(parse(&s, bad, small, sizeof(small)), -EINVAL);
    ASSERT_EQ(strlen(small), sizeof(small) - 1);
    tunnel_settings_free(&s);
    ASSERT_EQ(parse(&s, bad, NULL, 0), -EINVAL);
    tunnel_settings_free(&s);
    return 0;
}

/* A huge but permitted count with few entries fails on the first missing one, quickly. */
TEST_IMPL(settings_max_routes)
{
    static const char *const env[] = {"INTERNAL_IP4_ADDRESS=10.8.0.17", "CISCO_SPLIT_INC=4096",
                                      "CISCO_SPLIT_INC_0_ADDR=10.0.0.0", "CISCO_SPLIT_INC_0_MASKLEN=8",
                                      NULL};
    struct tunnel_settings s;
    char err[128];
    ASSERT_EQ(parse(&s, env, err, sizeof(err)), -EINVAL);
    ASSERT(strstr(err, "CISCO_SPLIT_INC_1_ADDR") != NULL);
    tunnel_settings_free(&s);
    return 0;
}

TEST_IMPL(settings_add_route)
{
    struct tunnel_settings s;
    struct v2s_cidr c;
    tunnel_settings_init(&s);
    ASSERT_EQ(s.prefix4, 32);
    ASSERT_EQ(s.prefix6, 128);
    for (int i = 0; i < 100; i++) {
        char text[32];
        snprintf(text, sizeof(text), "10.%d.0.0/16", i);
        ASSERT_EQ(v2s_cidr_parse(&c, text, 0), 0);
        ASSERT_EQ(tunnel_settings_add_route(&s, &c, i % 2), 0);
    }
    ASSERT_EQ(s.n_routes, 50);
    ASSERT_EQ(s.n_excludes, 50);
    ASSERT_STR_EQ(fmt_cidr(&s.routes[49]), "10.98.0.0/16");
    ASSERT_STR_EQ(fmt_cidr(&s.excludes[49]), "10.99.0.0/16");
    tunnel_settings_free(&s);
    tunnel_settings_free(&s); /* idempotent */
    return 0;
}

/* The rest of openconnect's script environment, which main() used to read with getenv() itself:
 * VPNFD, VPNPID, and whether the INTERNAL_* settings are there at all. */
TEST_IMPL(settings_script_env)
{
    char err[256];
    int fd = -1;
    static const char *const with[] = {"VPNFD=7", "VPNPID=4242", NULL};
    ASSERT_EQ(tunnel_env_vpnfd(fake_getenv, (void *)with, &fd, err, sizeof(err)), 0);
    ASSERT_EQ(fd, 7);
    ASSERT_EQ(tunnel_env_vpnpid(fake_getenv, (void *)with), 4242);

    static const char *const none[] = {"reason=connect", NULL};
    fd = -1;
    ASSERT_EQ(tunnel_env_vpnfd(fake_getenv, (void *)none, &fd, err, sizeof(err)), -ENOENT);
    ASSERT_EQ(fd, -1);
    ASSERT_EQ(tunnel_env_vpnpid(fake_getenv, (void *)none), 0);
    /* reason is set for a vpnc-script only, never with --script-tun: openconnect was given --script
     * alone, and the line says what to add, the value escaped (it said only "no tunnel"). */
    ASSERT(strstr(err, "vpnc-script (reason=connect)") != NULL);
    ASSERT(strstr(err, "--script-tun") != NULL);
    static const char *const forged[] = {"reason=pre-init\n12:00 vpn2socks error: x", NULL};
    ASSERT_EQ(tunnel_env_vpnfd(fake_getenv, (void *)forged, &fd, err, sizeof(err)), -ENOENT);
    ASSERT(strstr(err, "(reason=pre-init\\x0a12:00") != NULL);
    static const char *const nothing[] = {"reason=", NULL};
    strcpy(err, "stale");
    ASSERT_EQ(tunnel_env_vpnfd(fake_getenv, (void *)nothing, &fd, err, sizeof(err)), -ENOENT);
    ASSERT_STR_EQ(err, "");

    /* What the message shows of each: the value escaped, so that it cannot forge a log line. */
    static const struct {
        const char *value, *shown;
    } bad_fd[] = {
        {"abc", "abc"}, {"", ""}, {"70000", "70000"}, {"-1", "-1"}, {"7x", "7x"}, {" 7", " 7"}, {"+7", "+7"},
        {"7\n12:00:00 vpn2socks error: forged", "7\\x0a12:00:00 vpn2socks error: forged"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad_fd); i++) {
        char var[64], want[128];
        snprintf(var, sizeof(var), "VPNFD=%s", bad_fd[i].value);
        const char *const env[] = {var, NULL};
        ASSERT_ROW(tunnel_env_vpnfd(fake_getenv, (void *)env, &fd, err, sizeof(err)) == -EINVAL, "%s", var);
        snprintf(want, sizeof(want), "VPNFD=%s is not a file descriptor number", bad_fd[i].shown);
        ASSERT_STR_EQ(err, want);
    }
    static const char *const bad_pid[] = {"VPNPID=", "VPNPID=-3", "VPNPID=0", "VPNPID=12x"};
    for (size_t i = 0; i < ARRAY_SIZE(bad_pid); i++) {
        const char *const env[] = {bad_pid[i], NULL};
        ASSERT_ROW(tunnel_env_vpnpid(fake_getenv, (void *)env) == 0, "%s", bad_pid[i]);
    }

    /* No INTERNAL_IP*_ADDRESS: no settings and no error (they may come from --address). */
    struct tunnel_settings s;
    static const char *const no_addr[] = {"VPNFD=7", "INTERNAL_IP4_MTU=1300", NULL};
    ASSERT_EQ(tunnel_settings_from_script_env(&s, fake_getenv, (void *)no_addr, err, sizeof(err)), 0);
    ASSERT_EQ(s.addr4.family, 0);
    ASSERT_EQ(s.mtu, 0);
    tunnel_settings_free(&s);
    /* IPv6 alone is enough to read them all. */
    static const char *const v6[] = {"INTERNAL_IP6_ADDRESS=fd00::5", "INTERNAL_IP4_MTU=1300", NULL};
    ASSERT_EQ(tunnel_settings_from_script_env(&s, fake_getenv, (void *)v6, err, sizeof(err)), 0);
    ASSERT_STR_EQ(fmt_addr(&s.addr6), "fd00::5");
    ASSERT_EQ(s.mtu, 1300);
    tunnel_settings_free(&s);
    static const char *const bad[] = {"INTERNAL_IP4_ADDRESS=10.0.0.300", NULL};
    ASSERT_EQ(tunnel_settings_from_script_env(&s, fake_getenv, (void *)bad, err, sizeof(err)), -EINVAL);
    ASSERT(strstr(err, "INTERNAL_IP4_ADDRESS") != NULL);
    tunnel_settings_free(&s);
    return 0;
}

/* A wrapper that exports the variables empty (INTERNAL_IP4_ADDRESS="$ADDR" with nothing in ADDR)
 * and gives --address: empty counts as unset, as everywhere else in the parse, so there are no
 * settings and no error, rather than "INTERNAL_IP4_ADDRESS: missing" refusing to start. */
TEST_IMPL(settings_script_env_empty)
{
    char err[256];
    struct tunnel_settings s;
    static const char *const empty[] = {"INTERNAL_IP4_ADDRESS=", "INTERNAL_IP6_ADDRESS=", "INTERNAL_IP4_MTU=1300",
                                        NULL};
    ASSERT_EQ(tunnel_settings_from_script_env(&s, fake_getenv, (void *)empty, err, sizeof(err)), 0);
    ASSERT_EQ(s.addr4.family, 0);
    ASSERT_EQ(s.addr6.family, 0);
    tunnel_settings_free(&s);
    /* One of them empty, the other set: read as usual. */
    static const char *const one[] = {"INTERNAL_IP4_ADDRESS=", "INTERNAL_IP6_ADDRESS=fd00::5", NULL};
    ASSERT_EQ(tunnel_settings_from_script_env(&s, fake_getenv, (void *)one, err, sizeof(err)), 0);
    ASSERT_STR_EQ(fmt_addr(&s.addr6), "fd00::5");
    tunnel_settings_free(&s);
    return 0;
}

/* Where a destination goes once the tunnel is up with the settings of env: the router's verdict
 * for dst, with --others left at its default. */
static enum router_verdict route_of(const char *const *env, const char *dst)
{
    struct tunnel_settings s;
    struct router r;
    struct v2s_addr a;
    char err[128];
    ASSERT_EQ(parse(&s, env, err, sizeof(err)), 0);
    router_init(&r);
    ASSERT_EQ(router_set_tunnel(&r, &s), 0);
    ASSERT_EQ(v2s_addr_parse(&a, dst), 0);
    enum router_verdict v = router_decide(&r, &a);
    router_free(&r);
    tunnel_settings_free(&s);
    return v;
}

/* vpnc-script routes each family on its own: split includes of IPv4 alone leave IPv6 wholly
 * through the tunnel when it has an IPv6 address (its default route), and the reverse; a family
 * the tunnel has no address of is left alone. vpn2socks sent the other family direct, outside the
 * VPN, because the VPN "sent split routes" (fails without settings_default_routes()). */
TEST_IMPL(settings_split_per_family)
{
    static const char *const v4_split[] = {
        "INTERNAL_IP4_ADDRESS=10.8.0.17",
        "INTERNAL_IP6_NETMASK=fd00:1::17/64",
        "CISCO_SPLIT_INC=1",
        "CISCO_SPLIT_INC_0_ADDR=10.0.0.0",
        "CISCO_SPLIT_INC_0_MASKLEN=8",
        "CISCO_IPV6_SPLIT_EXC=1",
        "CISCO_IPV6_SPLIT_EXC_0_ADDR=2001:db8:99::",
        "CISCO_IPV6_SPLIT_EXC_0_MASKLEN=48",
        NULL,
    };
    ASSERT_EQ(route_of(v4_split, "10.1.2.3"), ROUTER_TUNNEL);
    ASSERT_EQ(route_of(v4_split, "192.0.2.1"), ROUTER_DIRECT);
    ASSERT_EQ(route_of(v4_split, "2001:db8:5::1"), ROUTER_TUNNEL);
    ASSERT_EQ(route_of(v4_split, "2001:db8:99::1"), ROUTER_DIRECT); /* the split exclude still */

    static const char *const v6_split[] = {
        "INTERNAL_IP4_ADDRESS=10.8.0.17",
        "INTERNAL_IP6_ADDRESS=fd00:1::17",
        "CISCO_IPV6_SPLIT_INC=1",
        "CISCO_IPV6_SPLIT_INC_0_ADDR=fd00::",
        "CISCO_IPV6_SPLIT_INC_0_MASKLEN=16",
        NULL,
    };
    ASSERT_EQ(route_of(v6_split, "fd00:5::1"), ROUTER_TUNNEL);
    ASSERT_EQ(route_of(v6_split, "2001:db8:5::1"), ROUTER_DIRECT);
    ASSERT_EQ(route_of(v6_split, "192.0.2.1"), ROUTER_TUNNEL);

    /* No IPv6 address: vpnc-script sets no IPv6 route, the host's own routes carry it. */
    static const char *const v4_only[] = {
        "INTERNAL_IP4_ADDRESS=10.8.0.17",
        "CISCO_SPLIT_INC=1",
        "CISCO_SPLIT_INC_0_ADDR=10.0.0.0",
        "CISCO_SPLIT_INC_0_MASKLEN=8",
        NULL,
    };
    ASSERT_EQ(route_of(v4_only, "2001:db8:5::1"), ROUTER_DIRECT);
    ASSERT_EQ(route_of(v4_only, "192.0.2.1"), ROUTER_DIRECT);
    struct tunnel_settings s;
    char err[128];
    ASSERT_EQ(parse(&s, v4_only, err, sizeof(err)), 0);
    ASSERT_EQ(s.n_routes, 1);
    tunnel_settings_free(&s);
    /* Both families split: nothing added. */
    static const char *const both[] = {
        "INTERNAL_IP4_ADDRESS=10.8.0.17",
        "INTERNAL_IP6_ADDRESS=fd00:1::17",
        "CISCO_SPLIT_INC=1",
        "CISCO_SPLIT_INC_0_ADDR=10.0.0.0",
        "CISCO_SPLIT_INC_0_MASKLEN=8",
        "CISCO_IPV6_SPLIT_INC=1",
        "CISCO_IPV6_SPLIT_INC_0_ADDR=fd00::",
        "CISCO_IPV6_SPLIT_INC_0_MASKLEN=16",
        NULL,
    };
    ASSERT_EQ(route_of(both, "2001:db8:5::1"), ROUTER_DIRECT);
    ASSERT_EQ(route_of(both, "192.0.2.1"), ROUTER_DIRECT);
    return 0;
}

/* IPv6 under IPv6's minimum MTU of 1280 (RFC 8200 5), as both tunnels judge it: turned off with a
 * warning when IPv4 stays, refused when the tunnel has IPv6 only, left alone at 1280 and above and
 * when the MTU is unknown (0). The packet-fd tunnel kept IPv6 on at any MTU. */
TEST_IMPL(settings_ipv6_mtu)
{
    static const struct {
        const char *addr4, *addr6;
        unsigned mtu;
        int rc;
        const char *msg; /* NULL: left empty */
    } rows[] = {
        {"10.0.0.2", "fd00::2", 1279, 1,
         "the tunnel MTU 1279 is below IPv6's minimum of 1280: IPv6 (fd00::2) left off on this tunnel, IPv4 only"},
        {NULL, "fd00::2", 576, -EINVAL, "the tunnel MTU 576 is below IPv6's minimum of 1280"},
        {"10.0.0.2", "fd00::2", 1280, 0, NULL},
        {NULL, "fd00::2", 0, 0, NULL},
        {"10.0.0.2", NULL, 576, 0, NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct tunnel_settings s;
        tunnel_settings_init(&s);
        if (rows[i].addr4)
            ASSERT_EQ(v2s_addr_parse(&s.addr4, rows[i].addr4), 0);
        if (rows[i].addr6) {
            ASSERT_EQ(v2s_addr_parse(&s.addr6, rows[i].addr6), 0);
            s.prefix6 = 64;
        }
        s.mtu = rows[i].mtu;
        char msg[200] = "";
        int rc = tunnel_settings_ipv6_mtu(&s, msg, sizeof(msg));
        ASSERT_ROW(rc == rows[i].rc, "%zu: %d", i, rc);
        ASSERT_ROW(strcmp(msg, rows[i].msg ? rows[i].msg : "") == 0, "%zu: %s", i, msg);
        ASSERT_ROW((s.addr6.family != 0) == (rows[i].addr6 && rc != 1), "%zu", i);
        ASSERT_ROW((s.addr4.family != 0) == (rows[i].addr4 != NULL), "%zu", i);
        ASSERT_EQ(s.mtu, rows[i].mtu);
        tunnel_settings_free(&s);
    }
    return 0;
}
