/* Control packets on the wire:
 *   plain:     op | sid | n_acks | acks[4n] | [ack_sid if n] | [msg_id] | payload
 *   tls-auth:  op | sid | hmac | replay_id | time | n_acks ...          HMAC over
 *              replay_id | time | op | sid | n_acks ... (the packet with the HMAC taken out and the
 *              replay record moved to the front)
 *   tls-crypt: op | sid | replay_id | time | tag[32] | AES-256-CTR(n_acks ...)   tag =
 *              HMAC-SHA256(op | sid | replay_id | time | plaintext), CTR IV = tag[0..16)
 *   tls-crypt-v2: tls-crypt under the client key; after HARD_RESET_CLIENT_V3 and CONTROL_WKC_V1
 *              the wrapped client key (WKc) follows in the clear
 * A static key is two key records, each a 64-byte cipher key and a 64-byte HMAC key; which record
 * signs what depends on the key direction. */
#include "tunnel/openvpn/control.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/bytes.h"

enum {
    OVPN_REPLAY_LEN = 8, /* replay id and time */
    OVPN_TLS_CRYPT_TAG = 32,
    OVPN_KEY_RECORD = 128,
    OVPN_KEY_HMAC_OFF = 64,
};

int ovpn_op_is_control(uint8_t op)
{
    switch (op) {
    case OVPN_OP_CONTROL_SOFT_RESET_V1:
    case OVPN_OP_CONTROL_V1:
    case OVPN_OP_ACK_V1:
    case OVPN_OP_CONTROL_HARD_RESET_CLIENT_V2:
    case OVPN_OP_CONTROL_HARD_RESET_SERVER_V2:
        return 1;
    default:
        return 0;
    }
}

int ovpn_wrap_init(struct ovpn_wrap *w, enum ovpn_wrap_mode mode, const uint8_t *key, int key_direction,
                   const char *digest)
{
    memset(w, 0, sizeof(*w));
    w->mode = mode;
    ovpn_replay_init(&w->replay);
    /* The replay record's time field: fixed for the session, as OpenVPN does. */
    w->send_time = (uint32_t)time(NULL);
    if (mode == OVPN_WRAP_NONE)
        return 0;
    w->digest = mode == OVPN_WRAP_CRYPT ? "SHA256" : (digest ? digest : "SHA1");
    const EVP_MD *md = EVP_get_digestbyname(w->digest);
    if (!md)
        return -EINVAL;
    int mdlen = EVP_MD_get_size(md);
    if (mdlen <= 0 || mdlen > OVPN_WRAP_MAX_HMAC)
        return -EINVAL;
    w->hmac_len = (size_t)mdlen;
    /* Record 0 = key[0..128), record 1 = key[128..256). A client sends with record 1 under
     * tls-crypt and under tls-auth key-direction 1, with record 0 under key-direction 0, and with
     * record 0 both ways when no direction is given. */
    int out_rec, in_rec;
    if (mode == OVPN_WRAP_CRYPT && key_direction < 0)
        key_direction = 1; /* a client's direction; a server (tests play one) passes 0 */
    if (key_direction < 0) {
        out_rec = in_rec = 0;
    } else {
        out_rec = key_direction == 1 ? 1 : 0;
        in_rec = 1 - out_rec;
    }
    memcpy(w->hmac_out, key + out_rec * OVPN_KEY_RECORD + OVPN_KEY_HMAC_OFF, w->hmac_len);
    memcpy(w->hmac_in, key + in_rec * OVPN_KEY_RECORD + OVPN_KEY_HMAC_OFF, w->hmac_len);
    if (mode == OVPN_WRAP_CRYPT) {
        memcpy(w->cipher_out, key + out_rec * OVPN_KEY_RECORD, 32);
        memcpy(w->cipher_in, key + in_rec * OVPN_KEY_RECORD, 32);
    }
    return 0;
}

int ovpn_wrap_set_wkc(struct ovpn_wrap *w, const uint8_t *wkc, size_t len)
{
    if (w->mode != OVPN_WRAP_CRYPT || len == 0 || len > sizeof(w->wkc))
        return -EINVAL;
    memcpy(w->wkc, wkc, len);
    w->wkc_len = len;
    return 0;
}

void ovpn_wrap_start(struct ovpn_wrap *w, const struct ovpn_wrap *keys)
{
    *w = *keys;
    /* Under tls-crypt-v2 a 2.6 server reads a replay id of 0x0f...... in our reset as the offer of
     * early negotiation, and with force-cookie ignores a client that does not make it. A 2.5
     * server takes any first replay id. */
    w->send_id = w->wkc_len ? OVPN_EARLY_NEG_START : 0;
    w->send_time = (uint32_t)time(NULL);
    ovpn_replay_init(&w->replay);
}

void ovpn_wrap_clear(struct ovpn_wrap *w)
{
    OPENSSL_cleanse(w, sizeof(*w));
}

size_t ovpn_wrap_overhead(const struct ovpn_wrap *w)
{
    switch (w->mode) {
    case OVPN_WRAP_AUTH: return w->hmac_len + OVPN_REPLAY_LEN;
    case OVPN_WRAP_CRYPT: return OVPN_TLS_CRYPT_TAG + OVPN_REPLAY_LEN;
    default: return 0;
    }
}

/* Writes n_acks | acks | [ack_sid] | [msg_id] | payload: the part every wrapping protects. */
static int ovpn_ctrl_write_body(const struct ovpn_ctrl *c, uint8_t *out, size_t cap)
{
    size_t need = 1 + 4 * c->n_acks + (c->n_acks ? OVPN_SID_LEN : 0) + (c->has_msg_id ? 4 : 0) + c->len;
    if (need > cap)
        return -ENOSPC;
    uint8_t *p = out;
    *p++ = (uint8_t)c->n_acks;
    for (size_t i = 0; i < c->n_acks; i++, p += 4)
        v2s_put_be32(p, c->acks[i]);
    if (c->n_acks) {
        memcpy(p, c->ack_sid, OVPN_SID_LEN);
        p += OVPN_SID_LEN;
    }
    if (c->has_msg_id) {
        v2s_put_be32(p, c->msg_id);
        p += 4;
    }
    if (c->len)
        memcpy(p, c->payload, c->len);
    return (int)need;
}

static int ovpn_ctrl_read_body(const uint8_t *p, size_t len, int has_msg_id, struct ovpn_ctrl *c)
{
    if (len < 1)
        return -EBADMSG;
    c->n_acks = p[0];
    p++;
    len--;
    if (c->n_acks > OVPN_MAX_ACKS_ACK || len < 4 * c->n_acks)
        return -EBADMSG;
    for (size_t i = 0; i < c->n_acks; i++, p += 4)
        c->acks[i] = v2s_get_be32(p);
    len -= 4 * c->n_acks;
    if (c->n_acks) {
        if (len < OVPN_SID_LEN)
            return -EBADMSG;
        memcpy(c->ack_sid, p, OVPN_SID_LEN);
        p += OVPN_SID_LEN;
        len -= OVPN_SID_LEN;
    }
    c->has_msg_id = has_msg_id;
    if (has_msg_id) {
        if (len < 4)
            return -EBADMSG;
        c->msg_id = v2s_get_be32(p);
        p += 4;
        len -= 4;
    }
    c->payload = p;
    c->len = len;
    return 0;
}

static int ovpn_hmac(const char *digest, const uint8_t *key, size_t keylen, const uint8_t *a, size_t alen,
                     const uint8_t *b, size_t blen, uint8_t *out)
{
    /* Two parts without copying: the replay record and header, then the rest. */
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string("digest", (char *)digest, 0),
        OSSL_PARAM_construct_end(),
    };
    size_t outl = 0;
    int ok = ctx && EVP_MAC_init(ctx, key, keylen, params) && EVP_MAC_update(ctx, a, alen) &&
             EVP_MAC_update(ctx, b, blen) && EVP_MAC_final(ctx, out, &outl, OVPN_WRAP_MAX_HMAC);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok ? 0 : -EIO;
}

static int ovpn_ctr(const uint8_t key[32], const uint8_t iv[16], const uint8_t *in, size_t len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int outl = 0, fin = 0;
    int ok = ctx && EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), NULL, key, iv) &&
             EVP_EncryptUpdate(ctx, out, &outl, in, (int)len) && EVP_EncryptFinal_ex(ctx, out + outl, &fin);
    EVP_CIPHER_CTX_free(ctx);
    return ok && (size_t)(outl + fin) == len ? 0 : -EIO;
}

int ovpn_ctrl_encode(struct ovpn_wrap *w, const struct ovpn_ctrl *c, uint8_t *out, size_t cap)
{
    int with_wkc = c->op == OVPN_OP_CONTROL_HARD_RESET_CLIENT_V3 || c->op == OVPN_OP_CONTROL_WKC_V1;
    if ((with_wkc ? w->wkc_len == 0 : !ovpn_op_is_control(c->op)) ||
        c->n_acks > OVPN_MAX_ACKS_ACK ||
        (c->op == OVPN_OP_ACK_V1) == c->has_msg_id)
        return -EINVAL;
    size_t head = 1 + OVPN_SID_LEN;
    size_t over = ovpn_wrap_overhead(w);
    /* Room kept for WKc, so that no replay id is spent on a packet that then does not fit. */
    size_t tail = with_wkc ? w->wkc_len : 0;
    if (cap < head + over + tail)
        return -ENOSPC;
    out[0] = OVPN_OP_BYTE(c->op, c->key_id);
    memcpy(out + 1, c->sid, OVPN_SID_LEN);
    uint8_t *body = out + head + over;
    int blen = ovpn_ctrl_write_body(c, body, cap - head - over - tail);
    if (blen < 0)
        return blen;
    if (w->mode == OVPN_WRAP_NONE)
        return (int)head + blen;

    uint8_t rec[1 + OVPN_SID_LEN + OVPN_REPLAY_LEN];
    w->send_id++;
    if (w->mode == OVPN_WRAP_AUTH) {
        /* HMAC input: replay record first, then op and sid, then the body. */
        v2s_put_be32(rec, w->send_id);
        v2s_put_be32(rec + 4, w->send_time);
        memcpy(rec + OVPN_REPLAY_LEN, out, head);
        uint8_t *mac = out + head;
        if (ovpn_hmac(w->digest, w->hmac_out, w->hmac_len, rec, sizeof(rec), body, (size_t)blen, mac) < 0)
            return -EIO;
        memcpy(mac + w->hmac_len, rec, OVPN_REPLAY_LEN);
        return (int)(head + over) + blen;
    }
    /* tls-crypt: op | sid | replay record | tag | ciphertext of the body. */
    uint8_t *r = out + head;
    v2s_put_be32(r, w->send_id);
    v2s_put_be32(r + 4, w->send_time);
    uint8_t *tag = r + OVPN_REPLAY_LEN;
    if (ovpn_hmac(w->digest, w->hmac_out, w->hmac_len, out, head + OVPN_REPLAY_LEN, body, (size_t)blen, tag) < 0)
        return -EIO;
    /* Encrypting in place is fine for CTR. */
    if (ovpn_ctr(w->cipher_out, tag, body, (size_t)blen, body) < 0)
        return -EIO;
    (void)rec;
    size_t len = head + over + (size_t)blen;
    if (with_wkc) {
        /* The server reads WKc's length from the packet's last two bytes, unwraps Kc from it, and
         * only then can check the tls-crypt packet before it; so WKc itself goes in the clear. */
        memcpy(out + len, w->wkc, w->wkc_len);
        len += w->wkc_len;
    }
    return (int)len;
}

int ovpn_early_neg_parse(const uint8_t *p, size_t len, unsigned *flags)
{
    *flags = 0;
    while (len > 0) {
        if (len < 4)
            return -EBADMSG;
        unsigned type = v2s_get_be16(p), vlen = v2s_get_be16(p + 2);
        p += 4;
        len -= 4;
        if (vlen > len)
            return -EBADMSG;
        if (type == OVPN_TLV_EARLY_NEG_FLAGS) {
            if (vlen != 2)
                return -EBADMSG;
            *flags |= v2s_get_be16(p);
        }
        p += vlen;
        len -= vlen;
    }
    return 0;
}

int ovpn_ctrl_decode(struct ovpn_wrap *w, const uint8_t *pkt, size_t len, uint8_t *scratch, size_t scap,
                     struct ovpn_ctrl *out)
{
    size_t head = 1 + OVPN_SID_LEN;
    size_t over = ovpn_wrap_overhead(w);
    memset(out, 0, sizeof(*out));
    if (len < head + over)
        return -EBADMSG;
    out->op = OVPN_OP_OF(pkt[0]);
    out->key_id = OVPN_KEY_ID_OF(pkt[0]);
    if (!ovpn_op_is_control(out->op))
        return -EBADMSG;
    memcpy(out->sid, pkt + 1, OVPN_SID_LEN);
    const uint8_t *body = pkt + head + over;
    size_t blen = len - head - over;
    int has_msg_id = out->op != OVPN_OP_ACK_V1;
    uint8_t mac[OVPN_WRAP_MAX_HMAC];
    uint32_t rid = 0;

    if (w->mode == OVPN_WRAP_AUTH) {
        const uint8_t *theirs = pkt + head;
        const uint8_t *r = theirs + w->hmac_len;
        uint8_t rec[1 + OVPN_SID_LEN + OVPN_REPLAY_LEN];
        memcpy(rec, r, OVPN_REPLAY_LEN);
        memcpy(rec + OVPN_REPLAY_LEN, pkt, head);
        if (ovpn_hmac(w->digest, w->hmac_in, w->hmac_len, rec, sizeof(rec), body, blen, mac) < 0 ||
            CRYPTO_memcmp(mac, theirs, w->hmac_len) != 0)
            return -EBADMSG;
        rid = v2s_get_be32(r);
    } else if (w->mode == OVPN_WRAP_CRYPT) {
        const uint8_t *r = pkt + head;
        const uint8_t *tag = r + OVPN_REPLAY_LEN;
        if (scap < blen)
            return -ENOSPC;
        if (ovpn_ctr(w->cipher_in, tag, body, blen, scratch) < 0)
            return -EBADMSG;
        if (ovpn_hmac(w->digest, w->hmac_in, w->hmac_len, pkt, head + OVPN_REPLAY_LEN, scratch, blen, mac) < 0 ||
            CRYPTO_memcmp(mac, tag, OVPN_TLS_CRYPT_TAG) != 0)
            return -EBADMSG;
        rid = v2s_get_be32(r);
        body = scratch;
    }
    int rc = ovpn_ctrl_read_body(body, blen, has_msg_id, out);
    if (rc < 0)
        return rc;
    /* Replay ids are checked only once the packet proved authentic. */
    if (w->mode != OVPN_WRAP_NONE && ovpn_replay_check(&w->replay, rid) < 0)
        return -EALREADY;
    return 0;
}
