/* TLS for the control channel. OpenSSL never touches a socket here: ciphertext goes in and out
 * through two memory BIOs, and the reliability layer carries it. */
#include "tunnel/openvpn/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tunnel/openvpn/config.h"

struct ovpn_tls_ctx {
    SSL_CTX *ssl_ctx;
    int remote_cert_tls_server;
    char *verify_name;
    enum ovpn_x509_name_type verify_type;
};

struct ovpn_tls {
    struct ovpn_tls_ctx *ctx;
    SSL *ssl;
    BIO *in;  /* from the peer */
    BIO *out; /* to the peer */
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

/* 0, -1 for no certificate, or -EKEYEXPIRED when ours is outside its validity period (the server
 * would refuse it, and under TLS 1.3 we would only learn that from a silent timeout). */
static int ovpn_tls_load_cert_chain(SSL_CTX *c, const char *pem, const char *extra, char *err, size_t errcap)
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
        snprintf(err, errcap, "cert: the client certificate %s %s", expired ? "expired on" : "is not valid before", when);
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

int ovpn_tls_ctx_new(struct ovpn_tls_ctx **out, const struct ovpn_config *cfg, char *err, size_t errcap)
{
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
    if (!cfg->ca || ovpn_tls_load_cas(SSL_CTX_get_cert_store(c), cfg->ca) <= 0) {
        snprintf(err, errcap, "ca: no certificate found; the server's certificate is always verified");
        goto fail;
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    if (cfg->cert || cfg->key) {
        if (!cfg->cert || !cfg->key) {
            snprintf(err, errcap, "cert and key go together; only %s given", cfg->cert ? "cert" : "key");
            goto fail;
        }
        int rc = ovpn_tls_load_cert_chain(c, cfg->cert, cfg->extra_certs, err, errcap);
        if (rc == -EKEYEXPIRED) {
            ovpn_tls_ctx_free(ctx);
            return rc;
        }
        if (rc < 0) {
            snprintf(err, errcap, "cert: not a PEM certificate");
            goto fail;
        }
        BIO *b = BIO_new_mem_buf(cfg->key, -1);
        /* An encrypted key would need a passphrase prompt; refuse rather than hang on one. */
        EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"") : NULL;
        BIO_free(b);
        if (!k) {
            ERR_clear_error();
            snprintf(err, errcap, "key: not a PEM private key (or protected by a passphrase, which is not supported)");
            goto fail;
        }
        int ok = SSL_CTX_use_PrivateKey(c, k) == 1 && SSL_CTX_check_private_key(c) == 1;
        EVP_PKEY_free(k);
        if (!ok) {
            ERR_clear_error();
            snprintf(err, errcap, "key: does not match the certificate in cert");
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

/* The common name, or "" when there is none. */
static void ovpn_tls_cn(X509 *x, char *buf, size_t cap)
{
    buf[0] = '\0';
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)cap);
}

/* OpenVPN's subject format: "C=DE, O=Org, CN=name". */
static void ovpn_tls_subject(X509 *x, char *buf, size_t cap)
{
    BIO *b = BIO_new(BIO_s_mem());
    buf[0] = '\0';
    if (!b)
        return;
    X509_NAME_print_ex(b, X509_get_subject_name(x), 0,
                       XN_FLAG_SEP_CPLUS_SPC | XN_FLAG_FN_SN | ASN1_STRFLGS_UTF8_CONVERT | ASN1_STRFLGS_ESC_CTRL);
    int n = BIO_read(b, buf, (int)cap - 1);
    buf[n > 0 ? n : 0] = '\0';
    BIO_free(b);
}

/* What OpenVPN checks beyond the chain: the serverAuth purpose and the configured name. */
static int ovpn_tls_check_peer(struct ovpn_tls *t)
{
    X509 *peer = SSL_get0_peer_certificate(t->ssl);
    if (!peer) {
        snprintf(t->error, sizeof(t->error), "the server sent no certificate");
        return -EACCES;
    }
    if (t->ctx->remote_cert_tls_server) {
        uint32_t xku = X509_get_extended_key_usage(peer);
        uint32_t ku = X509_get_key_usage(peer);
        if (!(X509_get_extension_flags(peer) & EXFLAG_XKUSAGE) || !(xku & XKU_SSL_SERVER)) {
            snprintf(t->error, sizeof(t->error),
                     "server certificate lacks the TLS Web Server Authentication usage (remote-cert-tls server)");
            return -EACCES;
        }
        /* As OpenVPN: the key usage extension must be there and allow a TLS server's key. */
        if (!(X509_get_extension_flags(peer) & EXFLAG_KUSAGE) ||
            !(ku & (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT))) {
            snprintf(t->error, sizeof(t->error), "server certificate key usage does not allow TLS (remote-cert-tls server)");
            return -EACCES;
        }
    }
    if (t->ctx->verify_name) {
        char have[512];
        int ok;
        if (t->ctx->verify_type == OVPN_X509_NAME_SUBJECT) {
            ovpn_tls_subject(peer, have, sizeof(have));
            ok = strcmp(have, t->ctx->verify_name) == 0;
        } else {
            ovpn_tls_cn(peer, have, sizeof(have));
            ok = t->ctx->verify_type == OVPN_X509_NAME_CN
                     ? strcmp(have, t->ctx->verify_name) == 0
                     : strncmp(have, t->ctx->verify_name, strlen(t->ctx->verify_name)) == 0;
        }
        if (!ok) {
            snprintf(t->error, sizeof(t->error), "server certificate name '%.100s' does not match verify-x509-name '%.100s'",
                     have, t->ctx->verify_name);
            return -EACCES;
        }
    }
    return 0;
}

int ovpn_tls_handshake(struct ovpn_tls *t)
{
    if (SSL_is_init_finished(t->ssl))
        return 1;
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        int v = ovpn_tls_check_peer(t);
        return v < 0 ? v : 1;
    }
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    long vr = SSL_get_verify_result(t->ssl);
    if (vr != X509_V_OK) {
        ERR_clear_error();
        snprintf(t->error, sizeof(t->error), "server certificate verify failed: %s",
                 X509_verify_cert_error_string(vr));
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

void ovpn_tls_describe(const struct ovpn_tls *t, char *buf, size_t cap)
{
    char cn[256] = "";
    X509 *peer = SSL_get0_peer_certificate(t->ssl);
    if (peer)
        ovpn_tls_cn(peer, cn, sizeof(cn));
    snprintf(buf, cap, "%s, cipher %s, server CN=%s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl), cn);
}
