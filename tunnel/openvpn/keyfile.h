/* The secrets a config carries as text: OpenVPN static keys (tls-auth, tls-crypt), tls-crypt-v2
 * client keys and auth-user-pass credentials, read from a string (a file the loader read, or an
 * inline block). Pure code. */
#ifndef VPN2SOCKS_OPENVPN_KEYFILE_H
#define VPN2SOCKS_OPENVPN_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "tunnel/openvpn/proto.h"

/* Parses an OpenVPN static key ("-----BEGIN OpenVPN Static key V1-----", 256 bytes of hex).
 * 0 or -EINVAL. */
int ovpn_static_key_parse(const char *text, uint8_t out[OVPN_STATIC_KEY_LEN]);

/* A tls-crypt-v2 client key, as "--genkey tls-crypt-v2-client" writes it: the tls-crypt key the
 * client uses (Kc, a static key's 256 bytes) and the wrapped key (WKc) it sends the server in the
 * clear, whose last two bytes are its own length. */
struct ovpn_tls_crypt_v2_key {
    uint8_t key[OVPN_STATIC_KEY_LEN];
    uint8_t wkc[OVPN_WKC_MAX_LEN];
    size_t wkc_len;
};

/* Parses a tls-crypt-v2 client key ("-----BEGIN OpenVPN tls-crypt-v2 client key-----", base64 of
 * Kc and WKc). 0, or -EINVAL with *why a reason (a static string) and out wiped: not such a PEM
 * block (a server key is named as one), bad base64, a size that cannot be, or a WKc whose length
 * field disagrees with its size. */
int ovpn_tls_crypt_v2_key_parse(const char *text, struct ovpn_tls_crypt_v2_key *out, const char **why);

/* Credentials as auth-user-pass holds them: line 1 the user name, line 2 the password (possibly
 * empty); CR and LF are stripped; each at most 4096 bytes. 0 with *user and *pass new strings
 * (the caller frees them with ovpn_secret_free), or -EINVAL / -ENOMEM with both NULL and *why a
 * reason (a static string). */
int ovpn_user_pass_parse(const char *text, char **user, char **pass, const char **why);

/* The value of one hex digit, or -1. */
int ovpn_hex_digit(char c);

/* Wipes and frees a secret string and sets *s to NULL; nothing when *s is NULL. */
void ovpn_secret_free(char **s);

#endif
