/* OpenVPN wire constants: opcodes, sizes, magic payloads. One header for the protocol
 * (see ../shared/docs/openvpn-wire.md). */
#ifndef VPN2SOCKS_OPENVPN_PROTO_H
#define VPN2SOCKS_OPENVPN_PROTO_H

#include <stdint.h>

enum ovpn_opcode {
    OVPN_OP_CONTROL_SOFT_RESET_V1 = 3,
    OVPN_OP_CONTROL_V1 = 4,
    OVPN_OP_ACK_V1 = 5,
    OVPN_OP_DATA_V1 = 6,
    OVPN_OP_CONTROL_HARD_RESET_CLIENT_V2 = 7,
    OVPN_OP_CONTROL_HARD_RESET_SERVER_V2 = 8,
    OVPN_OP_DATA_V2 = 9,
    OVPN_OP_CONTROL_HARD_RESET_CLIENT_V3 = 10,
    OVPN_OP_CONTROL_WKC_V1 = 11,
};

enum ovpn_sizes {
    OVPN_OPCODE_SHIFT = 3,
    OVPN_KEY_ID_MASK = 0x07,
    OVPN_SID_LEN = 8,
    OVPN_PACKET_ID_LEN = 4,
    OVPN_PEER_ID_LEN = 3,
    OVPN_PEER_ID_UNDEF = 0xFFFFFF,
    OVPN_STATIC_KEY_LEN = 256,    /* a tls-auth / tls-crypt key file: four 64-byte slots */
    OVPN_WKC_MAX_LEN = 1024,      /* tls-crypt-v2: the wrapped client key, at most */
    OVPN_WKC_MIN_LEN = 290,       /* its tag (32), the client key (256) and its length (2) */
    OVPN_KEY_BLOCK_LEN = 256,     /* data channel key material: cipher/hmac each way */
    OVPN_KEY_SLOT_LEN = 64,
    OVPN_PRE_MASTER_LEN = 48,
    OVPN_RANDOM_LEN = 32,
    OVPN_AEAD_TAG_LEN = 16,
    OVPN_MAX_ACKS_CONTROL = 4,    /* acks riding on a CONTROL_V1; some servers take no more */
    OVPN_MAX_ACKS_ACK = 8,        /* acks in an ACK_V1 */
    OVPN_CONTROL_MAX_PACKET = 1250,
    OVPN_MAX_PACKET = 65535,
};

/* OpenVPN 2.6's early negotiation (its ssl_pkt.h), which tls-crypt-v2 servers with force-cookie
 * require. A client announces it by counting its control channel replay ids from
 * OVPN_EARLY_NEG_START (its first packet carries START + 1); such a server then answers without
 * keeping state, with a session id that is an HMAC of the client's, and puts type-length-value
 * records (u16 type, u16 length, value) in its reset's payload. OVPN_TLV_EARLY_NEG_FLAGS holds a
 * u16 of flags; OVPN_EARLY_NEG_RESEND_WKC asks for the wrapped client key again on the client's
 * next message (P_CONTROL_WKC_V1), which is what lets the server create its state then. */
enum ovpn_early_neg {
    OVPN_EARLY_NEG_START = 0x0f000000,
    OVPN_TLV_EARLY_NEG_FLAGS = 0x0001,
    OVPN_EARLY_NEG_RESEND_WKC = 0x0001,
};

/* Payloads sent as data but meant for the OpenVPN peer, never for the IP stack. */
extern const uint8_t ovpn_ping_magic[16];  /* 2a187bf3641eb4cb07ed2d0a981fc748 */
extern const uint8_t ovpn_occ_magic[16];   /* 287f346bd4ef7a812d56b8d3afc5459c, then a type byte */

enum ovpn_occ_type {
    OVPN_OCC_EXIT = 6,
};

#define OVPN_OP_BYTE(op, key_id) ((uint8_t)(((op) << OVPN_OPCODE_SHIFT) | ((key_id) & OVPN_KEY_ID_MASK)))
#define OVPN_OP_OF(byte) ((uint8_t)(byte) >> OVPN_OPCODE_SHIFT)
#define OVPN_KEY_ID_OF(byte) ((uint8_t)(byte) & OVPN_KEY_ID_MASK)

#endif
