/* Key files for the OpenVPN tests, written as OpenVPN writes them. */
#ifndef VPN2SOCKS_TESTS_UNIT_OVPN_KEYTEXT_H
#define VPN2SOCKS_TESTS_UNIT_OVPN_KEYTEXT_H

#include <stddef.h>
#include <stdint.h>

/* The bytes of a tls-crypt-v2 client key as "--genkey tls-crypt-v2-client" lays them out: Kc
 * (256 bytes: first, first+1, ... mod 256), then WKc (wkc_len bytes of a pattern, the last two
 * its length, big-endian, plus len_skew). */
size_t test_tcv2_key_bytes(uint8_t *out, size_t cap, unsigned first, size_t wkc_len, int len_skew);

/* The bytes, base64 in lines of 64 as OpenVPN writes them, between "-----BEGIN label-----" and
 * "-----END label-----" lines. The text's length. */
size_t test_pem_text(char *out, size_t cap, const char *label, const uint8_t *bytes, size_t n);

/* A whole client key file: test_tcv2_key_bytes in PEM under OpenVPN's client key label. */
size_t test_tcv2_key_text(char *out, size_t cap, unsigned first, size_t wkc_len);

/* Opens a tls-crypt packet a client sent with key (its second record sends), written here from
 * OpenVPN's description rather than with control.c, so that a test checks the wire format and not
 * the codec against itself: op | sid | replay id | time | tag | AES-256-CTR(body), tag =
 * HMAC-SHA256 over the header and the body, the IV its first 16 bytes. Puts the body in plain;
 * its length, or -1 when the tag does not match. */
long test_tls_crypt_open(const uint8_t key[256], const uint8_t *pkt, size_t len, uint8_t *plain, size_t cap);

#endif
