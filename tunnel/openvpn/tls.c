/* TLS for the control channel. OpenSSL never touches a socket here: ciphertext goes in and out
 * through two memory BIOs, and the reliability layer carries it.
 *
 * Who the server is, as OpenVPN 2.6 decides it (ssl_verify.c, ssl_verify_openssl.c), all in the
 * certificate verify callback, so a refused server gets an alert and never sees our certificate
 * under TLS 1.3:
 * - the chain must verify against ca; without ca, peer-fingerprint alone vouches for the server
 *   (a self-signed certificate, OpenVPN's "verify_hash_no_ca": every chain error is ignored,
 *   the validity period included, because the pinned certificate replaces the PKI);
 * - peer-fingerprint: the SHA-256 of the server's own certificate is one of the list;
 * - remote-cert-tls server: the serverAuth EKU and a key usage that allows TLS;
 * - verify-x509-name: "subject" compares the whole subject as X509_NAME_print_ex prints it,
 *   "name" the LAST common name of the subject, "name-prefix" its start; OpenVPN first turns
 *   control characters into '_' (and leading '-' of the subject). We refuse a common name with a
 *   NUL byte outright: OpenVPN's C strings end there, so "vpn.example.com\0.attacker.example"
 *   would pass as "vpn.example.com". */
#include "tunnel/openvpn/tls.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/log.h"
#include "tunnel/openvpn/config.h"

enum {
    OVPN_TLS_CN_MAX = 64, /* OpenVPN's TLS_USERNAME_LEN: a longer common name fails its checks */
    OVPN_TLS_SHOWN = 160, /* room for a name from a certificate in an error */
};

struct ovpn_tls_ctx {
    SSL_CTX *ssl_ctx;
    int remote_cert_tls_server;
    char *verify_name;
    enum ovpn_x509_name_type verify_type;
    uint8_t (*fingerprints)[OVPN_FINGERPRINT_LEN];
    size_t n_fingerprints;
    int pinned_only; /* no ca: the fingerprint replaces the chain */
};

struct ovpn_tls {
    struct ovpn_tls_ctx *ctx;
    SSL *ssl;
    BIO *in;  /* from the peer */
    BIO *out; /* to the peer */
    int checked; /* the server's own certificate passed every check */
    int refused; /* it failed one; error says which */
    char error[320];
};

static void ovpn_tls_ssl_error(char *buf, size_t cap, const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[200] = "unknown error";
    if (e)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    snprintf(buf, cap, "%s: %s", what, reason);
}

/* Loads every certificate in a PEM text into the store. Returns how many, or -1. */
static int ovpn_tls_load_cas(X509_STORE *store, const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    int n = 0;
    X509 *x;
    if (!b)
        return -1;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        if (X509_STORE_add_cert(store, x) == 1)
            n++;
        X509_free(x);
    }
    ERR_clear_error(); /* the loop ends on "no start line" */
    BIO_free(b);
    return n;
}

/* Loads every CRL in a PEM text into the store and turns on the checks OpenVPN 2.6 turns on with
 * crl-verify (ssl_openssl.c): each certificate of the server's chain against its issuer's CRL, so
 * a CRL missing for one of them, or past its next update, fails the chain as it does there.
 * Returns how many were loaded, or -1. */
static int ovpn_tls_load_crls(X509_STORE *store, const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    int n = 0;
    X509_CRL *crl;
    if (!b)
        return -1;
    while ((crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL))) {
        if (X509_STORE_add_crl(store, crl) == 1)
            n++;
        X509_CRL_free(crl);
    }
    ERR_clear_error(); /* the loop ends on "no start line" */
    BIO_free(b);
    if (n > 0)
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    return n;
}

/* 0, -1 for no certificate, or -EKEYEXPIRED when ours is outside its validity period (the server
 * would refuse it, and under TLS 1.3 we would only learn that from a silent timeout). */
static int ovpn_tls_load_cert_chain(SSL_CTX *c, const char *pem, const char *extra,
                                    const char *origin, char *err, size_t errcap)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    int ok = x && SSL_CTX_use_certificate(c, x) == 1;
    if (ok && (X509_cmp_current_time(X509_get0_notAfter(x)) < 0 || X509_cmp_current_time(X509_get0_notBefore(x)) > 0)) {
        BIO *m = BIO_new(BIO_s_mem());
        char when[64] = "?";
        int expired = X509_cmp_current_time(X509_get0_notAfter(x)) < 0;
        if (m && ASN1_TIME_print(m, expired ? X509_get0_notAfter(x) : X509_get0_notBefore(x)) == 1) {
            int n = BIO_read(m, when, sizeof(when) - 1);
            when[n > 0 ? n : 0] = '\0';
        }
        BIO_free(m);
        snprintf(err, errcap, "%s: the client certificate %s %s", origin,
                 expired ? "expired on" : "is not valid before", when);
        X509_free(x);
        BIO_free(b);
        return -EKEYEXPIRED;
    }
    X509_free(x);
    /* Any further certificates in the file, then extra-certs, complete the chain. */
    while (ok && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
        if (SSL_CTX_add0_chain_cert(c, x) != 1)
            X509_free(x);
    BIO_free(b);
    if (ok && extra) {
        b = BIO_new_mem_buf(extra, -1);
        while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
            if (SSL_CTX_add0_chain_cert(c, x) != 1)
                X509_free(x);
        BIO_free(b);
    }
    ERR_clear_error();
    return ok ? 0 : -1;
}

static int ovpn_tls_version(const char *text)
{
    if (!text[0] || strncmp(text, "1.2", 3) == 0)
        return TLS1_2_VERSION;
    if (strncmp(text, "1.3", 3) == 0)
        return TLS1_3_VERSION;
    if (strncmp(text, "1.1", 3) == 0)
        return TLS1_1_VERSION;
    if (strncmp(text, "1.0", 3) == 0)
        return TLS1_VERSION;
    return -1;
}

static int ovpn_tls_refuse(struct ovpn_tls *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ovpn_tls_refuse(struct ovpn_tls *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->error, sizeof(t->error), fmt, ap);
    va_end(ap);
    t->refused = 1;
    return -EACCES;
}

/* Text from a certificate for a log line or an error: control bytes and DEL as \xHH, so a NUL or
 * a line break shows and cannot forge a log line; cut with "..." to fit cap (>= 8). */
static void ovpn_tls_show(const unsigned char *s, size_t len, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        int esc = c < 0x20 || c == 0x7F;
        if (o + (esc ? 4 : 1) + 4 > cap) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (esc) {
            snprintf(buf + o, 5, "\\x%02X", c);
            o += 4;
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o] = '\0';
}

/* OpenVPN's string_mod_remap_name(): what it compares has its control characters as '_'. */
static void ovpn_tls_remap(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7F)
            *s = '_';
}

/* The subject's last common name, the one OpenVPN compares, as UTF-8 in *out (OPENSSL_free it):
 * its length in bytes, or -1 when there is none or it does not convert. */
static int ovpn_tls_last_cn(X509 *x, unsigned char **out)
{
    const X509_NAME *name = X509_get_subject_name(x);
    int last = -1;
    *out = NULL;
    for (int i = -1; (i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) >= 0;)
        last = i;
    if (last < 0)
        return -1;
    const ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last));
    int len = data ? ASN1_STRING_to_UTF8(out, data) : -1;
    if (len < 0) {
        ERR_clear_error();
        OPENSSL_free(*out);
        *out = NULL;
        return -1;
    }
    return len;
}

/* The subject as OpenVPN prints it for "verify-x509-name X subject": "C=DE, O=Org, CN=name"
 * (control characters escaped by OpenSSL, then any left and leading '-' as '_', as its
 * verify_cert() does). malloc'd; NULL when it is empty, would hold a NUL byte (which would end
 * the comparison early) or memory ran out. */
static char *ovpn_tls_subject(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    BUF_MEM *m = NULL;
    char *s = NULL;
    if (b && X509_NAME_print_ex(b, X509_get_subject_name(x), 0,
                                XN_FLAG_SEP_CPLUS_SPC | XN_FLAG_FN_SN | ASN1_STRFLGS_UTF8_CONVERT |
                                    ASN1_STRFLGS_ESC_CTRL) >= 0 &&
        BIO_get_mem_ptr(b, &m) == 1 && m->length > 0 && !memchr(m->data, '\0', m->length) &&
        (s = malloc(m->length + 1))) {
        memcpy(s, m->data, m->length);
        s[m->length] = '\0';
        ovpn_tls_remap(s);
        for (char *c = s; *c == '-'; c++)
            *c = '_';
    }
    BIO_free(b);
    return s;
}

static int ovpn_tls_check_fingerprint(struct ovpn_tls *t, X509 *peer)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char hex[3 * OVPN_FINGERPRINT_LEN];
    if (X509_digest(peer, EVP_sha256(), md, &len) != 1 || len != OVPN_FINGERPRINT_LEN) {
        ERR_clear_error();
        return ovpn_tls_refuse(t, "cannot compute the server certificate's SHA-256 fingerprint");
    }
    for (size_t i = 0; i < t->ctx->n_fingerprints; i++)
        if (CRYPTO_memcmp(md, t->ctx->fingerprints[i], OVPN_FINGERPRINT_LEN) == 0)
            return 0;
    for (size_t i = 0; i < OVPN_FINGERPRINT_LEN; i++)
        snprintf(hex + 3 * i, 4, "%02X%s", md[i], i + 1 < OVPN_FINGERPRINT_LEN ? ":" : "");
    return ovpn_tls_refuse(t, "server certificate SHA-256 fingerprint %s is not one of the config's peer-fingerprint",
                           hex);
}

static int ovpn_tls_check_name(struct ovpn_tls *t, X509 *peer)
{
    const char *want = t->ctx->verify_name;
    char shown[OVPN_TLS_SHOWN], wanted[OVPN_TLS_SHOWN];
    int rc = 0;
    ovpn_tls_show((const unsigned char *)want, strlen(want), wanted, sizeof(wanted));
    if (t->ctx->verify_type == OVPN_X509_NAME_SUBJECT) {
        char *subject = ovpn_tls_subject(peer);
        if (!subject || strcmp(subject, want) != 0) {
            ovpn_tls_show((const unsigned char *)(subject ? subject : ""), subject ? strlen(subject) : 0, shown,
                          sizeof(shown));
            rc = ovpn_tls_refuse(t, "server certificate subject '%s' does not match verify-x509-name '%s'", shown,
                                 wanted);
        }
        free(subject);
        return rc;
    }
    unsigned char *cn = NULL;
    int len = ovpn_tls_last_cn(peer, &cn);
    if (len >= 0)
        ovpn_tls_show(cn, (size_t)len, shown, sizeof(shown));
    if (len < 0) {
        rc = ovpn_tls_refuse(t, "server certificate has no common name; verify-x509-name '%s' needs one", wanted);
    } else if (memchr(cn, '\0', (size_t)len)) {
        rc = ovpn_tls_refuse(t, "server certificate common name '%s' contains a NUL byte; refused (verify-x509-name)",
                             shown);
    } else if (len > OVPN_TLS_CN_MAX) {
        rc = ovpn_tls_refuse(t, "server certificate common name '%s' is longer than %d bytes (verify-x509-name)",
                             shown, OVPN_TLS_CN_MAX);
    } else {
        char name[OVPN_TLS_CN_MAX + 1];
        memcpy(name, cn, (size_t)len);
        name[len] = '\0';
        ovpn_tls_remap(name);
        int ok = t->ctx->verify_type == OVPN_X509_NAME_CN ? strcmp(name, want) == 0
                                                           : strncmp(name, want, strlen(want)) == 0;
        if (!ok)
            rc = ovpn_tls_refuse(t, "server certificate name '%s' does not match verify-x509-name '%s'%s", shown,
                                 wanted, t->ctx->verify_type == OVPN_X509_NAME_CN_PREFIX ? " (name-prefix)" : "");
    }
    OPENSSL_free(cn);
    return rc;
}

/* What OpenVPN checks on the server's own certificate beyond the chain. 0, or -EACCES with the
 * reason in t->error. */
static int ovpn_tls_check_peer(struct ovpn_tls *t, X509 *peer)
{
    int rc;
    if (t->ctx->n_fingerprints > 0 && (rc = ovpn_tls_check_fingerprint(t, peer)) < 0)
        return rc;
    if (t->ctx->remote_cert_tls_server) {
        uint32_t xku = X509_get_extended_key_usage(peer);
        uint32_t ku = X509_get_key_usage(peer);
        if (!(X509_get_extension_flags(peer) & EXFLAG_XKUSAGE) || !(xku & XKU_SSL_SERVER))
            return ovpn_tls_refuse(t, "server certificate lacks the TLS Web Server Authentication usage "
                                      "(remote-cert-tls server)");
        /* As OpenVPN: the key usage extension must be there and allow a TLS server's key. */
        if (!(X509_get_extension_flags(peer) & EXFLAG_KUSAGE) ||
            !(ku & (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT)))
            return ovpn_tls_refuse(t, "server certificate key usage does not allow TLS (remote-cert-tls server)");
    }
    if (t->ctx->verify_name)
        return ovpn_tls_check_name(t, peer);
    return 0;
}

/* OpenSSL calls this for every certificate of the chain, once per error found and once more when
 * it passes. The server's own certificate (depth 0) gets our checks each time it passes; they do
 * not change their answer. */
static int ovpn_tls_verify_cb(int preverify_ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct ovpn_tls *t = ssl ? SSL_get_app_data(ssl) : NULL;
    if (!t)
        return 0;
    if (!preverify_ok && !t->ctx->pinned_only)
        return 0; /* the chain does not verify; SSL_get_verify_result() says why */
    if (X509_STORE_CTX_get_error_depth(store) != 0)
        return 1;
    X509 *peer = X509_STORE_CTX_get_current_cert(store);
    if (!peer || ovpn_tls_check_peer(t, peer) < 0) {
        if (!t->refused)
            ovpn_tls_refuse(t, "no server certificate to check");
        X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    t->checked = 1;
    return 1;
}

int ovpn_tls_ctx_new(struct ovpn_tls_ctx **out, const struct ovpn_config *cfg, char *err, size_t errcap)
{
    /* Where each came from, when the loader said: OpenSSL judges the contents here, where the
     * option alone would leave the user to guess which file or block it meant. */
    const char *ca_from = cfg->ca_origin ? cfg->ca_origin : "ca";
    const char *cert_from = cfg->cert_origin ? cfg->cert_origin : "cert";
    const char *key_from = cfg->key_origin ? cfg->key_origin : "key";
    struct ovpn_tls_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return -ENOMEM;
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    ctx->ssl_ctx = c;
    if (!c) {
        ovpn_tls_ssl_error(err, errcap, "TLS");
        goto fail;
    }
    int minv = ovpn_tls_version(cfg->tls_version_min);
    if (minv < 0) {
        snprintf(err, errcap, "tls-version-min %s: expected 1.0, 1.1, 1.2 or 1.3", cfg->tls_version_min);
        goto fail;
    }
    SSL_CTX_set_min_proto_version(c, minv);
    if (cfg->ca) {
        if (ovpn_tls_load_cas(SSL_CTX_get_cert_store(c), cfg->ca) <= 0) {
            snprintf(err, errcap, "%s: no certificate found; the server's certificate is always "
                                  "verified", ca_from);
            goto fail;
        }
        if (cfg->crl && ovpn_tls_load_crls(SSL_CTX_get_cert_store(c), cfg->crl) <= 0) {
            snprintf(err, errcap, "%s: no CRL found",
                     cfg->crl_origin ? cfg->crl_origin : "crl-verify");
            goto fail;
        }
    } else if (cfg->n_peer_fingerprints > 0) {
        ctx->pinned_only = 1;
        v2s_info("openvpn: no ca: the server's certificate is verified by its peer-fingerprint alone");
        if (cfg->crl)
            v2s_warn("openvpn: crl-verify is not applied without ca: peer-fingerprint names the "
                     "server's certificate itself");
    } else {
        snprintf(err, errcap, "neither ca nor peer-fingerprint: the server's certificate cannot be verified; give "
                              "ca (the CA that signed it) or peer-fingerprint (its SHA-256 fingerprint)");
        goto fail;
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, ovpn_tls_verify_cb);
    if (cfg->cert || cfg->key) {
        if (!cfg->cert || !cfg->key) {
            snprintf(err, errcap, "cert and key go together; only %s given", cfg->cert ? "cert" : "key");
            goto fail;
        }
        int rc = ovpn_tls_load_cert_chain(c, cfg->cert, cfg->extra_certs, cert_from, err, errcap);
        if (rc == -EKEYEXPIRED) {
            ovpn_tls_ctx_free(ctx);
            return rc;
        }
        if (rc < 0) {
            snprintf(err, errcap, "%s: not a PEM certificate", cert_from);
            goto fail;
        }
        BIO *b = BIO_new_mem_buf(cfg->key, -1);
        /* An encrypted key would need a passphrase prompt; refuse rather than hang on one. */
        EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"") : NULL;
        BIO_free(b);
        if (!k) {
            ERR_clear_error();
            snprintf(err, errcap, "%s: not a PEM private key (or protected by a passphrase, which "
                                  "is not supported)", key_from);
            goto fail;
        }
        int ok = SSL_CTX_use_PrivateKey(c, k) == 1 && SSL_CTX_check_private_key(c) == 1;
        EVP_PKEY_free(k);
        if (!ok) {
            ERR_clear_error();
            snprintf(err, errcap, "%s: does not match the certificate of %s", key_from, cert_from);
            goto fail;
        }
    }
    if (cfg->tls_cipher && SSL_CTX_set_cipher_list(c, cfg->tls_cipher) != 1) {
        ERR_clear_error();
        snprintf(err, errcap, "tls-cipher %s: no cipher OpenSSL knows", cfg->tls_cipher);
        goto fail;
    }
    if (cfg->tls_ciphersuites && SSL_CTX_set_ciphersuites(c, cfg->tls_ciphersuites) != 1) {
        ERR_clear_error();
        snprintf(err, errcap, "tls-ciphersuites %s: no suite OpenSSL knows", cfg->tls_ciphersuites);
        goto fail;
    }
    ctx->remote_cert_tls_server = cfg->remote_cert_tls_server;
    ctx->verify_type = cfg->verify_x509_type;
    if (cfg->verify_x509_name && !(ctx->verify_name = strdup(cfg->verify_x509_name)))
        goto fail;
    if (cfg->n_peer_fingerprints > 0) {
        size_t size = cfg->n_peer_fingerprints * sizeof(*ctx->fingerprints);
        if (!(ctx->fingerprints = malloc(size)))
            goto fail;
        memcpy(ctx->fingerprints, cfg->peer_fingerprints, size);
        ctx->n_fingerprints = cfg->n_peer_fingerprints;
    }
    /* As OpenVPN warns (init.c): the chain alone says only "some certificate from this CA". */
    if (!ctx->remote_cert_tls_server && !ctx->verify_name && !ctx->n_fingerprints)
        v2s_warn("openvpn: WARNING: the server's identity is not checked: the config has none of "
                 "remote-cert-tls server, verify-x509-name, peer-fingerprint, so anyone holding a "
                 "certificate from its CA (another user's client certificate included) can pose as the "
                 "server; add 'remote-cert-tls server' or 'verify-x509-name NAME name'");
    *out = ctx;
    return 0;
fail:
    ovpn_tls_ctx_free(ctx);
    return -EINVAL;
}

void ovpn_tls_ctx_free(struct ovpn_tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx->verify_name);
    free(ctx->fingerprints);
    free(ctx);
}

int ovpn_tls_new(struct ovpn_tls **out, struct ovpn_tls_ctx *ctx)
{
    struct ovpn_tls *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->ctx = ctx;
    t->ssl = SSL_new(ctx->ssl_ctx);
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->in || !t->out) {
        SSL_free(t->ssl);
        BIO_free(t->in);
        BIO_free(t->out);
        free(t);
        return -ENOMEM;
    }
    /* An empty input BIO means "try again later", not end of file. */
    BIO_set_mem_eof_return(t->in, -1);
    SSL_set_bio(t->ssl, t->in, t->out);
    SSL_set_app_data(t->ssl, t); /* for ovpn_tls_verify_cb */
    SSL_set_connect_state(t->ssl);
    *out = t;
    return 0;
}

void ovpn_tls_free(struct ovpn_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl); /* frees both BIOs */
    free(t);
}

int ovpn_tls_feed(struct ovpn_tls *t, const uint8_t *data, size_t len)
{
    return BIO_write(t->in, data, (int)len) == (int)len ? 0 : -ENOMEM;
}

int ovpn_tls_handshake(struct ovpn_tls *t)
{
    if (t->refused)
        return -EACCES;
    int rc = SSL_is_init_finished(t->ssl) ? 1 : SSL_do_handshake(t->ssl);
    if (rc == 1) {
        /* The verify callback ran on the server's certificate, or there was none to run on. */
        if (!t->checked)
            return ovpn_tls_refuse(t, SSL_get0_peer_certificate(t->ssl) ? "the server's certificate was not checked"
                                                                         : "the server sent no certificate");
        return 1;
    }
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (t->refused) {
        ERR_clear_error();
        return -EACCES;
    }
    /* Without ca the chain's errors were ignored on purpose; they are not why this failed. */
    long vr = SSL_get_verify_result(t->ssl);
    if (vr != X509_V_OK && !t->ctx->pinned_only) {
        ERR_clear_error();
        snprintf(t->error, sizeof(t->error), "server certificate verify failed: %s",
                 X509_verify_cert_error_string(vr));
        t->refused = 1;
        return -EACCES;
    }
    ovpn_tls_ssl_error(t->error, sizeof(t->error), "TLS handshake failed");
    return -EPROTO;
}

ssize_t ovpn_tls_read(struct ovpn_tls *t, uint8_t *buf, size_t cap)
{
    int n = SSL_read(t->ssl, buf, (int)cap);
    if (n > 0)
        return n;
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (e == SSL_ERROR_ZERO_RETURN) {
        snprintf(t->error, sizeof(t->error), "the server closed the TLS session");
        return -EPIPE;
    }
    ovpn_tls_ssl_error(t->error, sizeof(t->error), "TLS read failed");
    return -EPROTO;
}

int ovpn_tls_write(struct ovpn_tls *t, const uint8_t *data, size_t len)
{
    int n = SSL_write(t->ssl, data, (int)len);
    if (n == (int)len)
        return 0;
    ovpn_tls_ssl_error(t->error, sizeof(t->error), "TLS write failed");
    return -EPROTO;
}

size_t ovpn_tls_take_output(struct ovpn_tls *t, uint8_t *buf, size_t cap)
{
    int n = BIO_read(t->out, buf, (int)cap);
    return n > 0 ? (size_t)n : 0;
}

size_t ovpn_tls_pending_output(struct ovpn_tls *t)
{
    return BIO_ctrl_pending(t->out);
}

int ovpn_tls_export_keys(struct ovpn_tls *t, uint8_t *out, size_t len)
{
    static const char label[] = "EXPORTER-OpenVPN-datakeys";
    if (SSL_export_keying_material(t->ssl, out, len, label, sizeof(label) - 1, NULL, 0, 0) != 1) {
        ovpn_tls_ssl_error(t->error, sizeof(t->error), "TLS exporter failed");
        return -EIO;
    }
    return 0;
}

const char *ovpn_tls_error(const struct ovpn_tls *t)
{
    return t->error[0] ? t->error : "unknown TLS error";
}

const char *ovpn_tls_library_version(void)
{
    return OpenSSL_version(OPENSSL_VERSION);
}

void ovpn_tls_describe(const struct ovpn_tls *t, char *buf, size_t cap)
{
    char cn[OVPN_TLS_SHOWN] = "";
    X509 *peer = SSL_get0_peer_certificate(t->ssl);
    unsigned char *utf8 = NULL;
    int len = peer ? ovpn_tls_last_cn(peer, &utf8) : -1;
    if (len >= 0)
        ovpn_tls_show(utf8, (size_t)len, cn, sizeof(cn));
    OPENSSL_free(utf8);
    snprintf(buf, cap, "%s, cipher %s, server CN=%s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl), cn);
}
