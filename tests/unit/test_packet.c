/* stack/packet.c: which of the packets we send are pure ACKs (held back and thinned). */
#include <stdint.h>
#include <string.h>

#include "stack/packet.h"
#include "test.h"

/* An IPv4 + TCP packet: flags, TCP options (a multiple of 4 bytes) and payload length. */
static size_t make4(uint8_t *p, uint8_t flags, const uint8_t *opts, size_t optlen, size_t payload)
{
    size_t doff = 20 + optlen, len = 20 + doff + payload;
    memset(p, 0, len);
    p[0] = 0x45;
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
    p[6] = 0x40; /* DF */
    p[8] = 64;
    p[9] = 6;
    memcpy(p + 12, (const uint8_t[]){10, 97, 1, 6, 10, 99, 0, 1}, 8);
    uint8_t *t = p + 20;
    t[0] = 0xC0, t[1] = 0x01; /* port 49153 */
    t[2] = 0x1F, t[3] = 0x90; /* port 8080 */
    t[8] = 0x11, t[9] = 0x22, t[10] = 0x33, t[11] = 0x44;
    t[12] = (uint8_t)(doff / 4 << 4);
    t[13] = flags;
    if (optlen)
        memcpy(t + 20, opts, optlen);
    return len;
}

static const uint8_t ts_opts[12] = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2};
static const uint8_t sack_opts[12] = {1, 1, 5, 10, 0, 0, 0x10, 0, 0, 0, 0x20, 0};

TEST_IMPL(packet_pure_ack)
{
    uint8_t p[1600];
    struct packet_tcp_info a, b;
    size_t len = make4(p, 0x10, NULL, 0, 0);
    ASSERT_EQ(packet_classify_tcp(p, len, &a), PACKET_TCP_PURE_ACK);
    ASSERT_EQ(a.ackno, 0x11223344);
    ASSERT_EQ(a.key_len, 13);
    ASSERT_EQ(a.key[0], 4);
    /* Timestamps do not stop an ACK from being pure. */
    len = make4(p, 0x10, ts_opts, sizeof(ts_opts), 0);
    ASSERT_EQ(packet_classify_tcp(p, len, &b), PACKET_TCP_PURE_ACK);
    ASSERT_EQ(memcmp(a.key, b.key, a.key_len), 0);
    /* Another port: another connection. */
    p[20 + 1] = 0x02;
    ASSERT_EQ(packet_classify_tcp(p, len, &b), PACKET_TCP_PURE_ACK);
    ASSERT(memcmp(a.key, b.key, a.key_len) != 0);
    return 0;
}

TEST_IMPL(packet_not_pure)
{
    uint8_t p[1600];
    struct packet_tcp_info i;
    static const uint8_t flags[] = {0x18 /* PSH */, 0x11 /* FIN */, 0x14 /* RST */, 0x12 /* SYN */,
                                    0x30 /* URG */, 0x04 /* RST alone */, 0x00};
    for (size_t f = 0; f < sizeof(flags); f++)
        ASSERT_EQ(packet_classify_tcp(p, make4(p, flags[f], NULL, 0, 0), &i), PACKET_TCP_OTHER);
    /* Data, SACK blocks, an option that runs past the header, a zero option length. */
    ASSERT_EQ(packet_classify_tcp(p, make4(p, 0x10, NULL, 0, 100), &i), PACKET_TCP_OTHER);
    ASSERT_EQ(packet_classify_tcp(p, make4(p, 0x10, sack_opts, sizeof(sack_opts), 0), &i), PACKET_TCP_OTHER);
    ASSERT_EQ(packet_classify_tcp(p, make4(p, 0x10, (const uint8_t[]){1, 8, 12, 0}, 4, 0), &i), PACKET_TCP_OTHER);
    ASSERT_EQ(packet_classify_tcp(p, make4(p, 0x10, (const uint8_t[]){3, 0, 0, 0}, 4, 0), &i), PACKET_TCP_OTHER);
    /* A data offset below 20 bytes. */
    size_t len = make4(p, 0x10, NULL, 0, 0);
    p[20 + 12] = 0x40;
    ASSERT_EQ(packet_classify_tcp(p, len, &i), PACKET_TCP_OTHER);
    return 0;
}

TEST_IMPL(packet_not_tcp)
{
    uint8_t p[1600];
    struct packet_tcp_info i;
    size_t len = make4(p, 0x10, NULL, 0, 0);
    p[9] = 17; /* UDP */
    ASSERT_EQ(packet_classify_tcp(p, len, &i), PACKET_NOT_TCP);
    len = make4(p, 0x10, NULL, 0, 0);
    p[6] = 0x20; /* more fragments */
    ASSERT_EQ(packet_classify_tcp(p, len, &i), PACKET_NOT_TCP);
    len = make4(p, 0x10, NULL, 0, 0);
    p[7] = 0x01; /* a fragment offset */
    ASSERT_EQ(packet_classify_tcp(p, len, &i), PACKET_NOT_TCP);
    /* Every truncation of a pure ACK, and a bad IPv4 header length. */
    len = make4(p, 0x10, ts_opts, sizeof(ts_opts), 0);
    for (size_t n = 0; n < 40; n++)
        ASSERT_EQ(packet_classify_tcp(p, n, &i), PACKET_NOT_TCP);
    for (size_t n = 40; n < len; n++)
        ASSERT_EQ(packet_classify_tcp(p, n, &i), PACKET_TCP_OTHER);
    p[0] = 0x44;
    ASSERT_EQ(packet_classify_tcp(p, len, &i), PACKET_NOT_TCP);
    p[0] = 0x46; /* the TCP header would start 4 bytes later: lengths disagree */
    ASSERT_EQ(packet_classify_tcp(p, len, &i), PACKET_TCP_OTHER);
    p[0] = 0x55; /* not IP at all */
    ASSERT_EQ(packet_classify_tcp(p, len, &i), PACKET_NOT_TCP);
    return 0;
}

TEST_IMPL(packet_ipv6)
{
    uint8_t p[128] = {0};
    struct packet_tcp_info i;
    p[0] = 0x60;
    p[5] = 20;
    p[6] = 6;
    p[7] = 64;
    p[8] = 0xfd, p[23] = 2;  /* source fd00::2 */
    p[24] = 0xfd, p[39] = 1; /* destination fd00::1 */
    uint8_t *t = p + 40;
    t[0] = 1, t[1] = 2, t[2] = 3, t[3] = 4;
    t[11] = 9;
    t[12] = 5 << 4;
    t[13] = 0x10;
    ASSERT_EQ(packet_classify_tcp(p, 60, &i), PACKET_TCP_PURE_ACK);
    ASSERT_EQ(i.key_len, 37);
    ASSERT_EQ(i.key[0], 6);
    ASSERT_EQ(i.ackno, 9);
    ASSERT_EQ(packet_classify_tcp(p, 61, &i), PACKET_TCP_OTHER); /* a byte of data */
    p[6] = 0; /* a hop-by-hop header first: not looked into */
    ASSERT_EQ(packet_classify_tcp(p, 60, &i), PACKET_NOT_TCP);
    return 0;
}
