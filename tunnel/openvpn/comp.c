/* Compression framing of data channel payloads (see comp.h). The bytes, as OpenVPN 2.6 writes
 * them (comp.h, lzo.c, comp-lz4.c, compstub.c):
 *   LZO framing (comp-lzo, compress lzo): one byte in front, 0xFA plain or 0x66 LZO1X.
 *   V1 framing (compress, compress stub, compress lz4): the sender moves the payload's first
 *     byte to the end and puts 0xFB (plain) or 0x69 (LZ4) in its place, so the payload keeps its
 *     alignment; the receiver moves it back before anything else, compressed data included.
 *   V2 framing (compress stub-v2, lz4-v2): nothing in front, unless the payload starts with 0x50:
 *     then 0x50 0x00 precedes it; 0x50 0x01 marks LZ4 data.
 * We send everything uncompressed, which every server accepts. */
#include "tunnel/openvpn/comp.h"

#include <errno.h>
#include <string.h>

#include <lz4.h>
#include <lzo/lzo1x.h>

#include "tunnel/openvpn/proto.h"

enum ovpn_comp_byte {
    OVPN_COMP_LZO = 0x66,
    OVPN_COMP_LZ4 = 0x69,
    OVPN_COMP_NONE = 0xFA,
    OVPN_COMP_NONE_SWAP = 0xFB,
    OVPN_COMP_V2_INDICATOR = 0x50,
    OVPN_COMP_V2_NONE = 0x00,
    OVPN_COMP_V2_LZ4 = 0x01,
};

int ovpn_comp_frame_is_identity(enum ovpn_comp_framing f, const uint8_t *payload, size_t len)
{
    return f == OVPN_COMP_FRAMING_NONE ||
           (f == OVPN_COMP_FRAMING_V2 && len > 0 && payload[0] != OVPN_COMP_V2_INDICATOR);
}

int ovpn_comp_frame(enum ovpn_comp_framing f, uint8_t *buf, size_t len, size_t cap, size_t *start)
{
    uint8_t *p = buf + OVPN_COMP_MAX_OVERHEAD;

    *start = OVPN_COMP_MAX_OVERHEAD;
    if (cap < OVPN_COMP_MAX_OVERHEAD || len > cap - OVPN_COMP_MAX_OVERHEAD || len > OVPN_MAX_PACKET)
        return -ENOSPC;
    /* OpenVPN frames nothing when there is nothing to send. */
    if (len == 0)
        return 0;
    switch (f) {
    case OVPN_COMP_FRAMING_NONE:
        return (int)len;
    case OVPN_COMP_FRAMING_LZO:
        p[-1] = OVPN_COMP_NONE;
        *start = OVPN_COMP_MAX_OVERHEAD - 1;
        return (int)len + 1;
    case OVPN_COMP_FRAMING_V1:
        if (len == cap - OVPN_COMP_MAX_OVERHEAD)
            return -ENOSPC;
        p[len] = p[0];
        p[0] = OVPN_COMP_NONE_SWAP;
        return (int)len + 1;
    case OVPN_COMP_FRAMING_V2:
        if (p[0] != OVPN_COMP_V2_INDICATOR)
            return (int)len;
        p[-2] = OVPN_COMP_V2_INDICATOR;
        p[-1] = OVPN_COMP_V2_NONE;
        *start = 0;
        return (int)len + 2;
    }
    return -EINVAL;
}

/* An uncompressed packet stays where it is: no copy on the download path. */
static int ovpn_comp_plain(const uint8_t *in, size_t len, size_t cap, const uint8_t **packet)
{
    if (len > cap)
        return -ENOSPC;
    *packet = in;
    return (int)len;
}

static int ovpn_comp_lzo(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    static int ovpn_comp_lzo_ready;
    lzo_uint n = cap;

    /* lzo_init() only checks that the library matches its headers; once is enough. */
    if (!ovpn_comp_lzo_ready) {
        if (lzo_init() != LZO_E_OK)
            return -EBADMSG;
        ovpn_comp_lzo_ready = 1;
    }
    /* The safe decompressor checks both buffers' bounds; it needs no work memory. */
    if (lzo1x_decompress_safe(in, len, out, &n, NULL) != LZO_E_OK || n == 0 || n > cap)
        return -EBADMSG;
    return (int)n;
}

static int ovpn_comp_lz4(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    int max = cap > OVPN_MAX_PACKET ? OVPN_MAX_PACKET : (int)cap;
    /* OpenVPN treats an empty result as an error too. */
    int n = LZ4_decompress_safe((const char *)in, (char *)out, (int)len, max);
    return n > 0 ? n : -EBADMSG;
}

int ovpn_comp_unframe(enum ovpn_comp_framing f, uint8_t *in, size_t len, uint8_t *out, size_t cap,
                      const uint8_t **packet)
{
    uint8_t c;

    *packet = in;
    if (len > OVPN_MAX_PACKET)
        return -EBADMSG;
    if (len == 0)
        return 0;
    switch (f) {
    case OVPN_COMP_FRAMING_NONE:
        return ovpn_comp_plain(in, len, cap, packet);
    case OVPN_COMP_FRAMING_LZO:
        c = in[0];
        if (c == OVPN_COMP_NONE)
            return ovpn_comp_plain(in + 1, len - 1, cap, packet);
        if (c == OVPN_COMP_LZO) {
            *packet = out;
            return ovpn_comp_lzo(in + 1, len - 1, out, cap);
        }
        return -EBADMSG;
    case OVPN_COMP_FRAMING_V1:
        c = in[0];
        in[0] = in[len - 1];
        len--;
        if (c == OVPN_COMP_NONE_SWAP)
            return ovpn_comp_plain(in, len, cap, packet);
        if (c == OVPN_COMP_LZ4 && len > 0) {
            *packet = out;
            return ovpn_comp_lz4(in, len, out, cap);
        }
        return -EBADMSG;
    case OVPN_COMP_FRAMING_V2:
        if (in[0] != OVPN_COMP_V2_INDICATOR)
            return ovpn_comp_plain(in, len, cap, packet);
        if (len < 2)
            return -EBADMSG;
        if (in[1] == OVPN_COMP_V2_NONE)
            return ovpn_comp_plain(in + 2, len - 2, cap, packet);
        if (in[1] == OVPN_COMP_V2_LZ4 && len > 2) {
            *packet = out;
            return ovpn_comp_lz4(in + 2, len - 2, out, cap);
        }
        return -EBADMSG;
    }
    return -EINVAL;
}
