/* Secrets as text: OpenVPN static keys and auth-user-pass credentials.
 *
 * What it guarantees:
 * - A static key is accepted only whole: comment lines may precede the BEGIN line, which must
 *   start a line; between BEGIN and END only hex digits and white space, exactly 256 bytes' worth.
 *   Anything else is -EINVAL, never a partly filled key (OpenVPN's read_key_file).
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

