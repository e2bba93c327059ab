/* .ovpn configuration: the line splitter, the push parser over a file's text, the loader that
 * reads the files a config names, and the static key reader.
 *
 * What OpenVPN 2.6 does and we follow (options.c read_config_file, parse_line, add_option):
 * - Lines are split into words at whitespace; "double quotes" allow \\, \" and "\ " escapes,
 *   'single quotes' none; outside single quotes a backslash may only precede \, " or a space.
 *   A word starting with # or ; starts a comment. A leading "--" on the option name is dropped, and
 *   a UTF-8 byte order mark at the start of the file is skipped.
 * - A line that is one word "<tag>" opens an inline block that runs to the first line whose text,
 *   after leading whitespace, starts with "</tag>"; the block's text is the option's argument.
 * - <connection> blocks hold one remote each and the options allowed per connection. They start
 *   from the proto and port set above them; when a file has them, its plain remote lines are
 *   ignored. Plain remote lines take the proto and port in force at the end of the file.
 * - "setenv opt X ..." and a preceding "ignore-unknown-option X" make an unknown X a warning, as
 *   does "setenv FORWARD_COMPATIBLE 1" for every later unknown option; anything else unknown is
 *   an error.
 * - keepalive A B on a client is ping A plus ping-restart B, and conflicts with ping and
 *   ping-restart. comp-lzo with any argument and compress pick the compression framing.
 * Where we differ: options a TUN client needs are honoured, options that only matter to a TUN
 * device are accepted and ignored, and options that cannot work here (tap, proxies, tokens,
 * static keys, server options, fragment) are refused with a reason instead of misbehaving later.
 * Relative file names are resolved against the config file's folder (or its "cd" folder). */
#include "tunnel/openvpn/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "tunnel/openvpn/push.h"

enum {
    CONFIG_MAX_WORDS = 16,           /* OpenVPN's MAX_PARMS */
    CONFIG_MAX_LINE = 8192,          /* OpenVPN stops at 256; PEM and base64 lines are shorter */
    CONFIG_MAX_BLOCK = 1 << 20,      /* one inline block */
    CONFIG_MAX_FILE = 1 << 20,       /* one file the config names */
    CONFIG_MAX_CONFIG = 8 << 20,     /* the config itself */
    CONFIG_MAX_REMOTES = 1024,
    CONFIG_MAX_IGNORED = 256,        /* names given to ignore-unknown-option */
    CONFIG_MAX_FINGERPRINTS = 1024,  /* peer-fingerprint entries */
    CONFIG_MAX_PULL_FILTERS = 1024,
    CONFIG_MAX_NUMBER = 100000000,   /* any count; larger is a typo or an attack */
    /* Any time in seconds: the client keeps timers in milliseconds in 32 bits, so 49.7 days. */
    CONFIG_MAX_SECONDS = 4294967,
    CONFIG_MAX_CRED = 4096,          /* a user name or password (OpenVPN's USER_PASS_LEN) */
    CONFIG_MAX_TAG = 64,
    CONFIG_SHOWN_MAX = 48,
    CONFIG_ERR_MAX = 768,            /* a secret file's message names its full path twice */
    CONFIG_MTU_MIN = 100,            /* OpenVPN's TUN_MTU_MIN */
    CONFIG_MTU_MAX = 65535,
    CONFIG_MSSFIX_DEFAULT = 1492,    /* "mssfix" without a value, as OpenVPN */
};

/* Files a config may name; resolved by ovpn_config_load(). */
enum config_ref {
    CONFIG_REF_CA,
    CONFIG_REF_CERT,
    CONFIG_REF_KEY,
    CONFIG_REF_EXTRA_CERTS,
    CONFIG_REF_TLS_AUTH,
    CONFIG_REF_TLS_CRYPT,
    CONFIG_REF_AUTH_USER_PASS,
    CONFIG_REF_COUNT,
};

static const char *const config_ref_names[CONFIG_REF_COUNT] = {
    "ca", "cert", "key", "extra-certs", "tls-auth", "tls-crypt", "auth-user-pass",
};

struct config_file_ref {
    char *path;    /* as written; NULL when none */
    unsigned line;
};

/* What a remote takes when it does not say: the file's settings or its <connection> block's. */
struct config_ce {
    enum ovpn_proto proto;
    int family;
    char port[sizeof(((struct ovpn_remote *)0)->port)];
};

struct config_remote {
    struct ovpn_remote r;
    int port_given;
    int proto_given;
    int in_connection;
    unsigned line;
};

struct config_option;

struct ovpn_config_parser {
    char *name;
    unsigned line_no;               /* lines seen so far */
    unsigned opt_line;              /* the line an error names: the option's, or its block's */
    int error;                      /* sticky: once set, every call returns it */
    int finished;
    char err[CONFIG_ERR_MAX];
    char *line;                     /* the partial line, CONFIG_MAX_LINE + 1 bytes */
    size_t line_len;

    /* An open inline block: tag[0] != 0. opt is NULL when the block is read and dropped. */
    char block_tag[CONFIG_MAX_TAG];
    const struct config_option *block_opt;
    unsigned block_line;
    char *block;
    size_t block_len, block_cap;

    int in_connection;
    unsigned conn_line;
    struct config_ce conn_ce;
    struct config_remote conn_remote;
    int conn_has_remote;
    int has_connections;

    struct config_ce ce;
    struct config_remote *remotes;
    size_t n_remotes, cap_remotes;

    char **ignored;
    size_t n_ignored;
    int forward_compatible;

    struct config_file_ref refs[CONFIG_REF_COUNT];
    char *cd;
    unsigned keepalive_line, keepalive_ping, keepalive_restart;
    unsigned ping_line;
    unsigned connect_retry_max_line;
    unsigned allow_comp_no_line;
    int comp_compresses;            /* the framing picked also compresses (not a stub) */

    struct ovpn_config cfg;
};

/* ---- small helpers ---- */

static void config_free_secret(char **s)
{
    if (*s != NULL) {
        explicit_bzero(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

/* Records "NAME:LINE: why" (line 0: "NAME: why") as the parser's sticky error. */
static int config_fail_at(struct ovpn_config_parser *p, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int config_fail_at(struct ovpn_config_parser *p, unsigned line, const char *fmt, ...)
{
    int n = line > 0 ? snprintf(p->err, sizeof(p->err), "%s:%u: ", p->name, line)
                     : snprintf(p->err, sizeof(p->err), "%s: ", p->name);
    if (n >= 0 && (size_t)n < sizeof(p->err)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + n, sizeof(p->err) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    p->error = -EINVAL;
    return -EINVAL;
}

#define config_fail(p, ...) config_fail_at((p), (p)->opt_line, __VA_ARGS__)

static int config_nomem(struct ovpn_config_parser *p)
{
    snprintf(p->err, sizeof(p->err), "%s: out of memory", p->name);
    p->error = -ENOMEM;
    return -ENOMEM;
}

static void config_copy_err(char *err, size_t errcap, const char *text)
{
    if (err != NULL && errcap > 0)
        snprintf(err, errcap, "%s", text);
}

static int config_number(struct ovpn_config_parser *p, const char *option, const char *text,
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

/* A time in seconds, min..CONFIG_MAX_SECONDS; a number past that is named as a timer overflow. */
static int config_seconds(struct ovpn_config_parser *p, const char *option, const char *text, unsigned long min,
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

/* A 64-bit count (reneg-bytes, reneg-pkts), 0..10^18 - 1: decimal digits only. */
static int config_number64(struct ovpn_config_parser *p, const char *option, const char *text, uint64_t *out)
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

static int config_copy_name(struct ovpn_config_parser *p, char *dst, size_t cap, char **w)
{
    size_t len = strlen(w[1]);
    char shown[CONFIG_SHOWN_MAX];
    if (len == 0 || len >= cap)
        return config_fail(p, "%s: '%s' is empty or longer than %zu characters", w[0],
                           v2s_shown(w[1], shown, sizeof(shown)), cap - 1);
    memcpy(dst, w[1], len + 1);
    return 0;
}

static int config_set_string(struct ovpn_config_parser *p, char **dst, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return config_nomem(p);
    free(*dst);
    *dst = copy;
    return 0;
}

/* ---- splitting lines into words ---- */

static int config_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The splitter behind ovpn_split_words, with a reason for the failures. It writes each word over
 * the text it came from: the write position never passes the read position. */
static int config_split(char *buf, char **words, int max, const char **why)
{
    enum { SPLIT_BETWEEN, SPLIT_PLAIN, SPLIT_DQUOTE, SPLIT_SQUOTE } state = SPLIT_BETWEEN;
    const char *in = buf;
    char *out = buf;
    int n = 0;
    int backslash = 0;

    for (;; in++) {
        char c = *in;
        char emit = 0;
        int has_emit = 0, word_end = 0;

        if (!backslash && c == '\\' && state != SPLIT_SQUOTE) {
            backslash = 1;
            continue;
        }
        switch (state) {
        case SPLIT_BETWEEN:
            if (c == '\0' || config_is_space(c))
                break;
            if (c == '#' || c == ';')
                goto done; /* a comment, even right after a backslash (as OpenVPN) */
            if (n == max) {
                *why = "too many words on one line";
                return -EINVAL;
            }
            words[n] = out;
            if (!backslash && c == '"') {
                state = SPLIT_DQUOTE;
            } else if (!backslash && c == '\'') {
                state = SPLIT_SQUOTE;
            } else {
                emit = c;
                has_emit = 1;
                state = SPLIT_PLAIN;
            }
            break;
        case SPLIT_PLAIN:
            if (c == '\0' && backslash) {
                *why = "a backslash at the end of the line";
                return -EINVAL;
            }
            if (!backslash && (c == '\0' || config_is_space(c))) {
                word_end = 1;
            } else {
                emit = c;
                has_emit = 1;
            }
            break;
        case SPLIT_DQUOTE:
            if (c == '\0') {
                *why = "no closing quotation mark (\")";
                return -EINVAL;
            }
            if (!backslash && c == '"') {
                word_end = 1;
            } else {
                emit = c;
                has_emit = 1;
            }
            break;
        case SPLIT_SQUOTE:
            if (c == '\0') {
                *why = "no closing quotation mark (')";
                return -EINVAL;
            }
            if (c == '\'') {
                word_end = 1;
            } else {
                emit = c;
                has_emit = 1;
            }
            break;
        }
        if (backslash && has_emit && !(emit == '\\' || emit == '"' || config_is_space(emit))) {
            *why = "a backslash before something other than \\, \" or a space (write \\\\ for one)";
            return -EINVAL;
        }
        backslash = 0;
        if (has_emit)
            *out++ = emit;
        if (word_end) {
            *out++ = '\0';
            n++;
            state = SPLIT_BETWEEN;
        }
        if (c == '\0')
            break;
    }
done:
    /* A comment may end the line while a word is open only between words, so nothing is open. */
    return n;
}

int ovpn_split_words(char *buf, char **words, int max)
{
    const char *why;
    return config_split(buf, words, max, &why);
}

/* ---- static keys ---- */

static int config_hex(char c)
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
            if (config_is_space(*p))
                continue;
            if ((v = config_hex(*p)) < 0 || n == sizeof(key))
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

/* ---- user name and password ---- */

/* Line 1 is the user, line 2 the password (possibly empty); CR and LF are stripped. */
static int config_user_pass(const char *text, char **user, char **pass, const char **why)
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
    if (ulen > CONFIG_MAX_CRED || plen > CONFIG_MAX_CRED) {
        *why = "user name or password longer than 4096 bytes";
        return -EINVAL;
    }
    *user = strndup(text, ulen);
    *pass = strndup(ptext, plen);
    if (*user == NULL || *pass == NULL) {
        config_free_secret(user);
        config_free_secret(pass);
        *why = "out of memory";
        return -ENOMEM;
    }
    return 0;
}

/* ---- the option table ---- */

typedef int (*config_apply_fn)(struct ovpn_config_parser *p, char **w, int n, const char *block);

enum config_kind {
    CONFIG_APPLY,   /* read by apply */
    CONFIG_IGNORE,  /* matters only to a TUN device or to OpenVPN's process: accepted silently */
    CONFIG_WARN,    /* accepted, not acted on, and the user should know */
    CONFIG_SCRIPT,  /* a script hook: never run */
    CONFIG_REFUSE,  /* cannot work here: an error with the reason in note */
    CONFIG_SERVER,  /* a server's option: an error */
};

enum {
    CONFIG_CONN = 1,   /* allowed inside <connection> */
    CONFIG_BLOCK = 2,  /* may be an inline <name> block */
};

struct config_option {
    const char *name;
    enum config_kind kind;
    unsigned flags;
    int min_args, max_args;
    config_apply_fn apply;
    const char *note;
};

/* ---- appliers ---- */

static int config_apply_client(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)w, (void)n, (void)block;
    p->cfg.pull = 1;
    return 0;
}

static const char config_tun_only[] = "vpn2socks carries IP packets (dev tun) only";

static int config_apply_dev(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    if (strncmp(w[1], "tap", 3) == 0)
        return config_fail(p, "dev tap is not supported: %s", config_tun_only);
    if (strcmp(w[1], "null") == 0)
        return config_fail(p, "dev null is not supported: %s", config_tun_only);
    return 0; /* "tun", "tun0", or a name that dev-type tun qualifies */
}

static int config_apply_dev_type(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char shown[CONFIG_SHOWN_MAX];
    (void)n, (void)block;
    if (strcmp(w[1], "tun") == 0)
        return 0;
    return config_fail(p, "dev-type %s is not supported: %s", v2s_shown(w[1], shown, sizeof(shown)), config_tun_only);
}

static int config_apply_mode(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char shown[CONFIG_SHOWN_MAX];
    (void)n, (void)block;
    if (strcmp(w[1], "p2p") == 0)
        return 0;
    if (strcmp(w[1], "server") == 0)
        return config_fail(p, "mode server: this is a server config; vpn2socks is a client");
    return config_fail(p, "mode '%s': expected p2p", v2s_shown(w[1], shown, sizeof(shown)));
}

struct config_proto_name {
    const char *name;
    enum ovpn_proto proto;
    int family;
};

static const struct config_proto_name config_protos[] = {
    {"udp", OVPN_PROTO_UDP, 0},          {"udp4", OVPN_PROTO_UDP, AF_INET},
    {"udp6", OVPN_PROTO_UDP, AF_INET6},  {"tcp", OVPN_PROTO_TCP, 0},
    {"tcp4", OVPN_PROTO_TCP, AF_INET},   {"tcp6", OVPN_PROTO_TCP, AF_INET6},
    {"tcp-client", OVPN_PROTO_TCP, 0},   {"tcp4-client", OVPN_PROTO_TCP, AF_INET},
    {"tcp6-client", OVPN_PROTO_TCP, AF_INET6},
};

static int config_parse_proto(struct ovpn_config_parser *p, const char *text, enum ovpn_proto *proto,
                              int *family)
{
    char shown[CONFIG_SHOWN_MAX];
    for (size_t i = 0; i < sizeof(config_protos) / sizeof(config_protos[0]); i++) {
        if (strcmp(text, config_protos[i].name) == 0) {
            *proto = config_protos[i].proto;
            *family = config_protos[i].family;
            return 0;
        }
    }
    if (strstr(text, "-server") != NULL)
        return config_fail(p, "proto %s is for servers; a client uses udp or tcp", v2s_shown(text, shown, sizeof(shown)));
    return config_fail(p, "unknown protocol '%s': expected udp, udp4, udp6, tcp, tcp4 or tcp6",
                       v2s_shown(text, shown, sizeof(shown)));
}

static int config_parse_port(struct ovpn_config_parser *p, const char *text, char *port, size_t cap)
{
    unsigned long v;
    char shown[CONFIG_SHOWN_MAX];
    if (v2s_parse_uint(text, 65535, &v) != 0 || v == 0)
        return config_fail(p, "port '%s' is not a number in 1..65535", v2s_shown(text, shown, sizeof(shown)));
    snprintf(port, cap, "%u", (unsigned)(v & 0xFFFF)); /* v <= 65535 */
    return 0;
}

static struct config_ce *config_current_ce(struct ovpn_config_parser *p)
{
    return p->in_connection ? &p->conn_ce : &p->ce;
}

static int config_apply_proto(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    struct config_ce *ce = config_current_ce(p);
    (void)n, (void)block;
    return config_parse_proto(p, w[1], &ce->proto, &ce->family);
}

static int config_apply_port(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    struct config_ce *ce = config_current_ce(p);
    (void)n, (void)block;
    return config_parse_port(p, w[1], ce->port, sizeof(ce->port));
}

static int config_append_remote(struct ovpn_config_parser *p, const struct config_remote *r)
{
    if (p->n_remotes >= CONFIG_MAX_REMOTES)
        return config_fail(p, "more than %d remotes", CONFIG_MAX_REMOTES);
    if (p->n_remotes == p->cap_remotes) {
        size_t cap = p->cap_remotes ? p->cap_remotes * 2 : 8;
        struct config_remote *grown = realloc(p->remotes, cap * sizeof(*grown));
        if (grown == NULL)
            return config_nomem(p);
        p->remotes = grown;
        p->cap_remotes = cap;
    }
    p->remotes[p->n_remotes++] = *r;
    return 0;
}

/* remote host [port [proto]] */
static int config_apply_remote(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    struct config_remote r;
    char shown[CONFIG_SHOWN_MAX];
    size_t len = strlen(w[1]);
    int rc;
    (void)block;

    memset(&r, 0, sizeof(r));
    if (len == 0 || len >= sizeof(r.r.host))
        return config_fail(p, "remote: '%s' is not a host name or address", v2s_shown(w[1], shown, sizeof(shown)));
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)w[1][i];
        if (c <= 0x20 || c == 0x7F)
            return config_fail(p, "remote: '%s' is not a host name or address", v2s_shown(w[1], shown, sizeof(shown)));
    }
    memcpy(r.r.host, w[1], len + 1);
    if (n >= 3) {
        if ((rc = config_parse_port(p, w[2], r.r.port, sizeof(r.r.port))) < 0)
            return rc;
        r.port_given = 1;
    }
    if (n >= 4) {
        if ((rc = config_parse_proto(p, w[3], &r.r.proto, &r.r.family)) < 0)
            return rc;
        r.proto_given = 1;
    }
    r.line = p->opt_line;
    if (!p->in_connection)
        return config_append_remote(p, &r);
    if (p->conn_has_remote)
        return config_fail(p, "a <connection> block takes exactly one remote");
    r.in_connection = 1;
    p->conn_remote = r;
    p->conn_has_remote = 1;
    return 0;
}

static int config_apply_remote_random(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)w, (void)n, (void)block;
    p->cfg.remote_random = 1;
    return 0;
}

static int config_apply_connection(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)w, (void)n, (void)block;
    return config_fail(p, "connection must be an inline <connection> ... </connection> block");
}

/* Sets a PEM field from an inline block, or records the file that holds it. The later of the two
 * wins, as with any repeated option. */
static int config_set_text(struct ovpn_config_parser *p, enum config_ref ref, char **field, char **w,
                           const char *block)
{
    struct config_file_ref *fr = &p->refs[ref];
    if (block != NULL) {
        if (block[0] == '\0')
            return config_fail(p, "the <%s> block is empty", config_ref_names[ref]);
        char *copy = strdup(block);
        if (copy == NULL)
            return config_nomem(p);
        config_free_secret(field);
        *field = copy;
        free(fr->path);
        fr->path = NULL;
        return 0;
    }
    char *path = strdup(w[1]);
    if (path == NULL)
        return config_nomem(p);
    config_free_secret(field);
    free(fr->path);
    fr->path = path;
    fr->line = p->opt_line;
    return 0;
}

static int config_apply_ca(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n;
    return config_set_text(p, CONFIG_REF_CA, &p->cfg.ca, w, block);
}

static int config_apply_cert(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n;
    return config_set_text(p, CONFIG_REF_CERT, &p->cfg.cert, w, block);
}

static int config_apply_key(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n;
    return config_set_text(p, CONFIG_REF_KEY, &p->cfg.key, w, block);
}

static int config_apply_extra_certs(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n;
    return config_set_text(p, CONFIG_REF_EXTRA_CERTS, &p->cfg.extra_certs, w, block);
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

/* tls-auth and tls-crypt: an inline key is read now, a file by the loader. Per-connection keys
 * are shared by every connection, so two blocks may not name different ones. */
static int config_set_static_key(struct ovpn_config_parser *p, enum config_ref ref, uint8_t *key,
                                 int *has_key, char **w, const char *block)
{
    struct config_file_ref *fr = &p->refs[ref];
    const char *name = config_ref_names[ref];

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
    if (p->in_connection && (*has_key || (fr->path != NULL && strcmp(fr->path, w[1]) != 0)))
        return config_fail(p, "<connection> blocks with different %s keys are not supported", name);
    char *path = strdup(w[1]);
    if (path == NULL)
        return config_nomem(p);
    free(fr->path);
    fr->path = path;
    fr->line = p->opt_line;
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

static int config_apply_tls_crypt(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n;
    return config_set_static_key(p, CONFIG_REF_TLS_CRYPT, p->cfg.tls_crypt_key, &p->cfg.has_tls_crypt, w,
                                  block);
}

static int config_apply_auth_user_pass(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    struct config_file_ref *fr = &p->refs[CONFIG_REF_AUTH_USER_PASS];
    p->cfg.auth_user_pass = 1;
    config_free_secret(&p->cfg.username);
    config_free_secret(&p->cfg.password);
    free(fr->path);
    fr->path = NULL;
    if (block != NULL) {
        const char *why;
        int rc = config_user_pass(block, &p->cfg.username, &p->cfg.password, &why);
        if (rc == -ENOMEM)
            return config_nomem(p);
        if (rc < 0)
            return config_fail(p, "<auth-user-pass>: %s", why);
        return 0;
    }
    if (n == 1)
        return 0; /* asked for, not given: the command line must supply it */
    if ((fr->path = strdup(w[1])) == NULL)
        return config_nomem(p);
    fr->line = p->opt_line;
    return 0;
}

static int config_apply_auth_nocache(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)w, (void)n, (void)block;
    p->cfg.auth_nocache = 1;
    return 0;
}

static int config_apply_cipher(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    return config_copy_name(p, p->cfg.cipher, sizeof(p->cfg.cipher), w);
}

static int config_apply_data_ciphers(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    return config_copy_name(p, p->cfg.data_ciphers, sizeof(p->cfg.data_ciphers), w);
}

static int config_apply_data_ciphers_fallback(struct ovpn_config_parser *p, char **w, int n,
                                              const char *block)
{
    (void)n, (void)block;
    return config_copy_name(p, p->cfg.data_ciphers_fallback, sizeof(p->cfg.data_ciphers_fallback), w);
}

static int config_apply_auth(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    return config_copy_name(p, p->cfg.auth, sizeof(p->cfg.auth), w);
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
    return config_set_string(p, &p->cfg.tls_cipher, w[1]);
}

static int config_apply_tls_ciphersuites(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    return config_set_string(p, &p->cfg.tls_ciphersuites, w[1]);
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
    return config_set_string(p, &p->cfg.verify_x509_name, w[1]);
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
        int high = config_hex(text[i]), low = config_hex(text[i + 1]);
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
        return config_fail_at(p, line,
                              "peer-fingerprint '%s' is not a SHA-256 fingerprint: 32 bytes as hex pairs "
                              "separated by ':', as `openssl x509 -noout -fingerprint -sha256` prints them",
                              v2s_shown(copy, shown, sizeof(shown)));
    }
    if (p->cfg.n_peer_fingerprints >= CONFIG_MAX_FINGERPRINTS)
        return config_fail_at(p, line, "more than %d peer-fingerprint entries", CONFIG_MAX_FINGERPRINTS);
    uint8_t(*grown)[OVPN_FINGERPRINT_LEN] =
        realloc(p->cfg.peer_fingerprints, (p->cfg.n_peer_fingerprints + 1) * sizeof(*grown));
    if (grown == NULL)
        return config_nomem(p);
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
        while (len > 0 && config_is_space(*s))
            s++, len--;
        while (len > 0 && config_is_space(s[len - 1]))
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
    if ((rc = config_seconds(p, w[0], w[1], 0, &p->cfg.reneg_sec)) < 0)
        return rc;
    return n == 3 ? config_seconds(p, w[0], w[2], 0, &max) : 0;
}

/* reneg-bytes N / reneg-pkts N: a new key after N bytes / packets, both directions counted. */
static int config_apply_reneg_count(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    return config_number64(p, w[0], w[1], strcmp(w[0], "reneg-bytes") == 0 ? &p->cfg.reneg_bytes : &p->cfg.reneg_pkts);
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
    return config_seconds(p, w[0], w[1], 1, &p->cfg.hand_window);
}

/* connect-retry n [max]: the second value caps OpenVPN's back-off; we keep n. */
static int config_apply_connect_retry(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    unsigned max;
    int rc;
    (void)block;
    if ((rc = config_seconds(p, w[0], w[1], 0, &p->cfg.connect_retry)) < 0)
        return rc;
    return n == 3 ? config_seconds(p, w[0], w[2], 0, &max) : 0;
}

static int config_apply_connect_retry_max(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    p->connect_retry_max_line = p->opt_line;
    return config_number(p, w[0], w[1], 0, CONFIG_MAX_NUMBER, &p->cfg.connect_retry_max);
}

static int config_apply_server_poll_timeout(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    return config_seconds(p, w[0], w[1], 0, &p->cfg.server_poll_timeout);
}

static int config_apply_connect_timeout(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    return config_seconds(p, w[0], w[1], 0, &p->cfg.connect_timeout);
}

static int config_apply_explicit_exit_notify(struct ovpn_config_parser *p, char **w, int n,
                                             const char *block)
{
    (void)block;
    if (n == 1) {
        p->cfg.explicit_exit_notify = 1;
        return 0;
    }
    return config_number(p, w[0], w[1], 0, 100, &p->cfg.explicit_exit_notify);
}

/* tun-mtu n [occ-mtu]: the second value is only what OpenVPN reports to its peer. */
static int config_apply_tun_mtu(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    unsigned occ;
    int rc;
    (void)block;
    if ((rc = config_number(p, w[0], w[1], CONFIG_MTU_MIN, CONFIG_MTU_MAX, &p->cfg.tun_mtu)) < 0)
        return rc;
    return n == 3 ? config_number(p, w[0], w[2], 0, CONFIG_MTU_MAX, &occ) : 0;
}

/* mssfix [n [mtu|fixed]] */
static int config_apply_mssfix(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char shown[CONFIG_SHOWN_MAX];
    (void)block;
    if (n == 1) {
        p->cfg.mssfix = CONFIG_MSSFIX_DEFAULT;
        return 0;
    }
    if (n == 3 && strcmp(w[2], "mtu") != 0 && strcmp(w[2], "fixed") != 0)
        return config_fail(p, "mssfix: '%s' is not mtu or fixed", v2s_shown(w[2], shown, sizeof(shown)));
    return config_number(p, w[0], w[1], 0, CONFIG_MTU_MAX, &p->cfg.mssfix);
}

static int config_apply_route_nopull(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)w, (void)n, (void)block;
    p->cfg.route_nopull = 1;
    return 0;
}

/* pull-filter accept|ignore|reject TEXT: kept in order for the push parser (push.c). */
static int config_apply_pull_filter(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    static const char *const actions[] = {"accept", "ignore", "reject"};
    static const enum ovpn_pull_action values[] = {OVPN_PULL_ACCEPT, OVPN_PULL_IGNORE, OVPN_PULL_REJECT};
    struct ovpn_config *cfg = &p->cfg;
    char shown[CONFIG_SHOWN_MAX];
    size_t i = 0;
    (void)n, (void)block;
    while (i < 3 && strcmp(w[1], actions[i]) != 0)
        i++;
    if (i == 3)
        return config_fail(p, "pull-filter '%s': expected accept, ignore or reject", v2s_shown(w[1], shown, sizeof(shown)));
    if (cfg->n_pull_filters >= CONFIG_MAX_PULL_FILTERS)
        return config_fail(p, "more than %d pull-filter lines", CONFIG_MAX_PULL_FILTERS);
    struct ovpn_pull_filter *grown = realloc(cfg->pull_filters, (cfg->n_pull_filters + 1) * sizeof(*grown));
    if (grown == NULL)
        return config_nomem(p);
    cfg->pull_filters = grown;
    if ((grown[cfg->n_pull_filters].text = strdup(w[2])) == NULL)
        return config_nomem(p);
    grown[cfg->n_pull_filters].action = values[i];
    grown[cfg->n_pull_filters].line = p->opt_line;
    cfg->n_pull_filters++;
    return 0;
}

static int config_apply_ping(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    p->ping_line = p->opt_line;
    return config_seconds(p, w[0], w[1], 0, &p->cfg.ping);
}

/* ping-restart, and ping-exit, which OpenVPN ends the process on: we restart instead. */
static int config_apply_ping_restart(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    if (strcmp(w[0], "ping-exit") == 0)
        v2s_warn("%s:%u: ping-exit is treated as ping-restart", p->name, p->opt_line);
    p->ping_line = p->opt_line;
    return config_seconds(p, w[0], w[1], 0, &p->cfg.ping_restart);
}

static int config_apply_keepalive(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    int rc;
    (void)n, (void)block;
    if ((rc = config_seconds(p, w[0], w[1], 1, &p->keepalive_ping)) < 0 ||
        (rc = config_seconds(p, w[0], w[2], 1, &p->keepalive_restart)) < 0)
        return rc;
    if (p->keepalive_restart < 2 * p->keepalive_ping)
        return config_fail(p, "keepalive %u %u: the restart time must be at least twice the ping interval",
                           p->keepalive_ping, p->keepalive_restart);
    p->keepalive_line = p->opt_line;
    return 0;
}

/* comp-lzo [yes|no|adaptive]: every form, "no" included, frames with one byte. */
static int config_apply_comp_lzo(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char shown[CONFIG_SHOWN_MAX];
    (void)block;
    if (n == 2 && strcmp(w[1], "yes") != 0 && strcmp(w[1], "no") != 0 && strcmp(w[1], "adaptive") != 0)
        return config_fail(p, "comp-lzo '%s': expected yes, no or adaptive", v2s_shown(w[1], shown, sizeof(shown)));
    p->cfg.comp = OVPN_COMP_FRAMING_LZO;
    p->cfg.comp_set = 1;
    p->comp_compresses = !(n == 2 && strcmp(w[1], "no") == 0);
    return 0;
}

static int config_apply_compress(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    static const struct {
        const char *name;
        enum ovpn_comp_framing framing;
        int compresses;
    } algs[] = {
        {"stub", OVPN_COMP_FRAMING_V1, 0}, {"lzo", OVPN_COMP_FRAMING_V1, 1},
        {"lz4", OVPN_COMP_FRAMING_V1, 1},  {"stub-v2", OVPN_COMP_FRAMING_V2, 0},
        {"lz4-v2", OVPN_COMP_FRAMING_V2, 1},
    };
    const char *alg = n == 2 ? w[1] : "stub";
    char shown[CONFIG_SHOWN_MAX];
    (void)block;
    if (strcmp(alg, "migrate") == 0) {
        /* The server picks from what we send in the options string; nothing is fixed here. */
        p->cfg.comp = OVPN_COMP_FRAMING_NONE;
        p->cfg.comp_set = 0;
        p->comp_compresses = 0;
        return 0;
    }
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        if (strcmp(alg, algs[i].name) == 0) {
            p->cfg.comp = algs[i].framing;
            p->cfg.comp_set = 1;
            p->comp_compresses = algs[i].compresses;
            return 0;
        }
    }
    return config_fail(p, "compress '%s': expected stub, stub-v2, lzo, lz4, lz4-v2 or migrate",
                       v2s_shown(alg, shown, sizeof(shown)));
}

static int config_apply_allow_compression(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char shown[CONFIG_SHOWN_MAX];
    (void)n, (void)block;
    if (strcmp(w[1], "no") == 0) {
        p->allow_comp_no_line = p->opt_line;
        return 0;
    }
    if (strcmp(w[1], "yes") == 0 || strcmp(w[1], "asym") == 0)
        return 0;
    return config_fail(p, "allow-compression '%s': expected yes, no or asym", v2s_shown(w[1], shown, sizeof(shown)));
}

/* route, route-ipv6, dhcp-option, dns, redirect-gateway: the same code as a push. */
static int config_apply_settings(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char why[CONFIG_ERR_MAX / 2];
    (void)block;
    int rc = ovpn_push_settings_option(&p->cfg.settings, NULL, w, n, why, sizeof(why));
    if (rc == -ENOMEM)
        return config_nomem(p);
    if (rc < 0)
        return config_fail(p, "%s", why);
    return 0;
}

static int config_apply_ignore_unknown(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)block;
    for (int i = 1; i < n; i++) {
        const char *name = strncmp(w[i], "--", 2) == 0 ? w[i] + 2 : w[i];
        if (p->n_ignored >= CONFIG_MAX_IGNORED)
            return config_fail(p, "more than %d names given to ignore-unknown-option", CONFIG_MAX_IGNORED);
        char **grown = realloc(p->ignored, (p->n_ignored + 1) * sizeof(*grown));
        if (grown == NULL)
            return config_nomem(p);
        p->ignored = grown;
        if ((p->ignored[p->n_ignored] = strdup(name)) == NULL)
            return config_nomem(p);
        p->n_ignored++;
    }
    return 0;
}

static int config_apply_key_method(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    char shown[CONFIG_SHOWN_MAX];
    (void)n, (void)block;
    if (strcmp(w[1], "2") == 0)
        return 0;
    return config_fail(p, "key-method %s is not supported: only key-method 2", v2s_shown(w[1], shown, sizeof(shown)));
}

/* cd DIR: OpenVPN changes directory there, so relative file names resolve against it. */
static int config_apply_cd(struct ovpn_config_parser *p, char **w, int n, const char *block)
{
    (void)n, (void)block;
    if (w[1][0] == '\0')
        return config_fail(p, "cd needs a folder");
    return config_set_string(p, &p->cd, w[1]);
}

#define APPLY(name, flags, min, max, fn) {name, CONFIG_APPLY, flags, min, max, fn, NULL}
#define IGNORE(name, flags) {name, CONFIG_IGNORE, flags, 0, 0, NULL, NULL}
#define WARN(name, flags, note) {name, CONFIG_WARN, flags, 0, 0, NULL, note}
#define SCRIPT(name) {name, CONFIG_SCRIPT, 0, 0, 0, NULL, NULL}
#define REFUSE(name, flags, note) {name, CONFIG_REFUSE, flags, 0, 0, NULL, note}
#define SERVER(name) {name, CONFIG_SERVER, 0, 0, 0, NULL, NULL}

static const char config_no_proxy[] = "connecting through an HTTP or SOCKS proxy is not supported";
static const char config_no_token[] =
    "keys held by a token or a certificate store are not supported: use cert and key files";

static const struct config_option config_options[] = {
    /* What a client is and where it connects. */
    APPLY("client", 0, 0, 0, config_apply_client),
    APPLY("pull", 0, 0, 0, config_apply_client),
    IGNORE("tls-client", 0),
    APPLY("dev", 0, 1, 1, config_apply_dev),
    APPLY("dev-type", 0, 1, 1, config_apply_dev_type),
    APPLY("mode", 0, 1, 1, config_apply_mode),
    APPLY("remote", CONFIG_CONN, 1, 3, config_apply_remote),
    APPLY("proto", CONFIG_CONN, 1, 1, config_apply_proto),
    APPLY("port", CONFIG_CONN, 1, 1, config_apply_port),
    APPLY("rport", CONFIG_CONN, 1, 1, config_apply_port),
    APPLY("remote-random", 0, 0, 0, config_apply_remote_random),
    APPLY("connection", 0, 0, 15, config_apply_connection),
    /* Credentials and TLS. */
    APPLY("ca", CONFIG_BLOCK, 1, 1, config_apply_ca),
    APPLY("cert", CONFIG_BLOCK, 1, 1, config_apply_cert),
    APPLY("key", CONFIG_BLOCK, 1, 1, config_apply_key),
    APPLY("extra-certs", CONFIG_BLOCK, 1, 1, config_apply_extra_certs),
    APPLY("tls-auth", CONFIG_BLOCK | CONFIG_CONN, 1, 2, config_apply_tls_auth),
    APPLY("tls-crypt", CONFIG_BLOCK | CONFIG_CONN, 1, 1, config_apply_tls_crypt),
    APPLY("key-direction", CONFIG_CONN, 1, 1, config_apply_key_direction),
    APPLY("auth-user-pass", CONFIG_BLOCK, 0, 1, config_apply_auth_user_pass),
    APPLY("auth-nocache", 0, 0, 0, config_apply_auth_nocache),
    APPLY("cipher", 0, 1, 1, config_apply_cipher),
    APPLY("data-ciphers", 0, 1, 1, config_apply_data_ciphers),
    APPLY("ncp-ciphers", 0, 1, 1, config_apply_data_ciphers),
    APPLY("data-ciphers-fallback", 0, 1, 1, config_apply_data_ciphers_fallback),
    APPLY("auth", 0, 1, 1, config_apply_auth),
    APPLY("tls-version-min", 0, 1, 2, config_apply_tls_version_min),
    APPLY("tls-cipher", 0, 1, 1, config_apply_tls_cipher),
    APPLY("tls-ciphersuites", 0, 1, 1, config_apply_tls_ciphersuites),
    APPLY("remote-cert-tls", 0, 1, 1, config_apply_remote_cert_tls),
    APPLY("ns-cert-type", 0, 1, 1, config_apply_remote_cert_tls),
    APPLY("remote-cert-eku", 0, 1, 1, config_apply_remote_cert_eku),
    APPLY("verify-x509-name", 0, 1, 2, config_apply_verify_x509_name),
    APPLY("peer-fingerprint", CONFIG_BLOCK, 1, 1, config_apply_peer_fingerprint),
    APPLY("key-method", 0, 1, 1, config_apply_key_method),
    /* Timers and sizes. */
    APPLY("reneg-sec", 0, 1, 2, config_apply_reneg_sec),
    APPLY("reneg-bytes", 0, 1, 1, config_apply_reneg_count),
    APPLY("reneg-pkts", 0, 1, 1, config_apply_reneg_count),
    APPLY("compat-mode", 0, 1, 1, config_apply_compat_mode),
    APPLY("hand-window", 0, 1, 1, config_apply_hand_window),
    APPLY("connect-retry", CONFIG_CONN, 1, 2, config_apply_connect_retry),
    APPLY("connect-retry-max", CONFIG_CONN, 1, 1, config_apply_connect_retry_max),
    APPLY("server-poll-timeout", CONFIG_CONN, 1, 1, config_apply_server_poll_timeout),
    APPLY("connect-timeout", CONFIG_CONN, 1, 1, config_apply_connect_timeout),
    APPLY("explicit-exit-notify", CONFIG_CONN, 0, 1, config_apply_explicit_exit_notify),
    APPLY("tun-mtu", CONFIG_CONN, 1, 2, config_apply_tun_mtu),
    APPLY("mssfix", CONFIG_CONN, 0, 2, config_apply_mssfix),
    APPLY("ping", 0, 1, 1, config_apply_ping),
    APPLY("ping-restart", 0, 1, 1, config_apply_ping_restart),
    APPLY("ping-exit", 0, 1, 1, config_apply_ping_restart),
    APPLY("keepalive", 0, 2, 2, config_apply_keepalive),
    APPLY("comp-lzo", 0, 0, 1, config_apply_comp_lzo),
    APPLY("compress", 0, 0, 1, config_apply_compress),
    APPLY("allow-compression", 0, 1, 1, config_apply_allow_compression),
    /* What goes through the tunnel. */
    APPLY("route", 0, 1, 4, config_apply_settings),
    APPLY("route-ipv6", 0, 1, 3, config_apply_settings),
    APPLY("dhcp-option", 0, 1, 2, config_apply_settings),
    APPLY("dns", 0, 1, 15, config_apply_settings),
    APPLY("redirect-gateway", 0, 0, 15, config_apply_settings),
    APPLY("redirect-private", 0, 0, 15, config_apply_settings),
    APPLY("route-nopull", 0, 0, 0, config_apply_route_nopull),
    APPLY("pull-filter", 0, 2, 2, config_apply_pull_filter),
    /* The parser itself. */
    APPLY("ignore-unknown-option", 0, 1, 15, config_apply_ignore_unknown),
    APPLY("cd", 0, 1, 1, config_apply_cd),
    /* A TUN device's or OpenVPN's own business. */
    IGNORE("resolv-retry", 0), IGNORE("nobind", CONFIG_CONN), IGNORE("persist-tun", 0),
    IGNORE("persist-key", 0), IGNORE("persist-local-ip", 0), IGNORE("persist-remote-ip", 0),
    IGNORE("user", 0), IGNORE("group", 0), IGNORE("verb", 0), IGNORE("mute", 0),
    IGNORE("mute-replay-warnings", 0), IGNORE("script-security", 0),
    IGNORE("float", CONFIG_CONN), IGNORE("tun-ipv6", 0), IGNORE("topology", 0), IGNORE("sndbuf", 0),
    IGNORE("rcvbuf", 0), IGNORE("fast-io", 0), IGNORE("txqueuelen", 0), IGNORE("block-outside-dns", 0),
    IGNORE("register-dns", 0), IGNORE("disable-dco", 0), IGNORE("dev-node", 0), IGNORE("lladdr", 0),
    IGNORE("ping-timer-rem", 0), IGNORE("route-delay", 0), IGNORE("route-metric", 0),
    IGNORE("route-method", 0), IGNORE("route-noexec", 0), IGNORE("route-gateway", 0),
    IGNORE("route-ipv6-gateway", 0), IGNORE("ifconfig-noexec", 0), IGNORE("ifconfig-nowarn", 0),
    IGNORE("ip-win32", 0), IGNORE("tap-sleep", 0), IGNORE("dhcp-renew", 0), IGNORE("dhcp-pre-release", 0),
    IGNORE("dhcp-release", 0), IGNORE("win-sys", 0), IGNORE("allow-nonadmin", 0),
    IGNORE("windows-driver", 0), IGNORE("daemon", 0), IGNORE("log", 0), IGNORE("log-append", 0),
    IGNORE("syslog", 0), IGNORE("status", 0), IGNORE("status-version", 0), IGNORE("writepid", 0),
    IGNORE("chroot", 0), IGNORE("setcon", 0), IGNORE("nice", 0), IGNORE("mlock", 0),
    IGNORE("machine-readable-output", 0), IGNORE("suppress-timestamps", 0), IGNORE("errors-to-stderr", 0),
    IGNORE("echo", 0), IGNORE("parameter", 0), IGNORE("management", 0), IGNORE("allow-pull-fqdn", 0),
    IGNORE("block-ipv6", 0), IGNORE("push-peer-info", 0), IGNORE("auth-retry", 0),
    IGNORE("comp-noadapt", 0), IGNORE("tls-exit", 0), IGNORE("single-session", 0), IGNORE("dh", 0),
    IGNORE("tran-window", 0), IGNORE("tls-timeout", 0), IGNORE("replay-window", 0),
    IGNORE("replay-persist", 0), IGNORE("mtu-disc", CONFIG_CONN), IGNORE("mtu-test", 0),
    IGNORE("tun-mtu-extra", CONFIG_CONN), IGNORE("tun-mtu-max", CONFIG_CONN), IGNORE("lport", CONFIG_CONN),
    IGNORE("local", CONFIG_CONN), IGNORE("bind", CONFIG_CONN), IGNORE("socket-flags", 0),
    IGNORE("mark", 0), IGNORE("bind-dev", 0), IGNORE("passtos", 0), IGNORE("tcp-nodelay", 0),
    IGNORE("multihome", 0), IGNORE("preresolve", 0), IGNORE("remap-usr1", 0), IGNORE("max-routes", 0),
    IGNORE("iproute", 0), IGNORE("force-tls-key-material-export", 0), IGNORE("x509-track", 0),
    IGNORE("tls-export-cert", 0), IGNORE("ecdh-curve", 0), IGNORE("memstats", 0), IGNORE("prng", 0),
    IGNORE("compat-names", 0), IGNORE("pause-exit", 0), IGNORE("service", 0),
    /* Accepted, but the user should know it does nothing here. */
    WARN("link-mtu", CONFIG_CONN, "link-mtu is ignored; tun-mtu sets the size"),
    WARN("ifconfig", 0, "ifconfig is ignored; the server pushes the tunnel address"),
    WARN("ifconfig-ipv6", 0, "ifconfig-ipv6 is ignored; the server pushes the tunnel address"),
    WARN("tls-version-max", 0, "tls-version-max is ignored"),
    WARN("tls-groups", 0, "tls-groups is ignored; OpenSSL's defaults are used"),
    WARN("tls-cert-profile", 0, "tls-cert-profile is ignored; OpenSSL's defaults are used"),
    WARN("inactive", 0, "inactive is ignored"),
    WARN("session-timeout", 0, "session-timeout is ignored"),
    WARN("shaper", 0, "shaper is ignored"),
    WARN("remote-random-hostname", 0, "remote-random-hostname is ignored"),
    WARN("proto-force", 0, "proto-force is ignored"),
    WARN("providers", 0, "providers is ignored; OpenSSL's default provider is used"),
    WARN("engine", 0, "engine is ignored"),
    WARN("no-replay", 0, "no-replay is ignored; replay protection stays on"),
    WARN("client-nat", 0, "client-nat is ignored"),
    WARN("remote-cert-ku", 0, "remote-cert-ku is not checked; remote-cert-tls server checks the key usage"),
    WARN("auth-token", 0, "auth-token in a file is ignored; the server pushes it"),
    WARN("key-derivation", 0, "key-derivation is negotiated with the server; ignored here"),
    WARN("protocol-flags", 0, "protocol-flags is negotiated with the server; ignored here"),
    WARN("ncp-disable", 0, "ncp-disable is ignored; ciphers are negotiated"),
    WARN("keysize", 0, "keysize is ignored; the cipher name sets the key size"),
    SCRIPT("up"), SCRIPT("down"), SCRIPT("down-pre"), SCRIPT("up-delay"), SCRIPT("up-restart"),
    SCRIPT("route-up"), SCRIPT("route-pre-down"), SCRIPT("ipchange"), SCRIPT("plugin"),
    /* Cannot work here. */
    REFUSE("fragment", CONFIG_CONN,
           "fragment is not supported: remove it here and on the server (mssfix covers TCP)"),
    REFUSE("socks-proxy", CONFIG_CONN, config_no_proxy),
    REFUSE("socks-proxy-retry", CONFIG_CONN, config_no_proxy),
    REFUSE("http-proxy", CONFIG_CONN, config_no_proxy),
    REFUSE("http-proxy-option", CONFIG_CONN, config_no_proxy),
    REFUSE("http-proxy-user-pass", CONFIG_CONN | CONFIG_BLOCK, config_no_proxy),
    REFUSE("http-proxy-retry", CONFIG_CONN, config_no_proxy),
    REFUSE("http-proxy-timeout", CONFIG_CONN, config_no_proxy),
    REFUSE("http-proxy-override", 0, config_no_proxy),
    REFUSE("pkcs12", CONFIG_BLOCK,
           "pkcs12 is not supported: convert it (openssl pkcs12 -nodes) into ca, cert and key files"),
    REFUSE("cryptoapicert", 0, config_no_token),
    REFUSE("management-external-key", 0, config_no_token),
    REFUSE("management-external-cert", 0, config_no_token),
    REFUSE("secret", CONFIG_BLOCK,
           "secret (static key mode) is not supported: vpn2socks needs a TLS server (client, ca, cert, key)"),
    REFUSE("tls-server", 0, "tls-server: this is a server config; vpn2socks is a client"),
    REFUSE("tls-crypt-v2", CONFIG_CONN | CONFIG_BLOCK,
           "tls-crypt-v2 is not supported: ask the server's admin for a tls-crypt or tls-auth key"),
    REFUSE("askpass", 0,
           "askpass (an encrypted private key) is not supported: decrypt the key "
           "(openssl pkey -in KEY -out KEY2)"),
    REFUSE("static-challenge", 0,
           "static-challenge (an interactive one-time password prompt) is not supported"),
    REFUSE("crl-verify", CONFIG_BLOCK, "crl-verify is not supported"),
    REFUSE("capath", 0, "capath is not supported: put the CA certificates into one ca file"),
    REFUSE("verify-hash", CONFIG_BLOCK,
           "verify-hash (pinning the CA's hash) is not supported: use ca, or peer-fingerprint for the "
           "server's own certificate"),
    REFUSE("tls-verify", 0, "tls-verify scripts are not supported: use verify-x509-name"),
    REFUSE("config", 0, "config (reading another file) is not supported: merge the files"),
    SERVER("server"), SERVER("server-ipv6"), SERVER("server-bridge"), SERVER("push"),
    SERVER("push-reset"), SERVER("push-remove"), SERVER("ifconfig-pool"), SERVER("ifconfig-pool-persist"),
    SERVER("ifconfig-ipv6-pool"), SERVER("client-config-dir"), SERVER("ccd-exclusive"),
    SERVER("client-to-client"), SERVER("duplicate-cn"), SERVER("max-clients"), SERVER("ifconfig-push"),
    SERVER("ifconfig-ipv6-push"), SERVER("iroute"), SERVER("iroute-ipv6"), SERVER("auth-user-pass-verify"),
    SERVER("client-connect"), SERVER("client-disconnect"), SERVER("learn-address"),
    SERVER("verify-client-cert"), SERVER("client-cert-not-required"), SERVER("username-as-common-name"),
    SERVER("auth-gen-token"), SERVER("port-share"), SERVER("tls-crypt-v2-verify"),
};

static const struct config_option config_pkcs11 = REFUSE("pkcs11-*", 0, config_no_token);
static const struct config_option config_management = IGNORE("management-*", 0);

static const struct config_option *config_find(const char *name)
{
    for (size_t i = 0; i < sizeof(config_options) / sizeof(config_options[0]); i++)
        if (strcmp(name, config_options[i].name) == 0)
            return &config_options[i];
    if (strncmp(name, "pkcs11-", 7) == 0)
        return &config_pkcs11;
    if (strncmp(name, "management-", 11) == 0)
        return &config_management;
    return NULL;
}

/* An option we do not know: a warning when the file asked for leniency, else an error. */
static int config_unknown(struct ovpn_config_parser *p, const char *name, int lenient)
{
    char shown[CONFIG_SHOWN_MAX];
    int ignored = lenient || p->forward_compatible;
    for (size_t i = 0; !ignored && i < p->n_ignored; i++)
        ignored = strcmp(p->ignored[i], name) == 0;
    if (!ignored)
        return config_fail(p, "unknown option '%s'", v2s_shown(name, shown, sizeof(shown)));
    v2s_warn("%s:%u: ignoring unknown option '%s'", p->name, p->opt_line, v2s_shown(name, shown, sizeof(shown)));
    return 0;
}

/* Handles the kinds that need no apply function. Returns 1 when the option was one of them. */
static int config_not_applied(struct ovpn_config_parser *p, const struct config_option *o, int *rc)
{
    *rc = 0;
    switch (o->kind) {
    case CONFIG_APPLY:
        return 0;
    case CONFIG_IGNORE:
        break;
    case CONFIG_WARN:
        v2s_warn("%s:%u: %s", p->name, p->opt_line, o->note);
        break;
    case CONFIG_SCRIPT:
        v2s_warn("%s:%u: %s ignored: vpn2socks runs no scripts", p->name, p->opt_line, o->name);
        break;
    case CONFIG_REFUSE:
        *rc = config_fail(p, "%s", o->note);
        break;
    case CONFIG_SERVER:
        *rc = config_fail(p, "%s is a server option: this is not a client config", o->name);
        break;
    }
    return 1;
}

static int config_option(struct ovpn_config_parser *p, char **w, int n)
{
    const struct config_option *o;
    int lenient = 0;
    int rc;

    if (strcmp(w[0], "setenv") == 0) {
        if (p->in_connection)
            return config_fail(p, "setenv cannot be used inside a <connection> block");
        if (n < 2 || strcmp(w[1], "opt") != 0) {
            if (n >= 3 && strcmp(w[1], "FORWARD_COMPATIBLE") == 0 && strcmp(w[2], "1") == 0)
                p->forward_compatible = 1;
            return 0; /* a variable for scripts, which we do not run */
        }
        if (n == 2)
            return config_fail(p, "setenv opt needs an option");
        w += 2;
        n -= 2;
        lenient = 1;
    }
    if ((o = config_find(w[0])) == NULL)
        return config_unknown(p, w[0], lenient);
    if (o->kind != CONFIG_REFUSE && o->kind != CONFIG_SERVER && p->in_connection && !(o->flags & CONFIG_CONN))
        return config_fail(p, "%s cannot be used inside a <connection> block", o->name);
    if (config_not_applied(p, o, &rc))
        return rc;
    if (n - 1 < o->min_args || n - 1 > o->max_args) {
        if (o->min_args == o->max_args)
            return config_fail(p, "%s takes %d argument%s, not %d", o->name, o->min_args,
                               o->min_args == 1 ? "" : "s", n - 1);
        return config_fail(p, "%s takes %d to %d arguments, not %d", o->name, o->min_args, o->max_args,
                           n - 1);
    }
    return o->apply(p, w, n, NULL);
}

/* ---- inline blocks and <connection> ---- */

/* Whether line, after leading whitespace, starts with "</tag>". */
static int config_is_close_tag(const char *line, const char *tag)
{
    size_t tl = strlen(tag);
    while (config_is_space(*line))
        line++;
    return line[0] == '<' && line[1] == '/' && strncmp(line + 2, tag, tl) == 0 && line[2 + tl] == '>';
}

static int config_connection_begin(struct ovpn_config_parser *p)
{
    if (p->in_connection)
        return config_fail(p, "<connection> blocks cannot nest");
    p->in_connection = 1;
    p->conn_line = p->line_no;
    p->conn_ce = p->ce;
    p->conn_has_remote = 0;
    return 0;
}

static int config_connection_end(struct ovpn_config_parser *p)
{
    struct config_remote *r = &p->conn_remote;
    p->in_connection = 0;
    if (!p->conn_has_remote)
        return config_fail_at(p, p->conn_line, "a <connection> block needs a remote");
    if (!r->port_given)
        memcpy(r->r.port, p->conn_ce.port, sizeof(r->r.port));
    if (!r->proto_given) {
        r->r.proto = p->conn_ce.proto;
        r->r.family = p->conn_ce.family;
    }
    r->port_given = r->proto_given = 1; /* settled: the file's own defaults no longer apply */
    p->has_connections = 1;
    p->opt_line = r->line;
    return config_append_remote(p, r);
}

static int config_block_begin(struct ovpn_config_parser *p, const char *tag)
{
    char shown[CONFIG_SHOWN_MAX];
    const struct config_option *o;
    int rc;

    if (tag[0] == '/')
        return config_fail(p, "<%s> closes a block that was never opened", v2s_shown(tag, shown, sizeof(shown)));
    if (strlen(tag) >= sizeof(p->block_tag))
        return config_fail(p, "unknown option '%s'", v2s_shown(tag, shown, sizeof(shown)));
    if (strcmp(tag, "connection") == 0)
        return config_connection_begin(p);
    o = config_find(tag);
    if (o == NULL) {
        if ((rc = config_unknown(p, tag, 0)) < 0)
            return rc;
    } else if (o->kind == CONFIG_APPLY) {
        if (!(o->flags & CONFIG_BLOCK))
            return config_fail(p, "%s cannot be an inline <%s> block", o->name, o->name);
        if (p->in_connection && !(o->flags & CONFIG_CONN))
            return config_fail(p, "%s cannot be used inside a <connection> block", o->name);
    } else if (config_not_applied(p, o, &rc)) {
        if (rc < 0)
            return rc;
        o = NULL; /* read the block and drop it */
    }
    snprintf(p->block_tag, sizeof(p->block_tag), "%s", tag);
    p->block_opt = o;
    p->block_line = p->line_no;
    p->block_len = 0;
    return 0;
}

static int config_block_line(struct ovpn_config_parser *p, const char *line, size_t len)
{
    if (config_is_close_tag(line, p->block_tag)) {
        const struct config_option *o = p->block_opt;
        char *w[1] = {p->block_tag};
        int rc = 0;
        if (o != NULL) {
            p->opt_line = p->block_line;
            rc = o->apply(p, w, 1, p->block_len ? p->block : "");
        }
        if (p->block != NULL)
            explicit_bzero(p->block, p->block_len);
        p->block_len = 0;
        p->block_tag[0] = '\0';
        p->block_opt = NULL;
        return rc;
    }
    if (p->block_opt == NULL)
        return 0;
    if (p->block_len + len + 2 > CONFIG_MAX_BLOCK)
        return config_fail_at(p, p->block_line, "the <%s> block is larger than %d bytes", p->block_tag,
                              CONFIG_MAX_BLOCK);
    if (p->block_len + len + 2 > p->block_cap) {
        size_t cap = p->block_cap ? p->block_cap : 4096;
        while (cap < p->block_len + len + 2)
            cap *= 2;
        char *grown = malloc(cap);
        if (grown == NULL)
            return config_nomem(p);
        if (p->block != NULL) {
            memcpy(grown, p->block, p->block_len);
            explicit_bzero(p->block, p->block_cap); /* keys pass through here */
            free(p->block);
        }
        p->block = grown;
        p->block_cap = cap;
    }
    memcpy(p->block + p->block_len, line, len);
    p->block_len += len;
    p->block[p->block_len++] = '\n';
    p->block[p->block_len] = '\0';
    return 0;
}

/* One complete line, without its LF, NUL-terminated in place. */
static int config_line(struct ovpn_config_parser *p, char *line, size_t len)
{
    char *words[CONFIG_MAX_WORDS];
    const char *why;
    int n;

    p->line_no++;
    p->opt_line = p->line_no;
    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    if (p->line_no == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3;
        len -= 3;
    }
    if (p->block_tag[0] != '\0')
        return config_block_line(p, line, len);
    if (p->in_connection && config_is_close_tag(line, "connection"))
        return config_connection_end(p);

    if ((n = config_split(line, words, CONFIG_MAX_WORDS, &why)) < 0)
        return config_fail(p, "%s", why);
    if (n == 0)
        return 0;
    if (strlen(words[0]) >= 3 && strncmp(words[0], "--", 2) == 0)
        words[0] += 2;
    size_t wl = strlen(words[0]);
    if (n == 1 && wl >= 3 && words[0][0] == '<' && words[0][wl - 1] == '>') {
        words[0][wl - 1] = '\0';
        return config_block_begin(p, words[0] + 1);
    }
    return config_option(p, words, n);
}

/* ---- the parser's interface ---- */

static void config_defaults(struct ovpn_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->key_direction = -1;
    snprintf(cfg->auth, sizeof(cfg->auth), "SHA1");
    cfg->reneg_sec = 3600;
    cfg->hand_window = 60;
    cfg->connect_retry = 5;
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
    config_defaults(&p->cfg);
    *out = p;
    return 0;
}

int ovpn_config_parser_feed(struct ovpn_config_parser *p, const char *text, size_t len, char *err,
                            size_t errcap)
{
    int rc = 0;
    if (p->error == 0 && p->finished)
        config_fail_at(p, 0, "text fed after the end of the file");
    while (p->error == 0 && len > 0) {
        const char *nl = memchr(text, '\n', len);
        size_t take = nl ? (size_t)(nl - text) : len;
        if (memchr(text, '\0', take) != NULL) {
            config_fail_at(p, p->line_no + 1, "a NUL byte: this is not a text file");
            break;
        }
        if (p->line_len + take > CONFIG_MAX_LINE) {
            config_fail_at(p, p->line_no + 1, "line longer than %d bytes", CONFIG_MAX_LINE);
            break;
        }
        memcpy(p->line + p->line_len, text, take);
        p->line_len += take;
        if (nl == NULL)
            break;
        p->line[p->line_len] = '\0';
        rc = config_line(p, p->line, p->line_len);
        explicit_bzero(p->line, p->line_len); /* a line of a key block is a secret */
        p->line_len = 0;
        if (rc < 0)
            break;
        text += take + 1;
        len -= take + 1;
    }
    if (p->error != 0)
        config_copy_err(err, errcap, p->err);
    return p->error;
}

/* Plain remote lines take the proto and port in force at the end of the file; when <connection>
 * blocks exist they are dropped, as OpenVPN does. */
static int config_finish_remotes(struct ovpn_config_parser *p, struct ovpn_config *cfg)
{
    size_t n = 0;
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
        v2s_warn("%s:%u: remote lines outside <connection> blocks are ignored because the file has "
                 "<connection> blocks (as OpenVPN does)", p->name, dropped_line);
    if (n == 0)
        return config_fail_at(p, 0, "no remote: the file names no server to connect to");
    if ((cfg->remotes = calloc(n, sizeof(*cfg->remotes))) == NULL)
        return config_nomem(p);
    for (size_t i = 0; i < p->n_remotes; i++) {
        struct config_remote *r = &p->remotes[i];
        if (p->has_connections && !r->in_connection)
            continue;
        if (!r->port_given)
            memcpy(r->r.port, p->ce.port, sizeof(r->r.port));
        if (!r->proto_given) {
            r->r.proto = p->ce.proto;
            r->r.family = p->ce.family;
        }
        cfg->remotes[cfg->n_remotes++] = r->r;
    }
    return 0;
}

/* The checks that need the whole file, then the hand-over of the config. */
static int config_finish(struct ovpn_config_parser *p, struct ovpn_config *cfg)
{
    int rc;
    if (p->error != 0)
        return p->error;
    if (p->finished)
        return config_fail_at(p, 0, "finished twice");
    if (p->line_len > 0) {
        p->line[p->line_len] = '\0';
        rc = config_line(p, p->line, p->line_len);
        explicit_bzero(p->line, p->line_len);
        p->line_len = 0;
        if (rc < 0)
            return rc;
    }
    p->finished = 1;
    if (p->block_tag[0] != '\0')
        return config_fail_at(p, p->block_line, "<%s> is not closed: no </%s> before the end of the file",
                              p->block_tag, p->block_tag);
    if (p->in_connection)
        return config_fail_at(p, p->conn_line, "<connection> is not closed: no </connection> before the end "
                                               "of the file");
    if (p->keepalive_line != 0 && p->ping_line != 0)
        return config_fail_at(p, p->keepalive_line,
                              "keepalive conflicts with ping and ping-restart (line %u); keep one of them",
                              p->ping_line);
    if (p->keepalive_line != 0) {
        p->cfg.ping = p->keepalive_ping;
        p->cfg.ping_restart = p->keepalive_restart;
    }
    if ((p->cfg.has_tls_auth || p->refs[CONFIG_REF_TLS_AUTH].path != NULL) &&
        (p->cfg.has_tls_crypt || p->refs[CONFIG_REF_TLS_CRYPT].path != NULL))
        return config_fail_at(p, 0, "tls-auth and tls-crypt cannot be used together");
    if (p->allow_comp_no_line != 0 && p->comp_compresses)
        return config_fail_at(p, p->allow_comp_no_line, "allow-compression no conflicts with compression "
                                                        "turned on by comp-lzo or compress");
    if ((rc = config_finish_remotes(p, &p->cfg)) < 0)
        return rc;
    /* The client counts attempts over all remotes in 32 bits. */
    if ((uint64_t)p->cfg.connect_retry_max * p->cfg.n_remotes > UINT32_MAX)
        return config_fail_at(p, p->connect_retry_max_line,
                              "connect-retry-max %u times %zu remotes is more attempts than can be counted (%u)",
                              p->cfg.connect_retry_max, p->cfg.n_remotes, (unsigned)UINT32_MAX);
    *cfg = p->cfg;
    config_defaults(&p->cfg);
    return 0;
}

int ovpn_config_parser_finish(struct ovpn_config_parser *p, struct ovpn_config *cfg, char *err, size_t errcap)
{
    config_defaults(cfg);
    int rc = config_finish(p, cfg);
    if (rc < 0)
        config_copy_err(err, errcap, p->err);
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
    config_free_secret(&cfg->key);
    free(cfg->extra_certs);
    config_free_secret(&cfg->username);
    config_free_secret(&cfg->password);
    free(cfg->auth_file);
    free(cfg->tls_cipher);
    free(cfg->tls_ciphersuites);
    free(cfg->verify_x509_name);
    free(cfg->peer_fingerprints);
    config_free_secret(&cfg->auth_token);
    tunnel_settings_free(&cfg->settings);
    for (size_t i = 0; i < cfg->n_pull_filters; i++)
        free(cfg->pull_filters[i].text);
    free(cfg->pull_filters);
    explicit_bzero(cfg, sizeof(*cfg)); /* the tls-auth and tls-crypt keys */
}

/* ---- the loader ---- */

/* Reads a whole file (a regular file, or a pipe such as <(...)) of at most max bytes, NUL
 * terminated, and what fstat() says of it (the file read, not a name looked up again). 0 or a
 * negative errno; -EFBIG when larger. */
static int config_read_file(const char *path, size_t max, char **out, size_t *out_len, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t len = 0, cap = 4096;
    char *buf = NULL;
    int rc = 0;

    *out = NULL;
    if (fd < 0)
        return -errno;
    if (fstat(fd, st) < 0) {
        rc = -errno;
        goto out;
    }
    if ((buf = malloc(cap + 1)) == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= max + 1) {
                rc = -EFBIG;
                goto out;
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *grown = malloc(ncap + 1);
            if (grown == NULL) {
                rc = -ENOMEM;
                goto out;
            }
            memcpy(grown, buf, len);
            explicit_bzero(buf, cap + 1);
            free(buf);
            buf = grown;
            cap = ncap;
        }
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = -errno;
            goto out;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    if (len > max) {
        rc = -EFBIG;
        goto out;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    buf = NULL;
out:
    if (buf != NULL) {
        explicit_bzero(buf, cap + 1);
        free(buf);
    }
    close(fd);
    return rc;
}

static void config_free_file(char *text, size_t len)
{
    if (text != NULL) {
        explicit_bzero(text, len);
        free(text);
    }
}

/* Files that hold secrets (ssh's rule for private keys, with PostgreSQL's allowance for root):
 * other users may neither read nor write one, and its group may read it only when root owns it
 * (root:GROUP 0640, how Debian hands keys to a service through a group such as ssl-cert), never
 * write it. Only regular files are checked: a pipe such as <(...) belongs to the process alone.
 * Returns what other users can do, or NULL when the file is closed to them. */
static const char *config_exposure(const struct stat *st)
{
    if (!S_ISREG(st->st_mode))
        return NULL;
    if (st->st_mode & S_IROTH)
        return "other users can read";
    if (st->st_mode & S_IWOTH)
        return "other users can write";
    if (st->st_mode & S_IWGRP)
        return "its group can write";
    if ((st->st_mode & S_IRGRP) && st->st_uid != 0)
        return "its group can read";
    return NULL;
}

/* A file holding `what` that other users can get at: refused with -EPERM and a message saying the
 * fix in err, or with OVPN_CONFIG_ALLOW_READABLE_SECRETS a warning and 0. */
static int config_check_secret(const char *path, const struct stat *st, const char *what, unsigned flags,
                               char *err, size_t errcap)
{
    const char *exposure = config_exposure(st);
    char shown[256];
    if (exposure == NULL)
        return 0;
    v2s_shown(path, shown, sizeof(shown));
    if (flags & OVPN_CONFIG_ALLOW_READABLE_SECRETS) {
        v2s_warn("%s holds %s that %s (mode %04o); used anyway (--allow-readable-secrets)", shown, what, exposure,
                 (unsigned)(st->st_mode & 07777));
        return 0;
    }
    snprintf(err, errcap, "%s holds %s that %s (mode %04o): run chmod 600 %s, or give --allow-readable-secrets",
             shown, what, exposure, (unsigned)(st->st_mode & 07777), shown);
    return -EPERM;
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

/* Reads one named file into the field its option fills. */
static int config_load_ref(struct ovpn_config_parser *p, struct ovpn_config *cfg, enum config_ref ref,
                           const char *base, unsigned flags)
{
    const struct config_file_ref *fr = &p->refs[ref];
    const char *name = config_ref_names[ref];
    char shown[CONFIG_SHOWN_MAX];
    char exposed[CONFIG_ERR_MAX];
    char *full = config_join(base, fr->path);
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    int rc;

    if (full == NULL)
        return config_nomem(p);
    v2s_shown(fr->path, shown, sizeof(shown));
    rc = config_read_file(full, CONFIG_MAX_FILE, &text, &len, &st);
    if (rc < 0) {
        config_fail_at(p, fr->line, "%s '%s': cannot read %s: %s", name, shown, full, config_read_error(rc));
        p->error = rc;
        goto out;
    }
    if (config_ref_secrets[ref] != NULL &&
        (rc = config_check_secret(full, &st, config_ref_secrets[ref], flags, exposed, sizeof(exposed))) < 0) {
        config_fail_at(p, fr->line, "%s '%s': %s", name, shown, exposed);
        p->error = rc;
        goto out;
    }
    if (strlen(text) != len) {
        rc = config_fail_at(p, fr->line, "%s '%s': %s has a NUL byte: not a text file", name, shown, full);
        goto out;
    }
    switch (ref) {
    case CONFIG_REF_CA:
    case CONFIG_REF_CERT:
    case CONFIG_REF_KEY:
    case CONFIG_REF_EXTRA_CERTS: {
        char **field = ref == CONFIG_REF_CA ? &cfg->ca : ref == CONFIG_REF_CERT ? &cfg->cert
                     : ref == CONFIG_REF_KEY ? &cfg->key : &cfg->extra_certs;
        if (len == 0) {
            rc = config_fail_at(p, fr->line, "%s '%s': %s is empty", name, shown, full);
            goto out;
        }
        config_free_secret(field);
        *field = text;
        text = NULL;
        break;
    }
    case CONFIG_REF_TLS_AUTH:
    case CONFIG_REF_TLS_CRYPT: {
        uint8_t *key = ref == CONFIG_REF_TLS_AUTH ? cfg->tls_auth_key : cfg->tls_crypt_key;
        if (ovpn_static_key_parse(text, key) != 0) {
            rc = config_fail_at(p, fr->line, "%s '%s': %s is not an OpenVPN static key (256 bytes of hex "
                                             "between the BEGIN and END lines)", name, shown, full);
            goto out;
        }
        *(ref == CONFIG_REF_TLS_AUTH ? &cfg->has_tls_auth : &cfg->has_tls_crypt) = 1;
        break;
    }
    case CONFIG_REF_AUTH_USER_PASS: {
        const char *why;
        config_free_secret(&cfg->username);
        config_free_secret(&cfg->password);
        if ((rc = config_user_pass(text, &cfg->username, &cfg->password, &why)) < 0) {
            config_fail_at(p, fr->line, "auth-user-pass '%s': %s: %s", shown, full, why);
            p->error = rc;
        } else if ((rc = config_set_auth_file(cfg, full)) < 0) {
            config_nomem(p);
        }
        break;
    }
    case CONFIG_REF_COUNT:
        break;
    }
out:
    config_free_file(text, len);
    free(full);
    return rc;
}

/* The --auth-user-pass file of the command line: named relative to the working directory, and
 * errors name it rather than the config. */
static int config_load_auth_file(struct ovpn_config *cfg, const char *path, unsigned flags, char *err,
                                 size_t errcap)
{
    char *text = NULL;
    size_t len = 0;
    const char *why = NULL;
    struct stat st;
    int rc = config_read_file(path, CONFIG_MAX_FILE, &text, &len, &st);
    if (rc < 0) {
        why = config_read_error(rc);
    } else if ((rc = config_check_secret(path, &st, "a password", flags, err, errcap)) < 0) {
        config_free_file(text, len);
        return rc;
    } else if (strlen(text) != len) {
        why = "has a NUL byte: not a text file";
        rc = -EINVAL;
    } else {
        config_free_secret(&cfg->username);
        config_free_secret(&cfg->password);
        rc = config_user_pass(text, &cfg->username, &cfg->password, &why);
        if (rc == 0 && cfg->auth_file != path && (rc = config_set_auth_file(cfg, path)) < 0)
            why = "out of memory";
    }
    if (rc < 0 && err != NULL && errcap > 0)
        snprintf(err, errcap, "%s: %s", path, why);
    config_free_file(text, len);
    return rc;
}

int ovpn_config_reload_password(struct ovpn_config *cfg, char *err, size_t errcap)
{
    if (cfg->auth_file == NULL) {
        if (err != NULL && errcap > 0)
            snprintf(err, errcap, "auth-user-pass: the credentials were inline; there is no file to read again");
        return -ENOENT;
    }
    return config_load_auth_file(cfg, cfg->auth_file, cfg->load_flags, err, errcap);
}

/* The secret a config holds in its own text (an inline block), or NULL. */
static const char *config_inline_secret(const struct ovpn_config_parser *p, const struct ovpn_config *cfg)
{
    if (cfg->key != NULL && p->refs[CONFIG_REF_KEY].path == NULL)
        return "a private key (<key>)";
    if (cfg->has_tls_crypt && p->refs[CONFIG_REF_TLS_CRYPT].path == NULL)
        return "a tls-crypt key (<tls-crypt>)";
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
    int rc;

    config_defaults(cfg);
    config_defaults(&got);
    if ((rc = config_read_file(path, CONFIG_MAX_CONFIG, &text, &len, &st)) < 0) {
        if (err != NULL && errcap > 0)
            snprintf(err, errcap, "%s: %s", path, rc == -EFBIG ? "larger than 8 MiB" : strerror(-rc));
        return rc;
    }
    if ((rc = ovpn_config_parser_new(&p, path)) < 0) {
        config_copy_err(err, errcap, "out of memory");
        goto out;
    }
    if ((rc = ovpn_config_parser_feed(p, text, len, NULL, 0)) < 0 || (rc = config_finish(p, &got)) < 0)
        goto fail;
    if ((secret = config_inline_secret(p, &got)) != NULL &&
        (rc = config_check_secret(path, &st, secret, flags, err, errcap)) < 0)
        goto out;
    if ((base = config_base_dir(path, p->cd)) == NULL) {
        rc = config_nomem(p);
        goto fail;
    }
    for (int ref = 0; ref < CONFIG_REF_COUNT; ref++) {
        if (p->refs[ref].path == NULL)
            continue;
        if (ref == CONFIG_REF_AUTH_USER_PASS && auth_user_pass_file != NULL)
            continue; /* the command line's file wins; the config's need not exist */
        if ((rc = config_load_ref(p, &got, (enum config_ref)ref, base, flags)) < 0)
            goto fail;
    }
    if (auth_user_pass_file != NULL) {
        if ((rc = config_load_auth_file(&got, auth_user_pass_file, flags, err, errcap)) < 0)
            goto out;
        got.auth_user_pass = 1;
    }
    got.load_flags = flags;
    *cfg = got;
    config_defaults(&got);
    rc = 0;
    goto out;
fail:
    config_copy_err(err, errcap, p->err);
out:
    ovpn_config_free(&got);
    ovpn_config_parser_free(p);
    config_free_file(text, len);
    free(base);
    return rc;
}
