/* Data channel keys from the TLS 1.0 PRF, as OpenVPN 2.x derives them without the TLS exporter
 * (ssl.c generate_key_expansion_openvpn_prf): the whole seed, label included, goes to the PRF
 * as one string, and the key expansion seed ends with both session ids, client first. */
#include "tunnel/openvpn/keys.h"

#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

static const char ovpn_keys_master_label[] = "OpenVPN master secret";
static const char ovpn_keys_expansion_label[] = "OpenVPN key expansion";

enum {
    OVPN_KEYS_MASTER_LEN = 48,
    OVPN_KEYS_SEED_MAX = sizeof(ovpn_keys_expansion_label) - 1 + 2 * OVPN_RANDOM_LEN + 2 * OVPN_SID_LEN,
};

/* TLS1-PRF with MD5-SHA1 (RFC 2246 section 5) of secret over seed. 0 or -EIO. */
static int ovpn_keys_tls1_prf(EVP_KDF *kdf, const uint8_t *secret, size_t secret_len,
                              const uint8_t *seed, size_t seed_len, uint8_t *out, size_t out_len)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"MD5-SHA1", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)secret, secret_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)seed, seed_len),
        OSSL_PARAM_construct_end(),
    };
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    int rc = -EIO;

    if (ctx != NULL && EVP_KDF_derive(ctx, out, out_len, params) == 1)
        rc = 0;
    EVP_KDF_CTX_free(ctx);
    return rc;
}

/* label | a | b [| c | d] into seed; returns its length. */
static size_t ovpn_keys_seed(uint8_t *seed, const char *label, size_t label_len, const uint8_t *a,
                             const uint8_t *b, const uint8_t *c, const uint8_t *d)
{
    size_t n = 0;
    memcpy(seed + n, label, label_len);
    n += label_len;
    memcpy(seed + n, a, OVPN_RANDOM_LEN);
    n += OVPN_RANDOM_LEN;
    memcpy(seed + n, b, OVPN_RANDOM_LEN);
    n += OVPN_RANDOM_LEN;
    if (c != NULL) {
        memcpy(seed + n, c, OVPN_SID_LEN);
        n += OVPN_SID_LEN;
        memcpy(seed + n, d, OVPN_SID_LEN);
        n += OVPN_SID_LEN;
    }
    return n;
}

int ovpn_keys_prf(const struct ovpn_key_source *client, const struct ovpn_key_source *server,
                  const uint8_t client_sid[OVPN_SID_LEN], const uint8_t server_sid[OVPN_SID_LEN],
                  uint8_t out[OVPN_KEY_BLOCK_LEN])
{
    uint8_t master[OVPN_KEYS_MASTER_LEN];
    uint8_t seed[OVPN_KEYS_SEED_MAX];
    size_t seed_len;
    int rc = -EIO;

    /* Under FIPS (or a policy without MD5) the fetch or the derivation fails: the caller needs
     * the TLS exporter then. */
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_TLS1_PRF, NULL);
    if (kdf == NULL)
        goto out;

    seed_len = ovpn_keys_seed(seed, ovpn_keys_master_label, sizeof(ovpn_keys_master_label) - 1,
                              client->random1, server->random1, NULL, NULL);
    if (ovpn_keys_tls1_prf(kdf, client->pre_master, sizeof(client->pre_master), seed, seed_len,
                           master, sizeof(master)) != 0)
        goto out;

    seed_len = ovpn_keys_seed(seed, ovpn_keys_expansion_label, sizeof(ovpn_keys_expansion_label) - 1,
                              client->random2, server->random2, client_sid, server_sid);
    if (ovpn_keys_tls1_prf(kdf, master, sizeof(master), seed, seed_len, out, OVPN_KEY_BLOCK_LEN) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        OPENSSL_cleanse(out, OVPN_KEY_BLOCK_LEN);
    OPENSSL_cleanse(master, sizeof(master));
    OPENSSL_cleanse(seed, sizeof(seed));
    EVP_KDF_free(kdf);
    return rc;
}
