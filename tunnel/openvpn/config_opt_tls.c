/* The options of credentials, TLS and keys: ca, cert, key, extra-certs, tls-auth, tls-crypt,
 * key-direction, auth-user-pass, the cipher and digest names, the TLS version and cipher lists,
 * the checks on the server's certificate (remote-cert-tls, verify-x509-name, peer-fingerprint),
 * when keys are renewed, and the data channel's replay window.
 *
 * What it guarantees, following OpenVPN 2.6 (options.c add_option):
 * - A PEM field or key comes from an inline block (read now) or a file (recorded with its line,
 *   read by config_load.c); the later of the two wins, as with any repeated option. An empty
 *   block is refused.
 * - A static key (tls-auth, tls-crypt) is accepted only whole (keyfile.c). Inside <connection>
 *   blocks the key and its direction are shared by every connection, so two blocks may not name
 *   different ones: that is refused rather than silently using one.
 * - Every temporary copy of a key is wiped; credentials are kept only as the config's own
 *   strings, which ovpn_config_free wipes.
 * - peer-fingerprint is 32 hex pairs separated by ':' (as openssl prints them), one per line in
 *   a block; blank and comment lines in a block are skipped, as OpenVPN does. */
#include "tunnel/openvpn/config_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tunnel/openvpn/cipher.h"
#include "tunnel/openvpn/data.h"

/* Sets a PEM field from an inline block, or records the file that holds it. The later of the two
 * wins, as with any repeated option. origin (NULL for extra-certs) says where an inline block
 * was; the loader sets it for a file. */
static int config_set_text(struct ovpn_config_parser *p, enum config_ref ref, char **field,
                           char **origin, char **w, const char *block)
{
    struct config_file_ref *fr = &p->refs[ref];
    char where[CONFIG_MAX_TAG + 32];
    if (origin != NULL) {
        free(*origin);
        *origin = NULL;
    }
    if (block != NULL) {
        if (block[0] == '\0')
            return config_fail(p, "the <%s> block is empty", ovpn_config_ref_names[ref]);
        if (!ovpn_config_looks_pem(block))
            return config_fail(p, "the <%s> block is not PEM (no -----BEGIN line)", ovpn_config_ref_names[ref]);
        char *copy = strdup(block);
        if (copy == NULL)
            return ovpn_config_nomem(p);
        ovpn_secret_free(field);
        *field = copy;
        free(fr->path);
        fr->path = NULL;
        snprintf(where, sizeof(where), "<%s> (line %u)", ovpn_config_ref_names[ref], p->opt_line);
        return origin != NULL ? ovpn_config_set_string(p, origin, where) : 0;
    }
    char *path = strdup(w[1]);
    if (path == NULL)
        return ovpn_config_nomem(p);
    ovpn_secret_free(field);
    free(fr->path);
    fr->path = path;
    fr->line = p->opt_line;
    return 0;
}

static int config_apply_ca(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n;
    return config_set_text(p, CONFIG_REF_CA, &p->cfg.ca, &p->cfg.ca_origin, w, block);
}

static int config_apply_cert(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n;
    return config_set_text(p, CONFIG_REF_CERT, &p->cfg.cert, &p->cfg.cert_origin, w, block);
}

static int config_apply_key(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n;
    return config_set_text(p, CONFIG_REF_KEY, &p->cfg.key, &p->cfg.key_origin, w, block);
}

static int config_apply_extra_certs(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n;
    return config_set_text(p, CONFIG_REF_EXTRA_CERTS, &p->cfg.extra_certs, NULL, w, block);
}

/* crl-verify FILE, or a <crl-verify> block: PEM CRLs that the server's chain is checked against
 * (tls.c), as OpenVPN 2.6 does; PIA's profiles carry one inline, and were refused here. A folder
 * of CRLs named by hash (crl-verify DIR dir) is not read. */
static int config_apply_crl_verify(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char shown[CONFIG_SHOWN_MAX];
    if (n == 3 && strcmp(w[2], "dir") == 0)
        return config_fail(p, "crl-verify DIR dir (a folder of CRLs) is not supported: give one "
                              "file holding the CRLs (cat them together)");
    if (n == 3)
        return config_fail(p, "crl-verify: '%s' is not dir", v2s_shown(w[2], shown, sizeof(shown)));
    return config_set_text(p, CONFIG_REF_CRL, &p->cfg.crl, &p->cfg.crl_origin, w, block);
}

static int config_parse_key_direction(struct ovpn_config_parser *p, const char *text, int *out)
{
    char shown[CONFIG_SHOWN_MAX];
    if (strcmp(text, "0") == 0)
        *out = 0;
    else if (strcmp(text, "1") == 0)
        *out = 1;
    else
        return config_fail(p, "key direction '%s': expected 0 or 1", v2s_shown(text, shown, sizeof(shown)));
    return 0;
}

/* key-direction, alone or as tls-auth's second argument. Inside <connection> blocks it is shared
 * by every connection, so two blocks may not disagree. */
static int config_set_key_direction(struct ovpn_config_parser *p, int dir)
{
    if (p->in_connection && p->cfg.key_direction >= 0 && p->cfg.key_direction != dir)
        return config_fail(p, "<connection> blocks with different key directions are not supported");
    p->cfg.key_direction = dir;
    return 0;
}

static int config_apply_key_direction(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    int dir = -1, rc;
    (void)n, (void)block;
    if ((rc = config_parse_key_direction(p, w[1], &dir)) < 0)
        return rc;
    return config_set_key_direction(p, dir);
}

/* A key named by its file (read by the loader): in a <connection> block it must be the one every
 * block names, inline (have_inline) or by path; the path and its line are recorded. */
static int config_key_file(struct ovpn_config_parser *p, struct config_file_ref *fr, const char *path,
                           int have_inline, const char *name)
{
    if (p->in_connection && (have_inline || (fr->path != NULL && strcmp(fr->path, path) != 0)))
        return config_fail(p, "<connection> blocks with different %s keys are not supported", name);
    char *copy = strdup(path);
    if (copy == NULL)
        return ovpn_config_nomem(p);
    free(fr->path);
    fr->path = copy;
    fr->line = p->opt_line;
    return 0;
}

/* tls-auth and tls-crypt: an inline key is read now, a file by the loader. Per-connection keys
 * are shared by every connection, so two blocks may not name different ones. */
static int config_set_static_key(struct ovpn_config_parser *p, enum config_ref ref, uint8_t *key,
                                 int *has_key, char **w, const char *block)
{
    struct config_file_ref *fr = &p->refs[ref];
    const char *name = ovpn_config_ref_names[ref];

    *(ref == CONFIG_REF_TLS_AUTH ? &p->tls_auth_line : &p->tls_crypt_line) = p->opt_line;
    if (block != NULL) {
        uint8_t parsed[OVPN_STATIC_KEY_LEN];
        if (ovpn_static_key_parse(block, parsed) != 0)
            return config_fail(p, "the <%s> block is not an OpenVPN static key (256 bytes of hex "
                                  "between the BEGIN and END lines)", name);
        int same = *has_key && memcmp(parsed, key, OVPN_STATIC_KEY_LEN) == 0;
        if (p->in_connection && (fr->path != NULL || (*has_key && !same))) {
            explicit_bzero(parsed, sizeof(parsed));
            return config_fail(p, "<connection> blocks with different %s keys are not supported", name);
        }
        memcpy(key, parsed, OVPN_STATIC_KEY_LEN);
        explicit_bzero(parsed, sizeof(parsed));
        *has_key = 1;
        free(fr->path);
        fr->path = NULL;
        return 0;
    }
    int rc = config_key_file(p, fr, w[1], *has_key, name);
    if (rc < 0)
        return rc;
    explicit_bzero(key, OVPN_STATIC_KEY_LEN);
    *has_key = 0; /* set by the loader once the file is read */
    return 0;
}

static int config_apply_tls_auth(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    int rc = config_set_static_key(p, CONFIG_REF_TLS_AUTH, p->cfg.tls_auth_key, &p->cfg.has_tls_auth, w,
                                   block);
    if (rc < 0 || block != NULL || n < 3)
        return rc;
    int dir = -1;
    if ((rc = config_parse_key_direction(p, w[2], &dir)) < 0)
        return rc;
    return config_set_key_direction(p, dir);
}

/* tls-crypt FILE [DIRECTION]: a second argument is taken and ignored, as OpenVPN 2.4 to 2.6 do: a
 * tls-crypt key's direction is fixed by the role (a client sends with the second half), and
 * setup guides derived from tls-auth's "tls-auth ta.key 1" write "tls-crypt ta.key 1". It was
 * refused, so such a profile, which OpenVPN runs, did not load. */
static int config_apply_tls_crypt(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n;
    return config_set_static_key(p, CONFIG_REF_TLS_CRYPT, p->cfg.tls_crypt_key, &p->cfg.has_tls_crypt, w,
                                  block);
}

/* tls-crypt-v2 FILE [force-cookie|allow-noncookie]: the client key is used as a tls-crypt key, and
 * its wrapped copy rides on the first reset, and on the first TLS packet when the server asks for
 * it again (control.c, session.c). The second argument tells a server which
 * clients to take; a client has no use for it, as OpenVPN's has none. An inline key is read now, a
 * file by the loader; per-connection keys must all be the same one, as with tls-crypt. */
static int config_apply_tls_crypt_v2(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    struct config_file_ref *fr = &p->refs[CONFIG_REF_TLS_CRYPT_V2];
    struct ovpn_tls_crypt_v2_key *have = &p->cfg.tls_crypt_v2;

    if (block == NULL && n == 3 && strcmp(w[2], "force-cookie") != 0 && strcmp(w[2], "allow-noncookie") != 0)
        return config_fail(p, "tls-crypt-v2: unknown argument '%s' (force-cookie or allow-noncookie)", w[2]);
    p->tls_crypt_v2_line = p->opt_line;
    if (block != NULL) {
        struct ovpn_tls_crypt_v2_key parsed;
        const char *why;
        if (ovpn_tls_crypt_v2_key_parse(block, &parsed, &why) != 0)
            return config_fail(p, "the <tls-crypt-v2> block %s", why);
        int same = p->cfg.has_tls_crypt_v2 && parsed.wkc_len == have->wkc_len &&
                   memcmp(&parsed, have, sizeof(parsed)) == 0;
        if (p->in_connection && (fr->path != NULL || (p->cfg.has_tls_crypt_v2 && !same))) {
            explicit_bzero(&parsed, sizeof(parsed));
            return config_fail(p, "<connection> blocks with different tls-crypt-v2 keys are not supported");
        }
        *have = parsed;
        explicit_bzero(&parsed, sizeof(parsed));
        p->cfg.has_tls_crypt_v2 = 1;
        free(fr->path);
        fr->path = NULL;
        return 0;
    }
    int rc = config_key_file(p, fr, w[1], p->cfg.has_tls_crypt_v2, "tls-crypt-v2");
    if (rc < 0)
        return rc;
    explicit_bzero(have, sizeof(*have));
    p->cfg.has_tls_crypt_v2 = 0; /* set by the loader once the file is read */
    return 0;
}

static int config_apply_auth_user_pass(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    struct config_file_ref *fr = &p->refs[CONFIG_REF_AUTH_USER_PASS];
    p->cfg.auth_user_pass = 1;
    /* Bare, it asks for credentials: OpenVPN would prompt for them, even after a block or file
     * gave them. We cannot prompt, so what was given stays (profiles often put the block first). */
    if (block == NULL && n == 1)
        return 0;
    ovpn_secret_free(&p->cfg.username);
    ovpn_secret_free(&p->cfg.password);
    free(fr->path);
    fr->path = NULL;
    if (block != NULL) {
        const char *why;
        int rc = ovpn_user_pass_parse(block, &p->cfg.username, &p->cfg.password, &why);
        if (rc == -ENOMEM)
            return ovpn_config_nomem(p);
        if (rc < 0)
            return config_fail(p, "<auth-user-pass>: %s", why);
        return 0;
    }
    if ((fr->path = strdup(w[1])) == NULL)
        return ovpn_config_nomem(p);
    fr->line = p->opt_line;
    return 0;
}

static int config_apply_auth_nocache(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)w, (void)n, (void)block;
    p->cfg.auth_nocache = 1;
    return 0;
}

/* tls-exit: a TLS error (a failed handshake or renegotiation, a refused server certificate)
 * stops the client, where it restarts without (OpenVPN's forward.c check_tls_errors sends SIGTERM
 * instead of SIGUSR1). It was accepted and ignored, so a client told to stop kept reconnecting. */
static int config_apply_tls_exit(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)w, (void)n, (void)block;
    p->cfg.tls_exit = 1;
    return 0;
}

/* auth-retry none|nointeract|interact: what an AUTH_FAILED does. OpenVPN's interact forgets the
 * credentials (ssl_purge_auth) and asks for them again: from the auth-user-pass file when there is
 * one (misc.c get_user_pass_cr reads it again), on the terminal only for what the file lacks. We
 * ask nobody, so interact reads the file again, and keeps inline credentials as nointeract does. */
static int config_apply_auth_retry(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    char shown[64];
    if (strcmp(w[1], "none") == 0)
        p->cfg.auth_retry = OVPN_AUTH_RETRY_NONE;
    else if (strcmp(w[1], "nointeract") == 0)
        p->cfg.auth_retry = OVPN_AUTH_RETRY_NOINTERACT;
    else if (strcmp(w[1], "interact") == 0)
        p->cfg.auth_retry = OVPN_AUTH_RETRY_INTERACT;
    else
        return config_fail(p, "auth-retry '%s': expected none, nointeract or interact",
                           v2s_shown(w[1], shown, sizeof(shown)));
    return 0;
}

/* A cipher name as OpenVPN spells it (AES-128-CBC for aes-128-cbc), or the name as written when
 * we do not have it. OpenVPN 2.6 takes names in any case and sends them spelt its way, and a 2.6
 * server matches IV_CIPHERS case-sensitively: an offer of aes-128-cbc matched nothing there. */
static void config_cipher_canonical(char *name)
{
    const struct ovpn_data_cipher_info *c = ovpn_data_cipher_find(name);
    if (c != NULL)
        memcpy(name, c->name, strlen(c->name) + 1); /* the same length: only the case differs */
}

static int config_apply_cipher(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    if (ovpn_config_copy_name(p, p->cfg.cipher, sizeof(p->cfg.cipher), w) < 0)
        return -EINVAL;
    config_cipher_canonical(p->cfg.cipher);
    return 0;
}

/* data-ciphers A:?B:C as OpenVPN 2.6 reads it: a name after '?' is optional, left out quietly when
 * we do not have it (the list OpenVPN's manual suggests ends in ?CHACHA20-POLY1305, which was
 * dropped whole here as an unknown name). OpenVPN refuses any other name its OpenSSL lacks; we
 * leave it out with a warning naming the line, so that a config a 2.6 client accepts still
 * connects on the ciphers we share, and refuse the list when none of it is left: the default list
 * was then offered instead, and a misspelt list connected on ciphers the user had not named. The
 * names kept are spelt OpenVPN's way (config_cipher_canonical). */
static int config_apply_data_ciphers(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char list[sizeof(p->cfg.data_ciphers)], name[64], shown[CONFIG_SHOWN_MAX], have[160];
    size_t used = 0;
    (void)n, (void)block;
    if (ovpn_config_copy_name(p, list, sizeof(list), w) < 0)
        return -EINVAL;
    ovpn_data_cipher_names(have, sizeof(have));
    /* Two passes: the names we have, then (when there are some) a warning for each other one. */
    for (int pass = 0; pass < 2; pass++) {
        for (const char *s = list; *s;) {
            size_t l = strcspn(s, ":");
            int optional = *s == '?';
            snprintf(name, sizeof(name), "%.*s", (int)(l - (size_t)optional), s + optional);
            if (pass == 0 && ovpn_data_cipher_supported(name)) {
                config_cipher_canonical(name);
                used += (size_t)snprintf(p->cfg.data_ciphers + used, sizeof(p->cfg.data_ciphers) - used, "%s%s",
                                         used ? ":" : "", name); /* fits: no longer than list */
            }
            else if (pass == 1 && !optional && !ovpn_data_cipher_supported(name))
                ovpn_config_warn(p, p->opt_line, "%s: %s is not a data cipher vpn2socks has (%s); left out",
                                 w[0], v2s_shown(name, shown, sizeof(shown)), have);
            s += l;
            if (*s == ':')
                s++;
        }
        if (used == 0)
            return config_fail(p, "%s: none of '%s' is a data cipher vpn2socks has (%s)", w[0],
                               v2s_shown(list, shown, sizeof(shown)), have);
    }
    return 0;
}

/* Refused when we lack it, as OpenVPN does: it is the one cipher such a server runs. */
static int config_apply_data_ciphers_fallback(struct ovpn_config_parser *p, char **w, int n,
                                              const char *block)
{
    char shown[CONFIG_SHOWN_MAX], have[160];
    (void)n, (void)block;
    if (ovpn_config_copy_name(p, p->cfg.data_ciphers_fallback, sizeof(p->cfg.data_ciphers_fallback), w) < 0)
        return -EINVAL;
    if (ovpn_data_cipher_supported(p->cfg.data_ciphers_fallback)) {
        config_cipher_canonical(p->cfg.data_ciphers_fallback);
        return 0;
    }
    ovpn_data_cipher_names(have, sizeof(have));
    return config_fail(p, "%s: %s is not a data cipher vpn2socks has (%s)", w[0],
                       v2s_shown(w[1], shown, sizeof(shown)), have);
}

static int config_apply_auth(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    return ovpn_config_copy_name(p, p->cfg.auth, sizeof(p->cfg.auth), w);
}

/* tls-version-min V [or-highest]: an unknown V with or-highest means the highest we know. */
static int config_apply_tls_version_min(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    static const char *const versions[] = {"1.0", "1.1", "1.2", "1.3"};
    char shown[CONFIG_SHOWN_MAX];
    (void)block;
    if (n == 3 && strcmp(w[2], "or-highest") != 0)
        return config_fail(p, "tls-version-min: '%s' is not or-highest", v2s_shown(w[2], shown, sizeof(shown)));
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        if (strcmp(w[1], versions[i]) == 0) {
            snprintf(p->cfg.tls_version_min, sizeof(p->cfg.tls_version_min), "%s", versions[i]);
            return 0;
        }
    }
    if (n == 3) {
        snprintf(p->cfg.tls_version_min, sizeof(p->cfg.tls_version_min), "1.3");
        return 0;
    }
    return config_fail(p, "tls-version-min '%s': expected 1.0, 1.1, 1.2 or 1.3", v2s_shown(w[1], shown, sizeof(shown)));
}

static int config_apply_tls_cipher(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    return ovpn_config_set_string(p, &p->cfg.tls_cipher, w[1]);
}

static int config_apply_tls_ciphersuites(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    return ovpn_config_set_string(p, &p->cfg.tls_ciphersuites, w[1]);
}

/* remote-cert-tls server and ns-cert-type server: the server's certificate must be a server's. */
static int config_apply_remote_cert_tls(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char shown[CONFIG_SHOWN_MAX];
    (void)n, (void)block;
    if (strcmp(w[1], "server") != 0)
        return config_fail(p, "%s '%s': a client checks for 'server'", w[0], v2s_shown(w[1], shown, sizeof(shown)));
    p->cfg.remote_cert_tls_server = 1;
    return 0;
}

/* remote-cert-eku: only the server-authentication EKU makes sense here; it is checked through
 * remote-cert-tls server, which also requires a key usage. */
static int config_apply_remote_cert_eku(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char shown[CONFIG_SHOWN_MAX];
    (void)n, (void)block;
    if (strcmp(w[1], "TLS Web Server Authentication") != 0 && strcmp(w[1], "serverAuth") != 0 &&
        strcmp(w[1], "1.3.6.1.5.5.7.3.1") != 0)
        return config_fail(p, "remote-cert-eku '%s' is not supported: only TLS Web Server Authentication",
                           v2s_shown(w[1], shown, sizeof(shown)));
    p->cfg.remote_cert_tls_server = 1;
    return 0;
}

static int config_apply_verify_x509_name(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char shown[CONFIG_SHOWN_MAX];
    enum ovpn_x509_name_type type = OVPN_X509_NAME_SUBJECT;
    (void)block;
    if (w[1][0] == '\0')
        return config_fail(p, "verify-x509-name needs a name");
    if (n == 3) {
        if (strcmp(w[2], "subject") == 0)
            type = OVPN_X509_NAME_SUBJECT;
        else if (strcmp(w[2], "name") == 0)
            type = OVPN_X509_NAME_CN;
        else if (strcmp(w[2], "name-prefix") == 0)
            type = OVPN_X509_NAME_CN_PREFIX;
        else
            return config_fail(p, "verify-x509-name type '%s': expected subject, name or name-prefix",
                               v2s_shown(w[2], shown, sizeof(shown)));
    }
    p->cfg.verify_x509_type = type;
    return ovpn_config_set_string(p, &p->cfg.verify_x509_name, w[1]);
}

/* One SHA-256 fingerprint as OpenVPN reads it (options.c parse_hash_fingerprint) and `openssl x509
 * -noout -fingerprint -sha256` prints it: 32 bytes, each two hex digits in either case, separated
 * by ':'. 0 or -EINVAL. */
static int config_parse_fingerprint(const char *text, size_t len, uint8_t out[OVPN_FINGERPRINT_LEN])
{
    size_t i = 0, n = 0;
    for (;;) {
        if (n == OVPN_FINGERPRINT_LEN || i + 2 > len)
            return -EINVAL;
        int high = ovpn_hex_digit(text[i]), low = ovpn_hex_digit(text[i + 1]);
        if (high < 0 || low < 0)
            return -EINVAL;
        out[n++] = (uint8_t)(high << 4 | low);
        i += 2;
        if (i == len)
            return n == OVPN_FINGERPRINT_LEN ? 0 : -EINVAL;
        if (text[i++] != ':')
            return -EINVAL;
    }
}

static int config_add_fingerprint(struct ovpn_config_parser *p, const char *text, size_t len, unsigned line)
{
    uint8_t fp[OVPN_FINGERPRINT_LEN];
    char shown[CONFIG_SHOWN_MAX], copy[CONFIG_SHOWN_MAX + 1]; /* one more than fits: "..." shows the cut */
    if (config_parse_fingerprint(text, len, fp) < 0) {
        snprintf(copy, sizeof(copy), "%.*s", (int)(len < sizeof(copy) - 1 ? len : sizeof(copy) - 1), text);
        return ovpn_config_fail_at(p, line,
                                   "peer-fingerprint '%s' is not a SHA-256 fingerprint: 32 bytes as hex pairs "
                                   "separated by ':', as `openssl x509 -noout -fingerprint -sha256` prints them",
                                   v2s_shown(copy, shown, sizeof(shown)));
    }
    if (p->cfg.n_peer_fingerprints >= CONFIG_MAX_FINGERPRINTS)
        return ovpn_config_fail_at(p, line, "more than %d peer-fingerprint entries", CONFIG_MAX_FINGERPRINTS);
    uint8_t(*grown)[OVPN_FINGERPRINT_LEN] =
        realloc(p->cfg.peer_fingerprints, (p->cfg.n_peer_fingerprints + 1) * sizeof(*grown));
    if (grown == NULL)
        return ovpn_config_nomem(p);
    memcpy(grown[p->cfg.n_peer_fingerprints++], fp, sizeof(fp));
    p->cfg.peer_fingerprints = grown;
    return 0;
}

/* peer-fingerprint FP, or a <peer-fingerprint> block of one per line (blank lines and lines
 * starting with # or ; skipped, as OpenVPN does). Every occurrence adds to the list. */
static int config_apply_peer_fingerprint(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n;
    if (block == NULL)
        return config_add_fingerprint(p, w[1], strlen(w[1]), p->opt_line);
    unsigned line = p->opt_line;
    size_t before = p->cfg.n_peer_fingerprints;
    const char *s = block;
    while (*s != '\0') {
        const char *end = strchr(s, '\n');
        size_t len = end != NULL ? (size_t)(end - s) : strlen(s);
        const char *next = s + len + (end != NULL);
        line++;
        while (len > 0 && ovpn_is_space(*s))
            s++, len--;
        while (len > 0 && ovpn_is_space(s[len - 1]))
            len--;
        if (len > 0 && *s != '#' && *s != ';') {
            int rc = config_add_fingerprint(p, s, len, line);
            if (rc < 0)
                return rc;
        }
        s = next;
    }
    if (p->cfg.n_peer_fingerprints == before)
        return config_fail(p, "the <peer-fingerprint> block holds no fingerprint");
    return 0;
}

static int config_apply_reneg_sec(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    unsigned max;
    int rc;
    (void)block;
    if ((rc = ovpn_config_seconds(p, w[0], w[1], 0, &p->cfg.reneg_sec)) < 0)
        return rc;
    return n == 3 ? ovpn_config_seconds(p, w[0], w[2], 0, &max) : 0;
}

/* reneg-bytes N / reneg-pkts N: a new key after N bytes / packets, both directions counted. */
static int config_apply_reneg_count(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    return ovpn_config_number64(p, w[0], w[1], strcmp(w[0], "reneg-bytes") == 0 ? &p->cfg.reneg_bytes : &p->cfg.reneg_pkts);
}

/* replay-window n [t]: the data channel takes a packet id fewer than n (0..65536, default 64)
 * behind the highest one seen, once; 0 takes each only right after the one before, as OpenVPN
 * does. t (0..600 s) is checked, not used: see data.c. The control channel's window stays 64. */
static int config_apply_replay_window(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    unsigned window = 0, secs = 0;
    int rc;
    (void)block;
    if ((rc = ovpn_config_number(p, w[0], w[1], 0, OVPN_REPLAY_MAX, &window)) < 0 ||
        (n == 3 && (rc = ovpn_config_number(p, w[0], w[2], 0, 600, &secs)) < 0))
        return rc;
    p->cfg.replay_window = window;
    p->cfg.replay_in_order = window == 0;
    return 0;
}

/* compat-mode X.Y.Z: behave as a client of that version would where it matters on the wire (before
 * 2.6, no TLS-exporter key derivation is offered, so the server falls back to the PRF). */
static int config_apply_compat_mode(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    unsigned x, y, z = 0;
    char tail;
    (void)n, (void)block;
    int got = sscanf(w[1], "%u.%u.%u%c", &x, &y, &z, &tail);
    if ((got != 2 && got != 3) || x > 99 || y > 99 || z > 99)
    {
        char shown[CONFIG_SHOWN_MAX];
        return config_fail(p, "%s: '%s' is not a version like 2.5.0", w[0], v2s_shown(w[1], shown, sizeof(shown)));
    }
    p->cfg.compat_version = x * 10000 + y * 100 + z;
    return 0;
}

static int config_apply_hand_window(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    return ovpn_config_seconds(p, w[0], w[1], 1, &p->cfg.hand_window);
}

static int config_apply_key_method(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char shown[CONFIG_SHOWN_MAX];
    (void)n, (void)block;
    if (strcmp(w[1], "2") == 0)
        return 0;
    return config_fail(p, "key-method %s is not supported: only key-method 2", v2s_shown(w[1], shown, sizeof(shown)));
}

const struct config_option ovpn_config_tls_options[] = {
    /* Credentials and TLS. */
    CONFIG_APPLY_ROW("ca", CONFIG_BLOCK, 1, 1, config_apply_ca),
    CONFIG_APPLY_ROW("cert", CONFIG_BLOCK, 1, 1, config_apply_cert),
    CONFIG_APPLY_ROW("key", CONFIG_BLOCK, 1, 1, config_apply_key),
    CONFIG_APPLY_ROW("extra-certs", CONFIG_BLOCK, 1, 1, config_apply_extra_certs),
    CONFIG_APPLY_ROW("crl-verify", CONFIG_BLOCK, 1, 2, config_apply_crl_verify),
    CONFIG_APPLY_ROW("tls-auth", CONFIG_BLOCK | CONFIG_CONN, 1, 2, config_apply_tls_auth),
    CONFIG_APPLY_ROW("tls-crypt", CONFIG_BLOCK | CONFIG_CONN, 1, 2, config_apply_tls_crypt),
    CONFIG_APPLY_ROW("tls-crypt-v2", CONFIG_BLOCK | CONFIG_CONN, 1, 2, config_apply_tls_crypt_v2),
    CONFIG_APPLY_ROW("key-direction", CONFIG_CONN, 1, 1, config_apply_key_direction),
    CONFIG_APPLY_ROW("auth-user-pass", CONFIG_BLOCK, 0, 1, config_apply_auth_user_pass),
    CONFIG_APPLY_ROW("auth-nocache", 0, 0, 0, config_apply_auth_nocache),
    CONFIG_APPLY_ROW("auth-retry", 0, 1, 1, config_apply_auth_retry),
    CONFIG_APPLY_ROW("tls-exit", 0, 0, 0, config_apply_tls_exit),
    CONFIG_APPLY_ROW("cipher", 0, 1, 1, config_apply_cipher),
    CONFIG_APPLY_ROW("data-ciphers", 0, 1, 1, config_apply_data_ciphers),
    CONFIG_APPLY_ROW("ncp-ciphers", 0, 1, 1, config_apply_data_ciphers),
    CONFIG_APPLY_ROW("data-ciphers-fallback", 0, 1, 1, config_apply_data_ciphers_fallback),
    CONFIG_APPLY_ROW("auth", 0, 1, 1, config_apply_auth),
    CONFIG_APPLY_ROW("tls-version-min", 0, 1, 2, config_apply_tls_version_min),
    CONFIG_APPLY_ROW("tls-cipher", 0, 1, 1, config_apply_tls_cipher),
    CONFIG_APPLY_ROW("tls-ciphersuites", 0, 1, 1, config_apply_tls_ciphersuites),
    CONFIG_APPLY_ROW("remote-cert-tls", 0, 1, 1, config_apply_remote_cert_tls),
    CONFIG_APPLY_ROW("ns-cert-type", 0, 1, 1, config_apply_remote_cert_tls),
    CONFIG_APPLY_ROW("remote-cert-eku", 0, 1, 1, config_apply_remote_cert_eku),
    CONFIG_APPLY_ROW("verify-x509-name", 0, 1, 2, config_apply_verify_x509_name),
    CONFIG_APPLY_ROW("peer-fingerprint", CONFIG_BLOCK, 1, 1, config_apply_peer_fingerprint),
    CONFIG_APPLY_ROW("key-method", 0, 1, 1, config_apply_key_method),
    /* Key lifetimes, and the handshake. */
    CONFIG_APPLY_ROW("reneg-sec", 0, 1, 2, config_apply_reneg_sec),
    CONFIG_APPLY_ROW("reneg-bytes", 0, 1, 1, config_apply_reneg_count),
    CONFIG_APPLY_ROW("reneg-pkts", 0, 1, 1, config_apply_reneg_count),
    CONFIG_APPLY_ROW("replay-window", 0, 1, 2, config_apply_replay_window),
    CONFIG_APPLY_ROW("compat-mode", 0, 1, 1, config_apply_compat_mode),
    CONFIG_APPLY_ROW("hand-window", 0, 1, 1, config_apply_hand_window),
};
const size_t ovpn_config_tls_n_options = sizeof(ovpn_config_tls_options) / sizeof(ovpn_config_tls_options[0]);
