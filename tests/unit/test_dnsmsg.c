/* stack/dnsmsg.c: building a query, reading (hostile) answers. */
#include <errno.h>
#include <sys/socket.h>

#include "stack/dnsmsg.h"
#include "test.h"

/* A DNS message under construction. */
struct msg {
    uint8_t b[2048];
    size_t n;
};

static void put8(struct msg *m, unsigned v)
{
    ASSERT(m->n < sizeof(m->b));
    m->b[m->n++] = (uint8_t)v;
}

static void put16(struct msg *m, unsigned v)
{
    put8(m, v >> 8);
    put8(m, v & 0xFF);
}

static void put32(struct msg *m, uint32_t v)
{
    put16(m, v >> 16);
    put16(m, v & 0xFFFF);
}

static void put_bytes(struct msg *m, const void *p, size_t n)
{
    ASSERT(m->n + n <= sizeof(m->b));
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

/* Writes a dotted name uncompressed; returns its offset for later pointers. */
static size_t put_name(struct msg *m, const char *dotted)
{
    size_t at = m->n;
    const char *p = dotted;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        put8(m, (unsigned)l);
        put_bytes(m, p, l);
        p += l;
        if (*p == '.')
            p++;
    }
    put8(m, 0);
    return at;
}

static void put_ptr(struct msg *m, size_t target)
{
    put16(m, 0xC000 | (unsigned)target);
}

static void put_header(struct msg *m, unsigned id, unsigned flags, unsigned qd, unsigned an)
{
    m->n = 0;
    put16(m, id);
    put16(m, flags);
    put16(m, qd);
    put16(m, an);
    put16(m, 0);
    put16(m, 0);
}

enum { QNAME_OFF = 12, RESP = 0x8180 /* QR RD RA */ };

/* Header plus the question for name/qtype. */
static void put_query(struct msg *m, unsigned id, unsigned flags, unsigned an, const char *name,
                      unsigned qtype)
{
    put_header(m, id, flags, 1, an);
    put_name(m, name);
    put16(m, qtype);
    put16(m, DNSMSG_CLASS_IN);
}

/* Record header with the owner given as a pointer; the caller writes rdata of rdlen bytes. */
static void put_rr_ptr(struct msg *m, size_t owner, unsigned type, uint32_t ttl, unsigned rdlen)
{
    put_ptr(m, owner);
    put16(m, type);
    put16(m, DNSMSG_CLASS_IN);
    put32(m, ttl);
    put16(m, rdlen);
}

static const char *fmt(const struct v2s_addr *a)
{
    static char buf[64];
    return v2s_addr_format(a, buf, sizeof(buf));
}

TEST_IMPL(dnsmsg_build_query)
{
    uint8_t buf[DNSMSG_MAX_UDP];
    static const uint8_t want[] = {
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, /* id, RD, QDCOUNT 1 */
        3,    'w',  'w',  'w',  7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
        0,    28,   0,    1,                            /* AAAA IN */
    };
    ASSERT_EQ(dnsmsg_build_query(buf, sizeof(buf), 0x1234, "www.Example.com", DNSMSG_TYPE_AAAA),
              sizeof(want));
    ASSERT_MEM_EQ(buf, want, sizeof(want));
    /* The trailing dot is optional and changes nothing. */
    ASSERT_EQ(dnsmsg_build_query(buf, sizeof(buf), 0x1234, "www.Example.com.", DNSMSG_TYPE_AAAA),
              sizeof(want));
    ASSERT_MEM_EQ(buf, want, sizeof(want));
    /* Exactly enough room works; one byte less does not, and nothing is written past cap. */
    ASSERT_EQ(dnsmsg_build_query(buf, sizeof(want), 1, "www.Example.com", 28), sizeof(want));
    memset(buf, 0xEE, sizeof(buf));
    ASSERT_EQ(dnsmsg_build_query(buf, sizeof(want) - 1, 1, "www.Example.com", 28), -ENOSPC);
    ASSERT_EQ(buf[sizeof(want) - 1], 0xEE);
    ASSERT_EQ(dnsmsg_build_query(buf, 0, 1, "a", 1), -ENOSPC);

    char l63[64], l64[65], n253[254], n254[255];
    memset(l63, 'a', 63);
    l63[63] = 0;
    memset(l64, 'a', 64);
    l64[64] = 0;
    /* 253 characters: labels of 63,63,63,61 joined by dots. */
    memset(n253, 'b', sizeof(n253) - 1);
    n253[253] = 0;
    n253[63] = n253[127] = n253[191] = '.';
    memcpy(n254, n253, 253);
    n254[253] = 'b';
    n254[254] = 0;

    static const struct {
        int ok;
        const char *name;
    } names[] = {
        {1, "a"}, {1, "localhost."}, {1, "x-y.z_9.example"}, {0, ""}, {0, "."}, {0, ".."},
        {0, "a..b"}, {0, ".a"}, {0, "a.b.."},
    };
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        int rc = dnsmsg_build_query(buf, sizeof(buf), 7, names[i].name, 1);
        ASSERT_ROW(names[i].ok ? rc > 0 : rc == -EINVAL, "%zu \"%s\" rc=%d", i, names[i].name, rc);
    }
    ASSERT(dnsmsg_build_query(buf, sizeof(buf), 7, l63, 1) > 0);
    ASSERT_EQ(dnsmsg_build_query(buf, sizeof(buf), 7, l64, 1), -EINVAL);
    ASSERT_EQ(dnsmsg_build_query(buf, sizeof(buf), 7, n253, 1), 12 + 255 + 4);
    ASSERT_EQ(dnsmsg_build_query(buf, sizeof(buf), 7, n254, 1), -EINVAL);
    ASSERT_EQ(dnsmsg_build_query(buf, sizeof(buf), 7, NULL, 1), -EINVAL);
    return 0;
}

/* A typical answer: two A records pointing back at the question, smallest TTL wins. */
TEST_IMPL(dnsmsg_answer_a)
{
    struct msg m;
    struct dnsmsg_answer ans;
    put_query(&m, 0xBEEF, RESP, 2, "Host.Example", DNSMSG_TYPE_A);
    put_rr_ptr(&m, QNAME_OFF, DNSMSG_TYPE_A, 300, 4);
    put_bytes(&m, "\x0a\x00\x00\x01", 4);
    put_rr_ptr(&m, QNAME_OFF, DNSMSG_TYPE_A, 60, 4);
    put_bytes(&m, "\x0a\x00\x00\x02", 4);

    /* The question is matched case-insensitively. */
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 0xBEEF, "host.example.", DNSMSG_TYPE_A, &ans), 0);
    ASSERT_EQ(ans.rcode, DNSMSG_RCODE_NOERROR);
    ASSERT_EQ(ans.truncated, 0);
    ASSERT_EQ(ans.n_addrs, 2);
    ASSERT_STR_EQ(fmt(&ans.addrs[0]), "10.0.0.1");
    ASSERT_STR_EQ(fmt(&ans.addrs[1]), "10.0.0.2");
    ASSERT_EQ(ans.ttl, 60);
    return 0;
}

TEST_IMPL(dnsmsg_answer_aaaa_cname)
{
    /* CNAME chain www -> web (written out) -> cdn (compressed), records in shuffled order, plus a
     * record for an unrelated name and an A record the AAAA query must ignore. */
    struct msg m;
    struct dnsmsg_answer ans;
    put_query(&m, 1, RESP, 5, "www.corp.example", DNSMSG_TYPE_AAAA);
    size_t corp = QNAME_OFF + 4; /* "corp.example" inside the question */

    size_t web_at = m.n;
    put_name(&m, "web.corp.example"); /* owner of the second CNAME */
    put16(&m, DNSMSG_TYPE_CNAME);
    put16(&m, DNSMSG_CLASS_IN);
    put32(&m, 100);
    put16(&m, 6); /* "cdn" + pointer */
    size_t cdn_at = m.n;
    put8(&m, 3);
    put_bytes(&m, "CDN", 3);
    put_ptr(&m, corp);

    put_rr_ptr(&m, cdn_at, DNSMSG_TYPE_AAAA, 20, 16);
    put_bytes(&m, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x05", 16);

    put_rr_ptr(&m, QNAME_OFF, DNSMSG_TYPE_CNAME, 50, 2);
    put_ptr(&m, web_at);

    put_rr_ptr(&m, corp, DNSMSG_TYPE_AAAA, 1, 16); /* corp.example: not in the chain */
    put_bytes(&m, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x09", 16);

    put_rr_ptr(&m, cdn_at, DNSMSG_TYPE_A, 2, 4);
    put_bytes(&m, "\x0a\0\0\x09", 4);

    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 1, "www.corp.example", DNSMSG_TYPE_AAAA, &ans), 0);
    ASSERT_EQ(ans.n_addrs, 1);
    ASSERT_EQ(ans.addrs[0].family, AF_INET6);
    ASSERT_STR_EQ(fmt(&ans.addrs[0]), "2001:db8::5");
    ASSERT_EQ(ans.ttl, 20); /* min of 50 (CNAME), 100 (CNAME), 20 (AAAA) */

    /* The same message answers the A question only if the question says A. */
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 1, "www.corp.example", DNSMSG_TYPE_A, &ans), -ENOENT);
    return 0;
}

TEST_IMPL(dnsmsg_not_ours)
{
    struct msg m;
    struct dnsmsg_answer ans;
    put_query(&m, 0x4242, RESP, 1, "a.example", DNSMSG_TYPE_A);
    put_rr_ptr(&m, QNAME_OFF, DNSMSG_TYPE_A, 5, 4);
    put_bytes(&m, "\x01\x02\x03\x04", 4);

    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 0x4242, "a.example", DNSMSG_TYPE_A, &ans), 0);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 0x4243, "a.example", DNSMSG_TYPE_A, &ans), -ENOENT);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 0x4242, "b.example", DNSMSG_TYPE_A, &ans), -ENOENT);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 0x4242, "a.example.com", DNSMSG_TYPE_A, &ans), -ENOENT);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 0x4242, "a.exampl", DNSMSG_TYPE_A, &ans), -ENOENT);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 0x4242, "a.example", DNSMSG_TYPE_AAAA, &ans), -ENOENT);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 0x4242, "bad..name", DNSMSG_TYPE_A, &ans), -EINVAL);

    m.b[2] &= 0x7F; /* QR clear: a query, not an answer */
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 0x4242, "a.example", DNSMSG_TYPE_A, &ans), -ENOENT);
    m.b[2] |= 0x80;
    m.b[2] |= 0x10; /* opcode 2 (STATUS) */
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 0x4242, "a.example", DNSMSG_TYPE_A, &ans), -ENOENT);
    m.b[2] &= (uint8_t)~0x78;
    const size_t qclass_lo = QNAME_OFF + 11 + 3; /* "a.example" is 11 bytes in wire form */
    ASSERT_EQ(m.b[qclass_lo], 1);
    m.b[qclass_lo] = 3; /* QCLASS CH */
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 0x4242, "a.example", DNSMSG_TYPE_A, &ans), -ENOENT);
    m.b[qclass_lo] = 1;
    m.b[5] = 2; /* QDCOUNT 2 */
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 0x4242, "a.example", DNSMSG_TYPE_A, &ans), -ENOENT);

    /* A label holding a '.' byte is one label, not two. */
    put_header(&m, 9, RESP, 1, 0);
    put8(&m, 9);
    put_bytes(&m, "a.example", 9);
    put8(&m, 0);
    put16(&m, 1);
    put16(&m, 1);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 9, "a.example", DNSMSG_TYPE_A, &ans), -ENOENT);
    return 0;
}

TEST_IMPL(dnsmsg_rcodes)
{
    struct msg m;
    struct dnsmsg_answer ans;
    put_query(&m, 77, RESP | DNSMSG_RCODE_NXDOMAIN, 0, "gone.example", DNSMSG_TYPE_A);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 77, "gone.example", DNSMSG_TYPE_A, &ans), 0);
    ASSERT_EQ(ans.rcode, DNSMSG_RCODE_NXDOMAIN);
    ASSERT_EQ(ans.n_addrs, 0);

    /* Without the question the right id is not enough, whatever the rcode: a host that guessed
     * the id must not end the lookup (NXDOMAIN) or move it to the next server (SERVFAIL). */
    static const int rcodes[] = {DNSMSG_RCODE_NOERROR, DNSMSG_RCODE_FORMERR, DNSMSG_RCODE_SERVFAIL,
                                 DNSMSG_RCODE_NXDOMAIN, 5 /* REFUSED */};
    for (size_t i = 0; i < ARRAY_SIZE(rcodes); i++) {
        put_header(&m, 78, RESP | (unsigned)rcodes[i], 0, 0);
        ASSERT_ROW(dnsmsg_parse_answer(m.b, m.n, 78, "x.example", DNSMSG_TYPE_A, &ans) == -ENOENT, "rcode %d",
                   rcodes[i]);
    }

    /* A CNAME with no address behind it: success with no addresses (the caller may ask again). */
    put_query(&m, 79, RESP, 1, "alias.example", DNSMSG_TYPE_A);
    put_rr_ptr(&m, QNAME_OFF, DNSMSG_TYPE_CNAME, 30, 8);
    put_name(&m, "elsewhere"); /* 9 bytes: rdlength 8 is wrong */
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 79, "alias.example", DNSMSG_TYPE_A, &ans), -EINVAL);
    ASSERT_EQ(m.b[m.n - 12], 8);
    m.b[m.n - 12] = 11; /* fix rdlength, just before the rdata */
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 79, "alias.example", DNSMSG_TYPE_A, &ans), 0);
    ASSERT_EQ(ans.n_addrs, 0);
    ASSERT_EQ(ans.ttl, 30);
    return 0;
}

/* Wrong rdlength on an address record, or rdata running past the end, is malformed. */
TEST_IMPL(dnsmsg_bad_rdlength)
{
    static const struct {
        unsigned type;
        unsigned rdlen;
        size_t have;
    } rows[] = {
        {DNSMSG_TYPE_A, 0, 0},     {DNSMSG_TYPE_A, 3, 3},     {DNSMSG_TYPE_A, 5, 5},
        {DNSMSG_TYPE_A, 16, 16},   {DNSMSG_TYPE_AAAA, 4, 4},  {DNSMSG_TYPE_AAAA, 15, 15},
        {DNSMSG_TYPE_AAAA, 17, 17}, {DNSMSG_TYPE_A, 4, 3},    {DNSMSG_TYPE_A, 65535, 10},
        {DNSMSG_TYPE_CNAME, 0, 0}, {DNSMSG_TYPE_CNAME, 1, 1},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct msg m;
        struct dnsmsg_answer ans;
        put_query(&m, 5, RESP, 1, "h.example", DNSMSG_TYPE_A);
        put_rr_ptr(&m, QNAME_OFF, rows[i].type, 9, rows[i].rdlen);
        for (size_t k = 0; k < rows[i].have; k++)
            put8(&m, 1);
        ASSERT_ROW(dnsmsg_parse_answer(m.b, m.n, 5, "h.example", DNSMSG_TYPE_A, &ans) == -EINVAL,
                   "%zu", i);
    }
    return 0;
}

/* Compression pointers that loop, point outside, or chain too long. */
TEST_IMPL(dnsmsg_pointer_abuse)
{
    struct msg m;
    struct dnsmsg_answer ans;

    /* Question name is a pointer to itself. */
    put_header(&m, 3, RESP, 1, 0);
    put_ptr(&m, QNAME_OFF);
    put16(&m, 1);
    put16(&m, 1);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 3, "a.example", DNSMSG_TYPE_A, &ans), -EINVAL);

    /* Two pointers pointing at each other, reached from an answer's owner. */
    put_query(&m, 3, RESP, 1, "a.example", DNSMSG_TYPE_A);
    size_t p1 = m.n;
    put_ptr(&m, p1 + 2);
    put_ptr(&m, p1);
    put16(&m, DNSMSG_TYPE_A);
    put16(&m, 1);
    put32(&m, 1);
    put16(&m, 4);
    put32(&m, 0x01020304);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 3, "a.example", DNSMSG_TYPE_A, &ans), -EINVAL);

    /* Pointer beyond the end of the message. */
    put_query(&m, 3, RESP, 1, "a.example", DNSMSG_TYPE_A);
    put_rr_ptr(&m, 0x3FFF, DNSMSG_TYPE_A, 1, 4);
    put32(&m, 0x01020304);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 3, "a.example", DNSMSG_TYPE_A, &ans), -EINVAL);

    /* A pointer cut in half by the end of the message. */
    put_query(&m, 3, RESP, 1, "a.example", DNSMSG_TYPE_A);
    put8(&m, 0xC0);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 3, "a.example", DNSMSG_TYPE_A, &ans), -EINVAL);

    /* Reserved label types 0x40 and 0x80. */
    for (unsigned t = 0x40; t <= 0x80; t += 0x40) {
        put_query(&m, 3, RESP, 1, "a.example", DNSMSG_TYPE_A);
        put8(&m, t | 1);
        put8(&m, 'x');
        put8(&m, 0);
        put16(&m, 1);
        put16(&m, 1);
        put32(&m, 1);
        put16(&m, 4);
        put32(&m, 1);
        ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 3, "a.example", DNSMSG_TYPE_A, &ans), -EINVAL);
    }

    /* Chains of N pointers ending at the question name: 64 hops is the limit. The answer's owner
     * points forward to a run of pointers placed after the record, each to the previous one. */
    for (int hops = 63; hops <= 66; hops++) {
        put_query(&m, 3, RESP, 1, "a.example", DNSMSG_TYPE_A);
        size_t chain = m.n + 16; /* past this record: owner 2 + fixed 10 + rdata 4 */
        put_rr_ptr(&m, chain, DNSMSG_TYPE_A, 1, 4);
        put32(&m, 0x0a000001);
        ASSERT_EQ(m.n, chain);
        for (int k = 1; k < hops; k++)
            put_ptr(&m, k == hops - 1 ? QNAME_OFF : m.n + 2);
        int rc = dnsmsg_parse_answer(m.b, m.n, 3, "a.example", DNSMSG_TYPE_A, &ans);
        ASSERT_ROW(hops <= 64 ? rc == 0 && ans.n_addrs == 1 : rc == -EINVAL, "%d hops rc=%d", hops, rc);
    }

    /* A name longer than 255 bytes: five 63-byte labels written out. */
    put_header(&m, 3, RESP, 1, 0);
    for (int k = 0; k < 5; k++) {
        put8(&m, 63);
        for (int c = 0; c < 63; c++)
            put8(&m, 'q');
    }
    put8(&m, 0);
    put16(&m, 1);
    put16(&m, 1);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 3, "a.example", DNSMSG_TYPE_A, &ans), -EINVAL);

    /* A label followed by a pointer back to itself: grows by 64 bytes per hop until refused. */
    put_header(&m, 3, RESP, 1, 0);
    put8(&m, 63);
    for (int c = 0; c < 63; c++)
        put8(&m, 'r');
    put_ptr(&m, QNAME_OFF);
    put16(&m, 1);
    put16(&m, 1);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 3, "a.example", DNSMSG_TYPE_A, &ans), -EINVAL);
    return 0;
}

TEST_IMPL(dnsmsg_cname_loop)
{
    struct msg m;
    struct dnsmsg_answer ans;
    /* a -> b -> a */
    put_query(&m, 4, RESP, 2, "a.example", DNSMSG_TYPE_A);
    size_t b_at = m.n;
    put_name(&m, "b.example");
    put16(&m, DNSMSG_TYPE_CNAME);
    put16(&m, 1);
    put32(&m, 1);
    put16(&m, 2);
    put_ptr(&m, QNAME_OFF);
    put_rr_ptr(&m, QNAME_OFF, DNSMSG_TYPE_CNAME, 1, 2);
    put_ptr(&m, b_at);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 4, "a.example", DNSMSG_TYPE_A, &ans), -EINVAL);

    /* A chain of 16 CNAMEs resolves; 17 is too many. */
    for (int len = 16; len <= 17; len++) {
        put_query(&m, 4, RESP, (unsigned)len + 1, "c0.example", DNSMSG_TYPE_A);
        size_t owner = QNAME_OFF;
        for (int k = 1; k <= len; k++) {
            char name[16];
            snprintf(name, sizeof(name), "c%d.example", k);
            put_rr_ptr(&m, owner, DNSMSG_TYPE_CNAME, 1, (unsigned)strlen(name) + 2);
            owner = put_name(&m, name);
        }
        put_rr_ptr(&m, owner, DNSMSG_TYPE_A, 1, 4);
        put32(&m, 0x0a000001);
        int rc = dnsmsg_parse_answer(m.b, m.n, 4, "c0.example", DNSMSG_TYPE_A, &ans);
        ASSERT_ROW(len == 16 ? rc == 0 && ans.n_addrs == 1 : rc == -EINVAL, "%d rc=%d", len, rc);
    }
    return 0;
}

/* Every prefix of a valid answer: never a crash, and a cut message is malformed unless TC says it
 * was truncated, in which case the complete records still count. */
TEST_IMPL(dnsmsg_truncated_every_length)
{
    for (int tc = 0; tc <= 1; tc++) {
        struct msg m;
        struct dnsmsg_answer ans;
        put_query(&m, 6, RESP | (tc ? 0x0200 : 0), 3, "t.example", DNSMSG_TYPE_A);
        size_t question_end = m.n;
        size_t rec_end[3];
        for (int k = 0; k < 3; k++) {
            put_rr_ptr(&m, QNAME_OFF, DNSMSG_TYPE_A, 100u - (unsigned)k, 4);
            put32(&m, 0x0a000001u + (uint32_t)k);
            rec_end[k] = m.n;
        }
        for (size_t len = 0; len <= m.n; len++) {
            /* A copy of exactly len bytes, so ASan sees any read past it. */
            uint8_t *copy = malloc(len ? len : 1);
            ASSERT(copy != NULL);
            memcpy(copy, m.b, len);
            int rc = dnsmsg_parse_answer(copy, len, 6, "t.example", DNSMSG_TYPE_A, &ans);
            free(copy);
            if (len < question_end) {
                ASSERT_ROW(rc == -EINVAL, "tc=%d len=%zu rc=%d", tc, len, rc);
                continue;
            }
            size_t complete = (len >= rec_end[0]) + (len >= rec_end[1]) + (len >= rec_end[2]);
            if (len == m.n) {
                ASSERT_EQ(rc, 0);
                ASSERT_EQ(ans.n_addrs, 3);
                ASSERT_EQ(ans.ttl, 98);
            } else if (tc) {
                ASSERT_ROW(rc == 0 && ans.truncated && ans.n_addrs == complete, "len=%zu rc=%d", len, rc);
            } else {
                ASSERT_ROW(rc == -EINVAL, "len=%zu rc=%d", len, rc);
            }
        }
    }
    return 0;
}

/* A huge ANCOUNT with few records is malformed; many records keep only DNSMSG_MAX_ADDRS. */
TEST_IMPL(dnsmsg_counts)
{
    struct msg m;
    struct dnsmsg_answer ans;
    put_query(&m, 8, RESP, 0xFFFF, "n.example", DNSMSG_TYPE_A);
    put_rr_ptr(&m, QNAME_OFF, DNSMSG_TYPE_A, 1, 4);
    put32(&m, 1);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 8, "n.example", DNSMSG_TYPE_A, &ans), -EINVAL);

    put_query(&m, 8, RESP, 40, "n.example", DNSMSG_TYPE_A);
    for (uint32_t k = 0; k < 40; k++) {
        /* The kept records' TTLs are 1000..985; the dropped ones' are lower and must not count. */
        put_rr_ptr(&m, QNAME_OFF, DNSMSG_TYPE_A, 1000 - k, 4);
        put32(&m, 0x0a000000 + k);
    }
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 8, "n.example", DNSMSG_TYPE_A, &ans), 0);
    ASSERT_EQ(ans.n_addrs, DNSMSG_MAX_ADDRS);
    ASSERT_STR_EQ(fmt(&ans.addrs[15]), "10.0.0.15");
    ASSERT_EQ(ans.ttl, 985);

    /* TTLs with the top bit set count as 0 (RFC 2181); records of another class are skipped. */
    put_query(&m, 8, RESP, 2, "n.example", DNSMSG_TYPE_A);
    put_rr_ptr(&m, QNAME_OFF, DNSMSG_TYPE_A, 0x80000005u, 4);
    put32(&m, 0x0a000001);
    put_ptr(&m, QNAME_OFF);
    put16(&m, DNSMSG_TYPE_A);
    put16(&m, 3); /* CH */
    put32(&m, 1);
    put16(&m, 7); /* any length: not ours to judge */
    put_bytes(&m, "chaos!!", 7);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 8, "n.example", DNSMSG_TYPE_A, &ans), 0);
    ASSERT_EQ(ans.n_addrs, 1);
    ASSERT_EQ(ans.ttl, 0);

    /* Fewer than 12 bytes. */
    ASSERT_EQ(dnsmsg_parse_answer(m.b, 11, 8, "n.example", DNSMSG_TYPE_A, &ans), -EINVAL);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, 0, 8, "n.example", DNSMSG_TYPE_A, &ans), -EINVAL);
    return 0;
}

/* Writes the NSCOUNT field (put_header() leaves it 0). */
static void set_nscount(struct msg *m, unsigned n)
{
    m->b[8] = (uint8_t)(n >> 8);
    m->b[9] = (uint8_t)n;
}

/* An SOA record owned by the name at owner (a pointer): MNAME and RNAME compressed or not, then
 * SERIAL REFRESH RETRY EXPIRE MINIMUM. rdlen_fix is added to the true rdata length. */
static void put_soa(struct msg *m, size_t owner, uint32_t ttl, uint32_t minimum, int compressed, int rdlen_fix)
{
    size_t names = compressed ? 4 : 2 + 2; /* two pointers, or two root names plus padding below */
    put_rr_ptr(m, owner, DNSMSG_TYPE_SOA, ttl, (unsigned)((int)(names + 20) + rdlen_fix));
    if (compressed) {
        put_ptr(m, owner);
        put_ptr(m, owner);
    } else {
        put_name(m, "a");
        put8(m, 0);
    }
    put32(m, 2026120501);
    put32(m, 3600);
    put32(m, 600);
    put32(m, 86400);
    put32(m, minimum);
}

/* Negative answers (RFC 2308): the first SOA of the authority section gives the negative TTL, the
 * smaller of its TTL and MINIMUM, after an answer section with a CNAME and behind compressed
 * names; a malformed SOA, one that is not IN, or an answer with addresses gives none; a malformed
 * authority section only loses the SOA. */
TEST_IMPL(dnsmsg_negative_soa)
{
    struct msg m;
    struct dnsmsg_answer ans;
    put_query(&m, 90, RESP | DNSMSG_RCODE_NXDOMAIN, 0, "gone.example", DNSMSG_TYPE_A);
    put_soa(&m, QNAME_OFF + 5, 3600, 300, 1, 0); /* owner "example" */
    set_nscount(&m, 1);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 90, "gone.example", DNSMSG_TYPE_A, &ans), 0);
    ASSERT_EQ(ans.rcode, DNSMSG_RCODE_NXDOMAIN);
    ASSERT_EQ(ans.has_soa, 1);
    ASSERT_EQ(ans.neg_ttl, 300);

    /* NODATA behind a CNAME, the SOA's TTL the smaller, uncompressed names. */
    put_query(&m, 91, RESP, 1, "alias.example", DNSMSG_TYPE_AAAA);
    put_rr_ptr(&m, QNAME_OFF, DNSMSG_TYPE_CNAME, 30, 2);
    put_ptr(&m, QNAME_OFF + 6); /* "example" */
    put_soa(&m, QNAME_OFF + 6, 45, 900, 0, 0);
    set_nscount(&m, 1);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 91, "alias.example", DNSMSG_TYPE_AAAA, &ans), 0);
    ASSERT_EQ(ans.n_addrs, 0);
    ASSERT_EQ(ans.has_soa, 1);
    ASSERT_EQ(ans.neg_ttl, 45);

    /* The SOA's rdata one byte too long or too short: no SOA, the answer still read. */
    for (int fix = -1; fix <= 1; fix += 2) {
        put_query(&m, 92, RESP | DNSMSG_RCODE_NXDOMAIN, 0, "gone.example", DNSMSG_TYPE_A);
        put_soa(&m, QNAME_OFF + 5, 3600, 300, 1, fix);
        if (fix > 0)
            put8(&m, 0);
        set_nscount(&m, 1);
        ASSERT_ROW(dnsmsg_parse_answer(m.b, m.n, 92, "gone.example", DNSMSG_TYPE_A, &ans) == 0, "fix %d", fix);
        ASSERT_ROW(ans.rcode == DNSMSG_RCODE_NXDOMAIN && ans.has_soa == 0, "fix %d", fix);
    }
    /* NSCOUNT says two records, one is there: the first still counts. */
    put_query(&m, 93, RESP | DNSMSG_RCODE_NXDOMAIN, 0, "gone.example", DNSMSG_TYPE_A);
    put_soa(&m, QNAME_OFF + 5, 100, 300, 1, 0);
    set_nscount(&m, 2);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 93, "gone.example", DNSMSG_TYPE_A, &ans), 0);
    ASSERT_EQ(ans.has_soa, 1);
    ASSERT_EQ(ans.neg_ttl, 100);
    /* ...and a cut record before it loses it. */
    put_query(&m, 94, RESP | DNSMSG_RCODE_NXDOMAIN, 0, "gone.example", DNSMSG_TYPE_A);
    put_rr_ptr(&m, QNAME_OFF, DNSMSG_TYPE_A, 60, 40);
    put32(&m, 0);
    set_nscount(&m, 1);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 94, "gone.example", DNSMSG_TYPE_A, &ans), 0);
    ASSERT_EQ(ans.has_soa, 0);
    /* A MINIMUM with the top bit set counts as 0. */
    put_query(&m, 95, RESP | DNSMSG_RCODE_NXDOMAIN, 0, "gone.example", DNSMSG_TYPE_A);
    put_soa(&m, QNAME_OFF + 5, 100, 0x80000001u, 1, 0);
    set_nscount(&m, 1);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 95, "gone.example", DNSMSG_TYPE_A, &ans), 0);
    ASSERT_EQ(ans.has_soa, 1);
    ASSERT_EQ(ans.neg_ttl, 0);

    /* An answer with an address carries no negative TTL. */
    put_query(&m, 96, RESP, 1, "www.example", DNSMSG_TYPE_A);
    put_rr_ptr(&m, QNAME_OFF, DNSMSG_TYPE_A, 60, 4);
    put32(&m, 0xC0000207);
    put_soa(&m, QNAME_OFF + 4, 100, 300, 1, 0);
    set_nscount(&m, 1);
    ASSERT_EQ(dnsmsg_parse_answer(m.b, m.n, 96, "www.example", DNSMSG_TYPE_A, &ans), 0);
    ASSERT_EQ(ans.n_addrs, 1);
    ASSERT_EQ(ans.has_soa, 0);
    return 0;
}
