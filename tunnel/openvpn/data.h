/* The OpenVPN data channel for one key: encrypting IP packets (already compression-framed) into
 * DATA_V1 / DATA_V2 packets and back, with packet ids and a replay window. Pure code over OpenSSL
 * EVP; no I/O. */
#ifndef VPN2SOCKS_OPENVPN_DATA_H
#define VPN2SOCKS_OPENVPN_DATA_H

#include <stddef.h>
#include <stdint.h>

struct ovpn_data_key;

struct ovpn_data_params {
    const char *cipher;      /* "AES-256-GCM", "AES-128-GCM", "AES-192-GCM", "CHACHA20-POLY1305",
                              * "AES-128-CBC", "AES-192-CBC", "AES-256-CBC", "none" (any case) */
    const char *auth;        /* HMAC digest for CBC and none: "SHA1", "SHA256", "SHA512", "none" */
    uint8_t key_id;          /* 0..7 */
    int data_v2;             /* send DATA_V2 with peer_id (the server pushed peer-id) */
    uint32_t peer_id;        /* 24 bits; 0xFFFFFF is valid and echoed as is */
    /* --replay-window n: a packet id fewer than n behind the highest one seen is still taken,
     * once (1..OVPN_REPLAY_MAX); 0 = OpenVPN's default, OVPN_REPLAY_DEFAULT. */
    uint32_t replay_window;
    int replay_in_order;     /* --replay-window 0: each packet id must follow the last one */
    /* Key material as the client sees it: [0,64) cipher client->server, [64,128) hmac c->s,
     * [128,192) cipher s->c, [192,256) hmac s->c; the first keylen bytes of a slot are used. */
    const uint8_t *key_block; /* OVPN_KEY_BLOCK_LEN bytes */
};

/* Creates the key. 0, -EINVAL (unknown cipher/auth name, or a CBC cipher without auth) or
 * -ENOMEM; an AEAD cipher ignores auth, as OpenVPN does. The key block is not referenced
 * afterwards: the keys live in OpenSSL contexts, wiped by ovpn_data_key_free(). */
int ovpn_data_key_new(struct ovpn_data_key **out, const struct ovpn_data_params *p);
void ovpn_data_key_free(struct ovpn_data_key *k);

/* The most bytes encryption adds to a payload (header, packet id, tag or HMAC+IV+padding). */
size_t ovpn_data_overhead(const struct ovpn_data_key *k);

/* Packet ids: a key asks for renegotiation once its sent ids pass OVPN_DATA_ID_RENEGOTIATE
 * (OpenVPN's wrap trigger, 16 million packets before the end); past OVPN_DATA_ID_LIMIT it refuses
 * to send at all. */
#define OVPN_DATA_ID_RENEGOTIATE ((uint32_t)0xFF000000u)
#define OVPN_DATA_ID_LIMIT ((uint32_t)0xFFFFFF00u)

/* The AEAD usage limit for AES-GCM, counted per key and direction as packets plus 16-byte blocks
 * of plaintext (each packet's rounded up). Its confidentiality advantage grows as the square of
 * that sum over 2^129 (Luykx and Paterson, "Limits on Authenticated Encryption Use in TLS"); held
 * at 2^-57, the margin TLS 1.3 (RFC 8446 5.5) and DTLS 1.3 keep, the sum may reach 2^36 - 1,
 * about a TiB. OpenVPN 2.6 uses the same bound and renegotiates at 7/8 of it; so do we, which
 * leaves 2^33 blocks (128 GiB) to finish the handshake in, and past the bound itself the key
 * sends nothing more. CHACHA20-POLY1305 has no such limit here (its bound is far beyond what a
 * 32-bit packet id allows), as in OpenVPN. The integrity side, for every AEAD cipher: after 2^35
 * packets that failed authentication the key asks to be replaced, after 2^36 it decrypts no
 * more (OpenVPN's and DTLS 1.3's limit on forgery attempts). */
#define OVPN_DATA_AEAD_LIMIT (((uint64_t)1 << 36) - 1)
#define OVPN_DATA_AEAD_RENEGOTIATE (OVPN_DATA_AEAD_LIMIT / 8 * 7)
#define OVPN_DATA_AUTH_FAIL_RENEGOTIATE ((uint64_t)1 << 35)
#define OVPN_DATA_AUTH_FAIL_LIMIT ((uint64_t)1 << 36)

/* What a key has carried: the bytes and packets count whole packets on the wire, authenticated
 * ones only on receive (as reneg-bytes and reneg-pkts count them); the AEAD counts are those the
 * usage limit above adds up. */
struct ovpn_data_usage {
    uint64_t tx_packets;
    uint64_t tx_bytes;
    uint64_t rx_packets;
    uint64_t rx_bytes;
    uint64_t tx_aead;         /* packets + plaintext blocks encrypted (AES-GCM only, else 0) */
    uint64_t rx_aead;         /* packets + plaintext blocks decrypted (AES-GCM only, else 0) */
    uint64_t rx_auth_failed;  /* packets whose tag or HMAC did not match */
};

/* Why a key should be replaced now, the first reason that holds in this order. */
enum ovpn_data_reneg {
    OVPN_DATA_RENEG_NONE = 0,
    OVPN_DATA_RENEG_BYTES,      /* reneg-bytes: sent plus received bytes */
    OVPN_DATA_RENEG_PACKETS,    /* reneg-pkts: sent plus received packets */
    OVPN_DATA_RENEG_PACKET_ID,  /* sent packet ids past OVPN_DATA_ID_RENEGOTIATE */
    OVPN_DATA_RENEG_AEAD_LIMIT, /* either direction past OVPN_DATA_AEAD_RENEGOTIATE */
    OVPN_DATA_RENEG_AUTH_FAIL,  /* past OVPN_DATA_AUTH_FAIL_RENEGOTIATE failed packets */
};

/* Whether k should be renegotiated. reneg_bytes and reneg_packets: 0 = no such limit. */
enum ovpn_data_reneg ovpn_data_renegotiate_due(const struct ovpn_data_key *k, uint64_t reneg_bytes,
                                               uint64_t reneg_packets);
/* A few words for the log ("reneg-bytes", "AEAD usage limit", ...). */
const char *ovpn_data_reneg_name(enum ovpn_data_reneg why);

/* The key's counters, as of now. */
void ovpn_data_get_usage(const struct ovpn_data_key *k, struct ovpn_data_usage *out);
/* For tests only: pretend this much went through the key already. */
void ovpn_data_test_set_usage(struct ovpn_data_key *k, const struct ovpn_data_usage *u);

/* Encrypts payload into out (whole packet: opcode byte onwards). Returns the length, -ENOSPC when
 * cap is short, -EINVAL for an empty payload (OpenVPN never sends one), -EOVERFLOW when the
 * packet id space or the AEAD usage limit is used up (renegotiate), or -EIO if OpenSSL fails. */
int ovpn_data_encrypt(struct ovpn_data_key *k, const uint8_t *payload, size_t len, uint8_t *out, size_t cap);

/* Whether k refused a packet for good: ovpn_data_encrypt() returned -EOVERFLOW (its packet ids
 * or AEAD usage are used up) or ovpn_data_decrypt() -EKEYEXPIRED. Only a new key helps then. */
int ovpn_data_key_spent(const struct ovpn_data_key *k);

/* The last packet id sent (0 before the first packet). */
uint32_t ovpn_data_send_id(const struct ovpn_data_key *k);
/* For tests only: pretend last_sent ids went out already. */
void ovpn_data_test_set_send_id(struct ovpn_data_key *k, uint32_t last_sent);

/* Decrypts a whole DATA_V1/V2 packet of this key. Returns the payload length, or -EBADMSG (the
 * tag or HMAC did not match), -EPROTO (not a packet of this key: too short for its cipher, not a
 * data opcode, another key id, or a layout its sender could not have made), -EALREADY (replayed
 * or too old packet id), -ENOSPC (cap below the payload length), -EKEYEXPIRED (an AEAD key past
 * OVPN_DATA_AUTH_FAIL_LIMIT failed packets decrypts nothing more). A failure records no packet
 * id. */
int ovpn_data_decrypt(struct ovpn_data_key *k, const uint8_t *pkt, size_t len, uint8_t *out, size_t cap);

/* Whether a cipher name is one we implement (for IV_CIPHERS, NCP and the .ovpn's data-ciphers);
 * these three live in cipher.c, beside the table, with no OpenSSL. */
int ovpn_data_cipher_supported(const char *cipher);
/* The ciphers we implement, but none, as "A, B and C" for a message; cut to fit cap. */
void ovpn_data_cipher_names(char *out, size_t cap);
/* Whether the cipher is an AEAD one (no separate HMAC). */
int ovpn_data_cipher_is_aead(const char *cipher);

/* The replay window: OpenVPN's sliding window of --replay-window packet ids (64 unless the config
 * says otherwise), exposed for table-driven tests. A ring of one bit per id, id modulo its size,
 * a power of two of at least 64 bits: inline for the default, allocated beyond it (8 KiB at
 * most). Only the packet count is kept, not OpenVPN's second limit in seconds (see data.c). */
enum {
    OVPN_REPLAY_DEFAULT = 64,
    OVPN_REPLAY_MAX = 65536, /* OpenVPN's MAX_SEQ_BACKTRACK */
};
struct ovpn_replay {
    uint32_t highest; /* 0 = nothing seen yet */
    uint32_t window;  /* ids less than this behind highest are accepted; 0 = only highest + 1 */
    uint32_t bits;    /* the ring's size in bits */
    uint64_t bitmap;  /* the ring while bits is 64; bit (id % 64) set = id seen */
    uint64_t *wide;   /* the ring when larger; never set by ovpn_replay_init (structs copy) */
};
/* The default window of 64, nothing allocated. */
void ovpn_replay_init(struct ovpn_replay *r);
/* A window of `window` ids up to the highest (0: in order only, as OpenVPN's replay-window 0).
 * 0, -EINVAL above OVPN_REPLAY_MAX, or -ENOMEM; ovpn_replay_free() releases it. */
int ovpn_replay_init_window(struct ovpn_replay *r, uint32_t window);
void ovpn_replay_free(struct ovpn_replay *r);
/* 0 and records id if new and inside the window; -EALREADY for id 0, a repeat or one too old. */
int ovpn_replay_check(struct ovpn_replay *r, uint32_t id);

#endif
