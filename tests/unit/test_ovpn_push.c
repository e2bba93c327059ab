/* tunnel/openvpn/push.c: PUSH_REPLY messages as OpenVPN 2.4-2.6 servers send them. */
#include <errno.h>
#include <sys/socket.h>

#include "base/log.h"
#include "test.h"
#include "tunnel/openvpn/comp.h"
#include "tunnel/openvpn/push.h"
#include "tunnel/openvpn/settings_opt.h"

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

static int parse1(struct ovpn_push *p, const char *msg)
{
    char err[256] = "";
    int rc = ovpn_push_parse(p, msg, err, sizeof(err));
    if (rc != 0)
        TEST_FAIL_AT("\"%s\": %d \"%s\"", msg, rc, err);
    ASSERT_STR_EQ(err, "");
    return rc;
}

/* A 2.6 server with topology subnet, NCP and DATA_V2. */
TEST_IMPL(ovpn_push_subnet)
{
    struct ovpn_push p;
    ovpn_push_init(&p);
    parse1(&p, "PUSH_REPLY,route-gateway 10.8.0.1,topology subnet,ping 10,ping-restart 120,"
               "ifconfig 10.8.0.2 255.255.255.0,peer-id 0,cipher AES-256-GCM,"
               "protocol-flags cc-exit tls-ekm dyn-tls-crypt,tun-mtu 1500");
    ASSERT_EQ(p.topology, OVPN_TOPOLOGY_SUBNET);
    ASSERT_STR_EQ(fmt_addr(&p.settings.addr4), "10.8.0.2");
    ASSERT_EQ(p.settings.prefix4, 24);
    ASSERT_STR_EQ(fmt_addr(&p.ifconfig_remote), "255.255.255.0");
    ASSERT_EQ(p.ping, 10);
    ASSERT_EQ(p.ping_restart, 120);
    ASSERT_EQ(p.peer_id_set, 1);
    ASSERT_EQ(p.peer_id, 0);
    ASSERT_STR_EQ(p.cipher, "AES-256-GCM");
    ASSERT_STR_EQ(p.auth, "");
    ASSERT_EQ(p.key_derivation_ekm, 1);
    ASSERT_EQ(p.cc_exit, 1);
    ASSERT_EQ(p.settings.mtu, 1500);
    ASSERT_EQ(p.comp_set, 0);
    ASSERT_EQ(p.continuation, 0);
    ASSERT_EQ(p.redirect_gateway, 0);
    ASSERT_EQ(p.settings.n_routes, 0);
    ASSERT(p.auth_token == NULL);
    ASSERT_EQ(p.settings.addr6.family, 0);
    ovpn_push_free(&p);
    return 0;
}

/* The default topology: the second ifconfig argument is the peer. */
/* A pushed ping-exit sets the timeout ping-restart sets, the later of the two winning, as in
 * OpenVPN (options.c ping_rec_timeout); it was ignored, and with no ping-restart in the config a
 * dead server went unnoticed. */
TEST_IMPL(ovpn_push_ping_exit)
{
    struct ovpn_push p;
    ovpn_push_init(&p);
    parse1(&p, "PUSH_REPLY,ping 10,ping-exit 60,ifconfig 10.8.0.2 255.255.255.0");
    ASSERT_EQ(p.ping, 10);
    ASSERT_EQ(p.ping_restart, 60);
    ovpn_push_free(&p);
    ovpn_push_init(&p);
    parse1(&p, "PUSH_REPLY,ping-exit 60,ping-restart 120");
    ASSERT_EQ(p.ping_restart, 120);
    ovpn_push_free(&p);
    ovpn_push_init(&p);
    parse1(&p, "PUSH_REPLY,ping-restart 120,ping-exit 30");
    ASSERT_EQ(p.ping_restart, 30);
    ovpn_push_free(&p);
    return 0;
}

TEST_IMPL(ovpn_push_net30)
{
    struct ovpn_push p;
    ovpn_push_init(&p);
    ASSERT_EQ(p.topology, OVPN_TOPOLOGY_NET30);
    parse1(&p, "PUSH_REPLY,route 10.8.0.1,topology net30,ping 10,ping-restart 120,ifconfig 10.8.0.6 10.8.0.5,"
               "peer-id 16777215,cipher AES-128-CBC,auth SHA256,key-derivation tls-ekm");
    ASSERT_STR_EQ(fmt_addr(&p.settings.addr4), "10.8.0.6");
    ASSERT_EQ(p.settings.prefix4, 32);
    ASSERT_STR_EQ(fmt_addr(&p.ifconfig_remote), "10.8.0.5");
    ASSERT_EQ(p.settings.n_routes, 1);
    ASSERT_STR_EQ(fmt_cidr(&p.settings.routes[0]), "10.8.0.1/32");
    ASSERT_EQ(p.peer_id, 0xFFFFFF);
    ASSERT_STR_EQ(p.auth, "SHA256");
    ASSERT_EQ(p.key_derivation_ekm, 1);
    ovpn_push_free(&p);

    ovpn_push_init(&p);
    parse1(&p, "PUSH_REPLY,topology p2p,ifconfig 10.9.0.2 10.9.0.1");
    ASSERT_EQ(p.topology, OVPN_TOPOLOGY_P2P);
    ASSERT_EQ(p.settings.prefix4, 32);
    ovpn_push_free(&p);
    return 0;
}

/* The topology may come after ifconfig, even in a later part. */
TEST_IMPL(ovpn_push_topology_order)
{
    struct ovpn_push p;
    char err[256];
    ovpn_push_init(&p);
    parse1(&p, "PUSH_REPLY,ifconfig 10.8.0.2 255.255.0.0,push-continuation 2");
    ASSERT_EQ(p.settings.prefix4, 32);
    ASSERT_EQ(p.continuation, 2);
    parse1(&p, "PUSH_REPLY,topology subnet,push-continuation 1");
    ASSERT_EQ(p.settings.prefix4, 16);
    ASSERT_EQ(p.continuation, 1);
    ovpn_push_free(&p);

    /* A peer address is not a netmask. */
    ovpn_push_init(&p);
    parse1(&p, "PUSH_REPLY,ifconfig 10.8.0.6 10.8.0.5");
    ASSERT_EQ(ovpn_push_parse(&p, "PUSH_REPLY,topology subnet", err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "ifconfig netmask '10.8.0.5': not a netmask, and the topology is subnet");
    ovpn_push_free(&p);
    ovpn_push_init(&p);
    ASSERT_EQ(ovpn_push_parse(&p, "PUSH_REPLY,topology subnet,ifconfig 10.8.0.6 10.8.0.5", err, sizeof(err)),
              -EINVAL);
    ovpn_push_free(&p);

    /* Starting from a config's topology subnet, a peer address is fine once a later topology
     * (even in a later part) says net30 or p2p; the check waits for the last part. It failed at
     * the ifconfig before (the config's topology could not be subnet then, so no user saw it). */
    ovpn_push_init(&p);
    p.topology = OVPN_TOPOLOGY_SUBNET;
    parse1(&p, "PUSH_REPLY,ifconfig 10.8.0.6 10.8.0.5,push-continuation 2");
    parse1(&p, "PUSH_REPLY,topology net30,push-continuation 1");
    ASSERT_EQ(p.settings.prefix4, 32);
    ovpn_push_free(&p);
    ovpn_push_init(&p);
    p.topology = OVPN_TOPOLOGY_SUBNET;
    parse1(&p, "PUSH_REPLY,ifconfig 10.8.0.2 10.8.0.1,topology p2p");
    ASSERT_EQ(p.settings.prefix4, 32);
    ovpn_push_free(&p);
    ovpn_push_init(&p);
    p.topology = OVPN_TOPOLOGY_SUBNET;
    parse1(&p, "PUSH_REPLY,ifconfig 10.8.0.6 10.8.0.5,push-continuation 2");
    ASSERT_EQ(ovpn_push_parse(&p, "PUSH_REPLY,route 10.9.0.0,push-continuation 1", err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "ifconfig netmask '10.8.0.5': not a netmask, and the topology is subnet");
    ovpn_push_free(&p);
    return 0;
}

TEST_IMPL(ovpn_push_continuation)
{
    struct ovpn_push p;
    ovpn_push_init(&p);
    parse1(&p, "PUSH_REPLY,route 10.1.0.0 255.255.0.0,dhcp-option DNS 10.1.0.53,push-continuation 2");
    ASSERT_EQ(p.continuation, 2);
    parse1(&p, "PUSH_REPLY,route 10.2.0.0 255.255.0.0,dhcp-option DNS 10.2.0.53,push-continuation 2");
    ASSERT_EQ(p.continuation, 2);
    parse1(&p, "PUSH_REPLY,route 10.3.0.0 255.255.0.0,ifconfig 10.8.0.9 10.8.0.10,push-continuation 1");
    ASSERT_EQ(p.continuation, 1);
    ASSERT_EQ(p.settings.n_routes, 3);
    ASSERT_STR_EQ(fmt_cidr(&p.settings.routes[2]), "10.3.0.0/16");
    ASSERT_EQ(p.settings.n_dns, 2);
    /* A part without push-continuation is the last. */
    parse1(&p, "PUSH_REPLY,ping 5");
    ASSERT_EQ(p.continuation, 0);
    /* An empty reply is valid. */
    parse1(&p, "PUSH_REPLY");
    ASSERT_EQ(p.settings.n_routes, 3);
    ovpn_push_free(&p);
    return 0;
}

TEST_IMPL(ovpn_push_routes)
{
    struct ovpn_push p;
    ovpn_push_init(&p);
    parse1(&p, "PUSH_REPLY,route 172.16.0.0 255.240.0.0,route 192.168.10.0 255.255.255.0 vpn_gateway,"
               "route 192.168.10.0 255.255.255.0,"               /* repeated: kept once */
               "route 10.9.8.7 255.255.255.0 10.8.0.1 100,"      /* host bits cleared */
               "route 203.0.113.0 255.255.255.0 net_gateway,"   /* outside the tunnel */
               "route remote_host 255.255.255.255 net_gateway,"  /* the server itself: nothing to do */
               "route vpn_gateway,"
               "route 0.0.0.0 0.0.0.0,"
               "route-ipv6 2001:db8:1::/48,route-ipv6 fd00::1 fd00::ffff,route-ipv6 2001:db8:2::/48 net_gateway");
    ASSERT_EQ(p.settings.n_routes, 6);
    ASSERT_STR_EQ(fmt_cidr(&p.settings.routes[0]), "172.16.0.0/12");
    ASSERT_STR_EQ(fmt_cidr(&p.settings.routes[1]), "192.168.10.0/24");
    ASSERT_STR_EQ(fmt_cidr(&p.settings.routes[2]), "10.9.8.0/24");
    ASSERT_STR_EQ(fmt_cidr(&p.settings.routes[3]), "0.0.0.0/0");
    ASSERT_STR_EQ(fmt_cidr(&p.settings.routes[4]), "2001:db8:1::/48");
    ASSERT_STR_EQ(fmt_cidr(&p.settings.routes[5]), "fd00::1/128");
    ASSERT_EQ(p.settings.n_excludes, 2);
    ASSERT_STR_EQ(fmt_cidr(&p.settings.excludes[0]), "203.0.113.0/24");
    ASSERT_STR_EQ(fmt_cidr(&p.settings.excludes[1]), "2001:db8:2::/48");
    ovpn_push_free(&p);
    return 0;
}

TEST_IMPL(ovpn_push_ipv6)
{
    struct ovpn_push p;
    ovpn_push_init(&p);
    parse1(&p, "PUSH_REPLY,tun-ipv6,route-ipv6 2000::/3,ifconfig-ipv6 fd00:8::1000/64 fd00:8::1,"
               "topology subnet,ifconfig 10.8.0.2 255.255.255.0");
    ASSERT_STR_EQ(fmt_addr(&p.settings.addr6), "fd00:8::1000");
    ASSERT_EQ(p.settings.prefix6, 64);
    ASSERT_STR_EQ(fmt_cidr(&p.settings.routes[0]), "2000::/3");
    ovpn_push_free(&p);
    ovpn_push_init(&p);
    parse1(&p, "PUSH_REPLY,ifconfig-ipv6 fd00:8::2");
    ASSERT_EQ(p.settings.prefix6, 128);
    ovpn_push_free(&p);
    return 0;
}

TEST_IMPL(ovpn_push_dns_domains)
{
    struct ovpn_push p;
    ovpn_push_init(&p);
    parse1(&p, "PUSH_REPLY,dhcp-option DNS 10.8.0.1,dhcp-option DNS 10.8.0.1,dhcp-option DNS6 fd00::1,"
               "dhcp-option DNS fd00::2,dhcp-option DOMAIN corp.example,dhcp-option DOMAIN-SEARCH corp.example,"
               "dhcp-option DOMAIN-SEARCH lab.corp.example,dhcp-option ADAPTER_DOMAIN_SUFFIX ad.example,"
               "dhcp-option DOMAIN-ROUTE route.example,"
               "dhcp-option WINS 10.8.0.3,dhcp-option NTP 10.8.0.4,dhcp-option DISABLE-NBT,"
               "dns server 1 address 10.8.0.53:5353 [fd00::53]:53 fd00::54,dns server 1 dnssec yes,"
               "dns search-domains one.example two.example,dns server 2 resolve-domains x.example");
    ASSERT_EQ(p.settings.n_dns, 6);
    ASSERT_STR_EQ(fmt_addr(&p.settings.dns[0]), "10.8.0.1");
    ASSERT_STR_EQ(fmt_addr(&p.settings.dns[1]), "fd00::1");
    ASSERT_STR_EQ(fmt_addr(&p.settings.dns[2]), "fd00::2");
    ASSERT_STR_EQ(fmt_addr(&p.settings.dns[3]), "10.8.0.53");
    ASSERT_STR_EQ(fmt_addr(&p.settings.dns[4]), "fd00::53");
    ASSERT_STR_EQ(fmt_addr(&p.settings.dns[5]), "fd00::54");
    ASSERT_STR_EQ(p.settings.domains,
                  "corp.example lab.corp.example ad.example route.example one.example two.example x.example");
    ovpn_push_free(&p);

    /* More than TUNNEL_MAX_DNS servers: the rest are checked but not kept. */
    ovpn_push_init(&p);
    char msg[1024];
    size_t n = (size_t)snprintf(msg, sizeof(msg), "PUSH_REPLY");
    for (int i = 1; i <= 12; i++)
        n += (size_t)snprintf(msg + n, sizeof(msg) - n, ",dhcp-option DNS 10.0.0.%d", i);
    parse1(&p, msg);
    ASSERT_EQ(p.settings.n_dns, TUNNEL_MAX_DNS);
    ovpn_push_free(&p);
    return 0;
}

TEST_IMPL(ovpn_push_redirect_gateway)
{
    static const struct {
        const char *msg;
        int redirect;
        const char *routes[3];
    } rows[] = {
        {"PUSH_REPLY,redirect-gateway", 1, {"0.0.0.0/0"}},
        {"PUSH_REPLY,redirect-gateway def1", 1, {"0.0.0.0/0"}},
        {"PUSH_REPLY,redirect-gateway def1 bypass-dhcp bypass-dns block-local", 1, {"0.0.0.0/0"}},
        {"PUSH_REPLY,redirect-gateway def1 ipv6", 1, {"0.0.0.0/0", "::/0"}},
        {"PUSH_REPLY,redirect-gateway ipv6 !ipv4", 1, {"::/0"}},
        {"PUSH_REPLY,redirect-gateway def1,redirect-gateway def1", 1, {"0.0.0.0/0"}},
        {"PUSH_REPLY,redirect-gateway some-future-flag", 1, {"0.0.0.0/0"}},
        {"PUSH_REPLY,redirect-private def1", 0, {NULL}},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct ovpn_push p;
        size_t want = 0;
        ovpn_push_init(&p);
        parse1(&p, rows[i].msg);
        ASSERT_ROW(p.redirect_gateway == rows[i].redirect, "%zu", i);
        while (want < 3 && rows[i].routes[want] != NULL)
            want++;
        ASSERT_ROW(p.settings.n_routes == want, "%zu", i);
        for (size_t j = 0; j < want; j++)
            ASSERT_ROW(strcmp(fmt_cidr(&p.settings.routes[j]), rows[i].routes[j]) == 0, "%zu/%zu", i, j);
        ovpn_push_free(&p);
    }
    return 0;
}

TEST_IMPL(ovpn_push_auth_token)
{
    struct ovpn_push p;
    char err[256];
    ovpn_push_init(&p);
    parse1(&p, "PUSH_REPLY,auth-token SESS_ID_AT_abc123==,auth-token-user YWxpY2U=");
    ASSERT_STR_EQ(p.auth_token, "SESS_ID_AT_abc123==");
    ASSERT_STR_EQ(p.auth_token_user, "alice");
    /* A new token replaces the old one. */
    parse1(&p, "PUSH_REPLY,auth-token \"second token\",auth-token-user Ym9i");
    ASSERT_STR_EQ(p.auth_token, "second token");
    ASSERT_STR_EQ(p.auth_token_user, "bob");
    ASSERT_EQ(ovpn_push_parse(&p, "PUSH_REPLY,auth-token-user !!!", err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "auth-token-user: not base64 of a user name");
    ASSERT_EQ(ovpn_push_parse(&p, "PUSH_REPLY,auth-token-user AA==", err, sizeof(err)), -EINVAL); /* a NUL */
    ASSERT_EQ(ovpn_push_parse(&p, "PUSH_REPLY,auth-token", err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "auth-token takes 1 non-empty argument");
    ovpn_push_free(&p);
    ASSERT(p.auth_token == NULL && p.auth_token_user == NULL);
    return 0;
}

TEST_IMPL(ovpn_push_compression)
{
    static const struct {
        const char *msg;
        int set;
        enum ovpn_comp_framing framing;
    } rows[] = {
        {"PUSH_REPLY,ping 1", 0, OVPN_COMP_FRAMING_NONE},
        {"PUSH_REPLY,comp-lzo", 1, OVPN_COMP_FRAMING_LZO},
        {"PUSH_REPLY,comp-lzo no", 1, OVPN_COMP_FRAMING_LZO},
        {"PUSH_REPLY,comp-lzo adaptive", 1, OVPN_COMP_FRAMING_LZO},
        {"PUSH_REPLY,compress", 1, OVPN_COMP_FRAMING_V1},
        {"PUSH_REPLY,compress stub", 1, OVPN_COMP_FRAMING_V1},
        {"PUSH_REPLY,compress lzo", 1, OVPN_COMP_FRAMING_LZO}, /* OpenVPN's lzo.c: no swap */
        {"PUSH_REPLY,compress lz4", 1, OVPN_COMP_FRAMING_V1},
        {"PUSH_REPLY,compress stub-v2", 1, OVPN_COMP_FRAMING_V2},
        {"PUSH_REPLY,compress lz4-v2", 1, OVPN_COMP_FRAMING_V2},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct ovpn_push p;
        ovpn_push_init(&p);
        parse1(&p, rows[i].msg);
        ASSERT_ROW(p.comp_set == rows[i].set && p.comp == rows[i].framing, "%zu", i);
        ovpn_push_free(&p);
    }
    return 0;
}

/* Alibaba Cloud SSL-VPN: split routes for the Local Networks, an address from the client CIDR. */
TEST_IMPL(ovpn_push_alibaba)
{
    struct ovpn_push p;
    ovpn_push_init(&p);
    parse1(&p, "PUSH_REPLY,route 172.16.0.0 255.255.0.0,route 192.168.0.0 255.255.255.0,topology net30,"
               "ping 10,ping-restart 60,ifconfig 192.168.1.10 192.168.1.9,comp-lzo no,cipher AES-128-CBC");
    ASSERT_STR_EQ(fmt_addr(&p.settings.addr4), "192.168.1.10");
    ASSERT_EQ(p.settings.n_routes, 2);
    ASSERT_EQ(p.redirect_gateway, 0);
    ASSERT_EQ(p.comp, OVPN_COMP_FRAMING_LZO);
    ASSERT_STR_EQ(p.cipher, "AES-128-CBC");
    ovpn_push_free(&p);
    return 0;
}

/* Quoting inside a piece, odd spacing, and options we do not act on. */
TEST_IMPL(ovpn_push_syntax)
{
    struct ovpn_push p;
    ovpn_push_init(&p);
    parse1(&p, "PUSH_REPLY,,  ping   7  ,dhcp-option DOMAIN \"quoted.example\",echo \"unterminated,"
               "setenv-safe FOO bar,route-delay 2,block-outside-dns,register-dns,explicit-exit-notify 3,"
               "sndbuf 0,rcvbuf 0,inactive 3600,block-ipv6,route-gateway dhcp,something-new a b c,"
               "dhcp-option DOMAIN \\\"odd,ping-restart 9 # comment");
    ASSERT_EQ(p.ping, 7);
    ASSERT_EQ(p.ping_restart, 9);
    ASSERT(p.settings.domains == NULL || strstr(p.settings.domains, "quoted.example") != NULL);
    ovpn_push_free(&p);
    return 0;
}

TEST_IMPL(ovpn_push_errors)
{
    static const struct {
        const char *msg;
        const char *err;
    } rows[] = {
        {"PUSH_REQUEST", "message 'PUSH_REQUEST': not a PUSH_REPLY"},
        {"PUSH_REPLYX,ping 1", "message 'PUSH_REPLYX,ping 1': not a PUSH_REPLY"},
        {"", "message '': not a PUSH_REPLY"},
        {"AUTH_FAILED", "message 'AUTH_FAILED': not a PUSH_REPLY"},
        {"PUSH_REPLY,ifconfig 10.8.0.2", "ifconfig takes 2 arguments"},
        {"PUSH_REPLY,ifconfig 10.8.0.300 255.255.255.0", "ifconfig '10.8.0.300': not an IPv4 address"},
        {"PUSH_REPLY,ifconfig fd00::1 255.255.255.0", "ifconfig 'fd00::1': not an IPv4 address"},
        {"PUSH_REPLY,topology subnet,ifconfig 10.8.0.2 255.0.255.0",
         "ifconfig netmask '255.0.255.0': not a netmask, and the topology is subnet"},
        {"PUSH_REPLY,ifconfig-ipv6", "ifconfig-ipv6 takes 1 or 2 arguments"},
        {"PUSH_REPLY,ifconfig-ipv6 fd00::1/129", "ifconfig-ipv6 'fd00::1/129': not an IPv6 address/bits"},
        {"PUSH_REPLY,ifconfig-ipv6 10.0.0.1/64", "ifconfig-ipv6 '10.0.0.1/64': not an IPv6 address/bits"},
        {"PUSH_REPLY,ifconfig-ipv6 fd00::1/64 nope", "ifconfig-ipv6 'nope': not an IPv6 address"},
        {"PUSH_REPLY,route", "route takes 1 to 4 arguments"},
        {"PUSH_REPLY,route 10.0.0.0 255.0.0.0 gw 1 x", "route takes 1 to 4 arguments"},
        {"PUSH_REPLY,route intranet.example",
         "route 'intranet.example': not a numeric IPv4 address (names are not resolved)"},
        {"PUSH_REPLY,route 10.0.0.0 8", "route netmask '8': not an IPv4 netmask"},
        {"PUSH_REPLY,route 10.0.0.0 255.0.0.0 gw.example", "route gateway 'gw.example': not an IPv4 address"},
        {"PUSH_REPLY,route-ipv6 fd00::/200", "route-ipv6 'fd00::/200': not an IPv6 prefix"},
        {"PUSH_REPLY,route-ipv6 fd00::/8 10.0.0.1", "route-ipv6 gateway '10.0.0.1': not an IPv6 address"},
        {"PUSH_REPLY,dhcp-option DNS", "dhcp-option 'DNS': takes exactly one value"},
        {"PUSH_REPLY,dhcp-option DNS dns.example", "DNS server 'dns.example': not an IP address"},
        {"PUSH_REPLY,dhcp-option DOMAIN \"a b\"", "domain 'a b': not a DNS name"},
        {"PUSH_REPLY,dhcp-option", "dhcp-option needs a type"},
        {"PUSH_REPLY,dns server 0 address 300.1.1.1", "DNS server '300.1.1.1': not an IP address"},
        {"PUSH_REPLY,dns server x address 1.1.1.1", "dns server priority 'x': not a number"},
        {"PUSH_REPLY,topology star", "topology 'star': expected net30, p2p or subnet"},
        {"PUSH_REPLY,peer-id 16777216", "peer-id takes a number in 0..16777215"},
        {"PUSH_REPLY,peer-id -1", "peer-id takes a number in 0..16777215"},
        {"PUSH_REPLY,peer-id 99999999999999999999", "peer-id takes a number in 0..16777215"},
        {"PUSH_REPLY,tun-mtu 50", "tun-mtu '50': not a number in 100..65535"},
        {"PUSH_REPLY,tun-mtu 70000", "tun-mtu '70000': not a number in range"},
        {"PUSH_REPLY,ping x", "ping 'x': not a number in range"},
        {"PUSH_REPLY,ping-restart", "ping-restart needs a number"},
        {"PUSH_REPLY,explicit-exit-notify 1 2", "explicit-exit-notify takes at most 1 argument"},
        {"PUSH_REPLY,explicit-exit-notify 101", "explicit-exit-notify '101': not a number in range"},
        {"PUSH_REPLY,push-continuation 3", "push-continuation takes 0, 1 or 2"},
        {"PUSH_REPLY,cipher", "cipher takes 1 argument"},
        {"PUSH_REPLY,cipher AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
         "cipher 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA...': empty or too long"},
        {"PUSH_REPLY,compress zstd", "compress 'zstd': expected stub, stub-v2, lzo, lz4 or lz4-v2"},
        {"PUSH_REPLY,route \"10.0.0.0", "option 'route': unterminated quote, bad backslash or too many words"},
        {"PUSH_REPLY,ping 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16",
         "option 'ping': unterminated quote, bad backslash or too many words"},
        {"PUSH_REPLY,ifconfig \x1b[2J 1.2.3.4", "ifconfig '\\x1b[2J': not an IPv4 address"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct ovpn_push p;
        char err[256] = "";
        ovpn_push_init(&p);
        int rc = ovpn_push_parse(&p, rows[i].msg, err, sizeof(err));
        if (rc != -EINVAL || strcmp(err, rows[i].err) != 0)
            TEST_FAIL_AT("\"%s\": expected -EINVAL \"%s\", got %d \"%s\"", rows[i].msg, rows[i].err, rc, err);
        ovpn_push_free(&p);
    }
    return 0;
}

/* Long and many: thousands of routes across parts, and a huge single piece. */
TEST_IMPL(ovpn_push_hostile)
{
    struct ovpn_push p;
    char err[256];
    size_t cap = 1 << 20;
    char *msg = malloc(cap);
    ASSERT(msg != NULL);
    ovpn_push_init(&p);
    for (int part = 0; part < 4; part++) {
        size_t n = (size_t)snprintf(msg, cap, "PUSH_REPLY");
        for (int i = 0; i < 1024; i++)
            n += (size_t)snprintf(msg + n, cap - n, ",route 10.%d.%d.0 255.255.255.0", part * 4 + i / 256, i % 256);
        snprintf(msg + n, cap - n, ",push-continuation 2");
        ASSERT_EQ(ovpn_push_parse(&p, msg, err, sizeof(err)), 0);
        ASSERT_EQ(p.continuation, 2);
    }
    ASSERT_EQ(p.settings.n_routes, 4096);
    /* Past the cap: an error, not unbounded growth; a repeat is still fine. */
    ASSERT_EQ(ovpn_push_parse(&p, "PUSH_REPLY,route 10.0.0.0 255.255.255.0", err, sizeof(err)), 0);
    ASSERT_EQ(ovpn_push_parse(&p, "PUSH_REPLY,route 11.0.0.0 255.0.0.0", err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "more than 4096 routes");
    ovpn_push_free(&p);

    /* One very long piece of an unknown option, and of a known one. */
    memset(msg, 'x', cap - 1);
    memcpy(msg, "PUSH_REPLY,", 11);
    msg[cap - 1] = '\0';
    ovpn_push_init(&p);
    ASSERT_EQ(ovpn_push_parse(&p, msg, err, sizeof(err)), 0);
    memcpy(msg, "PUSH_REPLY,route ", 17);
    ASSERT_EQ(ovpn_push_parse(&p, msg, err, sizeof(err)), -EINVAL);
    ovpn_push_free(&p);
    free(msg);
    return 0;
}

/* The shared helper as the config file uses it. */
TEST_IMPL(ovpn_push_settings_option)
{
    struct tunnel_settings s;
    char err[128];
    char a0[] = "cipher", a1[] = "x";
    char *w[] = {a0, a1};
    tunnel_settings_init(&s);
    ASSERT_EQ(ovpn_settings_option(&s, NULL, w, 2, err, sizeof(err)), 0);
    char b0[] = "redirect-gateway", b1[] = "def1";
    char *v[] = {b0, b1};
    int redirect = 0;
    ASSERT_EQ(ovpn_settings_option(&s, &redirect, v, 2, err, sizeof(err)), 1);
    ASSERT_EQ(redirect, 1);
    ASSERT_EQ(ovpn_settings_option(&s, NULL, v, 2, err, sizeof(err)), 1);
    ASSERT_EQ(s.n_routes, 1);
    tunnel_settings_free(&s);
    return 0;
}

/* A route list as text: "10.99.0.0/24 fd00::/64" (routes only). */
static const char *route_list(const struct ovpn_push *p)
{
    static char buf[512];
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < p->settings.n_routes; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? " " : "", fmt_cidr(&p->settings.routes[i]));
    return buf;
}

/* pull-filter as OpenVPN 2.6 applies it: first match wins, plain prefixes of the text as sent. */
TEST_IMPL(ovpn_push_pull_filter)
{
    static const char reply[] =
        "PUSH_REPLY,route 10.99.0.0 255.255.255.0,route 10.98.0.0 255.255.0.0,route-ipv6 fd00::/64,"
        "route-gateway 10.8.0.1,dhcp-option DNS 10.99.0.1,dhcp-option DOMAIN lab.test,"
        "topology subnet,ifconfig 10.8.0.2 255.255.255.0";
    const struct ovpn_pull_filter filters[] = {
        {OVPN_PULL_ACCEPT, "route 10.99.", 3},
        {OVPN_PULL_IGNORE, "route", 4},       /* also route-ipv6 and route-gateway */
        {OVPN_PULL_IGNORE, "dhcp-option DOMAIN", 5},
    };
    struct ovpn_push p;
    char err[256] = "";

    v2s_log_level = V2S_LOG_ERROR; /* each ignored option logs a line */
    ovpn_push_init(&p);
    ASSERT_EQ(ovpn_push_parse_filtered(&p, reply, filters, ARRAY_SIZE(filters), err, sizeof(err)), 0);
    ASSERT_STR_EQ(err, "");
    ASSERT_STR_EQ(route_list(&p), "10.99.0.0/24");
    ASSERT_EQ(p.settings.n_dns, 1);
    ASSERT_STR_EQ(fmt_addr(&p.settings.dns[0]), "10.99.0.1");
    ASSERT(p.settings.domains == NULL);
    ASSERT_STR_EQ(fmt_addr(&p.settings.addr4), "10.8.0.2");
    ASSERT_EQ(p.settings.prefix4, 24);
    ovpn_push_free(&p);

    /* No filters: everything is taken. */
    ovpn_push_init(&p);
    ASSERT_EQ(ovpn_push_parse_filtered(&p, reply, NULL, 0, err, sizeof(err)), 0);
    ASSERT_STR_EQ(route_list(&p), "10.99.0.0/24 10.98.0.0/16 fd00::/64");
    ASSERT_STR_EQ(p.settings.domains, "lab.test");
    ovpn_push_free(&p);

    /* The text is compared as sent: leading whitespace is skipped, but quotes and inner spacing
     * count (OpenVPN's man page warns that a server can dodge a filter that way); "route 10.1"
     * is a prefix of "route 10.10.0.0" too. */
    static const struct {
        const char *option;
        int dropped;
    } rows[] = {
        {"route 10.1.0.0 255.255.0.0", 1},
        {"   \troute 10.1.0.0 255.255.0.0", 1},
        {"route 10.10.0.0 255.255.0.0", 1},
        {"route  10.1.0.0 255.255.0.0", 0},
        {"route \"10.1.0.0\" 255.255.0.0", 0},
        {"route 10.2.0.0 255.255.0.0", 0},
    };
    const struct ovpn_pull_filter one[] = {{OVPN_PULL_IGNORE, "route 10.1", 1}};
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        char msg[128];
        snprintf(msg, sizeof(msg), "PUSH_REPLY,%s", rows[i].option);
        ovpn_push_init(&p);
        ASSERT_ROW(ovpn_push_parse_filtered(&p, msg, one, 1, err, sizeof(err)) == 0, "%zu", i);
        ASSERT_ROW(p.settings.n_routes == (rows[i].dropped ? 0u : 1u), "%zu", i);
        ovpn_push_free(&p);
    }

    /* An empty text matches everything, as strncmp(.., 0) does in OpenVPN. */
    const struct ovpn_pull_filter all[] = {{OVPN_PULL_IGNORE, "", 1}};
    ovpn_push_init(&p);
    ASSERT_EQ(ovpn_push_parse_filtered(&p, reply, all, 1, err, sizeof(err)), 0);
    ASSERT_EQ(p.settings.n_routes, 0);
    ASSERT_EQ(p.settings.addr4.family, 0);
    ovpn_push_free(&p);
    return 0;
}

/* A reject ends the parse with -EPERM and says which option and which filter. */
TEST_IMPL(ovpn_push_pull_filter_reject)
{
    const struct ovpn_pull_filter filters[] = {
        {OVPN_PULL_ACCEPT, "route 10.99.", 7},
        {OVPN_PULL_REJECT, "route", 8},
    };
    struct ovpn_push p;
    char err[256] = "";

    v2s_log_level = V2S_LOG_ERROR;
    /* Accepted before the reject filter is reached. */
    ovpn_push_init(&p);
    ASSERT_EQ(ovpn_push_parse_filtered(&p, "PUSH_REPLY,route 10.99.0.0 255.255.255.0,ping 10", filters, 2, err,
                                       sizeof(err)), 0);
    ASSERT_EQ(p.settings.n_routes, 1);
    ovpn_push_free(&p);

    ovpn_push_init(&p);
    ASSERT_EQ(ovpn_push_parse_filtered(&p, "PUSH_REPLY,route 10.99.0.0 255.255.255.0, route-ipv6 fd00::/64,ping 10",
                                       filters, 2, err, sizeof(err)), -EPERM);
    ASSERT_STR_EQ(err, "pushed option 'route-ipv6 fd00::/64' rejected by pull-filter reject \"route\" (config line 8)");
    ovpn_push_free(&p);

    /* Options we do not read are filtered too, and hostile text is shown escaped. */
    const struct ovpn_pull_filter x[] = {{OVPN_PULL_REJECT, "setenv-safe", 2}};
    ovpn_push_init(&p);
    ASSERT_EQ(ovpn_push_parse_filtered(&p, "PUSH_REPLY,setenv-safe X \x1b[2J\nforged", x, 1, err, sizeof(err)),
              -EPERM);
    ASSERT_STR_EQ(err, "pushed option 'setenv-safe X \\x1b[2J\\x0aforged' rejected by pull-filter reject "
                       "\"setenv-safe\" (config line 2)");
    ovpn_push_free(&p);

    /* A token is a secret: the message names the option only. */
    const struct ovpn_pull_filter tok[] = {{OVPN_PULL_REJECT, "auth-token", 3}};
    ovpn_push_init(&p);
    ASSERT_EQ(ovpn_push_parse_filtered(&p, "PUSH_REPLY,auth-token SESS_ID_AT_s3cr3t", tok, 1, err, sizeof(err)),
              -EPERM);
    ASSERT_STR_EQ(err, "pushed option 'auth-token (value not shown)' rejected by pull-filter reject "
                       "\"auth-token\" (config line 3)");
    ovpn_push_free(&p);
    ovpn_push_init(&p);
    ASSERT_EQ(ovpn_push_parse_filtered(&p, "PUSH_REPLY,auth-token-user YWxpY2U=", tok, 1, err, sizeof(err)), -EPERM);
    ASSERT(strstr(err, "YWxpY2U") == NULL);
    ovpn_push_free(&p);
    return 0;
}

/* "default" for a route's netmask, gateway or metric means the argument left out, as OpenVPN's
 * route.c reads a config file's routes (settings_opt.c reads a push the same way): a /32, or the
 * netmask given, through the tunnel. Before, such a config did not load. */
TEST_IMPL(ovpn_push_route_default_args)
{
    struct ovpn_push p;
    ovpn_push_init(&p);
    parse1(&p, "PUSH_REPLY,route 10.1.0.0 255.255.0.0 default 50,route 10.2.3.4 default,"
               "route 10.3.0.0 255.255.0.0 default default,route-ipv6 fd00:1::/64 default 10");
    ASSERT_EQ(p.settings.n_routes, 4);
    ASSERT_STR_EQ(fmt_cidr(&p.settings.routes[0]), "10.1.0.0/16");
    ASSERT_STR_EQ(fmt_cidr(&p.settings.routes[1]), "10.2.3.4/32");
    ASSERT_STR_EQ(fmt_cidr(&p.settings.routes[2]), "10.3.0.0/16");
    ASSERT_STR_EQ(fmt_cidr(&p.settings.routes[3]), "fd00:1::/64");
    ASSERT_EQ(p.settings.n_excludes, 0);
    ovpn_push_free(&p);
    return 0;
}

/* "compress lzo", pushed or in the config, is OpenVPN's LZO framing, the same bytes as comp-lzo
 * (options.c clears COMP_F_SWAP for it and lzo.c asserts it is clear): 0xFA in front of a
 * plain packet. Before, it was read as the swap framing of compress stub and lz4 (0xFB in
 * place of the first byte, which moves to the end): the server's lzo.c drops every such packet
 * ("Bad LZO decompression header byte") and we dropped every one of its 0xFA packets. */
TEST_IMPL(ovpn_push_compress_lzo_bytes)
{
    static const uint8_t ip[4] = {0x45, 0x00, 0x00, 0x04};
    struct ovpn_push p;
    ovpn_push_init(&p);
    parse1(&p, "PUSH_REPLY,compress lzo");
    ASSERT_EQ(p.comp_set, 1);
    uint8_t buf[64];
    size_t start = 0;
    memcpy(buf + OVPN_COMP_MAX_OVERHEAD, ip, sizeof(ip));
    int n = ovpn_comp_frame(p.comp, buf, sizeof(ip), sizeof(buf), &start);
    ASSERT_EQ(n, 5);
    static const uint8_t want[5] = {0xFA, 0x45, 0x00, 0x00, 0x04};
    ASSERT(memcmp(buf + start, want, sizeof(want)) == 0);
    /* What the server sends back the same way comes out whole. */
    uint8_t in[5], out[64];
    const uint8_t *packet = NULL;
    memcpy(in, want, sizeof(in));
    ASSERT_EQ(ovpn_comp_unframe(p.comp, in, sizeof(in), out, sizeof(out), &packet), 4);
    ASSERT(memcmp(packet, ip, sizeof(ip)) == 0);
    ovpn_push_free(&p);
    return 0;
}
