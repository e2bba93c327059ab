/* The .ovpn push parser's core: its life cycle (new, feed via config_framing.c, finish, free),
 * the checks that need the whole file, and the helpers every option uses to read a value and to
 * record an error or a warning.
 *
 * What it guarantees:
 * - No I/O and no logging. Errors are one line, "NAME:LINE: why" (line 0: "NAME: why"), sticky:
 *   once one is recorded every later call returns it. Warnings go to the function the caller gave
 *   (ovpn_config_parser_set_warn) with the same "NAME:LINE: what" text, or nowhere; the loader
 *   (config_load.c) is the one that logs them, so the user's log reads as before the split.
 * - Values are checked where they are read: numbers are decimal digits in a stated range, times
 *   at most CONFIG_MAX_SECONDS (the client keeps milliseconds in 32 bits), names fit their field.
 * - A value from the file is shown in a message only shortened and escaped (v2s_shown).
 * - finish hands the config over whole or not at all; the parser keeps no pointer into it, and
 *   every secret the parser held (the partial line, an inline block) is wiped when freed.
 *
 * How OpenVPN 2.6 reads a file, and how we differ, is said where each part is done:
 * config_framing.c (lines, inline blocks, <connection>), config_options.c (the table, unknown
 * options, setenv), config_opt_net.c and config_opt_tls.c (the options themselves), words.c (the
 * splitter), keyfile.c (static keys, credentials) and config_load.c (files, folders, modes). */
#include "tunnel/openvpn/config_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errmsg.h"

const char *const ovpn_config_ref_names[CONFIG_REF_COUNT] = {
    "ca", "cert", "key", "extra-certs", "tls-auth", "tls-crypt", "auth-user-pass", "crl-verify",
    "tls-crypt-v2",
};

/* ---- errors and warnings ---- */

int ovpn_config_fail_at(struct ovpn_config_parser *p, unsigned line, const char *fmt, ...)
{
    int n = line > 0 ? snprintf(p->err, sizeof(p->err), "%s:%u: ", p->name, line)
                     : snprintf(p->err, sizeof(p->err), "%s: ", p->name);
    if (n >= 0 && (size_t)n < sizeof(p->err)) {
        va_list ap;
        va_start(ap, fmt);
        v2s_vfail(p->err + n, sizeof(p->err) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    p->error = -EINVAL;
    return -EINVAL;
}

int ovpn_config_nomem(struct ovpn_config_parser *p)
{
    snprintf(p->err, sizeof(p->err), "%s: out of memory", p->name);
    p->error = -ENOMEM;
    return -ENOMEM;
}

void ovpn_config_warn(struct ovpn_config_parser *p, unsigned line, const char *fmt, ...)
{
    char text[1024]; /* as long as a log line */
    if (p->warn == NULL)
        return;
    int n = snprintf(text, sizeof(text), "%s:%u: ", p->name, line);
    if (n >= 0 && (size_t)n < sizeof(text)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    p->warn(p->warn_arg, text);
}

void ovpn_config_parser_set_warn(struct ovpn_config_parser *p, ovpn_config_warn_fn fn, void *arg)
{
    p->warn = fn;
    p->warn_arg = arg;
}

/* ---- values ---- */

int ovpn_config_number(struct ovpn_config_parser *p, const char *option, const char *text,
                       unsigned long min, unsigned long max, unsigned *out)
{
    unsigned long v;
    char shown[CONFIG_SHOWN_MAX];
    if (v2s_parse_uint(text, max, &v) != 0 || v < min)
        return config_fail(p, "%s: '%s' is not a number in %lu..%lu", option, v2s_shown(text, shown, sizeof(shown)),
                           min, max);
    *out = (unsigned)v;
    return 0;
}

int ovpn_config_seconds(struct ovpn_config_parser *p, const char *option, const char *text, unsigned long min,
                        unsigned *out)
{
    unsigned long v;
    char shown[CONFIG_SHOWN_MAX];
    if (v2s_parse_uint(text, 999999999UL, &v) == 0 && v > CONFIG_MAX_SECONDS)
        return config_fail(p, "%s: %lu seconds is more than %d (49 days), the longest time a timer here can hold",
                           option, v, CONFIG_MAX_SECONDS);
    if (v2s_parse_uint(text, CONFIG_MAX_SECONDS, &v) != 0 || v < min)
        return config_fail(p, "%s: '%s' is not a number of seconds in %lu..%d", option,
                           v2s_shown(text, shown, sizeof(shown)), min, CONFIG_MAX_SECONDS);
    *out = (unsigned)v;
    return 0;
}

int ovpn_config_number64(struct ovpn_config_parser *p, const char *option, const char *text, uint64_t *out)
{
    char shown[CONFIG_SHOWN_MAX];
    size_t n = strlen(text);
    uint64_t v = 0;
    if (n == 0 || n > 18)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9')
            goto bad;
        v = v * 10 + (uint64_t)(text[i] - '0');
    }
    *out = v;
    return 0;
bad:
    return config_fail(p, "%s: '%s' is not a number in 0..999999999999999999", option,
                       v2s_shown(text, shown, sizeof(shown)));
}

int ovpn_config_copy_name(struct ovpn_config_parser *p, char *dst, size_t cap, char **w)
{
    size_t len = strlen(w[1]);
    char shown[CONFIG_SHOWN_MAX];
    if (len == 0 || len >= cap)
        return config_fail(p, "%s: '%s' is empty or longer than %zu characters", w[0],
                           v2s_shown(w[1], shown, sizeof(shown)), cap - 1);
    memcpy(dst, w[1], len + 1);
    return 0;
}

int ovpn_config_set_string(struct ovpn_config_parser *p, char **dst, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return ovpn_config_nomem(p);
    free(*dst);
    *dst = copy;
    return 0;
}

int ovpn_config_looks_pem(const char *text)
{
    return strstr(text, "-----BEGIN ") != NULL;
}

/* ---- the parser's interface ---- */

void ovpn_config_defaults(struct ovpn_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->key_direction = -1;
    snprintf(cfg->auth, sizeof(cfg->auth), "SHA1");
    cfg->reneg_sec = 3600;
    cfg->hand_window = 60;
    cfg->connect_retry = 5;
    cfg->connect_retry_wait_max = 300;
    cfg->server_poll_timeout = 120;
    cfg->connect_timeout = 120;
    cfg->tun_mtu = 1500;
    tunnel_settings_init(&cfg->settings);
}

int ovpn_config_parser_new(struct ovpn_config_parser **out, const char *source_name)
{
    struct ovpn_config_parser *p = calloc(1, sizeof(*p));
    *out = NULL;
    if (p == NULL)
        return -ENOMEM;
    p->name = strdup(source_name ? source_name : "config");
    p->line = malloc(CONFIG_MAX_LINE + 1);
    if (p->name == NULL || p->line == NULL) {
        free(p->name);
        free(p->line);
        free(p);
        return -ENOMEM;
    }
    p->ce.proto = OVPN_PROTO_UDP;
    snprintf(p->ce.port, sizeof(p->ce.port), "1194");
    ovpn_config_defaults(&p->cfg);
    *out = p;
    return 0;
}

/* A port given as a service name becomes its number for the remote's protocol, when the loader
 * gave a way to look it up; OpenVPN's getaddrinfo() fails the same names for that socket type. */
static int config_finish_service(struct ovpn_config_parser *p, struct config_remote *r)
{
    char shown[CONFIG_SHOWN_MAX];
    const char *proto = r->r.proto == OVPN_PROTO_TCP ? "tcp" : "udp";
    unsigned port = 0;
    int rc;
    if (p->service_port == NULL || (r->r.port[0] >= '0' && r->r.port[0] <= '9'))
        return 0;
    rc = p->service_port(r->r.port, r->r.proto, &port);
    if (rc == -ENOMEM)
        return ovpn_config_nomem(p);
    if (rc < 0 || port == 0 || port > 65535)
        return ovpn_config_fail_at(p, r->port_line, "port '%s' is not a service the system knows for %s "
                                   "(/etc/services), nor a number in 1..65535",
                                   v2s_shown(r->r.port, shown, sizeof(shown)), proto);
    snprintf(r->r.port, sizeof(r->r.port), "%u", port);
    return 0;
}

/* Plain remote lines take the proto and port in force at the end of the file; when <connection>
 * blocks exist they are dropped, as OpenVPN does. */
static int config_finish_remotes(struct ovpn_config_parser *p, struct ovpn_config *cfg)
{
    size_t n = 0;
    int rc;
    unsigned dropped_line = 0;
    for (size_t i = 0; i < p->n_remotes; i++) {
        struct config_remote *r = &p->remotes[i];
        if (p->has_connections && !r->in_connection) {
            if (dropped_line == 0)
                dropped_line = r->line;
            continue;
        }
        n++;
    }
    if (dropped_line != 0)
        ovpn_config_warn(p, dropped_line, "remote lines outside <connection> blocks are ignored because the "
                         "file has <connection> blocks (as OpenVPN does)");
    if (n == 0)
        return ovpn_config_fail_at(p, 0, "no remote: the file names no server to connect to");
    if ((cfg->remotes = calloc(n, sizeof(*cfg->remotes))) == NULL)
        return ovpn_config_nomem(p);
    for (size_t i = 0; i < p->n_remotes; i++) {
        struct config_remote *r = &p->remotes[i];
        if (p->has_connections && !r->in_connection)
            continue;
        if (!r->port_given) {
            memcpy(r->r.port, p->ce.port, sizeof(r->r.port));
            r->port_line = p->ce.port_line;
        }
        if (!r->proto_given) {
            r->r.proto = p->ce.proto;
            r->r.family = p->ce.family;
        }
        if ((rc = config_finish_service(p, r)) < 0)
            return rc;
        cfg->remotes[cfg->n_remotes++] = r->r;
    }
    return 0;
}

/* The checks that need the whole file, then the hand-over of the config. */
int ovpn_config_finish(struct ovpn_config_parser *p, struct ovpn_config *cfg)
{
    int rc;
    if (p->error != 0)
        return p->error;
    if (p->finished)
        return ovpn_config_fail_at(p, 0, "finished twice");
    if (p->line_len > 0) {
        p->line[p->line_len] = '\0';
        rc = ovpn_config_line(p, p->line, p->line_len);
        explicit_bzero(p->line, p->line_len);
        p->line_len = 0;
        if (rc < 0)
            return rc;
    }
    p->finished = 1;
    if (p->block_tag[0] != '\0')
        return ovpn_config_fail_at(p, p->block_line, "<%s> is not closed: no </%s> before the end of the file",
                                   p->block_tag, p->block_tag);
    if (p->in_connection)
        return ovpn_config_fail_at(p, p->conn_line, "<connection> is not closed: no </connection> before the end "
                                   "of the file");
    if (p->keepalive_line != 0 && p->ping_line != 0)
        return ovpn_config_fail_at(p, p->keepalive_line,
                                   "keepalive conflicts with ping and ping-restart (line %u); keep one of them",
                                   p->ping_line);
    if (p->keepalive_line != 0) {
        p->cfg.ping = p->keepalive_ping;
        p->cfg.ping_restart = p->keepalive_restart;
    }
    if ((p->cfg.has_tls_auth || p->refs[CONFIG_REF_TLS_AUTH].path != NULL) &&
        (p->cfg.has_tls_crypt || p->refs[CONFIG_REF_TLS_CRYPT].path != NULL))
        return ovpn_config_fail_at(p, p->tls_auth_line > p->tls_crypt_line ? p->tls_auth_line : p->tls_crypt_line,
                                   "tls-auth (line %u) and tls-crypt (line %u) cannot be used together; keep the "
                                   "one the server uses", p->tls_auth_line, p->tls_crypt_line);
    /* OpenVPN refuses a client with two of them too: the server takes the one the reset names. */
    if (p->cfg.has_tls_crypt_v2 || p->refs[CONFIG_REF_TLS_CRYPT_V2].path != NULL) {
        int auth = p->cfg.has_tls_auth || p->refs[CONFIG_REF_TLS_AUTH].path != NULL;
        int crypt = p->cfg.has_tls_crypt || p->refs[CONFIG_REF_TLS_CRYPT].path != NULL;
        unsigned other = crypt ? p->tls_crypt_line : p->tls_auth_line;
        if (auth || crypt)
            return ovpn_config_fail_at(p, other > p->tls_crypt_v2_line ? other : p->tls_crypt_v2_line,
                                       "%s (line %u) and tls-crypt-v2 (line %u) cannot be used together; keep "
                                       "the one the server uses", crypt ? "tls-crypt" : "tls-auth", other,
                                       p->tls_crypt_v2_line);
    }
    if (p->allow_comp_no_line != 0 && p->comp_compresses)
        return ovpn_config_fail_at(p, p->allow_comp_no_line, "allow-compression no conflicts with compression "
                                   "turned on by comp-lzo or compress");
    if ((rc = config_finish_remotes(p, &p->cfg)) < 0)
        return rc;
    /* The client counts attempts over all remotes in 32 bits. */
    if ((uint64_t)p->cfg.connect_retry_max * p->cfg.n_remotes > UINT32_MAX)
        return ovpn_config_fail_at(p, p->connect_retry_max_line,
                                   "connect-retry-max %u times %zu remotes is more attempts than can be counted (%u)",
                                   p->cfg.connect_retry_max, p->cfg.n_remotes, (unsigned)UINT32_MAX);
    *cfg = p->cfg;
    ovpn_config_defaults(&p->cfg);
    return 0;
}

int ovpn_config_parser_finish(struct ovpn_config_parser *p, struct ovpn_config *cfg, char *err, size_t errcap)
{
    ovpn_config_defaults(cfg);
    int rc = ovpn_config_finish(p, cfg);
    if (rc < 0)
        v2s_fail(err, errcap, "%s", p->err);
    return rc;
}

void ovpn_config_parser_free(struct ovpn_config_parser *p)
{
    if (p == NULL)
        return;
    ovpn_config_free(&p->cfg);
    for (size_t i = 0; i < CONFIG_REF_COUNT; i++)
        free(p->refs[i].path);
    for (size_t i = 0; i < p->n_ignored; i++)
        free(p->ignored[i]);
    free(p->ignored);
    free(p->remotes);
    free(p->cd);
    if (p->block != NULL)
        explicit_bzero(p->block, p->block_cap);
    free(p->block);
    explicit_bzero(p->line, CONFIG_MAX_LINE + 1);
    free(p->line);
    free(p->name);
    free(p);
}

void ovpn_config_free(struct ovpn_config *cfg)
{
    free(cfg->remotes);
    free(cfg->ca);
    free(cfg->cert);
    ovpn_secret_free(&cfg->key);
    free(cfg->extra_certs);
    free(cfg->ca_origin);
    free(cfg->cert_origin);
    free(cfg->key_origin);
    free(cfg->crl);
    free(cfg->crl_origin);
    ovpn_secret_free(&cfg->username);
    ovpn_secret_free(&cfg->password);
    free(cfg->auth_file);
    free(cfg->tls_cipher);
    free(cfg->tls_ciphersuites);
    free(cfg->verify_x509_name);
    free(cfg->peer_fingerprints);
    ovpn_secret_free(&cfg->auth_token);
    tunnel_settings_free(&cfg->settings);
    for (size_t i = 0; i < cfg->n_pull_filters; i++)
        free(cfg->pull_filters[i].text);
    free(cfg->pull_filters);
    explicit_bzero(cfg, sizeof(*cfg)); /* the tls-auth and tls-crypt keys */
}
