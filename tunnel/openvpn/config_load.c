/* The loader: reads a .ovpn file, feeds it to the parser, then reads the files it names and the
 * --auth-user-pass file. The one part of the config code that touches the file system, and the
 * one that logs: the parser's warnings are written to the log here, as they are met, with the
 * text the parser gives ("NAME:LINE: what").
 *
 * What it guarantees:
 * - Relative names resolve against the config file's folder, or its "cd" folder (as OpenVPN,
 *   which changes into it); the --auth-user-pass file of the command line against the working
 *   directory, and it wins over the config's own auth-user-pass file, which then need not exist.
 * - Each file is read whole through one descriptor, at most 1 MiB (the config itself 8 MiB), a
 *   pipe such as <(...) as well as a regular file; a NUL byte means it is not a text file. Errors
 *   name the option, the name as written, the path tried and the line.
 * - Secrets (a private key, a tls-auth or tls-crypt key, a password, or the config itself when an
 *   inline block holds one) in a regular file others can read or write, or its group can read
 *   unless root owns it, are refused with -EPERM and the fix (chmod 600), as ssh refuses an
 *   exposed private key, unless OVPN_CONFIG_ALLOW_READABLE_SECRETS makes that a warning. The mode
 *   checked is the one fstat() gives for the descriptor read, not a name looked up again.
 * - Every buffer that held a file is wiped before it is freed; the config is handed over whole
 *   or not at all.
 * - The config's digest covers the bytes of every file read (the config, the files it names, the
 *   --auth-user-pass file), so that two loads with the same digest read the same things. */
#include "tunnel/openvpn/config_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "base/errmsg.h"
#include "base/log.h"
#include "base/secret_file.h"

/* A service name's port for the remote's socket type, read as OpenVPN's getaddrinfo() reads it
 * (no host: only the services database is consulted, no DNS). */
static int config_service_port(const char *name, enum ovpn_proto proto, unsigned *port)
{
    struct addrinfo hints = {
        .ai_family = AF_INET,
        .ai_socktype = proto == OVPN_PROTO_TCP ? SOCK_STREAM : SOCK_DGRAM,
        .ai_flags = AI_PASSIVE,
    };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(NULL, name, &hints, &res);
    if (rc == EAI_MEMORY)
        return -ENOMEM;
    if (rc != 0 || res == NULL || res->ai_family != AF_INET)
        rc = -ENOENT;
    else
        *port = ntohs(((const struct sockaddr_in *)(const void *)res->ai_addr)->sin_port);
    if (res != NULL)
        freeaddrinfo(res);
    return rc < 0 ? rc : 0;
}

/* The parser's warnings, logged as they are met. */
static void config_log_warning(void *arg, const char *text)
{
    (void)arg;
    v2s_warn("%s", text);
}

/* The secret-file rule (base/secret_file.c), with OVPN_CONFIG_ALLOW_READABLE_SECRETS for
 * --allow-readable-secrets. */
static int config_check_secret(const char *path, const struct stat *st, const char *what, unsigned flags,
                               char *err, size_t errcap)
{
    return v2s_secret_check(path, st, what, (flags & OVPN_CONFIG_ALLOW_READABLE_SECRETS) != 0, err, errcap);
}

static const char *config_read_error(int rc)
{
    if (rc == -EFBIG)
        return "larger than 1 MiB";
    return strerror(-rc);
}

/* dir/rel, or rel when it is absolute. */
static char *config_join(const char *dir, const char *rel)
{
    if (rel[0] == '/' || dir == NULL || dir[0] == '\0')
        return strdup(rel);
    size_t dl = strlen(dir), rl = strlen(rel);
    char *out = malloc(dl + 1 + rl + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, dir, dl);
    out[dl] = '/';
    memcpy(out + dl + 1, rel, rl + 1);
    return out;
}

/* The folder relative names resolve against: the config's own, or its "cd" folder. */
static char *config_base_dir(const char *config_path, const char *cd)
{
    const char *slash = strrchr(config_path, '/');
    char *dir;
    if (slash == NULL)
        dir = strdup(".");
    else /* "/x.ovpn" lives in "/" */
        dir = strndup(config_path, slash == config_path ? 1 : (size_t)(slash - config_path));
    if (dir == NULL || cd == NULL)
        return dir;
    char *joined = config_join(dir, cd);
    free(dir);
    return joined;
}

/* What each file a config names holds, for the permission check; NULL: nothing secret. */
static const char *const config_ref_secrets[CONFIG_REF_COUNT] = {
    [CONFIG_REF_KEY] = "a private key",
    [CONFIG_REF_TLS_AUTH] = "a tls-auth key",
    [CONFIG_REF_TLS_CRYPT] = "a tls-crypt key",
    [CONFIG_REF_TLS_CRYPT_V2] = "a tls-crypt-v2 key",
    [CONFIG_REF_AUTH_USER_PASS] = "a password",
};

/* Records where the credentials came from, for auth-nocache. */
static int config_set_auth_file(struct ovpn_config *cfg, const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return -ENOMEM;
    free(cfg->auth_file);
    cfg->auth_file = copy;
    return 0;
}

/* One file read, into the config's digest: its role (a config_ref, or CONFIG_REF_COUNT for the
 * config itself) and length go first, so that bytes moved from one file to another change it. */
static int config_digest_add(EVP_MD_CTX *md, int role, const char *text, size_t len)
{
    uint64_t head[2] = {(uint64_t)role, (uint64_t)len};
    if (md == NULL)
        return 0;
    if (EVP_DigestUpdate(md, head, sizeof(head)) != 1 || EVP_DigestUpdate(md, text, len) != 1)
        return -ENOMEM;
    return 0;
}

/* Reads one named file into the field its option fills, and into md. */
static int config_load_ref(struct ovpn_config_parser *p, struct ovpn_config *cfg, enum config_ref ref,
                           const char *base, unsigned flags, EVP_MD_CTX *md)
{
    const struct config_file_ref *fr = &p->refs[ref];
    const char *name = ovpn_config_ref_names[ref];
    char shown[CONFIG_SHOWN_MAX];
    char exposed[CONFIG_ERR_MAX];
    char *full = config_join(base, fr->path);
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    int rc;

    if (full == NULL)
        return ovpn_config_nomem(p);
    v2s_shown(fr->path, shown, sizeof(shown));
    rc = v2s_file_read(full, CONFIG_MAX_FILE, &text, &len, &st);
    if (rc < 0) {
        ovpn_config_fail_at(p, fr->line, "%s '%s': cannot read %s: %s", name, shown, full, config_read_error(rc));
        p->error = rc;
        goto out;
    }
    if (config_ref_secrets[ref] != NULL &&
        (rc = config_check_secret(full, &st, config_ref_secrets[ref], flags, exposed, sizeof(exposed))) < 0) {
        ovpn_config_fail_at(p, fr->line, "%s '%s': %s", name, shown, exposed);
        p->error = rc;
        goto out;
    }
    if (strlen(text) != len) {
        rc = ovpn_config_fail_at(p, fr->line, "%s '%s': %s has a NUL byte: not a text file", name, shown, full);
        goto out;
    }
    if ((rc = config_digest_add(md, ref, text, len)) < 0) {
        ovpn_config_nomem(p);
        goto out;
    }
    switch (ref) {
    case CONFIG_REF_CA:
    case CONFIG_REF_CERT:
    case CONFIG_REF_KEY:
    case CONFIG_REF_EXTRA_CERTS:
    case CONFIG_REF_CRL: {
        char **field = ref == CONFIG_REF_CA     ? &cfg->ca
                     : ref == CONFIG_REF_CERT ? &cfg->cert
                     : ref == CONFIG_REF_KEY  ? &cfg->key
                     : ref == CONFIG_REF_CRL  ? &cfg->crl
                                              : &cfg->extra_certs;
        if (len == 0) {
            rc = ovpn_config_fail_at(p, fr->line, "%s '%s': %s is empty", name, shown, full);
            goto out;
        }
        if (!ovpn_config_looks_pem(text)) {
            rc = ovpn_config_fail_at(p, fr->line, "%s '%s': %s is not PEM (no -----BEGIN line)", name, shown, full);
            goto out;
        }
        ovpn_secret_free(field);
        *field = text;
        text = NULL;
        if (ref != CONFIG_REF_EXTRA_CERTS) {
            char **origin = ref == CONFIG_REF_CA     ? &cfg->ca_origin
                          : ref == CONFIG_REF_CERT ? &cfg->cert_origin
                          : ref == CONFIG_REF_CRL  ? &cfg->crl_origin
                                                   : &cfg->key_origin;
            size_t cap = strlen(name) + strlen(shown) + strlen(full) + 32;
            free(*origin);
            if ((*origin = malloc(cap)) == NULL) {
                rc = ovpn_config_nomem(p);
                goto out;
            }
            snprintf(*origin, cap, "%s '%s' (line %u, %s)", name, shown, fr->line, full);
        }
        break;
    }
    case CONFIG_REF_TLS_AUTH:
    case CONFIG_REF_TLS_CRYPT: {
        uint8_t *key = ref == CONFIG_REF_TLS_AUTH ? cfg->tls_auth_key : cfg->tls_crypt_key;
        if (ovpn_static_key_parse(text, key) != 0) {
            rc = ovpn_config_fail_at(p, fr->line,
                                     "%s '%s': %s is not an OpenVPN static key (256 bytes of hex between the "
                                     "BEGIN and END lines)", name, shown, full);
            goto out;
        }
        *(ref == CONFIG_REF_TLS_AUTH ? &cfg->has_tls_auth : &cfg->has_tls_crypt) = 1;
        break;
    }
    case CONFIG_REF_TLS_CRYPT_V2: {
        const char *why;
        if (ovpn_tls_crypt_v2_key_parse(text, &cfg->tls_crypt_v2, &why) != 0) {
            rc = ovpn_config_fail_at(p, fr->line, "%s '%s': %s %s", name, shown, full, why);
            goto out;
        }
        cfg->has_tls_crypt_v2 = 1;
        break;
    }
    case CONFIG_REF_AUTH_USER_PASS: {
        const char *why;
        ovpn_secret_free(&cfg->username);
        ovpn_secret_free(&cfg->password);
        if ((rc = ovpn_user_pass_parse(text, &cfg->username, &cfg->password, &why)) < 0) {
            ovpn_config_fail_at(p, fr->line, "auth-user-pass '%s': %s: %s", shown, full, why);
            p->error = rc;
        } else if ((rc = config_set_auth_file(cfg, full)) < 0) {
            ovpn_config_nomem(p);
        }
        break;
    }
    case CONFIG_REF_COUNT:
        break;
    }
out:
    v2s_file_free(text, len);
    free(full);
    return rc;
}

/* The --auth-user-pass file of the command line: named relative to the working directory, and
 * errors name it rather than the config. Into md as well, when there is one. */
static int config_load_auth_file(struct ovpn_config *cfg, const char *path, unsigned flags, EVP_MD_CTX *md,
                                 char *err, size_t errcap)
{
    char *text = NULL;
    size_t len = 0;
    const char *why = NULL;
    struct stat st;
    int rc = v2s_file_read(path, CONFIG_MAX_FILE, &text, &len, &st);
    if (rc < 0) {
        why = config_read_error(rc);
    } else if ((rc = config_check_secret(path, &st, "a password", flags, err, errcap)) < 0) {
        v2s_file_free(text, len);
        return rc;
    } else if (strlen(text) != len) {
        why = "has a NUL byte: not a text file";
        rc = -EINVAL;
    } else if ((rc = config_digest_add(md, CONFIG_REF_AUTH_USER_PASS, text, len)) < 0) {
        why = "out of memory";
    } else {
        ovpn_secret_free(&cfg->username);
        ovpn_secret_free(&cfg->password);
        rc = ovpn_user_pass_parse(text, &cfg->username, &cfg->password, &why);
        if (rc == 0 && cfg->auth_file != path && (rc = config_set_auth_file(cfg, path)) < 0)
            why = "out of memory";
    }
    if (rc < 0)
        v2s_fail(err, errcap, "%s: %s", path, why);
    v2s_file_free(text, len);
    return rc;
}

int ovpn_config_reload_password(struct ovpn_config *cfg, char *err, size_t errcap)
{
    if (cfg->auth_file == NULL) {
        v2s_fail(err, errcap, "auth-user-pass: the credentials were inline; there is no file to read again");
        return -ENOENT;
    }
    return config_load_auth_file(cfg, cfg->auth_file, cfg->load_flags, NULL, err, errcap);
}

/* The secret a config holds in its own text (an inline block), or NULL. */
static const char *config_inline_secret(const struct ovpn_config_parser *p, const struct ovpn_config *cfg)
{
    if (cfg->key != NULL && p->refs[CONFIG_REF_KEY].path == NULL)
        return "a private key (<key>)";
    if (cfg->has_tls_crypt && p->refs[CONFIG_REF_TLS_CRYPT].path == NULL)
        return "a tls-crypt key (<tls-crypt>)";
    if (cfg->has_tls_crypt_v2 && p->refs[CONFIG_REF_TLS_CRYPT_V2].path == NULL)
        return "a tls-crypt-v2 key (<tls-crypt-v2>)";
    if (cfg->has_tls_auth && p->refs[CONFIG_REF_TLS_AUTH].path == NULL)
        return "a tls-auth key (<tls-auth>)";
    if (cfg->password != NULL && p->refs[CONFIG_REF_AUTH_USER_PASS].path == NULL)
        return "a password (<auth-user-pass>)";
    return NULL;
}

int ovpn_config_load(struct ovpn_config *cfg, const char *path, const char *auth_user_pass_file, char *err,
                     size_t errcap)
{
    return ovpn_config_load_flags(cfg, path, auth_user_pass_file, 0, err, errcap);
}

int ovpn_config_load_flags(struct ovpn_config *cfg, const char *path, const char *auth_user_pass_file,
                           unsigned flags, char *err, size_t errcap)
{
    struct ovpn_config_parser *p = NULL;
    struct ovpn_config got;
    char *text = NULL, *base = NULL;
    const char *secret;
    size_t len = 0;
    struct stat st;
    EVP_MD_CTX *md = NULL;
    int rc;

    ovpn_config_defaults(cfg);
    ovpn_config_defaults(&got);
    if ((rc = v2s_file_read(path, CONFIG_MAX_CONFIG, &text, &len, &st)) < 0) {
        v2s_fail(err, errcap, "%s: %s", path, rc == -EFBIG ? "larger than 8 MiB" : strerror(-rc));
        return rc;
    }
    if ((md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        config_digest_add(md, CONFIG_REF_COUNT, text, len) < 0) {
        v2s_fail(err, errcap, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = ovpn_config_parser_new(&p, path)) < 0) {
        v2s_fail(err, errcap, "out of memory");
        goto out;
    }
    ovpn_config_parser_set_warn(p, config_log_warning, NULL);
    p->service_port = config_service_port;
    if ((rc = ovpn_config_parser_feed(p, text, len, NULL, 0)) < 0 || (rc = ovpn_config_finish(p, &got)) < 0)
        goto fail;
    if ((secret = config_inline_secret(p, &got)) != NULL &&
        (rc = config_check_secret(path, &st, secret, flags, err, errcap)) < 0)
        goto out;
    if ((base = config_base_dir(path, p->cd)) == NULL) {
        rc = ovpn_config_nomem(p);
        goto fail;
    }
    for (int ref = 0; ref < CONFIG_REF_COUNT; ref++) {
        if (p->refs[ref].path == NULL)
            continue;
        if (ref == CONFIG_REF_AUTH_USER_PASS && auth_user_pass_file != NULL)
            continue; /* the command line's file wins; the config's need not exist */
        if ((rc = config_load_ref(p, &got, (enum config_ref)ref, base, flags, md)) < 0)
            goto fail;
    }
    if (auth_user_pass_file != NULL) {
        if ((rc = config_load_auth_file(&got, auth_user_pass_file, flags, md, err, errcap)) < 0)
            goto out;
        got.auth_user_pass = 1;
    }
    if (EVP_DigestFinal_ex(md, got.digest, NULL) != 1) {
        v2s_fail(err, errcap, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    got.load_flags = flags;
    *cfg = got;
    ovpn_config_defaults(&got);
    rc = 0;
    goto out;
fail:
    v2s_fail(err, errcap, "%s", p->err);
out:
    EVP_MD_CTX_free(md);
    ovpn_config_free(&got);
    ovpn_config_parser_free(p);
    v2s_file_free(text, len);
    free(base);
    return rc;
}
