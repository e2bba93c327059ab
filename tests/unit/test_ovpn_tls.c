/* tunnel/openvpn/tls.c: who the server is. Certificates are made here with OpenSSL (a CA, servers
 * with chosen subjects, self-signed ones), and each case is a real TLS handshake between our
 * client session and an OpenSSL server over memory, so what is checked is what a server sends. */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "test.h"
#include "tunnel/openvpn/config.h"
#include "tunnel/openvpn/tls.h"

/* ---- certificates ---- */

struct cert {
    X509 *x;
    EVP_PKEY *key;
};

enum cert_kind {
    CERT_CA,
    CERT_SERVER,      /* serverAuth EKU and a TLS key usage, as remote-cert-tls server wants */
    CERT_PLAIN,       /* no extensions: what `openssl req -x509` makes by default */
};

/* One subject entry: field ("CN", "O", "C") and value with an explicit length, so a NUL can be
 * in it. The value goes in as a UTF8String as given, without OpenSSL's length table. */
struct rdn {
    const char *field;
    const char *value;
    int len; /* -1: strlen */
};

static void cert_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    ASSERT(ext != NULL);
    ASSERT_EQ(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A certificate for rdns (in order), signed by issuer (NULL: self-signed), valid from now+from_s
 * to now+to_s. */
static struct cert cert_make(const struct rdn *rdns, size_t n, enum cert_kind kind, const struct cert *issuer,
                             long from_s, long to_s)
{
    static long serial = 1;
    struct cert c = {X509_new(), EVP_EC_gen("P-256")};
    ASSERT(c.x != NULL && c.key != NULL);
    ASSERT_EQ(X509_set_version(c.x, 2), 1);
    ASSERT_EQ(ASN1_INTEGER_set(X509_get_serialNumber(c.x), serial++), 1);
    X509_NAME *name = X509_get_subject_name(c.x);
    for (size_t i = 0; i < n; i++) {
        int len = rdns[i].len < 0 ? (int)strlen(rdns[i].value) : rdns[i].len;
        ASSERT_EQ(X509_NAME_add_entry_by_txt(name, rdns[i].field, V_ASN1_UTF8STRING,
                                             (const unsigned char *)rdns[i].value, len, -1, 0), 1);
    }
    X509 *signer = issuer ? issuer->x : c.x;
    ASSERT_EQ(X509_set_issuer_name(c.x, X509_get_subject_name(signer)), 1);
    ASSERT(X509_gmtime_adj(X509_getm_notBefore(c.x), from_s) != NULL);
    ASSERT(X509_gmtime_adj(X509_getm_notAfter(c.x), to_s) != NULL);
    ASSERT_EQ(X509_set_pubkey(c.x, c.key), 1);
    if (kind == CERT_CA) {
        cert_ext(c.x, signer, NID_basic_constraints, "critical,CA:TRUE");
        cert_ext(c.x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else if (kind == CERT_SERVER) {
        cert_ext(c.x, signer, NID_basic_constraints, "critical,CA:FALSE");
        cert_ext(c.x, signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        cert_ext(c.x, signer, NID_ext_key_usage, "serverAuth");
    }
    ASSERT(X509_sign(c.x, issuer ? issuer->key : c.key, EVP_sha256()) > 0);
    return c;
}

static struct cert cert_named(const char *cn, int cn_len, enum cert_kind kind, const struct cert *issuer)
{
    struct rdn r = {"CN", cn, cn_len};
    return cert_make(&r, 1, kind, issuer, 0, 86400);
}

static void cert_free(struct cert *c)
{
    X509_free(c->x);
    EVP_PKEY_free(c->key);
}

/* What a memory BIO holds, as a string (free() it); the BIO is freed. */
static char *bio_text(BIO *b)
{
    char *data;
    long len = BIO_get_mem_data(b, &data);
    char *text = strndup(data, (size_t)len);
    BIO_free(b);
    ASSERT(text != NULL);
    return text;
}

/* PEM text of a certificate; free() it. */
static char *cert_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    ASSERT(b != NULL && PEM_write_bio_X509(b, x) == 1);
    return bio_text(b);
}

static void cert_fingerprint(X509 *x, uint8_t out[OVPN_FINGERPRINT_LEN])
{
    unsigned len = 0;
    ASSERT_EQ(X509_digest(x, EVP_sha256(), out, &len), 1);
    ASSERT_EQ(len, OVPN_FINGERPRINT_LEN);
}

/* ---- a handshake over memory ---- */

/* Our client (set up from cfg) against an OpenSSL server with cert. 1 when the handshake
 * completed and the server was accepted, else what ovpn_tls_ctx_new / ovpn_tls_handshake
 * returned, with the reason in why. */
static int handshake(const struct ovpn_config *cfg, const struct cert *server, char *why, size_t cap)
{
    struct ovpn_tls_ctx *ctx;
    struct ovpn_tls *t;
    why[0] = '\0';
    int rc = ovpn_tls_ctx_new(&ctx, cfg, why, cap);
    if (rc < 0)
        return rc;
    ASSERT_EQ(ovpn_tls_new(&t, ctx), 0);

    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    ASSERT(sctx != NULL);
    ASSERT_EQ(SSL_CTX_use_certificate(sctx, server->x), 1);
    ASSERT_EQ(SSL_CTX_use_PrivateKey(sctx, server->key), 1);
    SSL *s = SSL_new(sctx);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    ASSERT(s != NULL && in != NULL && out != NULL);
    BIO_set_mem_eof_return(in, -1);
    SSL_set_bio(s, in, out);
    SSL_set_accept_state(s);

    uint8_t buf[16384];
    rc = 0;
    for (int round = 0; round < 20 && rc == 0; round++) {
        rc = ovpn_tls_handshake(t);
        size_t n;
        while ((n = ovpn_tls_take_output(t, buf, sizeof(buf))) > 0)
            ASSERT_EQ(BIO_write(in, buf, (int)n), (int)n);
        SSL_do_handshake(s);
        int m;
        while ((m = BIO_read(out, buf, sizeof(buf))) > 0)
            ASSERT_EQ(ovpn_tls_feed(t, buf, (size_t)m), 0);
    }
    ASSERT(rc != 0);
    if (rc < 0) {
        snprintf(why, cap, "%s", ovpn_tls_error(t));
        ASSERT_EQ(ovpn_tls_handshake(t), rc); /* a refusal stays a refusal */
    }
    SSL_free(s);
    SSL_CTX_free(sctx);
    ovpn_tls_free(t);
    ovpn_tls_ctx_free(ctx);
    return rc;
}

/* ---- verify-x509-name ---- */

TEST_IMPL(ovpn_tls_verify_x509_name)
{
    static const char nul_cn[] = "vpn.example.com\0.attacker.example";
    static const char long_cn[] = "vpn.example.com-0123456789012345678901234567890123456789012345678";
    static const struct {
        struct rdn rdns[3];
        size_t n;
        enum ovpn_x509_name_type type;
        const char *want;
        const char *error; /* NULL: accepted; else a part of the reason */
    } rows[] = {
        {{{"CN", "vpn.example.com", -1}}, 1, OVPN_X509_NAME_CN, "vpn.example.com", NULL},
        {{{"CN", "vpn.example.com", -1}}, 1, OVPN_X509_NAME_CN, "vpn.example.org",
         "server certificate name 'vpn.example.com' does not match verify-x509-name 'vpn.example.org'"},
        /* The NUL byte: C strings would end there and make these equal. */
        {{{"CN", nul_cn, sizeof(nul_cn) - 1}}, 1, OVPN_X509_NAME_CN, "vpn.example.com",
         "server certificate common name 'vpn.example.com\\x00.attacker.example' contains a NUL byte"},
        {{{"CN", nul_cn, sizeof(nul_cn) - 1}}, 1, OVPN_X509_NAME_CN_PREFIX, "vpn.example.com",
         "contains a NUL byte"},
        {{{"CN", nul_cn, sizeof(nul_cn) - 1}}, 1, OVPN_X509_NAME_SUBJECT, "CN=vpn.example.com",
         "does not match verify-x509-name 'CN=vpn.example.com'"},
        /* name is the whole name; name-prefix its start (and so a longer name passes it). */
        {{{"CN", "vpn.example.com.attacker.example", -1}}, 1, OVPN_X509_NAME_CN, "vpn.example.com",
         "does not match verify-x509-name"},
        {{{"CN", "vpn.example.com.attacker.example", -1}}, 1, OVPN_X509_NAME_CN_PREFIX, "vpn.example.com", NULL},
        {{{"CN", "vpn-2", -1}}, 1, OVPN_X509_NAME_CN_PREFIX, "vpn-1", "(name-prefix)"},
        /* The last CN is the one compared, as OpenVPN does. */
        {{{"CN", "vpn.example.com", -1}, {"CN", "other", -1}}, 2, OVPN_X509_NAME_CN, "vpn.example.com",
         "server certificate name 'other' does not match"},
        {{{"CN", "other", -1}, {"CN", "vpn.example.com", -1}}, 2, OVPN_X509_NAME_CN, "vpn.example.com", NULL},
        {{{"CN", "other", -1}, {"CN", "vpn.example.com", -1}}, 2, OVPN_X509_NAME_CN, "other",
         "server certificate name 'vpn.example.com' does not match"},
        /* subject: OpenVPN's format, the whole of it. */
        {{{"C", "DE", -1}, {"O", "Org", -1}, {"CN", "vpn.example.com", -1}}, 3, OVPN_X509_NAME_SUBJECT,
         "C=DE, O=Org, CN=vpn.example.com", NULL},
        {{{"C", "DE", -1}, {"O", "Org", -1}, {"CN", "vpn.example.com", -1}}, 3, OVPN_X509_NAME_SUBJECT,
         "CN=vpn.example.com", "server certificate subject 'C=DE, O=Org, CN=vpn.example.com' does not match"},
        /* OpenVPN compares with control characters turned into '_'; the error shows the byte. */
        {{{"CN", "vpn\001x", -1}}, 1, OVPN_X509_NAME_CN, "vpn_x", NULL},
        {{{"CN", "vpn\001x", -1}}, 1, OVPN_X509_NAME_CN, "vpn\001x", "name 'vpn\\x01x' does not match"},
        /* No CN, or one longer than OpenVPN can hold (64 bytes). */
        {{{"O", "Org", -1}}, 1, OVPN_X509_NAME_CN, "vpn.example.com", "server certificate has no common name"},
        {{{"CN", long_cn, -1}}, 1, OVPN_X509_NAME_CN_PREFIX, "vpn.example.com", "is longer than 64 bytes"},
    };
    struct rdn ca_rdn = {"CN", "test CA", -1};
    struct cert ca = cert_make(&ca_rdn, 1, CERT_CA, NULL, 0, 86400);
    char *ca_pem = cert_pem(ca.x);
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct cert server = cert_make(rows[i].rdns, rows[i].n, CERT_SERVER, &ca, 0, 86400);
        char want[128];
        snprintf(want, sizeof(want), "%s", rows[i].want);
        struct ovpn_config cfg = {.ca = ca_pem, .remote_cert_tls_server = 1, .verify_x509_name = want,
                                  .verify_x509_type = rows[i].type};
        char why[512];
        int rc = handshake(&cfg, &server, why, sizeof(why));
        if (rows[i].error == NULL)
            ASSERT_ROW(rc == 1, "%zu: %s", i, why);
        else
            ASSERT_ROW(rc == -EACCES && strstr(why, rows[i].error) != NULL, "%zu: %d %s", i, rc, why);
        cert_free(&server);
    }
    free(ca_pem);
    cert_free(&ca);
    return 0;
}

/* ---- peer-fingerprint ---- */

TEST_IMPL(ovpn_tls_peer_fingerprint)
{
    struct cert ca = cert_named("test CA", -1, CERT_CA, NULL);
    struct cert other_ca = cert_named("other CA", -1, CERT_CA, NULL);
    struct cert signed_server = cert_named("vpn.example.com", -1, CERT_SERVER, &ca);
    /* What OpenVPN's quick setup makes: `openssl req -x509`, no extensions. */
    struct cert self = cert_named("server", -1, CERT_PLAIN, NULL);
    struct rdn r = {"CN", "server", -1};
    struct cert self_expired = cert_make(&r, 1, CERT_PLAIN, NULL, -2 * 86400, -86400);
    char *ca_pem = cert_pem(ca.x), *other_pem = cert_pem(other_ca.x);
    uint8_t fps[3][OVPN_FINGERPRINT_LEN];
    memset(fps[0], 0x5A, OVPN_FINGERPRINT_LEN); /* someone else's */
    cert_fingerprint(self.x, fps[1]);
    cert_fingerprint(signed_server.x, fps[2]);
    char why[512];

    /* No ca: the fingerprint alone, one of several, vouches for a self-signed server. */
    struct ovpn_config cfg = {.peer_fingerprints = fps, .n_peer_fingerprints = 2};
    ASSERT_EQ(handshake(&cfg, &self, why, sizeof(why)), 1);
    /* ... the validity period included, as OpenVPN: the pinned certificate replaces the PKI. */
    uint8_t expired_fp[1][OVPN_FINGERPRINT_LEN];
    cert_fingerprint(self_expired.x, expired_fp[0]);
    struct ovpn_config cfg_expired = {.peer_fingerprints = expired_fp, .n_peer_fingerprints = 1};
    ASSERT_EQ(handshake(&cfg_expired, &self_expired, why, sizeof(why)), 1);
    /* A CA-signed server pinned without the CA. */
    struct ovpn_config cfg_signed = {.peer_fingerprints = &fps[2], .n_peer_fingerprints = 1};
    ASSERT_EQ(handshake(&cfg_signed, &signed_server, why, sizeof(why)), 1);

    /* A fingerprint not in the list: refused, and the error shows the server's. */
    struct ovpn_config cfg_wrong = {.peer_fingerprints = fps, .n_peer_fingerprints = 1};
    ASSERT_EQ(handshake(&cfg_wrong, &self, why, sizeof(why)), -EACCES);
    char hex[3 * OVPN_FINGERPRINT_LEN + 1] = "";
    for (size_t i = 0; i < OVPN_FINGERPRINT_LEN; i++)
        snprintf(hex + 3 * i, 4, "%02X%s", fps[1][i], i + 1 < OVPN_FINGERPRINT_LEN ? ":" : "");
    char want[256];
    snprintf(want, sizeof(want), "server certificate SHA-256 fingerprint %s is not one of the config's peer-fingerprint",
             hex);
    ASSERT_STR_EQ(why, want);
    ASSERT_EQ(handshake(&cfg_wrong, &signed_server, why, sizeof(why)), -EACCES);

    /* With ca, both: the chain and the fingerprint. */
    struct ovpn_config cfg_both = {.ca = ca_pem, .peer_fingerprints = &fps[2], .n_peer_fingerprints = 1};
    ASSERT_EQ(handshake(&cfg_both, &signed_server, why, sizeof(why)), 1);
    cfg_both.ca = other_pem;
    ASSERT_EQ(handshake(&cfg_both, &signed_server, why, sizeof(why)), -EACCES);
    ASSERT(strstr(why, "server certificate verify failed") != NULL);
    cfg_both.ca = ca_pem;
    cfg_both.peer_fingerprints = fps;
    ASSERT_EQ(handshake(&cfg_both, &signed_server, why, sizeof(why)), -EACCES);
    ASSERT(strstr(why, "is not one of the config's peer-fingerprint") != NULL);
    /* A pinned self-signed server with a ca given: the chain still has to verify. */
    cfg_both.peer_fingerprints = &fps[1];
    ASSERT_EQ(handshake(&cfg_both, &self, why, sizeof(why)), -EACCES);
    ASSERT(strstr(why, "server certificate verify failed") != NULL);

    /* The other checks still apply without ca. */
    struct ovpn_config cfg_eku = {.peer_fingerprints = fps, .n_peer_fingerprints = 2, .remote_cert_tls_server = 1};
    ASSERT_EQ(handshake(&cfg_eku, &self, why, sizeof(why)), -EACCES);
    ASSERT(strstr(why, "lacks the TLS Web Server Authentication usage") != NULL);
    char name[] = "someone-else";
    struct ovpn_config cfg_name = {.peer_fingerprints = fps, .n_peer_fingerprints = 2, .verify_x509_name = name,
                                   .verify_x509_type = OVPN_X509_NAME_CN};
    ASSERT_EQ(handshake(&cfg_name, &self, why, sizeof(why)), -EACCES);
    ASSERT(strstr(why, "does not match verify-x509-name 'someone-else'") != NULL);

    /* Neither ca nor peer-fingerprint: nothing could verify the server. */
    struct ovpn_config none = {0};
    ASSERT_EQ(handshake(&none, &self, why, sizeof(why)), -EINVAL);
    ASSERT(strstr(why, "neither ca nor peer-fingerprint") != NULL);
    /* A ca alone does not let a self-signed server in. */
    struct ovpn_config ca_only = {.ca = ca_pem};
    ASSERT_EQ(handshake(&ca_only, &self, why, sizeof(why)), -EACCES);
    ASSERT(strstr(why, "server certificate verify failed") != NULL);

    free(ca_pem);
    free(other_pem);
    cert_free(&ca);
    cert_free(&other_ca);
    cert_free(&signed_server);
    cert_free(&self);
    cert_free(&self_expired);
    return 0;
}

/* ---- the warning when nothing checks who the server is ---- */

/* What ovpn_tls_ctx_new wrote to stderr for cfg. */
static void ctx_new_stderr(const struct ovpn_config *cfg, char *out, size_t cap)
{
    char path[] = "/tmp/v2s-unit-XXXXXX", err[256];
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    ASSERT(saved >= 0 && dup2(fd, STDERR_FILENO) >= 0);
    struct ovpn_tls_ctx *ctx = NULL;
    int rc = ovpn_tls_ctx_new(&ctx, cfg, err, sizeof(err));
    fflush(stderr);
    ASSERT(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    ASSERT_EQ(rc, 0);
    ovpn_tls_ctx_free(ctx);
    ssize_t n = pread(fd, out, cap - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
}

TEST_IMPL(ovpn_tls_identity_warning)
{
    struct cert ca = cert_named("test CA", -1, CERT_CA, NULL);
    char *ca_pem = cert_pem(ca.x);
    uint8_t fp[1][OVPN_FINGERPRINT_LEN] = {{1}};
    char name[] = "vpn.example.com", log[2048];

    struct ovpn_config bare = {.ca = ca_pem};
    ctx_new_stderr(&bare, log, sizeof(log));
    ASSERT(strstr(log, "vpn2socks warn: openvpn: WARNING: the server's identity is not checked") != NULL);
    ASSERT(strstr(log, "add 'remote-cert-tls server' or 'verify-x509-name NAME name'") != NULL);

    struct ovpn_config checked[] = {
        {.ca = ca_pem, .remote_cert_tls_server = 1},
        {.ca = ca_pem, .verify_x509_name = name, .verify_x509_type = OVPN_X509_NAME_CN},
        {.ca = ca_pem, .peer_fingerprints = fp, .n_peer_fingerprints = 1},
        {.peer_fingerprints = fp, .n_peer_fingerprints = 1},
    };
    for (size_t i = 0; i < ARRAY_SIZE(checked); i++) {
        ctx_new_stderr(&checked[i], log, sizeof(log));
        ASSERT_ROW(strstr(log, "identity") == NULL, "%zu: %s", i, log);
    }
    free(ca_pem);
    cert_free(&ca);
    return 0;
}

/* PEM text of a private key; free() it. */
static char *key_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    ASSERT(b != NULL && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1);
    return bio_text(b);
}

/* A ca, cert or key OpenSSL refuses is named by where the loader found it (the file and the line
 * naming it, or the inline block): a key of another certificate said only "key: does not match
 * the certificate in cert", naming neither file. Parsed configs carry no origin: the option. */
TEST_IMPL(ovpn_tls_credentials_named)
{
    struct cert ca = cert_named("test CA", -1, CERT_CA, NULL);
    struct cert client = cert_named("client", -1, CERT_PLAIN, &ca);
    struct cert other = cert_named("other", -1, CERT_PLAIN, &ca);
    char *ca_text = cert_pem(ca.x), *cert_text = cert_pem(client.x);
    char *key_text = key_pem(client.key), *other_key = key_pem(other.key);
    char ca_from[] = "ca 'ca.crt' (line 3, /vpn/ca.crt)";
    char cert_from[] = "cert 'c.crt' (line 4, /vpn/c.crt)";
    char key_from[] = "<key> (line 9)";
    char garbage[] = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
    struct {
        struct ovpn_config cfg;
        const char *why;
    } rows[] = {
        {{.ca = ca_text, .cert = cert_text, .key = other_key, .ca_origin = ca_from,
          .cert_origin = cert_from, .key_origin = key_from},
         "<key> (line 9): does not match the certificate of cert 'c.crt' (line 4, /vpn/c.crt)"},
        {{.ca = ca_text, .cert = cert_text, .key = other_key},
         "key: does not match the certificate of cert"},
        {{.ca = garbage, .ca_origin = ca_from},
         "ca 'ca.crt' (line 3, /vpn/ca.crt): no certificate found; the server's certificate is "
         "always verified"},
        {{.ca = ca_text, .cert = garbage, .key = key_text, .cert_origin = cert_from},
         "cert 'c.crt' (line 4, /vpn/c.crt): not a PEM certificate"},
        {{.ca = ca_text, .cert = cert_text, .key = garbage, .key_origin = key_from},
         "<key> (line 9): not a PEM private key (or protected by a passphrase, which is not "
         "supported)"},
    };
    char why[512];
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct ovpn_tls_ctx *ctx = NULL;
        why[0] = '\0';
        int rc = ovpn_tls_ctx_new(&ctx, &rows[i].cfg, why, sizeof(why));
        ASSERT_ROW(rc < 0, "%zu: accepted", i);
        ASSERT_ROW(strcmp(why, rows[i].why) == 0, "%zu: %s", i, why);
    }
    /* The right key loads. */
    struct ovpn_tls_ctx *ctx = NULL;
    struct ovpn_config good = {.ca = ca_text, .cert = cert_text, .key = key_text,
                               .remote_cert_tls_server = 1};
    ASSERT_EQ(ovpn_tls_ctx_new(&ctx, &good, why, sizeof(why)), 0);
    ovpn_tls_ctx_free(ctx);
    free(ca_text);
    free(cert_text);
    free(key_text);
    free(other_key);
    cert_free(&other);
    cert_free(&client);
    cert_free(&ca);
    return 0;
}

/* PEM text of a CRL from ca revoking revoked (NULL: none), its next update next_s from now;
 * free() it. */
static char *crl_pem(const struct cert *ca, X509 *revoked, long next_s)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t = ASN1_TIME_adj(NULL, time(NULL), 0, -60);
    ASSERT(crl != NULL && t != NULL);
    ASSERT_EQ(X509_CRL_set_version(crl, 1), 1);
    ASSERT_EQ(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->x)), 1);
    ASSERT_EQ(X509_CRL_set1_lastUpdate(crl, t), 1);
    if (revoked != NULL) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASSERT(r != NULL);
        ASN1_INTEGER *serial = (ASN1_INTEGER *)X509_get0_serialNumber(revoked);
        ASSERT_EQ(X509_REVOKED_set_serialNumber(r, serial), 1);
        ASSERT_EQ(X509_REVOKED_set_revocationDate(r, t), 1);
        ASSERT_EQ(X509_CRL_add0_revoked(crl, r), 1);
    }
    ASSERT(ASN1_TIME_adj(t, time(NULL), 0, next_s) != NULL);
    ASSERT_EQ(X509_CRL_set1_nextUpdate(crl, t), 1);
    ASSERT_EQ(X509_CRL_sort(crl), 1);
    ASSERT(X509_CRL_sign(crl, ca->key, EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    ASSERT(b != NULL && PEM_write_bio_X509_CRL(b, crl) == 1);
    char *pem = bio_text(b);
    ASN1_TIME_free(t);
    X509_CRL_free(crl);
    return pem;
}

/* crl-verify, as OpenVPN 2.6 applies it: a server whose certificate the CA revoked is refused; one
 * it did not revoke passes; a CRL past its next update fails the chain, as there. It was refused
 * at load ("crl-verify is not supported"), so profiles that carry one (PIA's) did not run. */
TEST_IMPL(ovpn_tls_crl_verify)
{
    struct cert ca = cert_named("test CA", -1, CERT_CA, NULL);
    struct cert server = cert_named("vpn.example.com", -1, CERT_SERVER, &ca);
    struct cert other = cert_named("old.example.com", -1, CERT_SERVER, &ca);
    char *ca_text = cert_pem(ca.x);
    char *revoking = crl_pem(&ca, server.x, 86400), *other_only = crl_pem(&ca, other.x, 86400);
    char *stale = crl_pem(&ca, NULL, -30), *empty = crl_pem(&ca, NULL, 86400);
    char origin[] = "<crl-verify> (line 20)", not_crl[] = "-----BEGIN X509 CRL-----\nx\n";
    struct {
        char *crl;
        const char *why; /* NULL: accepted */
    } rows[] = {
        {NULL, NULL},
        {empty, NULL},
        {other_only, NULL},
        {revoking, "server certificate verify failed: certificate revoked"},
        {stale, "server certificate verify failed: CRL has expired"},
    };
    char why[512];
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct ovpn_config cfg = {.ca = ca_text, .remote_cert_tls_server = 1, .crl = rows[i].crl};
        int rc = handshake(&cfg, &server, why, sizeof(why));
        if (rows[i].why == NULL)
            ASSERT_ROW(rc == 1, "%zu: %d %s", i, rc, why);
        else
            ASSERT_ROW(rc < 0 && strstr(why, rows[i].why) != NULL, "%zu: %d %s", i, rc, why);
    }
    struct ovpn_config bad = {.ca = ca_text, .crl = not_crl, .crl_origin = origin};
    ASSERT(handshake(&bad, &server, why, sizeof(why)) < 0);
    ASSERT_STR_EQ(why, "<crl-verify> (line 20): no CRL found");
    free(ca_text);
    free(revoking);
    free(other_only);
    free(stale);
    free(empty);
    cert_free(&other);
    cert_free(&server);
    cert_free(&ca);
    return 0;
}
