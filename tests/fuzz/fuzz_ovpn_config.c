/* libFuzzer target for the .ovpn parser, the word splitter, the static key reader and the
 * tls-crypt-v2 client key reader. The first
 * byte picks where the rest is cut into two feeds, so every split point gets exercised. A parsed
 * config must hold the invariants the client relies on; an error must be one line naming the
 * file. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"
#include "tunnel/openvpn/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_text(const char *s, size_t cap)
{
    if (memchr(s, '\0', cap) == NULL)
        abort();
}

static void fuzz_check_cidr(const struct v2s_cidr *c)
{
    struct v2s_cidr again;
    if (v2s_cidr_make(&again, &c->addr, c->prefix) != 0 || !v2s_addr_equal(&again.addr, &c->addr))
        abort();
}

/* A port is a number in 1..65535 or, the parser alone not looking names up, a service name: a
 * letter, then letters, digits, '-', '.', '_' or '+'. */
static void fuzz_check_port(const char *port)
{
    if ((port[0] >= 'a' && port[0] <= 'z') || (port[0] >= 'A' && port[0] <= 'Z')) {
        for (const char *c = port; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                  *c == '-' || *c == '.' || *c == '_' || *c == '+'))
                abort();
        return;
    }
    long n = strtol(port, NULL, 10);
    if (n < 1 || n > 65535)
        abort();
}

/* A client key taken holds a WKc the server can read: a possible size, its own length at its end. */
static void fuzz_check_wkc(const struct ovpn_tls_crypt_v2_key *k)
{
    if (k->wkc_len < OVPN_WKC_MIN_LEN || k->wkc_len > OVPN_WKC_MAX_LEN ||
        ((size_t)k->wkc[k->wkc_len - 2] << 8 | k->wkc[k->wkc_len - 1]) != k->wkc_len)
        abort();
}

static void fuzz_check_config(const struct ovpn_config *cfg)
{
    if (cfg->n_remotes == 0 || cfg->n_remotes > 1024 || cfg->remotes == NULL)
        abort();
    for (size_t i = 0; i < cfg->n_remotes; i++) {
        const struct ovpn_remote *r = &cfg->remotes[i];
        fuzz_check_text(r->host, sizeof(r->host));
        fuzz_check_text(r->port, sizeof(r->port));
        fuzz_check_port(r->port);
        if (r->host[0] == '\0')
            abort();
        for (const char *c = r->host; *c; c++)
            if ((unsigned char)*c <= 0x20 || *c == 0x7F)
                abort();
        if (r->proto != OVPN_PROTO_UDP && r->proto != OVPN_PROTO_TCP)
            abort();
        if (r->family != 0 && r->family != AF_INET && r->family != AF_INET6)
            abort();
    }
    if (cfg->key_direction < -1 || cfg->key_direction > 1)
        abort();
    if (cfg->comp > OVPN_COMP_FRAMING_V2 || cfg->tun_mtu < 100 || cfg->tun_mtu > 65535)
        abort();
    if ((cfg->username == NULL) != (cfg->password == NULL))
        abort();
    if (cfg->username != NULL && (cfg->username[0] == '\0' || cfg->password[0] == '\0' ||
                                  strchr(cfg->username, '\n') != NULL ||
                                  strchr(cfg->password, '\n') != NULL))
        abort();
    fuzz_check_text(cfg->cipher, sizeof(cfg->cipher));
    fuzz_check_text(cfg->data_ciphers, sizeof(cfg->data_ciphers));
    fuzz_check_text(cfg->data_ciphers_fallback, sizeof(cfg->data_ciphers_fallback));
    fuzz_check_text(cfg->auth, sizeof(cfg->auth));
    fuzz_check_text(cfg->tls_version_min, sizeof(cfg->tls_version_min));
    if (cfg->has_tls_crypt_v2)
        fuzz_check_wkc(&cfg->tls_crypt_v2);
    else if (cfg->tls_crypt_v2.wkc_len != 0)
        abort();
    /* The parser alone never reads files: a named file leaves its field empty. */
    if (cfg->auth_token != NULL)
        abort();
    const struct tunnel_settings *s = &cfg->settings;
    if (s->n_dns > TUNNEL_MAX_DNS || s->n_routes > 4096 || s->n_excludes > 4096)
        abort();
    for (size_t i = 0; i < s->n_routes; i++)
        fuzz_check_cidr(&s->routes[i]);
    for (size_t i = 0; i < s->n_excludes; i++)
        fuzz_check_cidr(&s->excludes[i]);
    if (s->domains != NULL && (s->domains[0] == '\0' || strchr(s->domains, '\n') != NULL))
        abort();
}

static void fuzz_split(const uint8_t *data, size_t size)
{
    char buf[512];
    char *words[16];
    size_t n = size < sizeof(buf) - 1 ? size : sizeof(buf) - 1;
    memcpy(buf, data, n);
    buf[n] = '\0';
    int count = ovpn_split_words(buf, words, 16);
    if (count < -EINVAL || (count < 0 && count != -EINVAL) || count > 16)
        abort();
    for (int i = 0; i < count; i++)
        if (words[i] < buf || words[i] >= buf + sizeof(buf) ||
            memchr(words[i], '\0', (size_t)(buf + sizeof(buf) - words[i])) == NULL)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ovpn_config_parser *p;
    struct ovpn_config cfg;
    char err[256] = "";
    uint8_t key[OVPN_STATIC_KEY_LEN];

    v2s_log_level = V2S_LOG_ERROR; /* ignored options warn; keep the fuzzer quiet */
    if (size == 0)
        return 0;
    size_t cut = (size_t)data[0] * (size - 1) / 255;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    fuzz_split(data + 1, len);

    char *copy = malloc(len + 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, text, len);
    copy[len] = '\0';
    (void)ovpn_static_key_parse(copy, key);
    struct ovpn_tls_crypt_v2_key v2;
    const char *why = NULL;
    if (ovpn_tls_crypt_v2_key_parse(copy, &v2, &why) == 0)
        fuzz_check_wkc(&v2);
    else if (why == NULL || v2.wkc_len != 0)
        abort(); /* a refusal says why and leaves nothing behind */
    free(copy);

    if (ovpn_config_parser_new(&p, "fuzz.ovpn") != 0)
        return 0;
    int rc = ovpn_config_parser_feed(p, text, cut, err, sizeof(err));
    if (rc == 0)
        rc = ovpn_config_parser_feed(p, text + cut, len - cut, err, sizeof(err));
    int frc = ovpn_config_parser_finish(p, &cfg, err, sizeof(err));
    if (rc != 0 && frc != rc)
        abort(); /* errors stick */
    if (frc == 0) {
        fuzz_check_config(&cfg);
    } else if (frc == -EINVAL) {
        if (strncmp(err, "fuzz.ovpn", 9) != 0 || strchr(err, '\n') != NULL)
            abort();
    } else if (frc != -ENOMEM) {
        abort();
    }
    ovpn_config_free(&cfg);
    ovpn_config_parser_free(p);
    return 0;
}
