/* base/addr.c: numeric addresses, CIDR prefixes, netmasks. */
#include <errno.h>
#include <sys/socket.h>

#include "test.h"
#include "base/addr.h"

TEST_IMPL(addr_parse)
{
    static const struct {
        const char *text;
        int rc;
        int family;
        const char *formatted; /* canonical form inet_ntop gives back */
    } rows[] = {
        {"0.0.0.0", 0, AF_INET, "0.0.0.0"},
        {"10.1.2.3", 0, AF_INET, "10.1.2.3"},
        {"255.255.255.255", 0, AF_INET, "255.255.255.255"},
        {"::", 0, AF_INET6, "::"},
        {"::1", 0, AF_INET6, "::1"},
        {"2001:DB8:0:0:0:0:0:1", 0, AF_INET6, "2001:db8::1"},
        {"::ffff:1.2.3.4", 0, AF_INET6, "::ffff:1.2.3.4"},
        {"", -EINVAL, 0, NULL},
        {"256.1.1.1", -EINVAL, 0, NULL},
        {"1.2.3", -EINVAL, 0, NULL},       /* inet_aton shorthand is not numeric enough */
        {"10.1", -EINVAL, 0, NULL},
        {"1.2.3.4 ", -EINVAL, 0, NULL},
        {" 1.2.3.4", -EINVAL, 0, NULL},
        {"1.2.3.4/8", -EINVAL, 0, NULL},
        {"0x7f.0.0.1", -EINVAL, 0, NULL},
        {"fe80::1%eth0", -EINVAL, 0, NULL}, /* zone ids mean nothing inside the tunnel */
        {"1:2:3:4:5:6:7:8:9", -EINVAL, 0, NULL},
        {":::", -EINVAL, 0, NULL},
        {"example.com", -EINVAL, 0, NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct v2s_addr a;
        char buf[V2S_ADDR_STRLEN];
        memset(&a, 0xAA, sizeof(a));
        int rc = v2s_addr_parse(&a, rows[i].text);
        ASSERT_ROW(rc == rows[i].rc, "%zu \"%s\"", i, rows[i].text);
        ASSERT_ROW(a.family == rows[i].family, "%zu", i);
        if (rc == 0) {
            ASSERT_STR_EQ(v2s_addr_format(&a, buf, sizeof(buf)), rows[i].formatted);
            ASSERT_EQ(v2s_addr_len(&a), rows[i].family == AF_INET ? 4 : 16);
        } else {
            ASSERT_EQ(v2s_addr_len(&a), 0);
        }
    }
    struct v2s_addr a;
    ASSERT_EQ(v2s_addr_parse(&a, NULL), -EINVAL);
    return 0;
}

TEST_IMPL(addr_format)
{
    struct v2s_addr a, none;
    char buf[V2S_ADDR_STRLEN];
    char tiny[4];
    memset(&none, 0, sizeof(none));

    ASSERT_EQ(v2s_addr_parse(&a, "192.0.2.1"), 0);
    ASSERT_STR_EQ(v2s_addr_format_port(&a, 8080, buf, sizeof(buf)), "192.0.2.1:8080");
    ASSERT_EQ(v2s_addr_parse(&a, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 0);
    ASSERT_STR_EQ(v2s_addr_format_port(&a, 65535, buf, sizeof(buf)),
                  "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
    ASSERT_STR_EQ(v2s_addr_format(&none, buf, sizeof(buf)), "none");
    /* A buffer too small must still come back NUL-terminated. */
    v2s_addr_format(&a, tiny, sizeof(tiny));
    ASSERT(memchr(tiny, '\0', sizeof(tiny)) != NULL);
    v2s_addr_format_port(&a, 1, tiny, sizeof(tiny));
    ASSERT(memchr(tiny, '\0', sizeof(tiny)) != NULL);
    return 0;
}

TEST_IMPL(addr_equal)
{
    struct v2s_addr a, b, c, d;
    ASSERT_EQ(v2s_addr_parse(&a, "10.0.0.1"), 0);
    ASSERT_EQ(v2s_addr_parse(&b, "10.0.0.1"), 0);
    ASSERT_EQ(v2s_addr_parse(&c, "10.0.0.2"), 0);
    ASSERT_EQ(v2s_addr_parse(&d, "::ffff:10.0.0.1"), 0);
    ASSERT(v2s_addr_equal(&a, &b));
    ASSERT(!v2s_addr_equal(&a, &c));
    ASSERT(!v2s_addr_equal(&a, &d)); /* different families are different addresses */
    return 0;
}

/* ::ffff:a.b.c.d to a.b.c.d and back; every other address stays as it is. */
TEST_IMPL(addr_map_v4)
{
    static const struct {
        const char *in, *unmapped, *mapped;
    } rows[] = {
        {"::ffff:192.0.2.9", "192.0.2.9", "::ffff:192.0.2.9"},
        {"192.0.2.9", "192.0.2.9", "::ffff:192.0.2.9"},
        {"0.0.0.0", "0.0.0.0", "::ffff:0.0.0.0"},
        {"2001:db8::1", "2001:db8::1", "2001:db8::1"},
        {"::1", "::1", "::1"},
        {"::192.0.2.9", "::192.0.2.9", "::192.0.2.9"}, /* IPv4-compatible, not mapped */
        {"::fffe:192.0.2.9", "::fffe:192.0.2.9", "::fffe:192.0.2.9"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct v2s_addr a, want;
        ASSERT_EQ(v2s_addr_parse(&a, rows[i].in), 0);
        v2s_addr_unmap_v4(&a);
        ASSERT_EQ(v2s_addr_parse(&want, rows[i].unmapped), 0);
        ASSERT_ROW(v2s_addr_equal(&a, &want), "%s unmapped", rows[i].in);
        v2s_addr_map_v4(&a);
        ASSERT_EQ(v2s_addr_parse(&want, rows[i].mapped), 0);
        ASSERT_ROW(v2s_addr_equal(&a, &want), "%s mapped", rows[i].in);
    }
    struct v2s_addr none;
    memset(&none, 0, sizeof(none));
    v2s_addr_map_v4(&none);
    ASSERT_EQ(none.family, 0);
    return 0;
}

TEST_IMPL(netmask_prefix)
{
    static const struct {
        const char *mask;
        int prefix;
    } rows[] = {
        {"0.0.0.0", 0},           {"128.0.0.0", 1},         {"255.0.0.0", 8},
        {"255.255.255.0", 24},    {"255.255.255.128", 25},  {"255.255.255.254", 31},
        {"255.255.255.255", 32},  {"255.0.255.0", -EINVAL}, {"0.255.255.255", -EINVAL},
        {"255.255.255.1", -EINVAL}, {"255.255.0.1", -EINVAL}, {"24", -EINVAL},
        {"", -EINVAL},            {"::", -EINVAL},          {"255.255.255", -EINVAL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
        ASSERT_ROW(v2s_netmask_prefix(rows[i].mask) == rows[i].prefix, "%zu \"%s\"", i, rows[i].mask);
    ASSERT_EQ(v2s_netmask_prefix(NULL), -EINVAL);
    return 0;
}

TEST_IMPL(cidr_parse)
{
    static const struct {
        const char *text;
        int relaxed;
        int rc;
        const char *formatted;
    } rows[] = {
        {"10.0.0.0/8", 0, 0, "10.0.0.0/8"},
        {"10.0.0.0/255.0.0.0", 0, 0, "10.0.0.0/8"},
        {"10.1.2.3", 0, 0, "10.1.2.3/32"},
        {"0.0.0.0/0", 0, 0, "0.0.0.0/0"},
        {"192.168.1.0/24", 0, 0, "192.168.1.0/24"},
        {"192.168.1.5/24", 0, -EINVAL, NULL}, /* host bits */
        {"192.168.1.5/24", 1, 0, "192.168.1.0/24"},
        {"192.168.1.5/255.255.255.0", 1, 0, "192.168.1.0/24"},
        {"10.0.0.1/31", 1, 0, "10.0.0.0/31"},
        {"10.0.0.0/33", 1, -EINVAL, NULL},
        {"10.0.0.0/", 1, -EINVAL, NULL},
        {"10.0.0.0/-1", 1, -EINVAL, NULL},
        {"10.0.0.0/+8", 1, -EINVAL, NULL},
        {"10.0.0.0/8 ", 1, -EINVAL, NULL},
        {"10.0.0.0/8/8", 1, -EINVAL, NULL},
        {"10.0.0.0/0008", 1, -EINVAL, NULL},
        {"10.0.0.0/255.0.255.0", 1, -EINVAL, NULL},
        {"/8", 1, -EINVAL, NULL},
        {"", 1, -EINVAL, NULL},
        {"10.0.0.0/x", 1, -EINVAL, NULL},
        {"2001:db8::/32", 0, 0, "2001:db8::/32"},
        {"2001:db8::1/32", 0, -EINVAL, NULL},
        {"2001:db8::1/32", 1, 0, "2001:db8::/32"},
        {"2001:db8::1", 0, 0, "2001:db8::1/128"},
        {"::/0", 0, 0, "::/0"},
        {"2001:db8::/129", 1, -EINVAL, NULL},
        {"2001:db8::/ffff::", 1, -EINVAL, NULL}, /* dotted/hex masks are IPv4-only */
        {"2001:db8::ff/121", 1, 0, "2001:db8::80/121"},
        {"fe80::1%eth0/64", 1, -EINVAL, NULL},
        {"1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd/64", 1, -EINVAL, NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct v2s_cidr c;
        char buf[V2S_ADDR_STRLEN + 4];
        int rc = v2s_cidr_parse(&c, rows[i].text, rows[i].relaxed);
        ASSERT_ROW(rc == rows[i].rc, "%zu \"%s\"", i, rows[i].text);
        if (rc == 0)
            ASSERT_STR_EQ(v2s_cidr_format(&c, buf, sizeof(buf)), rows[i].formatted);
    }
    struct v2s_cidr c;
    ASSERT_EQ(v2s_cidr_parse(&c, NULL, 1), -EINVAL);
    return 0;
}

TEST_IMPL(cidr_make)
{
    struct v2s_addr a, none;
    struct v2s_cidr c;
    char buf[64];
    memset(&none, 0, sizeof(none));
    ASSERT_EQ(v2s_addr_parse(&a, "10.255.255.255"), 0);
    ASSERT_EQ(v2s_cidr_make(&c, &a, 9), 0);
    ASSERT_STR_EQ(v2s_cidr_format(&c, buf, sizeof(buf)), "10.128.0.0/9");
    ASSERT_EQ(v2s_cidr_make(&c, &a, 0), 0);
    ASSERT_STR_EQ(v2s_cidr_format(&c, buf, sizeof(buf)), "0.0.0.0/0");
    ASSERT_EQ(v2s_cidr_make(&c, &a, 33), -EINVAL);
    ASSERT_EQ(v2s_cidr_make(&c, &none, 0), -EINVAL);
    ASSERT_EQ(v2s_addr_parse(&a, "2001:db8:ffff::"), 0);
    ASSERT_EQ(v2s_cidr_make(&c, &a, 36), 0);
    ASSERT_STR_EQ(v2s_cidr_format(&c, buf, sizeof(buf)), "2001:db8:f000::/36");
    ASSERT_EQ(v2s_cidr_make(&c, &a, 129), -EINVAL);
    return 0;
}

TEST_IMPL(cidr_unmap_v4)
{
    static const struct {
        const char *text;
        int rc;
        const char *formatted;
    } rows[] = {
        {"::ffff:0:0/96", 1, "0.0.0.0/0"},
        {"::ffff:10.0.0.0/104", 1, "10.0.0.0/8"},
        {"::ffff:10.1.2.3/128", 1, "10.1.2.3/32"},
        {"::ffff:0:0/95", 0, "::fffe:0:0/95"},  /* more than the mapped range */
        {"::/0", 0, "::/0"},
        {"::/96", 0, "::/96"},                  /* IPv4-compatible, deprecated: not mapped */
        {"2001:db8::/32", 0, "2001:db8::/32"},
        {"10.0.0.0/8", 0, "10.0.0.0/8"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct v2s_cidr c;
        char buf[V2S_ADDR_STRLEN + 4];
        ASSERT_EQ(v2s_cidr_parse(&c, rows[i].text, 1), 0);
        ASSERT_ROW(v2s_cidr_unmap_v4(&c) == rows[i].rc, "%zu \"%s\"", i, rows[i].text);
        ASSERT_STR_EQ(v2s_cidr_format(&c, buf, sizeof(buf)), rows[i].formatted);
    }
    return 0;
}

TEST_IMPL(cidr_contains)
{
    static const struct {
        const char *cidr;
        const char *addr;
        int in;
    } rows[] = {
        {"10.0.0.0/8", "10.0.0.0", 1},
        {"10.0.0.0/8", "10.255.255.255", 1},
        {"10.0.0.0/8", "11.0.0.0", 0},
        {"10.0.0.0/8", "9.255.255.255", 0},
        {"0.0.0.0/0", "203.0.113.9", 1},
        {"0.0.0.0/0", "::1", 0},               /* families never mix */
        {"192.168.1.128/25", "192.168.1.127", 0},
        {"192.168.1.128/25", "192.168.1.128", 1},
        {"192.168.1.128/25", "192.168.1.255", 1},
        {"10.1.2.3/32", "10.1.2.3", 1},
        {"10.1.2.3/32", "10.1.2.2", 0},
        {"172.16.0.0/12", "172.31.255.255", 1},
        {"172.16.0.0/12", "172.32.0.0", 0},
        {"2001:db8::/32", "2001:db8:ffff::1", 1},
        {"2001:db8::/32", "2001:db9::", 0},
        {"2001:db8::/33", "2001:db8:8000::", 0},
        {"2001:db8::/33", "2001:db8:7fff::", 1},
        {"::/0", "::", 1},
        {"::/0", "10.0.0.1", 0},
        {"::1/128", "::1", 1},
        {"::1/128", "::2", 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct v2s_cidr c;
        struct v2s_addr a;
        ASSERT_ROW(v2s_cidr_parse(&c, rows[i].cidr, 0) == 0, "%zu", i);
        ASSERT_ROW(v2s_addr_parse(&a, rows[i].addr) == 0, "%zu", i);
        ASSERT_ROW(v2s_cidr_contains(&c, &a) == rows[i].in, "%zu %s in %s", i, rows[i].addr,
                   rows[i].cidr);
    }
    return 0;
}

/* Text from a peer goes into logs through v2s_shown: nothing it holds may end a line, move a
 * terminal's cursor or pass for our own escapes, and it never overruns the buffer. */
TEST_IMPL(shown_escapes)
{
    static const struct {
        const char *in;
        size_t cap;
        const char *out;
    } rows[] = {
        {"plain text, 1.2.3.4:80", 64, "plain text, 1.2.3.4:80"},
        {"", 8, ""},
        {"line\nvpn2socks error: forged", 64, "line\\x0avpn2socks error: forged"},
        {"cr\r tab\t nul-less del\x7f", 64, "cr\\x0d tab\\x09 nul-less del\\x7f"},
        {"\x1b[2J\x1b]0;title\x07", 64, "\\x1b[2J\\x1b]0;title\\x07"},   /* terminal escapes */
        {"\xc2\x9b" "31m \xe2\x80\xae", 64, "\\xc2\\x9b31m \\xe2\\x80\\xae"}, /* C1 CSI, RTL override */
        {"a\\x0a", 64, "a\\\\x0a"},                  /* a literal backslash cannot fake an escape */
        {"12345678", 9, "12345678"},                 /* fits exactly */
        {"123456789", 9, "12345..."},                /* one byte too long */
        {"\n\n\n", 8, "\\x0a..."},                   /* an escape is never cut in half */
        {"ab\ncd", 8, "ab..."},
        {"ab\n", 8, "ab\\x0a"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        char buf[80];
        memset(buf, 'Z', sizeof(buf));
        const char *got = v2s_shown(rows[i].in, buf, rows[i].cap);
        ASSERT_ROW(got == buf, "%zu", i);
        ASSERT_ROW(strcmp(got, rows[i].out) == 0, "%zu: got \"%s\"", i, got);
        ASSERT_ROW(strlen(got) < rows[i].cap, "%zu", i);
        ASSERT_ROW(buf[rows[i].cap] == 'Z', "%zu", i); /* nothing written past cap */
    }
    /* Every byte value, one at a time: only printable ASCII passes through as itself. */
    for (int c = 1; c < 256; c++) {
        char in[2] = {(char)c, '\0'}, buf[8];
        v2s_shown(in, buf, sizeof(buf));
        for (const char *p = buf; *p; p++)
            ASSERT_ROW(*p >= 0x20 && *p < 0x7F, "byte 0x%02x", c);
        if (c >= 0x20 && c < 0x7F && c != '\\')
            ASSERT_ROW(buf[0] == c && buf[1] == '\0', "byte 0x%02x", c);
    }
    return 0;
}
