/* Secrets as text: OpenVPN static keys and auth-user-pass credentials.
 *
 * What it guarantees:
 * - A static key is accepted only whole: comment lines may precede the BEGIN line, which must
 *   start a line; between BEGIN and END only hex digits and white space, exactly 256 bytes' worth.
 *   Anything else is -EINVAL, never a partly filled key (OpenVPN's read_key_file).
 * - A tls-crypt-v2 client key is accepted only whole too: its PEM label, strict base64, a size that
 *   a key made by OpenVPN can have, and a wrapped key whose trailing length field is its size (the
 *   server reads it from there). A server key given instead is named as one.
 * - Credentials are line 1 and line 2, CR and LF stripped, as OpenVPN's get_user_pass reads a
 *   file; a missing or empty user or password line is refused with a reason the caller shows.
 *   OpenVPN 2.6 (misc.c get_user_pass_cr) never sends an empty password from a file or block: it
 *   asks for one on the terminal, and dies when it has none (--daemon). We cannot ask, and an empty
 *   password sent would only come back as AUTH_FAILED after the handshake.
 * - Every temporary copy of key material is wiped before it is freed (explicit_bzero on the one
 *   exit), and ovpn_secret_free wipes what it frees. */
#include "tunnel/openvpn/keyfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tunnel/openvpn/words.h"

enum { KEYFILE_MAX_CRED = 4096 }; /* a user name or password (OpenVPN's USER_PASS_LEN) */

void ovpn_secret_free(char **s)
{
    if (*s != NULL) {
        explicit_bzero(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

int ovpn_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ovpn_static_key_parse(const char *text, uint8_t out[OVPN_STATIC_KEY_LEN])
{
    static const char head[] = "-----BEGIN OpenVPN Static key V1-----";
    static const char foot[] = "-----END OpenVPN Static key V1-----";
    uint8_t key[OVPN_STATIC_KEY_LEN];
    size_t n = 0;
    int high = -1;
    int rc = -EINVAL;
    const char *p = text;

    /* Comment lines may come before the head line; it must start a line. */
    while (strncmp(p, head, sizeof(head) - 1) != 0) {
        p = strchr(p, '\n');
        if (p == NULL)
            return -EINVAL;
        p++;
    }
    p = strchr(p, '\n');
    if (p == NULL)
        return -EINVAL;
    p++;
    for (;;) {
        if (*p == '-') {
            if (strncmp(p, foot, sizeof(foot) - 1) != 0)
                goto out;
            break;
        }
        for (; *p != '\n'; p++) {
            int v;
            if (*p == '\0')
                goto out; /* no foot line */
            if (ovpn_is_space(*p))
                continue;
            if ((v = ovpn_hex_digit(*p)) < 0 || n == sizeof(key))
                goto out;
            if (high < 0) {
                high = v;
            } else {
                key[n++] = (uint8_t)(high << 4 | v);
                high = -1;
            }
        }
        p++;
    }
    if (n == sizeof(key) && high < 0) {
        memcpy(out, key, sizeof(key));
        rc = 0;
    }
out:
    explicit_bzero(key, sizeof(key));
    return rc;
}

/* Stores one decoded byte while there is room; counts it either way, so that the caller can say
 * how long the key was. */
static void keyfile_put(uint8_t *out, size_t cap, size_t *n, uint8_t b)
{
    if (*n < cap)
        out[*n] = b;
    (*n)++;
}

/* Decodes the base64 between p and the end line (a line starting with '-') into out: white space
 * is skipped, '=' may only pad the last group. *end is set to the end line. The decoded length,
 * which may exceed cap (only cap bytes are stored), or -1 (not base64, no end line). */
static long keyfile_b64_decode(const char *p, const char **end, uint8_t *out, size_t cap)
{
    size_t n = 0;
    unsigned acc = 0, digits = 0, pad = 0;
    for (;; p++) {
        if (*p == '\0')
            return -1;
        if (*p == '-' && (p[-1] == '\n'))
            break;
        if (ovpn_is_space(*p))
            continue;
        if (*p == '=') {
            pad++;
            continue;
        }
        int v = ovpn_base64_digit(*p);
        if (v < 0 || pad > 0)
            return -1;
        acc = acc << 6 | (unsigned)v;
        if (++digits == 4) {
            keyfile_put(out, cap, &n, (uint8_t)(acc >> 16));
            keyfile_put(out, cap, &n, (uint8_t)(acc >> 8));
            keyfile_put(out, cap, &n, (uint8_t)acc);
            acc = digits = 0;
        }
    }
    /* A last group of 2 or 3 digits carries 1 or 2 bytes; its padding must make it whole. */
    if ((digits == 0 && pad != 0) || digits == 1 || (digits > 1 && digits + pad != 4))
        return -1;
    if (digits > 1) {
        acc <<= 6 * (4 - digits);
        keyfile_put(out, cap, &n, (uint8_t)(acc >> 16));
        if (digits == 3)
            keyfile_put(out, cap, &n, (uint8_t)(acc >> 8));
    }
    *end = p;
    return (long)n;
}

int ovpn_tls_crypt_v2_key_parse(const char *text, struct ovpn_tls_crypt_v2_key *out, const char **why)
{
    static const char head[] = "-----BEGIN OpenVPN tls-crypt-v2 client key-----";
    static const char foot[] = "-----END OpenVPN tls-crypt-v2 client key-----";
    static const char server_head[] = "-----BEGIN OpenVPN tls-crypt-v2 server key-----";
    uint8_t buf[OVPN_STATIC_KEY_LEN + OVPN_WKC_MAX_LEN];
    const char *p = text, *end = NULL;
    long n;
    int rc = -EINVAL;

    memset(out, 0, sizeof(*out));
    /* Comment lines may come before the head line; it must start a line. */
    while (strncmp(p, head, sizeof(head) - 1) != 0) {
        if (strncmp(p, server_head, sizeof(server_head) - 1) == 0) {
            *why = "is a tls-crypt-v2 server key, which stays on the server; the client needs a client key "
                   "made from it (openvpn --tls-crypt-v2 server.key --genkey tls-crypt-v2-client client.key)";
            return -EINVAL;
        }
        p = strchr(p, '\n');
        if (p == NULL) {
            *why = "is not a tls-crypt-v2 client key (no -----BEGIN OpenVPN tls-crypt-v2 client key----- line)";
            return -EINVAL;
        }
        p++;
    }
    p += sizeof(head) - 1;
    while (*p == ' ' || *p == '\t' || *p == '\r')
        p++;
    if (*p != '\n') {
        *why = "has text after its BEGIN line";
        return -EINVAL;
    }
    n = keyfile_b64_decode(p + 1, &end, buf, sizeof(buf));
    if (n < 0 && end == NULL && strstr(p, foot) == NULL) {
        *why = "has no -----END OpenVPN tls-crypt-v2 client key----- line";
        goto out;
    }
    if (n < 0) {
        *why = "is not valid base64 between its BEGIN and END lines";
        goto out;
    }
    if (strncmp(end, foot, sizeof(foot) - 1) != 0) {
        *why = "has no -----END OpenVPN tls-crypt-v2 client key----- line";
        goto out;
    }
    if ((size_t)n < OVPN_STATIC_KEY_LEN + OVPN_WKC_MIN_LEN) {
        *why = "is too short for a tls-crypt-v2 client key (a 256-byte key and a wrapped key of at least "
               "290 bytes)";
        goto out;
    }
    if ((size_t)n > OVPN_STATIC_KEY_LEN + OVPN_WKC_MAX_LEN) {
        *why = "is too long for a tls-crypt-v2 client key (its wrapped key has more than 1024 bytes)";
        goto out;
    }
    size_t wkc_len = (size_t)n - OVPN_STATIC_KEY_LEN;
    if (((size_t)buf[n - 2] << 8 | buf[n - 1]) != wkc_len) {
        *why = "has a wrapped key whose length field does not match its size: the key is damaged";
        goto out;
    }
    memcpy(out->key, buf, OVPN_STATIC_KEY_LEN);
    memcpy(out->wkc, buf + OVPN_STATIC_KEY_LEN, wkc_len);
    out->wkc_len = wkc_len;
    rc = 0;
out:
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

/* Line 1 is the user, line 2 the password, neither empty; CR and LF are stripped. */
int ovpn_user_pass_parse(const char *text, char **user, char **pass, const char **why)
{
    const char *nl = strchr(text, '\n');
    size_t ulen = nl ? (size_t)(nl - text) : strlen(text);
    const char *ptext;
    size_t plen;

    *user = *pass = NULL;
    if (ulen > 0 && text[ulen - 1] == '\r')
        ulen--;
    if (ulen == 0) {
        *why = "no user name on line 1";
        return -EINVAL;
    }
    if (nl == NULL) {
        *why = "no password on line 2";
        return -EINVAL;
    }
    ptext = nl + 1;
    nl = strchr(ptext, '\n');
    plen = nl ? (size_t)(nl - ptext) : strlen(ptext);
    if (plen > 0 && ptext[plen - 1] == '\r')
        plen--;
    if (nl == NULL && plen == 0 && ptext[0] == '\0') {
        *why = "no password on line 2";
        return -EINVAL;
    }
    if (plen == 0) {
        *why = "the password on line 2 is empty (OpenVPN would ask for it on the terminal; vpn2socks "
               "cannot ask)";
        return -EINVAL;
    }
    if (ulen > KEYFILE_MAX_CRED || plen > KEYFILE_MAX_CRED) {
        *why = "user name or password longer than 4096 bytes";
        return -EINVAL;
    }
    *user = strndup(text, ulen);
    *pass = strndup(ptext, plen);
    if (*user == NULL || *pass == NULL) {
        ovpn_secret_free(user);
        ovpn_secret_free(pass);
        *why = "out of memory";
        return -ENOMEM;
    }
    return 0;
}

