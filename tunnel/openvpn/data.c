/* The OpenVPN data channel for one key (see data.h and docs/openvpn-wire.md).
 *
 * Packet layouts, as OpenVPN 2.6 builds them (crypto.c, ssl.c):
 *   AEAD:  hdr | packet_id[4] | tag[16] | ciphertext
 *          nonce = packet_id | hmac slot[0..8); AAD = hdr | packet_id for DATA_V2, packet_id alone
 *          for DATA_V1 (its opcode byte is not authenticated).
 *   CBC:   hdr | hmac[N] | iv[16] | CBC(packet_id | payload), PKCS#7 padded; the HMAC covers
 *          iv | ciphertext and is checked before anything is decrypted.
 *   none:  hdr | hmac[N] | packet_id | payload, the HMAC over packet_id | payload (no hmac with
 *          auth none).
 * hdr is the opcode byte, plus the 24-bit peer id for DATA_V2.
 *
 * The cipher and HMAC contexts are keyed once in ovpn_data_key_new(); nothing is allocated per
 * packet. An AEAD packet resets its context with the nonce; the HMAC context restarts from its
 * stored key. The CBC contexts are never reset at all (see ovpn_data_encrypt_cbc() and
 * ovpn_data_decrypt_cbc()), and CBC IVs come from the DRBG a pool at a time: per packet, the
 * reset and RAND_bytes() cost more than encrypting a small packet. */
#include "tunnel/openvpn/data.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "base/bytes.h"
#include "tunnel/openvpn/cipher.h"
#include "tunnel/openvpn/proto.h"

enum {
    OVPN_DATA_IMPLICIT_IV_LEN = 8,   /* the AEAD nonce is 12 bytes: packet id + 8 from the hmac slot */
    OVPN_DATA_NONCE_LEN = 12,
    OVPN_DATA_CBC_BLOCK = 16,
    OVPN_DATA_MAX_HMAC = 64,         /* SHA512 */
    OVPN_DATA_V1_HDR = 1,
    OVPN_DATA_V2_HDR = 1 + OVPN_PEER_ID_LEN,
    OVPN_DATA_IV_POOL = 64,          /* CBC IVs drawn from the DRBG at once */
};

static const char *const ovpn_data_digests[] = {"SHA1", "SHA224", "SHA256", "SHA384", "SHA512"};

struct ovpn_data_key {
    enum ovpn_data_mode mode;
    int gcm;                  /* AES-GCM: each packet starts with ovpn_data_gcm_start() */
    int usage_limited;
    uint8_t key_id;
    int data_v2;
    uint32_t peer_id;

    EVP_CIPHER_CTX *enc;      /* NULL for cipher none */
    EVP_CIPHER_CTX *dec;
    EVP_MAC_CTX *hmac_enc;    /* NULL for AEAD and for auth none */
    EVP_MAC_CTX *hmac_dec;
    size_t hmac_len;

    uint8_t iv_enc[OVPN_DATA_IMPLICIT_IV_LEN]; /* AEAD implicit IVs: hmac slot c->s and s->c */
    uint8_t iv_dec[OVPN_DATA_IMPLICIT_IV_LEN];

    /* CBC encryption: the chaining value the context holds now (the last ciphertext block it
     * produced, or the zero IV it was keyed with), valid when enc_chain_ok. */
    uint8_t enc_chain[OVPN_DATA_CBC_BLOCK];
    int enc_chain_ok;
    /* CBC IVs not handed out yet: iv_pool[iv_next..OVPN_DATA_IV_POOL) blocks. */
    uint8_t iv_pool[OVPN_DATA_IV_POOL][OVPN_DATA_CBC_BLOCK];
    unsigned iv_next;

    uint32_t send_id;         /* last packet id sent; the first packet carries 1 */
    int spent;                /* a packet was refused with -EOVERFLOW or -EKEYEXPIRED */
    struct ovpn_replay replay;
    struct ovpn_data_usage usage;
};

/* The OpenSSL digest name for an auth name, NULL for "none", or "" when unknown. */
static const char *ovpn_data_digest_find(const char *name)
{
    if (name == NULL)
        return "";
    if (strcasecmp(name, "none") == 0)
        return NULL;
    for (size_t i = 0; i < sizeof(ovpn_data_digests) / sizeof(ovpn_data_digests[0]); i++)
        if (strcasecmp(name, ovpn_data_digests[i]) == 0)
            return ovpn_data_digests[i];
    return "";
}

/* A cipher context keyed for one direction. CBC contexts start from a zero IV and do no padding:
 * this file pads and strips the padding itself, so that payloads go between the caller's buffers
 * without a second copy. */
static EVP_CIPHER_CTX *ovpn_data_cipher_ctx(EVP_CIPHER *cipher, const uint8_t *key, int enc,
                                           enum ovpn_data_mode mode)
{
    static const uint8_t zero_iv[OVPN_DATA_CBC_BLOCK];
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return NULL;
    if (EVP_CipherInit_ex2(ctx, cipher, key, mode == OVPN_DATA_CBC ? zero_iv : NULL, enc, NULL) != 1 ||
        (mode == OVPN_DATA_AEAD && EVP_CIPHER_CTX_get_iv_length(ctx) != OVPN_DATA_NONCE_LEN) ||
        (mode == OVPN_DATA_CBC && (EVP_CIPHER_CTX_get_iv_length(ctx) != OVPN_DATA_CBC_BLOCK ||
                                   EVP_CIPHER_CTX_get_block_size(ctx) != OVPN_DATA_CBC_BLOCK ||
                                   EVP_CIPHER_CTX_set_padding(ctx, 0) != 1))) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static EVP_MAC_CTX *ovpn_data_hmac_ctx(EVP_MAC *mac, const char *digest, const uint8_t *key,
                                       size_t key_len)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    if (ctx == NULL)
        return NULL;
    if (EVP_MAC_init(ctx, key, key_len, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int ovpn_data_key_new(struct ovpn_data_key **out, const struct ovpn_data_params *p)
{
    const struct ovpn_data_cipher_info *ci = ovpn_data_cipher_find(p->cipher);
    const char *digest = NULL;
    EVP_CIPHER *cipher = NULL;
    EVP_MAC *mac = NULL;
    struct ovpn_data_key *k = NULL;
    int rc = -EINVAL;

    *out = NULL;
    if (ci == NULL || p->key_id > OVPN_KEY_ID_MASK || p->peer_id > OVPN_PEER_ID_UNDEF ||
        p->key_block == NULL)
        return -EINVAL;
    /* An AEAD cipher authenticates itself; OpenVPN ignores --auth then. */
    if (ci->mode != OVPN_DATA_AEAD) {
        digest = ovpn_data_digest_find(p->auth);
        if ((digest != NULL && digest[0] == '\0') || (digest == NULL && ci->mode == OVPN_DATA_CBC))
            return -EINVAL;
    }

    k = calloc(1, sizeof(*k));
    if (k == NULL)
        return -ENOMEM;
    k->mode = ci->mode;
    k->usage_limited = ci->usage_limited;
    k->key_id = p->key_id;
    k->data_v2 = p->data_v2 != 0;
    k->peer_id = p->peer_id;
    k->enc_chain_ok = 1; /* the zero IV below */
    k->iv_next = OVPN_DATA_IV_POOL;
    rc = ovpn_replay_init_window(&k->replay, p->replay_in_order ? 0
                                             : p->replay_window ? p->replay_window : OVPN_REPLAY_DEFAULT);
    if (rc < 0) {
        free(k);
        return rc;
    }

    const uint8_t *kb = p->key_block;
    rc = -ENOMEM;
    if (ci->ossl != NULL) {
        cipher = EVP_CIPHER_fetch(NULL, ci->ossl, NULL);
        if (cipher == NULL) {
            rc = -EINVAL; /* not in this OpenSSL (or not allowed by its configuration) */
            goto out;
        }
        if (EVP_CIPHER_get_key_length(cipher) > OVPN_KEY_SLOT_LEN)
            goto out;
        k->gcm = EVP_CIPHER_get_mode(cipher) == EVP_CIPH_GCM_MODE;
        k->enc = ovpn_data_cipher_ctx(cipher, kb + 0 * OVPN_KEY_SLOT_LEN, 1, ci->mode);
        k->dec = ovpn_data_cipher_ctx(cipher, kb + 2 * OVPN_KEY_SLOT_LEN, 0, ci->mode);
        if (k->enc == NULL || k->dec == NULL)
            goto out;
    }
    if (ci->mode == OVPN_DATA_AEAD) {
        /* ssl.c key_ctx_update_implicit_iv: the start of each direction's hmac slot. */
        memcpy(k->iv_enc, kb + 1 * OVPN_KEY_SLOT_LEN, sizeof(k->iv_enc));
        memcpy(k->iv_dec, kb + 3 * OVPN_KEY_SLOT_LEN, sizeof(k->iv_dec));
    } else if (digest != NULL) {
        EVP_MD *md = EVP_MD_fetch(NULL, digest, NULL);
        int md_len = md != NULL ? EVP_MD_get_size(md) : -1;
        EVP_MD_free(md);
        if (md_len <= 0 || md_len > OVPN_DATA_MAX_HMAC) {
            rc = -EINVAL;
            goto out;
        }
        /* OpenVPN keys the HMAC with as many bytes as the digest is long. */
        k->hmac_len = (size_t)md_len;
        mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (mac == NULL)
            goto out;
        k->hmac_enc = ovpn_data_hmac_ctx(mac, digest, kb + 1 * OVPN_KEY_SLOT_LEN, k->hmac_len);
        k->hmac_dec = ovpn_data_hmac_ctx(mac, digest, kb + 3 * OVPN_KEY_SLOT_LEN, k->hmac_len);
        if (k->hmac_enc == NULL || k->hmac_dec == NULL)
            goto out;
    }
    *out = k;
    k = NULL;
    rc = 0;
out:
    EVP_CIPHER_free(cipher); /* the contexts hold their own references */
    EVP_MAC_free(mac);
    ovpn_data_key_free(k);
    return rc;
}

void ovpn_data_key_free(struct ovpn_data_key *k)
{
    if (k == NULL)
        return;
    /* The contexts wipe their key schedules when freed. */
    EVP_CIPHER_CTX_free(k->enc);
    EVP_CIPHER_CTX_free(k->dec);
    EVP_MAC_CTX_free(k->hmac_enc);
    EVP_MAC_CTX_free(k->hmac_dec);
    ovpn_replay_free(&k->replay);
    OPENSSL_cleanse(k, sizeof(*k));
    free(k);
}

static size_t ovpn_data_hdr_len(const struct ovpn_data_key *k)
{
    return k->data_v2 ? OVPN_DATA_V2_HDR : OVPN_DATA_V1_HDR;
}

size_t ovpn_data_overhead(const struct ovpn_data_key *k)
{
    size_t n = ovpn_data_hdr_len(k) + OVPN_PACKET_ID_LEN;
    switch (k->mode) {
    case OVPN_DATA_AEAD:
        return n + OVPN_AEAD_TAG_LEN;
    case OVPN_DATA_CBC:
        return n + k->hmac_len + OVPN_DATA_CBC_BLOCK /* iv */ + OVPN_DATA_CBC_BLOCK /* padding */;
    case OVPN_DATA_PLAIN:
        return n + k->hmac_len;
    }
    return n;
}

int ovpn_data_key_spent(const struct ovpn_data_key *k)
{
    return k->spent;
}

uint32_t ovpn_data_send_id(const struct ovpn_data_key *k)
{
    return k->send_id;
}

void ovpn_data_test_set_send_id(struct ovpn_data_key *k, uint32_t last_sent)
{
    k->send_id = last_sent;
}

void ovpn_data_get_usage(const struct ovpn_data_key *k, struct ovpn_data_usage *out)
{
    *out = k->usage;
}

void ovpn_data_test_set_usage(struct ovpn_data_key *k, const struct ovpn_data_usage *u)
{
    k->usage = *u;
}

/* What one packet of len plaintext bytes adds to the AEAD usage sum: itself and its blocks. */
static uint64_t ovpn_data_aead_cost(size_t len)
{
    return 1 + ((uint64_t)len + OVPN_DATA_CBC_BLOCK - 1) / OVPN_DATA_CBC_BLOCK;
}

enum ovpn_data_reneg ovpn_data_renegotiate_due(const struct ovpn_data_key *k, uint64_t reneg_bytes,
                                               uint64_t reneg_packets)
{
    const struct ovpn_data_usage *u = &k->usage;
    if (reneg_bytes > 0 && u->tx_bytes + u->rx_bytes >= reneg_bytes)
        return OVPN_DATA_RENEG_BYTES;
    if (reneg_packets > 0 && u->tx_packets + u->rx_packets >= reneg_packets)
        return OVPN_DATA_RENEG_PACKETS;
    if (k->send_id >= OVPN_DATA_ID_RENEGOTIATE)
        return OVPN_DATA_RENEG_PACKET_ID;
    if (k->usage_limited && (u->tx_aead >= OVPN_DATA_AEAD_RENEGOTIATE || u->rx_aead >= OVPN_DATA_AEAD_RENEGOTIATE))
        return OVPN_DATA_RENEG_AEAD_LIMIT;
    if (k->mode == OVPN_DATA_AEAD && u->rx_auth_failed >= OVPN_DATA_AUTH_FAIL_RENEGOTIATE)
        return OVPN_DATA_RENEG_AUTH_FAIL;
    return OVPN_DATA_RENEG_NONE;
}

const char *ovpn_data_reneg_name(enum ovpn_data_reneg why)
{
    switch (why) {
    case OVPN_DATA_RENEG_NONE:
        return "no reason";
    case OVPN_DATA_RENEG_BYTES:
        return "reneg-bytes";
    case OVPN_DATA_RENEG_PACKETS:
        return "reneg-pkts";
    case OVPN_DATA_RENEG_PACKET_ID:
        return "packet ids running out";
    case OVPN_DATA_RENEG_AEAD_LIMIT:
        return "AEAD usage limit";
    case OVPN_DATA_RENEG_AUTH_FAIL:
        return "too many packets failed authentication";
    }
    return "?";
}

/* HMAC of one or two ranges with a keyed context, re-initialised with its stored key. */
static int ovpn_data_hmac(EVP_MAC_CTX *ctx, const uint8_t *a, size_t a_len, const uint8_t *b,
                          size_t b_len, uint8_t *mac, size_t mac_len)
{
    size_t n = 0;
    if (EVP_MAC_init(ctx, NULL, 0, NULL) != 1 || EVP_MAC_update(ctx, a, a_len) != 1 ||
        (b_len > 0 && EVP_MAC_update(ctx, b, b_len) != 1) ||
        EVP_MAC_final(ctx, mac, &n, OVPN_DATA_MAX_HMAC) != 1 || n != mac_len)
        return -1;
    return 0;
}

/* The AEAD tag goes through the provider's parameters directly: EVP_CIPHER_CTX_ctrl() builds the
 * same parameter after a detour through the legacy control codes, 12 of its 40 ns. */
static int ovpn_data_aead_tag(EVP_CIPHER_CTX *ctx, uint8_t *tag, int set)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, OVPN_AEAD_TAG_LEN),
        OSSL_PARAM_construct_end(),
    };
    return (set ? EVP_CIPHER_CTX_set_params(ctx, params) : EVP_CIPHER_CTX_get_params(ctx, params)) == 1 ? 0 : -1;
}

/* Starts an AES-GCM packet: its nonce and, decrypting, the tag to check, in one call to the
 * provider. EVP_{En,De}cryptInit_ex2() with the nonce asks the provider for the IV length first
 * on OpenSSL 3.0 (a parameter lookup: OSSL_PARAM_locate() and its strcmp()s were ~8 % of the
 * instructions of a 1400-byte encryption), and the tag took a call of its own. The fixed IV
 * parameter with a length of -1 sets the whole 12-byte IV (OpenSSL's GCM has done so since
 * 1.0.1, for TLS); counted with callgrind, a 1400-byte packet costs 6,434 -> 5,980 instructions
 * to encrypt and 6,568 -> 5,896 to decrypt. ChaCha20-Poly1305 reads that parameter differently
 * and keeps the init call. */
static int ovpn_data_gcm_start(EVP_CIPHER_CTX *ctx, uint8_t *nonce, const uint8_t *tag)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED, nonce, (size_t)-1),
        OSSL_PARAM_construct_end(),
        OSSL_PARAM_construct_end(),
    };
    if (tag != NULL)
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, (void *)tag, OVPN_AEAD_TAG_LEN);
    return EVP_CIPHER_CTX_set_params(ctx, params) == 1 ? 0 : -1;
}

static int ovpn_data_encrypt_aead(struct ovpn_data_key *k, size_t hdr, const uint8_t *payload,
                                  size_t len, uint8_t *out)
{
    uint8_t nonce[OVPN_DATA_NONCE_LEN];
    uint8_t *pid = out + hdr, *tag = pid + OVPN_PACKET_ID_LEN, *ct = tag + OVPN_AEAD_TAG_LEN;
    /* DATA_V2 authenticates its opcode and peer id; DATA_V1 starts at the packet id. */
    const uint8_t *ad = k->data_v2 ? out : pid;
    int n1 = 0, n2 = 0;

    memcpy(nonce, pid, OVPN_PACKET_ID_LEN);
    memcpy(nonce + OVPN_PACKET_ID_LEN, k->iv_enc, OVPN_DATA_IMPLICIT_IV_LEN);
    if ((k->gcm ? ovpn_data_gcm_start(k->enc, nonce, NULL) != 0
                : EVP_EncryptInit_ex2(k->enc, NULL, NULL, nonce, NULL) != 1) ||
        EVP_EncryptUpdate(k->enc, NULL, &n1, ad, (int)(pid + OVPN_PACKET_ID_LEN - ad)) != 1 ||
        EVP_EncryptUpdate(k->enc, ct, &n1, payload, (int)len) != 1 ||
        EVP_EncryptFinal_ex(k->enc, ct + n1, &n2) != 1 || (size_t)n1 + (size_t)n2 != len ||
        ovpn_data_aead_tag(k->enc, tag, 0) != 0)
        return -EIO;
    return (int)(hdr + OVPN_PACKET_ID_LEN + OVPN_AEAD_TAG_LEN + len);
}

/* The next CBC IV. The pool holds DRBG output exactly as RAND_bytes() would return it one IV at
 * a time; drawing OVPN_DATA_IV_POOL IVs at once pays its per-call cost (locks, the reseed check,
 * the fork check's getpid(): about 570 ns, more than the AES of a small packet) once per pool.
 * A CBC IV must be unpredictable to whoever may choose the plaintext, until the packet is
 * encrypted: waiting in the pool, IVs are as private as the key next to them, and each is handed
 * out once. (A forked child would share the pool as it shares the key; vpn2socks does not
 * fork.) */
static int ovpn_data_next_iv(struct ovpn_data_key *k, uint8_t *iv)
{
    if (k->iv_next >= OVPN_DATA_IV_POOL) {
        if (RAND_bytes(&k->iv_pool[0][0], sizeof(k->iv_pool)) != 1)
            return -1;
        k->iv_next = 0;
    }
    memcpy(iv, k->iv_pool[k->iv_next++], OVPN_DATA_CBC_BLOCK);
    return 0;
}

/* Puts the encryption context back on a known chaining value, after a failed update left it
 * unknown. */
static int ovpn_data_cbc_resync(struct ovpn_data_key *k)
{
    memset(k->enc_chain, 0, sizeof(k->enc_chain));
    if (EVP_EncryptInit_ex2(k->enc, NULL, NULL, k->enc_chain, NULL) != 1)
        return -1;
    k->enc_chain_ok = 1;
    return 0;
}

/* The encryption context is never reset with the packet's IV (about 70 ns, as much as the AES of
 * a 100-byte packet). It goes on chaining from the last ciphertext block it produced,
 * k->enc_chain, so the first plaintext block goes in XORed with enc_chain and the IV: the context
 * then encrypts P1 ^ IV, the very block a context reset to the IV would, and every block after it
 * chains as usual. The padding is built here, so that only whole blocks go through the context:
 * packet id and the first 12 payload bytes in a local block, the blocks between straight from the
 * caller's payload, the rest and the padding in a last local block. */
static int ovpn_data_encrypt_cbc(struct ovpn_data_key *k, size_t hdr, const uint8_t *payload,
                                 size_t len, uint8_t *out)
{
    enum { B = OVPN_DATA_CBC_BLOCK, HEAD = OVPN_DATA_CBC_BLOCK - OVPN_PACKET_ID_LEN };
    uint8_t *mac = out + hdr, *iv = mac + k->hmac_len, *ct = iv + B;
    /* PKCS#7 pads even a whole last block, with a block of padding. */
    size_t ct_len = (OVPN_PACKET_ID_LEN + len) / B * B + B;
    size_t nblocks = ct_len / B, mid = nblocks > 2 ? (nblocks - 2) * B : 0;
    uint8_t first[B], last[B];
    int n = 0, rc = -EIO;

    if (ovpn_data_next_iv(k, iv) != 0 || (!k->enc_chain_ok && ovpn_data_cbc_resync(k) != 0))
        return -EIO;
    v2s_put_be32(first, k->send_id);
    if (nblocks == 1) {
        memcpy(first + OVPN_PACKET_ID_LEN, payload, len);
        memset(first + OVPN_PACKET_ID_LEN + len, (int)(B - OVPN_PACKET_ID_LEN - len), B - OVPN_PACKET_ID_LEN - len);
    } else {
        size_t tail = len - HEAD - mid; /* 0..15 bytes of payload in the last block */
        memcpy(first + OVPN_PACKET_ID_LEN, payload, HEAD);
        memcpy(last, payload + HEAD + mid, tail);
        memset(last + tail, (int)(B - tail), B - tail);
    }
    for (size_t i = 0; i < B; i++)
        first[i] ^= iv[i] ^ k->enc_chain[i];

    k->enc_chain_ok = 0;
    if (EVP_EncryptUpdate(k->enc, ct, &n, first, B) != 1 || n != B ||
        (mid > 0 && (EVP_EncryptUpdate(k->enc, ct + B, &n, payload + HEAD, (int)mid) != 1 || (size_t)n != mid)) ||
        (nblocks > 1 && (EVP_EncryptUpdate(k->enc, ct + B + mid, &n, last, B) != 1 || n != B)))
        goto out;
    memcpy(k->enc_chain, ct + ct_len - B, B);
    k->enc_chain_ok = 1;
    if (ovpn_data_hmac(k->hmac_enc, iv, B + ct_len, NULL, 0, mac, k->hmac_len) != 0)
        goto out;
    rc = (int)(hdr + k->hmac_len + B + ct_len);
out:
    OPENSSL_cleanse(first, sizeof(first));
    OPENSSL_cleanse(last, sizeof(last));
    return rc;
}

static int ovpn_data_encrypt_plain(struct ovpn_data_key *k, size_t hdr, const uint8_t *payload,
                                   size_t len, uint8_t *out)
{
    uint8_t *mac = out + hdr, *pid = mac + k->hmac_len;

    v2s_put_be32(pid, k->send_id);
    memcpy(pid + OVPN_PACKET_ID_LEN, payload, len);
    if (k->hmac_enc != NULL &&
        ovpn_data_hmac(k->hmac_enc, pid, OVPN_PACKET_ID_LEN + len, NULL, 0, mac, k->hmac_len) != 0)
        return -EIO;
    return (int)(hdr + k->hmac_len + OVPN_PACKET_ID_LEN + len);
}

int ovpn_data_encrypt(struct ovpn_data_key *k, const uint8_t *payload, size_t len, uint8_t *out,
                      size_t cap)
{
    size_t hdr = ovpn_data_hdr_len(k);
    size_t need = hdr + OVPN_PACKET_ID_LEN + len;
    int rc;

    /* OpenVPN never sends an empty data packet, and rejects an AEAD one. */
    if (len == 0 || len > OVPN_MAX_PACKET)
        return -EINVAL;
    if (k->mode == OVPN_DATA_AEAD)
        need += OVPN_AEAD_TAG_LEN;
    else if (k->mode == OVPN_DATA_CBC)
        need = hdr + k->hmac_len + OVPN_DATA_CBC_BLOCK +
               (OVPN_PACKET_ID_LEN + len) / OVPN_DATA_CBC_BLOCK * OVPN_DATA_CBC_BLOCK +
               OVPN_DATA_CBC_BLOCK;
    else
        need += k->hmac_len;
    if (need > cap || need > INT32_MAX)
        return -ENOSPC;
    if (k->send_id >= OVPN_DATA_ID_LIMIT ||
        (k->usage_limited && k->usage.tx_aead + ovpn_data_aead_cost(len) > OVPN_DATA_AEAD_LIMIT)) {
        k->spent = 1;
        return -EOVERFLOW;
    }

    if (k->data_v2) {
        /* The opcode byte, then the 24-bit peer id: one big-endian word with the opcode on top. */
        v2s_put_be32(out, (uint32_t)OVPN_OP_BYTE(OVPN_OP_DATA_V2, k->key_id) << 24 | (k->peer_id & 0xFFFFFF));
    } else {
        out[0] = OVPN_OP_BYTE(OVPN_OP_DATA_V1, k->key_id);
    }
    k->send_id++;
    switch (k->mode) {
    case OVPN_DATA_AEAD:
        v2s_put_be32(out + hdr, k->send_id);
        rc = ovpn_data_encrypt_aead(k, hdr, payload, len, out);
        break;
    case OVPN_DATA_CBC:
        rc = ovpn_data_encrypt_cbc(k, hdr, payload, len, out);
        break;
    default:
        rc = ovpn_data_encrypt_plain(k, hdr, payload, len, out);
        break;
    }
    if (rc > 0) {
        k->usage.tx_packets++;
        k->usage.tx_bytes += (uint64_t)rc;
        if (k->usage_limited)
            k->usage.tx_aead += ovpn_data_aead_cost(len);
    }
    return rc;
}

static int ovpn_data_decrypt_aead(struct ovpn_data_key *k, const uint8_t *pkt, size_t len,
                                  size_t hdr, uint8_t *out, size_t cap, uint32_t *id)
{
    const uint8_t *pid = pkt + hdr, *tag = pid + OVPN_PACKET_ID_LEN, *ct = tag + OVPN_AEAD_TAG_LEN;
    const uint8_t *ad = OVPN_OP_OF(pkt[0]) == OVPN_OP_DATA_V2 ? pkt : pid;
    uint8_t nonce[OVPN_DATA_NONCE_LEN];
    int n1 = 0, n2 = 0;

    /* OpenVPN drops a packet without at least one byte of ciphertext. */
    if (len < hdr + OVPN_PACKET_ID_LEN + OVPN_AEAD_TAG_LEN + 1)
        return -EPROTO;
    size_t ct_len = len - (size_t)(ct - pkt);
    if (ct_len > cap)
        return -ENOSPC;

    memcpy(nonce, pid, OVPN_PACKET_ID_LEN);
    memcpy(nonce + OVPN_PACKET_ID_LEN, k->iv_dec, OVPN_DATA_IMPLICIT_IV_LEN);
    if ((k->gcm ? ovpn_data_gcm_start(k->dec, nonce, tag) != 0
                : EVP_DecryptInit_ex2(k->dec, NULL, NULL, nonce, NULL) != 1) ||
        EVP_DecryptUpdate(k->dec, NULL, &n1, ad, (int)(tag - ad)) != 1 ||
        EVP_DecryptUpdate(k->dec, out, &n1, ct, (int)ct_len) != 1 ||
        (!k->gcm && ovpn_data_aead_tag(k->dec, (uint8_t *)tag, 1) != 0) ||
        EVP_DecryptFinal_ex(k->dec, out + n1, &n2) != 1 || (size_t)n1 + (size_t)n2 != ct_len) {
        /* Nothing unauthenticated leaves this function. */
        OPENSSL_cleanse(out, ct_len);
        return -EBADMSG;
    }
    *id = v2s_get_be32(pid);
    return (int)ct_len;
}

static int ovpn_data_decrypt_cbc(struct ovpn_data_key *k, const uint8_t *pkt, size_t len,
                                 size_t hdr, uint8_t *out, size_t cap, uint32_t *id)
{
    enum { B = OVPN_DATA_CBC_BLOCK, HEAD = OVPN_DATA_CBC_BLOCK - OVPN_PACKET_ID_LEN };
    const uint8_t *mac = pkt + hdr, *iv = mac + k->hmac_len, *ct = iv + B;
    uint8_t want[OVPN_DATA_MAX_HMAC], head[2 * B], last[B];
    const uint8_t *first = head + B;
    size_t payload_len = 0, mid = 0;
    int n = 0, rc = -EPROTO;

    if (len < (size_t)(ct - pkt) + B)
        return -EPROTO;
    size_t ct_len = len - (size_t)(ct - pkt);
    if (ovpn_data_hmac(k->hmac_dec, iv, len - (size_t)(iv - pkt), NULL, 0, want, k->hmac_len) != 0 ||
        CRYPTO_memcmp(want, mac, k->hmac_len) != 0)
        return -EBADMSG;
    /* From here on the packet is authentic: what is wrong with it, its sender made so. */
    if (ct_len % B != 0)
        return -EPROTO;

    /* The first block (packet id and 12 payload bytes) and the last (padding) go through local
     * blocks; the ones between land in out directly, so the payload needs no moving and out
     * needs room for the payload alone. The context is not reset with the IV either: the IV goes
     * in as a ciphertext block ahead of the first, so the second block out is D(C1) ^ IV = P1
     * whatever the context chained from, and the first one is thrown away. */
    size_t nblocks = ct_len / B;
    if (nblocks > 2) {
        mid = (nblocks - 2) * B;
        if (HEAD + mid > cap)
            return -ENOSPC;
    }
    if (EVP_DecryptUpdate(k->dec, head, &n, iv, 2 * B) != 1 || n != 2 * B ||
        (mid > 0 && (EVP_DecryptUpdate(k->dec, out + HEAD, &n, ct + B, (int)mid) != 1 || (size_t)n != mid)) ||
        (nblocks > 1 && (EVP_DecryptUpdate(k->dec, last, &n, ct + B + mid, B) != 1 || n != B)))
        goto out;

    /* PKCS#7 padding. The HMAC already passed, so only the key holder can get here with bad
     * padding, and timing leaks nothing an attacker could use. */
    const uint8_t *tail = nblocks > 1 ? last : first;
    uint8_t pad = tail[B - 1];
    if (pad == 0 || pad > B || ct_len - pad < OVPN_PACKET_ID_LEN)
        goto out;
    for (size_t i = B - pad; i < B; i++)
        if (tail[i] != pad)
            goto out;
    payload_len = ct_len - OVPN_PACKET_ID_LEN - pad;
    if (payload_len > cap) {
        rc = -ENOSPC;
        goto out;
    }
    if (nblocks == 1) {
        memcpy(out, first + OVPN_PACKET_ID_LEN, payload_len);
    } else {
        memcpy(out, first + OVPN_PACKET_ID_LEN, HEAD); /* a payload of two blocks or more has 12 */
        memcpy(out + HEAD + mid, last, B - pad);
    }
    *id = v2s_get_be32(first);
    rc = (int)payload_len;
out:
    OPENSSL_cleanse(head, sizeof(head));
    OPENSSL_cleanse(last, sizeof(last));
    if (rc < 0 && mid > 0)
        OPENSSL_cleanse(out + HEAD, mid);
    return rc;
}

static int ovpn_data_decrypt_plain(struct ovpn_data_key *k, const uint8_t *pkt, size_t len,
                                   size_t hdr, uint8_t *out, size_t cap, uint32_t *id)
{
    const uint8_t *mac = pkt + hdr, *pid = mac + k->hmac_len, *payload = pid + OVPN_PACKET_ID_LEN;
    uint8_t want[OVPN_DATA_MAX_HMAC];

    if (len < (size_t)(payload - pkt))
        return -EPROTO;
    if (k->hmac_dec != NULL &&
        (ovpn_data_hmac(k->hmac_dec, pid, len - (size_t)(pid - pkt), NULL, 0, want, k->hmac_len) != 0 ||
         CRYPTO_memcmp(want, mac, k->hmac_len) != 0))
        return -EBADMSG;
    size_t n = len - (size_t)(payload - pkt);
    if (n > cap)
        return -ENOSPC;
    memcpy(out, payload, n);
    *id = v2s_get_be32(pid);
    return (int)n;
}

int ovpn_data_decrypt(struct ovpn_data_key *k, const uint8_t *pkt, size_t len, uint8_t *out, size_t cap)
{
    uint32_t id = 0;
    size_t hdr;
    int rc;

    if (len < 1 || len > OVPN_MAX_PACKET || OVPN_KEY_ID_OF(pkt[0]) != k->key_id)
        return -EPROTO;
    /* Either header is accepted whatever we send; the peer id is the server's business. */
    if (OVPN_OP_OF(pkt[0]) == OVPN_OP_DATA_V2)
        hdr = OVPN_DATA_V2_HDR;
    else if (OVPN_OP_OF(pkt[0]) == OVPN_OP_DATA_V1)
        hdr = OVPN_DATA_V1_HDR;
    else
        return -EPROTO;
    if (len < hdr)
        return -EPROTO;
    if (k->mode == OVPN_DATA_AEAD && k->usage.rx_auth_failed >= OVPN_DATA_AUTH_FAIL_LIMIT) {
        k->spent = 1;
        return -EKEYEXPIRED;
    }

    switch (k->mode) {
    case OVPN_DATA_AEAD:
        rc = ovpn_data_decrypt_aead(k, pkt, len, hdr, out, cap, &id);
        break;
    case OVPN_DATA_CBC:
        rc = ovpn_data_decrypt_cbc(k, pkt, len, hdr, out, cap, &id);
        break;
    default:
        rc = ovpn_data_decrypt_plain(k, pkt, len, hdr, out, cap, &id);
        break;
    }
    if (rc == -EBADMSG)
        k->usage.rx_auth_failed++;
    if (rc < 0)
        return rc;
    /* Only an authenticated packet id may move the replay window (crypto.c checks after the tag
     * or HMAC too). */
    if (ovpn_replay_check(&k->replay, id) != 0) {
        OPENSSL_cleanse(out, (size_t)rc);
        return -EALREADY;
    }
    k->usage.rx_packets++;
    k->usage.rx_bytes += len;
    if (k->usage_limited)
        k->usage.rx_aead += ovpn_data_aead_cost((size_t)rc);
    return rc;
}

/* The replay window, as OpenVPN's packet_id.c keeps it for UDP (its "backtrack" mode): an id
 * above every one seen is taken and becomes the highest; one below it is taken once if fewer than
 * `window` ids behind. OpenVPN also refuses an id once a later one has been in for more than
 * --replay-window's second argument (15 s); that limit is not kept here. Such a packet is
 * authentic and was never delivered, so taking it late replays nothing, but a packet held back
 * on the path for longer (an idle tunnel's 64 ids span ten minutes of pings) still gets in,
 * where OpenVPN would drop it. The default of 64 is OpenVPN's. */
void ovpn_replay_init(struct ovpn_replay *r)
{
    r->highest = 0;
    r->window = OVPN_REPLAY_DEFAULT;
    r->bits = 64;
    r->bitmap = 0;
    r->wide = NULL;
}

int ovpn_replay_init_window(struct ovpn_replay *r, uint32_t window)
{
    ovpn_replay_init(r);
    if (window > OVPN_REPLAY_MAX)
        return -EINVAL;
    r->window = window;
    while (r->bits < window)
        r->bits <<= 1;
    if (r->bits > 64 && (r->wide = calloc(r->bits / 64, sizeof(uint64_t))) == NULL)
        return -ENOMEM;
    return 0;
}

void ovpn_replay_free(struct ovpn_replay *r)
{
    free(r->wide);
    r->wide = NULL;
}

/* Forgets ids from..from+count-1 (count below the ring's size): a word at a time where it can.
 * The ring's size is a multiple of 64, so a run inside one word never wraps the ring. */
static void ovpn_replay_forget(uint64_t *ring, uint32_t bits, uint32_t from, uint32_t count)
{
    while (count > 0) {
        uint32_t pos = from & (bits - 1), bit = pos % 64, n = 64 - bit;
        if (n > count)
            n = count;
        ring[pos / 64] &= ~(n == 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1) << bit);
        from += n;
        count -= n;
    }
}

int ovpn_replay_check(struct ovpn_replay *r, uint32_t id)
{
    uint64_t *ring = r->wide != NULL ? r->wide : &r->bitmap;
    uint64_t bit = (uint64_t)1 << (id % 64);
    uint64_t *word = &ring[(id & (r->bits - 1)) / 64];

    if (id == 0)
        return -EALREADY;
    if (r->highest == 0 || id > r->highest) {
        if (r->window == 0 && r->highest != 0 && id != r->highest + 1)
            return -EALREADY;
        uint32_t gap = r->highest == 0 ? r->bits : id - r->highest;
        if (gap >= r->bits)
            memset(ring, 0, r->bits / 8);
        else
            ovpn_replay_forget(ring, r->bits, r->highest + 1, gap);
        *word |= bit;
        r->highest = id;
        return 0;
    }
    if (r->highest - id >= r->window || (*word & bit))
        return -EALREADY;
    *word |= bit;
    return 0;
}
