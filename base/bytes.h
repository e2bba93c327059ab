/* Big-endian (network order) reads and writes of wire formats, for every parser and builder: the
 * OpenVPN control and data channels, SOCKS5, DNS. Unaligned access is fine. All inline, no I/O. */
#ifndef VPN2SOCKS_BASE_BYTES_H
#define VPN2SOCKS_BASE_BYTES_H

#include <stdint.h>

static inline uint16_t v2s_get_be16(const uint8_t *b)
{
    return (uint16_t)((unsigned)b[0] << 8 | b[1]);
}

static inline uint32_t v2s_get_be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static inline uint64_t v2s_get_be64(const uint8_t *b)
{
    return (uint64_t)v2s_get_be32(b) << 32 | v2s_get_be32(b + 4);
}

static inline void v2s_put_be16(uint8_t *b, uint16_t v)
{
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}

static inline void v2s_put_be32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

static inline void v2s_put_be64(uint8_t *b, uint64_t v)
{
    v2s_put_be32(b, (uint32_t)(v >> 32));
    v2s_put_be32(b + 4, (uint32_t)v);
}

#endif
