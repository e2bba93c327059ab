/* tunnel/openvpn/config*.c, words.c and keyfile.c: the word splitter, the .ovpn push parser, the
 * static key reader and the loader (with the files it names, made in a temporary folder). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "test.h"
#include "tunnel/openvpn/config.h"
#include "tunnel/openvpn/keymethod.h"
#include "ovpn_keytext.h"

/* ---- helpers ---- */

static int parse_chunks(const char *text, size_t len, size_t chunk, struct ovpn_config *cfg, char *err,
                        size_t errcap)
{
    struct ovpn_config_parser *p;
    int rc;
    ASSERT_EQ(ovpn_config_parser_new(&p, "client.ovpn"), 0);
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        if (ovpn_config_parser_feed(p, text + off, n, err, errcap) < 0)
            break; /* finish reports the same error and leaves cfg safe to free */
    }
    rc = ovpn_config_parser_finish(p, cfg, err, errcap);
    ovpn_config_parser_free(p);
    return rc;
}

/* Parses text fed in one piece as "client.ovpn". cfg must be freed either way. */
static int parse(const char *text, struct ovpn_config *cfg, char *err, size_t errcap)
{
    size_t len = strlen(text);
    return parse_chunks(text, len, len ? len : 1, cfg, err, errcap);
}

/* Parses text that must fail, and checks the message. */
static void expect_error(const char *text, const char *message)
{
    struct ovpn_config cfg;
    char err[512] = "";
    int rc = parse(text, &cfg, err, sizeof(err));
    if (rc != -EINVAL || strcmp(err, message) != 0)
        TEST_FAIL_AT("config:\n%s\nexpected -EINVAL \"%s\", got %d \"%s\"", text, message, rc, err);
    ovpn_config_free(&cfg);
}

static void expect_ok(const char *text)
{
    struct ovpn_config cfg;
    char err[512] = "";
    int rc = parse(text, &cfg, err, sizeof(err));
    if (rc != 0)
        TEST_FAIL_AT("config:\n%s\nexpected success, got %d \"%s\"", text, rc, err);
    ovpn_config_free(&cfg);
}

/* The static key OpenVPN would write for the bytes first, first+1, ... (mod 256). */
static void make_static_key(char *out, size_t cap, unsigned first)
{
    size_t n = (size_t)snprintf(out, cap, "#\n# 2048 bit OpenVPN static key\n#\n"
                                          "-----BEGIN OpenVPN Static key V1-----\n");
    for (unsigned i = 0; i < 256; i++) {
        n += (size_t)snprintf(out + n, cap - n, "%02x", (first + i) & 0xFF);
        if (i % 16 == 15)
            n += (size_t)snprintf(out + n, cap - n, "\n");
    }
    snprintf(out + n, cap - n, "-----END OpenVPN Static key V1-----\n");
}

static void check_static_key(const uint8_t *key, unsigned first)
{
    for (unsigned i = 0; i < 256; i++)
        ASSERT_ROW(key[i] == ((first + i) & 0xFF), "%u", i);
}

static const char *fmt_cidr(const struct v2s_cidr *c)
{
    static char buf[64];
    return v2s_cidr_format(c, buf, sizeof(buf));
}

static const char *fmt_addr(const struct v2s_addr *a)
{
    static char buf[64];
    return v2s_addr_format(a, buf, sizeof(buf));
}

/* A temporary folder for loader tests, removed by tmp_cleanup (files first, then folders). */
struct tmp {
    char root[64];
    char paths[32][256];
    int n;
};

static void tmp_init(struct tmp *t)
{
    snprintf(t->root, sizeof(t->root), "/tmp/v2s-ovpn-XXXXXX");
    ASSERT(mkdtemp(t->root) != NULL);
    t->n = 0;
}

static const char *tmp_path(struct tmp *t, const char *rel)
{
    static char buf[512];
    snprintf(buf, sizeof(buf), "%s/%s", t->root, rel);
    return buf;
}

/* Records root/rel as the next path to remove. */
static const char *tmp_add(struct tmp *t, const char *rel)
{
    char buf[sizeof(t->paths[0])];
    ASSERT(t->n < 32);
    snprintf(buf, sizeof(buf), "%s/%s", t->root, rel);
    memcpy(t->paths[t->n], buf, sizeof(buf));
    return t->paths[t->n++];
}

static void tmp_mkdir(struct tmp *t, const char *rel)
{
    const char *path = tmp_add(t, rel);
    ASSERT_EQ(mkdir(path, 0700), 0);
}

static void tmp_write(struct tmp *t, const char *rel, const char *text, size_t len)
{
    int fd = open(tmp_add(t, rel), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static void tmp_file(struct tmp *t, const char *rel, const char *text)
{
    tmp_write(t, rel, text, strlen(text));
}

static void tmp_cleanup(struct tmp *t)
{
    for (int i = t->n - 1; i >= 0; i--) {
        struct stat st;
        if (stat(t->paths[i], &st) == 0 && S_ISDIR(st.st_mode))
            rmdir(t->paths[i]);
        else
            unlink(t->paths[i]);
    }
    ASSERT_EQ(rmdir(t->root), 0);
}

static const char ca_pem[] = "-----BEGIN CERTIFICATE-----\nMIIBCA==\n-----END CERTIFICATE-----\n";
static const char cert_pem[] = "-----BEGIN CERTIFICATE-----\nMIIBQg==\n-----END CERTIFICATE-----\n";
static const char key_pem[] = "-----BEGIN PRIVATE KEY-----\nMIIEvQ==\n-----END PRIVATE KEY-----\n";

/* ---- the word splitter ---- */

TEST_IMPL(ovpn_split_words)
{
    static const struct {
        const char *line;
        int n; /* -1: -EINVAL */
        const char *words[5];
    } rows[] = {
        {"remote vpn.example.com 1194 udp", 4, {"remote", "vpn.example.com", "1194", "udp"}},
        {"  \t remote\t\thost  ", 2, {"remote", "host"}},
        {"", 0, {NULL}},
        {"   ", 0, {NULL}},
        {"# a comment", 0, {NULL}},
        {"; a comment", 0, {NULL}},
        {"  ;indented comment", 0, {NULL}},
        {"remote host # trailing comment", 2, {"remote", "host"}},
        {"remote host ;trailing", 2, {"remote", "host"}},
        {"remote host#notacomment", 2, {"remote", "host#notacomment"}},
        {"ca \"my ca.crt\"", 2, {"ca", "my ca.crt"}},
        {"ca 'my ca.crt'", 2, {"ca", "my ca.crt"}},
        {"ca my\\ ca.crt", 2, {"ca", "my ca.crt"}},
        {"ca \"a\\\"b\"", 2, {"ca", "a\"b"}},
        {"ca \"a\\\\b\"", 2, {"ca", "a\\b"}},
        {"ca 'a\\b'", 2, {"ca", "a\\b"}},          /* no escapes in single quotes */
        {"ca 'a\"b'", 2, {"ca", "a\"b"}},
        {"ca \"a'b\"", 2, {"ca", "a'b"}},
        {"x \"\"", 2, {"x", ""}},                 /* an empty quoted word */
        {"x \"ab\"cd", 3, {"x", "ab", "cd"}},     /* a closing quote ends the word */
        {"x ab\"cd", 2, {"x", "ab\"cd"}},         /* a quote inside a word is literal */
        {"x \\\"ab", 2, {"x", "\"ab"}},           /* an escaped quote starts a plain word */
        {"x \"# not a comment\"", 2, {"x", "# not a comment"}},
        {"x a\\\\b", 2, {"x", "a\\b"}},
        {"x \\", 1, {"x"}},                       /* a backslash between words is dropped */
        {"x\r", 1, {"x"}},
        {"x \"unterminated", -1, {NULL}},
        {"x 'unterminated", -1, {NULL}},
        {"x \"\\q\"", -1, {NULL}},                /* bad escape */
        {"x c:\\path", -1, {NULL}},
        {"x ab\\", -1, {NULL}},                   /* a backslash ending a word */
        {"a b c d e f g h i j k l m n o p", 16, {"a", "b", "c", "d", "e"}},
        {"a b c d e f g h i j k l m n o p q", -1, {NULL}},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        char buf[128];
        char *words[16];
        snprintf(buf, sizeof(buf), "%s", rows[i].line);
        int n = ovpn_split_words(buf, words, 16);
        ASSERT_ROW(n == (rows[i].n < 0 ? -EINVAL : rows[i].n), "%zu", i);
        for (int j = 0; j < n && j < 5 && rows[i].words[j] != NULL; j++)
            ASSERT_ROW(strcmp(words[j], rows[i].words[j]) == 0, "%zu word %d", i, j);
    }
    /* max words is the caller's */
    char buf[] = "a b c";
    char *words[2];
    ASSERT_EQ(ovpn_split_words(buf, words, 2), -EINVAL);
    return 0;
}

/* ---- static keys ---- */

TEST_IMPL(ovpn_static_key_parse)
{
    char text[2048];
    uint8_t key[OVPN_STATIC_KEY_LEN];

    make_static_key(text, sizeof(text), 0);
    ASSERT_EQ(ovpn_static_key_parse(text, key), 0);
    check_static_key(key, 0);

    /* CRLF line ends and upper-case hex */
    char crlf[4096];
    size_t n = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '\n')
            crlf[n++] = '\r';
        crlf[n++] = (*p >= 'a' && *p <= 'f') ? (char)(*p - 32) : *p;
    }
    crlf[n] = '\0';
    /* upper-casing touched the head and foot words too; put them back */
    char *h = strstr(crlf, "-----BEGIN");
    ASSERT(h != NULL);
    memcpy(h, "-----BEGIN OpenVPN Static key V1-----", 37);
    char *f = strstr(crlf, "-----END");
    ASSERT(f != NULL);
    memcpy(f, "-----END OpenVPN Static key V1-----", 35);
    ASSERT_EQ(ovpn_static_key_parse(crlf, key), 0);
    check_static_key(key, 0);

    static const struct {
        const char *what;
        const char *from, *to; /* replace the first "from" with "to" */
    } bad[] = {
        {"no head", "-----BEGIN OpenVPN Static key V1-----", "-----BEGIN OpenVPN Static key V2-----"},
        {"no foot", "-----END OpenVPN Static key V1-----", ""},
        {"bad foot", "-----END OpenVPN Static key V1-----", "-----END something else-----"},
        {"non-hex", "0001", "00x1"},
        {"odd digits", "0001", "001"},
        {"short", "000102030405060708090a0b0c0d0e0f\n", ""},
        {"long", "000102030405060708090a0b0c0d0e0f\n", "000102030405060708090a0b0c0d0e0f\n00\n"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char copy[2048];
        const char *at = strstr(text, bad[i].from);
        ASSERT(at != NULL);
        size_t pre = (size_t)(at - text);
        snprintf(copy, sizeof(copy), "%.*s%s%s", (int)pre, text, bad[i].to, at + strlen(bad[i].from));
        ASSERT_ROW(ovpn_static_key_parse(copy, key) == -EINVAL, "%s", bad[i].what);
    }
    ASSERT_EQ(ovpn_static_key_parse("", key), -EINVAL);
    ASSERT_EQ(ovpn_static_key_parse("-----BEGIN OpenVPN Static key V1-----", key), -EINVAL);
    return 0;
}

/* ---- whole files ---- */

static const char alibaba_ovpn[] = "client\n"
                                   "dev tun\n"
                                   "proto udp\n"
                                   "remote 47.100.1.2 1194\n"
                                   "resolv-retry infinite\n"
                                   "nobind\n"
                                   "persist-key\n"
                                   "persist-tun\n"
                                   "ca ca.crt\n"
                                   "cert client.crt\n"
                                   "key client.key\n"
                                   "remote-cert-tls server\n"
                                   "cipher AES-128-CBC\n"
                                   "comp-lzo\n"
                                   "auth-user-pass\n"
                                   "verb 3\n";

TEST_IMPL(ovpn_config_alibaba)
{
    struct ovpn_config cfg;
    char err[256] = "";
    ASSERT_EQ(parse(alibaba_ovpn, &cfg, err, sizeof(err)), 0);
    ASSERT_STR_EQ(err, "");
    ASSERT_EQ(cfg.n_remotes, 1);
    ASSERT_STR_EQ(cfg.remotes[0].host, "47.100.1.2");
    ASSERT_STR_EQ(cfg.remotes[0].port, "1194");
    ASSERT_EQ(cfg.remotes[0].proto, OVPN_PROTO_UDP);
    ASSERT_EQ(cfg.remotes[0].family, 0);
    ASSERT_EQ(cfg.pull, 1);
    ASSERT_EQ(cfg.remote_cert_tls_server, 1);
    ASSERT_STR_EQ(cfg.cipher, "AES-128-CBC");
    ASSERT_EQ(cfg.comp, OVPN_COMP_FRAMING_LZO);
    ASSERT_EQ(cfg.comp_set, 1);
    ASSERT_EQ(cfg.auth_user_pass, 1);
    ASSERT(cfg.username == NULL && cfg.password == NULL);
    /* File names are the loader's business; the parser leaves the fields empty. */
    ASSERT(cfg.ca == NULL && cfg.cert == NULL && cfg.key == NULL);
    /* Defaults */
    ASSERT_STR_EQ(cfg.auth, "SHA1");
    ASSERT_EQ(cfg.key_direction, -1);
    ASSERT_EQ(cfg.has_tls_auth, 0);
    ASSERT_EQ(cfg.has_tls_crypt, 0);
    ASSERT_EQ(cfg.reneg_sec, 3600);
    ASSERT_EQ(cfg.hand_window, 60);
    ASSERT_EQ(cfg.connect_retry, 5);
    ASSERT_EQ(cfg.connect_retry_max, 0);
    ASSERT_EQ(cfg.server_poll_timeout, 120);
    ASSERT_EQ(cfg.connect_timeout, 120);
    ASSERT_EQ(cfg.tun_mtu, 1500);
    ASSERT_EQ(cfg.mssfix, 0);
    ASSERT_EQ(cfg.ping, 0);
    ASSERT_EQ(cfg.ping_restart, 0);
    ASSERT_EQ(cfg.explicit_exit_notify, 0);
    ASSERT_STR_EQ(cfg.tls_version_min, "");
    ASSERT_STR_EQ(cfg.data_ciphers, "");
    ASSERT(cfg.verify_x509_name == NULL && cfg.tls_cipher == NULL && cfg.auth_token == NULL);
    ASSERT_EQ(cfg.settings.n_routes, 0);
    ASSERT_EQ(cfg.settings.n_dns, 0);
    ovpn_config_free(&cfg);
    return 0;
}

TEST_IMPL(ovpn_config_alibaba_load)
{
    struct tmp t;
    struct ovpn_config cfg;
    char err[512] = "";
    char path[512];

    tmp_init(&t);
    tmp_file(&t, "config.ovpn", alibaba_ovpn);
    tmp_file(&t, "ca.crt", ca_pem);
    tmp_file(&t, "client.crt", cert_pem);
    tmp_file(&t, "client.key", key_pem);
    tmp_file(&t, "pass.txt", "alice\r\nsecret\r\n");
    snprintf(path, sizeof(path), "%s", tmp_path(&t, "config.ovpn"));

    /* Without --auth-user-pass: the caller sees the file wants one and has none. */
    ASSERT_EQ(ovpn_config_load(&cfg, path, NULL, err, sizeof(err)), 0);
    ASSERT_STR_EQ(cfg.ca, ca_pem);
    ASSERT_STR_EQ(cfg.cert, cert_pem);
    ASSERT_STR_EQ(cfg.key, key_pem);
    ASSERT(cfg.extra_certs == NULL);
    ASSERT_EQ(cfg.auth_user_pass, 1);
    ASSERT(cfg.username == NULL && cfg.password == NULL);
    ovpn_config_free(&cfg);

    /* With it (named as the command line would: here an absolute path). */
    ASSERT_EQ(ovpn_config_load(&cfg, path, tmp_path(&t, "pass.txt"), err, sizeof(err)), 0);
    ASSERT_STR_EQ(cfg.username, "alice");
    ASSERT_STR_EQ(cfg.password, "secret");
    ovpn_config_free(&cfg);

    /* The same from the folder itself, with a relative config path. */
    char cwd[512];
    ASSERT(getcwd(cwd, sizeof(cwd)) != NULL);
    ASSERT_EQ(chdir(t.root), 0);
    ASSERT_EQ(ovpn_config_load(&cfg, "config.ovpn", "pass.txt", err, sizeof(err)), 0);
    ASSERT_STR_EQ(cfg.ca, ca_pem);
    ASSERT_STR_EQ(cfg.password, "secret");
    ovpn_config_free(&cfg);
    ASSERT_EQ(chdir(cwd), 0);

    tmp_cleanup(&t);
    return 0;
}

/* What "openvpn --genkey" + a typical server-side client template produce: everything inline,
 * tls-auth with key-direction 1. */
static void make_server_profile(char *out, size_t cap, int tls_crypt)
{
    char key[2048];
    make_static_key(key, sizeof(key), 0x10);
    snprintf(out, cap,
             "# Generated by the server\r\n"
             "client\r\n"
             "dev tun\r\n"
             "proto tcp-client\r\n"
             "remote vpn.example.com 443\r\n"
             "remote 2001:db8::1 1194 udp6\r\n"
             "remote-random\r\n"
             "resolv-retry infinite\r\n"
             "nobind\r\n"
             "persist-key\r\n"
             "persist-tun\r\n"
             "remote-cert-tls server\r\n"
             "verify-x509-name 'server_Q7abc' name\r\n"
             "auth SHA256\r\n"
             "cipher AES-256-CBC\r\n"
             "data-ciphers AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305\r\n"
             "tls-version-min 1.2\r\n"
             "tls-cipher TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256\r\n"
             "ignore-unknown-option block-outside-dns\r\n"
             "setenv opt block-outside-dns\r\n"
             "verb 3\r\n"
             "key-direction 1\r\n"
             "<ca>\r\n%s</ca>\r\n"
             "<cert>\r\n%s</cert>\r\n"
             "<key>\r\n%s</key>\r\n"
             "<%s>\r\n%s</%s>\r\n",
             ca_pem, cert_pem, key_pem, tls_crypt ? "tls-crypt" : "tls-auth", key,
             tls_crypt ? "tls-crypt" : "tls-auth");
}

static void check_server_profile(const struct ovpn_config *cfg, int tls_crypt)
{
    ASSERT_EQ(cfg->n_remotes, 2);
    ASSERT_STR_EQ(cfg->remotes[0].host, "vpn.example.com");
    ASSERT_STR_EQ(cfg->remotes[0].port, "443");
    ASSERT_EQ(cfg->remotes[0].proto, OVPN_PROTO_TCP);
    ASSERT_EQ(cfg->remotes[0].family, 0);
    ASSERT_STR_EQ(cfg->remotes[1].host, "2001:db8::1");
    ASSERT_STR_EQ(cfg->remotes[1].port, "1194");
    ASSERT_EQ(cfg->remotes[1].proto, OVPN_PROTO_UDP);
    ASSERT_EQ(cfg->remotes[1].family, AF_INET6);
    ASSERT_EQ(cfg->remote_random, 1);
    ASSERT_EQ(cfg->remote_cert_tls_server, 1);
    ASSERT_STR_EQ(cfg->verify_x509_name, "server_Q7abc");
    ASSERT_EQ(cfg->verify_x509_type, OVPN_X509_NAME_CN);
    ASSERT_STR_EQ(cfg->auth, "SHA256");
    ASSERT_STR_EQ(cfg->cipher, "AES-256-CBC");
    ASSERT_STR_EQ(cfg->data_ciphers, "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305");
    ASSERT_STR_EQ(cfg->tls_version_min, "1.2");
    ASSERT_STR_EQ(cfg->tls_cipher, "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256");
    /* Inline text keeps its lines (CR stripped). */
    ASSERT_STR_EQ(cfg->ca, ca_pem);
    ASSERT_STR_EQ(cfg->cert, cert_pem);
    ASSERT_STR_EQ(cfg->key, key_pem);
    ASSERT_EQ(cfg->key_direction, 1);
    ASSERT_EQ(cfg->has_tls_auth, !tls_crypt);
    ASSERT_EQ(cfg->has_tls_crypt, tls_crypt);
    check_static_key(tls_crypt ? cfg->tls_crypt_key : cfg->tls_auth_key, 0x10);
    ASSERT_EQ(cfg->comp_set, 0);
    ASSERT_EQ(cfg->comp, OVPN_COMP_FRAMING_NONE);
}

TEST_IMPL(ovpn_config_server_profile)
{
    char text[8192];
    struct ovpn_config cfg;
    char err[256] = "";
    for (int tls_crypt = 0; tls_crypt <= 1; tls_crypt++) {
        make_server_profile(text, sizeof(text), tls_crypt);
        ASSERT_EQ(parse(text, &cfg, err, sizeof(err)), 0);
        check_server_profile(&cfg, tls_crypt);
        ovpn_config_free(&cfg);
    }
    /* A byte order mark and "--" before names, as some exporters write. */
    char bom[8300];
    make_server_profile(text, sizeof(text), 0);
    snprintf(bom, sizeof(bom), "\xEF\xBB\xBF--tun-mtu 1400\n%s", text);
    ASSERT_EQ(parse(bom, &cfg, err, sizeof(err)), 0);
    ASSERT_EQ(cfg.tun_mtu, 1400);
    check_server_profile(&cfg, 0);
    ovpn_config_free(&cfg);
    return 0;
}

TEST_IMPL(ovpn_config_every_split)
{
    char text[8192];
    struct ovpn_config cfg;
    char err[256];
    make_server_profile(text, sizeof(text), 0);
    size_t len = strlen(text);
    /* Two pieces, cut at every byte. */
    for (size_t cut = 0; cut <= len; cut++) {
        struct ovpn_config_parser *p;
        ASSERT_EQ(ovpn_config_parser_new(&p, "client.ovpn"), 0);
        ASSERT_ROW(ovpn_config_parser_feed(p, text, cut, err, sizeof(err)) == 0, "%zu", cut);
        ASSERT_ROW(ovpn_config_parser_feed(p, text + cut, len - cut, err, sizeof(err)) == 0, "%zu", cut);
        ASSERT_ROW(ovpn_config_parser_finish(p, &cfg, err, sizeof(err)) == 0, "%zu", cut);
        ovpn_config_parser_free(p);
        check_server_profile(&cfg, 0);
        ovpn_config_free(&cfg);
    }
    /* One byte at a time, and with no final newline. */
    ASSERT_EQ(parse_chunks(text, len, 1, &cfg, err, sizeof(err)), 0);
    check_server_profile(&cfg, 0);
    ovpn_config_free(&cfg);
    ASSERT_EQ(parse_chunks(text, len - 2, 7, &cfg, err, sizeof(err)), 0); /* drops the last CRLF */
    check_server_profile(&cfg, 0);
    ovpn_config_free(&cfg);
    return 0;
}

TEST_IMPL(ovpn_config_connection_blocks)
{
    struct ovpn_config cfg;
    char err[256] = "";
    char key[2048];
    char text[8192];

    /* Blocks start from what is set above them; plain remotes are dropped (with a warning). */
    ASSERT_EQ(parse("client\n"
                    "proto tcp\n"
                    "port 443\n"
                    "remote ignored.example.com\n"
                    "<connection>\n"
                    "remote a.example.com\n"
                    "</connection>\n"
                    "<connection>\n"
                    "remote b.example.com 1195 udp4\n"
                    "explicit-exit-notify 2\n"
                    "connect-timeout 10\n"
                    "nobind\n"
                    "</connection>\n"
                    "  <connection>\n"
                    "proto udp6\n"
                    "port 53\n"
                    "remote c.example.com\n"
                    "  </connection>  trailing text is ignored\n"
                    "proto udp\n",
                    &cfg, err, sizeof(err)),
              0);
    ASSERT_EQ(cfg.n_remotes, 3);
    ASSERT_STR_EQ(cfg.remotes[0].host, "a.example.com");
    ASSERT_STR_EQ(cfg.remotes[0].port, "443");
    ASSERT_EQ(cfg.remotes[0].proto, OVPN_PROTO_TCP);
    ASSERT_STR_EQ(cfg.remotes[1].host, "b.example.com");
    ASSERT_STR_EQ(cfg.remotes[1].port, "1195");
    ASSERT_EQ(cfg.remotes[1].proto, OVPN_PROTO_UDP);
    ASSERT_EQ(cfg.remotes[1].family, AF_INET);
    ASSERT_STR_EQ(cfg.remotes[2].host, "c.example.com");
    ASSERT_STR_EQ(cfg.remotes[2].port, "53");
    ASSERT_EQ(cfg.remotes[2].proto, OVPN_PROTO_UDP);
    ASSERT_EQ(cfg.remotes[2].family, AF_INET6);
    ASSERT_EQ(cfg.explicit_exit_notify, 2);
    ASSERT_EQ(cfg.connect_timeout, 10);
    ovpn_config_free(&cfg);

    /* Plain remotes take the proto and port in force at the end of the file. */
    ASSERT_EQ(parse("remote a\nremote b 1\nproto tcp4\nport 8443\n", &cfg, err, sizeof(err)), 0);
    ASSERT_EQ(cfg.n_remotes, 2);
    ASSERT_STR_EQ(cfg.remotes[0].port, "8443");
    ASSERT_EQ(cfg.remotes[0].proto, OVPN_PROTO_TCP);
    ASSERT_EQ(cfg.remotes[0].family, AF_INET);
    ASSERT_STR_EQ(cfg.remotes[1].port, "1");
    ovpn_config_free(&cfg);

    /* Inside a block the later line wins, as OpenVPN writes the remote's port and proto into the
     * block's settings when it reads the remote line; a port above the remote does not override it. */
    ASSERT_EQ(parse("<connection>\nremote a 1194 udp4\nport 443\nproto tcp\n</connection>\n"
                    "<connection>\nport 443\nproto tcp\nremote b 1195 udp\n</connection>\n"
                    "<connection>\nremote c 1196 tcp\nrport 8443\n</connection>\n",
                    &cfg, err, sizeof(err)),
              0);
    ASSERT_EQ(cfg.n_remotes, 3);
    ASSERT_STR_EQ(cfg.remotes[0].port, "443");
    ASSERT_EQ(cfg.remotes[0].proto, OVPN_PROTO_TCP);
    ASSERT_EQ(cfg.remotes[0].family, 0);
    ASSERT_STR_EQ(cfg.remotes[1].port, "1195");
    ASSERT_EQ(cfg.remotes[1].proto, OVPN_PROTO_UDP);
    ASSERT_STR_EQ(cfg.remotes[2].port, "8443");
    ASSERT_EQ(cfg.remotes[2].proto, OVPN_PROTO_TCP);
    ovpn_config_free(&cfg);

    /* A block may carry its own inline key; the same key in two blocks is fine. */
    make_static_key(key, sizeof(key), 0x80);
    snprintf(text, sizeof(text),
             "<connection>\nremote a\nkey-direction 1\n<tls-auth>\n%s</tls-auth>\n</connection>\n"
             "<connection>\nremote b\nkey-direction 1\n<tls-auth>\n%s</tls-auth>\n</connection>\n",
             key, key);
    ASSERT_EQ(parse(text, &cfg, err, sizeof(err)), 0);
    ASSERT_EQ(cfg.n_remotes, 2);
    ASSERT_EQ(cfg.has_tls_auth, 1);
    ASSERT_EQ(cfg.key_direction, 1);
    check_static_key(cfg.tls_auth_key, 0x80);
    ovpn_config_free(&cfg);

    /* Different keys per block cannot be represented: refused. */
    char key2[2048];
    make_static_key(key2, sizeof(key2), 0x81);
    snprintf(text, sizeof(text),
             "<connection>\nremote a\n<tls-auth>\n%s</tls-auth>\n</connection>\n"
             "<connection>\nremote b\n<tls-auth>\n%s</tls-auth>\n</connection>\n",
             key, key2);
    ASSERT_EQ(parse(text, &cfg, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "client.ovpn:29: <connection> blocks with different tls-auth keys are not supported");
    ovpn_config_free(&cfg);

    expect_error("<connection>\nremote a\nremote b\n</connection>\n",
                 "client.ovpn:3: a <connection> block takes exactly one remote");
    expect_error("remote x\n<connection>\nproto tcp\n</connection>\n",
                 "client.ovpn:2: a <connection> block needs a remote");
    expect_error("<connection>\nremote a\n<connection>\n", "client.ovpn:3: <connection> blocks cannot nest");
    expect_error("<connection>\nremote a\n",
                 "client.ovpn:1: <connection> is not closed: no </connection> before the end of the file");
    expect_error("<connection>\nremote a\ncipher AES-256-GCM\n</connection>\n",
                 "client.ovpn:3: cipher cannot be used inside a <connection> block");
    expect_error("<connection>\nremote a\nkey-direction 1\n</connection>\n<connection>\nremote b\n"
                 "key-direction 0\n</connection>\n",
                 "client.ovpn:7: <connection> blocks with different key directions are not supported");
    expect_error("remote a\n</connection>\n", "client.ovpn:2: </connection> closes a block that was never opened");
    expect_error("remote a\nconnection foo\n",
                 "client.ovpn:2: connection must be an inline <connection> ... </connection> block");
    expect_error("<connection>\nremote a\nhttp-proxy p 8080\n</connection>\n",
                 "client.ovpn:3: connecting through an HTTP or SOCKS proxy is not supported");
    return 0;
}

TEST_IMPL(ovpn_config_relative_paths)
{
    struct tmp t;
    struct ovpn_config cfg;
    char err[512] = "";
    char key[2048], path[512], text[1024], want[2048];

    tmp_init(&t);
    tmp_mkdir(&t, "profiles");
    tmp_mkdir(&t, "profiles/keys");
    tmp_mkdir(&t, "elsewhere");
    make_static_key(key, sizeof(key), 3);
    tmp_file(&t, "profiles/keys/ca.crt", ca_pem);
    tmp_file(&t, "profiles/keys/my client.crt", cert_pem);
    tmp_file(&t, "profiles/keys/client.key", key_pem);
    tmp_file(&t, "profiles/keys/ta.key", key);
    tmp_file(&t, "profiles/up.txt", "bob\nhunter2");
    tmp_file(&t, "elsewhere/extra.pem", ca_pem);
    snprintf(text, sizeof(text),
             "client\nremote gw\n"
             "ca keys/ca.crt\n"
             "cert \"keys/my client.crt\"\n"
             "key keys/client.key\n"
             "tls-auth keys/ta.key 1\n"
             "auth-user-pass up.txt\n"
             "extra-certs %s\n",
             tmp_path(&t, "elsewhere/extra.pem"));
    tmp_file(&t, "profiles/client.ovpn", text);
    snprintf(path, sizeof(path), "%s", tmp_path(&t, "profiles/client.ovpn"));

    ASSERT_EQ(ovpn_config_load(&cfg, path, NULL, err, sizeof(err)), 0);
    ASSERT_STR_EQ(cfg.ca, ca_pem);
    ASSERT_STR_EQ(cfg.cert, cert_pem);
    ASSERT_STR_EQ(cfg.key, key_pem);
    ASSERT_STR_EQ(cfg.extra_certs, ca_pem);
    ASSERT_EQ(cfg.has_tls_auth, 1);
    ASSERT_EQ(cfg.key_direction, 1);
    check_static_key(cfg.tls_auth_key, 3);
    ASSERT_STR_EQ(cfg.username, "bob");
    ASSERT_STR_EQ(cfg.password, "hunter2"); /* no final newline */
    ovpn_config_free(&cfg);

    /* "cd" moves the folder relative names resolve against. */
    tmp_file(&t, "elsewhere/cd.ovpn", "remote gw\ncd ../profiles/keys\nca ca.crt\n");
    snprintf(path, sizeof(path), "%s", tmp_path(&t, "elsewhere/cd.ovpn"));
    ASSERT_EQ(ovpn_config_load(&cfg, path, NULL, err, sizeof(err)), 0);
    ASSERT_STR_EQ(cfg.ca, ca_pem);
    ovpn_config_free(&cfg);

    /* A missing file is named with the config line that wants it. */
    tmp_file(&t, "profiles/missing.ovpn", "remote gw\n\nca keys/nope.crt\n");
    snprintf(path, sizeof(path), "%s", tmp_path(&t, "profiles/missing.ovpn"));
    snprintf(want, sizeof(want), "%s:3: ca 'keys/nope.crt': cannot read %s/profiles/keys/nope.crt: %s", path,
             t.root, strerror(ENOENT));
    ASSERT_EQ(ovpn_config_load(&cfg, path, NULL, err, sizeof(err)), -ENOENT);
    ASSERT_STR_EQ(err, want);
    ovpn_config_free(&cfg);

    /* A ca file that is not PEM at all (a wrong file, a DER one) is named with its line: TLS setup
     * said only "client.ovpn: ca: no certificate found", naming neither. */
    tmp_file(&t, "profiles/up-as-ca.ovpn", "remote gw\n\nca up.txt\n");
    snprintf(path, sizeof(path), "%s", tmp_path(&t, "profiles/up-as-ca.ovpn"));
    snprintf(want, sizeof(want), "%s:3: ca 'up.txt': %s/profiles/up.txt is not PEM (no -----BEGIN line)", path,
             t.root);
    ASSERT_EQ(ovpn_config_load(&cfg, path, NULL, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, want);
    ovpn_config_free(&cfg);

    /* A tls-auth file that is not a key. */
    tmp_file(&t, "profiles/badkey.ovpn", "remote gw\ntls-auth keys/ca.crt 0\n");
    snprintf(path, sizeof(path), "%s", tmp_path(&t, "profiles/badkey.ovpn"));
    snprintf(want, sizeof(want),
             "%s:2: tls-auth 'keys/ca.crt': %s/profiles/keys/ca.crt is not an OpenVPN static key (256 bytes "
             "of hex between the BEGIN and END lines)",
             path, t.root);
    ASSERT_EQ(ovpn_config_load(&cfg, path, NULL, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, want);
    ovpn_config_free(&cfg);

    /* A file with a NUL byte. */
    tmp_write(&t, "profiles/keys/nul.crt", "abc\0def\n", 8);
    tmp_file(&t, "profiles/nul.ovpn", "remote gw\nca keys/nul.crt\n");
    snprintf(path, sizeof(path), "%s", tmp_path(&t, "profiles/nul.ovpn"));
    ASSERT_EQ(ovpn_config_load(&cfg, path, NULL, err, sizeof(err)), -EINVAL);
    ASSERT(strstr(err, ":2: ca 'keys/nul.crt': ") != NULL && strstr(err, "NUL byte") != NULL);
    ovpn_config_free(&cfg);

    /* The config itself missing. */
    snprintf(path, sizeof(path), "%s", tmp_path(&t, "nothere.ovpn"));
    snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
    ASSERT_EQ(ovpn_config_load(&cfg, path, NULL, err, sizeof(err)), -ENOENT);
    ASSERT_STR_EQ(err, want);
    ovpn_config_free(&cfg);

    /* A parse error carries the path the caller gave. */
    tmp_file(&t, "profiles/tap.ovpn", "client\nremote gw\ndev tap\n");
    snprintf(path, sizeof(path), "%s", tmp_path(&t, "profiles/tap.ovpn"));
    snprintf(want, sizeof(want), "%s:3: dev tap is not supported: vpn2socks carries IP packets (dev tun) only",
             path);
    ASSERT_EQ(ovpn_config_load(&cfg, path, NULL, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, want);
    ovpn_config_free(&cfg);

    tmp_cleanup(&t);
    return 0;
}

/* A port may be a service name, as OpenVPN hands it to getaddrinfo(): the loader turns it into the
 * number for the remote's protocol and names the line of a name the system does not know. The
 * parser alone keeps the name. The names used are in every /etc/services. */
TEST_IMPL(ovpn_config_port_service_name)
{
    struct tmp t;
    struct ovpn_config cfg;
    char err[512] = "";
    char path[512], want[1024];

    ASSERT_EQ(parse("remote gw https\n", &cfg, err, sizeof(err)), 0);
    ASSERT_STR_EQ(cfg.remotes[0].port, "https");
    ovpn_config_free(&cfg);

    tmp_init(&t);
    tmp_file(&t, "a.ovpn", "remote gw.example.com https tcp\nremote gw2\nport openvpn\n");
    tmp_file(&t, "b.ovpn", "rport ssh\n<connection>\nremote gw\nproto tcp\n</connection>\n"
                           "<connection>\nremote gw\nport domain\n</connection>\n");
    tmp_file(&t, "c.ovpn", "remote gw 1194\nport no-such-service-here\nremote gw2\n");
    tmp_file(&t, "d.ovpn", "remote gw no-such-service-here\n");
    snprintf(path, sizeof(path), "%s", tmp_path(&t, "a.ovpn"));
    ASSERT_EQ(ovpn_config_load(&cfg, path, NULL, err, sizeof(err)), 0);
    ASSERT_EQ(cfg.n_remotes, 2);
    ASSERT_STR_EQ(cfg.remotes[0].port, "443");
    ASSERT_STR_EQ(cfg.remotes[1].port, "1194"); /* the port line at the end of the file */
    ovpn_config_free(&cfg);
    snprintf(path, sizeof(path), "%s", tmp_path(&t, "b.ovpn"));
    ASSERT_EQ(ovpn_config_load(&cfg, path, NULL, err, sizeof(err)), 0);
    ASSERT_EQ(cfg.n_remotes, 2);
    ASSERT_STR_EQ(cfg.remotes[0].port, "22");
    ASSERT_STR_EQ(cfg.remotes[1].port, "53");
    ovpn_config_free(&cfg);
    /* The error names the line that gave the name, not the remote that inherited it. */
    snprintf(path, sizeof(path), "%s", tmp_path(&t, "c.ovpn"));
    snprintf(want, sizeof(want), "%s:2: port 'no-such-service-here' is not a service the system knows for udp "
             "(/etc/services), nor a number in 1..65535", path);
    ASSERT_EQ(ovpn_config_load(&cfg, path, NULL, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, want);
    ovpn_config_free(&cfg);
    snprintf(path, sizeof(path), "%s", tmp_path(&t, "d.ovpn"));
    snprintf(want, sizeof(want), "%s:1: port 'no-such-service-here' is not a service the system knows for udp "
             "(/etc/services), nor a number in 1..65535", path);
    ASSERT_EQ(ovpn_config_load(&cfg, path, NULL, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, want);
    ovpn_config_free(&cfg);
    tmp_cleanup(&t);
    return 0;
}

TEST_IMPL(ovpn_config_auth_user_pass)
{
    struct tmp t;
    struct ovpn_config cfg;
    char err[512] = "";
    char path[512], want[2048];

    /* Inline */
    ASSERT_EQ(parse("remote gw\n<auth-user-pass>\nuser1\npass word\n</auth-user-pass>\n", &cfg, err,
                    sizeof(err)),
              0);
    ASSERT_EQ(cfg.auth_user_pass, 1);
    ASSERT_STR_EQ(cfg.username, "user1");
    ASSERT_STR_EQ(cfg.password, "pass word");
    ovpn_config_free(&cfg);
    /* An empty line 2 is refused: OpenVPN would ask for the password, or die without a terminal. */
    expect_error("remote gw\n<auth-user-pass>\nuser1\n\n</auth-user-pass>\n",
                 "client.ovpn:2: <auth-user-pass>: the password on line 2 is empty (OpenVPN would ask for "
                 "it on the terminal; vpn2socks cannot ask)");
    expect_error("remote gw\n<auth-user-pass>\nuser1\n</auth-user-pass>\n",
                 "client.ovpn:2: <auth-user-pass>: no password on line 2");
    expect_error("remote gw\n<auth-user-pass>\n</auth-user-pass>\n",
                 "client.ovpn:2: <auth-user-pass>: no user name on line 1");
    expect_error("remote gw\nauth-user-pass a b\n", "client.ovpn:2: auth-user-pass takes 0 to 1 arguments, not 2");

    tmp_init(&t);
    tmp_file(&t, "c.ovpn", "remote gw\nauth-user-pass creds.txt\n");
    tmp_file(&t, "creds.txt", "carol\nfrom-config\n");
    tmp_file(&t, "cli.txt", "dave\nfrom-cli\nextra lines are ignored\n");
    tmp_file(&t, "short.txt", "erin\n");
    tmp_file(&t, "empty.txt", "frank\r\n\r\n");
    tmp_file(&t, "noauth.ovpn", "remote gw\n");
    tmp_file(&t, "missing.ovpn", "remote gw\nauth-user-pass gone.txt\n");
    snprintf(path, sizeof(path), "%s", tmp_path(&t, "c.ovpn"));
    ASSERT_EQ(ovpn_config_load(&cfg, path, NULL, err, sizeof(err)), 0);
    ASSERT_STR_EQ(cfg.username, "carol");
    ASSERT_STR_EQ(cfg.password, "from-config");
    ovpn_config_free(&cfg);
    /* The command line's file wins over the config's. */
    ASSERT_EQ(ovpn_config_load(&cfg, path, tmp_path(&t, "cli.txt"), err, sizeof(err)), 0);
    ASSERT_STR_EQ(cfg.username, "dave");
    ASSERT_STR_EQ(cfg.password, "from-cli");
    ovpn_config_free(&cfg);
    /* ... even when the config's is missing, and it turns auth on for a config without it. */
    snprintf(path, sizeof(path), "%s", tmp_path(&t, "missing.ovpn"));
    ASSERT_EQ(ovpn_config_load(&cfg, path, tmp_path(&t, "cli.txt"), err, sizeof(err)), 0);
    ASSERT_STR_EQ(cfg.username, "dave");
    ovpn_config_free(&cfg);
    snprintf(path, sizeof(path), "%s", tmp_path(&t, "noauth.ovpn"));
    ASSERT_EQ(ovpn_config_load(&cfg, path, tmp_path(&t, "cli.txt"), err, sizeof(err)), 0);
    ASSERT_EQ(cfg.auth_user_pass, 1);
    ovpn_config_free(&cfg);
    /* Errors name the command line's file. */
    char shortp[512];
    snprintf(shortp, sizeof(shortp), "%s", tmp_path(&t, "short.txt"));
    snprintf(want, sizeof(want), "%s: no password on line 2", shortp);
    ASSERT_EQ(ovpn_config_load(&cfg, path, shortp, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, want);
    ovpn_config_free(&cfg);
    snprintf(shortp, sizeof(shortp), "%s", tmp_path(&t, "empty.txt"));
    snprintf(want, sizeof(want), "%s: the password on line 2 is empty (OpenVPN would ask for it on the "
             "terminal; vpn2socks cannot ask)", shortp);
    ASSERT_EQ(ovpn_config_load(&cfg, path, shortp, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, want);
    ovpn_config_free(&cfg);
    char gone[512];
    snprintf(gone, sizeof(gone), "%s", tmp_path(&t, "gone.txt"));
    snprintf(want, sizeof(want), "%s: %s", gone, strerror(ENOENT));
    ASSERT_EQ(ovpn_config_load(&cfg, path, gone, err, sizeof(err)), -ENOENT);
    ASSERT_STR_EQ(err, want);
    ovpn_config_free(&cfg);
    tmp_cleanup(&t);
    return 0;
}

/* auth-nocache: the client wipes the password once sent and reads it again from where it came. */
TEST_IMPL(ovpn_config_auth_nocache)
{
    struct tmp t;
    struct ovpn_config cfg;
    char err[1024] = "", path[512], cli[512];

    tmp_init(&t);
    tmp_file(&t, "c.ovpn", "remote gw\nauth-user-pass creds.txt\nauth-nocache\n");
    tmp_file(&t, "creds.txt", "carol\nfirst\n");
    tmp_file(&t, "cli.txt", "dave\nsecond\n");
    snprintf(path, sizeof(path), "%s", tmp_path(&t, "c.ovpn"));
    snprintf(cli, sizeof(cli), "%s", tmp_path(&t, "cli.txt"));

    ASSERT_EQ(ovpn_config_load(&cfg, path, NULL, err, sizeof(err)), 0);
    ASSERT_EQ(cfg.auth_nocache, 1);
    ASSERT_STR_EQ(cfg.auth_file, tmp_path(&t, "creds.txt"));
    free(cfg.password); /* what the client does once it sent it */
    cfg.password = NULL;
    tmp_file(&t, "creds.txt", "carol\nchanged\n"); /* read again, so a change is seen */
    ASSERT_EQ(ovpn_config_reload_password(&cfg, err, sizeof(err)), 0);
    ASSERT_STR_EQ(cfg.username, "carol");
    ASSERT_STR_EQ(cfg.password, "changed");
    /* The same checks as the first time: a file opened to others meanwhile is refused. */
    ASSERT_EQ(chmod(tmp_path(&t, "creds.txt"), 0644), 0);
    ASSERT_EQ(ovpn_config_reload_password(&cfg, err, sizeof(err)), -EPERM);
    ASSERT(strstr(err, "creds.txt holds a password that other users can read (mode 0644)") != NULL);
    ovpn_config_free(&cfg);

    /* The command line's file is the one read again. */
    ASSERT_EQ(ovpn_config_load(&cfg, path, cli, err, sizeof(err)), 0);
    ASSERT_STR_EQ(cfg.auth_file, cli);
    free(cfg.password);
    cfg.password = NULL;
    ASSERT_EQ(ovpn_config_reload_password(&cfg, err, sizeof(err)), 0);
    ASSERT_STR_EQ(cfg.password, "second");
    ovpn_config_free(&cfg);

    /* Inline credentials have no file to come back from. */
    ASSERT_EQ(parse("remote gw\nauth-nocache\n<auth-user-pass>\nerin\npw\n</auth-user-pass>\n", &cfg, err,
                    sizeof(err)), 0);
    ASSERT(cfg.auth_file == NULL);
    ASSERT_EQ(ovpn_config_reload_password(&cfg, err, sizeof(err)), -ENOENT);
    ovpn_config_free(&cfg);
    tmp_cleanup(&t);
    return 0;
}

/* Loads dir/name; returns the result, err holding the message. */
static int load_in(struct tmp *t, const char *name, const char *auth, unsigned flags, char *err, size_t errcap)
{
    struct ovpn_config cfg;
    char path[512], apath[512];
    snprintf(path, sizeof(path), "%s", tmp_path(t, name));
    if (auth != NULL)
        snprintf(apath, sizeof(apath), "%s", tmp_path(t, auth));
    err[0] = '\0';
    int rc = ovpn_config_load_flags(&cfg, path, auth ? apath : NULL, flags, err, errcap);
    ovpn_config_free(&cfg);
    return rc;
}

/* "tls-crypt FILE 1", as setup guides derived from tls-auth's write it: OpenVPN 2.4 to 2.6 take
 * the second argument and ignore it (a tls-crypt key's direction is fixed by the role), so the
 * profile loads with the key read whole and no key direction set; a third argument is refused,
 * as OpenVPN refuses it. It was refused: "takes 1 argument". */
TEST_IMPL(ovpn_config_tls_crypt_direction)
{
    static const char *const lines[] = {"tls-crypt tc.key 1\n", "tls-crypt tc.key 0\n"};
    struct tmp t;
    char err[1024], key[1024], text[256];

    tmp_init(&t);
    make_static_key(key, sizeof(key), 9);
    tmp_file(&t, "ca.crt", ca_pem);
    tmp_file(&t, "client.crt", cert_pem);
    tmp_file(&t, "client.key", key_pem);
    tmp_file(&t, "tc.key", key);
    for (size_t i = 0; i < ARRAY_SIZE(lines); i++) {
        snprintf(text, sizeof(text), "client\nremote gw\nca ca.crt\ncert client.crt\nkey client.key\n%s", lines[i]);
        tmp_file(&t, "c.ovpn", text);
        struct ovpn_config cfg;
        char path[512];
        snprintf(path, sizeof(path), "%s", tmp_path(&t, "c.ovpn"));
        int rc = ovpn_config_load(&cfg, path, NULL, err, sizeof(err));
        if (rc != 0)
            TEST_FAIL_AT("%s: %d %s", lines[i], rc, err);
        ASSERT_EQ(cfg.has_tls_crypt, 1);
        ASSERT_EQ(cfg.has_tls_auth, 0);
        ASSERT_EQ(cfg.key_direction, -1);
        check_static_key(cfg.tls_crypt_key, 9);
        ovpn_config_free(&cfg);
    }
    expect_error("remote gw\ntls-crypt tc.key 1 2\n", "client.ovpn:2: tls-crypt takes 1 to 2 arguments, not 3");
    tmp_cleanup(&t);
    return 0;
}

/* Secrets in files other users can get at are refused (as ssh refuses such a private key), with
 * the file and the fix in the message; --allow-readable-secrets lets them through. */
TEST_IMPL(ovpn_config_secret_modes)
{
    struct tmp t;
    char err[1024], want[4096], text[4096], key[1024];
    v2s_log_level = V2S_LOG_ERROR; /* the allowed case warns */

    tmp_init(&t);
    make_static_key(key, sizeof(key), 7);
    tmp_file(&t, "files.ovpn", "remote gw\nca ca.crt\ncert client.crt\nkey client.key\ntls-crypt tc.key\n"
                               "auth-user-pass creds.txt\n");
    tmp_file(&t, "ca.crt", ca_pem);
    tmp_file(&t, "client.crt", cert_pem);
    tmp_file(&t, "client.key", key_pem);
    tmp_file(&t, "tc.key", key);
    tmp_file(&t, "creds.txt", "carol\npassword\n");
    tmp_file(&t, "cli.txt", "dave\npassword\n");
    /* Certificates and a config without secrets may be readable by anyone. */
    ASSERT_EQ(chmod(tmp_path(&t, "files.ovpn"), 0644), 0);
    ASSERT_EQ(chmod(tmp_path(&t, "ca.crt"), 0644), 0);
    ASSERT_EQ(chmod(tmp_path(&t, "client.crt"), 0644), 0);
    ASSERT_EQ(load_in(&t, "files.ovpn", NULL, 0, err, sizeof(err)), 0);

    /* Each file that holds a secret, opened to others in turn. */
    static const struct {
        const char *file, *option, *what;
        unsigned line;
    } files[] = {
        {"client.key", "key", "a private key", 4},
        {"tc.key", "tls-crypt", "a tls-crypt key", 5},
        {"creds.txt", "auth-user-pass", "a password", 6},
    };
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        char full[512];
        snprintf(full, sizeof(full), "%s", tmp_path(&t, files[i].file));
        ASSERT_EQ(chmod(full, 0644), 0);
        snprintf(want, sizeof(want), "%s:%u: %s '%s': %s holds %s that other users can read (mode 0644): run chmod 600 "
                 "%s, or give --allow-readable-secrets", tmp_path(&t, "files.ovpn"), files[i].line, files[i].option,
                 files[i].file, full, files[i].what, full);
        ASSERT_ROW(load_in(&t, "files.ovpn", NULL, 0, err, sizeof(err)) == -EPERM, "%zu", i);
        ASSERT_STR_EQ(err, want);
        ASSERT_ROW(load_in(&t, "files.ovpn", NULL, OVPN_CONFIG_ALLOW_READABLE_SECRETS, err, sizeof(err)) == 0, "%zu", i);
        ASSERT_EQ(chmod(full, 0600), 0);
    }

    /* Which modes count. Group read is fine only when root owns the file (root:GROUP 0640). */
    int root_owned = geteuid() == 0;
    static const struct {
        unsigned mode;
        const char *exposure; /* NULL: accepted */
    } modes[] = {
        {0600, NULL}, {0400, NULL}, {0700, NULL}, {0644, "other users can read"}, {0604, "other users can read"},
        {0602, "other users can write"}, {0620, "its group can write"}, {0660, "its group can write"},
        {0640, "its group can read"}, {0610, NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
        ASSERT_EQ(chmod(tmp_path(&t, "client.key"), modes[i].mode), 0);
        int refused = modes[i].exposure != NULL && !(root_owned && modes[i].mode == 0640);
        int rc = load_in(&t, "files.ovpn", NULL, 0, err, sizeof(err));
        ASSERT_ROW(rc == (refused ? -EPERM : 0), "mode %04o: %s", modes[i].mode, err);
        if (refused) {
            snprintf(want, sizeof(want), "%s (mode %04o)", modes[i].exposure, modes[i].mode);
            ASSERT_ROW(strstr(err, want) != NULL, "mode %04o: %s", modes[i].mode, err);
        }
    }
    ASSERT_EQ(chmod(tmp_path(&t, "client.key"), 0600), 0);

    /* The command line's password file. */
    ASSERT_EQ(chmod(tmp_path(&t, "cli.txt"), 0640), 0);
    char cli[512];
    snprintf(cli, sizeof(cli), "%s", tmp_path(&t, "cli.txt"));
    snprintf(want, sizeof(want), "%s holds a password that its group can read (mode 0640): run chmod 600 %s, or give "
             "--allow-readable-secrets", cli, cli);
    ASSERT_EQ(load_in(&t, "files.ovpn", "cli.txt", 0, err, sizeof(err)), root_owned ? 0 : -EPERM);
    if (!root_owned)
        ASSERT_STR_EQ(err, want);
    ASSERT_EQ(chmod(tmp_path(&t, "cli.txt"), 0606), 0);
    ASSERT_EQ(load_in(&t, "files.ovpn", "cli.txt", 0, err, sizeof(err)), -EPERM);
    ASSERT(strstr(err, "cli.txt holds a password that other users can read (mode 0606): run chmod 600 ") != NULL);
    ASSERT_EQ(load_in(&t, "files.ovpn", "cli.txt", OVPN_CONFIG_ALLOW_READABLE_SECRETS, err, sizeof(err)), 0);

    /* A config holding a secret inline is a secret file itself. */
    static const struct {
        const char *open, *close, *what; /* the block's text is the static key when body is NULL */
        const char *body;
    } blocks[] = {
        {"<key>\n", "</key>\n", "a private key (<key>)", key_pem},
        {"<tls-crypt>\n", "</tls-crypt>\n", "a tls-crypt key (<tls-crypt>)", NULL},
        {"key-direction 1\n<tls-auth>\n", "</tls-auth>\n", "a tls-auth key (<tls-auth>)", NULL},
        {"<auth-user-pass>\n", "</auth-user-pass>\n", "a password (<auth-user-pass>)", "erin\nsecret\n"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(blocks); i++) {
        char name[32];
        snprintf(name, sizeof(name), "inline%zu.ovpn", i);
        snprintf(text, sizeof(text), "remote gw\n<ca>\n%s</ca>\n%s%s%s", ca_pem, blocks[i].open,
                 blocks[i].body ? blocks[i].body : key, blocks[i].close);
        tmp_file(&t, name, text);
        ASSERT_EQ(chmod(tmp_path(&t, name), 0600), 0);
        ASSERT_ROW(load_in(&t, name, NULL, 0, err, sizeof(err)) == 0, "%zu: %s", i, err);
        ASSERT_EQ(chmod(tmp_path(&t, name), 0644), 0);
        char full[512];
        snprintf(full, sizeof(full), "%s", tmp_path(&t, name));
        snprintf(want, sizeof(want), "%s holds %s that other users can read (mode 0644): run chmod 600 %s, or give "
                 "--allow-readable-secrets", full, blocks[i].what, full);
        ASSERT_ROW(load_in(&t, name, NULL, 0, err, sizeof(err)) == -EPERM, "%zu", i);
        ASSERT_STR_EQ(err, want);
        ASSERT_ROW(load_in(&t, name, NULL, OVPN_CONFIG_ALLOW_READABLE_SECRETS, err, sizeof(err)) == 0, "%zu", i);
    }
    /* Only a <ca> inline: nothing secret, anyone may read it. */
    snprintf(text, sizeof(text), "remote gw\n<ca>\n%s</ca>\n", ca_pem);
    tmp_file(&t, "ca-only.ovpn", text);
    ASSERT_EQ(chmod(tmp_path(&t, "ca-only.ovpn"), 0644), 0);
    ASSERT_EQ(load_in(&t, "ca-only.ovpn", NULL, 0, err, sizeof(err)), 0);
    tmp_cleanup(&t);
    return 0;
}

TEST_IMPL(ovpn_config_errors)
{
    static const struct {
        const char *text;
        const char *err;
    } rows[] = {
        {"client\nremote gw\nfoo bar\n", "client.ovpn:3: unknown option 'foo'"},
        {"client\nremote gw\ndev tap\n",
         "client.ovpn:3: dev tap is not supported: vpn2socks carries IP packets (dev tun) only"},
        {"dev tap0\n", "client.ovpn:1: dev tap is not supported: vpn2socks carries IP packets (dev tun) only"},
        {"dev-type tap\n",
         "client.ovpn:1: dev-type tap is not supported: vpn2socks carries IP packets (dev tun) only"},
        {"dev null\n", "client.ovpn:1: dev null is not supported: vpn2socks carries IP packets (dev tun) only"},
        {"topology star\n", "client.ovpn:1: topology star: expected net30, p2p or subnet"},
        {"remote gw\nfragment 1300\n",
         "client.ovpn:2: fragment is not supported: remove it here and on the server (mssfix covers TCP)"},
        {"socks-proxy 127.0.0.1 1080\n", "client.ovpn:1: connecting through an HTTP or SOCKS proxy is not supported"},
        {"http-proxy proxy 3128\n", "client.ovpn:1: connecting through an HTTP or SOCKS proxy is not supported"},
        {"pkcs12 client.p12\n",
         "client.ovpn:1: pkcs12 is not supported: convert it (openssl pkcs12 -nodes) into ca, cert and key files"},
        {"<pkcs12>\nMIIX\n</pkcs12>\n",
         "client.ovpn:1: pkcs12 is not supported: convert it (openssl pkcs12 -nodes) into ca, cert and key files"},
        {"cryptoapicert \"SUBJ:me\"\n",
         "client.ovpn:1: keys held by a token or a certificate store are not supported: use cert and key files"},
        {"pkcs11-providers /usr/lib/p11.so\n",
         "client.ovpn:1: keys held by a token or a certificate store are not supported: use cert and key files"},
        {"secret static.key\n",
         "client.ovpn:1: secret (static key mode) is not supported: vpn2socks needs a TLS server (client, ca, "
         "cert, key)"},
        {"mode server\n", "client.ovpn:1: mode server: this is a server config; vpn2socks is a client"},
        {"tls-server\n", "client.ovpn:1: tls-server: this is a server config; vpn2socks is a client"},
        {"server 10.8.0.0 255.255.255.0\n", "client.ovpn:1: server is a server option: this is not a client config"},
        {"push \"route 10.0.0.0 255.0.0.0\"\n", "client.ovpn:1: push is a server option: this is not a client config"},
        {"askpass\n",
         "client.ovpn:1: askpass (an encrypted private key) is not supported: decrypt the key (openssl pkey -in "
         "KEY -out KEY2)"},
        {"config other.ovpn\n", "client.ovpn:1: config (reading another file) is not supported: merge the files"},
        /* Syntax */
        {"remote \"gw\n", "client.ovpn:1: no closing quotation mark (\")"},
        {"remote 'gw\n", "client.ovpn:1: no closing quotation mark (')"},
        {"ca c:\\ca.crt\n",
         "client.ovpn:1: a backslash before something other than \\, \" or a space (write \\\\ for one)"},
        {"route 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", "client.ovpn:1: too many words on one line"},
        {"remote gw\n<ca>\nabc\n", "client.ovpn:2: <ca> is not closed: no </ca> before the end of the file"},
        {"remote gw\n<ca>\n</cert>\n", "client.ovpn:2: <ca> is not closed: no </ca> before the end of the file"},
        {"remote gw\n<ca>\n</ca>\n", "client.ovpn:2: the <ca> block is empty"},
        /* A block pasted without its BEGIN line, or with something else in it, is named with its line;
         * TLS setup said only "client.ovpn: cert: not a PEM certificate". */
        {"remote gw\n<ca>\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n</ca>\n",
         "client.ovpn:2: the <ca> block is not PEM (no -----BEGIN line)"},
        {"remote gw\n\n<cert>\nsee cert.pem\n</cert>\n", "client.ovpn:3: the <cert> block is not PEM (no -----BEGIN line)"},
        {"remote gw\n<key>\n/etc/openvpn/client.key\n</key>\n",
         "client.ovpn:2: the <key> block is not PEM (no -----BEGIN line)"},
        {"remote gw\n<extra-certs>\nx\n</extra-certs>\n",
         "client.ovpn:2: the <extra-certs> block is not PEM (no -----BEGIN line)"},
        {"remote gw\n<foo>\nx\n</foo>\n", "client.ovpn:2: unknown option 'foo'"},
        {"<remote>\nx\n</remote>\n", "client.ovpn:1: remote cannot be an inline <remote> block"},
        {"remote gw\n<tls-auth>\nnot a key\n</tls-auth>\n",
         "client.ovpn:2: the <tls-auth> block is not an OpenVPN static key (256 bytes of hex between the BEGIN "
         "and END lines)"},
        {"remote gw\ntls-auth ta.key 1\ntls-crypt tc.key\n",
         "client.ovpn:3: tls-auth (line 2) and tls-crypt (line 3) cannot be used together; keep the one the "
         "server uses"},
        {"client\n", "client.ovpn: no remote: the file names no server to connect to"},
        {"", "client.ovpn: no remote: the file names no server to connect to"},
        /* Values */
        {"remote\n", "client.ovpn:1: remote takes 1 to 3 arguments, not 0"},
        {"remote a 1 udp extra\n", "client.ovpn:1: remote takes 1 to 3 arguments, not 4"},
        {"remote gw 0\n", "client.ovpn:1: port '0' is neither a number in 1..65535 nor a service name"},
        {"remote gw 65536\n", "client.ovpn:1: port '65536' is neither a number in 1..65535 nor a service name"},
        {"remote gw 99999999999999999999\n",
         "client.ovpn:1: port '99999999999999999999' is neither a number in 1..65535 nor a service name"},
        {"remote gw 443x\n", "client.ovpn:1: port '443x' is neither a number in 1..65535 nor a service name"},
        {"port a/b\nremote gw\n", "client.ovpn:1: port 'a/b' is neither a number in 1..65535 nor a service name"},
        {"remote gw 1194 sctp\n",
         "client.ovpn:1: unknown protocol 'sctp': expected udp, udp4, udp6, tcp, tcp4 or tcp6"},
        {"proto tcp-server\n", "client.ovpn:1: proto tcp-server is for servers; a client uses udp or tcp"},
        {"remote \"\"\n", "client.ovpn:1: remote: '' is not a host name or address"},
        {"remote \"a b\"\n", "client.ovpn:1: remote: 'a b' is not a host name or address"},
        {"client extra\n", "client.ovpn:1: client takes 0 arguments, not 1"},
        {"keepalive 10\n", "client.ovpn:1: keepalive takes 2 arguments, not 1"},
        {"keepalive 10 15\n",
         "client.ovpn:1: keepalive 10 15: the restart time must be at least twice the ping interval"},
        {"keepalive 0 60\n", "client.ovpn:1: keepalive: '0' is not a number of seconds in 1..4294967"},
        {"remote gw\nkeepalive 10 60\nping 5\n",
         "client.ovpn:2: keepalive conflicts with ping and ping-restart (line 3); keep one of them"},
        {"tun-mtu 99\n", "client.ovpn:1: tun-mtu: '99' is not a number in 100..65535"},
        {"tun-mtu 1500x\n", "client.ovpn:1: tun-mtu: '1500x' is not a number in 100..65535"},
        {"reneg-sec -1\n", "client.ovpn:1: reneg-sec: '-1' is not a number of seconds in 0..4294967"},
        {"ping 1000000000\n", "client.ovpn:1: ping: '1000000000' is not a number of seconds in 0..4294967"},
        {"hand-window 0\n", "client.ovpn:1: hand-window: '0' is not a number of seconds in 1..4294967"},
        {"key-direction 2\n", "client.ovpn:1: key direction '2': expected 0 or 1"},
        {"tls-auth ta.key bidirectional\n", "client.ovpn:1: key direction 'bidirectional': expected 0 or 1"},
        {"remote-cert-tls client\n", "client.ovpn:1: remote-cert-tls 'client': a client checks for 'server'"},
        {"verify-x509-name x cn\n",
         "client.ovpn:1: verify-x509-name type 'cn': expected subject, name or name-prefix"},
        {"tls-version-min 1.4\n", "client.ovpn:1: tls-version-min '1.4': expected 1.0, 1.1, 1.2 or 1.3"},
        {"comp-lzo maybe\n", "client.ovpn:1: comp-lzo 'maybe': expected yes, no or adaptive"},
        {"compress zstd\n",
         "client.ovpn:1: compress 'zstd': expected stub, stub-v2, lzo, lz4, lz4-v2 or migrate"},
        {"remote gw\nallow-compression no\ncomp-lzo\n",
         "client.ovpn:2: allow-compression no conflicts with compression turned on by comp-lzo or compress"},
        {"remote gw\ncompress lz4\nallow-compression no\n",
         "client.ovpn:3: allow-compression no conflicts with compression turned on by comp-lzo or compress"},
        {"key-method 1\n", "client.ovpn:1: key-method 1 is not supported: only key-method 2"},
        {"cipher "
         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
         "client.ovpn:1: cipher: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA...' is empty or longer than 63 "
         "characters"},
        {"route 10.0.0.0 255.0.255.0\n", "client.ovpn:1: route netmask '255.0.255.0': not an IPv4 netmask"},
        {"route vpn.example.com\n",
         "client.ovpn:1: route 'vpn.example.com': not a numeric IPv4 address (names are not resolved)"},
        {"route-ipv6 10.0.0.0/8\n", "client.ovpn:1: route-ipv6 '10.0.0.0/8': not an IPv6 prefix"},
        {"dhcp-option DNS 1.2.3\n", "client.ovpn:1: DNS server '1.2.3': not an IP address"},
        {"setenv opt\n", "client.ovpn:1: setenv opt needs an option"},
        {"setenv opt fragment 1300\n",
         "client.ovpn:1: fragment is not supported: remove it here and on the server (mssfix covers TCP)"},
        {"ignore-unknown-option foo\nremote gw\nbar\n", "client.ovpn:3: unknown option 'bar'"},
        {"bar\nignore-unknown-option bar\n", "client.ovpn:1: unknown option 'bar'"},
        /* Hostile text is shown tamed. */
        {"\x1b[31mred\n", "client.ovpn:1: unknown option '\\x1b[31mred'"},
        {"remote gw\n\x01\x02\x03 x\n", "client.ovpn:2: unknown option '\\x01\\x02\\x03'"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
        expect_error(rows[i].text, rows[i].err);
    return 0;
}

/* Times in seconds that would overflow a 32-bit millisecond timer are refused with the file and
 * line; the largest that fits is taken. So are attempt counts past 32 bits. */
TEST_IMPL(ovpn_config_timer_overflow)
{
    static const struct {
        const char *text, *err;
    } rows[] = {
        {"remote gw\nping 4294968\n",
         "client.ovpn:2: ping: 4294968 seconds is more than 4294967 (49 days), the longest time a timer here can hold"},
        {"remote gw\nping-restart 100000000\n",
         "client.ovpn:2: ping-restart: 100000000 seconds is more than 4294967 (49 days), the longest time a timer "
         "here can hold"},
        {"remote gw\nping-exit 5000000\n",
         "client.ovpn:2: ping-exit: 5000000 seconds is more than 4294967 (49 days), the longest time a timer here "
         "can hold"},
        {"remote gw\nkeepalive 10 99999999\n",
         "client.ovpn:2: keepalive: 99999999 seconds is more than 4294967 (49 days), the longest time a timer here "
         "can hold"},
        {"remote gw\nconnect-timeout 5000000\n",
         "client.ovpn:2: connect-timeout: 5000000 seconds is more than 4294967 (49 days), the longest time a timer "
         "here can hold"},
        {"<connection>\nremote gw\nconnect-timeout 4294968\n</connection>\n",
         "client.ovpn:3: connect-timeout: 4294968 seconds is more than 4294967 (49 days), the longest time a timer "
         "here can hold"},
        {"remote gw\nconnect-retry 5 4294968\n",
         "client.ovpn:2: connect-retry: 4294968 seconds is more than 4294967 (49 days), the longest time a timer "
         "here can hold"},
        {"remote gw\nhand-window 4294968\n",
         "client.ovpn:2: hand-window: 4294968 seconds is more than 4294967 (49 days), the longest time a timer here "
         "can hold"},
        {"remote gw\nserver-poll-timeout 4294968\n",
         "client.ovpn:2: server-poll-timeout: 4294968 seconds is more than 4294967 (49 days), the longest time a "
         "timer here can hold"},
        {"remote gw\nreneg-sec 3600 4294968\n",
         "client.ovpn:2: reneg-sec: 4294968 seconds is more than 4294967 (49 days), the longest time a timer here "
         "can hold"},
        /* 100000000 attempts at each of 43 remotes: over 2^32. */
        {"connect-retry-max 100000000\nremote a\nremote b\nremote c\nremote d\nremote e\nremote f\n"
         "remote g\nremote h\nremote i\nremote j\nremote k\nremote l\nremote m\nremote n\nremote o\n"
         "remote p\nremote q\nremote r\nremote s\nremote t\nremote u\nremote v\nremote w\nremote x\n"
         "remote y\nremote z\nremote aa\nremote ab\nremote ac\nremote ad\nremote ae\nremote af\n"
         "remote ag\nremote ah\nremote ai\nremote aj\nremote ak\nremote al\nremote am\nremote an\n"
         "remote ao\nremote ap\nremote aq\n",
         "client.ovpn:1: connect-retry-max 100000000 times 43 remotes is more attempts than can be counted "
         "(4294967295)"},
        {"remote gw\nreneg-bytes -1\n", "client.ovpn:2: reneg-bytes: '-1' is not a number in 0..999999999999999999"},
        {"remote gw\nreneg-pkts 1000000000000000000\n",
         "client.ovpn:2: reneg-pkts: '1000000000000000000' is not a number in 0..999999999999999999"},
        {"remote gw\nreneg-bytes 1e6\n", "client.ovpn:2: reneg-bytes: '1e6' is not a number in 0..999999999999999999"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
        expect_error(rows[i].text, rows[i].err);

    struct ovpn_config cfg;
    char err[256];
    ASSERT_EQ(parse("remote gw\nping 4294967\nping-restart 4294967\nconnect-timeout 4294967\n"
                    "hand-window 4294967\nreneg-sec 4294967\nreneg-bytes 999999999999999999\nreneg-pkts 1000\n"
                    "connect-retry-max 4294967295\n", &cfg, err, sizeof(err)), -EINVAL);
    ovpn_config_free(&cfg);
    ASSERT_EQ(parse("remote gw\nping 4294967\nping-restart 4294967\nconnect-timeout 4294967\n"
                    "hand-window 4294967\nreneg-sec 4294967\nreneg-bytes 999999999999999999\nreneg-pkts 1000\n"
                    "connect-retry-max 100000000\n", &cfg, err, sizeof(err)), 0);
    ASSERT_EQ(cfg.ping, 4294967);
    ASSERT_EQ(cfg.ping_restart, 4294967);
    ASSERT_EQ(cfg.connect_timeout, 4294967);
    ASSERT_EQ(cfg.hand_window, 4294967);
    ASSERT_EQ(cfg.reneg_sec, 4294967);
    ASSERT(cfg.reneg_bytes == 999999999999999999ULL);
    ASSERT_EQ(cfg.reneg_pkts, 1000);
    ASSERT_EQ(cfg.connect_retry_max, 100000000);
    ovpn_config_free(&cfg);
    /* Neither is set by default: reneg-sec alone renegotiates. */
    ASSERT_EQ(parse("remote gw\n", &cfg, err, sizeof(err)), 0);
    ASSERT(cfg.reneg_bytes == 0 && cfg.reneg_pkts == 0);
    ovpn_config_free(&cfg);
    return 0;
}

TEST_IMPL(ovpn_config_ignored_options)
{
    expect_ok("client\n"
              "dev tun0\n"
              "dev-type tun\n"
              "dev-node /dev/net/tun\n"
              "tls-client\n"
              "pull\n"
              "mode p2p\n"
              "persist-tun\npersist-key\nnobind\nresolv-retry infinite\nuser nobody\ngroup nogroup\n"
              "verb 4\nmute 20\nmute-replay-warnings\nscript-security 2\nauth-nocache\nfloat\ntun-ipv6\n"
              "topology subnet\nsndbuf 393216\nrcvbuf 393216\nfast-io\ntxqueuelen 1000\n"
              "block-outside-dns\nregister-dns\ndisable-dco\nping-timer-rem\nlport 0\n"
              "route-delay 2\nroute-method exe\nip-win32 dynamic\nwin-sys env\n"
              "up /etc/openvpn/update-resolv-conf\ndown /etc/openvpn/update-resolv-conf\n"
              "route-up \"/bin/sh -c 'echo hi'\"\n"
              "plugin /usr/lib/openvpn/openvpn-plugin-down-root.so down.sh\n"
              "management 127.0.0.1 7505\nmanagement-query-passwords\nmanagement-hold\n"
              "status /tmp/status.log\nlog-append /tmp/ovpn.log\n"
              "auth-retry nointeract\npush-peer-info\nns-cert-type server\n"
              "remote-cert-eku \"TLS Web Server Authentication\"\nremote-cert-ku a0 88\n"
              "key-method 2\ncomp-noadapt\nlink-mtu 1542\ntun-mtu-extra 32\nmssfix\n"
              "tls-version-max 1.3\ntls-timeout 2\ntran-window 60\nreneg-bytes 0\n"
              "providers legacy default\nifconfig 10.8.0.2 255.255.255.0\nroute-gateway 10.8.0.1\n"
              "explicit-exit-notify\nconnect-retry 2 300\nconnect-retry-max 3\nserver-poll-timeout 4\n"
              "data-ciphers-fallback AES-128-CBC\nncp-ciphers AES-256-GCM\ntls-ciphersuites "
              "TLS_AES_256_GCM_SHA384\n"
              "allow-compression asym\nallow-pull-fqdn\nblock-ipv6\ndh none\nsetenv CLIENT_CERT 0\n"
              "setenv FORWARD_COMPATIBLE 0\n"
              "remote gw\n");
    /* OpenVPN 2.6 client options that were "unknown option" here (PIA's say disable-occ). */
    expect_ok("remote gw\ndisable-occ\ntcp-queue-limit 64\nsetenv-safe FOO bar\n"
              "allow-recursive-routing\ntmp-dir /tmp\nip-remote-hint 10.0.0.1\n"
              "use-prediction-resistance\nkeying-material-exporter EXPORTER-x 32\n"
              "msg-channel 1234\nopt-verify\nudp-mtu 1500\nmax-packet-size 1400\n"
              "<connection>\nremote gw2\nudp-mtu 1500\nmax-packet-size 1400\n</connection>\n");
    return 0;
}

/* pull-filter lines, in order, with their text as the words give it. */
TEST_IMPL(ovpn_config_pull_filter)
{
    struct ovpn_config cfg;
    char err[256];
    ASSERT_EQ(parse("remote gw\n"
                    "pull-filter accept \"route 10.99.\"\n"
                    "pull-filter ignore route\n"
                    "# a comment\n"
                    "pull-filter reject 'dhcp-option DNS6'\n"
                    "pull-filter ignore \"\"\n",
                    &cfg, err, sizeof(err)), 0);
    ASSERT_EQ(cfg.n_pull_filters, 4);
    ASSERT_EQ(cfg.pull_filters[0].action, OVPN_PULL_ACCEPT);
    ASSERT_STR_EQ(cfg.pull_filters[0].text, "route 10.99.");
    ASSERT_EQ(cfg.pull_filters[0].line, 2);
    ASSERT_EQ(cfg.pull_filters[1].action, OVPN_PULL_IGNORE);
    ASSERT_STR_EQ(cfg.pull_filters[1].text, "route");
    ASSERT_EQ(cfg.pull_filters[1].line, 3);
    ASSERT_EQ(cfg.pull_filters[2].action, OVPN_PULL_REJECT);
    ASSERT_STR_EQ(cfg.pull_filters[2].text, "dhcp-option DNS6");
    ASSERT_EQ(cfg.pull_filters[2].line, 5);
    ASSERT_STR_EQ(cfg.pull_filters[3].text, "");
    ovpn_config_free(&cfg);

    expect_error("remote gw\npull-filter drop route\n",
                 "client.ovpn:2: pull-filter 'drop': expected accept, ignore or reject");
    expect_error("remote gw\npull-filter ignore\n", "client.ovpn:2: pull-filter takes 2 arguments, not 1");
    expect_error("remote gw\npull-filter ignore route 10.99.0.0\n",
                 "client.ovpn:2: pull-filter takes 2 arguments, not 3");
    expect_error("<connection>\nremote gw\npull-filter ignore route\n</connection>\n",
                 "client.ovpn:3: pull-filter cannot be used inside a <connection> block");
    return 0;
}

TEST_IMPL(ovpn_config_unknown_leniency)
{
    expect_ok("ignore-unknown-option foo --bar\nremote gw\nfoo 1 2\nbar\n<foo>\nignored\n</foo>\n");
    expect_ok("ignore-unknown-option a\nignore-unknown-option b\nremote gw\na\nb\n");
    expect_ok("setenv opt foo 1\nsetenv opt block-outside-dns\nremote gw\n");
    expect_ok("remote gw\nsetenv FORWARD_COMPATIBLE 1\nsomething-from-openvpn-3 x\nanother\n");
    expect_error("remote gw\nsetenv FORWARD_COMPATIBLE 0\nsomething-new\n",
                 "client.ovpn:3: unknown option 'something-new'");
    /* setenv opt of a known option applies it. */
    struct ovpn_config cfg;
    char err[256];
    ASSERT_EQ(parse("setenv opt tun-mtu 1400\nremote gw\n", &cfg, err, sizeof(err)), 0);
    ASSERT_EQ(cfg.tun_mtu, 1400);
    ovpn_config_free(&cfg);
    return 0;
}

TEST_IMPL(ovpn_config_compression)
{
    static const struct {
        const char *line;
        enum ovpn_comp_framing framing;
        int set;
    } rows[] = {
        {"", OVPN_COMP_FRAMING_NONE, 0},
        {"comp-lzo", OVPN_COMP_FRAMING_LZO, 1},
        {"comp-lzo yes", OVPN_COMP_FRAMING_LZO, 1},
        {"comp-lzo no", OVPN_COMP_FRAMING_LZO, 1},
        {"comp-lzo adaptive", OVPN_COMP_FRAMING_LZO, 1},
        {"compress", OVPN_COMP_FRAMING_V1, 1},
        {"compress stub", OVPN_COMP_FRAMING_V1, 1},
        {"compress lzo", OVPN_COMP_FRAMING_LZO, 1}, /* OpenVPN's lzo.c: no swap */
        {"compress lz4", OVPN_COMP_FRAMING_V1, 1},
        {"compress stub-v2", OVPN_COMP_FRAMING_V2, 1},
        {"compress lz4-v2", OVPN_COMP_FRAMING_V2, 1},
        {"compress migrate", OVPN_COMP_FRAMING_NONE, 0},
        {"comp-lzo\ncompress stub-v2", OVPN_COMP_FRAMING_V2, 1}, /* the last one wins */
        {"allow-compression no\ncomp-lzo no", OVPN_COMP_FRAMING_LZO, 1},
        {"allow-compression no\ncompress stub-v2", OVPN_COMP_FRAMING_V2, 1},
        {"allow-compression yes\ncompress lz4-v2", OVPN_COMP_FRAMING_V2, 1},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        char text[256];
        struct ovpn_config cfg;
        char err[256];
        snprintf(text, sizeof(text), "remote gw\n%s\n", rows[i].line);
        ASSERT_ROW(parse(text, &cfg, err, sizeof(err)) == 0, "%zu", i);
        ASSERT_ROW(cfg.comp == rows[i].framing && cfg.comp_set == rows[i].set, "%zu", i);
        ovpn_config_free(&cfg);
    }
    return 0;
}

TEST_IMPL(ovpn_config_values)
{
    struct ovpn_config cfg;
    char err[256] = "";
    ASSERT_EQ(parse("remote gw\n"
                    "keepalive 10 60\n"
                    "reneg-sec 0\n"
                    "hand-window 30\n"
                    "connect-retry 2\n"
                    "connect-retry-max 7\n"
                    "server-poll-timeout 9\n"
                    "connect-timeout 11\n"
                    "explicit-exit-notify 3\n"
                    "tun-mtu 1400 1500\n"
                    "mssfix 1360 mtu\n"
                    "route-nopull\n"
                    "tls-version-min 1.4 or-highest\n"
                    "verify-x509-name \"C=DE, CN=vpn\"\n"
                    "tls-ciphersuites TLS_CHACHA20_POLY1305_SHA256\n"
                    "auth SHA512\n",
                    &cfg, err, sizeof(err)),
              0);
    ASSERT_EQ(cfg.ping, 10);
    ASSERT_EQ(cfg.ping_restart, 60);
    ASSERT_EQ(cfg.reneg_sec, 0);
    ASSERT_EQ(cfg.hand_window, 30);
    ASSERT_EQ(cfg.connect_retry, 2);
    ASSERT_EQ(cfg.connect_retry_max, 7);
    ASSERT_EQ(cfg.server_poll_timeout, 9);
    ASSERT_EQ(cfg.connect_timeout, 11);
    ASSERT_EQ(cfg.explicit_exit_notify, 3);
    ASSERT_EQ(cfg.tun_mtu, 1400);
    ASSERT_EQ(cfg.mssfix, 1360);
    ASSERT_EQ(cfg.route_nopull, 1);
    ASSERT_STR_EQ(cfg.tls_version_min, "1.3");
    ASSERT_STR_EQ(cfg.verify_x509_name, "C=DE, CN=vpn");
    ASSERT_EQ(cfg.verify_x509_type, OVPN_X509_NAME_SUBJECT);
    ASSERT_STR_EQ(cfg.tls_ciphersuites, "TLS_CHACHA20_POLY1305_SHA256");
    ASSERT_STR_EQ(cfg.auth, "SHA512");
    ASSERT_EQ(cfg.replay_window, 0); /* not given: the data channel keeps OpenVPN's 64 */
    ASSERT_EQ(cfg.replay_in_order, 0);
    ovpn_config_free(&cfg);

    /* replay-window n [t], OpenVPN's bounds: n 0..65536 (0: in order only), t 0..600 s. */
    ASSERT_EQ(parse("remote gw\nreplay-window 512 30\n", &cfg, err, sizeof(err)), 0);
    ASSERT_EQ(cfg.replay_window, 512);
    ASSERT_EQ(cfg.replay_in_order, 0);
    ovpn_config_free(&cfg);
    ASSERT_EQ(parse("remote gw\nreplay-window 65536\n", &cfg, err, sizeof(err)), 0);
    ASSERT_EQ(cfg.replay_window, 65536);
    ovpn_config_free(&cfg);
    ASSERT_EQ(parse("remote gw\nreplay-window 0\n", &cfg, err, sizeof(err)), 0);
    ASSERT_EQ(cfg.replay_in_order, 1);
    ovpn_config_free(&cfg);
    expect_error("remote gw\nreplay-window 65537\n", "client.ovpn:2: replay-window: '65537' is not a number in 0..65536");
    expect_error("remote gw\nreplay-window 64 601\n", "client.ovpn:2: replay-window: '601' is not a number in 0..600");
    expect_error("remote gw\nreplay-window\n", "client.ovpn:2: replay-window takes 1 to 2 arguments, not 0");

    ASSERT_EQ(parse("remote gw\nping 15\nping-restart 120\nmssfix\nverify-x509-name vpn- name-prefix\n", &cfg,
                    err, sizeof(err)),
              0);
    ASSERT_EQ(cfg.ping, 15);
    ASSERT_EQ(cfg.ping_restart, 120);
    ASSERT_EQ(cfg.mssfix, 1492);
    ASSERT_EQ(cfg.verify_x509_type, OVPN_X509_NAME_CN_PREFIX);
    ovpn_config_free(&cfg);

    /* A later inline block replaces an earlier file name, and the other way round. */
    ASSERT_EQ(parse("remote gw\nca file.crt\n<ca>\n-----BEGIN INLINE\n</ca>\n", &cfg, err, sizeof(err)), 0);
    ASSERT_STR_EQ(cfg.ca, "-----BEGIN INLINE\n");
    ovpn_config_free(&cfg);
    ASSERT_EQ(parse("remote gw\n<ca>\n-----BEGIN INLINE\n</ca>\nca file.crt\n", &cfg, err, sizeof(err)), 0);
    ASSERT(cfg.ca == NULL);
    ovpn_config_free(&cfg);
    return 0;
}

TEST_IMPL(ovpn_config_client_routes)
{
    struct ovpn_config cfg;
    char err[256] = "";
    ASSERT_EQ(parse("remote gw\n"
                    "route 10.0.0.0 255.0.0.0\n"
                    "route 172.16.1.7 255.255.0.0 vpn_gateway 5\n"
                    "route 192.168.1.0 255.255.255.0 net_gateway\n"
                    "route 198.51.100.9\n"
                    "route remote_host 255.255.255.255 net_gateway\n"
                    "route-ipv6 fd00::/8\n"
                    "route-ipv6 2001:db8::/32 net_gateway\n"
                    "dhcp-option DNS 10.0.0.53\n"
                    "dhcp-option DNS6 fd00::53\n"
                    "dhcp-option DOMAIN corp.example\n"
                    "dhcp-option DOMAIN-SEARCH lab.example\n"
                    "dhcp-option WINS 10.0.0.9\n"
                    "dns server 0 address 10.0.0.54 [fd00::54]:53\n"
                    "redirect-gateway def1 bypass-dhcp ipv6\n",
                    &cfg, err, sizeof(err)),
              0);
    const struct tunnel_settings *s = &cfg.settings;
    ASSERT_EQ(s->n_routes, 6);
    ASSERT_STR_EQ(fmt_cidr(&s->routes[0]), "10.0.0.0/8");
    ASSERT_STR_EQ(fmt_cidr(&s->routes[1]), "172.16.0.0/16"); /* host bits cleared */
    ASSERT_STR_EQ(fmt_cidr(&s->routes[2]), "198.51.100.9/32");
    ASSERT_STR_EQ(fmt_cidr(&s->routes[3]), "fd00::/8");
    ASSERT_STR_EQ(fmt_cidr(&s->routes[4]), "0.0.0.0/0");
    ASSERT_STR_EQ(fmt_cidr(&s->routes[5]), "::/0");
    ASSERT_EQ(s->n_excludes, 2);
    ASSERT_STR_EQ(fmt_cidr(&s->excludes[0]), "192.168.1.0/24");
    ASSERT_STR_EQ(fmt_cidr(&s->excludes[1]), "2001:db8::/32");
    ASSERT_EQ(s->n_dns, 4);
    ASSERT_STR_EQ(fmt_addr(&s->dns[0]), "10.0.0.53");
    ASSERT_STR_EQ(fmt_addr(&s->dns[1]), "fd00::53");
    ASSERT_STR_EQ(fmt_addr(&s->dns[2]), "10.0.0.54");
    ASSERT_STR_EQ(fmt_addr(&s->dns[3]), "fd00::54");
    ASSERT_STR_EQ(s->domains, "corp.example lab.example");
    ovpn_config_free(&cfg);
    return 0;
}

TEST_IMPL(ovpn_config_many_remotes)
{
    enum { N = 1024 };
    size_t cap = (N + 2) * 32;
    char *text = malloc(cap);
    size_t n = 0;
    struct ovpn_config cfg;
    char err[256] = "";
    ASSERT(text != NULL);
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(text + n, cap - n, "remote host%d.example %d\n", i, i + 1);
    ASSERT_EQ(parse(text, &cfg, err, sizeof(err)), 0);
    ASSERT_EQ(cfg.n_remotes, N);
    ASSERT_STR_EQ(cfg.remotes[N - 1].host, "host1023.example");
    ASSERT_STR_EQ(cfg.remotes[N - 1].port, "1024");
    ovpn_config_free(&cfg);
    snprintf(text + n, cap - n, "remote one-too-many\n");
    ASSERT_EQ(parse(text, &cfg, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "client.ovpn:1025: more than 1024 remotes");
    ovpn_config_free(&cfg);
    free(text);
    return 0;
}

TEST_IMPL(ovpn_config_hostile)
{
    struct ovpn_config cfg;
    char err[256];
    struct ovpn_config_parser *p;

    /* An overlong line, fed in pieces so no single feed sees it all. */
    char *line = malloc(9000);
    ASSERT(line != NULL);
    memset(line, 'a', 9000);
    ASSERT_EQ(ovpn_config_parser_new(&p, "client.ovpn"), 0);
    ASSERT_EQ(ovpn_config_parser_feed(p, "remote gw\n", 10, err, sizeof(err)), 0);
    ASSERT_EQ(ovpn_config_parser_feed(p, line, 4000, err, sizeof(err)), 0);
    ASSERT_EQ(ovpn_config_parser_feed(p, line, 4000, err, sizeof(err)), 0);
    ASSERT_EQ(ovpn_config_parser_feed(p, line, 4000, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "client.ovpn:2: line longer than 8192 bytes");
    /* The error sticks. */
    ASSERT_EQ(ovpn_config_parser_feed(p, "\n", 1, err, sizeof(err)), -EINVAL);
    ASSERT_EQ(ovpn_config_parser_finish(p, &cfg, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "client.ovpn:2: line longer than 8192 bytes");
    ovpn_config_free(&cfg);
    ovpn_config_parser_free(p);
    /* 8192 bytes exactly is fine (a comment here). */
    line[0] = '#';
    ASSERT_EQ(ovpn_config_parser_new(&p, "client.ovpn"), 0);
    ASSERT_EQ(ovpn_config_parser_feed(p, line, 8192, err, sizeof(err)), 0);
    ASSERT_EQ(ovpn_config_parser_feed(p, "\nremote gw", 10, err, sizeof(err)), 0);
    ASSERT_EQ(ovpn_config_parser_finish(p, &cfg, err, sizeof(err)), 0);
    ovpn_config_free(&cfg);
    ovpn_config_parser_free(p);
    free(line);

    /* NUL bytes */
    ASSERT_EQ(parse_chunks("remote gw\nca a\0b\n", 17, 17, &cfg, err, sizeof(err)), -EINVAL);
    ASSERT_STR_EQ(err, "client.ovpn:2: a NUL byte: this is not a text file");
    ovpn_config_free(&cfg);
    ASSERT_EQ(parse_chunks("\0", 1, 1, &cfg, err, sizeof(err)), -EINVAL);
    ovpn_config_free(&cfg);

    /* An inline block that never ends, growing past 1 MiB. */
    ASSERT_EQ(ovpn_config_parser_new(&p, "client.ovpn"), 0);
    ASSERT_EQ(ovpn_config_parser_feed(p, "<ca>\n", 5, err, sizeof(err)), 0);
    char chunk[1001];
    memset(chunk, 'M', 1000);
    chunk[1000] = '\n';
    int rc = 0;
    for (int i = 0; i < 1100 && rc == 0; i++)
        rc = ovpn_config_parser_feed(p, chunk, sizeof(chunk), err, sizeof(err));
    ASSERT_EQ(rc, -EINVAL);
    ASSERT_STR_EQ(err, "client.ovpn:1: the <ca> block is larger than 1048576 bytes");
    ovpn_config_parser_free(p);

    /* Finish twice, feed after finish. */
    ASSERT_EQ(ovpn_config_parser_new(&p, "client.ovpn"), 0);
    ASSERT_EQ(ovpn_config_parser_feed(p, "remote gw\n", 10, err, sizeof(err)), 0);
    ASSERT_EQ(ovpn_config_parser_finish(p, &cfg, err, sizeof(err)), 0);
    ovpn_config_free(&cfg);
    ASSERT_EQ(ovpn_config_parser_feed(p, "remote x\n", 9, err, sizeof(err)), -EINVAL);
    ASSERT_EQ(ovpn_config_parser_finish(p, &cfg, err, sizeof(err)), -EINVAL);
    ovpn_config_free(&cfg);
    ovpn_config_parser_free(p);

    /* Pseudo-random bytes biased towards the syntax: no crash, and an error is one line. */
    uint32_t seed = 12345;
    static const char alphabet[] = "<>/\\\"' \t\n\r#;abcdeconnectiremotls-ca0123456789.:\x01\xff";
    for (int round = 0; round < 2000; round++) {
        char buf[512];
        size_t len = 0;
        seed = seed * 1103515245u + 12345u;
        size_t want = (seed >> 8) % sizeof(buf);
        while (len < want) {
            seed = seed * 1103515245u + 12345u;
            buf[len++] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
        }
        rc = parse_chunks(buf, len, len ? len : 1, &cfg, err, sizeof(err));
        ASSERT_ROW(rc == 0 || (rc == -EINVAL && strchr(err, '\n') == NULL &&
                               strncmp(err, "client.ovpn", 11) == 0), "%d", round);
        ovpn_config_free(&cfg);
    }
    return 0;
}

/* peer-fingerprint as OpenVPN 2.6 reads it: one per line, or a block of several (blank lines and
 * # or ; comments skipped); every occurrence adds to the list; exactly 32 hex pairs. */
TEST_IMPL(ovpn_config_peer_fingerprint)
{
    static const char fp_a[] = "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
                               "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
    static const char fp_b[] = "ad:b0:95:d8:09:00:00:00:00:00:00:00:00:00:00:00:"
                               "00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:01";
    char text[1024];
    struct ovpn_config cfg;
    char err[512] = "";

    snprintf(text, sizeof(text),
             "remote gw\r\n"
             "peer-fingerprint %s\r\n"
             "<peer-fingerprint>\r\n"
             "# the server's\r\n"
             "\r\n"
             "   %s  \r\n"
             "; the next one\r\n"
             "%s\r\n"
             "</peer-fingerprint>\r\n",
             fp_b, fp_a, fp_b);
    ASSERT_EQ(parse(text, &cfg, err, sizeof(err)), 0);
    ASSERT_EQ(cfg.n_peer_fingerprints, 3);
    ASSERT(cfg.ca == NULL);
    static const uint8_t want_a[OVPN_FINGERPRINT_LEN] = {
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF,
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF};
    ASSERT_MEM_EQ(cfg.peer_fingerprints[1], want_a, OVPN_FINGERPRINT_LEN);
    ASSERT_EQ(cfg.peer_fingerprints[0][0], 0xAD);
    ASSERT_EQ(cfg.peer_fingerprints[0][31], 0x01);
    ASSERT_MEM_EQ(cfg.peer_fingerprints[2], cfg.peer_fingerprints[0], OVPN_FINGERPRINT_LEN);
    ovpn_config_free(&cfg);

    /* Split at every byte: the same three. */
    ASSERT_EQ(parse_chunks(text, strlen(text), 1, &cfg, err, sizeof(err)), 0);
    ASSERT_EQ(cfg.n_peer_fingerprints, 3);
    ovpn_config_free(&cfg);

    static const struct {
        const char *text;
        const char *message;
    } bad[] = {
        {"remote gw\npeer-fingerprint 00:11\n",
         "client.ovpn:2: peer-fingerprint '00:11' is not a SHA-256 fingerprint: 32 bytes as hex pairs separated by "
         "':', as `openssl x509 -noout -fingerprint -sha256` prints them"},
        {"remote gw\npeer-fingerprint "
         "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00\n",
         "client.ovpn:2: peer-fingerprint '00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE...' is not a SHA-256 "
         "fingerprint: 32 bytes as hex pairs separated by ':', as `openssl x509 -noout -fingerprint -sha256` "
         "prints them"},
        {"remote gw\npeer-fingerprint "
         "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FG\n",
         "client.ovpn:2: peer-fingerprint '00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE...' is not a SHA-256 "
         "fingerprint: 32 bytes as hex pairs separated by ':', as `openssl x509 -noout -fingerprint -sha256` "
         "prints them"},
        {"remote gw\npeer-fingerprint "
         "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF\n",
         "client.ovpn:2: peer-fingerprint '00112233445566778899AABBCCDDEEFF001122334455...' is not a SHA-256 "
         "fingerprint: 32 bytes as hex pairs separated by ':', as `openssl x509 -noout -fingerprint -sha256` "
         "prints them"},
        {"remote gw\n<peer-fingerprint>\n# only a comment\n\n</peer-fingerprint>\n",
         "client.ovpn:2: the <peer-fingerprint> block holds no fingerprint"},
        {"remote gw\n<peer-fingerprint>\n"
         "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\n"
         "SHA256 Fingerprint=00:11\n</peer-fingerprint>\n",
         "client.ovpn:4: peer-fingerprint 'SHA256 Fingerprint=00:11' is not a SHA-256 fingerprint: 32 bytes as hex "
         "pairs separated by ':', as `openssl x509 -noout -fingerprint -sha256` prints them"},
        {"remote gw\npeer-fingerprint a b\n", "client.ovpn:2: peer-fingerprint takes 1 argument, not 2"},
        {"<connection>\nremote gw\npeer-fingerprint 00\n</connection>\n",
         "client.ovpn:3: peer-fingerprint cannot be used inside a <connection> block"},
        {"remote gw\nverify-hash 00:11 SHA256\n",
         "client.ovpn:2: verify-hash (pinning the CA's hash) is not supported: use ca, or peer-fingerprint for the "
         "server's own certificate"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        expect_error(bad[i].text, bad[i].message);
    return 0;
}

/* ---- warnings: returned by the parser, logged by the loader ---- */

struct warnings {
    char text[8][256];
    int n;
};

static void collect_warning(void *arg, const char *text)
{
    struct warnings *w = arg;
    ASSERT(w->n < 8);
    snprintf(w->text[w->n++], sizeof(w->text[0]), "%s", text);
}

/* Sends stderr (where the log goes) to path until stderr_restore; returns the saved descriptor. */
static int stderr_capture(const char *path)
{
    int saved = dup(2);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ASSERT(saved >= 0 && fd >= 0);
    fflush(stderr);
    ASSERT(dup2(fd, 2) == 2);
    close(fd);
    return saved;
}

/* Puts stderr back and returns what was written meanwhile (NUL-terminated, in buf). */
static const char *stderr_restore(int saved, const char *path, char *buf, size_t cap)
{
    fflush(stderr);
    ASSERT(dup2(saved, 2) == 2);
    close(saved);
    int fd = open(path, O_RDONLY);
    ASSERT(fd >= 0);
    ssize_t got = read(fd, buf, cap - 1);
    ASSERT(got >= 0);
    buf[got] = '\0';
    close(fd);
    return buf;
}

/* One line of each kind of warning: an accepted-but-ignored option, ping-exit, a script hook, an
 * unknown option made lenient, and plain remote lines dropped for <connection> blocks. */
static const char warn_config[] = "remote outside.example.com\n"
                                  "tls-version-max 1.3\n"
                                  "ping-exit 60\n"
                                  "up /etc/openvpn/up.sh\n"
                                  "setenv opt frobnicate 1\n"
                                  "<connection>\nremote gw\n</connection>\n";

/* The parser hands its warnings to the caller's function, in the text the log showed before, and
 * writes nothing to the log itself: stderr is captured at the most verbose log level while it
 * runs, with and without a warning function. (The parser's files do not include base/log.h at
 * all; the ctest unit.ovpn_parsers_pure checks that.) The loader, which does I/O, logs them. */
TEST_IMPL(ovpn_config_warnings_returned)
{
    static const char *const expected[] = {
        "warn.ovpn:2: tls-version-max is ignored",
        "warn.ovpn:3: ping-exit is treated as ping-restart",
        "warn.ovpn:4: up ignored: vpn2socks runs no scripts",
        "warn.ovpn:5: ignoring unknown option 'frobnicate'",
        ("warn.ovpn:1: remote lines outside <connection> blocks are ignored because the file has <connection> "
         "blocks (as OpenVPN does)"),
    };
    struct ovpn_config_parser *p;
    struct ovpn_config cfg;
    struct warnings got = {.n = 0};
    struct tmp t;
    char err[256] = "", log[4096], line[1024];

    tmp_init(&t);
    const char *capture = tmp_add(&t, "stderr.txt");
    v2s_log_level = V2S_LOG_TRACE;

    /* With a warning function: every warning arrives there, in order, and the log stays empty. */
    int saved = stderr_capture(capture);
    ASSERT_EQ(ovpn_config_parser_new(&p, "warn.ovpn"), 0);
    ovpn_config_parser_set_warn(p, collect_warning, &got);
    ASSERT_EQ(ovpn_config_parser_feed(p, warn_config, strlen(warn_config), err, sizeof(err)), 0);
    ASSERT_EQ(ovpn_config_parser_finish(p, &cfg, err, sizeof(err)), 0);
    ovpn_config_parser_free(p);
    ovpn_config_free(&cfg);
    ASSERT_STR_EQ(stderr_restore(saved, capture, log, sizeof(log)), "");
    ASSERT_EQ(got.n, (int)ARRAY_SIZE(expected));
    for (size_t i = 0; i < ARRAY_SIZE(expected); i++)
        ASSERT_STR_EQ(got.text[i], expected[i]);

    /* Without one: the warnings are dropped, still nothing is logged. */
    saved = stderr_capture(capture);
    ASSERT_EQ(ovpn_config_parser_new(&p, "warn.ovpn"), 0);
    ASSERT_EQ(ovpn_config_parser_feed(p, warn_config, strlen(warn_config), err, sizeof(err)), 0);
    ASSERT_EQ(ovpn_config_parser_finish(p, &cfg, err, sizeof(err)), 0);
    ovpn_config_parser_free(p);
    ovpn_config_free(&cfg);
    ASSERT_STR_EQ(stderr_restore(saved, capture, log, sizeof(log)), "");

    /* The loader logs each at warn level, the file named by the path it was given. */
    tmp_file(&t, "warn.ovpn", warn_config);
    char path[sizeof(t.root) + 16];
    snprintf(path, sizeof(path), "%s/warn.ovpn", t.root);
    saved = stderr_capture(capture);
    int rc = ovpn_config_load(&cfg, path, NULL, err, sizeof(err));
    stderr_restore(saved, capture, log, sizeof(log));
    ASSERT_EQ(rc, 0);
    ovpn_config_free(&cfg);
    for (size_t i = 0; i < ARRAY_SIZE(expected); i++) {
        snprintf(line, sizeof(line), " vpn2socks warn: %s%s\n", path, expected[i] + strlen("warn.ovpn"));
        ASSERT_ROW(strstr(log, line) != NULL, "%zu: %s not in the log:\n%s", i, line, log);
    }
    tmp_cleanup(&t);
    return 0;
}

/* data-ciphers as OpenVPN 2.6 reads it: '?' marks a cipher that may be missing. An unknown name
 * is left out with a warning naming the line; a list with nothing we have, or a fallback we do not
 * have, is refused. A misspelt list was taken silently and the default list offered in its place,
 * and the '?' names of OpenVPN's own example were dropped as unknown. */
TEST_IMPL(ovpn_config_data_ciphers)
{
    static const char have[] = "AES-128-GCM, AES-192-GCM, AES-256-GCM, CHACHA20-POLY1305, AES-128-CBC, "
                               "AES-192-CBC and AES-256-CBC";
    static const struct {
        const char *line, *list, *warning; /* warning: the option and the name it leaves out */
    } rows[] = {
        {"data-ciphers AES-256-GCM:AES-128-GCM:?CHACHA20-POLY1305", "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305",
         NULL},
        {"data-ciphers AES-256-GCM:?BF-CBC", "AES-256-GCM", NULL},
        {"data-ciphers AES-256-GCM:BF-CBC:aes-128-cbc", "AES-256-GCM:AES-128-CBC",
         "data-ciphers: BF-CBC"},
        {"ncp-ciphers AES256GCM:AES-128-GCM", "AES-128-GCM",
         "ncp-ciphers: AES256GCM"},
        {"data-ciphers none", "none", NULL},
    };
    char err[512], want[512], text[256];
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct ovpn_config_parser *p;
        struct ovpn_config cfg;
        struct warnings got = {.n = 0};
        snprintf(text, sizeof(text), "%s\nremote gw\n", rows[i].line);
        ASSERT_EQ(ovpn_config_parser_new(&p, "client.ovpn"), 0);
        ovpn_config_parser_set_warn(p, collect_warning, &got);
        ASSERT_EQ(ovpn_config_parser_feed(p, text, strlen(text), err, sizeof(err)), 0);
        ASSERT_ROW(ovpn_config_parser_finish(p, &cfg, err, sizeof(err)) == 0, "%s: %s", rows[i].line, err);
        ovpn_config_parser_free(p);
        ASSERT_ROW(strcmp(cfg.data_ciphers, rows[i].list) == 0, "%s: got %s", rows[i].line, cfg.data_ciphers);
        ASSERT_ROW(got.n == (rows[i].warning ? 1 : 0), "%s: %d warnings", rows[i].line, got.n);
        if (rows[i].warning) {
            snprintf(want, sizeof(want), "client.ovpn:1: %s is not a data cipher vpn2socks has (%s); left out",
                     rows[i].warning, have);
            ASSERT_STR_EQ(got.text[0], want);
        }
        ovpn_config_free(&cfg);
    }
    snprintf(want, sizeof(want), "client.ovpn:1: data-ciphers: none of 'AES256GCM:?BF-CBC' is a data cipher "
                                 "vpn2socks has (%s)", have);
    expect_error("data-ciphers AES256GCM:?BF-CBC\nremote gw\n", want);
    snprintf(want, sizeof(want), "client.ovpn:2: data-ciphers-fallback: BF-CBC is not a data cipher vpn2socks "
                                 "has (%s)", have);
    expect_error("client\ndata-ciphers-fallback BF-CBC\nremote gw\n", want);
    return 0;
}

/* Where ca, cert and key came from (a file with the line naming it, or an inline block's line),
 * for TLS setup's messages: a key that does not match the certificate was "key: does not match
 * the certificate in cert", naming neither file. The later of a block and a file wins here too. */
TEST_IMPL(ovpn_config_pem_origin)
{
    struct tmp t;
    struct ovpn_config cfg;
    char err[512] = "", want[512], text[512];
    tmp_init(&t);
    tmp_mkdir(&t, "pki");
    tmp_file(&t, "pki/ca.pem", ca_pem);
    tmp_file(&t, "client.crt", cert_pem);
    snprintf(text, sizeof(text),
             "remote gw\nca pki/ca.pem\n<cert>\n%s</cert>\ncert client.crt\n"
             "<key>\n%s</key>\n", cert_pem, key_pem);
    tmp_file(&t, "c.ovpn", text);
    ASSERT_EQ(ovpn_config_load(&cfg, tmp_path(&t, "c.ovpn"), NULL, err, sizeof(err)), 0);
    snprintf(want, sizeof(want), "ca 'pki/ca.pem' (line 2, %s/pki/ca.pem)", t.root);
    ASSERT_STR_EQ(cfg.ca_origin, want);
    snprintf(want, sizeof(want), "cert 'client.crt' (line 8, %s/client.crt)", t.root);
    ASSERT_STR_EQ(cfg.cert_origin, want);
    ASSERT_STR_EQ(cfg.key_origin, "<key> (line 9)");
    ovpn_config_free(&cfg);
    /* Parsed, not loaded: the blocks' lines, and nothing for a file not read. */
    snprintf(text, sizeof(text), "remote gw\nca ca.pem\n<cert>\n%s</cert>\n", cert_pem);
    ASSERT_EQ(parse(text, &cfg, err, sizeof(err)), 0);
    ASSERT(cfg.ca_origin == NULL);
    ASSERT_STR_EQ(cfg.cert_origin, "<cert> (line 3)");
    ASSERT(cfg.key_origin == NULL);
    ovpn_config_free(&cfg);
    tmp_cleanup(&t);
    return 0;
}

/* crl-verify FILE and <crl-verify> load the CRL text for TLS setup (test_ovpn_tls.c checks it is
 * applied); a folder of CRLs (dir) is refused with what to do. It was refused whole: "crl-verify
 * is not supported", and a profile carrying one (PIA's) did not load. */
TEST_IMPL(ovpn_config_crl_verify)
{
    static const char crl[] = "-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n";
    struct tmp t;
    struct ovpn_config cfg;
    char err[512] = "", text[512], want[512];
    snprintf(text, sizeof(text), "remote gw\n<crl-verify>\n%s</crl-verify>\n", crl);
    ASSERT_EQ(parse(text, &cfg, err, sizeof(err)), 0);
    ASSERT_STR_EQ(cfg.crl, crl);
    ASSERT_STR_EQ(cfg.crl_origin, "<crl-verify> (line 2)");
    ovpn_config_free(&cfg);
    tmp_init(&t);
    tmp_file(&t, "crl.pem", crl);
    tmp_file(&t, "c.ovpn", "remote gw\ncrl-verify crl.pem\n");
    ASSERT_EQ(ovpn_config_load(&cfg, tmp_path(&t, "c.ovpn"), NULL, err, sizeof(err)), 0);
    ASSERT_STR_EQ(cfg.crl, crl);
    snprintf(want, sizeof(want), "crl-verify 'crl.pem' (line 2, %s/crl.pem)", t.root);
    ASSERT_STR_EQ(cfg.crl_origin, want);
    ovpn_config_free(&cfg);
    tmp_cleanup(&t);
    expect_error("remote gw\ncrl-verify /etc/openvpn/crl dir\n",
                 "client.ovpn:2: crl-verify DIR dir (a folder of CRLs) is not supported: give one "
                 "file holding the CRLs (cat them together)");
    expect_error("remote gw\ncrl-verify crl.pem file\n",
                 "client.ovpn:2: crl-verify: 'file' is not dir");
    expect_error("remote gw\n<crl-verify>\nnot a crl\n</crl-verify>\n",
                 "client.ovpn:2: the <crl-verify> block is not PEM (no -----BEGIN line)");
    return 0;
}

/* Cipher names in any case, as OpenVPN 2.6 reads them, are offered spelt its way: a 2.6 server
 * matches IV_CIPHERS case-sensitively, so "data-ciphers aes-128-gcm" against a server with
 * data-ciphers AES-128-GCM found no shared cipher (PIA's profiles say "cipher aes-128-cbc"). */
TEST_IMPL(ovpn_config_cipher_case)
{
    static const struct {
        const char *text, *data_ciphers, *cipher, *fallback, *offered;
    } rows[] = {
        {"data-ciphers aes-128-gcm:?Chacha20-Poly1305\n", "AES-128-GCM:CHACHA20-POLY1305", "", "",
         "AES-128-GCM:CHACHA20-POLY1305"},
        {"cipher aes-128-cbc\n", "", "AES-128-CBC", "",
         "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305:AES-128-CBC"},
        {"data-ciphers AES-256-GCM\ndata-ciphers-fallback aes-256-cbc\n", "AES-256-GCM", "", "AES-256-CBC",
         "AES-256-GCM:AES-256-CBC"},
        {"data-ciphers NONE:aes-256-gcm\n", "none:AES-256-GCM", "", "", "none:AES-256-GCM"},
        /* A name we do not have stays as written (it is never offered). */
        {"cipher bf-cbc\n", "", "bf-cbc", "", "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct ovpn_config cfg;
        char err[512] = "", text[256], offered[512];
        snprintf(text, sizeof(text), "remote gw\n%s", rows[i].text);
        ASSERT_ROW(parse(text, &cfg, err, sizeof(err)) == 0, "%zu: %s", i, err);
        ASSERT_ROW(strcmp(cfg.data_ciphers, rows[i].data_ciphers) == 0, "%zu: data-ciphers %s", i, cfg.data_ciphers);
        ASSERT_ROW(strcmp(cfg.cipher, rows[i].cipher) == 0, "%zu: cipher %s", i, cfg.cipher);
        ASSERT_ROW(strcmp(cfg.data_ciphers_fallback, rows[i].fallback) == 0, "%zu: fallback %s", i,
                   cfg.data_ciphers_fallback);
        ovpn_km2_offered_ciphers(offered, sizeof(offered), &cfg);
        ASSERT_ROW(strcmp(offered, rows[i].offered) == 0, "%zu: offered %s", i, offered);
        ovpn_config_free(&cfg);
    }
    return 0;
}

/* A bare auth-user-pass line after the credentials were given keeps them: providers' profiles
 * often put the inline block first and the option among the others below it. OpenVPN would
 * take the bare line as "ask on the terminal", which vpn2socks cannot do, so such a profile
 * failed at start with "give them with --auth-user-pass FILE" though it holds them. */
TEST_IMPL(ovpn_config_auth_user_pass_bare_after)
{
    struct tmp t;
    struct ovpn_config cfg;
    char err[512] = "";
    ASSERT_EQ(parse("remote gw\n<auth-user-pass>\nuser1\npw1\n</auth-user-pass>\nauth-user-pass\n", &cfg, err,
                    sizeof(err)), 0);
    ASSERT_EQ(cfg.auth_user_pass, 1);
    ASSERT(cfg.username != NULL && cfg.password != NULL);
    ASSERT_STR_EQ(cfg.username, "user1");
    ASSERT_STR_EQ(cfg.password, "pw1");
    ovpn_config_free(&cfg);

    tmp_init(&t);
    tmp_file(&t, "c.ovpn", "remote gw\nauth-user-pass creds.txt\nauth-user-pass\n");
    tmp_file(&t, "creds.txt", "carol\nfrom-file\n");
    ASSERT_EQ(ovpn_config_load(&cfg, tmp_path(&t, "c.ovpn"), NULL, err, sizeof(err)), 0);
    ASSERT(cfg.username != NULL && cfg.password != NULL);
    ASSERT_STR_EQ(cfg.username, "carol");
    ASSERT_STR_EQ(cfg.password, "from-file");
    ovpn_config_free(&cfg);
    tmp_cleanup(&t);

    /* A later file or block still replaces what came before. */
    ASSERT_EQ(parse("remote gw\n<auth-user-pass>\nuser1\npw1\n</auth-user-pass>\nauth-user-pass\n"
                    "<auth-user-pass>\nuser2\npw2\n</auth-user-pass>\n", &cfg, err, sizeof(err)), 0);
    ASSERT_STR_EQ(cfg.username, "user2");
    ovpn_config_free(&cfg);
    return 0;
}

/* tls-auth with tls-crypt: the error names the file and both lines, an inline block by the line
 * that opens it. Before, it named the file only. */
TEST_IMPL(ovpn_config_tls_auth_crypt_lines)
{
    char key[2048], text[4096];
    make_static_key(key, sizeof(key), 7);
    snprintf(text, sizeof(text), "remote gw\nclient\n<tls-crypt>\n%s</tls-crypt>\ntls-auth ta.key 1\n", key);
    char want[256];
    int lines = 1;
    for (const char *c = text; *c; c++)
        lines += *c == '\n';
    /* tls-auth is the last line (the text ends with its LF). */
    snprintf(want, sizeof(want), "client.ovpn:%d: tls-auth (line %d) and tls-crypt (line 3) cannot be used together; "
             "keep the one the server uses", lines - 1, lines - 1);
    expect_error(text, want);
    return 0;
}

/* The digest of what a load read: the same files give the same digest, and a change to any of
 * them (the .ovpn, a file it names, the --auth-user-pass file) another, so that a reload with
 * --conf restarts the session exactly when one changed (app_reload_openvpn). */
static void digest_of(struct tmp *t, const char *auth, uint8_t out[OVPN_CONFIG_DIGEST_LEN])
{
    struct ovpn_config cfg;
    char err[1024], path[512], apath[512];
    snprintf(path, sizeof(path), "%s", tmp_path(t, "c.ovpn"));
    if (auth != NULL)
        snprintf(apath, sizeof(apath), "%s", tmp_path(t, auth));
    ASSERT_EQ(ovpn_config_load(&cfg, path, auth ? apath : NULL, err, sizeof(err)), 0);
    memcpy(out, cfg.digest, OVPN_CONFIG_DIGEST_LEN);
    ovpn_config_free(&cfg);
}

TEST_IMPL(ovpn_config_digest)
{
    static const uint8_t zero[OVPN_CONFIG_DIGEST_LEN];
    struct tmp t;
    char key[2048], key2[2048];
    uint8_t first[OVPN_CONFIG_DIGEST_LEN], again[OVPN_CONFIG_DIGEST_LEN], d[OVPN_CONFIG_DIGEST_LEN];

    make_static_key(key, sizeof(key), 1);
    make_static_key(key2, sizeof(key2), 2);
    tmp_init(&t);
    tmp_file(&t, "c.ovpn", "client\nremote a.example 1194\nca ca.crt\ncert c.crt\nkey c.key\ntls-crypt tc.key\n"
                           "auth-user-pass creds.txt\n");
    tmp_file(&t, "ca.crt", ca_pem);
    tmp_file(&t, "c.crt", cert_pem);
    tmp_file(&t, "c.key", key_pem);
    tmp_file(&t, "tc.key", key);
    tmp_file(&t, "creds.txt", "carol\npw\n");
    tmp_file(&t, "cli.txt", "dave\npw\n");
    digest_of(&t, NULL, first);
    ASSERT(memcmp(first, zero, sizeof(zero)) != 0);
    digest_of(&t, NULL, again);
    ASSERT(memcmp(first, again, sizeof(first)) == 0);

    /* Each file in turn: changed, the digest differs; put back, it is the first again. */
    const struct {
        const char *file, *was, *now;
    } rows[] = {
        {"c.ovpn", NULL, "client\nremote b.example 1194\nca ca.crt\ncert c.crt\nkey c.key\ntls-crypt tc.key\n"
                         "auth-user-pass creds.txt\n"},
        {"ca.crt", ca_pem, cert_pem},
        {"c.crt", cert_pem, ca_pem},
        {"c.key", key_pem, "-----BEGIN PRIVATE KEY-----\nMIIEvA==\n-----END PRIVATE KEY-----\n"},
        {"tc.key", key, key2},
        {"creds.txt", "carol\npw\n", "carol\npw2\n"},
    };
    char ovpn[512];
    snprintf(ovpn, sizeof(ovpn), "client\nremote a.example 1194\nca ca.crt\ncert c.crt\nkey c.key\ntls-crypt tc.key\n"
                                 "auth-user-pass creds.txt\n");
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        tmp_file(&t, rows[i].file, rows[i].now);
        digest_of(&t, NULL, d);
        ASSERT_ROW(memcmp(first, d, sizeof(d)) != 0, "%s changed", rows[i].file);
        tmp_file(&t, rows[i].file, rows[i].was ? rows[i].was : ovpn);
        digest_of(&t, NULL, d);
        ASSERT_ROW(memcmp(first, d, sizeof(d)) == 0, "%s put back", rows[i].file);
    }
    /* The same bytes moved from one file to another are a change too. */
    tmp_file(&t, "ca.crt", cert_pem);
    tmp_file(&t, "c.crt", ca_pem);
    digest_of(&t, NULL, d);
    ASSERT(memcmp(first, d, sizeof(d)) != 0);
    tmp_file(&t, "ca.crt", ca_pem);
    tmp_file(&t, "c.crt", cert_pem);

    /* The command line's --auth-user-pass file, which wins over the config's. */
    digest_of(&t, "cli.txt", first);
    digest_of(&t, "cli.txt", again);
    ASSERT(memcmp(first, again, sizeof(first)) == 0);
    tmp_file(&t, "creds.txt", "carol\nnot read\n");
    digest_of(&t, "cli.txt", d);
    ASSERT(memcmp(first, d, sizeof(d)) == 0); /* not read, so not a change */
    tmp_file(&t, "cli.txt", "dave\npw2\n");
    digest_of(&t, "cli.txt", d);
    ASSERT(memcmp(first, d, sizeof(d)) != 0);
    tmp_cleanup(&t);
    return 0;
}

/* A tls-crypt-v2 client key, as OpenVPN writes one, is read into Kc and WKc; every way one can be
 * wrong is refused with its own reason, and a server key given instead is named as one. */
TEST_IMPL(ovpn_tls_crypt_v2_key_parse)
{
    static const char label[] = "OpenVPN tls-crypt-v2 client key";
    uint8_t bytes[256 + 1100];
    char text[4096];
    struct ovpn_tls_crypt_v2_key k;
    const char *why = NULL;

    /* The smallest, a usual one (metadata of a type byte and a timestamp) and the largest. */
    static const size_t good[] = {290, 299, 1024};
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        size_t n = test_tcv2_key_bytes(bytes, sizeof(bytes), 11, good[i], 0);
        /* Comment lines may come first, as they do before a static key. */
        size_t len = (size_t)snprintf(text, sizeof(text), "# made by hand\n");
        test_pem_text(text + len, sizeof(text) - len, label, bytes, n);
        ASSERT_ROW(ovpn_tls_crypt_v2_key_parse(text, &k, &why) == 0, "%zu: %s", good[i], why);
        ASSERT_EQ(k.wkc_len, good[i]);
        ASSERT(memcmp(k.key, bytes, 256) == 0);
        ASSERT(memcmp(k.wkc, bytes + 256, good[i]) == 0);
    }
    /* CRLF line ends, as a key copied through Windows has them. */
    size_t n = test_tcv2_key_bytes(bytes, sizeof(bytes), 3, 299, 0);
    char crlf[4096];
    test_pem_text(text, sizeof(text), label, bytes, n);
    size_t j = 0;
    for (const char *c = text; *c; c++) {
        if (*c == '\n')
            crlf[j++] = '\r';
        crlf[j++] = *c;
    }
    crlf[j] = '\0';
    ASSERT_EQ(ovpn_tls_crypt_v2_key_parse(crlf, &k, &why), 0);
    ASSERT_EQ(k.wkc_len, 299);

    /* Each wrong key, and the reason given. */
    static const struct {
        const char *what, *label;
        size_t wkc_len;
        int skew;
        const char *edit; /* replaces the first base64 character when not NULL */
        const char *why;
    } bad[] = {
        {"a server key", "OpenVPN tls-crypt-v2 server key", 299, 0, NULL, "is a tls-crypt-v2 server key"},
        {"a static key's label", "OpenVPN Static key V1", 299, 0, NULL, "is not a tls-crypt-v2 client key"},
        {"not base64", label, 299, 0, "*", "is not valid base64"},
        {"WKc too short", label, 289, 0, NULL, "is too short"},
        {"WKc too long", label, 1025, 0, NULL, "is too long"},
        {"WKc length field one off", label, 299, 1, NULL, "length field does not match"},
        {"WKc length field zero", label, 299, -299, NULL, "length field does not match"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        n = test_tcv2_key_bytes(bytes, sizeof(bytes), 1, bad[i].wkc_len, bad[i].skew);
        test_pem_text(text, sizeof(text), bad[i].label, bytes, n);
        if (bad[i].edit)
            *(strchr(text, '\n') + 1) = bad[i].edit[0];
        memset(&k, 0x5a, sizeof(k));
        why = NULL;
        ASSERT_ROW(ovpn_tls_crypt_v2_key_parse(text, &k, &why) == -EINVAL, "%s", bad[i].what);
        ASSERT_ROW(why != NULL && strstr(why, bad[i].why) != NULL, "%s: %s", bad[i].what, why ? why : "(none)");
        /* Nothing of a refused key is left behind. */
        ASSERT_ROW(k.wkc_len == 0 && k.key[0] == 0 && k.wkc[0] == 0, "%s", bad[i].what);
    }
    /* Broken text: a padding character inside, a cut-off end, a missing END line. */
    n = test_tcv2_key_bytes(bytes, sizeof(bytes), 1, 299, 0);
    test_pem_text(text, sizeof(text), label, bytes, n);
    char *body = strchr(text, '\n') + 1;
    body[2] = '=';
    ASSERT_EQ(ovpn_tls_crypt_v2_key_parse(text, &k, &why), -EINVAL);
    ASSERT(strstr(why, "is not valid base64") != NULL);
    test_pem_text(text, sizeof(text), label, bytes, n);
    *strstr(text, "-----END") = '\0';
    ASSERT_EQ(ovpn_tls_crypt_v2_key_parse(text, &k, &why), -EINVAL);
    ASSERT(strstr(why, "has no -----END OpenVPN tls-crypt-v2 client key----- line") != NULL);
    /* 555 bytes: one base64 digit too few leaves a group of 3 with no padding. */
    test_pem_text(text, sizeof(text), label, bytes, n);
    char *end = strstr(text, "\n-----END");
    memmove(end - 1, end, strlen(end) + 1);
    ASSERT_EQ(ovpn_tls_crypt_v2_key_parse(text, &k, &why), -EINVAL);
    ASSERT_EQ(ovpn_tls_crypt_v2_key_parse("", &k, &why), -EINVAL);
    ASSERT_EQ(ovpn_tls_crypt_v2_key_parse("-----BEGIN OpenVPN tls-crypt-v2 client key-----", &k, &why), -EINVAL);
    return 0;
}

/* tls-crypt-v2 FILE and <tls-crypt-v2> load the client key; a bad one is refused naming the file
 * and the line that names it, or the line of the block; it cannot go with tls-crypt or tls-auth;
 * the second argument a server takes is accepted. It was refused: "tls-crypt-v2 is not
 * supported". */
TEST_IMPL(ovpn_config_tls_crypt_v2)
{
    struct tmp t;
    struct ovpn_config cfg;
    char err[1024], key[4096], text[8192], want[2048], path[512], full[512];
    uint8_t bytes[256 + 1100];
    size_t n = test_tcv2_key_bytes(bytes, sizeof(bytes), 21, 299, 0);

    tmp_init(&t);
    test_tcv2_key_text(key, sizeof(key), 21, 299);
    tmp_file(&t, "ca.crt", ca_pem);
    tmp_file(&t, "client.crt", cert_pem);
    tmp_file(&t, "client.key", key_pem);
    tmp_file(&t, "v2.key", key);
    static const char *const lines[] = {"tls-crypt-v2 v2.key\n", "tls-crypt-v2 v2.key force-cookie\n",
                                        "tls-crypt-v2 v2.key allow-noncookie\n"};
    for (size_t i = 0; i < ARRAY_SIZE(lines); i++) {
        snprintf(text, sizeof(text), "client\nremote gw\nca ca.crt\ncert client.crt\nkey client.key\n%s", lines[i]);
        tmp_file(&t, "c.ovpn", text);
        snprintf(path, sizeof(path), "%s", tmp_path(&t, "c.ovpn"));
        int rc = ovpn_config_load(&cfg, path, NULL, err, sizeof(err));
        if (rc != 0)
            TEST_FAIL_AT("%s: %d %s", lines[i], rc, err);
        ASSERT_EQ(cfg.has_tls_crypt_v2, 1);
        ASSERT_EQ(cfg.has_tls_crypt, 0);
        ASSERT_EQ(cfg.tls_crypt_v2.wkc_len, 299);
        ASSERT(memcmp(cfg.tls_crypt_v2.key, bytes, 256) == 0);
        ASSERT(memcmp(cfg.tls_crypt_v2.wkc, bytes + 256, n - 256) == 0);
        ovpn_config_free(&cfg);
    }
    /* Inline. */
    snprintf(text, sizeof(text), "client\nremote gw\n<tls-crypt-v2>\n%s</tls-crypt-v2>\n", key);
    ASSERT_EQ(parse(text, &cfg, err, sizeof(err)), 0);
    ASSERT_EQ(cfg.has_tls_crypt_v2, 1);
    ASSERT(memcmp(cfg.tls_crypt_v2.wkc, bytes + 256, n - 256) == 0);
    ovpn_config_free(&cfg);

    /* A server key in the file: refused naming the file, its line, and what to do. */
    test_pem_text(key, sizeof(key), "OpenVPN tls-crypt-v2 server key", bytes, 128);
    tmp_file(&t, "srv.key", key);
    tmp_file(&t, "c.ovpn", "client\nremote gw\nca ca.crt\ncert client.crt\nkey client.key\ntls-crypt-v2 srv.key\n");
    snprintf(path, sizeof(path), "%s", tmp_path(&t, "c.ovpn"));
    snprintf(full, sizeof(full), "%s", tmp_path(&t, "srv.key"));
    ASSERT_EQ(ovpn_config_load(&cfg, path, NULL, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "%s:6: tls-crypt-v2 'srv.key': %s is a tls-crypt-v2 server key, which stays on "
             "the server; the client needs a client key made from it (openvpn --tls-crypt-v2 server.key --genkey "
             "tls-crypt-v2-client client.key)", path, full);
    ASSERT_STR_EQ(err, want);
    ovpn_config_free(&cfg);
    /* Damaged, in a file and inline. */
    test_tcv2_key_text(key, sizeof(key), 21, 299);
    key[strlen(key) - 60] = '!'; /* in the last base64 line, before the END line */
    tmp_file(&t, "bad.key", key);
    tmp_file(&t, "c.ovpn", "client\nremote gw\nca ca.crt\ncert client.crt\nkey client.key\ntls-crypt-v2 bad.key\n");
    snprintf(full, sizeof(full), "%s", tmp_path(&t, "bad.key"));
    ASSERT_EQ(ovpn_config_load(&cfg, path, NULL, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "%s:6: tls-crypt-v2 'bad.key': %s is not valid base64 between its BEGIN and END "
             "lines", path, full);
    ASSERT_STR_EQ(err, want);
    ovpn_config_free(&cfg);
    snprintf(text, sizeof(text), "client\nremote gw\n\n<tls-crypt-v2>\n%s</tls-crypt-v2>\n", key);
    expect_error(text, "client.ovpn:4: the <tls-crypt-v2> block is not valid base64 between its BEGIN and END lines");
    tmp_file(&t, "c.ovpn", "client\nremote gw\nca ca.crt\ncert client.crt\nkey client.key\ntls-crypt-v2 none.key\n");
    ASSERT(ovpn_config_load(&cfg, path, NULL, err, sizeof(err)) < 0);
    ASSERT(strstr(err, ":6: tls-crypt-v2 'none.key'") != NULL);
    ovpn_config_free(&cfg);

    /* With another control channel key, and a server's argument misspelt. */
    test_tcv2_key_text(key, sizeof(key), 21, 299);
    snprintf(text, sizeof(text), "remote gw\ntls-crypt tc.key\n<tls-crypt-v2>\n%s</tls-crypt-v2>\n", key);
    expect_error(text, "client.ovpn:3: tls-crypt (line 2) and tls-crypt-v2 (line 3) cannot be used together; keep "
                       "the one the server uses");
    expect_error("remote gw\ntls-crypt-v2 v2.key\ntls-auth ta.key 1\n",
                 "client.ovpn:3: tls-auth (line 3) and tls-crypt-v2 (line 2) cannot be used together; keep the one "
                 "the server uses");
    expect_error("remote gw\ntls-crypt-v2 v2.key force\n",
                 "client.ovpn:2: tls-crypt-v2: unknown argument 'force' (force-cookie or allow-noncookie)");
    /* <connection> blocks may share the key, not differ in it. */
    expect_ok("remote gw\n<connection>\nremote a\ntls-crypt-v2 v2.key\n</connection>\n"
              "<connection>\nremote b\ntls-crypt-v2 v2.key\n</connection>\n");
    expect_error("remote gw\n<connection>\nremote a\ntls-crypt-v2 v2.key\n</connection>\n"
                 "<connection>\nremote b\ntls-crypt-v2 other.key\n</connection>\n",
                 "client.ovpn:8: <connection> blocks with different tls-crypt-v2 keys are not supported");
    tmp_cleanup(&t);
    return 0;
}
