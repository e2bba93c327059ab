/* Compression framing of data channel payloads, exactly as the server expects it. We never
 * compress; packets the server compressed (LZO, LZ4) are decompressed. Pure code. */
#ifndef VPN2SOCKS_OPENVPN_COMP_H
#define VPN2SOCKS_OPENVPN_COMP_H

#include <stddef.h>
#include <stdint.h>

enum ovpn_comp_framing {
    OVPN_COMP_FRAMING_NONE,  /* nothing configured or pushed: no byte at all */
    OVPN_COMP_FRAMING_LZO,   /* comp-lzo with any argument (no included), compress lzo: 1 byte,
                              * 0xFA plain, 0x66 LZO */
    OVPN_COMP_FRAMING_V1,    /* compress / compress stub / compress lz4: byte swap, 0xFB plain */
    OVPN_COMP_FRAMING_V2,    /* compress stub-v2 / lz4-v2: no byte unless the payload starts with 0x50 */
};

/* Bytes ovpn_comp_frame() may add in front. */
enum { OVPN_COMP_MAX_OVERHEAD = 2 };

/* Frames an IP packet for sending, uncompressed. buf holds the packet at buf[OVPN_COMP_MAX_OVERHEAD]
 * with len bytes and room for cap bytes in all; on return *start is where the framed payload
 * begins inside buf. Returns the framed length or -ENOSPC. */
int ovpn_comp_frame(enum ovpn_comp_framing f, uint8_t *buf, size_t len, size_t cap, size_t *start);

/* Whether framing would leave this payload byte for byte as it is (no framing, or V2 framing of
 * a payload that does not start with 0x50, which is any IP packet): the caller may then encrypt
 * it from where it is instead of copying it into a framing buffer. */
int ovpn_comp_frame_is_identity(enum ovpn_comp_framing f, const uint8_t *payload, size_t len);

/* Undoes the framing of a received payload, decompressing LZO or LZ4 into out. Returns the IP
 * packet length with *packet set to its first byte: inside in when the payload was not
 * compressed (nothing is copied), out when it was. Or -EBADMSG (unknown framing byte, corrupt
 * compressed data or more than cap bytes of it), -ENOSPC (an uncompressed packet longer than
 * cap: cap bounds the packet either way). A payload that is an OpenVPN ping or OCC message is
 * returned like any other (the caller filters them). in is scratch: the V1 byte swap is undone
 * in place. */
int ovpn_comp_unframe(enum ovpn_comp_framing f, uint8_t *in, size_t len, uint8_t *out, size_t cap,
                      const uint8_t **packet);

#endif
