/* tunnel/openvpn/comp.c: compression framing byte for byte, and payloads the server compressed
 * (made here with liblzo2 and liblz4, framed as OpenVPN 2.6's lzo.c and comp-lz4.c do). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <lz4.h>
#include <lzo/lzo1x.h>

#include "test.h"
#include "tunnel/openvpn/comp.h"
#include "tunnel/openvpn/proto.h"

enum { COMP_BUF = 4096 };

/* Frames in[0..len) with framing f; returns the framed length and copies the bytes to out. */
static int comp_frame(enum ovpn_comp_framing f, const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t buf[COMP_BUF];
    size_t start = 99;
    memcpy(buf + OVPN_COMP_MAX_OVERHEAD, in, len);
    int n = ovpn_comp_frame(f, buf, len, sizeof(buf), &start);
    if (n >= 0) {
        ASSERT(start <= OVPN_COMP_MAX_OVERHEAD);
        memcpy(out, buf + start, (size_t)n);
    }
    return n;
}

TEST_IMPL(ovpn_comp_frame_bytes)
{
    static const struct {
        enum ovpn_comp_framing f;
        size_t len;
        uint8_t in[5];
        int n;
        uint8_t want[7];
    } rows[] = {
        {OVPN_COMP_FRAMING_NONE, 3, {0x45, 1, 2}, 3, {0x45, 1, 2}},
        {OVPN_COMP_FRAMING_NONE, 1, {0x50}, 1, {0x50}},
        {OVPN_COMP_FRAMING_LZO, 3, {0x45, 1, 2}, 4, {0xFA, 0x45, 1, 2}},
        {OVPN_COMP_FRAMING_LZO, 1, {0x60}, 2, {0xFA, 0x60}},
        /* compstub.c with swap: the first byte goes to the end, 0xFB takes its place */
        {OVPN_COMP_FRAMING_V1, 3, {0x45, 1, 2}, 4, {0xFB, 1, 2, 0x45}},
        {OVPN_COMP_FRAMING_V1, 1, {0x60}, 2, {0xFB, 0x60}},
        {OVPN_COMP_FRAMING_V1, 5, {0x50, 0, 1, 2, 3}, 6, {0xFB, 0, 1, 2, 3, 0x50}},
        /* comp.c compv2_escape_data_ifneeded: only a leading 0x50 is escaped */
        {OVPN_COMP_FRAMING_V2, 3, {0x45, 1, 2}, 3, {0x45, 1, 2}},
        {OVPN_COMP_FRAMING_V2, 3, {0x50, 1, 2}, 5, {0x50, 0x00, 0x50, 1, 2}},
        {OVPN_COMP_FRAMING_V2, 1, {0x50}, 3, {0x50, 0x00, 0x50}},
        {OVPN_COMP_FRAMING_V2, 2, {0x00, 0x50}, 2, {0x00, 0x50}},
        /* nothing to send, nothing framed */
        {OVPN_COMP_FRAMING_LZO, 0, {0}, 0, {0}},
        {OVPN_COMP_FRAMING_V1, 0, {0}, 0, {0}},
        {OVPN_COMP_FRAMING_V2, 0, {0}, 0, {0}},
    };
    for (size_t row = 0; row < ARRAY_SIZE(rows); row++) {
        uint8_t out[COMP_BUF];
        int n = comp_frame(rows[row].f, rows[row].in, rows[row].len, out);
        ASSERT_ROW(n == rows[row].n, "%zu: %d", row, n);
        ASSERT_ROW(memcmp(out, rows[row].want, (size_t)n) == 0, "%zu", row);
    }

    /* Room: V1 needs one byte after the packet, the others only the front room. */
    uint8_t buf[16] = {0x45};
    size_t start;
    ASSERT_EQ(ovpn_comp_frame(OVPN_COMP_FRAMING_V1, buf, 14, 16, &start), -ENOSPC);
    ASSERT_EQ(ovpn_comp_frame(OVPN_COMP_FRAMING_V1, buf, 13, 16, &start), 14);
    ASSERT_EQ(ovpn_comp_frame(OVPN_COMP_FRAMING_LZO, buf, 14, 16, &start), 15);
    ASSERT_EQ(ovpn_comp_frame(OVPN_COMP_FRAMING_NONE, buf, 15, 16, &start), -ENOSPC);
    ASSERT_EQ(ovpn_comp_frame(OVPN_COMP_FRAMING_V2, buf, 3, 1, &start), -ENOSPC);
    return 0;
}

/* frame then unframe gives the packet back, for every framing, length and leading byte. */
TEST_IMPL(ovpn_comp_roundtrip)
{
    static const enum ovpn_comp_framing fs[] = {OVPN_COMP_FRAMING_NONE, OVPN_COMP_FRAMING_LZO,
                                                OVPN_COMP_FRAMING_V1, OVPN_COMP_FRAMING_V2};
    uint8_t in[300], framed[COMP_BUF], out[COMP_BUF];
    const uint8_t *pkt = NULL;

    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i * 7 + 3);
    for (size_t fi = 0; fi < ARRAY_SIZE(fs); fi++) {
        for (size_t len = 1; len <= sizeof(in); len = len < 20 ? len + 1 : len * 2) {
            for (int first = 0; first < 256; first++) {
                in[0] = (uint8_t)first;
                int n = comp_frame(fs[fi], in, len, framed);
                ASSERT(n >= (int)len);
                /* the sender skips framing it knows changes nothing */
                int same = n == (int)len && memcmp(framed, in, len) == 0;
                ASSERT_ROW(ovpn_comp_frame_is_identity(fs[fi], in, len) == same, "framing %zu first %d", fi, first);
                int m = ovpn_comp_unframe(fs[fi], framed, (size_t)n, out, sizeof(out), &pkt);
                ASSERT_ROW(m == (int)len && memcmp(pkt, in, len) == 0, "framing %zu len %zu first %d: %d",
                           fi, len, first, m);
                /* uncompressed: the packet is left where it is */
                ASSERT(pkt >= framed && pkt + len <= framed + n);
            }
        }
    }
    /* The ping passes through like any payload (the caller filters it). */
    for (size_t fi = 0; fi < ARRAY_SIZE(fs); fi++) {
        int n = comp_frame(fs[fi], ovpn_ping_magic, sizeof(ovpn_ping_magic), framed);
        ASSERT_EQ(ovpn_comp_unframe(fs[fi], framed, (size_t)n, out, sizeof(out), &pkt), sizeof(ovpn_ping_magic));
        ASSERT_MEM_EQ(pkt, ovpn_ping_magic, sizeof(ovpn_ping_magic));
    }
    return 0;
}

/* An IPv4/UDP packet with compressible content, as a server would see it. */
static size_t comp_sample(uint8_t *p, size_t len, uint8_t first)
{
    static const char text[] = "GET /index.html HTTP/1.1\r\nHost: intranet.example\r\nAccept: */*\r\n\r\n";
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)text[i % (sizeof(text) - 1)];
    p[0] = first;
    return len;
}

/* lzo.c: 0x66 then LZO1X data (the server compresses packets of 100 bytes or more). */
TEST_IMPL(ovpn_comp_unframe_lzo)
{
    static uint8_t wrk[LZO1X_1_MEM_COMPRESS];
    uint8_t in[1500], framed[COMP_BUF], out[COMP_BUF];
    const uint8_t *pkt = NULL;
    static const size_t lens[] = {100, 101, 576, 1400, 1500};

    ASSERT(lzo_init() == LZO_E_OK);
    for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
        size_t len = comp_sample(in, lens[i], 0x45);
        lzo_uint zlen = 0;
        ASSERT(lzo1x_1_compress(in, len, framed + 1, &zlen, wrk) == LZO_E_OK);
        ASSERT(zlen < len); /* it did compress */
        framed[0] = 0x66;
        int n = ovpn_comp_unframe(OVPN_COMP_FRAMING_LZO, framed, zlen + 1, out, sizeof(out), &pkt);
        ASSERT_ROW(n == (int)len && pkt == out && memcmp(out, in, len) == 0, "%zu: %d", i, n);
        /* exactly the room it needs, then one byte less */
        ASSERT_EQ(ovpn_comp_unframe(OVPN_COMP_FRAMING_LZO, framed, zlen + 1, out, len, &pkt), len);
        ASSERT_EQ(ovpn_comp_unframe(OVPN_COMP_FRAMING_LZO, framed, zlen + 1, out, len - 1, &pkt), -EBADMSG);
        /* cut short: corrupt */
        ASSERT_EQ(ovpn_comp_unframe(OVPN_COMP_FRAMING_LZO, framed, zlen, out, sizeof(out), &pkt), -EBADMSG);
        /* 0x69 (LZ4) is no byte of the LZO framing */
        framed[0] = 0x69;
        ASSERT(ovpn_comp_unframe(OVPN_COMP_FRAMING_LZO, framed, zlen + 1, out, sizeof(out), &pkt) == -EBADMSG);
    }
    return 0;
}

/* comp-lz4.c lz4_compress: 0x69 in front of LZ4 data whose first byte was moved to the end. */
TEST_IMPL(ovpn_comp_unframe_lz4_v1)
{
    uint8_t in[1500], z[COMP_BUF], framed[COMP_BUF], out[COMP_BUF];
    const uint8_t *pkt = NULL;
    static const size_t lens[] = {100, 333, 1400, 1500};

    for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
        size_t len = comp_sample(in, lens[i], 0x60);
        int zlen = LZ4_compress_default((const char *)in, (char *)z, (int)len, (int)sizeof(z));
        ASSERT(zlen > 0 && (size_t)zlen < len);
        framed[0] = 0x69;
        memcpy(framed + 1, z + 1, (size_t)zlen - 1);
        framed[zlen] = z[0];
        int n = ovpn_comp_unframe(OVPN_COMP_FRAMING_V1, framed, (size_t)zlen + 1, out, sizeof(out), &pkt);
        ASSERT_ROW(n == (int)len && pkt == out && memcmp(out, in, len) == 0, "%zu: %d", i, n);

        /* without the swap undone the data is garbage */
        framed[0] = 0x69;
        memcpy(framed + 1, z, (size_t)zlen);
        n = ovpn_comp_unframe(OVPN_COMP_FRAMING_V1, framed, (size_t)zlen + 1, out, sizeof(out), &pkt);
        ASSERT(n < 0 || (size_t)n != len || memcmp(out, in, len) != 0);
    }
    return 0;
}

/* comp-lz4.c lz4v2_compress: 0x50 0x01 then LZ4 data. */
TEST_IMPL(ovpn_comp_unframe_lz4_v2)
{
    uint8_t in[1500], framed[COMP_BUF], out[COMP_BUF];
    const uint8_t *pkt = NULL;
    static const size_t lens[] = {100, 333, 1400, 1500};

    for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
        size_t len = comp_sample(in, lens[i], 0x50); /* a leading 0x50 inside compressed data is fine */
        int zlen = LZ4_compress_default((const char *)in, (char *)framed + 2, (int)len, (int)sizeof(framed) - 2);
        ASSERT(zlen > 0 && (size_t)zlen + 2 < len);
        framed[0] = 0x50;
        framed[1] = 0x01;
        int n = ovpn_comp_unframe(OVPN_COMP_FRAMING_V2, framed, (size_t)zlen + 2, out, sizeof(out), &pkt);
        ASSERT_ROW(n == (int)len && pkt == out && memcmp(out, in, len) == 0, "%zu: %d", i, n);
        ASSERT_EQ(ovpn_comp_unframe(OVPN_COMP_FRAMING_V2, framed, (size_t)zlen + 2, out, len - 1, &pkt), -EBADMSG);
        ASSERT_EQ(ovpn_comp_unframe(OVPN_COMP_FRAMING_V2, framed, (size_t)zlen + 1, out, sizeof(out), &pkt), -EBADMSG);
    }
    return 0;
}

/* Framing bytes a server never sends for the configured framing, and broken data. */
TEST_IMPL(ovpn_comp_unframe_bad)
{
    static const struct {
        enum ovpn_comp_framing f;
        size_t len;
        uint8_t in[6];
        int rc;
        uint8_t want[4];
    } rows[] = {
        {OVPN_COMP_FRAMING_LZO, 3, {0xFB, 1, 2}, -EBADMSG, {0}},
        {OVPN_COMP_FRAMING_LZO, 3, {0x69, 1, 2}, -EBADMSG, {0}},
        {OVPN_COMP_FRAMING_LZO, 3, {0x45, 1, 2}, -EBADMSG, {0}},
        {OVPN_COMP_FRAMING_LZO, 1, {0xFA}, 0, {0}},          /* empty payload */
        {OVPN_COMP_FRAMING_LZO, 1, {0x66}, -EBADMSG, {0}},   /* no LZO data */
        {OVPN_COMP_FRAMING_LZO, 4, {0x66, 0x11, 0, 0}, -EBADMSG, {0}}, /* LZO end marker only: empty */
        {OVPN_COMP_FRAMING_LZO, 4, {0x66, 0xFF, 0xFF, 0xFF}, -EBADMSG, {0}},
        {OVPN_COMP_FRAMING_V1, 3, {0xFA, 1, 2}, -EBADMSG, {0}},
        {OVPN_COMP_FRAMING_V1, 3, {0x66, 1, 2}, -EBADMSG, {0}},
        {OVPN_COMP_FRAMING_V1, 1, {0xFB}, 0, {0}},
        {OVPN_COMP_FRAMING_V1, 1, {0x69}, -EBADMSG, {0}},
        {OVPN_COMP_FRAMING_V1, 2, {0x69, 0x00}, -EBADMSG, {0}}, /* LZ4 block of nothing */
        {OVPN_COMP_FRAMING_V1, 4, {0x69, 0xF0, 0xFF, 0xFF}, -EBADMSG, {0}},
        {OVPN_COMP_FRAMING_V1, 2, {0xFB, 0x45}, 1, {0x45}},
        {OVPN_COMP_FRAMING_V2, 1, {0x50}, -EBADMSG, {0}},
        {OVPN_COMP_FRAMING_V2, 2, {0x50, 0x00}, 0, {0}},
        {OVPN_COMP_FRAMING_V2, 3, {0x50, 0x02, 1}, -EBADMSG, {0}}, /* LZO v2: 2.6 has none */
        {OVPN_COMP_FRAMING_V2, 3, {0x50, 0x03, 1}, -EBADMSG, {0}},
        {OVPN_COMP_FRAMING_V2, 2, {0x50, 0x01}, -EBADMSG, {0}},
        {OVPN_COMP_FRAMING_V2, 3, {0x50, 0x01, 0x00}, -EBADMSG, {0}},
        {OVPN_COMP_FRAMING_V2, 3, {0xFA, 0x50, 0x01}, 3, {0xFA, 0x50, 0x01}}, /* no framing byte */
        {OVPN_COMP_FRAMING_V2, 4, {0x50, 0x00, 0x50, 7}, 2, {0x50, 7}},
        {OVPN_COMP_FRAMING_NONE, 2, {0x66, 0x50}, 2, {0x66, 0x50}},
        {OVPN_COMP_FRAMING_NONE, 0, {0}, 0, {0}},
    };
    for (size_t row = 0; row < ARRAY_SIZE(rows); row++) {
        uint8_t in[8], out[64];
        const uint8_t *pkt = NULL;
        memcpy(in, rows[row].in, sizeof(rows[row].in));
        int rc = ovpn_comp_unframe(rows[row].f, in, rows[row].len, out, sizeof(out), &pkt);
        ASSERT_ROW(rc == rows[row].rc, "%zu: %d", row, rc);
        if (rc > 0)
            ASSERT_ROW(memcmp(pkt, rows[row].want, (size_t)rc) == 0, "%zu", row);
    }

    /* Plain payloads larger than out. */
    uint8_t in[8] = {0xFA, 1, 2, 3, 4, 5, 6, 7}, out[8];
    const uint8_t *pkt = NULL;
    ASSERT_EQ(ovpn_comp_unframe(OVPN_COMP_FRAMING_LZO, in, 8, out, 6, &pkt), -ENOSPC);
    ASSERT_EQ(ovpn_comp_unframe(OVPN_COMP_FRAMING_LZO, in, 8, out, 7, &pkt), 7);
    ASSERT(pkt == in + 1);
    ASSERT_EQ(ovpn_comp_unframe(OVPN_COMP_FRAMING_NONE, in, 8, out, 7, &pkt), -ENOSPC);
    return 0;
}
