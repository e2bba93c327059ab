/* Control channel packets: the plain layout, and the tls-auth / tls-crypt wrapping around it.
 * Pure code over OpenSSL; no I/O. */
#ifndef VPN2SOCKS_OPENVPN_CONTROL_H
#define VPN2SOCKS_OPENVPN_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "tunnel/openvpn/data.h"
#include "tunnel/openvpn/proto.h"

enum ovpn_wrap_mode {
    OVPN_WRAP_NONE,
    OVPN_WRAP_AUTH,  /* tls-auth: HMAC and a replay id on every control packet */
    OVPN_WRAP_CRYPT, /* tls-crypt: HMAC-SHA256 tag and AES-256-CTR */
};

enum { OVPN_WRAP_MAX_HMAC = 64 };

struct ovpn_wrap {
    enum ovpn_wrap_mode mode;
    const char *digest;                 /* tls-auth: the "auth" digest; tls-crypt: SHA256 */
    size_t hmac_len;
    uint8_t hmac_out[OVPN_WRAP_MAX_HMAC];
    uint8_t hmac_in[OVPN_WRAP_MAX_HMAC];
    uint8_t cipher_out[32];             /* tls-crypt only */
    uint8_t cipher_in[32];
    uint8_t wkc[OVPN_WKC_MAX_LEN];      /* tls-crypt-v2: the wrapped client key, sent in the clear
                                         * after HARD_RESET_CLIENT_V3 and CONTROL_WKC_V1; wkc_len
                                         * 0 without */
    size_t wkc_len;
    uint32_t send_id;                   /* replay id of the last packet sent */
    uint32_t send_time;
    struct ovpn_replay replay;
};

/* Sets up wrapping from a 256-byte static key (two records of a 64-byte cipher key and a 64-byte
 * HMAC key). key_direction: -1 = both ways use record 0 (tls-auth without key-direction); 1 =
 * send with record 1, receive with record 0 (a client's tls-crypt, key-direction 1); 0 = the
 * reverse. tls-crypt treats -1 as 1. digest is the tls-auth HMAC ("SHA1"). 0 or -EINVAL. */
int ovpn_wrap_init(struct ovpn_wrap *w, enum ovpn_wrap_mode mode, const uint8_t *key, int key_direction,
                   const char *digest);
/* Makes a tls-crypt wrapping tls-crypt-v2: wkc (the wrapped client key, at most OVPN_WKC_MAX_LEN
 * bytes) follows every HARD_RESET_CLIENT_V3 and CONTROL_WKC_V1 that ovpn_ctrl_encode writes, and
 * those opcodes become encodable. 0, or -EINVAL (not tls-crypt, or too long). */
int ovpn_wrap_set_wkc(struct ovpn_wrap *w, const uint8_t *wkc, size_t len);
/* Starts a new session's wrapping from keys that ovpn_wrap_init set up once: the keys copied, the
 * replay window and packet ids new. The client expands its static key once this way and wipes the
 * key file's bytes. Under tls-crypt-v2 the replay ids count from OVPN_EARLY_NEG_START, which
 * announces early negotiation, as OpenVPN 2.6's client does. */
void ovpn_wrap_start(struct ovpn_wrap *w, const struct ovpn_wrap *keys);
/* Wipes the keys. */
void ovpn_wrap_clear(struct ovpn_wrap *w);
/* Bytes the wrapping adds to a control packet. */
size_t ovpn_wrap_overhead(const struct ovpn_wrap *w);

/* One control packet, decoded. */
struct ovpn_ctrl {
    uint8_t op;                       /* OVPN_OP_* */
    uint8_t key_id;
    uint8_t sid[OVPN_SID_LEN];        /* the sender's session id */
    size_t n_acks;
    uint32_t acks[OVPN_MAX_ACKS_ACK];
    uint8_t ack_sid[OVPN_SID_LEN];    /* the receiver's session id, echoed; only with acks */
    int has_msg_id;                   /* all but ACK_V1 */
    uint32_t msg_id;
    const uint8_t *payload;
    size_t len;
};

/* Encodes c into out. Returns the length, -ENOSPC, or -EINVAL (too many acks, opcode not a
 * control one). HARD_RESET_CLIENT_V3 and CONTROL_WKC_V1 (a CONTROL_V1 that carries the wrapped
 * client key too) are encoded only under tls-crypt-v2, with the wrapped client key after the
 * packet; a server never sends them, so ovpn_ctrl_decode refuses them. */
int ovpn_ctrl_encode(struct ovpn_wrap *w, const struct ovpn_ctrl *c, uint8_t *out, size_t cap);

/* Decodes a control packet: checks and strips the wrapping (tls-crypt decrypts into scratch, which
 * needs len bytes; payload may point into it or into pkt). Returns 0, or -EBADMSG (malformed,
 * authentication failed), -EALREADY (a replayed wrapped packet). */
int ovpn_ctrl_decode(struct ovpn_wrap *w, const uint8_t *pkt, size_t len, uint8_t *scratch, size_t scap,
                     struct ovpn_ctrl *out);

/* Reads the early negotiation records of a server's HARD_RESET_SERVER_V2 payload (proto.h) into
 * *flags (the OVPN_TLV_EARLY_NEG_FLAGS value; 0 when absent); records of other types are skipped,
 * as OpenVPN skips them. An empty payload is none. 0, or -EBADMSG (a record cut short, or a flags
 * record not 2 bytes long). */
int ovpn_early_neg_parse(const uint8_t *p, size_t len, unsigned *flags);

/* Whether an opcode is a control channel one. */
int ovpn_op_is_control(uint8_t op);

#endif
