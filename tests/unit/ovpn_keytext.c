/* Key files for the OpenVPN tests (ovpn_keytext.h). */
#include "ovpn_keytext.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

size_t test_tcv2_key_bytes(uint8_t *out, size_t cap, unsigned first, size_t wkc_len, int len_skew)
{
    size_t n = 256 + wkc_len;
    if (n > cap || wkc_len < 2)
        return 0;
    for (size_t i = 0; i < 256; i++)
        out[i] = (uint8_t)(first + i);
    for (size_t i = 0; i < wkc_len - 2; i++)
        out[256 + i] = (uint8_t)(i * 7 + 5);
    unsigned field = (unsigned)((int)wkc_len + len_skew);
    out[n - 2] = (uint8_t)(field >> 8);
    out[n - 1] = (uint8_t)field;
    return n;
}

size_t test_pem_text(char *out, size_t cap, const char *label, const uint8_t *bytes, size_t n)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = (size_t)snprintf(out, cap, "-----BEGIN %s-----\n", label);
    size_t col = 0;
    for (size_t i = 0; i < n && len + 8 < cap; i += 3) {
        unsigned v = (unsigned)bytes[i] << 16 | (i + 1 < n ? (unsigned)bytes[i + 1] << 8 : 0) |
                     (i + 2 < n ? bytes[i + 2] : 0);
        out[len++] = digits[v >> 18 & 63];
        out[len++] = digits[v >> 12 & 63];
        out[len++] = i + 1 < n ? digits[v >> 6 & 63] : '=';
        out[len++] = i + 2 < n ? digits[v & 63] : '=';
        if ((col += 4) == 64 || i + 3 >= n) {
            out[len++] = '\n';
            col = 0;
        }
    }
    len += (size_t)snprintf(out + len, cap - len, "-----END %s-----\n", label);
    return len;
}

size_t test_tcv2_key_text(char *out, size_t cap, unsigned first, size_t wkc_len)
{
    uint8_t bytes[256 + 1100];
    size_t n = test_tcv2_key_bytes(bytes, sizeof(bytes), first, wkc_len, 0);
    return test_pem_text(out, cap, "OpenVPN tls-crypt-v2 client key", bytes, n);
}

long test_tls_crypt_open(const uint8_t key[256], const uint8_t *pkt, size_t len, uint8_t *plain, size_t cap)
{
    enum { HEAD = 1 + 8 + 8, TAG = 32 };
    const uint8_t *cipher_key = key + 128, *hmac_key = key + 128 + 64;
    if (len < HEAD + TAG || len - HEAD - TAG > cap)
        return -1;
    size_t n = len - HEAD - TAG;
    const uint8_t *tag = pkt + HEAD;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int outl = 0, ok = ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_ctr(), NULL, cipher_key, tag) &&
                       EVP_DecryptUpdate(ctx, plain, &outl, pkt + HEAD + TAG, (int)n);
    EVP_CIPHER_CTX_free(ctx);
    if (!ok || (size_t)outl != n)
        return -1;
    uint8_t mac[TAG], msg[HEAD + 2048];
    unsigned maclen = 0;
    if (n > sizeof(msg) - HEAD)
        return -1;
    memcpy(msg, pkt, HEAD);
    memcpy(msg + HEAD, plain, n);
    if (!HMAC(EVP_sha256(), hmac_key, 32, msg, HEAD + n, mac, &maclen) || CRYPTO_memcmp(mac, tag, TAG) != 0)
        return -1;
    return (long)n;
}
