/* socks/socks5.c: the SOCKS5 / SOCKS4 / SOCKS4a push parser and the reply builders. */
#include <sys/socket.h>

#include "socks/socks5.h"
#include "test.h"

/* What a whole conversation produced: every event in order, and where the request ended. */
struct socks_outcome {
    enum socks5_event events[4];
    size_t n_events;
    size_t request_end; /* input offset just past the completed request (or the error) */
    struct socks5_parser p;
};

/* Feeds input in chunks whose sizes are given (0-terminated; the last chunk takes the rest), and
 * after METHODS (and AUTH) keeps feeding the rest of the same chunk, as a server would. With auth,
 * the parser is told the listener requires a user name and password. */
static void socks_run_mode(struct socks_outcome *o, const uint8_t *in, size_t len, const size_t *chunks, int auth)
{
    memset(o, 0, sizeof(*o));
    socks5_parse_init(&o->p);
    if (auth)
        socks5_parse_require_auth(&o->p);
    size_t off = 0;
    while (off < len) {
        size_t chunk = *chunks ? *chunks++ : len - off;
        if (chunk > len - off)
            chunk = len - off;
        size_t end = off + chunk;
        while (off < end) {
            size_t used = 12345;
            enum socks5_event ev = socks5_parse_feed(&o->p, in + off, end - off, &used);
            ASSERT(used <= end - off);
            off += used;
            if (ev == SOCKS5_EV_NEED_MORE) {
                ASSERT_EQ(off, end); /* NEED_MORE means everything was consumed */
                continue;
            }
            ASSERT(o->n_events < ARRAY_SIZE(o->events));
            o->events[o->n_events++] = ev;
            if (ev == SOCKS5_EV_REQUEST || ev == SOCKS5_EV_ERROR) {
                o->request_end = off;
                return;
            }
            if (ev == SOCKS5_EV_METHODS && socks5_parse_method(&o->p) == SOCKS5_AUTH_NO_ACCEPTABLE) {
                o->request_end = off; /* the server answers 0xFF and closes */
                return;
            }
        }
    }
}

static void socks_run(struct socks_outcome *o, const uint8_t *in, size_t len, const size_t *chunks)
{
    socks_run_mode(o, in, len, chunks, 0);
}

static void socks_run_whole(struct socks_outcome *o, const uint8_t *in, size_t len)
{
    static const size_t whole[] = {0};
    socks_run(o, in, len, whole);
}

static void socks_assert_same(const struct socks_outcome *a, const struct socks_outcome *b)
{
    ASSERT_EQ(a->n_events, b->n_events);
    ASSERT_MEM_EQ(a->events, b->events, a->n_events * sizeof(a->events[0]));
    ASSERT_EQ(a->request_end, b->request_end);
    ASSERT_EQ(a->p.state, b->p.state);
    ASSERT_EQ(a->p.version, b->p.version);
    ASSERT_MEM_EQ(a->p.methods_mask, b->p.methods_mask, sizeof(a->p.methods_mask));
    ASSERT_EQ(a->p.cmd, b->p.cmd);
    ASSERT_EQ(a->p.atyp, b->p.atyp);
    ASSERT(v2s_addr_equal(&a->p.addr, &b->p.addr));
    ASSERT_STR_EQ(a->p.name, b->p.name);
    ASSERT_EQ(a->p.port, b->p.port);
    ASSERT_EQ(a->p.error, b->p.error);
    ASSERT_EQ(a->p.user_len, b->p.user_len);
    ASSERT_MEM_EQ(a->p.user, b->p.user, a->p.user_len);
    ASSERT_EQ(a->p.password_len, b->p.password_len);
    ASSERT_MEM_EQ(a->p.password, b->p.password, a->p.password_len);
}

/* Greeting + request for CONNECT [2001:db8::1]:443, then early data the parser must leave. */
static const uint8_t socks5_ipv6_conv[] = {
    0x05, 0x02, 0x00, 0x02,                                     /* greeting: NONE, USERPASS */
    0x05, 0x01, 0x00, 0x04,                                     /* CONNECT, IPv6 */
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, /* 2001:db8::1 */
    0x01, 0xBB,                                                 /* 443 */
    'G', 'E', 'T',                                              /* early data */
};

static const uint8_t socks5_domain_conv[] = {
    0x05, 0x01, 0x00,                                   /* greeting: NONE */
    0x05, 0x01, 0x07, 0x03,                             /* CONNECT, RSV=7 (accepted), DOMAIN */
    11, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm', 0x00, 0x50, /* example.com:80 */
};

static const uint8_t socks5_ipv4_conv[] = {
    0x05, 0x01, 0x00, 0x05, 0x03, 0x00, 0x01, 192, 0, 2, 1, 0x13, 0x88, 'x',
};

/* SOCKS4a: CONNECT to host "db.internal":5432 with user id "bob". */
static const uint8_t socks4a_conv[] = {
    0x04, 0x01, 0x15, 0x38, 0, 0, 0, 9, 'b', 'o', 'b', 0,
    'd', 'b', '.', 'i', 'n', 't', 'e', 'r', 'n', 'a', 'l', 0, 'z',
};

static const uint8_t socks4_conv[] = {0x04, 0x01, 0x00, 0x16, 10, 1, 2, 3, 0, 'y'};

TEST_IMPL(socks5_connect_ipv6)
{
    struct socks_outcome o;
    socks_run_whole(&o, socks5_ipv6_conv, sizeof(socks5_ipv6_conv));
    ASSERT_EQ(o.n_events, 2);
    ASSERT_EQ(o.events[0], SOCKS5_EV_METHODS);
    ASSERT_EQ(o.events[1], SOCKS5_EV_REQUEST);
    ASSERT_EQ(o.request_end, sizeof(socks5_ipv6_conv) - 3); /* "GET" stays with the caller */
    ASSERT_EQ(o.p.version, 5);
    ASSERT_EQ(o.p.cmd, SOCKS5_CMD_CONNECT);
    ASSERT_EQ(o.p.atyp, SOCKS5_ATYP_IPV6);
    ASSERT_EQ(o.p.addr.family, AF_INET6);
    ASSERT_MEM_EQ(o.p.addr.bytes, socks5_ipv6_conv + 8, 16);
    ASSERT_EQ(o.p.port, 443);
    ASSERT_EQ(o.p.state, SOCKS5_PARSE_DONE);
    ASSERT_EQ(socks5_parse_method(&o.p), SOCKS5_AUTH_NONE);
    return 0;
}

TEST_IMPL(socks5_connect_domain_ipv4)
{
    struct socks_outcome o;
    socks_run_whole(&o, socks5_domain_conv, sizeof(socks5_domain_conv));
    ASSERT_EQ(o.n_events, 2);
    ASSERT_EQ(o.events[1], SOCKS5_EV_REQUEST);
    ASSERT_EQ(o.p.atyp, SOCKS5_ATYP_DOMAIN);
    ASSERT_STR_EQ(o.p.name, "example.com");
    ASSERT_EQ(o.p.port, 80);
    ASSERT_EQ(o.request_end, sizeof(socks5_domain_conv));

    socks_run_whole(&o, socks5_ipv4_conv, sizeof(socks5_ipv4_conv));
    ASSERT_EQ(o.events[1], SOCKS5_EV_REQUEST);
    ASSERT_EQ(o.p.cmd, SOCKS5_CMD_UDP_ASSOCIATE); /* the parser reports it; the server decides */
    ASSERT_EQ(o.p.addr.family, AF_INET);
    ASSERT_MEM_EQ(o.p.addr.bytes, "\xc0\x00\x02\x01", 4);
    ASSERT_EQ(o.p.port, 5000);
    ASSERT_EQ(o.request_end, sizeof(socks5_ipv4_conv) - 1);
    return 0;
}

/* A 255-byte name, the longest SOCKS5 can carry, fills the parser's buffer exactly. */
TEST_IMPL(socks5_longest_domain)
{
    uint8_t in[3 + 4 + 1 + 255 + 2];
    memcpy(in, "\x05\x01\x00\x05\x01\x00\x03", 7);
    in[7] = 255;
    memset(in + 8, 'a', 255);
    in[8 + 255] = 0x01;
    in[8 + 256] = 0x02;
    struct socks_outcome o;
    socks_run_whole(&o, in, sizeof(in));
    ASSERT_EQ(o.events[1], SOCKS5_EV_REQUEST);
    ASSERT_EQ(strlen(o.p.name), 255);
    ASSERT_EQ(o.p.port, 0x0102);
    return 0;
}

/* The result must not depend on how TCP split the bytes: every two-way split, every three-way
 * split, and one byte at a time, for every conversation above. */
TEST_IMPL(socks5_every_split)
{
    static const struct {
        const uint8_t *in;
        size_t len;
    } convs[] = {
        {socks5_ipv6_conv, sizeof(socks5_ipv6_conv)},
        {socks5_domain_conv, sizeof(socks5_domain_conv)},
        {socks5_ipv4_conv, sizeof(socks5_ipv4_conv)},
        {socks4a_conv, sizeof(socks4a_conv)},
        {socks4_conv, sizeof(socks4_conv)},
    };
    for (size_t c = 0; c < ARRAY_SIZE(convs); c++) {
        struct socks_outcome whole, split;
        socks_run_whole(&whole, convs[c].in, convs[c].len);
        ASSERT_EQ(whole.events[whole.n_events - 1], SOCKS5_EV_REQUEST);

        size_t ones[64];
        for (size_t k = 0; k < ARRAY_SIZE(ones); k++)
            ones[k] = 1;
        ASSERT(convs[c].len < ARRAY_SIZE(ones));
        socks_run(&split, convs[c].in, convs[c].len, ones);
        socks_assert_same(&whole, &split);

        for (size_t i = 1; i < convs[c].len; i++) {
            for (size_t j = 1; i + j <= convs[c].len; j++) {
                size_t chunks[] = {i, j, 0};
                socks_run(&split, convs[c].in, convs[c].len, chunks);
                socks_assert_same(&whole, &split);
            }
        }
    }
    return 0;
}

/* Malformed conversations: which event, which error code, and how much was read. */
TEST_IMPL(socks5_errors)
{
    static const struct {
        const char *what;
        uint8_t in[24];
        size_t len;
        int error;        /* expected p.error */
        size_t end;       /* bytes consumed when the error was reported */
    } rows[] = {
        {"version 6", {0x06, 0x01, 0x00}, 3, -1, 1},
        {"HTTP", {'G', 'E', 'T', ' '}, 4, -1, 1},
        {"request version 4", {0x05, 0x01, 0x00, 0x04, 0x01, 0x00, 0x01}, 7,
         SOCKS5_REP_GENERAL_FAILURE, 7},
        {"ATYP 2 reported at once", {0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x02, 1, 2, 3}, 10,
         SOCKS5_REP_ATYP_UNSUPPORTED, 7},
        {"ATYP 0", {0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00}, 7, SOCKS5_REP_ATYP_UNSUPPORTED, 7},
        {"CMD 9 after the whole request",
         {0x05, 0x01, 0x00, 0x05, 0x09, 0x00, 0x01, 10, 0, 0, 1, 0, 80, 'x'}, 14,
         SOCKS5_REP_CMD_UNSUPPORTED, 13},
        {"CMD 0", {0x05, 0x01, 0x00, 0x05, 0x00, 0x00, 0x03, 1, 'a', 0, 80}, 11,
         SOCKS5_REP_CMD_UNSUPPORTED, 11},
        {"empty domain", {0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x03, 0, 0, 80, 'x'}, 11,
         SOCKS5_REP_HOST_UNREACHABLE, 10},
        {"NUL in domain", {0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x03, 3, 'a', 0, 'b', 0, 80}, 13,
         SOCKS5_REP_HOST_UNREACHABLE, 13},
        {"SOCKS4a empty host", {0x04, 0x01, 0, 80, 0, 0, 0, 1, 0, 0}, 10, SOCKS4_REP_REJECTED, 10},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct socks_outcome o;
        socks_run_whole(&o, rows[i].in, rows[i].len);
        ASSERT_ROW(o.n_events >= 1 && o.events[o.n_events - 1] == SOCKS5_EV_ERROR, "%s", rows[i].what);
        ASSERT_ROW(o.p.error == rows[i].error, "%s: error %d", rows[i].what, o.p.error);
        ASSERT_ROW(o.request_end == rows[i].end, "%s: end %zu", rows[i].what, o.request_end);
        ASSERT_ROW(o.p.why != NULL && o.p.why[0] != '\0', "%s", rows[i].what);
        ASSERT_ROW(o.p.state == SOCKS5_PARSE_ERROR, "%s", rows[i].what);
        if (strcmp(rows[i].what, "request version 4") == 0)
            ASSERT_STR_EQ(o.p.why, "request version is 4, not 5"); /* the log names the byte */

        /* Errors are sticky: more input changes nothing and is not consumed. */
        size_t used = 99;
        ASSERT_EQ(socks5_parse_feed(&o.p, (const uint8_t *)"\x05", 1, &used), SOCKS5_EV_ERROR);
        ASSERT_EQ(used, 0);
        ASSERT_EQ(o.p.error, rows[i].error);
    }
    return 0;
}

/* An unknown command is answered only once the request is complete, so the reply is in sync. */
TEST_IMPL(socks5_unknown_cmd_waits)
{
    static const uint8_t in[] = {0x05, 0x01, 0x00, 0x05, 0x7F, 0x00, 0x03, 4, 'h', 'o', 's', 't', 0, 22};
    struct socks5_parser p;
    size_t used;
    socks5_parse_init(&p);
    ASSERT_EQ(socks5_parse_feed(&p, in, 3, &used), SOCKS5_EV_METHODS);
    ASSERT_EQ(used, 3);
    ASSERT_EQ(socks5_parse_feed(&p, in + 3, sizeof(in) - 4, &used), SOCKS5_EV_NEED_MORE);
    ASSERT_EQ(used, sizeof(in) - 4);
    ASSERT_EQ(socks5_parse_feed(&p, in + sizeof(in) - 1, 1, &used), SOCKS5_EV_ERROR);
    ASSERT_EQ(p.error, SOCKS5_REP_CMD_UNSUPPORTED);
    return 0;
}

TEST_IMPL(socks5_feed_after_done)
{
    struct socks5_parser p;
    size_t used;
    socks5_parse_init(&p);
    ASSERT_EQ(socks5_parse_feed(&p, socks5_ipv4_conv, sizeof(socks5_ipv4_conv), &used), SOCKS5_EV_METHODS);
    ASSERT_EQ(used, 3);
    ASSERT_EQ(socks5_parse_feed(&p, socks5_ipv4_conv + 3, sizeof(socks5_ipv4_conv) - 3, &used),
              SOCKS5_EV_REQUEST);
    ASSERT_EQ(used, sizeof(socks5_ipv4_conv) - 4);
    /* Feeding a finished parser is a bug in the caller; it must not loop forever on consumed 0. */
    ASSERT_EQ(socks5_parse_feed(&p, (const uint8_t *)"x", 1, &used), SOCKS5_EV_ERROR);
    ASSERT_EQ(used, 0);
    /* Empty feeds are harmless. */
    socks5_parse_init(&p);
    ASSERT_EQ(socks5_parse_feed(&p, NULL, 0, &used), SOCKS5_EV_NEED_MORE);
    ASSERT_EQ(used, 0);
    return 0;
}

TEST_IMPL(socks5_method_selection)
{
    static const struct {
        uint8_t in[8];
        size_t len;
        uint8_t method;
    } rows[] = {
        {{0x05, 0x01, 0x00}, 3, SOCKS5_AUTH_NONE},
        {{0x05, 0x01, 0x02}, 3, SOCKS5_AUTH_NO_ACCEPTABLE},
        {{0x05, 0x03, 0x02, 0x01, 0x00}, 5, SOCKS5_AUTH_NONE},
        {{0x05, 0x02, 0xFF, 0x80}, 4, SOCKS5_AUTH_NO_ACCEPTABLE},
        {{0x05, 0x02, 0x00, 0x00}, 4, SOCKS5_AUTH_NONE},
        /* NMETHODS 0: nothing offered, so nothing acceptable (answered 0xFF, RFC 1928); it was
         * an error, closed without an answer. The request after it is not read. */
        {{0x05, 0x00, 0x05, 0x01, 0x00, 0x01}, 6, SOCKS5_AUTH_NO_ACCEPTABLE},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct socks5_parser p;
        size_t used;
        socks5_parse_init(&p);
        ASSERT_ROW(socks5_parse_feed(&p, rows[i].in, rows[i].len, &used) == SOCKS5_EV_METHODS, "%zu", i);
        ASSERT_ROW(socks5_parse_method(&p) == rows[i].method, "%zu", i);
        ASSERT_ROW(used == 2 + (size_t)rows[i].in[1], "%zu: used %zu", i, used);
        ASSERT_ROW((p.state == SOCKS5_PARSE_ERROR) == (rows[i].method == SOCKS5_AUTH_NO_ACCEPTABLE), "%zu", i);
    }
    /* 255 methods offered (254 down to 0), NONE last. */
    uint8_t in[257];
    in[0] = 5;
    in[1] = 255;
    for (int m = 0; m < 255; m++)
        in[2 + m] = (uint8_t)(254 - m);
    struct socks5_parser p;
    size_t used;
    socks5_parse_init(&p);
    ASSERT_EQ(socks5_parse_feed(&p, in, sizeof(in), &used), SOCKS5_EV_METHODS);
    ASSERT_EQ(used, sizeof(in));
    ASSERT_EQ(socks5_parse_method(&p), SOCKS5_AUTH_NONE);
    return 0;
}

TEST_IMPL(socks4_requests)
{
    struct socks_outcome o;
    socks_run_whole(&o, socks4_conv, sizeof(socks4_conv));
    ASSERT_EQ(o.n_events, 1); /* no METHODS step in SOCKS4 */
    ASSERT_EQ(o.events[0], SOCKS5_EV_REQUEST);
    ASSERT_EQ(o.p.version, 4);
    ASSERT_EQ(o.p.cmd, 1);
    ASSERT_EQ(o.p.atyp, SOCKS5_ATYP_IPV4);
    ASSERT_MEM_EQ(o.p.addr.bytes, "\x0a\x01\x02\x03", 4);
    ASSERT_EQ(o.p.port, 22);
    ASSERT_EQ(o.request_end, sizeof(socks4_conv) - 1);

    socks_run_whole(&o, socks4a_conv, sizeof(socks4a_conv));
    ASSERT_EQ(o.events[0], SOCKS5_EV_REQUEST);
    ASSERT_EQ(o.p.version, 4);
    ASSERT_EQ(o.p.atyp, SOCKS5_ATYP_DOMAIN);
    ASSERT_STR_EQ(o.p.name, "db.internal");
    ASSERT_EQ(o.p.port, 5432);
    ASSERT_EQ(o.request_end, sizeof(socks4a_conv) - 1);

    /* BIND and unknown codes are reported as given; 0.0.0.0 is plain SOCKS4, not 4a. */
    static const uint8_t bind0[] = {0x04, 0x02, 0x00, 0x50, 0, 0, 0, 0, 0};
    socks_run_whole(&o, bind0, sizeof(bind0));
    ASSERT_EQ(o.events[0], SOCKS5_EV_REQUEST);
    ASSERT_EQ(o.p.cmd, 2);
    ASSERT_EQ(o.p.atyp, SOCKS5_ATYP_IPV4);
    static const uint8_t odd[] = {0x04, 0x63, 0x00, 0x50, 1, 2, 3, 4, 'u', 0};
    socks_run_whole(&o, odd, sizeof(odd));
    ASSERT_EQ(o.events[0], SOCKS5_EV_REQUEST);
    ASSERT_EQ(o.p.cmd, 0x63);
    return 0;
}

/* SOCKS4 strings have no length: too long must end in an error (answered 91, as any refused
 * SOCKS4 request), never an overflow. The user id is only counted, so a 4a host name may be as
 * long as a SOCKS5 one (255 bytes) beside a user id as long as a SOCKS5 user name. Failed before
 * the fix: the user id and the host had to fit in 262 bytes together, so a 253-byte host name
 * (as long as DNS allows) beside an empty user id was refused, and beside a 20-byte one a 234-byte
 * host name. */
TEST_IMPL(socks4_too_long)
{
    static uint8_t in[1024];
    struct socks_outcome o;
    static const size_t ones[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 7, 100, 3, 0};

    /* A user id that never ends: refused past 255 bytes. */
    memcpy(in, "\x04\x01\x00\x50\x01\x02\x03\x04", 8);
    memset(in + 8, 'u', sizeof(in) - 8);
    socks_run_whole(&o, in, sizeof(in));
    ASSERT_EQ(o.events[0], SOCKS5_EV_ERROR);
    ASSERT_EQ(o.p.error, SOCKS4_REP_REJECTED);
    ASSERT_EQ(o.request_end, 8 + 256);
    socks_run(&o, in, sizeof(in), ones);
    ASSERT_EQ(o.events[0], SOCKS5_EV_ERROR);

    /* A 4a host name that never ends: refused past 255 bytes. */
    memcpy(in, "\x04\x01\x00\x50\x00\x00\x00\x01\x00", 9);
    memset(in + 9, 'h', sizeof(in) - 9);
    socks_run_whole(&o, in, sizeof(in));
    ASSERT_EQ(o.events[0], SOCKS5_EV_ERROR);
    ASSERT_EQ(o.p.error, SOCKS4_REP_REJECTED);
    ASSERT_EQ(o.request_end, 9 + 256);

    /* User ids and host names around their bounds, SOCKS4a and plain SOCKS4 (whose DSTIP is
     * no 0.0.0.x: the bytes after the user id are then not its): a request with the right name
     * and the whole request consumed, or an error exactly past a bound. */
    static const size_t uids[] = {0, 1, 20, 254, 255, 256, 300};
    static const size_t hosts[] = {0, 1, 234, 253, 254, 255, 256, 300};
    for (int four_a = 0; four_a < 2; four_a++) {
        for (size_t i = 0; i < ARRAY_SIZE(uids); i++) {
            for (size_t j = 0; j < ARRAY_SIZE(hosts); j++) {
                size_t uid = uids[i], host = hosts[j], n = 0;
                static const uint8_t hdr4a[8] = {4, 1, 0, 0x50, 0, 0, 0, 1};
                static const uint8_t hdr4[8] = {4, 1, 0, 0x50, 10, 0, 0, 1};
                memcpy(in, four_a ? hdr4a : hdr4, 8);
                n = 8;
                memset(in + n, 'u', uid);
                n += uid;
                in[n++] = 0;
                size_t request_end = n;
                memset(in + n, 'h', host);
                n += host;
                in[n++] = 0;
                if (four_a)
                    request_end = n;
                socks_run_whole(&o, in, n);
                ASSERT_EQ(o.n_events, 1);
                int ok = uid <= 255 && (!four_a || (host >= 1 && host <= 255));
                ASSERT_ROW(o.events[0] == (ok ? SOCKS5_EV_REQUEST : SOCKS5_EV_ERROR),
                           "4a %d uid %zu host %zu", four_a, uid, host);
                if (!ok) {
                    ASSERT_EQ(o.p.error, SOCKS4_REP_REJECTED);
                    continue;
                }
                ASSERT_EQ(o.request_end, request_end);
                if (four_a) {
                    ASSERT_EQ(o.p.atyp, SOCKS5_ATYP_DOMAIN);
                    ASSERT_EQ(strlen(o.p.name), host);
                } else {
                    ASSERT_EQ(o.p.atyp, SOCKS5_ATYP_IPV4);
                    ASSERT_MEM_EQ(o.p.addr.bytes, "\x0a\x00\x00\x01", 4);
                }
                ASSERT_EQ(o.p.port, 0x50);
            }
        }
    }
    return 0;
}

TEST_IMPL(socks5_build_reply)
{
    uint8_t out[32];
    struct v2s_addr a;

    ASSERT_EQ(v2s_addr_parse(&a, "10.1.2.3"), 0);
    ASSERT_EQ(socks5_build_reply(out, SOCKS5_REP_SUCCEEDED, &a, 1080), 10);
    ASSERT_MEM_EQ(out, "\x05\x00\x00\x01\x0a\x01\x02\x03\x04\x38", 10);

    ASSERT_EQ(v2s_addr_parse(&a, "2001:db8::1"), 0);
    ASSERT_EQ(socks5_build_reply(out, SOCKS5_REP_SUCCEEDED, &a, 0xABCD), 22);
    ASSERT_MEM_EQ(out, "\x05\x00\x00\x04\x20\x01\x0d\xb8", 8);
    ASSERT_MEM_EQ(out + 8, "\0\0\0\0\0\0\0\0\0\0\0\x01\xab\xcd", 14);

    memset(out, 0xEE, sizeof(out));
    ASSERT_EQ(socks5_build_reply(out, SOCKS5_REP_HOST_UNREACHABLE, NULL, 1234), 10);
    ASSERT_MEM_EQ(out, "\x05\x04\x00\x01\0\0\0\0\0\0", 10);
    ASSERT_EQ(out[10], 0xEE); /* nothing written past the length */

    ASSERT_EQ(v2s_addr_parse(&a, "192.0.2.9"), 0);
    ASSERT_EQ(socks4_build_reply(out, SOCKS4_REP_GRANTED, &a, 80), 8);
    ASSERT_MEM_EQ(out, "\x00\x5a\x00\x50\xc0\x00\x02\x09", 8);
    ASSERT_EQ(socks4_build_reply(out, SOCKS4_REP_REJECTED, NULL, 80), 8);
    ASSERT_MEM_EQ(out, "\x00\x5b\0\0\0\0\0\0", 8);
    ASSERT_EQ(v2s_addr_parse(&a, "::1"), 0);
    ASSERT_EQ(socks4_build_reply(out, SOCKS4_REP_GRANTED, &a, 80), 8);
    ASSERT_MEM_EQ(out, "\x00\x5a\x00\x50\0\0\0\0", 8); /* SOCKS4 cannot say IPv6 */
    return 0;
}

/* --- username/password (RFC 1929), for a listener with --socks-auth --- */

/* curl's conversation: NONE and USERPASS offered, "bob" / "pa:ss", CONNECT example.com:443, then
 * early data. */
static const uint8_t socks5_auth_conv[] = {
    0x05, 0x02, 0x00, 0x02,                                         /* greeting */
    0x01, 3, 'b', 'o', 'b', 5, 'p', 'a', ':', 's', 's',             /* VER ULEN UNAME PLEN PASSWD */
    0x05, 0x01, 0x00, 0x03, 11, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm', 0x01, 0xBB,
    'h', 'i',
};

static void socks_run_auth(struct socks_outcome *o, const uint8_t *in, size_t len, const size_t *chunks)
{
    socks_run_mode(o, in, len, chunks, 1);
}

/* Greeting, login and request in one piece, one byte at a time, and cut at every pair of places:
 * the same events, user, password and request every time. */
TEST_IMPL(socks5_auth_every_split)
{
    static const size_t whole_chunk[] = {0};
    struct socks_outcome whole, split;
    socks_run_auth(&whole, socks5_auth_conv, sizeof(socks5_auth_conv), whole_chunk);
    ASSERT_EQ(whole.n_events, 3);
    ASSERT_EQ(whole.events[0], SOCKS5_EV_METHODS);
    ASSERT_EQ(whole.events[1], SOCKS5_EV_AUTH);
    ASSERT_EQ(whole.events[2], SOCKS5_EV_REQUEST);
    ASSERT_EQ(socks5_parse_method(&whole.p), SOCKS5_AUTH_USERPASS); /* not NONE, though offered */
    ASSERT_EQ(whole.p.user_len, 3);
    ASSERT_MEM_EQ(whole.p.user, "bob", 3);
    ASSERT_EQ(whole.p.password_len, 5);
    ASSERT_MEM_EQ(whole.p.password, "pa:ss", 5);
    ASSERT_STR_EQ(whole.p.name, "example.com");
    ASSERT_EQ(whole.p.port, 443);
    ASSERT_EQ(whole.request_end, sizeof(socks5_auth_conv) - 2);

    size_t ones[sizeof(socks5_auth_conv)];
    for (size_t k = 0; k < ARRAY_SIZE(ones); k++)
        ones[k] = 1;
    socks_run_auth(&split, socks5_auth_conv, sizeof(socks5_auth_conv), ones);
    socks_assert_same(&whole, &split);
    for (size_t i = 1; i < sizeof(socks5_auth_conv); i++) {
        for (size_t j = 1; i + j <= sizeof(socks5_auth_conv); j++) {
            size_t chunks[] = {i, j, 0};
            socks_run_auth(&split, socks5_auth_conv, sizeof(socks5_auth_conv), chunks);
            socks_assert_same(&whole, &split);
        }
    }

    /* The password is wiped on request, from the parser's buffer as well. */
    struct socks5_parser p;
    size_t used;
    socks5_parse_init(&p);
    socks5_parse_require_auth(&p);
    ASSERT_EQ(socks5_parse_feed(&p, socks5_auth_conv, sizeof(socks5_auth_conv), &used), SOCKS5_EV_METHODS);
    ASSERT_EQ(socks5_parse_feed(&p, socks5_auth_conv + 4, 11, &used), SOCKS5_EV_AUTH);
    ASSERT_EQ(used, 11);
    socks5_parse_forget_password(&p);
    ASSERT_EQ(p.password_len, 0);
    const uint8_t *bytes = (const uint8_t *)&p;
    for (size_t i = 0; i + 2 <= sizeof(p); i++)
        ASSERT_ROW(memcmp(bytes + i, "ss", 2) != 0, "%zu", i);
    /* The request still follows. */
    ASSERT_EQ(socks5_parse_feed(&p, socks5_auth_conv + 15, sizeof(socks5_auth_conv) - 15, &used), SOCKS5_EV_REQUEST);
    ASSERT_STR_EQ(p.name, "example.com");
    return 0;
}

/* Which method a listener with credentials picks: USERPASS or nothing, never NONE. */
TEST_IMPL(socks5_auth_methods)
{
    static const struct {
        uint8_t in[8];
        size_t len;
        uint8_t method;
    } rows[] = {
        {{0x05, 0x01, 0x00}, 3, SOCKS5_AUTH_NO_ACCEPTABLE}, /* curl without credentials */
        {{0x05, 0x01, 0x02}, 3, SOCKS5_AUTH_USERPASS},
        {{0x05, 0x02, 0x00, 0x02}, 4, SOCKS5_AUTH_USERPASS},
        {{0x05, 0x02, 0x02, 0x00}, 4, SOCKS5_AUTH_USERPASS},
        {{0x05, 0x02, 0x00, 0x01}, 4, SOCKS5_AUTH_NO_ACCEPTABLE}, /* GSSAPI is not offered by us */
        {{0x05, 0x03, 0x80, 0xFE, 0x02}, 5, SOCKS5_AUTH_USERPASS},
        {{0x05, 0x00}, 2, SOCKS5_AUTH_NO_ACCEPTABLE}, /* NMETHODS 0 */
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct socks5_parser p;
        size_t used;
        socks5_parse_init(&p);
        socks5_parse_require_auth(&p);
        ASSERT_ROW(socks5_parse_feed(&p, rows[i].in, rows[i].len, &used) == SOCKS5_EV_METHODS, "%zu", i);
        ASSERT_ROW(socks5_parse_method(&p) == rows[i].method, "%zu", i);
        if (rows[i].method == SOCKS5_AUTH_NO_ACCEPTABLE) {
            /* The server answers 0xFF and closes: a request sent anyway is not parsed. */
            ASSERT_ROW(p.state == SOCKS5_PARSE_ERROR && p.error == -1, "%zu", i);
            static const uint8_t req[] = {0x05, 0x01, 0x00, 0x01, 10, 0, 0, 1, 0, 80};
            ASSERT_ROW(socks5_parse_feed(&p, req, sizeof(req), &used) == SOCKS5_EV_ERROR && used == 0, "%zu", i);
        } else {
            ASSERT_ROW(p.state == SOCKS5_PARSE_AUTH, "%zu", i);
        }
    }
    return 0;
}

/* Field lengths at their limits, and sub-negotiations that are not RFC 1929. */
TEST_IMPL(socks5_auth_fields)
{
    static const uint8_t greeting[] = {0x05, 0x01, 0x02};
    uint8_t in[600];
    struct socks5_parser p;
    size_t used, n;

    /* 255 and 255, the most the length bytes can say, byte by byte. */
    n = 0;
    in[n++] = 0x01;
    in[n++] = 255;
    memset(in + n, 'u', 255);
    n += 255;
    in[n++] = 255;
    memset(in + n, 'p', 255);
    n += 255;
    socks5_parse_init(&p);
    socks5_parse_require_auth(&p);
    ASSERT_EQ(socks5_parse_feed(&p, greeting, sizeof(greeting), &used), SOCKS5_EV_METHODS);
    for (size_t i = 0; i < n; i++) {
        enum socks5_event ev = socks5_parse_feed(&p, in + i, 1, &used);
        ASSERT_EQ(used, 1);
        ASSERT_EQ(ev, i + 1 == n ? SOCKS5_EV_AUTH : SOCKS5_EV_NEED_MORE);
    }
    ASSERT_EQ(p.user_len, 255);
    ASSERT_EQ(p.password_len, 255);
    ASSERT(p.user[0] == 'u' && p.user[254] == 'u' && p.password[0] == 'p' && p.password[254] == 'p');

    /* Empty user and password (lengths 0, which the wire allows): reported, for the check to refuse. */
    static const uint8_t empty[] = {0x01, 0, 0, 0x05};
    socks5_parse_init(&p);
    socks5_parse_require_auth(&p);
    ASSERT_EQ(socks5_parse_feed(&p, greeting, sizeof(greeting), &used), SOCKS5_EV_METHODS);
    ASSERT_EQ(socks5_parse_feed(&p, empty, sizeof(empty), &used), SOCKS5_EV_AUTH);
    ASSERT_EQ(used, 3); /* the request's first byte stays with the caller */
    ASSERT_EQ(p.user_len, 0);
    ASSERT_EQ(p.password_len, 0);
    ASSERT_EQ(p.state, SOCKS5_PARSE_REQUEST);

    /* A NUL in the user name is a byte like any other (the check compares lengths and bytes). */
    static const uint8_t nul_user[] = {0x01, 2, 'a', 0, 1, 'x'};
    socks5_parse_init(&p);
    socks5_parse_require_auth(&p);
    ASSERT_EQ(socks5_parse_feed(&p, greeting, sizeof(greeting), &used), SOCKS5_EV_METHODS);
    ASSERT_EQ(socks5_parse_feed(&p, nul_user, sizeof(nul_user), &used), SOCKS5_EV_AUTH);
    ASSERT_EQ(p.user_len, 2);
    ASSERT_MEM_EQ(p.user, "a\0", 2);

    /* Not RFC 1929's version 1 (some clients send 5 here): reported as soon as VER ULEN are in,
     * for the server to answer RFC 1929's failure status (01 01) and close. It was -1, closed
     * without an answer. */
    static const uint8_t v5[] = {0x05, 3, 'b', 'o', 'b', 1, 'x'};
    socks5_parse_init(&p);
    socks5_parse_require_auth(&p);
    ASSERT_EQ(socks5_parse_feed(&p, greeting, sizeof(greeting), &used), SOCKS5_EV_METHODS);
    ASSERT_EQ(socks5_parse_feed(&p, v5, sizeof(v5), &used), SOCKS5_EV_ERROR);
    ASSERT_EQ(used, 2);
    ASSERT_EQ(p.error, SOCKS5_ERROR_USERPASS);
    ASSERT(p.why != NULL && strstr(p.why, "version") != NULL);

    /* Without credentials nothing changes: NONE, and USERPASS alone is not acceptable. */
    socks5_parse_init(&p);
    ASSERT_EQ(socks5_parse_feed(&p, greeting, sizeof(greeting), &used), SOCKS5_EV_METHODS);
    ASSERT_EQ(socks5_parse_method(&p), SOCKS5_AUTH_NO_ACCEPTABLE);

    uint8_t out[2];
    ASSERT_EQ(socks5_build_auth_reply(out, 1), 2);
    ASSERT_MEM_EQ(out, "\x01\x00", 2);
    ASSERT_EQ(socks5_build_auth_reply(out, 0), 2);
    ASSERT_MEM_EQ(out, "\x01\x01", 2);
    return 0;
}

/* SOCKS4 has no password: the parser reports the request as it is, for the server to refuse
 * (test_socks_server.c sees the refusal on the wire). */
TEST_IMPL(socks5_auth_socks4_reported)
{
    static const size_t whole_chunk[] = {0};
    struct socks_outcome o;
    socks_run_auth(&o, socks4a_conv, sizeof(socks4a_conv), whole_chunk);
    ASSERT_EQ(o.n_events, 1);
    ASSERT_EQ(o.events[0], SOCKS5_EV_REQUEST);
    ASSERT_EQ(o.p.version, SOCKS4_VERSION);
    ASSERT(o.p.auth_required);
    return 0;
}
